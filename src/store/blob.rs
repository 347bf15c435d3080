//! The compressed part of an event row: the parsed exception, the grouping explanation and
//! the original payload, framed and compressed. They are most of an event's bytes and are
//! only read whole, so one blob keeps rows small and inserts cheap. Encoding runs in the
//! request handler (`ingest::prepare`), not in the single writer.
//!
//! The framed parts: `u32 LE length, exception JSON (empty: none), u32 LE length, grouping
//! JSON, payload bytes`. Both JSON parts are written by `blob_json`, as `serde_json` would
//! write them, only faster.
//! - Version 1: one version byte, then zstd of the framed parts.
//! - Version 2 leaves the grouping's `components` out when they are its primary variant's (as
//!   `grouping::compute` makes them): the same list twice was a tenth of what was compressed.
//! - Version 3 leaves out the frames of exceptions whose frames were parsed from their stack
//!   trace text (`ExceptionData::frames_from_text`); reading parses the text again where an
//!   exception has text and no frames. Versions 1 and 2, which always hold every frame, are
//!   still read as they are.
//! - Version 4 (written now) compresses with LZ4 instead: the version byte, then the framed
//!   parts as one LZ4 block behind their length (`u32 LE`), lz4_flex's "size prepended" form.
//!   zstd at its fastest level took a fifth of the request workers' instructions per captured
//!   event, LZ4 about a third of that; a bench event's blob is 1 934 bytes instead of 1 650
//!   (BENCHMARKS.md, session 21). Versions 1 to 3 are still read with zstd.

use std::cell::RefCell;

use serde::Deserialize;

use super::blob_json;
use crate::{
    domain::{
        ExceptionData,
        grouping::{Grouping, GroupingSource, GroupingVariant},
    },
    error::Error,
};

const VERSION: u8 = 4;
/// The first version compressed with LZ4; versions 1 to 3 were compressed with zstd.
const LZ4_SINCE: u8 = 4;

#[derive(Deserialize)]
struct ReadGrouping {
    version: u32,
    source: GroupingSource,
    components: Option<Vec<String>>,
    fingerprint: String,
    #[serde(default)]
    variants: Vec<GroupingVariant>,
}

impl From<ReadGrouping> for Grouping {
    fn from(g: ReadGrouping) -> Grouping {
        let components = g
            .components
            .or_else(|| g.variants.first().map(|v| v.components.clone()))
            .unwrap_or_default();
        Grouping {
            version: g.version,
            source: g.source,
            components,
            fingerprint: g.fingerprint,
            variants: g.variants,
        }
    }
}

/// The decoded blob.
pub struct EventBlob {
    pub exception: Option<ExceptionData>,
    pub grouping: Grouping,
    /// Empty unless asked for.
    pub payload: String,
}

pub fn encode(exception: Option<&ExceptionData>, grouping: &Grouping, payload: &str) -> Vec<u8> {
    thread_local! {
        static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
    }
    SCRATCH.with_borrow_mut(|scratch| scratch.encode(exception, grouping, payload))
}

/// What encoding needs besides its output, kept by each thread from one event to the next:
/// allocating them for each event (the LZ4 output zeroed for its worst case, the hash table
/// zeroed) cost a tenth of encoding. Buffers grown past `SCRATCH_KEPT` by an event are let go.
#[derive(Default)]
struct Scratch {
    /// The framed parts.
    raw: Vec<u8>,
    /// LZ4's output, before it is copied into a vector of its size.
    compressed: Vec<u8>,
    table: lz4_flex::block::CompressTable,
}

/// The most each buffer of `Scratch` keeps between events.
const SCRATCH_KEPT: usize = 64 * 1024;

