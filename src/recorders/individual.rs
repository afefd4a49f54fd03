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
            cid: (cid.call_type.to_string(), cid.id.to_string()),
            session_ms: job.session_started_at.unix_millis(),
        }),
        dir: job.work_dir.clone(),
        layer: None,
    })
}

/// The name of a participant session's individual file of `content` (`audio_only`,
/// `video_only` or `audio_video`; `screen` for a screen share) in the call session of `call`
/// (type and id) that started at `session_ms`: the same whether the recorder or
/// `raw-recording` made it.
pub fn file_name(
    call: (&str, &str),
    user: &str,
    session: &str,
    screen: bool,
    content: &str,
    session_ms: i64,
) -> String {
    format!(
        "individual_{}_{}_{}_{}_{}{content}_{session_ms}.mkv",
        names::file_part(call.0, MAX_NAME_PART),
        names::file_part(call.1, MAX_NAME_PART),
        names::file_part(user, MAX_NAME_PART),
        names::file_part(session, MAX_NAME_PART),
        if screen { "shared_" } else { "" },
    )
}

struct IndividualNames {
    /// The call type and id.
    cid: (String, String),
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
        Ok(file_name(
            (&self.cid.0, &self.cid.1),
            who.user_id.as_str(),
            who.user_session_id.as_str(),
            screen,
            content,
            self.session_ms,
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
