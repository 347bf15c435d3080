//! The source maps of a release, read once and kept decoded, so that an event can be placed in
//! the original source when it arrives (its grouping, title, culprit and stored frames are then
//! the original code's, as in Sentry) and again, cheaply, when it is read.
//!
//! Two caches, both per process:
//! - **Which files a release has** (names and SHA-1s), for [`FILES_TTL`]. An event of a release
//!   with no source map costs one lookup here; the database is asked once per release and
//!   period. An upload or delete on this server forgets the release at once; another server on
//!   the same PostgreSQL sees it within the period.
//! - **Decoded maps** (with the minified source beside each), by content (SHA-1), least recently
//!   used first out beyond [`DECODED_BUDGET`]. One event decodes a map; the events that arrive
//!   while it is decoded wait for that one decoding instead of repeating it.
//!
//! Which files placed frames is noted as they do, and written down every minute
//! ([`SourceMaps::run`]): the retention job forgets the files that have gone unused for the
//! configured days (as Sentry does after 90).
//!
//! Nothing here can lose an event: a map that cannot be read, or a database error, leaves the
//! frames as they were sent (they are placed again when the event is read).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use sourcemap::{DecodedMap, SourceView};
use tokio::sync::OnceCell;
use uuid::Uuid;

use super::{CaptureInput, sentry::event::debug_images_of_payload};
use crate::{
    domain::{
        ExceptionData, Frame,
        model::StoredEvent,
        sourcemap::{MINIFIED_SOURCE, Original, SOURCE_MAP, map_names, original},
    },
    error::Error,
    store::{FilesUsed, Store},
};

/// How often the files that placed frames are marked used in the database, by default.
pub const USED_FLUSH: Duration = Duration::from_secs(60);
/// How long a release's list of files is used before the database is asked again.
pub const FILES_TTL: Duration = Duration::from_secs(10);
/// Most releases whose list of files is kept; beyond it the lists are dropped (they are cheap).
const FILES_MAX: usize = 4096;
/// About how many bytes the decoded maps kept may take (each counted as twice its map's bytes
/// plus its minified source's).
pub const DECODED_BUDGET: usize = 64 * 1024 * 1024;

/// A release's files: name → SHA-1.
type Files = Arc<HashMap<String, String>>;
/// The contents' key of a debug id's files; `None`: it has no source map stored.
type DebugFiles = Option<Key>;
/// Releases' files as read, by release: when, and the files.
type ReleasesFiles = HashMap<String, (Instant, Files)>;

/// Most places one map remembers (see [`Decoded::place`]).
const PLACES_MAX: usize = 4096;
/// What the remembered places of one map are counted as in [`DECODED_BUDGET`].
const PLACES_COST: usize = PLACES_MAX * 512;

/// A minified position and function name.
type Place = (u32, u32, String);

/// A map and the minified source it was made from, ready to place frames.
pub struct Decoded {
    map: DecodedMap,
    minified: Option<SourceView>,
    /// Places found before: the same error arrives again and again at the same places, and
    /// finding a function's original name scans the minified line (up to a few milliseconds
    /// in a bundle of one long line). Dropped whole when full.
    places: Mutex<HashMap<Place, Option<Original>>>,
}

impl Decoded {
    fn new(map: DecodedMap, minified: Option<SourceView>) -> Decoded {
        Decoded {
            map,
            minified,
            places: Mutex::default(),
        }
    }

    fn place(&self, function: &str, lineno: u32, colno: u32) -> Option<Original> {
        let lock = || {
            self.places
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        let place = (lineno, colno, function.to_owned());
        if let Some(found) = lock().get(&place) {
            return found.clone();
        }
        let found = original(&self.map, self.minified.as_ref(), function, lineno, colno);
        let mut places = lock();
        if places.len() >= PLACES_MAX {
            places.clear();
        }
        places.insert(place, found.clone());
        found
    }
}

/// The content a decoded map was read from: the map's SHA-1 and its minified source's.
type Key = (String, Option<String>);

struct Slot {
    cell: Arc<OnceCell<Option<Arc<Decoded>>>>,
    /// Estimated bytes, once decoded.
    cost: usize,
    last_used: u64,
}

#[derive(Default)]
struct DecodedCache {
    slots: HashMap<Key, Slot>,
    cost: usize,
    tick: u64,
}

impl DecodedCache {
    fn slot(&mut self, key: &Key) -> Arc<OnceCell<Option<Arc<Decoded>>>> {
        self.tick += 1;
        let tick = self.tick;
        let slot = self.slots.entry(key.clone()).or_insert_with(|| Slot {
            cell: Arc::new(OnceCell::new()),
            cost: 0,
            last_used: tick,
        });
        slot.last_used = tick;
        slot.cell.clone()
    }

