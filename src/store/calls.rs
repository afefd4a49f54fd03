//! Call types, calls and users.

use sqlx::any::AnyRow;

use super::{Store, StoreError, conflict, from_json, get, to_json};
use crate::domain::{
    Call, CallId, CallType, CallTypeName, Cid, Grants, Role, StorageLocation, StorageName,
    Timestamp, User, UserId,
};

macro_rules! call_type_columns {
    () => {
        "name, settings, grants, notification_settings, external_storage, created_at, updated_at"
    };
}

macro_rules! call_columns {
    () => {
        "call_type, call_id, created_by, custom, settings_override, members, starts_at, team, created_at, updated_at"
    };
}

/// The call type columns of a join with `call_types t`, named with the prefix `t_`.
macro_rules! call_type_prefixed {
    () => {
        "t.name AS t_name, t.settings AS t_settings, t.grants AS t_grants,
         t.notification_settings AS t_notification_settings, t.external_storage AS t_external_storage,
         t.created_at AS t_created_at, t.updated_at AS t_updated_at"
    };
}

macro_rules! user_columns {
    () => {
        "id, role, name, image, custom, created_at, updated_at"
    };
}

/// A call type from `row`, whose call type columns are named with `prefix`.
pub(super) fn call_type_from_row(row: &AnyRow, prefix: &str) -> Result<CallType, StoreError> {
    let col = |c: &str| format!("{prefix}{c}");
    Ok(CallType {
        name: CallTypeName::parse(get::<String>(row, &col("name"))?)?,
        settings: from_json("call type settings", &get::<String>(row, &col("settings"))?)?,
        grants: Grants::stored(from_json(
            "call type grants",
            &get::<String>(row, &col("grants"))?,
        )?),
        notification_settings: from_json(
            "notification settings",
            &get::<String>(row, &col("notification_settings"))?,
        )?,
        external_storage: get::<Option<String>>(row, &col("external_storage"))?
            .map(StorageName::parse)
            .transpose()?,
        created_at: Timestamp::from_unix_nanos(get(row, &col("created_at"))?),
        updated_at: Timestamp::from_unix_nanos(get(row, &col("updated_at"))?),
    })
}

pub(super) fn call_from_row(row: &AnyRow) -> Result<Call, StoreError> {
    Ok(Call {
        cid: Cid::new(
            CallTypeName::parse(get::<String>(row, "call_type")?)?,
            CallId::parse(get::<String>(row, "call_id")?)?,
        ),
        created_by: UserId::parse(get::<String>(row, "created_by")?)?,
        custom: from_json("call custom data", &get::<String>(row, "custom")?)?,
        settings_override: from_json(
            "call settings override",
            &get::<String>(row, "settings_override")?,
        )?,
        members: from_json("call members", &get::<String>(row, "members")?)?,
        starts_at: get::<Option<i64>>(row, "starts_at")?.map(Timestamp::from_unix_nanos),
        team: get(row, "team")?,
        created_at: Timestamp::from_unix_nanos(get(row, "created_at")?),
        updated_at: Timestamp::from_unix_nanos(get(row, "updated_at")?),
    })
}

fn user_from_row(row: &AnyRow) -> Result<User, StoreError> {
    Ok(User {
        id: UserId::parse(get::<String>(row, "id")?)?,
        role: Role::parse(get::<String>(row, "role")?)?,
        name: get(row, "name")?,
        image: get(row, "image")?,
        custom: from_json("user custom data", &get::<String>(row, "custom")?)?,
        created_at: Timestamp::from_unix_nanos(get(row, "created_at")?),
        updated_at: Timestamp::from_unix_nanos(get(row, "updated_at")?),
    })
}

