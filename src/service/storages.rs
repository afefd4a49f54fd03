//! Storage targets: reel's own store and the application's external storages.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Result, ServiceError, Services, require_server};
use crate::auth::Caller;
use crate::domain::storage::check_location;
use crate::domain::{ExternalStorage, S3Access, StorageLocation, StorageName, Timestamp};
use crate::storage::{LocalDisk, S3Bucket, S3Options, Target};
use crate::store::{Store, StoreError, WriteTx};

/// Finds the [`Target`] of a [`StorageLocation`], keeping a client per external storage.
#[derive(Clone, Debug)]
pub struct Storages {
    /// The local recordings directory: always there, so that files stored locally stay
    /// downloadable after the default store becomes S3.
    local: Arc<LocalDisk>,
    /// reel's default S3 bucket, when configured (it is then the default store).
    default_s3: Option<Arc<S3Bucket>>,
    clients: Arc<Mutex<HashMap<StorageName, (Timestamp, Target)>>>,
}

/// How an external storage is reached.
#[derive(Clone, Debug)]
pub struct StorageSpec {
    /// Its name.
    pub name: StorageName,
    /// The bucket.
    pub bucket: String,
    /// Key prefix.
    pub path: String,
    /// Access.
    pub s3: S3Access,
}

fn bucket_for(s: &ExternalStorage) -> Result<Target> {
    let b = S3Bucket::new(S3Options {
        bucket: s.bucket.clone(),
        prefix: s.path.clone(),
        region: s.s3.region.clone(),
        path_style: s.s3.endpoint_url.is_some(),
        endpoint: s.s3.endpoint_url.clone(),
        credentials: s
            .s3
            .access_key_id
            .clone()
            .zip(s.s3.secret_access_key.clone()),
    })?;
    Ok(Target::S3(Arc::new(b)))
}

impl Storages {
    /// reel's own stores: the local directory, and the default S3 bucket if there is one.
    pub fn new(local: Arc<LocalDisk>, default_s3: Option<Arc<S3Bucket>>) -> Self {
        Self {
            local,
            default_s3,
            clients: Arc::default(),
        }
    }

    /// The local recordings directory.
    pub fn local(&self) -> &Arc<LocalDisk> {
        &self.local
    }

    /// Where new files go: the external storage `name`, else reel's default store.
    pub fn location_for(&self, name: Option<&StorageName>) -> StorageLocation {
        match (name, &self.default_s3) {
            (Some(n), _) => StorageLocation::External(n.clone()),
            (None, Some(_)) => StorageLocation::DefaultS3,
            (None, None) => StorageLocation::Local,
        }
    }

    /// The target of `location`, reading an external storage's settings through the pool.
    pub async fn target(&self, store: &Store, location: &StorageLocation) -> Result<Target> {
        match location {
            StorageLocation::External(name) => self.external(name, store.get_storage(name).await?),
            StorageLocation::Local => Ok(Target::Local(self.local.clone())),
            StorageLocation::DefaultS3 => self.default_s3(),
        }
    }

    /// The target of `location`, reading an external storage's settings in `tx` (a read
    /// through the pool there could wait for a connection that waits for `tx`).
    pub async fn target_in(&self, tx: &mut WriteTx, location: &StorageLocation) -> Result<Target> {
        match location {
            StorageLocation::External(name) => self.external(name, tx.get_storage(name).await?),
            StorageLocation::Local => Ok(Target::Local(self.local.clone())),
            StorageLocation::DefaultS3 => self.default_s3(),
        }
    }

    fn default_s3(&self) -> Result<Target> {
        self.default_s3.clone().map(Target::S3).ok_or_else(|| {
            ServiceError::Unavailable(
                "the file is in the default S3 store, which is no longer configured".into(),
            )
        })
    }

