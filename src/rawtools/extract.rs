//! `extract-audio` and `extract-video`: for each selected participant session, the segments
//! of one kind (camera/microphone, or screen share) in recording order, through a timeline
//! into a Matroska file with no transcoding, streamed from the archive.
//!
//! - Time comes from RTP timestamps anchored at each segment's first arrival, as when
//!   recording live; lost packets and DTX silences inside a segment are filled with empty Opus
//!   packets (`fix_dtx`), and so are gaps between segments (`fill_gaps`).
//! - Between video segments the last picture is held until the next segment's first: its
//!   duration spans the gap. Black frames would have to be encoded in each codec (VP8, VP9,
//!   H.264, AV1) and would break the rule that nothing is transcoded; a held picture is what a
//!   viewer of the call saw, and decodes with no new parameter sets.
//! - Files are written as `<name>.partial` and renamed when complete; a failure removes them.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, Seek};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::mux::{Container, MuxError, StreamSpec, Writer};
use crate::recorders::individual;
use crate::rtp::archive::{Archive, ArchiveError, SegmentFiles, SessionFiles};
use crate::rtp::extend::Extender;
use crate::rtp::rtpdump::{DumpError, RtpHeader, RtpdumpReader};
use crate::rtp::timeline::{self, TimelineOptions};
use crate::rtp::{MediaCodec, TimedFrame, Timeline, frame_size};

/// Which participants' tracks a command works on: everyone, or one user, participant
/// session or track.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Only this user's sessions.
    pub user_id: Option<String>,
    /// Only this participant session.
    pub session_id: Option<String>,
    /// Only the segments of this track.
    pub track_id: Option<String>,
}

/// The kind of media a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Microphone or screen-share audio.
    Audio,
    /// Camera or screen share.
    Video,
}

/// What to fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fill {
    /// Gaps between segments: silence, or the last picture held.
    pub gaps: bool,
    /// Lost audio and DTX silences inside a segment.
    pub dtx: bool,
}

/// Why extracting failed.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The archive could not be read.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// An id the selection names is not in the archive.
    #[error(
        "no {what} {id:?} in this archive (`reel raw-recording list-tracks --format {list}` lists them)"
    )]
    UnknownId {
        /// `user`, `session` or `track`.
        what: &'static str,
        /// The id given.
        id: String,
        /// The listing that shows the ids.
        list: &'static str,
    },
    /// A segment's codec is one reel cannot put in a file.
    #[error("{sdp}: codec {codec:?} is not one of opus, VP8, VP9, H264, AV1")]
    UnknownCodec {
        /// The segment's `.sdp` entry.
        sdp: String,
        /// The codec named.
        codec: String,
    },
    /// A dump that cannot be read.
    #[error("{dump}: {source}")]
    Dump {
        /// The dump's entry.
        dump: String,
        /// Why.
        source: DumpError,
    },
    /// The output directory cannot be written.
    #[error("cannot write to {dir}: {source}")]
    Output {
        /// The directory.
        dir: String,
        /// Why.
        source: std::io::Error,
    },
    /// Writing a file failed.
    #[error(transparent)]
    Mux(#[from] MuxError),
}

/// A file written.
#[derive(Clone, Debug, Serialize)]
pub struct Extracted {
    /// Where it is.
    pub path: PathBuf,
    /// The user id.
    pub user_id: String,
    /// The participant session.
    pub session_id: String,
    /// What it holds.
    pub kind: Kind,
    /// Whether it is a screen share's.
    pub screenshare: bool,
    /// Its length in seconds.
    pub duration_s: f64,
    /// Wall-clock time of its first frame, unix µs.
    pub start_us: i64,
    /// How much later than the sender's clock (its first sender report) the file puts its
    /// frames, if the metadata has a report: what aligns audio and video.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender_offset_us: Option<i64>,
    /// Packets read, lost and filled.
    pub packets: u64,
    /// Packets never received.
    pub lost: u64,
    /// Empty audio packets put in gaps.
    pub filled: u64,
    /// Audio: whether any packet was coded in stereo (browsers send mono).
    pub stereo: bool,
}

/// One output file: a participant session's segments of one kind and source, in order.
struct Plan<'a> {
    session: &'a SessionFiles,
    screen: bool,
    codec: MediaCodec,
    channels: u8,
    segments: Vec<&'a SegmentFiles>,
    name: String,
}

