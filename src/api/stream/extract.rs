//! Request extractors and the reply type of the Stream dialect.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
#[cfg(test)]
use serde_json::Value;

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

/// A successful JSON answer: a serialized JSON object. The envelope middleware adds `duration`.
pub struct Reply(Vec<u8>);

impl Reply {
    /// A reply with the fields of `body`, which serializes to a JSON object.
    pub fn new(body: impl Serialize) -> Self {
        let bytes = serde_json::to_vec(&body).expect("replies serialize to JSON");
        debug_assert!(
            bytes.starts_with(b"{") && bytes.ends_with(b"}"),
            "a reply is a JSON object"
        );
        Self(bytes)
    }

    /// A reply with no fields but `duration`.
    pub fn empty() -> Self {
        Self(b"{}".to_vec())
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut r = axum::http::StatusCode::OK.into_response();
        r.extensions_mut().insert(ReplyBody(self.0));
        r
    }
}

/// A reply's serialized object, carried to the envelope middleware.
#[derive(Clone)]
pub struct ReplyBody(Vec<u8>);

impl ReplyBody {
    /// The object with `"duration": duration` added as its last field.
    pub fn with_duration(self, duration: &str) -> Vec<u8> {
        let mut body = self.0;
        body.pop(); // the closing brace
        if body.len() > 1 {
            body.push(b',');
        }
        body.extend_from_slice(b"\"duration\":\"");
        body.extend_from_slice(duration.as_bytes());
        body.extend_from_slice(b"\"}");
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_is_the_last_field() {
        let add = |r: Reply| {
            let v: Value = serde_json::from_slice(&ReplyBody(r.0).with_duration("1.00ms")).unwrap();
            v
        };
        assert_eq!(
            add(Reply::empty()),
            serde_json::json!({"duration": "1.00ms"})
        );
        assert_eq!(
            add(Reply::new(serde_json::json!({"a": {"b": "}"}}))),
            serde_json::json!({"a": {"b": "}"}, "duration": "1.00ms"})
        );
    }
}
