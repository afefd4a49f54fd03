//! Starting, stopping, listing and deleting recordings, and the recording life cycle.

use std::collections::{HashMap, HashSet};

use tracing::{info, warn};

use super::{RecordingReport, Result, ServiceError, Services, Tx, require_server};
use crate::auth::Caller;
use crate::domain::RecordingFile;
use crate::domain::settings::RecordingMode;
use crate::domain::{
    BroadcastSource, CallRecording, CallSettings, Cid, CompositeOptions, Event, FileName,
    Permission, RecordFileChange, Recording, RecordingEvent, RecordingId, RecordingState,
    RecordingType, SessionId, StatusUpdate, StorageName, StreamName, Timestamp, TrackOptions,
    Transition, UserId,
};
use crate::recorders::{FinishedFile, RecordingJob, Viewer};
use crate::storage::object_key;
use crate::store::{FileState, NewFile, StoreError, StoredFile};

/// The longest a recording runs.
const MAX_RECORDING: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// What a start request asks for beyond the recording's type.
#[derive(Clone, Debug, Default)]
pub struct StartOptions {
    /// What a track recording records.
    pub track: TrackOptions,
    /// How a composite recording is made.
    pub composite: CompositeOptions,
    /// Whether it may run beside others of its type (RealtimeKit's
    /// `allow_multiple_recordings`); otherwise no other may be active.
    pub beside_others: bool,
    /// The source a broadcast recording records.
    pub broadcast: Option<BroadcastSource>,
}

fn mode_of(settings: &CallSettings, t: RecordingType) -> RecordingMode {
    match t {
        RecordingType::Composite => settings.recording.mode,
        RecordingType::Individual => settings.individual_recording.mode,
        RecordingType::Raw => settings.raw_recording.mode,
        // Track recordings have no settings of their own: they run when asked for; a
        // broadcast's, as its publish token says.
        RecordingType::Track | RecordingType::Broadcast => RecordingMode::Available,
    }
}

fn event(rec: &Recording, at: Timestamp) -> RecordingEvent {
    RecordingEvent {
        call_cid: rec.cid.clone(),
        created_at: at,
        egress_id: rec.id.clone(),
        recording_type: rec.recording_type,
        error: None,
    }
}

/// `call.recording_failed` of `rec`, saying why.
fn failed_event(rec: &Recording, at: Timestamp, error: Option<&str>) -> Event {
    Event::RecordingFailed(RecordingEvent {
        error: error.map(str::to_owned),
        ..event(rec, at)
    })
}

impl Services {
    /// Starts a recording of `recording_type` in the call's active session.
    ///
    /// `storage` names an external storage for its files, over the call type's.
    pub async fn start_recording(
        &self,
        caller: &Caller,
        cid: &Cid,
        recording_type: RecordingType,
        storage: Option<StorageName>,
    ) -> Result<Recording> {
        self.start_requested(
            caller,
            cid,
            recording_type,
            storage,
            StartOptions::default(),
        )
        .await
    }

    /// Starts a track recording of the users and layers `options` names in the call's active
    /// session; its report.
    pub async fn start_track_recording(
        &self,
        caller: &Caller,
        cid: &Cid,
        options: TrackOptions,
    ) -> Result<RecordingReport> {
        let options = StartOptions {
            track: options,
            ..StartOptions::default()
        };
        let rec = self
            .start_requested(caller, cid, RecordingType::Track, None, options)
            .await?;
        self.new_report(rec).await
    }

    /// Starts a composite recording made as `options` say in the call's active session,
    /// its files going to `storage` (over the call type's); its report.
    pub async fn start_composite_recording(
        &self,
        caller: &Caller,
        cid: &Cid,
        options: StartOptions,
        storage: Option<StorageName>,
    ) -> Result<RecordingReport> {
        let rec = self
            .start_requested(caller, cid, RecordingType::Composite, storage, options)
            .await?;
        self.new_report(rec).await
    }

    /// Starts a recording that `caller` asked for, if it may.
    async fn start_requested(
        &self,
        caller: &Caller,
        cid: &Cid,
        recording_type: RecordingType,
        storage: Option<StorageName>,
        options: StartOptions,
    ) -> Result<Recording> {
        let (call, call_type) = self.load_call(cid).await?;
        let access = self.access(caller, cid, Some(&call)).await?;
        access.require(
            &call_type.grants,
            Permission::StartRecording(recording_type),
            cid,
        )?;
        let requested_by = match caller {
            Caller::Server => None,
            Caller::User(u) => Some(u.user_id.clone()),
        };
        let settings = call.settings(&call_type);
        self.start_in_session(
            cid,
            recording_type,
            settings,
            storage.or(call_type.external_storage),
            requested_by,
            options,
        )
        .await
    }

