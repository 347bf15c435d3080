//! What the store hands back: stored events, groups and their aggregates.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{ExceptionData, GroupStatus, Level, grouping::Grouping};

/// An event as stored.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub seq: i64,
    pub id: Uuid,
    pub project_id: Uuid,
    pub group_id: Uuid,
    pub timestamp: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub level: Level,
    pub message: String,
    pub code: String,
    pub exception: Option<ExceptionData>,
    pub culprit: String,
    pub release: String,
    pub environment: String,
    pub user_id: String,
    pub tags: BTreeMap<String, String>,
    pub grouping: Grouping,
    /// Only loaded for single-event reads.
    pub payload_json: Option<String>,
}

impl StoredEvent {
    /// The title the event gives its group ("Type: first line of message"), as when it arrived.
    pub fn title(&self) -> String {
        let (ty, value, frames) = match &self.exception {
            Some(e) if !e.value.is_empty() => (e.r#type.as_str(), e.value.as_str(), &e.frames[..]),
            Some(e) => (e.r#type.as_str(), self.message.as_str(), &e.frames[..]),
            None => ("", self.message.as_str(), &[][..]),
        };
        super::grouping::title_and_culprit(ty, value, frames).0
    }
}

/// A group (an issue).
#[derive(Debug, Clone)]
pub struct Group {
    pub id: Uuid,
    pub project_id: Uuid,
    pub fingerprint: String,
    pub grouping_version: u32,
    pub title: String,
    pub culprit: String,
    pub level: Level,
    pub status: GroupStatus,
    pub regressed: bool,
    pub count: u64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Stage of the fix workflow.
    pub workflow_stage: super::workflow::WorkflowStage,
    /// While ignored for a while: when it comes back (unresolved).
    pub ignored_until: Option<DateTime<Utc>>,
    /// While ignored until more events: the count at which it comes back.
    pub ignored_until_count: Option<u64>,
    /// The release of its newest event ("" when none said).
    pub last_release: String,
    /// Resolved in the next release: the release it was resolved in, whose events do not
    /// reopen it.
    pub resolved_in_release: Option<String>,
    /// The release its first event named, if any.
    pub first_release: Option<String>,
    /// The member of the team it is assigned to.
    pub assignee: Option<Assignee>,
    /// While ignored until more users: the number of users affected at which it comes back.
    pub ignored_until_user_count: Option<u64>,
    /// While ignored until a rate of events: that many within the window brings it back.
    pub ignored_until_rate: Option<SnoozeRate>,
    /// While ignored until a rate of users: that many distinct users within the window.
    pub ignored_until_user_rate: Option<SnoozeRate>,
    /// Archived until escalating: `ignored_until_rate` is the threshold its history gave.
    pub ignored_until_escalating: bool,
}

/// A rate that ends a snooze (Sentry's "N times per hour"): `count` within the last `window`
/// minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnoozeRate {
    pub count: u64,
    pub window: u32,
}

/// A member of the team an issue is assigned to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Assignee {
    pub id: Uuid,
    pub name: String,
    pub email: String,
}

/// How long an ignore lasts; neither: until someone changes it. Whichever comes first ends it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snooze {
    /// Minutes from now.
    pub minutes: Option<u32>,
    /// Events more.
    pub events: Option<u64>,
    /// Users affected more.
    pub users: Option<u64>,
    /// With `events`: minutes within which that many events end it (a rate), instead of that
    /// many more in all.
    pub window: Option<u32>,
    /// With `users`: minutes within which that many distinct users end it.
    pub user_window: Option<u32>,
    /// Until escalating (Sentry's default archive): until its events of an hour go well past
    /// its busiest hour of the week before (the store works the rate out).
    pub escalating: bool,
}

