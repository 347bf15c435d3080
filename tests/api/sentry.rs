//! Sentry SDK compatibility, driven by the real SDKs (`sentry-sdk` for Python, `@sentry/node`)
//! and by hand-built envelopes for the protocol corners SDKs rarely hit: auth forms, content
//! encodings, unknown items, limits, CORS, idempotency and the gRPC `CaptureEnvelope`.

use std::{io::Write, time::Duration};

use faultline::pb;
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{helpers::*, sdk};

/// The project's DSN, as the settings API shows it.
async fn dsn(app: &TestApp) -> String {
    let b = app.get_ok("/v1/settings/dsn").await;
    s(&b["dsn"])
}

/// (public key, project number) of the default project.
pub(crate) async fn key_and_project(app: &TestApp) -> (String, u64) {
    let b = app.get_ok("/v1/settings/dsn").await;
    (s(&b["public_key"]), n(&b["project_id"]))
}

/// Every stored event in full (listings leave the payload out).
async fn full_events(app: &TestApp) -> Vec<Value> {
    let mut out = Vec::new();
    for e in app.list_all("").await {
        out.push(app.event(&s(&e["id"])).await);
    }
    out
}

/// The stored event whose Sentry `event_id` is `sentry_id`.
fn by_sentry_id<'a>(events: &'a [Value], sentry_id: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["payload"]["event_id"].as_str() == Some(sentry_id))
        .unwrap_or_else(|| panic!("no stored event has Sentry id {sentry_id}; stored: {events:#?}"))
}

