//! The grouping key: which parts of an event decide its issue (in-app stack frames, else the
//! exception type and normalised message, else the message, or the client's own
//! fingerprint), and the versioned xxh3-128 hash of that key. Also the issue's display title
//! and culprit, which are derived from the same inputs.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_128;

use super::normalize::normalize_message;
use super::stacktrace::{is_in_app, strip_trailing_args};
use crate::domain::event::Frame;

/// The version of this (first, now legacy) algorithm, hashed into every fingerprint it makes.
/// Its output must never change: groups stored by it are still found through it (`v2`).
pub const GROUPING_VERSION: u32 = 1;

/// Only the newest frames take part, as in stack trace parsing; a deeper stack is recursion.
pub(super) const MAX_KEY_FRAMES: usize = 500;

/// Frame names and locations are clipped so a hostile client cannot store megabyte keys.
pub(super) const MAX_PART_CHARS: usize = 256;

const MAX_TITLE_CHARS: usize = 200;

const UNLABELED: &str = "<unlabeled event>";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupingSource {
    ClientFingerprint,
    Stacktrace,
    ExceptionMessage,
    Message,
}

impl GroupingSource {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupingSource::ClientFingerprint => "client_fingerprint",
            GroupingSource::Stacktrace => "stacktrace",
            GroupingSource::ExceptionMessage => "exception_message",
            GroupingSource::Message => "message",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grouping {
    pub version: u32,
    pub source: GroupingSource,
    pub components: Vec<String>,
    /// 32 lowercase hex digits of xxh3-128.
    pub fingerprint: String,
    /// Every key the event was matched by, the primary one first (empty for version 1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<GroupingVariant>,
}

impl Grouping {
    /// The key by which an event with this grouping belongs to a group whose keys `has` tells,
    /// chosen as the ingest writer chooses (`store::write`): its keys of its own version,
    /// primary first (only its fingerprint when it has no variants), else its keys of the
    /// version before. With the kind of the variant it comes from (`None`: the fingerprint of
    /// an event without variants). `None` when the group has none of them.
    pub fn key_among(&self, has: impl Fn(&str) -> bool) -> Option<(&str, Option<VariantKind>)> {
        let of = |version: u32| {
            self.variants
                .iter()
                .filter(move |v| v.version == version)
                .map(|v| (v.hash.as_str(), Some(v.kind)))
        };
        let only_fingerprint = self
            .variants
            .is_empty()
            .then_some((self.fingerprint.as_str(), None));
        of(self.version)
            .chain(only_fingerprint)
            .chain(of(GROUPING_VERSION).filter(|_| self.version != GROUPING_VERSION))
            .find(|(h, _)| has(h))
    }
}

/// Which way of looking at an event a key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VariantKind {
    /// The client's fingerprint without `{{ default }}`.
    ClientFingerprint,
    /// Application frames only (all frames when there are none).
    InApp,
    /// Every frame.
    Full,
    /// The version 1 key, only used to find groups stored before version 2.
    LegacyV1,
}

impl VariantKind {
    pub fn as_str(self) -> &'static str {
        match self {
            VariantKind::ClientFingerprint => "client_fingerprint",
            VariantKind::InApp => "in_app",
            VariantKind::Full => "full",
            VariantKind::LegacyV1 => "legacy_v1",
        }
    }
}

/// One key of an event and the components it was hashed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupingVariant {
    pub kind: VariantKind,
    pub version: u32,
    pub source: GroupingSource,
    pub components: Vec<String>,
    pub hash: String,
    /// Whether the event's group has this key: set when an event is read, never stored.
    #[serde(default, skip_serializing)]
    pub matches_group: bool,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct GroupingInput<'a> {
    pub exception_type: &'a str,
    pub message: &'a str,
    /// Oldest call first.
    pub frames: &'a [Frame],
    pub client_fingerprint: &'a [String],
    /// `normalize_message(message)` when the caller already has it (it is the costly part).
    pub normalized_message: Option<&'a str>,
}

