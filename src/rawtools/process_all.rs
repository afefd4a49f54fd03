//! `process-all`: the audio and video of each participant session, the two together, and
//! the mix of everyone's audio, from two passes over the archive (one per kind); the combined
//! files and the mix are made from the files the passes wrote.

use std::path::Path;

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
    let audio = extract::extract(archive, selection, Kind::Audio, fill, out_dir)?;
    let video = extract::extract(archive, selection, Kind::Video, fill, out_dir)?;
    let audio_video = mux_av::combine(archive, &audio, &video, MediaFilter::Both, out_dir)?;
    let mix = mix::mix_files(archive, &audio, out_dir)?;
    Ok(Processed {
        audio,
        video,
        audio_video,
        mix,
    })
}
