//! Starting servers and talking to them: REST through reqwest, gRPC through the generated
//! tonic clients. Nothing here reaches into the server's internals after `App::build`.

#![allow(dead_code)]

use std::{
    future::Future,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use faultline::{
    App, Config,
    pb::{
        capture_service_client::CaptureServiceClient, group_service_client::GroupServiceClient,
        settings_service_client::SettingsServiceClient,
    },
};
use reqwest::{Method, RequestBuilder, StatusCode, header::HeaderMap};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tonic::transport::{Channel, Endpoint};

/// When set, every test app gets its own fresh PostgreSQL database on this server.
pub const PG_ENV: &str = "FAULTLINE_TEST_DATABASE_URL";

/// A running server and the means to talk to it. Dropping it shuts the server down.
pub struct TestApp {
    pub addr: SocketAddr,
    /// "http://127.0.0.1:port"
    pub base_url: String,
    /// An admin API key.
    pub key: String,
    pub client: reqwest::Client,
    pub data_dir: PathBuf,
    /// `None`: SQLite in `data_dir`.
    pub database_url: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    _dir: Option<TempDir>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A server on a fresh database (SQLite in a temporary directory, or a new PostgreSQL database).
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], with a chance to change the configuration first.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    // The servers' logs, shown with a failing test's output (RUST_LOG; errors by default).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().expect("create a temporary data directory");
    let database_url = fresh_database_url().await;
    let mut app = start(database_url, dir.path().to_path_buf(), tweak).await;
    app._dir = Some(dir);
    app
}

/// A server on a given database and data directory (for several servers on one database).
/// When the database already holds the project, there is no new key: the key is read from
/// `<data_dir>/admin.key` when it exists, else left empty for the caller to set.
pub async fn spawn_app_on(database_url: Option<String>, data_dir: &Path) -> TestApp {
    start(database_url, data_dir.to_path_buf(), |_| {}).await
}

/// The database for a new test app: `None` (SQLite) unless [`PG_ENV`] is set, in which case a
/// fresh PostgreSQL database is created and its URL returned. An unreachable server panics.
pub async fn fresh_database_url() -> Option<String> {
    use sea_orm::ConnectionTrait;
    let base = std::env::var(PG_ENV)
        .ok()
        .filter(|s| !s.trim().is_empty())?;
    let base = base.trim().to_owned();
    let name = format!("ft_{}", uuid::Uuid::new_v4().simple());
    let mut opts = sea_orm::ConnectOptions::new(base.clone());
    opts.connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    let conn = sea_orm::Database::connect(opts).await.unwrap_or_else(|e| {
        panic!("{PG_ENV} is set to {base:?} but the PostgreSQL server cannot be reached: {e} (tests never skip: start the server or unset the variable)")
    });
    conn.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap_or_else(|e| panic!("cannot create the test database {name} on {base:?}: {e}"));
    let _ = conn.close().await;
    let mut url = reqwest::Url::parse(&base)
        .unwrap_or_else(|e| panic!("{PG_ENV}={base:?} is not a URL: {e}"));
    url.set_path(&format!("/{name}"));
    Some(url.to_string())
}

async fn start(
    database_url: Option<String>,
    data_dir: PathBuf,
    tweak: impl FnOnce(&mut Config),
) -> TestApp {
    let mut cfg = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.clone(),
        database_url: database_url.clone(),
        print_banner: false,
        retention_interval: Duration::from_millis(200),
        alert_interval: Duration::from_millis(200),
        source_map_use_flush: Duration::from_millis(200),
        snooze_interval: Duration::from_millis(200),
        ..Config::default()
    };
    tweak(&mut cfg);
    let app = App::build(cfg)
        .await
        .unwrap_or_else(|e| panic!("App::build failed: {e}"));
    let addr = app.local_addr();
    let key = match app.bootstrap() {
        Some(b) => b.admin_key.clone(),
        None => std::fs::read_to_string(data_dir.join("admin.key"))
            .map(|s| s.trim().to_owned())
            .unwrap_or_default(),
    };
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let stopped = async move {
            let _ = rx.await;
        };
        if let Err(e) = app.run_until_stopped(stopped).await {
            eprintln!("test server stopped with an error: {e}");
        }
    });
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("build the HTTP client");
    TestApp {
        addr,
        base_url: format!("http://{addr}"),
        key,
        client,
        data_dir,
        database_url,
        shutdown: Some(tx),
        server: Some(server),
        _dir: None,
    }
}

