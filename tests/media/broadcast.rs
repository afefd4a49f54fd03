//! Broadcasts published over WHIP with publish tokens: who may publish which stream, one
//! participant per source, a token whose recording setting cannot change while it is live,
//! and the recordings of each source in the codecs it was sent in.

use std::path::PathBuf;
use std::time::Duration;

use axum::http::StatusCode;
use reel::domain::{Recording, RecordingState, RecordingType, StreamName, stream_cid};
use reel::recorders::Recorders;
use reel::store::RecordingFilter;
use serde_json::{Value, json};

use crate::common::{
    API_SECRET, Db, Receiver, S3_KEY, S3_SECRET, S3Server, TestServer, eventually, stdout_of,
};
use crate::support::{
    assert_index_in_front, decode, fetch, make_clips, offer, probe, probe_json, server, walk,
};

/// Calls the publish token API with the API secret; the answer's status and data.
async fn tokens(t: &TestServer, method: &str, path: &str, body: Value) -> (StatusCode, Value) {
    api(t, method, &format!("publish_token{path}"), body).await
}

/// Calls the broadcast dialect's `/api/{path}` with the API secret; the answer's status and
/// data.
async fn api(t: &TestServer, method: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let url = format!("{}/api/{path}", t.base);
    let (s, answer) = t
        .raw(
            method,
            &url,
            Some(&format!("Bearer {API_SECRET}")),
            Some(body),
        )
        .await;
    (s, answer["data"].clone())
}

/// Makes a token of `body`; its id and value.
pub(crate) async fn token(t: &TestServer, body: Value) -> (i64, String) {
    let (s, data) = tokens(t, "POST", "", body).await;
    assert_eq!(s, StatusCode::OK, "{data}");
    (
        data["id"].as_i64().unwrap(),
        data["token"].as_str().unwrap().to_owned(),
    )
}

/// Posts a valid offer to `path` (under `/whip/broadcast/`) with `token`; the status and
/// the text of the answer.
async fn offer_to(t: &TestServer, path: &str, token: Option<&str>) -> (StatusCode, String) {
    let mut req = t
        .http
        .post(format!("{}/whip/broadcast/{path}", t.base))
        .header("content-type", "application/sdp")
        .body(offer("opus/48000/2", 1));
    if let Some(tk) = token {
        req = req.bearer_auth(tk);
    }
    let res = req.send().await.unwrap();
    let status = StatusCode::from_u16(res.status().as_u16()).unwrap();
    (status, res.text().await.unwrap())
}

/// Starts `reel publish` of the test clip `video` (and the Opus clip) to `path` (under
/// `/whip/broadcast/`) with `token` for `seconds`.
pub(crate) fn broadcast(
    t: &TestServer,
    (clips, video): (&std::path::Path, &str),
    path: &str,
    token: &str,
    seconds: u32,
) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_reel"))
        .arg("publish")
        .arg(format!("{}/whip/broadcast/{path}", t.base))
        .arg("--video")
        .arg(clips.join(video))
        .arg("--audio")
        .arg(clips.join("opus.ogg"))
        .args(["--duration", &format!("{seconds}s"), "--token", token])
        .env_remove("REEL_API_SECRET")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("reel publish starts")
}

