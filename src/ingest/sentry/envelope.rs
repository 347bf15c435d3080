//! Sentry envelope framing, pure: a JSON header line, then items, each a JSON header line
//! (`type`, optional `length`) and a payload. Payloads are slices of the request's `Bytes`,
//! never copies. Without `length` a payload runs to the next newline; CRLF line ends are
//! accepted. Any malformed input is an error, never a panic.

use bytes::Bytes;
use serde::Deserialize;

use crate::error::Error;

/// Most items one envelope may hold; SDKs send a handful.
pub const ITEMS_MAX: usize = 1000;

/// A parsed envelope.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub header: EnvelopeHeader,
    pub items: Vec<Item>,
}

/// The envelope header fields Faultline reads; everything else in it is ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EnvelopeHeader {
    /// Lenient: a malformed id is treated as absent rather than failing the envelope.
    #[serde(default, deserialize_with = "lenient_string")]
    pub event_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub dsn: Option<String>,
}

/// One item: its type and its payload.
#[derive(Debug, Clone)]
pub struct Item {
    pub ty: String,
    pub payload: Bytes,
}

#[derive(Deserialize)]
struct ItemHeader {
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    length: Option<u64>,
}

fn lenient_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    })
}

fn bad(message: impl Into<String>) -> Error {
    Error::malformed("envelope", message)
}

/// A header line: a JSON object (serde would also take an array for a struct).
fn object<T: serde::de::DeserializeOwned>(line: &[u8]) -> Result<T, String> {
    let first = line.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err("expected a JSON object".into());
    }
    serde_json::from_slice(line).map_err(|e| e.to_string())
}

/// Splits off the line starting at `pos`: returns its end (exclusive, without `\r\n`/`\n`)
/// and where the next line starts.
fn line(buf: &[u8], pos: usize) -> (usize, usize) {
    match buf[pos..].iter().position(|&b| b == b'\n') {
        Some(i) => {
            let nl = pos + i;
            let end = if nl > pos && buf[nl - 1] == b'\r' {
                nl - 1
            } else {
                nl
            };
            (end, nl + 1)
        }
        None => (buf.len(), buf.len()),
    }
}

