//! Chromium, as the composite recorder and the layout preview drive it: headless for stills
//! (pictures taken through the browser), or on a virtual display of its own ([`Display`]) for
//! recordings, whose screen is captured at a steady rate ([`capture`]). Pages open at exactly
//! the frame's size, and readiness is awaited the way layout pages announce it
//! (`#egress-ready-for-capture`). Chromium and its display run as [`process::Helper`]s: they
//! never outlive the browser's owner, nor reel.

pub mod capture;
mod display;
mod process;

pub use display::Display;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chromiumoxide::browser::Browser;
use chromiumoxide::cdp::browser_protocol::inspector::{self, EventTargetCrashed};
use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
use chromiumoxide::handler::HandlerConfig;
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::page::ScreenshotParams;
use futures_util::StreamExt;
use tokio::task::JoinHandle;

use self::process::Helper;

/// A page open in a browser.
pub type Tab = chromiumoxide::Page;

/// The element a layout page shows once it is worth capturing.
pub const READY_SELECTOR: &str = "#egress-ready-for-capture";

/// Chromium's switches: nothing in the background, no throttling of a page nobody looks at,
/// exact colours, and WebRTC from reel on the same machine.
const ARGS: [&str; 21] = [
    "--autoplay-policy=no-user-gesture-required",
    // The layout page plays the call from reel, often on the same machine, and has no
    // camera permission that would let it show its addresses to reel.
    "--allow-loopback-in-peer-connection",
    "--disable-features=TranslateUI,WebRtcHideLocalIpsWithMdns",
    "--disable-background-networking",
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--disable-renderer-backgrounding",
    "--disable-breakpad",
    "--disable-client-side-phishing-detection",
    "--disable-component-extensions-with-background-pages",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-gpu",
    "--disable-hang-monitor",
    "--disable-quic",
    "--disable-sync",
    "--force-color-profile=srgb",
    "--hide-scrollbars",
    "--metrics-recording-only",
    "--no-first-run",
    "--password-store=basic",
];

/// What can go wrong driving the browser.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    /// No Chromium was found.
    #[error("no Chromium found: install Debian's chromium package or set REEL_CHROMIUM")]
    NotFound,
    /// Chromium did not start.
    #[error("cannot start Chromium ({path}): {reason}")]
    Launch {
        /// The executable.
        path: String,
        /// Why.
        reason: String,
    },
    /// The page failed.
    #[error("{0}")]
    Page(String),
    /// The page did not show `#egress-ready-for-capture` in time.
    #[error("{url} did not show #egress-ready-for-capture within {waited:?}")]
    NotReady {
        /// The page.
        url: String,
        /// How long it was given.
        waited: Duration,
    },
}

fn page_error(context: &str) -> impl Fn(chromiumoxide::error::CdpError) -> BrowserError + '_ {
    move |e| BrowserError::Page(format!("{context}: {e}"))
}

