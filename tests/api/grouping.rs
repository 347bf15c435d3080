//! Grouping as a user sees it: which captures become one issue, and why (GET shows the key).

use faultline::pb;
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
