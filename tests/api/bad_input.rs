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

/// A server for the damaged-input tests, and its DSN settings: no rate limits (thousands of
/// requests), and no retention. A damaged timestamp can date an event centuries back, and
/// the retention job deletes events by their own time; kept forever, every acknowledged
/// event stays to be read back.
async fn app_for_damage() -> (TestApp, Value) {
    let app = spawn_app_with(|c| {
        c.limits.rate.ingest_per_minute = 0;
        c.limits.rate.analytics_per_minute = 0;
        c.limits.rate.general_per_minute = 0;
    })
    .await;
    let (st, b) = app
        .put("/v1/errors/retention/set", &json!({"days": 0}))
        .await;
    assert_eq!(st.as_u16(), 200, "{b}");
    let dsn = app.get_ok("/v1/settings/dsn").await;
    (app, dsn)
}

/// Thousands of damaged capture bodies, on every capture route (native, Sentry and the other
/// dialects), each one a few random changes away from a valid capture. Every one gets an answer: a success or a refusal in the route's
/// documented error format, never a 5xx or a dropped connection, and every event a success
/// acknowledged can be read back afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_capture_bodies_are_answered_and_what_is_acknowledged_is_stored() {
    let (app, dsn) = app_for_damage().await;
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
    let message = serde_json::to_vec(&json!({
        "text": "nightly import finished with 3 skipped rows", "level": "warning",
        "tags": {"job": "import"}, "environment": "production", "release": "1.4.2",
    }))
    .unwrap();
    let log_center = serde_json::to_vec(&json!({
        "project_id": "default", "environment": "production", "level": "ERROR",
        "timestamp": "2026-12-06T10:00:00Z", "version": "1.2.3", "commit_hash": "abc1234",
        "error": {"type": "ValueError", "message": "invalid literal for int() with base 10: 'abc'",
            "file_path": "apps/users/views.py", "line_number": 42,
            "stack_trace": ["Traceback (most recent call last):",
                "  File \"apps/users/views.py\", line 42, in get_user", "ValueError: abc"]},
        "context": {"url": "/api/users/123", "method": "GET", "user_id": "u_12345"},
    }))
    .unwrap();
    let miniapm = serde_json::to_vec(&json!({
        "exception_class": "RuntimeError", "message": "Invalid state",
        "backtrace": ["app/models/user.rb:42:in `save`"], "fingerprint": "users_save",
        "request_id": "abc-123-def", "user_id": "123", "timestamp": "2026-12-06T10:00:00Z",
        "source_context": {"file": "app/models/user.rb", "lineno": 42, "context_line": "raise"},
    }))
    .unwrap();
    let els = serde_json::to_vec(&json!({
        "message": "Database connection failed", "source": "backend", "level": "error",
        "stack_trace": "Error: Connection timeout\n    at Database.connect(db.js:45)",
        "metadata": {"userId": "u-1", "url": "/checkout"},
    }))
    .unwrap();
    // The route's body, how it authenticates, and which error body it answers with
    // (`documented_error`): the native one, or the Error Logging System's envelope.
    enum Auth {
        Bearer,
        Sentry,
        ApiKey,
    }
    /// Where a success names the events it acknowledged.
    enum Acks {
        /// `event_id` of the answer.
        Answer,
        /// `event_id` of each `ok` item of `results`.
        Results,
        /// Nowhere the test reads back.
        Unnamed,
    }
    struct Route<'a> {
        path: String,
        seed: &'a [u8],
        content_type: &'static str,
        auth: Auth,
        native_errors: bool,
        acks: Acks,
    }
    let json_route = |path: &str, seed, auth, native_errors, acks| Route {
        path: path.to_owned(),
        seed,
        content_type: "application/json",
        auth,
        native_errors,
        acks,
    };
    let routes = [
        json_route(
            "/v1/errors/capture",
            &native[..],
            Auth::Bearer,
            true,
            Acks::Answer,
        ),
        json_route(
            "/v1/errors/capture/batch",
            &batch,
            Auth::Bearer,
            true,
            Acks::Results,
        ),
        json_route(
            "/v1/errors/message",
            &message,
            Auth::Bearer,
            true,
            Acks::Answer,
        ),
        json_route(
            &format!("/api/{project}/store/"),
            &store,
            Auth::Sentry,
            true,
            Acks::Unnamed,
        ),
        Route {
            path: format!("/api/{project}/envelope/"),
            seed: &envelope,
            content_type: "application/x-sentry-envelope",
            auth: Auth::Sentry,
            native_errors: true,
            acks: Acks::Unnamed,
        },
        json_route(
            "/api/v1/logs/report",
            &log_center,
            Auth::Bearer,
            true,
            Acks::Unnamed,
        ),
        json_route(
            "/ingest/errors",
            &miniapm,
            Auth::Bearer,
            true,
            Acks::Unnamed,
        ),
        json_route("/api/errors", &els, Auth::ApiKey, false, Acks::Unnamed),
    ];

    let mut rng = Mix(0x5EED_F417_1234_0001);
    let mut failures = Vec::new();
    // (event id, the start of the body that made it)
    let mut acknowledged: Vec<(String, String)> = Vec::new();
    let (mut sent, mut answered_ok) = (0, 0);
    for round in 0..250 {
        for route in &routes {
            let path = &route.path;
            let body = mutate(route.seed, &mut rng);
            sent += 1;
            let rb = match route.auth {
                Auth::Bearer => app.authed(Method::POST, path),
                Auth::Sentry => app.anon(Method::POST, path).header("x-sentry-auth", &auth),
                Auth::ApiKey => app.anon(Method::POST, path).header("x-api-key", &app.key),
            };
            let rb = rb
                .header("content-type", route.content_type)
                .body(body.clone());
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
            if !(200..300).contains(&status) && !(400..500).contains(&status) {
                failures.push(format!(
                    "round {round} {path}: HTTP {status} {text} for {shown:?}"
                ));
                continue;
            }
            if status >= 400 {
                if !documented_error(&answer, status, route.native_errors) {
                    failures.push(format!(
                        "round {round} {path}: HTTP {status} without the documented error body: {text}"
                    ));
                }
                continue;
            }
            answered_ok += 1;
            match route.acks {
                Acks::Answer => acknowledged.push((s(&answer["event_id"]), shown)),
                Acks::Results => {
                    for item in answer["results"].as_array().into_iter().flatten() {
                        if item["ok"] == json!(true) {
                            acknowledged.push((s(&item["event_id"]), shown.clone()));
                        }
                    }
                }
                Acks::Unnamed => {}
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

/// Damaged protobuf messages to the gRPC capture methods: every call ends with OK or a
/// refusal of the input (`send_damaged_grpc`), never a failure of the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_grpc_capture_messages_are_answered_with_a_status() {
    use faultline::pb;
    use prost::Message;
    let (app, dsn) = app_for_damage().await;
    let key = s(&dsn["public_key"]);
    let frame = |function: &str, lineno| pb::Frame {
        filename: "app/views.py".into(),
        function: function.into(),
        module: "app.views".into(),
        lineno,
        colno: 7,
        in_app: Some(true),
        context_line: "qty = int(form['qty'])".into(),
        minified: None,
    };
    let event = pb::CaptureRequest {
        message: "invalid literal for int(): 'abc'".into(),
        code: "E_QTY".into(),
        tags: [("region".to_owned(), "eu".to_owned())].into(),
        exception: Some(pb::ExceptionInput {
            r#type: "ValueError".into(),
            message: "invalid literal for int(): 'abc'".into(),
            frames: vec![frame("checkout", 10), frame("parse", 22)],
            module: "builtins".into(),
            ..Default::default()
        }),
        level: pb::Level::Error as i32,
        release: "1.4.2".into(),
        environment: "production".into(),
        user_id: "u-17".into(),
        fingerprint: vec!["checkout".into()],
        timestamp: Some(prost_types::Timestamp {
            seconds: 1_780_000_000,
            nanos: 5,
        }),
        payload_json: r#"{"request": {"url": "/checkout"}}"#.into(),
        platform: "python".into(),
        transaction: "/checkout".into(),
        ..Default::default()
    };
    let batch = pb::CaptureBatchRequest {
        events: vec![
            event.clone(),
            pb::CaptureRequest {
                message: "cache miss storm".into(),
                ..Default::default()
            },
        ],
    };
    let envelope = pb::CaptureEnvelopeRequest {
        body: b"{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\"}\n{\"type\":\"event\"}\n{\"message\":\"hello\",\"level\":\"error\",\"exception\":{\"values\":[{\"type\":\"KeyError\",\"value\":\"sku\"}]}}\n".to_vec(),
        format: pb::SentryPayloadFormat::Envelope as i32,
        sentry_key: key,
        ..Default::default()
    };
    let methods: [(&str, Vec<u8>); 3] = [
        ("Capture", event.encode_to_vec()),
        ("CaptureBatch", batch.encode_to_vec()),
        ("CaptureEnvelope", envelope.encode_to_vec()),
    ];

    let calls: Vec<(String, Vec<u8>)> = methods
        .into_iter()
        .map(|(m, b)| (format!("faultline.v1.CaptureService/{m}"), b))
        .collect();
    let statuses = send_damaged_grpc(&app, &calls, 0x6A9C_0000_5EED_0002, 300).await;
    // Some damage must leave the message valid, and some must not.
    for method in ["Capture", "CaptureBatch"] {
        for code in ["0", "13"] {
            assert!(
                statuses.contains_key(&format!("faultline.v1.CaptureService/{method} {code}")),
                "no {method} call answered {code}: {statuses:?}"
            );
        }
    }
}

/// Sends `rounds` damaged copies of each `(method path, encoded message)` in `calls` over one
/// HTTP/2 connection, framed correctly, and fails unless every call ends with OK or a refusal
/// of the input: INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, UNAUTHENTICATED, or INTERNAL
/// from the protobuf decoder (what gRPC prescribes for a message that does not parse). The
/// connection must stay open. Returns how often each `"<method> <code>"` came.
async fn send_damaged_grpc(
    app: &TestApp,
    calls: &[(String, Vec<u8>)],
    seed: u64,
    rounds: usize,
) -> std::collections::BTreeMap<String, usize> {
    use http_body_util::{BodyExt, Full};
    let (mut sender, conn) = h2_connect::<Full<bytes::Bytes>>(app).await;
    let mut rng = Mix(seed);
    let mut failures = Vec::new();
    let mut statuses: std::collections::BTreeMap<String, usize> = Default::default();
    for round in 0..rounds {
        for (method, message) in calls {
            let message = mutate(message, &mut rng);
            let mut framed = vec![0u8];
            framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
            framed.extend_from_slice(&message);
            let req = http::Request::builder()
                .method("POST")
                .uri(format!("{}/{method}", app.base_url))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .header("authorization", format!("Bearer {}", app.key))
                .body(Full::new(bytes::Bytes::from(framed)))
                .unwrap();
            let answer = match sender.send_request(req).await {
                Ok(a) => a,
                Err(e) => {
                    failures.push(format!("round {round} {method}: no answer: {e}"));
                    continue;
                }
            };
            let (head, body) = answer.into_parts();
            let trailers = match body.collect().await {
                Ok(c) => c.trailers().cloned().unwrap_or_default(),
                Err(e) => {
                    failures.push(format!("round {round} {method}: answer cut off: {e}"));
                    continue;
                }
            };
            // A status comes in the trailers, or in the head of a trailers-only answer.
            let field = |name: &str| {
                trailers
                    .get(name)
                    .or_else(|| head.headers.get(name))
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            };
            let code = field("grpc-status").unwrap_or_default();
            let text = percent_decoded(&field("grpc-message").unwrap_or_default());
            let fine = match code.as_str() {
                "0" | "3" | "5" | "7" | "16" => true,
                "13" => text.starts_with("failed to decode Protobuf message"),
                _ => false,
            };
            if head.status != http::StatusCode::OK || !fine {
                failures.push(format!(
                    "round {round} {method}: HTTP {}, grpc-status {code:?} {text:?}",
                    head.status
                ));
            }
            *statuses.entry(format!("{method} {code}")).or_default() += 1;
        }
    }
    assert!(!conn.is_finished(), "the server closed the connection");
    assert!(
        failures.is_empty(),
        "{} damaged calls went wrong:\n  - {}",
        failures.len(),
        failures.join("\n  - ")
    );
    statuses
}

/// `grpc-message` as sent: percent-encoded UTF-8.
fn percent_decoded(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `answer` is an error body in the documented format: the native one (an `error`
/// object naming the status), or the Error Logging System's (`error` as a message, beside
/// `"status": "error"`).
fn documented_error(answer: &Value, status: u16, native: bool) -> bool {
    if native {
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
            && answer["error"]["statusCode"] == json!(status)
    } else {
        answer["error"].as_str().is_some_and(|m| !m.is_empty())
            && answer["status"] == json!("error")
    }
}

/// `app_for_damage` with two groups of one event each, so that lists page: the app, the
/// first event's id and its group's id.
async fn app_with_two_groups() -> (TestApp, String, String) {
    let (app, _) = app_for_damage().await;
    let first = app
        .capture(
            json!({"exception": {"type": "ValueError", "message": "bad qty"},
            "environment": "production", "release": "1.4.2", "user_id": "u-17",
            "tags": {"region": "eu"}}),
        )
        .await;
    app.capture(json!({"message": "cache miss storm", "tags": {"region": "us"}}))
        .await;
    let (event, group) = (s(&first["event_id"]), s(&first["group_id"]));
    (app, event, group)
}

/// A query string as bytes, percent-encoded except for its structure (`&`, `=`) and the
/// characters a query commonly carries raw, so damage to the structure reaches the server.
fn query_text(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() * 2);
    for &c in b {
        if c.is_ascii_alphanumeric() || b"-._~&=:,+".contains(&c) {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// Damaged query strings (filters, paging, cursors), ids in paths, and the bodies of the
/// triage and management routes (keys, projects, team, policies): every request gets a
/// success or a refusal in the route's documented error format, never a 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_queries_ids_and_triage_bodies_are_answered() {
    let (app, event, group) = app_with_two_groups().await;
    let project = s(&app
        .post_ok("/v1/projects/create", &json!({"name": "damage"}))
        .await["id"]);
    let page = app.get_ok("/v1/errors/list?limit=1").await;
    let cursor = s(&page["next_cursor"]);
    let groups_page = app.get_ok("/v1/errors/groups?limit=1").await;
    let groups_cursor = s(&groups_page["next_cursor"]);
    assert!(
        !cursor.is_empty() && !groups_cursor.is_empty(),
        "{page} {groups_page}"
    );

    // (path, query or body, whether the route answers errors in the native format)
    let reads: Vec<(String, String, bool)> = vec![
        (
            "/v1/errors/list".into(),
            format!(
                "level=error&environment=production&tag=region:eu&limit=20&since=2026-01-01T00:00:00Z&until=2027-01-01T00:00:00Z&user_id=u-17&release=1.4.2&group_id={group}&cursor={cursor}"
            ),
            true,
        ),
        (
            "/v1/errors/search".into(),
            format!(
                "q=ValueError+qty&environment=production&status=unresolved&limit=5&cursor={cursor}"
            ),
            true,
        ),
        (
            "/v1/errors/groups".into(),
            format!(
                "status=unresolved&sort=count_desc&limit=10&environment=production&cursor={groups_cursor}"
            ),
            true,
        ),
        (
            format!("/v1/errors/events/{group}"),
            format!("limit=20&cursor={cursor}"),
            true,
        ),
        (format!("/v1/errors/get/{event}"), String::new(), true),
        (format!("/v1/projects/get/{project}"), String::new(), true),
        (
            format!("/v1/errors/group_detail/{group}"),
            String::new(),
            true,
        ),
        (
            "/api/errors".into(),
            "limit=10&level=error&page=2&source=backend".into(),
            false,
        ),
        (
            "/api/analytics/trends".into(),
            "period=week&group_by=day".into(),
            false,
        ),
        (
            "/api/monitoring/metrics".into(),
            "timeframe=24h".into(),
            false,
        ),
    ];
    let writes: Vec<(Method, String, Value)> = vec![
        (
            Method::POST,
            "/v1/errors/bulk".into(),
            json!({"error_group_ids": [group], "action": "ignore"}),
        ),
        (
            Method::POST,
            "/v1/errors/export".into(),
            json!({"filter": {"environment": "production", "level": "error", "tags": {"region": "eu"}}, "format": "json", "limit": 10}),
        ),
        (
            Method::PUT,
            "/v1/errors/retention/set".into(),
            json!({"days": 0, "auto_export_before_cleanup": false, "export_destination": ""}),
        ),
        (
            Method::POST,
            "/v1/errors/message".into(),
            json!({"text": "x", "level": "warning", "idempotency_key": "k-1"}),
        ),
        (
            Method::POST,
            "/api/settings/api-keys".into(),
            json!({"name": "dashboard", "permissions": ["read", "ingest"], "expires_at": "2099-12-31T23:59:59Z", "project_id": project}),
        ),
        (
            Method::POST,
            "/v1/projects/create".into(),
            json!({"name": "mobile"}),
        ),
        (
            Method::PUT,
            format!("/v1/projects/rename/{project}"),
            json!({"name": "mobile-app"}),
        ),
        (
            Method::POST,
            "/api/settings/team/invite".into(),
            json!({"email": "dev@example.com", "role": "developer", "name": "Dev"}),
        ),
        // No rate limits in the policy: damage that lowered them would refuse the rest.
        (
            Method::PUT,
            "/v1/settings/policy".into(),
            json!({"scrub_fields": ["ssn", "iban"], "allowed_origins": ["https://app.example.com"]}),
        ),
        (
            Method::PUT,
            "/v1/errors/ingest_policy/set".into(),
            json!({"anonymous_loopback_ingest": false}),
        ),
    ];

    // Error Logging System bodies: their errors come in that document's envelope.
    let rule = app
        .send(
            app.anon(Method::POST, "/api/alerts/rules")
                .header("x-api-key", &app.key)
                .json(&json!({"name": "High Error Rate", "condition": "error_count > 500 in 5m"})),
        )
        .await;
    let incident = app
        .send(
            app.anon(Method::POST, "/api/alerts/incidents")
                .header("x-api-key", &app.key)
                .json(&json!({"title": "Database Connection Timeout"})),
        )
        .await;
    let (rule, incident) = (s(&rule.body["data"]["id"]), s(&incident.body["data"]["id"]));
    let els_writes: Vec<(Method, String, Value)> = vec![
        (
            Method::POST,
            "/api/alerts/rules".into(),
            json!({"name": "High Error Rate", "condition": "error_count > threshold in time_window",
                   "threshold": 50, "time_window": "5m", "notifications": ["email", "slack"], "enabled": true}),
        ),
        (
            Method::PUT,
            format!("/api/alerts/rules/{rule}"),
            json!({"condition": "new_issues > 0 in 1h", "severity": "critical", "enabled": false}),
        ),
        (
            Method::POST,
            "/api/alerts/incidents".into(),
            json!({"title": "Database Connection Timeout", "severity": "critical",
                   "description": "Multiple database connection timeouts detected", "assigned_to": "user-123"}),
        ),
        (
            Method::PUT,
            format!("/api/alerts/incidents/{incident}"),
            json!({"status": "investigating", "assigned_to": "user-7"}),
        ),
    ];

    let mut rng = Mix(0xD4A6_0000_0000_0003);
    let mut failures = Vec::new();
    let mut sent = 0;
    for round in 0..150 {
        let mut requests = Vec::new();
        for (path, query, native) in &reads {
            // The path's id (if any) or the query takes the damage.
            let (path, query) = if query.is_empty() {
                let (base, id) = path.rsplit_once('/').unwrap();
                (
                    format!("{base}/{}", query_text(&mutate(id.as_bytes(), &mut rng))),
                    String::new(),
                )
            } else {
                (
                    path.clone(),
                    query_text(&mutate(query.as_bytes(), &mut rng)),
                )
            };
            let url = if query.is_empty() {
                path.clone()
            } else {
                format!("{path}?{query}")
            };
            let rb = if *native {
                app.authed(Method::GET, &url)
            } else {
                app.anon(Method::GET, &url).header("x-api-key", &app.key)
            };
            requests.push((url, rb, *native));
        }
        for (method, path, body) in &writes {
            let body = mutate(&serde_json::to_vec(body).unwrap(), &mut rng);
            let rb = app
                .authed(method.clone(), path)
                .header("content-type", "application/json")
                .body(body);
            requests.push((path.clone(), rb, true));
        }
        for (method, path, body) in &els_writes {
            let body = mutate(&serde_json::to_vec(body).unwrap(), &mut rng);
            let rb = app
                .anon(method.clone(), path)
                .header("x-api-key", &app.key)
                .header("content-type", "application/json")
                .body(body);
            requests.push((path.clone(), rb, false));
        }
        for (url, rb, native) in requests {
            sent += 1;
            let resp = match rb.send().await {
                Ok(r) => r,
                Err(e) => {
                    failures.push(format!("round {round} {url}: no answer ({e})"));
                    continue;
                }
            };
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap_or_default();
            if !(200..300).contains(&status) && !(400..500).contains(&status) {
                failures.push(format!("round {round} {url}: HTTP {status} {text}"));
                continue;
            }
            if status >= 400 {
                let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if !documented_error(&answer, status, native) {
                    failures.push(format!(
                        "round {round} {url}: HTTP {status} without the documented error body: {text}"
                    ));
                }
            }
        }
    }
    let (health, _) = app.get("/health").await;
    assert_eq!(health.as_u16(), 200, "the server stopped answering");
    assert!(
        failures.is_empty(),
        "{} of {sent} damaged requests went wrong:\n  - {}",
        failures.len(),
        failures.join("\n  - ")
    );
}

/// Damaged protobuf messages to the gRPC read and triage methods (filters, cursors, ids,
/// bulk actions): every call ends with OK or a refusal of the input (`send_damaged_grpc`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_grpc_group_messages_are_answered_with_a_status() {
    use faultline::pb;
    use prost::Message;
    let (app, event, group) = app_with_two_groups().await;
    let cursor = s(&app.get_ok("/v1/errors/list?limit=1").await["next_cursor"]);
    let filter = pb::EventFilter {
        level: pb::Level::Error as i32,
        status: pb::GroupStatus::Unresolved as i32,
        environment: "production".into(),
        release: "1.4.2".into(),
        tags: [("region".to_owned(), "eu".to_owned())].into(),
        user_id: "u-17".into(),
        group_id: group.clone(),
        since: Some(prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        }),
        until: Some(prost_types::Timestamp {
            seconds: 1_900_000_000,
            nanos: 0,
        }),
    };
    let service = |m: &str| format!("faultline.v1.GroupService/{m}");
    let calls = vec![
        (
            service("ListEvents"),
            pb::ListEventsRequest {
                filter: Some(filter.clone()),
                cursor: cursor.clone(),
                limit: 20,
            }
            .encode_to_vec(),
        ),
        (
            service("SearchEvents"),
            pb::SearchEventsRequest {
                q: "ValueError qty".into(),
                filter: Some(filter),
                cursor: cursor.clone(),
                limit: 5,
            }
            .encode_to_vec(),
        ),
        (
            service("GetEvent"),
            pb::GetEventRequest { event_id: event }.encode_to_vec(),
        ),
        (
            service("ListGroups"),
            pb::ListGroupsRequest {
                status: pb::GroupStatus::Unresolved as i32,
                sort: 1,
                cursor: String::new(),
                limit: 10,
                query: String::new(),
                assignee: String::new(),
                first_release: String::new(),
            }
            .encode_to_vec(),
        ),
        (
            service("GetGroup"),
            pb::GetGroupRequest {
                group_id: group.clone(),
            }
            .encode_to_vec(),
        ),
        (
            service("ListGroupEvents"),
            pb::ListGroupEventsRequest {
                group_id: group.clone(),
                cursor,
                limit: 20,
            }
            .encode_to_vec(),
        ),
        (
            service("BulkUpdateGroups"),
            pb::BulkUpdateGroupsRequest {
                group_ids: vec![group],
                action: 1,
                ..Default::default()
            }
            .encode_to_vec(),
        ),
    ];
    let statuses = send_damaged_grpc(&app, &calls, 0x6A9C_0000_5EED_0004, 150).await;
    // Some damage must leave the message valid (a short one, a bare id, seldom stays so).
    for method in ["ListEvents", "SearchEvents", "ListGroups"] {
        assert!(
            statuses.contains_key(&service(&format!("{method} 0"))),
            "no {method} call answered OK: {statuses:?}"
        );
    }
}
