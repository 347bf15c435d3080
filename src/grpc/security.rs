//! The project policy and integration operations of `SettingsService`. The trait methods in
//! `settings.rs` delegate here so each operation reads as one function: scope check, protobuf
//! to domain, store, cache, back to protobuf.

use chrono::Utc;
use tonic::{Request, Response, Status};

use super::{Api, convert::ts};
use crate::{
    auth::{self, Scope},
    domain::{
        inbound::{self, InboundFilters},
        policy::{POLICY_ITEM_MAX, POLICY_LIST_MAX, ProjectPolicy, RateOverrides},
    },
    error::{Error, FieldViolation},
    integrations::{
        Config, EmailConfig, Integration, Kind, SlackConfig, Status as ChannelStatus, TlsMode,
        WebhookConfig, send,
    },
    limits::policy,
    pb,
    store::NewAudit,
};

/// Writes the audit entry of a settings change `entry` made to `project`.
pub(super) async fn record_change(
    api: &Api,
    entry: NewAudit,
    project: uuid::Uuid,
    target: String,
    details: serde_json::Value,
) -> Result<(), Error> {
    api.store
        .record_audit(entry.for_project(project).target(target).details(details))
        .await
}

/// Highest per-minute figure a project may set.
const MAX_PER_MINUTE: u32 = 10_000_000;

fn policy_to_pb(p: ProjectPolicy) -> pb::ProjectPolicy {
    let ProjectPolicy {
        rate:
            RateOverrides {
                ingest_per_minute,
                analytics_per_minute,
                general_per_minute,
            },
        scrub_fields,
        allowed_origins,
        inbound,
    } = p;
    let InboundFilters {
        browser_extensions,
        localhost,
        web_crawlers,
        legacy_browsers,
        error_messages,
        releases,
    } = inbound;
    pb::ProjectPolicy {
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
    }
}

fn policy_from_pb(p: pb::ProjectPolicy) -> Result<ProjectPolicy, Error> {
    let pb::ProjectPolicy {
        ingest_per_minute,
        analytics_per_minute,
        general_per_minute,
        scrub_fields,
        allowed_origins,
        inbound_filters,
    } = p;
    let pb::InboundFilters {
        browser_extensions,
        localhost,
        web_crawlers,
        error_messages,
        releases,
        legacy_browsers,
    } = inbound_filters.unwrap_or_default();
    let mut v = Vec::new();
    let mut rate = |field: &str, n: u32| {
        if n > MAX_PER_MINUTE {
            v.push(FieldViolation::new(
                field,
                format!("must be at most {MAX_PER_MINUTE} (0: the server default)"),
                "OUT_OF_RANGE",
            ));
        }
        (n > 0).then_some(n)
    };
    let rate = RateOverrides {
        ingest_per_minute: rate("ingest_per_minute", ingest_per_minute),
        analytics_per_minute: rate("analytics_per_minute", analytics_per_minute),
        general_per_minute: rate("general_per_minute", general_per_minute),
    };
    let list = |field: &str,
                items: Vec<String>,
                v: &mut Vec<FieldViolation>,
                ok: fn(&str) -> bool| {
        let items: Vec<String> = items.into_iter().map(|s| s.trim().to_owned()).collect();
        if items.len() > POLICY_LIST_MAX {
            v.push(FieldViolation::new(
                field,
                format!("at most {POLICY_LIST_MAX} entries"),
                "TOO_MANY",
            ));
        }
        for (i, s) in items.iter().enumerate() {
            if s.is_empty() || s.len() > POLICY_ITEM_MAX || !ok(s) {
                v.push(FieldViolation::new(
                    format!("{field}[{i}]"),
                    match field {
                        "allowed_origins" => "must be `*` or an origin such as https://app.example.com or https://*.example.com",
                        "scrub_fields" => "must be a non-empty field name of at most 256 bytes",
                        _ => "must be a non-empty pattern of at most 256 bytes",
                    },
                    "INVALID",
                ));
            }
        }
        items
    };
    let scrub_fields = list("scrub_fields", scrub_fields, &mut v, |_| true);
    let allowed_origins = list("allowed_origins", allowed_origins, &mut v, valid_origin);
    let mut legacy = Vec::new();
    for (i, name) in legacy_browsers.into_iter().enumerate() {
        let name = name.trim().to_owned();
        if !inbound::is_legacy_browser_filter(&name) {
            let names: Vec<&str> = inbound::LEGACY_BROWSERS.iter().map(|b| b.name).collect();
            v.push(FieldViolation::new(
                format!("inbound_filters.legacy_browsers[{i}]"),
                format!("must be one of {}", names.join(", ")),
                "INVALID",
            ));
        } else if !legacy.contains(&name) {
            legacy.push(name);
        }
    }
    let inbound = InboundFilters {
        browser_extensions,
        localhost,
        web_crawlers,
        legacy_browsers: legacy,
        error_messages: list(
            "inbound_filters.error_messages",
            error_messages,
            &mut v,
            |_| true,
        ),
        releases: list("inbound_filters.releases", releases, &mut v, |_| true),
    };
    if !v.is_empty() {
        return Err(Error::invalid(v));
    }
    Ok(ProjectPolicy {
        rate,
        scrub_fields,
        allowed_origins,
        inbound,
    })
}