    pub(super) async fn start_in_session(
        &self,
        cid: &Cid,
        recording_type: RecordingType,
        settings: CallSettings,
        storage: Option<StorageName>,
        requested_by: Option<UserId>,
        options: StartOptions,
    ) -> Result<Recording> {
        if mode_of(&settings, recording_type) == RecordingMode::Disabled {
            return Err(ServiceError::Invalid(format!(
                "{recording_type} recording is disabled for this call"
            )));
        }
        if let Some(name) = &storage
            && self.store().get_storage(name).await?.is_none()
        {
            return Err(ServiceError::Invalid(format!(
                "external storage {name} does not exist"
            )));
        }
        let session = self
            .store()
            .active_session(cid)
            .await?
            .ok_or_else(|| ServiceError::Invalid("there is no active session".into()))?;
        let running = |r: &Recording| {
            r.recording_type == recording_type && r.session_id == session.id && r.state.is_active()
        };
        // One that runs beside others is no hindrance to its store's uniqueness; the others
        // are checked here.
        if !options.beside_others
            && self
                .store()
                .active_recordings(cid)
                .await?
                .iter()
                .any(running)
        {
            return Err(ServiceError::Invalid(format!(
                "{recording_type} recording is already running"
            )));
        }
        self.admit_recording()?;
        let factory = self.inner.recorders.get(recording_type).ok_or_else(|| {
            ServiceError::Invalid(format!(
                "{recording_type} recording is not available on this server"
            ))
        })?;
        let now = Timestamp::now();
        let recording = Recording {
            id: RecordingId::random(),
            cid: cid.clone(),
            session_id: session.id.clone(),
            recording_type,
            state: RecordingState::Requested,
            storage,
            requested_by,
            error: None,
            created_at: now,
            started_at: None,
            stopped_at: None,
            updated_at: now,
            exclusive: !options.beside_others,
        };
        let mut tx = self.begin().await?;
        tx.insert_recording(&recording).await.map_err(|e| match e {
            StoreError::Stale(_) => ServiceError::Invalid("there is no active session".into()),
            StoreError::Conflict(_) => {
                ServiceError::Invalid(format!("{recording_type} recording is already running"))
            }
            e => e.into(),
        })?;
        if let Some(source) = &options.broadcast {
            // A broadcast's call id is its stream name.
            let stream = StreamName::parse(cid.id.as_str())
                .map_err(|e| ServiceError::Invalid(e.to_string()))?;
            tx.insert_record_file(
                &recording.id,
                (source.token_id, &stream, &source.source_id),
                now,
            )
            .await?;
        }
        let invoked = self.status_event(&mut tx, &recording.id, None, now).await?;
        self.enqueue(&mut tx, invoked.as_slice()).await?;
        self.commit(tx).await?;
        info!(cid = %cid, recording_id = %recording.id, %recording_type, "recording requested");
        let job = RecordingJob {
            recording: recording.clone(),
            settings,
            work_dir: self.inner.settings.work_dir.join(recording.id.as_str()),
            session_started_at: session.started_at,
            track: options.track,
            composite: options.composite,
            broadcast: options.broadcast,
            viewer: (recording_type == RecordingType::Composite).then(|| Viewer {
                base_url: self.inner.settings.local_url.clone(),
                token: self.keys().viewer_token(cid, MAX_RECORDING),
            }),
        };
        match factory.create(&job) {
            Ok(recorder) => {
                self.spawn_recorder(job, recorder);
                Ok(recording)
            }
            Err(e) => {
                let error = format!("cannot start the {recording_type} recorder: {e}");
                self.advance(&recording.id, Transition::Fail, Some(&error))
                    .await?;
                Err(ServiceError::Unavailable(error))
            }
        }
    }

    /// Starts the recordings whose mode is `auto-on` (when a call session starts).
    pub(super) async fn start_auto_recordings(&self, cid: &Cid) -> Result<()> {
        let (call, call_type) = self.load_call(cid).await?;
        let settings = call.settings(&call_type);
        for t in RecordingType::CALLS {
            if mode_of(&settings, t) != RecordingMode::AutoOn {
                continue;
            }
            if let Err(e) = self
                .start_in_session(
                    cid,
                    t,
                    settings.clone(),
                    call_type.external_storage.clone(),
                    None,
                    StartOptions::default(),
                )
                .await
            {
                warn!(cid = %cid, recording_type = %t, error = %e, "cannot start an auto-on recording");
            }
        }
        Ok(())
    }

