//! The server's process as Linux shows it: which pid listens on a port, its resident memory
//! and its CPU time.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

/// Clock ticks per second of /proc/*/stat times (USER_HZ; 100 on every mainstream Linux).
const CLK_TCK: f64 = 100.0;

/// The pid owning the LISTEN socket on `port` (any address, IPv4 or IPv6).
pub fn pid_listening_on(port: u16) -> Option<u32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != "0A" {
                continue;
            }
            let Some((_, port_hex)) = f[1].rsplit_once(':') else {
                continue;
            };
            if u16::from_str_radix(port_hex, 16).ok() == Some(port) && f[9] != "0" {
                inodes.push(format!("socket:[{}]", f[9]));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    let procs = std::fs::read_dir("/proc").ok()?;
    for p in procs.flatten() {
        let name = p.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(link) = std::fs::read_link(fd.path())
                && let Some(l) = link.to_str()
                && inodes.iter().any(|i| i == l)
            {
                return Some(pid);
            }
        }
    }
    None
}

/// The number after `field:` in /proc/<pid>/<file>, whose lines read `Field: 123 [unit]`.
fn proc_field(pid: u32, file: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// A `kB` field of /proc/<pid>/status (VmRSS, VmHWM), in KiB.
pub fn status_kb(pid: u32, field: &str) -> Option<u64> {
    proc_field(pid, "status", field)
}

/// User + system CPU seconds of a process (`self` for this one).
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / CLK_TCK)
}

/// Bytes a process has caused to be written to storage (`write_bytes` of /proc/<pid>/io: its
/// writes as they reach the page cache, whenever the kernel flushes them).
pub fn written_bytes(pid: u32) -> Option<u64> {
    proc_field(pid, "io", "write_bytes")
}

/// Samples a process's VmRSS every 100 ms until stopped; keeps the maximum.
pub struct RssSampler {
    pub pid: Option<u32>,
    peak_kb: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<()>>,
    cpu_start: Option<f64>,
    self_cpu_start: Option<f64>,
    written_start: Option<u64>,
    started: std::time::Instant,
}

/// What the sampler saw.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ServerFigures {
    pub pid: Option<u32>,
    /// Largest VmRSS seen during the run, in MiB.
    pub peak_rss_mib: Option<f64>,
    /// VmHWM (the kernel's own peak RSS over the process's whole life) at the end, in MiB.
    pub vm_hwm_mib: Option<f64>,
    /// VmRSS at the end, in MiB.
    pub end_rss_mib: Option<f64>,
    /// Server CPU over the run, in % of one core.
    pub server_cpu_pct: Option<f64>,
    /// This tool's CPU over the run, in % of one core.
    pub bench_cpu_pct: Option<f64>,
    /// Bytes the server wrote to storage over the run (its database file and WAL on SQLite;
    /// with PostgreSQL, PostgreSQL's own writes are not in it).
    pub written_bytes: Option<u64>,
}

impl RssSampler {
    pub fn start(pid: Option<u32>) -> Self {
        let peak_kb = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let task = pid.map(|pid| {
            let (peak_kb, stop) = (peak_kb.clone(), stop.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    if let Some(kb) = status_kb(pid, "VmRSS") {
                        peak_kb.fetch_max(kb, Ordering::Relaxed);
                    }
                }
            })
        });
        RssSampler {
            pid,
            peak_kb,
            stop,
            task,
            cpu_start: pid.and_then(|p| cpu_seconds(&p.to_string())),
            self_cpu_start: cpu_seconds("self"),
            written_start: pid.and_then(written_bytes),
            started: std::time::Instant::now(),
        }
    }

    pub async fn finish(mut self) -> ServerFigures {
        let wall = self.started.elapsed().as_secs_f64().max(1e-9);
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        let mib = |kb: u64| (kb as f64 / 1024.0 * 10.0).round() / 10.0;
        let pct = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(((b - a) / wall * 1000.0).round() / 10.0),
            _ => None,
        };
        let pid = self.pid;
        let end_rss = pid.and_then(|p| status_kb(p, "VmRSS"));
        if let Some(kb) = end_rss {
            self.peak_kb.fetch_max(kb, Ordering::Relaxed);
        }
        let peak = self.peak_kb.load(Ordering::Relaxed);
        ServerFigures {
            pid,
            peak_rss_mib: (peak > 0).then(|| mib(peak)),
            vm_hwm_mib: pid.and_then(|p| status_kb(p, "VmHWM")).map(mib),
            end_rss_mib: end_rss.map(mib),
            server_cpu_pct: pct(
                self.cpu_start,
                pid.and_then(|p| cpu_seconds(&p.to_string())),
            ),
            bench_cpu_pct: pct(self.self_cpu_start, cpu_seconds("self")),
            written_bytes: match (self.written_start, pid.and_then(written_bytes)) {
                (Some(a), Some(b)) => Some(b.saturating_sub(a)),
                _ => None,
            },
        }
    }
}

impl ServerFigures {
    pub fn print(&self) {
        let f = |v: Option<f64>, unit: &str| match v {
            Some(v) => format!("{v:.1} {unit}"),
            None => "n/a".to_string(),
        };
        match self.pid {
            Some(pid) => println!(
                "server pid {pid}: peak RSS {} (sampled every 100 ms), VmHWM {}, RSS at end {}; \
                 CPU: server {}, bench {} (100% = one core); written to storage {}",
                f(self.peak_rss_mib, "MiB"),
                f(self.vm_hwm_mib, "MiB"),
                f(self.end_rss_mib, "MiB"),
                f(self.server_cpu_pct, "%"),
                f(self.bench_cpu_pct, "%"),
                f(self.written_bytes.map(|b| b as f64 / 1048576.0), "MiB"),
            ),
            None => println!(
                "server pid: not found (no local process listens on the port; give --server-pid); \
                 bench CPU {}",
                f(self.bench_cpu_pct, "%")
            ),
        }
    }
}
