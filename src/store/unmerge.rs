//! Splitting a group along its grouping keys, as Sentry's unmerge does: the keys a group holds
//! with the stored events that came by each (Sentry's "Merged issues" tab), and moving some of
//! those keys, with the events that came by them, their tags and their counts, to a new group.
//!
//! Which key an event came by is the ingest writer's choice (`Grouping::key_among`): its first
//! key the group holds. An event moves when that key is among the moved ones, so the events
//! that stay and go are the ones that would join each group if they arrived after the split.
//!
//! The events are read before the write transaction (a group's events can be many, and on
//! SQLite the transaction holds the one write lock); the transaction then takes the events that
//! arrived meanwhile. On PostgreSQL a batch that looked up a moved key just before the split
//! was committed (its look-up waited for the group's lock) still lands in the old group: a
//! second, short transaction moves such events once those batches have committed.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, ExprTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::{
    Store,
    activity::{self, Actor},
    batch_sql::insert_rows,
    blob, convert, db_err, delete_rows,
    entity::{event, event_tag, group, group_hash, group_hourly, group_stat},
    repoint_rows, write,
};
use crate::{
    domain::{
        activity::Change,
        grouping::VariantKind,
        model::{Group, StoredEvent, UnmergeKeys},
        workflow::WorkflowStage,
    },
    error::Error,
};

/// Events read per statement.
const PAGE: u64 = 500;
/// Count rows per statement.
const ROWS: usize = 512;

/// One grouping key of a group, with the stored events that came by it.
#[derive(Debug, Clone)]
pub struct GroupKey {
    /// 32 hexadecimal digits.
    pub hash: String,
    /// The kind of variant it is in its newest event (`None`: no stored event came by it, or
    /// only events stored without variants).
    pub kind: Option<VariantKind>,
    /// Whether it is the group's own fingerprint (the key it was made under).
    pub primary: bool,
    /// Stored events that came by it.
    pub events: u64,
    /// The newest of them (by arrival), without its payload.
    pub latest: Option<StoredEvent>,
}

/// A group's keys, most events first, and the stored events that came by none of them (under
/// a grouping no longer recorded).
#[derive(Debug, Clone)]
pub struct GroupKeys {
    pub keys: Vec<GroupKey>,
    pub other_events: u64,
}

/// What an unmerge did: the group as it is now, the new group, and how many events moved.
#[derive(Debug, Clone)]
pub struct Unmerged {
    pub source: Group,
    pub destination: Group,
    pub moved_events: u64,
}

/// The earliest and newest of some events, and how many there are.
#[derive(Debug, Default)]
struct Extent {
    count: i64,
    /// (timestamp ms, seq, release) of the earliest.
    earliest: Option<(i64, i64, String)>,
    /// The newest by (timestamp, seq).
    newest: Option<event::Model>,
}

impl Extent {
    fn add(&mut self, m: &event::Model) {
        self.count += 1;
        if self
            .earliest
            .as_ref()
            .is_none_or(|e| (m.timestamp, m.seq) < (e.0, e.1))
        {
            self.earliest = Some((m.timestamp, m.seq, m.release.clone()));
        }
        if self
            .newest
            .as_ref()
            .is_none_or(|n| (m.timestamp, m.seq) > (n.timestamp, n.seq))
        {
            self.newest = Some(m.clone());
        }
    }

    fn first_seen(&self) -> Option<i64> {
        self.earliest.as_ref().map(|e| e.0)
    }

    fn last_seen(&self) -> Option<i64> {
        self.newest.as_ref().map(|n| n.timestamp)
    }
}

/// The events to move and their counts, as the ingest writer counted them into the group.
#[derive(Debug, Default)]
struct Moving {
    seqs: Vec<i64>,
    extent: Extent,
    /// (dim, value) → events, as in `group_stats`.
    stats: BTreeMap<(String, String), i64>,
    /// Hour → events, as in `group_hourly`.
    hourly: BTreeMap<i64, i64>,
}

