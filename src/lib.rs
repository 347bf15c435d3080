//! Faultline: a self-hosted error tracker.
//!
//! One event's way from request to disk:
//!
//! 1. A request reaches the one listener (`app`). REST (axum) and gRPC (tonic, also as
//!    gRPC-Web) share it (`limits::listener` bounds request heads and slow clients). The
//!    `auth` middleware turns the API key into a `Principal`; `limits` then applies CORS and
//!    the key's rate limit.
//! 2. REST routes (`rest`) only decode the documented JSON into the protobuf request and call
//!    the gRPC handler (`grpc`) — the one entry point of every operation.
//! 3. The capture handler first takes room on the bounded ingest queue
//!    (`ingest::Ingest::reserve`; full → 429 / RESOURCE_EXHAUSTED at once, before any work),
//!    then converts the request into domain input and calls `ingest::prepare`: scrubbing of
//!    secrets (`ingest::scrub`), validation, stack-trace parsing and the grouping key
//!    (`domain::grouping`, xxh3-128 over a versioned key).
//! 4. The prepared event is queued on that room (`ingest::Reservation`) and the handler
//!    waits for its commit.
//! 5. The single writer (its own thread and runtime, `ingest::Ingest::start`) drains the
//!    queue and commits many events per transaction
//!    (`store::Store::commit_batch`): one set-based upsert of the batch's groups (counts,
//!    last seen, regressions), multi-row inserts of events and tags.
//! 6. After the commit, every waiting caller gets its answer: an acknowledged event is on disk.
//!
//! Reads go the same way in: transport → auth → gRPC handler → `store` → back.

pub mod app;
pub mod auth;
pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod ingest;
pub mod integrations;
pub mod jobs;
pub mod limits;
pub mod monitor;
pub mod pb;
pub mod rest;
pub mod store;
pub mod telemetry;

pub use app::App;
pub use config::Config;
