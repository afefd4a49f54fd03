//! One participant session's camera and microphone (or its screen share): the tracks, and
//! the files they are written to.
//!
//! The files' streams are fixed when they are opened, so frames wait (at most [`HOLD`]) until
//! every track of the group has given a first frame (video: a key frame, which also gives
//! the picture size and the decoder's parameters). A kind that starts later gets a file of
//! its own.
//!
//! Each track's frames are timed from its arrival times (see [`Timeline`]), which put video
//! late by however much longer its capture, encoding and pacing took than the audio's. Once
//! both tracks have a sender report, the video is moved to where the sender's clock puts it
//! against the audio, as a receiver's lip sync does; the files wait for that (within
//! [`ALIGN_HOLD`]) so that the move usually happens before anything is written. Short audio losses are
//! concealed (see [`Concealer`]).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::FilePlan;
use super::outputs::{Content, Kind, files_for, late_file, needed_kinds};
use crate::bus::Packet;
use crate::domain::{FileName, Participant, Timestamp};
use crate::mux::{Concealer, StreamSpec, Writer};
use crate::recorders::FinishedFile;
use crate::rtp::{MediaCodec, TimedFrame, Timeline, frame_size};

/// Longest wait for a group's other track before its files are opened.
pub(super) const HOLD: Duration = Duration::from_secs(3);
/// Longest wait, once every track has started, for the sender reports that align them: the
/// files open by then, so that a crash loses at most this much; a later alignment is spread
/// over the coming frames.
const ALIGN_HOLD: Duration = Duration::from_millis(1500);
/// Largest move of video against audio sender reports are trusted for.
const MAX_ALIGN_US: i64 = 1_000_000;

/// What every group of a recording shares.
pub(super) struct Shared {
    pub(super) plan: FilePlan,
    pub(super) used_names: HashSet<String>,
    /// Files closed since the caller last took them.
    pub(super) finished: Vec<FinishedFile>,
    /// How many times writing failed, and the first reason.
    pub(super) failures: (u64, Option<String>),
    pub(super) frames: Vec<TimedFrame>,
    /// Whether the next video key frame is to be kept, and the one kept.
    pub(super) catch: (bool, Option<super::KeyFrame>),
}

impl Shared {
    fn fail(&mut self, e: impl ToString) {
        self.failures.0 += 1;
        self.failures.1.get_or_insert_with(|| e.to_string());
    }
}

struct Slot {
    kind: Kind,
    track_id: String,
    codec: MediaCodec,
    channels: u8,
    timeline: Timeline<Arc<[u8]>>,
    /// An Opus track's.
    concealer: Option<Concealer>,
    size: Option<(u32, u32)>,
    started: bool,
    ended: bool,
    /// The SSRC of its current segment.
    ssrc: Option<u32>,
    /// From the segment's last sender report: an extended RTP time and the sender's clock
    /// then (µs).
    sender: Option<(u64, i64)>,
}

impl Slot {
    fn spec(&self) -> StreamSpec {
        match self.kind {
            Kind::Audio => StreamSpec::audio(self.codec, self.channels),
            Kind::Video => StreamSpec {
                codec: self.codec,
                channels: 0,
                width: self.size.map_or(0, |s| s.0),
                height: self.size.map_or(0, |s| s.1),
                codec_private: self.timeline.depacketizer().codec_private(),
            },
        }
    }
}

struct OutFile {
    name: FileName,
    path: PathBuf,
    /// `None` once writing failed: the file is closed as it is.
    writer: Option<Writer>,
    kinds: &'static [Kind],
    zero_us: i64,
    end_us: i64,
}

impl OutFile {
    /// Closes the file and hands it over for upload. A file that failed is handed over all
    /// the same: what it holds stays playable.
    fn hand_over(self, shared: &mut Shared) {
        if let Some(Err(e)) = self.writer.map(Writer::finish) {
            warn!(error = %e, "cannot finish a file");
            shared.fail(e);
        }
        shared.finished.push(FinishedFile {
            path: self.path,
            filename: self.name,
            start_time: Timestamp::from_unix_nanos(self.zero_us * 1000),
            end_time: Timestamp::from_unix_nanos(self.end_us * 1000),
            layer: shared.plan.layer.clone(),
        });
    }
}

