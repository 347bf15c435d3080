//! The vocabulary of Faultline, free of I/O: levels, statuses, events as they enter,
//! the grouping algorithm, query filters and cursors. Everything here is pure and
//! unit-tested; `ingest`, `store` and `grpc` build on it.

pub mod activity;
pub mod alerts;
pub mod cursor;
pub mod event;
pub mod export;
pub mod feedback;
pub mod filter;
pub mod grouping;
pub mod inbound;
pub mod insights;
pub mod model;
pub mod policy;
pub mod release;
pub mod sourcemap;
pub mod workflow;

pub use event::{ExceptionData, Frame, GroupStatus, Level, NewEvent};

/// Bytes as text, as `String::from_utf8_lossy` makes it: invalid sequences become U+FFFD.
/// Valid UTF-8, which is nearly every body, is checked by `str::from_utf8` first: it reads
/// ASCII a word at a time, where the lossy decoder goes byte by byte (about 20 000
/// instructions for a 3 KB capture body, measured with callgrind).
pub fn text_from_bytes(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// JSON text with every escaped lone surrogate (`\ud83d` without its low half, or a low half
/// alone) replaced by `\ufffd`; `None` when it has none. JavaScript strings may hold lone
/// surrogates (an SDK that cuts a long message inside an emoji makes one) and
/// `JSON.stringify` writes them as such escapes, which strict JSON parsers, serde_json among
/// them, refuse: the whole event would be refused for one cut character.
pub fn json_without_lone_surrogates(text: &[u8]) -> Option<Vec<u8>> {
    fn hex4(b: &[u8]) -> Option<u32> {
        let digits = std::str::from_utf8(b.get(..4)?).ok()?;
        u32::from_str_radix(digits, 16).ok()
    }
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut i = 0;
    // In valid JSON a backslash only occurs in strings, where it starts an escape. A body
    // that ends in a backslash leaves `i` past its end: nothing more to look at.
    while let Some(p) = text
        .get(i..)
        .and_then(|rest| rest.iter().position(|&c| c == b'\\'))
    {
        let at = i + p;
        if text.get(at + 1) != Some(&b'u') {
            i = at + 2;
            continue;
        }
        let Some(unit) = hex4(&text[at + 2..]) else {
            i = at + 2;
            continue;
        };
        i = at + 6;
        let low_follows = || {
            text.get(at + 6..at + 8) == Some(b"\\u")
                && hex4(&text[at + 8..]).is_some_and(|u| (0xDC00..0xE000).contains(&u))
        };
        match unit {
            0xD800..0xDC00 if low_follows() => i = at + 12,
            0xD800..0xE000 => {
                let o = out.get_or_insert_with(|| Vec::with_capacity(text.len()));
                o.extend_from_slice(&text[copied..at]);
                o.extend_from_slice(b"\\ufffd");
                copied = at + 6;
            }
            _ => {}
        }
    }
    let mut out = out?;
    out.extend_from_slice(&text[copied..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn lone_surrogates_become_replacement_characters() {
        let fix = |s: &str| {
            super::json_without_lone_surrogates(s.as_bytes()).map(|v| String::from_utf8(v).unwrap())
        };
        assert_eq!(
            fix(r#"{"m":"cut \ud83d"}"#).as_deref(),
            Some(r#"{"m":"cut \ufffd"}"#)
        );
        assert_eq!(
            fix(r#"{"m":"\ude00 x \ud83dy"}"#).as_deref(),
            Some(r#"{"m":"\ufffd x \ufffdy"}"#)
        );
        // A high half followed by another high half: both are lone.
        assert_eq!(
            fix(r#"["\uD83D\uD83D\ude00"]"#).as_deref(),
            Some(r#"["\ufffd\uD83D\ude00"]"#)
        );
        // Pairs, other escapes and an escaped backslash before "ud83d" are left alone.
        assert_eq!(fix(r#"{"m":"\ud83d\ude00 \u00e9 \\ud83d \n"}"#), None);
        assert_eq!(fix("{}"), None);
        // The result parses, and reads as U+FFFD.
        let v: String =
            serde_json::from_slice(&super::json_without_lone_surrogates(br#""a\udc00b""#).unwrap())
                .unwrap();
        assert_eq!(v, "a\u{fffd}b");
    }

    /// Cut-off bodies: a backslash as the last byte, or an escape cut inside its digits, is
    /// left for the JSON parser to refuse. The scan used to index past the end and panic,
    /// which dropped the client's connection without an answer.
    #[test]
    fn bodies_cut_inside_an_escape_are_left_alone() {
        let fix = super::json_without_lone_surrogates;
        for cut in [
            &b"\\"[..],
            b"{\"m\":\"x\\",
            b"{\"m\":\"x\\u",
            b"{\"m\":\"x\\ud8",
        ] {
            assert_eq!(fix(cut), None, "{:?}", String::from_utf8_lossy(cut));
        }
        // A high half whose low half is cut off is lone, and replaced; the cut stays.
        for (cut, fixed) in [
            (&b"\"\\ud83d\\"[..], &b"\"\\ufffd\\"[..]),
            (b"\"\\ud83d\\ude", b"\"\\ufffd\\ude"),
            (b"\"\\ud83dx\\", b"\"\\ufffdx\\"),
        ] {
            assert_eq!(
                fix(cut).as_deref(),
                Some(fixed),
                "{:?}",
                String::from_utf8_lossy(cut)
            );
        }
    }

    #[test]
    fn text_from_bytes_keeps_valid_text_and_replaces_invalid_sequences() {
        assert_eq!(
            super::text_from_bytes("héllo {\"a\":1}".as_bytes()),
            "héllo {\"a\":1}"
        );
        assert_eq!(
            super::text_from_bytes(b"ab\xffcd\xe2\x82"),
            "ab\u{fffd}cd\u{fffd}"
        );
        assert_eq!(super::text_from_bytes(b""), "");
    }
}
