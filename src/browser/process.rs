//! Helper processes (a display server, a browser) that never outlive their use: each runs
//! in a process group of its own, killed whole when its [`Helper`] is dropped, and with the
//! parent-death signal set (`setpriv --pdeathsig KILL`) by a thread that lives as long as
//! reel, so that a reel killed with SIGKILL takes them along.

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
}

impl Helper {
    /// Starts `program` with `args` (and `envs`) in a process group of its own, killed if
    /// reel dies. Its output goes to `log` if given, else nowhere.
    pub fn spawn(
        program: &str,
        args: &[String],
        envs: &[(&str, &str)],
        log: Option<std::fs::File>,
    ) -> io::Result<Self> {
        let mut command = Command::new("setpriv");
        command
            .args(["--pdeathsig", "KILL", "--", program])
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
