//! The individual recorder, fed by `reel publish`, its files checked with ffprobe and ffmpeg.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::common::{listed_files, loudness, stdout_of};
use crate::support::{
    assert_lasts, browsers, decode, download, probe, publish, recording_call, tally_bus,
};

#[tokio::test]
async fn each_participant_gets_files_as_long_as_their_time_in_the_call() {
    // Recorded from the call session's start, with every camera/microphone output type.
    let (t, clips) = recording_call(
        "ind",
        json!({"individual_recording": {
                    "mode": "auto-on",
                    "output_types": ["audio_only", "video_only", "audio_video"]}}),
        None,
    )
    .await;
    let alice = publish(&t, "ind", clips.path(), "vp8.ivf", "alice", "5s", &[]);
    // Bob joins a second later and leaves first.
    let bob = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        publish(&t, "ind", clips.path(), "h264.h264", "bob", "3s", &[]).await
    };
    let (alice, bob) = tokio::join!(alice, bob);

    let listed = listed_files(&t, "ind", 6).await;
    let dir = tempfile::tempdir().unwrap();
    let files = download(&t.http, &listed, dir.path()).await;
    assert_eq!(files.len(), 6, "{files:?}");
    for (user, report, video) in [("alice", &alice, "vp8"), ("bob", &bob, "h264")] {
        let time_in_call = report["media_seconds"][0].as_f64().unwrap();
        let mine: Vec<_> = files
            .iter()
            .filter(|(n, _)| n.starts_with(&format!("individual_default_ind_{user}_")))
            .collect();
        assert_eq!(mine.len(), 3, "{user}: {files:?}");
        for (name, path) in mine {
            let (expected, content) = if name.contains("_audio_only_") {
                (vec!["opus"], "audio")
            } else if name.contains("_video_only_") {
                (vec![video], "video")
            } else {
                assert!(name.contains("_audio_video_"), "{name}");
                (vec!["opus", video], "both")
            };
            let (codecs, duration) = probe(path).await;
            assert_eq!(codecs, expected, "{name}");
            assert!(
                (duration - time_in_call).abs() <= 0.1,
                "{name}: {duration:.3} s in the file, {time_in_call:.3} s in the call"
            );
            let (errors, audio) = decode(path).await;
            println!(
                "{name}: {duration:.3} s, {audio:.3} s of audio; {time_in_call:.3} s in the call"
            );
            assert!(errors.is_empty(), "{name}: {errors}");
            if content != "video" {
                assert!(
                    (audio - time_in_call).abs() <= 0.1,
                    "{name}: {audio:.3} s of audio, {time_in_call:.3} s in the call"
                );
            }
        }
    }
}

#[tokio::test]
async fn lost_packets_and_dtx_silences_do_not_shorten_the_audio() {
    let (t, clips) = recording_call(
        "lossy",
        json!({"individual_recording": {"mode": "auto-on"}}),
        None,
    )
    .await;
    let received = tally_bus(&t, &reel::domain::Cid::parse("default:lossy").unwrap());
    // 5% of the datagrams lost both ways of retransmission, and 2 s of every 4 s silent.
    let report = publish(
        &t,
        "lossy",
        clips.path(),
        "vp8.ivf",
        "carol",
        "6s",
        &["--loss", "5", "--dtx"],
    )
    .await;
    // The file spans the media as reel received it, with its last frame (20 ms): a publisher
    // starved of CPU as it connects gets its first packets to reel late (measured: 0.28 s
    // beside a release build), while its own clock counts from its connection.
    let sent_for = report["media_seconds"][0].as_f64().unwrap();
    let time_in_call = received.await.unwrap().seconds("carol") + 0.02;
    assert!(
        time_in_call > sent_for - 0.5,
        "{time_in_call} s of {sent_for} s"
    );
    let listed = listed_files(&t, "lossy", 1).await;
    let dir = tempfile::tempdir().unwrap();
    let files = download(&t.http, &listed, dir.path()).await;
    assert_eq!(files.len(), 1, "the default output types: {files:?}");
    let (name, path) = &files[0];
    assert!(
        name.contains("_carol_") && name.contains("_audio_video_"),
        "{name}"
    );
    assert_lasts(path, time_in_call, 0.1).await;
}

