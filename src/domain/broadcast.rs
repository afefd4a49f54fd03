//! Broadcasts: the publish tokens that let broadcasters publish streams, and say whether
//! what they publish is recorded.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ids::{CallId, CallTypeName, Cid, StreamName, UserId};
use super::participant::Participant;
use super::recording::RecordingState;
use super::time::Timestamp;
use crate::secret::Secret;

/// The call type of broadcasts: a stream is the call `broadcast:<stream name>`, and its
/// publishers are participants of that call.
pub const BROADCAST_CALL_TYPE: &str = "broadcast";

/// The call a stream's publishers and viewers meet in.
pub fn stream_cid(stream: &StreamName) -> Cid {
    Cid::new(
        CallTypeName::parse(BROADCAST_CALL_TYPE).expect("a valid call type"),
        CallId::parse(stream.as_str()).expect("stream names are valid call ids"),
    )
}

/// One source of a broadcast: the token it is published with, the user that token
/// publishes as, and its source id (empty for a stream's only source).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BroadcastSource {
    /// The publish token's id.
    pub token_id: i64,
    /// The user its token publishes as.
    pub publisher: UserId,
    /// Its source id.
    pub source_id: String,
    /// Whether pictures of it are taken while it is recorded.
    pub thumbnails: bool,
    /// The longest recording of it; it goes on in a new recording after that.
    pub split_after: std::time::Duration,
    /// Whether this recording goes on from one that reached `split_after` (then it is kept
    /// however short it is).
    pub continued: bool,
}

impl BroadcastSource {
    /// Whether `p` is this source.
    pub fn is(&self, p: &Participant) -> bool {
        p.user_id == self.publisher && p.source_id == self.source_id
    }
}

/// What a recorded file holds, read from the file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MediaInfo {
    /// Its container: `WEBM`, `MP4` or `MATROSKA`.
    pub format: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its length in seconds.
    pub duration: f64,
    /// Its tracks.
    pub tracks: Vec<TrackInfo>,
}

/// One track of a recorded file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrackInfo {
    /// `audio` or `video`.
    pub kind: String,
    /// Its codec, as the dialect names it: `VP8`, `VP9`, `AV1`, `H264`, `Opus`.
    pub codec: String,
    /// Bits per second, on average.
    pub bitrate: u64,
    /// Picture width (video).
    pub width: u32,
    /// Picture height (video).
    pub height: u32,
    /// Pictures per second, on average (video).
    pub framerate: f64,
    /// Channels (audio).
    pub channels: u32,
    /// Samples per second (audio).
    pub samplerate: u32,
}

/// A broadcast recording as the record files API shows it: one source's broadcast.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordFile {
    /// Its id.
    pub id: i64,
    /// The recording that makes it.
    pub recording: super::Recording,
    /// The token it was published with.
    pub token_id: i64,
    /// The stream.
    pub stream: StreamName,
    /// The source (empty for a stream's only source).
    pub source_id: String,
    /// When it started.
    pub recorded_on: Timestamp,
    /// What its file holds, once it is finished.
    pub metadata: Option<MediaInfo>,
}

/// What happened to a record file, as its webhook names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordFileChange {
    /// Its source is being recorded.
    Started,
    /// Its file is stored.
    Completed,
    /// Its recording failed.
    Error,
    /// It was deleted.
    Deleted,
}

impl RecordFileChange {
    /// Its name in webhooks.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Completed => "completed",
            Self::Error => "error",
            Self::Deleted => "deleted",
        }
    }

    /// What a broadcast recording's move from `from` to `to` is to its record file.
    pub fn of(from: Option<RecordingState>, to: RecordingState) -> Option<Self> {
        match (from, to) {
            (Some(RecordingState::Requested), RecordingState::Running) => Some(Self::Started),
            (_, RecordingState::Ready) => Some(Self::Completed),
            (_, RecordingState::Failed) => Some(Self::Error),
            _ => None,
        }
    }
}

/// One rule of the streams a token covers: a stream name, or a regular expression that a
/// whole stream name must match.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRule {
    /// The name, or the expression.
    pub stream_name: String,
    /// Whether `stream_name` is a regular expression.
    #[serde(default)]
    pub is_regex: bool,
}

