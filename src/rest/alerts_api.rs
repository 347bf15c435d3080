//! `/api/alerts/rules` and `/api/alerts/incidents` of the Error Logging System (seed
//! document 004), onto `AlertService`. Answers use that document's envelopes: `{"data": …,
//! "status": "success"}`, and its error envelope through `error::render` (the paths are
//! among `els_api::is_own_path`). A `PUT` body changes the fields it holds and keeps the
//! others.

use axum::{
    Router,
    extract::{Path, RawQuery, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, put},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    els_api::query,
    error::ApiError,
    errors_api::time_json,
    extract::{ApiJson, Ctx},
    settings_api::{ok, opt},
};
use crate::{
    error::Error,
    grpc::Api,
    pb::{self, alert_service_server::AlertService},
};

type ApiResult = Result<Response, ApiError>;

pub fn routes() -> Router<Api> {
    Router::new()
        .route("/api/alerts/rules", get(list_rules).post(create_rule))
        .route(
            "/api/alerts/rules/{id}",
            put(update_rule).delete(delete_rule),
        )
        .route(
            "/api/alerts/incidents",
            get(list_incidents).post(create_incident),
        )
        .route("/api/alerts/incidents/{id}", put(update_incident))
}

fn rule_json(r: Option<pb::AlertRule>) -> Result<Value, Error> {
    let pb::AlertRule {
        id,
        name,
        condition,
        threshold,
        time_window,
        enabled,
        notifications,
        severity,
        last_triggered,
        created_at,
        updated_at,
        environment,
        level,
        tags,
    } = r.ok_or_else(|| Error::Internal("answer without a rule".into()))?;
    let tags: std::collections::BTreeMap<String, String> = tags.into_iter().collect();
    Ok(json!({
        "id": id,
        "name": name,
        "condition": condition,
        "threshold": threshold,
        "time_window": time_window,
        "enabled": enabled,
        "notifications": notifications,
        "severity": severity,
        "environment": opt(environment),
        "level": opt(level),
        "tags": tags,
        "last_triggered": time_json(last_triggered),
        "created_at": time_json(created_at),
        "updated_at": time_json(updated_at),
    }))
}

fn incident_json(i: Option<pb::Incident>) -> Result<Value, Error> {
    let pb::Incident {
        id,
        title,
        severity,
        status,
        description,
        assigned_to,
        rule_id,
        created_at,
        updated_at,
        resolved_at,
    } = i.ok_or_else(|| Error::Internal("answer without an incident".into()))?;
    Ok(json!({
        "id": id,
        "title": title,
        "severity": severity,
        "status": status,
        "description": description,
        "assigned_to": opt(assigned_to),
        "rule_id": opt(rule_id),
        "created_at": time_json(created_at),
        "updated_at": time_json(updated_at),
        "resolved_at": time_json(resolved_at),
    }))
}

/// A rule body; every field may be left out (a create then refuses the missing required ones).
#[derive(Deserialize, Default)]
struct RuleBody {
    name: Option<String>,
    condition: Option<String>,
    threshold: Option<u64>,
    time_window: Option<String>,
    notifications: Option<Vec<String>>,
    enabled: Option<bool>,
    severity: Option<String>,
    /// `null` or `""`: every environment (left out: unchanged).
    #[serde(default, deserialize_with = "null_clears")]
    environment: Option<String>,
    /// `null` or `""`: every level (left out: unchanged).
    #[serde(default, deserialize_with = "null_clears")]
    level: Option<String>,
    /// `null` or `{}`: no tag filter (left out: unchanged).
    #[serde(default, deserialize_with = "null_clears")]
    tags: Option<std::collections::HashMap<String, String>>,
}

/// A field that `null` clears as its empty value (`""`, `{}`) does, unlike a field left out
/// (`None`).
fn null_clears<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de> + Default,
{
    Ok(Some(Option::<T>::deserialize(d)?.unwrap_or_default()))
}

