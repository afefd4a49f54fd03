//! Validated names and identifiers.
//!
//! Everything that arrives in a URL path or a token is checked here once, so that the rest of
//! reel can put these values in SQL, object keys and log lines without further thought. Names
//! that may become parts of file paths (call types, call ids, sessions, file names) allow only
//! a small safe alphabet; user ids allow anything printable because they come from tokens the
//! application signs, and are sanitized wherever they become part of a file name.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// A value that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {shown} is invalid: {reason}")]
pub struct InvalidName {
    /// What was being validated, e.g. "call id".
    pub what: &'static str,
    /// The offending value, escaped and shortened for display.
    pub shown: String,
    /// Why it was rejected.
    pub reason: &'static str,
}

impl InvalidName {
    fn new(what: &'static str, value: &str, reason: &'static str) -> Self {
        let short: String = value.chars().take(40).collect();
        let shown = if short.len() < value.len() {
            format!("{short:?}...")
        } else {
            format!("{short:?}")
        };
        Self {
            what,
            shown,
            reason,
        }
    }
}

fn is_slug_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

fn check_slug(what: &'static str, s: &str, max: usize) -> Result<(), InvalidName> {
    if s.is_empty() {
        return Err(InvalidName::new(what, s, "it is empty"));
    }
    if s.len() > max {
        return Err(InvalidName::new(what, s, "it is too long"));
    }
    if !s.chars().all(is_slug_char) {
        return Err(InvalidName::new(
            what,
            s,
            "only ASCII letters, digits, '-' and '_' are allowed",
        ));
    }
    Ok(())
}

macro_rules! slug {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Longest accepted value, in bytes.
            pub const MAX_LEN: usize = $max;

            /// Validates `s`.
            pub fn parse(s: impl Into<String>) -> Result<Self, InvalidName> {
                let s = s.into();
                check_slug($what, &s, $max)?;
                Ok(Self(s))
            }

            /// The value as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Self::parse(String::deserialize(d)?).map_err(serde::de::Error::custom)
            }
        }
    };
}

slug!(
    /// The name of a call type, e.g. `default`.
    CallTypeName, "call type", 64
);
slug!(
    /// The id of a call within its type.
    CallId, "call id", 64
);
slug!(
    /// The id of a call session (one continuous period with participants).
    SessionId, "session id", 64
);
slug!(
    /// The id of a recording (Stream calls it the egress id).
    RecordingId, "recording id", 64
);
slug!(
    /// The name of an external storage configuration.
    StorageName, "external storage name", 64
);
slug!(
    /// The name of a broadcast stream (publishers' WHIP URLs and viewers' WHEP URLs name it).
    StreamName, "stream name", 64
);
slug!(
    /// A role name used in grants, e.g. `admin` or `call_member`.
    Role, "role", 64
);

impl Role {
    /// Every authenticated user has this role unless the token or user record says otherwise.
    pub fn user() -> Self {
        Self("user".into())
    }

    /// Users listed as members of a call have this role in it.
    pub fn call_member() -> Self {
        Self("call_member".into())
    }
}

/// A random id made of 32 lowercase hex digits.
fn random_hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl SessionId {
    /// A fresh random session id.
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
}

impl RecordingId {
    /// A fresh random recording id.
    pub fn random() -> Self {
        Self(format!("EG_{}", random_hex()))
    }
}

/// A user id. Any printable text of up to 255 characters.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    /// Longest accepted value, in characters.
    pub const MAX_CHARS: usize = 255;

    /// Validates `s`.
    pub fn parse(s: impl Into<String>) -> Result<Self, InvalidName> {
        let s = s.into();
        if s.is_empty() {
            return Err(InvalidName::new("user id", &s, "it is empty"));
        }
        if s.chars().count() > Self::MAX_CHARS {
            return Err(InvalidName::new("user id", &s, "it is too long"));
        }
        if s.chars().any(char::is_control) {
            return Err(InvalidName::new(
                "user id",
                &s,
                "control characters are not allowed",
            ));
        }
        Ok(Self(s))
    }

    /// The value as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for UserId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The name of a recorded file, as it appears in listings and download paths.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct FileName(String);

impl FileName {
    /// Longest accepted value, in bytes.
    pub const MAX_LEN: usize = 255;

    /// Validates `s`: letters, digits, `.`, `-` and `_`, not starting with a dot.
    pub fn parse(s: impl Into<String>) -> Result<Self, InvalidName> {
        let s = s.into();
        if s.is_empty() {
            return Err(InvalidName::new("file name", &s, "it is empty"));
        }
        if s.len() > Self::MAX_LEN {
            return Err(InvalidName::new("file name", &s, "it is too long"));
        }
        if s.starts_with('.') || !s.chars().all(|c| is_slug_char(c) || c == '.') {
            return Err(InvalidName::new(
                "file name",
                &s,
                "only ASCII letters, digits, '.', '-' and '_' are allowed, and no leading '.'",
            ));
        }
        Ok(Self(s))
    }

    /// The value as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A call's full id, `<type>:<id>`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cid {
    /// The call's type.
    pub call_type: CallTypeName,
    /// The call's id within its type.
    pub id: CallId,
}

impl Cid {
    /// A cid from its two parts.
    pub fn new(call_type: CallTypeName, id: CallId) -> Self {
        Self { call_type, id }
    }

    /// Parses `<type>:<id>`.
    pub fn parse(s: &str) -> Result<Self, InvalidName> {
        let (t, i) = s
            .split_once(':')
            .ok_or_else(|| InvalidName::new("call cid", s, "expected <type>:<id>"))?;
        Ok(Self::new(CallTypeName::parse(t)?, CallId::parse(i)?))
    }
}

impl fmt::Display for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.call_type, self.id)
    }
}

impl Serialize for Cid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_slugs_are_rejected() {
        for bad in ["", "../x", "a/b", "a\0b", "é", &"x".repeat(65), "a b", "."] {
            assert!(CallId::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(CallId::parse("call_1-A").is_ok());
        assert!(CallId::parse("x".repeat(64)).is_ok());
    }

    #[test]
    fn file_names() {
        for bad in [
            "..",
            "../x",
            ".hidden",
            "a/b",
            "a\\b",
            "a\0",
            &"x".repeat(256),
        ] {
            assert!(FileName::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(FileName::parse("rec_1.mp4").is_ok());
    }

    #[test]
    fn user_ids_allow_printable_text_only() {
        assert!(UserId::parse("../../etc").is_ok());
        assert!(UserId::parse("ünïcode 用户").is_ok());
        assert!(UserId::parse("a\0b").is_err());
        assert!(UserId::parse("x".repeat(256)).is_err());
        assert!(UserId::parse("").is_err());
    }

    #[test]
    fn error_message_escapes_and_shortens() {
        let e = CallId::parse(format!("a\0{}", "b".repeat(300))).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("call id \"a\\0bbb"), "{msg}");
        assert!(msg.len() < 200);
    }

    #[test]
    fn cid_round_trip() {
        let cid = Cid::parse("default:abc").unwrap();
        assert_eq!(cid.to_string(), "default:abc");
        assert!(Cid::parse("default").is_err());
        assert!(Cid::parse("default:../x").is_err());
    }
}
