//! Alert rules and incidents, and the counts the alert job compares with a rule's threshold.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
    sea_query::{Alias, Expr, ExprTrait, Query},
};
use uuid::Uuid;

use super::{
    Store, db_err,
    entity::{alert_rule, event, event_tag, group, incident, user_report},
    groups,
};
use crate::{
    domain::{
        GroupStatus, Level,
        alerts::{Incident, IncidentSpec, Metric, RESOLVED, Rule, RuleSpec, parse_condition},
        model::from_millis,
    },
    error::Error,
    integrations::Kind,
};

/// Most incidents a listing returns (newest first).
pub const INCIDENTS_LISTED: u64 = 1_000;
fn rule(m: alert_rule::Model) -> Rule {
    let notifications = serde_json::from_str::<Vec<String>>(&m.notifications)
        .unwrap_or_default()
        .iter()
        .filter_map(|n| Kind::parse(n))
        .collect();
    // What a rule counts is read from its condition, which was valid when stored.
    let metric = parse_condition(&m.condition).map_or(Metric::ErrorCount, |c| c.metric);
    Rule {
        id: m.id,
        project_id: m.project_id,
        spec: RuleSpec {
            name: m.name,
            condition: m.condition,
            metric,
            threshold: u64::try_from(m.threshold).unwrap_or(0),
            window_secs: u64::try_from(m.window_secs).unwrap_or(0),
            enabled: m.enabled,
            notifications,
            severity: m.severity,
            environment: m.environment,
            level: m.level.as_deref().and_then(Level::parse),
            tags: serde_json::from_str(&m.tags).unwrap_or_default(),
        },
        last_triggered: m.last_triggered.map(from_millis),
        created_at: from_millis(m.created_at),
        updated_at: from_millis(m.updated_at),
    }
}

fn incident(m: incident::Model) -> Incident {
    Incident {
        id: m.id,
        project_id: m.project_id,
        rule_id: m.rule_id,
        spec: IncidentSpec {
            title: m.title,
            severity: m.severity,
            status: m.status,
            description: m.description,
            assigned_to: m.assigned_to,
        },
        created_at: from_millis(m.created_at),
        updated_at: from_millis(m.updated_at),
        resolved_at: m.resolved_at.map(from_millis),
    }
}

fn rule_model(id: Uuid, project_id: Uuid, s: &RuleSpec) -> alert_rule::ActiveModel {
    let channels: Vec<&str> = s.notifications.iter().map(|k| k.as_str()).collect();
    alert_rule::ActiveModel {
        id: Set(id),
        project_id: Set(project_id),
        name: Set(s.name.clone()),
        condition: Set(s.condition.clone()),
        threshold: Set(i64::try_from(s.threshold).unwrap_or(i64::MAX)),
        window_secs: Set(i64::try_from(s.window_secs).unwrap_or(i64::MAX)),
        enabled: Set(s.enabled),
        notifications: Set(serde_json::to_string(&channels).unwrap_or_else(|_| "[]".into())),
        severity: Set(s.severity.clone()),
        environment: Set(s.environment.clone()),
        level: Set(s.level.map(|l| l.as_str().to_owned())),
        tags: Set(serde_json::to_string(&s.tags).unwrap_or_else(|_| "{}".into())),
        ..Default::default()
    }
}

/// The conditions a rule's filters put on the events it counts.
fn event_filters(spec: &RuleSpec) -> Condition {
    let mut cond = Condition::all();
    if let Some(env) = &spec.environment {
        cond = cond.add(Expr::col((event::Entity, event::Column::Environment)).eq(env.as_str()));
    }
    if let Some(levels) = spec.levels() {
        cond = cond.add(
            Expr::col((event::Entity, event::Column::Level))
                .is_in(levels.iter().map(|l| l.as_str())),
        );
    }
    // Each tag: a row of the event's tags (keyed by the event and the tag key).
    for (k, v) in &spec.tags {
        cond = cond.add(Expr::exists(
            Query::select()
                .expr(Expr::val(1))
                .from(event_tag::Entity)
                .and_where(
                    Expr::col((event_tag::Entity, event_tag::Column::EventSeq))
                        .equals((event::Entity, event::Column::Seq)),
                )
                .and_where(Expr::col((event_tag::Entity, event_tag::Column::Key)).eq(k.as_str()))
                .and_where(Expr::col((event_tag::Entity, event_tag::Column::Value)).eq(v.as_str()))
                .to_owned(),
        ));
    }
    cond
}

