//! `/api/settings/integrations` (seed document 004, `{data, status}` envelope) and the
//! native `/v1/settings/policy`, onto `SettingsService`.

use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    error::ApiError,
    errors_api::time_json,
    extract::{ApiJson, Ctx},
};
use crate::{
    error::Error,
    grpc::Api,
    integrations::{Kind, TlsMode},
    pb::{self, settings_service_server::SettingsService},
};

pub fn routes() -> Router<Api> {
    Router::new()
        .route(
            "/api/settings/integrations",
            get(list_integrations).post(create_integration),
        )
        .route(
            "/api/settings/integrations/{name}",
            put(put_integration).delete(delete_integration),
        )
        .route(
            "/api/settings/integrations/{name}/test",
            post(test_integration),
        )
        .route("/v1/settings/policy", get(get_policy).put(set_policy))
}

/// The seed document's success envelope.
fn envelope(data: Value) -> Json<Value> {
    Json(json!({ "data": data, "status": "success" }))
}

// ---------- integrations ----------

/// Recipients as one address or a list.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SlackBody {
    #[serde(alias = "url")]
    webhook_url: String,
    #[serde(default)]
    channel: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailBody {
    #[serde(alias = "smtp_host", alias = "host")]
    smtp_server: String,
    #[serde(default, alias = "port")]
    smtp_port: u32,
    #[serde(alias = "from")]
    from_email: String,
    #[serde(default)]
    to: Option<OneOrMany>,
    #[serde(default, alias = "tls_mode")]
    tls: Option<String>,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookBody {
    url: String,
    #[serde(default)]
    secret: String,
}

#[derive(Deserialize)]
struct PutBody {
    config: Value,
}

#[derive(Deserialize)]
struct CreateBody {
    name: String,
    config: Value,
}

fn kind(name: &str) -> Result<Kind, Error> {
    Kind::parse(name).ok_or_else(|| {
        Error::invalid_field(
            "name",
            "must be one of slack, email, webhook",
            "INVALID_ENUM",
        )
    })
}

fn kind_pb(k: Kind) -> i32 {
    (match k {
        Kind::Slack => pb::IntegrationKind::Slack,
        Kind::Email => pb::IntegrationKind::Email,
        Kind::Webhook => pb::IntegrationKind::Webhook,
    }) as i32
}

/// Decodes `config` for the channel `kind`, naming fields as `config.<field>`.
fn config(kind: Kind, config: Value) -> Result<pb::set_integration_request::Config, Error> {
    use pb::set_integration_request::Config as C;
    let bytes = serde_json::to_vec(&config).map_err(Error::internal)?;
    let prefixed = |e: Error| match e {
        Error::Invalid { violations, .. } => Error::invalid(
            violations
                .into_iter()
                .map(|mut v| {
                    v.field = match v.field.as_str() {
                        "body" => "config".to_owned(),
                        f => format!("config.{f}"),
                    };
                    v
                })
                .collect(),
        ),
        other => other,
    };
    Ok(match kind {
        Kind::Slack => {
            let SlackBody {
                webhook_url,
                channel,
            } = super::extract::decode(&bytes).map_err(prefixed)?;
            C::Slack(pb::SlackConfig {
                webhook_url,
                channel,
            })
        }
        Kind::Webhook => {
            let WebhookBody { url, secret } = super::extract::decode(&bytes).map_err(prefixed)?;
            C::Webhook(pb::WebhookConfig { url, secret })
        }
        Kind::Email => {
            let EmailBody {
                smtp_server,
                smtp_port,
                from_email,
                to,
                tls,
                username,
                password,
            } = super::extract::decode(&bytes).map_err(prefixed)?;
            let tls = match tls.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                None => pb::SmtpTls::Unspecified,
                Some(t) => match TlsMode::parse(t) {
                    Some(TlsMode::None) => pb::SmtpTls::None,
                    Some(TlsMode::Starttls) => pb::SmtpTls::Starttls,
                    Some(TlsMode::Tls) => pb::SmtpTls::Tls,
                    None => {
                        return Err(Error::invalid_field(
                            "config.tls",
                            "must be one of none, starttls, tls",
                            "INVALID_ENUM",
                        ));
                    }
                },
            };
            C::Email(pb::EmailConfig {
                smtp_host: smtp_server,
                smtp_port,
                from: from_email,
                to: match to {
                    None => Vec::new(),
                    Some(OneOrMany::One(s)) => s.split(',').map(str::to_owned).collect(),
                    Some(OneOrMany::Many(v)) => v,
                },
                tls: tls as i32,
                username,
                password,
            })
        }
    })
}

