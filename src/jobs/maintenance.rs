//! The statistics job (PostgreSQL only): Faultline's query plans need current table
//! statistics, which the server's autovacuum keeps — unless it is off, or tuned so lazily
//! that it falls behind. Every `interval`, starting at once so that a restarted server on a
//! stale database gets good plans back, this job runs `ANALYZE` on the tables that
//! autovacuum's own rule calls stale (`Store::analyze_stale_tables`). Where autovacuum is off
//! (for the server or a table), it also vacuums the tables with more dead rows than that rule
//! allows (`Store::vacuum_dead_tables`); where autovacuum runs, vacuuming is left to it. Of
//! several instances sharing a database, one works per pass (an advisory lock).

use std::time::{Duration, Instant};

use sea_orm::DbBackend;

use crate::{error::Error, store::Store};

/// How often the job looks at the statistics: a look is one query on the statistics views.
pub const INTERVAL: Duration = Duration::from_secs(60);

/// Runs until the task is aborted; returns at once on SQLite.
pub async fn run(store: Store, interval: Duration) {
    if store.backend() != DbBackend::Postgres {
        return;
    }
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let started = Instant::now();
        let analyzed = store.analyze_stale_tables().await;
        log_pass(
            started,
            analyzed,
            "analyzed tables with stale statistics",
            "could not analyze tables with stale statistics",
        );
        let started = Instant::now();
        let vacuumed = store.vacuum_dead_tables().await;
        log_pass(
            started,
            vacuumed,
            "vacuumed tables autovacuum leaves alone",
            "could not vacuum tables",
        );
    }
}

/// Logs the tables a pass worked on after `done` (nothing when there were none), or its error
/// after `failed`.
fn log_pass(started: Instant, tables: Result<Vec<String>, Error>, done: &str, failed: &str) {
    match tables {
        Ok(tables) if tables.is_empty() => {}
        Ok(tables) => tracing::info!(
            tables = %tables.join(", "),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "{done}"
        ),
        Err(e) => tracing::warn!(error = %e, "{failed}"),
    }
}
