//! Per-API-key rate limits with governor (GCRA): one middleware after authentication, for
//! REST and gRPC alike. Each request is put in one class (ingest, analytics, general) by its
//! path — gRPC paths name the method — and counted against its key's quota for that class.
//! Every limited answer carries `X-RateLimit-Limit/Remaining/Reset` (gRPC: the same names in
//! the response metadata); a refused request gets 429 + `Retry-After`, or
//! `RESOURCE_EXHAUSTED` with `RetryInfo`.

use std::{
    collections::HashMap,
    num::NonZeroU32,
    sync::{Arc, RwLock},
    time::Duration,
};

use axum::{extract::Request, response::Response};
use governor::{
    Quota, clock::Clock, middleware::StateInformationMiddleware,
    state::keyed::DefaultKeyedStateStore,
};
use http::{HeaderName, HeaderValue};
use uuid::Uuid;

use super::{grpc_answer, grpc_content_type, is_sentry_ingest, policy};
use crate::{auth::Authn, error::Error};

pub const LIMIT_HEADER: &str = "x-ratelimit-limit";
pub const REMAINING_HEADER: &str = "x-ratelimit-remaining";
pub const RESET_HEADER: &str = "x-ratelimit-reset";

/// Requests per minute per API key; 0 turns a class's limit off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    pub ingest_per_minute: u32,
    pub analytics_per_minute: u32,
    pub general_per_minute: u32,
}

impl Default for RateLimits {
    /// The documented figures.
    fn default() -> Self {
        Self {
            ingest_per_minute: 1000,
            analytics_per_minute: 100,
            general_per_minute: 500,
        }
    }
}

/// The kinds of request that have their own quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Sending events.
    Ingest,
    /// Searches, exports, statistics and trends: the expensive reads.
    Analytics,
    /// Everything else an API key can call.
    General,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Ingest => "ingest",
            Class::Analytics => "analytics",
            Class::General => "general",
        }
    }
}

/// The one place a request is classed, by its method and path (REST route or gRPC
/// `/package.Service/Method`).
pub fn classify(method: &http::Method, path: &str) -> Class {
    const INGEST_PREFIXES: &[&str] = &[
        "/faultline.v1.CaptureService/",
        "/v1/errors/capture",
        "/v1/errors/message",
        "/ingest/errors",
        "/api/v1/logs/report",
    ];
    const ANALYTICS_PREFIXES: &[&str] = &[
        "/faultline.v1.GroupService/SearchEvents",
        "/faultline.v1.GroupService/ExportEvents",
        "/faultline.v1.AnalyticsService/",
        "/v1/errors/search",
        "/v1/errors/export",
        "/api/stats",
        "/api/analytics/",
    ];
    let path = path.trim_end_matches('/');
    if INGEST_PREFIXES.iter().any(|p| path.starts_with(p))
        || (path == "/api/errors" && method == http::Method::POST)
        || is_sentry_ingest(path)
    {
        Class::Ingest
    } else if ANALYTICS_PREFIXES.iter().any(|p| path.starts_with(p)) {
        Class::Analytics
    } else {
        Class::General
    }
}

type Keyed = governor::RateLimiter<
    Uuid,
    DefaultKeyedStateStore<Uuid>,
    governor::clock::DefaultClock,
    StateInformationMiddleware,
>;

/// The outcome of counting one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Requests per minute allowed.
    pub limit: u32,
    /// Requests that could be made right now.
    pub remaining: u32,
    /// Until the quota is whole again.
    pub reset: Duration,
    /// Set when the request is refused: when to try again.
    pub retry_after: Option<Duration>,
}

/// Keyed limiters, one per (class, quota): keys of projects with an override share the
/// limiter of their figure.
pub struct RateLimiter {
    defaults: RateLimits,
    limiters: RwLock<HashMap<(Class, NonZeroU32), Arc<Keyed>>>,
}

impl RateLimiter {
    pub fn new(defaults: RateLimits) -> Arc<Self> {
        Arc::new(Self {
            defaults,
            limiters: RwLock::new(HashMap::new()),
        })
    }

