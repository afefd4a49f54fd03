//! The join page: `GET /join/{call_type}/{call_id}?token=...` lets people hold a real call in a
//! browser: camera, microphone and screen published over WHIP, everyone else played over WHEP,
//! and recording buttons for users who may record.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use crate::auth::Caller;
use crate::domain::{CallId, CallTypeName, Cid};
use crate::service::ServiceError;

/// The page, with `{{config}}` where the call's settings go.
const PAGE: &str = include_str!("../../templates/join.html");

/// Query of the join page.
#[derive(Debug, Deserialize)]
pub struct JoinQuery {
    /// The user's token.
    token: Option<String>,
}

/// Why a page is not served: a status and a line of text.
pub(super) struct Refusal(StatusCode, String);

impl Refusal {
    pub(super) fn new(status: StatusCode, msg: impl Into<String>) -> Self {
        Self(status, msg.into())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (
            self.0,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.1,
        )
            .into_response()
    }
}

impl From<ServiceError> for Refusal {
    fn from(e: ServiceError) -> Self {
        let status = match e {
            ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::Invalid(_) => StatusCode::BAD_REQUEST,
            _ => {
                tracing::error!(error = %e, "a page cannot be served");
                return Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
            }
        };
        Self::new(status, e.to_string())
    }
}

/// The call and the caller of a page reached as `/{page}/{call_type}/{call_id}?token=`.
pub(super) fn page_caller(
    state: &AppState,
    (call_type, call_id): (String, String),
    token: Option<&str>,
) -> Result<(Cid, Caller), Refusal> {
    let cid = match (CallTypeName::parse(call_type), CallId::parse(call_id)) {
        (Ok(t), Ok(i)) => Cid::new(t, i),
        (Err(e), _) | (_, Err(e)) => {
            return Err(Refusal::new(StatusCode::BAD_REQUEST, e.to_string()));
        }
    };
    let token = token.ok_or_else(|| {
        Refusal::new(
            StatusCode::UNAUTHORIZED,
            "add ?token=<user token> (reel token --user <name> prints one)",
        )
    })?;
    let caller = state
        .services
        .keys()
        .verify(token)
        .map_err(|e| Refusal::new(StatusCode::UNAUTHORIZED, e.to_string()))?;
    Ok((cid, caller))
}

/// Serves the page for the token's user.
pub async fn page(
    State(state): State<AppState>,
    Path(call): Path<(String, String)>,
    Query(q): Query<JoinQuery>,
) -> Result<Response, Refusal> {
    let (cid, caller) = page_caller(&state, call, q.token.as_deref())?;
    if caller == Caller::Server {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "the join page needs a user token",
        ));
    }
    let grant = state.services.join(&caller, &cid).await?;
    let config = json!({
        "call_type": cid.call_type,
        "call_id": cid.id,
        "user_id": grant.user_id,
        "token": q.token,
        "api_key": state.services.keys().api_key(),
        "capabilities": grant.capabilities,
    })
    .to_string()
    // The JSON sits in a <script> element: no "</script>" may end it early.
    .replace("</", "<\\/");
    Ok(Html(PAGE.replace("{{config}}", &config)).into_response())
}
