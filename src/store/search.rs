//! The search index of a SQLite database file: which events hold which three-character
//! sequences of their search text, so that a search for a word few events hold reads those
//! events, not the whole project.
//!
//! Search (`q`) matches each word as a case-insensitive substring of an event's search text
//! (`LIKE '%word%'`). Without an index that reads every event newer than the page it fills:
//! at 1 000 000 events, 2 s for a word no event holds. A trigram index answers a substring
//! query: every three characters of the word are in the text. Such an index is built by
//! SQLite's FTS5 (`tokenize='trigram'`), without its positions (`detail=none`) and without a
//! copy of the text (`content=''`); the trigrams only find candidates, and the candidates are
//! checked with the same `LIKE` as before, so the answers are the same, only found sooner.
//!
//! **Kept behind the writer.** Indexing costs about 26 µs of CPU per event (400 characters
//! of text), as much as two thirds of what the ingest writer spends on an event. So the
//! capture path does not index: a thread of its own, at the lowest CPU priority, indexes the
//! events committed since it last caught up, a chunk at a time, into a database file of its
//! own beside the main one (`faultline-search.db`). The file of its own keeps the indexer off
//! the main file's write lock, which the ingest writer holds; the priority, and small steps
//! with pauses while the writer is committing (`BUSY_CHUNK`), keep it off the cores while
//! captures need them. `event_search_state.indexed_seq` says up to which event
//! the index holds; a search reads the newer events (the tail) as before and the older ones
//! through the index. Under a sustained full load the tail grows, and the index catches up
//! when the load drops.
//!
//! **Deleted events** (retention, deleted groups and projects) are written down by a trigger
//! on `events` in `event_search_forget` (the trigger cannot reach another file); the indexer
//! removes them from the index (`contentless_delete=1`) and then from that table. Until then
//! the join with `events` drops them.
//!
//! The index is derived data: when the file is missing or was made by another version of
//! this module, it is built again from the events; when it is ahead of the events (the main
//! file restored from an older copy), it is emptied and built again.
//!
//! PostgreSQL keeps its index in the database instead (`pg_search`).

use std::{
    path::{Path, PathBuf},
    sync::{Arc, mpsc},
    time::Duration,
};

use super::lite::{in_transaction, lite_err, open_writer_connection};
use crate::error::Error;

/// The schema name the index file is attached under, on the read pool's connections and on
/// the indexer's.
pub(super) const SCHEMA: &str = "search";
/// Attaches the index file (the one parameter) under `SCHEMA`.
pub(super) const ATTACH: &str = "ATTACH DATABASE ?1 AS search";
/// The FTS5 table.
pub(super) const TABLE: &str = "event_search";
/// The one-row table holding up to which event (`events.seq`) the index holds.
pub(super) const STATE: &str = "event_search_state";
/// Stored in the index file's `user_version`; another value means another layout, rebuilt.
const LAYOUT: i64 = 1;
/// Events indexed per transaction: about 26 ms of CPU. Also the most deletions applied per
/// step.
const CHUNK: usize = 1_000;
/// Events indexed per step while the ingest writer is committing (it committed since the last
/// step), each step followed by a pause `BUSY_SHARE_INVERSE - 1` times as long as the step:
/// at most a tenth of one core then. Running flat out at idle priority instead, the indexer
/// cost single-event captures 16 % of their rate. This way the index still followed about
/// 7 000 events/s while `faultline-bench seed` loaded 300 000 events (it held 298 809 of them
/// when the load ended), and it catches up at full speed once the writer is idle.
const BUSY_CHUNK: usize = 100;
const BUSY_SHARE_INVERSE: u32 = 10;
/// Page cache of the indexer's connection, per file, in KiB (SQLite's default is 2 000): it
/// reads each event once and appends to the index, so a cache helps it little.
const CACHE_KIB: u32 = 256;
/// Its transactions begin deferred: one takes the write lock of only the file it writes
/// (`BEGIN IMMEDIATE` would take every attached file's, the main file's among them).
const BEGIN: &str = "BEGIN";
/// How long the indexer sleeps once it has caught up.
const POLL: Duration = Duration::from_millis(250);
/// How long it waits after a failed step before trying again.
const RETRY: Duration = Duration::from_secs(5);
/// At most this many trigrams of a search are looked up: any subset of a word's trigrams
/// finds every event that holds the word, and each one looked up costs a read of its list.
const TRIGRAMS_MAX: usize = 24;

