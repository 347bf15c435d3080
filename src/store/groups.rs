//! Group reads and triage writes.

use chrono::Utc;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Expr, ExprTrait, Func, LikeExpr, LockType, Order, Query},
};
use uuid::Uuid;

use super::{
    Store,
    activity::{self, Actor},
    convert, db_err, delete_rows,
    entity::{
        event, event_tag, group, group_activity, group_comment, group_hash, group_hourly,
        group_stat, member, release,
    },
    events::escape_like,
    repoint_rows, write,
};
use crate::{
    domain::{
        GroupStatus,
        activity::{Change, SnoozeEnd},
        cursor::GroupCursor,
        filter::{AssignedTo, Filter, GroupSort, Span, Term},
        model::{
            Assignee, ESCALATING_FACTOR, ESCALATING_FLOOR, ESCALATING_HISTORY_HOURS,
            ESCALATING_WINDOW_MINUTES, Group, GroupDetail, MergeSet, Snooze, from_millis,
        },
    },
    error::Error,
};

/// How many users the `groups` row at hand has affected: its distinct `user` values (SQL).
const USERS_AFFECTED: &str = r#"SELECT COUNT(*) FROM "group_stats" WHERE "group_stats"."group_id" = "groups"."id" AND "group_stats"."dim" = 'user'"#;

/// Events read at most per group, per look, to count the distinct users of a snooze by a
/// rate of users (the first of its window).
const RATE_USERS_READ_MAX: u64 = 100_000;

/// Hours covered by a group's trend.
pub const TREND_HOURS: i64 = 24;
const TOP_TAGS: usize = 20;
const DISTINCT_VALUES: usize = 50;

fn sort_column(sort: GroupSort) -> group::Column {
    match sort {
        GroupSort::CountDesc => group::Column::TimesSeen,
        GroupSort::LastSeenDesc => group::Column::LastSeen,
        GroupSort::FirstSeenDesc => group::Column::FirstSeen,
    }
}

fn sort_value(g: &Group, sort: GroupSort) -> i64 {
    match sort {
        GroupSort::CountDesc => i64::try_from(g.count).unwrap_or(i64::MAX),
        GroupSort::LastSeenDesc => g.last_seen.timestamp_millis(),
        GroupSort::FirstSeenDesc => g.first_seen.timestamp_millis(),
    }
}

/// Which groups a listing shows, and in which order.
#[derive(Debug, Clone, Copy)]
pub struct GroupQuery<'a> {
    /// Each word in the title or the culprit.
    pub words: &'a [String],
    /// Each filter of the search, members looked up.
    pub filters: &'a [Filter<Uuid>],
    pub sort: GroupSort,
}

/// The group (of the statement's `groups`) had an event with one of `values` for `dim`
/// (`release`, `environment`, `user`, `tag:<key>`): through its per-value counts, whose primary
/// key starts with the group and the dimension.
pub(super) fn has_value(dim: &str, values: &[String]) -> sea_orm::sea_query::SimpleExpr {
    stat_exists(dim, Some(values))
}

/// The group had an event with any value for `dim`.
fn has_dim(dim: &str) -> sea_orm::sea_query::SimpleExpr {
    stat_exists(dim, None)
}

fn stat_exists(dim: &str, values: Option<&[String]>) -> sea_orm::sea_query::SimpleExpr {
    let mut select = Query::select();
    select
        .expr(Expr::val(1))
        .from(group_stat::Entity)
        .and_where(
            Expr::col((group_stat::Entity, group_stat::Column::GroupId))
                .equals((group::Entity, group::Column::Id)),
        )
        .and_where(Expr::col((group_stat::Entity, group_stat::Column::Dim)).eq(dim));
    if let Some(values) = values {
        select.and_where(
            Expr::col((group_stat::Entity, group_stat::Column::Value))
                .is_in(values.iter().cloned()),
        );
    }
    Expr::exists(select.to_owned())
}

/// The condition a filter puts on a group. Nullable columns are tested as `IS NOT NULL AND`,
/// so that a negation takes the groups without a value too.
fn filter_condition(f: &Filter<Uuid>) -> Condition {
    use group::Column as C;
    let within = |c: C, span: &Span| {
        let mut cond = Condition::all();
        if let Some(from) = span.from {
            cond = cond.add(c.gte(from));
        }
        if let Some(until) = span.until {
            cond = cond.add(c.lt(until));
        }
        cond
    };
    let cond = match &f.term {
        Term::Status(list) => {
            Condition::all().add(C::Status.is_in(list.iter().map(|s| s.as_str())))
        }
        Term::Assigned(list) => list.iter().fold(Condition::any(), |any, a| {
            any.add(match a {
                AssignedTo::Member(id) => Condition::all()
                    .add(C::AssigneeId.is_not_null())
                    .add(C::AssigneeId.eq(*id)),
                AssignedTo::Nobody => Condition::all().add(C::AssigneeId.is_null()),
                AssignedTo::Anybody => Condition::all().add(C::AssigneeId.is_not_null()),
            })
        }),
        Term::Level(list) => Condition::all().add(C::Level.is_in(list.iter().map(|l| l.as_str()))),
        Term::Release(list) => Condition::all().add(has_value("release", list)),
        Term::FirstRelease(list) => Condition::all()
            .add(C::FirstRelease.is_not_null())
            .add(C::FirstRelease.is_in(list.iter().cloned())),
        Term::Tag(key, list) => Condition::all().add(has_value(&format!("tag:{key}"), list)),
        Term::Environment(list) => Condition::all().add(has_value("environment", list)),
        Term::User(list) => Condition::all().add(has_value("user", list)),
        Term::Has(dims) => dims
            .iter()
            .fold(Condition::any(), |any, dim| any.add(has_dim(dim))),
        Term::Regressed => Condition::all()
            .add(C::Regressed.eq(true))
            .add(C::Status.eq(GroupStatus::Unresolved.as_str())),
        Term::TimesSeen(span) => within(C::TimesSeen, span),
        Term::FirstSeen(span) => within(C::FirstSeen, span),
        Term::LastSeen(span) => within(C::LastSeen, span),
    };
    if f.negated { cond.not() } else { cond }
}

