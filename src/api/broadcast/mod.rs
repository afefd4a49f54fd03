//! The broadcast dialect (the hosted real-time streaming service's REST API): publish tokens
//! under `/api/publish_token`, and the record files of broadcast recordings under
//! `/api/record_files`.
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

pub use self::models::record_file_event;
use self::models::{
    CreateRequest, DeleteRequest, ListQuery, RecordListQuery, UpdateRequest, record_file,
    states_of, token,
};
use super::AppState;
use super::dialect::{Bearer, DialectError, ErrorShape};
use crate::domain::StreamName;
use crate::service::NotDeleted;
use crate::store::{RecordFileQuery, RecordOrder, TokenOrder};

/// Default and largest page of a listing.
const ITEMS_ON_PAGE: (u32, u32) = (10, 100);

/// Whether `path` is one of the dialect's.
pub fn serves(path: &str) -> bool {
    path.starts_with("/api/publish_token") || path.starts_with("/api/record_files")
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
        .route("/api/record_files/list", get(list_records))
        .route(
            "/api/record_files/list_by_token",
            get(list_records_by_token),
        )
        .route(
            "/api/record_files/list_by_stream",
            get(list_records_by_stream),
        )
        .route("/api/record_files/usage", get(usage))
        .route("/api/record_files/delete", post(delete_records))
        .route("/api/record_files/delete/all", post(delete_all_records))
        .route(
            "/api/record_files/{record_file_id}",
            get(one_record).delete(delete_record),
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

/// An id from the path of the `what` it names: one that is not a number is not found.
fn path_id(what: &str, raw: &str) -> Result<i64, BroadcastError> {
    raw.parse().map_err(|_| {
        BroadcastError::new(
            StatusCode::NOT_FOUND,
            format!(
                "there is no {what} {:?}",
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
    let (offset, items) = page(q.page, q.items_on_page)?;
    let order = match q.sort_by.as_deref() {
        None | Some("AddedOn") => TokenOrder::AddedOn,
        Some("Name") => TokenOrder::Label,
        Some(other) => {
            return Err(BroadcastError::input(format!(
                "sortBy {other:?}: use Name or AddedOn"
            )));
        }
    };
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
    let t = s
        .services
        .token(&caller, path_id("publish token", &id)?)
        .await?;
    ok(token(&t))
}

async fn update(
    State(s): State<AppState>,
    Manager { caller, .. }: Manager,
    Path(id): Path<String>,
    body: Result<Json<UpdateRequest>, JsonRejection>,
) -> Answer {
    let id = path_id("publish token", &id)?;
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
    s.services
        .delete_token(&caller, path_id("publish token", &id)?)
        .await?;
    ok(Value::Bool(true))
}

/// The page `page` of `items` (default and largest [`ITEMS_ON_PAGE`]): its offset and size.
fn page(page: Option<u32>, items: Option<u32>) -> Result<(u32, u32), BroadcastError> {
    let items = items.unwrap_or(ITEMS_ON_PAGE.0);
    if items == 0 || items > ITEMS_ON_PAGE.1 {
        return Err(BroadcastError::input(format!(
            "itemsOnPage must be 1 to {}",
            ITEMS_ON_PAGE.1
        )));
    }
    let page = page.unwrap_or(1).max(1);
    Ok(((page - 1).saturating_mul(items), items))
}

/// The record files a listing asks for; `by` says which filter it needs.
async fn records(
    s: &AppState,
    caller: &crate::auth::Caller,
    q: RecordListQuery,
    by: Option<&str>,
) -> Answer {
    let (offset, limit) = page(q.page, q.items_on_page)?;
    let order = match q.sort_by.as_deref() {
        None | Some("RecordedOn") => RecordOrder::RecordedOn,
        Some("StreamName") => RecordOrder::StreamName,
        Some("Token") => RecordOrder::Token,
        Some(other) => {
            return Err(BroadcastError::input(format!(
                "sortBy {other:?}: use RecordedOn, StreamName or Token"
            )));
        }
    };
    let states = q
        .status
        .as_deref()
        .map(|name| {
            states_of(name).ok_or_else(|| {
                BroadcastError::input(format!(
                    "status {name:?}: use Started, InProgress, Complete or Error"
                ))
            })
        })
        .transpose()?;
    let stream = q.stream_name.map(StreamName::parse).transpose()?;
    match by {
        Some("tokenId") if q.token_id.is_none() => {
            return Err(BroadcastError::input("tokenId is required"));
        }
        Some("streamName") if stream.is_none() => {
            return Err(BroadcastError::input("streamName is required"));
        }
        _ => {}
    }
    let query = RecordFileQuery {
        token_id: q.token_id,
        stream,
        states,
        order,
        descending: q.is_descending.unwrap_or(false),
        offset: u64::from(offset),
        limit,
    };
    let files = s.services.record_files(caller, &query).await?;
    ok(files
        .iter()
        .map(|(f, links)| record_file(f, Some(links)))
        .collect())
}

async fn list_records(
    State(s): State<AppState>,
    Manager { caller, .. }: Manager,
    query: Result<Query<RecordListQuery>, QueryRejection>,
) -> Answer {
    let Query(q) = query?;
    records(&s, &caller, q, None).await
}

async fn list_records_by_token(
    State(s): State<AppState>,
    Manager { caller, .. }: Manager,
    query: Result<Query<RecordListQuery>, QueryRejection>,
) -> Answer {
    let Query(q) = query?;
    records(&s, &caller, q, Some("tokenId")).await
}

async fn list_records_by_stream(
    State(s): State<AppState>,
    Manager { caller, .. }: Manager,
    query: Result<Query<RecordListQuery>, QueryRejection>,
) -> Answer {
    let Query(q) = query?;
    records(&s, &caller, q, Some("streamName")).await
}

async fn one_record(
    State(s): State<AppState>,
    Manager { caller, .. }: Manager,
    Path(id): Path<String>,
) -> Answer {
    let (file, links) = s
        .services
        .record_file(&caller, path_id("record file", &id)?)
        .await?;
    ok(record_file(&file, Some(&links)))
}

/// The answer to a deletion: the ids deleted, and why the others were not.
fn deleted(done: &[crate::domain::RecordFile], refused: &[NotDeleted]) -> Value {
    json!({
        "deletedRecordFileIds": done.iter().map(|f| f.id).collect::<Vec<_>>(),
        "failedRecordFiles": refused.iter()
            .map(|n| json!({"recordFileId": n.id, "errorMessage": n.reason}))
            .collect::<Vec<_>>(),
    })
}

async fn delete_record(
    State(s): State<AppState>,
    Manager { caller, .. }: Manager,
    Path(id): Path<String>,
) -> Answer {
    let id = path_id("record file", &id)?;
    let (_, refused) = s.services.delete_record_files(&caller, &[id]).await?;
    match refused.into_iter().next() {
        None => ok(Value::Bool(true)),
        Some(n) if n.missing => Err(BroadcastError::new(StatusCode::NOT_FOUND, n.reason)),
        Some(n) => Err(BroadcastError::new(StatusCode::CONFLICT, n.reason)),
    }
}

async fn delete_records(
    State(s): State<AppState>,
    Manager { caller, .. }: Manager,
    body: Result<Json<DeleteRequest>, JsonRejection>,
) -> Answer {
    let Json(req) = body?;
    if req.record_file_ids.len() > 1000 {
        return Err(BroadcastError::input(
            "recordFileIds names at most 1000 record files",
        ));
    }
    let (done, refused) = s
        .services
        .delete_record_files(&caller, &req.record_file_ids)
        .await?;
    ok(deleted(&done, &refused))
}

async fn delete_all_records(State(s): State<AppState>, Manager { caller, .. }: Manager) -> Answer {
    let ids = s.services.all_record_file_ids(&caller).await?;
    let (done, refused) = s.services.delete_record_files(&caller, &ids).await?;
    ok(deleted(&done, &refused))
}

async fn usage(State(s): State<AppState>, Manager { caller, .. }: Manager) -> Answer {
    let bytes = s.services.record_usage(&caller).await?;
    ok(json!({"bytes": bytes}))
}
