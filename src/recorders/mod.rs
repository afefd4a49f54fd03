//! Recorders: each turns a call's media into files, and sees only its [`Port`].
//!
//! A port holds the [`RecordingJob`] (what to record, with the settings resolved when it was
//! asked for, and where files go), a subscription to the bus tracks the recorder records, a
//! stop signal, and a channel of [`Report`]s: `Started` once it writes, `FileFinished` for
//! each file it closes, and `Finished` with its outcome last (sent by [`run`]). Whoever runs
//! a recorder (the service's supervisor, or a test) makes the port and reads the reports; a
//! recorder never calls back into the rest of reel.
//!
//! The native recorders (raw, individual, track, broadcast) write on a thread of their own (see
//! `worker`): FFmpeg and file writes never run on the async runtime's threads.

pub mod broadcast;
pub mod composite;
pub mod individual;
pub mod participant_files;
pub mod raw;
mod stills;
#[cfg(test)]
mod tests;
pub mod track;
mod worker;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::bus::{Backlog, Subscription};
use crate::domain::{
    BroadcastSource, CallSettings, Cid, CompositeOptions, FileName, Recording, RecordingId,
    RecordingState, RecordingType, SessionId, Timestamp, Track, TrackOptions,
};
use crate::metrics::CompositeProgress;

/// How far behind the bus a recorder may fall before it loses packets. A recorder that falls
/// behind catches up from its queue; one behind by more than a second or two is reported
/// by the supervisor, which refuses new recordings until it has caught up.
pub const BACKLOG: Backlog = Backlog::new(Duration::from_secs(20), 1 << 21);

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
    /// How a composite recording is made (other types ignore it).
    pub composite: CompositeOptions,
    /// The source a broadcast recording records (other types ignore it).
    pub broadcast: Option<BroadcastSource>,
    /// How a page that draws the call reaches reel (composite recordings).
    pub viewer: Option<Viewer>,
}

/// How a browser on this machine reaches reel to draw a call.
#[derive(Clone, Debug)]
pub struct Viewer {
    /// reel's API, as this machine reaches it (`http://127.0.0.1:3000`).
    pub base_url: String,
    /// A token that may follow the call and play its media, and nothing else.
    pub token: String,
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
                exclusive: true,
            },
            settings: CallSettings::default(),
            work_dir,
            session_started_at: now,
            track: TrackOptions::default(),
            composite: CompositeOptions::default(),
            broadcast: None,
            viewer: None,
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

/// What a recorder tells whoever runs it, in this order.
#[derive(Debug)]
pub enum Report {
    /// It is writing: the recording runs from now.
    Started,
    /// It closed a file, which is its to upload.
    FileFinished(FinishedFile),
    /// How a composite goes, so far.
    Progress(CompositeProgress),
    /// What it records goes on past the longest recording (a broadcast's): a recording of
    /// what follows is to start now, as this one finishes.
    GoesOn,
    /// It ended, with every file it wrote handed over before.
    Finished {
        /// Whether it recorded as asked.
        outcome: Result<(), RecorderError>,
    },
}

/// A recorder's end of the report channel: cheap to clone, usable from any thread.
#[derive(Clone, Debug)]
pub struct Reporter(mpsc::UnboundedSender<Report>);

impl Reporter {
    /// A reporter and the receiver of its reports.
    pub fn channel() -> (Reporter, mpsc::UnboundedReceiver<Report>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Reporter(tx), rx)
    }

    /// Reports that the recorder writes.
    pub fn started(&self) {
        self.send(Report::Started);
    }

    /// Hands over a finished file.
    pub fn file_finished(&self, f: FinishedFile) {
        self.send(Report::FileFinished(f));
    }

    /// Tells how a composite goes.
    pub fn progress(&self, p: CompositeProgress) {
        self.send(Report::Progress(p));
    }

    /// Asks for a recording of what follows.
    pub fn goes_on(&self) {
        self.send(Report::GoesOn);
    }

    fn send(&self, r: Report) {
        // Whoever runs the recorder reads reports until the last; a test may stop earlier.
        let _ = self.0.send(r);
    }
}

/// Everything a recorder sees of reel.
pub struct Port {
    /// What to record.
    pub job: RecordingJob,
    /// The tracks it records, as the bus delivers them.
    pub feed: Subscription,
    /// Fires when it should finish its files and return.
    pub stop: CancellationToken,
    /// True while the recording is paused (only composites honour it: what comes meanwhile
    /// is left out of their files).
    pub paused: watch::Receiver<bool>,
    /// Where it reports.
    pub reports: Reporter,
}

/// Which tracks a recorder records.
pub type Tracks = Box<dyn Fn(&Track) -> bool + Send + Sync>;

/// Makes recordings of one kind.
pub trait Recorder: Send + 'static {
    /// The tracks it records; its port's feed delivers these.
    fn tracks(&self) -> Tracks {
        Box::new(|_| true)
    }

    /// Records until `port.stop` fires or the recording ends by itself, reporting as it goes.
    fn run(self: Box<Self>, port: Port) -> BoxFuture<'static, Result<(), RecorderError>>;
}

/// Runs `recorder` on `port` to its end; its outcome is the last report.
pub async fn run(recorder: Box<dyn Recorder>, port: Port) {
    let reports = port.reports.clone();
    let outcome = recorder.run(port).await;
    reports.send(Report::Finished { outcome });
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

    /// The recorders that need no browser: raw, individual, track and broadcast.
    pub fn native() -> Self {
        Self::default()
            .with(RecordingType::Raw, raw::RawFactory)
            .with(RecordingType::Individual, individual::IndividualFactory)
            .with(RecordingType::Track, track::TrackFactory)
            .with(RecordingType::Broadcast, broadcast::BroadcastFactory)
    }

    /// Every recorder: the native ones, and composite, which draws calls in Chromium.
    pub fn all() -> Self {
        Self::native().with(
            RecordingType::Composite,
            composite::CompositeFactory::default(),
        )
    }

    /// Every recorder, with a display and browser standing by for the next composite (the
    /// first pair, for the built-in call types' 720p, starting now): as `reel serve` runs.
    pub fn all_standing_by() -> Self {
        let size = crate::domain::settings::Quality::P720.dimensions();
        Self::native().with(
            RecordingType::Composite,
            composite::CompositeFactory::standing_by(size),
        )
    }

    /// The factory for `t`.
    pub fn get(&self, t: RecordingType) -> Option<&Arc<dyn RecorderFactory>> {
        self.0.get(&t)
    }
}
