//! `seed`: many events fast through CaptureBatch (gRPC, the generated client), spread over
//! groups with a skew (a few large groups, a long tail) and over the last 7 days, with
//! searchable words in the messages.

use std::{
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, bail};
use clap::Args;
use faultline::pb::{self, capture_service_client::CaptureServiceClient};
use prost::Message;
use rand::{Rng, SeedableRng, rngs::SmallRng};
use serde::Serialize;
use tokio::time::Instant;

use crate::{
    common::Target,
    events,
    procinfo::{RssSampler, ServerFigures},
};

#[derive(Args, Clone, Debug)]
pub struct SeedArgs {
    /// Events to load.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Groups to spread them over (skewed: group 0 is the largest).
    #[arg(long, default_value_t = 5000)]
    pub groups: usize,
    /// Events per CaptureBatch call (at most 1000). Lowered when a call would exceed
    /// --body-limit.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// The server's --body-limit in bytes (largest gRPC message it takes).
    #[arg(long, default_value_t = 1024 * 1024)]
    pub body_limit: usize,
    /// Calls in flight.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// In-app frames per traceback (4 makes events of about 900 B, so 1000-event batches stay
    /// under 1 MiB).
    #[arg(long, default_value_t = 4)]
    pub frames: usize,
    /// Days back the event timestamps are spread over.
    #[arg(long, default_value_t = 7)]
    pub days: u64,
}

#[derive(Serialize)]
struct SeedResult {
    target: String,
    run_id: String,
    events_requested: u64,
    events_acked: u64,
    items_rejected: u64,
    failed_calls: u64,
    groups: usize,
    batch: usize,
    concurrency: usize,
    event_bytes: usize,
    duration_s: f64,
    events_per_s: f64,
    server: ServerFigures,
}

