//! Recordings, their files, and the uploads of those files.

use std::path::PathBuf;

use sqlx::any::AnyRow;

use super::{Store, StoreError, WriteTx, conflict, get, parse_with, to_i64};
use crate::domain::{
    Call, CallId, CallType, CallTypeName, Cid, FileName, Recording, RecordingFile, RecordingId,
    RecordingState, RecordingType, SessionId, StorageLocation, StorageName, Timestamp, UserId,
};

macro_rules! recording_columns {
    () => {
        "id, call_type, call_id, session_id, recording_type, state, storage, requested_by, error,
         created_at, started_at, stopped_at, updated_at, slot"
    };
}

macro_rules! file_columns {
    () => {
        "id, recording_id, call_type, call_id, session_id, recording_type, filename, storage, object_key,
         local_path, size, start_time, end_time, layer, state, attempts, next_attempt_at, last_error,
         upload_id, created_at"
    };
}

fn cid_from_row(row: &AnyRow) -> Result<Cid, StoreError> {
    Ok(Cid::new(
        CallTypeName::parse(get::<String>(row, "call_type")?)?,
        CallId::parse(get::<String>(row, "call_id")?)?,
    ))
}

fn recording_type_from_row(row: &AnyRow) -> Result<RecordingType, StoreError> {
    parse_with(
        "recording type",
        &get::<String>(row, "recording_type")?,
        RecordingType::parse,
    )
}

fn storage_from_row(row: &AnyRow) -> Result<Option<StorageName>, StoreError> {
    Ok(get::<Option<String>>(row, "storage")?
        .map(StorageName::parse)
        .transpose()?)
}

fn location(s: &str) -> Result<StorageLocation, StoreError> {
    parse_with("storage location", s, StorageLocation::decode)
}

fn opt_time(row: &AnyRow, col: &str) -> Result<Option<Timestamp>, StoreError> {
    Ok(get::<Option<i64>>(row, col)?.map(Timestamp::from_unix_nanos))
}

pub(super) fn recording_from_row(row: &AnyRow) -> Result<Recording, StoreError> {
    Ok(Recording {
        id: RecordingId::parse(get::<String>(row, "id")?)?,
        cid: cid_from_row(row)?,
        session_id: SessionId::parse(get::<String>(row, "session_id")?)?,
        recording_type: recording_type_from_row(row)?,
        state: parse_with(
            "recording state",
            &get::<String>(row, "state")?,
            RecordingState::parse,
        )?,
        storage: storage_from_row(row)?,
        requested_by: get::<Option<String>>(row, "requested_by")?
            .map(UserId::parse)
            .transpose()?,
        error: get(row, "error")?,
        created_at: Timestamp::from_unix_nanos(get(row, "created_at")?),
        started_at: opt_time(row, "started_at")?,
        stopped_at: opt_time(row, "stopped_at")?,
        updated_at: Timestamp::from_unix_nanos(get(row, "updated_at")?),
        exclusive: get::<String>(row, "slot")?.is_empty(),
    })
}

/// Upload state of a recorded file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileState {
    /// Written locally, waiting to be uploaded.
    Pending,
    /// In its storage; listed and downloadable.
    Uploaded,
    /// The upload was given up; the local copy is kept.
    Failed,
}

impl FileState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Uploaded => "uploaded",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Uploaded, Self::Failed]
            .into_iter()
            .find(|f| f.as_str() == s)
    }
}

/// A recorded file with its upload bookkeeping.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredFile {
    /// Row id.
    pub id: i64,
    /// The file as the API shows it.
    pub file: RecordingFile,
    /// Upload state.
    pub state: FileState,
    /// The local copy, while it exists.
    pub local_path: Option<PathBuf>,
    /// Failed upload attempts so far.
    pub attempts: u32,
    /// Earliest time of the next attempt.
    pub next_attempt_at: Timestamp,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// The multipart upload in progress, if any.
    pub upload_id: Option<String>,
    /// When the recorder handed it over.
    pub created_at: Timestamp,
}