/// Checks that the ids `selection` names exist in `archive`.
pub fn check_selection(archive: &Archive, selection: &Selection) -> Result<(), ExtractError> {
    let sessions = || archive.sessions.iter();
    let checks = [
        (&selection.user_id, "user", "users"),
        (&selection.session_id, "session", "sessions"),
        (&selection.track_id, "track", "tracks"),
    ];
    for (id, what, list) in checks {
        let Some(id) = id else { continue };
        let found = match what {
            "user" => sessions().any(|s| &s.metadata.participant_id == id),
            "session" => sessions().any(|s| &s.metadata.user_session_id == id),
            _ => sessions()
                .flat_map(|s| &s.segments)
                .any(|f| &f.segment.track_id == id),
        };
        if !found {
            return Err(ExtractError::UnknownId {
                what,
                id: id.clone(),
                list,
            });
        }
    }
    Ok(())
}

/// The files `selection` asks for of `kind`, one per participant session and source.
fn plans<'a>(
    archive: &'a Archive,
    selection: &Selection,
    kind: Kind,
    plans: &mut Vec<Plan<'a>>,
) -> Result<(), ExtractError> {
    let call_ms = super::call_start_ms(archive);
    for session in &archive.sessions {
        let m = &session.metadata;
        if selection
            .user_id
            .as_ref()
            .is_some_and(|u| u != &m.participant_id)
            || selection
                .session_id
                .as_ref()
                .is_some_and(|s| s != &m.user_session_id)
        {
            continue;
        }
        for screen in [false, true] {
            let mut segments: Vec<&SegmentFiles> = session
                .segments
                .iter()
                .filter(|f| {
                    let t = f.segment.track_type;
                    t.is_audio() == (kind == Kind::Audio)
                        && t.is_screen() == screen
                        && selection
                            .track_id
                            .as_ref()
                            .is_none_or(|id| id == &f.segment.track_id)
                })
                .collect();
            segments.sort_by_key(|f| f.segment.first_rtp_unix_timestamp);
            let Some(first) = segments.first().copied() else {
                continue;
            };
            // A file holds one codec: segments in another (a camera republished with a
            // different codec) are left out.
            segments.retain(|f| f.sdp.name.eq_ignore_ascii_case(&first.sdp.name));
            let codec = MediaCodec::from_name(&first.sdp.name).ok_or_else(|| {
                ExtractError::UnknownCodec {
                    sdp: first.dump.replace(".rtpdump", ".sdp"),
                    codec: first.sdp.name.clone(),
                }
            })?;
            let content = match kind {
                Kind::Audio => "audio_only",
                Kind::Video => "video_only",
            };
            plans.push(Plan {
                session,
                screen,
                codec,
                channels: first.sdp.channels.max(1),
                name: individual::file_name(
                    (&m.call.call_type, &m.call.call_id),
                    &m.participant_id,
                    &m.user_session_id,
                    screen,
                    content,
                    call_ms,
                ),
                segments,
            });
        }
    }
    Ok(())
}

