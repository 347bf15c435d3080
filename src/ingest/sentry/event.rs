//! A Sentry event (JSON) onto Faultline's capture input. Read leniently, as Sentry does: SDKs
//! in the wild send tags as maps or pairs, messages as strings or objects, exceptions as lists
//! or `{values}`, numbers as strings, and (old Python SDKs) bare NaN/Infinity. Fields
//! Faultline does not model stay in the stored payload, which is the event as sent.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::user_agent;
use crate::{
    domain::{Frame, Level, event::limits},
    error::Error,
    ingest::{CaptureInput, ExceptionInput},
};

/// Most bytes one event item may hold after decompression.
pub const EVENT_MAX: usize = 1024 * 1024;

/// A decoded event: its JSON object and its text (repaired if it had to be).
pub struct SentryEvent {
    pub object: Map<String, Value>,
    pub text: String,
}

/// Decodes an event payload; bare NaN/Infinity are replaced by null, numbers beyond a
/// double's range by strings and escaped lone surrogates by U+FFFD rather than rejected.
pub fn decode(payload: &[u8]) -> Result<SentryEvent, Error> {
    if payload.len() > EVENT_MAX {
        return Err(Error::PayloadTooLarge { limit: EVENT_MAX });
    }
    let text = std::str::from_utf8(payload)
        .map_err(|e| Error::malformed("event", format!("the event is not UTF-8 text: {e}")))?;
    let (value, text) = match serde_json::from_str::<Value>(text) {
        Ok(v) => (v, text.to_owned()),
        Err(first) => {
            let repaired = repair_non_finite(text);
            // JavaScript's lone surrogates (`\ud83d` cut from its pair) become U+FFFD; the
            // text stays UTF-8, as only ASCII escapes are rewritten.
            let repaired = match crate::domain::json_without_lone_surrogates(repaired.as_bytes()) {
                Some(fixed) => String::from_utf8(fixed).unwrap_or(repaired),
                None => repaired,
            };
            match serde_json::from_str::<Value>(&repaired) {
                Ok(v) => (v, repaired),
                Err(_) => {
                    return Err(Error::malformed(
                        "event",
                        format!("the event is not valid JSON: {first}"),
                    ));
                }
            }
        }
    };
    match value {
        Value::Object(object) => Ok(SentryEvent { object, text }),
        _ => Err(Error::malformed("event", "the event must be a JSON object")),
    }
}

