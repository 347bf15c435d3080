//! Log Center (seed document 001): `POST /api/v1/logs/report` onto `CaptureService.Capture`,
//! and the fix workflow onto `GroupService.GetGroup` / `TransitionWorkflow`.
//!
//! Log Center groups by MD5(project_id + type + file + line). `project_id` names the
//! Faultline project (`CaptureRequest.project`; the Capture handler finds it, or creates it
//! when the key may), and groups live in one project, so type, file and line are the client
//! fingerprint: reports that share all four share a group, whether they name the project by
//! name or by id.

use axum::{
    Json, Router,
    extract::{Path, State},
    routing::{get, post, put},
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{
    error::ApiError,
    errors_api::{TimeBody, status_json, time, time_json},
    extract::{ApiJson, Ctx, RawBody, decode, lenient},
};
use crate::{
    domain::workflow::WorkflowStage,
    error::Error,
    grpc::{Api, convert},
    pb::{
        self, capture_service_server::CaptureService, group_service_server::GroupService,
        settings_service_server::SettingsService,
    },
};

type ApiResult = Result<Json<Value>, ApiError>;

pub fn routes() -> Router<Api> {
    Router::new()
        .route("/api/v1/logs/report", post(report))
        .route("/api/v1/logs/{id}", get(get_log))
        .route("/api/v1/logs/{id}/status", put(set_status))
        .route("/v1/errors/ingest_policy/get", get(ingest_policy_get))
        .route("/v1/errors/ingest_policy/set", put(ingest_policy_set))
}

/// A stack trace as Log Center clients send it: lines or one text.
#[derive(Deserialize)]
#[serde(untagged)]
enum StackTrace {
    Lines(Vec<String>),
    Text(String),
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "type")]
    kind: String,
    message: String,
    file_path: String,
    line_number: i64,
    stack_trace: StackTrace,
}

