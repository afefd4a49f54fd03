//! Headless Chromium, as the composite recorder and the layout preview drive it: one browser
//! per frame size, pages opened at exactly that size, readiness awaited the way layout pages
//! announce it (`#egress-ready-for-capture`), frames taken as PNG (stills) or as a stream of
//! pictures (recordings).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::page::{
    CaptureScreenshotFormat, CaptureScreenshotParams,
};
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::page::ScreenshotParams;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

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

/// How long one picture of a page may take before capture gives up.
const PICTURE_TIMEOUT: Duration = Duration::from_secs(5);

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

/// A running headless browser whose pages are `width` x `height` CSS pixels at scale 1.
pub struct Headless {
    browser: Browser,
    events: JoinHandle<()>,
    /// The browser's profile, removed with it.
    _profile: tempfile::TempDir,
}

impl Headless {
    /// Starts Chromium for frames of `size`.
    pub async fn launch(size: (u32, u32)) -> Result<Self, BrowserError> {
        let path = executable()?;
        let launch = |reason: String| BrowserError::Launch {
            path: path.display().to_string(),
            reason,
        };
        let profile = tempfile::tempdir().map_err(|e| launch(e.to_string()))?;
        let config = BrowserConfig::builder()
            .chrome_executable(&path)
            .new_headless_mode()
            .no_sandbox()
            .user_data_dir(profile.path())
            .window_size(size.0, size.1)
            .viewport(Viewport {
                width: size.0,
                height: size.1,
                device_scale_factor: Some(1.0),
                emulating_mobile: false,
                is_landscape: size.0 >= size.1,
                has_touch: false,
            })
            // Not the driver's defaults: they run the network service inside the browser
            // process, which halves how many pictures a second a busy page gives.
            .disable_default_args()
            .args(ARGS)
            .launch_timeout(Duration::from_secs(30))
            .build()
            .map_err(launch)?;
        let (browser, mut handler) = Browser::launch(config)
            .await
            .map_err(|e| launch(e.to_string()))?;
        let events = tokio::spawn(async move { while handler.next().await.is_some() {} });
        Ok(Self {
            browser,
            events,
            _profile: profile,
        })
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
        // A page left in the background gets few frames drawn.
        page.activate()
            .await
            .map_err(page_error("cannot bring the page to the front"))?;
        page.goto(url)
            .await
            .map_err(page_error(&format!("cannot load {url}")))?;
        Ok(page)
    }

    /// Waits until `page` shows [`READY_SELECTOR`], at most `timeout`.
    pub async fn wait_ready(
        page: &chromiumoxide::Page,
        timeout: Duration,
    ) -> Result<(), BrowserError> {
        let start = Instant::now();
        loop {
            if page.find_element(READY_SELECTOR).await.is_ok() {
                return Ok(());
            }
            if start.elapsed() > timeout {
                let url = page.url().await.ok().flatten().unwrap_or_default();
                return Err(BrowserError::NotReady {
                    url,
                    waited: timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
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

    /// Takes pictures of `page` (PNG, compressed for speed) up to `rate` a second for
    /// `length`, sending each with when it was taken (from the first). A picture that takes
    /// longer than a frame delays the next rather than queueing more; capture stops early if
    /// `pictures` closes. How many were taken.
    pub async fn capture(
        page: &chromiumoxide::Page,
        rate: u32,
        length: Duration,
        pictures: mpsc::Sender<(Vec<u8>, Duration)>,
    ) -> Result<u64, BrowserError> {
        let mut ticks = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
        ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let start = Instant::now();
        let mut taken = 0;
        while start.elapsed() < length {
            ticks.tick().await;
            let at = start.elapsed();
            // The protocol's own command: the page's screenshot helper also activates the
            // page first, a round trip per picture.
            let params = CaptureScreenshotParams::builder()
                .format(CaptureScreenshotFormat::Png)
                .optimize_for_speed(true)
                .build();
            let shot = tokio::time::timeout(PICTURE_TIMEOUT, page.execute(params))
                .await
                .map_err(|_| {
                    BrowserError::Page(format!("no picture of the page within {PICTURE_TIMEOUT:?}"))
                })?
                .map_err(page_error("cannot take a picture"))?;
            let png = BASE64
                .decode(AsRef::<str>::as_ref(&shot.result.data))
                .map_err(|e| BrowserError::Page(format!("a picture that is not base64: {e}")))?;
            if pictures.send((png, at)).await.is_err() {
                break;
            }
            taken += 1;
        }
        Ok(taken)
    }

    /// Closes the browser.
    pub async fn close(mut self) {
        let _ = self.browser.close().await;
        let _ = self.browser.wait().await;
        self.events.abort();
    }
}