    /// Requests per minute for a key of `project_id` in `class` (0: unlimited).
    pub fn per_minute(&self, class: Class, project_id: Uuid) -> u32 {
        let o = policy::get(project_id);
        let o = o.as_ref().map(|p| &p.rate);
        match class {
            Class::Ingest => o
                .and_then(|r| r.ingest_per_minute)
                .unwrap_or(self.defaults.ingest_per_minute),
            Class::Analytics => o
                .and_then(|r| r.analytics_per_minute)
                .unwrap_or(self.defaults.analytics_per_minute),
            Class::General => o
                .and_then(|r| r.general_per_minute)
                .unwrap_or(self.defaults.general_per_minute),
        }
    }

    fn limiter(&self, class: Class, per_minute: NonZeroU32) -> Option<Arc<Keyed>> {
        if let Some(l) = self.limiters.read().ok()?.get(&(class, per_minute)) {
            return Some(l.clone());
        }
        let mut map = self.limiters.write().ok()?;
        Some(
            map.entry((class, per_minute))
                .or_insert_with(|| {
                    Arc::new(
                        governor::RateLimiter::keyed(Quota::per_minute(per_minute))
                            .with_middleware(),
                    )
                })
                .clone(),
        )
    }

    /// Counts one request of `key_id`; `None` when the class is unlimited.
    pub fn check(&self, class: Class, key_id: Uuid, per_minute: u32) -> Option<Verdict> {
        let limit = NonZeroU32::new(per_minute)?;
        let limiter = self.limiter(class, limit)?;
        let interval = Duration::from_secs(60) / limit.get();
        Some(match limiter.check_key(&key_id) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Verdict {
                    limit: limit.get(),
                    remaining,
                    reset: interval * (limit.get() - remaining.min(limit.get())),
                    retry_after: None,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(limiter.clock().now());
                Verdict {
                    limit: limit.get(),
                    remaining: 0,
                    reset: wait + interval * (limit.get() - 1),
                    retry_after: Some(wait),
                }
            }
        })
    }

    /// Forgets keys whose quota is whole again, so the maps hold only active keys.
    pub fn shrink(&self) {
        if let Ok(map) = self.limiters.read() {
            for l in map.values() {
                l.retain_recent();
            }
        }
    }
}

/// Whole seconds, rounded up: a client told 0 would retry at once.
fn secs_up(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// "Retry after `wait`": 429 in the error format of the API the request called, or for gRPC
/// and gRPC-Web a trailers-only RESOURCE_EXHAUSTED with `RetryInfo`; with `Retry-After`, and
/// for Sentry SDKs (which back off by it) `X-Sentry-Rate-Limits`. The request's body is read
/// and dropped after the answer (`drain_later`).
pub(crate) fn refusal<B>(req: http::Request<B>, message: String, wait: Duration) -> Response
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
{
    let err = Error::Overloaded {
        message,
        retry_after: wait,
    };
    let mut r = match grpc_content_type(req.headers()) {
        Some(content_type) => grpc_answer(tonic::Status::from(err), content_type),
        None => crate::rest::error_response(&req, err),
    };
    // Rounded up: a client told to wait less than the limiter needs is refused again.
    r.headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from(secs_up(wait)));
    if is_sentry_ingest(req.uri().path())
        && let Ok(v) = HeaderValue::from_str(&format!("{}::key", secs_up(wait)))
    {
        r.headers_mut()
            .insert(HeaderName::from_static("x-sentry-rate-limits"), v);
    }
    drain_later(req.into_body());
    r
}

/// The most of a refused request's body `drain_later` reads, in bytes and in time.
const DRAIN_BYTES: usize = 1024 * 1024;
const DRAIN_WITHIN: Duration = Duration::from_secs(5);

