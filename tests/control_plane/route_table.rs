//! Table tests over every operation of the server's OpenAPI document, so that a route is
//! covered as soon as it is documented: a user without grants, a body past the limit, hostile
//! names in paths and in bodies, and signed links that were tampered with. Each request gets
//! the documented refusal in its dialect's error shape, and changes nothing: not the store,
//! not the files in or next to the data directory.
//!
//! Requests are written on the wire as they are given: HTTP client libraries resolve `..` and
//! `%2e%2e` segments before sending, which would test the client instead of reel.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use reel::auth::Caller;
use reel::domain::{Cid, FileName, RecordingType, Timestamp};
use reel::recorders::Recorders;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

/// The largest body the API reads: `BODY_LIMIT` in src/api/mod.rs, which its 413 names.
const BODY_LIMIT: usize = 1024 * 1024;
/// The largest SDP offer or ICE fragment the WebRTC routes read: `SDP_LIMIT` in
/// src/api/webrtc.rs.
const SDP_LIMIT: usize = 256 * 1024;

/// The names every path parameter is tried with, as they go in the URL.
fn hostile_path_values() -> Vec<String> {
    let mut v: Vec<String> = ["../x", "..%2Fx", "%2e%2e", "a%00b", "a%0Ab", "a%1Bb"]
        .map(String::from)
        .to_vec();
    v.push("n".repeat(4096));
    v
}

/// The names every string of every request body is tried with.
fn hostile_body_values() -> Vec<String> {
    let mut v: Vec<String> = ["../x", "..%2Fx", "%2e%2e", "a\0b", "a\nb", "a\u{1b}b"]
        .map(String::from)
        .to_vec();
    v.push("n".repeat(4096));
    v
}

/// A minimal offer the WHIP and WHEP routes accept: one Opus audio m-line.
const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
    a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
    a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n\
    a=setup:actpass\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n\
    a=sendonly\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n";

/// A trickle-ICE fragment.
const FRAGMENT: &str = "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n";

// ---------------------------------------------------------------------------------------
// The server, and what must not change.

/// A server whose data directory is `data` in a directory of its own (the `TempDir`), so
/// that a file written next to the data directory shows in [`walk`]ing that one.
async fn nested_server(recorders: Recorders) -> (TempDir, TestServer) {
    let outer = tempfile::tempdir().unwrap();
    let data = outer.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let db = format!("sqlite://{}?mode=rwc", data.join("reel.db").display());
    let t = TestServer::start_with(
        Db::Sqlite,
        |s| {
            s.data_dir = Some(data.clone());
            s.database_url = Some(db.into());
        },
        recorders,
    )
    .await;
    (outer, t)
}

/// The store's rows and the files in and next to the data directory.
#[derive(Debug, PartialEq)]
struct Snapshot {
    rows: BTreeMap<String, Vec<String>>,
    files: Vec<String>,
}

async fn snapshot(outer: &Path) -> Snapshot {
    Snapshot {
        rows: sqlite_rows(&outer.join("data/reel.db")).await,
        files: walk(outer),
    }
}

/// A snapshot once background work (recorders starting) has settled: two in a row agree.
async fn settled(outer: &Path) -> Snapshot {
    let mut last = snapshot(outer).await;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = snapshot(outer).await;
        if now == last {
            return now;
        }
        last = now;
    }
    panic!("the store does not settle")
}

fn assert_unchanged(before: &Snapshot, after: &Snapshot, what: &str) {
    let tables: Vec<_> = before
        .rows
        .iter()
        .filter(|(k, v)| after.rows.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: {v:?} -> {:?}", after.rows.get(k)))
        .collect();
    let added: Vec<_> = after
        .files
        .iter()
        .filter(|f| !before.files.contains(f))
        .collect();
    let removed: Vec<_> = before
        .files
        .iter()
        .filter(|f| !after.files.contains(f))
        .collect();
    assert!(
        tables.is_empty() && added.is_empty() && removed.is_empty(),
        "{what} changed tables {tables:#?}, added files {added:?}, removed files {removed:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Requests on the wire.

struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    chunked: bool,
}

struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The start of the answer, for failure messages.
    fn shown(&self) -> String {
        format!(
            "{} {}",
            self.status,
            self.text().chars().take(300).collect::<String>()
        )
    }
}

/// Sends `req` on a connection of its own, exactly as written, and reads the answer (an
/// event stream, which never ends, as far as it got in 3 s).
async fn send(t: &TestServer, req: Request) -> Answer {
    let conn = TcpStream::connect(t.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let (mut rx, mut tx) = conn.into_split();
    let mut head = format!(
        "{} {} HTTP/1.1\r\nhost: reel\r\nconnection: close\r\n",
        req.method, req.target
    );
    for (k, v) in &req.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if req.chunked {
        head.push_str("transfer-encoding: chunked\r\n\r\n");
    } else {
        head.push_str(&format!("content-length: {}\r\n\r\n", req.body.len()));
    }
    // Written while the answer is read: the server may answer before it has read it all.
    let writer = tokio::spawn(async move {
        tx.write_all(head.as_bytes()).await?;
        if req.chunked {
            for chunk in req.body.chunks(64 * 1024) {
                tx.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .await?;
                tx.write_all(chunk).await?;
                tx.write_all(b"\r\n").await?;
            }
            tx.write_all(b"0\r\n\r\n").await?;
        } else {
            tx.write_all(&req.body).await?;
        }
        Ok::<_, std::io::Error>(tx)
    });
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(3), rx.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
    let _ = writer.await;
    let end = got
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("{} {}: no answer", req.method, req.target));
    let head = String::from_utf8_lossy(&got[..end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_ascii_lowercase())
            .unwrap_or_default()
    };
    let mut body = got[end + 4..].to_vec();
    if header("transfer-encoding") == "chunked" {
        body = dechunk(&body);
    }
    Answer {
        status,
        content_type: header("content-type"),
        body,
    }
}

/// The data of a chunked body, as far as it is complete.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&raw[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 || raw.len() < eol + 2 + size {
            break;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
        raw = &raw[(eol + 4 + size).min(raw.len())..];
    }
    out
}

