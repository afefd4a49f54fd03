//! The auth matrix, permissions from grants, and hostile ids.

use axum::http::StatusCode;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use crate::both_backends;
use crate::common::{API_KEY, API_SECRET, TestServer, assert_envelope, concrete_path, walk};

fn sign(claims: serde_json::Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

both_backends!(unauthenticated_requests_are_refused, |db| async move {
    let t = TestServer::start(db).await;
    t.create_call("a1").await;
    let path = "/api/v2/video/call/default/a1/recordings";
    let now = reel::domain::Timestamp::now().unix_secs();
    let url = |key: &str| format!("{}{path}?api_key={key}", t.base);
    let cases: Vec<(&str, String, Option<String>, &str)> = vec![
        ("no token", url(API_KEY), None, "Authorization"),
        (
            "bad signature",
            url(API_KEY),
            Some(sign(json!({"user_id": "alice"}), "not-the-secret")),
            "not valid",
        ),
        (
            "expired",
            url(API_KEY),
            Some(sign(
                json!({"user_id": "alice", "exp": now - 120}),
                API_SECRET,
            )),
            "expired",
        ),
        (
            "wrong api_key",
            url("other-key"),
            Some(t.server_token()),
            "api_key",
        ),
        (
            "no api_key",
            format!("{}{path}", t.base),
            Some(t.server_token()),
            "api_key",
        ),
        (
            "garbage token",
            url(API_KEY),
            Some("abc.def.ghi".into()),
            "not valid",
        ),
        (
            "unsigned token",
            url(API_KEY),
            Some(format!(
                "{}.",
                jsonwebtoken::encode(
                    &Header::default(),
                    &json!({}),
                    &EncodingKey::from_secret(b"x")
                )
                .unwrap()
                .rsplit_once('.')
                .unwrap()
                .0
            )),
            "not valid",
        ),
    ];
    for (what, url, token, msg) in cases {
        let (s, body) = t.raw("GET", &url, token.as_deref(), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert_envelope(&body, 401, 5, msg);
    }
    // The Python SDK's server token has empty claims; Node's says {"server": true}; both work.
    for token in [
        sign(json!({}), API_SECRET),
        sign(json!({"server": true}), API_SECRET),
    ] {
        let (s, body) = t.raw("GET", &url(API_KEY), Some(&token), None).await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }
});

both_backends!(permissions_come_from_grants, |db| async move {
    let t = TestServer::start(db).await;
    let list = "/api/v2/video/call/default/p1/recordings";
    t.call("POST", "/api/v2/video/call/default/p1",
           Some(json!({"data": {"created_by_id": "alice", "members": [{"user_id": "mia"}, {"user_id": "hank", "role": "host"}]}})))
        .await;

    // A plain user may not list; a member may (default grants); the admin role and the host member may.
    let (s, body) = t
        .call_as(&t.user_token("bob", None), "GET", list, None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_envelope(
        &body,
        403,
        17,
        "User 'bob' with role 'user' is not allowed to perform action ListRecordings",
    );
    for (user, role) in [("mia", None), ("root", Some("admin")), ("hank", None)] {
        let (s, body) = t
            .call_as(&t.user_token(user, role), "GET", list, None)
            .await;
        assert_eq!(s, StatusCode::OK, "{user}: {body}");
        assert_eq!(body["recordings"], json!([]));
    }
    // Starting needs StartRecording: refused with 403 before anything else is looked at...
    let start = "/api/v2/video/call/default/p1/recordings/raw/start";
    let (s, body) = t
        .call_as(&t.user_token("mia", None), "POST", start, None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_envelope(&body, 403, 17, "StartRecording");
    // ... and once granted (only for raw), the user gets past it to the session check.
    let (s, _) = t
        .call(
            "PUT",
            "/api/v2/video/calltypes/default",
            Some(json!({"grants": {"call_member": ["start-raw-record-call", "ListRecordings"]}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = t
        .call_as(&t.user_token("mia", None), "POST", start, None)
        .await;
    assert_envelope(&body, 400, 4, "there is no active session");
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = t
        .call_as(
            &t.user_token("mia", None),
            "POST",
            "/api/v2/video/call/default/p1/recordings/composite/start",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // own_capabilities follow the same grants.
    let (_, got) = t
        .call_as(
            &t.user_token("mia", None),
            "GET",
            "/api/v2/video/call/default/p1",
            None,
        )
        .await;
    let caps = got["own_capabilities"].as_array().unwrap();
    assert!(
        caps.contains(&json!("start-raw-record-call"))
            && !caps.contains(&json!("start-record-call")),
        "{caps:?}"
    );
    let (_, got) = t.call("GET", "/api/v2/video/call/default/p1", None).await;
    assert!(
        got["own_capabilities"]
            .as_array()
            .unwrap()
            .contains(&json!("stop-individual-record-call"))
    );

    // A stored user role counts too.
    t.call(
        "POST",
        "/api/v2/users",
        Some(json!({"users": {"sue": {"id": "sue", "role": "admin"}}})),
    )
    .await;
    let (s, _) = t
        .call_as(&t.user_token("sue", None), "GET", list, None)
        .await;
    assert_eq!(s, StatusCode::OK);

    // A token limited to other calls is refused; server-only operations refuse users.
    let limited = jsonwebtoken::encode(
        &Header::default(),
        &json!({"user_id": "root", "role": "admin", "call_cids": ["default:other"]}),
        &EncodingKey::from_secret(API_SECRET.as_bytes()),
    )
    .unwrap();
    let (s, body) = t.call_as(&limited, "GET", list, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    for (method, path) in [
        ("GET", "/api/v2/video/calltypes"),
        ("PUT", "/api/v2/video/calltypes/default"),
        ("GET", "/api/v2/external_storage"),
    ] {
        let (s, body) = t
            .call_as(
                &t.user_token("root", Some("admin")),
                method,
                path,
                Some(json!({})),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{method} {path}: {body}");
        assert_envelope(&body, 403, 17, "only server-side requests");
    }
});

both_backends!(
    users_cannot_give_themselves_more_than_creating_allows,
    |db| async move {
        let t = TestServer::start(db).await;
        let bob = t.user_token("bob", None);
        let cases = [
            (
                json!({"data": {"members": [{"user_id": "bob", "role": "host"}]}}),
                "UpdateCallMember",
            ),
            (
                json!({"data": {"settings_override": {"raw_recording": {"mode": "auto-on"}}}}),
                "UpdateCallSettings",
            ),
            (
                json!({"data": {"created_by_id": "alice"}}),
                "only create calls as themselves",
            ),
        ];
        for (i, (body, msg)) in cases.into_iter().enumerate() {
            let (s, answer) = t
                .call_as(
                    &bob,
                    "POST",
                    &format!("/api/v2/video/call/default/esc{i}"),
                    Some(body),
                )
                .await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{answer}");
            assert_envelope(&answer, 403, 17, msg);
        }
        // A plain call, with plain members, is fine; bob is its creator but gets no extra role.
        let (s, made) = t
            .call_as(
                &bob,
                "POST",
                "/api/v2/video/call/default/esc",
                Some(json!({"data": {"members": [{"user_id": "bob"}]}})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{made}");
        assert_eq!(made["call"]["created_by"]["id"], "bob");
        let caps = made["own_capabilities"].as_array().unwrap();
        assert!(
            !caps.contains(&json!("start-record-call"))
                && !caps.contains(&json!("update-call-settings")),
            "{caps:?}"
        );
        let (s, _) = t
            .call_as(
                &bob,
                "PATCH",
                "/api/v2/video/call/default/esc",
                Some(json!({"settings_override": {"recording": {"mode": "auto-on"}}})),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        // An admin may do all of it.
        let admin = t.user_token("root", Some("admin"));
        let (s, answer) = t
        .call_as(&admin, "POST", "/api/v2/video/call/default/esc-admin",
                 Some(json!({"data": {"members": [{"user_id": "x", "role": "host"}], "settings_override": {"recording": {"quality": "1080p"}}}})))
        .await;
        assert_eq!(s, StatusCode::OK, "{answer}");
    }
);

both_backends!(hostile_ids_are_refused, |db| async move {
    let t = TestServer::start(db).await;
    let long = "x".repeat(300);
    let ids = [
        "..%2Fx",
        "..%2F..%2Fetc",
        "a%00b",
        long.as_str(),
        "a%2Fb",
        "%C3%A9t%C3%A9",
    ];
    for id in ids {
        for (method, path) in [
            ("POST", format!("/api/v2/video/call/default/{id}")),
            ("GET", format!("/api/v2/video/call/{id}/c1")),
            ("GET", format!("/api/v2/video/call/default/{id}/recordings")),
            (
                "DELETE",
                format!("/api/v2/video/call/default/c1/{id}/recordings/f.mp4"),
            ),
            (
                "DELETE",
                format!("/api/v2/video/call/default/c1/s1/recordings/{id}"),
            ),
            (
                "POST",
                format!("/api/v2/video/call/default/{id}/recordings/raw/start"),
            ),
            ("PUT", format!("/api/v2/external_storage/{id}")),
        ] {
            let (s, body) = t
                .call(method, &path, Some(json!({"data": {"created_by_id": "a"}})))
                .await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{method} {path}: {body}");
            assert_envelope(&body, 400, 4, "invalid");
        }
    }
    // A hostile file name in a delete is refused the same way, and nothing appeared on disk.
    let (s, _) = t
        .call(
            "DELETE",
            "/api/v2/video/call/default/c1/s1/recordings/..",
            None,
        )
        .await;
    assert!(s == StatusCode::BAD_REQUEST || s == StatusCode::NOT_FOUND);
    let mut names: Vec<_> = walk(t.dir.path());
    names.retain(|p| !p.contains("reel.db"));
    assert_eq!(
        names,
        vec!["recordings".to_string(), "recordings/.work".to_string()],
        "only reel's own directories exist"
    );
});

#[tokio::test]
async fn every_secured_route_refuses_missing_malformed_expired_and_forged_tokens() {
    let t = TestServer::start(crate::common::Db::Sqlite).await;
    let doc = t.openapi().await;
    let now = reel::domain::Timestamp::now().unix_secs();
    let tokens = [
        ("no token", None),
        ("a malformed token", Some("abc.def.ghi".to_owned())),
        (
            "a token signed with another secret",
            Some(sign(json!({"user_id": "alice"}), "not-the-secret")),
        ),
        (
            "an expired token",
            Some(sign(
                json!({"user_id": "alice", "exp": now - 120}),
                API_SECRET,
            )),
        ),
    ];
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let Some(security) = op["security"].as_array() else {
                continue;
            };
            let stream = security[0].get("api_key").is_some();
            let url = match stream {
                true => format!("{}{}?api_key={API_KEY}", t.base, concrete_path(path)),
                false => format!("{}{}", t.base, concrete_path(path)),
            };
            for (what, token) in &tokens {
                let mut req = t.http.request(method.to_uppercase().parse().unwrap(), &url);
                if let Some(token) = token {
                    req = match stream {
                        true => req
                            .header("authorization", token)
                            .header("stream-auth-type", "jwt"),
                        false => req.bearer_auth(token),
                    };
                }
                // A body of the kind the operation takes, so that only the credentials are wrong.
                let kind = op["requestBody"]["content"]
                    .as_object()
                    .and_then(|c| c.keys().next().cloned());
                req = match kind.as_deref() {
                    None => req,
                    Some("application/json") => req.json(&json!({})),
                    Some(kind) => req.header("content-type", kind).body("v=0\r\n"),
                };
                let res = req.send().await.unwrap();
                let status = res.status();
                let body = res.text().await.unwrap();
                // A WebRTC session's URL names a session id nobody can guess: one that does not
                // exist is not found, whoever asks.
                let unknown_session =
                    path.contains("/sessions/{session}") && status == StatusCode::NOT_FOUND;
                assert!(
                    status == StatusCode::UNAUTHORIZED || unknown_session,
                    "{method} {path} with {what}: {status} {body}"
                );
                if stream {
                    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
                    assert_envelope(&body, 401, 5, "");
                }
                checked += 1;
            }
        }
    }
    println!("{checked} requests refused");
    assert!(checked >= 200, "{checked}");
}