    /// Counts a decoded map's cost, then drops the least recently used maps while over
    /// `budget`, keeping at least the newest.
    fn settle(&mut self, key: &Key, cost: usize, budget: usize) {
        if let Some(slot) = self.slots.get_mut(key)
            && slot.cost == 0
        {
            slot.cost = cost;
            self.cost += cost;
        }
        while self.cost > budget && self.slots.len() > 1 {
            let Some(oldest) = self
                .slots
                .iter()
                .filter(|(k, s)| s.cost > 0 && *k != key)
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(s) = self.slots.remove(&oldest) {
                self.cost -= s.cost;
            }
        }
    }
}

/// The decoded maps that may place some frames of an event: its release's, by map name, and
/// those found by debug id, by the minified file's name as the frames give it.
#[derive(Default)]
pub struct ReleaseMaps {
    maps: HashMap<String, Arc<Decoded>>,
    by_file: HashMap<String, Arc<Decoded>>,
}

impl ReleaseMaps {
    fn any(&self) -> bool {
        !self.maps.is_empty() || !self.by_file.is_empty()
    }

    /// Where a frame at `filename` `lineno`:`colno` (1-based) in function `function` is in the
    /// original source; `None` when no map of these covers it.
    fn place(&self, filename: &str, function: &str, lineno: u32, colno: u32) -> Option<Original> {
        match self.by_file.get(filename) {
            Some(d) => d,
            None => map_names(filename)
                .into_iter()
                .find_map(|n| self.maps.get(&n))?,
        }
        .place(function, lineno, colno)
    }

    /// Places the frames of `e` and of the exceptions chained to it. Frames parsed from text
    /// that a map placed are stored (reading would parse the minified ones again).
    pub fn place_exception(&self, e: &mut ExceptionData) {
        if self.place_frames(&mut e.frames) {
            e.frames_from_text = false;
        }
        for c in &mut e.chained {
            self.place_exception(c);
        }
    }

    /// Replaces each frame a map covers by its place in the original source, the frame as sent
    /// kept in its `minified`. Frames placed before are left alone. Returns whether any frame
    /// was placed.
    fn place_frames(&self, frames: &mut [Frame]) -> bool {
        let mut any = false;
        for f in frames
            .iter_mut()
            .filter(|f| f.lineno > 0 && f.minified.is_none())
        {
            let Some(o) = self.place(&f.filename, &f.function, f.lineno, f.colno) else {
                continue;
            };
            *f = o.frame(std::mem::take(f));
            any = true;
        }
        any
    }
}

/// The files of the frames of `e` (and of those chained to it) that no map placed yet.
fn unplaced_files(e: &ExceptionData, out: &mut Vec<String>) {
    for f in &e.frames {
        if f.lineno > 0 && f.minified.is_none() && !out.contains(&f.filename) {
            out.push(f.filename.clone());
        }
    }
    for c in &e.chained {
        unplaced_files(c, out);
    }
}

/// The server's source maps, shared by the capture handlers and the event reader.
pub struct SourceMaps {
    store: Store,
    /// By project.
    files: Mutex<HashMap<Uuid, ReleasesFiles>>,
    /// By project and debug id: when it was read, and the contents' key (none stored: `None`).
    debug: Mutex<HashMap<(Uuid, String), (Instant, DebugFiles)>>,
    decoded: Mutex<DecodedCache>,
    budget: usize,
    /// The files that placed frames since they were last marked used.
    used: Mutex<FilesUsed>,
}

impl SourceMaps {
    pub fn new(store: Store) -> SourceMaps {
        SourceMaps {
            store,
            files: Mutex::default(),
            debug: Mutex::default(),
            decoded: Mutex::default(),
            budget: DECODED_BUDGET,
            used: Mutex::default(),
        }
    }

