//! The API secret and the S3 credentials never leave reel: a call recorded into S3 at trace
//! level, with every log line, API answer, webhook and stored byte searched for them.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{
    API_SECRET, Db, Receiver, S3_KEY, S3_SECRET, S3Server, TestServer, eventually, s3_settings,
};
use crate::support::{download, make_clips, publish, walk};

/// Everything logged, shared with the test.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Where `needle` occurs in `hay`, with a little of what surrounds it.
fn occurrences(hay: &[u8], needle: &str) -> Vec<String> {
    hay.windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle.as_bytes())
        .map(|(i, _)| {
            let around = &hay[i.saturating_sub(60)..(i + needle.len() + 60).min(hay.len())];
            String::from_utf8_lossy(around).into_owned()
        })
        .collect()
}

/// Every file under `dir` that can be read, with its bytes.
fn files_with_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    walk(dir)
        .into_iter()
        .filter_map(|p| Some((p.display().to_string(), std::fs::read(&p).ok()?)))
        .collect()
}

#[tokio::test]
async fn secrets_reach_no_log_answer_webhook_or_file() {
    let log = Log::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_env_filter(reel::telemetry::filter("trace"))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let s3 = S3Server::start("recordings").await;
    let hook = Receiver::start(0).await;
    let t = TestServer::start_with(
        Db::Sqlite,
        |s| {
            s3_settings(s, s3.endpoint());
            s.webhook_urls = Some(vec![hook.url()]);
            s.media.session_grace = Some(reel::config::HumanDuration(Duration::from_secs(1)));
        },
        reel::recorders::Recorders::all(),
    )
    .await;
    let mut answers: Vec<Value> = Vec::new();
    let (s, body) = t
        .call(
            "POST",
            "/api/v2/video/call/default/sec",
            Some(
                json!({"data": {"created_by_id": "alice", "settings_override": {
                "individual_recording": {"mode": "auto-on"},
                "raw_recording": {"mode": "auto-on"}}}}),
            ),
        )
        .await;
    assert_eq!(s, reqwest::StatusCode::OK, "{body}");
    answers.push(body);
    let clips = tempfile::tempdir().unwrap();
    make_clips(clips.path());
    publish(&t, "sec", clips.path(), "vp8.ivf", "fay", "4s", &[]).await;

    // Both recordings uploaded and announced.
    let path = "/api/v2/video/call/default/sec/recordings";
    let listed = eventually(Duration::from_secs(30), "both recordings", || async {
        let (_, list) = t.call("GET", path, None).await;
        let ready = hook
            .received()
            .iter()
            .filter(|r| r.body.windows(15).any(|w| w == b"recording_ready"))
            .count();
        (list["recordings"].as_array().map_or(0, Vec::len) >= 2 && ready >= 2).then_some(list)
    })
    .await;
    answers.push(listed.clone());
    for (method, path) in [
        ("GET", "/api/v2/video/call/default/sec"),
        ("GET", "/api/v2/video/call_types"),
        ("GET", "/api/v2/video/call_types/default"),
    ] {
        answers.push(t.call(method, path, None).await.1);
    }
    let dir = tempfile::tempdir().unwrap();
    let downloaded = download(
        &t.http,
        listed["recordings"].as_array().unwrap(),
        dir.path(),
    )
    .await;
    assert_eq!(downloaded.len(), 2);
    // Everything is written and logged once reel has stopped.
    let mut t = t;
    t.server.take().unwrap().shutdown().await;

    let mut written: Vec<(String, Vec<u8>)> =
        vec![("the log".into(), log.0.lock().unwrap().clone())];
    for (i, a) in answers.iter().enumerate() {
        written.push((format!("answer {i}"), a.to_string().into_bytes()));
    }
    for (i, r) in hook.received().iter().enumerate() {
        let headers = format!("{:?}", r.headers).into_bytes();
        written.push((format!("webhook {i}"), [headers, r.body.to_vec()].concat()));
    }
    written.extend(files_with_bytes(t.dir.path()));
    written.extend(files_with_bytes(s3.root.path()));
    written.extend(files_with_bytes(dir.path()));
    let logged = written[0].1.len();
    println!(
        "{} sources searched: {logged} bytes of log, {} webhooks",
        written.len(),
        hook.received().len()
    );
    assert!(logged > 100_000, "trace level logs plenty");
    for (what, bytes) in &written {
        for secret in [API_SECRET, S3_SECRET] {
            let found = occurrences(bytes, secret);
            assert!(found.is_empty(), "{secret:?} in {what}: {found:?}");
        }
        // The access key id names the credentials in every presigned link (that is how S3
        // checks them); anywhere else it is a leak.
        for around in occurrences(bytes, S3_KEY) {
            assert!(
                around.contains(&format!("X-Amz-Credential={S3_KEY}%2F")),
                "{S3_KEY:?} in {what}: {around}"
            );
        }
    }
}
