//! Webhooks: signed, ordered per call, delivered once, across receiver failures and restarts.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use axum::http::StatusCode;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::both_backends;
use crate::common::*;

fn valid_signature(body: &[u8], signature: &str) -> bool {
    let mut mac = Hmac::<Sha256>::new_from_slice(API_SECRET.as_bytes()).unwrap();
    mac.update(body);
    hex::decode(signature).is_ok_and(|sig| mac.verify_slice(&sig).is_ok())
}

/// Checks that each of `got` is signed, names reel's key and has an id of its own; the
/// events of each call, in the order received: type and recording type.
fn check_deliveries(got: &[Received]) -> BTreeMap<String, Vec<(String, String)>> {
    let mut ids = HashSet::new();
    let mut per_call: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for r in got {
        let sig = r.headers["x-signature"].to_str().unwrap();
        assert!(
            valid_signature(&r.body, sig),
            "signature of {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.headers["x-api-key"], API_KEY);
        assert!(
            ids.insert(r.headers["x-webhook-id"].to_str().unwrap().to_owned()),
            "no repeats"
        );
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert!(v["created_at"].as_i64().unwrap() > 1_600_000_000_000_000_000);
        per_call
            .entry(v["call_cid"].as_str().unwrap().to_owned())
            .or_default()
            .push((
                v["type"].as_str().unwrap().to_owned(),
                v["recording_type"].as_str().unwrap_or_default().to_owned(),
            ));
    }
    per_call
}

both_backends!(
    an_hour_without_the_receiver_loses_nothing,
    |db| async move {
        // Time runs 360 times faster for retries: 3 ms doubling up to 1.7 s stands for 1 s
        // doubling up to 10 minutes, and 10 s of outage for an hour.
        const HOUR: Duration = Duration::from_secs(10);
        let mut rx = Receiver::start(0).await;
        rx.down().await;
        let hook = rx.url();
        let t = TestServer::start_with(
            db,
            |s| {
                s.webhook_urls = Some(vec![hook]);
                s.retry_first = Some("3ms".parse().unwrap());
                s.retry_max = Some("1700ms".parse().unwrap());
            },
            bytes_recorders(100),
        )
        .await;
        let outage = std::time::Instant::now();
        // Five calls through the hour, each recorded once.
        let calls = ["h1", "h2", "h3", "h4", "h5"];
        for id in calls {
            let cid = t.create_call(id).await;
            t.server().services.start_session(&cid).await.unwrap();
            record(&t, id, "raw").await;
            tokio::time::sleep(HOUR / 6).await;
        }
        let store = t.server().services.store().clone();
        let queued = eventually(Duration::from_secs(20), "every event queued", || {
            let store = store.clone();
            async move {
                let d = store.deliveries(100).await.unwrap();
                (d.len() == 20).then_some(d)
            }
        })
        .await;
        tokio::time::sleep(HOUR.saturating_sub(outage.elapsed())).await;
        let d = store.deliveries(100).await.unwrap();
        let attempts: Vec<u32> = d.iter().map(|d| d.attempts).collect();
        println!("attempts per delivery after the hour: {attempts:?}");
        assert!(d.iter().all(|d| d.delivered_at.is_none()), "{d:?}");
        // The first event was tried as often as an hour of the default schedule tries it
        // (each call's events wait for the one before).
        assert!(attempts[0] >= 12, "{attempts:?}");
        assert_eq!(queued.len(), 20);

        rx.up().await;
        eventually(Duration::from_secs(30), "all twenty events", || async {
            (rx.received().len() >= 20).then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let got = rx.received();
        assert_eq!(got.len(), 20, "each event exactly once");
        let per_call = check_deliveries(&got);
        for id in calls {
            let kinds: Vec<&str> = per_call[&format!("default:{id}")]
                .iter()
                .map(|(kind, _)| kind.as_str())
                .collect();
            assert_eq!(
                kinds,
                [
                    "call.session_started",
                    "call.recording_started",
                    "call.recording_stopped",
                    "call.recording_ready"
                ],
                "{id}"
            );
        }
        assert_sdk_verifies(&got);
    }
);

/// Starts and stops a recording of `kind` in call `id` (which must have a session).
async fn record(t: &TestServer, id: &str, kind: &str) {
    let base = format!("/api/v2/video/call/default/{id}/recordings/{kind}");
    let (s, b) = t.call("POST", &format!("{base}/start"), None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = t.call("POST", &format!("{base}/stop"), None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

both_backends!(
    every_event_once_in_order_across_failures_and_a_restart,
    |db| async move {
        let mut rx = Receiver::start(3).await;
        let hook = rx.url();
        let mut t = TestServer::start_with(
            db,
            |s| s.webhook_urls = Some(vec![hook]),
            bytes_recorders(100),
        )
        .await;
        for id in ["w1", "w2"] {
            let cid = t.create_call(id).await;
            t.server().services.start_session(&cid).await.unwrap();
        }
        record(&t, "w1", "raw").await;
        record(&t, "w2", "individual").await;

        // The receiver fails its first 3 deliveries; retries (1 s, 2 s, ...) get the rest through.
        let eight = |rx: &Receiver| rx.received().len() >= 8;
        eventually(
            Duration::from_secs(30),
            "the first eight events",
            || async { eight(&rx).then_some(()) },
        )
        .await;
        assert!(
            rx.attempts() >= 11,
            "3 failures plus 8 deliveries (2 session starts, 6 recording events), got {}",
            rx.attempts()
        );

        // The receiver goes down; more events happen; reel crashes and restarts; the receiver returns.
        rx.down().await;
        record(&t, "w1", "individual").await;
        let store = t.server().services.store().clone();
        eventually(
            Duration::from_secs(20),
            "the new events to be queued and attempted",
            || {
                let store = store.clone();
                async move {
                    let d = store.deliveries(100).await.unwrap();
                    let failed = d
                        .iter()
                        .filter(|d| d.attempts > 0 && d.delivered_at.is_none())
                        .count();
                    (d.len() == 11 && failed >= 1).then_some(())
                }
            },
        )
        .await;
        t.restart().await;
        rx.up().await;
        eventually(Duration::from_secs(60), "all eleven events", || async {
            (rx.received().len() >= 11).then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let got = rx.received();
        assert_eq!(got.len(), 11, "each event exactly once");

        let per_call = check_deliveries(&got);
        let ev = |t: &str, k: &str| (format!("call.recording_{t}"), k.to_owned());
        assert_eq!(
            per_call["default:w1"],
            vec![
                ("call.session_started".to_owned(), String::new()),
                ev("started", "raw"),
                ev("stopped", "raw"),
                ev("ready", "raw"),
                ev("started", "individual"),
                ev("stopped", "individual"),
                ev("ready", "individual"),
            ]
        );
        assert_eq!(
            per_call["default:w2"],
            vec![
                ("call.session_started".to_owned(), String::new()),
                ev("started", "individual"),
                ev("stopped", "individual"),
                ev("ready", "individual")
            ]
        );

        assert_sdk_verifies(&got);
    }
);

both_backends!(
    given_up_deliveries_are_listed_and_can_be_retried,
    |db| async move {
        let rx = Receiver::start(usize::MAX).await;
        let hook = rx.url();
        let t = TestServer::start_with(
            db,
            |s| {
                s.webhook_urls = Some(vec![hook]);
                s.webhook_retry_for = Some("2s".parse().unwrap());
            },
            bytes_recorders(10),
        )
        .await;
        let cid = t.create_call("dead").await;
        t.server().services.start_session(&cid).await.unwrap();
        record(&t, "dead", "raw").await;
        let failed = eventually(
            Duration::from_secs(20),
            "a delivery to be given up",
            || async {
                let (_, body) = t.call("GET", "/api/v2/reel/webhooks/failed", None).await;
                let list = body["deliveries"].as_array().cloned().unwrap_or_default();
                list.iter()
                    .any(|d| {
                        d["state"] == "given_up" && d["event_type"] == "call.recording_started"
                    })
                    .then_some(list)
            },
        )
        .await;
        let dead = failed
            .iter()
            .find(|d| d["event_type"] == "call.recording_started")
            .unwrap();
        assert_eq!(dead["state"], "given_up");
        assert_eq!(dead["call_cid"], "default:dead");
        assert_eq!(dead["event_type"], "call.recording_started");
        assert_eq!(dead["last_status"], 500);
        let (s, _) = t
            .call_as(
                &t.user_token("root", Some("admin")),
                "GET",
                "/api/v2/reel/webhooks/failed",
                None,
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);

        // The command line shows the same, and queues it again.
        let db_url = t.config.database_url.clone();
        let cli = |args: &[&str]| {
            let out = std::process::Command::new(reel_bin())
                .args(args)
                .env("REEL_DATABASE_URL", db_url.expose())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let listed = cli(&["webhooks", "failed"]);
        assert!(
            listed.contains("given up\tcall.recording_started\tdefault:dead"),
            "{listed}"
        );
        // Once the receiver works again, a retry delivers them, in order.
        eventually(
            Duration::from_secs(20),
            "every delivery to be given up",
            || async {
                let d = t.server().services.store().deliveries(100).await.unwrap();
                d.iter()
                    .all(|d| d.state == reel::store::DeliveryState::Dead)
                    .then_some(())
            },
        )
        .await;
        rx.set_fail_first(0);
        let requeued = cli(&["webhooks", "retry", "--all"]);
        assert_eq!(requeued.trim(), "queued 4 delivery(ies) again");
        eventually(
            Duration::from_secs(40),
            "the retried deliveries",
            || async { (rx.received().len() == 4).then_some(()) },
        )
        .await;
        let types: Vec<String> = rx
            .received()
            .iter()
            .map(|r| {
                serde_json::from_slice::<Value>(&r.body).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(
            types,
            [
                "call.session_started",
                "call.recording_started",
                "call.recording_stopped",
                "call.recording_ready"
            ]
        );
    }
);
