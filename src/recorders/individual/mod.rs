//! The individual recorder: for each participant session, Matroska files of its camera and
//! microphone and of its screen share, as `output_types` asks (see [`outputs`]), from the
//! published frames without transcoding.
//!
//! Every participant in the call is recorded from when their media arrives until they
//! leave; a participant's files are closed and handed over for upload when their last track
//! ends, and everyone's when the recording stops. Files are written as live streams (see
//! [`crate::mux`]): a crash leaves them playable up to their last second or so.

mod group;
mod outputs;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use tracing::warn;

use self::group::{Group, Shared};
use super::{
    FinishedFile, Recorder, RecorderError, RecorderFactory, RecordingContext, RecordingJob,
};
use crate::domain::{FileName, Timestamp};
use crate::media::BusMessage;
use crate::mux;

/// Bus queue of the recorder: a few seconds of a large call.
const QUEUE: usize = 16_384;
/// How often groups waiting for their other track are looked at.
const TICK: Duration = Duration::from_millis(250);

/// Makes individual recorders.
pub struct IndividualFactory;

impl RecorderFactory for IndividualFactory {
    fn create(&self, _job: &RecordingJob) -> Result<Box<dyn Recorder>, RecorderError> {
        Ok(Box::new(IndividualRecorder))
    }

    /// Finalizes the files a crash left open (they gain their index and duration; one that
    /// cannot be rewritten is handed over as it is, playable up to its last cluster).
    fn recover(&self, dir: &Path, handed_over: &HashSet<String>) -> Vec<FinishedFile> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !name.ends_with(".mkv") || handed_over.contains(name) {
                continue;
            }
            let Ok(filename) = FileName::parse(name) else {
                continue;
            };
            let end = entry
                .metadata()
                .and_then(|m| m.modified())
                .map_or_else(|_| Timestamp::now(), Timestamp::from);
            let span = mux::finalize(&path).unwrap_or_else(|e| {
                warn!(error = %e, "handing over a file as it is");
                0
            });
            files.push(FinishedFile {
                path,
                filename,
                start_time: end.before(Duration::from_micros(span.max(0) as u64)),
                end_time: end,
            });
        }
        files
    }
}

struct IndividualRecorder;

impl Recorder for IndividualRecorder {
    fn run(
        self: Box<Self>,
        ctx: RecordingContext,
    ) -> BoxFuture<'static, Result<(), RecorderError>> {
        async move { record(ctx).await }.boxed()
    }
}

/// A group: a participant session's camera/microphone (`false`) or screen share (`true`).
type GroupKey = (String, bool);

/// An individual recording being written: every participant's files.
pub struct IndividualFiles {
    groups: HashMap<GroupKey, Group>,
    shared: Shared,
}

impl IndividualFiles {
    /// Files for `job`, written into its work directory.
    pub fn new(job: &RecordingJob) -> Result<Self, RecorderError> {
        let rec = &job.recording;
        std::fs::create_dir_all(&job.work_dir).map_err(|source| RecorderError::Io {
            context: format!("cannot create {}", job.work_dir.display()),
            source,
        })?;
        Ok(Self {
            groups: HashMap::new(),
            shared: Shared {
                requested: job.settings.individual_recording.output_types.clone(),
                dir: job.work_dir.clone(),
                prefix: format!("individual_{}_{}", rec.cid.call_type, rec.cid.id),
                ts: job.session_started_at.unix_millis(),
                used_names: HashSet::new(),
                finished: Vec::new(),
                failures: (0, None),
                frames: Vec::new(),
            },
        })
    }

    /// Writes what the bus delivered; `ask_keyframe` asks a track's publisher for a key
    /// frame (after a loss, video resumes at one).
    pub fn handle(&mut self, m: BusMessage, ask_keyframe: &mut dyn FnMut(&str)) {
        let shared = &mut self.shared;
        match m {
            BusMessage::Track(_) => {}
            BusMessage::Packet(p) => {
                let screen = p.track.track_type.is_screen();
                let key = (p.track.participant.user_session_id.to_string(), screen);
                let group = self
                    .groups
                    .entry(key)
                    .or_insert_with(|| Group::new(p.track.participant.clone(), screen));
                if group.packet(&p, shared) {
                    ask_keyframe(&p.track.track_id);
                }
            }
            BusMessage::Ended(track) => {
                let key = (
                    track.participant.user_session_id.to_string(),
                    track.track_type.is_screen(),
                );
                if let Some(g) = self.groups.get_mut(&key)
                    && g.track_ended(&track.track_id, shared)
                    && let Some(g) = self.groups.remove(&key)
                {
                    g.close(shared);
                }
            }
        }
    }

    /// Opens the files of participants whose other track is overdue.
    pub fn tick(&mut self) {
        for g in self.groups.values_mut() {
            g.tick(&mut self.shared);
        }
    }

    /// The files closed since the last call.
    pub fn take_finished(&mut self) -> Vec<FinishedFile> {
        std::mem::take(&mut self.shared.finished)
    }

    /// Closes every file; the files closed since [`Self::take_finished`] was last called,
    /// or why writing failed (the files are handed over all the same through
    /// [`Self::take_finished`]).
    pub fn close(&mut self) -> Result<Vec<FinishedFile>, RecorderError> {
        for (_, g) in self.groups.drain() {
            g.close(&mut self.shared);
        }
        match std::mem::take(&mut self.shared.failures) {
            (0, _) => Ok(self.take_finished()),
            (n, first) => Err(RecorderError::Failed(format!(
                "{n} write(s) failed, first: {}",
                first.unwrap_or_default()
            ))),
        }
    }
}

async fn record(ctx: RecordingContext) -> Result<(), RecorderError> {
    let job = ctx.job().clone();
    let mut files = IndividualFiles::new(&job)?;
    let mut sub = ctx.bus().watch(&job.recording.cid, QUEUE, |_| true);
    let keyframes = ctx.bus().clone();
    let cid = job.recording.cid.clone();
    let mut ask = |track_id: &str| keyframes.request_keyframe(&cid, track_id);
    ctx.started().await?;
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = ctx.stop().cancelled() => break,
            _ = tick.tick() => files.tick(),
            m = sub.recv() => match m {
                Some(m) => files.handle(m, &mut ask),
                None => break,
            },
        }
        hand_over(&ctx, files.take_finished()).await?;
    }
    while let Some(m) = sub.try_recv() {
        files.handle(m, &mut ask);
    }
    let closed = files.close();
    // Every file goes up, even when some failed.
    hand_over(&ctx, files.take_finished()).await?;
    hand_over(&ctx, closed?).await
}

/// Hands files over for upload.
async fn hand_over(ctx: &RecordingContext, files: Vec<FinishedFile>) -> Result<(), RecorderError> {
    for f in files {
        ctx.file_finished(f).await?;
    }
    Ok(())
}
