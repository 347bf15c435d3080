//! The Sentry ingest endpoints, so unchanged Sentry SDKs can send here:
//! `POST /api/<project>/envelope/` and the legacy `POST /api/<project>/store/` (with or without
//! the trailing slash), with CORS for browser SDKs; and `GET /v1/settings/dsn`. Each decodes
//! the HTTP request into the protobuf request and calls the gRPC handler.

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, RawQuery, State},
    http::{HeaderMap, HeaderName, HeaderValue, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{error::ApiError, extract::Ctx};
use crate::{
    error::Error,
    grpc::Api,
    ingest::sentry::{ENVELOPE_MAX, auth::key_from_request},
    pb::{self, capture_service_server::CaptureService, settings_service_server::SettingsService},
};

pub fn routes() -> Router<Api> {
    let ingest = Router::new()
        .route("/api/{project}/envelope/", post(envelope))
        .route("/api/{project}/envelope", post(envelope))
        .route("/api/{project}/store/", post(store))
        .route("/api/{project}/store", post(store))
        // CORS for browser SDKs is answered by `limits::cors` for every ingest route.
        .layer(DefaultBodyLimit::max(ENVELOPE_MAX));
    Router::new()
        .merge(ingest)
        .route("/v1/settings/dsn", get(dsn))
}

async fn envelope(
    state: State<Api>,
    path: Path<String>,
    query: RawQuery,
    ctx: Ctx,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    capture(
        state,
        path,
        query,
        ctx,
        headers,
        body,
        pb::SentryPayloadFormat::Envelope,
    )
    .await
}

async fn store(
    state: State<Api>,
    path: Path<String>,
    query: RawQuery,
    ctx: Ctx,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    capture(
        state,
        path,
        query,
        ctx,
        headers,
        body,
        pb::SentryPayloadFormat::Event,
    )
    .await
}

async fn capture(
    State(api): State<Api>,
    Path(project): Path<String>,
    RawQuery(query): RawQuery,
    ctx: Ctx,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
    format: pb::SentryPayloadFormat,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(r) if r.status() == http::StatusCode::PAYLOAD_TOO_LARGE => {
            return ApiError::from(Error::PayloadTooLarge {
                limit: ENVELOPE_MAX,
            })
            .into_response();
        }
        Err(r) => return ApiError::from(Error::malformed("body", r.body_text())).into_response(),
    };
    let req = pb::CaptureEnvelopeRequest {
        body: body.into(),
        content_encoding: headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
        format: format as i32,
        project,
        sentry_key: key_from_request(&headers, query.as_deref()).unwrap_or_default(),
    };
    match api.capture_envelope(ctx.request(req)).await {
        Ok(r) => {
            let id = r.into_inner().event_id;
            let body = if id.is_empty() {
                json!({})
            } else {
                json!({ "id": id })
            };
            Json(body).into_response()
        }
        Err(status) => {
            let mut resp = ApiError::from(status).into_response();
            // Sentry SDKs back off on this header (all categories, the whole organisation).
            if resp.status() == http::StatusCode::TOO_MANY_REQUESTS {
                let secs = resp
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("1")
                    .to_owned();
                if let Ok(v) = HeaderValue::from_str(&format!("{secs}::organization")) {
                    resp.headers_mut()
                        .insert(HeaderName::from_static("x-sentry-rate-limits"), v);
                }
            }
            resp
        }
    }
}

#[derive(Deserialize)]
struct DsnQuery {
    #[serde(default)]
    host: String,
}

async fn dsn(
    State(api): State<Api>,
    ctx: Ctx,
    query: axum::extract::Query<DsnQuery>,
) -> Result<Json<Value>, ApiError> {
    let r = api
        .get_dsn(ctx.request(pb::GetDsnRequest { host: query.0.host }))
        .await?
        .into_inner();
    let pb::GetDsnResponse {
        dsn,
        public_key,
        project_number,
    } = r;
    Ok(Json(json!({
        "dsn": dsn,
        "public_key": public_key,
        "project_id": project_number,
    })))
}
