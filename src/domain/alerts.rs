//! Alert rules and incidents: what a rule counts, how its condition and window are read, how
//! the fields of a create or an update become a whole rule or incident, and the vocabularies
//! of severities and incident statuses. Pure; `store` keeps them and `jobs::alerts`
//! evaluates the rules.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Level;
use crate::{error::Error, integrations::Kind};

/// Shortest window a rule may count (the evaluation runs every few seconds).
pub const MIN_WINDOW_SECS: u64 = 60;
/// Longest window a rule may count.
pub const MAX_WINDOW_SECS: u64 = 86_400;
/// Window of a rule that names none.
pub const DEFAULT_WINDOW_SECS: u64 = 300;
/// Longest name, title or assignee, in characters.
pub const MAX_NAME: usize = 200;
/// Longest condition text, in characters.
pub const MAX_CONDITION: usize = 500;
/// Longest incident description, in characters.
pub const MAX_DESCRIPTION: usize = 20_000;

/// What a rule counts in its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Events of the project whose timestamp falls in the window.
    ErrorCount,
    /// Groups of the project first seen in the window.
    NewIssues,
    /// Resolved groups of the project that received an event in the window (and reopened).
    Regressions,
    /// The most events any one group of the project received in the window (Sentry's "the
    /// issue is seen more than N times in M minutes"): one loud issue, where `ErrorCount`
    /// also adds up many quiet ones.
    IssueEvents,
    /// The most users (distinct `user` values of its events) any one group of the project
    /// affected in the window (Sentry's "the issue is seen by more than N users in M
    /// minutes").
    IssueUsers,
    /// Ignored groups of the project that came back by themselves in the window: a snooze's
    /// time was up, or the group reached the count it was ignored until (Sentry's "the issue
    /// changes state from ignored to unresolved").
    Unignored,
    /// User feedback the project received in the window: what users wrote in the feedback
    /// widget or the crash-report dialog (Sentry's user feedback notifications).
    UserFeedback,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::ErrorCount => "error_count",
            Metric::NewIssues => "new_issues",
            Metric::Regressions => "regressions",
            Metric::IssueEvents => "issue_events",
            Metric::IssueUsers => "issue_users",
            Metric::Unignored => "unignored",
            Metric::UserFeedback => "user_feedback",
        }
    }

    pub fn parse(s: &str) -> Option<Metric> {
        match s.trim().to_ascii_lowercase().as_str() {
            "error_count" | "errors" | "event_count" => Some(Metric::ErrorCount),
            "new_issues" | "new_issue" | "new_groups" => Some(Metric::NewIssues),
            "regressions" | "regression" | "regressed_issues" => Some(Metric::Regressions),
            "issue_events" | "issue_event_count" | "issue_frequency" | "events_per_issue" => {
                Some(Metric::IssueEvents)
            }
            "issue_users" | "issue_user_count" | "users_per_issue" | "unique_users" => {
                Some(Metric::IssueUsers)
            }
            "unignored" | "unignored_issues" | "reappeared" => Some(Metric::Unignored),
            "user_feedback" | "feedback" | "user_reports" => Some(Metric::UserFeedback),
            _ => None,
        }
    }

    /// What `count` of this metric is called in a notification ("1 error", "3 new issues").
    pub fn noun(self, count: u64) -> &'static str {
        match (self, count == 1) {
            (Metric::ErrorCount, true) => "error",
            (Metric::ErrorCount, false) => "errors",
            (Metric::NewIssues, true) => "new issue",
            (Metric::NewIssues, false) => "new issues",
            (Metric::Regressions, true) => "regressed issue",
            (Metric::Regressions, false) => "regressed issues",
            (Metric::IssueEvents, true) => "event in one issue",
            (Metric::IssueEvents, false) => "events in one issue",
            (Metric::IssueUsers, true) => "user of one issue",
            (Metric::IssueUsers, false) => "users of one issue",
            (Metric::Unignored, true) => "issue back from ignored",
            (Metric::Unignored, false) => "issues back from ignored",
            (Metric::UserFeedback, true) => "user feedback report",
            (Metric::UserFeedback, false) => "user feedback reports",
        }
    }

    /// What a named group's own count is of, for the metrics that count per group.
    pub fn per_group_unit(self) -> &'static str {
        match self {
            Metric::IssueUsers => "users",
            _ => "events",
        }
    }
}

