//! Sentry SDK compatibility: what an unchanged Sentry SDK sends (envelopes or legacy store
//! events, possibly compressed) turned into Faultline captures. Pure: the gRPC handler
//! (`grpc::sentry`) authenticates, calls [`unpack`], and submits the events to the queue.

pub mod auth;
pub mod encoding;
pub mod envelope;
pub mod event;

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
    pub events: Vec<CaptureInput>,
    /// Items accepted, by type.
    pub item_counts: BTreeMap<String, u32>,
}

/// Decompresses and parses a body and maps its events onto capture inputs. Items that are
/// not events are counted only: SDKs send sessions, transactions, reports and more all the
/// time, and refusing them would make SDKs retry or log errors.
pub fn unpack(body: Bytes, content_encoding: &str, format: Format) -> Result<Unpacked, Error> {
    let body = encoding::decode(body, content_encoding, ENVELOPE_MAX)?;
    let (header_id, dsn, items) = match format {
        Format::Event => (
            None,
            None,
            vec![envelope::Item {
                ty: "event".into(),
                payload: body,
            }],
        ),
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
    let mut event_id = header_id;
    for item in items {
        *item_counts.entry(item.ty.clone()).or_insert(0u32) += 1;
        if item.ty != "event" {
            continue;
        }
        let ev = event::decode(&item.payload)?;
        // The envelope header's id wins over the event's own; a new one is made only when
        // neither is usable.
        let id = header_id
            .filter(|_| events.is_empty())
            .or_else(|| event::event_id(&ev.object))
            .unwrap_or_else(Uuid::new_v4);
        event_id.get_or_insert(id);
        events.push(event::to_capture(ev, id));
    }
    Ok(Unpacked {
        event_id,
        dsn,
        events,
        item_counts,
    })
}