#[tokio::test]
async fn a_lost_audio_packet_costs_no_more_than_its_own_time() {
    let (t, clips) = recording_call(
        "conceal",
        json!({"individual_recording": {"mode": "auto-on", "output_types": ["audio_only"]}}),
        None,
    )
    .await;
    // A steady tone longer than the call (a clip that loops starts its coding over).
    let status = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi"])
        .args(["-i", "sine=f=440:d=12,volume=2.2", "-c:a", "libopus"])
        .args(["-b:a", "64k", "-frame_duration", "20"])
        .arg(clips.path().join("opus.ogg"))
        .status()
        .unwrap();
    assert!(status.success());
    // 3% of the datagrams lost, retransmissions too.
    publish(
        &t,
        "conceal",
        clips.path(),
        "vp8.ivf",
        "dave",
        "8s",
        &["--loss", "3"],
    )
    .await;
    let listed = listed_files(&t, "conceal", 1).await;
    let dir = tempfile::tempdir().unwrap();
    let files = download(&t.http, &listed, dir.path()).await;
    let (name, path) = &files[0];
    let (errors, _) = decode(path).await;
    assert!(errors.is_empty(), "{name}: {errors}");
    let windows = loudness(path, 0.1);
    let mut sorted = windows.clone();
    sorted.sort_by(f64::total_cmp);
    let level = sorted[sorted.len() / 2];
    println!("{name}: the tone at {level:.4} of full scale; 100 ms windows {windows:.3?}");
    // All but the first and last windows (the tone starting, the last cut short).
    for (w, rms) in windows[1..windows.len() - 1].iter().enumerate() {
        assert!(
            *rms >= level / 2.0,
            "{:.1} s: {rms} of {level}",
            (w + 1) as f64 / 10.0
        );
    }
}

/// A clip that flashes white and beeps at the same moments: 0.48 s into every second. Both
/// loop every 2 s (the audio is cut so that the encoder's padding makes it 100 packets).
fn make_sync_clips(dir: &Path) {
    let ffmpeg = |args: &[&str]| {
        let status = std::process::Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-y"])
            .args(args)
            .current_dir(dir)
            .status()
            .unwrap();
        assert!(status.success(), "ffmpeg {args:?}");
    };
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=black:s=320x240:r=25:d=2,\
         drawbox=c=white:t=fill:enable='between(mod(t\\,1)\\,0.47\\,0.59)'",
        "-c:v",
        "libvpx",
        "-deadline",
        "realtime",
        "-b:v",
        "300k",
        // Every frame a key frame: a publisher asked for one never skips ahead of the audio.
        "-g",
        "1",
        "vp8.ivf",
    ]);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "aevalsrc='if(between(mod(t\\,1)\\,0.48\\,0.6)\\,0.5*sin(2*PI*1000*t)\\,0)':s=48000:d=1.99",
        "-c:a",
        "libopus",
        "-frame_duration",
        "20",
        "opus.ogg",
    ]);
}

/// The times (s) at which `file`'s picture turns bright and at which its sound starts.
async fn flashes_and_beeps(file: &Path) -> (Vec<f64>, Vec<f64>) {
    let onsets = |filter: String, tag: &'static str, threshold: f64| async move {
        let csv = stdout_of(
            tokio::process::Command::new("ffprobe")
                .args(["-v", "error", "-f", "lavfi", "-i", &filter])
                .args(["-show_entries", &format!("frame=pts_time:frame_tags={tag}")])
                .args(["-of", "csv=p=0"]),
            "ffprobe",
        )
        .await;
        let mut on = false;
        let mut times = Vec::new();
        for line in csv.lines() {
            let Some((t, v)) = line.split_once(',') else {
                continue;
            };
            let (t, v): (f64, f64) = (t.parse().unwrap(), v.parse().unwrap_or(f64::MIN));
            if v > threshold && !on {
                times.push(t);
            }
            on = v > threshold;
        }
        times
    };
    let path = file.display();
    let flashes = onsets(
        format!("movie={path},signalstats"),
        "lavfi.signalstats.YAVG",
        128.0,
    );
    // 5 ms steps of sound; a tone is far above -30 dB, silence far below.
    let beeps = onsets(
        format!("amovie={path},asetnsamples=n=240,astats=metadata=1:reset=1"),
        "lavfi.astats.Overall.RMS_level",
        -30.0,
    );
    tokio::join!(flashes, beeps)
}

