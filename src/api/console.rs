//! The recordings console: `/console`, a page for people. It signs in with the API secret
//! (a session cookie, `HttpOnly`, `SameSite=Strict`), lists every recording of every kind
//! with its pictures and files, plays them, and deletes them. Its data comes from
//! `/console/api/...`, which answers only a signed-in session, and changes only with the
//! session's change token in the `X-Reel-Change` header.

use axum::Json;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use crate::auth::{Caller, ConsoleSession, ConsoleSessions};
use crate::domain::recording::{POSTER_LAYER, THUMBNAILS_LAYER};
use crate::domain::{Cid, RecordingId, RecordingType, StreamName, Timestamp, stream_cid};
use crate::service::{RecordingQuery, RecordingReport, ServiceError};

/// The console's page, with `{{change_token}}` where the session's change token goes.
const PAGE: &str = include_str!("../../templates/console.html");
/// The sign-in page, with `{{message}}` where a refusal goes.
const SIGN_IN: &str = include_str!("../../templates/console-sign-in.html");
/// The session cookie.
const COOKIE: &str = "reel_console";
/// How long a session lasts.
const SESSION: std::time::Duration = std::time::Duration::from_secs(12 * 3600);
/// The header the console's changes carry their token in.
const CHANGE_HEADER: &str = "x-reel-change";
/// The most recordings a page lists.
const MAX_PER_PAGE: u32 = 100;

/// The console's routes.
pub(super) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/console", get(page))
        .route("/console/sign-in", post(sign_in))
        .route("/console/sign-out", post(sign_out))
        .route("/console/api/recordings", get(recordings))
        .route("/console/api/usage", get(usage))
        .route("/console/api/delete", post(delete))
}

fn sessions(s: &AppState) -> ConsoleSessions {
    s.services.keys().console_sessions()
}

/// The session a request's cookie holds, if it is valid.
fn session_of(s: &AppState, headers: &HeaderMap) -> Option<ConsoleSession> {
    let value = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))?;
    sessions(s).check(value, Timestamp::now()).ok()
}

/// The cookie that holds `value` (an empty value and no life ends the session).
fn cookie(s: &AppState, value: &str, life: std::time::Duration) -> HeaderValue {
    let secure = if s.public_url.starts_with("https:") {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{COOKIE}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        life.as_secs()
    );
    HeaderValue::from_str(&text).expect("the cookie is ASCII")
}

/// Pages are never kept by caches: they hold the session's change token.
fn html(status: StatusCode, body: String) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], Html(body)).into_response()
}

fn sign_in_page(status: StatusCode, message: &str) -> Response {
    html(status, SIGN_IN.replace("{{message}}", message))
}

/// `GET /console`: the console, or the sign-in page.
async fn page(State(s): State<AppState>, headers: HeaderMap) -> Response {
    match session_of(&s, &headers) {
        Some(session) => html(
            StatusCode::OK,
            PAGE.replace("{{change_token}}", &sessions(&s).change_token(&session)),
        ),
        None => sign_in_page(StatusCode::OK, ""),
    }
}

/// `POST /console/sign-in` (a form with `secret`): a session, if it is the API secret.
async fn sign_in(State(s): State<AppState>, body: String) -> Response {
    let given = form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "secret")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let sessions = sessions(&s);
    if !sessions.is_secret(&given, s.services.keys().secret()) {
        tracing::warn!("a console sign-in was refused");
        return sign_in_page(StatusCode::UNAUTHORIZED, "That is not the API secret.");
    }
    let value = sessions.open(Timestamp::now(), SESSION);
    let mut answer = Redirect::to("/console").into_response();
    answer
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(&s, &value, SESSION));
    answer
}

/// `POST /console/sign-out`: ends the session in this browser.
async fn sign_out(State(s): State<AppState>, _: Change) -> Response {
    let mut answer = StatusCode::NO_CONTENT.into_response();
    answer.headers_mut().insert(
        header::SET_COOKIE,
        cookie(&s, "", std::time::Duration::ZERO),
    );
    answer
}

/// Why the console's data is not given.
struct Refused(StatusCode, String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

impl From<ServiceError> for Refused {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(m) => Self(StatusCode::BAD_REQUEST, m),
            ServiceError::NotFound(m) => Self(StatusCode::NOT_FOUND, m),
            e => {
                tracing::error!(error = %e, "the console cannot be answered");
                Self(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
            }
        }
    }
}

fn invalid(m: impl Into<String>) -> Refused {
    Refused(StatusCode::BAD_REQUEST, m.into())
}

/// A signed-in request.
struct SignedIn;

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Refused;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Refused> {
        session_of(s, &parts.headers)
            .map(|_| Self)
            .ok_or_else(|| Refused(StatusCode::UNAUTHORIZED, "sign in to the console".into()))
    }
}

/// A signed-in request that carries the session's change token.
struct Change;

