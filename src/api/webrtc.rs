//! WHIP (RFC 9725) and WHEP endpoints, and the live event streams pages subscribe to.
//!
//! - `POST /whip/broadcast/{stream}[?sourceId=..]`: publish a broadcast stream with a publish
//!   token (`Authorization: Bearer <token>`) as a participant of the call `broadcast:<stream>`.
//! - `POST /whep/broadcast/{stream}`: watch a broadcast stream: openly, or with a subscribe
//!   token when a publish token of the stream says viewers need one.
//! - `POST /whip/{type}/{id}[?source=screen][&source_id=..]`: publish; `POST /whep/{type}/{id}`:
//!   play every other participant's tracks; `POST /whep/{type}/{id}/tracks/{track_id}`: one track.
//!   The token comes as `Authorization: Bearer <jwt>` (or `?token=`).
//! - `PATCH` / `DELETE /whip|whep/sessions/{id}`: trickle ICE or restart it; end the session.
//! - `GET /whep/sessions/{id}/events`: the player's slots (which track each m-line carries).
//! - `GET /events/{type}/{id}`: the call's participants, tracks and events as they happen.
//!
//! Errors are plain text with a fitting status, as WHIP clients show them.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast;
use tower_http::limit::RequestBodyLimitLayer;

use super::AppState;
use crate::auth::{AuthError, Caller};
use crate::domain::{CallId, CallTypeName, Cid, StreamName, UserId};
use crate::media::{self, MediaError, Patched, Player, Publisher, Source};
use crate::service::ServiceError;

/// Largest SDP offer or fragment accepted: a browser's offer of 30 video slots (the layout
/// page's) takes about 80 KiB.
const SDP_LIMIT: usize = 256 * 1024;

/// The WHIP, WHEP and event-stream routes.
pub fn routes() -> Router<AppState> {
    let sdp = Router::new()
        .route(
            "/whip/broadcast/{stream}",
            post(publish_broadcast).options(options),
        )
        .route(
            "/whip/{call_type}/{call_id}",
            post(publish).options(options),
        )
        .route(
            "/whep/broadcast/{stream}",
            post(watch_broadcast).options(options),
        )
        .route("/whep/{call_type}/{call_id}", post(play).options(options))
        .route(
            "/whep/{call_type}/{call_id}/tracks/{track_id}",
            post(play_track).options(options),
        )
        .route(
            "/whip/sessions/{session}",
            patch(patch_session).delete(delete_session),
        )
        .route(
            "/whep/sessions/{session}",
            patch(patch_session).delete(delete_session),
        )
        .layer(RequestBodyLimitLayer::new(SDP_LIMIT));
    Router::new()
        .merge(sdp)
        .route("/whep/sessions/{session}/events", get(slot_events))
        .route("/events/{call_type}/{call_id}", get(call_events))
}

/// An error answered as text.
struct WebRtcError(StatusCode, String);

impl IntoResponse for WebRtcError {
    fn into_response(self) -> Response {
        let mut res = (self.0, format!("{}\n", self.1)).into_response();
        if self.0 == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        res
    }
}

impl From<MediaError> for WebRtcError {
    fn from(e: MediaError) -> Self {
        let status = match &e {
            MediaError::BadOffer(_) | MediaError::Sdp(_) => StatusCode::BAD_REQUEST,
            MediaError::NotFound(_) => StatusCode::NOT_FOUND,
            MediaError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            MediaError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            MediaError::Internal(_) => {
                tracing::error!(error = %e, "media plane failure");
                return Self(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into());
            }
        };
        Self(status, e.to_string())
    }
}

impl From<AuthError> for WebRtcError {
    fn from(e: AuthError) -> Self {
        Self(StatusCode::UNAUTHORIZED, e.to_string())
    }
}

fn service_error(e: &ServiceError) -> WebRtcError {
    let status = match e {
        ServiceError::Invalid(_) => StatusCode::BAD_REQUEST,
        ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
        ServiceError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
        ServiceError::Conflict(_) => StatusCode::CONFLICT,
        ServiceError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        ServiceError::Store(_) | ServiceError::Storage(_) => {
            tracing::error!(error = %e, "media request failed");
            return WebRtcError(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into());
        }
    };
    WebRtcError(status, e.to_string())
}

type Result<T> = std::result::Result<T, WebRtcError>;

/// Query parameters of the WebRTC routes.
#[derive(Debug, Default, Deserialize)]
struct WebRtcQuery {
    /// The token, for clients that cannot set headers (EventSource).
    token: Option<String>,
    /// `screen` for a screen share.
    source: Option<String>,
    /// Which of the user's sources.
    source_id: Option<String>,
}

