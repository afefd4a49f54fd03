//! The RealtimeKit-compatible dialect: recordings under
//! `/client/v4/accounts/{account_id}/realtime/kit/{app_id}`, so that requests written for the
//! hosted service work with only the host changed.
//!
//! - Auth: `Authorization: Bearer <api token>`, where the token is reel's API secret or a
//!   token signed with it (a user token acts as that user, with its permissions).
//! - reel serves one application: the account and app ids in the path are accepted as given.
//! - A `meeting_id` names a call: `<call id>` for a call of type `default`, or
//!   `<call type>:<call id>` for another type (see [`models::meeting_cid`]).
//! - Answers: `{"success": true, "data": ...}` (lists add `paging`); errors
//!   `{"success": false, "error": {"code": <HTTP status>, "message": ...}}`.
//! - Composite recordings: `POST /recordings` (see [`models::StartCompositeRequest`]), paused
//!   and resumed by `PUT /recordings/{id}`; track recordings: `POST /recordings/track`. Any
//!   recording of type `COMPOSITE` or `TRACK` can be listed, fetched and stopped.

mod models;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, RawPathParams, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use self::models::{
    LayerRequest, ListQuery, StartCompositeRequest, StartTrackRequest, Status, UpdateRequest,
    meeting_cid, recording,
};
use super::AppState;
use super::dialect::{Bearer, DialectError, ErrorShape};
use crate::domain::{
    RecordingId, RecordingState, RecordingType, Timestamp, TrackLayer, TrackOptions, UserId,
};
use crate::service::{RecordingQuery, RecordingReport, StartOptions};

pub use models::status_update;

/// Default and largest page of a listing.
const PER_PAGE: (u32, u32) = (20, 100);

/// Whether `path` is one of the dialect's.
pub fn serves(path: &str) -> bool {
    path.starts_with("/client/v4/")
}

/// The routes of the dialect.
pub fn routes() -> Router<AppState> {
    let base = "/client/v4/accounts/{account_id}/realtime/kit/{app_id}/recordings";
    Router::new()
        .route(base, get(list).post(start_composite))
        .route(&format!("{base}/track"), post(start_track))
        .route(
            &format!("{base}/active-recording/{{meeting_id}}"),
            get(active),
        )
        .route(&format!("{base}/{{recording_id}}"), get(one).put(update))
        .route_layer(axum::middleware::from_fn(plausible_ids))
}

/// Refuses account and app ids that are no ids. reel serves one application and takes any
/// account and app id, but not `..`, control characters or kilobytes of text.
async fn plausible_ids(
    params: RawPathParams,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    for (name, value) in &params {
        let plausible = !value.is_empty()
            && value.len() <= 64
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if matches!(name, "account_id" | "app_id") && !plausible {
            let shown: String = value.chars().take(40).collect();
            return KitError::input(format!(
                "{name} {shown:?} is invalid: up to 64 ASCII letters, digits, '-' and '_' are allowed"
            ))
            .into_response();
        }
    }
    next.run(req).await
}

/// How the dialect writes an error: `{"success": false, "error": {"code", "message"}}`.
pub struct Kit;

impl ErrorShape for Kit {
    fn body(status: StatusCode, message: &str) -> Value {
        json!({"success": false, "error": {"code": status.as_u16(), "message": message}})
    }
}

/// An error answer.
pub type KitError = DialectError<Kit>;

/// The caller named by the Bearer token.
type KitCaller = Bearer<Kit>;

type Answer = Result<Json<Value>, KitError>;

fn ok(data: Value) -> Answer {
    Ok(Json(json!({"success": true, "data": data})))
}

/// The types this dialect lists.
const TYPES: [RecordingType; 2] = [RecordingType::Composite, RecordingType::Track];

