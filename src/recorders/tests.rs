//! Each native recorder driven through its port alone: a bus with tracks published by the
//! test, packets fed, a stop, and the reports read back, with the files they name.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::bus::{Bus, Packet, Publication};
use crate::domain::{Codec, Participant, TrackLayer, TrackType, UserId};
use crate::mux::FrameReader;
use crate::rtp::rtpdump::RtpdumpReader;

/// Packets each track sends.
const PACKETS: u64 = 150;

/// A call on a bus of its own, and a recording of it.
struct Harness {
    bus: Bus,
    job: RecordingJob,
    _dir: tempfile::TempDir,
}

impl Harness {
    fn new(t: RecordingType) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cid = Cid::parse("default:port").unwrap();
        Self {
            bus: Bus::default(),
            job: RecordingJob::detached(t, cid, dir.path().join("work")),
            _dir: dir,
        }
    }

    fn participant(&self, user: &str) -> Participant {
        Participant {
            user_id: UserId::parse(user).unwrap(),
            user_session_id: SessionId::random(),
            source_id: String::new(),
            role: "user".into(),
            joined_at: self.job.session_started_at,
        }
    }

    /// Publishes `who`'s microphone (`audio`) or camera.
    fn publish(&self, who: &Participant, audio: bool) -> Publication {
        let (name, clock_rate, channels) = if audio {
            ("opus", 48_000, 2)
        } else {
            ("VP8", 90_000, 0)
        };
        let track = Track {
            track_id: format!("{}-{}", who.user_id, if audio { "a" } else { "v" }),
            track_type: TrackType::of(audio, false),
            codec: Codec {
                name: name.into(),
                clock_rate,
                channels,
                fmtp: String::new(),
            },
            participant: who.clone(),
            published_at: self.job.session_started_at,
        };
        self.bus
            .publish(&self.job.recording.cid, track, mpsc::channel(1).0)
    }

    /// Sends packet `seq` of `track`: 20 ms of Opus, or a 320x240 VP8 frame (a key frame
    /// every 30), as if it arrived `seq` frames after the session started.
    fn send(&self, track: &Publication, seq: u64) {
        let audio = track.track().track_type.is_audio();
        let (step_us, ticks) = if audio { (20_000, 960) } else { (33_333, 3000) };
        let key = !audio && seq.is_multiple_of(30);
        let payload: &[u8] = match (audio, key) {
            (true, _) => &[0xf8, 0xaa, 0xbb],
            // S=1, then a key frame's tag, start code and 320x240.
            (false, true) => &[0x10, 0x10, 0, 0, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00],
            (false, false) => &[0x10, 0x11, 0, 0, 0xcc],
        };
        let at = self
            .job
            .session_started_at
            .after(Duration::from_micros(seq * step_us));
        track.send(Packet {
            track: track.track().clone(),
            ssrc: if audio { 1 } else { 2 },
            seq,
            rtp_time: seq * ticks,
            timestamp: (seq * ticks) as u32,
            marker: true,
            payload_type: if audio { 111 } else { 96 },
            payload: Arc::from(payload),
            arrival: std::time::Instant::now(),
            arrival_wall: at,
            audio_level: None,
            voice_activity: None,
            sender_report: None,
            keyframe: key,
        });
    }

    /// Alice's microphone and camera and Bob's microphone, each sending every packet.
    fn alice_and_bob(&self) -> Vec<Publication> {
        let (alice, bob) = (self.participant("alice"), self.participant("bob"));
        let tracks = vec![
            self.publish(&alice, true),
            self.publish(&alice, false),
            self.publish(&bob, true),
        ];
        for seq in 0..PACKETS {
            tracks.iter().for_each(|t| self.send(t, seq));
        }
        tracks
    }

    /// Runs the recorder `factory` makes for the job while `feed` publishes, stops it, and
    /// returns its reports in order.
    async fn record(
        &self,
        factory: impl RecorderFactory,
        feed: impl FnOnce(&Self) -> Vec<Publication>,
    ) -> Vec<Report> {
        let recorder = factory.create(&self.job).unwrap();
        let (reports, mut received) = Reporter::channel();
        let stop = CancellationToken::new();
        let port = Port {
            job: self.job.clone(),
            feed: self
                .bus
                .watch(&self.job.recording.cid, BACKLOG, recorder.tracks()),
            stop: stop.clone(),
            paused: tokio::sync::watch::channel(false).1,
            reports,
        };
        let running = tokio::spawn(run(recorder, port));
        // Everything is fed before the stop, faster than it is written: what is queued when
        // the stop comes is written too.
        let tracks = feed(self);
        stop.cancel();
        running.await.unwrap();
        drop(tracks);
        let mut out = Vec::new();
        while let Ok(r) = received.try_recv() {
            out.push(r);
        }
        out
    }
}

