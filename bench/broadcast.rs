//! Broadcast recording. `reel publish`, a separate process, sends N broadcasts (a stream each,
//! a looped 720p VP8 clip near 2.5 Mbit/s with Opus) with one recording publish token to a
//! release reel in this process, which records every one into a WebM file of its own.
//!
//! Table 1, per N: what reached the recorders (packets reel put on its bus against those
//! `reel publish` sent; packets lost in socket buffers, unrouted, or in a recorder's queue),
//! the recordings made and the seconds they kept against the seconds published, and the CPU
//! of reel and of the publisher. The ladder stops at the first N that loses a packet.
//!
//! Table 1b: the same ladder with reel held to one core and `reel publish` to another, so
//! that neither takes the other's time: what reel records per core of its own.
//!
//! Table 2: the cost of thumbnails: one picture from a 720p key frame (decode, scale, JPEG),
//! and the same N recorded with and without `enableThumbnails`.
//!
//! Table 3: `GET /api/record_files/list` over 10,000 record files: latency percentiles of
//! each sort order, first and last page, and of `list_by_stream`.
//!
//! Run with `bench/media.sh broadcast`, which makes the clips and runs this inside a network
//! namespace with only loopback.

#[path = "cpu.rs"]
mod cpu;
#[path = "net.rs"]
mod net;
// Of what the benchmarks share, this one uses the server and its own clips.
#[allow(dead_code)]
#[path = "support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cpu::cpu_seconds;
use net::socket_drops;
use reel::config::{Config, MediaSettings};
use reel::domain::*;
use reel::recorders::Recorders;
use reel::server::Server;
use reel::store::{NewFile, RecordingFilter};
use serde_json::{Value, json};

const SECRET: &str = "bench-secret-0123456789abcdef";
/// Broadcasts per step of the ladder.
const LADDER: [usize; 4] = [100, 200, 300, 400];
/// Broadcasts per step of the ladder with a core for reel and one for the publisher.
const SPLIT_LADDER: [usize; 4] = [100, 200, 250, 300];
/// Broadcasts of the thumbnail comparison.
const THUMBNAILS_AT: usize = 100;
/// Time between two broadcasters' starts.
const STAGGER: Duration = Duration::from_millis(20);
/// Settling time after the last broadcaster started.
const SETTLE: Duration = Duration::from_secs(3);
/// The measured window.
const STEADY: Duration = Duration::from_secs(20);
/// Record files listed in table 3.
const LISTED: usize = 10_000;
/// Requests per row of table 3.
const REQUESTS: usize = 400;

