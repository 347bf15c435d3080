//! Bad input on every REST route: the documented status, the full error body, and never a 500.
//! Every case is checked and all failures are reported together.

use std::panic::{AssertUnwindSafe, catch_unwind};

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

enum Body {
    None,
    Json(Value),
    Raw(String),
}

struct Case {
    method: Method,
    path: String,
    body: Body,
    /// Accepted statuses (one, except where the contract leaves 400 vs 422 open).
    status: &'static [u16],
    code: &'static str,
    /// A field that `details` must name (for 422s).
    field: Option<&'static str>,
}

fn case(
    method: Method,
    path: impl Into<String>,
    body: Body,
    status: &'static [u16],
    code: &'static str,
    field: Option<&'static str>,
) -> Case {
    Case {
        method,
        path: path.into(),
        body,
        status,
        code,
        field,
    }
}

const MALFORMED: &[u16] = &[400];
const INVALID: &[u16] = &[422];
const NOT_FOUND: &[u16] = &[404];
const TOO_LARGE: &[u16] = &[413];
/// Values of the right JSON type that cannot be parsed (a time, a tag): 400 or 422.
const UNREADABLE_VALUE: &[u16] = &[400, 422];

/// True when a details entry names `want`, also as part of a dotted path (`filter.level`).
fn names(field: &str, want: &str) -> bool {
    field == want
        || field.ends_with(&format!(".{want}"))
        || field.starts_with(&format!("{want}."))
        || field.starts_with(&format!("{want}["))
}

fn check(r: &Resp, c: &Case) {
    let label = format!("{} {}", c.method, c.path);
    assert_ne!(
        r.status.as_u16(),
        500,
        "{label}: 500 for bad input: {}",
        r.text
    );
    assert!(
        c.status.contains(&r.status.as_u16()),
        "{label}: expected HTTP {:?} {}, got {}: {}",
        c.status,
        c.code,
        r.status,
        r.text
    );
    let e = assert_error(r, r.status.as_u16(), c.code, c.method.as_str(), &c.path);
    if let Some(field) = c.field {
        let details = e["details"].as_array().cloned().unwrap_or_default();
        assert!(
            details
                .iter()
                .any(|d| d["field"].as_str().is_some_and(|f| names(f, field))
                    && d["message"].as_str().is_some_and(|m| !m.is_empty())),
            "{label}: details do not name the field {field:?}: {}",
            r.text
        );
    }
}

async fn run(app: &TestApp, cases: Vec<Case>) {
    let mut failures = Vec::new();
    for c in &cases {
        let mut rb = app.authed(c.method.clone(), &c.path);
        match &c.body {
            Body::None => {}
            Body::Json(v) => rb = rb.json(v),
            Body::Raw(t) => {
                rb = rb
                    .header("content-type", "application/json")
                    .body(t.clone())
            }
        }
        let r = match rb.send().await {
            Ok(resp) => {
                let status = resp.status();
                let headers = resp.headers().clone();
                let text = resp.text().await.unwrap_or_default();
                let body =
                    serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
                Resp {
                    status,
                    headers,
                    text,
                    body,
                }
            }
            Err(e) => {
                failures.push(format!("{} {}: no response: {e:?}", c.method, c.path));
                continue;
            }
        };
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| check(&r, c))) {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(msg);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad-input cases failed:\n  - {}",
        failures.len(),
        cases.len(),
        failures.join("\n  - ")
    );
}

fn huge_json(field: &str) -> String {
    // Just over the 1 MiB limit.
    format!("{{\"{field}\":\"{}\"}}", "x".repeat(1024 * 1024 + 512))
}