/// The conditions a rule's filters put on the groups it counts: an event of the environment
/// (through the group's per-value counts), the group's level.
/// How many events of the `groups` row at hand (a correlated subquery) are numbered
/// `from_seq` or later and meet `filters`, counting at most `cap`; with `users`, the distinct
/// non-empty `user_id`s of those (at most `cap`) events. Counted in the events' (group, seq)
/// index alone unless `filters` or `users` read the events.
pub(super) fn group_events_since(
    from_seq: i64,
    filters: Condition,
    cap: u64,
    users: bool,
) -> sea_orm::sea_query::SelectStatement {
    let mut in_window = Query::select();
    in_window
        .from(event::Entity)
        .and_where(
            Expr::col((event::Entity, event::Column::GroupId))
                .equals((group::Entity, group::Column::Id)),
        )
        .and_where(Expr::col((event::Entity, event::Column::Seq)).gte(from_seq))
        .cond_where(filters)
        .limit(cap);
    let counted = if users {
        in_window
            .column((event::Entity, event::Column::UserId))
            .and_where(Expr::col((event::Entity, event::Column::UserId)).ne(""));
        r#"COUNT(DISTINCT "capped"."user_id")"#
    } else {
        in_window.expr(Expr::val(1));
        "COUNT(*)"
    };
    Query::select()
        .expr(Expr::cust(counted))
        .from_subquery(in_window.to_owned(), Alias::new("capped"))
        .to_owned()
}

fn group_filters(spec: &RuleSpec) -> Condition {
    let mut cond = Condition::all();
    if let Some(env) = &spec.environment {
        cond = cond.add(groups::has_value("environment", std::slice::from_ref(env)));
    }
    for (k, v) in &spec.tags {
        cond = cond.add(groups::has_value(
            &format!("tag:{k}"),
            std::slice::from_ref(v),
        ));
    }
    if let Some(levels) = spec.levels() {
        cond = cond.add(
            Expr::col((group::Entity, group::Column::Level))
                .is_in(levels.iter().map(|l| l.as_str())),
        );
    }
    cond
}

/// A group a firing names: for `issue_events` with the events it received in the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedGroup {
    pub id: Uuid,
    pub title: String,
    pub count: Option<u64>,
}

/// What a rule counted in its window: the count its threshold is compared with and, when the
/// count exceeds it, the groups a notice names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    pub count: u64,
    pub groups: Vec<NamedGroup>,
}

const RULE: &str = "alert rule";
const INCIDENT: &str = "incident";

impl Store {
    /// The project's rules, oldest first.
    pub async fn list_rules(&self, project_id: Uuid) -> Result<Vec<Rule>, Error> {
        Ok(alert_rule::Entity::find()
            .filter(alert_rule::Column::ProjectId.eq(project_id))
            .order_by_asc(alert_rule::Column::CreatedAt)
            .order_by_asc(alert_rule::Column::Id)
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(rule)
            .collect())
    }

    /// One rule of the project; another project's is not found.
    pub async fn get_rule(&self, project_id: Uuid, id: Uuid) -> Result<Rule, Error> {
        alert_rule::Entity::find_by_id(id)
            .filter(alert_rule::Column::ProjectId.eq(project_id))
            .one(&self.db)
            .await
            .map_err(db_err)?
            .map(rule)
            .ok_or(Error::NotFound { what: RULE })
    }

    pub async fn create_rule(&self, project_id: Uuid, spec: &RuleSpec) -> Result<Rule, Error> {
        let now = Utc::now().timestamp_millis();
        let mut m = rule_model(Uuid::new_v4(), project_id, spec);
        m.last_triggered = Set(None);
        m.created_at = Set(now);
        m.updated_at = Set(now);
        Ok(rule(m.insert(&self.db).await.map_err(db_err)?))
    }