impl Store {
    /// Groups of a project, ordered by `sort` (descending, id as tie-breaker), after `cursor`.
    pub async fn list_groups(
        &self,
        project_id: Uuid,
        query: GroupQuery<'_>,
        cursor: Option<GroupCursor>,
        limit: u64,
    ) -> Result<(Vec<Group>, Option<GroupCursor>), Error> {
        let GroupQuery {
            words,
            filters,
            sort,
        } = query;
        let col = sort_column(sort);
        let mut q = group::Entity::find().filter(group::Column::ProjectId.eq(project_id));
        for f in filters {
            q = q.filter(filter_condition(f));
        }
        // Each word in the title or the culprit, as typed in any case. A project's groups are
        // few beside its events: they are read through, no index needed.
        let sqlite = self.backend() == DbBackend::Sqlite;
        for w in words {
            let matches = |c: group::Column| {
                if sqlite {
                    // SQLite's LOWER folds ASCII only ("Ошибка" would miss "ошибка"); the
                    // connection's REGEXP is the regex crate's, whose `(?i)` folds Unicode.
                    Expr::cust_with_exprs(
                        "? REGEXP ?",
                        [Expr::col(c), Expr::val(format!("(?i){}", regex::escape(w)))],
                    )
                } else {
                    // PostgreSQL's LOWER folds by the database's character type (C.UTF-8 and
                    // the usual locales fold Unicode).
                    Expr::expr(Func::lower(Expr::col(c)))
                        .like(LikeExpr::new(escape_like(w)).escape('\\'))
                }
            };
            q = q.filter(
                Condition::any()
                    .add(matches(group::Column::Title))
                    .add(matches(group::Column::Culprit)),
            );
        }
        if let Some(c) = cursor {
            if c.sort != sort.code() {
                return Err(Error::malformed(
                    "cursor",
                    "belongs to a listing with another sort order",
                ));
            }
            q = q.filter(
                Condition::any().add(col.lt(c.value)).add(
                    Condition::all()
                        .add(col.eq(c.value))
                        .add(group::Column::Id.lt(c.id)),
                ),
            );
        }
        let rows = q
            .order_by(col, Order::Desc)
            .order_by(group::Column::Id, Order::Desc)
            .limit(limit + 1)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let mut groups = self.groups_of(rows).await?;
        let next = if groups.len() as u64 > limit {
            groups.truncate(limit as usize);
            groups.last().map(|g| GroupCursor {
                sort: sort.code(),
                value: sort_value(g, sort),
                id: g.id,
            })
        } else {
            None
        };
        Ok((groups, next))
    }

    pub async fn get_group(&self, project_id: Uuid, group_id: Uuid) -> Result<Group, Error> {
        let row = group::Entity::find()
            .filter(group::Column::Id.eq(group_id))
            .filter(group::Column::ProjectId.eq(project_id))
            .one(&self.db)
            .await
            .map_err(db_err)?
            .ok_or(Error::NotFound { what: "group" })?;
        let mut groups = self.groups_of(vec![row]).await?;
        groups.pop().ok_or(Error::NotFound { what: "group" })
    }