/// A response, read in full.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    /// The body as JSON; a body that is not JSON becomes a JSON string holding the text.
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl TestApp {
    /// Stops the server and waits until it has drained and closed the database.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), h).await;
        }
    }

    /// The URL of the server's database: its PostgreSQL database, or the SQLite file in its
    /// data directory.
    pub fn db_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| faultline::store::sqlite_url_in(&self.data_dir))
    }

    /// Runs `statements` on the server's database, over a connection of their own.
    pub async fn run_sql(&self, statements: &[&str]) {
        use sea_orm::ConnectionTrait;
        let db = sea_orm::Database::connect(self.db_url())
            .await
            .expect("connect to the server's database");
        for sql in statements {
            db.execute_unprepared(sql).await.expect(sql);
        }
        db.close().await.expect("close");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// A request without credentials.
    pub fn anon(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// A request with `Authorization: Bearer <key>`.
    pub fn authed(&self, method: Method, path: &str) -> RequestBuilder {
        self.anon(method, path).bearer_auth(&self.key)
    }

    pub async fn send(&self, rb: RequestBuilder) -> Resp {
        let r = rb
            .send()
            .await
            .unwrap_or_else(|e| panic!("request to {} failed: {e:?}", self.base_url));
        let status = r.status();
        let headers = r.headers().clone();
        let text = r
            .text()
            .await
            .unwrap_or_else(|e| panic!("reading a response body failed: {e:?}"));
        let body = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
        Resp {
            status,
            headers,
            text,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = self.send(self.authed(Method::GET, path)).await;
        (r.status, r.body)
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let r = self.send(self.authed(Method::POST, path).json(body)).await;
        (r.status, r.body)
    }

    pub async fn put(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let r = self.send(self.authed(Method::PUT, path).json(body)).await;
        (r.status, r.body)
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        let r = self.send(self.authed(Method::DELETE, path)).await;
        (r.status, r.body)
    }

    /// GET that must answer 200.
    pub async fn get_ok(&self, path: &str) -> Value {
        let (s, b) = self.get(path).await;
        assert_eq!(s, StatusCode::OK, "GET {path} answered {s}: {b}");
        b
    }

    /// POST that must answer 200.
    pub async fn post_ok(&self, path: &str, body: &Value) -> Value {
        let (s, b) = self.post(path, body).await;
        assert_eq!(s, StatusCode::OK, "POST {path} {body} answered {s}: {b}");
        b
    }

    /// POST /v1/errors/capture that must answer 200.
    pub async fn capture(&self, body: Value) -> Value {
        self.post_ok("/v1/errors/capture", &body).await
    }

    /// POST /v1/errors/message that must answer 200.
    pub async fn message(&self, body: Value) -> Value {
        self.post_ok("/v1/errors/message", &body).await
    }

    /// Captures a plain error message over REST; returns (event id, group id).
    pub async fn capture_text(&self, message: &str) -> (String, String) {
        let b = self.capture(json!({ "message": message })).await;
        (s(&b["event_id"]), s(&b["group_id"]))
    }

    pub async fn event(&self, id: &str) -> Value {
        self.get_ok(&format!("/v1/errors/get/{id}")).await
    }

    pub async fn group(&self, id: &str) -> Value {
        self.get_ok(&format!("/v1/errors/group_detail/{id}")).await
    }

    /// Every event of a listing, following `next_cursor` (page size 100).
    pub async fn list_all(&self, query: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..1000 {
            let mut path = format!(
                "/v1/errors/list?limit=100{}",
                if query.is_empty() {
                    String::new()
                } else {
                    format!("&{query}")
                }
            );
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={}", enc(c)));
            }
            let page = self.get_ok(&path).await;
            out.extend(arr(&page["events"]).iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) if !c.is_empty() => cursor = Some(c.to_owned()),
                _ => return out,
            }
        }
        panic!("listing never ended");
    }

    pub async fn channel(&self) -> Channel {
        Endpoint::from_shared(self.base_url.clone())
            .expect("endpoint")
            .connect_timeout(Duration::from_secs(10))
            .connect()
            .await
            .unwrap_or_else(|e| panic!("gRPC connect to {} failed: {e:?}", self.base_url))
    }

    pub async fn capture_client(&self) -> CaptureServiceClient<Channel> {
        CaptureServiceClient::new(self.channel().await)
    }

    pub async fn groups_client(&self) -> GroupServiceClient<Channel> {
        GroupServiceClient::new(self.channel().await)
    }

    pub async fn settings_client(&self) -> SettingsServiceClient<Channel> {
        SettingsServiceClient::new(self.channel().await)
    }

    /// A gRPC request carrying `authorization: Bearer <key>`.
    pub fn req<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        r.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", self.key).parse().expect("ascii key"),
        );
        r
    }
}

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A JSON string field, or a panic naming what it was instead.
pub fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
        .to_owned()
}

/// A JSON unsigned number, or a panic.
pub fn n(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("expected a non-negative integer, got {v}"))
}

/// A JSON array, or a panic.
pub fn arr(v: &Value) -> &Vec<Value> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, got {v}"))
}

/// A JSON RFC 3339 time, or a panic.
pub fn time(v: &Value) -> DateTime<Utc> {
    let t = v
        .as_str()
        .unwrap_or_else(|| panic!("expected an RFC 3339 string, got {v}"));
    DateTime::parse_from_rfc3339(t)
        .unwrap_or_else(|e| panic!("{t:?} is not RFC 3339: {e}"))
        .with_timezone(&Utc)
}

/// The ids of a list of events or groups, in order.
pub fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(|e| s(&e["id"])).collect()
}

/// Asserts a string is a UUID and returns it.
pub fn uuid_str(v: &Value) -> String {
    let t = s(v);
    uuid::Uuid::parse_str(&t).unwrap_or_else(|e| panic!("{t:?} is not a UUID: {e}"));
    t
}

