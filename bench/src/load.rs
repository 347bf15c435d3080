//! `load`: capture traffic for a bounded time, closed loop (fixed concurrency) or open loop
//! (`--rate`), then a read-back of every group the answers named to check that what was
//! acknowledged is what was committed.

use std::{
    collections::{BTreeMap, HashSet},
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Args, ValueEnum};
use futures::{StreamExt, stream};
use hdrhistogram::Histogram;
use prost::Message;
use rand::{SeedableRng, rngs::SmallRng, seq::IndexedRandom};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::time::Instant;
use tonic::client::Grpc;

use crate::{
    codec::{self, PreEncoded},
    common::Target,
    events, h1, h2,
    procinfo::{RssSampler, ServerFigures},
    stats::{self, Latency},
};
use faultline::pb;

/// Requests the committed read-back keeps in flight.
const READ_BACK_IN_FLIGHT: usize = 8;
/// Longest run accepted, whatever --seconds says.
const MAX_SECONDS: u64 = 600;

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// POST /v1/errors/capture, one event per request.
    Rest,
    /// POST /v1/errors/capture/batch, --batch events per request.
    RestBatch,
    /// CaptureService.Capture, one event per call.
    Grpc,
    /// CaptureService.CaptureBatch, --batch events per call.
    GrpcBatch,
}

impl Mode {
    fn batched(self) -> bool {
        matches!(self, Mode::RestBatch | Mode::GrpcBatch)
    }
    fn name(self) -> &'static str {
        match self {
            Mode::Rest => "rest",
            Mode::RestBatch => "rest-batch",
            Mode::Grpc => "grpc",
            Mode::GrpcBatch => "grpc-batch",
        }
    }
}

#[derive(Args, Clone, Debug)]
pub struct LoadArgs {
    /// Transport and call.
    #[arg(long, value_enum, default_value = "rest")]
    pub mode: Mode,
    /// Seconds of load (at most 600).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Concurrent requests in flight (workers).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Open loop: send at this many events per second (requests are scheduled; latency counts
    /// from the scheduled time). Default: closed loop.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Stop after this many requests.
    #[arg(long)]
    pub max_requests: Option<u64>,
    /// Events per request in the batch modes (the server takes at most 1000).
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Groups the events are spread over (new groups every run).
    #[arg(long, default_value_t = 50)]
    pub groups: usize,
    /// Frames per traceback (20 makes events of about 3 KB).
    #[arg(long, default_value_t = 20)]
    pub frames: usize,
    /// Distinct pre-encoded events to cycle through.
    #[arg(long, default_value_t = 1000)]
    pub pool: usize,
    /// gRPC connections (HTTP/2) the workers share round-robin. Default: min(concurrency, 8).
    #[arg(long)]
    pub channels: Option<usize>,
    /// Seconds in-flight requests may take to finish after the load stops.
    #[arg(long, default_value_t = 15)]
    pub drain_seconds: u64,
    /// Skip the committed == acknowledged read-back.
    #[arg(long)]
    pub no_verify: bool,
}

/// What one worker counted.
struct Tally {
    requests: u64,
    acked: u64,
    item_rejected: u64,
    statuses: BTreeMap<String, u64>,
    groups: HashSet<String>,
    hist: Histogram<u64>,
    timeouts: u64,
    first_error: Option<String>,
}

impl Tally {
    fn new() -> Self {
        Tally {
            requests: 0,
            acked: 0,
            item_rejected: 0,
            statuses: BTreeMap::new(),
            groups: HashSet::new(),
            hist: stats::histogram(),
            timeouts: 0,
            first_error: None,
        }
    }

    fn status(&mut self, key: &str) {
        match self.statuses.get_mut(key) {
            Some(n) => *n += 1,
            None => {
                self.statuses.insert(key.to_owned(), 1);
            }
        }
    }

    fn group(&mut self, id: &str) {
        if !id.is_empty() && !self.groups.contains(id) {
            self.groups.insert(id.to_owned());
        }
    }

    fn error(&mut self, e: impl FnOnce() -> String) {
        if self.first_error.is_none() {
            self.first_error = Some(e());
        }
    }

    fn merge(&mut self, o: Tally) {
        self.requests += o.requests;
        self.acked += o.acked;
        self.item_rejected += o.item_rejected;
        self.timeouts += o.timeouts;
        for (k, v) in o.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        self.groups.extend(o.groups);
        self.hist.add(&o.hist).expect("same histogram bounds");
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
    }
}

/// How long a closed-loop worker waits after a request that got no answer at all.
const TRANSPORT_BACKOFF: Duration = Duration::from_millis(100);

