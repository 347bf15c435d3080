//! Persistence. sea-orm and SQL stay inside this module: callers get domain types and
//! `Error`s. SQLite (WAL, set explicitly) is the embedded default; PostgreSQL takes the same
//! migrations and the same statements, built per backend by sea-query.

mod access;
mod activity;
mod alerts;
mod batch_sql;
pub mod blob;
mod blob_json;
mod cache;
mod comments;
mod convert;
pub mod entity;
mod events;
mod feedback;
mod groups;
mod insights;
mod lite;
mod maintenance;
mod pg_search;
mod projects;
mod release_files;
mod releases;
mod retention;
mod search;
/// A store on SQLite in `dir` with one project, for unit tests outside `store`.
#[cfg(test)]
pub(crate) use search::tests::store_without_indexer;
mod security;
pub mod sentry;
mod unmerge;
mod workflow;
mod write;

use std::{path::Path, time::Duration};

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DbBackend, DbErr, TransactionTrait,
    sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous},
};

pub use access::{AuditRecord, KeyInfo, MemberInfo, NewAudit, NewInvite, NewKey};
pub use activity::{ACTIVITY_MAX, Actor};
pub use alerts::{Counted, NamedGroup};
pub use cache::Derived;
pub use comments::Comment;
pub use events::ExportPage;
pub use groups::GroupQuery;
pub use insights::{StatsFigures, TrendFigures};
pub use lite::open_writer_connection;
pub use projects::{ApiKeyRecord, Bootstrap, DeletedProject, ProjectRecord};
pub use release_files::{DebugFileInfo, FilesUsed, ReleaseFileInfo};
pub use releases::ReleaseInfo;
pub use unmerge::{GroupKey, GroupKeys, Unmerged};

use crate::error::Error;

/// A handle on the database; cheap to clone: one shared `StoreInner`, so the per-request
/// clones of the handler state cost one reference count, not one per pool and cache.
#[derive(Clone, Debug)]
pub struct Store(std::sync::Arc<StoreInner>);

impl std::ops::Deref for Store {
    type Target = StoreInner;

    fn deref(&self) -> &StoreInner {
        &self.0
    }
}

#[derive(Debug)]
pub struct StoreInner {
    /// Reads and occasional writes (triage, settings, retention).
    db: DatabaseConnection,
    /// Where the ingest writer's batch commits run.
    ingest: IngestConnection,
    /// Each known release's first-seen time, by project and version (see `write`): the
    /// ingest writer reads the database only for releases not in here. Rows never change.
    releases_seen: std::sync::Mutex<write::ReleasesSeen>,
    /// Caches of figures derived from stored data (see `insights`): counts writes so a cached
    /// answer is dropped as soon as anything it was computed from may have changed. The search
    /// indexers (`search`, `pg_search`) read the same count to hold back while ingest commits.
    pub(crate) derived: std::sync::Arc<Derived>,
    /// The SQLite database file, for the health probe: open connections keep working on a
    /// file deleted from under them, so only its path tells that it is gone.
    sqlite_file: Option<std::sync::Arc<std::path::PathBuf>>,
    /// The read pool's connections have the search index attached (a SQLite file; see
    /// `search`).
    search_index: bool,
    /// PostgreSQL's search indexer (see `pg_search`).
    pg_indexer: Option<pg_search::PgIndexer>,
}

/// The ingest writer's own connection.
#[derive(Debug)]
enum IngestConnection {
    /// A SQLite file: a writer thread with its own connection (see `lite`).
    Lite(lite::LiteWriter),
    /// PostgreSQL or in-memory SQLite: a pool of one (see `IngestPool`).
    Pool(IngestPool),
}

/// The ingest writer's pool of one, so the big multi-row statements it prepares are cached on
/// one connection only. It is opened on first use by the runtime that uses it, the writer's
/// own, so that its socket is driven by that thread: on the request workers' runtime, each of
/// a batch's round trips waited behind the requests queued there, and the writer spent most
/// of a batch waiting to run.
#[derive(Debug)]
struct IngestPool {
    url: String,
    pool: tokio::sync::OnceCell<DatabaseConnection>,
}

impl IngestPool {
    async fn get(&self) -> Result<&DatabaseConnection, Error> {
        self.pool.get_or_try_init(|| connect(&self.url, 1)).await
    }
}

/// Which database a URL points at.
pub fn is_sqlite_url(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// The file of a SQLite URL (`sqlite://path?opts`), unless it is in memory.
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.contains(":memory:")).then(|| std::path::PathBuf::from(path))
}

/// The SQLite URL of the database file inside `data_dir`.
pub fn sqlite_url_in(data_dir: &Path) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        data_dir.join("faultline.db").display()
    )
}

