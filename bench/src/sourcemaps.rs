//! `source-maps`: what placing events in the original source costs the capture path. Builds a
//! synthetic bundle (one long minified line) and its source map of about `--map-mib`, uploads
//! both to a release of its own, then sends single REST captures one at a time: the first
//! event of the release (the server reads and decodes the map), then `--samples` more with
//! frames at random places in the bundle (the decoded map is reused), as many at the first
//! event's places again (one error arriving again), then as many of a release with no map, for
//! comparison. Prints the latencies and the server's memory before and after.

use std::{process::ExitCode, time::Duration};

use anyhow::{Context, bail};
use clap::Args;
use rand::Rng;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::{
    common::Target,
    procinfo,
    stats::{self, Latency},
};

#[derive(Args, Clone, Debug)]
pub struct SourceMapArgs {
    /// About how large the source map is, in MiB (at most 20, the server's limit per file).
    #[arg(long, default_value_t = 16)]
    pub map_mib: usize,
    /// Events timed after the first one, for each of the two releases.
    #[arg(long, default_value_t = 200)]
    pub samples: usize,
    /// Frames per event, each at a random place in the bundle.
    #[arg(long, default_value_t = 5)]
    pub frames: usize,
}

/// Source lines per synthetic source file.
const LINES_PER_FILE: u32 = 1000;
/// One minified statement, and the span of bundle each mapping covers.
const STATEMENT: &str = "var a=b;";

/// A bundle of one line and its source map, about `bytes` long: (map, bundle, mappings).
fn build(bytes: usize) -> (Vec<u8>, String, u32) {
    let mut b = sourcemap::SourceMapBuilder::new(Some("app.min.js"));
    let mut tokens: u32 = 0;
    let mut file = 0;
    // About 52 bytes of source text (JSON-escaped) and 6 of mappings per line.
    while (file as usize) * (LINES_PER_FILE as usize) * 58 < bytes {
        let name = format!("webpack://bench/src/module{file}.ts");
        let src = b.add_source(&name);
        let content: String = (0..LINES_PER_FILE)
            .map(|l| format!("  const value{l} = compute(input, {l}); // line {l}\n"))
            .collect();
        b.set_source_contents(src, Some(&content));
        for line in 0..LINES_PER_FILE {
            let col = tokens * STATEMENT.len() as u32;
            b.add(0, col, line, 2, Some(&name), None, false);
            tokens += 1;
        }
        file += 1;
    }
    let bundle = STATEMENT.repeat(tokens as usize);
    let mut map = Vec::new();
    b.into_sourcemap()
        .to_writer(&mut map)
        .expect("a source map writes to memory");
    (map, bundle, tokens)
}

fn rss_mib(pid: Option<u32>, field: &str) -> Option<f64> {
    pid.and_then(|p| procinfo::status_kb(p, field))
        .map(|kb| kb as f64 / 1024.0)
}

