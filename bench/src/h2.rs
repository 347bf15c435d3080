//! The load's gRPC requests: tonic's client over hyper's HTTP/2 connection API directly.
//!
//! The load generator runs on the machine it measures, so what it spends per request is
//! taken from the server. tonic's `Channel` puts a buffer in front of each connection (a
//! queue served by a task of its own, so every request crosses it and wakes that task) and a
//! connector that reconnects. Here a connection is hyper's `SendRequest`, which the workers
//! share by cloning, and tonic's `Grpc` only encodes and decodes. A connection that fails is
//! not opened again: the requests sent over it from then on count as transport errors (in a
//! closed loop each worker pauses after one, `load::TRANSPORT_BACKOFF`).

use std::{
    future::Future,
    pin::Pin,
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

/// One HTTP/2 connection, as the service tonic's `Grpc` sends its requests through.
#[derive(Clone)]
pub struct Connection(SendRequest<Body>);

type Answer = Pin<Box<dyn Future<Output = Result<Response<Incoming>, hyper::Error>> + Send>>;

impl tower_service::Service<Request<Body>> for Connection {
    type Response = Response<Incoming>;
    type Error = hyper::Error;
    type Future = Answer;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), hyper::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Answer {
        Box::pin(self.0.send_request(req))
    }
}

/// A gRPC client on a new HTTP/2 connection to `target`.
pub async fn connect(target: &Target) -> anyhow::Result<Grpc<Connection>> {
    let stream = common::connect_tcp(target.authority()).await?;
    let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .with_context(|| format!("HTTP/2 handshake with {}", target.base))?;
    // Drives the connection; ends when every sender is dropped or the server closes it.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let origin: Uri = target.base.parse().context("the target URL")?;
    Ok(Grpc::with_origin(Connection(sender), origin))
}
