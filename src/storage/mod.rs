//! Where recorded files end up: local disk or S3, behind one [`Target`] type.
//!
//! A [`Target`] can take a finished local file (`put`), make a download link for it, and
//! delete it. Local targets move the file under the recordings directory and hand out links
//! signed by reel (served by the API with Range support); S3 targets upload (multipart for
//! large files, resumable through an [`UploadJournal`]) and hand out presigned URLs.

mod fetch;
mod local;
mod s3;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use fetch::{Fetched, fetch_cached};
pub use local::{LinkRefused, LocalDisk};
pub use s3::{S3Bucket, S3Options};

use crate::domain::{Cid, FileName, SessionId, Timestamp};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A local file operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The S3 service failed or refused.
    #[error("S3 {operation} failed: {message}")]
    S3 {
        /// The operation.
        operation: &'static str,
        /// The service's or client's message.
        message: String,
    },
    /// No credentials are configured for an S3 target.
    #[error(
        "no S3 credentials: configure an access key or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )]
    NoCredentials,
    /// An object key that would leave the storage root.
    #[error("invalid object key {0:?}")]
    BadKey(String),
    /// Recording the upload's progress failed.
    #[error("cannot record upload progress: {0}")]
    Journal(String),
}

impl StorageError {
    fn io(
        action: &'static str,
        path: &Path,
    ) -> impl FnOnce(std::io::Error) -> StorageError + use<> {
        let path = path.display().to_string();
        move |source| StorageError::Io {
            action,
            path,
            source,
        }
    }
}

/// A multipart upload in progress.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MultipartProgress {
    /// The service's id of the upload.
    pub upload_id: String,
    /// Finished parts: (part number, ETag).
    pub parts: Vec<(u32, String)>,
}

/// Keeps the progress of a multipart upload so that it resumes where it stopped.
pub trait UploadJournal: Sync {
    /// The multipart upload in progress, if any.
    fn resume(
        &self,
    ) -> impl Future<Output = Result<Option<MultipartProgress>, StorageError>> + Send;
    /// A multipart upload was created (`Some`) or completed/abandoned (`None`).
    fn set_upload(
        &self,
        upload_id: Option<&str>,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// A part was uploaded.
    fn part_done(
        &self,
        part: u32,
        etag: &str,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
}

/// The object key of a recorded file: `[prefix/]<type>/<id>/<session>/<file>`.
pub fn object_key(prefix: &str, cid: &Cid, session: &SessionId, filename: &FileName) -> String {
    let rel = format!("{}/{}/{}/{}", cid.call_type, cid.id, session, filename);
    if prefix.is_empty() {
        rel
    } else {
        format!("{prefix}/{rel}")
    }
}

/// Longest lifetime of an S3 presigned URL (SigV4 allows 7 days).
pub const MAX_PRESIGN_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// A place files can be stored.
#[derive(Clone, Debug)]
pub enum Target {
    /// The local recordings directory.
    Local(Arc<LocalDisk>),
    /// An S3 bucket.
    S3(Arc<S3Bucket>),
}

impl Target {
    /// The key prefix new objects get.
    pub fn prefix(&self) -> &str {
        match self {
            Target::Local(_) => "",
            Target::S3(b) => b.prefix(),
        }
    }

    /// Stores the local file at `path` under `key`. The local file may be gone afterwards
    /// (local targets move it); it is untouched on error.
    pub async fn put<J: UploadJournal>(
        &self,
        path: &Path,
        key: &str,
        journal: &J,
    ) -> Result<u64, StorageError> {
        match self {
            Target::Local(d) => d.put(path, key).await,
            Target::S3(b) => b.put(path, key, journal).await,
        }
    }

    /// How long a link asked to live `ttl` lives: S3 links at most 7 days.
    pub fn link_ttl(&self, ttl: Duration) -> Duration {
        match self {
            Target::Local(_) => ttl,
            Target::S3(_) => ttl.min(MAX_PRESIGN_TTL),
        }
    }

    /// A download link valid for `ttl` from `now` (S3 links live at most 7 days).
    pub async fn url(
        &self,
        key: &str,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<String, StorageError> {
        match self {
            Target::Local(d) => Ok(d.url(key, ttl, now)),
            Target::S3(b) => b.presign(key, self.link_ttl(ttl)).await,
        }
    }

    /// Whether `key` exists.
    pub async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        match self {
            Target::Local(d) => Ok(d.resolve(key)?.exists()),
            Target::S3(b) => b.exists(key).await,
        }
    }

    /// Deletes the object; deleting a missing object is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self {
            Target::Local(d) => d.delete(key).await,
            Target::S3(b) => b.delete(key).await,
        }
    }
}
