//! The raw recorder: every packet of every track, as received, in one `.tar.gz` per call
//! session. Inside, `<user>/<user_session>/` holds an `.rtpdump` and a single-codec `.sdp` per
//! track segment (a new one whenever a track starts or changes SSRC) and one
//! `<user_session>_timing_metadata.json` per participant session.
//!
//! Dumps are written as packets arrive and flushed every second, and each participant's
//! metadata is rewritten then too, so a crash leaves readable dumps behind. The archive is
//! packed when the recording stops.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::worker::{self, Outlet};
use super::{FinishedFile, Port, Recorder, RecorderError, RecorderFactory, RecordingJob, Tracks};
use crate::bus::{BusMessage, Packet};
use crate::domain::{FileName, Timestamp, Track, TrackType, names};
use crate::rtp::metadata::{CallInfo, Dimension, Segment, Segments, TimingMetadata};
use crate::rtp::rtpdump::{
    DumpError, RtpHeader, RtpdumpReader, RtpdumpWriter, sender_report, whole_packets_len,
};
use crate::rtp::sdp::StreamSdp;
use crate::rtp::{MediaCodec, packet_frame_size};

/// How often dumps are flushed and metadata rewritten.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Longest directory name made from a user id.
const MAX_NAME: usize = 96;

/// Makes raw recorders.
pub struct RawFactory;

impl RecorderFactory for RawFactory {
    fn create(&self, job: &RecordingJob) -> Result<Box<dyn Recorder>, RecorderError> {
        Ok(Box::new(RawRecorder {
            audio_only: job.settings.raw_recording.audio_only,
        }))
    }

    /// Packs the dumps a crash left unpacked (they were flushed every second, and the
    /// metadata rewritten with them).
    fn recover(&self, dir: &Path, handed_over: &HashSet<String>) -> Vec<FinishedFile> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let root = entry.path();
            let Some(name) = root.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let archive = format!("{name}.tar.gz");
            if !root.is_dir() || !name.starts_with("raw_") || handed_over.contains(&archive) {
                continue;
            }
            repair(&root);
            let Some((start_time, end_time)) = recorded_span(&root) else {
                continue;
            };
            let (path, filename) = (dir.join(&archive), FileName::parse(archive));
            match (pack(&root, &path), filename) {
                (Ok(()), Ok(filename)) => {
                    let _ = std::fs::remove_dir_all(&root);
                    files.push(FinishedFile {
                        path,
                        filename,
                        start_time,
                        end_time,
                        layer: None,
                    });
                }
                (Err(e), _) => tracing::warn!(error = %e, "cannot pack a raw recording"),
                (_, Err(e)) => tracing::warn!(error = %e, "cannot pack a raw recording"),
            }
        }
        files
    }
}

/// Every file under `root`.
fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// Mends what a crash left under `root`: cuts off the packet it tore at the end of each
/// dump, then makes each metadata file agree with its dumps (which may hold a second more,
/// or a torn packet less, than the metadata last written said).
fn repair(root: &Path) {
    let files = files_under(root);
    for path in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rtpdump"))
    {
        if let Err(e) = trim_dump(path) {
            tracing::warn!(path = %path.display(), error = %e, "cannot trim a dump");
        }
    }
    for path in files.iter().filter(|p| is_metadata(p)) {
        if let Err(e) = reconcile_metadata(path) {
            tracing::warn!(path = %path.display(), error = %e, "cannot correct the metadata");
        }
    }
}

fn is_metadata(path: &Path) -> bool {
    path.to_string_lossy().ends_with("_timing_metadata.json")
}

/// Cuts a dump to its whole packets.
fn trim_dump(path: &Path) -> Result<(), DumpError> {
    let f = File::options().read(true).write(true).open(path)?;
    let whole = whole_packets_len(std::io::BufReader::new(&f))?;
    if whole < f.metadata()?.len() {
        f.set_len(whole)?;
    }
    Ok(())
}

