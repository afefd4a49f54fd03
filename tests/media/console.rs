//! The recordings console in a real browser: sign-in, every kind of recording with its
//! pictures, the storage total, playing, deleting with multi-select; and its data API,
//! which answers nothing without the session cookie and changes nothing without the token
//! only the console's page holds.

use std::path::Path;
use std::time::Duration;

use axum::http::StatusCode;
use reel::domain::{Recording, RecordingType};
use reel::store::RecordingFilter;
use serde_json::{Value, json};

use crate::broadcast::{broadcast, token};
use crate::common::{API_SECRET, TestServer, eventually, stdout_of};
use crate::support::{publish, recording_call, script, walk};

/// Every recording once all `count` are final.
async fn all_final(t: &TestServer, count: usize) -> Vec<Recording> {
    let filter = RecordingFilter {
        types: RecordingType::ALL.to_vec(),
        limit: 100,
        ..RecordingFilter::default()
    };
    let store = t.server().services.store();
    eventually(
        Duration::from_secs(40),
        "every recording to end",
        || async {
            let (found, _) = store.find_recordings(&filter).await.unwrap();
            (found.len() == count && found.iter().all(|r| r.state.is_final())).then_some(found)
        },
    )
    .await
}

/// Sends `method` to the console's `path` with `cookie` and `change` token, if given.
async fn console(
    t: &TestServer,
    (method, path): (&str, &str),
    cookie: Option<&str>,
    change: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, String) {
    let mut req = t
        .http
        .request(method.parse().unwrap(), format!("{}/console{path}", t.base));
    if let Some(c) = cookie {
        req = req.header("cookie", format!("reel_console={c}"));
    }
    if let Some(c) = change {
        req = req.header("x-reel-change", c);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = StatusCode::from_u16(res.status().as_u16()).unwrap();
    (status, res.text().await.unwrap())
}

/// Mean and spread of the brightness of the `[x, y, w, h]` box of the PNG `file`.
fn brightness(file: &Path, [x, y, w, h]: [f64; 4]) -> (f64, f64) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(file).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let channels = info.color_type.samples();
    let mut values = Vec::new();
    for row in (y as usize + 4)..((y + h) as usize - 4).min(info.height as usize) {
        for col in (x as usize + 4)..((x + w) as usize - 4).min(info.width as usize) {
            let p = &pixels[(row * info.width as usize + col) * channels..][..3];
            values
                .push(0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]));
        }
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let spread =
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64).sqrt();
    (mean, spread)
}

