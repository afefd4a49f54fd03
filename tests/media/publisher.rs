//! `reel publish`: a pre-encoded clip sent as several participants.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use reel::bus::{BusMessage, Subscription};
use serde_json::Value;

use crate::common::{API_SECRET, TestServer, stdout_of};
use crate::support::{WHOLE, make_clips, server};

/// One track as a bus subscriber saw it.
#[derive(Debug, Default)]
struct Seen {
    who: String,
    kind: String,
    codec: String,
    packets: u64,
    starts_with_keyframe: bool,
    /// The sequence numbers it carried.
    seqs: BTreeSet<u64>,
}

/// Counts what the bus carries until every track has ended.
async fn count(sub: Subscription) -> Vec<Seen> {
    let mut tracks: HashMap<String, Seen> = HashMap::new();
    let mut live = 0usize;
    while let Ok(m) = tokio::time::timeout(Duration::from_secs(30), sub.recv()).await {
        match m {
            BusMessage::Track(t) => {
                live += 1;
                let p = &t.participant;
                tracks.insert(
                    t.track_id.clone(),
                    Seen {
                        who: format!("{}/{}", p.user_id, p.source_id),
                        kind: t.track_type.to_string(),
                        codec: t.codec.name.clone(),
                        ..Seen::default()
                    },
                );
            }
            BusMessage::Packet(p) => {
                let seen = tracks.get_mut(&p.track.track_id).unwrap();
                if seen.packets == 0 {
                    seen.starts_with_keyframe = p.keyframe;
                }
                seen.packets += 1;
                seen.seqs.insert(p.seq);
            }
            BusMessage::Ended(_) => {
                live -= 1;
                if live == 0 {
                    break;
                }
            }
        }
    }
    tracks.into_values().collect()
}

/// Runs `reel publish` against `t` and returns its JSON report.
async fn reel_publish(t: &TestServer, call: &str, args: &[&str], env: (&str, &str)) -> Value {
    let stdout = stdout_of(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_reel"))
            .arg("publish")
            .arg(format!("{}/whip/default/{call}", t.base))
            .args(args)
            .args(["--duration", "3s", "--stagger", "100ms", "--format", "json"])
            .env_remove("REEL_TOKEN")
            .env_remove("REEL_API_SECRET")
            .env(env.0, env.1),
        "reel publish",
    )
    .await;
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[tokio::test]
async fn reel_publish_sends_a_clip_as_participants() {
    let t = server(Duration::from_secs(1), None).await;
    let clips = tempfile::tempdir().unwrap();
    make_clips(clips.path());
    let clip = |name: &str| clips.path().join(name).display().to_string();
    let (vp8, h264, opus) = (clip("vp8.ivf"), clip("h264.h264"), clip("opus.ogg"));
    let token = t.user_token("alice", None);
    let runs = [
        // Three users, tokens signed with the API secret.
        (
            "clip-vp8",
            "VP8",
            vec!["--video", &vp8, "--audio", &opus, "-n", "3"],
            ("REEL_API_SECRET", API_SECRET),
            ["publisher-1/", "publisher-2/", "publisher-3/"],
        ),
        // One user's token, as three sources.
        (
            "clip-h264",
            "H264",
            vec!["--video", &h264, "--audio", &opus, "-n", "3"],
            ("REEL_TOKEN", token.as_str()),
            ["alice/p1", "alice/p2", "alice/p3"],
        ),
    ];
    for (call, codec, args, env, who) in runs {
        let cid = t.create_call(call).await;
        let counting = tokio::spawn(count(
            t.server().services.bus().watch(&cid, WHOLE, |_| true),
        ));
        let report = reel_publish(&t, call, &args, env).await;
        let tracks = counting.await.unwrap();
        assert_eq!(report["connected"], 3, "{report}");
        assert_eq!(report["failed"], 0, "{report}");

        let participants: BTreeSet<&str> = tracks.iter().map(|s| s.who.as_str()).collect();
        assert_eq!(participants, BTreeSet::from(who), "{tracks:?}");
        for p in participants {
            let mut kinds: Vec<(&str, &str)> = tracks
                .iter()
                .filter(|s| s.who == p)
                .map(|s| (s.kind.as_str(), s.codec.as_str()))
                .collect();
            kinds.sort();
            assert_eq!(
                kinds,
                [("TRACK_TYPE_AUDIO", "opus"), ("TRACK_TYPE_VIDEO", codec)],
                "{p}"
            );
        }
        for s in tracks.iter().filter(|s| s.kind == "TRACK_TYPE_VIDEO") {
            assert!(
                s.starts_with_keyframe,
                "{s:?} does not start with a key frame"
            );
        }
        // Three seconds of 20 ms audio and 30 fps video (a packet or more a frame), each
        // participant; at least half of that on a machine too busy to start it on time.
        for s in &tracks {
            let least = if s.kind == "TRACK_TYPE_AUDIO" { 75 } else { 45 };
            assert!(s.packets >= least, "{s:?}");
        }
        // Everything sent reached the bus, once: each track's packets follow on without a
        // hole (a packet the host was too busy to take in time came again when reel asked,
        // which is why the report, counting such retransmissions, may tell more).
        for s in &tracks {
            let (first, last) = (s.seqs.first().unwrap(), s.seqs.last().unwrap());
            let track = format!(
                "{} {}: {} packets, {first}..={last}",
                s.who, s.kind, s.packets
            );
            assert_eq!(s.seqs.len() as u64, last - first + 1, "holes in {track}");
            assert_eq!(s.seqs.len() as u64, s.packets, "repeats in {track}");
        }
        let got: u64 = tracks.iter().map(|s| s.packets).sum();
        let sent = report["packets"].as_u64().unwrap();
        assert!(got <= sent, "the bus got {got} of {sent} packets");
    }
}

#[tokio::test]
async fn reel_publish_explains_bad_clips_and_refusals() {
    let t = server(Duration::from_secs(1), None).await;
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.ivf");
    std::fs::write(&junk, b"DKIF\0\0\x20\0XXXX").unwrap();
    let run = |args: Vec<String>, secret: &'static str| async move {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_reel"))
            .arg("publish")
            .args(args)
            .env_remove("REEL_TOKEN")
            .env("REEL_API_SECRET", secret)
            .output()
            .await
            .unwrap()
    };
    let url = format!("{}/whip/default/refused", t.base);
    let junk = junk.display().to_string();

    let out = run(vec![url.clone(), "--video".into(), junk], API_SECRET).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("truncated IVF header"),
        "{out:?}"
    );

    // Tokens signed with the wrong secret: the server's refusal is reported.
    let clips = tempfile::tempdir().unwrap();
    make_clips(clips.path());
    let audio = clips.path().join("opus.ogg").display().to_string();
    let args = vec![
        url,
        "--audio".into(),
        audio,
        "--duration".into(),
        "1s".into(),
    ];
    let out = run(args, "not-the-secret").await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("401 Unauthorized"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
