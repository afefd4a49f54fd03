//! The composite's pictures: a browser on a display of its own, showing the page, captured
//! 30 times a second into the video file whose sound is the mix.

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::audio::{self, Output};
use super::clock::Clock;
use super::page::Page;
use super::standby::Standby;
use super::{RATE, READY, Sound, WATCH, failed, follow_pauses, hand_over};
use crate::browser::capture::Capture;
use crate::browser::{BrowserError, Chromium, Display, Surface, Tab};
use crate::domain::Timestamp;
use crate::domain::settings::video_bit_rate;
use crate::metrics::CompositeProgress;
use crate::mux::{AudioFile, CompositeSink, VideoFormat};
use crate::recorders::{Port, RecorderError};

/// Every how many looks at the browser its page's playout delay is asked (two seconds;
/// also at the second look, for a first measure a quarter second in).
const ASK_DELAY: u64 = 8;
/// After how many looks at the browser (half a second) the spare browser starts.
const SPARE_AFTER: u64 = 2;
/// After how many looks at the browser (three seconds) the next pair of the standby starts:
/// each start is a burst of work, kept apart from the recording's first pictures and from
/// its spare's start.
const REFILL_AFTER: u64 = 12;
/// How far the page's playout delay must move before the audio follows it: each move is a
/// jump in the sound (a hole or an overlap), and sound within 20 ms of its picture is in step.
const DELAY_STEP: Duration = Duration::from_millis(20);
/// The most playout delay believed: a page that tells more is catching up from a stall, and
/// moving its audio that far would leave a hole.
const MAX_DELAY: Duration = Duration::from_millis(250);

/// A browser on `display` showing `page`, ready to be captured, and its tab.
async fn show(page: &Page, display: &Display) -> Result<(Chromium, Tab), RecorderError> {
    let browser = Chromium::launch(page.size, Surface::On(display))
        .await
        .map_err(|e| failed("no browser")(e.to_string()))?;
    open(browser, page).await
}

/// `browser` showing `page`, ready to be captured, and its tab.
async fn open(browser: Chromium, page: &Page) -> Result<(Chromium, Tab), RecorderError> {
    let shown = async {
        let tab = browser
            .open(&page.url, page.script.as_deref())
            .await
            .map_err(|e| failed("the layout page did not open")(e.to_string()))?;
        Chromium::wait_ready(&tab, READY)
            .await
            .map_err(|e| failed("the layout page")(e.to_string()))?;
        Ok(tab)
    };
    match shown.await {
        Ok(tab) => Ok((browser, tab)),
        Err(e) => {
            browser.close().await;
            Err(e)
        }
    }
}

/// The browser that takes over if the page's dies: started ahead, with no window (nothing
/// of it is captured), so that a replacement need not wait for a browser to start.
enum Spare<'a> {
    None,
    Starting(Pin<Box<dyn Future<Output = Result<Chromium, BrowserError>> + Send + 'a>>),
    Ready(Box<Chromium>),
}

impl<'a> Spare<'a> {
    fn start(page: &Page, display: &'a Display) -> Self {
        Self::Starting(Box::pin(Chromium::launch(
            page.size,
            Surface::Waiting(display),
        )))
    }

    /// Until the starting one has started (forever if none is starting).
    async fn started(&mut self) -> Result<Chromium, BrowserError> {
        match self {
            Self::Starting(launch) => launch.await,
            _ => std::future::pending().await,
        }
    }

    /// A browser showing `page` on `display`: the spare if it runs (once started), else a
    /// new one.
    async fn take(
        &mut self,
        page: &Page,
        display: &Display,
    ) -> Result<(Chromium, Tab), RecorderError> {
        let ready = match std::mem::replace(self, Self::None) {
            Self::Ready(browser) => Some(*browser),
            Self::Starting(launch) => launch.await.ok(),
            Self::None => None,
        };
        match ready {
            Some(mut browser) => {
                if browser.running() {
                    open(browser, page).await
                } else {
                    show(page, display).await
                }
            }
            None => show(page, display).await,
        }
    }
}