#[tokio::test]
async fn audio_and_video_are_aligned_by_the_senders_clock() {
    let (t, _) = recording_call(
        "sync",
        json!({"individual_recording": {"mode": "auto-on"}, "raw_recording": {"mode": "auto-on"}}),
        None,
    )
    .await;
    let clips = tempfile::tempdir().unwrap();
    make_sync_clips(clips.path());
    // One participant's video leaves with its audio; the other's 150 ms after it, as from a
    // camera and encoder slower than the microphone's. Audio sender reports come every 5 s.
    let prompt = publish(&t, "sync", clips.path(), "vp8.ivf", "prompt", "12s", &[]);
    let late = publish(
        &t,
        "sync",
        clips.path(),
        "vp8.ivf",
        "late",
        "12s",
        &["--video-delay", "150ms"],
    );
    let (prompt, late) = tokio::join!(prompt, late);
    let longest = [prompt, late]
        .iter()
        .filter_map(|r| r["media_seconds"][0].as_f64())
        .fold(0.0, f64::max);
    let listed = listed_files(&t, "sync", 3).await;
    let dir = tempfile::tempdir().unwrap();
    let downloaded = download(&t.http, &listed, dir.path()).await;
    let (archives, files): (Vec<_>, Vec<_>) = downloaded
        .into_iter()
        .partition(|(name, _)| name.ends_with(".tar.gz"));
    assert_eq!((archives.len(), files.len()), (1, 2));
    for (name, path) in &files {
        let offsets = sync_offsets(name, path).await;
        // The late video is aligned once both kinds had a sender report, and the move spread
        // over the next frames: from 8 s on at the latest. The encoder's look-ahead puts the
        // decoded sound 6.5 ms late; a video frame lasts 40 ms.
        let from = if name.contains("_late_") { 8.0 } else { 0.0 };
        for (at, o) in offsets.into_iter().filter(|(at, _)| *at >= from) {
            assert!(
                o.abs() <= 0.03,
                "{name}: sound {o:.3} s after the picture at {at:.3} s"
            );
        }
    }

    // The raw archive recorded at the same time: `process-all` makes audio-and-video files
    // of the same names, as long (within 100 ms), aligned from their start (the sender
    // reports are in the archive before the first frame is placed); and the other files.
    let muxed = dir.path().join("muxed");
    let out = stdout_of(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_reel"))
            .args(["raw-recording", "process-all", "--input-file"])
            .arg(&archives[0].1)
            .arg("--output")
            .arg(&muxed),
        "process-all",
    )
    .await;
    println!("{out}");
    let mut made: Vec<String> = std::fs::read_dir(&muxed)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    made.sort();
    // Per participant audio, video, both; and the mix.
    assert_eq!(made.len(), 7, "{made:?}");
    assert!(
        made[0].starts_with("composite_default_sync_audio_"),
        "{made:?}"
    );
    let (codecs, mixed) = probe(&muxed.join(&made[0])).await;
    assert_eq!(codecs, ["mp3"]);
    // As long as the longest participant's media (how long after the start each one's
    // media began depends on how busy the machine is).
    assert!(
        mixed > longest - 0.1,
        "{mixed} s of mix, {longest} s of media"
    );
    for (name, path) in &files {
        let remade = muxed.join(name);
        assert!(remade.exists(), "{name} not made by process-all: {out}");
        let ((codecs, duration), (_, recorded)) = (probe(&remade).await, probe(path).await);
        assert_eq!(codecs, ["opus", "vp8"]);
        assert!(
            (duration - recorded).abs() <= 0.1,
            "{name}: {duration:.3} s from the archive, {recorded:.3} s recorded"
        );
        let (errors, _) = decode(&remade).await;
        assert!(errors.is_empty(), "{errors}");
        for (at, o) in sync_offsets(name, &remade).await {
            assert!(
                o.abs() <= 0.03,
                "{name} from the archive: sound {o:.3} s after the picture at {at:.3} s"
            );
        }
    }
}

/// For each flash in `path`, its time and how much later the nearest beep starts.
async fn sync_offsets(name: &str, path: &Path) -> Vec<(f64, f64)> {
    let (flashes, beeps) = flashes_and_beeps(path).await;
    assert!(flashes.len() >= 10, "{name}: flashes at {flashes:?}");
    let offsets: Vec<(f64, f64)> = flashes
        .iter()
        .map(|f| {
            let nearest = beeps
                .iter()
                .min_by(|a, b| (*a - f).abs().total_cmp(&(*b - f).abs()))
                .unwrap_or_else(|| panic!("{name}: no sound"));
            (*f, nearest - f)
        })
        .collect();
    println!("{name}: (picture, sound minus picture) {offsets:.3?} s");
    offsets
}

