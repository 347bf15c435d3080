//! Rows to domain types. Scalar fields that do not parse (a hand-edited database) fall back
//! to neutral values; an event whose compressed data is corrupt is an error.

use std::collections::BTreeMap;

use crate::{
    domain::{
        GroupStatus, Level,
        model::{Assignee, Group, SnoozeRate, StoredEvent, from_millis},
        workflow::WorkflowStage,
    },
    error::Error,
};

use super::{
    blob,
    entity::{event, group},
};

pub fn level(s: &str) -> Level {
    Level::parse(s).unwrap_or(Level::Error)
}

pub fn status(s: &str) -> GroupStatus {
    GroupStatus::parse(s).unwrap_or(GroupStatus::Unresolved)
}

pub fn group(m: group::Model, assignee: Option<Assignee>) -> Group {
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
        workflow_stage,
        regressed_at: _,
        ignored_until,
        ignored_until_count,
        unignored_at: _,
        last_release,
        resolved_in_release,
        assignee_id: _,
        first_release,
        ignored_until_users,
        ignored_rate_count,
        ignored_rate_window,
        ignored_user_rate_count,
        ignored_user_rate_window,
        ignored_until_escalating,
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
        workflow_stage: WorkflowStage::parse(&workflow_stage).unwrap_or(WorkflowStage::New),
        ignored_until: ignored_until.map(from_millis),
        ignored_until_count: ignored_until_count.and_then(|n| u64::try_from(n).ok()),
        last_release,
        resolved_in_release,
        first_release,
        assignee,
        ignored_until_user_count: ignored_until_users.and_then(|n| u64::try_from(n).ok()),
        ignored_until_rate: snooze_rate(ignored_rate_count, ignored_rate_window),
        ignored_until_user_rate: snooze_rate(ignored_user_rate_count, ignored_user_rate_window),
        ignored_until_escalating,
    }
}

fn snooze_rate(count: Option<i64>, window: Option<i32>) -> Option<SnoozeRate> {
    Some(SnoozeRate {
        count: u64::try_from(count?).ok()?,
        window: u32::try_from(window?).ok()?,
    })
}

pub fn event(m: event::Model, with_payload: bool) -> Result<StoredEvent, Error> {
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
        culprit,
        release,
        environment,
        user_id,
        tags,
        idempotency_key: _,
        search_text: _,
        data,
    } = m;
    let blob = blob::decode(&data, with_payload)?;
    Ok(StoredEvent {
        seq,
        id,
        project_id,
        group_id,
        timestamp: from_millis(timestamp),
        received_at: from_millis(received_at),
        level: level(&lvl),
        message,
        code,
        exception: blob.exception,
        culprit,
        release,
        environment,
        user_id,
        tags: serde_json::from_str::<BTreeMap<String, String>>(&tags).unwrap_or_default(),
        grouping: blob.grouping,
        payload_json: with_payload.then_some(blob.payload),
    })
}

/// A key's scopes as stored: comma-separated names.
pub(super) fn scopes(stored: &str) -> Vec<String> {
    stored
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}
