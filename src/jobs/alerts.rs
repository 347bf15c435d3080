//! The alert job: every interval it counts, for each enabled rule, what the rule counts in its
//! window (after a firing: since that firing, which is the window and the job's delay). A rule
//! whose count exceeds its threshold fires, at most once per window:
//! - it notifies each of its channels through the project's integrations;
//! - then it opens an incident titled after the rule, or, while the rule's last incident is not
//!   resolved, adds to that incident's description: the count, and how each notice went.
//!
//! Once a whole window after a firing counts no more than the threshold, the condition no
//! longer holds: the incident the rule opened is resolved, and its channels are told so (as
//! Sentry resolves a metric alert's incident when the metric recovers).
//!
//! Several servers sharing one database evaluate the same rules; a firing is claimed with a
//! compare-and-set on the rule's `last_triggered`, and a resolution with one on the incident's
//! status and `updated_at`, so only one of them sends either.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::{
    domain::{
        alerts::{Incident, IncidentSpec, MAX_DESCRIPTION, RESOLVED, Rule, format_window},
        model::from_millis,
    },
    error::Error,
    integrations::{Kind, send},
    store::{NamedGroup, Store},
};

/// Counting stops here when the threshold is lower: a notification says "10000 or more".
const COUNT_CAP: u64 = 10_000;
/// Groups (new or regressed issues) named in a notification.
const GROUPS_NAMED: u64 = 5;

/// What a firing or a resolution did to the rule's incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The rule fired and opened an incident.
    Opened,
    /// The rule fired while its incident was open, and added to it.
    Added,
    /// A window after the last firing counted no more than the threshold: the incident the
    /// rule opened is resolved.
    Resolved,
}

/// What one firing (or resolution) did.
#[derive(Debug, Clone)]
pub struct Firing {
    pub incident_id: Uuid,
    pub action: Action,
    /// What the rule counted: above its threshold, or at or below it for a resolution.
    pub count: u64,
    /// Each channel of the rule and how its delivery went.
    pub deliveries: Vec<(Kind, Result<(), String>)>,
}

/// Evaluates the rules every `interval` until the task is aborted.
pub async fn run(store: Store, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = evaluate(&store, Utc::now()).await {
            tracing::warn!(error = %e, "alert rules could not be read");
        }
    }
}

/// Evaluates every enabled rule once, as of `now`; what fired.
pub async fn evaluate(store: &Store, now: DateTime<Utc>) -> Result<Vec<Firing>, Error> {
    let mut fired = Vec::new();
    for rule in store.enabled_rules().await? {
        match evaluate_rule(store, &rule, now).await {
            Ok(Some(f)) => {
                let failed = f.deliveries.iter().filter(|(_, r)| r.is_err()).count();
                tracing::info!(rule = %rule.id, project = %rule.project_id, count = f.count,
                    incident = %f.incident_id, action = ?f.action, channels = f.deliveries.len(),
                    failed, "alert rule fired or resolved");
                fired.push(f);
            }
            Ok(None) => {}
            Err(e) => tracing::error!(rule = %rule.id, error = %e, "alert rule evaluation failed"),
        }
    }
    Ok(fired)
}

