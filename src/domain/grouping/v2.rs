//! Grouping version 2, after Sentry's: every exception of a chain contributes its type (unless
//! synthetic) and its frames as module-or-file, cleaned function and, for Python and
//! JavaScript, the short source line; never line numbers. An event gets several keys (in-app
//! frames, all frames, or the client's fingerprint) and joins a group when any of them is
//! known; the version 1 key rides along so groups stored before keep receiving events.

use std::{borrow::Cow, cell::OnceCell, collections::BTreeMap};

use super::fingerprint::{
    self, GROUPING_VERSION as V1, Grouping, GroupingInput as V1Input, GroupingSource,
    GroupingVariant, MAX_KEY_FRAMES, MAX_PART_CHARS, VariantKind, basename, hash,
    is_default_placeholder, truncate_chars,
};
use super::normalize::normalize_message;
use super::stacktrace::{is_in_app, strip_trailing_args};
use crate::domain::event::Frame;

/// The version of this algorithm, hashed into its keys.
pub const GROUPING_VERSION: u32 = 2;

/// Longer source lines are minified code or data, not a statement that identifies a frame.
const MAX_CONTEXT_CHARS: usize = 120;

/// One exception of an event.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExceptionPart<'a> {
    pub r#type: &'a str,
    /// The exception's value (the event's message when the exception has none).
    pub value: &'a str,
    /// Oldest call first.
    pub frames: &'a [Frame],
    /// Made up by the SDK from a signal or a non-error value: its type says nothing.
    pub synthetic: bool,
}

/// What grouping looks at.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventInput<'a> {
    /// The exceptions of a chain, oldest first; the last is the one that escaped. Empty for a
    /// plain message.
    pub exceptions: &'a [ExceptionPart<'a>],
    pub message: &'a str,
    /// "python", "javascript", "node", … (empty: unknown; then guessed from file names).
    pub platform: &'a str,
    pub client_fingerprint: &'a [String],
    pub transaction: &'a str,
    pub level: &'a str,
    pub tags: Option<&'a BTreeMap<String, String>>,
}

/// Computes the event's keys. The first variant is the primary key (`fingerprint`); a
/// `legacy_v1` variant always comes last.
pub fn compute(input: &EventInput<'_>) -> Grouping {
    let platform = Platform::of(input);
    // Normalising a value is the costly part of a key; each is done at most once, for the
    // in-app, full and legacy keys together. The last cell is the event's message.
    let normalized: Vec<OnceCell<String>> = (0..=input.exceptions.len())
        .map(|_| OnceCell::new())
        .collect();
    let norm = Norm {
        input,
        cells: &normalized,
    };
    // Each exception's newest frames as components, with whether each is in-app: made once
    // for the in-app key and the full key.
    let frame_keys: Vec<Vec<(String, bool)>> = input
        .exceptions
        .iter()
        .map(|e| {
            let skip = e.frames.len().saturating_sub(MAX_KEY_FRAMES);
            e.frames[skip..]
                .iter()
                .map(|f| (frame_component(f, platform), is_in_app(f)))
                .collect()
        })
        .collect();
    let has_in_app = input
        .exceptions
        .iter()
        .any(|e| e.frames.iter().any(is_in_app));
    let full = default_key(input, &norm, &frame_keys, false);
    let in_app = if has_in_app {
        default_key(input, &norm, &frame_keys, true)
    } else {
        full.clone()
    };

    let mut variants = Vec::with_capacity(3);
    if input.client_fingerprint.is_empty() {
        for (kind, (components, source)) in
            [(VariantKind::InApp, in_app), (VariantKind::Full, full)]
        {
            variants.push(variant(kind, source, components));
        }
    } else if input
        .client_fingerprint
        .iter()
        .any(|e| is_default_placeholder(e))
    {
        // `{{ default }}` salts each default key, so the event still matches by either.
        for (kind, (default, _)) in [(VariantKind::InApp, in_app), (VariantKind::Full, full)] {
            let components = expand(input, &default);
            variants.push(variant(kind, GroupingSource::ClientFingerprint, components));
        }
    } else {
        let components = expand(input, &[]);
        variants.push(variant(
            VariantKind::ClientFingerprint,
            GroupingSource::ClientFingerprint,
            components,
        ));
    }

    let main = input.exceptions.last().copied().unwrap_or_default();
    let legacy = fingerprint::compute(&V1Input {
        exception_type: main.r#type,
        message: if input.exceptions.is_empty() {
            input.message
        } else {
            main.value
        },
        frames: main.frames,
        client_fingerprint: input.client_fingerprint,
        normalized_message: normalized
            .get(input.exceptions.len().saturating_sub(1))
            .and_then(OnceCell::get)
            .map(String::as_str),
    });
    variants.push(GroupingVariant {
        kind: VariantKind::LegacyV1,
        version: V1,
        source: legacy.source,
        components: legacy.components,
        hash: legacy.fingerprint,
        matches_group: false,
    });

    let primary = &variants[0];
    Grouping {
        version: GROUPING_VERSION,
        source: primary.source,
        components: primary.components.clone(),
        fingerprint: primary.hash.clone(),
        variants,
    }
}

