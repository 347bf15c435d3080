//! The one error type of Faultline. Domain, store and ingest code return it; `grpc::status`
//! turns it into a rich `tonic::Status`, and `rest::error` turns that Status into the
//! documented JSON body. It names no transport or database type on purpose.

use std::time::Duration;

/// A problem with one field of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Dotted path of the field, e.g. `exception.type`.
    pub field: String,
    /// What is wrong, for a human.
    pub message: String,
    /// Machine-readable reason, SCREAMING_SNAKE_CASE (e.g. `REQUIRED`).
    pub code: String,
}

impl FieldViolation {
    pub fn new(
        field: impl Into<String>,
        message: impl Into<String>,
        code: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            code: code.into(),
        }
    }
}

/// `field: message`, the form used wherever violations are listed as text.
impl std::fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The request could not be read at all: malformed JSON, a bad cursor, a malformed id.
    #[error("{message}")]
    Malformed {
        message: String,
        violations: Vec<FieldViolation>,
    },
    /// The request was readable but its content is invalid: a missing field, a wrong type, a value out of range.
    #[error("{message}")]
    Invalid {
        message: String,
        violations: Vec<FieldViolation>,
    },
    /// No credentials, or credentials that are unknown, expired or revoked.
    #[error("{0}")]
    Unauthenticated(String),
    /// Valid credentials without the needed scope.
    #[error("{0}")]
    PermissionDenied(String),
    /// The thing does not exist, or belongs to another project.
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// The body exceeds the configured limit.
    #[error("request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The ingest queue is full or a rate limit was hit: try again after `retry_after`.
    #[error("{message}")]
    Overloaded {
        message: String,
        retry_after: Duration,
    },
    /// A dependency (the database) is unreachable or the server is shutting down.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected failure. The message is logged, never shown to clients.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn malformed(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Error::Malformed {
            violations: vec![FieldViolation::new(field, message.clone(), "MALFORMED")],
            message: format!("{field}: {message}"),
        }
    }

    pub fn invalid(violations: Vec<FieldViolation>) -> Self {
        let message = match violations.as_slice() {
            [one] => one.to_string(),
            _ => "request validation failed".to_string(),
        };
        Error::Invalid {
            message,
            violations,
        }
    }

    pub fn invalid_field(field: &str, message: impl Into<String>, code: &str) -> Self {
        Self::invalid(vec![FieldViolation::new(field, message, code)])
    }

    pub fn required(field: &str) -> Self {
        Self::invalid_field(field, "is required", "REQUIRED")
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        Error::Internal(e.to_string())
    }

    /// What a client may read: an internal failure's detail is replaced (it is logged instead).
    pub fn public_message(&self) -> String {
        match self {
            Error::Internal(_) => "an unexpected error occurred".to_owned(),
            other => other.to_string(),
        }
    }

    /// The field violations of a validation error; empty for every other error.
    pub fn violations(&self) -> &[FieldViolation] {
        match self {
            Error::Malformed { violations, .. } | Error::Invalid { violations, .. } => violations,
            _ => &[],
        }
    }

    /// The code of the error-handling guide (`VALIDATION_ERROR`, `NOT_FOUND`, …).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Malformed { .. } | Error::Invalid { .. } => "VALIDATION_ERROR",
            Error::Unauthenticated(_) => "UNAUTHORIZED",
            Error::PermissionDenied(_) => "FORBIDDEN",
            Error::NotFound { .. } => "NOT_FOUND",
            Error::Conflict(_) => "CONFLICT",
            Error::PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            Error::Overloaded { .. } => "RATE_LIMITED",
            Error::Unavailable(_) => "SERVICE_UNAVAILABLE",
            Error::Internal(_) => "INTERNAL_ERROR",
        }
    }

    /// The HTTP status of the error-handling guide's table (400 for unreadable requests).
    pub fn http_status(&self) -> u16 {
        match self {
            Error::Malformed { .. } => 400,
            Error::Invalid { .. } => 422,
            Error::Unauthenticated(_) => 401,
            Error::PermissionDenied(_) => 403,
            Error::NotFound { .. } => 404,
            Error::Conflict(_) => 409,
            Error::PayloadTooLarge { .. } => 413,
            Error::Overloaded { .. } => 429,
            Error::Unavailable(_) => 503,
            Error::Internal(_) => 500,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