    /// The client of the external storage `name`, whose settings are `s`.
    fn external(&self, name: &StorageName, s: Option<ExternalStorage>) -> Result<Target> {
        let s = s.ok_or_else(|| {
            ServiceError::NotFound(format!("external storage {name} does not exist"))
        })?;
        let mut clients = self
            .clients
            .lock()
            .expect("the storage client cache is never poisoned");
        if let Some((version, t)) = clients.get(name)
            && *version == s.updated_at
        {
            return Ok(t.clone());
        }
        let t = bucket_for(&s)?;
        clients.insert(name.clone(), (s.updated_at, t.clone()));
        Ok(t)
    }
}

impl Services {
    /// Every external storage.
    pub async fn list_storages(&self, caller: &Caller) -> Result<Vec<ExternalStorage>> {
        require_server(caller, "list external storages")?;
        Ok(self.store().list_storages().await?)
    }

    /// Creates an external storage.
    pub async fn create_storage(
        &self,
        caller: &Caller,
        spec: StorageSpec,
    ) -> Result<ExternalStorage> {
        require_server(caller, "create external storages")?;
        let path = spec.path.trim_matches('/').to_owned();
        check_location(&spec.bucket, &path).map_err(ServiceError::Invalid)?;
        let now = Timestamp::now();
        let s = ExternalStorage {
            name: spec.name,
            bucket: spec.bucket,
            path,
            s3: spec.s3,
            created_at: now,
            updated_at: now,
        };
        self.store().insert_storage(&s).await.map_err(|e| match e {
            StoreError::Conflict(_) => {
                ServiceError::Conflict(format!("external storage {} already exists", s.name))
            }
            e => e.into(),
        })?;
        Ok(s)
    }

    /// The external storage of `spec`, created unless one of its name exists (a name made
    /// from the settings themselves names the same settings).
    pub async fn ensure_storage(&self, caller: &Caller, spec: StorageSpec) -> Result<StorageName> {
        require_server(caller, "create external storages")?;
        let name = spec.name.clone();
        if self.store().get_storage(&name).await?.is_some() {
            return Ok(name);
        }
        match self.create_storage(caller, spec).await {
            // Another request made it meanwhile.
            Ok(_) | Err(ServiceError::Conflict(_)) => Ok(name),
            Err(e) => Err(e),
        }
    }

    /// Replaces an external storage's settings.
    pub async fn update_storage(
        &self,
        caller: &Caller,
        spec: StorageSpec,
    ) -> Result<ExternalStorage> {
        require_server(caller, "change external storages")?;
        let path = spec.path.trim_matches('/').to_owned();
        check_location(&spec.bucket, &path).map_err(ServiceError::Invalid)?;
        let old = self.store().get_storage(&spec.name).await?.ok_or_else(|| {
            ServiceError::NotFound(format!("external storage {} does not exist", spec.name))
        })?;
        let s = ExternalStorage {
            name: spec.name,
            bucket: spec.bucket,
            path,
            s3: spec.s3,
            created_at: old.created_at,
            updated_at: Timestamp::now().max(old.updated_at.after(Duration::from_nanos(1))),
        };
        self.store().update_storage(&s).await?;
        Ok(s)
    }

    /// Deletes an external storage that no call type uses.
    pub async fn delete_storage(&self, caller: &Caller, name: &StorageName) -> Result<()> {
        require_server(caller, "delete external storages")?;
        if self.store().storage_in_use(name).await? {
            return Err(ServiceError::Conflict(format!(
                "external storage {name} is used by a call type or holds recordings; \
                 change the call type and delete those recordings first"
            )));
        }
        if !self.store().delete_storage(name).await? {
            return Err(ServiceError::NotFound(format!(
                "external storage {name} does not exist"
            )));
        }
        Ok(())
    }

    /// Writes a test file to an external storage and returns a download link to it.
    pub async fn check_storage(&self, caller: &Caller, name: &StorageName) -> Result<String> {
        require_server(caller, "check external storages")?;
        let target = self
            .target(&StorageLocation::External(name.clone()))
            .await?;
        let Target::S3(bucket) = &target else {
            return Err(ServiceError::Invalid(format!(
                "external storage {name} is not an S3 bucket"
            )));
        };
        let key = bucket.probe().await?;
        Ok(target
            .url(&key, self.inner.settings.download_url_ttl, Timestamp::now())
            .await?)
    }
}
