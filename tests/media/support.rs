//! Helpers shared by the media tests: publishers and SSE readers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use serde_json::Value;

use crate::common::{API_SECRET, Db, Receiver, TestServer, eventually, python, stdout_of};

/// A server on SQLite whose call sessions end `grace` after the last participant leaves.
/// A bus queue that keeps every packet of a test.
pub const WHOLE: reel::bus::Backlog = reel::bus::Backlog::new(Duration::from_secs(600), 1_000_000);

/// What the bus carried in a call: what reel received, to hold recordings against.
#[derive(Debug, Default)]
pub struct Tally {
    /// Packets per track id.
    pub packets: std::collections::HashMap<String, u64>,
    /// Per user id (and `{user id}/audio`, `{user id}/video`), the arrival of their first
    /// and last packet.
    pub span: std::collections::HashMap<String, (reel::domain::Timestamp, reel::domain::Timestamp)>,
}

impl Tally {
    /// Seconds from the first packet of `key` (a user id, or `{user id}/{audio|video}`) to
    /// its last.
    pub fn seconds(&self, key: &str) -> f64 {
        let (first, last) = self.span[key];
        last.since(first).as_secs_f64()
    }
}

/// Tallies what the bus carries in `cid` until every track it saw has ended (or nothing comes
/// for 30 s).
pub fn tally_bus(t: &TestServer, cid: &reel::domain::Cid) -> tokio::task::JoinHandle<Tally> {
    let sub = t.server().services.bus().watch(cid, WHOLE, |_| true);
    tokio::spawn(async move {
        let mut tally = Tally::default();
        let mut live = 0usize;
        while let Ok(m) = tokio::time::timeout(Duration::from_secs(30), sub.recv()).await {
            match m {
                reel::bus::BusMessage::Track(tr) => {
                    live += 1;
                    tally.packets.entry(tr.track_id.clone()).or_insert(0);
                }
                reel::bus::BusMessage::Packet(p) => {
                    *tally.packets.entry(p.track.track_id.clone()).or_insert(0) += 1;
                    let at = p.arrival_wall;
                    let user = p.track.participant.user_id.to_string();
                    let kind = if p.track.track_type.is_audio() {
                        "audio"
                    } else {
                        "video"
                    };
                    for key in [format!("{user}/{kind}"), user] {
                        tally
                            .span
                            .entry(key)
                            .and_modify(|(_, last)| *last = (*last).max(at))
                            .or_insert((at, at));
                    }
                }
                reel::bus::BusMessage::Ended(_) => {
                    live -= 1;
                    if live == 0 {
                        break;
                    }
                }
            }
        }
        tally
    })
}

pub async fn server(grace: Duration, webhook: Option<String>) -> TestServer {
    TestServer::start_with(
        Db::Sqlite,
        |s| {
            s.media.session_grace = Some(reel::config::HumanDuration(grace));
            s.webhook_urls = webhook.map(|w| vec![w]);
        },
        Default::default(),
    )
    .await
}

/// A helper script of `tests/python`.
pub fn script(name: &str) -> PathBuf {
    crate::common::source_dir().join("tests/python").join(name)
}

/// Runs `reel publish` as `user` with the video clip `video` for `duration`; its report.
pub async fn publish(
    t: &TestServer,
    call: &str,
    clips: &Path,
    video: &str,
    user: &str,
    duration: &str,
    extra: &[&str],
) -> Value {
    publish_to(&t.base, call, (clips, video), user, duration, extra).await
}

/// [`publish`] to the reel at `base`.
pub async fn publish_to(
    base: &str,
    call: &str,
    (clips, video): (&Path, &str),
    user: &str,
    duration: &str,
    extra: &[&str],
) -> Value {
    let out = stdout_of(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_reel"))
            .arg("publish")
            .arg(format!("{base}/whip/default/{call}"))
            .arg("--video")
            .arg(clips.join(video))
            .arg("--audio")
            .arg(clips.join("opus.ogg"))
            .args(["--user", user, "--duration", duration, "--format", "json"])
            .args(extra)
            .env_remove("REEL_TOKEN")
            .env("REEL_API_SECRET", API_SECRET),
        "reel publish",
    )
    .await;
    serde_json::from_str(out.trim()).unwrap()
}

