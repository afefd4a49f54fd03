//! The individual recorder: for each participant session, Matroska files of its camera and
//! microphone and of its screen share, as the call's `individual_recording.output_types`
//! asks, named as the raw-recording tool names the files it makes:
//! `individual_{call type}_{call id}_{user}_{user session}_{[shared_]audio_only|video_only|audio_video}_{session start, unix ms}.mkv`.

use std::collections::HashSet;
use std::path::Path;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::participant_files::{self, FilePlan, Naming, ParticipantFiles};
use super::{FinishedFile, Port, Recorder, RecorderError, RecorderFactory, RecordingJob};
use crate::domain::{Participant, names};
use crate::mux::Container;

/// Makes individual recorders.
pub struct IndividualFactory;

impl RecorderFactory for IndividualFactory {
    fn create(&self, job: &RecordingJob) -> Result<Box<dyn Recorder>, RecorderError> {
        Ok(Box::new(IndividualRecorder { files: files(job)? }))
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
        container: |_| Container::Matroska,
        naming: Box::new(IndividualNames {
            cid: (cid.call_type.to_string(), cid.id.to_string()),
            session_ms: job.session_started_at.unix_millis(),
        }),
        dir: job.work_dir.clone(),
        layer: None,
    })
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
        (screen, content): (bool, &str),
        _first_ms: i64,
        _container: Container,
    ) -> Result<String, RecorderError> {
        Ok(names::individual_file(
            (&self.cid.0, &self.cid.1),
            who.user_id.as_str(),
            who.user_session_id.as_str(),
            screen,
            content,
            self.session_ms,
        ))
    }
}

struct IndividualRecorder {
    files: ParticipantFiles,
}

impl Recorder for IndividualRecorder {
    fn run(self: Box<Self>, port: Port) -> BoxFuture<'static, Result<(), RecorderError>> {
        participant_files::record(port, vec![self.files], "reel-individual").boxed()
    }
}
