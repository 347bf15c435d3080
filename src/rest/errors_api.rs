//! `/v1/errors/*`: the native REST API (seed document 000), sixteen routes onto
//! `CaptureService`, `GroupService` and `SettingsService`.

use std::collections::BTreeMap;

use axum::{
    Json, Router,
    body::Body,
    extract::{Path, RawQuery, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{delete, get, post, put},
};
use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{
    error::ApiError,
    extract::{ApiJson, Ctx, RawBody, decode, lenient},
};
use crate::{
    domain::{GroupStatus, Level},
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
        .route("/v1/errors/capture", post(capture))
        .route("/v1/errors/capture/batch", post(capture_batch))
        .route("/v1/errors/message", post(message))
        .route("/v1/errors/list", get(list))
        .route("/v1/errors/search", get(search))
        .route("/v1/errors/get/{event_id}", get(get_event))
        .route("/v1/errors/groups", get(groups))
        .route(
            "/v1/errors/group_detail/{error_group_id}",
            get(group_detail),
        )
        .route("/v1/errors/events/{error_group_id}", get(group_events))
        .route("/v1/errors/resolve/{error_group_id}", post(resolve))
        .route("/v1/errors/unresolve/{error_group_id}", post(unresolve))
        .route("/v1/errors/ignore/{error_group_id}", post(ignore))
        .route("/v1/errors/assign/{error_group_id}", post(assign))
        .route("/v1/errors/releases", get(releases))
        .route(
            "/v1/errors/comments/{error_group_id}",
            get(comments).post(add_comment),
        )
        .route(
            "/v1/errors/comments/{error_group_id}/{comment_id}",
            put(edit_comment).delete(delete_comment),
        )
        .route("/v1/errors/activity/{error_group_id}", get(activity))
        .route("/v1/errors/delete/{error_group_id}", delete(delete_group))
        .route("/v1/errors/bulk", post(bulk))
        .route("/v1/errors/merge", post(merge))
        .route("/v1/errors/hashes/{error_group_id}", get(hashes))
        .route(
            "/v1/errors/feedback",
            get(list_feedback).post(submit_feedback),
        )
        .route("/v1/errors/unmerge/{error_group_id}", post(unmerge))
        .route("/v1/errors/export", post(export))
        .route("/v1/errors/retention/get", get(retention_get))
        .route("/v1/errors/retention/set", put(retention_set))
}

// ---------- request bodies ----------

/// A stack trace as JSON clients send it: text, lines, frames, or `{frames: [...]}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum StackBody {
    Text(String),
    Lines(Vec<String>),
    Frames(Vec<FrameBody>),
    Object { frames: Vec<FrameBody> },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FrameBody {
    #[serde(default, alias = "file", alias = "abs_path")]
    filename: String,
    #[serde(default, alias = "method")]
    function: String,
    #[serde(default)]
    module: String,
    #[serde(default, alias = "line")]
    lineno: u32,
    #[serde(default, alias = "column")]
    colno: u32,
    #[serde(default)]
    in_app: Option<bool>,
    #[serde(default)]
    context_line: String,
}

#[derive(Deserialize)]
struct ExceptionBody {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default, alias = "value")]
    message: String,
    #[serde(default)]
    module: String,
    #[serde(default, alias = "stack")]
    stacktrace: Option<StackBody>,
    #[serde(default)]
    synthetic: bool,
    #[serde(default)]
    mechanism: Option<MechanismBody>,
}

/// `"mechanism": "onerror"` or Sentry's `"mechanism": {"type": "onerror", "synthetic": true}`.
#[derive(Deserialize)]
#[serde(untagged, expecting = "a string or an object {type, synthetic}")]
enum MechanismBody {
    Name(String),
    Object {
        #[serde(default, rename = "type")]
        kind: String,
        #[serde(default)]
        synthetic: bool,
    },
}

/// A time as RFC 3339 text or epoch seconds (milliseconds when the number is that large).
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum TimeBody {
    Text(String),
    Number(f64),
}

#[derive(Deserialize)]
struct CaptureBody {
    #[serde(default)]
    message: String,
    #[serde(default)]
    code: String,
    #[serde(default, alias = "stacktrace")]
    stack: Option<StackBody>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    exception: Option<ExceptionBody>,
    #[serde(default)]
    level: Option<String>,
    #[serde(default)]
    release: String,
    #[serde(default)]
    environment: String,
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    fingerprint: Vec<String>,
    /// Unknown fields are accepted; they stay in the stored payload.
    #[serde(default)]
    timestamp: Option<TimeBody>,
    /// The causes of `exception`, oldest first.
    #[serde(default)]
    chained: Vec<ExceptionBody>,
    #[serde(default)]
    platform: String,
    #[serde(default)]
    transaction: String,
}

#[derive(Deserialize)]
struct MessageBody {
    text: String,
    #[serde(default)]
    level: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    release: String,
    #[serde(default)]
    environment: String,
    #[serde(default)]
    idempotency_key: String,
}

#[derive(Deserialize)]
struct MergeBody {
    error_group_ids: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackBody {
    #[serde(default)]
    event_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    comments: String,
    #[serde(default)]
    url: String,
}

#[derive(Deserialize)]
struct UnmergeBody {
    #[serde(default)]
    hashes: Vec<String>,
}

#[derive(Deserialize)]
struct BulkBody {
    error_group_ids: Vec<String>,
    action: String,
    /// With `ignore`: as the single ignore's (Sentry's spelling too). Not a flattened
    /// `IgnoreBody`: a flattened field's type error would name only the body.
    #[serde(default, alias = "ignoreDuration")]
    ignore_duration: Option<u32>,
    #[serde(default, alias = "ignoreCount")]
    ignore_count: Option<u64>,
    #[serde(default, alias = "ignoreUserCount")]
    ignore_user_count: Option<u64>,
    #[serde(default, alias = "ignoreWindow")]
    ignore_window: Option<u32>,
    #[serde(default, alias = "ignoreUserWindow")]
    ignore_user_window: Option<u32>,
    #[serde(default, alias = "untilEscalating")]
    until_escalating: bool,
    /// With `assign`: a member's id or email, or `me`; null or absent unassigns (Sentry's
    /// `assignedTo` too).
    #[serde(default, alias = "assignedTo")]
    assignee: Option<String>,
}

#[derive(Deserialize, Default)]
struct ExportBody {
    #[serde(default)]
    filter: Option<Map<String, Value>>,
    #[serde(default)]
    format: Option<String>,
}

#[derive(Deserialize)]
struct RetentionBody {
    days: u32,
    #[serde(default)]
    auto_export_before_cleanup: bool,
    #[serde(default)]
    export_destination: String,
}

// ---------- decoding helpers ----------

fn level(field: &str, s: Option<&str>) -> Result<i32, Error> {
    match s.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(pb::Level::Unspecified as i32),
        Some(s) => Level::parse(s)
            .map(|l| convert::level_to_pb(l) as i32)
            .ok_or_else(|| {
                Error::invalid_field(
                    field,
                    "must be one of debug, info, warning, error, fatal",
                    "INVALID_ENUM",
                )
            }),
    }
}

