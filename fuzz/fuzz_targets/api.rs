//! Any request to reel's HTTP API, as a client authorized for it sends it: the first line is
//! the method and the path with its query, the rest the body. The harness adds what the route's
//! dialect authenticates with (a server token, the API secret, a user's token), so inputs reach
//! the handlers: the JSON bodies of every dialect, SDP offers and trickle fragments, names in
//! paths and queries. reel must answer every one, and never with a 500.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use reel::auth::Keys;
use reel::config::{Config, MediaSettings, Settings};
use reel::domain::{Role, UserId};
use reel::recorders::Recorders;
use reel::server::Server;
use tokio::runtime::Runtime;

const API_KEY: &str = "fuzz-key";
const API_SECRET: &str = "fuzz-secret-fuzz-secret-fuzz-secret";

struct Reel {
    runtime: Runtime,
    http: reqwest::Client,
    base: String,
    server_token: String,
    user_token: String,
    _server: Server,
    _data: tempfile::TempDir,
}

/// One server for the whole run, on loopback, with the recorders that need no browser.
fn reel() -> &'static Reel {
    static REEL: OnceLock<Reel> = OnceLock::new();
    REEL.get_or_init(|| {
        let data = tempfile::tempdir().expect("a scratch directory");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let settings = Settings {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            data_dir: Some(data.path().to_owned()),
            api_key: Some(API_KEY.into()),
            api_secret: Some(API_SECRET.into()),
            media: MediaSettings {
                udp_port: Some(0),
                ..MediaSettings::default()
            },
            ..Settings::default()
        };
        let config = Config::resolve(settings).expect("the settings are valid");
        let server = runtime
            .block_on(Server::start(config, Recorders::native()))
            .expect("reel starts");
        let keys = Keys::new(API_KEY, API_SECRET);
        let admin = Role::parse("admin").expect("a role");
        Reel {
            base: format!("http://{}", server.addr),
            server_token: keys.server_token(),
            user_token: keys.user_token(
                &UserId::parse("fuzzer").expect("a name"),
                Some(&admin),
                None,
            ),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("an HTTP client"),
            runtime,
            _server: server,
            _data: data,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let (head, body) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let Ok(head) = std::str::from_utf8(head) else {
        return;
    };
    let Some((method, path)) = head.split_once(' ') else {
        return;
    };
    let Ok(method) = reqwest::Method::from_bytes(method.as_bytes()) else {
        return;
    };
    if !path.starts_with('/') || path.starts_with("//") {
        return;
    }
    let reel = reel();
    let sep = if path.contains('?') { '&' } else { '?' };
    let base = format!("{}{path}", reel.base);
    let of_users = ["/whip/", "/whep/", "/events/", "/join/"];
    let request = if path.starts_with("/api/v2/") {
        reel.http
            .request(method.clone(), format!("{base}{sep}api_key={API_KEY}"))
            .header("authorization", &reel.server_token)
            .header("stream-auth-type", "jwt")
    } else if of_users.iter().any(|p| path.starts_with(p)) {
        let url = format!("{base}{sep}token={}", reel.user_token);
        reel.http.request(method.clone(), url)
    } else {
        reel.http
            .request(method.clone(), base)
            .bearer_auth(API_SECRET)
    };
    let content_type = match (
        path.starts_with("/whip/") || path.starts_with("/whep/"),
        &method,
    ) {
        (true, &reqwest::Method::PATCH) => "application/trickle-ice-sdpfrag",
        (true, _) => "application/sdp",
        _ => "application/json",
    };
    let request = request
        .header("content-type", content_type)
        .body(body.to_vec());
    let answer = reel.runtime.block_on(async move {
        let res = request.send().await?;
        let status = res.status();
        let text = res.text().await?;
        Ok::<_, reqwest::Error>((status, text))
    });
    match answer {
        Ok((status, text)) => assert!(
            status != reqwest::StatusCode::INTERNAL_SERVER_ERROR,
            "{method} {path} answered {status}: {text}"
        ),
        // Requests reqwest itself refuses to build or send (bad header values, URLs) are the
        // client's; a connection reel drops is reel's.
        Err(e) if e.is_builder() => {}
        Err(e) => panic!("{method} {path}: no answer: {e}"),
    }
});
