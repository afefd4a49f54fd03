//! `reel raw-recording process-all` against the reference pipeline's method, on one archive:
//! a call of `REEL_BENCH_PARTICIPANTS` (4) participants, each sending a looped 720p VP8 clip
//! at about 1.1 Mbit/s and Opus for `REEL_BENCH_SECONDS` (3600), talking in turns of
//! `REEL_BENCH_TURN_SECONDS` (15; 0: everyone all the time) and silent with DTX between, as
//! in a meeting; recorded by reel's raw recorder and packed as the recorder packs it (kept
//! under `~/.cache/reel-bench/` for the next run).
//!
//! The reference method, scripted with Debian's GStreamer and ffmpeg as the reference tool
//! runs them: the archive extracted to disk; each segment's RTP streamed over a loopback TCP
//! connection (RFC 4571 framing) into `gst-launch-1.0 tcpserversrc ! rtpstreamdepay !
//! rtp{opus,vp8}depay ! matroskamux` (with an `rtpjitterbuffer mode=none` before the
//! depayloader, so that frames are timed by their RTP timestamps rather than by how fast they
//! were fed); each track's segments joined by `ffmpeg -f concat`;
//! each participant's audio and video muxed by ffmpeg; the mix by ffmpeg `amix` to the MP3
//! reel writes (mono, 64 kbit/s, for these mono voices, LAME's `-q 7`). One step at a time,
//! and ffmpeg on one thread, as the tool runs them. Before each side, what earlier writes left
//! in memory is flushed (`sync`) and the archive read once, so that both start with it in the
//! page cache and neither pays for the other's writes.
//!
//! Both sides' durations are printed beside their times, so that the table shows the same
//! work was done. Peak memory is the largest resident size of any one process (GNU time's
//! `%M`). Needs `gstreamer1.0-tools gstreamer1.0-plugins-good ffmpeg time`
//! (`scripts/setup-debian.sh --bench`). Run: `cargo bench --bench rawtools`.

#[path = "probe.rs"]
mod probe;
#[path = "replay.rs"]
mod replay;

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use probe::duration;
use reel::domain::{Cid, RecordingType};
use reel::recorders::RecordingJob;
use reel::recorders::raw::{RawArchive, pack};
use reel::rtp::archive::Archive;
use reel::rtp::opus_samples;
use reel::rtp::rtpdump::{RtpHeader, RtpdumpReader};
use replay::{Replay, du, env_number};

fn main() {
    for tool in ["gst-launch-1.0", "ffmpeg", "ffprobe", "/usr/bin/time"] {
        if Command::new(tool).arg("--version").output().is_err() {
            eprintln!("{tool} is missing: run scripts/setup-debian.sh --bench");
            std::process::exit(2);
        }
    }
    let participants = env_number("REEL_BENCH_PARTICIPANTS", 4);
    let seconds = env_number("REEL_BENCH_SECONDS", 3600);
    let cache = PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/reel-bench");
    let turn = env_number("REEL_BENCH_TURN_SECONDS", 15) as u64;
    // Named for how the recorder packs archives (metadata first, audio before video).
    let archive = cache.join(format!(
        "raw-{participants}x{seconds}s-turns{turn}-v{}-audio-first.tar.gz",
        env!("CARGO_PKG_VERSION")
    ));
    if !archive.exists() {
        make_archive(&cache, &archive, participants, seconds as u64, turn);
    }
    let size = std::fs::metadata(&archive).map_or(0, |m| m.len()) as f64 / 1e6;
    println!(
        "{participants} participants, {seconds} s call: {} ({size:.0} MB)\n",
        archive.display()
    );

    let scratch = tempfile::tempdir_in(&cache).expect("a scratch directory");
    let reel_out = scratch.path().join("reel");
    settle(&archive);
    let reel = measure(
        Command::new(env!("CARGO_BIN_EXE_reel"))
            .args(["raw-recording", "process-all", "--input-file"])
            .arg(&archive)
            .arg("--output")
            .arg(&reel_out),
    );
    let reel_files = outputs(&reel_out);
    std::fs::remove_dir_all(&reel_out).ok();

    let reference_dir = scratch.path().join("reference");
    settle(&archive);
    let (reference, reference_files) = reference(&archive, &reference_dir);

    println!(
        "| method | wall s | x real time | peak memory MB | files | audio+video s (each) | mix s |"
    );
    println!("|---|---:|---:|---:|---:|---|---:|");
    for (name, run, files) in [
        ("reel process-all", &reel, &reel_files),
        ("GStreamer + ffmpeg concat", &reference, &reference_files),
    ] {
        println!(
            "| {name} | {:.1} | {:.0} | {:.0} | {} | {} | {:.1} |",
            run.wall,
            seconds as f64 / run.wall,
            run.peak_mb,
            files.count,
            files
                .av
                .iter()
                .map(|d| format!("{d:.1}"))
                .collect::<Vec<_>>()
                .join(", "),
            files.mix
        );
    }
    println!(
        "\nreel is {:.1}x faster, with {:.1}x less peak memory.",
        reference.wall / reel.wall,
        reference.peak_mb / reel.peak_mb
    );
}

