//! The composite's audio: every participant's microphone and screen audio from the bus,
//! decoded and mixed natively (never captured from the browser), placed by the wall clock of
//! its arrival on the recording's clock, whose sample 0 is the first picture's frame 0 (or,
//! for a recording of audio alone, its start).
//!
//! The mix is handed to the encoder [`LATENCY`] behind real time, so that packets reordered
//! or retransmitted in that time still reach their place; what comes later is left out and
//! counted.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;
use tracing::warn;

use super::clock::Clock;
use crate::bus::{BusMessage, Packet, Subscription};
use crate::domain::Timestamp;
use crate::mux::{AudioFile, AudioInput, Concealer, LiveMix, MixedAudio, MuxError};
use crate::rtp::{MediaCodec, TimedFrame, Timeline};

/// How far behind real time the mix is handed on.
const LATENCY: Duration = Duration::from_millis(400);
/// How often mixed audio is handed on.
const TICK: Duration = Duration::from_millis(50);
/// The mix: stereo, in frames of 1024 samples (its outputs regroup them as they need).
const MIX: (usize, usize) = (2, 1024);

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
    /// Where times since then go in the file (pauses cut).
    pub clock: Arc<Clock>,
    /// How much later than its arrival the audio is placed, in µs: the time the page takes
    /// to show a picture that arrived with it.
    pub delay: Arc<AtomicU64>,
    /// Where the mix goes.
    pub output: Output,
}

/// Where a mix goes: the composite's video file, a file of its own (written by the mixer),
/// or both.
#[derive(Default)]
pub struct Output {
    /// The video file's sound.
    pub pictures: Option<AudioInput>,
    /// The file of the mix alone.
    pub file: Option<AudioFile>,
}

impl Output {
    /// Hands `audio` on (`failed` keeps why the file could not take it); false once nothing
    /// takes more.
    fn push(&mut self, audio: Vec<MixedAudio>, failed: &mut Option<MuxError>) -> bool {
        let file_takes = match &mut self.file {
            Some(file) if failed.is_none() => match file.write(&audio) {
                Ok(()) => true,
                Err(e) => {
                    *failed = Some(e);
                    false
                }
            },
            _ => false,
        };
        let pictures_take = self.pictures.as_ref().is_some_and(|p| p.push(audio));
        file_takes || pictures_take
    }
}

/// Takes what `feed` delivers from now on, on a thread of its own (the recording's queue
/// never fills while its browser starts), and mixes it into the output once `start` comes,
/// until `end` brings the recording's length. An audio file is finished whatever happens,
/// with what was written; the thread gives why writing it failed, if it did.
///
/// Also gives the count of samples so far that came too late for their place.
pub fn spawn(
    feed: Subscription,
    start: oneshot::Receiver<Start>,
    end: oneshot::Receiver<Duration>,
) -> std::io::Result<(Mixer, Arc<AtomicU64>)> {
    let runtime = tokio::runtime::Handle::current();
    let late = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&late);
    let thread = std::thread::Builder::new()
        .name("reel-mixer".into())
        .spawn(move || {
            let mut mixer = Tracks {
                late: counted,
                ..Tracks::default()
            };
            let output = runtime.block_on(mixer.run(feed, start, end));
            let stats = mixer.stats();
            let written = match output {
                Some((output, failed)) => {
                    let finished = output.file.map_or(Ok(()), AudioFile::finish);
                    failed.map_or(finished, Err)
                }
                None => Ok(()),
            };
            (stats, written)
        })?;
    Ok((thread, late))
}

/// The mixer's thread: what it mixed, and whether its audio file was written.
pub type Mixer = JoinHandle<(MixStats, Result<(), MuxError>)>;

/// The tracks being mixed.
#[derive(Default)]
struct Tracks {
    /// The mix, once the clock started.
    mixing: Option<Mixing>,
    tracks: HashMap<String, Voice>,
    frames: Vec<TimedFrame>,
    /// Samples so far that came too late, for whoever watches.
    late: Arc<AtomicU64>,
}

/// A track's frames on their way to the mix.
struct Voice {
    timeline: Timeline<Arc<[u8]>>,
    concealer: Concealer,
}

/// A mix whose clock started.
struct Mixing {
    /// The wall clock of sample 0, in µs.
    start_us: i64,
    clock: Arc<Clock>,
    delay: Arc<AtomicU64>,
    mix: LiveMix,
}

