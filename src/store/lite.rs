//! The SQLite side of the ingest writer: one OS thread owns one write connection and runs each
//! batch's whole transaction itself.
//!
//! Through sqlx every statement is a round trip between the async writer and sqlx's SQLite
//! worker thread, and a multi-row statement's text changes with the batch size, so it is
//! prepared again and again. Here the batch crosses threads once, and statements carry
//! power-of-two row counts (`batch_sql::piece_lengths`), so a few statement texts serve every batch size
//! and each is prepared once (`prepare_cached`) and then only bound and run.
//!
//! The statements are built by the same code as PostgreSQL's (`write.rs`); only how their
//! rows are sent differs (`batch_sql`). The connection opens the same file the pool uses,
//! with the same settings (WAL, `synchronous=FULL`, busy timeout, foreign keys), and takes
//! the write lock up front (`BEGIN IMMEDIATE`).
//!
//! Checkpoints (copying the WAL back into the database file, with its fsyncs) run on a thread
//! of their own, so the writer, the one stage every event passes through, spends its time on
//! commits. The writer still checkpoints when the WAL has grown past
//! `WRITER_CHECKPOINT_PAGES`: the background checkpoint rarely finds the WAL fully copied
//! while commits keep coming, and only a fully copied WAL starts again from its beginning;
//! by then most of it is copied, and the checkpoint thread has synced what it copied
//! (`checkpoint_until_stopped`), so the writer's checkpoint is short. When the background
//! checkpoint is running at that moment, the writer waits for it and then checkpoints
//! (`checkpoint_when_large`): SQLite answers a second checkpoint with "busy" at once, without
//! its busy handler, and skipping it let the WAL grow by another commit each time.
//! Shortly before that point (`CHECKPOINT_EARLY_PAGES`) the writer wakes the checkpoint
//! thread, so the writer's own checkpoint finds only the last few commits to copy
//! (`EarlyCheckpoint`).

use std::{
    path::Path,
    sync::{Mutex, mpsc},
    time::Duration,
};

use rusqlite::types::Value as Lite;
use sea_orm::{DbBackend, StatementBuilder, Value};
use tokio::sync::oneshot;

use super::batch_sql::Row;
use crate::error::Error;

type Work = Box<dyn FnOnce(&rusqlite::Connection) + Send>;

