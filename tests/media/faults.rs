//! Recordings through a bad network: a relay between the publisher and reel cuts the link for
//! a while, or loses and delays datagrams at random, both ways.
//!
//! The kernel here has no `netem`, so the faults are a UDP relay's: reel listens on
//! 127.0.0.1 and advertises 127.0.0.2, where the relay listens on the same port and forwards
//! each client's datagrams from a socket of its own, as a NAT would.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::UdpSocket;
use tokio::sync::watch;

use crate::common::{Db, TestServer, listed_files, loudness};
use crate::support::{assert_lasts, download, make_clips, publish, publish_to, tally_bus};

/// What the relay does to every datagram, both ways.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    /// Passes it at once.
    Clear,
    /// Drops it.
    Cut,
    /// Drops 5%, and delays the rest by 0 to 50 ms each (so they also arrive out of order).
    Lossy,
}

/// A relay of UDP datagrams that applies the [`Fault`] of the moment.
struct Relay {
    fault: watch::Sender<Fault>,
    dropped: Arc<AtomicU64>,
    passed: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Listens on `front` and forwards each client's datagrams to `back`.
    async fn start(front: SocketAddr, back: SocketAddr) -> Relay {
        let socket = Arc::new(UdpSocket::bind(front).await.unwrap());
        let (fault, faults) = watch::channel(Fault::Clear);
        let (dropped, passed) = (Arc::default(), Arc::default());
        let pass = Pass {
            faults,
            dropped: Arc::clone(&dropped),
            passed: Arc::clone(&passed),
            random: 0x2545_f491_4f6c_dd1d,
        };
        let task = tokio::spawn(forward(socket, back, pass));
        Relay {
            fault,
            dropped,
            passed,
            task,
        }
    }

    /// Applies `fault` for `long`, then lets datagrams through again.
    async fn apply(&self, fault: Fault, long: Duration) {
        self.fault.send_replace(fault);
        tokio::time::sleep(long).await;
        self.fault.send_replace(Fault::Clear);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One direction's way through the relay.
#[derive(Clone)]
struct Pass {
    faults: watch::Receiver<Fault>,
    dropped: Arc<AtomicU64>,
    passed: Arc<AtomicU64>,
    random: u64,
}

impl Pass {
    /// Sends `data` from `socket` to `to`, as the fault of the moment lets it.
    fn send(&mut self, data: &[u8], socket: &Arc<UdpSocket>, to: SocketAddr) {
        let fault = *self.faults.borrow();
        self.random ^= self.random << 13;
        self.random ^= self.random >> 7;
        self.random ^= self.random << 17;
        let lost = match fault {
            Fault::Clear => false,
            Fault::Cut => true,
            Fault::Lossy => self.random % 100 < 5,
        };
        if lost {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.passed.fetch_add(1, Ordering::Relaxed);
        if fault == Fault::Clear {
            let _ = socket.try_send_to(data, to);
            return;
        }
        let delay = Duration::from_micros((self.random >> 32) % 50_000);
        let (data, socket) = (data.to_vec(), Arc::clone(socket));
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = socket.send_to(&data, to).await;
        });
    }
}

/// Forwards what `front` receives to `back`, each client from a socket of its own, and what
/// comes back to that client.
async fn forward(front: Arc<UdpSocket>, back: SocketAddr, mut pass: Pass) {
    let mut clients: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut buf = vec![0u8; 2048];
    while let Ok((n, client)) = front.recv_from(&mut buf).await {
        let upstream = match clients.get(&client) {
            Some(upstream) => Arc::clone(upstream),
            None => {
                let upstream = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
                let (from, to) = (Arc::clone(&upstream), Arc::clone(&front));
                let mut back_pass = pass.clone();
                back_pass.random = back_pass.random.rotate_left(29);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 2048];
                    while let Ok((n, _)) = from.recv_from(&mut buf).await {
                        back_pass.send(&buf[..n], &to, client);
                    }
                });
                clients.insert(client, Arc::clone(&upstream));
                upstream
            }
        };
        pass.send(&buf[..n], &upstream, back);
    }
}

