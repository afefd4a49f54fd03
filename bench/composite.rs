//! The composite recorder, measured: one 720p30 grid of 4 moving participants (`reel publish`,
//! a separate process) recorded by a release reel in this process, and where its CPU goes
//! (browser, display, capture, encoder, mixer; the median of three windows), beside the
//! other capture path measured the same way on the same page: `chromium-headless-shell`
//! driven with `HeadlessExperimental.beginFrame`, a JPEG screenshot per frame decoded to
//! 4:2:0 (the encoder's cost is the same for either path: the same pictures go into it). Then
//! concurrent audio-only composites of the 4 participants (no browser): their mixers' CPU,
//! and whether every file holds its wall time. Last, the time from the start request to the
//! first captured picture, with a browser standing by (as `reel serve` runs) and, on a reel
//! of its own, without; and the memory the display and browser standing by hold.
//!
//! Run with `bench/composite.sh`, which makes the clips and runs this inside a network
//! namespace with only loopback; `REEL_BENCH_PARTS` (`video,audio,start`) picks the tables.

#[path = "cpu.rs"]
mod cpu;
#[path = "probe.rs"]
mod probe;
#[path = "support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use chromiumoxide::browser::Browser;
use chromiumoxide::cdp::browser_protocol::headless_experimental::{
    BeginFrameParams, ScreenshotParams, ScreenshotParamsFormat,
};
use chromiumoxide::cdp::browser_protocol::target::CreateTargetParams;
use cpu::cpu_seconds;
use futures_util::StreamExt;
use reel::auth::Keys;
use reel::config::{Config, HumanDuration, MediaSettings};
use reel::domain::{Cid, RecordingState, RecordingType};
use reel::recorders::Recorders;
use reel::server::Server;
use serde_json::{Value, json};

const KEY: &str = "bench-key";
const SECRET: &str = "bench-secret-0123456789abcdef";
/// Participants in the call.
const PARTICIPANTS: usize = 4;
/// The measured window.
const WINDOW: Duration = Duration::from_secs(20);
/// Windows of `WINDOW` the Xvfb path is measured in: its figure is the median one's.
const XVFB_WINDOWS: usize = 3;
/// Start requests timed on each side.
const STARTS: usize = 3;
/// Concurrent audio-only composites, per step.
const AUDIO_ONLY: [usize; 2] = [10, 40];
/// Linux reports process and thread times in these ticks per second.
const TICKS: f64 = 100.0;

/// User plus system CPU seconds in a `/proc` stat line.
fn stat_seconds(stat: &str) -> Option<(i32, f64)> {
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let group = fields.get(2)?.parse().ok()?;
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    Some((group, (ticks(11)? + ticks(12)?) / TICKS))
}

/// CPU seconds of every process in process group `group`.
fn group_cpu(group: i32) -> f64 {
    members(group).map(|(_, seconds)| seconds).sum()
}

/// The `/proc` folders and CPU seconds of the processes in process group `group`.
fn members(group: i32) -> impl Iterator<Item = (std::path::PathBuf, f64)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(move |e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let (g, seconds) = stat_seconds(&stat)?;
            (g == group).then(|| (e.path(), seconds))
        })
}

/// The memory (MiB, proportional set size: shared pages split among their users) of the
/// processes in process group `group`.
fn group_pss(group: i32) -> f64 {
    members(group)
        .filter_map(|(dir, _)| std::fs::read_to_string(dir.join("smaps_rollup")).ok())
        .filter_map(|rollup| {
            let line = rollup.lines().find(|l| l.starts_with("Pss:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .sum::<f64>()
        / 1024.0
}

/// CPU seconds of this process's threads whose names start with `name`.
fn threads_cpu(name: &str) -> f64 {
    std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.starts_with(name))
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|s| stat_seconds(&s))
        .map(|(_, s)| s)
        .sum()
}

/// The process groups of this process's children named `name` (each helper leads its own).
fn helper_groups(name: &str) -> Vec<i32> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let open = stat.find('(')?;
            let close = stat.rfind(')')?;
            let parent = stat[close + 1..].split_whitespace().nth(1)?;
            (parent == me && stat[open + 1..close].starts_with(name))
                .then(|| stat[..open].trim().parse().ok())?
        })
        .collect()
}