/// Replaces the bare tokens `NaN`, `Infinity` and `-Infinity` outside strings with `null`,
/// and quotes numbers beyond a double's range.
fn repair_non_finite(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            rest = &rest[c.len_utf8()..];
            continue;
        }
        if c == '"' {
            in_string = true;
        }
        let token = ["-Infinity", "Infinity", "NaN"]
            .into_iter()
            .find(|t| rest.starts_with(t));
        if let Some(t) = token {
            out.push_str("null");
            rest = &rest[t.len()..];
            continue;
        }
        // A number too large for a double (Python sends its big integers in full, 2**2000
        // say) is kept as a string: serde_json refuses it as "number out of range".
        if c == '-' || c.is_ascii_digit() {
            let len = rest
                .find(|ch: char| !matches!(ch, '0'..='9' | '-' | '+' | '.' | 'e' | 'E'))
                .unwrap_or(rest.len());
            let number = &rest[..len];
            if number.parse::<f64>().is_ok_and(f64::is_infinite) {
                out.push('"');
                out.push_str(number);
                out.push('"');
            } else {
                out.push_str(number);
            }
            rest = &rest[len..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// The event's own id, when it is a valid one.
pub fn event_id(object: &Map<String, Value>) -> Option<Uuid> {
    object
        .get("event_id")
        .and_then(Value::as_str)
        .and_then(parse_event_id)
}

/// A Sentry event id: 32 hex digits, dashes allowed.
pub fn parse_event_id(s: &str) -> Option<Uuid> {
    Uuid::try_parse(s.trim()).ok()
}

/// Text of a scalar (strings as they are, numbers and booleans printed); empty otherwise.
fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

fn number(v: Option<&Value>) -> u32 {
    match v {
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

/// A list, or the `values` list of an object (`exception`, `breadcrumbs`, `threads`).
fn values(v: Option<&Value>) -> &[Value] {
    match v {
        Some(Value::Array(a)) => a,
        Some(Value::Object(o)) => match o.get("values") {
            Some(Value::Array(a)) => a,
            _ => &[],
        },
        _ => &[],
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary: Sentry trims oversized fields
/// rather than dropping the event, and so does Faultline for SDK traffic.
fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

fn timestamp(v: Option<&Value>) -> Option<DateTime<Utc>> {
    match v? {
        Value::String(s) => DateTime::parse_from_rfc3339(s.trim())
            .map(|t| t.with_timezone(&Utc))
            .ok()
            .or_else(|| {
                // Old SDKs send naive UTC times without an offset.
                chrono::NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M:%S%.f")
                    .ok()
                    .map(|n| n.and_utc())
            })
            .or_else(|| s.trim().parse::<f64>().ok().and_then(epoch)),
        Value::Number(n) => n.as_f64().and_then(epoch),
        _ => None,
    }
}

fn epoch(secs: f64) -> Option<DateTime<Utc>> {
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    Utc.timestamp_millis_opt((secs * 1000.0) as i64).single()
}

/// `message` as a string or `{message, params, formatted}`, else `logentry`.
fn message(object: &Map<String, Value>) -> String {
    let from = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(o)) => {
            let formatted = text(o.get("formatted"));
            if formatted.is_empty() {
                text(o.get("message"))
            } else {
                formatted
            }
        }
        _ => String::new(),
    };
    let m = from(object.get("logentry"));
    if m.is_empty() {
        from(object.get("message"))
    } else {
        m
    }
}

/// The entries of a map or of a list of `[key, value]` pairs: SDKs send tags and request
/// headers either way.
fn entries(v: Option<&Value>) -> Vec<(String, &Value)> {
    match v {
        Some(Value::Object(o)) => o.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|p| match p.as_array()?.as_slice() {
                [k, v] => Some((text(Some(k)), v)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Tags as a map or as a list of `[key, value]` pairs, within Faultline's limits.
fn tags(v: Option<&Value>) -> BTreeMap<String, String> {
    entries(v)
        .into_iter()
        .map(|(k, v)| (k, text(Some(v))))
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| {
            (
                truncate(k, limits::TAG_KEY_MAX),
                truncate(v, limits::TAG_VALUE_MAX),
            )
        })
        .take(limits::TAGS_MAX)
        .collect()
}

/// The tags Sentry derives from an event's fields and contexts, so an issue can be broken down
/// by server, URL, browser, OS, runtime or device, and by whether the error was handled, as in
/// Sentry. A tag the SDK sent itself is kept as sent; nothing is added beyond the tag limit.
fn derive_tags(o: &Map<String, Value>, tags: &mut BTreeMap<String, String>) {
    let mut derived: Vec<(&str, String)> = Vec::new();
    for (tag, field) in [
        ("server_name", "server_name"),
        ("logger", "logger"),
        ("transaction", "transaction"),
    ] {
        derived.push((tag, text(o.get(field))));
    }
    let request = o.get("request");
    derived.push(("url", text(request.and_then(|r| r.get("url")))));
    let contexts = o.get("contexts");
    // A browser SDK sends its page's `User-Agent` instead of these contexts.
    let agent = user_agent::parse(&request_header(request, "user-agent"));
    for (name, family, from_agent) in [
        ("browser", "browser.name", agent.browser),
        ("os", "os.name", agent.os),
        ("runtime", "runtime.name", None),
    ] {
        let ctx = contexts.and_then(|c| c.get(name));
        let mut ctx_name = text(ctx.and_then(|c| c.get("name")));
        let mut version = text(ctx.and_then(|c| c.get("version")));
        if ctx_name.is_empty()
            && let Some((n, v)) = from_agent
        {
            (ctx_name, version) = (n, v);
        }
        if !ctx_name.is_empty() {
            derived.push((name, format!("{ctx_name} {version}").trim_end().to_owned()));
            derived.push((family, ctx_name));
        }
    }
    let device = contexts.and_then(|c| c.get("device"));
    derived.push(("device", text(device.and_then(|d| d.get("model")))));
    let mut device_family = text(device.and_then(|d| d.get("family")));
    if device_family.is_empty() {
        device_family = agent.device_family.unwrap_or_default();
    }
    derived.push(("device.family", device_family));
    // The main exception is the last one; its mechanism says whether the app handled it.
    let mechanism = values(o.get("exception"))
        .last()
        .and_then(|e| e.get("mechanism"));
    derived.push(("mechanism", text(mechanism.and_then(|m| m.get("type")))));
    if let Some(handled) = mechanism
        .and_then(|m| m.get("handled"))
        .and_then(Value::as_bool)
    {
        derived.push(("handled", if handled { "yes" } else { "no" }.to_owned()));
    }
    // The user's other identities, so that Sentry's `user.email:` (`user.username:`,
    // `user.ip:`) finds an issue by whoever hit it (`user_id` holds only the first of them).
    let user = o.get("user");
    for (tag, field) in [
        ("user.email", "email"),
        ("user.username", "username"),
        ("user.ip", "ip_address"),
    ] {
        let value = text(user.and_then(|u| u.get(field)));
        // "{{auto}}" asks Sentry to fill in the sender's address; it names no one.
        if value != "{{auto}}" {
            derived.push((tag, value));
        }
    }
    for (key, value) in derived {
        if value.is_empty() || tags.contains_key(key) || tags.len() >= limits::TAGS_MAX {
            continue;
        }
        tags.insert(key.to_owned(), truncate(value, limits::TAG_VALUE_MAX));
    }
}

/// A header of the event's request, by name in any case.
fn request_header(request: Option<&Value>, name: &str) -> String {
    let headers = entries(request.and_then(|r| r.get("headers")));
    let found = headers
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name));
    text(found.map(|(_, v)| v))
}

fn frame(v: &Value) -> Frame {
    let o = v.as_object();
    let get = |k: &str| o.and_then(|o| o.get(k));
    let filename = text(get("filename"));
    Frame {
        filename: if filename.is_empty() {
            text(get("abs_path"))
        } else {
            filename
        },
        function: text(get("function")),
        module: text(get("module")),
        lineno: number(get("lineno")),
        colno: number(get("colno")),
        in_app: get("in_app").and_then(Value::as_bool),
        context_line: truncate(text(get("context_line")), limits::SHORT_FIELD_MAX * 4),
        minified: None,
    }
}

fn exception(v: &Value) -> ExceptionInput {
    let o = v.as_object();
    let get = |k: &str| o.and_then(|o| o.get(k));
    let mechanism = get("mechanism").and_then(Value::as_object);
    let frames = values(get("stacktrace").and_then(|s| s.get("frames")));
    // Keep the newest frames (where the error happened) when a stack is over the limit.
    let skip = frames.len().saturating_sub(limits::FRAMES_MAX);
    ExceptionInput {
        r#type: truncate(text(get("type")), limits::SHORT_FIELD_MAX),
        message: truncate(text(get("value")), limits::MESSAGE_MAX),
        module: truncate(text(get("module")), limits::SHORT_FIELD_MAX),
        frames: frames[skip..].iter().map(frame).collect(),
        synthetic: mechanism
            .and_then(|m| m.get("synthetic"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
        mechanism: mechanism.map(|m| text(m.get("type"))).unwrap_or_default(),
        ..ExceptionInput::default()
    }
}

/// The user, as Sentry identifies one: id, else email, else username, else IP address.
fn user_id(v: Option<&Value>) -> String {
    let Some(o) = v.and_then(Value::as_object) else {
        return String::new();
    };
    ["id", "email", "username", "ip_address"]
        .iter()
        .map(|k| text(o.get(*k)))
        // "{{auto}}" asks Sentry to fill in the sender's address; it names no one.
        .find(|s| !s.is_empty() && s != "{{auto}}")
        .unwrap_or_default()
}

fn level(v: Option<&Value>) -> Option<Level> {
    Level::parse(&text(v))
}

/// Where an event came from, as the inbound filters read it (`ingest::inbound`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The request's URL.
    pub url: String,
    /// The request's `User-Agent`.
    pub user_agent: String,
    /// The user's IP address, as sent (`{{auto}}` included).
    pub ip_address: String,
}

/// The origin of an event: its request's URL and `User-Agent`, its user's address.
pub fn origin(event: &SentryEvent) -> Origin {
    let o = &event.object;
    let request = o.get("request");
    Origin {
        url: text(request.and_then(|r| r.get("url"))),
        user_agent: request_header(request, "user-agent"),
        ip_address: text(o.get("user").and_then(|u| u.get("ip_address"))),
    }
}

/// The capture input for an event. `event_id` is the id the SDK is answered with; a repeat of
/// it is recognised as the same event.
pub fn to_capture(event: SentryEvent, event_id: Uuid) -> CaptureInput {
    let SentryEvent {
        object,
        text: payload,
    } = event;
    let o = &object;
    let mut exceptions: Vec<ExceptionInput> =
        values(o.get("exception")).iter().map(exception).collect();
    let main = exceptions.pop();
    let mut message = truncate(message(o), limits::MESSAGE_MAX);
    if message.trim().is_empty() && main.is_none() {
        // Sentry's own title for an event with neither message nor exception.
        message = "<unlabeled event>".to_owned();
    }
    let fingerprint: Vec<String> = values(o.get("fingerprint"))
        .iter()
        .map(|v| truncate(text(Some(v)), limits::SHORT_FIELD_MAX))
        .filter(|s| !s.is_empty())
        .take(limits::FINGERPRINT_PARTS_MAX)
        .collect();
    let mut event_tags = tags(o.get("tags"));
    derive_tags(o, &mut event_tags);
    CaptureInput {
        message,
        exception: main,
        chained: exceptions,
        level: level(o.get("level")),
        release: truncate(text(o.get("release")), limits::SHORT_FIELD_MAX),
        environment: truncate(text(o.get("environment")), limits::SHORT_FIELD_MAX),
        user_id: truncate(user_id(o.get("user")), limits::SHORT_FIELD_MAX),
        tags: event_tags,
        fingerprint,
        timestamp: timestamp(o.get("timestamp")),
        idempotency_key: Some(format!("sentry:{}", event_id.simple())),
        platform: truncate(text(o.get("platform")), limits::SHORT_FIELD_MAX),
        transaction: truncate(text(o.get("transaction")), limits::SHORT_FIELD_MAX),
        debug_images: debug_images(o.get("debug_meta")),
        payload_json: payload,
        ..CaptureInput::default()
    }
}

/// The debug images of a stored Sentry payload (see [`debug_images`]); none when it names no
/// `debug_meta` (the payload is parsed only when it does).
pub fn debug_images_of_payload(payload: &str) -> Vec<(String, String)> {
    if !payload.contains("\"debug_meta\"") {
        return Vec::new();
    }
    serde_json::from_str::<Value>(payload)
        .map(|v| debug_images(v.get("debug_meta")))
        .unwrap_or_default()
}

/// Most debug images read from one event.
const DEBUG_IMAGES_MAX: usize = 256;

/// The minified files whose debug ids the SDK found (`debug_meta.images` of type
/// `sourcemap`): (file as its frames name it, debug id).
fn debug_images(meta: Option<&Value>) -> Vec<(String, String)> {
    values(meta.and_then(|m| m.get("images")))
        .iter()
        .filter(|i| i.get("type").and_then(Value::as_str) == Some("sourcemap"))
        .filter_map(|i| {
            let file = text(i.get("code_file"));
            let id = crate::domain::sourcemap::debug_id(&text(i.get("debug_id")))?;
            (!file.is_empty()).then_some((file, id))
        })
        .take(DEBUG_IMAGES_MAX)
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn capture(v: Value) -> CaptureInput {
        let ev = decode(v.to_string().as_bytes()).unwrap();
        to_capture(ev, Uuid::nil())
    }

    /// The origin is read from the request (headers as an object or as pairs, in any case)
    /// and the user; an event without them has none.
    #[test]
    fn origin_reads_the_request_and_the_user() {
        let read = |v: Value| origin(&decode(v.to_string().as_bytes()).unwrap());
        assert_eq!(
            read(json!({"request": {"url": "http://localhost:3000/cart",
                "headers": [["User-Agent", "Googlebot/2.1"]]},
                "user": {"ip_address": "::1"}})),
            Origin {
                url: "http://localhost:3000/cart".into(),
                user_agent: "Googlebot/2.1".into(),
                ip_address: "::1".into(),
            }
        );
        assert_eq!(
            read(json!({"request": {"headers": {"user-agent": "Firefox/120.0"}}, "user": "odd"}))
                .user_agent,
            "Firefox/120.0"
        );
        assert_eq!(read(json!({"message": "m"})), Origin::default());
    }

    #[test]
    fn source_map_debug_ids_are_read_from_debug_meta() {
        let meta = json!({"debug_meta": {"images": [
            {"type": "sourcemap", "code_file": "/srv/app.min.js",
             "debug_id": "FF4B10CB-CAF0-5E8E-9389-6CD0DC7D74FF"},
            {"type": "macho", "code_file": "/x", "debug_id": "ff4b10cb-caf0-5e8e-9389-6cd0dc7d74ff"},
            {"type": "sourcemap", "code_file": "/y.js", "debug_id": "not an id"},
            {"type": "sourcemap", "debug_id": "ff4b10cb-caf0-5e8e-9389-6cd0dc7d74ff"},
        ]}});
        let want = [(
            "/srv/app.min.js".to_owned(),
            "ff4b10cb-caf0-5e8e-9389-6cd0dc7d74ff".to_owned(),
        )];
        assert_eq!(capture(meta.clone()).debug_images, want);
        assert_eq!(debug_images_of_payload(&meta.to_string()), want);
        assert!(debug_images_of_payload("{\"message\": \"x\"}").is_empty());
        assert!(debug_images_of_payload("{\"debug_meta\": ").is_empty());
    }

    #[test]
    fn tags_are_derived_from_fields_and_contexts_as_sentry_does() {
        let c = capture(json!({
            "message": "x", "server_name": "web-1", "logger": "django.request",
            "transaction": "/checkout", "request": {"url": "https://shop.example.com/cart"},
            "contexts": {"os": {"name": "Linux", "version": "6.1"}, "runtime": {"name": "CPython"},
                         "browser": {"name": "Chrome", "version": 126},
                         "device": {"model": "Pixel 8", "family": "Pixel"}},
            "exception": {"values": [
                {"type": "KeyError", "mechanism": {"type": "chained", "handled": true}},
                {"type": "ValueError", "mechanism": {"type": "django", "handled": false}}]},
            "tags": {"server_name": "set by the app"}
        }));
        let want = [
            ("server_name", "set by the app"),
            ("logger", "django.request"),
            ("transaction", "/checkout"),
            ("url", "https://shop.example.com/cart"),
            ("os", "Linux 6.1"),
            ("os.name", "Linux"),
            ("runtime", "CPython"),
            ("runtime.name", "CPython"),
            ("browser", "Chrome 126"),
            ("browser.name", "Chrome"),
            ("device", "Pixel 8"),
            ("device.family", "Pixel"),
            ("mechanism", "django"),
            ("handled", "no"),
        ];
        assert_eq!(
            c.tags,
            want.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        );
        // Nothing to derive: no tags; a full set of the SDK's own tags: none added.
        assert!(capture(json!({"message": "plain"})).tags.is_empty());
        let full: serde_json::Map<String, Value> = (0..limits::TAGS_MAX)
            .map(|i| (format!("t{i}"), json!("v")))
            .collect();
        let c = capture(json!({"message": "x", "tags": full, "server_name": "web-1"}));
        assert_eq!(c.tags.len(), limits::TAGS_MAX);
        assert!(!c.tags.contains_key("server_name"));
    }

    /// A browser SDK's event names its browser only in the request's `User-Agent` (headers as
    /// an object or as pairs, any case); contexts the SDK sent win over it.
    #[test]
    fn browser_and_os_tags_come_from_the_user_agent_without_contexts() {
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1";
        for headers in [
            json!({"User-Agent": iphone, "Referer": "https://shop.example.com/"}),
            json!([
                ["referer", "https://shop.example.com/"],
                ["user-agent", iphone]
            ]),
        ] {
            let c = capture(
                json!({"message": "x", "request": {"url": "https://shop.example.com/cart", "headers": headers}}),
            );
            let tag = |k: &str| c.tags.get(k).map(String::as_str);
            assert_eq!(tag("browser"), Some("Mobile Safari 17.1.2"));
            assert_eq!(tag("browser.name"), Some("Mobile Safari"));
            assert_eq!(tag("os"), Some("iOS 17.1.2"));
            assert_eq!(tag("os.name"), Some("iOS"));
            assert_eq!(tag("device.family"), Some("iPhone"));
        }
        let c = capture(json!({"message": "x",
            "request": {"headers": {"User-Agent": iphone}},
            "contexts": {"os": {"name": "Linux", "version": "6.1"}}}));
        assert_eq!(c.tags["os"], "Linux 6.1");
        assert_eq!(c.tags["browser"], "Mobile Safari 17.1.2");
        // A client that is no browser adds nothing.
        let c =
            capture(json!({"message": "x", "request": {"headers": {"User-Agent": "curl/8.4.0"}}}));
        assert!(c.tags.is_empty(), "{:?}", c.tags);
    }

    #[test]
    fn nan_and_infinity_are_repaired() {
        let ev = decode(
            br#"{"extra":{"a":NaN,"b":-Infinity,"c":"NaN Infinity","d":[Infinity]},"message":"x"}"#,
        )
        .unwrap();
        assert_eq!(
            ev.object["extra"],
            json!({"a":null,"b":null,"c":"NaN Infinity","d":[null]})
        );
    }

    #[test]
    fn numbers_beyond_a_double_are_kept_as_strings() {
        let big = "1".repeat(400);
        let text = format!(
            r#"{{"extra":{{"big":{big},"neg":-{big},"exp":1e400,"small":-12.5e-3,"int":18446744073709551616,"s":"{big}"}},"message":"x"}}"#
        );
        let ev = decode(text.as_bytes()).unwrap();
        assert_eq!(
            ev.object["extra"],
            json!({"big": big, "neg": format!("-{big}"), "exp": "1e400", "small": -0.0125,
                   "int": 18446744073709551616.0, "s": big})
        );
        // A value serde_json reads as it is is not touched.
        assert_eq!(decode(br#"{"n":1e300}"#).unwrap().text, r#"{"n":1e300}"#);
    }

    #[test]
    fn exception_list_or_values_last_is_main() {
        for exc in [
            json!([{"type":"KeyError","value":"k"},{"type":"ValueError","value":"v","mechanism":{"type":"chained","synthetic":true}}]),
            json!({"values":[{"type":"KeyError","value":"k"},{"type":"ValueError","value":"v","mechanism":{"type":"chained","synthetic":true}}]}),
        ] {
            let c = capture(json!({"exception": exc}));
            let main = c.exception.unwrap();
            assert_eq!(main.r#type, "ValueError");
            assert!(main.synthetic);
            assert_eq!(main.mechanism, "chained");
            assert_eq!(c.chained.len(), 1);
            assert_eq!(c.chained[0].r#type, "KeyError");
        }
    }

    #[test]
    fn tags_as_map_or_pairs_and_message_forms() {
        let a = capture(json!({"tags":{"a":"1","n":2},"message":"plain"}));
        let b = capture(
            json!({"tags":[["a","1"],["n",2]],"message":{"message":"fmt %s","params":["x"],"formatted":"fmt x"}}),
        );
        assert_eq!(a.tags, b.tags);
        assert_eq!(a.tags["n"], "2");
        assert_eq!(a.message, "plain");
        assert_eq!(b.message, "fmt x");
        let c = capture(
            json!({"logentry":{"message":"from logentry"},"user":{"ip_address":"{{auto}}"}}),
        );
        assert_eq!(c.user_id, "");
        assert!(!c.tags.contains_key("user.ip"), "{:?}", c.tags);
        assert_eq!(c.message, "from logentry");
    }

    #[test]
    fn fields_map_onto_the_capture() {
        let c = capture(json!({
            "timestamp": 1700000000.5, "level": "warning", "platform": "python",
            "transaction": "/checkout", "release": "app@1.2", "environment": "prod",
            "user": {"email": "a@b.c"}, "fingerprint": ["{{ default }}", 7],
            "exception": {"values": [{"type": "E", "value": "v", "stacktrace": {"frames": [
                {"abs_path": "/app/x.py", "function": "f", "lineno": "12", "in_app": true, "context_line": "raise E"}
            ]}}]},
            "unknown_field": {"kept": true}
        }));
        assert_eq!(c.level, Some(Level::Warning));
        assert_eq!(c.timestamp.unwrap().timestamp_millis(), 1_700_000_000_500);
        assert_eq!(c.user_id, "a@b.c");
        assert_eq!(c.tags["user.email"], "a@b.c");
        assert_eq!(c.fingerprint, ["{{ default }}", "7"]);
        assert_eq!(
            (c.platform.as_str(), c.transaction.as_str()),
            ("python", "/checkout")
        );
        let f = &c.exception.as_ref().unwrap().frames[0];
        assert_eq!(
            (f.filename.as_str(), f.lineno, f.in_app),
            ("/app/x.py", 12, Some(true))
        );
        assert!(c.payload_json.contains("unknown_field"));
        assert_eq!(
            c.idempotency_key.as_deref(),
            Some("sentry:00000000000000000000000000000000")
        );
    }

    #[test]
    fn rfc3339_and_naive_timestamps() {
        let a = capture(json!({"timestamp":"2024-05-01T10:00:00Z","message":"m"}));
        let b = capture(json!({"timestamp":"2024-05-01T10:00:00.000","message":"m"}));
        assert_eq!(a.timestamp, b.timestamp);
        assert!(a.timestamp.is_some());
    }

    #[test]
    fn empty_event_gets_a_label_and_bad_json_is_malformed() {
        assert_eq!(capture(json!({})).message, "<unlabeled event>");
        assert!(matches!(decode(b"[1]"), Err(Error::Malformed { .. })));
        assert!(matches!(decode(b"{\"a\":"), Err(Error::Malformed { .. })));
        assert!(matches!(
            decode(&vec![b' '; EVENT_MAX + 1]),
            Err(Error::PayloadTooLarge { .. })
        ));
    }
}
