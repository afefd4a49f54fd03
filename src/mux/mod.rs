//! The only place that calls FFmpeg: containers written from frames that are already coded
//! (no transcoding), mixed audio (MP3), pictures of an X display, and H.264 video from them.
//! Every file is written as it goes: Matroska and WebM in clusters of at most a second
//! flushed as they close, MP4 in fragments, so a file cut short by a crash plays up to its
//! last cluster or fragment.

mod composite;
mod interleave;
mod live_mix;
mod mix;
mod params;
mod reader;
mod screen;
mod writer;

pub use composite::{AudioInput, CompositeSink, CompositeStats, VideoFormat};
pub use interleave::{finalize, interleave};
pub use live_mix::{LiveMix, MixedAudio};
pub use mix::{MixStats, mix_to_mp3};
pub use reader::{FrameReader, StoredFrame};
pub use screen::{Picture, Screen};
pub use writer::{Container, StreamSpec, Writer};

use std::sync::Once;

/// Why FFmpeg could not write a file.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
pub struct MuxError {
    context: String,
    source: ffmpeg_next::Error,
}

impl MuxError {
    fn new(context: impl Into<String>) -> impl FnOnce(ffmpeg_next::Error) -> Self {
        let context = context.into();
        move |source| Self { context, source }
    }
}

/// Creates `path` as a file of FFmpeg's `format`; `context` says what was being done.
fn create_output(
    path: &std::path::Path,
    format: &str,
    context: &str,
) -> Result<ffmpeg_next::format::context::Output, MuxError> {
    // FFmpeg takes the path as a C string.
    if path.to_str().is_none_or(|p| p.contains('\0')) {
        return Err(MuxError::new(context)(ffmpeg_next::Error::InvalidData));
    }
    ffmpeg_next::format::output_as(path, format).map_err(MuxError::new(context))
}

/// Opens `path` to read; `context` says what was being done.
fn open_input(
    path: &std::path::Path,
    context: &str,
) -> Result<ffmpeg_next::format::context::Input, MuxError> {
    if path.to_str().is_none_or(|p| p.contains('\0')) {
        return Err(MuxError::new(context)(ffmpeg_next::Error::InvalidData));
    }
    ffmpeg_next::format::input(path).map_err(MuxError::new(context))
}

/// Quiets FFmpeg's own logging (reel reports errors itself), once.
fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Error));
}
