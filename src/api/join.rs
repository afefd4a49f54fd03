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

fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg.into(),
    )
        .into_response()
}

/// Serves the page for the token's user.
pub async fn page(
    State(state): State<AppState>,
    Path((call_type, call_id)): Path<(String, String)>,
    Query(q): Query<JoinQuery>,
) -> Response {
    let cid = match (CallTypeName::parse(call_type), CallId::parse(call_id)) {
        (Ok(t), Ok(i)) => Cid::new(t, i),
        (Err(e), _) | (_, Err(e)) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let Some(token) = q.token else {
        return text(
            StatusCode::UNAUTHORIZED,
            "add ?token=<user token> (reel token --user <name> prints one)",
        );
    };
    let caller = match state.services.keys().verify(&token) {
        Ok(c @ Caller::User(_)) => c,
        Ok(Caller::Server) => {
            return text(StatusCode::BAD_REQUEST, "the join page needs a user token");
        }
        Err(e) => return text(StatusCode::UNAUTHORIZED, e.to_string()),
    };
    let grant = match state.services.join(&caller, &cid).await {
        Ok(g) => g,
        Err(e) => {
            let status = match e {
                ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
                ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
                ServiceError::Invalid(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            return text(status, e.to_string());
        }
    };
    let config = json!({
        "call_type": cid.call_type,
        "call_id": cid.id,
        "user_id": grant.user_id,
        "token": token,
        "api_key": state.services.keys().api_key(),
        "capabilities": grant.capabilities,
    })
    .to_string()
    // The JSON sits in a <script> element: no "</script>" may end it early.
    .replace("</", "<\\/");
    Html(PAGE.replace("{{config}}", &config)).into_response()
}