/// A condition as read: its metric and, when written with numbers, its threshold and window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub metric: Metric,
    pub threshold: Option<u64>,
    pub window_secs: Option<u64>,
}

const CONDITION_FORM: &str = "must be `error_count`, `new_issues`, `regressions`, `issue_events`, `issue_users`, `unignored` or `user_feedback`, optionally followed by `> <threshold> in <time_window>` (e.g. `error_count > 50 in 5 minutes`)";

/// Reads `<metric> [> <threshold> [in <window>]]`. `threshold` and `time_window` written as
/// words (the document's `error_count > threshold in time_window`) leave them to the fields.
pub fn parse_condition(text: &str) -> Result<Condition, String> {
    let spaced = text.replace('>', " > ");
    let mut words = spaced.split_whitespace();
    let metric = words
        .next()
        .and_then(Metric::parse)
        .ok_or_else(|| CONDITION_FORM.to_owned())?;
    let mut condition = Condition {
        metric,
        threshold: None,
        window_secs: None,
    };
    match words.next() {
        None => return Ok(condition),
        Some(">") => {}
        Some(_) => return Err(CONDITION_FORM.to_owned()),
    }
    condition.threshold = match words.next() {
        Some(w) if w.eq_ignore_ascii_case("threshold") => None,
        Some(w) => Some(
            w.parse::<u64>()
                .map_err(|_| format!("threshold {w:?} is not a whole number"))?,
        ),
        None => return Err(CONDITION_FORM.to_owned()),
    };
    match words.next() {
        None => return Ok(condition),
        Some(w) if w.eq_ignore_ascii_case("in") => {}
        Some(_) => return Err(CONDITION_FORM.to_owned()),
    }
    let rest = words.collect::<Vec<_>>().join(" ");
    condition.window_secs = match rest.as_str() {
        "" => return Err(CONDITION_FORM.to_owned()),
        w if w.eq_ignore_ascii_case("time_window") => None,
        w => Some(parse_window(w)?),
    };
    Ok(condition)
}

/// Reads a window: a whole number and a unit (`30s`, `5m`, `5 minutes`, `1h`, `1 hour`, `1d`),
/// from [`MIN_WINDOW_SECS`] to [`MAX_WINDOW_SECS`].
pub fn parse_window(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let form = || format!("{t:?} is not a window such as 5m, 30 minutes or 1h");
    let n: u64 = number.parse().map_err(|_| form())?;
    let unit_secs = match unit.trim().to_ascii_lowercase().as_str() {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600,
        "d" | "day" | "days" => 86_400,
        _ => return Err(form()),
    };
    let secs = n.checked_mul(unit_secs).ok_or_else(form)?;
    if !(MIN_WINDOW_SECS..=MAX_WINDOW_SECS).contains(&secs) {
        return Err(format!("{t:?} must be between 1 minute and 24 hours"));
    }
    Ok(secs)
}

