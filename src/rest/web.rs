//! What a browser opens: the dashboard at `/` (static files compiled into the binary; it signs
//! in with an API key and calls the REST API like any client) and the API reference at `/docs`
//! (Swagger UI, vendored, over the OpenAPI document served at `/openapi.json`). Nothing here
//! needs a key; the data behind them does.

use axum::{
    Router,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
    routing::get,
};
use utoipa_swagger_ui::{Config, SwaggerUi};

use super::openapi;
use crate::grpc::Api;

const INDEX_HTML: &str = include_str!("dashboard/index.html");
const APP_JS: &str = include_str!("dashboard/app.js");
const APP_CSS: &str = include_str!("dashboard/app.css");

/// The dashboard loads only its own script and style, talks only to this server and may not
/// be framed; values from events can therefore never run as script even if one slipped into
/// the page as markup (the script only ever inserts text).
const DASHBOARD_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

pub fn routes() -> Router<Api> {
    let dashboard = Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/ui/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/ui/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        );
    match serde_json::from_str(openapi::SPEC) {
        // `/docs` redirects to `/docs/`; `/docs/{*rest}` serves Swagger UI's files.
        // Swagger UI would send the document to validator.swagger.io: it stays here.
        Ok(spec) => dashboard.merge(
            SwaggerUi::new("/docs")
                .external_url_unchecked("/openapi.json", spec)
                .config(Config::new(["/openapi.json"]).validator_url("none")),
        ),
        // The unit tests in `openapi` parse the document, so this is not expected to happen.
        Err(e) => {
            tracing::error!(error = %e, "the OpenAPI document does not parse: /docs is not served");
            dashboard
        }
    }
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(DASHBOARD_CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Served from the binary: a new version must be fetched after an upgrade.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}