/// The page size of a new database file: SQLite's 4 KiB. Every commit writes each page it
/// touches whole, twice (WAL, then checkpoint), and a batch's events land on pages all over
/// the indexes (an insertion point per group, tag value and hour). Sessions 15 to 21 made
/// files with 16 KiB pages, which held five stored events a page and made batched capture
/// faster while blobs were larger; with LZ4 blobs 4 KiB pages wrote a third as much per event
/// at 300–1 000 events/s, 41 % less under single-event load (2–7 % faster), and half as much
/// when seeding a million events (36 % faster, 24 MiB less peak RSS), for 3–5 % slower
/// batched capture; reads at a million events stayed far inside their targets
/// (BENCHMARKS.md, session 22). A database created before keeps its page size: in WAL mode
/// SQLite cannot change it.
pub(super) const PAGE_SIZE: u32 = 4_096;
/// WAL pages after which the writer checkpoints itself (SQLite's default is 1 000): 32 MiB
/// at `PAGE_SIZE` (125 MiB of WAL file in a database made with 16 KiB pages). Batched capture
/// filled 16 MiB in about two commits, so at 16 MiB the writer (the stage every event waits
/// for) checkpointed every other commit, with an fsync of the WAL and of the database file
/// each time. At 32 MiB batched capture ran 3.9 % faster on average in four interleaved pairs
/// (-0.4 to +6.6 %), single events within noise, peak RSS unchanged (95-104 MiB either way;
/// session 15 saw 15-35 MiB more at 64 MiB) (BENCHMARKS.md, session 18).
const WRITER_CHECKPOINT_PAGES: u32 = 8_000;
/// The writer connection's page cache in KiB (SQLite's default is 2 000 KiB). A batch of 100
/// events touches more pages than that (the new rows, an insertion point per group and per
/// tag value in the indexes, the groups' rows and counts), so the default cache evicted pages
/// each batch and read them back from the file: 0.6 `pread` of 16 KiB per event. At 8 MiB the
/// writer reads a third as much, its system time per batched event fell from 8.1 to 6.1 µs
/// and batched capture ran 3–7 % faster, for 2–4 MiB more peak RSS (a 32 MiB cache was no
/// faster and cost 25–30 MiB). Single events, in smaller batches, did not change
/// (BENCHMARKS.md, session 17). SQLite allocates the pages as it needs them.
const WRITER_CACHE_KIB: u32 = 8_192;
/// How often the checkpoint thread copies what the WAL holds into the database file. Every
/// 20 ms cost 2–5 µs more of SQLite's CPU per event: each checkpoint sorts the WAL's index
/// again, and a page that many commits change is copied once per checkpoint.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// WAL pages at which the writer wakes the checkpoint thread instead of letting it sleep out
/// `CHECKPOINT_EVERY`, once per filling of the WAL. The writer's own checkpoint, at
/// `WRITER_CHECKPOINT_PAGES`, copies whatever the checkpoint thread has not, and every event
/// waits for it. The thread's last pass had been up to `CHECKPOINT_EVERY` before, so
/// the writer copied and synced half a pass's pages on average: 7.3–7.8 ms (p50) every 165 ms
/// at 10 000 events/s, half of the commits of 8 ms or more. Woken 1 000 pages early it copies
/// the rest in 3.9–4.3 ms (BENCHMARKS.md, session 24). Passes back to back from there on
/// halved that again, for 3 % more server CPU; not done.
const CHECKPOINT_EARLY_PAGES: u32 = WRITER_CHECKPOINT_PAGES - 1_000;
/// How long the writer's checkpoint waits for a running one to finish (one copies at most a
/// few thousand pages).
const CHECKPOINT_WAIT: Duration = Duration::from_secs(2);

thread_local! {
    /// The pages the WAL held after the last commit on this thread (`checkpoint_when_large`,
    /// which SQLite calls on the committing thread with no place for state of ours).
    static WAL_PAGES: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Hands work to the writer thread. The writer (and with it the checkpoint thread) stops on
/// `stop`, or when this is dropped.
pub(super) struct LiteWriter {
    /// `None` once stopped.
    running: Mutex<Option<Running>>,
}

struct Running {
    tx: mpsc::Sender<Work>,
    /// Answered by the writer thread once it has closed its connection.
    stopped: oneshot::Receiver<()>,
}

impl std::fmt::Debug for LiteWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LiteWriter")
    }
}

/// A connection with the ingest writer's settings: WAL, `synchronous=FULL` (every commit is
/// durable before it is answered), the busy timeout, foreign keys and a statement cache; a
/// file it creates gets `PAGE_SIZE` (set before WAL, which would fix it).
/// Statement journals stay in memory (`temp_store = MEMORY`): a multi-row upsert's `DO
/// UPDATE` part keeps one (the writer's plain inserts need none, see `all_or_nothing`), and
/// past 64 KiB SQLite would spill it to a temporary file, costing a `pwrite` for every page
/// the statement changes (before `all_or_nothing`, half of the writer's write calls, 5 µs of
/// system time per event). It holds at most the pages one statement changes.
/// Its page cache is `WRITER_CACHE_KIB`, room for what a batch touches.
/// Also what the benchmark's storage floor writes with (`faultline-bench store-floor`).
pub fn open_writer_connection(file: &Path) -> Result<rusqlite::Connection, Error> {
    configure_library();
    let conn = rusqlite::Connection::open(file).map_err(lite_err)?;
    conn.busy_timeout(super::BUSY_TIMEOUT).map_err(lite_err)?;
    conn.execute_batch(&format!(
        "PRAGMA page_size = {PAGE_SIZE}; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
         PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; \
         PRAGMA cache_size = -{WRITER_CACHE_KIB};"
    ))
    .map_err(lite_err)?;
    // Room for every statement of a batch at each of its power-of-two row counts.
    conn.set_prepared_statement_cache_capacity(128);
    Ok(conn)
}