fn file_from_row(row: &AnyRow) -> Result<StoredFile, StoreError> {
    Ok(StoredFile {
        id: get(row, "id")?,
        file: RecordingFile {
            recording_id: RecordingId::parse(get::<String>(row, "recording_id")?)?,
            cid: cid_from_row(row)?,
            session_id: SessionId::parse(get::<String>(row, "session_id")?)?,
            recording_type: recording_type_from_row(row)?,
            filename: FileName::parse(get::<String>(row, "filename")?)?,
            storage: location(&get::<String>(row, "storage")?)?,
            object_key: get(row, "object_key")?,
            size: u64::try_from(get::<i64>(row, "size")?).unwrap_or(0),
            start_time: Timestamp::from_unix_nanos(get(row, "start_time")?),
            end_time: Timestamp::from_unix_nanos(get(row, "end_time")?),
            layer: get(row, "layer")?,
        },
        state: parse_with(
            "file state",
            &get::<String>(row, "state")?,
            FileState::parse,
        )?,
        local_path: get::<Option<String>>(row, "local_path")?.map(PathBuf::from),
        attempts: u32::try_from(get::<i64>(row, "attempts")?).unwrap_or(u32::MAX),
        next_attempt_at: Timestamp::from_unix_nanos(get(row, "next_attempt_at")?),
        last_error: get(row, "last_error")?,
        upload_id: get(row, "upload_id")?,
        created_at: Timestamp::from_unix_nanos(get(row, "created_at")?),
    })
}

/// A listed file as the listing query aggregates it (one JSON array per call).
#[derive(serde::Deserialize)]
struct FileDoc {
    recording_id: String,
    call_type: String,
    call_id: String,
    session_id: String,
    recording_type: String,
    filename: String,
    storage: String,
    object_key: String,
    size: i64,
    start_time: i64,
    end_time: i64,
    layer: Option<String>,
}

impl TryFrom<FileDoc> for RecordingFile {
    type Error = StoreError;

    fn try_from(d: FileDoc) -> Result<Self, StoreError> {
        Ok(RecordingFile {
            recording_id: RecordingId::parse(d.recording_id)?,
            cid: Cid::new(CallTypeName::parse(d.call_type)?, CallId::parse(d.call_id)?),
            session_id: SessionId::parse(d.session_id)?,
            recording_type: parse_with("recording type", &d.recording_type, RecordingType::parse)?,
            filename: FileName::parse(d.filename)?,
            storage: location(&d.storage)?,
            object_key: d.object_key,
            size: u64::try_from(d.size).unwrap_or(0),
            start_time: Timestamp::from_unix_nanos(d.start_time),
            end_time: Timestamp::from_unix_nanos(d.end_time),
            layer: d.layer,
        })
    }
}

/// The JSON object of one listed file; the same keys on both backends.
macro_rules! file_doc {
    ($object:literal) => {
        concat!(
            $object,
            "('recording_id', f.recording_id, 'call_type', f.call_type, 'call_id', f.call_id,
              'session_id', f.session_id, 'recording_type', f.recording_type, 'filename', f.filename,
              'storage', f.storage, 'object_key', f.object_key, 'size', f.size,
              'start_time', f.start_time, 'end_time', f.end_time, 'layer', f.layer)"
        )
    };
}

/// Which recordings [`Store::find_recordings`] lists.
#[derive(Clone, Debug, Default)]
pub struct RecordingFilter {
    /// Only this call's.
    pub cid: Option<Cid>,
    /// Only the broadcasts published with this publish token.
    pub token_id: Option<i64>,
    /// Only these types.
    pub types: Vec<RecordingType>,
    /// Only recordings in these states.
    pub states: Option<Vec<RecordingState>>,
    /// Only recordings requested at or after this time.
    pub created_from: Option<Timestamp>,
    /// Only recordings requested at or before this time.
    pub created_until: Option<Timestamp>,
    /// Newest first (else oldest first).
    pub newest_first: bool,
    /// How many to skip.
    pub offset: u64,
    /// Most to return.
    pub limit: u32,
}

/// A file a recorder finished, to be uploaded.
#[derive(Clone, Debug)]
pub struct NewFile {
    /// The file as it will be listed.
    pub file: RecordingFile,
    /// Where it is on local disk.
    pub local_path: PathBuf,
}

