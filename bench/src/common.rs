//! Flags shared by every command: the target (loopback only), the API key, the server's pid.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use clap::Args;
use reqwest::Url;
use tonic::transport::{Channel, Endpoint};

#[derive(Args, Clone, Debug)]
pub struct CommonArgs {
    /// Base URL of the server (REST and gRPC share the port). Only loopback addresses are accepted.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub target: String,
    /// API key. Default: the file given by --key-file, else $FAULTLINE_KEY, else ./data/admin.key.
    #[arg(long)]
    pub key: Option<String>,
    /// File holding the API key (the server writes `<data-dir>/admin.key` at first start).
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// Pid of the server, for its memory and CPU figures. Default: the process listening on the
    /// target's port (found through /proc).
    #[arg(long)]
    pub server_pid: Option<u32>,
}

/// A checked target: where to send, with what key.
#[derive(Clone, Debug)]
pub struct Target {
    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:18090`.
    pub base: String,
    pub port: u16,
    pub key: String,
    pub server_pid: Option<u32>,
}

impl CommonArgs {
    pub fn resolve(self) -> anyhow::Result<Target> {
        let url = Url::parse(&self.target).with_context(|| format!("--target {}", self.target))?;
        if url.scheme() != "http" {
            bail!("--target must be an http:// URL (got {})", url.scheme());
        }
        check_loopback(&url)?;
        let port = url
            .port_or_known_default()
            .context("--target has no port")?;
        let key = match (self.key, self.key_file) {
            (Some(k), _) => k,
            (None, Some(f)) => read_key(&f)?,
            (None, None) => match std::env::var("FAULTLINE_KEY") {
                Ok(k) if !k.trim().is_empty() => k,
                _ => read_key(&PathBuf::from("./data/admin.key"))?,
            },
        };
        let key = key.trim().to_owned();
        if key.is_empty() {
            bail!("the API key is empty");
        }
        let base = format!(
            "{}://{}:{}",
            url.scheme(),
            url.host_str().unwrap_or("127.0.0.1"),
            port
        );
        Ok(Target {
            base,
            port,
            key,
            server_pid: self.server_pid,
        })
    }
}

fn read_key(path: &PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the API key from {} (give --key, --key-file or FAULTLINE_KEY)",
            path.display()
        )
    })
}

/// Accepts 127.0.0.0/8, ::1 (and IPv4-mapped loopback) and `localhost`; refuses anything else.
pub fn check_loopback(url: &Url) -> anyhow::Result<()> {
    let ok = match url.host() {
        // Non-http URLs (postgres://) keep their host as text, addresses included.
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost")
                || d.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        None => false,
    };
    if !ok {
        bail!(
            "refusing target {url}: faultline-bench only talks to a server on this machine \
             (127.0.0.0/8, ::1 or localhost)"
        );
    }
    Ok(())
}

/// A connection of the load's clients (`h1`, `h2`) to `authority` (`host:port`): opened
/// within 5 s, with Nagle's delay off.
pub async fn connect_tcp(authority: &str) -> anyhow::Result<tokio::net::TcpStream> {
    let stream = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(authority),
    )
    .await
    .map_err(|_| anyhow::anyhow!("connecting to {authority} timed out"))?
    .with_context(|| format!("connecting to {authority}"))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

impl Target {
    /// `host:port` of the target (`resolve` makes `base` an `http://` URL).
    pub fn authority(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.key)
    }

    /// An HTTP/1.1 keep-alive client with room for `conns` idle connections.
    pub fn http_client(&self, conns: usize) -> anyhow::Result<reqwest::Client> {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            reqwest::header::HeaderValue::from_str(&self.bearer())
                .context("the API key is not a valid header value")?,
        );
        Ok(reqwest::Client::builder()
            .http1_only()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(conns.max(1))
            .pool_idle_timeout(Duration::from_secs(90))
            .connect_timeout(Duration::from_secs(5))
            .default_headers(headers)
            .no_proxy()
            .build()?)
    }

    /// `n` separate HTTP/2 connections for gRPC, used round-robin.
    pub async fn grpc_channels(&self, n: usize) -> anyhow::Result<Vec<Channel>> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n.max(1) {
            let ch = Endpoint::from_shared(self.base.clone())?
                .tcp_nodelay(true)
                .connect_timeout(Duration::from_secs(5))
                .connect()
                .await
                .with_context(|| format!("cannot connect to {} over gRPC", self.base))?;
            out.push(ch);
        }
        Ok(out)
    }

    /// The `authorization` metadata value for gRPC requests.
    pub fn grpc_auth(
        &self,
    ) -> anyhow::Result<tonic::metadata::MetadataValue<tonic::metadata::Ascii>> {
        self.bearer()
            .parse()
            .context("the API key is not a valid metadata value")
    }

    /// Checks that the server answers and takes the key (GET /v1/errors/groups?limit=1).
    pub async fn preflight(&self, client: &reqwest::Client) -> anyhow::Result<()> {
        let resp = client
            .get(self.url("/v1/errors/groups?limit=1"))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        let status = resp.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            bail!("the server refused the API key ({status})");
        }
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            bail!("preflight GET /v1/errors/groups answered {status}: {body}");
        }
        Ok(())
    }

    /// The server's pid: --server-pid, else the owner of the LISTEN socket on the target port.
    pub fn find_server_pid(&self) -> Option<u32> {
        self.server_pid
            .or_else(|| crate::procinfo::pid_listening_on(self.port))
    }
}
