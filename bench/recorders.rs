//! Recorder throughput, in-process and without a network: a replayed packet stream of N
//! participants (each a looped 720p VP8 clip at about 1.1 Mbit/s, packetized at 1,200 bytes,
//! and its Opus track) is fed, as fast as one thread takes it, to
//! - a consumer that only counts the packets (the floor: building and handing over messages),
//! - the raw recorder's writer (rtpdump + metadata; the `.tar.gz` packing is timed apart),
//! - the individual recorder's writer (reorder, depacketize, Matroska through FFmpeg).
//!
//! It prints packets per second of one thread (each consumer is CPU-bound: its CPU time,
//! shown beside, is about its wall time) and the bytes each leaves on disk.
//! Clips come from `REEL_BENCH_CLIPS` (default `~/.cache/reel-bench/clips`), made with
//! `scripts/make-clips.sh` if missing. `REEL_BENCH_PARTICIPANTS` (100) and
//! `REEL_BENCH_SECONDS` (30) size the stream. Run: `cargo bench --bench recorders`.

#[path = "cpu.rs"]
mod cpu;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpu::cpu_seconds;
use reel::domain::{
    Cid, Codec, Participant, RecordingType, SessionId, Timestamp, Track, TrackType, UserId,
};
use reel::media::clip::{self, Stream};
use reel::media::{BusMessage, Packet};
use reel::recorders::RecordingJob;
use reel::recorders::individual;
use reel::recorders::raw::{RawArchive, pack};

/// Largest RTP payload of a video packet.
const MTU_PAYLOAD: usize = 1_200;

fn main() {
    let clips = std::env::var_os("REEL_BENCH_CLIPS").map_or_else(
        || PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/reel-bench/clips"),
        PathBuf::from,
    );
    make_clips(&clips);
    let participants = env_number("REEL_BENCH_PARTICIPANTS", 100);
    let seconds = env_number("REEL_BENCH_SECONDS", 30);
    let video = clip::read_video(&clips.join("vp8.ivf"), 30).expect("the VP8 clip");
    let audio = clip::read_audio(&clips.join("opus.ogg")).expect("the Opus clip");
    let stream = replay(&video, &audio, participants, seconds as u64);
    let packets = stream
        .iter()
        .filter(|m| matches!(m, BusMessage::Packet(_)))
        .count() as f64;
    println!(
        "{participants} participants, {seconds} s: {packets} packets ({} tracks)\n",
        participants * 2
    );
    println!("| consumer | wall s | CPU s | packets/s (one thread) | on disk (MB) | packing s |");
    println!("|---|---:|---:|---:|---:|---:|");
    for kind in ["count only", "raw", "individual"] {
        let dir = tempfile::tempdir().expect("a scratch directory");
        let r = run(kind, &stream, dir.path());
        let written = du(dir.path()) as f64 / 1e6;
        let pack = r.packing.map_or("-".into(), |s| format!("{s:.2}"));
        println!(
            "| {kind} | {:.3} | {:.2} | {:.0} | {written:.1} | {pack} |",
            r.wall,
            r.cpu,
            packets / r.wall
        );
    }
}

/// One consumer's run: wall and CPU seconds of writing, wall seconds of packing (raw).
struct Run {
    wall: f64,
    cpu: f64,
    packing: Option<f64>,
}

/// Feeds `stream` to the consumer `kind` on a thread of its own.
fn run(kind: &str, stream: &[BusMessage], dir: &Path) -> Run {
    std::thread::scope(|s| {
        s.spawn(|| {
            let job = RecordingJob::detached(
                RecordingType::Individual,
                Cid::parse("default:bench").expect("a cid"),
                dir.to_owned(),
            );
            let mut ask = |_: &str| {};
            let (cpu, wall) = (cpu_seconds("thread-self"), Instant::now());
            let done = |packing| Run {
                wall: wall.elapsed().as_secs_f64(),
                cpu: cpu_seconds("thread-self") - cpu,
                packing,
            };
            match kind {
                "raw" => {
                    let root = dir.join("raw");
                    let mut archive = RawArchive::new(&job, root.clone()).expect("archive");
                    for m in stream {
                        archive.handle(m.clone(), &mut ask).expect("raw write");
                    }
                    archive.finish().expect("raw finish");
                    let mut run = done(None);
                    // As the recorder does: the archive replaces the dumps.
                    let packing = Instant::now();
                    pack(&root, &dir.join("raw.tar.gz")).expect("packing");
                    std::fs::remove_dir_all(&root).expect("removing the dumps");
                    run.packing = Some(packing.elapsed().as_secs_f64());
                    run
                }
                "individual" => {
                    let mut files = individual::files(&job).expect("files");
                    for m in stream {
                        files.handle(m, &mut ask);
                    }
                    files.close().expect("individual close");
                    done(None)
                }
                _ => {
                    let mut n = 0u64;
                    for m in stream {
                        if let BusMessage::Packet(p) = m.clone() {
                            n += p.payload.len() as u64;
                        }
                    }
                    assert!(n > 0);
                    done(None)
                }
            }
        })
        .join()
        .expect("the consumer thread")
    })
}

