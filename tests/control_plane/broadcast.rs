//! The broadcast dialect's publish tokens: Bearer auth, the envelope, create, list, get,
//! update and delete, and the refusals of bad input.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::common::*;

/// Calls the dialect with `Authorization: Bearer <token>` (none when `token` is `None`).
async fn api(
    t: &TestServer,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let bearer = token.map(|tk| format!("Bearer {tk}"));
    let url = format!("{}/api/publish_token{path}", t.base);
    t.raw(method, &url, bearer.as_deref(), body).await
}

/// Calls the dialect with the API secret; the answer must have `status`, and its data is
/// given.
async fn data(t: &TestServer, method: &str, path: &str, body: Option<Value>) -> Value {
    let (s, body) = api(t, Some(API_SECRET), method, path, body).await;
    assert_eq!(s, StatusCode::OK, "{method} {path}: {body}");
    assert_eq!(body["status"], "success", "{body}");
    body["data"].clone()
}

fn assert_fail(got: (StatusCode, Value), status: StatusCode, contains: &str) {
    let (s, body) = got;
    assert_eq!(s, status, "{body}");
    assert_eq!(body["status"], "fail", "{body}");
    let m = body["data"]["message"].as_str().unwrap_or_default();
    assert!(m.contains(contains), "{m:?} does not contain {contains:?}");
}