impl Moving {
    fn add(&mut self, m: &event::Model) {
        self.seqs.push(m.seq);
        self.extent.add(m);
        // Counted as the writer counted it into the group.
        let tags: BTreeMap<String, String> = serde_json::from_str(&m.tags).unwrap_or_default();
        for (dim, value) in write::stat_dims(&tags, &m.release, &m.environment, &m.user_id) {
            *self.stats.entry((dim, value.to_owned())).or_default() += 1;
        }
        *self.hourly.entry(write::hour_of(m.timestamp)).or_default() += 1;
    }
}

/// Which events of a group move and which stay, decided against the group's keys.
#[derive(Debug)]
struct Plan {
    /// The group's keys when decided.
    keys: HashSet<String>,
    moving_keys: BTreeSet<String>,
    /// Every event decided.
    seen: HashSet<i64>,
    moving: Moving,
    staying: Extent,
    /// Events per key they came by, moving and staying.
    per_key: HashMap<String, i64>,
}

impl Plan {
    fn new(keys: HashSet<String>, moving_keys: BTreeSet<String>) -> Plan {
        Plan {
            keys,
            moving_keys,
            seen: HashSet::new(),
            moving: Moving::default(),
            staying: Extent::default(),
            per_key: HashMap::new(),
        }
    }

    fn add(&mut self, m: &event::Model) -> Result<(), Error> {
        if !self.seen.insert(m.seq) {
            return Ok(());
        }
        let grouping = blob::decode_grouping(&m.data)?;
        let key = grouping
            .key_among(|h| self.keys.contains(h))
            .map(|(h, _)| h);
        if let Some(h) = key {
            *self.per_key.entry(h.to_owned()).or_default() += 1;
        }
        match key {
            Some(h) if self.moving_keys.contains(h) => self.moving.add(m),
            _ => self.staying.add(m),
        }
        Ok(())
    }

    /// The key with the most events among `keys` (ties: the lowest), for a fingerprint.
    fn loudest<'k>(&self, keys: impl Iterator<Item = &'k String>) -> Option<&'k String> {
        keys.max_by(|a, b| {
            let n = |k: &String| self.per_key.get(k).copied().unwrap_or(0);
            n(a).cmp(&n(b)).then_with(|| b.cmp(a))
        })
    }
}

/// The group's events, by arrival, newest first, a page at a time.
async fn each_event(
    db: &impl ConnectionTrait,
    group_id: Uuid,
    mut f: impl FnMut(event::Model) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut before = i64::MAX;
    loop {
        let page = event::Entity::find()
            .filter(event::Column::GroupId.eq(group_id))
            .filter(event::Column::Seq.lt(before))
            .order_by_desc(event::Column::Seq)
            .limit(PAGE)
            .all(db)
            .await
            .map_err(db_err)?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        before = last.seq;
        for m in page {
            f(m)?;
        }
    }
}

/// The events of the group that `seen` lacks: its event numbers (`ix_events_group_seq`
/// only), then those rows.
async fn events_not_in(
    db: &impl ConnectionTrait,
    group_id: Uuid,
    seen: &HashSet<i64>,
    mut f: impl FnMut(event::Model) -> Result<(), Error>,
) -> Result<Vec<i64>, Error> {
    let all: Vec<i64> = event::Entity::find()
        .select_only()
        .column(event::Column::Seq)
        .filter(event::Column::GroupId.eq(group_id))
        .into_tuple()
        .all(db)
        .await
        .map_err(db_err)?;
    let new: Vec<i64> = all.iter().copied().filter(|s| !seen.contains(s)).collect();
    for chunk in new.chunks(PAGE as usize) {
        let rows = event::Entity::find()
            .filter(event::Column::Seq.is_in(chunk.iter().copied()))
            .all(db)
            .await
            .map_err(db_err)?;
        for m in rows {
            f(m)?;
        }
    }
    Ok(all)
}

