//! A `kill -9` of reel in the middle of raw, individual, track, composite and broadcast
//! recordings: the next start finishes what was written and uploads it.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{API_KEY, API_SECRET, eventually, free_port, serve};
use crate::support::{assert_index_in_front, decode, download, make_clips, probe, read_archive};
use crate::track::start_track;

/// Calls the API of the server at `base` as the server.
pub async fn call(
    http: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Value {
    let token = reel::auth::Keys::new(API_KEY, API_SECRET).server_token();
    let mut req = http
        .request(
            method.parse().unwrap(),
            format!("{base}{path}?api_key={API_KEY}"),
        )
        .header("authorization", token)
        .header("stream-auth-type", "jwt");
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap().json().await.unwrap()
}

/// `reel publish` to `url` for a minute: the clip `video` and the Opus clip of `clips`, with
/// `extra` arguments (who publishes); killed when dropped.
fn spawn_publisher(
    url: String,
    (clips, video): (&Path, &str),
    extra: &[&str],
) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_reel"))
        .arg("publish")
        .arg(url)
        .arg("--video")
        .arg(clips.join(video))
        .arg("--audio")
        .arg(clips.join("opus.ogg"))
        .args(extra)
        .args(["--duration", "60s"])
        .env("REEL_API_SECRET", API_SECRET)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// A publish token of the server at `base` that records broadcasts of `stream`.
async fn recording_token(http: &reqwest::Client, base: &str, stream: &str) -> String {
    http.post(format!("{base}/api/publish_token"))
        .bearer_auth(API_SECRET)
        .json(&json!({"label": stream, "streams": [{"streamName": stream}], "record": true}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["data"]["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn files_written_before_a_kill_are_finished_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let clips = tempfile::tempdir().unwrap();
    make_clips(clips.path());
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let envs = [
        ("REEL_LISTEN", format!("127.0.0.1:{port}")),
        ("REEL_API_KEY", API_KEY.to_owned()),
        ("REEL_API_SECRET", API_SECRET.to_owned()),
        ("REEL_SESSION_GRACE", "1s".to_owned()),
    ];
    let mut reel = KillOnDrop(serve(dir.path(), &envs, &[]));
    let http = reqwest::Client::new();
    let created = call(
        &http,
        &base,
        "POST",
        "/api/v2/video/call/default/crash",
        Some(
            json!({"data": {"created_by_id": "alice", "settings_override": {
            "raw_recording": {"mode": "auto-on"},
            "individual_recording": {"mode": "auto-on"}}}}),
        ),
    )
    .await;
    assert!(created["call"].is_object(), "{created}");
    let mut publisher = spawn_publisher(
        format!("{base}/whip/default/crash"),
        (clips.path(), "vp8.ivf"),
        &["--user", "dave"],
    );
    // And a recorded H.264 broadcast, whose file is an MP4 written in fragments.
    let token = recording_token(&http, &base, "crashcast").await;
    let mut broadcaster = spawn_publisher(
        format!("{base}/whip/broadcast/crashcast"),
        (clips.path(), "h264.h264"),
        &["--token", &token],
    );
    let started = Instant::now();
    start_track(&http, &base, json!({"meeting_id": "crash"})).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    // SIGKILL: nothing gets to finish.
    reel.0.kill().unwrap();
    let recorded = started.elapsed().as_secs_f64();
    reel.0.wait().unwrap();
    publisher.kill().await.unwrap();
    broadcaster.kill().await.unwrap();

    let _reel = KillOnDrop(serve(dir.path(), &envs, &[]));
    let path = "/api/v2/video/call/default/crash/recordings";
    let listed = eventually(Duration::from_secs(20), "the recovered files", || async {
        let list = call(&http, &base, "GET", path, None).await;
        list["recordings"]
            .as_array()
            .filter(|a| a.len() >= 3)
            .cloned()
    })
    .await;
    let files = tempfile::tempdir().unwrap();
    let mut checked = Vec::new();
    for (name, file) in download(&http, &listed, files.path()).await {
        if name.ends_with(".mkv") {
            check_video(&file, recorded).await;
            checked.push("individual");
        } else if name.ends_with(".webm") {
            assert!(name.starts_with("default_dave_"), "{name}");
            check_audio(&file, recorded).await;
            checked.push("track");
        } else {
            assert!(
                name.starts_with("raw_default_crash_") && name.ends_with(".tar.gz"),
                "{name}"
            );
            check_archive(&file, recorded).await;
            checked.push("raw");
        }
    }
    checked.sort_unstable();
    assert_eq!(checked, ["individual", "raw", "track"]);

    let path = "/api/v2/video/call/broadcast/crashcast/recordings";
    let listed = eventually(
        Duration::from_secs(20),
        "the recovered broadcast",
        || async {
            let list = call(&http, &base, "GET", path, None).await;
            list["recordings"]
                .as_array()
                .filter(|a| !a.is_empty())
                .cloned()
        },
    )
    .await;
    let [(name, file)] = download(&http, &listed, files.path())
        .await
        .try_into()
        .unwrap();
    assert!(
        name.starts_with("crashcast_main_") && name.ends_with(".mp4"),
        "{name}"
    );
    let (codecs, duration) = probe(&file).await;
    assert_eq!(codecs, ["opus", "h264"]);
    println!("{name}: {duration:.3} s of {recorded:.3} s");
    assert!(
        duration >= recorded - 2.5 && duration <= recorded,
        "{duration:.3} s of {recorded:.3} s"
    );
    let (errors, _) = decode(&file).await;
    assert!(errors.is_empty(), "{errors}");
    // Finished: rewritten with its index in front.
    assert_index_in_front(&file);
}

/// The file plays, from its start to at most 2 s before the kill.
async fn check_video(file: &Path, recorded: f64) {
    let (codecs, duration) = probe(file).await;
    assert_eq!(codecs, ["opus", "vp8"]);
    println!("{}: {duration:.3} s of {recorded:.3} s", file.display());
    assert!(
        duration >= recorded - 2.5 && duration <= recorded,
        "{duration:.3} s of {recorded:.3} s"
    );
    let (errors, _) = decode(file).await;
    assert!(errors.is_empty(), "{errors}");
}

/// The WebM plays, from its start to at most 2 s before the kill (it started a little after
/// the others, once the call's session was live).
async fn check_audio(file: &Path, recorded: f64) {
    let (codecs, duration) = probe(file).await;
    assert_eq!(codecs, ["opus"]);
    println!("{}: {duration:.3} s of {recorded:.3} s", file.display());
    assert!(
        duration >= recorded - 3.0 && duration <= recorded,
        "{duration:.3} s of {recorded:.3} s"
    );
    let (errors, audio) = decode(file).await;
    assert!(errors.is_empty(), "{errors}");
    assert!((audio - duration).abs() < 0.1, "{audio} s decoded");
}

/// Every dump reads back whole, and the audio covers all but the last 2 s before the kill.
async fn check_archive(file: &Path, recorded: f64) {
    let read = read_archive(file).await;
    let participants = read["participants"].as_array().unwrap();
    assert_eq!(participants.len(), 1, "{read}");
    let audio = &participants[0]["segments"]["audio"][0];
    let packets = audio["dump"]["rtp"].as_f64().unwrap();
    println!("{}: {packets} audio packets", file.display());
    // 50 packets a second.
    assert!(packets / 50.0 >= recorded - 2.5, "{audio}");
    // The metadata was corrected to what the dumps hold.
    let segments = ["audio", "video"]
        .iter()
        .flat_map(|k| participants[0]["segments"][k].as_array().unwrap());
    for s in segments {
        assert_eq!(s["rtp_packets"], s["dump"]["rtp"], "{s}");
        assert_eq!(s["last_rtp_rtp_timestamp"], s["dump"]["last_ts"], "{s}");
    }
}

/// A child process killed when dropped (when the test ends or fails).
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The processes whose command line names `dir`: what reel started for its recordings there
/// (Chromium and Xvfb are given paths under the data directory).
fn helpers_of(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&needle) && !c.contains(" serve"))
        .collect()
}

#[tokio::test]
async fn twenty_kills_at_random_moments_lose_nothing() {
    const KILLS: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let clips = tempfile::tempdir().unwrap();
    make_clips(clips.path());
    let hook = crate::common::Receiver::start(0).await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let envs = [
        ("REEL_LISTEN", format!("127.0.0.1:{port}")),
        ("REEL_API_KEY", API_KEY.to_owned()),
        ("REEL_API_SECRET", API_SECRET.to_owned()),
        ("REEL_SESSION_GRACE", "1s".to_owned()),
        ("REEL_WEBHOOK_URL", hook.url()),
        ("REEL_RETRY_FIRST", "100ms".to_owned()),
        ("REEL_RETRY_MAX", "1s".to_owned()),
    ];
    let mut reel = KillOnDrop(serve(dir.path(), &envs, &[]));
    let http = reqwest::Client::new();
    // Every kind of recording: raw, individual and composite start with each session, a track
    // recording is asked for in every other one, and a broadcast is recorded beside.
    let created = call(
        &http,
        &base,
        "POST",
        "/api/v2/video/call/default/chaos",
        Some(
            json!({"data": {"created_by_id": "alice", "settings_override": {
            "recording": {"mode": "auto-on", "quality": "360p"},
            "raw_recording": {"mode": "auto-on"},
            "individual_recording": {"mode": "auto-on"}}}}),
        ),
    )
    .await;
    assert!(created["call"].is_object(), "{created}");
    let token = recording_token(&http, &base, "chaoscast").await;
    let mut random = 0x9e37_79b9_7f4a_7c15_u64;
    // Each cycle: when it started, and when reel was killed.
    let mut cycles = Vec::new();
    for i in 0..KILLS {
        let started = reel::domain::Timestamp::now();
        let user = format!("p{i}");
        let mut participant = spawn_publisher(
            format!("{base}/whip/default/chaos"),
            (clips.path(), "vp8.ivf"),
            &["--user", &user],
        );
        let mut broadcaster = spawn_publisher(
            format!("{base}/whip/broadcast/chaoscast"),
            (clips.path(), "h264.h264"),
            &["--token", &token],
        );
        if i % 2 == 1 {
            start_track(&http, &base, json!({"meeting_id": "chaos"})).await;
        }
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        let wait = Duration::from_millis(500 + random % 5_500);
        tokio::time::sleep(wait).await;
        // SIGKILL: nothing gets to finish.
        reel.0.kill().unwrap();
        reel.0.wait().unwrap();
        let killed = reel::domain::Timestamp::now();
        println!("kill {i} after {:.2} s", wait.as_secs_f64());
        cycles.push((started, killed));
        participant.kill().await.unwrap();
        broadcaster.kill().await.unwrap();
        // What reel started dies with it.
        eventually(
            Duration::from_secs(5),
            "helpers to die with reel",
            || async { helpers_of(dir.path()).is_empty().then_some(()) },
        )
        .await;
        reel = KillOnDrop(serve(dir.path(), &envs, &[]));
    }

    // The last start finishes every recording: each ready, or failed with a reason.
    let store = reel::store::Store::open(&format!(
        "sqlite://{}",
        dir.path().join("data/reel.db").display()
    ))
    .await
    .unwrap();
    let recordings = eventually(
        Duration::from_secs(60),
        "every recording finished",
        || async {
            let filter = reel::store::RecordingFilter {
                types: reel::domain::RecordingType::ALL.to_vec(),
                limit: 1000,
                ..Default::default()
            };
            let (all, _) = store.find_recordings(&filter).await.unwrap();
            all.iter().all(|r| r.state.is_final()).then_some(all)
        },
    )
    .await;
    let mut states = std::collections::BTreeMap::<String, (u32, u32)>::new();
    for r in &recordings {
        let counts = states.entry(r.recording_type.to_string()).or_default();
        if r.state == reel::domain::RecordingState::Ready {
            counts.0 += 1;
        } else {
            counts.1 += 1;
            println!("{} {} failed: {:?}", r.recording_type, r.id, r.error);
            assert!(r.error.as_deref().is_some_and(|e| !e.is_empty()), "{r:?}");
        }
    }
    println!("ready and failed, by type: {states:?}");
    for kind in ["raw", "individual", "composite", "track", "broadcast"] {
        assert!(
            states.get(kind).is_some_and(|c| c.0 > 0),
            "no {kind} ready: {states:?}"
        );
    }
    // Each reported once: ready (once per file) or failed.
    eventually(
        Duration::from_secs(30),
        "every outcome reported",
        || async {
            let got = hook.received();
            let reported = |id: &str| {
                got.iter()
                    .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
                    .filter(|v| v["egress_id"] == id)
                    .filter(|v| v["type"] == "call.recording_failed")
                    .count()
            };
            recordings
                .iter()
                .all(|r| {
                    let failed = reported(r.id.as_str());
                    match r.state {
                        reel::domain::RecordingState::Failed => failed == 1,
                        _ => failed == 0,
                    }
                })
                .then_some(())
        },
    )
    .await;

    // Every file plays, from its start to at most 2 s before the kill that ended it.
    let files = tempfile::tempdir().unwrap();
    let mut listed = Vec::new();
    for call_path in ["default/chaos", "broadcast/chaoscast"] {
        let path = format!("/api/v2/video/call/{call_path}/recordings");
        let list = call(&http, &base, "GET", &path, None).await;
        listed.extend(list["recordings"].as_array().unwrap().iter().cloned());
    }
    let at = |v: &Value| reel::domain::Timestamp::from_unix_nanos(v.as_i64().unwrap());
    for entry in &listed {
        let [(name, file)] = download(&http, std::slice::from_ref(entry), files.path())
            .await
            .try_into()
            .unwrap();
        let start = at(&entry["start_time"]);
        let Some(&(_, killed)) = cycles
            .iter()
            .find(|(from, to)| *from <= start && start <= *to)
        else {
            continue;
        };
        let lived = killed.since(start).as_secs_f64();
        let length = if name.ends_with(".tar.gz") {
            let read = read_archive(&file).await;
            read["participants"][0]["segments"]["audio"][0]["dump"]["rtp"]
                .as_f64()
                .unwrap_or(0.0)
                / 50.0
        } else {
            let (errors, _) = decode(&file).await;
            assert!(errors.is_empty(), "{name}: {errors}");
            probe(&file).await.1
        };
        println!("{name}: {length:.2} s of {lived:.2} s");
        assert!(
            length >= lived - 2.5,
            "{name}: {length:.2} s of {lived:.2} s"
        );
    }
}