/// How requests are sent.
#[derive(Clone)]
enum Sender {
    Rest {
        route: h1::Route,
        bodies: Arc<Vec<Bytes>>,
        batch: bool,
    },
    Grpc {
        grpcs: Arc<Vec<Grpc<h2::Connection>>>,
        auth: tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
        bodies: Arc<Vec<Bytes>>,
        batch: bool,
    },
}

#[derive(Deserialize)]
struct RestAnswer {
    #[serde(default)]
    ok: bool,
    #[serde(default)]
    group_id: String,
}

#[derive(Deserialize)]
struct RestBatchItemError {
    #[serde(default)]
    code: String,
}

#[derive(Deserialize)]
struct RestBatchItem {
    #[serde(default)]
    ok: bool,
    #[serde(default)]
    group_id: String,
    #[serde(default)]
    error: Option<RestBatchItemError>,
}

#[derive(Deserialize)]
struct RestBatchAnswer {
    #[serde(default)]
    results: Vec<RestBatchItem>,
}

impl Sender {
    /// Sends request number `i` (from worker `w`, over its connection `conn` when REST) and
    /// counts its outcome. Returns whether it failed in transport (no answer at all).
    async fn send(&self, i: u64, w: usize, conn: Option<&mut h1::Conn>, t: &mut Tally) -> bool {
        match self {
            Sender::Rest { bodies, batch, .. } => {
                let body = bodies[(i % bodies.len() as u64) as usize].clone();
                let Some(conn) = conn else {
                    t.status("error: transport");
                    t.error(|| "no connection".to_owned());
                    return true;
                };
                let (status, bytes) = match conn.post(body).await {
                    Ok(answer) => answer,
                    Err(e) => {
                        t.status("error: transport");
                        t.error(|| format!("transport: {e:#}"));
                        return true;
                    }
                };
                t.status(status.as_str());
                if !status.is_success() {
                    t.error(|| format!("{status}: {}", String::from_utf8_lossy(&bytes)));
                    return false;
                }
                if *batch {
                    match serde_json::from_slice::<RestBatchAnswer>(&bytes) {
                        Ok(a) => {
                            for r in a.results {
                                if r.ok {
                                    t.acked += 1;
                                    t.group(&r.group_id);
                                } else {
                                    t.item_rejected += 1;
                                    let code = r.error.map(|e| e.code).unwrap_or_default();
                                    t.status(&format!("item {code}"));
                                }
                            }
                        }
                        Err(e) => {
                            t.status("error: answer");
                            t.error(|| format!("unreadable batch answer: {e}"));
                        }
                    }
                } else {
                    match serde_json::from_slice::<RestAnswer>(&bytes) {
                        Ok(a) if a.ok => {
                            t.acked += 1;
                            t.group(&a.group_id);
                        }
                        Ok(_) => t.status("error: ok=false"),
                        Err(e) => {
                            t.status("error: answer");
                            t.error(|| format!("unreadable answer: {e}"));
                        }
                    }
                }
            }
            Sender::Grpc {
                grpcs,
                auth,
                bodies,
                batch,
            } => {
                let mut grpc = grpcs[w % grpcs.len()].clone();
                let body = bodies[(i % bodies.len() as u64) as usize].clone();
                let mut req = tonic::Request::new(body);
                req.metadata_mut().insert("authorization", auth.clone());
                // Always ready: a closed connection is opened again by the request itself.
                let _ = grpc.ready().await;
                if *batch {
                    let path = http::uri::PathAndQuery::from_static(codec::CAPTURE_BATCH);
                    match grpc
                        .unary(req, path, PreEncoded::<pb::CaptureBatchResponse>::default())
                        .await
                    {
                        Ok(resp) => {
                            t.status("grpc OK");
                            for r in resp.into_inner().results {
                                match r.outcome {
                                    Some(pb::capture_batch_result::Outcome::Captured(c)) => {
                                        t.acked += 1;
                                        t.group(&c.group_id);
                                    }
                                    Some(pb::capture_batch_result::Outcome::Error(e)) => {
                                        t.item_rejected += 1;
                                        t.status(&format!("item {}", e.code));
                                    }
                                    None => {
                                        t.item_rejected += 1;
                                        t.status("item <none>");
                                    }
                                }
                            }
                        }
                        Err(s) => return grpc_error(t, s),
                    }
                } else {
                    let path = http::uri::PathAndQuery::from_static(codec::CAPTURE);
                    match grpc
                        .unary(req, path, PreEncoded::<pb::CaptureResponse>::default())
                        .await
                    {
                        Ok(resp) => {
                            t.status("grpc OK");
                            t.acked += 1;
                            t.group(&resp.get_ref().group_id);
                        }
                        Err(s) => return grpc_error(t, s),
                    }
                }
            }
        }
        false
    }
}

