//! Abuse and overload protection that sits between the transports and the handlers: per-key
//! rate limits (`rate`), the browser-origin decision (`cors`), and the per-project policy
//! cache both read (`policy`), the gRPC time limit (`deadline`), and the accept loop with its
//! request-head limits and slow-client protection (`listener`).

pub mod cors;
pub mod deadline;
pub mod listener;
pub mod policy;
pub mod rate;

use std::time::Duration;

pub use rate::RateLimits;

/// Limits on requests and connections, all with defaults.
#[derive(Debug, Clone)]
pub struct LimitsConfig {
    /// Requests per minute per API key, by class of request.
    pub rate: RateLimits,
    /// Largest request head (HTTP/1.1 request line and headers, HTTP/2 header list), in bytes.
    pub max_header_bytes: usize,
    /// A client must send a request's complete headers within this time, or the connection
    /// is closed (slow-client protection).
    pub header_read_timeout: Duration,
    /// A connection with no request in progress for this long is closed gracefully (GOAWAY on
    /// HTTP/2), so idle clients do not keep their places under `max_connections` for good.
    /// HTTP/1.1 keep-alive connections are closed sooner, after `header_read_timeout`.
    pub idle_timeout: Duration,
    /// Open connections. Each costs memory whatever it sends, so this bounds the server's
    /// memory however many clients connect: beyond it, new clients wait in the kernel's
    /// accept queue until one closes (idle HTTP/1.1 connections are closed after
    /// `header_read_timeout`).
    pub max_connections: usize,
    /// Requests handled at once, over all connections and HTTP/2 streams (health checks
    /// aside). Beyond it a request is answered 429 / RESOURCE_EXHAUSTED with a retry hint at
    /// once, before it is routed or parsed: an overloaded server spends nothing on the
    /// excess, and what requests in progress hold is bounded.
    pub max_requests: usize,
    /// Origins allowed to call the management API from a browser; empty turns CORS off there.
    /// `*` allows any origin. Browser ingest is governed per project instead.
    pub cors_origins: Vec<String>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            rate: RateLimits::default(),
            max_header_bytes: 64 * 1024,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            max_connections: 1024,
            max_requests: 512,
            cors_origins: Vec::new(),
        }
    }
}

/// The content type of a gRPC or gRPC-Web request; `None` for REST.
pub(crate) fn grpc_content_type(headers: &http::HeaderMap) -> Option<http::HeaderValue> {
    headers
        .get(http::header::CONTENT_TYPE)
        .filter(|v| v.as_bytes().starts_with(b"application/grpc"))
        .cloned()
}

/// `status` as a trailers-only answer with the request's own `content_type`, which gRPC and
/// gRPC-Web clients both read their status from.
pub(crate) fn grpc_answer(
    status: tonic::Status,
    content_type: http::HeaderValue,
) -> axum::response::Response {
    let mut answer = status.into_http::<axum::body::Body>();
    answer
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, content_type);
    answer
}

/// Sentry SDK endpoints: `/api/<project id>/store/` and `/api/<project id>/envelope/`, where the
/// id is a number (Sentry's DSNs) or a UUID, and the crash-report dialog's
/// `/api/embed/error-page/` (its DSN in the query).
pub(crate) fn is_sentry_ingest(path: &str) -> bool {
    if path.trim_end_matches('/') == "/api/embed/error-page" {
        return true;
    }
    let mut parts = path.trim_matches('/').split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("api"), Some(id), Some("store" | "envelope"), None) => {
            (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
                || uuid::Uuid::parse_str(id).is_ok()
        }
        _ => false,
    }
}