pub async fn run(target: Target, args: SeedArgs) -> anyhow::Result<ExitCode> {
    if !(1..=1000).contains(&args.batch) {
        bail!("--batch must be 1..=1000");
    }
    if args.concurrency == 0 || args.groups == 0 || args.events == 0 {
        bail!("--concurrency, --groups and --events must be at least 1");
    }
    let http = target.http_client(2)?;
    target.preflight(&http).await?;
    let spec = events::Spec {
        run_id: events::run_id(),
        groups: args.groups,
        frames: args.frames.max(1),
        lib_frames: false,
        words: true,
    };
    // Keep each call under the server's message limit (with 10% to spare for the
    // largest events); a call over it fails whole.
    let mut rng = SmallRng::from_os_rng();
    let sample: Vec<pb::CaptureRequest> = (0..500).map(|i| spec.event(&mut rng, i).pb()).collect();
    let event_bytes = sample.iter().map(|e| e.encoded_len() + 3).sum::<usize>() / sample.len();
    let max_event = sample
        .iter()
        .map(|e| e.encoded_len() + 3)
        .max()
        .unwrap_or(1);
    let fits = (args.body_limit * 9 / 10 / max_event).max(1);
    let batch = if args.batch > fits {
        eprintln!(
            "note: --batch {} lowered to {fits}: events are up to {max_event} B and the server takes \
             messages up to {} B (--body-limit)",
            args.batch, args.body_limit
        );
        fits
    } else {
        args.batch
    };

    let n_channels = args.concurrency.min(8);
    let channels = target.grpc_channels(n_channels).await?;
    let auth = target.grpc_auth()?;
    let pid = target.find_server_pid();
    println!(
        "seed: {} events over {} groups (run {}), batches of {}, {} in flight, events of ~{} B, \
         timestamps over the last {} days; server pid {}",
        args.events,
        args.groups,
        spec.run_id,
        batch,
        args.concurrency,
        event_bytes,
        args.days,
        pid.map(|p| p.to_string())
            .unwrap_or_else(|| "unknown".into())
    );

    let batches = args.events.div_ceil(batch as u64);
    let next = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(AtomicU64::new(0));
    let rejected = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let now_s = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
    let span_s = (args.days * 86_400) as f64;
    let sampler = RssSampler::start(pid);
    let start = Instant::now();

    let mut workers = Vec::new();
    for w in 0..args.concurrency {
        let mut client = CaptureServiceClient::new(channels[w % channels.len()].clone())
            .max_decoding_message_size(64 * 1024 * 1024);
        let (next, acked, rejected, failed) = (
            next.clone(),
            acked.clone(),
            rejected.clone(),
            failed.clone(),
        );
        let (spec, auth) = (spec.clone(), auth.clone());
        let (events, batch, groups) = (args.events, batch as u64, args.groups);
        workers.push(tokio::spawn(async move {
            let mut rng = SmallRng::from_os_rng();
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= batches {
                    return Ok::<(), anyhow::Error>(());
                }
                let n = batch.min(events - b * batch);
                let req = pb::CaptureBatchRequest {
                    events: (0..n)
                        .map(|_| {
                            // u² skews towards group 0: it gets ~sqrt(1/groups) of the events.
                            let u: f64 = rng.random();
                            let g = ((u * u) * groups as f64) as usize;
                            let mut e = spec.event(&mut rng, g.min(groups - 1));
                            let at = now_s - rng.random::<f64>() * span_s;
                            e.timestamp_pb = Some(prost_types::Timestamp {
                                seconds: at.floor() as i64,
                                nanos: ((at.fract()) * 1e9) as i32,
                            });
                            e.pb()
                        })
                        .collect(),
                };
                let mut tries = 0;
                loop {
                    tries += 1;
                    let mut r = tonic::Request::new(req.clone());
                    r.metadata_mut().insert("authorization", auth.clone());
                    match client.capture_batch(r).await {
                        Ok(resp) => {
                            let resp = resp.into_inner();
                            acked.fetch_add(resp.accepted as u64, Ordering::Relaxed);
                            rejected.fetch_add(resp.rejected as u64, Ordering::Relaxed);
                            break;
                        }
                        Err(s)
                            if s.code() == tonic::Code::ResourceExhausted
                                || s.code() == tonic::Code::Unavailable =>
                        {
                            // The queue is full: nothing was stored; wait and send again.
                            tokio::time::sleep(Duration::from_millis(20 * tries.min(50))).await;
                        }
                        Err(s) => {
                            // Anything else is a bug or a broken server: a few tries, then stop.
                            if failed.fetch_add(1, Ordering::Relaxed) + 1 >= 10 || tries >= 3 {
                                next.store(batches, Ordering::Relaxed);
                                bail!(
                                    "CaptureBatch failed ({} failed calls so far): {:?} {}",
                                    failed.load(Ordering::Relaxed),
                                    s.code(),
                                    s.message()
                                );
                            }
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                }
            }
        }));
    }

    let progress = {
        let acked = acked.clone();
        let total = args.events;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            tick.tick().await;
            let mut last = (Instant::now(), 0u64);
            loop {
                tick.tick().await;
                let a = acked.load(Ordering::Relaxed);
                let now = Instant::now();
                let recent = (a - last.1) as f64 / (now - last.0).as_secs_f64();
                eprintln!(
                    "  {:>6.1} s: {a} / {total} events ({:.1}%), {recent:.0} events/s now, {:.0} overall",
                    start.elapsed().as_secs_f64(),
                    a as f64 * 100.0 / total as f64,
                    a as f64 / start.elapsed().as_secs_f64()
                );
                last = (now, a);
            }
        })
    };
    for w in workers {
        w.await.context("a seed worker panicked")??;
    }
    progress.abort();
    let elapsed = start.elapsed().as_secs_f64();
    let server = sampler.finish().await;
    let acked = acked.load(Ordering::Relaxed);
    let rejected = rejected.load(Ordering::Relaxed);
    let failed = failed.load(Ordering::Relaxed);
    println!();
    println!(
        "seeded {acked} events ({rejected} rejected, {failed} failed calls) in {elapsed:.1} s: {:.0} events/s",
        acked as f64 / elapsed
    );
    server.print();
    let result = SeedResult {
        target: target.base.clone(),
        run_id: spec.run_id,
        events_requested: args.events,
        events_acked: acked,
        items_rejected: rejected,
        failed_calls: failed,
        groups: args.groups,
        batch,
        concurrency: args.concurrency,
        event_bytes,
        duration_s: (elapsed * 1000.0).round() / 1000.0,
        events_per_s: (acked as f64 / elapsed).round(),
        server,
    };
    println!("RESULT {}", serde_json::to_string(&result)?);
    Ok(if acked == args.events {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
