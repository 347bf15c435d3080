//! The vocabulary of Faultline, free of I/O: levels, statuses, events as they enter,
//! the grouping algorithm, query filters and cursors. Everything here is pure and
//! unit-tested; `ingest`, `store` and `grpc` build on it.

pub mod cursor;
pub mod event;
pub mod export;
pub mod filter;
pub mod grouping;
pub mod insights;
pub mod model;
pub mod policy;
pub mod workflow;

pub use event::{ExceptionData, Frame, GroupStatus, Level, NewEvent};
