//! The track recorder through the RealtimeKit-compatible API: `reel publish` and a Chromium
//! join page as participants, the files checked with ffprobe and played in Chromium.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{API_SECRET, Receiver, eventually, python, stdout_of};
use crate::support::{browsers, decode, probe, publish, recording_call, script, tally_bus};

/// The recordings API of the dialect at `base`.
pub fn kit_url(base: &str, path: &str) -> String {
    format!("{base}/client/v4/accounts/acc/realtime/kit/app/recordings{path}")
}

/// Starts a track recording of `body` at `base` as soon as the meeting has a live session;
/// the recording object.
pub async fn start_track(http: &reqwest::Client, base: &str, body: Value) -> Value {
    eventually(
        Duration::from_secs(15),
        "a track recording to start",
        || async {
            let res = http
                .post(kit_url(base, "/track"))
                .bearer_auth(API_SECRET)
                .json(&body)
                .send()
                .await
                .unwrap();
            let ok = res.status().is_success();
            let v: Value = res.json().await.unwrap();
            assert!(
                ok || v["error"]["message"] == "there is no active session",
                "{v}"
            );
            ok.then(|| v["data"]["recording"].clone())
        },
    )
    .await
}

/// What Chromium makes of each URL: its element's duration, whether it played to the end,
/// its error, the seconds Web Audio decoded.
async fn play_in_chromium(urls: &[String]) -> Vec<Value> {
    let out = stdout_of(
        tokio::process::Command::new(python())
            .arg(script("play_in_chromium.py"))
            .args(urls),
        "Chromium playing the files",
    )
    .await;
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[tokio::test]
async fn only_listed_users_are_recorded_each_in_a_webm_per_layer() {
    let hook = Receiver::start(0).await;
    let (t, clips) = recording_call("trk", json!({}), Some(hook.url())).await;
    let hostile = format!("../../etc/Zoë 👋{}", "x".repeat(300));
    // Alice and Carol are there from the start; Bob joins from Chromium two seconds later
    // (they stay long enough for a Chromium slow to start on a busy machine).
    let alice = publish(&t, "trk", clips.path(), "vp8.ivf", "alice", "14s", &[]);
    let carol = publish(&t, "trk", clips.path(), "vp8.ivf", "carol", "14s", &[]);
    let recording = start_track(
        &t.http,
        &t.base,
        json!({"meeting_id": "trk", "user_ids": ["alice", "bob"],
               "layers": {"speakers": {"media_kind": "audio", "file_name_prefix": "speaker"},
                          "hostile": {"file_name_prefix": hostile}}}),
    );
    let received = tally_bus(&t, &reel::domain::Cid::parse("default:trk").unwrap());
    let bob = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        browsers(&t, "trk", &[("bob", "VP8")], 3, &[]).await;
    };
    let (alice, _carol, recording, ()) = tokio::join!(alice, carol, recording, bob);
    let bob_in_call = received.await.unwrap().seconds("bob/audio");
    assert_eq!(recording["status"], "INVOKED");
    let id = recording["id"].as_str().unwrap().to_owned();

    // The call session ends a second after everyone left, and with it the recording.
    let done = eventually(Duration::from_secs(30), "the upload", || async {
        let v: Value = t
            .http
            .get(kit_url(&t.base, &format!("/{id}")))
            .bearer_auth(API_SECRET)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (v["data"]["status"] == "UPLOADED").then(|| v["data"].clone())
    })
    .await;
    assert_eq!(done["stop_reason"]["reason"], "ALL_PEERS_LEFT", "{done}");
    let started = reel::domain::Timestamp::parse_rfc3339(done["started_time"].as_str().unwrap())
        .unwrap()
        .unix_millis();

    // Two layers, each with one file for Alice and one for Bob; none for Carol.
    let layers = done["download_url"].as_array().unwrap();
    let mut names: Vec<(String, String, String)> = Vec::new();
    for layer in layers {
        for (name, url) in layer["download_urls"].as_object().unwrap() {
            names.push((
                layer["layer_name"].as_str().unwrap().to_owned(),
                name.clone(),
                url["download_url"].as_str().unwrap().to_owned(),
            ));
        }
    }
    names.sort();
    let layer_names: Vec<&str> = names.iter().map(|(l, _, _)| l.as_str()).collect();
    assert_eq!(
        layer_names,
        ["hostile", "hostile", "speakers", "speakers"],
        "{done}"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut first_ms = std::collections::HashMap::new();
    for (layer, name, url) in &names {
        // {prefix}_{user}_{peer}_{stream_kind}_{media_kind}_{date_time}.webm
        let parts: Vec<&str> = name.trim_end_matches(".webm").rsplitn(4, '_').collect();
        let [ms, media, stream, rest] = parts[..] else {
            panic!("{name}")
        };
        assert_eq!((media, stream), ("audio", "peer"), "{name}");
        assert!(!name.contains('/') && name.len() < 200, "{name}");
        let user = if rest.contains("_alice_") {
            "alice"
        } else {
            "bob"
        };
        assert!(
            rest.contains(&format!("_{user}_")) && !rest.contains("carol"),
            "{name}"
        );
        if layer == "speakers" {
            assert!(rest.starts_with(&format!("speaker_{user}_")), "{name}");
        } else {
            assert!(rest.starts_with("______etc_Zo__"), "{name}");
        }
        let ms: i64 = ms.parse().unwrap();
        assert!(ms >= started - 100, "{name} starts before the recording");
        first_ms.insert(user, ms);

        let bytes = t.http.get(url).send().await.unwrap().bytes().await.unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let (codecs, duration) = probe(&path).await;
        assert_eq!(codecs, ["opus"], "{name}");
        let (errors, audio) = decode(&path).await;
        assert!(errors.is_empty(), "{name}: {errors}");
        println!("{name}: {duration:.3} s, {audio:.3} s of audio");
        if user == "alice" {
            // From the recording's start to her leaving.
            let media = alice["media_seconds"][0].as_f64().unwrap();
            assert!(
                duration > 4.0 && duration <= media + 0.1,
                "{duration} of {media}"
            );
        } else {
            // From his join, about three seconds in the call: his media as reel received it.
            assert!(
                duration > 2.5 && (duration - bob_in_call).abs() < 0.5,
                "bob: {duration} s, media received for {bob_in_call} s"
            );
        }
        assert!((audio - duration).abs() < 0.1, "{name}: {audio} s decoded");
    }
    assert!(
        first_ms["bob"] >= first_ms["alice"] + 1500,
        "bob is recorded from his join: {first_ms:?}"
    );

    // Chromium plays every file to its end.
    let urls: Vec<String> = names.iter().map(|(_, _, u)| u.clone()).collect();
    for (played, (_, name, _)) in play_in_chromium(&urls).await.iter().zip(&names) {
        println!("Chromium played {name}: {played}");
        assert_eq!(played["ended"], true, "{name}: {played}");
        assert_eq!(played["error"], Value::Null, "{name}: {played}");
        let decoded = played["decoded"].as_f64().unwrap_or(0.0);
        assert!(decoded > 2.5, "{name}: {played}");
    }

    // One webhook per status, in order.
    let statuses = crate::support::kit_statuses(&hook, None, 4).await;
    assert_eq!(statuses, ["INVOKED", "RECORDING", "UPLOADING", "UPLOADED"]);
}
