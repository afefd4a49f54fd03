//! The layout app in real Chromium, through `reel layout preview`: tiles where each layout
//! puts them (DOM boxes and the pixels of each participant's test colour), every option
//! against its default, external stylesheets, custom pages, screen sharing and the dominant
//! speaker, and the preview's screenshot against the page a recording loads.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Db, TestServer, case, free_port, visit};

const REEL: &str = env!("CARGO_BIN_EXE_reel");
const LANDSCAPE: (u32, u32) = (1280, 720);
const PORTRAIT: (u32, u32) = (720, 1280);

/// A running `reel layout preview`.
struct Preview {
    _child: tokio::process::Child,
    base: String,
}

impl Preview {
    async fn start(args: &[&str]) -> Self {
        let port = free_port();
        let child = tokio::process::Command::new(REEL)
            .args(["layout", "preview", "--port", &port.to_string()])
            .args(args)
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("reel starts");
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if reqwest::get(format!("{base}/frame")).await.is_ok() {
                return Self {
                    _child: child,
                    base,
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the preview did not start on {base}");
    }

    /// The frame URL of a still variant.
    fn frame(&self, layout: &str, participants: u32, screenshare: bool, options: &Value) -> String {
        let options = options.to_string();
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("still", "true")
            .append_pair("layout", layout)
            .append_pair("participants", &participants.to_string())
            .append_pair("screenshare", &screenshare.to_string())
            .append_pair("options", &options)
            .finish();
        format!("{}/frame?{query}", self.base)
    }
}

/// Runs `reel layout preview` with `args`; its stderr if it failed.
async fn run_preview(args: &[&std::ffi::OsStr]) -> Result<(), String> {
    let out = tokio::process::Command::new(REEL)
        .args(["layout", "preview"])
        .args(args)
        .output()
        .await
        .expect("reel starts");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// What the page draws: the layout's classes, the readiness marker, warnings and tiles.
const MEASURE: &str = r#"() => ({
  root: document.getElementById("reel-layout").className,
  ready: document.getElementById("egress-ready-for-capture")?.dataset.reason ?? null,
  warnings: [...document.querySelectorAll(".reel-warnings li")].map((l) => l.textContent),
  tiles: [...document.querySelectorAll(".reel-tile")].map((t) => {
    const r = t.getBoundingClientRect();
    return { id: t.dataset.participant, cls: t.className, x: r.x, y: r.y, w: r.width, h: r.height };
  }),
})"#;

const PALETTE: &str = r#"async () => (await import("/layout-app/synthetic.js")).PALETTE"#;

#[derive(Debug)]
struct Tile {
    index: usize,
    cls: String,
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

impl Tile {
    fn has(&self, class: &str) -> bool {
        self.cls.split(' ').any(|c| c == class)
    }
}

fn tiles(measured: &Value) -> Vec<Tile> {
    measured["tiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| Tile {
            index: t["id"].as_str().unwrap()["synthetic-".len()..]
                .parse()
                .unwrap(),
            cls: t["cls"].as_str().unwrap().to_owned(),
            x: t["x"].as_f64().unwrap(),
            y: t["y"].as_f64().unwrap(),
            w: t["w"].as_f64().unwrap(),
            h: t["h"].as_f64().unwrap(),
        })
        .collect()
}

struct Png {
    width: u32,
    /// Bytes per pixel: RGB or RGBA.
    step: usize,
    data: Vec<u8>,
}

impl Png {
    fn read(path: &Path) -> Self {
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        let step = match info.color_type {
            png::ColorType::Rgba => 4,
            png::ColorType::Rgb => 3,
            other => panic!("{}: {other:?}", path.display()),
        };
        buf.truncate(info.buffer_size());
        Self {
            width: info.width,
            step,
            data: buf,
        }
    }

    fn at(&self, x: f64, y: f64) -> [u8; 3] {
        let i = self.step * (y as usize * self.width as usize + x as usize);
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }
}

fn rgb(hex: &str) -> [u8; 3] {
    let n = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap();
    [(n >> 16) as u8, (n >> 8) as u8, n as u8]
}

fn close(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 12)
}

fn distinct(values: impl Iterator<Item = f64>) -> usize {
    let mut v: Vec<i64> = values.map(|x| x.round() as i64).collect();
    v.sort_unstable();
    v.dedup();
    v.len()
}

fn overlap(a: &Tile, b: &Tile) -> f64 {
    let w = (a.x + a.w).min(b.x + b.w) - a.x.max(b.x);
    let h = (a.y + a.h).min(b.y + b.h) - a.y.max(b.y);
    w.max(0.0) * h.max(0.0)
}