fn token<'a>(headers: &'a HeaderMap, q: &'a WebRtcQuery) -> Option<&'a str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim())
        .or(q.token.as_deref())
}

/// The caller; a token is required.
fn caller(state: &AppState, headers: &HeaderMap, q: &WebRtcQuery) -> Result<Caller> {
    let t = token(headers, q).ok_or_else(|| {
        WebRtcError(
            StatusCode::UNAUTHORIZED,
            "a token is required: Authorization: Bearer <token>".into(),
        )
    })?;
    Ok(state.services.keys().verify(t)?)
}

/// The user of the token, if one was sent and it is a user's (session URLs are
/// capabilities of their own; a user's token must be the session owner's). A broadcaster's
/// publish token names the user it publishes as.
async fn token_user(
    state: &AppState,
    headers: &HeaderMap,
    q: &WebRtcQuery,
) -> Result<Option<UserId>> {
    let Some(t) = token(headers, q) else {
        return Ok(None);
    };
    match state.services.keys().verify(t) {
        Ok(Caller::User(u)) => Ok(Some(u.user_id)),
        Ok(Caller::Server) => Ok(None),
        Err(e) => match state.services.publisher_of(t).await {
            Ok(Some(user)) => Ok(Some(user)),
            Ok(None) => Err(e.into()),
            Err(e) => Err(service_error(&e)),
        },
    }
}

fn cid(call_type: String, call_id: String) -> Result<Cid> {
    let bad = |e: crate::domain::InvalidName| WebRtcError(StatusCode::BAD_REQUEST, e.to_string());
    Ok(Cid::new(
        CallTypeName::parse(call_type).map_err(bad)?,
        CallId::parse(call_id).map_err(bad)?,
    ))
}

/// The body as text, if it has the content type `expected`.
fn text_body(headers: &HeaderMap, body: &Bytes, expected: &str) -> Result<String> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !ct.starts_with(expected) {
        return Err(WebRtcError(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("expected Content-Type: {expected}, got {ct:?}"),
        ));
    }
    String::from_utf8(body.to_vec())
        .map_err(|_| WebRtcError(StatusCode::BAD_REQUEST, "the body is not UTF-8".into()))
}

fn created(state: &AppState, kind: &str, a: crate::media::Answer) -> Response {
    let location = format!("/{kind}/sessions/{}", a.session);
    let mut res = (StatusCode::CREATED, a.sdp).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    for (name, value) in [
        (header::LOCATION, location.clone()),
        (header::ETAG, a.etag),
        (
            header::LINK,
            format!(
                "<{}{location}/events>; rel=\"urn:reel:slots\"",
                state.public_url
            ),
        ),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    res
}

/// A source id from the query (`name`), empty if none was given.
fn source_id(name: &str, raw: Option<&str>) -> Result<String> {
    let id = raw.unwrap_or_default();
    if id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(WebRtcError(
            StatusCode::BAD_REQUEST,
            format!("{name} takes up to 64 ASCII letters, digits, '-' and '_'"),
        ));
    }
    Ok(id.to_owned())
}

/// Query parameters of a broadcast's WHIP request.
#[derive(Debug, Default, Deserialize)]
struct BroadcastQuery {
    /// Which of the stream's sources (multisource tokens).
    #[serde(rename = "sourceId")]
    source_id: Option<String>,
    /// Records this broadcast even if its token does not record (`?record`).
    record: Option<String>,
    /// Records nothing of this broadcast (`?noRecord`).
    #[serde(rename = "noRecord")]
    no_record: Option<String>,
}

/// A flag of the query: present (alone, or `true`/`1`) or not (absent, `false`/`0`).
fn flag(name: &str, value: Option<&str>) -> Result<bool> {
    match value {
        None | Some("false" | "0") => Ok(false),
        Some("" | "true" | "1") => Ok(true),
        Some(other) => Err(WebRtcError(
            StatusCode::BAD_REQUEST,
            format!("{name} takes true or false, not {other:?}"),
        )),
    }
}