fn valid_origin(s: &str) -> bool {
    if s == "*" {
        return true;
    }
    let Some((scheme, host)) = s.trim_end_matches('/').split_once("://") else {
        return false;
    };
    let host = host.strip_prefix("*.").unwrap_or(host);
    matches!(scheme, "http" | "https")
        && !host.is_empty()
        && reqwest::Url::parse(&format!("{scheme}://{host}"))
            .is_ok_and(|u| u.path() == "/" && u.query().is_none())
        && !host.contains(['/', '?', '#', '@', '*'])
}

pub async fn get_policy(
    api: &Api,
    req: Request<pb::GetProjectPolicyRequest>,
) -> Result<Response<pb::GetProjectPolicyResponse>, Status> {
    let p = auth::require(req.extensions(), Scope::Read)?;
    let pb::GetProjectPolicyRequest {} = req.into_inner();
    let stored = api.store.get_policy(p.project_id).await?;
    Ok(Response::new(pb::GetProjectPolicyResponse {
        policy: Some(policy_to_pb(stored)),
        filtered: filtered(api, p.project_id).await?,
    }))
}

pub async fn set_policy(
    api: &Api,
    req: Request<pb::SetProjectPolicyRequest>,
) -> Result<Response<pb::SetProjectPolicyResponse>, Status> {
    let p = auth::require(req.extensions(), Scope::Admin)?;
    let entry = super::access::audit(&p, req.extensions(), "project_policy.set");
    let pb::SetProjectPolicyRequest { policy: new } = req.into_inner();
    let new = policy_from_pb(new.ok_or_else(|| Error::required("policy"))?)?;
    let stored = api.store.set_policy(p.project_id, &new).await?;
    // Rate limits, origins and scrubbing use the new policy from the next request on.
    policy::put(p.project_id, stored.clone());
    let details = serde_json::to_value(&stored).unwrap_or_default();
    let target = format!("project:{}", p.project_id);
    record_change(api, entry, p.project_id, target, details).await?;
    Ok(Response::new(pb::SetProjectPolicyResponse {
        policy: Some(policy_to_pb(stored)),
        filtered: filtered(api, p.project_id).await?,
    }))
}

/// Events each inbound filter of the project dropped in the last 30 days, counted so far
/// (`ingest::inbound` adds the latest every few seconds).
async fn filtered(api: &Api, project: uuid::Uuid) -> Result<Vec<pb::FilteredCount>, Error> {
    Ok(api
        .store
        .filtered_since(project, inbound::first_shown_day(Utc::now()))
        .await?
        .into_iter()
        .map(|(reason, events)| pb::FilteredCount {
            filter: reason.as_str().to_owned(),
            events,
        })
        .collect())
}

fn kind_to_pb(k: Kind) -> pb::IntegrationKind {
    match k {
        Kind::Slack => pb::IntegrationKind::Slack,
        Kind::Email => pb::IntegrationKind::Email,
        Kind::Webhook => pb::IntegrationKind::Webhook,
    }
}

