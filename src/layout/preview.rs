//! `reel layout preview`: the layout app with synthetic participants at a local URL, reloaded
//! when the stylesheet or options file changes, or rendered headless to a PNG or recorded to
//! an MP4 as a composite recording captures it.
//!
//! `/frame` is the page a recording of the same layout loads, at the recording's size; `/`
//! shows it scaled to the window. `/frame?layout=grid&participants=9&screenshare=true&options={..}&still=true`
//! draws a variant without restarting.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::watch;

use super::{APP_PATH, LayoutConfig, Synthetic};
use crate::browser::capture::Capture;
use crate::browser::{Chromium, Display, Surface};
use crate::domain::settings::{LayoutName, video_bit_rate};
use crate::mux::{CompositeSink, VideoFormat};
use crate::telemetry::print;

/// How often the watched files are looked at.
const WATCH_EVERY: Duration = Duration::from_millis(300);

/// What to preview.
#[derive(Clone, Debug)]
pub struct Preview {
    /// The layout.
    pub layout: LayoutName,
    /// How many synthetic participants.
    pub participants: u32,
    /// Whether the first one shares a screen.
    pub screenshare: bool,
    /// A stylesheet of the user's, loaded after the built-in one.
    pub css: Option<PathBuf>,
    /// A JSON object of layout options.
    pub options: Option<PathBuf>,
    /// The frame's width and height.
    pub size: (u32, u32),
    /// A custom layout page to render instead of the built-in app.
    pub app_url: Option<String>,
    /// Pictures that do not move and a speaker who does not change.
    pub still: bool,
}

struct Shared {
    preview: Preview,
    changes: watch::Receiver<u64>,
}

/// What `/frame` may change for one page (tests, and links to a variant).
#[derive(Default, Deserialize)]
struct FrameQuery {
    /// Pictures that do not move and a speaker who does not change.
    #[serde(default)]
    still: bool,
    layout: Option<LayoutName>,
    participants: Option<u32>,
    screenshare: Option<bool>,
    /// A JSON object of options, instead of the options file.
    options: Option<String>,
}

impl Preview {
    /// The options file's object; its problems become the page's warnings.
    fn options(&self) -> Result<Map<String, Value>, String> {
        let Some(path) = &self.options else {
            return Ok(Map::new());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| {
            format!(
                "{} is not a JSON object of layout options: {e}",
                path.display()
            )
        })
    }

    fn config(&self, q: &FrameQuery) -> LayoutConfig {
        let options = match &q.options {
            Some(json) => serde_json::from_str(json)
                .map_err(|e| format!("the options parameter is not a JSON object: {e}")),
            None => self.options(),
        };
        let (options, warnings) = match options {
            Ok(o) => (o, Vec::new()),
            Err(e) => (Map::new(), vec![e]),
        };
        LayoutConfig {
            call_type: String::new(),
            call_id: "preview".into(),
            token: String::new(),
            base_url: String::new(),
            layout: q.layout.unwrap_or(self.layout),
            options,
            external_css_url: self.css.as_ref().map(|_| "/preview/custom.css".into()),
            source: "synthetic",
            synthetic: Some(Synthetic {
                participants: q.participants.unwrap_or(self.participants).min(100),
                screenshare: q.screenshare.unwrap_or(self.screenshare),
                speaker_interval_ms: if q.still || self.still { 0 } else { 3000 },
                still: q.still || self.still,
            }),
            ready_timeout_ms: 10_000,
            show_warnings: true,
            warnings,
        }
    }

    /// The files whose changes reload the page.
    fn watched(&self) -> Vec<PathBuf> {
        self.css.iter().chain(&self.options).cloned().collect()
    }
}

fn modified(paths: &[PathBuf]) -> Vec<Option<SystemTime>> {
    paths
        .iter()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

/// Counts changes to `paths` into a channel.
fn watch_files(paths: Vec<PathBuf>) -> watch::Receiver<u64> {
    let (tx, rx) = watch::channel(0);
    tokio::spawn(async move {
        let mut last = modified(&paths);
        loop {
            tokio::time::sleep(WATCH_EVERY).await;
            let now = modified(&paths);
            if now != last {
                last = now;
                tx.send_modify(|n| *n += 1);
            }
            if tx.is_closed() {
                return;
            }
        }
    });
    rx
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(viewer))
        .route("/frame", get(frame))
        .route("/preview/custom.css", get(custom_css))
        .route("/preview/changes", get(changes))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route(&format!("{APP_PATH}/{{file}}"), get(super::asset))
        .with_state(shared)
}

async fn viewer(State(s): State<Arc<Shared>>) -> Html<String> {
    let (width, height) = s.preview.size;
    Html(super::render(
        "preview",
        &serde_json::json!({
            "layout": s.preview.layout,
            "width": width,
            "height": height,
        }),
    ))
}

async fn frame(State(s): State<Arc<Shared>>, Query(q): Query<FrameQuery>) -> Html<String> {
    Html(super::page(&s.preview.config(&q)))
}

