//! The broadcast dialect's record files: one per broadcast recording, with the token and
//! stream it came from and the metadata of its file.

use sqlx::any::AnyRow;

use super::recordings::recording_from_row;
use super::{Store, StoreError, WriteTx, from_json, get, to_i64, to_json};
use crate::domain::{MediaInfo, RecordFile, RecordingId, RecordingState, StreamName, Timestamp};

/// The order of a listing of record files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RecordOrder {
    /// By the time recording started.
    #[default]
    RecordedOn,
    /// By stream name.
    StreamName,
    /// By token.
    Token,
}

/// Which record files to list, and how.
#[derive(Clone, Debug, Default)]
pub struct RecordFileQuery {
    /// Only this token's.
    pub token_id: Option<i64>,
    /// Only this stream's.
    pub stream: Option<StreamName>,
    /// Only those whose recording is in one of these states.
    pub states: Option<Vec<RecordingState>>,
    /// The order.
    pub order: RecordOrder,
    /// Newest (or last) first.
    pub descending: bool,
    /// How many to skip.
    pub offset: u64,
    /// Most to return.
    pub limit: u32,
}

fn record_file_from_row(row: &AnyRow) -> Result<RecordFile, StoreError> {
    Ok(RecordFile {
        id: get(row, "rf_id")?,
        recording: recording_from_row(row)?,
        token_id: get(row, "token_id")?,
        stream: StreamName::parse(get::<String>(row, "stream_name")?)?,
        source_id: get(row, "source_id")?,
        recorded_on: Timestamp::from_unix_nanos(get(row, "recorded_on")?),
        metadata: get::<Option<String>>(row, "metadata")?
            .map(|m| from_json::<MediaInfo>("record file metadata", &m))
            .transpose()?,
    })
}

const SELECT: &str = "SELECT r.*, rf.id AS rf_id, rf.token_id, rf.stream_name, rf.source_id,
        rf.recorded_on, rf.metadata
     FROM record_files rf JOIN recordings r ON r.id = rf.recording_id";

impl WriteTx {
    /// The record file of the broadcast recording `recording`, read in the transaction.
    pub async fn record_file_of(
        &mut self,
        recording: &RecordingId,
    ) -> Result<Option<RecordFile>, StoreError> {
        let sql = format!("{SELECT} WHERE rf.recording_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(recording.as_str())
            .fetch_optional(&mut *self.tx)
            .await?;
        row.as_ref().map(record_file_from_row).transpose()
    }

    /// Adds the record file of the broadcast recording `recording` of `stream`'s source
    /// `source_id`, published with the token `token_id`, recording from `recorded_on`.
    pub async fn insert_record_file(
        &mut self,
        recording: &RecordingId,
        (token_id, stream, source_id): (i64, &StreamName, &str),
        recorded_on: Timestamp,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO record_files (recording_id, token_id, stream_name, source_id, recorded_on)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(recording.as_str())
        .bind(token_id)
        .bind(stream.as_str())
        .bind(source_id.to_owned())
        .bind(recorded_on.unix_nanos())
        .fetch_one(&mut *self.tx)
        .await?;
        get(&row, "id")
    }
}

impl Store {
    /// Keeps what the file of `recording`'s record file holds.
    pub async fn set_record_metadata(
        &self,
        recording: &RecordingId,
        info: &MediaInfo,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE record_files SET metadata = $2 WHERE recording_id = $1")
            .bind(recording.as_str())
            .bind(to_json(info))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// One record file.
    pub async fn record_file(&self, id: i64) -> Result<Option<RecordFile>, StoreError> {
        let sql = format!("{SELECT} WHERE rf.id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record_file_from_row).transpose()
    }

    /// The record files `q` asks for.
    pub async fn record_files(&self, q: &RecordFileQuery) -> Result<Vec<RecordFile>, StoreError> {
        let mut conditions = Vec::new();
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        if q.token_id.is_some() {
            conditions.push(format!("rf.token_id = {}", next()));
        }
        if q.stream.is_some() {
            conditions.push(format!("rf.stream_name = {}", next()));
        }
        let states = q.states.clone().unwrap_or_default();
        if q.states.is_some() {
            let marks: Vec<String> = states.iter().map(|_| next()).collect();
            conditions.push(if marks.is_empty() {
                "FALSE".into()
            } else {
                // Checked row by row as the page's order walks its index.
                format!(
                    "EXISTS (SELECT 1 FROM recordings r WHERE r.id = rf.recording_id \
                     AND r.state IN ({}))",
                    marks.join(", ")
                )
            });
        }
        let column = match q.order {
            RecordOrder::RecordedOn => "rf.recorded_on",
            RecordOrder::StreamName => "rf.stream_name",
            RecordOrder::Token => "rf.token_id",
        };
        let direction = if q.descending { "DESC" } else { "ASC" };
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        let (limit, offset) = (next(), next());
        // The page is found in record_files alone (walking its indexes past the offset), and
        // only its rows are joined to their recordings. Built from fixed fragments and
        // numbered parameters only.
        let order = format!("ORDER BY {column} {direction}, rf.id {direction}");
        let sql = format!(
            "SELECT r.*, rf.id AS rf_id, rf.token_id, rf.stream_name, rf.source_id,
                    rf.recorded_on, rf.metadata
             FROM (SELECT * FROM record_files rf{filter} {order} LIMIT {limit} OFFSET {offset}) rf
             JOIN recordings r ON r.id = rf.recording_id {order}"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(t) = q.token_id {
            query = query.bind(t);
        }
        if let Some(s) = &q.stream {
            query = query.bind(s.as_str().to_owned());
        }
        for s in &states {
            query = query.bind(s.as_str());
        }
        let rows = query
            .bind(i64::from(q.limit))
            .bind(to_i64(q.offset))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(record_file_from_row).collect()
    }
}
