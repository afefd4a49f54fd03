//! Recorder throughput, in-process and without a network: a replayed packet stream of N
//! participants (each a looped 720p VP8 clip at about 1.1 Mbit/s, packetized at 1,200 bytes,
//! and its Opus track) is fed, as fast as one thread takes it, to
//! - a consumer that only counts the packets (the floor: building and handing over messages),
//! - the raw recorder's writer (rtpdump + metadata; the `.tar.gz` packing is timed apart),
//! - the individual recorder's writer (reorder, depacketize, Matroska through FFmpeg);
//! - each of those two recorders whole, through its port: the stream published on a bus, the
//!   recorder's queue and its writing thread, from the first packet published to the last
//!   file handed over (the raw archive packed too).
//!
//! It prints packets per second (the writers alone run on one thread, CPU-bound: their CPU
//! time, shown beside, is about their wall time; through the port, the CPU time is the whole
//! process's) and the bytes each leaves on disk.
//! Clips come from `REEL_BENCH_CLIPS` (default `~/.cache/reel-bench/clips`), made with
//! `scripts/make-clips.sh` if missing. `REEL_BENCH_PARTICIPANTS` (100) and
//! `REEL_BENCH_SECONDS` (30) size the stream. Run: `cargo bench --bench recorders`.

#[path = "cpu.rs"]
mod cpu;
// Shared with the rawtools benchmark, which alone uses its turn-taking.
#[allow(dead_code)]
#[path = "replay.rs"]
mod replay;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use cpu::cpu_seconds;
use reel::bus::{Bus, BusMessage};
use reel::domain::{Cid, RecordingType};
use reel::recorders::raw::{RawArchive, RawFactory, pack};
use reel::recorders::{BACKLOG, Port, RecorderFactory, RecordingJob, Report, Reporter, individual};
use replay::{Replay, du, env_number};
use tokio_util::sync::CancellationToken;

fn main() {
    let clips = std::env::var_os("REEL_BENCH_CLIPS").map_or_else(
        || PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/reel-bench/clips"),
        PathBuf::from,
    );
    let (video, audio) = replay::clips(&clips, &[]);
    let participants = env_number("REEL_BENCH_PARTICIPANTS", 100);
    let seconds = env_number("REEL_BENCH_SECONDS", 30);
    let stream: Vec<BusMessage> =
        Replay::new(&video, &audio, participants, seconds as u64).collect();
    let packets = stream
        .iter()
        .filter(|m| matches!(m, BusMessage::Packet(_)))
        .count() as f64;
    println!(
        "{participants} participants, {seconds} s: {packets} packets ({} tracks)\n",
        participants * 2
    );
    println!("| consumer | wall s | CPU s | packets/s | on disk (MB) | packing s |");
    println!("|---|---:|---:|---:|---:|---:|");
    for kind in [
        "count only",
        "raw",
        "individual",
        "raw, through the port",
        "individual, through the port",
    ] {
        let dir = tempfile::tempdir().expect("a scratch directory");
        let r = match kind.strip_suffix(", through the port") {
            Some(recorder) => through_the_port(recorder, &stream, dir.path()),
            None => run(kind, &stream, dir.path()),
        };
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

/// Publishes `stream` on a bus, recorded by the `kind` recorder through its port, as fast as
/// the bus takes it; timed until the recorder has handed over its last file.
fn through_the_port(kind: &str, stream: &[BusMessage], dir: &Path) -> Run {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (t, factory): (_, Box<dyn RecorderFactory>) = match kind {
        "raw" => (RecordingType::Raw, Box::new(RawFactory)),
        _ => (
            RecordingType::Individual,
            Box::new(individual::IndividualFactory),
        ),
    };
    let cid = Cid::parse("default:bench").expect("a cid");
    let job = RecordingJob::detached(t, cid.clone(), dir.to_owned());
    let bus = Bus::default();
    let recorder = factory.create(&job).expect("a recorder");
    let (reports, mut received) = Reporter::channel();
    let stop = CancellationToken::new();
    let port = Port {
        feed: bus.watch(&cid, BACKLOG, recorder.tracks()),
        job,
        stop: stop.clone(),
        paused: tokio::sync::watch::channel(false).1,
        reports,
    };
    let (cpu, wall) = (cpu_seconds("self"), Instant::now());
    let recording = runtime.spawn(reel::recorders::run(recorder, port));
    let mut published = HashMap::new();
    for m in stream {
        match m {
            BusMessage::Track(t) => {
                let (keyframes, _) = tokio::sync::mpsc::channel(1);
                let p = bus.publish(&cid, (**t).clone(), keyframes);
                published.insert(t.track_id.clone(), p);
            }
            BusMessage::Packet(p) => published[&p.track.track_id].send((**p).clone()),
            BusMessage::Ended(t) => drop(published.remove(&t.track_id)),
        }
    }
    stop.cancel();
    runtime.block_on(recording).expect("the recorder ran");
    let wall = wall.elapsed().as_secs_f64();
    while let Ok(r) = received.try_recv() {
        if let Report::Finished { outcome } = r {
            outcome.expect("the recorder finished");
        }
    }
    assert_eq!(bus.counters().dropped.get(), 0, "the recorder lost packets");
    Run {
        wall,
        cpu: cpu_seconds("self") - cpu,
        packing: None,
    }
}