/// A display and a browser on it showing `page`: the pair standing by if one is ready and
/// opens the page, else new ones.
async fn first_show(
    page: &Page,
    standby: Option<&Arc<Standby>>,
) -> Result<(Display, Chromium, Tab), RecorderError> {
    let size = page.size;
    if let Some((display, browser)) = standby.and_then(|s| s.take(size)) {
        match open(browser, page).await {
            Ok((browser, tab)) => return Ok((display, browser, tab)),
            Err(e) => {
                warn!(file = %page.name, error = %e, "the browser standing by did not show the page; another starts")
            }
        }
    }
    let display = tokio::task::spawn_blocking(move || Display::start(size))
        .await
        .map_err(|e| failed("the display did not start")(e.to_string()))?
        .map_err(|e| failed("no display")(e.to_string()))?;
    let (browser, tab) = show(page, &display).await?;
    Ok((display, browser, tab))
}

/// Records `page` (and the mix alone into `sound`, if given) into `dir` until the port's
/// stop, on the display and browser of `standby` if they are ready. A stop before the page
/// is shown ends the recording without a file; a browser that dies is replaced while the
/// capture goes on.
pub async fn record(
    page: Page,
    sound: Option<&Sound>,
    dir: &Path,
    port: Port,
    standby: Option<&Arc<Standby>>,
) -> Result<(), RecorderError> {
    let Port {
        stop,
        reports,
        feed,
        paused,
        ..
    } = port;
    let size = page.size;
    // The mixer takes the feed from now on, and mixes from the first picture.
    let (start_mix, mix_start) = tokio::sync::oneshot::channel();
    let (end_mix, mix_end) = tokio::sync::oneshot::channel();
    let (mixer, audio_late) = audio::spawn(feed, mix_start, mix_end)
        .map_err(|e| failed("cannot start the mixer")(e.to_string()))?;
    let (display, browser, mut tab) = tokio::select! {
        shown = first_show(&page, standby) => shown?,
        () = stop.cancelled() => return Ok(()),
    };
    let path = dir.join(&page.name);
    let format = VideoFormat {
        codec: page.codec,
        size,
        rate: RATE,
        bit_rate: video_bit_rate(size),
    };
    let sound_path = sound.map(|s| dir.join(&s.name));
    let files = CompositeSink::create(&path, format, true).and_then(|sink| {
        let file = sound
            .zip(sound_path.as_ref())
            .map(|(s, p)| AudioFile::create(p, s.codec, s.channels))
            .transpose()?;
        Ok((sink, file))
    });
    let (sink, file) = match files {
        Ok(files) => files,
        Err(e) => {
            browser.close().await;
            return Err(failed("cannot write the recording")(e.to_string()));
        }
    };
    let input = sink.audio_input();
    let sink_meter = sink.meter();
    let (start, wall_start) = (Instant::now(), Timestamp::now());
    let clock = Arc::new(Clock::default());
    let pauses = follow_pauses(paused, &clock, start);
    let started = reports.clone();
    let placed = Arc::clone(&clock);
    let place = move |t| placed.place(t);
    let capture = match Capture::start(&display, sink, (RATE, start, None), place, move || {
        started.started();
    }) {
        Ok(capture) => capture,
        Err(e) => {
            browser.close().await;
            return Err(failed("cannot capture the display")(e.to_string()));
        }
    };
    let delay = Arc::new(AtomicU64::new(0));
    let _ = start_mix.send(audio::Start {
        at: wall_start,
        clock: Arc::clone(&clock),
        delay: Arc::clone(&delay),
        output: Output {
            pictures: Some(input),
            file,
        },
    });
    let counters = capture.counters();
    let progress = || {
        let taken = counters.stats();
        CompositeProgress {
            captured: taken.captured,
            repeated: sink_meter.repeated(),
            dropped: taken.dropped,
            skipped: taken.skipped,
            encoder_lag_seconds: sink_meter.lag().as_secs_f64(),
            audio_late_samples: audio_late.load(Ordering::Relaxed),
        }
    };
    let (mut browser, mut restarts, mut lost) = (Some(browser), 0, None);
    let mut watch = tokio::time::interval(WATCH);
    let mut spare = Spare::None;
    for tick in 0_u64.. {
        // A look at the browser, once the watch's tick comes.
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = watch.tick() => break,
                started = spare.started() => {
                    spare = match started {
                        Ok(browser) => Spare::Ready(Box::new(browser)),
                        Err(e) => {
                            warn!(file = %page.name, error = %e, "no spare browser");
                            Spare::None
                        }
                    };
                }
            }
        }
        if stop.is_cancelled() {
            break;
        }
        reports.progress(progress());
        // The spare starts once the recording has settled, the standby's next pair later.
        if tick == SPARE_AFTER && matches!(spare, Spare::None) {
            spare = Spare::start(&page, &display);
        }
        if tick == REFILL_AFTER
            && let Some(standby) = standby
        {
            standby.refill(size);
        }
        if (tick % ASK_DELAY == 0 || tick == 1)
            && let Ok(Some(d)) = tokio::time::timeout(WATCH, Chromium::playout_delay(&tab)).await
            && d <= MAX_DELAY
        {
            let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
            let before = delay.load(Ordering::Relaxed);
            if before == 0 || us.abs_diff(before) > DELAY_STEP.as_micros() as u64 {
                delay.store(us, Ordering::Relaxed);
                info!(file = %page.name, ms = us / 1000, "the page shows pictures this long after they arrive");
            }
        }
        if browser.as_mut().is_some_and(Chromium::running) {
            continue;
        }
        // The display goes on being captured (blank) while the spare takes over.
        warn!(file = %page.name, "the browser ended; another takes over");
        if let Some(ended) = browser.take() {
            ended.kill();
        }
        restarts += 1;
        browser = tokio::select! {
            shown = spare.take(&page, &display) => match shown {
                Ok((shown, shown_tab)) => {
                    tab = shown_tab;
                    Some(shown)
                }
                Err(e) => {
                    lost = Some(e);
                    break;
                }
            },
            // A stop while the browser restarts ends the recording as any stop does.
            () = stop.cancelled() => break,
        };
        info!(file = %page.name, restarts, "the browser shows the layout again");
        spare = Spare::start(&page, &display);
    }
    drop(spare);
    // A recording shorter than that leaves the next pair to start now.
    if let Some(standby) = standby {
        standby.refill(size);
    }
    let wall = start.elapsed();
    pauses.abort();
    let length = clock.length(wall);
    let (sink, captured) = tokio::task::spawn_blocking(move || capture.stop())
        .await
        .map_err(|e| failed("the capture")(e.to_string()))?;
    // The mix up to the last picture, then the file.
    let _ = end_mix.send(length);
    // Without the mixer's counts the file is finished all the same.
    let (mixed, sound_written) = match tokio::task::spawn_blocking(move || mixer.join()).await {
        Ok(Ok((stats, written))) => (
            stats,
            written.map_err(|e| failed("the audio file")(e.to_string())),
        ),
        _ => {
            warn!("the mixer stopped before the end");
            let stopped = Err(RecorderError::Failed("the mixer stopped".into()));
            (
                audio::MixStats::default(),
                if sound.is_some() { stopped } else { Ok(()) },
            )
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
            restarts,
            "composite recorded"
        ),
        Err(e) => warn!(file = %page.name, error = %e, "the composite file failed"),
    }
    if let Some(browser) = browser {
        browser.close().await;
    }
    drop(display);
    hand_over(&reports, &path, wall_start, wall)?;
    if let Some(sound_path) = &sound_path {
        hand_over(&reports, sound_path, wall_start, wall)?;
    }
    written.map_err(|e| failed("the composite file")(e.to_string()))?;
    sound_written?;
    captured.map_err(|e| failed("the capture")(e.to_string()))?;
    lost.map_or(Ok(()), Err)
}
