//! What a composite recording writes: from the call's settings (Stream's `recording`), or as
//! a start request asks (RealtimeKit's `POST /recordings`).

use std::time::Duration;

use super::settings::RecordSettings;

/// How a composite recording is made beyond the call's settings. The default takes
/// everything from the settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompositeOptions {
    /// The first part of its files' names (default `composite`).
    pub file_name_prefix: Option<String>,
    /// It stops by itself after this long.
    pub max_duration: Option<Duration>,
    /// A page of one's own that draws the call, instead of the layout.
    pub app_url: Option<String>,
    /// What it writes; `None` follows the settings.
    pub outputs: Option<CompositeOutputs>,
}

/// The files of a composite recording: at least one of the two.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompositeOutputs {
    /// The call as its layout draws it, with the mix as its sound.
    pub video: Option<CompositeVideo>,
    /// The mix alone.
    pub audio: Option<CompositeAudio>,
}

/// A composite's video file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompositeVideo {
    /// Its codec (and with it the container).
    pub codec: CompositeVideoCodec,
    /// Width and height.
    pub size: (u32, u32),
    /// An image drawn over every picture.
    pub watermark: Option<Watermark>,
}

/// The video codec of a composite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompositeVideoCodec {
    /// H.264 with AAC, in MP4.
    H264,
    /// VP8 with Vorbis, in WebM.
    Vp8,
}

/// A composite's file of audio alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompositeAudio {
    /// Its codec.
    pub codec: CompositeAudioCodec,
    /// 1 or 2.
    pub channels: u16,
}

/// The codec of a composite's audio file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompositeAudioCodec {
    /// MP3.
    Mp3,
    /// AAC, in MP4 (`.m4a`).
    Aac,
}

/// An image over a composite's pictures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watermark {
    /// The image (http, https or data URL).
    pub url: String,
    /// Its size on the picture, in pixels.
    pub size: (u32, u32),
    /// The corner it sits in.
    pub corner: Corner,
}

/// A corner of the picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Corner {
    /// Top left.
    LeftTop,
    /// Top right.
    RightTop,
    /// Bottom left.
    LeftBottom,
    /// Bottom right.
    RightBottom,
}

impl CompositeOutputs {
    /// What the settings ask for: the layout's video at the quality's frame size, or with
    /// `audio_only` one stereo MP3.
    pub fn of(settings: &RecordSettings) -> Self {
        if settings.audio_only {
            Self {
                video: None,
                audio: Some(CompositeAudio {
                    codec: CompositeAudioCodec::Mp3,
                    channels: 2,
                }),
            }
        } else {
            Self {
                video: Some(CompositeVideo {
                    codec: CompositeVideoCodec::H264,
                    size: settings.quality.dimensions(),
                    watermark: None,
                }),
                audio: None,
            }
        }
    }
}
