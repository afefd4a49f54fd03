//! The composite recording of a live call: Chromium draws the call's layout on a display of
//! its own, captured at 30 pictures a second into an H.264 + AAC MP4 whose sound is the
//! call's audio, mixed by reel.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{API_SECRET, Receiver, listed_files, stdout_of};
use crate::support::{
    EventStream, decode, download, keep, probe_json, recording_call, recording_call_of,
};

/// Every picture of `file`'s video at 64x36, in FFmpeg's pixel format `format` of `bytes`
/// a pixel.
async fn pictures_as(file: &Path, format: &str, bytes: usize) -> Vec<Vec<u8>> {
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
        .args(["-pix_fmt", format, "-f", "rawvideo", "-"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    out.stdout
        .chunks(64 * 36 * bytes)
        .map(<[u8]>::to_vec)
        .collect()
}

/// Every picture of `file`'s video as 64x36 grey.
async fn small_frames(file: &Path) -> Vec<Vec<u8>> {
    pictures_as(file, "gray", 1).await
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

/// The share of the tenths of a second from `from` to `to` (s) of `pcm` in which `hz` is
/// heard. Tenths, not the whole span at once: a voice whose phase jumps (its clip looping)
/// cancels itself in one long sum though it never stopped.
fn heard_share(pcm: &[f32], hz: f64, from: f64, to: f64) -> f64 {
    let part = &pcm[(from * 48_000.0) as usize..(to * 48_000.0) as usize];
    let tenths: Vec<f64> = part.chunks_exact(4_800).map(|t| tone(t, hz)).collect();
    // A tone of ffmpeg's (amplitude 1/8) measures about 0.088 in a tenth of a second.
    tenths.iter().filter(|&&s| s > 0.02).count() as f64 / tenths.len().max(1) as f64
}

/// A moving test pattern in `user`'s colour (ann red, ben blue, carl green, a screen
/// yellow), as VP8 in `clips`.
fn coloured(clips: &Path, user: &str) -> std::path::PathBuf {
    let path = clips.join(format!("{user}.ivf"));
    let mixer = match user {
        "ann" => {
            "testsrc2=size=320x240:rate=30,colorchannelmixer=rr=0.6:rg=0.1:rb=0.1:gr=0.1:gg=0.1:gb=0.1:br=0.1:bg=0.1:bb=0.1"
        }
        "ben" => {
            "testsrc2=size=320x240:rate=30,colorchannelmixer=rr=0.1:rg=0.1:rb=0.1:gr=0.1:gg=0.1:gb=0.1:br=0.1:bg=0.1:bb=0.6"
        }
        "carl" => {
            "testsrc2=size=320x240:rate=30,colorchannelmixer=rr=0.1:rg=0.1:rb=0.1:gr=0.1:gg=0.6:gb=0.1:br=0.1:bg=0.1:bb=0.1"
        }
        // Yellow from grey: every pixel as much red as green.
        _ => {
            "testsrc2=size=320x240:rate=30,hue=s=0,colorchannelmixer=rr=0.6:rg=0:rb=0:gr=0:gg=0.6:gb=0:br=0:bg=0:bb=0.1"
        }
    };
    let made = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i", mixer, "-t", "4"])
        .args(["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8"])
        .args(["-b:v", "300k", "-g", "60", "-y"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(made.success());
    path
}

/// Whose colour (see [`coloured`]) dominates `rgb` (pixels of 3 bytes): `"ann"`, `"ben"`,
/// `"carl"`, `"screen"` or `"nobody"`.
fn colour_of(rgb: &[u8]) -> &'static str {
    let sum = |c: usize| {
        rgb.iter()
            .skip(c)
            .step_by(3)
            .map(|&v| f64::from(v))
            .sum::<f64>()
    };
    let (r, g, b) = (sum(0), sum(1), sum(2));
    let over = |x: f64, y: f64| x > 1.5 * y;
    match (
        over(r, g),
        over(r, b),
        over(g, r),
        over(g, b),
        over(b, r),
        over(b, g),
    ) {
        (true, true, ..) => "ann",
        (_, _, true, true, _, _) => "carl",
        (.., true, true) => "ben",
        (false, true, false, true, ..) => "screen",
        _ => "nobody",
    }
}

/// How many pixels of `picture` show each one's colour.
fn shown(picture: &[u8]) -> std::collections::HashMap<&'static str, usize> {
    let mut counts = std::collections::HashMap::new();
    for p in picture.chunks(3) {
        *counts.entry(colour_of(p)).or_insert(0) += 1;
    }
    counts
}

/// The picture shown at `second` of `file`, as 64x36 RGB.
async fn picture_at(file: &Path, second: f64) -> Vec<u8> {
    let out = tokio::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-ss", &second.to_string(), "-i"])
        .arg(file)
        .args(["-frames:v", "1", "-vf", "scale=64:36"])
        .args(["-pix_fmt", "rgb24", "-f", "rawvideo", "-"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout.len(), 64 * 36 * 3);
    out.stdout
}

/// Four seconds of a `hz` tone (`reel publish` loops it), as Ogg Opus in `clips`.
fn voice(clips: &Path, hz: u32) -> std::path::PathBuf {
    let path = clips.join(format!("voice{hz}.ogg"));
    let made = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i"])
        .arg(format!("sine=f={hz}:r=48000"))
        .args([
            "-t",
            "4",
            "-c:a",
            "libopus",
            "-b:a",
            "64k",
            "-frame_duration",
            "20",
            "-y",
        ])
        .arg(&path)
        .status()
        .unwrap();
    assert!(made.success());
    path
}

/// `reel publish` of `video` and `sound` (looped) as `user` at `whip` for `seconds`, with a
/// JSON report; killed if dropped.
fn publisher(
    whip: &str,
    (video, sound): (&Path, &Path),
    user: &str,
    seconds: u32,
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_reel"));
    cmd.arg("publish")
        .arg(whip)
        .arg("--video")
        .arg(video)
        .arg("--audio")
        .arg(sound)
        .args(["--user", user, "--duration", &format!("{seconds}s")])
        .args(["--format", "json"])
        .env_remove("REEL_TOKEN")
        .env("REEL_API_SECRET", API_SECRET)
        .kill_on_drop(true);
    cmd
}

/// Starts `reel publish` as ann and ben in `call` for `seconds`: ann sings 440 Hz and shows
/// red, ben 660 Hz and blue; each sends a moving test pattern (`reel publish`, which costs
/// little: the machine's cores are the composite's). Each gives its report.
fn two_voices(
    t: &crate::common::TestServer,
    clips: &Path,
    call: &str,
    seconds: u32,
) -> [tokio::task::JoinHandle<String>; 2] {
    let whip = format!("{}/whip/default/{call}", t.base);
    [("ann", 440), ("ben", 660)].map(|(user, hz)| {
        let mut cmd = publisher(
            &whip,
            (&coloured(clips, user), &voice(clips, hz)),
            user,
            seconds,
        );
        tokio::spawn(async move { stdout_of(&mut cmd, "reel publish").await })
    })
}

async fn eight_seconds() {
    tokio::time::sleep(Duration::from_secs(8)).await;
}

/// Records `call` from `call.recording_started` until `during` is over; the wall time between
/// that and the stop, and the recorded file of `extension` (the one not in `seen`, which it
/// joins), downloaded into the directory given.
async fn record(
    t: &crate::common::TestServer,
    call: &str,
    events: &mut EventStream,
    seen: &mut HashSet<String>,
    extension: &str,
    during: impl std::future::Future<Output = ()>,
) -> (f64, std::path::PathBuf, tempfile::TempDir) {
    let path = format!("/api/v2/video/call/default/{call}");
    let (s, body) = t
        .call("POST", &format!("{path}/start_recording"), Some(json!({})))
        .await;
    assert_eq!(s, 200, "{body}");
    events
        .until("call.recording_started", Duration::from_secs(20))
        .await;
    let started = Instant::now();
    during.await;
    let (s, body) = t
        .call("POST", &format!("{path}/stop_recording"), Some(json!({})))
        .await;
    let wall = started.elapsed().as_secs_f64();
    assert_eq!(s, 200, "{body}");
    let listed = listed_files(t, call, seen.len() + 1).await;
    let files: Vec<Value> = listed
        .into_iter()
        .filter(|r| !seen.contains(r["filename"].as_str().unwrap()))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0]["filename"].as_str().unwrap();
    assert!(name.ends_with(extension), "{name}");
    seen.insert(name.to_owned());
    let dir = tempfile::tempdir().unwrap();
    let file = download(&t.http, &files, dir.path()).await.remove(0).1;
    (wall, file, dir)
}

/// A call where ann and ben publish (see [`two_voices`]), both joined.
struct CallOfTwo {
    t: crate::common::TestServer,
    events: EventStream,
    publishers: [tokio::task::JoinHandle<String>; 2],
    /// Each user's `user_session_id`.
    sessions: std::collections::HashMap<String, String>,
    /// The files recorded so far.
    seen: HashSet<String>,
    _clips: tempfile::TempDir,
}

/// A call of `settings` where ann and ben publish, once both joined.
async fn call_of_two(call: &str, settings: Value, seconds: u32) -> CallOfTwo {
    call_of_two_on(
        reel::recorders::Recorders::all(),
        call,
        settings,
        seconds,
        None,
    )
    .await
}

/// [`call_of_two`] on a server with `recorders`, and webhooks to `hook` if given.
async fn call_of_two_on(
    recorders: reel::recorders::Recorders,
    call: &str,
    settings: Value,
    seconds: u32,
    hook: Option<String>,
) -> CallOfTwo {
    let (t, clips) = recording_call_of(recorders, call, settings, hook).await;
    let url = format!(
        "{}/events/default/{call}?token={}",
        t.base,
        t.user_token("watcher", None)
    );
    let mut events = EventStream::open(&url).await;
    let publishers = two_voices(&t, clips.path(), call, seconds);
    let mut sessions = std::collections::HashMap::new();
    while sessions.len() < 2 {
        let seen = events
            .until("call.session_participant_joined", Duration::from_secs(30))
            .await;
        let p = &seen.last().unwrap()["participant"];
        sessions.insert(
            p["user"]["id"].as_str().unwrap().to_owned(),
            p["user_session_id"].as_str().unwrap().to_owned(),
        );
    }
    CallOfTwo {
        t,
        events,
        publishers,
        sessions,
        seen: HashSet::new(),
        _clips: clips,
    }
}

/// Both voices in `pcm` from the start to the end of its `duration`, and no third one.
fn both_voices(pcm: &[f32], duration: f64) {
    for (from, to) in [(0.5, 2.0), (duration - 2.0, duration - 0.5)] {
        let part = &pcm[(from * 48_000.0) as usize..(to * 48_000.0) as usize];
        let (a, b) = (
            heard_share(pcm, 440.0, from, to),
            heard_share(pcm, 660.0, from, to),
        );
        let none = tone(part, 1000.0);
        println!("{from:.1}-{to:.1} s: 440 Hz in {a:.2}, 660 Hz in {b:.2}, 1 kHz {none:.4}");
        assert!(a >= 0.9 && b >= 0.9 && none < 0.005, "{a} {b} {none}");
    }
}

/// Checks that every publisher sent all it had.
async fn all_sent(publishers: [tokio::task::JoinHandle<String>; 2]) {
    for p in publishers {
        let report: Value = serde_json::from_str(p.await.unwrap().trim()).unwrap();
        assert_eq!(report["failed"], 0, "{report}");
    }
}

#[tokio::test]
async fn a_composite_is_the_layout_at_30_pictures_a_second_with_every_voice() {
    let CallOfTwo {
        t,
        mut events,
        publishers,
        mut seen,
        ..
    } = call_of_two(
        "comp",
        json!({"recording": {"quality": "720p", "layout": {"name": "grid"}}}),
        16,
    )
    .await;
    let (wall, file, dir) = record(&t, "comp", &mut events, &mut seen, "mp4", async {
        // While it runs, /metrics tells how it goes.
        tokio::time::sleep(Duration::from_secs(4)).await;
        let metrics = t.metrics().await;
        let captured = metrics
            .lines()
            .find(|l| l.starts_with("reel_composite_pictures_captured{"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{metrics}"));
        assert!(captured >= 60.0, "{captured} pictures in 4 s");
        assert!(metrics.contains("reel_composite_encoder_lag_seconds{recording_id=\"EG_"));
        assert!(metrics.contains("reel_composite_audio_late_samples{"));
        tokio::time::sleep(Duration::from_secs(4)).await;
    })
    .await;
    let name = file.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("composite_default_comp_"), "{name}");
    let probe = probe_json(&file, &["-count_frames"]).await;
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
    // Both participants in their colours, side by side.
    let picture = picture_at(&file, duration / 2.0).await;
    let half = |right: bool| -> Vec<u8> {
        picture
            .chunks(3)
            .enumerate()
            .filter(|(i, _)| (i % 64 >= 32) == right)
            .flat_map(|(_, p)| p.to_vec())
            .collect()
    };
    let mut halves = [colour_of(&half(false)), colour_of(&half(true))];
    halves.sort_unstable();
    assert_eq!(halves, ["ann", "ben"]);
    // Both voices, from the start to the end; no third one.
    both_voices(&samples(&file).await, duration);
    all_sent(publishers).await;
    drop(dir);
}

#[tokio::test]
async fn a_pin_changes_who_a_running_composite_shows() {
    let CallOfTwo {
        t,
        mut events,
        publishers,
        sessions,
        mut seen,
        ..
    } = call_of_two(
        "comppin",
        json!({"recording": {"quality": "360p", "layout": {"name": "single-participant"}}}),
        16,
    )
    .await;
    let pin = |user: &str, pinned: bool| {
        let body = json!({"user_id": user, "session_id": sessions[user]});
        let path = format!(
            "/api/v2/video/call/default/comppin/{}",
            if pinned { "pin" } else { "unpin" }
        );
        let t = &t;
        async move {
            let (s, body) = t.call("POST", &path, Some(body)).await;
            assert_eq!(s, 200, "{body}");
        }
    };
    // From 2.5 s ben is pinned; from 5.5 s ann instead.
    let pins = async {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        pin("ben", true).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        pin("ann", true).await;
        pin("ben", false).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
    };
    let (_, file, _dir) = record(&t, "comppin", &mut events, &mut seen, "mp4", pins).await;
    for (second, who) in [(4.5, "ben"), (5.0, "ben"), (7.5, "ann"), (8.0, "ann")] {
        let picture = picture_at(&file, second).await;
        if colour_of(&picture) != who {
            keep(&file);
        }
        assert_eq!(colour_of(&picture), who, "at {second} s");
    }
    all_sent(publishers).await;
}

/// The pids and names of this process's children (a recorder's browser and display are).
fn children() -> Vec<(u32, String)> {
    children_of(std::process::id())
}

/// The pids and names of the processes `pid` started that still run.
fn children_of(pid: u32) -> Vec<(u32, String)> {
    let me = pid.to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (name) state ppid ...`: the name may hold spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let parent = stat[close + 1..].split_whitespace().nth(1);
        if parent == Some(me.as_str())
            && let Ok(pid) = stat[..open].trim().parse()
        {
            found.push((pid, stat[open + 1..close].to_owned()));
        }
    }
    found
}

#[tokio::test]
async fn an_audio_only_composite_is_one_mp3_of_every_voice_without_a_browser() {
    let CallOfTwo {
        t,
        mut events,
        publishers,
        mut seen,
        ..
    } = call_of_two("compaudio", json!({"recording": {"audio_only": true}}), 16).await;
    // Whatever the recorder starts is watched while it records.
    let watching = tokio::spawn(async {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..60 {
            seen.extend(children().into_iter().map(|(_, name)| name));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        seen
    });
    let (wall, file, _dir) = record(
        &t,
        "compaudio",
        &mut events,
        &mut seen,
        "mp3",
        eight_seconds(),
    )
    .await;
    let seen = watching.await.unwrap();
    assert!(
        seen.iter()
            .all(|name| !name.contains("chrom") && !name.contains("Xvfb")),
        "{seen:?}"
    );
    // The publishers are seen: the watch works.
    assert!(seen.contains("reel"), "{seen:?}");
    let name = file.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("composite_default_compaudio_audio_"),
        "{name}"
    );
    let probe = probe_json(&file, &[]).await;
    let streams = probe["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 1, "{probe}");
    assert_eq!(
        (
            streams[0]["codec_name"].as_str(),
            streams[0]["channels"].as_u64()
        ),
        (Some("mp3"), Some(2)),
        "{probe}"
    );
    let (errors, duration) = decode(&file).await;
    assert!(errors.is_empty(), "{errors}");
    assert!(
        (duration - wall).abs() <= 0.5,
        "{duration} s recorded of {wall:.2} s"
    );
    both_voices(&samples(&file).await, duration);
    all_sent(publishers).await;
}

/// Width and height of `file`'s video, and its pictures.
async fn video_size(file: &Path) -> (u64, u64, u64) {
    let probe = probe_json(file, &["-count_frames", "-select_streams", "v"]).await;
    let video = &probe["streams"][0];
    (
        video["width"].as_u64().unwrap(),
        video["height"].as_u64().unwrap(),
        video["nb_read_frames"].as_str().unwrap().parse().unwrap(),
    )
}

#[tokio::test]
async fn every_preset_layout_stylesheet_and_custom_app_records() {
    // The user's own page, painted in the background colour its options name; and a stylesheet
    // that turns the built-in layout's background green.
    let page = r#"<!doctype html><html><body style="margin:0"><div id="box" style="width:100vw;height:100vh"></div>
<script>
window.setupLayout = (config) => {
  const ok = config.source === "call" && config.call_id === "compopts";
  document.getElementById("box").style.background = ok ? config.options["video.background_color"] : "red";
  const ready = document.createElement("div");
  ready.id = "egress-ready-for-capture";
  document.body.append(ready);
};
</script></body></html>"#;
    let app = axum::Router::new()
        .route(
            "/app.html",
            axum::routing::get(move || async move { axum::response::Html(page) }),
        )
        .route(
            "/brand.css",
            axum::routing::get(|| async {
                (
                    [("content-type", "text/css")],
                    ".reel-layout { --reel-background-color: rgb(0, 200, 0); }",
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let CallOfTwo {
        t,
        mut events,
        publishers,
        mut seen,
        ..
    } = call_of_two("compopts", json!({}), 150).await;
    let one_second = || async { tokio::time::sleep(Duration::from_secs(1)).await };
    let mut recorded = async |recording: Value| {
        let (s, body) = t
            .call(
                "PATCH",
                "/api/v2/video/call/default/compopts",
                Some(json!({"settings_override": {"recording": recording}})),
            )
            .await;
        assert_eq!(s, 200, "{body}");
        let (_, file, dir) =
            record(&t, "compopts", &mut events, &mut seen, "mp4", one_second()).await;
        (file, dir)
    };
    let presets = [
        ("360p", 640, 360),
        ("480p", 854, 480),
        ("720p", 1280, 720),
        ("1080p", 1920, 1080),
        ("1440p", 2560, 1440),
        ("portrait-360x640", 360, 640),
        ("portrait-480x854", 480, 854),
        ("portrait-720x1280", 720, 1280),
        ("portrait-1080x1920", 1080, 1920),
        ("portrait-1440x2560", 1440, 2560),
    ];
    for (quality, width, height) in presets {
        let (file, _dir) = recorded(json!({"quality": quality, "layout": {"name": "grid"}})).await;
        let (w, h, pictures) = video_size(&file).await;
        assert_eq!((w, h), (width, height), "{quality}");
        assert!(pictures >= 25, "{quality}: {pictures} pictures");
    }
    // Every layout draws the participants (a red or a blue tile is in the middle row).
    for layout in ["grid", "spotlight", "single-participant", "mobile"] {
        let (file, _dir) = recorded(json!({"quality": "360p", "layout": {"name": layout}})).await;
        let picture = picture_at(&file, 0.5).await;
        let middle = &picture[18 * 64 * 3..19 * 64 * 3];
        let colours: HashSet<&str> = middle.chunks(3).map(colour_of).collect();
        assert!(
            colours.contains("ann") || colours.contains("ben"),
            "{layout}: {colours:?}"
        );
    }
    // The stylesheet changes the background; without it, it is black.
    let corner = |picture: &[u8]| picture[..3].to_vec();
    let (plain, _dir) = recorded(json!({"quality": "360p", "layout": {"name": "grid"}})).await;
    let (styled, _dir2) = recorded(json!({"quality": "360p", "layout": {
        "name": "grid", "external_css_url": format!("{site}/brand.css")}}))
    .await;
    let (plain, styled) = (
        corner(&picture_at(&plain, 0.5).await),
        corner(&picture_at(&styled, 0.5).await),
    );
    assert!(plain.iter().all(|&c| c < 30), "{plain:?}");
    assert!(
        styled[1] > 170 && styled[0] < 40 && styled[2] < 40,
        "{styled:?}"
    );
    // A custom app gets the call's configuration and draws the frame.
    let (custom, _dir) = recorded(json!({"quality": "360p", "layout": {
        "name": "custom", "external_app_url": format!("{site}/app.html"),
        "options": {"video.background_color": "#12ab34"}}}))
    .await;
    let middle = &picture_at(&custom, 0.5).await[(18 * 64 + 32) * 3..][..3];
    let want = [0x12, 0xab, 0x34];
    assert!(
        middle
            .iter()
            .zip(want)
            .all(|(&got, want)| got.abs_diff(want) <= 8),
        "{middle:?}"
    );
    publishers.iter().for_each(tokio::task::JoinHandle::abort);
}

/// This process's browsers (their main processes).
fn browsers() -> Vec<u32> {
    children()
        .into_iter()
        .filter(|(_, name)| name.contains("chrom"))
        .map(|(pid, _)| pid)
        .collect()
}

#[tokio::test]
async fn a_composite_starts_on_the_browser_standing_by_and_another_stands_by() {
    let recorders = reel::recorders::Recorders::all_standing_by();
    let CallOfTwo {
        t,
        mut events,
        publishers,
        mut seen,
        ..
    } = call_of_two_on(
        recorders,
        "compstandby",
        json!({"recording": {"quality": "720p", "layout": {"name": "grid"}}}),
        20,
        None,
    )
    .await;
    // A browser waits before any recording, started (its helper processes running).
    let waiting =
        crate::common::eventually(Duration::from_secs(30), "a browser standing by", || async {
            match browsers()[..] {
                [pid] if children_of(pid).len() >= 2 => Some(pid),
                _ => None,
            }
        })
        .await;
    // Time to connect to it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = async {
        // The page's browser, its spare (half a second in) and the next one standing by
        // (three seconds in).
        crate::common::eventually(Duration::from_secs(30), "three browsers", || async {
            (browsers().len() == 3).then_some(())
        })
        .await;
        assert!(browsers().contains(&waiting));
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let (wall, file, _dir) = record(&t, "compstandby", &mut events, &mut seen, "mp4", during).await;
    let (errors, audio_seconds) = decode(&file).await;
    assert!(errors.is_empty(), "{errors}");
    assert!(
        (audio_seconds - wall).abs() <= 0.5,
        "{audio_seconds} s of {wall:.2} s"
    );
    // The page was ready from the start (someone shown in its first half second), and both
    // are shown from two seconds in to the end.
    let pictures = pictures_as(&file, "rgb24", 3).await;
    let seen = |p: &Vec<u8>, who: &str| shown(p).get(who).is_some_and(|n| *n > 64);
    assert!(
        pictures[..15]
            .iter()
            .any(|p| seen(p, "ann") || seen(p, "ben")),
        "{:?}",
        shown(&pictures[14])
    );
    let both = |p: &Vec<u8>| seen(p, "ann") && seen(p, "ben");
    assert!(pictures[60..].iter().all(both));
    // The browser that stood by showed the page and ended with the recording (had the
    // recording started its own, that one would be left); the next one waits.
    let left = browsers();
    assert!(
        matches!(left[..], [pid] if pid != waiting),
        "{left:?} ({waiting} stood by)"
    );
    publishers.iter().for_each(tokio::task::JoinHandle::abort);
}

/// Kills the browser that shows the page (the first started; the recorder keeps a spare
/// beside it) with SIGKILL, as a crash would end it; how many browsers there were.
fn kill_the_page_browser() -> usize {
    let started = |pid: u32| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The 22nd field, counted after the name (which may hold spaces).
        let after = stat.rfind(')').map_or("", |close| &stat[close + 1..]);
        after
            .split_whitespace()
            .nth(19)
            .and_then(|t| t.parse().ok())
            .unwrap_or(u64::MAX)
    };
    let browsers = browsers();
    if let Some(first) = browsers
        .iter()
        .copied()
        .min_by_key(|&pid| (started(pid), pid))
    {
        let killed = std::process::Command::new("kill")
            .args(["-9", &first.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(killed, "cannot kill {first}");
    }
    browsers.len()
}

#[tokio::test]
async fn a_browser_killed_mid_recording_is_replaced_and_the_file_goes_on() {
    let CallOfTwo {
        t,
        mut events,
        publishers,
        mut seen,
        ..
    } = call_of_two(
        "compcrash",
        json!({"recording": {"quality": "360p", "layout": {"name": "grid"}}}),
        20,
    )
    .await;
    // At 3 s the browser is killed as a crash would end it; the recording goes on to 10 s.
    let crash = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        // The page's browser and its spare.
        assert_eq!(kill_the_page_browser(), 2, "{:?}", children());
        tokio::time::sleep(Duration::from_secs(7)).await;
    };
    let (wall, file, _dir) = record(&t, "compcrash", &mut events, &mut seen, "mp4", crash).await;
    // One valid file of the whole wall time, its sound whole.
    let (errors, audio_seconds) = decode(&file).await;
    assert!(errors.is_empty(), "{errors}");
    assert!(
        (audio_seconds - wall).abs() <= 0.5,
        "{audio_seconds} s of {wall:.2} s"
    );
    // The participants are shown but for a gap of at most 3 s, after which they are back.
    let shows = |picture: &Vec<u8>| {
        picture[18 * 64 * 3..19 * 64 * 3]
            .chunks(3)
            .any(|p| colour_of(p) != "nobody")
    };
    let pictures = pictures_as(&file, "rgb24", 3).await;
    let seconds = pictures.len() as f64 / 30.0;
    assert!((seconds - wall).abs() <= 0.5, "{seconds} s of {wall:.2} s");
    let (mut gap, mut longest) = (0, 0);
    for p in &pictures {
        gap = if shows(p) { 0 } else { gap + 1 };
        longest = longest.max(gap);
    }
    if longest > 90 || longest == 0 {
        keep(&file);
    }
    println!("the longest gap: {longest} pictures");
    assert!(longest > 0, "the browser's end left no gap");
    assert!(longest <= 90, "a gap of {longest} pictures");
    assert!(pictures[pictures.len() - 30..].iter().all(shows));
    // Nothing of the first browser is left.
    let left: Vec<_> = children()
        .into_iter()
        .filter(|(_, name)| name.contains("chrom") || name.contains("Xvfb"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    publishers.iter().for_each(tokio::task::JoinHandle::abort);
}

#[tokio::test]
async fn a_composite_cut_by_a_kill_is_finished_at_the_next_start() {
    use crate::crash::{KillOnDrop, call};
    let dir = tempfile::tempdir().unwrap();
    let clips = tempfile::tempdir().unwrap();
    crate::support::make_clips(clips.path());
    let port = crate::common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let envs = [
        ("REEL_LISTEN", format!("127.0.0.1:{port}")),
        ("REEL_API_KEY", crate::common::API_KEY.to_owned()),
        ("REEL_API_SECRET", API_SECRET.to_owned()),
        ("REEL_SESSION_GRACE", "1s".to_owned()),
    ];
    let mut reel = KillOnDrop(crate::common::serve(dir.path(), &envs, &[]));
    let http = reqwest::Client::new();
    let created = call(
        &http,
        &base,
        "POST",
        "/api/v2/video/call/default/compkill",
        Some(
            json!({"data": {"created_by_id": "alice", "settings_override": {
            "recording": {"mode": "auto-on", "quality": "360p"}}}}),
        ),
    )
    .await;
    assert!(created["call"].is_object(), "{created}");
    let keys = reel::auth::Keys::new(crate::common::API_KEY, API_SECRET);
    let watcher = keys.user_token(
        &reel::domain::UserId::parse("watcher").unwrap(),
        None,
        Some(Duration::from_secs(600)),
    );
    let mut events =
        EventStream::open(&format!("{base}/events/default/compkill?token={watcher}")).await;
    let mut publisher = tokio::process::Command::new(env!("CARGO_BIN_EXE_reel"))
        .arg("publish")
        .arg(format!("{base}/whip/default/compkill"))
        .arg("--video")
        .arg(coloured(clips.path(), "ann"))
        .arg("--audio")
        .arg(clips.path().join("opus.ogg"))
        .args(["--user", "ann", "--duration", "60s"])
        .env("REEL_API_SECRET", API_SECRET)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // auto-on: the session's first participant starts the composite.
    events
        .until("call.recording_started", Duration::from_secs(30))
        .await;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let reel_pid = reel.0.id().to_string();
    let helpers: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let close = stat.rfind(')')?;
            let parent = stat[close + 1..].split_whitespace().nth(1)?;
            (parent == reel_pid).then(|| stat[..stat.find('(')?].trim().parse().ok())?
        })
        .collect();
    assert!(
        helpers.len() >= 2,
        "the browser and its display: {helpers:?}"
    );
    // SIGKILL: nothing gets to finish.
    reel.0.kill().unwrap();
    let recorded = started.elapsed().as_secs_f64();
    reel.0.wait().unwrap();
    publisher.kill().await.unwrap();
    // The browser and display die with reel.
    crate::common::eventually(Duration::from_secs(10), "the helpers to end", || async {
        helpers
            .iter()
            .all(|pid| !Path::new(&format!("/proc/{pid}")).exists())
            .then_some(())
    })
    .await;

    let _reel = KillOnDrop(crate::common::serve(dir.path(), &envs, &[]));
    let path = "/api/v2/video/call/default/compkill/recordings";
    let listed =
        crate::common::eventually(Duration::from_secs(30), "the recovered file", || async {
            let list = call(&http, &base, "GET", path, None).await;
            list["recordings"]
                .as_array()
                .filter(|a| !a.is_empty())
                .cloned()
        })
        .await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let files = tempfile::tempdir().unwrap();
    let (name, file) = download(&http, &listed, files.path()).await.remove(0);
    assert!(
        name.starts_with("composite_default_compkill_") && name.ends_with(".mp4"),
        "{name}"
    );
    // It plays from its start to at most 2 s before the kill, in the participant's colour.
    let (errors, audio_seconds) = decode(&file).await;
    assert!(errors.is_empty(), "{errors}");
    let (_, _, pictures) = video_size(&file).await;
    let seconds = pictures as f64 / 30.0;
    println!("{seconds:.2} s of pictures, {audio_seconds:.2} s of sound, {recorded:.2} s recorded");
    assert!(
        seconds >= recorded - 2.5 && seconds <= recorded + 0.5,
        "{seconds:.2} s of {recorded:.2} s"
    );
    let picture = picture_at(&file, seconds - 0.5).await;
    assert!(
        picture.chunks(3).filter(|p| colour_of(p) == "ann").count() > 64 * 36 / 4,
        "ann is not shown"
    );
}

/// Calls the RealtimeKit-compatible recordings API at `path` with `body`; the answer's data.
async fn kit(t: &crate::common::TestServer, method: &str, path: &str, body: Value) -> Value {
    let res = t
        .http
        .request(
            method.parse().unwrap(),
            crate::track::kit_url(&t.base, path),
        )
        .bearer_auth(API_SECRET)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let v: Value = res.json().await.unwrap();
    assert!(status.is_success(), "{method} {path}: {status} {v}");
    v["data"].clone()
}

/// Waits until the recording `id` has `status`; its object.
async fn kit_status(
    t: &crate::common::TestServer,
    id: &str,
    status: &str,
    within: Duration,
) -> Value {
    crate::common::eventually(
        within,
        &format!("recording {id} to be {status}"),
        || async {
            let r = kit(t, "GET", &format!("/{id}"), Value::Null).await;
            (r["status"] == status).then_some(r)
        },
    )
    .await
}

/// Downloads `url` into `dir` as `name`.
async fn fetch(
    t: &crate::common::TestServer,
    url: &Value,
    dir: &Path,
    name: &str,
) -> std::path::PathBuf {
    let bytes = t
        .http
        .get(url.as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[tokio::test]
async fn realtimekit_composites_pause_stop_by_themselves_and_carry_a_watermark() {
    let hook = Receiver::start(0).await;
    let CallOfTwo { t, publishers, .. } = call_of_two_on(
        reel::recorders::Recorders::all(),
        "rtkcomp",
        json!({}),
        150,
        Some(hook.url()),
    )
    .await;
    // One of audio alone that ends by itself after a minute, beside the others.
    let sound = kit(
        &t,
        "POST",
        "",
        json!({"meeting_id": "rtkcomp", "allow_multiple_recordings": true, "max_seconds": 60,
               "video_config": {"export_file": false},
               "audio_config": {"codec": "MP3", "channel": "mono"}}),
    )
    .await;
    assert_eq!(sound["type"], "COMPOSITE", "{sound}");
    let sound_started = Instant::now();
    // A VP8 one with a green watermark at the top right, paused for 3 of its 9 seconds.
    let mark = "data:image/svg+xml;utf8,<svg xmlns='http://www.w3.org/2000/svg' width='8' height='8'><rect width='8' height='8' fill='%2300ff00'/></svg>";
    let video = kit(
        &t,
        "POST",
        "",
        json!({"meeting_id": "rtkcomp", "allow_multiple_recordings": true,
               "file_name_prefix": "meet",
               "video_config": {"codec": "VP8", "width": 640, "height": 360,
                   "watermark": {"url": mark, "size": {"width": 64, "height": 64}, "position": "right top"}}}),
    )
    .await;
    let id = video["id"].as_str().unwrap().to_owned();
    // A third that asks to be alone is refused while they run.
    let refused = t
        .http
        .post(crate::track::kit_url(&t.base, ""))
        .bearer_auth(API_SECRET)
        .json(&json!({"meeting_id": "rtkcomp"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    kit_status(&t, &id, "RECORDING", Duration::from_secs(30)).await;
    let active = kit(&t, "GET", "/active-recording/rtkcomp", Value::Null).await;
    assert!(
        active["id"] == id || active["id"] == sound["id"],
        "{active}"
    );
    let recording = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let paused = kit(&t, "PUT", &format!("/{id}"), json!({"action": "pause"})).await;
    assert_eq!(paused["status"], "PAUSED", "{paused}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let resumed = kit(&t, "PUT", &format!("/{id}"), json!({"action": "resume"})).await;
    assert_eq!(resumed["status"], "RECORDING", "{resumed}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    kit(&t, "PUT", &format!("/{id}"), json!({"action": "stop"})).await;
    let wall = recording.elapsed().as_secs_f64();
    let done = kit_status(&t, &id, "UPLOADED", Duration::from_secs(30)).await;
    // A webhook at each change of its status, in order.
    let statuses = crate::support::kit_statuses(&hook, Some(&id), 6).await;
    assert_eq!(
        statuses,
        [
            "INVOKED",
            "RECORDING",
            "PAUSED",
            "RECORDING",
            "UPLOADING",
            "UPLOADED"
        ]
    );
    assert!(
        done["output_file_name"]
            .as_str()
            .unwrap()
            .starts_with("meet_default_rtkcomp_"),
        "{done}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = fetch(&t, &done["download_url"], dir.path(), "video.webm").await;
    let (codecs, duration) = crate::support::probe(&file).await;
    assert_eq!(codecs, ["vp8", "vorbis"], "{done}");
    // The pause cut three seconds out; nothing else is missing.
    println!("{duration:.2} s of {wall:.2} s, 3 s of them paused");
    assert!(
        (duration - (wall - 3.0)).abs() <= 0.7,
        "{duration} s of {wall:.2} s"
    );
    let (errors, _) = decode(&file).await;
    assert!(errors.is_empty(), "{errors}");
    assert_eq!(video_size(&file).await.0, 640);
    // The watermark: the top right 64x64 pixels (of 640x360) are green.
    let picture = picture_at(&file, duration / 2.0).await;
    let at = |x: usize, y: usize| &picture[(y * 64 + x) * 3..][..3];
    for (x, y) in [(61, 2), (62, 4)] {
        let p = at(x, y);
        assert!(p[1] > 200 && p[0] < 60 && p[2] < 60, "({x}, {y}): {p:?}");
    }
    // Its audio file, AAC by default, beside it.
    let audio = fetch(&t, &done["audio_download_url"], dir.path(), "audio.m4a").await;
    assert_eq!(crate::support::probe(&audio).await.0, ["aac"]);
    // H.264 (the default) at another size, without an audio file: one MP4 of H.264 and AAC.
    let h264 = kit(
        &t,
        "POST",
        "",
        json!({"meeting_id": "rtkcomp", "allow_multiple_recordings": true,
               "video_config": {"width": 480, "height": 270},
               "audio_config": {"export_file": false}}),
    )
    .await;
    let h264_id = h264["id"].as_str().unwrap();
    kit_status(&t, h264_id, "RECORDING", Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    kit(&t, "PUT", &format!("/{h264_id}"), json!({"action": "stop"})).await;
    let done = kit_status(&t, h264_id, "UPLOADED", Duration::from_secs(30)).await;
    assert!(done["audio_download_url"].is_null(), "{done}");
    let file = fetch(&t, &done["download_url"], dir.path(), "video.mp4").await;
    assert_eq!(crate::support::probe(&file).await.0, ["h264", "aac"]);
    assert_eq!(video_size(&file).await.0, 480);

    // The audio-only one stopped by itself after its minute: one mono MP3 of that length.
    let stopped = kit_status(
        &t,
        sound["id"].as_str().unwrap(),
        "UPLOADED",
        Duration::from_secs(90),
    )
    .await;
    let lasted = sound_started.elapsed().as_secs_f64();
    assert!(stopped["download_url"].is_null(), "{stopped}");
    let mp3 = fetch(&t, &stopped["audio_download_url"], dir.path(), "sound.mp3").await;
    let probed = probe_json(&mp3, &[]).await;
    assert_eq!(probed["streams"][0]["codec_name"], "mp3");
    assert_eq!(probed["streams"][0]["channels"], 1);
    let seconds: f64 = probed["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        // An MP3 carries its encoder's delay and padding: some 50 ms more than it was given.
        (59.0..=61.0).contains(&seconds) && seconds <= lasted + 0.1,
        "{seconds} s"
    );
    publishers.iter().for_each(tokio::task::JoinHandle::abort);
}

#[tokio::test]
async fn a_call_whose_people_come_go_and_share_a_screen_is_recorded_as_it_went() {
    // ann (red, 440 Hz) and ben (blue, 660 Hz) from the start; carl (green, 880 Hz) joins
    // at 6 s; ann shares a (yellow) screen from 12 s to 20 s; ben leaves at 22 s; 30 s in all.
    let (t, clips) = recording_call(
        "comp30",
        json!({"recording": {"quality": "720p", "layout": {"name": "grid"}}}),
        None,
    )
    .await;
    let clips = clips.path();
    let whip = format!("{}/whip/default/comp30", t.base);
    let url = format!(
        "{}/events/default/comp30?token={}",
        t.base,
        t.user_token("watcher", None)
    );
    let mut events = EventStream::open(&url).await;
    let media = |user: &str, hz: u32| (coloured(clips, user), voice(clips, hz));
    let (ann, ben, carl, screen) = (
        media("ann", 440),
        media("ben", 660),
        media("carl", 880),
        media("screen", 1200),
    );
    let mut ann_p = publisher(&whip, (&ann.0, &ann.1), "ann", 60)
        .spawn()
        .unwrap();
    let mut ben_p = publisher(&whip, (&ben.0, &ben.1), "ben", 60)
        .spawn()
        .unwrap();
    for _ in 0..2 {
        events
            .until("call.session_participant_joined", Duration::from_secs(30))
            .await;
    }
    let mut seen = HashSet::new();
    let ben_pid = ben_p.id().unwrap();
    let timeline = async {
        tokio::time::sleep(Duration::from_secs(6)).await;
        let carl_p = publisher(&whip, (&carl.0, &carl.1), "carl", 60)
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_secs(6)).await;
        // The screen: ann's second session, silent but for its own (1200 Hz) sound.
        let share = format!("{whip}?source=screen");
        let screen_p = publisher(&share, (&screen.0, &screen.1), "ann", 8)
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
        // ben hangs up.
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &ben_pid.to_string()])
            .status();
        tokio::time::sleep(Duration::from_secs(8)).await;
        // carl goes with the stop.
        drop((carl_p, screen_p));
    };
    let (wall, file, _dir) = record(&t, "comp30", &mut events, &mut seen, "mp4", timeline).await;
    let _ = ben_p.wait().await;
    let _ = ann_p.kill().await;

    // The file: the wall time, 1280x720, H.264 + AAC, 30 pictures a second, no decode error.
    let (codecs, duration) = crate::support::probe(&file).await;
    assert_eq!(codecs, ["h264", "aac"]);
    assert!(
        (duration - wall).abs() <= 0.5,
        "{duration} s of {wall:.2} s"
    );
    let (w, h, pictures) = video_size(&file).await;
    assert_eq!((w, h), (1280, 720));
    assert!(
        pictures as f64 / duration >= 29.5,
        "{pictures} pictures in {duration} s"
    );
    let (errors, _) = decode(&file).await;
    assert!(errors.is_empty(), "{errors}");
    // The sources move: no run of more than 3 pictures alike.
    let small = small_frames(&file).await;
    let (mut run, mut longest) = (0, 0);
    for pair in small.windows(2) {
        run = if pair[0] == pair[1] { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    if longest > 3 {
        keep(&file);
    }
    assert!(longest <= 3, "{longest} pictures in a row alike");

    // Who is shown when (seconds into the file, away from the changes).
    for (second, present, absent) in [
        (3.0, &["ann", "ben"][..], &["carl", "screen"][..]),
        (10.0, &["ann", "ben", "carl"][..], &["screen"][..]),
        (16.0, &["screen"][..], &[][..]),
        (26.0, &["ann", "carl"][..], &["ben", "screen"][..]),
    ] {
        let counts = shown(&picture_at(&file, second).await);
        let count = |who: &str| counts.get(who).copied().unwrap_or(0);
        // A tile is hundreds of the 2304 pixels; the speaker's (green) border a few dozen.
        if present.iter().any(|p| count(p) < 150) || absent.iter().any(|a| count(a) > 50) {
            keep(&file);
        }
        for p in present {
            assert!(count(p) >= 150, "{p} at {second} s: {counts:?}");
        }
        for a in absent {
            assert!(count(a) <= 50, "{a} at {second} s: {counts:?}");
        }
    }
    // Who is heard when: each voice in nine tenths of its span at least (a tenth or so of
    // each four seconds holds its clip's loop), the others in none.
    let pcm = samples(&file).await;
    let heard = |from: f64, to: f64, hz: f64| {
        let part = &pcm[(from * 48_000.0) as usize..(to * 48_000.0) as usize];
        tone(part, hz)
    };
    for (from, to, voices, silent) in [
        (1.0, 5.0, &[440.0, 660.0][..], &[880.0][..]),
        (9.0, 11.5, &[440.0, 660.0, 880.0][..], &[1200.0][..]),
        (15.5, 19.0, &[440.0, 660.0, 880.0, 1200.0][..], &[][..]),
        (
            24.0,
            duration - 0.5,
            &[440.0, 880.0][..],
            &[660.0, 1200.0][..],
        ),
    ] {
        for hz in voices {
            let share = heard_share(&pcm, *hz, from, to);
            if share < 0.9 {
                keep(&file);
            }
            assert!(share >= 0.9, "{hz} Hz from {from} to {to} s: in {share:.2}");
        }
        for hz in silent {
            let s = heard(from, to, *hz);
            assert!(s < 0.005, "{hz} Hz from {from} to {to} s: {s}");
        }
    }
}
/// The times (s) at which `levels` (one a `step` apart) rise past `threshold`.
fn onsets(levels: &[f64], threshold: f64, step: f64) -> Vec<f64> {
    levels
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] <= threshold && w[1] > threshold)
        .map(|(i, _)| (i + 1) as f64 * step)
        .collect()
}

#[tokio::test]
async fn every_flash_and_its_beep_are_recorded_together() {
    let (t, clips) = recording_call(
        "compsync",
        json!({"recording": {"quality": "360p", "layout": {"name": "single-participant"}}}),
        None,
    )
    .await;
    // A camera that flashes white for 0.1 s every second, and a microphone that beeps (1 kHz)
    // at the same moments.
    let (flash, beep) = (
        clips.path().join("flash.ivf"),
        clips.path().join("beep.ogg"),
    );
    let ffmpeg = |args: &[&str], out: &Path| {
        let made = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-f", "lavfi", "-i"])
            .args(args)
            .args(["-t", "6", "-y"])
            .arg(out)
            .status()
            .unwrap();
        assert!(made.success());
    };
    ffmpeg(
        &[
            "color=c=black:s=320x240:r=30,drawbox=w=320:h=240:color=white:t=fill:enable='between(t\\,0.4\\,0.5)+between(t\\,1.9\\,2.0)+between(t\\,2.6\\,2.7)+between(t\\,4.5\\,4.6)+between(t\\,5.2\\,5.3)'",
            "-c:v",
            "libvpx",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-b:v",
            "300k",
            "-g",
            "1",
        ],
        &flash,
    );
    ffmpeg(
        &[
            "aevalsrc=0.125*sin(2*PI*1000*t)*(between(t\\,0.4\\,0.5)+between(t\\,1.9\\,2.0)+between(t\\,2.6\\,2.7)+between(t\\,4.5\\,4.6)+between(t\\,5.2\\,5.3)):s=48000",
            "-c:a",
            "libopus",
            "-b:a",
            "64k",
            "-frame_duration",
            "20",
        ],
        &beep,
    );
    let url = format!(
        "{}/events/default/compsync?token={}",
        t.base,
        t.user_token("watcher", None)
    );
    let mut events = EventStream::open(&url).await;
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_reel"));
    cmd.arg("publish")
        .arg(format!("{}/whip/default/compsync", t.base))
        .arg("--video")
        .arg(&flash)
        .arg("--audio")
        .arg(&beep)
        .args(["--user", "ann", "--duration", "30s"])
        .env_remove("REEL_TOKEN")
        .env("REEL_API_SECRET", API_SECRET)
        .kill_on_drop(true);
    let publisher = tokio::spawn(async move { stdout_of(&mut cmd, "reel publish").await });
    events
        .until("call.session_participant_joined", Duration::from_secs(30))
        .await;
    let mut seen = HashSet::new();
    let (_, file, _dir) = record(
        &t,
        "compsync",
        &mut events,
        &mut seen,
        "mp4",
        eight_seconds(),
    )
    .await;
    let brightness: Vec<f64> = small_frames(&file)
        .await
        .iter()
        .map(|p| p.iter().map(|&v| f64::from(v)).sum::<f64>() / p.len() as f64)
        .collect();
    // A flash first shows in the picture captured after it: half a frame earlier on average.
    // The file's first half second is left out: there the first picture stands in for the
    // frames before it, and the mix begins wherever a beep was.
    let flashes: Vec<f64> = onsets(&brightness, 128.0, 1.0 / 30.0)
        .into_iter()
        .map(|t| t - 0.5 / 30.0)
        .filter(|&t| t > 0.5)
        .collect();
    let loudness: Vec<f64> = samples(&file)
        .await
        .chunks(48)
        .map(|c| (c.iter().map(|&s| f64::from(s * s)).sum::<f64>() / c.len() as f64).sqrt())
        .collect();
    let beeps = onsets(&loudness, 0.05, 0.001);
    println!("flashes {flashes:.3?}\nbeeps {beeps:.3?}");
    let apart: Vec<f64> = flashes
        .iter()
        .filter_map(|f| {
            beeps
                .iter()
                .map(|b| b - f)
                .min_by(|a, b| a.abs().total_cmp(&b.abs()))
        })
        .collect();
    println!("beep after flash (s): {apart:.3?}");
    assert!(apart.len() >= 5, "{} flashes paired", apart.len());
    if apart.iter().any(|d| d.abs() > 0.040) {
        keep(&file);
    }
    assert!(apart.iter().all(|d| d.abs() <= 0.040), "{apart:.3?}");
    publisher.abort();
}

#[tokio::test]
async fn a_stop_while_the_browser_restarts_ends_the_recording_as_any_stop() {
    let CallOfTwo {
        t,
        mut events,
        publishers,
        mut seen,
        ..
    } = call_of_two(
        "compstop",
        json!({"recording": {"quality": "360p", "layout": {"name": "grid"}}}),
        20,
    )
    .await;
    // The browser dies at 2 s, and the stop comes while the spare takes over.
    let crash = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        // The page's browser and its spare.
        assert_eq!(kill_the_page_browser(), 2, "{:?}", children());
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let (wall, file, _dir) = record(&t, "compstop", &mut events, &mut seen, "mp4", crash).await;
    let seen = events
        .until("call.recording_ready", Duration::from_secs(20))
        .await;
    assert!(
        seen.iter().all(|e| e["type"] != "call.recording_failed"),
        "{seen:?}"
    );
    let (errors, seconds) = decode(&file).await;
    assert!(errors.is_empty(), "{errors}");
    assert!((seconds - wall).abs() <= 0.5, "{seconds} s of {wall:.2} s");
    publishers.iter().for_each(tokio::task::JoinHandle::abort);
}
