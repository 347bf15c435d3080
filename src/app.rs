//! Assembles the server: storage, bootstrap, the ingest writer, background jobs, and one
//! listener that serves REST, gRPC, gRPC-Web, reflection (v1 and v1alpha) and health.

use std::{future::Future, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{Request, State},
    middleware::Next,
    response::Response,
};
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
    grpc::{Api, ApiState},
    ingest::{Ingest, WriterHandle, inbound::Filtered, sourcemaps::SourceMaps},
    jobs,
    limits::{self, cors::Cors, rate::RateLimiter},
    monitor::{self, Monitor},
    pb::{
        FILE_DESCRIPTOR_SET, alert_service_server::AlertServiceServer,
        capture_service_server::CaptureServiceServer, group_service_server::GroupServiceServer,
        insights_service_server::InsightsServiceServer,
        project_service_server::ProjectServiceServer, release_service_server::ReleaseServiceServer,
        settings_service_server::SettingsServiceServer,
    },
    rest,
    store::{self, Bootstrap, Store},
};

/// How much lower than the process the request workers (and the runtime's blocking threads)
/// run with SQLite: one step of five below the thread they feed, the SQLite writer, which
/// every event passes through one batch at a time, and its checkpoints. At equal priority the
/// scheduler shared two cores between two busy workers and the writer, so under load the
/// writer waited for a core while events queued for it; at nice 5 it gets about three times a
/// worker's share when they compete. In five interleaved pairs batched capture ran 0-25 %
/// faster (median 7 %), and in two single events 2 and 7 %; nice 10 was no faster than 5,
/// nice 2 barely faster than 0 (BENCHMARKS.md, session 18).
/// With PostgreSQL the workers keep the process's priority: the writing happens in
/// PostgreSQL's processes, and over 60 s runs lowered workers lost 4-7 % of batched capture
/// to them. Raising one's own nice value needs no privilege; with autogroups or a service's
/// cgroup it shifts time between Faultline's own threads more than away from other programs.
pub const REQUEST_WORKER_NICE: i32 = 5;

/// The server's multi-threaded runtime: tokio's defaults, with each of its threads
/// `REQUEST_WORKER_NICE` steps lower when `lower_workers` (on Linux; elsewhere the process's
/// priority). Threads started before it, or by a thread that is not its own, keep theirs.
pub fn runtime(lower_workers: bool) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if lower_workers {
        builder.on_thread_start(|| lower_this_thread(REQUEST_WORKER_NICE));
    }
    builder.build()
}