#[tokio::test]
async fn hostile_user_ids_make_safe_distinct_names() {
    let (t, clips) = recording_call(
        "hostile",
        json!({
                    "individual_recording": {"mode": "auto-on"},
                    "raw_recording": {"mode": "auto-on"}}),
        None,
    )
    .await;
    let long = "x".repeat(250);
    let users = ["../../etc", "..", "Zoë 👋/☃", &long, "a b"];
    let publishers = users
        .iter()
        .map(|u| publish(&t, "hostile", clips.path(), "vp8.ivf", u, "2s", &[]));
    futures_util::future::join_all(publishers).await;

    // One audio_video file per participant and one archive, every name of its own.
    let listed = listed_files(&t, "hostile", users.len() + 1).await;
    let dir = tempfile::tempdir().unwrap();
    let files = download(&t.http, &listed, dir.path()).await;
    let names: std::collections::HashSet<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), users.len() + 1, "{names:?}");
    for (name, path) in &files {
        assert!(
            name.len() <= 255 && !name.contains('/') && !name.starts_with('.'),
            "{name}"
        );
        if name.ends_with(".mkv") {
            assert!(name.starts_with("individual_default_hostile_"), "{name}");
            let (codecs, _) = probe(path).await;
            assert_eq!(codecs, ["opus", "vp8"], "{name}");
        }
    }
    // Inside the archive, every participant's folder stays under the top directory.
    let (archive_name, archive) = files.iter().find(|(n, _)| n.ends_with(".tar.gz")).unwrap();
    let top = archive_name.trim_end_matches(".tar.gz");
    let list = stdout_of(
        tokio::process::Command::new("tar").arg("-tzf").arg(archive),
        "tar",
    )
    .await;
    let mut folders = std::collections::HashSet::new();
    for entry in list.lines() {
        let parts: Vec<&str> = entry.trim_end_matches('/').split('/').collect();
        assert_eq!(parts[0], top, "{entry}");
        assert!(!parts.iter().any(|p| *p == ".." || *p == "."), "{entry}");
        assert!(parts.iter().all(|p| p.len() <= 255), "{entry}");
        if parts.len() >= 2 {
            folders.insert(parts[1]);
        }
    }
    assert_eq!(folders.len(), users.len(), "{folders:?}");
    // Nothing was written where a user id points: no directory of reel's is named `etc`.
    let mut dirs = vec![t.dir.path().to_owned()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            assert_ne!(entry.file_name(), "etc", "{}", entry.path().display());
            if entry.path().is_dir() {
                dirs.push(entry.path());
            }
        }
    }
}

#[tokio::test]
async fn chromium_vp9_and_av1_are_kept_as_published() {
    let (t, _clips) = recording_call(
        "ind-browsers",
        json!({"individual_recording": {"mode": "auto-on", "output_types": ["audio_video"]}}),
        None,
    )
    .await;
    let received = tally_bus(
        &t,
        &reel::domain::Cid::parse("default:ind-browsers").unwrap(),
    );
    browsers(
        &t,
        "ind-browsers",
        &[("alice", "VP9"), ("bob", "AV1")],
        6,
        &[],
    )
    .await;
    let received = received.await.unwrap();

    let listed = listed_files(&t, "ind-browsers", 2).await;
    let dir = tempfile::tempdir().unwrap();
    for (name, path) in download(&t.http, &listed, dir.path()).await {
        let (want, in_call) = if name.contains("_alice_") {
            ("vp9", received.seconds("alice"))
        } else {
            ("av1", received.seconds("bob"))
        };
        let (codecs, duration) = probe(&path).await;
        let (errors, audio) = decode(&path).await;
        println!("{name}: {codecs:?}, {duration:.3} s, {audio:.3} s of audio");
        assert_eq!(codecs, ["opus", want], "{name}");
        assert!(errors.is_empty(), "{name}: {errors}");
        // The pages stay six seconds in the call after the last one connected; the file
        // spans the page's media as reel received it, from its first packet to its last, by
        // the sender's clock from the first packet's arrival (a page starved of CPU at its
        // start sends its first packets late, and its file runs that much past the last).
        assert!(
            duration > 5.5 && (duration - in_call).abs() < 0.5,
            "{name}: {duration} s, media received for {in_call:.3} s"
        );
        // A page's microphone may start a little after its camera: the file starts with
        // the first of them.
        assert!(
            audio <= duration + 0.05 && audio > duration - 0.6,
            "{name}: {audio} s of audio in {duration} s"
        );
    }
}