/// Computes the grouping of an event.
pub fn compute(input: &GroupingInput<'_>) -> Grouping {
    let (default_components, default_source) = default_key(input);
    let (components, source) = if input.client_fingerprint.is_empty() {
        (default_components, default_source)
    } else {
        let mut components = Vec::new();
        for entry in input.client_fingerprint {
            if is_default_placeholder(entry) {
                components.extend(default_components.iter().cloned());
            } else {
                components.push(entry.clone());
            }
        }
        (components, GroupingSource::ClientFingerprint)
    };
    let fingerprint = hash(GROUPING_VERSION, &components);
    Grouping {
        version: GROUPING_VERSION,
        source,
        components,
        fingerprint,
        variants: Vec::new(),
    }
}

/// The issue's title ("Type: first line of message") and culprit ("where in what function").
pub fn title_and_culprit(
    exception_type: &str,
    message: &str,
    frames: &[Frame],
) -> (String, String) {
    let ty = exception_type.trim();
    let first_line = message
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let title = match (ty.is_empty(), first_line.is_empty()) {
        (false, false) => format!("{ty}: {first_line}"),
        (false, true) => ty.to_string(),
        (true, false) => first_line.to_string(),
        (true, true) => UNLABELED.to_string(),
    };

    let culprit = frames
        .iter()
        .rev()
        .find(|f| is_in_app(f))
        .or_else(|| frames.last())
        .map(|f| {
            let location = if f.module.trim().is_empty() {
                f.filename.trim()
            } else {
                f.module.trim()
            };
            let function = f.function.trim();
            match (location.is_empty(), function.is_empty()) {
                (false, false) => format!("{location} in {function}"),
                (false, true) => location.to_string(),
                (true, _) => function.to_string(),
            }
        })
        .unwrap_or_default();

    (
        truncate_chars(&title, MAX_TITLE_CHARS),
        truncate_chars(&culprit, MAX_TITLE_CHARS),
    )
}

fn default_key(input: &GroupingInput<'_>) -> (Vec<String>, GroupingSource) {
    let ty = input.exception_type.trim();
    let mut components = Vec::new();
    if !input.frames.is_empty() {
        if !ty.is_empty() {
            components.push(format!("type:{ty}"));
        }
        let in_app: Vec<&Frame> = input.frames.iter().filter(|f| is_in_app(f)).collect();
        let chosen: Vec<&Frame> = if in_app.is_empty() {
            input.frames.iter().collect()
        } else {
            in_app
        };
        let skip = chosen.len().saturating_sub(MAX_KEY_FRAMES);
        // Where the frames' components start (after the type).
        let first_frame = components.len();
        for frame in &chosen[skip..] {
            let location = frame_location(frame);
            let function = clean_function(&frame.function);
            let mut component = String::with_capacity(location.len() + 1 + function.len());
            component.push_str(&location);
            component.push(':');
            component.push_str(&function);
            // Recursion depth varies per event; one entry per run of identical frames keeps
            // it from splitting the group.
            if components.len() == first_frame || components.last() != Some(&component) {
                components.push(component);
            }
        }
        return (components, GroupingSource::Stacktrace);
    }
    let message = match input.normalized_message {
        Some(n) => format!("message:{n}"),
        None => format!("message:{}", normalize_message(input.message)),
    };
    if ty.is_empty() {
        (vec![message], GroupingSource::Message)
    } else {
        (
            vec![format!("type:{ty}"), message],
            GroupingSource::ExceptionMessage,
        )
    }
}

/// `{{ default }}`, `{{default}}`, `{{ DEFAULT }}`: stands for the default components.
pub(super) fn is_default_placeholder(entry: &str) -> bool {
    entry
        .trim()
        .strip_prefix("{{")
        .and_then(|e| e.strip_suffix("}}"))
        .is_some_and(|inner| inner.trim().eq_ignore_ascii_case("default"))
}

