//! Authentication for both transports: one middleware on the shared router reads
//! `Authorization: Bearer <key>` or `X-API-Key: <key>` (gRPC metadata arrives as the same
//! headers), looks the key's hash up, and puts the outcome in the request extensions. Each
//! handler then asks for the scope it needs with [`require`]; REST hands the extensions
//! through to the gRPC handler, so the check happens in exactly one place per operation.

pub mod keys;
pub mod roles;
pub mod routes;

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::extract::Request;
use chrono::Utc;
use uuid::Uuid;

use crate::{
    error::Error,
    store::{ApiKeyRecord, Store},
};

/// What a key may do. `Owner` implies every scope, `Admin` every scope but `Owner`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Send events.
    Ingest,
    /// Read events, groups and settings.
    Read,
    /// Triage groups (resolve, ignore, delete).
    Write,
    /// Change settings and keys.
    Admin,
    /// Delete projects and change who the owners are.
    Owner,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
            Scope::Owner => "owner",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "ingest" => Some(Scope::Ingest),
            "read" => Some(Scope::Read),
            "write" => Some(Scope::Write),
            "admin" => Some(Scope::Admin),
            "owner" => Some(Scope::Owner),
            _ => None,
        }
    }
}

/// Who is calling: the key's project and scopes. `Default` lets other credential kinds fill
/// only the fields they know (`..Default::default()`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principal {
    /// The project the request works on.
    pub project_id: Uuid,
    pub key_id: Uuid,
    pub scopes: Vec<Scope>,
    /// True when the key may reach `project_id` only; false: it may manage every project.
    pub restricted: bool,
    /// The team member whose personal key this is, if any.
    pub member_id: Option<Uuid>,
    /// The key's name, for the audit log.
    pub key_name: String,
}

impl Principal {
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.iter().any(|s| {
            *s == scope || *s == Scope::Owner || (*s == Scope::Admin && scope != Scope::Owner)
        })
    }

    /// Whether the key may see project `id` at all. Another project is answered as
    /// "not found", so a key learns nothing about projects beyond its reach.
    pub fn sees_project(&self, id: Uuid) -> bool {
        !self.restricted || self.project_id == id
    }
}

/// The outcome of authentication, stored in the request extensions.
#[derive(Debug, Clone)]
pub enum Authn {
    /// No credentials were sent.
    Anonymous,
    /// A valid, unexpired, unrevoked key.
    Key(Principal),
    /// Credentials were sent but are not valid; the reason is safe to show.
    Rejected(&'static str),
}

/// The principal of a request that needs `scope`, or the error to answer with.
pub fn require(ext: &http::Extensions, scope: Scope) -> Result<Principal, Error> {
    match ext.get::<Authn>() {
        Some(Authn::Key(p)) if p.has(scope) => Ok(p.clone()),
        // Keyless loopback ingest (see `anonymous`) has no key to blame for a missing scope.
        Some(Authn::Key(p)) if p.key_id.is_nil() => Err(Error::Unauthenticated(
            "missing API key: keyless loopback callers may only send events".into(),
        )),
        Some(Authn::Key(_)) => Err(Error::PermissionDenied(format!(
            "this API key lacks the '{}' scope",
            scope.as_str()
        ))),
        Some(Authn::Rejected(why)) => Err(Error::Unauthenticated((*why).to_string())),
        Some(Authn::Anonymous) | None => Err(Error::Unauthenticated(
            "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'".into(),
        )),
    }
}

/// How long a key lookup is reused before the database is asked again. Revoking a key clears
/// this instance's cache at once; other instances on the same database notice within this time.
pub const CACHE_TTL: Duration = Duration::from_secs(2);
const CACHE_MAX: usize = 10_000;

/// Resolves keys, with a short-lived cache so the hot path does not query per request, and
/// batches `last_used` updates instead of writing on every request.
pub struct Authenticator {
    store: Store,
    cache: Mutex<HashMap<String, (Option<ApiKeyRecord>, Instant)>>,
    /// Bumped by `invalidate`: a lookup that started before it must not refill the cache.
    generation: std::sync::atomic::AtomicU64,
    /// Lookups under way, by key hash (see `look_up`).
    in_flight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    used: Mutex<HashSet<Uuid>>,
}

impl Authenticator {
    pub fn new(store: Store) -> Arc<Self> {
        Arc::new(Self {
            store,
            cache: Mutex::new(HashMap::new()),
            generation: std::sync::atomic::AtomicU64::new(0),
            in_flight: Mutex::new(HashMap::new()),
            used: Mutex::new(HashSet::new()),
        })
    }

    /// Forgets every cached lookup, so a revoked key or a changed role takes effect on the
    /// next request to this instance.
    pub fn invalidate(&self) {
        if let Ok(mut cache) = self.cache.lock() {
            self.generation
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            cache.clear();
        }
    }

    fn cached(&self, hash: &str) -> Result<Option<Option<ApiKeyRecord>>, Error> {
        Ok(self
            .cache
            .lock()
            .map_err(|_| Error::Internal("auth cache poisoned".into()))?
            .get(hash)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(r, _)| r.clone()))
    }

