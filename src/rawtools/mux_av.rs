//! `mux-av`: each participant session's audio and video in one MKV, placed by the wall
//! clock: each stream where its first frame arrived, and the video then moved to where the
//! sender's clock (its first sender reports) puts it against the audio, as a player's lip
//! sync would. The two tracks are first extracted to a temporary directory outside the output,
//! then interleaved without re-encoding.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::extract::{self, ExtractError, Extracted, Fill, Kind, Selection};
use crate::mux;
use crate::recorders::individual;
use crate::rtp::archive::Archive;

/// Largest move of video against audio that sender reports are trusted for.
const MAX_ALIGN_US: i64 = 1_000_000;

/// Which sources `mux-av` combines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MediaFilter {
    /// Camera and microphone.
    User,
    /// Screen share and its sound.
    Display,
    /// Both.
    Both,
}

/// A file `mux-av` wrote.
#[derive(Clone, Debug, Serialize)]
pub struct Muxed {
    /// Where it is.
    pub path: PathBuf,
    /// The user id.
    pub user_id: String,
    /// The participant session.
    pub session_id: String,
    /// Whether it is a screen share's.
    pub screenshare: bool,
    /// How far the video was moved from its arrival times to meet the audio (ms; 0 without
    /// sender reports).
    pub video_moved_ms: i64,
}

/// Writes an audio-and-video MKV per participant session (and screen share) that has both,
/// of the sources `media` names, into `out_dir`.
pub fn mux_av(
    archive: &Archive,
    selection: &Selection,
    media: MediaFilter,
    fill: Fill,
    out_dir: &Path,
) -> Result<Vec<Muxed>, ExtractError> {
    extract::check_selection(archive, selection)?;
    let output_error = |source| ExtractError::Output {
        dir: out_dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(out_dir).map_err(output_error)?;
    let scratch = tempfile::tempdir().map_err(output_error)?;
    let (audio, video) = extract::extract(
        archive,
        selection,
        &[Kind::Audio, Kind::Video],
        fill,
        scratch.path(),
    )?
    .into_iter()
    .partition::<Vec<_>, _>(|x| x.kind == Kind::Audio);
    combine(archive, &audio, &video, media, out_dir)
}

/// Writes the audio-and-video files of the sessions that have both an `audio` and a
/// `video` file (already extracted), of the sources `media` names, into `out_dir`.
pub fn combine(
    archive: &Archive,
    audio: &[Extracted],
    video: &[Extracted],
    media: MediaFilter,
    out_dir: &Path,
) -> Result<Vec<Muxed>, ExtractError> {
    let output_error = |source| ExtractError::Output {
        dir: out_dir.display().to_string(),
        source,
    };
    let call = archive.sessions.first().map(|s| &s.metadata.call);
    let mut written = Vec::new();
    for v in video {
        let wanted = match media {
            MediaFilter::User => !v.screenshare,
            MediaFilter::Display => v.screenshare,
            MediaFilter::Both => true,
        };
        let a = audio
            .iter()
            .find(|a| a.session_id == v.session_id && a.screenshare == v.screenshare);
        let (Some(a), Some(call), true) = (a, call, wanted) else {
            continue;
        };
        let moved = video_shift(a, v);
        let zero = a.start_us.min(v.start_us + moved);
        let name = individual::file_name(
            (&call.call_type, &call.call_id),
            &v.user_id,
            &v.session_id,
            v.screenshare,
            "audio_video",
            super::call_start_ms(archive),
        );
        let path = out_dir.join(&name);
        let partial = out_dir.join(format!("{name}.partial"));
        let made = mux::interleave(
            &[
                (&a.path, a.start_us - zero),
                (&v.path, v.start_us + moved - zero),
            ],
            &partial,
        )
        .map_err(ExtractError::from)
        .and_then(|()| std::fs::rename(&partial, &path).map_err(output_error));
        if let Err(e) = made {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
        tracing::debug!(
            file = %path.display(),
            audio_start_ms = (a.start_us - zero) / 1000,
            video_start_ms = (v.start_us + moved - zero) / 1000,
            video_moved_ms = moved / 1000,
            "audio and video combined"
        );
        written.push(Muxed {
            path,
            user_id: v.user_id.clone(),
            session_id: v.session_id.clone(),
            screenshare: v.screenshare,
            video_moved_ms: moved / 1000,
        });
    }
    Ok(written)
}

/// How far to move the video of `v` so that it meets the audio of `a` as the sender's clock
/// says (0 without a sender report on both, or if the reports disagree wildly).
fn video_shift(a: &Extracted, v: &Extracted) -> i64 {
    match (a.sender_offset_us, v.sender_offset_us) {
        (Some(audio), Some(video)) if (audio - video).abs() <= MAX_ALIGN_US => audio - video,
        _ => 0,
    }
}
