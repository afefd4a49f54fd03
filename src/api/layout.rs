//! The layout page of a live call: `GET /layout/{call_type}/{call_id}?token=...` draws the
//! call as its composite recording would, with the layout, options and stylesheet its
//! settings resolve to. The composite recorder captures this page; designers can watch it.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::join::{Refusal, page_caller};
use crate::domain::settings::LayoutName;
use crate::layout::LayoutConfig;

/// Query of the layout page.
#[derive(Debug, Deserialize)]
pub struct LayoutQuery {
    /// A server token, or a token of a user who may see the call.
    token: Option<String>,
    /// List problems with the layout options on the page.
    #[serde(default)]
    warnings: bool,
}

/// Serves the page.
pub async fn page(
    State(state): State<AppState>,
    Path(call): Path<(String, String)>,
    Query(q): Query<LayoutQuery>,
) -> Result<Response, Refusal> {
    let (cid, caller) = page_caller(&state, call, q.token.as_deref())?;
    let view = state.services.get_call(&caller, &cid).await?;
    let layout = &view.settings.recording.layout;
    if let (LayoutName::Custom, Some(url)) = (layout.name, &layout.external_app_url) {
        return Err(Refusal::new(
            StatusCode::CONFLICT,
            format!(
                "call {cid} is drawn by its own page, {url}, which gets its configuration \
                 from the browser that loads it (reel layout preview --app-url shows it)"
            ),
        ));
    }
    let mut config = LayoutConfig::for_call(&cid, q.token.unwrap_or_default(), layout);
    config.show_warnings = q.warnings;
    Ok(Html(crate::layout::page(&config)).into_response())
}