// ---------------------------------------------------------------------------------------
// The document's operations.

/// One documented operation.
struct Op {
    path: String,
    method: String,
    spec: Value,
}

impl Op {
    fn id(&self) -> &str {
        self.spec["operationId"].as_str().unwrap_or_default()
    }

    fn secured(&self) -> bool {
        self.spec["security"].is_array()
    }

    fn path_params(&self) -> Vec<String> {
        self.spec["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    }

    fn takes_query(&self, name: &str) -> bool {
        self.spec["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["in"] == "query" && p["name"] == name)
    }

    /// The content type of its request body, if it takes one.
    fn body_type(&self) -> Option<String> {
        self.spec["requestBody"]["content"]
            .as_object()
            .and_then(|c| c.keys().next().cloned())
    }

    fn body_schema(&self) -> Option<&Value> {
        self.spec["requestBody"]["content"]["application/json"].get("schema")
    }

    /// The 4xx answers it documents.
    fn documented_4xx(&self) -> Vec<u16> {
        self.spec["responses"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, _)| k.parse().ok())
            .filter(|s| (400..500).contains(s))
            .collect()
    }

    fn dialect(&self) -> Dialect {
        dialect(&self.path)
    }

    /// `target` (a path) as `token` sends it to this operation: with the API key, the
    /// Authorization header or `?token=`, as the operation takes it.
    fn request(&self, target: &str, token: &str, body: Option<(String, Vec<u8>)>) -> Request {
        let mut headers = Vec::new();
        // The query parameters it requires, with plausible values.
        let mut query: Vec<String> = self.spec["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "query" && p["required"] == true)
            .map(|p| match p["name"].as_str().unwrap() {
                "tokenId" => "tokenId=1".to_owned(),
                name => format!("{name}=x1"),
            })
            .collect();
        let security = &self.spec["security"][0];
        if security.get("api_key").is_some() {
            query.push(format!("api_key={API_KEY}"));
            headers.push(("authorization".into(), token.to_owned()));
            headers.push(("stream-auth-type".into(), "jwt".into()));
        } else if security.get("bearer").is_some() {
            headers.push(("authorization".into(), format!("Bearer {token}")));
        } else if self.takes_query("token") {
            query.push(format!("token={token}"));
        }
        let target = match query.is_empty() {
            true => target.to_owned(),
            false => format!("{target}?{}", query.join("&")),
        };
        let body = body.map(|(kind, bytes)| {
            headers.push(("content-type".into(), kind));
            bytes
        });
        Request {
            method: self.method.to_uppercase(),
            target,
            headers,
            body: body.unwrap_or_default(),
            chunked: false,
        }
    }
}

fn operations(doc: &Value) -> Vec<Op> {
    let mut ops = Vec::new();
    for (path, methods) in doc["paths"].as_object().unwrap() {
        for (method, spec) in methods.as_object().unwrap() {
            ops.push(Op {
                path: path.clone(),
                method: method.clone(),
                spec: spec.clone(),
            });
        }
    }
    ops
}

/// Routes the document leaves out (pages, the layout app's files, and watching a broadcast),
/// written here as it would write them.
fn undocumented() -> Vec<Op> {
    let param = |name: &str| json!({"name": name, "in": "path", "required": true});
    let sdp = json!({"content": {"application/sdp": {}}});
    [
        (
            "/layout/{type}/{id}",
            "get",
            json!([param("type"), param("id")]),
            Value::Null,
        ),
        (
            "/layout-app/{file}",
            "get",
            json!([param("file")]),
            Value::Null,
        ),
        (
            "/whep/broadcast/{stream}",
            "post",
            json!([param("stream")]),
            sdp,
        ),
    ]
    .into_iter()
    .map(|(path, method, parameters, body)| Op {
        path: path.into(),
        method: method.into(),
        spec: json!({"operationId": path, "parameters": parameters, "requestBody": body}),
    })
    .collect()
}

/// The API a path belongs to, which says how its errors look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    /// `/api/v2/...`: Stream's envelope.
    Stream,
    /// `/client/v4/...`: `{"success": false, "error": {"code", "message"}}`.
    Kit,
    /// `/api/publish_token...`, `/api/record_files...`: `{"status": "fail", "data": {"message"}}`.
    Broadcast,
    /// WHIP, WHEP, pages, files: plain text.
    Text,
}

fn dialect(path: &str) -> Dialect {
    if path.starts_with("/client/v4/") {
        Dialect::Kit
    } else if path.starts_with("/api/publish_token") || path.starts_with("/api/record_files") {
        Dialect::Broadcast
    } else if path.starts_with("/api/") {
        Dialect::Stream
    } else {
        Dialect::Text
    }
}

/// Asserts that `a` is a refusal with `status` in the error shape of `d`; its message.
fn refusal(d: Dialect, a: &Answer, status: u16, what: &str) -> String {
    assert_eq!(a.status, status, "{what}: {}", a.shown());
    let v = a.json();
    let message = match d {
        Dialect::Stream => {
            let code = match status {
                400 | 413 => 4,
                401 => 5,
                403 => 17,
                404 => 16,
                _ => panic!("{what}: no Stream code for {status}"),
            };
            assert_envelope(&v, status, code, "");
            v["message"].as_str().map(str::to_owned)
        }
        Dialect::Kit => {
            assert_eq!(
                (&v["success"], &v["error"]["code"]),
                (&json!(false), &json!(status)),
                "{what}: {}",
                a.shown()
            );
            v["error"]["message"].as_str().map(str::to_owned)
        }
        Dialect::Broadcast => {
            assert_eq!(v["status"], "fail", "{what}: {}", a.shown());
            v["data"]["message"].as_str().map(str::to_owned)
        }
        Dialect::Text => {
            assert!(
                a.content_type.starts_with("text/plain") && !a.body.is_empty(),
                "{what}: {} {}",
                a.content_type,
                a.shown()
            );
            Some(a.text())
        }
    };
    message.unwrap_or_else(|| panic!("{what}: the refusal says why: {}", a.shown()))
}

// ---------------------------------------------------------------------------------------
// Bodies from the document's schemas.

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => &doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")],
        None => schema,
    }
}