    /// Replaces a rule's settings (not when it last fired).
    pub async fn update_rule(
        &self,
        project_id: Uuid,
        id: Uuid,
        spec: &RuleSpec,
    ) -> Result<Rule, Error> {
        let mut m = rule_model(id, project_id, spec);
        m.updated_at = Set(Utc::now().timestamp_millis());
        // The project filter keeps another project's rule out of reach.
        let res = alert_rule::Entity::update_many()
            .set(m)
            .filter(alert_rule::Column::Id.eq(id))
            .filter(alert_rule::Column::ProjectId.eq(project_id))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        if res.rows_affected == 0 {
            return Err(Error::NotFound { what: RULE });
        }
        self.get_rule(project_id, id).await
    }

    pub async fn delete_rule(&self, project_id: Uuid, id: Uuid) -> Result<(), Error> {
        let res = alert_rule::Entity::delete_many()
            .filter(alert_rule::Column::Id.eq(id))
            .filter(alert_rule::Column::ProjectId.eq(project_id))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        if res.rows_affected == 0 {
            return Err(Error::NotFound { what: RULE });
        }
        Ok(())
    }

    /// Every enabled rule of every project, for the alert job.
    pub async fn enabled_rules(&self) -> Result<Vec<Rule>, Error> {
        Ok(alert_rule::Entity::find()
            .filter(alert_rule::Column::Enabled.eq(true))
            .order_by_asc(alert_rule::Column::CreatedAt)
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(rule)
            .collect())
    }

    /// What `rule`'s metric counts in `[since_ms, until_ms]`, counting no further than `cap`
    /// (the index range read stays bounded however loud the project is), and, when that exceeds
    /// the rule's threshold, up to `named` groups to name: for `new_issues`, `regressions` and
    /// `unignored` the newest it counted, for `issue_events` those over the threshold, loudest
    /// first.
    pub async fn count_for_alert(
        &self,
        rule: &Rule,
        since_ms: i64,
        until_ms: i64,
        cap: u64,
        named: u64,
    ) -> Result<Counted, Error> {
        let (project_id, threshold) = (rule.project_id, rule.spec.threshold);
        // The group time a metric that counts groups counts by; none for one that counts events.
        let at = match rule.spec.metric {
            Metric::ErrorCount => None,
            Metric::NewIssues => Some(group::Column::FirstSeen),
            Metric::Regressions => Some(group::Column::RegressedAt),
            Metric::Unignored => Some(group::Column::UnignoredAt),
            // Reports received in the window; they name no group.
            Metric::UserFeedback => {
                let inner = Query::select()
                    .expr(Expr::val(1))
                    .from(user_report::Entity)
                    .and_where(Expr::col(user_report::Column::ProjectId).eq(project_id))
                    .and_where(Expr::col(user_report::Column::CreatedAt).gte(since_ms))
                    .and_where(Expr::col(user_report::Column::CreatedAt).lte(until_ms))
                    .limit(cap)
                    .to_owned();
                return Ok(Counted {
                    count: self.count_rows(inner).await?,
                    groups: Vec::new(),
                });
            }
            // Counted per group, by arrival up to now (`loudest_groups`).
            Metric::IssueEvents | Metric::IssueUsers => {
                let users = rule.spec.metric == Metric::IssueUsers;
                let filters = event_filters(&rule.spec);
                let loudest = self
                    .loudest_groups(project_id, since_ms, named, cap, filters, users)
                    .await?;
                return Ok(Counted {
                    count: loudest.first().map_or(0, |g| g.2),
                    groups: loudest
                        .into_iter()
                        .filter(|g| g.2 > threshold)
                        .map(|(id, title, n)| NamedGroup {
                            id,
                            title,
                            count: Some(n),
                        })
                        .collect(),
                });
            }
        };
        let inner = match at {
            None => Query::select()
                .expr(Expr::val(1))
                .from(event::Entity)
                .and_where(Expr::col(event::Column::ProjectId).eq(project_id))
                .and_where(Expr::col(event::Column::Timestamp).gte(since_ms))
                .and_where(Expr::col(event::Column::Timestamp).lte(until_ms))
                .cond_where(event_filters(&rule.spec))
                .limit(cap)
                .to_owned(),
            Some(at) => Query::select()
                .expr(Expr::val(1))
                .from(group::Entity)
                .and_where(Expr::col(group::Column::ProjectId).eq(project_id))
                .and_where(Expr::col(at).gte(since_ms))
                .and_where(Expr::col(at).lte(until_ms))
                .cond_where(group_filters(&rule.spec))
                .limit(cap)
                .to_owned(),
        };
        let count = self.count_rows(inner).await?;
        let groups = match at {
            Some(at) if count > threshold => {
                self.group_titles(project_id, at, since_ms, until_ms, named, &rule.spec)
                    .await?
            }
            _ => Vec::new(),
        };
        Ok(Counted { count, groups })
    }

