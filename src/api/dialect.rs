//! What the dialects whose errors are an HTTP status and a message share (RealtimeKit,
//! broadcast): the error, written in each dialect's shape, and the caller named by a Bearer
//! token.

use std::marker::PhantomData;

use axum::Json;
use axum::extract::FromRequestParts;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::AppState;
use crate::auth::{AuthError, Caller};
use crate::domain::InvalidName;
use crate::service::ServiceError;
use crate::store::StoreError;

/// How a dialect writes an error.
pub trait ErrorShape {
    /// The body of an error answered with `status`.
    fn body(status: StatusCode, message: &str) -> Value;
}

/// An error answer, in the shape `S` writes.
pub struct DialectError<S> {
    status: StatusCode,
    message: String,
    shape: PhantomData<S>,
}

impl<S> std::fmt::Debug for DialectError<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl<S> DialectError<S> {
    /// An error answered with `status`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            shape: PhantomData,
        }
    }

    /// A request that is not acceptable as it is (400).
    pub fn input(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl<S: ErrorShape> IntoResponse for DialectError<S> {
    fn into_response(self) -> Response {
        (self.status, Json(S::body(self.status, &self.message))).into_response()
    }
}

impl<S> From<AuthError> for DialectError<S> {
    fn from(e: AuthError) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, e.to_string())
    }
}

impl<S> From<InvalidName> for DialectError<S> {
    fn from(e: InvalidName) -> Self {
        Self::input(e.to_string())
    }
}

impl<S> From<JsonRejection> for DialectError<S> {
    fn from(e: JsonRejection) -> Self {
        Self::input(e.body_text())
    }
}

impl<S> From<QueryRejection> for DialectError<S> {
    fn from(e: QueryRejection) -> Self {
        Self::input(e.body_text())
    }
}

impl<S> From<ServiceError> for DialectError<S> {
    /// Failures of the database or of storage are logged here, and answered without their
    /// details where those are internal.
    fn from(e: ServiceError) -> Self {
        let (status, message) = match e {
            ServiceError::Invalid(m) => (StatusCode::BAD_REQUEST, m),
            ServiceError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ServiceError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m),
            ServiceError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            ServiceError::Conflict(m) => (StatusCode::CONFLICT, m),
            ServiceError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m),
            ServiceError::Store(StoreError::Database(e)) => {
                tracing::error!(error = %e, "database error");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the database is unavailable".into(),
                )
            }
            ServiceError::Store(e) => {
                tracing::error!(error = %e, "store error");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
            }
            ServiceError::Storage(e) => {
                tracing::error!(error = %e, "storage error");
                (StatusCode::BAD_GATEWAY, format!("storage error: {e}"))
            }
        };
        Self::new(status, message)
    }
}

/// The caller named by `Authorization: Bearer <token>`: the API secret itself or a token
/// signed with it. A refusal is written in the shape `S`.
pub struct Bearer<S> {
    /// Who is calling.
    pub caller: Caller,
    shape: PhantomData<S>,
}

impl<S: ErrorShape + Send> FromRequestParts<AppState> for Bearer<S> {
    type Rejection = DialectError<S>;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        Ok(Self {
            caller: s.services.keys().bearer(token)?,
            shape: PhantomData,
        })
    }
}