impl Scratch {
    fn encode(
        &mut self,
        exception: Option<&ExceptionData>,
        grouping: &Grouping,
        payload: &str,
    ) -> Vec<u8> {
        let raw = &mut self.raw;
        raw.clear();
        framed(raw, |out| {
            if let Some(e) = exception {
                blob_json::exception(out, e);
            }
        });
        let primary = grouping.variants.first().map(|v| v.components.as_slice());
        framed(raw, |out| {
            blob_json::grouping(
                out,
                grouping.version,
                grouping.source,
                (primary != Some(grouping.components.as_slice()))
                    .then_some(grouping.components.as_slice()),
                &grouping.fingerprint,
                &grouping.variants,
            )
        });
        raw.extend(payload.as_bytes());
        let room = lz4_flex::block::get_maximum_output_size(raw.len());
        if self.compressed.len() < room {
            self.compressed.resize(room, 0);
        }
        let n = lz4_flex::block::compress_into_with_table(
            raw,
            &mut self.compressed[..room],
            &mut self.table,
        )
        .expect("the output has room for the worst case");
        // `VERSION`, the length of the framed parts, then them as one LZ4 block.
        let mut out = Vec::with_capacity(5 + n);
        out.push(VERSION);
        out.extend((raw.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.compressed[..n]);
        for buffer in [&mut self.raw, &mut self.compressed] {
            if buffer.capacity() > SCRATCH_KEPT {
                *buffer = Vec::new();
            }
        }
        out
    }
}

/// Appends `u32 LE length`, then what `write` writes (nothing: length 0), to `out`.
fn framed(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    out.extend([0; 4]);
    write(out);
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

fn corrupt() -> Error {
    Error::Internal("stored event data is corrupt".into())
}

pub fn decode(data: &[u8], with_payload: bool) -> Result<EventBlob, Error> {
    let (version, raw) = unpack(data)?;
    let mut parts = Parts(raw.as_slice());
    let exception = parts.take()?;
    let exception = if exception.is_empty() {
        None
    } else {
        let mut e: ExceptionData = serde_json::from_slice(exception).map_err(|_| corrupt())?;
        // Versions 1 and 2 stored every frame: what they hold is read as it is.
        if version >= 3 {
            e.restore_frames();
        }
        Some(e)
    };
    let grouping = read_grouping(parts.take()?)?;
    let payload = if with_payload {
        crate::domain::text_from_bytes(parts.0)
    } else {
        String::new()
    };
    Ok(EventBlob {
        exception,
        grouping,
        payload,
    })
}

/// Only the grouping of a stored event (its keys): neither its exception nor its payload is
/// parsed.
pub fn decode_grouping(data: &[u8]) -> Result<Grouping, Error> {
    let (_, raw) = unpack(data)?;
    let mut parts = Parts(raw.as_slice());
    parts.take()?;
    read_grouping(parts.take()?)
}

fn read_grouping(part: &[u8]) -> Result<Grouping, Error> {
    Ok(serde_json::from_slice::<ReadGrouping>(part)
        .map_err(|_| corrupt())?
        .into())
}

/// The framed parts of a decompressed blob, in order.
struct Parts<'a>(&'a [u8]);

impl<'a> Parts<'a> {
    fn take(&mut self) -> Result<&'a [u8], Error> {
        let (len, tail) = self.0.split_first_chunk::<4>().ok_or_else(corrupt)?;
        let len = u32::from_le_bytes(*len) as usize;
        if tail.len() < len {
            return Err(corrupt());
        }
        let (part, tail) = tail.split_at(len);
        self.0 = tail;
        Ok(part)
    }
}