/// A value `schema` accepts: objects with their required properties (and `name` and `id`,
/// which the handlers of bodies shared with operations that take them from the path require),
/// arrays of one item or none. `known` gives the value of a property by its name, when it knows one.
fn example(doc: &Value, schema: &Value, known: &dyn Fn(&str) -> Option<Value>) -> Value {
    let s = resolve(doc, schema);
    if let Some(c) = s.get("const") {
        return c.clone();
    }
    if let Some(e) = s["enum"].as_array() {
        return e[0].clone();
    }
    match s["type"].as_str() {
        Some("object") => {
            let required: Vec<&str> = s["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let mut out = serde_json::Map::new();
            for (name, prop) in s["properties"].as_object().into_iter().flatten() {
                if let Some(v) = known(name) {
                    out.insert(name.clone(), v);
                } else if required.contains(&name.as_str()) || ["name", "id"].contains(&&**name) {
                    out.insert(name.clone(), example(doc, prop, known));
                }
            }
            Value::Object(out)
        }
        // Lists of names (grants) may be empty; lists of objects or ids (streams, record
        // files) get one.
        Some("array") if resolve(doc, &s["items"])["type"] == "string" => json!([]),
        Some("array") => json!([example(doc, &s["items"], known)]),
        Some("integer") => s["minimum"].as_i64().map_or(json!(1), Value::from),
        Some("boolean") => json!(false),
        Some("string") => json!("x1"),
        _ => json!({}),
    }
}

/// The body `op` takes, valid but for what its path names: JSON from its schema, an offer or
/// an ICE fragment.
fn body_of(
    doc: &Value,
    op: &Op,
    known: &dyn Fn(&str) -> Option<Value>,
) -> Option<(String, Vec<u8>)> {
    let kind = op.body_type()?;
    let bytes = match kind.as_str() {
        "application/json" => example(doc, op.body_schema().unwrap(), known).to_string(),
        "application/sdp" => OFFER.to_owned(),
        "application/trickle-ice-sdpfrag" => FRAGMENT.to_owned(),
        other => panic!("{} takes {other}: add a body of that kind", op.id()),
    };
    Some((kind, bytes.into_bytes()))
}

/// A step on the way to a string inside a body.
#[derive(Clone, Debug)]
enum Step {
    Prop(String),
    /// The first item of an array.
    Item,
    /// An entry of a map; as the last step, its key is the string.
    Entry,
}

fn label(field: &[Step]) -> String {
    let mut out = String::new();
    for s in field {
        match s {
            Step::Prop(p) if out.is_empty() => out.push_str(p),
            Step::Prop(p) => out.push_str(&format!(".{p}")),
            Step::Item => out.push_str("[]"),
            Step::Entry => out.push_str("{}"),
        }
    }
    out
}

/// Every string a body of `schema` may hold, except enumerations and free-form objects
/// (`custom`): the way to each, map keys included.
fn string_fields(doc: &Value, schema: &Value, at: Vec<Step>, out: &mut Vec<Vec<Step>>) {
    let s = resolve(doc, schema);
    if s.get("const").is_some() || s.get("enum").is_some() {
        return;
    }
    let with = |step: Step| {
        let mut v = at.clone();
        v.push(step);
        v
    };
    match s["type"].as_str() {
        Some("object") => {
            for (name, prop) in s["properties"].as_object().into_iter().flatten() {
                string_fields(doc, prop, with(Step::Prop(name.clone())), out);
            }
            if s["additionalProperties"].is_object() {
                out.push(with(Step::Entry));
                string_fields(doc, &s["additionalProperties"], with(Step::Entry), out);
            }
        }
        Some("array") => string_fields(doc, &s["items"], with(Step::Item), out),
        Some("string") => out.push(at),
        _ => {}
    }
}

/// `at` (a value of `schema`) with `v` put at `field`, and what lies on the way made as
/// [`example`] makes it.
fn put(
    doc: &Value,
    schema: &Value,
    at: &mut Value,
    field: &[Step],
    v: &str,
    known: &dyn Fn(&str) -> Option<Value>,
) {
    let s = resolve(doc, schema);
    match field {
        [] => *at = json!(v),
        [Step::Entry] => {
            let mut map = serde_json::Map::new();
            map.insert(
                v.to_owned(),
                example(doc, &s["additionalProperties"], known),
            );
            *at = Value::Object(map);
        }
        [Step::Entry, rest @ ..] => {
            let inner = &s["additionalProperties"];
            *at = json!({"k1": example(doc, inner, known)});
            put(doc, inner, &mut at["k1"], rest, v, known);
        }
        [Step::Item, rest @ ..] => {
            *at = json!([example(doc, &s["items"], known)]);
            put(doc, &s["items"], &mut at[0], rest, v, known);
        }
        [Step::Prop(p), rest @ ..] => {
            let inner = &s["properties"][p];
            if !at.is_object() {
                *at = json!({});
            }
            let slot = at
                .as_object_mut()
                .unwrap()
                .entry(p.clone())
                .or_insert_with(|| example(doc, inner, known));
            put(doc, inner, slot, rest, v, known);
        }
    }
}

// ---------------------------------------------------------------------------------------
// 1. A user without grants.

/// Secured operations a user without any grant still gets past refusal with, and what they
/// answer instead of 403.
const OPEN_TO_USERS: &[(&str, u16, &str)] = &[
    // A WHIP or WHEP session's URL is a capability of its own (an id nobody can guess),
    // checked against the owner's token: an unknown one is not found, whoever asks.
    ("PatchWhipSession", 404, "no session"),
    ("DeleteWhipSession", 404, "no session"),
    ("PatchWhepSession", 404, "no session"),
    ("DeleteWhepSession", 404, "no session"),
    ("PlayerSlots", 404, "no session"),
    // Publishing a broadcast takes a publish token, which no grant gives: a user's token is
    // not one.
    ("PublishBroadcast", 401, ""),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_a_user_without_grants_and_changes_nothing() {
    let (outer, t) = nested_server(bytes_recorders(1000)).await;
    let doc = t.openapi().await;
    // Two ways to have no grant: a role no grant names, in a call of the default type; and a
    // member of a call whose type grants nothing to any role. The calls exist, each with a
    // recording running and a publish token around, so that every operation gets as far as
    // its permission check.
    let (s, body) = t
        .call(
            "POST",
            "/api/v2/video/calltypes",
            Some(json!({"name": "locked", "grants": {}})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let mut recordings = Vec::new();
    for (call_type, members) in [
        ("default", json!([])),
        ("locked", json!([{"user_id": "mia"}])),
    ] {
        let (s, body) = t
            .call(
                "POST",
                &format!("/api/v2/video/call/{call_type}/x1"),
                Some(json!({"data": {"created_by_id": "alice", "members": members}})),
            )
            .await;
        assert_eq!(s, 200, "{body}");
        let cid = Cid::parse(&format!("{call_type}:x1")).unwrap();
        let services = &t.server().services;
        services.start_session(&cid).await.unwrap();
        let rec = services
            .start_recording(&Caller::Server, &cid, RecordingType::Raw, None)
            .await
            .unwrap();
        recordings.push(rec.id.to_string());
    }
    let (s, body) = t
        .raw(
            "POST",
            &format!("{}/api/publish_token", t.base),
            Some(&format!("Bearer {API_SECRET}")),
            Some(json!({"label": "l", "streams": [{"streamName": "x1"}]})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let callers = [
        (
            "a user whose role no grant names",
            t.user_token("eve", Some("nobody")),
            "default",
            "x1",
        ),
        (
            "a member of a call whose type grants nothing",
            t.user_token("mia", None),
            "locked",
            "locked:x1",
        ),
    ];
    let before = settled(outer.path()).await;

    let mut refused = 0;
    for (i, (who, token, call_type, meeting)) in callers.into_iter().enumerate() {
        let known = |name: &str| match name {
            "meeting_id" => Some(json!(meeting)),
            _ => None,
        };
        for op in operations(&doc).iter().filter(|op| op.secured()) {
            let target = concrete_path_with(
                &op.path,
                &[
                    ("type", call_type),
                    ("meeting_id", meeting),
                    ("recording_id", recordings[i].as_str()),
                    ("name", call_type),
                ],
            );
            let what = format!("{} {} ({}) as {who}", op.method, target, op.id());
            let body = body_of(&doc, op, &known);
            let a = send(&t, op.request(&target, &token, body)).await;
            match OPEN_TO_USERS.iter().find(|(id, _, _)| *id == op.id()) {
                Some((_, status, says)) => {
                    let message = refusal(op.dialect(), &a, *status, &what);
                    assert!(message.contains(says), "{what}: {message}");
                }
                None => {
                    let message = refusal(op.dialect(), &a, 403, &what);
                    assert!(!message.is_empty(), "{what}");
                    refused += 1;
                }
            }
        }
    }
    // Every operation the list names exists: a renamed one is not silently let through.
    let ids: Vec<String> = operations(&doc).iter().map(|o| o.id().to_owned()).collect();
    for (id, _, _) in OPEN_TO_USERS {
        assert!(ids.iter().any(|i| i == id), "{id} is documented");
    }
    assert_unchanged(
        &before,
        &settled(outer.path()).await,
        "requests refused for lack of grants",
    );
    println!("{refused} requests refused with 403");
    assert!(refused >= 2 * 40, "{refused}");
}

// ---------------------------------------------------------------------------------------
// 2. Bodies past the limit.

/// Asserts that `a` is the 413 of a body past `limit` in the shape of `d`.
fn assert_too_large(d: Dialect, a: &Answer, limit: usize, what: &str) {
    let message = refusal(d, a, 413, what);
    if limit == BODY_LIMIT {
        assert!(
            message.contains(&format!("larger than {BODY_LIMIT} bytes")),
            "{what}: {message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_a_body_past_the_limit_in_its_dialect_and_creates_nothing() {
    let (outer, t) = nested_server(bytes_recorders(1000)).await;
    let doc = t.openapi().await;
    let before = settled(outer.path()).await;
    let token = t.server_token();
    let mut refused = 0;
    for op in operations(&doc).iter().chain(&undocumented()) {
        // The server's own credentials and a body that would be accepted but for its trailing
        // blanks: only the size is wrong. Operations without a body get blanks alone.
        let target = concrete_path(&op.path);
        let (kind, mut bytes) =
            body_of(&doc, op, &|_| None).unwrap_or_else(|| ("application/json".into(), Vec::new()));
        let mut limits = vec![BODY_LIMIT];
        if matches!(
            kind.as_str(),
            "application/sdp" | "application/trickle-ice-sdpfrag"
        ) {
            limits.push(SDP_LIMIT);
        }
        for limit in limits {
            bytes.resize(limit + 1, b' ');
            for chunked in [false, true] {
                let mut req = op.request(&target, &token, Some((kind.clone(), bytes.clone())));
                req.chunked = chunked;
                let what = format!(
                    "{} {target} ({}) with {} bytes{}",
                    op.method,
                    op.id(),
                    limit + 1,
                    if chunked { ", chunked" } else { "" }
                );
                let a = send(&t, req).await;
                assert_too_large(op.dialect(), &a, limit, &what);
                refused += 1;
            }
        }
    }
    assert_unchanged(
        &before,
        &settled(outer.path()).await,
        "bodies past the limit",
    );
    println!("{refused} requests refused with 413");
    assert!(refused >= 2 * 50, "{refused}");
}

// ---------------------------------------------------------------------------------------
// 3. Hostile names in paths and bodies.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_path_parameter_refuses_traversal_and_control_characters_and_writes_no_file() {
    let (outer, t) = nested_server(bytes_recorders(1000)).await;
    let doc = t.openapi().await;
    t.create_call("x1").await;
    let before = settled(outer.path()).await;
    let token = t.server_token();
    let mut refused = 0;
    for op in operations(&doc).iter().chain(&undocumented()) {
        for param in op.path_params() {
            for value in hostile_path_values() {
                let target = concrete_path_with(&op.path, &[(param.as_str(), value.as_str())]);
                let shown: String = target.chars().take(120).collect();
                let what = format!("{} {shown} ({}, {param})", op.method, op.id());
                let body = body_of(&doc, op, &|_| None);
                let a = send(&t, op.request(&target, &token, body)).await;
                // A name is refused as invalid (400) or names nothing there is (404); a link
                // to a file is refused as unsigned (403), as its operation documents.
                let mut allowed = vec![400, 404];
                allowed.extend(op.documented_4xx());
                assert!(allowed.contains(&a.status), "{what}: {}", a.shown());
                refusal(op.dialect(), &a, a.status, &what);
                refused += 1;
            }
        }
    }
    assert_unchanged(&before, &settled(outer.path()).await, "hostile path names");
    println!("{refused} requests with hostile path names refused");
    assert!(refused >= 7 * 60, "{refused}");
}

/// Strings in bodies that reel takes as data, not as names: why each never reaches a file
/// or object name. Any other string that accepts `../x` or a control character fails the
/// test, so that a new field is looked at.
const ACCEPTED_AS_DATA: &[(&str, &str, &str)] = &[
    // User ids are any printable text (they come from the application's tokens), and are
    // made safe wherever they become part of a file name: see user_ids_never_reach_a_path.
    ("GetOrCreateCall", "data.created_by_id", "user id"),
    ("GetOrCreateCall", "data.members[].user_id", "user id"),
    ("VideoPin", "user_id", "user id"),
    ("VideoUnpin", "user_id", "user id"),
    ("UpdateUsers", "users{}.id", "user id"),
    ("KitStartTrackRecording", "user_ids[]", "user id"),
    // The key of a user in the request is not used: the user's `id` is.
    ("UpdateUsers", "users{}", "ignored"),
    // Display data of users, calls and tokens, never part of a name.
    ("UpdateUsers", "users{}.name", "display data"),
    ("UpdateUsers", "users{}.image", "display data"),
    ("GetOrCreateCall", "data.team", "display data"),
    ("CreatePublishToken", "label", "display data"),
    ("UpdatePublishToken", "label", "display data"),
    // Credentials and regions go into signed S3 requests, never into keys.
    ("CreateExternalStorage", "aws_s3.s3_region", "credential"),
    ("CreateExternalStorage", "aws_s3.s3_api_key", "credential"),
    ("CreateExternalStorage", "aws_s3.s3_secret", "credential"),
    ("UpdateExternalStorage", "aws_s3.s3_region", "credential"),
    ("UpdateExternalStorage", "aws_s3.s3_api_key", "credential"),
    ("UpdateExternalStorage", "aws_s3.s3_secret", "credential"),
    ("KitStartRecording", "storage_config.region", "credential"),
    (
        "KitStartRecording",
        "storage_config.access_key",
        "credential",
    ),
    ("KitStartRecording", "storage_config.secret", "credential"),
    // The first part of recorded files' names, made safe by names::file_part: see
    // file_name_prefixes_never_reach_a_path.
    ("KitStartRecording", "file_name_prefix", "file name prefix"),
    (
        "KitStartTrackRecording",
        "layers{}.file_name_prefix",
        "file name prefix",
    ),
    // Rules to take out of a token are compared with its rules, and never stored: one that
    // matches none takes nothing out.
    (
        "UpdatePublishToken",
        "removeTokenStreams[].streamName",
        "ignored",
    ),
    // A layer's name groups its files in listings; file names take the prefix alone.
    ("KitStartTrackRecording", "layers{}", "display data"),
];

/// A valid value for the string at `field`: unique, so that what it creates does not
/// collide with what an earlier request created.
fn benign(field: &str, n: usize) -> String {
    let last = field.rsplit(['.', '[', '{']).next().unwrap_or(field);
    match field {
        f if f.ends_with("grants{}[]") => "ListRecordings".into(),
        _ => match last {
            "external_storage" | "recording_external_storage" => "st1".into(),
            // The call made for the request.
            "meeting_id" => format!("c{n}"),
            "role" => "admin".into(),
            "s3_custom_endpoint_url" | "host" => format!("http://127.0.0.1:9/v{n}"),
            "expiresOn" => "2099-01-01T00:00:00Z".into(),
            "url" | "external_css_url" | "external_app_url" => {
                format!("http://127.0.0.1:9/v{n}.png")
            }
            _ => format!("v{n}"),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_in_request_bodies_are_refused_or_never_reach_a_path() {
    let (outer, t) = nested_server(bytes_recorders(1000)).await;
    let doc = t.openapi().await;
    // An external storage and a call type to refer to and change, and a publish token.
    let storage = json!({"name": "st1", "storage_type": "s3", "bucket": "b1",
                         "aws_s3": {"s3_region": "us-east-1", "s3_api_key": "k", "s3_secret": "s",
                                    "s3_custom_endpoint_url": "http://127.0.0.1:9"}});
    let (s, body) = t
        .call("POST", "/api/v2/external_storage", Some(storage))
        .await;
    assert_eq!(s, 200, "{body}");
    let (s, body) = t
        .call(
            "POST",
            "/api/v2/video/calltypes",
            Some(json!({"name": "ct1"})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let (s, body) = t
        .raw(
            "POST",
            &format!("{}/api/publish_token", t.base),
            Some(&format!("Bearer {API_SECRET}")),
            Some(json!({"label": "l", "streams": [{"streamName": "s1"}]})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let files_before = walk(outer.path());
    let token = t.server_token();

    let mut n = 0;
    let mut accepted: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut refused = 0;
    for op in operations(&doc) {
        let Some(schema) = op.body_schema() else {
            continue;
        };
        let mut fields = Vec::new();
        string_fields(&doc, schema, Vec::new(), &mut fields);
        for field in fields {
            let field_label = label(&field);
            let mut values = vec![None];
            values.extend(hostile_body_values().into_iter().map(Some));
            for value in values {
                n += 1;
                // A call of its own for each request, with a session, to start recordings in.
                let call = format!("c{n}");
                if op.id() != "GetOrCreateCall" {
                    let cid = t.create_call(&call).await;
                    t.server().services.start_session(&cid).await.unwrap();
                }
                let name = if op.path.contains("external_storage") {
                    "st1"
                } else {
                    "ct1"
                };
                let target = concrete_path_with(
                    &op.path,
                    &[("id", call.as_str()), ("name", name), ("tokenId", "1")],
                );
                let known = |name: &str| match name {
                    "meeting_id" => Some(json!(call)),
                    "created_by_id" => Some(json!("alice")),
                    "streamName" => Some(json!(format!("s{n}"))),
                    _ => None,
                };
                let mut body = example(&doc, schema, &known);
                let v = value.clone().unwrap_or_else(|| benign(&field_label, n));
                // What a request creates gets a name of its own.
                if field_label != "name" {
                    match op.id() {
                        "CreateExternalStorage" => body["name"] = json!(format!("st{n}")),
                        "CreateCallType" => body["name"] = json!(format!("ct{n}")),
                        _ => {}
                    }
                }
                put(&doc, schema, &mut body, &field, &v, &known);
                let what = format!(
                    "{} {target} ({}) with {field_label} = {:?}",
                    op.method,
                    op.id(),
                    v.chars().take(40).collect::<String>()
                );
                let req = op.request(
                    &target,
                    &token,
                    Some(("application/json".into(), body.to_string().into_bytes())),
                );
                let a = send(&t, req).await;
                match (&value, a.status) {
                    // The same body with a valid value is accepted: the refusals that follow
                    // are the value's.
                    (None, status) => assert!(status < 300, "{what}: {}", a.shown()),
                    (Some(_), 400) => {
                        refusal(op.dialect(), &a, 400, &what);
                        refused += 1;
                    }
                    (Some(v), status) if status < 300 => {
                        accepted
                            .entry((op.id().to_owned(), field_label.clone()))
                            .or_default()
                            .push(v.clone());
                    }
                    (Some(_), _) => panic!("{what}: {}", a.shown()),
                }
            }
        }
    }
    let unlisted: Vec<String> = accepted
        .iter()
        .filter(|((op, field), _)| {
            !ACCEPTED_AS_DATA
                .iter()
                .any(|(o, f, _)| o == op && f == field)
        })
        .map(|((op, field), values)| {
            let shown: Vec<String> = values
                .iter()
                .map(|v| v.chars().take(12).collect())
                .collect();
            format!("{op} {field} = {shown:?}")
        })
        .collect();
    assert!(
        unlisted.is_empty(),
        "these take hostile names without refusing them: refuse them with 400, or show that \
         they never reach a file or object name and list them in ACCEPTED_AS_DATA: {unlisted:#?}"
    );
    // And the list names only fields that take hostile names (a field now refused leaves it).
    for (op, field, _) in ACCEPTED_AS_DATA {
        assert!(
            accepted.contains_key(&(op.to_string(), field.to_string())),
            "{op} {field} refuses every hostile name now: take it out of ACCEPTED_AS_DATA"
        );
    }
    // Nothing appeared outside the data directory, and nothing inside has a hostile name.
    let hostile = |f: &str| {
        !f.starts_with("data")
            || f.split('/').any(|part| {
                part == "x"
                    || part == ".."
                    || part.contains('%')
                    || part.chars().any(char::is_control)
            })
    };
    let new: Vec<_> = walk(outer.path())
        .into_iter()
        .filter(|f| !files_before.contains(f) && hostile(f))
        .collect();
    assert!(new.is_empty(), "{new:?}");
    let kinds: BTreeMap<&str, usize> =
        accepted.keys().fold(BTreeMap::new(), |mut m, (op, field)| {
            let kind = ACCEPTED_AS_DATA
                .iter()
                .find(|(o, f, _)| o == op && f == field)
                .map_or("?", |(_, _, k)| *k);
            *m.entry(kind).or_default() += 1;
            m
        });
    println!(
        "{refused} hostile body values refused with 400; fields taking them as data: {kinds:?}"
    );
    for (op, field) in accepted.keys() {
        println!("  accepted as data: {op} {field}");
    }
    assert!(refused >= 7 * 15, "{refused}");
}

/// User ids that bodies take as data become safe path components and file name parts.
#[test]
fn user_ids_never_reach_a_path() {
    use reel::domain::names::{component, individual_file};
    for v in hostile_body_values()
        .iter()
        .map(String::as_str)
        .chain(["..", ".", "/", "a/../../b"])
    {
        let dir = component(v, 64);
        assert!(
            !dir.contains(['/', '\\'])
                && !dir.starts_with('.')
                && !dir.chars().any(char::is_control),
            "{v:?} -> {dir:?}"
        );
        let file = individual_file(("default", "c1"), v, "s1", false, "audio_only", 0);
        assert!(FileName::parse(&file).is_ok(), "{v:?} -> {file:?}");
    }
}

/// File name prefixes that bodies take as data become safe parts of file names.
#[test]
fn file_name_prefixes_never_reach_a_path() {
    use reel::domain::names::{composite_file, file_part};
    for v in hostile_body_values()
        .iter()
        .map(String::as_str)
        .chain(["..", ".", "/", "a/../../b"])
    {
        let file = composite_file(v, ("default", "c1"), false, 0, "mp4");
        assert!(FileName::parse(&file).is_ok(), "{v:?} -> {file:?}");
        let part = file_part(v, 64);
        assert!(
            FileName::parse(format!("{part}_u_p.webm")).is_ok(),
            "{v:?} -> {part:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 4. Signed links.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_links_serve_their_file_and_refuse_tampered_expired_and_escaping_ones() {
    let (outer, t) = nested_server(Recorders::default()).await;
    let data = outer.path().join("data");
    // A file as reel stores one, another beside it, a work file, and secrets outside the
    // recordings directory: the data directory's database and a file next to it.
    let rec = data.join("recordings/default/l1/s1");
    std::fs::create_dir_all(&rec).unwrap();
    let file = recorded_bytes(100_000);
    std::fs::write(rec.join("f.bin"), &file).unwrap();
    std::fs::write(rec.join("other.bin"), b"other file").unwrap();
    std::fs::create_dir_all(data.join("recordings/.work/w1")).unwrap();
    std::fs::write(
        data.join("recordings/.work/w1/part.bin"),
        b"work in progress",
    )
    .unwrap();
    std::fs::write(data.join("secret.txt"), b"secret next to the recordings").unwrap();
    let secrets: Vec<Vec<u8>> = vec![
        file.clone(),
        b"other file".to_vec(),
        b"work in progress".to_vec(),
        b"secret next to the recordings".to_vec(),
        std::fs::read(data.join("reel.db")).unwrap()[..16].to_vec(),
    ];

    // The server's signer (links are /files/<key>?expires=&signature= over the raw path).
    let signer = t.keys().url_signer();
    let now = Timestamp::now().unix_secs();
    let link = |key: &str, expires: i64| {
        let path = format!("/files/{key}");
        format!(
            "{path}?expires={expires}&signature={}",
            signer.sign(&path, expires)
        )
    };
    let get = |target: String| Request {
        method: "GET".into(),
        target,
        headers: Vec::new(),
        body: Vec::new(),
        chunked: false,
    };
    let key = "default/l1/s1/f.bin";
    let good = link(key, now + 600);
    let a = send(&t, get(good.clone())).await;
    assert_eq!(a.status, 200, "{}", a.shown());
    assert_eq!(a.body, file);
    let mut ranged = get(good.clone());
    ranged.headers.push(("range".into(), "bytes=10-19".into()));
    let a = send(&t, ranged).await;
    assert_eq!((a.status, &a.body[..]), (206, &file[10..20]));

    let (path, query) = good.split_once('?').unwrap();
    let signature = query.split("signature=").nth(1).unwrap();
    let flipped = {
        let mut s: Vec<char> = signature.chars().collect();
        s[7] = if s[7] == '0' { '1' } else { '0' };
        s.into_iter().collect::<String>()
    };
    let expires = now + 600;
    let with_key = |k: &str| format!("/files/{k}?{query}");
    let bad_signature = "the link signature is not valid";
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "one signature digit changed",
            format!("{path}?expires={expires}&signature={flipped}"),
            403,
            bad_signature,
        ),
        (
            "the signature cut short",
            format!("{path}?expires={expires}&signature={}", &signature[..32]),
            403,
            bad_signature,
        ),
        (
            "a signature that is not hex",
            format!("{path}?expires={expires}&signature=zz"),
            403,
            bad_signature,
        ),
        (
            "no signature",
            format!("{path}?expires={expires}"),
            403,
            "not signed",
        ),
        (
            "no expiry",
            format!("{path}?signature={signature}"),
            403,
            "not signed",
        ),
        ("nothing", path.to_owned(), 403, "not signed"),
        (
            "the expiry one second later",
            format!("{path}?expires={}&signature={signature}", expires + 1),
            403,
            bad_signature,
        ),
        (
            "the expiry far later",
            format!("{path}?expires=99999999999&signature={signature}"),
            403,
            bad_signature,
        ),
        (
            "the key of another file",
            with_key("default/l1/s1/other.bin"),
            403,
            bad_signature,
        ),
        (
            "the key of the parent directory",
            with_key("default/l1/s1"),
            403,
            bad_signature,
        ),
        (
            "the key out of the store",
            with_key("../secret.txt"),
            403,
            bad_signature,
        ),
        (
            "the key out of the store, encoded",
            with_key("%2e%2e/secret.txt"),
            403,
            bad_signature,
        ),
        (
            "the key out of the store, deeper",
            with_key("default/l1/s1/../../../../secret.txt"),
            403,
            bad_signature,
        ),
        (
            "the key of the database",
            with_key("../reel.db"),
            403,
            bad_signature,
        ),
        ("an expired link", link(key, now - 1), 403, "expired"),
        ("an expired link, long ago", link(key, 1), 403, "expired"),
        // Signed right, for keys no link of reel's names: what a leaked secret would let
        // one sign still stays inside the recordings directory.
        (
            "signed out of the store",
            link("../secret.txt", expires),
            404,
            "",
        ),
        (
            "signed out of the store, encoded",
            link("%2e%2e/secret.txt", expires),
            404,
            "",
        ),
        (
            "signed out of the store, encoded slash",
            link("..%2Fsecret.txt", expires),
            404,
            "",
        ),
        (
            "signed out of the store, deeper",
            link("default/../../secret.txt", expires),
            404,
            "",
        ),
        (
            "signed for the database",
            link("../reel.db", expires),
            404,
            "",
        ),
        (
            "signed for an absolute path",
            link("/etc/passwd", expires),
            404,
            "",
        ),
        (
            "signed for a work file",
            link(".work/w1/part.bin", expires),
            404,
            "",
        ),
        (
            "signed for a directory",
            link("default/l1/s1", expires),
            404,
            "",
        ),
        (
            "signed for a missing file",
            link("default/l1/s1/nope.bin", expires),
            404,
            "",
        ),
        (
            "signed with a control character",
            link("default/l1/s1/f.bin%00", expires),
            404,
            "",
        ),
        (
            "signed with an escape",
            link("default/l1/s1/a%1Bb", expires),
            404,
            "",
        ),
    ];
    let mut refused = 0;
    for (what, target, status, says) in cases {
        let a = send(&t, get(target.clone())).await;
        let what = format!("{what}: GET {target}");
        // A refused link says why; a file that is not there is just not found (the file
        // server's 404 has no body).
        assert_eq!(a.status, status, "{what}: {}", a.shown());
        assert!(a.text().contains(says), "{what}: {}", a.shown());
        for secret in &secrets {
            assert!(
                !a.body.windows(secret.len()).any(|w| w == &secret[..]),
                "{what}: the answer holds a file's bytes"
            );
        }
        refused += 1;
    }
    println!("1 link served, {refused} refused");
}
