//! The codecs reel records, as RTP names them.

use std::fmt;

/// A codec whose RTP payloads reel can turn back into frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MediaCodec {
    /// Opus audio (48 kHz).
    Opus,
    /// VP8 video.
    Vp8,
    /// VP9 video.
    Vp9,
    /// H.264 video.
    H264,
    /// AV1 video.
    Av1,
}

impl MediaCodec {
    /// The codec of an SDP encoding `name` (any case), if reel handles it.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Opus, Self::Vp8, Self::Vp9, Self::H264, Self::Av1]
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }

    /// The SDP encoding name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Opus => "opus",
            Self::Vp8 => "VP8",
            Self::Vp9 => "VP9",
            Self::H264 => "H264",
            Self::Av1 => "AV1",
        }
    }

    /// True for audio.
    pub fn is_audio(self) -> bool {
        self == Self::Opus
    }

    /// RTP clock ticks per millisecond.
    pub fn ticks_per_ms(self) -> u64 {
        if self.is_audio() { 48 } else { 90 }
    }
}

impl fmt::Display for MediaCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
