//! Assembles the server: storage, bootstrap, the ingest writer, background jobs, and one
//! listener that serves REST, gRPC, gRPC-Web, reflection (v1 and v1alpha) and health.

use std::{future::Future, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use axum::Router;
use tokio::net::TcpListener;
use tower::Layer;
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};

use crate::{
    auth::{self, Authenticator, keys},
    config::Config,
    error::Error,
    grpc::Api,
    ingest::{Ingest, WriterHandle},
    jobs,
    limits::{self, LimitsConfig, cors::Cors, rate::RateLimiter},
    pb::{
        FILE_DESCRIPTOR_SET, capture_service_server::CaptureServiceServer,
        group_service_server::GroupServiceServer, settings_service_server::SettingsServiceServer,
    },
    rest,
    store::{self, Bootstrap, Store},
};

/// Scopes of the admin key made at first start.
const ADMIN_SCOPES: &str = "admin,ingest,read,write";
/// How often key usage is written back.
const LAST_USED_FLUSH: Duration = Duration::from_secs(30);
/// How often policies changed by other instances are picked up and idle rate-limit state dropped.
const POLICY_REFRESH: Duration = Duration::from_secs(30);
/// How long shutdown waits for open connections to finish their requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// A built, bound, not yet running server.
pub struct App {
    listener: TcpListener,
    router: Router,
    store: Store,
    ingest: Ingest,
    writer: WriterHandle,
    background: Vec<tokio::task::JoinHandle<()>>,
    bootstrap: Option<Bootstrap>,
    admin_key_file: PathBuf,
    cfg: Config,
}

impl App {
    /// Opens (and migrates) the database, creates the default project and admin key on first
    /// start, starts the writer and binds the listener (port 0 picks a free port).
    pub async fn build(cfg: Config) -> Result<App, Error> {
        cfg.validate()?;
        std::fs::create_dir_all(&cfg.data_dir).map_err(|e| {
            Error::Internal(format!(
                "cannot create data directory {}: {e}",
                cfg.data_dir.display()
            ))
        })?;
        let store = Store::open(&cfg.database_url(), cfg.db_max_connections).await?;

        let key = keys::generate();
        let bootstrap = store
            .bootstrap(&key, &keys::hash(&key), &keys::preview(&key), ADMIN_SCOPES)
            .await?;
        let admin_key_file = cfg.data_dir.join("admin.key");
        if let Some(b) = &bootstrap {
            write_secret(&admin_key_file, &b.admin_key)?;
        }

        limits::policy::refresh(&store).await?;
        let (ingest, writer) = Ingest::start(store.clone(), cfg.ingest.clone());
        let authenticator = Authenticator::new(store.clone());
        let api = Api {
            store: store.clone(),
            ingest: ingest.clone(),
            export_page: 500,
            export_send_timeout: Duration::from_secs(60),
        };
        let limiter = RateLimiter::new(cfg.limits.rate.clone());
        let router = router(api, authenticator.clone(), limiter.clone(), &cfg).await;

        let listener = TcpListener::bind(cfg.listen)
            .await
            .map_err(|e| Error::Unavailable(format!("cannot listen on {}: {e}", cfg.listen)))?;

        let background = vec![
            tokio::spawn(jobs::retention::run(store.clone(), cfg.retention_interval)),
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(LAST_USED_FLUSH);
                loop {
                    tick.tick().await;
                    authenticator.flush_last_used().await;
                }
            }),
            tokio::spawn({
                let store = store.clone();
                async move {
                    let mut tick = tokio::time::interval(POLICY_REFRESH);
                    loop {
                        tick.tick().await;
                        if let Err(e) = limits::policy::refresh(&store).await {
                            tracing::warn!(error = %e, "could not refresh project policies");
                        }
                        limiter.shrink();
                    }
                }
            }),
        ];
        Ok(App {
            listener,
            router,
            store,
            ingest,
            writer,
            background,
            bootstrap,
            admin_key_file,
            cfg,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.cfg.listen)
    }

    /// What the first start created (the admin key in plain text), or `None` on later starts.
    pub fn bootstrap(&self) -> Option<&Bootstrap> {
        self.bootstrap.as_ref()
    }

    /// Serves until `shutdown` completes, then stops accepting, finishes in-flight requests,
    /// drains the ingest queue and closes the database.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let App {
            listener,
            router,
            store,
            ingest,
            writer,
            background,
            bootstrap,
            admin_key_file,
            cfg,
        } = self;
        let addr = listener.local_addr().unwrap_or(cfg.listen);
        if cfg.print_banner {
            print_banner(addr, bootstrap.as_ref(), &admin_key_file, &cfg);
        }
        tracing::info!(%addr, database = %store::redact(&cfg.database_url()), "faultline listening");
        let served = serve(listener, router, &cfg.limits, shutdown).await;
        tracing::info!("listener closed; draining the ingest queue");
        drop(ingest);
        writer.drained().await;
        for task in background {
            task.abort();
        }
        store.close().await;
        served.map_err(|e| Error::Internal(format!("server error: {e}")))
    }
}