    /// How many rows `inner` selects.
    async fn count_rows(&self, inner: sea_orm::sea_query::SelectStatement) -> Result<u64, Error> {
        let stmt = Query::select()
            .expr_as(Expr::cust("COUNT(*)"), Alias::new("n"))
            .from_subquery(inner, Alias::new("window_rows"))
            .to_owned();
        let n: i64 = match self.db.query_one(&stmt).await.map_err(db_err)? {
            Some(row) => row.try_get("", "n").map_err(db_err)?,
            None => 0,
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The groups of the project whose `at` falls in `[since_ms, until_ms]`, newest first, at
    /// most `n`.
    async fn group_titles(
        &self,
        project_id: Uuid,
        at: group::Column,
        since_ms: i64,
        until_ms: i64,
        n: u64,
        spec: &RuleSpec,
    ) -> Result<Vec<NamedGroup>, Error> {
        Ok(group::Entity::find()
            .filter(group::Column::ProjectId.eq(project_id))
            .filter(group_filters(spec))
            .filter(at.gte(since_ms))
            .filter(at.lte(until_ms))
            .order_by_desc(at)
            .limit(n)
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|g| NamedGroup {
                id: g.id,
                title: g.title,
                count: None,
            })
            .collect())
    }

    /// The `n` groups of the project, ignored ones aside, that received the most events since
    /// `since_ms` (by arrival) meeting `filters` (`event_filters`), loudest first (ties: the
    /// group id), each counted no further than `cap`.
    ///
    /// Counted in the events' (group, seq) index alone: events are numbered as they are
    /// committed, so those received since `since_ms` are those from one `seq` on
    /// (`first_seq_received_since`), and each group's count is a range of its index entries.
    /// Reading the events themselves (their timestamp, their group) cost 6–7 µs an event on
    /// SQLite, 670 ms for 100 000 (BENCHMARKS.md, session 29); a rule with filters reads them
    /// (its environment and level) for the events in the window.
    ///
    /// With `users`, a group's count is the distinct non-empty `user_id`s of those events (of
    /// the first `cap` read), which reads the events.
    pub async fn loudest_groups(
        &self,
        project_id: Uuid,
        since_ms: i64,
        n: u64,
        cap: u64,
        filters: Condition,
        users: bool,
    ) -> Result<Vec<(Uuid, String, u64)>, Error> {
        let from_seq = self.first_seq_received_since(since_ms).await?;
        let count = group_events_since(from_seq, filters, cap, users);
        let stmt = Query::select()
            .column((group::Entity, group::Column::Id))
            .expr_as(
                Expr::SubQuery(None, Box::new(count.into())),
                Alias::new("n"),
            )
            .from(group::Entity)
            .and_where(Expr::col((group::Entity, group::Column::ProjectId)).eq(project_id))
            .and_where(
                Expr::col((group::Entity, group::Column::Status)).ne(GroupStatus::Ignored.as_str()),
            )
            .order_by(Alias::new("n"), sea_orm::Order::Desc)
            .order_by((group::Entity, group::Column::Id), sea_orm::Order::Asc)
            .limit(n)
            .to_owned();
        let mut counted = Vec::new();
        for row in self.db.query_all(&stmt).await.map_err(db_err)? {
            let id: Uuid = row.try_get("", "id").map_err(db_err)?;
            let count: i64 = row.try_get("", "n").map_err(db_err)?;
            if count > 0 {
                counted.push((id, u64::try_from(count).unwrap_or(0)));
            }
        }
        let ids: Vec<Uuid> = counted.iter().map(|c| c.0).collect();
        let titles: std::collections::HashMap<Uuid, String> = group::Entity::find()
            .filter(group::Column::Id.is_in(ids))
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|g| (g.id, g.title))
            .collect();
        Ok(counted
            .into_iter()
            .filter_map(|(id, count)| Some((id, titles.get(&id)?.clone(), count)))
            .collect())
    }

