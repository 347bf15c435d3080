//! The per-request time limit for gRPC, which the REST router enforces on its own (504): a
//! unary call — including reading its request message, so a client that trickles its body is
//! covered — must be answered within `request_timeout`, or it gets `DEADLINE_EXCEEDED`.
//! Streaming answers are bounded only until their first response headers, so exports run on.

use std::time::Duration;

use axum::{extract::Request, response::Response};

/// Runs `next` under the limit (part of the edge layer, `app::edge_layer`).
pub async fn around<F, Fut>(limit: Duration, req: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let Some(content_type) = super::grpc_content_type(req.headers()) else {
        return next(req).await;
    };
    match tokio::time::timeout(limit, next(req)).await {
        Ok(resp) => resp,
        Err(_) => super::grpc_answer(
            tonic::Status::deadline_exceeded(format!(
                "the request was not completed within {} s",
                limit.as_secs_f64()
            )),
            content_type,
        ),
    }
}
