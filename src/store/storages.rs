//! External storage configurations and the application's generated credentials.

use sqlx::any::AnyRow;

use super::{Store, StoreError, WriteTx, conflict, get};
use crate::domain::{ExternalStorage, S3Access, StorageName, Timestamp};
use crate::secret::Secret;

macro_rules! storage_columns {
    () => {
        "name, bucket, path, region, access_key_id, secret_access_key, endpoint_url, created_at, updated_at"
    };
}

/// One external storage, read through `db`.
async fn get_storage<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    name: &StorageName,
) -> Result<Option<ExternalStorage>, StoreError> {
    let row = sqlx::query(concat!(
        "SELECT ",
        storage_columns!(),
        " FROM external_storages WHERE name = $1"
    ))
    .bind(name.as_str())
    .fetch_optional(db)
    .await?;
    row.as_ref().map(storage_from_row).transpose()
}

impl WriteTx {
    /// One external storage, read in the transaction.
    pub async fn get_storage(
        &mut self,
        name: &StorageName,
    ) -> Result<Option<ExternalStorage>, StoreError> {
        get_storage(&mut *self.tx, name).await
    }
}

fn storage_from_row(row: &AnyRow) -> Result<ExternalStorage, StoreError> {
    Ok(ExternalStorage {
        name: StorageName::parse(get::<String>(row, "name")?)?,
        bucket: get(row, "bucket")?,
        path: get(row, "path")?,
        s3: S3Access {
            region: get(row, "region")?,
            access_key_id: get(row, "access_key_id")?,
            secret_access_key: get::<Option<String>>(row, "secret_access_key")?.map(Secret::from),
            endpoint_url: get(row, "endpoint_url")?,
        },
        created_at: Timestamp::from_unix_nanos(get(row, "created_at")?),
        updated_at: Timestamp::from_unix_nanos(get(row, "updated_at")?),
    })
}

impl Store {
    /// Every external storage, by name.
    pub async fn list_storages(&self) -> Result<Vec<ExternalStorage>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            storage_columns!(),
            " FROM external_storages ORDER BY name"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(storage_from_row).collect()
    }

    /// One external storage.
    pub async fn get_storage(
        &self,
        name: &StorageName,
    ) -> Result<Option<ExternalStorage>, StoreError> {
        get_storage(&self.pool, name).await
    }

    /// Creates an external storage; [`StoreError::Conflict`] if the name is taken.
    pub async fn insert_storage(&self, s: &ExternalStorage) -> Result<(), StoreError> {
        sqlx::query(concat!(
            "INSERT INTO external_storages (",
            storage_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(s.name.as_str())
        .bind(s.bucket.clone())
        .bind(s.path.clone())
        .bind(s.s3.region.clone())
        .bind(s.s3.access_key_id.clone())
        .bind(
            s.s3.secret_access_key
                .as_ref()
                .map(|k| k.expose().to_owned()),
        )
        .bind(s.s3.endpoint_url.clone())
        .bind(s.created_at.unix_nanos())
        .bind(s.updated_at.unix_nanos())
        .execute(&self.pool)
        .await
        .map_err(conflict("external storage"))?;
        Ok(())
    }

    /// Replaces an external storage's settings; false if it does not exist.
    pub async fn update_storage(&self, s: &ExternalStorage) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE external_storages SET bucket = $2, path = $3, region = $4, access_key_id = $5,
                 secret_access_key = $6, endpoint_url = $7, updated_at = $8
             WHERE name = $1",
        )
        .bind(s.name.as_str())
        .bind(s.bucket.clone())
        .bind(s.path.clone())
        .bind(s.s3.region.clone())
        .bind(s.s3.access_key_id.clone())
        .bind(
            s.s3.secret_access_key
                .as_ref()
                .map(|k| k.expose().to_owned()),
        )
        .bind(s.s3.endpoint_url.clone())
        .bind(s.updated_at.unix_nanos())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes an external storage; false if it does not exist.
    pub async fn delete_storage(&self, name: &StorageName) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM external_storages WHERE name = $1")
            .bind(name.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The application's API key and secret, as generated on first start.
    pub async fn credentials(&self) -> Result<Option<(String, String)>, StoreError> {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT api_key, api_secret FROM app_credentials WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?;
        Ok(row)
    }

    /// Keeps generated credentials unless some are kept already; returns the kept ones and
    /// whether they are the ones given.
    pub async fn keep_credentials(
        &self,
        key: &str,
        secret: &str,
    ) -> Result<((String, String), bool), StoreError> {
        let done = sqlx::query(
            "INSERT INTO app_credentials (id, api_key, api_secret, created_at) VALUES (1, $1, $2, $3)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(key.to_owned())
        .bind(secret.to_owned())
        .bind(Timestamp::now().unix_nanos())
        .execute(&self.pool)
        .await?;
        let kept = self
            .credentials()
            .await?
            .ok_or(StoreError::Stale("app credentials"))?;
        Ok((kept, done.rows_affected() == 1))
    }
}
