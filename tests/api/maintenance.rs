//! The statistics job's passes (`Store::analyze_stale_tables`, `Store::vacuum_dead_tables`):
//! on PostgreSQL the first analyzes the tables autovacuum's rule calls stale — here `events`
//! after a few hundred inserts on a fresh database — once, and not while another instance
//! holds its advisory lock; the second vacuums a table with autovacuum off once it has more
//! dead rows than that rule allows; on SQLite they do nothing. This reaches past the wire on purpose: the job has no API, and what it
//! changes is only visible in PostgreSQL's statistics views.

use std::time::Duration;

use faultline::{
    domain::event::Level,
    ingest::{CaptureInput, prepare},
    store::{NewAudit, Store, sqlite_url_in},
};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Statement};

use crate::helpers::*;

/// The advisory lock key documented in `store::maintenance`: "FltAnlyz" as a big-endian bigint.
const LOCK_KEY: i64 = i64::from_be_bytes(*b"FltAnlyz");
const EVENTS: usize = 300;

fn audit() -> NewAudit {
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

/// `events`' row in `pg_stat_user_tables`.
struct EventsStats {
    /// Rows changed since the last analyze.
    modified: i64,
    analyzed: bool,
    autoanalyzed: bool,
    dead: i64,
    /// Vacuumed by hand (not by autovacuum).
    vacuumed: bool,
}

async fn events_stats(db: &DatabaseConnection) -> EventsStats {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT n_mod_since_analyze, last_analyze IS NOT NULL AS analyzed, \
             last_autoanalyze IS NOT NULL AS autoanalyzed, n_dead_tup, \
             last_vacuum IS NOT NULL AS vacuumed \
             FROM pg_stat_user_tables \
             WHERE schemaname = current_schema() AND relname = 'events'",
        ))
        .await
        .expect("read pg_stat_user_tables")
        .expect("events is in pg_stat_user_tables");
    EventsStats {
        modified: row.try_get("", "n_mod_since_analyze").unwrap(),
        analyzed: row.try_get("", "analyzed").unwrap(),
        autoanalyzed: row.try_get("", "autoanalyzed").unwrap(),
        dead: row.try_get("", "n_dead_tup").unwrap(),
        vacuumed: row.try_get("", "vacuumed").unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_statistics_are_analyzed_once_and_by_one_instance() {
    let dir = tempfile::tempdir().unwrap();
    let pg_url = fresh_database_url().await;
    let url = pg_url.clone().unwrap_or_else(|| sqlite_url_in(dir.path()));
    let store = Store::open(&url, 2).await.expect("open the store");

    let (project, _) = store.project_named_or_create("p", audit()).await.unwrap();
    let commit = |n: usize| {
        let store = store.clone();
        async move {
            for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
                let batch: Vec<_> = chunk
                    .iter()
                    .map(|i| {
                        let input = CaptureInput {
                            message: format!("maintenance test event {}", i % 3),
                            ..Default::default()
                        };
                        Box::new(prepare(project, input, Level::Error, chrono::Utc::now()).unwrap())
                    })
                    .collect();
                let (_, committed) = store.commit_batch(batch).await;
                committed.expect("commit a batch");
            }
        }
    };

    let Some(pg_url) = pg_url else {
        // SQLite: never anything to analyze, however much was written.
        commit(EVENTS).await;
        assert_eq!(
            store.analyze_stale_tables().await.unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            store.vacuum_dead_tables().await.unwrap(),
            Vec::<String>::new()
        );
        store.close().await;
        return;
    };

    // One connection, so that the session advisory lock below is taken and released on it.
    let mut opts = ConnectOptions::new(pg_url);
    opts.max_connections(1).sqlx_logging(false);
    let db = Database::connect(opts)
        .await
        .expect("connect to the test database");
    // Should the server run autovacuum, it must not analyze `events` behind the test's back.
    db.execute_unprepared("ALTER TABLE events SET (autovacuum_enabled = off)")
        .await
        .unwrap();

    commit(EVENTS).await;
    // The writer's connection reports its counts when idle, at most once a second: a report
    // deferred that way comes 10 s later (PGSTAT_MIN_INTERVAL, PGSTAT_IDLE_INTERVAL).
    let s = poll_until(
        Duration::from_secs(15),
        "the inserts in pg_stat_user_tables",
        || async {
            let s = events_stats(&db).await;
            (s.modified >= EVENTS as i64).then_some(s)
        },
    )
    .await;
    assert!(
        !s.analyzed && !s.autoanalyzed,
        "events was analyzed before the job ran"
    );

    // Another instance's pass holds the lock: this one skips and analyzes nothing.
    db.execute_unprepared(&format!("SELECT pg_advisory_lock({LOCK_KEY})"))
        .await
        .unwrap();
    assert_eq!(
        store.analyze_stale_tables().await.unwrap(),
        Vec::<String>::new(),
        "a pass ran while another instance held the lock"
    );
    assert!(
        !events_stats(&db).await.analyzed,
        "events analyzed despite the lock"
    );
    db.execute_unprepared(&format!("SELECT pg_advisory_unlock({LOCK_KEY})"))
        .await
        .unwrap();

    let analyzed = store.analyze_stale_tables().await.unwrap();
    assert!(
        analyzed.iter().any(|t| t == "events"),
        "events not analyzed: {analyzed:?}"
    );
    let s = poll_until(Duration::from_secs(5), "last_analyze of events", || async {
        let s = events_stats(&db).await;
        s.analyzed.then_some(s)
    })
    .await;
    assert_eq!(s.modified, 0, "rows changed since the analyze");

    assert_eq!(
        store.analyze_stale_tables().await.unwrap(),
        Vec::<String>::new(),
        "a second pass found stale tables right after the first"
    );

    // Dead rows in `events`, whose autovacuum is off (above): every row updated once, with a
    // new id (an indexed column, so no update is a HOT one), leaves 300 dead versions, more
    // than autovacuum's 50 + 20 % of 300. The pass vacuums it, and the next one does not.
    db.execute_unprepared("UPDATE events SET id = gen_random_uuid()")
        .await
        .unwrap();
    poll_until(
        Duration::from_secs(15),
        "the dead rows in pg_stat_user_tables",
        || async { (events_stats(&db).await.dead > 110).then_some(()) },
    )
    .await;
    let vacuumed = store.vacuum_dead_tables().await.unwrap();
    assert!(
        vacuumed.iter().any(|t| t == "events"),
        "events not vacuumed: {vacuumed:?}"
    );
    let s = poll_until(Duration::from_secs(5), "last_vacuum of events", || async {
        let s = events_stats(&db).await;
        s.vacuumed.then_some(s)
    })
    .await;
    assert_eq!(s.dead, 0, "dead rows left after the vacuum");
    let again = store.vacuum_dead_tables().await.unwrap();
    assert!(
        !again.iter().any(|t| t == "events"),
        "events vacuumed again: {again:?}"
    );
    let _ = db.close().await;
    store.close().await;
}
