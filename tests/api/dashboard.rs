//! The dashboard (`/`) and the API reference (`/docs`, `/openapi.json`). The dashboard's own
//! script runs in jsdom under Node (`dashboard.js`, provisioned like the SDKs) against a real
//! server: it signs in, lists, opens, resolves and bulk-ignores issues, searches, and shows a
//! refusal; this test then checks what the page showed and what the server holds.

use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, arr, n, s, spawn_app},
    sdk::jsdom_script,
    sentry::key_and_project,
};

const DRIVER: &str = include_str!("dashboard.js");

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn the_dashboard_signs_in_lists_opens_and_triages_issues() {
    let app = spawn_app().await;
    let frames = json!({
        "exception": {"type": "ValueError", "message": "invalid literal for int(): 'abc'",
            "stacktrace": [
                {"filename": "django/core/handlers.py", "function": "inner", "lineno": 55, "in_app": false},
                {"filename": "app/views.py", "function": "checkout", "lineno": 10,
                 "context_line": "qty = int(form['qty'])", "in_app": true}]},
        "level": "error", "environment": "production", "release": "1.4.2", "tags": {"region": "eu"}
    });
    let first = app.capture(frames.clone()).await;
    app.capture(frames).await;
    let markup =
        "<img src=x onerror=\"document.title='owned'\"><script>window.owned=1</script> boom";
    let marked = app
        .message(json!({"text": markup, "level": "warning"}))
        .await;
    let (frames_group, markup_group) = (s(&first["group_id"]), s(&marked["group_id"]));
    let sentry_event = sentry_store(&app).await;
    let sentry_group = s(&app.event(&sentry_event).await["group_id"]);
    // What a user wrote about it, naming the Sentry event id (markup shown as text).
    let (st, b) = app
        .post(
            "/v1/errors/feedback",
            &json!({"event_id": "fc6d8c0c43fc4630ad850ee518f1b9d0", "name": "Ana <b>B</b>",
                "email": "ana@example.com", "comments": "Paying failed twice."}),
        )
        .await;
    assert_eq!(st, reqwest::StatusCode::CREATED, "{b}");
    // A build's source maps, uploaded by debug id.
    let debug_id = "3f0c2b1a-9e8d-4c7b-a6f5-e4d3c2b1a098";
    crate::sourcemaps::assemble(
        &app,
        &crate::sourcemaps::debug_id_bundle(debug_id, "dash"),
        "",
    )
    .await;
    let bytes: u64 = app.get_ok("/v1/errors/debug-files").await["files"]
        .as_array()
        .map_or(0, |fs| fs.iter().map(|f| n(&f["size"])).sum());
    assert!(bytes > 0);

    let run = jsdom_script(
        DRIVER,
        &[
            &app.base_url,
            &app.key,
            &markup_group,
            &frames_group,
            &sentry_event,
            &sentry_group,
        ],
    )
    .await;
    assert!(
        run.success,
        "the dashboard driver failed:\n{}\n{}",
        run.stdout, run.stderr
    );
    let out = run.json();
    assert_eq!(out["script_errors"], json!([]), "{out:#}");

    // Sign-in: hidden navigation, a wrong key refused in words, the key kept for the tab only.
    assert_eq!(out["nav_hidden_before_sign_in"], true);
    let refusal = s(&out["wrong_key_error"]);
    assert!(
        refusal.starts_with("This key was not accepted"),
        "{refusal}"
    );
    assert_eq!(out["nav_hidden_after_sign_in"], false);
    assert_eq!(out["key_in_session_storage"], true);
    assert_eq!(out["key_in_local_storage"], false);

    // The list: both issues, newest first, with their counts; the markup is text.
    assert_eq!(
        strings(&out["issue_titles"]),
        [
            markup.to_owned(),
            "ValueError: invalid literal for int(): 'abc'".to_owned(),
            // The Sentry event is dated a year ago: last seen the longest ago.
            "ValueError: bad form".to_owned()
        ]
    );
    assert_eq!(strings(&out["issue_counts"]), ["1", "2", "1"]);
    assert_eq!(out["img_elements"], 0);

    // The issue page: the latest event's frames, most recent first, the application's marked.
    assert_eq!(
        s(&out["issue_title"]),
        "ValueError: invalid literal for int(): 'abc'"
    );
    assert_eq!(
        strings(&out["frames"]),
        [
            "app/views.py in checkout at line 10",
            "django/core/handlers.py in inner at line 55"
        ]
    );
    assert_eq!(out["in_app_frames"], 1);
    assert_eq!(strings(&out["issue_tags"]), ["region eu 2"]);
    assert_eq!(out["issue_event_rows"], 2);

    // Resolving from the page resolved it on the server.
    assert!(
        strings(&out["badges_after_resolve"]).contains(&"resolved".to_owned()),
        "{out:#}"
    );
    assert_eq!(s(&out["flash_after_resolve"]), "Issue resolved.");
    // The refused workflow move shows the server's reason.
    let moved = s(&out["flash_after_bad_move"]);
    assert!(
        moved.contains("cannot move from NEW to DEPLOYED"),
        "{moved}"
    );

    // The markup issue: shown as its text; no element was made from it, no script ran.
    assert_eq!(s(&out["markup_title"]), markup);
    assert_eq!(out["img_elements_after"], 0);
    assert_eq!(out["script_elements"], 1, "only the dashboard's own script");

    // The Sentry event: newest exception first, then the one it was raised while handling;
    // breadcrumbs, request, user and contexts from its payload, all as text.
    assert_eq!(
        strings(&out["sentry_exceptions"]),
        ["ValueError: bad form (django)", "KeyError: 'qty'"]
    );
    assert_eq!(
        strings(&out["sentry_frames"]),
        [
            "app/views.py in checkout at line 12",
            "django/core/handlers/base.py in _get_response at line 197",
            "app/forms.py in clean at line 7"
        ]
    );
    assert_eq!(
        strings(&out["sentry_crumbs"]),
        [
            "2025-12-06 05:46:30.500 | http | info | {\"method\":\"GET\",\"url\":\"https://api.example.com/cart\"}",
            "2025-12-06 05:46:39.000 | query | info | SELECT * FROM carts WHERE id = %s"
        ]
    );
    assert_eq!(
        s(&out["sentry_request"]),
        "POST https://shop.example.com/checkout?step=2"
    );
    assert_eq!(
        strings(&out["sentry_kv"]),
        [
            "User-Agent=Mozilla/5.0",
            "email=ann@example.com id=42",
            "name=Linux version=6.1",
            "cart_id=991"
        ]
    );
    assert_eq!(
        strings(&out["sentry_sections"]),
        [
            "Breadcrumbs",
            "Request",
            "User",
            "Context: os",
            "Extra",
            "Tags"
        ]
    );
    // The tags Sentry derives from the event, which the SDK did not send as tags.
    assert_eq!(
        strings(&out["sentry_tags"]),
        [
            "handled=no",
            "mechanism=django",
            "os=Linux 6.1",
            "os.name=Linux",
            "url=https://shop.example.com/checkout",
            "user.email=ann@example.com"
        ]
    );

    // Search ("literal") found both events of the int() issue and links to it.
    assert_eq!(strings(&out["search_rows"]).len(), 2, "{out:#}");
    // 55 matches: a page of 50 with "Load more", then all 55 and no button.
    assert_eq!(out["search_page_rows"], json!([50, true, 55, false]));
    let links = strings(&out["search_issue_links"]);
    assert!(
        links
            .iter()
            .all(|l| l == &format!("#/issues/{frames_group}")),
        "{links:?}"
    );

    // The resolved tab, and the bulk ignore done from it.
    assert_eq!(
        strings(&out["resolved_titles"]),
        ["ValueError: invalid literal for int(): 'abc'"]
    );
    assert_eq!(s(&out["flash_after_bulk"]), "ignore: 1 done");
    let group = app.group(&frames_group).await;
    assert_eq!(group["status"], "ignored", "{group:#}");
    assert_eq!(
        group["workflow_stage"], "NEW",
        "the refused move changed nothing"
    );
    let other = app.group(&markup_group).await;
    assert_eq!(other["status"], "unresolved");

    // Ignored from its page until 100 more events, then (reopened) until it occurs 100 times
    // in an hour, then until it affects 10 more users: the page says until when, and so does the server.
    assert_eq!(s(&out["flash_after_snooze"]), "Issue ignored.");
    assert_eq!(strings(&out["facts_after_snooze"]), ["101 events"]);
    assert_eq!(
        strings(&out["facts_after_rate_snooze"]),
        ["100 events in an hour"]
    );
    let history = strings(&out["history_after_rate_snooze"]);
    assert!(
        history[0].contains("ignored the issue until it occurs 100 times in an hour"),
        "{history:?}"
    );
    // A quiet issue escalates at 10 events in an hour.
    assert_eq!(
        strings(&out["facts_after_escalating"]),
        ["escalating: 10 events in an hour"]
    );
    let history = strings(&out["history_after_escalating"]);
    assert!(
        history[0].contains("ignored the issue until escalating (10 events in an hour)"),
        "{history:?}"
    );
    let snoozed = app.group(&sentry_group).await;
    assert_eq!(snoozed["status"], "ignored", "{snoozed:#}");
    assert_eq!(snoozed["ignored_until_count"], Value::Null, "{snoozed:#}");
    let users = n(&snoozed["users_affected"]);
    assert_eq!(
        n(&snoozed["ignored_until_user_count"]),
        users + 10,
        "{snoozed:#}"
    );
    assert_eq!(
        strings(&out["facts_after_user_snooze"]),
        [format!("{} users affected", users + 10)]
    );
    let history = strings(&out["history_after_user_snooze"]);
    assert!(
        history[0].contains("ignored the issue until it affects 10 more users"),
        "{history:?}"
    );

    // The issue search from the All tab keeps the tab and finds the ignored issue.
    assert_eq!(
        s(&out["searched_hash"]),
        "#/issues?status=all&sort=last_seen_desc&q=LITERAL"
    );
    assert_eq!(
        strings(&out["searched_titles"]),
        ["ValueError: invalid literal for int(): 'abc'"]
    );
    assert_eq!(s(&out["searched_tab"]), "All");

    // Settings: the project's DSN (for the host the page was opened on), its keys, and the
    // retention change made from the page.
    let dsn = app.get_ok("/v1/settings/dsn").await;
    assert_eq!(s(&out["settings_dsn"]), s(&dsn["dsn"]));
    assert!(
        s(&dsn["dsn"]).ends_with(&format!("@{}/1", app.addr)),
        "{dsn}"
    );
    assert_eq!(
        strings(&out["settings_keys"]),
        ["admin (created at first start)"]
    );
    assert_eq!(
        s(&out["flash_after_retention"]),
        "Events are now kept 30 days."
    );
    assert_eq!(app.get_ok("/v1/errors/retention/get").await["days"], 30);

    // Two issues merged from the list: the button waits for two selected; one issue is left,
    // with both events.
    assert_eq!(out["merge_rows_before"], 2, "{out:#}");
    assert_eq!(out["merge_disabled"], json!([true, true, false]));
    assert_eq!(s(&out["flash_after_merge"]), "Merged 2 issues into one.");
    assert_eq!(strings(&out["merge_counts_after"]), ["2"]);

    // Resolved in the next release from the issue's page.
    assert_eq!(
        s(&out["flash_after_next_release"]),
        "Issue resolved in the next release after web@3.1.0."
    );
    assert_eq!(
        strings(&out["facts_after_next_release"]),
        [
            "Resolved in: the release after web@3.1.0",
            "Last release: web@3.1.0"
        ]
    );
    // A comment from the issue's page; a blank one refused with the server's reason.
    assert!(
        s(&out["flash_after_blank_comment"]).contains("text"),
        "{out:#}"
    );
    assert_eq!(
        strings(&out["comments"]),
        ["Price cache expires after the deploy."]
    );
    assert_eq!(strings(&out["comment_authors"]), ["admin"]);
    // Beside the comments, the issue's activity, newest first, down to its first event.
    assert_eq!(strings(&out["activity_actors"]), ["admin", "Faultline"]);
    assert_eq!(
        strings(&out["activity_changes"]),
        [
            "resolved the issue in the next release after web@3.1.0",
            "saw the first event"
        ]
    );
    assert_eq!(
        strings(&out["comments_after_delete"]),
        ["Price cache expires after the deploy."]
    );
    assert_eq!(s(&out["flash_after_edit"]), "Comment edited.");
    // Assigned from the issue's page; the list filters by assignee.
    let options = strings(&out["assignee_options"]);
    assert_eq!(options[0], "nobody", "{out:#}");
    assert!(options.len() >= 2, "{out:#}");
    // The owner made at first start: named "admin", without an email address.
    assert_eq!(options[1], "admin");
    assert_eq!(s(&out["flash_after_assign"]), "Assigned to admin.");
    assert_eq!(
        strings(&out["owner_issue_titles"]),
        ["stale price in basket"]
    );
    assert_eq!(strings(&out["owner_issue_assignees"]), ["admin"]);
    assert_eq!(strings(&out["unassigned_stale"]), ["No issue matches."]);
    // Inbound filters saved from the settings page, the rest of the policy kept.
    assert_eq!(s(&out["flash_after_filters"]), "Inbound filters saved.");
    assert_eq!(out["filters_after"], json!([true, false, false, true]));
    assert_eq!(arr(&out["filter_counts"]).len(), 6, "{out:#}");
    let policy = app.get_ok("/v1/settings/policy").await;
    assert_eq!(policy["scrub_fields"], json!(["iban"]), "{policy}");
    assert_eq!(
        policy["inbound_filters"]["error_messages"],
        json!(["*ResizeObserver loop*", "Script error."]),
        "{policy}"
    );
    assert_eq!(
        arr(&policy["inbound_filters"]["legacy_browsers"]).len(),
        9,
        "every part of the legacy-browsers filter: {policy}"
    );
    assert_eq!(
        strings(&out["issue_feedback"]),
        ["Paying failed twice.", "Ana <b>B</b> · ana@example.com"],
        "{out:#}"
    );
    // The feedback page lists it with links to its event and its issue.
    let stored_event = s(&app.event(&sentry_event).await["id"]);
    assert_eq!(
        out["feedback_page"],
        json!([[
            "Paying failed twice.",
            "Ana <b>B</b> · ana@example.com",
            format!("event #/events/{stored_event} | issue #/issues/{sentry_group}")
        ]]),
        "{out:#}"
    );
    assert_eq!(
        out["issue_feedback_bold"], 0,
        "the name is text, not markup"
    );
    assert_eq!(out["bulk_assign_enabled"], true);
    assert_eq!(s(&out["flash_after_bulk_assign"]), "assign: 1 done");
    // The merged issue split from its page by a grouping key.
    assert_eq!(
        out["key_rows"],
        json!([["client_fingerprint", "1"], ["client_fingerprint", "1"]]),
        "{out:#}"
    );
    assert_eq!(out["unmerge_disabled"], json!([true, false, true, false]));
    let flash = s(&out["flash_after_unmerge"]);
    assert!(
        flash.starts_with("Moved 1 event to a new issue: cache stampede on shard "),
        "{flash}"
    );
    assert_eq!(
        strings(&out["unmerge_activity"]),
        ["moved 1 grouping key and 1 event to a new issue"]
    );
    assert_eq!(strings(&out["unmerge_counts_after"]), ["1", "1"]);
    // The issue keeps its assignee; the new one has none.
    let split = app.get_ok("/v1/errors/groups?q=stampede").await;
    let assignees: Vec<&Value> = arr(&split["groups"])
        .iter()
        .map(|g| &g["assignee"]["name"])
        .collect();
    assert_eq!(assignees, [&Value::Null, &json!("admin")], "{split}");
    // The releases page lists the walk's two releases, the one named last first.
    // (Release, events, issues, new issues; the first-seen cell is relative time.)
    let rows: Vec<[String; 4]> = out["release_rows"]
        .as_array()
        .expect("release rows")
        .iter()
        .map(|r| [s(&r[0]), s(&r[2]), s(&r[3]), s(&r[4])])
        .collect();
    assert_eq!(
        rows,
        [
            ["web@3.1.0", "1", "1", "1"].map(String::from),
            ["1.4.2", "2", "1", "1"].map(String::from)
        ],
        "{out:#}"
    );
    // The build uploaded by debug id, then deleted from its row.
    assert_eq!(
        out["debug_rows"],
        json!([[
            debug_id,
            "~/static/dash.min.js, ~/static/dash.min.js.map",
            // As toLocaleString writes it (en-US).
            bytes
                .to_string()
                .as_bytes()
                .rchunks(3)
                .rev()
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join(",")
        ]]),
        "{out:#}"
    );
    assert_eq!(
        s(&out["flash_after_debug_delete"]),
        format!("2 files of build {debug_id} deleted.")
    );
    assert_eq!(
        app.get_ok("/v1/errors/debug-files").await["files"],
        json!([])
    );
    // The latest release's new issues, from its row.
    assert_eq!(
        strings(&out["release_filter"]),
        ["First seen in web@3.1.0 · all releases"]
    );
    assert_eq!(
        strings(&out["release_issue_titles"]),
        ["stale price in basket"]
    );
    let released = app.group(&s(&out["released_group"])).await;
    assert_eq!(released["resolved_in_release"], json!("web@3.1.0"));
    assert!(released["assignee"]["id"].is_string(), "{released}");

    // Alerts page, then sign-out forgets the key.
    assert!(
        strings(&out["alerts_empty"])
            .iter()
            .any(|t| t.starts_with("No alert rules")),
        "{out:#}"
    );
    assert_eq!(out["key_after_sign_out"], Value::Null);

    // A key made from the settings page: ingest only by default, this project, shown once;
    // it captures and may not read; revoked from the page, it is refused.
    assert_eq!(strings(&out["key_scopes_checked"]), ["ingest"]);
    assert_eq!(
        s(&out["flash_after_key"]),
        "Key \"checkout-service\" created."
    );
    assert_eq!(
        strings(&out["key_rows_after_create"]),
        ["checkout-service", "admin (created at first start)"]
    );
    assert_eq!(out["new_key_capture"], 200, "{out:#}");
    assert_eq!(out["new_key_read"], 403, "{out:#}");
    assert_eq!(out["secret_shown_again"], false);
    assert_eq!(s(&out["new_key_project"]), "this one");
    assert_eq!(
        s(&out["flash_after_revoke"]),
        "Key \"checkout-service\" revoked."
    );
    assert_eq!(out["revoked_key_capture"], 401, "{out:#}");

    // A rule made from the alerts page, refused first for its condition, then disabled and
    // deleted from its row.
    assert!(
        s(&out["flash_after_bad_rule"]).contains("condition"),
        "{out:#}"
    );
    assert_eq!(
        s(&out["flash_after_rule"]),
        "Rule \"Checkout errors\" created."
    );
    assert_eq!(
        strings(&out["rule_row"])[..6],
        [
            "Checkout errors",
            "error_count > 100000 in 5m · production · level ≥ error · tier=enterprise",
            "high",
            "on",
            "webhook",
            "—"
        ]
    );
    assert_eq!(s(&out["flash_after_disable"]), "Rule disabled.");
    assert_eq!(strings(&out["rule_row_disabled"])[3], "off");
    assert_eq!(s(&out["flash_after_delete"]), "Rule deleted.");
    let rules = app.send(app.authed(Method::GET, "/api/alerts/rules")).await;
    assert_eq!(arr(&rules.body["data"]["rules"]).len(), 0, "{}", rules.text);

    // Every call the page made was to this server's documented API.
    for r in strings(&out["requests"]) {
        assert!(
            [
                "GET /v1/projects/list",
                "GET /v1/errors/",
                "POST /v1/errors/",
                "DELETE /v1/errors/comments/",
                "DELETE /v1/errors/debug-files/",
                "PUT /v1/errors/comments/",
                "PUT /api/v1/logs/",
                "GET /api/alerts/",
                "POST /api/alerts/rules",
                "PUT /api/alerts/rules/",
                "DELETE /api/alerts/rules/",
                "GET /v1/settings/dsn",
                "GET /v1/settings/policy",
                "PUT /v1/settings/policy",
                "GET /api/settings/api-keys",
                "GET /api/settings/team",
                "POST /api/settings/api-keys",
                "DELETE /api/settings/api-keys/",
                "PUT /v1/errors/retention/set"
            ]
            .iter()
            .any(|p| r.starts_with(p)),
            "unexpected request {r}"
        );
    }
}

