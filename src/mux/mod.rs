//! The only place that calls FFmpeg: containers written from frames that are already coded
//! (no transcoding), mixed audio (MP3, AAC), pictures of an X display, and H.264 video from them,
//! and JPEG stills of key frames; and, with libopus, short audio losses concealed.
//! Every file is written as it goes: Matroska and WebM in clusters of at most a second
//! flushed as they close, MP4 in fragments, so a file cut short by a crash plays up to its
//! last cluster or fragment.

mod audio_file;
mod composite;
mod conceal;
mod info;
mod interleave;
mod live_mix;
mod mix;
mod params;
mod pcm;
mod reader;
mod regroup;
mod screen;
mod thumbnail;
mod writer;

pub use audio_file::{AudioCodec, AudioFile};
pub use composite::{
    AudioInput, CompositeSink, CompositeStats, SinkMeter, VideoCodec, VideoFormat,
};
pub use conceal::Concealer;
pub use info::{holds_frames, media_info};
pub use interleave::{finalize, interleave};
pub use live_mix::LiveMix;
pub use mix::{MixStats, mix_to_mp3};
pub use pcm::MixedAudio;
pub use reader::{FrameReader, StoredFrame};
pub use screen::{Picture, Screen};
pub use thumbnail::thumbnail;
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

/// Writes the packets `encoder` (whose time base is `base`) has ready into stream `stream` of
/// `out`; a packet without a duration lasts one tick of `base`.
fn write_ready(
    encoder: &mut ffmpeg_next::encoder::Encoder,
    out: &mut ffmpeg_next::format::context::Output,
    (stream, base): (usize, ffmpeg_next::Rational),
    context: &str,
) -> Result<(), MuxError> {
    let out_base = out.stream(stream).map_or(base, |s| s.time_base());
    let mut packet = ffmpeg_next::Packet::empty();
    while encoder.receive_packet(&mut packet).is_ok() {
        packet.set_stream(stream);
        if packet.duration() == 0 {
            packet.set_duration(1);
        }
        packet.rescale_ts(base, out_base);
        packet
            .write_interleaved(out)
            .map_err(|e| MuxError::new(context)(e))?;
    }
    Ok(())
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
