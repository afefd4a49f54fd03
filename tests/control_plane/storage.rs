//! Storage: signed local links, S3 with presigned links, uploads that survive S3 being down,
//! resumable multipart uploads, external storages.

use std::sync::Mutex;
use std::time::Duration;

use axum::http::StatusCode;
use reel::domain::{Cid, RecordingState};
use reel::storage::{MultipartProgress, S3Bucket, S3Options, StorageError, UploadJournal};
use serde_json::{Value, json};

use crate::both_backends;
use crate::common::*;

/// Records a call with the bytes recorder and waits until its file is listed.
async fn record_one(t: &TestServer, id: &str, start_body: Value) -> (Cid, Value) {
    let cid = t.create_call(id).await;
    t.server().services.start_session(&cid).await.unwrap();
    let base = format!("/api/v2/video/call/default/{id}/recordings");
    let (s, body) = t
        .call("POST", &format!("{base}/raw/start"), Some(start_body))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = t.call("POST", &format!("{base}/raw/stop"), None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let rec = eventually(
        Duration::from_secs(20),
        "the recording to be listed",
        || async {
            let (_, list) = t.call("GET", &base, None).await;
            list["recordings"]
                .as_array()
                .and_then(|a| a.first().cloned())
        },
    )
    .await;
    (cid, rec)
}

fn tamper(url: &str) -> String {
    // Flip the last hex digit of the signature.
    let last = url.chars().last().unwrap();
    let flipped = if last == '0' { '1' } else { '0' };
    format!("{}{flipped}", &url[..url.len() - 1])
}

both_backends!(local_links_download_until_expiry, |db| async move {
    const SIZE: usize = 300_000;
    let t = TestServer::start_with(
        db,
        |s| s.download_url_ttl = Some("3s".parse().unwrap()),
        bytes_recorders(SIZE),
    )
    .await;
    let (cid, rec) = record_one(&t, "loc", json!({})).await;
    let url = rec["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&t.base), "{url}");
    let session = rec["session_id"].as_str().unwrap();
    let filename = rec["filename"].as_str().unwrap();
    assert!(rec["start_time"].as_i64().unwrap() <= rec["end_time"].as_i64().unwrap());
    assert!(
        rec["start_time"].as_i64().unwrap() > 1_600_000_000_000_000_000,
        "nanoseconds"
    );

    let res = t.http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap().to_vec(), recorded_bytes(SIZE));
    let part = t
        .http
        .get(&url)
        .header("range", "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.bytes().await.unwrap().to_vec(),
        recorded_bytes(SIZE)[1000..2000].to_vec()
    );
    // The file is where the object key says, and nothing is left in the work directory.
    let stored = t
        .dir
        .path()
        .join(format!("recordings/default/loc/{session}/{filename}"));
    assert_eq!(std::fs::metadata(&stored).unwrap().len(), SIZE as u64);
    assert_eq!(
        std::fs::read_dir(t.dir.path().join("recordings/.work"))
            .unwrap()
            .flatten()
            .flat_map(|d| std::fs::read_dir(d.path()).unwrap())
            .count(),
        0
    );

    let other_file = url.replacen(filename, "other.bin", 1);
    for bad in [
        tamper(&url),
        other_file,
        url.replace("expires=", "expires=1"),
    ] {
        let res = t.http.get(&bad).send().await.unwrap();
        assert_eq!(res.status(), 403, "{bad}");
    }
    let unsigned = url.split('?').next().unwrap();
    assert_eq!(t.http.get(unsigned).send().await.unwrap().status(), 403);

    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        t.http.get(&url).send().await.unwrap().status(),
        403,
        "expired"
    );
    // A fresh listing signs a fresh link.
    let (_, list) = t
        .call("GET", "/api/v2/video/call/default/loc/recordings", None)
        .await;
    let fresh = list["recordings"][0]["url"].as_str().unwrap();
    assert_eq!(t.http.get(fresh).send().await.unwrap().status(), 200);

    // Deleting removes the file from disk and from listings; a second delete is a 404.
    let del = format!("/api/v2/video/call/default/loc/{session}/recordings/{filename}");
    let (s, _) = t.call("DELETE", &del, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!stored.exists());
    let (s, body) = t.call("DELETE", &del, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_envelope(
        &body,
        404,
        16,
        "DeleteRecording failed with error: \"recording doesn't exist\"",
    );
    let _ = cid;
});

both_backends!(s3_presigned_links, |db| async move {
    const SIZE: usize = 100_000;
    let s3 = S3Server::start("recordings").await;
    let endpoint = s3.endpoint();
    let t = TestServer::start_with(
        db,
        |s| {
            s3_settings(s, endpoint);
            s.download_url_ttl = Some("2s".parse().unwrap());
        },
        bytes_recorders(SIZE),
    )
    .await;
    let (_, rec) = record_one(&t, "s3c", json!({})).await;
    let key = format!(
        "reel/default/s3c/{}/{}",
        rec["session_id"].as_str().unwrap(),
        rec["filename"].as_str().unwrap()
    );
    assert_eq!(
        s3.object("recordings", &key).unwrap(),
        recorded_bytes(SIZE),
        "the object is in the bucket"
    );

    let url = rec["url"].as_str().unwrap();
    assert!(
        url.starts_with(&s3.endpoint()) && url.contains("X-Amz-Signature"),
        "{url}"
    );
    let res = reqwest::get(url).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap().to_vec(), recorded_bytes(SIZE));
    let sig_at = url.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let flipped = if &url[sig_at..sig_at + 1] == "0" {
        "1"
    } else {
        "0"
    };
    let tampered = format!("{}{flipped}{}", &url[..sig_at], &url[sig_at + 1..]);
    assert_eq!(reqwest::get(&tampered).await.unwrap().status(), 403);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(reqwest::get(url).await.unwrap().status(), 403, "expired");
    // The local copy is gone once the upload is confirmed.
    let work = t.dir.path().join("recordings/.work");
    assert!(
        std::fs::read_dir(&work)
            .unwrap()
            .flatten()
            .all(|d| std::fs::read_dir(d.path()).unwrap().count() == 0)
    );
});

