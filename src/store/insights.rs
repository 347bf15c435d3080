//! Reads behind statistics, trends and offset-paged group listings, and the server's
//! start/stop history. Raw figures only; what they mean is computed in `domain::insights`.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Alias, Expr, ExprTrait, Order, Query},
};
use uuid::Uuid;

use super::{
    Store, db_err,
    entity::{event, group, group_hourly, group_stat},
};
use crate::{
    domain::{GroupStatus, Level, insights::Run, model::Group},
    error::Error,
};

/// Counts behind `/api/stats`.
#[derive(Debug, Clone, Default)]
pub struct StatsFigures {
    pub groups: u64,
    pub resolved: u64,
    pub first_seen_today: u64,
    pub first_seen_7d: u64,
    pub first_seen_30d: u64,
    pub events_24h: u64,
    /// Mean first-seen-to-resolved time of resolved groups, in milliseconds.
    pub avg_resolution_ms: Option<f64>,
}

/// Raw series behind a trend, all at or after its start.
#[derive(Debug, Clone, Default)]
pub struct TrendFigures {
    /// (hour since the epoch, events).
    pub hourly_events: Vec<(i64, u64)>,
    /// Resolve times (ms) of groups resolved now.
    pub resolved_at: Vec<i64>,
    /// Times (ms) of fatal events.
    pub fatal_at: Vec<i64>,
}

const RUNS: &str = "process_runs";

impl Store {
    /// Groups by offset, most recently seen first, with the number matching.
    pub async fn query_groups(
        &self,
        project_id: Uuid,
        level: Option<Level>,
        source: Option<&str>,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<Group>, u64), Error> {
        let mut q = group::Entity::find().filter(group::Column::ProjectId.eq(project_id));
        if let Some(l) = level {
            q = q.filter(group::Column::Level.eq(l.as_str()));
        }
        if let Some(src) = source {
            let with_source = Query::select()
                .column(group_stat::Column::GroupId)
                .from(group_stat::Entity)
                .and_where(Expr::col(group_stat::Column::Dim).eq("tag:source"))
                .and_where(Expr::col(group_stat::Column::Value).eq(src))
                .to_owned();
            q = q.filter(group::Column::Id.in_subquery(with_source));
        }
        let total = q.clone().count(&self.db).await.map_err(db_err)?;
        let rows = q
            .order_by(group::Column::LastSeen, Order::Desc)
            .order_by(group::Column::Id, Order::Desc)
            .offset(offset)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        Ok((self.groups_of(rows).await?, total))
    }