/// A participant session's group of tracks.
pub(super) struct Group {
    participant: Participant,
    screen: bool,
    slots: Vec<Slot>,
    ignored: HashSet<String>,
    first_seen: Instant,
    /// Arrival of the group's first packet (wall clock, µs): time zero of its files.
    first_arrival_us: Option<i64>,
    pending: Vec<(Kind, TimedFrame)>,
    files: Option<Vec<OutFile>>,
    /// The current segments' video has been aligned to their audio.
    aligned: bool,
}

impl Group {
    pub(super) fn new(participant: Participant, screen: bool) -> Self {
        Self {
            participant,
            screen,
            slots: Vec::new(),
            ignored: HashSet::new(),
            first_seen: Instant::now(),
            first_arrival_us: None,
            pending: Vec::new(),
            files: None,
            aligned: false,
        }
    }

    /// Takes a packet of one of the group's tracks; true if that track needs a key frame.
    pub(super) fn packet(&mut self, p: &Packet, shared: &mut Shared) -> bool {
        let Some(index) = self.slot_for(p, shared) else {
            return false;
        };
        let arrival_us = p.arrival_wall.unix_nanos() / 1000;
        self.first_arrival_us.get_or_insert(arrival_us);
        let slot = &mut self.slots[index];
        if slot.ssrc != Some(p.ssrc) {
            // A new segment is anchored anew: it needs aligning again.
            slot.ssrc = Some(p.ssrc);
            slot.sender = None;
            self.aligned = false;
        }
        if let Some((ntp, rtp)) = p.sender_report {
            // The report's RTP time, extended like the packet's.
            let rtp_time = p.rtp_time as i64 + i64::from(rtp.wrapping_sub(p.timestamp) as i32);
            slot.sender = Some((rtp_time.max(0) as u64, ntp.unix_nanos() / 1000));
        }
        slot.timeline.push(p.timed(), &mut shared.frames);
        let wanted = slot.timeline.take_keyframe_wanted();
        self.route(index, shared);
        self.align();
        self.open_when_ready(shared);
        wanted
    }

    /// Once both tracks have a sender report: moves the video to where the sender's clock
    /// puts it against the audio (with the frames waiting for the files, if they are not
    /// open yet).
    fn align(&mut self) {
        if self.aligned {
            return;
        }
        let slot = |kind| self.slots.iter().position(|s| s.kind == kind);
        let (Some(audio), Some(video)) = (slot(Kind::Audio), slot(Kind::Video)) else {
            return;
        };
        let offset = |s: &Slot| {
            s.sender
                .and_then(|(rtp, us)| s.timeline.offset_from_sender(rtp, us))
        };
        let (Some(audio_offset), Some(video_offset)) =
            (offset(&self.slots[audio]), offset(&self.slots[video]))
        else {
            return;
        };
        self.aligned = true;
        let shift = audio_offset - video_offset;
        if shift.abs() > MAX_ALIGN_US {
            warn!(user_session_id = %self.participant.user_session_id, shift_ms = shift / 1000,
                  "sender reports disagree with arrival times: video left as it arrived");
            return;
        }
        let waiting = self.files.is_none();
        if waiting {
            for (_, frame) in self.pending.iter_mut().filter(|(k, _)| *k == Kind::Video) {
                frame.pts_us += shift;
            }
        }
        self.slots[video].timeline.shift(shift, waiting);
        info!(user_session_id = %self.participant.user_session_id, shift_ms = shift / 1000,
              before_files = waiting, "video aligned to audio by sender reports");
    }

    /// Opens the files once every kind they need has started and, if the group has both,
    /// the video is aligned to the audio.
    fn open_when_ready(&mut self, shared: &mut Shared) {
        if self.files.is_some() {
            return;
        }
        let has = |k: Kind| self.slots.iter().any(|s| s.kind == k);
        let aligned = self.aligned || !(has(Kind::Audio) && has(Kind::Video));
        if aligned && self.all_started(shared) {
            self.open(shared);
        }
    }