async fn keys_of(
    db: &impl ConnectionTrait,
    project_id: Uuid,
    group_id: Uuid,
) -> Result<Vec<(String, i32)>, Error> {
    group_hash::Entity::find()
        .select_only()
        .column(group_hash::Column::Hash)
        .column(group_hash::Column::GroupingVersion)
        .filter(group_hash::Column::ProjectId.eq(project_id))
        .filter(group_hash::Column::GroupId.eq(group_id))
        .order_by_asc(group_hash::Column::Hash)
        .into_tuple()
        .all(db)
        .await
        .map_err(db_err)
}

/// Locks the group for the rest of `txn` (PostgreSQL; SQLite's write lock is already held)
/// and reads it.
async fn lock_group(
    txn: &sea_orm::DatabaseTransaction,
    project_id: Uuid,
    group_id: Uuid,
) -> Result<group::Model, Error> {
    group::Entity::find()
        .filter(group::Column::Id.eq(group_id))
        .filter(group::Column::ProjectId.eq(project_id))
        .lock_exclusive()
        .one(txn)
        .await
        .map_err(db_err)?
        .ok_or(Error::NotFound { what: "group" })
}

/// What the newest of some events sets on their group: title, culprit, level, release.
fn newest_fields(m: &event::Model) -> Result<(String, String, String, String), Error> {
    let ev = convert::event(m.clone(), false)?;
    Ok((
        ev.title(),
        m.culprit.clone(),
        m.level.clone(),
        m.release.clone(),
    ))
}

impl Store {
    /// The grouping keys of a group with the stored events that came by each (every stored
    /// event of the group is read), most events first.
    pub async fn group_keys(&self, project_id: Uuid, group_id: Uuid) -> Result<GroupKeys, Error> {
        let group = self.get_group(project_id, group_id).await?;
        let hashes = keys_of(&self.db, project_id, group_id).await?;
        let mut keys: BTreeMap<String, GroupKey> = hashes
            .into_iter()
            .map(|(hash, _)| {
                let key = GroupKey {
                    primary: hash == group.fingerprint,
                    hash: hash.clone(),
                    kind: None,
                    events: 0,
                    latest: None,
                };
                (hash, key)
            })
            .collect();
        let mut other_events = 0;
        each_event(&self.db, group_id, |m| {
            let grouping = blob::decode_grouping(&m.data)?;
            let Some((hash, kind)) = grouping.key_among(|h| keys.contains_key(h)) else {
                other_events += 1;
                return Ok(());
            };
            let Some(key) = keys.get_mut(hash) else {
                return Ok(());
            };
            key.events += 1;
            if key.latest.is_none() {
                key.kind = kind;
                key.latest = Some(convert::event(m, false)?);
            }
            Ok(())
        })
        .await?;
        let mut keys: Vec<GroupKey> = keys.into_values().collect();
        keys.sort_by(|a, b| b.events.cmp(&a.events).then_with(|| a.hash.cmp(&b.hash)));
        Ok(GroupKeys { keys, other_events })
    }