/// Publishes a broadcast stream with a publish token.
async fn publish_broadcast(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    Query(q): Query<BroadcastQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let stream = StreamName::parse(stream)
        .map_err(|e| WebRtcError(StatusCode::BAD_REQUEST, e.to_string()))?;
    let header_only = WebRtcQuery::default();
    let token = token(&headers, &header_only).ok_or_else(|| {
        WebRtcError(
            StatusCode::UNAUTHORIZED,
            "a publish token is required: Authorization: Bearer <token>".into(),
        )
    })?;
    let source_id = source_id("sourceId", q.source_id.as_deref())?;
    let (record, no_record) = (
        flag("record", q.record.as_deref())?,
        flag("noRecord", q.no_record.as_deref())?,
    );
    // The token first: a request that may not publish gets no further.
    let grant = state
        .services
        .broadcast(token, &stream, &source_id)
        .await
        .map_err(|e| service_error(&e))?;
    let offer = text_body(&headers, &body, "application/sdp")?;
    media::check_offer(&offer, true).map_err(MediaError::from)?;
    // One connection per source: a second publisher of a live source is refused.
    let live = state.media.state(&grant.cid).participants;
    if live
        .iter()
        .any(|p| p.user_id == grant.publisher && p.source_id == source_id)
    {
        return Err(WebRtcError(
            StatusCode::CONFLICT,
            format!("stream {stream:?} is already being published from this source"),
        ));
    }
    let who = Publisher {
        user_id: grant.publisher.clone(),
        role: "broadcaster".into(),
    };
    let source = Source {
        screen: false,
        source_id: source_id.clone(),
    };
    let answer = state
        .media
        .publish(&grant.cid, &who, source, &offer)
        .await?;
    // The session, and the source's recording, start before the broadcaster has its
    // answer: the recording holds its media from the first packet.
    if let Err(e) = state.services.start_session(&grant.cid).await {
        tracing::warn!(cid = %grant.cid, error = %e, "cannot start the broadcast's session");
    } else if (grant.record || record)
        && !no_record
        && let Err(e) = state.services.record_broadcast(&grant, &source_id).await
    {
        tracing::warn!(cid = %grant.cid, error = %e, "cannot record the broadcast");
    }
    Ok(created(&state, "whip", answer))
}

/// Plays a broadcast stream to a viewer.
async fn watch_broadcast(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let stream = StreamName::parse(stream)
        .map_err(|e| WebRtcError(StatusCode::BAD_REQUEST, e.to_string()))?;
    let offer = text_body(&headers, &body, "application/sdp")?;
    media::check_offer(&offer, false).map_err(MediaError::from)?;
    let header_only = WebRtcQuery::default();
    let cid = state
        .services
        .watch(&stream, token(&headers, &header_only))
        .await
        .map_err(|e| service_error(&e))?;
    let mut id = [0u8; 8];
    getrandom::fill(&mut id).expect("the operating system provides randomness");
    let who = Player {
        user_id: UserId::parse(format!("viewer-{}", hex::encode(id))).expect("a valid user id"),
        viewer: None,
    };
    let answer = state.media.play(&cid, &who, None, &offer).await?;
    Ok(created(&state, "whep", answer))
}

async fn publish(
    State(state): State<AppState>,
    Path((call_type, call_id)): Path<(String, String)>,
    Query(q): Query<WebRtcQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let cid = cid(call_type, call_id)?;
    let caller = caller(&state, &headers, &q)?;
    let offer = text_body(&headers, &body, "application/sdp")?;
    let screen = match q.source.as_deref() {
        None | Some("camera") => false,
        Some("screen") => true,
        Some(other) => {
            return Err(WebRtcError(
                StatusCode::BAD_REQUEST,
                format!("source must be camera or screen, not {other:?}"),
            ));
        }
    };
    let source_id = source_id("source_id", q.source_id.as_deref())?;
    // An offer that cannot be answered changes nothing (joining may create the call).
    media::check_offer(&offer, true).map_err(MediaError::from)?;
    let grant = state
        .services
        .join(&caller, &cid)
        .await
        .map_err(|e| service_error(&e))?;
    let who = Publisher {
        user_id: grant.user_id,
        role: grant.role,
    };
    let answer = state
        .media
        .publish(&cid, &who, Source { screen, source_id }, &offer)
        .await?;
    // The call session, and with it its auto-on recordings, runs before the publisher has its
    // answer: recordings hold its media from the first packet. (The media plane's report of
    // the join starts it too; whichever comes first does.)
    if let Err(e) = state.services.start_session(&cid).await {
        tracing::warn!(cid = %cid, error = %e, "cannot start the call session");
    }
    Ok(created(&state, "whip", answer))
}

async fn play(
    State(state): State<AppState>,
    Path((call_type, call_id)): Path<(String, String)>,
    Query(q): Query<WebRtcQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    play_in(&state, (call_type, call_id, None), &q, &headers, &body).await
}

async fn play_track(
    State(state): State<AppState>,
    Path((call_type, call_id, track_id)): Path<(String, String, String)>,
    Query(q): Query<WebRtcQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    play_in(
        &state,
        (call_type, call_id, Some(track_id)),
        &q,
        &headers,
        &body,
    )
    .await
}

