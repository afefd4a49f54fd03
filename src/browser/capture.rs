//! A display's screen into a [`CompositeSink`] at a steady rate, on a thread of its own.
//!
//! Frame `n` is captured at `start + n / rate`, and goes where its owner places that time in
//! the file (nowhere while a recording is paused). A capture that falls behind (the machine
//! was busy) skips to the frame of the moment it grabs, and the sink shows the picture before
//! in the frames it skipped: the file's clock never waits for a late picture.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{BrowserError, Display};
use crate::mux::{CompositeSink, MuxError, Screen};

/// What a capture has done so far.
#[derive(Debug, Default)]
pub struct Counters {
    /// Pictures grabbed and queued for the encoder.
    pub captured: AtomicU64,
    /// Frames skipped because the capture was late for them.
    pub skipped: AtomicU64,
    /// Pictures dropped because the encoder was a second behind.
    pub dropped: AtomicU64,
}

/// What a capture did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Pictures grabbed and queued for the encoder.
    pub captured: u64,
    /// Frames skipped because the capture was late for them.
    pub skipped: u64,
    /// Pictures dropped because the encoder was a second behind.
    pub dropped: u64,
}

impl Counters {
    /// The counts now.
    pub fn stats(&self) -> CaptureStats {
        CaptureStats {
            captured: self.captured.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}

/// A capture running on its thread.
pub struct Capture {
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    /// Taken by [`Capture::stop`].
    thread: Option<JoinHandle<(CompositeSink, Result<(), MuxError>)>>,
}

impl Capture {
    /// Captures `display` into `sink`, `rate` pictures a second from `start` (until `until`
    /// from it, if given); the picture of time `t` since `start` goes to the file at
    /// `place(t)`, if anywhere. `first` runs once the first picture is queued.
    pub fn start(
        display: &Display,
        sink: CompositeSink,
        (rate, start, until): (u32, Instant, Option<Duration>),
        place: impl Fn(Duration) -> Option<Duration> + Send + 'static,
        first: impl FnOnce() + Send + 'static,
    ) -> Result<Self, BrowserError> {
        let (name, size) = (display.name(), display.size());
        let (opened, open) = std::sync::mpsc::sync_channel(1);
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let (stopped, counted) = (Arc::clone(&stop), Arc::clone(&counters));
        let thread = std::thread::Builder::new()
            .name("reel-capture".into())
            .spawn(move || {
                // FFmpeg's grabber stays on the thread that opened it.
                let mut screen = match Screen::open(&name, size) {
                    Ok(s) => {
                        let _ = opened.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let _ = opened.send(Err(e));
                        return (sink, Ok(()));
                    }
                };
                let mut first = Some(first);
                let period = Duration::from_secs(1) / rate.max(1);
                // The frames of `until`, however late this thread wakes for them.
                let last = until.map_or(u32::MAX, |u| {
                    u32::try_from(u.as_nanos() / period.as_nanos().max(1)).unwrap_or(u32::MAX)
                });
                let mut frame: u32 = 0;
                while frame < last {
                    // A stop wakes the thread: no picture is taken after it.
                    let due = start + period * frame;
                    while let Some(wait) = due.checked_duration_since(Instant::now())
                        && !stopped.load(Ordering::Relaxed)
                    {
                        std::thread::park_timeout(wait);
                    }
                    if stopped.load(Ordering::Relaxed) {
                        break;
                    }
                    let now = start.elapsed().as_nanos() / period.as_nanos().max(1);
                    let now = u32::try_from(now).unwrap_or(u32::MAX);
                    if now > frame {
                        // Late past the end: nothing more to take.
                        let now = now.min(last);
                        counted
                            .skipped
                            .fetch_add(u64::from(now - frame), Ordering::Relaxed);
                        frame = now;
                        if frame >= last {
                            break;
                        }
                    }
                    let Some(at) = place(period * frame) else {
                        frame += 1;
                        continue;
                    };
                    let picture = match screen.grab() {
                        Ok(p) => p,
                        // What the sink holds stays: its owner finishes it.
                        Err(e) => return (sink, Err(e)),
                    };
                    let in_file = (at.as_secs_f64() * f64::from(rate.max(1))).round() as i64;
                    if sink.push(picture, in_file) {
                        counted.captured.fetch_add(1, Ordering::Relaxed);
                        if let Some(first) = first.take() {
                            first();
                        }
                    } else {
                        counted.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    frame += 1;
                }
                (sink, Ok(()))
            })
            .map_err(|e| BrowserError::Page(format!("cannot start a capture thread: {e}")))?;
        match open.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(BrowserError::Page(e.to_string())),
            Err(_) => return Err(BrowserError::Page("the capture thread ended".into())),
        }
        Ok(Self {
            stop,
            counters,
            thread: Some(thread),
        })
    }

    /// Its counts, live.
    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    /// Stops capturing: the sink, to be finished, and whether capturing failed.
    pub fn stop(mut self) -> (CompositeSink, Result<(), MuxError>) {
        self.signal();
        self.thread
            .take()
            .expect("stopped once")
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    fn signal(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = &self.thread {
            t.thread().unpark();
        }
    }
}

/// A capture dropped without a stop (its recording was abandoned) stops too; its sink then
/// finishes the file by itself.
impl Drop for Capture {
    fn drop(&mut self) {
        self.signal();
    }
}