/// Bytes received on loopback so far (this network namespace has nothing else).
pub fn loopback_bytes() -> u64 {
    let dev = std::fs::read_to_string("/proc/net/dev").unwrap_or_default();
    dev.lines()
        .find_map(|l| l.trim_start().strip_prefix("lo:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Calls the broadcast dialect with the API secret; the answer's data.
async fn api(
    http: &reqwest::Client,
    server: &Server,
    method: &str,
    path: &str,
    body: Value,
) -> Value {
    let req = http
        .request(
            method.parse().unwrap(),
            format!("http://{}/api/{path}", server.addr),
        )
        .bearer_auth(SECRET);
    let req = if body.is_null() { req } else { req.json(&body) };
    let answer: Value = req.send().await.unwrap().json().await.unwrap();
    answer["data"].clone()
}

struct Step {
    n: usize,
    connected: u64,
    mbits: f64,
    sent: u64,
    on_bus: u64,
    lost_in: (u64, u64, u64),
    recorded: usize,
    kept_seconds: f64,
    published_seconds: f64,
    reel_cores: f64,
    publisher_cores: f64,
}

impl Step {
    fn lost(&self) -> u64 {
        self.lost_in.0 + self.lost_in.1 + self.lost_in.2
    }
}

/// Which cores a step runs on.
#[derive(Clone, Copy, PartialEq)]
enum Cores {
    /// Every core, shared by reel and the publisher.
    Shared,
    /// Core 0 for reel (this process), core 1 for the publisher.
    Split,
}

/// Holds every thread of this process to `cpus` (a `taskset` list); returns the list they
/// were held to before.
fn pin_self(cpus: &str) -> String {
    let before = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|l| l.trim().to_owned())
        .expect("this process's CPU list");
    // A thread that ends while taskset goes through them fails the call: try again.
    let pinned = (0..5).any(|_| {
        std::process::Command::new("taskset")
            .args(["--all-tasks", "--cpu-list", "--pid", cpus])
            .arg(std::process::id().to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run taskset")
            .success()
    });
    assert!(pinned, "taskset {cpus} failed 5 times");
    before
}

/// One run: `n` broadcasts with a new token (taking pictures if `thumbnails`), measured over
/// `STEADY`, then every recording waited for.
async fn step(
    server: &Server,
    http: &reqwest::Client,
    clips: &Path,
    n: usize,
    thumbnails: bool,
    cores: Cores,
) -> Step {
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let token = api(
        http,
        server,
        "POST",
        "publish_token",
        json!({"label": run, "streams": [{"streamName": format!("r{run}-[0-9]+"), "isRegex": true}],
               "record": true, "enableThumbnails": thumbnails}),
    )
    .await;
    let value = token["token"].as_str().expect("a token").to_owned();
    let counters = server.services.bus().counters().clone();
    let unrouted = &server.services.metrics().udp_unrouted;
    let before_lost = (socket_drops(), unrouted.get(), counters.dropped.get());
    let before_bus = counters.published.get();

    let ramp = STAGGER * n as u32;
    let publish_for = ramp + SETTLE + STEADY;
    // Once pinned, `available_parallelism` counts one core: the step restores the list it read.
    let unpinned = (cores == Cores::Split).then(|| pin_self("0"));
    let mut publisher = match cores {
        Cores::Shared => tokio::process::Command::new(env!("CARGO_BIN_EXE_reel")),
        Cores::Split => {
            let mut c = tokio::process::Command::new("taskset");
            c.args(["--cpu-list", "1", env!("CARGO_BIN_EXE_reel")]);
            c
        }
    };
    let publisher = publisher
        .arg("publish")
        .arg(format!(
            "http://{}/whip/broadcast/r{run}-{{n}}",
            server.addr
        ))
        .arg("--video")
        .arg(clips.join("vp8.ivf"))
        .arg("--audio")
        .arg(clips.join("opus.ogg"))
        .args(["-n", &n.to_string(), "--format", "json", "--token", &value])
        .args(["--stagger", &format!("{}ms", STAGGER.as_millis())])
        .args(["--duration", &format!("{}ms", publish_for.as_millis())])
        .env("REEL_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start reel publish");
    let pid = publisher.id().expect("a running publisher").to_string();
    tokio::time::sleep(ramp + SETTLE).await;
    let before = (
        Instant::now(),
        cpu_seconds("self"),
        cpu_seconds(&pid),
        loopback_bytes(),
    );
    tokio::time::sleep(STEADY - Duration::from_secs(1)).await;
    let wall = before.0.elapsed().as_secs_f64();
    let reel_cores = (cpu_seconds("self") - before.1) / wall;
    let publisher_cores = (cpu_seconds(&pid) - before.2) / wall;
    let mbits = (loopback_bytes() - before.3) as f64 * 8.0 / wall / 1e6;
    // Datagrams without a route while every broadcast is live: a sender's last RTCP report,
    // which may come after its session closed, is not a loss.
    let unrouted_live = unrouted.get() - before_lost.1;
    let out = publisher
        .wait_with_output()
        .await
        .expect("reel publish ran");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    if let Some(cpus) = unpinned {
        pin_self(&cpus);
    }

    // Every recording ends with its broadcast; wait for them to be stored.
    let store = server.services.store();
    let filter = RecordingFilter {
        types: vec![RecordingType::Broadcast],
        limit: 1000,
        ..RecordingFilter::default()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut mine = Vec::new();
    while Instant::now() < deadline {
        let (found, _) = store.find_recordings(&filter).await.unwrap();
        mine = found
            .into_iter()
            .filter(|r| r.cid.id.as_str().starts_with(&format!("r{run}-")))
            .collect();
        if mine.len() == n && mine.iter().all(|r| r.state.is_final()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut kept_seconds = 0.0;
    let mut recorded = 0;
    for r in &mine {
        for f in store.files_of(&r.id).await.unwrap() {
            if f.file.layer.is_none() {
                recorded += 1;
                kept_seconds += f.file.end_time.since(f.file.start_time).as_secs_f64();
            }
        }
    }
    let published_seconds = report["media_seconds"]
        .as_array()
        .map_or(0.0, |v| v.iter().filter_map(Value::as_f64).sum());
    Step {
        n,
        connected: report["connected"].as_u64().unwrap_or(0),
        mbits,
        sent: report["packets"].as_u64().unwrap_or(0),
        on_bus: counters.published.get() - before_bus,
        lost_in: (
            socket_drops() - before_lost.0,
            unrouted_live,
            counters.dropped.get() - before_lost.2,
        ),
        recorded,
        kept_seconds,
        published_seconds,
        reel_cores,
        publisher_cores,
    }
}

fn row(s: &Step, label: &str) {
    println!(
        "| {} | {label} | {} | {:.0} | {} / {} | {} / {} / {} | {} | {:.1} / {:.1} | {:.2} | {:.2} | {:.2} |",
        s.n,
        s.connected,
        s.mbits,
        s.on_bus,
        s.sent,
        s.lost_in.0,
        s.lost_in.1,
        s.lost_in.2,
        s.recorded,
        s.kept_seconds,
        s.published_seconds,
        s.reel_cores,
        s.reel_cores * 100.0 / s.n as f64,
        s.publisher_cores,
    );
}

/// Milliseconds per picture made from the clip's first key frame: the median and the
/// slowest of `runs`.
fn thumbnail_ms(clips: &Path, runs: usize) -> (f64, f64) {
    let mut reader = reel::mux::FrameReader::open(&clips.join("vp8.ivf")).unwrap();
    let frame = reader.next_frame().unwrap().expect("a frame");
    assert!(frame.keyframe);
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let jpeg = reel::mux::thumbnail(reel::rtp::MediaCodec::Vp8, &frame.data, 640).unwrap();
            assert!(jpeg.len() > 1000);
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[times.len() - 1])
}

/// Fills the store with `LISTED` finished record files of 50 streams and 10 tokens, each
/// with its metadata and an uploaded file.
async fn fill(server: &Server) {
    let store = server.services.store();
    let now = Timestamp::now();
    let info = MediaInfo {
        format: "WEBM".into(),
        size: 18_000_000,
        duration: 60.0,
        tracks: vec![
            TrackInfo {
                kind: "video".into(),
                codec: "VP8".into(),
                bitrate: 2_400_000,
                width: 1280,
                height: 720,
                framerate: 30.0,
                ..TrackInfo::default()
            },
            TrackInfo {
                kind: "audio".into(),
                codec: "Opus".into(),
                bitrate: 64_000,
                channels: 2,
                samplerate: 48_000,
                ..TrackInfo::default()
            },
        ],
    };
    let mut ids = Vec::new();
    for stream_no in 0..50 {
        let stream = StreamName::parse(format!("list-{stream_no}")).unwrap();
        let cid = stream_cid(&stream);
        server
            .services
            .get_or_create_call(
                &reel::auth::Caller::Server,
                &cid,
                reel::service::NewCall {
                    created_by: Some(UserId::parse("broadcaster-1").unwrap()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let (session, _) = server.services.start_session(&cid).await.unwrap();
        let mut tx = store.write().await.unwrap();
        for i in 0..LISTED / 50 {
            let at = now.before(Duration::from_secs((i * 50 + stream_no) as u64));
            let r = Recording {
                id: RecordingId::random(),
                cid: cid.clone(),
                session_id: session.id.clone(),
                recording_type: RecordingType::Broadcast,
                state: RecordingState::Ready,
                storage: None,
                requested_by: None,
                error: None,
                created_at: at,
                started_at: Some(at),
                stopped_at: Some(at),
                updated_at: at,
                exclusive: false,
            };
            tx.insert_recording(&r).await.unwrap();
            tx.insert_record_file(&r.id, ((stream_no % 10) as i64 + 1, &stream, ""), at)
                .await
                .unwrap();
            let filename = FileName::parse(format!("list-{stream_no}_main_{i}.webm")).unwrap();
            let new = NewFile {
                file: RecordingFile {
                    recording_id: r.id.clone(),
                    cid: cid.clone(),
                    session_id: session.id.clone(),
                    recording_type: RecordingType::Broadcast,
                    object_key: format!("broadcast/{stream}/{}/{filename}", session.id),
                    filename,
                    storage: StorageLocation::Local,
                    size: 1_000_000,
                    start_time: at,
                    end_time: at.after(Duration::from_secs(60)),
                    layer: None,
                },
                local_path: PathBuf::from("/nonexistent"),
            };
            let file_id = tx.insert_file(&new, at).await.unwrap();
            tx.mark_file_uploaded(file_id, at).await.unwrap();
            ids.push(r.id);
        }
        tx.commit().await.unwrap();
        for id in ids.drain(..) {
            store.set_record_metadata(&id, &info).await.unwrap();
        }
    }
}

/// Latency of `GET /api/record_files/{path}`: p50, p99 and max in milliseconds.
async fn latency(http: &reqwest::Client, server: &Server, path: &str) -> (f64, f64, f64) {
    let url = format!("http://{}/api/record_files/{path}", server.addr);
    let mut times = Vec::with_capacity(REQUESTS);
    for i in 0..REQUESTS + 20 {
        let start = Instant::now();
        let res = http.get(&url).bearer_auth(SECRET).send().await.unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        let body = res.bytes().await.unwrap();
        assert!(body.len() > 1000, "{path}: a page of record files");
        // The first requests warm the connection and the database's caches.
        if i >= 20 {
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(f64::total_cmp);
    let at = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    (at(0.5), at(0.99), at(1.0))
}

#[tokio::main]
async fn main() {
    // 720p VP8 at 2.4 Mbit/s, and Opus at 64 kbit/s.
    let clips = support::clips_of("clips-2500k", &["1280x720", "10", "2400k"]);
    let dir = tempfile::tempdir().unwrap();
    let settings = support::settings(dir.path(), "bench-key", SECRET, MediaSettings::default());
    let config = Config::resolve(settings).unwrap();
    let server = Server::start(config, Recorders::native()).await.unwrap();
    let http = reqwest::Client::new();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());

    println!(
        "reel broadcast recording: `reel publish` (720p VP8 ~2.4 Mbit/s + Opus, one process, a stream per broadcast) -> reel (this process) recording each to WebM"
    );
    let rmem_max = std::fs::read_to_string("/proc/sys/net/core/rmem_max").unwrap_or_default();
    println!(
        "loopback, {cores} cores, net.core.rmem_max {}; {STEADY:?} per step after the ramp",
        rmem_max.trim()
    );
    // REEL_BENCH_PARTS=list runs table 3 alone; REEL_BENCH_LADDER=50,100 and
    // REEL_BENCH_SPLIT_LADDER=50,100 other steps for tables 1 and 1b.
    let parts =
        std::env::var("REEL_BENCH_PARTS").unwrap_or_else(|_| "record,split,thumbnails,list".into());
    if parts.contains("record") {
        println!();
        header();
        let ladder = ladder_from("REEL_BENCH_LADDER", &LADDER);
        ladder_of(&server, &http, &clips, &ladder, Cores::Shared).await;
    }
    if parts.contains("split") && cores >= 2 {
        println!();
        println!("Table 1b: reel held to core 0, `reel publish` to core 1");
        println!();
        header();
        let ladder = ladder_from("REEL_BENCH_SPLIT_LADDER", &SPLIT_LADDER);
        ladder_of(&server, &http, &clips, &ladder, Cores::Split).await;
    }

    if parts.contains("thumbnails") {
        thumbnails(&server, &http, &clips).await;
    }
    if parts.contains("list") {
        list(&server, &http).await;
    }
    server.shutdown().await;
}

/// The header of tables 1, 1b and 2.
fn header() {
    println!(
        "| broadcasts | thumbnails | connected | Mbit/s in | packets on bus / sent | lost: socket / unrouted while live / recorder queue | files | seconds kept / published | reel CPU (cores) | reel CPU per 100 broadcasts | reel publish CPU (cores) |"
    );
    println!("|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---:|");
}

/// The steps given in `var` (`50,100`), or `default`.
fn ladder_from(var: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(var)
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

/// Steps up `ladder` until a step loses a packet; prints a row per step and the largest N
/// that lost none.
async fn ladder_of(
    server: &Server,
    http: &reqwest::Client,
    clips: &Path,
    ladder: &[usize],
    cores: Cores,
) {
    let mut best = None;
    for &n in ladder {
        let s = step(server, http, clips, n, false, cores).await;
        row(&s, "no");
        let held = s.lost() == 0 && s.connected == n as u64 && s.recorded == n;
        if held {
            best = Some(s);
        } else {
            break;
        }
    }
    println!();
    let target = match cores {
        Cores::Shared => "target: >= 300",
        Cores::Split => "on one core; target: >= 150",
    };
    match best {
        Some(s) => println!(
            "largest N recorded with zero loss: {} broadcasts at {:.0} Mbit/s, reel at {:.2} cores ({target})",
            s.n, s.mbits, s.reel_cores
        ),
        None => println!("no step recorded without loss"),
    }
}

/// Table 2.
async fn thumbnails(server: &Server, http: &reqwest::Client, clips: &Path) {
    println!();
    let (median, slowest) = thumbnail_ms(clips, 30);
    println!(
        "thumbnails: one picture of a 720p VP8 key frame (decode, scale to 640x360, JPEG): {median:.1} ms median, {slowest:.1} ms slowest of 30;"
    );
    println!(
        "one every 30 s is {:.4}% of a core per broadcast ({:.2} cores for 300 broadcasts)",
        median / 30_000.0 * 100.0,
        median / 30_000.0 * 300.0
    );
    println!();
    header();
    for thumbnails in [false, true] {
        let s = step(
            server,
            http,
            clips,
            THUMBNAILS_AT,
            thumbnails,
            Cores::Shared,
        )
        .await;
        row(&s, if thumbnails { "yes" } else { "no" });
    }
}

/// Table 3.
async fn list(server: &Server, http: &reqwest::Client) {
    fill(server).await;
    println!();
    println!(
        "record files list over {LISTED} record files, one client, {REQUESTS} requests each (target p99 < 10 ms):"
    );
    println!();
    println!("| request | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|");
    let last = LISTED / 100;
    for path in [
        "list".to_owned(),
        format!("list?page={}", LISTED / 10),
        "list?itemsOnPage=100".to_owned(),
        format!("list?itemsOnPage=100&page={last}"),
        "list?itemsOnPage=100&sortBy=StreamName".to_owned(),
        "list?itemsOnPage=100&sortBy=Token&isDescending=true".to_owned(),
        "list?itemsOnPage=100&status=Complete".to_owned(),
        "list_by_stream?streamName=list-7&itemsOnPage=100".to_owned(),
        "list_by_token?tokenId=3&itemsOnPage=100&page=5".to_owned(),
    ] {
        let (p50, p99, max) = latency(http, server, &path).await;
        println!("| GET /api/record_files/{path} | {p50:.2} | {p99:.2} | {max:.2} |");
    }
}
