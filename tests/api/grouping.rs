//! Grouping as a user sees it: which captures become one issue, and why (GET shows the key).

use faultline::pb;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

fn frames(functions_lines: &[(&str, &str, u32, bool)]) -> Value {
    Value::Array(
        functions_lines
            .iter()
            .map(|(file, func, line, in_app)| json!({"filename": file, "function": func, "lineno": line, "in_app": in_app}))
            .collect(),
    )
}

fn exc(ty: &str, msg: &str, stack: Value) -> Value {
    if stack.as_array().is_some_and(|a| a.is_empty()) {
        return json!({"exception": {"type": ty, "message": msg}});
    }
    json!({"exception": {"type": ty, "message": msg, "stacktrace": stack}})
}

async fn group_of(app: &TestApp, body: Value) -> String {
    s(&app.capture(body).await["group_id"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_bug_with_different_ids_and_numbers_is_one_group() {
    let app = spawn_app().await;
    let a = group_of(&app, json!({"message": "Order 12345 failed for user 8f14e45f-ceea-467f-a0f1-3f9d5e7b1c2a at 2024-05-01T10:00:00Z"})).await;
    let b = group_of(&app, json!({"message": "Order 98 failed for user 0b4a3c2d-1111-4222-8333-944455556666 at 2024-06-11T22:13:09Z"})).await;
    assert_eq!(a, b, "only ids, numbers and times differ");
    let c = group_of(
        &app,
        json!({"message": "Connection to 10.0.0.12:5432 refused after 3 attempts"}),
    )
    .await;
    let d = group_of(
        &app,
        json!({"message": "Connection to 10.0.0.99:5432 refused after 5 attempts"}),
    )
    .await;
    assert_eq!(c, d, "only addresses and counts differ");
    assert_ne!(a, c);
    let e = group_of(&app, json!({"message": "Order 12345 shipped late for user 8f14e45f-ceea-467f-a0f1-3f9d5e7b1c2a"})).await;
    assert_ne!(a, e, "different wording is a different bug");

    // Exceptions without frames group by type and normalised message.
    let x1 = group_of(
        &app,
        exc(
            "ValueError",
            "invalid literal for int() with base 10: 'abc'",
            json!([]),
        ),
    )
    .await;
    let x2 = group_of(
        &app,
        exc(
            "ValueError",
            "invalid literal for int() with base 10: 'zzz9'",
            json!([]),
        ),
    )
    .await;
    let x3 = group_of(
        &app,
        exc(
            "TypeError",
            "invalid literal for int() with base 10: 'abc'",
            json!([]),
        ),
    )
    .await;
    assert_eq!(x1, x2, "quoted values differ only");
    assert_ne!(x1, x3, "another exception type is another issue");

    // The group counts every capture.
    let g = app.group(&a).await;
    assert_eq!(n(&g["count"]), 2);
    let groups = app.get_ok("/v1/errors/groups?limit=100").await;
    assert_eq!(arr(&groups["groups"]).len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stack_traces_group_by_in_app_functions_not_line_numbers() {
    let app = spawn_app().await;
    let base = group_of(
        &app,
        exc(
            "ValueError",
            "bad price 10",
            frames(&[
                ("/app/shop/views.py", "checkout", 42, true),
                ("/app/shop/pricing.py", "total", 17, true),
            ]),
        ),
    )
    .await;
    let lines = group_of(
        &app,
        exc(
            "ValueError",
            "bad price 99",
            frames(&[
                ("/app/shop/views.py", "checkout", 57, true),
                ("/app/shop/pricing.py", "total", 21, true),
            ]),
        ),
    )
    .await;
    assert_eq!(
        base, lines,
        "only line numbers (and the number in the message) differ"
    );
    let library = group_of(
        &app,
        exc(
            "ValueError",
            "bad price 1",
            frames(&[
                ("/venv/site-packages/flask/app.py", "dispatch", 1000, false),
                ("/app/shop/views.py", "checkout", 43, true),
                ("/app/shop/pricing.py", "total", 18, true),
            ]),
        ),
    )
    .await;
    assert_eq!(base, library, "library frames do not change the issue");
    let other = group_of(
        &app,
        exc(
            "ValueError",
            "bad price 10",
            frames(&[
                ("/app/shop/views.py", "checkout", 42, true),
                ("/app/shop/pricing.py", "refund_total", 17, true),
            ]),
        ),
    )
    .await;
    assert_ne!(
        base, other,
        "a different culprit function is a different issue"
    );
    let g1 = app.group(&base).await;
    let g2 = app.group(&other).await;
    assert_ne!(
        g1["culprit"], g2["culprit"],
        "the culprits show the difference"
    );
    assert!(s(&g2["culprit"]).contains("refund_total"), "{g2}");

    // The same with stack trace text: line numbers differ → one group; function differs → two.
    let py = |line_a: u32, line_b: u32, func: &str| {
        format!(
            "Traceback (most recent call last):\n  File \"/app/jobs/run.py\", line {line_a}, in main\n    work()\n  File \"/app/jobs/work.py\", line {line_b}, in {func}\n    x[1]\nIndexError: list index out of range"
        )
    };
    let t1 = group_of(
        &app,
        json!({"message": "job crashed", "stack": py(10, 20, "work")}),
    )
    .await;
    let t2 = group_of(
        &app,
        json!({"message": "job crashed", "stack": py(11, 25, "work")}),
    )
    .await;
    let t3 = group_of(
        &app,
        json!({"message": "job crashed", "stack": py(10, 20, "work_harder")}),
    )
    .await;
    assert_eq!(t1, t2, "text traces differing in line numbers only");
    assert_ne!(t1, t3, "text traces differing in the crashing function");

    // The same trace over gRPC lands in the same group.
    let mut capture = app.capture_client().await;
    let r = capture
        .capture(app.req(pb::CaptureRequest {
            message: "job crashed".into(),
            stack: py(99, 98, "work"),
            ..Default::default()
        }))
        .await
        .expect("gRPC Capture")
        .into_inner();
    assert_eq!(r.group_id, t1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_fingerprints() {
    let app = spawn_app().await;
    let ab1 = app
        .capture(json!({"message": "first wording", "fingerprint": ["a", "b"]}))
        .await;
    let ab2 = app
        .capture(json!({"message": "totally different text", "fingerprint": ["a", "b"]}))
        .await;
    assert_eq!(
        ab1["group_id"], ab2["group_id"],
        "the client fingerprint decides"
    );
    let ac = app
        .capture(json!({"message": "first wording", "fingerprint": ["a", "c"]}))
        .await;
    assert_ne!(ac["group_id"], ab1["group_id"]);
    let e = app.event(&s(&ab1["event_id"])).await;
    assert_eq!(e["grouping"]["source"], json!("client_fingerprint"));
    assert_eq!(e["grouping"]["components"], json!(["a", "b"]));
    // gRPC with the same fingerprint joins the same group.
    let mut capture = app.capture_client().await;
    let r = capture
        .capture(app.req(pb::CaptureRequest {
            message: "grpc text".into(),
            fingerprint: vec!["a".into(), "b".into()],
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(json!(r.group_id), ab1["group_id"]);

    // {{ default }} stands for the server's own key.
    let msg = "Checkout failed for cart 77";
    let plain = app.capture(json!({"message": msg})).await;
    let x = app
        .capture(json!({"message": msg, "fingerprint": ["{{ default }}", "tenant-x"]}))
        .await;
    let y = app
        .capture(json!({"message": msg, "fingerprint": ["{{ default }}", "tenant-y"]}))
        .await;
    let d = app
        .capture(
            json!({"message": "Checkout failed for cart 78", "fingerprint": ["{{ default }}"]}),
        )
        .await;
    assert_ne!(
        x["group_id"], y["group_id"],
        "tenant-x and tenant-y split the issue"
    );
    assert_ne!(x["group_id"], plain["group_id"]);
    assert_eq!(
        d["group_id"], plain["group_id"],
        "[\"{{{{ default }}}}\"] alone is the default grouping"
    );
    assert_eq!(d["fingerprint"], plain["fingerprint"]);
    let ex = app.event(&s(&x["event_id"])).await;
    let plain_e = app.event(&s(&plain["event_id"])).await;
    assert_eq!(ex["grouping"]["source"], json!("client_fingerprint"));
    let mut want = arr(&plain_e["grouping"]["components"]).clone();
    want.push(json!("tenant-x"));
    assert_eq!(
        ex["grouping"]["components"],
        Value::Array(want),
        "{{{{ default }}}} expands to the default components"
    );
    let x2 = app.capture(json!({"message": "Checkout failed for cart 12", "fingerprint": ["{{ default }}", "tenant-x"]})).await;
    assert_eq!(x2["group_id"], x["group_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_event_explains_the_grouping() {
    let app = spawn_app().await;
    let m = app.capture(json!({"message": "Disk 3 is full"})).await;
    let e = app.event(&s(&m["event_id"])).await;
    let g = &e["grouping"];
    assert_eq!(g["source"], json!("message"));
    assert_eq!(g["fingerprint"], m["fingerprint"]);
    assert_eq!(g["fingerprint"], e["fingerprint"]);
    assert_eq!(arr(&g["components"]).len(), 1);
    assert!(n(&g["version"]) >= 1);

    let x = app
        .capture(exc("ValueError", "bad value 7", json!([])))
        .await;
    let g = app.event(&s(&x["event_id"])).await["grouping"].clone();
    assert_eq!(g["source"], json!("exception_message"));
    let comps = arr(&g["components"]);
    assert_eq!(comps.len(), 2, "{g}");
    assert_eq!(comps[0], json!("type:ValueError"));
    assert!(
        s(&comps[1]).starts_with("message:") && !s(&comps[1]).contains('7'),
        "{g}"
    );

    let f = app
        .capture(exc("KeyError", "'sku'", json!([
            {"filename": "/app/shop/cart.py", "function": "add_item", "module": "shop.cart", "lineno": 12, "in_app": true},
            {"filename": "/app/shop/api.py", "function": "post", "module": "shop.api", "lineno": 88, "in_app": true},
        ])))
        .await;
    let g = app.event(&s(&f["event_id"])).await["grouping"].clone();
    assert_eq!(g["source"], json!("stacktrace"));
    let comps: Vec<String> = arr(&g["components"]).iter().map(s).collect();
    assert_eq!(comps[0], "type:KeyError");
    assert!(
        comps.iter().any(|c| c.contains("add_item")) && comps.iter().any(|c| c.contains("post")),
        "{comps:?}"
    );
    assert!(
        !comps.iter().any(|c| c.contains("12") || c.contains("88")),
        "no line numbers in the key: {comps:?}"
    );
    let group = app.group(&s(&f["group_id"])).await;
    assert_eq!(group["fingerprint"], g["fingerprint"]);
    assert_eq!(group["grouping_version"], g["version"]);
}

// ---------- grouping version 2 ----------

/// A Python frame as an SDK sends it: in-app flag, module and the line of source.
fn py_frame(module: &str, function: &str, lineno: u32, context: &str, in_app: bool) -> Value {
    json!({
        "filename": format!("/srv/app/{}.py", module.replace('.', "/")),
        "module": module, "function": function, "lineno": lineno,
        "context_line": format!("    {context}"), "in_app": in_app,
    })
}

fn py_error(value: &str, frames: Vec<Value>) -> Value {
    json!({"platform": "python", "exception": {"type": "ValueError", "message": value, "stacktrace": frames}})
}

/// Frames of `checkout -> parse_price` (oldest first) below a web framework, starting at `line`.
fn checkout_stack(line: u32, culprit: &str) -> Vec<Value> {
    vec![
        py_frame(
            "django.core.handlers.base",
            "_get_response",
            197,
            "response = callback(request)",
            false,
        ),
        py_frame(
            "shop.views",
            "checkout",
            line,
            "total = compute_total(cart)",
            true,
        ),
        py_frame(
            "shop.pricing",
            culprit,
            line + 30,
            "return int(item.price)",
            true,
        ),
    ]
}

fn variant<'a>(event: &'a Value, kind: &str) -> &'a Value {
    arr(&event["grouping"]["variants"])
        .iter()
        .find(|v| v["kind"] == json!(kind))
        .unwrap_or_else(|| panic!("no {kind} variant in {event}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_same_place_groups_shifted_lines_group_other_function_splits() {
    let app = spawn_app().await;
    let first = app
        .capture(py_error(
            "invalid literal for int() with base 10: 'abc'",
            checkout_stack(42, "parse_price"),
        ))
        .await;
    let other_value = app
        .capture(py_error(
            "invalid literal for int() with base 10: '9.99 EUR'",
            checkout_stack(42, "parse_price"),
        ))
        .await;
    assert_eq!(
        first["group_id"], other_value["group_id"],
        "same error at the same place, other values"
    );
    let shifted = app
        .capture(py_error(
            "invalid literal for int() with base 10: 'x'",
            checkout_stack(57, "parse_price"),
        ))
        .await;
    assert_eq!(
        first["group_id"], shifted["group_id"],
        "an edit above moved every line"
    );
    let other_function = app
        .capture(py_error(
            "invalid literal for int() with base 10: 'abc'",
            checkout_stack(42, "parse_discount"),
        ))
        .await;
    assert_ne!(
        first["group_id"], other_function["group_id"],
        "the same error raised in another function"
    );
    // The same statement in the same function but another line of source is another place.
    let mut edited = checkout_stack(42, "parse_price");
    edited[2]["context_line"] = json!("return int(item.discount)");
    let other_statement = app.capture(py_error("invalid literal", edited)).await;
    assert_ne!(first["group_id"], other_statement["group_id"]);
    assert_eq!(n(&app.group(&s(&first["group_id"])).await["count"]), 3);
    assert_eq!(first["new_group"], json!(true));
    assert_eq!(other_value["new_group"], json!(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_event_matching_only_the_full_stack_joins_the_group() {
    let app = spawn_app().await;
    let a = app
        .capture(py_error("bad", checkout_stack(42, "parse_price")))
        .await;
    // The application frames changed (the SDK no longer marks `shop.pricing` as in-app), the
    // whole stack did not: only the full-stack key matches.
    let mut frames = checkout_stack(43, "parse_price");
    frames[2]["in_app"] = json!(false);
    let b = app.capture(py_error("bad", frames)).await;
    let ea = app.event(&s(&a["event_id"])).await;
    let eb = app.event(&s(&b["event_id"])).await;
    assert_ne!(
        variant(&ea, "in_app")["hash"],
        variant(&eb, "in_app")["hash"]
    );
    assert_eq!(variant(&ea, "full")["hash"], variant(&eb, "full")["hash"]);
    assert_eq!(a["group_id"], b["group_id"], "joined by the full-stack key");
    assert_eq!(variant(&eb, "full")["matches_group"], json!(true));
    assert_eq!(b["new_group"], json!(false));
    assert_eq!(
        b["fingerprint"], a["fingerprint"],
        "the answer names the group's key"
    );

    // B's own in-app key now names the group too: an event that matches only it joins.
    let mut c_frames = checkout_stack(44, "parse_price");
    c_frames[2]["in_app"] = json!(false);
    c_frames[0] = py_frame(
        "flask.app",
        "dispatch_request",
        1,
        "return view(**args)",
        false,
    );
    let c = app.capture(py_error("bad", c_frames)).await;
    let ec = app.event(&s(&c["event_id"])).await;
    assert_ne!(variant(&ec, "full")["hash"], variant(&ea, "full")["hash"]);
    assert_eq!(
        variant(&ec, "in_app")["hash"],
        variant(&eb, "in_app")["hash"]
    );
    assert_eq!(c["group_id"], a["group_id"]);
    assert_eq!(n(&app.group(&s(&a["group_id"])).await["count"]), 3);

    // In one batch, events sharing any key land together as well.
    let mut d1 = checkout_stack(10, "batch_only");
    d1[0] = py_frame("celery.app", "run", 1, "fn()", false);
    d1[1] = py_frame("shop.tasks", "nightly", 5, "reprice()", true);
    let mut d2 = d1.clone();
    d2[2]["in_app"] = json!(false);
    let batch = app
        .post_ok(
            "/v1/errors/capture/batch",
            &json!({"events": [py_error("x", d1), py_error("y", d2)]}),
        )
        .await;
    let results = arr(&batch["results"]);
    assert_eq!(results.len(), 2, "{batch}");
    assert_eq!(results[0]["group_id"], results[1]["group_id"], "{batch}");
    assert_ne!(results[0]["group_id"], a["group_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_event_view_shows_the_components_of_each_key() {
    let app = spawn_app().await;
    let c = app
        .capture(py_error("bad 7", checkout_stack(42, "parse_price")))
        .await;
    let e = app.event(&s(&c["event_id"])).await;
    let g = &e["grouping"];
    assert_eq!(n(&g["version"]), 2);
    assert_eq!(g["source"], json!("stacktrace"));
    assert_eq!(g["fingerprint"], c["fingerprint"]);
    let kinds: Vec<String> = arr(&g["variants"]).iter().map(|v| s(&v["kind"])).collect();
    assert_eq!(kinds, ["in_app", "full", "legacy_v1"]);
    let in_app = variant(&e, "in_app");
    assert_eq!(in_app["hash"], g["fingerprint"]);
    assert_eq!(in_app["components"], g["components"]);
    assert_eq!(
        in_app["components"],
        json!([
            "type:ValueError",
            "shop.views:checkout | total = compute_total(cart)",
            "shop.pricing:parse_price | return int(item.price)"
        ])
    );
    let full: Vec<String> = arr(&variant(&e, "full")["components"])
        .iter()
        .map(s)
        .collect();
    assert_eq!(full.len(), 4, "{full:?}");
    assert!(full[1].starts_with("django.core.handlers.base:_get_response"));
    let legacy = variant(&e, "legacy_v1");
    assert_eq!(n(&legacy["version"]), 1);
    // The new group holds the event's current keys; the legacy key only finds old groups.
    assert_eq!(in_app["matches_group"], json!(true));
    assert_eq!(variant(&e, "full")["matches_group"], json!(true));
    assert_eq!(legacy["matches_group"], json!(false));
    assert_eq!(
        legacy["components"],
        json!([
            "type:ValueError",
            "shop.views:checkout",
            "shop.pricing:parse_price"
        ])
    );
    let group = app.group(&s(&c["group_id"])).await;
    assert_eq!(n(&group["grouping_version"]), 2);
    assert_eq!(group["fingerprint"], g["fingerprint"]);

    // gRPC shows the same.
    let mut groups = app.groups_client().await;
    let ev = groups
        .get_event(app.req(pb::GetEventRequest {
            event_id: s(&c["event_id"]),
        }))
        .await
        .expect("GetEvent")
        .into_inner()
        .event
        .expect("event");
    let pg = ev.grouping.expect("grouping");
    assert_eq!(pg.variants.len(), 3);
    assert_eq!(pg.variants[0].kind, "in_app");
    assert_eq!(json!(pg.variants[0].components), in_app["components"]);
    assert_eq!(json!(pg.variants[2].hash), legacy["hash"]);

    // A client fingerprint without {{ default }} is one key.
    let f = app
        .capture(
            json!({"message": "m", "transaction": "/cart", "tags": {"tenant": "acme"},
            "fingerprint": ["checkout", "{{ transaction }}", "{{ tags.tenant }}", "{{ level }}"]}),
        )
        .await;
    let e = app.event(&s(&f["event_id"])).await;
    let kinds: Vec<String> = arr(&e["grouping"]["variants"])
        .iter()
        .map(|v| s(&v["kind"]))
        .collect();
    assert_eq!(kinds, ["client_fingerprint", "legacy_v1"]);
    assert_eq!(
        e["grouping"]["components"],
        json!(["checkout", "/cart", "acme", "error"])
    );
    let other_tenant = app
        .capture(
            json!({"message": "m", "transaction": "/cart", "tags": {"tenant": "zeta"},
            "fingerprint": ["checkout", "{{ transaction }}", "{{ tags.tenant }}", "{{ level }}"]}),
        )
        .await;
    assert_ne!(other_tenant["group_id"], f["group_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_chains_and_synthetic_exceptions() {
    let app = spawn_app().await;
    let cause = json!({"type": "KeyError", "message": "'sku'", "stacktrace": [py_frame("shop.db", "load", 3, "return rows[k]", true)]});
    let chained = |cause: &Value, value: &str| {
        json!({"platform": "python", "chained": [cause],
            "exception": {"type": "LookupError", "message": value,
                "stacktrace": [py_frame("shop.views", "show", 9, "load(k)", true)]}})
    };
    let a = app.capture(chained(&cause, "sku 1")).await;
    let b = app.capture(chained(&cause, "sku 2")).await;
    assert_eq!(a["group_id"], b["group_id"]);
    let other_cause = json!({"type": "TimeoutError", "message": "", "stacktrace": [py_frame("shop.db", "connect", 3, "sock.connect()", true)]});
    let c = app.capture(chained(&other_cause, "sku 1")).await;
    assert_ne!(a["group_id"], c["group_id"], "the cause is part of the key");
    let e = app.event(&s(&a["event_id"])).await;
    let comps: Vec<String> = arr(&e["grouping"]["components"]).iter().map(s).collect();
    assert_eq!(comps[0], "type:KeyError");
    assert!(comps.contains(&"type:LookupError".to_owned()), "{comps:?}");
    let chain = arr(&e["exception"]["chained"]);
    assert_eq!(chain.len(), 1);
    assert_eq!(chain[0]["type"], json!("KeyError"));
    let found = app.get_ok("/v1/errors/search?q=KeyError").await;
    let found = ids(arr(&found["events"]));
    assert!(
        found.contains(&s(&a["event_id"])),
        "a cause is searchable: {found:?}"
    );

    // A synthetic exception's type (here a signal name) does not count.
    let synthetic = |ty: &str| {
        json!({"exception": {"type": ty, "message": "", "mechanism": {"type": "signalhandler", "synthetic": true},
            "stacktrace": [{"filename": "/app/main.c", "function": "crash", "in_app": true}]}})
    };
    let s1 = app.capture(synthetic("SIGSEGV")).await;
    let s2 = app.capture(synthetic("SIGBUS")).await;
    assert_eq!(s1["group_id"], s2["group_id"]);
    let e = app.event(&s(&s1["event_id"])).await;
    assert_eq!(e["grouping"]["components"], json!(["main.c:crash"]));
    assert_eq!(e["exception"]["synthetic"], json!(true));
    assert_eq!(e["exception"]["mechanism"], json!("signalhandler"));

    // Over gRPC the same fields drive the same grouping.
    let frame = |module: &str, function: &str, context: &str| pb::Frame {
        filename: format!("/srv/app/{module}.py"),
        module: module.into(),
        function: function.into(),
        lineno: 99,
        in_app: Some(true),
        context_line: context.into(),
        ..Default::default()
    };
    let mut capture = app.capture_client().await;
    let r = capture
        .capture(app.req(pb::CaptureRequest {
            platform: "python".into(),
            chained: vec![pb::ExceptionInput {
                r#type: "KeyError".into(),
                message: "'other'".into(),
                frames: vec![frame("shop.db", "load", "return rows[k]")],
                ..Default::default()
            }],
            exception: Some(pb::ExceptionInput {
                r#type: "LookupError".into(),
                message: "sku 3".into(),
                frames: vec![frame("shop.views", "show", "load(k)")],
                ..Default::default()
            }),
            ..Default::default()
        }))
        .await
        .expect("gRPC Capture")
        .into_inner();
    assert_eq!(json!(r.group_id), a["group_id"]);
}

/// A database as the previous release left it: groups keyed by the version 1 fingerprint and
/// no `group_hashes` table. The upgrade backfills the table, and events computed by version 2
/// keep landing in the old group (whose version 2 keys are then recorded).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_groups_keep_receiving_matching_events() {
    use migration::{Migrator, MigratorTrait};
    use sea_orm::ConnectionTrait;

    let dir = tempfile::tempdir().unwrap();
    let database_url = fresh_database_url().await;
    let url = faultline::Config {
        data_dir: dir.path().to_path_buf(),
        database_url: database_url.clone(),
        ..faultline::Config::default()
    }
    .database_url();

    let old = spawn_app_on(database_url.clone(), dir.path()).await;
    let key = old.key.clone();
    let first = old
        .capture(py_error("bad 1", checkout_stack(42, "parse_price")))
        .await;
    let e = old.event(&s(&first["event_id"])).await;
    let v1_hash = s(&variant(&e, "legacy_v1")["hash"]);
    assert_ne!(v1_hash, s(&first["fingerprint"]));
    old.stop().await;

    // Back to the version 1 schema and data.
    let db = sea_orm::Database::connect(url.as_str())
        .await
        .expect("connect");
    // Roll back group_hashes and every migration after it.
    let names: Vec<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let pos = names
        .iter()
        .position(|n| n.contains("group_hashes"))
        .expect("the group_hashes migration");
    Migrator::down(&db, Some((names.len() - pos) as u32))
        .await
        .expect("roll back group_hashes and what came after");
    db.execute_unprepared(&format!(
        "UPDATE groups SET fingerprint = '{v1_hash}', grouping_version = 1"
    ))
    .await
    .expect("store the group as version 1 did");
    db.close().await.expect("close");

    let mut upgraded = spawn_app_on(database_url.clone(), dir.path()).await;
    upgraded.key = key.clone();
    let g = upgraded.group(&s(&first["group_id"])).await;
    assert_eq!(s(&g["fingerprint"]), v1_hash);
    assert_eq!(n(&g["grouping_version"]), 1);
    // Other values and lines, same place: only the version 1 key is known.
    let second = upgraded
        .capture(py_error("bad 2", checkout_stack(50, "parse_price")))
        .await;
    assert_eq!(
        second["group_id"], first["group_id"],
        "the v1 group keeps receiving"
    );
    assert_eq!(second["new_group"], json!(false));
    assert_eq!(s(&second["fingerprint"]), v1_hash);
    let e2 = upgraded.event(&s(&second["event_id"])).await;
    assert_eq!(
        variant(&e2, "legacy_v1")["matches_group"],
        json!(true),
        "{e2}"
    );
    assert_eq!(
        variant(&e2, "in_app")["matches_group"],
        json!(true),
        "recorded for the old group"
    );
    let other = upgraded
        .capture(py_error("bad 2", checkout_stack(50, "other_function")))
        .await;
    assert_ne!(other["group_id"], first["group_id"]);
    upgraded.stop().await;

    // The version 2 keys were recorded for the old group: without its version 1 key it is
    // still found.
    let db = sea_orm::Database::connect(url.as_str())
        .await
        .expect("connect");
    let res = db
        .execute_unprepared("DELETE FROM group_hashes WHERE grouping_version = 1")
        .await
        .expect("forget the v1 key");
    assert_eq!(res.rows_affected(), 1);
    db.close().await.expect("close");
    let mut again = spawn_app_on(database_url, dir.path()).await;
    again.key = key;
    let third = again
        .capture(py_error("bad 3", checkout_stack(61, "parse_price")))
        .await;
    assert_eq!(third["group_id"], first["group_id"]);
    let g = again.group(&s(&first["group_id"])).await;
    assert_eq!(n(&g["count"]), 3);
    assert_eq!(
        n(&g["grouping_version"]),
        1,
        "the group keeps its key and version"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_capture_fields_are_validated() {
    let app = spawn_app().await;
    let cause = json!({"type": "E", "message": "m"});
    let cases = [
        (
            json!({"message": "m", "chained": vec![cause; 33]}),
            "chained",
        ),
        (
            json!({"message": "m", "platform": "p".repeat(65)}),
            "platform",
        ),
        (
            json!({"message": "m", "transaction": "t".repeat(257)}),
            "transaction",
        ),
        (
            json!({"exception": {"type": "E", "mechanism": {"type": "x".repeat(257)}}}),
            "exception.mechanism",
        ),
    ];
    for (body, field) in cases {
        let r = app
            .send(app.authed(Method::POST, "/v1/errors/capture").json(&body))
            .await;
        let e = assert_error(&r, 422, "VALIDATION_ERROR", "POST", "/v1/errors/capture");
        assert!(
            arr(&e["details"])
                .iter()
                .any(|d| d["field"] == json!(field)),
            "{field}: {}",
            r.text
        );
    }
    let r = app
        .send(
            app.authed(Method::POST, "/v1/errors/capture")
                .json(&json!({"exception": {"type": "E", "mechanism": 7}})),
        )
        .await;
    let e = assert_error(&r, 422, "VALIDATION_ERROR", "POST", "/v1/errors/capture");
    assert_eq!(
        e["details"][0]["field"],
        json!("exception.mechanism"),
        "{}",
        r.text
    );
    assert!(
        !r.text.contains("MechanismBody"),
        "no internal names: {}",
        r.text
    );
    // A chain without a main exception: its newest exception is the main one.
    let c = app
        .capture(json!({"chained": [{"type": "KeyError", "message": "k"}, {"type": "LookupError", "message": "l"}]}))
        .await;
    let e = app.event(&s(&c["event_id"])).await;
    assert_eq!(e["exception"]["type"], json!("LookupError"));
    assert_eq!(e["exception"]["chained"][0]["type"], json!("KeyError"));
}
