//! The composite recorder: the call as its layout draws it, in one MP4.
//!
//! Each recording owns a virtual display, a Chromium on it showing the call's layout page
//! (the built-in app at `/layout/{type}/{id}`, or the call's `external_app_url` handed the
//! same configuration), a capture of the display at 30 pictures a second, a mix of the
//! call's audio from the bus (see [`audio`]) and the H.264 + AAC encoders, each on a thread
//! of its own. Several composites share none of these. The recording has started once the
//! first picture is captured; pictures and samples are stamped on one clock, which starts
//! then. The file is written in fragments as it goes (playable if reel dies) and rewritten
//! with its index in front at the stop.

mod audio;

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tracing::{info, warn};

use super::{
    FinishedFile, Port, Recorder, RecorderError, RecorderFactory, RecordingJob, Tracks, Viewer,
    participant_files,
};
use crate::browser::capture::Capture;
use crate::browser::{Chromium, Display, Surface};
use crate::domain::settings::{LayoutName, video_bit_rate};
use crate::domain::{FileName, Timestamp, names};
use crate::layout::LayoutConfig;
use crate::mux::{CompositeSink, VideoFormat};

/// Pictures a second.
const RATE: u32 = 30;
/// How long the page may take to show that it is ready.
const READY: Duration = Duration::from_secs(15);
/// How often the recorder looks at its browser and tells how capture goes.
const CHECK: Duration = Duration::from_secs(1);

/// Makes composite recorders.
pub struct CompositeFactory;

impl RecorderFactory for CompositeFactory {
    fn create(&self, job: &RecordingJob) -> Result<Box<dyn Recorder>, RecorderError> {
        let viewer = job.viewer.clone().ok_or_else(|| {
            RecorderError::Failed("a composite recording needs a way to reach reel".into())
        })?;
        crate::browser::executable().map_err(|e| RecorderError::Failed(e.to_string()))?;
        Ok(Box::new(CompositeRecorder {
            page: page(job, &viewer),
        }))
    }

    fn recover(&self, dir: &Path, handed_over: &HashSet<String>) -> Vec<FinishedFile> {
        participant_files::recover(dir, "mp4", handed_over, None)
    }
}

/// The page a composite loads, and what it records.
#[derive(Clone, Debug)]
struct Page {
    /// The page.
    url: String,
    /// A script run before a custom page's own, handing it the configuration.
    script: Option<String>,
    /// The frame size.
    size: (u32, u32),
    /// The file's name and where it is written.
    name: String,
    dir: std::path::PathBuf,
}

/// The page that draws `job`'s call, reaching reel through `viewer`.
fn page(job: &RecordingJob, viewer: &Viewer) -> Page {
    let cid = &job.recording.cid;
    let recording = &job.settings.recording;
    let layout = &recording.layout;
    let mut config = LayoutConfig::for_call(cid, viewer.token.clone(), layout);
    config.base_url = viewer.base_url.clone();
    let (url, script) = match (layout.name, &layout.external_app_url) {
        (LayoutName::Custom, Some(app)) => {
            (app.clone(), Some(crate::layout::setup_script(&config)))
        }
        // Call types and ids are letters, digits, `-` and `_`; tokens are URL-safe.
        _ => (
            format!(
                "{}/layout/{}/{}?token={}",
                viewer.base_url, cid.call_type, cid.id, viewer.token
            ),
            None,
        ),
    };
    let call = (cid.call_type.as_str(), cid.id.as_str());
    Page {
        url,
        script,
        size: recording.quality.dimensions(),
        name: names::composite_file(call, job.session_started_at.unix_millis(), "mp4"),
        dir: job.work_dir.clone(),
    }
}

struct CompositeRecorder {
    page: Page,
}

impl Recorder for CompositeRecorder {
    fn tracks(&self) -> Tracks {
        // The pictures come from the page; the sound from the bus.
        Box::new(|t| t.track_type.is_audio())
    }

    fn run(self: Box<Self>, port: Port) -> BoxFuture<'static, Result<(), RecorderError>> {
        record(self.page, port).boxed()
    }
}

fn failed(what: &str) -> impl Fn(String) -> RecorderError + '_ {
    move |e| RecorderError::Failed(format!("{what}: {e}"))
}