    /// Stops the running recording of `recording_type`.
    pub async fn stop_recording(
        &self,
        caller: &Caller,
        cid: &Cid,
        recording_type: RecordingType,
    ) -> Result<Recording> {
        let (call, call_type) = self.load_call(cid).await?;
        let access = self.access(caller, cid, Some(&call)).await?;
        access.require(
            &call_type.grants,
            Permission::StopRecording(recording_type),
            cid,
        )?;
        // One that still records, else one already stopping (an earlier session's may be
        // finishing beside a new one): stopping that again is a no-op.
        let mut active: Vec<_> = self
            .store()
            .active_recordings(cid)
            .await?
            .into_iter()
            .filter(|r| r.recording_type == recording_type)
            .collect();
        active.sort_by_key(|r| r.state == RecordingState::Stopping);
        let rec = active
            .into_iter()
            .next()
            .ok_or_else(|| ServiceError::Invalid("call egress is not running".into()))?;
        self.request_stop(&rec).await?;
        Ok(rec)
    }

    /// Asks a recording's recorder to stop (idempotent).
    pub(super) async fn request_stop(&self, rec: &Recording) -> Result<()> {
        match self.advance(&rec.id, Transition::StopRequested, None).await {
            Ok(_) | Err(ServiceError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
        if let Some(t) = self.stop_signal(&rec.id) {
            t.cancel();
        }
        info!(cid = %rec.cid, recording_id = %rec.id, "recording stop requested");
        Ok(())
    }

    /// The call's uploaded files with fresh download links.
    pub async fn list_recordings(&self, caller: &Caller, cid: &Cid) -> Result<Vec<CallRecording>> {
        let (call, call_type, files) = self
            .store()
            .call_recordings(cid)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("call {cid} does not exist")))?;
        let access = self.access(caller, cid, Some(&call)).await?;
        access.require(&call_type.grants, Permission::ListRecordings, cid)?;
        let now = Timestamp::now();
        let ttl = self.inner.settings.download_url_ttl;
        let mut targets = HashMap::new();
        let mut out = Vec::with_capacity(files.len());
        for f in files.into_iter().filter(|f| !f.is_picture()) {
            let target = match targets.get(&f.storage) {
                Some(t) => t,
                None => {
                    let t = self.target(&f.storage).await?;
                    targets.entry(f.storage.clone()).or_insert(t)
                }
            };
            let url = target.url(&f.object_key, ttl, now).await?;
            out.push(CallRecording::of(&f, url));
        }
        Ok(out)
    }

    /// Deletes a recorded file. Files in reel's own store are deleted from storage too;
    /// files in an external storage are only forgotten (the bucket is the application's).
    pub async fn delete_recording(
        &self,
        caller: &Caller,
        cid: &Cid,
        session: &SessionId,
        filename: &FileName,
    ) -> Result<()> {
        let (call, call_type) = self.load_call(cid).await?;
        let access = self.access(caller, cid, Some(&call)).await?;
        access.require(&call_type.grants, Permission::DeleteRecording, cid)?;
        let f = self
            .store()
            .find_file(cid, session, filename)
            .await?
            .filter(|f| f.state == crate::store::FileState::Uploaded)
            .ok_or_else(|| ServiceError::NotFound("recording doesn't exist".into()))?;
        self.delete_stored(&f).await?;
        info!(cid = %cid, recording_id = %f.file.recording_id, file = %filename, "recording file deleted");
        Ok(())
    }

    /// Deletes finished recordings whole (each stored file, in reel's own stores from
    /// storage too, a copy kept on local disk, and the recording): the ids deleted, and why
    /// the others were not (unknown, or still recording or uploading). A broadcast recording's record file goes with it, and
    /// its `deleted` webhook is sent.
    pub async fn delete_recordings(
        &self,
        caller: &Caller,
        ids: &[RecordingId],
    ) -> Result<(Vec<RecordingId>, Vec<(RecordingId, String)>)> {
        require_server(caller, "delete recordings")?;
        let (mut deleted, mut refused) = (Vec::new(), Vec::new());
        for id in ids {
            match self.store().get_recording(id).await? {
                None => refused.push((id.clone(), format!("there is no recording {id}"))),
                Some(rec) if !rec.state.is_final() => refused.push((
                    id.clone(),
                    format!("recording {id} is still being recorded or uploaded"),
                )),
                Some(rec) => match self.forget_recording(&rec).await {
                    Ok(()) => {
                        info!(cid = %rec.cid, recording_id = %id, "recording deleted");
                        deleted.push(id.clone());
                    }
                    Err(ServiceError::Conflict(reason)) => refused.push((id.clone(), reason)),
                    Err(e) => return Err(e),
                },
            }
        }
        Ok((deleted, refused))
    }

