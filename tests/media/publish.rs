//! Publishing over WHIP: codecs, packet counts, the bus, and refused input.

use std::collections::HashMap;
use std::time::Duration;

use reel::bus::{Backlog, BusMessage, Subscription};
use reel::domain::{Cid, TrackType};

use crate::common::TestServer;
use crate::support::{WHOLE, aiortc_publish, metric, offer, server};

/// Counts what a bus subscriber receives until every track ended: packets by track type,
/// and the codec of each type.
async fn drain(sub: Subscription) -> (HashMap<TrackType, u64>, HashMap<TrackType, String>) {
    let mut packets = HashMap::new();
    let mut codecs = HashMap::new();
    let mut live = 0usize;
    while let Ok(m) = tokio::time::timeout(Duration::from_secs(30), sub.recv()).await {
        match m {
            BusMessage::Track(t) => {
                live += 1;
                codecs.insert(t.track_type, t.codec.name.clone());
            }
            BusMessage::Packet(p) => *packets.entry(p.track.track_type).or_insert(0) += 1,
            BusMessage::Ended(_) => {
                live -= 1;
                if live == 0 {
                    break;
                }
            }
        }
    }
    (packets, codecs)
}

fn at_least_95_percent(got: u64, sent: u64, what: &str) {
    assert!(sent > 50, "{what}: only {sent} sent");
    assert!(
        got * 100 >= sent * 95,
        "{what}: the bus got {got} of {sent} packets"
    );
}

async fn publish_and_count(t: &TestServer, call: &str, codec: &str) {
    let cid = t.create_call(call).await;
    let sub = t.server().services.bus().watch(&cid, WHOLE, |_| true);
    let counting = tokio::spawn(drain(sub));
    let sent = aiortc_publish(t, call, "alice", codec, 4.0).await;
    let (got, codecs) = counting.await.unwrap();
    assert_eq!(codecs[&TrackType::Audio], "opus");
    assert!(
        codecs[&TrackType::Video].eq_ignore_ascii_case(codec),
        "{codecs:?}"
    );
    at_least_95_percent(got[&TrackType::Audio], sent.audio, "audio");
    at_least_95_percent(got[&TrackType::Video], sent.video, "video");
}

#[tokio::test]
async fn aiortc_publishes_vp8_and_h264_without_trickle() {
    let t = server(Duration::from_secs(1), None).await;
    publish_and_count(&t, "vp8", "vp8").await;
    publish_and_count(&t, "h264", "h264").await;
}