fn integration_json(i: Option<pb::Integration>) -> Value {
    let pb::Integration {
        kind,
        status,
        last_test,
        last_test_error,
        config,
        created_at,
        updated_at,
    } = i.unwrap_or_default();
    let name = match pb::IntegrationKind::try_from(kind) {
        Ok(pb::IntegrationKind::Slack) => "slack",
        Ok(pb::IntegrationKind::Email) => "email",
        _ => "webhook",
    };
    let status = match pb::IntegrationStatus::try_from(status) {
        Ok(pb::IntegrationStatus::Connected) => "connected",
        Ok(pb::IntegrationStatus::Error) => "error",
        _ => "configured",
    };
    use pb::integration::Config as C;
    let config = match config {
        Some(C::Slack(pb::SlackConfig {
            webhook_url,
            channel,
        })) => {
            json!({ "webhook_url": webhook_url, "channel": channel })
        }
        Some(C::Email(pb::EmailConfig {
            smtp_host,
            smtp_port,
            from,
            to,
            tls,
            username,
            password,
        })) => json!({
            "smtp_server": smtp_host,
            "smtp_port": smtp_port,
            "from_email": from,
            "to": to,
            "tls": match pb::SmtpTls::try_from(tls) {
                Ok(pb::SmtpTls::None) => "none",
                Ok(pb::SmtpTls::Tls) => "tls",
                _ => "starttls",
            },
            "username": username,
            "password": password,
        }),
        Some(C::Webhook(pb::WebhookConfig { url, secret })) => {
            json!({ "url": url, "secret": secret })
        }
        None => json!({}),
    };
    json!({
        "name": name,
        "status": status,
        "config": config,
        "last_test": time_json(last_test),
        "last_test_error": if last_test_error.is_empty() { Value::Null } else { Value::String(last_test_error) },
        "created_at": time_json(created_at),
        "updated_at": time_json(updated_at),
    })
}

async fn list_integrations(State(api): State<Api>, ctx: Ctx) -> Result<Json<Value>, ApiError> {
    let pb::ListIntegrationsResponse { integrations } = api
        .list_integrations(ctx.request(pb::ListIntegrationsRequest {}))
        .await?
        .into_inner();
    let list: Vec<Value> = integrations
        .into_iter()
        .map(|i| integration_json(Some(i)))
        .collect();
    Ok(envelope(json!({ "integrations": list })))
}

async fn save(api: &Api, ctx: &Ctx, kind: Kind, cfg: Value) -> Result<Json<Value>, ApiError> {
    let req = pb::SetIntegrationRequest {
        config: Some(config(kind, cfg)?),
    };
    let pb::SetIntegrationResponse { integration } =
        api.set_integration(ctx.request(req)).await?.into_inner();
    Ok(envelope(integration_json(integration)))
}

