//! `store-floor`: the fastest this machine stores event-sized rows durably when nothing else
//! runs: no server, no parsing, no grouping, one table without an index, rows of
//! `--row-bytes` incompressible bytes (a stored event's compressed part is incompressible)
//! appended `--batch` rows per transaction. SQLite runs on the connection Faultline's writer
//! opens (`store::open_writer_connection`: WAL, `synchronous=FULL`) with a cached prepared
//! statement; PostgreSQL over Faultline's own pool (`store::connect`), one multi-row insert
//! per transaction, with the database server's durability settings.
//!
//! Whatever Faultline does per event comes on top of this, so an ingest rate above this floor
//! cannot be reached on this machine without giving up durability.

use std::{
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Args;
use rand::RngCore;
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait, Value};

use crate::procinfo;

const TABLE: &str = "faultline_bench_floor";

#[derive(Args, Clone, Debug)]
pub struct FloorArgs {
    /// Where to write: `sqlite:///path/to/file.db` (created; deleted afterwards) or a
    /// loopback `postgres://` URL (each connection creates a table `faultline_bench_floor_<id>`
    /// there and drops it at the end).
    #[arg(long)]
    pub database_url: String,
    /// Bytes per row (a 3 KB event is stored as about 1.7 KB compressed plus 1.3 KB of columns).
    #[arg(long, default_value_t = 3000)]
    pub row_bytes: usize,
    /// Rows per transaction.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Seconds to run (at most 120).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// PostgreSQL only: connections inserting side by side (SQLite has one writer).
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
}

pub async fn run(args: FloorArgs) -> anyhow::Result<ExitCode> {
    if !(1..=1000).contains(&args.batch) {
        bail!("--batch must be 1..=1000");
    }
    if !(1..=1_000_000).contains(&args.row_bytes) {
        bail!("--row-bytes must be 1..=1000000");
    }
    if !(1..=64).contains(&args.connections) {
        bail!("--connections must be 1..=64");
    }
    let seconds = args.seconds.clamp(1, 120);
    // A pool of distinct rows, so no page repeats another.
    let mut rng = rand::rng();
    let rows: Vec<Vec<u8>> = (0..64)
        .map(|_| {
            let mut b = vec![0u8; args.row_bytes];
            rng.fill_bytes(&mut b);
            b
        })
        .collect();
    let cpu0 = procinfo::cpu_seconds("self").unwrap_or(0.0);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let url = args.database_url.as_str();
    let (kind, written) = if let Some(path) = url.strip_prefix("sqlite://") {
        if args.connections != 1 {
            bail!("--connections applies to PostgreSQL only: SQLite has one writer");
        }
        let path = path.split('?').next().unwrap_or(path).to_owned();
        let batch = args.batch;
        let written = tokio::task::spawn_blocking(move || sqlite(&path, &rows, batch, deadline))
            .await
            .context("the SQLite thread panicked")??;
        ("SQLite (WAL, synchronous=FULL)", written)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let parsed = url::Url::parse(url).context("--database-url")?;
        crate::common::check_loopback(&parsed)?;
        let inserters = (0..args.connections).map(|_| postgres(url, &rows, args.batch, deadline));
        let written: anyhow::Result<Vec<u64>> = futures::future::join_all(inserters)
            .await
            .into_iter()
            .collect();
        ("PostgreSQL", written?.into_iter().sum())
    } else {
        bail!("--database-url must start with sqlite:// or postgres://");
    };
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = procinfo::cpu_seconds("self").unwrap_or(cpu0) - cpu0;
    let rate = written as f64 / elapsed;
    println!(
        "store-floor: {kind}, rows of {} B, {} rows per transaction, {} connection(s)",
        args.row_bytes, args.batch, args.connections
    );
    println!("rows written       {written} in {elapsed:.2} s");
    println!("rows/s             {rate:.0}");
    println!(
        "MB/s               {:.1}",
        rate * args.row_bytes as f64 / 1e6
    );
    println!(
        "CPU of this process {:.1} us per row (the database server's own CPU not included)",
        cpu * 1e6 / written.max(1) as f64
    );
    println!(
        "RESULT {}",
        serde_json::json!({
            "database": kind,
            "row_bytes": args.row_bytes,
            "batch": args.batch,
            "connections": args.connections,
            "rows": written,
            "seconds": (elapsed * 1000.0).round() / 1000.0,
            "rows_per_s": rate.round(),
            "cpu_us_per_row": (cpu * 1e7 / written.max(1) as f64).round() / 10.0,
        })
    );
    Ok(ExitCode::SUCCESS)
}

fn sqlite(path: &str, rows: &[Vec<u8>], batch: usize, deadline: Instant) -> anyhow::Result<u64> {
    let remove = |p: &str| {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{p}{suffix}"));
        }
    };
    remove(path);
    let mut db = faultline::store::open_writer_connection(std::path::Path::new(path))
        .with_context(|| format!("opening {path}"))?;
    db.execute_batch(&format!(
        "CREATE TABLE {TABLE} (seq INTEGER PRIMARY KEY, data BLOB NOT NULL);"
    ))?;
    let sql = format!("INSERT INTO {TABLE} (data) VALUES (?1)");
    let mut written = 0u64;
    while Instant::now() < deadline {
        let txn = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut stmt = txn.prepare_cached(&sql)?;
            for i in 0..batch {
                stmt.execute([&rows[(written as usize + i) % rows.len()]])?;
            }
        }
        txn.commit()?;
        written += batch as u64;
    }
    drop(db);
    remove(path);
    Ok(written)
}

/// One connection appending to its own table until `deadline`.
async fn postgres(
    url: &str,
    rows: &[Vec<u8>],
    batch: usize,
    deadline: Instant,
) -> anyhow::Result<u64> {
    let db = faultline::store::connect(url, 1)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    let table = format!("{TABLE}_{}", uuid::Uuid::new_v4().simple());
    db.execute_unprepared(&format!(
        "CREATE TABLE {table} (seq BIGSERIAL PRIMARY KEY, data BYTEA NOT NULL)"
    ))
    .await?;
    let placeholders: Vec<String> = (1..=batch).map(|i| format!("(${i})")).collect();
    let sql = format!(
        "INSERT INTO {table} (data) VALUES {}",
        placeholders.join(", ")
    );
    let mut written = 0u64;
    while Instant::now() < deadline {
        let values: Vec<Value> = (0..batch)
            .map(|i| rows[(written as usize + i) % rows.len()].clone().into())
            .collect();
        let txn = db.begin().await?;
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            &sql,
            values,
        ))
        .await?;
        txn.commit().await?;
        written += batch as u64;
    }
    db.execute_unprepared(&format!("DROP TABLE {table}"))
        .await?;
    db.close().await?;
    Ok(written)
}