/// Counts a failed call; whether it failed in transport (no answer from the server at all).
fn grpc_error(t: &mut Tally, s: tonic::Status) -> bool {
    use std::error::Error;
    if s.source().is_some_and(|e| e.is::<h2::TransportError>()) {
        t.status("error: transport");
        t.error(|| format!("transport: {}", s.message()));
        return true;
    }
    t.status(&format!("grpc {:?}", s.code()));
    t.error(|| format!("gRPC {:?}: {}", s.code(), s.message()));
    false
}

/// Builds the pool of encoded request bodies before the timed phase.
fn build_pool(args: &LoadArgs, spec: &events::Spec) -> (Vec<Bytes>, usize) {
    let mut rng = SmallRng::from_os_rng();
    let n = args.pool.max(1);
    let events: Vec<events::Event> = (0..n).map(|i| spec.event(&mut rng, i)).collect();
    let per = if args.mode.batched() {
        args.batch.max(1)
    } else {
        1
    };
    let event_bytes: usize = match args.mode {
        Mode::Rest | Mode::RestBatch => events.iter().map(|e| e.json().len()).sum(),
        Mode::Grpc | Mode::GrpcBatch => events.iter().map(|e| e.pb().encoded_len()).sum(),
    };
    let avg = event_bytes / n;
    let bodies: Vec<Bytes> = match args.mode {
        Mode::Rest => events.iter().map(|e| Bytes::from(e.json())).collect(),
        Mode::Grpc => events
            .iter()
            .map(|e| Bytes::from(e.pb().encode_to_vec()))
            .collect(),
        Mode::RestBatch | Mode::GrpcBatch => {
            // Enough distinct batches to cycle through without holding hundreds of MB.
            let count = (20_000 / per).clamp(8, 1000);
            (0..count)
                .map(|_| {
                    let picked: Vec<&events::Event> =
                        (0..per).map(|_| events.choose(&mut rng).unwrap()).collect();
                    if args.mode == Mode::RestBatch {
                        let v = json!({ "events": picked });
                        Bytes::from(serde_json::to_vec(&v).unwrap())
                    } else {
                        let req = pb::CaptureBatchRequest {
                            events: picked.iter().map(|e| e.pb()).collect(),
                        };
                        Bytes::from(req.encode_to_vec())
                    }
                })
                .collect()
        }
    };
    (bodies, avg)
}

#[derive(Serialize)]
struct LoadResult {
    mode: Mode,
    target: String,
    run_id: String,
    concurrency: usize,
    rate: Option<f64>,
    batch: usize,
    groups: usize,
    event_bytes: usize,
    duration_s: f64,
    requests: u64,
    unsent_backlog: u64,
    events_acked: u64,
    items_rejected: u64,
    acked_events_per_s: f64,
    statuses: BTreeMap<String, u64>,
    latency: Latency,
    groups_seen: usize,
    events_committed: Option<u64>,
    committed_events_per_s: Option<f64>,
    committed_matches_acked: Option<bool>,
    /// KiB the server wrote to storage per acknowledged event (`server.written_bytes`).
    written_kib_per_event: Option<f64>,
    server: ServerFigures,
}

