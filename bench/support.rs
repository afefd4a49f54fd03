//! What the benchmarks that run a reel server share: the clips and the server's settings.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use reel::config::{MediaSettings, Settings};

/// The benchmark clips (`REEL_BENCH_CLIPS`, default `~/.cache/reel-bench/clips`), made with
/// `scripts/make-clips.sh` if missing.
pub fn clips() -> PathBuf {
    match std::env::var_os("REEL_BENCH_CLIPS") {
        Some(dir) => make_clips(PathBuf::from(dir), &[]),
        None => clips_of("clips", &[]),
    }
}

/// Clips made with `scripts/make-clips.sh DIR args` in `~/.cache/reel-bench/{name}`.
pub fn clips_of(name: &str, args: &[&str]) -> PathBuf {
    let home = std::env::var_os("HOME").expect("HOME");
    make_clips(
        PathBuf::from(home).join(".cache/reel-bench").join(name),
        args,
    )
}

fn make_clips(dir: PathBuf, args: &[&str]) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/make-clips.sh");
    let made = std::process::Command::new(script)
        .arg(&dir)
        .args(args)
        .status()
        .expect("run scripts/make-clips.sh");
    assert!(made.success(), "making the clips failed");
    dir
}

/// A server on loopback with its data in `dir` (SQLite), any free ports, and these
/// credentials.
pub fn settings(dir: &Path, key: &str, secret: &str, media: MediaSettings) -> Settings {
    Settings {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: Some(dir.to_owned()),
        database_url: Some(format!("sqlite://{}?mode=rwc", dir.join("reel.db").display()).into()),
        api_key: Some(key.into()),
        api_secret: Some(secret.into()),
        media: MediaSettings {
            udp_port: Some(0),
            ..media
        },
        ..Default::default()
    }
}

/// Starts `reel publish` with `n` participants of the looped clips in `clips`, one every
/// `stagger`, each for `duration`, into the call whose WHIP URL is `whip`; its JSON report
/// comes on stdout.
pub fn publish(
    whip: &str,
    clips: &Path,
    n: usize,
    stagger: Duration,
    duration: Duration,
    secret: &str,
) -> tokio::process::Child {
    publish_command(whip, clips, n, (stagger, duration))
        .env("REEL_API_SECRET", secret)
        .spawn()
        .expect("start reel publish")
}

/// `reel publish` as [`publish`] runs it, without credentials.
pub fn publish_command(
    whip: &str,
    clips: &Path,
    n: usize,
    (stagger, duration): (Duration, Duration),
) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_reel"));
    c.arg("publish")
        .arg(whip)
        .arg("--video")
        .arg(clips.join("vp8.ivf"))
        .arg("--audio")
        .arg(clips.join("opus.ogg"))
        .args(["-n", &n.to_string(), "--format", "json"])
        .args(["--stagger", &format!("{}ms", stagger.as_millis())])
        .args(["--duration", &format!("{}ms", duration.as_millis())])
        .env("REEL_LOG", "error")
        .stdout(Stdio::piped());
    c
}
