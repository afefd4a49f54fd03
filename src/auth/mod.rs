//! Authentication: API keys, HS256 tokens, signed download links, and the recordings
//! console's sessions.
//!
//! Clients send `?api_key=<key>` and a token signed with the API secret. A token without a
//! `user_id` (the Python SDK's empty claims, or `{"server": true}`) is a server token and may
//! do everything; a token with a `user_id` acts as that user, with the role the token names
//! (or the user's stored role), and is limited to `call_cids` when it lists them.

mod console;
mod signed_url;

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::domain::{Cid, InvalidName, Role, Timestamp, UserId};

pub use console::{ConsoleSession, ConsoleSessions};
pub use signed_url::{LinkError, UrlSigner};

/// Seconds of clock skew tolerated when checking `exp`.
const LEEWAY_SECS: u64 = 5;

/// Why a request is not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `api_key` query parameter.
    #[error("api_key is missing")]
    MissingApiKey,
    /// The `api_key` is not this application's.
    #[error("api_key is not valid")]
    WrongApiKey,
    /// No token in the Authorization header.
    #[error("the Authorization header with a token is missing")]
    MissingToken,
    /// The token has expired.
    #[error("the token has expired")]
    Expired,
    /// The token is malformed or its signature does not match.
    #[error("the token is not valid: {0}")]
    Invalid(String),
}

/// The user a [`Keys::viewer_token`] names.
pub const VIEWER: &str = "reel-recorder";

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The application's backend: may do everything.
    Server,
    /// A user.
    User(UserClaims),
}

/// What a user token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserClaims {
    /// The user.
    pub user_id: UserId,
    /// The role the token gives, overriding the stored one.
    pub role: Option<Role>,
    /// The calls the token is limited to, if any.
    pub call_cids: Option<Vec<Cid>>,
}

impl UserClaims {
    /// Whether the token may act on `cid`.
    pub fn may_access(&self, cid: &Cid) -> bool {
        self.call_cids.as_ref().is_none_or(|c| c.contains(cid))
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    server: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    call_cids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
}

/// The application's credentials, ready to check and issue tokens.
#[derive(Clone)]
pub struct Keys {
    api_key: String,
    secret: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("api_key", &self.api_key)
            .finish_non_exhaustive()
    }
}

fn invalid(e: InvalidName) -> AuthError {
    AuthError::Invalid(e.to_string())
}

impl Keys {
    /// Keys for an API key and secret.
    pub fn new(api_key: impl Into<String>, secret: impl Into<String>) -> Self {
        let secret = secret.into();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = true;
        validation.leeway = LEEWAY_SECS;
        Self {
            api_key: api_key.into(),
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            secret,
            validation,
        }
    }

    /// The API key.
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The API secret.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Checks a request's API key and token.
    pub fn authenticate(
        &self,
        api_key: Option<&str>,
        token: Option<&str>,
    ) -> Result<Caller, AuthError> {
        let key = api_key.ok_or(AuthError::MissingApiKey)?;
        if !constant_time_eq(key.as_bytes(), self.api_key.as_bytes()) {
            return Err(AuthError::WrongApiKey);
        }
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::MissingToken)?;
        self.verify(token)
    }

    /// Checks an API token sent as `Authorization: Bearer <token>` (the RealtimeKit dialect):
    /// the API secret itself, or a token signed with it.
    pub fn bearer(&self, token: Option<&str>) -> Result<Caller, AuthError> {
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::MissingToken)?;
        if constant_time_eq(token.as_bytes(), self.secret.as_bytes()) {
            return Ok(Caller::Server);
        }
        self.verify(token)
    }

    /// Checks a token alone (for links and pages that carry a token but no API key).
    pub fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid(e.to_string()),
            })?;
        let c = data.claims;
        let Some(user_id) = c.user_id else {
            return Ok(Caller::Server);
        };
        Ok(Caller::User(UserClaims {
            user_id: UserId::parse(user_id).map_err(invalid)?,
            role: c.role.map(Role::parse).transpose().map_err(invalid)?,
            call_cids: c
                .call_cids
                .map(|v| {
                    v.iter()
                        .map(|s| Cid::parse(s))
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()
                .map_err(invalid)?,
        }))
    }

    /// A server token (`{"server": true}`).
    pub fn server_token(&self) -> String {
        self.sign(&Claims {
            user_id: None,
            server: Some(true),
            role: None,
            call_cids: None,
            iat: Some(Timestamp::now().unix_secs()),
            exp: None,
        })
    }

    /// A token for `user`, optionally with a role and an expiry.
    pub fn user_token(&self, user: &UserId, role: Option<&Role>, ttl: Option<Duration>) -> String {
        let now = Timestamp::now();
        self.sign(&Claims {
            user_id: Some(user.to_string()),
            server: None,
            role: role.map(ToString::to_string),
            call_cids: None,
            iat: Some(now.unix_secs()),
            exp: ttl.map(|d| now.after(d).unix_secs()),
        })
    }

    /// A token that may follow call `cid` and play its media, and nothing else, for `ttl`:
    /// what a page that draws the call for a recording gets.
    pub fn viewer_token(&self, cid: &Cid, ttl: Duration) -> String {
        let now = Timestamp::now();
        self.sign(&Claims {
            user_id: Some(VIEWER.into()),
            server: None,
            role: Some("admin".into()),
            call_cids: Some(vec![cid.to_string()]),
            iat: Some(now.unix_secs()),
            exp: Some(now.after(ttl).unix_secs()),
        })
    }

    fn sign(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing with an HMAC key cannot fail")
    }

    /// A signer for download links, keyed from the API secret.
    pub fn url_signer(&self) -> UrlSigner {
        UrlSigner::new(&self.secret)
    }

    /// Sign-in to the recordings console.
    pub fn console_sessions(&self) -> ConsoleSessions {
        ConsoleSessions::new(&self.secret)
    }
}

