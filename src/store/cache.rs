//! An in-process cache for read-heavy derived answers (statistics, trends, monitoring), as
//! the Error Logging System document describes: each entry lives for its own duration and is
//! dropped as soon as a write (an ingest commit, a triage change, a deletion) happened after
//! it was computed. Entries are per process; several servers on one PostgreSQL each keep theirs.

use std::{
    any::Any,
    collections::HashMap,
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use uuid::Uuid;

use super::Store;
use crate::error::Error;

/// Most entries kept; the cache is cleared when it is full (entries are cheap to recompute).
const MAX_ENTRIES: usize = 1024;
/// How long the keyless-ingest project is reused before the database is asked again.
const ANON_TTL: Duration = Duration::from_secs(10);

type Entry = (u64, Instant, Arc<dyn Any + Send + Sync>);

#[derive(Default)]
pub struct Derived {
    writes: AtomicU64,
    entries: Mutex<HashMap<String, Entry>>,
    anon: Mutex<Option<(Option<Uuid>, Instant)>>,
}

impl std::fmt::Debug for Derived {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Derived")
            .field("writes", &self.writes.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Derived {
    /// How many writes `note_write` has counted.
    pub(crate) fn write_count(&self) -> u64 {
        self.writes.load(Ordering::Acquire)
    }
}

impl Store {
    /// Marks that stored data changed: every cached derived answer is stale from now on.
    pub(crate) fn note_write(&self) {
        self.derived.writes.fetch_add(1, Ordering::AcqRel);
    }

    /// The cached value for `key` if it is younger than `ttl` and no write happened since it
    /// was computed; otherwise computes, stores and returns a fresh one.
    pub async fn cached<T, F, Fut>(
        &self,
        key: String,
        ttl: Duration,
        compute: F,
    ) -> Result<T, Error>
    where
        T: Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let writes = self.derived.writes.load(Ordering::Acquire);
        if let Ok(entries) = self.derived.entries.lock()
            && let Some((w, at, v)) = entries.get(&key)
            && *w == writes
            && at.elapsed() < ttl
            && let Some(v) = v.downcast_ref::<T>()
        {
            return Ok(v.clone());
        }
        let value = compute().await?;
        if let Ok(mut entries) = self.derived.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            // Stamped with the write count read before computing: a write during the
            // computation makes this entry stale at once rather than hiding the write.
            entries.insert(key, (writes, Instant::now(), Arc::new(value.clone())));
        }
        Ok(value)
    }

    /// The project that takes keyless ingest from loopback, reused for a few seconds and
    /// forgotten at once when this server changes a project's policy.
    pub async fn anonymous_ingest_project(&self) -> Result<Option<Uuid>, Error> {
        if let Ok(anon) = self.derived.anon.lock()
            && let Some((v, at)) = *anon
            && at.elapsed() < ANON_TTL
        {
            return Ok(v);
        }
        let v = self.anonymous_loopback_project().await?;
        if let Ok(mut anon) = self.derived.anon.lock() {
            *anon = Some((v, Instant::now()));
        }
        Ok(v)
    }

    pub(crate) fn forget_anonymous_ingest_project(&self) {
        if let Ok(mut anon) = self.derived.anon.lock() {
            *anon = None;
        }
    }
}
