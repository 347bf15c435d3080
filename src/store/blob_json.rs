//! The JSON of a blob's exception and grouping (`store::blob`), written by hand: byte for
//! byte what `serde_json` writes for the same values, so blobs and their readers are as
//! before, with a string escaper that compares sixteen bytes at a time where none needs
//! escaping. `serde_json` looks up every byte of every string on its own; for the stack trace
//! text and the grouping components that was a tenth of the request workers' instructions per
//! captured event (callgrind, BENCHMARKS.md session 21).
//!
//! Each writer takes its value apart field by field, so a field added to `ExceptionData`,
//! `Frame` or `GroupingVariant` fails to compile here until it is written too; the tests
//! compare every writer with `serde_json`.

use crate::domain::{
    ExceptionData, Frame,
    grouping::{GroupingSource, GroupingVariant},
};

/// A JSON string: quotes, and inside them `s` escaped as `serde_json` escapes it (`\"`, `\\`,
/// `\b`, `\f`, `\n`, `\r`, `\t`, other control characters as `\u00xx`; nothing else).
pub(super) fn string(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // `bytes[start..i]` needs no escaping and is not written yet.
    let mut start = 0;
    let mut i = 0;
    while let Some(chunk) = bytes.get(i..i + CHUNK) {
        match first_to_escape(chunk.try_into().expect("a whole chunk")) {
            None => i += CHUNK,
            Some(k) => {
                let at = i + k;
                out.extend_from_slice(&bytes[start..at]);
                escape(out, bytes[at]);
                start = at + 1;
                i = at + 1;
            }
        }
    }
    for (at, &b) in bytes.iter().enumerate().skip(i) {
        if to_escape(b) {
            out.extend_from_slice(&bytes[start..at]);
            escape(out, b);
            start = at + 1;
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Bytes looked at together.
const CHUNK: usize = 16;

/// A control character, a quote or a backslash.
fn to_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Where in `chunk` the first byte to escape is, 16 bytes compared at once (SSE2, which every
/// x86-64 processor has).
#[cfg(target_arch = "x86_64")]
fn first_to_escape(chunk: &[u8; CHUNK]) -> Option<usize> {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of the x86-64 baseline, so the intrinsics are always available;
    // the unaligned load reads exactly the 16 bytes of `chunk`.
    let found = unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast());
        let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        // Unsigned: a byte is below 0x20 when the smaller of it and 0x1f is itself.
        let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control))
    };
    (found != 0).then(|| found.trailing_zeros() as usize)
}

#[cfg(not(target_arch = "x86_64"))]
fn first_to_escape(chunk: &[u8; CHUNK]) -> Option<usize> {
    chunk.iter().position(|&b| to_escape(b))
}

/// Writes the escape of `b`, a control character, a quote or a backslash.
fn escape(out: &mut Vec<u8>, b: u8) {
    let short = match b {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x0c => b'f',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        _ => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.extend_from_slice(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
            return;
        }
    };
    out.extend_from_slice(&[b'\\', short]);
}