/// Parses an envelope.
pub fn parse(body: Bytes) -> Result<Envelope, Error> {
    let buf: &[u8] = &body;
    if buf.iter().all(u8::is_ascii_whitespace) {
        return Err(bad("the body is empty; send a Sentry envelope"));
    }
    let (end, mut pos) = line(buf, 0);
    let header: EnvelopeHeader = object(&buf[..end])
        .map_err(|e| bad(format!("the header line is not a JSON object: {e}")))?;
    let mut items = Vec::new();
    while pos < buf.len() {
        let (end, next) = line(buf, pos);
        if end == pos {
            // Blank lines between items (or a trailing newline) carry nothing.
            pos = next;
            continue;
        }
        if items.len() >= ITEMS_MAX {
            return Err(bad(format!("at most {ITEMS_MAX} items per envelope")));
        }
        let item: ItemHeader = object(&buf[pos..end]).map_err(|e| {
            bad(format!(
                "item {} has no valid header (a JSON object with a \"type\"): {e}",
                items.len() + 1
            ))
        })?;
        pos = next;
        let payload = match item.length {
            Some(len) => {
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                if len > buf.len() - pos {
                    return Err(bad(format!(
                        "item {} ({}) declares {len} bytes but only {} follow: the envelope is truncated",
                        items.len() + 1,
                        item.ty,
                        buf.len() - pos
                    )));
                }
                let payload = body.slice(pos..pos + len);
                pos += len;
                // The payload may be followed by a line break before the next item header.
                if buf[pos..].starts_with(b"\r\n") {
                    pos += 2;
                } else if buf[pos..].starts_with(b"\n") {
                    pos += 1;
                }
                payload
            }
            None if pos >= buf.len() => Bytes::new(),
            None => {
                let (end, next) = line(buf, pos);
                let payload = body.slice(pos..end);
                pos = next;
                payload
            }
        };
        items.push(Item {
            ty: item.ty,
            payload,
        });
    }
    Ok(Envelope { header, items })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &[u8]) -> Result<Envelope, Error> {
        parse(Bytes::copy_from_slice(s))
    }

    #[test]
    fn multi_item_with_and_without_length() {
        let env = p(
            b"{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\",\"dsn\":\"https://k@h/1\"}\n\
{\"type\":\"attachment\",\"length\":10}\n\xef\xbb\xbfHello\r\n\n\
{\"type\":\"event\"}\n{\"message\":\"hi\"}\n\
{\"type\":\"session\",\"length\":2}\n{}",
        )
        .unwrap();
        assert_eq!(
            env.header.event_id.as_deref(),
            Some("9ec79c33ec9942ab8353589fcb2e04dc")
        );
        assert_eq!(env.header.dsn.as_deref(), Some("https://k@h/1"));
        let types: Vec<_> = env.items.iter().map(|i| i.ty.as_str()).collect();
        assert_eq!(types, ["attachment", "event", "session"]);
        assert_eq!(&env.items[0].payload[..], b"\xef\xbb\xbfHello\r\n");
        assert_eq!(&env.items[1].payload[..], b"{\"message\":\"hi\"}");
        assert_eq!(&env.items[2].payload[..], b"{}");
    }

    #[test]
    fn missing_length_runs_to_newline_or_end() {
        let env = p(b"{}\n{\"type\":\"event\"}\n{\"a\":1}").unwrap();
        assert_eq!(&env.items[0].payload[..], b"{\"a\":1}");
        let env = p(b"{}\n{\"type\":\"client_report\"}\n").unwrap();
        assert_eq!(env.items.len(), 1);
        assert!(env.items[0].payload.is_empty());
    }

    #[test]
    fn crlf_line_ends() {
        let env = p(b"{\"event_id\":\"x\"}\r\n{\"type\":\"event\"}\r\n{\"a\":1}\r\n{\"type\":\"log\",\"length\":3}\r\nabc\r\n").unwrap();
        assert_eq!(env.items.len(), 2);
        assert_eq!(&env.items[0].payload[..], b"{\"a\":1}");
        assert_eq!(&env.items[1].payload[..], b"abc");
    }

    #[test]
    fn unknown_items_are_kept_as_items() {
        let env = p(b"{}\n{\"type\":\"something_new\",\"foo\":1}\nxyz\n").unwrap();
        assert_eq!(env.items[0].ty, "something_new");
        assert_eq!(&env.items[0].payload[..], b"xyz");
    }

    #[test]
    fn header_only_envelope_is_valid() {
        let env = p(b"{}").unwrap();
        assert!(env.items.is_empty());
        assert!(env.header.event_id.is_none());
    }

    #[test]
    fn truncated_and_broken_input_is_an_error() {
        for input in [
            &b"{}\n{\"type\":\"event\",\"length\":100}\n{\"a\":1}"[..],
            b"{\"event_id\":",
            b"{}\n{\"type\":",
            b"{}\n{\"length\":3}\nabc",
            b"not json\n",
            b"",
            b"  \n",
            b"[1,2]\n",
        ] {
            let e = p(input).unwrap_err();
            assert!(matches!(e, Error::Malformed { .. }), "{input:?}: {e:?}");
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        // A small xorshift keeps the test deterministic without a dependency.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"{}[]\":,\n\r typelngth0123456789event\\\x00\xff";
        for i in 0..10_000 {
            let len = (next() % 200) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    if i % 2 == 0 {
                        r as u8
                    } else {
                        alphabet[(r % alphabet.len() as u64) as usize]
                    }
                })
                .collect();
            let _ = parse(Bytes::from(bytes));
        }
    }
}