#[tokio::test]
async fn a_consumer_that_never_reads_does_not_slow_another() {
    let t = server(Duration::from_secs(1), None).await;
    let cid: Cid = t.create_call("slow").await;
    let bus = t.server().services.bus();
    let stuck = bus.watch(&cid, Backlog::new(Duration::from_secs(60), 16), |_| true);
    let counting = tokio::spawn(drain(bus.watch(&cid, WHOLE, |_| true)));
    let sent = aiortc_publish(&t, "slow", "alice", "vp8", 4.0).await;
    let (got, _) = counting.await.unwrap();
    at_least_95_percent(got[&TrackType::Audio], sent.audio, "audio");
    at_least_95_percent(got[&TrackType::Video], sent.video, "video");
    let dropped = stuck.dropped();
    assert!(
        dropped + 16 >= (sent.audio + sent.video) * 9 / 10,
        "the stuck consumer dropped only {dropped}"
    );
    assert_eq!(
        metric(&t, "reel_bus_packets_dropped_total").await,
        dropped as f64
    );
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_disturbs_nobody() {
    let t = server(Duration::from_secs(1), None).await;
    let cid = t.create_call("bad").await;
    let counting = tokio::spawn(drain(
        t.server().services.bus().watch(&cid, WHOLE, |_| true),
    ));
    let good = aiortc_publish_in_background(&t, "bad");
    let url = format!("{}/whip/default/bad", t.base);
    let token = t.user_token("mallory", None);
    let post = |body: Vec<u8>, token: Option<String>, content_type: &'static str| {
        let mut req = t
            .http
            .post(&url)
            .header("content-type", content_type)
            .body(body);
        if let Some(tok) = token {
            req = req.bearer_auth(tok);
        }
        async move {
            let res = req.send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    let sdp = "application/sdp";
    let cases: Vec<(&str, (u16, String), u16, &str)> = vec![
        (
            "malformed SDP",
            post(b"hello".to_vec(), Some(token.clone()), sdp).await,
            400,
            "malformed SDP",
        ),
        (
            "no usable codec",
            post(offer("PCMU/8000", 1).into_bytes(), Some(token.clone()), sdp).await,
            400,
            "offers no usable codec (offered: PCMU",
        ),
        (
            "three video tracks",
            post(
                offer("opus/48000/2", 3).into_bytes(),
                Some(token.clone()),
                sdp,
            )
            .await,
            400,
            "at most one audio and one video track",
        ),
        (
            "a wrong token",
            post(
                offer("opus/48000/2", 1).into_bytes(),
                Some(format!("{token}x")),
                sdp,
            )
            .await,
            401,
            "",
        ),
        (
            "no token",
            post(offer("opus/48000/2", 1).into_bytes(), None, sdp).await,
            401,
            "a token is required",
        ),
        (
            "a 2 MB body",
            post(vec![b'a'; 2 << 20], Some(token.clone()), sdp).await,
            413,
            "",
        ),
        (
            "JSON instead of SDP",
            post(b"{}".to_vec(), Some(token.clone()), "application/json").await,
            415,
            "application/sdp",
        ),
    ];
    for (what, (status, body), want, contains) in cases {
        assert_eq!(status, want, "{what}: {body}");
        assert!(
            body.contains(contains),
            "{what}: {body:?} lacks {contains:?}"
        );
    }
    for method in ["PATCH", "DELETE"] {
        let res = t
            .http
            .request(
                method.parse().unwrap(),
                format!("{}/whip/sessions/nope", t.base),
            )
            .header("content-type", "application/trickle-ice-sdpfrag")
            .body("a=end-of-candidates\r\n")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{method} of an unknown session");
    }
    // Nobody was hurt: mallory never joined, and the good publisher's media all arrived.
    let media = t.server().media.clone();
    let participants = crate::common::eventually(Duration::from_secs(10), "alice to join", || {
        let ps = media.state(&cid).participants;
        async move { (!ps.is_empty()).then_some(ps) }
    })
    .await;
    assert!(participants.iter().all(|p| p.user_id.as_str() == "alice"));
    let sent = good.await.unwrap();
    let (got, _) = counting.await.unwrap();
    at_least_95_percent(got[&TrackType::Video], sent.video, "video");
}

fn aiortc_publish_in_background(
    t: &TestServer,
    call: &str,
) -> tokio::task::JoinHandle<crate::support::Published> {
    let base = t.base.clone();
    let token = t.user_token("alice", None);
    let call = call.to_owned();
    tokio::spawn(async move {
        crate::support::aiortc_publish_to(&base, &token, &call, "vp8", 4.0, crate::support::TONE)
            .await
    })
}

/// The ICE credentials of an answer or fragment.
fn ufrag(sdp: &str) -> Option<&str> {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix("a=ice-ufrag:"))
}

#[tokio::test]
async fn a_session_takes_trickled_candidates_and_restarts_ice() {
    let t = server(Duration::from_secs(1), None).await;
    t.create_call("trickle").await;
    let token = t.user_token("alice", None);
    let res = t
        .http
        .post(format!("{}/whip/default/trickle", t.base))
        .bearer_auth(&token)
        .header("content-type", "application/sdp")
        .body(offer("opus/48000/2", 1))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let session = format!("{}{}", t.base, res.headers()["location"].to_str().unwrap());
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    let answer = res.text().await.unwrap();
    let patch = |body: &str, if_match: Option<&str>| {
        let mut req = t
            .http
            .patch(&session)
            .bearer_auth(&token)
            .header("content-type", "application/trickle-ice-sdpfrag")
            .body(body.to_owned());
        if let Some(m) = if_match {
            req = req.header("if-match", m);
        }
        async move {
            let res = req.send().await.unwrap();
            let etag = res
                .headers()
                .get("etag")
                .map(|v| v.to_str().unwrap().to_owned());
            (res.status().as_u16(), etag, res.text().await.unwrap())
        }
    };
    let candidate = "a=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n";
    let (status, _, body) = patch(candidate, Some(&etag)).await;
    assert_eq!(status, 204, "a trickled candidate: {body}");
    let (status, _, body) = patch("a=candidate:1 1 udp nonsense\r\n", None).await;
    assert_eq!(status, 400, "a malformed candidate: {body}");
    assert!(body.contains("bad candidate"), "{body}");
    let (status, _, body) = patch("a=ice-ufrag:only\r\n", None).await;
    assert_eq!(status, 400, "half an ICE restart: {body}");

    // An ICE restart: new credentials both ways, and a new ETag that the next change must name.
    let restart = "a=ice-ufrag:wxyz\r\na=ice-pwd:zyxwvutsrqponmlkjihgfedcba\r\n";
    let (status, new_etag, fragment) = patch(restart, Some(&etag)).await;
    assert_eq!(status, 200, "{fragment}");
    let new_etag = new_etag.expect("a restart answers with a new ETag");
    assert_ne!(new_etag, etag);
    assert!(
        ufrag(&fragment).is_some_and(|u| Some(u) != ufrag(&answer)),
        "{fragment}"
    );
    assert!(fragment.contains("a=candidate:"), "{fragment}");
    let (status, _, body) = patch(restart, Some(&etag)).await;
    assert_eq!(status, 412, "a change naming the old ETag: {body}");
    let (status, _, body) = patch(restart, Some(&new_etag)).await;
    assert_eq!(status, 200, "{body}");
}
