//! The Stream-compatible dialect: `/api/v2/video/...` and friends.
//!
//! Handlers translate between Stream's wire shapes and the [`Services`]; they hold no
//! business logic. Every route is wrapped by [`envelope`], which adds `duration` to answers and
//! turns errors into Stream's envelope with the operation's name in the message.

mod error;
mod extract;
pub mod models;

use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use serde_json::json;

pub use error::{StreamError, code};
use extract::{Reply, ReplyBody, StreamCaller, StreamJson};
pub use models::StreamShapes;
use models::*;

use super::AppState;
use crate::domain::{
    CallId, CallTypeName, Cid, FileName, Pin, RecordingType, S3Access, SessionId, StorageName,
};
use crate::service::{
    CallChanges, CallTypeChanges, NewCall, NewCallType, NewMember, StorageSpec, UserChanges,
};

/// Wraps one method's handler with the envelope middleware for operation `op`.
fn op(name: &'static str, route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    route.layer(from_fn_with_state(name, envelope))
}

/// Whether `path` is one of the dialect's.
pub fn serves(path: &str) -> bool {
    path.starts_with("/api/") || path.starts_with("/video/")
}

/// The dialect's routes.
pub fn routes() -> Router<AppState> {
    let video = Router::new()
        .route(
            "/call/{type}/{id}",
            op("GetOrCreateCall", post(get_or_create_call))
                .merge(op("GetCall", get(get_call)))
                .merge(op("UpdateCall", patch(update_call))),
        )
        .route("/call/{type}/{id}/pin", op("VideoPin", post(pin)))
        .route("/call/{type}/{id}/unpin", op("VideoUnpin", post(unpin)))
        .route(
            "/call/{type}/{id}/recordings",
            op("ListRecordings", get(list_recordings)),
        )
        .route(
            "/call/{type}/{id}/recordings/{recording_type}/start",
            op("StartRecording", post(start_recording)),
        )
        .route(
            "/call/{type}/{id}/recordings/{recording_type}/stop",
            op("StopRecording", post(stop_recording)),
        )
        .route(
            "/call/{type}/{id}/start_recording",
            op("StartRecording", post(start_composite)),
        )
        .route(
            "/call/{type}/{id}/stop_recording",
            op("StopRecording", post(stop_composite)),
        )
        .route(
            "/call/{type}/{id}/{session}/recordings/{filename}",
            op("DeleteRecording", delete(delete_recording)),
        )
        .route(
            "/calltypes",
            op("ListCallTypes", get(list_call_types))
                .merge(op("CreateCallType", post(create_call_type))),
        )
        .route(
            "/calltypes/{name}",
            op("GetCallType", get(get_call_type))
                .merge(op("UpdateCallType", put(update_call_type)))
                .merge(op("DeleteCallType", delete(delete_call_type))),
        );
    Router::new()
        .nest("/api/v2/video", video.clone())
        // Stream's own documentation sometimes omits the /api/v2 prefix.
        .nest("/video", video)
        .route(
            "/api/v2/external_storage",
            op("ListExternalStorage", get(list_storages))
                .merge(op("CreateExternalStorage", post(create_storage))),
        )
        .route(
            "/api/v2/external_storage/{name}",
            op("UpdateExternalStorage", put(update_storage))
                .merge(op("DeleteExternalStorage", delete(delete_storage))),
        )
        .route(
            "/api/v2/external_storage/{name}/check",
            op("CheckExternalStorage", get(check_storage)),
        )
        .route("/api/v2/users", op("UpdateUsers", post(upsert_users)))
        .route(
            "/api/v2/reel/webhooks/failed",
            op("ListFailedWebhooks", get(failed_webhooks)),
        )
}

