//! The documented dialects other clients already speak: Log Center (with the fix workflow and
//! keyless loopback ingest) and MiniAPM. Each route gets its documented example and bad input;
//! every event sent through a dialect must be visible through `/v1/errors` and over gRPC in
//! the same group.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{auth_matrix::make_key, helpers::*};
use faultline::pb;

/// A recent time: the documented examples' dates are older than the default retention, and
/// the cleanup job may remove such events while a test reads them.
fn recent() -> String {
    (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339()
}

/// The example body of the Log Center guide (with a recent timestamp), `line_number` changeable.
/// `project_id` names the test server's first project ("default") so the native reads of the
/// default key see the events; the guide's own name, which creates a project, is tested below.
fn log_center_report(line: u32) -> Value {
    json!({
        "project_id": "default",
        "environment": "production",
        "level": "ERROR",
        "timestamp": recent(),
        "version": "1.2.3",
        "commit_hash": "abc1234",
        "error": {
            "type": "ValueError",
            "message": "invalid literal for int() with base 10: 'abc'",
            "file_path": "apps/users/views.py",
            "line_number": line,
            "stack_trace": [
                "Traceback (most recent call last):",
                "  File \"apps/users/views.py\", line 42, in get_user",
                "    user_id = int(request.GET['id'])",
                "ValueError: invalid literal for int() with base 10: 'abc'"
            ]
        },
        "context": {"url": "/api/users/123", "method": "GET", "user_id": "u_12345", "request_id": "req_abc123"}
    })
}

/// The group is the same through the native REST API and over gRPC, and holds `events` events.
async fn assert_visible(app: &TestApp, group_id: &str, events: u64) {
    let g = app.group(group_id).await;
    assert_eq!(g["count"], json!(events), "native group detail: {g}");
    let listed = app.list_all(&format!("group_id={group_id}")).await;
    assert_eq!(listed.len() as u64, events, "native event listing");
    assert!(listed.iter().all(|e| e["group_id"] == json!(group_id)));
    let got = app
        .groups_client()
        .await
        .get_group(app.req(pb::GetGroupRequest {
            group_id: group_id.to_owned(),
        }))
        .await
        .expect("gRPC GetGroup")
        .into_inner();
    let group = got.group.expect("group");
    assert_eq!(group.id, group_id);
    assert_eq!(group.count, events);
}

#[tokio::test]
async fn log_center_report_answers_ok_then_duplicate_in_one_group() {
    let app = spawn_app().await;
    let first = app
        .post_ok("/api/v1/logs/report", &log_center_report(42))
        .await;
    assert_eq!(first["status"], json!("ok"), "{first}");
    assert_eq!(first["is_new"], json!(true));
    let id = uuid_str(&first["id"]);
    assert!(first["fingerprint"].as_str().is_some_and(|f| !f.is_empty()));

    // Same project, type, file and line, another message: the same group.
    let mut again = log_center_report(42);
    again["error"]["message"] = json!("invalid literal for int() with base 10: 'xyz'");
    let second = app.post_ok("/api/v1/logs/report", &again).await;
    assert_eq!(second["status"], json!("duplicate"), "{second}");
    assert_eq!(second["is_new"], json!(false));
    assert_eq!(second["id"], json!(id));
    assert_eq!(second["fingerprint"], first["fingerprint"]);

    // Another line is another error.
    let other = app
        .post_ok("/api/v1/logs/report", &log_center_report(43))
        .await;
    assert_eq!(other["status"], json!("ok"));
    assert_ne!(other["id"], json!(id));

    assert_visible(&app, &id, 2).await;
    let ev = app.event(&s(&second["event_id"])).await;
    assert_eq!(ev["release"], json!("1.2.3"));
    assert_eq!(ev["environment"], json!("production"));
    assert_eq!(ev["user_id"], json!("u_12345"));
    assert_eq!(ev["tags"]["commit"], json!("abc1234"));
}

/// `project_id` names a Faultline project: created by the first report when the key may
/// create projects, found by later ones (also concurrent first ones end in one project), and
/// answered 404 for a key that may not create it or may not reach it.
#[tokio::test]
async fn log_center_project_id_maps_to_a_project_created_on_first_use() {
    let app = spawn_app().await;
    let path = "/api/v1/logs/report";
    let projects = |list: Value, name: &str| -> Vec<String> {
        arr(&list["projects"])
            .iter()
            .filter(|p| p["name"] == json!(name))
            .map(|p| s(&p["id"]))
            .collect()
    };
    let mut body = log_center_report(42);
    body["project_id"] = json!("rtc_backend");
    let first = app.post_ok(path, &body).await;
    assert_eq!(first["is_new"], json!(true), "{first}");
    let group = s(&first["id"]);
    let created = projects(app.get_ok("/v1/projects/list").await, "rtc_backend");
    assert_eq!(created.len(), 1);
    let project = created[0].clone();
    // Not in the key's own project, but readable when the request selects the new one.
    let own = app
        .send(app.authed(Method::GET, &format!("/v1/errors/group_detail/{group}")))
        .await;
    assert_eq!(own.status, StatusCode::NOT_FOUND, "{}", own.text);
    let read = |path: String| {
        app.authed(Method::GET, &path)
            .header("X-Faultline-Project", &project)
    };
    let g = app
        .send(read(format!("/v1/errors/group_detail/{group}")))
        .await;
    assert_eq!(g.status, StatusCode::OK, "{}", g.text);
    assert_eq!(g.body["count"], json!(1));
    let ev = app
        .send(read(format!("/v1/errors/get/{}", s(&first["event_id"]))))
        .await;
    assert_eq!(ev.status, StatusCode::OK, "{}", ev.text);

    // The second report finds the project and the group; so does its id.
    let second = app.post_ok(path, &body).await;
    assert_eq!(second["status"], json!("duplicate"), "{second}");
    assert_eq!(second["id"], json!(group));
    body["project_id"] = json!(project);
    let by_id = app.post_ok(path, &body).await;
    assert_eq!(by_id["id"], json!(group), "{by_id}");
    let g = app
        .send(read(format!("/v1/errors/group_detail/{group}")))
        .await;
    assert_eq!(g.body["count"], json!(3), "{}", g.text);
    assert_eq!(
        projects(app.get_ok("/v1/projects/list").await, "rtc_backend").len(),
        1
    );
    // Creating it is audited like CreateProject.
    let log = app.get_ok("/api/settings/audit-log?limit=100").await;
    assert!(
        arr(&log["data"]["entries"])
            .iter()
            .any(|e| e["action"] == json!("project.create")
                && e["target"] == json!(format!("project:{project}"))),
        "{log}"
    );

    // Concurrent first reports for one name end in one project and one group.
    let mut burst = log_center_report(7);
    burst["project_id"] = json!("burst");
    let answers = futures::future::join_all(
        (0..6).map(|_| app.send(app.authed(Method::POST, path).json(&burst))),
    )
    .await;
    for r in &answers {
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    assert!(
        answers
            .iter()
            .all(|r| r.body["id"] == answers[0].body["id"])
    );
    assert_eq!(
        projects(app.get_ok("/v1/projects/list").await, "burst").len(),
        1
    );

    // An ingest-only key may report to an existing project but not create one.
    let (_, ingest) = make_key(&app, json!({"name": "lc", "permissions": ["ingest"]})).await;
    body["project_id"] = json!("rtc_backend");
    let r = app
        .send(
            app.anon(Method::POST, path)
                .header("X-API-Key", &ingest)
                .json(&body),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    body["project_id"] = json!("never_seen");
    let r = app
        .send(
            app.anon(Method::POST, path)
                .header("X-API-Key", &ingest)
                .json(&body),
        )
        .await;
    assert_error(&r, 404, "NOT_FOUND", "POST", path);
    // A key restricted to one project learns nothing of another, existing or not.
    let (_, restricted) = make_key(
        &app,
        json!({"name": "a only", "permissions": ["ingest", "admin"], "project_id": project}),
    )
    .await;
    for other in ["burst", "never_seen"] {
        body["project_id"] = json!(other);
        let r = app
            .send(
                app.anon(Method::POST, path)
                    .header("X-API-Key", &restricted)
                    .json(&body),
            )
            .await;
        assert_error(&r, 404, "NOT_FOUND", "POST", path);
    }
    body["project_id"] = json!("rtc_backend");
    let r = app
        .send(
            app.anon(Method::POST, path)
                .header("X-API-Key", &restricted)
                .json(&body),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["id"], json!(group));
    assert_eq!(
        projects(app.get_ok("/v1/projects/list").await, "never_seen").len(),
        0
    );
}

#[tokio::test]
async fn log_center_levels_are_case_insensitive_and_critical_is_fatal() {
    let app = spawn_app().await;
    let mut body = log_center_report(7);
    body["level"] = json!("critical");
    body["error"]["stack_trace"] = json!("Traceback (most recent call last):\nValueError: x");
    let r = app.post_ok("/api/v1/logs/report", &body).await;
    let g = app.group(&s(&r["id"])).await;
    assert_eq!(g["level"], json!("fatal"), "{g}");
}

#[tokio::test]
async fn log_center_bad_input_gets_the_error_body() {
    let app = spawn_app().await;
    let path = "/api/v1/logs/report";
    let mut no_file = log_center_report(1);
    no_file["error"]
        .as_object_mut()
        .unwrap()
        .remove("file_path");
    let r = app
        .send(app.authed(Method::POST, path).json(&no_file))
        .await;
    let e = assert_error(&r, 422, "VALIDATION_ERROR", "POST", path);
    assert_detail_field(e, "error.file_path");

    let mut bad_level = log_center_report(1);
    bad_level["level"] = json!("INFO");
    let r = app
        .send(app.authed(Method::POST, path).json(&bad_level))
        .await;
    let e = assert_error(&r, 422, "VALIDATION_ERROR", "POST", path);
    assert_detail_field(e, "level");

    let r = app
        .send(
            app.authed(Method::POST, path)
                .header("content-type", "application/json")
                .body("{\"project_id\":"),
        )
        .await;
    assert_error(&r, 400, "VALIDATION_ERROR", "POST", path);

    let r = app
        .send(app.anon(Method::POST, path).json(&log_center_report(1)))
        .await;
    assert_error(&r, 401, "UNAUTHORIZED", "POST", path);
}

#[tokio::test]
async fn log_center_accepts_the_key_as_header_or_query_parameter() {
    let app = spawn_app().await;
    let path = "/api/v1/logs/report";
    let r = app
        .send(
            app.anon(Method::POST, path)
                .header("X-API-Key", &app.key)
                .json(&log_center_report(1)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let with_query = format!("{path}?key={}", enc(&app.key));
    let r = app
        .send(
            app.anon(Method::POST, &with_query)
                .json(&log_center_report(1)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], json!("duplicate"));
    let r = app
        .send(
            app.anon(Method::POST, &format!("{path}?key=nope"))
                .json(&log_center_report(1)),
        )
        .await;
    assert_error(&r, 401, "UNAUTHORIZED", "POST", path);
}

#[tokio::test]
async fn anonymous_loopback_ingest_is_off_by_default_and_ingest_only() {
    let app = spawn_app().await;
    let path = "/api/v1/logs/report";
    let policy = app.get_ok("/v1/errors/ingest_policy/get").await;
    assert_eq!(policy, json!({"anonymous_loopback_ingest": false}));
    let r = app
        .send(app.anon(Method::POST, path).json(&log_center_report(1)))
        .await;
    assert_error(&r, 401, "UNAUTHORIZED", "POST", path);

    let (st, b) = app
        .put(
            "/v1/errors/ingest_policy/set",
            &json!({"anonymous_loopback_ingest": true}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b, json!({"anonymous_loopback_ingest": true}));
    // The test client connects over 127.0.0.1: a loopback peer.
    let r = app
        .send(app.anon(Method::POST, path).json(&log_center_report(1)))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["is_new"], json!(true));
    // Keyless callers may only ingest.
    let r = app.send(app.anon(Method::GET, "/v1/errors/groups")).await;
    assert_error(&r, 401, "UNAUTHORIZED", "GET", "/v1/errors/groups");
    // A forwarding header claiming another address changes nothing: only the peer counts.
    let r = app
        .send(
            app.anon(Method::POST, path)
                .header("X-Forwarded-For", "203.0.113.9")
                .json(&log_center_report(1)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // Over gRPC too, and switching it off again.
    let got = app
        .settings_client()
        .await
        .set_ingest_policy(app.req(pb::SetIngestPolicyRequest {
            anonymous_loopback_ingest: false,
        }))
        .await
        .expect("SetIngestPolicy")
        .into_inner();
    assert_eq!(got.policy.map(|p| p.anonymous_loopback_ingest), Some(false));
    let r = app
        .send(app.anon(Method::POST, path).json(&log_center_report(1)))
        .await;
    assert_error(&r, 401, "UNAUTHORIZED", "POST", path);

    // Changing the policy needs the admin scope; a bad body is a 422.
    let r = app
        .send(
            app.authed(Method::PUT, "/v1/errors/ingest_policy/set")
                .json(&json!({"anonymous_loopback_ingest": "yes"})),
        )
        .await;
    assert_error(
        &r,
        422,
        "VALIDATION_ERROR",
        "PUT",
        "/v1/errors/ingest_policy/set",
    );
}

async fn move_to(app: &TestApp, id: &str, stage: &str) -> reqwest::Response {
    app.authed(Method::PUT, &format!("/api/v1/logs/{id}/status"))
        .json(&json!({ "status": stage }))
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn workflow_follows_the_documented_transitions_and_deployed_resolves() {
    let app = spawn_app().await;
    let r = app
        .post_ok("/api/v1/logs/report", &log_center_report(42))
        .await;
    let id = s(&r["id"]);
    let got = app.get_ok(&format!("/api/v1/logs/{id}")).await;
    assert_eq!(got["status"], json!("NEW"), "{got}");

    // Not documented: NEW → FIXED.
    let path = format!("/api/v1/logs/{id}/status");
    let resp = app
        .send(
            app.authed(Method::PUT, &path)
                .json(&json!({"status": "FIXED"})),
        )
        .await;
    assert_error(&resp, 409, "CONFLICT", "PUT", &path);
    // Not a stage at all.
    let resp = app
        .send(
            app.authed(Method::PUT, &path)
                .json(&json!({"status": "DONE"})),
        )
        .await;
    let e = assert_error(&resp, 422, "VALIDATION_ERROR", "PUT", &path);
    assert_detail_field(e, "status");

    let mut prev = "NEW";
    for stage in [
        "VERIFYING",
        "PENDING_FIX",
        "FIXING",
        "FIXED",
        "VERIFIED",
        "DEPLOYED",
    ] {
        let r = move_to(&app, &id, stage).await;
        assert_eq!(r.status(), StatusCode::OK, "to {stage}");
        let b: Value = r.json().await.expect("json");
        assert_eq!(b["status"], json!(stage), "{b}");
        assert_eq!(b["previous_status"], json!(prev), "{b}");
        prev = stage;
    }
    let g = app.group(&id).await;
    assert_eq!(g["status"], json!("resolved"), "DEPLOYED resolves: {g}");
    assert_eq!(g["workflow_stage"], json!("DEPLOYED"));
    // DEPLOYED is the end of the chain.
    let resp = app
        .send(
            app.authed(Method::PUT, &path)
                .json(&json!({"status": "NEW"})),
        )
        .await;
    assert_error(&resp, 409, "CONFLICT", "PUT", &path);

    // A recurrence reopens it as regressed and starts the workflow over.
    let again = app
        .post_ok("/api/v1/logs/report", &log_center_report(42))
        .await;
    assert_eq!(again["id"], json!(id));
    assert_eq!(again["status"], json!("duplicate"));
    let g = app.group(&id).await;
    assert_eq!(g["status"], json!("unresolved"), "{g}");
    assert_eq!(g["regressed"], json!(true), "{g}");
    assert_eq!(g["workflow_stage"], json!("NEW"), "{g}");

    // Unknown and malformed ids.
    let unknown_get = format!("/api/v1/logs/{}", uuid::Uuid::new_v4());
    let resp = app.send(app.authed(Method::GET, &unknown_get)).await;
    assert_error(&resp, 404, "NOT_FOUND", "GET", &unknown_get);
    let resp = app.send(app.authed(Method::GET, "/api/v1/logs/42")).await;
    assert_error(&resp, 400, "VALIDATION_ERROR", "GET", "/api/v1/logs/42");
    let unknown = format!("/api/v1/logs/{}/status", uuid::Uuid::new_v4());
    let resp = app
        .send(
            app.authed(Method::PUT, &unknown)
                .json(&json!({"status": "VERIFYING"})),
        )
        .await;
    assert_error(&resp, 404, "NOT_FOUND", "PUT", &unknown);
    let resp = app
        .send(
            app.authed(Method::PUT, "/api/v1/logs/nope/status")
                .json(&json!({"status": "VERIFYING"})),
        )
        .await;
    assert_error(
        &resp,
        400,
        "VALIDATION_ERROR",
        "PUT",
        "/api/v1/logs/nope/status",
    );
}

#[tokio::test]
async fn workflow_branches_over_grpc() {
    let app = spawn_app().await;
    let r = app
        .post_ok("/api/v1/logs/report", &log_center_report(42))
        .await;
    let id = s(&r["id"]);
    let mut groups = app.groups_client().await;
    let mv = |stage: pb::WorkflowStage| pb::TransitionWorkflowRequest {
        group_id: id.clone(),
        stage: stage as i32,
    };
    let st = groups
        .transition_workflow(app.req(mv(pb::WorkflowStage::CannotReproduce)))
        .await
        .expect_err("NEW → CANNOT_REPRODUCE is not documented");
    assert_status(&st, tonic::Code::AlreadyExists, "CONFLICT", None);
    let st = groups
        .transition_workflow(app.req(mv(pb::WorkflowStage::Unspecified)))
        .await
        .expect_err("unspecified stage");
    assert_status(
        &st,
        tonic::Code::InvalidArgument,
        "VALIDATION_ERROR",
        Some("stage"),
    );
    for (stage, prev) in [
        (pb::WorkflowStage::Verifying, pb::WorkflowStage::New),
        (pb::WorkflowStage::PendingFix, pb::WorkflowStage::Verifying),
        (pb::WorkflowStage::Fixing, pb::WorkflowStage::PendingFix),
        (pb::WorkflowStage::FixFailed, pb::WorkflowStage::Fixing),
    ] {
        let got = groups
            .transition_workflow(app.req(mv(stage)))
            .await
            .expect("allowed move")
            .into_inner();
        assert_eq!(got.previous_stage, prev as i32);
        let g = got.group.expect("group");
        assert_eq!(g.workflow_stage, stage as i32);
        assert_eq!(g.status, pb::GroupStatus::Unresolved as i32);
    }
    // The REST view agrees.
    let got = app.get_ok(&format!("/api/v1/logs/{id}")).await;
    assert_eq!(got["status"], json!("FIX_FAILED"));
}

/// The MiniAPM curl example.
fn miniapm_error() -> Value {
    json!({
        "exception_class": "ActiveRecord::RecordNotFound",
        "message": "Could not find User with id=999",
        "backtrace": [
            "app/controllers/users_controller.rb:10:in `show`",
            "lib/middleware/auth.rb:25:in `call`"
        ],
        "fingerprint": "users_controller_record_not_found",
        "params": { "id": "999" }
    })
}

#[tokio::test]
async fn miniapm_ingest_answers_202_and_groups_by_the_client_fingerprint() {
    let app = spawn_app().await;
    let r = app
        .send(
            app.authed(Method::POST, "/ingest/errors")
                .json(&miniapm_error()),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert!(r.text.is_empty(), "202 has no body: {:?}", r.text);

    // Another message and class, same fingerprint, with source context: the same group.
    let with_context = json!({
        "exception_class": "RuntimeError",
        "message": "Invalid state",
        "backtrace": ["app/models/user.rb:42:in `save`"],
        "fingerprint": "users_controller_record_not_found",
        "request_id": "abc-123-def",
        "user_id": "123",
        "timestamp": recent(),
        "source_context": {
            "file": "app/models/user.rb",
            "lineno": 42,
            "pre_context": ["  def save", "    validate!"],
            "context_line": "    raise 'Invalid' unless valid?",
            "post_context": ["  end", ""]
        }
    });
    let r = app
        .send(
            app.authed(Method::POST, "/ingest/errors")
                .json(&with_context),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);

    let events = app.list_all("").await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["group_id"], events[1]["group_id"]);
    let group_id = s(&events[0]["group_id"]);
    assert_visible(&app, &group_id, 2).await;

    // The source context is stored and comes back with the event.
    let newest = events
        .iter()
        .find(|e| e["user_id"] == json!("123"))
        .expect("the event with source context");
    let ev = app.event(&s(&newest["id"])).await;
    let payload: Value = match &ev["payload"] {
        Value::String(t) => serde_json::from_str(t).expect("payload json"),
        other => other.clone(),
    };
    assert_eq!(
        payload["source_context"], with_context["source_context"],
        "{ev}"
    );
    assert_eq!(payload["request_id"], json!("abc-123-def"));
}

#[tokio::test]
async fn miniapm_bad_input_gets_the_error_body() {
    let app = spawn_app().await;
    let path = "/ingest/errors";
    let mut body = miniapm_error();
    body.as_object_mut().unwrap().remove("fingerprint");
    let r = app.send(app.authed(Method::POST, path).json(&body)).await;
    let e = assert_error(&r, 422, "VALIDATION_ERROR", "POST", path);
    assert_detail_field(e, "fingerprint");

    let mut body = miniapm_error();
    body["source_context"] = json!({"file": "a.rb"});
    let r = app.send(app.authed(Method::POST, path).json(&body)).await;
    assert_error(&r, 422, "VALIDATION_ERROR", "POST", path);

    let r = app
        .send(app.anon(Method::POST, path).json(&miniapm_error()))
        .await;
    assert_error(&r, 401, "UNAUTHORIZED", "POST", path);
}

#[tokio::test]
async fn miniapm_batch_stores_each_error_on_its_own() {
    let app = spawn_app().await;
    let path = "/ingest/errors/batch";
    let documented = json!({"errors": [
        {"exception_class": "RuntimeError", "message": "Error 1", "backtrace": ["..."], "fingerprint": "fp1"},
        {"exception_class": "NoMethodError", "message": "Error 2", "backtrace": ["..."], "fingerprint": "fp2"}
    ]});
    let r = app
        .send(app.authed(Method::POST, path).json(&documented))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.body["accepted"], json!(2));
    let gids: Vec<String> = arr(&r.body["results"])
        .iter()
        .map(|o| s(&o["group_id"]))
        .collect();
    assert_ne!(gids[0], gids[1]);
    for g in &gids {
        assert_visible(&app, g, 1).await;
    }

    // A bad item does not sink the good one.
    let mixed = json!({"errors": [
        {"exception_class": "RuntimeError", "message": "Error 1", "backtrace": ["..."], "fingerprint": "fp1"},
        {"message": "no class, no fingerprint"}
    ]});
    let r = app.send(app.authed(Method::POST, path).json(&mixed)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.body["accepted"], json!(1));
    assert_eq!(r.body["results"][1]["status"], json!("rejected"));
    assert_eq!(r.body["results"][0]["group_id"], json!(gids[0]));
    assert_visible(&app, &gids[0], 2).await;

    // All failed: 500 with the error body naming each failure.
    let all_bad = json!({"errors": [{"message": "x"}, {"exception_class": "E", "message": "y", "backtrace": [], "fingerprint": ""}]});
    let r = app
        .send(app.authed(Method::POST, path).json(&all_bad))
        .await;
    let e = assert_error(&r, 500, "BATCH_FAILED", "POST", path);
    assert_detail_field(e, "errors[0]");
    assert_detail_field(e, "errors[1]");

    let r = app
        .send(app.authed(Method::POST, path).json(&json!({"errors": []})))
        .await;
    let e = assert_error(&r, 422, "VALIDATION_ERROR", "POST", path);
    assert_detail_field(e, "errors");
}