async fn create_integration(
    State(api): State<Api>,
    ctx: Ctx,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<Json<Value>, ApiError> {
    let CreateBody { name, config } = body;
    save(&api, &ctx, kind(&name)?, config).await
}

async fn put_integration(
    State(api): State<Api>,
    Path(name): Path<String>,
    ctx: Ctx,
    ApiJson(body): ApiJson<PutBody>,
) -> Result<Json<Value>, ApiError> {
    let PutBody { config } = body;
    save(&api, &ctx, kind(&name)?, config).await
}

async fn delete_integration(
    State(api): State<Api>,
    Path(name): Path<String>,
    ctx: Ctx,
) -> Result<Response, ApiError> {
    let req = pb::DeleteIntegrationRequest {
        kind: kind_pb(kind(&name)?),
    };
    let pb::DeleteIntegrationResponse {} =
        api.delete_integration(ctx.request(req)).await?.into_inner();
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn test_integration(
    State(api): State<Api>,
    Path(name): Path<String>,
    ctx: Ctx,
) -> Result<Json<Value>, ApiError> {
    let req = pb::TestIntegrationRequest {
        kind: kind_pb(kind(&name)?),
    };
    let pb::TestIntegrationResponse {
        delivered,
        integration,
    } = api.test_integration(ctx.request(req)).await?.into_inner();
    Ok(envelope(json!({
        "delivered": delivered,
        "integration": integration_json(integration),
    })))
}

// ---------- project policy ----------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyBody {
    #[serde(default)]
    rate_limits: RateBody,
    #[serde(default)]
    scrub_fields: Vec<String>,
    #[serde(default)]
    allowed_origins: Vec<String>,
    #[serde(default)]
    inbound_filters: InboundBody,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct InboundBody {
    #[serde(default)]
    browser_extensions: bool,
    #[serde(default)]
    localhost: bool,
    #[serde(default)]
    web_crawlers: bool,
    #[serde(default)]
    legacy_browsers: Vec<String>,
    #[serde(default)]
    error_messages: Vec<String>,
    #[serde(default)]
    releases: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RateBody {
    #[serde(default)]
    ingest_per_minute: Option<u32>,
    #[serde(default)]
    analytics_per_minute: Option<u32>,
    #[serde(default)]
    general_per_minute: Option<u32>,
}

fn policy_json(p: Option<pb::ProjectPolicy>, filtered: Vec<pb::FilteredCount>) -> Value {
    let pb::ProjectPolicy {
        ingest_per_minute,
        analytics_per_minute,
        general_per_minute,
        scrub_fields,
        allowed_origins,
        inbound_filters,
    } = p.unwrap_or_default();
    let pb::InboundFilters {
        browser_extensions,
        localhost,
        web_crawlers,
        error_messages,
        releases,
        legacy_browsers,
    } = inbound_filters.unwrap_or_default();
    let figure = |n: u32| if n == 0 { Value::Null } else { json!(n) };
    json!({
        "rate_limits": {
            "ingest_per_minute": figure(ingest_per_minute),
            "analytics_per_minute": figure(analytics_per_minute),
            "general_per_minute": figure(general_per_minute),
        },
        "scrub_fields": scrub_fields,
        "allowed_origins": allowed_origins,
        "inbound_filters": {
            "browser_extensions": browser_extensions,
            "localhost": localhost,
            "web_crawlers": web_crawlers,
            "legacy_browsers": legacy_browsers,
            "error_messages": error_messages,
            "releases": releases,
        },
        "filtered_last_30_days": filtered
            .into_iter()
            .map(|f| (f.filter, json!(f.events)))
            .collect::<serde_json::Map<String, Value>>(),
    })
}

async fn get_policy(State(api): State<Api>, ctx: Ctx) -> Result<Json<Value>, ApiError> {
    let pb::GetProjectPolicyResponse { policy, filtered } = api
        .get_project_policy(ctx.request(pb::GetProjectPolicyRequest {}))
        .await?
        .into_inner();
    Ok(Json(policy_json(policy, filtered)))
}

async fn set_policy(
    State(api): State<Api>,
    ctx: Ctx,
    ApiJson(body): ApiJson<PolicyBody>,
) -> Result<Json<Value>, ApiError> {
    let PolicyBody {
        rate_limits:
            RateBody {
                ingest_per_minute,
                analytics_per_minute,
                general_per_minute,
            },
        scrub_fields,
        allowed_origins,
        inbound_filters:
            InboundBody {
                browser_extensions,
                localhost,
                web_crawlers,
                legacy_browsers,
                error_messages,
                releases,
            },
    } = body;
    let req = pb::SetProjectPolicyRequest {
        policy: Some(pb::ProjectPolicy {
            ingest_per_minute: ingest_per_minute.unwrap_or(0),
            analytics_per_minute: analytics_per_minute.unwrap_or(0),
            general_per_minute: general_per_minute.unwrap_or(0),
            scrub_fields,
            allowed_origins,
            inbound_filters: Some(pb::InboundFilters {
                browser_extensions,
                localhost,
                web_crawlers,
                error_messages,
                releases,
                legacy_browsers,
            }),
        }),
    };
    let pb::SetProjectPolicyResponse { policy, filtered } =
        api.set_project_policy(ctx.request(req)).await?.into_inner();
    Ok(Json(policy_json(policy, filtered)))
}
