//! The in-memory copy of every project's security policy, read on each request (rate limits,
//! allowed origins) and each event (scrub fields) without touching the database. A change
//! through the settings handler writes through at once; a periodic refresh picks up changes
//! made by other server instances on the same database.
//!
//! It is one process-wide map because the event preparation it serves is a plain function
//! called from every transport; project ids are random UUIDs, so servers sharing a process
//! (tests) cannot collide, and servers sharing a database share their entries.

use std::{
    collections::HashMap,
    sync::{Arc, LazyLock, RwLock},
};

use uuid::Uuid;

use crate::{domain::policy::ProjectPolicy, error::Error, store::Store};

static CACHE: LazyLock<RwLock<HashMap<Uuid, Arc<ProjectPolicy>>>> =
    LazyLock::new(|| RwLock::new(HashMap::new()));

/// The cached policy of a project; `None` means the defaults.
pub fn get(project_id: Uuid) -> Option<Arc<ProjectPolicy>> {
    CACHE.read().ok()?.get(&project_id).cloned()
}

/// Replaces a project's cached policy (after it was stored).
pub fn put(project_id: Uuid, policy: ProjectPolicy) {
    if let Ok(mut c) = CACHE.write() {
        c.insert(project_id, Arc::new(policy));
    }
}

/// Loads every stored policy into the cache.
pub async fn refresh(store: &Store) -> Result<(), Error> {
    let all = store.all_policies().await?;
    if let Ok(mut c) = CACHE.write() {
        for (id, p) in all {
            if c.get(&id).is_none_or(|old| **old != p) {
                c.insert(id, Arc::new(p));
            }
        }
    }
    Ok(())
}
