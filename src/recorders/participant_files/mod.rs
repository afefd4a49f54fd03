//! Files per participant session, written from the published frames without transcoding:
//! what the individual and the track recorders share.
//!
//! Every watched participant is recorded from when their media arrives until they leave; a
//! participant's files are closed and handed over for upload when their last track ends, and
//! everyone's when the recording stops. Which files a participant gets is a [`FilePlan`]:
//! the `output_types` asked for (see [`outputs`]), the container, and how files are named.
//! Files are written as live streams (see [`crate::mux`]): a crash leaves them playable up to
//! their last second or so, and [`recover`] finalizes them.

mod group;
mod outputs;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing::warn;

use self::group::{Group, Shared};
use super::worker::{self, Outlet};
use super::{FinishedFile, Port, RecorderError};
use crate::bus::BusMessage;
use crate::domain::settings::OutputType;
use crate::domain::{FileName, Participant, Timestamp};
use crate::mux::{self, Container, StreamSpec};
use crate::rtp::MediaCodec;
/// How often groups waiting for their other track are looked at.
const TICK: Duration = Duration::from_millis(250);

/// Names a participant's file.
pub trait Naming: Send + 'static {
    /// The file name (with its extension) of `who`'s file of `group`: `(screen, content)`,
    /// its screen share (`screen`) or camera and microphone, holding `content`
    /// (`audio_only`, `video_only` or `audio_video`). Its first media is at `first_ms` (unix
    /// ms); it is written as `container`. Same-named files are told apart by the caller.
    fn name(
        &self,
        who: &Participant,
        group: (bool, &str),
        first_ms: i64,
        container: Container,
    ) -> Result<String, RecorderError>;
}

/// The files each participant session gets.
pub struct FilePlan {
    /// The output types asked for.
    pub outputs: Vec<OutputType>,
    /// The container of a file of these streams.
    pub container: fn(&[StreamSpec]) -> Container,
    /// How they are named.
    pub naming: Box<dyn Naming>,
    /// The directory they are written to.
    pub dir: PathBuf,
    /// The layer they are listed under, if the recording has layers.
    pub layer: Option<String>,
}

/// A video key frame, as written.
pub struct KeyFrame {
    /// Its codec.
    pub codec: MediaCodec,
    /// Its wall-clock time, µs.
    pub pts_us: i64,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// A group: a participant session's camera/microphone (`false`) or screen share (`true`).
type GroupKey = (String, bool);

/// A recording being written: every participant's files of one plan.
pub struct ParticipantFiles {
    groups: HashMap<GroupKey, Group>,
    shared: Shared,
}

impl ParticipantFiles {
    /// Files as `plan` says; creates its directory.
    pub fn new(plan: FilePlan) -> Result<Self, RecorderError> {
        std::fs::create_dir_all(&plan.dir).map_err(|source| RecorderError::Io {
            context: format!("cannot create {}", plan.dir.display()),
            source,
        })?;
        Ok(Self {
            groups: HashMap::new(),
            shared: Shared {
                plan,
                used_names: HashSet::new(),
                finished: Vec::new(),
                failures: (0, None),
                frames: Vec::new(),
                catch: (false, None),
            },
        })
    }

    /// Writes what the bus delivered; `ask_keyframe` asks a track's publisher for a key
    /// frame (after a loss, video resumes at one).
    pub fn handle(&mut self, m: &BusMessage, ask_keyframe: &mut dyn FnMut(&str)) {
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
                if group.packet(p, shared) {
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

    /// Keeps the next video key frame written, for [`Self::take_keyframe`].
    pub fn catch_keyframe(&mut self) {
        self.shared.catch.0 = true;
    }

    /// The key frame kept since [`Self::catch_keyframe`], once one came.
    pub fn take_keyframe(&mut self) -> Option<KeyFrame> {
        self.shared.catch.1.take()
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

/// Records the port's feed into `files` (one set per plan), on a thread of its own, until
/// the recording is asked to stop, handing files over as participants leave.
pub(super) async fn record(
    port: Port,
    files: Vec<ParticipantFiles>,
    thread: &str,
) -> Result<(), RecorderError> {
    worker::record(port, files, thread).await
}

impl worker::Writing for Vec<ParticipantFiles> {
    const TICK: Duration = TICK;

    fn take(&mut self, m: BusMessage, out: &Outlet) -> Result<(), RecorderError> {
        for f in self.iter_mut() {
            f.handle(&m, &mut |t| out.ask_keyframe(t));
            f.take_finished().into_iter().for_each(|f| out.hand_over(f));
        }
        Ok(())
    }

    fn tick(&mut self, out: &Outlet) -> Result<(), RecorderError> {
        for f in self.iter_mut() {
            f.tick();
            f.take_finished().into_iter().for_each(|f| out.hand_over(f));
        }
        Ok(())
    }

    fn finish(self, out: &Outlet) -> Result<(), RecorderError> {
        let mut failure = None;
        for mut f in self {
            let closed = f.close();
            // Every file goes up, even when some failed.
            f.take_finished().into_iter().for_each(|f| out.hand_over(f));
            match closed {
                Ok(closed) => closed.into_iter().for_each(|f| out.hand_over(f)),
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        failure.map_or(Ok(()), Err)
    }
}

/// After a crash: finalizes the `.{extension}` files left in `dir` that were not handed over
/// (they gain their index and duration; one that cannot be rewritten is handed over as it
/// is, playable up to its last cluster).
pub fn recover(
    dir: &Path,
    extension: &str,
    handed_over: &HashSet<String>,
    layer: Option<&str>,
) -> Vec<FinishedFile> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if path.extension().is_none_or(|e| e != extension) || handed_over.contains(name) {
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
        // Cut short before its first frame: nothing in it can play.
        if span == 0 && !mux::holds_frames(&path) {
            warn!(file = %name, "a file cut short before any media is removed");
            if let Err(e) = std::fs::remove_file(&path) {
                warn!(error = %e, file = %name, "cannot remove an empty file");
            }
            continue;
        }
        files.push(FinishedFile {
            path,
            filename,
            start_time: end.before(Duration::from_micros(span.max(0) as u64)),
            end_time: end,
            layer: layer.map(str::to_owned),
        });
    }
    files
}