/// Process-wide SQLite settings, applied once before SQLite is first used (the read pool
/// and the writer thread share one library). SQLite keeps memory statistics by default and
/// takes a global mutex around every allocation to do so: two lock/unlock pairs per value a
/// statement binds, 1.7 % of the server's CPU in a single-event profile. Faultline reads no
/// such statistic (nor sets a soft heap limit, which needs them). When SQLite is already in
/// use (another component of the process initialised it first), it refuses the change and
/// nothing else happens.
pub(super) fn configure_library() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: SQLITE_CONFIG_MEMSTATUS takes one int; sqlite3_config is safe to call
        // before initialisation, and after it only returns SQLITE_MISUSE.
        let rc = unsafe {
            rusqlite::ffi::sqlite3_config(
                rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS,
                0 as std::ffi::c_int,
            )
        };
        if rc != rusqlite::ffi::SQLITE_OK {
            tracing::debug!(
                rc,
                "SQLite was already initialised; memory statistics stay on"
            );
        }
    });
}

impl LiteWriter {
    /// Opens the write connection on `file` and starts its thread, and with it the search
    /// indexer on `search_index` when given (see `search`; it holds back while `writes`
    /// moves), which stops with the writer.
    pub(super) fn start(
        file: &Path,
        search_index: Option<(&Path, std::sync::Arc<super::cache::Derived>)>,
    ) -> Result<LiteWriter, Error> {
        Self::start_checkpointing_every(file, search_index, CHECKPOINT_EVERY)
    }

    /// `start`, with the checkpoint thread's pause between passes.
    fn start_checkpointing_every(
        file: &Path,
        search_index: Option<(&Path, std::sync::Arc<super::cache::Derived>)>,
        every: Duration,
    ) -> Result<LiteWriter, Error> {
        let conn = open_writer_connection(file)?;
        let indexer = search_index
            .map(|(index, writes)| super::search::Indexer::start(file, index, writes))
            .transpose()?;
        // In place of SQLite's automatic checkpoint (which skips when busy).
        conn.wal_hook(Some(checkpoint_when_large));
        let checkpointer = open_writer_connection(file)?;
        // Each `()` wakes the checkpoint thread; dropping the sender stops it.
        let (wake_checkpoints, wakes) = mpsc::channel::<()>();
        let checkpoints = std::thread::Builder::new()
            .name("faultline-sqlite-checkpoint".into())
            .spawn(move || checkpoint_until_stopped(&checkpointer, &wakes, every))
            .map_err(|e| {
                Error::Internal(format!("cannot start the SQLite checkpoint thread: {e}"))
            })?;
        let (tx, rx) = mpsc::channel::<Work>();
        let (closed, stopped) = oneshot::channel();
        std::thread::Builder::new()
            .name("faultline-sqlite-writer".into())
            .spawn(move || {
                let mut early = EarlyCheckpoint::default();
                for work in rx {
                    work(&conn);
                    if early.due(WAL_PAGES.get()) {
                        let _ = wake_checkpoints.send(());
                    }
                }
                // Stopping: the search indexer and the checkpoint thread first, then the whole
                // WAL into the database file and the WAL emptied, so a stopped server leaves
                // one complete file.
                // (SQLite also removes the WAL when its last connection closes, but only if
                // no other connection of the process is still closing.)
                drop(indexer);
                drop(wake_checkpoints);
                if checkpoints.join().is_err() {
                    tracing::error!("the SQLite checkpoint thread panicked");
                }
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "final WAL checkpoint failed");
                }
                drop(conn);
                let _ = closed.send(());
            })
            .map_err(|e| Error::Internal(format!("cannot start the SQLite writer thread: {e}")))?;
        Ok(LiteWriter {
            running: Mutex::new(Some(Running { tx, stopped })),
        })
    }

    /// Stops the writer once the work handed over is done, and returns when it has stopped
    /// the checkpoint thread, checkpointed the whole WAL and closed its connection. Later
    /// transactions are refused.
    pub(super) async fn stop(&self) {
        let running = self.running.lock().ok().and_then(|mut r| r.take());
        if let Some(Running { tx, stopped }) = running {
            drop(tx);
            let _ = stopped.await;
        }
    }

    /// Runs `f` inside one `BEGIN IMMEDIATE … COMMIT` on the writer thread (rolled back when
    /// it fails) and returns what it returned, with `carry` (what `f` reads) handed back.
    /// `carry` is lost only if the thread is gone.
    pub(super) async fn transaction<C: Send + 'static, T: Send + 'static>(
        &self,
        carry: C,
        f: impl FnOnce(&LiteTxn<'_>, &C) -> Result<T, Error> + Send + 'static,
    ) -> (Option<C>, Result<T, Error>) {
        let (reply, answer) = oneshot::channel();
        let work: Work = Box::new(move |conn| {
            let result = run_in_transaction(conn, |t| f(t, &carry));
            let _ = reply.send((carry, result));
        });
        let tx = self
            .running
            .lock()
            .ok()
            .and_then(|r| r.as_ref().map(|r| r.tx.clone()));
        if tx.is_none_or(|tx| tx.send(work).is_err()) {
            return (
                None,
                Err(Error::Unavailable("the SQLite writer has stopped".into())),
            );
        }
        match answer.await {
            Ok((carry, result)) => (Some(carry), result),
            Err(_) => (
                None,
                Err(Error::Internal(
                    "the SQLite writer stopped mid-batch".into(),
                )),
            ),
        }
    }
}

