//! The ingest path after parsing: a bounded queue in front of one writer task that commits
//! events in batches (group commit). A caller's answer waits for its own event's commit, so
//! every acknowledged event is on disk; when the queue is full the caller is told to retry
//! at once instead of the server buffering without bound.

pub mod inbound;
mod prepare;
pub mod scrub;
pub mod sentry;
pub mod sourcemaps;
mod writer;

pub use prepare::{CaptureInput, ExceptionInput, frame_files, prepare, prepare_placed};

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::{
    domain::{NewEvent, model::Committed},
    error::Error,
    store::Store,
};

/// The writer's default `commit_interval`, in milliseconds (see `writer`).
pub const DEFAULT_COMMIT_INTERVAL_MS: u64 = 2;

/// Tuning of the queue and the writer.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Events that may wait for the writer; beyond this, captures are refused with a retry hint.
    pub queue_depth: usize,
    /// Most events committed in one transaction.
    pub max_batch: usize,
    /// How long the writer may wait for a batch to fill once it holds at least one event.
    pub max_wait: Duration,
    /// Least time from one commit's start to the next's: events that arrive sooner wait for
    /// the rest of it, together. A commit that took longer leaves no wait.
    pub commit_interval: Duration,
    /// The retry hint given when the queue is full.
    pub retry_after: Duration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            queue_depth: 10_000,
            max_batch: 1000,
            max_wait: Duration::ZERO,
            commit_interval: Duration::from_millis(DEFAULT_COMMIT_INTERVAL_MS),
            retry_after: Duration::from_secs(1),
        }
    }
}

struct Job {
    event: NewEvent,
    reply: oneshot::Sender<Result<Committed, Error>>,
    /// When it was queued, for the writer lag monitoring reports.
    queued: std::time::Instant,
}

impl AsRef<NewEvent> for Job {
    fn as_ref(&self) -> &NewEvent {
        &self.event
    }
}

/// What the writer reports about itself (read by monitoring).
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Queue-to-commit time of the oldest event of the last batch, in milliseconds.
    pub lag_ms: std::sync::atomic::AtomicU64,
    /// Events committed since start.
    pub committed: std::sync::atomic::AtomicU64,
    /// Transactions committed since start (events per commit: `committed / batches`).
    pub batches: std::sync::atomic::AtomicU64,
    /// Events that could not be committed since start (their callers got an error).
    pub failed: std::sync::atomic::AtomicU64,
}

/// The sending side: cheap to clone, shared by every transport.
#[derive(Clone)]
pub struct Ingest {
    tx: mpsc::Sender<Job>,
    retry_after: Duration,
    stats: std::sync::Arc<WriterStats>,
}

/// The writer thread; await `drained` after the last `Ingest` is dropped to know the queue
/// is drained.
pub struct WriterHandle(oneshot::Receiver<()>);

impl WriterHandle {
    pub async fn drained(self) {
        if self.0.await.is_err() {
            tracing::error!("ingest writer thread failed");
        }
    }
}

impl Ingest {
    /// Starts the writer on a thread of its own with a single-threaded runtime. On the
    /// request workers' runtime the writer waited behind the requests queued there each time
    /// it woke (for the next batch, for each database round trip, for a commit's answer), and
    /// so did every event it was to commit.
    pub fn start(store: Store, cfg: IngestConfig) -> Result<(Ingest, WriterHandle), Error> {
        let (tx, rx) = mpsc::channel(cfg.queue_depth.max(1));
        let stats = std::sync::Arc::new(WriterStats::default());
        let (done, drained) = oneshot::channel();
        let (ready, started) = std::sync::mpsc::sync_channel(1);
        let writer = writer::run(store, rx, cfg.clone(), stats.clone());
        let failed =
            |e: std::io::Error| Error::Internal(format!("cannot start the ingest writer: {e}"));
        // The runtime is made, run and dropped on its thread: dropping a runtime inside
        // another one's async context panics.
        std::thread::Builder::new()
            .name("faultline-writer".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => {
                        let _ = ready.send(Ok(()));
                        runtime.block_on(writer);
                        drop(runtime);
                        let _ = done.send(());
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                    }
                }
            })
            .map_err(failed)?;
        // Waits only for the runtime to be built, before any event can be queued.
        started
            .recv()
            .map_err(|_| Error::Internal("the ingest writer thread ended at start".into()))?
            .map_err(failed)?;
        Ok((
            Ingest {
                tx,
                retry_after: cfg.retry_after,
                stats,
            },
            WriterHandle(drained),
        ))
    }

    /// Takes room in the queue for `n` events, or refuses at once (the caller is told to
    /// retry) when it has no room for all of them. Captures reserve before they parse,
    /// scrub and fingerprint, so an overloaded server turns a capture away without spending
    /// that work on it, and the events being prepared are bounded by the queue's depth.
    pub fn reserve(&self, n: usize) -> Result<Reservation<'_>, Error> {
        match self.tx.try_reserve_many(n) {
            Ok(permits) => Ok(Reservation {
                permits,
                answers: Vec::with_capacity(n),
            }),
            Err(mpsc::error::TrySendError::Full(())) => Err(Error::Overloaded {
                message: if n == 1 {
                    "the ingest queue is full; retry later".into()
                } else {
                    "the ingest queue cannot take this batch now; retry later".into()
                },
                retry_after: self.retry_after,
            }),
            Err(mpsc::error::TrySendError::Closed(())) => {
                Err(Error::Unavailable("the server is shutting down".into()))
            }
        }
    }

    /// Events waiting in the queue and the queue's capacity.
    pub fn queue_depth(&self) -> (usize, usize) {
        let cap = self.tx.max_capacity();
        (cap - self.tx.capacity(), cap)
    }

    /// False once the writer has stopped.
    pub fn writer_running(&self) -> bool {
        !self.tx.is_closed()
    }

    pub fn writer_stats(&self) -> &WriterStats {
        &self.stats
    }
}

/// Room in the queue taken by `Ingest::reserve`. Events are queued on it as soon as each is
/// prepared, so the writer can commit the first events of a batch while later ones are still
/// being prepared; room not used (an event that failed validation) is given back on drop.
pub struct Reservation<'a> {
    permits: mpsc::PermitIterator<'a, Job>,
    answers: Vec<oneshot::Receiver<Result<Committed, Error>>>,
}

impl Reservation<'_> {
    /// Queues `event` on reserved room. Answers come from `committed`, in queuing order.
    pub fn queue(&mut self, event: NewEvent) -> Result<(), Error> {
        let permit = self
            .permits
            .next()
            .ok_or_else(|| Error::Internal("more events queued than reserved".into()))?;
        let (reply, answer) = oneshot::channel();
        permit.send(Job {
            event,
            reply,
            queued: std::time::Instant::now(),
        });
        self.answers.push(answer);
        Ok(())
    }

    /// Gives back the unused room, then waits until each queued event is committed.
    pub async fn committed(self) -> Vec<Result<Committed, Error>> {
        let Reservation { permits, answers } = self;
        drop(permits);
        let mut results = Vec::with_capacity(answers.len());
        for answer in answers {
            results.push(answer.await.unwrap_or_else(|_| {
                Err(Error::Internal(
                    "the ingest writer stopped before answering".into(),
                ))
            }));
        }
        results
    }

    /// Queues one event and waits until it is committed.
    pub async fn submit(mut self, event: NewEvent) -> Result<Committed, Error> {
        self.queue(event)?;
        self.committed()
            .await
            .pop()
            .unwrap_or_else(|| Err(Error::Internal("no answer for a queued event".into())))
    }
}