fn variant(kind: VariantKind, source: GroupingSource, components: Vec<String>) -> GroupingVariant {
    GroupingVariant {
        kind,
        version: GROUPING_VERSION,
        source,
        hash: hash(GROUPING_VERSION, &components),
        components,
        matches_group: false,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Platform {
    Python,
    JavaScript,
    Other,
}

impl Platform {
    fn of(input: &EventInput<'_>) -> Platform {
        let named = input.platform.trim();
        let is = |name: &str| named.eq_ignore_ascii_case(name);
        if is("python") {
            return Platform::Python;
        }
        if ["javascript", "node", "browser", "react-native"]
            .into_iter()
            .any(is)
        {
            return Platform::JavaScript;
        }
        if !named.is_empty() {
            return Platform::Other;
        }
        // Structured frames without a platform: the newest frame's file extension says.
        let newest = input
            .exceptions
            .iter()
            .rev()
            .find_map(|e| e.frames.iter().rev().find(|f| !f.filename.is_empty()));
        let Some(f) = newest else {
            return Platform::Other;
        };
        let name = basename(&f.filename);
        match name.rsplit_once('.').map(|(_, ext)| ext) {
            Some("py") => Platform::Python,
            Some("js" | "mjs" | "cjs" | "jsx" | "ts" | "tsx") => Platform::JavaScript,
            _ => Platform::Other,
        }
    }

    fn uses_context_line(self) -> bool {
        self != Platform::Other
    }
}

/// The default key: each exception's type and frames (its value when no frame counts), or the
/// message when there is no exception.
fn default_key(
    input: &EventInput<'_>,
    norm: &Norm<'_, '_>,
    frame_keys: &[Vec<(String, bool)>],
    in_app_only: bool,
) -> (Vec<String>, GroupingSource) {
    let mut components = Vec::new();
    if input.exceptions.is_empty() {
        components.push(format!("message:{}", norm.get(0)));
        return (components, GroupingSource::Message);
    }
    let mut any_frame = false;
    let mut any_type = false;
    for (idx, e) in input.exceptions.iter().enumerate() {
        let ty = e.r#type.trim();
        if !e.synthetic && !ty.is_empty() {
            components.push(format!("type:{ty}"));
            any_type = true;
        }
        if push_frames(&mut components, &frame_keys[idx], in_app_only) {
            any_frame = true;
        } else {
            components.push(format!("message:{}", norm.get(idx)));
        }
    }
    let source = if any_frame {
        GroupingSource::Stacktrace
    } else if any_type {
        GroupingSource::ExceptionMessage
    } else {
        GroupingSource::Message
    };
    (components, source)
}

/// Normalised exception values (index = exception), or the message when there is none.
struct Norm<'i, 'a> {
    input: &'i EventInput<'a>,
    cells: &'i [OnceCell<String>],
}

impl Norm<'_, '_> {
    fn get(&self, idx: usize) -> &str {
        let text = match self.input.exceptions.get(idx) {
            Some(e) => e.value,
            None => self.input.message,
        };
        self.cells[idx].get_or_init(|| normalize_message(text))
    }
}

/// Adds one component per frame (the newest `MAX_KEY_FRAMES`, made by `compute`), a run of
/// identical ones counting once: recursion depth varies per event. Returns whether any frame
/// contributed.
fn push_frames(
    components: &mut Vec<String>,
    frame_keys: &[(String, bool)],
    in_app_only: bool,
) -> bool {
    let mut last: Option<usize> = None;
    for (c, in_app) in frame_keys {
        if in_app_only && !in_app {
            continue;
        }
        if last.is_some_and(|i| &components[i] == c) {
            continue;
        }
        components.push(c.clone());
        last = Some(components.len() - 1);
    }
    last.is_some()
}

/// `location:function`, plus ` | source line` where the platform's source lines identify code.
fn frame_component(f: &Frame, platform: Platform) -> String {
    let module = clean_module(f.module.trim());
    let location = if module.is_empty() {
        basename(&f.filename)
    } else {
        module
    };
    let location = if location.is_empty() { "?" } else { location };
    let function = clean_function(&f.function);
    let line = if platform.uses_context_line() {
        let line = f.context_line.trim();
        // Fewer bytes than the limit means fewer characters, without counting them.
        let short =
            line.len() < MAX_CONTEXT_CHARS || line.chars().nth(MAX_CONTEXT_CHARS - 1).is_none();
        if short { line } else { "" }
    } else {
        ""
    };
    // Room for the whole component, the source line too: one allocation per frame.
    let mut c = String::with_capacity(location.len() + function.len() + line.len() + 4);
    push_clipped(&mut c, location);
    c.push(':');
    push_clipped(&mut c, &function);
    if !line.is_empty() {
        c.push_str(" | ");
        c.push_str(line);
    }
    c
}

fn push_clipped(out: &mut String, part: &str) {
    if part.len() <= MAX_PART_CHARS {
        out.push_str(part);
    } else {
        out.push_str(&truncate_chars(part, MAX_PART_CHARS));
    }
}

/// A JVM class without the generated parts that change per build or per run: lambda and
/// proxy classes (`Foo$$Lambda$14/0x…`, `Foo$$EnhancerByCGLIB$$1a2b`) and the numbers of
/// anonymous classes (`Foo$1`), which shift when another is added above.
fn clean_module(module: &str) -> &str {
    let mut m = module;
    if !m.contains('$') {
        return m;
    }
    if let Some(i) = m.find("$$") {
        m = &m[..i];
    }
    // `Outer$1$2` → `Outer`, `Outer$Inner$1` → `Outer$Inner`.
    while let Some((head, tail)) = m.rsplit_once('$') {
        if !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()) {
            m = head;
        } else {
            break;
        }
    }
    m
}

/// Reduces a function name to what identifies the code across builds, runs and call sites:
/// no addresses (`+0x1d`, `0x7ffe…`), argument lists, `async`/`new`/`Object.` decoration,
/// V8 `[as alias]` and Firefox `/<` suffixes, numbered lambdas and closures (Java
/// `lambda$main$0`, Go `func1`, .NET `<Main>b__0_1`, Ruby `block (2 levels) in`).
pub fn clean_function(function: &str) -> Cow<'_, str> {
    let mut f = function.trim();
    loop {
        let before = f;
        f = strip_trailing_address(f);
        f = strip_trailing_args(f).trim();
        if f.ends_with(']')
            && let Some(i) = f.find(" [as ")
        {
            f = f[..i].trim_end();
        }
        while let Some(rest) = f.strip_suffix("/<") {
            f = rest;
        }
        for prefix in ["async ", "new ", "Object."] {
            if let Some(rest) = f.strip_prefix(prefix) {
                f = rest.trim_start();
            }
        }
        f = strip_lambda_number(f);
        if f == before {
            break;
        }
    }
    // Ruby nesting depth: `block (2 levels) in save` is the block in `save`.
    if let Some(rest) = f.strip_prefix("block (")
        && let Some(i) = rest.find(") in ")
    {
        return Cow::Owned(format!("block {}", &rest[i + 2..]));
    }
    Cow::Borrowed(normalise_empty(f))
}