/// Adds `by` to the calling thread's nice value (on Linux `nice` changes the calling thread's
/// own; elsewhere nothing). Lowering one's priority is always allowed; should it fail, the
/// thread keeps its priority.
fn lower_this_thread(by: i32) {
    #[cfg(target_os = "linux")]
    // SAFETY: nice() only changes the calling thread's nice value; its result (the new value,
    // or -1 on a failure that changes nothing) is not needed.
    unsafe {
        libc::nice(by);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = by;
}

/// How often key usage is written back.
const LAST_USED_FLUSH: Duration = Duration::from_secs(30);
/// How often this run notes in the start/stop history that it is alive.
const RUN_HEARTBEAT: Duration = Duration::from_secs(30);
/// How often policies changed by other instances are picked up and idle rate-limit state dropped.
const POLICY_REFRESH: Duration = Duration::from_secs(30);

/// A built, bound, not yet running server.
pub struct App {
    listener: TcpListener,
    router: Router,
    store: Store,
    ingest: Ingest,
    writer: WriterHandle,
    filtered: Arc<Filtered>,
    sourcemaps: Arc<SourceMaps>,
    background: Vec<tokio::task::JoinHandle<()>>,
    bootstrap: Option<Bootstrap>,
    admin_key_file: PathBuf,
    cfg: Config,
    monitor: Arc<Monitor>,
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
            .bootstrap(
                &key,
                &keys::hash(&key),
                &keys::preview(&key),
                &auth::roles::scopes_csv(auth::roles::Role::Owner.scopes()),
            )
            .await?;
        let admin_key_file = cfg.data_dir.join("admin.key");
        if let Some(b) = &bootstrap {
            write_secret(&admin_key_file, &b.admin_key)?;
        }

        limits::policy::refresh(&store).await?;
        let (ingest, writer) = Ingest::start(store.clone(), cfg.ingest.clone())?;
        let authenticator = Authenticator::new(store.clone());
        let monitor = Monitor::new(&cfg.data_dir);
        let filtered = Filtered::new();
        let sourcemaps = Arc::new(SourceMaps::new(store.clone()));
        store
            .record_run_start(monitor.run_id, monitor.started_at)
            .await?;
        let api = Api::new(ApiState {
            monitor: monitor.clone(),
            store: store.clone(),
            ingest: ingest.clone(),
            export_page: 500,
            export_send_timeout: Duration::from_secs(60),
            authn: authenticator.clone(),
            sourcemaps: sourcemaps.clone(),
            filtered: filtered.clone(),
        });
        let limiter = RateLimiter::new(cfg.limits.rate.clone());
        let router = router(
            api,
            authenticator.clone(),
            monitor.clone(),
            limiter.clone(),
            &cfg,
        )
        .await;

        let listener = TcpListener::bind(cfg.listen)
            .await
            .map_err(|e| Error::Unavailable(format!("cannot listen on {}: {e}", cfg.listen)))?;

        let background = vec![
            tokio::spawn(jobs::retention::run(
                store.clone(),
                cfg.retention_interval,
                cfg.source_map_days,
            )),
            tokio::spawn(jobs::alerts::run(store.clone(), cfg.alert_interval)),
            tokio::spawn(jobs::snooze::run(store.clone(), cfg.snooze_interval)),
            tokio::spawn(filtered.clone().run(store.clone())),
            tokio::spawn(sourcemaps.clone().run(cfg.source_map_use_flush)),
            tokio::spawn(jobs::maintenance::run(
                store.clone(),
                jobs::maintenance::INTERVAL,
            )),
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(LAST_USED_FLUSH);
                loop {
                    tick.tick().await;
                    authenticator.flush_last_used().await;
                }
            }),
            tokio::spawn({
                let (store, run_id) = (store.clone(), monitor.run_id);
                async move {
                    let mut tick = tokio::time::interval(RUN_HEARTBEAT);
                    loop {
                        tick.tick().await;
                        if let Err(e) = store
                            .record_run_alive(run_id, chrono::Utc::now(), false)
                            .await
                        {
                            tracing::warn!(error = %e, "could not record that this run is alive");
                        }
                    }
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
            filtered,
            sourcemaps,
            background,
            bootstrap,
            admin_key_file,
            cfg,
            monitor,
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
            filtered,
            sourcemaps,
            background,
            bootstrap,
            admin_key_file,
            cfg,
            monitor,
        } = self;
        let addr = listener.local_addr().unwrap_or(cfg.listen);
        if cfg.print_banner {
            print_banner(addr, bootstrap.as_ref(), &admin_key_file, &cfg);
        }
        tracing::info!(%addr, database = %store::redact(&cfg.database_url()), "faultline listening");
        let served = limits::listener::serve(listener, router, &cfg.limits, shutdown).await;
        tracing::info!("listener closed; draining the ingest queue");
        drop(ingest);
        writer.drained().await;
        for task in background {
            task.abort();
        }
        filtered.flush(&store).await;
        sourcemaps.flush_used().await;
        // A clean stop is not downtime the uptime figures should blame on a crash.
        if let Err(e) = store
            .record_run_alive(monitor.run_id, chrono::Utc::now(), true)
            .await
        {
            tracing::warn!(error = %e, "could not record the clean stop of this run");
        }
        store.close().await;
        served.map_err(|e| Error::Internal(format!("server error: {e}")))
    }
}

async fn router(
    api: Api,
    authenticator: Arc<Authenticator>,
    monitor: Arc<Monitor>,
    limiter: Arc<RateLimiter>,
    cfg: &Config,
) -> Router {
    let limit = cfg.body_limit;
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<CaptureServiceServer<Api>>().await;
    health.set_serving::<GroupServiceServer<Api>>().await;
    health.set_serving::<SettingsServiceServer<Api>>().await;
    health.set_serving::<InsightsServiceServer<Api>>().await;
    health.set_serving::<ProjectServiceServer<Api>>().await;
    health.set_serving::<AlertServiceServer<Api>>().await;
    health.set_serving::<ReleaseServiceServer<Api>>().await;

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
    // A Sentry envelope may be as large over gRPC as over REST (`ENVELOPE_MAX`, which
    // `CaptureEnvelope` enforces on the body itself); the other methods keep the body limit.
    let envelope_limit = crate::ingest::sentry::ENVELOPE_MAX + ENVELOPE_FIELDS;
    let grpc = grpc_route_at(
        grpc,
        "/faultline.v1.CaptureService/CaptureEnvelope",
        web.layer(CaptureServiceServer::new(api.clone()).max_decoding_message_size(envelope_limit)),
    );
    let grpc = grpc_route(
        grpc,
        web.layer(GroupServiceServer::new(api.clone()).max_decoding_message_size(limit)),
    );
    let grpc = grpc_route(
        grpc,
        web.layer(SettingsServiceServer::new(api.clone()).max_decoding_message_size(limit)),
    );
    let grpc = grpc_route(
        grpc,
        web.layer(InsightsServiceServer::new(api.clone()).max_decoding_message_size(limit)),
    );
    let grpc = grpc_route(
        grpc,
        web.layer(ProjectServiceServer::new(api.clone()).max_decoding_message_size(limit)),
    );
    let grpc = grpc_route(
        grpc,
        web.layer(AlertServiceServer::new(api.clone()).max_decoding_message_size(limit)),
    );
    // A source map may be far larger than any other request.
    let grpc = grpc_route(
        grpc,
        web.layer(
            ReleaseServiceServer::new(api.clone())
                .max_decoding_message_size(limit.max(crate::domain::sourcemap::FILE_MAX + 4096)),
        ),
    );
    let grpc = grpc_route(grpc, web.layer(health_service));
    let grpc = grpc_route(grpc, web.layer(reflection_v1));
    let grpc = grpc_route(grpc, web.layer(reflection_v1alpha));
    // Each method's scope comes from the one table in auth::routes.
    let grpc = grpc.route_layer(axum::middleware::from_fn_with_state(
        api.store.clone(),
        auth::routes::enforce_grpc,
    ));

    let edge = Arc::new(Edge {
        monitor,
        authenticator,
        cors: Cors {
            management_origins: cfg.limits.cors_origins.clone(),
        },
        limiter,
        grpc_timeout: cfg.request_timeout,
    });
    // The layers every request passes wrap the router once. `Router::layer` would wrap each
    // route instead, and a request then clones every boxed layer below the route's top.
    let app = tower::ServiceBuilder::new()
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &http::Request<_>| {
                let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(axum::middleware::from_fn_with_state(edge, edge_layer))
        .service(grpc.fallback_service(rest::router(api, cfg)));
    Router::new().fallback_service(app)
}

/// What every request of both transports passes through on its way in, in one layer: one
/// middleware per concern cost a boxed service clone and a boxed future each per request.
struct Edge {
    monitor: Arc<Monitor>,
    authenticator: Arc<Authenticator>,
    cors: Cors,
    limiter: Arc<RateLimiter>,
    /// The gRPC time limit (REST has its own inside its router).
    grpc_timeout: Duration,
}

/// Counting first (so every answer is counted), then authentication, then CORS (so refusals
/// below it carry its headers), then the rate limit, which reads the principal authentication
/// found, then the gRPC time limit.
async fn edge_layer(State(edge): State<Arc<Edge>>, mut req: Request, next: Next) -> Response {
    let edge = &*edge;
    let on_panic = PanicAnswer::to(&req);
    monitor::around(&edge.monitor, async move {
        answering_panics(on_panic, async move {
            auth::authenticate(&edge.authenticator, &mut req).await;
            limits::cors::around(&edge.cors, req, |req| {
                limits::rate::around(&edge.limiter, req, |req| {
                    limits::deadline::around(edge.grpc_timeout, req, |req| next.run(req))
                })
            })
            .await
        })
        .await
    })
    .await
}

/// What a request is answered if its handling panics: without this, the panic ended the
/// connection's task and the client got no answer at all (a damaged capture body did that
/// once, session 26). Holds the few parts of the request the answer names, taken without
/// copying them (a request's header map is made only if it panics).
struct PanicAnswer {
    method: http::Method,
    uri: http::Uri,
    request_id: Option<http::HeaderValue>,
    traceparent: Option<http::HeaderValue>,
    /// The request's content type, when it is gRPC's or gRPC-Web's: the answer gives it back.
    grpc: Option<http::HeaderValue>,
}

impl PanicAnswer {
    fn to(req: &Request) -> PanicAnswer {
        let header = |name: &str| req.headers().get(name).cloned();
        PanicAnswer {
            method: req.method().clone(),
            uri: req.uri().clone(),
            request_id: header("x-request-id"),
            traceparent: header("traceparent"),
            grpc: limits::grpc_content_type(req.headers()),
        }
    }

    /// The request's head as far as the error body names it.
    fn head(self) -> http::Request<()> {
        let mut head = http::Request::new(());
        *head.method_mut() = self.method;
        *head.uri_mut() = self.uri;
        for (name, value) in [
            ("x-request-id", self.request_id),
            ("traceparent", self.traceparent),
        ] {
            if let Some(v) = value {
                head.headers_mut().insert(name, v);
            }
        }
        head
    }
}

/// `handling`'s answer, or, if it panics, an internal error in the request's protocol: gRPC's
/// INTERNAL status, or the documented REST error body with status 500. The panic is logged.
async fn answering_panics(
    on_panic: PanicAnswer,
    handling: impl Future<Output = Response>,
) -> Response {
    use futures::FutureExt;
    match std::panic::AssertUnwindSafe(handling).catch_unwind().await {
        Ok(answer) => answer,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(
                panic = %what,
                method = %on_panic.method,
                path = on_panic.uri.path(),
                "a request's handling panicked; answered as an internal error"
            );
            let message = "the server failed on this request; the failure is logged";
            match on_panic.grpc.clone() {
                Some(content_type) => {
                    limits::grpc_answer(tonic::Status::internal(message), content_type)
                }
                None => rest::error_response(&on_panic.head(), Error::Internal(message.into())),
            }
        }
    }
}

/// Mounts a tonic service at `/<package.Service>/*`, as `tonic::service::Routes` does, but
/// without Routes' own fallback: the REST router's fallback answers unknown paths for both.
/// Room for a `CaptureEnvelopeRequest`'s fields besides its body.
const ENVELOPE_FIELDS: usize = 64 * 1024;

/// Routes every method of a gRPC service to `svc`.
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
    grpc_route_at(router, &format!("/{}/{{*rest}}", S::NAME), svc)
}

