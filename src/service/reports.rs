//! Recordings one by one, with what they made: what a dialect shows of a recording (the
//! RealtimeKit dialect's recording objects and `recording.statusUpdate` events).

use std::time::Duration;

use super::{Result, ServiceError, Services, Tx, require_server};
use crate::auth::Caller;
use crate::domain::{
    Cid, Event, Permission, RecordFileChange, Recording, RecordingFile, RecordingId,
    RecordingState, RecordingType, StatusUpdate, Timestamp, Transition,
};
use crate::storage::Target;
use crate::store::FileState;

pub use crate::store::RecordingFilter as RecordingQuery;

/// Lifetime of the download links in reports (RealtimeKit's: seven days).
pub const REPORT_LINK_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// A recording and the files it has uploaded so far.
#[derive(Clone, Debug)]
pub struct RecordingReport {
    /// The recording.
    pub recording: Recording,
    /// Its uploaded files, each with a download link.
    pub files: Vec<(RecordingFile, String)>,
    /// When those links expire.
    pub links_expire_at: Timestamp,
    /// When its call session ended, if it has (not known in status events).
    pub session_ended_at: Option<Timestamp>,
}

impl Services {
    /// The report of `recording` with `files` in their storage targets, linked from `now`.
    async fn report(
        recording: Recording,
        files: Vec<(RecordingFile, Target)>,
        now: Timestamp,
        session_ended_at: Option<Timestamp>,
    ) -> Result<RecordingReport> {
        let mut linked = Vec::with_capacity(files.len());
        for (f, target) in files {
            let url = target.url(&f.object_key, REPORT_LINK_TTL, now).await?;
            linked.push((f, url));
        }
        Ok(RecordingReport {
            recording,
            files: linked,
            links_expire_at: now.after(REPORT_LINK_TTL),
            session_ended_at,
        })
    }

    /// The report of a stored recording, with the files uploaded so far.
    async fn stored_report(&self, recording: Recording) -> Result<RecordingReport> {
        let mut files = Vec::new();
        for f in self.store().files_of(&recording.id).await? {
            if f.state == FileState::Uploaded {
                let target = self.target(&f.file.storage).await?;
                files.push((f.file, target));
            }
        }
        let session_ended_at = self
            .store()
            .get_session(&recording.session_id)
            .await?
            .and_then(|s| s.ended_at);
        Self::report(recording, files, Timestamp::now(), session_ended_at).await
    }

    /// In `tx`, after a recording changed state from `from`: the dialects' announcements of
    /// its new state, if any.
    pub(super) async fn status_event(
        &self,
        tx: &mut Tx,
        id: &RecordingId,
        from: Option<RecordingState>,
        now: Timestamp,
    ) -> Result<Vec<Event>> {
        let Some(rec) = tx.get_recording(id).await? else {
            return Ok(Vec::new());
        };
        let mut events = Vec::new();
        if rec.recording_type == RecordingType::Broadcast
            && let Some(change) = RecordFileChange::of(from, rec.state)
            && let Some(file) = tx.record_file_of(id).await?
        {
            let body = self.shapes().record_file(&file, change, now);
            events.push(Event::RecordFileStatus(StatusUpdate {
                cid: rec.cid.clone(),
                body,
            }));
        }
        let mut files = Vec::new();
        if rec.state == RecordingState::Ready {
            for f in tx.uploaded_files(id).await? {
                let target = self.target_in(tx, &f.storage).await?;
                files.push((f, target));
            }
        }
        let cid = rec.cid.clone();
        // Status events do not tell why a recording stopped: no need for its session.
        let report = Self::report(rec, files, now, None).await?;
        events.extend(
            self.shapes()
                .recording_status(&report, from)
                .map(|body| Event::RecordingStatus(StatusUpdate { cid, body })),
        );
        Ok(events)
    }

    /// One recording, if the caller may list the recordings of its call.
    pub async fn recording_report(
        &self,
        caller: &Caller,
        id: &RecordingId,
    ) -> Result<RecordingReport> {
        let rec = self.load_recording(id).await?;
        self.require_listing(caller, &rec.cid).await?;
        self.stored_report(rec).await
    }

    /// The recordings `query` selects (one page), and how many it selects in all. Without a
    /// call in the query, only server-side callers may list.
    pub async fn find_recordings(
        &self,
        caller: &Caller,
        query: &RecordingQuery,
    ) -> Result<(Vec<RecordingReport>, u64)> {
        match &query.cid {
            Some(cid) => self.require_listing(caller, cid).await?,
            None => require_server(caller, "list the recordings of every call")?,
        }
        let (found, total) = self.store().find_recordings(query).await?;
        let mut reports = Vec::with_capacity(found.len());
        for rec in found {
            reports.push(self.stored_report(rec).await?);
        }
        Ok((reports, total))
    }

    /// Stops a recording by its id. [`ServiceError::Conflict`] if it is not recording.
    pub async fn stop_recording_by_id(
        &self,
        caller: &Caller,
        id: &RecordingId,
    ) -> Result<RecordingReport> {
        let rec = self.load_recording(id).await?;
        let (call, call_type) = self.load_call(&rec.cid).await?;
        let access = self.access(caller, &rec.cid, Some(&call)).await?;
        access.require(
            &call_type.grants,
            Permission::StopRecording(rec.recording_type),
            &rec.cid,
        )?;
        if !matches!(
            rec.state,
            RecordingState::Requested | RecordingState::Running | RecordingState::Paused
        ) {
            return Err(ServiceError::Conflict(format!(
                "recording {id} is not recording: it is {}",
                rec.state
            )));
        }
        self.request_stop(&rec).await?;
        let rec = self.load_recording(id).await?;
        self.stored_report(rec).await
    }

    /// Pauses a running composite recording (`paused`), leaving what follows out of its file
    /// until it resumes, or resumes it: the file has no gap, it cuts from the pause to the
    /// resumption.
    pub async fn pause_recording(
        &self,
        caller: &Caller,
        id: &RecordingId,
        paused: bool,
    ) -> Result<RecordingReport> {
        let rec = self.load_recording(id).await?;
        let (call, call_type) = self.load_call(&rec.cid).await?;
        let access = self.access(caller, &rec.cid, Some(&call)).await?;
        access.require(
            &call_type.grants,
            Permission::StopRecording(rec.recording_type),
            &rec.cid,
        )?;
        if rec.recording_type != RecordingType::Composite {
            return Err(ServiceError::Invalid(format!(
                "only composite recordings pause; recording {id} is {}",
                rec.recording_type
            )));
        }
        let t = if paused {
            Transition::Pause
        } else {
            Transition::Resume
        };
        self.advance(id, t, None).await.map_err(|e| match e {
            ServiceError::Conflict(_) => ServiceError::Conflict(format!(
                "recording {id} is {}: it cannot {}",
                rec.state,
                if paused { "pause" } else { "resume" }
            )),
            e => e,
        })?;
        self.pause_recorder(id, paused);
        let rec = self.load_recording(id).await?;
        self.stored_report(rec).await
    }

    /// Refuses callers who may not list `cid`'s recordings.
    async fn require_listing(&self, caller: &Caller, cid: &Cid) -> Result<()> {
        let (call, call_type) = self.load_call(cid).await?;
        let access = self.access(caller, cid, Some(&call)).await?;
        access.require(&call_type.grants, Permission::ListRecordings, cid)
    }

    /// The report of a recording just requested.
    pub(super) async fn new_report(&self, rec: Recording) -> Result<RecordingReport> {
        Self::report(rec, Vec::new(), Timestamp::now(), None).await
    }
}
