//! The whole system recording: `reel publish`, a separate process, sends N participants of a
//! looped 720p VP8 + Opus clip over WHIP to a release reel in this process, which records the
//! call three ways at once: raw and individual (`auto-on`) and track (started through the
//! RealtimeKit-compatible API once the session is live). So every published track is
//! recorded by two recorders (video) or three (audio).
//!
//! Per N: reel's CPU (SFU, bus, recorders, uploads to local storage) beside the publisher's,
//! the packets that reached the bus against those sent, the packets recorders lost from their
//! queues and how far behind the bus the furthest-behind recorder fell, how long after the
//! last participant left every file was uploaded, and what the files hold (ffprobe): the
//! shortest individual and track file against the shortest time a participant was in the
//! call. A step holds when every participant connected, no packet was lost in a recorder's
//! queue, and at least 99.5% of the packets sent reached the bus; every step runs.
//!
//! Run with `bench/system.sh`, which makes the clips and runs this inside a network namespace
//! with only loopback. `REEL_BENCH_LADDER=50,100` runs other steps.

#[path = "cpu.rs"]
mod cpu;
#[path = "probe.rs"]
mod probe;
#[path = "support.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use cpu::cpu_seconds;
use probe::duration;
use reel::auth::Keys;
use reel::config::{Config, HumanDuration, MediaSettings};
use reel::domain::{Cid, RecordingState, RecordingType};
use reel::recorders::Recorders;
use reel::server::Server;
use reel::store::FileState;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const KEY: &str = "bench-key";
const SECRET: &str = "bench-secret-0123456789abcdef";
/// Participants per step of the ladder (each publishes two tracks).
const LADDER: [usize; 6] = [50, 100, 150, 200, 250, 300];
/// Time between two participants' starts.
const STAGGER: Duration = Duration::from_millis(20);
/// Settling time after the last participant started.
const SETTLE: Duration = Duration::from_secs(3);
/// The measured window.
const STEADY: Duration = Duration::from_secs(10);

/// What one step measured.
struct Step {
    participants: usize,
    connected: u64,
    reel_cores: f64,
    publisher_cores: f64,
    sent: u64,
    published: u64,
    dropped: u64,
    most_behind: f64,
    finished_after: f64,
    files: [usize; 3],
    shortest_in_call: f64,
    shortest_individual: f64,
    shortest_track: f64,
}

/// Calls reel's API as the server.
async fn api(http: &reqwest::Client, base: &str, path: &str, body: Value) -> Value {
    let res = http
        .post(format!("{base}{path}?api_key={KEY}"))
        .header("authorization", Keys::new(KEY, SECRET).server_token())
        .header("stream-auth-type", "jwt")
        .json(&body)
        .send()
        .await
        .expect("reel answers");
    res.json().await.unwrap_or_default()
}

