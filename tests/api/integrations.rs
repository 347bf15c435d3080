//! Integrations: configuration is stored and listed with credentials masked, and the test
//! action sends a real message — to an HTTP receiver (slack, webhook; the webhook's HMAC is
//! checked) and to an SMTP receiver speaking the SMTP dialogue — both run by the test.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{Router, body::Bytes, http::HeaderMap, routing::post};
use faultline::pb;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::helpers::*;

/// A request an HTTP receiver got.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// An HTTP server on port 0 recording every POST; `/fail/*` answers 500, `/reject/*` 400 and
/// `/flaky/*` 503 to its first POST only.
pub(crate) async fn http_receiver() -> (SocketAddr, Arc<Mutex<Vec<Received>>>) {
    let got: Arc<Mutex<Vec<Received>>> = Arc::new(Mutex::new(Vec::new()));
    let record = {
        let got = got.clone();
        move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
            let got = got.clone();
            async move {
                let path = uri.path().to_owned();
                let mut got = got.lock().unwrap();
                // `/fail…` always fails, `/reject…` is refused for good, `/flaky…` fails the
                // first delivery to it and takes the next.
                let status = if path.starts_with("/fail") {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else if path.starts_with("/reject") {
                    StatusCode::BAD_REQUEST
                } else if path.starts_with("/flaky") && !got.iter().any(|r| r.path == path) {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                };
                got.push(Received {
                    path,
                    headers,
                    body,
                });
                status
            }
        }
    };
    let app = Router::new().route("/{*path}", post(record));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    (addr, got)
}

/// One message an SMTP receiver accepted.
#[derive(Clone, Debug, Default)]
struct Mail {
    auth: Vec<String>,
    from: String,
    to: Vec<String>,
    data: String,
}

/// A minimal SMTP server on port 0: EHLO (offering AUTH PLAIN/LOGIN), AUTH, MAIL, RCPT,
/// DATA, QUIT, recording each message.
async fn smtp_receiver() -> (SocketAddr, Arc<Mutex<Vec<Mail>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let store = got.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let store = store.clone();
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut lines = BufReader::new(r).lines();
                let mut mail = Mail::default();
                w.write_all(b"220 test.local ESMTP ready\r\n").await.ok()?;
                while let Ok(Some(line)) = lines.next_line().await {
                    let upper = line.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        b"250-test.local\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"
                    } else if upper.starts_with("AUTH") {
                        mail.auth.push(line.clone());
                        b"235 2.7.0 authenticated\r\n"
                    } else if upper.starts_with("MAIL FROM:") {
                        mail.from = line[10..].trim().to_owned();
                        b"250 OK\r\n"
                    } else if upper.starts_with("RCPT TO:") {
                        mail.to.push(line[8..].trim().to_owned());
                        b"250 OK\r\n"
                    } else if upper == "DATA" {
                        w.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await.ok()?;
                        while let Ok(Some(l)) = lines.next_line().await {
                            if l == "." {
                                break;
                            }
                            mail.data.push_str(&l);
                            mail.data.push('\n');
                        }
                        store.lock().unwrap().push(std::mem::take(&mut mail));
                        b"250 OK queued\r\n"
                    } else if upper == "QUIT" {
                        w.write_all(b"221 bye\r\n").await.ok()?;
                        return Some(());
                    } else if upper == "RSET" || upper == "NOOP" {
                        b"250 OK\r\n"
                    } else {
                        b"502 not implemented\r\n"
                    };
                    w.write_all(reply).await.ok()?;
                }
                Some(())
            });
        }
    });
    (addr, got)
}

pub(crate) fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn put(app: &TestApp, name: &str, config: Value) -> Resp {
    app.send(
        app.authed(Method::PUT, &format!("/api/settings/integrations/{name}"))
            .json(&json!({ "config": config })),
    )
    .await
}

async fn test_action(app: &TestApp, name: &str) -> Value {
    let r = app
        .send(app.authed(
            Method::POST,
            &format!("/api/settings/integrations/{name}/test"),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], json!("success"));
    r.body["data"].clone()
}

