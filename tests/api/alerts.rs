//! Alert rules and incidents: the Error Logging System's `/api/alerts/*` with its documented
//! bodies and envelopes, `AlertService` over gRPC, and rules firing for real: events captured,
//! the alert job counting them, an incident opened and a signed webhook delivered to a
//! receiver the test runs, once per window, also with two servers on one database.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use faultline::pb::{self, alert_service_client::AlertServiceClient};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tonic::transport::Channel;

use crate::{
    els::{self, data},
    helpers::*,
    integrations::{Received, hmac_hex, http_receiver},
};

const SECRET: &str = "whsec_alerts_0123456789";

/// The document's error envelope, with the product's code.
fn assert_envelope_error(r: &Resp, status: u16, code: &str) {
    els::assert_envelope_error(r, status);
    assert_eq!(r.body["code"], json!(code), "{}", r.text);
}

/// POSTs a body: 201, and the answer echoes every field of it.
async fn create(app: &TestApp, path: &str, body: &Value) -> Value {
    let r = call(app, Method::POST, path, Some(body.clone())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let created = data(&r).clone();
    for (k, v) in body.as_object().unwrap() {
        assert_eq!(&created[k], v, "{k} in {created}");
    }
    created
}

fn names_field(r: &Resp, field: &str) -> bool {
    r.body["details"]
        .as_array()
        .is_some_and(|d| d.iter().any(|d| d["field"] == json!(field)))
}

async fn call(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> Resp {
    let mut rb = app.send_req(method, path);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    app.send(rb).await
}

trait SendReq {
    fn send_req(&self, method: Method, path: &str) -> reqwest::RequestBuilder;
}

impl SendReq for TestApp {
    /// The document's auth header, `X-API-Key`.
    fn send_req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.anon(method, path).header("X-API-Key", &self.key)
    }
}

async fn alerts_client(app: &TestApp) -> AlertServiceClient<Channel> {
    AlertServiceClient::new(app.channel().await)
}

/// Points the project's webhook channel at `addr`, signed with [`SECRET`].
async fn webhook_to(app: &TestApp, addr: std::net::SocketAddr) {
    webhook_at(app, addr, "/alerts").await;
}

/// Points the project's webhook channel at `path` on `addr` (see `http_receiver` for the
/// paths that fail).
async fn webhook_at(app: &TestApp, addr: std::net::SocketAddr, path: &str) {
    let r = call(
        app,
        Method::PUT,
        "/api/settings/integrations/webhook",
        Some(json!({"config": {"url": format!("http://{addr}{path}"), "secret": SECRET}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

/// A server whose project sends its webhook notices to a new receiver, with the alert rule
/// `rule` (a REST body); the rule's id.
async fn app_with_rule(rule: Value) -> (TestApp, Arc<Mutex<Vec<Received>>>, String) {
    let app = spawn_app().await;
    let (addr, got) = http_receiver().await;
    webhook_to(&app, addr).await;
    let id = uuid_str(&create(&app, "/api/alerts/rules", &rule).await["id"]);
    (app, got, id)
}

/// The alert deliveries a receiver got, their signatures checked.
fn alerts_received(got: &Mutex<Vec<Received>>) -> Vec<Value> {
    received(got, "alert")
}

/// The deliveries of `event` (`X-Faultline-Event`) a receiver got, their signatures checked.
fn received(got: &Mutex<Vec<Received>>, event: &str) -> Vec<Value> {
    got.lock()
        .unwrap()
        .iter()
        .filter(|r| {
            r.headers
                .get("x-faultline-event")
                .is_some_and(|v| v == event)
        })
        .map(|r| {
            assert_eq!(
                r.headers["x-faultline-signature"].to_str().unwrap(),
                hmac_hex(SECRET, &r.body),
                "an alert delivery must be signed like any webhook delivery"
            );
            serde_json::from_slice(&r.body).unwrap()
        })
        .collect()
}

async fn wait_for_alerts(got: &Mutex<Vec<Received>>, n: usize) -> Vec<Value> {
    poll_until(Duration::from_secs(20), "the alert webhook", || async {
        let all = alerts_received(got);
        (all.len() >= n).then_some(all)
    })
    .await
}

async fn capture_n(app: &TestApp, message: &str, n: usize) {
    for i in 0..n {
        app.capture(json!({"message": format!("{message} #{i}")}))
            .await;
    }
}

/// The project's incidents once `ready` holds for them (the job writes an incident after its
/// notices went out).
async fn incidents_when(app: &TestApp, ready: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    poll_until(Duration::from_secs(20), "the incidents", || async {
        let r = call(app, Method::GET, "/api/alerts/incidents", None).await;
        let list = arr(&data(&r)["incidents"]).clone();
        ready(&list).then_some(list)
    })
    .await
}

/// Moves the last firing of every rule back by `secs`, as if that much time had passed.
async fn age_last_firings(app: &TestApp, secs: i64) {
    app.run_sql(&[&format!(
        "UPDATE alert_rules SET last_triggered = last_triggered - {}",
        secs * 1000
    )])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_rules_take_the_documented_bodies() {
    let app = spawn_app().await;
    // POST with the document's example body.
    let documented = json!({
        "name": "High Error Rate",
        "condition": "error_count > threshold in time_window",
        "threshold": 50,
        "time_window": "5m",
        "notifications": ["email", "slack"],
        "enabled": true
    });
    let rule = create(&app, "/api/alerts/rules", &documented).await;
    let id = uuid_str(&rule["id"]);
    assert_eq!(rule["last_triggered"], json!(null));
    let created = time(&rule["created_at"]);
    assert_eq!(time(&rule["updated_at"]), created);

    // The document's other spelling: the numbers inside the condition.
    let spike = create(
        &app,
        "/api/alerts/rules",
        &json!({"name": "Spike", "condition": "error_count > 50 in 5 minutes"}),
    )
    .await;
    assert_eq!(spike["threshold"], json!(50));
    assert_eq!(spike["time_window"], json!("5m"));
    assert_eq!(spike["enabled"], json!(true));
    assert_eq!(spike["notifications"], json!([]));

    // GET lists both, oldest first, in the document's `rules`.
    let r = call(&app, Method::GET, "/api/alerts/rules", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let rules = arr(&data(&r)["rules"]);
    assert_eq!(ids(rules), vec![id.clone(), uuid_str(&spike["id"])]);

    // PUT "Same as POST": the whole body replaces the rule…
    let mut changed = documented.clone();
    changed["threshold"] = json!(10);
    changed["notifications"] = json!(["webhook"]);
    let path = format!("/api/alerts/rules/{id}");
    let r = call(&app, Method::PUT, &path, Some(changed)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(data(&r)["threshold"], json!(10));
    assert_eq!(data(&r)["notifications"], json!(["webhook"]));
    // …and a partial body changes only what it holds.
    let r = call(&app, Method::PUT, &path, Some(json!({"enabled": false}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let off = data(&r).clone();
    assert_eq!(off["enabled"], json!(false));
    assert_eq!(off["threshold"], json!(10));
    assert_eq!(off["name"], json!("High Error Rate"));
    assert!(time(&off["updated_at"]) >= created);

    // Refusals, in the document's envelope, naming the field.
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (
            json!({"condition": "error_count > 5 in 5m"}),
            400,
            "VALIDATION_ERROR",
            "name",
        ),
        (json!({"name": "x"}), 400, "VALIDATION_ERROR", "condition"),
        (
            json!({"name": "x", "condition": "cpu > 90"}),
            400,
            "VALIDATION_ERROR",
            "condition",
        ),
        (
            json!({"name": "x", "condition": "error_count > 50 in 5m", "threshold": 60}),
            400,
            "VALIDATION_ERROR",
            "threshold",
        ),
        (
            json!({"name": "x", "condition": "error_count", "time_window": "10s"}),
            400,
            "VALIDATION_ERROR",
            "time_window",
        ),
        (
            json!({"name": "x", "condition": "error_count", "notifications": ["pager"]}),
            400,
            "VALIDATION_ERROR",
            "notifications[0]",
        ),
        (
            json!({"name": "x", "condition": "error_count", "threshold": "fifty"}),
            400,
            "VALIDATION_ERROR",
            "threshold",
        ),
    ];
    for (body, status, code, field) in cases {
        let r = call(&app, Method::POST, "/api/alerts/rules", Some(body.clone())).await;
        assert_envelope_error(&r, status, code);
        assert!(names_field(&r, field), "{body} → {}", r.text);
    }
    let r = app
        .send(
            app.send_req(Method::POST, "/api/alerts/rules")
                .header("content-type", "application/json")
                .body("{\"name\": "),
        )
        .await;
    assert_envelope_error(&r, 400, "VALIDATION_ERROR");

    // Unknown and malformed ids.
    let unknown = format!("/api/alerts/rules/{}", uuid::Uuid::new_v4());
    let r = call(&app, Method::PUT, &unknown, Some(json!({"enabled": true}))).await;
    assert_envelope_error(&r, 404, "NOT_FOUND");
    let r = call(&app, Method::DELETE, "/api/alerts/rules/rule-1", None).await;
    assert_envelope_error(&r, 400, "VALIDATION_ERROR");

    // DELETE answers 204; the rule is gone.
    let r = call(&app, Method::DELETE, &path, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = call(&app, Method::DELETE, &path, None).await;
    assert_envelope_error(&r, 404, "NOT_FOUND");
    let r = call(&app, Method::GET, "/api/alerts/rules", None).await;
    assert_eq!(ids(arr(&data(&r)["rules"])), vec![uuid_str(&spike["id"])]);

    // A project's rules and incidents go with it.
    let other = s(&app
        .post_ok("/v1/projects/create", &json!({"name": "alerts-elsewhere"}))
        .await["id"]);
    for (path, body) in [
        (
            "/api/alerts/rules",
            json!({"name": "r", "condition": "new_issues"}),
        ),
        ("/api/alerts/incidents", json!({"title": "t"})),
    ] {
        let r = app
            .send(
                app.send_req(Method::POST, path)
                    .header("x-faultline-project", &other)
                    .json(&body),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let (status, body) = app.delete(&format!("/v1/projects/delete/{other}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let r = call(&app, Method::GET, "/api/alerts/rules", None).await;
    assert_eq!(ids(arr(&data(&r)["rules"])), vec![uuid_str(&spike["id"])]);

    // Changes to rules are audited.
    let r = call(&app, Method::GET, "/api/settings/audit-log?limit=50", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let actions: Vec<String> = arr(&r.body["data"]["entries"])
        .iter()
        .map(|e| s(&e["action"]))
        .collect();
    for a in [
        "alert_rule.create",
        "alert_rule.update",
        "alert_rule.delete",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} not in {actions:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_take_the_documented_bodies() {
    let app = spawn_app().await;
    let documented = json!({
        "title": "Database Connection Timeout",
        "severity": "critical",
        "description": "Multiple database connection timeouts detected",
        "assigned_to": "user-123"
    });
    let inc = create(&app, "/api/alerts/incidents", &documented).await;
    assert_eq!(inc["status"], json!("open"));
    assert_eq!(inc["rule_id"], json!(null));
    assert_eq!(inc["resolved_at"], json!(null));
    let id = uuid_str(&inc["id"]);
    let path = format!("/api/alerts/incidents/{id}");

    let r = call(
        &app,
        Method::POST,
        "/api/alerts/incidents",
        Some(json!({"title": "Slow checkout"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let second = data(&r).clone();
    assert_eq!(second["severity"], json!("medium"));
    assert_eq!(second["assigned_to"], json!(null));

    // PUT moves it along; only the fields given change.
    let r = call(
        &app,
        Method::PUT,
        &path,
        Some(json!({"status": "investigating"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(data(&r)["status"], json!("investigating"));
    assert_eq!(data(&r)["title"], documented["title"]);
    let r = call(
        &app,
        Method::PUT,
        &path,
        Some(json!({"status": "resolved"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let resolved_at = time(&data(&r)["resolved_at"]);
    assert!(resolved_at >= time(&inc["created_at"]));

    // Newest first; `?status=` filters.
    let r = call(&app, Method::GET, "/api/alerts/incidents", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        ids(arr(&data(&r)["incidents"])),
        vec![uuid_str(&second["id"]), id.clone()]
    );
    let r = call(
        &app,
        Method::GET,
        "/api/alerts/incidents?status=resolved",
        None,
    )
    .await;
    assert_eq!(ids(arr(&data(&r)["incidents"])), vec![id.clone()]);

    // Reopening clears the resolution.
    let r = call(&app, Method::PUT, &path, Some(json!({"status": "open"}))).await;
    assert_eq!(data(&r)["resolved_at"], json!(null));

    // Refusals.
    let r = call(
        &app,
        Method::POST,
        "/api/alerts/incidents",
        Some(json!({"severity": "low"})),
    )
    .await;
    assert_envelope_error(&r, 400, "VALIDATION_ERROR");
    assert!(names_field(&r, "title"), "{}", r.text);
    let r = call(&app, Method::PUT, &path, Some(json!({"status": "closed"}))).await;
    assert_envelope_error(&r, 400, "VALIDATION_ERROR");
    assert!(names_field(&r, "status"), "{}", r.text);
    let r = call(
        &app,
        Method::GET,
        "/api/alerts/incidents?status=closed",
        None,
    )
    .await;
    assert_envelope_error(&r, 400, "VALIDATION_ERROR");
    let unknown = format!("/api/alerts/incidents/{}", uuid::Uuid::new_v4());
    let r = call(&app, Method::PUT, &unknown, Some(json!({"status": "open"}))).await;
    assert_envelope_error(&r, 404, "NOT_FOUND");
    let r = app
        .send(app.anon(Method::GET, "/api/alerts/incidents"))
        .await;
    assert_envelope_error(&r, 401, "UNAUTHORIZED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loud_project_fires_its_rule_once_per_window() {
    let (app, got, rule_id) = app_with_rule(json!({
        "name": "High Error Rate",
        "condition": "error_count > 3 in 1 minute",
        // slack is not configured: its delivery fails, the webhook's still goes out.
        "notifications": ["slack", "webhook"],
        "severity": "critical"
    }))
    .await;

    // At the threshold the rule stays quiet (the job runs every 200 ms in tests).
    capture_n(&app, "checkout failed", 3).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(alerts_received(&got).is_empty());
    let r = call(&app, Method::GET, "/api/alerts/incidents", None).await;
    assert!(arr(&data(&r)["incidents"]).is_empty(), "{}", r.text);

    // One more event crosses it.
    capture_n(&app, "payment declined", 1).await;
    let alerts = wait_for_alerts(&got, 1).await;
    let a = &alerts[0];
    assert_eq!(a["event"], json!("alert"));
    assert_eq!(a["subject"], json!("[Faultline] High Error Rate"));
    assert_eq!(a["data"]["count"], json!(4));
    assert_eq!(a["data"]["metric"], json!("error_count"));
    assert_eq!(a["data"]["rule"]["id"], json!(rule_id));
    assert_eq!(a["data"]["rule"]["threshold"], json!(3));
    assert_eq!(a["data"]["rule"]["time_window"], json!("1m"));
    assert_eq!(a["data"]["incident"]["opened"], json!(true));
    assert!(s(&a["text"]).contains("4 errors in the last 1m"), "{a}");

    let incidents = incidents_when(&app, |l| !l.is_empty()).await;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    let inc = &incidents[0];
    assert_eq!(inc["id"], a["data"]["incident"]["id"]);
    assert_eq!(inc["rule_id"], json!(rule_id));
    assert_eq!(inc["title"], json!("High Error Rate"));
    assert_eq!(inc["severity"], json!("critical"));
    assert_eq!(inc["status"], json!("open"));
    assert!(
        s(&inc["description"]).contains("4 errors in the last 1m"),
        "{inc}"
    );
    let r = call(&app, Method::GET, "/api/alerts/rules", None).await;
    let fired_at = time(&arr(&data(&r)["rules"])[0]["last_triggered"]);

    // Still loud, but within the window: no second firing.
    capture_n(&app, "payment declined", 2).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(alerts_received(&got).len(), 1);

    // A window later, still loud: the firing is added to the open incident.
    age_last_firings(&app, 61).await;
    let alerts = wait_for_alerts(&got, 2).await;
    assert_eq!(alerts[1]["data"]["incident"]["opened"], json!(false));
    assert_eq!(alerts[1]["data"]["incident"]["id"], inc["id"]);
    assert_eq!(alerts[1]["data"]["count"], json!(6));
    let incidents = incidents_when(&app, |l| {
        l.first()
            .is_some_and(|i| s(&i["description"]).lines().count() >= 4)
    })
    .await;
    assert_eq!(incidents.len(), 1);
    let description = s(&incidents[0]["description"]);
    // Each firing adds its count and how its notices went.
    let lines: Vec<&str> = description.lines().collect();
    assert_eq!(lines.len(), 4, "{description}");
    assert!(lines[2].contains("6 errors"), "{description}");
    for notified in [lines[1], lines[3]] {
        assert_eq!(
            notified,
            "Notified: slack not delivered (the channel is not configured); webhook delivered.",
            "{description}"
        );
    }
    let r = call(&app, Method::GET, "/api/alerts/rules", None).await;
    assert!(time(&arr(&data(&r)["rules"])[0]["last_triggered"]) > fired_at);

    // Once the incident is resolved, the next firing opens a new one.
    let path = format!("/api/alerts/incidents/{}", s(&inc["id"]));
    let r = call(
        &app,
        Method::PUT,
        &path,
        Some(json!({"status": "resolved"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    age_last_firings(&app, 61).await;
    let alerts = wait_for_alerts(&got, 3).await;
    assert_eq!(alerts[2]["data"]["incident"]["opened"], json!(true));
    assert_ne!(alerts[2]["data"]["incident"]["id"], inc["id"]);

    // A disabled rule does not fire.
    let rule_path = format!("/api/alerts/rules/{rule_id}");
    let r = call(
        &app,
        Method::PUT,
        &rule_path,
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // …and the incident it had open is resolved: nothing would resolve it later. No notice
    // goes out for that (the count of notices below stays 3).
    let r = call(&app, Method::GET, "/api/alerts/incidents", None).await;
    let second = arr(&data(&r)["incidents"])
        .iter()
        .find(|i| i["id"] == alerts[2]["data"]["incident"]["id"])
        .unwrap_or_else(|| panic!("the second incident is listed: {}", r.text));
    assert_eq!(second["status"], json!("resolved"), "{second}");
    let description = s(&second["description"]);
    assert!(
        description
            .lines()
            .last()
            .unwrap()
            .ends_with("resolved: the rule was disabled (it watched error_count > 3 in 1m)."),
        "{description}"
    );
    age_last_firings(&app, 61).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(alerts_received(&got).len(), 3);
}

/// Once a window after a firing counts no more than the threshold, the rule's incident is
/// resolved and the channels get an `alert_resolved` notice, once; the next firing opens a new
/// incident.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_window_resolves_the_incident_and_says_so() {
    let (app, got, rule_id) = app_with_rule(json!({
        "name": "Checkout errors", "condition": "error_count > 1 in 1 minute",
        "notifications": ["webhook"], "severity": "critical"
    }))
    .await;
    capture_n(&app, "checkout failed", 2).await;
    let fired = &wait_for_alerts(&got, 1).await[0];
    let incident = s(&fired["data"]["incident"]["id"]).to_owned();

    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        received(&got, "alert_resolved").is_empty(),
        "within the window"
    );
    // A window after the firing, with the two events older than that: the window counts none
    // of them, so the condition no longer holds.
    app.run_sql(&["UPDATE events SET timestamp = timestamp - 120000, \
                   received_at = received_at - 120000"])
        .await;
    age_last_firings(&app, 61).await;
    let notice = poll_until(Duration::from_secs(20), "the resolution", || async {
        received(&got, "alert_resolved").into_iter().next()
    })
    .await;
    assert_eq!(notice["event"], json!("alert_resolved"));
    assert_eq!(
        notice["subject"],
        json!("[Faultline] Resolved: Checkout errors")
    );
    let d = &notice["data"];
    assert_eq!(d["rule"]["id"], json!(rule_id));
    assert_eq!(d["rule"]["threshold"], json!(1));
    assert_eq!(d["metric"], json!("error_count"));
    assert_eq!(d["count"], json!(0));
    assert_eq!(d["incident"]["id"], json!(incident));
    assert_eq!(d["incident"]["status"], json!("resolved"));
    assert_eq!(d["incident"]["severity"], json!("critical"));
    time(&d["resolved_at"]);
    let text = s(&notice["text"]);
    assert!(
        text.contains("resolved: 0 errors in the last") && text.contains("threshold of 1"),
        "{text}"
    );

    let incidents = incidents_when(&app, |l| {
        l.first()
            .is_some_and(|i| s(&i["description"]).ends_with("Notified: webhook delivered."))
    })
    .await;
    let inc = &incidents[0];
    assert_eq!(inc["id"], json!(incident));
    assert_eq!(inc["status"], json!("resolved"));
    assert!(time(&inc["resolved_at"]) >= time(&inc["created_at"]));
    let description = s(&inc["description"]);
    let lines: Vec<&str> = description.lines().collect();
    assert_eq!(lines.len(), 4, "{description}");
    assert!(lines[2].contains("resolved: 0 errors"), "{description}");

    // Resolved once, however often the job runs.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(received(&got, "alert_resolved").len(), 1);

    // Loud again: a new incident.
    capture_n(&app, "checkout failed again", 4).await;
    let alerts = wait_for_alerts(&got, 2).await;
    assert_eq!(alerts[1]["data"]["incident"]["opened"], json!(true));
    assert_ne!(alerts[1]["data"]["incident"]["id"], json!(incident));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_issue_rule_names_the_new_groups_over_grpc() {
    let app = spawn_app().await;
    let (addr, got) = http_receiver().await;
    webhook_to(&app, addr).await;
    let mut alerts = alerts_client(&app).await;

    // Validation over gRPC: INVALID_ARGUMENT naming the field.
    let st = alerts
        .create_alert_rule(app.req(pb::CreateAlertRuleRequest {
            rule: Some(pb::AlertRuleFields {
                condition: Some("new_issues".into()),
                ..Default::default()
            }),
        }))
        .await
        .unwrap_err();
    assert_status(
        &st,
        tonic::Code::InvalidArgument,
        "VALIDATION_ERROR",
        Some("name"),
    );
    let st = alerts
        .update_alert_rule(app.req(pb::UpdateAlertRuleRequest {
            id: uuid::Uuid::new_v4().to_string(),
            rule: None,
        }))
        .await
        .unwrap_err();
    assert_eq!(st.code(), tonic::Code::NotFound, "{st:?}");

    let rule = alerts
        .create_alert_rule(app.req(pb::CreateAlertRuleRequest {
            rule: Some(pb::AlertRuleFields {
                name: Some("New issue".into()),
                condition: Some("new_issues > 0 in 5m".into()),
                notifications: Some(pb::ChannelList {
                    channels: vec!["webhook".into()],
                }),
                ..Default::default()
            }),
        }))
        .await
        .unwrap()
        .into_inner()
        .rule
        .unwrap();
    assert_eq!((rule.threshold, rule.time_window.as_str()), (0, "5m"));
    assert!(rule.enabled);

    let captured = app
        .capture(json!({"exception": {"type": "KeyError", "message": "'basket'",
            "stacktrace": "Traceback (most recent call last):\n  File \"shop/cart.py\", line 10, in add\n    basket[k]\nKeyError: 'basket'"}}))
        .await;
    let group_id = s(&captured["group_id"]);
    let delivered = wait_for_alerts(&got, 1).await;
    let d = &delivered[0]["data"];
    assert_eq!(d["metric"], json!("new_issues"));
    assert_eq!(d["count"], json!(1));
    assert_eq!(d["groups"][0]["id"], json!(group_id));
    assert!(s(&d["groups"][0]["title"]).contains("KeyError"), "{d}");
    assert!(s(&delivered[0]["text"]).contains(&group_id));
    assert!(
        s(&delivered[0]["text"]).contains("fired: 1 new issue in the last 5m"),
        "{}",
        delivered[0]["text"]
    );

    let incidents = poll_until(Duration::from_secs(20), "the incident", || {
        let mut alerts = alerts.clone();
        let req = app.req(pb::ListIncidentsRequest {
            status: "open".into(),
        });
        async move {
            let list = alerts
                .list_incidents(req)
                .await
                .unwrap()
                .into_inner()
                .incidents;
            (!list.is_empty()).then_some(list)
        }
    })
    .await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].rule_id, rule.id);
    assert_eq!(incidents[0].severity, "high");
    let listed = alerts
        .list_alert_rules(app.req(pb::ListAlertRulesRequest {}))
        .await
        .unwrap()
        .into_inner()
        .rules;
    assert!(listed[0].last_triggered.is_some());

    // The rule's incident outlives the rule.
    alerts
        .delete_alert_rule(app.req(pb::DeleteAlertRuleRequest {
            id: rule.id.clone(),
        }))
        .await
        .unwrap();
    let updated = alerts
        .update_incident(app.req(pb::UpdateIncidentRequest {
            id: incidents[0].id.clone(),
            incident: Some(pb::IncidentFields {
                status: Some("resolved".into()),
                ..Default::default()
            }),
        }))
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    assert_eq!(updated.rule_id, "");
    assert!(updated.resolved_at.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_database_fire_a_rule_once() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = fresh_database_url().await;
    let a = spawn_app_on(database_url.clone(), dir.path()).await;
    let mut b = spawn_app_on(database_url.clone(), dir.path()).await;
    b.key = a.key.clone();
    let (addr, got) = http_receiver().await;
    webhook_to(&a, addr).await;
    create(
        &b,
        "/api/alerts/rules",
        &json!({"name": "Any error", "condition": "error_count > 0 in 1m",
                    "notifications": ["webhook"]}),
    )
    .await;
    capture_n(&a, "first", 1).await;
    capture_n(&b, "second", 1).await;
    wait_for_alerts(&got, 1).await;
    // Both servers evaluate every 200 ms; give them a dozen rounds to fire twice.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(alerts_received(&got).len(), 1);
    let r = call(&a, Method::GET, "/api/alerts/incidents", None).await;
    assert_eq!(arr(&data(&r)["incidents"]).len(), 1, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolved_issue_that_recurs_fires_a_regressions_rule() {
    let app = spawn_app().await;
    let (addr, got) = http_receiver().await;
    webhook_to(&app, addr).await;
    let error = json!({"exception": {"type": "TimeoutError", "message": "upstream timed out"}});
    let group = s(&app.capture(error.clone()).await["group_id"]);
    let (status, body) = app
        .post(&format!("/v1/errors/resolve/{group}"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    create(
        &app,
        "/api/alerts/rules",
        &json!({"name": "Regressed", "condition": "regressions > 0 in 5m",
                    "notifications": ["webhook"]}),
    )
    .await;

    // Another, unresolved issue recurring is no regression.
    app.capture(json!({"message": "still broken"})).await;
    app.capture(json!({"message": "still broken"})).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(alerts_received(&got).is_empty());

    app.capture(error).await;
    let alerts = wait_for_alerts(&got, 1).await;
    let d = &alerts[0]["data"];
    assert_eq!(d["metric"], json!("regressions"));
    assert_eq!(d["count"], json!(1));
    assert_eq!(d["groups"][0]["id"], json!(group));
    assert_eq!(app.group(&group).await["regressed"], json!(true));
}

/// An issue ignored until more events that reaches its count fires an `unignored` rule over
/// REST on either database, naming the issue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issue_back_from_ignored_fires_an_unignored_rule() {
    let (app, got, _) = app_with_rule(json!({
        "name": "Back from ignored", "condition": "unignored > 0 in 5m",
        "notifications": ["webhook"]
    }))
    .await;
    let (_, group) = app.capture_text("noisy retry loop").await;
    app.post_ok(
        &format!("/v1/errors/ignore/{group}"),
        &json!({"ignoreCount": 2}),
    )
    .await;
    app.capture_text("noisy retry loop").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(alerts_received(&got).is_empty(), "still ignored");

    app.capture_text("noisy retry loop").await;
    let alerts = wait_for_alerts(&got, 1).await;
    let d = &alerts[0]["data"];
    assert_eq!(d["metric"], json!("unignored"));
    assert_eq!(d["count"], json!(1));
    assert_eq!(d["groups"][0]["id"], json!(group));
    let text = s(&alerts[0]["text"]);
    assert!(
        text.contains("1 issue back from ignored in the last"),
        "{text}"
    );
    assert_eq!(app.group(&group).await["status"], json!("unresolved"));
}

/// `issue_users` fires when one issue reaches more distinct users than its threshold, on
/// either database, naming the issue with its count of users; repeats by one user do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issue_reaching_many_users_fires_an_issue_users_rule() {
    let (app, got, _) = app_with_rule(json!({
        "name": "Widespread", "condition": "issue_users > 2 in 5m",
        "notifications": ["webhook"]
    }))
    .await;
    let capture = |user: &str| {
        let app = &app;
        let body = json!({"message": "checkout timed out", "user_id": user});
        async move { s(&app.capture(body).await["group_id"]) }
    };
    for user in ["ana", "ana", "ana", "ben", "ben"] {
        capture(user).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(alerts_received(&got).is_empty(), "two users");
    let group = capture("cy").await;
    let alerts = wait_for_alerts(&got, 1).await;
    let d = &alerts[0]["data"];
    assert_eq!(d["metric"], json!("issue_users"));
    assert_eq!(d["count"], json!(3));
    assert_eq!(d["groups"][0]["id"], json!(group));
    assert_eq!(d["groups"][0]["count"], json!(3));
    let text = s(&alerts[0]["text"]);
    assert!(
        text.contains("3 users of one issue in the last") && text.contains(": 3 users"),
        "{text}"
    );
}

/// A `user_feedback` rule tells the team when users write, through its webhook, on either
/// database: what a Sentry SDK's crash-report dialog posts fires it like the native route;
/// an environment on such a rule is refused by field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_feedback_fires_a_feedback_rule() {
    let (app, got, _) = app_with_rule(json!({
        "name": "Users wrote", "condition": "user_feedback > 0 in 5m",
        "notifications": ["webhook"]
    }))
    .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(alerts_received(&got).is_empty(), "no feedback yet");
    let dsn = s(&app.get_ok("/v1/settings/dsn").await["dsn"]);
    let r = app
        .send(
            app.anon(
                Method::POST,
                &format!(
                    "/api/embed/error-page/?eventId=9ec79c33ec9942ab8353589fcb2e04dc&dsn={}",
                    enc(&dsn)
                ),
            )
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("name=Ana&email=ana%40example.com&comments=Checkout+froze."),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let alerts = wait_for_alerts(&got, 1).await;
    let d = &alerts[0]["data"];
    assert_eq!(d["metric"], json!("user_feedback"));
    assert_eq!(d["count"], json!(1));
    let text = s(&alerts[0]["text"]);
    assert!(
        text.contains("1 user feedback report in the last"),
        "{text}"
    );

    let r = call(
        &app,
        Method::POST,
        "/api/alerts/rules",
        Some(json!({"name": "Scoped", "condition": "feedback", "environment": "production"})),
    )
    .await;
    assert_envelope_error(&r, 400, "VALIDATION_ERROR");
    assert!(names_field(&r, "environment"), "{}", r.text);
}

/// `issue_events` fires when one issue gets more than its threshold, over REST on either
/// database, naming that issue with its count; the same number of events spread over several
/// issues does not fire it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_loud_issue_fires_an_issue_events_rule() {
    let (app, got, _) = app_with_rule(json!({
        "name": "Loud issue", "condition": "issue_events > 3 in 10 minutes",
        "notifications": ["webhook"]
    }))
    .await;
    for kind in [
        "KeyError",
        "ValueError",
        "OSError",
        "KeyError",
        "ValueError",
        "OSError",
    ] {
        app.capture(json!({"exception": {"type": kind, "message": "spread out"}}))
            .await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        alerts_received(&got).is_empty(),
        "six events in three issues"
    );

    let mut loud = String::new();
    for _ in 0..4 {
        let error = json!({"exception": {"type": "TimeoutError", "message": "db timed out"}});
        loud = s(&app.capture(error).await["group_id"]);
    }
    let alerts = wait_for_alerts(&got, 1).await;
    let d = &alerts[0]["data"];
    assert_eq!(d["metric"], json!("issue_events"));
    assert_eq!(d["count"], json!(4));
    assert_eq!(arr(&d["groups"]).len(), 1, "{d}");
    assert_eq!(d["groups"][0]["id"], json!(loud));
    assert_eq!(d["groups"][0]["count"], json!(4));
    let text = s(&alerts[0]["text"]);
    assert!(text.contains("4 events in one issue in the last"), "{text}");
    assert!(text.contains(&format!("({loud}): 4 events")), "{text}");
}

/// A rule's filters, as Sentry's "the event's environment is" and "the event's level is at
/// least": only production events of level error or above count toward `error_count`; the
/// rule shows them, its notice names them, `null` clears them and an unknown level is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_counts_only_its_environment_and_level() {
    let (app, got, id) = app_with_rule(json!({
        "name": "Production errors", "condition": "error_count > 2 in 10 minutes",
        "notifications": ["webhook"], "environment": "production", "level": "error"
    }))
    .await;
    let r = call(&app, Method::GET, "/api/alerts/rules", None).await;
    let rule = &arr(&data(&r)["rules"])[0];
    assert_eq!(
        (&rule["environment"], &rule["level"]),
        (&json!("production"), &json!("error")),
        "{rule}"
    );
    for _ in 0..3 {
        app.capture(json!({"message": "db down", "environment": "staging", "level": "fatal"}))
            .await;
        app.capture(json!({"message": "slow page", "environment": "production",
            "level": "warning"}))
            .await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        alerts_received(&got).is_empty(),
        "staging errors and production warnings count for nothing"
    );
    for level in ["error", "fatal", "error"] {
        app.capture(json!({"message": "db down", "environment": "production", "level": level}))
            .await;
    }
    let alerts = wait_for_alerts(&got, 1).await;
    let d = &alerts[0]["data"];
    assert_eq!(d["count"], json!(3), "{d}");
    assert_eq!(
        (&d["rule"]["environment"], &d["rule"]["level"]),
        (&json!("production"), &json!("error")),
        "{d}"
    );
    let text = s(&alerts[0]["text"]);
    assert!(
        text.contains("3 errors (environment production, level error and above) in the last"),
        "{text}"
    );

    let path = format!("/api/alerts/rules/{id}");
    let r = call(
        &app,
        Method::PUT,
        &path,
        Some(json!({"environment": null, "level": ""})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let rule = data(&r);
    assert_eq!(
        (&rule["environment"], &rule["level"]),
        (&Value::Null, &Value::Null)
    );
    assert_eq!(rule["threshold"], json!(2), "the rest is kept: {rule}");
    let r = call(&app, Method::PUT, &path, Some(json!({"level": "loud"}))).await;
    assert_envelope_error(&r, 400, "VALIDATION_ERROR");
    assert!(r.text.contains("\"field\":\"level\""), "{}", r.text);
}

/// A rule with tags counts only events with each of them, as Sentry's "the event's tags
/// match" filter, on either database: events of other tiers, or with one of two tags, count
/// for nothing; a `new_issues` rule with the same tags names only the issue that has them.
/// Tags are checked as an event's, refused for `user_feedback`, and `null` clears them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_counts_only_events_with_its_tags() {
    let tags = json!({"tier": "enterprise", "region": "eu"});
    let (app, got, id) = app_with_rule(json!({
        "name": "Enterprise EU errors", "condition": "error_count > 1 in 10 minutes",
        "notifications": ["webhook"], "tags": tags
    }))
    .await;
    create(
        &app,
        "/api/alerts/rules",
        &json!({"name": "New enterprise EU issues", "condition": "new_issues > 0 in 10m",
            "notifications": ["webhook"], "tags": tags}),
    )
    .await;
    let r = call(&app, Method::GET, "/api/alerts/rules", None).await;
    let rule = &arr(&data(&r)["rules"])[0];
    assert_eq!(rule["tags"], tags, "{rule}");
    // Each in an issue of its own: for `new_issues` an issue counts when it has an event of
    // each tag (not necessarily one event with both).
    for (message, t) in [
        ("checkout failed", json!({"tier": "free", "region": "eu"})),
        ("cart lost", json!({"tier": "enterprise", "region": "us"})),
        ("coupon refused", json!({"tier": "enterprise"})),
    ] {
        for _ in 0..2 {
            app.capture(json!({"message": message, "tags": t})).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        alerts_received(&got).is_empty(),
        "no event (and no issue) has both tags: {:?}",
        alerts_received(&got)
    );
    let enterprise = json!({"tier": "enterprise", "region": "eu", "plan": "annual"});
    let mut group = String::new();
    for _ in 0..2 {
        let b = app
            .capture(json!({"message": "invoice export stuck", "tags": enterprise}))
            .await;
        group = s(&b["group_id"]);
    }
    let alerts = wait_for_alerts(&got, 2).await;
    let by_metric = |m: &str| {
        alerts
            .iter()
            .find(|a| a["data"]["metric"] == json!(m))
            .unwrap_or_else(|| panic!("no {m} alert in {alerts:?}"))
            .clone()
    };
    let errors = by_metric("error_count");
    assert_eq!(errors["data"]["count"], json!(2), "{errors}");
    assert_eq!(errors["data"]["rule"]["tags"], tags);
    let text = s(&errors["text"]);
    assert!(
        text.contains("2 errors (tag region=eu, tag tier=enterprise) in the last"),
        "{text}"
    );
    let issues = by_metric("new_issues");
    assert_eq!(issues["data"]["count"], json!(1), "{issues}");
    assert_eq!(issues["data"]["groups"][0]["id"], json!(group));

    let path = format!("/api/alerts/rules/{id}");
    for (body, field) in [
        (json!({"tags": {"tier": ""}}), "tags.tier"),
        (json!({"tags": {"": "x"}}), "tags."),
        (
            json!({"tags": (0..11).map(|i| (format!("k{i}"), json!("v"))).collect::<serde_json::Map<_, _>>()}),
            "tags",
        ),
        (json!({"condition": "user_feedback"}), "tags"),
    ] {
        let r = call(&app, Method::PUT, &path, Some(body.clone())).await;
        assert_envelope_error(&r, 400, "VALIDATION_ERROR");
        assert!(
            r.text.contains(&format!("\"field\":\"{field}\"")),
            "{body}: {}",
            r.text
        );
    }
    let r = call(&app, Method::PUT, &path, Some(json!({"tags": null}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(data(&r)["tags"], json!({}));
}

/// For a metric that counts issues, the environment filter takes the issues with an event of
/// it: new staging issues do not fire a production `new_issues` rule, new production ones do,
/// and only they are named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_issues_rule_counts_only_issues_of_its_environment() {
    let (app, got, _) = app_with_rule(json!({
        "name": "New in production", "condition": "new_issues > 1 in 10 minutes",
        "notifications": ["webhook"], "environment": "production"
    }))
    .await;
    for m in ["staging one", "staging two", "staging three"] {
        app.capture(json!({"message": m, "environment": "staging"}))
            .await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(alerts_received(&got).is_empty(), "three staging issues");
    let mut production = Vec::new();
    for m in ["production one", "production two"] {
        let r = app
            .capture(json!({"message": m, "environment": "production"}))
            .await;
        production.push(s(&r["group_id"]));
    }
    let alerts = wait_for_alerts(&got, 1).await;
    let d = &alerts[0]["data"];
    assert_eq!(d["count"], json!(2), "{d}");
    let mut named: Vec<String> = arr(&d["groups"]).iter().map(|g| s(&g["id"])).collect();
    named.sort();
    production.sort();
    assert_eq!(named, production);
}

/// A receiver that is briefly down gets the alert on a retry, with the same delivery id; one
/// that refuses it (HTTP 400) is not asked again, and the incident says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_briefly_failing_webhook_gets_the_alert_on_a_retry() {
    let (addr, got) = http_receiver().await;
    for (path, delivered) in [("/flaky/alerts", true), ("/reject/alerts", false)] {
        let app = spawn_app().await;
        webhook_at(&app, addr, path).await;
        create(
            &app,
            "/api/alerts/rules",
            &json!({"name": "Loud", "condition": "error_count > 1 in 1 minute",
                    "notifications": ["webhook"]}),
        )
        .await;
        capture_n(&app, "checkout failed", 2).await;
        let incidents = incidents_when(&app, |l| {
            l.first()
                .is_some_and(|i| s(&i["description"]).contains("Notified"))
        })
        .await;
        let description = s(&incidents[0]["description"]);
        let attempts: Vec<_> = got
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .map(|r| {
                r.headers["x-faultline-delivery"]
                    .to_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        if delivered {
            assert!(
                description.contains("Notified: webhook delivered"),
                "{description}"
            );
            assert_eq!(attempts.len(), 2, "one 503, then the retry");
            assert_eq!(
                attempts[0], attempts[1],
                "a retry carries the same delivery id"
            );
        } else {
            assert!(
                description.contains("webhook not delivered (the receiver answered HTTP 400)"),
                "{description}"
            );
            assert_eq!(attempts.len(), 1, "a refusal is not retried");
        }
    }
}
