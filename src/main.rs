//! The `faultline` command: `serve` (the default) and `migrate`.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Args, Parser, Subcommand};

// The ingest path allocates many short-lived buffers across threads; mimalloc spends less
// time on them than glibc's malloc and returns memory to the OS sooner. It also replaces
// malloc for the C libraries (`override`): SQLite and zstd (which compressed stored events
// until blob version 4) allocated through glibc, whose malloc was 1.8 % of the server's CPU
// on single events, and whose per-thread arenas held another 15-25 MiB. Built without its
// transparent-huge-page advice (`no_thp`), see `without_huge_pages`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use faultline::{
    App,
    config::Config,
    ingest::IngestConfig,
    limits::{LimitsConfig, RateLimits},
    store::Store,
    telemetry,
};

#[derive(Parser)]
#[command(
    name = "faultline",
    version,
    about = "Self-hosted error tracker: REST, gRPC and gRPC-Web on one port."
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default when no command is given).
    Serve(ServeArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate(DbArgs),
}

#[derive(Args, Clone)]
struct DbArgs {
    /// Directory for the SQLite database and the admin key file.
    #[arg(long, env = "FAULTLINE_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// Database URL (sqlite:… or postgres://…). Default: SQLite in the data directory.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// Database connection pool size.
    #[arg(long, env = "FAULTLINE_DB_MAX_CONNECTIONS", default_value_t = 8)]
    db_max_connections: u32,
}

#[derive(Args, Clone)]
struct ServeArgs {
    /// Address to listen on: REST, gRPC, gRPC-Web, reflection and health share this port.
    #[arg(long, env = "FAULTLINE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    db: DbArgs,
    /// Largest request body (REST) or message (gRPC) accepted, in bytes.
    #[arg(long, env = "FAULTLINE_BODY_LIMIT", default_value_t = 1024 * 1024)]
    body_limit: usize,
    /// Events that may wait for the database writer; when full, captures get 429 / RESOURCE_EXHAUSTED.
    #[arg(long, env = "FAULTLINE_QUEUE_DEPTH", default_value_t = 10_000)]
    queue_depth: usize,
    /// Most events the writer commits in one transaction.
    #[arg(long, env = "FAULTLINE_BATCH_SIZE", default_value_t = 1000)]
    batch_size: usize,
    /// Milliseconds the writer may wait for a batch to fill (0: commit what is queued at once).
    #[arg(long, env = "FAULTLINE_BATCH_WAIT_MS", default_value_t = 0)]
    batch_wait_ms: u64,
    /// Least milliseconds from one commit's start to the next's: events arriving sooner are
    /// committed together (0: commit what is queued at once).
    #[arg(long, env = "FAULTLINE_COMMIT_INTERVAL_MS", default_value_t = faultline::ingest::DEFAULT_COMMIT_INTERVAL_MS)]
    commit_interval_ms: u64,
    /// Seconds a request may take before it is answered with an error (REST 504, gRPC DEADLINE_EXCEEDED).
    #[arg(long, env = "FAULTLINE_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    request_timeout_secs: u64,
    /// Seconds between runs of the retention cleanup.
    #[arg(
        long,
        env = "FAULTLINE_RETENTION_INTERVAL_SECS",
        default_value_t = 3600
    )]
    retention_interval_secs: u64,
    /// Days a source map or minified source is kept without placing an event's frames (0: forever).
    #[arg(long, env = "FAULTLINE_SOURCE_MAP_DAYS", default_value_t = 90)]
    source_map_days: u32,
    /// Seconds between evaluations of the alert rules.
    #[arg(long, env = "FAULTLINE_ALERT_INTERVAL_SECS", default_value_t = 15)]
    alert_interval_secs: u64,
    /// Event submissions per minute per API key (0: unlimited).
    #[arg(long, env = "FAULTLINE_RATE_LIMIT_INGEST", default_value_t = 1000)]
    rate_limit_ingest: u32,
    /// Searches, exports and analytics queries per minute per API key (0: unlimited).
    #[arg(long, env = "FAULTLINE_RATE_LIMIT_ANALYTICS", default_value_t = 100)]
    rate_limit_analytics: u32,
    /// Other API requests per minute per API key (0: unlimited).
    #[arg(long, env = "FAULTLINE_RATE_LIMIT_GENERAL", default_value_t = 500)]
    rate_limit_general: u32,
    /// Largest request head (request line and headers), in bytes.
    #[arg(long, env = "FAULTLINE_HEADER_LIMIT", default_value_t = 64 * 1024)]
    header_limit: usize,
    /// Seconds a client has to send a request's headers before the connection is closed.
    #[arg(long, env = "FAULTLINE_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    header_read_timeout_secs: u64,
    /// Seconds an HTTP/2 connection (gRPC) may go without a request in progress before it is
    /// closed (GOAWAY); its client opens a new one when it next sends.
    #[arg(long, env = "FAULTLINE_IDLE_TIMEOUT_SECS", default_value_t = 300)]
    idle_timeout_secs: u64,
    /// Open connections; beyond it, new clients wait until one closes. Bounds memory under
    /// any number of clients.
    #[arg(long, env = "FAULTLINE_MAX_CONNECTIONS", default_value_t = 1024)]
    max_connections: usize,
    /// Requests handled at once; beyond it, requests are answered 429 / RESOURCE_EXHAUSTED
    /// with a retry hint at once.
    #[arg(long, env = "FAULTLINE_MAX_REQUESTS", default_value_t = 512)]
    max_requests: usize,
    /// Origins allowed to call the management API from a browser (comma-separated, `*` for
    /// any). Empty: CORS off for the management API. Browser ingest is set per project.
    #[arg(long, env = "FAULTLINE_CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Vec<String>,
}

