//! An issue's activity, as Sentry's activity feed shows it: what happened to the group and
//! who did it. People resolve, ignore, reopen, assign, merge, unmerge, comment and move the fix
//! workflow along; Faultline itself reopens a group (a regression) and ends snoozes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::model::Assignee;

/// Why Faultline brought an ignored group back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnoozeEnd {
    /// The time it was ignored for passed.
    TimePassed,
    /// It received the events it was ignored until.
    CountReached,
    /// It affected the users it was ignored until.
    UserCountReached,
    /// It was archived until escalating, and its events of the last hour went past what its
    /// history made normal.
    Escalating,
}

impl SnoozeEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            SnoozeEnd::TimePassed => "time_passed",
            SnoozeEnd::CountReached => "count_reached",
            SnoozeEnd::UserCountReached => "user_count_reached",
            SnoozeEnd::Escalating => "escalating",
        }
    }
}

/// What happened, with what that kind of entry needs besides. The names are Sentry's activity
/// types where Sentry has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Change {
    /// The group's first event arrived (read from the group, not stored).
    FirstSeen,
    /// A comment (read from the comments, not stored here; the entry's id is the comment's).
    Note {
        text: String,
    },
    SetResolved,
    /// Resolved in the next release: in `release`, the project's latest then.
    SetResolvedInRelease {
        release: String,
    },
    /// Reopened by a person, or by Faultline when a snooze ended (`snooze_end`).
    SetUnresolved {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        snooze_end: Option<SnoozeEnd>,
    },
    /// Ignored: for `minutes`, until `events` more events, until `users` more users, or
    /// (none) until changed. With `window`, `events` is that many within `window` minutes
    /// (a rate); with `user_window`, `users` likewise.
    SetIgnored {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        minutes: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        events: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        users: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        window: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_window: Option<u32>,
        /// Until escalating (Sentry's default archive); `events` and `window` are then the
        /// threshold worked out for it.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        escalating: bool,
    },
    /// A resolved group received an event (`event_id`, of `release`, "" for none) and reopened.
    SetRegression {
        release: String,
        event_id: Uuid,
    },
    /// Assigned to a member of the team (as the member was named then).
    Assigned(Assignee),
    Unassigned,
    /// Other groups (`merged`) were merged into this one, bringing `events` events.
    Merge {
        merged: Vec<Uuid>,
        events: u64,
    },
    /// Some of its grouping keys (`hashes`) and the `events` that came by them were moved to
    /// a new group, `destination` (Sentry's unmerge).
    UnmergeSource {
        destination: Uuid,
        hashes: Vec<String>,
        events: u64,
    },
    /// Made by an unmerge: `hashes` and `events` came from `source`.
    UnmergeDestination {
        source: Uuid,
        hashes: Vec<String>,
        events: u64,
    },
    /// Moved along the fix workflow.
    Workflow {
        from: String,
        to: String,
    },
}

impl Change {
    /// The entry's type, as stored and shown.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::FirstSeen => "first_seen",
            Change::Note { .. } => "note",
            Change::SetResolved => "set_resolved",
            Change::SetResolvedInRelease { .. } => "set_resolved_in_release",
            Change::SetUnresolved { .. } => "set_unresolved",
            Change::SetIgnored { .. } => "set_ignored",
            Change::SetRegression { .. } => "set_regression",
            Change::Assigned(_) => "assigned",
            Change::Unassigned => "unassigned",
            Change::Merge { .. } => "merge",
            Change::UnmergeSource { .. } => "unmerge_source",
            Change::UnmergeDestination { .. } => "unmerge_destination",
            Change::Workflow { .. } => "workflow",
        }
    }
}

/// One entry of a group's activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    /// The entry's id; a note's is its comment's; `None` for the first-seen entry.
    pub id: Option<Uuid>,
    pub group_id: Uuid,
    pub change: Change,
    /// Who acted, as shown (a member's name or email, else the API key's name); `None` when
    /// Faultline itself did.
    pub actor: Option<String>,
    /// The member whose key acted, if any.
    pub member_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored form names its type the way `kind` does, and reads back the same.
    #[test]
    fn changes_round_trip_under_their_kind() {
        let changes = [
            Change::SetResolved,
            Change::SetResolvedInRelease {
                release: "web@2".into(),
            },
            Change::SetUnresolved { snooze_end: None },
            Change::SetUnresolved {
                snooze_end: Some(SnoozeEnd::CountReached),
            },
            Change::SetIgnored {
                minutes: Some(30),
                events: None,
                users: None,
                window: None,
                user_window: None,
                escalating: false,
            },
            Change::SetIgnored {
                minutes: None,
                events: None,
                users: Some(10),
                window: None,
                user_window: Some(60),
                escalating: false,
            },
            Change::SetIgnored {
                minutes: None,
                events: Some(20),
                users: None,
                window: Some(60),
                user_window: None,
                escalating: true,
            },
            Change::SetUnresolved {
                snooze_end: Some(SnoozeEnd::Escalating),
            },
            Change::SetUnresolved {
                snooze_end: Some(SnoozeEnd::UserCountReached),
            },
            Change::SetRegression {
                release: String::new(),
                event_id: Uuid::nil(),
            },
            Change::Assigned(Assignee {
                id: Uuid::nil(),
                name: "Ana".into(),
                email: "a@x".into(),
            }),
            Change::Unassigned,
            Change::Merge {
                merged: vec![Uuid::nil()],
                events: 3,
            },
            Change::UnmergeSource {
                destination: Uuid::nil(),
                hashes: vec!["ab".into()],
                events: 2,
            },
            Change::UnmergeDestination {
                source: Uuid::nil(),
                hashes: vec!["ab".into()],
                events: 2,
            },
            Change::Workflow {
                from: "NEW".into(),
                to: "FIXING".into(),
            },
        ];
        for c in changes {
            let json = serde_json::to_value(&c).unwrap();
            assert_eq!(json["type"], c.kind(), "{json}");
            assert_eq!(serde_json::from_value::<Change>(json).unwrap(), c);
        }
        let plain = serde_json::to_string(&Change::SetUnresolved { snooze_end: None }).unwrap();
        assert_eq!(plain, r#"{"type":"set_unresolved"}"#);
    }
}
