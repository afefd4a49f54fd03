//! The broadcast recorder: one file of one source of a broadcast, in the codecs it was sent
//! in (nothing is transcoded): WebM for VP8, VP9, AV1 and Opus; MP4 once the video is H.264
//! (its Opus audio kept). Written live like the individual files, so a crash leaves it
//! playable. The recording ends when its source stops publishing; a broadcast shorter than
//! [`MIN_LENGTH`] is not kept, and the recording fails with that reason. One that lasts its
//! source's `split_after` ends there, and a new recording goes on with what follows (each
//! piece kept however short). When the token asks for them, pictures of the source are
//! taken while it is live (see [`super::stills`]).

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::participant_files::{self, FilePlan, Naming, ParticipantFiles};
use super::stills::Stills;
use super::worker::{self, Outlet, Writing};
use super::{FinishedFile, Port, Recorder, RecorderError, RecorderFactory, RecordingJob, Tracks};
use crate::bus::BusMessage;
use crate::domain::settings::OutputType;
use crate::domain::{BroadcastSource, Participant, TrackType, names};
use crate::mux::Container;

/// The shortest broadcast that is kept.
pub const MIN_LENGTH: Duration = Duration::from_secs(10);

/// Makes broadcast recorders.
pub struct BroadcastFactory;

impl RecorderFactory for BroadcastFactory {
    fn create(&self, job: &RecordingJob) -> Result<Box<dyn Recorder>, RecorderError> {
        let source = job.broadcast.clone().ok_or_else(|| {
            RecorderError::Failed("a broadcast recording needs the source it records".into())
        })?;
        let stream = job.recording.cid.id.to_string();
        let stills = source.thumbnails.then(|| {
            let id = Some(source.source_id.as_str()).filter(|s| !s.is_empty());
            Stills::new(&job.work_dir, &stream, id, MIN_LENGTH)
        });
        let files = ParticipantFiles::new(FilePlan {
            outputs: vec![OutputType::AudioVideo],
            container: Container::keeping,
            naming: Box::new(BroadcastNames { stream }),
            dir: job.work_dir.clone(),
            layer: None,
        })?;
        Ok(Box::new(BroadcastRecorder {
            source,
            files,
            stills,
        }))
    }

    fn recover(&self, dir: &Path, handed_over: &HashSet<String>) -> Vec<FinishedFile> {
        let mut found: Vec<_> = ["webm", "mp4"]
            .into_iter()
            .flat_map(|extension| participant_files::recover(dir, extension, handed_over, None))
            .collect();
        found.extend(super::stills::recover(dir, handed_over));
        found
    }
}

/// Names a source's file after its stream and source id.
struct BroadcastNames {
    stream: String,
}

impl Naming for BroadcastNames {
    fn name(
        &self,
        who: &Participant,
        _group: (bool, &str),
        first_ms: i64,
        container: Container,
    ) -> Result<String, RecorderError> {
        let source = Some(who.source_id.as_str()).filter(|s| !s.is_empty());
        Ok(names::broadcast_file(
            &self.stream,
            source,
            first_ms,
            container.extension(),
        ))
    }
}

struct BroadcastRecorder {
    source: BroadcastSource,
    files: ParticipantFiles,
    stills: Option<Stills>,
}

impl Recorder for BroadcastRecorder {
    fn tracks(&self) -> Tracks {
        let source = self.source.clone();
        Box::new(move |t| !t.track_type.is_screen() && source.is(&t.participant))
    }

    fn run(self: Box<Self>, port: Port) -> BoxFuture<'static, Result<(), RecorderError>> {
        let writing = SourceFile {
            files: self.files,
            stills: self.stills,
            split_after: self.source.split_after,
            keep_short: self.source.continued,
            first: None,
            ended: false,
            too_short: None,
        };
        worker::record(port, writing, "reel-broadcast").boxed()
    }
}

/// The file of one source, until the source ends.
struct SourceFile {
    files: ParticipantFiles,
    /// Its pictures, if its token takes them.
    stills: Option<Stills>,
    /// Its longest length: then it ends, and a new recording goes on.
    split_after: Duration,
    /// Whether a short file is kept (the broadcast was split).
    keep_short: bool,
    /// When its first packet came.
    first: Option<Instant>,
    /// Its file was closed: the source stopped publishing, or the recording was split.
    ended: bool,
    /// How long a broadcast lasted that was too short to keep.
    too_short: Option<Duration>,
}

impl SourceFile {
    /// Hands over the files closed since the last call; one too short is removed instead.
    fn hand_over(&mut self, files: Vec<FinishedFile>, out: &Outlet) {
        for f in files {
            self.ended = true;
            let length = f.end_time.since(f.start_time);
            if length < MIN_LENGTH && !self.keep_short {
                if let Err(e) = std::fs::remove_file(&f.path) {
                    tracing::warn!(error = %e, path = %f.path.display(), "cannot remove a short broadcast");
                }
                self.too_short = Some(length);
            } else {
                if let Some(stills) = &self.stills {
                    stills.poster(&f, out);
                }
                out.hand_over(f);
            }
        }
    }

    /// Closes the file and hands it over (also when writing failed).
    fn close(&mut self, out: &Outlet) -> Result<(), RecorderError> {
        let closed = self.files.close();
        let finished = self.files.take_finished();
        self.hand_over(finished, out);
        let closed = closed?;
        self.hand_over(closed, out);
        Ok(())
    }

    /// Takes the pictures that are due, if the token takes them.
    fn take_stills(&mut self, out: &Outlet) {
        if let Some(stills) = &mut self.stills {
            stills.step(&mut self.files, out);
        }
    }

    /// Why nothing was kept, if the broadcast was too short.
    fn outcome(&self) -> Result<(), RecorderError> {
        match self.too_short {
            Some(length) => Err(RecorderError::Failed(format!(
                "the broadcast lasted {:.1} s; broadcasts shorter than {} s are not kept",
                length.as_secs_f64(),
                MIN_LENGTH.as_secs()
            ))),
            None => Ok(()),
        }
    }
}

impl Writing for SourceFile {
    const TICK: Duration = Duration::from_millis(250);

    fn take(&mut self, m: BusMessage, out: &Outlet) -> Result<(), RecorderError> {
        if self.ended {
            // What comes after the split is the next recording's.
            return Ok(());
        }
        if let BusMessage::Packet(p) = &m {
            self.first.get_or_insert_with(Instant::now);
            if let Some(stills) = &mut self.stills {
                stills.packet(&p.track.track_id, p.track.track_type == TrackType::Video);
            }
        }
        self.files.handle(&m, &mut |t| out.ask_keyframe(t));
        self.take_stills(out);
        let finished = self.files.take_finished();
        self.hand_over(finished, out);
        Ok(())
    }

    fn tick(&mut self, out: &Outlet) -> Result<(), RecorderError> {
        if !self.ended && self.first.is_some_and(|t| t.elapsed() >= self.split_after) {
            // As long as a recording may be: what follows goes into a new one.
            out.goes_on();
            self.ended = true;
            self.keep_short = true;
            return self.close(out);
        }
        self.files.tick();
        self.take_stills(out);
        let finished = self.files.take_finished();
        self.hand_over(finished, out);
        Ok(())
    }

    fn done(&self) -> bool {
        self.ended
    }

    fn finish(mut self, out: &Outlet) -> Result<(), RecorderError> {
        self.close(out)?;
        self.outcome()
    }
}