/// Called after each commit of the writer with the pages its WAL holds: past
/// `WRITER_CHECKPOINT_PAGES` it checkpoints, retrying while another checkpoint (the
/// background thread's) holds the lock, for up to `CHECKPOINT_WAIT`. Never fails: an error
/// here would make SQLite report the commit, which has happened, as failed.
fn checkpoint_when_large(
    wal: &rusqlite::hooks::Wal,
    pages: std::ffi::c_int,
) -> rusqlite::Result<()> {
    let pages = u32::try_from(pages).unwrap_or(0);
    WAL_PAGES.set(pages);
    if pages < WRITER_CHECKPOINT_PAGES {
        return Ok(());
    }
    let started = std::time::Instant::now();
    loop {
        match wal.checkpoint_v2(rusqlite::hooks::CheckpointMode::PASSIVE) {
            Err(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && started.elapsed() < CHECKPOINT_WAIT =>
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => {
                tracing::warn!(error = %e, pages, "WAL checkpoint by the writer failed");
                return Ok(());
            }
            Ok(_) => return Ok(()),
        }
    }
}

/// When the writer wakes the checkpoint thread: once each time the WAL reaches
/// `CHECKPOINT_EARLY_PAGES`, again only after it has started over (held fewer pages).
#[derive(Default)]
struct EarlyCheckpoint {
    woken: bool,
}

impl EarlyCheckpoint {
    /// Whether to wake the checkpoint thread now that the WAL holds `pages`.
    fn due(&mut self, pages: u32) -> bool {
        let due = pages >= CHECKPOINT_EARLY_PAGES && !self.woken;
        self.woken = pages >= CHECKPOINT_EARLY_PAGES;
        due
    }
}

/// Copies committed WAL frames into the database file `every` so often, and whenever woken
/// through `wakes`, until `wakes`' sender is dropped. A passive checkpoint blocks no commit;
/// only the writer's own checkpoint, past `WRITER_CHECKPOINT_PAGES`, waits for it to finish
/// (`checkpoint_when_large`).
///
/// SQLite syncs the database file only when a checkpoint has copied the whole WAL, which under
/// steady load is nearly always the writer's own: that `fsync` then wrote out every page the
/// passive checkpoints had copied since, up to 32 MiB, and took 9–20 ms while every event
/// waited for the writer (BENCHMARKS.md, session 23). So after each checkpoint that copied
/// pages this thread syncs the database file itself (`sync_database_file`), and the writer's
/// sync finds little left to write. An extra sync of the database file never changes what it
/// holds.
fn checkpoint_until_stopped(
    conn: &rusqlite::Connection,
    wakes: &mpsc::Receiver<()>,
    every: Duration,
) {
    let mut copied_before = 0;
    while let Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) = wakes.recv_timeout(every) {
        // (busy, frames in the WAL, frames copied into the database file)
        let copied =
            match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(2)) {
                Ok(copied) => copied,
                Err(e) => {
                    tracing::warn!(error = %e, "background WAL checkpoint failed");
                    continue;
                }
            };
        if copied > 0
            && copied != copied_before
            && let Err(e) = sync_database_file(conn)
        {
            tracing::warn!(error = %e, "syncing the database file after a checkpoint failed");
        }
        copied_before = copied;
    }
}

