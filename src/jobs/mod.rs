//! Background jobs that run beside the server.

pub mod retention;
