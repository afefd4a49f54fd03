//! Participants of a call session and the tracks they publish.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::ids::{Cid, SessionId, UserId};
use super::time::Timestamp;

pub use reel_rtp::TrackType;

/// One participant's presence in a call session: from the first media connection of a user
/// (and source) until the last one closes. A user who reconnects gets a new one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Participant {
    /// Who.
    pub user_id: UserId,
    /// This presence's id (Stream's `user_session_id`).
    pub user_session_id: SessionId,
    /// Which of the user's sources (`""` for the default one).
    pub source_id: String,
    /// The role the user has in the call.
    pub role: String,
    /// When it joined.
    pub joined_at: Timestamp,
}

/// A participant pinned for everyone in the call: the layouts show it first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    /// Whose.
    pub user_id: UserId,
    /// Which of the user's presences (Stream's `session_id`, the `user_session_id`).
    pub session_id: SessionId,
}

/// The codec of a published track.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Codec {
    /// The name as in SDP: `opus`, `VP8`, `VP9`, `H264`, `AV1`.
    pub name: String,
    /// RTP clock rate.
    pub clock_rate: u32,
    /// Audio channels (0 for video).
    pub channels: u8,
    /// The negotiated format parameters (`a=fmtp`), e.g. `profile-level-id=42e01f;...`.
    pub fmtp: String,
}

/// A track a participant publishes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Track {
    /// Unique in the process.
    pub track_id: String,
    /// What it carries.
    #[serde(rename = "type")]
    pub track_type: TrackType,
    /// Its codec.
    pub codec: Codec,
    /// The participant publishing it.
    pub participant: Participant,
    /// When its first packet arrived.
    pub published_at: Timestamp,
}

/// Why a participant left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaveReason {
    /// It ended its connection.
    Left,
    /// Its connection was lost.
    Disconnected,
}

impl LeaveReason {
    /// As events name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Left => "left",
            Self::Disconnected => "disconnected",
        }
    }
}

/// What happened in a call, as the media plane saw it.
#[derive(Clone, Debug)]
pub enum Activity {
    /// A participant's first publishing connection opened.
    Joined(Participant),
    /// A participant's last publishing connection closed.
    Left(Participant, LeaveReason),
    /// A track's first packet arrived.
    TrackPublished(Arc<Track>),
    /// A track ended.
    TrackEnded(Arc<Track>),
    /// A participant became the dominant speaker.
    DominantSpeaker(Participant),
}

/// What the media plane reports about a call: its activity, in the order it happened.
#[derive(Clone, Debug)]
pub struct CallActivity {
    /// The call.
    pub cid: Cid,
    /// What happened.
    pub activity: Activity,
}
