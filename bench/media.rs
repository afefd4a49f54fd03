//! Media plane load. `reel publish`, a separate process, sends N participants of a looped 720p
//! VP8 + Opus clip (about 1.2 Mbit/s each) over WHIP to a release reel running in this
//! process, whose bus has one counting consumer (what a recorder would be).
//!
//! Table 1, per N: the loss that consumer saw (gaps in each track's sequence numbers, and the
//! packets it got against those `reel publish` reports sent), the bitrate, reel's CPU (this
//! process: SFU, bus and consumer) beside the publisher's CPU for the same packets, and reel's
//! CPU per 100 tracks. The ladder stops at the first N that loses 0.5% or more.
//!
//! Table 2: delivery time from a datagram reaching the engine to the reading consumer, with
//! and without a second consumer that never reads, at the same load.
//!
//! Run with `bench/media.sh`, which makes the clips and runs this inside a network namespace
//! with only loopback.

#[path = "cpu.rs"]
mod cpu;
#[path = "net.rs"]
mod net;
#[path = "support.rs"]
mod support;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cpu::cpu_seconds;
use net::socket_drops;
use reel::bus::{Backlog, BusMessage, Subscription};
use reel::config::{Config, MediaSettings};
use reel::domain::Cid;
use reel::recorders::Recorders;
use reel::server::Server;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "bench-secret-0123456789abcdef";
/// Participants per step of the ladder.
const LADDER: [usize; 7] = [25, 50, 100, 150, 200, 250, 300];
/// Participants while delivery time is measured.
const LATENCY_AT: usize = 50;
/// Runs of each side of the delivery-time comparison.
const LATENCY_RUNS: usize = 3;
/// Time between two participants' starts.
const STAGGER: Duration = Duration::from_millis(20);
/// Settling time after the last participant started.
const SETTLE: Duration = Duration::from_secs(3);
/// The measured window.
const STEADY: Duration = Duration::from_secs(10);
/// The loss a step may have to count as sustained.
const MAX_LOSS: f64 = 0.005;

/// What one consumer saw.
#[derive(Default)]
struct Seen {
    /// Per track: packets, lowest and highest sequence number.
    tracks: HashMap<String, (u64, u64, u64)>,
    bytes: u64,
    /// Delivery times in microseconds, when asked for.
    latencies: Vec<u32>,
}

impl Seen {
    fn packets(&self) -> u64 {
        self.tracks.values().map(|t| t.0).sum()
    }

    /// Packets missing from each track's sequence range, over the range.
    fn loss(&self) -> f64 {
        let (mut expected, mut missing) = (0u64, 0u64);
        for &(count, low, high) in self.tracks.values() {
            let span = high - low + 1;
            expected += span;
            missing += span.saturating_sub(count);
        }
        missing as f64 / expected.max(1) as f64
    }
}

/// Counts what `sub` receives until `stop`; returns what its full queue dropped.
async fn consume(
    sub: Subscription,
    seen: Arc<Mutex<Seen>>,
    stop: CancellationToken,
    time: bool,
) -> u64 {
    loop {
        let m = tokio::select! {
            _ = stop.cancelled() => return sub.dropped(),
            m = sub.recv() => m,
        };
        if let BusMessage::Packet(p) = m {
            let mut s = seen.lock().unwrap();
            if time {
                let us = p.arrival.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                s.latencies.push(us);
            }
            s.bytes += p.payload.len() as u64;
            let t = s
                .tracks
                .entry(p.track.track_id.clone())
                .or_insert((0, p.seq, p.seq));
            t.0 += 1;
            t.1 = t.1.min(p.seq);
            t.2 = t.2.max(p.seq);
        }
    }
}

struct Step {
    participants: usize,
    connected: u64,
    mbits: f64,
    loss: f64,
    received: u64,
    sent: u64,
    reel_cores: f64,
    publisher_cores: f64,
    latencies: Vec<u32>,
    stuck_dropped: Option<u64>,
    /// Where packets were lost: socket buffers, the SFU's per-peer queues, the consumer's queue.
    lost_in: (u64, u64, u64),
}

impl Step {
    fn tracks(&self) -> usize {
        self.participants * 2
    }
}