    /// The slot of `p`'s track, made if it is new; `None` for a track that is not recorded.
    fn slot_for(&mut self, p: &Packet, shared: &Shared) -> Option<usize> {
        let track = &p.track;
        if let Some(i) = self.slots.iter().position(|s| s.track_id == track.track_id) {
            return Some(i);
        }
        if self.ignored.contains(&track.track_id) {
            return None;
        }
        let kind = Kind::of_audio(track.track_type.is_audio());
        if !needed_kinds(&shared.plan.outputs, self.screen).contains(&kind) {
            // No file asked for holds it.
            self.ignored.insert(track.track_id.clone());
            return None;
        }
        let codec = MediaCodec::from_name(&track.codec.name);
        let existing = self.slots.iter().position(|s| s.kind == kind);
        match (codec, existing) {
            (Some(codec), Some(i)) if self.slots[i].codec == codec => {
                // The same kind again (the publisher replaced its track): it carries on in
                // the same streams, as a new segment.
                let slot = &mut self.slots[i];
                info!(old = %slot.track_id, new = %track.track_id, "track replaced");
                slot.track_id.clone_from(&track.track_id);
                slot.ended = false;
                Some(i)
            }
            (Some(codec), None) => {
                self.slots.push(Slot {
                    kind,
                    track_id: track.track_id.clone(),
                    codec,
                    channels: track.codec.channels,
                    timeline: Timeline::new(codec),
                    concealer: (codec == MediaCodec::Opus).then(Concealer::default),
                    size: None,
                    started: false,
                    ended: false,
                    ssrc: None,
                    sender: None,
                });
                Some(self.slots.len() - 1)
            }
            (codec, _) => {
                warn!(track_id = %track.track_id, codec = %track.codec.name,
                      supported = codec.is_some(), "track not recorded: its codec cannot join the files");
                self.ignored.insert(track.track_id.clone());
                None
            }
        }
    }

    /// Sends the frames in `shared.frames`, of slot `index`, where they go.
    fn route(&mut self, index: usize, shared: &mut Shared) {
        // The scratch buffer goes back when done, to be reused.
        let mut frames = std::mem::take(&mut shared.frames);
        let slot = &mut self.slots[index];
        let kind = slot.kind;
        if let Some(c) = &mut slot.concealer {
            c.conceal(&mut frames);
        }
        for frame in frames.drain(..) {
            if kind == Kind::Video && frame.keyframe {
                slot.size = frame_size(slot.codec, &frame.data).or(slot.size);
                if std::mem::take(&mut shared.catch.0) {
                    shared.catch.1 = Some(super::KeyFrame {
                        codec: slot.codec,
                        pts_us: frame.pts_us,
                        data: frame.data.clone(),
                    });
                }
            }
            slot.started = true;
            match &mut self.files {
                None => self.pending.push((kind, frame)),
                Some(files) => {
                    if !files.iter().any(|f| f.kinds.contains(&kind))
                        && let Some(content) = late_file(&shared.plan.outputs, self.screen, kind)
                    {
                        let spec = [slot.spec()];
                        if let Some(f) = open_file(
                            &self.participant,
                            self.screen,
                            content,
                            &spec,
                            frame.pts_us,
                            shared,
                        ) {
                            files.push(f);
                        }
                    }
                    write(files, kind, &frame, shared);
                }
            }
        }
        shared.frames = frames;
    }

    /// Opens the files once [`HOLD`] has passed since the group's first packet, or
    /// [`ALIGN_HOLD`] if every track they need has started.
    pub(super) fn tick(&mut self, shared: &mut Shared) {
        if self.files.is_some() || !self.slots.iter().any(|s| s.started) {
            return;
        }
        let waited = self.first_seen.elapsed();
        if waited >= HOLD || (waited >= ALIGN_HOLD && self.all_started(shared)) {
            self.open(shared);
        }
    }

    /// Whether every kind the group's files need has given a first frame.
    fn all_started(&self, shared: &Shared) -> bool {
        needed_kinds(&shared.plan.outputs, self.screen)
            .iter()
            .all(|k| self.slots.iter().any(|s| s.kind == *k && s.started))
    }

    /// Marks `track_id` ended; true if it was the group's last live track.
    pub(super) fn track_ended(&mut self, track_id: &str, shared: &mut Shared) -> bool {
        if let Some(i) = self.slots.iter().position(|s| s.track_id == track_id) {
            self.slots[i].timeline.finish(&mut shared.frames);
            self.route(i, shared);
            self.slots[i].ended = true;
            self.open_when_ready(shared);
        }
        self.slots.iter().all(|s| s.ended)
    }

