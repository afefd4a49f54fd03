//! The raw recorder, fed by real WebRTC publishers, checked with an independent reader.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{API_SECRET, eventually, listed_recordings, python, stdout_of};
use crate::support::{
    browsers, decode, download, probe, read_archive, recording_call, script, tally_bus, walk,
};

#[tokio::test]
async fn raw_archive_of_two_publishers_reads_back_whole() {
    let (t, clips) = recording_call("raw", json!({}), None).await;
    let cid = reel::domain::Cid::parse("default:raw").unwrap();
    let publisher = tokio::process::Command::new(env!("CARGO_BIN_EXE_reel"))
        .arg("publish")
        .arg(format!("{}/whip/default/raw", t.base))
        .arg("--video")
        .arg(clips.path().join("vp8.ivf"))
        .arg("--audio")
        .arg(clips.path().join("opus.ogg"))
        .args(["-n", "2", "--duration", "5s", "--format", "json"])
        .env_remove("REEL_TOKEN")
        .env("REEL_API_SECRET", API_SECRET)
        .output();
    let publishing = tokio::spawn(publisher);
    let services = &t.server().services;
    eventually(Duration::from_secs(10), "the call session", || async {
        services.active_session(&cid).await.unwrap()
    })
    .await;
    let (s, body) = t
        .call(
            "POST",
            "/api/v2/video/call/default/raw/recordings/raw/start",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let out = publishing.await.unwrap().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The session ends a second after the publishers left, and with it the recording.
    let listed = listed_recordings(&t, "raw").await;
    assert_eq!(listed.len(), 1, "one archive per call session: {listed:?}");
    let filename = listed[0]["filename"].as_str().unwrap();
    assert!(
        filename.starts_with("raw_default_raw_") && filename.ends_with(".tar.gz"),
        "{filename}"
    );
    let dir = tempfile::tempdir().unwrap();
    let archive = download(&t.http, &listed, dir.path()).await.remove(0).1;
    let read = read_archive(&archive).await;
    // Once packed, no loose dump is left behind in reel's directories.
    let loose = walk(t.dir.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rtpdump"))
        .collect::<Vec<_>>();
    assert!(loose.is_empty(), "{loose:?}");

    let top = filename.trim_end_matches(".tar.gz");
    let participants = read["participants"].as_array().unwrap();
    let mut users: Vec<&str> = participants
        .iter()
        .map(|p| p["participant_id"].as_str().unwrap())
        .collect();
    users.sort_unstable();
    assert_eq!(users, ["publisher-1", "publisher-2"]);
    for p in participants {
        assert_eq!(p["call_type"], "default");
        assert_eq!(p["call_id"], "raw");
        assert!(p["call_start_time"].as_str().unwrap().ends_with('Z'));
        let user = p["participant_id"].as_str().unwrap();
        let session = p["user_session_id"].as_str().unwrap();
        let metadata = format!("{top}/{user}/{session}/{session}_timing_metadata.json");
        assert!(
            read["entries"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e == &metadata),
            "{metadata} in {}",
            read["entries"]
        );
        for (kind, codec, rtpmap) in [
            ("audio", "audio/opus", "opus/48000/2"),
            ("video", "video/VP8", "VP8/90000"),
        ] {
            let segments = p["segments"][kind].as_array().unwrap();
            assert_eq!(segments.len(), 1, "{user} {kind}: {segments:?}");
            let seg = &segments[0];
            let dump = &seg["dump"];
            assert_eq!(seg["codec"], codec);
            // The independent reader finds every packet the metadata counts, from one SSRC.
            assert_eq!(dump["rtp"], seg["rtp_packets"], "{seg}");
            assert!(dump["rtp"].as_u64().unwrap() > 50, "{seg}");
            assert_eq!(dump["ssrcs"], serde_json::json!([seg["ssrc"]]));
            assert!(
                dump["sdp_rtpmap"].as_str().unwrap().ends_with(rtpmap),
                "{dump}"
            );
            assert_eq!(dump["folder"], true);
            // The dump holds exactly the sender reports the metadata knows of.
            assert_eq!(
                dump["rtcp"].as_u64().unwrap() > 0,
                seg.get("first_rtcp_ntp_timestamp").is_some(),
                "{seg}"
            );
            let duration = seg["unix_duration_ms"].as_i64().unwrap();
            assert!((1000..6000).contains(&duration), "{seg}");
            assert!(seg["drift_ms"].as_i64().unwrap().abs() < 200, "{seg}");
        }
        let video = &p["segments"]["video"][0];
        assert!(
            video["first_key_frame_offset_ms"].as_i64().is_some(),
            "{video}"
        );
        // The clips are 320x240.
        assert_eq!(
            video["max_frame_dimension"],
            serde_json::json!({"width": 320, "height": 240}),
            "{video}"
        );
        // The publisher reports on video every second (on audio every 5 s, past this call).
        assert!(video["dump"]["rtcp"].as_u64().unwrap() >= 2, "{video}");
        assert!(video["last_rtcp_ntp_timestamp"].as_i64().unwrap() > 0);
        assert_eq!(p["segments"]["audio"][0]["track_type"], "TRACK_TYPE_AUDIO");
        assert_eq!(video["track_type"], "TRACK_TYPE_VIDEO");
    }

    // `reel raw-recording list-tracks` reads reel's own archive: each publisher's microphone
    // and camera, one segment each.
    let out = stdout_of(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_reel"))
            .args([
                "raw-recording",
                "list-tracks",
                "--format",
                "json",
                "--input-file",
            ])
            .arg(&archive),
        "list-tracks",
    )
    .await;
    let listing: serde_json::Value = serde_json::from_str(&out).unwrap();
    let listed: Vec<(&str, &str, &str, i64)> = listing["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["userId"].as_str().unwrap(),
                t["trackKind"].as_str().unwrap(),
                t["codec"].as_str().unwrap(),
                t["segmentCount"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("publisher-1", "audio", "audio/opus", 1),
            ("publisher-1", "video", "video/VP8", 1),
            ("publisher-2", "audio", "audio/opus", 1),
            ("publisher-2", "video", "video/VP8", 1),
        ]
    );

    // extract-audio and extract-video turn it into files that last as long as each track's
    // RTP timestamps say in the metadata, and decode cleanly.
    let out_dir = dir.path().join("extracted");
    for command in ["extract-audio", "extract-video"] {
        let out = stdout_of(
            tokio::process::Command::new(env!("CARGO_BIN_EXE_reel"))
                .args(["raw-recording", command, "--format", "json", "--input-file"])
                .arg(&archive)
                .arg("--output")
                .arg(&out_dir),
            command,
        )
        .await;
        let written: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        assert_eq!(written.len(), 2, "{out}");
        for w in written {
            let path = std::path::PathBuf::from(w["path"].as_str().unwrap());
            let kind = w["kind"].as_str().unwrap();
            let p = participants
                .iter()
                .find(|p| p["user_session_id"] == w["session_id"])
                .unwrap();
            let span = p["segments"][kind][0]["rtp_duration_ms"].as_f64().unwrap() / 1000.0;
            let (codecs, duration) = probe(&path).await;
            let (errors, _) = decode(&path).await;
            println!(
                "{}: {codecs:?} {duration:.3} s; the metadata spans {span:.3} s",
                path.display()
            );
            assert_eq!(codecs, [if kind == "audio" { "opus" } else { "vp8" }]);
            assert!(errors.is_empty(), "{errors}");
            // A file also holds its last frame's duration.
            assert!((duration - span).abs() <= 0.1, "{duration} against {span}");
        }
    }
    let left: Vec<_> = walk(&out_dir)
        .into_iter()
        .filter(|p| p.extension().is_none_or(|e| e != "mkv"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn a_chromium_call_with_a_camera_switch_gives_segments_ffmpeg_can_read() {
    let (t, _clips) =
        recording_call("raw20", json!({"raw_recording": {"mode": "auto-on"}}), None).await;
    let received = tally_bus(&t, &reel::domain::Cid::parse("default:raw20").unwrap());
    // Alice (VP8) and Bob (H.264) talk for 20 s; Alice switches cameras after 8 s.
    let users = [("alice", "VP8"), ("bob", "H264")];
    browsers(&t, "raw20", &users, 20, &["--switch-camera", "0:8"]).await;
    let received = received.await.unwrap();

    let listed = listed_recordings(&t, "raw20").await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let dir = tempfile::tempdir().unwrap();
    let archive = download(&t.http, &listed, dir.path()).await.remove(0).1;
    let read = read_archive(&archive).await;
    let mut expected = std::collections::HashMap::new();
    for p in read["participants"].as_array().unwrap() {
        let user = p["participant_id"].as_str().unwrap();
        let (audio, video) = (
            p["segments"]["audio"].as_array().unwrap(),
            p["segments"]["video"].as_array().unwrap(),
        );
        // The switch made a second video segment in the same participant session.
        let want = if user == "alice" { 2 } else { 1 };
        assert_eq!((audio.len(), video.len()), (1, want), "{user}: {p}");
        for seg in audio.iter().chain(video) {
            println!("{user} {}: {}", seg["base_filename"], seg["dump"]);
            assert_eq!(seg["dump"]["rtp"], seg["rtp_packets"], "{seg}");
            assert_eq!(seg["dump"]["repeated"], 0, "no packet twice: {seg}");
            assert_eq!(seg["dump"]["ssrcs"].as_array().unwrap().len(), 1, "{seg}");
            // Every packet reel received is in the archive.
            let track = seg["track_id"].as_str().unwrap();
            assert_eq!(seg["dump"]["rtp"], received.packets[track], "{seg}");
            let codec = seg["codec"].as_str().unwrap().to_ascii_lowercase();
            let seconds = seg["unix_duration_ms"].as_f64().unwrap() / 1000.0;
            expected.insert(
                seg["base_filename"].as_str().unwrap().to_owned(),
                (codec.rsplit('/').next().unwrap().to_owned(), seconds),
            );
        }
        if user == "alice" {
            let first = video[0]["unix_duration_ms"].as_f64().unwrap() / 1000.0;
            assert!((6.5..13.0).contains(&first), "switched after {first} s");
        }
    }
    assert_eq!(expected.len(), 5, "{expected:?}");

    // ffmpeg reads every segment from its dump and SDP, replayed over UDP.
    let converted = tempfile::tempdir().unwrap();
    let text = stdout_of(
        tokio::process::Command::new(python())
            .arg(script("replay_segments.py"))
            .arg(&archive)
            .arg(converted.path()),
        "the replay into ffmpeg",
    )
    .await;
    let results: Vec<serde_json::Value> = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(results.len(), 5, "{text}");
    for r in &results {
        assert_eq!(r["rc"], 0, "{r}");
        let out = std::path::PathBuf::from(r["out"].as_str().unwrap());
        let base = out.file_stem().unwrap().to_str().unwrap();
        let (codec, seconds) = &expected[base];
        let (codecs, duration) = probe(&out).await;
        let (errors, _) = decode(&out).await;
        println!(
            "{base}: {codecs:?} {duration:.3} s of {seconds:.3} s, {} packets",
            r["sent"]
        );
        assert_eq!(codecs, [codec.as_str()], "{base}");
        assert!(errors.is_empty(), "{base}: {errors}");
        assert!(
            (duration - seconds).abs() < 1.0,
            "{base}: {duration} s of {seconds} s"
        );
    }

    // extract-video joins Alice's two camera segments in one file (the picture held across
    // the switch), as long as her video's span; Bob's H.264 starts at a key frame.
    let extracted = dir.path().join("extracted");
    let out = stdout_of(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_reel"))
            .args([
                "raw-recording",
                "extract-video",
                "--format",
                "json",
                "--input-file",
            ])
            .arg(&archive)
            .arg("--output")
            .arg(&extracted),
        "extract-video",
    )
    .await;
    let written: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(written.len(), 2, "{out}");
    for w in &written {
        let user = w["user_id"].as_str().unwrap();
        let p = read["participants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["participant_id"] == user)
            .unwrap();
        let video = p["segments"]["video"].as_array().unwrap();
        let ms = |segment: &serde_json::Value, key: &str| segment[key].as_f64().unwrap();
        let (first, last) = (&video[0], video.last().unwrap());
        // Each segment is placed at its first packet's arrival and lasts as its RTP
        // timestamps say; arrival times alone drift from them when the host is busy.
        let span = (ms(last, "first_rtp_unix_timestamp") + ms(last, "rtp_duration_ms")
            - ms(first, "first_rtp_unix_timestamp"))
            / 1000.0;
        let drift: Vec<f64> = video.iter().map(|s| ms(s, "drift_ms")).collect();
        let path = std::path::PathBuf::from(w["path"].as_str().unwrap());
        let (codecs, duration) = probe(&path).await;
        let (errors, _) = decode(&path).await;
        println!(
            "{user}: {codecs:?} {duration:.3} s; the video spans {span:.3} s, arrivals drift {drift:?} ms"
        );
        assert_eq!(codecs, [if user == "alice" { "vp8" } else { "h264" }]);
        assert!(errors.is_empty(), "{user}: {errors}");
        // The file starts at the first key frame, which may come a little after the first packet.
        assert!(
            (duration - span).abs() <= 0.3,
            "{user}: {duration} s, span {span} s"
        );
    }
}
