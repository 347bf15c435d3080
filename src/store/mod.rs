//! Persistence. sea-orm and SQL stay inside this module: callers get domain types and
//! `Error`s. SQLite (WAL, set explicitly) is the embedded default; PostgreSQL takes the same
//! migrations and the same statements, built per backend by sea-query.

mod access;
pub mod blob;
mod cache;
mod convert;
pub mod entity;
mod events;
mod groups;
mod insights;
mod lite;
mod projects;
mod retention;
mod security;
pub mod sentry;
mod workflow;
mod write;

use std::{path::Path, time::Duration};

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DbBackend, DbErr, TransactionTrait,
    sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous},
};

pub use access::{AuditRecord, KeyInfo, MemberInfo, NewAudit, NewInvite, NewKey};
pub use cache::Derived;
pub use events::ExportPage;
pub use insights::{StatsFigures, TrendFigures};
pub use projects::{ApiKeyRecord, Bootstrap, DeletedProject, ProjectRecord};

use crate::error::Error;

/// A handle on the database; cheap to clone (it wraps a pool).
#[derive(Clone, Debug)]
pub struct Store {
    /// Reads and occasional writes (triage, settings, retention).
    db: DatabaseConnection,
    /// One connection for the ingest writer's batch commits, so the big multi-row statements
    /// it prepares are cached on one connection only.
    ingest_db: DatabaseConnection,
    /// On a SQLite file, the ingest writer's own thread and connection (see `lite`); the
    /// batch commit then bypasses `ingest_db`.
    lite: Option<std::sync::Arc<lite::LiteWriter>>,
    /// Caches of figures derived from stored data (see `insights`): counts writes so a cached
    /// answer is dropped as soon as anything it was computed from may have changed.
    pub(crate) derived: std::sync::Arc<Derived>,
    /// The SQLite database file, for the health probe: open connections keep working on a
    /// file deleted from under them, so only its path tells that it is gone.
    sqlite_file: Option<std::sync::Arc<std::path::PathBuf>>,
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
        let db = connect(url, max_connections).await?;
        let ingest_db = connect(url, 1).await?;
        let mut store = Store {
            db,
            ingest_db,
            lite: None,
            derived: Default::default(),
            sqlite_file: sqlite_file(url).map(std::sync::Arc::new),
        };
        store.migrate().await?;
        if let Some(file) = store.sqlite_file.as_deref() {
            store.lite = Some(std::sync::Arc::new(lite::LiteWriter::start(file)?));
        }
        Ok(store)
    }
}

async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, Error> {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false);
    if is_sqlite_url(url) {
        // sqlx 0.9 no longer picks the journal mode: WAL lets readers run beside the
        // writer, FULL makes every commit durable before its answer goes out.
        opts.map_sqlx_sqlite_opts(|o| {
            o.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                // Multi-row inserts make a new statement text per batch size; a large
                // cache of them held hundreds of MiB across the pool for no speed gain.
                .statement_cache_capacity(16)
        });
    }
    Database::connect(opts).await.map_err(|e| {
        Error::Unavailable(format!(
            "cannot connect to the database: {}",
            redact(&e.to_string())
        ))
    })
}

impl Store {
    async fn migrate(&self) -> Result<(), Error> {
        // Several instances may start together on one PostgreSQL; a loser of the race on the
        // migrations table sees the winner's work on its next attempt.
        let mut last = None;
        for attempt in 0..5u64 {
            match Migrator::up(&self.db, None).await {
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

    pub async fn close(self) {
        let _ = self.db.close().await;
        let _ = self.ingest_db.close().await;
    }

    async fn begin_write(&self) -> Result<sea_orm::DatabaseTransaction, Error> {
        begin_immediate(&self.db).await
    }

    /// A write transaction on the ingest writer's own connection.
    async fn begin_ingest(&self) -> Result<sea_orm::DatabaseTransaction, Error> {
        begin_immediate(&self.ingest_db).await
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

/// Maps a database error to the domain error: connection trouble is `Unavailable`, the rest internal.
pub(crate) fn db_err(e: DbErr) -> Error {
    match &e {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => {
            Error::Unavailable("database unavailable".into())
        }
        _ => Error::Internal(format!("database: {e}")),
    }
}

/// Hides a password in a database URL before it reaches a log line or an error.
pub fn redact(s: &str) -> String {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"://([^:/@\s]+):[^@\s]*@").expect("constant regex")
    });
    RE.replace_all(s, "://$1:***@").into_owned()
}
