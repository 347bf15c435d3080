//! The one place a domain `Error` becomes a `tonic::Status`: a gRPC code, a safe message,
//! and google.rpc details — `ErrorInfo` (reason = the documented error code, plus the HTTP
//! status REST should use), `BadRequest` field violations and `RetryInfo`.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

use crate::error::Error;

/// The ErrorInfo domain of Faultline's errors.
pub const ERROR_DOMAIN: &str = "faultline";
/// ErrorInfo metadata key carrying the HTTP status of the error-handling guide.
pub const HTTP_STATUS_KEY: &str = "http_status";

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        let code = match &e {
            Error::Malformed { .. } | Error::Invalid { .. } => Code::InvalidArgument,
            Error::Unauthenticated(_) => Code::Unauthenticated,
            Error::PermissionDenied(_) => Code::PermissionDenied,
            Error::NotFound { .. } => Code::NotFound,
            Error::Conflict(_) => Code::AlreadyExists,
            Error::PayloadTooLarge { .. } => Code::OutOfRange,
            Error::Overloaded { .. } => Code::ResourceExhausted,
            Error::Unavailable(_) => Code::Unavailable,
            Error::Internal(_) => Code::Internal,
        };
        let mut details = ErrorDetails::new();
        details.set_error_info(
            e.code(),
            ERROR_DOMAIN,
            HashMap::from([(HTTP_STATUS_KEY.to_owned(), e.http_status().to_string())]),
        );
        let message = match &e {
            Error::Malformed { violations, .. } | Error::Invalid { violations, .. } => {
                details.set_bad_request(
                    violations
                        .iter()
                        .map(|v| FieldViolation {
                            field: v.field.clone(),
                            description: v.message.clone(),
                            reason: v.code.clone(),
                            localized_message: None,
                        })
                        .collect::<Vec<_>>(),
                );
                e.to_string()
            }
            Error::Overloaded { retry_after, .. } => {
                details.set_retry_info(Some(*retry_after));
                e.to_string()
            }
            Error::Internal(detail) => {
                // Internals are logged, never sent.
                tracing::error!(error = %detail, "internal error");
                e.public_message()
            }
            _ => e.to_string(),
        };
        Status::with_error_details(code, message, details)
    }
}