impl StreamRule {
    /// Longest expression, in bytes.
    pub const MAX_REGEX_LEN: usize = 256;

    /// Checks the name, or that the expression compiles within a small size.
    fn check(&self) -> Result<(), InvalidToken> {
        if !self.is_regex {
            StreamName::parse(self.stream_name.as_str())
                .map_err(|e| InvalidToken(format!("streams: {e}")))?;
            return Ok(());
        }
        if self.stream_name.is_empty() || self.stream_name.len() > Self::MAX_REGEX_LEN {
            return Err(InvalidToken(format!(
                "streams: a regular expression must have 1 to {} bytes",
                Self::MAX_REGEX_LEN
            )));
        }
        self.regex().map(drop)
    }

    /// The expression, anchored at both ends.
    fn regex(&self) -> Result<regex::Regex, InvalidToken> {
        regex::RegexBuilder::new(&format!("^(?:{})$", self.stream_name))
            .size_limit(1 << 20)
            .build()
            .map_err(|e| {
                InvalidToken(format!(
                    "streams: {:?} is not a regular expression reel accepts: {e}",
                    self.stream_name
                ))
            })
    }

    /// Whether the rule covers `stream`.
    pub fn covers(&self, stream: &StreamName) -> bool {
        if self.is_regex {
            self.regex().is_ok_and(|r| r.is_match(stream.as_str()))
        } else {
            self.stream_name == stream.as_str()
        }
    }
}

/// A token's settings refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidToken(String);

/// A publish token: who may publish which streams, and what becomes of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishToken {
    /// Its id.
    pub id: i64,
    /// A name for people.
    pub label: String,
    /// The value publishers present.
    pub token: Secret,
    /// The streams it may publish.
    pub streams: Vec<StreamRule>,
    /// Whether its broadcasts are recorded.
    pub record: bool,
    /// Whether one stream may have several sources (each recorded on its own).
    pub multisource: bool,
    /// Whether pictures of its broadcasts are kept while live and with their recordings.
    pub enable_thumbnails: bool,
    /// Whether viewers need a token of their own to play its streams.
    pub subscribe_requires_auth: bool,
    /// Whether it may be used.
    pub is_active: bool,
    /// When it was made.
    pub added_on: Timestamp,
    /// When it stops being usable, if ever.
    pub expires_on: Option<Timestamp>,
}

/// Why a token may not publish a stream now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    /// It was disabled.
    #[error("the publish token is disabled")]
    Inactive,
    /// Its time is up.
    #[error("the publish token expired at {0}")]
    Expired(String),
    /// None of its rules covers the stream.
    #[error("the publish token does not cover the stream {0:?}")]
    NotCovered(String),
}

/// What a new token is made of (its id, value and time are given when it is stored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenSpec {
    /// A name for people.
    pub label: String,
    /// The streams it may publish.
    pub streams: Vec<StreamRule>,
    /// Whether its broadcasts are recorded.
    pub record: bool,
    /// Whether one stream may have several sources.
    pub multisource: bool,
    /// Whether pictures of its broadcasts are kept.
    pub enable_thumbnails: bool,
    /// Whether viewers need a token of their own.
    pub subscribe_requires_auth: bool,
    /// When it stops being usable.
    pub expiry: Expiry,
}

/// When a new token stops being usable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Expiry {
    /// Never.
    #[default]
    Never,
    /// At a given time.
    At(Timestamp),
    /// This long after it is made.
    After(Duration),
}

impl Expiry {
    /// The time a token made at `added_on` expires, if it does.
    pub fn time(self, added_on: Timestamp) -> Option<Timestamp> {
        match self {
            Self::Never => None,
            Self::At(t) => Some(t),
            Self::After(d) => Some(added_on.after(d)),
        }
    }
}

/// Longest label, in characters.
pub const MAX_LABEL_CHARS: usize = 256;
/// Most stream rules a token may have.
pub const MAX_STREAM_RULES: usize = 64;

