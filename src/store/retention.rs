//! Retention policies and the deletes of the cleanup job.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::{Expr, ExprTrait, Query},
};
use uuid::Uuid;

use super::{
    Store, convert, db_err,
    entity::{event, event_tag, group, group_hash, group_hourly, group_stat, retention},
};
use crate::{
    domain::model::{DEFAULT_RETENTION_DAYS, RetentionPolicy, StoredEvent, from_millis},
    error::Error,
};

const DELETE_CHUNK: u64 = 2000;

fn policy(m: retention::Model) -> RetentionPolicy {
    RetentionPolicy {
        days: u32::try_from(m.days).unwrap_or(0),
        auto_export: m.auto_export,
        export_destination: m.export_destination,
        last_cleanup: m.last_cleanup_at.map(from_millis),
        last_cleanup_deleted: u64::try_from(m.last_cleanup_deleted).unwrap_or(0),
    }
}

impl Store {
    pub async fn get_retention(&self, project_id: Uuid) -> Result<RetentionPolicy, Error> {
        Ok(retention::Entity::find_by_id(project_id)
            .one(&self.db)
            .await
            .map_err(db_err)?
            .map(policy)
            .unwrap_or(RetentionPolicy {
                days: DEFAULT_RETENTION_DAYS,
                auto_export: false,
                export_destination: String::new(),
                last_cleanup: None,
                last_cleanup_deleted: 0,
            }))
    }

    pub async fn set_retention(
        &self,
        project_id: Uuid,
        days: u32,
        auto_export: bool,
        destination: &str,
    ) -> Result<RetentionPolicy, Error> {
        let now = Utc::now().timestamp_millis();
        let existing = retention::Entity::find_by_id(project_id)
            .one(&self.db)
            .await
            .map_err(db_err)?;
        let model = match existing {
            Some(m) => {
                let mut am: retention::ActiveModel = m.into();
                am.days = Set(days as i32);
                am.auto_export = Set(auto_export);
                am.export_destination = Set(destination.to_owned());
                am.updated_at = Set(now);
                am.update(&self.db).await.map_err(db_err)?
            }
            None => retention::ActiveModel {
                project_id: Set(project_id),
                days: Set(days as i32),
                auto_export: Set(auto_export),
                export_destination: Set(destination.to_owned()),
                updated_at: Set(now),
                last_cleanup_at: Set(None),
                last_cleanup_deleted: Set(0),
            }
            .insert(&self.db)
            .await
            .map_err(db_err)?,
        };
        Ok(policy(model))
    }

    /// Expired events (see [`expired`]), oldest first, after sequence number `after_seq`.
    pub async fn expired_events(
        &self,
        project_id: Uuid,
        cutoff_ms: i64,
        after_seq: i64,
        limit: u64,
    ) -> Result<Vec<StoredEvent>, Error> {
        let rows = event::Entity::find()
            .filter(event::Column::ProjectId.eq(project_id))
            .filter(expired(cutoff_ms))
            .filter(event::Column::Seq.gt(after_seq))
            .order_by_asc(event::Column::Seq)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        rows.into_iter().map(|m| convert::event(m, true)).collect()
    }