fn kind_from_pb(v: i32) -> Result<Kind, Error> {
    match pb::IntegrationKind::try_from(v) {
        Ok(pb::IntegrationKind::Slack) => Ok(Kind::Slack),
        Ok(pb::IntegrationKind::Email) => Ok(Kind::Email),
        Ok(pb::IntegrationKind::Webhook) => Ok(Kind::Webhook),
        Ok(pb::IntegrationKind::Unspecified) => Err(Error::required("kind")),
        Err(_) => Err(Error::invalid_field(
            "kind",
            format!("unknown kind {v}"),
            "INVALID_ENUM",
        )),
    }
}

fn tls_to_pb(t: TlsMode) -> pb::SmtpTls {
    match t {
        TlsMode::None => pb::SmtpTls::None,
        TlsMode::Starttls => pb::SmtpTls::Starttls,
        TlsMode::Tls => pb::SmtpTls::Tls,
    }
}

fn config_to_pb(c: Config) -> pb::integration::Config {
    match c {
        Config::Slack(SlackConfig {
            webhook_url,
            channel,
        }) => pb::integration::Config::Slack(pb::SlackConfig {
            webhook_url,
            channel,
        }),
        Config::Email(EmailConfig {
            smtp_host,
            smtp_port,
            from,
            to,
            tls,
            username,
            password,
        }) => pb::integration::Config::Email(pb::EmailConfig {
            smtp_host,
            smtp_port: u32::from(smtp_port),
            from,
            to,
            tls: tls_to_pb(tls) as i32,
            username,
            password,
        }),
        Config::Webhook(WebhookConfig { url, secret }) => {
            pb::integration::Config::Webhook(pb::WebhookConfig { url, secret })
        }
    }
}

fn config_from_pb(c: pb::set_integration_request::Config) -> Result<Config, Error> {
    use pb::set_integration_request::Config as C;
    Ok(match c {
        C::Slack(pb::SlackConfig {
            webhook_url,
            channel,
        }) => Config::Slack(SlackConfig {
            webhook_url: webhook_url.trim().to_owned(),
            channel: channel.trim().to_owned(),
        }),
        C::Email(pb::EmailConfig {
            smtp_host,
            smtp_port,
            from,
            to,
            tls,
            username,
            password,
        }) => {
            let tls = match pb::SmtpTls::try_from(tls) {
                Ok(pb::SmtpTls::Unspecified | pb::SmtpTls::Starttls) => TlsMode::Starttls,
                Ok(pb::SmtpTls::None) => TlsMode::None,
                Ok(pb::SmtpTls::Tls) => TlsMode::Tls,
                Err(_) => {
                    return Err(Error::invalid_field(
                        "config.tls",
                        format!("unknown TLS mode {tls}"),
                        "INVALID_ENUM",
                    ));
                }
            };
            let smtp_port = match smtp_port {
                0 => match tls {
                    TlsMode::None => 25,
                    TlsMode::Starttls => 587,
                    TlsMode::Tls => 465,
                },
                p => u16::try_from(p).map_err(|_| {
                    Error::invalid_field(
                        "config.smtp_port",
                        "must be between 1 and 65535",
                        "OUT_OF_RANGE",
                    )
                })?,
            };
            Config::Email(EmailConfig {
                smtp_host: smtp_host.trim().to_owned(),
                smtp_port,
                from: from.trim().to_owned(),
                to: to.into_iter().map(|t| t.trim().to_owned()).collect(),
                tls,
                username,
                password,
            })
        }
        C::Webhook(pb::WebhookConfig { url, secret }) => Config::Webhook(WebhookConfig {
            url: url.trim().to_owned(),
            secret,
        }),
    })
}

fn status_to_pb(s: ChannelStatus) -> pb::IntegrationStatus {
    match s {
        ChannelStatus::Configured => pb::IntegrationStatus::Configured,
        ChannelStatus::Connected => pb::IntegrationStatus::Connected,
        ChannelStatus::Failed => pb::IntegrationStatus::Error,
    }
}