    /// Flushes every track and closes the files.
    pub(super) fn close(mut self, shared: &mut Shared) {
        for i in 0..self.slots.len() {
            self.slots[i].timeline.finish(&mut shared.frames);
            self.route(i, shared);
        }
        if self.files.is_none() {
            self.open(shared);
        }
        for slot in &self.slots {
            let s = slot.timeline.stats();
            let concealed = slot.concealer.as_ref().map_or(0, Concealer::concealed);
            info!(track_id = %slot.track_id, packets = s.packets, lost = s.lost, late = s.late,
                  malformed = s.malformed, skipped_frames = s.skipped_frames, filled = s.filled,
                  concealed, "track recorded");
        }
        for f in self.files.take().unwrap_or_default() {
            f.hand_over(shared);
        }
    }

    /// Opens the files for the kinds that have started, and writes the frames that waited.
    fn open(&mut self, shared: &mut Shared) {
        let present: Vec<Kind> = [Kind::Audio, Kind::Video]
            .into_iter()
            .filter(|k| self.slots.iter().any(|s| s.kind == *k && s.started))
            .collect();
        let mut files = Vec::new();
        for content in files_for(&shared.plan.outputs, self.screen, &present) {
            let specs: Vec<StreamSpec> = content
                .kinds()
                .iter()
                .filter_map(|k| self.slots.iter().find(|s| s.kind == *k))
                .map(Slot::spec)
                .collect();
            // Every file starts when the participant's media did, even if a stream's first
            // frame (a video key frame) came later.
            let first = self
                .pending
                .iter()
                .filter(|(k, _)| content.kinds().contains(k))
                .map(|(_, f)| f.pts_us)
                .min();
            let Some(first) = first else { continue };
            let zero = self.first_arrival_us.map_or(first, |z| z.min(first));
            if let Some(f) = open_file(
                &self.participant,
                self.screen,
                content,
                &specs,
                zero,
                shared,
            ) {
                files.push(f);
            }
        }
        let mut pending = std::mem::take(&mut self.pending);
        pending.sort_by_key(|(_, f)| f.pts_us);
        for (kind, frame) in &pending {
            write(&mut files, *kind, frame, shared);
        }
        self.files = Some(files);
    }
}

/// Creates a file of `content` whose time zero is `zero_us`.
fn open_file(
    who: &Participant,
    screen: bool,
    content: Content,
    specs: &[StreamSpec],
    zero_us: i64,
    shared: &mut Shared,
) -> Option<OutFile> {
    let container = (shared.plan.container)(specs);
    let name =
        match shared
            .plan
            .naming
            .name(who, (screen, content.name()), zero_us / 1000, container)
        {
            Ok(name) => unique_name(name, &shared.used_names),
            Err(e) => {
                shared.fail(e);
                return None;
            }
        };
    let filename = match FileName::parse(name.clone()) {
        Ok(f) => f,
        Err(e) => {
            shared.fail(e);
            return None;
        }
    };
    shared.used_names.insert(name.clone());
    let path = shared.plan.dir.join(&name);
    match Writer::create(&path, container, specs) {
        Ok(writer) => Some(OutFile {
            name: filename,
            path,
            writer: Some(writer),
            kinds: content.kinds(),
            zero_us,
            end_us: zero_us,
        }),
        Err(e) => {
            warn!(error = %e, "cannot open a file");
            shared.fail(e);
            None
        }
    }
}

/// `name`, or if it is taken, `name` with `_2`, `_3`... before its extension.
fn unique_name(name: String, used: &HashSet<String>) -> String {
    if !used.contains(&name) {
        return name;
    }
    let (stem, ext) = name.rsplit_once('.').unwrap_or((&name, ""));
    (2..)
        .map(|n| format!("{stem}_{n}.{ext}"))
        .find(|c| !used.contains(c))
        .expect("some number is free")
}

/// Writes `frame` of `kind` to every file that has that kind. A file that fails is closed
/// as it is (what it holds stays playable) and takes no more frames.
fn write(files: &mut [OutFile], kind: Kind, frame: &TimedFrame, shared: &mut Shared) {
    for f in files {
        let Some(stream) = f.kinds.iter().position(|k| *k == kind) else {
            continue;
        };
        let Some(writer) = &mut f.writer else {
            continue;
        };
        let pts = (frame.pts_us - f.zero_us).max(0);
        match writer.write(stream, pts, frame.duration_us, &frame.data, frame.keyframe) {
            Ok(()) => f.end_us = f.end_us.max(frame.pts_us + frame.duration_us),
            Err(e) => {
                warn!(error = %e, "cannot write a frame; the file ends here");
                shared.fail(e);
                f.writer = None;
            }
        }
    }
}
