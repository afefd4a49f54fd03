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

async fn record(ctx: RecordingContext) -> Result<(), RecorderError> {
    let job = ctx.job().clone();
    let rec = &job.recording;
    std::fs::create_dir_all(&job.work_dir).map_err(|source| RecorderError::Io {
        context: format!("cannot create {}", job.work_dir.display()),
        source,
    })?;
    let mut sub = ctx.bus().watch(&rec.cid, QUEUE, |_| true);
    let mut shared = Shared {
        requested: job.settings.individual_recording.output_types.clone(),
        dir: job.work_dir.clone(),
        prefix: format!("individual_{}_{}", rec.cid.call_type, rec.cid.id),
        ts: job.session_started_at.unix_millis(),
        used_names: HashSet::new(),
        finished: Vec::new(),
        failures: (0, None),
        frames: Vec::new(),
    };
    let mut groups: HashMap<GroupKey, Group> = HashMap::new();
    ctx.started().await?;
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = ctx.stop().cancelled() => break,
            _ = tick.tick() => groups.values_mut().for_each(|g| g.tick(&mut shared)),
            m = sub.recv() => match m {
                Some(m) => handle(m, &mut groups, &mut shared, &sub),
                None => break,
            },
        }
        hand_over(&ctx, &mut shared).await?;
    }
    while let Some(m) = sub.try_recv() {
        handle(m, &mut groups, &mut shared, &sub);
    }
    for (_, g) in groups.drain() {
        g.close(&mut shared);
    }
    hand_over(&ctx, &mut shared).await?;
    match shared.failures {
        (0, _) => Ok(()),
        (n, first) => Err(RecorderError::Failed(format!(
            "{n} write(s) failed, first: {}",
            first.unwrap_or_default()
        ))),
    }
}

fn handle(
    m: BusMessage,
    groups: &mut HashMap<GroupKey, Group>,
    shared: &mut Shared,
    sub: &crate::media::Subscription,
) {
    match m {
        BusMessage::Track(_) => {}
        BusMessage::Packet(p) => {
            let key = (
                p.track.participant.user_session_id.to_string(),
                p.track.track_type.is_screen(),
            );
            let group = groups.entry(key).or_insert_with(|| {
                Group::new(p.track.participant.clone(), p.track.track_type.is_screen())
            });
            if group.packet(&p, shared) {
                sub.request_keyframe(&p.track.track_id);
            }
        }
        BusMessage::Ended(track) => {
            let key = (
                track.participant.user_session_id.to_string(),
                track.track_type.is_screen(),
            );
            if let Some(g) = groups.get_mut(&key)
                && g.track_ended(&track.track_id, shared)
                && let Some(g) = groups.remove(&key)
            {
                g.close(shared);
            }
        }
    }
}

/// Hands the files closed so far over for upload.
async fn hand_over(ctx: &RecordingContext, shared: &mut Shared) -> Result<(), RecorderError> {
    for f in std::mem::take(&mut shared.finished) {
        ctx.file_finished(f).await?;
    }
    Ok(())
}
