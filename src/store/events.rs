//! Event reads: filtered listings with keyset paging, search, single events, export pages.

use std::collections::HashMap;

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, Iterable, Order, QueryFilter,
    QuerySelect, QueryTrait, Select, Statement,
    sea_query::{Alias, Expr, ExprTrait, JoinType, LikeExpr, Query},
};
use uuid::Uuid;

use super::{
    Store, convert, db_err,
    entity::{event, event_tag, group, group_hash, group_stat},
    pg_search, search,
};
use crate::{
    domain::{
        cursor::EventCursor,
        filter::{EventFilter, search_words},
        model::StoredEvent,
    },
    error::Error,
};

/// At most this many groups, holding at most `NARROW_EVENTS_MAX` events between them, are read
/// one by one for a listing or export filtered by release, environment or user
/// (`narrowed_groups`).
const NARROW_GROUPS_MAX: usize = 32;
const NARROW_EVENTS_MAX: i64 = 20_000;

/// A search on PostgreSQL reads the project's newest events up to this many directly
/// (`pg_searched_rows`): a common word is found among them without the index.
const PG_WINDOW: u64 = 1000;
/// Ranges (chunks found, pending ranges) a PostgreSQL search reads first below those, and at
/// most per round after (four times as many each round).
const PG_FIRST_RANGES: usize = 16;
const PG_MAX_RANGES: usize = 256;

/// One page of an export: events and where the next page starts.
pub struct ExportPage {
    pub events: Vec<StoredEvent>,
    pub next: Option<EventCursor>,
}