pub(super) fn time(field: &str, t: TimeBody) -> Result<prost_types::Timestamp, Error> {
    let dt = match t {
        TimeBody::Text(s) => match DateTime::parse_from_rfc3339(s.trim()) {
            Ok(d) => d.with_timezone(&Utc),
            Err(_) => match s.trim().parse::<f64>() {
                Ok(n) => epoch(field, n)?,
                Err(_) => {
                    return Err(Error::invalid_field(
                        field,
                        "must be an RFC 3339 time or epoch seconds",
                        "INVALID_TIME",
                    ));
                }
            },
        },
        TimeBody::Number(n) => epoch(field, n)?,
    };
    Ok(convert::ts(dt))
}

fn epoch(field: &str, n: f64) -> Result<DateTime<Utc>, Error> {
    // Above ~1e11 the number can only be milliseconds (1e11 seconds is the year 5138).
    let ms = if n.abs() > 1e11 { n } else { n * 1000.0 };
    if !ms.is_finite() {
        return Err(Error::invalid_field(
            field,
            "must be a finite number",
            "INVALID_TIME",
        ));
    }
    DateTime::from_timestamp_millis(ms as i64)
        .ok_or_else(|| Error::invalid_field(field, "is out of range", "OUT_OF_RANGE"))
}

fn frames(v: Vec<FrameBody>) -> Vec<pb::Frame> {
    v.into_iter()
        .map(|f| {
            let FrameBody {
                filename,
                function,
                module,
                lineno,
                colno,
                in_app,
                context_line,
            } = f;
            pb::Frame {
                filename,
                function,
                module,
                lineno,
                colno,
                in_app,
                context_line,
                minified: None,
            }
        })
        .collect()
}

/// Puts a decoded stack into the matching fields of an `ExceptionInput`.
fn stack_into(s: StackBody, e: &mut pb::ExceptionInput) {
    match s {
        StackBody::Text(t) => e.stacktrace = t,
        StackBody::Lines(l) => e.stacktrace_lines = l,
        StackBody::Frames(f) | StackBody::Object { frames: f } => e.frames = frames(f),
    }
}

/// The filter of a listing, from a JSON object (`filter`) and/or flat query parameters.
#[derive(Default)]
struct ListQuery {
    filter: pb::EventFilter,
    cursor: String,
    limit: u32,
    q: String,
    status: String,
    sort: String,
    /// Groups only: a member's id or email, or `none`.
    assignee: String,
    /// Groups only: the release their first event named.
    first_release: String,
}

fn set_filter_field(f: &mut pb::EventFilter, key: &str, v: &Value) -> Result<(), Error> {
    let field = format!("filter.{key}");
    let text = |v: &Value| -> Result<String, Error> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(Error::invalid_field(
                &field,
                "must be a string",
                "INVALID_TYPE",
            )),
        }
    };
    match key {
        "level" => f.level = level(&field, Some(&text(v)?))?,
        "status" => {
            let s = text(v)?;
            f.status = match GroupStatus::parse(&s) {
                Some(st) => convert::status_to_pb(st) as i32,
                None => {
                    return Err(Error::invalid_field(
                        &field,
                        "must be one of unresolved, resolved, ignored",
                        "INVALID_ENUM",
                    ));
                }
            }
        }
        "environment" => f.environment = text(v)?,
        "release" => f.release = text(v)?,
        "user_id" => f.user_id = text(v)?,
        "group_id" | "error_group_id" => f.group_id = text(v)?,
        "since" | "from" | "start" => {
            f.since = Some(time(
                &field,
                serde_json::from_value(v.clone())
                    .map_err(|_| Error::invalid_field(&field, "must be a time", "INVALID_TIME"))?,
            )?)
        }
        "until" | "to" | "end" => {
            f.until = Some(time(
                &field,
                serde_json::from_value(v.clone())
                    .map_err(|_| Error::invalid_field(&field, "must be a time", "INVALID_TIME"))?,
            )?)
        }
        "tags" => match v {
            Value::Object(o) => {
                for (k, v) in o {
                    f.tags.insert(k.clone(), text(v)?);
                }
            }
            _ => {
                return Err(Error::invalid_field(
                    &field,
                    "must be an object of tag values",
                    "INVALID_TYPE",
                ));
            }
        },
        "tag" => {
            let items = match v {
                Value::Array(a) => a.clone(),
                other => vec![other.clone()],
            };
            for item in items {
                let s = text(&item)?;
                let (k, val) =
                    s.split_once(':')
                        .or_else(|| s.split_once('='))
                        .ok_or_else(|| {
                            Error::invalid_field(&field, "must be key:value", "INVALID_TAG")
                        })?;
                f.tags.insert(k.trim().to_owned(), val.trim().to_owned());
            }
        }
        other => {
            return Err(Error::invalid_field(
                &format!("filter.{other}"),
                "is not a known filter",
                "UNKNOWN_FILTER",
            ));
        }
    }
    Ok(())
}

/// A listing's `limit` query parameter (capped by the listing).
pub(super) fn parse_limit(v: &str) -> Result<u32, Error> {
    v.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
        .ok_or_else(|| {
            Error::invalid_field("limit", "must be a non-negative integer", "INVALID_TYPE")
        })
}