#[tokio::test]
async fn the_console_lists_plays_and_deletes_recordings_for_whoever_signed_in() {
    // An individual recording of a call, and three recorded broadcasts with pictures.
    let (t, clips) = recording_call(
        "standup",
        json!({"individual_recording": {"mode": "auto-on", "output_types": ["audio_video"]}}),
        None,
    )
    .await;
    let (_, value) = token(
        &t,
        json!({"label": "studio", "streams": [{"streamName": ".*", "isRegex": true}],
               "record": true, "enableThumbnails": true}),
    )
    .await;
    let broadcasts: Vec<_> = ["lobby", "stage", "garden"]
        .into_iter()
        .map(|stream| broadcast(&t, (clips.path(), "vp8.ivf"), stream, &value, 14))
        .collect();
    publish(&t, "standup", clips.path(), "vp8.ivf", "alice", "4s", &[]).await;
    for mut b in broadcasts {
        assert!(b.wait().await.unwrap().success());
    }
    let recordings = all_final(&t, 4).await;
    let id_of = |kind: RecordingType, call: &str| {
        recordings
            .iter()
            .find(|r| r.recording_type == kind && r.cid.to_string() == call)
            .unwrap()
            .id
            .to_string()
    };
    let individual = id_of(RecordingType::Individual, "default:standup");
    let stage = id_of(RecordingType::Broadcast, "broadcast:stage");
    let stored = t
        .server()
        .services
        .stored_bytes(&reel::auth::Caller::Server)
        .await
        .unwrap();

    // Without a session, or with a forged one, the data API gives nothing.
    let forged = "99999999999.00112233445566778899aabbccddeeff.00";
    for cookie in [None, Some(forged), Some("")] {
        for (method, path) in [("GET", "/api/recordings"), ("GET", "/api/usage")] {
            let (s, body) = console(&t, (method, path), cookie, None, None).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{path} {cookie:?}: {body}");
            assert!(!body.contains("standup"), "{body}");
        }
        let ids = json!({"ids": [individual]});
        let delete = ("POST", "/api/delete");
        let (s, _) = console(&t, delete, cookie, Some("00"), Some(ids)).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, page) = console(&t, ("GET", ""), Some(forged), None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.contains("API secret") && !page.contains("reel-change"),
        "{page}"
    );

    // A signed-in session still needs the page's change token to delete.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = no_redirects
        .post(format!("{}/console/sign-in", t.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("secret={API_SECRET}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 303);
    let set_cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .find_map(|h| h.to_str().ok()?.strip_prefix("reel_console="))
        .map(|c| c.split(';').next().unwrap().to_owned());
    let Some(cookie) = set_cookie else {
        panic!("no session cookie: {:?}", res.headers())
    };
    let (s, listed) = console(&t, ("GET", "/api/recordings"), Some(&cookie), None, None).await;
    assert_eq!(s, StatusCode::OK);
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed["total"], 4, "{listed}");
    let ids = json!({"ids": [individual]});
    for change in [None, Some("00"), Some("zz")] {
        let (s, body) = console(
            &t,
            ("POST", "/api/delete"),
            Some(&cookie),
            change,
            Some(ids.clone()),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    }
    assert_eq!(all_final(&t, 4).await.len(), 4, "nothing was deleted");

    // A person uses it.
    let shots = tempfile::tempdir().unwrap();
    let out = stdout_of(
        tokio::process::Command::new(crate::common::python())
            .arg(script("console.py"))
            .arg(&t.base)
            .arg(API_SECRET)
            .arg(shots.path())
            .args([&individual, &stage]),
        "console.py",
    )
    .await;
    let seen: Value = serde_json::from_str(out.trim()).unwrap();
    println!("{seen:#}");
    // The screenshots stay in the target directory for a look.
    let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console");
    std::fs::create_dir_all(&kept).unwrap();
    for shot in ["grid", "list", "phone", "player"] {
        let png = format!("{shot}.png");
        std::fs::copy(shots.path().join(&png), kept.join(&png)).unwrap();
    }
    assert_eq!(seen["console"], json!([]), "the page logged errors");
    assert_eq!(seen["refused"], "That is not the API secret.");
    assert_eq!(
        seen["cookies"],
        json!([{"name": "reel_console", "httpOnly": true, "sameSite": "Strict", "path": "/console"}])
    );
    assert_eq!(seen["count"], "4 recordings");
    assert_eq!(seen["usage"], shown_bytes(stored), "{stored} bytes stored");

    // Each broadcast shows its picture in the grid; the individual recording (MKV, which
    // browsers do not play) shows its kind.
    let cards = seen["cards"].as_array().unwrap();
    assert_eq!(cards.len(), 4);
    let grid = shots.path().join("grid.png");
    for card in cards {
        let id = card["id"].as_str().unwrap();
        let b = card["box"].as_array().unwrap();
        let area = [0, 1, 2, 3].map(|i| b[i].as_f64().unwrap());
        let (mean, spread) = brightness(&grid, area);
        if id == individual {
            assert_eq!(card["picture"], Value::Null);
            // The dark placeholder with one word on it.
            assert!(mean < 70.0 && spread < 40.0, "{id}: {mean} ± {spread}");
        } else {
            assert_eq!(card["picture"], true, "{card}");
            // The test clip's colour bars: bright and varied.
            assert!(mean > 70.0 && spread > 40.0, "{id}: {mean} ± {spread}");
        }
    }
    let mut rows: Vec<_> = seen["rows"].as_array().unwrap().clone();
    let mut ids: Vec<_> = cards.iter().map(|c| c["id"].clone()).collect();
    rows.sort_by_key(Value::to_string);
    ids.sort_by_key(Value::to_string);
    assert_eq!(rows, ids, "the list shows what the grid shows");
    assert_eq!(seen["phone_overflow"], 0, "nothing is wider than a phone");

    // Played: time goes on, and the player tells the picture's size.
    let played = &seen["played"];
    assert!(played["current_time"].as_f64().unwrap() > 1.0, "{played}");
    assert_eq!(played["dimensions"], "320 × 240", "{played}");
    let length = played["length"].as_str().unwrap();
    assert!(["0:13", "0:14"].contains(&length), "{played}");

    // The two picked are gone from the page, the store and the disk.
    assert_eq!(seen["delete_label"], "Delete selected (2)");
    let left: Vec<_> = seen["left"].as_array().unwrap().iter().collect();
    assert_eq!(left.len(), 2);
    assert!(!left.iter().any(|id| *id == &individual || *id == &stage));
    let remaining = all_final(&t, 2).await;
    assert!(
        remaining
            .iter()
            .all(|r| r.id.as_str() != individual && r.id.as_str() != stage)
    );
    let dir = t.config.recordings_dir();
    let on_disk: Vec<_> = walk(&dir)
        .into_iter()
        .map(|p| p.strip_prefix(&dir).unwrap().display().to_string())
        .collect();
    assert!(
        !on_disk
            .iter()
            .any(|p| p.contains("standup") || p.contains("stage_")),
        "{on_disk:?}"
    );
    assert_ne!(seen["usage_after"], seen["usage"]);
    assert_eq!(seen["picked_all"], 2);
    assert_eq!(seen["cookies_after"], json!([]), "signed out");
}

/// `n` bytes as the console writes them: three significant digits in B, KB, MB, GB.
fn shown_bytes(n: u64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"];
    let (mut v, mut i) = (n as f64, 0);
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    match (i, v < 10.0) {
        (0, _) => format!("{n} B"),
        (_, true) => format!("{v:.2} {}", units[i]),
        (_, false) => format!("{v:.1} {}", units[i]),
    }
}