/// Rewrites the packet count and last-packet fields of each segment in the metadata file at
/// `path` from the segment's dump.
fn reconcile_metadata(path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut meta: serde_json::Value = serde_json::from_slice(&std::fs::read(path)?)?;
    for kind in ["audio", "video"] {
        let Some(segments) = meta["segments"][kind].as_array_mut() else {
            continue;
        };
        for segment in segments {
            let Some(base) = segment["base_filename"].as_str() else {
                continue;
            };
            let clock_rate =
                StreamSdp::parse(&std::fs::read_to_string(dir.join(format!("{base}.sdp")))?)?
                    .clock_rate;
            let dump = File::open(dir.join(format!("{base}.rtpdump")))?;
            let mut reader = RtpdumpReader::new(std::io::BufReader::new(dump))?;
            let start_ms = unix_millis(reader.start());
            let (mut packets, mut last) = (0u64, None);
            let mut buf = Vec::new();
            while let Some(packet) = reader.next_packet(&mut buf)? {
                if let Some((header, _)) = RtpHeader::parse(&buf).filter(|_| !packet.rtcp) {
                    packets += 1;
                    last = Some((header.timestamp, start_ms + i64::from(packet.offset_ms)));
                }
            }
            segment["rtp_packets"] = packets.into();
            let (Some((timestamp, unix_ms)), Some(first_ts), Some(first_ms)) = (
                last,
                segment["first_rtp_rtp_timestamp"].as_u64(),
                segment["first_rtp_unix_timestamp"].as_i64(),
            ) else {
                continue;
            };
            let rtp_ms =
                i64::from(timestamp.wrapping_sub(first_ts as u32)) * 1000 / i64::from(clock_rate);
            segment["last_rtp_rtp_timestamp"] = timestamp.into();
            segment["last_rtp_unix_timestamp"] = unix_ms.into();
            segment["rtp_duration_ms"] = rtp_ms.into();
            segment["unix_duration_ms"] = (unix_ms - first_ms).into();
            segment["drift_ms"] = (unix_ms - first_ms - rtp_ms).into();
            if let Some(start_offset) = segment["start_offset_ms"].as_i64() {
                segment["end_offset_ms"] = (unix_ms - first_ms + start_offset).into();
            }
        }
    }
    let partial = path.with_extension("json.partial");
    std::fs::write(&partial, serde_json::to_vec_pretty(&meta)?)?;
    std::fs::rename(&partial, path)?;
    Ok(())
}

fn unix_millis(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The first and last packet times the metadata files under `root` give, if any.
fn recorded_span(root: &Path) -> Option<(Timestamp, Timestamp)> {
    let mut span: Option<(i64, i64)> = None;
    for path in files_under(root) {
        if !is_metadata(&path) {
            continue;
        }
        let Some(meta) = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        else {
            continue;
        };
        let segments = ["audio", "video"]
            .into_iter()
            .filter_map(|k| meta["segments"][k].as_array())
            .flatten();
        for s in segments {
            let (Some(first), Some(last)) = (
                s["first_rtp_unix_timestamp"].as_i64(),
                s["last_rtp_unix_timestamp"].as_i64(),
            ) else {
                continue;
            };
            span = Some(span.map_or((first, last), |(a, b)| (a.min(first), b.max(last))));
        }
    }
    let millis = |ms: i64| Timestamp::from_unix_nanos(ms.saturating_mul(1_000_000));
    span.map(|(first, last)| (millis(first), millis(last)))
}

struct RawRecorder {
    audio_only: bool,
}

impl Recorder for RawRecorder {
    fn tracks(&self) -> Tracks {
        let audio_only = self.audio_only;
        Box::new(move |t| !audio_only || t.track_type.is_audio())
    }

    fn run(self: Box<Self>, port: Port) -> BoxFuture<'static, Result<(), RecorderError>> {
        async move {
            let job = &port.job;
            let rec = &job.recording;
            let name = format!(
                "raw_{}_{}_{}",
                rec.cid.call_type,
                rec.cid.id,
                job.session_started_at.unix_millis()
            );
            let archive = RawArchive::new(job, job.work_dir.join(&name))?;
            let writing = Writing {
                archive,
                dir: job.work_dir.clone(),
                name,
            };
            worker::record(port, writing, "reel-raw").await
        }
        .boxed()
    }
}