fn parse_query(raw: Option<String>) -> Result<ListQuery, Error> {
    let mut out = ListQuery::default();
    let raw = raw.unwrap_or_default();
    for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
        let (k, v) = (k.into_owned(), v.into_owned());
        match k.as_str() {
            "cursor" => out.cursor = v,
            "limit" => out.limit = parse_limit(&v)?,
            "q" => out.q = v,
            "sort" => out.sort = v,
            "assignee" | "assigned_to" => out.assignee = v,
            "first_release" | "firstRelease" => out.first_release = v,
            "filter" => {
                let obj: Map<String, Value> = decode(v.as_bytes())
                    .map_err(|_| Error::malformed("filter", "must be a JSON object"))?;
                for (fk, fv) in &obj {
                    set_filter_field(&mut out.filter, fk, fv)?;
                }
            }
            _ if k.starts_with("filter[") && k.ends_with(']') => {
                set_filter_field(&mut out.filter, &k[7..k.len() - 1], &Value::String(v))?;
            }
            _ if k.starts_with("tags[") && k.ends_with(']') => {
                out.filter.tags.insert(k[5..k.len() - 1].to_owned(), v);
            }
            "status" => {
                out.status = v.clone();
                set_filter_field(&mut out.filter, "status", &Value::String(v))?;
            }
            _ => set_filter_field(&mut out.filter, &k, &Value::String(v)).map_err(|e| match e {
                Error::Invalid { violations, .. }
                    if violations.iter().any(|x| x.code == "UNKNOWN_FILTER") =>
                {
                    Error::malformed(&k, "is not a known query parameter")
                }
                other => other,
            })?,
        }
    }
    Ok(out)
}

// ---------- encoding helpers ----------

pub(super) fn time_json(t: Option<prost_types::Timestamp>) -> Value {
    t.and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
        .map(|d| Value::String(d.to_rfc3339_opts(SecondsFormat::Millis, true)))
        .unwrap_or(Value::Null)
}

/// The domain's name of a level (the handlers never answer "unspecified").
pub(super) fn level_json(v: i32) -> &'static str {
    convert::level_from_pb("level", v)
        .ok()
        .flatten()
        .unwrap_or(Level::Error)
        .as_str()
}

/// The domain's name of a group status.
pub(super) fn status_json(v: i32) -> &'static str {
    convert::status_from_pb("status", v)
        .ok()
        .flatten()
        .unwrap_or(GroupStatus::Unresolved)
        .as_str()
}

fn frame_json(f: pb::Frame) -> Value {
    let pb::Frame {
        filename,
        function,
        module,
        lineno,
        colno,
        in_app,
        context_line,
        minified,
    } = f;
    let mut v = json!({"filename": filename, "function": function, "module": module, "lineno": lineno, "colno": colno, "in_app": in_app, "context_line": context_line});
    // A frame a source map placed: as the client sent it, in the minified file.
    if let Some(m) = minified {
        v["minified"] = frame_json(*m);
    }
    v
}

