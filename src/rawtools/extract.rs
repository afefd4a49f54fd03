//! `extract-audio` and `extract-video`: for each selected participant session, the segments
//! of one kind (camera/microphone, or screen share) in recording order, through a timeline
//! into a Matroska file with no transcoding, streamed from the archive.
//!
//! - Time comes from RTP timestamps anchored at each segment's first arrival, as when
//!   recording live; lost packets and DTX silences inside a segment are filled with empty Opus
//!   packets (`fix_dtx`), and so are gaps between segments (`fill_gaps`). Holes of a few
//!   packets are then concealed (see [`Concealer`]): the only packets coded anew.
//! - Between video segments the last picture is held until the next segment's first: its
//!   duration spans the gap. Black frames would have to be encoded in each codec (VP8, VP9,
//!   H.264, AV1) and would break the rule that nothing is transcoded; a held picture is what a
//!   viewer of the call saw, and decodes with no new parameter sets.
//! - Files are written as `<name>.partial` and renamed when complete; a failure removes them.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, Seek};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use super::av_file::{self, AvFile, MediaFilter, Muxed};
pub use super::selection::{ExtractError, Extracted, Fill, Kind, Selection, check_selection};
use crate::domain::names;
use crate::mux::{Concealer, Container, StreamSpec, Writer};
use crate::rtp::archive::{Archive, ArchiveError, SegmentFiles, SessionFiles};
use crate::rtp::extend::Extender;
use crate::rtp::rtpdump::{DumpError, RtpHeader, RtpdumpReader};
use crate::rtp::timeline::{self, TimelineOptions};
use crate::rtp::{MediaCodec, TimedFrame, Timeline, frame_size};