/// The blob's format version and its decompressed bytes.
fn unpack(data: &[u8]) -> Result<(u8, Vec<u8>), Error> {
    let (&version, compressed) = data.split_first().ok_or_else(corrupt)?;
    if !(1..=VERSION).contains(&version) {
        return Err(corrupt());
    }
    let raw = if version >= LZ4_SINCE {
        let (len, block) = lz4_flex::block::uncompressed_size(compressed).map_err(|_| corrupt())?;
        // LZ4 expands at most about 255 times: a larger length is corrupt, and is not
        // allocated.
        if len > block.len().saturating_mul(255) + 16 {
            return Err(corrupt());
        }
        let raw = lz4_flex::block::decompress(block, len).map_err(|_| corrupt())?;
        if raw.len() != len {
            return Err(corrupt());
        }
        raw
    } else {
        zstd::stream::decode_all(compressed).map_err(|_| corrupt())?
    };
    Ok((version, raw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Frame, grouping::VariantKind};

    #[test]
    fn round_trips_and_rejects_garbage() {
        let g = Grouping {
            version: 1,
            source: GroupingSource::Message,
            components: vec!["message:x".into()],
            fingerprint: "ab".into(),
            variants: Vec::new(),
        };
        let e = ExceptionData {
            r#type: "ValueError".into(),
            value: "bad".into(),
            ..Default::default()
        };
        let payload = r#"{"message":"x","n":9007199254740993}"#;
        let b = decode(&encode(Some(&e), &g, payload), true).unwrap();
        assert_eq!(b.exception, Some(e));
        assert_eq!(b.grouping, g);
        assert_eq!(b.payload, payload);
        let b = decode(&encode(None, &g, payload), false).unwrap();
        assert!(b.exception.is_none() && b.payload.is_empty());
        assert!(decode(b"", true).is_err());
        assert!(decode(b"\x01garbage", true).is_err());
        assert!(decode(b"\x02", true).is_err());
        assert!(decode(b"\x03garbage", true).is_err());
        assert!(decode(b"\x04garbage", true).is_err());
        assert!(decode(b"\x05garbage", true).is_err());
        // A payload larger than what the thread keeps between events, then small ones again.
        let big = format!("{{\"message\":\"{}\"}}", "x\\n".repeat(100_000));
        for p in [payload, &big, payload, &big[..70_000]] {
            assert_eq!(decode(&encode(None, &g, p), true).unwrap().payload, p);
        }
        // A length LZ4 cannot reach from so few bytes, and a length that does not match.
        let mut blob = encode(None, &g, payload);
        blob[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&blob, true).is_err());
        let mut blob = encode(None, &g, payload);
        blob[1] = blob[1].wrapping_add(1);
        assert!(decode(&blob, true).is_err());
        assert!(decode(&blob[..blob.len() - 1], true).is_err());
    }

    #[test]
    fn reads_version_3_blobs() {
        // Version 3: zstd; frames parsed from text left out and parsed again when read.
        let raw = "Traceback (most recent call last):\n  File \"/srv/app/views.py\", line 3, in get\n    \
                   x = load()\nKeyError: 'a'";
        let exception = serde_json::json!({
            "type": "KeyError", "value": "'a'", "module": "", "frames": [], "raw_stacktrace": raw
        });
        let g = with_variants();
        let stored = serde_json::json!({
            "version": 2, "source": "stacktrace", "fingerprint": "aa",
            "variants": serde_json::to_value(&g.variants).unwrap()
        });
        let blob = old_blob(
            3,
            exception.to_string().as_bytes(),
            stored.to_string().as_bytes(),
            b"{}",
        );
        let b = decode(&blob, true).unwrap();
        let e = b.exception.unwrap();
        assert_eq!(e.raw_stacktrace, raw);
        assert_eq!(e.frames.len(), 1);
        assert_eq!(e.frames[0].function, "get");
        assert_eq!(b.grouping, g);
        assert_eq!(b.payload, "{}");
    }

    fn with_variants() -> Grouping {
        let variant = |kind, components: &[&str], hash: &str| GroupingVariant {
            kind,
            version: 2,
            source: GroupingSource::Stacktrace,
            components: components.iter().map(|c| (*c).to_owned()).collect(),
            hash: hash.into(),
            matches_group: false,
        };
        Grouping {
            version: 2,
            source: GroupingSource::Stacktrace,
            components: vec!["type:E".into(), "a.py:f".into()],
            fingerprint: "aa".into(),
            variants: vec![
                variant(VariantKind::InApp, &["type:E", "a.py:f"], "aa"),
                variant(VariantKind::Full, &["type:E", "lib.py:g", "a.py:f"], "bb"),
            ],
        }
    }

    /// The stored grouping JSON of a blob.
    fn stored_grouping(blob: &[u8]) -> serde_json::Value {
        stored_parts(blob).1
    }

    /// The stored exception JSON (null when none) and grouping JSON of a blob.
    fn stored_parts(blob: &[u8]) -> (serde_json::Value, serde_json::Value) {
        assert_eq!(blob[0], VERSION);
        let raw = lz4_flex::block::decompress_size_prepended(&blob[1..]).unwrap();
        let n = u32::from_le_bytes(raw[..4].try_into().unwrap()) as usize;
        let exception = if n == 0 {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&raw[4..4 + n]).unwrap()
        };
        let rest = &raw[4 + n..];
        let m = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
        (exception, serde_json::from_slice(&rest[4..4 + m]).unwrap())
    }

    /// A blob as versions 1 to 3 wrote it: `version`, then zstd of the framed parts.
    fn old_blob(version: u8, exception: &[u8], grouping: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut raw = Vec::new();
        raw.extend((exception.len() as u32).to_le_bytes());
        raw.extend(exception);
        raw.extend((grouping.len() as u32).to_le_bytes());
        raw.extend(grouping);
        raw.extend(payload);
        let mut blob = vec![version];
        blob.extend(zstd::bulk::compress(&raw, 1).unwrap());
        blob
    }

    #[test]
    fn primary_components_are_stored_once() {
        let g = with_variants();
        let blob = encode(None, &g, "{}");
        assert_eq!(blob[0], VERSION);
        assert!(stored_grouping(&blob).get("components").is_none());
        assert_eq!(decode(&blob, false).unwrap().grouping, g);

        // Components that are not the primary variant's are kept.
        let mut other = with_variants();
        other.components = vec!["custom".into()];
        let blob = encode(None, &other, "{}");
        assert_eq!(
            stored_grouping(&blob)["components"],
            serde_json::json!(["custom"])
        );
        assert_eq!(decode(&blob, false).unwrap().grouping, other);
    }

    #[test]
    fn frames_parsed_from_text_are_parsed_again_when_read() {
        let raw = "Traceback (most recent call last):\n  File \"/srv/app/views.py\", line 3, in get\n    \
                   x = load()\n  File \"/usr/lib/python3/site-packages/db.py\", line 9, in load\n    \
                   raise KeyError(k)\nKeyError: 'a'";
        let mut frames = crate::domain::grouping::stacktrace::parse(raw).frames;
        crate::domain::event::classify_frames(&mut frames);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].in_app, Some(true));
        assert_eq!(frames[1].in_app, Some(false));
        let sent = ExceptionData {
            r#type: "KeyError".into(),
            value: "'a'".into(),
            raw_stacktrace: raw.into(),
            frames_from_text: true,
            ..Default::default()
        };
        // A cause whose frames the client sent keeps them in the blob.
        let cause = ExceptionData {
            r#type: "OSError".into(),
            frames: vec![Frame {
                function: "read".into(),
                in_app: Some(true),
                ..Frame::default()
            }],
            ..Default::default()
        };
        let stored = ExceptionData {
            chained: vec![sent.clone(), cause.clone()],
            ..sent.clone()
        };
        let g = with_variants();
        let blob = encode(Some(&stored), &g, "{}");
        let (json, _) = stored_parts(&blob);
        assert!(
            json.get("frames")
                .is_some_and(|f| f == &serde_json::json!([]))
        );
        assert_eq!(json["chained"][1]["frames"][0]["function"], "read");
        assert!(json.get("frames_from_text").is_none(), "{json}");

        let read = decode(&blob, false).unwrap().exception.unwrap();
        let with_frames = ExceptionData {
            frames: frames.clone(),
            ..sent
        };
        assert_eq!(read.frames, frames);
        assert_eq!(read.chained, vec![with_frames, cause]);
    }

    #[test]
    fn reads_version_2_blobs_with_their_frames() {
        // Version 2: every frame stored as parsed, even none: a cause whose text (a trace
        // today's parser reads) has no stored frames is read without frames.
        let cause = ExceptionData {
            r#type: "KeyError".into(),
            raw_stacktrace: "Traceback (most recent call last):\n  File \"/app/a.py\", line 1, in f\n    g()\nKeyError: 'a'".into(),
            ..Default::default()
        };
        let e = ExceptionData {
            r#type: "E".into(),
            frames: vec![Frame {
                function: "f".into(),
                in_app: Some(false),
                ..Frame::default()
            }],
            raw_stacktrace: "not a trace".into(),
            chained: vec![cause],
            ..Default::default()
        };
        let exception = serde_json::to_vec(&e).unwrap();
        let grouping = br#"{"version":1,"source":"message","components":["x"],"fingerprint":"ab"}"#;
        let blob = old_blob(2, &exception, grouping, b"");
        assert_eq!(decode(&blob, false).unwrap().exception, Some(e));
    }

    #[test]
    fn reads_version_1_blobs() {
        // Version 1: the grouping serialized whole.
        let g = with_variants();
        let grouping = serde_json::to_vec(&g).unwrap();
        let payload = b"{\"message\":\"x\"}";
        let blob = old_blob(1, b"", &grouping, payload);
        let b = decode(&blob, true).unwrap();
        assert_eq!(b.grouping, g);
        assert!(b.exception.is_none());
        assert_eq!(b.payload.as_bytes(), payload);
    }
}