/// The index file beside a database file: `faultline.db` → `faultline-search.db`.
pub(super) fn index_file(main: &Path) -> PathBuf {
    let stem = main
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "faultline".into());
    main.with_file_name(format!("{stem}-search.db"))
}

/// Creates the index file's tables when they are missing, and empties the index when it was
/// made by another layout or holds events the main file does not have (restored from an
/// older copy). Runs before the read pool opens, so that the file is in WAL mode before any
/// connection attaches it. Returns the index file.
pub(super) fn prepare(main: &Path) -> Result<PathBuf, Error> {
    let file = index_file(main);
    // In WAL mode, as the main file.
    let conn = open_writer_connection(&file)?;
    let layout: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(lite_err)?;
    if layout != LAYOUT {
        conn.execute_batch(&format!(
            "DROP TABLE IF EXISTS {TABLE}; DROP TABLE IF EXISTS {STATE};"
        ))
        .map_err(lite_err)?;
    }
    conn.execute_batch(&format!(
        "CREATE VIRTUAL TABLE IF NOT EXISTS {TABLE} USING fts5(text, content='', \
             contentless_delete=1, detail=none, tokenize='trigram'); \
         CREATE TABLE IF NOT EXISTS {STATE} (id INTEGER PRIMARY KEY CHECK (id = 1), \
             indexed_seq INTEGER NOT NULL); \
         INSERT OR IGNORE INTO {STATE} (id, indexed_seq) VALUES (1, 0); \
         PRAGMA user_version = {LAYOUT};"
    ))
    .map_err(lite_err)?;
    let indexed: i64 = conn
        .query_row(&format!("SELECT indexed_seq FROM {STATE}"), [], |r| {
            r.get(0)
        })
        .map_err(lite_err)?;
    if indexed > last_event_seq(main)? {
        tracing::warn!(
            indexed,
            "the search index holds events the database does not; building it again"
        );
        conn.execute_batch(&format!(
            "BEGIN; INSERT INTO {TABLE} ({TABLE}) VALUES ('delete-all'); \
             UPDATE {STATE} SET indexed_seq = 0; COMMIT;"
        ))
        .map_err(lite_err)?;
    }
    Ok(file)
}

/// The highest event number the main file has handed out (0 when it has none, or no file).
fn last_event_seq(main: &Path) -> Result<i64, Error> {
    if !main.exists() {
        return Ok(0);
    }
    let conn =
        rusqlite::Connection::open_with_flags(main, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(lite_err)?;
    conn.busy_timeout(super::BUSY_TIMEOUT).map_err(lite_err)?;
    let has_sequence: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE name = 'sqlite_sequence'",
            [],
            |r| r.get(0),
        )
        .map_err(lite_err)?;
    if !has_sequence {
        return Ok(0);
    }
    let seq: Option<i64> = conn
        .query_row(
            "SELECT max(seq) FROM sqlite_sequence WHERE name = 'events'",
            [],
            |r| r.get(0),
        )
        .map_err(lite_err)?;
    Ok(seq.unwrap_or(0))
}