    /// Groups as read, with the members they are assigned to.
    pub(super) async fn groups_of(&self, rows: Vec<group::Model>) -> Result<Vec<Group>, Error> {
        let mut ids: Vec<Uuid> = rows.iter().filter_map(|g| g.assignee_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let members: std::collections::HashMap<Uuid, Assignee> = if ids.is_empty() {
            Default::default()
        } else {
            member::Entity::find()
                .filter(member::Column::Id.is_in(ids))
                .all(&self.db)
                .await
                .map_err(db_err)?
                .into_iter()
                .map(|m| {
                    let a = Assignee {
                        id: m.id,
                        name: m.name,
                        email: m.email,
                    };
                    (a.id, a)
                })
                .collect()
        };
        Ok(rows
            .into_iter()
            .map(|row| {
                let assignee = row.assignee_id.and_then(|id| members.get(&id).cloned());
                convert::group(row, assignee)
            })
            .collect())
    }

    /// The member `who` names (an id or an email address, as typed in any case).
    pub async fn find_member(&self, who: &str) -> Result<Option<Assignee>, Error> {
        let who = who.trim();
        let q = member::Entity::find();
        let q = match Uuid::parse_str(who) {
            Ok(id) => q.filter(member::Column::Id.eq(id)),
            Err(_) => q.filter(
                Expr::expr(Func::lower(Expr::col(member::Column::Email))).eq(who.to_lowercase()),
            ),
        };
        Ok(q.one(&self.db).await.map_err(db_err)?.map(|m| Assignee {
            id: m.id,
            name: m.name,
            email: m.email,
        }))
    }

    /// Assigns a group to a member (`None`: unassigns it), by `by` (`None`: Faultline); with
    /// whether that changed its assignee (giving it to whom it has already records nothing).
    pub async fn assign_group(
        &self,
        project_id: Uuid,
        group_id: Uuid,
        assignee: Option<Uuid>,
        by: Option<&Actor>,
    ) -> Result<(Group, bool), Error> {
        let txn = self.begin_write().await?;
        let before: Option<Uuid> = group::Entity::find()
            .select_only()
            .column(group::Column::AssigneeId)
            .filter(group::Column::Id.eq(group_id))
            .filter(group::Column::ProjectId.eq(project_id))
            .lock(LockType::NoKeyUpdate)
            .into_tuple::<Option<Uuid>>()
            .one(&txn)
            .await
            .map_err(db_err)?
            .ok_or(Error::NotFound { what: "group" })?;
        if before == assignee {
            drop(txn);
            return Ok((self.get_group(project_id, group_id).await?, false));
        }
        let change = match assignee {
            Some(id) => {
                let m = member::Entity::find_by_id(id)
                    .one(&txn)
                    .await
                    .map_err(db_err)?
                    .ok_or_else(|| {
                        Error::invalid_field("assignee", "no such member", "UNKNOWN_MEMBER")
                    })?;
                Change::Assigned(Assignee {
                    id,
                    name: m.name,
                    email: m.email,
                })
            }
            None => Change::Unassigned,
        };
        let res = group::Entity::update_many()
            .col_expr(group::Column::AssigneeId, Expr::value(assignee))
            .filter(group::Column::Id.eq(group_id))
            .filter(group::Column::ProjectId.eq(project_id))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        if res.rows_affected == 0 {
            return Err(Error::NotFound { what: "group" });
        }
        activity::record(&txn, &[(project_id, group_id)], by, &change).await?;
        txn.commit().await.map_err(db_err)?;
        self.note_write();
        Ok((self.get_group(project_id, group_id).await?, true))
    }

    /// The address to tell member `id` of their work at: an active member's email, if any.
    pub async fn member_address(&self, id: Uuid) -> Result<Option<String>, Error> {
        Ok(member::Entity::find_by_id(id)
            .one(&self.db)
            .await
            .map_err(db_err)?
            .filter(|m| m.status == "active" && !m.email.trim().is_empty())
            .map(|m| m.email))
    }

    /// The group with its aggregates: top tags, users, releases, environments, hourly trend.
    pub async fn group_detail(
        &self,
        project_id: Uuid,
        group_id: Uuid,
    ) -> Result<GroupDetail, Error> {
        let group = self.get_group(project_id, group_id).await?;

        let stats = group_stat::Entity::find()
            .filter(group_stat::Column::GroupId.eq(group_id))
            .order_by_desc(group_stat::Column::Count)
            .order_by_asc(group_stat::Column::Dim)
            .order_by_asc(group_stat::Column::Value)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let mut top_tags = Vec::new();
        let mut users_affected = 0u64;
        let mut releases = Vec::new();
        let mut environments = Vec::new();
        for st in stats {
            let count = u64::try_from(st.count).unwrap_or(0);
            match st.dim.as_str() {
                "user" => users_affected += 1,
                "release" => releases.push(st.value),
                "environment" => environments.push(st.value),
                dim => {
                    if let Some(key) = dim.strip_prefix("tag:")
                        && top_tags.len() < TOP_TAGS
                    {
                        top_tags.push((key.to_owned(), st.value, count));
                    }
                }
            }
        }
        releases.sort();
        releases.truncate(DISTINCT_VALUES);
        environments.sort();
        environments.truncate(DISTINCT_VALUES);

        let now_hour = Utc::now().timestamp().div_euclid(3600);
        let first_hour = now_hour - (TREND_HOURS - 1);
        let rows = group_hourly::Entity::find()
            .filter(group_hourly::Column::GroupId.eq(group_id))
            .filter(group_hourly::Column::Hour.gte(first_hour))
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let trend = (first_hour..=now_hour)
            .map(|h| {
                let n = rows
                    .iter()
                    .filter(|r| r.hour == h)
                    .map(|r| r.count)
                    .sum::<i64>();
                (from_millis(h * 3_600_000), u64::try_from(n).unwrap_or(0))
            })
            .collect();

        Ok(GroupDetail {
            group,
            top_tags,
            users_affected,
            releases,
            environments,
            trend,
        })
    }

    /// Sets a group's status. Resolving clears the regression mark; the write is one
    /// statement, so a concurrent ingest cannot be lost between a read and a write.
    pub async fn set_group_status(
        &self,
        project_id: Uuid,
        group_id: Uuid,
        status: GroupStatus,
        by: Option<&Actor>,
    ) -> Result<Group, Error> {
        self.set_group_status_snoozed(project_id, group_id, status, Snooze::default(), by)
            .await
    }

    /// `set_group_status`, and for `Ignored` how long the ignore lasts: for `snooze.minutes`
    /// from now, until `snooze.events` more events (the writer brings the group back), until
    /// `snooze.users` more users are affected (`jobs::snooze` brings it back), whichever comes
    /// first. Any change of status ends an earlier snooze. The change
    /// goes into the group's activity as made by `by` (`None`: Faultline).
    pub async fn set_group_status_snoozed(
        &self,
        project_id: Uuid,
        group_id: Uuid,
        status: GroupStatus,
        snooze: Snooze,
        by: Option<&Actor>,
    ) -> Result<Group, Error> {
        self.change_status(project_id, group_id, status, snooze, false, by)
            .await
    }

    /// A status change; `in_next_release` (with `Resolved`) resolves in the project's latest
    /// release and is refused when the project has seen none.
    async fn change_status(
        &self,
        project_id: Uuid,
        group_id: Uuid,
        status: GroupStatus,
        snooze: Snooze,
        in_next_release: bool,
        by: Option<&Actor>,
    ) -> Result<Group, Error> {
        let release = if in_next_release {
            let Some(latest) = self.latest_release(project_id).await? else {
                // Unknown, or in a project without releases.
                self.get_group(project_id, group_id).await?;
                return Err(Error::invalid_field(
                    "in_next_release",
                    "the project has seen no release yet: no event named one",
                    "NO_RELEASE",
                ));
            };
            Some(latest)
        } else {
            None
        };
        let ignored = status == GroupStatus::Ignored;
        let escalating = ignored && snooze.escalating;
        let snooze = if escalating {
            Snooze {
                events: Some(self.escalating_threshold(group_id).await?),
                window: Some(ESCALATING_WINDOW_MINUTES),
                ..snooze
            }
        } else {
            snooze
        };
        let change = match (status, &release) {
            (GroupStatus::Resolved, Some(r)) => Change::SetResolvedInRelease { release: r.clone() },
            (GroupStatus::Resolved, None) => Change::SetResolved,
            (GroupStatus::Unresolved, _) => Change::SetUnresolved { snooze_end: None },
            (GroupStatus::Ignored, _) => Change::SetIgnored {
                minutes: snooze.minutes,
                events: snooze.events,
                users: snooze.users,
                window: snooze.window,
                user_window: snooze.user_window,
                escalating,
            },
        };
        // A count with a window is a rate (`jobs::snooze` looks at it), not a total.
        let rate = snooze.rate().filter(|_| ignored);
        let user_rate = snooze.user_rate().filter(|_| ignored);
        let until = snooze
            .minutes
            .filter(|_| ignored)
            .map(|m| Utc::now().timestamp_millis() + i64::from(m) * 60_000);
        let until_count = match snooze.events.filter(|_| ignored && rate.is_none()) {
            Some(n) => {
                Expr::col(group::Column::TimesSeen).add(i64::try_from(n).unwrap_or(i64::MAX))
            }
            None => Expr::value(Option::<i64>::None),
        };
        // The users it has affected so far, and as many more.
        let until_users = match snooze.users.filter(|_| ignored && user_rate.is_none()) {
            Some(n) => Expr::cust(format!("({USERS_AFFECTED}) + {n}")),
            None => Expr::value(Option::<i64>::None),
        };
        let mut update = group::Entity::update_many()
            .col_expr(group::Column::Status, Expr::value(status.as_str()))
            .col_expr(group::Column::IgnoredUntil, Expr::value(until))
            .col_expr(group::Column::IgnoredUntilCount, until_count)
            .col_expr(group::Column::IgnoredUntilUsers, until_users)
            .col_expr(
                group::Column::IgnoredRateCount,
                Expr::value(rate.map(|r| i64::try_from(r.count).unwrap_or(i64::MAX))),
            )
            .col_expr(
                group::Column::IgnoredRateWindow,
                Expr::value(rate.map(|r| i32::try_from(r.window).unwrap_or(i32::MAX))),
            )
            .col_expr(
                group::Column::IgnoredUserRateCount,
                Expr::value(user_rate.map(|r| i64::try_from(r.count).unwrap_or(i64::MAX))),
            )
            .col_expr(
                group::Column::IgnoredUserRateWindow,
                Expr::value(user_rate.map(|r| i32::try_from(r.window).unwrap_or(i32::MAX))),
            )
            .col_expr(
                group::Column::IgnoredUntilEscalating,
                Expr::value(escalating),
            )
            .col_expr(group::Column::ResolvedInRelease, Expr::value(release))
            .filter(group::Column::Id.eq(group_id))
            .filter(group::Column::ProjectId.eq(project_id));
        update = match status {
            GroupStatus::Resolved => update
                .col_expr(
                    group::Column::ResolvedAt,
                    Expr::value(Utc::now().timestamp_millis()),
                )
                .col_expr(group::Column::Regressed, Expr::value(false)),
            GroupStatus::Unresolved | GroupStatus::Ignored => {
                update.col_expr(group::Column::ResolvedAt, Expr::value(Option::<i64>::None))
            }
        };
        let txn = self.begin_write().await?;
        let res = update.exec(&txn).await.map_err(db_err)?;
        if res.rows_affected == 0 {
            return Err(Error::NotFound { what: "group" });
        }
        activity::record(&txn, &[(project_id, group_id)], by, &change).await?;
        txn.commit().await.map_err(db_err)?;
        self.note_write();
        self.get_group(project_id, group_id).await
    }

    /// The events of an hour that make a group escalate (Sentry's "archive until escalating"):
    /// `ESCALATING_FACTOR` times its busiest hour (by its events' hourly counts) of the last
    /// `ESCALATING_HISTORY_HOURS`, this hour included, and at least `ESCALATING_FLOOR`.
    async fn escalating_threshold(&self, group_id: Uuid) -> Result<u64, Error> {
        let first_hour = write::hour_of(Utc::now().timestamp_millis()) - ESCALATING_HISTORY_HOURS;
        let peak: Option<i64> = group_hourly::Entity::find()
            .select_only()
            .column_as(group_hourly::Column::Count.max(), "peak")
            .filter(group_hourly::Column::GroupId.eq(group_id))
            .filter(group_hourly::Column::Hour.gte(first_hour))
            .into_tuple()
            .one(&self.db)
            .await
            .map_err(db_err)?
            .flatten();
        let peak = peak.and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
        Ok(Ord::max(
            peak.saturating_mul(ESCALATING_FACTOR),
            ESCALATING_FLOOR,
        ))
    }

    /// Resolves a group in the next release (Sentry's "Resolved in next release"): resolved in
    /// the project's latest release (`latest_release`), so that its events of that release, of
    /// older ones or of none do not reopen it, while an event of a later release does (the
    /// ingest writer; `domain::release`: by version within a package, else by when each was
    /// first seen). Refused when the project has seen no release.
    pub async fn resolve_in_next_release(
        &self,
        project_id: Uuid,
        group_id: Uuid,
        by: Option<&Actor>,
    ) -> Result<Group, Error> {
        let resolved = GroupStatus::Resolved;
        self.change_status(project_id, group_id, resolved, Snooze::default(), true, by)
            .await
    }

    /// The project's latest release, if its events named any (`domain::release::latest`: the
    /// one first seen last, or the highest version of its package).
    pub async fn latest_release(&self, project_id: Uuid) -> Result<Option<String>, Error> {
        let releases: Vec<(String, i64)> = release::Entity::find()
            .select_only()
            .column(release::Column::Version)
            .column(release::Column::FirstSeen)
            .filter(release::Column::ProjectId.eq(project_id))
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(db_err)?;
        Ok(crate::domain::release::latest(&releases).map(str::to_owned))
    }

    /// Brings back, as unresolved, the groups ignored until a time at or before `now_ms`, and
    /// those ignored until a number of users they now have affected (the snooze job); how
    /// many.
    ///
    /// The groups are locked first in the ingest writer's order (project, then fingerprint),
    /// and only as strongly as an update takes them (the writer's look-ups are not blocked):
    /// one `UPDATE` took them in whatever order it found them and could deadlock on
    /// PostgreSQL with a batch counting into two of them.
    pub async fn wake_snoozed_groups(&self, now_ms: i64) -> Result<u64, Error> {
        let ignored = || group::Column::Status.eq(GroupStatus::Ignored.as_str());
        // Read before the write transaction: where each window begins.
        let rates = self.snooze_rate_passes(now_ms).await?;
        let passes = [
            (
                ignored().and(group::Column::IgnoredUntil.lte(now_ms)),
                SnoozeEnd::TimePassed,
            ),
            (
                ignored()
                    .and(group::Column::IgnoredUntilUsers.is_not_null())
                    .and(Expr::cust(format!(
                        r#"({USERS_AFFECTED}) >= "groups"."ignored_until_users""#
                    ))),
                SnoozeEnd::UserCountReached,
            ),
        ]
        .map(|(due, end)| (Condition::all().add(due), end))
        .into_iter()
        .chain(rates);
        let txn = self.begin_write().await?;
        let mut woken_groups = 0;
        for (due, end) in passes {
            let woken = lock_for_update(&txn, due.clone()).await?;
            if woken.is_empty() {
                continue;
            }
            let mut update = group::Entity::update_many().col_expr(
                group::Column::Status,
                Expr::value(GroupStatus::Unresolved.as_str()),
            );
            for column in write::SNOOZE_COLUMNS {
                update = update.col_expr(column, Expr::cust("NULL"));
            }
            let res = update
                .col_expr(group::Column::IgnoredUntilEscalating, Expr::value(false))
                .col_expr(group::Column::UnignoredAt, Expr::value(now_ms))
                .filter(group::Column::Id.is_in(woken.iter().map(|&(_, id)| id)))
                .filter(due)
                .exec(&txn)
                .await
                .map_err(db_err)?;
            // Locked above, every one of them was due and is woken now.
            let change = Change::SetUnresolved {
                snooze_end: Some(end),
            };
            activity::record(&txn, &woken, None, &change).await?;
            woken_groups += res.rows_affected;
        }
        txn.commit().await.map_err(db_err)?;
        if woken_groups > 0 {
            self.note_write();
        }
        Ok(woken_groups)
    }

    /// The conditions that pick the ignored groups whose rate is reached (Sentry's "until it
    /// occurs N times per hour", "until it affects N users per hour"), a pass per window
    /// length in use: the events received in the last `window` minutes (by arrival, counted
    /// in the events' (group, seq) index as `loudest_groups` does), or their distinct users
    /// (of the first `RATE_USERS_READ_MAX` events, which are read), reach the count.
    async fn snooze_rate_passes(&self, now_ms: i64) -> Result<Vec<(Condition, SnoozeEnd)>, Error> {
        let mut passes = Vec::new();
        for users in [false, true] {
            let (count_col, window_col, end) = if users {
                (
                    group::Column::IgnoredUserRateCount,
                    group::Column::IgnoredUserRateWindow,
                    SnoozeEnd::UserCountReached,
                )
            } else {
                (
                    group::Column::IgnoredRateCount,
                    group::Column::IgnoredRateWindow,
                    SnoozeEnd::CountReached,
                )
            };
            let windows: Vec<(i32, Option<i64>)> = group::Entity::find()
                .select_only()
                .column(window_col)
                .column_as(count_col.max(), "most")
                .filter(group::Column::Status.eq(GroupStatus::Ignored.as_str()))
                .filter(window_col.is_not_null())
                .group_by(window_col)
                .into_tuple()
                .all(&self.db)
                .await
                .map_err(db_err)?;
            for (window, most) in windows {
                let since = now_ms - i64::from(window) * 60_000;
                let from_seq = self.first_seq_received_since(since).await?;
                // No group needs more events than the largest count to be woken.
                let cap = match users {
                    true => RATE_USERS_READ_MAX,
                    false => most.and_then(|n| u64::try_from(n).ok()).unwrap_or(1),
                };
                let count =
                    super::alerts::group_events_since(from_seq, Condition::all(), cap, users);
                let due = Condition::all()
                    .add(group::Column::Status.eq(GroupStatus::Ignored.as_str()))
                    .add(window_col.eq(window))
                    .add(
                        Expr::SubQuery(None, Box::new(count.into()))
                            .gte(Expr::col((group::Entity, count_col))),
                    );
                if users {
                    passes.push((due, end));
                } else {
                    // An archive until escalating ends as escalating.
                    let escalating = |on: bool| group::Column::IgnoredUntilEscalating.eq(on);
                    passes.push((due.clone().add(escalating(true)), SnoozeEnd::Escalating));
                    passes.push((due.add(escalating(false)), end));
                }
            }
        }
        Ok(passes)
    }

    /// Merges `ids` (at least two groups of the project) into one, as Sentry's merge does: the
    /// group with the most events (ties: the oldest) keeps its id, title and status and takes
    /// the others' events, tags, counts and grouping keys, so their future events join it too;
    /// the others are gone. Returns the merged group, the ids merged into it, and how many
    /// events moved.
    ///
    /// On PostgreSQL the groups are locked first, in the ingest writer's order (by
    /// fingerprint), so a batch that counts into one of them waits for the merge.
    pub async fn merge_groups(
        &self,
        project_id: Uuid,
        set: &MergeSet,
        by: Option<&Actor>,
    ) -> Result<(Group, Vec<Uuid>, u64), Error> {
        let ids = set.ids();
        let txn = self.begin_write().await?;
        let mut groups = group::Entity::find()
            .filter(group::Column::ProjectId.eq(project_id))
            .filter(group::Column::Id.is_in(ids.iter().copied()))
            .order_by_asc(group::Column::Fingerprint)
            .lock_exclusive()
            .all(&txn)
            .await
            .map_err(db_err)?;
        if groups.len() != ids.len() {
            return Err(Error::NotFound { what: "group" });
        }
        groups.sort_by_key(|g| (std::cmp::Reverse(g.times_seen), g.first_seen, g.id));
        let primary = groups.remove(0);
        let children: Vec<Uuid> = groups.iter().map(|g| g.id).collect();
        let moved: i64 = groups.iter().map(|g| g.times_seen).sum();
        let first_seen = groups
            .iter()
            .map(|g| g.first_seen)
            .fold(primary.first_seen, Ord::min);
        let last_seen = groups
            .iter()
            .map(|g| g.last_seen)
            .fold(primary.last_seen, Ord::max);

        // Tags through the children's events (`ix_events_group_seq`), before the events move.
        let child_events = Query::select()
            .column(event::Column::Seq)
            .from(event::Entity)
            .and_where(event::Column::GroupId.is_in(children.iter().copied()))
            .to_owned();
        let to = primary.id;
        let kids = || children.iter().copied();
        let tags = event_tag::Column::EventSeq.in_subquery(child_events);
        repoint_rows::<event_tag::Entity>(&txn, event_tag::Column::GroupId, to, tags).await?;
        let events = event::Column::GroupId.is_in(kids());
        let moved_events =
            repoint_rows::<event::Entity>(&txn, event::Column::GroupId, to, events).await?;
        let keys = Condition::all()
            .add(group_hash::Column::ProjectId.eq(project_id))
            .add(group_hash::Column::GroupId.is_in(kids()));
        repoint_rows::<group_hash::Entity>(&txn, group_hash::Column::GroupId, to, keys).await?;
        // The conversation and the history go along.
        let comments = group_comment::Column::GroupId.is_in(kids());
        repoint_rows::<group_comment::Entity>(&txn, group_comment::Column::GroupId, to, comments)
            .await?;
        let history = group_activity::Column::GroupId.is_in(kids());
        repoint_rows::<group_activity::Entity>(&txn, group_activity::Column::GroupId, to, history)
            .await?;
        // Counts per value and per hour, added into the primary's (summed per key first: one
        // statement may not update a row twice on PostgreSQL).
        let stats = Query::select()
            .expr(Expr::val(primary.id))
            .column(group_stat::Column::Dim)
            .column(group_stat::Column::Value)
            .expr(Expr::col(group_stat::Column::Count).sum())
            .from(group_stat::Entity)
            .and_where(group_stat::Column::GroupId.is_in(children.iter().copied()))
            .group_by_columns([group_stat::Column::Dim, group_stat::Column::Value])
            .to_owned();
        let insert = write::stat_upsert()
            .select_from(stats)
            .map_err(|e| Error::Internal(format!("merge statement: {e}")))?
            .to_owned();
        txn.execute(&insert).await.map_err(db_err)?;
        let hours = Query::select()
            .expr(Expr::val(primary.id))
            .column(group_hourly::Column::Hour)
            .expr(Expr::col(group_hourly::Column::Count).sum())
            .from(group_hourly::Entity)
            .and_where(group_hourly::Column::GroupId.is_in(children.iter().copied()))
            .group_by_col(group_hourly::Column::Hour)
            .to_owned();
        let insert = write::hourly_upsert()
            .select_from(hours)
            .map_err(|e| Error::Internal(format!("merge statement: {e}")))?
            .to_owned();
        txn.execute(&insert).await.map_err(db_err)?;
        // Their keys were moved above; the rest goes.
        delete_group_rows(&txn, &children).await?;
        group::Entity::update_many()
            .col_expr(
                group::Column::TimesSeen,
                Expr::col(group::Column::TimesSeen).add(moved),
            )
            .col_expr(group::Column::FirstSeen, Expr::value(first_seen))
            .col_expr(group::Column::LastSeen, Expr::value(last_seen))
            .filter(group::Column::Id.eq(primary.id))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        let change = Change::Merge {
            merged: children.clone(),
            events: moved_events,
        };
        activity::record(&txn, &[(project_id, primary.id)], by, &change).await?;
        txn.commit().await.map_err(db_err)?;
        self.note_write();
        let merged = self.get_group(project_id, primary.id).await?;
        Ok((merged, children, moved_events))
    }

    /// Deletes a group with its events, tags and counts; returns how many events went.
    ///
    /// On PostgreSQL the group's row is locked first: a batch that has looked it up (the
    /// writer's look-up takes a key-share lock) commits before the delete goes on, so the
    /// delete's later statements see and take its events, and a batch that looks it up later
    /// waits and then finds the group gone (its events make a new group, as in Sentry).
    /// Deleting events first let a batch commit into the group between the two, leaving
    /// events without a group, or deadlocked with it on the group's counts.
    pub async fn delete_group(&self, project_id: Uuid, group_id: Uuid) -> Result<u64, Error> {
        let txn = self.begin_write().await?;
        let exists = group::Entity::find()
            .filter(group::Column::Id.eq(group_id))
            .filter(group::Column::ProjectId.eq(project_id))
            .lock_exclusive()
            .one(&txn)
            .await
            .map_err(db_err)?;
        if exists.is_none() {
            return Err(Error::NotFound { what: "group" });
        }
        // Through the group's events (`ix_events_group_seq`, then the tags' primary key):
        // `event_tags` has no index on `group_id`, and filtering on it read every tag row.
        let group_events = Query::select()
            .column(event::Column::Seq)
            .from(event::Entity)
            .and_where(event::Column::GroupId.eq(group_id))
            .to_owned();
        event_tag::Entity::delete_many()
            .filter(event_tag::Column::EventSeq.in_subquery(group_events))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        let events = event::Entity::delete_many()
            .filter(event::Column::GroupId.eq(group_id))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        delete_group_rows(&txn, &[group_id]).await?;
        txn.commit().await.map_err(db_err)?;
        self.note_write();
        Ok(events.rows_affected)
    }
}

/// Deletes the rows of groups `ids` in `txn`: their hourly counts, tag counts, grouping keys,
/// comments and the groups themselves (their events are the caller's: deleted, moved, or already gone).
pub(super) async fn delete_group_rows(
    txn: &sea_orm::DatabaseTransaction,
    ids: &[Uuid],
) -> Result<(), Error> {
    let ids = || ids.iter().copied();
    delete_rows::<group_hourly::Entity>(txn, group_hourly::Column::GroupId.is_in(ids())).await?;
    delete_rows::<group_stat::Entity>(txn, group_stat::Column::GroupId.is_in(ids())).await?;
    delete_rows::<group_hash::Entity>(txn, group_hash::Column::GroupId.is_in(ids())).await?;
    delete_rows::<group_comment::Entity>(txn, group_comment::Column::GroupId.is_in(ids())).await?;
    delete_rows::<group_activity::Entity>(txn, group_activity::Column::GroupId.is_in(ids()))
        .await?;
    delete_rows::<group::Entity>(txn, group::Column::Id.is_in(ids())).await?;
    Ok(())
}

/// Locks the groups matching `which` for an update (as strongly as an update takes them, so
/// the ingest writer's look-ups are not blocked), in the writer's order (project, then
/// fingerprint): an `UPDATE` alone took them in whatever order it found them and could
/// deadlock on PostgreSQL with a batch counting into two of them. Their (project, id).
pub(super) async fn lock_for_update(
    txn: &sea_orm::DatabaseTransaction,
    which: impl sea_orm::sea_query::IntoCondition,
) -> Result<Vec<(Uuid, Uuid)>, Error> {
    group::Entity::find()
        .select_only()
        .column(group::Column::ProjectId)
        .column(group::Column::Id)
        .filter(which)
        .order_by_asc(group::Column::ProjectId)
        .order_by_asc(group::Column::Fingerprint)
        .lock(LockType::NoKeyUpdate)
        .into_tuple()
        .all(txn)
        .await
        .map_err(db_err)
}

#[cfg(test)]
mod tests {
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

