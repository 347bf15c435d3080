//! The load's gRPC requests: tonic's client over hyper's HTTP/2 connection API directly.
//!
//! The load generator runs on the machine it measures, so what it spends per request is
//! taken from the server. tonic's `Channel` puts a buffer in front of each connection (a
//! queue served by a task of its own, so every request crosses it and wakes that task) and a
//! connector that reconnects. Here a connection is hyper's `SendRequest`, which the workers
//! share by cloning, and tonic's `Grpc` only encodes and decodes. A connection that fails
//! (the server closed it or went away) is opened again by the first request that finds it
//! closed; the requests sent over it until then count as transport errors (in a closed loop
//! each worker pauses after one, `load::TRANSPORT_BACKOFF`), and so do those that find the
//! server not listening.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use anyhow::Context as _;
use http::{Request, Response, Uri};
use hyper::{
    body::Incoming,
    client::conn::http2::{self, SendRequest},
};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tonic::{body::Body, client::Grpc};

use crate::common::{self, Target};

/// One HTTP/2 connection, as the service tonic's `Grpc` sends its requests through; shared by
/// the workers that clone it, and opened again when it has failed.
#[derive(Clone)]
pub struct Connection(Arc<Shared>);

struct Shared {
    authority: String,
    /// The connection's sender, cloned for each request.
    sender: Mutex<SendRequest<Body>>,
    /// Held while the connection is opened again, so one worker opens it and the others wait.
    reopening: tokio::sync::Mutex<()>,
}

impl Shared {
    fn current(&self) -> SendRequest<Body> {
        self.sender.lock().expect("never poisoned").clone()
    }

    /// A sender on an open connection: the current one, or a new connection's.
    async fn open(&self) -> anyhow::Result<SendRequest<Body>> {
        let _one_at_a_time = self.reopening.lock().await;
        let current = self.current();
        // Another worker may have opened it while this one waited.
        if !current.is_closed() {
            return Ok(current);
        }
        let sender = handshake(&self.authority).await?;
        *self.sender.lock().expect("never poisoned") = sender.clone();
        Ok(sender)
    }
}

/// A request that got no answer: the connection could not be opened, or failed. tonic hands
/// it on as the `source` of an `Unknown` status, by which `load` tells it from the server's
/// answers.
#[derive(Debug)]
pub struct TransportError(String);

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

// No `source`: tonic would read a hyper or h2 error in the chain as a status of its own.
impl std::error::Error for TransportError {}

impl TransportError {
    fn new(e: impl Into<anyhow::Error>) -> Self {
        TransportError(format!("{:#}", e.into()))
    }
}

type Answer = Pin<Box<dyn Future<Output = Result<Response<Incoming>, TransportError>> + Send>>;

impl tower_service::Service<Request<Body>> for Connection {
    type Response = Response<Incoming>;
    type Error = TransportError;
    type Future = Answer;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        // A closed connection is found, and opened again, by the request itself.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Answer {
        let shared = self.0.clone();
        Box::pin(async move {
            let mut sender = shared.current();
            if sender.is_closed() {
                sender = shared.open().await.map_err(TransportError::new)?;
            }
            sender.send_request(req).await.map_err(TransportError::new)
        })
    }
}

/// An HTTP/2 connection to `authority`, driven by a task of its own.
async fn handshake(authority: &str) -> anyhow::Result<SendRequest<Body>> {
    let stream = common::connect_tcp(authority).await?;
    let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .with_context(|| format!("HTTP/2 handshake with {authority}"))?;
    // Drives the connection; ends when every sender is dropped or the server closes it.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// A gRPC client on a new HTTP/2 connection to `target`.
pub async fn connect(target: &Target) -> anyhow::Result<Grpc<Connection>> {
    let authority = target.authority().to_owned();
    let sender = handshake(&authority).await?;
    let origin: Uri = target.base.parse().context("the target URL")?;
    Ok(Grpc::with_origin(
        Connection(Arc::new(Shared {
            authority,
            sender: Mutex::new(sender),
            reopening: tokio::sync::Mutex::new(()),
        })),
        origin,
    ))
}