    pub async fn stats_figures(
        &self,
        project_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<StatsFigures, Error> {
        let groups = || group::Entity::find().filter(group::Column::ProjectId.eq(project_id));
        let count = |q: sea_orm::Select<group::Entity>| async move {
            q.count(&self.db).await.map_err(db_err)
        };
        let day_ms = 86_400_000i64;
        let now_ms = now.timestamp_millis();
        let today = now_ms - now_ms.rem_euclid(day_ms);
        let resolved_q = groups().filter(group::Column::Status.eq(GroupStatus::Resolved.as_str()));
        let mut f = StatsFigures {
            groups: count(groups()).await?,
            resolved: count(resolved_q).await?,
            first_seen_today: count(groups().filter(group::Column::FirstSeen.gte(today))).await?,
            first_seen_7d: count(
                groups().filter(group::Column::FirstSeen.gte(now_ms - 7 * day_ms)),
            )
            .await?,
            first_seen_30d: count(
                groups().filter(group::Column::FirstSeen.gte(now_ms - 30 * day_ms)),
            )
            .await?,
            ..StatsFigures::default()
        };
        let this_hour = now.timestamp().div_euclid(3600);
        f.events_24h = self
            .hourly_events(project_id, this_hour - 23)
            .await?
            .iter()
            .map(|(_, n)| n)
            .sum();
        // AVG over BIGINT is NUMERIC on PostgreSQL and REAL on SQLite; the cast makes it a float on both.
        let stmt = Query::select()
            .expr_as(
                Expr::cust(r#"CAST(AVG("resolved_at" - "first_seen") AS DOUBLE PRECISION)"#),
                Alias::new("avg_ms"),
            )
            .from(group::Entity)
            .and_where(Expr::col(group::Column::ProjectId).eq(project_id))
            .and_where(Expr::col(group::Column::Status).eq(GroupStatus::Resolved.as_str()))
            .and_where(Expr::col(group::Column::ResolvedAt).is_not_null())
            .to_owned();
        if let Some(row) = self.db.query_one(&stmt).await.map_err(db_err)? {
            f.avg_resolution_ms = row.try_get::<Option<f64>>("", "avg_ms").map_err(db_err)?;
        }
        Ok(f)
    }

    /// Events per hour of the project from `first_hour` on.
    async fn hourly_events(
        &self,
        project_id: Uuid,
        first_hour: i64,
    ) -> Result<Vec<(i64, u64)>, Error> {
        let in_project = Query::select()
            .column(group::Column::Id)
            .from(group::Entity)
            .and_where(Expr::col(group::Column::ProjectId).eq(project_id))
            .to_owned();
        let rows = group_hourly::Entity::find()
            .filter(group_hourly::Column::Hour.gte(first_hour))
            .filter(group_hourly::Column::GroupId.in_subquery(in_project))
            .all(&self.db)
            .await
            .map_err(db_err)?;
        Ok(rows
            .into_iter()
            .map(|r| (r.hour, u64::try_from(r.count).unwrap_or(0)))
            .collect())
    }

    pub async fn trend_figures(
        &self,
        project_id: Uuid,
        since: DateTime<Utc>,
    ) -> Result<TrendFigures, Error> {
        let since_ms = since.timestamp_millis();
        let hourly_events = self
            .hourly_events(project_id, since.timestamp().div_euclid(3600))
            .await?;
        let resolved_at = group::Entity::find()
            .select_only()
            .column(group::Column::ResolvedAt)
            .filter(group::Column::ProjectId.eq(project_id))
            .filter(group::Column::Status.eq(GroupStatus::Resolved.as_str()))
            .filter(group::Column::ResolvedAt.gte(since_ms))
            .into_tuple::<Option<i64>>()
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .flatten()
            .collect();
        let fatal_at = event::Entity::find()
            .select_only()
            .column(event::Column::Timestamp)
            .filter(event::Column::ProjectId.eq(project_id))
            .filter(event::Column::Level.eq(Level::Fatal.as_str()))
            .filter(event::Column::Timestamp.gte(since_ms))
            .into_tuple::<i64>()
            .all(&self.db)
            .await
            .map_err(db_err)?;
        Ok(TrendFigures {
            hourly_events,
            resolved_at,
            fatal_at,
        })
    }

    /// Records the start of a server run.
    pub async fn record_run_start(&self, run_id: Uuid, at: DateTime<Utc>) -> Result<(), Error> {
        let ms = at.timestamp_millis();
        let stmt = Query::insert()
            .into_table(Alias::new(RUNS))
            .columns([
                Alias::new("id"),
                Alias::new("started_at"),
                Alias::new("last_alive_at"),
            ])
            .values_panic([run_id.into(), ms.into(), ms.into()])
            .to_owned();
        self.db.execute(&stmt).await.map_err(db_err)?;
        Ok(())
    }

    /// Notes that the run is still alive (so a crash leaves a close end time), or, with
    /// `stopped`, that it stopped cleanly.
    pub async fn record_run_alive(
        &self,
        run_id: Uuid,
        at: DateTime<Utc>,
        stopped: bool,
    ) -> Result<(), Error> {
        let ms = at.timestamp_millis();
        let mut stmt = Query::update();
        stmt.table(Alias::new(RUNS))
            .value(Alias::new("last_alive_at"), ms)
            .and_where(Expr::col(Alias::new("id")).eq(run_id));
        if stopped {
            stmt.value(Alias::new("stopped_at"), ms);
        }
        self.db.execute(&stmt).await.map_err(db_err)?;
        Ok(())
    }

    /// Every recorded run, oldest first.
    pub async fn runs(&self) -> Result<Vec<Run>, Error> {
        let stmt = Query::select()
            .columns([
                Alias::new("id"),
                Alias::new("started_at"),
                Alias::new("last_alive_at"),
                Alias::new("stopped_at"),
            ])
            .from(Alias::new(RUNS))
            .order_by(Alias::new("started_at"), Order::Asc)
            .to_owned();
        self.db
            .query_all(&stmt)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|r| {
                Ok(Run {
                    id: r.try_get("", "id").map_err(db_err)?,
                    started_at: r.try_get("", "started_at").map_err(db_err)?,
                    last_alive_at: r.try_get("", "last_alive_at").map_err(db_err)?,
                    stopped_at: r.try_get("", "stopped_at").map_err(db_err)?,
                })
            })
            .collect()
    }

    /// One round trip that reads a table, so a database that lost its schema fails it (a
    /// bare `SELECT 1` can still pass then); for SQLite, also that its file is still there.
    pub async fn health_probe(&self) -> Result<(), Error> {
        if let Some(file) = &self.sqlite_file
            && !file.is_file()
        {
            return Err(Error::Unavailable("the database file is gone".into()));
        }
        let stmt = Query::select()
            .expr_as(Expr::cust("COUNT(*)"), Alias::new("n"))
            .from(Alias::new("projects"))
            .to_owned();
        self.db.query_one(&stmt).await.map_err(db_err)?;
        Ok(())
    }
}