/// Records the replayed call with the raw recorder and packs it.
fn make_archive(cache: &Path, archive: &Path, participants: usize, seconds: u64, turn: u64) {
    let (video, audio) = replay::clips(&cache.join("clips"), &[]);
    eprintln!("recording a {seconds} s call of {participants} participants...");
    let dir = tempfile::tempdir_in(cache).expect("a scratch directory");
    let job = RecordingJob::detached(
        RecordingType::Raw,
        Cid::parse("default:bench-raw").expect("a cid"),
        dir.path().to_owned(),
    );
    let root = dir.path().join("raw");
    let mut raw = RawArchive::new(&job, root.clone()).expect("archive");
    let mut call = Replay::new(&video, &audio, participants, seconds);
    if turn > 0 {
        call = call.with_turns(Duration::from_secs(turn));
    }
    for m in call {
        raw.handle(m, &mut |_| {}).expect("raw write");
    }
    raw.finish().expect("raw finish");
    let partial = archive.with_extension("partial");
    pack(&root, &partial).expect("packing");
    std::fs::rename(&partial, archive).expect("the archive in place");
    eprintln!("{} MB of dumps packed", du(&root) / 1_000_000);
}

/// One method's wall time and peak memory.
#[derive(Default)]
struct Run {
    wall: f64,
    peak_mb: f64,
}

impl Run {
    /// Counts the peak memory of a step (the wall time is the whole method's).
    fn add(&mut self, step: Run) {
        self.peak_mb = self.peak_mb.max(step.peak_mb);
    }
}

/// Makes each side start alike: what earlier writes left in memory written out, and the
/// archive read into memory (as just after a download), not wherever earlier runs left it.
fn settle(archive: &Path) {
    let synced = Command::new("sync").status();
    assert!(synced.is_ok_and(|s| s.success()), "sync failed");
    let mut file = std::fs::File::open(archive).expect("the archive");
    std::io::copy(&mut file, &mut std::io::sink()).expect("the archive reads");
}

/// Runs `cmd` to its end under GNU time.
fn measure(cmd: &mut Command) -> Run {
    finish(spawn(cmd))
}

/// A process under GNU time, started now.
struct Timed {
    child: Child,
    stats: tempfile::NamedTempFile,
    start: Instant,
    what: String,
}

fn spawn(cmd: &Command) -> Timed {
    let stats = tempfile::NamedTempFile::new().expect("a stats file");
    let what = format!("{cmd:?}");
    let child = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(stats.path())
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    Timed {
        child,
        stats,
        start: Instant::now(),
        what,
    }
}

fn finish(mut t: Timed) -> Run {
    let status = t.child.wait().expect("the process ends");
    let wall = t.start.elapsed().as_secs_f64();
    assert!(status.success(), "{} failed: {status}", t.what);
    let kb: f64 = std::fs::read_to_string(t.stats.path())
        .unwrap_or_default()
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0.0);
    Run {
        wall,
        peak_mb: kb / 1024.0,
    }
}

