//! The `reel` binary: configuration from flags, environment and file; first-start
//! credentials; tokens.

use std::process::Command;

use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;

use crate::common::*;

#[test]
fn serve_help_documents_every_setting() {
    let out = Command::new(reel_bin())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "REEL_CONFIG",
        "REEL_LISTEN",
        "REEL_PUBLIC_URL",
        "REEL_DATA_DIR",
        "REEL_DATABASE_URL",
        "REEL_API_KEY",
        "REEL_API_SECRET",
        "REEL_WEBHOOK_URL",
        "REEL_WEBHOOK_RETRY_FOR",
        "REEL_WEBHOOK_TIMEOUT",
        "REEL_DOWNLOAD_URL_TTL",
        "REEL_LOG_FORMAT",
        "REEL_S3_BUCKET",
        "REEL_S3_REGION",
        "REEL_S3_ENDPOINT",
        "REEL_S3_ACCESS_KEY_ID",
        "REEL_S3_SECRET_ACCESS_KEY",
        "REEL_S3_PREFIX",
        "REEL_S3_PATH_STYLE",
    ] {
        assert!(
            help.contains(&format!("[env: {var}")),
            "{var} missing from:\n{help}"
        );
    }
    assert!(
        !help.contains("test-secret"),
        "secret values are never shown"
    );
}

#[test]
fn token_prints_a_signed_user_token() {
    let out = Command::new(reel_bin())
        .args(["token", "--user", "alice", "--role", "admin", "--ttl", "1h"])
        .env("REEL_API_KEY", API_KEY)
        .env("REEL_API_SECRET", API_SECRET)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let mut v = Validation::default();
    v.set_required_spec_claims(&["exp"]);
    let claims =
        jsonwebtoken::decode::<Value>(&token, &DecodingKey::from_secret(API_SECRET.as_bytes()), &v)
            .unwrap()
            .claims;
    assert_eq!(claims["user_id"], "alice");
    assert_eq!(claims["role"], "admin");
    let ttl = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(ttl, 3600);

    let bad = Command::new(reel_bin())
        .args(["token", "--user", "a\u{1}b"])
        .env("REEL_API_KEY", API_KEY)
        .env("REEL_API_SECRET", API_SECRET)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("user id"));
}

/// A command whose output nobody reads any more (`reel token | head -c0`) says so and fails;
/// it does not panic.
#[test]
fn a_closed_output_is_an_error_not_a_panic() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(reel_bin())
        .args(["token", "--user", "alice"])
        .env("REEL_API_KEY", API_KEY)
        .env("REEL_API_SECRET", API_SECRET)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot write to standard output") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

fn stop(child: std::process::Child) -> String {
    // SIGTERM: a graceful stop.
    Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "reel exits cleanly on SIGTERM");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn first_start_generates_credentials_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let envs = [("REEL_LISTEN", format!("127.0.0.1:{port}"))];
    let child = serve(dir.path(), &envs, &[]);
    let printed = stop(child);
    let key = printed
        .lines()
        .find_map(|l| l.trim().strip_prefix("api_key:"))
        .expect(&printed)
        .trim()
        .to_owned();
    let secret = printed
        .lines()
        .find_map(|l| l.trim().strip_prefix("api_secret:"))
        .unwrap()
        .trim()
        .to_owned();
    assert!(
        dir.path().join("data/reel.db").exists(),
        "embedded default: SQLite under ./data"
    );
    assert!(dir.path().join("data/recordings").is_dir());

    let child = serve(dir.path(), &envs, &[]);
    // The kept credentials work; `reel token` finds them in the database too.
    let token = Command::new(reel_bin())
        .args(["token", "--user", "u", "--role", "admin"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        token.status.success(),
        "{}",
        String::from_utf8_lossy(&token.stderr)
    );
    let token = String::from_utf8_lossy(&token.stdout).trim().to_owned();
    let res = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{port}/api/v2/video/call/default/c1?api_key={key}"
        ))
        .header("authorization", &token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let again = stop(child);
    assert!(!again.contains(&secret), "printed only once");
    jsonwebtoken::decode::<Value>(&token, &DecodingKey::from_secret(secret.as_bytes()), &{
        let mut v = Validation::default();
        v.required_spec_claims.clear();
        v.validate_exp = false;
        v
    })
    .unwrap();
}

#[tokio::test]
async fn settings_from_file_environment_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let (p1, p2) = (free_port(), free_port());
    std::fs::write(
        dir.path().join("reel.toml"),
        format!("listen = \"127.0.0.1:{p1}\"\ndata_dir = \"from-file\"\napi_key = \"filekey\"\napi_secret = \"filesecret\"\n"),
    )
    .unwrap();
    // The file alone.
    let child = serve(dir.path(), &[("REEL_CONFIG", "reel.toml".into())], &[]);
    let ok = reqwest::get(format!("http://127.0.0.1:{p1}/healthz"))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    stop(child);
    assert!(dir.path().join("from-file/reel.db").exists());
    // The environment beats the file, and a flag beats the environment.
    let envs = [
        ("REEL_CONFIG", "reel.toml".into()),
        ("REEL_DATA_DIR", "from-env".into()),
        ("REEL_LISTEN", format!("127.0.0.1:{p1}")),
    ];
    let child = serve(dir.path(), &envs, &["--listen", &format!("127.0.0.1:{p2}")]);
    let res = reqwest::Client::new()
        .get(format!(
            "http://127.0.0.1:{p2}/api/v2/video/calltypes?api_key=filekey"
        ))
        .header(
            "authorization",
            reel::auth::Keys::new("filekey", "filesecret").server_token(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    stop(child);
    assert!(dir.path().join("from-env/reel.db").exists());

    // Bad settings stop it with a clear message.
    std::fs::write(dir.path().join("bad.toml"), "lisen = 3\n").unwrap();
    let out = Command::new(reel_bin())
        .args(["serve", "--config", "bad.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("lisen"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(reel_bin())
        .args(["serve", "--api-key", "only-the-key"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("api_secret"));
}