impl Store {
    /// Connects, creating the SQLite file when needed, and runs the migrations.
    pub async fn open(url: &str, max_connections: u32) -> Result<Store, Error> {
        Store::open_with(url, max_connections, true).await
    }

    /// `open`, with the search indexer only when `run_indexer` (tests step it themselves).
    async fn open_with(url: &str, max_connections: u32, run_indexer: bool) -> Result<Store, Error> {
        let sqlite_file = sqlite_file(url);
        // Before the pool: its connections attach the index file, which must exist by then.
        let search_index = sqlite_file.as_deref().and_then(|file| {
            search::prepare(file)
                .inspect_err(
                    |e| tracing::warn!(error = %e, "no search index: searches read every event"),
                )
                .ok()
        });
        let db = connect_attached(url, max_connections, search_index.clone()).await?;
        Store::migrate(&db).await?;
        // Counts writes for the caches, and tells the search indexers when ingest is busy.
        let derived: std::sync::Arc<cache::Derived> = Default::default();
        let ingest = match &sqlite_file {
            Some(file) => IngestConnection::Lite(lite::LiteWriter::start(
                file,
                search_index
                    .as_deref()
                    .filter(|_| run_indexer)
                    .map(|index| (index, derived.clone())),
            )?),
            None => IngestConnection::Pool(IngestPool {
                url: url.to_owned(),
                pool: tokio::sync::OnceCell::new(),
            }),
        };
        let pg_indexer = (run_indexer && db.get_database_backend() == DbBackend::Postgres)
            .then(|| pg_search::PgIndexer::start(db.clone(), derived.clone()));
        Ok(Store(std::sync::Arc::new(StoreInner {
            db,
            ingest,
            releases_seen: Default::default(),
            derived,
            sqlite_file: sqlite_file.map(std::sync::Arc::new),
            search_index: search_index.is_some(),
            pg_indexer,
        })))
    }
}

/// How long a SQLite writer waits for another's lock (the pool and the ingest writer thread).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A pool with Faultline's connection settings (SQLite pragmas, statement caches, the
/// PostgreSQL TCP_NODELAY fix below). Also what the benchmark's storage floor inserts over.
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, Error> {
    connect_attached(url, max_connections, None).await
}

/// `connect`, with a SQLite search index file attached to every connection as
/// `search::SCHEMA`.
async fn connect_attached(
    url: &str,
    max_connections: u32,
    search_index: Option<std::path::PathBuf>,
) -> Result<DatabaseConnection, Error> {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false);
    if is_sqlite_url(url) {
        lite::configure_library();
        // sqlx 0.9 no longer picks the journal mode: WAL lets readers run beside the
        // writer, FULL makes every commit durable before its answer goes out.
        opts.map_sqlx_sqlite_opts(|o| {
            o.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(BUSY_TIMEOUT)
                .foreign_keys(true)
                // Only a new database takes it (see `lite::PAGE_SIZE`); sqlx sets it first.
                .page_size(lite::PAGE_SIZE)
                // Multi-row inserts make a new statement text per batch size; a large
                // cache of them held hundreds of MiB across the pool for no speed gain.
                .statement_cache_capacity(16)
                // Issue search matches words in any case, beyond ASCII (`list_groups`).
                .with_regexp()
        });
        if let Some(index) = search_index {
            let index = index.to_string_lossy().into_owned();
            opts.map_sqlx_sqlite_pool_opts(move |pool| {
                let index = index.clone();
                pool.after_connect(move |conn, _meta| {
                    let index = index.clone();
                    Box::pin(async move {
                        sea_orm::sqlx::query(search::ATTACH)
                            .bind(index)
                            .execute(&mut *conn)
                            .await
                            .map(drop)
                    })
                })
            });
        }
    }
    if !is_sqlite_url(url) {
        // The batch writer sends one text per kind of statement whatever the batch size
        // (`batch_sql`: rows as arrays), and 64 entries hold them and every other query's.
        // When every batch size was its own text, a cache of 100 of those held tens of MiB
        // for no gain.
        opts.map_sqlx_postgres_opts(|o| o.statement_cache_capacity(64));
        let port = postgres_port(url);
        // sqlx keeps one `after_connect`: this replaces the one sea-orm installs only for a
        // schema search path, which Faultline never sets.
        opts.map_sqlx_postgres_pool_opts(move |pool| {
            pool.after_connect(move |_conn, _meta| {
                Box::pin(async move {
                    nodelay::sockets_to_port(port);
                    Ok(())
                })
            })
        });
    }
    Database::connect(opts).await.map_err(|e| {
        Error::Unavailable(format!(
            "cannot connect to the database: {}",
            redact(&e.to_string())
        ))
    })
}