impl FromRequestParts<AppState> for Change {
    type Rejection = Refused;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Refused> {
        let session = session_of(s, &parts.headers)
            .ok_or_else(|| Refused(StatusCode::UNAUTHORIZED, "sign in to the console".into()))?;
        let token = parts
            .headers
            .get(CHANGE_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if sessions(s).may_change(&session, token) {
            Ok(Self)
        } else {
            Err(Refused(
                StatusCode::FORBIDDEN,
                "this change does not come from the console".into(),
            ))
        }
    }
}

/// `GET /console/api/recordings`.
#[derive(Debug, Deserialize)]
struct ListQuery {
    /// Only recordings of this kind.
    kind: Option<String>,
    /// Only this call's (`type:id`).
    call: Option<String>,
    /// Only this broadcast stream's.
    stream: Option<String>,
    /// Only broadcasts of this publish token.
    token: Option<String>,
    page: Option<u32>,
    per_page: Option<u32>,
}

/// A filter given but empty means no filter.
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// The recordings the query selects, newest first, one page of them.
async fn recordings(
    State(s): State<AppState>,
    _: SignedIn,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, Refused> {
    let Query(q) = query.map_err(|e| invalid(e.body_text()))?;
    let types = match given(&q.kind) {
        None => RecordingType::ALL.to_vec(),
        Some(k) => {
            vec![RecordingType::parse(k).ok_or_else(|| invalid(format!("no recording kind {k}")))?]
        }
    };
    let call = given(&q.call)
        .map(|c| Cid::parse(c).map_err(|e| invalid(e.to_string())))
        .transpose()?;
    let stream = given(&q.stream)
        .map(|n| {
            StreamName::parse(n)
                .map(|n| stream_cid(&n))
                .map_err(|e| invalid(e.to_string()))
        })
        .transpose()?;
    if call.is_some() && stream.is_some() && call != stream {
        return Ok(Json(json!({"recordings": [], "total": 0})));
    }
    let token_id = given(&q.token)
        .map(|t| {
            t.parse::<i64>()
                .map_err(|_| invalid(format!("{t} is not a publish token id")))
        })
        .transpose()?;
    let per_page = q.per_page.unwrap_or(48).clamp(1, MAX_PER_PAGE);
    let page = q.page.unwrap_or(1).max(1);
    let query = RecordingQuery {
        cid: call.or(stream),
        token_id,
        types,
        newest_first: true,
        offset: u64::from(page - 1) * u64::from(per_page),
        limit: per_page,
        ..RecordingQuery::default()
    };
    let (reports, total) = s.services.find_recordings(&Caller::Server, &query).await?;
    let listed: Vec<Value> = reports.iter().map(recording).collect();
    Ok(Json(json!({"recordings": listed, "total": total})))
}

/// Whether browsers play a file of this name.
fn playable(name: &str) -> bool {
    let extension = name.rsplit_once('.').map_or("", |(_, e)| e);
    ["mp4", "webm", "mp3", "m4a", "ogg", "wav"].contains(&extension.to_ascii_lowercase().as_str())
}

/// A recording as the console shows it.
fn recording(r: &RecordingReport) -> Value {
    let rec = &r.recording;
    let layer = |f: &crate::domain::RecordingFile| f.layer.clone().unwrap_or_default();
    let media: Vec<_> = r.files.iter().filter(|(f, _)| !f.is_picture()).collect();
    let picture = r
        .files
        .iter()
        .find(|(f, _)| f.layer.as_deref() == Some(POSTER_LAYER))
        .or_else(|| {
            r.files
                .iter()
                .find(|(f, _)| f.layer.as_deref() == Some(THUMBNAILS_LAYER))
        })
        .map(|(_, url)| url);
    let span = media
        .iter()
        .map(|(f, _)| (f.start_time, f.end_time))
        .reduce(|(a, b), (c, d)| (a.min(c), b.max(d)));
    let play = media
        .iter()
        .find(|(f, _)| playable(f.filename.as_str()))
        .map(|(f, url)| json!({"name": f.filename.as_str(), "url": url}));
    let files: Vec<Value> = r
        .files
        .iter()
        .map(|(f, url)| {
            json!({"name": f.filename.as_str(), "url": url, "size": f.size, "layer": layer(f)})
        })
        .collect();
    json!({
        "id": rec.id.as_str(),
        "kind": rec.recording_type.as_str(),
        "call": rec.cid.to_string(),
        "state": rec.state.as_str(),
        "error": rec.error,
        "created": rec.created_at.unix_millis(),
        "seconds": span.map(|(a, b)| b.since(a).as_secs_f64()),
        "bytes": r.files.iter().map(|(f, _)| f.size).sum::<u64>(),
        "picture": picture,
        "play": play,
        "files": files,
    })
}

/// `GET /console/api/usage`: the bytes every recording's stored files take.
async fn usage(State(s): State<AppState>, _: SignedIn) -> Result<Json<Value>, Refused> {
    let bytes = s.services.stored_bytes(&Caller::Server).await?;
    Ok(Json(json!({"bytes": bytes})))
}

/// `POST /console/api/delete`.
#[derive(Debug, Deserialize)]
struct DeleteRequest {
    ids: Vec<String>,
}

/// Deletes recordings whole: `{"deleted": [ids], "refused": [{"id", "reason"}]}`.
async fn delete(
    State(s): State<AppState>,
    _: Change,
    body: Result<Json<DeleteRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, Refused> {
    let Json(req) = body.map_err(|e| invalid(e.body_text()))?;
    if req.ids.len() > 1000 {
        return Err(invalid("at most 1000 recordings at once"));
    }
    let mut ids = Vec::with_capacity(req.ids.len());
    let mut refused = Vec::new();
    for id in req.ids {
        match RecordingId::parse(id.clone()) {
            Ok(id) => ids.push(id),
            Err(e) => refused.push(json!({"id": id, "reason": e.to_string()})),
        }
    }
    let (deleted, not) = s.services.delete_recordings(&Caller::Server, &ids).await?;
    refused.extend(
        not.into_iter()
            .map(|(id, reason)| json!({"id": id.as_str(), "reason": reason})),
    );
    let deleted: Vec<&str> = deleted.iter().map(RecordingId::as_str).collect();
    Ok(Json(json!({"deleted": deleted, "refused": refused})))
}