impl Store {
    /// Every call type, by name.
    pub async fn list_call_types(&self) -> Result<Vec<CallType>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            call_type_columns!(),
            " FROM call_types ORDER BY name"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| call_type_from_row(r, "")).collect()
    }

    /// One call type.
    pub async fn get_call_type(&self, name: &CallTypeName) -> Result<Option<CallType>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            call_type_columns!(),
            " FROM call_types WHERE name = $1"
        ))
        .bind(name.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(|r| call_type_from_row(r, "")).transpose()
    }

    /// Creates a call type; [`StoreError::Conflict`] if the name is taken.
    pub async fn insert_call_type(&self, ct: &CallType) -> Result<(), StoreError> {
        sqlx::query(concat!(
            "INSERT INTO call_types (",
            call_type_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(ct.name.as_str())
        .bind(to_json(&ct.settings))
        .bind(to_json(&ct.grants))
        .bind(to_json(&ct.notification_settings))
        .bind(ct.external_storage.as_ref().map(|s| s.as_str().to_owned()))
        .bind(ct.created_at.unix_nanos())
        .bind(ct.updated_at.unix_nanos())
        .execute(&self.pool)
        .await
        .map_err(conflict("call type"))?;
        Ok(())
    }

    /// Creates the call types in `cts` that do not exist yet.
    pub async fn ensure_call_types(&self, cts: &[CallType]) -> Result<(), StoreError> {
        for ct in cts {
            match self.insert_call_type(ct).await {
                Ok(()) | Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Saves a changed call type; false if it does not exist.
    pub async fn update_call_type(&self, ct: &CallType) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE call_types SET settings = $2, grants = $3, notification_settings = $4,
                 external_storage = $5, updated_at = $6
             WHERE name = $1",
        )
        .bind(ct.name.as_str())
        .bind(to_json(&ct.settings))
        .bind(to_json(&ct.grants))
        .bind(to_json(&ct.notification_settings))
        .bind(ct.external_storage.as_ref().map(|s| s.as_str().to_owned()))
        .bind(ct.updated_at.unix_nanos())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a call type that has no calls; false if it does not exist,
    /// [`StoreError::Conflict`] if calls of this type exist.
    pub async fn delete_call_type(&self, name: &CallTypeName) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let (calls,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM calls WHERE call_type = $1")
            .bind(name.as_str())
            .fetch_one(&mut *tx.tx)
            .await?;
        if calls > 0 {
            return Err(StoreError::Conflict("a call of this type"));
        }
        // The foreign key from calls refuses the delete if a call appeared since the count.
        let done = sqlx::query("DELETE FROM call_types WHERE name = $1")
            .bind(name.as_str())
            .execute(&mut *tx.tx)
            .await
            .map_err(conflict("a call of this type"))?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether a call type, a recording or a file refers to `storage`.
    pub async fn storage_in_use(&self, storage: &StorageName) -> Result<bool, StoreError> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM call_types WHERE external_storage = $1)
                  + (SELECT COUNT(*) FROM recordings WHERE storage = $1 AND state NOT IN ('ready', 'failed'))
                  + (SELECT COUNT(*) FROM recording_files WHERE storage = $2)",
        )
        .bind(storage.as_str())
        .bind(StorageLocation::External(storage.clone()).encode())
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    /// One call.
    pub async fn get_call(&self, cid: &Cid) -> Result<Option<Call>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            call_columns!(),
            " FROM calls WHERE call_type = $1 AND call_id = $2"
        ))
        .bind(cid.call_type.as_str())
        .bind(cid.id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(call_from_row).transpose()
    }

    /// One call and its type, in one query.
    pub async fn get_call_with_type(
        &self,
        cid: &Cid,
    ) -> Result<Option<(Call, CallType)>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT calls.*, ",
            call_type_prefixed!(),
            "
             FROM calls JOIN call_types t ON t.name = calls.call_type
             WHERE calls.call_type = $1 AND calls.call_id = $2"
        ))
        .bind(cid.call_type.as_str())
        .bind(cid.id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map(|r| Ok((call_from_row(r)?, call_type_from_row(r, "t_")?)))
            .transpose()
    }

    /// Creates a call unless it exists; true if it was created.
    pub async fn insert_call(&self, call: &Call) -> Result<bool, StoreError> {
        let done = sqlx::query(concat!(
            "INSERT INTO calls (",
            call_columns!(),
            ")
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (call_type, call_id) DO NOTHING"
        ))
        .bind(call.cid.call_type.as_str())
        .bind(call.cid.id.as_str())
        .bind(call.created_by.as_str())
        .bind(to_json(&call.custom))
        .bind(to_json(&call.settings_override))
        .bind(to_json(&call.members))
        .bind(call.starts_at.map(Timestamp::unix_nanos))
        .bind(call.team.clone())
        .bind(call.created_at.unix_nanos())
        .bind(call.updated_at.unix_nanos())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Saves a changed call if nobody changed it since `seen` (its `updated_at` when read).
    pub async fn update_call(&self, call: &Call, seen: Timestamp) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE calls SET custom = $3, settings_override = $4, members = $5, starts_at = $6, team = $7,
                              updated_at = $8
             WHERE call_type = $1 AND call_id = $2 AND updated_at = $9",
        )
        .bind(call.cid.call_type.as_str())
        .bind(call.cid.id.as_str())
        .bind(to_json(&call.custom))
        .bind(to_json(&call.settings_override))
        .bind(to_json(&call.members))
        .bind(call.starts_at.map(Timestamp::unix_nanos))
        .bind(call.team.clone())
        .bind(call.updated_at.unix_nanos())
        .bind(seen.unix_nanos())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::Stale("call"))
        }
    }

    /// One user record.
    pub async fn get_user(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Creates or replaces a user record, keeping its creation time.
    pub async fn upsert_user(&self, u: &User) -> Result<User, StoreError> {
        let row = sqlx::query(concat!(
            "INSERT INTO users (", user_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (id) DO UPDATE SET role = excluded.role, name = excluded.name, image = excluded.image,
                 custom = excluded.custom, updated_at = excluded.updated_at
             RETURNING ", user_columns!()
        ))
        .bind(u.id.as_str())
        .bind(u.role.as_str())
        .bind(u.name.clone())
        .bind(u.image.clone())
        .bind(to_json(&u.custom))
        .bind(u.created_at.unix_nanos())
        .bind(u.updated_at.unix_nanos())
        .fetch_one(&self.pool)
        .await?;
        user_from_row(&row)
    }
}