both_backends!(publish_tokens_are_managed, |db| async move {
    let mut t = TestServer::start(db).await;

    // Tokens: none, a wrong one, a user's; the API secret and a signed server token work.
    assert_fail(
        api(&t, None, "GET", "/list", None).await,
        StatusCode::UNAUTHORIZED,
        "token is missing",
    );
    assert_fail(
        api(&t, Some("wrong"), "GET", "/list", None).await,
        StatusCode::UNAUTHORIZED,
        "not valid",
    );
    let alice = t.user_token("alice", Some("admin"));
    assert_fail(
        api(&t, Some(&alice), "GET", "/list", None).await,
        StatusCode::FORBIDDEN,
        "only server-side requests",
    );
    let (s, body) = api(&t, Some(&t.server_token()), "GET", "/list", None).await;
    assert_eq!(
        (s, body),
        (StatusCode::OK, json!({"status": "success", "data": []}))
    );

    // Made with the hosted service's defaults: multisource, not recorded, never expiring.
    let news = data(
        &t,
        "POST",
        "",
        Some(json!({"label": "News desk", "streams": [{"streamName": "news"}]})),
    )
    .await;
    let id = news["id"].as_i64().expect("an integer id");
    let value = news["token"].as_str().unwrap().to_owned();
    assert_eq!(value.len(), 64);
    assert!(value.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(news["label"], "News desk");
    assert_eq!(
        news["streams"],
        json!([{"streamName": "news", "isRegex": false}])
    );
    assert_eq!(
        (&news["record"], &news["multisource"], &news["isActive"]),
        (&json!(false), &json!(true), &json!(true))
    );
    assert_eq!(news["expiresOn"], Value::Null);
    assert!(news["addedOn"].as_str().unwrap().ends_with('Z'), "{news}");

    // With every setting, through the path with a trailing slash the Node client uses.
    let sport = data(
        &t,
        "POST",
        "/",
        Some(
            json!({"label": "Sport", "streams": [{"streamName": "sport-[0-9]+", "isRegex": true}],
                    "record": true, "multisource": false, "enableThumbnails": true,
                    "subscribeRequiresAuth": true, "expires": 3600, "allowedOrigins": []}),
        ),
    )
    .await;
    assert_eq!(
        (&sport["record"], &sport["multisource"]),
        (&json!(true), &json!(false))
    );
    assert_eq!(
        (&sport["enableThumbnails"], &sport["subscribeRequiresAuth"]),
        (&json!(true), &json!(true))
    );
    let expires = reel::domain::Timestamp::parse_rfc3339(sport["expiresOn"].as_str().unwrap())
        .expect("an RFC 3339 expiry");
    let added = reel::domain::Timestamp::parse_rfc3339(sport["addedOn"].as_str().unwrap()).unwrap();
    assert_eq!(expires.since(added).as_secs(), 3600);
    assert_ne!(sport["token"], news["token"]);

    // Bad input: each refused with a message that says why, and nothing made.
    for (body, says) in [
        (json!({"label": "x", "streams": []}), "streams must list"),
        (
            json!({"label": "x", "streams": [{"streamName": "../x"}]}),
            "stream name",
        ),
        (
            json!({"label": "x", "streams": [{"streamName": "a\u{1}b"}]}),
            "stream name",
        ),
        (
            json!({"label": "x", "streams": [{"streamName": "x".repeat(4096)}]}),
            "too long",
        ),
        (
            json!({"label": "x", "streams": [{"streamName": "(", "isRegex": true}]}),
            "regular expression",
        ),
        (
            json!({"label": "", "streams": [{"streamName": "a"}]}),
            "label",
        ),
        (
            json!({"label": "a\u{7}", "streams": [{"streamName": "a"}]}),
            "control characters",
        ),
        (json!({"streams": [{"streamName": "a"}]}), "label"),
        (
            json!({"label": "x", "streams": [{"streamName": "a"}], "allowedOrigins": ["*.a.com"]}),
            "allowedOrigins",
        ),
        (
            json!({"label": "x", "streams": [{"streamName": "a"}], "expires": 5, "expiresOn": "2030-01-01T00:00:00Z"}),
            "not both",
        ),
        (
            json!({"label": "x", "streams": [{"streamName": "a"}], "expiresOn": "soon"}),
            "RFC 3339",
        ),
        (json!([1, 2]), "invalid type"),
    ] {
        assert_fail(
            api(&t, Some(API_SECRET), "POST", "", Some(body)).await,
            StatusCode::BAD_REQUEST,
            says,
        );
    }
    let url = format!("{}/api/publish_token", t.base);
    let res = reqwest::Client::new()
        .post(&url)
        .bearer_auth(API_SECRET)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::BAD_REQUEST);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "fail");

    // Listed by label or by age, a page at a time.
    for label in ["c", "a", "b"] {
        data(
            &t,
            "POST",
            "",
            Some(json!({"label": label, "streams": [{"streamName": "s"}]})),
        )
        .await;
    }
    let labels = |v: Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|t| t["label"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = data(&t, "GET", "/list?page=1&itemsOnPage=100", None).await;
    assert_eq!(labels(all), ["News desk", "Sport", "c", "a", "b"]);
    let by_name = data(&t, "GET", "/list?sortBy=Name&itemsOnPage=2&page=2", None).await;
    assert_eq!(labels(by_name), ["c", "News desk"]);
    let newest = data(&t, "GET", "/list?isDescending=true&itemsOnPage=1", None).await;
    assert_eq!(labels(newest), ["b"]);
    assert_eq!(data(&t, "GET", "/list?page=9", None).await, json!([]));
    for bad in ["itemsOnPage=0", "itemsOnPage=101", "sortBy=Size", "page=x"] {
        let (s, body) = api(&t, Some(API_SECRET), "GET", &format!("/list?{bad}"), None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }

    // Read one; unknown and malformed ids are not found.
    assert_eq!(data(&t, "GET", &format!("/{id}"), None).await, news);
    for missing in ["/999999", "/abc", "/..%2Fx"] {
        assert_fail(
            api(&t, Some(API_SECRET), "GET", missing, None).await,
            StatusCode::NOT_FOUND,
            "no publish token",
        );
    }

    // Updated: recording on, a stream added and one removed, a fresh value.
    let path = format!("/{id}");
    let changed = data(
        &t,
        "PUT",
        &path,
        Some(
            json!({"record": true, "label": "Newsroom", "refreshToken": true,
                    "addTokenStreams": [{"streamName": "weather"}]}),
        ),
    )
    .await;
    assert_eq!(changed["record"], true);
    assert_eq!(changed["label"], "Newsroom");
    assert_ne!(changed["token"], news["token"]);
    assert_eq!(
        changed["streams"],
        json!([{"streamName": "news", "isRegex": false}, {"streamName": "weather", "isRegex": false}])
    );
    let changed = data(
        &t,
        "PUT",
        &path,
        Some(json!({"removeTokenStreams": [{"streamName": "news"}], "isActive": false})),
    )
    .await;
    assert_eq!(
        changed["streams"],
        json!([{"streamName": "weather", "isRegex": false}])
    );
    assert_eq!(changed["isActive"], false);
    // Removing the last stream is refused, and the label sent with it is not taken.
    assert_fail(
        api(
            &t,
            Some(API_SECRET),
            "PUT",
            &path,
            Some(json!({"label": "gone", "removeTokenStreams": [{"streamName": "weather"}]})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "streams must list",
    );
    assert_fail(
        api(
            &t,
            Some(API_SECRET),
            "PUT",
            "/424242",
            Some(json!({"record": true})),
        )
        .await,
        StatusCode::NOT_FOUND,
        "no publish token",
    );

    // Kept across a restart.
    t.restart().await;
    assert_eq!(data(&t, "GET", &path, None).await, changed);

    // Deleted once; the second time it is not found.
    assert_eq!(data(&t, "DELETE", &path, None).await, json!(true));
    assert_fail(
        api(&t, Some(API_SECRET), "DELETE", &path, None).await,
        StatusCode::NOT_FOUND,
        "no publish token",
    );
    assert_fail(
        api(&t, Some(API_SECRET), "GET", &path, None).await,
        StatusCode::NOT_FOUND,
        "no publish token",
    );
    assert_eq!(
        labels(data(&t, "GET", "/list", None).await),
        ["Sport", "c", "a", "b"]
    );
});