/// A raw recording on its recorder's thread: the archive being written, and where it is
/// packed when the recording stops.
struct Writing {
    archive: RawArchive,
    dir: PathBuf,
    name: String,
}

impl worker::Writing for Writing {
    const TICK: Duration = FLUSH_EVERY;

    fn take(&mut self, m: BusMessage, out: &Outlet) -> Result<(), RecorderError> {
        self.archive.handle(m, &mut |t| out.ask_keyframe(t))
    }

    fn tick(&mut self, _: &Outlet) -> Result<(), RecorderError> {
        self.archive.flush()
    }

    fn finish(self, out: &Outlet) -> Result<(), RecorderError> {
        let Some((start_time, end_time)) = self.archive.finish()? else {
            tracing::info!("nothing was published: no archive");
            return Ok(());
        };
        let root = self.dir.join(&self.name);
        let path = self.dir.join(format!("{}.tar.gz", self.name));
        pack(&root, &path)?;
        // Once packed, the archive holds everything: the dumps' directory goes.
        std::fs::remove_dir_all(&root).map_err(|source| RecorderError::Io {
            context: format!("cannot remove {}", root.display()),
            source,
        })?;
        let filename = FileName::parse(format!("{}.tar.gz", self.name))
            .map_err(|e| RecorderError::Failed(e.to_string()))?;
        out.hand_over(FinishedFile {
            path,
            filename,
            start_time,
            end_time,
            layer: None,
        });
        Ok(())
    }
}

/// Packs `root` into a gzipped tar at `target`, with `root`'s name as the top directory.
/// The gzip stream stores rather than compresses: coded media does not compress (2% at
/// gzip's fastest level), and stored blocks make packing, and every later read of the
/// archive, several times faster.
///
/// The metadata and session descriptions come first (so says the gzip comment, and readers
/// open the archive without reading past them), then the audio dumps, then the video ones:
/// the audio, a fiftieth of the bytes, is read without reading the video.
pub fn pack(root: &Path, target: &Path) -> Result<(), RecorderError> {
    let io = |context: &str| {
        let context = format!("{context} {}", target.display());
        move |source| RecorderError::Io { context, source }
    };
    let file = File::create(target).map_err(io("cannot create"))?;
    let gz = flate2::GzBuilder::new()
        .comment(crate::rtp::archive::DESCRIPTIONS_FIRST)
        .write(BufWriter::new(file), flate2::Compression::none());
    let mut tar = tar::Builder::new(gz);
    let top = Path::new(root.file_name().unwrap_or_default());
    // In name order within each group, so that readers streaming the archive meet each
    // track's segments in the order they were recorded (their names are numbered).
    let group = |path: &Path| match path.file_name().and_then(|n| n.to_str()) {
        Some(n) if n.ends_with("audio.rtpdump") => 1,
        Some(n) if n.ends_with(".rtpdump") => 2,
        _ => 0,
    };
    let mut files = files_under(root);
    files.sort_by(|a, b| (group(a), a).cmp(&(group(b), b)));
    for path in files {
        let name = top.join(path.strip_prefix(root).unwrap_or(&path));
        tar.append_path_with_name(&path, name)
            .map_err(io("cannot write"))?;
    }
    let gz = tar.into_inner().map_err(io("cannot write"))?;
    gz.finish()
        .and_then(|mut w| w.flush())
        .map_err(io("cannot write"))?;
    Ok(())
}

/// A participant session's directory and segments.
struct Participant {
    dir: PathBuf,
    user_id: String,
    user_session_id: String,
    segments: Vec<Segment>,
    next_segment: u32,
    changed: bool,
}