/// Longest snooze by time: a year, in minutes.
pub const SNOOZE_MINUTES_MAX: u32 = 525_600;
/// Most events a snooze may wait for, and most users.
pub const SNOOZE_EVENTS_MAX: u64 = 1_000_000_000;
/// Longest window of a snooze by rate: a week, in minutes.
pub const SNOOZE_WINDOW_MAX: u32 = 10_080;
/// Archived until escalating: an hour's events bring it back when they reach this many times
/// its busiest hour of the week before, and at least `ESCALATING_FLOOR`.
pub const ESCALATING_FACTOR: u64 = 2;
pub const ESCALATING_FLOOR: u64 = 10;
/// The hours of history an archive until escalating looks at.
pub const ESCALATING_HISTORY_HOURS: i64 = 7 * 24;
/// The window an archive until escalating counts its events in: the last hour.
pub const ESCALATING_WINDOW_MINUTES: u32 = 60;

impl Snooze {
    /// The snooze as given, or the field error naming what is out of range.
    pub fn new(
        minutes: Option<u32>,
        events: Option<u64>,
        users: Option<u64>,
    ) -> Result<Snooze, crate::error::Error> {
        if minutes.is_some_and(|m| !(1..=SNOOZE_MINUTES_MAX).contains(&m)) {
            return Err(crate::error::Error::invalid_field(
                "ignore_duration",
                format!("must be a number of minutes from 1 to {SNOOZE_MINUTES_MAX}"),
                "OUT_OF_RANGE",
            ));
        }
        if events.is_some_and(|n| !(1..=SNOOZE_EVENTS_MAX).contains(&n)) {
            return Err(crate::error::Error::invalid_field(
                "ignore_count",
                format!("must be a number of events from 1 to {SNOOZE_EVENTS_MAX}"),
                "OUT_OF_RANGE",
            ));
        }
        if users.is_some_and(|n| !(1..=SNOOZE_EVENTS_MAX).contains(&n)) {
            return Err(crate::error::Error::invalid_field(
                "ignore_user_count",
                format!("must be a number of users from 1 to {SNOOZE_EVENTS_MAX}"),
                "OUT_OF_RANGE",
            ));
        }
        Ok(Snooze {
            minutes,
            events,
            users,
            window: None,
            user_window: None,
            escalating: false,
        })
    }

    /// The snooze until escalating as well, when `on`; refused with a count of events, which
    /// escalating replaces.
    pub fn until_escalating(self, on: bool) -> Result<Snooze, crate::error::Error> {
        if on && self.events.is_some() {
            return Err(crate::error::Error::invalid_field(
                "until_escalating",
                "cannot be combined with ignore_count",
                "CONFLICT",
            ));
        }
        Ok(Snooze {
            escalating: on,
            ..self
        })
    }

    /// The snooze with windows (Sentry's `ignoreWindow`, `ignoreUserWindow`): `window` makes
    /// its count of events a count within that many minutes, `user_window` its count of
    /// users. A window needs its count; each is from 1 minute to a week.
    pub fn with_windows(
        self,
        window: Option<u32>,
        user_window: Option<u32>,
    ) -> Result<Snooze, crate::error::Error> {
        for (field, minutes, count, count_field) in [
            ("ignore_window", window, self.events, "ignore_count"),
            (
                "ignore_user_window",
                user_window,
                self.users,
                "ignore_user_count",
            ),
        ] {
            let Some(m) = minutes else { continue };
            if !(1..=SNOOZE_WINDOW_MAX).contains(&m) {
                return Err(crate::error::Error::invalid_field(
                    field,
                    format!("must be a number of minutes from 1 to {SNOOZE_WINDOW_MAX}"),
                    "OUT_OF_RANGE",
                ));
            }
            if count.is_none() {
                return Err(crate::error::Error::invalid_field(
                    count_field,
                    format!("is required with {field}"),
                    "REQUIRED",
                ));
            }
        }
        Ok(Snooze {
            window,
            user_window,
            ..self
        })
    }

    /// The rate of events that ends it, if its count has a window.
    pub fn rate(&self) -> Option<SnoozeRate> {
        Some(SnoozeRate {
            count: self.events?,
            window: self.window?,
        })
    }

