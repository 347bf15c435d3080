//! The single writer: takes whatever is queued (up to `max_batch`), commits it in one
//! transaction, answers every caller. Under load batches grow by themselves, because events
//! queue up while the previous commit runs.
//!
//! A commit costs about the same whatever few events it holds: on SQLite each writes every
//! page it touches whole (about 20 pages for one event), plus a sync. At moderate
//! rates a writer that commits whatever is queued at once spent its whole time on commits of
//! one to three events. So a commit starts at least `commit_interval` after the previous one
//! started, and what arrives meanwhile goes in together; a commit that took longer than that
//! (under load) leaves no wait. At 1 000 events/s, 2 ms halved the bytes written per event
//! and cut the server's CPU by a quarter, for about 2.5 ms more latency (BENCHMARKS.md,
//! session 19).

use std::{
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    time::Instant,
};

use tokio::sync::mpsc;

use super::{IngestConfig, Job, WriterStats};
use crate::{error::Error, store::Store};

pub(super) async fn run(
    store: Store,
    mut rx: mpsc::Receiver<Job>,
    cfg: IngestConfig,
    stats: std::sync::Arc<WriterStats>,
) {
    let max_batch = cfg.max_batch.max(1);
    let mut jobs: Vec<Job> = Vec::with_capacity(max_batch);
    // Opened here, on the writer's runtime, before the first batch waits for it.
    if let Err(e) = store.open_ingest_pool().await {
        tracing::warn!(error = %e, "the ingest writer could not connect yet; it retries per batch");
    }
    let mut last_start: Option<tokio::time::Instant> = None;
    loop {
        if rx.recv_many(&mut jobs, max_batch).await == 0 {
            break; // every sender is gone and the queue is empty: drained
        }
        let now = tokio::time::Instant::now();
        let mut deadline = now + cfg.max_wait;
        if let Some(last) = last_start {
            deadline = deadline.max(last + cfg.commit_interval);
        }
        if deadline > now {
            while jobs.len() < max_batch {
                let room = max_batch - jobs.len();
                match tokio::time::timeout_at(deadline, rx.recv_many(&mut jobs, room)).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }
        last_start = Some(tokio::time::Instant::now());
        let oldest = jobs.iter().map(|j| j.queued).min();
        commit(&store, &mut jobs, &stats).await;
        if let Some(q) = oldest {
            let lag = u64::try_from(q.elapsed().as_millis()).unwrap_or(u64::MAX);
            stats.lag_ms.store(lag, Relaxed);
        }
    }
    store.close_ingest_pool().await;
    tracing::info!(
        committed = stats.committed.load(Relaxed),
        batches = stats.batches.load(Relaxed),
        failed = stats.failed.load(Relaxed),
        "ingest writer drained and stopped"
    );
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Relaxed);
}

async fn commit(store: &Store, jobs: &mut Vec<Job>, stats: &WriterStats) {
    let started = Instant::now();
    let (mut batch, result) = store.commit_batch(std::mem::take(jobs)).await;
    match result {
        Ok(results) => {
            add(&stats.batches, 1);
            add(&stats.committed, results.len() as u64);
            tracing::debug!(
                events = results.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "batch committed"
            );
            for (job, result) in batch.drain(..).zip(results) {
                let _ = job.reply.send(Ok(result));
            }
        }
        Err(e) => {
            // One bad event must not sink the others: retry each alone. This also settles a
            // race on an idempotency key with another server: the retry sees its commit.
            tracing::warn!(error = %e, events = batch.len(), "batch commit failed; committing events one by one");
            for job in batch.drain(..) {
                let event_id = job.event.id;
                let (mut back, result) = store.commit_batch(vec![job]).await;
                let result = result.map(|mut r| r.remove(0));
                match &result {
                    Ok(_) => {
                        add(&stats.committed, 1);
                        add(&stats.batches, 1);
                    }
                    Err(e) => {
                        add(&stats.failed, 1);
                        tracing::error!(error = %e, %event_id, "event could not be committed");
                    }
                }
                // Without the job (the SQLite writer thread is gone) its caller learns that
                // the writer stopped before answering.
                if let Some(job) = back.pop() {
                    let _ = job.reply.send(result.map_err(public));
                }
            }
        }
    }
    // The emptied vector goes back for the next batch, with its capacity.
    *jobs = batch;
}

/// Internal failures reach the caller as "try again", which is what they can do about it.
fn public(e: Error) -> Error {
    match e {
        Error::Internal(_) => Error::Unavailable("the event could not be stored; retry".into()),
        other => other,
    }
}