/// A segment being written.
struct Open {
    /// Index into its participant's segments.
    index: usize,
    dump: RtpdumpWriter<BufWriter<File>>,
    clock_rate: u32,
    first_rtp_time: u64,
    first_arrival: Timestamp,
    last_sr: Option<(Timestamp, u32)>,
    packets: u32,
    octets: u32,
}

/// A raw recording being written: the dumps and metadata of one call session's tracks.
pub struct RawArchive {
    root: PathBuf,
    call: CallInfo,
    call_start: Timestamp,
    participants: HashMap<String, Participant>,
    /// The open segment of each track that has sent packets.
    open: HashMap<String, Open>,
    scratch: Vec<u8>,
}

impl RawArchive {
    /// Starts writing the recording of `job` into the directory `root`.
    pub fn new(job: &RecordingJob, root: PathBuf) -> Result<RawArchive, RecorderError> {
        std::fs::create_dir_all(&root).map_err(|source| RecorderError::Io {
            context: format!("cannot create {}", root.display()),
            source,
        })?;
        let rec = &job.recording;
        Ok(RawArchive {
            root,
            call: CallInfo {
                call_type: rec.cid.call_type.to_string(),
                call_id: rec.cid.id.to_string(),
                call_session_id: rec.session_id.to_string(),
                call_start_time: job.session_started_at.to_rfc3339(),
            },
            call_start: job.session_started_at,
            participants: HashMap::new(),
            open: HashMap::new(),
            scratch: Vec::with_capacity(1500),
        })
    }

    /// Writes what the bus delivered; `ask_keyframe` asks a track's publisher for a key
    /// frame (a video segment should start with one).
    pub fn handle(
        &mut self,
        m: BusMessage,
        ask_keyframe: &mut dyn FnMut(&str),
    ) -> Result<(), RecorderError> {
        match m {
            BusMessage::Track(_) => Ok(()),
            BusMessage::Packet(p) => self.packet(&p, ask_keyframe),
            BusMessage::Ended(track) => self.close(&track.track_id),
        }
    }

    fn packet(
        &mut self,
        p: &Packet,
        ask_keyframe: &mut dyn FnMut(&str),
    ) -> Result<(), RecorderError> {
        let track_id = &p.track.track_id;
        let restarted = self
            .open
            .get(track_id)
            .is_some_and(|o| self.participants_segment(&p.track, o).ssrc != p.ssrc);
        if restarted {
            self.close(track_id)?;
        }
        if !self.open.contains_key(track_id) {
            let open = self.open_segment(p)?;
            self.open.insert(track_id.clone(), open);
            if !p.track.track_type.is_audio() && !p.keyframe {
                ask_keyframe(track_id);
            }
        }
        let participant = self
            .participants
            .get_mut(p.track.participant.user_session_id.as_str())
            .expect("a segment's participant exists");
        let open = self.open.get_mut(track_id).expect("just opened");
        let meta = &mut participant.segments[open.index];
        let at = std::time::SystemTime::from(p.arrival_wall);
        if let Some(sr) = p.sender_report
            && open.last_sr != Some(sr)
        {
            open.last_sr = Some(sr);
            let (ntp, rtp) = sr;
            let report = sender_report(p.ssrc, ntp.into(), rtp, open.packets, open.octets);
            open.dump
                .rtcp(at, &report)
                .map_err(write_error(&meta.base_filename))?;
            meta.first_rtcp_rtp_timestamp.get_or_insert(rtp);
            meta.first_rtcp_ntp_timestamp
                .get_or_insert(ntp.unix_millis());
            meta.last_rtcp_rtp_timestamp = Some(rtp);
            meta.last_rtcp_ntp_timestamp = Some(ntp.unix_millis());
        }
        self.scratch.clear();
        RtpHeader {
            marker: p.marker,
            payload_type: p.payload_type,
            seq: p.seq as u16,
            timestamp: p.timestamp,
            ssrc: p.ssrc,
        }
        .write_packet(&p.payload, &mut self.scratch);
        open.dump
            .rtp(at, &self.scratch)
            .map_err(write_error(&meta.base_filename))?;
        open.packets = open.packets.wrapping_add(1);
        open.octets = open.octets.wrapping_add(p.payload.len() as u32);
        if p.keyframe {
            if meta.first_key_frame_offset_ms.is_none() {
                meta.first_key_frame_offset_ms =
                    Some(p.arrival_wall.since(open.first_arrival).as_millis() as i64);
            }
            let size = MediaCodec::from_name(&p.track.codec.name)
                .and_then(|codec| packet_frame_size(codec, &p.payload));
            if let Some((width, height)) = size
                && meta.max_frame_dimension.is_none_or(|d| {
                    u64::from(d.width) * u64::from(d.height) < u64::from(width) * u64::from(height)
                })
            {
                meta.max_frame_dimension = Some(Dimension { width, height });
            }
        }
        meta.rtp_packets += 1;
        meta.last_rtp_rtp_timestamp = p.timestamp;
        meta.last_rtp_unix_timestamp = p.arrival_wall.unix_millis();
        let rtp_ms = (p.rtp_time.saturating_sub(open.first_rtp_time)) * 1000
            / u64::from(open.clock_rate.max(1));
        meta.rtp_duration_ms = rtp_ms as i64;
        meta.unix_duration_ms = meta.last_rtp_unix_timestamp - meta.first_rtp_unix_timestamp;
        meta.drift_ms = meta.unix_duration_ms - meta.rtp_duration_ms;
        meta.end_offset_ms = meta.last_rtp_unix_timestamp - self.call_start.unix_millis();
        participant.changed = true;
        Ok(())
    }