fn options(req: &StartTrackRequest) -> Result<TrackOptions, KitError> {
    let user_ids = req
        .user_ids
        .as_ref()
        .map(|ids| {
            ids.iter()
                .map(|u| UserId::parse(u.as_str()))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let mut layers = Vec::new();
    for (name, layer) in req.layers.iter().flatten() {
        let layer: LayerRequest = serde_json::from_value(layer.clone())
            .map_err(|e| KitError::input(format!("layers.{name}: {e}")))?;
        if let Some(kind) = layer.media_kind.as_deref()
            && kind != "audio"
        {
            return Err(KitError::input(format!(
                "layers.{name}.media_kind: only audio is recorded, not {kind:?}"
            )));
        }
        layers.push(TrackLayer {
            name: name.clone(),
            file_name_prefix: layer
                .file_name_prefix
                .unwrap_or_else(|| TrackOptions::DEFAULT_LAYER.into()),
        });
    }
    TrackOptions::new(user_ids, layers).map_err(|e| KitError::input(e.to_string()))
}

async fn start_composite(
    State(s): State<AppState>,
    KitCaller { caller, .. }: KitCaller,
    body: Result<Json<StartCompositeRequest>, JsonRejection>,
) -> Answer {
    let Json(req) = body?;
    let cid = meeting_cid(&req.meeting_id)?;
    let composite = req.options().map_err(KitError::input)?;
    let storage = match &req.storage_config {
        Some(config) => {
            let spec = config.spec().map_err(KitError::input)?;
            Some(s.services.ensure_storage(&caller, spec).await?)
        }
        None => None,
    };
    let options = StartOptions {
        composite,
        beside_others: req.allow_multiple_recordings,
        ..StartOptions::default()
    };
    let report = s
        .services
        .start_composite_recording(&caller, &cid, options, storage)
        .await?;
    tracing::Span::current().record(
        "recording_id",
        tracing::field::display(&report.recording.id),
    );
    ok(recording(&report))
}

async fn start_track(
    State(s): State<AppState>,
    KitCaller { caller, .. }: KitCaller,
    body: Result<Json<StartTrackRequest>, JsonRejection>,
) -> Answer {
    let Json(req) = body?;
    let cid = meeting_cid(&req.meeting_id)?;
    let options = options(&req)?;
    let report = s
        .services
        .start_track_recording(&caller, &cid, options)
        .await?;
    tracing::Span::current().record(
        "recording_id",
        tracing::field::display(&report.recording.id),
    );
    ok(json!({"recording": recording(&report)}))
}

fn time(what: &str, v: Option<&str>) -> Result<Option<Timestamp>, KitError> {
    v.map(|t| {
        Timestamp::parse_rfc3339(t)
            .ok_or_else(|| KitError::input(format!("{what} {t:?} is not an RFC 3339 time")))
    })
    .transpose()
}

async fn list(
    State(s): State<AppState>,
    KitCaller { caller, .. }: KitCaller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Answer {
    let Query(q) = query?;
    let per_page = q.per_page.unwrap_or(PER_PAGE.0);
    if per_page == 0 || per_page > PER_PAGE.1 {
        return Err(KitError::input(format!(
            "per_page must be 1 to {}",
            PER_PAGE.1
        )));
    }
    let page_no = q.page_no.unwrap_or(1).max(1);
    let newest_first = match q.sort_order.as_deref().map(str::to_ascii_uppercase) {
        None => true,
        Some(o) if o == "DESC" => true,
        Some(o) if o == "ASC" => false,
        Some(o) => {
            return Err(KitError::input(format!(
                "sort_order {o:?}: use ASC or DESC"
            )));
        }
    };
    let states = q
        .status
        .as_deref()
        .map(|list| {
            list.split(',')
                .map(|name| {
                    Status::parse(name.trim())
                        .map(Status::states)
                        .ok_or_else(|| KitError::input(format!("unknown status {name:?}")))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|v| v.concat())
        })
        .transpose()?;
    let query = RecordingQuery {
        cid: q.meeting_id.as_deref().map(meeting_cid).transpose()?,
        types: TYPES.to_vec(),
        states,
        created_from: time("start_time", q.start_time.as_deref())?,
        created_until: time("end_time", q.end_time.as_deref())?,
        newest_first,
        offset: (page_no - 1).saturating_mul(u64::from(per_page)),
        limit: per_page,
        token_id: None,
    };
    let (reports, total) = s.services.find_recordings(&caller, &query).await?;
    let start = query.offset;
    Ok(Json(json!({
        "success": true,
        "data": reports.iter().map(recording).collect::<Vec<_>>(),
        "paging": {
            "total_count": total,
            "start_offset": start,
            "end_offset": start + reports.len() as u64,
        },
    })))
}

fn recording_id(raw: &str) -> Result<RecordingId, KitError> {
    RecordingId::parse(raw).map_err(|e| KitError::new(StatusCode::NOT_FOUND, e.to_string()))
}

/// A recording of a type this dialect knows.
fn known(report: RecordingReport) -> Result<RecordingReport, KitError> {
    if TYPES.contains(&report.recording.recording_type) {
        Ok(report)
    } else {
        Err(KitError::new(
            StatusCode::NOT_FOUND,
            format!("recording {} does not exist", report.recording.id),
        ))
    }
}

async fn one(
    State(s): State<AppState>,
    KitCaller { caller, .. }: KitCaller,
    Path((_, _, id)): Path<(String, String, String)>,
) -> Answer {
    let id = recording_id(&id)?;
    let report = known(s.services.recording_report(&caller, &id).await?)?;
    ok(recording(&report))
}

async fn active(
    State(s): State<AppState>,
    KitCaller { caller, .. }: KitCaller,
    Path((_, _, meeting)): Path<(String, String, String)>,
) -> Answer {
    let query = RecordingQuery {
        cid: Some(meeting_cid(&meeting)?),
        types: TYPES.to_vec(),
        states: Some(vec![
            RecordingState::Requested,
            RecordingState::Running,
            RecordingState::Paused,
        ]),
        newest_first: true,
        limit: 1,
        ..RecordingQuery::default()
    };
    let (reports, _) = s.services.find_recordings(&caller, &query).await?;
    match reports.first() {
        Some(r) => ok(recording(r)),
        None => Err(KitError::new(
            StatusCode::NOT_FOUND,
            format!("meeting {meeting} has no active recording"),
        )),
    }
}

async fn update(
    State(s): State<AppState>,
    KitCaller { caller, .. }: KitCaller,
    Path((_, _, id)): Path<(String, String, String)>,
    body: Result<Json<UpdateRequest>, JsonRejection>,
) -> Answer {
    let id = recording_id(&id)?;
    let Json(req) = body?;
    match req.action.as_str() {
        "stop" => {
            known(s.services.recording_report(&caller, &id).await?)?;
            let report = s.services.stop_recording_by_id(&caller, &id).await?;
            ok(recording(&report))
        }
        "pause" | "resume" => {
            known(s.services.recording_report(&caller, &id).await?)?;
            let report = s
                .services
                .pause_recording(&caller, &id, req.action == "pause")
                .await?;
            ok(recording(&report))
        }
        other => Err(KitError::input(format!(
            "action {other:?}: use stop, pause or resume"
        ))),
    }
}
