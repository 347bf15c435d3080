//! Delivers a message over a configured channel: an HTTP POST for slack and webhooks (the
//! webhook signed with HMAC-SHA256 of the body), SMTP for email. Used by the test action and
//! by the alert rules (`jobs::alerts`). Errors are short, safe texts: no URL (it may be a
//! credential), no secret.

use std::time::Duration;

use hmac::{Hmac, Mac};
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, header::ContentType},
    transport::smtp::authentication::Credentials,
};
use serde_json::json;
use sha2::Sha256;

use super::{Config, EmailConfig, TlsMode};

/// Header carrying `sha256=<hex HMAC-SHA256(secret, body)>` on webhook deliveries.
pub const SIGNATURE_HEADER: &str = "x-faultline-signature";
/// Header naming what a webhook delivery is about (`test` for the test action).
pub const EVENT_HEADER: &str = "x-faultline-event";
/// Header carrying one id per notice, the same on every attempt to deliver it, so a receiver
/// can tell a retry from a new notice.
pub const DELIVERY_HEADER: &str = "x-faultline-delivery";
/// How long one delivery may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The waits before the second and third attempts of an alert's delivery. Only a failure that
/// may pass is retried: no connection, a timeout, HTTP 408, 429 or 5xx, an SMTP transient error.
pub const RETRY_DELAYS: [Duration; 2] = [Duration::from_secs(2), Duration::from_secs(10)];

/// Why an attempt failed, and whether trying again later may succeed.
struct Failed {
    why: String,
    transient: bool,
}

impl Failed {
    fn permanent(why: String) -> Failed {
        Failed {
            why,
            transient: false,
        }
    }
}

/// A message to deliver.
pub struct Notice<'a> {
    /// `test` for the test action, `alert` for a rule firing.
    pub event: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
    /// What a webhook receives besides the text, as `data` (a firing's rule, incident and
    /// count); nothing for the test action.
    pub data: Option<&'a serde_json::Value>,
}

/// Sends `notice` over the channel once; `Err` holds why it failed, fit to show an admin.
pub async fn deliver(cfg: &Config, notice: &Notice<'_>) -> Result<(), String> {
    deliver_retrying(cfg, notice, &[]).await
}

/// Sends `notice`, trying again after each of `delays` while the failure may pass. `Err` says
/// why the last attempt failed and how many were made.
pub async fn deliver_retrying(
    cfg: &Config,
    notice: &Notice<'_>,
    delays: &[Duration],
) -> Result<(), String> {
    let id = uuid::Uuid::new_v4().to_string();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let failed = match attempt(cfg, notice, &id).await {
            Ok(()) => return Ok(()),
            Err(f) => f,
        };
        match delays.get(attempts - 1) {
            Some(wait) if failed.transient => tokio::time::sleep(*wait).await,
            _ if attempts == 1 => return Err(failed.why),
            _ => return Err(format!("{}; {attempts} attempts", failed.why)),
        }
    }
}

async fn attempt(cfg: &Config, notice: &Notice<'_>, id: &str) -> Result<(), Failed> {
    match cfg {
        Config::Slack(c) => {
            let mut body = json!({ "text": format!("*{}*\n{}", notice.subject, notice.text) });
            if !c.channel.is_empty() {
                body["channel"] = json!(c.channel);
            }
            post(
                &c.webhook_url,
                body.to_string().into_bytes(),
                None,
                notice.event,
                id,
            )
            .await
        }
        Config::Webhook(c) => {
            let body = json!({
                "event": notice.event,
                "subject": notice.subject,
                "text": notice.text,
                "sent_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "data": notice.data,
            })
            .to_string()
            .into_bytes();
            let signature = match c.secret.as_str() {
                "" => None,
                secret => Some(sign(secret, &body).map_err(Failed::permanent)?),
            };
            post(&c.url, body, signature, notice.event, id).await
        }
        Config::Email(c) => email(c, notice).await,
    }
}

/// `sha256=<hex>` of the body under the secret.
pub fn sign(secret: &str, body: &[u8]) -> Result<String, String> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .map_err(|e| format!("cannot sign: {e}"))?;
    mac.update(body);
    Ok(format!(
        "sha256={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

async fn post(
    url: &str,
    body: Vec<u8>,
    signature: Option<String>,
    event: &str,
    id: &str,
) -> Result<(), Failed> {
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        // A redirect could carry the payload somewhere the admin did not configure.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("faultline/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Failed::permanent(format!("cannot build an HTTP client: {e}")))?;
    let mut req = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(EVENT_HEADER, event)
        .header(DELIVERY_HEADER, id)
        .body(body);
    if let Some(sig) = signature {
        req = req.header(SIGNATURE_HEADER, sig);
    }
    match req.send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => {
            let status = r.status();
            Err(Failed {
                why: format!("the receiver answered HTTP {}", status.as_u16()),
                transient: status.is_server_error()
                    || status == reqwest::StatusCode::REQUEST_TIMEOUT
                    || status == reqwest::StatusCode::TOO_MANY_REQUESTS,
            })
        }
        // Not reached, refused, reset, timed out: the receiver may be back soon.
        Err(e) => Err(Failed {
            why: format!("delivery failed: {}", e.without_url()),
            transient: true,
        }),
    }
}

async fn email(c: &EmailConfig, notice: &Notice<'_>) -> Result<(), Failed> {
    let message = build_email(c, notice).map_err(Failed::permanent)?;
    let mut builder = match c.tls {
        TlsMode::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&c.smtp_host),
        TlsMode::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&c.smtp_host)
            .map_err(|e| Failed::permanent(format!("TLS setup failed: {e}")))?,
        TlsMode::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&c.smtp_host)
            .map_err(|e| Failed::permanent(format!("TLS setup failed: {e}")))?,
    }
    .port(c.smtp_port)
    .timeout(Some(TIMEOUT));
    if !c.username.is_empty() {
        builder = builder.credentials(Credentials::new(c.username.clone(), c.password.clone()));
    }
    builder
        .build()
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| Failed {
            why: format!("SMTP delivery failed: {e}"),
            // A 5xx reply (no such mailbox, refused credentials) stays so.
            transient: !e.is_permanent(),
        })
}

fn build_email(c: &EmailConfig, notice: &Notice<'_>) -> Result<Message, String> {
    let from: Mailbox = c.from.parse().map_err(|e| format!("invalid sender: {e}"))?;
    let mut msg = Message::builder().from(from).subject(notice.subject);
    for to in &c.to {
        msg = msg.to(to
            .parse()
            .map_err(|e| format!("invalid recipient {to}: {e}"))?);
    }
    msg.header(ContentType::TEXT_PLAIN)
        .body(notice.text.to_owned())
        .map_err(|e| format!("cannot build the message: {e}"))
}