    use uuid::Uuid;

    use crate::{
        domain::{
            GroupStatus,
            event::{Level, NewEvent},
        },
        error::Error,
        ingest::{CaptureInput, prepare},
        store::{
            entity::{event_tag, group_hash},
            search::tests::store_without_indexer,
        },
    };

    /// An event of `project` with `message` from `release`, dated and received `ms` after the
    /// epoch second 1.7e9 (so a release is first seen at its first event's `ms`).
    fn released(project: Uuid, message: &str, release: &str, ms: i64) -> Box<NewEvent> {
        let at = chrono::DateTime::from_timestamp_millis(1_700_000_000_000 + ms).unwrap();
        let input = CaptureInput {
            message: message.into(),
            release: release.into(),
            timestamp: Some(at),
            ..Default::default()
        };
        Box::new(prepare(project, input, Level::Error, at).unwrap())
    }

    /// Resolved in the next release: resolved in the project's latest release; events of it,
    /// of older releases or of none do not reopen it, a batch with an event of a release
    /// first seen later does (whichever of the batch's events that is); resolving outright or
    /// reopening forgets the release.
    #[tokio::test]
    async fn resolved_in_the_next_release_reopens_only_for_a_later_release() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _, project) = store_without_indexer(dir.path()).await;
        let commit = |events: Vec<Box<NewEvent>>| {
            let store = &store;
            async move { store.commit_batch(events).await.1.unwrap()[0].group_id }
        };
        let state = |group: Uuid| {
            let store = &store;
            async move {
                let g = store.get_group(project, group).await.unwrap();
                (g.status, g.regressed, g.resolved_in_release)
            }
        };
        let resolved_in = |r: &str| (GroupStatus::Resolved, false, Some(r.to_owned()));
        let group = commit(vec![
            released(project, "cart lost", "1.0", 0),
            released(project, "cart lost", "1.0", 1),
        ])
        .await;
        let g = store
            .resolve_in_next_release(project, group, None)
            .await
            .unwrap();
        assert_eq!(g.status, GroupStatus::Resolved);
        assert_eq!(g.resolved_in_release.as_deref(), Some("1.0"));
        assert_eq!(g.last_release, "1.0");