    fn participants_segment(&self, track: &Track, open: &Open) -> &Segment {
        &self.participants[track.participant.user_session_id.as_str()].segments[open.index]
    }

    /// Starts a segment for the track of `p`, the participant's directory too if it is new.
    fn open_segment(&mut self, p: &Packet) -> Result<Open, RecorderError> {
        let track = &p.track;
        let who = &track.participant;
        let key = who.user_session_id.as_str().to_owned();
        if !self.participants.contains_key(&key) {
            let dir = self
                .root
                .join(names::component(who.user_id.as_str(), MAX_NAME))
                .join(names::component(&key, MAX_NAME));
            std::fs::create_dir_all(&dir).map_err(|source| RecorderError::Io {
                context: format!("cannot create {}", dir.display()),
                source,
            })?;
            self.participants.insert(
                key.clone(),
                Participant {
                    dir,
                    user_id: who.user_id.to_string(),
                    user_session_id: key.clone(),
                    segments: Vec::new(),
                    next_segment: 1,
                    changed: true,
                },
            );
        }
        let participant = self.participants.get_mut(&key).expect("just inserted");
        // Numbered first and of one width, so that no base name contains another.
        let kind = match track.track_type {
            TrackType::Audio => "audio",
            TrackType::Video => "video",
            TrackType::ScreenShare => "screenshare_video",
            TrackType::ScreenShareAudio => "screenshare_audio",
        };
        let base = format!(
            "{}_{:04}_{kind}",
            names::component(&key, MAX_NAME),
            participant.next_segment
        );
        participant.next_segment += 1;
        let video = !track.track_type.is_audio();
        let codec = &track.codec;
        let description = StreamSdp {
            video,
            payload_type: p.payload_type,
            name: codec.name.clone(),
            clock_rate: codec.clock_rate,
            channels: codec.channels,
            fmtp: codec.fmtp.clone(),
        }
        .render();
        let sdp_path = participant.dir.join(format!("{base}.sdp"));
        std::fs::write(&sdp_path, description).map_err(write_error(&base))?;
        let dump_path = participant.dir.join(format!("{base}.rtpdump"));
        let file = File::create(&dump_path).map_err(write_error(&base))?;
        let dump = RtpdumpWriter::new(BufWriter::new(file), p.arrival_wall.into())
            .map_err(write_error(&base))?;
        let first_ms = p.arrival_wall.unix_millis();
        participant.segments.push(Segment {
            base_filename: base,
            codec: format!("{}/{}", if video { "video" } else { "audio" }, codec.name),
            track_id: track.track_id.clone(),
            track_type: track.track_type,
            ssrc: p.ssrc,
            first_rtp_rtp_timestamp: p.timestamp,
            first_rtp_unix_timestamp: first_ms,
            last_rtp_rtp_timestamp: p.timestamp,
            last_rtp_unix_timestamp: first_ms,
            first_rtcp_rtp_timestamp: None,
            first_rtcp_ntp_timestamp: None,
            last_rtcp_rtp_timestamp: None,
            last_rtcp_ntp_timestamp: None,
            first_key_frame_offset_ms: None,
            max_frame_dimension: None,
            start_offset_ms: first_ms - self.call_start.unix_millis(),
            end_offset_ms: first_ms - self.call_start.unix_millis(),
            rtp_duration_ms: 0,
            unix_duration_ms: 0,
            drift_ms: 0,
            rtp_packets: 0,
        });
        participant.changed = true;
        Ok(Open {
            index: participant.segments.len() - 1,
            dump,
            clock_rate: codec.clock_rate,
            first_rtp_time: p.rtp_time,
            first_arrival: p.arrival_wall,
            last_sr: None,
            packets: 0,
            octets: 0,
        })
    }

