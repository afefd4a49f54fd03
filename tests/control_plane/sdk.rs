//! The official Stream Python SDK against a running reel.

use std::time::Duration;

use axum::http::StatusCode;

use crate::both_backends;
use crate::common::*;

both_backends!(python_sdk_works_unchanged, |db| async move {
    let t = TestServer::start_with(db, |_| {}, bytes_recorders(4096)).await;
    // One ready raw recording in call default:recorded.
    let cid = t.create_call("recorded").await;
    t.server().services.start_session(&cid).await.unwrap();
    let (s, _) = t
        .call(
            "POST",
            "/api/v2/video/call/default/recorded/recordings/raw/start",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    t.call(
        "POST",
        "/api/v2/video/call/default/recorded/recordings/raw/stop",
        None,
    )
    .await;
    t.server().services.end_session(&cid).await.unwrap();
    eventually(
        Duration::from_secs(20),
        "the recording to be listed",
        || async {
            let (_, list) = t
                .call(
                    "GET",
                    "/api/v2/video/call/default/recorded/recordings",
                    None,
                )
                .await;
            (list["recordings"].as_array().map(Vec::len) == Some(1)).then_some(())
        },
    )
    .await;

    let stdout = stdout_of(
        tokio::process::Command::new(python())
            .arg(crate::common::source_dir().join("tests/python/sdk_flow.py"))
            .args([&t.base, API_KEY, API_SECRET]),
        "the SDK flow",
    )
    .await;
    assert_eq!(stdout.trim(), "ok");
});
