//! Webhooks: a durable outbox in the store, signed deliveries, retries with backoff. Every
//! delivery carries two signatures of its body with the API secret: `X-Signature` (hex
//! HMAC-SHA256, Stream's) and `X-Millicast-Signature` (`sha1=` hex HMAC-SHA1, the broadcast
//! dialect's).
//!
//! Services turn [`Event`]s into outbox rows (one per receiver) inside the same transaction
//! as the change that caused them, so an event exists exactly when its change does. The
//! [`Dispatcher`] sends them: per receiver and call in order (an event waits until the ones
//! before it are delivered or given up), retried with exponential backoff until the retry
//! period ends, across restarts.

mod dispatcher;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub use dispatcher::Dispatcher;

use crate::domain::Event;
use crate::store::NewDelivery;

/// The hex HMAC-SHA256 of `body` keyed with `secret`: the `X-Signature` header.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// `sha1=` and the hex HMAC-SHA1 of `body` keyed with `secret`: the `X-Millicast-Signature`
/// header the broadcast dialect's receivers check.
pub fn sign_sha1(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The receivers events go to.
#[derive(Clone, Debug, Default)]
pub struct Receivers {
    urls: Vec<String>,
}

impl Receivers {
    /// Receivers at `urls`.
    pub fn new(urls: Vec<String>) -> Self {
        Self { urls }
    }

    /// Outbox rows for `events`: each event to each receiver.
    pub fn deliveries(&self, events: &[Event]) -> Vec<NewDelivery> {
        events
            .iter()
            .flat_map(|e| {
                let body = serde_json::to_string(e).expect("events serialize to JSON");
                self.urls.iter().map(move |url| NewDelivery {
                    endpoint: url.clone(),
                    ordering_key: e.cid().to_string(),
                    event_type: e.kind().to_owned(),
                    body: body.clone(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hex_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // RFC 2202 test case 2.
        assert_eq!(
            sign_sha1("Jefe", b"what do ya want for nothing?"),
            "sha1=effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }
}
