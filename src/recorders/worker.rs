//! The native recorders' loop, on a thread of its own: take what the bus queued, every
//! [`DRAIN`], write it, tick, and at the stop take what is still queued and finish.
//!
//! Writing (files, FFmpeg) blocks, so it never runs on the runtime's threads: the loop is a
//! future driven by a dedicated thread, which waits for the feed and the timers through the
//! runtime like any task but does its writing alone. A recorder that falls behind catches up
//! from its bus queue, which is bounded by time (see [`super::BACKLOG`]).

use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::{FinishedFile, Port, RecorderError, Reporter};
use crate::bus::{BusMessage, Subscription};

/// What a writer may do besides writing.
pub(super) struct Outlet<'a> {
    feed: &'a Subscription,
    reports: &'a Reporter,
}

impl Outlet<'_> {
    /// Asks the publisher of `track_id` for a key frame.
    pub fn ask_keyframe(&self, track_id: &str) {
        self.feed.request_keyframe(track_id);
    }

    /// Hands a finished file over for upload.
    pub fn hand_over(&self, f: FinishedFile) {
        self.reports.file_finished(f);
    }

    /// Asks for a recording of what follows this one.
    pub fn goes_on(&self) {
        self.reports.goes_on();
    }
}

/// A recorder's writing side.
pub(super) trait Writing: Send + 'static {
    /// Takes what the bus delivered.
    fn take(&mut self, m: BusMessage, out: &Outlet) -> Result<(), RecorderError>;
    /// Runs at the first wake-up (every [`DRAIN`]) once [`Writing::TICK`] has passed since
    /// the last run (flushing, opening files that waited long enough).
    fn tick(&mut self, out: &Outlet) -> Result<(), RecorderError>;
    /// Closes every file and hands each over, also when writing failed: what a file holds
    /// stays playable.
    fn finish(self, out: &Outlet) -> Result<(), RecorderError>;
    /// The least time between two runs of [`Writing::tick`].
    const TICK: Duration;
    /// Whether the recording ended by itself (then it finishes without waiting for the stop).
    fn done(&self) -> bool {
        false
    }
}

/// How often the thread wakes to take what the bus queued for it. Waking at every packet
/// cost a context switch each, more than writing the packet: 100 broadcasts woke their
/// threads 17,000 times a second, and reel took 0.81 cores for them (0.52 with a wake-up
/// every 50 ms, 0.44 every 100 ms).
const DRAIN: Duration = Duration::from_millis(100);

/// Writes what `feed` holds now, until writing fails or is done.
fn take_queued<W: Writing>(
    feed: &Subscription,
    writing: &mut W,
    out: &Outlet,
) -> Result<(), RecorderError> {
    while !writing.done()
        && let Some(m) = feed.try_recv()
    {
        writing.take(m, out)?;
    }
    Ok(())
}

/// Records the port's feed into `writing` on a thread named `name` until the port's stop
/// fires (then what is queued is written too) or the writing is done by itself. If this future is dropped before the end (the
/// recorder was aborted, as a crash would end it), the thread stops without finishing.
pub(super) async fn record<W: Writing>(
    port: Port,
    mut writing: W,
    name: &str,
) -> Result<(), RecorderError> {
    let Port {
        feed,
        stop,
        reports,
        ..
    } = port;
    let abandoned = CancellationToken::new();
    let _abandon_on_drop = abandoned.clone().drop_guard();
    let runtime = tokio::runtime::Handle::current();
    let (done, outcome) = oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let result = runtime.block_on(async {
                let out = Outlet {
                    feed: &feed,
                    reports: &reports,
                };
                reports.started();
                // The writing's ticks come at the wake-ups that take the queue: one timer.
                let mut wakes = tokio::time::interval(DRAIN);
                wakes.set_missed_tick_behavior(MissedTickBehavior::Delay);
                let mut ticked = Instant::now();
                let mut failure = None;
                loop {
                    tokio::select! {
                        biased;
                        () = abandoned.cancelled() => return None,
                        () = stop.cancelled() => break,
                        _ = wakes.tick() => {
                            failure = take_queued(&feed, &mut writing, &out).err();
                            if failure.is_none() && ticked.elapsed() >= W::TICK {
                                ticked = Instant::now();
                                failure = writing.tick(&out).err();
                            }
                        }
                    }
                    if failure.is_some() || writing.done() {
                        break;
                    }
                }
                // Everything received before the stop is written.
                if failure.is_none() {
                    failure = take_queued(&feed, &mut writing, &out).err();
                }
                let finished = writing.finish(&out);
                Some(failure.map_or(finished, Err))
            });
            if let Some(result) = result {
                let _ = done.send(result);
            }
        })
        .map_err(|e| RecorderError::Failed(format!("cannot start a recorder thread: {e}")))?;
    outcome.await.unwrap_or_else(|_| {
        Err(RecorderError::Failed(
            "the recorder's thread ended without finishing".into(),
        ))
    })
}
