//! The broadcast dialect (the hosted real-time streaming service's REST API): publish tokens
//! under `/api/publish_token`.
//!
//! - Auth: `Authorization: Bearer <API secret>`, or a server token signed with it.
//! - Answers: `{"status": "success", "data": ...}`; errors
//!   `{"status": "fail", "data": {"message": ...}}` (4xx) or `{"status": "error", ...}` (5xx).
//! - Ids are integers; times are RFC 3339 in UTC.

mod models;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use self::models::{CreateRequest, ListQuery, UpdateRequest, token};
use super::AppState;
use super::dialect::{Bearer, DialectError, ErrorShape};
use crate::store::TokenOrder;

/// Default and largest page of a listing.
const ITEMS_ON_PAGE: (u32, u32) = (10, 100);

/// Whether `path` is one of the dialect's.
pub fn serves(path: &str) -> bool {
    path.starts_with("/api/publish_token")
}

/// The routes of the dialect.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/publish_token", post(create))
        .route("/api/publish_token/", post(create))
        .route("/api/publish_token/list", get(list))
        .route(
            "/api/publish_token/{token_id}",
            get(one).put(update).delete(delete),
        )
}

/// How the dialect writes an error: `{"status": "fail", "data": {"message"}}`, `"error"` for a 5xx.
pub struct Broadcast;

impl ErrorShape for Broadcast {
    fn body(status: StatusCode, message: &str) -> Value {
        let status = if status.is_server_error() {
            "error"
        } else {
            "fail"
        };
        json!({"status": status, "data": {"message": message}})
    }
}

/// An error answer.
pub type BroadcastError = DialectError<Broadcast>;

/// The caller named by the Bearer token.
type Manager = Bearer<Broadcast>;

type Answer = Result<Json<Value>, BroadcastError>;

fn ok(data: Value) -> Answer {
    Ok(Json(json!({"status": "success", "data": data})))
}

/// A token id from the path: an unknown one is not found.
fn token_id(raw: &str) -> Result<i64, BroadcastError> {
    raw.parse().map_err(|_| {
        BroadcastError::new(
            StatusCode::NOT_FOUND,
            format!(
                "there is no publish token {:?}",
                raw.chars().take(40).collect::<String>()
            ),
        )
    })
}

async fn create(
    State(s): State<AppState>,
    Manager { caller, .. }: Manager,
    body: Result<Json<CreateRequest>, JsonRejection>,
) -> Answer {
    let Json(req) = body?;
    let spec = req.spec().map_err(BroadcastError::input)?;
    let t = s.services.create_token(&caller, spec).await?;
    ok(token(&t))
}

async fn list(
    State(s): State<AppState>,
    Manager { caller, .. }: Manager,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Answer {
    let Query(q) = query?;
    let items = q.items_on_page.unwrap_or(ITEMS_ON_PAGE.0);
    if items == 0 || items > ITEMS_ON_PAGE.1 {
        return Err(BroadcastError::input(format!(
            "itemsOnPage must be 1 to {}",
            ITEMS_ON_PAGE.1
        )));
    }
    let order = match q.sort_by.as_deref() {
        None | Some("AddedOn") => TokenOrder::AddedOn,
        Some("Name") => TokenOrder::Label,
        Some(other) => {
            return Err(BroadcastError::input(format!(
                "sortBy {other:?}: use Name or AddedOn"
            )));
        }
    };
    let page = q.page.unwrap_or(1).max(1);
    let offset = (page - 1).saturating_mul(items);
    let tokens = s
        .services
        .tokens(
            &caller,
            order,
            q.is_descending.unwrap_or(false),
            (offset, items),
        )
        .await?;
    ok(tokens.iter().map(token).collect())
}

async fn one(
    State(s): State<AppState>,
    Manager { caller, .. }: Manager,
    Path(id): Path<String>,
) -> Answer {
    let t = s.services.token(&caller, token_id(&id)?).await?;
    ok(token(&t))
}

async fn update(
    State(s): State<AppState>,
    Manager { caller, .. }: Manager,
    Path(id): Path<String>,
    body: Result<Json<UpdateRequest>, JsonRejection>,
) -> Answer {
    let id = token_id(&id)?;
    let Json(req) = body?;
    let changes = req.changes().map_err(BroadcastError::input)?;
    let media = &s.media;
    let t = s
        .services
        .update_token(&caller, id, changes, |t| media.publishes(&t.publisher()))
        .await?;
    ok(token(&t))
}

async fn delete(
    State(s): State<AppState>,
    Manager { caller, .. }: Manager,
    Path(id): Path<String>,
) -> Answer {
    s.services.delete_token(&caller, token_id(&id)?).await?;
    ok(Value::Bool(true))
}
