//! `reel raw-recording` on archives the test writes itself (rtpdump, SDP and metadata written
//! here from the format's description, sharing no code with reel's recorder).

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::common::{S3_KEY, S3_SECRET, S3Server, loudness, python, reel_bin, samples, source_dir};

/// A segment of the test's archives.
struct Seg {
    base: &'static str,
    codec: &'static str,
    track_id: &'static str,
    track_type: &'static str,
    first_unix_ms: i64,
    /// In the order they arrived: sequence number, RTP timestamp, ms after the first.
    packets: Vec<(u16, u32, u32)>,
    /// Each packet's payload (Opus silence for packets past its end).
    payloads: Vec<Vec<u8>>,
}

/// `n` packets 20 ms apart from sequence number 0 and RTP time 0.
fn steady(n: u16) -> Vec<(u16, u32, u32)> {
    (0..n)
        .map(|i| (i, u32::from(i) * 960, u32::from(i) * 20))
        .collect()
}

/// A participant session: user, session, segments.
type Session = (&'static str, &'static str, Vec<Seg>);

fn seg(
    base: &'static str,
    codec: &'static str,
    track_id: &'static str,
    track_type: &'static str,
    first_unix_ms: i64,
) -> Seg {
    Seg {
        base,
        codec,
        track_id,
        track_type,
        first_unix_ms,
        packets: steady(50),
        payloads: Vec::new(),
    }
}

/// An rtpdump of `packets` (Opus silence, or a byte of video) of payload type `pt`, starting
/// at `start_ms`.
fn dump(start_ms: i64, pt: u8, packets: &[(u16, u32, u32)], payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"#!rtpplay1.0 127.0.0.1/5004\n".to_vec();
    out.extend_from_slice(&((start_ms / 1000) as u32).to_be_bytes());
    out.extend_from_slice(&(((start_ms % 1000) * 1000) as u32).to_be_bytes());
    out.extend_from_slice(&[127, 0, 0, 1, 0x13, 0x8c, 0, 0]);
    for (i, &(seq, ts, offset_ms)) in packets.iter().enumerate() {
        let mut rtp = vec![0x80, pt];
        rtp.extend_from_slice(&seq.to_be_bytes());
        rtp.extend_from_slice(&ts.to_be_bytes());
        rtp.extend_from_slice(&7u32.to_be_bytes());
        // A 20 ms Opus frame of silence, unless told otherwise.
        rtp.extend_from_slice(payloads.get(i).map_or(&[0xf8, 0xff, 0xfe][..], |p| &p[..]));
        out.extend_from_slice(&(rtp.len() as u16 + 8).to_be_bytes());
        out.extend_from_slice(&(rtp.len() as u16).to_be_bytes());
        out.extend_from_slice(&offset_ms.to_be_bytes());
        out.extend_from_slice(&rtp);
    }
    out
}

/// Writes `sessions` under `root/raw_default_demo/`.
fn write_archive(root: &Path, sessions: &[Session]) {
    for (user, session, segs) in sessions {
        let dir = root.join("raw_default_demo").join(user).join(session);
        std::fs::create_dir_all(&dir).unwrap();
        let mut kinds = json!({"audio": [], "video": []});
        for s in segs {
            let (kind, name) = s.codec.split_once('/').unwrap();
            let (pt, map) = match name {
                "opus" => (111, "opus/48000/2"),
                "PCMU" => (0, "PCMU/8000"),
                other => (
                    96,
                    if other == "VP8" {
                        "VP8/90000"
                    } else {
                        "H264/90000"
                    },
                ),
            };
            let sdp = format!(
                "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm={kind} 5004 RTP/AVP {pt}\r\na=rtpmap:{pt} {map}\r\n"
            );
            std::fs::write(dir.join(format!("{}.sdp", s.base)), sdp).unwrap();
            std::fs::write(
                dir.join(format!("{}.rtpdump", s.base)),
                dump(s.first_unix_ms, pt, &s.packets, &s.payloads),
            )
            .unwrap();
            kinds[kind].as_array_mut().unwrap().push(json!({
                "base_filename": s.base, "codec": s.codec, "track_id": s.track_id,
                "track_type": s.track_type, "first_rtp_rtp_timestamp": s.packets[0].1,
                "first_rtp_unix_timestamp": s.first_unix_ms,
                "last_rtp_rtp_timestamp": s.packets.last().unwrap().1,
                "last_rtp_unix_timestamp": s.first_unix_ms + i64::from(s.packets.last().unwrap().2),
            }));
        }
        let meta = json!({
            "call_type": "default", "call_id": "demo", "call_session_id": "cs",
            "call_start_time": "2026-11-23T10:00:00Z", "participant_id": user,
            "user_session_id": session, "segments": kinds,
        });
        std::fs::write(
            dir.join(format!("{session}_timing_metadata.json")),
            serde_json::to_vec(&meta).unwrap(),
        )
        .unwrap();
    }
}