/// The bus messages of `participants` publishing `video` and `audio` for `seconds`, in
/// arrival order, each participant a few milliseconds after the last.
fn replay(video: &Stream, audio: &Stream, participants: usize, seconds: u64) -> Vec<BusMessage> {
    let base = Timestamp::now();
    let end = Duration::from_secs(seconds);
    // Every participant sends the same packets: build them once.
    let video_packets = packetize(video, end);
    let audio_packets: Vec<(Duration, bool, u64, Arc<[u8]>)> = frames(audio, end)
        .map(|(at, f)| (at, true, at.as_micros() as u64 * 48 / 1000, f.data.clone()))
        .collect();
    let mut timed = Vec::new();
    for n in 0..participants {
        let who = Participant {
            user_id: UserId::parse(format!("user-{n}")).expect("a user id"),
            user_session_id: SessionId::random(),
            source_id: String::new(),
            role: "user".into(),
            joined_at: base,
        };
        let skew = Duration::from_micros(n as u64 * 397);
        for (kind, packets, codec) in [
            (TrackType::Video, &video_packets, ("VP8", 90_000, 0)),
            (TrackType::Audio, &audio_packets, ("opus", 48_000, 2)),
        ] {
            let track = Arc::new(Track {
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
            });
            timed.push((Duration::ZERO, BusMessage::Track(track.clone())));
            for (seq, (at, marker, rtp_time, payload)) in packets.iter().enumerate() {
                let at = *at + skew;
                let packet = Packet {
                    track: track.clone(),
                    ssrc: 1000 + n as u32 * 2 + u32::from(kind.is_audio()),
                    seq: seq as u64,
                    rtp_time: *rtp_time,
                    timestamp: *rtp_time as u32,
                    marker: *marker,
                    payload_type: if kind.is_audio() { 111 } else { 96 },
                    payload: payload.clone(),
                    arrival: std::time::Instant::now(),
                    arrival_wall: base.after(at),
                    audio_level: None,
                    voice_activity: None,
                    // As from a sender whose reports say its clips start together.
                    sender_report: Some((base.after(skew), 0)),
                    keyframe: !kind.is_audio() && seq == 0,
                };
                timed.push((at, BusMessage::Packet(Arc::new(packet))));
            }
            timed.push((end + skew, BusMessage::Ended(track)));
        }
    }
    timed.sort_by_key(|(at, _)| *at);
    timed.into_iter().map(|(_, m)| m).collect()
}

/// The frames of `s`, looped, with their times, until `end`.
fn frames(s: &Stream, end: Duration) -> impl Iterator<Item = (Duration, &clip::Frame)> {
    let mut at = Duration::ZERO;
    (0..)
        .map(move |i| {
            let k = i % s.frames.len();
            let now = at;
            at += s.gap_after(k);
            (now, &s.frames[k])
        })
        .take_while(move |(at, _)| *at < end)
}

/// VP8 frames as RTP payloads: a one-byte descriptor (S on the first), at most
/// `MTU_PAYLOAD` bytes each, the marker on a frame's last; with time and RTP time.
fn packetize(video: &Stream, end: Duration) -> Vec<(Duration, bool, u64, Arc<[u8]>)> {
    let mut out = Vec::new();
    for (at, f) in frames(video, end) {
        let chunks: Vec<&[u8]> = f.data.chunks(MTU_PAYLOAD).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let mut payload = vec![if i == 0 { 0x10 } else { 0x00 }];
            payload.extend_from_slice(chunk);
            let rtp_time = at.as_micros() as u64 * 90 / 1000;
            out.push((at, i + 1 == chunks.len(), rtp_time, payload.into()));
        }
    }
    out
}

/// Bytes of the files under `dir`.
fn du(dir: &Path) -> u64 {
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

fn make_clips(dir: &Path) {
    if dir.join("vp8.ivf").exists() && dir.join("opus.ogg").exists() {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/make-clips.sh");
    let status = std::process::Command::new(script)
        .arg(dir)
        .status()
        .expect("scripts/make-clips.sh runs");
    assert!(status.success(), "making clips failed");
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
