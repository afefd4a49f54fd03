//! The composite's audio: every participant's microphone and screen audio from the bus,
//! decoded and mixed natively (never captured from the browser), placed by the wall clock of
//! its arrival on the recording's clock, whose sample 0 is the first picture's frame 0.
//!
//! The mix is handed to the encoder [`LATENCY`] behind real time, so that packets reordered
//! or retransmitted in that time still reach their place; what comes later is left out and
//! counted.

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;
use tracing::warn;

use crate::bus::{BusMessage, Packet, Subscription};
use crate::domain::Timestamp;
use crate::mux::{AudioInput, LiveMix};
use crate::rtp::{MediaCodec, TimedFrame, Timeline};

/// How far behind real time the mix is handed on.
const LATENCY: Duration = Duration::from_millis(400);
/// How often mixed audio is handed on.
const TICK: Duration = Duration::from_millis(50);

/// What the mixing did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MixStats {
    /// Samples (per channel) that came too late for their place, and were left out.
    pub late: u64,
    /// Samples clipped at full scale.
    pub clipped: u64,
}

/// Where the mix goes, once the recording's clock starts.
pub struct Start {
    /// The wall clock of sample 0 (the first picture's frame 0).
    pub at: Timestamp,
    /// The file's audio.
    pub input: AudioInput,
}

/// Takes what `feed` delivers from now on, on a thread of its own (the recording's queue
/// never fills while its browser starts), and mixes it into the file once `start` comes,
/// until `end` brings the recording's length.
pub fn spawn(
    feed: Subscription,
    start: oneshot::Receiver<Start>,
    end: oneshot::Receiver<Duration>,
) -> std::io::Result<JoinHandle<MixStats>> {
    let runtime = tokio::runtime::Handle::current();
    std::thread::Builder::new()
        .name("reel-mixer".into())
        .spawn(move || {
            let mut mixer = Mixer::default();
            runtime.block_on(async {
                // Until the clock starts, tracks are followed and their frames let go.
                tokio::pin!(start);
                let Start { at, input } = loop {
                    tokio::select! {
                        started = &mut start => match started {
                            Ok(s) => break s,
                            Err(_) => return,
                        },
                        m = feed.recv() => mixer.receive(m),
                    }
                };
                mixer.start(at);
                let mut ticks = tokio::time::interval(TICK);
                tokio::pin!(end);
                let length = loop {
                    tokio::select! {
                        biased;
                        length = &mut end => break length.ok(),
                        _ = ticks.tick() => {
                            let now = Timestamp::now().since(at).saturating_sub(LATENCY);
                            if !input.push(mixer.take(now, false)) {
                                break None;
                            }
                        }
                        m = feed.recv() => mixer.receive(m),
                    }
                };
                // What was received before the end is mixed too.
                while let Some(m) = feed.try_recv() {
                    mixer.receive(m);
                }
                if let Some(length) = length {
                    mixer.finish();
                    input.push(mixer.take(length, true));
                }
            });
            mixer.stats()
        })
}

/// The tracks being mixed.
#[derive(Default)]
struct Mixer {
    /// The wall clock of sample 0 (µs), once known.
    start_us: Option<i64>,
    tracks: HashMap<String, Timeline<Arc<[u8]>>>,
    mix: LiveMix,
    frames: Vec<TimedFrame>,
}

impl Mixer {
    fn start(&mut self, at: Timestamp) {
        self.start_us = Some(at.unix_nanos() / 1000);
    }

    fn receive(&mut self, m: BusMessage) {
        match m {
            BusMessage::Track(t) => {
                if MediaCodec::from_name(&t.codec.name) == Some(MediaCodec::Opus) {
                    self.tracks
                        .insert(t.track_id.clone(), Timeline::new(MediaCodec::Opus));
                }
            }
            BusMessage::Packet(p) => self.packet(&p),
            BusMessage::Ended(t) => {
                if let Some(mut timeline) = self.tracks.remove(&t.track_id) {
                    timeline.finish(&mut self.frames);
                    self.mix_frames(&t.track_id);
                }
                self.mix.remove(&t.track_id);
            }
        }
    }

    fn packet(&mut self, p: &Packet) {
        let Some(timeline) = self.tracks.get_mut(&p.track.track_id) else {
            return;
        };
        timeline.push(p.timed(), &mut self.frames);
        self.mix_frames(&p.track.track_id);
    }

    /// Adds the frames a track's timeline gave.
    fn mix_frames(&mut self, track: &str) {
        let rate = i64::from(LiveMix::RATE);
        let Some(start_us) = self.start_us else {
            self.frames.clear();
            return;
        };
        for f in self.frames.drain(..) {
            // Audio from before the first picture is not in the recording.
            if f.pts_us + f.duration_us <= start_us {
                continue;
            }
            let at = (f.pts_us - start_us) * rate / 1_000_000;
            if let Err(e) = self.mix.add(track, at, &f.data) {
                warn!(error = %e, track, "a track left out of the mix");
            }
        }
    }

    /// Ends every track: what their timelines hold is mixed.
    fn finish(&mut self) {
        let ids: Vec<String> = self.tracks.keys().cloned().collect();
        for id in ids {
            if let Some(mut timeline) = self.tracks.remove(&id) {
                timeline.finish(&mut self.frames);
                self.mix_frames(&id);
            }
        }
    }

    /// The mix up to `until` on the recording's clock (the last frame shorter if `last`).
    fn take(&mut self, until: Duration, last: bool) -> Vec<crate::mux::MixedAudio> {
        let sample = (until.as_secs_f64() * f64::from(LiveMix::RATE)) as i64;
        self.mix.take(sample, last)
    }

    fn stats(&self) -> MixStats {
        MixStats {
            late: self.mix.late(),
            clipped: self.mix.clipped(),
        }
    }
}