fn sessions() -> Vec<Session> {
    const T: i64 = 1_795_000_000_000;
    vec![
        (
            "bob",
            "s-bob",
            vec![
                seg(
                    "s-bob_0001_audio",
                    "audio/opus",
                    "b-mic",
                    "TRACK_TYPE_AUDIO",
                    T + 500,
                ),
                seg(
                    "s-bob_0002_screenshare_video",
                    "video/H264",
                    "b-screen",
                    "TRACK_TYPE_SCREEN_SHARE",
                    T + 900,
                ),
            ],
        ),
        (
            "alice",
            "s-alice",
            vec![
                seg(
                    "s-alice_0001_audio",
                    "audio/opus",
                    "a-mic",
                    "TRACK_TYPE_AUDIO",
                    T,
                ),
                seg(
                    "s-alice_0002_video",
                    "video/VP8",
                    "a-cam",
                    "TRACK_TYPE_VIDEO",
                    T,
                ),
                // The camera restarted: a second segment of the same track.
                seg(
                    "s-alice_0003_video",
                    "video/VP8",
                    "a-cam",
                    "TRACK_TYPE_VIDEO",
                    T + 4000,
                ),
            ],
        ),
    ]
}

fn raw_recording(args: &[&str]) -> Output {
    Command::new(reel_bin())
        .arg("raw-recording")
        .args(args)
        .output()
        .unwrap()
}