/// Adds `duration` to answers and renders errors as Stream's envelope.
async fn envelope(State(op): State<&'static str>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let mut res = next.run(req).await;
    let duration = format!("{:.2}ms", started.elapsed().as_secs_f64() * 1000.0);
    let body = if let Some(reply) = res.extensions_mut().remove::<ReplyBody>() {
        reply.with_duration(&duration)
    } else if let Some(e) = res.extensions_mut().remove::<StreamError>() {
        if e.status.is_server_error() {
            tracing::warn!(op, status = %e.status, error = %e.detail, "request failed");
        }
        serde_json::to_vec(&e.envelope(Some(op), &duration)).expect("the envelope serializes")
    } else {
        return res;
    };
    *res.body_mut() = Body::from(body);
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// Path parameters, all validated before the body is read, so that a hostile id is refused
/// as such whatever else is wrong with the request. The call's cid is recorded in the span.
#[derive(Default)]
struct Params {
    cid: Option<Cid>,
    session: Option<SessionId>,
    filename: Option<FileName>,
    name: Option<CallTypeName>,
    recording_type: Option<RecordingType>,
}

impl FromRequestParts<AppState> for Params {
    type Rejection = StreamError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, StreamError> {
        let raw = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| StreamError::input(e.to_string()))?;
        let mut p = Params::default();
        let (mut call_type, mut id) = (None, None);
        for (k, v) in &raw {
            match k {
                "type" => call_type = Some(CallTypeName::parse(v)?),
                "id" => id = Some(CallId::parse(v)?),
                "session" => p.session = Some(SessionId::parse(v)?),
                "filename" => p.filename = Some(FileName::parse(v)?),
                "name" => p.name = Some(CallTypeName::parse(v)?),
                "recording_type" => {
                    let of_calls =
                        RecordingType::parse(v).filter(|t| RecordingType::CALLS.contains(t));
                    p.recording_type = Some(of_calls.ok_or_else(|| {
                        StreamError::input(format!(
                            "recording_type {v:?} is invalid: expected composite, individual, raw or track"
                        ))
                    })?);
                }
                _ => {}
            }
        }
        if let (Some(t), Some(i)) = (call_type, id) {
            let cid = Cid::new(t, i);
            tracing::Span::current().record("cid", tracing::field::display(&cid));
            p.cid = Some(cid);
        }
        Ok(p)
    }
}

fn missing(what: &str) -> StreamError {
    StreamError::input(format!("missing path parameter {what}"))
}

impl Params {
    fn cid(&self) -> Result<Cid, StreamError> {
        self.cid.clone().ok_or_else(|| missing("type or id"))
    }

    fn recording_type(&self) -> Result<RecordingType, StreamError> {
        self.recording_type.ok_or_else(|| missing("recording_type"))
    }

    fn session(&self) -> Result<SessionId, StreamError> {
        self.session.clone().ok_or_else(|| missing("session"))
    }

    fn filename(&self) -> Result<FileName, StreamError> {
        self.filename.clone().ok_or_else(|| missing("filename"))
    }

    fn call_type_name(&self) -> Result<CallTypeName, StreamError> {
        self.name.clone().ok_or_else(|| missing("name"))
    }

    fn storage_name(&self) -> Result<StorageName, StreamError> {
        Ok(StorageName::parse(self.call_type_name()?.as_str())?)
    }
}

type Answer = Result<Reply, StreamError>;

async fn get_or_create_call(
    State(s): State<AppState>,
    StreamCaller(caller): StreamCaller,
    p: Params,
    StreamJson(req): StreamJson<GetOrCreateCallRequest>,
) -> Answer {
    let cid = p.cid()?;
    let data = req.data.unwrap_or_default();
    let new = NewCall {
        created_by: data.created_by_id.or(data.created_by.map(|u| u.id)),
        custom: data.custom.unwrap_or_default(),
        settings_override: data.settings_override.unwrap_or_default(),
        members: data
            .members
            .unwrap_or_default()
            .into_iter()
            .map(|m| NewMember {
                user_id: m.user_id,
                role: m.role,
                custom: m.custom.unwrap_or_default(),
            })
            .collect(),
        starts_at: data.starts_at,
        team: data.team,
    };
    let (view, created) = s.services.get_or_create_call(&caller, &cid, new).await?;
    let mut body = call_envelope(&view, &s.public_url);
    body.insert("created".into(), json!(created));
    Ok(Reply::new(body))
}

async fn get_call(
    State(s): State<AppState>,
    StreamCaller(caller): StreamCaller,
    p: Params,
) -> Answer {
    let view = s.services.get_call(&caller, &p.cid()?).await?;
    Ok(Reply::new(call_envelope(&view, &s.public_url)))
}

async fn update_call(
    State(s): State<AppState>,
    StreamCaller(caller): StreamCaller,
    p: Params,
    StreamJson(req): StreamJson<UpdateCallRequest>,
) -> Answer {
    let changes = CallChanges {
        custom: req.custom,
        settings_override: req.settings_override,
        starts_at: req.starts_at,
    };
    let view = s.services.update_call(&caller, &p.cid()?, changes).await?;
    Ok(Reply::new(call_envelope(&view, &s.public_url)))
}

/// An optional storage name from a body field, empty meaning none.
fn optional_storage(s: Option<String>) -> Result<Option<StorageName>, StreamError> {
    Ok(s.filter(|s| !s.is_empty())
        .map(StorageName::parse)
        .transpose()?)
}

async fn start(
    s: &AppState,
    caller: &crate::auth::Caller,
    cid: &Cid,
    t: RecordingType,
    req: StartRecordingRequest,
) -> Answer {
    let storage = optional_storage(req.recording_external_storage)?;
    let rec = s.services.start_recording(caller, cid, t, storage).await?;
    tracing::Span::current().record("recording_id", tracing::field::display(&rec.id));
    Ok(Reply::empty())
}

