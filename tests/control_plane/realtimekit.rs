//! The RealtimeKit-compatible recordings API: Bearer tokens, the envelope, track recordings
//! through their life cycle, listings, and their `recording.statusUpdate` webhooks.

use std::time::Duration;

use axum::http::StatusCode;
use reel::domain::Timestamp;
use serde_json::{Value, json};

use crate::both_backends;
use crate::common::*;

const BASE: &str = "/client/v4/accounts/acc-1/realtime/kit/app-1/recordings";

/// Calls the dialect with `Authorization: Bearer <token>` (none when `token` is `None`).
async fn kit(
    t: &TestServer,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let bearer = token.map(|tk| format!("Bearer {tk}"));
    t.raw(
        method,
        &format!("{}{BASE}{path}", t.base),
        bearer.as_deref(),
        body,
    )
    .await
}

fn assert_error(body: &Value, code: u16, contains: &str) {
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    let m = body["error"]["message"].as_str().unwrap_or_default();
    assert!(m.contains(contains), "{m:?} does not contain {contains:?}");
}

/// The `recording.statusUpdate` bodies queued so far.
async fn status_updates(t: &TestServer) -> Vec<Value> {
    t.server()
        .services
        .store()
        .deliveries(1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.event_type == "recording.statusUpdate")
        .map(|d| serde_json::from_str(&d.body).unwrap())
        .collect()
}

