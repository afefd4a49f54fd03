//! A replayed call, shared by the benchmarks: N participants each publishing a looped VP8
//! clip (packetized at 1,200 bytes) and its Opus track, as the bus carries them, generated
//! in arrival order a second at a time so that an hour-long call takes little memory.
//! Everyone talks all the time, or (`with_turns`) one at a time, the others silent with Opus
//! DTX as browsers send it: one TOC-only packet every 400 ms.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reel::bus::{BusMessage, Packet};
use reel::domain::{Codec, Participant, SessionId, Timestamp, Track, TrackType, UserId};
use reel::media::clip::{self, Stream};

/// Largest RTP payload of a video packet.
const MTU_PAYLOAD: usize = 1_200;

/// One loop of a clip as RTP payloads: offset in the loop, marker, payload.
struct Loop {
    packets: Vec<(Duration, bool, Arc<[u8]>)>,
    length: Duration,
    ticks_per_second: u64,
}

impl Loop {
    /// VP8 frames: a one-byte descriptor (S on the first), at most `MTU_PAYLOAD` bytes each,
    /// the marker on a frame's last.
    fn video(video: &Stream) -> Self {
        let mut packets = Vec::new();
        for f in &video.frames {
            let chunks: Vec<&[u8]> = f.data.chunks(MTU_PAYLOAD).collect();
            for (i, chunk) in chunks.iter().enumerate() {
                let mut payload = vec![if i == 0 { 0x10 } else { 0x00 }];
                payload.extend_from_slice(chunk);
                packets.push((f.at, i + 1 == chunks.len(), payload.into()));
            }
        }
        Self {
            packets,
            length: video.length,
            ticks_per_second: 90_000,
        }
    }

    fn audio(audio: &Stream) -> Self {
        Self {
            packets: audio
                .frames
                .iter()
                .map(|f| (f.at, true, f.data.clone()))
                .collect(),
            length: audio.length,
            ticks_per_second: 48_000,
        }
    }
}

/// A track being replayed and where it is.
struct Cursor {
    track: Arc<Track>,
    ssrc: u32,
    skew: Duration,
    packets: Arc<Loop>,
    /// Packets of the loop played so far, sent or not.
    sent: u64,
    /// The next sequence number.
    seq: u64,
    /// Audio: which turn is this participant's, of how many.
    turn: Option<(u64, u64)>,
    ended: bool,
}

impl Cursor {
    /// The next packet's arrival (after the call's start) and bus message.
    fn next_at(&self) -> Duration {
        let n = self.packets.packets.len() as u64;
        let (offset, _, _) = &self.packets.packets[(self.sent % n) as usize];
        self.packets.length * (self.sent / n) as u32 + *offset + self.skew
    }
}

/// The bus messages of a replayed call, in arrival order.
pub struct Replay {
    base: Timestamp,
    end: Duration,
    cursors: Vec<Cursor>,
    window: std::vec::IntoIter<BusMessage>,
    /// The start of the next window to generate.
    next_window: Duration,
    /// How long each participant talks in turn (`None`: everyone all the time).
    turns: Option<Duration>,
}

impl Replay {
    /// `participants` publishing `video` and `audio` for `seconds`, each a few
    /// milliseconds after the last.
    pub fn new(video: &Stream, audio: &Stream, participants: usize, seconds: u64) -> Self {
        let base = Timestamp::now();
        let (video, audio) = (Arc::new(Loop::video(video)), Arc::new(Loop::audio(audio)));
        let mut cursors = Vec::new();
        for n in 0..participants {
            let who = Participant {
                user_id: UserId::parse(format!("user-{n}")).expect("a user id"),
                user_session_id: SessionId::random(),
                source_id: String::new(),
                role: "user".into(),
                joined_at: base,
            };
            for (kind, packets, codec) in [
                (TrackType::Video, &video, ("VP8", 90_000, 0)),
                (TrackType::Audio, &audio, ("opus", 48_000, 2)),
            ] {
                cursors.push(Cursor {
                    track: Arc::new(Track {
                        track_id: format!("t{n}-{kind}"),
                        track_type: kind,
                        codec: Codec {
                            name: codec.0.into(),
                            clock_rate: codec.1,
                            channels: codec.2,
                            fmtp: String::new(),
                        },
                        participant: who.clone(),
                        published_at: base,
                    }),
                    ssrc: 1000 + n as u32 * 2 + u32::from(kind.is_audio()),
                    skew: Duration::from_micros(n as u64 * 397),
                    packets: packets.clone(),
                    sent: 0,
                    seq: 0,
                    turn: kind.is_audio().then_some((n as u64, participants as u64)),
                    ended: false,
                });
            }
        }
        let window = cursors
            .iter()
            .map(|c| BusMessage::Track(c.track.clone()))
            .collect::<Vec<_>>()
            .into_iter();
        Self {
            base,
            end: Duration::from_secs(seconds),
            cursors,
            window,
            next_window: Duration::ZERO,
            turns: None,
        }
    }

