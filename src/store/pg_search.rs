//! PostgreSQL's search index (migration 11). Search matches each word as a case-insensitive
//! substring of an event's search text (`LIKE '%word%'`); without an index, a word few events
//! hold read every event of the project (0.9–1.3 s at 1 000 000 events).
//!
//! A trigram index (`pg_trgm`, GIN) on the events themselves would answer that, but kept by
//! every insert it cut capture to a third (rest-batch 11 269 → 3 319 events/s): GIN adds a
//! posting for each distinct trigram of each row, hundreds per event. So the index is built
//! behind the writer, and per chunk of events rather than per event:
//! - Each ingest batch writes down the range of its event numbers (`event_search_pending`) in
//!   its own transaction (`pending_range`). Ranges, not a watermark: event numbers come from a
//!   sequence, and batches of several servers sharing the database commit out of order.
//! - The indexer (`PgIndexer`, a task on each server) takes pending ranges in order
//!   (`FOR UPDATE SKIP LOCKED`, so servers share the work), reads their events' search texts
//!   and stores, per chunk of up to `CHUNK_EVENTS` events, every distinct three-byte sequence
//!   of those texts (`trigrams`, packed in integers) under a GIN index. A chunk adds a posting
//!   per distinct trigram, not per event and trigram.
//! - An event holding a word holds each of the word's trigrams, so it lies in a chunk holding
//!   them all (`@>`, which GIN answers exactly, reading no array): the chunks found hold every
//!   answer, and each of their events is checked with the whole filter. Words of fewer than
//!   three bytes have no trigram and narrow nothing.
//! - A search (`events::pg_searched_rows`) reads, in one snapshot: the project's newest
//!   `PG_WINDOW` events directly (a common word is found there at once); then, older than
//!   those, the events of the pending ranges and of the chunks found, newest first, a few
//!   ranges at a time.
//! - Events written by a server older than migration 11 (during a rolling upgrade) have no
//!   range, so they are found only among the newest `PG_WINDOW`; the README says so.
//! - Deleted events leave their trigrams in their chunk (a superset still); a chunk none of
//!   whose events remain is dropped by `prune`.
//! - pg_trgm's own index was tried on such chunks (their distinct lines as text) and dropped:
//!   its matches are re-checked against each chunk's text, which PostgreSQL decompresses, and
//!   a common word took 470 ms at 1 000 000 events.

use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, Instant},
};

use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DbBackend, IsolationLevel, Statement,
    TransactionTrait, Value,
    sea_query::{Alias, InsertStatement, Query},
};

use super::db_err;
use crate::error::Error;

const PENDING: &str = "event_search_pending";
const CHUNKS: &str = "event_search_chunks";

/// Events per chunk, at most.
const CHUNK_EVENTS: i64 = 256;
/// A chunk spans fewer event numbers than this: pending ranges far apart (or sparse after
/// deletions) make separate chunks, so a chunk found makes a search read few other events.
const CHUNK_SPAN: i64 = 4096;
/// Pending ranges looked at per step.
const RANGES_PER_STEP: u64 = 64;
/// Between steps while ingest batches keep committing, the indexer waits this many times as
/// long as its last step took: it takes at most a tenth of the time then.
const BUSY_WAIT_FACTOR: u32 = 9;
const POLL: Duration = Duration::from_secs(1);
const RETRY: Duration = Duration::from_secs(5);
/// How often the indexer prunes chunks and vacuums the pending ranges (`tidy`).
const TIDY_EVERY: Duration = Duration::from_secs(600);

/// The statement an ingest batch writes its event numbers' range with.
pub(super) fn pending_range(lo: i64, hi: i64) -> InsertStatement {
    Query::insert()
        .into_table(Alias::new(PENDING))
        .columns([Alias::new("lo"), Alias::new("hi")])
        .values_panic([lo.into(), hi.into()])
        .to_owned()
}