/// The reference method on `archive`, in `dir`; its run and what it made.
fn reference(archive: &Path, dir: &Path) -> (Run, Files) {
    let start = Instant::now();
    let mut run = Run::default();
    let extracted = dir.join("extracted");
    std::fs::create_dir_all(&extracted).expect("a directory");
    run.add(measure(
        Command::new("tar")
            .arg("-xzf")
            .arg(archive)
            .arg("-C")
            .arg(&extracted),
    ));
    let opened = Archive::open(&extracted).expect("the extracted archive");
    let mut mixed = Vec::new();
    let out = dir.join("out");
    std::fs::create_dir_all(&out).expect("a directory");
    for (s, session) in opened.sessions.iter().enumerate() {
        let mut tracks = Vec::new();
        for kind in ["audio", "video"] {
            let mut parts = Vec::new();
            for (i, seg) in session
                .segments
                .iter()
                .filter(|seg| seg.sdp.video == (kind == "video"))
                .enumerate()
            {
                let part = dir.join(format!("s{s}-{kind}-{i}.mkv"));
                run.add(depacketize(&extracted.join(&seg.dump), &seg.sdp, &part));
                parts.push(part);
            }
            if parts.is_empty() {
                continue;
            }
            let list = dir.join(format!("s{s}-{kind}.txt"));
            let lines: String = parts
                .iter()
                .map(|p| format!("file '{}'\n", p.display()))
                .collect();
            std::fs::write(&list, lines).expect("a concat list");
            let track = out.join(format!("s{s}_{kind}_only.mkv"));
            run.add(measure(
                ffmpeg()
                    .args(["-f", "concat", "-safe", "0", "-i"])
                    .arg(&list)
                    .args(["-c", "copy"])
                    .arg(&track),
            ));
            tracks.push(track);
        }
        if let [audio, video] = tracks.as_slice() {
            let av = out.join(format!("s{s}_audio_video.mkv"));
            run.add(measure(
                ffmpeg()
                    .arg("-i")
                    .arg(audio)
                    .arg("-i")
                    .arg(video)
                    .args(["-map", "0", "-map", "1", "-c", "copy"])
                    .arg(&av),
            ));
            mixed.push(audio.clone());
        }
    }
    let mut mix = ffmpeg();
    for a in &mixed {
        mix.arg("-i").arg(a);
    }
    mix.args([
        "-filter_complex",
        &format!("amix=inputs={}:normalize=0", mixed.len()),
        "-c:a",
        "libmp3lame",
        // What reel writes for mono voices (the replayed clip is mono), with LAME in the
        // same fast mode.
        "-b:a",
        "64k",
        "-compression_level",
        "7",
        "-ar",
        "48000",
        "-ac",
        "1",
    ])
    .arg(out.join("mix.mp3"));
    run.add(measure(&mut mix));
    run.wall = start.elapsed().as_secs_f64();
    let files = outputs(&out);
    (run, files)
}

