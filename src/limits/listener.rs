//! The accept loop: hyper's automatic HTTP/1.1 / HTTP/2 builder serving the router on one
//! port, with the request-head limits and slow-client protection of `LimitsConfig`, and a
//! graceful shutdown that lets open requests finish.

use std::{future::Future, time::Duration};

use axum::Router;
use tokio::net::TcpListener;

use super::LimitsConfig;

/// How long shutdown waits for open connections to finish their requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

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