/// The TCP port of a PostgreSQL URL, as sqlx reads it (5432 unless it names one).
fn postgres_port(url: &str) -> u16 {
    url.parse::<sea_orm::sqlx::postgres::PgConnectOptions>()
        .map_or(5432, |o| o.get_port())
}

/// sqlx 0.9 connects to PostgreSQL without `TCP_NODELAY` (`sqlx-core/src/net/socket`), and a
/// query written in two segments then waits for the server's delayed ACK: ~40 ms stalls
/// that made ingest over TCP six times slower than over the Unix socket. Until sqlx sets
/// it, every new pool connection sets it on this process's TCP sockets to the database
/// port (its own among them). Linux only; elsewhere nothing is done.
mod nodelay {
    #[cfg(target_os = "linux")]
    pub(super) fn sockets_to_port(port: u16) {
        let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
            return;
        };
        for entry in dir.flatten() {
            let Ok(fd) = entry.file_name().to_string_lossy().parse::<libc::c_int>() else {
                continue;
            };
            let is_socket = std::fs::read_link(entry.path())
                .is_ok_and(|t| t.to_string_lossy().starts_with("socket:"));
            if is_socket && peer_port(fd) == Some(port) {
                let one: libc::c_int = 1;
                // SAFETY: `fd` is open in this process (listed just now); setting an option
                // on a socket changes no memory of ours, and a stale number only fails.
                unsafe {
                    libc::setsockopt(
                        fd,
                        libc::IPPROTO_TCP,
                        libc::TCP_NODELAY,
                        (&one as *const libc::c_int).cast(),
                        std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                    );
                }
            }
        }
    }

    #[cfg(target_os = "linux")]
    fn peer_port(fd: libc::c_int) -> Option<u16> {
        // SAFETY: an all-zero `sockaddr_storage` is valid; getpeername writes at most `len`
        // bytes into it and reports the family it wrote.
        let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        let rc = unsafe {
            libc::getpeername(
                fd,
                (&mut addr as *mut libc::sockaddr_storage).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return None;
        }
        match libc::c_int::from(addr.ss_family) {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a `sockaddr_in`.
                let a: libc::sockaddr_in =
                    unsafe { std::ptr::read((&addr as *const libc::sockaddr_storage).cast()) };
                Some(u16::from_be(a.sin_port))
            }
            libc::AF_INET6 => {
                // SAFETY: the family says the storage holds a `sockaddr_in6`.
                let a: libc::sockaddr_in6 =
                    unsafe { std::ptr::read((&addr as *const libc::sockaddr_storage).cast()) };
                Some(u16::from_be(a.sin6_port))
            }
            _ => None,
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn sockets_to_port(_port: u16) {}
}

impl Store {
    async fn migrate(db: &DatabaseConnection) -> Result<(), Error> {
        // Several instances may start together on one PostgreSQL; a loser of the race on the
        // migrations table sees the winner's work on its next attempt.
        let mut last = None;
        for attempt in 0..5u64 {
            match Migrator::up(db, None).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!(attempt, error = %e, "migration attempt failed");
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
                }
            }
        }
        Err(Error::Internal(format!(
            "migrations failed: {}",
            last.map(|e| e.to_string()).unwrap_or_default()
        )))
    }

    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        self.db.ping().await.is_ok()
    }

    /// Closes the pools (for every clone of this handle: a pool's clones share it). The
    /// ingest writer closes its own pool (`close_ingest_pool`) before its thread ends.
    pub async fn close(self) {
        if let Some(indexer) = &self.pg_indexer {
            indexer.stop().await;
        }
        let _ = self.db.clone().close().await;
        if let IngestConnection::Lite(w) = &self.ingest {
            // Last, so that its connections are the database's last (see `LiteWriter::stop`).
            w.stop().await;
        }
    }

    /// Opens the ingest writer's pool (PostgreSQL, in-memory SQLite) on the runtime that
    /// calls this, the writer's own; a SQLite file has its writer thread instead.
    pub(crate) async fn open_ingest_pool(&self) -> Result<(), Error> {
        match &self.ingest {
            IngestConnection::Pool(p) => p.get().await.map(drop),
            IngestConnection::Lite(_) => Ok(()),
        }
    }

    /// Closes the ingest writer's pool, if it was opened; run by the writer on its own
    /// runtime, which drives the pool's connections, before that runtime ends.
    pub(crate) async fn close_ingest_pool(&self) {
        if let IngestConnection::Pool(p) = &self.ingest
            && let Some(db) = p.pool.get()
        {
            let _ = db.clone().close().await;
        }
    }

    async fn begin_write(&self) -> Result<sea_orm::DatabaseTransaction, Error> {
        begin_immediate(&self.db).await
    }

    /// Inserts `rows` in one write transaction, each as one statement with `on_conflict`: two
    /// writers of one key at once (two CI jobs uploading a file) cannot both insert, the
    /// conflict decides; and rows of one key in `rows` meet it one after the other.
    pub(super) async fn upsert_rows<A>(
        &self,
        rows: impl IntoIterator<Item = A>,
        on_conflict: sea_orm::sea_query::OnConflict,
    ) -> Result<(), Error>
    where
        A: sea_orm::ActiveModelTrait + Send,
        <A::Entity as sea_orm::EntityTrait>::Model: sea_orm::IntoActiveModel<A>,
    {
        let txn = self.begin_write().await?;
        for row in rows {
            <A::Entity as sea_orm::EntityTrait>::insert(row)
                .on_conflict(on_conflict.clone())
                .exec_without_returning(&txn)
                .await
                .map_err(db_err)?;
        }
        txn.commit().await.map_err(db_err)?;
        self.note_write();
        Ok(())
    }
}