fn stmt(sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// One indexing step in one transaction: up to `CHUNK_EVENTS` events of the oldest pending
/// ranges no other server holds become one chunk; the ranges read are removed (or shortened,
/// when only their start was read). Returns how many events were read, or `None` when nothing
/// was pending.
async fn index_step(db: &DatabaseConnection) -> Result<Option<usize>, Error> {
    let txn = db.begin().await.map_err(db_err)?;
    let ranges = txn
        .query_all_raw(stmt(
            &format!(
                "SELECT id, lo, hi FROM {PENDING} ORDER BY lo LIMIT $1 FOR UPDATE SKIP LOCKED"
            ),
            [(RANGES_PER_STEP as i64).into()],
        ))
        .await
        .map_err(db_err)?;
    if ranges.is_empty() {
        txn.commit().await.map_err(db_err)?;
        return Ok(None);
    }
    let mut texts: Vec<String> = Vec::new();
    let mut span: Option<(i64, i64)> = None;
    for row in ranges {
        let id: i64 = row.try_get("", "id").map_err(db_err)?;
        let lo: i64 = row.try_get("", "lo").map_err(db_err)?;
        let hi: i64 = row.try_get("", "hi").map_err(db_err)?;
        // Ranges come lowest start first: the chunk starts at the first one's.
        let start = span.map_or(lo, |(s, _)| s);
        let budget = CHUNK_EVENTS - texts.len() as i64;
        if budget <= 0 || lo - start >= CHUNK_SPAN {
            break;
        }
        // Read no further than the chunk may span.
        let until = hi.min(start + CHUNK_SPAN - 1);
        let rows = txn
            .query_all_raw(stmt(
                "SELECT seq, search_text FROM events WHERE seq BETWEEN $1 AND $2 \
                 ORDER BY seq LIMIT $3",
                [lo.into(), until.into(), budget.into()],
            ))
            .await
            .map_err(db_err)?;
        let full = rows.len() as i64 == budget;
        let mut last = lo - 1;
        for row in rows {
            last = row.try_get("", "seq").map_err(db_err)?;
            texts.push(row.try_get("", "search_text").map_err(db_err)?);
        }
        // Read up to here: `until`, unless the budget ran out first.
        let read_to = if full { last } else { until };
        if read_to >= hi {
            txn.execute_raw(stmt(
                &format!("DELETE FROM {PENDING} WHERE id = $1"),
                [id.into()],
            ))
            .await
            .map_err(db_err)?;
        } else {
            txn.execute_raw(stmt(
                &format!("UPDATE {PENDING} SET lo = $2 WHERE id = $1"),
                [id.into(), (read_to + 1).into()],
            ))
            .await
            .map_err(db_err)?;
        }
        span = Some((start, span.map_or(read_to, |(_, e)| e.max(read_to))));
        if read_to < hi {
            break;
        }
    }
    let read = texts.len();
    if let (Some((lo, hi)), false) = (span, texts.is_empty()) {
        let mut trigrams = HashSet::new();
        for t in &texts {
            trigrams.extend(trigrams_of(t));
        }
        txn.execute_raw(stmt(
            &format!("INSERT INTO {CHUNKS} (lo, hi, trigrams) VALUES ($1, $2, $3::integer[])"),
            [lo.into(), hi.into(), array_literal(trigrams).into()],
        ))
        .await
        .map_err(db_err)?;
    }
    txn.commit().await.map_err(db_err)?;
    Ok(Some(read))
}

/// The three-byte sequences of `text`, each packed in an integer, except those holding ASCII
/// whitespace (a search word holds none).
fn trigrams_of(text: &str) -> impl Iterator<Item = i32> + '_ {
    text.as_bytes()
        .windows(3)
        .filter(|w| !w.iter().any(u8::is_ascii_whitespace))
        .map(|w| i32::from(w[0]) << 16 | i32::from(w[1]) << 8 | i32::from(w[2]))
}