    /// Moves the grouping keys `moving` of a group, and the stored events that came by them,
    /// to a new group (Sentry's unmerge): the events' tags, tag counts and hourly counts go
    /// with them, and the new group's next events are the ones those keys bring. The new
    /// group starts unresolved; the group keeps its status, assignee, comments and history,
    /// and each records the unmerge in its activity. At least one key must stay, and at least
    /// one stored event must move.
    pub async fn unmerge_group(
        &self,
        project_id: Uuid,
        group_id: Uuid,
        moving: &UnmergeKeys,
        by: Option<&Actor>,
    ) -> Result<Unmerged, Error> {
        let moving_keys: BTreeSet<String> = moving.hashes().iter().cloned().collect();
        let held: HashSet<String> = keys_of(&self.db, project_id, group_id)
            .await?
            .into_iter()
            .map(|(h, _)| h)
            .collect();
        if held.is_empty() {
            // No keys: no such group, or one being deleted.
            self.get_group(project_id, group_id).await?;
        }
        check_keys(&held, &moving_keys)?;
        // Read and decided before the write transaction.
        let mut plan = Plan::new(held, moving_keys.clone());
        each_event(&self.db, group_id, |m| plan.add(&m)).await?;

        let txn = self.begin_write().await?;
        let source = lock_group(&txn, project_id, group_id).await?;
        let versions: HashMap<String, i32> = keys_of(&txn, project_id, group_id)
            .await?
            .into_iter()
            .collect();
        let held: HashSet<String> = versions.keys().cloned().collect();
        check_keys(&held, &moving_keys)?;
        let all = if held == plan.keys {
            // Only the events that arrived since are left to decide.
            let seen = std::mem::take(&mut plan.seen);
            let all = events_not_in(&txn, group_id, &seen, |m| plan.add(&m)).await?;
            plan.seen.extend(seen);
            all
        } else {
            Vec::new()
        };
        if held != plan.keys || all.len() != plan.seen.len() {
            // Keys came or events went meanwhile (a merge, a deletion): decided again, here.
            plan = Plan::new(held.clone(), moving_keys.clone());
            each_event(&txn, group_id, |m| plan.add(&m)).await?;
        }
        if plan.moving.extent.count == 0 {
            return Err(Error::invalid_field(
                "hashes",
                "no stored event of the group came by these keys",
                "NOTHING_TO_MOVE",
            ));
        }

        // Each group's fingerprint stays one of its own keys: the key it was made under goes
        // with the new group when it moves, and the group is then named by its loudest key.
        let staying_keys: BTreeSet<&String> =
            held.iter().filter(|h| !moving_keys.contains(*h)).collect();
        let (source_fp, dest_fp) = if moving_keys.contains(&source.fingerprint) {
            let fp = plan
                .loudest(staying_keys.iter().copied())
                .ok_or_else(|| Error::Internal("unmerge left the group no key".into()))?;
            (fp.clone(), source.fingerprint.clone())
        } else {
            let fp = plan
                .loudest(moving_keys.iter())
                .ok_or_else(|| Error::Internal("unmerge moved no key".into()))?;
            (source.fingerprint.clone(), fp.clone())
        };
        let moved = &plan.moving;
        let newest = moved
            .extent
            .newest
            .as_ref()
            .ok_or_else(|| Error::Internal("moved events without a newest".into()))?;
        let (title, culprit, level, last_release) = newest_fields(newest)?;
        let first = moved.extent.earliest.as_ref();
        // Renamed first: fingerprints are unique in a project.
        if source_fp != source.fingerprint {
            group::Entity::update_many()
                .col_expr(
                    group::Column::Fingerprint,
                    sea_orm::sea_query::Expr::value(source_fp),
                )
                .filter(group::Column::Id.eq(group_id))
                .exec(&txn)
                .await
                .map_err(db_err)?;
        }
        let destination_id = Uuid::now_v7();
        group::Entity::insert(group::ActiveModel {
            id: Set(destination_id),
            project_id: Set(project_id),
            fingerprint: Set(dest_fp.clone()),
            grouping_version: Set(versions
                .get(&dest_fp)
                .copied()
                .unwrap_or(source.grouping_version)),
            title: Set(title),
            culprit: Set(culprit),
            level: Set(level),
            status: Set("unresolved".into()),
            regressed: Set(false),
            times_seen: Set(0),
            first_seen: Set(moved.extent.first_seen().unwrap_or(0)),
            last_seen: Set(moved.extent.last_seen().unwrap_or(0)),
            resolved_at: Set(None),
            workflow_stage: Set(WorkflowStage::New.as_str().to_owned()),
            regressed_at: Set(None),
            ignored_until: Set(None),
            ignored_until_count: Set(None),
            ignored_until_users: Set(None),
            ignored_rate_count: Set(None),
            ignored_rate_window: Set(None),
            ignored_user_rate_count: Set(None),
            ignored_user_rate_window: Set(None),
            ignored_until_escalating: Set(false),
            unignored_at: Set(None),
            last_release: Set(last_release),
            resolved_in_release: Set(None),
            assignee_id: Set(None),
            first_release: Set(first.map(|f| f.2.clone()).filter(|r| !r.is_empty())),
        })
        .exec_without_returning(&txn)
        .await
        .map_err(db_err)?;
        let keys = group_hash::Column::Hash.is_in(moving_keys.iter().cloned());
        let keys = sea_orm::Condition::all()
            .add(group_hash::Column::ProjectId.eq(project_id))
            .add(group_hash::Column::GroupId.eq(group_id))
            .add(keys);
        repoint_rows::<group_hash::Entity>(&txn, group_hash::Column::GroupId, destination_id, keys)
            .await?;
        let destination = group::Entity::find_by_id(destination_id)
            .one(&txn)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Error::Internal("the new group was not stored".into()))?;
        let source = group::Entity::find_by_id(group_id)
            .one(&txn)
            .await
            .map_err(db_err)?
            .ok_or(Error::NotFound { what: "group" })?;
        move_events(&txn, &source, &destination, moved, Some(&plan.staying)).await?;
        let events = moved.extent.count as u64;
        let hashes: Vec<String> = moving_keys.iter().cloned().collect();
        let change = Change::UnmergeSource {
            destination: destination_id,
            hashes: hashes.clone(),
            events,
        };
        activity::record(&txn, &[(project_id, group_id)], by, &change).await?;
        let change = Change::UnmergeDestination {
            source: group_id,
            hashes,
            events,
        };
        activity::record(&txn, &[(project_id, destination_id)], by, &change).await?;
        txn.commit().await.map_err(db_err)?;
        self.note_write();