    /// The rate of users that ends it, if its count of users has a window.
    pub fn user_rate(&self) -> Option<SnoozeRate> {
        Some(SnoozeRate {
            count: self.users?,
            window: self.user_window?,
        })
    }
}

/// Most groups one merge takes.
pub const MERGE_MAX: usize = 100;

/// Groups to merge into one: from 2 to `MERGE_MAX`, each once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeSet(Vec<Uuid>);

impl MergeSet {
    /// The groups as given, or the field error (`error_group_ids`) saying what is wrong.
    pub fn new(ids: Vec<Uuid>) -> Result<MergeSet, crate::error::Error> {
        let repeated = (1..ids.len()).find_map(|i| ids[..i].contains(&ids[i]).then_some(ids[i]));
        if let Some(id) = repeated {
            return Err(crate::error::Error::invalid_field(
                "error_group_ids",
                format!("names {id} twice"),
                "DUPLICATE",
            ));
        }
        if !(2..=MERGE_MAX).contains(&ids.len()) {
            return Err(crate::error::Error::invalid_field(
                "error_group_ids",
                format!("must name from 2 to {MERGE_MAX} groups"),
                "INVALID_COUNT",
            ));
        }
        Ok(MergeSet(ids))
    }

    pub fn ids(&self) -> &[Uuid] {
        &self.0
    }
}

/// Most grouping keys one unmerge moves.
pub const UNMERGE_MAX: usize = 100;

/// Grouping keys of a group to move to a new group (Sentry's unmerge): from 1 to
/// `UNMERGE_MAX` keys of 32 hexadecimal digits (as `ListGroupHashes` lists them), each once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmergeKeys(Vec<String>);

impl UnmergeKeys {
    /// The keys, lower-cased, or the field error (`hashes`) saying what is wrong.
    pub fn new(hashes: Vec<String>) -> Result<UnmergeKeys, crate::error::Error> {
        let invalid = |message: String, code: &str| {
            crate::error::Error::invalid_field("hashes", message, code)
        };
        if hashes.is_empty() {
            return Err(crate::error::Error::required("hashes"));
        }
        if hashes.len() > UNMERGE_MAX {
            return Err(invalid(
                format!("must name from 1 to {UNMERGE_MAX} keys"),
                "INVALID_COUNT",
            ));
        }
        let mut keys: Vec<String> = Vec::with_capacity(hashes.len());
        for h in hashes {
            let h = h.trim().to_ascii_lowercase();
            if h.len() != 32 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid(
                    format!("{h:?} is not a grouping key (32 hexadecimal digits)"),
                    "INVALID_FORMAT",
                ));
            }
            if keys.contains(&h) {
                return Err(invalid(format!("names {h} twice"), "DUPLICATE"));
            }
            keys.push(h);
        }
        Ok(UnmergeKeys(keys))
    }

    pub fn hashes(&self) -> &[String] {
        &self.0
    }
}

/// Aggregates of one group.
#[derive(Debug, Clone)]
pub struct GroupDetail {
    pub group: Group,
    pub top_tags: Vec<(String, String, u64)>,
    pub users_affected: u64,
    pub releases: Vec<String>,
    pub environments: Vec<String>,
    /// (start of hour, events), oldest first, one point per hour of the window.
    pub trend: Vec<(DateTime<Utc>, u64)>,
}

/// A project's retention policy. `days == 0` keeps events forever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub days: u32,
    pub auto_export: bool,
    pub export_destination: String,
    pub last_cleanup: Option<DateTime<Utc>>,
    pub last_cleanup_deleted: u64,
}

/// Result of committing one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub event_id: Uuid,
    pub group_id: Uuid,
    pub fingerprint: String,
    pub new_group: bool,
    /// The idempotency key was seen before; `event_id` is the earlier event's.
    pub duplicate: bool,
}

/// Milliseconds since the epoch to a UTC time (out-of-range values clamp to the epoch).
pub fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Retention of a new project, in days.
pub const DEFAULT_RETENTION_DAYS: u32 = 90;