/// The (user, source) of each participant of `stream` now.
fn sources(t: &TestServer, stream: &str) -> Vec<(String, String)> {
    let cid = stream_cid(&StreamName::parse(stream).unwrap());
    let mut v: Vec<_> = t
        .server()
        .media
        .state(&cid)
        .participants
        .into_iter()
        .map(|p| (p.user_id.to_string(), p.source_id))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn publish_tokens_decide_who_broadcasts_what() {
    let t = server(Duration::from_secs(1), None).await;
    let clips = tempfile::tempdir().unwrap();
    make_clips(clips.path());
    let (news_id, news) = token(
        &t,
        json!({"label": "news", "streams": [{"streamName": "news"}], "multisource": false}),
    )
    .await;
    let (channels_id, channels) = token(
        &t,
        json!({"label": "channels", "streams": [{"streamName": "ch-[0-9]+", "isRegex": true}]}),
    )
    .await;
    let (off_id, off) = token(
        &t,
        json!({"label": "off", "streams": [{"streamName": "news"}]}),
    )
    .await;
    let (s, _) = tokens(&t, "PUT", &format!("/{off_id}"), json!({"isActive": false})).await;
    assert_eq!(s, StatusCode::OK);
    let (_, expired) = token(
        &t,
        json!({"label": "old", "streams": [{"streamName": "news"}],
               "expiresOn": "2020-01-01T00:00:00Z"}),
    )
    .await;

    // Refused before any media: each with a status and a message that says why.
    let long = "x".repeat(4096);
    let long_source = format!("ch-1?sourceId={long}");
    for (path, token, status, says) in [
        (
            "news",
            None,
            StatusCode::UNAUTHORIZED,
            "publish token is required",
        ),
        ("news", Some("wrong"), StatusCode::UNAUTHORIZED, "not valid"),
        (
            "sport",
            Some(news.as_str()),
            StatusCode::FORBIDDEN,
            "does not cover",
        ),
        (
            "ch-x",
            Some(channels.as_str()),
            StatusCode::FORBIDDEN,
            "does not cover",
        ),
        (
            "news",
            Some(off.as_str()),
            StatusCode::FORBIDDEN,
            "disabled",
        ),
        (
            "news",
            Some(expired.as_str()),
            StatusCode::FORBIDDEN,
            "expired",
        ),
        (
            "news?sourceId=cam2",
            Some(news.as_str()),
            StatusCode::BAD_REQUEST,
            "not multisource",
        ),
        (
            "ch-1?sourceId=..%2Fx",
            Some(channels.as_str()),
            StatusCode::BAD_REQUEST,
            "sourceId",
        ),
        (
            long_source.as_str(),
            Some(channels.as_str()),
            StatusCode::BAD_REQUEST,
            "sourceId",
        ),
        (
            "ch-1?sourceId=a%01",
            Some(channels.as_str()),
            StatusCode::BAD_REQUEST,
            "sourceId",
        ),
        (
            "..%2Fx",
            Some(news.as_str()),
            StatusCode::BAD_REQUEST,
            "stream name",
        ),
        (
            "a%01b",
            Some(news.as_str()),
            StatusCode::BAD_REQUEST,
            "stream name",
        ),
        (
            long.as_str(),
            Some(news.as_str()),
            StatusCode::BAD_REQUEST,
            "too long",
        ),
    ] {
        let (s, text) = offer_to(&t, path, token).await;
        assert_eq!(s, status, "{path}: {text}");
        assert!(
            text.contains(says),
            "{path}: {text:?} does not say {says:?}"
        );
    }
    // A refused stream does not become a call.
    let (s, _) = t
        .call("GET", "/api/v2/video/call/broadcast/sport", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A broadcast: the token's publisher takes part in the stream's call, with its tracks.
    let mut live = broadcast(&t, (clips.path(), "vp8.ivf"), "news", &news, 8);
    let publisher = format!("broadcaster-{news_id}");
    eventually(Duration::from_secs(10), "the broadcast is live", || async {
        (sources(&t, "news") == [(publisher.clone(), String::new())]).then_some(())
    })
    .await;
    let cid = stream_cid(&StreamName::parse("news").unwrap());
    eventually(Duration::from_secs(10), "its two tracks", || async {
        (t.server().media.state(&cid).tracks.len() == 2).then_some(())
    })
    .await;
    // The same source twice is refused while it is live.
    let (s, text) = offer_to(&t, "news", Some(&news)).await;
    assert_eq!(s, StatusCode::CONFLICT, "{text}");

    // While it is live, its recording cannot be switched; its label can change.
    let path = format!("/{news_id}");
    let (s, data) = tokens(&t, "PUT", &path, json!({"record": true})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{data}");
    assert!(
        data["message"].as_str().unwrap().contains("live broadcast"),
        "{data}"
    );
    let (s, data) = tokens(&t, "PUT", &path, json!({"label": "news desk"})).await;
    assert_eq!((s, &data["record"]), (StatusCode::OK, &json!(false)));

    // Multisource: each source is a participant of its own.
    let a = broadcast(
        &t,
        (clips.path(), "vp8.ivf"),
        "ch-1?sourceId=a",
        &channels,
        8,
    );
    let b = broadcast(
        &t,
        (clips.path(), "vp8.ivf"),
        "ch-1?sourceId=b",
        &channels,
        8,
    );
    let who = format!("broadcaster-{channels_id}");
    eventually(Duration::from_secs(10), "both sources are live", || async {
        (sources(&t, "ch-1") == [(who.clone(), "a".into()), (who.clone(), "b".into())])
            .then_some(())
    })
    .await;

    // Once the broadcast ended (the publisher stops, and ends its session), the setting
    // changes.
    let ended = live.wait().await.unwrap();
    assert!(ended.success(), "reel publish: {ended}");
    eventually(Duration::from_secs(10), "the broadcast ended", || async {
        sources(&t, "news").is_empty().then_some(())
    })
    .await;
    let (s, data) = tokens(&t, "PUT", &path, json!({"record": true})).await;
    assert_eq!(
        (s, &data["record"]),
        (StatusCode::OK, &json!(true)),
        "{data}"
    );
    for mut source in [a, b] {
        assert!(source.wait().await.unwrap().success());
    }
}

/// A server on SQLite with the native recorders, whose call sessions end a second after the
/// last participant leaves, with `more` settings.
async fn recording_server(more: impl FnOnce(&mut reel::config::Settings)) -> TestServer {
    TestServer::start_with(
        Db::Sqlite,
        |s| {
            s.media.session_grace = Some(reel::config::HumanDuration(Duration::from_secs(1)));
            more(s);
        },
        Recorders::native(),
    )
    .await
}

/// The broadcast recordings of `stream` once every one is final, each with the paths of
/// its stored files.
async fn final_recordings(
    t: &TestServer,
    stream: &str,
    count: usize,
) -> Vec<(Recording, Vec<PathBuf>)> {
    let store = t.server().services.store();
    let filter = RecordingFilter {
        cid: Some(stream_cid(&StreamName::parse(stream).unwrap())),
        types: vec![RecordingType::Broadcast],
        limit: 100,
        ..RecordingFilter::default()
    };
    let recordings = eventually(Duration::from_secs(30), "the recordings to end", || async {
        let (found, _) = store.find_recordings(&filter).await.unwrap();
        (found.len() == count && found.iter().all(|r| r.state.is_final())).then_some(found)
    })
    .await;
    let mut out = Vec::new();
    for r in recordings {
        let files = store
            .files_of(&r.id)
            .await
            .unwrap()
            .into_iter()
            .map(|f| t.config.recordings_dir().join(&f.file.object_key))
            .collect();
        out.push((r, files));
    }
    out
}

/// The one recorded file of `files`, named `{prefix}...{extension}`: 15 s of `codecs`,
/// decoding without an error; and the pictures beside it: thumbnails named after the stream
/// and source, and the file's poster, each a JPEG the size of the video.
async fn the_file(
    files: &[PathBuf],
    (prefix, extension): (&str, &str),
    codecs: [&str; 2],
) -> PathBuf {
    let (pictures, media): (Vec<_>, Vec<_>) = files
        .iter()
        .partition(|f| f.extension().is_some_and(|e| e == "jpg"));
    let [file] = media.as_slice() else {
        panic!("one file: {files:?}")
    };
    let stem = file.file_stem().unwrap().to_str().unwrap();
    let poster = format!("{stem}_poster.jpg");
    assert!(pictures.len() >= 2, "a thumbnail and a poster: {files:?}");
    assert!(
        pictures.iter().any(|p| p.ends_with(&poster)),
        "{poster} in {pictures:?}"
    );
    for p in &pictures {
        let name = p.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with(prefix), "{name}");
        let probed = probe_json(p, &[]).await;
        let video = &probed["streams"][0];
        assert_eq!(
            (&video["codec_name"], &video["width"], &video["height"]),
            (&json!("mjpeg"), &json!(320), &json!(240)),
            "{name}"
        );
        assert_eq!(decode(p).await.0, "", "{name}");
    }
    let name = file.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with(prefix) && name.ends_with(extension),
        "{name}"
    );
    let (got, seconds) = probe(file).await;
    assert_eq!(got, codecs, "{name}");
    assert!((seconds - 15.0).abs() < 1.0, "{name}: {seconds} s");
    let (errors, _) = decode(file).await;
    assert_eq!(errors, "", "{name}");
    (*file).clone()
}

#[tokio::test]
async fn broadcasts_are_recorded_in_the_codecs_they_were_sent_in() {
    let hook = Receiver::start(0).await;
    let t = recording_server(|s| s.webhook_urls = Some(vec![hook.url()])).await;
    let clips = tempfile::tempdir().unwrap();
    make_clips(clips.path());
    let (_, recorded) = token(
        &t,
        json!({"label": "recorded", "streams": [{"streamName": "news"}], "record": true,
               "enableThumbnails": true}),
    )
    .await;
    let (plain_id, plain) = token(
        &t,
        json!({"label": "plain", "streams": [{"streamName": "sport"}], "enableThumbnails": true}),
    )
    .await;
    let publish = |path: &str, token: &str, video: &str, seconds: u32| {
        broadcast(&t, (clips.path(), video), path, token, seconds)
    };
    // VP8 from a recording token; H.264 from a token that records only when asked, from a
    // source of its own; a source that asks not to be; and one too short to keep.
    let runs = [
        publish("news", &recorded, "vp8.ivf", 15),
        publish("sport?record&sourceId=cam", &plain, "h264.h264", 15),
        publish("sport?sourceId=quiet", &plain, "vp8.ivf", 12),
        publish("news?noRecord&sourceId=off", &recorded, "vp8.ivf", 12),
        publish("news?sourceId=short", &recorded, "vp8.ivf", 5),
    ];
    for mut run in runs {
        assert!(run.wait().await.unwrap().success());
    }

    // The publishers started together: which recording is which, their outcomes tell.
    let mut news = final_recordings(&t, "news", 2).await;
    news.sort_by_key(|(r, _)| r.state != RecordingState::Ready);
    let (long, short) = (&news[0], &news[1]);
    assert_eq!(long.0.state, RecordingState::Ready, "{:?}", long.0);
    let webm = the_file(&long.1, ("news_main_", ".webm"), ["opus", "vp8"]).await;

    // Too short: nothing kept, and the recording says why.
    assert_eq!(short.0.state, RecordingState::Failed);
    assert!(short.1.is_empty());
    let why = short.0.error.clone().unwrap_or_default();
    assert!(why.contains("shorter than 10 s"), "{why}");

    let sport = final_recordings(&t, "sport", 1).await;
    let mp4 = the_file(&sport[0].1, ("sport_cam_", ".mp4"), ["opus", "h264"]).await;
    // Finished with its index in front, so players start before the whole file is there.
    assert_index_in_front(&mp4);

    let stored = [long.1.clone(), sport[0].1.clone()].concat();
    record_files_are_listed_read_and_deleted(&t, (&webm, &mp4), &stored, plain_id).await;

    // Every change of each record file went to the webhook receiver, signed, in order.
    let changes = eventually(
        Duration::from_secs(10),
        "nine recordings webhooks",
        || async {
            let got: Vec<Value> = hook
                .received()
                .into_iter()
                .filter_map(|r| {
                    let body: Value = serde_json::from_slice(&r.body).ok()?;
                    (body["type"] == "recordings").then(|| {
                        let signature = r.headers["x-millicast-signature"].to_str().unwrap();
                        assert_eq!(signature, reel::webhooks::sign_sha1(API_SECRET, &r.body));
                        body
                    })
                })
                .collect();
            (got.len() >= 9).then_some(got)
        },
    )
    .await;
    let mut by_file: std::collections::BTreeMap<i64, Vec<&str>> = Default::default();
    for c in &changes {
        let id = c["data"]["recordFileId"].as_i64().unwrap();
        by_file
            .entry(id)
            .or_default()
            .push(c["event"].as_str().unwrap());
        assert!(c["timestamp"].as_i64().unwrap() > 1_700_000_000_000, "{c}");
    }
    let mut lives: Vec<_> = by_file.values().cloned().collect();
    lives.sort();
    assert_eq!(
        lives,
        [
            ["started", "completed", "deleted"],
            ["started", "completed", "deleted"],
            ["started", "error", "deleted"]
        ]
    );
    let completed = changes.iter().find(|c| c["event"] == "completed").unwrap();
    assert!(
        completed["data"]["metadata"]["duration"].as_f64().unwrap() > 10.0,
        "{completed}"
    );
}

/// The stream, status and id of each record file listed at `path`.
async fn listed(t: &TestServer, path: &str) -> Vec<(String, String, i64)> {
    let (s, data) = api(t, "GET", &format!("record_files/{path}"), Value::Null).await;
    assert_eq!(s, StatusCode::OK, "{path}: {data}");
    data.as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["streamName"].as_str().unwrap().to_owned(),
                f["status"].as_str().unwrap().to_owned(),
                f["id"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// The record files of the recordings made above: `webm` (news) and `mp4` (sport, from the
/// token `plain`), with the pictures in `stored`, and a news broadcast too short to keep.
async fn record_files_are_listed_read_and_deleted(
    t: &TestServer,
    (webm, mp4): (&PathBuf, &PathBuf),
    stored: &[PathBuf],
    plain: i64,
) {
    let all = listed(t, "list?sortBy=StreamName").await;
    let statuses: Vec<_> = all
        .iter()
        .map(|(s, st, _)| (s.as_str(), st.as_str()))
        .collect();
    assert!(
        statuses
            == [
                ("news", "Complete"),
                ("news", "Error"),
                ("sport", "Complete")
            ]
            || statuses
                == [
                    ("news", "Error"),
                    ("news", "Complete"),
                    ("sport", "Complete")
                ],
        "{statuses:?}"
    );
    let errored = listed(t, "list?status=Error").await;
    let [(_, _, short)] = errored.as_slice() else {
        panic!("{errored:?}")
    };
    let (_, data) = api(t, "GET", &format!("record_files/{short}"), Value::Null).await;
    let why = data["error"].as_str().unwrap_or_default();
    assert!(why.contains("shorter than 10 s"), "{data}");
    assert_eq!(data["metadata"], Value::Null);
    let by_token = listed(t, &format!("list_by_token?tokenId={plain}")).await;
    assert_eq!(by_token, listed(t, "list_by_stream?streamName=sport").await);
    let [(_, _, sport)] = by_token.as_slice() else {
        panic!("{by_token:?}")
    };
    let news = all
        .iter()
        .find(|(s, st, _)| s == "news" && st == "Complete")
        .unwrap()
        .2;
    for bad in [
        "list_by_token",
        "list_by_stream",
        "list?status=Done",
        "list?sortBy=Size",
        "list_by_stream?streamName=..%2Fx",
    ] {
        let (s, data) = api(t, "GET", &format!("record_files/{bad}"), Value::Null).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {data}");
    }

    // Each file's metadata is what ffprobe reads; its link downloads it.
    for (id, file) in [(news, webm), (*sport, mp4)] {
        let (s, data) = api(t, "GET", &format!("record_files/{id}"), Value::Null).await;
        assert_eq!(s, StatusCode::OK, "{data}");
        let m = &data["metadata"];
        let probed = probe_json(file, &[]).await;
        let format = if file.extension().unwrap() == "mp4" {
            "MP4"
        } else {
            "WEBM"
        };
        assert_eq!(m["format"], format, "{data}");
        assert_eq!(
            m["sizes"]["recording"],
            std::fs::metadata(file).unwrap().len()
        );
        let seconds: f64 = probed["format"]["duration"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let duration = m["duration"].as_f64().unwrap();
        assert!((duration - seconds).abs() < 0.1, "{m} against {seconds}");
        for stream in probed["streams"].as_array().unwrap() {
            let kind = stream["codec_type"].as_str().unwrap();
            let tracks = m["tracks"].as_array().unwrap();
            let track = tracks.iter().find(|t| t["type"] == kind).unwrap();
            assert_eq!(
                track["codec"].as_str().unwrap().to_lowercase(),
                stream["codec_name"].as_str().unwrap(),
                "{track}"
            );
            assert!(track["bitrate"].as_u64().unwrap() > 1000, "{track}");
            if kind == "video" {
                assert_eq!(
                    (&track["width"], &track["height"]),
                    (&stream["width"], &stream["height"])
                );
                let rate = track["framerate"].as_f64().unwrap();
                assert!((rate - 30.0).abs() < 2.0, "{track}");
            } else {
                assert_eq!(track["channels"], stream["channels"]);
                assert_eq!(
                    track["samplerate"].to_string(),
                    stream["sample_rate"].as_str().unwrap()
                );
            }
        }
        let url = data["download"]["downloadUrl"].as_str().unwrap();
        let expires = data["download"]["downloadExpiresOn"].as_str().unwrap();
        assert!(
            reel::domain::Timestamp::parse_rfc3339(expires).is_some(),
            "{expires}"
        );
        let bytes = fetch(&t.http, url).await;
        assert_eq!(bytes.len() as u64, std::fs::metadata(file).unwrap().len());
        // The pictures' links give the pictures stored beside the file.
        let thumbnails = m["thumbnails"].as_array().unwrap();
        assert!(!thumbnails.is_empty(), "{m}");
        for link in thumbnails.iter().chain([&m["poster"]]) {
            let jpeg = fetch(&t.http, link.as_str().unwrap()).await;
            assert!(
                stored.iter().any(|f| std::fs::read(f).unwrap() == jpeg),
                "{link}"
            );
        }
    }
    let size = |f: &PathBuf| std::fs::metadata(f).unwrap().len();
    let (_, usage) = api(t, "GET", "record_files/usage", Value::Null).await;
    assert_eq!(usage["bytes"], stored.iter().map(size).sum::<u64>());

    // Deleted for good: the stored object goes too; a second delete is not found.
    let one = format!("record_files/{sport}");
    let (s, data) = api(t, "DELETE", &one, Value::Null).await;
    assert_eq!((s, data), (StatusCode::OK, json!(true)));
    assert!(!mp4.exists(), "the object is gone");
    let mp4_dir = mp4.parent().unwrap();
    assert!(
        stored
            .iter()
            .all(|f| !f.starts_with(mp4_dir) || !f.exists()),
        "its pictures are gone too"
    );
    let (s, _) = api(t, "DELETE", &one, Value::Null).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let ids = json!({"recordFileIds": [news, 424242]});
    let (_, data) = api(t, "POST", "record_files/delete", ids).await;
    assert_eq!(data["deletedRecordFileIds"], json!([news]));
    assert_eq!(data["failedRecordFiles"][0]["recordFileId"], 424242);
    assert!(!webm.exists());
    let (_, data) = api(t, "POST", "record_files/delete/all", Value::Null).await;
    assert_eq!(data["deletedRecordFileIds"], json!([short]));
    assert!(listed(t, "list").await.is_empty());
    let (_, usage) = api(t, "GET", "record_files/usage", Value::Null).await;
    assert_eq!(usage["bytes"], 0);
}

#[tokio::test]
async fn record_files_stored_in_s3_are_deleted_from_the_bucket() {
    let s3 = S3Server::start("recordings").await;
    let hook = Receiver::start(0).await;
    let endpoint = s3.endpoint();
    let t = recording_server(|s| {
        s.webhook_urls = Some(vec![hook.url()]);
        s.s3.bucket = Some("recordings".into());
        s.s3.endpoint = Some(endpoint);
        s.s3.access_key_id = Some(S3_KEY.into());
        s.s3.secret_access_key = Some(S3_SECRET.into());
    })
    .await;
    let clips = tempfile::tempdir().unwrap();
    make_clips(clips.path());
    let (_, value) = token(
        &t,
        json!({"label": "remote", "streams": [{"streamName": "remote"}], "record": true,
               "enableThumbnails": true}),
    )
    .await;
    let mut run = broadcast(&t, (clips.path(), "vp8.ivf"), "remote", &value, 13);
    assert!(run.wait().await.unwrap().success());
    final_recordings(&t, "remote", 1).await;

    // The file and its pictures are in the bucket; the link gives the file from there.
    let bucket = s3.root.path().join("recordings");
    let stored = walk(&bucket);
    assert!(
        stored.len() >= 3,
        "the file, a thumbnail and a poster: {stored:?}"
    );
    let listed = listed(&t, "list").await;
    let [(_, status, id)] = listed.as_slice() else {
        panic!("{listed:?}")
    };
    assert_eq!(status, "Complete");
    let (_, data) = api(&t, "GET", &format!("record_files/{id}"), Value::Null).await;
    let url = data["download"]["downloadUrl"].as_str().unwrap();
    assert!(
        url.starts_with(&s3.endpoint()) && url.contains("X-Amz-Signature"),
        "{url}"
    );
    let bytes = fetch(&t.http, url).await;
    assert_eq!(
        bytes.len() as u64,
        data["metadata"]["sizes"]["recording"].as_u64().unwrap()
    );
    let poster = data["metadata"]["poster"].as_str().unwrap();
    let jpeg = fetch(&t.http, poster).await;
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);

    // Deleted: every object goes from the bucket, once; the webhook says so, signed.
    let one = format!("record_files/{id}");
    let (s, _) = api(&t, "DELETE", &one, Value::Null).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(walk(&bucket), Vec::<PathBuf>::new());
    let (s, data) = api(&t, "DELETE", &one, Value::Null).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{data}");
    let (_, usage) = api(&t, "GET", "record_files/usage", Value::Null).await;
    assert_eq!(usage["bytes"], 0);
    let deleted = eventually(Duration::from_secs(10), "the deleted webhook", || async {
        hook.received().into_iter().find(|r| {
            serde_json::from_slice::<Value>(&r.body).is_ok_and(|b| b["event"] == "deleted")
        })
    })
    .await;
    let signature = deleted.headers["x-millicast-signature"].to_str().unwrap();
    assert_eq!(
        signature,
        reel::webhooks::sign_sha1(API_SECRET, &deleted.body)
    );
}

#[tokio::test]
async fn chromium_trickling_ice_and_aiortc_broadcast_with_a_publish_token() {
    let t = recording_server(|_| {}).await;
    let (_, value) = token(
        &t,
        json!({"label": "desk", "streams": [{"streamName": "desk"}], "record": true}),
    )
    .await;
    let url = |source: &str| format!("{}/whip/broadcast/desk?sourceId={source}", t.base);
    // Chromium sends its offer before it knows a candidate, and each candidate by PATCH.
    let browser = |mode: &str, url: String, token: &str, seconds: &str| {
        let mut c = tokio::process::Command::new(crate::common::python());
        c.arg(crate::support::script("browser_broadcast.py")).args([
            mode,
            &format!("{}/healthz", t.base),
            &url,
            token,
            seconds,
        ]);
        c
    };
    let mut chromium = browser("publish", url("browser"), &value, "12");
    let mut aiortc = tokio::process::Command::new(crate::common::python());
    aiortc.arg(crate::support::script("whip_publish.py")).args([
        &url("aiortc"),
        &value,
        "h264",
        "12",
    ]);
    // A viewer watches the stream openly while it is live.
    let mut viewer = browser("watch", format!("{}/whep/broadcast/desk", t.base), "-", "5");
    let chromium = stdout_of(&mut chromium, "the Chromium broadcaster");
    let aiortc = stdout_of(&mut aiortc, "the aiortc broadcaster");
    let viewer = async {
        tokio::time::sleep(Duration::from_secs(4)).await;
        stdout_of(&mut viewer, "the Chromium viewer").await
    };
    let (chromium, aiortc, viewer) = tokio::join!(chromium, aiortc, viewer);
    let viewer: Value = serde_json::from_str(viewer.trim()).unwrap();
    assert_eq!(viewer["status"], 201, "{viewer}");
    assert!(
        viewer["received"]["video"].as_u64().unwrap() > 100,
        "{viewer}"
    );
    assert!(
        viewer["received"]["audio"].as_u64().unwrap() > 100,
        "{viewer}"
    );
    assert!(viewer["frames_decoded"].as_u64().unwrap() > 30, "{viewer}");
    let chromium: Value = serde_json::from_str(chromium.trim()).unwrap();
    let aiortc: Value = serde_json::from_str(aiortc.trim()).unwrap();
    assert_eq!(chromium["candidates_in_offer"], 0, "{chromium}");
    assert!(chromium["patches"].as_u64().unwrap() >= 2, "{chromium}");
    for sent in [&chromium["sent"], &aiortc["sent"]] {
        assert!(sent["video"].as_u64().unwrap() > 300, "{sent}");
        assert!(sent["audio"].as_u64().unwrap() > 500, "{sent}");
    }

    // One file per source, in the codec each sent.
    let recorded = final_recordings(&t, "desk", 2).await;
    let files: Vec<PathBuf> = recorded.into_iter().flat_map(|(_, f)| f).collect();
    let browser = if chromium["codec"] == "video/H264" {
        ("desk_browser_", ".mp4", ["opus", "h264"])
    } else {
        assert_eq!(chromium["codec"], "video/VP8", "{chromium}");
        ("desk_browser_", ".webm", ["opus", "vp8"])
    };
    for (prefix, extension, codecs) in [browser, ("desk_aiortc_", ".mp4", ["opus", "h264"])] {
        let mine: Vec<_> = files
            .iter()
            .filter(|f| f.to_str().unwrap().contains(prefix))
            .collect();
        let [file] = mine.as_slice() else {
            panic!("{prefix}: {files:?}")
        };
        assert!(file.to_str().unwrap().ends_with(extension), "{file:?}");
        let (got, seconds) = probe(file).await;
        assert_eq!(got, codecs, "{file:?}");
        assert!((seconds - 12.0).abs() < 1.5, "{file:?}: {seconds} s");
        assert_eq!(decode(file).await.0, "", "{file:?}");
    }
}

#[tokio::test]
async fn viewers_need_a_subscribe_token_only_where_the_stream_asks_for_one() {
    let t = server(Duration::from_secs(1), None).await;
    let (_, open) = token(
        &t,
        json!({"label": "open", "streams": [{"streamName": "open"}]}),
    )
    .await;
    let (_, vip) = token(
        &t,
        json!({"label": "vip", "streams": [{"streamName": "vip"}], "subscribeRequiresAuth": true}),
    )
    .await;
    let fan = t.user_token("fan", None);
    let watch = |stream: &str, bearer: Option<&str>| {
        let mut req = t
            .http
            .post(format!("{}/whep/broadcast/{stream}", t.base))
            .header("content-type", "application/sdp")
            .body(offer("opus/48000/2", 1).replace("a=sendonly", "a=recvonly"));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        async move {
            let res = req.send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    for (stream, bearer, status, says) in [
        ("open", None, 201, ""),
        ("vip", None, 401, "needs a subscribe token"),
        ("vip", Some("wrong"), 401, "not valid"),
        ("vip", Some(open.as_str()), 401, "not valid"),
        ("vip", Some(fan.as_str()), 201, ""),
        ("vip", Some(API_SECRET), 201, ""),
        ("vip", Some(vip.as_str()), 201, ""),
        ("nobody", None, 404, "no active publish token covers"),
        ("..%2Fx", None, 400, "stream name"),
    ] {
        let (s, text) = watch(stream, bearer).await;
        assert_eq!(s, status, "{stream} with {bearer:?}: {text}");
        assert!(
            text.contains(says),
            "{stream}: {text:?} does not say {says:?}"
        );
    }
}

#[tokio::test]
async fn a_broadcast_longer_than_a_recording_may_be_goes_on_in_new_recordings() {
    // Recordings of at most 6 s (12 h by default): a 15 s broadcast makes three.
    let t = recording_server(|s| {
        s.broadcast_split = Some(reel::config::HumanDuration(Duration::from_secs(6)));
    })
    .await;
    let clips = tempfile::tempdir().unwrap();
    make_clips(clips.path());
    let (_, value) = token(
        &t,
        json!({"label": "long", "streams": [{"streamName": "long"}], "record": true}),
    )
    .await;
    let mut run = broadcast(&t, (clips.path(), "vp8.ivf"), "long", &value, 15);
    assert!(run.wait().await.unwrap().success());
    let mut pieces = final_recordings(&t, "long", 3).await;
    pieces.sort_by_key(|(r, _)| r.created_at);
    let mut spans = Vec::new();
    for (r, files) in &pieces {
        assert_eq!(r.state, RecordingState::Ready, "{r:?}");
        let [file] = files.as_slice() else {
            panic!("{files:?}")
        };
        let (codecs, seconds) = probe(file).await;
        assert_eq!(codecs, ["opus", "vp8"], "{file:?}");
        assert_eq!(decode(file).await.0, "", "{file:?}");
        let name = file.file_stem().unwrap().to_str().unwrap();
        let first_ms: i64 = name.rsplit('_').next().unwrap().parse().unwrap();
        spans.push((first_ms as f64 / 1000.0, seconds));
    }
    println!("pieces (start s, length s): {spans:?}");
    // Split on the recorder's next tick after 6 s (later on a busy machine).
    for (i, (_, seconds)) in spans.iter().enumerate().take(2) {
        assert!((5.9..7.5).contains(seconds), "piece {i}: {seconds} s");
    }
    // Each piece goes on where the one before ended, but for a key frame's wait.
    for pair in spans.windows(2) {
        let gap = pair[1].0 - (pair[0].0 + pair[0].1);
        assert!(
            (-0.1..1.5).contains(&gap),
            "{gap} s between pieces: {spans:?}"
        );
    }
    let total: f64 = spans.iter().map(|(_, s)| s).sum();
    assert!(
        (12.5..15.5).contains(&total),
        "{total} s of 15 kept: {spans:?}"
    );
}

/// The picture sizes of `file`'s video frames, in order, each once per run of frames.
async fn frame_sizes(file: &std::path::Path) -> Vec<String> {
    let out = tokio::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v",
            "-show_entries",
            "frame=width,height",
        ])
        .args(["-of", "csv=p=0"])
        .arg(file)
        .output()
        .await
        .unwrap();
    let mut sizes: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    sizes.dedup();
    sizes
}

#[tokio::test]
async fn a_broadcast_that_changes_resolution_keeps_both_in_its_file() {
    let t = recording_server(|_| {}).await;
    let (_, value) = token(
        &t,
        json!({"label": "sizes", "streams": [{"streamName": "sizes"}], "record": true}),
    )
    .await;
    // Chromium halves its picture after 6 s, in H.264 and in VP8.
    let mut runs = Vec::new();
    for (source, codec) in [("avc", "video/H264"), ("vp8", "video/VP8")] {
        let url = format!("{}/whip/broadcast/sizes?sourceId={source}", t.base);
        let mut c = tokio::process::Command::new(crate::common::python());
        c.arg(crate::support::script("browser_broadcast.py"))
            .args(["publish", &format!("{}/healthz", t.base), &url, &value])
            .args(["12", codec, "6"]);
        runs.push(async move { stdout_of(&mut c, "the Chromium broadcaster").await });
    }
    let [avc, vp8]: [String; 2] = futures_util::future::join_all(runs)
        .await
        .try_into()
        .unwrap();
    for (run, codec) in [(&avc, "video/H264"), (&vp8, "video/VP8")] {
        let report: Value = serde_json::from_str(run.trim()).unwrap();
        assert_eq!(report["codec"], codec, "{report}");
    }
    let files: Vec<PathBuf> = final_recordings(&t, "sizes", 2)
        .await
        .into_iter()
        .flat_map(|(_, f)| f)
        .collect();
    for (prefix, extension) in [("sizes_avc_", ".mp4"), ("sizes_vp8_", ".webm")] {
        let file = files
            .iter()
            .find(|f| f.to_str().unwrap().contains(prefix))
            .unwrap_or_else(|| panic!("{prefix}: {files:?}"));
        assert!(file.to_str().unwrap().ends_with(extension), "{file:?}");
        assert_eq!(decode(file).await.0, "", "{file:?}");
        let sizes = frame_sizes(file).await;
        assert_eq!(sizes, ["640,360", "320,180"], "{file:?}");
        let (_, seconds) = probe(file).await;
        assert!((seconds - 12.0).abs() < 1.5, "{file:?}: {seconds} s");
    }
}