/// A server on SQLite with the native recorders, whose call sessions end a second after the
/// last participant leaves, sending webhooks to `webhook`; call `default:{call}` created with
/// `settings_override`; and small clips for `reel publish`.
pub async fn recording_call(
    call: &str,
    settings_override: Value,
    webhook: Option<String>,
) -> (TestServer, TempDir) {
    recording_call_of(
        reel::recorders::Recorders::all(),
        call,
        settings_override,
        webhook,
    )
    .await
}

/// [`recording_call`] with `recorders`.
pub async fn recording_call_of(
    recorders: reel::recorders::Recorders,
    call: &str,
    settings_override: Value,
    webhook: Option<String>,
) -> (TestServer, TempDir) {
    let t = TestServer::start_with(
        Db::Sqlite,
        |s| {
            s.media.session_grace = Some(reel::config::HumanDuration(Duration::from_secs(1)));
            s.webhook_urls = webhook.map(|w| vec![w]);
        },
        recorders,
    )
    .await;
    let (s, body) = t
        .call(
            "POST",
            &format!("/api/v2/video/call/default/{call}"),
            Some(serde_json::json!({"data": {
                "created_by_id": "alice", "settings_override": settings_override}})),
        )
        .await;
    assert_eq!(s, reqwest::StatusCode::OK, "{body}");
    let clips = tempfile::tempdir().unwrap();
    make_clips(clips.path());
    (t, clips)
}

/// Opens one join page per `(user, video codec)` in `call` for `seconds`, with `extra`
/// arguments for `browser_call.py`; each page's stats.
pub async fn browsers(
    t: &TestServer,
    call: &str,
    users: &[(&str, &str)],
    seconds: u32,
    extra: &[&str],
) -> Vec<Value> {
    let urls: Vec<String> = users
        .iter()
        .map(|(user, codec)| {
            format!(
                "{}/join/default/{call}?token={}&codec={codec}",
                t.base,
                t.user_token(user, None)
            )
        })
        .collect();
    let text = stdout_of(
        tokio::process::Command::new(python())
            .arg(script("browser_call.py"))
            .args(extra)
            .arg(seconds.to_string())
            .args(&urls),
        "the browser",
    )
    .await;
    let stats: Vec<Value> =
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"));
    for s in &stats {
        assert_eq!(s["status"], "in the call", "{s}");
    }
    stats
}

/// What the independent reader (`tests/python/read_raw_archive.py`) finds in an archive.
pub async fn read_archive(archive: &Path) -> Value {
    let text = stdout_of(
        tokio::process::Command::new(python())
            .arg(script("read_raw_archive.py"))
            .arg(archive),
        "the archive reader",
    )
    .await;
    serde_json::from_str(text.trim()).unwrap()
}

/// ffprobe's view of `file`: its streams' codecs and the container's duration.
pub async fn probe(file: &Path) -> (Vec<String>, f64) {
    let v = probe_json(file, &[]).await;
    let codecs = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["codec_name"].as_str().unwrap().to_owned())
        .collect();
    let duration = v["format"]["duration"].as_str().unwrap().parse().unwrap();
    (codecs, duration)
}

/// What ffprobe reads of `file`'s format and streams (with `extra` arguments).
pub async fn probe_json(file: &Path, extra: &[&str]) -> Value {
    let out = stdout_of(
        tokio::process::Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_streams",
                "-show_format",
                "-of",
                "json",
            ])
            .args(extra)
            .arg(file),
        "ffprobe",
    )
    .await;
    serde_json::from_str(&out).unwrap()
}

