//! The compressed part of an event row: the parsed exception, the grouping explanation and
//! the original payload, framed and compressed with zstd. They are most of an event's bytes
//! and are only read whole, so one blob keeps rows small and inserts cheap. Encoding runs in
//! the request handler (`ingest::prepare`), not in the single writer.
//!
//! Layout: one version byte (1), then zstd of
//! `u32 LE length, exception JSON (empty: none), u32 LE length, grouping JSON, payload bytes`.

use crate::{
    domain::{ExceptionData, grouping::Grouping},
    error::Error,
};

const VERSION: u8 = 1;
/// Fast level: most of the size win at a small share of the CPU of higher levels.
const LEVEL: i32 = 1;

/// The decoded blob.
pub struct EventBlob {
    pub exception: Option<ExceptionData>,
    pub grouping: Grouping,
    /// Empty unless asked for.
    pub payload: String,
}

pub fn encode(exception: Option<&ExceptionData>, grouping: &Grouping, payload: &str) -> Vec<u8> {
    let exception = exception
        .map(|e| serde_json::to_vec(e).unwrap_or_default())
        .unwrap_or_default();
    let grouping = serde_json::to_vec(grouping).unwrap_or_default();
    let mut raw = Vec::with_capacity(8 + exception.len() + grouping.len() + payload.len());
    raw.extend((exception.len() as u32).to_le_bytes());
    raw.extend(&exception);
    raw.extend((grouping.len() as u32).to_le_bytes());
    raw.extend(&grouping);
    raw.extend(payload.as_bytes());
    let mut out = vec![VERSION];
    // A compression context is large to set up; each thread keeps one.
    thread_local! {
        static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
            std::cell::RefCell::new(zstd::bulk::Compressor::new(LEVEL).ok());
    }
    let compressed = COMPRESSOR.with(|c| match c.borrow_mut().as_mut() {
        Some(c) => c.compress(&raw).ok(),
        None => None,
    });
    // Without a context (allocation failure) fall back to a one-off compression.
    out.extend(
        compressed
            .or_else(|| zstd::bulk::compress(&raw, LEVEL).ok())
            .unwrap_or_default(),
    );
    out
}

pub fn decode(data: &[u8], with_payload: bool) -> Result<EventBlob, Error> {
    let corrupt = || Error::Internal("stored event data is corrupt".into());
    let (&version, compressed) = data.split_first().ok_or_else(corrupt)?;
    if version != VERSION {
        return Err(corrupt());
    }
    let raw = zstd::stream::decode_all(compressed).map_err(|_| corrupt())?;
    let mut rest = raw.as_slice();
    let mut take = || -> Result<&[u8], Error> {
        let (len, tail) = rest.split_first_chunk::<4>().ok_or_else(corrupt)?;
        let len = u32::from_le_bytes(*len) as usize;
        if tail.len() < len {
            return Err(corrupt());
        }
        let (part, tail) = tail.split_at(len);
        rest = tail;
        Ok(part)
    };
    let exception = take()?;
    let exception = if exception.is_empty() {
        None
    } else {
        Some(serde_json::from_slice(exception).map_err(|_| corrupt())?)
    };
    let grouping = serde_json::from_slice(take()?).map_err(|_| corrupt())?;
    let payload = if with_payload {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        String::new()
    };
    Ok(EventBlob {
        exception,
        grouping,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::grouping::GroupingSource;

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
    }
}
