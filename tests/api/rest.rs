//! The REST API: every capability with its documented status and body, and the behaviour a
//! user sees (paging, filters, search, sorting, aggregates, triage, auth, request ids).

use std::{collections::HashSet, time::Duration};

use chrono::{DurationRound, SecondsFormat, Utc};
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use faultline::pb;

use crate::helpers::*;

pub const PY_TRACE: &str = "Traceback (most recent call last):
  File \"/app/shop/views.py\", line 42, in checkout
    total = compute_total(cart)
  File \"/app/shop/pricing.py\", line 17, in compute_total
    return sum(prices) / len(prices)
ZeroDivisionError: division by zero";

fn hour_of(t: chrono::DateTime<Utc>) -> chrono::DateTime<Utc> {
    t.duration_trunc(chrono::Duration::hours(1)).unwrap()
}

/// The acknowledgement of a capture: `{ok, error_id, event_id, group_id, fingerprint, new_group}`.
pub fn assert_ack(b: &Value) {
    assert_eq!(b["ok"], json!(true), "ack without ok:true: {b}");
    uuid_str(&b["event_id"]);
    assert_eq!(
        b["error_id"], b["event_id"],
        "error_id must equal event_id: {b}"
    );
    uuid_str(&b["group_id"]);
    let fp = s(&b["fingerprint"]);
    assert!(
        fp.len() == 32 && fp.bytes().all(|c| c.is_ascii_hexdigit()),
        "fingerprint {fp:?} is not 32 hex digits"
    );
    assert!(
        b["new_group"].is_boolean(),
        "new_group must be a boolean: {b}"
    );
}

/// The documented Event shape.
pub fn assert_event_shape(e: &Value) {
    let id = uuid_str(&e["id"]);
    assert_eq!(e["event_id"], json!(id), "event_id must equal id: {e}");
    uuid_str(&e["group_id"]);
    uuid_str(&e["project_id"]);
    assert!(e["fingerprint"].is_string(), "fingerprint: {e}");
    let _ = time(&e["timestamp"]);
    let _ = time(&e["received_at"]);
    let level = s(&e["level"]);
    assert!(
        ["debug", "info", "warning", "error", "fatal"].contains(&level.as_str()),
        "level {level:?}"
    );
    assert!(e["message"].is_string(), "message: {e}");
    for k in ["code", "culprit", "release", "environment", "user_id"] {
        assert!(e.get(k).is_some(), "event lacks {k:?}: {e}");
    }
    assert!(
        e["exception"].is_null() || e["exception"].is_object(),
        "exception: {e}"
    );
    if e["exception"].is_object() {
        let x = &e["exception"];
        assert!(
            x["type"].is_string() && x["value"].is_string() && x["frames"].is_array(),
            "exception shape: {x}"
        );
        assert!(
            x.get("raw_stacktrace").is_some(),
            "exception lacks raw_stacktrace: {x}"
        );
    }
    assert!(e["tags"].is_object(), "tags must be an object: {e}");
}

/// The documented Group shape.
pub fn assert_group_shape(g: &Value) {
    let id = uuid_str(&g["id"]);
    assert_eq!(
        g["error_group_id"],
        json!(id),
        "error_group_id must equal id: {g}"
    );
    uuid_str(&g["project_id"]);
    assert!(
        g["fingerprint"].is_string() && g["title"].is_string() && g["culprit"].is_string(),
        "group shape: {g}"
    );
    assert!(g["level"].is_string(), "level: {g}");
    let st = s(&g["status"]);
    assert!(
        ["unresolved", "resolved", "ignored"].contains(&st.as_str()),
        "status {st:?}"
    );
    assert!(g["regressed"].is_boolean(), "regressed: {g}");
    assert!(n(&g["count"]) >= 1, "count: {g}");
    assert!(
        time(&g["first_seen"]) <= time(&g["last_seen"]),
        "first_seen after last_seen: {g}"
    );
    assert!(n(&g["grouping_version"]) >= 1, "grouping_version: {g}");
}