/// A window in its shortest form: `5m`, `1h`, `90s`, `1d`.
pub fn format_window(secs: u64) -> String {
    match secs {
        0 => "0s".into(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// How serious an incident is.
pub const SEVERITIES: [&str; 4] = ["critical", "high", "medium", "low"];
/// Where an incident stands; only `resolved` closes it.
pub const INCIDENT_STATUSES: [&str; 5] = [
    "open",
    "investigating",
    "identified",
    "monitoring",
    "resolved",
];
/// The status that closes an incident.
pub const RESOLVED: &str = "resolved";

fn one_of(field: &str, value: &str, allowed: &[&str]) -> Result<String, Error> {
    let v = value.trim().to_ascii_lowercase();
    if allowed.contains(&v.as_str()) {
        Ok(v)
    } else {
        Err(Error::invalid_field(
            field,
            format!("must be one of {}", allowed.join(", ")),
            "INVALID_ENUM",
        ))
    }
}

/// An incident status as given (any case, spaces around), or the field error naming `field`.
pub fn incident_status(field: &str, value: &str) -> Result<String, Error> {
    one_of(field, value, &INCIDENT_STATUSES)
}

fn text(field: &str, value: &str, max: usize, required: bool) -> Result<String, Error> {
    let v = value.trim();
    if required && v.is_empty() {
        return Err(Error::required(field));
    }
    if v.chars().count() > max {
        return Err(Error::invalid_field(
            field,
            format!("must be at most {max} characters"),
            "TOO_LONG",
        ));
    }
    Ok(v.to_owned())
}

/// Most tags a rule may require.
pub const MAX_RULE_TAGS: usize = 10;

/// A rule's tags, checked as an event's are (keys and values trimmed; at most
/// [`MAX_RULE_TAGS`]; a value is required).
fn rule_tags(tags: BTreeMap<String, String>) -> Result<BTreeMap<String, String>, Error> {
    use super::event::limits::{TAG_KEY_MAX, TAG_VALUE_MAX};
    if tags.len() > MAX_RULE_TAGS {
        return Err(Error::invalid_field(
            "tags",
            format!("at most {MAX_RULE_TAGS} tags"),
            "TOO_MANY",
        ));
    }
    let mut out = BTreeMap::new();
    for (k, v) in tags {
        let (k, v) = (k.trim().to_owned(), v.trim().to_owned());
        if k.is_empty() || k.len() > TAG_KEY_MAX {
            return Err(Error::invalid_field(
                &format!("tags.{k}"),
                format!("tag keys must be 1 to {TAG_KEY_MAX} bytes"),
                "INVALID_TAG",
            ));
        }
        if v.is_empty() || v.len() > TAG_VALUE_MAX {
            return Err(Error::invalid_field(
                &format!("tags.{k}"),
                format!("tag values must be 1 to {TAG_VALUE_MAX} bytes"),
                "INVALID_TAG",
            ));
        }
        out.insert(k, v);
    }
    Ok(out)
}

/// The fields a create or an update gives; `None` is "not given".
#[derive(Debug, Clone, Default)]
pub struct RuleFields {
    pub name: Option<String>,
    pub condition: Option<String>,
    pub threshold: Option<u64>,
    pub time_window: Option<String>,
    pub notifications: Option<Vec<String>>,
    pub enabled: Option<bool>,
    pub severity: Option<String>,
    /// Only events of this environment; `""` counts every environment.
    pub environment: Option<String>,
    /// Only events of at least this level; `""` counts every level.
    pub level: Option<String>,
    /// Only events with each of these tags; empty counts every event.
    pub tags: Option<BTreeMap<String, String>>,
}

/// A whole, valid rule as it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    pub name: String,
    pub condition: String,
    pub metric: Metric,
    pub threshold: u64,
    pub window_secs: u64,
    pub enabled: bool,
    pub notifications: Vec<Kind>,
    pub severity: String,
    /// What the rule counts is limited to events of this environment (Sentry's "the event's
    /// environment is"); for the metrics that count issues, issues with an event of it.
    pub environment: Option<String>,
    /// ... and to events of at least this level (Sentry's "the event's level is greater than
    /// or equal to"); for the metrics that count issues, the issue's level (its newest
    /// event's).
    pub level: Option<Level>,
    /// ... and to events with each of these tags (Sentry's "the event's tags match"); for the
    /// metrics that count issues, issues with an event of each.
    pub tags: BTreeMap<String, String>,
}

impl RuleSpec {
    /// The levels the rule counts, lowest first; `None` when it counts every level.
    pub fn levels(&self) -> Option<Vec<Level>> {
        self.level
            .map(|min| Level::ALL.into_iter().filter(|l| *l >= min).collect())
    }

    /// What the rule's filters keep, for a notice: ` (production, error and above)`, or
    /// nothing when it has none.
    pub fn scope(&self) -> String {
        let mut parts = Vec::new();
        if let Some(env) = &self.environment {
            parts.push(format!("environment {env}"));
        }
        match self.level {
            Some(Level::Fatal) => parts.push("level fatal".to_owned()),
            Some(l) => parts.push(format!("level {} and above", l.as_str())),
            None => {}
        }
        for (k, v) in &self.tags {
            parts.push(format!("tag {k}={v}"));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", parts.join(", "))
        }
    }
}

/// A stored rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: Uuid,
    pub project_id: Uuid,
    pub spec: RuleSpec,
    pub last_triggered: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl RuleFields {
    /// The rule these fields make: a new one (`current` is `None`), or `current` with the given
    /// fields replaced. A threshold or window written in the condition must agree with the
    /// field of the same name when both are given.
    pub fn resolve(self, current: Option<&RuleSpec>) -> Result<RuleSpec, Error> {
        let name = match (self.name, current) {
            (Some(n), _) => text("name", &n, MAX_NAME, true)?,
            (None, Some(c)) => c.name.clone(),
            (None, None) => return Err(Error::required("name")),
        };
        let condition_text = match (self.condition, current) {
            (Some(c), _) => text("condition", &c, MAX_CONDITION, true)?,
            (None, Some(c)) => c.condition.clone(),
            (None, None) => return Err(Error::required("condition")),
        };
        let condition = parse_condition(&condition_text)
            .map_err(|m| Error::invalid_field("condition", m, "INVALID_CONDITION"))?;
        let threshold = match (self.threshold, condition.threshold) {
            (Some(t), Some(c)) if t != c => {
                return Err(Error::invalid_field(
                    "threshold",
                    format!("is {t} but the condition says > {c}"),
                    "CONFLICT",
                ));
            }
            (Some(t), _) | (None, Some(t)) => t,
            (None, None) => match current {
                // A new condition without a number keeps the stored threshold.
                Some(c) => c.threshold,
                None => 0,
            },
        };
        let given_window = self
            .time_window
            .as_deref()
            .map(parse_window)
            .transpose()
            .map_err(|m| Error::invalid_field("time_window", m, "INVALID_WINDOW"))?;
        let window_secs = match (given_window, condition.window_secs) {
            (Some(w), Some(c)) if w != c => {
                return Err(Error::invalid_field(
                    "time_window",
                    format!(
                        "is {} but the condition says in {}",
                        format_window(w),
                        format_window(c)
                    ),
                    "CONFLICT",
                ));
            }
            (Some(w), _) | (None, Some(w)) => w,
            (None, None) => current.map_or(DEFAULT_WINDOW_SECS, |c| c.window_secs),
        };
        let notifications = match (self.notifications, current) {
            (Some(list), _) => {
                let mut kinds = Vec::new();
                for (i, n) in list.iter().enumerate() {
                    let kind = Kind::parse(n).ok_or_else(|| {
                        Error::invalid_field(
                            &format!("notifications[{i}]"),
                            "must be one of slack, email, webhook",
                            "INVALID_ENUM",
                        )
                    })?;
                    if !kinds.contains(&kind) {
                        kinds.push(kind);
                    }
                }
                kinds
            }
            (None, Some(c)) => c.notifications.clone(),
            (None, None) => Vec::new(),
        };
        let severity = match (self.severity, current) {
            (Some(s), _) => one_of("severity", &s, &SEVERITIES)?,
            (None, Some(c)) => c.severity.clone(),
            (None, None) => "high".into(),
        };
        let environment = match (self.environment, current) {
            (Some(e), _) => {
                Some(text("environment", &e, MAX_NAME, false)?).filter(|e| !e.is_empty())
            }
            (None, Some(c)) => c.environment.clone(),
            (None, None) => None,
        };
        let level = match (self.level, current) {
            (Some(l), _) if l.trim().is_empty() => None,
            (Some(l), _) => Some(Level::parse(&l).ok_or_else(|| {
                Error::invalid_field(
                    "level",
                    "must be one of debug, info, warning, error, fatal (or empty for any)",
                    "INVALID_ENUM",
                )
            })?),
            (None, Some(c)) => c.level,
            (None, None) => None,
        };
        let tags = match (self.tags, current) {
            (Some(t), _) => rule_tags(t)?,
            (None, Some(c)) => c.tags.clone(),
            (None, None) => BTreeMap::new(),
        };
        // Feedback has no environment, level or tags of its own.
        if condition.metric == Metric::UserFeedback {
            let not_used = |field: &str| {
                Error::invalid_field(
                    field,
                    "does not apply to user_feedback (leave it empty)",
                    "NOT_APPLICABLE",
                )
            };
            if environment.is_some() {
                return Err(not_used("environment"));
            }
            if level.is_some() {
                return Err(not_used("level"));
            }
            if !tags.is_empty() {
                return Err(not_used("tags"));
            }
        }
        Ok(RuleSpec {
            name,
            condition: condition_text,
            metric: condition.metric,
            threshold,
            window_secs,
            enabled: self
                .enabled
                .unwrap_or_else(|| current.is_none_or(|c| c.enabled)),
            notifications,
            severity,
            environment,
            level,
            tags,
        })
    }
}

/// The fields a create or an update of an incident gives; `None` is "not given".
#[derive(Debug, Clone, Default)]
pub struct IncidentFields {
    pub title: Option<String>,
    pub severity: Option<String>,
    pub status: Option<String>,
    pub description: Option<String>,
    pub assigned_to: Option<String>,
}

/// A whole, valid incident as it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentSpec {
    pub title: String,
    pub severity: String,
    pub status: String,
    pub description: String,
    pub assigned_to: String,
}

/// A stored incident.
#[derive(Debug, Clone)]
pub struct Incident {
    pub id: Uuid,
    pub project_id: Uuid,
    pub rule_id: Option<Uuid>,
    pub spec: IncidentSpec,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

impl IncidentFields {
    /// The incident these fields make: a new one, or `current` with the given fields replaced.
    pub fn resolve(self, current: Option<&IncidentSpec>) -> Result<IncidentSpec, Error> {
        let keep = |given: Option<String>,
                    stored: Option<&String>,
                    check: &dyn Fn(&str) -> Result<String, Error>,
                    default: &str|
         -> Result<String, Error> {
            match (given, stored) {
                (Some(v), _) => check(&v),
                (None, Some(s)) => Ok(s.clone()),
                (None, None) => check(default),
            }
        };
        Ok(IncidentSpec {
            title: keep(
                self.title,
                current.map(|c| &c.title),
                &|v| text("title", v, MAX_NAME, true),
                "",
            )?,
            severity: keep(
                self.severity,
                current.map(|c| &c.severity),
                &|v| one_of("severity", v, &SEVERITIES),
                "medium",
            )?,
            status: keep(
                self.status,
                current.map(|c| &c.status),
                &|v| incident_status("status", v),
                "open",
            )?,
            description: keep(
                self.description,
                current.map(|c| &c.description),
                &|v| text("description", v, MAX_DESCRIPTION, false),
                "",
            )?,
            assigned_to: keep(
                self.assigned_to,
                current.map(|c| &c.assigned_to),
                &|v| text("assigned_to", v, MAX_NAME, false),
                "",
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(e: Error) -> String {
        match e {
            Error::Invalid { violations, .. } => violations[0].field.clone(),
            other => panic!("not a field error: {other:?}"),
        }
    }

    #[test]
    fn conditions_read_as_documented() {
        let c = parse_condition("error_count > 50 in 5 minutes").unwrap();
        assert_eq!(
            c,
            Condition {
                metric: Metric::ErrorCount,
                threshold: Some(50),
                window_secs: Some(300)
            }
        );
        let c = parse_condition("error_count > threshold in time_window").unwrap();
        assert_eq!((c.threshold, c.window_secs), (None, None));
        assert_eq!(
            parse_condition("regressions > 0 in 10m").unwrap().metric,
            Metric::Regressions
        );
        let c = parse_condition("new_issues>0 in 1h").unwrap();
        assert_eq!(
            (c.metric, c.threshold, c.window_secs),
            (Metric::NewIssues, Some(0), Some(3600))
        );
        assert_eq!(parse_condition("error_count").unwrap().threshold, None);
        let c = parse_condition("issue_events > 100 in 1h").unwrap();
        assert_eq!(
            (c.metric, c.threshold, c.window_secs),
            (Metric::IssueEvents, Some(100), Some(3600))
        );
        assert_eq!(Metric::parse("issue_frequency"), Some(Metric::IssueEvents));
        let c = parse_condition("unignored > 0 in 10m").unwrap();
        assert_eq!(
            (c.metric, c.threshold, c.window_secs),
            (Metric::Unignored, Some(0), Some(600))
        );
        for bad in [
            "",
            "cpu > 5",
            "error_count < 5",
            "error_count > many",
            "error_count > 5 during 5m",
            "error_count > 5 in",
            "error_count > 5 in 5 fortnights",
            "error_count > 5 in 10s",
            "error_count > 5 in 2d",
        ] {
            assert!(parse_condition(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn windows_round_trip_in_their_shortest_form() {
        assert_eq!(parse_window("5m"), Ok(300));
        assert_eq!(parse_window("30 minutes"), Ok(1800));
        assert_eq!(parse_window("1 hour"), Ok(3600));
        assert_eq!(parse_window("90s"), Ok(90));
        assert_eq!(parse_window("1d"), Ok(86_400));
        assert!(parse_window("59s").is_err());
        assert!(parse_window("99999999999999999999m").is_err());
        assert!(parse_window("m").is_err());
        assert_eq!(format_window(300), "5m");
        assert_eq!(format_window(3600), "1h");
        assert_eq!(format_window(90), "90s");
        assert_eq!(format_window(86_400), "1d");
    }

    #[test]
    fn a_new_rule_takes_numbers_from_its_condition_or_its_fields() {
        let spec = RuleFields {
            name: Some(" High Error Rate ".into()),
            condition: Some("error_count > 50 in 5 minutes".into()),
            threshold: Some(50),
            time_window: Some("5m".into()),
            notifications: Some(vec!["email".into(), "Slack".into(), "email".into()]),
            ..Default::default()
        }
        .resolve(None)
        .unwrap();
        assert_eq!(spec.name, "High Error Rate");
        assert_eq!((spec.threshold, spec.window_secs), (50, 300));
        assert_eq!(spec.notifications, vec![Kind::Email, Kind::Slack]);
        assert!(spec.enabled);
        assert_eq!(spec.severity, "high");

        let generic = RuleFields {
            name: Some("r".into()),
            condition: Some("error_count > threshold in time_window".into()),
            threshold: Some(7),
            time_window: Some("1h".into()),
            ..Default::default()
        }
        .resolve(None)
        .unwrap();
        assert_eq!((generic.threshold, generic.window_secs), (7, 3600));

        let bare = RuleFields {
            name: Some("r".into()),
            condition: Some("new_issues".into()),
            ..Default::default()
        }
        .resolve(None)
        .unwrap();
        assert_eq!((bare.threshold, bare.window_secs), (0, DEFAULT_WINDOW_SECS));
    }

    #[test]
    fn rule_fields_that_disagree_or_are_missing_are_refused_by_name() {
        let base = || RuleFields {
            name: Some("r".into()),
            condition: Some("error_count > 50 in 5m".into()),
            ..Default::default()
        };
        let cases = [
            (
                RuleFields {
                    threshold: Some(60),
                    ..base()
                },
                "threshold",
            ),
            (
                RuleFields {
                    time_window: Some("10m".into()),
                    ..base()
                },
                "time_window",
            ),
            (
                RuleFields {
                    notifications: Some(vec!["pager".into()]),
                    ..base()
                },
                "notifications[0]",
            ),
            (
                RuleFields {
                    severity: Some("urgent".into()),
                    ..base()
                },
                "severity",
            ),
            (
                RuleFields {
                    name: None,
                    ..base()
                },
                "name",
            ),
            (
                RuleFields {
                    name: Some("  ".into()),
                    ..base()
                },
                "name",
            ),
            (
                RuleFields {
                    condition: Some("cpu > 3".into()),
                    ..base()
                },
                "condition",
            ),
        ];
        for (fields, field) in cases {
            assert_eq!(field_of(fields.resolve(None).unwrap_err()), field);
        }
    }

    #[test]
    fn an_update_changes_only_what_it_gives() {
        let stored = RuleFields {
            name: Some("r".into()),
            condition: Some("error_count > 50 in 5m".into()),
            notifications: Some(vec!["webhook".into()]),
            ..Default::default()
        }
        .resolve(None)
        .unwrap();
        let off = RuleFields {
            enabled: Some(false),
            ..Default::default()
        }
        .resolve(Some(&stored))
        .unwrap();
        assert_eq!(
            off,
            RuleSpec {
                enabled: false,
                ..stored.clone()
            }
        );
        let generic = RuleFields {
            condition: Some("error_count > threshold in time_window".into()),
            threshold: Some(10),
            ..Default::default()
        }
        .resolve(Some(&stored))
        .unwrap();
        assert_eq!((generic.threshold, generic.window_secs), (10, 300));
        assert_eq!(generic.notifications, vec![Kind::Webhook]);
    }

    #[test]
    fn filters_are_set_kept_and_cleared() {
        let stored = RuleFields {
            name: Some("prod".into()),
            condition: Some("error_count > 5".into()),
            environment: Some(" production ".into()),
            level: Some("WARN".into()),
            ..Default::default()
        }
        .resolve(None)
        .unwrap();
        assert_eq!(stored.environment.as_deref(), Some("production"));
        assert_eq!(stored.level, Some(Level::Warning));
        assert_eq!(
            stored.levels(),
            Some(vec![Level::Warning, Level::Error, Level::Fatal])
        );
        assert_eq!(
            stored.scope(),
            " (environment production, level warning and above)"
        );
        let kept = RuleFields {
            severity: Some("low".into()),
            ..Default::default()
        }
        .resolve(Some(&stored))
        .unwrap();
        assert_eq!(
            (kept.environment, kept.level),
            (stored.environment.clone(), stored.level)
        );
        let cleared = RuleFields {
            environment: Some(String::new()),
            level: Some(" ".into()),
            ..Default::default()
        }
        .resolve(Some(&stored))
        .unwrap();
        assert_eq!(cleared.scope(), "");
        assert_eq!(
            (cleared.levels(), cleared.environment, cleared.level),
            (None, None, None)
        );
        let bad = RuleFields {
            level: Some("loud".into()),
            ..Default::default()
        }
        .resolve(Some(&stored))
        .unwrap_err();
        assert!(format!("{bad:?}").contains("INVALID_ENUM"), "{bad:?}");
    }

    #[test]
    fn incidents_default_and_update_field_by_field() {
        let new = IncidentFields {
            title: Some("Database Connection Timeout".into()),
            severity: Some("CRITICAL".into()),
            ..Default::default()
        }
        .resolve(None)
        .unwrap();
        assert_eq!(
            (new.severity.as_str(), new.status.as_str()),
            ("critical", "open")
        );
        let moved = IncidentFields {
            status: Some("investigating".into()),
            assigned_to: Some("user-123".into()),
            ..Default::default()
        }
        .resolve(Some(&new))
        .unwrap();
        assert_eq!(moved.title, new.title);
        assert_eq!(moved.status, "investigating");
        assert_eq!(moved.assigned_to, "user-123");
        let no_title = IncidentFields::default().resolve(None).unwrap_err();
        assert_eq!(field_of(no_title), "title");
        let bad = IncidentFields {
            status: Some("closed".into()),
            ..Default::default()
        };
        assert_eq!(field_of(bad.resolve(Some(&new)).unwrap_err()), "status");
    }
}
