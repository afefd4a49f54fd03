//! Expiring download links signed with HMAC-SHA256.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::domain::Timestamp;

type HmacSha256 = Hmac<Sha256>;

/// Why a download link is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The link's lifetime is over.
    #[error("the link has expired")]
    Expired,
    /// The signature does not match the path and expiry.
    #[error("the link signature is not valid")]
    BadSignature,
}

/// Signs and checks `(path, expiry)` pairs.
#[derive(Clone)]
pub struct UrlSigner {
    /// The keyed MAC, cloned for each signature (cheaper than keying it again).
    keyed: HmacSha256,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner")
    }
}

impl UrlSigner {
    /// A signer whose key is derived from `secret`, so that link signatures never equal
    /// webhook signatures made with the same secret.
    pub fn new(secret: &str) -> Self {
        let mut mac =
            HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
        mac.update(b"reel download link v1");
        let key = mac.finalize().into_bytes();
        Self {
            keyed: HmacSha256::new_from_slice(&key).expect("HMAC takes keys of any length"),
        }
    }

    fn mac(&self, path: &str, expires: i64) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        mac.update(path.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// The hex signature of `path` valid until `expires` (unix seconds).
    pub fn sign(&self, path: &str, expires: i64) -> String {
        hex::encode(self.mac(path, expires).finalize().into_bytes())
    }

    /// Checks a signature at time `now`.
    pub fn verify(
        &self,
        path: &str,
        expires: i64,
        signature: &str,
        now: Timestamp,
    ) -> Result<(), LinkError> {
        let sig = hex::decode(signature).map_err(|_| LinkError::BadSignature)?;
        self.mac(path, expires)
            .verify_slice(&sig)
            .map_err(|_| LinkError::BadSignature)?;
        if now.unix_secs() > expires {
            return Err(LinkError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let s = UrlSigner::new("secret");
        let now = Timestamp::now();
        let exp = now.unix_secs() + 10;
        let sig = s.sign("/files/a/b.mp4", exp);
        assert_eq!(s.verify("/files/a/b.mp4", exp, &sig, now), Ok(()));
        assert_eq!(
            s.verify("/files/a/c.mp4", exp, &sig, now),
            Err(LinkError::BadSignature)
        );
        assert_eq!(
            s.verify("/files/a/b.mp4", exp + 1, &sig, now),
            Err(LinkError::BadSignature)
        );
        assert_eq!(
            s.verify("/files/a/b.mp4", exp, "zz", now),
            Err(LinkError::BadSignature)
        );
        let later = now.after(std::time::Duration::from_secs(11));
        assert_eq!(
            s.verify("/files/a/b.mp4", exp, &sig, later),
            Err(LinkError::Expired)
        );
        assert_ne!(UrlSigner::new("other").sign("/x", 1), s.sign("/x", 1));
    }
}