/// Sends one event the way the Sentry Python SDK's store call does; returns its Sentry id.
async fn sentry_store(app: &TestApp) -> String {
    let (key, project) = key_and_project(app).await;
    let event = json!({
        "event_id": "fc6d8c0c43fc4630ad850ee518f1b9d0", "platform": "python", "level": "error",
        "timestamp": 1_765_000_000,
        "exception": {"values": [
            {"type": "KeyError", "value": "'qty'", "stacktrace": {"frames": [
                {"filename": "app/forms.py", "function": "clean", "lineno": 7, "in_app": true}]}},
            {"type": "ValueError", "value": "bad form", "mechanism": {"type": "django", "handled": false},
             "stacktrace": {"frames": [
                {"filename": "django/core/handlers/base.py", "function": "_get_response", "lineno": 197, "in_app": false},
                {"filename": "app/views.py", "function": "checkout", "lineno": 12, "in_app": true}]}}]},
        "breadcrumbs": {"values": [
            {"timestamp": 1_764_999_990.5, "category": "http", "level": "info",
             "data": {"method": "GET", "url": "https://api.example.com/cart"}},
            {"timestamp": 1_764_999_999, "category": "query", "level": "info",
             "message": "SELECT * FROM carts WHERE id = %s"}]},
        "request": {"method": "POST", "url": "https://shop.example.com/checkout",
                    "query_string": "step=2", "headers": {"User-Agent": "Mozilla/5.0"}},
        "user": {"id": "42", "email": "ann@example.com"},
        "contexts": {"os": {"name": "Linux", "version": "6.1"}},
        "extra": {"cart_id": 991},
        "sdk": {"name": "sentry.python", "version": "2.75.0"}
    });
    let r = app
        .send(
            app.anon(
                Method::POST,
                &format!("/api/{project}/store/?sentry_key={key}&sentry_version=7"),
            )
            .json(&event),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    s(&r.body["id"])
}

#[tokio::test]
async fn the_dashboard_and_the_api_reference_are_served_without_a_key() {
    let app = spawn_app().await;
    let page = app.send(app.anon(Method::GET, "/")).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    for (path, kind) in [
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/app.css", "text/css; charset=utf-8"),
    ] {
        let r = app.send(app.anon(Method::GET, path)).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some(kind), "{path}");
    }

    // /docs: Swagger UI from the binary (nothing fetched from elsewhere), over /openapi.json.
    let no_follow = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client");
    let r = no_follow
        .get(app.url("/docs"))
        .send()
        .await
        .expect("GET /docs");
    assert!(r.status().is_redirection(), "{}", r.status());
    assert_eq!(
        r.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/docs/")
    );
    let r = app.send(app.anon(Method::GET, "/docs/")).await;
    assert_eq!(r.status, 200);
    assert!(r.text.contains("swagger-ui-bundle.js"), "{}", r.text);
    assert!(
        !r.text.contains("://"),
        "the page loads nothing from elsewhere"
    );
    let init = app
        .send(app.anon(Method::GET, "/docs/swagger-initializer.js"))
        .await;
    assert_eq!(init.status, 200);
    assert!(init.text.contains("/openapi.json"), "{}", init.text);
    assert!(
        init.text.contains(r#""validatorUrl": "none""#),
        "the document is not sent to validator.swagger.io: {}",
        init.text
    );
    let bundle = app
        .send(app.anon(Method::GET, "/docs/swagger-ui-bundle.js"))
        .await;
    assert_eq!(bundle.status, 200);
    assert!(bundle.text.len() > 100_000);

    let (st, spec) = app.get("/openapi.json").await;
    assert_eq!(st, 200);
    assert_eq!(spec["openapi"], "3.1.0");
    assert_eq!(spec["info"]["title"], "Faultline");
    assert!(
        spec["paths"]["/v1/errors/capture"]["post"].is_object(),
        "{spec:#}"
    );

    // A path under /docs that is not one of its files: the JSON 404, like any unknown path.
    let (st, body) = app.get("/docs/no-such-file.js").await;
    assert_eq!(st, 404, "{body}");
}