#[tokio::test]
async fn each_layout_puts_its_tiles_where_it_should_at_every_size() {
    let preview = Preview::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut plan = Vec::new();
    let mut cases = Vec::new();
    for layout in ["grid", "spotlight", "single-participant", "mobile"] {
        for n in [1, 4, 9, 25] {
            for size in [LANDSCAPE, PORTRAIT] {
                let shot = dir
                    .path()
                    .join(format!("{layout}-{n}-{}x{}.png", size.0, size.1));
                let url = preview.frame(layout, n, false, &json!({}));
                cases.push(case(&url, size, Some(&shot), &[MEASURE, PALETTE]));
                plan.push((layout, n as usize, size, shot));
            }
        }
    }
    let pages = visit(&cases).await;
    for ((layout, n, (w, h), shot), results) in plan.into_iter().zip(pages) {
        let what = format!("{layout}, {n} participants, {w}x{h}");
        let palette: Vec<String> = serde_json::from_value(results[1].clone()).unwrap();
        let measured = &results[0];
        let tiles = tiles(measured);
        assert!(measured["ready"].is_string(), "{what}: not ready");
        let expected = match layout {
            "grid" => n.min(20),
            "spotlight" => 1 + (n - 1).min(5),
            "single-participant" => 1,
            _ => n.min(2),
        };
        assert_eq!(tiles.len(), expected, "{what}: {tiles:?}");
        for (i, a) in tiles.iter().enumerate() {
            assert!(
                a.x >= -0.5
                    && a.y >= -0.5
                    && a.x + a.w <= w as f64 + 0.5
                    && a.y + a.h <= h as f64 + 0.5,
                "{what}: {a:?} leaves the frame"
            );
            // Only the mobile layout's picture-in-picture lies over another tile.
            for b in tiles[i + 1..].iter().filter(|b| !b.has("reel-tile--pip")) {
                assert!(overlap(a, b) < 1.0, "{what}: {a:?} overlaps {b:?}");
            }
        }
        match layout {
            "grid" => {
                let (c, r) = match n {
                    1 => (1, 1),
                    4 => (2, 2),
                    9 => (3, 3),
                    _ => (5, 4),
                };
                assert_eq!(distinct(tiles.iter().map(|t| t.x)), c, "{what}: columns");
                assert_eq!(distinct(tiles.iter().map(|t| t.y)), r, "{what}: rows");
                assert_eq!(
                    distinct(tiles.iter().map(|t| t.w)),
                    1,
                    "{what}: equal tiles"
                );
                // Join order, row by row.
                assert!(tiles.windows(2).all(|p| p[0].index < p[1].index), "{what}");
            }
            "spotlight" => {
                let main = &tiles[0];
                assert!(
                    main.has("reel-tile--main") && main.index == 0,
                    "{what}: {main:?}"
                );
                for bar in &tiles[1..] {
                    assert!(
                        bar.has("reel-tile--bar") && bar.y >= main.y + main.h,
                        "{what}: {bar:?}"
                    );
                    assert!(bar.w * bar.h < main.w * main.h / 4.0, "{what}: {bar:?}");
                }
            }
            "single-participant" => {
                let t = &tiles[0];
                assert_eq!(
                    (t.x, t.y, t.w, t.h),
                    (0.0, 0.0, w as f64, h as f64),
                    "{what}"
                );
            }
            _ => {
                let main = &tiles[0];
                assert_eq!((main.w, main.h), (w as f64, h as f64), "{what}");
                if let Some(pip) = tiles.get(1) {
                    assert!(pip.has("reel-tile--pip"), "{what}: {pip:?}");
                    assert!(
                        pip.x > w as f64 / 2.0 && pip.y > h as f64 / 2.0,
                        "{what}: {pip:?}"
                    );
                }
            }
        }
        // Each tile shows its participant: the test colour in the middle, or the placeholder.
        let png = Png::read(&shot);
        for t in &tiles {
            let middle = png.at(t.x + t.w / 2.0, t.y + t.h / 2.0);
            if t.has("reel-tile--no-video") {
                assert_eq!(t.index % 4, 3, "{what}: {t:?}");
                let side = png.at(t.x + t.w * 0.1, t.y + t.h / 2.0);
                assert!(
                    close(side, [0, 0, 0]),
                    "{what}: placeholder of {t:?} is {side:?}"
                );
            } else {
                let want = rgb(&palette[t.index]);
                assert!(
                    close(middle, want),
                    "{what}: {t:?} shows {middle:?}, not {want:?}"
                );
            }
        }
    }
}

