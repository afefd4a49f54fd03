//! The uploader: moves finished files to their storage, with retries, and announces them.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Services;
use crate::domain::Timestamp;
use crate::metrics::OutcomeLabels;
use crate::storage::{MultipartProgress, StorageError, UploadJournal};
use crate::store::{Store, StoredFile};

/// Uploads looked at per pass (done one after another: uploads are bandwidth-bound).
const BATCH: u32 = 8;
/// Longest sleep between two looks at the queue.
const IDLE_POLL: Duration = Duration::from_secs(5);

/// Keeps a file's multipart progress in the store.
struct FileJournal<'a> {
    store: &'a Store,
    file: &'a StoredFile,
}

impl UploadJournal for FileJournal<'_> {
    async fn resume(&self) -> Result<Option<MultipartProgress>, StorageError> {
        let Some(id) = &self.file.upload_id else {
            return Ok(None);
        };
        let parts = self
            .store
            .upload_parts(self.file.id)
            .await
            .map_err(|e| StorageError::Journal(e.to_string()))?;
        Ok(Some(MultipartProgress {
            upload_id: id.clone(),
            parts,
        }))
    }

    async fn set_upload(&self, upload_id: Option<&str>) -> Result<(), StorageError> {
        self.store
            .set_upload_id(self.file.id, upload_id)
            .await
            .map_err(|e| StorageError::Journal(e.to_string()))
    }

    async fn part_done(&self, part: u32, etag: &str) -> Result<(), StorageError> {
        self.store
            .add_upload_part(self.file.id, part, etag)
            .await
            .map_err(|e| StorageError::Journal(e.to_string()))
    }
}

/// Uploads pending files until shut down.
pub struct Uploader {
    services: Services,
    wake: Arc<Notify>,
}

impl Uploader {
    pub(super) fn new(services: Services, wake: Arc<Notify>) -> Self {
        Self { services, wake }
    }

    /// Uploads until `shutdown` fires.
    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let store = self.services.store();
            let sleep_for = match store.due_uploads(Timestamp::now(), BATCH).await {
                Ok(due) if !due.is_empty() => {
                    for f in due {
                        tokio::select! {
                            () = shutdown.cancelled() => return,
                            () = self.upload(&f) => {}
                        }
                    }
                    continue;
                }
                Ok(_) => match store.next_upload_at().await {
                    Ok(Some(t)) => t.since(Timestamp::now()).min(IDLE_POLL),
                    Ok(None) => IDLE_POLL,
                    Err(e) => {
                        warn!(error = %e, "cannot read the upload queue");
                        Duration::from_secs(1)
                    }
                },
                Err(e) => {
                    warn!(error = %e, "cannot read the upload queue");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(sleep_for) => {}
            }
        }
    }

    /// Stores one file; returns its size, or the error and whether retrying is pointless.
    async fn put(&self, f: &StoredFile) -> Result<u64, (String, bool)> {
        let target = self
            .services
            .target(&f.file.storage)
            .await
            .map_err(|e| (e.to_string(), false))?;
        let key = &f.file.object_key;
        match f.local_path.as_deref().filter(|p| p.exists()) {
            Some(path) => {
                let journal = FileJournal {
                    store: self.services.store(),
                    file: f,
                };
                target
                    .put(path, key, &journal)
                    .await
                    .map_err(|e| (e.to_string(), false))
            }
            // A previous attempt may have stored it and then failed to record that.
            None => match target.exists(key).await {
                Ok(true) => Ok(f.file.size),
                Ok(false) => Err(("the local copy is missing".into(), true)),
                Err(e) => Err((e.to_string(), false)),
            },
        }
    }

    async fn upload(&self, f: &StoredFile) {
        let cid = &f.file.cid;
        let recording_id = &f.file.recording_id;
        let metrics = self.services.metrics();
        let (error, permanent) = match self.put(f).await {
            Ok(size) => {
                metrics.upload_bytes.inc_by(size);
                metrics
                    .uploads
                    .get_or_create(&OutcomeLabels { outcome: "ok" })
                    .inc();
                info!(cid = %cid, recording_id = %recording_id, file = %f.file.filename, size, "file uploaded");
                self.finish(f).await;
                return;
            }
            Err(e) => e,
        };
        let attempts = f.attempts + 1;
        let now = Timestamp::now();
        let retry_at = now.after(self.services.inner.settings.retry.delay(attempts));
        if permanent || retry_at.since(f.created_at) > self.services.inner.settings.upload_retry_for
        {
            metrics
                .uploads
                .get_or_create(&OutcomeLabels { outcome: "dead" })
                .inc();
            warn!(cid = %cid, recording_id = %recording_id, file = %f.file.filename, attempts, %error,
                  "upload given up; the local copy is kept");
            if let Err(e) = self.services.file_failed(f, &error).await {
                warn!(cid = %cid, recording_id = %recording_id, error = %e, "cannot record a failed upload");
            }
        } else {
            metrics
                .uploads
                .get_or_create(&OutcomeLabels { outcome: "failed" })
                .inc();
            warn!(cid = %cid, recording_id = %recording_id, file = %f.file.filename, attempts, %error,
                  retry_in = ?retry_at.since(now), "upload failed; will retry");
            if let Err(e) = self
                .services
                .store()
                .upload_attempt_failed(f.id, attempts, retry_at, &error)
                .await
            {
                warn!(cid = %cid, recording_id = %recording_id, error = %e, "cannot record a failed upload");
            }
        }
    }

    /// Records the upload, then removes the local copy if one is left.
    async fn finish(&self, f: &StoredFile) {
        if let Err(e) = self.services.file_uploaded(f).await {
            // Try again later (the next attempt finds the object stored and only records it).
            let attempts = f.attempts + 1;
            let retry_at =
                Timestamp::now().after(self.services.inner.settings.retry.delay(attempts));
            let error = format!("cannot record the finished upload: {e}");
            warn!(cid = %f.file.cid, recording_id = %f.file.recording_id, %error, "upload not recorded; will retry");
            if let Err(e) = self
                .services
                .store()
                .upload_attempt_failed(f.id, attempts, retry_at, &error)
                .await
            {
                warn!(cid = %f.file.cid, recording_id = %f.file.recording_id, error = %e, "cannot record a failed upload");
            }
            return;
        }
        if let Some(p) = f.local_path.as_deref()
            && let Err(e) = tokio::fs::remove_file(p).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            warn!(cid = %f.file.cid, recording_id = %f.file.recording_id, path = %p.display(), error = %e,
                  "cannot remove the uploaded local copy");
        }
    }
}