async fn start_recording(
    State(s): State<AppState>,
    StreamCaller(caller): StreamCaller,
    p: Params,
    StreamJson(req): StreamJson<StartRecordingRequest>,
) -> Answer {
    start(&s, &caller, &p.cid()?, p.recording_type()?, req).await
}

async fn start_composite(
    State(s): State<AppState>,
    StreamCaller(caller): StreamCaller,
    p: Params,
    StreamJson(req): StreamJson<StartRecordingRequest>,
) -> Answer {
    start(&s, &caller, &p.cid()?, RecordingType::Composite, req).await
}

async fn stop(s: &AppState, caller: &crate::auth::Caller, cid: &Cid, t: RecordingType) -> Answer {
    let rec = s.services.stop_recording(caller, cid, t).await?;
    tracing::Span::current().record("recording_id", tracing::field::display(&rec.id));
    Ok(Reply::empty())
}

async fn stop_recording(
    State(s): State<AppState>,
    StreamCaller(caller): StreamCaller,
    p: Params,
) -> Answer {
    stop(&s, &caller, &p.cid()?, p.recording_type()?).await
}

async fn stop_composite(
    State(s): State<AppState>,
    StreamCaller(caller): StreamCaller,
    p: Params,
) -> Answer {
    stop(&s, &caller, &p.cid()?, RecordingType::Composite).await
}

async fn pin(
    State(s): State<AppState>,
    StreamCaller(caller): StreamCaller,
    p: Params,
    StreamJson(pin): StreamJson<Pin>,
) -> Answer {
    s.services.pin(&caller, &p.cid()?, pin, true).await?;
    Ok(Reply::empty())
}

async fn unpin(
    State(s): State<AppState>,
    StreamCaller(caller): StreamCaller,
    p: Params,
    StreamJson(pin): StreamJson<Pin>,
) -> Answer {
    s.services.pin(&caller, &p.cid()?, pin, false).await?;
    Ok(Reply::empty())
}

async fn list_recordings(
    State(s): State<AppState>,
    StreamCaller(caller): StreamCaller,
    p: Params,
) -> Answer {
    let recordings = s.services.list_recordings(&caller, &p.cid()?).await?;
    Ok(Reply::new(ListRecordingsResponse { recordings }))
}

async fn delete_recording(
    State(s): State<AppState>,
    StreamCaller(caller): StreamCaller,
    p: Params,
) -> Answer {
    let cid = p.cid()?;
    s.services
        .delete_recording(&caller, &cid, &p.session()?, &p.filename()?)
        .await?;
    Ok(Reply::empty())
}

async fn list_call_types(State(s): State<AppState>, StreamCaller(caller): StreamCaller) -> Answer {
    let types = s.services.list_call_types(&caller).await?;
    let map: serde_json::Map<_, _> = types
        .iter()
        .map(|ct| {
            (
                ct.name.to_string(),
                serde_json::Value::Object(call_type_response(ct)),
            )
        })
        .collect();
    Ok(Reply::new(json!({ "call_types": map })))
}

async fn create_call_type(
    State(s): State<AppState>,
    StreamCaller(caller): StreamCaller,
    StreamJson(req): StreamJson<CreateCallTypeRequest>,
) -> Answer {
    let new = NewCallType {
        name: req.name,
        settings: req.settings.unwrap_or_default(),
        grants: req.grants,
        notification_settings: req.notification_settings.unwrap_or_default(),
        external_storage: optional_storage(req.external_storage)?,
    };
    let ct = s.services.create_call_type(&caller, new).await?;
    Ok(Reply::new(call_type_response(&ct)))
}

async fn get_call_type(
    State(s): State<AppState>,
    StreamCaller(caller): StreamCaller,
    p: Params,
) -> Answer {
    let ct = s
        .services
        .get_call_type(&caller, &p.call_type_name()?)
        .await?;
    Ok(Reply::new(call_type_response(&ct)))
}

async fn update_call_type(
    State(s): State<AppState>,
    StreamCaller(caller): StreamCaller,
    p: Params,
    StreamJson(req): StreamJson<UpdateCallTypeRequest>,
) -> Answer {
    let changes = CallTypeChanges {
        settings: req.settings,
        grants: req.grants,
        notification_settings: req.notification_settings,
        external_storage: req
            .external_storage
            .map(|s| optional_storage(Some(s)))
            .transpose()?,
    };
    let ct = s
        .services
        .update_call_type(&caller, &p.call_type_name()?, changes)
        .await?;
    Ok(Reply::new(call_type_response(&ct)))
}

async fn delete_call_type(
    State(s): State<AppState>,
    StreamCaller(caller): StreamCaller,
    p: Params,
) -> Answer {
    s.services
        .delete_call_type(&caller, &p.call_type_name()?)
        .await?;
    Ok(Reply::empty())
}

