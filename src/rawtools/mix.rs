//! `mix-audio`: every participant's audio in one MP3, each track placed at its wall-clock
//! start (the first arrival of its first frame), the mix starting with the earliest; mono
//! (64 kbit/s) when every track is, as browsers send, else stereo (128 kbit/s). The
//! tracks are first extracted (gaps and DTX silences filled) to a temporary directory outside
//! the output, then decoded, summed and encoded together as they are read.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::extract::{self, ExtractError, Extracted, Fill, Kind, Selection};
use crate::domain::names;
use crate::mux;
use crate::rtp::archive::Archive;

/// The mix written.
#[derive(Clone, Debug, Serialize)]
pub struct Mixed {
    /// Where it is.
    pub path: PathBuf,
    /// How many tracks it mixes.
    pub tracks: usize,
    /// 1 if every track is mono, else 2.
    pub channels: u16,
    /// Its length in seconds.
    pub duration_s: f64,
    /// Samples clipped where the voices summed beyond full scale.
    pub clipped: u64,
}

/// Writes `composite_{type}_{id}_audio_{call start ms}.mp3` into `out_dir`; `None` if the
/// archive holds no audio.
pub fn mix_audio(archive: &Archive, out_dir: &Path) -> Result<Option<Mixed>, ExtractError> {
    let output_error = |source| ExtractError::Output {
        dir: out_dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(out_dir).map_err(output_error)?;
    let scratch = tempfile::tempdir().map_err(output_error)?;
    let fill = Fill {
        gaps: true,
        dtx: true,
    };
    let tracks = extract::extract(
        archive,
        &Selection::default(),
        &[Kind::Audio],
        fill,
        scratch.path(),
    )?;
    mix_files(archive, &tracks, out_dir)
}

/// Writes the mix of `tracks` (audio files already extracted from `archive`) into `out_dir`;
/// `None` if there are none.
pub fn mix_files(
    archive: &Archive,
    tracks: &[Extracted],
    out_dir: &Path,
) -> Result<Option<Mixed>, ExtractError> {
    let output_error = |source| ExtractError::Output {
        dir: out_dir.display().to_string(),
        source,
    };
    let (Some(zero), Some(session)) = (
        tracks.iter().map(|t| t.start_us).min(),
        archive.sessions.first(),
    ) else {
        return Ok(None);
    };
    let call = &session.metadata.call;
    let name = format!(
        "composite_{}_{}_audio_{}.mp3",
        names::file_part(&call.call_type, 64),
        names::file_part(&call.call_id, 64),
        super::call_start_ms(archive)
    );
    let inputs: Vec<(&Path, i64)> = tracks
        .iter()
        .map(|t| (t.path.as_path(), t.start_us - zero))
        .collect();
    for (path, offset_us) in &inputs {
        tracing::debug!(track = %path.display(), starts_at_ms = offset_us / 1000, "mixed in");
    }
    let path = out_dir.join(&name);
    let partial = out_dir.join(format!("{name}.partial"));
    let channels = if tracks.iter().any(|t| t.stereo) {
        2
    } else {
        1
    };
    let stats = match mux::mix_to_mp3(&inputs, channels, &partial) {
        Ok(stats) => stats,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e.into());
        }
    };
    std::fs::rename(&partial, &path).map_err(output_error)?;
    Ok(Some(Mixed {
        path,
        tracks: tracks.len(),
        channels,
        duration_s: stats.duration_s,
        clipped: stats.clipped,
    }))
}
