//! The accept loop: hyper's automatic HTTP/1.1 / HTTP/2 builder serving the router on one
//! port, with the request-head limits and slow-client protection of `LimitsConfig`, a cap on
//! connections that bounds memory, idle connections closed after `idle_timeout`, and a
//! graceful shutdown that lets open requests finish.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::Router;
use tokio::net::TcpListener;

use super::LimitsConfig;

/// How long shutdown waits for open connections to finish their requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// The retry hint given to requests over `max_requests`.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Serves connections with hyper's automatic HTTP/1.1 / HTTP/2 builder (gRPC needs h2c on
/// the same port), which, unlike `axum::serve`, lets the request-head size and the time to
/// send it be bounded: a client that trickles its headers is disconnected.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &LimitsConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), std::io::Error> {
    use hyper_util::{
        rt::{TokioExecutor, TokioIo, TokioTimer},
        server::conn::auto::Builder,
        service::TowerToHyperService,
    };
    use tokio::sync::Semaphore;
    use tower::ServiceExt;
    use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

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
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let in_flight = Arc::new(Semaphore::new(limits.max_requests));
    let max_requests = limits.max_requests;
    // Refusals get a request id the way the router's answers do, so they can be quoted too.
    let refusal = tower::ServiceBuilder::new()
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(PropagateRequestIdLayer::x_request_id())
        .service_fn(move |req| async move {
            Ok::<_, std::convert::Infallible>(refuse(req, max_requests).await)
        });
    // Tells every connection to finish what it is doing and close.
    let (closing, _) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A place for one more connection first: at the cap, new clients wait in the
        // kernel's accept queue instead of costing memory here.
        let place = tokio::select! {
            p = connections.clone().acquire_owned() => p.expect("never closed"),
            () = &mut shutdown => break,
        };
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
        let (router, refusal) = (router.clone(), refusal.clone());
        let in_flight = in_flight.clone();
        let activity = Arc::new(Activity::default());
        let svc = {
            let activity = activity.clone();
            tower::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                let permit = (!exempt(&req)).then(|| in_flight.clone().try_acquire_owned());
                let (router, refusal) = (router.clone(), refusal.clone());
                let busy = Activity::start(&activity);
                async move {
                    let _busy = busy;
                    // Held until the answer's head is out (a streamed body then runs on).
                    let _permit = match permit {
                        Some(Err(_)) => return refusal.oneshot(req).await,
                        permit => permit,
                    };
                    router.oneshot(req).await
                }
            })
        };
        let builder = builder.clone();
        let mut closing = closing.subscribe();
        let first_bytes_within = limits.header_read_timeout;
        let idle_timeout = limits.idle_timeout;
        tokio::spawn(async move {
            let _place = place;
            // The automatic builder waits, without a time limit, for enough bytes to tell
            // HTTP/2 from HTTP/1.1; a client that sends (almost) nothing is dropped here.
            let known = tokio::select! {
                known = protocol_known(&stream, first_bytes_within) => known,
                _ = closing.wait_for(|c| *c) => false,
            };
            if !known {
                tracing::debug!(%peer, "client sent no request in time, or shutting down; closing");
                return;
            }
            let conn = builder.serve_connection_with_upgrades(
                TokioIo::new(stream),
                TowerToHyperService::new(svc),
            );
            let mut conn = std::pin::pin!(conn);
            // Closed gracefully (requests in progress finish; HTTP/2 sends GOAWAY) at shutdown,
            // or once idle for `idle_timeout`.
            let time_to_close = async {
                tokio::select! {
                    _ = closing.wait_for(|c| *c) => {}
                    () = activity.idle_for(idle_timeout) => {
                        tracing::debug!(%peer, "connection idle; closing");
                    }
                }
            };
            let result = tokio::select! {
                result = conn.as_mut() => result,
                () = time_to_close => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, %peer, "connection closed with an error");
            }
        });
    }
    drop(listener);
    closing.send_replace(true);
    // Every connection holds a place until it has closed.
    let all_closed =
        connections.acquire_many(u32::try_from(limits.max_connections).unwrap_or(u32::MAX));
    if tokio::time::timeout(SHUTDOWN_GRACE, all_closed)
        .await
        .is_err()
    {
        tracing::warn!("open connections did not finish within {SHUTDOWN_GRACE:?}");
    }
    Ok(())
}

/// What one connection is doing, for closing it once idle: its requests in progress, and a
/// count of their starts and ends, so that a wait can tell whether any came and went. A
/// request is in progress until its answer's head is out; a streamed answer (an export, a
/// health watch) that runs on past `idle_timeout` is not cut, since the close is graceful.
#[derive(Default)]
struct Activity {
    in_progress: AtomicUsize,
    changes: AtomicU64,
    ended: tokio::sync::Notify,
}

/// A request in progress on its connection, until dropped.
struct Busy(Arc<Activity>);

impl Activity {
    fn start(activity: &Arc<Activity>) -> Busy {
        activity.in_progress.fetch_add(1, Ordering::SeqCst);
        activity.changes.fetch_add(1, Ordering::SeqCst);
        Busy(activity.clone())
    }

    /// Completes once no request has been in progress for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let ended = self.ended.notified();
            if self.in_progress.load(Ordering::SeqCst) > 0 {
                ended.await;
                continue;
            }
            let before = self.changes.load(Ordering::SeqCst);
            tokio::time::sleep(idle).await;
            if self.in_progress.load(Ordering::SeqCst) == 0
                && self.changes.load(Ordering::SeqCst) == before
            {
                return;
            }
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_progress.fetch_sub(1, Ordering::SeqCst);
        self.0.changes.fetch_add(1, Ordering::SeqCst);
        self.0.ended.notify_waiters();
    }
}

/// Health checks are answered under any load, so an orchestrator does not restart a server
/// for being busy; so are CORS preflights, which cost nothing and without which a browser
/// could not read the refusal of the request that follows.
fn exempt<B>(req: &http::Request<B>) -> bool {
    let path = req.uri().path();
    req.method() == http::Method::OPTIONS || path == "/health" || path.starts_with("/grpc.health.")
}

/// The answer to a request over `max_requests`: "retry later" (see `rate::refusal`), given
/// without routing, authenticating or parsing it.
async fn refuse(req: http::Request<hyper::body::Incoming>, max: usize) -> axum::response::Response {
    let message = format!("the server is handling its maximum of {max} requests; retry later");
    let origin = req.headers().get(http::header::ORIGIN).cloned();
    let mut resp = super::rate::refusal(req, message, RETRY_AFTER);
    // A browser may read the refusal (and its Retry-After): it holds nothing of anyone's.
    if let Some(origin) = origin {
        super::cors::allow(&mut resp, &origin);
    }
    resp
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
