//! Rows to domain types. A row the server wrote itself should always convert; if one does
//! not (hand-edited database), the fields fall back to neutral values instead of failing reads.

use std::collections::BTreeMap;

use crate::domain::{
    ExceptionData, GroupStatus, Level,
    grouping::{Grouping, GroupingSource},
    model::{Group, StoredEvent, from_millis},
};

use super::entity::{event, group};

pub fn level(s: &str) -> Level {
    Level::parse(s).unwrap_or(Level::Error)
}

pub fn status(s: &str) -> GroupStatus {
    GroupStatus::parse(s).unwrap_or(GroupStatus::Unresolved)
}

pub fn group(m: group::Model) -> Group {
    let group::Model {
        id,
        project_id,
        fingerprint,
        grouping_version,
        title,
        culprit,
        level: lvl,
        status: st,
        regressed,
        times_seen,
        first_seen,
        last_seen,
        resolved_at: _,
    } = m;
    Group {
        id,
        project_id,
        fingerprint,
        grouping_version: u32::try_from(grouping_version).unwrap_or(0),
        title,
        culprit,
        level: level(&lvl),
        status: status(&st),
        regressed,
        count: u64::try_from(times_seen).unwrap_or(0),
        first_seen: from_millis(first_seen),
        last_seen: from_millis(last_seen),
    }
}

pub fn event(m: event::Model, with_payload: bool) -> StoredEvent {
    let event::Model {
        seq,
        id,
        project_id,
        group_id,
        timestamp,
        received_at,
        level: lvl,
        message,
        code,
        exception_type: _,
        exception,
        culprit,
        release,
        environment,
        user_id,
        tags,
        idempotency_key: _,
        search_text: _,
        grouping,
        payload,
    } = m;
    let grouping: Grouping = serde_json::from_str(&grouping).unwrap_or_else(|_| Grouping {
        version: 0,
        source: GroupingSource::Message,
        components: Vec::new(),
        fingerprint: String::new(),
    });
    StoredEvent {
        seq,
        id,
        project_id,
        group_id,
        timestamp: from_millis(timestamp),
        received_at: from_millis(received_at),
        level: level(&lvl),
        message,
        code,
        exception: exception.and_then(|e| serde_json::from_str::<ExceptionData>(&e).ok()),
        culprit,
        release,
        environment,
        user_id,
        tags: serde_json::from_str::<BTreeMap<String, String>>(&tags).unwrap_or_default(),
        grouping,
        payload_json: with_payload.then_some(payload),
    }
}
