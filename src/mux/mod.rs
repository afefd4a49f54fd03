//! The only place that calls FFmpeg: containers written from frames that are already coded
//! (no transcoding), mixed audio (MP3), and H.264 video from captured pictures. Matroska and WebM are written as live streams, in clusters of at most a
//! second flushed as they close, so a file cut short by a crash plays up to its last cluster.

mod interleave;
mod mix;
mod params;
mod picture;
mod reader;
mod writer;

pub use interleave::interleave;
pub use mix::{MixStats, mix_to_mp3};
pub use picture::PictureWriter;
pub use reader::{FrameReader, StoredFrame};
pub use writer::{Container, StreamSpec, Writer, finalize};

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

/// Quiets FFmpeg's own logging (reel reports errors itself), once.
fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Error));
}
