//! The retention job: for each project with a retention period, exports expired events to
//! the configured directory when asked (JSON Lines, one file per run, written and synced
//! before anything is deleted), then deletes them and the groups left empty.

use std::{io::Write, path::PathBuf, time::Duration};

use chrono::Utc;
use uuid::Uuid;

use crate::{domain::export::event_record, error::Error, store::Store};

const PAGE: u64 = 500;

/// What one cleanup of one project did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanupReport {
    pub project_id: Uuid,
    pub exported: u64,
    pub deleted: u64,
    pub export_file: Option<PathBuf>,
}

/// Runs the cleanup for every project, every `interval`, until the task is aborted; it also
/// forgets the source maps unused for `source_map_days` (0: never).
pub async fn run(store: Store, interval: Duration, source_map_days: u32) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match store.project_ids().await {
            Ok(ids) => {
                for id in ids {
                    match cleanup_project(&store, id).await {
                        Ok(Some(r)) if r.deleted > 0 => {
                            tracing::info!(project = %r.project_id, deleted = r.deleted, exported = r.exported, file = ?r.export_file, "retention cleanup");
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::error!(project = %id, error = %e, "retention cleanup failed")
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "retention job could not list projects"),
        }
        let kept = crate::domain::inbound::first_kept_day(Utc::now());
        if let Err(e) = store.forget_filtered_before(kept).await {
            tracing::warn!(error = %e, "could not delete old counts of filtered events");
        }
        if source_map_days > 0 {
            let before = Utc::now().timestamp_millis() - i64::from(source_map_days) * 86_400_000;
            match store.forget_unused_files(before).await {
                Ok((0, 0)) => {}
                Ok((release_files, debug_files)) => {
                    tracing::info!(
                        release_files,
                        debug_files,
                        days = source_map_days,
                        "deleted source maps unused for the configured days"
                    );
                }
                Err(e) => tracing::warn!(error = %e, "could not delete unused source maps"),
            }
        }
    }
}

/// Cleans one project now. `None` when its policy keeps events forever.
pub async fn cleanup_project(
    store: &Store,
    project_id: Uuid,
) -> Result<Option<CleanupReport>, Error> {
    let policy = store.get_retention(project_id).await?;
    if policy.days == 0 {
        return Ok(None);
    }
    let now = Utc::now();
    let cutoff_ms = now.timestamp_millis() - i64::from(policy.days) * 86_400_000;

    // Find the newest expired event first: only events up to it are exported and deleted, so
    // one arriving during the export is never deleted unexported.
    let mut max_seq = 0i64;
    let mut exported = 0u64;
    let mut export_file = None;
    if policy.auto_export && !policy.export_destination.is_empty() {
        let dir = PathBuf::from(&policy.export_destination);
        let mut page = store.expired_events(project_id, cutoff_ms, 0, PAGE).await?;
        if !page.is_empty() {
            std::fs::create_dir_all(&dir).map_err(|e| {
                Error::Internal(format!(
                    "cannot create export directory {}: {e}",
                    dir.display()
                ))
            })?;
            let path = dir.join(format!(
                "faultline-{project_id}-{}.jsonl",
                now.format("%Y%m%dT%H%M%S%.3fZ")
            ));
            let file = std::fs::File::create(&path)
                .map_err(|e| Error::Internal(format!("cannot create {}: {e}", path.display())))?;
            let mut out = std::io::BufWriter::new(file);
            while !page.is_empty() {
                for e in &page {
                    serde_json::to_writer(&mut out, &event_record(e)).map_err(Error::internal)?;
                    out.write_all(b"\n").map_err(Error::internal)?;
                    max_seq = max_seq.max(e.seq);
                    exported += 1;
                }
                page = store
                    .expired_events(project_id, cutoff_ms, max_seq, PAGE)
                    .await?;
            }
            let file = out.into_inner().map_err(|e| Error::internal(e.error()))?;
            file.sync_all().map_err(Error::internal)?;
            export_file = Some(path);
        }
    } else {
        max_seq = i64::MAX;
    }
    let deleted = if max_seq > 0 {
        store.delete_expired(project_id, cutoff_ms, max_seq).await?
    } else {
        0
    };
    // User feedback is kept as long as events.
    store.forget_user_reports(project_id, cutoff_ms).await?;
    Ok(Some(CleanupReport {
        project_id,
        exported,
        deleted,
        export_file,
    }))
}