        let mut moved_events = events;
        if self.backend() == DbBackend::Postgres {
            match self
                .settle_unmerge(project_id, group_id, destination_id, plan)
                .await
            {
                Ok(n) => moved_events += n,
                Err(e) => tracing::warn!(
                    group_id = %group_id,
                    error = %e,
                    "events that arrived during an unmerge were left in the group"
                ),
            }
        }
        Ok(Unmerged {
            source: self.get_group(project_id, group_id).await?,
            destination: self.get_group(project_id, destination_id).await?,
            moved_events,
        })
    }

    /// Moves the events that batches committed into the group after the unmerge's look-ups had
    /// waited for it (PostgreSQL): they came by a moved key, which their look-up still read as
    /// the group's. Locking both groups waits for those batches.
    async fn settle_unmerge(
        &self,
        project_id: Uuid,
        group_id: Uuid,
        destination_id: Uuid,
        plan: Plan,
    ) -> Result<u64, Error> {
        let txn = self.begin_write().await?;
        let mut both = group::Entity::find()
            .filter(group::Column::ProjectId.eq(project_id))
            .filter(group::Column::Id.is_in([group_id, destination_id]))
            .order_by_asc(group::Column::Fingerprint)
            .lock_exclusive()
            .all(&txn)
            .await
            .map_err(db_err)?;
        let (Some(source), Some(destination)) = (
            both.iter().position(|g| g.id == group_id),
            both.iter().position(|g| g.id == destination_id),
        ) else {
            return Ok(0);
        };
        let (source, destination) = (both[source].clone(), both.swap_remove(destination));
        // Decided against the keys the group had: the moved ones are among them.
        let mut late = Plan::new(plan.keys, plan.moving_keys);
        events_not_in(&txn, group_id, &plan.seen, |m| late.add(&m)).await?;
        if late.moving.extent.count == 0 {
            return Ok(0);
        }
        move_events(&txn, &source, &destination, &late.moving, None).await?;
        txn.commit().await.map_err(db_err)?;
        self.note_write();
        Ok(late.moving.extent.count as u64)
    }
}

/// Every key to move must be the group's, and one must stay.
fn check_keys(held: &HashSet<String>, moving: &BTreeSet<String>) -> Result<(), Error> {
    if let Some(h) = moving.iter().find(|h| !held.contains(*h)) {
        return Err(Error::invalid_field(
            "hashes",
            format!("{h} is not a grouping key of this group"),
            "NOT_A_KEY",
        ));
    }
    if moving.len() >= held.len() {
        return Err(Error::invalid_field(
            "hashes",
            "at least one of the group's keys must stay with it",
            "ALL_KEYS",
        ));
    }
    Ok(())
}

