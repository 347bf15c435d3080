//! The Sentry ingest endpoints, so unchanged Sentry SDKs can send here:
//! `POST /api/<project>/envelope/` and the legacy `POST /api/<project>/store/` (with or without
//! the trailing slash), with CORS for browser SDKs; the crash-report dialog
//! `Sentry.showReportDialog()` loads and posts to (`/api/embed/error-page/`); and `GET
//! /v1/settings/dsn`. Each decodes the HTTP request into the protobuf request and calls the
//! gRPC handler.

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
    domain::feedback::NewReport,
    error::Error,
    grpc::Api,
    ingest::sentry::{
        ENVELOPE_MAX,
        auth::{key_from_request, project_from_dsn},
        event::parse_event_id,
    },
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
        .route(
            "/api/embed/error-page/",
            get(report_dialog).post(report_dialog_submit),
        )
        .route(
            "/api/embed/error-page",
            get(report_dialog).post(report_dialog_submit),
        )
        .route("/v1/settings/dsn", get(dsn))
}

/// The crash-report dialog's script (`report_dialog.js`): it reads its options from its own
/// address.
const REPORT_DIALOG: &str = include_str!("report_dialog.js");

/// The `dsn` and `eventId` of the dialog's query: the DSN as given and the event id as 32 hex
/// digits. 422 when either is missing, 400 when unreadable.
fn dialog_query(query: Option<&str>) -> Result<(String, String), Error> {
    let mut dsn = String::new();
    let mut event_id = String::new();
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match &*k {
            "dsn" => dsn = v.trim().to_owned(),
            "eventId" => event_id = v.trim().to_owned(),
            _ => {}
        }
    }
    if dsn.is_empty() {
        return Err(Error::required("dsn"));
    }
    if project_from_dsn(&dsn).is_none() {
        return Err(Error::malformed(
            "dsn",
            "must be a DSN: scheme://key@host/project",
        ));
    }
    if event_id.is_empty() {
        return Err(Error::required("eventId"));
    }
    let event_id = parse_event_id(&event_id)
        .ok_or_else(|| Error::malformed("eventId", "must be an event id (32 hex digits)"))?;
    Ok((dsn, event_id.simple().to_string()))
}

async fn report_dialog(RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    dialog_query(query.as_deref())?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        REPORT_DIALOG,
    )
        .into_response())
}

/// The dialog's form (`name`, `email`, `comments`), as the `user_report` item of an envelope
/// about the query's event, authenticated by the public key of the query's DSN (or as the
/// other Sentry routes: `X-Sentry-Auth`, an ingest API key), as Sentry SDKs send one; a later
/// report about the same event replaces it.
async fn report_dialog_submit(
    State(api): State<Api>,
    RawQuery(query): RawQuery,
    ctx: Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (dsn, event_id) = dialog_query(query.as_deref())?;
    let mut form = std::collections::HashMap::new();
    for (k, v) in form_urlencoded::parse(&body) {
        form.insert(k.into_owned(), v.into_owned());
    }
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    let (name, email, comments) = (field("name"), field("email"), field("comments"));
    // Refused by field, as the native feedback route refuses it, rather than left out.
    NewReport::new(None, name, email, comments, "")?;
    let header = json!({"event_id": event_id, "dsn": dsn});
    let report = json!({"event_id": event_id, "name": name, "email": email, "comments": comments});
    let envelope = format!("{header}\n{}\n{report}\n", json!({"type": "user_report"}));
    let req = pb::CaptureEnvelopeRequest {
        body: envelope.into_bytes(),
        content_encoding: String::new(),
        format: pb::SentryPayloadFormat::Envelope as i32,
        project: project_from_dsn(&dsn).unwrap_or_default(),
        // The DSN's key, unless a header names one.
        sentry_key: key_from_request(&headers, query.as_deref()).unwrap_or_default(),
    };
    let stored = api
        .capture_envelope(ctx.request(req))
        .await?
        .into_inner()
        .feedback_stored;
    if stored == 0 {
        return Err(Error::Internal("the report was not stored".into()).into());
    }
    Ok(Json(json!({})))
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