    pub async fn authenticate(&self, key: &str) -> Result<Authn, Error> {
        let hash = keys::hash(key);
        let record = match self.cached(&hash)? {
            Some(r) => r,
            None => self.look_up(&hash).await?,
        };
        // The lookup matched on the hash already; comparing again in constant time keeps the
        // decision itself free of timing differences, whatever the database's comparison does.
        let Some(record) = record.filter(|r| keys::hash_matches(&r.key_hash, &hash)) else {
            return Ok(Authn::Rejected("invalid API key"));
        };
        let now = Utc::now().timestamp_millis();
        if record.revoked_at.is_some() {
            return Ok(Authn::Rejected("this API key has been revoked"));
        }
        if record.expires_at.is_some_and(|t| t <= now) {
            return Ok(Authn::Rejected("this API key has expired"));
        }
        if let Ok(mut used) = self.used.lock() {
            used.insert(record.id);
        }
        Ok(Authn::Key(Principal {
            project_id: record.project_id,
            key_id: record.id,
            scopes: record
                .scopes
                .iter()
                .filter_map(|s| Scope::parse(s))
                .collect(),
            restricted: record.restricted,
            member_id: record.member_id,
            key_name: record.name,
        }))
    }

    /// Reads a key that is not cached. Concurrent requests with the same key share one
    /// database query: when the entry expires under load, or at start with many clients
    /// connecting at once, the others wait for the first one's answer instead of each
    /// queueing its own query for the pool.
    async fn look_up(&self, hash: &str) -> Result<Option<ApiKeyRecord>, Error> {
        let flight = self
            .in_flight
            .lock()
            .map_err(|_| Error::Internal("auth cache poisoned".into()))?
            .entry(hash.to_owned())
            .or_default()
            .clone();
        let _turn = flight.lock().await;
        if let Some(r) = self.cached(hash)? {
            return Ok(r);
        }
        let started = self.generation.load(std::sync::atomic::Ordering::SeqCst);
        let found = self.store.find_key(hash).await;
        // Whoever still waits on this flight finds the answer in the cache (or, after an
        // error or a revocation, asks again); later requests start a new flight.
        if let Ok(mut flights) = self.in_flight.lock() {
            flights.remove(hash);
        }
        let r = found?;
        let mut cache = self
            .cache
            .lock()
            .map_err(|_| Error::Internal("auth cache poisoned".into()))?;
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        // A revocation committed while this lookup ran may not be in `r`: use it for this
        // request only.
        if self.generation.load(std::sync::atomic::Ordering::SeqCst) == started {
            cache.insert(hash.to_owned(), (r.clone(), Instant::now()));
        }
        Ok(r)
    }

    /// Writes the keys used since the last flush as used now.
    pub async fn flush_last_used(&self) {
        let ids: Vec<Uuid> = match self.used.lock() {
            Ok(mut used) => used.drain().collect(),
            Err(_) => return,
        };
        if let Err(e) = self
            .store
            .touch_keys(&ids, Utc::now().timestamp_millis())
            .await
        {
            tracing::warn!(error = %e, "could not record API key use");
        }
    }
}

/// The credential a request carries, from `Authorization: Bearer` or `X-API-Key`.
pub fn credential(headers: &http::HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        if let Some(rest) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
        {
            return Some(rest.trim());
        }
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Finds who is calling and notes it on the request, for every request on both transports
/// (part of the edge layer, `app::edge_layer`).
pub async fn authenticate(auth: &Authenticator, req: &mut Request) {
    let query_key = query_credential(req.uri());
    let outcome = match credential(req.headers()).or(query_key.as_deref()) {
        None | Some("") => {
            let loopback = req
                .extensions()
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .is_some_and(|ci| ci.0.ip().to_canonical().is_loopback());
            anonymous(auth, loopback).await
        }
        Some(key) => match auth.authenticate(key).await {
            Ok(a) => a,
            // The database is down: let the handler fail the request with a clear error
            // rather than answering here in one transport's format.
            Err(e) => {
                tracing::warn!(error = %e, "key lookup failed");
                Authn::Rejected("the API key could not be checked right now")
            }
        },
    };
    req.extensions_mut().insert(outcome);
}

/// The key of a `?key=` query parameter, for clients that cannot set headers (Log Center's
/// `sendBeacon`). Headers win when both are sent.
fn query_credential(uri: &http::Uri) -> Option<String> {
    form_urlencoded::parse(uri.query()?.as_bytes())
        .find(|(k, _)| k == "key")
        .map(|(_, v)| v.trim().to_owned())
}

/// A request without credentials: ingest-only as the project that allows keyless ingest from
/// loopback, when the TCP peer (never a forwarding header) is a loopback address; otherwise
/// anonymous.
async fn anonymous(auth: &Authenticator, loopback: bool) -> Authn {
    if !loopback {
        return Authn::Anonymous;
    }
    match auth.store.anonymous_ingest_project().await {
        Ok(Some(project_id)) => Authn::Key(Principal {
            project_id,
            key_id: Uuid::nil(),
            scopes: vec![Scope::Ingest],
            // Keyless ingest lands in the one project that allows it, never another.
            restricted: true,
            ..Principal::default()
        }),
        Ok(None) => Authn::Anonymous,
        Err(e) => {
            tracing::warn!(error = %e, "anonymous ingest policy lookup failed");
            Authn::Anonymous
        }
    }
}
