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

use serde_json::json;
use tokio::net::UdpSocket;
use tokio::sync::watch;

use crate::common::{Db, TestServer, listed_files, loudness};
use crate::support::{assert_lasts, download, make_clips, publish, tally_bus};

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