/// The Chromium executable: `REEL_CHROMIUM`, else Debian's.
pub fn executable() -> Result<PathBuf, BrowserError> {
    if let Some(p) = std::env::var_os("REEL_CHROMIUM") {
        return Ok(PathBuf::from(p));
    }
    [
        "/usr/lib/chromium/chromium",
        "/usr/bin/chromium",
        "/usr/bin/google-chrome",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .ok_or(BrowserError::NotFound)
}

/// Where a browser draws its pages.
#[derive(Clone, Copy, Debug)]
pub enum Surface<'a> {
    /// Nowhere: pages are seen through the browser's own screenshots.
    Headless,
    /// On this display, filling it.
    On(&'a Display),
    /// On this display, but with no window until a page opens: a browser started ahead of
    /// need, which shows nothing meanwhile.
    Waiting(&'a Display),
}

/// How long Chromium may take to start.
const LAUNCH: Duration = Duration::from_secs(30);

/// A running Chromium whose pages are `width` x `height` CSS pixels at scale 1.
pub struct Chromium {
    browser: Browser,
    events: JoinHandle<()>,
    process: Helper,
    /// Set once a page's renderer crashed.
    crashed: Arc<AtomicBool>,
    /// The browser's profile, removed with it.
    _profile: tempfile::TempDir,
}

impl Chromium {
    /// Starts Chromium for frames of `size` on `screen`.
    pub async fn launch(size: (u32, u32), surface: Surface<'_>) -> Result<Self, BrowserError> {
        let path = executable()?;
        let launch = |reason: String| BrowserError::Launch {
            path: path.display().to_string(),
            reason,
        };
        let profile = tempfile::tempdir().map_err(|e| launch(e.to_string()))?;
        let mut args: Vec<String> = ARGS.iter().map(|a| (*a).to_owned()).collect();
        args.extend([
            "--no-sandbox".into(),
            "--remote-debugging-port=0".into(),
            format!("--user-data-dir={}", profile.path().display()),
            "--window-position=0,0".into(),
        ]);
        let (display, viewport) = match surface {
            // Headless pages get their size from the driver.
            Surface::Headless => {
                args.extend([
                    "--headless=new".into(),
                    "--mute-audio".into(),
                    format!("--window-size={},{}", size.0, size.1),
                ]);
                let viewport = Viewport {
                    width: size.0,
                    height: size.1,
                    device_scale_factor: Some(1.0),
                    emulating_mobile: false,
                    is_landscape: size.0 >= size.1,
                    has_touch: false,
                };
                (None, Some(viewport))
            }
            // On a display, a kiosk window fills it: the page is the screen's top left
            // `size`, and the window's frame the pixel beyond it.
            Surface::On(display) | Surface::Waiting(display) => {
                args.extend([
                    "--kiosk".into(),
                    "--mute-audio".into(),
                    format!("--window-size={},{}", size.0 + 1, size.1 + 1),
                ]);
                (Some(display.name()), None)
            }
        };
        args.push(match surface {
            Surface::Waiting(_) => "--no-startup-window".into(),
            _ => "about:blank".into(),
        });
        let envs: Vec<(&str, &str)> = display.iter().map(|d| ("DISPLAY", d.as_str())).collect();
        let log = std::fs::File::create(profile.path().join("chromium.log")).ok();
        let executable = path
            .to_str()
            .ok_or_else(|| launch("not a UTF-8 path".into()))?;
        let mut process =
            Helper::spawn(executable, &args, &envs, log).map_err(|e| launch(e.to_string()))?;
        let url = devtools_url(profile.path(), &mut process)
            .await
            .map_err(launch)?;
        let config = HandlerConfig {
            viewport,
            request_timeout: LAUNCH,
            ..HandlerConfig::default()
        };
        let (browser, mut handler) = Browser::connect_with_config(url, config)
            .await
            .map_err(|e| launch(e.to_string()))?;
        let events = tokio::spawn(async move { while handler.next().await.is_some() {} });
        Ok(Self {
            browser,
            events,
            process,
            crashed: Arc::default(),
            _profile: profile,
        })
    }

    /// Whether the browser is still running, and no page of its crashed.
    pub fn running(&mut self) -> bool {
        self.process.exited().is_none() && !self.crashed.load(Ordering::Relaxed)
    }

    /// Opens `url`, with `script` (if any) run before the page's own scripts.
    pub async fn open(
        &self,
        url: &str,
        script: Option<&str>,
    ) -> Result<chromiumoxide::Page, BrowserError> {
        let page = self
            .browser
            .new_page("about:blank")
            .await
            .map_err(page_error("cannot open a page"))?;
        if let Some(script) = script {
            page.evaluate_on_new_document(script)
                .await
                .map_err(page_error("cannot prepare the page"))?;
        }
        // A renderer that dies leaves the page blank: the owner hears of it from `running`.
        let mut crashes = page
            .event_listener::<EventTargetCrashed>()
            .await
            .map_err(page_error("cannot watch the page"))?;
        page.execute(inspector::EnableParams::default())
            .await
            .map_err(page_error("cannot watch the page"))?;
        let crashed = Arc::clone(&self.crashed);
        tokio::spawn(async move {
            if crashes.next().await.is_some() {
                crashed.store(true, Ordering::Relaxed);
            }
        });
        // A page left in the background gets few frames drawn.
        page.activate()
            .await
            .map_err(page_error("cannot bring the page to the front"))?;
        page.goto(url)
            .await
            .map_err(page_error(&format!("cannot load {url}")))?;
        Ok(page)
    }

    /// Waits until `page` shows [`READY_SELECTOR`], at most `timeout`: the page itself
    /// watches for it and answers the moment it appears (a page that navigates away is
    /// asked again).
    pub async fn wait_ready(
        page: &chromiumoxide::Page,
        timeout: Duration,
    ) -> Result<(), BrowserError> {
        let watch = format!(
            "new Promise((done) => {{
               const seen = () => document.querySelector({READY_SELECTOR:?});
               if (seen()) return done(true);
               new MutationObserver((_, o) => seen() && (o.disconnect(), done(true)))
                 .observe(document, {{ childList: true, subtree: true }});
             }})"
        );
        let start = Instant::now();
        while let Some(left) = timeout.checked_sub(start.elapsed()) {
            match tokio::time::timeout(left, page.evaluate(watch.as_str())).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(_) => break,
            }
        }
        let url = page.url().await.ok().flatten().unwrap_or_default();
        Err(BrowserError::NotReady {
            url,
            waited: timeout,
        })
    }

    /// How long `page` takes from a video packet's arrival to its picture, if it tells
    /// (`window.reelPlayoutDelay()`, as the layout app does).
    pub async fn playout_delay(page: &chromiumoxide::Page) -> Option<Duration> {
        let told = page
            .evaluate("window.reelPlayoutDelay ? window.reelPlayoutDelay() : null")
            .await
            .ok()?;
        let ms: f64 = told.into_value().ok()?;
        (ms.is_finite() && ms >= 0.0).then(|| Duration::from_secs_f64(ms.min(2000.0) / 1000.0))
    }

    /// The page as it looks now, as PNG.
    pub async fn screenshot(page: &chromiumoxide::Page) -> Result<Vec<u8>, BrowserError> {
        page.screenshot(
            ScreenshotParams::builder()
                .format(CaptureScreenshotFormat::Png)
                .build(),
        )
        .await
        .map_err(page_error("cannot take a screenshot"))
    }

    /// Ends the browser and every process it started at once, without asking it to close
    /// its pages (one that died cannot).
    pub fn kill(self) {
        self.events.abort();
    }

    /// Closes the browser, and ends every process it started.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.browser.close()).await;
        self.events.abort();
    }
}

/// The DevTools address Chromium (`process`, profile in `profile`) announces once it is up.
async fn devtools_url(profile: &Path, process: &mut Helper) -> Result<String, String> {
    let file = profile.join("DevToolsActivePort");
    let start = Instant::now();
    loop {
        // The port, then the browser's path; complete once both lines are there.
        if let Ok(text) = std::fs::read_to_string(&file)
            && let [port, path] = text.lines().collect::<Vec<_>>()[..]
        {
            return Ok(format!("ws://127.0.0.1:{port}{path}"));
        }
        if let Some(status) = process.exited() {
            let log = std::fs::read_to_string(profile.join("chromium.log")).unwrap_or_default();
            let last: Vec<&str> = log.lines().rev().take(5).collect();
            return Err(format!("it ended ({status}): {}", last.join(" / ")));
        }
        if start.elapsed() > LAUNCH {
            return Err(format!("no DevTools address within {LAUNCH:?}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