/// Reads a refused request's body to its end and drops it, in a task of its own, so the
/// refusal is answered at once and the connection carries on. HTTP/1.1 can then read the
/// client's next request. HTTP/2 would otherwise reset the stream under the body's frames
/// still on their way, and those frames, arriving on a stream it no longer remembers, count
/// against the connection: after 1 024 it closes it ("locally-reset streams reached limit").
/// Past `DRAIN_BYTES` or `DRAIN_WITHIN` the body is dropped, with the reset (HTTP/2) or the
/// closed connection (HTTP/1.1) that brings: a client still sending that much is told to stop.
fn drain_later<B>(body: B)
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
{
    use bytes::Buf;
    use http_body_util::BodyExt;
    tokio::spawn(async move {
        let mut body = std::pin::pin!(body);
        let mut read = 0;
        let drain = async {
            while let Some(Ok(frame)) = body.as_mut().frame().await {
                read += frame.data_ref().map_or(0, |d| d.remaining());
                if read > DRAIN_BYTES {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_WITHIN, drain).await;
    });
}

/// The rate limit (part of the edge layer, `app::edge_layer`). Requests without a valid key
/// are not counted here: they are refused by the handlers (or are public, like health
/// checks).
pub async fn around<F, Fut>(limiter: &RateLimiter, req: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let sentry = is_sentry_ingest(req.uri().path());
    // Whose budget: an API key's, or (Sentry ingest) the DSN public key's, counted under an id
    // derived from it; a DSN key gets the default ingest figure (its project is not known yet).
    let (key_id, project_id) = match req.extensions().get::<Authn>() {
        Some(Authn::Key(p)) => (p.key_id, p.project_id),
        _ if sentry => {
            let Some(public_key) =
                crate::ingest::sentry::auth::key_from_request(req.headers(), req.uri().query())
            else {
                return next(req).await;
            };
            let id = Uuid::from_u128(xxhash_rust::xxh3::xxh3_128(public_key.as_bytes()));
            (id, Uuid::nil())
        }
        _ => return next(req).await,
    };
    let class = classify(req.method(), req.uri().path());
    let per_minute = limiter.per_minute(class, project_id);
    let Some(verdict) = limiter.check(class, key_id, per_minute) else {
        return next(req).await;
    };
    let mut resp = match verdict.retry_after {
        None => next(req).await,
        Some(wait) => refusal(
            req,
            format!(
                "rate limit exceeded: this API key may make {} {} requests per minute; retry in {} s",
                verdict.limit,
                class.as_str(),
                secs_up(wait)
            ),
            wait,
        ),
    };
    let headers = resp.headers_mut();
    for (name, value) in [
        (LIMIT_HEADER, u64::from(verdict.limit)),
        (REMAINING_HEADER, u64::from(verdict.remaining)),
        (RESET_HEADER, secs_up(verdict.reset)),
    ] {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_by_path() {
        const G: http::Method = http::Method::GET;
        const P: http::Method = http::Method::POST;
        assert_eq!(classify(&G, "/v1/errors/capture"), Class::Ingest);
        assert_eq!(classify(&G, "/v1/errors/capture/batch"), Class::Ingest);
        assert_eq!(
            classify(&G, "/faultline.v1.CaptureService/CaptureBatch"),
            Class::Ingest
        );
        assert_eq!(classify(&G, "/api/42/envelope/"), Class::Ingest);
        assert_eq!(classify(&G, "/api/settings/store"), Class::General);
        assert_eq!(classify(&P, "/api/errors"), Class::Ingest);
        assert_eq!(classify(&G, "/v1/errors/search"), Class::Analytics);
        assert_eq!(
            classify(&G, "/faultline.v1.GroupService/SearchEvents"),
            Class::Analytics
        );
        assert_eq!(classify(&G, "/api/analytics/trends"), Class::Analytics);
        assert_eq!(classify(&G, "/v1/errors/list"), Class::General);
        assert_eq!(
            classify(&G, "/faultline.v1.GroupService/ListGroups"),
            Class::General
        );
        assert_eq!(classify(&G, "/api/errors"), Class::General);
        assert_eq!(classify(&G, "/api/errors/123"), Class::General);
        assert_eq!(classify(&G, "/api/settings/api-keys"), Class::General);
    }

    #[test]
    fn counts_down_then_refuses() {
        let l = RateLimiter::new(RateLimits::default());
        let key = Uuid::new_v4();
        let first = l.check(Class::General, key, 3).unwrap();
        assert_eq!(
            (first.limit, first.remaining, first.retry_after),
            (3, 2, None)
        );
        assert_eq!(l.check(Class::General, key, 3).unwrap().remaining, 1);
        assert_eq!(l.check(Class::General, key, 3).unwrap().remaining, 0);
        let refused = l.check(Class::General, key, 3).unwrap();
        assert!(
            refused
                .retry_after
                .is_some_and(|d| d > Duration::ZERO && d <= Duration::from_secs(20))
        );
        // Another key has its own quota; 0 means unlimited.
        assert_eq!(
            l.check(Class::General, Uuid::new_v4(), 3)
                .unwrap()
                .remaining,
            2
        );
        assert!(l.check(Class::General, key, 0).is_none());
    }
}