    /// Ends the open segment of `track_id`, if any.
    fn close(&mut self, track_id: &str) -> Result<(), RecorderError> {
        if let Some(mut open) = self.open.remove(track_id) {
            open.dump.flush().map_err(write_error(track_id))?;
        }
        Ok(())
    }

    /// Flushes every dump and rewrites the metadata that changed.
    pub fn flush(&mut self) -> Result<(), RecorderError> {
        for (track_id, open) in &mut self.open {
            open.dump.flush().map_err(write_error(track_id))?;
        }
        for p in self.participants.values_mut().filter(|p| p.changed) {
            write_metadata(&self.call, p)?;
            p.changed = false;
        }
        Ok(())
    }

    /// Closes every segment and writes the metadata; the first and last packet times, or
    /// `None` if nothing was recorded.
    pub fn finish(mut self) -> Result<Option<(Timestamp, Timestamp)>, RecorderError> {
        let tracks: Vec<String> = self.open.keys().cloned().collect();
        for t in tracks {
            self.close(&t)?;
        }
        for p in self.participants.values_mut() {
            write_metadata(&self.call, p)?;
        }
        let segments = self.participants.values().flat_map(|p| &p.segments);
        let first = segments.clone().map(|s| s.first_rtp_unix_timestamp).min();
        let last = segments.map(|s| s.last_rtp_unix_timestamp).max();
        let millis = |ms: i64| Timestamp::from_unix_nanos(ms.saturating_mul(1_000_000));
        Ok(first.zip(last).map(|(f, l)| (millis(f), millis(l))))
    }
}

fn write_metadata(call: &CallInfo, p: &Participant) -> Result<(), RecorderError> {
    let (audio, video) = p
        .segments
        .iter()
        .cloned()
        .partition(|s| s.track_type.is_audio());
    let metadata = TimingMetadata {
        call: call.clone(),
        participant_id: p.user_id.clone(),
        user_session_id: p.user_session_id.clone(),
        segments: Segments { audio, video },
    };
    let name = format!(
        "{}_timing_metadata.json",
        names::component(&p.user_session_id, MAX_NAME)
    );
    let path = p.dir.join(&name);
    let json = serde_json::to_vec_pretty(&metadata).expect("metadata serializes");
    // Written aside and renamed, so a crash never leaves half a file.
    let partial = p.dir.join(format!("{name}.partial"));
    std::fs::write(&partial, json)
        .and_then(|()| std::fs::rename(&partial, &path))
        .map_err(write_error(&name))
}

