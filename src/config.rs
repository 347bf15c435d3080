//! Configuration: one typed tree with defaults. `main` fills it from flags and environment
//! variables (clap), tests build it directly; `validate` runs before anything starts.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use crate::{error::Error, ingest::IngestConfig, limits::LimitsConfig, store};

#[derive(Debug, Clone)]
pub struct Config {
    /// Address of the one port serving REST, gRPC, gRPC-Web, reflection and health.
    pub listen: SocketAddr,
    /// Directory for the SQLite database and the admin key file.
    pub data_dir: PathBuf,
    /// Database URL; `None` means SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// Largest request body accepted, in bytes (REST and gRPC messages).
    pub body_limit: usize,
    /// Longest a request may take before it is answered with an error (REST 504, unary gRPC
    /// DEADLINE_EXCEEDED).
    pub request_timeout: Duration,
    /// Database connection pool size.
    pub db_max_connections: u32,
    pub ingest: IngestConfig,
    /// How often the retention job runs.
    pub retention_interval: Duration,
    /// Days a release file or debug-id file is kept after it last placed an event's frames
    /// (or was stored, until it has); the retention job deletes it then. 0: kept forever.
    pub source_map_days: u32,
    /// How often the source maps that placed frames are marked used in the database.
    pub source_map_use_flush: Duration,
    /// How often the alert rules are evaluated.
    pub alert_interval: Duration,
    /// How often ignored groups whose time is up, or which have affected the users they were
    /// ignored until, are brought back.
    pub snooze_interval: Duration,
    /// Print the admin key and DSN banner at first start.
    pub print_banner: bool,
    /// Rate limits, header limits, slow-client protection and CORS.
    pub limits: LimitsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            database_url: None,
            body_limit: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            db_max_connections: 8,
            ingest: IngestConfig::default(),
            retention_interval: Duration::from_secs(3600),
            source_map_days: 90,
            source_map_use_flush: crate::ingest::sourcemaps::USED_FLUSH,
            alert_interval: Duration::from_secs(15),
            snooze_interval: crate::jobs::snooze::INTERVAL,
            print_banner: true,
            limits: LimitsConfig::default(),
        }
    }
}

impl Config {
    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(u) if !u.trim().is_empty() => u.trim().to_owned(),
            _ => store::sqlite_url_in(&self.data_dir),
        }
    }

    pub fn validate(&self) -> Result<(), Error> {
        let mut problems = Vec::new();
        if self.body_limit < 1024 {
            problems.push("body limit must be at least 1024 bytes");
        }
        if self.ingest.queue_depth == 0 {
            problems.push("queue depth must be at least 1");
        }
        if self.ingest.max_batch == 0 {
            problems.push("batch size must be at least 1");
        }
        if self.db_max_connections == 0 {
            problems.push("database pool must allow at least 1 connection");
        }
        if self.limits.max_header_bytes < 8192 {
            problems.push("header limit must be at least 8192 bytes");
        }
        if self.limits.max_connections == 0 || self.limits.max_requests == 0 {
            problems.push("max connections and max requests must be at least 1");
        }
        if self.limits.header_read_timeout.is_zero() {
            problems.push("header read timeout must be positive");
        }
        if self.limits.idle_timeout.is_zero() {
            problems.push("idle timeout must be positive");
        }
        if self.request_timeout.is_zero() {
            problems.push("request timeout must be positive");
        }
        if self.retention_interval.is_zero() {
            problems.push("retention interval must be positive");
        }
        if self.alert_interval.is_zero() {
            problems.push("alert interval must be positive");
        }
        let url = self.database_url();
        if !(store::is_sqlite_url(&url)
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            problems.push("database URL must start with sqlite:, postgres:// or postgresql://");
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid {
                message: format!("invalid configuration: {}", problems.join("; ")),
                violations: Vec::new(),
            })
        }
    }
}
