//! `mux-av`: each participant session's audio and video in one MKV, placed by the wall
//! clock: each stream where its first frame arrived, and the video then moved to where the
//! sender's clock (its first sender reports) puts it against the audio, as a player's lip
//! sync would. The two tracks are extracted to a temporary directory outside the output; the
//! video is written into the MKV as it is extracted, interleaved with the finished audio
//! file, or, if the archive holds the video before the audio, the two files are interleaved
//! after. Nothing is re-encoded.

use std::path::Path;

pub use super::av_file::{MediaFilter, Muxed};
use super::extract;
use super::selection::{ExtractError, Fill, Selection, check_selection};
use crate::rtp::archive::Archive;

/// Writes an audio-and-video MKV per participant session (and screen share) that has both,
/// of the sources `media` names, into `out_dir`.
pub fn mux_av(
    archive: &Archive,
    selection: &Selection,
    media: MediaFilter,
    fill: Fill,
    out_dir: &Path,
) -> Result<Vec<Muxed>, ExtractError> {
    check_selection(archive, selection)?;
    let output_error = |source| ExtractError::Output {
        dir: out_dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(out_dir).map_err(output_error)?;
    let scratch = tempfile::tempdir().map_err(output_error)?;
    let pass = extract::extract_av(
        archive,
        selection,
        fill,
        scratch.path(),
        (media, out_dir),
        &mut |_| {},
    )?;
    Ok(pass.audio_video)
}
