//! Half an hour of load: 40 participants (`reel publish`, a looped 360p VP8 + Opus clip) in
//! four calls and four broadcasts, recorded every way at once by a release reel in this
//! process: raw, individual (`auto-on`) and track (RealtimeKit API) in every call, composite
//! (Chromium, 360p, `auto-on`) in the first, and every broadcast (a publish token that
//! records, with thumbnails).
//!
//! Every 10 s it samples the memory and CPU of reel (resident set) and of the processes it
//! started (Chromium, Xvfb: proportional set, so that pages they share count once). At the end it waits for every recording to be finished and stored, and
//! prints: the samples per minute; the summary (memory after warm-up against its value at the
//! end of warm-up, CPU in the first half of the steady part against the second, recordings
//! ready against started, packets lost in queues). It writes `soak.csv` and `soak.png` (memory
//! and CPU over time) to `REEL_SOAK_OUT` (default `~/.cache/reel-bench/soak`).
//!
//! Run with `bench/soak.sh`; `REEL_SOAK_MINUTES` (default 30) and `REEL_SOAK_PARTICIPANTS`
//! (default 40) change its size, `REEL_BENCH_CLIPS` its clips. The first sixth of the run (5 minutes of 30) is warm-up.

#[path = "cpu.rs"]
mod cpu;
#[path = "support.rs"]
mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cpu::cpu_seconds;
use plotters::prelude::*;
use reel::auth::Keys;
use reel::config::{Config, HumanDuration, MediaSettings};
use reel::domain::{RecordingState, RecordingType};
use reel::recorders::Recorders;
use reel::server::Server;
use reel::store::RecordingFilter;
use serde_json::{Value, json};

const KEY: &str = "soak-key";
const SECRET: &str = "soak-secret-0123456789abcdef";
/// Calls the participants are spread over (the rest of them broadcast).
const CALLS: usize = 4;
/// Broadcasts, each a participant.
const BROADCASTS: usize = 4;
/// Time between two samples.
const SAMPLE: Duration = Duration::from_secs(10);
/// Time between two participants' starts.
const STAGGER: Duration = Duration::from_millis(200);
/// How long participants stay after the last sample, so that no sample sees calls ending.
const LINGER: Duration = Duration::from_secs(30);
/// Fonts the plot's text is drawn with (Debian's `fonts-noto-core`, installed by the set-up).
const FONT: &str = "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf";

/// One sample: minutes since the start, memory (MiB: reel's resident set, its children's
/// proportional sets, which share Chromium's pages out rather than count them once per
/// process) and CPU (cores, over the interval before it) of reel and of its children.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    minute: f64,
    reel_mib: f64,
    children_mib: f64,
    reel_cores: f64,
    children_cores: f64,
}

/// Memory of `pid`, MiB: `field` (`VmRSS`, resident) of `status`, or (`Pss`, resident with
/// pages shared between processes divided among them) of `smaps_rollup`.
fn memory_mib(pid: u32, file: &str, field: &str) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Every process below `root`.
fn descendants(root: u32) -> Vec<u32> {
    let mut parent = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parent.insert(pid, ppid);
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(parent.iter().filter(|(_, pp)| **pp == p).map(|(c, _)| *c));
        i += 1;
    }
    found.remove(0);
    found
}

/// Samples reel (this process) and the processes it started, apart from `publishers`.
struct Sampler {
    start: Instant,
    last: Instant,
    reel_cpu: f64,
    children_cpu: HashMap<u32, f64>,
    publishers: Vec<u32>,
}

impl Sampler {
    fn new(publishers: Vec<u32>) -> Self {
        let now = Instant::now();
        Self {
            start: now,
            last: now,
            reel_cpu: cpu_seconds("self"),
            children_cpu: HashMap::new(),
            publishers,
        }
    }