/// A WHEP session in a call, of all its tracks or of one.
async fn play_in(
    state: &AppState,
    (call_type, call_id, track_id): (String, String, Option<String>),
    q: &WebRtcQuery,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response> {
    let cid = cid(call_type, call_id)?;
    let caller = caller(state, headers, q)?;
    let offer = text_body(headers, body, "application/sdp")?;
    media::check_offer(&offer, false).map_err(MediaError::from)?;
    // Players need not be participants, but must be allowed in the call.
    let refused = |e: crate::service::ServiceError| service_error(&e);
    let who = match &caller {
        Caller::User(u) => Player {
            user_id: state
                .services
                .join(&caller, &cid)
                .await
                .map_err(refused)?
                .user_id,
            viewer: Some(u.user_id.clone()),
        },
        Caller::Server => {
            state
                .services
                .get_call(&caller, &cid)
                .await
                .map_err(refused)?;
            Player {
                user_id: UserId::parse("server").expect("a valid user id"),
                viewer: None,
            }
        }
    };
    let answer = state
        .media
        .play(&cid, &who, track_id.as_deref(), &offer)
        .await?;
    Ok(created(state, "whep", answer))
}

async fn options() -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut()
        .insert("accept-post", HeaderValue::from_static("application/sdp"));
    res
}

async fn patch_session(
    State(state): State<AppState>,
    Path(session): Path<String>,
    Query(q): Query<WebRtcQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let user = token_user(&state, &headers, &q).await?;
    let fragment = text_body(&headers, &body, "application/trickle-ice-sdpfrag")?;
    let if_match = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok());
    match state
        .media
        .patch(&session, user.as_ref(), if_match, &fragment)
        .await?
    {
        Patched::Trickled => Ok(StatusCode::NO_CONTENT.into_response()),
        Patched::Restarted { fragment, etag } => {
            let mut res = (StatusCode::OK, fragment).into_response();
            let h = res.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/trickle-ice-sdpfrag"),
            );
            if let Ok(v) = HeaderValue::from_str(&etag) {
                h.insert(header::ETAG, v);
            }
            Ok(res)
        }
    }
}

async fn delete_session(
    State(state): State<AppState>,
    Path(session): Path<String>,
    Query(q): Query<WebRtcQuery>,
    headers: HeaderMap,
) -> Result<Response> {
    let user = token_user(&state, &headers, &q).await?;
    state.media.close(&session, user.as_ref()).await?;
    Ok(StatusCode::OK.into_response())
}

/// Server-sent events with a keep-alive comment, so proxies keep the stream open.
fn sse<S>(stream: S) -> Response
where
    S: Stream<Item = std::result::Result<SseEvent, Infallible>> + Send + 'static,
{
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

async fn slot_events(
    State(state): State<AppState>,
    Path(session): Path<String>,
    Query(q): Query<WebRtcQuery>,
    headers: HeaderMap,
) -> Result<Response> {
    let user = token_user(&state, &headers, &q).await?;
    let mut slots = state.media.slots(&session, user.as_ref())?;
    slots.mark_changed();
    let stream = futures_util::stream::unfold(slots, |mut rx| async move {
        rx.changed().await.ok()?;
        let data = json!({"type": "slots", "slots": *rx.borrow_and_update()}).to_string();
        Some((Ok(SseEvent::default().data(data)), rx))
    });
    Ok(sse(stream))
}

async fn call_events(
    State(state): State<AppState>,
    Path((call_type, call_id)): Path<(String, String)>,
    Query(q): Query<WebRtcQuery>,
    headers: HeaderMap,
) -> Result<Response> {
    let cid = cid(call_type, call_id)?;
    let caller = caller(&state, &headers, &q)?;
    // Anyone who may see the call may follow it.
    state
        .services
        .get_call(&caller, &cid)
        .await
        .map_err(|e| service_error(&e))?;
    let rx = state.services.live().subscribe(&cid);
    let mut call_state = json!(state.media.state(&cid));
    call_state["pins"] = json!(state.services.live().pins(&cid));
    let first = json!({"type": "call.state", "call_cid": cid, "state": call_state});
    let first: Arc<str> = first.to_string().into();
    let stream = futures_util::stream::unfold((Some(first), rx), |(first, mut rx)| async move {
        if let Some(f) = first {
            return Some((Ok(SseEvent::default().data(&*f)), (None, rx)));
        }
        loop {
            match rx.recv().await {
                Ok(e) => return Some((Ok(SseEvent::default().data(&*e)), (None, rx))),
                // A slow reader skips what it missed.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Ok(sse(stream))
}