/// Serves connections with hyper's automatic HTTP/1.1 / HTTP/2 builder (gRPC needs h2c on
/// the same port), which, unlike `axum::serve`, lets the request-head size and the time to
/// send it be bounded: a client that trickles its headers is disconnected.
async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &LimitsConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), std::io::Error> {
    use hyper_util::{
        rt::{TokioExecutor, TokioIo, TokioTimer},
        server::{conn::auto::Builder, graceful::GracefulShutdown},
        service::TowerToHyperService,
    };
    use tower::ServiceExt;

    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // hyper answers 431 when a request head does not fit its read buffer.
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        // Dead peers of idle HTTP/2 connections (gRPC clients) are noticed and dropped.
        .keep_alive_interval(Some(Duration::from_secs(60)))
        .keep_alive_timeout(Duration::from_secs(20));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let svc =
            router
                .clone()
                .map_request(move |mut req: http::Request<hyper::body::Incoming>| {
                    req.extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                    req
                });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let first_bytes_within = limits.header_read_timeout;
        tokio::spawn(async move {
            // The automatic builder waits, without a time limit, for enough bytes to tell
            // HTTP/2 from HTTP/1.1; a client that sends (almost) nothing is dropped here.
            if !protocol_known(&stream, first_bytes_within).await {
                tracing::debug!(%peer, "client sent no request in time; closing");
                return;
            }
            let conn = builder.serve_connection_with_upgrades(
                TokioIo::new(stream),
                TowerToHyperService::new(svc),
            );
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(error = %e, %peer, "connection closed with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("open connections did not finish within {SHUTDOWN_GRACE:?}");
    }
    Ok(())
}

/// Waits until the connection's first bytes say which HTTP version it speaks: the 24-byte
/// HTTP/2 preface, or anything that cannot be its start. `false` on EOF or timeout.
async fn protocol_known(stream: &tokio::net::TcpStream, within: Duration) -> bool {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let wait = async {
        let mut buf = [0u8; PREFACE.len()];
        loop {
            match stream.peek(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) if n == PREFACE.len() || buf[..n] != PREFACE[..n] => return true,
                // A partial preface: peek would return the same bytes at once, so pause.
                Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    };
    tokio::time::timeout(within, wait).await.unwrap_or(false)
}

async fn router(
    api: Api,
    authenticator: Arc<Authenticator>,
    limiter: Arc<RateLimiter>,
    cfg: &Config,
) -> Router {
    let limit = cfg.body_limit;
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<CaptureServiceServer<Api>>().await;
    health.set_serving::<GroupServiceServer<Api>>().await;
    health.set_serving::<SettingsServiceServer<Api>>().await;

    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("the embedded descriptor set is valid");
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .expect("the embedded descriptor set is valid");

    // gRPC-Web is enabled per service: a server-wide layer would turn plain HTTP/1.1 REST
    // requests into 400s.
    let web = tonic_web::GrpcWebLayer::new();
    let grpc = Router::new();
    let grpc = grpc_route(
        grpc,
        web.layer(CaptureServiceServer::new(api.clone()).max_decoding_message_size(limit)),
    );
    let grpc = grpc_route(
        grpc,
        web.layer(GroupServiceServer::new(api.clone()).max_decoding_message_size(limit)),
    );
    let grpc = grpc_route(
        grpc,
        web.layer(SettingsServiceServer::new(api.clone()).max_decoding_message_size(limit)),
    );
    let grpc = grpc_route(grpc, web.layer(health_service));
    let grpc = grpc_route(grpc, web.layer(reflection_v1));
    let grpc = grpc_route(grpc, web.layer(reflection_v1alpha));

    let cors = Arc::new(Cors {
        management_origins: cfg.limits.cors_origins.clone(),
    });
    // Layers run bottom-up: authentication first, then CORS (so refusals below it carry its
    // headers), then the rate limit, which reads the principal authentication found, then the
    // gRPC time limit (REST has its own inside its router).
    grpc.merge(rest::router(api, cfg))
        .layer(axum::middleware::from_fn_with_state(
            cfg.request_timeout,
            limits::deadline::layer,
        ))
        .layer(axum::middleware::from_fn_with_state(limiter, limits::rate::layer))
        .layer(axum::middleware::from_fn_with_state(cors, limits::cors::layer))
        .layer(axum::middleware::from_fn_with_state(authenticator, auth::layer))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &http::Request<_>| {
                let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// Mounts a tonic service at `/<package.Service>/*`, as `tonic::service::Routes` does, but
/// without Routes' own fallback: the REST router's fallback answers unknown paths for both.
fn grpc_route<S>(router: Router, svc: S) -> Router
where
    S: tower::Service<http::Request<tonic::body::Body>, Error = std::convert::Infallible>
        + tonic::server::NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Response: axum::response::IntoResponse,
    S::Future: Send + 'static,
{
    use tower::ServiceExt;
    router.route_service(
        &format!("/{}/{{*rest}}", S::NAME),
        svc.map_request(|req: http::Request<axum::body::Body>| req.map(tonic::body::Body::new)),
    )
}

/// Writes a secret readable by the owner only.
fn write_secret(path: &std::path::Path, secret: &str) -> Result<(), Error> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| Error::Internal(format!("cannot write {}: {e}", path.display())))?;
    f.write_all(format!("{secret}\n").as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::Internal(format!("cannot write {}: {e}", path.display())))
}

fn print_banner(
    addr: SocketAddr,
    bootstrap: Option<&Bootstrap>,
    key_file: &std::path::Path,
    cfg: &Config,
) {
    println!(
        "Faultline listening on http://{addr}  (REST, gRPC, gRPC-Web, reflection, health on one port)"
    );
    println!("Database: {}", store::redact(&cfg.database_url()));
    match bootstrap {
        Some(b) => {
            println!();
            println!(
                "Created the default project {} and its admin API key (shown only this once;",
                b.project_id
            );
            println!("also saved to {} with mode 0600):", key_file.display());
            println!();
            println!("    {}", b.admin_key);
            println!();
        }
        None => println!(
            "Admin API key: see {} (written at first start)",
            key_file.display()
        ),
    }
    println!(
        "Authenticate with 'Authorization: Bearer <key>' or 'X-API-Key: <key>' (gRPC: 'authorization' metadata), e.g."
    );
    println!(
        "    curl -H \"Authorization: Bearer $(cat {})\" http://{addr}/v1/errors/groups",
        key_file.display()
    );
}