    fn sample(&mut self) -> Sample {
        let now = Instant::now();
        let wall = now.duration_since(self.last).as_secs_f64().max(1e-3);
        let me = std::process::id();
        let reel_cpu = cpu_seconds("self");
        let mut children_cpu = HashMap::new();
        let (mut children_mib, mut children_spent) = (0.0, 0.0);
        for pid in descendants(me) {
            if self.publishers.contains(&pid) {
                continue;
            }
            let cpu = cpu_seconds(&pid.to_string());
            children_spent += cpu - self.children_cpu.get(&pid).copied().unwrap_or(0.0);
            children_cpu.insert(pid, cpu);
            children_mib += memory_mib(pid, "smaps_rollup", "Pss");
        }
        let s = Sample {
            minute: now.duration_since(self.start).as_secs_f64() / 60.0,
            reel_mib: memory_mib(me, "status", "VmRSS"),
            children_mib,
            reel_cores: (reel_cpu - self.reel_cpu) / wall,
            children_cores: children_spent / wall,
        };
        (self.last, self.reel_cpu, self.children_cpu) = (now, reel_cpu, children_cpu);
        s
    }
}

/// Calls reel's API: the Stream dialect with a server token, the others with the secret.
async fn api(http: &reqwest::Client, base: &str, method: &str, path: &str, body: Value) -> Value {
    let method: reqwest::Method = method.parse().expect("a method");
    let req = if path.starts_with("/api/v2/") {
        http.request(method.clone(), format!("{base}{path}?api_key={KEY}"))
            .header("authorization", Keys::new(KEY, SECRET).server_token())
            .header("stream-auth-type", "jwt")
    } else {
        http.request(method.clone(), format!("{base}{path}"))
            .bearer_auth(SECRET)
    };
    let res = req.json(&body).send().await.expect("reel answers");
    let status = res.status();
    let body: Value = res.json().await.unwrap_or_default();
    assert!(status.is_success(), "{method} {path}: {status} {body}");
    body
}

/// `reel publish` of `n` broadcasts into `url` for `duration` with the publish `token`.
fn broadcaster(
    url: &str,
    clips: &Path,
    n: usize,
    duration: Duration,
    token: &str,
) -> tokio::process::Child {
    support::publish_command(url, clips, n, (STAGGER, duration))
        .args(["--token", token])
        .spawn()
        .expect("start reel publish")
}

fn out_dir() -> PathBuf {
    match std::env::var_os("REEL_SOAK_OUT") {
        Some(d) => PathBuf::from(d),
        None => {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/reel-bench/soak")
        }
    }
}