const WEBHOOK_SECRET: &str = "whsec_0123456789abcdefSECRET";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_is_stored_masked_and_tested_with_a_signed_request() {
    let app = spawn_app().await;
    let (addr, got) = http_receiver().await;

    let r = put(
        &app,
        "webhook",
        json!({"url": format!("http://{addr}/hooks/faultline"), "secret": WEBHOOK_SECRET}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        !r.text.contains(WEBHOOK_SECRET),
        "the secret was returned: {}",
        r.text
    );
    let d = &r.body["data"];
    assert_eq!(d["name"], json!("webhook"));
    assert_eq!(d["status"], json!("configured"));
    assert_eq!(d["last_test"], json!(null));
    assert_eq!(d["config"]["secret"], json!("****CRET"));
    assert_eq!(
        d["config"]["url"],
        json!(format!("http://{addr}/hooks/faultline"))
    );

    let t = test_action(&app, "webhook").await;
    assert_eq!(t["delivered"], json!(true), "{t}");
    assert_eq!(t["integration"]["status"], json!("connected"));
    let _ = time(&t["integration"]["last_test"]);
    let reqs = got.lock().unwrap().clone();
    assert_eq!(reqs.len(), 1);
    let req = &reqs[0];
    assert_eq!(req.path, "/hooks/faultline");
    assert_eq!(req.headers["x-faultline-event"], "test");
    assert_eq!(
        req.headers["x-faultline-signature"].to_str().unwrap(),
        hmac_hex(WEBHOOK_SECRET, &req.body),
        "the signature must be HMAC-SHA256 of the body under the secret"
    );
    let body: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body["event"], json!("test"));

    // Sending the masked form back keeps the stored secret (the next signature still verifies).
    let r = put(
        &app,
        "webhook",
        json!({"url": format!("http://{addr}/hooks/v2"), "secret": "****CRET"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body["data"]["status"],
        json!("configured"),
        "changed settings are untested"
    );
    test_action(&app, "webhook").await;
    let req = got.lock().unwrap()[1].clone();
    assert_eq!(req.path, "/hooks/v2");
    assert_eq!(
        req.headers["x-faultline-signature"].to_str().unwrap(),
        hmac_hex(WEBHOOK_SECRET, &req.body)
    );

    // A receiver that fails: recorded as an error with the reason.
    let r = put(
        &app,
        "webhook",
        json!({"url": format!("http://{addr}/fail/x")}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let t = test_action(&app, "webhook").await;
    assert_eq!(t["delivered"], json!(false));
    assert_eq!(t["integration"]["status"], json!("error"));
    assert!(
        t["integration"]["last_test_error"]
            .as_str()
            .unwrap()
            .contains("500"),
        "{t}"
    );

    // Listing shows the recorded outcome, never the secret.
    let r = app
        .send(app.authed(Method::GET, "/api/settings/integrations"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.text.contains(WEBHOOK_SECRET));
    let list = arr(&r.body["data"]["integrations"]);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["status"], json!("error"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_posts_a_message_and_hides_the_webhook_path() {
    let app = spawn_app().await;
    let (addr, got) = http_receiver().await;
    let hook = format!("http://{addr}/services/T000/B000/XXXXSECRETPATH");
    let r = app
        .send(
            app.authed(Method::POST, "/api/settings/integrations")
                .json(&json!({
                    "name": "slack",
                    "config": {"webhook_url": hook, "channel": "#alerts"}
                })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body["data"]["config"]["webhook_url"],
        json!(format!("http://{addr}/..."))
    );
    assert_eq!(r.body["data"]["config"]["channel"], json!("#alerts"));
    assert!(!r.text.contains("XXXXSECRETPATH"));

    let t = test_action(&app, "slack").await;
    assert_eq!(t["delivered"], json!(true), "{t}");
    let req = got.lock().unwrap()[0].clone();
    assert_eq!(req.path, "/services/T000/B000/XXXXSECRETPATH");
    let body: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body["channel"], json!("#alerts"));
    assert!(
        body["text"].as_str().unwrap().contains("test message"),
        "{body}"
    );

    // Over gRPC: the same channel, the same masking.
    let mut settings = app.settings_client().await;
    let list = settings
        .list_integrations(app.req(pb::ListIntegrationsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .integrations;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].kind, pb::IntegrationKind::Slack as i32);
    assert_eq!(list[0].status, pb::IntegrationStatus::Connected as i32);
    match &list[0].config {
        Some(pb::integration::Config::Slack(c)) => {
            assert_eq!(c.webhook_url, format!("http://{addr}/..."));
        }
        other => panic!("unexpected config {other:?}"),
    }
    // Delete, then the test action has nothing to test.
    settings
        .delete_integration(app.req(pb::DeleteIntegrationRequest {
            kind: pb::IntegrationKind::Slack as i32,
        }))
        .await
        .unwrap();
    let r = app
        .send(app.authed(Method::POST, "/api/settings/integrations/slack/test"))
        .await;
    assert_error(
        &r,
        404,
        "NOT_FOUND",
        "POST",
        "/api/settings/integrations/slack/test",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_is_sent_over_smtp_with_credentials() {
    let app = spawn_app().await;
    let (addr, got) = smtp_receiver().await;
    let r = put(
        &app,
        "email",
        json!({
            "smtp_server": "127.0.0.1",
            "smtp_port": addr.port(),
            "from_email": "alerts@example.com",
            "to": ["ops@example.com", "dev@example.com"],
            "tls": "none",
            "username": "mailer",
            "password": "p4ssw0rd-smtp"
        }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(!r.text.contains("p4ssw0rd-smtp"));
    let c = &r.body["data"]["config"];
    assert_eq!(c["password"], json!("****"));
    assert_eq!(c["smtp_server"], json!("127.0.0.1"));
    assert_eq!(c["from_email"], json!("alerts@example.com"));
    assert_eq!(c["tls"], json!("none"));

    let t = test_action(&app, "email").await;
    assert_eq!(t["delivered"], json!(true), "{t}");
    assert_eq!(t["integration"]["status"], json!("connected"));
    let mails = got.lock().unwrap().clone();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let m = &mails[0];
    assert!(m.from.contains("alerts@example.com"), "{m:?}");
    assert_eq!(m.to.len(), 2, "{m:?}");
    assert!(
        m.data.contains("Subject: Faultline test message"),
        "{}",
        m.data
    );
    assert!(m.data.contains("test message from Faultline"), "{}", m.data);
    assert_eq!(m.auth.len(), 1, "credentials were used: {m:?}");

    // STARTTLS is required when asked for: a server that does not offer it gets no message,
    // and the failure is recorded. (The masked password sent back keeps the stored one.)
    let r = put(
        &app,
        "email",
        json!({
            "smtp_server": "127.0.0.1",
            "smtp_port": addr.port(),
            "from_email": "alerts@example.com",
            "to": "ops@example.com",
            "tls": "starttls",
            "username": "mailer",
            "password": "****"
        }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["data"]["status"], json!("configured"));
    let t = test_action(&app, "email").await;
    assert_eq!(t["delivered"], json!(false), "{t}");
    assert_eq!(t["integration"]["status"], json!("error"));
    assert!(
        t["integration"]["last_test_error"]
            .as_str()
            .is_some_and(|e| !e.is_empty())
    );
    let mails = got.lock().unwrap().clone();
    assert_eq!(mails.len(), 1, "no second message: {mails:?}");

    // Bad settings are field errors.
    let r = put(
        &app,
        "email",
        json!({"smtp_server": "", "from_email": "nope", "to": []}),
    )
    .await;
    let e = assert_error(
        &r,
        422,
        "VALIDATION_ERROR",
        "PUT",
        "/api/settings/integrations/email",
    );
    assert_detail_field(e, "config.from");
    let r = put(&app, "sms", json!({})).await;
    assert_error(
        &r,
        422,
        "VALIDATION_ERROR",
        "PUT",
        "/api/settings/integrations/sms",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integrations_over_grpc_store_mask_and_test() {
    let app = spawn_app().await;
    let (addr, got) = http_receiver().await;
    let mut settings = app.settings_client().await;
    let stored = settings
        .set_integration(app.req(pb::SetIntegrationRequest {
            config: Some(pb::set_integration_request::Config::Webhook(
                pb::WebhookConfig {
                    url: format!("http://{addr}/grpc-hook"),
                    secret: WEBHOOK_SECRET.into(),
                },
            )),
        }))
        .await
        .unwrap()
        .into_inner()
        .integration
        .unwrap();
    assert_eq!(stored.status, pb::IntegrationStatus::Configured as i32);
    match &stored.config {
        Some(pb::integration::Config::Webhook(c)) => assert_eq!(c.secret, "****CRET"),
        other => panic!("unexpected config {other:?}"),
    }
    let tested = settings
        .test_integration(app.req(pb::TestIntegrationRequest {
            kind: pb::IntegrationKind::Webhook as i32,
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(tested.delivered);
    let i = tested.integration.unwrap();
    assert_eq!(i.status, pb::IntegrationStatus::Connected as i32);
    assert!(i.last_test.is_some());
    let req = got.lock().unwrap()[0].clone();
    assert_eq!(
        req.headers["x-faultline-signature"].to_str().unwrap(),
        hmac_hex(WEBHOOK_SECRET, &req.body)
    );
    // REST sees what gRPC stored.
    let b = app.get_ok("/api/settings/integrations").await;
    assert_eq!(b["data"]["integrations"][0]["status"], json!("connected"));

    let st = settings
        .test_integration(app.req(pb::TestIntegrationRequest { kind: 0 }))
        .await
        .expect_err("kind is required");
    assert_status(
        &st,
        tonic::Code::InvalidArgument,
        "VALIDATION_ERROR",
        Some("kind"),
    );
    let st = settings
        .set_integration(app.req(pb::SetIntegrationRequest {
            config: Some(pb::set_integration_request::Config::Slack(
                pb::SlackConfig {
                    webhook_url: "ftp://nope".into(),
                    channel: String::new(),
                },
            )),
        }))
        .await
        .expect_err("bad URL");
    assert_status(
        &st,
        tonic::Code::InvalidArgument,
        "VALIDATION_ERROR",
        Some("config.webhook_url"),
    );
}

/// Waits (at most 10 s) until `got` holds `n` messages, and returns them.
async fn mails_when(got: &Arc<Mutex<Vec<Mail>>>, n: usize) -> Vec<Mail> {
    for _ in 0..200 {
        let mails = got.lock().unwrap().clone();
        if mails.len() >= n {
            return mails;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{n} messages did not arrive: {:?}", got.lock().unwrap());
}

/// Assigning issues emails the member, as Sentry does: through the project's email channel to
/// the member's own address (not the channel's recipients), one message per request, naming
/// the issues. Not when the assignee does not change, or when a member assigns themself; an
/// assignment to the member they already had records no activity either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assignees_are_emailed_through_the_email_channel() {
    let app = spawn_app().await;
    let (_, checkout) = app.capture_text("checkout total is NaN").await;
    let (_, login) = app.capture_text("login loops forever").await;
    let (_, search) = app.capture_text("search times out").await;
    let (_, alice_key) = crate::access::join(&app, "alice@example.com", "developer").await;
    let (addr, got) = smtp_receiver().await;
    let r = put(
        &app,
        "email",
        json!({"smtp_server": "127.0.0.1", "smtp_port": addr.port(),
            "from_email": "faultline@example.com", "to": ["ops@example.com"], "tls": "none"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let assign = |id: &String| format!("/v1/errors/assign/{id}");
    let to_alice = json!({"assignee": "alice@example.com"});
    app.post_ok(&assign(&checkout), &to_alice).await;
    let mails = mails_when(&got, 1).await;
    let m = &mails[0];
    assert!(m.from.contains("faultline@example.com"), "{m:?}");
    assert_eq!(m.to, ["<alice@example.com>"], "only the assignee: {m:?}");
    assert!(
        m.data
            .contains("Subject: [Faultline] Assigned to you: checkout total is NaN"),
        "{}",
        m.data
    );
    assert!(
        m.data.contains("admin assigned you an issue in"),
        "{}",
        m.data
    );
    assert!(m.data.contains(&checkout), "{}", m.data);

    // Unchanged (again to Alice), and Alice taking one herself: no message, no entry.
    app.post_ok(&assign(&checkout), &to_alice).await;
    let r = crate::access::with_key(
        &app,
        &alice_key,
        Method::POST,
        &assign(&login),
        Some(json!({"assignee": "me"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let activity = app.get_ok(&format!("/v1/errors/activity/{checkout}")).await;
    let assigned = arr(&activity["activity"])
        .iter()
        .filter(|e| e["type"] == "assigned")
        .count();
    assert_eq!(assigned, 1, "{activity}");

    // In bulk: one message, naming the two issues that became Alice's, not the one she had.
    app.post_ok(&assign(&login), &json!({"assignee": null}))
        .await;
    let r = app
        .post_ok(
            "/v1/errors/bulk",
            &json!({"error_group_ids": [checkout, login, search], "action": "assign",
                "assignee": "alice@example.com"}),
        )
        .await;
    assert_eq!(arr(&r["succeeded"]).len(), 3, "{r}");
    let mails = mails_when(&got, 2).await;
    assert_eq!(mails.len(), 2, "{mails:?}");
    let m = &mails[1];
    assert_eq!(m.to, ["<alice@example.com>"], "{m:?}");
    assert!(
        m.data
            .contains("Subject: [Faultline] 2 issues assigned to you"),
        "{}",
        m.data
    );
    assert!(
        m.data.contains("login loops forever") && m.data.contains("search times out"),
        "{}",
        m.data
    );
    assert!(!m.data.contains("checkout total"), "{}", m.data);
}