pub async fn run(target: Target, args: SourceMapArgs) -> anyhow::Result<ExitCode> {
    if args.map_mib == 0 || args.map_mib > 20 {
        bail!("--map-mib must be from 1 to 20");
    }
    let http = target.http_client(1)?;
    target.preflight(&http).await?;
    let pid = target.find_server_pid();
    let run_id: u32 = rand::rng().random();
    let release = format!("bench-sm-{run_id:08x}");
    let plain_release = format!("bench-plain-{run_id:08x}");
    let url = format!("https://bench.example/static/app.{run_id:08x}.min.js");

    let t = Instant::now();
    let (map, bundle, tokens) = build(args.map_mib << 20);
    println!(
        "built a {:.1} MiB map of a {:.1} MiB bundle ({tokens} mappings) in {:.1} s",
        map.len() as f64 / 1048576.0,
        bundle.len() as f64 / 1048576.0,
        t.elapsed().as_secs_f64()
    );
    let path = &url[url.find("/static").expect("the URL has /static")..];
    for (name, body) in [
        (format!("~{path}.map"), map.clone()),
        (format!("~{path}"), bundle.into_bytes()),
    ] {
        let resp = http
            .post(target.url(&format!(
                "/v1/errors/releases/{release}/files?name={}",
                url::form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()
            )))
            .timeout(Duration::from_secs(120))
            .body(body)
            .send()
            .await
            .with_context(|| format!("upload {name}"))?;
        if !resp.status().is_success() {
            bail!(
                "uploading {name} answered {}: {}",
                resp.status(),
                resp.text().await.unwrap_or_default()
            );
        }
    }
    let rss_before = rss_mib(pid, "VmRSS");

    let random_frames = || -> Vec<Value> {
        (0..args.frames)
            .map(|_| {
                let token = rand::rng().random_range(0..tokens);
                json!({"filename": url, "function": "a", "lineno": 1,
                       "colno": token * STATEMENT.len() as u32 + 3})
            })
            .collect()
    };
    let capture = |release: String, frames: Vec<Value>| {
        let (http, target) = (&http, &target);
        async move {
            let body = json!({"release": release, "platform": "javascript",
                "exception": {"type": "TypeError", "message": "b is undefined", "stacktrace": frames}});
            let start = Instant::now();
            let resp = http
                .post(target.url("/v1/errors/capture"))
                .timeout(Duration::from_secs(120))
                .json(&body)
                .send()
                .await
                .context("capture")?;
            let status = resp.status();
            let answer: Value = resp.json().await.context("capture answer")?;
            if !status.is_success() {
                bail!("capture answered {status}: {answer}");
            }
            anyhow::Ok((start.elapsed(), answer))
        }
    };

    let first_frames = random_frames();
    let (first, answer) = capture(release.clone(), first_frames.clone()).await?;
    let id = answer["event_id"].as_str().unwrap_or_default().to_owned();
    let event: Value = http
        .get(target.url(&format!("/v1/errors/get/{id}")))
        .timeout(Duration::from_secs(60))
        .send()
        .await?
        .json()
        .await?;
    let placed = event["exception"]["frames"]
        .as_array()
        .is_some_and(|f| f.iter().all(|f| f.get("minified").is_some()));
    if !placed {
        println!("NOT PLACED: the first event's frames arrived as sent: {event}");
        return Ok(ExitCode::from(1));
    }
    let rss_decoded = rss_mib(pid, "VmRSS");

    // `same`: the first event's frames every time, as one error arriving again and again.
    let timed = |n: usize, release: String, same: bool| {
        let (capture, random_frames, first_frames) = (&capture, &random_frames, &first_frames);
        async move {
            let mut h = stats::histogram();
            for _ in 0..n {
                let frames = if same {
                    first_frames.clone()
                } else {
                    random_frames()
                };
                stats::record(&mut h, capture(release.clone(), frames).await?.0);
            }
            anyhow::Ok(Latency::of(&h))
        }
    };
    let with_map: Latency = timed(args.samples, release.clone(), false).await?;
    let same_places: Latency = timed(args.samples, release.clone(), true).await?;
    let without_map: Latency = timed(args.samples, plain_release, false).await?;
    let rss_after = rss_mib(pid, "VmRSS");
    let hwm = rss_mib(pid, "VmHWM");

    println!(
        "first event of the release (reads and decodes the map): {:.1} ms",
        first.as_secs_f64() * 1e3
    );
    println!(
        "next {} events, {} frames each placed: p50 {:.2} ms, p99 {:.2} ms",
        args.samples, args.frames, with_map.p50_ms, with_map.p99_ms
    );
    println!(
        "next {} events at the first event's places again: p50 {:.2} ms, p99 {:.2} ms",
        args.samples, same_places.p50_ms, same_places.p99_ms
    );
    println!(
        "{} events of a release without maps: p50 {:.2} ms, p99 {:.2} ms",
        args.samples, without_map.p50_ms, without_map.p99_ms
    );
    let fmt = |v: Option<f64>| v.map_or("?".to_owned(), |v| format!("{v:.0}"));
    println!(
        "server RSS: {} MiB before the first event, {} after it, {} at the end; peak {} MiB",
        fmt(rss_before),
        fmt(rss_decoded),
        fmt(rss_after),
        fmt(hwm)
    );
    println!(
        "RESULT {}",
        json!({
            "map_bytes": map.len(), "mappings": tokens, "frames": args.frames,
            "first_ms": first.as_secs_f64() * 1e3,
            "placed": with_map, "placed_same_places": same_places, "unmapped": without_map,
            "rss_before_mib": rss_before, "rss_after_first_mib": rss_decoded,
            "rss_end_mib": rss_after, "rss_peak_mib": hwm,
        })
    );
    Ok(ExitCode::SUCCESS)
}
