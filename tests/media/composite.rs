//! The composite recording of a live call: Chromium draws the call's layout on a display of
//! its own, captured at 30 pictures a second into an H.264 + AAC MP4 whose sound is the
//! call's audio, mixed by reel.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{API_SECRET, listed_recordings, stdout_of};
use crate::support::{EventStream, decode, download, keep, recording_call};

/// Every frame of `file`'s video, as 64x36 grey pictures, and its frame rate's pictures.
async fn small_frames(file: &Path) -> Vec<Vec<u8>> {
    let out = tokio::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args([
            "-map",
            "0:v",
            "-fps_mode",
            "passthrough",
            "-vf",
            "scale=64:36",
        ])
        .args(["-pix_fmt", "gray", "-f", "rawvideo", "-"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    out.stdout.chunks(64 * 36).map(<[u8]>::to_vec).collect()
}

/// The mono 48 kHz samples of `file`'s audio.
async fn samples(file: &Path) -> Vec<f32> {
    let out = tokio::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args([
            "-map", "0:a", "-ac", "1", "-ar", "48000", "-f", "f32le", "-",
        ])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    out.stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The strength of `hz` in `pcm` (48 kHz): the Goertzel filter's magnitude per sample.
fn tone(pcm: &[f32], hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / 48_000.0;
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in pcm {
        let s = f64::from(x) + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    (s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2).sqrt() / pcm.len() as f64
}

#[tokio::test]
async fn a_composite_is_the_layout_at_30_pictures_a_second_with_every_voice() {
    let (t, clips) = recording_call(
        "comp",
        json!({"recording": {"quality": "720p", "layout": {"name": "grid"}}}),
        None,
    )
    .await;
    let url = format!(
        "{}/events/default/comp?token={}",
        t.base,
        t.user_token("watcher", None)
    );
    let mut events = EventStream::open(&url).await;
    // ann sings 440 Hz, ben 660 Hz; each sends a moving test pattern (`reel publish`, which
    // costs little: the machine's cores are the composite's).
    let ben_voice = clips.path().join("opus660.ogg");
    let made = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=f=660:r=48000",
            "-t",
            "4",
        ])
        .args([
            "-c:a",
            "libopus",
            "-b:a",
            "64k",
            "-frame_duration",
            "20",
            "-y",
        ])
        .arg(&ben_voice)
        .status()
        .unwrap();
    assert!(made.success());
    let publisher = |user: &str, voice: &Path| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_reel"));
        cmd.arg("publish")
            .arg(format!("{}/whip/default/comp", t.base))
            .arg("--video")
            .arg(clips.path().join("vp8.ivf"))
            .arg("--audio")
            .arg(voice)
            .args(["--user", user, "--duration", "16s", "--format", "json"])
            .env_remove("REEL_TOKEN")
            .env("REEL_API_SECRET", API_SECRET);
        tokio::spawn(async move { stdout_of(&mut cmd, "reel publish").await })
    };
    let ann = publisher("ann", &clips.path().join("opus.ogg"));
    let ben = publisher("ben", &ben_voice);
    for _ in 0..2 {
        events
            .until("call.session_participant_joined", Duration::from_secs(30))
            .await;
    }
    let (s, body) = t
        .call(
            "POST",
            "/api/v2/video/call/default/comp/start_recording",
            Some(json!({})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    events
        .until("call.recording_started", Duration::from_secs(20))
        .await;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let (s, body) = t
        .call(
            "POST",
            "/api/v2/video/call/default/comp/stop_recording",
            Some(json!({})),
        )
        .await;
    let wall = started.elapsed().as_secs_f64();
    assert_eq!(s, 200, "{body}");

    let listed = listed_recordings(&t, "comp").await;
    let mp4: Vec<Value> = listed
        .into_iter()
        .filter(|r| r["filename"].as_str().unwrap().ends_with(".mp4"))
        .collect();
    assert_eq!(mp4.len(), 1, "{mp4:?}");
    let name = mp4[0]["filename"].as_str().unwrap();
    assert!(name.starts_with("composite_default_comp_"), "{name}");
    let dir = tempfile::tempdir().unwrap();
    let file = download(&t.http, &mp4, dir.path()).await.remove(0).1;

    let probe: Value = serde_json::from_str(
        &stdout_of(
            tokio::process::Command::new("ffprobe")
                .args([
                    "-v",
                    "error",
                    "-count_frames",
                    "-show_streams",
                    "-show_format",
                ])
                .args(["-of", "json"])
                .arg(&file),
            "ffprobe",
        )
        .await,
    )
    .unwrap();
    let streams = probe["streams"].as_array().unwrap();
    let codecs: Vec<&str> = streams
        .iter()
        .map(|s| s["codec_name"].as_str().unwrap())
        .collect();
    assert_eq!(codecs, ["h264", "aac"], "{probe}");
    let video = &streams[0];
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(1280), Some(720))
    );
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (duration - wall).abs() <= 0.5,
        "{duration} s recorded of {wall:.2} s"
    );
    let frames: f64 = video["nb_read_frames"].as_str().unwrap().parse().unwrap();
    assert!(
        frames / duration >= 29.5,
        "{frames} pictures in {duration} s"
    );
    let (errors, audio_seconds) = decode(&file).await;
    assert!(errors.is_empty(), "{errors}");
    assert!(
        (audio_seconds - duration).abs() < 0.2,
        "{audio_seconds} s of sound in {duration} s"
    );

    // The pictures move: no run of more than 3 alike.
    let pictures = small_frames(&file).await;
    let (mut run, mut longest) = (0, (0, 0));
    for (i, pair) in pictures.windows(2).enumerate() {
        run = if pair[0] == pair[1] { run + 1 } else { 0 };
        longest = longest.max((run, i + 1));
    }
    if longest.0 > 3 {
        keep(&file);
    }
    assert!(
        longest.0 <= 3,
        "{} pictures in a row alike, to picture {} of {}",
        longest.0,
        longest.1,
        pictures.len()
    );
    // Both voices, from the start to the end; no third one.
    let pcm = samples(&file).await;
    for (from, to) in [(0.5, 2.0), (duration - 2.0, duration - 0.5)] {
        let part = &pcm[(from * 48_000.0) as usize..(to * 48_000.0) as usize];
        let (a, b, none) = (tone(part, 440.0), tone(part, 660.0), tone(part, 1000.0));
        println!("{from:.1}-{to:.1} s: 440 Hz {a:.4}, 660 Hz {b:.4}, 1 kHz {none:.4}");
        assert!(a > 20.0 * none && b > 20.0 * none, "{a} {b} {none}");
    }
    for p in [ann, ben] {
        let report: Value = serde_json::from_str(p.await.unwrap().trim()).unwrap();
        assert_eq!(report["failed"], 0, "{report}");
    }
}
