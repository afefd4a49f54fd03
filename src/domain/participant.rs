//! Participants of a call session and the tracks they publish.

use serde::Serialize;

use super::ids::{SessionId, UserId};
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
