//! Settings overlay: the call's override wins over its type; `disabled` blocks starts;
//! unknown enum values are refused naming the field.

use axum::http::StatusCode;
use serde_json::json;

use crate::both_backends;
use crate::common::{TestServer, assert_envelope, bytes_recorders};

both_backends!(override_wins_over_type, |db| async move {
    let t = TestServer::start(db).await;
    let (s, ct) = t
        .call("PUT", "/api/v2/video/calltypes/default", Some(json!({"settings": {
            "recording": {"mode": "available", "quality": "1080p", "layout": {"name": "grid", "options": {"grid.columns": 3}}},
            "individual_recording": {"mode": "available", "output_types": ["audio_only", "video_only"]},
            "raw_recording": {"mode": "available", "audio_only": true}
        }})))
        .await;
    assert_eq!(s, StatusCode::OK, "{ct}");
    assert_eq!(ct["settings"]["recording"]["quality"], "1080p");

    let (s, created) = t
        .call(
            "POST",
            "/api/v2/video/call/default/ov",
            Some(json!({"data": {"created_by_id": "alice",
            "settings_override": {"recording": {"quality": "portrait-720x1280"}}}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{created}");
    assert_eq!(created["created"], true);
    let settings = &created["call"]["settings"];
    assert_eq!(
        settings["recording"]["quality"], "portrait-720x1280",
        "the call's override wins"
    );
    assert_eq!(
        settings["recording"]["layout"]["name"], "grid",
        "the type's value holds where the call says nothing"
    );
    assert_eq!(
        settings["individual_recording"]["output_types"],
        json!(["audio_only", "video_only"])
    );

    let (s, updated) = t
        .call(
            "PATCH",
            "/api/v2/video/call/default/ov",
            Some(json!({"settings_override": {
                "individual_recording": {"output_types": ["screenshare_audio_video"]},
                "recording": {"layout": {"options": {"grid.rows": 2}}}
            }})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{updated}");
    let settings = &updated["call"]["settings"];
    assert_eq!(
        settings["individual_recording"]["output_types"],
        json!(["screenshare_audio_video"])
    );
    assert_eq!(
        settings["recording"]["quality"], "portrait-720x1280",
        "earlier override kept"
    );
    assert_eq!(
        settings["recording"]["layout"]["options"],
        json!({"grid.columns": 3, "grid.rows": 2})
    );
    assert_eq!(settings["raw_recording"]["audio_only"], true);

    // A later change of the type shows through where the call does not override.
    t.call(
        "PUT",
        "/api/v2/video/calltypes/default",
        Some(json!({"settings": {"recording": {"quality": "480p", "audio_only": true}}})),
    )
    .await;
    let (_, got) = t.call("GET", "/api/v2/video/call/default/ov", None).await;
    assert_eq!(
        got["call"]["settings"]["recording"]["quality"],
        "portrait-720x1280"
    );
    assert_eq!(got["call"]["settings"]["recording"]["audio_only"], true);
    // Another call of the type gets the type's values and reel's defaults.
    let (_, other) = t
        .call(
            "POST",
            "/api/v2/video/call/default/plain",
            Some(json!({"data": {"created_by_id": "bob"}})),
        )
        .await;
    assert_eq!(other["call"]["settings"]["recording"]["quality"], "480p");
    assert_eq!(
        other["call"]["settings"]["ring"]["incoming_call_timeout_ms"],
        15000
    );
});

both_backends!(disabled_mode_blocks_start, |db| async move {
    let t = TestServer::start_with(db, |_| {}, bytes_recorders(10)).await;
    let cid = t.create_call("dis").await;
    t.server().services.start_session(&cid).await.unwrap();
    let (s, _) = t
        .call(
            "PATCH",
            "/api/v2/video/call/default/dis",
            Some(json!({"settings_override": {"raw_recording": {"mode": "disabled"}}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = t
        .call(
            "POST",
            "/api/v2/video/call/default/dis/recordings/raw/start",
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_envelope(
        &body,
        400,
        4,
        "StartRecording failed with error: \"raw recording is disabled for this call\"",
    );
    // The other types still start; a type-level `disabled` blocks too.
    let (s, body) = t
        .call(
            "POST",
            "/api/v2/video/call/default/dis/recordings/individual/start",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    t.call(
        "PUT",
        "/api/v2/video/calltypes/default",
        Some(json!({"settings": {"recording": {"mode": "disabled"}}})),
    )
    .await;
    let (s, body) = t
        .call(
            "POST",
            "/api/v2/video/call/default/dis/start_recording",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_envelope(&body, 400, 4, "composite recording is disabled");
    // ... unless the call overrides it.
    t.call(
        "PATCH",
        "/api/v2/video/call/default/dis",
        Some(json!({"settings_override": {"recording": {"mode": "available"}}})),
    )
    .await;
    let (s, body) = t
        .call(
            "POST",
            "/api/v2/video/call/default/dis/recordings/composite/start",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
});

both_backends!(unknown_values_name_the_field, |db| async move {
    let t = TestServer::start(db).await;
    t.create_call("bad").await;
    let cases = [
        (
            "PUT",
            "/api/v2/video/calltypes/default",
            json!({"settings": {"recording": {"quality": "4k"}}}),
            "settings.recording.quality",
        ),
        (
            "POST",
            "/api/v2/video/call/default/new1",
            json!({"data": {"created_by_id": "a", "settings_override": {"recording": {"mode": "always"}}}}),
            "data.settings_override.recording.mode",
        ),
        (
            "PATCH",
            "/api/v2/video/call/default/bad",
            json!({"settings_override": {"individual_recording": {"output_types": ["audio_only", "smell"]}}}),
            "settings_override.individual_recording.output_types[1]",
        ),
        (
            "PATCH",
            "/api/v2/video/call/default/bad",
            json!({"settings_override": {"recording": {"layout": {"name": "mosaic"}}}}),
            "settings_override.recording.layout.name",
        ),
        (
            "PATCH",
            "/api/v2/video/call/default/bad",
            json!({"settings_override": {"raw_recording": {"audio_only": "yes"}}}),
            "settings_override.raw_recording.audio_only",
        ),
        (
            "POST",
            "/api/v2/video/calltypes",
            json!({"name": "t2", "grants": {"user": ["StartRecordings"]}}),
            "grants",
        ),
        (
            "PATCH",
            "/api/v2/video/call/default/bad",
            json!({"settings_override": {"recording": {"layout": {"options": {"grid.colums": 3}}}}}),
            "unknown layout option grid.colums",
        ),
        (
            "PUT",
            "/api/v2/video/calltypes/default",
            json!({"settings": {"recording": {"layout": {"options": {"video.scale_mode": "stretch"}}}}}),
            "layout option video.scale_mode must be one of fit, fill, not stretch",
        ),
        (
            "POST",
            "/api/v2/video/call/default/bad/recordings/video/start",
            json!({}),
            "recording_type",
        ),
    ];
    for (method, path, body, field) in cases {
        let (s, answer) = t.call(method, path, Some(body)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{method} {path}: {answer}");
        assert_envelope(&answer, 400, 4, field);
    }
    // Nothing was changed or created by the refused requests.
    let (s, _) = t.call("GET", "/api/v2/video/call/default/new1", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, ct) = t.call("GET", "/api/v2/video/calltypes/default", None).await;
    assert_eq!(ct["settings"]["recording"]["quality"], "720p");
    // Malformed JSON is an input error too.
    let res = t
        .http
        .patch(format!(
            "{}/api/v2/video/call/default/bad?api_key={}",
            t.base,
            crate::common::API_KEY
        ))
        .header("authorization", t.server_token())
        .body("{\"custom\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_envelope(
        &res.json().await.unwrap(),
        400,
        4,
        "UpdateCall failed with error",
    );
});