/// The indexer's connection: the main file, with the index file attached as `search`. Its
/// transactions write only the index file, so it never takes the main file's write lock,
/// except to clear `event_search_forget`, one short statement.
pub(super) fn open_indexer_connection(
    main: &Path,
    index: &Path,
) -> Result<rusqlite::Connection, Error> {
    let conn = open_writer_connection(main)?;
    conn.execute(ATTACH, [index.to_string_lossy()])
        .map_err(lite_err)?;
    // The index can be built again from the events: a commit of it need not wait for the
    // disk (WAL keeps it consistent; a power cut may only lose the last chunks).
    conn.execute_batch(&format!(
        "PRAGMA {SCHEMA}.synchronous = NORMAL; PRAGMA main.cache_size = -{CACHE_KIB}; PRAGMA {SCHEMA}.cache_size = -{CACHE_KIB};"
    ))
    .map_err(lite_err)?;
    Ok(conn)
}

/// One step of the indexer: removes up to `max` deleted events from the index, then adds up
/// to `max` events committed since the index last caught up, each in a transaction of its
/// own. Returns the larger of the two counts; below `max`, it has caught up.
pub(super) fn index_some(conn: &rusqlite::Connection, max: usize) -> Result<usize, Error> {
    let forgotten = forget_deleted(conn, max)?;
    let indexed = index_new(conn, max)?;
    Ok(forgotten.max(indexed))
}

/// Up to which event the index holds.
fn indexed_seq(conn: &rusqlite::Connection) -> Result<i64, Error> {
    conn.query_row(
        &format!("SELECT indexed_seq FROM {SCHEMA}.{STATE}"),
        [],
        |r| r.get(0),
    )
    .map_err(lite_err)
}

fn forget_deleted(conn: &rusqlite::Connection, max: usize) -> Result<usize, Error> {
    let seqs: Vec<i64> = conn
        .prepare_cached("SELECT seq FROM main.event_search_forget ORDER BY seq LIMIT ?1")
        .and_then(|mut s| {
            s.query_map([max as i64], |r| r.get(0))?
                .collect::<Result<_, _>>()
        })
        .map_err(lite_err)?;
    if seqs.is_empty() {
        return Ok(0);
    }
    in_transaction(conn, BEGIN, || {
        // Events above the index's mark were never indexed, and being gone, never will be.
        let indexed = indexed_seq(conn)?;
        let mut delete = conn
            .prepare_cached(&format!("DELETE FROM {SCHEMA}.{TABLE} WHERE rowid = ?1"))
            .map_err(lite_err)?;
        for &seq in seqs.iter().filter(|&&s| s <= indexed) {
            delete.execute([seq]).map_err(lite_err)?;
        }
        Ok(())
    })?;
    // Only now: should the step above fail, they are still listed for the next one.
    in_transaction(conn, BEGIN, || {
        let mut done = conn
            .prepare_cached("DELETE FROM main.event_search_forget WHERE seq = ?1")
            .map_err(lite_err)?;
        for &seq in &seqs {
            done.execute([seq]).map_err(lite_err)?;
        }
        Ok(())
    })?;
    Ok(seqs.len())
}

