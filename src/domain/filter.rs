//! What a listing, search or export selects, and how groups are ordered.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{GroupStatus, Level};

/// Criteria over events; `None`/empty means "don't filter on this".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub level: Option<Level>,
    pub status: Option<GroupStatus>,
    pub environment: Option<String>,
    pub release: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub user_id: Option<String>,
    pub group_id: Option<Uuid>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Free-text words; every word must occur in message, exception type or stack.
    pub q: Option<String>,
}

/// Order of a group listing; every order is descending with the id as tie-breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupSort {
    CountDesc,
    #[default]
    LastSeenDesc,
    FirstSeenDesc,
}

impl GroupSort {
    pub fn code(self) -> u8 {
        match self {
            GroupSort::CountDesc => 1,
            GroupSort::LastSeenDesc => 2,
            GroupSort::FirstSeenDesc => 3,
        }
    }
}

/// Splits a search string into lower-cased words (at most 8, each at most 100 chars).
pub fn search_words(q: &str) -> Vec<String> {
    q.split_whitespace()
        .take(8)
        .map(|w| w.chars().take(100).collect::<String>().to_lowercase())
        .collect()
}