    /// Deletes a finished recording's stored files, then the recording (and its record file,
    /// announcing that).
    pub(super) async fn forget_recording(&self, rec: &Recording) -> Result<()> {
        let files = self.store().files_of(&rec.id).await?;
        if files.iter().any(|f| f.state == FileState::Pending) {
            return Err(ServiceError::Conflict(format!(
                "recording {} is still being uploaded",
                rec.id
            )));
        }
        for f in files {
            // A file whose upload was given up is only on local disk.
            if let Some(local) = &f.local_path
                && let Err(e) = tokio::fs::remove_file(local).await
                && e.kind() != std::io::ErrorKind::NotFound
            {
                warn!(error = %e, path = %local.display(), "cannot delete a local copy");
            }
            self.delete_stored(&f).await?;
        }
        let work = self.inner.settings.work_dir.join(rec.id.as_str());
        if let Err(e) = tokio::fs::remove_dir_all(&work).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            warn!(error = %e, path = %work.display(), "cannot delete a work directory");
        }
        let mut tx = self.begin().await?;
        let record_file = tx.record_file_of(&rec.id).await?;
        if tx.delete_recording(&rec.id).await?
            && let Some(file) = record_file
        {
            let body =
                self.shapes()
                    .record_file(&file, RecordFileChange::Deleted, Timestamp::now());
            let deleted = Event::RecordFileStatus(StatusUpdate {
                cid: rec.cid.clone(),
                body,
            });
            self.enqueue(&mut tx, &[deleted]).await?;
        }
        self.commit(tx).await
    }

    /// The bytes every recording's stored files take.
    pub async fn stored_bytes(&self, caller: &Caller) -> Result<u64> {
        require_server(caller, "see the storage used")?;
        Ok(self.store().stored_bytes(None).await?)
    }

    /// Forgets a stored file; one in reel's own stores is deleted from storage first.
    pub(super) async fn delete_stored(&self, f: &StoredFile) -> Result<()> {
        if f.file.storage.is_own() {
            self.target(&f.file.storage)
                .await?
                .delete(&f.file.object_key)
                .await?;
        }
        Ok(self.store().delete_file(f.id).await?)
    }

    pub(super) async fn load_recording(&self, id: &RecordingId) -> Result<Recording> {
        self.store()
            .get_recording(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("recording {id} does not exist")))
    }

    /// Applies `t` to a recording and queues the events it causes, in one transaction. The
    /// recording's row stays locked while deciding, so concurrent changes (a stop request
    /// and the recorder's start, the recorder's end and a file's upload) apply one after
    /// the other. `reason` is the error kept if the recording fails.
    ///
    /// Events keep the order started, stopped, then ready (per file) or failed, whatever
    /// order the stop request, the recorder's start and the uploads came in.
    ///
    /// [`ServiceError::Conflict`] if the recording's state does not allow `t`.
    pub(super) async fn advance(
        &self,
        id: &RecordingId,
        t: Transition,
        reason: Option<&str>,
    ) -> Result<RecordingState> {
        let rec = self.load_recording(id).await?;
        let mut tx = self.begin().await?;
        let from = tx
            .recording_state(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("recording {id} does not exist")))?;
        let to = from
            .next(t)
            .map_err(|e| ServiceError::Conflict(format!("recording {id}: {e}")))?;
        let now = Timestamp::now();
        let error = reason.filter(|_| to == RecordingState::Failed);
        tx.transition_recording(id, (from, to), t == Transition::Started, error, now)
            .await?;
        let mut events = match (from, to) {
            (RecordingState::Requested, RecordingState::Running) => {
                vec![Event::RecordingStarted(event(&rec, now))]
            }
            (RecordingState::Stopping, RecordingState::Stopping) => vec![
                Event::RecordingStarted(event(&rec, now)),
                Event::RecordingStopped(event(&rec, now)),
            ],
            (
                RecordingState::Running | RecordingState::Paused,
                RecordingState::Stopping | RecordingState::Uploading,
            ) => vec![Event::RecordingStopped(event(&rec, now))],
            (_, RecordingState::Failed) => vec![failed_event(&rec, now, error)],
            _ => Vec::new(),
        };
        events.extend(self.status_event(&mut tx, id, Some(from), now).await?);
        if to == RecordingState::Uploading {
            // Files uploaded while it recorded are announced now that it has stopped.
            for f in tx.uploaded_files(id).await? {
                if !f.is_picture() {
                    events.push(self.ready_event(&mut tx, &rec, &f, now).await?);
                }
            }
        }
        self.enqueue(&mut tx, &events).await?;
        let to = if to == RecordingState::Uploading {
            self.settle_uploads(&mut tx, &rec, now, reason).await?
        } else {
            to
        };
        self.commit(tx).await?;
        info!(cid = %rec.cid, recording_id = %id, from = %from, to = %to, "recording state changed");
        Ok(to)
    }

    /// In `tx`: the announcement that `f` of `rec` is ready.
    async fn ready_event(
        &self,
        tx: &mut Tx,
        rec: &Recording,
        f: &RecordingFile,
        now: Timestamp,
    ) -> Result<Event> {
        let url = self
            .target_in(tx, &f.storage)
            .await?
            .url(&f.object_key, self.inner.settings.download_url_ttl, now)
            .await?;
        Ok(Event::RecordingReady {
            event: event(rec, now),
            call_recording: CallRecording::of(f, url),
        })
    }

    /// In `tx`, which holds the recording's row: ends an uploading recording whose files are
    /// all settled: ready if every file is uploaded, failed if a file was given up or if there
    /// are none (`reason` says why, when known).
    async fn settle_uploads(
        &self,
        tx: &mut Tx,
        rec: &Recording,
        now: Timestamp,
        reason: Option<&str>,
    ) -> Result<RecordingState> {
        let (pending, uploaded, failed) = tx.file_counts(&rec.id).await?;
        if pending > 0 {
            return Ok(RecordingState::Uploading);
        }
        let (t, error) = if failed > 0 {
            (
                Transition::Fail,
                format!("{failed} file(s) could not be uploaded; kept on local disk"),
            )
        } else if uploaded == 0 {
            (
                Transition::Fail,
                reason.unwrap_or("no media was recorded").to_owned(),
            )
        } else {
            (Transition::Uploaded, String::new())
        };
        let to = RecordingState::Uploading
            .next(t)
            .map_err(|e| ServiceError::Conflict(format!("recording {}: {e}", rec.id)))?;
        let error = (to == RecordingState::Failed).then_some(error.as_str());
        tx.transition_recording(&rec.id, (RecordingState::Uploading, to), false, error, now)
            .await?;
        let mut events = Vec::new();
        if to == RecordingState::Failed {
            events.push(failed_event(rec, now, error));
        }
        let status = self
            .status_event(tx, &rec.id, Some(RecordingState::Uploading), now)
            .await?;
        events.extend(status);
        self.enqueue(tx, &events).await?;
        Ok(to)
    }

    /// Registers a file a recorder finished, for upload.
    pub(super) async fn add_file(&self, rec: &Recording, f: FinishedFile) -> Result<()> {
        let location = self.storages().location_for(rec.storage.as_ref());
        let target = self.target(&location).await?;
        let size = tokio::fs::metadata(&f.path)
            .await
            .map_err(|e| {
                ServiceError::Invalid(format!(
                    "finished file {} is not readable: {e}",
                    f.path.display()
                ))
            })?
            .len();
        let new = NewFile {
            file: RecordingFile {
                recording_id: rec.id.clone(),
                cid: rec.cid.clone(),
                session_id: rec.session_id.clone(),
                recording_type: rec.recording_type,
                object_key: object_key(target.prefix(), &rec.cid, &rec.session_id, &f.filename),
                filename: f.filename,
                storage: location,
                size,
                start_time: f.start_time,
                end_time: f.end_time,
                layer: f.layer,
            },
            local_path: f.path,
        };
        if rec.recording_type == RecordingType::Broadcast && new.file.layer.is_none() {
            self.keep_metadata(rec, &new.local_path).await;
        }
        let mut tx = self.begin().await?;
        tx.insert_file(&new, Timestamp::now())
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => ServiceError::Conflict(format!(
                    "call session {} already has a file named {}",
                    rec.session_id, new.file.filename
                )),
                e => e.into(),
            })?;
        self.commit(tx).await?;
        self.inner.upload_wake.notify_one();
        info!(cid = %rec.cid, recording_id = %rec.id, file = %new.file.filename, size, "file finished");
        Ok(())
    }

    /// Keeps what a broadcast recording's file holds, read before it is uploaded (a file
    /// that cannot be read is uploaded all the same, without metadata).
    async fn keep_metadata(&self, rec: &Recording, path: &std::path::Path) {
        let path = path.to_owned();
        let read = tokio::task::spawn_blocking(move || crate::mux::media_info(&path)).await;
        match read {
            Ok(Ok(info)) => {
                if let Err(e) = self.store().set_record_metadata(&rec.id, &info).await {
                    warn!(recording_id = %rec.id, error = %e, "cannot keep a file's metadata");
                }
            }
            Ok(Err(e)) => {
                warn!(recording_id = %rec.id, error = %e, "cannot read a file's metadata")
            }
            Err(e) => warn!(recording_id = %rec.id, error = %e, "reading a file's metadata failed"),
        }
    }

    /// A file reached its storage: mark it; announce it unless its recording is still
    /// recording (then it is announced when the recording stops); finish the recording if it
    /// was the last file.
    pub(super) async fn file_uploaded(&self, f: &StoredFile) -> Result<()> {
        let now = Timestamp::now();
        let rec = self.load_recording(&f.file.recording_id).await?;
        let mut tx = self.begin().await?;
        tx.mark_file_uploaded(f.id, now).await?;
        let state = tx.recording_state(&rec.id).await?;
        if state.is_some_and(|s| !s.is_active()) && !f.file.is_picture() {
            let ready = self.ready_event(&mut tx, &rec, &f.file, now).await?;
            self.enqueue(&mut tx, &[ready]).await?;
        }
        if state == Some(RecordingState::Uploading) {
            self.settle_uploads(&mut tx, &rec, now, None).await?;
        }
        self.commit(tx).await
    }

    /// Hands over what the interrupted recorder of `rec` left in its work directory.
    async fn recover_files(&self, rec: &Recording) -> Result<()> {
        let Some(factory) = self.inner.recorders.get(rec.recording_type).cloned() else {
            return Ok(());
        };
        let dir = self.inner.settings.work_dir.join(rec.id.as_str());
        let handed_over: HashSet<String> = self
            .store()
            .files_of(&rec.id)
            .await?
            .into_iter()
            .map(|f| f.file.filename.as_str().to_owned())
            .collect();
        let found = tokio::task::spawn_blocking(move || factory.recover(&dir, &handed_over))
            .await
            .unwrap_or_default();
        for f in found {
            let name = f.filename.clone();
            match self.add_file(rec, f).await {
                Ok(()) => {
                    info!(cid = %rec.cid, recording_id = %rec.id, file = %name, "recovered a file")
                }
                Err(e) => warn!(cid = %rec.cid, recording_id = %rec.id, file = %name, error = %e,
                                "cannot hand over a recovered file"),
            }
        }
        Ok(())
    }

    /// A file's upload was given up: mark it, and fail its recording if it was the last.
    pub(super) async fn file_failed(&self, f: &StoredFile, error: &str) -> Result<()> {
        let now = Timestamp::now();
        let rec = self.load_recording(&f.file.recording_id).await?;
        let mut tx = self.begin().await?;
        tx.mark_file_failed(f.id, error).await?;
        if tx.recording_state(&rec.id).await? == Some(RecordingState::Uploading) {
            self.settle_uploads(&mut tx, &rec, now, None).await?;
        }
        self.commit(tx).await
    }

    /// At start-up: recordings whose recorder died with the previous process are stopped
    /// and finished: the files their recorder left unfinished are finished and handed over,
    /// and every handed-over file is uploaded.
    pub async fn recover_recordings(&self) -> Result<()> {
        for rec in self.store().unfinished_recordings().await? {
            if rec.state.is_active() {
                warn!(cid = %rec.cid, recording_id = %rec.id, state = %rec.state,
                      "recording was interrupted by a restart; finishing it");
                self.recover_files(&rec).await?;
                self.advance(
                    &rec.id,
                    Transition::RecorderFinished,
                    Some("reel restarted while recording"),
                )
                .await?;
            } else if rec.state == RecordingState::Uploading {
                let mut tx = self.begin().await?;
                if tx.recording_state(&rec.id).await? == Some(RecordingState::Uploading) {
                    self.settle_uploads(&mut tx, &rec, Timestamp::now(), None)
                        .await?;
                }
                self.commit(tx).await?;
            }
        }
        Ok(())
    }
}
