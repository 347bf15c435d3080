//! A project's security policy: per-key rate-limit overrides, extra field names to scrub, and
//! the browser origins allowed to send events. Pure data; `limits::policy` caches it.

use serde::{Deserialize, Serialize};

/// Most extra scrub fields or allowed origins a project may list.
pub const POLICY_LIST_MAX: usize = 100;
/// Longest scrub field name or origin accepted, in bytes.
pub const POLICY_ITEM_MAX: usize = 256;

/// Requests per minute per API key for each class of request; `None` keeps the server default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateOverrides {
    pub ingest_per_minute: Option<u32>,
    pub analytics_per_minute: Option<u32>,
    pub general_per_minute: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectPolicy {
    pub rate: RateOverrides,
    /// Field names scrubbed in addition to the built-in list (matched like the built-ins).
    pub scrub_fields: Vec<String>,
    /// Origins allowed to send events from a browser; empty allows any origin.
    pub allowed_origins: Vec<String>,
    /// Which events from Sentry SDKs are dropped when they arrive.
    pub inbound: super::inbound::InboundFilters,
}