/// One run: `n` participants into a call of their own, measured over `STEADY`.
async fn step(server: &Server, clips: &Path, n: usize, time: bool, stuck: bool) -> Step {
    let call = format!("bench-{n}-{}", uuid::Uuid::new_v4().simple());
    let cid = Cid::parse(&format!("default:{call}")).unwrap();
    let bus = server.services.bus();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = CancellationToken::new();
    let sub = bus.watch(&cid, reel::recorders::BACKLOG, |_| true);
    let consumer = tokio::spawn(consume(sub, seen.clone(), stop.clone(), time));
    let unrouted = &server.services.metrics().udp_unrouted;
    let drops_before = (socket_drops(), unrouted.get());
    let never_read =
        stuck.then(|| bus.watch(&cid, Backlog::new(Duration::from_secs(60), 64), |_| true));

    let ramp = STAGGER * n as u32;
    let publish_for = ramp + SETTLE + STEADY + Duration::from_secs(1);
    let publisher = support::publish(
        &format!("http://{}/whip/default/{call}", server.addr),
        clips,
        n,
        STAGGER,
        publish_for,
        SECRET,
    );
    let pid = publisher.id().expect("a running publisher").to_string();

    tokio::time::sleep(ramp + SETTLE).await;
    let before = (
        Instant::now(),
        cpu_seconds("self"),
        cpu_seconds(&pid),
        seen.lock().unwrap().bytes,
    );
    if time {
        seen.lock().unwrap().latencies.clear();
    }
    tokio::time::sleep(STEADY).await;
    let wall = before.0.elapsed().as_secs_f64();
    let reel_cores = (cpu_seconds("self") - before.1) / wall;
    let publisher_cores = (cpu_seconds(&pid) - before.2) / wall;
    let mbits = (seen.lock().unwrap().bytes - before.3) as f64 * 8.0 / wall / 1e6;
    let latencies = std::mem::take(&mut seen.lock().unwrap().latencies);

    let out = publisher
        .wait_with_output()
        .await
        .expect("reel publish ran");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    // Let the last packets through before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    let consumer_drops = consumer.await.unwrap();
    let seen = seen.lock().unwrap();
    Step {
        participants: n,
        connected: report["connected"].as_u64().unwrap_or(0),
        mbits,
        loss: seen.loss(),
        received: seen.packets(),
        sent: report["packets"].as_u64().unwrap_or(0),
        reel_cores,
        publisher_cores,
        latencies,
        stuck_dropped: never_read.map(|s| s.dropped()),
        lost_in: (
            socket_drops() - drops_before.0,
            unrouted.get() - drops_before.1,
            consumer_drops,
        ),
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

#[tokio::main]
async fn main() {
    let clips = support::clips();
    let dir = tempfile::tempdir().unwrap();
    let settings = support::settings(dir.path(), "bench-key", SECRET, MediaSettings::default());
    let config = Config::resolve(settings).unwrap();
    let server = Server::start(config, Recorders::default()).await.unwrap();

    println!(
        "reel media plane: `reel publish` (720p VP8 + Opus clip, one process) -> reel (this process) -> one bus consumer"
    );
    println!(
        "loopback, {} cores; {STEADY:?} measured after the ramp",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!(
        "| participants | tracks | connected | Mbit/s to consumer | loss (seq gaps) | received / sent | dropped: socket / SFU (unrouted, queue full) / consumer queue | reel CPU (cores) | reel CPU per 100 tracks | reel publish CPU (cores) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|");
    let mut best = None;
    // REEL_BENCH_LADDER=25,50 runs other steps.
    let ladder: Vec<usize> = std::env::var("REEL_BENCH_LADDER")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| LADDER.to_vec());
    for n in ladder {
        let s = step(&server, &clips, n, false, false).await;
        println!(
            "| {} | {} | {} | {:.1} | {:.3}% | {} / {} | {} / {} / {} | {:.2} | {:.2} | {:.2} |",
            s.participants,
            s.tracks(),
            s.connected,
            s.mbits,
            s.loss * 100.0,
            s.received,
            s.sent,
            s.lost_in.0,
            s.lost_in.1,
            s.lost_in.2,
            s.reel_cores,
            s.reel_cores * 100.0 / s.tracks() as f64,
            s.publisher_cores,
        );
        let held = s.loss < MAX_LOSS && s.connected == n as u64;
        if held {
            best = Some(s);
        } else {
            break;
        }
    }
    println!();
    match best {
        Some(s) => println!(
            "largest N with < 0.5% loss: {} participants ({} tracks), reel at {:.2} cores \
             (target: >= 100 participants on < 1 core)",
            s.participants,
            s.tracks(),
            s.reel_cores
        ),
        None => println!("no step held < 0.5% loss"),
    }

    println!();
    println!(
        "delivery to a reading consumer at {LATENCY_AT} participants (engine input -> consumer):"
    );
    println!();
    println!(
        "| second consumer | run | p50 ms | p99 ms | max ms | loss | second consumer dropped |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    // Alternating runs, so that drift in the machine's speed does not favour either side.
    for run in 1..=LATENCY_RUNS {
        for stuck in [false, true] {
            let s = step(&server, &clips, LATENCY_AT, true, stuck).await;
            let mut l = s.latencies.clone();
            l.sort_unstable();
            println!(
                "| {} | {run} | {:.3} | {:.3} | {:.3} | {:.3}% | {} |",
                if stuck {
                    "never reads (queue of 64)"
                } else {
                    "none"
                },
                percentile(&l, 0.5),
                percentile(&l, 0.99),
                percentile(&l, 1.0),
                s.loss * 100.0,
                s.stuck_dropped.map_or("-".into(), |d| d.to_string()),
            );
        }
    }
    server.shutdown().await;
}