/// One output file: a participant session's segments of one kind and source, in order.
struct Plan<'a> {
    session: &'a SessionFiles,
    screen: bool,
    codec: MediaCodec,
    channels: u8,
    segments: Vec<&'a SegmentFiles>,
    name: String,
    /// A video file's audio-and-video companion's name.
    av_name: Option<String>,
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
            let name = |content| {
                names::individual_file(
                    (&m.call.call_type, &m.call.call_id),
                    &m.participant_id,
                    &m.user_session_id,
                    screen,
                    content,
                    call_ms,
                )
            };
            plans.push(Plan {
                session,
                screen,
                codec,
                channels: first.sdp.channels.max(1),
                name: name(match kind {
                    Kind::Audio => "audio_only",
                    Kind::Video => "video_only",
                }),
                av_name: (kind == Kind::Video).then(|| name("audio_video")),
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
    Ok(run(archive, selection, kinds, fill, out_dir, None, &mut |_| {})?.tracks)
}

/// Everything [`extract_av`] wrote.
#[derive(Debug)]
pub struct Pass {
    /// The audio-only and video-only files.
    pub tracks: Vec<Extracted>,
    /// The audio-and-video files.
    pub audio_video: Vec<Muxed>,
}

/// Writes the audio and video files `selection` asks for into `out_dir`, and the
/// audio-and-video file of each session (of the sources `media` names) that has both into
/// `av_dir`; `audio_done` gets the audio files as soon as they are all written.
///
/// A video file whose session's audio is complete when its first frame comes (as in
/// archives with their audio first, as reel packs them) is combined with that audio as it is
/// written; the others are combined from the two files after the pass.
pub fn extract_av(
    archive: &Archive,
    selection: &Selection,
    fill: Fill,
    out_dir: &Path,
    (media, av_dir): (MediaFilter, &Path),
    audio_done: &mut dyn FnMut(&[Extracted]),
) -> Result<Pass, ExtractError> {
    let kinds = [Kind::Audio, Kind::Video];
    let mut pass = run(
        archive,
        selection,
        &kinds,
        fill,
        out_dir,
        Some((media, av_dir)),
        audio_done,
    )?;
    let of_kind = |kind| pass.tracks.iter().filter(move |x| x.kind == kind).cloned();
    let audio: Vec<Extracted> = of_kind(Kind::Audio).collect();
    // The video files the pass could not combine as it went.
    let uncombined: Vec<Extracted> = of_kind(Kind::Video)
        .filter(|v| {
            !pass
                .audio_video
                .iter()
                .any(|m| m.session_id == v.session_id && m.screenshare == v.screenshare)
        })
        .collect();
    let later = av_file::combine(archive, &audio, &uncombined, media, av_dir)?;
    pass.audio_video.extend(later);
    Ok(pass)
}

/// One pass over the archive: the files `kinds` of `selection`, and, with `av`, their
/// audio-and-video companions where the audio is ready in time.
fn run(
    archive: &Archive,
    selection: &Selection,
    kinds: &[Kind],
    fill: Fill,
    out_dir: &Path,
    av: Option<(MediaFilter, &Path)>,
    audio_done: &mut dyn FnMut(&[Extracted]),
) -> Result<Pass, ExtractError> {
    check_selection(archive, selection)?;
    let mut plans = Vec::new();
    for &kind in kinds {
        self::plans(archive, selection, kind, &mut plans)?;
    }
    for dir in std::iter::once(out_dir).chain(av.map(|(_, d)| d)) {
        std::fs::create_dir_all(dir).map_err(|source| ExtractError::Output {
            dir: dir.display().to_string(),
            source,
        })?;
    }
    let mut pass = Streaming {
        files: plans
            .iter()
            .map(|p| Some(TrackFile::new(p, fill, out_dir)))
            .collect(),
        done: vec![None; plans.len()],
        audio_video: Vec::new(),
        plans: &plans,
        av,
        audio_done,
        audio_told: false,
        early: BTreeMap::new(),
        failure: None,
    };
    let result = pass.stream(archive);
    let mut failure = result.err();
    for (i, file) in pass.files.iter_mut().enumerate() {
        let Some(f) = file.take() else { continue };
        if failure.is_some() {
            f.discard();
        } else if let Some(segment) = plans[i].segments.get(f.next_segment) {
            // Archives that put their descriptions first are only checked now.
            failure = Some(ArchiveError::MissingDump(segment.dump.clone()).into());
            f.discard();
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(Pass {
            tracks: pass.done.into_iter().flatten().collect(),
            audio_video: pass.audio_video,
        }),
    }
}

/// A pass under way: each planned file, fed its dumps in its segments' order (a segment met
/// before its turn is copied to a temporary file outside the output, and fed when its turn
/// comes), and finished as soon as its last segment is read.
struct Streaming<'p, 'a, 'f> {
    plans: &'p [Plan<'a>],
    files: Vec<Option<TrackFile>>,
    done: Vec<Option<Extracted>>,
    audio_video: Vec<Muxed>,
    av: Option<(MediaFilter, &'f Path)>,
    audio_done: &'f mut dyn FnMut(&[Extracted]),
    audio_told: bool,
    early: BTreeMap<(usize, usize), File>,
    failure: Option<ExtractError>,
}

impl Streaming<'_, '_, '_> {
    fn stream(&mut self, archive: &Archive) -> Result<(), ExtractError> {
        // Which file and segment each dump feeds.
        let mut feeds: HashMap<&str, (usize, usize)> = HashMap::new();
        for (i, plan) in self.plans.iter().enumerate() {
            for (j, s) in plan.segments.iter().enumerate() {
                feeds.insert(s.dump.as_str(), (i, j));
            }
        }
        self.tell_audio_done();
        archive.read_dumps(&mut |name, r| {
            // A dump met again (an archive may hold an entry twice) is left.
            let Some((i, j)) = feeds.remove(name) else {
                return Ok(ControlFlow::Continue(()));
            };
            let outcome = if self.files[i].as_ref().is_some_and(|f| f.next_segment == j) {
                self.feed(i, r)
            } else {
                tempfile::tempfile()
                    .and_then(|mut f| std::io::copy(r, &mut f).map(|_| f))
                    .map(|f| drop(self.early.insert((i, j), f)))
                    .map_err(|source| temp_error(name, source))
            };
            if let Err(e) = outcome {
                self.failure = Some(e);
                return Ok(ControlFlow::Break(()));
            }
            // Past the last dump wanted, the rest of the archive is not read.
            Ok(if feeds.is_empty() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        })?;
        self.failure.take().map_or(Ok(()), Err)
    }

    /// Feeds file `i` its next segment from `r`, then the segments that came early and are
    /// now due, and finishes it after its last.
    fn feed(&mut self, i: usize, r: &mut dyn BufRead) -> Result<(), ExtractError> {
        self.prepare_companion(i);
        let plan = &self.plans[i];
        let Some(file) = self.files[i].as_mut() else {
            return Ok(());
        };
        file.feed(plan.segments[file.next_segment], r)?;
        while let Some(mut early) = self.early.remove(&(i, file.next_segment)) {
            let segment = plan.segments[file.next_segment];
            early
                .rewind()
                .map_err(|source| temp_error(&segment.dump, source))?;
            file.feed(segment, &mut BufReader::new(early))?;
        }
        if file.next_segment < plan.segments.len() {
            return Ok(());
        }
        let file = self.files[i].take().expect("fed just now");
        let (extracted, muxed) = file.finish(plan)?;
        self.done[i] = extracted;
        self.audio_video.extend(muxed);
        self.tell_audio_done();
        Ok(())
    }

    /// Before a video file's first segment: if its session's audio file is complete, the
    /// file is written with an audio-and-video companion.
    fn prepare_companion(&mut self, i: usize) {
        let (Some((media, dir)), Some(file)) = (self.av, self.files[i].as_mut()) else {
            return;
        };
        let plan = &self.plans[i];
        if plan.codec.is_audio() || file.next_segment > 0 || !media.takes(plan.screen) {
            return;
        }
        let audio = self.plans.iter().zip(&self.done).find_map(|(p, done)| {
            let same = p.codec.is_audio()
                && p.screen == plan.screen
                && std::ptr::eq(p.session, plan.session);
            Some((p, done.as_ref()?)).filter(|_| same)
        });
        if let (Some((p, audio)), Some(name)) = (audio, &plan.av_name) {
            file.companion = Some(Companion::Pending {
                audio: audio.clone(),
                audio_spec: StreamSpec::audio(p.codec, p.channels),
                path: dir.join(name),
            });
        }
    }

    /// Gives the audio files to `audio_done` once every one is finished.
    fn tell_audio_done(&mut self) {
        let pending = self
            .plans
            .iter()
            .zip(&self.files)
            .any(|(p, f)| p.codec.is_audio() && f.is_some());
        if self.audio_told || pending {
            return;
        }
        self.audio_told = true;
        let audio: Vec<Extracted> = self
            .done
            .iter()
            .flatten()
            .filter(|x| x.kind == Kind::Audio)
            .cloned()
            .collect();
        (self.audio_done)(&audio);
    }
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
    /// An Opus track's.
    concealer: Option<Concealer>,
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
    companion: Option<Companion>,
}

/// A video file's audio-and-video companion: to be started at its first frame, or being
/// written.
enum Companion {
    Pending {
        audio: Extracted,
        audio_spec: StreamSpec,
        path: PathBuf,
    },
    Writing(AvFile),
}

impl TrackFile {
    fn new(plan: &Plan<'_>, fill: Fill, out_dir: &Path) -> Self {
        let path = out_dir.join(&plan.name);
        Self {
            timeline: Timeline::with_options(
                plan.codec,
                TimelineOptions::offline(plan.codec, fill.dtx, fill.gaps),
            ),
            concealer: (plan.codec == MediaCodec::Opus).then(Concealer::default),
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
            companion: None,
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
        let report = segment
            .segment
            .first_rtcp_rtp_timestamp
            .zip(segment.segment.first_rtcp_ntp_timestamp);
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
            // Known from the segment's first packet, before its first frame is written.
            if let (None, Some((rtp, ntp_ms))) = (self.sender_offset_us, report) {
                let mut probe = ts;
                let rtp = probe.extend(u64::from(rtp));
                self.sender_offset_us = self.timeline.offset_from_sender(rtp, ntp_ms * 1000);
            }
            self.write_frames()?;
        }
        tracing::debug!(
            dump = %segment.dump,
            bytes = reader.position(),
            "segment read"
        );
        self.next_segment += 1;
        Ok(())
    }

    fn write_frames(&mut self) -> Result<(), ExtractError> {
        let mut frames = std::mem::take(&mut self.frames);
        if let Some(c) = &mut self.concealer {
            c.conceal(&mut frames);
        }
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
                if let Some(Companion::Pending {
                    audio,
                    audio_spec,
                    path,
                }) = self.companion.take()
                {
                    let av = AvFile::create(
                        path,
                        &audio,
                        audio_spec,
                        spec.clone(),
                        f.pts_us,
                        self.sender_offset_us,
                    )?;
                    self.companion = Some(Companion::Writing(av));
                }
                self.writer = Some(Writer::create(&self.partial, Container::Matroska, &[spec])?);
                self.zero_us = Some(f.pts_us);
            }
            // The TOC byte's stereo flag.
            self.stereo |= self.codec.is_audio() && f.data.first().is_some_and(|t| t & 0x04 != 0);
            let zero = self.zero_us.unwrap_or(f.pts_us);
            if let Some(w) = &mut self.writer {
                w.write(0, f.pts_us - zero, f.duration_us, &f.data, f.keyframe)?;
            }
            if let Some(Companion::Writing(av)) = &mut self.companion {
                av.write_video(f.pts_us - zero, f.duration_us, &f.data, f.keyframe)?;
            }
            self.end_us = self.end_us.max(f.pts_us + f.duration_us);
        }
        self.frames = frames;
        self.frames.clear();
        Ok(())
    }

    /// Writes what the timeline still holds, closes the file and its companion and puts
    /// them in place; `None` if no frame was ever written.
    fn finish(
        mut self,
        plan: &Plan<'_>,
    ) -> Result<(Option<Extracted>, Option<Muxed>), ExtractError> {
        self.timeline.finish(&mut self.frames);
        if let Err(e) = self.write_frames() {
            self.discard();
            return Err(e);
        }
        let Some(writer) = self.writer.take() else {
            return Ok((None, None));
        };
        let placed = writer.finish().map_err(ExtractError::from).and_then(|()| {
            std::fs::rename(&self.partial, &self.path).map_err(|source| ExtractError::Output {
                dir: self.path.display().to_string(),
                source,
            })
        });
        if let Err(e) = placed {
            let _ = std::fs::remove_file(&self.partial);
            if let Some(Companion::Writing(av)) = self.companion {
                av.discard();
            }
            return Err(e);
        }
        let muxed = match self.companion.take() {
            Some(Companion::Writing(av)) => Some(av.finish()?),
            _ => None,
        };
        let stats = self.timeline.stats();
        let concealed = self.concealer.as_ref().map_or(0, Concealer::concealed);
        tracing::debug!(
            file = %self.path.display(),
            segments = plan.segments.len(),
            packets = stats.packets,
            lost = stats.lost,
            late = stats.late,
            malformed = stats.malformed,
            skipped_frames = stats.skipped_frames,
            filled = stats.filled,
            concealed,
            "written"
        );
        let m = &plan.session.metadata;
        let extracted = Extracted {
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
            concealed,
            stereo: self.stereo,
        };
        Ok((Some(extracted), muxed))
    }

    /// Removes what was written.
    fn discard(mut self) {
        drop(self.writer.take());
        let _ = std::fs::remove_file(&self.partial);
        if let Some(Companion::Writing(av)) = self.companion {
            av.discard();
        }
    }
}
