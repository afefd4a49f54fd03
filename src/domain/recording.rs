//! Recordings, the files they make, and the recording state machine.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ids::{Cid, FileName, RecordingId, SessionId, StorageName, UserId};
use super::time::Timestamp;

/// The kinds of recording reel makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordingType {
    /// One file laid out like the meeting.
    Composite,
    /// Files per participant session.
    Individual,
    /// One archive of RTP packets per call session.
    Raw,
    /// One audio file per recorded participant.
    Track,
    /// One file per source of a broadcast, in the codecs it was sent in.
    Broadcast,
}

impl RecordingType {
    /// Every recording type.
    pub const ALL: [RecordingType; 5] = [
        Self::Composite,
        Self::Individual,
        Self::Raw,
        Self::Track,
        Self::Broadcast,
    ];

    /// The types that record calls when asked (broadcasts are recorded as their publish
    /// tokens say).
    pub const CALLS: [RecordingType; 4] =
        [Self::Composite, Self::Individual, Self::Raw, Self::Track];

    /// The name used in URLs, events and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Composite => "composite",
            Self::Individual => "individual",
            Self::Raw => "raw",
            Self::Track => "track",
            Self::Broadcast => "broadcast",
        }
    }

    /// Parses the name used in URLs.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for RecordingType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a recording is in its life.
///
/// `requested -> running -> stopping -> uploading -> ready`, or `failed` from any state
/// before `ready`. See [`RecordingState::next`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordingState {
    /// Accepted; the recorder is being set up.
    Requested,
    /// The recorder is writing.
    Running,
    /// The recorder is running but leaves this time out of its files.
    Paused,
    /// A stop was asked for; the recorder is finishing its files.
    Stopping,
    /// The recorder is done; its files are being uploaded.
    Uploading,
    /// Every file is uploaded.
    Ready,
    /// The recording ended with an error.
    Failed,
}

/// Something that happens to a recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// The recorder started writing (it may have been asked to stop already).
    Started,
    /// Someone (or the end of the call session) asked it to stop.
    StopRequested,
    /// Someone asked it to leave what follows out, until it resumes.
    Pause,
    /// Someone asked a paused recording to go on.
    Resume,
    /// The recorder finished and handed over its files.
    RecorderFinished,
    /// The last file was uploaded.
    Uploaded,
    /// Something went wrong that ends the recording.
    Fail,
}

/// A transition that the current state does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {from} recording cannot take {transition:?}")]
pub struct InvalidTransition {
    /// The state the recording was in.
    pub from: RecordingState,
    /// What was attempted.
    pub transition: Transition,
}

impl RecordingState {
    /// Every state.
    pub const ALL: [RecordingState; 7] = [
        Self::Requested,
        Self::Running,
        Self::Paused,
        Self::Stopping,
        Self::Uploading,
        Self::Ready,
        Self::Failed,
    ];

    /// The name used in the store and in API answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Stopping => "stopping",
            Self::Uploading => "uploading",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// True while the recorder may still be writing: a second recording of the same type cannot start.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Self::Requested | Self::Running | Self::Paused | Self::Stopping
        )
    }

    /// True once nothing more will happen.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Ready | Self::Failed)
    }

    /// The state after `t`, or an error if `t` cannot happen now.
    pub fn next(self, t: Transition) -> Result<RecordingState, InvalidTransition> {
        use RecordingState::*;
        use Transition::*;
        let to = match (self, t) {
            (Requested, Started) => Running,
            // Asked to stop while it was still setting up: it started, and now finishes.
            (Stopping, Started) => Stopping,
            (Requested | Running | Paused, StopRequested) => Stopping,
            (Running, Pause) => Paused,
            (Paused, Resume) => Running,
            (Requested | Running | Paused | Stopping, RecorderFinished) => Uploading,
            (Uploading, Uploaded) => Ready,
            (s, Fail) if !s.is_final() => Failed,
            _ => {
                return Err(InvalidTransition {
                    from: self,
                    transition: t,
                });
            }
        };
        Ok(to)
    }
}