        // Old deploys still send from 1.0: it stays resolved, and counts.
        commit(vec![released(project, "cart lost", "1.0", 2)]).await;
        assert_eq!(state(group).await, resolved_in("1.0"));
        assert_eq!(store.get_group(project, group).await.unwrap().count, 3);

        // One event of 1.1 (new) amid 1.0 ones (newest 1.0): it is back.
        commit(vec![
            released(project, "cart lost", "1.0", 3),
            released(project, "cart lost", "1.1", 4),
            released(project, "cart lost", "1.0", 5),
        ])
        .await;
        assert_eq!(state(group).await, (GroupStatus::Unresolved, true, None));
        assert_eq!(
            store.get_group(project, group).await.unwrap().last_release,
            "1.0"
        );

        // Resolved again, now in 1.1, the project's latest release, though the group's own
        // latest event is of 1.0: 1.0, 1.1 and events without a release leave it resolved.
        let g = store
            .resolve_in_next_release(project, group, None)
            .await
            .unwrap();
        assert_eq!(g.resolved_in_release.as_deref(), Some("1.1"));
        commit(vec![released(project, "cart lost", "1.0", 6)]).await;
        commit(vec![released(project, "cart lost", "", 7)]).await;
        commit(vec![
            released(project, "cart lost", "1.0", 8),
            released(project, "cart lost", "1.1", 9),
            released(project, "cart lost", "1.0", 10),
        ])
        .await;
        assert_eq!(state(group).await, resolved_in("1.1"));

