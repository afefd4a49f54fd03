//! Test harness: reel servers on loopback over SQLite or PostgreSQL, tokens, HTTP helpers,
//! an S3 server, a webhook receiver, and a recorder that writes a file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use futures_util::future::BoxFuture;
use reel::auth::Keys;
use reel::config::{Config, Settings};
use reel::domain::{Cid, FileName, RecordingType, Role, Timestamp, UserId};
use reel::recorders::{
    FinishedFile, Port, Recorder, RecorderError, RecorderFactory, Recorders, RecordingJob,
};
use reel::server::Server;
use serde_json::{Value, json};
use sqlx::Connection;
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;

pub const API_KEY: &str = "test-key";
pub const API_SECRET: &str = "test-secret-0123456789";

/// The databases the suite runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Runs a test body once per database backend: `both_backends!(name, |db| async { ... })`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                ($body)($crate::common::Db::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                ($body)($crate::common::Db::Postgres).await
            }
        }
    };
}

/// A fresh, empty database of kind `db`; SQLite lives in `dir`.
pub async fn database_url(db: Db, dir: &Path) -> String {
    match db {
        Db::Sqlite => format!("sqlite://{}?mode=rwc", dir.join("reel.db").display()),
        Db::Postgres => {
            let admin = std::env::var("REEL_TEST_POSTGRES_URL").expect(
                "REEL_TEST_POSTGRES_URL must point at a PostgreSQL server (scripts/test.sh starts one)",
            );
            let name = format!("reel_test_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .expect("connect to PostgreSQL");
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .expect("create a test database");
            let (base, _) = admin.rsplit_once('/').expect("a database URL has a path");
            format!("{base}/{name}")
        }
    }
}

/// Settings every test server starts from.
pub fn base_settings(dir: &Path, database_url: String) -> Settings {
    Settings {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: Some(dir.to_owned()),
        database_url: Some(database_url.into()),
        api_key: Some(API_KEY.into()),
        api_secret: Some(API_SECRET.into()),
        media: reel::config::MediaSettings {
            udp_port: Some(0),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// A reel server on loopback with its own data directory and database.
pub struct TestServer {
    pub server: Option<Server>,
    pub dir: TempDir,
    pub config: Config,
    pub recorders: Recorders,
    pub base: String,
    pub http: reqwest::Client,
}

impl TestServer {
    /// A server with default settings and no recorders.
    pub async fn start(db: Db) -> Self {
        Self::start_with(db, |_| {}, Recorders::default()).await
    }

    /// A server whose settings `tweak` changes, with `recorders`.
    pub async fn start_with(
        db: Db,
        tweak: impl FnOnce(&mut Settings),
        recorders: Recorders,
    ) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("REEL_LOG")
                    .unwrap_or_else(|_| "info".into()),
            )
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().unwrap();
        let mut settings = base_settings(dir.path(), database_url(db, dir.path()).await);
        tweak(&mut settings);
        let config = Config::resolve(settings).unwrap();
        let server = Server::start(config.clone(), recorders.clone())
            .await
            .unwrap();
        let base = format!("http://{}", server.addr);
        Self {
            server: Some(server),
            dir,
            config,
            recorders,
            base,
            http: reqwest::Client::new(),
        }
    }

    /// The text of `/metrics`.
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("the server is running")
    }

    pub fn keys(&self) -> Keys {
        Keys::new(API_KEY, API_SECRET)
    }

    /// The server's OpenAPI document.
    pub async fn openapi(&self) -> Value {
        let res = self.http.get(format!("{}/openapi.json", self.base)).send();
        res.await.unwrap().json().await.unwrap()
    }

    pub fn server_token(&self) -> String {
        self.keys().server_token()
    }

    pub fn user_token(&self, user: &str, role: Option<&str>) -> String {
        self.keys().user_token(
            &UserId::parse(user).unwrap(),
            role.map(|r| Role::parse(r).unwrap()).as_ref(),
            Some(Duration::from_secs(3600)),
        )
    }

    /// Stops the server as a crash would and starts it again on the same address, data and database.
    pub async fn restart(&mut self) {
        self.server.take().expect("running").kill().await;
        let mut config = self.config.clone();
        config.listen = self
            .base
            .trim_start_matches("http://")
            .parse::<SocketAddr>()
            .unwrap();
        self.server = Some(Server::start(config, self.recorders.clone()).await.unwrap());
        // A crash closes every connection: a kept-alive one would still reach the old
        // server's connection task.
        self.http = reqwest::Client::new();
    }

    /// Calls the API as the server (`Authorization: <server token>`).
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call_as(&self.server_token(), method, path, body).await
    }

    /// Calls the API with `token`.
    pub async fn call_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = format!("{}{path}{sep}api_key={API_KEY}", self.base);
        self.raw(method, &url, Some(token), body).await
    }

    /// Sends a request to an absolute URL and decodes the JSON answer.
    pub async fn raw(
        &self,
        method: &str,
        url: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method.parse().unwrap(), url);
        if let Some(t) = token {
            req = req
                .header("authorization", t)
                .header("stream-auth-type", "jwt");
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = StatusCode::from_u16(res.status().as_u16()).unwrap();
        let text = res.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json)
    }

    /// Creates call `default:<id>` created by alice.
    pub async fn create_call(&self, id: &str) -> Cid {
        let (s, _) = self
            .call(
                "POST",
                &format!("/api/v2/video/call/default/{id}"),
                Some(serde_json::json!({"data": {"created_by_id": "alice"}})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "create call {id}");
        Cid::parse(&format!("default:{id}")).unwrap()
    }
}