#[derive(Deserialize)]
struct ReportBody {
    project_id: String,
    environment: String,
    level: String,
    #[serde(default)]
    timestamp: Option<TimeBody>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    commit_hash: Option<String>,
    error: ErrorBody,
    #[serde(default)]
    context: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
struct StatusBody {
    status: String,
}

/// ERROR, WARNING and CRITICAL in any case; CRITICAL is Faultline's fatal.
fn level(s: &str) -> Result<pb::Level, Error> {
    match s.trim().to_ascii_uppercase().as_str() {
        "ERROR" => Ok(pb::Level::Error),
        "WARNING" => Ok(pb::Level::Warning),
        "CRITICAL" => Ok(pb::Level::Fatal),
        _ => Err(Error::invalid_field(
            "level",
            "must be one of ERROR, WARNING, CRITICAL",
            "INVALID_ENUM",
        )),
    }
}

fn required(field: &str, v: &str) -> Result<(), Error> {
    if v.trim().is_empty() {
        return Err(Error::required(field));
    }
    Ok(())
}

fn report_request(raw: &[u8]) -> Result<pb::CaptureRequest, Error> {
    let ReportBody {
        project_id,
        environment,
        level: lvl,
        timestamp,
        version,
        commit_hash,
        error,
        context,
    } = decode(raw)?;
    let ErrorBody {
        kind,
        message,
        file_path,
        line_number,
        stack_trace,
    } = error;
    required("project_id", &project_id)?;
    required("environment", &environment)?;
    required("error.type", &kind)?;
    required("error.file_path", &file_path)?;
    if line_number < 0 {
        return Err(Error::invalid_field(
            "error.line_number",
            "must not be negative",
            "OUT_OF_RANGE",
        ));
    }
    let level = level(&lvl)?;
    let mut exception = pb::ExceptionInput {
        r#type: kind.clone(),
        message,
        ..Default::default()
    };
    match stack_trace {
        StackTrace::Lines(l) => exception.stacktrace_lines = l,
        StackTrace::Text(t) => exception.stacktrace = t,
    }
    let mut tags = std::collections::HashMap::from([("project".to_owned(), project_id.clone())]);
    if let Some(c) = commit_hash.as_deref().filter(|c| !c.trim().is_empty()) {
        tags.insert("commit".to_owned(), c.trim().to_owned());
    }
    let user_id = context
        .as_ref()
        .and_then(|c| c.get("user_id"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Ok(pb::CaptureRequest {
        exception: Some(exception),
        level: level as i32,
        release: version.unwrap_or_default(),
        environment,
        user_id,
        tags,
        fingerprint: vec![
            "logcenter".to_owned(),
            kind,
            file_path,
            line_number.to_string(),
        ],
        timestamp: timestamp.map(|t| time("timestamp", t)).transpose()?,
        project: project_id,
        payload_json: crate::domain::text_from_bytes(raw),
        ..Default::default()
    })
}

/// `{"status":"ok"|"duplicate","id","fingerprint","is_new"}`: `id` is the group (the
/// deduplicated error), `is_new` whether this report created it.
async fn report(State(api): State<Api>, ctx: Ctx, RawBody(raw): RawBody) -> ApiResult {
    let req = lenient(&raw, report_request)?;
    let pb::CaptureResponse {
        event_id,
        group_id,
        fingerprint,
        new_group,
    } = api.capture(ctx.request(req)).await?.into_inner();
    Ok(Json(json!({
        "status": if new_group { "ok" } else { "duplicate" },
        "id": group_id,
        "event_id": event_id,
        "fingerprint": fingerprint,
        "is_new": new_group,
    })))
}

fn log_json(g: pb::Group) -> Value {
    let pb::Group {
        id,
        project_id: _,
        fingerprint,
        title,
        culprit,
        level: _,
        status,
        regressed,
        count,
        first_seen,
        last_seen,
        grouping_version: _,
        workflow_stage,
        ignored_until: _,
        ignored_until_count: _,
        last_release: _,
        resolved_in_release: _,
        first_release: _,
        assignee: _,
        ignored_until_user_count: _,
        ignored_until_rate: _,
        ignored_until_user_rate: _,
        ignored_until_escalating: _,
    } = g;
    json!({
        "id": id,
        "fingerprint": fingerprint,
        "title": title,
        "culprit": culprit,
        "status": convert::stage_name(workflow_stage),
        "resolution": status_json(status),
        "regressed": regressed,
        "count": count,
        "first_seen": time_json(first_seen),
        "last_seen": time_json(last_seen),
    })
}

async fn get_log(State(api): State<Api>, ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    let group = api
        .get_group(ctx.request(pb::GetGroupRequest { group_id: id }))
        .await?
        .into_inner()
        .group;
    Ok(Json(group.map(log_json).unwrap_or(Value::Null)))
}

/// `{"status": "<stage>"}` → the group with its new stage and the stage it left.
async fn set_status(
    State(api): State<Api>,
    ctx: Ctx,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<StatusBody>,
) -> ApiResult {
    let StatusBody { status } = body;
    let stage = WorkflowStage::parse(&status).ok_or_else(|| {
        Error::invalid_field(
            "status",
            "must be one of NEW, VERIFYING, CANNOT_REPRODUCE, PENDING_FIX, FIXING, FIXED, VERIFIED, DEPLOYED, FIX_FAILED",
            "INVALID_ENUM",
        )
    })?;
    let pb::TransitionWorkflowResponse {
        group,
        previous_stage,
    } = api
        .transition_workflow(ctx.request(pb::TransitionWorkflowRequest {
            group_id: id,
            stage: convert::stage_to_pb(stage) as i32,
        }))
        .await?
        .into_inner();
    let mut v = group.map(log_json).unwrap_or_else(|| json!({}));
    v["previous_status"] = json!(convert::stage_name(previous_stage));
    Ok(Json(v))
}

#[derive(Deserialize)]
struct IngestPolicyBody {
    anonymous_loopback_ingest: bool,
}

fn policy_json(p: Option<pb::IngestPolicy>) -> Value {
    let pb::IngestPolicy {
        anonymous_loopback_ingest,
    } = p.unwrap_or_default();
    json!({ "anonymous_loopback_ingest": anonymous_loopback_ingest })
}

async fn ingest_policy_get(State(api): State<Api>, ctx: Ctx) -> ApiResult {
    let pb::GetIngestPolicyResponse { policy } = api
        .get_ingest_policy(ctx.request(pb::GetIngestPolicyRequest {}))
        .await?
        .into_inner();
    Ok(Json(policy_json(policy)))
}

/// `{"anonymous_loopback_ingest": true|false}`: lets Log Center clients on the same host
/// report without a key (admin scope needed to change it).
async fn ingest_policy_set(
    State(api): State<Api>,
    ctx: Ctx,
    ApiJson(body): ApiJson<IngestPolicyBody>,
) -> ApiResult {
    let IngestPolicyBody {
        anonymous_loopback_ingest,
    } = body;
    let pb::SetIngestPolicyResponse { policy } = api
        .set_ingest_policy(ctx.request(pb::SetIngestPolicyRequest {
            anonymous_loopback_ingest,
        }))
        .await?
        .into_inner();
    Ok(Json(policy_json(policy)))
}