/// Moves events `moved` (and their tags) from `source` to `destination` in `txn`, taking their
/// counts from the one to the other. `staying` (the events left, when they were all read)
/// gives the source its new first and last seen when its earliest or newest event moved.
async fn move_events(
    txn: &sea_orm::DatabaseTransaction,
    source: &group::Model,
    destination: &group::Model,
    moved: &Moving,
    staying: Option<&Extent>,
) -> Result<(), Error> {
    let (from, to) = (source.id, destination.id);
    for chunk in moved.seqs.chunks(PAGE as usize) {
        let seqs = || chunk.iter().copied();
        repoint_rows::<event::Entity>(
            txn,
            event::Column::GroupId,
            to,
            event::Column::Seq.is_in(seqs()),
        )
        .await?;
        repoint_rows::<event_tag::Entity>(
            txn,
            event_tag::Column::GroupId,
            to,
            event_tag::Column::EventSeq.is_in(seqs()),
        )
        .await?;
    }
    // Counts added to the one and taken from the other; rows left at nothing go.
    let stat_rows = |gid: Uuid, sign: i64| -> Vec<Vec<sea_orm::Value>> {
        moved
            .stats
            .iter()
            .map(|((dim, value), n)| {
                vec![
                    gid.into(),
                    dim.clone().into(),
                    value.clone().into(),
                    (sign * n).into(),
                ]
            })
            .collect()
    };
    let hour_rows = |gid: Uuid, sign: i64| -> Vec<Vec<sea_orm::Value>> {
        moved
            .hourly
            .iter()
            .map(|(hour, n)| vec![gid.into(), (*hour).into(), (sign * n).into()])
            .collect()
    };
    for (gid, sign) in [(to, 1), (from, -1)] {
        insert_rows(txn, &write::stat_upsert(), stat_rows(gid, sign), ROWS).await?;
        insert_rows(txn, &write::hourly_upsert(), hour_rows(gid, sign), ROWS).await?;
    }
    delete_rows::<group_stat::Entity>(
        txn,
        group_stat::Column::GroupId
            .eq(from)
            .and(group_stat::Column::Count.lte(0)),
    )
    .await?;
    delete_rows::<group_hourly::Entity>(
        txn,
        group_hourly::Column::GroupId
            .eq(from)
            .and(group_hourly::Column::Count.lte(0)),
    )
    .await?;

    // The groups' rows, from the locked rows read.
    let extent = &moved.extent;
    let (Some(first), Some(last), Some(newest)) =
        (extent.first_seen(), extent.last_seen(), &extent.newest)
    else {
        return Ok(());
    };
    let mut dest: group::ActiveModel = destination.clone().into();
    dest.times_seen = Set(destination.times_seen + extent.count);
    if destination.times_seen == 0 || first < destination.first_seen {
        dest.first_seen = Set(first);
    }
    if destination.times_seen == 0 || last >= destination.last_seen {
        let (title, culprit, level, release) = newest_fields(newest)?;
        dest.last_seen = Set(last);
        dest.title = Set(title);
        dest.culprit = Set(culprit);
        dest.level = Set(level);
        dest.last_release = Set(release);
    }
    group::Entity::update(dest)
        .exec(txn)
        .await
        .map_err(db_err)?;

    let mut src: group::ActiveModel = source.clone().into();
    src.times_seen = Set(Ord::max(source.times_seen - extent.count, 0));
    if let Some(staying) = staying {
        if first <= source.first_seen
            && let Some((at, _, release)) = &staying.earliest
        {
            src.first_seen = Set(*at);
            src.first_release = Set(Some(release.clone()).filter(|r| !r.is_empty()));
        }
        if last >= source.last_seen
            && let Some(newest) = &staying.newest
        {
            let (title, culprit, level, release) = newest_fields(newest)?;
            src.last_seen = Set(newest.timestamp);
            src.title = Set(title);
            src.culprit = Set(culprit);
            src.level = Set(level);
            src.last_release = Set(release);
        }
    }
    group::Entity::update(src).exec(txn).await.map_err(db_err)?;
    Ok(())
}