/// `raw-recording command --input-dir root --output out extra...`.
fn on_dir(command: &str, root: &Path, out: &Path, extra: &[&str]) -> Output {
    Command::new(reel_bin())
        .args(["raw-recording", command, "--input-dir"])
        .arg(root)
        .arg("--output")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// The error a failed command printed.
fn failure(out: &Output) -> String {
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn list_tracks_reads_directories_tar_gz_and_zip_alike() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("extracted");
    write_archive(&root, &sessions());
    let tgz = dir.path().join("call.tar.gz");
    let zip = dir.path().join("call.zip");
    let status = Command::new("tar")
        .arg("czf")
        .arg(&tgz)
        .arg("-C")
        .arg(&root)
        .arg("raw_default_demo")
        .status()
        .unwrap();
    assert!(status.success());
    let status = Command::new("python3")
        .args(["-m", "zipfile", "-c"])
        .arg(&zip)
        .arg(root.join("raw_default_demo"))
        .status()
        .unwrap();
    assert!(status.success());

    let inputs = [
        ["--input-dir", root.to_str().unwrap()],
        ["--input-file", tgz.to_str().unwrap()],
        ["--input-file", zip.to_str().unwrap()],
    ];
    let json_of = |input: &[&str; 2]| {
        let out = raw_recording(&[&["list-tracks", "--format", "json"][..], input].concat());
        serde_json::from_str::<Value>(&stdout(&out)).unwrap()
    };
    let tracks = json_of(&inputs[0]);
    for input in &inputs[1..] {
        assert_eq!(json_of(input), tracks, "{input:?}");
    }
    // The reference tool's shape: an object of tracks, user ids and sessions, each track
    // with its call, times and segments.
    let alice_cam = &tracks["tracks"][1];
    assert_eq!(alice_cam["callType"], "default");
    assert_eq!(alice_cam["callId"], "demo");
    assert_eq!(alice_cam["callSessionId"], "cs");
    assert_eq!(alice_cam["callStartTime"], "2026-11-23T10:00:00Z");
    assert_eq!(alice_cam["trackType"], "TRACK_TYPE_VIDEO");
    assert_eq!(alice_cam["trackStartTime"], "2026-11-18T11:06:40Z");
    assert_eq!(alice_cam["trackEndTime"], "2026-11-18T11:06:44.98Z");
    let segments: Vec<(&str, &str)> = alice_cam["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["baseFilename"].as_str().unwrap(),
                s["sdpPath"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        segments,
        [
            (
                "s-alice_0002_video",
                "raw_default_demo/alice/s-alice/s-alice_0002_video.sdp"
            ),
            (
                "s-alice_0003_video",
                "raw_default_demo/alice/s-alice/s-alice_0003_video.sdp"
            )
        ]
    );
    // Read by a script written for the reference tool.
    let mut reader = Command::new(python())
        .arg(source_dir().join("tests/python/summarize_tracks.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    reader
        .stdin
        .take()
        .unwrap()
        .write_all(tracks.to_string().as_bytes())
        .unwrap();
    let summary = reader.wait_with_output().unwrap();
    assert!(
        summary.status.success(),
        "{}",
        String::from_utf8_lossy(&summary.stderr)
    );
    let summary: Value = serde_json::from_slice(&summary.stdout).unwrap();
    assert_eq!(
        summary,
        json!({
            "users": ["alice", "bob"],
            "sessions": ["s-alice", "s-bob"],
            "tracks": [
                "alice/s-alice/a-mic audio audio/opus 1 0.980",
                "alice/s-alice/a-cam video video/VP8 2 4.980",
                "bob/s-bob/b-mic audio audio/opus 1 0.980",
                "bob/s-bob/b-screen video video/H264 1 0.980",
            ],
        })
    );

    let dir_arg = ["--input-dir", root.to_str().unwrap()];
    let list = |extra: &[&str]| {
        stdout(&raw_recording(
            &[&["list-tracks"][..], &dir_arg, extra].concat(),
        ))
    };
    assert_eq!(list(&["--format", "users"]), "alice\nbob\n");
    assert_eq!(list(&["--format", "sessions"]), "s-alice\ns-bob\n");
    assert_eq!(
        list(&["--format", "tracks", "--track-type", "video"]),
        "a-cam\nb-screen\n"
    );
    let table = list(&[]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5, "{table}");
    assert!(
        lines[0].starts_with("USER ID  SESSION ID  TRACK ID  TYPE   SCREENSHARE  CODEC  SEGMENTS"),
        "{table}"
    );
    assert!(
        lines[4]
            .split_whitespace()
            .eq(["bob", "s-bob", "b-screen", "video", "yes", "H264", "1"]),
        "{table}"
    );
}

#[test]
fn damaged_archives_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let list = |flag: &str, p: &str| failure(&raw_recording(&["list-tracks", flag, p]));

    assert!(list("--input-file", &path("missing.tar.gz")).contains("cannot open"));
    std::fs::write(path("notes.txt"), "hello").unwrap();
    assert!(list("--input-file", &path("notes.txt")).contains("neither a .tar.gz nor a .zip"));

    // A whole archive, then cut in half.
    let root = dir.path().join("good");
    write_archive(&root, &sessions());
    let tgz = path("cut.tar.gz");
    let status = Command::new("tar")
        .args(["czf", &tgz, "-C"])
        .arg(&root)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = std::fs::read(&tgz).unwrap();
    std::fs::write(&tgz, &bytes[..bytes.len() / 2]).unwrap();
    assert!(list("--input-file", &tgz).contains("damaged or cut short"));

    let empty = path("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(list("--input-dir", &empty).contains("not a raw recording archive"));

    // A segment whose dump is gone; metadata that is not JSON.
    let session = root.join("raw_default_demo/alice/s-alice");
    std::fs::remove_file(session.join("s-alice_0003_video.rtpdump")).unwrap();
    let err = list("--input-dir", root.to_str().unwrap());
    assert!(
        err.contains("segment s-alice_0003_video: 0 .rtpdump files"),
        "{err}"
    );
    std::fs::write(session.join("s-alice_timing_metadata.json"), "{").unwrap();
    let err = list("--input-dir", root.to_str().unwrap());
    assert!(
        err.contains("s-alice_timing_metadata.json: not timing metadata"),
        "{err}"
    );

    // Exactly one input.
    let both = raw_recording(&["list-tracks", "--input-dir", &empty, "--input-file", &tgz]);
    assert!(failure(&both).contains("cannot be used with"));
    assert!(failure(&raw_recording(&["list-tracks"])).contains("required"));
}

#[test]
fn extracting_explains_unknown_ids_codecs_and_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("in");
    let mut all = sessions();
    all.push((
        "gus",
        "s-gus",
        vec![seg(
            "s-gus_0001_audio",
            "audio/PCMU",
            "g-mic",
            "TRACK_TYPE_AUDIO",
            1_795_000_000_000,
        )],
    ));
    write_archive(&root, &all);
    let input = root.to_str().unwrap();
    let out = dir.path().join("out");
    let extract = |extra: &[&str]| on_dir("extract-audio", &root, &out, extra);
    // Listing shows the codec; extracting it says what it can take.
    let listed = stdout(&raw_recording(&[
        "list-tracks",
        "--input-dir",
        input,
        "--format",
        "json",
    ]));
    assert!(listed.contains("\"audio/PCMU\""), "{listed}");
    let err = failure(&extract(&["--user-id", "gus"]));
    assert!(
        err.contains("codec \"PCMU\" is not one of opus, VP8, VP9, H264, AV1"),
        "{err}"
    );
    for (flag, list) in [
        ("--user-id", "users"),
        ("--session-id", "sessions"),
        ("--track-id", "tracks"),
    ] {
        let err = failure(&extract(&[flag, "nobody"]));
        assert!(
            err.contains(&format!("list-tracks --format {list}")),
            "{err}"
        );
    }
    assert!(
        failure(&extract(&["--user-id", "alice", "--track-id", "a-mic"]))
            .contains("cannot be used with")
    );
    // Nothing was left in the output by the failures.
    assert!(std::fs::read_dir(&out).map_or(true, |d| d.count() == 0));
    // An output that is a file.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let err = failure(&on_dir(
        "extract-audio",
        &root,
        &file,
        &["--user-id", "alice"],
    ));
    assert!(err.contains("cannot write to"), "{err}");
    // And the one that works writes alice's file only.
    let written = stdout(&extract(&["--user-id", "alice", "--format", "json"]));
    let written: Value = serde_json::from_str(&written).unwrap();
    assert_eq!(written.as_array().unwrap().len(), 1, "{written}");
    assert_eq!(written[0]["user_id"], "alice");
}

/// Seconds of audio `file` decodes to, and its length by ffprobe.
fn decoded_and_probed(file: &Path) -> (f64, f64) {
    let decoded = samples(file).len() as f64 / 48_000.0;
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .unwrap();
    let duration: f64 = String::from_utf8_lossy(&probe.stdout)
        .trim()
        .parse()
        .unwrap();
    (decoded, duration)
}

#[test]
fn extracted_audio_lasts_the_wall_time_through_loss_reordering_dtx_gaps_and_wraps() {
    const T: i64 = 1_795_000_000_000;
    let dir = tempfile::tempdir().unwrap();
    // 30 s from an RTP time that wraps 5 s in; 3% of packets lost; packets arriving up to
    // 50 places late; nothing sent from 10 s to 20 s (DTX) while the clock runs on.
    let start_ts = u32::MAX - 5 * 48_000;
    // The speaker holds a tone whenever the sender sends (the tone's encoding starting over
    // when sending does, as an encoder's state would follow its input).
    let tone = tone(dir.path(), 1);
    // Silent, a DTX sender sends nothing: its sequence numbers go on from where they were.
    let mut seq = 65_000u16;
    let mut sent: Vec<((u16, u32, u32), Vec<u8>)> = Vec::new();
    for i in (0..1500u32).filter(|i| !(500..1000).contains(i)) {
        seq = seq.wrapping_add(1);
        let since = if i < 500 { i } else { i - 1000 } as usize;
        if i % 33 != 7 {
            let payload = tone[since % tone.len()].clone();
            sent.push(((seq, start_ts.wrapping_add(i * 960), i * 20), payload));
        }
    }
    for chunk in sent.chunks_mut(51) {
        // The first of every 51 arrives last.
        chunk.rotate_left(1);
    }
    let (first, first_payloads): (Vec<_>, Vec<_>) = sent.into_iter().unzip();
    // Then 5 s of nothing, and a second segment of 10 s (a new SSRC in real life).
    let second = steady(500);
    let second_payloads = tone.iter().cycle().take(500).cloned().collect();
    let session = vec![(
        "dora",
        "s-dora",
        vec![
            Seg {
                payloads: first_payloads,
                packets: first,
                ..seg(
                    "s-dora_0001_audio",
                    "audio/opus",
                    "d-mic",
                    "TRACK_TYPE_AUDIO",
                    T,
                )
            },
            Seg {
                payloads: second_payloads,
                packets: second,
                ..seg(
                    "s-dora_0002_audio",
                    "audio/opus",
                    "d-mic",
                    "TRACK_TYPE_AUDIO",
                    T + 35_000,
                )
            },
        ],
    )];
    let root = dir.path().join("in");
    write_archive(&root, &session);
    let extract = |out: &str, extra: &[&str]| {
        let out_dir = dir.path().join(out);
        println!(
            "{}",
            stdout(&on_dir("extract-audio", &root, &out_dir, extra))
        );
        let files: Vec<_> = std::fs::read_dir(&out_dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        files[0].clone()
    };

    // On a terminal a progress bar shows each pass; elsewhere nothing is drawn.
    let out_dir = dir.path().join("on-a-terminal");
    let command = format!(
        "{} raw-recording extract-audio --input-dir {} --output {}",
        reel_bin().display(),
        root.display(),
        out_dir.display()
    );
    let terminal = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&terminal.stdout);
    assert!(
        terminal.status.success() && shown.contains("pass 1 ["),
        "{shown}"
    );
    let quiet = on_dir("extract-audio", &root, &dir.path().join("quiet"), &[]);
    assert!(
        quiet.status.success() && quiet.stderr.is_empty(),
        "{quiet:?}"
    );
    // --verbose says on stderr what it read and what the file lost and filled.
    let verbose = on_dir("extract-audio", &root, &dir.path().join("verbose"), &["-v"]);
    let log = String::from_utf8_lossy(&verbose.stderr);
    assert!(
        verbose.status.success() && log.contains("segment read"),
        "{log}"
    );
    let count = |field: &str| {
        log.split(&format!(" {field}="))
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
    };
    assert!(count("lost").is_some_and(|n| n > 0), "{log}");
    assert!(count("filled").is_some_and(|n| n > 0), "{log}");

    let file = extract("filled", &[]);
    assert_eq!(
        file.file_name().unwrap().to_str().unwrap(),
        "individual_default_demo_dora_s-dora_audio_only_1795428000000.mkv"
    );
    let (decoded, probed) = decoded_and_probed(&file);
    println!("filled: {decoded:.3} s decoded, {probed:.3} s long");
    assert!((decoded - 45.0).abs() <= 0.02, "{decoded}");
    assert!((probed - 45.0).abs() <= 0.02, "{probed}");
    // The silences sit where nothing was sent: 10-20 s (DTX) and 30-35 s (between segments).
    // (Shorter dips are where the looped tone starts over.)
    let (starts, stops) = transitions(&file);
    let silences: Vec<(f64, f64)> = stops
        .iter()
        .map(|&stop| {
            (
                stop,
                starts.iter().copied().find(|&s| s > stop).unwrap_or(45.0),
            )
        })
        .filter(|(stop, start)| start - stop > 0.1)
        .collect();
    println!("silent from/to {silences:?} s");
    assert_eq!(silences.len(), 2, "{silences:?}");
    for ((from, to), (want_from, want_to)) in silences.iter().zip([(10.0, 20.0), (30.0, 35.0)]) {
        assert!(
            (from - want_from).abs() <= 0.02 && (to - want_to).abs() <= 0.02,
            "silent from {from} to {to} s, not {want_from} to {want_to} s"
        );
    }

    // Without filling between segments, the 5 s gap holds no audio (the file still spans it).
    let (decoded, probed) = decoded_and_probed(&extract("unfilled", &["--fill-gaps=false"]));
    assert!((decoded - 40.0).abs() <= 0.02, "{decoded}");
    assert!((probed - 45.0).abs() <= 0.02, "{probed}");
    // Without the DTX fix, the silence and the lost packets are missing too.
    let (decoded, _) = decoded_and_probed(&extract(
        "no-dtx-fix",
        &["--fill-gaps", "false", "--fix-dtx=false"],
    ));
    assert!(decoded < 40.0 - 10.0 - 0.4, "{decoded}");
}

#[test]
fn extracted_audio_conceals_single_lost_packets_and_keeps_gaps_silent() {
    const T: i64 = 1_795_000_000_000;
    let dir = tempfile::tempdir().unwrap();
    // 12 s of a steady tone, coded as ffmpeg codes it.
    let tone = opus_packets(dir.path(), "sine=f=440:d=12.1,volume=2.2", 1);
    assert!(tone.len() >= 600, "{}", tone.len());
    // 2% of the packets missing at random: up to 5 s skipped by the sender (sequence numbers
    // contiguous, timestamps jumping), from 6 s lost on the way (sequence numbers missing).
    // From 5 s to 6 s nothing is sent at all.
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let (mut packets, mut payloads, mut missing) = (Vec::new(), Vec::new(), Vec::new());
    let mut seq = 0u16;
    for i in 0..600u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let gap = (250..300).contains(&i);
        let lost = i > 10 && x.is_multiple_of(50) && !gap;
        if lost && i >= 300 {
            seq = seq.wrapping_add(1);
        }
        if lost || gap {
            missing.push(i);
            continue;
        }
        packets.push((seq, i * 960, i * 20));
        payloads.push(tone[i as usize].clone());
        seq = seq.wrapping_add(1);
    }
    println!("missing packets: {missing:?}");
    let session = vec![(
        "erin",
        "s-erin",
        vec![Seg {
            packets,
            payloads,
            ..seg(
                "s-erin_0001_audio",
                "audio/opus",
                "e-mic",
                "TRACK_TYPE_AUDIO",
                T,
            )
        }],
    )];
    let root = dir.path().join("in");
    write_archive(&root, &session);
    let out = dir.path().join("out");
    let listed = stdout(&on_dir("extract-audio", &root, &out, &[]));
    println!("{listed}");
    let file = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let concealed = missing
        .iter()
        .filter(|&&i| !(250..300).contains(&i))
        .count();
    assert!(
        listed.contains(&format!(" {concealed} concealed)")),
        "{concealed} concealed: {listed}"
    );

    let windows = loudness(&file, 0.1);
    let mut sorted = windows.clone();
    sorted.sort_by(f64::total_cmp);
    let level = sorted[sorted.len() / 2];
    println!("tone at {level:.4} of full scale; 100 ms windows: {windows:.3?}");
    // The tone, but for its first window, the gap and the window after it (the decoder
    // comes back from silence), and its last.
    for (w, rms) in windows.iter().enumerate() {
        if (1..50).contains(&w) || (61..119).contains(&w) {
            assert!(
                *rms >= level / 2.0,
                "{:.1} s: {rms} of {level}",
                w as f64 / 10.0
            );
        }
    }
    // The second sent nothing stays silent.
    assert!(
        windows[51..59].iter().all(|&rms| rms < 0.001),
        "{:?}",
        &windows[50..60]
    );
}