    /// Deletes the project's expired events (see [`expired`]) whose sequence number is at most
    /// `max_seq` (so nothing is deleted that an export before it did not see), their tags,
    /// old hourly counts and the groups left without events. Returns the events deleted.
    pub async fn delete_expired(
        &self,
        project_id: Uuid,
        cutoff_ms: i64,
        max_seq: i64,
    ) -> Result<u64, Error> {
        let mut deleted = 0u64;
        loop {
            let seqs: Vec<i64> = event::Entity::find()
                .select_only()
                .column(event::Column::Seq)
                .filter(event::Column::ProjectId.eq(project_id))
                .filter(expired(cutoff_ms))
                .filter(event::Column::Seq.lte(max_seq))
                .limit(DELETE_CHUNK)
                .into_tuple()
                .all(&self.db)
                .await
                .map_err(db_err)?;
            if seqs.is_empty() {
                break;
            }
            let txn = self.begin_write().await?;
            event_tag::Entity::delete_many()
                .filter(event_tag::Column::EventSeq.is_in(seqs.clone()))
                .exec(&txn)
                .await
                .map_err(db_err)?;
            let res = event::Entity::delete_many()
                .filter(event::Column::Seq.is_in(seqs))
                .exec(&txn)
                .await
                .map_err(db_err)?;
            txn.commit().await.map_err(db_err)?;
            self.note_write();
            deleted += res.rows_affected;
        }

        let cutoff_hour = cutoff_ms.div_euclid(3_600_000);
        let project_groups = Query::select()
            .column(group::Column::Id)
            .from(group::Entity)
            .and_where(Expr::col(group::Column::ProjectId).eq(project_id))
            .to_owned();
        group_hourly::Entity::delete_many()
            .filter(group_hourly::Column::Hour.lt(cutoff_hour))
            .filter(group_hourly::Column::GroupId.in_subquery(project_groups))
            .exec(&self.db)
            .await
            .map_err(db_err)?;

        while self.delete_groups_without_events(project_id).await? == GROUP_CHUNK {}
        // Every delete of a group now takes its counts and keys with it; these sweeps clear
        // what older versions left behind. A group being made meanwhile is not committed, so
        // neither it nor its rows are seen.
        let live_groups = Query::select()
            .column(group::Column::Id)
            .from(group::Entity)
            .to_owned();
        group_hourly::Entity::delete_many()
            .filter(group_hourly::Column::GroupId.not_in_subquery(live_groups.clone()))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        group_stat::Entity::delete_many()
            .filter(group_stat::Column::GroupId.not_in_subquery(live_groups.clone()))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        group_hash::Entity::delete_many()
            .filter(group_hash::Column::ProjectId.eq(project_id))
            .filter(group_hash::Column::GroupId.not_in_subquery(live_groups))
            .exec(&self.db)
            .await
            .map_err(db_err)?;

        retention::Entity::update_many()
            .col_expr(
                retention::Column::LastCleanupAt,
                Expr::value(Utc::now().timestamp_millis()),
            )
            .col_expr(
                retention::Column::LastCleanupDeleted,
                Expr::value(deleted as i64),
            )
            .filter(retention::Column::ProjectId.eq(project_id))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(deleted)
    }
}

const GROUP_CHUNK: usize = 500;

impl Store {
    /// Deletes up to [`GROUP_CHUNK`] of the project's groups that have no event left, with
    /// their counts and grouping keys; returns how many groups it looked at.
    ///
    /// The candidates are locked first and checked again in a later statement. On PostgreSQL
    /// a batch that has looked a group up (with a key-share lock) commits before the lock is
    /// granted, and that later statement sees its events, so the group is kept; a batch that
    /// looks it up afterwards waits, finds it gone and makes a new one. A single `DELETE …
    /// WHERE NOT EXISTS` judged the events by its own snapshot and could take a group whose
    /// batch committed meanwhile, leaving those events without a group.
    async fn delete_groups_without_events(&self, project_id: Uuid) -> Result<usize, Error> {
        let no_event = || {
            Expr::exists(
                Query::select()
                    .expr(Expr::val(1))
                    .from(event::Entity)
                    .and_where(
                        Expr::col((event::Entity, event::Column::GroupId))
                            .equals((group::Entity, group::Column::Id)),
                    )
                    .to_owned(),
            )
            .not()
        };
        let txn = self.begin_write().await?;
        let candidates: Vec<Uuid> = group::Entity::find()
            .select_only()
            .column(group::Column::Id)
            .filter(group::Column::ProjectId.eq(project_id))
            .filter(no_event())
            .order_by_asc(group::Column::Fingerprint)
            .limit(GROUP_CHUNK as u64)
            .lock_exclusive()
            .into_tuple()
            .all(&txn)
            .await
            .map_err(db_err)?;
        if candidates.is_empty() {
            txn.commit().await.map_err(db_err)?;
            return Ok(0);
        }
        let doomed: Vec<Uuid> = group::Entity::find()
            .select_only()
            .column(group::Column::Id)
            .filter(group::Column::Id.is_in(candidates.iter().copied()))
            .filter(no_event())
            .into_tuple()
            .all(&txn)
            .await
            .map_err(db_err)?;
        super::groups::delete_group_rows(&txn, &doomed).await?;
        txn.commit().await.map_err(db_err)?;
        self.note_write();
        Ok(candidates.len())
    }
}

/// An event expires when both its own time and its arrival are before the cutoff: one sent
/// with a time older than the retention period (a client's clock, a replayed backlog, the Log
/// Center example's fixed date) is kept for the period after it arrived instead of being
/// answered 200 and deleted by the next cleanup. The time column's index finds the candidates.
fn expired(cutoff_ms: i64) -> sea_orm::sea_query::SimpleExpr {
    event::Column::Timestamp
        .lt(cutoff_ms)
        .and(event::Column::ReceivedAt.lt(cutoff_ms))
}