/// How to read what an option changes: a JS expression over `q(selector)` (an element),
/// `css(selector, property)`, `box(selector)` and `where(selector, within)`.
const HELPERS: &str = r#"
const q = (s) => document.querySelector(s);
const css = (s, p) => getComputedStyle(q(s))[p];
const box = (s) => q(s).getBoundingClientRect();
const third = (v, size) => (v < size / 3 ? 0 : v < (2 * size) / 3 ? 1 : 2);
const where = (s, within) => {
  const b = box(s);
  const w = within ? box(within) : { x: 0, y: 0, width: innerWidth, height: innerHeight };
  const cx = third(b.x + b.width / 2 - w.x, w.width), cy = third(b.y + b.height / 2 - w.y, w.height);
  return ["left", "center", "right"][cx] + " " + ["top", "center", "bottom"][cy];
};
const all = (s) => [...document.querySelectorAll(s)].map((e) => e.getBoundingClientRect());
const count = (v) => new Set(v.map((x) => Math.round(x))).size;
"#;

const PIXEL: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

/// (key, value, layout, participants, screenshare, other options, probe, default, changed)
type OptionCase<'a> = (
    &'a str,
    Value,
    &'a str,
    u32,
    bool,
    Value,
    String,
    &'a str,
    &'a str,
);

