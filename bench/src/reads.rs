//! `reads`: latency of the main read endpoints, one request at a time, over REST.

use std::{process::ExitCode, time::Duration};

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::{
    common::Target,
    events::WORDS,
    stats::{self, Latency},
};

#[derive(Args, Clone, Debug)]
pub struct ReadsArgs {
    /// Timed requests per endpoint (after a short warm-up).
    #[arg(long, default_value_t = 200)]
    pub samples: usize,
    /// Page depth of the deep-cursor measurements.
    #[arg(long, default_value_t = 50)]
    pub depth: usize,
    /// Word searched for (default: the first of the words `seed` puts in messages).
    #[arg(long)]
    pub word: Option<String>,
    /// Page size of every listing.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Timed requests of the searches that read every event without a search index (two
    /// words; a word no event has; one event's request id): PostgreSQL has none. 0 skips them.
    #[arg(long, default_value_t = 5)]
    pub slow_samples: usize,
}

#[derive(Serialize)]
struct Row {
    name: String,
    path: String,
    /// Items on the page (groups or events).
    items: usize,
    /// Response size in bytes.
    bytes: usize,
    /// Answers that were not 2xx (their latency is counted too), by status.
    errors: std::collections::BTreeMap<String, u64>,
    latency: Latency,
}

async fn get_json(http: &reqwest::Client, target: &Target, path: &str) -> anyhow::Result<Value> {
    let resp = http
        .get(target.url(path))
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .with_context(|| format!("GET {path}"))?;
    let status = resp.status();
    if !status.is_success() {
        bail!(
            "GET {path} answered {status}: {}",
            resp.text().await.unwrap_or_default()
        );
    }
    Ok(resp.json().await?)
}

/// Follows `next_cursor` from `first` (a path ending in a query) `depth - 1` times; returns the
/// path of the deepest page reached and its depth.
async fn deep_path(
    http: &reqwest::Client,
    target: &Target,
    first: &str,
    depth: usize,
) -> anyhow::Result<(String, usize)> {
    let mut path = first.to_owned();
    let mut reached = 1;
    while reached < depth {
        let v = get_json(http, target, &path).await?;
        match v["next_cursor"].as_str() {
            Some(c) if !c.is_empty() => {
                let enc: String = form_encode(c);
                path = format!("{first}&cursor={enc}");
                reached += 1;
            }
            _ => break,
        }
    }
    Ok((path, reached))
}

fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn measure(
    http: &reqwest::Client,
    target: &Target,
    name: &str,
    path: &str,
    samples: usize,
    warmup: usize,
) -> anyhow::Result<Row> {
    let mut h = stats::histogram();
    let (mut items, mut bytes) = (0, 0);
    let mut errors = std::collections::BTreeMap::<String, u64>::new();
    for i in 0..samples + warmup {
        let t0 = Instant::now();
        let resp = http
            .get(target.url(path))
            .timeout(Duration::from_secs(120))
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = resp.status();
        let body = resp.bytes().await?;
        let took = t0.elapsed();
        if !status.is_success() {
            eprintln!(
                "  GET {path} answered {status} after {:.1} s: {}",
                took.as_secs_f64(),
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(200)
                    .collect::<String>()
            );
            *errors.entry(status.as_u16().to_string()).or_default() += 1;
        } else if items == 0 {
            // Count what the page holds.
            let v: Value = serde_json::from_slice(&body)?;
            items = ["groups", "events"]
                .iter()
                .find_map(|k| v[*k].as_array().map(|a| a.len()))
                .unwrap_or(1);
            bytes = body.len();
        }
        if i >= warmup {
            stats::record(&mut h, took);
        }
    }
    Ok(Row {
        name: name.to_owned(),
        path: path.to_owned(),
        items,
        bytes,
        errors,
        latency: Latency::of(&h),
    })
}