/// Records `page` until the port's stop.
async fn record(page: Page, port: Port) -> Result<(), RecorderError> {
    let Port {
        stop,
        reports,
        feed,
        ..
    } = port;
    let size = page.size;
    // The mixer takes the feed from now on, and mixes from the first picture.
    let (start_mix, mix_start) = tokio::sync::oneshot::channel();
    let (end_mix, mix_end) = tokio::sync::oneshot::channel();
    let mixer = audio::spawn(feed, mix_start, mix_end)
        .map_err(|e| failed("cannot start the mixer")(e.to_string()))?;
    std::fs::create_dir_all(&page.dir).map_err(|source| RecorderError::Io {
        context: format!("cannot create {}", page.dir.display()),
        source,
    })?;
    let display = tokio::task::spawn_blocking(move || Display::start(size))
        .await
        .map_err(|e| failed("the display did not start")(e.to_string()))?
        .map_err(|e| failed("no display")(e.to_string()))?;
    let browser = Chromium::launch(size, Surface::On(&display))
        .await
        .map_err(|e| failed("no browser")(e.to_string()))?;
    let recorded = async {
        let tab = browser
            .open(&page.url, page.script.as_deref())
            .await
            .map_err(|e| failed("the layout page did not open")(e.to_string()))?;
        Chromium::wait_ready(&tab, READY)
            .await
            .map_err(|e| failed("the layout page")(e.to_string()))?;
        let path = page.dir.join(&page.name);
        let format = VideoFormat {
            size,
            rate: RATE,
            bit_rate: video_bit_rate(size),
        };
        let sink = CompositeSink::create(&path, format, true)
            .map_err(|e| failed("cannot write the recording")(e.to_string()))?;
        let input = sink.audio_input();
        let (start, wall_start) = (Instant::now(), Timestamp::now());
        let started = reports.clone();
        let capture = Capture::start(&display, sink, (RATE, start, None), move || {
            started.started();
        })
        .map_err(|e| failed("cannot capture the display")(e.to_string()))?;
        let _ = start_mix.send(audio::Start {
            at: wall_start,
            input,
        });
        let counters = capture.counters();
        let mut checks = tokio::time::interval(CHECK);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = checks.tick() => {
                    let c = counters.stats();
                    tracing::debug!(captured = c.captured, skipped = c.skipped, dropped = c.dropped, "capturing");
                }
            }
        }
        let length = start.elapsed();
        let (sink, captured) = tokio::task::spawn_blocking(move || capture.stop())
            .await
            .map_err(|e| failed("the capture")(e.to_string()))?;
        // The mix up to the last picture, then the file.
        let _ = end_mix.send(length);
        // Without the mixer's counts the file is finished all the same.
        let mixed = match tokio::task::spawn_blocking(move || mixer.join()).await {
            Ok(Ok(stats)) => stats,
            _ => {
                warn!("the mixer stopped before the end");
                audio::MixStats::default()
            }
        };
        let written = tokio::task::spawn_blocking(move || sink.finish(length))
            .await
            .map_err(|e| failed("the encoder")(e.to_string()))?;
        let taken = counters.stats();
        match &written {
            Ok(w) => info!(
                file = %page.name,
                seconds = length.as_secs_f64(),
                frames = w.frames,
                repeated = w.repeated,
                captured = taken.captured,
                skipped = taken.skipped,
                dropped = taken.dropped,
                audio_late = mixed.late,
                audio_clipped = mixed.clipped,
                "composite recorded"
            ),
            Err(e) => warn!(file = %page.name, error = %e, "the composite file failed"),
        }
        if path.exists() {
            let filename = FileName::parse(&page.name)
                .map_err(|e| failed("the file's name")(e.to_string()))?;
            reports.file_finished(FinishedFile {
                path,
                filename,
                start_time: wall_start,
                end_time: wall_start.after(length),
                layer: None,
            });
        }
        written.map_err(|e| failed("the composite file")(e.to_string()))?;
        captured.map_err(|e| failed("the capture")(e.to_string()))
    };
    let outcome = recorded.await;
    browser.close().await;
    drop(display);
    outcome
}