impl Store {
    /// A call, its type and its uploaded files (oldest first): everything `list recordings`
    /// needs, in one query. The files come aggregated as one JSON array, so that the answer
    /// is one row however many files there are.
    pub async fn call_recordings(
        &self,
        cid: &Cid,
    ) -> Result<Option<(Call, CallType, Vec<RecordingFile>)>, StoreError> {
        const SQLITE: &str = concat!(
            "SELECT calls.*, ", call_type_prefixed!(), ",
                    (SELECT json_group_array(", file_doc!("json_object"), " ORDER BY f.start_time, f.id)
                     FROM recording_files f
                     WHERE f.call_type = calls.call_type AND f.call_id = calls.call_id AND f.state = 'uploaded'
                    ) AS files
             FROM calls JOIN call_types t ON t.name = calls.call_type
             WHERE calls.call_type = $1 AND calls.call_id = $2"
        );
        const POSTGRES: &str = concat!(
            "SELECT calls.*, ", call_type_prefixed!(), ",
                    (SELECT COALESCE(json_agg(", file_doc!("json_build_object"), " ORDER BY f.start_time, f.id), '[]')::text
                     FROM recording_files f
                     WHERE f.call_type = calls.call_type AND f.call_id = calls.call_id AND f.state = 'uploaded'
                    ) AS files
             FROM calls JOIN call_types t ON t.name = calls.call_type
             WHERE calls.call_type = $1 AND calls.call_id = $2"
        );
        let sql = match self.backend {
            super::Backend::Sqlite => SQLITE,
            super::Backend::Postgres => POSTGRES,
        };
        let row = sqlx::query(sql)
            .bind(cid.call_type.as_str())
            .bind(cid.id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let docs: Vec<FileDoc> = super::from_json("listed files", &get::<String>(&row, "files")?)?;
        let files = docs
            .into_iter()
            .map(RecordingFile::try_from)
            .collect::<Result<_, _>>()?;
        Ok(Some((
            super::calls::call_from_row(&row)?,
            super::calls::call_type_from_row(&row, "t_")?,
            files,
        )))
    }

    /// One recording.
    pub async fn get_recording(&self, id: &RecordingId) -> Result<Option<Recording>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            recording_columns!(),
            " FROM recordings WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(recording_from_row).transpose()
    }