/// `gst-launch-1.0 tcpserversrc ! rtpstreamdepay ! rtpjitterbuffer ! rtp*depay !
/// matroskamux` fed one dump.
fn depacketize(dump: &Path, sdp: &reel::rtp::sdp::StreamSdp, out: &Path) -> Run {
    let port = free_port();
    let (media, depay) = if sdp.video {
        ("video", format!("rtp{}depay", sdp.name.to_lowercase()))
    } else {
        ("audio", "rtpopusdepay".to_owned())
    };
    let caps = format!(
        "application/x-rtp-stream,media={media},clock-rate={},encoding-name={},payload={}",
        sdp.clock_rate,
        sdp.name.to_uppercase(),
        sdp.payload_type
    );
    let mut gst = Command::new("gst-launch-1.0");
    gst.arg("-q")
        .args(["tcpserversrc", "host=127.0.0.1", "do-timestamp=true"])
        .arg(format!("port={port}"))
        .args(["!", &caps, "!", "rtpstreamdepay", "!"])
        .args([
            "rtpjitterbuffer",
            "mode=none",
            "latency=0",
            "!",
            &depay,
            "!",
        ])
        .args(["matroskamux", "!", "filesink"])
        .arg(format!("location={}", out.display()));
    let timed = spawn(&gst);
    let mut conn = connect(port);
    let mut reader = RtpdumpReader::new(BufReader::with_capacity(
        1 << 16,
        std::fs::File::open(dump).expect("a dump"),
    ))
    .expect("an rtpdump");
    let mut buf = Vec::new();
    let mut framed = Vec::with_capacity(1 << 16);
    let frame = |packet: &[u8], framed: &mut Vec<u8>| {
        framed.extend_from_slice(&(packet.len() as u16).to_be_bytes());
        framed.extend_from_slice(packet);
    };
    // The reference tool's DTX fix: where the RTP time jumps further than the last Opus
    // packet lasted, TOC-only packets are sent for the missing time, and later sequence
    // numbers moved up by as many.
    let mut last: Option<(RtpHeader, u8)> = None;
    let mut inserted = 0u16;
    let mut rewritten = Vec::with_capacity(1500);
    while let Some(p) = reader.next_packet(&mut buf).expect("a packet") {
        if framed.len() > 60_000 {
            conn.write_all(&framed).expect("sending to GStreamer");
            framed.clear();
        }
        if p.rtcp {
            continue;
        }
        let Some((mut h, payload)) = RtpHeader::parse(&buf).filter(|_| !sdp.video) else {
            frame(&buf, &mut framed);
            continue;
        };
        h.seq = h.seq.wrapping_add(inserted);
        if let Some((prev, toc)) = last
            && let Some(duration) = opus_samples(&[toc]).filter(|&d| d > 0)
        {
            let ts_diff = h.timestamp.wrapping_sub(prev.timestamp);
            let seq_diff = u32::from(h.seq.wrapping_sub(prev.seq));
            if ts_diff > duration && seq_diff * duration != ts_diff {
                let missing = (ts_diff / duration).saturating_sub(seq_diff) as u16;
                for i in 1..=missing {
                    let filler = RtpHeader {
                        seq: prev.seq.wrapping_add(i),
                        timestamp: prev.timestamp.wrapping_add(u32::from(i) * duration),
                        ..prev
                    };
                    rewritten.clear();
                    filler.write_packet(&[toc], &mut rewritten);
                    frame(&rewritten, &mut framed);
                }
                inserted = inserted.wrapping_add(missing);
                h.seq = h.seq.wrapping_add(missing);
            }
        }
        last = payload.first().map(|&toc| (h, toc));
        rewritten.clear();
        h.write_packet(payload, &mut rewritten);
        frame(&rewritten, &mut framed);
    }
    conn.write_all(&framed).expect("sending to GStreamer");
    drop(conn);
    finish(timed)
}

/// ffmpeg as the reference tool runs it: one thread.
fn ffmpeg() -> Command {
    let mut c = Command::new("ffmpeg");
    c.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"]);
    c.args(["-threads", "1", "-filter_threads", "1"]);
    c
}

/// A loopback TCP port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Connects to `port` once GStreamer listens there.
fn connect(port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(c) => return c,
            Err(e) if Instant::now() > deadline => panic!("GStreamer never listened: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// What a method wrote: how many files, the audio-and-video files' durations, the mix's.
struct Files {
    count: usize,
    av: Vec<f64>,
    mix: f64,
}

fn outputs(dir: &Path) -> Files {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("the output directory")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let name = |p: &Path| {
        p.file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned()
    };
    Files {
        count: files.len(),
        av: files
            .iter()
            .filter(|p| name(p).contains("audio_video"))
            .map(|p| duration(p))
            .collect(),
        mix: files
            .iter()
            .find(|p| name(p).ends_with(".mp3"))
            .map_or(0.0, |p| duration(p)),
    }
}