/// A line of a plot: its name, its value in a sample, its colour.
type Line = (&'static str, fn(&Sample) -> f64, RGBColor);

/// Draws memory and CPU over time into `path`.
fn plot(samples: &[Sample], warm_up: f64, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let font: &'static [u8] = Box::leak(std::fs::read(FONT)?.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, font)
        .map_err(|_| "the font cannot be read")?;
    let root = BitMapBackend::new(path, (1200, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(450);
    let end = samples.last().map_or(1.0, |s| s.minute);
    let series = |f: fn(&Sample) -> f64| samples.iter().map(move |s| (s.minute, f(s)));
    let panels: [(_, &str, &str, [Line; 3]); 2] = [
        (
            &top,
            "Memory (reel: RSS; Chromium and Xvfb: PSS)",
            "MiB",
            [
                ("reel", |s| s.reel_mib, BLUE),
                ("Chromium and Xvfb", |s| s.children_mib, RED),
                ("together", |s| s.reel_mib + s.children_mib, BLACK),
            ],
        ),
        (
            &bottom,
            "CPU",
            "cores",
            [
                ("reel", |s| s.reel_cores, BLUE),
                ("Chromium and Xvfb", |s| s.children_cores, RED),
                ("together", |s| s.reel_cores + s.children_cores, BLACK),
            ],
        ),
    ];
    for (area, title, unit, lines) in panels {
        let top_value = samples
            .iter()
            .map(lines[2].1)
            .fold(0.0f64, f64::max)
            .max(1e-3)
            * 1.15;
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 24))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..end, 0.0..top_value)?;
        chart
            .configure_mesh()
            .x_desc("minutes")
            .y_desc(unit)
            .label_style(("sans-serif", 15))
            .draw()?;
        chart.draw_series(LineSeries::new(
            [(warm_up, 0.0), (warm_up, top_value)],
            ShapeStyle::from(&RGBColor(160, 160, 160)).stroke_width(1),
        ))?;
        for (name, f, color) in lines {
            chart
                .draw_series(LineSeries::new(series(f), color.stroke_width(2)))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .draw()?;
    }
    root.present()?;
    Ok(())
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    sum / n.max(1) as f64
}

#[tokio::main]
async fn main() {
    let minutes: f64 = std::env::var("REEL_SOAK_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(30.0);
    let participants: usize = std::env::var("REEL_SOAK_PARTICIPANTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(40);
    assert!(
        participants > BROADCASTS + CALLS,
        "at least one participant per call"
    );
    let per_call = (participants - BROADCASTS) / CALLS;
    let run = Duration::from_secs_f64(minutes * 60.0);
    let warm_up = minutes / 6.0;
    let clips = match std::env::var_os("REEL_BENCH_CLIPS") {
        Some(_) => support::clips(),
        None => support::clips_of("soak", &["640x360", "10", "400k"]),
    };
    let dir = tempfile::tempdir().expect("a scratch directory");
    let settings = support::settings(
        dir.path(),
        KEY,
        SECRET,
        MediaSettings {
            session_grace: Some(HumanDuration(Duration::from_secs(1))),
            ..Default::default()
        },
    );
    let config = Config::resolve(settings).expect("valid settings");
    let server = Server::start(config, Recorders::all())
        .await
        .expect("reel starts");
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();

    let token = api(
        &http,
        &base,
        "POST",
        "/api/publish_token",
        json!({"label": "soak", "streams": [{"streamName": "soak-[0-9]+", "isRegex": true}],
               "record": true, "enableThumbnails": true}),
    )
    .await;
    let token = token["data"]["token"]
        .as_str()
        .expect("a publish token")
        .to_owned();
    let mut publishers = Vec::new();
    for c in 0..CALLS {
        let mut overrides = json!({"raw_recording": {"mode": "auto-on"},
                                   "individual_recording": {"mode": "auto-on"}});
        if c == 0 {
            overrides["recording"] = json!({"mode": "auto-on", "quality": "360p"});
        }
        api(
            &http,
            &base,
            "POST",
            &format!("/api/v2/video/call/default/soak-{c}"),
            json!({"data": {"created_by_id": "soak", "settings_override": overrides}}),
        )
        .await;
        let whip = format!("{base}/whip/default/soak-{c}");
        publishers.push(support::publish(
            &whip,
            &clips,
            per_call,
            STAGGER,
            run + LINGER,
            SECRET,
        ));
    }
    let broadcasts = format!("{base}/whip/broadcast/soak-{{n}}");
    publishers.push(broadcaster(
        &broadcasts,
        &clips,
        BROADCASTS,
        run + LINGER,
        &token,
    ));
    let pids = publishers.iter().filter_map(|p| p.id()).collect();
    // The track recordings, once each call's session is live.
    for c in 0..CALLS {
        let kit = format!("{base}/client/v4/accounts/a/realtime/kit/b/recordings/track");
        while !http
            .post(&kit)
            .bearer_auth(SECRET)
            .json(&json!({"meeting_id": format!("soak-{c}")}))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    println!(
        "soak: {participants} participants ({CALLS} calls of {per_call}, {BROADCASTS} broadcasts), \
         {minutes} minutes, {} cores; raw + individual + track in every call, composite 360p in one, every broadcast",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!(
        "| minute | reel RSS (MiB) | Chromium + Xvfb PSS (MiB) | reel CPU (cores) | Chromium + Xvfb CPU (cores) |"
    );
    println!("|---:|---:|---:|---:|---:|");
    let mut sampler = Sampler::new(pids);
    let mut samples = Vec::new();
    let mut next_row = 1.0;
    while sampler.start.elapsed() < run {
        tokio::time::sleep(SAMPLE).await;
        let s = sampler.sample();
        if s.minute >= next_row {
            println!(
                "| {:.0} | {:.0} | {:.0} | {:.2} | {:.2} |",
                s.minute, s.reel_mib, s.children_mib, s.reel_cores, s.children_cores
            );
            next_row += 1.0;
        }
        samples.push(s);
    }

    for p in publishers {
        let _ = p.wait_with_output().await;
    }
    let bus = server.services.bus().counters().clone();
    let expected = CALLS * 3 + 1 + BROADCASTS;
    let store = server.services.store();
    let filter = RecordingFilter {
        types: RecordingType::ALL.to_vec(),
        limit: 1000,
        ..RecordingFilter::default()
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    let recordings = loop {
        let (found, _) = store
            .find_recordings(&filter)
            .await
            .expect("the store answers");
        if (found.len() >= expected && found.iter().all(|r| r.state.is_final()))
            || Instant::now() > deadline
        {
            break found;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let ready = recordings
        .iter()
        .filter(|r| r.state == RecordingState::Ready)
        .count();
    let not_ready: Vec<String> = recordings
        .iter()
        .filter(|r| r.state != RecordingState::Ready)
        .map(|r| format!("{} {:?} {:?}", r.cid, r.recording_type, r.state))
        .collect();

    let steady: Vec<&Sample> = samples.iter().filter(|s| s.minute >= warm_up).collect();
    let at_warm_up = steady.first().map_or(0.0, |s| s.reel_mib + s.children_mib);
    let reel_at_warm_up = steady.first().map_or(0.0, |s| s.reel_mib);
    let spread = |f: fn(&Sample) -> f64, at: f64| {
        let (lo, hi) = steady
            .iter()
            .map(|s| f(s))
            .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        (
            lo,
            hi,
            (hi - at).abs().max((at - lo).abs()) * 100.0 / at.max(1e-3),
        )
    };
    let (reel_lo, reel_hi, reel_spread) = spread(|s| s.reel_mib, reel_at_warm_up);
    let (all_lo, all_hi, all_spread) = spread(|s| s.reel_mib + s.children_mib, at_warm_up);
    let half = steady.len() / 2;
    let cores = |part: &[&Sample]| mean(part.iter().map(|s| s.reel_cores + s.children_cores));
    let (first, second) = (cores(&steady[..half]), cores(&steady[half..]));

    println!();
    println!(
        "| after warm-up ({warm_up:.1} min) | at its end | lowest | highest | furthest from it | target |"
    );
    println!("|---|---:|---:|---:|---:|---|");
    println!(
        "| reel RSS (MiB) | {reel_at_warm_up:.0} | {reel_lo:.0} | {reel_hi:.0} | {reel_spread:.1}% | within 10% |"
    );
    println!(
        "| reel RSS + Chromium and Xvfb PSS (MiB) | {at_warm_up:.0} | {all_lo:.0} | {all_hi:.0} | {all_spread:.1}% | within 10% |"
    );
    println!();
    println!("| CPU (cores, reel + children) | first half after warm-up | second half | change |");
    println!("|---|---:|---:|---:|");
    println!(
        "| mean | {first:.2} | {second:.2} | {:+.1}% |",
        (second - first) * 100.0 / first.max(1e-3)
    );
    println!();
    println!(
        "recordings ready: {ready} of {} (expected {expected}); packets lost in subscriber queues: {}",
        recordings.len(),
        bus.dropped.get()
    );
    for r in &not_ready {
        println!("not ready: {r}");
    }

    let out = out_dir();
    std::fs::create_dir_all(&out).expect("the output directory");
    let mut csv = String::from("minute,reel_rss_mib,children_pss_mib,reel_cores,children_cores\n");
    for s in &samples {
        csv += &format!(
            "{:.3},{:.1},{:.1},{:.3},{:.3}\n",
            s.minute, s.reel_mib, s.children_mib, s.reel_cores, s.children_cores
        );
    }
    std::fs::write(out.join("soak.csv"), csv).expect("soak.csv is written");
    match plot(&samples, warm_up, &out.join("soak.png")) {
        Ok(()) => println!("plot: {}", out.join("soak.png").display()),
        Err(e) => println!("no plot: {e}"),
    }
    let held = ready == expected
        && recordings.len() == expected
        && reel_spread <= 10.0
        && all_spread <= 10.0;
    println!("held: {}", if held { "yes" } else { "no" });
    server.shutdown().await;
}
