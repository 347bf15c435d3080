//! The batch commit behind the ingest writer: one transaction per batch, with set-based
//! statements — one multi-row upsert for all the batch's groups, multi-row inserts for events
//! and tags, one upsert for the hourly counts — instead of a round trip per event.
//!
//! Group counts stay exact when several servers share one PostgreSQL: the upsert adds the
//! batch's count to whatever the row holds at that moment, under the row lock, and groups
//! are upserted in a fixed order so two batches cannot deadlock.
//!
//! An event has several grouping keys (`group_hashes`): one lookup per batch finds the groups
//! its keys name; events sharing a key are clustered so they land together. A cluster with no
//! known key records its keys (`ON CONFLICT DO NOTHING`, in key order) before any group row is
//! written; a key another server recorded meanwhile sends the cluster to that server's group.
//! New groups are upserted under their primary key, so two servers creating the same group at
//! once also meet on the `groups` unique index. The statements per batch stay a fixed few; the
//! extra look-up and re-pointing run only when such a race actually happened.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use sea_orm::{
    EntityName, Value,
    sea_query::{Expr, ExprTrait, InsertStatement, LockType, OnConflict, Order, Query},
};
use uuid::Uuid;

use super::{
    Store,
    activity::{self, activity_row},
    batch_sql::{BatchTxn, insert_rows, select_in},
    db_err,
    entity::{event, event_tag, group, group_hash, group_hourly, group_stat, release},
};
use crate::{
    domain::{
        NewEvent,
        activity::{Change, SnoozeEnd},
        model::Committed,
        release::later,
    },
    error::Error,
};

// Statement sizes keep well under SQLite's 32 766 and PostgreSQL's 65 535 bind parameters.
// On SQLite statements carry power-of-two row counts (`batch_sql::piece_lengths`).
const EVENT_ROWS_PER_STATEMENT: usize = 256;
const TAG_ROWS_PER_STATEMENT: usize = 1024;
const GROUP_ROWS_PER_STATEMENT: usize = 512;
const STAT_ROWS_PER_STATEMENT: usize = 1024;
const HASH_ROWS_PER_STATEMENT: usize = 1024;
const HASH_LOOKUPS_PER_STATEMENT: usize = 1024;
const RELEASE_ROWS_PER_STATEMENT: usize = 1024;
/// Most releases `Store::releases_seen` keeps; it is emptied when full.
const RELEASES_CACHED: usize = 65_536;

/// First-seen times of releases, by project and version (looked up without a copy of the
/// version).
#[derive(Debug, Default)]
pub(super) struct ReleasesSeen {
    by_project: HashMap<Uuid, HashMap<String, i64>>,
}

impl ReleasesSeen {
    fn get(&self, project: Uuid, version: &str) -> Option<i64> {
        self.by_project.get(&project)?.get(version).copied()
    }

    fn insert(&mut self, project: Uuid, version: String, first_seen: i64) {
        self.by_project
            .entry(project)
            .or_default()
            .insert(version, first_seen);
    }

    fn len(&self) -> usize {
        self.by_project.values().map(HashMap::len).sum()
    }
}

struct GroupAgg<'a> {
    proposed_id: Uuid,
    count: i64,
    first_seen: i64,
    last_seen: i64,
    newest: &'a NewEvent,
    /// The earliest (its release is a new group's first).
    earliest: &'a NewEvent,
    /// The releases the group's events in the batch name, each with its newest event.
    releases: Vec<&'a NewEvent>,
}

impl Store {
    /// Commits `batch` in one transaction and returns it with, per event and in order, what
    /// was committed. Events repeating an idempotency key (stored before, or earlier in the
    /// same batch) store nothing and get the first event's result with `duplicate` set.
    ///
    /// The batch is handed over (and back) because on SQLite it crosses to the writer
    /// thread (`lite`).
    pub async fn commit_batch<T: AsRef<NewEvent> + Send + 'static>(
        &self,
        batch: Vec<T>,
    ) -> (Vec<T>, Result<Vec<Committed>, Error>) {
        let known = self.cached_releases(batch.iter().map(AsRef::as_ref));
        let (batch, result) = match &self.ingest {
            super::IngestConnection::Lite(lite) => {
                let (batch, result) = lite
                    .transaction(batch, move |t, batch| {
                        let events: Vec<&NewEvent> = batch.iter().map(AsRef::as_ref).collect();
                        // Every statement of a `LiteTxn` completes at once: nothing waits.
                        futures::executor::block_on(commit_in(t, &events, false, &known))
                    })
                    .await;
                (batch.unwrap_or_default(), result)
            }
            super::IngestConnection::Pool(pool) => {
                let events: Vec<&NewEvent> = batch.iter().map(AsRef::as_ref).collect();
                let result = async {
                    let db = pool.get().await?;
                    let txn = super::begin_immediate(db).await?;
                    let pending = self.backend() == sea_orm::DbBackend::Postgres;
                    let results = commit_in(&txn, &events, pending, &known).await?;
                    txn.commit().await.map_err(db_err)?;
                    Ok(results)
                }
                .await;
                (batch, result)
            }
        };
        let result = result.map(|(results, learned)| {
            self.note_write();
            self.remember_releases(learned);
            results
        });
        (batch, result)
    }

    /// The first-seen times `releases_seen` holds for the releases `events` name.
    fn cached_releases<'e>(&self, events: impl Iterator<Item = &'e NewEvent>) -> ReleasesSeen {
        let mut known = ReleasesSeen::default();
        let Ok(seen) = self.releases_seen.lock() else {
            return known;
        };
        for ev in events.filter(|ev| !ev.release.is_empty()) {
            if known.get(ev.project_id, &ev.release).is_some() {
                continue;
            }
            if let Some(at) = seen.get(ev.project_id, &ev.release) {
                known.insert(ev.project_id, ev.release.clone(), at);
            }
        }
        known
    }

    /// Keeps the first-seen times a committed batch read or recorded.
    fn remember_releases(&self, learned: ReleasesSeen) {
        let new = learned.len();
        if new == 0 {
            return;
        }
        if let Ok(mut seen) = self.releases_seen.lock() {
            if seen.len() + new > RELEASES_CACHED {
                *seen = ReleasesSeen::default();
            }
            for (project, versions) in learned.by_project {
                for (version, at) in versions {
                    seen.insert(project, version, at);
                }
            }
        }
    }
}

