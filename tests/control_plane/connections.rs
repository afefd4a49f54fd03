//! HTTP/1 connections: a client that reuses its connection keeps it, whatever a handler reads.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

/// Reads one answer with a `content-length` from `conn`: its status line and body.
async fn read_answer(conn: &mut (impl AsyncRead + Unpin)) -> Option<(String, String)> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().unwrap())
                })
                .expect("answers have a content-length");
            if got.len() >= end + 4 + length {
                let body = String::from_utf8_lossy(&got[end + 4..end + 4 + length]).into_owned();
                return Some((head.lines().next().unwrap().to_owned(), body));
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf))
            .await
            .expect("an answer within 10 s")
            .ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
    }
}

/// A request whose body the handler has no use for (stopping a recording that is not
/// running), with the body sent after a pause, as clients that write headers and body
/// separately do. The next request on the same connection is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_body_the_handler_ignores_keeps_the_connection() {
    let t = TestServer::start(Db::Sqlite).await;
    t.create_call("kept").await;
    let mut conn = TcpStream::connect(t.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "POST /api/v2/video/call/default/kept/recordings/raw/stop?api_key={API_KEY} HTTP/1.1\r\n\
         host: reel\r\nauthorization: {}\r\nstream-auth-type: jwt\r\n\
         content-type: application/json\r\ncontent-length: 2\r\n\r\n",
        t.server_token()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    conn.write_all(b"{}").await.unwrap();
    let (status, body) = read_answer(&mut conn).await.expect("the stop is answered");
    assert!(status.contains(" 400 "), "{status}: {body}");
    assert!(body.contains("call egress is not running"), "{body}");

    conn.write_all(b"GET /healthz HTTP/1.1\r\nhost: reel\r\n\r\n")
        .await
        .unwrap();
    let (status, body) = read_answer(&mut conn)
        .await
        .expect("the same connection answers the next request");
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(body, "ok\n");
}

/// A chunked body past the limit is refused with 413 in Stream's error envelope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_past_the_limit_is_refused() {
    let t = TestServer::start(Db::Sqlite).await;
    let conn = TcpStream::connect(t.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "POST /api/v2/video/call/default/big?api_key={API_KEY} HTTP/1.1\r\n\
         host: reel\r\nauthorization: {}\r\nstream-auth-type: jwt\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
        t.server_token()
    );
    let (mut rx, mut tx) = conn.into_split();
    // 17 chunks of 64 KiB, just past the limit, written while the answer is read: the server
    // may answer and stop reading before the last, so write errors are no failure. The
    // writing half stays open until the answer is read, as a client's does.
    let writer = tokio::spawn(async move {
        let chunk = format!("10000\r\n{}\r\n", " ".repeat(0x10000));
        let written = async {
            tx.write_all(head.as_bytes()).await?;
            for _ in 0..17 {
                tx.write_all(chunk.as_bytes()).await?;
            }
            tx.write_all(b"0\r\n\r\n").await
        }
        .await;
        (written, tx)
    });
    let (status, body) = read_answer(&mut rx)
        .await
        .expect("an answer before the connection closes");
    assert!(status.contains(" 413 "), "{status}: {body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["code"], 4, "{body}");
    assert_eq!(body["StatusCode"], 413, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("larger than 1048576 bytes"),
        "{body}"
    );
    let _ = writer.await.unwrap();
}

/// A declared length past the limit is refused at once, in the error shape of the API the
/// request was for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_body_past_the_limit_is_refused_in_its_dialect() {
    let t = TestServer::start(Db::Sqlite).await;
    let big = vec![b' '; 1024 * 1024 + 1];
    let stream = t
        .http
        .post(format!(
            "{}/api/v2/video/call/default/big?api_key={API_KEY}",
            t.base
        ))
        .header("authorization", t.server_token())
        .header("stream-auth-type", "jwt")
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 413);
    let body: serde_json::Value = stream.json().await.unwrap();
    assert_eq!(
        (body["code"].clone(), body["StatusCode"].clone()),
        (4.into(), 413.into()),
        "{body}"
    );
    let kit = t
        .http
        .post(format!(
            "{}/client/v4/accounts/a/realtime/kit/b/recordings/track",
            t.base
        ))
        .bearer_auth(API_SECRET)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(kit.status(), 413);
    let body: serde_json::Value = kit.json().await.unwrap();
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["error"]["code"], 413, "{body}");
}
