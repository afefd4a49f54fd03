//! API load from a second process: `wrk` against a release `reel serve` on loopback, on SQLite
//! and on PostgreSQL, for the two hottest calls: listing a call's recordings and get-or-create
//! of a call. Prints requests per second and latency percentiles next to the targets.
//!
//! Run with `bench/api.sh` (it starts PostgreSQL), or `cargo bench --bench api` with
//! `REEL_TEST_POSTGRES_URL` set for the PostgreSQL rows.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reel::auth::Keys;
use reel::domain::*;
use reel::store::{NewFile, Store};
use sqlx::Connection;

const KEY: &str = "bench-key";
const SECRET: &str = "bench-secret";
/// Recorded files in the listed call.
const FILES: usize = 10;
/// Concurrent connections: the target is judged at the first; the second shows queueing.
const CONNECTIONS: [u32; 2] = [16, 64];
const SECONDS: &str = "8s";
/// Runs of each measurement; the table shows the median run (this machine's speed varies).
const RUNS: usize = 3;

struct Row {
    backend: &'static str,
    endpoint: &'static str,
    connections: u32,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn database(backend: &str, dir: &Path) -> Option<String> {
    match backend {
        "sqlite" => Some(format!(
            "sqlite://{}?mode=rwc",
            dir.join("reel.db").display()
        )),
        _ => {
            let admin = std::env::var("REEL_TEST_POSTGRES_URL")
                .ok()
                .filter(|u| !u.is_empty())?;
            let name = format!("reel_test_bench_{}", std::process::id());
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .expect("connect to PostgreSQL");
            for sql in [
                format!("DROP DATABASE IF EXISTS {name}"),
                format!("CREATE DATABASE {name}"),
            ] {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            Some(format!("{}/{name}", admin.rsplit_once('/').unwrap().0))
        }
    }
}

/// A call with a finished session and `FILES` uploaded files, written straight into the store.
async fn seed(url: &str) {
    let store = Store::open(url).await.unwrap();
    let now = Timestamp::now();
    store
        .ensure_call_types(&[CallType::new(CallTypeName::parse("default").unwrap(), now)])
        .await
        .unwrap();
    let cid = Cid::parse("default:bench").unwrap();
    store
        .insert_call(&Call {
            cid: cid.clone(),
            created_by: UserId::parse("alice").unwrap(),
            custom: Default::default(),
            settings_override: Default::default(),
            members: vec![],
            starts_at: None,
            team: None,
            created_at: now,
            updated_at: now,
        })
        .await
        .unwrap();
    let (session, _) = store
        .start_session(&CallSession {
            id: SessionId::random(),
            cid: cid.clone(),
            started_at: now,
            ended_at: None,
        })
        .await
        .unwrap();
    let session = session.id;
    let rec = Recording {
        id: RecordingId::random(),
        cid: cid.clone(),
        session_id: session.clone(),
        recording_type: RecordingType::Individual,
        state: RecordingState::Ready,
        storage: None,
        requested_by: None,
        error: None,
        created_at: now,
        started_at: Some(now),
        stopped_at: Some(now),
        updated_at: now,
        exclusive: true,
    };
    let mut tx = store.write().await.unwrap();
    tx.insert_recording(&rec).await.unwrap();
    for i in 0..FILES {
        let name = format!("individual_default_bench_user{i}_audio_video.mkv");
        let id = tx
            .insert_file(
                &NewFile {
                    file: RecordingFile {
                        recording_id: rec.id.clone(),
                        cid: cid.clone(),
                        session_id: session.clone(),
                        recording_type: RecordingType::Individual,
                        object_key: format!("default/bench/{session}/{name}"),
                        filename: FileName::parse(name).unwrap(),
                        storage: StorageLocation::Local,
                        size: 1 << 20,
                        start_time: now,
                        end_time: now,
                        layer: None,
                    },
                    local_path: "/nonexistent".into(),
                },
                now,
            )
            .await
            .unwrap();
        tx.mark_file_uploaded(id, now).await.unwrap();
    }
    tx.commit().await.unwrap();
    store.end_session(&cid, now).await.unwrap();
    store.close().await;
}

fn start_reel(dir: &Path, url: &str, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_reel"))
        .arg("serve")
        .env("REEL_LISTEN", format!("127.0.0.1:{port}"))
        .env("REEL_DATA_DIR", dir)
        .env("REEL_DATABASE_URL", url)
        .env("REEL_API_KEY", KEY)
        .env("REEL_API_SECRET", SECRET)
        .env("REEL_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start reel")
}

fn wait_ready(port: u16) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("reel did not start");
}

/// Milliseconds from a wrk duration such as `812.00us`, `1.23ms` or `1.01s`.
fn millis(s: &str) -> f64 {
    let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => f64::NAN,
    }
}

