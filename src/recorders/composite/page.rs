//! The page a composite draws: the built-in layout app at `/layout/{type}/{id}`, or a page of
//! one's own (the layout's `external_app_url`, or the start request's `url`) handed the same
//! configuration, with a watermark over it if asked.

use crate::domain::settings::LayoutName;
use crate::domain::{CompositeVideo, Corner, Watermark};
use crate::layout::LayoutConfig;
use crate::mux::VideoCodec;
use crate::recorders::{RecordingJob, Viewer};

/// The page a composite loads, and what it records.
#[derive(Clone, Debug)]
pub struct Page {
    /// The page.
    pub url: String,
    /// A script run before the page's own (a custom page's configuration, a watermark).
    pub script: Option<String>,
    /// The frame size.
    pub size: (u32, u32),
    /// The video file's name, and its codec.
    pub name: String,
    pub codec: VideoCodec,
}

/// The page that draws `job`'s call for `video`, reaching reel through `viewer`, into the
/// file `name` of `codec`.
pub fn page(
    job: &RecordingJob,
    viewer: &Viewer,
    video: &CompositeVideo,
    (name, codec): (String, VideoCodec),
) -> Page {
    let cid = &job.recording.cid;
    let layout = &job.settings.recording.layout;
    let mut config = LayoutConfig::for_call(cid, viewer.token.clone(), layout);
    config.base_url = viewer.base_url.clone();
    let app = job.composite.app_url.as_ref().or(match layout.name {
        LayoutName::Custom => layout.external_app_url.as_ref(),
        _ => None,
    });
    let (url, setup) = match app {
        Some(app) => (app.clone(), Some(crate::layout::setup_script(&config))),
        // Call types and ids are letters, digits, `-` and `_`; tokens are URL-safe.
        None => (
            format!(
                "{}/layout/{}/{}?token={}",
                viewer.base_url, cid.call_type, cid.id, viewer.token
            ),
            None,
        ),
    };
    let scripts: Vec<String> = setup
        .into_iter()
        .chain(video.watermark.as_ref().map(watermark_script))
        .collect();
    Page {
        url,
        script: (!scripts.is_empty()).then(|| scripts.join("\n")),
        size: video.size,
        name,
        codec,
    }
}

/// A script that draws `w` over the page, in its corner, above everything.
fn watermark_script(w: &Watermark) -> String {
    let (x, y) = match w.corner {
        Corner::LeftTop => ("left", "top"),
        Corner::RightTop => ("right", "top"),
        Corner::LeftBottom => ("left", "bottom"),
        Corner::RightBottom => ("right", "bottom"),
    };
    // The URL as a JSON string is a JavaScript string, whatever it holds.
    let url = serde_json::Value::String(w.url.clone());
    format!(
        r#"addEventListener("DOMContentLoaded", () => {{
  const mark = document.createElement("img");
  mark.src = {url};
  mark.style.cssText = "position:fixed;z-index:2147483647;pointer-events:none;{x}:0;{y}:0;width:{}px;height:{}px";
  document.documentElement.append(mark);
}});"#,
        w.size.0, w.size.1
    )
}
