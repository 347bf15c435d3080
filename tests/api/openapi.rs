//! The OpenAPI document (`src/rest/openapi.json`, served for `/docs`) against the real server:
//! each answer below must have a status the document lists for its operation, and a JSON
//! body valid against the schema documented for that status (JSON Schema 2020-12, formats
//! checked). The unit tests in `src/rest/openapi.rs` keep the document in step with the route
//! table; these keep it in step with what the handlers answer.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// The document, and what has been checked against it.
struct Spec {
    doc: Value,
    checked: Vec<String>,
}

impl Spec {
    fn load() -> Spec {
        let doc: Value =
            serde_json::from_str(faultline::rest::openapi::SPEC).expect("openapi.json is JSON");
        Spec {
            doc,
            checked: Vec::new(),
        }
    }

    /// `value`, or what its `$ref` points at.
    fn deref<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(r) => self
                .doc
                .pointer(r.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("unresolved $ref {r}")),
            None => value,
        }
    }

    /// A validator for `schema`, with the document's components beside it so that
    /// `#/components/schemas/…` references resolve.
    fn validator(&self, schema: &Value) -> jsonschema::Validator {
        let mut root = schema.as_object().cloned().expect("a schema object");
        root.insert(
            "$schema".into(),
            json!("https://json-schema.org/draft/2020-12/schema"),
        );
        root.insert("components".into(), self.doc["components"].clone());
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&Value::Object(root))
            .unwrap_or_else(|e| panic!("schema does not compile: {e}\n{schema}"))
    }

    fn validate(&self, schema: &Value, body: &Value, at: &str) {
        let validator = self.validator(schema);
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|e| format!("  at {}: {e}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{at}: the answer does not match the documented schema\n{}\nbody: {body:#}",
            errors.join("\n")
        );
    }

    /// Checks `r`, the answer to `method template`: its status is `want`, the document lists
    /// it for the operation, and its body matches the schema documented for it.
    fn check(&mut self, method: &str, template: &str, want: u16, r: &Resp) {
        let at = format!("{method} {template} → {}", r.status.as_u16());
        assert_eq!(r.status.as_u16(), want, "{at}: {}", r.text);
        let op = &self.doc["paths"][template][method.to_ascii_lowercase()];
        assert!(op.is_object(), "{method} {template} is not documented");
        let status = r.status.as_u16().to_string();
        let documented = op["responses"].get(&status).unwrap_or_else(|| {
            panic!(
                "{at}: status {status} is not documented for this operation: {}",
                r.text
            )
        });
        let documented = self.deref(documented);
        let content_type = r
            .header("content-type")
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        match documented.get("content").and_then(Value::as_object) {
            None => assert!(
                r.text.is_empty(),
                "{at}: documented without a body, answered {:?}",
                r.text
            ),
            Some(content) => {
                let media = content.get(&content_type).unwrap_or_else(|| {
                    panic!("{at}: content type {content_type:?} is not documented")
                });
                if content_type == "application/json" {
                    let body: Value = serde_json::from_str(&r.text)
                        .unwrap_or_else(|e| panic!("{at}: answer is not JSON ({e}): {}", r.text));
                    let schema = media["schema"].clone();
                    self.validate(&schema, &body, &at);
                }
            }
        }
        self.checked.push(at);
    }

    /// Checks `body` against a named component schema (stricter than an `anyOf` it is part of).
    fn check_component(&self, name: &str, body: &Value) {
        let schema = json!({ "$ref": format!("#/components/schemas/{name}") });
        self.validate(&schema, body, name);
    }

    fn report(&self) {
        eprintln!(
            "{} answers matched openapi.json:\n  {}",
            self.checked.len(),
            self.checked.join("\n  ")
        );
    }
}

/// A request as the Error Logging System's clients send it: the key in `X-API-Key`.
fn els(app: &TestApp, method: Method, path: &str) -> reqwest::RequestBuilder {
    app.anon(method, path).header("X-API-Key", &app.key)
}

const NO_SUCH_ID: &str = "00000000-0000-7000-8000-000000000000";