/// Syncs the database file of `conn` through SQLite's own handle on it: the `xSync` method of
/// the file `SQLITE_FCNTL_FILE_POINTER` names. A descriptor of Faultline's own would not do:
/// closing any descriptor of a file drops every POSIX lock the process holds on it, SQLite's
/// included, and another process could then take the database for unused.
fn sync_database_file(conn: &rusqlite::Connection) -> Result<(), Error> {
    use rusqlite::ffi;
    // SAFETY: `conn` is open and used by the calling thread only. The file control writes the
    // connection's `sqlite3_file` for "main" (owned by SQLite, valid while `conn` is open)
    // into `file`; its methods' `xSync` takes that file and sync flags. Null pointers and a
    // missing method are checked before use.
    let rc = unsafe {
        let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
        let rc = ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            ffi::SQLITE_FCNTL_FILE_POINTER,
            (&raw mut file).cast(),
        );
        if rc != ffi::SQLITE_OK {
            rc
        } else if file.is_null() || (*file).pMethods.is_null() {
            ffi::SQLITE_MISUSE
        } else {
            match (*(*file).pMethods).xSync {
                Some(sync) => sync(file, ffi::SQLITE_SYNC_NORMAL),
                None => ffi::SQLITE_MISUSE,
            }
        }
    };
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(Error::Internal(format!(
            "database: syncing the database file: SQLite error code {rc}"
        )))
    }
}