fn index_new(conn: &rusqlite::Connection, max: usize) -> Result<usize, Error> {
    let from = indexed_seq(conn)?;
    // Read first, in a snapshot of the main file held only while reading: held while this
    // low-priority thread waits for a core, it kept the main file's WAL from starting over
    // (it grew threefold under load). An event deleted after this read is indexed here and
    // listed for `forget_deleted`, which runs after this step; one deleted before is not read.
    let rows: Vec<(i64, String)> = conn
        .prepare_cached(
            "SELECT seq, search_text FROM main.events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )
        .and_then(|mut s| {
            s.query_map([from, max as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()
        })
        .map_err(lite_err)?;
    let Some(&(upto, _)) = rows.last() else {
        return Ok(0);
    };
    in_transaction(conn, BEGIN, || {
        let mut insert = conn
            .prepare_cached(&format!(
                "INSERT INTO {SCHEMA}.{TABLE} (rowid, text) VALUES (?1, ?2)"
            ))
            .map_err(lite_err)?;
        for (seq, text) in &rows {
            insert
                .execute(rusqlite::params![seq, text])
                .map_err(lite_err)?;
        }
        conn.prepare_cached(&format!("UPDATE {SCHEMA}.{STATE} SET indexed_seq = ?1"))
            .and_then(|mut s| s.execute([upto]))
            .map_err(lite_err)?;
        Ok(rows.len())
    })
}

/// The indexer thread; stops when dropped.
pub(super) struct Indexer {
    running: Option<(mpsc::Sender<()>, std::thread::JoinHandle<()>)>,
}

impl Indexer {
    /// Starts the indexer on `main`'s index file (made by `prepare`). `writes` counts the
    /// store's writes, every ingest batch among them: while it moves, the indexer holds back.
    pub(super) fn start(
        main: &Path,
        index: &Path,
        writes: Arc<super::cache::Derived>,
    ) -> Result<Indexer, Error> {
        let conn = open_indexer_connection(main, index)?;
        let (stop_tx, stop) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("faultline-search-indexer".into())
            .spawn(move || {
                lowest_priority();
                index_until_stopped(&conn, &writes, &stop);
                // Leave one file: the index's WAL copied back and emptied.
                if let Err(e) = conn.query_row(
                    &format!("PRAGMA {SCHEMA}.wal_checkpoint(TRUNCATE)"),
                    [],
                    |_| Ok(()),
                ) {
                    tracing::warn!(error = %e, "final search index checkpoint failed");
                }
            })
            .map_err(|e| Error::Internal(format!("cannot start the search indexer: {e}")))?;
        Ok(Indexer {
            running: Some((stop_tx, thread)),
        })
    }
}

/// Stops the indexer between two steps and waits for its thread to end.
impl Drop for Indexer {
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.running.take() {
            drop(stop);
            if thread.join().is_err() {
                tracing::error!("the search indexer panicked");
            }
        }
    }
}

fn index_until_stopped(
    conn: &rusqlite::Connection,
    writes: &super::cache::Derived,
    stop: &mpsc::Receiver<()>,
) {
    let mut seen = writes.write_count();
    loop {
        let now = writes.write_count();
        let busy = now != seen;
        seen = now;
        let chunk = if busy { BUSY_CHUNK } else { CHUNK };
        let started = std::time::Instant::now();
        let wait = match index_some(conn, chunk) {
            // While the writer commits, at most a tenth of the time (see `BUSY_CHUNK`).
            Ok(n) if n >= chunk && busy => started.elapsed() * BUSY_SHARE_INVERSE,
            Ok(n) if n >= chunk => Duration::ZERO,
            Ok(_) => POLL,
            Err(e) => {
                tracing::warn!(error = %e, "search indexing step failed");
                RETRY
            }
        };
        match stop.recv_timeout(wait) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Stopped (the sender is dropped; nothing is ever sent).
            _ => return,
        }
    }
}

/// Puts the calling thread in Linux's idle scheduling class (`SCHED_IDLE`, below nice 19), so
/// that the indexer takes only CPU time nothing else wants; nice 19 where that is refused.
/// Elsewhere it keeps the process's priority.
fn lowest_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain system calls on the calling thread (pid 0 / its own id); the
        // parameter struct is fully initialised; a failure changes nothing.
        let idle = unsafe {
            let param = libc::sched_param { sched_priority: 0 };
            libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) == 0
        };
        let niced = idle
            || unsafe {
                let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                libc::setpriority(libc::PRIO_PROCESS, tid, 19) == 0
            };
        if !niced {
            tracing::debug!("could not lower the search indexer's priority");
        }
    }
}

