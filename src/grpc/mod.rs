//! The gRPC services: the one entry point of every operation. REST calls these same trait
//! methods; nothing here knows REST exists. Each method checks its scope, converts the
//! request to domain values, calls `ingest` or `store`, and converts the answer back.

mod access;
mod alerts;
mod capture;
pub use capture::PayloadJson;
pub mod convert;
mod groups;
mod insights;
mod projects;
mod releases;
mod security;
pub mod sentry;
mod settings;
pub mod status;

use std::time::Duration;

use std::sync::Arc;

use crate::{
    auth::Authenticator,
    ingest::{Ingest, sourcemaps::SourceMaps},
    store::Store,
};

/// State shared by the services: one `Arc`, so the clone every REST request and every
/// middleware makes is one counter increment, not one per field.
#[derive(Clone)]
pub struct Api(Arc<ApiState>);

impl Api {
    pub fn new(state: ApiState) -> Api {
        Api(Arc::new(state))
    }
}

impl std::ops::Deref for Api {
    type Target = ApiState;

    fn deref(&self) -> &ApiState {
        &self.0
    }
}

/// What the services share (reached through `Api`).
pub struct ApiState {
    pub store: Store,
    pub ingest: Ingest,
    /// Events per page an export reads and sends at a time.
    pub export_page: u64,
    /// Longest an export stream may wait for its reader before it gives up.
    pub export_send_timeout: Duration,
    /// The server's own counters and figures (monitoring, performance, uptime).
    pub monitor: std::sync::Arc<crate::monitor::Monitor>,
    /// The key cache, cleared when keys, members or projects change.
    pub authn: Arc<Authenticator>,
    /// The releases' source maps, decoded once for the events that arrive and are read.
    pub sourcemaps: Arc<SourceMaps>,
    /// Events the projects' inbound filters dropped, until they are counted in the database.
    pub filtered: Arc<crate::ingest::inbound::Filtered>,
}
