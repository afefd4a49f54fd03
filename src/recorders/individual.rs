//! The individual recorder: for each participant session, Matroska files of its camera and
//! microphone and of its screen share, as the call's `individual_recording.output_types`
//! asks, named as the raw-recording tool names the files it makes:
//! `individual_{call type}_{call id}_{user}_{user session}_{[shared_]audio_only|video_only|audio_video}_{session start, unix ms}.mkv`.

use std::collections::HashSet;
use std::path::Path;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::participant_files::{self, FilePlan, Naming, ParticipantFiles};
use super::{
    FinishedFile, Recorder, RecorderError, RecorderFactory, RecordingContext, RecordingJob, names,
};
use crate::domain::Participant;
use crate::mux::Container;

/// Longest user id or session id in a file name.
const MAX_NAME_PART: usize = 64;

/// Makes individual recorders.
pub struct IndividualFactory;

impl RecorderFactory for IndividualFactory {
    fn create(&self, _job: &RecordingJob) -> Result<Box<dyn Recorder>, RecorderError> {
        Ok(Box::new(IndividualRecorder))
    }

    fn recover(&self, dir: &Path, handed_over: &HashSet<String>) -> Vec<FinishedFile> {
        participant_files::recover(dir, "mkv", handed_over, None)
    }
}

/// The individual files of `job`.
pub fn files(job: &RecordingJob) -> Result<ParticipantFiles, RecorderError> {
    let cid = &job.recording.cid;
    ParticipantFiles::new(FilePlan {
        outputs: job.settings.individual_recording.output_types.clone(),
        container: Container::Matroska,
        naming: Box::new(IndividualNames {
            prefix: format!("individual_{}_{}", cid.call_type, cid.id),
            session_ms: job.session_started_at.unix_millis(),
        }),
        dir: job.work_dir.clone(),
        layer: None,
    })
}

struct IndividualNames {
    /// `individual_{call type}_{call id}`.
    prefix: String,
    /// The call session's start: the last part of every name.
    session_ms: i64,
}

impl Naming for IndividualNames {
    fn name(
        &self,
        who: &Participant,
        screen: bool,
        content: &str,
        _first_ms: i64,
    ) -> Result<String, RecorderError> {
        Ok(format!(
            "{}_{}_{}_{}{content}_{}.mkv",
            self.prefix,
            names::file_part(who.user_id.as_str(), MAX_NAME_PART),
            names::file_part(who.user_session_id.as_str(), MAX_NAME_PART),
            if screen { "shared_" } else { "" },
            self.session_ms
        ))
    }
}

struct IndividualRecorder;

impl Recorder for IndividualRecorder {
    fn run(
        self: Box<Self>,
        ctx: RecordingContext,
    ) -> BoxFuture<'static, Result<(), RecorderError>> {
        async move {
            let files = files(ctx.job())?;
            participant_files::record(ctx, vec![files], |_| true).await
        }
        .boxed()
    }
}
