//! The HTTP API: one axum router with a module per dialect.
//!
//! - [`stream`]: the Stream-compatible API (`/api/v2/video/...`).
//! - [`realtimekit`]: the RealtimeKit-compatible recordings API (`/client/v4/accounts/...`).
//! - [`broadcast`]: the broadcast dialect's publish tokens (`/api/publish_token...`).
//! - `/files/...`: downloads of locally stored recordings through signed links (Range support).
//! - `webrtc`: WHIP/WHEP (`/whip/...`, `/whep/...`) and the live event streams (`/events/...`).
//! - `/join/{type}/{id}`: the join page, to hold a real call in a browser.
//! - `/layout/{type}/{id}`: the call drawn as its composite recording lays it out.
//! - `/healthz`, `/metrics` (Prometheus), `/openapi.json`.

pub mod broadcast;
mod console;
mod dialect;
mod files;
mod join;
mod layout;
mod openapi;
pub mod realtimekit;
pub mod stream;
mod webrtc;

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::StreamExt;
use tower_http::cors::CorsLayer;
use tower_http::trace::TraceLayer;
use tracing::info_span;

use crate::domain::{RecordFile, RecordFileChange, RecordingState, Timestamp, User, UserId};
use crate::media::Media;
use crate::metrics::{RequestLabels, RouteLabels};
use crate::service::{CallView, EventShapes, RecordingReport, Services};

/// Largest accepted request body. API bodies are small JSON documents.
const BODY_LIMIT: usize = 1024 * 1024;
/// A body past the limit is still read, up to this much, before the 413: a client that
/// writes its whole body before it reads the answer gets the answer, not a broken connection.
const DRAIN_LIMIT: usize = 16 * 1024 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The services.
    pub services: Services,
    /// The media plane.
    pub media: Media,
    /// The base URL clients reach reel at (no trailing slash).
    pub public_url: String,
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(stream::routes())
        .merge(realtimekit::routes())
        .merge(broadcast::routes())
        .merge(webrtc::routes())
        .merge(console::routes())
        .route("/join/{call_type}/{call_id}", get(join::page))
        .route("/layout/{call_type}/{call_id}", get(layout::page))
        .route(
            &format!("{}/{{file}}", crate::layout::APP_PATH),
            get(crate::layout::asset),
        )
        .route("/files/{*key}", get(files::download))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
        // Layers run outside-in in the reverse order of these calls: tracing sees every
        // request first, then metrics, then CORS answers preflights, then the whole body is
        // read (within the limit).
        .layer(axum::middleware::from_fn(read_whole_body))
        .layer(
            CorsLayer::new()
                .allow_origin(tower_http::cors::Any)
                .allow_methods(tower_http::cors::Any)
                .allow_headers(tower_http::cors::Any)
                .expose_headers([header::LOCATION, header::ETAG, header::LINK])
                .max_age(Duration::from_secs(3600)),
        )
        .layer(from_fn_with_state(state.clone(), count_request))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            info_span!(
                "http",
                method = %req.method(),
                path = %req.uri().path(),
                cid = tracing::field::Empty,
                recording_id = tracing::field::Empty,
            )
        }))
        .with_state(state)
}

/// Renders what events carry: calls and users as the Stream SDKs expect them, recordings'
/// status changes as RealtimeKit announces them.
pub struct Shapes {
    stream: stream::StreamShapes,
}

impl Shapes {
    /// Shapes whose links start with `base_url`.
    pub fn new(base_url: String) -> Self {
        Self {
            stream: stream::StreamShapes::new(base_url),
        }
    }
}

impl EventShapes for Shapes {
    fn call(&self, view: &CallView) -> serde_json::Value {
        self.stream.call(view)
    }

    fn user(&self, id: &UserId, user: Option<&User>) -> serde_json::Value {
        self.stream.user(id, user)
    }

    fn recording_status(
        &self,
        report: &RecordingReport,
        from: Option<RecordingState>,
    ) -> Option<serde_json::Value> {
        realtimekit::status_update(report, from)
    }

    fn record_file(
        &self,
        file: &RecordFile,
        change: RecordFileChange,
        at: Timestamp,
    ) -> serde_json::Value {
        broadcast::record_file_event(file, change, at)
    }
}

/// Counts requests by route and status, and times them.
async fn count_request(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = req.method().to_string();
    let started = Instant::now();
    let res = next.run(req).await;
    let m = s.services.metrics();
    m.requests
        .get_or_create(&RequestLabels {
            method,
            route: route.clone(),
            status: res.status().as_u16(),
        })
        .inc();
    m.request_seconds
        .get_or_create(&RouteLabels { route })
        .observe(started.elapsed().as_secs_f64());
    res
}

/// Reads the request body before any handler runs, refusing one past [`BODY_LIMIT`].
///
/// Handlers that need no body (stopping a recording) or answer before reading it (a refused
/// token) would otherwise leave it unread, and the HTTP/1 connection closes when the body
/// has not arrived by the time the answer is written: a client reusing that connection for
/// its next request sees it drop without an answer.
async fn read_whole_body(req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_LIMIT as u64) {
        return too_large(req.uri().path());
    }
    let (parts, body) = req.into_parts();
    let mut chunks = body.into_data_stream();
    let (mut kept, mut read) = (Vec::new(), 0);
    while let Some(chunk) = chunks.next().await {
        let Ok(chunk) = chunk else {
            return too_large(parts.uri.path());
        };
        read += chunk.len();
        if read > DRAIN_LIMIT {
            return too_large(parts.uri.path());
        }
        if read <= BODY_LIMIT {
            kept.extend_from_slice(&chunk);
        }
    }
    if read > BODY_LIMIT {
        return too_large(parts.uri.path());
    }
    next.run(Request::from_parts(parts, kept.into())).await
}

/// The answer to a body past the limit, in the error shape of the dialect `path` belongs to.
fn too_large(path: &str) -> Response {
    let message = format!("the request body is larger than {BODY_LIMIT} bytes");
    refusal(
        path,
        StatusCode::PAYLOAD_TOO_LARGE,
        stream::code::INPUT,
        message,
    )
}

/// An answer given before any handler, in the error shape of the dialect `path` belongs to
/// (plain text outside the dialects); `code` is Stream's error code.
fn refusal(path: &str, status: StatusCode, code: i32, message: String) -> Response {
    if broadcast::serves(path) {
        return broadcast::BroadcastError::new(status, message).into_response();
    }
    if realtimekit::serves(path) {
        return realtimekit::KitError::new(status, message).into_response();
    }
    if stream::serves(path) {
        let e = stream::StreamError {
            status,
            code,
            detail: message,
        };
        return (e.status, Json(e.envelope(None, "0.00ms"))).into_response();
    }
    (status, format!("{message}\n")).into_response()
}

async fn not_found(uri: axum::http::Uri) -> Response {
    let message = "there is no such API endpoint".to_owned();
    refusal(
        uri.path(),
        StatusCode::NOT_FOUND,
        stream::code::NOT_FOUND,
        message,
    )
}

async fn healthz(State(s): State<AppState>) -> Response {
    match s.services.store().ping().await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check: the database does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
    }
}

async fn metrics(State(s): State<AppState>) -> Response {
    let m = s.services.metrics();
    match s.services.store().count_recordings().await {
        Ok(counts) => m.set_recordings(&counts),
        Err(e) => tracing::warn!(error = %e, "cannot count recordings for metrics"),
    }
    let mut res = m.encode().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    res
}

async fn openapi() -> Response {
    Json(openapi::document()).into_response()
}
