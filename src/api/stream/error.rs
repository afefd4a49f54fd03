//! Stream's error envelope.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::auth::AuthError;
use crate::domain::InvalidName;
use crate::service::ServiceError;
use crate::store::StoreError;

/// Stream's error codes.
pub mod code {
    /// Internal error.
    pub const INTERNAL: i32 = -1;
    /// Input error.
    pub const INPUT: i32 = 4;
    /// Authentication error.
    pub const AUTHENTICATION: i32 = 5;
    /// Something does not exist.
    pub const NOT_FOUND: i32 = 16;
    /// Not allowed.
    pub const NOT_ALLOWED: i32 = 17;
}

/// An error answer: `{code, message, StatusCode, duration, more_info, details}`.
///
/// Handlers return it; the envelope middleware prefixes the message with the operation
/// (`StartRecording failed with error: "..."`) and adds the duration.
#[derive(Debug, Clone)]
pub struct StreamError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stream error code.
    pub code: i32,
    /// What went wrong.
    pub detail: String,
}

impl StreamError {
    /// An input error (400, code 4).
    pub fn input(detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: code::INPUT,
            detail: detail.into(),
        }
    }

    /// A not-found error (404, code 16).
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: code::NOT_FOUND,
            detail: detail.into(),
        }
    }
}

/// The envelope as sent.
#[derive(Serialize)]
pub struct Envelope<'a> {
    code: i32,
    message: String,
    #[serde(rename = "StatusCode")]
    status_code: u16,
    duration: &'a str,
    more_info: &'a str,
    details: [u8; 0],
}

impl StreamError {
    /// The envelope of this error in operation `op` (or without one).
    pub fn envelope<'a>(&self, op: Option<&str>, duration: &'a str) -> Envelope<'a> {
        let message = match op {
            Some(op) => format!("{op} failed with error: {:?}", self.detail),
            None => self.detail.clone(),
        };
        Envelope {
            code: self.code,
            message,
            status_code: self.status.as_u16(),
            duration,
            more_info: "",
            details: [],
        }
    }
}

impl IntoResponse for StreamError {
    fn into_response(self) -> Response {
        let mut r = self.status.into_response();
        r.extensions_mut().insert(self);
        r
    }
}

impl From<AuthError> for StreamError {
    fn from(e: AuthError) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: code::AUTHENTICATION,
            detail: e.to_string(),
        }
    }
}

impl From<InvalidName> for StreamError {
    fn from(e: InvalidName) -> Self {
        Self::input(e.to_string())
    }
}

impl From<ServiceError> for StreamError {
    fn from(e: ServiceError) -> Self {
        let (status, code, detail) = match e {
            ServiceError::Invalid(m) => (StatusCode::BAD_REQUEST, code::INPUT, m),
            ServiceError::NotFound(m) => (StatusCode::NOT_FOUND, code::NOT_FOUND, m),
            ServiceError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, code::AUTHENTICATION, m),
            ServiceError::Forbidden(m) => (StatusCode::FORBIDDEN, code::NOT_ALLOWED, m),
            // Stream answers 400 to input that clashes with what exists.
            ServiceError::Conflict(m) => (StatusCode::BAD_REQUEST, code::INPUT, m),
            ServiceError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, code::INTERNAL, m),
            ServiceError::Store(StoreError::Database(e)) => {
                tracing::error!(error = %e, "database error");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    code::INTERNAL,
                    "the database is unavailable".into(),
                )
            }
            ServiceError::Store(e) => {
                tracing::error!(error = %e, "store error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    code::INTERNAL,
                    "internal error".into(),
                )
            }
            ServiceError::Storage(e) => {
                tracing::error!(error = %e, "storage error");
                (
                    StatusCode::BAD_GATEWAY,
                    code::INTERNAL,
                    format!("storage error: {e}"),
                )
            }
        };
        Self {
            status,
            code,
            detail,
        }
    }
}
