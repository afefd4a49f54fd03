//! Wall-clock timestamps as the APIs speak them: integer unix nanoseconds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize};
use time::format_description::well_known::{Iso8601, Rfc3339};
use time::{OffsetDateTime, PrimitiveDateTime};

/// A point in wall-clock time, in nanoseconds since the unix epoch.
///
/// Serialized as an integer (the Stream SDKs fail on ISO strings); deserialized from an
/// integer or from an RFC 3339 string, which some clients send for request fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }

    /// A timestamp from unix nanoseconds.
    pub const fn from_unix_nanos(nanos: i64) -> Self {
        Self(nanos)
    }

    /// Unix nanoseconds.
    pub const fn unix_nanos(self) -> i64 {
        self.0
    }

    /// Whole unix milliseconds (rounded down).
    pub const fn unix_millis(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// Whole unix seconds (rounded down).
    pub const fn unix_secs(self) -> i64 {
        self.0.div_euclid(1_000_000_000)
    }

    /// This timestamp moved forward by `d` (saturating).
    pub fn after(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_add(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
        )
    }

    /// This timestamp moved back by `d` (saturating).
    pub fn before(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_sub(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
        )
    }

    /// The time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_nanos(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }

    /// RFC 3339 in UTC, for logs and metadata files.
    pub fn to_rfc3339(self) -> String {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0))
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default()
    }

    /// Parses an RFC 3339 string with any offset. A date-time without an offset (what
    /// Python's `isoformat()` writes for a naive `datetime`) is taken as UTC.
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        let t = OffsetDateTime::parse(s, &Rfc3339).ok().or_else(|| {
            PrimitiveDateTime::parse(s, &Iso8601::DEFAULT)
                .ok()
                .map(PrimitiveDateTime::assume_utc)
        })?;
        i64::try_from(t.unix_timestamp_nanos()).ok().map(Self)
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        let nanos = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        Self(i64::try_from(nanos).unwrap_or(i64::MAX))
    }
}

impl From<Timestamp> for SystemTime {
    fn from(t: Timestamp) -> Self {
        match u64::try_from(t.0) {
            Ok(n) => UNIX_EPOCH + Duration::from_nanos(n),
            Err(_) => UNIX_EPOCH,
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Nanos(i64),
            Text(String),
        }
        match Repr::deserialize(d)? {
            Repr::Nanos(n) => Ok(Self(n)),
            Repr::Text(s) => Self::parse_rfc3339(&s).ok_or_else(|| {
                serde::de::Error::custom("expected unix nanoseconds or an RFC 3339 timestamp")
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms() {
        let a: Timestamp = serde_json::from_str("1700000000000000000").unwrap();
        let b: Timestamp = serde_json::from_str("\"2023-11-14T22:13:20Z\"").unwrap();
        assert_eq!(a, b);
        assert_eq!(serde_json::to_string(&a).unwrap(), "1700000000000000000");
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
    }

    #[test]
    fn offsets_and_naive_times() {
        let utc = Timestamp::parse_rfc3339("2026-11-23T12:00:00Z").unwrap();
        let plus2 = Timestamp::parse_rfc3339("2026-11-23T14:00:00+02:00").unwrap();
        let frac = Timestamp::parse_rfc3339("2026-11-23T14:00:00.5+02:00").unwrap();
        let naive = Timestamp::parse_rfc3339("2026-11-23T12:00:00.000001").unwrap();
        assert_eq!(utc, plus2);
        assert_eq!(frac.unix_nanos() - utc.unix_nanos(), 500_000_000);
        assert_eq!(naive.unix_nanos() - utc.unix_nanos(), 1_000);
        assert_eq!(utc.to_rfc3339(), "2026-11-23T12:00:00Z");
        assert_eq!(Timestamp::parse_rfc3339(&frac.to_rfc3339()), Some(frac));
    }

    #[test]
    fn arithmetic_saturates() {
        let t = Timestamp::from_unix_nanos(5);
        assert_eq!(t.since(Timestamp::from_unix_nanos(10)), Duration::ZERO);
        assert_eq!(t.after(Duration::from_nanos(5)).unix_nanos(), 10);
        assert_eq!(Timestamp::from_unix_nanos(1_500_000_000).unix_secs(), 1);
    }
}
