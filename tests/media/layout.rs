//! The layout page of a live call, in headless Chromium: a tile per participant playing their
//! video, the call's layout settings, and the highlight and spotlight following the dominant
//! speaker the server detects; a participant who leaves loses their tile.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{case, visit};
use crate::support::{aiortc_publish_to, server};

/// The tiles as a user sees them: name, classes, and the size of the picture playing.
const TILES: &str = r#"() => [...document.querySelectorAll(".reel-tile")].map((t) => ({
  name: t.querySelector(".reel-label-name").textContent,
  cls: t.className,
  width: t.querySelector("video").videoWidth,
  playing: t.querySelector("video").readyState >= 2,
}))"#;

/// A step that waits up to `ms` until `condition` (a JS function of the tiles) holds; the
/// tiles then, or `{timeout, tiles}`.
fn until(condition: &str, ms: u64) -> String {
    format!(
        "async () => {{
  const tiles = {TILES};
  const end = Date.now() + {ms};
  for (;;) {{
    const now = tiles();
    if (({condition})(now)) return now;
    if (Date.now() > end) return {{ timeout: true, tiles: now }};
    await new Promise((r) => setTimeout(r, 100));
  }}
}}"
    )
}

fn speaking(name: &str) -> String {
    format!(
        r#"(ts) => ts.some((t) => t.name === "{name}" && t.cls.includes("reel-tile--speaking") && t.cls.includes("reel-tile--main"))"#
    )
}

fn names(tiles: &Value) -> Vec<&str> {
    tiles
        .as_array()
        .unwrap_or_else(|| panic!("{tiles}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn the_layout_page_draws_a_live_call_and_follows_its_speaker() {
    let t = server(Duration::from_secs(2), None).await;
    let (s, body) = t
        .call(
            "POST",
            "/api/v2/video/call/default/drawn",
            Some(json!({"data": {"created_by_id": "ann", "settings_override": {"recording": {
                "layout": {"name": "spotlight", "options": {"layout.background_color": "#123456"}}
            }}}})),
        )
        .await;
    assert_eq!(s, 200, "{body}");

    // ann talks for the first 8 s and leaves after 13; ben is silent until 8 s.
    let publisher = |user: &str, seconds: f64, sound: &'static str| {
        let (base, token) = (t.base.clone(), t.user_token(user, None));
        tokio::spawn(async move {
            aiortc_publish_to(&base, &token, "drawn", "vp8", seconds, sound).await
        })
    };
    let ann = publisher("ann", 13.0, "sine=frequency=440,volume=0:enable='gte(t,8)'");
    let ben = publisher("ben", 18.0, "sine=frequency=660,volume=0:enable='lt(t,8)'");

    let url = format!("{}/layout/default/drawn?token={}", t.base, t.server_token());
    let steps = [
        r#"() => getComputedStyle(document.querySelector(".reel-layout")).backgroundColor"#
            .to_owned(),
        until(
            "(ts) => ts.length === 2 && ts.every((t) => t.playing && t.width === 640)",
            10_000,
        ),
        until(&speaking("ann"), 10_000),
        until(&speaking("ben"), 12_000),
        until("(ts) => ts.length === 1", 10_000),
    ];
    let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
    let results = visit(&[case(&url, (1280, 720), None, &steps)])
        .await
        .remove(0);
    assert_eq!(results[0], "rgb(18, 52, 86)", "the call's layout options");
    let both = &results[1];
    let mut seen = names(both);
    seen.sort_unstable();
    assert_eq!(
        seen,
        ["ann", "ben"],
        "a tile per participant, each playing 640x360: {both}"
    );
    assert!(results[2].is_array(), "ann speaks first: {}", results[2]);
    let ben_speaks = &results[3];
    assert!(ben_speaks.is_array(), "then ben: {ben_speaks}");
    let others: Vec<_> = ben_speaks
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["name"] != "ben")
        .collect();
    assert!(
        others.iter().all(|t| {
            let cls = t["cls"].as_str().unwrap();
            !cls.contains("reel-tile--speaking") && cls.contains("reel-tile--bar")
        }),
        "ann moved to the bar without the highlight: {ben_speaks}"
    );
    assert_eq!(names(&results[4]), ["ben"], "ann left: {}", results[4]);
    for p in [ann, ben] {
        let sent = p.await.unwrap();
        assert!(sent.video > 100, "{sent:?}");
    }
}