impl ServeArgs {
    fn into_config(self) -> Config {
        let ServeArgs {
            listen,
            db,
            body_limit,
            queue_depth,
            batch_size,
            batch_wait_ms,
            commit_interval_ms,
            request_timeout_secs,
            retention_interval_secs,
            source_map_days,
            alert_interval_secs,
            rate_limit_ingest,
            rate_limit_analytics,
            rate_limit_general,
            header_limit,
            header_read_timeout_secs,
            idle_timeout_secs,
            max_connections,
            max_requests,
            cors_origins,
        } = self;
        Config {
            listen,
            data_dir: db.data_dir,
            database_url: db.database_url,
            body_limit,
            request_timeout: Duration::from_secs(request_timeout_secs),
            db_max_connections: db.db_max_connections,
            ingest: IngestConfig {
                queue_depth,
                max_batch: batch_size,
                max_wait: Duration::from_millis(batch_wait_ms),
                commit_interval: Duration::from_millis(commit_interval_ms),
                ..IngestConfig::default()
            },
            retention_interval: Duration::from_secs(retention_interval_secs),
            source_map_days,
            source_map_use_flush: faultline::ingest::sourcemaps::USED_FLUSH,
            snooze_interval: faultline::jobs::snooze::INTERVAL,
            alert_interval: Duration::from_secs(alert_interval_secs),
            print_banner: true,
            limits: LimitsConfig {
                rate: RateLimits {
                    ingest_per_minute: rate_limit_ingest,
                    analytics_per_minute: rate_limit_analytics,
                    general_per_minute: rate_limit_general,
                },
                max_header_bytes: header_limit,
                header_read_timeout: Duration::from_secs(header_read_timeout_secs),
                idle_timeout: Duration::from_secs(idle_timeout_secs),
                max_connections,
                max_requests,
                cors_origins: cors_origins
                    .into_iter()
                    .map(|o| o.trim().to_owned())
                    .filter(|o| !o.is_empty())
                    .collect(),
            },
        }
    }
}

fn main() -> ExitCode {
    without_huge_pages();
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Migrate(db)) => return run(false, migrate(db)),
        Some(Command::Serve(args)) => args,
        None => cli.serve,
    };
    let cfg = args.into_config();
    // The request workers make way for the SQLite writer thread (`app::runtime`); with
    // PostgreSQL the writing happens in its own processes, which they would only yield to.
    let lower_workers = faultline::store::is_sqlite_url(&cfg.database_url());
    run(lower_workers, serve(cfg))
}

/// Runs `task` on the server's runtime (`app::runtime`), with telemetry set up first.
fn run(
    lower_workers: bool,
    task: impl std::future::Future<Output = Result<(), faultline::error::Error>>,
) -> ExitCode {
    let runtime = match faultline::app::runtime(lower_workers) {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("faultline: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let _telemetry = telemetry::init();
        task.await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faultline: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Turns transparent huge pages off for this process. A huge page is resident whole as soon
/// as one byte of it is touched, and mimalloc gives freed memory back in 64 KiB pieces, which
/// cannot shrink a huge page: with them, the allocator's arena held 36–43 MiB of huge pages
/// under batched load and the server's peak RSS reached 136–140 MiB, against 105 MiB without
/// and the same throughput (BENCHMARKS.md, session 14). mimalloc is built not to ask for them;
/// this also covers systems whose THP setting is `always`, where the kernel would use them
/// unasked.
fn without_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes one integer argument and only sets a flag of this
    // process; the unused arguments must be zero.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

async fn serve(cfg: Config) -> Result<(), faultline::error::Error> {
    let app = App::build(cfg).await?;
    app.run_until_stopped(shutdown_signal()).await
}

async fn migrate(db: DbArgs) -> Result<(), faultline::error::Error> {
    let cfg = Config {
        data_dir: db.data_dir,
        database_url: db.database_url,
        ..Config::default()
    };
    std::fs::create_dir_all(&cfg.data_dir).map_err(faultline::error::Error::internal)?;
    Store::open(&cfg.database_url(), db.db_max_connections)
        .await?
        .close()
        .await;
    println!("database is up to date");
    Ok(())
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested");
}
