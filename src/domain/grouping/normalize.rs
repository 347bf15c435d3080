//! Message normalisation for grouping: masks the parts of a message that vary between
//! occurrences of the same bug (ids, numbers, addresses, timestamps, quoted values) so that
//! they land in one group, while the wording that identifies the bug is kept.

use std::net::Ipv6Addr;
use std::sync::LazyLock;

use regex::{Captures, Regex};

/// Only this many characters are looked at; the rest of a long message rarely changes the
/// bug it describes and would make grouping cost proportional to hostile input.
const MAX_INPUT_CHARS: usize = 4096;

/// Only the first lines name the problem; later ones tend to be dumps that vary per event.
const MAX_LINES: usize = 2;

static URL: LazyLock<Regex> = LazyLock::new(|| {
    // Trailing punctuation is excluded so "see https://x.io/a." keeps its full stop.
    Regex::new(r#"[A-Za-z][A-Za-z0-9+.\-]*://[^\s<>"'`]*[^\s<>"'`.,;:!?)\]}]"#)
        .expect("URL pattern compiles")
});

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
        .expect("email pattern compiles")
});

static UUID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
        .expect("UUID pattern compiles")
});

static DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}",
        r"(?:[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2})?(?:[.,][0-9]+)?(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?)?",
    ))
    .expect("date pattern compiles")
});

static TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:[.,][0-9]+)?(?:[Zz]|[+-][0-9]{2}:?[0-9]{2})?")
        .expect("time pattern compiles")
});

static IPV6: LazyLock<Regex> = LazyLock::new(|| {
    // A loose candidate; `Ipv6Addr` parsing decides whether it really is an address, which is
    // far more reliable than the usual page-long IPv6 regex.
    const ADDR: &str =
        r"(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f]{0,4})";
    Regex::new(&format!(
        r"\[(?P<br>{ADDR})\](?::[0-9]{{1,5}})?|(?P<bare>{ADDR})"
    ))
    .expect("IPv6 pattern compiles")
});

static IPV4: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?::[0-9]{1,5})?").expect("IPv4 pattern compiles")
});

static HEX_PREFIXED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"0[xX][0-9A-Fa-f]+").expect("hex pattern compiles"));

static HEX_BARE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[0-9A-Fa-f]{8,}").expect("hex run pattern compiles"));

static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    // The optional letters are a unit ("30.5s", "250ms", "5GB"); they are kept, the number is not.
    Regex::new(r"(?P<n>[0-9]+(?:\.[0-9]+)?)(?P<unit>[A-Za-z]{1,3})?")
        .expect("number pattern compiles")
});

/// Normalises a message for grouping: first two non-empty lines, variable parts masked with
/// `<url>`, `<email>`, `<uuid>`, `<date>`, `<ip>`, `<str>`, `<hex>` and `<num>`, whitespace
/// collapsed. Lines stay separated by `\n`.
pub fn normalize_message(msg: &str) -> String {
    let capped = match msg.char_indices().nth(MAX_INPUT_CHARS) {
        Some((at, _)) => &msg[..at],
        None => msg,
    };
    let head: Vec<&str> = capped
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(MAX_LINES)
        .collect();
    let mut s = head.join("\n");

    // Order matters: a longer construct must be masked before its parts (the digits of an IP
    // or a date would otherwise become separate `<num>`s and stop matching each other).
    s = replace_bounded(&s, &URL, "<url>", |_| true);
    s = replace_bounded(&s, &EMAIL, "<email>", |_| true);
    s = replace_bounded(&s, &UUID, "<uuid>", |_| true);
    s = replace_bounded(&s, &DATE, "<date>", |_| true);
    s = replace_bounded(&s, &TIME, "<date>", |_| true);
    s = replace_ipv6(&s);
    s = replace_bounded(&s, &IPV4, "<ip>", |_| true);
    s = replace_quoted(&s);
    s = replace_bounded(&s, &HEX_PREFIXED, "<hex>", |_| true);
    s = replace_bounded(&s, &HEX_BARE, "<hex>", |m| {
        // A digit rules out plain words ("acceded", "deadbeef"); a letter leaves all-digit
        // runs to the number rule, so "id 12345678" and "id 42" still group together.
        m.bytes().any(|b| b.is_ascii_digit()) && m.bytes().any(|b| b.is_ascii_alphabetic())
    });
    s = replace_numbers(&s);
    collapse_whitespace(&s)
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric()
}

fn char_before(s: &str, at: usize) -> Option<char> {
    s[..at].chars().next_back()
}