/// Decodes every stream of `file`; the decoder's complaints, and the seconds of audio.
pub async fn decode(file: &Path) -> (String, f64) {
    let out = tokio::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(file)
        // Frames keep the file's times: without this, ffmpeg moves them to ticks of a guessed
        // frame rate and complains when two land in the same tick.
        .args([
            "-map",
            "0",
            "-fps_mode",
            "passthrough",
            "-enc_time_base",
            "-1",
        ])
        .args(["-f", "null", "-"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let errors = String::from_utf8_lossy(&out.stderr).into_owned();
    if !errors.is_empty() {
        keep(file);
    }
    let pcm = tokio::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args([
            "-map", "0:a?", "-ac", "1", "-ar", "48000", "-f", "s16le", "-",
        ])
        .output()
        .await
        .unwrap();
    (errors, pcm.stdout.len() as f64 / 96_000.0)
}

/// Keeps a copy of a file that failed a check in the target directory's
/// `failed-media/`, for a look after the test (its temporary directory goes with it).
pub fn keep(file: &Path) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("failed-media");
    let kept = dir.join(file.file_name().unwrap_or_default());
    if std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::copy(file, &kept))
        .is_ok()
    {
        eprintln!("kept {} as {}", file.display(), kept.display());
    }
}

/// The body at `url`.
pub async fn fetch(http: &reqwest::Client, url: &str) -> Vec<u8> {
    let res = http.get(url).send().await.unwrap();
    res.bytes().await.unwrap().to_vec()
}

/// Downloads every listed file into `dir`; their names and paths, sorted.
pub async fn download(
    http: &reqwest::Client,
    listed: &[Value],
    dir: &Path,
) -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    for r in listed {
        let name = r["filename"].as_str().unwrap().to_owned();
        let bytes = fetch(http, r["url"].as_str().unwrap()).await;
        let path = dir.join(&name);
        std::fs::write(&path, &bytes).unwrap();
        files.push((name, path));
    }
    files.sort();
    files
}

/// Makes small clips for `reel publish` in `dir`: vp8.ivf, h264.h264, opus.ogg (4 s, 320x240).
pub fn make_clips(dir: &std::path::Path) {
    let script = crate::common::source_dir().join("scripts/make-clips.sh");
    let status = std::process::Command::new(script)
        .arg(dir)
        .args(["320x240", "4", "300k"])
        .status()
        .unwrap();
    assert!(status.success(), "making clips failed");
}

/// What an aiortc publisher reported.
#[derive(Debug)]
pub struct Published {
    /// RTP packets it sent, by kind.
    pub audio: u64,
    pub video: u64,
}

/// Publishes `codec` video and Opus audio for `seconds` with aiortc, as `user`.
pub async fn aiortc_publish(
    t: &TestServer,
    call: &str,
    user: &str,
    codec: &str,
    seconds: f64,
) -> Published {
    let token = t.user_token(user, None);
    aiortc_publish_to(&t.base, &token, call, codec, seconds, TONE).await
}

/// A steady 440 Hz tone, as an ffmpeg source graph.
pub const TONE: &str = "sine=frequency=440";

/// Publishes with aiortc to the server at `base` with `token`, sending `sound` (an ffmpeg
/// audio source graph).
pub async fn aiortc_publish_to(
    base: &str,
    token: &str,
    call: &str,
    codec: &str,
    seconds: f64,
    sound: &str,
) -> Published {
    let url = format!("{base}/whip/default/{call}");
    let line = stdout_of(
        tokio::process::Command::new(python())
            .arg(script("whip_publish.py"))
            .args([&url, token, codec, &seconds.to_string(), sound]),
        "the aiortc publisher",
    )
    .await;
    let v: Value = serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{e}: {line}"));
    Published {
        audio: v["sent"]["audio"].as_u64().unwrap(),
        video: v["sent"]["video"].as_u64().unwrap(),
    }
}

/// A metric's value from `/metrics`.
pub async fn metric(t: &TestServer, name: &str) -> f64 {
    let text = t.metrics().await;
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in {text}"))
}

