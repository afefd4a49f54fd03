//! Publish tokens of the broadcast dialect.

use sqlx::any::AnyRow;

use super::{Store, StoreError, WriteTx, conflict, from_json, get, to_json};
use crate::domain::{PublishToken, StreamRule, Timestamp, TokenSpec};
use crate::secret::Secret;

macro_rules! token_columns {
    () => {
        "id, label, token, streams, record, multisource, enable_thumbnails, \
         subscribe_requires_auth, is_active, added_on, expires_on"
    };
}

/// The order of a listing of tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TokenOrder {
    /// By label, ignoring case.
    Label,
    /// By creation time.
    #[default]
    AddedOn,
}

fn flag(row: &AnyRow, col: &str) -> Result<bool, StoreError> {
    Ok(get::<i64>(row, col)? != 0)
}

fn token_from_row(row: &AnyRow) -> Result<PublishToken, StoreError> {
    Ok(PublishToken {
        id: get(row, "id")?,
        label: get(row, "label")?,
        token: Secret::from(get::<String>(row, "token")?),
        streams: from_json::<Vec<StreamRule>>("token streams", &get::<String>(row, "streams")?)?,
        record: flag(row, "record")?,
        multisource: flag(row, "multisource")?,
        enable_thumbnails: flag(row, "enable_thumbnails")?,
        subscribe_requires_auth: flag(row, "subscribe_requires_auth")?,
        is_active: flag(row, "is_active")?,
        added_on: Timestamp::from_unix_nanos(get(row, "added_on")?),
        expires_on: get::<Option<i64>>(row, "expires_on")?.map(Timestamp::from_unix_nanos),
    })
}

/// One token, read through `db`.
async fn get_token<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    id: i64,
) -> Result<Option<PublishToken>, StoreError> {
    let row = sqlx::query(concat!(
        "SELECT ",
        token_columns!(),
        " FROM publish_tokens WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?;
    row.as_ref().map(token_from_row).transpose()
}

impl WriteTx {
    /// One token, read in the transaction (to change it).
    pub async fn get_token(&mut self, id: i64) -> Result<Option<PublishToken>, StoreError> {
        get_token(&mut *self.tx, id).await
    }

    /// Writes every setting of `t`; false if it does not exist. [`StoreError::Conflict`] if
    /// its new value is another token's.
    pub async fn update_token(&mut self, t: &PublishToken) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE publish_tokens SET label = $2, token = $3, streams = $4, record = $5,
                 multisource = $6, enable_thumbnails = $7, subscribe_requires_auth = $8,
                 is_active = $9, expires_on = $10
             WHERE id = $1",
        )
        .bind(t.id)
        .bind(t.label.clone())
        .bind(t.token.expose().to_owned())
        .bind(to_json(&t.streams))
        .bind(i64::from(t.record))
        .bind(i64::from(t.multisource))
        .bind(i64::from(t.enable_thumbnails))
        .bind(i64::from(t.subscribe_requires_auth))
        .bind(i64::from(t.is_active))
        .bind(t.expires_on.map(Timestamp::unix_nanos))
        .execute(&mut *self.tx)
        .await
        .map_err(conflict("publish token"))?;
        Ok(done.rows_affected() == 1)
    }
}

impl Store {
    /// Stores a new token of `spec` whose value is `token`, made `now`;
    /// [`StoreError::Conflict`] if the value is taken.
    pub async fn insert_token(
        &self,
        spec: &TokenSpec,
        token: &Secret,
        now: Timestamp,
    ) -> Result<PublishToken, StoreError> {
        let row = sqlx::query(
            "INSERT INTO publish_tokens (label, token, streams, record, multisource,
                 enable_thumbnails, subscribe_requires_auth, is_active, added_on, expires_on)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9) RETURNING id",
        )
        .bind(spec.label.clone())
        .bind(token.expose().to_owned())
        .bind(to_json(&spec.streams))
        .bind(i64::from(spec.record))
        .bind(i64::from(spec.multisource))
        .bind(i64::from(spec.enable_thumbnails))
        .bind(i64::from(spec.subscribe_requires_auth))
        .bind(now.unix_nanos())
        .bind(spec.expiry.time(now).map(Timestamp::unix_nanos))
        .fetch_one(&self.pool)
        .await
        .map_err(conflict("publish token"))?;
        Ok(PublishToken {
            id: get(&row, "id")?,
            label: spec.label.clone(),
            token: token.clone(),
            streams: spec.streams.clone(),
            record: spec.record,
            multisource: spec.multisource,
            enable_thumbnails: spec.enable_thumbnails,
            subscribe_requires_auth: spec.subscribe_requires_auth,
            is_active: true,
            added_on: now,
            expires_on: spec.expiry.time(now),
        })
    }

    /// One token.
    pub async fn get_token(&self, id: i64) -> Result<Option<PublishToken>, StoreError> {
        get_token(&self.pool, id).await
    }

    /// The token whose value is `value`.
    pub async fn token_by_value(&self, value: &str) -> Result<Option<PublishToken>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            token_columns!(),
            " FROM publish_tokens WHERE token = $1"
        ))
        .bind(value.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// A page of tokens: `limit` of them after the first `offset`, in `order`.
    pub async fn list_tokens(
        &self,
        order: TokenOrder,
        descending: bool,
        (offset, limit): (u32, u32),
    ) -> Result<Vec<PublishToken>, StoreError> {
        let column = match order {
            TokenOrder::Label => "LOWER(label)",
            TokenOrder::AddedOn => "added_on",
        };
        let direction = if descending { "DESC" } else { "ASC" };
        let sql = format!(
            concat!(
                "SELECT ",
                token_columns!(),
                " FROM publish_tokens ORDER BY {column} {direction}, id {direction}
                  LIMIT $1 OFFSET $2"
            ),
            column = column,
            direction = direction
        );
        // The SQL is built from fixed column names and directions only.
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(i64::from(limit))
            .bind(i64::from(offset))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// Deletes a token; false if it does not exist.
    pub async fn delete_token(&self, id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM publish_tokens WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