/// Asserts the Stream error envelope.
pub fn assert_envelope(body: &Value, status: u16, code: i64, message_contains: &str) {
    assert_eq!(body["StatusCode"], status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    let msg = body["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains(message_contains),
        "{msg:?} does not contain {message_contains:?}"
    );
    assert!(
        body["duration"].as_str().is_some_and(|d| d.ends_with("ms")),
        "{body}"
    );
    assert_eq!(body["more_info"], "");
    assert!(body["details"].is_array());
}

/// Polls `check` every 50 ms until it returns `Some`, for up to `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A recorder that writes `size` bytes into one file when asked to stop (a stand-in for the
/// media recorders, which come with the media plane); with `early`, it also hands over a
/// first file as soon as it starts, as an individual recorder does when a participant leaves.
#[derive(Clone)]
pub struct BytesRecorder {
    pub size: usize,
    pub early: bool,
}

impl RecorderFactory for BytesRecorder {
    fn create(&self, _job: &RecordingJob) -> Result<Box<dyn Recorder>, RecorderError> {
        Ok(Box::new(self.clone()))
    }
}

/// The content of the file a [`BytesRecorder`] writes.
pub fn recorded_bytes(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

impl Recorder for BytesRecorder {
    fn run(self: Box<Self>, port: Port) -> BoxFuture<'static, Result<(), RecorderError>> {
        Box::pin(async move {
            // It holds its feed to the end, and never takes from it: a recorder falling
            // behind, for the tests of that.
            let Port {
                job,
                feed,
                stop,
                reports,
                ..
            } = port;
            let start = Timestamp::now();
            reports.started();
            let write = |job: &RecordingJob, prefix: &str| {
                std::fs::create_dir_all(&job.work_dir).unwrap();
                let name = format!(
                    "{prefix}{}_{}.bin",
                    job.recording.recording_type, job.recording.id
                );
                let path = job.work_dir.join(&name);
                std::fs::write(&path, recorded_bytes(self.size)).unwrap();
                FinishedFile {
                    path,
                    filename: FileName::parse(name).unwrap(),
                    start_time: start,
                    end_time: Timestamp::now(),
                    layer: (job.recording.recording_type == RecordingType::Track)
                        .then(|| job.track.layers[0].name.clone()),
                }
            };
            if self.early {
                reports.file_finished(write(&job, "early_"));
            }
            stop.cancelled().await;
            reports.file_finished(write(&job, ""));
            drop(feed);
            Ok(())
        })
    }
}

/// Recorders for every type that write `size` bytes each.
pub fn bytes_recorders(size: usize) -> Recorders {
    RecordingType::ALL
        .into_iter()
        .fold(Recorders::default(), |r, t| {
            r.with(t, BytesRecorder { size, early: false })
        })
}

/// An S3 server (`s3s-fs`) over a temporary directory.
pub struct S3Server {
    pub child: Option<tokio::process::Child>,
    pub root: TempDir,
    pub port: u16,
}

pub const S3_KEY: &str = "AKIATESTREEL";
pub const S3_SECRET: &str = "test-s3-secret";

/// Settings for recordings stored in the bucket `recordings` of the S3 server at `endpoint`,
/// under the prefix `reel`.
pub fn s3_settings(s: &mut Settings, endpoint: String) {
    s.s3.bucket = Some("recordings".into());
    s.s3.endpoint = Some(endpoint);
    s.s3.access_key_id = Some(S3_KEY.into());
    s.s3.secret_access_key = Some(S3_SECRET.into());
    s.s3.prefix = Some("reel".into());
}

impl S3Server {
    /// Starts a server with bucket `bucket`.
    pub async fn start(bucket: &str) -> Self {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join(bucket)).unwrap();
        let port = free_port();
        let mut s = Self {
            child: None,
            root,
            port,
        };
        s.resume().await;
        s
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the server (the directory stays).
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().await.unwrap();
        }
    }

    /// Starts the server again on the same port and directory.
    pub async fn resume(&mut self) {
        let bin = std::env::var("REEL_TEST_S3S_FS").unwrap_or_else(|_| "s3s-fs".into());
        let child = tokio::process::Command::new(bin)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", S3_KEY, "--secret-key", S3_SECRET])
            .arg(self.root.path())
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("s3s-fs must be installed (scripts/test.sh installs it)");
        self.child = Some(child);
        let addr = format!("127.0.0.1:{}", self.port);
        eventually(Duration::from_secs(10), "s3s-fs to listen", || async {
            tokio::net::TcpStream::connect(&addr).await.ok().map(|_| ())
        })
        .await;
    }

    /// The object `key` of `bucket`, if it exists.
    pub fn object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        std::fs::read(self.root.path().join(bucket).join(key)).ok()
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One request a [`Receiver`] got.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Default)]
struct ReceiverState {
    got: Vec<Received>,
    attempts: usize,
    fail_first: usize,
}

