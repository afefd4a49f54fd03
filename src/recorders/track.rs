//! The track recorder: one Opus WebM per recorded participant session and layer, from the
//! published packets without transcoding.
//!
//! Only audio is recorded: the microphone (`stream_kind` `peer`) and the screen share's
//! audio (`screenshare`), each in its own file. Only the users of the allowlist are recorded,
//! including those who join after the recording started. Files are named by the handlebars
//! template `templates/track_file_name.hbs` (see [`FILE_NAME_TEMPLATE`]), every value made
//! safe for a file name first. Each layer's files are written in a directory of their own
//! (`{work dir}/{layer index}/`), so that a restart after a crash knows their layer.

use std::collections::HashSet;
use std::path::Path;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use handlebars::Handlebars;
use serde_json::json;
use tracing::warn;

use super::participant_files::{self, FilePlan, Naming, ParticipantFiles};
use super::{FinishedFile, Port, Recorder, RecorderError, RecorderFactory, RecordingJob, Tracks};
use crate::domain::settings::OutputType;
use crate::domain::{Participant, TrackLayer, TrackOptions, names};
use crate::mux::Container;

/// The template of track recording file names, as the API shows it.
pub const FILE_NAME_TEMPLATE: &str = include_str!("../../templates/track_file_name.hbs");
/// Longest prefix, user id or participant session id in a file name.
const MAX_NAME_PART: usize = 64;
/// The layer names of a recording, in the order of their directories.
const LAYERS_FILE: &str = "layers.json";

/// Makes track recorders.
pub struct TrackFactory;

impl RecorderFactory for TrackFactory {
    fn create(&self, job: &RecordingJob) -> Result<Box<dyn Recorder>, RecorderError> {
        let mut layers = Vec::new();
        for (i, layer) in job.track.layers.iter().enumerate() {
            layers.push(layer_files(job, i, layer)?);
        }
        let names: Vec<&str> = job.track.layers.iter().map(|l| l.name.as_str()).collect();
        let list = job.work_dir.join(LAYERS_FILE);
        std::fs::write(&list, json!(names).to_string()).map_err(|source| RecorderError::Io {
            context: format!("cannot write {}", list.display()),
            source,
        })?;
        Ok(Box::new(TrackRecorder {
            layers,
            options: job.track.clone(),
        }))
    }

    fn recover(&self, dir: &Path, handed_over: &HashSet<String>) -> Vec<FinishedFile> {
        let layers: Vec<String> = std::fs::read(dir.join(LAYERS_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        layers
            .iter()
            .enumerate()
            .flat_map(|(i, name)| {
                participant_files::recover(
                    &dir.join(i.to_string()),
                    "webm",
                    handed_over,
                    Some(name),
                )
            })
            .collect()
    }
}

/// The files of layer `index` of `job`.
fn layer_files(
    job: &RecordingJob,
    index: usize,
    layer: &TrackLayer,
) -> Result<ParticipantFiles, RecorderError> {
    ParticipantFiles::new(FilePlan {
        outputs: vec![OutputType::AudioOnly, OutputType::ScreenshareAudioOnly],
        container: |_| Container::WebM,
        naming: Box::new(TrackNames::new(&layer.file_name_prefix)?),
        dir: job.work_dir.join(index.to_string()),
        layer: Some(layer.name.clone()),
    })
}

/// Names files with [`FILE_NAME_TEMPLATE`].
struct TrackNames {
    template: Handlebars<'static>,
    prefix: String,
}

impl TrackNames {
    fn new(prefix: &str) -> Result<Self, RecorderError> {
        let mut template = Handlebars::new();
        template.set_strict_mode(true);
        template.register_escape_fn(handlebars::no_escape);
        template
            .register_template_string("file", FILE_NAME_TEMPLATE.trim())
            .map_err(|e| RecorderError::Failed(format!("the file name template: {e}")))?;
        Ok(Self {
            template,
            prefix: names::file_part(prefix, MAX_NAME_PART),
        })
    }
}

impl Naming for TrackNames {
    fn name(
        &self,
        who: &Participant,
        (screen, _content): (bool, &str),
        first_ms: i64,
        _container: Container,
    ) -> Result<String, RecorderError> {
        let values = json!({
            "file_name_prefix": self.prefix,
            "user_id": names::file_part(who.user_id.as_str(), MAX_NAME_PART),
            "peer_id": names::file_part(who.user_session_id.as_str(), MAX_NAME_PART),
            "stream_kind": if screen { "screenshare" } else { "peer" },
            "media_kind": "audio",
            "date_time": first_ms,
        });
        self.template.render("file", &values).map_err(|e| {
            warn!(error = %e, "cannot name a file");
            RecorderError::Failed(format!("the file name template: {e}"))
        })
    }
}

struct TrackRecorder {
    layers: Vec<ParticipantFiles>,
    options: TrackOptions,
}

impl Recorder for TrackRecorder {
    fn tracks(&self) -> Tracks {
        let options = self.options.clone();
        Box::new(move |t| t.track_type.is_audio() && options.records(&t.participant.user_id))
    }

    fn run(self: Box<Self>, port: Port) -> BoxFuture<'static, Result<(), RecorderError>> {
        participant_files::record(port, self.layers, "reel-track").boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{FileName, SessionId, Timestamp, UserId};

    fn participant(user: &str, session: &str) -> Participant {
        Participant {
            user_id: UserId::parse(user).unwrap(),
            user_session_id: SessionId::parse(session).unwrap(),
            source_id: String::new(),
            role: "user".into(),
            joined_at: Timestamp::from_unix_nanos(0),
        }
    }

    #[test]
    fn names_follow_the_template() {
        let n = TrackNames::new("speaker").unwrap();
        let who = participant("user-123", "peer-456");
        assert_eq!(
            n.name(
                &who,
                (false, "audio_only"),
                1_760_000_000_000,
                Container::WebM
            )
            .unwrap(),
            "speaker_user-123_peer-456_peer_audio_1760000000000.webm"
        );
        assert_eq!(
            n.name(&who, (true, "audio_only"), 1, Container::WebM)
                .unwrap(),
            "speaker_user-123_peer-456_screenshare_audio_1.webm"
        );
    }

    #[test]
    fn hostile_prefixes_and_ids_give_valid_distinct_names() {
        let mut seen = HashSet::new();
        for prefix in ["../../etc", "..", &"p".repeat(300), "Zoë 👋", "a/b", "a_b"] {
            let n = TrackNames::new(prefix).unwrap();
            for user in ["../../etc", "Zoë 👋", &"u".repeat(255)] {
                let name = n
                    .name(&participant(user, "s1"), (false, ""), 7, Container::WebM)
                    .unwrap();
                assert!(FileName::parse(name.as_str()).is_ok(), "{name}");
                assert!(!name.contains('/') && !name.starts_with('.'), "{name}");
                assert!(name.len() < 255, "{name}");
                assert!(seen.insert(name.clone()), "{name} twice");
            }
        }
    }
}