/// `word` as a `LIKE` pattern matching it anywhere (`%word%`), its `%`, `_` and `\` taken
/// literally (with `ESCAPE '\'`).
pub(super) fn escape_like(word: &str) -> String {
    let mut s = String::with_capacity(word.len() + 2);
    s.push('%');
    for c in word.chars() {
        if matches!(c, '%' | '_' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('%');
    s
}

/// The search index's candidates for a search (SQLite, `search`): its FTS5 query, and up to
/// which event the index holds.
struct Indexed {
    terms: String,
    upto: i64,
}

/// The events of one project that match a filter, after `cursor`, newest first, read through
/// one index, whose event number orders the rows and takes the cursor:
/// - the project's or the group's events (`ix_events_project_seq`, `ix_events_group_seq`);
/// - without a group, the first tag filter's rows (`ix_event_tags_lookup`). Read the other
///   way round, newest event first with a tag probe per event, a tag that few or no events
///   have scanned the whole project (0.13 s at 300 000 events on SQLite). A group's events
///   are read from the group's index, which bounds the scan by the group's size even when the
///   tag is common, and the tags are probed per event;
/// - given `indexed`, the search index's candidates up to `indexed.upto`, each checked
///   against the whole filter (its words with `LIKE` too). `CROSS JOIN` puts the index first:
///   otherwise SQLite read the project's events newest first and probed the index per event
///   (7 s for a common word at 300 000 events), the plan it chose from the join's equality
///   and `ix_events_project_seq`.
fn matching(
    project_id: Uuid,
    f: &EventFilter,
    cursor: Option<EventCursor>,
    indexed: Option<Indexed>,
) -> Select<event::Entity> {
    let tag = f
        .tags
        .iter()
        .next()
        .filter(|_| f.group_id.is_none() && indexed.is_none());
    let mut q = event::Entity::find().filter(condition(project_id, f, tag.is_some()));
    let select = QueryTrait::query(&mut q);
    let before = cursor.map(|c| c.before_seq);
    let (seq, before) = match (tag, indexed) {
        (Some((key, value)), _) => {
            let tag_seq = Expr::col((event_tag::Entity, event_tag::Column::EventSeq));
            select
                .join(
                    JoinType::InnerJoin,
                    event_tag::Entity,
                    tag_seq.clone().equals((event::Entity, event::Column::Seq)),
                )
                .cond_where(tag_is(project_id, key, value));
            (tag_seq, before)
        }
        (None, Some(Indexed { terms, upto })) => {
            let fts = Alias::new(search::TABLE);
            let rowid = Expr::col((fts.clone(), Alias::new("rowid")));
            select
                .from_clear()
                .from((Alias::new(search::SCHEMA), fts))
                .cross_join(event::Entity)
                .and_where(rowid.clone().equals((event::Entity, event::Column::Seq)))
                .and_where(Expr::cust_with_values(
                    format!("\"{}\" MATCH ?", search::TABLE),
                    [terms],
                ));
            // One upper bound on the rowid, the lower of the cursor's and the index's reach:
            // FTS5 takes one bound into its scan, and would check a second per candidate.
            let bound = before.map_or(upto + 1, |b| std::cmp::min(b, upto + 1));
            (rowid, Some(bound))
        }
        (None, None) => (Expr::col((event::Entity, event::Column::Seq)), before),
    };
    if let Some(before) = before {
        select.and_where(seq.clone().lt(before));
    }
    select.order_by_expr(seq, Order::Desc);
    q
}

/// Up to `n` rows of a search on PostgreSQL after `cursor`, newest first (see `pg_search`),
/// read in `txn`, one snapshot: the project's newest `PG_WINDOW` events directly, then, below
/// them, the events of the pending ranges and of the chunks holding every word's trigrams,
/// newest first, a few ranges at a time (`PG_FIRST_RANGES`).
async fn pg_searched_rows(
    txn: &impl ConnectionTrait,
    project_id: Uuid,
    filter: &EventFilter,
    words: &[String],
    cursor: Option<EventCursor>,
    n: u64,
) -> Result<Vec<event::Model>, Error> {
    let window = Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT min(seq) AS lo, count(*) AS n FROM (SELECT seq FROM events \
             WHERE project_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3) w",
        [
            project_id.into(),
            cursor.map_or(i64::MAX, |c| c.before_seq).into(),
            (PG_WINDOW as i64).into(),
        ],
    );
    let row = txn.query_one_raw(window).await.map_err(db_err)?;
    let (lo, seen): (Option<i64>, i64) = match row {
        Some(r) => (
            r.try_get("", "lo").map_err(db_err)?,
            r.try_get("", "n").map_err(db_err)?,
        ),
        None => (None, 0),
    };
    let Some(mut below) = lo else {
        return Ok(Vec::new());
    };
    let newest = matching(project_id, filter, cursor, None).filter(event::Column::Seq.gte(below));
    let mut rows = rows_of(newest, n, txn).await?;
    if rows.len() as u64 >= n || (seen as u64) < PG_WINDOW {
        return Ok(rows);
    }
    let Some(trigrams) = pg_search::word_trigrams(words) else {
        // No word of three bytes: nothing narrows the search.
        let older = EventCursor { before_seq: below };
        let q = matching(project_id, filter, Some(older), None);
        rows.extend(rows_of(q, n - rows.len() as u64, txn).await?);
        return Ok(rows);
    };
    let mut ranges = pg_search::chunks_holding(txn, &trigrams).await?;
    ranges.extend(pg_search::pending_below(txn, below).await?);
    ranges.sort_unstable_by_key(|r| std::cmp::Reverse(r.0));
    let mut per_round = PG_FIRST_RANGES;
    loop {
        let (floor, round) = pg_search::round(&ranges, below, per_round);
        if !round.is_empty() {
            let within = round.iter().fold(Condition::any(), |c, &(lo, hi)| {
                c.add(event::Column::Seq.between(lo, hi))
            });
            let older = EventCursor { before_seq: below };
            let q = matching(project_id, filter, Some(older), None).filter(within);
            rows.extend(rows_of(q, n - rows.len() as u64, txn).await?);
        }
        match floor {
            Some(floor) if (rows.len() as u64) < n => below = floor,
            _ => break,
        }
        per_round = Ord::min(per_round * 4, PG_MAX_RANGES);
    }
    Ok(rows)
}

/// Tag rows of the project with `key` = `value`: the columns of `ix_event_tags_lookup`, in its
/// order. Naming the project (its first column) lets PostgreSQL read a rare tag from the index
/// in the per-event probe too, instead of scanning every tag row.
fn tag_is(project_id: Uuid, key: &str, value: &str) -> Condition {
    Condition::all()
        .add(Expr::col((event_tag::Entity, event_tag::Column::ProjectId)).eq(project_id))
        .add(Expr::col((event_tag::Entity, event_tag::Column::Key)).eq(key))
        .add(Expr::col((event_tag::Entity, event_tag::Column::Value)).eq(value))
}

/// The WHERE clause of a filter, for one project; the first tag is left out when the query
/// is driven by it (`matching`).
fn condition(project_id: Uuid, f: &EventFilter, first_tag_joined: bool) -> Condition {
    let mut c = Condition::all().add(event::Column::ProjectId.eq(project_id));
    if let Some(level) = f.level {
        c = c.add(event::Column::Level.eq(level.as_str()));
    }
    if let Some(env) = &f.environment {
        c = c.add(event::Column::Environment.eq(env.as_str()));
    }
    if let Some(rel) = &f.release {
        c = c.add(event::Column::Release.eq(rel.as_str()));
    }
    if let Some(user) = &f.user_id {
        c = c.add(event::Column::UserId.eq(user.as_str()));
    }
    if let Some(gid) = f.group_id {
        c = c.add(event::Column::GroupId.eq(gid));
    }
    if let Some(since) = f.since {
        c = c.add(event::Column::Timestamp.gte(since.timestamp_millis()));
    }
    if let Some(until) = f.until {
        c = c.add(event::Column::Timestamp.lt(until.timestamp_millis()));
    }
    if let Some(status) = f.status {
        let groups = Query::select()
            .column(group::Column::Id)
            .from(group::Entity)
            .and_where(Expr::col(group::Column::ProjectId).eq(project_id))
            .and_where(Expr::col(group::Column::Status).eq(status.as_str()))
            .to_owned();
        c = c.add(event::Column::GroupId.in_subquery(groups));
    }
    for (k, v) in f.tags.iter().skip(usize::from(first_tag_joined)) {
        let tagged = Query::select()
            .expr(Expr::val(1))
            .from(event_tag::Entity)
            .and_where(
                Expr::col((event_tag::Entity, event_tag::Column::EventSeq))
                    .equals((event::Entity, event::Column::Seq)),
            )
            .cond_where(tag_is(project_id, k, v))
            .to_owned();
        c = c.add(Expr::exists(tagged));
    }
    if let Some(q) = &f.q {
        for word in search_words(q) {
            c = c.add(
                Expr::col((event::Entity, event::Column::SearchText))
                    .like(LikeExpr::new(escape_like(&word)).escape('\\')),
            );
        }
    }
    c
}

/// Up to `n` rows of a query. The search text is left out (nothing read from a row shows
/// it); the payload stays compressed inside `data`.
async fn rows_of(
    q: Select<event::Entity>,
    n: u64,
    db: &impl ConnectionTrait,
) -> Result<Vec<event::Model>, Error> {
    q.select_only()
        .columns(event::Column::iter().filter(|c| !matches!(c, event::Column::SearchText)))
        .column_as(Expr::val(""), "search_text")
        .limit(n)
        .into_model::<event::Model>()
        .all(db)
        .await
        .map_err(db_err)
}

impl Store {
    /// Events matching `filter`, newest first, starting after `cursor`; `limit + 1` rows are
    /// read so the caller learns whether another page exists.
    pub async fn list_events(
        &self,
        project_id: Uuid,
        filter: &EventFilter,
        cursor: Option<EventCursor>,
        limit: u64,
    ) -> Result<(Vec<StoredEvent>, Option<EventCursor>), Error> {
        let rows = self
            .newest_rows(project_id, filter, cursor, limit + 1)
            .await?;
        let mut events: Vec<StoredEvent> = rows
            .into_iter()
            .map(|m| convert::event(m, false))
            .collect::<Result<_, _>>()?;
        let next = if events.len() as u64 > limit {
            events.truncate(limit as usize);
            events.last().map(|e| EventCursor { before_seq: e.seq })
        } else {
            None
        };
        Ok((events, next))
    }

    /// Up to `n` rows matching `filter` after `cursor`, newest first: from the groups that
    /// can hold them when `narrowed_groups` names a few (each group's newest rows from its
    /// own index, merged), else from one query. Listings and exports read through here.
    async fn newest_rows(
        &self,
        project_id: Uuid,
        filter: &EventFilter,
        cursor: Option<EventCursor>,
        n: u64,
    ) -> Result<Vec<event::Model>, Error> {
        let Some(groups) = self.narrowed_groups(project_id, filter).await? else {
            return self.query_rows(project_id, filter, cursor, n).await;
        };
        let mut rows = Vec::new();
        for group_id in groups {
            let one = EventFilter {
                group_id: Some(group_id),
                ..filter.clone()
            };
            rows.extend(self.query_rows(project_id, &one, cursor, n).await?);
        }
        rows.sort_unstable_by_key(|m| std::cmp::Reverse(m.seq));
        rows.truncate(usize::try_from(n).unwrap_or(usize::MAX));
        Ok(rows)
    }

    /// Up to `n` rows matching `filter` after `cursor`, newest first, from one query; a
    /// search on SQLite reads the events its index does not hold yet first, as without it,
    /// then the older ones through the index (`matching`); a search on PostgreSQL goes
    /// through its own index (`pg_searched_rows`).
    async fn query_rows(
        &self,
        project_id: Uuid,
        filter: &EventFilter,
        cursor: Option<EventCursor>,
        n: u64,
    ) -> Result<Vec<event::Model>, Error> {
        let words = filter.q.as_deref().map(search_words).unwrap_or_default();
        // A group's or a tag's index leads a search that names one (`matching`); the search
        // indexes lead the others.
        let by_words = !words.is_empty() && filter.group_id.is_none() && filter.tags.is_empty();
        if by_words && self.backend() == DbBackend::Postgres {
            let txn = pg_search::snapshot(&self.db).await?;
            let rows = pg_searched_rows(&txn, project_id, filter, &words, cursor, n).await?;
            txn.commit().await.map_err(db_err)?;
            return Ok(rows);
        }
        let terms = search::match_expression(&words).filter(|_| by_words && self.search_index);
        let Some(terms) = terms else {
            return rows_of(matching(project_id, filter, cursor, None), n, &self.db).await;
        };
        let state = Query::select()
            .column(Alias::new("indexed_seq"))
            .from((Alias::new(search::SCHEMA), Alias::new(search::STATE)))
            .to_owned();
        let upto: i64 = match self.db.query_one(&state).await.map_err(db_err)? {
            Some(row) => row.try_get("", "indexed_seq").map_err(db_err)?,
            None => 0,
        };
        let mut rows = Vec::new();
        if cursor.is_none_or(|c| c.before_seq > upto + 1) {
            let tail =
                matching(project_id, filter, cursor, None).filter(event::Column::Seq.gt(upto));
            rows = rows_of(tail, n, &self.db).await?;
        }
        let wanted = n.saturating_sub(rows.len() as u64);
        if wanted > 0 {
            let older = matching(project_id, filter, cursor, Some(Indexed { terms, upto }));
            rows.extend(rows_of(older, wanted, &self.db).await?);
        }
        Ok(rows)
    }

    /// For a listing or export filtered by release, environment or user (no group, no tag),
    /// the groups that can hold its events: those whose counts (`group_stats`, written with
    /// the events and removed only with their group) hold every one of those values. Read
    /// newest first across the project, a value that few events have meant reading every
    /// event (420 ms at 300 000 events on SQLite for a value no event has); reading only these
    /// groups' events is bounded by their size. `None` (scan the project) when the filter
    /// names none of these fields, or when every value it names is held by more than
    /// `NARROW_GROUPS_MAX` groups, or the groups hold more than `NARROW_EVENTS_MAX` events
    /// between them: a value that common is found soon enough newest first.
    async fn narrowed_groups(
        &self,
        project_id: Uuid,
        f: &EventFilter,
    ) -> Result<Option<Vec<Uuid>>, Error> {
        if f.group_id.is_some() || !f.tags.is_empty() {
            return Ok(None);
        }
        // Group id → events the group has seen.
        let mut found: Option<HashMap<Uuid, i64>> = None;
        for (dim, value) in [
            ("release", &f.release),
            ("environment", &f.environment),
            ("user", &f.user_id),
        ] {
            // Empty values are not counted (an event without a release has none).
            let Some(value) = value.as_deref().filter(|v| !v.is_empty()) else {
                continue;
            };
            let stmt = Query::select()
                .column((group_stat::Entity, group_stat::Column::GroupId))
                .column((group::Entity, group::Column::TimesSeen))
                .from(group_stat::Entity)
                .inner_join(
                    group::Entity,
                    Expr::col((group::Entity, group::Column::Id))
                        .equals((group_stat::Entity, group_stat::Column::GroupId)),
                )
                .and_where(Expr::col((group::Entity, group::Column::ProjectId)).eq(project_id))
                .and_where(Expr::col((group_stat::Entity, group_stat::Column::Dim)).eq(dim))
                .and_where(Expr::col((group_stat::Entity, group_stat::Column::Value)).eq(value))
                // One more than can be read one by one: a common value costs a few rows here.
                .limit(NARROW_GROUPS_MAX as u64 + 1)
                .to_owned();
            let mut these = HashMap::new();
            for row in self.db.query_all(&stmt).await.map_err(db_err)? {
                let group_id: Uuid = row.try_get("", "group_id").map_err(db_err)?;
                let seen: i64 = row.try_get("", "times_seen").map_err(db_err)?;
                these.insert(group_id, seen);
            }
            if these.len() > NARROW_GROUPS_MAX {
                // Not every group that holds this value was read: it narrows nothing, and
                // the groups the other values name are still a superset of the answer.
                continue;
            }
            found = Some(match found {
                None => these,
                Some(before) => before
                    .into_iter()
                    .filter(|(g, _)| these.contains_key(g))
                    .collect(),
            });
        }
        let Some(groups) = found else {
            return Ok(None);
        };
        if groups.values().sum::<i64>() > NARROW_EVENTS_MAX {
            return Ok(None);
        }
        Ok(Some(groups.into_keys().collect()))
    }

    /// One event of the project, with its payload and which of its grouping keys its group has.
    pub async fn get_event(&self, project_id: Uuid, event_id: Uuid) -> Result<StoredEvent, Error> {
        let mut row = event::Entity::find()
            .filter(event::Column::Id.eq(event_id))
            .filter(event::Column::ProjectId.eq(project_id))
            .one(&self.db)
            .await
            .map_err(db_err)?;
        if row.is_none() {
            // A Sentry SDK knows its event by the id it made (`last_event_id()`), which the
            // event keeps as its idempotency key (`ingest::sentry`), indexed per project.
            row = event::Entity::find()
                .filter(event::Column::ProjectId.eq(project_id))
                .filter(event::Column::IdempotencyKey.eq(format!("sentry:{}", event_id.simple())))
                .one(&self.db)
                .await
                .map_err(db_err)?;
        }
        let mut ev = row
            .map(|m| convert::event(m, true))
            .ok_or(Error::NotFound { what: "event" })??;
        let variants = &mut ev.grouping.variants;
        if !variants.is_empty() {
            let hashes: Vec<String> = variants.iter().map(|v| v.hash.clone()).collect();
            let keys: Vec<String> = group_hash::Entity::find()
                .select_only()
                .column(group_hash::Column::Hash)
                .filter(group_hash::Column::ProjectId.eq(project_id))
                .filter(group_hash::Column::GroupId.eq(ev.group_id))
                .filter(group_hash::Column::Hash.is_in(hashes))
                .into_tuple()
                .all(&self.db)
                .await
                .map_err(db_err)?;
            for v in variants.iter_mut() {
                v.matches_group = keys.contains(&v.hash);
            }
        }
        Ok(ev)
    }

    /// A page of events for an export, with payloads, in the listing order.
    pub async fn export_page(
        &self,
        project_id: Uuid,
        filter: &EventFilter,
        cursor: Option<EventCursor>,
        page: u64,
    ) -> Result<ExportPage, Error> {
        let rows = self.newest_rows(project_id, filter, cursor, page).await?;
        let full = rows.len() as u64 == page;
        let events: Vec<StoredEvent> = rows
            .into_iter()
            .map(|m| convert::event(m, true))
            .collect::<Result<_, _>>()?;
        let next = if full {
            events.last().map(|e| EventCursor { before_seq: e.seq })
        } else {
            None
        };
        Ok(ExportPage { events, next })
    }
}
