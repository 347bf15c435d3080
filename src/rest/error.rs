//! The one place a `tonic::Status` becomes the documented JSON error body:
//! `{"error":{code,message,statusCode,requestId,timestamp,details,path,method,traceId}}`.
//! Handlers return `ApiError`; the `render` middleware, which knows the request's path,
//! method and id, writes the body. Errors axum produces itself (405, timeouts) get the same body.

use axum::{
    body::Body,
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::{error::Error, grpc::status::HTTP_STATUS_KEY};

/// An error on its way to a REST client.
#[derive(Debug)]
pub struct ApiError(pub Status);

impl From<Status> for ApiError {
    fn from(s: Status) -> Self {
        ApiError(s)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e.into())
    }
}

/// Carried in the response extensions from `ApiError` to `render`.
#[derive(Clone)]
struct Pending(std::sync::Arc<Status>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let details = self.0.get_error_details();
        let status = details
            .error_info()
            .and_then(|i| i.metadata.get(HTTP_STATUS_KEY))
            .and_then(|s| s.parse::<u16>().ok())
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or_else(|| http_status(self.0.code()));
        let mut resp = status.into_response();
        if let Some(delay) = details.retry_info().and_then(|r| r.retry_delay) {
            let secs = delay.as_secs().max(1);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp.extensions_mut()
            .insert(Pending(std::sync::Arc::new(self.0)));
        resp
    }
}

/// The HTTP status for a gRPC code, when the Status carries no explicit one.
fn http_status(code: Code) -> StatusCode {
    match code {
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Ok | Code::Cancelled | Code::Unknown | Code::Internal | Code::DataLoss => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// The documented code for a status that did not come from a domain error.
fn code_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 422 => "VALIDATION_ERROR",
        401 => "UNAUTHORIZED",
        403 => "FORBIDDEN",
        404 => "NOT_FOUND",
        405 => "METHOD_NOT_ALLOWED",
        408 | 504 => "TIMEOUT",
        409 => "CONFLICT",
        413 => "PAYLOAD_TOO_LARGE",
        415 => "UNSUPPORTED_MEDIA_TYPE",
        429 => "RATE_LIMITED",
        503 => "SERVICE_UNAVAILABLE",
        _ => "INTERNAL_ERROR",
    }
}

/// What an error body says about its request.
struct RequestInfo {
    method: String,
    path: String,
    request_id: String,
    trace_id: String,
}

impl RequestInfo {
    fn of<B>(req: &http::Request<B>) -> Self {
        let request_id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let trace_id = req
            .headers()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .and_then(|tp| tp.split('-').nth(1))
            .map(str::to_owned)
            .unwrap_or_else(|| request_id.clone());
        RequestInfo {
            method: req.method().to_string(),
            path: req.uri().path().to_owned(),
            request_id,
            trace_id,
        }
    }
}

/// Middleware for the REST router: renders every error response in the documented format,
/// the native error body or, on the Error Logging System's routes, that API's envelope.
pub async fn render(req: Request, next: Next) -> Response {
    let info = RequestInfo::of(&req);
    finish(info, next.run(req).await)
}

/// The documented error answer to `req`, for middleware that refuses a request before it
/// reaches the REST router (rate limits, CORS).
pub fn error_response<B>(req: &http::Request<B>, e: Error) -> Response {
    finish(RequestInfo::of(req), ApiError::from(e).into_response())
}

fn finish(info: RequestInfo, mut resp: Response) -> Response {
    let RequestInfo {
        method,
        path,
        request_id,
        trace_id,
    } = info;
    let status = resp.status();
    let pending = resp.extensions_mut().remove::<Pending>();
    let already_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if pending.is_none()
        && (!(status.is_client_error() || status.is_server_error()) || already_json)
    {
        return resp;
    }
    let (code, message, details) = match &pending {
        Some(Pending(s)) => {
            let d = s.get_error_details();
            let code = d
                .error_info()
                .map(|i| i.reason.clone())
                .unwrap_or_else(|| code_for(status).to_owned());
            let details: Vec<Value> = d
                .bad_request()
                .map(|b| {
                    b.field_violations
                        .iter()
                        .map(|v| json!({"field": v.field, "message": v.description, "code": v.reason}))
                        .collect()
                })
                .unwrap_or_default();
            (code, s.message().to_owned(), details)
        }
        None => (
            code_for(status).to_owned(),
            status.canonical_reason().unwrap_or("error").to_owned(),
            Vec::new(),
        ),
    };
    if super::els_api::is_own_path(&path) {
        return envelope_answer(resp, &message, &code, details, &request_id);
    }
    let body = json!({
        "error": {
            "code": code,
            "message": message,
            "statusCode": status.as_u16(),
            "requestId": request_id,
            "timestamp": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            "details": details,
            "path": path,
            "method": method,
            "traceId": trace_id,
        }
    });
    let (mut parts, _) = resp.into_parts();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body.to_string()))
}

/// `resp` as the Error Logging System's error envelope, `{"error": "…", "status": "error"}`
/// with the code, field details and request id beside it. That document knows 400 for bad
/// input, not 422.
fn envelope_answer(
    resp: Response,
    message: &str,
    code: &str,
    details: Vec<Value>,
    request_id: &str,
) -> Response {
    let status = match resp.status() {
        StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
        other => other,
    };
    let body = json!({
        "error": message,
        "status": "error",
        "code": code,
        "details": details,
        "request_id": request_id,
    });
    let (mut parts, _) = resp.into_parts();
    parts.status = status;
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body.to_string()))
}
