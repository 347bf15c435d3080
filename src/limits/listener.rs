//! The accept loop: hyper's automatic HTTP/1.1 / HTTP/2 builder serving the router on one
//! port, with the request-head limits and slow-client protection of `LimitsConfig`, a cap on
//! connections that bounds memory, and a graceful shutdown that lets open requests finish.

use std::{future::Future, time::Duration};

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
        server::{conn::auto::Builder, graceful::GracefulShutdown},
        service::TowerToHyperService,
    };
    use std::sync::Arc;
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
    let graceful = GracefulShutdown::new();
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
        let svc = tower::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            let permit = (!exempt(&req)).then(|| in_flight.clone().try_acquire_owned());
            let (router, refusal) = (router.clone(), refusal.clone());
            async move {
                // Held until the answer's head is out (a streamed body then runs on).
                let _permit = match permit {
                    Some(Err(_)) => return refusal.oneshot(req).await,
                    permit => permit,
                };
                router.oneshot(req).await
            }
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let first_bytes_within = limits.header_read_timeout;
        tokio::spawn(async move {
            let _place = place;
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
    let mut resp = super::rate::refusal(&req, message, RETRY_AFTER);
    // A browser may read the refusal (and its Retry-After): it holds nothing of anyone's.
    if let Some(origin) = req.headers().get(http::header::ORIGIN).cloned() {
        super::cors::allow(&mut resp, &origin);
    }
    super::drain_later(req.into_body());
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
