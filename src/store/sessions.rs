//! Call sessions.

use sqlx::any::AnyRow;

use super::{Store, StoreError, WriteTx, get};
use crate::domain::{CallId, CallSession, CallTypeName, Cid, SessionId, Timestamp};

macro_rules! session_columns {
    () => {
        "id, call_type, call_id, started_at, ended_at"
    };
}

fn session_from_row(row: &AnyRow) -> Result<CallSession, StoreError> {
    Ok(CallSession {
        id: SessionId::parse(get::<String>(row, "id")?)?,
        cid: Cid::new(
            CallTypeName::parse(get::<String>(row, "call_type")?)?,
            CallId::parse(get::<String>(row, "call_id")?)?,
        ),
        started_at: Timestamp::from_unix_nanos(get(row, "started_at")?),
        ended_at: get::<Option<i64>>(row, "ended_at")?.map(Timestamp::from_unix_nanos),
    })
}

impl Store {
    /// The call's active session, if it has one.
    pub async fn active_session(&self, cid: &Cid) -> Result<Option<CallSession>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM call_sessions WHERE call_type = $1 AND call_id = $2 AND ended_at IS NULL"
        ))
        .bind(cid.call_type.as_str())
        .bind(cid.id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    /// One session by id.
    pub async fn get_session(&self, id: &SessionId) -> Result<Option<CallSession>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM call_sessions WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    /// Starts `session` for its call unless the call has an active session; returns the
    /// active session either way and whether it is the new one.
    pub async fn start_session(
        &self,
        session: &CallSession,
    ) -> Result<(CallSession, bool), StoreError> {
        let mut tx = self.write().await?;
        let started = tx.start_session(session).await?;
        tx.commit().await?;
        Ok(started)
    }

    /// Ends the call's active session; returns it, or `None` if there was none.
    pub async fn end_session(
        &self,
        cid: &Cid,
        at: Timestamp,
    ) -> Result<Option<CallSession>, StoreError> {
        let mut tx = self.write().await?;
        let ended = tx.end_session(cid, at).await?;
        tx.commit().await?;
        Ok(ended)
    }

    /// Ends every active session (at start-up: the media plane that kept them is gone).
    pub async fn end_all_sessions(&self, at: Timestamp) -> Result<u64, StoreError> {
        let done = sqlx::query("UPDATE call_sessions SET ended_at = $1 WHERE ended_at IS NULL")
            .bind(at.unix_nanos())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

impl WriteTx {
    /// Starts `session` for its call unless the call has an active session; returns the
    /// active session either way and whether it is the new one.
    pub async fn start_session(
        &mut self,
        session: &CallSession,
    ) -> Result<(CallSession, bool), StoreError> {
        let done = sqlx::query(
            "INSERT INTO call_sessions (id, call_type, call_id, started_at, ended_at)
             VALUES ($1, $2, $3, $4, NULL) ON CONFLICT DO NOTHING",
        )
        .bind(session.id.as_str())
        .bind(session.cid.call_type.as_str())
        .bind(session.cid.id.as_str())
        .bind(session.started_at.unix_nanos())
        .execute(&mut *self.tx)
        .await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM call_sessions WHERE call_type = $1 AND call_id = $2 AND ended_at IS NULL"
        ))
        .bind(session.cid.call_type.as_str())
        .bind(session.cid.id.as_str())
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or(StoreError::Stale("call session"))?;
        Ok((session_from_row(&row)?, done.rows_affected() == 1))
    }

    /// Ends the call's active session; returns it, or `None` if there was none.
    pub async fn end_session(
        &mut self,
        cid: &Cid,
        at: Timestamp,
    ) -> Result<Option<CallSession>, StoreError> {
        let row = sqlx::query(concat!(
            "UPDATE call_sessions SET ended_at = $3
             WHERE call_type = $1 AND call_id = $2 AND ended_at IS NULL
             RETURNING ",
            session_columns!()
        ))
        .bind(cid.call_type.as_str())
        .bind(cid.id.as_str())
        .bind(at.unix_nanos())
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(session_from_row).transpose()
    }
}