    /// The call's requested, running, paused or stopping recordings.
    pub async fn active_recordings(&self, cid: &Cid) -> Result<Vec<Recording>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            recording_columns!(),
            " FROM recordings
             WHERE call_type = $1 AND call_id = $2 AND state IN ('requested', 'running', 'paused', 'stopping')
             ORDER BY created_at"
        ))
        .bind(cid.call_type.as_str())
        .bind(cid.id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(recording_from_row).collect()
    }

    /// Recordings that are neither ready nor failed, oldest first.
    pub async fn unfinished_recordings(&self) -> Result<Vec<Recording>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            recording_columns!(),
            " FROM recordings
             WHERE state NOT IN ('ready', 'failed') ORDER BY created_at"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(recording_from_row).collect()
    }

    /// How many recordings there are of each type in each state.
    pub async fn count_recordings(
        &self,
    ) -> Result<Vec<(RecordingType, RecordingState, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT recording_type, state, COUNT(*) AS n FROM recordings GROUP BY recording_type, state",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    recording_type_from_row(row)?,
                    parse_with(
                        "recording state",
                        &get::<String>(row, "state")?,
                        RecordingState::parse,
                    )?,
                    u64::try_from(get::<i64>(row, "n")?).unwrap_or(0),
                ))
            })
            .collect()
    }

    /// One file of a call session by name.
    pub async fn find_file(
        &self,
        cid: &Cid,
        session: &SessionId,
        filename: &FileName,
    ) -> Result<Option<StoredFile>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            file_columns!(),
            " FROM recording_files
             WHERE call_type = $1 AND call_id = $2 AND session_id = $3 AND filename = $4"
        ))
        .bind(cid.call_type.as_str())
        .bind(cid.id.as_str())
        .bind(session.as_str())
        .bind(filename.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(file_from_row).transpose()
    }

    /// The recordings `filter` selects, one page of them, and how many it selects in all.
    pub async fn find_recordings(
        &self,
        filter: &RecordingFilter,
    ) -> Result<(Vec<Recording>, u64), StoreError> {
        if filter.types.is_empty() {
            return Ok((Vec::new(), 0));
        }
        enum Arg {
            Text(String),
            Int(i64),
        }
        let mut args = Vec::new();
        let mut bind = |a: Arg| {
            args.push(a);
            format!("${}", args.len())
        };
        let mut clauses = Vec::new();
        if let Some(cid) = &filter.cid {
            let (t, i) = (
                bind(Arg::Text(cid.call_type.to_string())),
                bind(Arg::Text(cid.id.to_string())),
            );
            clauses.push(format!("call_type = {t} AND call_id = {i}"));
        }
        if let Some(token) = filter.token_id {
            clauses.push(format!(
                "id IN (SELECT recording_id FROM record_files WHERE token_id = {})",
                bind(Arg::Int(token))
            ));
        }
        let list = |items: Vec<String>| items.join(", ");
        let types = filter
            .types
            .iter()
            .map(|t| bind(Arg::Text(t.as_str().into())))
            .collect();
        clauses.push(format!("recording_type IN ({})", list(types)));
        if let Some(states) = &filter.states {
            let states = states
                .iter()
                .map(|s| bind(Arg::Text(s.as_str().into())))
                .collect();
            clauses.push(format!("state IN ({})", list(states)));
        }
        if let Some(t) = filter.created_from {
            clauses.push(format!("created_at >= {}", bind(Arg::Int(t.unix_nanos()))));
        }
        if let Some(t) = filter.created_until {
            clauses.push(format!("created_at <= {}", bind(Arg::Int(t.unix_nanos()))));
        }
        let filtered = format!("FROM recordings WHERE {}", clauses.join(" AND "));
        let order = if filter.newest_first { "DESC" } else { "ASC" };
        let page = format!(
            "SELECT {} {filtered} ORDER BY created_at {order}, id {order} LIMIT {} OFFSET {}",
            recording_columns!(),
            filter.limit,
            filter.offset
        );
        let count = format!("SELECT COUNT(*) {filtered}");
        macro_rules! bound {
            ($q:expr) => {{
                let mut q = $q;
                for a in &args {
                    q = match a {
                        Arg::Text(t) => q.bind(t.clone()),
                        Arg::Int(i) => q.bind(*i),
                    };
                }
                q
            }};
        }
        let rows = bound!(sqlx::query(sqlx::AssertSqlSafe(page)))
            .fetch_all(&self.pool)
            .await?;
        let (total,): (i64,) = bound!(sqlx::query_as(sqlx::AssertSqlSafe(count)))
            .fetch_one(&self.pool)
            .await?;
        let recordings = rows
            .iter()
            .map(recording_from_row)
            .collect::<Result<_, _>>()?;
        Ok((recordings, u64::try_from(total).unwrap_or(0)))
    }

    /// The files of one recording.
    pub async fn files_of(&self, recording: &RecordingId) -> Result<Vec<StoredFile>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            file_columns!(),
            " FROM recording_files WHERE recording_id = $1 ORDER BY id"
        ))
        .bind(recording.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(file_from_row).collect()
    }

    /// The bytes the uploaded files of every recording (of type `of`, if given) take.
    pub async fn stored_bytes(&self, of: Option<RecordingType>) -> Result<u64, StoreError> {
        let (total,): (i64,) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM recording_files
             WHERE ($1 IS NULL OR recording_type = $1) AND state = 'uploaded'",
        )
        .bind(of.map(|t| t.as_str()))
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(total).unwrap_or(0))
    }

    /// The files of each of `recordings`, in the order they were added.
    pub async fn files_of_all(
        &self,
        recordings: &[RecordingId],
    ) -> Result<Vec<StoredFile>, StoreError> {
        if recordings.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (1..=recordings.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT {} FROM recording_files WHERE recording_id IN ({}) ORDER BY id",
            file_columns!(),
            marks.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in recordings {
            q = q.bind(r.as_str());
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(file_from_row).collect()
    }

    /// Files waiting for upload whose next attempt is due at `now`, oldest first.
    pub async fn due_uploads(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<StoredFile>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ", file_columns!(), " FROM recording_files
             WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2"
        ))
        .bind(now.unix_nanos())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(file_from_row).collect()
    }

    /// When the next waiting upload is due.
    pub async fn next_upload_at(&self) -> Result<Option<Timestamp>, StoreError> {
        let (t,): (Option<i64>,) = sqlx::query_as(
            "SELECT MIN(next_attempt_at) FROM recording_files WHERE state = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(t.map(Timestamp::from_unix_nanos))
    }

    /// Notes a failed upload attempt and when to try again.
    pub async fn upload_attempt_failed(
        &self,
        file_id: i64,
        attempts: u32,
        next_attempt_at: Timestamp,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE recording_files SET attempts = $2, next_attempt_at = $3, last_error = $4 WHERE id = $1")
            .bind(file_id)
            .bind(i64::from(attempts))
            .bind(next_attempt_at.unix_nanos())
            .bind(error.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Remembers (or forgets) the multipart upload in progress for a file, forgetting the
    /// parts of the previous one first: a crash in between leaves the old upload with no
    /// parts known, whose parts are then simply sent again.
    pub async fn set_upload_id(
        &self,
        file_id: i64,
        upload_id: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM upload_parts WHERE file_id = $1")
            .bind(file_id)
            .execute(&self.pool)
            .await?;
        sqlx::query("UPDATE recording_files SET upload_id = $2 WHERE id = $1")
            .bind(file_id)
            .bind(upload_id.map(str::to_owned))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Remembers an uploaded part of a multipart upload.
    pub async fn add_upload_part(
        &self,
        file_id: i64,
        part_number: u32,
        etag: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO upload_parts (file_id, part_number, etag) VALUES ($1, $2, $3)
             ON CONFLICT (file_id, part_number) DO UPDATE SET etag = excluded.etag",
        )
        .bind(file_id)
        .bind(i64::from(part_number))
        .bind(etag.to_owned())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The parts uploaded so far, by part number.
    pub async fn upload_parts(&self, file_id: i64) -> Result<Vec<(u32, String)>, StoreError> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT part_number, etag FROM upload_parts WHERE file_id = $1 ORDER BY part_number",
        )
        .bind(file_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(n, e)| (u32::try_from(n).unwrap_or(0), e))
            .collect())
    }

    /// Forgets a file.
    pub async fn delete_file(&self, file_id: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM recording_files WHERE id = $1")
            .bind(file_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

impl WriteTx {
    /// Forgets a recording whose files are gone, with its record file if it has one.
    pub async fn delete_recording(&mut self, id: &RecordingId) -> Result<bool, StoreError> {
        sqlx::query("DELETE FROM record_files WHERE recording_id = $1")
            .bind(id.as_str())
            .execute(&mut *self.tx)
            .await?;
        let done = sqlx::query("DELETE FROM recordings WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a requested recording in its call session, if that session is still active:
    /// [`StoreError::Stale`] if it has ended, [`StoreError::Conflict`] if a recording of the
    /// same type is already active in it. On PostgreSQL the session row is share-locked, so a
    /// concurrent end of the session waits for this insert and then sees the recording.
    pub async fn insert_recording(&mut self, r: &Recording) -> Result<(), StoreError> {
        macro_rules! insert {
            ($lock:literal) => {
                concat!(
                    "INSERT INTO recordings (", recording_columns!(), ")
                     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14
                     WHERE EXISTS (SELECT 1 FROM call_sessions WHERE id = $4 AND ended_at IS NULL ", $lock, ")"
                )
            };
        }
        let sql = match self.backend {
            super::Backend::Sqlite => insert!(""),
            super::Backend::Postgres => insert!("FOR SHARE"),
        };
        let done = sqlx::query(sql)
            .bind(r.id.as_str())
            .bind(r.cid.call_type.as_str())
            .bind(r.cid.id.as_str())
            .bind(r.session_id.as_str())
            .bind(r.recording_type.as_str())
            .bind(r.state.as_str())
            .bind(r.storage.as_ref().map(|s| s.as_str().to_owned()))
            .bind(r.requested_by.as_ref().map(|u| u.as_str().to_owned()))
            .bind(r.error.clone())
            .bind(r.created_at.unix_nanos())
            .bind(r.started_at.map(Timestamp::unix_nanos))
            .bind(r.stopped_at.map(Timestamp::unix_nanos))
            .bind(r.updated_at.unix_nanos())
            .bind(if r.exclusive { "" } else { r.id.as_str() })
            .execute(&mut *self.tx)
            .await
            .map_err(conflict("an active recording of this type"))?;
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::Stale("call session"))
        }
    }

    /// Moves a recording from `from` to `to`, failing with [`StoreError::Stale`] if it is no
    /// longer in `from`. Sets `started_at` when `started`, `stopped_at` on leaving the active
    /// states, and `error` when given.
    pub async fn transition_recording(
        &mut self,
        id: &RecordingId,
        (from, to): (RecordingState, RecordingState),
        started: bool,
        error: Option<&str>,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let started = started.then_some(at.unix_nanos());
        let stopped = (!to.is_active()).then_some(at.unix_nanos());
        let done = sqlx::query(
            "UPDATE recordings SET state = $3, updated_at = $4, started_at = COALESCE(started_at, $5),
                 stopped_at = COALESCE(stopped_at, $6), error = COALESCE($7, error)
             WHERE id = $1 AND state = $2",
        )
        .bind(id.as_str())
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(at.unix_nanos())
        .bind(started)
        .bind(stopped)
        .bind(error.map(str::to_owned))
        .execute(&mut *self.tx)
        .await?;
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::Stale("recording"))
        }
    }

    /// Registers a finished file for upload; [`StoreError::Conflict`] if the call session
    /// already has a file of that name.
    pub async fn insert_file(&mut self, f: &NewFile, now: Timestamp) -> Result<i64, StoreError> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO recording_files (recording_id, call_type, call_id, session_id, recording_type, filename,
                 storage, object_key, local_path, size, start_time, end_time, layer, state, attempts,
                 next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $14, 'pending', 0, $13, $13)
             RETURNING id",
        )
        .bind(f.file.recording_id.as_str())
        .bind(f.file.cid.call_type.as_str())
        .bind(f.file.cid.id.as_str())
        .bind(f.file.session_id.as_str())
        .bind(f.file.recording_type.as_str())
        .bind(f.file.filename.as_str())
        .bind(f.file.storage.encode())
        .bind(f.file.object_key.clone())
        .bind(f.local_path.to_string_lossy().into_owned())
        .bind(to_i64(f.file.size))
        .bind(f.file.start_time.unix_nanos())
        .bind(f.file.end_time.unix_nanos())
        .bind(now.unix_nanos())
        .bind(f.file.layer.clone())
        .fetch_one(&mut *self.tx)
        .await
        .map_err(conflict("a file of that name in this call session"))?;
        Ok(id)
    }

    /// Marks a file uploaded (its local copy is gone or about to go).
    pub async fn mark_file_uploaded(
        &mut self,
        file_id: i64,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE recording_files SET state = 'uploaded', uploaded_at = $2, local_path = NULL, upload_id = NULL,
                 last_error = NULL
             WHERE id = $1",
        )
        .bind(file_id)
        .bind(at.unix_nanos())
        .execute(&mut *self.tx)
        .await?;
        sqlx::query("DELETE FROM upload_parts WHERE file_id = $1")
            .bind(file_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Gives up uploading a file; its local copy stays where it is.
    pub async fn mark_file_failed(&mut self, file_id: i64, error: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE recording_files SET state = 'failed', last_error = $2 WHERE id = $1")
            .bind(file_id)
            .bind(error.to_owned())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// How many of a recording's files are in each upload state: (pending, uploaded, failed).
    pub async fn file_counts(
        &mut self,
        recording: &RecordingId,
    ) -> Result<(u64, u64, u64), StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT state, COUNT(*) FROM recording_files WHERE recording_id = $1 GROUP BY state",
        )
        .bind(recording.as_str())
        .fetch_all(&mut *self.tx)
        .await?;
        let mut counts = (0, 0, 0);
        for (state, n) in rows {
            let n = u64::try_from(n).unwrap_or(0);
            match FileState::parse(&state) {
                Some(FileState::Pending) => counts.0 = n,
                Some(FileState::Uploaded) => counts.1 = n,
                Some(FileState::Failed) => counts.2 = n,
                None => {
                    return Err(StoreError::Corrupt {
                        what: "file state",
                        reason: format!("unknown value {state:?}"),
                    });
                }
            }
        }
        Ok(counts)
    }

    /// The recording's uploaded files, in the order they were handed over.
    pub async fn uploaded_files(
        &mut self,
        recording: &RecordingId,
    ) -> Result<Vec<RecordingFile>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            file_columns!(),
            " FROM recording_files WHERE recording_id = $1 AND state = 'uploaded' ORDER BY id"
        ))
        .bind(recording.as_str())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(|r| Ok(file_from_row(r)?.file)).collect()
    }

    /// One recording, as this transaction sees it.
    pub async fn get_recording(
        &mut self,
        id: &RecordingId,
    ) -> Result<Option<Recording>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            recording_columns!(),
            " FROM recordings WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(recording_from_row).transpose()
    }

    /// The recording's current state, read inside this transaction and locked until it ends,
    /// so that two transactions deciding from it (the recorder finishing, a file's upload
    /// finishing) run one after the other. SQLite transactions here hold the write lock already.
    pub async fn recording_state(
        &mut self,
        id: &RecordingId,
    ) -> Result<Option<RecordingState>, StoreError> {
        let sql = match self.backend {
            super::Backend::Sqlite => "SELECT state FROM recordings WHERE id = $1",
            super::Backend::Postgres => "SELECT state FROM recordings WHERE id = $1 FOR UPDATE",
        };
        let row: Option<(String,)> = sqlx::query_as(sql)
            .bind(id.as_str())
            .fetch_optional(&mut *self.tx)
            .await?;
        row.map(|(s,)| parse_with("recording state", &s, RecordingState::parse))
            .transpose()
    }
}