fn raw(s: &str) -> Body {
    Body::Raw(s.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_routes_reject_bad_input() {
    let app = spawn_app().await;
    use Body::Json;
    let cap = "/v1/errors/capture";
    let msg = "/v1/errors/message";
    let cases = vec![
        case(
            Method::POST,
            cap,
            raw("{\"message\": "),
            MALFORMED,
            "VALIDATION_ERROR",
            None,
        ),
        // Text after the JSON value, as two events sent as one body (NDJSON to the
        // single-event route): a syntax error (400) naming it, not a 422 about `payload_json`.
        case(
            Method::POST,
            cap,
            raw("{\"message\": \"first\"}\n{\"message\": \"second\"}"),
            MALFORMED,
            "VALIDATION_ERROR",
            None,
        ),
        case(
            Method::POST,
            msg,
            raw("{\"text\": \"x\"} trailing"),
            MALFORMED,
            "VALIDATION_ERROR",
            None,
        ),
        // JSON of another type than an object. serde reads a struct from an array too (its
        // fields in order), so an array is refused before it is read as an event.
        case(
            Method::POST,
            cap,
            raw("[\"hello\", \"E1\"]"),
            INVALID,
            "VALIDATION_ERROR",
            Some("body"),
        ),
        // …and one that does not read as an event is blamed as an array too, not at an item.
        case(
            Method::POST,
            cap,
            raw("[{\"message\": \"x\"}]"),
            INVALID,
            "VALIDATION_ERROR",
            Some("body"),
        ),
        case(
            Method::POST,
            cap,
            raw(" 5"),
            INVALID,
            "VALIDATION_ERROR",
            Some("body"),
        ),
        case(
            Method::POST,
            cap,
            raw("not json at all"),
            MALFORMED,
            "VALIDATION_ERROR",
            None,
        ),
        case(
            Method::POST,
            cap,
            raw(""),
            MALFORMED,
            "VALIDATION_ERROR",
            None,
        ),
        case(
            Method::POST,
            cap,
            Json(json!({})),
            INVALID,
            "VALIDATION_ERROR",
            Some("message"),
        ),
        case(
            Method::POST,
            cap,
            Json(json!({"code": "E1"})),
            INVALID,
            "VALIDATION_ERROR",
            Some("message"),
        ),
        case(
            Method::POST,
            cap,
            Json(json!({"message": 5})),
            INVALID,
            "VALIDATION_ERROR",
            Some("message"),
        ),
        case(
            Method::POST,
            cap,
            Json(json!({"message": "x", "tags": 5})),
            INVALID,
            "VALIDATION_ERROR",
            Some("tags"),
        ),
        case(
            Method::POST,
            cap,
            Json(json!({"message": "x", "tags": {"k": {"nested": 1}}})),
            INVALID,
            "VALIDATION_ERROR",
            Some("tags"),
        ),
        case(
            Method::POST,
            cap,
            Json(json!({"message": "x", "level": "loud"})),
            INVALID,
            "VALIDATION_ERROR",
            Some("level"),
        ),
        case(
            Method::POST,
            cap,
            Json(json!({"message": "x", "level": 3})),
            INVALID,
            "VALIDATION_ERROR",
            Some("level"),
        ),
        case(
            Method::POST,
            cap,
            Json(json!({"message": "x", "fingerprint": "abc"})),
            INVALID,
            "VALIDATION_ERROR",
            Some("fingerprint"),
        ),
        case(
            Method::POST,
            cap,
            Json(json!({"message": "x", "timestamp": true})),
            INVALID,
            "VALIDATION_ERROR",
            Some("timestamp"),
        ),
        case(
            Method::POST,
            cap,
            Json(json!({"message": "x", "timestamp": "yesterday-ish"})),
            UNREADABLE_VALUE,
            "VALIDATION_ERROR",
            Some("timestamp"),
        ),
        case(
            Method::POST,
            cap,
            Json(json!({"message": "x", "release": ["1"]})),
            INVALID,
            "VALIDATION_ERROR",
            Some("release"),
        ),
        case(
            Method::POST,
            cap,
            Json(json!({"exception": {"type": "E", "message": "m", "stacktrace": 5}})),
            INVALID,
            "VALIDATION_ERROR",
            Some("exception"),
        ),
        case(
            Method::POST,
            cap,
            Json(json!({"exception": "boom"})),
            INVALID,
            "VALIDATION_ERROR",
            Some("exception"),
        ),
        case(
            Method::POST,
            cap,
            Body::Raw(huge_json("message")),
            TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            None,
        ),
        case(
            Method::POST,
            msg,
            raw("{\"text\": \"a\""),
            MALFORMED,
            "VALIDATION_ERROR",
            None,
        ),
        case(
            Method::POST,
            msg,
            Json(json!({})),
            INVALID,
            "VALIDATION_ERROR",
            Some("text"),
        ),
        case(
            Method::POST,
            msg,
            Json(json!({"text": ""})),
            INVALID,
            "VALIDATION_ERROR",
            Some("text"),
        ),
        case(
            Method::POST,
            msg,
            Json(json!({"text": 7})),
            INVALID,
            "VALIDATION_ERROR",
            Some("text"),
        ),
        case(
            Method::POST,
            msg,
            Json(json!({"text": "x", "tags": 5})),
            INVALID,
            "VALIDATION_ERROR",
            Some("tags"),
        ),
        case(
            Method::POST,
            msg,
            Json(json!({"text": "x", "level": "loud"})),
            INVALID,
            "VALIDATION_ERROR",
            Some("level"),
        ),
        case(
            Method::POST,
            msg,
            Json(json!({"text": "x", "idempotency_key": 12})),
            INVALID,
            "VALIDATION_ERROR",
            Some("idempotency_key"),
        ),
        case(
            Method::POST,
            msg,
            Body::Raw(huge_json("text")),
            TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            None,
        ),
    ];
    run(&app, cases).await;
    assert!(
        app.list_all("").await.is_empty(),
        "bad input stored nothing"
    );
    // The server still works.
    app.capture_text("still alive").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_routes_reject_bad_input() {
    let app = spawn_app().await;
    let (_, gid) = app.capture_text("a real group").await;
    let missing = uuid::Uuid::new_v4();
    let bad_filter = enc("{\"level\": ");
    let filter_wrong = enc(&json!({"tags": 5}).to_string());
    let filter_level = enc(&json!({"level": "loud"}).to_string());
    let cases = vec![
        case(
            Method::GET,
            "/v1/errors/list?cursor=definitely-not-a-cursor!!",
            Body::None,
            MALFORMED,
            "VALIDATION_ERROR",
            None,
        ),
        case(
            Method::GET,
            "/v1/errors/list?cursor=eyJ4Ijo1fQ",
            Body::None,
            MALFORMED,
            "VALIDATION_ERROR",
            None,
        ),
        case(
            Method::GET,
            "/v1/errors/list?level=loud",
            Body::None,
            INVALID,
            "VALIDATION_ERROR",
            Some("level"),
        ),
        case(
            Method::GET,
            "/v1/errors/list?status=sleeping",
            Body::None,
            INVALID,
            "VALIDATION_ERROR",
            Some("status"),
        ),
        case(
            Method::GET,
            "/v1/errors/list?limit=abc",
            Body::None,
            INVALID,
            "VALIDATION_ERROR",
            Some("limit"),
        ),
        case(
            Method::GET,
            "/v1/errors/list?limit=-1",
            Body::None,
            INVALID,
            "VALIDATION_ERROR",
            Some("limit"),
        ),
        case(
            Method::GET,
            "/v1/errors/list?group_id=not-a-uuid",
            Body::None,
            MALFORMED,
            "VALIDATION_ERROR",
            None,
        ),
        case(
            Method::GET,
            "/v1/errors/list?since=last-tuesday",
            Body::None,
            UNREADABLE_VALUE,
            "VALIDATION_ERROR",
            Some("since"),
        ),
        case(
            Method::GET,
            "/v1/errors/list?until=2024-13-45",
            Body::None,
            UNREADABLE_VALUE,
            "VALIDATION_ERROR",
            Some("until"),
        ),
        case(
            Method::GET,
            "/v1/errors/list?tag=no-colon",
            Body::None,
            UNREADABLE_VALUE,
            "VALIDATION_ERROR",
            Some("tag"),
        ),
        case(
            Method::GET,
            format!("/v1/errors/list?filter={bad_filter}"),
            Body::None,
            MALFORMED,
            "VALIDATION_ERROR",
            None,
        ),
        case(
            Method::GET,
            format!("/v1/errors/list?filter={filter_wrong}"),
            Body::None,
            INVALID,
            "VALIDATION_ERROR",
            Some("tags"),
        ),
        case(
            Method::GET,
            format!("/v1/errors/list?filter={filter_level}"),
            Body::None,
            INVALID,
            "VALIDATION_ERROR",
            Some("level"),
        ),
        case(
            Method::GET,
            "/v1/errors/search",
            Body::None,
            INVALID,
            "VALIDATION_ERROR",
            Some("q"),
        ),
        case(
            Method::GET,
            "/v1/errors/search?q=",
            Body::None,
            INVALID,
            "VALIDATION_ERROR",
            Some("q"),
        ),
        case(
            Method::GET,
            "/v1/errors/search?q=x&cursor=%25%25%25",
            Body::None,
            MALFORMED,
            "VALIDATION_ERROR",
            None,
        ),
        case(
            Method::GET,
            "/v1/errors/search?q=x&level=loud",
            Body::None,
            INVALID,
            "VALIDATION_ERROR",
            Some("level"),
        ),
        case(
            Method::GET,
            "/v1/errors/get/not-a-uuid",
            Body::None,
            MALFORMED,
            "VALIDATION_ERROR",
            None,
        ),
        case(
            Method::GET,
            format!("/v1/errors/get/{missing}"),
            Body::None,
            NOT_FOUND,
            "NOT_FOUND",
            None,
        ),
        case(
            Method::GET,
            "/v1/errors/groups?status=sleeping",
            Body::None,
            INVALID,
            "VALIDATION_ERROR",
            Some("status"),
        ),
        case(
            Method::GET,
            "/v1/errors/groups?sort=alphabetical",
            Body::None,
            INVALID,
            "VALIDATION_ERROR",
            Some("sort"),
        ),
        case(
            Method::GET,
            "/v1/errors/groups?cursor=zzz",
            Body::None,
            MALFORMED,
            "VALIDATION_ERROR",
            None,
        ),
        case(
            Method::GET,
            "/v1/errors/groups?limit=many",
            Body::None,
            INVALID,
            "VALIDATION_ERROR",
            Some("limit"),
        ),
        case(
            Method::GET,
            "/v1/errors/group_detail/123",
            Body::None,
            MALFORMED,
            "VALIDATION_ERROR",
            None,
        ),
        case(
            Method::GET,
            format!("/v1/errors/group_detail/{missing}"),
            Body::None,
            NOT_FOUND,
            "NOT_FOUND",
            None,
        ),
        case(
            Method::GET,
            "/v1/errors/events/xyz",
            Body::None,
            MALFORMED,
            "VALIDATION_ERROR",
            None,
        ),
        case(
            Method::GET,
            format!("/v1/errors/events/{missing}"),
            Body::None,
            NOT_FOUND,
            "NOT_FOUND",
            None,
        ),
        case(
            Method::GET,
            format!("/v1/errors/events/{gid}?cursor=nope!"),
            Body::None,
            MALFORMED,
            "VALIDATION_ERROR",
            None,
        ),
        case(
            Method::GET,
            format!("/v1/errors/events/{gid}?limit=x"),
            Body::None,
            INVALID,
            "VALIDATION_ERROR",
            Some("limit"),
        ),
        case(
            Method::GET,
            "/v1/errors/no_such_route",
            Body::None,
            NOT_FOUND,
            "NOT_FOUND",
            None,
        ),
        case(
            Method::GET,
            "/nothing/here",
            Body::None,
            NOT_FOUND,
            "NOT_FOUND",
            None,
        ),
    ];
    run(&app, cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triage_routes_reject_bad_input() {
    let app = spawn_app().await;
    let (_, gid) = app.capture_text("triage target").await;
    let missing = uuid::Uuid::new_v4();
    use Body::Json;
    let mut cases = Vec::new();
    for action in ["resolve", "unresolve", "ignore"] {
        cases.push(case(
            Method::POST,
            format!("/v1/errors/{action}/not-a-uuid"),
            Body::None,
            MALFORMED,
            "VALIDATION_ERROR",
            None,
        ));
        cases.push(case(
            Method::POST,
            format!("/v1/errors/{action}/{missing}"),
            Body::None,
            NOT_FOUND,
            "NOT_FOUND",
            None,
        ));
    }
    cases.push(case(
        Method::DELETE,
        "/v1/errors/delete/not-a-uuid",
        Body::None,
        MALFORMED,
        "VALIDATION_ERROR",
        None,
    ));
    cases.push(case(
        Method::DELETE,
        format!("/v1/errors/delete/{missing}"),
        Body::None,
        NOT_FOUND,
        "NOT_FOUND",
        None,
    ));
    let bulk = "/v1/errors/bulk";
    let many: Vec<String> = (0..1001)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    cases.extend([
        case(
            Method::POST,
            bulk,
            raw("{\"action\":"),
            MALFORMED,
            "VALIDATION_ERROR",
            None,
        ),
        case(
            Method::POST,
            bulk,
            Json(json!({"error_group_ids": [gid]})),
            INVALID,
            "VALIDATION_ERROR",
            Some("action"),
        ),
        case(
            Method::POST,
            bulk,
            Json(json!({"action": "resolve"})),
            INVALID,
            "VALIDATION_ERROR",
            Some("error_group_ids"),
        ),
        case(
            Method::POST,
            bulk,
            Json(json!({"error_group_ids": [], "action": "resolve"})),
            INVALID,
            "VALIDATION_ERROR",
            Some("error_group_ids"),
        ),
        case(
            Method::POST,
            bulk,
            Json(json!({"error_group_ids": gid, "action": "resolve"})),
            INVALID,
            "VALIDATION_ERROR",
            Some("error_group_ids"),
        ),
        case(
            Method::POST,
            bulk,
            Json(json!({"error_group_ids": [1, 2], "action": "resolve"})),
            INVALID,
            "VALIDATION_ERROR",
            Some("error_group_ids"),
        ),
        case(
            Method::POST,
            bulk,
            Json(json!({"error_group_ids": [gid], "action": "explode"})),
            INVALID,
            "VALIDATION_ERROR",
            Some("action"),
        ),
        case(
            Method::POST,
            bulk,
            Json(json!({"error_group_ids": many, "action": "resolve"})),
            INVALID,
            "VALIDATION_ERROR",
            Some("error_group_ids"),
        ),
        case(
            Method::POST,
            bulk,
            Body::Raw(huge_json("action")),
            TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            None,
        ),
    ]);
    let export = "/v1/errors/export";
    cases.extend([
        case(
            Method::POST,
            export,
            raw("[[["),
            MALFORMED,
            "VALIDATION_ERROR",
            None,
        ),
        case(
            Method::POST,
            export,
            Json(json!({"format": "xml"})),
            INVALID,
            "VALIDATION_ERROR",
            Some("format"),
        ),
        case(
            Method::POST,
            export,
            Json(json!({"format": 1})),
            INVALID,
            "VALIDATION_ERROR",
            Some("format"),
        ),
        case(
            Method::POST,
            export,
            Json(json!({"filter": 5})),
            INVALID,
            "VALIDATION_ERROR",
            Some("filter"),
        ),
        case(
            Method::POST,
            export,
            Json(json!({"filter": {"level": "loud"}})),
            INVALID,
            "VALIDATION_ERROR",
            Some("level"),
        ),
        case(
            Method::POST,
            export,
            Json(json!({"filter": {"tags": "k:v"}})),
            INVALID,
            "VALIDATION_ERROR",
            Some("tags"),
        ),
        case(
            Method::POST,
            export,
            Json(json!({"filter": {"group_id": "nope"}})),
            MALFORMED,
            "VALIDATION_ERROR",
            None,
        ),
        case(
            Method::POST,
            export,
            Body::Raw(huge_json("format")),
            TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            None,
        ),
    ]);
    let set = "/v1/errors/retention/set";
    cases.extend([
        case(Method::PUT, set, raw("{days: 3}"), MALFORMED, "VALIDATION_ERROR", None),
        case(Method::PUT, set, Json(json!({})), INVALID, "VALIDATION_ERROR", Some("days")),
        case(Method::PUT, set, Json(json!({"days": "ten"})), INVALID, "VALIDATION_ERROR", Some("days")),
        case(Method::PUT, set, Json(json!({"days": -1})), INVALID, "VALIDATION_ERROR", Some("days")),
        case(Method::PUT, set, Json(json!({"days": 1.5})), INVALID, "VALIDATION_ERROR", Some("days")),
        case(Method::PUT, set, Json(json!({"days": 40000})), INVALID, "VALIDATION_ERROR", Some("days")),
        case(Method::PUT, set, Json(json!({"days": 5, "auto_export_before_cleanup": true})), INVALID, "VALIDATION_ERROR", Some("export_destination")),
        case(Method::PUT, set, Json(json!({"days": 5, "auto_export_before_cleanup": "yes", "export_destination": "/tmp"})), INVALID, "VALIDATION_ERROR", Some("auto_export_before_cleanup")),
        case(Method::PUT, set, Json(json!({"days": 5, "export_destination": "relative/dir"})), INVALID, "VALIDATION_ERROR", Some("export_destination")),
        case(Method::PUT, set, Body::Raw(huge_json("export_destination")), TOO_LARGE, "PAYLOAD_TOO_LARGE", None),
    ]);
    run(&app, cases).await;

    // Nothing changed.
    let g = app.group(&gid).await;
    assert_eq!(g["status"], json!("unresolved"));
    assert_eq!(n(&g["count"]), 1);
    let r = app.get_ok("/v1/errors/retention/get").await;
    assert!(
        r["days"] != json!(5) && r["days"] != json!(40000),
        "a rejected retention was stored: {r}"
    );
}

/// A batch item that is JSON but not an object (an array would be read as an event's fields
/// in order) is refused on its own; the others are stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_items_that_are_not_objects_are_refused_alone() {
    let app = spawn_app().await;
    let (status, body) = app
        .post(
            "/v1/errors/capture/batch",
            &json!({"events": [["hello", "E1"], 5, {"message": "kept"}]}),
        )
        .await;
    assert_eq!(status.as_u16(), 200, "{body}");
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), 3, "{body}");
    for item in &results[..2] {
        assert_eq!(item["ok"], json!(false), "{item}");
        let message = item["error"]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with("body: invalid type"), "{item}");
    }
    assert_eq!(results[2]["ok"], json!(true), "{body}");
    assert_eq!(body["accepted"], json!(1), "{body}");
}

/// A small deterministic generator (SplitMix64), so a failing body can be made again.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that tend to break readers: JSON structure, escapes, huge and odd numbers, NUL,
/// invalid UTF-8, newlines (which end an envelope's lines).
const SPLICES: &[&[u8]] = &[
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"\\",
    b"\\u",
    b"\\ud800",
    b"\\u0000",
    b"\0",
    b"null",
    b"true",
    b"-",
    b"1e400",
    b"-0",
    b"18446744073709551616",
    b"99999999999999999999999",
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\n",
    b"\r\n",
    b"{\"type\":\"event\"}",
    b"[[[[[[[[",
];

/// `seed` with one to three random changes: a byte replaced, a splice inserted, a span cut
/// out, a span repeated, or the end cut off.
fn mutate(seed: &[u8], rng: &mut Mix) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(b.len() + 1);
        match rng.below(5) {
            0 if at < b.len() => b[at] = rng.next() as u8,
            1 => {
                let s = SPLICES[rng.below(SPLICES.len())];
                b.splice(at..at, s.iter().copied());
            }
            2 => {
                let end = (at + 1 + rng.below(16)).min(b.len());
                b.drain(at.min(end)..end);
            }
            3 => {
                let end = (at + 1 + rng.below(64)).min(b.len());
                let span = b[at.min(end)..end].to_vec();
                b.splice(end..end, span);
            }
            _ => b.truncate(at),
        }
    }
    b
}

