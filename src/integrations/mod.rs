//! Notification channels a project can configure (slack, email, webhook): their settings,
//! validation, and how they are shown back with secrets masked. `send` delivers a real test
//! message over each channel; the alert rules will use the same channels.

pub mod assigned;
pub mod send;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, FieldViolation};

/// What replaces a secret when a configuration is shown.
pub const MASK: &str = "****";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Slack,
    Email,
    Webhook,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Slack, Kind::Email, Kind::Webhook];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Slack => "slack",
            Kind::Email => "email",
            Kind::Webhook => "webhook",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// Where a channel stands: saved but not (re)tested, last test delivered, last test failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Configured,
    Connected,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Configured => "configured",
            Status::Connected => "connected",
            Status::Failed => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [Status::Configured, Status::Connected, Status::Failed]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain text (local relays only).
    None,
    /// Plain connection upgraded with STARTTLS (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::None => "none",
            TlsMode::Starttls => "starttls",
            TlsMode::Tls => "tls",
        }
    }

    pub fn parse(s: &str) -> Option<TlsMode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "plain" => Some(TlsMode::None),
            "starttls" => Some(TlsMode::Starttls),
            "tls" | "ssl" | "smtps" => Some(TlsMode::Tls),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlackConfig {
    /// The incoming webhook URL; it is itself a credential.
    pub webhook_url: String,
    pub channel: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailConfig {
    pub smtp_host: String,
    pub smtp_port: u16,
    pub from: String,
    pub to: Vec<String>,
    pub tls: TlsMode,
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookConfig {
    pub url: String,
    /// Key of the HMAC-SHA256 signature header; empty sends unsigned requests.
    pub secret: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Config {
    Slack(SlackConfig),
    Email(EmailConfig),
    Webhook(WebhookConfig),
}

/// A stored channel.
#[derive(Debug, Clone)]
pub struct Integration {
    pub config: Config,
    pub status: Status,
    pub last_test: Option<DateTime<Utc>>,
    /// Why the last test failed; `None` when it succeeded or never ran.
    pub last_test_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Config {
    pub fn kind(&self) -> Kind {
        match self {
            Config::Slack(_) => Kind::Slack,
            Config::Email(_) => Kind::Email,
            Config::Webhook(_) => Kind::Webhook,
        }
    }

    /// The stored form (secrets included).
    pub fn to_json(&self) -> String {
        match self {
            Config::Slack(c) => serde_json::to_string(c),
            Config::Email(c) => serde_json::to_string(c),
            Config::Webhook(c) => serde_json::to_string(c),
        }
        .unwrap_or_default()
    }

    pub fn from_json(kind: Kind, json: &str) -> Result<Config, Error> {
        let corrupt =
            |_| Error::Internal(format!("stored {} integration is corrupt", kind.as_str()));
        Ok(match kind {
            Kind::Slack => Config::Slack(serde_json::from_str(json).map_err(corrupt)?),
            Kind::Email => Config::Email(serde_json::from_str(json).map_err(corrupt)?),
            Kind::Webhook => Config::Webhook(serde_json::from_str(json).map_err(corrupt)?),
        })
    }

    /// The configuration as it may be shown: credentials masked.
    pub fn masked(&self) -> Config {
        match self {
            Config::Slack(c) => Config::Slack(SlackConfig {
                webhook_url: mask_url(&c.webhook_url),
                channel: c.channel.clone(),
            }),
            Config::Email(c) => Config::Email(EmailConfig {
                password: mask_secret(&c.password),
                ..c.clone()
            }),
            Config::Webhook(c) => Config::Webhook(WebhookConfig {
                url: c.url.clone(),
                secret: mask_secret(&c.secret),
            }),
        }
    }

    /// A new configuration sent by a client may leave a credential empty or send back its
    /// masked form (as a settings page shows it): the stored credential is then kept.
    pub fn keep_secrets_from(self, old: &Config) -> Config {
        let unchanged = |new: &str, old: &str, masked: String| {
            new.is_empty() || new == masked && !old.is_empty()
        };
        match (self, old) {
            (Config::Slack(mut c), Config::Slack(o)) => {
                if unchanged(&c.webhook_url, &o.webhook_url, mask_url(&o.webhook_url)) {
                    c.webhook_url = o.webhook_url.clone();
                }
                Config::Slack(c)
            }
            (Config::Email(mut c), Config::Email(o)) => {
                if unchanged(&c.password, &o.password, mask_secret(&o.password)) {
                    c.password = o.password.clone();
                }
                Config::Email(c)
            }
            (Config::Webhook(mut c), Config::Webhook(o)) => {
                if unchanged(&c.secret, &o.secret, mask_secret(&o.secret)) {
                    c.secret = o.secret.clone();
                }
                Config::Webhook(c)
            }
            (new, _) => new,
        }
    }

    pub fn validate(&self) -> Result<(), Error> {
        let mut v = Vec::new();
        match self {
            Config::Slack(c) => {
                check_url("config.webhook_url", &c.webhook_url, &mut v);
                if c.channel.len() > 80 {
                    v.push(FieldViolation::new(
                        "config.channel",
                        "must be at most 80 bytes",
                        "TOO_LONG",
                    ));
                }
            }
            Config::Email(c) => {
                if c.smtp_host.trim().is_empty() || c.smtp_host.len() > 253 {
                    v.push(FieldViolation::new(
                        "config.smtp_host",
                        "is required (a host name, at most 253 bytes)",
                        "REQUIRED",
                    ));
                }
                if c.smtp_port == 0 {
                    v.push(FieldViolation::new(
                        "config.smtp_port",
                        "must be between 1 and 65535",
                        "OUT_OF_RANGE",
                    ));
                }
                if c.from.parse::<lettre::message::Mailbox>().is_err() {
                    v.push(FieldViolation::new(
                        "config.from",
                        "must be an email address",
                        "INVALID_EMAIL",
                    ));
                }
                if c.to.is_empty() || c.to.len() > 50 {
                    v.push(FieldViolation::new(
                        "config.to",
                        "must list 1 to 50 recipients",
                        "REQUIRED",
                    ));
                }
                for (i, to) in c.to.iter().enumerate() {
                    if to.parse::<lettre::message::Mailbox>().is_err() {
                        v.push(FieldViolation::new(
                            format!("config.to[{i}]"),
                            "must be an email address",
                            "INVALID_EMAIL",
                        ));
                    }
                }
                if c.password.is_empty() != c.username.is_empty() {
                    v.push(FieldViolation::new(
                        "config.password",
                        "username and password go together",
                        "INVALID",
                    ));
                }
            }
            Config::Webhook(c) => {
                check_url("config.url", &c.url, &mut v);
                if c.secret.len() > 1024 {
                    v.push(FieldViolation::new(
                        "config.secret",
                        "must be at most 1024 bytes",
                        "TOO_LONG",
                    ));
                }
            }
        }
        if v.is_empty() {
            Ok(())
        } else {
            Err(Error::invalid(v))
        }
    }
}

fn check_url(field: &str, url: &str, v: &mut Vec<FieldViolation>) {
    match reqwest::Url::parse(url.trim()) {
        Ok(u)
            if (u.scheme() == "http" || u.scheme() == "https")
                && u.host_str().is_some()
                && url.len() <= 2048 => {}
        _ => v.push(FieldViolation::new(
            field,
            "must be an http(s) URL of at most 2048 bytes",
            "INVALID_URL",
        )),
    }
}

/// `https://hooks.slack.com/...`: the host says where messages go, the path is the credential.
pub fn mask_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{}://{h}:{p}/...", u.scheme()),
            (Some(h), None) => format!("{}://{h}/...", u.scheme()),
            _ => MASK.to_owned(),
        },
        Err(_) if url.is_empty() => String::new(),
        Err(_) => MASK.to_owned(),
    }
}

/// `****` plus the last four characters of long secrets, so two secrets can be told apart.
pub fn mask_secret(secret: &str) -> String {
    let n = secret.chars().count();
    if n == 0 {
        String::new()
    } else if n >= 16 {
        let tail: String = secret.chars().skip(n - 4).collect();
        format!("{MASK}{tail}")
    } else {
        MASK.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_keeps_secrets() {
        assert_eq!(
            mask_url("https://hooks.slack.com/services/T0/B0/xyz"),
            "https://hooks.slack.com/..."
        );
        assert_eq!(mask_secret("short"), "****");
        assert_eq!(mask_secret("0123456789abcdefWXYZ"), "****WXYZ");
        let old = Config::Webhook(WebhookConfig {
            url: "http://a/x".into(),
            secret: "0123456789abcdefWXYZ".into(),
        });
        let sent_back = old.masked().keep_secrets_from(&old);
        assert_eq!(sent_back, old);
        let changed = Config::Webhook(WebhookConfig {
            url: "http://a/x".into(),
            secret: "new-secret".into(),
        });
        assert_eq!(changed.clone().keep_secrets_from(&old), changed);
    }
}