/// The video pictures in `file`, and its duration in seconds.
fn frames(file: &Path) -> (u64, f64) {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("ffprobe runs");
    let frames = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    (frames, probe::duration(file))
}

/// Calls reel's Stream-compatible API as the server.
async fn api(http: &reqwest::Client, base: &str, path: &str, body: Value) -> Value {
    http.post(format!("{base}{path}?api_key={KEY}"))
        .header("authorization", Keys::new(KEY, SECRET).server_token())
        .header("stream-auth-type", "jwt")
        .json(&body)
        .send()
        .await
        .expect("reel answers")
        .json()
        .await
        .unwrap_or_default()
}

/// The composites of `cid` whose state is `state`.
async fn composites(
    server: &Server,
    cid: &Cid,
    state: RecordingState,
) -> Vec<reel::domain::Recording> {
    let (found, _) = server
        .services
        .store()
        .find_recordings(&reel::store::RecordingFilter {
            cid: Some(cid.clone()),
            types: vec![RecordingType::Composite],
            states: Some(vec![state]),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("the store answers");
    found
}

/// Where the CPU of one capture path went, in cores.
#[derive(Default)]
struct Split {
    browser: f64,
    display: f64,
    capture: f64,
    encode: f64,
    audio: f64,
    /// Pictures a second delivered.
    rate: f64,
}

impl Split {
    fn total(&self) -> f64 {
        self.browser + self.display + self.capture + self.encode + self.audio
    }
}

/// Starts a composite of the call: the recording, once it has its first picture, and the
/// seconds since the request.
async fn start(
    server: &Server,
    http: &reqwest::Client,
    base: &str,
    cid: &Cid,
) -> (reel::domain::Recording, f64) {
    let path = format!("/api/v2/video/call/default/{}", cid.id);
    let asked = Instant::now();
    api(http, base, &format!("{path}/start_recording"), json!({})).await;
    loop {
        if let Some(r) = composites(server, cid, RecordingState::Running).await.pop() {
            break (r, asked.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Stops the composite `running` of the call: the recording once it is ready.
async fn stop(
    server: &Server,
    http: &reqwest::Client,
    base: &str,
    running: &reel::domain::Recording,
) -> reel::domain::Recording {
    let cid = &running.cid;
    let path = format!("/api/v2/video/call/default/{}", cid.id);
    api(http, base, &format!("{path}/stop_recording"), json!({})).await;
    loop {
        if let Some(r) = composites(server, cid, RecordingState::Ready)
            .await
            .into_iter()
            .find(|r| r.id == running.id)
        {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// reel's own composite of the call: the split of the median of its windows (by total), the
/// least and most total of any window, and the file's pictures a second.
async fn xvfb_path(
    server: &Server,
    http: &reqwest::Client,
    (base, stored): (&str, &Path),
    cid: &Cid,
) -> (Split, (f64, f64)) {
    let (running, _) = start(server, http, base, cid).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (browsers, displays) = (helper_groups("chrom"), helper_groups("Xvfb"));
    let sample = || {
        (
            browsers.iter().map(|g| group_cpu(*g)).sum::<f64>(),
            displays.iter().map(|g| group_cpu(*g)).sum::<f64>(),
            threads_cpu("reel-capture"),
            threads_cpu("reel-encoder"),
            threads_cpu("reel-mixer"),
        )
    };
    let mut windows = Vec::new();
    let (mut before, mut t0) = (sample(), Instant::now());
    for _ in 0..XVFB_WINDOWS {
        tokio::time::sleep(WINDOW).await;
        let (after, t1) = (sample(), Instant::now());
        let wall = (t1 - t0).as_secs_f64();
        windows.push(Split {
            browser: (after.0 - before.0) / wall,
            display: (after.1 - before.1) / wall,
            capture: (after.2 - before.2) / wall,
            encode: (after.3 - before.3) / wall,
            audio: (after.4 - before.4) / wall,
            rate: 0.0,
        });
        (before, t0) = (after, t1);
    }
    let done = stop(server, http, base, &running).await;
    let files = server
        .services
        .store()
        .files_of(&done.id)
        .await
        .expect("files");
    let file = stored.join(&files[0].file.object_key);
    let (frames, seconds) = frames(&file);
    windows.sort_by(|a, b| a.total().total_cmp(&b.total()));
    let totals = (windows[0].total(), windows[XVFB_WINDOWS - 1].total());
    let median = Split {
        rate: frames as f64 / seconds,
        ..windows[XVFB_WINDOWS / 2]
    };
    (median, totals)
}

/// The same page in `chromium-headless-shell`, a frame begun and screenshotted (JPEG) 30
/// times a second and decoded to 4:2:0, on a thread of its own; the encoder is not run.
fn begin_frame_path(url: String) -> Split {
    std::thread::Builder::new()
        .name("bench-beginframe".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(begin_frames(&url))
        })
        .expect("a thread")
        .join()
        .expect("the beginFrame path ran")
}

async fn begin_frames(url: &str) -> Split {
    let profile = tempfile::tempdir().expect("a profile");
    let mut shell = std::process::Command::new("/usr/lib/chromium/chromium-headless-shell");
    std::os::unix::process::CommandExt::process_group(&mut shell, 0);
    let mut shell = shell
        .args([
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--mute-audio",
            "--autoplay-policy=no-user-gesture-required",
            "--allow-loopback-in-peer-connection",
            "--disable-features=WebRtcHideLocalIpsWithMdns",
            "--enable-begin-frame-control",
            "--run-all-compositor-stages-before-draw",
            "--remote-debugging-port=0",
            "--window-size=1280,720",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromium-headless-shell starts");
    let group = i32::try_from(shell.id()).expect("a pid");
    let port_file = profile.path().join("DevToolsActivePort");
    let ws = loop {
        if let Ok(text) = std::fs::read_to_string(&port_file)
            && let [port, path] = text.lines().collect::<Vec<_>>()[..]
        {
            break format!("ws://127.0.0.1:{port}{path}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (browser, mut handler) = Browser::connect(ws).await.expect("DevTools");
    tokio::spawn(async move { while handler.next().await.is_some() {} });
    let page = browser
        .new_page(
            CreateTargetParams::builder()
                .url("about:blank")
                .width(1280)
                .height(720)
                .enable_begin_frame_control(true)
                .build()
                .expect("target params"),
        )
        .await
        .expect("a page");
    let _ = page.goto(url).await;
    let period = Duration::from_secs(1) / 30;
    let frame = |screenshot: bool| {
        let mut b = BeginFrameParams::builder().interval(1000.0 / 30.0);
        if screenshot {
            b = b.screenshot(
                ScreenshotParams::builder()
                    .format(ScreenshotParamsFormat::Jpeg)
                    .quality(80)
                    .build(),
            );
        }
        b.build()
    };
    // Frames are drawn only when begun: until the page is ready, without pictures.
    let ready = Instant::now();
    while page
        .find_element("#egress-ready-for-capture")
        .await
        .is_err()
        && ready.elapsed() < Duration::from_secs(20)
    {
        let _ = page.execute(frame(false)).await;
        tokio::time::sleep(period).await;
    }
    ffmpeg_next::init().expect("FFmpeg");
    let jpeg = ffmpeg_next::decoder::find(ffmpeg_next::codec::Id::MJPEG).expect("MJPEG");
    let mut decoder = ffmpeg_next::codec::context::Context::new_with_codec(jpeg)
        .decoder()
        .video()
        .expect("a decoder");
    // JPEG decodes to 4:2:0 planes (full range), as the encoder takes them.
    let mut decoded = ffmpeg_next::frame::Video::empty();
    let (before, me, t0) = (group_cpu(group), cpu_seconds("thread-self"), Instant::now());
    let mut pictures = 0_u32;
    let mut due = Instant::now();
    while t0.elapsed() < WINDOW {
        let Ok(begun) = page.execute(frame(true)).await else {
            continue;
        };
        if let Some(data) = &begun.result.screenshot_data {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(AsRef::<str>::as_ref(data))
                .unwrap_or_default();
            if decoder
                .send_packet(&ffmpeg_next::Packet::copy(&bytes))
                .is_ok()
                && decoder.receive_frame(&mut decoded).is_ok()
            {
                pictures += 1;
            }
        }
        due += period;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let split = Split {
        browser: (group_cpu(group) - before) / wall,
        capture: (cpu_seconds("thread-self") - me) / wall,
        rate: f64::from(pictures) / wall,
        ..Split::default()
    };
    let _ = rustix::process::kill_process_group(
        rustix::process::Pid::from_raw(group).expect("a pid"),
        rustix::process::Signal::KILL,
    );
    let _ = shell.wait();
    split
}

/// `n` audio-only composites of the call at once: their mixers' cores, and the shortest file
/// against the wall time they ran.
async fn audio_only(
    server: &Server,
    http: &reqwest::Client,
    (base, stored): (&str, &Path),
    cid: &Cid,
    n: usize,
) -> (f64, f64, f64) {
    let kit = format!("{base}/client/v4/accounts/a/realtime/kit/b/recordings");
    let started = Instant::now();
    for _ in 0..n {
        let res = http
            .post(&kit)
            .bearer_auth(SECRET)
            .json(
                &json!({"meeting_id": cid.id.as_str(), "allow_multiple_recordings": true,
                          "video_config": {"export_file": false},
                          "audio_config": {"codec": "MP3"}}),
            )
            .send()
            .await
            .expect("reel answers");
        assert!(
            res.status().is_success(),
            "{}",
            res.text().await.unwrap_or_default()
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (before, t0) = (threads_cpu("reel-mixer"), Instant::now());
    tokio::time::sleep(WINDOW).await;
    let cores = (threads_cpu("reel-mixer") - before) / t0.elapsed().as_secs_f64();
    let running = composites(server, cid, RecordingState::Running).await;
    for r in &running {
        http.put(format!("{kit}/{}", r.id))
            .bearer_auth(SECRET)
            .json(&json!({"action": "stop"}))
            .send()
            .await
            .expect("reel answers");
    }
    let wall = started.elapsed().as_secs_f64();
    let mut shortest = f64::MAX;
    for r in running {
        let done = loop {
            let rec = server
                .services
                .store()
                .get_recording(&r.id)
                .await
                .expect("the store")
                .expect("the recording");
            if rec.state.is_final() {
                break rec;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        for f in server
            .services
            .store()
            .files_of(&done.id)
            .await
            .expect("files")
        {
            shortest = shortest.min(probe::duration(&stored.join(&f.file.object_key)));
        }
    }
    (cores, shortest, wall)
}

/// A release reel with `recorders`, whose call has [`PARTICIPANTS`] publishers.
struct Served {
    server: Server,
    base: String,
    stored: PathBuf,
    cid: Cid,
    publisher: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl Served {
    /// Stops the publishers, then reel.
    async fn end(mut self) {
        let _ = self.publisher.kill().await;
        self.server.shutdown().await;
    }
}

async fn serve(recorders: Recorders, clips: &Path, http: &reqwest::Client) -> Served {
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
    let server = Server::start(config, recorders).await.unwrap();
    let base = format!("http://{}", server.addr);
    let call = "composite-bench";
    let cid = Cid::parse(&format!("default:{call}")).unwrap();
    api(
        http,
        &base,
        &format!("/api/v2/video/call/default/{call}"),
        json!({"data": {"created_by_id": "bench", "settings_override": {
            "recording": {"quality": "720p", "layout": {"name": "grid"}}}}}),
    )
    .await;
    let publisher = support::publish(
        &format!("{base}/whip/default/{call}"),
        clips,
        PARTICIPANTS,
        Duration::from_millis(100),
        Duration::from_secs(600),
        SECRET,
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    Served {
        server,
        base,
        stored,
        cid,
        publisher,
        _dir: dir,
    }
}

/// The seconds from each of [`STARTS`] start requests to its first picture, each recording
/// stopped before the next (and a second let pass).
async fn start_times(served: &Served, http: &reqwest::Client) -> Vec<f64> {
    let mut times = Vec::new();
    for _ in 0..STARTS {
        let (running, seconds) = start(&served.server, http, &served.base, &served.cid).await;
        times.push(seconds);
        stop(&served.server, http, &served.base, &running).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    times
}

/// `times` as "median (min-max)".
fn spread(times: &mut [f64]) -> String {
    times.sort_by(f64::total_cmp);
    format!(
        "{:.2} s ({:.2}-{:.2})",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    )
}

#[tokio::main]
async fn main() {
    // REEL_BENCH_PARTS=audio runs the audio-only table alone.
    let parts = std::env::var("REEL_BENCH_PARTS").unwrap_or_else(|_| "video,audio,start".into());
    let part = |name: &str| parts.split(',').any(|p| p.trim() == name);
    let clips = support::clips();
    let http = reqwest::Client::new();
    // As `reel serve` runs them: a browser stands by for the next composite.
    let served = serve(Recorders::all_standing_by(), &clips, &http).await;
    if part("video") {
        video(&served, &http).await;
    }
    if part("audio") {
        audio(&served, &http).await;
    }
    if part("start") {
        starts(served, &clips, &http).await;
    } else {
        served.end().await;
    }
}

/// The 720p30 table: the composite's CPU on each capture path.
async fn video(served: &Served, http: &reqwest::Client) {
    let (server, base, stored, cid) = (&served.server, &served.base, &served.stored, &served.cid);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "one 720p30 grid composite of {PARTICIPANTS} moving participants (`reel publish`, 720p VP8 + Opus), {cores} cores, CPU over {WINDOW:?}"
    );
    println!();
    let (xvfb, (least, most)) = xvfb_path(server, http, (base, stored), cid).await;
    let viewer = Keys::new(KEY, SECRET).viewer_token(cid, Duration::from_secs(3600));
    let shell = begin_frame_path(format!("{base}/layout/default/{}?token={viewer}", cid.id));
    println!(
        "| capture path | pictures/s | browser | display (Xvfb) | capture | encode (x264 veryfast) | audio mix + AAC | total (cores of {cores}) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| Xvfb + kiosk Chromium + x11grab (reel) | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
        xvfb.rate,
        xvfb.browser,
        xvfb.display,
        xvfb.capture,
        xvfb.encode,
        xvfb.audio,
        xvfb.total()
    );
    let with_encoder = Split {
        encode: xvfb.encode,
        audio: xvfb.audio,
        ..shell
    };
    println!(
        "| headless shell + beginFrame + JPEG | {:.1} | {:.2} | - | {:.2} | {:.2} (reel's) | {:.2} (reel's) | {:.2} |",
        shell.rate,
        shell.browser,
        shell.capture,
        xvfb.encode,
        xvfb.audio,
        with_encoder.total()
    );
    println!();
    println!(
        "720p30 total {:.2} cores, the median of {XVFB_WINDOWS} windows of {WINDOW:?} ({least:.2}-{most:.2}) (target <= 1.0; LiveKit egress reserves 4 cores for one)",
        xvfb.total()
    );
    println!();
}

/// The audio-only table: how many composites of audio alone a core holds.
async fn audio(served: &Served, http: &reqwest::Client) {
    let (server, base, stored, cid) = (&served.server, &served.base, &served.stored, &served.cid);
    println!(
        "| audio-only composites at once | mixer + MP3 cores | per composite | composites per core | shortest file / wall (s) |"
    );
    println!("|---:|---:|---:|---:|---|");
    for n in AUDIO_ONLY {
        let (cores, shortest, wall) = audio_only(server, http, (base, stored), cid, n).await;
        let each = cores / n as f64;
        println!(
            "| {n} | {cores:.3} | {each:.4} | {:.0} | {shortest:.1} / {wall:.1} |",
            1.0 / each.max(1e-6)
        );
    }
    println!();
    println!("target: >= 50 audio-only composites per core (Agora publishes 19 per vCPU)");
    println!();
}

/// The start times, with a browser standing by and without, and what standing by holds.
async fn starts(served: Served, clips: &Path, http: &reqwest::Client) {
    // The start, with the browser standing by and, on a reel of its own, without.
    let mut warm = start_times(&served, http).await;
    // What a display and a browser standing by hold while no composite runs.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let standing_by: f64 = ["chrom", "Xvfb"]
        .iter()
        .flat_map(|name| helper_groups(name))
        .map(group_pss)
        .sum();
    served.end().await;
    let cold_served = serve(Recorders::all(), clips, http).await;
    let mut cold = start_times(&cold_served, http).await;
    println!(
        "| start request to first captured picture ({} starts) | median (min-max) |",
        STARTS
    );
    println!("|---|---:|");
    println!(
        "| a browser standing by (`reel serve`'s default) | {} |",
        spread(&mut warm)
    );
    println!(
        "| none standing by (`REEL_COMPOSITE_STANDBY=false`) | {} |",
        spread(&mut cold)
    );
    println!();
    println!("target: <= 2 s");
    println!();
    println!(
        "memory held by the display and browser standing by, between composites: {standing_by:.0} MiB (PSS)"
    );
    cold_served.end().await;
}