impl fmt::Display for RecordingState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One recording of one type of one call session.
#[derive(Clone, Debug, PartialEq)]
pub struct Recording {
    /// Its id (the egress id in Stream's events).
    pub id: RecordingId,
    /// The recorded call.
    pub cid: Cid,
    /// The recorded call session.
    pub session_id: SessionId,
    /// What kind of recording.
    pub recording_type: RecordingType,
    /// Where it is in its life.
    pub state: RecordingState,
    /// The external storage its files go to; `None` is reel's own store.
    pub storage: Option<StorageName>,
    /// Who asked for it; `None` for server-side requests and automatic starts.
    pub requested_by: Option<UserId>,
    /// Why it failed.
    pub error: Option<String>,
    /// When it was requested.
    pub created_at: Timestamp,
    /// When the recorder started writing.
    pub started_at: Option<Timestamp>,
    /// When the recorder stopped writing.
    pub stopped_at: Option<Timestamp>,
    /// Last change.
    pub updated_at: Timestamp,
    /// Whether it is the call session's one active recording of its type (false: it runs
    /// beside others, as RealtimeKit's `allow_multiple_recordings` asks).
    pub exclusive: bool,
}

/// Which store holds a file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StorageLocation {
    /// reel's local recordings directory.
    Local,
    /// reel's default S3 bucket.
    DefaultS3,
    /// An external storage of the application's.
    External(StorageName),
}

impl StorageLocation {
    /// The stored form: `local`, `s3` or `external:<name>`.
    pub fn encode(&self) -> String {
        match self {
            Self::Local => "local".into(),
            Self::DefaultS3 => "s3".into(),
            Self::External(n) => format!("external:{n}"),
        }
    }

    /// Parses the stored form.
    pub fn decode(s: &str) -> Option<Self> {
        match s {
            "local" => Some(Self::Local),
            "s3" => Some(Self::DefaultS3),
            _ => s
                .strip_prefix("external:")
                .and_then(|n| StorageName::parse(n).ok())
                .map(Self::External),
        }
    }

    /// True for reel's own stores, whose files reel deletes with their recordings.
    pub fn is_own(&self) -> bool {
        !matches!(self, Self::External(_))
    }
}

/// A file a recording made.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordingFile {
    /// The recording that made it.
    pub recording_id: RecordingId,
    /// The recorded call.
    pub cid: Cid,
    /// The recorded call session.
    pub session_id: SessionId,
    /// What kind of recording made it.
    pub recording_type: RecordingType,
    /// Its name, unique within the call session.
    pub filename: FileName,
    /// The store holding it.
    pub storage: StorageLocation,
    /// Its key within that store.
    pub object_key: String,
    /// Its size in bytes.
    pub size: u64,
    /// Wall-clock time of its first media.
    pub start_time: Timestamp,
    /// Wall-clock time of its last media.
    pub end_time: Timestamp,
    /// The layer it belongs to, for recordings that group their files (track recordings).
    pub layer: Option<String>,
}

/// The layer a broadcast recording lists the pictures taken while it was live under.
pub const THUMBNAILS_LAYER: &str = "thumbnails";
/// The layer a broadcast recording lists its file's poster under.
pub const POSTER_LAYER: &str = "poster";

impl RecordingFile {
    /// Whether it is a picture of a broadcast (a thumbnail or a poster) rather than a
    /// recording: listed with its recording's record file, not announced or listed alone.
    pub fn is_picture(&self) -> bool {
        matches!(self.layer.as_deref(), Some(THUMBNAILS_LAYER | POSTER_LAYER))
    }
}

/// What a track recording records, and how it names its files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackOptions {
    /// The users recorded (including those who join later); `None` records everyone.
    pub user_ids: Option<Vec<UserId>>,
    /// The layers: each gets one file per recorded participant, named with its prefix.
    pub layers: Vec<TrackLayer>,
}

/// One layer of a track recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackLayer {
    /// Its name, which groups its files in listings.
    pub name: String,
    /// The first part of its files' names.
    pub file_name_prefix: String,
}

/// Why track options are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidTrackOptions(String);

impl TrackOptions {
    /// Most users an allowlist may name.
    pub const MAX_USERS: usize = 100;
    /// Longest layer name or file name prefix, in characters.
    pub const MAX_NAME_CHARS: usize = 1024;
    /// The layer used when none is given, and the prefix of a layer that gives none.
    pub const DEFAULT_LAYER: &str = "default";

