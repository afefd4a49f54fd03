//! `process-all`: the audio and video of each participant session, the two together, and
//! the mix of everyone's audio, on two threads: one extracts the audio and mixes it (the
//! longest part: decoding and encoding), the other extracts the video and, once the audio
//! files are there, combines the two without re-encoding.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::extract::{self, ExtractError, Extracted, Fill, Kind, Selection};
use super::mix::{self, Mixed};
use super::mux_av::{self, MediaFilter, Muxed};
use crate::rtp::archive::Archive;

/// Everything `process-all` wrote.
#[derive(Clone, Debug, Serialize)]
pub struct Processed {
    /// The audio-only files.
    pub audio: Vec<Extracted>,
    /// The video-only files.
    pub video: Vec<Extracted>,
    /// The audio-and-video files.
    pub audio_video: Vec<Muxed>,
    /// The mix of the selected audio, if there was any.
    pub mix: Option<Mixed>,
}

/// Writes every kind of file for the tracks `selection` picks into `out_dir`.
pub fn process_all(
    archive: &Archive,
    selection: &Selection,
    fill: Fill,
    out_dir: &Path,
) -> Result<Processed, ExtractError> {
    // The mix (decoding and encoding) is the longest part: its thread starts at once with
    // the audio, while this one extracts the video and combines.
    let (audio_ready, audio_files) = std::sync::mpsc::sync_channel(1);
    let (mix, video, audio_video) = std::thread::scope(|s| {
        let mixing = s.spawn(move || {
            let started = Instant::now();
            let audio = extract::extract(archive, selection, &[Kind::Audio], fill, out_dir);
            tracing::debug!(took = ?started.elapsed(), "audio extracted");
            let _ = audio_ready.send(audio.as_ref().map(Vec::clone).map_err(|_| ()));
            let audio = audio?;
            let mix = mix::mix_files(archive, &audio, out_dir)?;
            tracing::debug!(took = ?started.elapsed(), "audio mixed");
            Ok::<_, ExtractError>((audio, mix))
        });
        let started = Instant::now();
        let video = extract::extract(archive, selection, &[Kind::Video], fill, out_dir);
        tracing::debug!(took = ?started.elapsed(), "video extracted");
        let audio_video = match (&video, audio_files.recv()) {
            (Ok(video), Ok(Ok(audio))) => Some(mux_av::combine(
                archive,
                &audio,
                video,
                MediaFilter::Both,
                out_dir,
            )),
            _ => None,
        };
        tracing::debug!(took = ?started.elapsed(), "audio and video combined");
        let mix = mixing
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (mix, video, audio_video)
    });
    let (audio, mix) = mix?;
    let video = video?;
    let audio_video = audio_video.unwrap_or_else(|| Ok(Vec::new()))?;
    Ok(Processed {
        audio,
        video,
        audio_video,
        mix,
    })
}