fn check_label(label: &str) -> Result<(), InvalidToken> {
    if label.trim().is_empty() || label.chars().count() > MAX_LABEL_CHARS {
        return Err(InvalidToken(format!(
            "label must have 1 to {MAX_LABEL_CHARS} characters"
        )));
    }
    if label.chars().any(char::is_control) {
        return Err(InvalidToken(
            "label may not contain control characters".into(),
        ));
    }
    Ok(())
}

fn check_streams(streams: &[StreamRule]) -> Result<(), InvalidToken> {
    if streams.is_empty() || streams.len() > MAX_STREAM_RULES {
        return Err(InvalidToken(format!(
            "streams must list 1 to {MAX_STREAM_RULES} stream names"
        )));
    }
    streams.iter().try_for_each(StreamRule::check)
}

impl TokenSpec {
    /// Checks the label and the stream rules.
    pub fn check(&self) -> Result<(), InvalidToken> {
        check_label(&self.label)?;
        check_streams(&self.streams)
    }
}

/// Changes to a token; `None` leaves a setting as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenChanges {
    /// A new label.
    pub label: Option<String>,
    /// A new value (the old one stops working).
    pub token: Option<Secret>,
    /// Enables or disables it.
    pub is_active: Option<bool>,
    /// Stream rules to add.
    pub add_streams: Vec<StreamRule>,
    /// Stream rules to remove.
    pub remove_streams: Vec<StreamRule>,
    /// Whether its broadcasts are recorded.
    pub record: Option<bool>,
    /// Whether one stream may have several sources.
    pub multisource: Option<bool>,
    /// Whether pictures of its broadcasts are kept.
    pub enable_thumbnails: Option<bool>,
    /// Whether viewers need a token of their own.
    pub subscribe_requires_auth: Option<bool>,
}

impl PublishToken {
    /// The user its broadcasters publish as (one per token; several sources of one token
    /// are told apart by their source id).
    pub fn publisher(&self) -> UserId {
        UserId::parse(format!("broadcaster-{}", self.id)).expect("a valid user id")
    }

    /// Whether it may publish `stream` at `now`.
    pub fn allows(&self, stream: &StreamName, now: Timestamp) -> Result<(), TokenRefusal> {
        if !self.is_active {
            return Err(TokenRefusal::Inactive);
        }
        if let Some(at) = self.expires_on.filter(|at| *at <= now) {
            return Err(TokenRefusal::Expired(at.to_rfc3339()));
        }
        if !self.streams.iter().any(|r| r.covers(stream)) {
            return Err(TokenRefusal::NotCovered(stream.to_string()));
        }
        Ok(())
    }

    /// Applies `c`, checked as a whole: nothing changes if any part is refused. Whether its
    /// broadcasts are recorded cannot change while one of them is `live`.
    pub fn apply(&mut self, c: TokenChanges, live: bool) -> Result<(), InvalidToken> {
        if live && c.record.is_some_and(|r| r != self.record) {
            return Err(InvalidToken(
                "record cannot change while the token is in use by a live broadcast; \
                 stop broadcasting first"
                    .into(),
            ));
        }
        let mut next = self.clone();
        if let Some(label) = c.label {
            check_label(&label)?;
            next.label = label;
        }
        next.streams.retain(|s| !c.remove_streams.contains(s));
        for s in c.add_streams {
            if !next.streams.contains(&s) {
                next.streams.push(s);
            }
        }
        check_streams(&next.streams)?;
        let flags = [
            (c.is_active, &mut next.is_active),
            (c.record, &mut next.record),
            (c.multisource, &mut next.multisource),
            (c.enable_thumbnails, &mut next.enable_thumbnails),
            (c.subscribe_requires_auth, &mut next.subscribe_requires_auth),
        ];
        for (change, flag) in flags {
            if let Some(v) = change {
                *flag = v;
            }
        }
        if let Some(token) = c.token {
            next.token = token;
        }
        *self = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, is_regex: bool) -> StreamRule {
        StreamRule {
            stream_name: name.into(),
            is_regex,
        }
    }

    /// An active token of id 1 for the stream `news`, made at time 0, never expiring.
    fn token() -> PublishToken {
        PublishToken {
            id: 1,
            label: "a".into(),
            token: Secret::from("t"),
            streams: vec![rule("news", false)],
            record: false,
            multisource: true,
            enable_thumbnails: false,
            subscribe_requires_auth: false,
            is_active: true,
            added_on: Timestamp::from_unix_nanos(0),
            expires_on: None,
        }
    }