    /// Checks the allowlist and the layers (at least one; distinct prefixes, since their
    /// files would otherwise collide).
    pub fn new(
        user_ids: Option<Vec<UserId>>,
        layers: Vec<TrackLayer>,
    ) -> Result<Self, InvalidTrackOptions> {
        if let Some(ids) = &user_ids
            && ids.len() > Self::MAX_USERS
        {
            return Err(InvalidTrackOptions(format!(
                "user_ids names {} users; at most {} may be recorded",
                ids.len(),
                Self::MAX_USERS
            )));
        }
        let layers = if layers.is_empty() {
            Self::default().layers
        } else {
            layers
        };
        for (i, l) in layers.iter().enumerate() {
            for (what, v) in [
                ("layer name", &l.name),
                ("file_name_prefix", &l.file_name_prefix),
            ] {
                if v.is_empty() || v.chars().count() > Self::MAX_NAME_CHARS {
                    return Err(InvalidTrackOptions(format!(
                        "{what} must have 1 to {} characters",
                        Self::MAX_NAME_CHARS
                    )));
                }
            }
            if layers[..i]
                .iter()
                .any(|o| o.file_name_prefix == l.file_name_prefix)
            {
                return Err(InvalidTrackOptions(format!(
                    "layers share the file_name_prefix {:?}",
                    l.file_name_prefix
                )));
            }
        }
        Ok(Self { user_ids, layers })
    }

    /// Whether `user` is recorded.
    pub fn records(&self, user: &UserId) -> bool {
        self.user_ids.as_ref().is_none_or(|ids| ids.contains(user))
    }
}

impl Default for TrackOptions {
    /// Everyone, in one layer `default` with the prefix `default`.
    fn default() -> Self {
        Self {
            user_ids: None,
            layers: vec![TrackLayer {
                name: Self::DEFAULT_LAYER.into(),
                file_name_prefix: Self::DEFAULT_LAYER.into(),
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RecordingState::*;
    use super::Transition::*;
    use super::*;

    #[test]
    fn happy_path() {
        let mut s = Requested;
        for t in [Started, StopRequested, RecorderFinished, Uploaded] {
            s = s.next(t).unwrap();
        }
        assert_eq!(s, Ready);
    }

    #[test]
    fn failures_and_forbidden_moves() {
        for s in [Requested, Running, Stopping, Uploading] {
            assert_eq!(s.next(Fail), Ok(Failed));
        }
        assert!(Ready.next(Fail).is_err());
        assert!(Failed.next(Started).is_err());
        assert!(Running.next(Started).is_err());
        assert!(Stopping.next(StopRequested).is_err());
        assert!(Running.next(Uploaded).is_err());
        assert_eq!(Running.next(RecorderFinished), Ok(Uploading));
        assert_eq!(Requested.next(StopRequested), Ok(Stopping));
        assert_eq!(
            Stopping.next(Started),
            Ok(Stopping),
            "a stop that came before the start"
        );
        assert_eq!(Requested.next(RecorderFinished), Ok(Uploading));
    }

    #[test]
    fn storage_locations_round_trip() {
        for l in [
            StorageLocation::Local,
            StorageLocation::DefaultS3,
            StorageLocation::External(StorageName::parse("mine").unwrap()),
        ] {
            assert_eq!(StorageLocation::decode(&l.encode()), Some(l));
        }
        assert_eq!(StorageLocation::decode("external:../x"), None);
        assert_eq!(StorageLocation::decode("ftp"), None);
    }

    #[test]
    fn names_round_trip() {
        for s in RecordingState::ALL {
            assert_eq!(RecordingState::parse(s.as_str()), Some(s));
        }
        for t in RecordingType::ALL {
            assert_eq!(RecordingType::parse(t.as_str()), Some(t));
        }
        assert_eq!(RecordingType::parse("video"), None);
    }

    #[test]
    fn track_options_are_checked() {
        let users = |n: usize| {
            Some(
                (0..n)
                    .map(|i| UserId::parse(format!("u{i}")).unwrap())
                    .collect(),
            )
        };
        assert!(TrackOptions::new(users(100), vec![]).is_ok());
        let e = TrackOptions::new(users(101), vec![]).unwrap_err();
        assert!(e.to_string().contains("at most 100"), "{e}");
        let layer = |name: &str, prefix: &str| TrackLayer {
            name: name.into(),
            file_name_prefix: prefix.into(),
        };
        assert!(TrackOptions::new(None, vec![layer("a", "p"), layer("b", "p")]).is_err());
        assert!(TrackOptions::new(None, vec![layer("a", "")]).is_err());
        let o = TrackOptions::new(users(2), vec![]).unwrap();
        assert_eq!(o.layers, TrackOptions::default().layers);
        assert!(o.records(&UserId::parse("u1").unwrap()));
        assert!(!o.records(&UserId::parse("u2").unwrap()));
        assert!(TrackOptions::default().records(&UserId::parse("anyone").unwrap()));
    }
}