pub async fn run(target: Target, args: LoadArgs) -> anyhow::Result<ExitCode> {
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if args.seconds == 0 {
        bail!("--seconds must be at least 1");
    }
    if args.mode.batched() && !(1..=1000).contains(&args.batch) {
        bail!("--batch must be 1..=1000");
    }
    if let Some(r) = args.rate
        && !(r.is_finite() && r > 0.0)
    {
        bail!("--rate must be a positive number of events per second");
    }
    let seconds = if args.seconds > MAX_SECONDS {
        eprintln!("--seconds {} capped at {MAX_SECONDS}", args.seconds);
        MAX_SECONDS
    } else {
        args.seconds
    };

    // Only the preflight and the read-back use it (the load goes through `h1` and `h2`).
    let http = target.http_client(READ_BACK_IN_FLIGHT)?;
    target.preflight(&http).await?;

    let spec = events::Spec {
        run_id: events::run_id(),
        groups: args.groups.max(1),
        frames: args.frames.max(1),
        lib_frames: true,
        words: false,
    };
    let (bodies, event_bytes) = build_pool(&args, &spec);
    let bodies = Arc::new(bodies);
    let per_request = if args.mode.batched() { args.batch } else { 1 };

    let sender = match args.mode {
        Mode::Rest | Mode::RestBatch => Sender::Rest {
            route: h1::Route::new(
                &target,
                if args.mode == Mode::Rest {
                    "/v1/errors/capture"
                } else {
                    "/v1/errors/capture/batch"
                },
            )?,
            bodies,
            batch: args.mode.batched(),
        },
        Mode::Grpc | Mode::GrpcBatch => {
            let n = args
                .channels
                .unwrap_or(args.concurrency.min(8))
                .clamp(1, args.concurrency);
            let connections =
                futures::future::try_join_all((0..n).map(|_| h2::connect(&target))).await?;
            Sender::Grpc {
                grpcs: Arc::new(connections),
                auth: target.grpc_auth()?,
                bodies,
                batch: args.mode.batched(),
            }
        }
    };

    // Open the REST connections, one per worker, before the clock starts.
    let conns: Vec<Option<h1::Conn>> = match &sender {
        Sender::Rest { route, .. } => {
            let opened =
                futures::future::join_all((0..args.concurrency).map(|_| route.connect())).await;
            opened
                .into_iter()
                .map(|c| c.map(Some))
                .collect::<anyhow::Result<_>>()
                .context("opening connections")?
        }
        Sender::Grpc { .. } => (0..args.concurrency).map(|_| None).collect(),
    };

    let pid = target.find_server_pid();
    println!(
        "load: mode {} against {}, concurrency {}, {}, {} s, events of ~{} B over {} groups (run {}), {} pre-encoded bodies; server pid {}",
        args.mode.name(),
        target.base,
        args.concurrency,
        match args.rate {
            Some(r) => format!("open loop at {r} events/s"),
            None => "closed loop".to_string(),
        },
        seconds,
        event_bytes,
        spec.groups,
        spec.run_id,
        bodies_len(&sender),
        pid.map(|p| p.to_string())
            .unwrap_or_else(|| "unknown".into()),
    );

    let sampler = RssSampler::start(pid);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let hard_stop = deadline + Duration::from_secs(args.drain_seconds);
    let max_requests = args.max_requests.unwrap_or(u64::MAX);
    // Seconds between request starts in the open loop.
    let interval = args.rate.map(|r| per_request as f64 / r);
    let next = Arc::new(AtomicU64::new(0));

    let mut workers = Vec::with_capacity(args.concurrency);
    for (w, mut conn) in conns.into_iter().enumerate() {
        let sender = sender.clone();
        let next = next.clone();
        workers.push(tokio::spawn(async move {
            let mut t = Tally::new();
            loop {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= max_requests {
                    break;
                }
                let t0 = match interval {
                    Some(iv) => {
                        let at = start + Duration::from_secs_f64(iv * i as f64);
                        if at >= deadline {
                            break;
                        }
                        tokio::time::sleep_until(at).await;
                        at
                    }
                    None => now,
                };
                t.requests += 1;
                match tokio::time::timeout_at(hard_stop, sender.send(i, w, conn.as_mut(), &mut t))
                    .await
                {
                    Ok(failed) => {
                        stats::record(&mut t.hist, t0.elapsed());
                        // A closed loop would otherwise retry at once, as fast as the failure
                        // comes back (a refused or dead connection fails in microseconds),
                        // and spend the machine's CPU doing so.
                        if failed && interval.is_none() {
                            tokio::time::sleep(TRANSPORT_BACKOFF).await;
                        }
                    }
                    Err(_) => {
                        t.timeouts += 1;
                        t.status("error: timeout");
                    }
                }
            }
            t
        }));
    }

    let progress = {
        let next = next.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            tick.tick().await;
            loop {
                tick.tick().await;
                let n = next.load(Ordering::Relaxed).min(max_requests);
                eprintln!(
                    "  {:>5.1} s: {} requests started",
                    start.elapsed().as_secs_f64(),
                    n
                );
            }
        })
    };

    let mut total = Tally::new();
    for w in workers {
        total.merge(w.await.context("a worker panicked")?);
    }
    let elapsed = start.elapsed().as_secs_f64();
    progress.abort();
    let server = sampler.finish().await;

    // Requests the open loop had scheduled before the deadline but never started.
    let unsent_backlog = match interval {
        Some(iv) => {
            let scheduled = ((seconds as f64 / iv).ceil() as u64).min(max_requests);
            scheduled.saturating_sub(total.requests)
        }
        None => 0,
    };

    let latency = Latency::of(&total.hist);
    let acked_rate = total.acked as f64 / elapsed;

    println!();
    println!("duration           {elapsed:.2} s");
    println!(
        "requests           {} ({} events each){}",
        total.requests,
        per_request,
        if unsent_backlog > 0 {
            format!(", {unsent_backlog} scheduled but never started (server too slow for --rate)")
        } else {
            String::new()
        }
    );
    println!("events acked       {}", total.acked);
    if total.item_rejected > 0 {
        println!("items rejected     {}", total.item_rejected);
    }
    println!("events/s accepted  {acked_rate:.0}");
    println!(
        "statuses           {}",
        total
            .statuses
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "latency/request    p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms{}",
        latency.p50_ms,
        latency.p90_ms,
        latency.p99_ms,
        latency.max_ms,
        if interval.is_some() {
            " (from the scheduled send time)"
        } else {
            ""
        }
    );
    if let Some(e) = &total.first_error {
        println!("first error        {}", truncate(e, 300));
    }

    let mut ok = true;
    let (committed, committed_rate, matches) = if args.no_verify {
        (None, None, None)
    } else {
        let committed = committed_count(&http, &target, &total.groups).await?;
        let matches = committed == total.acked;
        println!(
            "events committed   {committed} in {} groups (read back from group_detail)",
            total.groups.len()
        );
        println!("events/s committed {:.0}", committed as f64 / elapsed);
        if matches {
            println!("committed == acked: yes");
        } else {
            ok = false;
            println!();
            println!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
            println!(
                "!!! MISMATCH: {} events acknowledged but {committed} committed in their groups",
                total.acked
            );
            if total.timeouts > 0 || total.statuses.keys().any(|k| k.starts_with("error")) {
                println!(
                    "!!! ({} requests timed out or failed in transport; their events may have been committed unacknowledged)",
                    total.timeouts
                        + total
                            .statuses
                            .iter()
                            .filter(|(k, _)| k.starts_with("error") && *k != "error: timeout")
                            .map(|(_, v)| v)
                            .sum::<u64>()
                );
            }
            println!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
        }
        (
            Some(committed),
            Some(committed as f64 / elapsed),
            Some(matches),
        )
    };
    server.print();

    let result = LoadResult {
        mode: args.mode,
        target: target.base.clone(),
        run_id: spec.run_id.clone(),
        concurrency: args.concurrency,
        rate: args.rate,
        batch: per_request,
        groups: spec.groups,
        event_bytes,
        duration_s: round3(elapsed),
        requests: total.requests,
        unsent_backlog,
        events_acked: total.acked,
        items_rejected: total.item_rejected,
        acked_events_per_s: round3(acked_rate),
        statuses: total.statuses.clone(),
        latency,
        groups_seen: total.groups.len(),
        events_committed: committed,
        committed_events_per_s: committed_rate.map(round3),
        committed_matches_acked: matches,
        written_kib_per_event: server
            .written_bytes
            .filter(|_| total.acked > 0)
            .map(|b| (b as f64 / 1024.0 / total.acked as f64 * 10.0).round() / 10.0),
        server,
    };
    println!("RESULT {}", serde_json::to_string(&result)?);
    if total.acked == 0 {
        eprintln!("faultline-bench: no event was acknowledged");
        return Ok(ExitCode::from(1));
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn bodies_len(s: &Sender) -> usize {
    match s {
        Sender::Rest { bodies, .. } | Sender::Grpc { bodies, .. } => bodies.len(),
    }
}

/// Sums `count` over GET /v1/errors/group_detail/{id} for every group.
pub async fn committed_count(
    http: &reqwest::Client,
    target: &Target,
    groups: &HashSet<String>,
) -> anyhow::Result<u64> {
    #[derive(Deserialize)]
    struct Detail {
        count: u64,
    }
    let counts: Vec<anyhow::Result<u64>> = stream::iter(groups.iter())
        .map(|id| async move {
            let resp = http
                .get(target.url(&format!("/v1/errors/group_detail/{id}")))
                .timeout(Duration::from_secs(60))
                .send()
                .await?;
            let status = resp.status();
            if !status.is_success() {
                bail!(
                    "GET group_detail/{id} answered {status}: {}",
                    resp.text().await.unwrap_or_default()
                );
            }
            Ok(resp.json::<Detail>().await?.count)
        })
        .buffer_unordered(READ_BACK_IN_FLIGHT)
        .collect()
        .await;
    let mut sum = 0;
    for c in counts {
        sum += c?;
    }
    Ok(sum)
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}