/// A page: `{events, next_cursor, has_more}`.
pub fn assert_page(p: &Value) -> (Vec<Value>, Option<String>) {
    let events = arr(&p["events"]).clone();
    let has_more = p["has_more"]
        .as_bool()
        .unwrap_or_else(|| panic!("has_more must be a boolean: {p}"));
    let next = match &p["next_cursor"] {
        Value::Null => None,
        Value::String(c) if c.is_empty() => None,
        Value::String(c) => Some(c.clone()),
        other => panic!("next_cursor must be a string or null, got {other}"),
    };
    assert_eq!(
        has_more,
        next.is_some(),
        "has_more must say whether there is a next_cursor: {p}"
    );
    for e in &events {
        assert_event_shape(e);
    }
    (events, next)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_message_form_is_stored_as_sent() {
    let app = spawn_app().await;
    let b = app
        .capture(json!({
            "message": "checkout failed: division by zero",
            "code": "E_CHECKOUT",
            "stack": PY_TRACE,
            "tags": {"region": "eu", "shard": "7"},
            "release": "shop@1.4.2",
            "environment": "production",
            "user_id": "user-17",
        }))
        .await;
    assert_ack(&b);
    assert_eq!(
        b["new_group"],
        json!(true),
        "first event of a new issue: {b}"
    );
    let id = s(&b["event_id"]);

    let e = app.event(&id).await;
    assert_event_shape(&e);
    assert_eq!(e["id"], json!(id));
    assert_eq!(e["group_id"], b["group_id"]);
    assert_eq!(e["fingerprint"], b["fingerprint"]);
    assert_eq!(e["message"], json!("checkout failed: division by zero"));
    assert_eq!(e["code"], json!("E_CHECKOUT"));
    assert_eq!(
        e["level"],
        json!("error"),
        "capture defaults to level error"
    );
    assert_eq!(e["tags"], json!({"region": "eu", "shard": "7"}));
    assert_eq!(e["release"], json!("shop@1.4.2"));
    assert_eq!(e["environment"], json!("production"));
    assert_eq!(e["user_id"], json!("user-17"));
    let x = &e["exception"];
    assert_eq!(
        x["type"],
        json!("ZeroDivisionError"),
        "type parsed from the stack: {x}"
    );
    assert_eq!(x["raw_stacktrace"], json!(PY_TRACE));
    let frames = arr(&x["frames"]);
    assert_eq!(frames.len(), 2, "two frames in the trace: {x}");
    assert_eq!(
        frames[0]["function"],
        json!("checkout"),
        "oldest call first: {x}"
    );
    assert_eq!(frames[1]["function"], json!("compute_total"));
    assert_eq!(frames[1]["lineno"], json!(17));
    assert!(
        s(&e["culprit"]).contains("compute_total"),
        "culprit names the crashing in-app function: {e}"
    );
    assert!((Utc::now() - time(&e["received_at"])).num_seconds().abs() < 60);

    // The same error again joins the group.
    let again = app
        .capture(json!({"message": "checkout failed: division by zero", "stack": PY_TRACE}))
        .await;
    assert_ack(&again);
    assert_eq!(again["group_id"], b["group_id"]);
    assert_eq!(again["new_group"], json!(false));
    assert_ne!(again["event_id"], b["event_id"]);
    let g = app.group(&s(&b["group_id"])).await;
    assert_eq!(n(&g["count"]), 2);
}

/// A group's first seen, last seen, level and count follow its events' timestamps, whatever
/// order they arrive in: an event older than the group's first (a client delivering late)
/// moves first seen back and leaves last seen and the level with the newest event.
#[tokio::test]
async fn a_late_older_event_moves_first_seen_back() {
    let app = spawn_app().await;
    let now = Utc::now()
        .duration_trunc(chrono::Duration::seconds(1))
        .unwrap();
    let at = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let capture = |level: &str, t: chrono::DateTime<Utc>| {
        app.capture(json!({"message": "late delivery", "level": level, "timestamp": at(t)}))
    };
    let first = capture("error", now - chrono::Duration::hours(1)).await;
    let gid = s(&first["group_id"]);
    let newer = capture("warning", now).await;
    let older = capture("info", now - chrono::Duration::hours(3)).await;
    assert_eq!(s(&newer["group_id"]), gid);
    assert_eq!(s(&older["group_id"]), gid);
    let g = app.group(&gid).await;
    assert_eq!(
        time(&g["first_seen"]),
        now - chrono::Duration::hours(3),
        "{g}"
    );
    assert_eq!(time(&g["last_seen"]), now, "{g}");
    assert_eq!(g["level"], json!("warning"), "{g}");
    assert_eq!(n(&g["count"]), 3, "{g}");
    assert_eq!(g["status"], json!("unresolved"), "{g}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_exception_forms_levels_and_timestamps() {
    let app = spawn_app().await;

    // Stack trace as a string, level warning, RFC 3339 timestamp.
    let at = Utc::now() - chrono::Duration::minutes(90);
    let at = at.duration_trunc(chrono::Duration::seconds(1)).unwrap();
    let a = app
        .capture(json!({
            "exception": {"type": "ZeroDivisionError", "message": "division by zero", "stacktrace": PY_TRACE},
            "level": "warning",
            "timestamp": at.to_rfc3339_opts(SecondsFormat::Secs, true),
        }))
        .await;
    assert_ack(&a);
    let e = app.event(&s(&a["event_id"])).await;
    assert_event_shape(&e);
    assert_eq!(e["level"], json!("warning"));
    assert_eq!(
        time(&e["timestamp"]),
        at,
        "the client's timestamp is kept: {e}"
    );
    assert_eq!(e["exception"]["type"], json!("ZeroDivisionError"));
    assert_eq!(e["exception"]["value"], json!("division by zero"));
    assert_eq!(arr(&e["exception"]["frames"]).len(), 2);
    assert!(
        s(&e["message"]).contains("division by zero"),
        "message of an exception event: {e}"
    );

    // Stack trace as an array of lines, epoch-seconds timestamp.
    let epoch = (Utc::now() - chrono::Duration::hours(5)).timestamp();
    let b = app
        .capture(json!({
            "exception": {"type": "TypeError", "message": "x is undefined", "stacktrace": [
                "at renderCart (/srv/web/src/cart.js:10:5)",
                "at handle (/srv/web/src/server.js:99:12)",
            ]},
            "level": "fatal",
            "timestamp": epoch,
        }))
        .await;
    assert_ack(&b);
    let e = app.event(&s(&b["event_id"])).await;
    assert_eq!(e["level"], json!("fatal"));
    assert_eq!(
        time(&e["timestamp"]).timestamp(),
        epoch,
        "epoch seconds timestamp: {e}"
    );
    let frames = arr(&e["exception"]["frames"]);
    assert_eq!(frames.len(), 2, "two frames from two lines: {e}");
    let functions: HashSet<String> = frames.iter().map(|f| s(&f["function"])).collect();
    assert_eq!(
        functions,
        HashSet::from(["renderCart".to_owned(), "handle".to_owned()])
    );

    // Stack trace as frame objects.
    let c = app
        .capture(json!({
            "exception": {"type": "KeyError", "message": "'sku'", "stacktrace": [
                {"filename": "/app/shop/cart.py", "function": "add_item", "module": "shop.cart", "lineno": 12, "colno": 3, "in_app": true, "context_line": "sku = item['sku']"},
                {"filename": "/usr/lib/python3/json.py", "function": "loads", "lineno": 300, "in_app": false},
            ]},
            "level": "error",
        }))
        .await;
    assert_ack(&c);
    let e = app.event(&s(&c["event_id"])).await;
    let frames = arr(&e["exception"]["frames"]);
    assert_eq!(frames.len(), 2, "frames kept: {e}");
    assert_eq!(frames[0]["function"], json!("add_item"));
    assert_eq!(frames[0]["module"], json!("shop.cart"));
    assert_eq!(frames[0]["lineno"], json!(12));
    assert_eq!(frames[0]["colno"], json!(3));
    assert_eq!(frames[0]["in_app"], json!(true));
    assert_eq!(frames[0]["context_line"], json!("sku = item['sku']"));
    assert_eq!(frames[1]["in_app"], json!(false));
    assert_eq!(
        e["culprit"],
        json!("shop.cart in add_item"),
        "culprit is the in-app frame: {e}"
    );
    let g = app.group(&s(&c["group_id"])).await;
    assert_eq!(g["title"], json!("KeyError: 'sku'"));
    assert_eq!(g["culprit"], json!("shop.cart in add_item"));
    assert_eq!(g["level"], json!("error"));

    // Three different issues.
    let groups: HashSet<String> = [&a, &b, &c].iter().map(|x| s(&x["group_id"])).collect();
    assert_eq!(groups.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_capture_and_idempotency() {
    let app = spawn_app().await;
    let body = json!({
        "text": "nightly sync finished with warnings",
        "level": "warning",
        "tags": {"job": "sync"},
        "user_id": "cron",
        "release": "2.0.0",
        "environment": "staging",
        "idempotency_key": "sync-2024-06-01",
    });
    let first = app.message(body.clone()).await;
    assert_ack(&first);
    assert_eq!(
        first["duplicate"],
        json!(false),
        "first message is not a duplicate: {first}"
    );
    assert_eq!(first["new_group"], json!(true));

    let second = app.message(body.clone()).await;
    assert_ack(&second);
    assert_eq!(
        second["duplicate"],
        json!(true),
        "same idempotency key: {second}"
    );
    assert_eq!(
        second["error_id"], first["error_id"],
        "same key → same event"
    );
    assert_eq!(second["group_id"], first["group_id"]);

    let e = app.event(&s(&first["event_id"])).await;
    assert_eq!(e["message"], json!("nightly sync finished with warnings"));
    assert_eq!(e["level"], json!("warning"));
    assert_eq!(e["tags"], json!({"job": "sync"}));
    assert_eq!(e["user_id"], json!("cron"));
    assert_eq!(e["release"], json!("2.0.0"));
    assert_eq!(e["environment"], json!("staging"));

    // Nothing new was stored.
    let all = app.list_all("").await;
    assert_eq!(
        ids(&all),
        vec![s(&first["event_id"])],
        "exactly one event stored"
    );
    assert_eq!(n(&app.group(&s(&first["group_id"])).await["count"]), 1);

    // A message without a level is "info"; another key stores another event.
    let third = app.message(json!({"text": "nightly sync finished with warnings", "idempotency_key": "sync-2024-06-02"})).await;
    assert_eq!(third["duplicate"], json!(false));
    assert_ne!(third["event_id"], first["event_id"]);
    assert_eq!(
        app.event(&s(&third["event_id"])).await["level"],
        json!("info")
    );
    // Without a key, every message is stored.
    let a = app.message(json!({"text": "plain"})).await;
    let b = app.message(json!({"text": "plain"})).await;
    assert_ne!(a["event_id"], b["event_id"]);
    assert_eq!(b["duplicate"], json!(false));
    assert_eq!(app.list_all("").await.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_with_cursor_stably() {
    let app = spawn_app().await;
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(app.capture_text(&format!("paging event {i}")).await.0);
    }
    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut sizes = Vec::new();
    let mut page_no = 0;
    loop {
        let path = match &cursor {
            None => "/v1/errors/list?limit=3".to_owned(),
            Some(c) => format!("/v1/errors/list?limit=3&cursor={}", enc(c)),
        };
        let (events, next) = assert_page(&app.get_ok(&path).await);
        sizes.push(events.len());
        seen.extend(ids(&events));
        page_no += 1;
        if page_no == 1 {
            // A new event arrives between pages: it must not shift the pages that follow.
            app.capture_text("arrived while paging").await;
        }
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
        assert!(page_no < 10, "paging does not end");
    }
    assert_eq!(sizes, vec![3, 3, 1], "7 events in pages of 3");
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "duplicates across pages: {seen:?}"
    );
    let mut newest_first = created.clone();
    newest_first.reverse();
    assert_eq!(
        seen, newest_first,
        "pages are newest first and cover exactly the 7 events"
    );

    // A fresh listing sees the new event first.
    let (first, _) = assert_page(&app.get_ok("/v1/errors/list?limit=3").await);
    assert_eq!(first[0]["message"], json!("arrived while paging"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_limit_defaults_to_50_and_is_capped_at_100() {
    let app = spawn_app().await;
    let client = app.capture_client().await;
    let results: Vec<_> = futures::stream::iter(0..101)
        .map(|i| {
            let mut c = client.clone();
            let r = app.req(pb::CaptureMessageRequest {
                text: format!("bulk message {i}"),
                ..Default::default()
            });
            async move { c.capture_message(r).await }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for r in &results {
        assert!(r.is_ok(), "capture failed: {r:?}");
    }
    for limit in [500, 1000] {
        let p = app.get_ok(&format!("/v1/errors/list?limit={limit}")).await;
        let (events, next) = assert_page(&p);
        assert_eq!(events.len(), 100, "limit={limit} is capped at 100");
        assert!(next.is_some(), "101 events: there is a next page");
    }
    let (events, _) = assert_page(&app.get_ok("/v1/errors/list").await);
    assert_eq!(events.len(), 50, "default page size");
    let all = app.list_all("").await;
    assert_eq!(all.len(), 101);
}

/// The ids of the events `keep` picks out of `sent` (oldest first), newest first.
fn newest_ids<T>(sent: &[T], id: fn(&T) -> &String, keep: &dyn Fn(&T) -> bool) -> Vec<String> {
    sent.iter()
        .rev()
        .filter(|e| keep(e))
        .map(|e| id(e).clone())
        .collect()
}

/// Every event of a listing, read two at a time through `next_cursor`.
async fn small_pages(app: &TestApp, path: &str, query: String) -> Vec<String> {
    let mut got = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = app.get_ok(&format!("{path}?limit=2&{query}{cursor}")).await;
        got.extend(ids(arr(&page["events"])));
        match page["next_cursor"].as_str() {
            Some(c) if !c.is_empty() => cursor = format!("&cursor={}", enc(c)),
            _ => return got,
        }
    }
}

/// A tag filter without a group is read from the tag index, with a group from the group's
/// events: either way pages run newest first, each match once, and the other filters apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_filters_page_newest_first() {
    let app = spawn_app().await;
    struct Sent {
        id: String,
        group: String,
        shard: String,
        phase: &'static str,
        level: &'static str,
    }
    // Oldest first: each capture waits for its commit.
    let mut sent = Vec::new();
    for i in 0..12 {
        let shard = (i % 3).to_string();
        let phase = if i < 6 { "early" } else { "late" };
        let level = if i % 4 == 0 { "warning" } else { "error" };
        let r = app
            .capture(json!({"message": format!("paging {i}"), "level": level,
                "fingerprint": [format!("paging-{}", i % 2)],
                "tags": {"shard": shard, "phase": phase}}))
            .await;
        sent.push(Sent {
            id: s(&r["event_id"]),
            group: s(&r["group_id"]),
            shard,
            phase,
            level,
        });
    }
    let newest_first = |keep: &dyn Fn(&Sent) -> bool| newest_ids(&sent, |e| &e.id, keep);
    let pages = |query: String| small_pages(&app, "/v1/errors/list", query);
    assert_eq!(
        pages("tag=shard:1".into()).await,
        newest_first(&|e| e.shard == "1"),
        "one tag"
    );
    assert_eq!(
        pages("tag=shard:0&tag=phase:late".into()).await,
        newest_first(&|e| e.shard == "0" && e.phase == "late"),
        "two tags"
    );
    assert_eq!(
        pages("tag=shard:2&level=error".into()).await,
        newest_first(&|e| e.shard == "2" && e.level == "error"),
        "a tag and a column"
    );
    let group = sent[1].group.clone();
    assert_eq!(
        pages(format!("tag=phase:early&group_id={group}")).await,
        newest_first(&|e| e.phase == "early" && e.group == group),
        "a tag within a group"
    );
    assert!(
        pages("tag=shard:none".into()).await.is_empty(),
        "no event has it"
    );
    assert!(
        pages("tag=nokey:1".into()).await.is_empty(),
        "no event has the key"
    );
    // Another project's events carry the same tag and are not listed.
    let other = s(&app
        .post_ok("/v1/projects/create", &json!({"name": "elsewhere"}))
        .await["id"]);
    let r = app
        .send(
            app.authed(Method::POST, "/v1/errors/capture")
                .header("X-Faultline-Project", &other)
                .json(&json!({"message": "elsewhere", "tags": {"shard": "1"}})),
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    assert_eq!(
        pages("tag=shard:1".into()).await,
        newest_first(&|e| e.shard == "1"),
        "the project's own events only"
    );
}

/// Release, environment and user filters read only the groups whose counts hold the value
/// when those are few and small, and the project newest first otherwise: both give the
/// same pages, newest first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn column_filters_page_newest_first() {
    let app = spawn_app().await;
    struct Sent {
        id: String,
        user: String,
        release: String,
        environment: &'static str,
        level: &'static str,
    }
    let mut sent = Vec::new();
    let capture = |i: usize, fingerprint: String, user: String| {
        let app = &app;
        let release = format!("r{}", i % 3);
        let environment = if i.is_multiple_of(2) {
            "production"
        } else {
            "staging"
        };
        let level = if i.is_multiple_of(5) {
            "warning"
        } else {
            "error"
        };
        async move {
            let r = app
                .capture(json!({"message": format!("columns {i}"), "level": level,
                    "fingerprint": [fingerprint], "user_id": user, "release": release,
                    "environment": environment}))
                .await;
            Sent {
                id: s(&r["event_id"]),
                user,
                release,
                environment,
                level,
            }
        }
    };
    // Three small groups: each value is held by at most three groups of a few events.
    for i in 0..15 {
        sent.push(capture(i, format!("columns-{}", i % 3), format!("u{}", i % 4)).await);
    }
    // 40 groups of one event, all with the same user: too many groups to read one by one.
    for i in 15..55 {
        sent.push(capture(i, format!("spread-{i}"), "everyone".into()).await);
    }
    let newest_first = |keep: &dyn Fn(&Sent) -> bool| newest_ids(&sent, |e| &e.id, keep);
    let pages = |query: String| small_pages(&app, "/v1/errors/list", query);
    assert_eq!(
        pages("user_id=u1".into()).await,
        newest_first(&|e| e.user == "u1"),
        "a user in few groups"
    );
    assert_eq!(
        pages("user_id=u2&release=r1".into()).await,
        newest_first(&|e| e.user == "u2" && e.release == "r1"),
        "a user and a release"
    );
    assert_eq!(
        pages("environment=staging&level=error".into()).await,
        newest_first(&|e| e.environment == "staging" && e.level == "error"),
        "an environment and a level"
    );
    assert_eq!(
        pages("user_id=everyone".into()).await,
        newest_first(&|e| e.user == "everyone"),
        "a user in many groups"
    );
    assert_eq!(
        pages("release=r2".into()).await,
        newest_first(&|e| e.release == "r2"),
        "a release in groups of both kinds"
    );
    assert!(
        pages("user_id=nobody".into()).await.is_empty(),
        "no event has it"
    );
    assert!(
        pages("user_id=u1&release=r9".into()).await.is_empty(),
        "no group holds both"
    );
    assert_eq!(
        small_pages(&app, "/v1/errors/search", "q=columns&user_id=u3".into()).await,
        newest_first(&|e| e.user == "u3"),
        "a search with a user"
    );
    // Another project's event with the same user is not listed.
    let other = s(&app
        .post_ok("/v1/projects/create", &json!({"name": "columns"}))
        .await["id"]);
    let r = app
        .send(
            app.authed(Method::POST, "/v1/errors/capture")
                .header("X-Faultline-Project", &other)
                .json(&json!({"message": "elsewhere", "user_id": "u1"})),
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    assert_eq!(
        pages("user_id=u1".into()).await,
        newest_first(&|e| e.user == "u1"),
        "the project's own events only"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters() {
    let app = spawn_app().await;
    let now = Utc::now();
    let ts = |h: i64| (now - chrono::Duration::hours(h)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let a = app
        .capture(json!({"message": "filter a", "level": "warning", "environment": "production", "release": "1.0",
            "tags": {"browser": "firefox", "os": "linux"}, "user_id": "alice", "timestamp": ts(30)}))
        .await;
    let b = app
        .capture(json!({"message": "filter b", "level": "error", "environment": "staging", "release": "1.1",
            "tags": {"browser": "firefox", "os": "mac"}, "user_id": "bob", "timestamp": ts(20)}))
        .await;
    let c = app
        .capture(json!({"message": "filter c", "level": "error", "environment": "production", "release": "1.1",
            "tags": {"browser": "chrome", "os": "linux"}, "user_id": "alice", "timestamp": ts(10)}))
        .await;
    let [a, b, c] = [&a, &b, &c].map(|x| s(&x["event_id"]));
    let q = |query: &str| {
        let app = &app;
        let query = query.to_owned();
        async move {
            let mut got = ids(&app.list_all(&query).await);
            got.sort();
            got
        }
    };
    let sorted = |mut v: Vec<&String>| {
        v.sort();
        v.into_iter().cloned().collect::<Vec<String>>()
    };
    assert_eq!(q("").await.len(), 3);
    assert_eq!(q("level=warning").await, sorted(vec![&a]), "level filter");
    assert_eq!(q("level=error").await, sorted(vec![&b, &c]), "level filter");
    assert_eq!(
        q("environment=production").await,
        sorted(vec![&a, &c]),
        "environment filter"
    );
    assert_eq!(
        q("release=1.1").await,
        sorted(vec![&b, &c]),
        "release filter"
    );
    assert_eq!(
        q("tag=browser:firefox").await,
        sorted(vec![&a, &b]),
        "tag filter"
    );
    assert_eq!(
        q("tag=browser:firefox&tag=os:linux").await,
        sorted(vec![&a]),
        "repeated tag filters all apply"
    );
    assert_eq!(
        q("user_id=alice").await,
        sorted(vec![&a, &c]),
        "user filter"
    );
    assert_eq!(
        q(&format!("since={}", enc(&ts(25)))).await,
        sorted(vec![&b, &c]),
        "since"
    );
    assert_eq!(
        q(&format!("until={}", enc(&ts(15)))).await,
        sorted(vec![&a, &b]),
        "until"
    );
    assert_eq!(
        q(&format!("since={}&until={}", enc(&ts(25)), enc(&ts(15)))).await,
        sorted(vec![&b]),
        "since+until"
    );
    assert_eq!(
        q("environment=production&level=error").await,
        sorted(vec![&c]),
        "filters combine"
    );
    assert!(q("environment=nowhere").await.is_empty());

    // group_id
    let gid = s(&app.event(&b).await["group_id"]);
    assert_eq!(
        q(&format!("group_id={gid}")).await,
        sorted(vec![&b]),
        "group filter"
    );

    // The same filters as one JSON object, tags as an object.
    let f = json!({"environment": "production", "tags": {"os": "linux"}, "level": "error"});
    assert_eq!(
        q(&format!("filter={}", enc(&f.to_string()))).await,
        sorted(vec![&c]),
        "filter= JSON"
    );
    let f = json!({"user_id": "alice", "since": ts(35), "until": ts(25)});
    assert_eq!(
        q(&format!("filter={}", enc(&f.to_string()))).await,
        sorted(vec![&a]),
        "filter= JSON with times"
    );

    // status: resolve c's group.
    let cg = s(&app.event(&c).await["group_id"]);
    app.post_ok(&format!("/v1/errors/resolve/{cg}"), &json!({}))
        .await;
    assert_eq!(
        q("status=resolved").await,
        sorted(vec![&c]),
        "status filter"
    );
    assert_eq!(
        q("status=unresolved").await,
        sorted(vec![&a, &b]),
        "status filter"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_matches_message_exception_type_and_stack() {
    let app = spawn_app().await;
    let m = app
        .capture(json!({"message": "Payment gateway timed out", "environment": "production"}))
        .await;
    let x = app
        .capture(json!({"exception": {"type": "FrobnicationError", "message": "it broke"}, "environment": "staging"}))
        .await;
    let st = app
        .capture(json!({"message": "render failed", "stack": "Traceback (most recent call last):\n  File \"/app/widgets.py\", line 3, in frobnicate_widget_now\n    go()\nRuntimeError: nope"}))
        .await;
    app.capture_text("unrelated noise").await;
    let search = |q: &str| {
        let app = &app;
        let path = format!("/v1/errors/search?q={}", enc(q));
        async move {
            let (events, _) = assert_page(&app.get_ok(&path).await);
            ids(&events)
        }
    };
    assert_eq!(
        search("gateway").await,
        vec![s(&m["event_id"])],
        "message word"
    );
    assert_eq!(
        search("GATEWAY").await,
        vec![s(&m["event_id"])],
        "case-insensitive"
    );
    assert_eq!(
        search("frobnicationerror").await,
        vec![s(&x["event_id"])],
        "exception type"
    );
    assert_eq!(
        search("frobnicate_widget_now").await,
        vec![s(&st["event_id"])],
        "stack trace text"
    );
    assert!(search("zzzznotthere").await.is_empty());
    // Search with a filter.
    let (events, _) = assert_page(
        &app.get_ok("/v1/errors/search?q=gateway&environment=staging")
            .await,
    );
    assert!(events.is_empty(), "filter applies to search");
    let (events, _) = assert_page(
        &app.get_ok("/v1/errors/search?q=gateway&environment=production")
            .await,
    );
    assert_eq!(events.len(), 1);
    // q is required.
    let r = app.send(app.authed(Method::GET, "/v1/errors/search")).await;
    let e = assert_error(&r, 422, "VALIDATION_ERROR", "GET", "/v1/errors/search");
    assert_detail_field(e, "q");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_event_shows_payload_and_grouping() {
    let app = spawn_app().await;
    let b = app
        .capture(json!({"message": "Order 123 failed", "tags": {"a": "b"}, "release": "r1", "extra_field": {"nested": ["x", true]}}))
        .await;
    let e = app.event(&s(&b["event_id"])).await;
    assert_event_shape(&e);
    let p = &e["payload"];
    assert!(
        p.is_object(),
        "payload must be the stored payload as an object: {e}"
    );
    assert_eq!(p["message"], json!("Order 123 failed"));
    assert_eq!(p["tags"], json!({"a": "b"}));
    assert_eq!(p["release"], json!("r1"));
    assert_eq!(
        p["extra_field"],
        json!({"nested": ["x", true]}),
        "unknown fields are kept in the payload: {p}"
    );
    let g = &e["grouping"];
    assert_eq!(g["source"], json!("message"));
    assert!(n(&g["version"]) >= 1);
    assert_eq!(g["fingerprint"], b["fingerprint"]);
    let comps = arr(&g["components"]);
    assert_eq!(comps.len(), 1, "{g}");
    let c = s(&comps[0]);
    assert!(
        c.starts_with("message:") && !c.contains("123"),
        "the number is masked in the grouping key: {c}"
    );
    // Unknown id.
    let missing = uuid::Uuid::new_v4();
    let r = app
        .send(app.authed(Method::GET, &format!("/v1/errors/get/{missing}")))
        .await;
    assert_error(
        &r,
        404,
        "NOT_FOUND",
        "GET",
        &format!("/v1/errors/get/{missing}"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_status_filter_and_sorts() {
    let app = spawn_app().await;
    // A: 3 events first; B: 1 event; C: 2 events; then one more A (latest).
    let mut ga = String::new();
    for _ in 0..3 {
        ga = app.capture_text("issue A").await.1;
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    let gb = app.capture_text("issue B").await.1;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let gc = app.capture_text("issue C").await.1;
    app.capture_text("issue C").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    app.capture_text("issue A").await;

    let list = |q: &str| {
        let app = &app;
        let path = format!("/v1/errors/groups{q}");
        async move {
            let p = app.get_ok(&path).await;
            let groups = arr(&p["groups"]).clone();
            assert!(p["has_more"].is_boolean(), "has_more: {p}");
            assert!(p.get("next_cursor").is_some(), "next_cursor: {p}");
            for g in &groups {
                assert_group_shape(g);
            }
            ids(&groups)
        }
    };
    assert_eq!(
        list("?sort=count_desc").await,
        vec![ga.clone(), gc.clone(), gb.clone()],
        "count_desc"
    );
    assert_eq!(
        list("?sort=last_seen_desc").await,
        vec![ga.clone(), gc.clone(), gb.clone()],
        "last_seen_desc"
    );
    assert_eq!(
        list("?sort=first_seen_desc").await,
        vec![gc.clone(), gb.clone(), ga.clone()],
        "first_seen_desc"
    );
    assert_eq!(
        list("").await,
        vec![ga.clone(), gc.clone(), gb.clone()],
        "default sort is last_seen_desc"
    );

    // Paging groups.
    let p1 = app
        .get_ok("/v1/errors/groups?sort=count_desc&limit=2")
        .await;
    assert_eq!(ids(arr(&p1["groups"])), vec![ga.clone(), gc.clone()]);
    assert_eq!(p1["has_more"], json!(true));
    let c = s(&p1["next_cursor"]);
    let p2 = app
        .get_ok(&format!(
            "/v1/errors/groups?sort=count_desc&limit=2&cursor={}",
            enc(&c)
        ))
        .await;
    assert_eq!(ids(arr(&p2["groups"])), vec![gb.clone()]);
    assert_eq!(p2["has_more"], json!(false));
    assert!(
        p2["next_cursor"].is_null() || p2["next_cursor"] == json!(""),
        "{p2}"
    );

    let counts: Vec<u64> = arr(&app.get_ok("/v1/errors/groups?sort=count_desc").await["groups"])
        .iter()
        .map(|g| n(&g["count"]))
        .collect();
    assert_eq!(counts, vec![4, 2, 1]);

    // Status filter.
    app.post_ok(&format!("/v1/errors/resolve/{gb}"), &json!({}))
        .await;
    app.post_ok(&format!("/v1/errors/ignore/{gc}"), &json!({}))
        .await;
    assert_eq!(list("?status=unresolved").await, vec![ga.clone()]);
    assert_eq!(list("?status=resolved").await, vec![gb.clone()]);
    assert_eq!(list("?status=ignored").await, vec![gc.clone()]);
    assert_eq!(
        list("?status=resolved&sort=count_desc").await,
        vec![gb.clone()]
    );
}

/// Merging issues a person sees as one: the group with the most events keeps its id and takes
/// the others' events, tag counts, hourly counts and grouping keys, so a later event of a
/// merged group joins it; over REST and gRPC on either database, with refusals by field and
/// nothing changed by a merge naming an unknown group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_groups_become_one_and_stay_one() {
    let app = spawn_app().await;
    let lookup = json!({"exception": {"type": "KeyError", "message": "'user'"},
        "tags": {"region": "eu"}, "user_id": "u1"});
    let attr = json!({"exception": {"type": "AttributeError", "message": "'NoneType' has no attribute 'user'"},
        "tags": {"region": "us"}, "user_id": "u2"});
    let mut loud = String::new();
    for _ in 0..3 {
        loud = s(&app.capture(lookup.clone()).await["group_id"]);
    }
    let quiet = s(&app.capture(attr.clone()).await["group_id"]);
    let (_, other) = app.capture_text("an unrelated issue").await;
    assert_ne!(loud, quiet);

    // Refusals, by field; nothing changes.
    for (body, status) in [
        (json!({"error_group_ids": [loud]}), 422),
        (json!({"error_group_ids": [loud, loud]}), 422),
        (json!({"error_group_ids": [loud, "not-a-uuid"]}), 400),
        (json!({"error_group_ids": []}), 422),
    ] {
        let (got, b) = app.post("/v1/errors/merge", &body).await;
        assert_eq!(got.as_u16(), status, "{body}: {b}");
        assert_detail_field(&b["error"], "error_group_ids");
    }
    let unknown = uuid::Uuid::new_v4().to_string();
    let (status, b) = app
        .post(
            "/v1/errors/merge",
            &json!({"error_group_ids": [quiet, unknown]}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{b}");
    assert_eq!(n(&app.group(&quiet).await["count"]), 1);

    // The louder group is kept, whichever comes first.
    let r = app
        .post_ok(
            "/v1/errors/merge",
            &json!({"error_group_ids": [quiet, loud]}),
        )
        .await;
    assert_eq!(r["ok"], json!(true));
    assert_eq!(r["error_group"]["id"], json!(loud));
    assert_eq!(n(&r["error_group"]["count"]), 4);
    assert_eq!(r["merged_error_group_ids"], json!([quiet]));
    assert_eq!(n(&r["moved_events"]), 1);
    let (status, _) = app.get(&format!("/v1/errors/group_detail/{quiet}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let d = app.group(&loud).await;
    assert_eq!(n(&d["count"]), 4);
    assert_eq!(n(&d["users_affected"]), 2, "{d}");
    let tags = arr(&d["top_tags"]);
    for (region, count) in [("eu", 3), ("us", 1)] {
        assert!(
            tags.contains(&json!({"key": "region", "value": region, "count": count})),
            "{d}"
        );
    }
    let trend: u64 = arr(&d["trend"]).iter().map(|p| n(&p["count"])).sum();
    assert_eq!(trend, 4, "{d}");
    let events = app.get_ok(&format!("/v1/errors/events/{loud}")).await;
    assert_eq!(arr(&events["events"]).len(), 4, "{events}");
    let tagged = app.list_all("tag=region:us").await;
    assert_eq!(tagged.len(), 1);
    assert_eq!(tagged[0]["group_id"], json!(loud));

    // The merged group's next event joins the kept one.
    let again = app.capture(attr).await;
    assert_eq!(again["group_id"], json!(loud));
    assert_eq!(n(&app.group(&loud).await["count"]), 5);

    // gRPC takes the same merge.
    let r = app
        .groups_client()
        .await
        .merge_groups(app.req(pb::MergeGroupsRequest {
            group_ids: vec![other.clone(), loud.clone()],
        }))
        .await
        .expect("MergeGroups")
        .into_inner();
    let group = r.group.expect("the merged group");
    assert_eq!((group.id.as_str(), group.count), (loud.as_str(), 6));
    assert_eq!((r.merged_group_ids, r.moved_events), (vec![other], 1));
}

/// Unmerging, as Sentry's "Merged issues" tab does it: a merged group lists its grouping keys
/// with the events that came by each; moving one issue's keys to a new group takes its events,
/// tag counts and hourly counts along, leaves the rest (status and assignee too) with the
/// group, records both sides in the activity, and the moved keys' next events join the new
/// group. Moving the key the group is named by renames the group by a key it keeps. Over REST
/// and gRPC on either database, with refusals by field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmerged_keys_take_their_events_to_a_new_group() {
    let app = spawn_app().await;
    let lookup = json!({"exception": {"type": "KeyError", "message": "'user'",
        "stacktrace": "Traceback (most recent call last):\n  File \"app/views.py\", line 10, in show\n    user = row['user']\nKeyError: 'user'"},
        "tags": {"region": "eu"}, "user_id": "u1", "release": "1.0"});
    let attr = json!({"exception": {"type": "AttributeError", "message": "'NoneType' has no attribute 'user'",
        "stacktrace": "Traceback (most recent call last):\n  File \"app/models.py\", line 20, in owner\n    return self.user\nAttributeError: 'NoneType' has no attribute 'user'"},
        "tags": {"region": "us"}, "user_id": "u2", "release": "2.0"});
    let mut loud = String::new();
    let mut loud_event = String::new();
    for _ in 0..3 {
        let b = app.capture(lookup.clone()).await;
        loud = s(&b["group_id"]);
        loud_event = s(&b["event_id"]);
    }
    let b = app.capture(attr.clone()).await;
    let (quiet, quiet_event) = (s(&b["group_id"]), s(&b["event_id"]));
    let loud_keys = event_keys(&app, &loud_event).await;
    let quiet_keys = event_keys(&app, &quiet_event).await;
    let assigned = app
        .post_ok(&format!("/v1/errors/ignore/{loud}"), &json!({}))
        .await;
    assert_eq!(assigned["status"], json!("ignored"), "{assigned}");
    app.post_ok(
        "/v1/errors/merge",
        &json!({"error_group_ids": [loud, quiet]}),
    )
    .await;

    // The merged group lists both issues' keys, the louder first, each with its newest event.
    let listed = app.get_ok(&format!("/v1/errors/hashes/{loud}")).await;
    assert_eq!(listed["error_group_id"], json!(loud));
    assert_eq!(n(&listed["other_events"]), 0, "{listed}");
    let hashes = arr(&listed["hashes"]);
    assert_eq!(hashes.len(), loud_keys.len() + quiet_keys.len(), "{listed}");
    let first = &hashes[0];
    assert_eq!(first["hash"], json!(loud_keys[0]), "{listed}");
    assert_eq!((n(&first["events"]), &first["primary"]), (3, &json!(true)));
    assert_eq!(first["kind"], json!("in_app"), "{listed}");
    assert_eq!(first["latest_event"]["id"], json!(loud_event), "{listed}");
    let by_quiet = hashes
        .iter()
        .find(|h| h["hash"] == json!(quiet_keys[0]))
        .expect("the merged issue's key");
    assert_eq!(n(&by_quiet["events"]), 1, "{listed}");
    assert_eq!(by_quiet["primary"], json!(false));
    assert_eq!(by_quiet["latest_event"]["id"], json!(quiet_event));
    let total: u64 = hashes.iter().map(|h| n(&h["events"])).sum();
    assert_eq!(
        total, 4,
        "each event counted once, by its first key: {listed}"
    );

    // Refusals, by field; nothing changes.
    let unmerge = format!("/v1/errors/unmerge/{loud}");
    let all: Vec<&String> = loud_keys.iter().chain(&quiet_keys).collect();
    for body in [
        json!({}),
        json!({"hashes": []}),
        json!({"hashes": ["nothex"]}),
        json!({"hashes": [quiet_keys[0], quiet_keys[0]]}),
        json!({"hashes": ["0123456789abcdef0123456789abcdef"]}),
        json!({"hashes": all}),
    ] {
        let (got, b) = app.post(&unmerge, &body).await;
        assert_eq!(got, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {b}");
        assert_detail_field(&b["error"], "hashes");
    }
    let (got, b) = app
        .post(
            &format!("/v1/errors/unmerge/{}", uuid::Uuid::new_v4()),
            &json!({"hashes": quiet_keys}),
        )
        .await;
    assert_eq!(got, StatusCode::NOT_FOUND, "{b}");
    let (got, _) = app
        .post(
            "/v1/errors/unmerge/not-a-uuid",
            &json!({"hashes": quiet_keys}),
        )
        .await;
    assert_eq!(got, StatusCode::BAD_REQUEST);
    let (got, _) = app.get("/v1/errors/hashes/not-a-uuid").await;
    assert_eq!(got, StatusCode::BAD_REQUEST);
    assert_eq!(n(&app.group(&loud).await["count"]), 4);

    // The merged issue's keys go, with its event, to a new group.
    let r = app.post_ok(&unmerge, &json!({"hashes": quiet_keys})).await;
    assert_eq!(r["ok"], json!(true));
    assert_eq!(n(&r["moved_events"]), 1, "{r}");
    assert_eq!(r["error_group"]["id"], json!(loud));
    assert_eq!(n(&r["error_group"]["count"]), 3);
    assert_eq!(r["error_group"]["status"], json!("ignored"), "{r}");
    let new = s(&r["new_error_group"]["id"]);
    assert_ne!(new, loud);
    assert_ne!(new, quiet, "a new group, not the one merged away");
    let ng = &r["new_error_group"];
    assert_eq!(n(&ng["count"]), 1, "{r}");
    assert_eq!(ng["status"], json!("unresolved"));
    assert_eq!(
        ng["title"],
        json!("AttributeError: 'NoneType' has no attribute 'user'"),
        "{r}"
    );
    assert_eq!(ng["fingerprint"], json!(quiet_keys[0]));
    let d = app.group(&loud).await;
    assert_eq!((n(&d["count"]), n(&d["users_affected"])), (3, 1), "{d}");
    assert_eq!(d["title"], json!("KeyError: 'user'"), "{d}");
    assert!(
        !arr(&d["top_tags"])
            .iter()
            .any(|t| t["value"] == json!("us")),
        "{d}"
    );
    let trend: u64 = arr(&d["trend"]).iter().map(|p| n(&p["count"])).sum();
    assert_eq!(trend, 3, "{d}");
    let d = app.group(&new).await;
    assert_eq!((n(&d["count"]), n(&d["users_affected"])), (1, 1), "{d}");
    assert!(
        arr(&d["top_tags"]).contains(&json!({"key": "region", "value": "us", "count": 1})),
        "{d}"
    );
    assert_eq!(arr(&d["releases"]), &vec![json!("2.0")], "{d}");
    let trend: u64 = arr(&d["trend"]).iter().map(|p| n(&p["count"])).sum();
    assert_eq!(trend, 1, "{d}");
    let events = app.get_ok(&format!("/v1/errors/events/{new}")).await;
    assert_eq!(ids(arr(&events["events"])), vec![quiet_event.clone()]);
    let tagged = app.list_all("tag=region:us").await;
    assert_eq!(tagged[0]["group_id"], json!(new));
    let ev = app.event(&quiet_event).await;
    assert_eq!(ev["group_id"], json!(new));
    assert!(
        arr(&ev["grouping"]["variants"])
            .iter()
            .filter(|v| v["version"] == ev["grouping"]["version"])
            .all(|v| v["matches_group"] == json!(true)),
        "{ev}"
    );
    let listed = app.get_ok(&format!("/v1/errors/hashes/{loud}")).await;
    assert_eq!(arr(&listed["hashes"]).len(), loud_keys.len(), "{listed}");

    // Both sides say so in their activity.
    let act = app.get_ok(&format!("/v1/errors/activity/{loud}")).await;
    let entry = arr(&act["activity"])
        .iter()
        .find(|a| a["type"] == json!("unmerge_source"))
        .unwrap_or_else(|| panic!("{act}"));
    assert_eq!(
        entry["data"],
        json!({"hashes": quiet_keys.iter().collect::<std::collections::BTreeSet<_>>(),
            "destination_error_group_id": new, "events": 1})
    );
    let act = app.get_ok(&format!("/v1/errors/activity/{new}")).await;
    let entry = arr(&act["activity"])
        .iter()
        .find(|a| a["type"] == json!("unmerge_destination"))
        .unwrap_or_else(|| panic!("{act}"));
    assert_eq!(entry["data"]["source_error_group_id"], json!(loud), "{act}");

    // Later events go where their keys now are.
    assert_eq!(app.capture(attr.clone()).await["group_id"], json!(new));
    assert_eq!(app.capture(lookup.clone()).await["group_id"], json!(loud));
    assert_eq!(n(&app.group(&new).await["count"]), 2);

    // gRPC: merged back, then the group's own key (its fingerprint) is moved out; the group
    // is then named by a key it keeps, and the moved key names the new group.
    let mut grpc = app.groups_client().await;
    grpc.merge_groups(app.req(pb::MergeGroupsRequest {
        group_ids: vec![loud.clone(), new.clone()],
    }))
    .await
    .expect("MergeGroups");
    let keys = grpc
        .list_group_hashes(app.req(pb::ListGroupHashesRequest {
            group_id: loud.clone(),
        }))
        .await
        .expect("ListGroupHashes")
        .into_inner();
    assert_eq!(keys.hashes.len(), loud_keys.len() + quiet_keys.len());
    assert_eq!(keys.hashes[0].events, 4);
    assert!(keys.hashes[0].primary);
    let r = grpc
        .unmerge_group(app.req(pb::UnmergeGroupRequest {
            group_id: loud.clone(),
            hashes: loud_keys.clone(),
        }))
        .await
        .expect("UnmergeGroup")
        .into_inner();
    assert_eq!(r.moved_events, 4);
    let (kept, moved) = (r.group.expect("group"), r.new_group.expect("new group"));
    assert_eq!((kept.id.as_str(), kept.count), (loud.as_str(), 2));
    assert_eq!(kept.fingerprint, quiet_keys[0]);
    assert_eq!(
        (moved.count, moved.fingerprint.as_str()),
        (4, loud_keys[0].as_str())
    );
    assert_eq!(app.capture(lookup).await["group_id"], json!(moved.id));
    assert_eq!(app.capture(attr).await["group_id"], json!(loud));
    let st = grpc
        .unmerge_group(app.req(pb::UnmergeGroupRequest {
            group_id: loud.clone(),
            hashes: vec!["xyz".into()],
        }))
        .await
        .expect_err("not a key");
    assert_status(
        &st,
        tonic::Code::InvalidArgument,
        "VALIDATION_ERROR",
        Some("hashes"),
    );
}

/// User feedback over the native API: linked to the event it names by Faultline's id (REST
/// and gRPC), or to none; the comments are required, fields are bounded, an event id must be
/// a UUID; the list filters by group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_feedback_is_taken_and_listed_with_its_event() {
    let app = spawn_app().await;
    let b = app
        .capture(json!({"message": "checkout button does nothing"}))
        .await;
    let (event, group) = (s(&b["event_id"]), s(&b["group_id"]));
    let (st, r) = app
        .post(
            "/v1/errors/feedback",
            &json!({"event_id": event, "name": "Ana", "email": "ana@example.com",
                "comments": "  I clicked twice.  ", "url": "https://shop.example.com/cart"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{r}");
    let f = &r["feedback"];
    assert_eq!(f["comments"], "I clicked twice.");
    assert_eq!(
        (&f["stored_event_id"], &f["error_group_id"]),
        (&json!(event), &json!(group))
    );
    for (body, status, field) in [
        (json!({"comments": "   "}), 422, "comments"),
        (
            json!({"comments": "x", "name": "n".repeat(201)}),
            422,
            "name",
        ),
        (
            json!({"comments": "x", "event_id": "nope"}),
            400,
            "event_id",
        ),
    ] {
        let (st, b) = app.post("/v1/errors/feedback", &body).await;
        assert_eq!(st.as_u16(), status, "{body}: {b}");
        assert_detail_field(&b["error"], field);
    }
    let (st, _) = app
        .post(
            "/v1/errors/feedback",
            &json!({"comments": "x", "rating": 5}),
        )
        .await;
    assert_eq!(
        st,
        StatusCode::UNPROCESSABLE_ENTITY,
        "an unknown field is refused"
    );

    // gRPC, about no event.
    let stored = app
        .capture_client()
        .await
        .submit_feedback(app.req(pb::SubmitFeedbackRequest {
            comments: "The app is slow today.".into(),
            ..Default::default()
        }))
        .await
        .expect("SubmitFeedback")
        .into_inner()
        .feedback
        .expect("the feedback");
    assert!(stored.event_id.is_empty() && stored.group_id.is_empty());
    let all = app.get_ok("/v1/errors/feedback").await;
    let comments: Vec<String> = arr(&all["feedback"])
        .iter()
        .map(|f| s(&f["comments"]))
        .collect();
    assert_eq!(comments, ["The app is slow today.", "I clicked twice."]);
    assert_eq!(all["next_cursor"], Value::Null);
    let mine = app
        .get_ok(&format!("/v1/errors/feedback?error_group_id={group}"))
        .await;
    assert_eq!(arr(&mine["feedback"]).len(), 1, "{mine}");
    let (st, _) = app.get("/v1/errors/feedback?cursor=garbage").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_detail_aggregates() {
    let app = spawn_app().await;
    let mut gid = String::new();
    let mut stamps = Vec::new();
    for (browser, user, release, env) in [
        ("firefox", "u1", "1.0", "production"),
        ("firefox", "u2", "1.1", "production"),
        ("chrome", "u1", "1.1", "staging"),
    ] {
        let b = app
            .capture(
                json!({"message": "detail issue", "tags": {"browser": browser}, "user_id": user,
                "release": release, "environment": env}),
            )
            .await;
        gid = s(&b["group_id"]);
        stamps.push(time(&app.event(&s(&b["event_id"])).await["timestamp"]));
    }
    app.capture_text("another issue").await;
    let before_detail = Utc::now();
    let d = app.group(&gid).await;
    assert_group_shape(&d);
    assert_eq!(d["id"], json!(gid));
    assert_eq!(n(&d["count"]), 3);
    assert_eq!(d["title"], json!("detail issue"));
    assert_eq!(d["status"], json!("unresolved"));
    assert_eq!(d["regressed"], json!(false));
    assert_eq!(n(&d["users_affected"]), 2, "u1 and u2: {d}");
    let mut releases: Vec<String> = arr(&d["releases"]).iter().map(s).collect();
    releases.sort();
    assert_eq!(releases, vec!["1.0", "1.1"]);
    let mut envs: Vec<String> = arr(&d["environments"]).iter().map(s).collect();
    envs.sort();
    assert_eq!(envs, vec!["production", "staging"]);
    let tags = arr(&d["top_tags"]);
    assert_eq!(
        tags[0],
        json!({"key": "browser", "value": "firefox", "count": 2}),
        "most frequent first: {d}"
    );
    assert!(
        tags.contains(&json!({"key": "browser", "value": "chrome", "count": 1})),
        "{d}"
    );
    let trend = arr(&d["trend"]);
    assert_eq!(trend.len(), 24, "24 hourly points: {d}");
    let hours: Vec<_> = trend.iter().map(|p| time(&p["hour"])).collect();
    for w in hours.windows(2) {
        assert_eq!(
            w[1] - w[0],
            chrono::Duration::hours(1),
            "consecutive hours, oldest first: {hours:?}"
        );
    }
    let total: u64 = trend.iter().map(|p| n(&p["count"])).sum();
    assert_eq!(total, 3, "trend counts the group's events: {d}");
    for t in &stamps {
        let hour = t.duration_trunc(chrono::Duration::hours(1)).unwrap();
        let point = trend
            .iter()
            .find(|p| time(&p["hour"]) == hour)
            .unwrap_or_else(|| panic!("no trend point for the event's hour {hour}: {d}"));
        assert!(n(&point["count"]) >= 1);
    }
    let last = *hours.last().unwrap();
    let (h_before, h_after) = (hour_of(before_detail), hour_of(Utc::now()));
    assert!(
        last == h_before || last == h_after,
        "the last trend point is the current hour ({h_before}), got {last}"
    );
    // The group's events.
    let p = app.get_ok(&format!("/v1/errors/events/{gid}")).await;
    let (events, next) = assert_page(&p);
    assert_eq!(events.len(), 3);
    assert!(next.is_none());
    assert!(events.iter().all(|e| e["group_id"] == json!(gid)));
    let p1 = app
        .get_ok(&format!("/v1/errors/events/{gid}?limit=2"))
        .await;
    let (e1, c1) = assert_page(&p1);
    assert_eq!(e1.len(), 2);
    let p2 = app
        .get_ok(&format!(
            "/v1/errors/events/{gid}?limit=2&cursor={}",
            enc(&c1.expect("a second page"))
        ))
        .await;
    let (e2, c2) = assert_page(&p2);
    assert_eq!(e2.len(), 1);
    assert!(c2.is_none());
    let mut all = ids(&e1);
    all.extend(ids(&e2));
    assert_eq!(
        all,
        ids(&events),
        "paged group events equal the full listing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_unresolve_ignore_and_regression() {
    let app = spawn_app().await;
    let (_, g) = app.capture_text("flaky thing broke").await;

    let r = app
        .post_ok(&format!("/v1/errors/resolve/{g}"), &json!({}))
        .await;
    assert_group_shape(&r);
    assert_eq!(r["id"], json!(g));
    assert_eq!(r["status"], json!("resolved"));
    assert_eq!(app.group(&g).await["status"], json!("resolved"));

    // A new event reopens it as a regression.
    let (_, g2) = app.capture_text("flaky thing broke").await;
    assert_eq!(g2, g);
    let d = app.group(&g).await;
    assert_eq!(
        d["status"],
        json!("unresolved"),
        "a new event reopens a resolved group: {d}"
    );
    assert_eq!(d["regressed"], json!(true), "and marks it regressed: {d}");
    assert_eq!(n(&d["count"]), 2);

    // Ignore: stays ignored, still counts.
    let r = app
        .post_ok(&format!("/v1/errors/ignore/{g}"), &json!({}))
        .await;
    assert_eq!(r["status"], json!("ignored"));
    let before = time(&r["last_seen"]);
    tokio::time::sleep(Duration::from_millis(5)).await;
    app.capture_text("flaky thing broke").await;
    let d = app.group(&g).await;
    assert_eq!(
        d["status"],
        json!("ignored"),
        "ignored groups stay ignored: {d}"
    );
    assert_eq!(n(&d["count"]), 3, "but keep counting: {d}");
    assert!(time(&d["last_seen"]) >= before);

    // Unresolve.
    let r = app
        .post_ok(&format!("/v1/errors/unresolve/{g}"), &json!({}))
        .await;
    assert_group_shape(&r);
    assert_eq!(r["status"], json!("unresolved"));
    assert_eq!(app.group(&g).await["status"], json!("unresolved"));

    // Unknown ids.
    let missing = uuid::Uuid::new_v4();
    for action in ["resolve", "unresolve", "ignore"] {
        let path = format!("/v1/errors/{action}/{missing}");
        let r = app.send(app.authed(Method::POST, &path)).await;
        assert_error(&r, 404, "NOT_FOUND", "POST", &path);
    }
}

/// Resolved in the next release, as Sentry users do when the fix ships with the next deploy:
/// the issue is resolved in the project's latest release; events still coming from that
/// release or older ones do not reopen it, a later release's do (REST in both spellings, and
/// gRPC). In a project that has seen no release it is refused by field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolved_in_next_release_reopens_on_the_next_release_only() {
    let app = spawn_app().await;
    let mut groups = app.groups_client().await;

    // No release to resolve in yet: refused by field, over both; the issue is left as it was.
    let (_, bare) = app.capture_text("no release here").await;
    let bare_path = format!("/v1/errors/resolve/{bare}");
    let r = app
        .send(
            app.authed(Method::POST, &bare_path)
                .json(&json!({"in_next_release": true})),
        )
        .await;
    assert_error(&r, 422, "VALIDATION_ERROR", "POST", &bare_path);
    assert!(r.text.contains("in_next_release"), "{}", r.text);
    let refused = groups
        .resolve_group(app.req(pb::ResolveGroupRequest {
            group_id: bare.clone(),
            in_next_release: true,
        }))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert_eq!(app.group(&bare).await["status"], json!("unresolved"));

    let cart = |release: &str| json!({"message": "cart total is NaN", "release": release});
    let g = s(&app.capture(cart("shop@1.4.2")).await["group_id"]);
    assert_eq!(app.group(&g).await["last_release"], json!("shop@1.4.2"));
    let path = format!("/v1/errors/resolve/{g}");
    let r = app.post_ok(&path, &json!({"in_next_release": true})).await;
    assert_group_shape(&r);
    assert_eq!(r["status"], json!("resolved"));
    assert_eq!(r["resolved_in_release"], json!("shop@1.4.2"));

    app.capture(cart("shop@1.4.2")).await;
    let d = app.group(&g).await;
    assert_eq!(
        (&d["status"], n(&d["count"])),
        (&json!("resolved"), 2),
        "{d}"
    );
    app.capture(cart("shop@1.5.0")).await;
    let d = app.group(&g).await;
    assert_eq!(d["status"], json!("unresolved"), "{d}");
    assert_eq!(d["regressed"], json!(true));
    assert_eq!(d["resolved_in_release"], Value::Null);
    assert_eq!(d["last_release"], json!("shop@1.5.0"));

    // Sentry's spelling. The old deploy still sending from 1.4.2 does not reopen it.
    let r = app.post_ok(&path, &json!({"inNextRelease": true})).await;
    assert_eq!(r["resolved_in_release"], json!("shop@1.5.0"));
    app.capture(cart("shop@1.4.2")).await;
    let d = app.group(&g).await;
    assert_eq!(
        (&d["status"], &d["resolved_in_release"], n(&d["count"])),
        (&json!("resolved"), &json!("shop@1.5.0"), 4),
        "{d}"
    );
    // A plain resolve afterwards forgets the release.
    let r = app.post_ok(&path, &json!({})).await;
    assert_eq!(r["resolved_in_release"], Value::Null);
    app.capture(cart("shop@1.5.0")).await;
    assert_eq!(app.group(&g).await["status"], json!("unresolved"));

    // gRPC: in the project's latest release, not the group's latest event's.
    app.capture(json!({"message": "another issue", "release": "shop@1.6.0"}))
        .await;
    let resolved = groups
        .resolve_group(app.req(pb::ResolveGroupRequest {
            group_id: g.clone(),
            in_next_release: true,
        }))
        .await
        .unwrap()
        .into_inner()
        .group
        .unwrap();
    assert_eq!(resolved.resolved_in_release.as_deref(), Some("shop@1.6.0"));
    assert_eq!(resolved.last_release, "shop@1.5.0");
}

/// Ignoring for a while, as Sentry users do: until N more events (the last of them brings the
/// group back unresolved), for some minutes (Sentry's spelling too), over REST and gRPC, with
/// out-of-range and mistyped conditions refused by field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_until_more_events_or_for_a_while() {
    let app = spawn_app().await;
    let (_, g) = app.capture_text("noisy retry loop").await;
    let path = format!("/v1/errors/ignore/{g}");

    let r = app.post_ok(&path, &json!({"ignore_count": 2})).await;
    assert_group_shape(&r);
    assert_eq!(r["status"], json!("ignored"));
    assert_eq!(r["ignored_until_count"], json!(3), "{r}");
    assert_eq!(r["ignored_until"], Value::Null);
    app.capture_text("noisy retry loop").await;
    assert_eq!(app.group(&g).await["status"], json!("ignored"));
    app.capture_text("noisy retry loop").await;
    let d = app.group(&g).await;
    assert_eq!(
        d["status"],
        json!("unresolved"),
        "the second event more: {d}"
    );
    assert_eq!(d["regressed"], json!(false));
    assert_eq!(d["ignored_until_count"], Value::Null);

    // Sentry's spelling; minutes from now.
    let before = chrono::Utc::now();
    let r = app.post_ok(&path, &json!({"ignoreDuration": 60})).await;
    let until = time(&r["ignored_until"]);
    let hour = chrono::Duration::minutes(60);
    assert!(until >= before + hour - chrono::Duration::seconds(1), "{r}");
    assert!(until <= chrono::Utc::now() + hour, "{r}");
    app.capture_text("noisy retry loop").await;
    assert_eq!(app.group(&g).await["status"], json!("ignored"));

    // The document's own body, and none at all: ignored until changed, no snooze left.
    for body in [Some(json!({"error_group_id": g})), None] {
        let mut req = app.authed(Method::POST, &path);
        if let Some(body) = &body {
            req = req.json(body);
        }
        let r = app.send(req).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["status"], json!("ignored"));
        assert_eq!(r.body["ignored_until"], Value::Null);
        assert_eq!(r.body["ignored_until_count"], Value::Null);
    }

    for (body, field) in [
        (json!({"ignore_duration": 0}), "ignore_duration"),
        (json!({"ignore_count": 0}), "ignore_count"),
        (json!({"ignore_duration": "soon"}), "ignore_duration"),
        (json!({"ignoreCount": -1}), "ignoreCount"),
    ] {
        let r = app.send(app.authed(Method::POST, &path).json(&body)).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
        assert!(r.text.contains(field), "{body}: {}", r.text);
    }
    let r = app
        .send(app.authed(Method::POST, &path).body("{\"ignore_count\": 2"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);

    // gRPC: the same fields; out of range is INVALID_ARGUMENT.
    let mut groups = app.groups_client().await;
    let ignored = groups
        .ignore_group(app.req(pb::IgnoreGroupRequest {
            group_id: g.clone(),
            ignore_duration: Some(30),
            ignore_count: Some(100),
            ignore_user_count: None,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .group
        .unwrap();
    assert!(ignored.ignored_until.is_some());
    assert_eq!(ignored.ignored_until_count, Some(ignored.count + 100));
    let refused = groups
        .ignore_group(app.req(pb::IgnoreGroupRequest {
            group_id: g.clone(),
            ignore_duration: Some(600_000),
            ignore_count: None,
            ignore_user_count: None,
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    // Unresolving ends the snooze.
    let r = app
        .post_ok(&format!("/v1/errors/unresolve/{g}"), &json!({}))
        .await;
    assert_eq!(
        (&r["ignored_until"], &r["ignored_until_count"]),
        (&Value::Null, &Value::Null)
    );

    // In bulk: the same conditions for every group, checked before any changes.
    let count = n(&r["count"]);
    let bulk = |extra: Value| {
        let mut body = json!({"error_group_ids": [g], "action": "ignore"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let (st, b) = app
        .post("/v1/errors/bulk", &bulk(json!({"ignore_duration": 0})))
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(app.group(&g).await["status"], json!("unresolved"));
    let (st, b) = app
        .post("/v1/errors/bulk", &bulk(json!({"ignoreCount": 5})))
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let d = app.group(&g).await;
    assert_eq!(d["status"], json!("ignored"));
    assert_eq!(n(&d["ignored_until_count"]), count + 5, "{d}");
}

/// Ignoring until more users are affected, as Sentry's "until it affects N more users": the
/// group counts the users it has affected so far and comes back unresolved (not regressed)
/// once its events have affected as many more; events of users it had already, and events
/// without a user, do not count. Over REST (Sentry's spelling too), in bulk and over gRPC,
/// out-of-range refused by field; any change of status ends the snooze.
/// The group `g` once the snooze job has brought it back unresolved (waiting up to 10 s for
/// `what`).
async fn back_unresolved(app: &TestApp, g: &str, what: &str) -> Value {
    poll_until(Duration::from_secs(10), what, || async move {
        let d = app.group(g).await;
        (d["status"] == json!("unresolved")).then_some(d)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_until_more_users_are_affected() {
    let app = spawn_app().await;
    let capture = |user: &str| {
        let app = &app;
        let mut body = json!({"message": "checkout timed out"});
        if !user.is_empty() {
            body["user_id"] = json!(user);
        }
        async move { s(&app.capture(body).await["group_id"]) }
    };
    let g = capture("ana").await;
    capture("ben").await;
    let path = format!("/v1/errors/ignore/{g}");
    let r = app.post_ok(&path, &json!({"ignore_user_count": 2})).await;
    assert_group_shape(&r);
    assert_eq!(r["status"], json!("ignored"));
    assert_eq!(r["ignored_until_user_count"], json!(4), "{r}");
    assert_eq!(
        (&r["ignored_until"], &r["ignored_until_count"]),
        (&Value::Null, &Value::Null)
    );
    let activity = app.get_ok(&format!("/v1/errors/activity/{g}")).await;
    let newest = &arr(&activity["activity"])[0];
    assert_eq!(newest["type"], json!("set_ignored"), "{activity}");
    assert_eq!(newest["data"]["ignore_user_count"], json!(2), "{newest}");

    // A user it had, a new one and no user: one more of two.
    for user in ["ana", "cy", ""] {
        capture(user).await;
    }
    // The job looks every 200 ms here: ten looks leave it ignored.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let d = app.group(&g).await;
    assert_eq!(d["status"], json!("ignored"), "{d}");
    assert_eq!(n(&d["users_affected"]), 3, "{d}");

    capture("dee").await;
    let d = back_unresolved(&app, &g, "the fourth user to bring the group back").await;
    assert_eq!(d["regressed"], json!(false), "{d}");
    assert_eq!(d["ignored_until_user_count"], Value::Null, "{d}");
    let activity = app.get_ok(&format!("/v1/errors/activity/{g}")).await;
    let newest = &arr(&activity["activity"])[0];
    assert_eq!(newest["type"], json!("set_unresolved"), "{activity}");
    assert_eq!(newest["data"]["snooze_end"], json!("user_count_reached"));
    assert_eq!(newest["actor"], Value::Null, "Faultline did it: {newest}");

    // Sentry's spelling, in bulk: from the four it has now.
    let (st, b) = app
        .post(
            "/v1/errors/bulk",
            &json!({"error_group_ids": [g], "action": "ignore", "ignoreUserCount": 10}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(app.group(&g).await["ignored_until_user_count"], json!(14));
    // Resolving ends the snooze.
    let r = app
        .post_ok(&format!("/v1/errors/resolve/{g}"), &json!({}))
        .await;
    assert_eq!(r["ignored_until_user_count"], Value::Null, "{r}");

    for body in [
        json!({"ignore_user_count": 0}),
        json!({"ignoreUserCount": 1_000_000_001u64}),
    ] {
        let r = app.send(app.authed(Method::POST, &path).json(&body)).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
        assert!(r.text.contains("ignore_user_count"), "{body}: {}", r.text);
    }
    let mut groups = app.groups_client().await;
    let ignored = groups
        .ignore_group(app.req(pb::IgnoreGroupRequest {
            group_id: g.clone(),
            ignore_user_count: Some(1),
            ..Default::default()
        }))
        .await
        .expect("IgnoreGroup")
        .into_inner()
        .group
        .unwrap();
    assert_eq!(ignored.ignored_until_user_count, Some(5));
    let refused = groups
        .ignore_group(app.req(pb::IgnoreGroupRequest {
            group_id: g.clone(),
            ignore_user_count: Some(0),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_status(
        &refused,
        tonic::Code::InvalidArgument,
        "VALIDATION_ERROR",
        Some("ignore_user_count"),
    );
}

/// Sentry's "until it occurs N times per hour" and "until it affects N users per hour": a
/// count with a window counts only what arrived within the window, and the snooze job brings
/// the group back once it is reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_until_a_rate_of_events_or_users() {
    let app = spawn_app().await;
    let capture = |message: &str, user: &str| {
        let app = &app;
        let body = json!({"message": message, "user_id": user});
        async move { s(&app.capture(body).await["group_id"]) }
    };
    let g = capture("queue overflow", "ana").await;
    for user in ["ben", "cy", "dee"] {
        capture("queue overflow", user).await;
    }
    let u = capture("slow checkout", "ana").await;
    capture("slow checkout", "ben").await;
    // All six arrived two hours ago: outside any window of an hour.
    app.run_sql(&["UPDATE events SET timestamp = timestamp - 7200000, \
                   received_at = received_at - 7200000"])
        .await;

    let r = app
        .post_ok(
            &format!("/v1/errors/ignore/{g}"),
            &json!({"ignore_count": 3, "ignore_window": 60}),
        )
        .await;
    assert_group_shape(&r);
    assert_eq!(r["status"], json!("ignored"));
    assert_eq!(
        r["ignored_until_rate"],
        json!({"count": 3, "window": 60}),
        "{r}"
    );
    assert_eq!(
        r["ignored_until_count"],
        Value::Null,
        "a rate, not a total: {r}"
    );
    let activity = app.get_ok(&format!("/v1/errors/activity/{g}")).await;
    let data = &arr(&activity["activity"])[0]["data"];
    assert_eq!(
        (&data["ignore_count"], &data["ignore_window"]),
        (&json!(3), &json!(60)),
        "{activity}"
    );
    // Sentry's spelling, by users.
    let r = app
        .post_ok(
            &format!("/v1/errors/ignore/{u}"),
            &json!({"ignoreUserCount": 2, "ignoreUserWindow": 60}),
        )
        .await;
    assert_eq!(
        r["ignored_until_user_rate"],
        json!({"count": 2, "window": 60}),
        "{r}"
    );
    assert_eq!(r["ignored_until_user_count"], Value::Null, "{r}");

    // Two events in the window (six in all, four before), and one user twice.
    capture("queue overflow", "eve").await;
    capture("queue overflow", "eve").await;
    capture("slow checkout", "ana").await;
    capture("slow checkout", "ana").await;
    // The job looks every 200 ms here: ten looks leave both ignored.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(app.group(&g).await["status"], json!("ignored"));
    assert_eq!(app.group(&u).await["status"], json!("ignored"));

    // The third event within the hour; a second user within the hour.
    capture("queue overflow", "eve").await;
    let d = back_unresolved(&app, &g, "the rate of events").await;
    assert_eq!(d["ignored_until_rate"], Value::Null, "{d}");
    assert_eq!(d["regressed"], json!(false), "{d}");
    let activity = app.get_ok(&format!("/v1/errors/activity/{g}")).await;
    let newest = &arr(&activity["activity"])[0];
    assert_eq!(newest["type"], json!("set_unresolved"), "{activity}");
    assert_eq!(newest["data"]["snooze_end"], json!("count_reached"));
    capture("slow checkout", "ben").await;
    let d = back_unresolved(&app, &u, "the rate of users").await;
    assert_eq!(d["ignored_until_user_rate"], Value::Null, "{d}");
    let activity = app.get_ok(&format!("/v1/errors/activity/{u}")).await;
    let newest = &arr(&activity["activity"])[0];
    assert_eq!(
        newest["data"]["snooze_end"],
        json!("user_count_reached"),
        "{activity}"
    );

    // In bulk, and over gRPC; resolving ends it.
    let (st, b) = app
        .post(
            "/v1/errors/bulk",
            &json!({"error_group_ids": [g, u], "action": "ignore",
                    "ignoreCount": 1000, "ignoreWindow": 1440}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(
        app.group(&u).await["ignored_until_rate"],
        json!({"count": 1000, "window": 1440})
    );
    let r = app
        .post_ok(&format!("/v1/errors/resolve/{u}"), &json!({}))
        .await;
    assert_eq!(r["ignored_until_rate"], Value::Null, "{r}");
    let mut groups = app.groups_client().await;
    let ignored = groups
        .ignore_group(app.req(pb::IgnoreGroupRequest {
            group_id: g.clone(),
            ignore_user_count: Some(5),
            ignore_user_window: Some(10),
            ..Default::default()
        }))
        .await
        .expect("IgnoreGroup")
        .into_inner()
        .group
        .unwrap();
    assert_eq!(
        ignored.ignored_until_user_rate,
        Some(pb::SnoozeRate {
            count: 5,
            window: 10
        })
    );
    assert_eq!(ignored.ignored_until_user_count, None);
    let refused = groups
        .ignore_group(app.req(pb::IgnoreGroupRequest {
            group_id: g.clone(),
            ignore_window: Some(60),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_status(
        &refused,
        tonic::Code::InvalidArgument,
        "VALIDATION_ERROR",
        Some("ignore_count"),
    );

    let path = format!("/v1/errors/ignore/{g}");
    for (body, field) in [
        (
            json!({"ignore_count": 5, "ignore_window": 0}),
            "ignore_window",
        ),
        (
            json!({"ignore_count": 5, "ignoreWindow": 10_081}),
            "ignore_window",
        ),
        (json!({"ignore_user_window": 60}), "ignore_user_count"),
        (
            json!({"ignore_user_count": 5, "ignore_user_window": 0}),
            "ignore_user_window",
        ),
    ] {
        let r = app.send(app.authed(Method::POST, &path).json(&body)).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
        assert!(r.text.contains(field), "{body}: {}", r.text);
    }
    assert_eq!(
        app.group(&g).await["ignored_until_user_rate"]["count"],
        json!(5)
    );
    // A wrong type in the bulk body names its field.
    let (st, b) = app
        .post(
            "/v1/errors/bulk",
            &json!({"error_group_ids": [g], "action": "ignore", "ignoreWindow": "hourly"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_detail_field(&b["error"], "ignoreWindow");
}

/// Sentry's "archive until escalating": the threshold comes from the group's busiest hour of
/// the week before (twice it, at least 10), counted over the last hour; reaching it brings the
/// group back as escalating.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_until_escalating() {
    let app = spawn_app().await;
    let three_hours_ago = (chrono::Utc::now() - chrono::Duration::hours(3))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut g = String::new();
    for _ in 0..8 {
        let r = app
            .capture(json!({"message": "payment webhook retried", "timestamp": three_hours_ago}))
            .await;
        g = s(&r["group_id"]).to_owned();
    }
    // They arrived three hours ago too: outside the last hour.
    app.run_sql(&["UPDATE events SET received_at = received_at - 10800000"])
        .await;
    let path = format!("/v1/errors/ignore/{g}");
    let r = app.post_ok(&path, &json!({"until_escalating": true})).await;
    assert_group_shape(&r);
    assert_eq!(r["status"], json!("ignored"));
    assert_eq!(r["ignored_until_escalating"], json!(true), "{r}");
    // Its busiest hour had 8: twice that within an hour.
    assert_eq!(
        r["ignored_until_rate"],
        json!({"count": 16, "window": 60}),
        "{r}"
    );
    let activity = app.get_ok(&format!("/v1/errors/activity/{g}")).await;
    let data = &arr(&activity["activity"])[0]["data"];
    assert_eq!(data["until_escalating"], json!(true), "{activity}");
    assert_eq!(data["ignore_count"], json!(16), "{activity}");

    for _ in 0..15 {
        app.capture(json!({"message": "payment webhook retried"}))
            .await;
    }
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        app.group(&g).await["status"],
        json!("ignored"),
        "15 in the hour"
    );
    app.capture(json!({"message": "payment webhook retried"}))
        .await;
    let d = back_unresolved(&app, &g, "the group to escalate").await;
    assert_eq!(d["ignored_until_escalating"], json!(false), "{d}");
    assert_eq!(d["ignored_until_rate"], Value::Null, "{d}");
    let activity = app.get_ok(&format!("/v1/errors/activity/{g}")).await;
    let newest = &arr(&activity["activity"])[0];
    assert_eq!(
        newest["data"]["snooze_end"],
        json!("escalating"),
        "{activity}"
    );

    // A new quiet group: at least 10. Sentry's spelling, in bulk; not with a count.
    let q = s(&app.capture(json!({"message": "rare cache miss"})).await["group_id"]).to_owned();
    let (st, b) = app
        .post(
            "/v1/errors/bulk",
            &json!({"error_group_ids": [q], "action": "ignore", "untilEscalating": true}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let quiet = app.group(&q).await;
    assert_eq!(
        quiet["ignored_until_rate"],
        json!({"count": 10, "window": 60}),
        "{quiet}"
    );
    let r = app
        .send(
            app.authed(Method::POST, &path)
                .json(&json!({"until_escalating": true, "ignore_count": 5})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("until_escalating"), "{}", r.text);
    let mut groups = app.groups_client().await;
    let ignored = groups
        .ignore_group(app.req(pb::IgnoreGroupRequest {
            group_id: q.clone(),
            until_escalating: true,
            ..Default::default()
        }))
        .await
        .expect("IgnoreGroup")
        .into_inner()
        .group
        .unwrap();
    assert!(ignored.ignored_until_escalating);
    // Resolving ends it.
    let r = app
        .post_ok(&format!("/v1/errors/resolve/{q}"), &json!({}))
        .await;
    assert_eq!(r["ignored_until_escalating"], json!(false), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_group_removes_its_events() {
    let app = spawn_app().await;
    let (e1, g) = app.capture_text("doomed issue").await;
    let (e2, _) = app.capture_text("doomed issue").await;
    let (keep, kg) = app.capture_text("kept issue").await;

    let (st, b) = app.delete(&format!("/v1/errors/delete/{g}")).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(
        b,
        json!({"ok": true, "deleted": true, "error_group_id": g, "deleted_events": 2})
    );

    for path in [
        format!("/v1/errors/group_detail/{g}"),
        format!("/v1/errors/events/{g}"),
        format!("/v1/errors/get/{e1}"),
        format!("/v1/errors/get/{e2}"),
    ] {
        let r = app.send(app.authed(Method::GET, &path)).await;
        assert_error(&r, 404, "NOT_FOUND", "GET", &path);
    }
    let path = format!("/v1/errors/delete/{g}");
    let r = app.send(app.authed(Method::DELETE, &path)).await;
    assert_error(&r, 404, "NOT_FOUND", "DELETE", &path);
    assert_eq!(
        ids(&app.list_all("").await),
        vec![keep.clone()],
        "only the other group's event is left"
    );
    let groups = app.get_ok("/v1/errors/groups").await;
    assert_eq!(ids(arr(&groups["groups"])), vec![kg]);
    app.event(&keep).await;
    // The same error again makes a new group.
    let b = app.capture(json!({"message": "doomed issue"})).await;
    assert_eq!(b["new_group"], json!(true));
    assert_ne!(s(&b["group_id"]), g);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_update_reports_each_group() {
    let app = spawn_app().await;
    let (_, g1) = app.capture_text("bulk one").await;
    let (_, g2) = app.capture_text("bulk two").await;
    let (_, g3) = app.capture_text("bulk three").await;
    let missing = uuid::Uuid::new_v4().to_string();

    let b = app
        .post_ok(
            "/v1/errors/bulk",
            &json!({"error_group_ids": [g1, missing, g2], "action": "resolve"}),
        )
        .await;
    assert!(b["ok"].is_boolean(), "ok must be a boolean: {b}");
    assert_eq!(b["action"], json!("resolve"));
    assert_eq!(b["succeeded"], json!([g1, g2]));
    let failed = arr(&b["failed"]);
    assert_eq!(failed.len(), 1, "{b}");
    assert_eq!(failed[0]["error_group_id"], json!(missing));
    assert_eq!(failed[0]["code"], json!("NOT_FOUND"));
    assert!(failed[0]["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(n(&b["processed"]), 3);
    assert_eq!(app.group(&g1).await["status"], json!("resolved"));
    assert_eq!(app.group(&g2).await["status"], json!("resolved"));
    assert_eq!(app.group(&g3).await["status"], json!("unresolved"));

    let b = app
        .post_ok(
            "/v1/errors/bulk",
            &json!({"error_group_ids": [g1, g3], "action": "ignore"}),
        )
        .await;
    assert_eq!(b["ok"], json!(true), "every group succeeded: {b}");
    assert_eq!(b["succeeded"], json!([g1, g3]));
    assert_eq!(b["failed"], json!([]));
    assert_eq!(n(&b["processed"]), 2);
    assert_eq!(app.group(&g3).await["status"], json!("ignored"));
    let b = app
        .post_ok(
            "/v1/errors/bulk",
            &json!({"error_group_ids": [g1], "action": "unresolve"}),
        )
        .await;
    assert_eq!(b["action"], json!("unresolve"));
    assert_eq!(app.group(&g1).await["status"], json!("unresolved"));

    // A malformed id fails alone.
    let b = app
        .post_ok(
            "/v1/errors/bulk",
            &json!({"error_group_ids": [g1, "not-a-uuid", g2], "action": "delete"}),
        )
        .await;
    assert_eq!(b["action"], json!("delete"));
    assert_eq!(b["succeeded"], json!([g1, g2]));
    let failed = arr(&b["failed"]);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["error_group_id"], json!("not-a-uuid"));
    assert_eq!(failed[0]["code"], json!("VALIDATION_ERROR"));
    assert_eq!(n(&b["processed"]), 3);
    for g in [&g1, &g2] {
        let path = format!("/v1/errors/group_detail/{g}");
        let r = app.send(app.authed(Method::GET, &path)).await;
        assert_error(&r, 404, "NOT_FOUND", "GET", &path);
    }
    let left = app.get_ok("/v1/errors/groups").await;
    assert_eq!(ids(arr(&left["groups"])), vec![g3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_and_request_ids() {
    let app = spawn_app().await;
    let (eid, gid) = app.capture_text("auth check").await;

    // X-API-Key works like Bearer.
    let r = app
        .send(
            app.anon(Method::GET, "/v1/errors/groups")
                .header("X-API-Key", &app.key),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::POST,
            "/v1/errors/capture".into(),
            Some(json!({"message": "x"})),
        ),
        (
            Method::POST,
            "/v1/errors/message".into(),
            Some(json!({"text": "x"})),
        ),
        (Method::GET, "/v1/errors/list".into(), None),
        (Method::GET, "/v1/errors/search?q=x".into(), None),
        (Method::GET, format!("/v1/errors/get/{eid}"), None),
        (Method::GET, "/v1/errors/groups".into(), None),
        (Method::GET, format!("/v1/errors/group_detail/{gid}"), None),
        (Method::GET, format!("/v1/errors/events/{gid}"), None),
        (Method::POST, format!("/v1/errors/resolve/{gid}"), None),
        (Method::POST, format!("/v1/errors/unresolve/{gid}"), None),
        (Method::POST, format!("/v1/errors/ignore/{gid}"), None),
        (Method::DELETE, format!("/v1/errors/delete/{gid}"), None),
        (
            Method::POST,
            "/v1/errors/bulk".into(),
            Some(json!({"error_group_ids": [gid], "action": "resolve"})),
        ),
        (Method::POST, "/v1/errors/export".into(), Some(json!({}))),
        (Method::GET, "/v1/errors/retention/get".into(), None),
        (
            Method::PUT,
            "/v1/errors/retention/set".into(),
            Some(json!({"days": 10})),
        ),
    ];
    for (method, path, body) in &routes {
        for cred in [None, Some("Bearer flt_not_a_real_key"), Some("X-API-Key")] {
            let mut rb = app.anon(method.clone(), path);
            match cred {
                None => {}
                Some("X-API-Key") => rb = rb.header("X-API-Key", "flt_wrong"),
                Some(h) => rb = rb.header("Authorization", h),
            }
            if let Some(b) = body {
                rb = rb.json(b);
            }
            let r = app.send(rb).await;
            assert_error(&r, 401, "UNAUTHORIZED", method.as_str(), path);
        }
    }
    // Nothing changed without a key.
    assert_eq!(app.group(&gid).await["status"], json!("unresolved"));
    assert_eq!(app.list_all("").await.len(), 1);

    // Every response carries X-Request-ID; the caller's is echoed.
    let r = app.send(app.authed(Method::GET, "/v1/errors/groups")).await;
    assert!(
        r.header("x-request-id").is_some_and(|v| !v.is_empty()),
        "no X-Request-ID"
    );
    let r = app
        .send(
            app.authed(Method::GET, "/v1/errors/groups")
                .header("X-Request-ID", "my-req-42"),
        )
        .await;
    assert_eq!(r.header("x-request-id"), Some("my-req-42"));
    let r = app
        .send(
            app.anon(Method::GET, "/v1/errors/groups")
                .header("X-Request-ID", "my-req-43"),
        )
        .await;
    assert_eq!(r.header("x-request-id"), Some("my-req-43"));
    assert_eq!(r.body["error"]["requestId"], json!("my-req-43"));
    let r = app
        .send(
            app.authed(Method::GET, "/v1/errors/nope")
                .header("X-Request-ID", "my-req-44"),
        )
        .await;
    assert_error(&r, 404, "NOT_FOUND", "GET", "/v1/errors/nope");
    assert_eq!(r.header("x-request-id"), Some("my-req-44"));
    let r = app
        .send(
            app.authed(Method::POST, "/v1/errors/capture")
                .json(&json!({"message": "rid"}))
                .header("X-Request-ID", "my-req-45"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-request-id"), Some("my-req-45"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_answers_429_with_retry_after() {
    let app = spawn_app_with(|c| {
        c.ingest.queue_depth = 1;
        c.ingest.max_batch = 1;
    })
    .await;
    let mut saw_429 = false;
    for _round in 0..10 {
        let results: Vec<Resp> = futures::future::join_all((0..64).map(|i| {
            let app = &app;
            async move {
                app.send(
                    app.authed(Method::POST, "/v1/errors/capture")
                        .json(&json!({"message": format!("burst {i}")})),
                )
                .await
            }
        }))
        .await;
        for r in &results {
            match r.status.as_u16() {
                200 => assert_ack(&r.body),
                429 => {
                    saw_429 = true;
                    assert_error(r, 429, "RATE_LIMITED", "POST", "/v1/errors/capture");
                    let ra = r
                        .header("retry-after")
                        .unwrap_or_else(|| panic!("429 without Retry-After: {:?}", r.headers));
                    assert!(
                        ra.trim().parse::<u64>().is_ok_and(|s| s >= 1),
                        "Retry-After {ra:?}"
                    );
                }
                other => panic!("a burst capture answered {other}: {}", r.text),
            }
        }
        if saw_429 {
            break;
        }
    }
    assert!(
        saw_429,
        "64 concurrent captures against a queue of depth 1 never got a 429"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_messages_with_one_idempotency_key_store_one_event() {
    let app = spawn_app().await;
    for round in 0..3 {
        let key = format!("retry-storm-{round}");
        let answers: Vec<Value> = futures::future::join_all((0..20).map(|_| {
            let app = &app;
            let key = key.clone();
            async move {
                app.message(json!({"text": "client retried this", "idempotency_key": key}))
                    .await
            }
        }))
        .await;
        let event_ids: HashSet<String> = answers.iter().map(|a| s(&a["event_id"])).collect();
        assert_eq!(
            event_ids.len(),
            1,
            "round {round}: one key, one event: {answers:?}"
        );
        let originals = answers
            .iter()
            .filter(|a| a["duplicate"] == json!(false))
            .count();
        assert_eq!(
            originals, 1,
            "round {round}: exactly one answer is the original: {answers:?}"
        );
    }
    assert_eq!(app.list_all("").await.len(), 3, "three keys, three events");
    let groups = app.get_ok("/v1/errors/groups").await;
    assert_eq!(
        n(&arr(&groups["groups"])[0]["count"]),
        3,
        "duplicates are not counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_treats_wildcard_characters_literally() {
    let app = spawn_app().await;
    let pct = app.capture_text("disk at 100% usage").await.0;
    app.capture_text("processed 1000 items").await;
    let under = app.capture_text("value a_b missing").await.0;
    app.capture_text("value axb missing").await;
    let search = |q: &str| {
        let app = &app;
        let path = format!("/v1/errors/search?q={}", enc(q));
        async move { ids(arr(&app.get_ok(&path).await["events"])) }
    };
    assert_eq!(
        search("100%").await,
        vec![pct],
        "'%' is a character, not a wildcard"
    );
    assert_eq!(
        search("a_b").await,
        vec![under],
        "'_' is a character, not a wildcard"
    );
    assert!(
        search("%").await.len() == 1,
        "only the event containing '%'"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_level_follows_the_latest_event() {
    let app = spawn_app().await;
    let (_, g) = app.capture_text("level changes").await;
    assert_eq!(app.group(&g).await["level"], json!("error"));
    let b = app
        .capture(json!({"message": "level changes", "level": "warning"}))
        .await;
    assert_eq!(
        s(&b["group_id"]),
        g,
        "the level is not part of the grouping key"
    );
    let d = app.group(&g).await;
    assert_eq!(
        d["level"],
        json!("warning"),
        "level of the most recent event: {d}"
    );
    assert_eq!(n(&d["count"]), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_event_payload_is_the_original_body() {
    let app = spawn_app().await;
    // An hour ago: an event older than the default retention (90 days) may be deleted by the
    // test server's retention job (every 200 ms) before it is read back.
    let hour_ago = chrono::Utc::now().timestamp() - 3600;
    let sent = json!({
        "message": "checkout failed",
        "level": "warning",
        "timestamp": hour_ago,
        "stack": [
            {"filename": "/app/shop/cart.py", "function": "add_item", "lineno": 12, "in_app": true}
        ],
        "tags": {"region": "eu"},
        "context": {"cart_items": 3, "ratio": 0.5, "flags": [true, null], "big": 9007199254740993u64},
    });
    let b = app.capture(sent.clone()).await;
    let e = app.event(&s(&b["event_id"])).await;
    assert_eq!(
        e["payload"], sent,
        "GET /v1/errors/get must return the payload as it was sent"
    );
}

/// `?q=` on the group listing (`ListGroupsRequest.query` over gRPC): every word in the title or
/// the culprit, in any case (beyond ASCII too), as a plain substring (`%` and `_` are not wildcards); with status,
/// sort and paging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_searched_by_title_and_culprit() {
    let app = spawn_app().await;
    let card = s(&app
        .capture(json!({"message": "Payment failed: card declined"}))
        .await["group_id"]);
    let timeout = s(&app
        .capture(json!({"exception": {"type": "ReadTimeoutError", "message": "upstream timed out",
            "stacktrace": [{"filename": "shop/pricing.py", "function": "fetch_rates", "lineno": 3}]}}))
        .await["group_id"]);
    let percent = s(&app.capture(json!({"message": "disk 100% full"})).await["group_id"]);
    let under = s(&app.capture(json!({"message": "user_id missing"})).await["group_id"]);
    let listed = |q: &str| {
        let app = &app;
        let path = format!("/v1/errors/groups?q={}&sort=first_seen_desc", enc(q));
        async move { ids(arr(&app.get_ok(&path).await["groups"])) }
    };
    assert_eq!(listed("CARD declined").await, vec![card.clone()]);
    assert_eq!(listed("card timeout").await, Vec::<String>::new());
    // Part of a word, in the title; a function name, in the culprit.
    assert_eq!(listed("timeout").await, vec![timeout.clone()]);
    assert_eq!(listed("fetch_rates").await, vec![timeout.clone()]);
    // Wildcards of LIKE are plain characters here.
    assert_eq!(listed("100%").await, vec![percent.clone()]);
    assert_eq!(listed("%").await, vec![percent.clone()]);
    // As a wildcard, `t_f` would match "Payment failed".
    assert_eq!(listed("t_f").await, Vec::<String>::new());
    assert_eq!(listed("_").await, vec![under.clone(), timeout.clone()]);
    // An empty or blank query lists everything.
    assert_eq!(listed(" ").await.len(), 4);

    // With a status, and paged.
    app.post_ok(&format!("/v1/errors/resolve/{under}"), &json!({}))
        .await;
    let path = format!("/v1/errors/groups?q={}&status=unresolved", enc("_"));
    assert_eq!(
        ids(arr(&app.get_ok(&path).await["groups"])),
        vec![timeout.clone()]
    );
    let first = app
        .get_ok("/v1/errors/groups?q=i&sort=first_seen_desc&limit=2")
        .await;
    assert_eq!(ids(arr(&first["groups"])), [under.clone(), percent.clone()]);
    let path = format!(
        "/v1/errors/groups?q=i&sort=first_seen_desc&limit=2&cursor={}",
        s(&first["next_cursor"])
    );
    let second = app.get_ok(&path).await;
    assert_eq!(ids(arr(&second["groups"])), [timeout.clone(), card.clone()]);
    assert_eq!(second["next_cursor"], Value::Null);

    // gRPC takes the same query.
    let r = app
        .groups_client()
        .await
        .list_groups(app.req(pb::ListGroupsRequest {
            query: "Declined PAYMENT".into(),
            ..Default::default()
        }))
        .await
        .expect("ListGroups")
        .into_inner();
    assert_eq!(
        r.groups.iter().map(|g| g.id.clone()).collect::<Vec<_>>(),
        [card]
    );

    // Any case beyond ASCII too, on either database: Cyrillic, Greek, a German umlaut.
    let cyrillic = s(&app
        .capture(json!({"message": "Ошибка подключения к БАЗЕ"}))
        .await["group_id"]);
    let greek = s(&app.capture(json!({"message": "ΣΦΑΛΜΑ: Übergröße"})).await["group_id"]);
    assert_eq!(listed("ошибка база").await, Vec::<String>::new());
    assert_eq!(listed("ОШИБКА базе").await, vec![cyrillic]);
    assert_eq!(listed("σφαλμα ÜBER").await, vec![greek]);
}

/// The group listing's `q` takes Sentry's search terms beside words: `is:`, `assigned:`,
/// `level:`, `release:`, `firstRelease:`, any other key as a tag, and quoted phrases, negated
/// with `!` or listing values; `times_seen:` and the times `age:`/`firstSeen:`/`lastSeen:`,
/// relative or absolute; its terms take precedence over the request's own fields; a value
/// that does not fit its key is refused on `query`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_searched_with_sentry_terms() {
    let app = spawn_app().await;
    let capture = |body: Value| {
        let app = &app;
        async move { s(&app.capture(body).await["group_id"]) }
    };
    let a = capture(json!({"message": "checkout timeout", "level": "warning",
        "release": "shop@1.0", "tags": {"browser": "Chrome"}}))
    .await;
    let b = capture(json!({"message": "checkout failed", "level": "error",
        "release": "shop@1.1", "tags": {"browser": "Firefox"},
        "environment": "production", "user_id": "u7"}))
    .await;
    let c =
        capture(json!({"message": "login loops", "level": "error", "release": "shop@1.1"})).await;
    app.post_ok(&format!("/v1/errors/resolve/{c}"), &json!({}))
        .await;
    app.post_ok(
        &format!("/v1/errors/assign/{b}"),
        &json!({"assignee": "me"}),
    )
    .await;

    let found = |q: &'static str, extra: &'static str| {
        let app = &app;
        async move {
            let path = format!("/v1/errors/groups?q={}&sort=first_seen_desc{extra}", enc(q));
            let mut got = ids(arr(&app.get_ok(&path).await["groups"]));
            got.sort();
            got
        }
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(found("checkout level:warning", "").await, vec![a.clone()]);
    assert_eq!(
        found("release:shop@1.1 is:unresolved", "").await,
        vec![b.clone()]
    );
    assert_eq!(
        found("release:shop@1.1", "").await,
        sorted(vec![b.clone(), c.clone()])
    );
    assert_eq!(found("browser:Firefox", "").await, vec![b.clone()]);
    assert_eq!(found("browser:Safari", "").await, Vec::<String>::new());
    assert_eq!(found("is:assigned", "").await, vec![b.clone()]);
    assert_eq!(found("is:unassigned checkout", "").await, vec![a.clone()]);
    assert_eq!(found("assigned:me", "").await, vec![b.clone()]);
    assert_eq!(found("firstRelease:shop@1.0", "").await, vec![a.clone()]);
    assert_eq!(
        found("is:resolved", "&status=unresolved").await,
        vec![c.clone()]
    );
    assert_eq!(found(r#""checkout timeout""#, "").await, vec![a.clone()]);
    assert_eq!(
        found(r#""timeout checkout""#, "").await,
        Vec::<String>::new()
    );

    // Negations (a group with no assignee or first release is not one of the negated), lists.
    assert_eq!(
        found("!is:resolved", "").await,
        sorted(vec![a.clone(), b.clone()])
    );
    assert_eq!(
        found("!assigned:me", "").await,
        sorted(vec![a.clone(), c.clone()])
    );
    assert_eq!(
        found("!firstRelease:shop@1.0", "").await,
        sorted(vec![b.clone(), c.clone()])
    );
    assert_eq!(
        found("level:[warning, error] !browser:Chrome", "").await,
        sorted(vec![b.clone(), c.clone()])
    );
    assert_eq!(found("is:[resolved, ignored]", "").await, vec![c.clone()]);
    // The event's environment and user, and `has:` (any value of an attribute or a tag).
    assert_eq!(found("environment:production", "").await, vec![b.clone()]);
    assert_eq!(found("environment:staging", "").await, Vec::<String>::new());
    assert_eq!(found("user.id:u7", "").await, vec![b.clone()]);
    assert_eq!(found("has:user", "").await, vec![b.clone()]);
    assert_eq!(
        found("has:browser", "").await,
        sorted(vec![a.clone(), b.clone()])
    );
    assert_eq!(found("!has:browser", "").await, vec![c.clone()]);
    assert_eq!(
        found("has:[environment, release]", "").await,
        sorted(vec![a.clone(), b.clone(), c.clone()])
    );
    assert_eq!(found("is:regressed", "").await, Vec::<String>::new());
    assert_eq!(
        found("!is:unresolved", "&status=unresolved").await,
        Vec::<String>::new()
    );
    // Counts and times: `a` has a second event; `d`'s only events are three days old.
    capture(json!({"message": "checkout timeout", "level": "warning",
        "release": "shop@1.0", "tags": {"browser": "Chrome"}}))
    .await;
    let old = Utc::now() - chrono::Duration::days(3);
    let d = capture(json!({"message": "stale cache", "timestamp":
        old.to_rfc3339_opts(SecondsFormat::Secs, true)}))
    .await;
    assert_eq!(found("times_seen:>1", "").await, vec![a.clone()]);
    assert_eq!(
        found("times_seen:1", "").await,
        sorted(vec![b.clone(), c.clone(), d.clone()])
    );
    assert_eq!(found("age:+2d", "").await, vec![d.clone()]);
    assert_eq!(
        found("age:-2d", "").await,
        sorted(vec![a.clone(), b.clone(), c.clone()])
    );
    assert_eq!(found("!lastSeen:-2d", "").await, vec![d.clone()]);
    let day = old.format("%Y-%m-%d").to_string();
    let second = old.to_rfc3339_opts(SecondsFormat::Secs, true);
    let found_owned = |q: String| {
        let app = &app;
        async move {
            let path = format!("/v1/errors/groups?q={}", enc(&q));
            ids(arr(&app.get_ok(&path).await["groups"]))
        }
    };
    assert_eq!(
        found_owned(format!("firstSeen:{day}")).await,
        vec![d.clone()]
    );
    assert_eq!(
        found_owned(format!("lastSeen:<={second}")).await,
        vec![d.clone()]
    );
    assert_eq!(
        found_owned(format!("lastSeen:<{second}")).await,
        Vec::<String>::new()
    );
    assert_eq!(
        found_owned(format!("lastSeen:>{second} times_seen:<2"))
            .await
            .len(),
        2
    );
    for bad in [
        "times_seen:>many",
        "age:24h",
        "level:[error, loud]",
        "is:[resolved, assigned]",
    ] {
        let path = format!("/v1/errors/groups?q={}", enc(bad));
        let r = app.send(app.authed(Method::GET, &path)).await;
        assert_error(&r, 422, "VALIDATION_ERROR", "GET", &path);
        assert!(r.text.contains("INVALID_TERM"), "{bad}: {}", r.text);
    }

    let path = format!("/v1/errors/groups?q={}", enc("is:sleeping"));
    let r = app.send(app.authed(Method::GET, &path)).await;
    assert_error(&r, 422, "VALIDATION_ERROR", "GET", &path);
    assert!(r.text.contains("INVALID_TERM"), "{}", r.text);

    // A resolved group that receives an event is regressed until it is resolved again.
    let c_again = capture(json!({"message": "login loops", "level": "error",
        "release": "shop@1.1"}))
    .await;
    assert_eq!(c_again, c);
    assert_eq!(found("is:regressed", "").await, vec![c.clone()]);
    app.post_ok(&format!("/v1/errors/resolve/{c}"), &json!({}))
        .await;
    assert_eq!(found("is:regressed", "").await, Vec::<String>::new());

    let by_grpc = app
        .groups_client()
        .await
        .list_groups(app.req(pb::ListGroupsRequest {
            query: "level:error is:unresolved !age:+1d".into(),
            ..Default::default()
        }))
        .await
        .expect("ListGroups")
        .into_inner()
        .groups;
    assert_eq!(
        by_grpc.iter().map(|g| g.id.clone()).collect::<Vec<_>>(),
        [b]
    );
}

/// The releases the project's events named, latest first, with their events, issues and the
/// issues each brought (REST and gRPC); `limit` keeps the latest. A group shows its first
/// release, and the list of groups filters by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_are_listed_latest_first_with_their_counts() {
    let app = spawn_app().await;
    assert_eq!(
        app.get_ok("/v1/errors/releases").await,
        json!({"releases": []})
    );
    let cart = app
        .capture(json!({"message": "cart total is NaN", "release": "shop@1.0"}))
        .await;
    app.capture(json!({"message": "cart total is NaN", "release": "shop@1.0"}))
        .await;
    let bare = app.capture(json!({"message": "no release at all"})).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    app.capture(json!({"message": "cart total is NaN", "release": "shop@1.1"}))
        .await;
    let login = app
        .capture(json!({"message": "login loops", "release": "shop@1.1"}))
        .await;

    let r = app.get_ok("/v1/errors/releases").await;
    let rows: Vec<(String, u64, u64, u64)> = arr(&r["releases"])
        .iter()
        .map(|x| {
            let counts = ["event_count", "issue_count", "new_issue_count"].map(|k| n(&x[k]));
            (s(&x["version"]), counts[0], counts[1], counts[2])
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("shop@1.1".to_owned(), 2, 2, 1),
            ("shop@1.0".to_owned(), 2, 1, 1)
        ],
        "{r}"
    );
    // Each group's first release; the issues a release brought.
    let cart = app.group(&s(&cart["group_id"])).await;
    assert_eq!(
        (&cart["first_release"], &cart["last_release"]),
        (&json!("shop@1.0"), &json!("shop@1.1"))
    );
    assert_eq!(
        app.group(&s(&bare["group_id"])).await["first_release"],
        Value::Null
    );
    for q in ["first_release=shop%401.1", "firstRelease=shop@1.1"] {
        let listed = app.get_ok(&format!("/v1/errors/groups?{q}")).await;
        let ids: Vec<String> = arr(&listed["groups"]).iter().map(|g| s(&g["id"])).collect();
        assert_eq!(ids, [s(&login["group_id"])], "{q}: {listed}");
    }
    let none = app
        .get_ok("/v1/errors/groups?first_release=shop%402.0")
        .await;
    assert_eq!(arr(&none["groups"]).len(), 0);
    assert!(r["releases"][0]["first_seen"].is_string(), "{r}");
    let latest = app.get_ok("/v1/errors/releases?limit=1").await;
    assert_eq!(arr(&latest["releases"]).len(), 1);
    assert_eq!(latest["releases"][0]["version"], "shop@1.1");

    let mut groups = app.groups_client().await;
    let listed = groups
        .list_releases(app.req(pb::ListReleasesRequest::default()))
        .await
        .expect("ListReleases")
        .into_inner()
        .releases;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].version, "shop@1.0");
    assert_eq!((listed[1].event_count, listed[1].issue_count), (2, 1));
    assert_eq!(listed[1].new_issue_count, 1);
    let brought = groups
        .list_groups(app.req(pb::ListGroupsRequest {
            first_release: "shop@1.0".into(),
            ..Default::default()
        }))
        .await
        .expect("ListGroups")
        .into_inner()
        .groups;
    assert_eq!(brought.len(), 1);
    assert_eq!(brought[0].first_release.as_deref(), Some("shop@1.0"));
}
