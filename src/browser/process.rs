//! Helper processes (a display server, a browser) that never outlive their use: each runs
//! in a process group of its own, killed whole when its [`Helper`] is dropped, and with the
//! parent-death signal set (`setpriv --pdeathsig KILL`) by a thread that lives as long as
//! reel, so that a reel killed with SIGKILL takes them along.
//!
//! A helper started ahead of need may run idle (Linux's `SCHED_IDLE`: only when nothing
//! else would), and come forward to the normal policy when it is needed. Niceness would not
//! do: Chromium sets its threads' niceness itself, where it may.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc;
use std::sync::{LazyLock, Mutex};

use rustix::process::{Pid, Signal, kill_process_group};

type Request = (Command, mpsc::Sender<io::Result<Child>>);

/// The thread that starts helpers. The parent-death signal fires when the thread that
/// started a process ends, so it is one that never does.
static SPAWNER: LazyLock<Mutex<mpsc::Sender<Request>>> = LazyLock::new(|| {
    let (tx, rx) = mpsc::channel::<Request>();
    std::thread::Builder::new()
        .name("reel-helpers".into())
        .spawn(move || {
            for (mut command, answer) in rx {
                let _ = answer.send(command.spawn());
            }
        })
        .expect("a thread for starting helper processes");
    Mutex::new(tx)
});

/// A helper process and its process group.
#[derive(Debug)]
pub struct Helper {
    child: Child,
    name: String,
    /// Started idle.
    idle: bool,
}

impl Helper {
    /// Starts `program` with `args` (and `envs`) in a process group of its own, killed if
    /// reel dies. Its output goes to `log` if given, else nowhere.
    /// With `idle`, it and everything it starts run idle until [`come_forward`].
    pub fn spawn(
        program: &str,
        args: &[String],
        envs: &[(&str, &str)],
        log: Option<std::fs::File>,
        idle: bool,
    ) -> io::Result<Self> {
        let mut command = Command::new("setpriv");
        command.args(["--pdeathsig", "KILL", "--"]);
        if idle {
            command.args(["chrt", "--idle", "0"]);
        }
        command
            .arg(program)
            .args(args)
            .envs(envs.iter().copied())
            .stdin(std::process::Stdio::null())
            .process_group(0);
        match log {
            Some(file) => {
                command.stdout(file.try_clone()?).stderr(file);
            }
            None => {
                command
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null());
            }
        }
        let (tx, rx) = mpsc::channel();
        SPAWNER
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .send((command, tx))
            .map_err(|_| io::Error::other("the helper thread is gone"))?;
        let child = rx
            .recv()
            .map_err(|_| io::Error::other("the helper thread is gone"))??;
        Ok(Self {
            child,
            name: program.to_owned(),
            idle,
        })
    }

    /// How it ended, if it has.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Its process id (and process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its process group, if it was spawned idle (see [`come_forward`]).
    pub fn idle_group(&self) -> Option<u32> {
        self.idle.then(|| self.child.id())
    }
}

/// Puts every thread of process group `group` under the normal policy (`chrt`): a helper
/// spawned idle comes forward, if [`may_come_forward`]. Twice over, for the threads started
/// meanwhile by threads still idle. It waits for `chrt`: call it where blocking is fine.
pub fn come_forward(group: u32) -> io::Result<()> {
    let group = group.to_string();
    for _ in 0..2 {
        for process in std::fs::read_dir("/proc")?.flatten() {
            let Ok(stat) = std::fs::read_to_string(process.path().join("stat")) else {
                continue;
            };
            // `pid (name) state ppid pgrp ...`: the name may hold spaces.
            let in_group = stat
                .rfind(')')
                .and_then(|close| stat[close + 1..].split_whitespace().nth(2))
                == Some(group.as_str());
            if !in_group {
                continue;
            }
            // A process that ended meanwhile fails alone; the group's leader may not.
            let status = Command::new("chrt")
                .args(["--other", "--all-tasks", "--pid", "0"])
                .arg(process.file_name())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()?;
            if !status.success() && process.file_name().to_str() == Some(group.as_str()) {
                return Err(io::Error::other(format!("chrt ended with {status}")));
            }
        }
    }
    Ok(())
}

/// Whether reel may bring a helper that runs idle back to the normal policy: Linux lets
/// only a privileged process (or one whose `RLIMIT_NICE` allows niceness 0) do so.
pub fn may_come_forward() -> bool {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nice);
    rustix::process::geteuid().is_root() || limit.current.is_none_or(|n| n >= 20)
}

impl Drop for Helper {
    fn drop(&mut self) {
        if let Some(pid) = i32::try_from(self.child.id()).ok().and_then(Pid::from_raw) {
            // Everything it started, too.
            if let Err(e) = kill_process_group(pid, Signal::KILL)
                && e != rustix::io::Errno::SRCH
            {
                tracing::warn!(helper = %self.name, error = %e, "cannot stop a helper process");
            }
        }
        let _ = self.child.wait();
    }
}