/// A webhook receiver on loopback that can fail its first requests and go down and up.
pub struct Receiver {
    state: Arc<Mutex<ReceiverState>>,
    pub port: u16,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    pub async fn start(fail_first: usize) -> Self {
        let state = Arc::new(Mutex::new(ReceiverState {
            fail_first,
            ..Default::default()
        }));
        let mut r = Self {
            state,
            port: free_port(),
            task: None,
        };
        r.up().await;
        r
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    pub async fn up(&mut self) {
        async fn hook(
            State(s): State<Arc<Mutex<ReceiverState>>>,
            headers: HeaderMap,
            body: Bytes,
        ) -> StatusCode {
            let mut s = s.lock().unwrap();
            s.attempts += 1;
            if s.attempts <= s.fail_first {
                return StatusCode::INTERNAL_SERVER_ERROR;
            }
            s.got.push(Received { headers, body });
            StatusCode::OK
        }
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .with_state(self.state.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        self.task = Some(tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        }));
    }

    pub async fn down(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().got.clone()
    }

    /// From now on, fail only the first `n` requests counted since the start.
    pub fn set_fail_first(&self, n: usize) {
        let mut s = self.state.lock().unwrap();
        s.fail_first = n;
    }

    pub fn attempts(&self) -> usize {
        self.state.lock().unwrap().attempts
    }
}

/// Where the reel binary is.
/// Runs `reel serve` in `dir` until it logs that it serves.
pub fn serve(dir: &std::path::Path, envs: &[(&str, String)], args: &[&str]) -> std::process::Child {
    let mut child = std::process::Command::new(reel_bin())
        .arg("serve")
        .args(args)
        .current_dir(dir)
        .env_remove("REEL_API_KEY")
        .env_remove("REEL_API_SECRET")
        .env("REEL_MEDIA_UDP_PORT", "0")
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        assert!(std::time::Instant::now() < deadline, "reel did not start");
        match lines.next() {
            Some(Ok(l)) if l.contains("reel is serving") => break,
            Some(Ok(_)) => {}
            _ => panic!("reel exited before serving"),
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    child
}

pub fn reel_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_reel"))
}

/// The checkout under test, as the test runner names it when it runs the tests: a test
/// binary built in another checkout that shares the target directory would otherwise use
/// that checkout's scripts.
pub fn source_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

/// Waits until `default:{call}` lists at least one recorded file; returns the listing.
pub async fn listed_recordings(t: &TestServer, call: &str) -> Vec<Value> {
    listed_files(t, call, 1).await
}

/// The recorded files of call `default:{call}`, once at least `n` are listed.
pub async fn listed_files(t: &TestServer, call: &str, n: usize) -> Vec<Value> {
    let path = format!("/api/v2/video/call/default/{call}/recordings");
    eventually(
        Duration::from_secs(20),
        &format!("{n} recorded file(s) to be listed"),
        || async {
            let (_, list) = t.call("GET", &path, None).await;
            list["recordings"]
                .as_array()
                .filter(|a| a.len() >= n)
                .cloned()
        },
    )
    .await
}