/// Writes the files of each of `kinds` that `selection` asks for into `out_dir`, from one
/// pass over the archive.
pub fn extract(
    archive: &Archive,
    selection: &Selection,
    kinds: &[Kind],
    fill: Fill,
    out_dir: &Path,
) -> Result<Vec<Extracted>, ExtractError> {
    check_selection(archive, selection)?;
    let mut plans = Vec::new();
    for &kind in kinds {
        self::plans(archive, selection, kind, &mut plans)?;
    }
    std::fs::create_dir_all(out_dir).map_err(|source| ExtractError::Output {
        dir: out_dir.display().to_string(),
        source,
    })?;
    let mut files: Vec<TrackFile> = plans
        .iter()
        .map(|p| TrackFile::new(p, fill, out_dir))
        .collect();
    // Which file and segment each dump feeds.
    let mut feeds: HashMap<&str, (usize, usize)> = HashMap::new();
    for (i, plan) in plans.iter().enumerate() {
        for (j, s) in plan.segments.iter().enumerate() {
            feeds.insert(s.dump.as_str(), (i, j));
        }
    }
    let result = stream_dumps(archive, &plans, &mut files, &feeds);
    if let Err(e) = result {
        for f in files {
            f.discard();
        }
        return Err(e);
    }
    let mut done = Vec::new();
    let mut failure = None;
    for (plan, f) in plans.iter().zip(files) {
        match f.finish(plan) {
            Ok(Some(x)) => done.push(x),
            Ok(None) => {}
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    failure.map_or(Ok(done), Err)
}

/// Feeds every wanted dump to its file, in each file's segment order (a segment met before
/// its turn is copied to a temporary file outside the output, and fed when its turn comes).
fn stream_dumps(
    archive: &Archive,
    plans: &[Plan<'_>],
    files: &mut [TrackFile],
    feeds: &HashMap<&str, (usize, usize)>,
) -> Result<(), ExtractError> {
    let mut early: BTreeMap<(usize, usize), File> = BTreeMap::new();
    let mut failure: Option<ExtractError> = None;
    archive.read_dumps(&mut |name, r| {
        let Some(&(i, j)) = feeds.get(name) else {
            return Ok(());
        };
        if failure.is_some() {
            return Ok(());
        }
        let outcome = if files[i].next_segment == j {
            files[i].feed(plans[i].segments[j], r).and_then(|()| {
                // Segments that came early and are now due.
                while let Some(mut f) = early.remove(&(i, files[i].next_segment)) {
                    let j = files[i].next_segment;
                    let dump = &plans[i].segments[j].dump;
                    f.rewind().map_err(|source| temp_error(dump, source))?;
                    files[i].feed(plans[i].segments[j], &mut BufReader::new(f))?;
                }
                Ok(())
            })
        } else {
            tempfile::tempfile()
                .and_then(|mut f| std::io::copy(r, &mut f).map(|_| f))
                .map(|f| drop(early.insert((i, j), f)))
                .map_err(|source| temp_error(name, source))
        };
        if let Err(e) = outcome {
            failure = Some(e);
        }
        Ok(())
    })?;
    failure.map_or(Ok(()), Err)
}

fn temp_error(dump: &str, source: std::io::Error) -> ExtractError {
    ExtractError::Dump {
        dump: dump.to_owned(),
        source: DumpError::Io(source),
    }
}

/// A file being written from its segments.
struct TrackFile {
    timeline: Timeline<Vec<u8>>,
    codec: MediaCodec,
    channels: u8,
    partial: PathBuf,
    path: PathBuf,
    writer: Option<Writer>,
    /// Wall-clock time (µs) of the file's start, and of the end of its last frame.
    zero_us: Option<i64>,
    end_us: i64,
    frames: Vec<TimedFrame>,
    next_segment: usize,
    sender_offset_us: Option<i64>,
    stereo: bool,
}

impl TrackFile {
    fn new(plan: &Plan<'_>, fill: Fill, out_dir: &Path) -> Self {
        let path = out_dir.join(&plan.name);
        Self {
            timeline: Timeline::with_options(
                plan.codec,
                TimelineOptions::offline(plan.codec, fill.dtx, fill.gaps),
            ),
            codec: plan.codec,
            channels: plan.channels,
            partial: out_dir.join(format!("{}.partial", plan.name)),
            path,
            writer: None,
            zero_us: None,
            end_us: 0,
            frames: Vec::new(),
            next_segment: 0,
            sender_offset_us: None,
            stereo: false,
        }
    }

    /// Reads one segment's dump into the file.
    fn feed(&mut self, segment: &SegmentFiles, r: &mut dyn BufRead) -> Result<(), ExtractError> {
        let dump_error = |source| ExtractError::Dump {
            dump: segment.dump.clone(),
            source,
        };
        let mut reader = RtpdumpReader::new(r).map_err(dump_error)?;
        let start_us = reader
            .start()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64);
        if self.next_segment > 0 {
            self.timeline.new_segment(&mut self.frames);
            self.write_frames()?;
        }
        let (mut seq, mut ts) = (Extender::new(16), Extender::new(32));
        let mut buf = Vec::with_capacity(1500);
        while let Some(p) = reader.next_packet(&mut buf).map_err(dump_error)? {
            let Some((h, payload)) = RtpHeader::parse(&buf).filter(|_| !p.rtcp) else {
                continue;
            };
            if h.payload_type != segment.sdp.payload_type || payload.is_empty() {
                // Retransmissions, FEC or padding-only packets.
                continue;
            }
            self.timeline.push(
                timeline::Packet {
                    ssrc: h.ssrc,
                    seq: seq.extend(u64::from(h.seq)),
                    rtp_time: ts.extend(u64::from(h.timestamp)),
                    marker: h.marker,
                    payload: payload.to_vec(),
                    arrival_us: start_us + i64::from(p.offset_ms) * 1000,
                },
                &mut self.frames,
            );
            self.write_frames()?;
        }
        tracing::debug!(
            dump = %segment.dump,
            bytes = reader.position(),
            "segment read"
        );
        let report = segment
            .segment
            .first_rtcp_rtp_timestamp
            .zip(segment.segment.first_rtcp_ntp_timestamp);
        if let (None, Some((rtp, ntp_ms))) = (self.sender_offset_us, report) {
            self.sender_offset_us = self
                .timeline
                .offset_from_sender(ts.extend(u64::from(rtp)), ntp_ms * 1000);
        }
        self.next_segment += 1;
        Ok(())
    }

    fn write_frames(&mut self) -> Result<(), ExtractError> {
        let frames = std::mem::take(&mut self.frames);
        for f in &frames {
            if self.writer.is_none() {
                let spec = match self.codec.is_audio() {
                    true => StreamSpec::audio(self.codec, self.channels),
                    false => {
                        let (width, height) = frame_size(self.codec, &f.data).unwrap_or((0, 0));
                        StreamSpec {
                            codec: self.codec,
                            channels: 0,
                            width,
                            height,
                            codec_private: self.timeline.depacketizer().codec_private(),
                        }
                    }
                };
                self.writer = Some(Writer::create(&self.partial, Container::Matroska, &[spec])?);
                self.zero_us = Some(f.pts_us);
            }
            // The TOC byte's stereo flag.
            self.stereo |= self.codec.is_audio() && f.data.first().is_some_and(|t| t & 0x04 != 0);
            let zero = self.zero_us.unwrap_or(f.pts_us);
            if let Some(w) = &mut self.writer {
                w.write(0, f.pts_us - zero, f.duration_us, &f.data, f.keyframe)?;
            }
            self.end_us = self.end_us.max(f.pts_us + f.duration_us);
        }
        self.frames = frames;
        self.frames.clear();
        Ok(())
    }

    /// Writes what the timeline still holds, closes the file and puts it in place; `None`
    /// if no frame was ever written.
    fn finish(mut self, plan: &Plan<'_>) -> Result<Option<Extracted>, ExtractError> {
        self.timeline.finish(&mut self.frames);
        if let Err(e) = self.write_frames() {
            self.discard();
            return Err(e);
        }
        let Some(writer) = self.writer.take() else {
            return Ok(None);
        };
        let placed = writer.finish().map_err(ExtractError::from).and_then(|()| {
            std::fs::rename(&self.partial, &self.path).map_err(|source| ExtractError::Output {
                dir: self.path.display().to_string(),
                source,
            })
        });
        if let Err(e) = placed {
            let _ = std::fs::remove_file(&self.partial);
            return Err(e);
        }
        let stats = self.timeline.stats();
        tracing::debug!(
            file = %self.path.display(),
            segments = plan.segments.len(),
            packets = stats.packets,
            lost = stats.lost,
            late = stats.late,
            malformed = stats.malformed,
            skipped_frames = stats.skipped_frames,
            filled = stats.filled,
            "written"
        );
        let m = &plan.session.metadata;
        Ok(Some(Extracted {
            path: self.path,
            user_id: m.participant_id.clone(),
            session_id: m.user_session_id.clone(),
            kind: if self.codec.is_audio() {
                Kind::Audio
            } else {
                Kind::Video
            },
            screenshare: plan.screen,
            duration_s: (self.end_us - self.zero_us.unwrap_or(self.end_us)) as f64 / 1e6,
            start_us: self.zero_us.unwrap_or(0),
            sender_offset_us: self.sender_offset_us,
            packets: stats.packets,
            lost: stats.lost,
            filled: stats.filled,
            stereo: self.stereo,
        }))
    }

    /// Removes what was written.
    fn discard(mut self) {
        drop(self.writer.take());
        let _ = std::fs::remove_file(&self.partial);
    }
}