#[tokio::test]
async fn recordings_ride_out_network_cuts_loss_and_jitter() {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = TestServer::start_with(
        Db::Sqlite,
        |s| {
            s.media.session_grace = Some(reel::config::HumanDuration(Duration::from_secs(1)));
            s.media.udp_port = Some(port);
            s.media.advertise = Some(vec!["127.0.0.2".parse().unwrap()]);
        },
        reel::recorders::Recorders::all(),
    )
    .await;
    let (s, body) = t
        .call(
            "POST",
            "/api/v2/video/call/default/net",
            Some(
                json!({"data": {"created_by_id": "alice", "settings_override": {
                "individual_recording": {"mode": "auto-on"}}}}),
            ),
        )
        .await;
    assert_eq!(s, reqwest::StatusCode::OK, "{body}");
    let clips = tempfile::tempdir().unwrap();
    make_clips(clips.path());
    let relay = Relay::start(
        SocketAddr::from(([127, 0, 0, 2], port)),
        SocketAddr::from(([127, 0, 0, 1], port)),
    )
    .await;
    let received = tally_bus(&t, &reel::domain::Cid::parse("default:net").unwrap());
    // Cuts of 100 ms, 500 ms and 3 s, then 20 s of 5% loss with up to 50 ms of jitter.
    let faults = async {
        let mut log = Vec::new();
        for (fault, at, long) in [
            (Fault::Cut, 3.0, 0.1),
            (Fault::Cut, 2.0, 0.5),
            (Fault::Cut, 2.0, 3.0),
            (Fault::Lossy, 2.0, 20.0),
        ] {
            tokio::time::sleep(Duration::from_secs_f64(at)).await;
            let before = relay.dropped.load(Ordering::Relaxed);
            relay.apply(fault, Duration::from_secs_f64(long)).await;
            let dropped = relay.dropped.load(Ordering::Relaxed) - before;
            log.push(format!(
                "{fault:?} for {long} s: {dropped} datagrams dropped"
            ));
        }
        log
    };
    let (report, log) = tokio::join!(
        publish(&t, "net", clips.path(), "vp8.ivf", "erin", "35s", &[]),
        faults
    );
    println!(
        "{log:?}; {} passed; publisher: {report}",
        relay.passed.load(Ordering::Relaxed)
    );
    let time_in_call = received.await.unwrap().seconds("erin") + 0.02;

    let listed = listed_files(&t, "net", 1).await;
    let dir = tempfile::tempdir().unwrap();
    let files = download(&t.http, &listed, dir.path()).await;
    let path = &files[0].1;
    assert_lasts(path, time_in_call, 0.04).await;
    // The 3 s cut is silent in the file: the sound stops and comes back once.
    let windows = loudness(path, 0.1);
    let silent = windows.iter().filter(|&&rms| rms < 0.001).count();
    println!("{silent} silent windows of 100 ms");
    assert!((25..=40).contains(&silent), "{windows:.3?}");
}

/// A `reel serve` whose data directory is a tmpfs of its own (mounted in a mount namespace
/// of its own), its database outside it.
struct SmallDisk {
    child: std::process::Child,
    base: String,
    data: std::path::PathBuf,
    dir: tempfile::TempDir,
}