/// Runs `cmd` to completion and returns its stdout; fails the test, showing both outputs,
/// unless it succeeded.
pub async fn stdout_of(cmd: &mut tokio::process::Command, what: &str) -> String {
    let out = cmd
        .output()
        .await
        .unwrap_or_else(|e| panic!("{what} did not start: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The Python interpreter with the official Stream SDK installed.
pub fn python() -> PathBuf {
    std::env::var("REEL_TEST_PYTHON").map(PathBuf::from).expect(
        "REEL_TEST_PYTHON must name a Python with getstream installed (scripts/test.sh makes one)",
    )
}

/// One page to open: its URL and size, where to save its screenshot, and the JS functions
/// whose results to return.
pub fn case(
    url: &str,
    (width, height): (u32, u32),
    screenshot: Option<&Path>,
    steps: &[&str],
) -> Value {
    json!({"url": url, "width": width, "height": height, "screenshot": screenshot, "steps": steps})
}

/// Opens the pages in headless Chromium (Playwright); each one's step results. Pages that
/// logged errors fail the test.
pub async fn visit(cases: &[Value]) -> Vec<Vec<Value>> {
    let script = source_dir().join("tests/python/visit_pages.py");
    let mut child = tokio::process::Command::new(python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python starts");
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(Value::from(cases.to_vec()).to_string().as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "visit_pages.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pages: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    pages
        .into_iter()
        .zip(cases)
        .map(|(page, case)| {
            let errors: Vec<_> = page["console"].as_array().unwrap().iter().collect();
            assert!(errors.is_empty(), "{}: {errors:?}", case["url"]);
            page["results"].as_array().unwrap().clone()
        })
        .collect()
}

/// `file`'s audio decoded by ffmpeg: mono samples at 48 kHz, of full scale. Decoding must
/// go without a complaint.
pub fn samples(file: &Path) -> Vec<f64> {
    let pcm = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args([
            "-map", "0:a", "-ac", "1", "-ar", "48000", "-f", "s16le", "-",
        ])
        .output()
        .unwrap();
    assert!(
        pcm.status.success() && pcm.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&pcm.stderr)
    );
    pcm.stdout
        .chunks_exact(2)
        .map(|b| f64::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect()
}

/// The RMS of each `window` seconds of `file`'s audio (see [`samples`]).
pub fn loudness(file: &Path, window: f64) -> Vec<f64> {
    samples(file)
        .chunks((48_000.0 * window) as usize)
        .map(|w| (w.iter().map(|s| s * s).sum::<f64>() / w.len() as f64).sqrt())
        .collect()
}

/// The official SDK verifies and parses every delivered event into its models.
pub fn assert_sdk_verifies(got: &[Received]) {
    let dir = tempfile::tempdir().unwrap();
    for (i, r) in got.iter().enumerate() {
        std::fs::write(dir.path().join(format!("{i}.json")), &r.body).unwrap();
        std::fs::write(
            dir.path().join(format!("{i}.sig")),
            r.headers["x-signature"].as_bytes(),
        )
        .unwrap();
    }
    let out = std::process::Command::new(python())
        .arg(crate::common::source_dir().join("tests/python/verify_webhooks.py"))
        .args([API_KEY, API_SECRET])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("verified {} events", got.len())
    );
}

/// `path` of the OpenAPI document with a plausible value in each parameter.
pub fn concrete_path(path: &str) -> String {
    concrete_path_with(path, &[])
}

/// `path` of the OpenAPI document with the value `values` gives each parameter it names (as
/// it goes in the URL, percent-encoded), and a plausible one in the others.
pub fn concrete_path_with(path: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
        let name = &rest[open + 1..close];
        out.push_str(match values.iter().find(|(n, _)| *n == name) {
            Some((_, v)) => v,
            None => match name {
                "type" => "default",
                "recording_type" => "raw",
                "tokenId" | "recordFileId" => "1",
                "recording_id" => "EG_0123",
                _ => "x1",
            },
        });
        rest = &rest[(close + 1).min(rest.len())..];
    }
    out.push_str(rest);
    out
}

/// Every file and directory under `root`, relative to it, sorted.
pub fn walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Every row of every table of the SQLite database at `db`, as text: what the store holds,
/// to compare before and after requests that must change nothing.
pub async fn sqlite_rows(db: &Path) -> std::collections::BTreeMap<String, Vec<String>> {
    let url = format!("sqlite://{}?mode=ro", db.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut out = std::collections::BTreeMap::new();
    for table in tables {
        let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?)")
            .bind(&table)
            .fetch_all(&mut conn)
            .await
            .unwrap();
        let row = columns
            .iter()
            .map(|c| format!("quote(\"{c}\")"))
            .collect::<Vec<_>>()
            .join(" || ',' || ");
        let sql = format!("SELECT {row} FROM \"{table}\" ORDER BY 1");
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut conn)
            .await
            .unwrap();
        out.insert(table, rows);
    }
    out
}
