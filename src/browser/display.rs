//! A virtual X display (Xvfb) of a browser's own, whose screen is captured.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::BrowserError;
use super::process::Helper;

/// Counts the displays started; each takes the next free number from 100 on.
static NEXT: AtomicU32 = AtomicU32::new(0);
/// How many numbers to try before giving up.
const TRIES: u32 = 50;
/// How long Xvfb may take to start.
const START: Duration = Duration::from_secs(10);

/// A running Xvfb, stopped when dropped.
#[derive(Debug)]
pub struct Display {
    number: u32,
    size: (u32, u32),
    _server: Helper,
}

/// Whether a running X server holds display `number`. A lock left by one that was killed
/// (as a display is, with its recording) is not a hold: the next server replaces it.
fn taken(number: u32) -> bool {
    let Ok(lock) = std::fs::read_to_string(format!("/tmp/.X{number}-lock")) else {
        return false;
    };
    lock.trim()
        .parse::<i32>()
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .is_none_or(|pid| rustix::process::test_kill_process(pid).is_ok())
}

impl Display {
    /// Starts a display for pictures of `size` (24-bit colour) on a free number.
    pub fn start(size: (u32, u32)) -> Result<Self, BrowserError> {
        let fail = |reason: String| BrowserError::Launch {
            path: "Xvfb".into(),
            reason,
        };
        for _ in 0..TRIES {
            let number = NEXT.fetch_add(1, Ordering::Relaxed);
            // Numbers wrap within a range no desktop uses.
            let number = 100 + number % 900;
            if taken(number) {
                continue;
            }
            let args = [
                format!(":{number}"),
                "-screen".into(),
                "0".into(),
                // Chromium, without a window manager, keeps a pixel of frame at the right
                // and bottom of its window: the screen is that much larger than the picture.
                format!("{}x{}x24", size.0 + 1, size.1 + 1),
                "-nolisten".into(),
                "tcp".into(),
                "-noreset".into(),
            ];
            let mut server = Helper::spawn("Xvfb", &args, &[], None)
                .map_err(|e| fail(format!("{e} (install Debian's xvfb package)")))?;
            // Ready once it holds the number's lock and listens; gone if another server
            // took the number first.
            let (lock, socket) = (
                format!("/tmp/.X{number}-lock"),
                format!("/tmp/.X11-unix/X{number}"),
            );
            let start = Instant::now();
            loop {
                if server.exited().is_some() {
                    break;
                }
                let holder = std::fs::read_to_string(&lock).unwrap_or_default();
                if holder.trim() == server.pid().to_string() && Path::new(&socket).exists() {
                    return Ok(Self {
                        number,
                        size,
                        _server: server,
                    });
                }
                if start.elapsed() > START {
                    return Err(fail(format!("no display within {START:?}")));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Err(fail(format!("no free display number in {TRIES} tries")))
    }

    /// Its name, as `DISPLAY` takes it (`:N`).
    pub fn name(&self) -> String {
        format!(":{}", self.number)
    }

    /// The size of the picture it shows (the browser's page).
    pub fn size(&self) -> (u32, u32) {
        self.size
    }
}