fn wrk(
    dir: &Path,
    url: &str,
    script: Option<&str>,
    connections: u32,
    seconds: &str,
) -> (f64, f64, f64) {
    let token = Keys::new(KEY, SECRET).server_token();
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t1",
        "-c",
        &connections.to_string(),
        "-d",
        seconds,
        "--latency",
    ])
    .args([
        "-H",
        &format!("Authorization: {token}"),
        "-H",
        "stream-auth-type: jwt",
    ]);
    if let Some(lua) = script {
        let path = dir.join("post.lua");
        std::fs::write(&path, lua).unwrap();
        cmd.arg("-s").arg(path);
    }
    let out = cmd
        .arg(url)
        .output()
        .expect("wrk must be installed (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("no {prefix:?} in wrk output:\n{text}"))
    };
    for bad in ["Non-2xx or 3xx responses", "Socket errors"] {
        assert!(!text.contains(bad), "errors under load:\n{text}");
    }
    (
        field("Requests/sec:").parse().unwrap(),
        millis(&field("50%")),
        millis(&field("99%")),
    )
}

async fn run(backend: &'static str, rows: &mut Vec<Row>) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = database(backend, dir.path()).await else {
        eprintln!("skipping {backend}: REEL_TEST_POSTGRES_URL is not set");
        return;
    };
    seed(&db).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut reel = start_reel(dir.path(), &db, port);
    wait_ready(port);
    let base = format!("http://127.0.0.1:{port}/api/v2/video/call/default/bench");
    let list = format!("{base}/recordings?api_key={KEY}");
    let post = format!("{base}?api_key={KEY}");
    let lua = "wrk.method = \"POST\"\nwrk.body = '{\"data\": {\"created_by_id\": \"bench\"}}'\n\
               wrk.headers[\"Content-Type\"] = \"application/json\"\n";
    wrk(dir.path(), &list, None, CONNECTIONS[0], "2s"); // warm-up
    for (endpoint, url, script) in [
        ("GET  .../recordings", &list, None),
        ("POST .../call/{type}/{id}", &post, Some(lua)),
    ] {
        for connections in CONNECTIONS {
            let mut runs: Vec<_> = (0..RUNS)
                .map(|_| wrk(dir.path(), url, script, connections, SECONDS))
                .collect();
            runs.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (rps, p50_ms, p99_ms) = runs[RUNS / 2];
            rows.push(Row {
                backend,
                endpoint,
                connections,
                rps,
                p50_ms,
                p99_ms,
            });
        }
    }
    let _ = reel.kill();
    let _ = reel.wait();
}

#[tokio::main]
async fn main() {
    let mut rows = Vec::new();
    for backend in ["sqlite", "postgres"] {
        run(backend, &mut rows).await;
    }
    println!();
    println!(
        "API under load: wrk -t1 -d{SECONDS}, median of {RUNS} runs, reel release build, {FILES} files listed per request"
    );
    println!("| database | request | connections | req/s | p50 ms | p99 ms |");
    println!("|---|---|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} |",
            r.backend, r.endpoint, r.connections, r.rps, r.p50_ms, r.p99_ms
        );
    }
    let first = |backend: &str| {
        rows.iter().find(|r| {
            r.backend == backend && r.endpoint.starts_with("GET") && r.connections == CONNECTIONS[0]
        })
    };
    if let Some(l) = first("sqlite") {
        let ok = l.rps >= 5000.0 && l.p99_ms < 10.0;
        println!(
            "\ntarget (list on SQLite, {} connections): >= 5000 req/s and p99 < 10 ms -> {:.0} req/s, p99 {:.2} ms: {}",
            CONNECTIONS[0],
            l.rps,
            l.p99_ms,
            if ok { "met" } else { "NOT met" }
        );
    }
    if let (Some(s), Some(p)) = (first("sqlite"), first("postgres")) {
        println!(
            "list, PostgreSQL / SQLite throughput: {:.2}x",
            p.rps / s.rps
        );
    }
}