fn char_after(s: &str, at: usize) -> Option<char> {
    s[at..].chars().next()
}

/// Whether the span is not glued to letters or digits on either side: "user123" is an
/// identifier, not a number.
fn standalone(s: &str, start: usize, end: usize) -> bool {
    !char_before(s, start).is_some_and(is_word) && !char_after(s, end).is_some_and(is_word)
}

/// Replaces matches that stand alone and pass `accept`. The regex crate has no look-around,
/// so boundaries are checked here instead.
fn replace_bounded(
    s: &str,
    re: &Regex,
    placeholder: &str,
    accept: impl Fn(&str) -> bool,
) -> String {
    re.replace_all(s, |caps: &Captures<'_>| {
        let Some(m) = caps.get(0) else {
            return String::new();
        };
        if standalone(s, m.start(), m.end()) && accept(m.as_str()) {
            placeholder.to_string()
        } else {
            m.as_str().to_string()
        }
    })
    .into_owned()
}

fn replace_ipv6(s: &str) -> String {
    IPV6.replace_all(s, |caps: &Captures<'_>| {
        let Some(m) = caps.get(0) else {
            return String::new();
        };
        let addr = caps
            .name("br")
            .or_else(|| caps.name("bare"))
            .map_or("", |a| a.as_str());
        // Requiring a digit keeps "::" and hex-only words joined by colons (C++/Rust paths
        // such as "dead::beef") out.
        let is_ip = addr.parse::<Ipv6Addr>().is_ok() && addr.bytes().any(|b| b.is_ascii_digit());
        let bounded = !char_before(s, m.start())
            .is_some_and(|c| is_word(c) || c == ':' || c == '.')
            && !char_after(s, m.end()).is_some_and(|c| is_word(c) || c == ':' || c == '.');
        if is_ip && bounded {
            "<ip>".to_string()
        } else {
            m.as_str().to_string()
        }
    })
    .into_owned()
}

