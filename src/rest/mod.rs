//! The REST transports: thin transcoders onto the gRPC handlers. Each route decodes the
//! documented JSON into the protobuf request, calls the same trait method a gRPC client
//! would reach, and encodes the documented JSON answer. No queries, no rules here.

mod alerts_api;
mod els_api;
mod error;
mod errors_api;
mod extract;
mod logcenter_api;
mod miniapm_api;
pub mod openapi;
mod projects_api;
mod releases_api;
mod security_api;
mod sentry_api;
mod sentry_releases_api;
mod settings_api;
mod web;

use axum::{Router, extract::DefaultBodyLimit};
use tower_http::timeout::TimeoutLayer;

use crate::{config::Config, error::Error, grpc::Api};
pub use error::{ApiError, error_response};
// Also what the benchmark's null server answers with (`bench/src/null.rs`).
pub use errors_api::capture_json;
pub use extract::decode;

/// Unknown paths: gRPC clients get UNIMPLEMENTED, everyone else the JSON 404.
async fn fallback(headers: http::HeaderMap) -> axum::response::Response {
    use axum::response::IntoResponse;
    let is_grpc = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if is_grpc {
        tonic::Status::unimplemented("unknown service or method")
            .into_http::<axum::body::Body>()
            .into_response()
    } else {
        ApiError::from(Error::NotFound { what: "route" }).into_response()
    }
}

/// The REST routes, with the layers all of them share around the router once (see
/// `app::router`); the scope check runs per route, after routing, as it needs the route.
pub fn router(api: Api, cfg: &Config) -> Router {
    // Each route's scope comes from the one table in auth::routes.
    let enforce =
        axum::middleware::from_fn_with_state(api.store.clone(), crate::auth::routes::enforce_rest);
    // The Error Logging System answers every error, refusals included, in its own envelope:
    // `error::render` chooses it by path (`els_api::is_own_path`).
    let els = els_api::routes()
        .merge(alerts_api::routes())
        .route_layer(enforce.clone());
    let routes = Router::new()
        .merge(errors_api::routes())
        .merge(releases_api::routes())
        .merge(sentry_releases_api::routes())
        .merge(sentry_api::routes())
        .merge(logcenter_api::routes())
        .merge(miniapm_api::routes())
        .merge(projects_api::routes())
        .merge(settings_api::routes())
        .merge(security_api::routes())
        .merge(web::routes())
        .route_layer(enforce)
        .merge(els)
        .fallback(fallback)
        .with_state(api);
    let shared = tower::ServiceBuilder::new()
        .layer(axum::middleware::from_fn(error::render))
        .layer(TimeoutLayer::with_status_code(
            http::StatusCode::GATEWAY_TIMEOUT,
            cfg.request_timeout,
        ))
        .layer(axum::Extension(extract::BodyLimit(cfg.body_limit)))
        .layer(DefaultBodyLimit::max(cfg.body_limit))
        .service(routes);
    Router::new().fallback_service(shared)
}
