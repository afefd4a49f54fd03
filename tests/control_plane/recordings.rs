//! The recording life cycle through the API and the session registry: auto-on starts,
//! session ends stop, one of each type at a time, restarts finish interrupted recordings.

use std::time::Duration;

use axum::http::StatusCode;
use reel::domain::RecordingState;
use serde_json::{Value, json};

use crate::both_backends;
use crate::common::*;

/// Asserts that starting a raw recording of `default:auto` is refused with `message`.
async fn refused_start(t: &TestServer, message: &str) {
    let (s, body) = t
        .call(
            "POST",
            "/api/v2/video/call/default/auto/recordings/raw/start",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_envelope(&body, 400, 4, message);
}

/// Waits until the call has a running recording and returns it.
async fn running(t: &TestServer, cid: &reel::domain::Cid) -> reel::domain::Recording {
    let store = t.server().services.store().clone();
    eventually(Duration::from_secs(10), "the recording to run", || {
        let store = store.clone();
        let cid = cid.clone();
        async move {
            store
                .active_recordings(&cid)
                .await
                .unwrap()
                .into_iter()
                .find(|r| r.state == RecordingState::Running)
        }
    })
    .await
}

async fn events(t: &TestServer) -> Vec<(String, String)> {
    t.server()
        .services
        .store()
        .deliveries(1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.event_type.starts_with("call.recording_"))
        .map(|d| {
            let v: Value = serde_json::from_str(&d.body).unwrap();
            (
                d.event_type,
                v["recording_type"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

both_backends!(
    auto_on_starts_with_the_session_and_its_end_stops,
    |db| async move {
        let t = TestServer::start_with(
            db,
            |s| s.webhook_urls = Some(vec!["http://127.0.0.1:9/hook".into()]),
            bytes_recorders(64),
        )
        .await;
        let (s, _) = t
            .call(
                "PUT",
                "/api/v2/video/calltypes/default",
                Some(json!({"settings": {"raw_recording": {"mode": "auto-on"}}})),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let cid = t.create_call("auto").await;
        let (session, started) = t.server().services.start_session(&cid).await.unwrap();
        assert!(started);
        let (_, call) = t.call("GET", "/api/v2/video/call/default/auto", None).await;
        assert_eq!(call["call"]["current_session_id"], session.id.as_str());
        assert_eq!(call["call"]["session"]["id"], session.id.as_str());
        let status = eventually(
            Duration::from_secs(10),
            "the auto-on recording to run",
            || async {
                let (_, call) = t.call("GET", "/api/v2/video/call/default/auto", None).await;
                call["call"]["egress"]["raw_recording"]["status"]
                    .as_str()
                    .filter(|s| *s == "running")
                    .map(str::to_owned)
            },
        )
        .await;
        assert_eq!(status, "running");
        assert!(
            call["call"]["egress"].get("composite_recording").is_none(),
            "only the auto-on type runs"
        );
        // A second start of the same type is refused while it runs; a second session start is a no-op.
        refused_start(&t, "raw recording is already running").await;
        let (again, started) = t.server().services.start_session(&cid).await.unwrap();
        assert!(!started && again.id == session.id);

        // The session ends: the recording stops, its file is uploaded and listed.
        t.server().services.end_session(&cid).await.unwrap();
        let listed = listed_recordings(&t, "auto").await;
        assert_eq!(listed[0]["session_id"], session.id.as_str());
        assert_eq!(
            events(&t).await,
            [
                ("call.recording_started", "raw"),
                ("call.recording_stopped", "raw"),
                ("call.recording_ready", "raw")
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
        let (_, call) = t.call("GET", "/api/v2/video/call/default/auto", None).await;
        assert_eq!(call["call"]["current_session_id"], "");
        assert!(call["call"]["egress"].get("raw_recording").is_none());
        refused_start(&t, "there is no active session").await;
    }
);

both_backends!(a_restart_finishes_interrupted_recordings, |db| async move {
    let mut t = TestServer::start_with(
        db,
        |s| s.webhook_urls = Some(vec!["http://127.0.0.1:9/hook".into()]),
        bytes_recorders(64),
    )
    .await;
    let cid = t.create_call("crash").await;
    t.server().services.start_session(&cid).await.unwrap();
    let (s, _) = t
        .call(
            "POST",
            "/api/v2/video/call/default/crash/recordings/individual/start",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let rec = running(&t, &cid).await;

    // reel dies while recording; on the next start the session is over and the recording is finished.
    t.restart().await;
    let after = t
        .server()
        .services
        .store()
        .get_recording(&rec.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        after.state,
        RecordingState::Failed,
        "nothing was handed over before the crash"
    );
    assert_eq!(
        after.error.as_deref(),
        Some("reel restarted while recording")
    );
    assert!(after.stopped_at.is_some());
    assert!(
        t.server()
            .services
            .active_session(&cid)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        events(&t).await,
        [
            ("call.recording_started", "individual"),
            ("call.recording_stopped", "individual"),
            ("call.recording_failed", "individual")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
});

both_backends!(graceful_shutdown_finishes_files, |db| async move {
    let mut t = TestServer::start_with(db, |_| {}, bytes_recorders(64)).await;
    let cid = t.create_call("term").await;
    t.server().services.start_session(&cid).await.unwrap();
    t.call(
        "POST",
        "/api/v2/video/call/default/term/recordings/raw/start",
        None,
    )
    .await;
    let rec = running(&t, &cid).await;
    // A graceful stop asks the recorder to finish; its file is handed over and, after the next
    // start, uploaded: the recording ends ready.
    t.server.take().unwrap().shutdown().await;
    let config = t.config.clone();
    let server = reel::server::Server::start(config, t.recorders.clone())
        .await
        .unwrap();
    let store = server.services.store().clone();
    let id = rec.id.clone();
    let state = eventually(Duration::from_secs(20), "the recording to be ready", || {
        let store = store.clone();
        let id = id.clone();
        async move {
            let r = store.get_recording(&id).await.unwrap().unwrap();
            r.state.is_final().then_some(r.state)
        }
    })
    .await;
    assert_eq!(state, RecordingState::Ready);
    assert_eq!(
        store.call_recordings(&cid).await.unwrap().unwrap().2.len(),
        1
    );
    t.server = Some(server);
});

both_backends!(
    files_handed_over_while_recording_are_announced_after_the_stop,
    |db| async move {
        let early = reel::recorders::Recorders::default().with(
            reel::domain::RecordingType::Individual,
            BytesRecorder {
                size: 32,
                early: true,
            },
        );
        let t = TestServer::start_with(
            db,
            |s| s.webhook_urls = Some(vec!["http://127.0.0.1:9/hook".into()]),
            early,
        )
        .await;
        let cid = t.create_call("early").await;
        t.server().services.start_session(&cid).await.unwrap();
        t.call(
            "POST",
            "/api/v2/video/call/default/early/recordings/individual/start",
            None,
        )
        .await;
        // The early file is uploaded and listed while the recording runs, but not announced yet.
        eventually(
            Duration::from_secs(10),
            "the early file to be listed",
            || async {
                let (_, list) = t
                    .call("GET", "/api/v2/video/call/default/early/recordings", None)
                    .await;
                (list["recordings"].as_array().map(Vec::len) == Some(1)).then_some(())
            },
        )
        .await;
        assert_eq!(
            events(&t).await,
            [("call.recording_started".to_owned(), "individual".to_owned())]
        );
        t.call(
            "POST",
            "/api/v2/video/call/default/early/recordings/individual/stop",
            None,
        )
        .await;
        let all = eventually(Duration::from_secs(10), "both ready events", || async {
            let e = events(&t).await;
            (e.len() == 4).then_some(e)
        })
        .await;
        let kinds: Vec<&str> = all.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "call.recording_started",
                "call.recording_stopped",
                "call.recording_ready",
                "call.recording_ready"
            ]
        );
    }
);

/// The value of the metric `name` in `/metrics`.
async fn metric(t: &TestServer, name: &str) -> f64 {
    let text = t.metrics().await;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// A recorder that falls behind the call it records (this test's recorder never takes what
/// its feed delivers) is reported, and new recordings are refused until it has caught up.
#[tokio::test]
async fn recordings_are_refused_while_a_recorder_is_behind() {
    use reel::bus::Packet;
    use reel::domain::{Codec, Participant, SessionId, Timestamp, Track, TrackType, UserId};

    let t = TestServer::start_with(Db::Sqlite, |_| {}, bytes_recorders(16)).await;
    let cid = t.create_call("behind").await;
    t.server().services.start_session(&cid).await.unwrap();
    let mut live = t.server().services.live().subscribe(&cid);
    let t = &t;
    let start = |kind: &'static str| {
        let path = format!("/api/v2/video/call/default/behind/recordings/{kind}/start");
        async move { t.call("POST", &path, None).await }
    };
    let (s, body) = start("raw").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    running(t, &cid).await;

    // Three seconds of a microphone's packets, which the raw recorder never takes.
    let now = Timestamp::now();
    let track = Track {
        track_id: "mic".into(),
        track_type: TrackType::Audio,
        codec: Codec {
            name: "opus".into(),
            clock_rate: 48_000,
            channels: 2,
            fmtp: String::new(),
        },
        participant: Participant {
            user_id: UserId::parse("alice").unwrap(),
            user_session_id: SessionId::random(),
            source_id: String::new(),
            role: "user".into(),
            joined_at: now,
        },
        published_at: now,
    };
    let (keyframes, _requests) = tokio::sync::mpsc::channel(1);
    let mic = t.server().services.bus().publish(&cid, track, keyframes);
    for seq in 0..150u64 {
        mic.send(Packet {
            track: mic.track().clone(),
            ssrc: 1,
            seq,
            rtp_time: seq * 960,
            timestamp: (seq * 960) as u32,
            marker: false,
            payload_type: 111,
            payload: std::sync::Arc::from(&[0xf8u8, 1, 2][..]),
            arrival: std::time::Instant::now(),
            arrival_wall: Timestamp::now(),
            audio_level: None,
            voice_activity: None,
            sender_report: None,
            keyframe: false,
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eventually(Duration::from_secs(5), "the backlog to be seen", || async {
        (metric(t, "reel_recorder_backlog_seconds").await > 2.0).then_some(())
    })
    .await;
    let (s, body) = start("individual").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_envelope(&body, 503, -1, "behind on the recordings it runs");
    assert_eq!(metric(t, "reel_recordings_refused_total").await, 1.0);
    let said = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let e: Value = serde_json::from_str(&live.recv().await.unwrap()).unwrap();
            if e["type"] == "reel.recording_behind" {
                return e;
            }
        }
    })
    .await
    .expect("the live event");
    assert!(said["backlog_seconds"].as_f64().unwrap() > 2.0, "{said}");

    // The recorder that fell behind stops: new recordings are taken again.
    let (s, _) = t
        .call(
            "POST",
            "/api/v2/video/call/default/behind/recordings/raw/stop",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    eventually(Duration::from_secs(5), "the backlog to clear", || async {
        (metric(t, "reel_recorder_backlog_seconds").await == 0.0).then_some(())
    })
    .await;
    let (s, body) = start("individual").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    drop(mic);
}