/// Commits one batch in `txn`. With `search_pending` (PostgreSQL) the range of the batch's
/// event numbers is written down for the search indexer (`pg_search`).
///
/// `known` holds first-seen times of releases the batch names (from `releases_seen`); the
/// others are read or recorded here and returned beside the results.
async fn commit_in(
    txn: &impl BatchTxn,
    batch: &[&NewEvent],
    search_pending: bool,
    known_releases: &ReleasesSeen,
) -> Result<(Vec<Committed>, ReleasesSeen), Error> {
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

    // Which group each event joins: events sharing a key are one cluster; a cluster joins the
    // group one of its keys already names (a current key first, else a legacy one), else it
    // makes a new group under its first event's primary key.
    let clusters = clusters(batch, &to_insert);
    let known = lookup_hashes(txn, &batch_keys(batch, &to_insert)).await?;
    let lookup = |pid: &Uuid, h: &str| known.get(pid).and_then(|m| m.get(h));
    let mut target: HashMap<usize, &(Uuid, String)> = HashMap::new();
    for legacy in [false, true] {
        for (pos, &i) in to_insert.iter().enumerate() {
            let root = clusters[pos];
            if target.contains_key(&root) {
                continue;
            }
            let ev: &NewEvent = batch[i];
            let found = if legacy {
                ev.legacy_hashes
                    .iter()
                    .find_map(|h| lookup(&ev.project_id, h))
            } else {
                keys(ev).find_map(|h| lookup(&ev.project_id, h))
            };
            if let Some(g) = found {
                target.insert(root, g);
            }
        }
    }

    // The current keys not yet known are recorded before the groups are written, a new
    // cluster's under the id its group will get. A key another server recorded meanwhile (in
    // key order, so two batches cannot deadlock; PostgreSQL makes this insert wait for the
    // other transaction) is not taken over: the new cluster joins that server's group instead,
    // so two servers seeing overlapping keys at once still make one group. Legacy keys are
    // never recorded: they only name groups stored by the old algorithm.
    let mut proposed: HashMap<usize, Uuid> = HashMap::new();
    // (group id, grouping version, whether the group is new)
    let mut new_hashes: BTreeMap<(Uuid, &str), (Uuid, u32, bool)> = BTreeMap::new();
    for (pos, &i) in to_insert.iter().enumerate() {
        let ev: &NewEvent = batch[i];
        let root = clusters[pos];
        let (gid, is_new) = match target.get(&root) {
            Some(g) => (g.0, false),
            None => (*proposed.entry(root).or_insert_with(Uuid::now_v7), true),
        };
        for h in keys(ev) {
            if lookup(&ev.project_id, h).is_none() {
                new_hashes
                    .entry((ev.project_id, h))
                    .or_insert((gid, ev.grouping_version, is_new));
            }
        }
    }
    let recorded = insert_hashes(txn, &new_hashes).await?;
    let mut lost: BTreeMap<Uuid, BTreeSet<&str>> = BTreeMap::new();
    for ((pid, h), (_, _, is_new)) in &new_hashes {
        if *is_new && !recorded.contains(&(*pid, (*h).to_owned())) {
            lost.entry(*pid).or_default().insert(h);
        }
    }
    let taken = if lost.is_empty() {
        HashMap::new()
    } else {
        lookup_hashes(txn, &lost).await?
    };
    // (project, proposed id, id of the group it turned out to be)
    let mut repoint: Vec<(Uuid, Uuid, Uuid)> = Vec::new();
    if !taken.is_empty() {
        for (pos, &i) in to_insert.iter().enumerate() {
            let root = clusters[pos];
            let Some(&p) = proposed.get(&root) else {
                continue;
            };
            if target.contains_key(&root) {
                continue;
            }
            let ev: &NewEvent = batch[i];
            let other = keys(ev).find_map(|h| {
                taken
                    .get(&ev.project_id)
                    .and_then(|m| m.get(h))
                    .filter(|g| g.0 != p)
            });
            if let Some(g) = other {
                target.insert(root, g);
                repoint.push((ev.project_id, p, g.0));
            }
        }
    }

    // Recorded after the keys and before the groups: every batch takes its locks in that
    // order on PostgreSQL (a release another server is recording waits for its commit).
    let learned = record_releases(txn, batch, &to_insert, known_releases).await?;

    // One row per group touched by the batch, in a fixed order (lock order on PostgreSQL).
    let mut aggs: BTreeMap<(Uuid, &str), GroupAgg<'_>> = BTreeMap::new();
    let mut group_key: Vec<(Uuid, &str)> = Vec::with_capacity(to_insert.len());
    for (pos, &i) in to_insert.iter().enumerate() {
        let ev: &NewEvent = batch[i];
        let root = clusters[pos];
        // An existing group's row is only updated: its proposed id is never used (and must
        // not equal the group's id, which would read as "created").
        let (fingerprint, proposed_id) = match target.get(&root) {
            Some(g) => (g.1.as_str(), None),
            None => (
                batch[to_insert[root]].fingerprint.as_str(),
                proposed.get(&root).copied(),
            ),
        };
        let key = (ev.project_id, fingerprint);
        group_key.push(key);
        let ts = ev.timestamp.timestamp_millis();
        // Made only for the group's first event.
        let agg = aggs.entry(key).or_insert_with(|| GroupAgg {
            proposed_id: proposed_id.unwrap_or_else(Uuid::now_v7),
            count: 0,
            first_seen: ts,
            last_seen: ts,
            newest: ev,
            earliest: ev,
            releases: Vec::new(),
        });
        agg.count += 1;
        if !ev.release.is_empty() {
            match agg.releases.iter_mut().find(|e| e.release == ev.release) {
                Some(e) if ev.timestamp >= e.timestamp => *e = ev,
                Some(_) => {}
                None => agg.releases.push(ev),
            }
        }
        if ts < agg.first_seen {
            agg.first_seen = ts;
            agg.earliest = ev;
        }
        if ts >= agg.last_seen {
            agg.last_seen = ts;
            agg.newest = ev;
        }
    }
    let seen = [known_releases, &learned];
    let (group_ids, reopened) = upsert_groups(txn, &aggs, &seen).await?;
    let activity: Vec<Vec<Value>> = reopened
        .iter()
        .map(|r| {
            let (key, gid, change) = match r {
                Reopened::Regression(key, gid, by) => {
                    let release = by.release.clone();
                    let event_id = by.id;
                    (key, gid, Change::SetRegression { release, event_id })
                }
                Reopened::SnoozeEnd(key, gid) => {
                    let snooze_end = Some(SnoozeEnd::CountReached);
                    (key, gid, Change::SetUnresolved { snooze_end })
                }
            };
            activity_row(key.0, *gid, None, &change)
        })
        .collect();
    activity::insert(txn, activity).await?;
    // A new cluster whose group already existed under its primary key (made by another server
    // meanwhile) has its keys moved to that group.
    for (pos, &i) in to_insert.iter().enumerate() {
        let root = clusters[pos];
        if pos != root || target.contains_key(&root) {
            continue;
        }
        let Some(&p) = proposed.get(&root) else {
            continue;
        };
        let (gid, _) = group_ids[&group_key[pos]];
        if gid != p {
            repoint.push((batch[i].project_id, p, gid));
        }
    }
    for (pid, from, to) in repoint {
        let stmt = Query::update()
            .table(group_hash::Entity.table_ref())
            .value(group_hash::Column::GroupId, to)
            .and_where(Expr::col(group_hash::Column::ProjectId).eq(pid))
            .and_where(Expr::col(group_hash::Column::GroupId).eq(from))
            .to_owned();
        txn.exec(&stmt).await?;
    }

    // Events, then their tags and the hourly counts.
    let mut seqs: HashMap<Uuid, i64> = HashMap::with_capacity(to_insert.len());
    let mut insert = Query::insert();
    insert
        .into_table(event::Entity.table_ref())
        .columns([
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
        ])
        .returning(Query::returning().columns([event::Column::Seq, event::Column::Id]));
    let rows = to_insert
        .iter()
        .enumerate()
        .map(|(pos, &i)| {
            let ev: &NewEvent = batch[i];
            let (gid, _) = group_ids[&group_key[pos]];
            vec![
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
                Value::from(ev.idempotency_key.clone()),
                ev.search_text.clone().into(),
                ev.data.clone().into(),
            ]
        })
        .collect();
    for row in insert_rows(txn, &insert, rows, EVENT_ROWS_PER_STATEMENT).await? {
        let seq = row.get("seq")?;
        let id = row.get("id")?;
        seqs.insert(id, seq);
    }

    if let (true, Some(lo), Some(hi)) = (search_pending, seqs.values().min(), seqs.values().max()) {
        txn.exec(&super::pg_search::pending_range(*lo, *hi)).await?;
    }

    let mut tag_rows = Vec::new();
    let mut hourly: BTreeMap<(Uuid, i64), i64> = BTreeMap::new();
    let mut stats: BTreeMap<(Uuid, String, &str), i64> = BTreeMap::new();
    for (pos, &i) in to_insert.iter().enumerate() {
        let ev: &NewEvent = batch[i];
        let (gid, _) = group_ids[&group_key[pos]];
        let seq = *seqs
            .get(&ev.id)
            .ok_or_else(|| Error::Internal("inserted event not returned".into()))?;
        for (k, v) in &ev.tags {
            tag_rows.push((seq, ev.project_id, gid, k, v));
        }
        for (dim, value) in stat_dims(&ev.tags, &ev.release, &ev.environment, &ev.user_id) {
            *stats.entry((gid, dim, value)).or_default() += 1;
        }
        *hourly
            .entry((gid, hour_of(ev.timestamp.timestamp_millis())))
            .or_default() += 1;
    }
    let mut insert = Query::insert();
    insert.into_table(event_tag::Entity.table_ref()).columns([
        event_tag::Column::EventSeq,
        event_tag::Column::ProjectId,
        event_tag::Column::GroupId,
        event_tag::Column::Key,
        event_tag::Column::Value,
    ]);
    let rows = tag_rows
        .into_iter()
        .map(|(seq, pid, gid, k, v)| {
            vec![
                seq.into(),
                pid.into(),
                gid.into(),
                k.clone().into(),
                v.clone().into(),
            ]
        })
        .collect();
    insert_rows(txn, &insert, rows, TAG_ROWS_PER_STATEMENT).await?;
    let insert = hourly_upsert();
    let rows = hourly
        .into_iter()
        .map(|((gid, hour), n)| vec![gid.into(), hour.into(), n.into()])
        .collect();
    insert_rows(txn, &insert, rows, STAT_ROWS_PER_STATEMENT).await?;

    let insert = stat_upsert();
    let rows = stats
        .into_iter()
        .map(|((gid, dim, value), n)| {
            vec![gid.into(), dim.into(), value.to_owned().into(), n.into()]
        })
        .collect();
    insert_rows(txn, &insert, rows, STAT_ROWS_PER_STATEMENT).await?;

    // Answers: the first event of a newly created group reports new_group.
    let mut announced_new: HashMap<Uuid, bool> = HashMap::new();
    for (pos, &i) in to_insert.iter().enumerate() {
        let ev: &NewEvent = batch[i];
        let key = group_key[pos];
        let (gid, created) = group_ids[&key];
        let new_group = created && announced_new.insert(gid, true).is_none();
        results[i] = Some(Committed {
            event_id: ev.id,
            group_id: gid,
            fingerprint: key.1.to_owned(),
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
    let results = results
        .into_iter()
        .map(|r| r.ok_or_else(|| Error::Internal("event left without a result".into())))
        .collect::<Result<_, _>>()?;
    Ok((results, learned))
}

/// Records the releases the events to insert name that `known` lacks (first seen: their first
/// event's arrival in this batch; a release recorded already keeps its time) and returns the
/// first-seen times of all of those.
async fn record_releases(
    txn: &impl BatchTxn,
    batch: &[&NewEvent],
    to_insert: &[usize],
    known: &ReleasesSeen,
) -> Result<ReleasesSeen, Error> {
    let mut missing: BTreeMap<(Uuid, &str), i64> = BTreeMap::new();
    for &i in to_insert {
        let ev: &NewEvent = batch[i];
        if ev.release.is_empty() || known.get(ev.project_id, &ev.release).is_some() {
            continue;
        }
        let at = ev.received_at.timestamp_millis();
        missing
            .entry((ev.project_id, ev.release.as_str()))
            .and_modify(|t| *t = Ord::min(*t, at))
            .or_insert(at);
    }
    if missing.is_empty() {
        return Ok(ReleasesSeen::default());
    }
    let mut insert = Query::insert();
    insert
        .into_table(release::Entity.table_ref())
        .columns([
            release::Column::ProjectId,
            release::Column::Version,
            release::Column::FirstSeen,
        ])
        .on_conflict(
            OnConflict::columns([release::Column::ProjectId, release::Column::Version])
                .do_nothing()
                .to_owned(),
        );
    let rows = missing
        .iter()
        .map(|((pid, version), at)| vec![(*pid).into(), (*version).to_owned().into(), (*at).into()])
        .collect();
    insert_rows(txn, &insert, rows, RELEASE_ROWS_PER_STATEMENT).await?;
    // Read back: a release recorded before (or by another server) keeps its own time.
    let mut by_project: BTreeMap<Uuid, Vec<String>> = BTreeMap::new();
    for (pid, version) in missing.keys() {
        by_project
            .entry(*pid)
            .or_default()
            .push((*version).to_owned());
    }
    read_releases(txn, by_project).await
}

/// The first-seen times of the releases `versions` names per project (those on record).
async fn read_releases(
    txn: &impl BatchTxn,
    versions: BTreeMap<Uuid, Vec<String>>,
) -> Result<ReleasesSeen, Error> {
    let mut learned = ReleasesSeen::default();
    for (pid, versions) in versions {
        let select = Query::select()
            .columns([release::Column::Version, release::Column::FirstSeen])
            .from(release::Entity)
            .and_where(Expr::col(release::Column::ProjectId).eq(pid))
            .to_owned();
        let column = Expr::col(release::Column::Version);
        for row in select_in(txn, &select, column, versions, RELEASE_ROWS_PER_STATEMENT).await? {
            let version: String = row.get("version")?;
            let at: i64 = row.get("first_seen")?;
            learned.insert(pid, version, at);
        }
    }
    Ok(learned)
}

/// The keys an event joins a group by: those of its grouping version, primary first.
fn keys(ev: &NewEvent) -> impl Iterator<Item = &str> {
    let only_primary = ev.hashes.is_empty().then_some(ev.fingerprint.as_str());
    ev.hashes.iter().map(String::as_str).chain(only_primary)
}

/// For each position in `to_insert`, the first position of its cluster: events that share a
/// key (transitively) are one cluster, so they land in one group.
fn clusters(batch: &[&NewEvent], to_insert: &[usize]) -> Vec<usize> {
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    let mut parent: Vec<usize> = (0..to_insert.len()).collect();
    let mut owner: HashMap<(Uuid, &str), usize> = HashMap::with_capacity(to_insert.len() * 2);
    for (pos, &i) in to_insert.iter().enumerate() {
        let ev: &NewEvent = batch[i];
        for h in keys(ev) {
            let first = *owner.entry((ev.project_id, h)).or_insert(pos);
            let (a, b) = (find(&mut parent, first), find(&mut parent, pos));
            // The earlier event is the root, so a cluster is named after its first event.
            parent[Ord::max(a, b)] = Ord::min(a, b);
        }
    }
    (0..to_insert.len())
        .map(|pos| find(&mut parent, pos))
        .collect()
}

/// Every key (current and legacy) of the events to insert, per project.
fn batch_keys<'b>(
    batch: &[&'b NewEvent],
    to_insert: &[usize],
) -> BTreeMap<Uuid, BTreeSet<&'b str>> {
    let mut by_project: BTreeMap<Uuid, BTreeSet<&str>> = BTreeMap::new();
    for &i in to_insert {
        let ev: &NewEvent = batch[i];
        let set = by_project.entry(ev.project_id).or_default();
        set.extend(keys(ev));
        set.extend(ev.legacy_hashes.iter().map(String::as_str));
    }
    by_project
}

/// The groups that the given keys name, per project: key → (group id, group fingerprint).
///
/// On PostgreSQL the groups found are locked `FOR KEY SHARE` until the batch commits: a merge
/// (`Store::merge_groups`, which locks them `FOR UPDATE` and deletes all but one) then waits
/// for the batch, and a batch whose look-up waited for a merge no longer finds the deleted
/// groups; their keys, which the merge moved, take it to the kept group (the path for a key
/// another server recorded meanwhile). Without the lock, a batch that had looked up a merged
/// group re-created it as a new group when its upsert ran after the merge. `KEY SHARE` does not
/// conflict with the upserts' updates, so concurrent batches do not wait for each other here.
/// SQLite has no row locks (nor needs them: one writer at a time).
async fn lookup_hashes(
    txn: &impl BatchTxn,
    by_project: &BTreeMap<Uuid, BTreeSet<&str>>,
) -> Result<HashMap<Uuid, HashMap<String, (Uuid, String)>>, Error> {
    let mut known: HashMap<Uuid, HashMap<String, (Uuid, String)>> = HashMap::new();
    for (&pid, hashes) in by_project {
        let mut select = Query::select()
            .column((group_hash::Entity, group_hash::Column::Hash))
            .column((group_hash::Entity, group_hash::Column::GroupId))
            .column((group::Entity, group::Column::Fingerprint))
            .from(group_hash::Entity)
            .inner_join(
                group::Entity,
                Expr::col((group::Entity, group::Column::Id))
                    .equals((group_hash::Entity, group_hash::Column::GroupId)),
            )
            .and_where(Expr::col((group_hash::Entity, group_hash::Column::ProjectId)).eq(pid))
            .lock_with_tables(LockType::KeyShare, [group::Entity])
            .to_owned();
        if txn.postgres().is_some() {
            // Locked in the order every other locker of several groups uses (project, then
            // fingerprint), so a merge or delete holding some of them cannot deadlock with
            // this batch. SQLite has one writer at a time and no row locks.
            select.order_by((group::Entity, group::Column::Fingerprint), Order::Asc);
        }
        let keys = hashes.iter().map(|h| (*h).to_owned()).collect();
        let column = Expr::col((group_hash::Entity, group_hash::Column::Hash));
        for row in select_in(txn, &select, column, keys, HASH_LOOKUPS_PER_STATEMENT).await? {
            let hash = row.get("hash")?;
            let gid = row.get("group_id")?;
            let fp = row.get("fingerprint")?;
            known.entry(pid).or_default().insert(hash, (gid, fp));
        }
    }
    Ok(known)
}

/// Records keys for groups, in key order (lock order on PostgreSQL); a key already recorded
/// (by another server meanwhile) is left as it is. Returns the keys this call recorded.
async fn insert_hashes(
    txn: &impl BatchTxn,
    rows: &BTreeMap<(Uuid, &str), (Uuid, u32, bool)>,
) -> Result<HashSet<(Uuid, String)>, Error> {
    let mut recorded = HashSet::with_capacity(rows.len());
    let mut insert = Query::insert();
    insert
        .into_table(group_hash::Entity.table_ref())
        .columns([
            group_hash::Column::ProjectId,
            group_hash::Column::Hash,
            group_hash::Column::GroupId,
            group_hash::Column::GroupingVersion,
        ])
        .on_conflict(
            OnConflict::columns([group_hash::Column::ProjectId, group_hash::Column::Hash])
                .do_nothing()
                .to_owned(),
        )
        .returning(
            Query::returning().columns([group_hash::Column::ProjectId, group_hash::Column::Hash]),
        );
    let rows = rows
        .iter()
        .map(|((pid, hash), (gid, version, _))| {
            vec![
                (*pid).into(),
                (*hash).to_owned().into(),
                (*gid).into(),
                (i32::try_from(*version).unwrap_or(i32::MAX)).into(),
            ]
        })
        .collect();
    for row in insert_rows(txn, &insert, rows, HASH_ROWS_PER_STATEMENT).await? {
        let pid = row.get("project_id")?;
        let hash = row.get("hash")?;
        recorded.insert((pid, hash));
    }
    Ok(recorded)
}

/// Upserts one row per group and returns each group's id and whether this batch created it.
///
/// One statement, in the common case. The first inserts new groups and, for a group that is
/// not resolved and saw nothing older than the batch, sets only its count, last seen and
/// level. The groups it leaves alone (a resolved group may reopen, an older event moves first
/// seen back) get every column from the next ones (`Pass`). On SQLite an update rewrites the entry of every
/// index whose column it assigns, changed or not: assigning first seen and status in every
/// batch wrote two more whole index pages to the WAL per commit (about a tenth of what one
/// event's commit writes).
///
/// The groups the batch reopens (a regression, a snooze that ended) are updated by
/// statements of their own, so that which of them did is known exactly and goes into their
/// activity; these run only when the first statement left a group.
///
/// Which resolved groups reopen is decided here, after the first statement: that statement
/// locked every existing group of the batch on PostgreSQL (rows it leaves alone too), and
/// SQLite has one writer, so their status cannot change meanwhile. `seen` holds the first-seen
/// times of the batch's releases.
async fn upsert_groups<'a, 'e>(
    txn: &impl BatchTxn,
    aggs: &BTreeMap<(Uuid, &'a str), GroupAgg<'e>>,
    seen: &[&ReleasesSeen],
) -> Result<
    (
        HashMap<(Uuid, &'a str), (Uuid, bool)>,
        Vec<Reopened<'a, 'e>>,
    ),
    Error,
> {
    let mut out = HashMap::with_capacity(aggs.len());
    let mut reopened = Vec::new();
    // Owned (project, fingerprint) → the batch's key and the id proposed for a new group.
    type Proposed<'k> = ((Uuid, &'k str), Uuid);
    let keys: HashMap<(Uuid, String), Proposed<'a>> = aggs
        .iter()
        .map(|(k, v)| ((k.0, k.1.to_owned()), (*k, v.proposed_id)))
        .collect();
    let mut left: Vec<_> = aggs.iter().collect();
    let mut regressing = HashMap::new();
    for pass in [
        Pass::Counts,
        Pass::Regressions,
        Pass::SnoozeEnds,
        Pass::Rest,
    ] {
        if left.is_empty() {
            break;
        }
        if pass == Pass::Regressions {
            regressing = regressions(txn, &left, seen).await?;
        }
        let rows: Vec<_> = left
            .iter()
            .filter(|(key, _)| pass != Pass::Regressions || regressing.contains_key(*key))
            .map(|(key, agg)| group_row(key, agg, pass == Pass::Regressions))
            .collect();
        let stmt = group_upsert(pass);
        for row in insert_rows(txn, &stmt, rows, GROUP_ROWS_PER_STATEMENT).await? {
            let id = row.get("id")?;
            let pid = row.get("project_id")?;
            let fp = row.get("fingerprint")?;
            if let Some((key, proposed)) = keys.get(&(pid, fp)) {
                out.insert(*key, (id, id == *proposed));
                match pass {
                    Pass::Regressions => {
                        if let Some(by) = regressing.get(key) {
                            reopened.push(Reopened::Regression(*key, id, by));
                        }
                    }
                    Pass::SnoozeEnds => reopened.push(Reopened::SnoozeEnd(*key, id)),
                    Pass::Counts | Pass::Rest => {}
                }
            }
        }
        left.retain(|(key, _)| !out.contains_key(*key));
    }
    if out.len() != aggs.len() {
        return Err(Error::Internal(
            "group upsert returned fewer rows than groups".into(),
        ));
    }
    Ok((out, reopened))
}

/// A group (the batch's key and the group's id) that the batch reopened.
enum Reopened<'a, 'e> {
    /// It was resolved; the event that reopens it (`regressions`).
    Regression((Uuid, &'a str), Uuid, &'e NewEvent),
    /// It was ignored until as many events as it now has (`SNOOZE_ENDS`).
    SnoozeEnd((Uuid, &'a str), Uuid),
}

/// The resolved groups among `left` that the batch reopens, each with the event that does:
/// a group resolved outright, with any event (its newest); a group resolved in a release, with
/// an event of a later release (`domain::release::later`: by version within a package, else by
/// when each was first seen), the newest event of the latest such release. Events of the
/// release resolved in, of older ones and of none leave it resolved.
async fn regressions<'a, 'e>(
    txn: &impl BatchTxn,
    left: &[(&(Uuid, &'a str), &GroupAgg<'e>)],
    seen: &[&ReleasesSeen],
) -> Result<HashMap<(Uuid, &'a str), &'e NewEvent>, Error> {
    let mut fingerprints: BTreeMap<Uuid, Vec<String>> = BTreeMap::new();
    for ((pid, fp), _) in left {
        fingerprints.entry(*pid).or_default().push((*fp).to_owned());
    }
    // (project, fingerprint) → the release it was resolved in, if any.
    let mut resolved: HashMap<(Uuid, String), Option<String>> = HashMap::new();
    for (pid, fps) in fingerprints {
        let select = Query::select()
            .columns([group::Column::Fingerprint, group::Column::ResolvedInRelease])
            .from(group::Entity)
            .and_where(Expr::col(group::Column::ProjectId).eq(pid))
            .and_where(Expr::col(group::Column::Status).eq("resolved"))
            .to_owned();
        let column = Expr::col(group::Column::Fingerprint);
        for row in select_in(txn, &select, column, fps, HASH_LOOKUPS_PER_STATEMENT).await? {
            resolved.insert(
                (pid, row.get("fingerprint")?),
                row.get("resolved_in_release")?,
            );
        }
    }
    if resolved.is_empty() {
        return Ok(HashMap::new());
    }
    // First-seen times of the releases resolved in that the batch did not name.
    let known = |pid: Uuid, v: &str| seen.iter().find_map(|s| s.get(pid, v));
    let mut missing: BTreeMap<Uuid, Vec<String>> = BTreeMap::new();
    for ((pid, _), r) in &resolved {
        if let Some(r) = r
            && known(*pid, r).is_none()
        {
            missing.entry(*pid).or_default().push(r.clone());
        }
    }
    let more = read_releases(txn, missing).await?;
    let first_seen = |pid: Uuid, v: &str| known(pid, v).or_else(|| more.get(pid, v));
    let mut out = HashMap::new();
    for (key, agg) in left {
        let Some(resolved_in) = resolved.get(&(key.0, key.1.to_owned())) else {
            continue;
        };
        let by = match resolved_in {
            None => Some(agg.newest),
            Some(r) => {
                // A release resolved in that is not on record counts as older than any.
                let r_seen = first_seen(key.0, r).unwrap_or(-1);
                let mut by: Option<&NewEvent> = None;
                for ev in &agg.releases {
                    let v = ev.release.as_str();
                    let v_seen = first_seen(key.0, v).unwrap_or(0);
                    if v == r || !later(v, v_seen, r, r_seen) {
                        continue;
                    }
                    let latest = by.is_none_or(|b| {
                        let b_seen = first_seen(key.0, &b.release).unwrap_or(0);
                        later(v, v_seen, &b.release, b_seen)
                    });
                    if latest {
                        by = Some(ev);
                    }
                }
                by
            }
        };
        if let Some(by) = by {
            out.insert(**key, by);
        }
    }
    Ok(out)
}

/// The statements of `upsert_groups`, in order; each takes the groups the ones before left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// New groups, and existing ones that are not resolved, not ignored until more events and
    /// saw nothing older: their count, last seen, level and last release.
    Counts,
    /// Resolved groups the batch reopens: every column.
    Regressions,
    /// Groups whose snooze by count the batch ends: every column.
    SnoozeEnds,
    /// The others (resolved groups that stay so, an older event): every column.
    Rest,
}

/// The `group_stats` dimensions one event counts into, each with the event's value: a
/// `tag:<key>` per tag, and `release`, `environment` and `user` when it names them.
pub(super) fn stat_dims<'a>(
    tags: &'a BTreeMap<String, String>,
    release: &'a str,
    environment: &'a str,
    user: &'a str,
) -> impl Iterator<Item = (String, &'a str)> + 'a {
    let named = [
        ("release", release),
        ("environment", environment),
        ("user", user),
    ]
    .into_iter()
    .filter(|(_, value)| !value.is_empty())
    .map(|(dim, value)| (dim.to_owned(), value));
    tags.iter()
        .map(|(k, v)| (format!("tag:{k}"), v.as_str()))
        .chain(named)
}

/// The hour (since the epoch) an event of `timestamp_ms` counts into in `group_hourly`.
pub(super) fn hour_of(timestamp_ms: i64) -> i64 {
    timestamp_ms.div_euclid(3_600_000)
}

/// Inserts `group_hourly` rows (group, hour, count), adding each count to the row's own.
pub(super) fn hourly_upsert() -> InsertStatement {
    Query::insert()
        .into_table(group_hourly::Entity.table_ref())
        .columns([
            group_hourly::Column::GroupId,
            group_hourly::Column::Hour,
            group_hourly::Column::Count,
        ])
        .on_conflict(
            OnConflict::columns([group_hourly::Column::GroupId, group_hourly::Column::Hour])
                .value(
                    group_hourly::Column::Count,
                    Expr::cust(r#""group_hourly"."count" + excluded."count""#),
                )
                .to_owned(),
        )
        .to_owned()
}

/// Inserts `group_stats` rows (group, dim, value, count), adding each count to the row's own.
pub(super) fn stat_upsert() -> InsertStatement {
    Query::insert()
        .into_table(group_stat::Entity.table_ref())
        .columns([
            group_stat::Column::GroupId,
            group_stat::Column::Dim,
            group_stat::Column::Value,
            group_stat::Column::Count,
        ])
        .on_conflict(
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
        )
        .to_owned()
}

/// Whether an ignored group's snooze ends with this batch: it was ignored until a count that
/// the batch's events reach.
const SNOOZE_ENDS: &str = r#""groups"."status" = 'ignored' AND "groups"."ignored_until_count" IS NOT NULL AND "groups"."times_seen" + excluded."times_seen" >= "groups"."ignored_until_count""#;

/// The columns that say how long an ignore lasts (its time, counts and rates); whatever ends
/// the ignore clears them all.
pub(super) const SNOOZE_COLUMNS: [group::Column; 7] = [
    group::Column::IgnoredUntil,
    group::Column::IgnoredUntilCount,
    group::Column::IgnoredUntilUsers,
    group::Column::IgnoredRateCount,
    group::Column::IgnoredRateWindow,
    group::Column::IgnoredUserRateCount,
    group::Column::IgnoredUserRateWindow,
];

/// Whether a resolved group reopens with this batch: `regressions` decided so, and says it
/// with the row's `regressed` (which no new group and no other pass sets).
const REGRESSES: &str = r#""groups"."status" = 'resolved' AND excluded."regressed""#;

/// The group upsert of one pass of `upsert_groups`.
fn group_upsert(pass: Pass) -> InsertStatement {
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
        group::Column::LastRelease,
        group::Column::FirstRelease,
    ]);
    // Every right-hand side reads the row as it was before this statement.
    let mut on_conflict =
        OnConflict::columns([group::Column::ProjectId, group::Column::Fingerprint]);
    on_conflict
        .value(group::Column::TimesSeen, Expr::cust(r#""groups"."times_seen" + excluded."times_seen""#))
        .value(
            group::Column::LastSeen,
            Expr::cust(r#"CASE WHEN excluded."last_seen" > "groups"."last_seen" THEN excluded."last_seen" ELSE "groups"."last_seen" END"#),
        )
        .value(
            group::Column::Level,
            Expr::cust(r#"CASE WHEN excluded."last_seen" >= "groups"."last_seen" THEN excluded."level" ELSE "groups"."level" END"#),
        )
        .value(
            group::Column::LastRelease,
            Expr::cust(r#"CASE WHEN excluded."last_seen" >= "groups"."last_seen" THEN excluded."last_release" ELSE "groups"."last_release" END"#),
        );
    if pass != Pass::Counts {
        // A resolved group that receives an event reopens as regressed (one resolved in a
        // release: an event of another release); an ignored one stays ignored, unless it was
        // ignored until as many more events as it now has (it comes back unresolved, not
        // regressed; `jobs::snooze` ends snoozes by time).
        on_conflict
            .value(
                group::Column::FirstSeen,
                Expr::cust(r#"CASE WHEN excluded."first_seen" < "groups"."first_seen" THEN excluded."first_seen" ELSE "groups"."first_seen" END"#),
            )
            .value(
                group::Column::Regressed,
                Expr::cust(format!(r#"CASE WHEN {REGRESSES} THEN TRUE ELSE "groups"."regressed" END"#)),
            )
            .value(
                group::Column::RegressedAt,
                Expr::cust(format!(r#"CASE WHEN {REGRESSES} THEN excluded."last_seen" ELSE "groups"."regressed_at" END"#)),
            )
            .value(
                group::Column::ResolvedAt,
                Expr::cust(format!(r#"CASE WHEN {REGRESSES} THEN NULL ELSE "groups"."resolved_at" END"#)),
            )
            .value(
                group::Column::ResolvedInRelease,
                Expr::cust(format!(r#"CASE WHEN {REGRESSES} THEN NULL ELSE "groups"."resolved_in_release" END"#)),
            )
            .value(
                group::Column::Status,
                Expr::cust(format!(r#"CASE WHEN ({REGRESSES}) OR ({SNOOZE_ENDS}) THEN 'unresolved' ELSE "groups"."status" END"#)),
            )
            .value(
                group::Column::UnignoredAt,
                Expr::cust(format!(r#"CASE WHEN {SNOOZE_ENDS} THEN excluded."last_seen" ELSE "groups"."unignored_at" END"#)),
            )
            // Fix workflow (Log Center): a recurrence after DEPLOYED starts the workflow over.
            .value(
                group::Column::WorkflowStage,
                Expr::cust(format!(r#"CASE WHEN {REGRESSES} AND "groups"."workflow_stage" = 'DEPLOYED' THEN 'NEW' ELSE "groups"."workflow_stage" END"#)),
            );
        for column in SNOOZE_COLUMNS {
            let name = sea_orm::IdenStatic::as_str(&column);
            on_conflict.value(
                column,
                Expr::cust(format!(
                    r#"CASE WHEN {SNOOZE_ENDS} THEN NULL ELSE "groups"."{name}" END"#
                )),
            );
        }
    }
    // Rows a pass leaves alone are not returned; the next pass takes them.
    match pass {
        Pass::Counts => {
            on_conflict.action_and_where(Expr::cust(
                r#""groups"."status" <> 'resolved' AND "groups"."ignored_until_count" IS NULL AND excluded."first_seen" >= "groups"."first_seen""#,
            ));
        }
        Pass::Regressions => {
            on_conflict.action_and_where(Expr::cust(REGRESSES));
        }
        Pass::SnoozeEnds => {
            on_conflict.action_and_where(Expr::cust(SNOOZE_ENDS));
        }
        Pass::Rest => {}
    }
    stmt.on_conflict(on_conflict.to_owned());
    stmt.returning(Query::returning().columns([
        group::Column::Id,
        group::Column::ProjectId,
        group::Column::Fingerprint,
    ]));
    stmt
}

/// The values of `group_upsert`'s columns for one group of the batch; `regresses`: the batch
/// reopens it (`regressions`).
fn group_row((pid, fp): &(Uuid, &str), agg: &GroupAgg<'_>, regresses: bool) -> Vec<Value> {
    let ev = agg.newest;
    vec![
        agg.proposed_id.into(),
        (*pid).into(),
        (*fp).to_owned().into(),
        (ev.grouping_version as i32).into(),
        ev.title.clone().into(),
        ev.culprit.clone().into(),
        ev.level.as_str().into(),
        "unresolved".into(),
        regresses.into(),
        agg.count.into(),
        agg.first_seen.into(),
        agg.last_seen.into(),
        ev.release.clone().into(),
        // Kept by an existing group: no pass assigns it.
        Some(agg.earliest.release.clone())
            .filter(|r| !r.is_empty())
            .into(),
    ]
}

async fn known_idempotency_keys(
    txn: &impl BatchTxn,
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
        let select = Query::select()
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
            .to_owned();
        let column = Expr::col((event::Entity, event::Column::IdempotencyKey));
        for row in select_in(txn, &select, column, keys, HASH_LOOKUPS_PER_STATEMENT).await? {
            let key = row.get("idempotency_key")?;
            known.insert(
                (pid, key),
                Committed {
                    event_id: row.get("id")?,
                    group_id: row.get("group_id")?,
                    fingerprint: row.get("fingerprint")?,
                    new_group: false,
                    duplicate: true,
                },
            );
        }
    }
    Ok(known)
}
