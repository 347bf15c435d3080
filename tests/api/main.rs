//! Black-box integration tests of Faultline: every test starts its own server (port 0, a
//! temporary data directory, and SQLite or — with `FAULTLINE_TEST_DATABASE_URL` — a fresh
//! PostgreSQL database) and talks to it over the wire only: REST, gRPC, gRPC-Web,
//! reflection and health, plus the real binary for the crash test.

mod helpers;

mod access;
mod alerts;
mod auth_matrix;
mod bad_input;
mod concurrency;
mod crash;
mod dashboard;
mod dialects;
mod els;
mod export;
mod grouping;
mod grpc;
mod integrations;
mod limits;
mod maintenance;
mod openapi;
mod protocols;
mod rest;
mod retention;
mod scrubbing;
mod sdk;
mod sentry;
mod sourcemaps;
mod storage;