/// The module when known (stable across deploys and machines), else the file's basename:
/// directories differ between hosts, containers and build output.
fn frame_location(frame: &Frame) -> Cow<'_, str> {
    let module = frame.module.trim();
    let location = if module.is_empty() {
        basename(&frame.filename)
    } else {
        module
    };
    let location = if location.is_empty() { "?" } else { location };
    clip_chars(location, MAX_PART_CHARS)
}

pub(super) fn basename(filename: &str) -> &str {
    let mut path = filename.trim();
    // Query strings and fragments carry cache-busters and build hashes.
    if let Some(i) = memchr::memchr2(b'?', b'#', path.as_bytes()) {
        path = &path[..i];
    }
    // The last segment that is not empty. Searched as bytes (with SIMD): the separators are
    // ASCII, so every cut falls between characters.
    let path = path.trim_end_matches(['/', '\\']);
    match memchr::memrchr2(b'/', b'\\', path.as_bytes()) {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// Reduces a function name to what identifies the code: no `async`/`new`/`Object.`
/// decoration, argument lists or addresses, which vary by call site or by run.
fn clean_function(function: &str) -> Cow<'_, str> {
    let mut f = function.trim();
    loop {
        let before = f;
        f = without_trailing_address(f).trim();
        f = strip_trailing_args(f).trim();
        for prefix in ["async ", "new ", "Object."] {
            if let Some(rest) = f.strip_prefix(prefix) {
                f = rest.trim_start();
            }
        }
        if f == before {
            break;
        }
    }
    if f.is_empty() || f == "<anonymous>" {
        return Cow::Borrowed("?");
    }
    clip_chars(f, MAX_PART_CHARS)
}

/// `f` without a trailing address: what is left of the pattern `\s*\+?0[xX][0-9A-Fa-f]+\s*$`
/// (its leftmost match) cut off, read by hand.
fn without_trailing_address(f: &str) -> &str {
    let t = f.trim_end();
    let digits = t.bytes().rev().take_while(u8::is_ascii_hexdigit).count();
    if digits == 0 {
        return f;
    }
    let head = &t[..t.len() - digits];
    let Some(head) = head.strip_suffix("0x").or_else(|| head.strip_suffix("0X")) else {
        return f;
    };
    head.strip_suffix('+').unwrap_or(head).trim_end()
}

/// Length-prefixes every component so that `["a\nb"]` and `["a", "b"]` hash differently.
pub(super) fn hash(version: u32, components: &[String]) -> String {
    // `v{version}\n`, then `{len}:{component}\n` per component, in one buffer sized up front.
    // The numbers go through `itoa`: `write!` went through the formatting machinery once per
    // component, most of the time this took.
    let mut buf = Vec::with_capacity(16 + components.iter().map(|c| c.len() + 22).sum::<usize>());
    let mut number = itoa::Buffer::new();
    buf.push(b'v');
    buf.extend_from_slice(number.format(version).as_bytes());
    buf.push(b'\n');
    for c in components {
        buf.extend_from_slice(number.format(c.len()).as_bytes());
        buf.push(b':');
        buf.extend_from_slice(c.as_bytes());
        buf.push(b'\n');
    }
    // The 128 bits as 32 lower-case hex digits, most significant first (`{:032x}`).
    hex::encode(xxh3_128(&buf).to_be_bytes())
}

/// Cuts to at most `max` characters, the last being "…" when something was cut.
pub(super) fn truncate_chars(s: &str, max: usize) -> String {
    clip_chars(s, max).into_owned()
}

/// `truncate_chars`, borrowing `s` when it is short enough.
fn clip_chars(s: &str, max: usize) -> Cow<'_, str> {
    // Fewer bytes than `max` means fewer characters, without counting them.
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    match s.char_indices().nth(max) {
        None => Cow::Borrowed(s),
        Some(_) => Cow::Owned({
            let keep = s
                .char_indices()
                .nth(max.saturating_sub(1))
                .map_or(s.len(), |(i, _)| i);
            format!("{}…", &s[..keep])
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event belongs by its first key of its own version the group has, then by an older
    /// version's; never by a key the group lacks.
    #[test]
    fn key_among_follows_the_writers_order() {
        let variant = |kind, version, hash: &str| GroupingVariant {
            kind,
            version,
            source: GroupingSource::Stacktrace,
            components: Vec::new(),
            hash: hash.into(),
            matches_group: false,
        };
        let g = Grouping {
            version: 2,
            source: GroupingSource::Stacktrace,
            components: Vec::new(),
            fingerprint: "a".into(),
            variants: vec![
                variant(VariantKind::InApp, 2, "a"),
                variant(VariantKind::Full, 2, "b"),
                variant(VariantKind::LegacyV1, 1, "old"),
            ],
        };
        let among = |keys: &[&str]| g.key_among(|h| keys.contains(&h));
        assert_eq!(among(&["a", "b"]), Some(("a", Some(VariantKind::InApp))));
        assert_eq!(among(&["b", "old"]), Some(("b", Some(VariantKind::Full))));
        assert_eq!(among(&["old"]), Some(("old", Some(VariantKind::LegacyV1))));
        assert_eq!(among(&["c"]), None);
        let v1 = Grouping {
            version: 1,
            variants: Vec::new(),
            ..g
        };
        assert_eq!(v1.key_among(|h| h == "a"), Some(("a", None)));
    }

    /// The hand-read address suffix cuts exactly what the pattern it replaced did.
    #[test]
    fn trailing_addresses_are_cut_as_the_pattern_did() {
        let pattern = regex::Regex::new(r"\s*\+?0[xX][0-9A-Fa-f]+\s*$").unwrap();
        let by_pattern = |f: &str| pattern.find(f).map_or(f, |m| &f[..m.start()]).to_owned();
        let fixed = [
            "handler +0x1d",
            "handler+0x1d",
            "handler 0x7ffe12345678 ",
            "0xdead",
            "f0x0x1",
            "a00x12",
            "x +\u{2003}0X1F",
            "name\u{2003}+0x1",
            "name +0x",
            "name 0xg1",
            "+0x1",
            " 0x1 ",
            "",
        ];
        for f in fixed {
            assert_eq!(
                without_trailing_address(f).trim(),
                by_pattern(f).trim(),
                "{f:?}"
            );
        }
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let alphabet = ['0', 'x', 'X', '+', ' ', '\u{2003}', 'a', 'F', '9', 'g', '_'];
        for _ in 0..50_000 {
            let len = rng.random_range(0..12);
            let f: String = (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            assert_eq!(
                without_trailing_address(&f).trim(),
                by_pattern(&f).trim(),
                "{f:?}"
            );
        }
    }

    #[test]
    fn hash_input_is_the_documented_text() {
        let comps: Vec<String> = vec![
            String::new(),
            "a".repeat(9),
            "b".repeat(10),
            "ü".repeat(12345),
        ];
        let mut text = String::from("v12\n");
        for c in &comps {
            text.push_str(&format!("{}:{c}\n", c.len()));
        }
        assert_eq!(
            hash(12, &comps),
            format!("{:032x}", xxh3_128(text.as_bytes()))
        );
        assert_eq!(hash(0, &[]), format!("{:032x}", xxh3_128(b"v0\n")));
    }

    fn frame(module: &str, filename: &str, function: &str, lineno: u32) -> Frame {
        Frame {
            module: module.into(),
            filename: filename.into(),
            function: function.into(),
            lineno,
            ..Frame::default()
        }
    }

    fn with_frames<'a>(ty: &'a str, message: &'a str, frames: &'a [Frame]) -> GroupingInput<'a> {
        GroupingInput {
            exception_type: ty,
            message,
            frames,
            client_fingerprint: &[],
            normalized_message: None,
        }
    }

    fn msg<'a>(ty: &'a str, message: &'a str) -> GroupingInput<'a> {
        with_frames(ty, message, &[])
    }

    #[test]
    fn fingerprint_is_32_lowercase_hex() {
        let g = compute(&msg("", "hello"));
        assert_eq!(g.fingerprint.len(), 32);
        assert!(
            g.fingerprint
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_eq!(g.version, GROUPING_VERSION);
        let empty = compute(&GroupingInput::default());
        assert_eq!(empty.fingerprint.len(), 32);
        assert_eq!(empty.source, GroupingSource::Message);
    }

    #[test]
    fn line_numbers_do_not_matter() {
        let a = [
            frame("", "/app/views.py", "checkout", 42),
            frame("", "/app/pricing.py", "total", 10),
        ];
        let b = [
            frame("", "/srv/v2/views.py", "checkout", 57),
            frame("", "/srv/v2/pricing.py", "total", 11),
        ];
        let ga = compute(&with_frames("ValueError", "bad 1", &a));
        let gb = compute(&with_frames("ValueError", "other text", &b));
        assert_eq!(ga.fingerprint, gb.fingerprint);
        assert_eq!(ga.source, GroupingSource::Stacktrace);
        assert_eq!(
            ga.components,
            vec!["type:ValueError", "views.py:checkout", "pricing.py:total"]
        );
    }

    #[test]
    fn different_culprit_function_differs() {
        let a = [
            frame("", "/app/views.py", "checkout", 42),
            frame("", "/app/pricing.py", "total", 10),
        ];
        let b = [
            frame("", "/app/views.py", "checkout", 42),
            frame("", "/app/pricing.py", "subtotal", 10),
        ];
        assert_ne!(
            compute(&with_frames("ValueError", "", &a)).fingerprint,
            compute(&with_frames("ValueError", "", &b)).fingerprint
        );
    }

    #[test]
    fn different_exception_type_differs() {
        let a = [frame("", "/app/views.py", "checkout", 42)];
        assert_ne!(
            compute(&with_frames("ValueError", "", &a)).fingerprint,
            compute(&with_frames("KeyError", "", &a)).fingerprint
        );
    }

    #[test]
    fn messages_group_modulo_ids() {
        let a = compute(&msg("", "User 123 not found"));
        let b = compute(&msg("", "User 98765 not found"));
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(a.source, GroupingSource::Message);
        assert_eq!(a.components, vec!["message:User <num> not found"]);

        let c = compute(&msg("NotFound", "User 123 not found"));
        let d = compute(&msg("NotFound", "User 7 not found"));
        assert_eq!(c.fingerprint, d.fingerprint);
        assert_eq!(c.source, GroupingSource::ExceptionMessage);
        assert_eq!(
            c.components,
            vec!["type:NotFound", "message:User <num> not found"]
        );
        assert_ne!(a.fingerprint, c.fingerprint);
    }

    #[test]
    fn different_messages_differ() {
        assert_ne!(
            compute(&msg("", "Database connection failed")).fingerprint,
            compute(&msg("", "Cache connection failed")).fingerprint
        );
    }

    #[test]
    fn client_fingerprint_replaces_the_key() {
        let fp = vec!["checkout-failure".to_string()];
        let a = compute(&GroupingInput {
            message: "one",
            client_fingerprint: &fp,
            ..GroupingInput::default()
        });
        let b = compute(&GroupingInput {
            exception_type: "KeyError",
            message: "something else entirely",
            client_fingerprint: &fp,
            ..GroupingInput::default()
        });
        assert_eq!(a.source, GroupingSource::ClientFingerprint);
        assert_eq!(a.components, vec!["checkout-failure"]);
        assert_eq!(a.fingerprint, b.fingerprint);
    }

    #[test]
    fn client_fingerprint_with_default() {
        let frames = [frame("", "/app/a.py", "f", 1)];
        let base = with_frames("E", "m", &frames);
        let plain = compute(&base);

        let fa = vec!["{{ default }}".to_string(), "tenant-a".to_string()];
        let fb = vec!["{{default}}".to_string(), "tenant-b".to_string()];
        let ga = compute(&GroupingInput {
            client_fingerprint: &fa,
            ..base
        });
        let gb = compute(&GroupingInput {
            client_fingerprint: &fb,
            ..base
        });
        assert_ne!(ga.fingerprint, gb.fingerprint);
        assert_eq!(ga.components, vec!["type:E", "a.py:f", "tenant-a"]);
        assert_ne!(ga.fingerprint, plain.fingerprint);

        for spelling in [
            "{{ default }}",
            "{{default}}",
            "{{  DEFAULT\t}}",
            " {{ Default }} ",
        ] {
            let only = vec![spelling.to_string()];
            let g = compute(&GroupingInput {
                client_fingerprint: &only,
                ..base
            });
            assert_eq!(g.fingerprint, plain.fingerprint, "{spelling:?}");
            assert_eq!(g.components, plain.components);
            assert_eq!(g.source, GroupingSource::ClientFingerprint);
        }
        assert!(!is_default_placeholder("{{ defaults }}"));
        assert!(!is_default_placeholder("default"));
    }

    #[test]
    fn length_prefix_separates_components() {
        let joined = vec!["a\nb".to_string()];
        let split = vec!["a".to_string(), "b".to_string()];
        let g1 = compute(&GroupingInput {
            client_fingerprint: &joined,
            ..GroupingInput::default()
        });
        let g2 = compute(&GroupingInput {
            client_fingerprint: &split,
            ..GroupingInput::default()
        });
        assert_ne!(g1.fingerprint, g2.fingerprint);
    }

    #[test]
    fn recursion_collapses() {
        let shallow = [
            frame("", "/app/a.js", "main", 1),
            frame("", "/app/a.js", "walk", 5),
        ];
        let mut deep = vec![frame("", "/app/a.js", "main", 1)];
        for i in 0..50 {
            deep.push(frame("", "/app/a.js", "walk", 5 + i));
        }
        let gs = compute(&with_frames("RangeError", "", &shallow));
        let gd = compute(&with_frames("RangeError", "", &deep));
        assert_eq!(gs.fingerprint, gd.fingerprint);
        assert_eq!(
            gd.components,
            vec!["type:RangeError", "a.js:main", "a.js:walk"]
        );
    }

    #[test]
    fn library_frames_are_ignored_when_app_frames_exist() {
        let a = [
            frame("", "/app/node_modules/express/lib/router.js", "handle", 10),
            frame("", "/app/src/routes.js", "getUser", 3),
            frame(
                "",
                "node:internal/process/task_queues",
                "processTicksAndRejections",
                95,
            ),
        ];
        let b = [
            frame(
                "",
                "/app/node_modules/express/lib/router/layer.js",
                "next",
                99,
            ),
            frame("", "/app/src/routes.js", "getUser", 4),
        ];
        let ga = compute(&with_frames("TypeError", "", &a));
        assert_eq!(ga.components, vec!["type:TypeError", "routes.js:getUser"]);
        assert_eq!(
            ga.fingerprint,
            compute(&with_frames("TypeError", "", &b)).fingerprint
        );

        // No in-app frame at all: everything counts.
        let libs = [frame("java.util.HashMap", "HashMap.java", "get", 1)];
        assert_eq!(
            compute(&with_frames("", "", &libs)).components,
            vec!["java.util.HashMap:get"]
        );
    }

    #[test]
    fn function_and_location_cleaning() {
        assert_eq!(clean_function("async handler"), "handler");
        assert_eq!(clean_function("new Foo"), "Foo");
        assert_eq!(clean_function("Object.<anonymous>"), "?");
        assert_eq!(clean_function("  "), "?");
        assert_eq!(clean_function("<anonymous>"), "?");
        assert_eq!(
            clean_function("main.handler(0xc000010000, 0x3)"),
            "main.handler"
        );
        assert_eq!(clean_function("handler +0x1d"), "handler");
        assert_eq!(clean_function("frob 0x7ffe12345678"), "frob");
        assert_eq!(clean_function("(*Server).Handle"), "(*Server).Handle");
        assert_eq!(clean_function("<lambda>"), "<lambda>");
        assert_eq!(
            basename("https://cdn.x.com/static/app.min.js?v=123#L5"),
            "app.min.js"
        );
        assert_eq!(basename("file:///app/x.mjs"), "x.mjs");
        assert_eq!(basename("C:\\app\\views.py"), "views.py");
        assert_eq!(basename(""), "");
        // The last segment that is not empty; none is there in separators alone.
        assert_eq!(basename("/srv/app/"), "app");
        assert_eq!(basename("a\\b//\\"), "b");
        assert_eq!(basename(" /x/ü.py?a/b "), "ü.py");
        assert_eq!(basename("//\\/"), "");
        assert_eq!(basename("views.py"), "views.py");
        assert_eq!(basename("#/a/b"), "");
        assert_eq!(
            frame_location(&frame("com.acme.Foo", "Foo.java", "bar", 1)),
            "com.acme.Foo"
        );
        assert_eq!(frame_location(&Frame::default()), "?");
    }

    #[test]
    fn title_and_culprit_rules() {
        let frames = [
            frame("", "/app/views.py", "checkout", 42),
            frame("", "/app/pricing.py", "total", 10),
            frame(
                "",
                "/usr/lib/python3.11/site-packages/decimal.py",
                "quantize",
                3,
            ),
        ];
        let (t, c) = title_and_culprit("ValueError", "bad input\nsecond line", &frames);
        assert_eq!(t, "ValueError: bad input");
        assert_eq!(c, "/app/pricing.py in total");
        assert_eq!(
            title_and_culprit("ValueError", "", &[]),
            ("ValueError".to_string(), String::new())
        );
        assert_eq!(title_and_culprit("", "just text", &[]).0, "just text");
        assert_eq!(title_and_culprit(" ", " \n ", &[]).0, "<unlabeled event>");

        let java = [frame("com.acme.Foo", "Foo.java", "bar", 1)];
        assert_eq!(title_and_culprit("E", "m", &java).1, "com.acme.Foo in bar");
        let libs = [
            frame("", "/usr/lib/x.py", "a", 1),
            frame("", "/usr/lib/y.py", "", 1),
        ];
        assert_eq!(title_and_culprit("E", "m", &libs).1, "/usr/lib/y.py");
        let nameless = [frame("", "", "doit", 1)];
        assert_eq!(title_and_culprit("E", "m", &nameless).1, "doit");
    }

    #[test]
    fn long_titles_are_truncated_on_char_boundaries() {
        let long = "é".repeat(500);
        let (t, _) = title_and_culprit("Err", &long, &[]);
        assert_eq!(t.chars().count(), MAX_TITLE_CHARS);
        assert!(t.starts_with("Err: éé"));
        assert!(t.ends_with('…'));
        let exact = "x".repeat(MAX_TITLE_CHARS);
        assert_eq!(title_and_culprit("", &exact, &[]).0, exact);
    }

    #[test]
    fn hostile_frames_do_not_panic() {
        let frames = [
            frame("", "?#?", "🚀🚀 +0x", 0),
            frame("", "////", "((((", 0),
            frame("", "日本/語.rb", ")))", 0),
            frame("", &"é".repeat(10_000), &"(".repeat(10_000), 0),
        ];
        let g = compute(&with_frames("型", "メッセージ 1", &frames));
        assert_eq!(g.fingerprint.len(), 32);
        assert!(
            g.components
                .iter()
                .all(|c| c.chars().count() <= 2 * MAX_PART_CHARS + 8)
        );
        let _ = title_and_culprit("型", "メッセージ", &frames);
    }

    #[test]
    fn source_names() {
        assert_eq!(
            GroupingSource::ClientFingerprint.as_str(),
            "client_fingerprint"
        );
        assert_eq!(GroupingSource::Stacktrace.as_str(), "stacktrace");
        assert_eq!(
            GroupingSource::ExceptionMessage.as_str(),
            "exception_message"
        );
        assert_eq!(GroupingSource::Message.as_str(), "message");
        assert_eq!(
            serde_json::to_string(&GroupingSource::ExceptionMessage)
                .ok()
                .as_deref(),
            Some("\"exception_message\"")
        );
    }
}
