//! The composite recorder: the call as its layout draws it, in one video file.
//!
//! Each recording owns a virtual display, a Chromium on it showing the call's page (see
//! [`page`]), a capture of the display at 30 pictures a second, a mix of the call's audio
//! from the bus (see [`audio`]) and the encoders, each on a thread of its own (see
//! [`pictures`]). Several composites share none of these. The recording has started once the
//! first picture is captured; pictures and samples are placed by one clock, which starts
//! then and which a pause cuts (see [`clock`]). The file is written in fragments as it goes
//! (playable if reel dies) and rewritten with its index in front at the stop.
//!
//! A recording of audio alone (`recording.audio_only`, or a start request without video)
//! starts no browser: the mix, from the recording's start, is its file. A start request may
//! also ask for a file of the mix beside the video.
//!
//! A display and a browser may stand by for the next recording (see [`Standby`]).

mod audio;
mod clock;
mod page;
mod pictures;
mod standby;

pub use standby::Standby;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::watch;
use tracing::info;

use super::{
    FinishedFile, Port, Recorder, RecorderError, RecorderFactory, RecordingJob, Reporter, Tracks,
    participant_files,
};
use crate::domain::{
    CompositeAudioCodec, CompositeOutputs, CompositeVideoCodec, FileName, Timestamp, names,
};
use crate::mux::{AudioCodec, AudioFile, VideoCodec};
use audio::Output;
use clock::Clock;
use page::Page;

/// Pictures a second.
const RATE: u32 = 30;
/// How long the page may take to show that it is ready.
const READY: Duration = Duration::from_secs(15);
/// How often the recorder looks at its browser.
const WATCH: Duration = Duration::from_millis(250);

/// Makes composite recorders.
#[derive(Default)]
pub struct CompositeFactory {
    standby: Option<Arc<Standby>>,
}

impl CompositeFactory {
    /// Composite recorders that take a display and browser started ahead of them, the first
    /// pair (for frames of `size`) starting now.
    pub fn standing_by(size: (u32, u32)) -> Self {
        Self {
            standby: Some(Standby::start(size)),
        }
    }
}

impl RecorderFactory for CompositeFactory {
    fn create(&self, job: &RecordingJob) -> Result<Box<dyn Recorder>, RecorderError> {
        let options = &job.composite;
        let outputs = options
            .outputs
            .clone()
            .unwrap_or_else(|| CompositeOutputs::of(&job.settings.recording));
        let cid = &job.recording.cid;
        let call = (cid.call_type.as_str(), cid.id.as_str());
        let prefix = options.file_name_prefix.as_deref().unwrap_or("composite");
        // Named by the request: a session may hold several composites.
        let requested_ms = job.recording.created_at.unix_millis();
        let sound = outputs.audio.map(|a| {
            let codec = match a.codec {
                CompositeAudioCodec::Mp3 => AudioCodec::Mp3,
                CompositeAudioCodec::Aac => AudioCodec::Aac,
            };
            Sound {
                name: names::composite_file(prefix, call, true, requested_ms, codec.extension()),
                codec,
                channels: a.channels,
            }
        });
        let plan = match (outputs.video, sound) {
            (Some(video), sound) => {
                let viewer = job.viewer.clone().ok_or_else(|| {
                    RecorderError::Failed("a composite recording needs a way to reach reel".into())
                })?;
                crate::browser::executable().map_err(|e| RecorderError::Failed(e.to_string()))?;
                let codec = match video.codec {
                    CompositeVideoCodec::H264 => VideoCodec::H264,
                    CompositeVideoCodec::Vp8 => VideoCodec::Vp8,
                };
                let name =
                    names::composite_file(prefix, call, false, requested_ms, codec.extension());
                Plan::Pictures(page::page(job, &viewer, &video, (name, codec)), sound)
            }
            (None, Some(sound)) => Plan::Audio(sound),
            (None, None) => {
                return Err(RecorderError::Failed(
                    "a composite recording must write video or audio".into(),
                ));
            }
        };
        Ok(Box::new(CompositeRecorder {
            plan,
            dir: job.work_dir.clone(),
            max_duration: options.max_duration,
            standby: self.standby.clone(),
        }))
    }

    fn recover(&self, dir: &Path, handed_over: &HashSet<String>) -> Vec<FinishedFile> {
        ["mp4", "webm", "mp3", "m4a"]
            .into_iter()
            .flat_map(|extension| participant_files::recover(dir, extension, handed_over, None))
            .collect()
    }
}

/// What a composite records.
enum Plan {
    /// The layout's pictures and the mix, and the mix alone too if asked.
    Pictures(Page, Option<Sound>),
    /// The mix alone.
    Audio(Sound),
}

/// A file of the mix alone.
#[derive(Clone, Debug)]
struct Sound {
    /// The file's name.
    name: String,
    codec: AudioCodec,
    channels: u16,
}