    fn spec(streams: Vec<StreamRule>) -> TokenSpec {
        TokenSpec {
            label: "studio".into(),
            streams,
            record: false,
            multisource: true,
            enable_thumbnails: false,
            subscribe_requires_auth: false,
            expiry: Expiry::Never,
        }
    }

    #[test]
    fn rules_match_whole_names() {
        let name = |s: &str| StreamName::parse(s).unwrap();
        assert!(rule("news", false).covers(&name("news")));
        assert!(!rule("news", false).covers(&name("news2")));
        let r = rule("news-[0-9]+", true);
        assert!(r.covers(&name("news-12")));
        assert!(!r.covers(&name("xnews-12")) && !r.covers(&name("news-12x")));
        assert!(rule(".*", true).covers(&name("anything")));
    }

    #[test]
    fn specs_are_checked() {
        assert!(spec(vec![rule("news", false)]).check().is_ok());
        assert!(spec(vec![rule("a|b", true)]).check().is_ok());
        for bad in [
            vec![],
            vec![rule("../x", false)],
            vec![rule("a\u{7}", false)],
            vec![rule(&"x".repeat(65), false)],
            vec![rule("(unclosed", true)],
            vec![rule(&"a".repeat(300), true)],
            vec![rule("", true)],
        ] {
            assert!(spec(bad.clone()).check().is_err(), "{bad:?}");
        }
        let mut s = spec(vec![rule("news", false)]);
        for label in ["", "  ", "a\nb", &"l".repeat(257)] {
            s.label = label.into();
            assert!(s.check().is_err(), "{label:?}");
        }
    }

    #[test]
    fn changes_apply_whole_or_not_at_all() {
        let mut t = token();
        // While live, recording cannot be switched; the rest can change.
        let record = TokenChanges {
            record: Some(true),
            ..TokenChanges::default()
        };
        let e = t.apply(record.clone(), true).unwrap_err();
        assert!(e.to_string().contains("live broadcast"), "{e}");
        assert!(!t.record);
        t.apply(
            TokenChanges {
                record: Some(false),
                label: Some("b".into()),
                ..TokenChanges::default()
            },
            true,
        )
        .unwrap();
        assert_eq!(t.label, "b");
        t.apply(record, false).unwrap();
        t.apply(
            TokenChanges {
                add_streams: vec![rule("sport", false), rule("news", false)],
                ..TokenChanges::default()
            },
            false,
        )
        .unwrap();
        assert!(t.record);
        assert_eq!(t.streams, vec![rule("news", false), rule("sport", false)]);
        let before = t.clone();
        // Removing every stream is refused, and the label given with it is not taken either.
        let e = t
            .apply(
                TokenChanges {
                    label: Some("c".into()),
                    remove_streams: t.streams.clone(),
                    ..TokenChanges::default()
                },
                false,
            )
            .unwrap_err();
        assert!(e.to_string().contains("streams"), "{e}");
        assert_eq!(t, before);
    }

    #[test]
    fn tokens_allow_their_streams_while_active_and_unexpired() {
        let now = Timestamp::from_unix_nanos(1_000);
        let mut t = PublishToken {
            id: 7,
            added_on: now,
            expires_on: Some(Timestamp::from_unix_nanos(2_000)),
            ..token()
        };
        let news = StreamName::parse("news").unwrap();
        assert_eq!(t.allows(&news, now), Ok(()));
        assert_eq!(t.publisher().as_str(), "broadcaster-7");
        assert!(matches!(
            t.allows(&StreamName::parse("sport").unwrap(), now),
            Err(TokenRefusal::NotCovered(_))
        ));
        assert!(matches!(
            t.allows(&news, Timestamp::from_unix_nanos(2_000)),
            Err(TokenRefusal::Expired(_))
        ));
        t.is_active = false;
        assert_eq!(t.allows(&news, now), Err(TokenRefusal::Inactive));
        assert_eq!(stream_cid(&news).to_string(), "broadcast:news");
    }
}
