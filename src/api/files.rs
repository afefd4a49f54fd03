//! Downloads of locally stored recordings through signed, expiring links.

use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use super::AppState;
use crate::domain::Timestamp;

#[derive(Deserialize)]
pub(super) struct LinkQuery {
    expires: Option<i64>,
    signature: Option<String>,
}

/// `GET /files/<key>?expires=<unix s>&signature=<hex>`: the file, with Range support.
pub(super) async fn download(
    State(s): State<AppState>,
    Query(q): Query<LinkQuery>,
    req: Request,
) -> Response {
    let disk = s.services.storages().local();
    let (Some(expires), Some(signature)) = (q.expires, q.signature.as_deref()) else {
        return (StatusCode::FORBIDDEN, "this link is not signed\n").into_response();
    };
    let not_found = || (StatusCode::NOT_FOUND, "not found\n").into_response();
    let path = match disk.open_link(req.uri().path(), expires, signature, Timestamp::now()) {
        Ok(p) => p,
        Err(crate::storage::LinkRefused::Link(e)) => {
            return (StatusCode::FORBIDDEN, format!("{e}\n")).into_response();
        }
        Err(crate::storage::LinkRefused::NotFound) => return not_found(),
    };
    // Only files are served: a directory would be answered 200 with a body that fails.
    if !tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_file()) {
        return not_found();
    }
    match ServeFile::new(path).oneshot(req).await {
        Ok(r) => r.into_response(),
        Err(e) => match e {},
    }
}
