//! Request extractors and the reply type of the Stream dialect.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::StreamError;
use crate::api::AppState;
use crate::auth::Caller;

/// The authenticated caller: `?api_key=` plus the token in `Authorization`.
pub struct StreamCaller(pub Caller);

impl FromRequestParts<AppState> for StreamCaller {
    type Rejection = StreamError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let api_key = parts.uri.query().and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "api_key")
                .map(|(_, v)| v.into_owned())
        });
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim());
        let caller = state
            .services
            .keys()
            .authenticate(api_key.as_deref(), token)?;
        Ok(Self(caller))
    }
}

/// A JSON body, decoded with the path of the offending field in errors. An empty body reads as `{}`.
pub struct StreamJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for StreamJson<T> {
    type Rejection = StreamError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| StreamError::input(format!("cannot read the request body: {e}")))?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        let de = &mut serde_json::Deserializer::from_slice(text);
        serde_path_to_error::deserialize(de).map(Self).map_err(|e| {
            let path = e.path().to_string();
            if path == "." {
                StreamError::input(format!("invalid request body: {}", e.inner()))
            } else {
                StreamError::input(format!("{path}: {}", e.inner()))
            }
        })
    }
}

/// A successful JSON answer. The envelope middleware adds `duration`.
pub struct Reply(pub Map<String, Value>);

impl Reply {
    /// A reply with the fields of `body` (which must serialize to an object).
    pub fn new(body: impl Serialize) -> Self {
        match serde_json::to_value(body).expect("replies serialize to JSON") {
            Value::Object(m) => Self(m),
            other => panic!("a reply must be a JSON object, got {other}"),
        }
    }

    /// A reply with no fields but `duration`.
    pub fn empty() -> Self {
        Self(Map::new())
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut r = axum::http::StatusCode::OK.into_response();
        r.extensions_mut().insert(ReplyBody(self.0));
        r
    }
}

/// A reply's fields, carried to the envelope middleware.
#[derive(Clone)]
pub struct ReplyBody(pub Map<String, Value>);
