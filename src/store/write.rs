//! The batch commit behind the ingest writer: one transaction per batch, with set-based
//! statements — one multi-row upsert for all the batch's groups, multi-row inserts for events
//! and tags, one upsert for the hourly counts — instead of a round trip per event.
//!
//! Group counts stay exact when several servers share one PostgreSQL: the upsert adds the
//! batch's count to whatever the row holds at that moment, under the row lock, and groups
//! are upserted in a fixed order so two batches cannot deadlock.

use std::collections::{BTreeMap, HashMap};

use sea_orm::{
    ConnectionTrait, DatabaseTransaction, EntityName, Value,
    sea_query::{Expr, ExprTrait, OnConflict, Query},
};
use uuid::Uuid;

use super::{
    Store, db_err,
    entity::{event, event_tag, group, group_hourly, group_stat},
};
use crate::{
    domain::{NewEvent, model::Committed},
    error::Error,
};

// Statement sizes keep well under SQLite's 32 766 and PostgreSQL's 65 535 bind parameters.
const EVENT_ROWS_PER_STATEMENT: usize = 500;
const TAG_ROWS_PER_STATEMENT: usize = 2000;
const GROUP_ROWS_PER_STATEMENT: usize = 1000;
const STAT_ROWS_PER_STATEMENT: usize = 2000;

struct GroupAgg<'a> {
    proposed_id: Uuid,
    count: i64,
    first_seen: i64,
    last_seen: i64,
    newest: &'a NewEvent,
}

impl Store {
    /// Commits `batch` in one transaction and returns, per event and in order, what was
    /// committed. Events repeating an idempotency key (stored before, or earlier in the same
    /// batch) store nothing and get the first event's result with `duplicate` set.
    pub async fn commit_batch(&self, batch: &[&NewEvent]) -> Result<Vec<Committed>, Error> {
        let txn = self.begin_ingest().await?;
        let results = commit_in(&txn, batch).await?;
        txn.commit().await.map_err(db_err)?;
        self.note_write();
        Ok(results)
    }
}