/// The channel as it may be shown: credentials masked.
fn integration_to_pb(i: Integration) -> pb::Integration {
    let Integration {
        config,
        status,
        last_test,
        last_test_error,
        created_at,
        updated_at,
    } = i;
    pb::Integration {
        kind: kind_to_pb(config.kind()) as i32,
        status: status_to_pb(status) as i32,
        last_test: last_test.map(ts),
        last_test_error: last_test_error.unwrap_or_default(),
        config: Some(config_to_pb(config.masked())),
        created_at: Some(ts(created_at)),
        updated_at: Some(ts(updated_at)),
    }
}

pub async fn list_integrations(
    api: &Api,
    req: Request<pb::ListIntegrationsRequest>,
) -> Result<Response<pb::ListIntegrationsResponse>, Status> {
    let p = auth::require(req.extensions(), Scope::Read)?;
    let pb::ListIntegrationsRequest {} = req.into_inner();
    let all = api.store.list_integrations(p.project_id).await?;
    Ok(Response::new(pb::ListIntegrationsResponse {
        integrations: all.into_iter().map(integration_to_pb).collect(),
    }))
}

pub async fn set_integration(
    api: &Api,
    req: Request<pb::SetIntegrationRequest>,
) -> Result<Response<pb::SetIntegrationResponse>, Status> {
    let p = auth::require(req.extensions(), Scope::Admin)?;
    let entry = super::access::audit(&p, req.extensions(), "integration.set");
    let pb::SetIntegrationRequest { config } = req.into_inner();
    let config = config_from_pb(config.ok_or_else(|| Error::required("config"))?)?;
    // The kind only: the configuration holds secrets (webhook URLs, SMTP passwords).
    let kind = config.kind().as_str();
    let stored = api
        .store
        .put_integration(p.project_id, config, |new, old| match old {
            Some(old) => new.keep_secrets_from(old),
            None => new,
        })
        .await?;
    let target = format!("integration:{kind}");
    let details = serde_json::json!({ "kind": kind });
    record_change(api, entry, p.project_id, target, details).await?;
    Ok(Response::new(pb::SetIntegrationResponse {
        integration: Some(integration_to_pb(stored)),
    }))
}

pub async fn delete_integration(
    api: &Api,
    req: Request<pb::DeleteIntegrationRequest>,
) -> Result<Response<pb::DeleteIntegrationResponse>, Status> {
    let p = auth::require(req.extensions(), Scope::Admin)?;
    let entry = super::access::audit(&p, req.extensions(), "integration.delete");
    let pb::DeleteIntegrationRequest { kind } = req.into_inner();
    let kind = kind_from_pb(kind)?;
    api.store.delete_integration(p.project_id, kind).await?;
    let (target, details) = (
        format!("integration:{}", kind.as_str()),
        serde_json::json!({ "kind": kind.as_str() }),
    );
    record_change(api, entry, p.project_id, target, details).await?;
    Ok(Response::new(pb::DeleteIntegrationResponse {}))
}

pub async fn test_integration(
    api: &Api,
    req: Request<pb::TestIntegrationRequest>,
) -> Result<Response<pb::TestIntegrationResponse>, Status> {
    let p = auth::require(req.extensions(), Scope::Admin)?;
    let entry = super::access::audit(&p, req.extensions(), "integration.test");
    let pb::TestIntegrationRequest { kind } = req.into_inner();
    let kind = kind_from_pb(kind)?;
    let channel = api.store.get_integration(p.project_id, kind).await?;
    let text = format!(
        "This is a test message from Faultline for project {}, sent at {}. If you can read it, the {} channel works.",
        p.project_id,
        Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        kind.as_str()
    );
    let outcome = send::deliver(
        &channel.config,
        &send::Notice {
            event: "test",
            subject: "Faultline test message",
            text: &text,
            data: None,
        },
    )
    .await;
    let delivered = outcome.is_ok();
    let recorded = api
        .store
        .record_integration_test(p.project_id, kind, outcome)
        .await?;
    let (target, details) = (
        format!("integration:{}", kind.as_str()),
        serde_json::json!({ "kind": kind.as_str(), "delivered": delivered }),
    );
    record_change(api, entry, p.project_id, target, details).await?;
    Ok(Response::new(pb::TestIntegrationResponse {
        delivered,
        integration: Some(integration_to_pb(recorded)),
    }))
}