/// Whether `a` and `b` are equal, in a time that does not tell where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::new("key", "secret")
    }

    #[test]
    fn server_and_user_tokens() {
        let k = keys();
        assert_eq!(
            k.authenticate(Some("key"), Some(&k.server_token())),
            Ok(Caller::Server)
        );
        let alice = UserId::parse("alice").unwrap();
        let admin = Role::parse("admin").unwrap();
        let t = k.user_token(&alice, Some(&admin), Some(Duration::from_secs(60)));
        let Ok(Caller::User(u)) = k.authenticate(Some("key"), Some(&t)) else {
            panic!()
        };
        assert_eq!(u.user_id, alice);
        assert_eq!(u.role, Some(admin));
    }

    #[test]
    fn rejections() {
        let k = keys();
        let t = k.server_token();
        assert_eq!(
            k.authenticate(None, Some(&t)),
            Err(AuthError::MissingApiKey)
        );
        assert_eq!(
            k.authenticate(Some("other"), Some(&t)),
            Err(AuthError::WrongApiKey)
        );
        assert_eq!(
            k.authenticate(Some("key"), None),
            Err(AuthError::MissingToken)
        );
        let other = Keys::new("key", "other-secret").server_token();
        assert!(matches!(
            k.authenticate(Some("key"), Some(&other)),
            Err(AuthError::Invalid(_))
        ));
        let expired = k.sign(&Claims {
            user_id: Some("bob".into()),
            server: None,
            role: None,
            call_cids: None,
            iat: None,
            exp: Some(Timestamp::now().unix_secs() - 60),
        });
        assert_eq!(
            k.authenticate(Some("key"), Some(&expired)),
            Err(AuthError::Expired)
        );
        assert!(matches!(
            k.authenticate(Some("key"), Some("not.a.jwt")),
            Err(AuthError::Invalid(_))
        ));
        let bad_user = k.sign(&Claims {
            user_id: Some("a\0b".into()),
            server: None,
            role: None,
            call_cids: None,
            iat: None,
            exp: None,
        });
        assert!(matches!(
            k.authenticate(Some("key"), Some(&bad_user)),
            Err(AuthError::Invalid(_))
        ));
    }

    #[test]
    fn bearer_tokens_are_the_secret_or_signed_with_it() {
        let k = keys();
        assert_eq!(k.bearer(Some(k.secret())), Ok(Caller::Server));
        assert_eq!(k.bearer(Some(&k.server_token())), Ok(Caller::Server));
        let alice = UserId::parse("alice").unwrap();
        assert!(matches!(
            k.bearer(Some(&k.user_token(&alice, None, None))),
            Ok(Caller::User(u)) if u.user_id == alice
        ));
        assert_eq!(k.bearer(None), Err(AuthError::MissingToken));
        assert_eq!(k.bearer(Some("")), Err(AuthError::MissingToken));
        assert!(matches!(
            k.bearer(Some("not-the-secret")),
            Err(AuthError::Invalid(_))
        ));
    }

    #[test]
    fn call_cids_limit_access() {
        let k = keys();
        let t = k.sign(&Claims {
            user_id: Some("bob".into()),
            server: None,
            role: None,
            call_cids: Some(vec!["default:a".into()]),
            iat: None,
            exp: None,
        });
        let Ok(Caller::User(u)) = k.verify(&t) else {
            panic!()
        };
        assert!(u.may_access(&Cid::parse("default:a").unwrap()));
        assert!(!u.may_access(&Cid::parse("default:b").unwrap()));
    }
}
