//! Health, metrics and the OpenAPI document.

use std::time::Duration;

use axum::http::StatusCode;

use crate::both_backends;
use crate::common::*;

both_backends!(health_and_metrics, |db| async move {
    let rx = Receiver::start(1).await;
    let hook = rx.url();
    let t = TestServer::start_with(
        db,
        |s| s.webhook_urls = Some(vec![hook]),
        bytes_recorders(2048),
    )
    .await;
    let health = t
        .http
        .get(format!("{}/healthz", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    let cid = t.create_call("m1").await;
    t.server().services.start_session(&cid).await.unwrap();
    t.call(
        "POST",
        "/api/v2/video/call/default/m1/recordings/raw/start",
        None,
    )
    .await;
    t.call(
        "POST",
        "/api/v2/video/call/default/m1/recordings/raw/stop",
        None,
    )
    .await;
    t.call("GET", "/api/v2/video/call/default/nope", None).await;
    eventually(
        Duration::from_secs(20),
        "four delivered webhooks (the session's start and three of the recording)",
        || async { (rx.received().len() == 4).then_some(()) },
    )
    .await;

    let text = t.metrics().await;
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.starts_with(needle))
            .map(str::to_owned)
    };
    let value =
        |needle: &str| line(needle).and_then(|l| l.rsplit(' ').next().unwrap().parse::<f64>().ok());
    assert_eq!(
        value(
            "reel_http_requests_total{method=\"GET\",route=\"/api/v2/video/call/{type}/{id}\",status=\"404\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value("reel_recordings{recording_type=\"raw\",state=\"ready\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value("reel_recordings{recording_type=\"composite\",state=\"running\"}"),
        Some(0.0)
    );
    assert_eq!(
        value("reel_webhook_deliveries_total{outcome=\"ok\"}"),
        Some(4.0)
    );
    assert_eq!(
        value("reel_webhook_deliveries_total{outcome=\"failed\"}"),
        Some(1.0)
    );
    assert_eq!(value("reel_upload_bytes_total"), Some(2048.0));
    assert_eq!(value("reel_uploads_total{outcome=\"ok\"}"), Some(1.0));
    assert!(line("reel_http_request_duration_seconds_bucket").is_some());
});

#[tokio::test]
async fn openapi_documents_existing_routes() {
    let t = TestServer::start(Db::Sqlite).await;
    let doc = t.openapi().await;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for must in [
        "/api/v2/video/call/{type}/{id}/recordings/{recording_type}/start",
        "/api/v2/video/calltypes/{name}",
        "/api/v2/external_storage/{name}/check",
        "/files/{key}",
        "/whip/{type}/{id}",
        "/whep/sessions/{session}/events",
        "/events/{type}/{id}",
        "/join/{type}/{id}",
        "/client/v4/accounts/{account_id}/realtime/kit/{app_id}/recordings/track",
        "/api/publish_token/{tokenId}",
    ] {
        assert!(paths.contains_key(must), "{must} is documented");
    }
    // Every documented operation is routed (an unknown route answers "no such API endpoint").
    let mut count = 0;
    for (path, ops) in paths {
        let concrete = concrete_path(path);
        for method in ops.as_object().unwrap().keys() {
            let (s, body) = t.call(&method.to_uppercase(), &concrete, None).await;
            assert!(
                !body.to_string().contains("no such API endpoint")
                    && s != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is documented but not routed: {s} {body}"
            );
            count += 1;
        }
        // Every operation's schema references resolve.
        for r in ops.to_string().match_indices("#/components/schemas/") {
            let rest = &ops.to_string()[r.0 + 21..];
            let name = rest.split('"').next().unwrap().to_owned();
            assert!(
                doc["components"]["schemas"].get(&name).is_some(),
                "{name} is defined"
            );
        }
    }
    assert!(count >= 20, "{count} operations");
}
