//! Sign-in to the recordings console: whoever gives the API secret gets a session, a value
//! `{expiry}.{nonce}.{signature}` kept in a cookie, and with it a token that every change
//! the console asks for must carry in a header (a page of another site can neither read it
//! nor make a browser send it). Both are signed with a key derived from the API secret, so
//! changing the secret ends every session.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::AuthError;
use crate::domain::Timestamp;

type HmacSha256 = Hmac<Sha256>;

/// A console session that was signed in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleSession {
    nonce: String,
}

/// Signs in to the console, and checks its sessions.
#[derive(Clone)]
pub struct ConsoleSessions {
    keyed: HmacSha256,
}

impl std::fmt::Debug for ConsoleSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConsoleSessions")
    }
}

impl ConsoleSessions {
    /// Sessions for the application whose API secret is `secret`.
    pub fn new(secret: &str) -> Self {
        let mut mac =
            HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
        mac.update(b"reel console session v1");
        let key = mac.finalize().into_bytes();
        Self {
            keyed: HmacSha256::new_from_slice(&key).expect("HMAC takes keys of any length"),
        }
    }

    fn mac(&self, purpose: &str, text: &str) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        mac.update(purpose.as_bytes());
        mac.update(b"\n");
        mac.update(text.as_bytes());
        mac
    }

    /// Whether `given` is the API secret `secret`, compared in constant time.
    pub fn is_secret(&self, given: &str, secret: &str) -> bool {
        let expected = self.mac("secret", secret).finalize().into_bytes();
        self.mac("secret", given).verify_slice(&expected).is_ok()
    }

    /// A new session's cookie value, valid for `ttl` from `now`.
    pub fn open(&self, now: Timestamp, ttl: Duration) -> String {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).expect("the operating system provides randomness");
        let body = format!("{}.{}", now.after(ttl).unix_secs(), hex::encode(nonce));
        let signature = hex::encode(self.mac("session", &body).finalize().into_bytes());
        format!("{body}.{signature}")
    }

    /// The session of the cookie value `value` at `now`.
    pub fn check(&self, value: &str, now: Timestamp) -> Result<ConsoleSession, AuthError> {
        let invalid = || AuthError::Invalid("not a console session".into());
        let (body, signature) = value.rsplit_once('.').ok_or_else(invalid)?;
        let signature = hex::decode(signature).map_err(|_| invalid())?;
        self.mac("session", body)
            .verify_slice(&signature)
            .map_err(|_| invalid())?;
        let (expires, nonce) = body.split_once('.').ok_or_else(invalid)?;
        let expires: i64 = expires.parse().map_err(|_| invalid())?;
        if now.unix_secs() > expires {
            return Err(AuthError::Expired);
        }
        Ok(ConsoleSession {
            nonce: nonce.to_owned(),
        })
    }

    /// The token the console's changes in `session` carry.
    pub fn change_token(&self, session: &ConsoleSession) -> String {
        hex::encode(self.mac("change", &session.nonce).finalize().into_bytes())
    }

    /// Whether `token` is the change token of `session`.
    pub fn may_change(&self, session: &ConsoleSession, token: &str) -> bool {
        hex::decode(token)
            .is_ok_and(|t| self.mac("change", &session.nonce).verify_slice(&t).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_signed_expire_and_guard_changes() {
        let sessions = ConsoleSessions::new("secret");
        let now = Timestamp::now();
        assert!(sessions.is_secret("secret", "secret"));
        assert!(!sessions.is_secret("secre", "secret"));
        let value = sessions.open(now, Duration::from_secs(60));
        let session = sessions.check(&value, now).unwrap();
        let token = sessions.change_token(&session);
        assert!(sessions.may_change(&session, &token));
        assert!(!sessions.may_change(&session, "00"));
        assert!(!sessions.may_change(&session, "not hex"));
        assert_eq!(
            sessions.check(&value, now.after(Duration::from_secs(61))),
            Err(AuthError::Expired)
        );
        // A longer life, or another key, breaks the signature.
        let (expires, rest) = value.split_once('.').unwrap();
        let forged = format!("{}.{rest}", expires.parse::<i64>().unwrap() + 3600);
        assert!(sessions.check(&forged, now).is_err());
        assert!(ConsoleSessions::new("other").check(&value, now).is_err());
        for bad in ["", ".", "1.2.3", "x.y.zz", &value[..value.len() - 1]] {
            assert!(sessions.check(bad, now).is_err(), "{bad}");
        }
        // Sessions do not share change tokens.
        let other = sessions
            .check(&sessions.open(now, Duration::from_secs(60)), now)
            .unwrap();
        assert!(!sessions.may_change(&other, &token));
    }
}