pub async fn run(target: Target, args: ReadsArgs) -> anyhow::Result<ExitCode> {
    let http = target.http_client(2)?;
    target.preflight(&http).await?;
    let limit = args.limit;
    let samples = args.samples.max(1);

    let largest = get_json(&http, &target, "/v1/errors/groups?sort=count_desc&limit=1").await?;
    let Some(group) = largest["groups"][0].as_object().cloned() else {
        bail!("the server has no groups: run `faultline-bench seed` first");
    };
    let gid = group["id"].as_str().context("group without id")?.to_owned();
    let gcount = group["count"].as_u64().unwrap_or(0);
    let word = args.word.clone().unwrap_or_else(|| WORDS[0].to_owned());

    let groups_first = format!("/v1/errors/groups?limit={limit}");
    let (groups_deep, groups_depth) = deep_path(&http, &target, &groups_first, args.depth).await?;
    let list_first = format!("/v1/errors/list?limit={limit}");
    let (list_deep, list_depth) = deep_path(&http, &target, &list_first, args.depth).await?;
    println!(
        "reads: {samples} samples each, one at a time; largest group {gid} ({gcount} events); \
         deep pages: groups {groups_depth}, events {list_depth}; search word {word:?}"
    );

    let plan: Vec<(String, String)> = vec![
        ("groups, first page".into(), groups_first.clone()),
        (format!("groups, page {groups_depth}"), groups_deep),
        ("events list, first page".into(), list_first.clone()),
        (format!("events list, page {list_depth}"), list_deep.clone()),
        (
            "group_detail (largest group)".into(),
            format!("/v1/errors/group_detail/{gid}"),
        ),
        (
            "group events (largest group)".into(),
            format!("/v1/errors/events/{gid}?limit={limit}"),
        ),
        (
            format!("search q={word}"),
            format!("/v1/errors/search?q={}&limit={limit}", form_encode(&word)),
        ),
        // Tag filters: one a fifth of the events have, one no event has (read from the tag
        // index, not by scanning the events), and a common one within the largest group.
        (
            "events, tag browser:firefox".into(),
            format!("/v1/errors/list?tag=browser:firefox&limit={limit}"),
        ),
        (
            "events, tag no event has".into(),
            format!("/v1/errors/list?tag=browser:zzqxjv&limit={limit}"),
        ),
        (
            "events, tag browser:firefox in the largest group".into(),
            format!("/v1/errors/list?tag=browser:firefox&group_id={gid}&limit={limit}"),
        ),
    ];
    let mut plan: Vec<(String, String, usize, usize)> =
        plan.into_iter().map(|(n, p)| (n, p, samples, 3)).collect();
    // A word one event has: the request id of the last event on the deep events page.
    let deep = get_json(&http, &target, &list_deep).await?;
    let request_id = deep["events"]
        .as_array()
        .and_then(|a| a.last())
        .and_then(|e| e["message"].as_str())
        .and_then(|m| m.split("(request ").nth(1))
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_hexdigit() || *c == '-')
                .collect::<String>()
        })
        .filter(|id| !id.is_empty());
    if args.slow_samples > 0 {
        if let Some(id) = request_id {
            plan.push((
                "search, one event's request id".into(),
                format!("/v1/errors/search?q={}&limit={limit}", form_encode(&id)),
                args.slow_samples,
                1,
            ));
        }
        let second = WORDS
            .iter()
            .find(|w| **w != word)
            .copied()
            .unwrap_or("bagpipe");
        plan.push((
            format!("search q={word} {second}"),
            format!(
                "/v1/errors/search?q={}+{}&limit={limit}",
                form_encode(&word),
                form_encode(second)
            ),
            args.slow_samples,
            1,
        ));
        plan.push((
            "search, no match".into(),
            format!("/v1/errors/search?q=zzqxjv&limit={limit}"),
            args.slow_samples,
            1,
        ));
    }
    let mut rows = Vec::new();
    for (name, path, n, warmup) in &plan {
        let row = measure(&http, &target, name, path, *n, *warmup).await?;
        eprintln!("  {name}: p50 {:.2} ms", row.latency.p50_ms);
        rows.push(row);
    }

    println!();
    println!(
        "{:<32} {:>7} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9}  errors",
        "endpoint", "samples", "items", "bytes", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    for r in &rows {
        println!(
            "{:<32} {:>7} {:>6} {:>9} {:>9.2} {:>9.2} {:>9.2} {:>9.2}  {}",
            r.name,
            r.latency.count,
            r.items,
            r.bytes,
            r.latency.p50_ms,
            r.latency.p90_ms,
            r.latency.p99_ms,
            r.latency.max_ms,
            r.errors
                .iter()
                .map(|(k, v)| format!("{v}x {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!(
        "RESULT {}",
        serde_json::to_string(&serde_json::json!({
            "target": target.base,
            "samples": samples,
            "largest_group": {"id": gid, "count": gcount},
            "search_word": word,
            "rows": rows,
        }))?
    );
    Ok(if rows.iter().any(|r| !r.errors.is_empty()) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