fn number(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// A JSON array of `items`, each written by `item`.
fn list<T>(out: &mut Vec<u8>, items: &[T], item: impl Fn(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        item(out, x);
    }
    out.push(b']');
}

fn strings(out: &mut Vec<u8>, items: &[String]) {
    list(out, items, |out, s| string(out, s));
}

/// `ExceptionData` as its `Serialize` derive writes it.
pub(super) fn exception(out: &mut Vec<u8>, e: &ExceptionData) {
    let ExceptionData {
        r#type,
        value,
        module,
        frames,
        raw_stacktrace,
        frames_from_text: _,
        mechanism,
        synthetic,
        chained,
    } = e;
    out.extend_from_slice(b"{\"type\":");
    string(out, r#type);
    out.extend_from_slice(b",\"value\":");
    string(out, value);
    out.extend_from_slice(b",\"module\":");
    string(out, module);
    out.extend_from_slice(b",\"frames\":");
    list(out, frames, frame);
    out.extend_from_slice(b",\"raw_stacktrace\":");
    string(out, raw_stacktrace);
    if !mechanism.is_empty() {
        out.extend_from_slice(b",\"mechanism\":");
        string(out, mechanism);
    }
    if *synthetic {
        out.extend_from_slice(b",\"synthetic\":true");
    }
    if !chained.is_empty() {
        out.extend_from_slice(b",\"chained\":");
        list(out, chained, exception);
    }
    out.push(b'}');
}

/// `Frame` as its `Serialize` derive writes it: empty, zero and unknown fields left out.
fn frame(out: &mut Vec<u8>, f: &Frame) {
    let Frame {
        filename,
        function,
        module,
        lineno,
        colno,
        in_app,
        context_line,
        minified,
    } = f;
    let mut first = true;
    let mut key = |out: &mut Vec<u8>, name: &str| {
        out.extend_from_slice(if first { b"{\"" } else { b",\"" });
        first = false;
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
    };
    for (name, text) in [
        ("filename", filename),
        ("function", function),
        ("module", module),
    ] {
        if !text.is_empty() {
            key(out, name);
            string(out, text);
        }
    }
    for (name, n) in [("lineno", *lineno), ("colno", *colno)] {
        if n != 0 {
            key(out, name);
            number(out, n);
        }
    }
    if let Some(in_app) = in_app {
        key(out, "in_app");
        out.extend_from_slice(if *in_app { b"true" } else { b"false" });
    }
    if !context_line.is_empty() {
        key(out, "context_line");
        string(out, context_line);
    }
    if let Some(m) = minified {
        key(out, "minified");
        frame(out, m);
    }
    if first {
        out.push(b'{');
    }
    out.push(b'}');
}

/// The stored grouping (`blob::StoredGrouping`) as its `Serialize` derive writes it.
pub(super) fn grouping(
    out: &mut Vec<u8>,
    version: u32,
    source: GroupingSource,
    components: Option<&[String]>,
    fingerprint: &str,
    variants: &[GroupingVariant],
) {
    out.extend_from_slice(b"{\"version\":");
    number(out, version);
    out.extend_from_slice(b",\"source\":");
    string(out, source.as_str());
    if let Some(components) = components {
        out.extend_from_slice(b",\"components\":");
        strings(out, components);
    }
    out.extend_from_slice(b",\"fingerprint\":");
    string(out, fingerprint);
    if !variants.is_empty() {
        out.extend_from_slice(b",\"variants\":");
        list(out, variants, variant);
    }
    out.push(b'}');
}

/// `GroupingVariant` as its `Serialize` derive writes it (`matches_group` is never stored).
fn variant(out: &mut Vec<u8>, v: &GroupingVariant) {
    let GroupingVariant {
        kind,
        version,
        source,
        components,
        hash,
        matches_group: _,
    } = v;
    out.extend_from_slice(b"{\"kind\":");
    string(out, kind.as_str());
    out.extend_from_slice(b",\"version\":");
    number(out, *version);
    out.extend_from_slice(b",\"source\":");
    string(out, source.as_str());
    out.extend_from_slice(b",\"components\":");
    strings(out, components);
    out.extend_from_slice(b",\"hash\":");
    string(out, hash);
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::grouping::VariantKind;

    fn ours(s: &str) -> String {
        let mut out = Vec::new();
        string(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        // Every character below 0x80 and some above, alone and at every offset in a word.
        let mut cases: Vec<String> = (0u8..0x80).map(|b| char::from(b).to_string()).collect();
        cases.extend(["é", "日本", "🦀", "\u{7f}", "\u{80}", "\u{2028}"].map(String::from));
        for pad in 0..17 {
            for c in (0u8..0x80).map(char::from).chain(['é', '"', '\\']) {
                cases.push(format!("{}{c}{}", "a".repeat(pad), "bé".repeat(pad)));
            }
        }
        cases.push(String::new());
        cases.push("Traceback (most recent call last):\n  File \"/srv/app.py\", line 3, in f\n    raise E(\"x\\y\")\r\n\tE: \u{1}\u{1f}\u{c}\u{8}".into());
        // Pseudo-random text from a fixed seed: long runs of every kind of byte.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2_000 {
            let mut s = String::new();
            for _ in 0..(x % 64) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                s.push(match x % 7 {
                    0 => char::from((x >> 8) as u8 % 0x20),
                    1 => '"',
                    2 => '\\',
                    3 => char::from_u32(0xa0 + (x >> 16) as u32 % 0x3000).unwrap_or('ü'),
                    _ => char::from(0x20 + (x >> 8) as u8 % 0x5f),
                });
            }
            cases.push(s);
        }
        for s in cases {
            assert_eq!(ours(&s), serde_json::to_string(&s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn the_first_byte_to_escape_is_found_in_every_position() {
        for b in 0u8..=255 {
            for at in 0..CHUNK {
                // Alone among plain bytes, and among bytes of 0x80 and above.
                for fill in [b'a', b' ', 0x7f, 0x80, 0xc3, 0xff] {
                    let mut chunk = [fill; CHUNK];
                    chunk[at] = b;
                    assert_eq!(
                        first_to_escape(&chunk),
                        to_escape(b).then_some(at),
                        "{b:#x} at {at} among {fill:#x}"
                    );
                }
                // With a quote after it: the first one is found.
                for after in at + 1..CHUNK {
                    let mut chunk = [b'a'; CHUNK];
                    chunk[at] = b;
                    chunk[after] = b'"';
                    let first = if to_escape(b) { at } else { after };
                    assert_eq!(first_to_escape(&chunk), Some(first), "{b:#x} at {at}");
                }
            }
        }
    }

    fn frame(function: &str, in_app: Option<bool>, lineno: u32) -> Frame {
        Frame {
            filename: "/srv/app/a \"b\".py".into(),
            function: function.into(),
            lineno,
            in_app,
            context_line: "x = f(\"y\")\t# é".into(),
            ..Frame::default()
        }
    }

    #[test]
    fn exceptions_are_written_as_serde_json_writes_them() {
        let cause = ExceptionData {
            r#type: "OSError".into(),
            value: "disk \"full\"\n".into(),
            frames: vec![
                frame("read", Some(true), 7),
                frame("open", None, 0),
                Frame::default(),
                Frame {
                    module: "m".into(),
                    colno: 3,
                    in_app: Some(false),
                    ..Frame::default()
                },
                // A frame a source map placed, with the frame as sent.
                Frame {
                    minified: Some(Box::new(frame("n", Some(true), 1))),
                    ..frame("add", Some(true), 3)
                },
            ],
            mechanism: "generic".into(),
            synthetic: true,
            frames_from_text: true,
            ..Default::default()
        };
        let cases = [
            ExceptionData::default(),
            ExceptionData {
                r#type: "ValueError".into(),
                value: "bad \\ value".into(),
                module: "app.views".into(),
                frames: vec![frame("f", Some(false), 12)],
                raw_stacktrace: "Traceback (most recent call last):\n  File \"x\"\nValueError: bad"
                    .into(),
                chained: vec![cause.clone(), ExceptionData::default()],
                ..Default::default()
            },
            cause,
        ];
        for e in cases {
            let mut out = Vec::new();
            exception(&mut out, &e);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&e).unwrap()
            );
        }
    }

    #[test]
    fn groupings_are_written_as_serde_json_writes_them() {
        #[derive(serde::Serialize)]
        struct Stored<'a> {
            version: u32,
            source: GroupingSource,
            #[serde(skip_serializing_if = "Option::is_none")]
            components: Option<&'a [String]>,
            fingerprint: &'a str,
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            variants: &'a [GroupingVariant],
        }
        let variants = [
            GroupingVariant {
                kind: VariantKind::InApp,
                version: 2,
                source: GroupingSource::Stacktrace,
                components: vec!["type:E".into(), "a.py:f | raise E(\"x\")".into()],
                hash: "aa".into(),
                matches_group: true,
            },
            GroupingVariant {
                kind: VariantKind::LegacyV1,
                version: 1,
                source: GroupingSource::ExceptionMessage,
                components: Vec::new(),
                hash: "bb".into(),
                matches_group: false,
            },
            GroupingVariant {
                kind: VariantKind::ClientFingerprint,
                version: 2,
                source: GroupingSource::ClientFingerprint,
                components: vec!["{{ default }}".into()],
                hash: "cc".into(),
                matches_group: false,
            },
        ];
        let custom = ["custom\u{1}".to_owned()];
        for (source, components, variants) in [
            (GroupingSource::Stacktrace, None, &variants[..]),
            (GroupingSource::Message, Some(&custom[..]), &variants[1..2]),
            (GroupingSource::ExceptionMessage, Some(&[][..]), &[][..]),
        ] {
            let mut out = Vec::new();
            grouping(&mut out, 2, source, components, "ab\"c", variants);
            let expected = serde_json::to_string(&Stored {
                version: 2,
                source,
                components,
                fingerprint: "ab\"c",
                variants,
            })
            .unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }
}