/// Routes `path` (a service's methods, or one method) to `svc`; a method's own route wins
/// over its service's.
fn grpc_route_at<S>(router: Router, path: &str, svc: S) -> Router
where
    S: tower::Service<http::Request<tonic::body::Body>, Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Response: axum::response::IntoResponse,
    S::Future: Send + 'static,
{
    use tower::ServiceExt;
    router.route_service(
        path,
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
    println!(
        "Dashboard: http://{addr}/  (sign in with an API key)   API reference: http://{addr}/docs"
    );
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
            println!(
                "Sentry SDKs send to the default project with this DSN (the key may only send events):"
            );
            println!();
            println!(
                "    {}",
                crate::grpc::sentry::dsn("http", &b.sentry, &addr.to_string())
            );
            println!();
        }
        None => println!(
            "Admin API key: see {} (written at first start); Sentry DSN: GET /v1/settings/dsn",
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

#[cfg(test)]
mod tests {
    use axum::{extract::Request, response::Response};

    /// The calling thread's nice value.
    #[cfg(target_os = "linux")]
    fn nice() -> i32 {
        // SAFETY: a plain system call; on Linux `who` 0 is the calling thread.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn request_workers_run_below_the_threads_that_started_them() {
        let before = nice();
        let unchanged = super::runtime(false).unwrap();
        let on_worker = unchanged.block_on(async { tokio::spawn(async { nice() }).await.unwrap() });
        assert_eq!(on_worker, before);
        let runtime = super::runtime(true).unwrap();
        let on_worker = runtime.block_on(async { tokio::spawn(async { nice() }).await.unwrap() });
        let on_blocking =
            runtime.block_on(async { tokio::task::spawn_blocking(nice).await.unwrap() });
        let lowered = (before + super::REQUEST_WORKER_NICE).min(19);
        assert_eq!((on_worker, on_blocking), (lowered, lowered));
        // The thread that built the runtime (in the server, the one that starts the ingest
        // writer's threads, which inherit its priority) keeps its own.
        assert_eq!(nice(), before);
    }

    fn request(content_type: &str) -> Request {
        http::Request::builder()
            .method("POST")
            .uri("/v1/errors/capture?x=1")
            .header("content-type", content_type)
            .header("x-request-id", "req-7")
            .body(axum::body::Body::empty())
            .unwrap()
    }

    async fn body_json(answer: Response) -> serde_json::Value {
        use http_body_util::BodyExt;
        let bytes = answer.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn a_panicking_rest_request_gets_the_documented_500() {
        let req = request("application/json");
        let answer = super::answering_panics(super::PanicAnswer::to(&req), async {
            panic!("index out of bounds")
        })
        .await;
        assert_eq!(answer.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        let e = &body_json(answer).await["error"];
        assert_eq!(e["code"], "INTERNAL_ERROR", "{e}");
        assert_eq!(e["statusCode"], 500, "{e}");
        assert_eq!(e["requestId"], "req-7", "{e}");
        assert_eq!(e["path"], "/v1/errors/capture", "{e}");
        assert_eq!(e["method"], "POST", "{e}");
        // What panicked stays in the log, not in the answer.
        assert!(!e.to_string().contains("index out of bounds"), "{e}");
    }

    #[tokio::test]
    async fn a_panicking_grpc_call_gets_internal() {
        for content_type in ["application/grpc+proto", "application/grpc-web+proto"] {
            let req = request(content_type);
            let answer =
                super::answering_panics(super::PanicAnswer::to(&req), async { panic!("boom") })
                    .await;
            assert_eq!(answer.status(), http::StatusCode::OK);
            let header = |name| answer.headers().get(name).map(|v| v.as_bytes());
            assert_eq!(header("grpc-status"), Some(&b"13"[..]));
            assert_eq!(header("content-type"), Some(content_type.as_bytes()));
        }
    }

    #[tokio::test]
    async fn an_answer_without_a_panic_passes_through() {
        let req = request("application/json");
        let answer = super::answering_panics(super::PanicAnswer::to(&req), async {
            Response::new(axum::body::Body::from("{\"ok\":true}"))
        })
        .await;
        assert_eq!(answer.status(), http::StatusCode::OK);
        assert_eq!(body_json(answer).await["ok"], true);
    }
}
