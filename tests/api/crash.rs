//! Durability: the real binary is killed with SIGKILL right after acknowledging events; after
//! a restart every acknowledged event is there. Also the key file and the first-start banner.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::StreamExt;
use serde_json::{Value, json};

use crate::helpers::*;

const EVENTS: usize = 200;
const CLIENTS: usize = 8;

/// A running `faultline` process; killed when dropped.
struct Server {
    child: Child,
    port: u16,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    fn stdout(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }
    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
}

fn collect(reader: impl std::io::Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            match line {
                Ok(l) => sink.lock().unwrap().push(l),
                Err(_) => break,
            }
        }
    });
    lines
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().unwrap().port()
}

/// Starts the binary and waits until `/v1/errors/groups` answers 200 with the key in `admin.key`.
async fn start_server(
    data_dir: &Path,
    database_url: Option<&str>,
    client: &reqwest::Client,
) -> (Server, String) {
    start_server_with(data_dir, database_url, client, &[]).await
}

async fn start_server_with(
    data_dir: &Path,
    database_url: Option<&str>,
    client: &reqwest::Client,
    extra_args: &[&str],
) -> (Server, String) {
    let mut last_err = String::new();
    for _attempt in 0..5 {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_faultline"));
        cmd.arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir);
        if let Some(url) = database_url {
            cmd.arg("--database-url").arg(url);
        }
        cmd.args(extra_args);
        for var in [
            "DATABASE_URL",
            "FAULTLINE_LISTEN",
            "FAULTLINE_DATA_DIR",
            "FAULTLINE_BODY_LIMIT",
            "FAULTLINE_QUEUE_DEPTH",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn the faultline binary");
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        let mut server = Server {
            child,
            port,
            stdout,
            stderr,
        };
        let start = Instant::now();
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                last_err = format!(
                    "faultline exited with {status} before it answered; stderr:\n{}",
                    server.stderr()
                );
                break;
            }
            if let Ok(key) = std::fs::read_to_string(data_dir.join("admin.key")) {
                let key = key.trim().to_owned();
                if let Ok(r) = client
                    .get(format!("{}/v1/errors/groups", server.base_url()))
                    .bearer_auth(&key)
                    .send()
                    .await
                {
                    let status = r.status();
                    if status.as_u16() == 200 {
                        return (server, key);
                    }
                    last_err = format!(
                        "GET /v1/errors/groups answered {status}: {}",
                        r.text().await.unwrap_or_default()
                    );
                }
            }
            if start.elapsed() > Duration::from_secs(30) {
                panic!(
                    "faultline did not become ready within 30 s: {last_err}; stderr:\n{}",
                    server.stderr()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Exited early (e.g. the port was taken meanwhile): try another port.
        drop(server);
    }
    panic!("faultline could not be started: {last_err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = fresh_database_url().await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();

    let (mut server, key) = start_server(dir.path(), database_url.as_deref(), &client).await;
    assert!(key.starts_with("flt_"), "admin.key holds a key: {key:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("admin.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(
            mode, 0o600,
            "admin.key must be readable by the owner only, is {mode:o}"
        );
    }
    let first_out = server.stdout();
    assert!(
        first_out.iter().any(|l| l.contains(&key)),
        "the first start prints the admin key once; stdout was:\n{}",
        first_out.join("\n")
    );

    // Capture with several concurrent clients; kill right after the last acknowledgement.
    let base = server.base_url();
    let acked: Vec<(String, String)> = futures::stream::iter(0..EVENTS)
        .map(|i| {
            let client = client.clone();
            let key = key.clone();
            let url = format!("{base}/v1/errors/capture");
            async move {
                let body = json!({"message": format!("crash test {} failed #{i}", ["alpha", "beta", "gamma", "delta"][i % 4]), "tags": {"i": i.to_string()}});
                let r = client.post(&url).bearer_auth(&key).json(&body).send().await.unwrap_or_else(|e| panic!("capture {i}: {e:?}"));
                let status = r.status();
                let text = r.text().await.unwrap();
                assert_eq!(status.as_u16(), 200, "capture {i}: {text}");
                let v: Value = serde_json::from_str(&text).unwrap();
                (s(&v["event_id"]), s(&v["group_id"]))
            }
        })
        .buffer_unordered(CLIENTS)
        .collect()
        .await;
    server.child.kill().expect("SIGKILL");
    server.child.wait().unwrap();
    drop(server);
    assert_eq!(acked.len(), EVENTS);

    // Restart on the same data.
    let (server, key2) = start_server(dir.path(), database_url.as_deref(), &client).await;
    assert_eq!(key2, key, "admin.key is unchanged");
    let out = server.stdout();
    assert!(
        !out.iter().any(|l| l.contains("flt_")),
        "the second start must not print a key; stdout was:\n{}",
        out.join("\n")
    );
    let base = server.base_url();
    let missing: Vec<String> = futures::stream::iter(acked.iter().cloned())
        .map(|(id, gid)| {
            let client = client.clone();
            let key = key.clone();
            let url = format!("{base}/v1/errors/get/{id}");
            async move {
                let r = client.get(&url).bearer_auth(&key).send().await.unwrap();
                let status = r.status();
                let v: Value = r.json().await.unwrap_or(Value::Null);
                if status.as_u16() == 200 && v["id"] == json!(id) && v["group_id"] == json!(gid) {
                    None
                } else {
                    Some(format!("{id}: {status} {v}"))
                }
            }
        })
        .buffer_unordered(CLIENTS)
        .filter_map(|x| async move { x })
        .collect()
        .await;
    assert!(
        missing.is_empty(),
        "{} of {EVENTS} acknowledged events are lost after SIGKILL: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );

    let r = client
        .get(format!("{base}/v1/errors/groups?limit=100"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let groups: Value = r.json().await.unwrap();
    let groups = arr(&groups["groups"]);
    assert_eq!(groups.len(), 4, "four kinds of messages");
    let total: u64 = groups.iter().map(|g| n(&g["count"])).sum();
    assert_eq!(
        total, EVENTS as u64,
        "group counts sum to the acknowledged events"
    );
}

/// Under more load than a tiny queue takes, SIGTERM stops the server: it exits 0, every
/// capture answered 200 is stored, and everything else got 429 (or found the port closed).
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_overload_drains_and_loses_nothing_acknowledged() {
    use std::sync::atomic::{AtomicBool, Ordering};

    let dir = tempfile::tempdir().unwrap();
    let database_url = fresh_database_url().await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let (mut server, key) = start_server_with(
        dir.path(),
        database_url.as_deref(),
        &client,
        &["--queue-depth", "4"],
    )
    .await;
    let base = server.base_url();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let refused = Arc::new(Mutex::new(0usize));
    let mut workers = Vec::new();
    for w in 0..16 {
        let (client, key, base) = (client.clone(), key.clone(), base.clone());
        let (stop, acked, refused) = (stop.clone(), acked.clone(), refused.clone());
        workers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let body = json!({"message": format!("drain test from worker {w} #{i}")});
                match client
                    .post(format!("{base}/v1/errors/capture"))
                    .bearer_auth(&key)
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let text = r.text().await.unwrap_or_default();
                        match status {
                            200 => {
                                let v: Value = serde_json::from_str(&text).unwrap();
                                acked.lock().unwrap().push(s(&v["event_id"]));
                            }
                            429 => *refused.lock().unwrap() += 1,
                            // Once shutdown begins, requests already read may be told to go away.
                            503 => {}
                            other => panic!("capture answered {other}: {text}"),
                        }
                    }
                    // The listener is closed: the server is stopping.
                    Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        }));
    }
    // Let load build up until the queue overflows, then ask the server to stop. (On a busy
    // machine the writer can keep up with the workers for a while: waiting only for the
    // acknowledgements sometimes stopped the server before any 429.)
    poll_until(
        Duration::from_secs(30),
        "some captures acknowledged and some refused with 429",
        || {
            let n = acked.lock().unwrap().len();
            let refused = *refused.lock().unwrap();
            async move { (n >= 50 && refused > 0).then_some(()) }
        },
    )
    .await;
    let pid = server.child.id().to_string();
    let kill = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(kill.success());
    let started = Instant::now();
    let status = loop {
        if let Some(st) = server.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the server did not stop within 30 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    assert!(
        status.success(),
        "exit status after SIGTERM: {status}; stderr:\n{}",
        server.stderr()
    );
    drop(server);
    if database_url.is_none() {
        // A clean stop leaves one complete database file: the WAL is checkpointed and empty
        // (SQLite usually removes it too).
        let wal = dir.path().join("faultline.db-wal");
        let left = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        assert_eq!(
            left,
            0,
            "{} holds {left} bytes after a clean stop",
            wal.display()
        );
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        *refused.lock().unwrap() > 0,
        "16 workers against a queue of 4 never got a 429"
    );

    let (server, key) = start_server(dir.path(), database_url.as_deref(), &client).await;
    let base = server.base_url();
    let r = client
        .get(format!("{base}/v1/errors/groups?limit=100"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let groups: Value = r.json().await.unwrap();
    let total: u64 = arr(&groups["groups"]).iter().map(|g| n(&g["count"])).sum();
    assert_eq!(
        total,
        acked.len() as u64,
        "stored events == acknowledged events"
    );
    let missing: Vec<String> = futures::stream::iter(acked.iter().cloned())
        .map(|id| {
            let (client, key, base) = (client.clone(), key.clone(), base.clone());
            async move {
                let r = client
                    .get(format!("{base}/v1/errors/get/{id}"))
                    .bearer_auth(&key)
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16() != 200).then_some(id)
            }
        })
        .buffer_unordered(CLIENTS)
        .filter_map(|x| async move { x })
        .collect()
        .await;
    assert!(
        missing.is_empty(),
        "acknowledged events lost across SIGTERM: {missing:?}"
    );
}