        // A release first seen after 1.1, as neither the first nor the newest event of a batch
        // of three releases: it is back.
        commit(vec![
            released(project, "cart lost", "1.0", 11),
            released(project, "cart lost", "2.0", 12),
            released(project, "cart lost", "1.1", 13),
        ])
        .await;
        assert_eq!(state(group).await, (GroupStatus::Unresolved, true, None));

        // Resolved in 2.0; 2.0 was first seen in the batch above, while another issue's
        // release 0.9, new to the project now, counts as later (the order is by first seen).
        store
            .resolve_in_next_release(project, group, None)
            .await
            .unwrap();
        assert_eq!(state(group).await, resolved_in("2.0"));
        commit(vec![released(project, "other", "0.9", 14)]).await;
        commit(vec![released(project, "cart lost", "0.9", 15)]).await;
        assert_eq!(state(group).await, (GroupStatus::Unresolved, true, None));

        // Resolved outright, then an event of the same release: it is back.
        store
            .resolve_in_next_release(project, group, None)
            .await
            .unwrap();
        let g = store
            .set_group_status(project, group, GroupStatus::Resolved, None)
            .await
            .unwrap();
        assert_eq!(g.resolved_in_release, None);
        commit(vec![released(project, "cart lost", "0.9", 16)]).await;
        assert_eq!(state(group).await, (GroupStatus::Unresolved, true, None));

