//! MiniAPM (seed document 002): `POST /ingest/errors` and `/ingest/errors/batch` onto
//! `CaptureService.Capture` / `CaptureBatch`. The client's `fingerprint` is the group key; the
//! body as sent (with `source_context`, `params`, `request_id`) is the stored payload, which
//! every event read returns.

use std::collections::HashMap;

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::post,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

use super::{
    error::ApiError,
    errors_api::{TimeBody, time},
    extract::{Ctx, RawBody, decode, lenient},
};
use crate::{
    error::Error,
    grpc::{
        Api,
        status::{ERROR_DOMAIN, HTTP_STATUS_KEY},
    },
    pb::{self, capture_service_server::CaptureService},
};

pub fn routes() -> Router<Api> {
    Router::new()
        .route("/ingest/errors", post(ingest))
        .route("/ingest/errors/batch", post(ingest_batch))
}

/// Decoded to check its shape (file, lineno and context_line are required); it reaches the
/// store inside the payload as sent.
#[derive(Deserialize)]
#[allow(dead_code)]
struct SourceContext {
    file: String,
    lineno: u32,
    context_line: String,
    #[serde(default)]
    pre_context: Vec<String>,
    #[serde(default)]
    post_context: Vec<String>,
}

#[derive(Deserialize)]
#[allow(dead_code)] // request_id and params are checked for shape and kept in the payload
struct ErrorBody {
    exception_class: String,
    message: String,
    backtrace: Vec<String>,
    fingerprint: String,
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    params: Option<Map<String, Value>>,
    #[serde(default)]
    timestamp: Option<TimeBody>,
    #[serde(default)]
    source_context: Option<SourceContext>,
}

#[derive(Deserialize)]
struct BatchBody {
    /// Each item as sent: it is decoded on its own and stored as its payload verbatim.
    errors: Vec<Box<serde_json::value::RawValue>>,
}

fn capture_request(raw: &[u8]) -> Result<pb::CaptureRequest, Error> {
    let ErrorBody {
        exception_class,
        message,
        backtrace,
        fingerprint,
        request_id: _,
        user_id,
        params: _,
        timestamp,
        source_context,
    } = decode(raw)?;
    for (field, v) in [
        ("exception_class", &exception_class),
        ("fingerprint", &fingerprint),
    ] {
        if v.trim().is_empty() {
            return Err(Error::required(field));
        }
    }
    if let Some(SourceContext { file, .. }) = &source_context
        && file.trim().is_empty()
    {
        return Err(Error::required("source_context.file"));
    }
    Ok(pb::CaptureRequest {
        exception: Some(pb::ExceptionInput {
            r#type: exception_class,
            message,
            stacktrace_lines: backtrace,
            ..Default::default()
        }),
        user_id: user_id.unwrap_or_default(),
        fingerprint: vec![fingerprint],
        timestamp: timestamp.map(|t| time("timestamp", t)).transpose()?,
        tags: HashMap::new(),
        payload_json: crate::domain::text_from_bytes(raw),
        ..Default::default()
    })
}

/// 202 with no body, as documented.
async fn ingest(
    State(api): State<Api>,
    ctx: Ctx,
    RawBody(raw): RawBody,
) -> Result<Response, ApiError> {
    let req = lenient(&raw, capture_request)?;
    drop(raw);
    api.capture(ctx.request(req)).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// 202 when at least one error was stored, with the outcome of each; when none was, 500 with
/// the error body naming each failure (`errors[i].<field>` in `details`).
async fn ingest_batch(
    State(api): State<Api>,
    ctx: Ctx,
    RawBody(raw): RawBody,
) -> Result<Response, ApiError> {
    let BatchBody { errors } = lenient(&raw, decode)?;
    if errors.is_empty() {
        return Err(
            Error::invalid_field("errors", "must hold at least one error", "REQUIRED").into(),
        );
    }
    // Items that do not decode are answered here; the rest go to CaptureBatch together.
    let mut outcomes: Vec<Option<Value>> = Vec::with_capacity(errors.len());
    let mut requests = Vec::new();
    let mut slots = Vec::new();
    for (i, item) in errors.iter().enumerate() {
        match lenient(item.get().as_bytes(), capture_request) {
            Ok(r) => {
                requests.push(r);
                slots.push(i);
                outcomes.push(None);
            }
            Err(e) => outcomes.push(Some(rejected(
                i,
                e.code(),
                &e.public_message(),
                &e.violations()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
            ))),
        }
    }
    // The body and its items are decoded: let them go before waiting for the commit.
    drop(errors);
    drop(raw);
    if !requests.is_empty() {
        let pb::CaptureBatchResponse { results, .. } = api
            .capture_batch(ctx.request(pb::CaptureBatchRequest { events: requests }))
            .await?
            .into_inner();
        for (slot, r) in slots.into_iter().zip(results) {
            outcomes[slot] = Some(match r.outcome {
                Some(pb::capture_batch_result::Outcome::Captured(c)) => json!({
                    "index": slot, "status": "accepted", "group_id": c.group_id, "event_id": c.event_id,
                }),
                Some(pb::capture_batch_result::Outcome::Error(e)) => {
                    rejected(slot, &e.code, &e.message, &e.fields)
                }
                None => rejected(slot, "INTERNAL_ERROR", "no outcome", &[]),
            });
        }
    }
    let outcomes: Vec<Value> = outcomes.into_iter().flatten().collect();
    let accepted = outcomes
        .iter()
        .filter(|o| o["status"] == "accepted")
        .count();
    if accepted == 0 {
        return Err(all_failed(&outcomes).into());
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "accepted": accepted,
            "rejected": outcomes.len() - accepted,
            "results": outcomes,
        })),
    )
        .into_response())
}

fn rejected(index: usize, code: &str, message: &str, fields: &[String]) -> Value {
    json!({"index": index, "status": "rejected", "error": {"code": code, "message": message, "fields": fields}})
}

/// The 500 MiniAPM documents for a batch of which nothing was stored, naming every failure.
fn all_failed(outcomes: &[Value]) -> Status {
    let mut details = ErrorDetails::new();
    details.set_error_info(
        "BATCH_FAILED",
        ERROR_DOMAIN,
        HashMap::from([(HTTP_STATUS_KEY.to_owned(), "500".to_owned())]),
    );
    details.set_bad_request(
        outcomes
            .iter()
            .map(|o| FieldViolation {
                field: format!("errors[{}]", o["index"]),
                description: o["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                reason: o["error"]["code"].as_str().unwrap_or_default().to_owned(),
                localized_message: None,
            })
            .collect::<Vec<_>>(),
    );
    Status::with_error_details(
        Code::Internal,
        format!("none of the {} errors could be ingested", outcomes.len()),
        details,
    )
}