#[tokio::test]
async fn every_option_changes_what_it_names_and_its_default_holds_when_absent() {
    let schema: Value = serde_json::from_str(reel::domain::layout::SCHEMA_JSON).unwrap();
    let label = ".reel-tile:not(.reel-tile--no-video) .reel-label";
    let plain = ".reel-tile:not(.reel-tile--speaking)";
    let logo = json!({"logo.image_url": PIXEL});
    let titled = json!({"title.text": "Q&A"});
    let cases: Vec<OptionCase> = vec![
        ("video.background_color", json!("#123456"), "grid", 4, false, json!({}), "css('.reel-layout', 'backgroundColor')".into(), "rgb(0, 0, 0)", "rgb(18, 52, 86)"),
        ("layout.background_color", json!("#123456"), "grid", 4, false, json!({}), "css('.reel-layout', 'backgroundColor')".into(), "rgb(0, 0, 0)", "rgb(18, 52, 86)"),
        ("video.scale_mode", json!("fit"), "grid", 4, false, json!({}), "css('.reel-tile--camera .reel-video', 'objectFit')".into(), "cover", "contain"),
        ("video.screenshare_scale_mode", json!("fill"), "spotlight", 4, true, json!({}), "css('.reel-tile--screen .reel-video', 'objectFit')".into(), "contain", "cover"),
        ("logo.image_url", json!(PIXEL), "grid", 4, false, json!({}), "String(q('.reel-logo').hidden)".into(), "true", "false"),
        ("logo.horizontal_position", json!("left"), "grid", 4, false, logo.clone(), "where('.reel-logo').split(' ')[0]".into(), "center", "left"),
        ("logo.vertical_position", json!("bottom"), "grid", 4, false, logo.clone(), "where('.reel-logo').split(' ')[1]".into(), "top", "bottom"),
        ("participant.label_display", json!(false), "grid", 4, false, json!({}), format!("css('{label}', 'display')"), "block", "none"),
        ("participant_label.display", json!(false), "grid", 4, false, json!({}), format!("css('{label}', 'display')"), "block", "none"),
        ("participant.label_text_color", json!("#ff0000"), "grid", 4, false, json!({}), format!("css('{label}', 'color')"), "rgb(0, 0, 0)", "rgb(255, 0, 0)"),
        ("participant_label.text_color", json!("red"), "grid", 4, false, json!({}), format!("css('{label}', 'color')"), "rgb(0, 0, 0)", "rgb(255, 0, 0)"),
        ("participant.label_background_color", json!("#00ff00"), "grid", 4, false, json!({}), format!("css('{label}', 'backgroundColor')"), "rgba(0, 0, 0, 0)", "rgb(0, 255, 0)"),
        ("participant_label.background_color", json!("#00ff00"), "grid", 4, false, json!({}), format!("css('{label}', 'backgroundColor')"), "rgba(0, 0, 0, 0)", "rgb(0, 255, 0)"),
        ("participant.label_display_border", json!(false), "grid", 4, false, json!({}), format!("css('{label}', 'borderTopColor')"), "rgb(204, 204, 204)", "rgba(0, 0, 0, 0)"),
        ("participant.label_border_color", json!("#0000ff"), "grid", 4, false, json!({}), format!("css('{label}', 'borderTopColor')"), "rgb(204, 204, 204)", "rgb(0, 0, 255)"),
        ("participant_label.border_color", json!("#0000ff"), "grid", 4, false, json!({}), format!("css('{label}', 'borderTopColor')"), "rgb(204, 204, 204)", "rgb(0, 0, 255)"),
        ("participant.label_border_radius", json!(0.5), "grid", 4, false, json!({}), format!("css('{label}', 'borderTopLeftRadius')"), "19.2px", "8px"),
        ("participant_label.border_radius", json!("0px"), "grid", 4, false, json!({}), format!("css('{label}', 'borderTopLeftRadius')"), "19.2px", "0px"),
        ("participant.label_border_rounded", json!(false), "grid", 4, false, json!({}), format!("css('{label}', 'borderTopLeftRadius')"), "19.2px", "0px"),
        ("participant.label_horizontal_position", json!("right"), "single-participant", 1, false, json!({}), "where('.reel-label', '.reel-tile').split(' ')[0]".into(), "left", "right"),
        ("participant_label.horizontal_position", json!("center"), "single-participant", 1, false, json!({}), "where('.reel-label', '.reel-tile').split(' ')[0]".into(), "left", "center"),
        ("participant.label_vertical_position", json!("top"), "single-participant", 1, false, json!({}), "where('.reel-label', '.reel-tile').split(' ')[1]".into(), "bottom", "top"),
        ("participant_label.vertical_position", json!("center"), "single-participant", 1, false, json!({}), "where('.reel-label', '.reel-tile').split(' ')[1]".into(), "bottom", "center"),
        ("participant.video_border_color", json!("#ff00ff"), "grid", 4, false, json!({}), format!("css('{plain}', 'borderTopColor')"), "rgb(204, 204, 204)", "rgb(255, 0, 255)"),
        ("participant.video_border_radius", json!(0.5), "grid", 4, false, json!({}), "css('.reel-tile', 'borderTopLeftRadius')".into(), "19.2px", "8px"),
        ("participant.border_radius", json!("0px"), "grid", 4, false, json!({}), "css('.reel-tile', 'borderTopLeftRadius')".into(), "19.2px", "0px"),
        ("participant.video_border_rounded", json!(false), "grid", 4, false, json!({}), "css('.reel-tile', 'borderTopLeftRadius')".into(), "19.2px", "0px"),
        ("participant.video_border_width", json!(6), "grid", 4, false, json!({}), format!("css('{plain}', 'borderTopWidth')"), "2px", "6px"),
        ("participant.video_highlight_border_color", json!("#ff0000"), "grid", 4, false, json!({}), "css('.reel-tile--speaking', 'borderTopColor')".into(), "rgb(124, 252, 0)", "rgb(255, 0, 0)"),
        ("participant.placeholder_background_color", json!("#333333"), "grid", 4, false, json!({}), "css('.reel-tile--no-video', 'backgroundColor')".into(), "rgb(0, 0, 0)", "rgb(51, 51, 51)"),
        ("participant.aspect_ratio", json!("1/1"), "grid", 4, false, json!({}), "all('.reel-tile').every((b) => Math.abs(b.width - b.height) < 1) ? 'square' : 'wide'".into(), "wide", "square"),
        ("grid.columns", json!(2), "grid", 6, false, json!({}), "String(count(all('.reel-tile').map((b) => b.x)))".into(), "3", "2"),
        ("grid.rows", json!(1), "grid", 4, false, json!({}), "String(count(all('.reel-tile').map((b) => b.y)))".into(), "2", "1"),
        ("grid.cell_padding", json!(40), "grid", 4, false, json!({}), "String(Math.round(all('.reel-tile')[1].x - all('.reel-tile')[0].right))".into(), "10", "40"),
        ("grid.margin", json!(40), "spotlight", 4, false, json!({}), "String(Math.round(box('.reel-tile--bar').y - box('.reel-tile--main').bottom))".into(), "10", "40"),
        ("grid.size_percentage", json!(50), "grid", 4, false, json!({}), "String(Math.round((Math.max(...all('.reel-tile').map((b) => b.right)) - Math.min(...all('.reel-tile').map((b) => b.x))) / innerWidth * 100))".into(), "88", "48"),
        ("grid.position", json!("top"), "spotlight", 4, false, json!({}), "box('.reel-tile--bar').y < box('.reel-tile--main').y ? 'above' : 'below'".into(), "below", "above"),
        ("layout.spotlight.participants_bar_position", json!("left"), "spotlight", 4, false, json!({}), "box('.reel-tile--bar').right <= box('.reel-tile--main').x ? 'left' : 'elsewhere'".into(), "elsewhere", "left"),
        ("screenshare_layout", json!("grid"), "grid", 4, true, json!({}), "q('.reel-layout').className.match(/reel-layout--(\\S+)/)[1]".into(), "spotlight", "grid"),
        ("title.text", json!("Q&A"), "grid", 4, false, json!({}), "q('.reel-title').hidden ? 'hidden' : q('.reel-title').textContent".into(), "hidden", "Q&A"),
        ("title.color", json!("#00ff00"), "grid", 4, false, titled.clone(), "css('.reel-title', 'color')".into(), "rgb(255, 255, 255)", "rgb(0, 255, 0)"),
        ("title.font_size", json!(40), "grid", 4, false, titled.clone(), "css('.reel-title', 'fontSize')".into(), "28px", "40px"),
        ("title.horizontal_position", json!("right"), "grid", 4, false, titled.clone(), "where('.reel-title').split(' ')[0]".into(), "center", "right"),
        ("title.vertical_position", json!("bottom"), "grid", 4, false, titled.clone(), "where('.reel-title').split(' ')[1]".into(), "top", "bottom"),
        ("layout.background_image", json!(PIXEL), "grid", 4, false, json!({}), "css('.reel-background', 'backgroundImage').slice(0, 19)".into(), "none", "url(\"data:image/png"),
        ("layout.grid.page_size", json!(4), "grid", 6, false, json!({}), "all('.reel-tile').length + ' ' + q('.reel-page-indicator').textContent".into(), "6 ", "4 1 / 2"),
        ("layout.single-participant.padding_inline", json!(100), "single-participant", 1, false, json!({}), "String(box('.reel-tile').x)".into(), "0", "100"),
        ("layout.single-participant.padding_block", json!(50), "single-participant", 1, false, json!({}), "String(box('.reel-tile').y)".into(), "0", "50"),
    ];
    // Every option and alias of the schema is exercised.
    let mut keys: Vec<&str> = schema["options"]
        .as_object()
        .unwrap()
        .keys()
        .chain(schema["aliases"].as_object().unwrap().keys())
        .map(String::as_str)
        .collect();
    keys.retain(|k| !cases.iter().any(|c| c.0 == *k));
    assert!(keys.is_empty(), "options without a case: {keys:?}");

    let preview = Preview::start(&[]).await;
    let mut pages = Vec::new();
    for (key, value, layout, n, share, others, probe, _, _) in &cases {
        let step = format!("() => {{ {HELPERS} return {probe}; }}");
        let mut changed = others.clone();
        changed[*key] = value.clone();
        for options in [others, &changed] {
            let url = preview.frame(layout, *n, *share, options);
            pages.push(case(&url, LANDSCAPE, None, &[&step, MEASURE]));
        }
    }
    let results = visit(&pages).await;
    for (c, pair) in cases.iter().zip(results.chunks(2)) {
        let (key, value, .., default, changed) = c;
        for (page, want) in pair.iter().zip([default, changed]) {
            assert_eq!(page[0], json!(want), "{key} = {value}");
            assert_eq!(page[1]["warnings"], json!([]), "{key} = {value}");
        }
    }
}