/// Masks '…', "…" and `…` (and Ruby's `…') on one line. An opening quote must not follow a
/// letter and a closing one must not precede one, so apostrophes ("can't", "users'") are not
/// taken for quotes.
fn replace_quoted(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let opens = matches!(c, '\'' | '"' | '`') && !(i > 0 && is_word(chars[i - 1]));
        if opens && let Some(close) = find_closing_quote(&chars, i) {
            out.push_str("<str>");
            i = close + 1;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

fn find_closing_quote(chars: &[char], open: usize) -> Option<usize> {
    let q = chars[open];
    let mut j = open + 1;
    while j < chars.len() {
        let c = chars[j];
        if c == '\n' {
            return None;
        }
        let closes = c == q || (q == '`' && c == '\'');
        if closes && !chars.get(j + 1).is_some_and(|&n| is_word(n)) {
            return Some(j);
        }
        j += 1;
    }
    None
}

fn replace_numbers(s: &str) -> String {
    NUMBER
        .replace_all(s, |caps: &Captures<'_>| {
            let Some(m) = caps.get(0) else {
                return String::new();
            };
            let unit = caps.name("unit").map_or("", |u| u.as_str());
            let before = char_before(s, m.start());
            // After `#` or `=` a number is an id or a value ("#42", "retries=3x") whatever
            // follows it.
            let after_marker = matches!(before, Some('#' | '='));
            let free = !before.is_some_and(is_word) && !char_after(s, m.end()).is_some_and(is_word);
            if after_marker || free {
                format!("<num>{unit}")
            } else {
                m.as_str().to_string()
            }
        })
        .into_owned()
}

/// Collapses whitespace runs within each line to one space; the line break between the two
/// kept lines stays, as it separates two distinct statements.
fn collapse_whitespace(s: &str) -> String {
    s.split('\n')
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: &str, b: &str) {
        assert_eq!(normalize_message(a), normalize_message(b), "{a:?} vs {b:?}");
    }

    fn differ(a: &str, b: &str) {
        assert_ne!(normalize_message(a), normalize_message(b), "{a:?} vs {b:?}");
    }

    #[test]
    fn numbers_are_masked() {
        same("User 123 not found", "User 98765 not found");
        assert_eq!(
            normalize_message("User 123 not found"),
            "User <num> not found"
        );
    }

    #[test]
    fn durations_and_ip_with_port() {
        same(
            "Timeout after 30.5s connecting to 10.0.0.1:5432",
            "Timeout after 2s connecting to 192.168.1.20:5432",
        );
        assert_eq!(
            normalize_message("Timeout after 30.5s connecting to 10.0.0.1:5432"),
            "Timeout after <num>s connecting to <ip>"
        );
    }

    #[test]
    fn emails() {
        same("Invalid email bob@example.com", "Invalid email alice@x.org");
        assert_eq!(
            normalize_message("Invalid email bob@example.com"),
            "Invalid email <email>"
        );
    }

    #[test]
    fn uuids() {
        same(
            "Order 550e8400-e29b-41d4-a716-446655440000 failed",
            "Order 123e4567-E89B-12D3-A456-426614174000 failed",
        );
        assert_eq!(
            normalize_message("Order 550e8400-e29b-41d4-a716-446655440000 failed"),
            "Order <uuid> failed"
        );
    }

    #[test]
    fn quoted_strings() {
        same("KeyError: 'user_id'", "KeyError: 'email'");
        assert_eq!(normalize_message("KeyError: 'user_id'"), "KeyError: <str>");
        same(r#"no such table "users""#, r#"no such table "orders""#);
        same(
            "undefined method `save' for nil",
            "undefined method `destroy' for nil",
        );
        assert_eq!(
            normalize_message("can't find user's file"),
            "can't find user's file"
        );
        assert_eq!(normalize_message("can't open 'a.txt'"), "can't open <str>");
    }

    #[test]
    fn urls() {
        same(
            "Fetch https://a.com/x?id=1 failed",
            "Fetch http://b.org/y failed",
        );
        assert_eq!(
            normalize_message("Fetch https://a.com/x?id=1 failed"),
            "Fetch <url> failed"
        );
        assert_eq!(normalize_message("see https://a.com/x."), "see <url>.");
    }

    #[test]
    fn different_messages_stay_different() {
        differ("Database connection failed", "Cache connection failed");
        differ("User 1 not found", "Order 1 not found");
    }

    #[test]
    fn dates_and_times() {
        for d in [
            "2024-01-05",
            "2024-01-05T10:11:12Z",
            "2024-01-05 10:11:12.123+02:00",
            "2024-01-05T10:11:12.5-0700",
            "10:11:12",
        ] {
            assert_eq!(
                normalize_message(&format!("at {d} job failed")),
                "at <date> job failed",
                "{d}"
            );
        }
    }

    #[test]
    fn ipv6() {
        same(
            "connect to fe80::1 refused",
            "connect to 2001:db8:85a3::8a2e:370:7334 refused",
        );
        assert_eq!(
            normalize_message("connect to [::1]:8080 refused"),
            "connect to <ip> refused"
        );
        assert_eq!(
            normalize_message("std::io::Error in dead::beef"),
            "std::io::Error in dead::beef"
        );
    }

    #[test]
    fn hex() {
        same("bad pointer 0x7ffe1234", "bad pointer 0x1f");
        same("commit 7f3a9c2e not found", "commit 3b18e512dbf4 not found");
        assert_eq!(
            normalize_message("commit 7f3a9c2e missing"),
            "commit <hex> missing"
        );
        // No digit: a word, not a hash.
        assert_eq!(normalize_message("deadbeefcafe"), "deadbeefcafe");
    }

    #[test]
    fn numbers_inside_identifiers_are_kept() {
        assert_eq!(
            normalize_message("user123 has v2 of s3"),
            "user123 has v2 of s3"
        );
        assert_eq!(
            normalize_message("issue #42 id=7 n: -3"),
            "issue #<num> id=<num> n: -<num>"
        );
        same("row id=5abc broken", "row id=77abc broken");
    }

    #[test]
    fn only_first_two_nonempty_lines_and_whitespace_collapsed() {
        let m = "\n\n  first   line\t here \n\n second line \nthird line 1\n";
        assert_eq!(normalize_message(m), "first line here\nsecond line");
        same("a\nb\nc 1", "a\nb\nd 2");
    }

    #[test]
    fn hostile_input_does_not_panic() {
        assert_eq!(normalize_message(""), "");
        assert_eq!(normalize_message("   \n \t "), "");
        let s = normalize_message("Ошибка: пользователь 42 «не найден» 🚀 '日本' ✓1");
        assert_eq!(s, "Ошибка: пользователь <num> «не найден» 🚀 <str> ✓<num>");
        let huge = "é1'\"`:.0x".repeat(200_000);
        let out = normalize_message(&huge);
        assert!(out.chars().count() <= MAX_INPUT_CHARS * 5);
        let quotes = "'".repeat(10_000);
        let _ = normalize_message(&quotes);
        let digits = "9".repeat(100_000);
        assert_eq!(normalize_message(&digits), "<num>");
    }
}
