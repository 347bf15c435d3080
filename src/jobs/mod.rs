//! Background jobs that run beside the server.

pub mod maintenance;
pub mod retention;
