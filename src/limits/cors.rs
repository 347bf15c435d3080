//! CORS. Browser ingest (`/v1/errors/capture*`, `CaptureService` over gRPC-Web, Sentry's
//! store/envelope) is open to the
//! origins each project allows (any origin until a project lists some); the management API
//! answers browsers only when `cors_origins` is configured, and is off by default.
//!
//! A preflight carries no API key, so it cannot name the project: ingest preflights are
//! answered for any origin and the real request, which has a key, is checked against its
//! project's list and refused with 403 when the origin is not on it.

use std::sync::Arc;

use axum::{
    extract::Request,
    response::{IntoResponse, Response},
};
use http::{HeaderValue, Method, StatusCode, header};

use super::{is_sentry_ingest, policy};
use crate::{auth::Authn, domain::policy::ProjectPolicy, error::Error};

/// Which CORS rules a path falls under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// Endpoints browsers send events to.
    BrowserIngest,
    /// Everything else.
    Management,
}

pub fn surface(path: &str) -> Surface {
    if path.starts_with("/v1/errors/capture")
        || path.starts_with("/faultline.v1.CaptureService/")
        || is_sentry_ingest(path)
    {
        Surface::BrowserIngest
    } else {
        Surface::Management
    }
}

/// The one origin decision. `project` is the caller's project policy; `None` when the
/// request carries no key (a preflight).
pub fn origin_allowed(
    surface: Surface,
    origin: &str,
    project: Option<&ProjectPolicy>,
    management_origins: &[String],
) -> bool {
    match surface {
        Surface::BrowserIngest => match project {
            None => true,
            Some(p) if p.allowed_origins.is_empty() => true,
            Some(p) => matches_any(&p.allowed_origins, origin),
        },
        Surface::Management => matches_any(management_origins, origin),
    }
}

/// `*`, an exact origin (`https://app.example.com`), or a subdomain wildcard
/// (`https://*.example.com`).
fn matches_any(list: &[String], origin: &str) -> bool {
    let origin = origin.trim_end_matches('/');
    list.iter().any(|entry| {
        let entry = entry.trim().trim_end_matches('/');
        if entry == "*" || entry.eq_ignore_ascii_case(origin) {
            return true;
        }
        match entry.split_once("://*.") {
            Some((scheme, domain)) => origin.split_once("://").is_some_and(|(s, host)| {
                s.eq_ignore_ascii_case(scheme)
                    && host.len() > domain.len() + 1
                    && host
                        .to_ascii_lowercase()
                        .ends_with(&format!(".{}", domain.to_ascii_lowercase()))
            }),
            None => false,
        }
    })
}

/// Management origins from the configuration.
pub struct Cors {
    pub management_origins: Vec<String>,
}

// Sentry browser SDKs send `content-encoding`, `sentry-trace` and `baggage` as well.
const ALLOW_HEADERS: &str = "authorization, x-api-key, content-type, content-encoding, x-request-id, traceparent, x-sentry-auth, sentry-trace, baggage, x-faultline-project, x-grpc-web, grpc-timeout";
const EXPOSE_HEADERS: &str = "x-request-id, retry-after, x-ratelimit-limit, x-ratelimit-remaining, x-ratelimit-reset, x-sentry-rate-limits";

pub(super) fn allow(resp: &mut Response, origin: &HeaderValue) {
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE_HEADERS),
    );
    h.append(header::VARY, HeaderValue::from_static("origin"));
}

pub async fn around<F, Fut>(cors: &Cors, req: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let Some(origin) = req.headers().get(header::ORIGIN).cloned() else {
        return next(req).await;
    };
    let origin_text = origin.to_str().unwrap_or("");
    let surface = surface(req.uri().path());
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        if !origin_allowed(surface, origin_text, None, &cors.management_origins) {
            // No CORS headers: the browser refuses the call.
            return next(req).await;
        }
        let mut resp = StatusCode::NO_CONTENT.into_response();
        allow(&mut resp, &origin);
        let h = resp.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(match surface {
                Surface::BrowserIngest => "POST, OPTIONS",
                Surface::Management => "GET, POST, PUT, PATCH, DELETE, OPTIONS",
            }),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        return resp;
    }
    let project = match req.extensions().get::<Authn>() {
        Some(Authn::Key(p)) => policy::get(p.project_id).or_else(|| Some(Arc::default())),
        _ => None,
    };
    let allowed = origin_allowed(
        surface,
        origin_text,
        project.as_deref(),
        &cors.management_origins,
    );
    if !allowed && surface == Surface::BrowserIngest {
        // The key's project does not accept events from this site.
        return crate::rest::error_response(
            &req,
            Error::PermissionDenied(format!(
                "origin {origin_text} may not send events to this project"
            )),
        );
    }
    let mut resp = next(req).await;
    if allowed {
        allow(&mut resp, &origin);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_rules() {
        let p = ProjectPolicy {
            allowed_origins: vec![
                "https://app.example.com".into(),
                "https://*.shop.test".into(),
            ],
            ..Default::default()
        };
        let none: Vec<String> = Vec::new();
        let ingest = Surface::BrowserIngest;
        assert!(origin_allowed(ingest, "https://evil.test", None, &none));
        assert!(origin_allowed(
            ingest,
            "https://evil.test",
            Some(&ProjectPolicy::default()),
            &none
        ));
        assert!(origin_allowed(
            ingest,
            "https://app.example.com",
            Some(&p),
            &none
        ));
        assert!(origin_allowed(
            ingest,
            "https://eu.shop.test",
            Some(&p),
            &none
        ));
        assert!(!origin_allowed(
            ingest,
            "https://shop.test",
            Some(&p),
            &none
        ));
        assert!(!origin_allowed(
            ingest,
            "http://eu.shop.test",
            Some(&p),
            &none
        ));
        assert!(!origin_allowed(
            ingest,
            "https://evil.test",
            Some(&p),
            &none
        ));
        assert!(!origin_allowed(
            Surface::Management,
            "https://app.example.com",
            Some(&p),
            &none
        ));
        assert!(origin_allowed(
            Surface::Management,
            "https://x.test",
            None,
            &["*".into()]
        ));
        assert_eq!(surface("/v1/errors/capture/batch"), ingest);
        assert_eq!(surface("/api/7/envelope/"), ingest);
        assert_eq!(surface("/faultline.v1.CaptureService/Capture"), ingest);
        assert_eq!(surface("/v1/errors/list"), Surface::Management);
    }
}
