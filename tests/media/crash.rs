//! A `kill -9` of reel in the middle of raw, individual, track and broadcast recordings: the
//! next start finishes what was written and uploads it.

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
    let mut publisher = tokio::process::Command::new(env!("CARGO_BIN_EXE_reel"))
        .arg("publish")
        .arg(format!("{base}/whip/default/crash"))
        .arg("--video")
        .arg(clips.path().join("vp8.ivf"))
        .arg("--audio")
        .arg(clips.path().join("opus.ogg"))
        .args(["--user", "dave", "--duration", "60s"])
        .env("REEL_API_SECRET", API_SECRET)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // And a recorded H.264 broadcast, whose file is an MP4 written in fragments.
    let token = http
        .post(format!("{base}/api/publish_token"))
        .bearer_auth(API_SECRET)
        .json(&json!({"label": "crash", "streams": [{"streamName": "crashcast"}], "record": true}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["data"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut broadcaster = tokio::process::Command::new(env!("CARGO_BIN_EXE_reel"))
        .arg("publish")
        .arg(format!("{base}/whip/broadcast/crashcast"))
        .arg("--video")
        .arg(clips.path().join("h264.h264"))
        .arg("--audio")
        .arg(clips.path().join("opus.ogg"))
        .args(["--token", &token, "--duration", "60s"])
        .env_remove("REEL_API_SECRET")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
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
