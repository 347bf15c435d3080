//! User feedback: reports stored as they arrive, listed newest first with the stored event
//! each is about and that event's group (found by Faultline's event id, or by the Sentry event
//! id the event keeps as its idempotency key).

use std::collections::HashMap;

use chrono::Utc;
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::{Expr, ExprTrait, OnConflict, Query},
};
use uuid::Uuid;

use super::{
    Store, db_err,
    entity::{event, user_report},
};
use crate::{
    domain::{
        cursor::CreatedCursor,
        feedback::{NewReport, UserReport},
        model::from_millis,
    },
    error::Error,
};

/// How an event keeps a Sentry event id (`ingest::sentry`).
fn sentry_key(id: Uuid) -> String {
    format!("sentry:{}", id.simple())
}

impl Store {
    /// Stores reports of a project; returns them as stored. A report whose `dedup_key` one
    /// already has replaces its name, email, comments and page (one after the other, so the
    /// later of two in one call wins).
    pub async fn add_user_reports(
        &self,
        project_id: Uuid,
        reports: &[NewReport],
    ) -> Result<Vec<UserReport>, Error> {
        if reports.is_empty() {
            return Ok(Vec::new());
        }
        let now = Utc::now().timestamp_millis();
        let ids: Vec<Uuid> = reports.iter().map(|_| Uuid::now_v7()).collect();
        let keys: Vec<String> = reports.iter().filter_map(|r| r.dedup_key.clone()).collect();
        let rows: Vec<user_report::ActiveModel> = reports
            .iter()
            .zip(&ids)
            .map(|(r, &id)| user_report::ActiveModel {
                id: Set(id),
                project_id: Set(project_id),
                event_id: Set(r.event_id),
                event_key: Set(r.event_id.map(sentry_key).unwrap_or_default()),
                name: Set(r.name.clone()),
                email: Set(r.email.clone()),
                comments: Set(r.comments.clone()),
                url: Set(r.url.clone()),
                dedup_key: Set(r.dedup_key.clone()),
                created_at: Set(now),
            })
            .collect();
        use user_report::Column as C;
        self.upsert_rows(
            rows,
            OnConflict::columns([C::ProjectId, C::DedupKey])
                .update_columns([C::Name, C::Email, C::Comments, C::Url])
                .to_owned(),
        )
        .await?;
        let stored = user_report::Entity::find()
            .filter(C::ProjectId.eq(project_id))
            .filter(
                Condition::any()
                    .add(C::Id.is_in(ids))
                    .add(C::DedupKey.is_in(keys)),
            )
            .order_by_desc(C::CreatedAt)
            .order_by_desc(C::Id)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        self.linked(project_id, stored).await
    }

    /// Deletes the project's reports made before `cutoff_ms`; returns how many went.
    pub async fn forget_user_reports(
        &self,
        project_id: Uuid,
        cutoff_ms: i64,
    ) -> Result<u64, Error> {
        let txn = self.begin_write().await?;
        let gone = super::delete_rows::<user_report::Entity>(
            &txn,
            user_report::Column::ProjectId
                .eq(project_id)
                .and(user_report::Column::CreatedAt.lt(cutoff_ms)),
        )
        .await?;
        txn.commit().await.map_err(db_err)?;
        Ok(gone)
    }

    /// A page of a project's reports, newest first, after `cursor`; only those about an
    /// event of `group_id` when given.
    pub async fn list_user_reports(
        &self,
        project_id: Uuid,
        group_id: Option<Uuid>,
        cursor: Option<CreatedCursor>,
        limit: u64,
    ) -> Result<(Vec<UserReport>, Option<CreatedCursor>), Error> {
        use user_report::Column as C;
        let mut q = user_report::Entity::find().filter(C::ProjectId.eq(project_id));
        if let Some(group) = group_id {
            // An event of the group that the report names, by either of its ids.
            let named = Condition::any()
                .add(
                    Expr::col((event::Entity, event::Column::Id))
                        .equals((user_report::Entity, C::EventId)),
                )
                .add(
                    Expr::col((event::Entity, event::Column::IdempotencyKey))
                        .equals((user_report::Entity, C::EventKey)),
                );
            q = q.filter(Expr::exists(
                Query::select()
                    .expr(Expr::val(1))
                    .from(event::Entity)
                    .and_where(Expr::col((event::Entity, event::Column::ProjectId)).eq(project_id))
                    .and_where(Expr::col((event::Entity, event::Column::GroupId)).eq(group))
                    .cond_where(named)
                    .to_owned(),
            ));
        }
        if let Some(c) = cursor {
            q = q.filter(
                Condition::any().add(C::CreatedAt.lt(c.created_at)).add(
                    Condition::all()
                        .add(C::CreatedAt.eq(c.created_at))
                        .add(C::Id.lt(c.id)),
                ),
            );
        }
        let mut rows = q
            .order_by_desc(C::CreatedAt)
            .order_by_desc(C::Id)
            .limit(limit + 1)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let next = rows.last().filter(|_| more).map(|r| CreatedCursor {
            created_at: r.created_at,
            id: r.id,
        });
        Ok((self.linked(project_id, rows).await?, next))
    }

    /// Reports as read, each with the stored event it names and that event's group.
    async fn linked(
        &self,
        project_id: Uuid,
        rows: Vec<user_report::Model>,
    ) -> Result<Vec<UserReport>, Error> {
        let ids: Vec<Uuid> = rows.iter().filter_map(|r| r.event_id).collect();
        let keys: Vec<String> = rows
            .iter()
            .map(|r| r.event_key.clone())
            .filter(|k| !k.is_empty())
            .collect();
        let mut by_id: HashMap<Uuid, (Uuid, Uuid)> = HashMap::new();
        let mut by_key: HashMap<String, (Uuid, Uuid)> = HashMap::new();
        if !ids.is_empty() {
            let found: Vec<(Uuid, Uuid, Option<String>)> = event::Entity::find()
                .select_only()
                .column(event::Column::Id)
                .column(event::Column::GroupId)
                .column(event::Column::IdempotencyKey)
                .filter(event::Column::ProjectId.eq(project_id))
                .filter(
                    Condition::any()
                        .add(event::Column::Id.is_in(ids))
                        .add(event::Column::IdempotencyKey.is_in(keys)),
                )
                .into_tuple()
                .all(&self.db)
                .await
                .map_err(db_err)?;
            for (id, group, key) in found {
                by_id.insert(id, (id, group));
                if let Some(k) = key {
                    by_key.insert(k, (id, group));
                }
            }
        }
        Ok(rows
            .into_iter()
            .map(|r| UserReport {
                event: r
                    .event_id
                    .and_then(|id| by_id.get(&id).copied())
                    .or_else(|| by_key.get(&r.event_key).copied()),
                id: r.id,
                project_id: r.project_id,
                event_id: r.event_id,
                name: r.name,
                email: r.email,
                comments: r.comments,
                url: r.url,
                created_at: from_millis(r.created_at),
            })
            .collect())
    }
}