fn normalise_empty(f: &str) -> &str {
    if f.is_empty() || f == "<anonymous>" || f == "anonymous" {
        "?"
    } else {
        f
    }
}

/// `name +0x1d`, `name 0x7ffe12345678`, `name+0x1d`.
fn strip_trailing_address(f: &str) -> &str {
    let t = f.trim_end();
    let digits = t.bytes().rev().take_while(u8::is_ascii_hexdigit).count();
    if digits == 0 || digits == t.len() {
        return f;
    }
    let head = &t[..t.len() - digits];
    let Some(head) = head.strip_suffix("0x").or_else(|| head.strip_suffix("0X")) else {
        return f;
    };
    let head = head.trim_end();
    let head = head.strip_suffix('+').unwrap_or(head).trim_end();
    if head.is_empty() { f } else { head }
}

/// The counter the compiler appends to lambdas and closures: `lambda$main$0` → `lambda$main`,
/// `handler.func1` → `handler.func`, `<Main>b__0_1` → `<Main>b__`.
fn strip_lambda_number(f: &str) -> &str {
    if !f.ends_with(|c: char| c.is_ascii_digit() || c == '_') {
        return f;
    }
    if let Some(i) = f.rfind("b__") {
        let tail = &f[i + 3..];
        if !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
            return &f[..i + 3];
        }
    }
    let digits = f.bytes().rev().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return f;
    }
    let head = &f[..f.len() - digits];
    if head.ends_with('$') && head.contains("lambda$") {
        return &head[..head.len() - 1];
    }
    if head.ends_with(".func") || head == "func" {
        return head;
    }
    f
}

/// The client fingerprint with its templates filled in; `{{ default }}` becomes `default`.
fn expand(input: &EventInput<'_>, default: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(input.client_fingerprint.len() + default.len());
    for entry in input.client_fingerprint {
        let Some(name) = template_name(entry) else {
            out.push(entry.clone());
            continue;
        };
        let lower = name.to_ascii_lowercase();
        let value = match lower.as_str() {
            "default" => {
                out.extend(default.iter().cloned());
                continue;
            }
            "type" => non_empty(main_type(input), "<no-type>"),
            "function" => non_empty(
                &culprit_frame(input).map_or(Cow::Borrowed(""), |f| clean_function(&f.function)),
                "<no-function>",
            ),
            "module" => non_empty(
                culprit_frame(input).map_or("", |f| {
                    let m = clean_module(f.module.trim());
                    if m.is_empty() {
                        basename(&f.filename)
                    } else {
                        m
                    }
                }),
                "<no-module>",
            ),
            "transaction" => non_empty(input.transaction.trim(), "<no-transaction>"),
            "level" => non_empty(input.level, "<no-level>"),
            _ => match lower.strip_prefix("tags.") {
                Some(_) => {
                    let key = &name["tags.".len()..];
                    match input.tags.and_then(|t| t.get(key)) {
                        Some(v) if !v.is_empty() => v.clone(),
                        _ => format!("<no-value-for-tag-{key}>"),
                    }
                }
                // An unknown variable is kept as written, like any other text.
                None => entry.clone(),
            },
        };
        out.push(value);
    }
    out
}