async fn evaluate_rule(
    store: &Store,
    rule: &Rule,
    now: DateTime<Utc>,
) -> Result<Option<Firing>, Error> {
    let spec = &rule.spec;
    let now_ms = now.timestamp_millis();
    let window_ms = i64::try_from(spec.window_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let last = rule.last_triggered.map(|t| t.timestamp_millis());
    if last.is_some_and(|t| now_ms.saturating_sub(t) < window_ms) {
        return Ok(None);
    }
    // Counted from the last firing when it is recent: the job runs a little after the window
    // has passed, and what came in between must not fall through (a new issue right after a
    // firing would otherwise never be reported).
    let since_ms = match last {
        Some(t) if now_ms.saturating_sub(t) < window_ms.saturating_mul(2) => t + 1,
        _ => now_ms.saturating_sub(window_ms),
    };
    let cap = spec.threshold.saturating_add(1).max(COUNT_CAP);
    let counted = store
        .count_for_alert(rule, since_ms, now_ms, cap, GROUPS_NAMED)
        .await?;
    let count = counted.count;
    // What was counted: the window, or a little more after a firing.
    let span = format_window(
        u64::try_from(now_ms.saturating_sub(since_ms).saturating_add(999) / 1000)
            .unwrap_or(spec.window_secs),
    );
    if count <= spec.threshold {
        // Only a rule that has fired can have an incident to resolve.
        return match last {
            Some(_) => resolve_quiet(store, rule, now, since_ms, count, &span).await,
            None => Ok(None),
        };
    }
    if !store.claim_firing(rule.id, last, now_ms).await? {
        return Ok(None);
    }

    let or_more = |n: u64| {
        if n >= cap {
            format!("{n} or more")
        } else {
            n.to_string()
        }
    };
    let shown = or_more(count);
    // The groups the count named, a line each ("- title (id)", with its own count for
    // `issue_events` and `issue_users`).
    let mut groups = Vec::new();
    let mut named = String::new();
    for NamedGroup { id, title, count } in counted.groups {
        named.push_str(&format!("\n- {title} ({id})"));
        let mut group = json!({"id": id, "title": title});
        if let Some(n) = count {
            named.push_str(&format!(
                ": {} {}",
                or_more(n),
                spec.metric.per_group_unit()
            ));
            group["count"] = json!(n);
        }
        groups.push(group);
    }

    // The incident this firing opens or adds to; it is written after the notices go out, so
    // it records how each was delivered (and a failed write does not hold the notices back).
    let open = store.open_incident_of_rule(rule.id).await?;
    let opened = open.is_none();
    let incident_id = open.as_ref().map_or_else(Uuid::new_v4, |i| i.id);
    let severity = open
        .as_ref()
        .map_or(spec.severity.as_str(), |i| i.spec.severity.as_str());

    let subject = format!("[Faultline] {}", spec.name);
    let text = format!(
        "Alert rule \"{}\" fired: {shown} {}{} in the last {span}, above its threshold of {}.\nIncident {incident_id} ({}).{named}",
        spec.name,
        spec.metric.noun(count),
        spec.scope(),
        spec.threshold,
        if opened { "opened" } else { "still open" },
    );
    let mut data = notice_data(rule, count, since_ms);
    data["incident"] = json!({"id": incident_id, "opened": opened, "severity": severity});
    data["groups"] = json!(groups);
    data["fired_at"] = json!(now.to_rfc3339_opts(SecondsFormat::Millis, true));
    let notice = send::Notice {
        event: "alert",
        subject: &subject,
        text: &text,
        data: Some(&data),
    };
    let deliveries = notify(store, rule, &notice).await;
    // What the incident records of this firing.
    let mut line = format!(
        "{}: {shown} {}{} in the last {span} (threshold {}).{named}",
        now.to_rfc3339_opts(SecondsFormat::Secs, true),
        spec.metric.noun(count),
        spec.scope(),
        spec.threshold
    );
    if let Some(notified) = notified(&deliveries) {
        line.push('\n');
        line.push_str(&notified);
    }

    match open {
        Some(open) => append_line(store, &open, &line).await?,
        None => {
            let new = IncidentSpec {
                title: spec.name.clone(),
                severity: spec.severity.clone(),
                status: "open".into(),
                description: line,
                assigned_to: String::new(),
            };
            store
                .create_incident(incident_id, rule.project_id, Some(rule.id), &new)
                .await?;
        }
    }
    Ok(Some(Firing {
        incident_id,
        action: if opened {
            Action::Opened
        } else {
            Action::Added
        },
        count,
        deliveries,
    }))
}

/// After a window that counted `count`, no more than the threshold: resolves the incident the
/// rule opened, if it is still open, and tells the rule's channels.
async fn resolve_quiet(
    store: &Store,
    rule: &Rule,
    now: DateTime<Utc>,
    since_ms: i64,
    count: u64,
    span: &str,
) -> Result<Option<Firing>, Error> {
    let Some(open) = store.open_incident_of_rule(rule.id).await? else {
        return Ok(None);
    };
    let spec = &rule.spec;
    let what = format!(
        "{count} {}{} in the last {span}, at or below the threshold of {}",
        spec.metric.noun(count),
        spec.scope(),
        spec.threshold
    );
    let line = format!(
        "{}: resolved: {what}.",
        now.to_rfc3339_opts(SecondsFormat::Secs, true)
    );
    // The claim comes first: of several servers, only the one whose claim holds tells the
    // channels.
    if !store
        .claim_resolution(&open, &appended(&open, &line), now.timestamp_millis())
        .await?
    {
        return Ok(None);
    }

    let subject = format!("[Faultline] Resolved: {}", spec.name);
    let text = format!(
        "Alert rule \"{}\" resolved: {what}.\nIncident {} resolved.",
        spec.name, open.id
    );
    let mut data = notice_data(rule, count, since_ms);
    data["incident"] = json!({"id": open.id, "status": RESOLVED, "severity": open.spec.severity});
    data["resolved_at"] = json!(now.to_rfc3339_opts(SecondsFormat::Millis, true));
    let notice = send::Notice {
        event: "alert_resolved",
        subject: &subject,
        text: &text,
        data: Some(&data),
    };
    let deliveries = notify(store, rule, &notice).await;
    if let Some(notified) = notified(&deliveries) {
        append_line(store, &open, &notified).await?;
    }
    Ok(Some(Firing {
        incident_id: open.id,
        action: Action::Resolved,
        count,
        deliveries,
    }))
}

/// After a person changed a rule, resolves the incident it opened if the rule no longer
/// watches what opened it: it is disabled now (no evaluation would ever resolve the incident),
/// or what it counts (metric, threshold, window, environment or level) changed. Sentry closes a metric alert's
/// active incident when its rule is updated, in the same way. No notice goes out: the person
/// who changed the rule knows; the incident's description says why it was resolved. Returns
/// the incident resolved.
pub async fn settle_changed_rule(
    store: &Store,
    before: &Rule,
    after: &Rule,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>, Error> {
    let (was, after) = (&before.spec, &after.spec);
    let watched = |s: &crate::domain::alerts::RuleSpec| {
        format!(
            "{} > {} in {}{}",
            s.metric.as_str(),
            s.threshold,
            format_window(s.window_secs),
            s.scope()
        )
    };
    let reason = if !after.enabled {
        "the rule was disabled"
    } else if (
        was.metric,
        was.threshold,
        was.window_secs,
        &was.environment,
        was.level,
    ) != (
        after.metric,
        after.threshold,
        after.window_secs,
        &after.environment,
        after.level,
    ) {
        "the rule's condition changed"
    } else {
        return Ok(None);
    };
    let Some(open) = store.open_incident_of_rule(before.id).await? else {
        return Ok(None);
    };
    let line = format!(
        "{}: resolved: {reason} (it watched {}{}).",
        now.to_rfc3339_opts(SecondsFormat::Secs, true),
        watched(was),
        if after.enabled {
            format!(", now {}", watched(after))
        } else {
            String::new()
        }
    );
    let claimed = store
        .claim_resolution(&open, &appended(&open, &line), now.timestamp_millis())
        .await?;
    Ok(claimed.then_some(open.id))
}

/// What a notice's `data` says of the rule and what it counted since `since_ms`; the firing or
/// resolution adds the rest.
fn notice_data(rule: &Rule, count: u64, since_ms: i64) -> serde_json::Value {
    let spec = &rule.spec;
    json!({
        "rule": {"id": rule.id, "name": spec.name, "condition": spec.condition,
                 "threshold": spec.threshold, "time_window": format_window(spec.window_secs),
                 "environment": spec.environment, "level": spec.level.map(|l| l.as_str()),
                 "tags": spec.tags},
        "project_id": rule.project_id,
        "metric": spec.metric.as_str(),
        "count": count,
        "counted_since": from_millis(since_ms).to_rfc3339_opts(SecondsFormat::Millis, true),
    })
}

/// Sends `notice` over each of the rule's channels at once, each retried while its failure
/// may pass (`send::RETRY_DELAYS`), so a slow or briefly failing one does not hold the others
/// back; how each went.
async fn notify(
    store: &Store,
    rule: &Rule,
    notice: &send::Notice<'_>,
) -> Vec<(Kind, Result<(), String>)> {
    futures::future::join_all(rule.spec.notifications.iter().map(|&kind| async move {
        let outcome = match store.get_integration(rule.project_id, kind).await {
            Ok(channel) => {
                send::deliver_retrying(&channel.config, notice, &send::RETRY_DELAYS).await
            }
            Err(Error::NotFound { .. }) => Err("the channel is not configured".to_owned()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(why) = &outcome {
            tracing::warn!(rule = %rule.id, channel = kind.as_str(), error = %why,
                "alert notification not delivered");
        }
        (kind, outcome)
    }))
    .await
}

/// The incident's line on how each notice went (`Notified: webhook delivered; …`), if the
/// rule has channels.
fn notified(deliveries: &[(Kind, Result<(), String>)]) -> Option<String> {
    if deliveries.is_empty() {
        return None;
    }
    let outcomes: Vec<String> = deliveries
        .iter()
        .map(|(kind, outcome)| match outcome {
            Ok(()) => format!("{} delivered", kind.as_str()),
            Err(why) => format!("{} not delivered ({why})", kind.as_str()),
        })
        .collect();
    Some(format!("Notified: {}.", outcomes.join("; ")))
}

/// Adds `line` to the incident's description as it is now: read again, since a person may
/// have changed it while the notices went out.
async fn append_line(store: &Store, incident: &Incident, line: &str) -> Result<(), Error> {
    let current = store.get_incident(incident.project_id, incident.id).await?;
    let spec = IncidentSpec {
        description: appended(&current, line),
        ..current.spec.clone()
    };
    store.update_incident(&current, &spec).await?;
    Ok(())
}

/// The incident's description with `line` added, oldest lines dropped past the limit.
fn appended(incident: &Incident, line: &str) -> String {
    let mut text = match incident.spec.description.as_str() {
        "" => line.to_owned(),
        d => format!("{d}\n{line}"),
    };
    while text.chars().count() > MAX_DESCRIPTION {
        match text.split_once('\n') {
            Some((_, rest)) => text = rest.to_owned(),
            None => {
                text = text.chars().take(MAX_DESCRIPTION).collect();
                break;
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        domain::{
            alerts::RuleFields,
            event::{Level, NewEvent},
        },
        ingest::{CaptureInput, prepare},
        store::store_without_indexer,
    };

    /// A rule of `project` named `name` on `condition`, stored.
    async fn rule(store: &Store, project: Uuid, name: &str, condition: &str) -> Rule {
        let spec = RuleFields {
            name: Some(name.into()),
            condition: Some(condition.into()),
            ..Default::default()
        }
        .resolve(None)
        .unwrap();
        store.create_rule(project, &spec).await.unwrap()
    }

    /// An event of `project` with `message`, received and dated `at`.
    fn event_at(project: Uuid, message: &str, at: DateTime<Utc>) -> Box<NewEvent> {
        let input = CaptureInput {
            message: message.into(),
            ..Default::default()
        };
        Box::new(prepare(project, input, Level::Error, at).unwrap())
    }

    /// An event of `project` with `message`, dated now.
    fn event_now(project: Uuid, message: &str) -> Box<NewEvent> {
        event_at(project, message, Utc::now())
    }

    /// Commits three events of `project`, dated `at`.
    async fn three_booms(store: &Store, project: Uuid, at: DateTime<Utc>) {
        let batch = (0..3)
            .map(|i| event_at(project, &format!("boom {i}"), at))
            .collect();
        store.commit_batch(batch).await.1.unwrap();
    }

    /// Two evaluations of the same rule at once (two servers on one database do this) fire
    /// it once: the second one's claim on `last_triggered` fails.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rule_evaluated_twice_at_once_fires_once() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _, project) = store_without_indexer(dir.path()).await;
        three_booms(&store, project, Utc::now()).await;
        let rule = rule(&store, project, "loud", "error_count > 2 in 1m").await;

        for round in 0..5 {
            let now = Utc::now();
            let (a, b) = tokio::join!(evaluate(&store, now), evaluate(&store, now));
            let fired = a.unwrap().len() + b.unwrap().len();
            assert_eq!(fired, 1, "round {round}");
            // As if a window had passed since the firing.
            let t = store
                .get_rule(project, rule.id)
                .await
                .unwrap()
                .last_triggered;
            let t = t.unwrap().timestamp_millis();
            assert!(
                store
                    .claim_firing(rule.id, Some(t), t - 61_000)
                    .await
                    .unwrap()
            );
        }
        let incidents = store.list_incidents(project, None).await.unwrap();
        assert_eq!(incidents.len(), 1, "later firings add to the open incident");
        assert_eq!(incidents[0].rule_id, Some(rule.id));
        assert_eq!(incidents[0].spec.description.lines().count(), 5);
    }

    /// A window after a firing that counts no more than the threshold resolves the rule's
    /// incident, once even when two servers evaluate it at once; a quiet rule with no open
    /// incident does nothing, and an incident a person changed meanwhile is read again first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_quiet_window_resolves_the_incident_once() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _, project) = store_without_indexer(dir.path()).await;
        let start = Utc::now();
        three_booms(&store, project, start).await;
        let rule = rule(&store, project, "loud", "error_count > 2 in 1m").await;
        let fired = evaluate(&store, start).await.unwrap();
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].action, Action::Opened);
        let incident = fired[0].incident_id;

        // Half a window on, still within the firing's window: nothing.
        let later = start + chrono::Duration::seconds(30);
        assert!(evaluate(&store, later).await.unwrap().is_empty());
        // A person's change makes a resolution claimed on what was read before it fail.
        let before = store.get_incident(project, incident).await.unwrap();
        let changed = IncidentSpec {
            status: "investigating".into(),
            ..before.spec.clone()
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        store.update_incident(&before, &changed).await.unwrap();
        assert!(
            !store
                .claim_resolution(&before, "stale", later.timestamp_millis())
                .await
                .unwrap()
        );

        // A window and a half on, the window after the firing counted none of the three events.
        let quiet = start + chrono::Duration::seconds(90);
        let (a, b) = tokio::join!(evaluate(&store, quiet), evaluate(&store, quiet));
        let resolved: Vec<Firing> = a.unwrap().into_iter().chain(b.unwrap()).collect();
        assert_eq!(resolved.len(), 1, "{resolved:?}");
        assert_eq!(resolved[0].action, Action::Resolved);
        assert_eq!(resolved[0].incident_id, incident);
        assert_eq!(resolved[0].count, 0);
        let after = store.get_incident(project, incident).await.unwrap();
        assert_eq!(after.spec.status, RESOLVED);
        assert_eq!(after.rule_id, Some(rule.id));
        assert!(after.resolved_at.is_some());
        let last = after.spec.description.lines().last().unwrap().to_owned();
        assert!(
            last.ends_with("resolved: 0 errors in the last 90s, at or below the threshold of 2."),
            "{last}"
        );
        // Nothing more to resolve.
        let much_later = start + chrono::Duration::seconds(300);
        assert!(evaluate(&store, much_later).await.unwrap().is_empty());
        assert_eq!(store.list_incidents(project, None).await.unwrap().len(), 1);
    }

    /// A person's change to a rule resolves the incident it opened when the rule is disabled or
    /// counts something else now (nothing would ever resolve it otherwise, or the incident
    /// speaks of a condition no longer watched); a rename leaves it open.
    #[tokio::test]
    async fn disabling_or_changing_a_rule_resolves_its_incident() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _, project) = store_without_indexer(dir.path()).await;
        let start = Utc::now();
        three_booms(&store, project, start).await;
        let update = |current: &Rule, fields: RuleFields| {
            let spec = fields.resolve(Some(&current.spec)).unwrap();
            let (store, id) = (&store, current.id);
            async move { store.update_rule(project, id, &spec).await.unwrap() }
        };
        for (change, expected) in [
            (
                RuleFields {
                    enabled: Some(false),
                    ..Default::default()
                },
                "resolved: the rule was disabled (it watched error_count > 2 in 1m).",
            ),
            (
                RuleFields {
                    condition: Some("error_count > 10 in 1m".into()),
                    ..Default::default()
                },
                "resolved: the rule's condition changed (it watched error_count > 2 in 1m, \
                 now error_count > 10 in 1m).",
            ),
            (
                RuleFields {
                    environment: Some("production".into()),
                    ..Default::default()
                },
                "resolved: the rule's condition changed (it watched error_count > 2 in 1m, \
                 now error_count > 2 in 1m (environment production)).",
            ),
        ] {
            let before = rule(&store, project, "loud", "error_count > 2 in 1m").await;
            let fired = evaluate(&store, start).await.unwrap();
            let opened = fired.iter().find(|f| f.action == Action::Opened).unwrap();
            let incident = opened.incident_id;

            let renamed = update(
                &before,
                RuleFields {
                    name: Some("still loud".into()),
                    ..Default::default()
                },
            )
            .await;
            let now = Utc::now();
            assert_eq!(
                settle_changed_rule(&store, &before, &renamed, now)
                    .await
                    .unwrap(),
                None
            );
            let changed = update(&renamed, change).await;
            assert_eq!(
                settle_changed_rule(&store, &renamed, &changed, now)
                    .await
                    .unwrap(),
                Some(incident)
            );
            let after = store.get_incident(project, incident).await.unwrap();
            assert_eq!(after.spec.status, RESOLVED);
            let last = after.spec.description.lines().last().unwrap().to_owned();
            assert!(last.ends_with(expected), "{last}");
            // Nothing left to resolve.
            assert_eq!(
                settle_changed_rule(&store, &renamed, &changed, now)
                    .await
                    .unwrap(),
                None
            );
            store.delete_rule(project, before.id).await.unwrap();
        }
    }

    /// A new issue that arrives just after a firing is reported by the next one, even when the
    /// job runs late and the issue is older than one window by then.
    #[tokio::test]
    async fn a_new_issue_right_after_a_firing_is_not_missed() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _, project) = store_without_indexer(dir.path()).await;
        let rule = rule(&store, project, "new", "new_issues > 0 in 1m").await;
        // The rule fired 80 s ago; an issue came 75 s ago; the job runs now, 20 s late.
        let now = Utc::now();
        let fired = now - chrono::Duration::seconds(80);
        assert!(
            store
                .claim_firing(rule.id, None, fired.timestamp_millis())
                .await
                .unwrap()
        );
        let input = CaptureInput {
            message: "late issue".into(),
            timestamp: Some(now - chrono::Duration::seconds(75)),
            ..Default::default()
        };
        let ev = prepare(project, input, Level::Error, now).unwrap();
        store.commit_batch(vec![Box::new(ev)]).await.1.unwrap();

        let fired = evaluate(&store, now).await.unwrap();
        assert_eq!(fired.len(), 1, "the issue 75 s old was not counted");
        assert_eq!(fired[0].count, 1);
        let incidents = store.list_incidents(project, None).await.unwrap();
        assert!(
            incidents[0].spec.description.contains("late issue"),
            "{}",
            incidents[0].spec.description
        );
        assert!(incidents[0].spec.description.contains("in the last 80s"));
        // Long after, only the window counts: nothing new, no firing, and the quiet window
        // resolves the incident.
        let later = now + chrono::Duration::seconds(600);
        let resolved = evaluate(&store, later).await.unwrap();
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].action, Action::Resolved);
    }

    /// `issue_events` fires for one loud group, not for as many events spread over quiet
    /// ones (which `error_count` adds up), and names only the groups over its threshold; it
    /// counts by arrival and leaves ignored groups out.
    #[tokio::test]
    async fn one_loud_issue_fires_an_issue_events_rule_and_many_quiet_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _, project) = store_without_indexer(dir.path()).await;
        let event = |message: String| event_now(project, &message);
        rule(&store, project, "loud issue", "issue_events > 4 in 5m").await;

        // Twelve events in six groups, two each: none over 4. (Grouping ignores numbers.)
        let words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"];
        let quiet = (0..12)
            .map(|i| event(format!("quiet {}", words[i % 6])))
            .collect();
        store.commit_batch(quiet).await.1.unwrap();
        assert!(evaluate(&store, Utc::now()).await.unwrap().is_empty());

        // One group gets 5 (over 4), another 4 (not over).
        let loud = (0..5)
            .map(|_| event("database down".into()))
            .chain((0..2).map(|_| event("quiet bravo".into())))
            .collect();
        let committed = store.commit_batch(loud).await.1.unwrap();
        let fired = evaluate(&store, Utc::now()).await.unwrap();
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].count, 5);
        let incident = &store.list_incidents(project, None).await.unwrap()[0];
        let description = &incident.spec.description;
        assert!(
            description.contains(": 5 events in one issue in the last 5m (threshold 4)."),
            "{description}"
        );
        let loud_group = committed[0].group_id;
        let line = format!("- database down ({loud_group}): 5 events");
        assert!(description.contains(&line), "{description}");
        assert!(!description.contains("quiet bravo"), "{description}");

        // Counted by arrival: an event dated two days ago that arrives now counts. An ignored
        // group is not counted at all.
        let since = Utc::now() - chrono::Duration::minutes(5);
        let old = CaptureInput {
            message: "quiet alpha".into(),
            timestamp: Some(Utc::now() - chrono::Duration::days(2)),
            ..Default::default()
        };
        let old = prepare(project, old, Level::Error, Utc::now()).unwrap();
        store.commit_batch(vec![Box::new(old)]).await.1.unwrap();
        store
            .set_group_status(
                project,
                loud_group,
                crate::domain::GroupStatus::Ignored,
                None,
            )
            .await
            .unwrap();
        let loudest = store
            .loudest_groups(
                project,
                since.timestamp_millis(),
                2,
                100,
                sea_orm::Condition::all(),
                false,
            )
            .await
            .unwrap();
        let counts: Vec<(&str, u64)> = loudest.iter().map(|g| (g.1.as_str(), g.2)).collect();
        assert_eq!(counts, [("quiet bravo", 4), ("quiet alpha", 3)]);
        // Nothing arrived after the last event: nothing is counted.
        let later = Utc::now() + chrono::Duration::seconds(1);
        let none = store
            .loudest_groups(
                project,
                later.timestamp_millis(),
                5,
                100,
                sea_orm::Condition::all(),
                false,
            )
            .await
            .unwrap();
        assert!(none.is_empty(), "{none:?}");
    }

    /// `issue_users` counts the distinct users of one issue in the window: many events of a
    /// few users (or of none) do not fire it; an issue that reaches more users than the
    /// threshold does, named with its own count.
    #[tokio::test]
    async fn an_issue_affecting_many_users_fires_an_issue_users_rule() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _, project) = store_without_indexer(dir.path()).await;
        let event = |message: &str, user: &str| {
            let input = CaptureInput {
                message: message.into(),
                user_id: user.into(),
                ..Default::default()
            };
            Box::new(prepare(project, input, Level::Error, Utc::now()).unwrap())
        };
        rule(&store, project, "widespread", "issue_users > 2 in 5m").await;

        // Ten events of two users, and ten of no user: two users at most.
        let few = (0..10)
            .map(|i| event("cart lost", if i % 2 == 0 { "ana" } else { "ben" }))
            .chain((0..10).map(|_| event("anonymous crash", "")))
            .collect();
        store.commit_batch(few).await.1.unwrap();
        assert!(evaluate(&store, Utc::now()).await.unwrap().is_empty());

        // A third and a fourth user: over 2.
        let committed = store
            .commit_batch(vec![event("cart lost", "cy"), event("cart lost", "dee")])
            .await
            .1
            .unwrap();
        let fired = evaluate(&store, Utc::now()).await.unwrap();
        assert_eq!((fired.len(), fired[0].count), (1, 4));
        let incident = &store.list_incidents(project, None).await.unwrap()[0];
        let description = &incident.spec.description;
        assert!(
            description.contains(": 4 users of one issue in the last 5m (threshold 2).")
                && description
                    .contains(&format!("- cart lost ({}): 4 users", committed[0].group_id)),
            "{description}"
        );
    }

    /// A resolved group that receives an event fires a `regressions` rule, named in the
    /// incident; an event in a group that is not resolved does not.
    #[tokio::test]
    async fn a_regression_fires_its_rule() {
        use crate::domain::GroupStatus;
        let dir = tempfile::tempdir().unwrap();
        let (store, _, project) = store_without_indexer(dir.path()).await;
        let event = |message: &str| event_now(project, message);
        let committed = store
            .commit_batch(vec![event("fixed bug"), event("open bug")])
            .await
            .1
            .unwrap();
        let fixed = committed[0].group_id;
        store
            .set_group_status(project, fixed, GroupStatus::Resolved, None)
            .await
            .unwrap();
        rule(&store, project, "regressed", "regressions > 0 in 5m").await;

        store.commit_batch(vec![event("open bug")]).await.1.unwrap();
        assert!(evaluate(&store, Utc::now()).await.unwrap().is_empty());

        store
            .commit_batch(vec![event("fixed bug")])
            .await
            .1
            .unwrap();
        let fired = evaluate(&store, Utc::now()).await.unwrap();
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].count, 1);
        let incident = &store.list_incidents(project, None).await.unwrap()[0];
        let description = &incident.spec.description;
        assert!(description.contains(&fixed.to_string()), "{description}");
        assert!(
            description.contains(": 1 regressed issue in the last 5m (threshold 0)."),
            "{description}"
        );
        let group = store.get_group(project, fixed).await.unwrap();
        assert!(group.regressed);
    }

    /// User feedback fires a `user_feedback` rule: none yet, nothing; a report, an incident
    /// that says so. Feedback has no environment or level, so a rule naming one is refused.
    #[tokio::test]
    async fn user_feedback_fires_a_feedback_rule() {
        use crate::domain::feedback::NewReport;
        let dir = tempfile::tempdir().unwrap();
        let (store, _, project) = store_without_indexer(dir.path()).await;
        rule(&store, project, "users wrote", "user_feedback > 0 in 10m").await;
        assert!(evaluate(&store, Utc::now()).await.unwrap().is_empty());
        let report = NewReport::new(None, "Ana", "ana@example.com", "The page froze.", "").unwrap();
        store.add_user_reports(project, &[report]).await.unwrap();
        let fired = evaluate(&store, Utc::now()).await.unwrap();
        assert_eq!((fired.len(), fired[0].count), (1, 1));
        let incident = &store.list_incidents(project, None).await.unwrap()[0];
        let description = &incident.spec.description;
        assert!(
            description.contains(": 1 user feedback report in the last 10m (threshold 0)."),
            "{description}"
        );
        for (environment, level, field) in [
            (Some("production"), None, "environment"),
            (None, Some("error"), "level"),
        ] {
            let refused = RuleFields {
                name: Some("scoped".into()),
                condition: Some("feedback".into()),
                environment: environment.map(Into::into),
                level: level.map(Into::into),
                ..Default::default()
            }
            .resolve(None);
            match refused {
                Err(crate::error::Error::Invalid { violations, .. }) => {
                    assert_eq!(violations[0].field, field)
                }
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    /// An ignored group that comes back by itself fires an `unignored` rule, named in the
    /// incident: one that reaches the count it was ignored until (the writer brings it back),
    /// one whose time is up (the snooze job does); a group a person takes out of ignored does
    /// not.
    #[tokio::test]
    async fn an_ignored_group_coming_back_fires_an_unignored_rule() {
        use crate::domain::{GroupStatus, model::Snooze};
        let dir = tempfile::tempdir().unwrap();
        let (store, _, project) = store_without_indexer(dir.path()).await;
        let event = |message: &str| event_now(project, message);
        let committed = store
            .commit_batch(vec![event("counted"), event("timed"), event("taken out")])
            .await
            .1
            .unwrap();
        let [counted, timed, taken_out] = [0, 1, 2].map(|i| committed[i].group_id);
        let ignore = |group, minutes, count| {
            let store = &store;
            async move {
                let snooze = Snooze::new(minutes, count, None).unwrap();
                store
                    .set_group_status_snoozed(project, group, GroupStatus::Ignored, snooze, None)
                    .await
                    .unwrap();
            }
        };
        ignore(counted, None, Some(2)).await;
        ignore(timed, Some(30), None).await;
        ignore(taken_out, None, None).await;
        rule(&store, project, "back", "unignored > 0 in 5m").await;

        store.commit_batch(vec![event("counted")]).await.1.unwrap();
        store
            .set_group_status(project, taken_out, GroupStatus::Unresolved, None)
            .await
            .unwrap();
        assert!(evaluate(&store, Utc::now()).await.unwrap().is_empty());

        store.commit_batch(vec![event("counted")]).await.1.unwrap();
        let fired = evaluate(&store, Utc::now()).await.unwrap();
        assert_eq!((fired.len(), fired[0].count), (1, 1));
        let incident = &store.list_incidents(project, None).await.unwrap()[0];
        let description = &incident.spec.description;
        assert!(
            description.contains(": 1 issue back from ignored in the last 5m (threshold 0).")
                && description.contains(&format!("- counted ({counted})")),
            "{description}"
        );

        // Half an hour on, the other snooze's time is up: the job brings the group back, and
        // the next evaluation names it alone.
        let later = Utc::now() + chrono::Duration::minutes(31);
        assert_eq!(
            store
                .wake_snoozed_groups(later.timestamp_millis())
                .await
                .unwrap(),
            1
        );
        let fired = evaluate(&store, later).await.unwrap();
        assert_eq!((fired.len(), fired[0].action), (1, Action::Added));
        let incident = &store.list_incidents(project, None).await.unwrap()[0];
        let last = incident.spec.description.lines().next_back().unwrap();
        assert_eq!(last, format!("- timed ({timed})"));
    }
}
