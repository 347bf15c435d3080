//! The Error Logging System API (seed document 004): `/health`, `/api/errors` CRUD,
//! `/api/stats`, `/api/analytics/*` and `/api/monitoring/*` (`/api/alerts/*` is in
//! `alerts_api`), onto `CaptureService`,
//! `GroupService` and `InsightsService`. An "error" of that API is a Faultline group (an
//! aggregated error with `count`, `first_seen`, `last_seen`, `fingerprint`, `resolved`).
//! Answers use its envelopes: `{"data": …, "status": "success"}` and, through
//! `error::render` (by `is_own_path`), `{"error": "…", "status": "error"}`.

use std::collections::HashMap;

use axum::{
    Json, Router,
    extract::{Path, RawQuery, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, put},
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{
    error::ApiError,
    errors_api::{level_json, time_json},
    extract::{Ctx, RawBody, decode},
};
use crate::{
    domain::{Level, insights::human_duration},
    error::Error,
    grpc::{Api, convert},
    pb::{
        self, capture_service_server::CaptureService, group_service_server::GroupService,
        insights_service_server::InsightsService,
    },
};

type ApiResult = Result<Response, ApiError>;

pub fn routes() -> Router<Api> {
    let api = Router::new()
        .route("/api/errors", get(list).post(create))
        .route("/api/errors/{id}", get(get_one).delete(remove))
        .route("/api/errors/{id}/resolve", put(resolve))
        .route("/api/stats", get(stats))
        .route("/api/analytics/trends", get(trends))
        .route("/api/analytics/performance", get(performance))
        .route("/api/monitoring/services", get(services))
        .route("/api/monitoring/metrics", get(metrics))
        .route("/api/monitoring/uptime", get(uptime));
    Router::new().route("/health", get(health)).merge(api)
}

/// Whether `path` is one of `routes`: their errors take this document's envelope, also the
/// refusals made before a route is reached (rate limits, body and time limits, CORS).
pub(super) fn is_own_path(path: &str) -> bool {
    let p = path.trim_end_matches('/');
    matches!(p, "/health" | "/api/errors" | "/api/stats")
        || [
            "/api/errors/",
            "/api/analytics/",
            "/api/monitoring/",
            "/api/alerts/",
        ]
        .iter()
        .any(|prefix| p.starts_with(prefix))
}

/// `{"data": …, "status": "success"}`.
fn success(data: Value) -> Response {
    Json(json!({"data": data, "status": "success"})).into_response()
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn opt_round2(v: Option<f64>) -> Value {
    v.map(|v| json!(round2(v))).unwrap_or(Value::Null)
}

/// The query parameters, each at most once.
pub(super) fn query(raw: Option<String>) -> HashMap<String, String> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// No auth; 503 with `degraded` when the database does not answer.
async fn health(State(api): State<Api>, ctx: Ctx) -> ApiResult {
    let pb::GetHealthResponse {
        status,
        database_ok,
        timestamp,
    } = api
        .get_health(ctx.request(pb::GetHealthRequest {}))
        .await?
        .into_inner();
    let code = if database_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = json!({"status": status, "timestamp": time_json(timestamp)});
    if !database_ok {
        body["database"] = json!("unreachable");
    }
    Ok((code, Json(body)).into_response())
}

#[derive(Deserialize)]
struct CreateBody {
    #[serde(default)]
    level: Option<String>,
    message: String,
    #[serde(default)]
    stack_trace: Option<String>,
    #[serde(default)]
    context: Option<Map<String, Value>>,
    source: String,
    #[serde(default)]
    environment: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

fn els_level(field: &str, s: Option<&str>) -> Result<i32, Error> {
    match s.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(pb::Level::Unspecified as i32),
        Some(s) => Level::parse(s)
            .map(|l| convert::level_to_pb(l) as i32)
            .ok_or_else(|| {
                Error::invalid_field(
                    field,
                    "must be one of error, warning, info, debug",
                    "INVALID_ENUM",
                )
            }),
    }
}

/// An aggregated error of this API from a group, plus what the latest event carried.
fn error_json(g: &pb::Group, event: &Map<String, Value>) -> Value {
    let last_seen = time_json(g.last_seen);
    let first_seen = time_json(g.first_seen);
    let field = |k: &str| event.get(k).cloned().unwrap_or(Value::Null);
    json!({
        "id": g.id,
        "timestamp": last_seen,
        "level": level_json(g.level),
        "message": field("message"),
        "stack_trace": field("stack_trace"),
        "context": field("context"),
        "source": field("source"),
        "environment": field("environment"),
        "user_agent": field("user_agent"),
        "ip_address": field("ip_address"),
        "url": field("url"),
        "fingerprint": g.fingerprint,
        "resolved": g.status == pb::GroupStatus::Resolved as i32,
        "count": g.count,
        "first_seen": first_seen,
        "last_seen": last_seen,
        "created_at": first_seen,
        "updated_at": last_seen,
        "workflow_stage": convert::stage_name(g.workflow_stage),
    })
}

/// Records the error with the caller's user agent and address (the TCP peer), and answers
/// with the aggregated error it joined.
async fn create(State(api): State<Api>, ctx: Ctx, RawBody(raw): RawBody) -> ApiResult {
    let CreateBody {
        level,
        message,
        stack_trace,
        context,
        source,
        environment,
        url,
    } = decode(&raw)?;
    if message.trim().is_empty() {
        return Err(Error::required("message").into());
    }
    if source.trim().is_empty() {
        return Err(Error::required("source").into());
    }
    let level = els_level("level", level.as_deref())?;
    let environment = environment
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "production".to_owned());
    // The stored payload is the body as sent, with what the server saw of the caller.
    let mut payload: Map<String, Value> = serde_json::from_slice(&raw).unwrap_or_default();
    payload.insert("environment".into(), json!(environment));
    let user_agent = ctx.header("user-agent").unwrap_or_default().to_owned();
    let ip = ctx
        .peer()
        .map(|p| p.ip().to_canonical().to_string())
        .unwrap_or_default();
    payload.insert("user_agent".into(), json!(user_agent));
    payload.insert("ip_address".into(), json!(ip));
    let mut tags = HashMap::from([("source".to_owned(), source.trim().to_owned())]);
    if let Some(u) = url.as_deref().filter(|u| !u.is_empty()) {
        tags.insert("url".to_owned(), u.to_owned());
    }
    let user_id = context
        .as_ref()
        .and_then(|c| c.get("user_id"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let captured = api
        .capture(ctx.request(pb::CaptureRequest {
            message,
            stack: stack_trace.unwrap_or_default(),
            level,
            environment,
            user_id,
            tags,
            payload_json: Value::Object(payload.clone()).to_string(),
            ..Default::default()
        }))
        .await?
        .into_inner();
    let group = match api
        .get_group(ctx.request(pb::GetGroupRequest {
            group_id: captured.group_id.clone(),
        }))
        .await
    {
        Ok(r) => r.into_inner().group,
        // An ingest-only caller (key, or keyless loopback ingest) stored the event but may not
        // read the group back: answer with what the capture itself told.
        Err(s)
            if matches!(
                s.code(),
                tonic::Code::PermissionDenied | tonic::Code::Unauthenticated
            ) =>
        {
            None
        }
        Err(s) => return Err(s.into()),
    };
    let mut data = match &group {
        Some(g) => error_json(g, &payload),
        None => {
            let mut v = Value::Object(payload.clone());
            v["id"] = json!(captured.group_id);
            v["fingerprint"] = json!(captured.fingerprint);
            v
        }
    };
    data["event_id"] = json!(captured.event_id);
    Ok((
        StatusCode::CREATED,
        Json(json!({"data": data, "status": "success"})),
    )
        .into_response())
}

async fn list(State(api): State<Api>, ctx: Ctx, RawQuery(raw): RawQuery) -> ApiResult {
    let q = query(raw);
    let int = |name: &str, min: u32, max: u32| -> Result<Option<u32>, Error> {
        match q.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(Error::invalid_field(
                    name,
                    format!("must be an integer from {min} to {max}"),
                    "OUT_OF_RANGE",
                )),
            },
        }
    };
    let limit = int("limit", 1, 100)?.unwrap_or(50);
    let offset = int("offset", 0, u32::MAX)?.unwrap_or(0);
    let level = els_level("level", q.get("level").map(String::as_str))?;
    let source = q.get("source").cloned().unwrap_or_default();
    let pb::QueryGroupsResponse { groups, total } = api
        .query_groups(ctx.request(pb::QueryGroupsRequest {
            limit,
            offset,
            level,
            source: source.clone(),
        }))
        .await?
        .into_inner();
    let mut known = Map::new();
    if !source.is_empty() {
        known.insert("source".into(), json!(source));
    }
    let errors: Vec<Value> = groups
        .iter()
        .map(|g| {
            let mut v = error_json(g, &known);
            v["message"] = json!(g.title);
            v
        })
        .collect();
    Ok(success(json!({
        "errors": errors,
        "total": total,
        "page": offset / limit + 1,
        "limit": limit,
    })))
}

/// The group, with the fields of its latest event's payload.
async fn get_one(State(api): State<Api>, ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    let group = api
        .get_group(ctx.request(pb::GetGroupRequest {
            group_id: id.clone(),
        }))
        .await?
        .into_inner()
        .group
        .ok_or(Error::NotFound { what: "error" })?;
    let latest = api
        .list_group_events(ctx.request(pb::ListGroupEventsRequest {
            group_id: id,
            cursor: String::new(),
            limit: 1,
        }))
        .await?
        .into_inner()
        .events
        .into_iter()
        .next();
    let mut payload = Map::new();
    if let Some(ev) = latest
        && let Some(full) = api
            .get_event(ctx.request(pb::GetEventRequest { event_id: ev.id }))
            .await?
            .into_inner()
            .event
    {
        payload = serde_json::from_str(&full.payload_json).unwrap_or_default();
        payload.entry("message").or_insert(json!(full.message));
        payload
            .entry("environment")
            .or_insert(json!(full.environment));
    }
    Ok(success(error_json(&group, &payload)))
}

async fn resolve(State(api): State<Api>, ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    api.resolve_group(ctx.request(pb::ResolveGroupRequest {
        group_id: id,
        in_next_release: false,
    }))
    .await?;
    Ok(success(json!({"status": "resolved"})))
}

async fn remove(State(api): State<Api>, ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    api.delete_group(ctx.request(pb::DeleteGroupRequest { group_id: id }))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn stats(State(api): State<Api>, ctx: Ctx) -> ApiResult {
    let pb::GetStatsResponse {
        total_errors,
        resolved_errors,
        errors_today,
        errors_this_week,
        errors_this_month,
        error_rate_24h,
        resolution_rate,
        avg_resolution_seconds,
    } = api
        .get_stats(ctx.request(pb::GetStatsRequest {}))
        .await?
        .into_inner();
    Ok(success(json!({
        "total_errors": total_errors,
        "resolved_errors": resolved_errors,
        "errors_today": errors_today,
        "errors_this_week": errors_this_week,
        "errors_this_month": errors_this_month,
        "error_rate_24h": round2(error_rate_24h),
        "resolution_rate": round2(resolution_rate),
        "avg_resolution_time": if resolved_errors == 0 { Value::Null } else { json!(human_duration(avg_resolution_seconds)) },
    })))
}

async fn trends(State(api): State<Api>, ctx: Ctx, RawQuery(raw): RawQuery) -> ApiResult {
    let q = query(raw);
    let pb::GetTrendsResponse {
        period,
        group_by,
        data_points,
    } = api
        .get_trends(ctx.request(pb::GetTrendsRequest {
            period: q.get("period").cloned().unwrap_or_default(),
            group_by: q.get("group_by").cloned().unwrap_or_default(),
        }))
        .await?
        .into_inner();
    let points: Vec<Value> = data_points
        .into_iter()
        .map(|p| {
            json!({
                "timestamp": time_json(p.timestamp),
                "error_count": p.error_count,
                "resolved_count": p.resolved_count,
                "critical_count": p.critical_count,
            })
        })
        .collect();
    Ok(success(
        json!({"period": period, "group_by": group_by, "data_points": points}),
    ))
}

async fn performance(State(api): State<Api>, ctx: Ctx) -> ApiResult {
    let pb::GetPerformanceResponse {
        avg_response_time_ms,
        error_rate_percent,
        throughput_rpm,
        availability_percent,
        performance_score,
    } = api
        .get_performance(ctx.request(pb::GetPerformanceRequest {}))
        .await?
        .into_inner();
    Ok(success(json!({
        "avg_response_time": round2(avg_response_time_ms),
        "error_rate_percent": round2(error_rate_percent),
        "throughput_rpm": round2(throughput_rpm),
        "availability_percent": round2(availability_percent),
        "performance_score": round2(performance_score),
    })))
}

async fn services(State(api): State<Api>, ctx: Ctx) -> ApiResult {
    let pb::GetServicesResponse {
        services,
        overall_health,
    } = api
        .get_services(ctx.request(pb::GetServicesRequest {}))
        .await?
        .into_inner();
    let services: Vec<Value> = services
        .into_iter()
        .map(|s| {
            let pb::ServiceHealth {
                name,
                status,
                uptime_percent,
                response_time_ms,
                last_checked,
                details,
            } = s;
            json!({
                "name": name,
                "status": status,
                "uptime_percent": round2(uptime_percent),
                "response_time_ms": round2(response_time_ms),
                "last_checked": time_json(last_checked),
                "details": details,
            })
        })
        .collect();
    Ok(success(
        json!({"services": services, "overall_health": overall_health}),
    ))
}

async fn metrics(State(api): State<Api>, ctx: Ctx, RawQuery(raw): RawQuery) -> ApiResult {
    let q = query(raw);
    let pb::GetMetricsResponse {
        cpu_usage_percent,
        memory_usage_percent,
        disk_usage_percent,
        network_bytes_in,
        network_bytes_out,
        active_connections,
        requests_per_minute,
        process_rss_bytes,
        timeframe,
    } = api
        .get_metrics(ctx.request(pb::GetMetricsRequest {
            timeframe: q.get("timeframe").cloned().unwrap_or_default(),
        }))
        .await?
        .into_inner();
    Ok(success(json!({
        "cpu_usage_percent": opt_round2(cpu_usage_percent),
        "memory_usage_percent": opt_round2(memory_usage_percent),
        "disk_usage_percent": opt_round2(disk_usage_percent),
        "network_io": {"bytes_in": network_bytes_in, "bytes_out": network_bytes_out},
        "active_connections": active_connections,
        "requests_per_minute": round2(requests_per_minute),
        "process_rss_bytes": process_rss_bytes,
        "timeframe": timeframe,
    })))
}

async fn uptime(State(api): State<Api>, ctx: Ctx) -> ApiResult {
    let pb::GetUptimeResponse {
        current_uptime_hours,
        uptime_percent_24h,
        uptime_percent_7d,
        uptime_percent_30d,
        incidents_count,
        last_downtime,
    } = api
        .get_uptime(ctx.request(pb::GetUptimeRequest {}))
        .await?
        .into_inner();
    Ok(success(json!({
        "current_uptime_hours": round2(current_uptime_hours),
        "uptime_percent_24h": round2(uptime_percent_24h),
        "uptime_percent_7d": round2(uptime_percent_7d),
        "uptime_percent_30d": round2(uptime_percent_30d),
        "incidents_count": incidents_count,
        "last_downtime": time_json(last_downtime),
    })))
}