fn non_empty(s: &str, missing: &str) -> String {
    if s.is_empty() { missing } else { s }.to_owned()
}

/// `{{ name }}` → `name`.
fn template_name(entry: &str) -> Option<&str> {
    entry
        .trim()
        .strip_prefix("{{")
        .and_then(|e| e.strip_suffix("}}"))
        .map(str::trim)
        .filter(|n| !n.is_empty())
}

fn main_type<'a>(input: &EventInput<'a>) -> &'a str {
    input.exceptions.last().map_or("", |e| e.r#type.trim())
}

/// The frame the error is blamed on: the newest in-app frame of the main exception, else its
/// newest frame.
fn culprit_frame<'a>(input: &EventInput<'a>) -> Option<&'a Frame> {
    let frames = input.exceptions.last()?.frames;
    frames
        .iter()
        .rev()
        .find(|f| is_in_app(f))
        .or_else(|| frames.last())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(module: &str, filename: &str, function: &str, in_app: bool) -> Frame {
        Frame {
            module: module.into(),
            filename: filename.into(),
            function: function.into(),
            in_app: Some(in_app),
            ..Frame::default()
        }
    }

    fn ctx(mut f: Frame, line: &str, lineno: u32) -> Frame {
        f.context_line = line.into();
        f.lineno = lineno;
        f
    }

    fn one<'a>(ty: &'a str, value: &'a str, frames: &'a [Frame]) -> [ExceptionPart<'a>; 1] {
        [ExceptionPart {
            r#type: ty,
            value,
            frames,
            synthetic: false,
        }]
    }

    fn group(exceptions: &[ExceptionPart<'_>], platform: &str) -> Grouping {
        compute(&EventInput {
            exceptions,
            platform,
            ..EventInput::default()
        })
    }

    fn kinds(g: &Grouping) -> Vec<VariantKind> {
        g.variants.iter().map(|v| v.kind).collect()
    }

    fn hash_of(g: &Grouping, kind: VariantKind) -> &str {
        &g.variants
            .iter()
            .find(|v| v.kind == kind)
            .expect("variant")
            .hash
    }

    #[test]
    fn function_cleaning_per_platform() {
        // JavaScript
        assert_eq!(clean_function("Object.<anonymous>"), "?");
        assert_eq!(clean_function("Object.handler"), "handler");
        assert_eq!(clean_function("async Promise.all"), "Promise.all");
        assert_eq!(clean_function("new OrderService"), "OrderService");
        assert_eq!(
            clean_function("Router.handle [as handle_request]"),
            "Router.handle"
        );
        assert_eq!(clean_function("render/</<"), "render");
        assert_eq!(clean_function("<anonymous>"), "?");
        // Java / Kotlin
        assert_eq!(clean_function("lambda$main$0"), "lambda$main");
        assert_eq!(clean_function("lambda$static$12"), "lambda$static");
        assert_eq!(
            clean_module("com.acme.Foo$$Lambda$14/0x0000000800c02a00"),
            "com.acme.Foo"
        );
        assert_eq!(
            clean_module("com.acme.Svc$$EnhancerByCGLIB$$1a2b3c"),
            "com.acme.Svc"
        );
        assert_eq!(clean_module("com.acme.Foo$1"), "com.acme.Foo");
        assert_eq!(clean_module("com.acme.Foo$Inner$2$1"), "com.acme.Foo$Inner");
        assert_eq!(clean_module("com.acme.Foo$Inner"), "com.acme.Foo$Inner");
        // Go
        assert_eq!(
            clean_function("main.handler(0xc000010000, 0x3)"),
            "main.handler"
        );
        assert_eq!(clean_function("handler.func1"), "handler.func");
        assert_eq!(
            clean_function("(*Server).Handle.func12"),
            "(*Server).Handle.func"
        );
        // Native addresses
        assert_eq!(clean_function("handler +0x1d"), "handler");
        assert_eq!(clean_function("frob 0x7ffe12345678"), "frob");
        assert_eq!(clean_function("frob+0x1d"), "frob");
        assert_eq!(clean_function("0xdeadbeef"), "0xdeadbeef");
        // .NET
        assert_eq!(clean_function("<Main>b__0_1"), "<Main>b__");
        // Ruby
        assert_eq!(
            clean_function("block (2 levels) in persist"),
            "block in persist"
        );
        assert_eq!(clean_function("block in persist"), "block in persist");
        // Python: lambdas have no number to strip and stay named.
        assert_eq!(clean_function("<lambda>"), "<lambda>");
        assert_eq!(clean_function("  "), "?");
        // Names ending in digits that are not counters stay.
        assert_eq!(clean_function("utf8_decode2"), "utf8_decode2");
        assert_eq!(clean_function("sha256"), "sha256");
    }

    #[test]
    fn line_numbers_never_count_context_lines_do_for_python_and_js() {
        let a = [
            ctx(
                frame("", "/app/views.py", "checkout", true),
                "total = compute(cart)",
                42,
            ),
            ctx(
                frame("", "/app/pricing.py", "total", true),
                "return int(p)",
                10,
            ),
        ];
        let b = [
            ctx(
                frame("", "/srv/views.py", "checkout", true),
                "total = compute(cart)",
                57,
            ),
            ctx(
                frame("", "/srv/pricing.py", "total", true),
                "return int(p)",
                11,
            ),
        ];
        let ga = group(&one("ValueError", "x 1", &a), "python");
        let gb = group(&one("ValueError", "y 2", &b), "python");
        assert_eq!(ga.fingerprint, gb.fingerprint);
        assert_eq!(
            ga.components,
            vec![
                "type:ValueError",
                "views.py:checkout | total = compute(cart)",
                "pricing.py:total | return int(p)"
            ]
        );
        // Another statement in the same function is another place.
        let c = [
            ctx(
                frame("", "/app/views.py", "checkout", true),
                "total = compute(cart)",
                42,
            ),
            ctx(
                frame("", "/app/pricing.py", "total", true),
                "return float(p)",
                10,
            ),
        ];
        assert_ne!(
            ga.fingerprint,
            group(&one("ValueError", "", &c), "python").fingerprint
        );
        // The platform is guessed from the file when not sent.
        assert_eq!(
            ga.fingerprint,
            group(&one("ValueError", "", &a), "").fingerprint
        );
        // JavaScript too; Java and Go source lines do not count.
        let js = [ctx(frame("", "/app/a.js", "f", true), "x.y()", 1)];
        assert_eq!(
            group(&one("TypeError", "", &js), "javascript").components[1],
            "a.js:f | x.y()"
        );
        let java = [ctx(frame("com.acme.A", "A.java", "f", true), "x.y();", 1)];
        assert_eq!(
            group(&one("E", "", &java), "java").components[1],
            "com.acme.A:f"
        );
        // Long lines (minified code) do not count.
        let long = "x".repeat(MAX_CONTEXT_CHARS);
        let min = [ctx(frame("", "/app/a.min.js", "f", true), &long, 1)];
        assert_eq!(
            group(&one("E", "", &min), "javascript").components[1],
            "a.min.js:f"
        );
        let short = "x".repeat(MAX_CONTEXT_CHARS - 1);
        let ok = [ctx(frame("", "/app/a.js", "f", true), &short, 1)];
        assert!(group(&one("E", "", &ok), "javascript").components[1].ends_with(&short));
    }

    #[test]
    fn recursion_collapses() {
        let shallow = [
            frame("", "/app/a.js", "main", true),
            frame("", "/app/a.js", "walk", true),
        ];
        let mut deep = vec![frame("", "/app/a.js", "main", true)];
        deep.extend((0..50).map(|_| frame("", "/app/a.js", "walk", true)));
        let gs = group(&one("RangeError", "", &shallow), "");
        let gd = group(&one("RangeError", "", &deep), "");
        assert_eq!(gs.fingerprint, gd.fingerprint);
        assert_eq!(
            gd.components,
            vec!["type:RangeError", "a.js:main", "a.js:walk"]
        );
        // A library frame between two app frames does not break the run in the in-app key.
        let split = [
            frame("", "/app/a.js", "walk", true),
            frame("", "/app/node_modules/x.js", "lib", false),
            frame("", "/app/a.js", "walk", true),
        ];
        assert_eq!(
            group(&one("E", "", &split), "").components,
            vec!["type:E", "a.js:walk"]
        );
    }

    #[test]
    fn in_app_and_full_keys() {
        let app_then_lib = [
            frame("", "/venv/site-packages/flask/app.py", "dispatch", false),
            frame("", "/app/views.py", "checkout", true),
        ];
        let other_lib = [
            frame(
                "",
                "/venv/site-packages/django/base.py",
                "get_response",
                false,
            ),
            frame("", "/app/views.py", "checkout", true),
        ];
        let a = group(&one("KeyError", "", &app_then_lib), "");
        let b = group(&one("KeyError", "", &other_lib), "");
        assert_eq!(
            kinds(&a),
            vec![VariantKind::InApp, VariantKind::Full, VariantKind::LegacyV1]
        );
        assert_eq!(a.fingerprint, hash_of(&a, VariantKind::InApp));
        assert_eq!(
            hash_of(&a, VariantKind::InApp),
            hash_of(&b, VariantKind::InApp)
        );
        assert_ne!(
            hash_of(&a, VariantKind::Full),
            hash_of(&b, VariantKind::Full)
        );
        assert_eq!(
            a.variants[1].components,
            vec!["type:KeyError", "app.py:dispatch", "views.py:checkout"]
        );
        // The app code changed but the whole stack is the same: the full key still matches.
        let renamed = [
            frame("", "/venv/site-packages/flask/app.py", "dispatch", false),
            frame("", "/app/views.py", "checkout", false),
        ];
        let c = group(&one("KeyError", "", &renamed), "");
        assert_ne!(c.fingerprint, a.fingerprint);
        assert_eq!(
            hash_of(&c, VariantKind::Full),
            hash_of(&a, VariantKind::Full)
        );
        // No in-app frame at all: the in-app key is built from every frame.
        assert_eq!(c.variants[0].components, c.variants[1].components);
        assert_eq!(c.variants[0].source, GroupingSource::Stacktrace);
    }

    #[test]
    fn chains_all_contribute_and_synthetic_drops_the_type() {
        let inner = [frame("", "/app/db.py", "load", true)];
        let outer = [frame("", "/app/views.py", "show", true)];
        let chain = [
            ExceptionPart {
                r#type: "KeyError",
                value: "'k'",
                frames: &inner,
                synthetic: false,
            },
            ExceptionPart {
                r#type: "LookupError",
                value: "k",
                frames: &outer,
                synthetic: false,
            },
        ];
        let g = group(&chain, "python");
        assert_eq!(
            g.components,
            vec![
                "type:KeyError",
                "db.py:load",
                "type:LookupError",
                "views.py:show"
            ]
        );
        let alone = group(&chain[1..], "python");
        assert_ne!(
            g.fingerprint, alone.fingerprint,
            "the cause is part of the key"
        );
        // The legacy key only ever saw the main exception.
        assert_eq!(
            hash_of(&g, VariantKind::LegacyV1),
            hash_of(&alone, VariantKind::LegacyV1)
        );
        // A cause without frames contributes its (normalised) value.
        let bare = [
            ExceptionPart {
                r#type: "OSError",
                value: "fd 12 closed",
                frames: &[],
                synthetic: false,
            },
            chain[1],
        ];
        assert_eq!(
            group(&bare, "").components,
            vec![
                "type:OSError",
                "message:fd <num> closed",
                "type:LookupError",
                "views.py:show"
            ]
        );

        let sig = |ty| {
            [ExceptionPart {
                r#type: ty,
                value: "",
                frames: &outer,
                synthetic: true,
            }]
        };
        let s1 = group(&sig("SIGSEGV"), "");
        assert_eq!(s1.components, vec!["views.py:show"]);
        assert_eq!(s1.fingerprint, group(&sig("SIGBUS"), "").fingerprint);
        assert_ne!(
            s1.fingerprint,
            group(&one("SIGSEGV", "", &outer), "").fingerprint
        );
    }

    #[test]
    fn value_counts_only_without_frames() {
        let f = [frame("", "/app/a.py", "f", true)];
        assert_eq!(
            group(&one("E", "id 1", &f), "").fingerprint,
            group(&one("E", "completely different", &f), "").fingerprint
        );
        let a = group(&one("E", "User 12 not found", &[]), "");
        let b = group(&one("E", "User 9 not found", &[]), "");
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(a.components, vec!["type:E", "message:User <num> not found"]);
        assert_eq!(a.source, GroupingSource::ExceptionMessage);
        let m = compute(&EventInput {
            message: "Disk 3 full",
            ..EventInput::default()
        });
        assert_eq!(m.components, vec!["message:Disk <num> full"]);
        assert_eq!(m.source, GroupingSource::Message);
        assert_eq!(m.version, GROUPING_VERSION);
        assert_eq!(m.fingerprint.len(), 32);
    }

    #[test]
    fn client_fingerprint_and_templates() {
        let frames = [
            frame("", "/venv/site-packages/lib.py", "call", false),
            frame("shop.cart", "/app/shop/cart.py", "add_item", true),
        ];
        let ex = one("KeyError", "'sku'", &frames);
        let mut tags = BTreeMap::new();
        tags.insert("tenant".to_string(), "acme".to_string());
        let with = |fp: &[&str]| {
            let fp: Vec<String> = fp.iter().map(|s| s.to_string()).collect();
            compute(&EventInput {
                exceptions: &ex,
                client_fingerprint: &fp,
                transaction: "/cart/add",
                level: "error",
                tags: Some(&tags),
                ..EventInput::default()
            })
        };
        let plain = group(&ex, "");

        let g = with(&[
            "checkout",
            "{{ type }}",
            "{{function}}",
            "{{ module }}",
            "{{ transaction }}",
            "{{ level }}",
            "{{ tags.tenant }}",
            "{{ tags.missing }}",
            "{{ nope }}",
        ]);
        assert_eq!(
            kinds(&g),
            vec![VariantKind::ClientFingerprint, VariantKind::LegacyV1]
        );
        assert_eq!(g.source, GroupingSource::ClientFingerprint);
        assert_eq!(
            g.components,
            vec![
                "checkout",
                "KeyError",
                "add_item",
                "shop.cart",
                "/cart/add",
                "error",
                "acme",
                "<no-value-for-tag-missing>",
                "{{ nope }}"
            ]
        );
        let none = compute(&EventInput {
            message: "m",
            client_fingerprint: &[
                "{{ type }}".into(),
                "{{ function }}".into(),
                "{{ transaction }}".into(),
            ],
            ..EventInput::default()
        });
        assert_eq!(
            none.components,
            vec!["<no-type>", "<no-function>", "<no-transaction>"]
        );

        // {{ default }} salts both default keys; alone it is the default key.
        let d = with(&["{{ default }}", "tenant-a"]);
        assert_eq!(
            kinds(&d),
            vec![VariantKind::InApp, VariantKind::Full, VariantKind::LegacyV1]
        );
        let mut want = plain.components.clone();
        want.push("tenant-a".into());
        assert_eq!(d.components, want);
        assert_ne!(
            d.fingerprint,
            with(&["{{ default }}", "tenant-b"]).fingerprint
        );
        let only = with(&["{{default}}"]);
        assert_eq!(only.fingerprint, plain.fingerprint);
        assert_eq!(
            hash_of(&only, VariantKind::Full),
            hash_of(&plain, VariantKind::Full)
        );
        // The legacy key is what version 1 computed for the same fingerprint.
        assert_eq!(hash_of(&d, VariantKind::LegacyV1).len(), 32);
        assert_ne!(
            hash_of(&d, VariantKind::LegacyV1),
            hash_of(&plain, VariantKind::LegacyV1)
        );
    }

    #[test]
    fn legacy_variant_is_version_1() {
        let frames = [frame("", "/app/views.py", "checkout", true)];
        let g = group(&one("ValueError", "bad 1", &frames), "");
        let v1 = fingerprint::compute(&V1Input {
            exception_type: "ValueError",
            message: "bad 1",
            frames: &frames,
            client_fingerprint: &[],
            normalized_message: None,
        });
        let legacy = g.variants.last().expect("legacy");
        assert_eq!(legacy.kind, VariantKind::LegacyV1);
        assert_eq!(legacy.version, 1);
        assert_eq!(legacy.hash, v1.fingerprint);
        assert_eq!(legacy.components, v1.components);
        assert_ne!(g.fingerprint, v1.fingerprint, "versions never share a hash");

        // Without frames the legacy key reuses the value normalised for the version 2 keys.
        let v1_of = |ty: &str, message: &str| {
            fingerprint::compute(&V1Input {
                exception_type: ty,
                message,
                ..V1Input::default()
            })
            .fingerprint
        };
        let m = compute(&EventInput {
            message: "User 42 not found",
            ..EventInput::default()
        });
        assert_eq!(m.variants[2].hash, v1_of("", "User 42 not found"));
        let e = group(&one("KeyError", "'sku' 7", &[]), "");
        assert_eq!(e.variants[2].hash, v1_of("KeyError", "'sku' 7"));
    }

    #[test]
    fn hostile_input_does_not_panic() {
        let frames = [
            frame("$$$", "?#?", "🚀🚀 +0x", true),
            frame("$1$2", "////", "((((", true),
            frame("", "日本/語.rb", "block (", true),
            frame(
                &"é".repeat(10_000),
                &"é".repeat(10_000),
                &"(".repeat(10_000),
                true,
            ),
        ];
        let g = group(&one("型", "メッセージ 1", &frames), "");
        assert_eq!(g.fingerprint.len(), 32);
        assert!(
            g.components
                .iter()
                .all(|c| c.chars().count() <= 2 * MAX_PART_CHARS + 8)
        );
    }

    /// Every key of a set of varied events, as computed when this test was written: a change
    /// to how keys are made must not move existing events to new groups unnoticed.
    #[test]
    fn keys_stay_as_they_were() {
        use crate::domain::grouping::stacktrace::parse;
        let python = parse(
            "Traceback (most recent call last):\n  File \"/usr/lib/python3.12/site-packages/django/core/handlers/base.py\", line 55, in inner\n    response = get_response(request)\n  File \"/srv/app/views.py\", line 12, in checkout\n    total = compute(cart)\n  File \"/srv/app/views.py\", line 12, in checkout\n    total = compute(cart)\n  File \"/srv/app/billing.py\", line 40, in compute\n    return sum(x.price for x in cart) / n\nZeroDivisionError: division by zero",
        );
        let js = parse(
            "TypeError: Cannot read properties of undefined (reading 'id')\n    at Object.<anonymous> (/srv/web/node_modules/express/lib/router.js:10:5)\n    at async renderCart [as render] (/srv/web/src/cart.js:42:13)\n    at new Handler (/srv/web/src/server.js:99:12)",
        );
        let java = parse(
            "java.lang.IllegalStateException: closed\n\tat com.shop.Cart$$Lambda$14/0x0000000800c02a00.apply(Unknown Source)\n\tat com.shop.Cart$1.run(Cart.java:31)\n\tat com.shop.Main.lambda$main$0(Main.java:12)",
        );
        let long = [frame("", "/app/x.py", &"f".repeat(300), true)];
        let chain = [
            ExceptionPart {
                r#type: "KeyError",
                value: "'sku-1234'",
                frames: &python.frames,
                synthetic: false,
            },
            ExceptionPart {
                r#type: "RuntimeError",
                value: "order 77 failed",
                frames: &js.frames,
                synthetic: true,
            },
        ];
        let fp = |parts: &'static [&'static str]| -> Vec<String> {
            parts.iter().map(|p| (*p).to_owned()).collect()
        };
        let templated = fp(&["{{ default }}", "checkout"]);
        let custom = fp(&["payments", "{{ transaction }}"]);
        let py = one("ZeroDivisionError", "division by zero", &python.frames);
        let js1 = one("TypeError", "Cannot read 'id' of 42", &js.frames);
        let java1 = one("IllegalStateException", "closed", &java.frames);
        let long1 = one("E", "", &long);
        let py_x = one("ZeroDivisionError", "x", &python.frames);
        let cases: Vec<(&str, EventInput<'_>)> = vec![
            (
                "python",
                EventInput {
                    exceptions: &py,
                    platform: "python",
                    ..EventInput::default()
                },
            ),
            (
                "js",
                EventInput {
                    exceptions: &js1,
                    platform: "",
                    ..EventInput::default()
                },
            ),
            (
                "java",
                EventInput {
                    exceptions: &java1,
                    platform: "java",
                    ..EventInput::default()
                },
            ),
            (
                "long function",
                EventInput {
                    exceptions: &long1,
                    ..EventInput::default()
                },
            ),
            (
                "chain",
                EventInput {
                    exceptions: &chain,
                    ..EventInput::default()
                },
            ),
            (
                "message",
                EventInput {
                    message: "user 4455 not found after 120 ms",
                    ..EventInput::default()
                },
            ),
            (
                "templated",
                EventInput {
                    exceptions: &py_x,
                    client_fingerprint: &templated,
                    ..EventInput::default()
                },
            ),
            (
                "custom",
                EventInput {
                    exceptions: &py_x,
                    client_fingerprint: &custom,
                    transaction: "/cart",
                    ..EventInput::default()
                },
            ),
        ];
        let got: Vec<String> = cases
            .iter()
            .map(|(name, input)| {
                let g = compute(input);
                let hashes: Vec<String> = g
                    .variants
                    .iter()
                    .map(|v| format!("{:?}={}", v.kind, v.hash))
                    .collect();
                format!("{name}: {}", hashes.join(" "))
            })
            .collect();
        let expected = [
            "python: InApp=d82483ff4aeca80f646f2e6e23840b28 Full=68058f66bcea6e1a8bd49e371dc26059 LegacyV1=7a4219669354cb846e61d13670f6bb52",
            "js: InApp=6dcb37fd5d34b6637a79ec19afc999f2 Full=69e1616d30ed72ca7c8990913ed7fd00 LegacyV1=51ffae73bcca6089c072d79627aa875c",
            "java: InApp=c4d0245d1388902100151f7efebec6ec Full=c4d0245d1388902100151f7efebec6ec LegacyV1=6fbdbb15e6dc7202ebb9e7b42970175b",
            "long function: InApp=797ba5ad46e090ed8d4f0a9c96ac6d49 Full=797ba5ad46e090ed8d4f0a9c96ac6d49 LegacyV1=7be7bd42393eb379be97903182ce5615",
            "chain: InApp=2fc95bacee54b12fb37c2790225e689a Full=8c152fcc905a38934ffd4bb1e4d95542 LegacyV1=38401d4f251f7998d15c5e977c783c56",
            "message: InApp=6b45161a444cc065acb9e39500d73206 Full=6b45161a444cc065acb9e39500d73206 LegacyV1=9af9eb3bb8fcfa2579fc974947b5dcf7",
            "templated: InApp=d89208b5091fe0497a3b7abf418bd47b Full=50e1d9a64b52890cc56ea6a829a65cad LegacyV1=fcc6da23a3138685afeed810f9792f84",
            "custom: ClientFingerprint=7c23e203f34b73d3eb60ea069c86dcb1 LegacyV1=0cdb2e73295a1cb210eb7dcedaa5c7e7",
        ];
        assert_eq!(got, expected, "{got:#?}");
    }
}
