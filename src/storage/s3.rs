//! S3 and S3-compatible buckets.

use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::{StorageError, UploadJournal};
use crate::secret::Secret;

/// Files at least this large are uploaded in parts.
pub const MULTIPART_THRESHOLD: u64 = 16 * 1024 * 1024;
/// Size of one part of a multipart upload.
pub const PART_SIZE: u64 = 8 * 1024 * 1024;

/// How to reach a bucket.
#[derive(Clone, Debug)]
pub struct S3Options {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix for new objects (no leading or trailing slash).
    pub prefix: String,
    /// Region.
    pub region: String,
    /// Endpoint of an S3-compatible service.
    pub endpoint: Option<String>,
    /// Access key id and secret; `None` reads AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
    pub credentials: Option<(String, Secret)>,
    /// Path-style addressing.
    pub path_style: bool,
}

/// A bucket and the client that reaches it.
#[derive(Debug)]
pub struct S3Bucket {
    client: Client,
    bucket: String,
    prefix: String,
    part_size: u64,
    multipart_threshold: u64,
}

fn s3_error<E>(operation: &'static str) -> impl FnOnce(E) -> StorageError
where
    E: std::error::Error + ProvideErrorMetadata,
{
    move |e| StorageError::S3 {
        operation,
        message: match e.code() {
            Some(code) => format!("{code}: {}", e.message().unwrap_or_default()),
            None => DisplayErrorContext(&e).to_string(),
        },
    }
}

impl S3Bucket {
    /// A client for the bucket described by `o`.
    pub fn new(o: S3Options) -> Result<Self, StorageError> {
        let (key, secret) = match o.credentials {
            Some((k, s)) => (k, s.expose().to_owned()),
            None => match (
                std::env::var("AWS_ACCESS_KEY_ID"),
                std::env::var("AWS_SECRET_ACCESS_KEY"),
            ) {
                (Ok(k), Ok(s)) => (k, s),
                _ => return Err(StorageError::NoCredentials),
            },
        };
        let mut conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(o.region))
            .credentials_provider(Credentials::new(key, secret, None, None, "reel"))
            .force_path_style(o.path_style)
            // Many S3-compatible servers do not accept the newer trailing checksums.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            // reel retries uploads itself, with backoff over hours; keep each attempt short.
            .retry_config(RetryConfig::standard().with_max_attempts(2))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .read_timeout(Duration::from_secs(60))
                    .build(),
            );
        if let Some(e) = o.endpoint {
            conf = conf.endpoint_url(e);
        }
        Ok(Self {
            client: Client::from_conf(conf.build()),
            bucket: o.bucket,
            prefix: o.prefix.trim_matches('/').to_owned(),
            part_size: PART_SIZE,
            multipart_threshold: MULTIPART_THRESHOLD,
        })
    }

    /// Uses multipart uploads from `threshold` bytes on, in parts of `part_size` bytes.
    pub fn with_multipart(mut self, threshold: u64, part_size: u64) -> Self {
        self.multipart_threshold = threshold;
        self.part_size = part_size.max(1);
        self
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix of new objects.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Uploads the file at `path` to `key`, resuming a multipart upload the journal knows.
    pub async fn put<J: UploadJournal>(
        &self,
        path: &Path,
        key: &str,
        journal: &J,
    ) -> Result<u64, StorageError> {
        let size = tokio::fs::metadata(path)
            .await
            .map_err(StorageError::io("read", path))?
            .len();
        if size < self.multipart_threshold {
            let body = ByteStream::from_path(path)
                .await
                .map_err(|e| StorageError::Io {
                    action: "read",
                    path: path.display().to_string(),
                    source: std::io::Error::other(e),
                })?;
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .body(body)
                .send()
                .await
                .map_err(s3_error("PutObject"))?;
            return Ok(size);
        }
        self.put_multipart(path, key, size, journal).await?;
        Ok(size)
    }

    async fn put_multipart<J: UploadJournal>(
        &self,
        path: &Path,
        key: &str,
        size: u64,
        journal: &J,
    ) -> Result<(), StorageError> {
        let (upload_id, mut done) = match journal.resume().await? {
            Some(p) => (p.upload_id, p.parts),
            None => {
                let created = self
                    .client
                    .create_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(s3_error("CreateMultipartUpload"))?;
                let id = created.upload_id().ok_or_else(|| StorageError::S3 {
                    operation: "CreateMultipartUpload",
                    message: "no upload id in the answer".into(),
                })?;
                journal.set_upload(Some(id)).await?;
                (id.to_owned(), Vec::new())
            }
        };
        let parts = size.div_ceil(self.part_size);
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(StorageError::io("open", path))?;
        for n in 1..=parts {
            let number = u32::try_from(n).map_err(|_| StorageError::S3 {
                operation: "UploadPart",
                message: "too many parts".into(),
            })?;
            if done.iter().any(|(p, _)| *p == number) {
                continue;
            }
            let offset = (n - 1) * self.part_size;
            let len = self.part_size.min(size - offset);
            let mut buf = vec![0; usize::try_from(len).unwrap_or(usize::MAX)];
            file.seek(std::io::SeekFrom::Start(offset))
                .await
                .map_err(StorageError::io("seek", path))?;
            file.read_exact(&mut buf)
                .await
                .map_err(StorageError::io("read", path))?;
            let part = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .part_number(i32::try_from(number).unwrap_or(i32::MAX))
                .body(ByteStream::from(buf))
                .send()
                .await;
            let part = match part {
                Ok(p) => p,
                Err(e) => {
                    if e.code() == Some("NoSuchUpload") {
                        // The upload expired or was aborted: start over on the next attempt.
                        journal.set_upload(None).await?;
                    }
                    return Err(s3_error("UploadPart")(e));
                }
            };
            let etag = part.e_tag().unwrap_or_default().to_owned();
            journal.part_done(number, &etag).await?;
            done.push((number, etag));
        }
        done.sort_by_key(|(n, _)| *n);
        let completed = CompletedMultipartUpload::builder()
            .set_parts(Some(
                done.iter()
                    .map(|(n, etag)| {
                        CompletedPart::builder()
                            .part_number(i32::try_from(*n).unwrap_or(i32::MAX))
                            .e_tag(etag)
                            .build()
                    })
                    .collect(),
            ))
            .build();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(&upload_id)
            .multipart_upload(completed)
            .send()
            .await
            .map_err(s3_error("CompleteMultipartUpload"))?;
        journal.set_upload(None).await
    }

    /// A presigned GET URL for `key`.
    pub async fn presign(&self, key: &str, ttl: Duration) -> Result<String, StorageError> {
        let config = PresigningConfig::expires_in(ttl).map_err(|e| StorageError::S3 {
            operation: "presign",
            message: e.to_string(),
        })?;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(s3_error("presign GetObject"))?;
        Ok(req.uri().to_owned())
    }

    /// Whether `key` exists.
    pub async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) => Err(s3_error("HeadObject")(e)),
        }
    }

    /// Deletes `key`.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(s3_error("DeleteObject"))?;
        Ok(())
    }

    /// Writes a small object under the prefix and returns its key, proving write access.
    pub async fn probe(&self) -> Result<String, StorageError> {
        let name = format!("reel-check-{}.txt", uuid::Uuid::new_v4().simple());
        let key = if self.prefix.is_empty() {
            name
        } else {
            format!("{}/{name}", self.prefix)
        };
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .body(ByteStream::from_static(b"reel storage check\n"))
            .send()
            .await
            .map_err(s3_error("PutObject"))?;
        Ok(key)
    }
}