fn run_in_transaction<T>(
    conn: &rusqlite::Connection,
    f: impl FnOnce(&LiteTxn<'_>) -> Result<T, Error>,
) -> Result<T, Error> {
    in_transaction(conn, "BEGIN IMMEDIATE", || f(&LiteTxn { conn }))
}

/// `begin` (`BEGIN IMMEDIATE`, or a deferred `BEGIN`), `f`, then `COMMIT`; `ROLLBACK` when `f`
/// or the commit failed.
pub(super) fn in_transaction<T>(
    conn: &rusqlite::Connection,
    begin: &str,
    f: impl FnOnce() -> Result<T, Error>,
) -> Result<T, Error> {
    conn.execute_batch(begin).map_err(lite_err)?;
    match f().and_then(|v| conn.execute_batch("COMMIT").map_err(lite_err).map(|()| v)) {
        Ok(v) => Ok(v),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// The writer connection inside a transaction.
pub(super) struct LiteTxn<'c> {
    conn: &'c rusqlite::Connection,
}

impl LiteTxn<'_> {
    /// A transaction-less handle on `conn`, for tests of what runs inside one.
    #[cfg(test)]
    pub(super) fn on(conn: &rusqlite::Connection) -> LiteTxn<'_> {
        LiteTxn { conn }
    }

    /// Runs a statement, returning its rows (a `RETURNING` clause's or a query's).
    pub(super) fn rows<S: StatementBuilder>(&self, stmt: &S) -> Result<Vec<Row>, Error> {
        self.rows_binding(stmt, Vec::new())
    }

    /// `rows`, with `leading` bound to the statement's first parameters and the statement's
    /// own values after them (`batch_sql::insert_rows`: rows written as `?` placeholders, so
    /// that their values are moved, not copied into the statement and out again).
    pub(super) fn rows_binding<S: StatementBuilder>(
        &self,
        stmt: &S,
        leading: Vec<Value>,
    ) -> Result<Vec<Row>, Error> {
        let built = stmt.build(&DbBackend::Sqlite);
        let mut prepared = self
            .conn
            .prepare_cached(&all_or_nothing(built.sql))
            .map_err(lite_err)?;
        let names: std::sync::Arc<[String]> = prepared
            .column_names()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let params: Vec<Lite> = leading
            .into_iter()
            .chain(built.values.into_iter().flat_map(|v| v.0))
            .map(lite_value)
            .collect::<Result<_, _>>()?;
        let mut rows = prepared
            .query(rusqlite::params_from_iter(params))
            .map_err(lite_err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(lite_err)? {
            let mut cells = Vec::with_capacity(names.len());
            for i in 0..names.len() {
                cells.push(row.get::<_, Lite>(i).map_err(lite_err)?);
            }
            out.push(Row::Lite(names.clone(), cells));
        }
        Ok(out)
    }
}

/// An `INSERT` of the writer's transaction as `INSERT OR ROLLBACK`: a constraint it breaks
/// ends the whole transaction at once instead of undoing only the statement's own rows.
/// The writer's transaction is all or nothing anyway (a batch that fails is rolled back and
/// its events committed again one by one, `ingest::writer`). Undoing one statement is what
/// SQLite keeps a statement journal for: a copy, in memory, of every page a multi-row
/// statement changes, made before it changes it. With 16 KiB pages that was 8 % of the
/// writer thread's samples, and dropping it took the thread from 24.6 to 21.9 µs of user CPU
/// per batched event (BENCHMARKS.md, session 16); 1 % of the samples is left, as SQLite runs
/// an upsert's `DO UPDATE` part as `ABORT` whatever the `OR`. `ON CONFLICT` clauses keep
/// their meaning (`OR` applies to the other constraints).
fn all_or_nothing(sql: String) -> String {
    match sql.strip_prefix("INSERT INTO ") {
        Some(rest) => format!("INSERT OR ROLLBACK INTO {rest}"),
        None => sql,
    }
}

/// A bound value as SQLite stores it from sqlx: UUIDs as 16-byte blobs, booleans as 0/1.
fn lite_value(v: Value) -> Result<Lite, Error> {
    Ok(match v {
        Value::Bool(b) => b.map_or(Lite::Null, |b| Lite::Integer(i64::from(b))),
        Value::TinyInt(n) => n.map_or(Lite::Null, |n| Lite::Integer(n.into())),
        Value::SmallInt(n) => n.map_or(Lite::Null, |n| Lite::Integer(n.into())),
        Value::Int(n) => n.map_or(Lite::Null, |n| Lite::Integer(n.into())),
        Value::BigInt(n) => n.map_or(Lite::Null, Lite::Integer),
        Value::TinyUnsigned(n) => n.map_or(Lite::Null, |n| Lite::Integer(n.into())),
        Value::SmallUnsigned(n) => n.map_or(Lite::Null, |n| Lite::Integer(n.into())),
        Value::Unsigned(n) => n.map_or(Lite::Null, |n| Lite::Integer(n.into())),
        Value::Double(n) => n.map_or(Lite::Null, Lite::Real),
        Value::String(s) => s.map_or(Lite::Null, Lite::Text),
        Value::Bytes(b) => b.map_or(Lite::Null, Lite::Blob),
        Value::Uuid(u) => u.map_or(Lite::Null, |u| Lite::Blob(u.as_bytes().to_vec())),
        other => {
            return Err(Error::Internal(format!(
                "the SQLite writer cannot bind {other:?}"
            )));
        }
    })
}

pub(super) fn lite_err(e: rusqlite::Error) -> Error {
    Error::Internal(format!("database: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes of the database file itself (the WAL is beside it).
    fn file_len(path: &Path) -> u64 {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }

    /// A writer on a new database with one table of blobs.
    async fn writer_with_table(file: &Path) -> LiteWriter {
        with_table(LiteWriter::start(file, None).unwrap()).await
    }

    async fn with_table(writer: LiteWriter) -> LiteWriter {
        let (_, created) = writer
            .transaction((), |t, _| {
                t.conn
                    .execute_batch("CREATE TABLE t (b BLOB NOT NULL)")
                    .map_err(lite_err)
            })
            .await;
        created.unwrap();
        writer
    }

    /// Commits one transaction of 1 MiB of blobs.
    async fn commit_one_mib(writer: &LiteWriter) {
        let (_, inserted) = writer
            .transaction((), |t, _| {
                for _ in 0..64 {
                    t.conn
                        .execute("INSERT INTO t (b) VALUES (randomblob(16384))", [])
                        .map_err(lite_err)?;
                }
                Ok(())
            })
            .await;
        inserted.unwrap();
    }

    fn page_size(file: &Path) -> u32 {
        rusqlite::Connection::open(file)
            .unwrap()
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap()
    }

    /// The database file of a store opened (and migrated) in `dir`, and closed again.
    async fn migrated_store_file(dir: &Path) -> std::path::PathBuf {
        let url = super::super::sqlite_url_in(dir);
        super::super::Store::open(&url, 2)
            .await
            .unwrap()
            .close()
            .await;
        super::super::sqlite_file(&url).expect("a file URL")
    }

    #[tokio::test]
    async fn group_stats_are_stored_in_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = migrated_store_file(dir.path()).await;
        // Migration 12: a group's aggregates are neighbours, not spread over the table.
        let group_stats: String = rusqlite::Connection::open(&file)
            .unwrap()
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'group_stats'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(group_stats.ends_with("WITHOUT ROWID"), "{group_stats}");
    }

    #[tokio::test]
    async fn a_new_database_file_gets_the_page_size_whoever_creates_it() {
        let dir = tempfile::tempdir().unwrap();
        // As the server makes it: the pool creates the file and migrates it.
        let made_by_pool = migrated_store_file(dir.path()).await;
        assert_eq!(page_size(&made_by_pool), PAGE_SIZE);
        // The writer's own connection (and the benchmark's storage floor).
        let made_by_writer = dir.path().join("w.db");
        writer_with_table(&made_by_writer).await.stop().await;
        assert_eq!(page_size(&made_by_writer), PAGE_SIZE);
        // A file made with other pages (sessions 15 to 21 made 16 KiB ones) keeps them: in
        // WAL mode the page size cannot change.
        let old = dir.path().join("old.db");
        rusqlite::Connection::open(&old)
            .unwrap()
            .execute_batch(
                "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL; CREATE TABLE t (b BLOB)",
            )
            .unwrap();
        drop(open_writer_connection(&old).unwrap());
        assert_eq!(page_size(&old), 16_384);
    }

    #[tokio::test]
    async fn commits_reach_the_database_file_without_the_writer_checkpointing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.db");
        let writer = writer_with_table(&file).await;
        let before = file_len(&file);
        // Well under the pages after which the writer checkpoints itself.
        commit_one_mib(&writer).await;
        // Only a checkpoint grows the database file; the checkpoint thread makes one soon.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while file_len(&file) < before + (1 << 20) {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint copied the commit into the database file: {} bytes",
                file_len(&file)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The writer wakes the checkpoint thread when the WAL nears the writer's own checkpoint.
    /// With the thread's pause an hour long, only that wake-up copies commits into the
    /// database file before the writer checkpoints itself.
    #[tokio::test]
    async fn the_writer_wakes_the_checkpoint_thread_before_checkpointing_itself() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.db");
        let hour = Duration::from_secs(3600);
        let writer =
            with_table(LiteWriter::start_checkpointing_every(&file, None, hour).unwrap()).await;
        let before = file_len(&file);
        // Past the early mark, short of the writer's own checkpoint.
        let commits = CHECKPOINT_EARLY_PAGES * PAGE_SIZE / (1 << 20) + 1;
        assert!(commits * (1 << 20) / PAGE_SIZE < WRITER_CHECKPOINT_PAGES - 64);
        for _ in 0..commits {
            commit_one_mib(&writer).await;
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while file_len(&file) < before + u64::from(commits - 1) * (1 << 20) {
            assert!(
                std::time::Instant::now() < deadline,
                "the checkpoint thread was not woken: the database file holds {} bytes",
                file_len(&file)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Stopping does not wait out the pause.
        tokio::time::timeout(Duration::from_secs(10), writer.stop())
            .await
            .expect("the writer stops at once");
    }

    #[test]
    fn the_checkpoint_thread_is_woken_once_per_filling_of_the_wal() {
        let mut early = EarlyCheckpoint::default();
        let mark = CHECKPOINT_EARLY_PAGES;
        let woken: Vec<bool> = [
            10,
            mark - 1,
            mark,
            mark + 500,
            WRITER_CHECKPOINT_PAGES + 3,
            40,
            mark + 2,
            mark + 9,
        ]
        .into_iter()
        .map(|pages| early.due(pages))
        .collect();
        assert_eq!(
            woken,
            [false, false, true, false, false, false, true, false]
        );
    }

    /// The checkpoint thread's sync goes through SQLite's own handle on the file, on a
    /// connection inside a transaction and outside one, and leaves the connection working.
    #[test]
    fn the_database_file_is_synced_through_sqlites_handle() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_writer_connection(&dir.path().join("t.db")).unwrap();
        conn.execute_batch("CREATE TABLE t (n INTEGER)").unwrap();
        sync_database_file(&conn).unwrap();
        conn.execute_batch("BEGIN; INSERT INTO t VALUES (1);")
            .unwrap();
        sync_database_file(&conn).unwrap();
        conn.execute_batch("COMMIT").unwrap();
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1);
    }

    #[tokio::test]
    async fn stop_closes_the_database_down_to_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.db");
        let writer = writer_with_table(&file).await;
        commit_one_mib(&writer).await;
        let wal = dir.path().join("t.db-wal");
        assert!(wal.exists(), "a WAL while the writer runs");
        writer.stop().await;
        assert!(
            file_len(&wal) == 0,
            "the WAL is empty (or gone) once the writer stopped"
        );
        let (_, after) = writer.transaction((), |_, _| Ok(())).await;
        assert!(matches!(after, Err(Error::Unavailable(_))), "{after:?}");
        let conn = rusqlite::Connection::open(&file).unwrap();
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 64);
    }

    #[tokio::test]
    async fn the_wal_stays_bounded_under_a_stream_of_commits() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.db");
        let writer = writer_with_table(&file).await;
        // 1 MiB commits, three times the WAL size after which the writer checkpoints.
        let commits = 3 * WRITER_CHECKPOINT_PAGES * PAGE_SIZE / (1 << 20);
        let mut largest = 0;
        for _ in 0..commits {
            commit_one_mib(&writer).await;
            largest = largest.max(file_len(&dir.path().join("t.db-wal")));
        }
        // Pages with their 24-byte frame headers, and the commits around the writer's checkpoint.
        let bound = u64::from(WRITER_CHECKPOINT_PAGES) * (u64::from(PAGE_SIZE) + 24) + (4 << 20);
        assert!(
            largest <= bound,
            "the WAL grew to {largest} bytes (bound {bound})"
        );
        assert!(largest > 0, "no WAL was seen");
    }
}