    /// Participants talk one at a time for `turn` each, silent (DTX) otherwise.
    pub fn with_turns(mut self, turn: Duration) -> Self {
        self.turns = Some(turn);
        self
    }

    /// The next second's messages, sorted by arrival; false once the call is over.
    fn fill(&mut self) -> bool {
        if self.cursors.iter().all(|c| c.ended) {
            return false;
        }
        let until = self.next_window + Duration::from_secs(1);
        self.next_window = until;
        let mut timed = Vec::new();
        for c in &mut self.cursors {
            while !c.ended && c.next_at() < until {
                let at = c.next_at();
                if at >= self.end + c.skew {
                    timed.push((at, BusMessage::Ended(c.track.clone())));
                    c.ended = true;
                    break;
                }
                let n = c.packets.packets.len() as u64;
                let (_, marker, payload) = &c.packets.packets[(c.sent % n) as usize];
                let since = at - c.skew;
                let silent = match (self.turns, c.turn) {
                    (Some(turn), Some((mine, of))) => {
                        (since.as_millis() / turn.as_millis().max(1)) as u64 % of != mine
                    }
                    _ => false,
                };
                // Silent: a TOC-only packet every 400 ms (20 packets), nothing between.
                if silent && c.sent % 20 != 0 {
                    c.sent += 1;
                    continue;
                }
                let payload: Arc<[u8]> = if silent {
                    payload[..1].into()
                } else {
                    payload.clone()
                };
                let rtp_time = since.as_micros() as u64 * c.packets.ticks_per_second / 1_000_000;
                let audio = c.track.track_type.is_audio();
                let packet = Packet {
                    track: c.track.clone(),
                    ssrc: c.ssrc,
                    seq: c.seq,
                    rtp_time,
                    timestamp: rtp_time as u32,
                    marker: *marker,
                    payload_type: if audio { 111 } else { 96 },
                    payload,
                    arrival: std::time::Instant::now(),
                    arrival_wall: self.base.after(at),
                    audio_level: None,
                    voice_activity: None,
                    // As from a sender whose reports say its clips start together.
                    sender_report: Some((self.base.after(c.skew), 0)),
                    keyframe: !audio && c.sent == 0,
                };
                timed.push((at, BusMessage::Packet(Arc::new(packet))));
                c.sent += 1;
                c.seq += 1;
            }
        }
        timed.sort_by_key(|(at, _)| *at);
        self.window = timed
            .into_iter()
            .map(|(_, m)| m)
            .collect::<Vec<_>>()
            .into_iter();
        true
    }
}

impl Iterator for Replay {
    type Item = BusMessage;

    fn next(&mut self) -> Option<BusMessage> {
        loop {
            if let Some(m) = self.window.next() {
                return Some(m);
            }
            if !self.fill() {
                return None;
            }
        }
    }
}

/// The looped clips: `vp8.ivf` and `opus.ogg` of `dir`, made with `scripts/make-clips.sh`
/// (with its `extra` arguments: size, seconds, bitrate) if missing.
pub fn clips(dir: &Path, extra: &[&str]) -> (Stream, Stream) {
    if !(dir.join("vp8.ivf").exists() && dir.join("opus.ogg").exists()) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/make-clips.sh");
        let status = std::process::Command::new(script)
            .arg(dir)
            .args(extra)
            .status()
            .expect("scripts/make-clips.sh runs");
        assert!(status.success(), "making clips failed");
    }
    let video = clip::read_video(&dir.join("vp8.ivf"), 30).expect("the VP8 clip");
    let audio = clip::read_audio(&dir.join("opus.ogg")).expect("the Opus clip");
    (video, audio)
}

/// Bytes of the files under `dir`.
pub fn du(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                du(&p)
            } else {
                e.metadata().map_or(0, |m| m.len())
            }
        })
        .sum()
}

/// The number in the environment variable `name`, or `default`.
pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