/// About half a second of a 1 kHz tone in 20 ms Opus packets.
fn tone(dir: &Path, channels: u8) -> Vec<Vec<u8>> {
    opus_packets(dir, "sine=f=1000:d=0.5", channels)
}

/// 20 ms Opus packets of `source` (an ffmpeg lavfi source) in `channels`, as ffmpeg's
/// libopus encoder codes them.
fn opus_packets(dir: &Path, source: &str, channels: u8) -> Vec<Vec<u8>> {
    let path = dir.join(format!("{}-{channels}.ogg", source.len()));
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", source])
        .args(["-ac", &channels.to_string()])
        .args(["-c:a", "libopus", "-frame_duration", "20"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    let clip = reel::media::clip::read_audio(&path).unwrap();
    // The encoder's first packet mostly holds its look-ahead: the tone starts in the second.
    clip.frames
        .iter()
        .skip(1)
        .map(|f| f.data.to_vec())
        .collect()
}

/// 20 ms Opus packets: `silent` of silence, then about half a second of a 1 kHz tone.
fn speech(dir: &Path, silent: usize) -> Vec<Vec<u8>> {
    let mut payloads = vec![vec![0xf8, 0xff, 0xfe]; silent];
    payloads.extend(tone(dir, 1));
    payloads
}

/// The times (s) at which sound starts in `file`: 5 ms windows rising above -30 dBFS.
fn onsets(file: &Path) -> Vec<f64> {
    transitions(file).0
}

/// The times (s) at which sound starts and stops in `file` (5 ms windows, -30 dBFS).
fn transitions(file: &Path) -> (Vec<f64>, Vec<f64>) {
    let (mut on, mut starts, mut stops) = (false, Vec::new(), Vec::new());
    for (i, rms) in loudness(file, 0.005).into_iter().enumerate() {
        let loud = rms > 10f64.powf(-30.0 / 20.0);
        if loud != on {
            if loud { &mut starts } else { &mut stops }.push(i as f64 * 0.005);
        }
        on = loud;
    }
    (starts, stops)
}

#[test]
fn mix_audio_puts_each_voice_at_its_time() {
    const T: i64 = 1_795_000_000_000;
    let dir = tempfile::tempdir().unwrap();
    // Erin speaks 1.0 s after her first packet; Finn joins 0.7 s after her and speaks 2.0 s
    // after his first packet: 2.7 s into the mix.
    let voice = |user, session, base, track, start, silent| {
        (
            user,
            session,
            vec![Seg {
                packets: steady(250),
                payloads: speech(dir.path(), silent),
                ..seg(base, "audio/opus", track, "TRACK_TYPE_AUDIO", start)
            }],
        )
    };
    let sessions = vec![
        voice("erin", "s-erin", "s-erin_0001_audio", "e-mic", T, 50),
        voice("finn", "s-finn", "s-finn_0001_audio", "f-mic", T + 700, 100),
    ];
    let root = dir.path().join("in");
    write_archive(&root, &sessions);
    let out_dir = dir.path().join("out");
    let out = stdout(&on_dir("mix-audio", &root, &out_dir, &["--format", "json"]));
    let mixed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(mixed["tracks"], 2, "{mixed}");
    let path = Path::new(mixed["path"].as_str().unwrap());
    assert_eq!(
        path.file_name().unwrap().to_str().unwrap(),
        "composite_default_demo_audio_1795428000000.mp3"
    );
    let codec = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,sample_rate,channels",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .unwrap();
    // Both voices are mono, as browsers send: so is the mix.
    assert_eq!(String::from_utf8_lossy(&codec.stdout).trim(), "mp3,48000,1");
    assert_eq!(mixed["channels"], 1, "{mixed}");
    let (decoded, _) = decoded_and_probed(path);
    // Finn's 5 s end 5.7 s into the mix.
    assert!((decoded - 5.7).abs() <= 0.03, "{decoded}");
    let heard = onsets(path);
    println!("voices start at {heard:?} s");
    assert_eq!(heard.len(), 2, "{heard:?}");
    for (at, expected) in heard.iter().zip([1.0, 2.7]) {
        assert!(
            (at - expected).abs() <= 0.02,
            "a voice at {at} s, expected at {expected} s"
        );
    }
    let left: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
}

/// Packs `sessions` as a `.tar.gz` at `path`.
fn tar_gz(sessions: &[Session], path: &Path) {
    let dir = tempfile::tempdir().unwrap();
    write_archive(dir.path(), sessions);
    let status = Command::new("tar")
        .arg("czf")
        .arg(path)
        .arg("-C")
        .arg(dir.path())
        .arg("raw_default_demo")
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn input_s3_downloads_once_and_again_when_the_object_changes() {
    let s3 = S3Server::start("archives").await;
    let object = s3.root.path().join("archives/calls/call.tar.gz");
    std::fs::create_dir_all(object.parent().unwrap()).unwrap();
    tar_gz(&sessions(), &object);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    // `raw-recording list-tracks` with `args`, with credentials for the S3 server.
    let with_s3 = |args: &[&str]| {
        Command::new(reel_bin())
            .args(["raw-recording", "list-tracks"])
            .args(args)
            .arg("--cache-dir")
            .arg(&cache)
            .env("AWS_ACCESS_KEY_ID", S3_KEY)
            .env("AWS_SECRET_ACCESS_KEY", S3_SECRET)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", s3.endpoint())
            .env_remove("AWS_PROFILE")
            .output()
            .unwrap()
    };
    let users = |url: &str| {
        let out = with_s3(&["--format", "users", "--input-s3", url]);
        (
            stdout(&out),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let url = "s3://archives/calls/call.tar.gz";
    let (listed, said) = users(url);
    assert_eq!(listed, "alice\nbob\n");
    assert!(said.contains("downloaded to"), "{said}");
    let copies: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    let copy = copies
        .iter()
        .find(|p| p.to_string_lossy().ends_with("call.tar.gz"))
        .unwrap();
    let modified = std::fs::metadata(copy).unwrap().modified().unwrap();

    // Again: the ETag is the same, nothing is downloaded.
    let (listed, said) = users(url);
    assert_eq!(listed, "alice\nbob\n");
    assert!(said.contains("using the cached copy"), "{said}");
    assert_eq!(
        std::fs::metadata(copy).unwrap().modified().unwrap(),
        modified
    );

    // The object changes: it is downloaded again.
    let mut more = sessions();
    more.push((
        "gus",
        "s-gus",
        vec![seg(
            "s-gus_0001_audio",
            "audio/opus",
            "g",
            "TRACK_TYPE_AUDIO",
            0,
        )],
    ));
    tar_gz(&more, &object);
    let (listed, said) = users(url);
    assert_eq!(listed, "alice\nbob\ngus\n");
    assert!(said.contains("downloaded to"), "{said}");

    // A presigned URL needs no credentials; another link to the same object finds the copy.
    let bucket = reel::storage::S3Bucket::new(reel::storage::S3Options {
        bucket: "archives".into(),
        prefix: String::new(),
        region: "us-east-1".into(),
        endpoint: Some(s3.endpoint()),
        credentials: Some((S3_KEY.into(), S3_SECRET.to_owned().into())),
        path_style: true,
    })
    .unwrap();
    let link = |ttl| {
        let bucket = &bucket;
        async move {
            bucket
                .presign("calls/call.tar.gz", std::time::Duration::from_secs(ttl))
                .await
                .unwrap()
        }
    };
    let first = link(600).await;
    let plain = |url: &str| {
        let out = Command::new(reel_bin())
            .args([
                "raw-recording",
                "list-tracks",
                "--format",
                "users",
                "--input-s3",
                url,
            ])
            .arg("--cache-dir")
            .arg(&cache)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .output()
            .unwrap();
        (
            stdout(&out),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (listed, said) = plain(&first);
    assert_eq!(listed, "alice\nbob\ngus\n");
    assert!(
        said.contains("downloaded to") && !said.contains("X-Amz"),
        "{said}"
    );
    let (_, said) = plain(&link(900).await);
    assert!(said.contains("using the cached copy"), "{said}");

    // A missing object is named.
    let out = with_s3(&["--input-s3", "s3://archives/nope.tar.gz"]);
    let err = failure(&out);
    assert!(err.contains("s3://archives/nope.tar.gz"), "{err}");
}

#[test]
fn segments_stored_out_of_order_are_extracted_in_time_order() {
    const T: i64 = 1_795_000_000_000;
    // The later segment's name sorts first, so a pass meets it first.
    let session = vec![(
        "hana",
        "s-hana",
        vec![
            seg(
                "s-hana_b_first_audio",
                "audio/opus",
                "h-mic",
                "TRACK_TYPE_AUDIO",
                T,
            ),
            seg(
                "s-hana_a_second_audio",
                "audio/opus",
                "h-mic",
                "TRACK_TYPE_AUDIO",
                T + 2_000,
            ),
        ],
    )];
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("in");
    write_archive(&root, &session);
    let out_dir = dir.path().join("out");
    let out = stdout(&on_dir(
        "extract-audio",
        &root,
        &out_dir,
        &["--format", "json"],
    ));
    let written: Value = serde_json::from_str(&out).unwrap();
    let path = Path::new(written[0]["path"].as_str().unwrap());
    // 1 s, 1 s of silence between the segments, 1 s.
    let (decoded, probed) = decoded_and_probed(path);
    assert!((decoded - 3.0).abs() <= 0.02, "{decoded}");
    assert!((probed - 3.0).abs() <= 0.02, "{probed}");
    assert_eq!(written[0]["packets"], 100, "{written}");
}

#[test]
fn a_stereo_voice_makes_a_stereo_mix_and_dtx_silence_stays_silent() {
    const T: i64 = 1_795_000_000_000;
    let dir = tempfile::tempdir().unwrap();
    // Half a second of stereo tone, 2.5 s of DTX (nothing sent; the RTP clock runs on), and
    // the tone again from 3.0 s.
    let mut burst = tone(dir.path(), 2);
    burst.resize(25, vec![0xfc, 0xff, 0xfe]);
    let packets: Vec<(u16, u32, u32)> = (0..50u16)
        .map(|i| {
            let slot = u32::from(if i < 25 { i } else { i + 125 });
            (i, slot * 960, slot * 20)
        })
        .collect();
    let sessions = vec![(
        "gus",
        "s-gus",
        vec![Seg {
            packets,
            payloads: [burst.clone(), burst].concat(),
            ..seg(
                "s-gus_0001_audio",
                "audio/opus",
                "g-mic",
                "TRACK_TYPE_AUDIO",
                T,
            )
        }],
    )];
    let root = dir.path().join("in");
    write_archive(&root, &sessions);
    let out_dir = dir.path().join("out");
    let out = stdout(&on_dir("mix-audio", &root, &out_dir, &["--format", "json"]));
    let mixed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(mixed["channels"], 2, "{mixed}");
    let path = Path::new(mixed["path"].as_str().unwrap());
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=channels",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&probe.stdout).trim(), "2");
    let (starts, stops) = transitions(path);
    println!("sound from {starts:?} to {stops:?} s");
    assert_eq!((starts.len(), stops.len()), (2, 2), "{starts:?} {stops:?}");
    for (at, expected) in starts.iter().zip([0.0, 3.0]) {
        assert!(
            (at - expected).abs() <= 0.02,
            "sound at {at} s, expected {expected} s"
        );
    }
    // Silence over the DTX stretch (not concealment noise), and the mix ends with the tone.
    assert!((stops[0] - 0.48).abs() <= 0.03, "{stops:?}");
    let (decoded, _) = decoded_and_probed(path);
    assert!((decoded - 3.5).abs() <= 0.03, "{decoded}");
}

/// Packs the archive under `root` as a `.tar.gz` at `path`: its files sorted by `rank`
/// (then name), with `comment` in the gzip header.
fn pack(root: &Path, path: &Path, rank: fn(&str) -> u8, comment: Option<&str>) {
    let mut files: Vec<(u8, String)> = Vec::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                dirs.push(e.path());
            } else {
                let name = e.path().strip_prefix(root).unwrap().display().to_string();
                files.push((rank(&name), name));
            }
        }
    }
    files.sort();
    let mut gz = flate2::GzBuilder::new();
    if let Some(c) = comment {
        gz = gz.comment(c);
    }
    let file = std::fs::File::create(path).unwrap();
    let mut tar = tar::Builder::new(gz.write(file, flate2::Compression::fast()));
    for (_, name) in files {
        tar.append_path_with_name(root.join(&name), &name).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
}

/// Each packet's stream, time and size in `file`.
fn packets(file: &Path) -> String {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "packet=stream_index,pts_time,size",
        ])
        .args(["-of", "csv=p=0"])
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn archives_that_hold_descriptions_and_audio_first_are_read_no_further_than_needed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("in");
    let mut sessions = sessions();
    // Alice's camera sends VP8 key frames (320x240), a packet each.
    let key = [
        0x10, 0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00,
    ];
    for s in sessions.iter_mut().flat_map(|s| &mut s.2) {
        if s.codec == "video/VP8" {
            s.payloads = vec![key.to_vec(); s.packets.len()];
        }
    }
    write_archive(&root, &sessions);
    let input = |p: &Path| ["--input-file".to_owned(), p.display().to_string()];
    let run = |command: &str, archive: &Path, out: &Path| {
        let mut args = vec![command.to_owned()];
        args.extend(input(archive));
        args.extend(["--output".to_owned(), out.display().to_string()]);
        raw_recording(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    // As reel packs: descriptions, then audio, then video, and says so.
    let audio_first = |name: &str| match name {
        n if n.ends_with("audio.rtpdump") => 1,
        n if n.ends_with(".rtpdump") => 2,
        _ => 0,
    };
    let first = dir.path().join("first.tar.gz");
    pack(
        &root,
        &first,
        audio_first,
        Some("reel raw archive: descriptions first"),
    );
    // The video before the audio, and not said: a pass meets each session's video first.
    let video_first = |name: &str| u8::from(name.ends_with("audio.rtpdump"));
    let last = dir.path().join("last.tar.gz");
    pack(&root, &last, video_first, None);

    // The audio-and-video files are the same either way: written along with the video from
    // the finished audio, or made from the two files after.
    let (out_first, out_last) = (dir.path().join("o1"), dir.path().join("o2"));
    stdout(&run("mux-av", &first, &out_first));
    stdout(&run("mux-av", &last, &out_last));
    let names = |d: &Path| {
        let mut n: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().into_string().unwrap())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(&out_first), names(&out_last));
    assert_eq!(names(&out_first).len(), 1, "{:?}", names(&out_first));
    for name in names(&out_first) {
        let made = packets(&out_first.join(&name));
        assert_eq!(made, packets(&out_last.join(&name)), "{name}");
        for stream in ["0,", "1,"] {
            assert!(
                made.lines().any(|l| l.starts_with(stream)),
                "{name}: {made}"
            );
        }
    }

    // Cut inside the video: listing and the audio need only what comes before.
    let bytes = std::fs::read(&first).unwrap();
    let cut = dir.path().join("cut.tar.gz");
    std::fs::write(&cut, &bytes[..bytes.len() * 3 / 4]).unwrap();
    assert!(
        stdout(&raw_recording(&[
            "list-tracks",
            &input(&cut)[0],
            &input(&cut)[1]
        ]))
        .contains("a-cam")
    );
    let audio = dir.path().join("audio");
    stdout(&run("extract-audio", &cut, &audio));
    assert_eq!(names(&audio).len(), 2, "{:?}", names(&audio));
    let err = failure(&run("extract-video", &cut, &dir.path().join("video")));
    assert!(
        err.contains("_video.rtpdump: the rtpdump is cut short at byte"),
        "{err}"
    );
    // The same cut, not said to hold its descriptions first, cannot even be listed.
    let bytes = std::fs::read(&last).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() * 3 / 4]).unwrap();
    let err = failure(&raw_recording(&[
        "list-tracks",
        &input(&cut)[0],
        &input(&cut)[1],
    ]));
    assert!(err.contains("damaged or cut short"), "{err}");

    // A dump stored twice is read once. (Archives that do not put their descriptions first
    // are refused at once: two dumps would match one segment.)
    let twice = dir.path().join("twice.tar.gz");
    let gz = flate2::GzBuilder::new()
        .comment("reel raw archive: descriptions first")
        .write(
            std::fs::File::create(&twice).unwrap(),
            flate2::Compression::fast(),
        );
    let mut tar = tar::Builder::new(gz);
    let session = "raw_default_demo/alice/s-alice";
    let descriptions = [
        "s-alice_timing_metadata.json",
        "s-alice_0001_audio.sdp",
        "s-alice_0002_video.sdp",
        "s-alice_0003_video.sdp",
    ];
    for name in descriptions {
        let name = format!("{session}/{name}");
        tar.append_path_with_name(root.join(&name), &name).unwrap();
    }
    for dump in ["0001_audio", "0001_audio", "0002_video", "0003_video"] {
        let name = format!("{session}/s-alice_{dump}.rtpdump");
        tar.append_path_with_name(root.join(&name), &name).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
    let (from_dir, from_twice) = (dir.path().join("d"), dir.path().join("t"));
    stdout(&on_dir("mux-av", &root, &from_dir, &["--user-id", "alice"]));
    stdout(&run("mux-av", &twice, &from_twice));
    let file = names(&from_dir).pop().unwrap();
    assert_eq!(
        packets(&from_dir.join(&file)),
        packets(&from_twice.join(&file))
    );

    // A dump its metadata names but that is not there is found missing when read.
    std::fs::remove_file(root.join("raw_default_demo/bob/s-bob/s-bob_0001_audio.rtpdump")).unwrap();
    let gone = dir.path().join("gone.tar.gz");
    pack(
        &root,
        &gone,
        audio_first,
        Some("reel raw archive: descriptions first"),
    );
    let err = failure(&run("extract-audio", &gone, &dir.path().join("gone")));
    assert!(
        err.contains("s-bob_0001_audio.rtpdump: named by its metadata, but not in the archive"),
        "{err}"
    );
    assert!(
        !dir.path()
            .join("gone")
            .read_dir()
            .unwrap()
            .any(|e| e.is_ok_and(|e| e.path().extension().is_some_and(|x| x == "partial")))
    );
}
