//! Recorders and their supervisor.
//!
//! A [`Recorder`] turns a call's media into files. The supervisor runs each one in its own
//! task and owns its life cycle: the recorder reports when it starts writing and hands over
//! each finished file through its [`RecordingContext`]; it is asked to stop through the
//! context's stop signal; when it returns, the recording moves on to uploading (or to failed,
//! with its handed-over files still uploaded: media already written is never dropped).

pub mod individual;
pub mod names;
pub mod participant_files;
pub mod raw;
pub mod track;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use crate::domain::{
    CallSettings, Cid, FileName, Recording, RecordingId, RecordingState, RecordingType, SessionId,
    Timestamp, TrackOptions, Transition,
};
use crate::media::Bus;
use crate::service::{ServiceError, Services};

/// Why a recorder failed.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    /// Writing a file failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The recorder cannot go on.
    #[error("{0}")]
    Failed(String),
    /// Reporting to the control plane failed.
    #[error(transparent)]
    Service(#[from] Box<ServiceError>),
}

impl From<ServiceError> for RecorderError {
    fn from(e: ServiceError) -> Self {
        Box::new(e).into()
    }
}

/// Everything a recorder needs to know, resolved before it starts.
#[derive(Clone, Debug)]
pub struct RecordingJob {
    /// The recording.
    pub recording: Recording,
    /// The call's effective settings when the recording was requested.
    pub settings: CallSettings,
    /// A directory of its own for files being written.
    pub work_dir: PathBuf,
    /// When the recorded call session started.
    pub session_started_at: Timestamp,
    /// What a track recording records (other types ignore it).
    pub track: TrackOptions,
}

impl RecordingJob {
    /// A job known to no store: a running `recording_type` recording of `cid` with default
    /// settings, in a session that starts now, writing into `work_dir` (how benchmarks and
    /// tests drive a recorder directly).
    pub fn detached(recording_type: RecordingType, cid: Cid, work_dir: PathBuf) -> RecordingJob {
        let now = Timestamp::now();
        RecordingJob {
            recording: Recording {
                id: RecordingId::random(),
                cid,
                session_id: SessionId::random(),
                recording_type,
                state: RecordingState::Running,
                storage: None,
                requested_by: None,
                error: None,
                created_at: now,
                started_at: Some(now),
                stopped_at: None,
                updated_at: now,
            },
            settings: CallSettings::default(),
            work_dir,
            session_started_at: now,
            track: TrackOptions::default(),
        }
    }
}

/// A file the recorder has finished writing.
#[derive(Clone, Debug)]
pub struct FinishedFile {
    /// Where it is (inside the job's work directory).
    pub path: PathBuf,
    /// Its name in listings.
    pub filename: FileName,
    /// Wall-clock time of its first media.
    pub start_time: Timestamp,
    /// Wall-clock time of its last media.
    pub end_time: Timestamp,
    /// The layer it belongs to, for recordings that group their files.
    pub layer: Option<String>,
}

/// Makes recordings of one kind.
pub trait Recorder: Send + 'static {
    /// Records until `ctx.stop()` fires or the recording ends by itself.
    fn run(self: Box<Self>, ctx: RecordingContext)
    -> BoxFuture<'static, Result<(), RecorderError>>;
}

/// Creates a recorder for a job.
pub trait RecorderFactory: Send + Sync + 'static {
    /// A recorder for `job`, or why there cannot be one.
    fn create(&self, job: &RecordingJob) -> Result<Box<dyn Recorder>, RecorderError>;

    /// After a crash: finishes what a recorder of this kind left in its work directory
    /// `dir` (files it had not handed over yet, none of them named in `handed_over`) and
    /// returns them for upload. Runs on a blocking thread.
    fn recover(&self, _dir: &Path, _handed_over: &HashSet<String>) -> Vec<FinishedFile> {
        Vec::new()
    }
}

/// The recorder factories, by recording type.
#[derive(Clone, Default)]
pub struct Recorders(HashMap<RecordingType, Arc<dyn RecorderFactory>>);

impl Recorders {
    /// These factories plus `factory` for `t`.
    pub fn with(mut self, t: RecordingType, factory: impl RecorderFactory) -> Self {
        self.0.insert(t, Arc::new(factory));
        self
    }

    /// The recorders that need no browser: raw, individual and track.
    pub fn native() -> Self {
        Self::default()
            .with(RecordingType::Raw, raw::RawFactory)
            .with(RecordingType::Individual, individual::IndividualFactory)
            .with(RecordingType::Track, track::TrackFactory)
    }

    /// The factory for `t`.
    pub fn get(&self, t: RecordingType) -> Option<&Arc<dyn RecorderFactory>> {
        self.0.get(&t)
    }
}

/// A running recorder's line to the control plane.
pub struct RecordingContext {
    services: Services,
    job: RecordingJob,
    stop: CancellationToken,
}

impl RecordingContext {
    /// The job.
    pub fn job(&self) -> &RecordingJob {
        &self.job
    }

    /// The media bus, where the call's tracks are.
    pub fn bus(&self) -> &Bus {
        self.services.bus()
    }

    /// Fires when the recorder should finish its files and return.
    pub fn stop(&self) -> &CancellationToken {
        &self.stop
    }

    /// Reports that the recorder is writing (the recording is running from now). If a stop
    /// was asked for while the recorder was setting up, the stop signal fires now.
    pub async fn started(&self) -> Result<(), RecorderError> {
        let state = self
            .services
            .advance(&self.job.recording.id, Transition::Started, None)
            .await?;
        if state == RecordingState::Stopping {
            self.stop.cancel();
        }
        Ok(())
    }

    /// Hands over a finished file for upload.
    pub async fn file_finished(&self, f: FinishedFile) -> Result<(), RecorderError> {
        self.services.add_file(&self.job.recording, f).await?;
        Ok(())
    }
}

/// Runs `recorder` for `job` in a task of its own.
pub(crate) fn spawn(services: Services, job: RecordingJob, recorder: Box<dyn Recorder>) {
    let stop = CancellationToken::new();
    let id = job.recording.id.clone();
    services.register_running(&id, stop.clone());
    let span = info_span!("recording", cid = %job.recording.cid, recording_id = %id,
                          recording_type = %job.recording.recording_type);
    let ctx = RecordingContext {
        services: services.clone(),
        job,
        stop,
    };
    let task = tokio::spawn({
        let services = services.clone();
        let id = id.clone();
        async move {
            let result = recorder.run(ctx).await;
            let outcome = match &result {
                Ok(()) => {
                    services
                        .advance(&id, Transition::RecorderFinished, None)
                        .await
                }
                Err(e) => {
                    warn!(error = %e, "recorder failed");
                    services
                        .advance(&id, Transition::Fail, Some(&e.to_string()))
                        .await
                }
            };
            match outcome {
                Ok(state) => info!(%state, "recorder finished"),
                Err(e) => warn!(error = %e, "cannot record the end of a recorder"),
            }
            services.unregister_running(&id);
        }
        .instrument(span)
    });
    services.set_running_task(&id, task.abort_handle());
}