async fn begin_immediate(db: &DatabaseConnection) -> Result<sea_orm::DatabaseTransaction, Error> {
    // IMMEDIATE takes SQLite's write lock up front, so a transaction that reads before
    // it writes cannot fail on a lock upgrade; PostgreSQL ignores the option.
    let opts = sea_orm::TransactionOptions {
        isolation_level: None,
        access_mode: None,
        sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
    };
    db.begin_with_options(opts).await.map_err(db_err)
}

/// Deletes the rows of `E` that `filter` selects, in `txn`; returns how many went.
pub(super) async fn delete_rows<E: sea_orm::EntityTrait>(
    txn: &sea_orm::DatabaseTransaction,
    filter: impl sea_orm::sea_query::IntoCondition,
) -> Result<u64, Error> {
    Ok(sea_orm::QueryFilter::filter(E::delete_many(), filter)
        .exec(txn)
        .await
        .map_err(db_err)?
        .rows_affected)
}

/// Points the rows of `E` that `filter` selects at group `to` (their `column`), in `txn`;
/// returns how many moved.
pub(super) async fn repoint_rows<E: sea_orm::EntityTrait>(
    txn: &sea_orm::DatabaseTransaction,
    column: E::Column,
    to: uuid::Uuid,
    filter: impl sea_orm::sea_query::IntoCondition,
) -> Result<u64, Error> {
    let update = E::update_many().col_expr(column, sea_orm::sea_query::Expr::value(to));
    Ok(sea_orm::QueryFilter::filter(update, filter)
        .exec(txn)
        .await
        .map_err(db_err)?
        .rows_affected)
}

/// Maps a database error to the domain error: connection trouble is `Unavailable`, text
/// PostgreSQL cannot store (NUL) is the request's fault, the rest internal.
pub(crate) fn db_err(e: DbErr) -> Error {
    match &e {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => {
            Error::Unavailable("database unavailable".into())
        }
        // character_not_in_repertoire: PostgreSQL text cannot hold NUL (events store it as
        // U+FFFD before they get here; other text, a project's name say, is refused).
        _ if sqlstate(&e).as_deref() == Some("22021") => Error::Invalid {
            message: "text must not contain the NUL character (\\u0000)".into(),
            violations: Vec::new(),
        },
        _ => Error::Internal(format!("database: {e}")),
    }
}

/// The SQLSTATE of an error the database itself returned.
fn sqlstate(e: &DbErr) -> Option<String> {
    use sea_orm::RuntimeErr;
    match e {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            match &**e {
                sea_orm::sqlx::Error::Database(d) => d.code().map(|c| c.into_owned()),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Hides a password in a database URL before it reaches a log line or an error.
pub fn redact(s: &str) -> String {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"://([^:/@\s]+):[^@\s]*@").expect("constant regex")
    });
    RE.replace_all(s, "://$1:***@").into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn postgres_ports() {
        use super::postgres_port as p;
        assert_eq!(p("postgres://postgres@127.0.0.1:5432/test"), 5432);
        assert_eq!(p("postgres://u:pw@db.example:6543/x?sslmode=require"), 6543);
        assert_eq!(p("postgresql://db.example/x"), 5432);
        assert_eq!(p("postgres://u@[::1]:5433/x"), 5433);
        assert_eq!(p("postgres://u@[::1]/x"), 5432);
        assert_eq!(p("postgres://postgres@%2Fvar%2Frun%2Fpostgresql/x"), 5432);
    }
}