/// Asserts the documented error body: `{"error":{code,message,statusCode,requestId,timestamp,
/// details,path,method,…}}`, the status, and that `requestId` is the `X-Request-ID` header.
/// Returns the `error` object.
pub fn assert_error<'a>(
    r: &'a Resp,
    status: u16,
    code: &str,
    method: &str,
    path: &str,
) -> &'a Value {
    assert_eq!(
        r.status.as_u16(),
        status,
        "{method} {path}: expected HTTP {status} {code}, got {} with body {}",
        r.status,
        r.text
    );
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{method} {path}: error content-type is {:?}, body {}",
        r.header("content-type"),
        r.text
    );
    let e = &r.body["error"];
    assert!(
        e.is_object(),
        "{method} {path}: no \"error\" object in {}",
        r.text
    );
    assert_eq!(
        e["code"],
        json!(code),
        "{method} {path}: error code in {}",
        r.text
    );
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{method} {path}: empty message in {}",
        r.text
    );
    assert_eq!(
        e["statusCode"],
        json!(status),
        "{method} {path}: statusCode in {}",
        r.text
    );
    let rid = r
        .header("x-request-id")
        .unwrap_or_else(|| panic!("{method} {path}: no X-Request-ID header"));
    assert_eq!(
        e["requestId"],
        json!(rid),
        "{method} {path}: requestId vs X-Request-ID header in {}",
        r.text
    );
    let _ = time(&e["timestamp"]);
    let want_path = path.split('?').next().unwrap_or(path);
    assert_eq!(
        e["path"],
        json!(want_path),
        "{method} {path}: path in {}",
        r.text
    );
    assert_eq!(
        e["method"],
        json!(method),
        "{method} {path}: method in {}",
        r.text
    );
    assert!(
        e["details"].is_array() || e["details"].is_null(),
        "{method} {path}: details must be a list in {}",
        r.text
    );
    e
}

/// Asserts `details` of an error body name `field`.
pub fn assert_detail_field(e: &Value, field: &str) {
    let details = e["details"]
        .as_array()
        .unwrap_or_else(|| panic!("no details list in {e}"));
    assert!(
        details.iter().any(|d| d["field"] == json!(field)
            && d["message"].as_str().is_some_and(|m| !m.is_empty())
            && d["code"].as_str().is_some_and(|c| !c.is_empty())),
        "details do not name the field {field:?} (with message and code): {e}"
    );
}

/// Asserts a gRPC status: its code, ErrorInfo reason, and (optionally) a BadRequest violation of `field`.
pub fn assert_status(st: &tonic::Status, code: tonic::Code, reason: &str, field: Option<&str>) {
    use tonic_types::StatusExt;
    assert_eq!(st.code(), code, "unexpected status {st:?}");
    let details = st.get_error_details();
    let info = details
        .error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {st:?}"));
    assert_eq!(info.reason, reason, "ErrorInfo reason of {st:?}");
    if let Some(field) = field {
        let br = details
            .bad_request()
            .unwrap_or_else(|| panic!("no BadRequest in {st:?}"));
        assert!(
            br.field_violations.iter().any(|v| v.field == field),
            "no field violation for {field:?} in {:?}",
            br.field_violations
        );
    }
}

/// Polls `f` until it yields `Some`, at most `timeout`.
pub async fn poll_until<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A protobuf timestamp as chrono time.
pub fn pb_time(t: &Option<prost_types::Timestamp>) -> DateTime<Utc> {
    let t = t.as_ref().expect("timestamp set");
    DateTime::from_timestamp(t.seconds, t.nanos as u32).expect("valid timestamp")
}

pub fn pb_ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// An HTTP/2 connection to `app` on hyper's client connection API: a connection of its own,
/// never reopened, whose task ends when the server closes it.
pub async fn h2_connect<B>(
    app: &TestApp,
) -> (
    hyper::client::conn::http2::SendRequest<B>,
    tokio::task::JoinHandle<hyper::Result<()>>,
)
where
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    // A request's headers and body go in separate writes: without this, Nagle's algorithm
    // holds the body back until the server's delayed ACK, 40 ms a request.
    tcp.set_nodelay(true).unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("HTTP/2 handshake");
    (sender, tokio::spawn(conn))
}

/// The grouping keys of one event: its variants' hashes of its grouping version, each once.
pub async fn event_keys(app: &TestApp, event_id: &str) -> Vec<String> {
    let ev = app.event(event_id).await;
    let mut keys: Vec<String> = Vec::new();
    for v in arr(&ev["grouping"]["variants"]) {
        if v["version"] == ev["grouping"]["version"] && !keys.contains(&s(&v["hash"])) {
            keys.push(s(&v["hash"]));
        }
    }
    assert!(!keys.is_empty(), "{ev}");
    keys
}

/// The messages of every stored event, sorted.
pub async fn stored_messages(app: &TestApp) -> Vec<String> {
    let mut stored: Vec<String> = app
        .list_all("")
        .await
        .iter()
        .map(|e| s(&e["message"]))
        .collect();
    stored.sort();
    stored
}