both_backends!(track_recordings_through_their_life_cycle, |db| async move {
    let t = TestServer::start_with(
        db,
        |s| s.webhook_urls = Some(vec!["http://127.0.0.1:9/hook".into()]),
        bytes_recorders(64),
    )
    .await;
    let secret = Some(API_SECRET);
    let start = |body: Value| kit(&t, secret, "POST", "/track", Some(body));

    // Tokens: none, a wrong one, then the API secret and a signed server token both work.
    let (s, body) = kit(&t, None, "GET", "", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_error(&body, 401, "token is missing");
    let (s, body) = kit(&t, Some("wrong"), "GET", "", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_error(&body, 401, "not valid");
    let (s, body) = kit(&t, Some(&t.server_token()), "GET", "", None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"success": true, "data": [],
            "paging": {"total_count": 0, "start_offset": 0, "end_offset": 0}})
    );

    // Refusals: no call, no live session, too many users, a video layer, hostile ids.
    let (s, body) = start(json!({"meeting_id": "nope"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    let cid = t.create_call("meet-1").await;
    let (s, body) = start(json!({"meeting_id": "meet-1"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_error(&body, 400, "no active session");
    t.server().services.start_session(&cid).await.unwrap();
    let many: Vec<String> = (0..101).map(|i| format!("u{i}")).collect();
    let (s, body) = start(json!({"meeting_id": "meet-1", "user_ids": many})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_error(&body, 400, "at most 100");
    let (s, body) = start(json!({"meeting_id": "meet-1",
            "layers": {"default": {"media_kind": "video"}}}))
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_error(&body, 400, "only audio");
    let (s, body) = start(json!({"meeting_id": "../../etc"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let (s, body) = start(json!({"meeting_id": "meet-1", "surprise": 1})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(status_updates(&t).await.is_empty(), "nothing started");

    // A start: INVOKED, with the template as its output file name.
    let (s, body) = start(json!({"meeting_id": "meet-1", "user_ids": ["alice"],
            "layers": {"speakers": {"media_kind": "audio", "file_name_prefix": "speaker"}}}))
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["success"], true);
    let rec = &body["data"]["recording"];
    assert_eq!(rec["status"], "INVOKED");
    assert_eq!(rec["type"], "TRACK");
    assert_eq!(rec["meeting_id"], "meet-1");
    assert_eq!(
        rec["output_file_name"],
        "{{file_name_prefix}}_{{user_id}}_{{peer_id}}_{{stream_kind}}_{{media_kind}}_{{date_time}}.webm"
    );
    let id = rec["id"].as_str().unwrap().to_owned();
    let (s, body) = start(json!({"meeting_id": "meet-1"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_error(&body, 400, "already running");

    // Running: the active recording of the meeting.
    let active = eventually(Duration::from_secs(10), "the recording to run", || async {
        let (s, body) = kit(&t, secret, "GET", "/active-recording/meet-1", None).await;
        (s == StatusCode::OK && body["data"]["status"] == "RECORDING").then_some(body)
    })
    .await;
    assert_eq!(active["data"]["id"], id.as_str());
    assert!(
        active["data"]["started_time"].as_str().is_some(),
        "{active}"
    );

    // Stopped: uploaded, its file listed under its layer, downloadable for seven days.
    let path = format!("/{id}");
    let act = |action: &str| {
        let body = json!({ "action": action });
        kit(&t, secret, "PUT", &path, Some(body))
    };
    let (s, body) = act("stop").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = act("pause").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let done = eventually(Duration::from_secs(10), "the upload", || async {
        let (_, body) = kit(&t, secret, "GET", &format!("/{id}"), None).await;
        (body["data"]["status"] == "UPLOADED").then_some(body["data"].clone())
    })
    .await;
    assert_eq!(done["stop_reason"]["reason"], "API_CALL");
    assert_eq!(done["file_size"], 64);
    let layers = done["download_url"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{done}");
    assert_eq!(layers[0]["layer_name"], "speakers");
    let urls = layers[0]["download_urls"].as_object().unwrap();
    assert_eq!(urls.len(), 1);
    let url = urls.values().next().unwrap()["download_url"]
        .as_str()
        .unwrap();
    let bytes = t.http.get(url).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(&bytes[..], &recorded_bytes(64)[..]);
    let expiry = Timestamp::parse_rfc3339(done["download_url_expiry"].as_str().unwrap()).unwrap();
    let days = expiry.since(Timestamp::now()).as_secs_f64() / 86400.0;
    assert!((6.9..=7.0).contains(&days), "links last {days} days");
    let (s, body) = act("stop").await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    let (s, _) = kit(&t, secret, "GET", "/active-recording/meet-1", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Listings: by meeting, by status, by page.
    let (_, body) = kit(
        &t,
        secret,
        "GET",
        "?meeting_id=meet-1&status=UPLOADED",
        None,
    )
    .await;
    assert_eq!(body["paging"]["total_count"], 1, "{body}");
    assert_eq!(body["data"][0]["id"], id.as_str());
    let (_, body) = kit(&t, secret, "GET", "?status=RECORDING,INVOKED", None).await;
    assert_eq!(body["paging"]["total_count"], 0, "{body}");
    let (_, body) = kit(&t, secret, "GET", "?page_no=2&per_page=1", None).await;
    assert_eq!(body["data"], json!([]), "{body}");
    assert_eq!(body["paging"]["total_count"], 1);
    let (s, body) = kit(&t, secret, "GET", "?per_page=1000", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let (s, _) = kit(&t, secret, "GET", "/EG_doesnotexist", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // One webhook per status, in order.
    let updates = status_updates(&t).await;
    let statuses: Vec<&str> = updates
        .iter()
        .map(|u| u["recording"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["INVOKED", "RECORDING", "UPLOADING", "UPLOADED"]);
    for u in &updates {
        assert_eq!(u["event"], "recording.statusUpdate");
        assert_eq!(u["recording"]["id"], id.as_str());
        assert_eq!(u["meeting"]["id"], "meet-1");
        assert!(u.get("type").is_none(), "{u}");
    }
    assert_eq!(
        updates[3]["recording"]["downloadUrl"][0]["layer_name"],
        "speakers"
    );
    assert_eq!(updates[3]["recording"]["fileSize"], 64);
});

both_backends!(
    composite_starts_are_checked_and_composites_pause,
    |db| async move {
        let t = TestServer::start_with(db, |_| {}, bytes_recorders(64)).await;
        let secret = Some(API_SECRET);
        let start = |body: Value| kit(&t, secret, "POST", "", Some(body));
        let cid = t.create_call("meet-c").await;
        t.server().services.start_session(&cid).await.unwrap();
        let storage = json!({"type": "aws", "bucket": "b", "region": "r", "access_key": "k",
                         "secret": "s", "host": "http://127.0.0.1:9"});
        // Each wrong option is refused, naming what is wrong.
        for (body, says) in [
            (
                json!({"video_config": {"codec": "AV1"}}),
                "video_config.codec",
            ),
            (
                json!({"audio_config": {"codec": "OGG"}}),
                "audio_config.codec",
            ),
            (
                json!({"audio_config": {"channel": "surround"}}),
                "audio_config.channel",
            ),
            (json!({"max_seconds": 10}), "max_seconds"),
            (json!({"video_config": {"width": 641}}), "even"),
            (json!({"video_config": {"height": 9000}}), "even"),
            (
                json!({"video_config": {"export_file": false}, "audio_config": {"export_file": false}}),
                "no file",
            ),
            (
                json!({"video_config": {"watermark": {"url": "javascript:alert(1)"}}}),
                "watermark.url",
            ),
            (
                json!({"video_config": {"watermark": {"url": "https://x/y.png", "position": "middle"}}}),
                "watermark.position",
            ),
            (json!({"url": "file:///etc/passwd"}), "url must be"),
            (
                json!({"file_name_prefix": "x".repeat(65)}),
                "file_name_prefix",
            ),
            (
                json!({"storage_config": {"type": "azure", "bucket": "b", "access_key": "k", "secret": "s"}}),
                "storage_config.type",
            ),
            (json!({"surprise": 1}), "surprise"),
        ] {
            let mut body = body;
            body["meeting_id"] = json!("meet-c");
            let (s, answer) = start(body.clone()).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {answer}");
            assert_error(&answer, 400, says);
        }
        // A start: a COMPOSITE, its files going to the bucket of its storage_config.
        let (s, body) = start(json!({"meeting_id": "meet-c", "storage_config": storage})).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        assert_eq!(body["data"]["type"], "COMPOSITE");
        let id = body["data"]["id"].as_str().unwrap().to_owned();
        let (_, storages) = t.call("GET", "/api/v2/external_storage", None).await;
        let names: Vec<&String> = storages["external_storages"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert!(
            names.len() == 1 && names[0].starts_with("realtimekit-"),
            "{storages}"
        );
        // Alone unless it asks to run beside others.
        let (s, body) = start(json!({"meeting_id": "meet-c"})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_error(&body, 400, "already running");
        let (s, body) =
            start(json!({"meeting_id": "meet-c", "allow_multiple_recordings": true})).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let beside = body["data"]["id"].as_str().unwrap().to_owned();
        let (s, body) = kit(
            &t,
            secret,
            "PUT",
            &format!("/{beside}"),
            Some(json!({"action": "stop"})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{body}");

        // Paused and resumed: PAUSED is active, and cannot pause twice.
        let path = format!("/{id}");
        eventually(Duration::from_secs(10), "the recording to run", || async {
            let (_, body) = kit(&t, secret, "GET", &path, None).await;
            (body["data"]["status"] == "RECORDING").then_some(())
        })
        .await;
        let act = |action: &str| kit(&t, secret, "PUT", &path, Some(json!({ "action": action })));
        let (s, body) = act("pause").await;
        assert_eq!(
            (s, &body["data"]["status"]),
            (StatusCode::OK, &json!("PAUSED")),
            "{body}"
        );
        let (s, body) = act("pause").await;
        assert_eq!(s, StatusCode::CONFLICT, "{body}");
        let (_, body) = kit(&t, secret, "GET", "/active-recording/meet-c", None).await;
        assert_eq!(body["data"]["id"], id.as_str(), "{body}");
        let (_, body) = kit(&t, secret, "GET", "?status=PAUSED", None).await;
        assert_eq!(body["paging"]["total_count"], 1, "{body}");
        let (s, body) = act("resume").await;
        assert_eq!(
            (s, &body["data"]["status"]),
            (StatusCode::OK, &json!("RECORDING")),
            "{body}"
        );
        let (s, body) = act("stop").await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let (s, body) = act("resume").await;
        assert_eq!(s, StatusCode::CONFLICT, "{body}");
    }
);