impl From<RuleBody> for pb::AlertRuleFields {
    fn from(b: RuleBody) -> Self {
        let RuleBody {
            name,
            condition,
            threshold,
            time_window,
            notifications,
            enabled,
            severity,
            environment,
            level,
            tags,
        } = b;
        pb::AlertRuleFields {
            name,
            condition,
            threshold,
            time_window,
            notifications: notifications.map(|channels| pb::ChannelList { channels }),
            enabled,
            severity,
            environment,
            level,
            tags: tags.map(|tags| pb::TagFilter { tags }),
        }
    }
}

#[derive(Deserialize, Default)]
struct IncidentBody {
    title: Option<String>,
    severity: Option<String>,
    status: Option<String>,
    description: Option<String>,
    assigned_to: Option<String>,
}

impl From<IncidentBody> for pb::IncidentFields {
    fn from(b: IncidentBody) -> Self {
        let IncidentBody {
            title,
            severity,
            status,
            description,
            assigned_to,
        } = b;
        pb::IncidentFields {
            title,
            severity,
            status,
            description,
            assigned_to,
        }
    }
}

async fn list_rules(State(api): State<Api>, ctx: Ctx) -> ApiResult {
    let pb::ListAlertRulesResponse { rules } = api
        .list_alert_rules(ctx.request(pb::ListAlertRulesRequest {}))
        .await?
        .into_inner();
    let rules = rules
        .into_iter()
        .map(|r| rule_json(Some(r)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ok(StatusCode::OK, json!({ "rules": rules })))
}

async fn create_rule(
    State(api): State<Api>,
    ctx: Ctx,
    ApiJson(body): ApiJson<RuleBody>,
) -> ApiResult {
    let req = pb::CreateAlertRuleRequest {
        rule: Some(body.into()),
    };
    let pb::CreateAlertRuleResponse { rule } =
        api.create_alert_rule(ctx.request(req)).await?.into_inner();
    Ok(ok(StatusCode::CREATED, rule_json(rule)?))
}

async fn update_rule(
    State(api): State<Api>,
    ctx: Ctx,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RuleBody>,
) -> ApiResult {
    let req = pb::UpdateAlertRuleRequest {
        id,
        rule: Some(body.into()),
    };
    let pb::UpdateAlertRuleResponse { rule } =
        api.update_alert_rule(ctx.request(req)).await?.into_inner();
    Ok(ok(StatusCode::OK, rule_json(rule)?))
}

async fn delete_rule(State(api): State<Api>, ctx: Ctx, Path(id): Path<String>) -> ApiResult {
    let pb::DeleteAlertRuleResponse {} = api
        .delete_alert_rule(ctx.request(pb::DeleteAlertRuleRequest { id }))
        .await?
        .into_inner();
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_incidents(State(api): State<Api>, ctx: Ctx, RawQuery(q): RawQuery) -> ApiResult {
    let status = query(q).remove("status").unwrap_or_default();
    let pb::ListIncidentsResponse { incidents } = api
        .list_incidents(ctx.request(pb::ListIncidentsRequest { status }))
        .await?
        .into_inner();
    let incidents = incidents
        .into_iter()
        .map(|i| incident_json(Some(i)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ok(StatusCode::OK, json!({ "incidents": incidents })))
}

async fn create_incident(
    State(api): State<Api>,
    ctx: Ctx,
    ApiJson(body): ApiJson<IncidentBody>,
) -> ApiResult {
    let req = pb::CreateIncidentRequest {
        incident: Some(body.into()),
    };
    let pb::CreateIncidentResponse { incident } =
        api.create_incident(ctx.request(req)).await?.into_inner();
    Ok(ok(StatusCode::CREATED, incident_json(incident)?))
}

async fn update_incident(
    State(api): State<Api>,
    ctx: Ctx,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<IncidentBody>,
) -> ApiResult {
    let req = pb::UpdateIncidentRequest {
        id,
        incident: Some(body.into()),
    };
    let pb::UpdateIncidentResponse { incident } =
        api.update_incident(ctx.request(req)).await?.into_inner();
    Ok(ok(StatusCode::OK, incident_json(incident)?))
}
