//! Call sessions driven by participants: reconnects within the grace period, the end after it.

use std::time::Duration;

use serde_json::json;

use crate::common::{Receiver, eventually};
use crate::support::{EventStream, aiortc_publish, server};

#[tokio::test]
async fn a_reconnect_keeps_the_session_and_its_end_is_announced_after_the_grace() {
    let rx = Receiver::start(0).await;
    // Long enough for a busy machine to start the second publisher within it.
    let grace = Duration::from_secs(8);
    let t = server(grace, Some(rx.url())).await;
    let cid = t.create_call("rc").await;
    let url = format!(
        "{}/events/default/rc?token={}",
        t.base,
        t.user_token("bob", None)
    );
    let mut events = EventStream::open(&url).await;
    let state = events.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(state["type"], "call.state");
    assert_eq!(state["state"]["participants"], serde_json::json!([]));

    // alice publishes, hangs up, and is back (a new WHIP session) well within the grace period.
    aiortc_publish(&t, "rc", "alice", "vp8", 2.0).await;
    let services = &t.server().services;
    let first = services.active_session(&cid).await.unwrap().unwrap();
    aiortc_publish(&t, "rc", "alice", "vp8", 2.0).await;
    let second = services.active_session(&cid).await.unwrap().unwrap();
    assert_eq!(first.id, second.id, "the reconnect kept the call session");

    let mut seen = events
        .until("call.session_ended", grace + Duration::from_secs(10))
        .await;
    // The tone aiortc sends makes alice the dominant speaker (a live-only event).
    let speakers: Vec<_> = seen
        .iter()
        .filter(|e| e["type"] == "call.dominant_speaker_changed")
        .map(|e| e["user_id"].clone())
        .collect();
    assert!(
        !speakers.is_empty() && speakers.iter().all(|u| u == "alice"),
        "{speakers:?}"
    );
    seen.retain(|e| e["type"] != "call.dominant_speaker_changed");
    let kinds: Vec<&str> = seen.iter().map(|e| e["type"].as_str().unwrap()).collect();
    let per_connection = [
        "call.session_participant_joined",
        "call.track_published",
        "call.track_published",
        "call.track_unpublished",
        "call.track_unpublished",
        "call.session_participant_left",
    ];
    let mut want = vec!["call.session_started"];
    want.extend(per_connection);
    want.extend(per_connection);
    want.push("call.session_ended");
    assert_eq!(kinds, want, "{seen:#?}");
    let left = &seen[6];
    assert_eq!(left["participant"]["user"]["id"], "alice");
    assert_eq!(left["reason"], "left");
    assert!(left["duration_seconds"].as_u64().unwrap() >= 1);
    assert_eq!(
        seen[1]["participant"]["user_session_id"],
        seen[6]["participant"]["user_session_id"]
    );
    assert_ne!(
        seen[1]["participant"]["user_session_id"],
        seen[7]["participant"]["user_session_id"]
    );
    let codecs: Vec<&str> = seen
        .iter()
        .filter(|e| e["type"] == "call.track_published")
        .map(|e| e["track"]["codec"]["name"].as_str().unwrap())
        .collect();
    // Per connection one Opus and one VP8 track, in whichever order their first packets came.
    for pair in codecs.chunks(2) {
        let mut pair = pair.to_vec();
        pair.sort_unstable();
        assert_eq!(pair, ["VP8", "opus"], "{codecs:?}");
    }
    assert!(services.active_session(&cid).await.unwrap().is_none());

    // The same events went to the webhook receiver, the session's end last.
    let types = eventually(
        Duration::from_secs(10),
        "the session's end on the webhook",
        || {
            let got = rx.received();
            async move {
                let types: Vec<String> = got
                    .iter()
                    .map(|r| {
                        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
                        v["type"].as_str().unwrap().to_owned()
                    })
                    .collect();
                (types.last().map(String::as_str) == Some("call.session_ended")).then_some(types)
            }
        },
    )
    .await;
    assert_eq!(types, want);
}

#[tokio::test]
async fn pins_reach_the_call_s_event_stream_and_its_state() {
    let t = server(Duration::from_secs(1), None).await;
    t.create_call("pins").await;
    let events_of = |user: &str| {
        format!(
            "{}/events/default/pins?token={}",
            t.base,
            t.user_token(user, None)
        )
    };
    let mut events = EventStream::open(&events_of("bob")).await;
    let state = events.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(state["state"]["pins"], json!([]));
    let (pin, unpin) = (
        "/api/v2/video/call/default/pins/pin",
        "/api/v2/video/call/default/pins/unpin",
    );
    let ann = json!({"session_id": "s-ann", "user_id": "ann"});
    let ben = json!({"session_id": "s-ben", "user_id": "ben"});
    // A plain user may not pin for everyone; a hostile id is refused; neither is announced.
    let (s, body) = t
        .call_as(&t.user_token("bob", None), "POST", pin, Some(ann.clone()))
        .await;
    assert_eq!(s, 403, "{body}");
    let hostile = json!({"session_id": "../x", "user_id": "ann"});
    let (s, body) = t.call("POST", pin, Some(hostile)).await;
    assert_eq!(s, 400, "{body}");
    let (s, body) = t
        .call(
            "POST",
            "/api/v2/video/call/default/nocall/pin",
            Some(ann.clone()),
        )
        .await;
    assert_eq!(s, 404, "{body}");

    let ok = |(s, body): (reqwest::StatusCode, serde_json::Value)| assert_eq!(s, 200, "{body}");
    ok(t.call("POST", pin, Some(ann.clone())).await);
    let mut announced = async || {
        let seen = events
            .until("call.pins_updated", Duration::from_secs(5))
            .await;
        seen.last().unwrap()["pins"].clone()
    };
    assert_eq!(announced().await, json!([ann]));
    // Pinning again changes nothing and is not announced: the next event is ben's pin.
    ok(t.call("POST", pin, Some(ann.clone())).await);
    ok(t.call("POST", pin, Some(ben.clone())).await);
    assert_eq!(announced().await, json!([ann, ben]));
    ok(t.call("POST", unpin, Some(ann.clone())).await);
    assert_eq!(announced().await, json!([ben]));
    // Whoever follows the call later starts with its pins.
    let mut late = EventStream::open(&events_of("carl")).await;
    let state = late.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(state["state"]["pins"], json!([ben]));
}