fn exception_json(x: pb::ExceptionInfo) -> Value {
    let pb::ExceptionInfo {
        r#type,
        value,
        frames,
        raw_stacktrace,
        mechanism,
        synthetic,
        chained,
    } = x;
    let mut v = json!({"type": r#type, "value": value, "frames": frames.into_iter().map(frame_json).collect::<Vec<_>>(), "raw_stacktrace": raw_stacktrace});
    if !mechanism.is_empty() {
        v["mechanism"] = json!(mechanism);
    }
    if synthetic {
        v["synthetic"] = json!(true);
    }
    if !chained.is_empty() {
        v["chained"] = chained.into_iter().map(exception_json).collect();
    }
    v
}

fn variant_json(g: pb::GroupingVariant) -> Value {
    let pb::GroupingVariant {
        kind,
        version,
        source,
        components,
        hash,
        matches_group,
    } = g;
    json!({"kind": kind, "version": version, "source": source, "components": components, "hash": hash, "matches_group": matches_group})
}

fn event_json(e: pb::Event) -> Value {
    let pb::Event {
        id,
        group_id,
        project_id,
        fingerprint,
        timestamp,
        received_at,
        level,
        message,
        code,
        exception,
        culprit,
        release,
        environment,
        user_id,
        tags,
        payload_json,
        grouping,
    } = e;
    let mut v = json!({
        "id": id,
        "event_id": id,
        "group_id": group_id,
        "project_id": project_id,
        "fingerprint": fingerprint,
        "timestamp": time_json(timestamp),
        "received_at": time_json(received_at),
        "level": level_json(level),
        "message": message,
        "code": code,
        "exception": exception.map(exception_json),
        "culprit": culprit,
        "release": release,
        "environment": environment,
        "user_id": user_id,
        "tags": tags.into_iter().collect::<BTreeMap<_, _>>(),
    });
    if !payload_json.is_empty() {
        v["payload"] = serde_json::from_str(&payload_json).unwrap_or(Value::String(payload_json));
    }
    if let Some(g) = grouping {
        let pb::GroupingInfo {
            version,
            source,
            components,
            fingerprint,
            variants,
        } = g;
        v["grouping"] = json!({
            "version": version, "source": source, "components": components, "fingerprint": fingerprint,
            "variants": variants.into_iter().map(variant_json).collect::<Vec<_>>(),
        });
    }
    v
}

fn group_json(g: pb::Group) -> Value {
    let pb::Group {
        id,
        project_id,
        fingerprint,
        title,
        culprit,
        level,
        status,
        regressed,
        count,
        first_seen,
        last_seen,
        grouping_version,
        workflow_stage,
        ignored_until,
        ignored_until_count,
        last_release,
        resolved_in_release,
        first_release,
        assignee,
        ignored_until_user_count,
        ignored_until_rate,
        ignored_until_user_rate,
        ignored_until_escalating,
    } = g;
    let rate = |r: Option<pb::SnoozeRate>| r.map(|r| json!({"count": r.count, "window": r.window}));
    json!({
        "id": id,
        "error_group_id": id,
        "project_id": project_id,
        "fingerprint": fingerprint,
        "title": title,
        "culprit": culprit,
        "level": level_json(level),
        "status": status_json(status),
        "regressed": regressed,
        "count": count,
        "first_seen": time_json(first_seen),
        "last_seen": time_json(last_seen),
        "grouping_version": grouping_version,
        "workflow_stage": convert::stage_name(workflow_stage),
        "ignored_until": time_json(ignored_until),
        "ignored_until_count": ignored_until_count,
        "ignored_until_user_count": ignored_until_user_count,
        "ignored_until_rate": rate(ignored_until_rate),
        "ignored_until_user_rate": rate(ignored_until_user_rate),
        "ignored_until_escalating": ignored_until_escalating,
        "last_release": last_release,
        "resolved_in_release": resolved_in_release,
        "first_release": first_release,
        "assignee": assignee.map(assignee_json),
    })
}

fn event_list(events: Vec<pb::Event>, next_cursor: String) -> Value {
    json!({
        "events": events.into_iter().map(event_json).collect::<Vec<_>>(),
        "has_more": !next_cursor.is_empty(),
        "next_cursor": if next_cursor.is_empty() { Value::Null } else { Value::String(next_cursor) },
    })
}

pub(super) fn retention_json(r: Option<pb::Retention>) -> Value {
    let pb::Retention {
        days,
        auto_export_before_cleanup,
        export_destination,
        last_cleanup,
        last_cleanup_deleted,
    } = r.unwrap_or_default();
    json!({
        "days": days,
        "auto_export_before_cleanup": auto_export_before_cleanup,
        "export_destination": export_destination,
        "last_cleanup": time_json(last_cleanup),
        "last_cleanup_deleted": last_cleanup_deleted,
    })
}

/// The documented answer to one captured event.
pub fn capture_json(
    event_id: String,
    group_id: String,
    fingerprint: String,
    new_group: bool,
) -> Value {
    json!({"ok": true, "error_id": event_id, "event_id": event_id, "group_id": group_id, "fingerprint": fingerprint, "new_group": new_group})
}

// ---------- handlers ----------

fn exception_input(e: ExceptionBody) -> pb::ExceptionInput {
    let ExceptionBody {
        kind,
        message,
        module,
        stacktrace,
        synthetic,
        mechanism,
    } = e;
    let (mechanism, synthetic) = match mechanism {
        None => (String::new(), synthetic),
        Some(MechanismBody::Name(name)) => (name, synthetic),
        Some(MechanismBody::Object { kind, synthetic: s }) => (kind, synthetic || s),
    };
    let mut e = pb::ExceptionInput {
        r#type: kind,
        message,
        module,
        synthetic,
        mechanism,
        ..Default::default()
    };
    if let Some(s) = stacktrace {
        stack_into(s, &mut e);
    }
    e
}

/// Tells the capture handler that the payloads are bodies this layer decoded as JSON objects
/// (`capture_request`, through `decode`, which reads only objects), so it need not check them
/// again.
fn decoded_payload<T>(mut req: tonic::Request<T>) -> tonic::Request<T> {
    req.extensions_mut()
        .insert(crate::grpc::PayloadJson::Decoded);
    req
}

/// The `CaptureRequest` for one capture body; the body itself travels as the payload.
fn capture_request(raw: &[u8]) -> Result<pb::CaptureRequest, Error> {
    let body: CaptureBody = decode(raw)?;
    let CaptureBody {
        message,
        code,
        stack,
        tags,
        exception,
        level: lvl,
        release,
        environment,
        user_id,
        fingerprint,
        timestamp,
        chained,
        platform,
        transaction,
    } = body;
    let mut req = pb::CaptureRequest {
        message,
        code,
        tags: tags.into_iter().collect(),
        level: level("level", lvl.as_deref())?,
        release,
        environment,
        user_id,
        fingerprint,
        timestamp: timestamp.map(|t| time("timestamp", t)).transpose()?,
        // The body as sent is the event's payload; unknown fields are kept in it verbatim.
        payload_json: crate::domain::text_from_bytes(raw),
        ..Default::default()
    };
    req.exception = exception.map(exception_input);
    req.chained = chained.into_iter().map(exception_input).collect();
    req.platform = platform;
    req.transaction = transaction;
    match stack {
        Some(StackBody::Text(t)) => req.stack = t,
        // Structured stacks beside a plain message travel as an exception without a type.
        Some(s) => {
            let e = req
                .exception
                .get_or_insert_with(pb::ExceptionInput::default);
            stack_into(s, e);
        }
        None => {}
    }
    Ok(req)
}

async fn capture(State(api): State<Api>, ctx: Ctx, RawBody(raw): RawBody) -> ApiResult {
    let req = lenient(&raw, capture_request)?;
    drop(raw);
    let pb::CaptureResponse {
        event_id,
        group_id,
        fingerprint,
        new_group,
    } = api
        .capture(decoded_payload(ctx.into_request(req)))
        .await?
        .into_inner();
    Ok(Json(capture_json(
        event_id,
        group_id,
        fingerprint,
        new_group,
    )))
}

#[derive(Deserialize)]
struct BatchBody {
    events: Vec<Box<serde_json::value::RawValue>>,
}

/// `POST /v1/errors/capture/batch {events: [capture bodies]}`: one answer per item, in order.
/// An item that cannot be decoded is answered with its error without reaching the handler.
async fn capture_batch(State(api): State<Api>, ctx: Ctx, RawBody(raw): RawBody) -> ApiResult {
    let BatchBody { events } = lenient(&raw, decode)?;
    let mut decoded = Vec::with_capacity(events.len());
    let mut early: Vec<Option<Value>> = Vec::with_capacity(events.len());
    for item in &events {
        match lenient(item.get().as_bytes(), capture_request) {
            Ok(req) => {
                decoded.push(req);
                early.push(None);
            }
            Err(e) => {
                let fields: Vec<String> = e.violations().iter().map(ToString::to_string).collect();
                early.push(Some(batch_item_error(
                    e.code(),
                    &e.public_message(),
                    &fields,
                )))
            }
        }
    }
    // The body and its items are decoded: let them go before waiting for the commit.
    let only_undecodable = decoded.is_empty() && !events.is_empty();
    drop(events);
    drop(raw);
    // An empty list goes to the handler, which rejects it; a list of only undecodable items does not.
    let pb::CaptureBatchResponse {
        results,
        accepted: _,
        rejected: _,
    } = if only_undecodable {
        pb::CaptureBatchResponse::default()
    } else {
        api.capture_batch(decoded_payload(
            ctx.into_request(pb::CaptureBatchRequest { events: decoded }),
        ))
        .await?
        .into_inner()
    };
    let mut handled = results.into_iter();
    let results: Vec<Value> = early
        .into_iter()
        .map(|e| match e {
            Some(v) => v,
            None => match handled.next().and_then(|r| r.outcome) {
                Some(pb::capture_batch_result::Outcome::Captured(pb::CaptureResponse {
                    event_id,
                    group_id,
                    fingerprint,
                    new_group,
                })) => capture_json(event_id, group_id, fingerprint, new_group),
                Some(pb::capture_batch_result::Outcome::Error(pb::CaptureBatchError {
                    code,
                    message,
                    fields,
                })) => batch_item_error(&code, &message, &fields),
                None => batch_item_error("INTERNAL_ERROR", "no result for this item", &[]),
            },
        })
        .collect();
    let accepted = results
        .iter()
        .filter(|r| r["ok"] == Value::Bool(true))
        .count();
    Ok(Json(json!({
        "ok": accepted == results.len(),
        "accepted": accepted,
        "rejected": results.len() - accepted,
        "results": results,
    })))
}

fn batch_item_error(code: &str, message: &str, fields: &[String]) -> Value {
    json!({"ok": false, "error": {"code": code, "message": message, "details": fields}})
}

/// The `CaptureMessageRequest` for one message body; the body itself travels as the payload.
fn message_request(raw: &[u8]) -> Result<pb::CaptureMessageRequest, Error> {
    let MessageBody {
        text,
        level: lvl,
        tags,
        user_id,
        release,
        environment,
        idempotency_key,
    } = decode(raw)?;
    Ok(pb::CaptureMessageRequest {
        text,
        level: level("level", lvl.as_deref())?,
        tags: tags.into_iter().collect(),
        user_id,
        release,
        environment,
        idempotency_key,
        payload_json: crate::domain::text_from_bytes(raw),
    })
}

async fn message(State(api): State<Api>, ctx: Ctx, RawBody(raw): RawBody) -> ApiResult {
    let req = lenient(&raw, message_request)?;
    let pb::CaptureMessageResponse {
        event_id,
        group_id,
        fingerprint,
        new_group,
        duplicate,
    } = api.capture_message(ctx.request(req)).await?.into_inner();
    let mut v = capture_json(event_id, group_id, fingerprint, new_group);
    v["duplicate"] = Value::Bool(duplicate);
    Ok(Json(v))
}

async fn list(State(api): State<Api>, ctx: Ctx, RawQuery(raw): RawQuery) -> ApiResult {
    let ListQuery {
        filter,
        cursor,
        limit,
        ..
    } = parse_query(raw)?;
    let req = pb::ListEventsRequest {
        filter: Some(filter),
        cursor,
        limit,
    };
    let pb::ListEventsResponse {
        events,
        next_cursor,
    } = api.list_events(ctx.request(req)).await?.into_inner();
    Ok(Json(event_list(events, next_cursor)))
}

async fn search(State(api): State<Api>, ctx: Ctx, RawQuery(raw): RawQuery) -> ApiResult {
    let ListQuery {
        filter,
        cursor,
        limit,
        q,
        ..
    } = parse_query(raw)?;
    let req = pb::SearchEventsRequest {
        q,
        filter: Some(filter),
        cursor,
        limit,
    };
    let pb::SearchEventsResponse {
        events,
        next_cursor,
    } = api.search_events(ctx.request(req)).await?.into_inner();
    Ok(Json(event_list(events, next_cursor)))
}

async fn get_event(State(api): State<Api>, ctx: Ctx, Path(event_id): Path<String>) -> ApiResult {
    let pb::GetEventResponse { event } = api
        .get_event(ctx.request(pb::GetEventRequest { event_id }))
        .await?
        .into_inner();
    let event =
        event.ok_or_else(|| Error::Internal("GetEvent answered without an event".into()))?;
    Ok(Json(event_json(event)))
}

async fn groups(State(api): State<Api>, ctx: Ctx, RawQuery(raw): RawQuery) -> ApiResult {
    let ListQuery {
        cursor,
        limit,
        status,
        sort,
        q,
        assignee,
        first_release,
        ..
    } = parse_query(raw)?;
    let status = match status.trim() {
        "" => pb::GroupStatus::Unspecified,
        s => match GroupStatus::parse(s) {
            Some(st) => convert::status_to_pb(st),
            None => {
                return Err(Error::invalid_field(
                    "status",
                    "must be one of unresolved, resolved, ignored",
                    "INVALID_ENUM",
                )
                .into());
            }
        },
    };
    let sort = match sort.trim() {
        "" => pb::GroupSort::Unspecified,
        "count_desc" => pb::GroupSort::CountDesc,
        "last_seen_desc" => pb::GroupSort::LastSeenDesc,
        "first_seen_desc" => pb::GroupSort::FirstSeenDesc,
        _ => {
            return Err(Error::invalid_field(
                "sort",
                "must be one of count_desc, last_seen_desc, first_seen_desc",
                "INVALID_ENUM",
            )
            .into());
        }
    };
    let req = pb::ListGroupsRequest {
        status: status as i32,
        sort: sort as i32,
        cursor,
        limit,
        query: q,
        assignee,
        first_release,
    };
    let pb::ListGroupsResponse {
        groups,
        next_cursor,
    } = api.list_groups(ctx.request(req)).await?.into_inner();
    Ok(Json(json!({
        "groups": groups.into_iter().map(group_json).collect::<Vec<_>>(),
        "has_more": !next_cursor.is_empty(),
        "next_cursor": if next_cursor.is_empty() { Value::Null } else { Value::String(next_cursor) },
    })))
}

async fn group_detail(State(api): State<Api>, ctx: Ctx, Path(group_id): Path<String>) -> ApiResult {
    let pb::GetGroupResponse {
        group,
        top_tags,
        users_affected,
        releases,
        environments,
        trend,
    } = api
        .get_group(ctx.request(pb::GetGroupRequest { group_id }))
        .await?
        .into_inner();
    let mut v = group_json(
        group.ok_or_else(|| Error::Internal("GetGroup answered without a group".into()))?,
    );
    v["top_tags"] = top_tags
        .into_iter()
        .map(|pb::TagValueCount { key, value, count }| json!({"key": key, "value": value, "count": count}))
        .collect();
    v["users_affected"] = json!(users_affected);
    v["releases"] = json!(releases);
    v["environments"] = json!(environments);
    v["trend"] = trend
        .into_iter()
        .map(|pb::TrendPoint { hour, count }| json!({"hour": time_json(hour), "count": count}))
        .collect();
    Ok(Json(v))
}

async fn group_events(
    State(api): State<Api>,
    ctx: Ctx,
    Path(group_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let ListQuery { cursor, limit, .. } = parse_query(raw)?;
    let req = pb::ListGroupEventsRequest {
        group_id,
        cursor,
        limit,
    };
    let pb::ListGroupEventsResponse {
        events,
        next_cursor,
    } = api.list_group_events(ctx.request(req)).await?.into_inner();
    Ok(Json(event_list(events, next_cursor)))
}

/// An optional body: a JSON object is decoded (and refused when it does not fit); anything
/// else, nothing included, is the default.
fn optional_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, Error> {
    if body.trim_ascii_start().starts_with(b"{") {
        decode(body)
    } else {
        Ok(T::default())
    }
}

/// Resolving in the next release, in the native spelling or Sentry's (`statusDetails`).
#[derive(Deserialize, Default)]
struct ResolveBody {
    #[serde(default, alias = "inNextRelease")]
    in_next_release: bool,
}

/// The body is optional, as for `ignore`: none, or one that is not a JSON object, resolves
/// outright.
async fn resolve(
    State(api): State<Api>,
    ctx: Ctx,
    Path(group_id): Path<String>,
    RawBody(body): RawBody,
) -> ApiResult {
    let ResolveBody { in_next_release } = optional_body(&body)?;
    let pb::ResolveGroupResponse { group } = api
        .resolve_group(ctx.request(pb::ResolveGroupRequest {
            group_id,
            in_next_release,
        }))
        .await?
        .into_inner();
    Ok(Json(group.map(group_json).unwrap_or(Value::Null)))
}

/// `{"assignee": "<member id or email>"}` (Sentry's `assignedTo` too); null or "" unassigns.
async fn assign(
    State(api): State<Api>,
    ctx: Ctx,
    Path(group_id): Path<String>,
    RawBody(body): RawBody,
) -> ApiResult {
    let body: Map<String, Value> = decode(&body)?;
    let assignee = match body.get("assignee").or_else(|| body.get("assignedTo")) {
        None => return Err(Error::required("assignee").into()),
        Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(Error::invalid_field(
                "assignee",
                "must be a member's id or email, or null",
                "INVALID_TYPE",
            )
            .into());
        }
    };
    let pb::AssignGroupResponse { group } = api
        .assign_group(ctx.request(pb::AssignGroupRequest { group_id, assignee }))
        .await?
        .into_inner();
    Ok(Json(group.map(group_json).unwrap_or(Value::Null)))
}

/// `?limit=` (0 or none: 50; at most 1000).
async fn releases(State(api): State<Api>, ctx: Ctx, RawQuery(raw): RawQuery) -> ApiResult {
    let ListQuery { limit, .. } = parse_query(raw)?;
    let pb::ListReleasesResponse { releases } = api
        .list_releases(ctx.request(pb::ListReleasesRequest { limit }))
        .await?
        .into_inner();
    let releases: Vec<Value> = releases
        .into_iter()
        .map(
            |pb::Release {
                 version,
                 first_seen,
                 event_count,
                 issue_count,
                 new_issue_count,
             }| {
                json!({
                    "version": version,
                    "first_seen": time_json(first_seen),
                    "event_count": event_count,
                    "issue_count": issue_count,
                    "new_issue_count": new_issue_count,
                })
            },
        )
        .collect();
    Ok(Json(json!({ "releases": releases })))
}

fn assignee_json(a: pb::GroupAssignee) -> Value {
    json!({"id": a.id, "name": a.name, "email": a.email})
}

/// `null` for an empty string.
pub(super) fn or_null(s: String) -> Value {
    if s.is_empty() {
        Value::Null
    } else {
        Value::String(s)
    }
}

/// An activity entry: what every entry has, and in `data` what its `type` has besides.
fn activity_json(a: pb::GroupActivity) -> Value {
    let pb::GroupActivity {
        id,
        group_id,
        r#type,
        actor,
        member_id,
        created_at,
        text,
        release,
        event_id,
        ignore_duration,
        ignore_count,
        snooze_end,
        assignee,
        merged_group_ids,
        merged_events,
        workflow_from,
        workflow_to,
        unmerged_hashes,
        unmerge_group_id,
        unmerged_events,
        ignore_user_count,
        ignore_window,
        ignore_user_window,
        until_escalating,
    } = a;
    let data = match r#type.as_str() {
        "note" => json!({ "text": text }),
        "set_resolved_in_release" => json!({ "release": release }),
        "set_regression" => json!({ "release": or_null(release), "event_id": event_id }),
        "set_ignored" => json!({
            "ignore_duration": (ignore_duration > 0).then_some(ignore_duration),
            "ignore_count": (ignore_count > 0).then_some(ignore_count),
            "ignore_user_count": (ignore_user_count > 0).then_some(ignore_user_count),
            "ignore_window": (ignore_window > 0).then_some(ignore_window),
            "ignore_user_window": (ignore_user_window > 0).then_some(ignore_user_window),
            "until_escalating": until_escalating,
        }),
        "set_unresolved" => json!({ "snooze_end": or_null(snooze_end) }),
        "assigned" => json!({ "assignee": assignee.map(assignee_json) }),
        "merge" => json!({ "merged_group_ids": merged_group_ids, "events": merged_events }),
        "unmerge_source" => json!({
            "hashes": unmerged_hashes,
            "destination_error_group_id": unmerge_group_id,
            "events": unmerged_events,
        }),
        "unmerge_destination" => json!({
            "hashes": unmerged_hashes,
            "source_error_group_id": unmerge_group_id,
            "events": unmerged_events,
        }),
        "workflow" => json!({ "from": workflow_from, "to": workflow_to }),
        _ => json!({}),
    };
    json!({
        "id": or_null(id),
        "error_group_id": group_id,
        "type": r#type,
        "actor": or_null(actor),
        "member_id": or_null(member_id),
        "created_at": time_json(created_at),
        "data": data,
    })
}

async fn activity(
    State(api): State<Api>,
    ctx: Ctx,
    Path(group_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let ListQuery { limit, .. } = parse_query(raw)?;
    let pb::ListGroupActivityResponse { activity } = api
        .list_group_activity(ctx.request(pb::ListGroupActivityRequest { group_id, limit }))
        .await?
        .into_inner();
    Ok(Json(json!({
        "activity": activity.into_iter().map(activity_json).collect::<Vec<_>>(),
    })))
}

fn comment_json(c: pb::GroupComment) -> Value {
    let pb::GroupComment {
        id,
        group_id,
        author,
        member_id,
        text,
        created_at,
        edited_at,
    } = c;
    json!({
        "id": id,
        "error_group_id": group_id,
        "author": author,
        "member_id": or_null(member_id),
        "text": text,
        "created_at": time_json(created_at),
        "edited_at": time_json(edited_at),
    })
}

async fn comments(State(api): State<Api>, ctx: Ctx, Path(group_id): Path<String>) -> ApiResult {
    let pb::ListGroupCommentsResponse { comments } = api
        .list_group_comments(ctx.request(pb::ListGroupCommentsRequest { group_id }))
        .await?
        .into_inner();
    Ok(Json(json!({
        "comments": comments.into_iter().map(comment_json).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
struct CommentBody {
    text: String,
}

async fn add_comment(
    State(api): State<Api>,
    ctx: Ctx,
    Path(group_id): Path<String>,
    ApiJson(CommentBody { text }): ApiJson<CommentBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let pb::AddGroupCommentResponse { comment } = api
        .add_group_comment(ctx.request(pb::AddGroupCommentRequest { group_id, text }))
        .await?
        .into_inner();
    let comment = comment.map(comment_json).unwrap_or(Value::Null);
    Ok((StatusCode::CREATED, Json(comment)))
}

async fn edit_comment(
    State(api): State<Api>,
    ctx: Ctx,
    Path((group_id, comment_id)): Path<(String, String)>,
    ApiJson(CommentBody { text }): ApiJson<CommentBody>,
) -> ApiResult {
    let pb::UpdateGroupCommentResponse { comment } = api
        .update_group_comment(ctx.request(pb::UpdateGroupCommentRequest {
            group_id,
            comment_id,
            text,
        }))
        .await?
        .into_inner();
    Ok(Json(comment.map(comment_json).unwrap_or(Value::Null)))
}

async fn delete_comment(
    State(api): State<Api>,
    ctx: Ctx,
    Path((group_id, comment_id)): Path<(String, String)>,
) -> ApiResult {
    let pb::DeleteGroupCommentResponse { comment_id } = api
        .delete_group_comment(ctx.request(pb::DeleteGroupCommentRequest {
            group_id,
            comment_id,
        }))
        .await?
        .into_inner();
    Ok(Json(
        json!({"ok": true, "deleted": true, "comment_id": comment_id}),
    ))
}

async fn unresolve(State(api): State<Api>, ctx: Ctx, Path(group_id): Path<String>) -> ApiResult {
    let pb::UnresolveGroupResponse { group } = api
        .unresolve_group(ctx.request(pb::UnresolveGroupRequest { group_id }))
        .await?
        .into_inner();
    Ok(Json(group.map(group_json).unwrap_or(Value::Null)))
}

/// How long an ignore lasts, in the native spelling or Sentry's (`statusDetails` fields).
#[derive(Deserialize, Default)]
struct IgnoreBody {
    #[serde(default, alias = "ignoreDuration")]
    ignore_duration: Option<u32>,
    #[serde(default, alias = "ignoreCount")]
    ignore_count: Option<u64>,
    #[serde(default, alias = "ignoreUserCount")]
    ignore_user_count: Option<u64>,
    /// With `ignore_count`: within how many minutes (a rate).
    #[serde(default, alias = "ignoreWindow")]
    ignore_window: Option<u32>,
    /// With `ignore_user_count`: within how many minutes.
    #[serde(default, alias = "ignoreUserWindow")]
    ignore_user_window: Option<u32>,
    /// Until escalating (Sentry's default archive).
    #[serde(default, alias = "untilEscalating")]
    until_escalating: bool,
}

/// The body is optional: none, or one that is not a JSON object, ignores until someone
/// changes the status (the document's example sends `{"error_group_id": …}`).
async fn ignore(
    State(api): State<Api>,
    ctx: Ctx,
    Path(group_id): Path<String>,
    RawBody(body): RawBody,
) -> ApiResult {
    let IgnoreBody {
        ignore_duration,
        ignore_count,
        ignore_user_count,
        ignore_window,
        ignore_user_window,
        until_escalating,
    } = optional_body(&body)?;
    let pb::IgnoreGroupResponse { group } = api
        .ignore_group(ctx.request(pb::IgnoreGroupRequest {
            group_id,
            ignore_duration,
            ignore_count,
            ignore_user_count,
            ignore_window,
            ignore_user_window,
            until_escalating,
        }))
        .await?
        .into_inner();
    Ok(Json(group.map(group_json).unwrap_or(Value::Null)))
}

async fn delete_group(State(api): State<Api>, ctx: Ctx, Path(group_id): Path<String>) -> ApiResult {
    let pb::DeleteGroupResponse {
        group_id,
        deleted_events,
    } = api
        .delete_group(ctx.request(pb::DeleteGroupRequest { group_id }))
        .await?
        .into_inner();
    Ok(Json(
        json!({"ok": true, "deleted": true, "error_group_id": group_id, "deleted_events": deleted_events}),
    ))
}

async fn merge(State(api): State<Api>, ctx: Ctx, ApiJson(body): ApiJson<MergeBody>) -> ApiResult {
    let req = pb::MergeGroupsRequest {
        group_ids: body.error_group_ids,
    };
    let pb::MergeGroupsResponse {
        group,
        merged_group_ids,
        moved_events,
    } = api.merge_groups(ctx.request(req)).await?.into_inner();
    Ok(Json(json!({
        "ok": true,
        "error_group": group.map(group_json).unwrap_or(Value::Null),
        "merged_error_group_ids": merged_group_ids,
        "moved_events": moved_events,
    })))
}

/// A user's feedback: its fields, and the stored event it is about with that event's group
/// (null while that event is not stored).
fn feedback_json(f: pb::UserFeedback) -> Value {
    let pb::UserFeedback {
        id,
        event_id,
        name,
        email,
        comments,
        url,
        created_at,
        stored_event_id,
        group_id,
    } = f;
    json!({
        "id": id,
        "event_id": or_null(event_id),
        "name": name,
        "email": email,
        "comments": comments,
        "url": url,
        "created_at": time_json(created_at),
        "stored_event_id": or_null(stored_event_id),
        "error_group_id": or_null(group_id),
    })
}

async fn submit_feedback(
    State(api): State<Api>,
    ctx: Ctx,
    ApiJson(body): ApiJson<FeedbackBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let FeedbackBody {
        event_id,
        name,
        email,
        comments,
        url,
    } = body;
    let req = pb::SubmitFeedbackRequest {
        event_id,
        name,
        email,
        comments,
        url,
    };
    let pb::SubmitFeedbackResponse { feedback } =
        api.submit_feedback(ctx.request(req)).await?.into_inner();
    Ok((
        StatusCode::CREATED,
        Json(json!({"ok": true, "feedback": feedback.map(feedback_json).unwrap_or(Value::Null)})),
    ))
}

async fn list_feedback(State(api): State<Api>, ctx: Ctx, RawQuery(raw): RawQuery) -> ApiResult {
    let ListQuery {
        filter,
        cursor,
        limit,
        ..
    } = parse_query(raw)?;
    let req = pb::ListFeedbackRequest {
        group_id: filter.group_id,
        cursor,
        limit,
    };
    let pb::ListFeedbackResponse {
        feedback,
        next_cursor,
    } = api.list_feedback(ctx.request(req)).await?.into_inner();
    Ok(Json(json!({
        "feedback": feedback.into_iter().map(feedback_json).collect::<Vec<_>>(),
        "next_cursor": or_null(next_cursor),
    })))
}

async fn hashes(State(api): State<Api>, ctx: Ctx, Path(group_id): Path<String>) -> ApiResult {
    let req = pb::ListGroupHashesRequest {
        group_id: group_id.clone(),
    };
    let pb::ListGroupHashesResponse {
        hashes,
        other_events,
    } = api.list_group_hashes(ctx.request(req)).await?.into_inner();
    let hashes: Vec<Value> = hashes
        .into_iter()
        .map(|h| {
            json!({
                "hash": h.hash,
                "kind": or_null(h.kind),
                "primary": h.primary,
                "events": h.events,
                "latest_event": h.latest_event.map(event_json).unwrap_or(Value::Null),
            })
        })
        .collect();
    Ok(Json(json!({
        "ok": true,
        "error_group_id": group_id,
        "hashes": hashes,
        "other_events": other_events,
    })))
}

async fn unmerge(
    State(api): State<Api>,
    ctx: Ctx,
    Path(group_id): Path<String>,
    ApiJson(body): ApiJson<UnmergeBody>,
) -> ApiResult {
    let req = pb::UnmergeGroupRequest {
        group_id,
        hashes: body.hashes,
    };
    let pb::UnmergeGroupResponse {
        group,
        new_group,
        moved_events,
    } = api.unmerge_group(ctx.request(req)).await?.into_inner();
    Ok(Json(json!({
        "ok": true,
        "error_group": group.map(group_json).unwrap_or(Value::Null),
        "new_error_group": new_group.map(group_json).unwrap_or(Value::Null),
        "moved_events": moved_events,
    })))
}

async fn bulk(State(api): State<Api>, ctx: Ctx, ApiJson(body): ApiJson<BulkBody>) -> ApiResult {
    let BulkBody {
        error_group_ids,
        action,
        ignore_duration,
        ignore_count,
        ignore_user_count,
        ignore_window,
        ignore_user_window,
        until_escalating,
        assignee,
    } = body;
    let action = match action.trim() {
        "resolve" => pb::BulkAction::Resolve,
        "unresolve" => pb::BulkAction::Unresolve,
        "ignore" => pb::BulkAction::Ignore,
        "delete" => pb::BulkAction::Delete,
        "assign" => pb::BulkAction::Assign,
        _ => {
            return Err(Error::invalid_field(
                "action",
                "must be one of resolve, unresolve, ignore, delete, assign",
                "INVALID_ENUM",
            )
            .into());
        }
    };
    let processed = error_group_ids.len();
    let req = pb::BulkUpdateGroupsRequest {
        group_ids: error_group_ids,
        action: action as i32,
        ignore_duration,
        ignore_count,
        assignee: assignee.unwrap_or_default(),
        ignore_user_count,
        ignore_window,
        ignore_user_window,
        until_escalating,
    };
    let pb::BulkUpdateGroupsResponse {
        action: _,
        succeeded,
        failed,
    } = api.bulk_update_groups(ctx.request(req)).await?.into_inner();
    let failed: Vec<Value> = failed
        .into_iter()
        .map(
            |pb::BulkFailure {
                 group_id,
                 code,
                 message,
             }| json!({"error_group_id": group_id, "code": code, "message": message}),
        )
        .collect();
    Ok(Json(json!({
        "ok": failed.is_empty(),
        "action": action.as_str_name().trim_start_matches("BULK_ACTION_").to_ascii_lowercase(),
        "processed": processed,
        "succeeded": succeeded,
        "failed": failed,
    })))
}

async fn export(
    State(api): State<Api>,
    ctx: Ctx,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    // An empty body means "everything, as JSON".
    let ExportBody { filter, format } = if body.iter().all(u8::is_ascii_whitespace) {
        ExportBody::default()
    } else {
        decode(&body)?
    };
    let mut pb_filter = pb::EventFilter::default();
    for (k, v) in filter.unwrap_or_default() {
        set_filter_field(&mut pb_filter, &k, &v)?;
    }
    let format = match format.as_deref().map(str::trim) {
        None | Some("") | Some("json") => pb::ExportFormat::Json,
        Some("csv") => pb::ExportFormat::Csv,
        Some(_) => {
            return Err(
                Error::invalid_field("format", "must be json or csv", "INVALID_ENUM").into(),
            );
        }
    };
    let req = pb::ExportEventsRequest {
        filter: Some(pb_filter),
        format: format as i32,
    };
    let mut stream = api.export_events(ctx.request(req)).await?.into_inner();
    // The first chunk names the content type; a failure before it is an ordinary error answer.
    let first = match stream.next().await {
        Some(Ok(chunk)) => chunk,
        Some(Err(status)) => return Err(status.into()),
        None => return Err(Error::Internal("export produced no data".into()).into()),
    };
    let content_type = HeaderValue::from_str(&first.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let extension = if format == pb::ExportFormat::Csv {
        "csv"
    } else {
        "json"
    };
    let body = futures::stream::once(async move {
        Ok::<_, std::io::Error>(axum::body::Bytes::from(first.data))
    })
    .chain(stream.map(|item| {
        item.map(|c| axum::body::Bytes::from(c.data))
            .map_err(|s| std::io::Error::other(s.message().to_owned()))
    }));
    let mut resp = Body::from_stream(body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"faultline-export.{extension}\""
    )) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

async fn retention_get(State(api): State<Api>, ctx: Ctx) -> ApiResult {
    let pb::GetRetentionResponse { retention } = api
        .get_retention(ctx.request(pb::GetRetentionRequest {}))
        .await?
        .into_inner();
    Ok(Json(retention_json(retention)))
}

async fn retention_set(
    State(api): State<Api>,
    ctx: Ctx,
    ApiJson(body): ApiJson<RetentionBody>,
) -> ApiResult {
    let RetentionBody {
        days,
        auto_export_before_cleanup,
        export_destination,
    } = body;
    let req = pb::SetRetentionRequest {
        days,
        auto_export_before_cleanup,
        export_destination,
    };
    let pb::SetRetentionResponse { retention } =
        api.set_retention(ctx.request(req)).await?.into_inner();
    Ok(Json(retention_json(retention)))
}
