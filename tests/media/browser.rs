//! Headless Chromium with fake devices, on the join page: every codec it offers, and a real
//! two-person call.

use std::collections::HashMap;
use std::time::Duration;

use reel::domain::TrackType;
use reel::media::{BusMessage, Subscription};
use serde_json::Value;

use crate::common::{TestServer, python};
use crate::support::{script, server};

/// Opens one join page per user in `call` for `seconds`; each page's stats.
async fn browsers(t: &TestServer, call: &str, users: &[(&str, &str)], seconds: u32) -> Vec<Value> {
    let urls: Vec<String> = users
        .iter()
        .map(|(user, codec)| {
            format!(
                "{}/join/default/{call}?token={}&codec={codec}",
                t.base,
                t.user_token(user, None)
            )
        })
        .collect();
    let out = tokio::process::Command::new(python())
        .arg(script("browser_call.py"))
        .arg(seconds.to_string())
        .args(&urls)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "browser failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let stats: Vec<Value> =
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"));
    for s in &stats {
        assert_eq!(s["status"], "in the call", "{s}");
    }
    stats
}

/// Packets and payload bytes per track type, and each type's codec, until the subscriber has
/// seen `n` tracks end.
async fn count(
    mut sub: Subscription,
    n: usize,
) -> (HashMap<TrackType, (u64, u64)>, HashMap<TrackType, String>) {
    let (mut packets, mut codecs, mut ended) = (HashMap::new(), HashMap::new(), 0);
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(60), sub.recv()).await {
        match m {
            BusMessage::Track(t) => {
                codecs.insert(t.track_type, t.codec.name.clone());
            }
            BusMessage::Packet(p) => {
                let e = packets.entry(p.track.track_type).or_insert((0, 0));
                e.0 += 1;
                e.1 += p.payload.len() as u64;
            }
            BusMessage::Ended(_) => {
                ended += 1;
                if ended == n {
                    break;
                }
            }
        }
    }
    (packets, codecs)
}

#[tokio::test]
async fn chromium_publishes_every_codec_it_offers() {
    let t = server(Duration::from_secs(1), None).await;
    for codec in ["VP8", "H264", "VP9", "AV1"] {
        let call = format!("c-{}", codec.to_lowercase());
        let cid = t.create_call(&call).await;
        let counting = tokio::spawn(count(
            t.server().services.bus().watch(&cid, 100_000, |_| true),
            2,
        ));
        let stats = browsers(&t, &call, &[("alice", codec)], 5).await;
        let (got, codecs) = counting.await.unwrap();
        // packetsSent counts retransmissions, which reel counts once, and the padding-only
        // packets of bandwidth probing, which carry no media and never reach the bus; payload
        // bytes (bytesSent) count neither.
        let s = &stats[0];
        assert_eq!(codecs[&TrackType::Video], codec, "{stats:?}");
        assert_eq!(codecs[&TrackType::Audio], "opus");
        for (kind, track_type) in [("audio", TrackType::Audio), ("video", TrackType::Video)] {
            let resent = s["resent"][kind].as_u64().unwrap();
            let sent = s["sent"][kind].as_u64().unwrap() - resent;
            let bytes = s["bytes"][kind].as_u64().unwrap();
            let (got, got_bytes) = got.get(&track_type).copied().unwrap_or((0, 0));
            assert!(sent > 50, "{codec} {kind}: only {sent} sent");
            assert!(
                got_bytes * 100 >= bytes * 95,
                "{codec} {kind}: reel got {got_bytes} of the {bytes} payload bytes Chromium sent"
            );
            assert!(
                got * 100 >= sent * 90,
                "{codec} {kind}: reel got {got} of the {sent} packets Chromium sent (and {resent} resent)"
            );
            eprintln!("{codec} {kind}: {got}/{sent} packets, {got_bytes}/{bytes} bytes");
        }
    }
}

#[tokio::test]
async fn two_chromium_participants_see_and_hear_each_other() {
    let t = server(Duration::from_secs(1), None).await;
    t.create_call("pair").await;
    let stats = browsers(&t, "pair", &[("alice", "VP8"), ("bob", "H264")], 6).await;
    for (who, s) in ["alice", "bob"].iter().zip(&stats) {
        assert!(
            s["framesDecoded"].as_u64().unwrap() > 30,
            "{who} decoded too few frames of the other: {s}"
        );
        assert!(s["received"]["audio"].as_u64().unwrap() > 100, "{who}: {s}");
    }
}