async fn commit_in(
    txn: &DatabaseTransaction,
    batch: &[&NewEvent],
) -> Result<Vec<Committed>, Error> {
    let mut results: Vec<Option<Committed>> = vec![None; batch.len()];
    let mut first_with_key: HashMap<(Uuid, &str), usize> = HashMap::new();
    let mut repeats: Vec<(usize, usize)> = Vec::new();

    // Idempotency keys already stored.
    let known = known_idempotency_keys(txn, batch).await?;
    let mut to_insert = Vec::with_capacity(batch.len());
    for (i, ev) in batch.iter().enumerate() {
        if let Some(key) = ev.idempotency_key.as_deref() {
            if let Some(c) = known.get(&(ev.project_id, key.to_owned())) {
                results[i] = Some(c.clone());
                continue;
            }
            if let Some(&first) = first_with_key.get(&(ev.project_id, key)) {
                repeats.push((i, first));
                continue;
            }
            first_with_key.insert((ev.project_id, key), i);
        }
        to_insert.push(i);
    }

    // One row per group touched by the batch, in a fixed order (lock order on PostgreSQL).
    let mut aggs: BTreeMap<(Uuid, &str), GroupAgg<'_>> = BTreeMap::new();
    for &i in &to_insert {
        let ev: &NewEvent = batch[i];
        let ts = ev.timestamp.timestamp_millis();
        let agg = aggs
            .entry((ev.project_id, ev.fingerprint.as_str()))
            .or_insert_with(|| GroupAgg {
                proposed_id: Uuid::now_v7(),
                count: 0,
                first_seen: ts,
                last_seen: ts,
                newest: ev,
            });
        agg.count += 1;
        agg.first_seen = Ord::min(agg.first_seen, ts);
        if ts >= agg.last_seen {
            agg.last_seen = ts;
            agg.newest = ev;
        }
    }
    let group_ids = upsert_groups(txn, &aggs).await?;

    // Events, then their tags and the hourly counts.
    let mut seqs: HashMap<Uuid, i64> = HashMap::with_capacity(to_insert.len());
    for chunk in to_insert.chunks(EVENT_ROWS_PER_STATEMENT) {
        let mut stmt = Query::insert();
        stmt.into_table(event::Entity.table_ref()).columns([
            event::Column::Id,
            event::Column::ProjectId,
            event::Column::GroupId,
            event::Column::Timestamp,
            event::Column::ReceivedAt,
            event::Column::Level,
            event::Column::Message,
            event::Column::Code,
            event::Column::ExceptionType,
            event::Column::Culprit,
            event::Column::Release,
            event::Column::Environment,
            event::Column::UserId,
            event::Column::Tags,
            event::Column::IdempotencyKey,
            event::Column::SearchText,
            event::Column::Data,
        ]);
        for &i in chunk {
            let ev: &NewEvent = batch[i];
            let (gid, _) = group_ids[&(ev.project_id, ev.fingerprint.as_str())];
            stmt.values_panic([
                ev.id.into(),
                ev.project_id.into(),
                gid.into(),
                ev.timestamp.timestamp_millis().into(),
                ev.received_at.timestamp_millis().into(),
                ev.level.as_str().into(),
                ev.message.clone().into(),
                ev.code.clone().into(),
                ev.exception_type.clone().into(),
                ev.culprit.clone().into(),
                ev.release.clone().into(),
                ev.environment.clone().into(),
                ev.user_id.clone().into(),
                serde_json::to_string(&ev.tags)
                    .unwrap_or_else(|_| "{}".into())
                    .into(),
                Value::from(ev.idempotency_key.clone()).into(),
                ev.search_text.clone().into(),
                ev.data.clone().into(),
            ]);
        }
        stmt.returning(Query::returning().columns([event::Column::Seq, event::Column::Id]));
        for row in txn.query_all(&stmt).await.map_err(db_err)? {
            let seq: i64 = row.try_get("", "seq").map_err(db_err)?;
            let id: Uuid = row.try_get("", "id").map_err(db_err)?;
            seqs.insert(id, seq);
        }
    }

    let mut tag_rows = Vec::new();
    let mut hourly: BTreeMap<(Uuid, i64), i64> = BTreeMap::new();
    let mut stats: BTreeMap<(Uuid, String, &str), i64> = BTreeMap::new();
    for &i in &to_insert {
        let ev: &NewEvent = batch[i];
        let (gid, _) = group_ids[&(ev.project_id, ev.fingerprint.as_str())];
        let seq = *seqs
            .get(&ev.id)
            .ok_or_else(|| Error::Internal("inserted event not returned".into()))?;
        for (k, v) in &ev.tags {
            tag_rows.push((seq, ev.project_id, gid, k, v));
            *stats
                .entry((gid, format!("tag:{k}"), v.as_str()))
                .or_default() += 1;
        }
        for (dim, value) in [
            ("release", &ev.release),
            ("environment", &ev.environment),
            ("user", &ev.user_id),
        ] {
            if !value.is_empty() {
                *stats
                    .entry((gid, dim.to_owned(), value.as_str()))
                    .or_default() += 1;
            }
        }
        *hourly
            .entry((gid, ev.timestamp.timestamp().div_euclid(3600)))
            .or_default() += 1;
    }
    for chunk in tag_rows.chunks(TAG_ROWS_PER_STATEMENT) {
        let mut stmt = Query::insert();
        stmt.into_table(event_tag::Entity.table_ref()).columns([
            event_tag::Column::EventSeq,
            event_tag::Column::ProjectId,
            event_tag::Column::GroupId,
            event_tag::Column::Key,
            event_tag::Column::Value,
        ]);
        for (seq, pid, gid, k, v) in chunk {
            stmt.values_panic([
                (*seq).into(),
                (*pid).into(),
                (*gid).into(),
                (*k).clone().into(),
                (*v).clone().into(),
            ]);
        }
        txn.execute(&stmt).await.map_err(db_err)?;
    }
    if !hourly.is_empty() {
        let mut stmt = Query::insert();
        stmt.into_table(group_hourly::Entity.table_ref()).columns([
            group_hourly::Column::GroupId,
            group_hourly::Column::Hour,
            group_hourly::Column::Count,
        ]);
        for ((gid, hour), n) in &hourly {
            stmt.values_panic([(*gid).into(), (*hour).into(), (*n).into()]);
        }
        stmt.on_conflict(
            OnConflict::columns([group_hourly::Column::GroupId, group_hourly::Column::Hour])
                .value(
                    group_hourly::Column::Count,
                    Expr::cust(r#""group_hourly"."count" + excluded."count""#),
                )
                .to_owned(),
        );
        txn.execute(&stmt).await.map_err(db_err)?;
    }

    let stat_rows: Vec<_> = stats.into_iter().collect();
    for chunk in stat_rows.chunks(STAT_ROWS_PER_STATEMENT) {
        let mut stmt = Query::insert();
        stmt.into_table(group_stat::Entity.table_ref()).columns([
            group_stat::Column::GroupId,
            group_stat::Column::Dim,
            group_stat::Column::Value,
            group_stat::Column::Count,
        ]);
        for ((gid, dim, value), n) in chunk {
            stmt.values_panic([
                (*gid).into(),
                dim.clone().into(),
                (*value).to_owned().into(),
                (*n).into(),
            ]);
        }
        stmt.on_conflict(
            OnConflict::columns([
                group_stat::Column::GroupId,
                group_stat::Column::Dim,
                group_stat::Column::Value,
            ])
            .value(
                group_stat::Column::Count,
                Expr::cust(r#""group_stats"."count" + excluded."count""#),
            )
            .to_owned(),
        );
        txn.execute(&stmt).await.map_err(db_err)?;
    }

    // Answers: the first event of a newly created group reports new_group.
    let mut announced_new: HashMap<Uuid, bool> = HashMap::new();
    for &i in &to_insert {
        let ev: &NewEvent = batch[i];
        let (gid, created) = group_ids[&(ev.project_id, ev.fingerprint.as_str())];
        let new_group = created && announced_new.insert(gid, true).is_none();
        results[i] = Some(Committed {
            event_id: ev.id,
            group_id: gid,
            fingerprint: ev.fingerprint.clone(),
            new_group,
            duplicate: false,
        });
    }
    for (i, first) in repeats {
        let mut c = results[first]
            .clone()
            .ok_or_else(|| Error::Internal("idempotency order".into()))?;
        c.new_group = false;
        c.duplicate = true;
        results[i] = Some(c);
    }
    results
        .into_iter()
        .map(|r| r.ok_or_else(|| Error::Internal("event left without a result".into())))
        .collect()
}

/// Upserts one row per group and returns each group's id and whether this batch created it.
async fn upsert_groups<'a>(
    txn: &DatabaseTransaction,
    aggs: &BTreeMap<(Uuid, &'a str), GroupAgg<'_>>,
) -> Result<HashMap<(Uuid, &'a str), (Uuid, bool)>, Error> {
    let mut out = HashMap::with_capacity(aggs.len());
    let entries: Vec<_> = aggs.iter().collect();
    let keys: HashMap<(Uuid, String), ((Uuid, &'a str), Uuid)> = aggs
        .iter()
        .map(|(k, v)| ((k.0, k.1.to_owned()), (*k, v.proposed_id)))
        .collect();
    for chunk in entries.chunks(GROUP_ROWS_PER_STATEMENT) {
        let mut stmt = Query::insert();
        stmt.into_table(group::Entity.table_ref()).columns([
            group::Column::Id,
            group::Column::ProjectId,
            group::Column::Fingerprint,
            group::Column::GroupingVersion,
            group::Column::Title,
            group::Column::Culprit,
            group::Column::Level,
            group::Column::Status,
            group::Column::Regressed,
            group::Column::TimesSeen,
            group::Column::FirstSeen,
            group::Column::LastSeen,
        ]);
        for ((pid, fp), agg) in chunk {
            let ev = agg.newest;
            stmt.values_panic([
                agg.proposed_id.into(),
                (*pid).into(),
                (*fp).to_owned().into(),
                (ev.grouping_version as i32).into(),
                ev.title.clone().into(),
                ev.culprit.clone().into(),
                ev.level.as_str().into(),
                "unresolved".into(),
                false.into(),
                agg.count.into(),
                agg.first_seen.into(),
                agg.last_seen.into(),
            ]);
        }
        // A resolved group that receives an event reopens as regressed; an ignored one stays
        // ignored. Every right-hand side reads the row as it was before this statement.
        stmt.on_conflict(
            OnConflict::columns([group::Column::ProjectId, group::Column::Fingerprint])
                .value(group::Column::TimesSeen, Expr::cust(r#""groups"."times_seen" + excluded."times_seen""#))
                .value(
                    group::Column::LastSeen,
                    Expr::cust(r#"CASE WHEN excluded."last_seen" > "groups"."last_seen" THEN excluded."last_seen" ELSE "groups"."last_seen" END"#),
                )
                .value(
                    group::Column::FirstSeen,
                    Expr::cust(r#"CASE WHEN excluded."first_seen" < "groups"."first_seen" THEN excluded."first_seen" ELSE "groups"."first_seen" END"#),
                )
                .value(
                    group::Column::Level,
                    Expr::cust(r#"CASE WHEN excluded."last_seen" >= "groups"."last_seen" THEN excluded."level" ELSE "groups"."level" END"#),
                )
                .value(
                    group::Column::Regressed,
                    Expr::cust(r#"CASE WHEN "groups"."status" = 'resolved' THEN TRUE ELSE "groups"."regressed" END"#),
                )
                .value(
                    group::Column::ResolvedAt,
                    Expr::cust(r#"CASE WHEN "groups"."status" = 'resolved' THEN NULL ELSE "groups"."resolved_at" END"#),
                )
                .value(
                    group::Column::Status,
                    Expr::cust(r#"CASE WHEN "groups"."status" = 'resolved' THEN 'unresolved' ELSE "groups"."status" END"#),
                )
                // Fix workflow (Log Center): a recurrence after DEPLOYED starts the workflow over.
                .value(
                    group::Column::WorkflowStage,
                    Expr::cust(r#"CASE WHEN "groups"."status" = 'resolved' AND "groups"."workflow_stage" = 'DEPLOYED' THEN 'NEW' ELSE "groups"."workflow_stage" END"#),
                )
                .to_owned(),
        );
        stmt.returning(Query::returning().columns([
            group::Column::Id,
            group::Column::ProjectId,
            group::Column::Fingerprint,
        ]));
        let rows = txn.query_all(&stmt).await.map_err(db_err)?;
        for row in rows {
            let id: Uuid = row.try_get("", "id").map_err(db_err)?;
            let pid: Uuid = row.try_get("", "project_id").map_err(db_err)?;
            let fp: String = row.try_get("", "fingerprint").map_err(db_err)?;
            if let Some((key, proposed)) = keys.get(&(pid, fp)) {
                out.insert(*key, (id, id == *proposed));
            }
        }
    }
    if out.len() != aggs.len() {
        return Err(Error::Internal(
            "group upsert returned fewer rows than groups".into(),
        ));
    }
    Ok(out)
}

async fn known_idempotency_keys(
    txn: &DatabaseTransaction,
    batch: &[&NewEvent],
) -> Result<HashMap<(Uuid, String), Committed>, Error> {
    let mut by_project: BTreeMap<Uuid, Vec<String>> = BTreeMap::new();
    for ev in batch {
        if let Some(k) = &ev.idempotency_key {
            by_project.entry(ev.project_id).or_default().push(k.clone());
        }
    }
    let mut known = HashMap::new();
    for (pid, keys) in by_project {
        let stmt = Query::select()
            .column((event::Entity, event::Column::Id))
            .column((event::Entity, event::Column::GroupId))
            .column((event::Entity, event::Column::IdempotencyKey))
            .column((group::Entity, group::Column::Fingerprint))
            .from(event::Entity)
            .inner_join(
                group::Entity,
                Expr::col((group::Entity, group::Column::Id))
                    .equals((event::Entity, event::Column::GroupId)),
            )
            .and_where(Expr::col((event::Entity, event::Column::ProjectId)).eq(pid))
            .and_where(Expr::col((event::Entity, event::Column::IdempotencyKey)).is_in(keys))
            .to_owned();
        for row in txn.query_all(&stmt).await.map_err(db_err)? {
            let key: String = row.try_get("", "idempotency_key").map_err(db_err)?;
            known.insert(
                (pid, key),
                Committed {
                    event_id: row.try_get("", "id").map_err(db_err)?,
                    group_id: row.try_get("", "group_id").map_err(db_err)?,
                    fingerprint: row.try_get("", "fingerprint").map_err(db_err)?,
                    new_group: false,
                    duplicate: true,
                },
            );
        }
    }
    Ok(known)
}
