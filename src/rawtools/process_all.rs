//! `process-all`: the audio and video of each participant session, the two together, and
//! the mix of everyone's audio, from one pass over the archive. The mix (decoding and
//! encoding, the longest part) starts on its own thread as soon as the audio files are
//! written, which in archives that hold their audio first (as reel packs them) is at once,
//! while the pass goes on through the video.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::extract::{self, ExtractError, Extracted, Fill, Kind, Selection};
use super::mix::{self, Mixed};
use super::mux_av::{MediaFilter, Muxed};
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
    let started = Instant::now();
    let (audio_ready, audio_files) = std::sync::mpsc::sync_channel::<Vec<Extracted>>(1);
    let (pass, mix) = std::thread::scope(|s| {
        let mixing = s.spawn(move || {
            let Ok(audio) = audio_files.recv() else {
                return Ok(None);
            };
            let mix = mix::mix_files(archive, &audio, out_dir);
            tracing::debug!(took = ?started.elapsed(), "audio mixed");
            mix
        });
        let extracting = s.spawn(|| {
            yield_to_the_mix();
            extract::extract_av(
                archive,
                selection,
                fill,
                out_dir,
                (MediaFilter::Both, out_dir),
                &mut |audio| {
                    tracing::debug!(took = ?started.elapsed(), "audio extracted");
                    let _ = audio_ready.send(audio.to_vec());
                },
            )
        });
        let pass = extracting
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        tracing::debug!(took = ?started.elapsed(), "audio and video extracted");
        let mix = mixing
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (pass, mix)
    });
    let pass = pass?;
    let mix = mix?;
    let (audio, video) = pass.tracks.into_iter().partition(|x| x.kind == Kind::Audio);
    Ok(Processed {
        audio,
        video,
        audio_video: pass.audio_video,
        mix,
    })
}

/// Lowers the calling thread's priority (nice 5; Linux gives each thread its own): the mix's
/// encoding, one frame after another on one thread, is the longest chain of work, and the
/// writing of the other files can wait for it. About a second less in an hour's call.
fn yield_to_the_mix() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 5) {
        tracing::debug!(error = %e, "the extraction's priority stays as it was");
    }
}