/// The JSON `data:` payloads of a server-sent event stream, as they come.
pub struct EventStream {
    res: reqwest::Response,
    buf: String,
}

impl EventStream {
    /// Opens `url`.
    pub async fn open(url: &str) -> Self {
        let res = reqwest::get(url).await.unwrap();
        assert_eq!(res.status(), 200, "{url}");
        Self {
            res,
            buf: String::new(),
        }
    }

    /// The next event, or `None` if none comes within `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let data: String = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some(serde_json::from_str(&data).unwrap());
            }
            let chunk = tokio::time::timeout_at(deadline, self.res.chunk())
                .await
                .ok()?;
            self.buf
                .push_str(&String::from_utf8_lossy(&chunk.unwrap()?));
        }
    }

    /// Events until one of type `kind` comes (within `timeout`); all of them, that one last.
    pub async fn until(&mut self, kind: &str, timeout: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let e = self
                .next(left)
                .await
                .unwrap_or_else(|| panic!("no {kind} event; saw {seen:?}"));
            let done = e["type"] == kind;
            seen.push(e);
            if done {
                return seen;
            }
        }
    }
}

/// The statuses of the `recording.statusUpdate` webhooks `hook` received for recording `id`
/// (any, if `None`), in order, once there are `count`.
pub async fn kit_statuses(hook: &Receiver, id: Option<&str>, count: usize) -> Vec<String> {
    eventually(Duration::from_secs(10), "the webhooks", || async {
        let got: Vec<String> = hook
            .received()
            .iter()
            .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
            .filter(|v| v["event"] == "recording.statusUpdate")
            .filter(|v| id.is_none_or(|id| v["recording"]["id"] == id))
            .map(|v| v["recording"]["status"].as_str().unwrap().to_owned())
            .collect();
        (got.len() >= count).then_some(got)
    })
    .await
}

/// A minimal offer with `video` video m-lines of `codec` and one Opus audio m-line.
pub fn offer(audio_codec: &str, video: usize) -> String {
    let mids: Vec<String> = (0..=video).map(|i| i.to_string()).collect();
    let mut sdp = format!(
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE {}\r\n\
         a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
         a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n\
         a=setup:actpass\r\n",
        mids.join(" ")
    );
    sdp.push_str(&format!(
        "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\na=rtcp-mux\r\na=rtpmap:0 {audio_codec}\r\n"
    ));
    for i in 0..video {
        sdp.push_str(&format!(
            "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:{}\r\na=sendonly\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n",
            i + 1
        ));
    }
    sdp
}

/// Asserts that the MP4 `file` has its index (`moov`) before its media (`mdat`): players
/// start it before the whole file is there.
pub fn assert_index_in_front(file: &Path) {
    let bytes = std::fs::read(file).unwrap();
    let at = |atom: &[u8]| bytes.windows(4).position(|w| w == atom);
    let (index, media) = (at(b"moov"), at(b"mdat"));
    assert!(
        index.is_some() && media.is_some() && index < media,
        "{file:?}: the index is not in front"
    );
}

/// Every file under `dir`.
pub fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Checks that `file` (audio and VP8 video) decodes without an error, and that it and its
/// audio last `time_in_call` seconds, within `tolerance`.
pub async fn assert_lasts(file: &Path, time_in_call: f64, tolerance: f64) {
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    let (codecs, duration) = probe(file).await;
    assert_eq!(codecs, ["opus", "vp8"]);
    let (errors, audio) = decode(file).await;
    println!("{name}: {duration:.3} s, {audio:.3} s of audio; {time_in_call:.3} s in the call");
    assert!(errors.is_empty(), "{name}: {errors}");
    assert!(
        (duration - time_in_call).abs() <= tolerance,
        "{duration:.3} s in the file, {time_in_call:.3} s in the call"
    );
    assert!(
        (audio - time_in_call).abs() <= tolerance,
        "{audio:.3} s of audio, {time_in_call:.3} s in the call"
    );
}
