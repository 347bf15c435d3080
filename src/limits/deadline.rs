//! The per-request time limit for gRPC, which the REST router enforces on its own (504): a
//! unary call — including reading its request message, so a client that trickles its body is
//! covered — must be answered within `request_timeout`, or it gets `DEADLINE_EXCEEDED`.
//! Streaming answers are bounded only until their first response headers, so exports run on.

use std::time::Duration;

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};

pub async fn layer(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    let Some(content_type) = super::rate::grpc_content_type(req.headers()) else {
        return next.run(req).await;
    };
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            let mut r = tonic::Status::deadline_exceeded(format!(
                "the request was not completed within {} s",
                limit.as_secs_f64()
            ))
            .into_http::<axum::body::Body>()
            .into_response();
            r.headers_mut()
                .insert(http::header::CONTENT_TYPE, content_type);
            r
        }
    }
}
