//! What a published track carries.

use std::fmt;

use serde::{Deserialize, Serialize};

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