#[tokio::test]
async fn an_external_stylesheet_restyles_labels_and_tiles_and_its_changes_reload_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let css = dir.path().join("brand.css");
    // One rule through a documented class, one through a custom property.
    std::fs::write(
        &css,
        ".reel-label { color: rgb(1, 2, 3); }\n.reel-layout { --reel-video-border-radius: 3px; }\n",
    )
    .unwrap();
    let preview = Preview::start(&["--css", css.to_str().unwrap()]).await;
    let probe = format!(
        "() => {{ {HELPERS} return [css('.reel-label', 'color'), css('.reel-tile', 'borderTopLeftRadius')]; }}"
    );
    let url = preview.frame("grid", 4, false, &json!({}));
    let pages = visit(&[case(&url, LANDSCAPE, None, &[&probe])]).await;
    assert_eq!(pages[0][0], json!(["rgb(1, 2, 3)", "3px"]));

    // Saving the stylesheet tells the open preview to reload.
    let mut changes = reqwest::get(format!("{}/preview/changes", preview.base))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    std::fs::write(&css, ".reel-label { color: rgb(4, 5, 6); }\n").unwrap();
    let chunk = tokio::time::timeout(Duration::from_secs(5), changes.chunk())
        .await
        .expect("a change event within 5 s")
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&chunk).contains("data: changed"));
    let pages = visit(&[case(&url, LANDSCAPE, None, &[&probe])]).await;
    assert_eq!(pages[0][0][0], "rgb(4, 5, 6)");
}