fn storage_spec(
    name: StorageName,
    req: ExternalStorageRequest,
) -> Result<StorageSpec, StreamError> {
    if req.storage_type != "s3" {
        return Err(StreamError::input(format!(
            "storage_type {:?} is not supported: reel stores files in S3 or S3-compatible services (storage_type \"s3\")",
            req.storage_type
        )));
    }
    let s3 = req
        .aws_s3
        .ok_or_else(|| StreamError::input("aws_s3 is required for storage_type s3"))?;
    if let Some(e) = &s3.s3_custom_endpoint_url
        && !(e.starts_with("http://") || e.starts_with("https://"))
    {
        return Err(StreamError::input(
            "aws_s3.s3_custom_endpoint_url must be an http(s) URL",
        ));
    }
    if req.bucket.is_empty() {
        return Err(StreamError::input("bucket is required"));
    }
    Ok(StorageSpec {
        name,
        bucket: req.bucket,
        path: req.path.unwrap_or_default(),
        s3: S3Access {
            region: s3.s3_region,
            access_key_id: s3.s3_api_key.filter(|s| !s.is_empty()),
            secret_access_key: s3.s3_secret.filter(|s| !s.is_empty()).map(Into::into),
            endpoint_url: s3.s3_custom_endpoint_url.filter(|s| !s.is_empty()),
        },
    })
}

async fn list_storages(State(s): State<AppState>, StreamCaller(caller): StreamCaller) -> Answer {
    let all = s.services.list_storages(&caller).await?;
    let map: serde_json::Map<_, _> = all
        .iter()
        .map(|st| (st.name.to_string(), storage_response(st)))
        .collect();
    Ok(Reply::new(json!({ "external_storages": map })))
}

async fn create_storage(
    State(s): State<AppState>,
    StreamCaller(caller): StreamCaller,
    StreamJson(req): StreamJson<ExternalStorageRequest>,
) -> Answer {
    let name = req
        .name
        .clone()
        .ok_or_else(|| StreamError::input("name is required"))?;
    s.services
        .create_storage(&caller, storage_spec(name, req)?)
        .await?;
    Ok(Reply::empty())
}

async fn update_storage(
    State(s): State<AppState>,
    StreamCaller(caller): StreamCaller,
    p: Params,
    StreamJson(req): StreamJson<ExternalStorageRequest>,
) -> Answer {
    let name = p.storage_name()?;
    let st = s
        .services
        .update_storage(&caller, storage_spec(name, req)?)
        .await?;
    Ok(Reply::new(storage_response(&st)))
}

async fn delete_storage(
    State(s): State<AppState>,
    StreamCaller(caller): StreamCaller,
    p: Params,
) -> Answer {
    s.services
        .delete_storage(&caller, &p.storage_name()?)
        .await?;
    Ok(Reply::empty())
}

async fn check_storage(
    State(s): State<AppState>,
    StreamCaller(caller): StreamCaller,
    p: Params,
) -> Answer {
    let url = s
        .services
        .check_storage(&caller, &p.storage_name()?)
        .await?;
    Ok(Reply::new(json!({ "file_url": url })))
}

async fn upsert_users(
    State(s): State<AppState>,
    StreamCaller(caller): StreamCaller,
    StreamJson(req): StreamJson<UpdateUsersRequest>,
) -> Answer {
    let changes = req
        .users
        .into_values()
        .map(|u| UserChanges {
            id: u.id,
            role: u.role,
            name: u.name,
            image: u.image,
            custom: u.custom.unwrap_or_default(),
        })
        .collect();
    let users = s.services.upsert_users(&caller, changes).await?;
    let map: serde_json::Map<_, _> = users
        .iter()
        .map(|u| (u.id.to_string(), full_user_response(u)))
        .collect();
    Ok(Reply::new(
        json!({ "users": map, "membership_deletion_task_id": "" }),
    ))
}

async fn failed_webhooks(State(s): State<AppState>, StreamCaller(caller): StreamCaller) -> Answer {
    let deliveries = s.services.failed_deliveries(&caller, 500).await?;
    let list: Vec<_> = deliveries
        .iter()
        .map(|d| {
            json!({
                "id": d.id, "endpoint": d.endpoint, "call_cid": d.ordering_key, "event_type": d.event_type,
                "state": if d.state == crate::store::DeliveryState::Dead { "given_up" } else { "retrying" },
                "attempts": d.attempts, "last_status": d.last_status, "last_error": d.last_error,
                "created_at": d.created_at, "next_attempt_at": d.next_attempt_at
            })
        })
        .collect();
    Ok(Reply::new(json!({ "deliveries": list })))
}