/// The finished files of `reports`, checking that they start with `Started` and end with a
/// successful `Finished`.
fn files(reports: &[Report]) -> Vec<&FinishedFile> {
    assert!(
        matches!(reports.first(), Some(Report::Started)),
        "{reports:?}"
    );
    assert!(
        matches!(reports.last(), Some(Report::Finished { outcome: Ok(()) })),
        "{reports:?}"
    );
    let files: Vec<_> = reports
        .iter()
        .filter_map(|r| match r {
            Report::FileFinished(f) => Some(f),
            _ => None,
        })
        .collect();
    for f in &files {
        assert!(f.path.exists(), "{f:?}");
        assert!(f.start_time <= f.end_time, "{f:?}");
    }
    files
}

/// Frames of the first stream of `path` (audio, in reel's files).
fn audio_frames(path: &Path) -> u64 {
    let mut reader = FrameReader::open(path).unwrap();
    let mut n = 0;
    while reader.next_frame().unwrap().is_some() {
        n += 1;
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_archives_every_packet_fed_before_the_stop() {
    let mut h = Harness::new(RecordingType::Raw);
    h.job.settings.raw_recording.audio_only = true;
    let reports = h
        .record(raw::RawFactory, |h| {
            let alice = h.participant("alice");
            let (mic, cam) = (h.publish(&alice, true), h.publish(&alice, false));
            for seq in 0..PACKETS {
                h.send(&mic, seq);
                h.send(&cam, seq);
            }
            vec![mic, cam]
        })
        .await;
    let files = files(&reports);
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].filename.as_str();
    assert!(
        name.starts_with("raw_default_port_") && name.ends_with(".tar.gz"),
        "{name}"
    );
    // Audio only: one dump, of the microphone, with every packet.
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(&files[0].path).unwrap());
    let mut dumps = Vec::new();
    for entry in tar::Archive::new(gz).entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        if path.ends_with(".rtpdump") {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            dumps.push((path, bytes));
        }
    }
    assert_eq!(
        dumps.len(),
        1,
        "{:?}",
        dumps.iter().map(|d| &d.0).collect::<Vec<_>>()
    );
    assert!(dumps[0].0.ends_with("_audio.rtpdump"), "{}", dumps[0].0);
    let mut reader = RtpdumpReader::new(&dumps[0].1[..]).unwrap();
    let (mut packets, mut buf) = (0, Vec::new());
    while reader.next_packet(&mut buf).unwrap().is_some() {
        packets += 1;
    }
    assert_eq!(packets, PACKETS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn individual_files_hold_each_participants_media() {
    let h = Harness::new(RecordingType::Individual);
    let reports = h
        .record(individual::IndividualFactory, Harness::alice_and_bob)
        .await;
    let mut files: Vec<_> = files(&reports)
        .into_iter()
        .map(|f| (f.filename.as_str().to_owned(), &f.path))
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    // Alice's camera and microphone in one file, Bob's microphone in a file of its own.
    assert!(files[0].0.contains("_alice_") && files[0].0.contains("_audio_video_"));
    assert!(files[1].0.contains("_bob_") && files[1].0.contains("_audio_only_"));
    for (name, path) in files {
        assert_eq!(audio_frames(path), PACKETS, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn track_files_hold_the_allowlisted_microphones() {
    let mut h = Harness::new(RecordingType::Track);
    h.job.track = TrackOptions {
        user_ids: Some(vec![UserId::parse("alice").unwrap()]),
        layers: vec![TrackLayer {
            name: "speech".into(),
            file_name_prefix: "speech".into(),
        }],
    };
    let reports = h.record(track::TrackFactory, Harness::alice_and_bob).await;
    let files = files(&reports);
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].filename.as_str();
    assert!(
        name.starts_with("speech_alice_") && name.ends_with(".webm"),
        "{name}"
    );
    assert_eq!(files[0].layer.as_deref(), Some("speech"));
    assert_eq!(audio_frames(&files[0].path), PACKETS);
}

/// A stop asked for before the recorder started still ends it, with nothing to hand over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorder_stopped_at_once_ends_cleanly() {
    let h = Harness::new(RecordingType::Raw);
    let reports = h.record(raw::RawFactory, |_| Vec::new()).await;
    assert!(files(&reports).is_empty());
}