    /// Marks the files that placed frames since the last time as used now. On failure they
    /// are noted again by their next use.
    pub async fn flush_used(&self) {
        let used = std::mem::take(&mut *self.used());
        let now = chrono::Utc::now().timestamp_millis();
        if let Err(e) = self.store.mark_files_used(&used, now).await {
            tracing::warn!(error = %e, "could not mark the source maps that placed frames as used");
        }
    }

    /// Marks the files used every `interval` until the task is aborted.
    pub async fn run(self: Arc<Self>, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.flush_used().await;
        }
    }

    fn used(&self) -> std::sync::MutexGuard<'_, FilesUsed> {
        self.used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Drops what is known of a release's files (after an upload or a delete).
    pub fn forget(&self, project_id: Uuid, release: &str) {
        self.files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_mut(&project_id)
            .map(|releases| releases.remove(release));
    }

    /// Drops what is known of a debug id's files (after an upload).
    pub fn forget_debug_id(&self, project_id: Uuid, debug_id: &str) {
        self.debug
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&(project_id, debug_id.to_owned()));
    }

    /// The maps that may place a capture: its release's and those its debug images name, for
    /// the files its frames name (stack text is parsed for them only when some map may be
    /// needed). A failure is logged and leaves the capture's frames as sent.
    pub async fn for_capture(&self, project_id: Uuid, input: &CaptureInput) -> Option<ReleaseMaps> {
        self.find(project_id, &input.release, &input.debug_images, || {
            super::prepare::frame_files(input)
        })
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, release = %input.release, "source maps not read; the event keeps its minified frames");
            None
        })
    }

    /// Places the frames of a stored event that arrived before the maps that cover them (by
    /// its release, or by the debug ids of its Sentry payload). Frames placed when it arrived
    /// are left as they are.
    pub async fn place_stored(&self, event: &mut StoredEvent) -> Result<(), Error> {
        let Some(e) = event.exception.as_mut() else {
            return Ok(());
        };
        let mut filenames = Vec::new();
        unplaced_files(e, &mut filenames);
        if filenames.is_empty() {
            return Ok(());
        }
        let images = debug_images_of_payload(event.payload_json.as_deref().unwrap_or_default());
        if let Some(maps) = self
            .find(event.project_id, &event.release, &images, || filenames)
            .await?
        {
            maps.place_exception(e);
        }
        Ok(())
    }

    /// The maps of `release`, and those the debug ids of `images` name, that may place frames
    /// in the files `filenames` gives (asked only when a map may be needed); `None` when none.
    /// A debug id that cannot be read is logged and passed over.
    async fn find(
        &self,
        project_id: Uuid,
        release: &str,
        images: &[(String, String)],
        filenames: impl FnOnce() -> Vec<String>,
    ) -> Result<Option<ReleaseMaps>, Error> {
        let files = self.files_with_maps(project_id, release).await?;
        if files.is_none() && images.is_empty() {
            return Ok(None);
        }
        let filenames = filenames();
        let mut maps = ReleaseMaps::default();
        if let Some(files) = files {
            self.add_release_maps(&mut maps, project_id, release, &files, &filenames)
                .await?;
        }
        for (file, id) in images {
            if maps.by_file.contains_key(file) || !filenames.contains(file) {
                continue;
            }
            match self.by_debug_id(project_id, id).await {
                Ok(Some(d)) => {
                    maps.by_file.insert(file.clone(), d);
                    self.used().note_debug_id(project_id, id);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, debug_id = %id, "source map not read; the frames stay minified");
                }
            }
        }
        Ok(maps.any().then_some(maps))
    }

    /// The files of `release`, when a source map is among them.
    async fn files_with_maps(
        &self,
        project_id: Uuid,
        release: &str,
    ) -> Result<Option<Files>, Error> {
        if release.is_empty() {
            return Ok(None);
        }
        let files = self.files(project_id, release).await?;
        Ok(files.keys().any(|n| n.ends_with(".map")).then_some(files))
    }

    /// Adds the maps among the release's `files` that may place frames in `filenames`.
    async fn add_release_maps(
        &self,
        maps: &mut ReleaseMaps,
        project_id: Uuid,
        release: &str,
        files: &Files,
        filenames: &[String],
    ) -> Result<(), Error> {
        for filename in filenames {
            let Some(name) = map_names(filename)
                .into_iter()
                .find_map(|n| files.get_key_value(&n).map(|(k, _)| k))
            else {
                continue;
            };
            if !maps.maps.contains_key(name)
                && let Some(d) = self.decoded(project_id, release, files, name).await?
            {
                maps.maps.insert(name.clone(), d);
                let mut used = self.used();
                used.note_release_file(project_id, release, name);
                let source = name.trim_end_matches(".map");
                if files.contains_key(source) {
                    used.note_release_file(project_id, release, source);
                }
            }
        }
        Ok(())
    }

    async fn files(&self, project_id: Uuid, release: &str) -> Result<Files, Error> {
        {
            // Every event of a release asks: no allocation on the way.
            let files = self
                .files
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((at, f)) = files.get(&project_id).and_then(|r| r.get(release))
                && at.elapsed() < FILES_TTL
            {
                return Ok(f.clone());
            }
        }
        let listed: Files = Arc::new(
            self.store
                .list_release_files(project_id, release)
                .await?
                .into_iter()
                .map(|f| (f.name, f.sha1))
                .collect(),
        );
        let mut files = self
            .files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if files.values().map(HashMap::len).sum::<usize>() >= FILES_MAX {
            files.clear();
        }
        files
            .entry(project_id)
            .or_default()
            .insert(release.to_owned(), (Instant::now(), listed.clone()));
        Ok(listed)
    }

    /// The decoded map stored under `debug_id`, with its minified source.
    async fn by_debug_id(
        &self,
        project_id: Uuid,
        debug_id: &str,
    ) -> Result<Option<Arc<Decoded>>, Error> {
        let known = {
            let debug = self
                .debug
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            debug
                .get(&(project_id, debug_id.to_owned()))
                .filter(|(at, _)| at.elapsed() < FILES_TTL)
                .map(|(_, key)| key.clone())
        };
        let key = match known {
            Some(key) => key,
            None => {
                let sums = self.store.debug_file_sums(project_id, debug_id).await?;
                let key = sums
                    .get(SOURCE_MAP)
                    .map(|m| (m.clone(), sums.get(MINIFIED_SOURCE).cloned()));
                let mut debug = self
                    .debug
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if debug.len() >= FILES_MAX {
                    debug.clear();
                }
                debug.insert(
                    (project_id, debug_id.to_owned()),
                    (Instant::now(), key.clone()),
                );
                key
            }
        };
        let Some(key) = key else {
            return Ok(None);
        };
        self.decoded_by(key, async {
            let mut contents = self.store.debug_file_contents(project_id, debug_id).await?;
            Ok(contents
                .remove(SOURCE_MAP)
                .map(|map| (map, contents.remove(MINIFIED_SOURCE))))
        })
        .await
    }

    /// The decoded map `name` of a release with `files`, with the minified source beside it.
    /// `None` when it does not read as a source map.
    async fn decoded(
        &self,
        project_id: Uuid,
        release: &str,
        files: &Files,
        name: &str,
    ) -> Result<Option<Arc<Decoded>>, Error> {
        let source_name = name.trim_end_matches(".map");
        let key: Key = (files[name].clone(), files.get(source_name).cloned());
        let with_source = key.1.is_some();
        self.decoded_by(key, async move {
            let mut names = vec![name.to_owned()];
            if with_source {
                names.push(source_name.to_owned());
            }
            let mut contents = self
                .store
                .release_file_contents(project_id, release, &names)
                .await?;
            Ok(contents
                .remove(name)
                .map(|map| (map, contents.remove(source_name))))
        })
        .await
    }

    /// The map of contents `key`, decoded once: `load` reads the map and its minified source
    /// (`None`: gone since it was listed). `None` when it is gone or does not read as a map.
    async fn decoded_by(
        &self,
        key: Key,
        load: impl Future<Output = Result<Option<(Vec<u8>, Option<Vec<u8>>)>, Error>>,
    ) -> Result<Option<Arc<Decoded>>, Error> {
        let cell = self
            .decoded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .slot(&key);
        let mut cost = 0;
        let counted = &mut cost;
        // The error `None`: the map was deleted since it was listed (not kept, as an upload
        // of the same contents would find it).
        let decoded = cell
            .get_or_try_init(|| async move {
                let (map, source) = load.await.map_err(Some)?.ok_or(None)?;
                *counted = map.len() * 2 + source.as_ref().map_or(0, Vec::len) + PLACES_COST;
                // Decoding costs in proportion to the map (up to 20 MiB): off the async workers.
                tokio::task::spawn_blocking(move || {
                    let map = sourcemap::decode_slice(&map).ok()?;
                    let minified = source
                        .and_then(|s| String::from_utf8(s).ok())
                        .map(SourceView::from_string);
                    Some(Arc::new(Decoded::new(map, minified)))
                })
                .await
                .map_err(|e| Some(Error::Internal(format!("source map task: {e}"))))
            })
            .await
            .cloned();
        let decoded = match decoded {
            Ok(d) => d,
            Err(e) => {
                let mut cache = self
                    .decoded
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if cache.slots.get(&key).is_some_and(|s| !s.cell.initialized()) {
                    cache.slots.remove(&key);
                }
                return e.map_or(Ok(None), Err);
            }
        };
        if cost > 0 {
            self.decoded
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .settle(&key, cost, self.budget);
        }
        Ok(decoded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release_maps() -> ReleaseMaps {
        let (bytes, minified) = crate::domain::sourcemap::tests::map_bytes();
        let decoded = Decoded::new(
            sourcemap::decode_slice(&bytes).unwrap(),
            Some(SourceView::from_string(minified.to_owned())),
        );
        ReleaseMaps {
            maps: HashMap::from([("~/app.min.js.map".to_owned(), Arc::new(decoded))]),
            by_file: HashMap::new(),
        }
    }

    #[test]
    fn frames_a_map_covers_are_placed_and_keep_the_frame_as_sent() {
        let maps = release_maps();
        let sent = |filename: &str, colno| Frame {
            filename: filename.into(),
            function: "n".into(),
            lineno: 1,
            colno,
            in_app: Some(false),
            ..Frame::default()
        };
        let mut frames = vec![
            sent("https://shop.example/app.min.js?v=2", 18),
            sent("https://cdn.example/vendor.js", 3),
            Frame {
                lineno: 0,
                ..sent("https://shop.example/app.min.js", 18)
            },
        ];
        let before = frames.clone();
        assert!(maps.place_frames(&mut frames));
        let placed = &frames[0];
        assert_eq!(
            (
                placed.filename.as_str(),
                placed.function.as_str(),
                placed.lineno,
                placed.colno
            ),
            ("webpack://shop/src/math.ts", "add", 3, 3)
        );
        assert_eq!(placed.context_line, "  return a + b;");
        assert_eq!(placed.in_app, Some(true));
        assert_eq!(placed.minified.as_deref(), Some(&before[0]));
        // No map for the file, or no line: as sent.
        assert_eq!(frames[1..], before[1..]);
        // Placed frames are not placed again.
        let again = frames.clone();
        assert!(!maps.place_frames(&mut frames));
        assert_eq!(frames, again);
        // The same place again, now remembered, is placed alike.
        let d = &maps.maps["~/app.min.js.map"];
        assert!(
            d.places
                .lock()
                .unwrap()
                .contains_key(&(1, 18, "n".to_owned()))
        );
        let mut next = vec![before[0].clone()];
        assert!(maps.place_frames(&mut next));
        assert_eq!(next[0], frames[0]);
    }

    fn key(n: u8) -> Key {
        (format!("{n}"), None)
    }

    #[test]
    fn the_least_recently_used_maps_go_first_and_the_newest_stays() {
        let mut c = DecodedCache::default();
        for n in 1..=3 {
            c.slot(&key(n));
            c.settle(&key(n), 40, 100);
        }
        // 120 > 100: map 1, the least recently used, is dropped.
        assert!(!c.slots.contains_key(&key(1)));
        assert_eq!(c.cost, 80);
        // Map 2 used again: map 3 is now the oldest.
        c.slot(&key(2));
        c.slot(&key(4));
        c.settle(&key(4), 40, 100);
        assert!(c.slots.contains_key(&key(2)) && !c.slots.contains_key(&key(3)));
        // A map larger than the budget is kept alone.
        c.slot(&key(5));
        c.settle(&key(5), 500, 100);
        assert_eq!(c.slots.keys().cloned().collect::<Vec<_>>(), [key(5)]);
        assert_eq!(c.cost, 500);
        // Counted once however often it is settled.
        c.settle(&key(5), 500, 100);
        assert_eq!(c.cost, 500);
    }
}
