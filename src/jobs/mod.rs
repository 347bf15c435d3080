//! Background jobs that run beside the server.

pub mod alerts;
pub mod maintenance;
pub mod retention;
pub mod snooze;
