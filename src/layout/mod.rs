//! The layout app as reel serves it: its files (built in), the page shell that hands a layout
//! its configuration, and the script that hands the same configuration to a custom page.

pub mod preview;

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use handlebars::Handlebars;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::domain::Cid;
use crate::domain::settings::{LayoutName, LayoutSettings};

/// Where the app's files are served.
pub const APP_PATH: &str = "/layout-app";

/// One file of the layout app.
struct Asset {
    name: &'static str,
    body: &'static str,
    content_type: &'static str,
}

macro_rules! assets {
    ($($name:literal: $type:literal),* $(,)?) => {
        const ASSETS: &[Asset] = &[$(Asset {
            name: $name,
            body: include_str!(concat!("../../layout-app/", $name)),
            content_type: $type,
        }),*];
    };
}

assets!(
    "app.js": "text/javascript",
    "arrange.js": "text/javascript",
    "call.js": "text/javascript",
    "layout.css": "text/css",
    "options.js": "text/javascript",
    "options.json": "application/json",
    "roster.js": "text/javascript",
    "stage.js": "text/javascript",
    "synthetic.js": "text/javascript",
);

/// `GET /layout-app/{file}`: one of the app's files.
pub async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == file) {
        Some(a) => (
            [
                (header::CONTENT_TYPE, a.content_type),
                (header::CACHE_CONTROL, "no-cache"),
                // Custom layout pages may build on the app's modules.
                (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            ],
            a.body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, format!("no layout app file {file}")).into_response(),
    }
}

/// Synthetic participants instead of a call (the preview).
#[derive(Clone, Debug, Serialize)]
pub struct Synthetic {
    /// How many.
    pub participants: u32,
    /// Whether the first shares a screen.
    pub screenshare: bool,
    /// How often the dominant speaker changes; 0: never.
    pub speaker_interval_ms: u64,
    /// Pictures that do not move, for screenshots that must match.
    pub still: bool,
}

/// What `window.setupLayout(config)` receives.
#[derive(Clone, Debug, Serialize)]
pub struct LayoutConfig {
    /// The call's type (empty for synthetic participants).
    pub call_type: String,
    /// The call's id.
    pub call_id: String,
    /// A token that may follow the call and play its media.
    pub token: String,
    /// Where reel's API is (the page's own origin when empty).
    pub base_url: String,
    /// The layout to draw.
    pub layout: LayoutName,
    /// Layout options.
    pub options: Map<String, Value>,
    /// A stylesheet loaded after the built-in styles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_css_url: Option<String>,
    /// `call` or `synthetic`.
    pub source: &'static str,
    /// The synthetic participants, when `source` is `synthetic`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub synthetic: Option<Synthetic>,
    /// After this long the page is ready even if nothing played.
    pub ready_timeout_ms: u64,
    /// Show problems with the options on the page (the preview does).
    pub show_warnings: bool,
    /// Problems found before the page, shown with its own.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl LayoutConfig {
    /// The configuration that draws call `cid` as its `settings` say, following it with `token`.
    pub fn for_call(cid: &Cid, token: String, settings: &LayoutSettings) -> Self {
        Self {
            call_type: cid.call_type.to_string(),
            call_id: cid.id.to_string(),
            token,
            base_url: String::new(),
            layout: settings.name,
            options: settings.options.clone(),
            external_css_url: settings.external_css_url.clone(),
            source: "call",
            synthetic: None,
            ready_timeout_ms: 10_000,
            show_warnings: false,
            warnings: Vec::new(),
        }
    }

    /// As JSON that is safe inside a `<script>` element.
    fn script_json(&self) -> String {
        serde_json::to_string(self)
            .expect("the layout config serializes")
            .replace('<', "\\u003c")
    }
}

static TEMPLATES: LazyLock<Handlebars<'static>> = LazyLock::new(|| {
    let mut h = Handlebars::new();
    h.set_strict_mode(true);
    for (name, text) in [
        ("page", include_str!("../../templates/layout.html.hbs")),
        ("setup", include_str!("../../templates/layout-setup.js.hbs")),
        (
            "preview",
            include_str!("../../templates/layout-preview.html.hbs"),
        ),
    ] {
        h.register_template_string(name, text)
            .expect("the layout templates are checked by a unit test");
    }
    h
});

fn render(name: &str, data: &Value) -> String {
    TEMPLATES
        .render(name, data)
        .expect("the layout templates render with the data their callers pass")
}

/// The page that draws the built-in layout app with `config`.
pub fn page(config: &LayoutConfig) -> String {
    render(
        "page",
        &serde_json::json!({
            "title": format!("reel layout · {}", config.call_id),
            "app": APP_PATH,
            "config": config.script_json(),
        }),
    )
}

/// The script that, run before a custom page's own, hands it `config`.
pub fn setup_script(config: &LayoutConfig) -> String {
    render(
        "setup",
        &serde_json::json!({ "config": config.script_json() }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> LayoutConfig {
        LayoutConfig {
            call_type: "default".into(),
            call_id: "c1".into(),
            token: "t".into(),
            base_url: String::new(),
            layout: LayoutName::SingleParticipant,
            options: serde_json::json!({"title.text": "</script><script>alert(1)</script>"})
                .as_object()
                .cloned()
                .unwrap(),
            external_css_url: None,
            source: "call",
            synthetic: None,
            ready_timeout_ms: 10_000,
            show_warnings: false,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn the_page_carries_the_config_and_nothing_can_close_its_script() {
        let html = page(&config());
        assert!(html.contains("\"layout\":\"single-participant\""), "{html}");
        assert!(!html.contains("</script><script>alert"));
        let script = setup_script(&config());
        assert!(script.contains("\"call_id\":\"c1\""));
        assert!(!script.contains("</script>"));
    }

    #[test]
    fn every_file_the_app_imports_is_served() {
        for a in ASSETS {
            for pattern in ["from \"./", "import(\"./"] {
                for import in a.body.split(pattern).skip(1) {
                    let name = import.split('"').next().unwrap();
                    assert!(
                        ASSETS.iter().any(|b| b.name == name),
                        "{} imports {name}",
                        a.name
                    );
                }
            }
        }
    }
}
