//! Opaque paging cursors. A cursor is the sort key of the last row of a page, so paging
//! is keyset-based and stays stable while new events arrive (new rows sort before page 1).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Error;

/// Default page size.
pub const DEFAULT_LIMIT: u64 = 50;
/// Largest page size; larger requests are capped, not rejected.
pub const MAX_LIMIT: u64 = 100;

/// Page size from a request's `limit`: 0 means the default, values above the cap are capped.
pub fn page_limit(limit: u32) -> u64 {
    bounded_limit(limit, DEFAULT_LIMIT, MAX_LIMIT)
}

/// A request's `limit` for a listing of its own bounds: 0 means `default`, values above `max`
/// are capped.
pub fn bounded_limit(limit: u32, default: u64, max: u64) -> u64 {
    match u64::from(limit) {
        0 => default,
        n => n.min(max),
    }
}

/// Where the next page of an event listing starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventCursor {
    /// Events with a sequence number below this come next.
    #[serde(rename = "e")]
    pub before_seq: i64,
}

/// Where the next page of a group listing starts: the sort value and id of the last group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupCursor {
    #[serde(rename = "s")]
    pub sort: u8,
    #[serde(rename = "v")]
    pub value: i64,
    #[serde(rename = "g")]
    pub id: Uuid,
}

/// Where the next page of a listing newest first starts (user feedback, debug-id files): the
/// last row's creation time and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedCursor {
    #[serde(rename = "r")]
    pub created_at: i64,
    #[serde(rename = "u")]
    pub id: Uuid,
}

fn encode<T: Serialize>(c: &T) -> String {
    // Serializing these plain structs cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(c).unwrap_or_default())
}

fn decode<T: for<'de> Deserialize<'de>>(s: &str) -> Result<Option<T>, Error> {
    if s.is_empty() {
        return Ok(None);
    }
    let bad = || Error::malformed("cursor", "is not a cursor returned by this listing");
    let bytes = URL_SAFE_NO_PAD.decode(s.trim()).map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map(Some).map_err(|_| bad())
}

impl EventCursor {
    pub fn encode(&self) -> String {
        encode(self)
    }
    pub fn decode(s: &str) -> Result<Option<Self>, Error> {
        decode(s)
    }
}

impl CreatedCursor {
    pub fn encode(&self) -> String {
        encode(self)
    }
    pub fn decode(s: &str) -> Result<Option<Self>, Error> {
        decode(s)
    }
}

impl GroupCursor {
    pub fn encode(&self) -> String {
        encode(self)
    }
    pub fn decode(s: &str) -> Result<Option<Self>, Error> {
        decode(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let c = EventCursor { before_seq: 42 };
        assert_eq!(EventCursor::decode(&c.encode()).unwrap(), Some(c));
        assert_eq!(EventCursor::decode("").unwrap(), None);
        assert!(EventCursor::decode("not-a-cursor!").is_err());
        assert!(EventCursor::decode(&URL_SAFE_NO_PAD.encode(b"{\"x\":1}")).is_err());
        // A group cursor is not an event cursor.
        let g = GroupCursor {
            sort: 1,
            value: 3,
            id: Uuid::nil(),
        };
        assert!(EventCursor::decode(&g.encode()).is_err());
    }

    #[test]
    fn limits_default_and_cap() {
        assert_eq!(page_limit(0), 50);
        assert_eq!(page_limit(7), 7);
        assert_eq!(page_limit(5000), 100);
    }
}