    /// The lowest `seq` of the events received at or after `since_ms`, of any project (one
    /// past the last event when none was). `seq` grows with arrival (the writer numbers
    /// events as it commits them, in the order they came), so this is a binary search by
    /// `seq`, a primary key look-up per step.
    pub(super) async fn first_seq_received_since(&self, since_ms: i64) -> Result<i64, Error> {
        let bounds = Query::select()
            .expr_as(Expr::cust("MIN(seq)"), Alias::new("lo"))
            .expr_as(Expr::cust("MAX(seq)"), Alias::new("hi"))
            .from(event::Entity)
            .to_owned();
        let (first, last) = match self.db.query_one(&bounds).await.map_err(db_err)? {
            Some(row) => (
                row.try_get::<Option<i64>>("", "lo").map_err(db_err)?,
                row.try_get::<Option<i64>>("", "hi").map_err(db_err)?,
            ),
            None => (None, None),
        };
        let (Some(first), Some(last)) = (first, last) else {
            return Ok(0);
        };
        // The least x in [first, last + 1] whose next event arrived at or after `since_ms`.
        let (mut lo, mut hi) = (first, last.saturating_add(1));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let next = event::Entity::find()
                .select_only()
                .column(event::Column::ReceivedAt)
                .filter(event::Column::Seq.gte(mid))
                .order_by_asc(event::Column::Seq)
                .into_tuple::<i64>()
                .one(&self.db)
                .await
                .map_err(db_err)?;
            match next {
                Some(received) if received < since_ms => lo = mid + 1,
                _ => hi = mid,
            }
        }
        Ok(lo)
    }

    /// Marks the rule fired at `now_ms` if it still last fired at `seen` (what the caller
    /// read). Of several servers evaluating the same rule, only the first one's claim holds.
    pub async fn claim_firing(
        &self,
        rule_id: Uuid,
        seen: Option<i64>,
        now_ms: i64,
    ) -> Result<bool, Error> {
        let mut update = alert_rule::Entity::update_many()
            .col_expr(alert_rule::Column::LastTriggered, Expr::value(now_ms))
            .filter(alert_rule::Column::Id.eq(rule_id))
            .filter(alert_rule::Column::Enabled.eq(true));
        update = match seen {
            Some(t) => update.filter(alert_rule::Column::LastTriggered.eq(t)),
            None => update.filter(alert_rule::Column::LastTriggered.is_null()),
        };
        Ok(update.exec(&self.db).await.map_err(db_err)?.rows_affected == 1)
    }

    /// The project's incidents, newest first, optionally only those in `status`.
    pub async fn list_incidents(
        &self,
        project_id: Uuid,
        status: Option<&str>,
    ) -> Result<Vec<Incident>, Error> {
        let mut q = incident::Entity::find().filter(incident::Column::ProjectId.eq(project_id));
        if let Some(s) = status {
            q = q.filter(incident::Column::Status.eq(s));
        }
        Ok(q.order_by_desc(incident::Column::CreatedAt)
            .order_by_desc(incident::Column::Id)
            .limit(INCIDENTS_LISTED)
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(incident)
            .collect())
    }

    pub async fn get_incident(&self, project_id: Uuid, id: Uuid) -> Result<Incident, Error> {
        incident::Entity::find_by_id(id)
            .filter(incident::Column::ProjectId.eq(project_id))
            .one(&self.db)
            .await
            .map_err(db_err)?
            .map(incident)
            .ok_or(Error::NotFound { what: INCIDENT })
    }

    /// The newest incident `rule_id` opened that is not resolved.
    pub async fn open_incident_of_rule(&self, rule_id: Uuid) -> Result<Option<Incident>, Error> {
        Ok(incident::Entity::find()
            .filter(incident::Column::RuleId.eq(rule_id))
            .filter(incident::Column::Status.ne(RESOLVED))
            .order_by_desc(incident::Column::CreatedAt)
            .one(&self.db)
            .await
            .map_err(db_err)?
            .map(incident))
    }

    pub async fn create_incident(
        &self,
        id: Uuid,
        project_id: Uuid,
        rule_id: Option<Uuid>,
        spec: &IncidentSpec,
    ) -> Result<Incident, Error> {
        let now = Utc::now().timestamp_millis();
        let m = incident::ActiveModel {
            id: Set(id),
            project_id: Set(project_id),
            rule_id: Set(rule_id),
            title: Set(spec.title.clone()),
            severity: Set(spec.severity.clone()),
            status: Set(spec.status.clone()),
            description: Set(spec.description.clone()),
            assigned_to: Set(spec.assigned_to.clone()),
            created_at: Set(now),
            updated_at: Set(now),
            resolved_at: Set((spec.status == RESOLVED).then_some(now)),
        };
        Ok(incident(m.insert(&self.db).await.map_err(db_err)?))
    }

    /// Replaces an incident's fields. Moving to `resolved` stamps `resolved_at`; moving out of
    /// it clears the stamp.
    pub async fn update_incident(
        &self,
        current: &Incident,
        spec: &IncidentSpec,
    ) -> Result<Incident, Error> {
        let now = Utc::now().timestamp_millis();
        let resolved_at = match (current.resolved_at, spec.status == RESOLVED) {
            (Some(t), true) => Some(t.timestamp_millis()),
            (None, true) => Some(now),
            (_, false) => None,
        };
        let res = incident::Entity::update_many()
            .col_expr(incident::Column::Title, Expr::value(spec.title.clone()))
            .col_expr(
                incident::Column::Severity,
                Expr::value(spec.severity.clone()),
            )
            .col_expr(incident::Column::Status, Expr::value(spec.status.clone()))
            .col_expr(
                incident::Column::Description,
                Expr::value(spec.description.clone()),
            )
            .col_expr(
                incident::Column::AssignedTo,
                Expr::value(spec.assigned_to.clone()),
            )
            .col_expr(incident::Column::UpdatedAt, Expr::value(now))
            .col_expr(incident::Column::ResolvedAt, Expr::value(resolved_at))
            .filter(incident::Column::Id.eq(current.id))
            .filter(incident::Column::ProjectId.eq(current.project_id))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        if res.rows_affected == 0 {
            return Err(Error::NotFound { what: INCIDENT });
        }
        self.get_incident(current.project_id, current.id).await
    }

    /// Resolves `current` with `description` if nobody changed it since it was read (its
    /// status and `updated_at` are still those of `current`). Of several servers resolving the
    /// same incident, only the first one's claim holds; a person's change in between wins.
    pub async fn claim_resolution(
        &self,
        current: &Incident,
        description: &str,
        now_ms: i64,
    ) -> Result<bool, Error> {
        let res = incident::Entity::update_many()
            .col_expr(incident::Column::Status, Expr::value(RESOLVED))
            .col_expr(incident::Column::Description, Expr::value(description))
            .col_expr(incident::Column::UpdatedAt, Expr::value(now_ms))
            .col_expr(incident::Column::ResolvedAt, Expr::value(now_ms))
            .filter(incident::Column::Id.eq(current.id))
            .filter(incident::Column::Status.eq(current.spec.status.as_str()))
            .filter(incident::Column::UpdatedAt.eq(current.updated_at.timestamp_millis()))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(res.rows_affected == 1)
    }
}