/// The trigrams every event matching `words` holds (each word's), or `None` when no word has
/// three bytes: such a search cannot be narrowed.
pub(super) fn word_trigrams(words: &[String]) -> Option<Vec<i32>> {
    let mut all: Vec<i32> = words.iter().flat_map(|w| trigrams_of(w)).collect();
    all.sort_unstable();
    all.dedup();
    (!all.is_empty()).then_some(all)
}

/// `{1,2,3}`: an integer array as PostgreSQL reads it from text.
fn array_literal(values: impl IntoIterator<Item = i32>) -> String {
    let mut s = String::from("{");
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&v.to_string());
    }
    s.push('}');
    s
}

/// Drops the chunks none of whose events remain (retention, deleted groups). Returns how many.
async fn prune(db: &DatabaseConnection) -> Result<u64, Error> {
    let done = db
        .execute_raw(stmt(
            &format!(
                "DELETE FROM {CHUNKS} c WHERE NOT EXISTS \
                 (SELECT 1 FROM events e WHERE e.seq BETWEEN c.lo AND c.hi)"
            ),
            [],
        ))
        .await
        .map_err(db_err)?;
    Ok(done.rows_affected())
}

/// Drops chunks whose events are all gone (`prune`), and vacuums the pending ranges' table:
/// every batch adds a row there and the indexer deletes it, and where autovacuum is off
/// (some servers run so) nothing else would reuse the space of the deleted rows.
async fn tidy(db: &DatabaseConnection) -> Result<(), Error> {
    let pruned = prune(db).await?;
    if pruned > 0 {
        tracing::debug!(chunks = pruned, "search chunks pruned");
    }
    db.execute_unprepared(&format!("VACUUM {PENDING}"))
        .await
        .map_err(db_err)?;
    Ok(())
}

/// The search indexer of one server: a task that runs until the store closes (or is dropped).
#[derive(Debug)]
pub(super) struct PgIndexer(std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>);

impl PgIndexer {
    /// Starts indexing on `db`. `writes` counts the store's writes (every ingest batch
    /// among them): while it moves, the indexer holds back.
    pub(super) fn start(db: DatabaseConnection, writes: Arc<super::cache::Derived>) -> PgIndexer {
        let task = tokio::spawn(index_until_aborted(db, writes));
        PgIndexer(std::sync::Mutex::new(Some(task)))
    }

