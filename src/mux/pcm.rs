//! The mixed audio every mixer makes and every audio encoder takes: 48 kHz, 32-bit float,
//! one plane per channel.

use ffmpeg_next::{ChannelLayout, frame};

/// The sample rate of every mix (Opus decodes at it).
pub(super) const RATE: i32 = 48_000;

/// Mixed audio, ready to encode.
pub struct MixedAudio(pub(super) frame::Audio);

/// The channel layout of `channels` (1: mono, else stereo).
pub(super) fn layout(channels: usize) -> ChannelLayout {
    if channels == 1 {
        ChannelLayout::MONO
    } else {
        ChannelLayout::STEREO
    }
}
