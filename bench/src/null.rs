//! `null-server`: a reference server for measuring the ceiling of this machine, not a Faultline.
//!
//! It carries the same requests as Faultline on one port (REST over HTTP/1.1, gRPC over
//! cleartext HTTP/2) and answers them in Faultline's shapes, but does no work: no
//! authentication, no validation beyond "the body is JSON" (REST) or "the message decodes"
//! (gRPC), no grouping, no queue, no database. Every event gets a fresh id and joins one group
//! fixed for the life of the process. Run `load` against it and the events/s it reports is
//! what the transport, the load generator and the two cores can carry at all: a throughput
//! target above that figure cannot be met by any server on this machine.
//!
//! It stores nothing and must never be mistaken for Faultline, or started anywhere but beside
//! the benchmark (`bench/run-matrix.sh` with `NULL_SERVER=1`); it listens on loopback only.

use std::{
    io::Write,
    net::SocketAddr,
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use anyhow::{Context, bail};
use axum::{
    Json, Router,
    extract::State,
    http::header,
    response::{IntoResponse, Response},
    routing::{get, post},
    serve::ListenerExt,
};
use clap::Args;
use serde::{Deserialize, de::IgnoredAny};
use serde_json::json;
use tokio::net::TcpListener;
use tonic::{Request, Status};

use faultline::{
    error::Error,
    pb::{
        self,
        capture_service_server::{CaptureService, CaptureServiceServer},
    },
    rest::{capture_json, decode, error_response},
};

/// Most events one batch may carry, as on the real server.
const BATCH_MAX: usize = 1000;

const UNIMPLEMENTED: &str = "the null server only answers Capture and CaptureBatch";

#[derive(Args, Clone, Debug)]
pub struct NullArgs {
    /// Address to listen on, e.g. 127.0.0.1:18097 (REST and gRPC share the port). Only loopback
    /// addresses are accepted. No default, so it is never started by mistake on a Faultline's port.
    #[arg(long)]
    pub listen: SocketAddr,
}

/// Serves until the process is stopped.
pub async fn run(args: NullArgs) -> anyhow::Result<ExitCode> {
    let ip = args.listen.ip();
    let loopback = match ip {
        std::net::IpAddr::V4(v4) => v4.is_loopback(),
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    };
    if !loopback {
        bail!(
            "refusing to listen on {}: the null server only listens on this machine \
             (127.0.0.0/8 or ::1)",
            args.listen
        );
    }
    // The real server's default, so the same requests fit (and the same ones are refused).
    let body_limit = faultline::Config::default().body_limit;

    let null = Arc::new(NullCapture::new(body_limit));
    let grpc = tonic::service::Routes::new(
        CaptureServiceServer::from_arc(null.clone()).max_decoding_message_size(body_limit),
    )
    .into_axum_router();
    let rest = Router::new()
        .route("/v1/errors/groups", get(groups))
        .route("/v1/errors/capture", post(capture))
        .route("/v1/errors/capture/batch", post(capture_batch))
        .with_state(null);
    // Replaces the gRPC routes' own fallback, which would answer REST clients too.
    let app = grpc.merge(rest).fallback(fallback);

    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("null server listening on http://{addr}");
    println!(
        "(a reference server for faultline-bench: it answers capture calls and stores nothing)"
    );
    std::io::stdout().flush()?;

    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await.context("serving")?;
    Ok(ExitCode::SUCCESS)
}

/// What every capture answers with: a fresh event id in the one group of this process.
pub struct NullCapture {
    group_id: String,
    fingerprint: String,
    /// No event has claimed `new_group` yet.
    group_unclaimed: AtomicBool,
    /// Largest REST body taken, for the 413 answer.
    body_limit: usize,
}

impl NullCapture {
    fn new(body_limit: usize) -> Self {
        let group = uuid::Uuid::new_v4();
        NullCapture {
            group_id: group.to_string(),
            // Real fingerprints are 32 hex digits (xxh3-128); this one only looks like one.
            fingerprint: group.simple().to_string(),
            group_unclaimed: AtomicBool::new(true),
            body_limit,
        }
    }

    fn captured(&self) -> pb::CaptureResponse {
        // The load before the swap keeps the shared flag's cache line read-only after the first event.
        let new_group = self.group_unclaimed.load(Ordering::Relaxed)
            && self.group_unclaimed.swap(false, Ordering::Relaxed);
        pb::CaptureResponse {
            event_id: uuid::Uuid::new_v4().to_string(),
            group_id: self.group_id.clone(),
            fingerprint: self.fingerprint.clone(),
            new_group,
        }
    }
}

#[tonic::async_trait]
impl CaptureService for NullCapture {
    async fn capture(
        &self,
        _req: Request<pb::CaptureRequest>,
    ) -> Result<tonic::Response<pb::CaptureResponse>, Status> {
        Ok(tonic::Response::new(self.captured()))
    }

    async fn capture_message(
        &self,
        _req: Request<pb::CaptureMessageRequest>,
    ) -> Result<tonic::Response<pb::CaptureMessageResponse>, Status> {
        Err(Status::unimplemented(UNIMPLEMENTED))
    }

    async fn capture_batch(
        &self,
        req: Request<pb::CaptureBatchRequest>,
    ) -> Result<tonic::Response<pb::CaptureBatchResponse>, Status> {
        let pb::CaptureBatchRequest { events } = req.into_inner();
        batch_size_ok(events.len())
            .map_err(|(_, message)| Status::invalid_argument(format!("events: {message}")))?;
        let results: Vec<pb::CaptureBatchResult> = events
            .iter()
            .map(|_| pb::CaptureBatchResult {
                outcome: Some(pb::capture_batch_result::Outcome::Captured(self.captured())),
            })
            .collect();
        Ok(tonic::Response::new(pb::CaptureBatchResponse {
            accepted: results.len() as u32,
            rejected: 0,
            results,
        }))
    }

    async fn capture_envelope(
        &self,
        _req: Request<pb::CaptureEnvelopeRequest>,
    ) -> Result<tonic::Response<pb::CaptureEnvelopeResponse>, Status> {
        Err(Status::unimplemented(UNIMPLEMENTED))
    }

    async fn submit_feedback(
        &self,
        _req: Request<pb::SubmitFeedbackRequest>,
    ) -> Result<tonic::Response<pb::SubmitFeedbackResponse>, Status> {
        Err(Status::unimplemented(UNIMPLEMENTED))
    }
}

/// The real server's limits on a batch: the violation's code and message for `events`.
fn batch_size_ok(n: usize) -> Result<(), (&'static str, String)> {
    if n == 0 {
        Err(("REQUIRED", "must hold at least one event".to_owned()))
    } else if n > BATCH_MAX {
        Err(("TOO_MANY", format!("at most {BATCH_MAX} events per batch")))
    } else {
        Ok(())
    }
}

// ---------- REST: the server's own decoding, answers and error envelope ----------

#[derive(Deserialize)]
struct BatchBody {
    events: Vec<IgnoredAny>,
}

/// An empty page of groups (the load tool's preflight and warm-up call this).
async fn groups() -> Response {
    Json(json!({"groups": [], "has_more": false, "next_cursor": null})).into_response()
}

async fn capture(State(null): State<Arc<NullCapture>>, req: axum::extract::Request) -> Response {
    let (head, body) = split(req);
    match read::<IgnoredAny>(body, null.body_limit).await {
        Ok(_) => Json(answer(null.captured())).into_response(),
        Err(e) => error_response(&head, e),
    }
}

async fn capture_batch(
    State(null): State<Arc<NullCapture>>,
    req: axum::extract::Request,
) -> Response {
    let (head, body) = split(req);
    let n = match read::<BatchBody>(body, null.body_limit)
        .await
        .and_then(|BatchBody { events }| {
            batch_size_ok(events.len())
                .map(|()| events.len())
                .map_err(|(code, message)| Error::invalid_field("events", message, code))
        }) {
        Ok(n) => n,
        Err(e) => return error_response(&head, e),
    };
    let results: Vec<serde_json::Value> = (0..n).map(|_| answer(null.captured())).collect();
    Json(json!({"ok": true, "accepted": n, "rejected": 0, "results": results})).into_response()
}

/// Unknown paths: gRPC clients get UNIMPLEMENTED, everyone else the JSON 404.
async fn fallback(req: axum::extract::Request) -> Response {
    let is_grpc = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if is_grpc {
        Status::unimplemented(UNIMPLEMENTED)
            .into_http::<axum::body::Body>()
            .into_response()
    } else {
        error_response(&req, Error::NotFound { what: "route" })
    }
}

fn answer(c: pb::CaptureResponse) -> serde_json::Value {
    capture_json(c.event_id, c.group_id, c.fingerprint, c.new_group)
}

/// The request's head (for the error envelope) and its body.
fn split(req: axum::extract::Request) -> (http::Request<()>, axum::body::Body) {
    let (parts, body) = req.into_parts();
    (http::Request::from_parts(parts, ()), body)
}

/// Reads the body within `limit` (a body over it, or broken off, is answered as too large)
/// and decodes it as the server does.
async fn read<T: serde::de::DeserializeOwned>(
    body: axum::body::Body,
    limit: usize,
) -> Result<T, Error> {
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| Error::PayloadTooLarge { limit })?;
    decode(&bytes)
}