both_backends!(s3_down_keeps_the_local_copy_and_retries, |db| async move {
    const SIZE: usize = 50_000;
    // Time runs 60 times faster for retries (17 ms doubling up to 10 s stands for 1 s
    // doubling up to 10 minutes): S3 is down for 10 minutes.
    const OUTAGE: Duration = Duration::from_secs(10);
    let mut s3 = S3Server::start("recordings").await;
    s3.stop().await;
    let down = std::time::Instant::now();
    let (endpoint, rx) = (s3.endpoint(), Receiver::start(0).await);
    let hook = rx.url();
    let t = TestServer::start_with(
        db,
        |s| {
            s3_settings(s, endpoint);
            s.webhook_urls = Some(vec![hook]);
            s.retry_first = Some("17ms".parse().unwrap());
            s.retry_max = Some("10s".parse().unwrap());
        },
        bytes_recorders(SIZE),
    )
    .await;
    let services = &t.server().services;
    let cid = t.create_call("down").await;
    services.start_session(&cid).await.unwrap();
    let (s, _) = t
        .call(
            "POST",
            "/api/v2/video/call/default/down/recordings/raw/start",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    t.call(
        "POST",
        "/api/v2/video/call/default/down/recordings/raw/stop",
        None,
    )
    .await;

    // The uploads not done yet.
    let pending = || async {
        services
            .store()
            .due_uploads(
                reel::domain::Timestamp::now().after(Duration::from_secs(3600)),
                10,
            )
            .await
            .unwrap()
    };
    // Two failed attempts, then look: the file is pending and still on disk.
    let file = eventually(
        Duration::from_secs(20),
        "two failed upload attempts",
        || async { pending().await.into_iter().find(|f| f.attempts >= 2) },
    )
    .await;
    let local = file.local_path.clone().unwrap();
    assert_eq!(
        std::fs::read(&local).unwrap(),
        recorded_bytes(SIZE),
        "the local copy is kept"
    );
    assert!(
        file.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("PutObject"),
        "{:?}",
        file.last_error
    );
    let rec = services
        .store()
        .get_recording(&file.file.recording_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.state, RecordingState::Uploading);
    let (_, list) = t
        .call("GET", "/api/v2/video/call/default/down/recordings", None)
        .await;
    assert_eq!(
        list["recordings"],
        json!([]),
        "nothing is listed before it is uploaded"
    );
    let kinds = |t: &TestServer| {
        let store = t.server().services.store().clone();
        async move {
            store
                .deliveries(100)
                .await
                .unwrap()
                .into_iter()
                .map(|d| d.event_type)
                .collect::<Vec<_>>()
        }
    };
    assert!(
        !kinds(&t)
            .await
            .contains(&"call.recording_ready".to_string()),
        "no event claims success"
    );
    assert!(
        !kinds(&t)
            .await
            .contains(&"call.recording_failed".to_string())
    );

    // Through the rest of the outage too.
    tokio::time::sleep(OUTAGE.saturating_sub(down.elapsed())).await;
    let pending = pending().await;
    println!(
        "attempts after the outage: {:?}",
        pending.iter().map(|f| f.attempts).collect::<Vec<_>>()
    );
    assert!(pending.iter().any(|f| f.attempts >= 8), "{pending:?}");
    assert!(local.exists());
    assert!(
        !kinds(&t)
            .await
            .iter()
            .any(|k| k == "call.recording_ready" || k == "call.recording_failed"),
        "nothing reported while S3 is down"
    );

    // S3 comes back: the next attempt (at most 10 minutes later) uploads it and reports it.
    s3.resume().await;
    eventually(
        Duration::from_secs(30),
        "the upload after S3 is back",
        || async {
            kinds(&t)
                .await
                .contains(&"call.recording_ready".to_string())
                .then_some(())
        },
    )
    .await;
    let key = &file.file.object_key;
    assert_eq!(s3.object("recordings", key).unwrap(), recorded_bytes(SIZE));
    // The upload is recorded (and announced) first; the local copy goes right after.
    eventually(
        Duration::from_secs(5),
        "the local copy goes once the upload is confirmed",
        || async { (!local.exists()).then_some(()) },
    )
    .await;
    let rec = services
        .store()
        .get_recording(&file.file.recording_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.state, RecordingState::Ready);
    let got = eventually(Duration::from_secs(10), "the ready webhook", || async {
        rx.received()
            .into_iter()
            .find(|r| String::from_utf8_lossy(&r.body).contains("call.recording_ready"))
    })
    .await;
    let ready: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(
        reqwest::get(ready["call_recording"]["url"].as_str().unwrap())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec(),
        recorded_bytes(SIZE)
    );
});

/// A journal that keeps progress in memory and can fail after a number of parts.
#[derive(Default)]
struct MemoryJournal {
    upload: Mutex<Option<MultipartProgress>>,
    parts_sent: Mutex<Vec<u32>>,
    fail_after: Mutex<Option<usize>>,
}

impl UploadJournal for MemoryJournal {
    async fn resume(&self) -> Result<Option<MultipartProgress>, StorageError> {
        Ok(self.upload.lock().unwrap().clone())
    }
    async fn set_upload(&self, id: Option<&str>) -> Result<(), StorageError> {
        *self.upload.lock().unwrap() = id.map(|i| MultipartProgress {
            upload_id: i.to_owned(),
            parts: Vec::new(),
        });
        Ok(())
    }
    async fn part_done(&self, part: u32, etag: &str) -> Result<(), StorageError> {
        let mut sent = self.parts_sent.lock().unwrap();
        sent.push(part);
        if let Some(p) = self.upload.lock().unwrap().as_mut() {
            p.parts.push((part, etag.to_owned()));
        }
        if self
            .fail_after
            .lock()
            .unwrap()
            .is_some_and(|n| sent.len() >= n)
        {
            return Err(StorageError::Journal("simulated crash".into()));
        }
        Ok(())
    }
}

#[tokio::test]
async fn multipart_upload_resumes_where_it_stopped() {
    const PART: u64 = 5 * 1024 * 1024;
    let s3 = S3Server::start("big").await;
    let bucket = S3Bucket::new(S3Options {
        bucket: "big".into(),
        prefix: String::new(),
        region: "us-east-1".into(),
        endpoint: Some(s3.endpoint()),
        credentials: Some((S3_KEY.into(), S3_SECRET.into())),
        path_style: true,
    })
    .unwrap()
    .with_multipart(PART, PART);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.bin");
    let data: Vec<u8> = (0..(2 * PART + 12345))
        .map(|i| (i * 7 % 256) as u8)
        .collect();
    std::fs::write(&path, &data).unwrap();

    let journal = MemoryJournal::default();
    *journal.fail_after.lock().unwrap() = Some(1);
    let err = bucket.put(&path, "a/big.bin", &journal).await.unwrap_err();
    assert!(err.to_string().contains("simulated crash"), "{err}");
    assert!(s3.object("big", "a/big.bin").is_none());
    assert_eq!(*journal.parts_sent.lock().unwrap(), vec![1]);

    *journal.fail_after.lock().unwrap() = None;
    let size = bucket.put(&path, "a/big.bin", &journal).await.unwrap();
    assert_eq!(size, data.len() as u64);
    assert_eq!(
        *journal.parts_sent.lock().unwrap(),
        vec![1, 2, 3],
        "part 1 was not sent again"
    );
    assert!(
        journal.upload.lock().unwrap().is_none(),
        "the finished upload is forgotten"
    );
    assert_eq!(s3.object("big", "a/big.bin").unwrap(), data);
}

both_backends!(external_storage_api_and_precedence, |db| async move {
    const SIZE: usize = 1000;
    let s3 = S3Server::start("theirs").await;
    std::fs::create_dir_all(s3.root.path().join("typebucket")).unwrap();
    let t = TestServer::start_with(db, |_| {}, bytes_recorders(SIZE)).await;
    let storage = |bucket: &str, path: &str| {
        json!({
            "storage_type": "s3", "bucket": bucket, "path": path,
            "aws_s3": {"s3_region": "us-east-1", "s3_api_key": S3_KEY, "s3_secret": S3_SECRET, "s3_custom_endpoint_url": s3.endpoint()}
        })
    };
    let mut body = storage("theirs", "calls/");
    body["name"] = json!("mine");
    let (s, b) = t
        .call("POST", "/api/v2/external_storage", Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = t.call("POST", "/api/v2/external_storage", Some(body)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_envelope(&b, 400, 4, "already exists");
    let mut gcs = storage("x", "");
    gcs["name"] = json!("g");
    gcs["storage_type"] = json!("gcs");
    let (s, b) = t.call("POST", "/api/v2/external_storage", Some(gcs)).await;
    assert_envelope(&b, 400, 4, "not supported");
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (_, list) = t.call("GET", "/api/v2/external_storage", None).await;
    assert_eq!(
        list["external_storages"]["mine"],
        json!({"name": "mine", "bucket": "theirs", "path": "calls", "type": "s3"})
    );
    assert!(
        !list.to_string().contains(S3_SECRET),
        "secrets are never returned"
    );

    let (s, check) = t
        .call("GET", "/api/v2/external_storage/mine/check", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{check}");
    let probe = reqwest::get(check["file_url"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(probe.status(), 200);

    // The start request's storage wins over reel's own store.
    let (_, rec) = record_one(&t, "ext", json!({"recording_external_storage": "mine"})).await;
    let key = format!(
        "calls/default/ext/{}/{}",
        rec["session_id"].as_str().unwrap(),
        rec["filename"].as_str().unwrap()
    );
    assert_eq!(s3.object("theirs", &key).unwrap(), recorded_bytes(SIZE));
    assert_eq!(
        reqwest::get(rec["url"].as_str().unwrap())
            .await
            .unwrap()
            .status(),
        200
    );

    // The call type's storage is used when the request names none.
    let mut tb = storage("typebucket", "");
    tb["name"] = json!("typestore");
    t.call("POST", "/api/v2/external_storage", Some(tb)).await;
    let (s, b) = t
        .call(
            "PUT",
            "/api/v2/video/calltypes/default",
            Some(json!({"external_storage": "typestore"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["external_storage"], "typestore");
    let (_, rec) = record_one(&t, "ext2", json!({})).await;
    let key = format!(
        "default/ext2/{}/{}",
        rec["session_id"].as_str().unwrap(),
        rec["filename"].as_str().unwrap()
    );
    assert!(s3.object("typebucket", &key).is_some());

    // Deleting a file kept in an external storage forgets it but leaves the bucket alone.
    let del = format!(
        "/api/v2/video/call/default/ext2/{}/recordings/{}",
        rec["session_id"].as_str().unwrap(),
        rec["filename"].as_str().unwrap()
    );
    let (s, _) = t.call("DELETE", &del, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(s3.object("typebucket", &key).is_some());

    // Storages in use cannot be deleted; unknown names are refused at start.
    let (s, b) = t
        .call("DELETE", "/api/v2/external_storage/typestore", None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_envelope(&b, 400, 4, "is used by a call type or holds recordings");
    let (s, _) = t
        .call("DELETE", "/api/v2/external_storage/mine", None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "it holds a listed recording");
    let (s, b) = t
        .call(
            "POST",
            "/api/v2/video/call/default/ext/recordings/raw/start",
            Some(json!({"recording_external_storage": "nope"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_envelope(&b, 400, 4, "external storage nope does not exist");
    let (s, _) = t
        .call(
            "PUT",
            "/api/v2/video/calltypes/default",
            Some(json!({"external_storage": ""})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = t
        .call("DELETE", "/api/v2/external_storage/typestore", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let mut upd = storage("theirs", "other");
    upd.as_object_mut().unwrap().remove("name");
    let (s, b) = t
        .call("PUT", "/api/v2/external_storage/mine", Some(upd))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["path"], "other");
});