/// Thousands of damaged capture bodies, native and Sentry, each one a few random changes
/// away from a valid capture. Every one gets an answer: a success or a refusal in the route's
/// documented error format, never a 5xx or a dropped connection, and every event a success
/// acknowledged can be read back afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_capture_bodies_are_answered_and_what_is_acknowledged_is_stored() {
    let app = spawn_app_with(|c| {
        c.limits.rate.ingest_per_minute = 0;
        c.limits.rate.general_per_minute = 0;
    })
    .await;
    // A damaged timestamp can date an event centuries back, and the retention job deletes
    // events by their own time: keep everything, so that every acknowledged event stays.
    let (st, b) = app
        .put("/v1/errors/retention/set", &json!({"days": 0}))
        .await;
    assert_eq!(st.as_u16(), 200, "{b}");
    let dsn = app.get_ok("/v1/settings/dsn").await;
    let (key, project) = (s(&dsn["public_key"]), n(&dsn["project_id"]));
    let event = json!({
        "exception": {"type": "ValueError", "message": "invalid literal for int(): 'abc'",
            "stacktrace": "Traceback (most recent call last):\n  File \"app/views.py\", line 10, in checkout\n    qty = int(form[\"qty\"])\nValueError: invalid literal for int(): 'abc'"},
        "level": "error", "environment": "production", "release": "1.4.2",
        "tags": {"region": "eu", "browser": "firefox"}, "user_id": "u-17",
        "timestamp": "2026-12-06T10:00:00Z", "fingerprint": ["checkout", "qty"],
    });
    let native = serde_json::to_vec(&event).unwrap();
    let batch =
        serde_json::to_vec(&json!({"events": [event, {"message": "cache miss storm"}]})).unwrap();
    let sentry_event = json!({
        "event_id": "9ec79c33ec9942ab8353589fcb2e04dc", "platform": "python", "level": "error",
        "release": "shop@1.0", "environment": "prod", "tags": {"region": "eu"},
        "user": {"id": "42", "email": "a@example.com"},
        "exception": {"values": [{"type": "KeyError", "value": "'sku'", "stacktrace": {"frames": [
            {"filename": "app/cart.py", "function": "add", "lineno": 7, "in_app": true,
             "module": "app.cart", "vars": {"password": "hunter2"}},
        ]}}]},
    });
    let store = serde_json::to_vec(&sentry_event).unwrap();
    let mut envelope = b"{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\",\"sent_at\":\"2026-12-06T10:00:00Z\"}\n{\"type\":\"event\"}\n".to_vec();
    envelope.extend_from_slice(&store);
    envelope.push(b'\n');
    let auth = format!("Sentry sentry_key={key}, sentry_version=7, sentry_client=test/1.0");
    let routes: [(&str, String, &[u8], &str); 4] = [
        (
            "native",
            "/v1/errors/capture".into(),
            &native,
            "application/json",
        ),
        (
            "native batch",
            "/v1/errors/capture/batch".into(),
            &batch,
            "application/json",
        ),
        (
            "sentry",
            format!("/api/{project}/store/"),
            &store,
            "application/json",
        ),
        (
            "sentry",
            format!("/api/{project}/envelope/"),
            &envelope,
            "application/x-sentry-envelope",
        ),
    ];

    let mut rng = Mix(0x5EED_F417_1234_0001);
    let mut failures = Vec::new();
    // (event id, the start of the body that made it)
    let mut acknowledged: Vec<(String, String)> = Vec::new();
    let (mut sent, mut answered_ok) = (0, 0);
    for round in 0..400 {
        for (kind, path, seed, content_type) in &routes {
            let body = mutate(seed, &mut rng);
            sent += 1;
            let mut rb = if kind.starts_with("sentry") {
                app.anon(Method::POST, path).header("x-sentry-auth", &auth)
            } else {
                app.authed(Method::POST, path)
            };
            rb = rb.header("content-type", *content_type).body(body.clone());
            let shown = String::from_utf8_lossy(&body[..body.len().min(400)]).into_owned();
            let resp = match rb.send().await {
                Ok(r) => r,
                Err(e) => {
                    failures.push(format!(
                        "round {round} {path}: no answer ({e}) to {shown:?}"
                    ));
                    continue;
                }
            };
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap_or_default();
            let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if status >= 500 || !(status == 200 || (400..500).contains(&status)) {
                failures.push(format!(
                    "round {round} {path}: HTTP {status} {text} for {shown:?}"
                ));
                continue;
            }
            if status != 200 {
                // The documented error body, on the Sentry routes too.
                let documented = answer["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
                    && answer["error"]["statusCode"] == json!(status);
                if !documented {
                    failures.push(format!("round {round} {path}: HTTP {status} without the documented error body: {text}"));
                }
                continue;
            }
            answered_ok += 1;
            match *kind {
                "native" => acknowledged.push((s(&answer["event_id"]), shown)),
                "native batch" => {
                    for item in answer["results"].as_array().into_iter().flatten() {
                        if item["ok"] == json!(true) {
                            acknowledged.push((s(&item["event_id"]), shown.clone()));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let (health, _) = app.get("/health").await;
    assert_eq!(health.as_u16(), 200, "the server stopped answering");
    for (id, shown) in &acknowledged {
        let (status, body) = app.get(&format!("/v1/errors/get/{id}")).await;
        if status.as_u16() != 200 {
            failures.push(format!(
                "acknowledged event {id} cannot be read: HTTP {status} {body}; it came from {shown:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {sent} damaged bodies went wrong:\n  - {}",
        failures.len(),
        failures.join("\n  - ")
    );
    // The damage must leave some bodies valid, or the read-back above checked nothing.
    assert!(
        acknowledged.len() > 100 && answered_ok < sent,
        "{} events acknowledged, {answered_ok} of {sent} answered 200",
        acknowledged.len()
    );
}
