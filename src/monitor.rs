//! What the server knows about itself, for `InsightsService`: request counters kept by a
//! middleware on the shared router (count, latency, 5xx, in flight, per minute), this run's
//! identity for the start/stop history, and process/host figures read from `/proc` and
//! `statvfs` (Linux; elsewhere those figures are absent rather than made up).

use std::{
    collections::VecDeque,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use axum::response::Response;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Minutes of request counts kept (30 days, the longest timeframe).
const MINUTES_KEPT: usize = 30 * 24 * 60;

/// Requests of one minute.
#[derive(Debug, Clone, Copy, Default)]
pub struct MinuteCounts {
    /// Minutes since the epoch.
    pub minute: i64,
    pub requests: u64,
    pub server_errors: u64,
    pub latency_us: u64,
}

/// Totals over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RequestTotals {
    pub requests: u64,
    pub server_errors: u64,
    pub latency_us: u64,
}

pub struct Monitor {
    /// Id of this run in the start/stop history.
    pub run_id: Uuid,
    pub started_at: DateTime<Utc>,
    started: Instant,
    data_dir: PathBuf,
    in_flight: AtomicU64,
    minutes: Mutex<VecDeque<MinuteCounts>>,
    /// (when, process CPU seconds) of the previous CPU sample.
    cpu_sample: Mutex<(Instant, Option<f64>)>,
}

impl Monitor {
    pub fn new(data_dir: &Path) -> Arc<Monitor> {
        Arc::new(Monitor {
            run_id: Uuid::now_v7(),
            started_at: Utc::now(),
            started: Instant::now(),
            data_dir: data_dir.to_path_buf(),
            in_flight: AtomicU64::new(0),
            minutes: Mutex::new(VecDeque::new()),
            cpu_sample: Mutex::new((Instant::now(), process_cpu_seconds())),
        })
    }

    pub fn uptime_secs(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    fn record(&self, at: DateTime<Utc>, server_error: bool, latency_us: u64) {
        let minute = at.timestamp().div_euclid(60);
        let Ok(mut minutes) = self.minutes.lock() else {
            return;
        };
        if minutes.back().is_none_or(|m| m.minute != minute) {
            minutes.push_back(MinuteCounts {
                minute,
                ..MinuteCounts::default()
            });
            while minutes.len() > MINUTES_KEPT {
                minutes.pop_front();
            }
        }
        if let Some(m) = minutes.back_mut() {
            m.requests += 1;
            m.server_errors += u64::from(server_error);
            m.latency_us += latency_us;
        }
    }

    /// Requests finished at or after `since`.
    pub fn totals_since(&self, since: DateTime<Utc>) -> RequestTotals {
        let first = since.timestamp().div_euclid(60);
        let Ok(minutes) = self.minutes.lock() else {
            return RequestTotals::default();
        };
        minutes
            .iter()
            .filter(|m| m.minute >= first)
            .fold(RequestTotals::default(), |t, m| RequestTotals {
                requests: t.requests + m.requests,
                server_errors: t.server_errors + m.server_errors,
                latency_us: t.latency_us + m.latency_us,
            })
    }

    /// CPU used by this process since the previous call (or the start), in percent of all
    /// cores.
    pub fn cpu_percent(&self) -> Option<f64> {
        let now_cpu = process_cpu_seconds()?;
        let mut sample = self.cpu_sample.lock().ok()?;
        let (at, before) = *sample;
        *sample = (Instant::now(), Some(now_cpu));
        let wall = at.elapsed().as_secs_f64();
        let before = before?;
        if wall <= 0.0 {
            return None;
        }
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1) as f64;
        Some(((now_cpu - before) / wall / cores * 100.0).clamp(0.0, 100.0))
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

/// Counts every request of both transports with its latency and outcome (part of the edge
/// layer, `app::edge_layer`).
pub async fn around(m: &Monitor, handled: impl Future<Output = Response>) -> Response {
    let started = Instant::now();
    let in_flight = InFlight::enter(m);
    let resp = handled.await;
    drop(in_flight);
    let latency = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    m.record(Utc::now(), resp.status().is_server_error(), latency);
    resp
}

/// Counts a request in flight until dropped, so a request whose client went away (its
/// future dropped mid-way) is not counted forever.
struct InFlight<'a>(&'a Monitor);

impl<'a> InFlight<'a> {
    fn enter(m: &'a Monitor) -> Self {
        m.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(m)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

fn page_size() -> u64 {
    // SAFETY: sysconf only reads a system constant.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(p).unwrap_or(4096)
}

/// User + system CPU seconds of this process, from /proc/self/stat.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces; the fields after its closing parenthesis do not.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ")": state is field 3 of stat(5), so utime (14) and stime (15) are at 11 and 12.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks_per_second())
}

/// Resident memory of this process in bytes, from /proc/self/statm.
pub fn process_rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

/// Host memory in use (MemTotal − MemAvailable) in percent, from /proc/meminfo.
pub fn host_memory_percent() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<f64> {
        info.lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let total = field("MemTotal:")?;
    let available = field("MemAvailable:")?;
    (total > 0.0).then(|| ((total - available) / total * 100.0).clamp(0.0, 100.0))
}

/// Used space of the file system holding `dir`, in percent of what users may fill.
pub fn disk_percent(dir: &Path) -> Option<f64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes into the zeroed struct we own; the path is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let used = (st.f_blocks.saturating_sub(st.f_bfree)) as f64;
    let usable = used + st.f_bavail as f64;
    (usable > 0.0).then(|| (used / usable * 100.0).clamp(0.0, 100.0))
}

/// Bytes received and sent by the host's interfaces other than loopback, from /proc/net/dev.
pub fn network_bytes() -> Option<(u64, u64)> {
    let dev = std::fs::read_to_string("/proc/net/dev").ok()?;
    let mut rx = 0u64;
    let mut tx = 0u64;
    for line in dev.lines().skip(2) {
        let Some((name, data)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = data
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        rx += f.first().copied().unwrap_or(0);
        tx += f.get(8).copied().unwrap_or(0);
    }
    Some((rx, tx))
}