fn write_error(what: &str) -> impl FnOnce(std::io::Error) -> RecorderError {
    let context = format!("cannot write {what}");
    move |source| RecorderError::Io { context, source }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::sync::Arc;

    use super::*;
    use crate::domain::{Cid, Codec, Participant, RecordingType, SessionId, UserId};
    use crate::recorders::RecordingJob;

    fn video_packet(track: &Arc<Track>, seq: u64, at: Timestamp) -> BusMessage {
        BusMessage::Packet(Arc::new(Packet {
            track: track.clone(),
            ssrc: 7,
            seq,
            rtp_time: seq * 3000,
            timestamp: (seq * 3000) as u32,
            marker: true,
            payload_type: 96,
            payload: Arc::from(&[0x10; 1200][..]),
            arrival: std::time::Instant::now(),
            arrival_wall: at.after(Duration::from_millis(seq * 33)),
            audio_level: None,
            voice_activity: None,
            sender_report: None,
            keyframe: seq == 0,
        }))
    }

    /// A crash after the metadata was last written leaves dumps that hold more packets than
    /// it says (and maybe a torn one): the recovered archive's metadata counts what they hold.
    #[test]
    fn recovery_makes_the_metadata_agree_with_the_dumps() {
        let dir = tempfile::tempdir().unwrap();
        let cid = Cid::parse("default:crash").unwrap();
        let job = RecordingJob::detached(RecordingType::Raw, cid, dir.path().to_owned());
        let start = job.session_started_at;
        let mut archive = RawArchive::new(&job, dir.path().join("raw_default_crash_1")).unwrap();
        let track = Arc::new(Track {
            track_id: "v".into(),
            track_type: TrackType::Video,
            codec: Codec {
                name: "VP8".into(),
                clock_rate: 90_000,
                channels: 0,
                fmtp: String::new(),
            },
            participant: Participant {
                user_id: UserId::parse("alice").unwrap(),
                user_session_id: SessionId::random(),
                source_id: String::new(),
                role: "user".into(),
                joined_at: start,
            },
            published_at: start,
        });
        let mut ask = |_: &str| {};
        for seq in 0..100 {
            archive
                .handle(video_packet(&track, seq, start), &mut ask)
                .unwrap();
            if seq == 9 {
                archive.flush().unwrap();
            }
        }
        // The crash: what is still buffered is lost, and nothing is written again.
        std::mem::forget(archive);

        let files = RawFactory.recover(dir.path(), &HashSet::new());
        assert_eq!(files.len(), 1);
        let gz = flate2::read::GzDecoder::new(File::open(&files[0].path).unwrap());
        let mut tar = tar::Archive::new(gz);
        let (mut meta, mut dump) = (None, None);
        for entry in tar.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            if name.ends_with(".json") {
                meta = Some(serde_json::from_slice::<serde_json::Value>(&bytes).unwrap());
            } else if name.ends_with(".rtpdump") {
                dump = Some(bytes);
            }
        }
        let (meta, dump) = (meta.unwrap(), dump.unwrap());
        let mut reader = RtpdumpReader::new(&dump[..]).unwrap();
        let (mut packets, mut last) = (0, 0);
        let mut buf = Vec::new();
        while let Some(p) = reader.next_packet(&mut buf).unwrap() {
            assert!(!p.rtcp);
            packets += 1;
            last = RtpHeader::parse(&buf).unwrap().0.timestamp;
        }
        assert!(packets > 10, "only {packets} packets reached the dump");
        let segment = &meta["segments"]["video"][0];
        assert_eq!(segment["rtp_packets"], packets, "{segment}");
        assert_eq!(segment["last_rtp_rtp_timestamp"], last, "{segment}");
        assert_eq!(
            segment["rtp_duration_ms"],
            i64::from(last) / 90,
            "{segment}"
        );
        let unix = segment["last_rtp_unix_timestamp"].as_i64().unwrap();
        assert_eq!(unix, start.unix_millis() + (packets - 1) * 33, "{segment}");
        assert_eq!(segment["end_offset_ms"], (packets - 1) * 33, "{segment}");
    }
}