impl Tracks {
    /// Follows `feed` until `start`, then mixes into its output until `end`; the output, and
    /// why it failed if it did, unless the clock never started.
    async fn run(
        &mut self,
        feed: Subscription,
        start: oneshot::Receiver<Start>,
        end: oneshot::Receiver<Duration>,
    ) -> Option<(Output, Option<MuxError>)> {
        // Until the clock starts, tracks are followed and their frames let go.
        tokio::pin!(start);
        let Start {
            at,
            clock,
            delay,
            mut output,
        } = loop {
            tokio::select! {
                started = &mut start => match started {
                    Ok(s) => break s,
                    Err(_) => return None,
                },
                m = feed.recv() => self.receive(m),
            }
        };
        self.mixing = Some(Mixing {
            start_us: at.unix_nanos() / 1000,
            clock: Arc::clone(&clock),
            delay,
            mix: LiveMix::new(MIX),
        });
        let mut failed = None;
        let mut ticks = tokio::time::interval(TICK);
        tokio::pin!(end);
        // What arrived is taken in at each tick, not as it arrives: the thread wakes 20 times
        // a second, not at every packet of every voice.
        let length = loop {
            tokio::select! {
                biased;
                length = &mut end => break length.ok(),
                _ = ticks.tick() => {
                    while let Some(m) = feed.try_recv() {
                        self.receive(m);
                    }
                    let now = clock.length(Timestamp::now().since(at).saturating_sub(LATENCY));
                    if !output.push(self.take(now, false), &mut failed) {
                        break None;
                    }
                }
            }
        };
        // What was received before the end is mixed too.
        while let Some(m) = feed.try_recv() {
            self.receive(m);
        }
        if let Some(length) = length {
            self.finish();
            output.push(self.take(length, true), &mut failed);
        }
        Some((output, failed))
    }

    fn receive(&mut self, m: BusMessage) {
        match m {
            BusMessage::Track(t) => {
                if MediaCodec::from_name(&t.codec.name) == Some(MediaCodec::Opus) {
                    let voice = Voice {
                        timeline: Timeline::new(MediaCodec::Opus),
                        concealer: Concealer::default(),
                    };
                    self.tracks.insert(t.track_id.clone(), voice);
                }
            }
            BusMessage::Packet(p) => self.packet(&p),
            BusMessage::Ended(t) => {
                if let Some(mut voice) = self.tracks.remove(&t.track_id) {
                    voice.timeline.finish(&mut self.frames);
                    voice.concealer.conceal(&mut self.frames);
                    self.mix_frames(&t.track_id);
                }
                if let Some(m) = &mut self.mixing {
                    m.mix.remove(&t.track_id);
                }
            }
        }
    }

    fn packet(&mut self, p: &Packet) {
        let Some(voice) = self.tracks.get_mut(&p.track.track_id) else {
            return;
        };
        voice.timeline.push(p.timed(), &mut self.frames);
        voice.concealer.conceal(&mut self.frames);
        self.mix_frames(&p.track.track_id);
    }

    /// Adds the frames a track's timeline gave.
    fn mix_frames(&mut self, track: &str) {
        let rate = i64::from(LiveMix::RATE);
        let Some(m) = &mut self.mixing else {
            self.frames.clear();
            return;
        };
        for f in self.frames.drain(..) {
            // Audio from before the first picture is not in the recording; nor is what came
            // while it was paused. It plays as late as the page shows its pictures.
            let delay = i64::try_from(m.delay.load(Ordering::Relaxed)).unwrap_or(0);
            let since = f.pts_us + delay - m.start_us;
            if since + f.duration_us <= 0 {
                continue;
            }
            let at_us = match u64::try_from(since) {
                Ok(us) => match m.clock.place(Duration::from_micros(us)) {
                    Some(at) => i64::try_from(at.as_micros()).unwrap_or(i64::MAX),
                    None => continue,
                },
                // Its end is in the recording: it is placed, and what came before is cut.
                Err(_) => since,
            };
            let at = at_us * rate / 1_000_000;
            if let Err(e) = m.mix.add(track, at, &f.data) {
                warn!(error = %e, track, "a track left out of the mix");
            }
        }
    }

    /// Ends every track: what their timelines hold is mixed.
    fn finish(&mut self) {
        let ids: Vec<String> = self.tracks.keys().cloned().collect();
        for id in ids {
            if let Some(mut voice) = self.tracks.remove(&id) {
                voice.timeline.finish(&mut self.frames);
                voice.concealer.conceal(&mut self.frames);
                self.mix_frames(&id);
            }
        }
    }

    /// The mix up to `until` on the recording's clock (the last frame shorter if `last`).
    fn take(&mut self, until: Duration, last: bool) -> Vec<MixedAudio> {
        let sample = (until.as_secs_f64() * f64::from(LiveMix::RATE)) as i64;
        let Some(m) = self.mixing.as_mut() else {
            return Vec::new();
        };
        self.late.store(m.mix.late(), Ordering::Relaxed);
        m.mix.take(sample, last)
    }

    fn stats(&self) -> MixStats {
        self.mixing
            .as_ref()
            .map(|m| MixStats {
                late: m.mix.late(),
                clipped: m.mix.clipped(),
            })
            .unwrap_or_default()
    }
}
