//! reel through an outage of its database: PostgreSQL restarted while recordings run.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::Value;

use crate::common::*;

/// A PostgreSQL server of the test's own (Debian's binaries, trusting local connections),
/// which the test can stop and start.
struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl Postgres {
    fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is installed (scripts/setup-debian.sh --test)")
            .flatten()
            .map(|e| e.path().join("bin"))
            .find(|b| b.join("initdb").exists())
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let pg = Self {
            dir,
            bin,
            port: free_port(),
        };
        // The server refuses to run as root: its files belong to `postgres` then.
        if rustix::process::geteuid().is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(pg.dir.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
        pg.run(&format!(
            "{}/initdb -D {}/data -U reel --auth=trust --no-sync -E UTF8",
            pg.bin.display(),
            pg.dir.path().display()
        ));
        pg.ctl("start");
        pg
    }

    /// Runs `pg_ctl action` on the server, waiting for it to finish.
    fn ctl(&self, action: &str) {
        let dir = self.dir.path().display();
        self.run(&format!(
            "{}/pg_ctl -D {dir}/data -l {dir}/log -w -o '-p {} -k {dir} -c listen_addresses=127.0.0.1 -c fsync=off' {action}",
            self.bin.display(),
            self.port
        ));
    }

    /// Runs `command` as the server's owner.
    fn run(&self, command: &str) {
        let out = if rustix::process::geteuid().is_root() {
            Command::new("su")
                .args(["postgres", "-s", "/bin/sh", "-c", command])
                .output()
        } else {
            Command::new("sh").args(["-c", command]).output()
        }
        .unwrap();
        assert!(
            out.status.success(),
            "{command}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn url(&self) -> String {
        format!("postgres://reel@127.0.0.1:{}/postgres", self.port)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_loses_no_recording_or_event() {
    let pg = Postgres::start();
    let rx = Receiver::start(0).await;
    let hook = rx.url();
    let t = TestServer::start_with(
        Db::Sqlite,
        |s| {
            s.database_url = Some(pg.url().into());
            s.webhook_urls = Some(vec![hook]);
            s.retry_first = Some("100ms".parse().unwrap());
            s.retry_max = Some("1s".parse().unwrap());
        },
        bytes_recorders(1000),
    )
    .await;
    let cid = t.create_call("pg").await;
    t.server().services.start_session(&cid).await.unwrap();
    let base = "/api/v2/video/call/default/pg/recordings";
    let (s, b) = t.call("POST", &format!("{base}/raw/start"), None).await;
    assert_eq!(s, StatusCode::OK, "{b}");

    // The database goes away for 3 s while the raw recording runs; it is asked to stop
    // meanwhile.
    pg.ctl("stop -m fast");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stop = format!("{base}/raw/stop");
    let stopping = t.call("POST", &stop, None);
    let restart = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        pg.ctl("start");
    };
    let ((s, b), ()) = tokio::join!(stopping, restart);
    assert_eq!(
        s,
        StatusCode::OK,
        "the raw recording stops once it can: {b}"
    );

    // An individual recording starts and stops.
    for path in ["individual/start", "individual/stop"] {
        let (s, b) = t.call("POST", &format!("{base}/{path}"), None).await;
        assert_eq!(s, StatusCode::OK, "{path}: {b}");
    }
    let listed = eventually(Duration::from_secs(20), "both recordings", || async {
        let (_, list) = t.call("GET", base, None).await;
        list["recordings"]
            .as_array()
            .filter(|a| a.len() == 2)
            .cloned()
    })
    .await;
    let mut names: Vec<&str> = listed
        .iter()
        .map(|r| r["filename"].as_str().unwrap())
        .collect();
    names.sort();
    assert!(
        names[0].starts_with("individual_") && names[1].starts_with("raw_"),
        "{names:?}"
    );
    // Every event, once.
    let events = eventually(Duration::from_secs(20), "seven events", || async {
        let got = rx.received();
        (got.len() >= 7).then_some(got)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let kinds: Vec<String> = rx
        .received()
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            format!(
                "{} {}",
                v["type"].as_str().unwrap(),
                v["recording_type"].as_str().unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(events.len(), 7, "each once: {kinds:?}");
    // In order for each recording (the raw one's upload waited for the database, so the
    // individual one may start before it is ready).
    for kind in ["raw", "individual"] {
        let of_kind: Vec<&str> = kinds
            .iter()
            .filter_map(|k| k.strip_suffix(&format!(" {kind}")))
            .collect();
        assert_eq!(
            of_kind,
            [
                "call.recording_started",
                "call.recording_stopped",
                "call.recording_ready"
            ],
            "{kinds:?}"
        );
    }
    assert_eq!(kinds[0], "call.session_started ");
}