async fn custom_css(State(s): State<Arc<Shared>>) -> Response {
    let css = s
        .preview
        .css
        .as_deref()
        .map(std::fs::read_to_string)
        .transpose()
        .unwrap_or_else(|e| Some(format!("/* cannot read the stylesheet: {e} */")))
        .unwrap_or_default();
    (
        [
            (header::CONTENT_TYPE, "text/css"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        css,
    )
        .into_response()
}

async fn changes(State(s): State<Arc<Shared>>) -> Response {
    let stream = futures_util::stream::unfold(s.changes.clone(), |mut rx| async move {
        rx.changed().await.ok()?;
        Some((Ok::<_, Infallible>(Event::default().data("changed")), rx))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// What `reel layout preview` makes instead of serving the preview.
#[derive(Clone, Copy, Debug)]
pub enum Output<'a> {
    /// Renders one frame (pictures still, the first participant speaking) to this PNG.
    Screenshot(&'a Path),
    /// Records the page as a composite recording captures it, for this long, to this MP4.
    Recording(&'a Path, Duration),
}

/// Pictures a second in `--record` files.
const RECORDING_RATE: u32 = 30;

/// Serves the preview on `port` (0: any free one) of loopback until interrupted, or makes
/// `output` (waiting at most `ready_timeout` for the page to be ready) and returns.
pub async fn run(
    preview: Preview,
    port: u16,
    output: Option<Output<'_>>,
    ready_timeout: Duration,
) -> anyhow::Result<()> {
    for path in preview.watched() {
        anyhow::ensure!(path.is_file(), "{} is not a readable file", path.display());
    }
    if let Err(e) = preview
        .options()
        .and_then(|o| crate::domain::layout::check_options(&o))
    {
        eprintln!("warning: {e}");
    }
    let listener =
        tokio::net::TcpListener::bind(("127.0.0.1", if output.is_none() { port } else { 0 }))
            .await
            .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let addr = listener.local_addr()?;
    let changes = watch_files(preview.watched());
    let shared = Arc::new(Shared {
        preview: preview.clone(),
        changes,
    });
    let server = tokio::spawn(async move { axum::serve(listener, router(shared)).await });
    let Some(output) = output else {
        let (w, h) = preview.size;
        print(&format!(
            "layout preview at http://{addr}/ ({}, {} participants, {w}x{h}); the page reloads when the stylesheet or options change. Ctrl-C stops.\n",
            preview.layout.as_str(),
            preview.participants
        ))?;
        tokio::signal::ctrl_c().await?;
        server.abort();
        return Ok(());
    };
    let still = matches!(output, Output::Screenshot(_)) || preview.still;
    let (url, script) = match &preview.app_url {
        None => (format!("http://{addr}/frame?still={still}"), None),
        Some(url) => {
            // The custom page gets the built-in app's configuration, and where to find reel.
            let mut config = preview.config(&FrameQuery {
                still,
                ..FrameQuery::default()
            });
            config.base_url = format!("http://{addr}");
            (url.clone(), Some(super::setup_script(&config)))
        }
    };
    let made = render(&url, script.as_deref(), preview.size, ready_timeout, output).await;
    server.abort();
    made
}

/// Opens `url` (prepared by `script`) at `size`, waits until every video on it has a
/// picture, and makes `output` of it: a still through the headless browser, a recording from
/// the screen of a display of its own, as a composite recording captures it.
async fn render(
    url: &str,
    script: Option<&str>,
    size: (u32, u32),
    timeout: Duration,
    output: Output<'_>,
) -> anyhow::Result<()> {
    match output {
        Output::Screenshot(out) => {
            let browser = Chromium::launch(size, Surface::Headless).await?;
            let made = async {
                let page = load(&browser, url, script, timeout).await?;
                let png = Chromium::screenshot(&page).await?;
                std::fs::write(out, png)
                    .with_context(|| format!("cannot write {}", out.display()))?;
                print(&format!("{}\n", out.display()))?;
                Ok(())
            }
            .await;
            browser.close().await;
            made
        }
        Output::Recording(out, length) => {
            let display = tokio::task::spawn_blocking(move || Display::start(size))
                .await
                .context("the display did not start")??;
            let browser = Chromium::launch(size, Surface::On(&display)).await?;
            let made = async {
                load(&browser, url, script, timeout).await?;
                record(&display, out, length).await
            }
            .await;
            browser.close().await;
            made
        }
    }
}

/// Opens `url` in `browser` and waits until every video on it has a picture.
async fn load(
    browser: &Chromium,
    url: &str,
    script: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<chromiumoxide::Page> {
    let page = browser.open(url, script).await?;
    Chromium::wait_ready(&page, timeout).await?;
    // The page is ready once one video plays; a still wants them all.
    let all_playing = "[...document.querySelectorAll('.reel-tile:not(.reel-tile--no-video) video')]\
        .every((v) => v.readyState >= 2)";
    let start = std::time::Instant::now();
    while start.elapsed() < timeout {
        let done = page
            .evaluate(all_playing)
            .await
            .ok()
            .and_then(|r| r.into_value::<bool>().ok());
        if done == Some(true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Two frames for the last pictures to be composited.
    page.evaluate("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
        .await
        .ok();
    Ok(page)
}

/// Captures `display` for `length` into the MP4 `out`, encoding as the pictures come.
async fn record(display: &Display, out: &Path, length: Duration) -> anyhow::Result<()> {
    let format = VideoFormat {
        codec: crate::mux::VideoCodec::H264,
        size: display.size(),
        rate: RECORDING_RATE,
        bit_rate: video_bit_rate(display.size()),
    };
    let sink = CompositeSink::create(out, format, false)?;
    let start = std::time::Instant::now();
    let timing = (RECORDING_RATE, start, Some(length));
    let capture = Capture::start(display, sink, timing, Some, || {})?;
    let counters = capture.counters();
    tokio::time::sleep_until((start + length).into()).await;
    let (sink, captured) = tokio::task::spawn_blocking(move || capture.stop()).await?;
    let written = tokio::task::spawn_blocking(move || sink.finish(length)).await?;
    // The file is finished before a capture failure is told.
    let (written, ()) = (written?, captured?);
    let taken = counters.stats();
    print(&format!(
        "{}: {:.1} s, {} frames; {} pictures captured, {} frames showing the picture before\n",
        out.display(),
        length.as_secs_f64(),
        written.frames,
        taken.captured,
        written.repeated,
    ))?;
    Ok(())
}
