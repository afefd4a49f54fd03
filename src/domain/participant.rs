//! Participants of a call session and the tracks they publish.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ids::{SessionId, UserId};
use super::time::Timestamp;

/// What a published track carries, named as Stream's SFU names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TrackType {
    /// The microphone.
    #[serde(rename = "TRACK_TYPE_AUDIO")]
    Audio,
    /// The camera.
    #[serde(rename = "TRACK_TYPE_VIDEO")]
    Video,
    /// A shared screen.
    #[serde(rename = "TRACK_TYPE_SCREEN_SHARE")]
    ScreenShare,
    /// The sound of a shared screen.
    #[serde(rename = "TRACK_TYPE_SCREEN_SHARE_AUDIO")]
    ScreenShareAudio,
}

impl TrackType {
    /// The type of a track of this kind from a camera/microphone or a screen source.
    pub fn of(audio: bool, screen: bool) -> Self {
        match (audio, screen) {
            (true, false) => Self::Audio,
            (false, false) => Self::Video,
            (false, true) => Self::ScreenShare,
            (true, true) => Self::ScreenShareAudio,
        }
    }

    /// True for the two audio types.
    pub fn is_audio(self) -> bool {
        matches!(self, Self::Audio | Self::ScreenShareAudio)
    }

    /// True for the two screen-share types.
    pub fn is_screen(self) -> bool {
        matches!(self, Self::ScreenShare | Self::ScreenShareAudio)
    }

    /// The wire name, e.g. `TRACK_TYPE_AUDIO`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Audio => "TRACK_TYPE_AUDIO",
            Self::Video => "TRACK_TYPE_VIDEO",
            Self::ScreenShare => "TRACK_TYPE_SCREEN_SHARE",
            Self::ScreenShareAudio => "TRACK_TYPE_SCREEN_SHARE_AUDIO",
        }
    }
}

impl fmt::Display for TrackType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