    /// Stops the task between (or inside) steps; a step cut short is rolled back.
    pub(super) async fn stop(&self) {
        let task = self.0.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for PgIndexer {
    fn drop(&mut self) {
        if let Ok(mut t) = self.0.lock()
            && let Some(task) = t.take()
        {
            task.abort();
        }
    }
}

/// The indexer's task: a step at a time, waiting while ingest is busy (at most a tenth of the
/// time) or nothing is pending, and tidying up every `TIDY_EVERY`.
async fn index_until_aborted(db: DatabaseConnection, writes: Arc<super::cache::Derived>) {
    let mut seen = writes.write_count();
    let mut tidied = Instant::now();
    loop {
        if tidied.elapsed() >= TIDY_EVERY {
            tidied = Instant::now();
            if let Err(e) = tidy(&db).await {
                tracing::warn!(error = %e, "search index upkeep failed");
            }
        }
        let started = Instant::now();
        let wait = match index_step(&db).await {
            Ok(Some(_)) => {
                let now = writes.write_count();
                let busy = now != seen;
                seen = now;
                if busy {
                    started.elapsed() * BUSY_WAIT_FACTOR
                } else {
                    Duration::ZERO
                }
            }
            Ok(None) => POLL,
            Err(e) => {
                tracing::warn!(error = %e, "search indexing step failed");
                RETRY
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// Ranges of event numbers, inclusive, coalesced where they touch or overlap, highest first.
fn coalesce(mut ranges: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    ranges.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)));
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(ranges.len());
    for (lo, hi) in ranges {
        match out.last_mut() {
            Some(last) if hi + 1 >= last.0 => last.0 = last.0.min(lo),
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// One round of a search below `below` over `ranges` (highest start first): the `n` ranges
/// starting highest below `below`, and every other range reaching into what they cover, cut
/// to `[floor, below)`, coalesced, highest first. `floor` is the lowest start among the `n`, or
/// `None` when no range starts lower (the round then reaches down to the first event).
pub(super) fn round(ranges: &[(i64, i64)], below: i64, n: usize) -> (Option<i64>, Vec<(i64, i64)>) {
    let n = n.max(1);
    let first = ranges.partition_point(|r| r.0 >= below);
    let floor = ranges.get(first + n).map(|_| ranges[first + n - 1].0);
    let from = floor.unwrap_or(i64::MIN);
    let cut = ranges
        .iter()
        .map(|&(lo, hi)| (Ord::max(lo, from), Ord::min(hi, below - 1)))
        .filter(|(lo, hi)| lo <= hi)
        .collect();
    (floor, coalesce(cut))
}

/// The `lo` and `hi` of each row.
fn ranges_of(rows: &[sea_orm::QueryResult]) -> Result<Vec<(i64, i64)>, Error> {
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("", "lo").map_err(db_err)?,
                r.try_get("", "hi").map_err(db_err)?,
            ))
        })
        .collect()
}

/// A read-only snapshot for one search: the pending ranges, the chunks and the events agree.
pub(super) async fn snapshot(
    db: &DatabaseConnection,
) -> Result<sea_orm::DatabaseTransaction, Error> {
    db.begin_with_config(
        Some(IsolationLevel::RepeatableRead),
        Some(AccessMode::ReadOnly),
    )
    .await
    .map_err(db_err)
}

/// Every pending range starting below `below`.
pub(super) async fn pending_below(
    txn: &impl ConnectionTrait,
    below: i64,
) -> Result<Vec<(i64, i64)>, Error> {
    let rows = txn
        .query_all_raw(stmt(
            &format!("SELECT lo, hi FROM {PENDING} WHERE lo < $1"),
            [below.into()],
        ))
        .await
        .map_err(db_err)?;
    ranges_of(&rows)
}

/// Every chunk holding all of `trigrams`, as event number ranges. The GIN index answers this
/// without reading any chunk's array; PostgreSQL would rather scan the table, whose rows look
/// small (the arrays are stored apart), and read every array, so scans are turned off for this
/// one statement.
pub(super) async fn chunks_holding(
    txn: &impl ConnectionTrait,
    trigrams: &[i32],
) -> Result<Vec<(i64, i64)>, Error> {
    txn.execute_raw(stmt("SET LOCAL enable_seqscan = off", []))
        .await
        .map_err(db_err)?;
    let rows = txn
        .query_all_raw(stmt(
            &format!("SELECT lo, hi FROM {CHUNKS} WHERE trigrams @> $1::integer[]"),
            [array_literal(trigrams.iter().copied()).into()],
        ))
        .await
        .map_err(db_err)?;
    txn.execute_raw(stmt("SET LOCAL enable_seqscan = on", []))
        .await
        .map_err(db_err)?;
    ranges_of(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        domain::event::{Level, NewEvent},
        ingest::{CaptureInput, prepare},
        store::{
            Store,
            search::tests::{assert_searches, audit, commit_noting, keep_stored},
        },
    };
    use uuid::Uuid;

    /// A new database on the PostgreSQL of `FAULTLINE_TEST_DATABASE_URL`, or `None` when it
    /// is not set; a server that cannot be reached fails the test.
    async fn fresh_database() -> Option<(String, String)> {
        let base = std::env::var("FAULTLINE_TEST_DATABASE_URL").ok()?;
        let base = base.trim().to_owned();
        if base.is_empty() {
            return None;
        }
        let name = format!("ft_{}", Uuid::new_v4().simple());
        let admin = sea_orm::Database::connect(&base)
            .await
            .unwrap_or_else(|e| panic!("FAULTLINE_TEST_DATABASE_URL={base:?} unreachable: {e}"));
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap();
        let _ = admin.close().await;
        let (server, _) = base.rsplit_once('/').expect("a database URL");
        Some((format!("{server}/{name}"), base))
    }

    async fn count(db: &DatabaseConnection, table: &str) -> i64 {
        let row = db
            .query_one_raw(stmt(&format!("SELECT count(*) AS n FROM {table}"), []))
            .await
            .unwrap()
            .unwrap();
        row.try_get("", "n").unwrap()
    }

    /// Searches on PostgreSQL answer the same whatever part of the events the indexer has
    /// made into chunks: none (every range pending), some, all, and after a group is deleted
    /// and its chunks pruned. 1 300 events: more than the newest `PG_WINDOW` a search reads
    /// directly, so pages cross from those into the pending ranges and the chunks.
    #[tokio::test]
    async fn searches_answer_alike_through_the_chunks_and_the_pending_ranges() {
        let Some((url, base)) = fresh_database().await else {
            return;
        };
        let store = Store::open_with(&url, 4, false).await.unwrap();
        let (project, _) = store.project_named_or_create("p", audit()).await.unwrap();
        let (other, _) = store.project_named_or_create("o", audit()).await.unwrap();
        let words = ["walrus", "narwhal", "kraken"];
        let mut searched: Vec<(Uuid, String)> = Vec::new();
        for round in 0..13 {
            let mut batch = Vec::new();
            for i in 0..100 {
                let n = round * 100 + i;
                // walrus in every 97th event, narwhal in every 5th, kraken in the first few.
                let mut message = format!("order {n} failed");
                for (w, every) in words.iter().zip([97, 5, 1000]) {
                    if n % every == 3 {
                        message.push_str(&format!(" {w}"));
                    }
                }
                let input = CaptureInput {
                    message,
                    // A few groups, so that one can be deleted.
                    fingerprint: vec![format!("g{}", n % 4)],
                    ..Default::default()
                };
                let ev: NewEvent =
                    prepare(project, input, Level::Error, chrono::Utc::now()).unwrap();
                batch.push(Box::new(ev));
            }
            // Another project's events hold two of the words and must never be found.
            let input = CaptureInput {
                message: format!("walrus narwhal {round}"),
                ..Default::default()
            };
            batch.push(Box::new(
                prepare(other, input, Level::Error, chrono::Utc::now()).unwrap(),
            ));
            commit_noting(&store, batch, project, &mut searched).await;
        }
        let queries = [
            "walrus",
            "NARWHAL",
            "kraken",
            "walrus narwhal",
            "order 3",
            "nothere",
            "ord",
            "7",
        ];
        let db = &store.db;
        assert_eq!(count(db, PENDING).await, 13, "one range per batch");
        let mut steps = 0;
        loop {
            let when = format!("after {steps} indexing steps");
            assert_searches(&store, project, &searched, &queries, &[7, 200], &when).await;
            let Some(read) = index_step(db).await.unwrap() else {
                break;
            };
            assert!(read > 0 && read <= CHUNK_EVENTS as usize, "{read}");
            // Pages cross several states of the index; two steps each time keep this short.
            let _ = index_step(db).await.unwrap();
            steps += 1;
        }
        assert_eq!(count(db, PENDING).await, 0);
        let chunks = count(db, CHUNKS).await;
        assert!((6..=8).contains(&chunks), "1 313 events in {chunks} chunks");

        // Only chunks holding the word's trigrams are found; none for a word no event holds.
        let found = |word: &str| {
            let trigrams = word_trigrams(&[word.to_owned()]).unwrap();
            async move { chunks_holding(db, &trigrams).await.unwrap() }
        };
        assert!(found("nothere").await.is_empty());
        assert_eq!(found("kraken").await.len(), 2, "events 3 and 1 003");
        assert_eq!(found("walrus").await.len(), chunks as usize, "every chunk");
        assert_eq!(word_trigrams(&["7".into(), "ab".into()]), None);

        // Delete one group: the searches stay exact, and chunks whose events are all gone go.
        let g = store
            .list_events(project, &Default::default(), None, 1)
            .await
            .unwrap()
            .0[0]
            .group_id;
        assert!(store.delete_group(project, g).await.unwrap() > 0);
        keep_stored(&store, project, &mut searched).await;
        assert_searches(
            &store,
            project,
            &searched,
            &queries,
            &[7, 200],
            "after a deletion",
        )
        .await;
        assert_eq!(prune(db).await.unwrap(), 0, "every chunk still has events");
        // The oldest chunk's events all go (as retention deletes the oldest): it is pruned.
        let first = db
            .query_one_raw(stmt(&format!("SELECT min(hi) AS hi FROM {CHUNKS}"), []))
            .await
            .unwrap()
            .unwrap();
        let hi: i64 = first.try_get("", "hi").unwrap();
        for table in ["event_tags WHERE event_seq", "events WHERE seq"] {
            db.execute_raw(stmt(&format!("DELETE FROM {table} <= $1"), [hi.into()]))
                .await
                .unwrap();
        }
        assert_eq!(prune(db).await.unwrap(), 1);
        tidy(db).await.unwrap();
        keep_stored(&store, project, &mut searched).await;
        assert_searches(
            &store,
            project,
            &searched,
            &queries,
            &[7, 200],
            "after pruning",
        )
        .await;

        store.close().await;
        let admin = sea_orm::Database::connect(&base).await.unwrap();
        let name = url.rsplit_once('/').unwrap().1;
        admin
            .execute_unprepared(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
            .await
            .unwrap();
    }

    #[test]
    fn ranges_coalesce_where_they_touch() {
        assert_eq!(
            coalesce(vec![(1, 5), (10, 12), (6, 8), (11, 20), (30, 30)]),
            vec![(30, 30), (10, 20), (1, 8)]
        );
        assert_eq!(coalesce(vec![]), vec![]);
    }

    #[test]
    fn trigrams_leave_out_whitespace() {
        let t = |s: &str| -> Vec<i32> { trigrams_of(s).collect() };
        let abc = i32::from(b'a') << 16 | i32::from(b'b') << 8 | i32::from(b'c');
        assert_eq!(t("abc"), vec![abc]);
        assert_eq!(t("ab c\nabc"), vec![abc]);
        assert!(t("ab").is_empty());
        // Bytes, not characters: "é" is two.
        assert_eq!(t("é1").len(), 1);
        assert_eq!(array_literal([3, -1, 7]), "{3,-1,7}");
        assert_eq!(array_literal([]), "{}");
    }

    /// A round reads the `n` ranges starting highest below its bound, and whatever part of a
    /// lower-starting range reaches into them (batches of several servers interleave).
    #[test]
    fn a_round_takes_in_ranges_reaching_into_it() {
        let ranges = [(900, 950), (800, 850), (700, 760), (600, 890), (100, 200)];
        assert_eq!(
            round(&ranges, 1000, 2),
            (Some(800), vec![(900, 950), (800, 890)])
        );
        assert_eq!(round(&ranges, 800, 2), (Some(600), vec![(600, 799)]));
        assert_eq!(round(&ranges, 600, 2), (None, vec![(100, 200)]));
        // Fewer than `n` left: down to the first event.
        assert_eq!(
            round(&ranges, 720, 16),
            (None, vec![(600, 719), (100, 200)])
        );
        assert_eq!(round(&[], 720, 16), (None, vec![]));
    }
}