fn envelope(header: Value, items: &[(Value, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    writeln!(out, "{header}").unwrap();
    for (h, payload) in items {
        writeln!(out, "{h}").unwrap();
        out.extend_from_slice(payload);
        out.push(b'\n');
    }
    out
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

const PY_APP: &str = r#"
import json, sys
import sentry_sdk

sentry_sdk.init(dsn=sys.argv[1], release="shop@1.2.3", environment="staging")
sentry_sdk.set_user({"id": "user-42", "email": "u42@example.com"})
sentry_sdk.set_tag("tenant", "acme")
out = {}

def charge(order_id):
    amount = order_id * 10
    raise ValueError("payment declined for order %d amount %d" % (order_id, amount))

out["same_place"] = []
for order in (1, 2):
    try:
        charge(order)
    except ValueError:
        out["same_place"].append(sentry_sdk.capture_exception())

out["message"] = sentry_sdk.capture_message("disk almost full on /var", level="warning")

def load_config():
    try:
        {}["database_url"]
    except KeyError as e:
        raise RuntimeError("configuration is incomplete") from e

try:
    load_config()
except RuntimeError:
    out["chain"] = sentry_sdk.capture_exception()

def with_fingerprint(tenant):
    with sentry_sdk.new_scope() as scope:
        scope.fingerprint = ["{{ default }}", tenant]
        try:
            charge(7)
        except ValueError:
            return sentry_sdk.capture_exception()

out["fp_a"] = with_fingerprint("tenant-a")
out["fp_b"] = with_fingerprint("tenant-b")
out["fp_a2"] = with_fingerprint("tenant-a")
sentry_sdk.flush(timeout=30)
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_events_land_in_the_right_groups_with_their_fields() {
    let app = spawn_app().await;
    let dsn = dsn(&app).await;
    let ids = sdk::python_script(PY_APP, &[&dsn]).await.json();
    let events = full_events(&app).await;
    assert_eq!(events.len(), 7, "seven events were sent: {events:#?}");

    // The same error from the same place, with different values: one group.
    let a = by_sentry_id(&events, &s(&ids["same_place"][0]));
    let b = by_sentry_id(&events, &s(&ids["same_place"][1]));
    assert_eq!(a["group_id"], b["group_id"]);
    assert_eq!(a["exception"]["type"], "ValueError");
    assert_eq!(
        a["exception"]["value"],
        "payment declined for order 1 amount 10"
    );
    let frames = arr(&a["exception"]["frames"]);
    let last = frames.last().expect("frames");
    assert_eq!(last["function"], "charge");
    assert!(s(&last["filename"]).ends_with("app.py"), "{last}");
    assert!(last["lineno"].as_u64().is_some_and(|l| l > 0), "{last}");
    assert_eq!(
        last["context_line"].as_str().map(str::trim),
        Some("raise ValueError(\"payment declined for order %d amount %d\" % (order_id, amount))")
    );
    assert_eq!(a["level"], "error");
    assert_eq!(a["release"], "shop@1.2.3");
    assert_eq!(a["environment"], "staging");
    assert_eq!(a["user_id"], "user-42");
    assert_eq!(a["tags"]["tenant"], "acme");
    assert_eq!(a["payload"]["platform"], "python");
    // Fields Faultline does not model stay in the stored payload.
    assert!(
        a["payload"]["sdk"]["name"]
            .as_str()
            .is_some_and(|n| n.contains("python"))
    );
    assert!(
        a["payload"]["contexts"]["runtime"].is_object(),
        "{}",
        a["payload"]
    );

    let msg = by_sentry_id(&events, &s(&ids["message"]));
    assert_eq!(msg["level"], "warning");
    assert_eq!(msg["message"], "disk almost full on /var");
    assert_ne!(msg["group_id"], a["group_id"]);

    // A chain: the last exception is the main one, the cause stays in the payload.
    let chain = by_sentry_id(&events, &s(&ids["chain"]));
    assert_eq!(chain["exception"]["type"], "RuntimeError");
    assert_eq!(chain["exception"]["value"], "configuration is incomplete");
    let values = arr(&chain["payload"]["exception"]["values"]);
    assert_eq!(values.len(), 2);
    assert_eq!(values[0]["type"], "KeyError");

    // A custom fingerprint with {{ default }}: one group per tenant, apart from the default.
    let fa = by_sentry_id(&events, &s(&ids["fp_a"]));
    let fb = by_sentry_id(&events, &s(&ids["fp_b"]));
    let fa2 = by_sentry_id(&events, &s(&ids["fp_a2"]));
    assert_eq!(fa["group_id"], fa2["group_id"]);
    assert_ne!(fa["group_id"], fb["group_id"]);
    assert_ne!(fa["group_id"], a["group_id"]);
    assert_eq!(
        fa["payload"]["fingerprint"],
        json!(["{{ default }}", "tenant-a"])
    );

    let group = app.group(&s(&a["group_id"])).await;
    assert_eq!(n(&group["count"]), 2, "{group}");

    // The id the SDK reported (`last_event_id()`) finds the event too.
    let by_sdk_id = app.event(&s(&ids["same_place"][0])).await;
    assert_eq!(by_sdk_id["id"], a["id"]);

    // The same events over gRPC.
    let mut groups = app.groups_client().await;
    let ev = groups
        .get_event(app.req(pb::GetEventRequest {
            event_id: s(&a["id"]),
        }))
        .await
        .expect("GetEvent")
        .into_inner()
        .event
        .expect("an event");
    assert_eq!(ev.group_id, s(&a["group_id"]));
    assert_eq!(ev.release, "shop@1.2.3");
    assert_eq!(ev.environment, "staging");
    assert_eq!(ev.user_id, "user-42");
    assert_eq!(ev.tags.get("tenant").map(String::as_str), Some("acme"));
    let exc = ev.exception.expect("an exception");
    assert_eq!(exc.r#type, "ValueError");
    assert_eq!(
        exc.frames.last().map(|f| f.function.as_str()),
        Some("charge")
    );
    let payload: Value = serde_json::from_str(&ev.payload_json).expect("payload JSON");
    assert_eq!(payload["event_id"], ids["same_place"][0]);
}

const NODE_APP: &str = r#"
const Sentry = require('@sentry/node');
const [dsn, mode] = process.argv.slice(2);
Sentry.init({ dsn, release: 'web@2.0.0', environment: 'production' });

function renderInvoice(id) {
  throw new TypeError('invoice ' + id + ' has no lines');
}

async function main() {
  if (mode === 'uncaught') {
    setTimeout(() => renderInvoice(9), 0);
    return;
  }
  const attempt = (id, hint) => {
    try { renderInvoice(id); } catch (e) { return Sentry.captureException(e, hint); }
  };
  // One call site for both, so their stacks are the same (the JS grouping reads context lines).
  // Bodies over the SDK's gzip threshold (32 KiB) are sent gzip-compressed.
  const cases = [['small', 1, {}], ['big', 2, { extra: { blob: 'x'.repeat(200 * 1024) } }]];
  const ids = {};
  for (const [name, id, hint] of cases) ids[name] = attempt(id, hint);
  await Sentry.flush(30000);
  console.log(JSON.stringify(ids));
}
main();
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_sdk_capture_exception_gzipped_and_uncaught_arrive() {
    let app = spawn_app().await;
    let dsn = dsn(&app).await;
    let run = sdk::node_script(NODE_APP, &[&dsn, "capture"]).await;
    assert!(run.success, "node failed:\n{}\n{}", run.stdout, run.stderr);
    let ids = run.json();
    let events = full_events(&app).await;
    assert_eq!(events.len(), 2, "{events:#?}");
    let small = by_sentry_id(&events, &s(&ids["small"]));
    let big = by_sentry_id(&events, &s(&ids["big"]));
    assert_eq!(small["exception"]["type"], "TypeError");
    assert_eq!(small["exception"]["value"], "invoice 1 has no lines");
    assert_eq!(small["release"], "web@2.0.0");
    assert_eq!(small["environment"], "production");
    assert_eq!(small["payload"]["platform"], "node");
    assert_eq!(
        arr(&small["exception"]["frames"])
            .last()
            .map(|f| f["function"].clone()),
        Some(json!("renderInvoice"))
    );
    assert_eq!(small["group_id"], big["group_id"]);
    assert_eq!(
        big["payload"]["extra"]["blob"].as_str().map(str::len),
        Some(200 * 1024),
        "the gzipped event arrived whole"
    );

    // An uncaught error: the SDK's handler sends it, then the process exits non-zero.
    let run = sdk::node_script(NODE_APP, &[&dsn, "uncaught"]).await;
    assert!(!run.success, "an uncaught error should end the process");
    let events = full_events(&app).await;
    let uncaught = events
        .iter()
        .find(|e| e["exception"]["value"] == "invoice 9 has no lines")
        .unwrap_or_else(|| {
            panic!(
                "the uncaught error did not arrive:\n{}\n{events:#?}",
                run.stderr
            )
        });
    assert_eq!(uncaught["level"], "fatal");
    assert_eq!(
        uncaught["payload"]["exception"]["values"][0]["mechanism"]["handled"],
        false
    );
}

/// The browser SDK in jsdom, the DOM Sentry's own browser tests run it in: the page's globals
/// are the DOM's, the SDK sends envelopes with `fetch` (Node's) as it would from a page.
const BROWSER_APP: &str = r#"
const { JSDOM } = require('jsdom');
const [dsn, userAgent] = process.argv.slice(2);
const dom = new JSDOM(
  '<!doctype html><html><head><title>Cart</title></head><body><button id="pay">Pay</button></body></html>',
  { url: 'https://shop.example.com/cart?step=2', referrer: 'https://shop.example.com/',
    resources: { userAgent }, pretendToBeVisual: true });
const w = dom.window;
for (const key of ['window', 'document', 'navigator', 'location', 'history', 'HTMLElement',
                   'Element', 'Node', 'Event', 'CustomEvent', 'DOMParser', 'XMLHttpRequest',
                   'localStorage', 'sessionStorage', 'screen', 'addEventListener',
                   'removeEventListener', 'dispatchEvent']) {
  const v = w[key];
  const value = typeof v === 'function' && /^[a-z]/.test(key) ? v.bind(w) : v;
  Object.defineProperty(globalThis, key, { value, configurable: true, writable: true });
}
const Sentry = require('@sentry/browser');
Sentry.init({ dsn, release: 'shop@3.1.0', environment: 'production' });
function applyDiscount(cart) { return cart.coupon.percent; }
async function main() {
  const ids = {};
  document.getElementById('pay').click();
  try { applyDiscount({}); } catch (e) { ids.exception = Sentry.captureException(e); }
  ids.message = Sentry.captureMessage('payment widget failed to load', 'warning');
  ids.flushed = await Sentry.flush(30000);
  console.log(JSON.stringify(ids));
}
main();
"#;

/// Sentry's browser SDK, unchanged, reaches the server; its events get the browser, OS and
/// device tags Sentry reads from the page's `User-Agent`, since the SDK sends no such context.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_sdk_events_arrive_with_the_browser_read_from_the_user_agent() {
    let app = spawn_app().await;
    let dsn = dsn(&app).await;
    let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.71 Safari/537.36";
    let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1";
    let mut groups = Vec::new();
    for (ua, browser, os, device) in [
        (chrome, "Chrome 120.0.6099", "Windows 10", None),
        (iphone, "Mobile Safari 17.1.2", "iOS 17.1.2", Some("iPhone")),
    ] {
        let run = sdk::browser_script(BROWSER_APP, &[&dsn, ua]).await;
        assert!(run.success, "node failed:\n{}\n{}", run.stdout, run.stderr);
        let ids = run.json();
        assert_eq!(ids["flushed"], json!(true), "{ids}");
        let events = full_events(&app).await;
        let error = by_sentry_id(&events, &s(&ids["exception"]));
        assert_eq!(error["exception"]["type"], "TypeError");
        assert_eq!(error["release"], "shop@3.1.0");
        assert_eq!(error["payload"]["platform"], "javascript");
        assert_eq!(error["payload"]["sdk"]["name"], "sentry.javascript.browser");
        assert_eq!(
            error["payload"]["request"]["headers"]["User-Agent"],
            json!(ua)
        );
        let tags = &error["tags"];
        assert_eq!(
            tags["url"], "https://shop.example.com/cart?step=2",
            "{tags}"
        );
        assert_eq!(tags["browser"], browser, "{tags}");
        assert_eq!(tags["browser.name"], browser.rsplit_once(' ').unwrap().0);
        assert_eq!(tags["os"], os, "{tags}");
        assert_eq!(
            tags["device.family"],
            device.map_or(Value::Null, |d| json!(d))
        );
        assert_eq!(tags["handled"], "yes");
        let message = by_sentry_id(&events, &s(&ids["message"]));
        assert_eq!(message["message"], "payment widget failed to load");
        assert_eq!(message["level"], "warning");
        assert_eq!(message["tags"]["browser"], browser);
        groups.push(s(&error["group_id"]));
    }
    // The same error from two browsers is one issue, broken down by browser.
    assert_eq!(groups[0], groups[1]);
    let detail = app.group(&groups[0]).await;
    let mut browsers: Vec<&str> = arr(&detail["top_tags"])
        .iter()
        .filter(|t| t["key"] == "browser.name")
        .filter_map(|t| t["value"].as_str())
        .collect();
    browsers.sort_unstable();
    assert_eq!(browsers, ["Chrome", "Mobile Safari"], "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelope_auth_forms_ids_and_idempotency() {
    let app = spawn_app().await;
    let (key, project) = key_and_project(&app).await;
    let eid = "9ec79c33ec9942ab8353589fcb2e04dc";
    let body = envelope(
        json!({"event_id": eid, "sent_at": "2024-01-01T00:00:00Z"}),
        &[(json!({"type": "event"}), br#"{"event_id":"0000000000000000000000000000000a","message":"hello from an envelope","level":"info"}"#)],
    );
    let path = format!("/api/{project}/envelope/");
    let auth = format!("Sentry sentry_key={key}, sentry_version=7, sentry_client=test/1.0");

    // X-Sentry-Auth; the envelope header's event_id wins over the event's.
    let post = |path: String, body: Vec<u8>| app.anon(Method::POST, &path).body(body);
    let r = app
        .send(post(path.clone(), body.clone()).header("x-sentry-auth", &auth))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body, json!({"id": eid}));
    // The same event again: the same answer, still one event.
    let r = app
        .send(post(path.clone(), body.clone()).header("x-sentry-auth", &auth))
        .await;
    assert_eq!(r.body, json!({"id": eid}));
    let events = app.list_all("").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["message"], "hello from an envelope");
    assert_eq!(events[0]["level"], "info");

    // ?sentry_key= (browsers), without the trailing slash, text/plain.
    let r = app
        .send(
            post(
                format!("/api/{project}/envelope?sentry_key={key}&sentry_version=7"),
                envelope(
                    json!({}),
                    &[(json!({"type":"event"}), br#"{"message":"by query"}"#)],
                ),
            )
            .header("content-type", "text/plain;charset=UTF-8"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(s(&r.body["id"]).len(), 32);

    // The DSN in the envelope header alone.
    let r = app
        .send(post(
            path.clone(),
            envelope(
                json!({"dsn": format!("http://{key}@{}/{project}", app.addr)}),
                &[(json!({"type":"event"}), br#"{"message":"by dsn"}"#)],
            ),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // The legacy store endpoint takes one event as JSON, with and without the slash.
    for p in [
        format!("/api/{project}/store/"),
        format!("/api/{project}/store"),
    ] {
        let r = app
            .send(
                post(
                    p.clone(),
                    br#"{"message":"stored the old way","extra":{"ratio":NaN}}"#.to_vec(),
                )
                .header("x-sentry-auth", &auth)
                .header("content-type", "application/json"),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{p}: {}", r.text);
    }
    let events = full_events(&app).await;
    assert_eq!(events.len(), 5);
    let stored = events
        .iter()
        .find(|e| e["message"] == "stored the old way")
        .expect("store event");
    assert_eq!(stored["payload"]["extra"]["ratio"], Value::Null);

    // No key: 401. An unknown key: 401. Another project's number: 403. All in the seed-003 format.
    let r = app.send(post(path.clone(), body.clone())).await;
    assert_error(&r, 401, "UNAUTHORIZED", "POST", &path);
    let r = app
        .send(post(path.clone(), body.clone()).header(
            "x-sentry-auth",
            "Sentry sentry_key=00000000000000000000000000000000",
        ))
        .await;
    assert_error(&r, 401, "UNAUTHORIZED", "POST", &path);
    let other = format!("/api/{}/envelope/", project + 1);
    let r = app
        .send(post(other.clone(), body.clone()).header("x-sentry-auth", &auth))
        .await;
    assert_error(&r, 403, "FORBIDDEN", "POST", &other);

    // The DSN names the host SDKs should use: the Host header, or `?host=`.
    let b = app
        .get_ok("/v1/settings/dsn?host=errors.example:8443")
        .await;
    assert_eq!(
        b["dsn"],
        json!(format!("http://{key}@errors.example:8443/{project}"))
    );
    assert_eq!(
        dsn(&app).await,
        format!("http://{key}@{}/{project}", app.addr)
    );
    let r = app
        .send(app.authed(Method::GET, "/v1/settings/dsn?host=a/b"))
        .await;
    assert_error(&r, 422, "VALIDATION_ERROR", "GET", "/v1/settings/dsn");

    // The public key is for sending only: it reads nothing.
    let r = app
        .send(app.anon(Method::GET, "/v1/errors/list").bearer_auth(&key))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app
        .send(
            app.anon(Method::GET, "/v1/settings/dsn")
                .header("x-sentry-auth", &auth),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelope_items_encodings_and_limits() {
    let app = spawn_app().await;
    let (key, project) = key_and_project(&app).await;
    let path = format!("/api/{project}/envelope/");
    let auth = format!("Sentry sentry_key={key}, sentry_version=7");
    let send = |body: Vec<u8>, encoding: Option<&str>| {
        let mut rb = app
            .anon(Method::POST, &path)
            .header("x-sentry-auth", &auth)
            .header("content-type", "application/x-sentry-envelope")
            .body(body);
        if let Some(e) = encoding {
            rb = rb.header("content-encoding", e);
        }
        app.send(rb)
    };

    // Items other than events are accepted (and not stored), unknown types included.
    let session = br#"{"sid":"7c7b6585f3c54a6d9ee76eea2e4a2c1d","status":"ok","started":"2024-01-01T00:00:00Z"}"#;
    let body = envelope(
        json!({"sent_at":"2024-01-01T00:00:00Z"}),
        &[
            (json!({"type":"session"}), session),
            (json!({"type":"client_report","length":2}), b"{}"),
            (
                json!({"type":"transaction"}),
                br#"{"type":"transaction","spans":[]}"#,
            ),
            (
                json!({"type":"attachment","length":5,"filename":"a.txt"}),
                b"hello",
            ),
            (json!({"type":"check_in"}), br#"{"status":"ok"}"#),
            (json!({"type":"log"}), b"{}"),
            (json!({"type":"span"}), b"{}"),
            (json!({"type":"profile"}), b"{}"),
            (json!({"type":"something_new"}), b"whatever"),
        ],
    );
    let r = send(body, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(app.list_all("").await.is_empty());

    // The same event under every content encoding, plus empty and bogus ones.
    let event = |n: &str| {
        envelope(
            json!({}),
            &[(
                json!({"type":"event"}),
                format!(r#"{{"message":"encoded {n}"}}"#).as_bytes(),
            )],
        )
    };
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    zlib.write_all(&event("deflate")).unwrap();
    let mut br = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut br, 4096, 5, 22);
        w.write_all(&event("br")).unwrap();
    }
    for (body, enc) in [
        (gzip(&event("gzip")), Some("gzip")),
        (zlib.finish().unwrap(), Some("deflate")),
        (br, Some("br")),
        (event("empty"), Some("")),
        (event("bogus"), Some("bogus")),
        (event("none"), None),
    ] {
        let r = send(body, enc).await;
        assert_eq!(r.status, StatusCode::OK, "{enc:?}: {}", r.text);
    }
    let messages: Vec<String> = app
        .list_all("")
        .await
        .iter()
        .map(|e| s(&e["message"]))
        .collect();
    for n in ["gzip", "deflate", "br", "empty", "bogus", "none"] {
        assert!(
            messages.contains(&format!("encoded {n}")),
            "{n} missing from {messages:?}"
        );
    }

    // A decompression bomb is stopped at the envelope limit; an event over 1 MiB is refused.
    let bomb = gzip(&vec![b' '; 30 * 1024 * 1024]);
    let r = send(bomb, Some("gzip")).await;
    assert_error(&r, 413, "PAYLOAD_TOO_LARGE", "POST", &path);
    let big = format!(
        r#"{{"message":"big","extra":{{"a":"{}"}}}}"#,
        "x".repeat(1024 * 1024)
    );
    let r = send(
        envelope(json!({}), &[(json!({"type":"event"}), big.as_bytes())]),
        None,
    )
    .await;
    assert_error(&r, 413, "PAYLOAD_TOO_LARGE", "POST", &path);

    // Truncated and corrupt input: 400 in the documented format.
    let r = send(
        b"{}\n{\"type\":\"event\",\"length\":500}\n{\"message\":\"cut".to_vec(),
        None,
    )
    .await;
    assert_error(&r, 400, "VALIDATION_ERROR", "POST", &path);
    let r = send(b"not compressed".to_vec(), Some("gzip")).await;
    assert_error(&r, 400, "VALIDATION_ERROR", "POST", &path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bodies_get_a_documented_answer_never_a_crash() {
    // 10 000 requests with one DSN key: far over its ingest rate limit, which is not tested here.
    let app = spawn_app_with(|c| c.limits.rate.ingest_per_minute = 0).await;
    let (key, project) = key_and_project(&app).await;
    let path = format!("/api/{project}/envelope/");
    let auth = format!("Sentry sentry_key={key}, sentry_version=7");
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let bodies: Vec<Vec<u8>> = (0..10_000)
        .map(|_| {
            let len = (next() % 300) as usize;
            (0..len).map(|_| next() as u8).collect()
        })
        .collect();
    let answers: Vec<Resp> = futures::stream::iter(bodies)
        .map(|body| {
            app.send(
                app.anon(Method::POST, &path)
                    .header("x-sentry-auth", &auth)
                    .body(body),
            )
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert_eq!(answers.len(), 10_000);
    for r in &answers {
        assert_error(r, 400, "VALIDATION_ERROR", "POST", &path);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_preflight_is_allowed() {
    let app = spawn_app().await;
    let (_, project) = key_and_project(&app).await;
    let r = app
        .send(
            app.anon(Method::OPTIONS, &format!("/api/{project}/envelope/"))
                .header("origin", "https://shop.example")
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "content-type,x-sentry-auth,content-encoding,sentry-trace,baggage",
                ),
        )
        .await;
    assert!(r.status.is_success(), "{} {}", r.status, r.text);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://shop.example")
    );
    let allowed = r
        .header("access-control-allow-headers")
        .unwrap_or("")
        .to_ascii_lowercase();
    for h in [
        "x-sentry-auth",
        "content-encoding",
        "content-type",
        "sentry-trace",
        "baggage",
    ] {
        assert!(allowed.contains(h), "{h} not allowed: {allowed}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_answers_429_with_sentry_rate_limits() {
    let app = spawn_app_with(|c| {
        c.ingest.queue_depth = 1;
        c.ingest.max_batch = 1;
    })
    .await;
    let (key, project) = key_and_project(&app).await;
    let path = format!("/api/{project}/envelope/");
    let auth = format!("Sentry sentry_key={key}, sentry_version=7");
    for _round in 0..10 {
        let results: Vec<Resp> = futures::future::join_all((0..64).map(|i| {
            let body = envelope(
                json!({}),
                &[(
                    json!({"type":"event"}),
                    format!(r#"{{"message":"burst {i}"}}"#).as_bytes(),
                )],
            );
            app.send(
                app.anon(Method::POST, &path)
                    .header("x-sentry-auth", &auth)
                    .body(body),
            )
        }))
        .await;
        if let Some(r) = results
            .iter()
            .find(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        {
            assert_error(r, 429, "RATE_LIMITED", "POST", &path);
            let retry = r.header("retry-after").expect("Retry-After");
            assert!(retry.parse::<u64>().is_ok_and(|s| s >= 1));
            assert_eq!(
                r.header("x-sentry-rate-limits"),
                Some(format!("{retry}::organization").as_str())
            );
            return;
        }
        assert!(results.iter().all(|r| r.status == StatusCode::OK));
    }
    panic!("64 concurrent envelopes against a queue of depth 1 never got a 429");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_capture_envelope_forwards_sentry_traffic() {
    let app = spawn_app().await;
    let (key, project) = key_and_project(&app).await;
    let mut capture = app.capture_client().await;
    let mut settings = app.settings_client().await;

    let dsn = settings
        .get_dsn(app.req(pb::GetDsnRequest {
            host: "errors.example:9000".into(),
        }))
        .await
        .expect("GetDsn")
        .into_inner();
    assert_eq!(
        dsn.dsn,
        format!("http://{key}@errors.example:9000/{project}")
    );
    assert_eq!(dsn.project_number, project);
    // Over gRPC there is no Host header: without `host` the answer says what is missing.
    let e = settings
        .get_dsn(app.req(pb::GetDsnRequest::default()))
        .await
        .expect_err("no host");
    assert_eq!(e.code(), tonic::Code::InvalidArgument);

    // Authenticated by the DSN in the envelope header alone, gzip-compressed.
    let body = envelope(
        json!({"event_id":"5d3e1b0c8a7f4e2b9c6d0a1f2e3d4c5b","dsn": dsn.dsn}),
        &[
            (json!({"type":"event"}), br#"{"platform":"python","exception":{"values":[{"type":"ZeroDivisionError","value":"division by zero","stacktrace":{"frames":[{"filename":"calc.py","function":"ratio","lineno":3,"in_app":true}]}}]}}"#),
            (json!({"type":"session"}), b"{}"),
        ],
    );
    let r = capture
        .capture_envelope(tonic::Request::new(pb::CaptureEnvelopeRequest {
            body: gzip(&body),
            content_encoding: "gzip".into(),
            format: pb::SentryPayloadFormat::Envelope as i32,
            project: String::new(),
            sentry_key: String::new(),
        }))
        .await
        .expect("CaptureEnvelope")
        .into_inner();
    assert_eq!(r.event_id, "5d3e1b0c8a7f4e2b9c6d0a1f2e3d4c5b");
    assert_eq!(r.events.len(), 1);
    assert_eq!(r.item_counts.get("event"), Some(&1));
    assert_eq!(r.item_counts.get("session"), Some(&1));
    let stored = app.event(&r.events[0].event_id).await;
    assert_eq!(stored["exception"]["type"], "ZeroDivisionError");

    // With an ingest API key instead (a forwarder), and the legacy event format.
    let r = capture
        .capture_envelope(app.req(pb::CaptureEnvelopeRequest {
            body: br#"{"message":"forwarded"}"#.to_vec(),
            format: pb::SentryPayloadFormat::Event as i32,
            project: project.to_string(),
            ..Default::default()
        }))
        .await
        .expect("CaptureEnvelope with an API key")
        .into_inner();
    assert_eq!(r.events.len(), 1);
    // As large as over REST: an envelope of 3 MiB (an attachment beside the event) is taken
    // (the service's other methods keep the 1 MiB limit, see grpc.rs); over 20 MiB, the body
    // is refused OUT_OF_RANGE.
    let attachment = vec![b'a'; 3 << 20];
    let big = envelope(
        json!({}),
        &[
            (
                json!({"type": "event"}),
                br#"{"message":"with a core dump"}"#,
            ),
            (
                json!({"type": "attachment", "length": attachment.len(), "filename": "core.bin"}),
                &attachment,
            ),
        ],
    );
    let r = capture
        .capture_envelope(app.req(pb::CaptureEnvelopeRequest {
            body: big,
            project: project.to_string(),
            ..Default::default()
        }))
        .await
        .expect("an envelope of 3 MiB")
        .into_inner();
    assert_eq!(r.events.len(), 1);
    assert_eq!(r.item_counts.get("attachment"), Some(&1));
    let e = capture
        .capture_envelope(app.req(pb::CaptureEnvelopeRequest {
            body: vec![b'{'; (20 << 20) + 1],
            project: project.to_string(),
            ..Default::default()
        }))
        .await
        .expect_err("an envelope over 20 MiB");
    assert_eq!(e.code(), tonic::Code::OutOfRange, "{e:?}");
    // Without any credentials: UNAUTHENTICATED.
    let e = capture
        .capture_envelope(tonic::Request::new(pb::CaptureEnvelopeRequest {
            body: br#"{"message":"anonymous"}"#.to_vec(),
            format: pb::SentryPayloadFormat::Event as i32,
            ..Default::default()
        }))
        .await
        .expect_err("anonymous");
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
}

const PY_PLACES: &str = r#"
import json, sys
import sentry_sdk

sentry_sdk.init(dsn=sys.argv[1])
# PADDING

def parse_price(text):
    return float(text)

def parse_quantity(text):
    return float(text)

ids = {}
for name, parse in (("price", parse_price), ("quantity", parse_quantity)):
    try:
        parse("not a number: " + name + sys.argv[2])
    except ValueError:
        ids[name] = sentry_sdk.capture_exception()
sentry_sdk.flush(timeout=30)
print(json.dumps(ids))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_line_shifts_keep_the_group_and_other_functions_split_it() {
    let app = spawn_app().await;
    let dsn = dsn(&app).await;
    let first = sdk::python_script(PY_PLACES, &[&dsn, "1"]).await.json();
    // The same code after an edit above it: every line number moves.
    let shifted = PY_PLACES.replace("# PADDING", &"# an edit above the code\n".repeat(7));
    let second = sdk::python_script(&shifted, &[&dsn, "2"]).await.json();
    let events = full_events(&app).await;
    let group = |ids: &Value, name: &str| by_sentry_id(&events, &s(&ids[name]))["group_id"].clone();
    let line = |ids: &Value, name: &str| {
        arr(&by_sentry_id(&events, &s(&ids[name]))["exception"]["frames"])
            .last()
            .map(|f| n(&f["lineno"]))
    };
    assert_ne!(
        line(&first, "price"),
        line(&second, "price"),
        "the edit moved the lines"
    );
    assert_eq!(group(&first, "price"), group(&second, "price"));
    assert_eq!(group(&first, "quantity"), group(&second, "quantity"));
    assert_ne!(group(&first, "price"), group(&first, "quantity"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_gives_existing_projects_a_dsn() {
    use migration::{Migrator, MigratorTrait};
    use sea_orm::{
        ConnectionTrait, Database,
        sea_query::{Alias, Order, Query},
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let url = match fresh_database_url().await {
        Some(u) => u,
        None => format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display()),
    };
    let db = Database::connect(&url).await.expect("connect");
    // The schema as it was before Sentry support, with two projects in it.
    Migrator::up(&db, Some(2))
        .await
        .expect("the first two migrations");
    for (name, at) in [("first", 1_000i64), ("second", 2_000)] {
        let mut insert = Query::insert();
        insert
            .into_table(Alias::new("projects"))
            .columns([
                Alias::new("id"),
                Alias::new("name"),
                Alias::new("created_at"),
            ])
            .values_panic([uuid::Uuid::now_v7().into(), name.into(), at.into()]);
        db.execute(&insert).await.expect("insert a project");
    }
    Migrator::up(&db, None)
        .await
        .expect("the remaining migrations");
    let mut select = Query::select();
    select
        .columns([Alias::new("public_key"), Alias::new("sentry_id")])
        .from(Alias::new("projects"))
        .order_by(Alias::new("created_at"), Order::Asc);
    let rows = db.query_all(&select).await.expect("select");
    let got: Vec<(String, i64)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get::<String>("", "public_key").expect("public_key"),
                r.try_get::<i64>("", "sentry_id").expect("sentry_id"),
            )
        })
        .collect();
    assert_eq!(got.iter().map(|g| g.1).collect::<Vec<_>>(), [1, 2]);
    for (key, _) in &got {
        assert!(
            key.len() == 32
                && key
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{key:?} is not 32 lowercase hex digits"
        );
    }
    assert_ne!(got[0].0, got[1].0);
    db.close().await.ok();
}

/// Sentry's `user.email:`, `user.username:` and `user.ip:` find the issues a user hit, by any
/// of the identities a Sentry SDK sent (the event's `user_id` is only the first of them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issues_are_found_by_the_users_email_username_or_address() {
    let app = spawn_app().await;
    let (key, project) = key_and_project(&app).await;
    let path = format!("/api/{project}/store/?sentry_key={key}");
    for (message, user) in [
        (
            "checkout failed",
            json!({"id": "42", "email": "ana@example.com", "username": "ana",
                   "ip_address": "203.0.113.7"}),
        ),
        ("search timed out", json!({"email": "ben@example.com"})),
        (
            "profile not saved",
            json!({"id": "7", "ip_address": "{{auto}}"}),
        ),
    ] {
        let r = app
            .send(
                app.anon(Method::POST, &path)
                    .header("content-type", "application/json")
                    .body(json!({"message": message, "user": user}).to_string()),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let titles = |q: &str| {
        let app = &app;
        let url = format!("/v1/errors/groups?q={q}");
        async move {
            let b = app.get_ok(&url).await;
            let mut t: Vec<String> = arr(&b["groups"])
                .iter()
                .map(|g| s(&g["title"]).to_owned())
                .collect();
            t.sort();
            t
        }
    };
    assert_eq!(
        titles("user.email:ana@example.com").await,
        ["checkout failed"]
    );
    assert_eq!(
        titles("user.email:ben@example.com").await,
        ["search timed out"]
    );
    assert_eq!(titles("user.username:ana").await, ["checkout failed"]);
    assert_eq!(titles("user.ip:203.0.113.7").await, ["checkout failed"]);
    assert_eq!(titles("user.id:42").await, ["checkout failed"]);
    assert_eq!(
        titles("has:user.email").await,
        ["checkout failed", "search timed out"]
    );
    assert!(
        titles("has:user.ip").await.len() == 1,
        "{{auto}} names no address"
    );
}

/// Inbound filters, as in Sentry's project settings: with each one on, an event it names is
/// answered as any other (200 and its id) but not stored, and counted per filter in the
/// project policy; the others are stored. A pattern list is checked like the other lists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_filters_drop_what_the_project_does_not_want() {
    let app = spawn_app().await;
    let (key, project) = key_and_project(&app).await;
    let filters = json!({"browser_extensions": true, "localhost": true, "web_crawlers": true,
        "legacy_browsers": ["ie_pre_9", "ie9", "ie10", "ie11", "safari_pre_6"],
        "error_messages": ["*ResizeObserver loop*"], "releases": ["*-dev"]});
    let (status, b) = app
        .put(
            "/v1/settings/policy",
            &json!({"inbound_filters": {"error_messages": ["ok", "  "]}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_detail_field(&b["error"], "inbound_filters.error_messages[1]");
    let (status, b) = app
        .put(
            "/v1/settings/policy",
            &json!({"inbound_filters": {"legacy_browsers": ["ie9", "netscape"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_detail_field(&b["error"], "inbound_filters.legacy_browsers[1]");
    let set = app
        .put("/v1/settings/policy", &json!({"inbound_filters": filters}))
        .await;
    assert_eq!(set.0, StatusCode::OK, "{}", set.1);
    assert_eq!(set.1["inbound_filters"], filters);

    let store = |event: Value| {
        let app = &app;
        let path = format!("/api/{project}/store/?sentry_key={key}");
        async move {
            let r = app
                .send(
                    app.anon(Method::POST, &path)
                        .header("content-type", "application/json")
                        .body(event.to_string()),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            s(&r.body["id"])
        }
    };
    let frames = |file: &str| {
        json!([{"filename": "https://shop.example.com/app.js", "function": "main"},
            {"filename": file, "function": "inject"}])
    };
    let kept = [
        json!({"message": "an error of the shop's own", "release": "web@1.0",
            "request": {"url": "https://shop.example.com/cart",
                "headers": {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"}}}),
        json!({"exception": {"values": [{"type": "TypeError", "value": "x is undefined",
            "stacktrace": {"frames": frames("https://shop.example.com/vendor.js")}}]}}),
        // Edge 18 is old, but its part of the legacy-browsers filter is off.
        json!({"message": "from old Edge",
            "request": {"url": "https://shop.example.com/",
                "headers": {"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.18362"}}}),
    ];
    let dropped = [
        (
            "browser_extensions",
            json!({"exception": {"values": [{"type": "TypeError",
            "value": "x is undefined",
            "stacktrace": {"frames": frames("chrome-extension://abcdefgh/content.js")}}]}}),
        ),
        (
            "localhost",
            json!({"message": "on a laptop",
            "request": {"url": "http://localhost:3000/cart"}}),
        ),
        (
            "web_crawlers",
            json!({"message": "crawled",
            "request": {"url": "https://shop.example.com/",
                "headers": [["User-Agent", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"]]}}),
        ),
        (
            "legacy_browsers",
            json!({"message": "from Internet Explorer 11",
            "request": {"url": "https://shop.example.com/",
                "headers": {"User-Agent": "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko"}}}),
        ),
        (
            "error_messages",
            json!({"exception": {"values": [{"type": "Error",
            "value": "ResizeObserver loop limit exceeded"}]}}),
        ),
        (
            "releases",
            json!({"message": "from a dev build", "release": "web-dev"}),
        ),
    ];
    for event in kept {
        store(event).await;
    }
    for (_, event) in &dropped {
        let id = store(event.clone()).await;
        assert_eq!(id.len(), 32, "answered with its id");
    }
    let stored = stored_messages(&app).await;
    assert_eq!(
        stored,
        [
            "TypeError: x is undefined",
            "an error of the shop's own",
            "from old Edge"
        ]
    );
    // Counted per filter (stored every few seconds).
    let counts = poll_until(Duration::from_secs(15), "the filtered counts", || {
        let app = &app;
        async move {
            let p = app.get_ok("/v1/settings/policy").await;
            let c = p["filtered_last_30_days"].clone();
            (c.as_object()
                .is_some_and(|o| o.values().any(|n| n.as_u64() == Some(1)))
                && c.as_object()
                    .unwrap()
                    .values()
                    .filter_map(Value::as_u64)
                    .sum::<u64>()
                    == 6)
                .then_some(c)
        }
    })
    .await;
    for (filter, _) in &dropped {
        assert_eq!(counts[*filter], json!(1), "{counts}");
    }

    // Off again: the same events are kept.
    let off = app.put("/v1/settings/policy", &json!({})).await;
    assert_eq!(off.1["inbound_filters"]["browser_extensions"], json!(false));
    for (_, event) in dropped {
        store(event).await;
    }
    assert_eq!(full_events(&app).await.len(), 9);
}

const NODE_FEEDBACK_APP: &str = r#"
const Sentry = require('@sentry/node');
Sentry.init({ dsn: process.argv[2], release: 'billing@2.0.0' });
function renderInvoice(invoice) { return invoice.lines.map((l) => l.total); }
async function main() {
  const ids = {};
  try { renderInvoice({}); } catch (e) { ids.exception = Sentry.captureException(e); }
  ids.feedback = Sentry.captureFeedback({ message: 'The invoice page went blank.', name: 'Ana',
    email: 'ana@example.com', url: 'https://billing.example.com/invoices/7',
    associatedEventId: ids.exception });
  ids.flushed = await Sentry.flush(30000);
  console.log(JSON.stringify(ids));
}
main();
"#;

/// User feedback, as Sentry SDKs send it: the Node SDK's `captureFeedback` (a `feedback`
/// item) about an error it captured, and an older SDK's `user_report` item in the error's
/// envelope. Both are stored and listed with the stored event and its group (REST and gRPC),
/// per project and per group; one without comments is left out, the envelope still taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_feedback_from_sentry_sdks_is_linked_to_its_error() {
    let app = spawn_app().await;
    let run = sdk::node_script(NODE_FEEDBACK_APP, &[&dsn(&app).await]).await;
    assert!(run.success, "node failed:\n{}\n{}", run.stdout, run.stderr);
    let ids = run.json();
    assert_eq!(ids["flushed"], json!(true), "{ids}");
    let events = full_events(&app).await;
    assert_eq!(
        events.len(),
        1,
        "the feedback is not an error event: {events:#?}"
    );
    let error = by_sentry_id(&events, &s(&ids["exception"]));
    let group = s(&error["group_id"]);
    let listed = app.get_ok("/v1/errors/feedback").await;
    let f = &arr(&listed["feedback"])[0];
    assert_eq!(f["comments"], "The invoice page went blank.", "{listed}");
    assert_eq!(
        (&f["name"], &f["email"]),
        (&json!("Ana"), &json!("ana@example.com"))
    );
    assert_eq!(f["url"], "https://billing.example.com/invoices/7");
    assert_eq!(f["stored_event_id"], error["id"], "{listed}");
    assert_eq!(f["error_group_id"], json!(group));
    assert_eq!(
        f["event_id"].as_str().map(|id| id.replace('-', "")),
        Some(s(&ids["exception"]))
    );

    // An older SDK's user_report, in the same envelope as its event, and one without comments.
    let (key, project) = key_and_project(&app).await;
    let id = "5a3b0f2e9c1d4e7f8a6b5c4d3e2f1a0b";
    let body = format!(
        "{{\"event_id\":\"{id}\"}}\n{{\"type\":\"event\"}}\n{}\n{{\"type\":\"user_report\"}}\n{}\n{{\"type\":\"user_report\"}}\n{}\n",
        json!({"event_id": id, "message": "export timed out"}),
        json!({"event_id": id, "name": "Bo", "email": "bo@example.com", "comments": "Waited a minute, then nothing."}),
        json!({"event_id": id, "name": "Cy", "comments": "   "}),
    );
    let send = |body: String| {
        let app = &app;
        let path = format!("/api/{project}/envelope/?sentry_key={key}");
        async move {
            let r = app.send(app.anon(Method::POST, &path).body(body)).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        }
    };
    send(body.clone()).await;
    let listed = app.get_ok("/v1/errors/feedback").await;
    assert_eq!(arr(&listed["feedback"]).len(), 2, "{listed}");
    // Sent again (an SDK retrying), then a second report about the same event: Sentry keeps
    // one per event, the later.
    send(body).await;
    send(format!(
        "{{\"event_id\":\"{id}\"}}\n{{\"type\":\"user_report\"}}\n{}\n",
        json!({"event_id": id, "name": "Bo", "email": "bo@example.com",
            "comments": "Waited a minute, then nothing. Twice."}),
    ))
    .await;
    let listed = app.get_ok("/v1/errors/feedback").await;
    let all = arr(&listed["feedback"]);
    assert_eq!(all.len(), 2, "{listed}");
    assert_eq!(all[0]["comments"], "Waited a minute, then nothing. Twice.");
    let export = app.event(&s(&all[0]["stored_event_id"])).await;
    assert_eq!(export["message"], "export timed out");
    let by_group = app
        .get_ok(&format!("/v1/errors/feedback?error_group_id={group}"))
        .await;
    assert_eq!(ids_of(&by_group), [s(&f["id"])], "{by_group}");

    // gRPC lists the same, a page at a time.
    let mut grpc = app.groups_client().await;
    let page = grpc
        .list_feedback(app.req(pb::ListFeedbackRequest {
            limit: 1,
            ..Default::default()
        }))
        .await
        .expect("ListFeedback")
        .into_inner();
    assert_eq!(page.feedback[0].email, "bo@example.com");
    let rest = grpc
        .list_feedback(app.req(pb::ListFeedbackRequest {
            cursor: page.next_cursor,
            limit: 1,
            ..Default::default()
        }))
        .await
        .expect("ListFeedback")
        .into_inner();
    assert_eq!(rest.feedback[0].group_id, group);
    assert!(rest.next_cursor.is_empty());
}

fn ids_of(list: &Value) -> Vec<String> {
    arr(&list["feedback"]).iter().map(|f| s(&f["id"])).collect()
}

/// The per-key rate limit counts a DSN key too, and its 429 carries what Sentry SDKs back off by.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dsn_key_is_rate_limited_with_sentry_headers() {
    let app = spawn_app_with(|c| c.limits.rate.ingest_per_minute = 2).await;
    let (key, project) = key_and_project(&app).await;
    let store = |n: u32| {
        app.anon(
            Method::POST,
            &format!("/api/{project}/store/?sentry_key={key}"),
        )
        .header("content-type", "application/json")
        .body(format!(r#"{{"message":"limited {n}"}}"#))
    };
    for n in 0..2 {
        let r = app.send(store(n)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let r = app.send(store(2)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!(retry >= 1, "Retry-After {retry}");
    assert_eq!(
        r.header("x-sentry-rate-limits"),
        Some(format!("{retry}::key").as_str())
    );
    // Nothing refused was stored.
    assert_eq!(full_events(&app).await.len(), 2);
}

/// A browser SDK that cuts a long message inside an emoji sends a lone surrogate
/// (`"\ud83d"`), which strict JSON refuses. The event is stored with U+FFFD in its place,
/// through an envelope and through the REST capture, message and batch routes alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lone_surrogates_from_javascript_do_not_lose_the_event() {
    let app = spawn_app().await;
    let (key, project) = key_and_project(&app).await;
    let auth = format!(
        "Sentry sentry_key={key}, sentry_version=7, sentry_client=sentry.javascript.browser/8.0.0"
    );
    let r = app
        .send(
            app.anon(Method::POST, &format!("/api/{project}/envelope/"))
                .header("x-sentry-auth", &auth)
                .body(envelope(
                    json!({}),
                    &[(
                        json!({"type": "event"}),
                        br#"{"message":"checkout failed \ud83d","platform":"javascript"}"#,
                    )],
                )),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let raw = |path: &str, body: &'static str| {
        app.authed(Method::POST, path)
            .header("content-type", "application/json")
            .body(body)
    };
    for (path, body) in [
        ("/v1/errors/capture", r#"{"message":"capture cut \ud83d"}"#),
        ("/v1/errors/message", r#"{"text":"message cut \ude00 too"}"#),
        (
            "/v1/errors/capture/batch",
            r#"{"events":[{"message":"batch cut \ud83d"},{"message":"whole \ud83d\ude00"}]}"#,
        ),
    ] {
        let r = app.send(raw(path, body)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        if path.ends_with("batch") {
            assert!(
                arr(&r.body["results"])
                    .iter()
                    .all(|i| i["ok"] == json!(true)),
                "{}",
                r.text
            );
        }
    }
    let mut messages: Vec<String> = full_events(&app)
        .await
        .iter()
        .map(|e| s(&e["message"]))
        .collect();
    messages.sort();
    assert_eq!(
        messages,
        [
            "batch cut \u{fffd}",
            "capture cut \u{fffd}",
            "checkout failed \u{fffd}",
            "message cut \u{fffd} too",
            "whole \u{1f600}",
        ]
    );
}

/// The Python SDK sends a big integer local in full (`2**2000` is 603 digits), beyond what a
/// double holds: the event is stored, with the number kept as a string.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_beyond_a_double_do_not_lose_the_event() {
    let app = spawn_app().await;
    let (key, project) = key_and_project(&app).await;
    let big = "7".repeat(603);
    let r = app
        .send(
            app.anon(
                Method::POST,
                &format!("/api/{project}/store/?sentry_key={key}"),
            )
            .header("content-type", "application/json")
            .body(format!(
                r#"{{"message":"rsa failed","extra":{{"modulus":{big}}},"platform":"python"}}"#
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let events = full_events(&app).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["message"], json!("rsa failed"));
    assert_eq!(events[0]["payload"]["extra"]["modulus"], json!(big));
}

/// A page with `@sentry/browser`: it captures an error, then opens the crash-report dialog for
/// it (`Sentry.showReportDialog`), which loads Faultline's script into the page (run by jsdom,
/// as a browser would), fills in the user it is given, refuses an empty form in the page,
/// posts the form across origins (CORS) and calls `onClose` when closed.
const BROWSER_REPORT_DIALOG_APP: &str = r#"
const { JSDOM } = require('jsdom');
const [dsn] = process.argv.slice(2);
const dom = new JSDOM('<!doctype html><html><head><title>Checkout</title></head><body></body></html>',
  { url: 'https://shop.example.com/checkout', runScripts: 'dangerously', resources: 'usable',
    pretendToBeVisual: true });
const w = dom.window;
for (const key of ['window', 'document', 'navigator', 'location', 'history', 'HTMLElement',
                   'Element', 'Node', 'Event', 'CustomEvent', 'DOMParser', 'XMLHttpRequest',
                   'localStorage', 'sessionStorage', 'screen', 'addEventListener',
                   'removeEventListener', 'dispatchEvent', 'postMessage']) {
  const v = w[key];
  const value = typeof v === 'function' && /^[a-z]/.test(key) ? v.bind(w) : v;
  Object.defineProperty(globalThis, key, { value, configurable: true, writable: true });
}
const Sentry = require('@sentry/browser');
Sentry.init({ dsn });
const wait = async (what, f) => {
  for (const end = Date.now() + 15000; Date.now() < end; await new Promise((r) => setTimeout(r, 20))) {
    const v = f();
    if (v) return v;
  }
  throw new Error(`timed out waiting for ${what}`);
};
async function main() {
  const out = {};
  try { JSON.parse('{"coupon":'); } catch (e) { out.eventId = Sentry.captureException(e); }
  out.flushed = await Sentry.flush(30000);
  let loaded = 0;
  let closed = 0;
  Sentry.showReportDialog({ eventId: out.eventId, user: { name: 'Ana', email: 'ana@example.com' },
    title: 'Checkout <b>broke</b>', labelSubmit: 'Send',
    onLoad: () => loaded++, onClose: () => closed++ });
  const doc = w.document;
  const dialog = (sel) => doc.querySelector(`.faultline-report ${sel}`);
  await wait('the dialog', () => dialog('form'));
  out.loaded = loaded;
  out.title = dialog('h2').textContent;
  out.markup = doc.querySelectorAll('.faultline-report b').length;
  out.name = dialog('#fl-name').value;
  out.email = dialog('#fl-email').value;
  out.submit = dialog('button[type=submit]').textContent;
  dialog('button[type=submit]').click();
  out.empty = dialog('.fl-message').textContent;
  dialog('#fl-comments').value = 'The total went NaN after I added a coupon.';
  dialog('button[type=submit]').click();
  out.sent = await wait('the answer', () => dialog('.fl-success')?.textContent || dialog('.fl-error')?.textContent);
  dialog('.fl-close').click();
  await wait('onClose', () => closed > 0);
  out.closed = closed;
  out.gone = !doc.querySelector('.faultline-report');
  console.log(JSON.stringify(out));
  process.exit(0);
}
main().catch((e) => { console.error(e); process.exit(1); });
"#;

/// The crash-report dialog of Sentry's browser SDK (`Sentry.showReportDialog`), unchanged,
/// stores what the user wrote as feedback about the event; its script and form answer as
/// Sentry's `/api/embed/error-page/` does, a second report about the event replaces the
/// first, and bad queries and forms are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_sdks_crash_report_dialog_stores_the_users_report() {
    let app = spawn_app().await;
    let dsn = dsn(&app).await;
    let run = sdk::browser_script(BROWSER_REPORT_DIALOG_APP, &[&dsn]).await;
    assert!(run.success, "node failed:\n{}\n{}", run.stdout, run.stderr);
    let out = run.json();
    assert_eq!(out["flushed"], json!(true), "{out}");
    assert_eq!(out["loaded"], json!(1), "{out}");
    assert_eq!(
        out["title"],
        json!("Checkout <b>broke</b>"),
        "text, not markup"
    );
    assert_eq!(out["markup"], json!(0));
    assert_eq!(
        (&out["name"], &out["email"], &out["submit"]),
        (&json!("Ana"), &json!("ana@example.com"), &json!("Send"))
    );
    assert!(
        s(&out["empty"]).contains("Some fields were invalid"),
        "{out}"
    );
    assert_eq!(
        out["sent"],
        json!("Your feedback has been sent. Thank you!")
    );
    assert_eq!((&out["closed"], &out["gone"]), (&json!(1), &json!(true)));

    let events = full_events(&app).await;
    let error = by_sentry_id(&events, &s(&out["eventId"]));
    let listed = app.get_ok("/v1/errors/feedback").await;
    let reports = arr(&listed["feedback"]);
    assert_eq!(reports.len(), 1, "{listed}");
    let f = &reports[0];
    assert_eq!(
        (&f["name"], &f["email"], &f["comments"]),
        (
            &json!("Ana"),
            &json!("ana@example.com"),
            &json!("The total went NaN after I added a coupon.")
        )
    );
    assert_eq!(f["stored_event_id"], error["id"], "{listed}");
    assert_eq!(f["error_group_id"], error["group_id"]);

    // The same form again, about the same event: it replaces the first (Sentry keeps one).
    let (key, project) = key_and_project(&app).await;
    let event_id = s(&out["eventId"]);
    let query = |key: &str, project: &str, event: &str| {
        format!(
            "/api/embed/error-page/?eventId={event}&dsn={}",
            enc(&format!("http://{key}@127.0.0.1/{project}"))
        )
    };
    let form = |rb: reqwest::RequestBuilder, body: &str| {
        rb.header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.to_owned())
    };
    let path = query(&key, &project.to_string(), &event_id);
    let r = app
        .send(form(
            app.anon(Method::POST, &path)
                .header("Origin", "https://shop.example.com"),
            "name=Ana&email=ana%40example.com&comments=Also+the+coupon+vanished.",
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body, json!({}));
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://shop.example.com")
    );
    let listed = app.get_ok("/v1/errors/feedback").await;
    let comments: Vec<String> = arr(&listed["feedback"])
        .iter()
        .map(|f| s(&f["comments"]))
        .collect();
    assert_eq!(comments, ["Also the coupon vanished."]);

    // The script, as the SDK loads it; bad queries are refused.
    let r = app.send(app.anon(Method::GET, &path)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(r.text.contains("__sentry_reportdialog_closed__"));
    for (bad, status) in [
        ("/api/embed/error-page/".to_owned(), 422),
        (format!("/api/embed/error-page/?eventId={event_id}"), 422),
        (
            format!(
                "/api/embed/error-page/?dsn={}",
                enc(&format!("http://{key}@127.0.0.1/{project}"))
            ),
            422,
        ),
        (query(&key, &project.to_string(), "not-an-id"), 400),
        (
            format!("/api/embed/error-page/?eventId={event_id}&dsn=nonsense"),
            400,
        ),
    ] {
        let r = app.send(app.anon(Method::GET, &bad)).await;
        assert_eq!(r.status.as_u16(), status, "{bad}: {}", r.text);
    }
    // Forms: no comments (by field), an unknown key, another project's number.
    let r = app
        .send(form(app.anon(Method::POST, &path), "name=Ana&comments=+"))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("comments"), "{}", r.text);
    let unknown = query(
        "0123456789abcdef0123456789abcdef",
        &project.to_string(),
        &event_id,
    );
    let r = app
        .send(form(app.anon(Method::POST, &unknown), "comments=hi"))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    let elsewhere = query(&key, &(project + 1000).to_string(), &event_id);
    let r = app
        .send(form(app.anon(Method::POST, &elsewhere), "comments=hi"))
        .await;
    assert!(
        matches!(r.status.as_u16(), 403 | 404),
        "another project: {} {}",
        r.status,
        r.text
    );
    assert_eq!(
        arr(&app.get_ok("/v1/errors/feedback").await["feedback"]).len(),
        1
    );
}
