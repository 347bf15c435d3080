//! Sentry SDK compatibility: what an unchanged Sentry SDK sends (envelopes or legacy store
//! events, possibly compressed) turned into Faultline captures. Pure: the gRPC handler
//! (`grpc::sentry`) authenticates, calls [`unpack`], and submits the events to the queue.

pub mod auth;
pub mod encoding;
pub mod envelope;
pub mod event;
pub mod report;
pub(crate) mod user_agent;

use std::collections::BTreeMap;

use bytes::Bytes;
use uuid::Uuid;

use super::CaptureInput;
use crate::error::Error;

/// Most bytes one envelope may hold, compressed or not.
pub const ENVELOPE_MAX: usize = 20 * 1024 * 1024;

/// How a body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `/api/<project>/envelope/`.
    Envelope,
    /// One event as JSON: `/api/<project>/store/`.
    Event,
}

/// What a body carries, ready for ingest.
pub struct Unpacked {
    /// The id the SDK is answered with: the envelope header's, else the first event's.
    pub event_id: Option<Uuid>,
    /// The envelope header's DSN, which may authenticate the request.
    pub dsn: Option<String>,
    /// The events, each with where it came from (for the inbound filters).
    pub events: Vec<(CaptureInput, event::Origin)>,
    /// User feedback (`user_report` and `feedback` items), as sent.
    pub reports: Vec<report::ReportInput>,
    /// Items accepted, by type.
    pub item_counts: BTreeMap<String, u32>,
}

/// Decompresses and parses a body and maps its events onto capture inputs and its user
/// feedback onto reports. Other items are counted only: SDKs send sessions, transactions and
/// more all the time, and refusing them would make SDKs retry or log errors.
pub fn unpack(body: Bytes, content_encoding: &str, format: Format) -> Result<Unpacked, Error> {
    let body = encoding::decode(body, content_encoding, ENVELOPE_MAX)?;
    let (header_id, dsn, items) = match format {
        Format::Event => {
            let payload = legacy_store_body(body)?;
            (
                None,
                None,
                vec![envelope::Item {
                    ty: "event".into(),
                    payload,
                }],
            )
        }
        Format::Envelope => {
            let env = envelope::parse(body)?;
            let id = env
                .header
                .event_id
                .as_deref()
                .and_then(event::parse_event_id);
            (id, env.header.dsn, env.items)
        }
    };
    let mut item_counts = BTreeMap::new();
    let mut events = Vec::new();
    let mut reports = Vec::new();
    let mut event_id = header_id;
    for item in items {
        *item_counts.entry(item.ty.clone()).or_insert(0u32) += 1;
        match item.ty.as_str() {
            "event" => {}
            "user_report" => {
                reports.extend(report::user_report(&item.payload));
                continue;
            }
            "feedback" => {
                reports.extend(report::feedback(&item.payload));
                continue;
            }
            _ => continue,
        }
        let ev = event::decode(&item.payload)?;
        // The envelope header's id wins over the event's own; a new one is made only when
        // neither is usable.
        let id = header_id
            .filter(|_| events.is_empty())
            .or_else(|| event::event_id(&ev.object))
            .unwrap_or_else(Uuid::new_v4);
        event_id.get_or_insert(id);
        let origin = event::origin(&ev);
        events.push((event::to_capture(ev, id), origin));
    }
    Ok(Unpacked {
        event_id,
        dsn,
        events,
        reports,
        item_counts,
    })
}

/// Very old SDKs (raven) post store events as base64 of zlib-compressed JSON; anything that
/// is not that is passed on as it is for the JSON decoder to judge.
fn legacy_store_body(body: Bytes) -> Result<Bytes, Error> {
    use base64::Engine;
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        return Ok(body);
    }
    let text: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    match base64::engine::general_purpose::STANDARD.decode(&text) {
        Ok(raw) => encoding::decode(Bytes::from(raw), "deflate", event::EVENT_MAX),
        Err(_) => Ok(body),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use base64::Engine;

    use super::*;

    #[test]
    fn random_bodies_never_panic_and_fail_as_bad_input() {
        let mut state: u64 = 0x0123_4567_89ab_cdef;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let prefixes: [&[u8]; 4] = [
            b"",
            b"{}\n",
            b"{}\n{\"type\":\"event\"}\n",
            b"\x1f\x8b\x08\x00",
        ];
        for i in 0..10_000usize {
            let len = (next() % 256) as usize;
            let mut body = prefixes[i % prefixes.len()].to_vec();
            body.extend((0..len).map(|_| next() as u8));
            for format in [Format::Envelope, Format::Event] {
                for coding in ["", "gzip", "br", "deflate"] {
                    if let Err(e) = unpack(Bytes::from(body.clone()), coding, format) {
                        assert!(
                            matches!(e, Error::Malformed { .. } | Error::PayloadTooLarge { .. }),
                            "{e:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn raven_base64_zlib_store_bodies_are_read() {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(br#"{"message":"from raven"}"#).unwrap();
        let body = base64::engine::general_purpose::STANDARD.encode(z.finish().unwrap());
        let u = unpack(Bytes::from(body), "", Format::Event).unwrap();
        assert_eq!(u.events[0].0.message, "from raven");
    }

    #[test]
    fn the_envelope_header_id_wins_and_other_items_are_counted() {
        let body = b"{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\"}\n{\"type\":\"event\"}\n{\"event_id\":\"0000000000000000000000000000000a\",\"message\":\"m\"}\n{\"type\":\"session\"}\n{}\n{\"type\":\"session\"}\n{}\n";
        let u = unpack(Bytes::from_static(body), "", Format::Envelope).unwrap();
        assert_eq!(
            u.event_id.map(|i| i.simple().to_string()).as_deref(),
            Some("9ec79c33ec9942ab8353589fcb2e04dc")
        );
        assert_eq!(u.item_counts["session"], 2);
        assert_eq!(u.item_counts["event"], 1);
        assert_eq!(
            u.events[0].0.idempotency_key.as_deref(),
            Some("sentry:9ec79c33ec9942ab8353589fcb2e04dc")
        );
    }
}