#[tokio::test]
async fn a_custom_page_gets_the_config_and_tells_when_it_is_ready() {
    // The user's own page: painted in the background colour its options name, if it was
    // handed the grid layout; ready when it says so.
    let page = r#"<!doctype html><html><body style="margin:0"><div id="box" style="width:100vw;height:100vh"></div>
<script>
window.setupLayout = (config) => {
  const ok = config.layout === "grid" && config.source === "synthetic" && config.base_url.startsWith("http://127.0.0.1:");
  document.getElementById("box").style.background = ok ? config.options["video.background_color"] : "red";
  const ready = document.createElement("div");
  ready.id = "egress-ready-for-capture";
  document.body.append(ready);
};
</script></body></html>"#;
    let app = axum::Router::new().route(
        "/app.html",
        axum::routing::get(move || async move { axum::response::Html(page) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let options = dir.path().join("options.json");
    std::fs::write(&options, r##"{"video.background_color": "#12ab34"}"##).unwrap();
    let shot = dir.path().join("custom.png");
    let app = format!("http://{addr}/app.html");
    run_preview(&[
        "--layout".as_ref(),
        "grid".as_ref(),
        "--options".as_ref(),
        options.as_os_str(),
        "--app-url".as_ref(),
        app.as_ref(),
        "--screenshot".as_ref(),
        shot.as_os_str(),
    ])
    .await
    .unwrap();
    let png = Png::read(&shot);
    assert_eq!(png.width, 1280);
    assert_eq!(png.at(640.0, 360.0), [0x12, 0xab, 0x34]);

    // A page that never says it is ready is an error that names it.
    let never = dir.path().join("never.png");
    let err = run_preview(&[
        "--app-url".as_ref(),
        "data:text/html,<p>nothing</p>".as_ref(),
        "--ready-timeout".as_ref(),
        "2s".as_ref(),
        "--screenshot".as_ref(),
        never.as_os_str(),
    ])
    .await
    .unwrap_err();
    assert!(
        err.contains("did not show #egress-ready-for-capture"),
        "{err}"
    );
    assert!(!dir.path().join("never.png").exists());
}

#[tokio::test]
async fn screen_sharing_switches_layouts_and_the_dominant_speaker_moves_the_highlight() {
    let preview = Preview::start(&[]).await;
    let settle = "() => new Promise((r) => setTimeout(r, 300))";
    let share = |on: bool| {
        format!(
            "() => {{ reelLayout.controls.share({on}); return new Promise((r) => setTimeout(r, 300)); }}"
        )
    };
    let speak = |i: u32| {
        format!(
            "() => {{ reelLayout.controls.speak({i}); return new Promise((r) => setTimeout(r, 300)); }}"
        )
    };
    let (on, off, two) = (share(true), share(false), speak(2));
    let grid = preview.frame("grid", 4, false, &json!({}));
    let spotlight = preview.frame("spotlight", 4, false, &json!({}));
    let pages = visit(&[
        case(
            &grid,
            LANDSCAPE,
            None,
            &[MEASURE, &on, MEASURE, &off, MEASURE, &two, MEASURE],
        ),
        case(
            &spotlight,
            LANDSCAPE,
            None,
            &[MEASURE, &two, settle, MEASURE],
        ),
    ])
    .await;
    let g = &pages[0];
    let layout_of = |m: &Value| m["root"].as_str().unwrap().to_owned();
    assert!(layout_of(&g[0]).contains("reel-layout--grid"));
    // Sharing: the default screenshare layout, the screen in the spotlight.
    let sharing = layout_of(&g[2]);
    assert!(
        sharing.contains("reel-layout--spotlight") && sharing.contains("reel-screenshare"),
        "{sharing}"
    );
    let main = &g[2]["tiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["cls"].as_str().unwrap().contains("reel-tile--main"))
        .unwrap();
    assert!(
        main["cls"].as_str().unwrap().contains("reel-tile--screen"),
        "{main}"
    );
    assert_eq!(g[2]["tiles"].as_array().unwrap().len(), 5);
    // And back.
    assert!(
        layout_of(&g[4]).contains("reel-layout--grid")
            && !layout_of(&g[4]).contains("reel-screenshare")
    );
    let speaking = |m: &Value| -> Vec<usize> {
        tiles(m)
            .into_iter()
            .filter(|t| t.has("reel-tile--speaking"))
            .map(|t| t.index)
            .collect()
    };
    assert_eq!(speaking(&g[4]), [0]);
    assert_eq!(speaking(&g[6]), [2]);
    // In the spotlight, the new speaker takes the large tile.
    let main_of = |m: &Value| {
        tiles(m)
            .into_iter()
            .find(|t| t.has("reel-tile--main"))
            .map(|t| t.index)
    };
    assert_eq!(main_of(&pages[1][0]), Some(0));
    assert_eq!(main_of(&pages[1][3]), Some(2));
}

#[tokio::test]
async fn the_preview_screenshot_is_the_page_a_recording_loads_at_its_size() {
    let preview = Preview::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    for (layout, n, quality, size) in [
        ("grid", 6, "720p", LANDSCAPE),
        ("spotlight", 4, "portrait-720x1280", PORTRAIT),
    ] {
        let cli = dir.path().join(format!("{layout}-cli.png"));
        let n_text = n.to_string();
        run_preview(&[
            "--layout".as_ref(),
            layout.as_ref(),
            "--participants".as_ref(),
            n_text.as_ref(),
            "--quality".as_ref(),
            quality.as_ref(),
            "--screenshot".as_ref(),
            cli.as_os_str(),
        ])
        .await
        .unwrap();
        let page = dir.path().join(format!("{layout}-page.png"));
        let url = preview.frame(layout, n, false, &json!({}));
        visit(&[case(&url, size, Some(&page), &[])]).await;
        let (a, b) = (Png::read(&cli), Png::read(&page));
        assert_eq!(a.width, size.0, "{layout}");
        assert_eq!(b.width, size.0, "{layout}");
        let pixels = (size.0 * size.1) as usize;
        let mut differing = 0;
        for i in 0..pixels {
            let (x, y) = ((i % size.0 as usize) as f64, (i / size.0 as usize) as f64);
            if !close(a.at(x, y), b.at(x, y)) {
                differing += 1;
            }
        }
        assert!(
            differing * 1000 < pixels,
            "{layout}: {differing} of {pixels} pixels differ"
        );
    }
}

/// `/layout/{type}/{id}`: refused without a valid token or for an unknown call; otherwise the
/// app's page with the call's resolved layout settings; a call drawn by its own page says so.
#[tokio::test]
async fn a_calls_layout_page_carries_its_settings() {
    let t = TestServer::start(Db::Sqlite).await;
    let page = |call: &str, token: Option<String>| {
        let mut url = format!("{}/layout/default/{call}", t.base);
        if let Some(token) = token {
            url.push_str(&format!("?token={token}"));
        }
        let http = t.http.clone();
        async move {
            let res = http.get(url).send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    let (s, body) = t
        .call(
            "POST",
            "/api/v2/video/call/default/styled",
            Some(
                json!({"data": {"created_by_id": "alice", "settings_override": {"recording": {
                    "layout": {"name": "grid", "options": {"grid.columns": 3},
                               "external_css_url": "https://example.com/brand.css"}
                }}}}),
            ),
        )
        .await;
    assert_eq!(s, 200, "{body}");

    let (status, text) = page("styled", None).await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("?token="), "{text}");
    let (status, text) = page("styled", Some("not-a-token".into())).await;
    assert_eq!(status, 401, "{text}");
    let (status, text) = page("nobody", Some(t.server_token())).await;
    assert_eq!(status, 404, "{text}");

    for token in [t.server_token(), t.user_token("bob", None)] {
        let (status, html) = page("styled", Some(token.clone())).await;
        assert_eq!(status, 200, "{html}");
        let config: Value = html
            .split("id=\"reel-layout-config\">")
            .nth(1)
            .and_then(|rest| rest.split("</script>").next())
            .map(|json| serde_json::from_str(json).unwrap())
            .unwrap_or_else(|| panic!("no config in {html}"));
        assert_eq!(config["call_id"], "styled");
        assert_eq!(config["source"], "call");
        assert_eq!(config["token"], token.as_str());
        assert_eq!(config["layout"], "grid");
        assert_eq!(config["options"], json!({"grid.columns": 3}));
        assert_eq!(config["external_css_url"], "https://example.com/brand.css");
    }

    let (s, body) = t
        .call(
            "PATCH",
            "/api/v2/video/call/default/styled",
            Some(json!({"settings_override": {"recording": {"layout": {
                "name": "custom", "external_app_url": "https://example.com/app.html"
            }}}})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let (status, text) = page("styled", Some(t.server_token())).await;
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("https://example.com/app.html"), "{text}");
}

/// `--record` captures the page as a composite recording does (Chromium on a display of its
/// own, its screen captured 30 times a second): an H.264 MP4 at the frame's size, whose
/// pictures are the `--screenshot` PNG's within what compression changes.
#[tokio::test]
async fn the_preview_recording_shows_what_the_screenshot_shows() {
    let dir = tempfile::tempdir().unwrap();
    for (layout, n, quality, size) in [
        ("grid", "4", "720p", LANDSCAPE),
        ("spotlight", "3", "portrait-720x1280", PORTRAIT),
    ] {
        let shot = dir.path().join(format!("{layout}.png"));
        let mp4 = dir.path().join(format!("{layout}.mp4"));
        let args: [&std::ffi::OsStr; 6] = [
            "--layout".as_ref(),
            layout.as_ref(),
            "--participants".as_ref(),
            n.as_ref(),
            "--quality".as_ref(),
            quality.as_ref(),
        ];
        let screenshot = [&args[..], &["--screenshot".as_ref(), shot.as_os_str()]].concat();
        run_preview(&screenshot).await.unwrap();
        let record: [&std::ffi::OsStr; 5] = [
            "--still".as_ref(),
            "--duration".as_ref(),
            "2s".as_ref(),
            "--record".as_ref(),
            mp4.as_os_str(),
        ];
        run_preview(&[&args[..], &record].concat()).await.unwrap();

        let probe = tokio::process::Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-count_frames",
                "-show_streams",
                "-show_format",
            ])
            .args(["-of", "json"])
            .arg(&mp4)
            .output()
            .await
            .unwrap();
        let probe: Value = serde_json::from_slice(&probe.stdout).unwrap();
        let video = &probe["streams"][0];
        assert_eq!(video["codec_name"], "h264", "{probe}");
        assert_eq!(video["pix_fmt"], "yuv420p", "{probe}");
        assert_eq!(
            (video["width"].as_u64(), video["height"].as_u64()),
            (Some(size.0.into()), Some(size.1.into()))
        );
        let duration: f64 = probe["format"]["duration"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1.95..2.05).contains(&duration), "{layout}: {duration} s");
        // 30 pictures a second, whatever the machine's load: a late picture repeats the one
        // before rather than stretching the clock.
        let frames: u64 = video["nb_read_frames"].as_str().unwrap().parse().unwrap();
        assert_eq!(frames, 60, "{layout}: {frames} pictures in {duration} s");

        let frame = dir.path().join(format!("{layout}-frame.png"));
        let out = tokio::process::Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-ss", "1", "-i"])
            .arg(&mp4)
            .args(["-frames:v", "1"])
            .arg(&frame)
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (a, b) = (Png::read(&shot), Png::read(&frame));
        assert_eq!(b.width, size.0, "{layout}");
        // 4:2:0 video keeps colour at half resolution, so sharp coloured edges (text, borders)
        // come out a little off; the pictures must otherwise agree.
        let pixels = (size.0 * size.1) as usize;
        let (mut off, mut far, mut total) = (0, 0, 0u64);
        for i in 0..pixels {
            let (x, y) = ((i % size.0 as usize) as f64, (i / size.0 as usize) as f64);
            let (p, q) = (a.at(x, y), b.at(x, y));
            let d: Vec<u8> = (0..3).map(|c| p[c].abs_diff(q[c])).collect();
            total += d.iter().map(|&v| u64::from(v)).sum::<u64>();
            off += usize::from(d.iter().any(|&v| v > 12));
            far += usize::from(d.iter().any(|&v| v > 48));
        }
        let mean = total as f64 / (3 * pixels) as f64;
        println!(
            "{layout}: {frames} pictures in {duration} s; mean difference {mean:.2}; \
             {off} of {pixels} pixels off by more than 12, {far} by more than 48"
        );
        assert!(mean < 3.0, "{layout}: mean difference {mean}");
        assert!(off * 20 < pixels, "{layout}: {off} of {pixels} pixels off");
        assert!(
            far * 100 < pixels,
            "{layout}: {far} of {pixels} pixels far off"
        );
    }
}