/// One run: `n` participants in a call of their own, recorded three ways; `stored` is where
/// the local store keeps files.
async fn step(
    server: &Server,
    http: &reqwest::Client,
    clips: &Path,
    stored: &Path,
    n: usize,
) -> Step {
    let call = format!("sys-{n}-{}", uuid::Uuid::new_v4().simple());
    let cid = Cid::parse(&format!("default:{call}")).unwrap();
    let base = format!("http://{}", server.addr);
    api(
        http,
        &base,
        &format!("/api/v2/video/call/default/{call}"),
        json!({"data": {"created_by_id": "bench", "settings_override": {
            "raw_recording": {"mode": "auto-on"},
            "individual_recording": {"mode": "auto-on"}}}}),
    )
    .await;
    let bus = server.services.bus().counters().clone();
    let before_run = (bus.published.get(), bus.dropped.get());

    let ramp = STAGGER * n as u32;
    let publish_for = ramp + SETTLE + STEADY + Duration::from_secs(1);
    let publisher = support::publish(
        &format!("{base}/whip/default/{call}"),
        clips,
        n,
        STAGGER,
        publish_for,
        SECRET,
    );
    let pid = publisher.id().expect("a running publisher").to_string();
    // The track recording, as soon as the session is live.
    let kit = format!("{base}/client/v4/accounts/a/realtime/kit/b/recordings/track");
    loop {
        let res = http
            .post(&kit)
            .bearer_auth(SECRET)
            .json(&json!({"meeting_id": call}))
            .send()
            .await
            .expect("reel answers");
        if res.status().is_success() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // How far behind the furthest-behind recorder is, looked at while the call runs.
    let backlog = server.services.metrics().recorder_backlog_seconds.clone();
    let call_over = CancellationToken::new();
    let watching = tokio::spawn({
        let over = call_over.clone();
        async move {
            let mut most = 0f64;
            while !over.is_cancelled() {
                most = most.max(backlog.get());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            most
        }
    });
    tokio::time::sleep(ramp + SETTLE).await;
    let before = (Instant::now(), cpu_seconds("self"), cpu_seconds(&pid));
    tokio::time::sleep(STEADY).await;
    let wall = before.0.elapsed().as_secs_f64();
    let reel_cores = (cpu_seconds("self") - before.1) / wall;
    let publisher_cores = (cpu_seconds(&pid) - before.2) / wall;

    let out = publisher
        .wait_with_output()
        .await
        .expect("reel publish ran");
    let left = Instant::now();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    // The session ends a second after the last participant left; every recording stops,
    // finishes its files and uploads them.
    let store = server.services.store();
    let recordings = loop {
        let (found, _) = store
            .find_recordings(&reel::store::RecordingFilter {
                cid: Some(cid.clone()),
                types: RecordingType::ALL.to_vec(),
                limit: 10,
                ..Default::default()
            })
            .await
            .expect("the store answers");
        if found.len() == 3 && found.iter().all(|r| r.state.is_final()) {
            break found;
        }
        assert!(
            left.elapsed() < Duration::from_secs(300),
            "recordings never finished"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let finished_after = left.elapsed().as_secs_f64();
    call_over.cancel();
    let most_behind = watching.await.expect("the watch ran");
    let mut files = [0; 3];
    let (mut shortest_individual, mut shortest_track) = (f64::MAX, f64::MAX);
    for rec in &recordings {
        assert_eq!(rec.state, RecordingState::Ready, "{rec:?}");
        for f in store.files_of(&rec.id).await.expect("files") {
            assert_eq!(f.state, FileState::Uploaded);
            let path = stored.join(&f.file.object_key);
            match rec.recording_type {
                RecordingType::Raw => files[0] += 1,
                RecordingType::Individual => {
                    files[1] += 1;
                    shortest_individual = shortest_individual.min(duration(&path));
                }
                RecordingType::Track => {
                    files[2] += 1;
                    shortest_track = shortest_track.min(duration(&path));
                }
                RecordingType::Composite | RecordingType::Broadcast => {}
            }
        }
    }
    let shortest_in_call = report["media_seconds"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_f64)
        .fold(f64::MAX, f64::min);
    Step {
        participants: n,
        connected: report["connected"].as_u64().unwrap_or(0),
        reel_cores,
        publisher_cores,
        sent: report["packets"].as_u64().unwrap_or(0),
        published: bus.published.get() - before_run.0,
        dropped: bus.dropped.get() - before_run.1,
        most_behind,
        finished_after,
        files,
        shortest_in_call,
        shortest_individual,
        shortest_track,
    }
}

#[tokio::main]
async fn main() {
    let clips = support::clips();
    let dir = tempfile::tempdir().unwrap();
    let settings = support::settings(
        dir.path(),
        KEY,
        SECRET,
        MediaSettings {
            session_grace: Some(HumanDuration(Duration::from_secs(1))),
            ..Default::default()
        },
    );
    let config = Config::resolve(settings).unwrap();
    let stored = config.recordings_dir();
    let server = Server::start(config, Recorders::native()).await.unwrap();
    let http = reqwest::Client::new();

    println!(
        "reel recording a call three ways (raw + individual + track): `reel publish` (720p VP8 + Opus clip, one process) -> reel (this process)"
    );
    println!(
        "loopback, {} cores; CPU over {STEADY:?} after the ramp; recorded tracks = 2 per participant",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!(
        "| participants | recorded tracks | connected | reel CPU (cores) | reel CPU per 100 recorded tracks | reel publish CPU (cores) | reached the bus / sent | lost in recorder queues | recorders most behind (s) | all uploaded after leaving (s) | files raw / individual / track | shortest in call / individual file / track file (s) | held |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|");
    let ladder: Vec<usize> = std::env::var("REEL_BENCH_LADDER")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| LADDER.to_vec());
    let mut best = None;
    for n in ladder {
        let s = step(&server, &http, &clips, &stored, n).await;
        let tracks = 2 * s.participants;
        let held = s.connected == s.participants as u64
            && s.dropped == 0
            && s.published as f64 >= 0.995 * s.sent as f64;
        println!(
            "| {} | {tracks} | {} | {:.2} | {:.2} | {:.2} | {:.2}% | {} | {:.1} | {:.1} | {} / {} / {} | {:.2} / {:.2} / {:.2} | {} |",
            s.participants,
            s.connected,
            s.reel_cores,
            s.reel_cores * 100.0 / tracks as f64,
            s.publisher_cores,
            s.published as f64 * 100.0 / s.sent.max(1) as f64,
            s.dropped,
            s.most_behind,
            s.finished_after,
            s.files[0],
            s.files[1],
            s.files[2],
            s.shortest_in_call,
            s.shortest_individual,
            s.shortest_track,
            if held { "yes" } else { "no" },
        );
        if held {
            best = Some((tracks, s.reel_cores));
        }
    }
    println!();
    match best {
        Some((tracks, cores)) => println!(
            "largest step that held: {tracks} recorded tracks, reel at {cores:.2} cores \
             (target: >= 200 recorded tracks on this machine; LiveKit reserves 0.5 core per track egress, \
             {:.0} cores for as many)",
            tracks as f64 * 0.5
        ),
        None => println!("no step held"),
    }
    server.shutdown().await;
}