struct CompositeRecorder {
    plan: Plan,
    /// Where its files are written.
    dir: PathBuf,
    /// It stops by itself after this long.
    max_duration: Option<Duration>,
    /// Where a display and browser may wait for it.
    standby: Option<Arc<Standby>>,
}

impl Recorder for CompositeRecorder {
    fn tracks(&self) -> Tracks {
        // The pictures come from the page; the sound from the bus.
        Box::new(|t| t.track_type.is_audio())
    }

    fn run(self: Box<Self>, port: Port) -> BoxFuture<'static, Result<(), RecorderError>> {
        let CompositeRecorder {
            plan,
            dir,
            max_duration,
            standby,
        } = *self;
        async move {
            std::fs::create_dir_all(&dir).map_err(|source| RecorderError::Io {
                context: format!("cannot create {}", dir.display()),
                source,
            })?;
            // The recording's own end, if it has one, is a stop like any other.
            if let Some(max) = max_duration {
                let stop = port.stop.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        () = tokio::time::sleep(max) => stop.cancel(),
                        () = stop.cancelled() => {}
                    }
                });
            }
            match plan {
                Plan::Pictures(page, sound) => {
                    pictures::record(page, sound.as_ref(), &dir, port, standby.as_ref()).await
                }
                Plan::Audio(sound) => record_sound(&sound, &dir, port).await,
            }
        }
        .boxed()
    }
}

fn failed(what: &str) -> impl Fn(String) -> RecorderError + '_ {
    move |e| RecorderError::Failed(format!("{what}: {e}"))
}

/// Records the mix alone into `dir` as `sound` says, from now until the port's stop.
async fn record_sound(sound: &Sound, dir: &Path, port: Port) -> Result<(), RecorderError> {
    let Port {
        stop,
        reports,
        feed,
        paused,
        ..
    } = port;
    let path = dir.join(&sound.name);
    let file = AudioFile::create(&path, sound.codec, sound.channels)
        .map_err(|e| failed("cannot write the recording")(e.to_string()))?;
    let (start_mix, mix_start) = tokio::sync::oneshot::channel();
    let (end_mix, mix_end) = tokio::sync::oneshot::channel();
    let (mixer, _) = audio::spawn(feed, mix_start, mix_end)
        .map_err(|e| failed("cannot start the mixer")(e.to_string()))?;
    let (start, wall_start) = (Instant::now(), Timestamp::now());
    let clock = Arc::new(Clock::default());
    let pauses = follow_pauses(paused, &clock, start);
    let _ = start_mix.send(audio::Start {
        at: wall_start,
        clock: Arc::clone(&clock),
        // Nothing is shown: the audio is placed as it arrived.
        delay: Arc::default(),
        output: Output {
            pictures: None,
            file: Some(file),
        },
    });
    reports.started();
    // The mixer ends at the stop, or before it if the file cannot be written.
    let mut mixing = tokio::task::spawn_blocking(move || mixer.join());
    let ended = tokio::select! {
        () = stop.cancelled() => None,
        joined = &mut mixing => Some(joined),
    };
    let wall = start.elapsed();
    pauses.abort();
    let length = clock.length(wall);
    let joined = match ended {
        Some(joined) => joined,
        None => {
            let _ = end_mix.send(length);
            mixing.await
        }
    };
    let (mixed, written) = match joined {
        Ok(Ok((mixed, written))) => (
            mixed,
            written.map_err(|e| failed("the composite file")(e.to_string())),
        ),
        _ => (
            audio::MixStats::default(),
            Err(RecorderError::Failed("the mixer stopped".into())),
        ),
    };
    info!(
        file = %sound.name,
        seconds = length.as_secs_f64(),
        audio_late = mixed.late,
        audio_clipped = mixed.clipped,
        "composite audio recorded"
    );
    // What was written is kept, whatever stopped the writing.
    hand_over(&reports, &path, wall_start, wall)?;
    written
}

/// Follows `paused` onto `clock`, timed from `start`, until the recording ends.
fn follow_pauses(
    mut paused: watch::Receiver<bool>,
    clock: &Arc<Clock>,
    start: Instant,
) -> tokio::task::JoinHandle<()> {
    let clock = Arc::clone(clock);
    tokio::spawn(async move {
        while paused.changed().await.is_ok() {
            let at = start.elapsed();
            if *paused.borrow_and_update() {
                clock.pause(at);
            } else {
                clock.resume(at);
            }
        }
    })
}

/// Reports the file at `path` (if it was made), recorded for `wall` from `start`.
fn hand_over(
    reports: &Reporter,
    path: &Path,
    start: Timestamp,
    wall: Duration,
) -> Result<(), RecorderError> {
    if !path.exists() {
        return Ok(());
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let filename = FileName::parse(name).map_err(|e| failed("the file's name")(e.to_string()))?;
    reports.file_finished(FinishedFile {
        path: path.to_owned(),
        filename,
        start_time: start,
        end_time: start.after(wall),
        layer: None,
    });
    Ok(())
}