#[tokio::test]
async fn native_answers_match_the_document() {
    let app = spawn_app().await;
    let mut spec = Spec::load();

    let r = app
        .send(app.authed(Method::POST, "/v1/errors/capture").json(&json!({
            "exception": {"type": "ValueError", "message": "bad input",
                          "stacktrace": "Traceback (most recent call last):\n  File \"app.py\", line 3, in <module>\n    main()\nValueError: bad input"},
            "level": "error", "tags": {"region": "eu"}, "environment": "production", "release": "1.4.2",
            "user_id": "u-1", "extra_field": {"kept": true}
        })))
        .await;
    spec.check("POST", "/v1/errors/capture", 200, &r);
    let event_id = s(&r.body["event_id"]);
    let group_id = s(&r.body["group_id"]);

    let r = app
        .send(app.authed(Method::POST, "/v1/errors/capture/batch").json(&json!({
            "events": [{"message": "first failure", "stack": [{"file": "a.js", "line": 3, "method": "f"}]},
                       {"level": "not-a-level", "message": "x"}]
        })))
        .await;
    spec.check("POST", "/v1/errors/capture/batch", 200, &r);
    assert_eq!(r.body["rejected"], json!(1), "{}", r.text);

    let body =
        json!({"text": "payment provider timed out", "level": "warning", "idempotency_key": "k-1"});
    let r = app
        .send(app.authed(Method::POST, "/v1/errors/message").json(&body))
        .await;
    spec.check("POST", "/v1/errors/message", 200, &r);
    let r = app
        .send(app.authed(Method::POST, "/v1/errors/message").json(&body))
        .await;
    spec.check("POST", "/v1/errors/message", 200, &r);
    assert_eq!(r.body["duplicate"], json!(true));

    for (template, path) in [
        ("/v1/errors/list", "/v1/errors/list?limit=1".to_owned()),
        (
            "/v1/errors/list",
            format!(
                "/v1/errors/list?filter={}",
                enc(r#"{"level":"error","tags":{"region":"eu"}}"#)
            ),
        ),
        (
            "/v1/errors/search",
            "/v1/errors/search?q=bad&environment=production".to_owned(),
        ),
        (
            "/v1/errors/get/{event_id}",
            format!("/v1/errors/get/{event_id}"),
        ),
        (
            "/v1/errors/groups",
            "/v1/errors/groups?status=unresolved&sort=count_desc&limit=1".to_owned(),
        ),
        (
            "/v1/errors/group_detail/{error_group_id}",
            format!("/v1/errors/group_detail/{group_id}"),
        ),
        (
            "/v1/errors/events/{error_group_id}",
            format!("/v1/errors/events/{group_id}?limit=1"),
        ),
        (
            "/v1/errors/activity/{error_group_id}",
            format!("/v1/errors/activity/{group_id}"),
        ),
        (
            "/v1/errors/retention/get",
            "/v1/errors/retention/get".to_owned(),
        ),
        (
            "/v1/errors/ingest_policy/get",
            "/v1/errors/ingest_policy/get".to_owned(),
        ),
        ("/v1/projects/list", "/v1/projects/list".to_owned()),
        (
            "/v1/settings/dsn",
            "/v1/settings/dsn?host=errors.example.com".to_owned(),
        ),
        ("/v1/settings/policy", "/v1/settings/policy".to_owned()),
    ] {
        let r = app.send(app.authed(Method::GET, &path)).await;
        spec.check("GET", template, 200, &r);
    }
    // The stored payload and the grouping explanation come with a single event.
    let r = app
        .send(app.authed(Method::GET, &format!("/v1/errors/get/{event_id}")))
        .await;
    assert_eq!(r.body["payload"]["extra_field"], json!({"kept": true}));
    assert!(r.body["grouping"].is_object(), "{}", r.text);

    // A second page carries a cursor.
    let r = app
        .send(app.authed(Method::GET, "/v1/errors/list?limit=1"))
        .await;
    let cursor = s(&r.body["next_cursor"]);
    let r = app
        .send(app.authed(
            Method::GET,
            &format!("/v1/errors/list?limit=1&cursor={}", enc(&cursor)),
        ))
        .await;
    spec.check("GET", "/v1/errors/list", 200, &r);

    for verb in ["resolve", "unresolve", "ignore"] {
        let r = app
            .send(app.authed(Method::POST, &format!("/v1/errors/{verb}/{group_id}")))
            .await;
        spec.check(
            "POST",
            &format!("/v1/errors/{verb}/{{error_group_id}}"),
            200,
            &r,
        );
    }
    let r = app
        .send(
            app.authed(Method::POST, &format!("/v1/errors/ignore/{group_id}"))
                .json(&json!({"ignore_user_count": 5, "ignore_duration": 60})),
        )
        .await;
    spec.check("POST", "/v1/errors/ignore/{error_group_id}", 200, &r);
    assert!(n(&r.body["ignored_until_user_count"]) >= 5, "{}", r.text);
    let r = app
        .send(
            app.authed(Method::POST, &format!("/v1/errors/ignore/{group_id}"))
                .json(&json!({"ignore_count": 50, "ignore_window": 60,
                              "ignore_user_count": 5, "ignore_user_window": 1440})),
        )
        .await;
    spec.check("POST", "/v1/errors/ignore/{error_group_id}", 200, &r);
    assert_eq!(
        r.body["ignored_until_rate"]["window"],
        json!(60),
        "{}",
        r.text
    );
    let r = app
        .send(app.authed(Method::GET, &format!("/v1/errors/group_detail/{group_id}")))
        .await;
    spec.check("GET", "/v1/errors/group_detail/{error_group_id}", 200, &r);
    assert_eq!(
        r.body["ignored_until_user_rate"]["count"],
        json!(5),
        "{}",
        r.text
    );
    let r = app
        .send(app.authed(Method::GET, &format!("/v1/errors/activity/{group_id}")))
        .await;
    spec.check("GET", "/v1/errors/activity/{error_group_id}", 200, &r);
    let r = app
        .send(app.authed(Method::POST, "/v1/errors/bulk").json(&json!({
            "error_group_ids": [group_id, NO_SUCH_ID, "not-a-uuid"], "action": "resolve"
        })))
        .await;
    spec.check("POST", "/v1/errors/bulk", 200, &r);
    assert_eq!(arr(&r.body["failed"]).len(), 2, "{}", r.text);

    let mut merged = Vec::new();
    let mut keys = Vec::new();
    for n in 0..2 {
        let b = app
            .capture(json!({"message": "to merge", "fingerprint": ["merge", n.to_string()]}))
            .await;
        merged.push(b["group_id"].clone());
        keys.push(b["fingerprint"].clone());
    }
    let r = app
        .send(
            app.authed(Method::POST, "/v1/errors/merge")
                .json(&json!({"error_group_ids": merged})),
        )
        .await;
    spec.check("POST", "/v1/errors/merge", 200, &r);
    let kept = s(&r.body["error_group"]["id"]);
    let r = app
        .send(app.authed(Method::GET, &format!("/v1/errors/hashes/{kept}")))
        .await;
    spec.check("GET", "/v1/errors/hashes/{error_group_id}", 200, &r);
    let moving = if merged[0] == json!(kept) {
        &keys[1]
    } else {
        &keys[0]
    };
    let r = app
        .send(
            app.authed(Method::POST, &format!("/v1/errors/unmerge/{kept}"))
                .json(&json!({"hashes": [moving]})),
        )
        .await;
    spec.check("POST", "/v1/errors/unmerge/{error_group_id}", 200, &r);
    let r = app
        .send(app.authed(Method::GET, &format!("/v1/errors/activity/{kept}")))
        .await;
    spec.check("GET", "/v1/errors/activity/{error_group_id}", 200, &r);
    let r = app
        .send(
            app.authed(Method::POST, &format!("/v1/errors/unmerge/{kept}"))
                .json(&json!({"hashes": [moving]})),
        )
        .await;
    spec.check("POST", "/v1/errors/unmerge/{error_group_id}", 422, &r);
    let r = app
        .send(
            app.authed(Method::POST, "/v1/errors/feedback")
                .json(&json!({"event_id": kept, "name": "Ana", "comments": "It broke."})),
        )
        .await;
    spec.check("POST", "/v1/errors/feedback", 201, &r);
    let r = app
        .send(app.authed(Method::GET, "/v1/errors/feedback?limit=5"))
        .await;
    spec.check("GET", "/v1/errors/feedback", 200, &r);
    let r = app
        .send(
            app.authed(Method::POST, "/v1/errors/feedback")
                .json(&json!({"comments": ""})),
        )
        .await;
    spec.check("POST", "/v1/errors/feedback", 422, &r);

    let r = app
        .send(
            app.authed(Method::POST, "/v1/errors/export")
                .json(&json!({"filter": {"level": "error"}})),
        )
        .await;
    spec.check("POST", "/v1/errors/export", 200, &r);
    let r = app
        .send(
            app.authed(Method::POST, "/v1/errors/export")
                .json(&json!({"format": "csv"})),
        )
        .await;
    spec.check("POST", "/v1/errors/export", 200, &r);
    let r = app
        .send(app.authed(Method::POST, "/v1/errors/export"))
        .await;
    spec.check("POST", "/v1/errors/export", 200, &r);

    // Source maps: a release's files, and the files stored by debug id.
    let r = app
        .send(
            app.authed(
                Method::POST,
                "/v1/errors/releases/shop@2.0/files?name=~/static/app.min.js.map",
            )
            .body(crate::sourcemaps::map()),
        )
        .await;
    spec.check("POST", "/v1/errors/releases/{release}/files", 201, &r);
    let file = s(&r.body["id"]);
    let r = app
        .send(app.authed(Method::GET, "/v1/errors/releases/shop@2.0/files"))
        .await;
    spec.check("GET", "/v1/errors/releases/{release}/files", 200, &r);
    let r = app
        .send(app.authed(
            Method::DELETE,
            &format!("/v1/errors/releases/shop@2.0/files/{file}"),
        ))
        .await;
    spec.check(
        "DELETE",
        "/v1/errors/releases/{release}/files/{file_id}",
        200,
        &r,
    );
    let debug_id = "6a3f6c1e-9d2b-4f3e-8c7a-0b1d2e3f4a5b";
    crate::sourcemaps::assemble(
        &app,
        &crate::sourcemaps::debug_id_bundle(debug_id, "app"),
        "",
    )
    .await;
    let r = app
        .send(app.authed(Method::GET, "/v1/errors/debug-files?limit=1"))
        .await;
    spec.check("GET", "/v1/errors/debug-files", 200, &r);
    let r = app
        .send(app.authed(Method::GET, "/v1/errors/debug-files?debug_id=7"))
        .await;
    spec.check("GET", "/v1/errors/debug-files", 400, &r);
    let path = format!("/v1/errors/debug-files/{debug_id}");
    let r = app.send(app.authed(Method::DELETE, &path)).await;
    spec.check("DELETE", "/v1/errors/debug-files/{debug_id}", 200, &r);
    let r = app.send(app.authed(Method::DELETE, &path)).await;
    spec.check("DELETE", "/v1/errors/debug-files/{debug_id}", 404, &r);

    let r = app
        .send(
            app.authed(Method::PUT, "/v1/errors/retention/set")
                .json(&json!({"days": 90})),
        )
        .await;
    spec.check("PUT", "/v1/errors/retention/set", 200, &r);

    let r = app
        .send(app.authed(Method::DELETE, &format!("/v1/errors/delete/{group_id}")))
        .await;
    spec.check("DELETE", "/v1/errors/delete/{error_group_id}", 200, &r);

    let r = app
        .send(
            app.authed(Method::POST, "/v1/projects/create")
                .json(&json!({"name": "checkout-service"})),
        )
        .await;
    spec.check("POST", "/v1/projects/create", 200, &r);
    let project = s(&r.body["id"]);
    let r = app
        .send(app.authed(Method::GET, &format!("/v1/projects/get/{project}")))
        .await;
    spec.check("GET", "/v1/projects/get/{project_id}", 200, &r);
    // The project selector: the admin key works on the new project.
    let r = app
        .send(
            app.authed(Method::GET, "/v1/errors/groups")
                .header("X-Faultline-Project", &project),
        )
        .await;
    spec.check("GET", "/v1/errors/groups", 200, &r);
    assert_eq!(arr(&r.body["groups"]).len(), 0);

    spec.report();
    app.stop().await;
}

#[tokio::test]
async fn dialect_answers_match_the_document() {
    let app = spawn_app().await;
    let mut spec = Spec::load();

    let r = app.send(app.anon(Method::GET, "/health")).await;
    spec.check("GET", "/health", 200, &r);

    let r = app
        .send(els(&app, Method::POST, "/api/errors").header("User-Agent", "Mozilla/5.0 test").json(&json!({
            "level": "error", "message": "Database connection failed",
            "stack_trace": "Error: Connection timeout\n    at Database.connect(db.js:45)\n    at main(app.js:12)",
            "context": {"user_id": "12345", "session_id": "abc-def-ghi"},
            "source": "backend", "environment": "production", "url": "https://api.example.com/users"
        })))
        .await;
    spec.check("POST", "/api/errors", 201, &r);
    // An admin key reads the group back: the strict form of the anyOf.
    spec.check_component("ElsErrorCreated", &r.body["data"]);
    let id = s(&r.body["data"]["id"]);

    for (template, path) in [
        (
            "/api/errors",
            "/api/errors?limit=10&offset=0&level=error&source=backend".to_owned(),
        ),
        ("/api/errors", "/api/errors".to_owned()),
        ("/api/errors/{id}", format!("/api/errors/{id}")),
        ("/api/stats", "/api/stats".to_owned()),
        (
            "/api/analytics/trends",
            "/api/analytics/trends?period=week&group_by=day".to_owned(),
        ),
        (
            "/api/analytics/performance",
            "/api/analytics/performance".to_owned(),
        ),
        (
            "/api/monitoring/services",
            "/api/monitoring/services".to_owned(),
        ),
        (
            "/api/monitoring/metrics",
            "/api/monitoring/metrics?timeframe=24h".to_owned(),
        ),
        (
            "/api/monitoring/uptime",
            "/api/monitoring/uptime".to_owned(),
        ),
    ] {
        let r = app.send(els(&app, Method::GET, &path)).await;
        spec.check("GET", template, 200, &r);
    }
    let r = app
        .send(els(&app, Method::PUT, &format!("/api/errors/{id}/resolve")))
        .await;
    spec.check("PUT", "/api/errors/{id}/resolve", 200, &r);
    let r = app.send(els(&app, Method::GET, "/api/stats")).await;
    spec.check("GET", "/api/stats", 200, &r);
    let r = app
        .send(els(&app, Method::DELETE, &format!("/api/errors/{id}")))
        .await;
    spec.check("DELETE", "/api/errors/{id}", 204, &r);

    let r = app
        .send(els(&app, Method::POST, "/api/alerts/rules").json(&json!({
            "name": "High Error Rate", "condition": "error_count > threshold in time_window",
            "threshold": 50, "time_window": "5m", "notifications": ["email", "slack"], "enabled": true
        })))
        .await;
    spec.check("POST", "/api/alerts/rules", 201, &r);
    let rule = s(&r.body["data"]["id"]);
    let r = app.send(els(&app, Method::GET, "/api/alerts/rules")).await;
    spec.check("GET", "/api/alerts/rules", 200, &r);
    let r = app
        .send(
            els(&app, Method::PUT, &format!("/api/alerts/rules/{rule}"))
                .json(&json!({"enabled": false})),
        )
        .await;
    spec.check("PUT", "/api/alerts/rules/{id}", 200, &r);
    let r = app
        .send(els(&app, Method::POST, "/api/alerts/incidents").json(&json!({
            "title": "Database Connection Timeout", "severity": "critical", "assigned_to": "user-123"
        })))
        .await;
    spec.check("POST", "/api/alerts/incidents", 201, &r);
    let incident = s(&r.body["data"]["id"]);
    let r = app
        .send(
            els(
                &app,
                Method::PUT,
                &format!("/api/alerts/incidents/{incident}"),
            )
            .json(&json!({"status": "resolved"})),
        )
        .await;
    spec.check("PUT", "/api/alerts/incidents/{id}", 200, &r);
    let r = app
        .send(els(
            &app,
            Method::GET,
            "/api/alerts/incidents?status=resolved",
        ))
        .await;
    spec.check("GET", "/api/alerts/incidents", 200, &r);
    let r = app
        .send(els(
            &app,
            Method::DELETE,
            &format!("/api/alerts/rules/{rule}"),
        ))
        .await;
    spec.check("DELETE", "/api/alerts/rules/{id}", 204, &r);

    let report = json!({
        "project_id": "rtc_backend", "environment": "production", "level": "ERROR",
        "timestamp": "2026-01-30T10:30:00Z", "version": "1.2.3", "commit_hash": "abc1234",
        "error": {"type": "ValueError", "message": "invalid literal for int() with base 10: 'abc'",
                  "file_path": "apps/users/views.py", "line_number": 42,
                  "stack_trace": ["Traceback (most recent call last):", "ValueError: invalid literal"]},
        "context": {"url": "/api/users/123", "user_id": "u_12345"}
    });
    let r = app
        .send(
            app.authed(Method::POST, "/api/v1/logs/report")
                .json(&report),
        )
        .await;
    spec.check("POST", "/api/v1/logs/report", 200, &r);
    assert_eq!(r.body["status"], json!("ok"));
    // The key in the query, as `navigator.sendBeacon` sends it: a duplicate.
    let r = app
        .send(
            app.anon(
                Method::POST,
                &format!("/api/v1/logs/report?key={}", enc(&app.key)),
            )
            .json(&report),
        )
        .await;
    spec.check("POST", "/api/v1/logs/report", 200, &r);
    assert_eq!(r.body["status"], json!("duplicate"));
    let log = s(&r.body["id"]);
    // The report created project `rtc_backend`; its error is read there.
    let r = app.send(app.authed(Method::GET, "/v1/projects/list")).await;
    let rtc = arr(&r.body["projects"])
        .iter()
        .find(|p| p["name"] == "rtc_backend")
        .map(|p| s(&p["id"]))
        .expect("project rtc_backend");
    let r = app
        .send(
            app.authed(Method::GET, &format!("/api/v1/logs/{log}"))
                .header("X-Faultline-Project", &rtc),
        )
        .await;
    spec.check("GET", "/api/v1/logs/{id}", 200, &r);
    let r = app
        .send(
            app.authed(Method::PUT, &format!("/api/v1/logs/{log}/status"))
                .header("X-Faultline-Project", &rtc)
                .json(&json!({"status": "VERIFYING"})),
        )
        .await;
    spec.check("PUT", "/api/v1/logs/{id}/status", 200, &r);

    let r = app
        .send(app.authed(Method::POST, "/ingest/errors").json(&json!({
            "exception_class": "RuntimeError", "message": "Something went wrong",
            "backtrace": ["app/models/user.rb:42:in `save`"], "fingerprint": "user_save_runtime_error",
            "request_id": "abc-123-def", "user_id": "123", "params": {"id": "999"},
            "timestamp": "2024-01-01T12:00:00Z",
            "source_context": {"file": "app/models/user.rb", "lineno": 42, "context_line": "raise 'Invalid'"}
        })))
        .await;
    spec.check("POST", "/ingest/errors", 202, &r);
    let r = app
        .send(app.authed(Method::POST, "/ingest/errors/batch").json(&json!({"errors": [
            {"exception_class": "RuntimeError", "message": "Error 1", "backtrace": ["..."], "fingerprint": "fp1"},
            {"exception_class": "", "message": "Error 2", "backtrace": ["..."], "fingerprint": "fp2"}
        ]})))
        .await;
    spec.check("POST", "/ingest/errors/batch", 202, &r);

    // Sentry's store endpoint, with the project's DSN key.
    let dsn = app.get_ok("/v1/settings/dsn").await;
    let number = dsn["project_id"].to_string();
    let r = app
        .send(
            app.anon(Method::POST, &format!("/api/{number}/store/"))
                .header(
                    "X-Sentry-Auth",
                    format!("Sentry sentry_key={}, sentry_version=7", s(&dsn["public_key"])),
                )
                .json(&json!({"event_id": "9ec79c33ec9942ab8353589fcb2e04dc", "level": "error",
                              "exception": {"values": [{"type": "ValueError", "value": "bad input"}]}})),
        )
        .await;
    spec.check("POST", "/api/{project}/store/", 200, &r);
    let envelope = "{\"event_id\":\"0a8e8b5f0c6d4e3f9a1b2c3d4e5f6a7b\"}\n{\"type\":\"event\"}\n{\"message\":\"hello\",\"level\":\"error\"}\n";
    let r = app
        .send(
            app.anon(
                Method::POST,
                &format!(
                    "/api/{number}/envelope/?sentry_key={}",
                    s(&dsn["public_key"])
                ),
            )
            .header("Content-Type", "application/x-sentry-envelope")
            .body(envelope),
        )
        .await;
    spec.check("POST", "/api/{project}/envelope/", 200, &r);
    // The crash-report dialog's form, about the stored event.
    let dialog = format!(
        "/api/embed/error-page/?eventId=9ec79c33ec9942ab8353589fcb2e04dc&dsn={}",
        enc(&s(&dsn["dsn"]))
    );
    for (body, status) in [("name=Ana&comments=It+froze.", 200), ("comments=", 422)] {
        let r = app
            .send(
                app.anon(Method::POST, &dialog)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(body),
            )
            .await;
        spec.check("POST", "/api/embed/error-page/", status, &r);
    }

    for template in [
        "/api/settings/api-keys",
        "/api/settings/team",
        "/api/settings/audit-log",
        "/api/settings/integrations",
    ] {
        let r = app.send(app.authed(Method::GET, template)).await;
        spec.check("GET", template, 200, &r);
    }
    let r = app
        .send(app.authed(Method::POST, "/api/settings/api-keys").json(&json!({
            "name": "Development Key", "permissions": ["read"], "expires_at": "2099-12-31T23:59:59Z"
        })))
        .await;
    spec.check("POST", "/api/settings/api-keys", 201, &r);
    let r = app
        .send(
            app.authed(Method::POST, "/api/settings/team/invite")
                .json(&json!({
                    "email": "newuser@company.com", "role": "viewer"
                })),
        )
        .await;
    spec.check("POST", "/api/settings/team/invite", 201, &r);
    let token = s(&r.body["data"]["invite_token"]);
    let r = app
        .send(
            app.anon(Method::POST, "/api/settings/team/invite/accept")
                .json(&json!({"token": token, "name": "New User"})),
        )
        .await;
    spec.check("POST", "/api/settings/team/invite/accept", 200, &r);
    let member = s(&r.body["data"]["member"]["id"]);

    // The writes of settings, projects and groups.
    let r = app
        .send(
            els(&app, Method::PUT, &format!("/api/settings/team/{member}"))
                .json(&json!({"role": "developer"})),
        )
        .await;
    spec.check("PUT", "/api/settings/team/{id}", 200, &r);
    let r = app
        .send(els(
            &app,
            Method::DELETE,
            &format!("/api/settings/team/{member}"),
        ))
        .await;
    spec.check("DELETE", "/api/settings/team/{id}", 204, &r);
    let r = app
        .send(
            els(&app, Method::POST, "/api/settings/api-keys").json(&json!({
                "name": "short-lived", "permissions": ["ingest"]
            })),
        )
        .await;
    let key_id = s(&r.body["data"]["id"]);
    let r = app
        .send(els(
            &app,
            Method::DELETE,
            &format!("/api/settings/api-keys/{key_id}"),
        ))
        .await;
    spec.check("DELETE", "/api/settings/api-keys/{id}", 204, &r);
    // A webhook at this server's own health route, which answers a POST with 405.
    let hook = format!("http://{}/health", app.addr);
    let r = app
        .send(
            els(&app, Method::PUT, "/api/settings/integrations/webhook")
                .json(&json!({"config": {"url": hook, "secret": "s3cret"}})),
        )
        .await;
    spec.check("PUT", "/api/settings/integrations/{name}", 200, &r);
    let r = app
        .send(els(
            &app,
            Method::POST,
            "/api/settings/integrations/webhook/test",
        ))
        .await;
    spec.check("POST", "/api/settings/integrations/{name}/test", 200, &r);
    let r = app
        .send(els(
            &app,
            Method::DELETE,
            "/api/settings/integrations/webhook",
        ))
        .await;
    spec.check("DELETE", "/api/settings/integrations/{name}", 204, &r);
    let r = app
        .send(app.authed(Method::PUT, "/v1/settings/policy").json(&json!({
            "rate_limits": {"ingest_per_minute": 2000}, "scrub_fields": ["card_number"],
            "allowed_origins": ["https://shop.example.com"]
        })))
        .await;
    spec.check("PUT", "/v1/settings/policy", 200, &r);
    let r = app
        .send(
            app.authed(Method::PUT, "/v1/errors/ingest_policy/set")
                .json(&json!({"anonymous_loopback_ingest": true})),
        )
        .await;
    spec.check("PUT", "/v1/errors/ingest_policy/set", 200, &r);
    let project = s(&app.get_ok("/v1/projects/list").await["projects"][0]["id"]);
    let r = app
        .send(
            app.authed(Method::PUT, &format!("/v1/projects/rename/{project}"))
                .json(&json!({"name": "checkout"})),
        )
        .await;
    spec.check("PUT", "/v1/projects/rename/{project_id}", 200, &r);
    let group = s(&app.capture(json!({"message": "flaky upstream"})).await["group_id"]);
    for (action, template) in [
        ("ignore", "/v1/errors/ignore/{error_group_id}"),
        ("unresolve", "/v1/errors/unresolve/{error_group_id}"),
    ] {
        let r = app
            .send(
                app.authed(Method::POST, &format!("/v1/errors/{action}/{group}"))
                    .json(&json!({})),
            )
            .await;
        spec.check("POST", template, 200, &r);
    }
    // Sentry's routes without their trailing slash.
    let (key, project) = crate::sentry::key_and_project(&app).await;
    let r = app
        .send(
            app.anon(
                Method::POST,
                &format!("/api/{project}/store?sentry_key={key}"),
            )
            .json(&json!({"message": "no slash"})),
        )
        .await;
    spec.check("POST", "/api/{project}/store", 200, &r);
    let envelope = format!(
        "{{}}\n{{\"type\":\"event\"}}\n{}\n",
        json!({"message": "no slash either"})
    );
    let r = app
        .send(
            app.anon(
                Method::POST,
                &format!("/api/{project}/envelope?sentry_key={key}"),
            )
            .body(envelope),
        )
        .await;
    spec.check("POST", "/api/{project}/envelope", 200, &r);

    spec.report();
    app.stop().await;
}

#[tokio::test]
async fn error_answers_match_the_document() {
    let app = spawn_app().await;
    let mut spec = Spec::load();

    // Unreadable JSON: 400, in each error format.
    let r = app
        .send(
            app.authed(Method::POST, "/v1/errors/capture")
                .header("Content-Type", "application/json")
                .body("{\"message\": "),
        )
        .await;
    spec.check("POST", "/v1/errors/capture", 400, &r);
    assert_eq!(r.body["error"]["code"], json!("VALIDATION_ERROR"));
    let r = app
        .send(
            els(&app, Method::POST, "/api/errors")
                .header("Content-Type", "application/json")
                .body("{oops"),
        )
        .await;
    spec.check("POST", "/api/errors", 400, &r);
    assert_eq!(r.body["status"], json!("error"));
    // Readable JSON without what is required: 422 natively, 400 in the ELS envelope.
    let r = app
        .send(
            app.authed(Method::POST, "/v1/errors/capture")
                .json(&json!({"level": "error"})),
        )
        .await;
    spec.check("POST", "/v1/errors/capture", 422, &r);
    let r = app
        .send(els(&app, Method::POST, "/api/errors").json(&json!({"message": "no source"})))
        .await;
    spec.check("POST", "/api/errors", 400, &r);
    let r = app
        .send(
            app.authed(Method::POST, "/ingest/errors")
                .json(&json!({"message": "x"})),
        )
        .await;
    spec.check("POST", "/ingest/errors", 422, &r);
    let r = app
        .send(
            app.authed(Method::POST, "/ingest/errors/batch")
                .json(&json!({"errors": [{"message": "x"}]})),
        )
        .await;
    spec.check("POST", "/ingest/errors/batch", 500, &r);
    assert_eq!(r.body["error"]["code"], json!("BATCH_FAILED"));
    let r = app
        .send(
            app.authed(Method::POST, "/api/v1/logs/report")
                .json(&json!({"project_id": "x"})),
        )
        .await;
    spec.check("POST", "/api/v1/logs/report", 422, &r);
    let r = app
        .send(app.authed(Method::GET, "/v1/errors/list?nonsense=1"))
        .await;
    spec.check("GET", "/v1/errors/list", 400, &r);
    let r = app.send(app.authed(Method::GET, "/v1/errors/search")).await;
    spec.check("GET", "/v1/errors/search", 422, &r);

    // Missing or wrong key: 401.
    let r = app.send(app.anon(Method::GET, "/v1/errors/groups")).await;
    spec.check("GET", "/v1/errors/groups", 401, &r);
    let r = app.send(app.anon(Method::GET, "/api/errors")).await;
    spec.check("GET", "/api/errors", 401, &r);
    let r = app
        .send(
            app.anon(Method::GET, "/v1/projects/list")
                .bearer_auth("not-a-key"),
        )
        .await;
    spec.check("GET", "/v1/projects/list", 401, &r);
    let r = app
        .send(
            app.anon(Method::POST, "/api/1/store/")
                .json(&json!({"message": "x"})),
        )
        .await;
    spec.check("POST", "/api/{project}/store/", 401, &r);

    // A key without the scope: 403.
    let r = app
        .send(
            app.authed(Method::POST, "/api/settings/api-keys")
                .json(&json!({"name": "reader", "permissions": ["read"]})),
        )
        .await;
    let reader = s(&r.body["data"]["api_key"]);
    let r = app
        .send(
            app.anon(Method::POST, &format!("/v1/errors/resolve/{NO_SUCH_ID}"))
                .bearer_auth(&reader),
        )
        .await;
    spec.check("POST", "/v1/errors/resolve/{error_group_id}", 403, &r);
    let r = app
        .send(
            app.anon(Method::POST, "/api/alerts/rules")
                .header("X-API-Key", &reader)
                .json(&json!({})),
        )
        .await;
    spec.check("POST", "/api/alerts/rules", 403, &r);

    // Unknown ids: 404; malformed ids: 400.
    for (template, path) in [
        (
            "/v1/errors/get/{event_id}",
            format!("/v1/errors/get/{NO_SUCH_ID}"),
        ),
        (
            "/v1/errors/group_detail/{error_group_id}",
            format!("/v1/errors/group_detail/{NO_SUCH_ID}"),
        ),
        (
            "/v1/errors/events/{error_group_id}",
            format!("/v1/errors/events/{NO_SUCH_ID}"),
        ),
        (
            "/v1/projects/get/{project_id}",
            format!("/v1/projects/get/{NO_SUCH_ID}"),
        ),
        ("/api/v1/logs/{id}", format!("/api/v1/logs/{NO_SUCH_ID}")),
    ] {
        let r = app.send(app.authed(Method::GET, &path)).await;
        spec.check("GET", template, 404, &r);
    }
    let r = app
        .send(els(&app, Method::GET, &format!("/api/errors/{NO_SUCH_ID}")))
        .await;
    spec.check("GET", "/api/errors/{id}", 404, &r);
    let r = app
        .send(
            els(
                &app,
                Method::PUT,
                &format!("/api/alerts/rules/{NO_SUCH_ID}"),
            )
            .json(&json!({"enabled": false})),
        )
        .await;
    spec.check("PUT", "/api/alerts/rules/{id}", 404, &r);
    let r = app
        .send(app.authed(Method::DELETE, &format!("/v1/errors/delete/{NO_SUCH_ID}")))
        .await;
    spec.check("DELETE", "/v1/errors/delete/{error_group_id}", 404, &r);
    let r = app
        .send(app.authed(Method::GET, "/v1/errors/get/not-a-uuid"))
        .await;
    spec.check("GET", "/v1/errors/get/{event_id}", 400, &r);
    let r = app
        .send(els(&app, Method::GET, "/api/errors/not-a-uuid"))
        .await;
    spec.check("GET", "/api/errors/{id}", 400, &r);
    // The project selector: malformed 400, unknown 404.
    let r = app
        .send(
            app.authed(Method::GET, "/v1/errors/groups")
                .header("X-Faultline-Project", "nope"),
        )
        .await;
    spec.check("GET", "/v1/errors/groups", 400, &r);
    let r = app
        .send(
            app.authed(Method::GET, "/v1/errors/groups")
                .header("X-Faultline-Project", NO_SUCH_ID),
        )
        .await;
    spec.check("GET", "/v1/errors/groups", 404, &r);

    // Conflicts: 409.
    let captured = app.capture(json!({"message": "workflow"})).await;
    let r = app
        .send(
            app.authed(
                Method::PUT,
                &format!("/api/v1/logs/{}/status", s(&captured["group_id"])),
            )
            .json(&json!({"status": "DEPLOYED"})),
        )
        .await;
    spec.check("PUT", "/api/v1/logs/{id}/status", 409, &r);
    let r = app.send(app.authed(Method::GET, "/v1/projects/list")).await;
    let only = s(&arr(&r.body["projects"])[0]["id"]);
    let r = app
        .send(app.authed(Method::DELETE, &format!("/v1/projects/delete/{only}")))
        .await;
    spec.check("DELETE", "/v1/projects/delete/{project_id}", 409, &r);

    spec.report();
    app.stop().await;
}
