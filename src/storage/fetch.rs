//! Remote files brought to a local cache: an `s3://bucket/key` object (credentials, region
//! and endpoint from the default AWS chain: environment, profile files, container or
//! instance roles; `AWS_ENDPOINT_URL` for S3-compatible services), or an HTTP(S) URL such as a
//! presigned one. A copy is kept under a name made from the URL without its query (presigned
//! links to one object share it) with the ETag it had; it is used again while the remote
//! ETag is the same, and downloaded again when it changed.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::StorageError;

/// A remote file's local copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    /// Where the copy is.
    pub path: PathBuf,
    /// Whether it was downloaded now (else the cached copy was current).
    pub downloaded: bool,
}

/// The local copy of `url` in `cache_dir`, downloaded unless the cached one is current.
pub async fn fetch_cached(url: &str, cache_dir: &Path) -> Result<Fetched, StorageError> {
    tokio::fs::create_dir_all(cache_dir)
        .await
        .map_err(StorageError::io("cannot create", cache_dir))?;
    let without_query = url.split(['?', '#']).next().unwrap_or(url);
    let name = without_query.rsplit('/').next().unwrap_or_default();
    let hash = hex::encode(&Sha256::digest(without_query.as_bytes())[..8]);
    let path = cache_dir.join(format!(
        "{hash}-{}",
        crate::domain::names::component(name, 96)
    ));
    let etag_path = path.with_extension("etag");
    let cached = match tokio::fs::read_to_string(&etag_path).await {
        Ok(etag) if path.exists() => Some(etag),
        _ => None,
    };
    let downloaded = match without_query.strip_prefix("s3://") {
        Some(rest) => {
            let (bucket, key) = rest.split_once('/').ok_or_else(|| StorageError::S3 {
                operation: "parse",
                message: format!("{url}: expected s3://bucket/key"),
            })?;
            from_s3(bucket, key, cached.as_deref(), &path).await
        }
        None => from_http(url, cached.as_deref(), &path).await,
    };
    let downloaded = match downloaded {
        Ok(d) => d,
        Err(e) => {
            // A download cut short leaves nothing behind.
            let _ = tokio::fs::remove_file(path.with_extension("partial")).await;
            return Err(e);
        }
    };
    if let Some(etag) = &downloaded {
        tokio::fs::write(&etag_path, etag)
            .await
            .map_err(StorageError::io("cannot write", &etag_path))?;
    }
    Ok(Fetched {
        path,
        downloaded: downloaded.is_some(),
    })
}

/// Downloads the object unless its ETag is `cached`; the new ETag if it downloaded.
async fn from_s3(
    bucket: &str,
    key: &str,
    cached: Option<&str>,
    path: &Path,
) -> Result<Option<String>, StorageError> {
    let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let mut conf = aws_sdk_s3::config::Builder::from(&shared);
    if shared.endpoint_url().is_some() {
        // S3-compatible services on a custom endpoint rarely have per-bucket host names.
        conf = conf.force_path_style(true);
    }
    let client = aws_sdk_s3::Client::from_conf(conf.build());
    let head = client
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(s3_failed("HeadObject", bucket, key))?;
    let etag = head.e_tag().unwrap_or_default().to_owned();
    if cached == Some(etag.as_str()) && !etag.is_empty() {
        return Ok(None);
    }
    let object = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(s3_failed("GetObject", bucket, key))?;
    let etag = object.e_tag().map_or(etag, str::to_owned);
    let mut body = object.body;
    let partial = path.with_extension("partial");
    let mut file = tokio::fs::File::create(&partial)
        .await
        .map_err(StorageError::io("cannot create", &partial))?;
    while let Some(chunk) = body.try_next().await.map_err(|e| StorageError::S3 {
        operation: "GetObject",
        message: format!("s3://{bucket}/{key}: {e}"),
    })? {
        file.write_all(&chunk)
            .await
            .map_err(StorageError::io("cannot write", &partial))?;
    }
    place(file, &partial, path).await?;
    Ok(Some(etag))
}

/// How an S3 request on `s3://bucket/key` failed.
fn s3_failed<E: std::error::Error + 'static>(
    operation: &'static str,
    bucket: &str,
    key: &str,
) -> impl FnOnce(E) -> StorageError + use<E> {
    let object = format!("s3://{bucket}/{key}");
    move |e| StorageError::S3 {
        operation,
        message: format!("{object}: {}", aws_sdk_s3::error::DisplayErrorContext(e)),
    }
}

/// Downloads `url` unless its ETag is `cached` (asking with `If-None-Match`, and reading
/// only the headers when a server ignores that); the new ETag if it downloaded.
async fn from_http(
    url: &str,
    cached: Option<&str>,
    path: &Path,
) -> Result<Option<String>, StorageError> {
    let failed = |message: String| StorageError::S3 {
        operation: "GET",
        message,
    };
    let shown = url.split('?').next().unwrap_or(url);
    let mut request = reqwest::Client::new().get(url);
    if let Some(etag) = cached {
        request = request.header(reqwest::header::IF_NONE_MATCH, etag);
    }
    let mut response = request
        .send()
        .await
        .map_err(|e| failed(format!("{shown}: {e}")))?;
    if response.status() == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(None);
    }
    if !response.status().is_success() {
        return Err(failed(format!("{shown}: {}", response.status())));
    }
    let etag = response
        .headers()
        .get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if cached == Some(etag.as_str()) && !etag.is_empty() {
        return Ok(None);
    }
    let partial = path.with_extension("partial");
    let mut file = tokio::fs::File::create(&partial)
        .await
        .map_err(StorageError::io("cannot create", &partial))?;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| failed(format!("{shown}: {e}")))?
    {
        file.write_all(&chunk)
            .await
            .map_err(StorageError::io("cannot write", &partial))?;
    }
    place(file, &partial, path).await?;
    Ok(Some(etag))
}

/// Flushes the download at `partial` and puts it at `path`.
async fn place(mut file: tokio::fs::File, partial: &Path, path: &Path) -> Result<(), StorageError> {
    file.flush()
        .await
        .map_err(StorageError::io("cannot write", partial))?;
    drop(file);
    tokio::fs::rename(partial, path)
        .await
        .map_err(StorageError::io("cannot rename", partial))
}