impl SmallDisk {
    async fn start(megabytes: u32, webhook: String) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        // The database on another disk (the test runs where only loopback exists, so it is
        // SQLite rather than the suite's PostgreSQL).
        let database = crate::common::database_url(Db::Sqlite, dir.path()).await;
        let port = crate::common::free_port();
        let flags = if rustix::process::geteuid().is_root() {
            "-m"
        } else {
            "-rm"
        };
        let mount = format!("mount -t tmpfs -o size={megabytes}m tmpfs \"$0\" && exec \"$@\"");
        let child = std::process::Command::new("unshare")
            .args([flags, "sh", "-c", &mount])
            .arg(&data)
            .arg(crate::common::reel_bin())
            .arg("serve")
            .env("REEL_DATA_DIR", &data)
            .env("REEL_DATABASE_URL", database)
            .env("REEL_API_KEY", crate::common::API_KEY)
            .env("REEL_API_SECRET", crate::common::API_SECRET)
            .env("REEL_LISTEN", format!("127.0.0.1:{port}"))
            .env("REEL_MEDIA_UDP_PORT", "0")
            .env("REEL_SESSION_GRACE", "1s")
            .env("REEL_WEBHOOK_URL", webhook)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
            .spawn()
            .unwrap();
        let disk = SmallDisk {
            child,
            base: format!("http://127.0.0.1:{port}"),
            data,
            dir,
        };
        let log = disk.dir.path().join("log");
        crate::common::eventually(Duration::from_secs(30), "reel to serve", || async {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            log.contains("reel is serving").then_some(())
        })
        .await;
        disk
    }

    /// `name` in the data directory, as reel sees it (through its mount namespace).
    fn path(&self, name: &str) -> std::path::PathBuf {
        std::path::PathBuf::from(format!("/proc/{}/root", self.child.id()))
            .join(self.data.strip_prefix("/").unwrap())
            .join(name)
    }

    /// Fills the disk but for about `left` bytes.
    fn fill(&self, left: u64) {
        use std::io::Write;
        let path = self.path("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 1 << 20];
        while f.write_all(&chunk).is_ok() {}
        let len = f.metadata().unwrap().len();
        f.set_len(len.saturating_sub(left)).unwrap();
    }

    /// Calls its API as the server.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        crate::crash::call(&reqwest::Client::new(), &self.base, method, path, body).await
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_full_disk_fails_the_recording_and_loses_nothing_finished() {
    let hook = crate::common::Receiver::start(0).await;
    let mut disk = SmallDisk::start(40, hook.url()).await;
    let created = disk
        .call(
            "POST",
            "/api/v2/video/call/default/full",
            Some(
                json!({"data": {"created_by_id": "alice", "settings_override": {
                "individual_recording": {"mode": "auto-on"}}}}),
            ),
        )
        .await;
    assert!(created["call"].is_object(), "{created}");
    let clips = tempfile::tempdir().unwrap();
    make_clips(clips.path());
    let recordings = "/api/v2/video/call/default/full/recordings";

    // A first recording, finished and kept.
    publish_to(
        &disk.base,
        "full",
        (clips.path(), "vp8.ivf"),
        "alice",
        "3s",
        &[],
    )
    .await;
    let first = crate::common::eventually(Duration::from_secs(20), "the first file", || async {
        let list = disk.call("GET", recordings, None).await;
        list["recordings"]
            .as_array()
            .filter(|a| a.len() == 1)
            .cloned()
    })
    .await;
    let url = first[0]["url"].as_str().unwrap().to_owned();
    let kept = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
    assert!(kept.len() > 100_000, "{}", kept.len());

    // The disk fills up while the second one records.
    disk.fill(20_000);
    publish_to(
        &disk.base,
        "full",
        (clips.path(), "vp8.ivf"),
        "bob",
        "6s",
        &[],
    )
    .await;
    let failed =
        crate::common::eventually(Duration::from_secs(20), "call.recording_failed", || async {
            hook.received().into_iter().find(|r| {
                serde_json::from_slice::<Value>(&r.body)
                    .is_ok_and(|v| v["type"] == "call.recording_failed")
            })
        })
        .await;
    let event: Value = serde_json::from_slice(&failed.body).unwrap();
    println!("{event}");
    assert!(
        event["error"]
            .as_str()
            .unwrap_or_default()
            .contains("No space left on device"),
        "{event}"
    );
    // The official SDK takes the event with its reason.
    crate::common::assert_sdk_verifies(&[failed]);

    // reel goes on serving, and what was finished is whole.
    let answer = disk
        .call("GET", "/api/v2/video/call/default/full", None)
        .await;
    assert!(answer["call"].is_object(), "{answer}\n{}", disk.log());
    let again = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
    assert_eq!(again, kept, "the first recording is kept whole");
    assert!(disk.child.try_wait().unwrap().is_none(), "reel still runs");
}