/// The FTS5 query finding the candidates of a search: trigrams of its words of three or more
/// characters, all required. `None` when no word is that long (the index cannot help).
/// Every third trigram of a word and its last cover the word; each is a quoted string, so no
/// character of the word is read as query syntax. Trigrams with control characters are left
/// out (fewer trigrams only find more candidates).
pub(super) fn match_expression(words: &[String]) -> Option<String> {
    let mut terms: Vec<String> = Vec::new();
    for word in words {
        let chars: Vec<char> = word.chars().collect();
        let Some(last) = chars.len().checked_sub(3) else {
            continue;
        };
        for start in (0..=last).step_by(3).chain([last]) {
            let trigram = &chars[start..start + 3];
            if trigram.iter().any(|c| c.is_control()) {
                continue;
            }
            let term = format!(
                "\"{}\"",
                trigram.iter().collect::<String>().replace('"', "\"\"")
            );
            if !terms.contains(&term) && terms.len() < TRIGRAMS_MAX {
                terms.push(term);
            }
        }
    }
    (!terms.is_empty()).then(|| terms.join(" AND "))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use uuid::Uuid;

    use crate::{
        domain::{
            cursor::EventCursor,
            event::{Level, NewEvent},
            filter::{EventFilter, search_words},
        },
        ingest::{CaptureInput, prepare},
        store::{NewAudit, Store, sqlite_url_in},
    };

    pub(in crate::store) fn audit() -> NewAudit {
        NewAudit {
            actor_key_id: None,
            actor_member_id: None,
            actor: "test".into(),
            peer_ip: String::new(),
            action: "project.create".into(),
            target: String::new(),
            project_id: None,
            details: serde_json::Value::Null,
        }
    }

    /// A store on a new database file in `dir` whose index the test steps itself, its file
    /// and a project.
    pub(crate) async fn store_without_indexer(dir: &Path) -> (Store, PathBuf, Uuid) {
        let store = Store::open_with(&sqlite_url_in(dir), 2, false)
            .await
            .unwrap();
        let (project, _) = store.project_named_or_create("p", audit()).await.unwrap();
        (store, dir.join("faultline.db"), project)
    }

    /// Every page of a search, `limit` events at a time, as event ids.
    async fn search_pages(store: &Store, project: Uuid, q: &str, limit: u64) -> Vec<Uuid> {
        let filter = EventFilter {
            q: Some(q.into()),
            ..Default::default()
        };
        let mut seqs = Vec::new();
        let mut cursor: Option<EventCursor> = None;
        loop {
            let (page, next) = store
                .list_events(project, &filter, cursor, limit)
                .await
                .unwrap();
            seqs.extend(page.iter().map(|e| e.id));
            match next {
                Some(c) => cursor = Some(c),
                None => return seqs,
            }
        }
    }

    /// Each search, paged `limit` events at a time for each of `limits`, finds exactly the
    /// events of `searched` (id and search text, oldest first) holding its every word, newest
    /// first.
    pub(in crate::store) async fn assert_searches(
        store: &Store,
        project: Uuid,
        searched: &[(Uuid, String)],
        queries: &[&str],
        limits: &[u64],
        when: &str,
    ) {
        for q in queries {
            let words = search_words(q);
            let expected: Vec<Uuid> = searched
                .iter()
                .rev()
                .filter(|(_, text)| words.iter().all(|w| text.contains(w.as_str())))
                .map(|(id, _)| *id)
                .collect();
            for &limit in limits {
                assert_eq!(
                    search_pages(store, project, q, limit).await,
                    expected,
                    "{q:?}, {limit} a page, {when}"
                );
            }
        }
    }

    /// Commits `batch` and notes the id and search text of each of its events in `project`.
    pub(in crate::store) async fn commit_noting<T: AsRef<NewEvent> + Send + 'static>(
        store: &Store,
        batch: Vec<T>,
        project: Uuid,
        searched: &mut Vec<(Uuid, String)>,
    ) {
        let (batch, committed) = store.commit_batch(batch).await;
        for (ev, c) in batch.iter().map(AsRef::as_ref).zip(committed.unwrap()) {
            if ev.project_id == project {
                searched.push((c.event_id, ev.search_text.clone()));
            }
        }
    }

    /// Keeps in `searched` only the events `project` still stores.
    pub(in crate::store) async fn keep_stored(
        store: &Store,
        project: Uuid,
        searched: &mut Vec<(Uuid, String)>,
    ) {
        let (stored, _) = store
            .list_events(project, &EventFilter::default(), None, 10_000)
            .await
            .unwrap();
        searched.retain(|(id, _)| stored.iter().any(|e| e.id == *id));
    }

    fn indexed_rows(conn: &rusqlite::Connection) -> i64 {
        conn.query_row(
            &format!("SELECT count(*) FROM {SCHEMA}.{TABLE} WHERE {TABLE} MATCH '\"est\"'"),
            [],
            |r| r.get(0),
        )
        .unwrap()
    }

    /// Searches answer the same whatever part of the events the index holds: none, some (the
    /// rest read as the tail, pages crossing from one to the other), all, and after deletions.
    #[tokio::test]
    async fn searches_answer_alike_through_the_index_and_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let (store, main, project) = store_without_indexer(dir.path()).await;
        let (other, _) = store.project_named_or_create("o", audit()).await.unwrap();
        let texts = [
            "Timeout talking to gateway",
            "KeyError: 'user_id'",
            "déjà vu: Überweisung abgelehnt",
            "100% disk_full on /var",
        ];
        // Search text by event, oldest first, to compute each search's answer.
        let mut searched: Vec<(Uuid, String)> = Vec::new();
        for round in 0..8 {
            let mut batch = Vec::new();
            for (i, text) in texts.iter().enumerate() {
                let input = CaptureInput {
                    message: format!("test {round}/{i}: {text}"),
                    ..Default::default()
                };
                let ev: NewEvent =
                    prepare(project, input, Level::Error, chrono::Utc::now()).unwrap();
                batch.push(Box::new(ev));
            }
            // Another project's events hold the same words and must never be found.
            let input = CaptureInput {
                message: format!("test {round}: {}", texts[0]),
                ..Default::default()
            };
            batch.push(Box::new(
                prepare(other, input, Level::Error, chrono::Utc::now()).unwrap(),
            ));
            commit_noting(&store, batch, project, &mut searched).await;
        }
        let queries = [
            "gateway",
            "GATEWAY timeout",
            "'user_id'",
            "überweisung",
            "DÉJÀ",
            "100%",
            "disk_",
            "test 3/",
            "test 7/2: déjà",
            "vu",
            "a",
            "gateway keyerror",
            "nowhere",
        ];
        let conn = open_indexer_connection(&main, &index_file(&main)).unwrap();
        let mut steps = 0;
        loop {
            let when = format!("after {steps} indexing steps");
            assert_searches(&store, project, &searched, &queries, &[3, 50], &when).await;
            // Seven events a step: pages of three cross from the tail into the index.
            if index_some(&conn, 7).unwrap() == 0 {
                break;
            }
            steps += 1;
        }
        assert_eq!(steps, 6, "40 events, 7 a step");
        assert_eq!(indexed_rows(&conn), 40);

        // Delete one group: its events leave the index at the next step.
        let gateway = store
            .list_events(
                project,
                &EventFilter {
                    q: Some("gateway".into()),
                    ..Default::default()
                },
                None,
                1,
            )
            .await
            .unwrap()
            .0[0]
            .group_id;
        let deleted = store.delete_group(project, gateway).await.unwrap();
        assert!(deleted > 0);
        keep_stored(&store, project, &mut searched).await;
        assert!(index_some(&conn, 1000).unwrap() > 0);
        assert_eq!(index_some(&conn, 1000).unwrap(), 0, "caught up");
        assert_eq!(indexed_rows(&conn), 40 - deleted as i64);
        let forgotten: i64 = conn
            .query_row("SELECT count(*) FROM event_search_forget", [], |r| r.get(0))
            .unwrap();
        assert_eq!(forgotten, 0);
        assert_searches(
            &store,
            project,
            &searched,
            &queries,
            &[3],
            "after deletions",
        )
        .await;
        // Deletions listed again (an event deleted between two steps' reads is listed after
        // the index no longer holds it) and numbers never indexed change nothing.
        conn.execute_batch(
            "WITH RECURSIVE n(s) AS (SELECT 1 UNION ALL SELECT s + 1 FROM n WHERE s < 60) \
             INSERT INTO event_search_forget (seq) \
             SELECT s FROM n WHERE s NOT IN (SELECT seq FROM events)",
        )
        .unwrap();
        assert!(index_some(&conn, 1000).unwrap() > 0);
        assert_eq!(indexed_rows(&conn), 40 - deleted as i64);
        assert_searches(
            &store,
            project,
            &searched,
            &queries,
            &[3],
            "deletions again",
        )
        .await;
        conn.execute(
            &format!("INSERT INTO {SCHEMA}.{TABLE} ({TABLE}) VALUES ('integrity-check')"),
            [],
        )
        .unwrap();
        store.close().await;
    }

    /// An index ahead of the events (the database restored from an older copy) is emptied and
    /// built again; a missing one is made anew.
    #[tokio::test]
    async fn an_index_ahead_of_the_events_is_built_again() {
        let dir = tempfile::tempdir().unwrap();
        let (store, main, project) = store_without_indexer(dir.path()).await;
        let input = CaptureInput {
            message: "test one".into(),
            ..Default::default()
        };
        let ev = prepare(project, input, Level::Error, chrono::Utc::now()).unwrap();
        let (_, committed) = store.commit_batch(vec![Box::new(ev)]).await;
        committed.unwrap();
        let seq: i64 = store
            .list_events(project, &EventFilter::default(), None, 1)
            .await
            .unwrap()
            .0[0]
            .seq;
        let conn = open_indexer_connection(&main, &index_file(&main)).unwrap();
        assert_eq!(index_some(&conn, 10).unwrap(), 1);
        assert_eq!(indexed_rows(&conn), 1);
        conn.execute(
            &format!("UPDATE {SCHEMA}.{STATE} SET indexed_seq = ?1"),
            [seq + 5],
        )
        .unwrap();
        drop(conn);
        store.close().await;

        prepare_index(&main);
        let conn = open_indexer_connection(&main, &index_file(&main)).unwrap();
        assert_eq!(indexed_seq(&conn).unwrap(), 0);
        assert_eq!(indexed_rows(&conn), 0);
        assert_eq!(index_some(&conn, 10).unwrap(), 1, "built again");
        assert_eq!(indexed_rows(&conn), 1);
        drop(conn);

        std::fs::remove_file(index_file(&main)).unwrap();
        prepare_index(&main);
        let conn = open_indexer_connection(&main, &index_file(&main)).unwrap();
        assert_eq!(index_some(&conn, 10).unwrap(), 1, "made anew");
        assert_eq!(indexed_rows(&conn), 1);
    }

    fn prepare_index(main: &Path) {
        super::prepare(main).unwrap();
    }

    #[test]
    fn match_expressions_cover_each_long_word() {
        let words = |ws: &[&str]| ws.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        assert_eq!(match_expression(&words(&["ab", "x"])), None);
        assert_eq!(
            match_expression(&words(&["abc"])).as_deref(),
            Some("\"abc\"")
        );
        // Every third trigram and the last.
        assert_eq!(
            match_expression(&words(&["abcdefg"])).as_deref(),
            Some("\"abc\" AND \"def\" AND \"efg\"")
        );
        // Quotes are doubled inside the quoted term; repeats are looked up once.
        assert_eq!(
            match_expression(&words(&["a\"b", "a\"b", "ab"])).as_deref(),
            Some("\"a\"\"b\"")
        );
        // Characters, not bytes.
        assert_eq!(
            match_expression(&words(&["äöü"])).as_deref(),
            Some("\"äöü\"")
        );
        assert_eq!(match_expression(&words(&["a\u{0}b"])), None);
        let long = "x".repeat(100) + &"y".repeat(100);
        let n = match_expression(&[long]).unwrap().split(" AND ").count();
        assert_eq!(n, 3, "xxx, xyy and yyy, each once");
    }
}