        // A group whose keys are not recorded (the batch takes it for new, and meets it on its
        // fingerprint, as when another server made it meanwhile): the newest event's release
        // judges it.
        store
            .resolve_in_next_release(project, group, None)
            .await
            .unwrap();
        assert_eq!(state(group).await, resolved_in("0.9"));
        group_hash::Entity::delete_many()
            .filter(group_hash::Column::GroupId.eq(group))
            .exec(&store.db)
            .await
            .unwrap();
        commit(vec![released(project, "cart lost", "0.9", 17)]).await;
        assert_eq!(state(group).await, resolved_in("0.9"));
        group_hash::Entity::delete_many()
            .filter(group_hash::Column::GroupId.eq(group))
            .exec(&store.db)
            .await
            .unwrap();
        commit(vec![released(project, "cart lost", "3.0", 18)]).await;
        assert_eq!(state(group).await, (GroupStatus::Unresolved, true, None));

        // A project that has seen no release cannot; an unknown group is not found.
        let (bare_project, _) = store
            .project_named_or_create("bare", crate::store::search::tests::audit())
            .await
            .unwrap();
        let bare = commit(vec![released(bare_project, "no release", "", 19)]).await;
        let e = store
            .resolve_in_next_release(bare_project, bare, None)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("no release"), "{e}");
        assert_eq!(
            store.get_group(bare_project, bare).await.unwrap().status,
            GroupStatus::Unresolved
        );
        assert!(matches!(
            store
                .resolve_in_next_release(project, Uuid::new_v4(), None)
                .await,
            Err(Error::NotFound { .. })
        ));
    }

    /// Deleting a group removes the tag rows of its events and no other group's.
    #[tokio::test]
    async fn deleting_a_group_removes_its_tag_rows_only() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _, project) = store_without_indexer(dir.path()).await;
        let mut batch: Vec<Box<NewEvent>> = Vec::new();
        for (message, events) in [("doomed issue", 3), ("kept issue", 2)] {
            for i in 0..events {
                let input = CaptureInput {
                    message: message.into(),
                    tags: [("env".into(), "prod".into()), ("n".into(), i.to_string())].into(),
                    ..Default::default()
                };
                let ev = prepare(project, input, Level::Error, chrono::Utc::now()).unwrap();
                batch.push(Box::new(ev));
            }
        }
        let (_, committed) = store.commit_batch(batch).await;
        let committed = committed.unwrap();
        let (doomed, kept) = (committed[0].group_id, committed[3].group_id);
        assert_ne!(doomed, kept);
        let tag_rows = |group| {
            event_tag::Entity::find()
                .filter(event_tag::Column::GroupId.eq(group))
                .count(&store.db)
        };
        assert_eq!(tag_rows(doomed).await.unwrap(), 6);
        assert_eq!(tag_rows(kept).await.unwrap(), 4);

        assert_eq!(store.delete_group(project, doomed).await.unwrap(), 3);
        assert_eq!(tag_rows(doomed).await.unwrap(), 0);
        assert_eq!(tag_rows(kept).await.unwrap(), 4);
    }

    /// Versioned releases (`package@version`) follow their versions: resolving in the next
    /// release takes the highest version even when an older one was first seen last; an old
    /// version first seen after the resolution does not reopen the group, a higher one does,
    /// whichever event of the batch is newest, and its activity names the release and event.
    #[tokio::test]
    async fn versioned_releases_follow_their_versions() {
        use crate::domain::activity::Change;
        let dir = tempfile::tempdir().unwrap();
        let (store, _, project) = store_without_indexer(dir.path()).await;
        let commit = |events: Vec<Box<NewEvent>>| {
            let store = &store;
            async move { store.commit_batch(events).await.1.unwrap()[0].group_id }
        };
        let group = commit(vec![released(project, "cart lost", "shop@2.1.0", 0)]).await;
        commit(vec![released(project, "cart lost", "shop@1.4.2", 5)]).await;
        let g = store
            .resolve_in_next_release(project, group, None)
            .await
            .unwrap();
        assert_eq!(g.resolved_in_release.as_deref(), Some("shop@2.1.0"));

        // Versions never seen before, older than 2.1.0: still resolved.
        commit(vec![released(project, "cart lost", "shop@1.9.0", 10)]).await;
        commit(vec![released(project, "cart lost", "shop@2.1.0-rc2", 11)]).await;
        let g = store.get_group(project, group).await.unwrap();
        assert_eq!(g.status, GroupStatus::Resolved, "{g:?}");

        // 2.1.1 reopens it, though the batch's newest event is of an older version.
        let reopening = released(project, "cart lost", "shop@2.1.1", 20);
        let reopening_id = reopening.id;
        commit(vec![
            released(project, "cart lost", "shop@2.1.0", 19),
            reopening,
            released(project, "cart lost", "shop@1.4.2", 21),
        ])
        .await;
        let g = store.get_group(project, group).await.unwrap();
        assert_eq!((g.status, g.regressed), (GroupStatus::Unresolved, true));
        let newest = store.list_activity(project, group, 1).await.unwrap();
        assert_eq!(
            newest[0].change,
            Change::SetRegression {
                release: "shop@2.1.1".into(),
                event_id: reopening_id
            }
        );
    }
}
