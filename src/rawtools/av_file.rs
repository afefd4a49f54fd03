//! Audio-and-video Matroska files of a participant session, combined from its extracted
//! audio and video without re-encoding: written along with the video as it is extracted
//! ([`AvFile`]), or interleaved from the two finished files ([`combine`]).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::selection::{ExtractError, Extracted};
use crate::domain::names;
use crate::mux::{self, FrameReader, StoredFrame, StreamSpec, Writer};
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

impl MediaFilter {
    /// Whether the sources named take a screen share's (`screen`) or a camera's files.
    pub fn takes(self, screen: bool) -> bool {
        match self {
            Self::User => !screen,
            Self::Display => screen,
            Self::Both => true,
        }
    }
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
        let wanted = media.takes(v.screenshare);
        let a = audio
            .iter()
            .find(|a| a.session_id == v.session_id && a.screenshare == v.screenshare);
        let (Some(a), Some(call), true) = (a, call, wanted) else {
            continue;
        };
        let moved = video_shift(a.sender_offset_us, v.sender_offset_us);
        let zero = a.start_us.min(v.start_us + moved);
        let name = names::individual_file(
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
        written.push(combined(
            a,
            path,
            (a.start_us - zero, v.start_us + moved - zero),
            moved,
        ));
    }
    Ok(written)
}

/// Logs and describes the file at `path` that combines `audio`'s session's audio, starting
/// at `starts_us.0`, and its video, starting at `starts_us.1`, moved `moved_us`.
fn combined(audio: &Extracted, path: PathBuf, starts_us: (i64, i64), moved_us: i64) -> Muxed {
    tracing::debug!(
        file = %path.display(),
        audio_start_ms = starts_us.0 / 1000,
        video_start_ms = starts_us.1 / 1000,
        video_moved_ms = moved_us / 1000,
        "audio and video combined"
    );
    Muxed {
        path,
        user_id: audio.user_id.clone(),
        session_id: audio.session_id.clone(),
        screenshare: audio.screenshare,
        video_moved_ms: moved_us / 1000,
    }
}

/// How far to move the video so that it meets the audio as the sender's clock says, from
/// the two files' offsets from that clock (0 without both, or if they disagree wildly).
fn video_shift(audio_offset_us: Option<i64>, video_offset_us: Option<i64>) -> i64 {
    match (audio_offset_us, video_offset_us) {
        (Some(audio), Some(video)) if (audio - video).abs() <= MAX_ALIGN_US => audio - video,
        _ => 0,
    }
}

/// An audio-and-video file written along with a session's video file, frame by frame, with
/// the session's finished audio file read alongside and interleaved by time.
pub(super) struct AvFile {
    writer: Writer,
    audio: FrameReader,
    next_audio: Option<StoredFrame>,
    /// Where each stream's times start in the file.
    audio_offset_us: i64,
    video_offset_us: i64,
    partial: PathBuf,
    muxed: Muxed,
}

impl AvFile {
    /// Starts the file at `path` with the audio of `audio` (its stream `audio_spec`) and a
    /// video stream `video`, whose first frame came at `video_start_us` (wall clock) and
    /// whose offset from the sender's clock is `video_sender_offset_us`, if known.
    pub(super) fn create(
        path: PathBuf,
        audio: &Extracted,
        audio_spec: StreamSpec,
        video: StreamSpec,
        video_start_us: i64,
        video_sender_offset_us: Option<i64>,
    ) -> Result<Self, ExtractError> {
        let moved = video_shift(audio.sender_offset_us, video_sender_offset_us);
        let zero = audio.start_us.min(video_start_us + moved);
        let partial = path.with_extension("mkv.partial");
        let mut reader = FrameReader::open(&audio.path)?;
        let next_audio = reader.next_frame()?;
        let writer = Writer::create(&partial, mux::Container::Matroska, &[audio_spec, video])?;
        let starts = (audio.start_us - zero, video_start_us + moved - zero);
        Ok(Self {
            writer,
            audio: reader,
            next_audio,
            audio_offset_us: starts.0,
            video_offset_us: starts.1,
            partial,
            muxed: combined(audio, path, starts, moved),
        })
    }

    /// Writes the audio up to `pts_us`, then a video frame presented `pts_us` after the
    /// video's first.
    pub(super) fn write_video(
        &mut self,
        pts_us: i64,
        duration_us: i64,
        data: &[u8],
        keyframe: bool,
    ) -> Result<(), ExtractError> {
        let at = pts_us + self.video_offset_us;
        self.write_audio(at)?;
        self.writer.write(1, at, duration_us, data, keyframe)?;
        Ok(())
    }

    /// Writes the audio frames presented before `until_us`.
    fn write_audio(&mut self, until_us: i64) -> Result<(), ExtractError> {
        while let Some(f) = self
            .next_audio
            .take_if(|f| f.pts_us + self.audio_offset_us <= until_us)
        {
            let at = f.pts_us + self.audio_offset_us;
            self.writer
                .write(0, at, f.duration_us, &f.data, f.keyframe)?;
            self.next_audio = self.audio.next_frame()?;
        }
        Ok(())
    }

    /// Writes the rest of the audio and puts the file in place.
    pub(super) fn finish(mut self) -> Result<Muxed, ExtractError> {
        let written = self
            .write_audio(i64::MAX)
            .and_then(|()| Ok(self.writer.finish()?))
            .and_then(|()| {
                std::fs::rename(&self.partial, &self.muxed.path).map_err(|source| {
                    ExtractError::Output {
                        dir: self.muxed.path.display().to_string(),
                        source,
                    }
                })
            });
        match written {
            Ok(()) => Ok(self.muxed),
            Err(e) => {
                let _ = std::fs::remove_file(&self.partial);
                Err(e)
            }
        }
    }

    /// Removes what was written.
    pub(super) fn discard(self) {
        drop(self.writer);
        let _ = std::fs::remove_file(&self.partial);
    }
}
