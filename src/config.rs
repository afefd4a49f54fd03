//! Configuration of `reel serve`: one [`Config`], from a TOML file, environment variables and flags.
//!
//! [`Settings`] is the raw, all-optional form shared by the three sources (flags beat
//! environment variables, which beat the file); [`Config::resolve`] fills in the embedded
//! defaults and checks the combination once, at start-up.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::backoff::Backoff;
use crate::media::{MediaConfig, UdpMode};
use crate::secret::Secret;

/// Default API address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3000";
/// Default data directory (database and recordings).
pub const DEFAULT_DATA_DIR: &str = "./data";
/// Default lifetime of download links: two weeks, as Stream's.
pub const DEFAULT_DOWNLOAD_URL_TTL: Duration = Duration::from_secs(14 * 24 * 3600);
/// Default longest recording of a broadcast; a longer broadcast goes on in a new one.
pub const DEFAULT_BROADCAST_SPLIT: Duration = Duration::from_secs(12 * 3600);
/// Default time a webhook is retried before it is given up.
pub const DEFAULT_WEBHOOK_RETRY_FOR: Duration = Duration::from_secs(24 * 3600);
/// Default time a webhook receiver has to answer (Stream expects 2xx within 3 s).
pub const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(3);
/// Default UDP port of the media plane (one port for every WebRTC session).
pub const DEFAULT_MEDIA_UDP_PORT: u16 = 50000;
/// Default time a call session outlives its last participant.
pub const DEFAULT_SESSION_GRACE: Duration = Duration::from_secs(30);
/// Default most WebRTC sessions at once.
pub const DEFAULT_MAX_MEDIA_SESSIONS: usize = 2000;
/// Default region of the default S3 store.
pub const DEFAULT_S3_REGION: &str = "us-east-1";

/// A configuration problem found at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid TOML for reel.
    #[error("invalid config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: Box<toml::de::Error>,
    },
    /// A setting has an unusable value.
    #[error("invalid setting {name}: {reason}")]
    Invalid {
        /// The setting.
        name: &'static str,
        /// Why.
        reason: String,
    },
}

/// A duration written for humans: `3s`, `24h`, `14d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = humantime::DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        humantime::parse_duration(s).map(Self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Settings of `reel serve`, from a TOML file, environment variables or flags.
///
/// In the TOML file the keys are the field names (`listen = "0.0.0.0:3000"`), and the S3
/// settings sit in an `[s3]` table.
#[derive(Clone, Debug, Default, clap::Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address the API listens on [default: 127.0.0.1:3000]
    #[arg(long, env = "REEL_LISTEN", value_name = "HOST:PORT")]
    pub listen: Option<SocketAddr>,

    /// Base URL at which clients reach reel, used in download links [default: http://<listen>]
    #[arg(long, env = "REEL_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// Directory for the embedded database and for recordings [default: ./data]
    #[arg(long, env = "REEL_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Database: sqlite://<file> or postgres://user:password@host/db [default: sqlite://<data-dir>/reel.db]
    #[arg(
        long,
        env = "REEL_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<Secret>,

    /// API key clients send as ?api_key= [default: generated on first start and kept in the database]
    #[arg(long, env = "REEL_API_KEY", value_name = "KEY")]
    pub api_key: Option<String>,

    /// API secret that signs tokens, webhooks and download links (set with --api-key)
    #[arg(
        long,
        env = "REEL_API_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub api_secret: Option<Secret>,

    /// Webhook receiver URL; repeat the flag or separate with commas for several
    #[arg(
        long = "webhook-url",
        env = "REEL_WEBHOOK_URL",
        value_name = "URL",
        value_delimiter = ','
    )]
    #[serde(rename = "webhook_urls")]
    pub webhook_urls: Option<Vec<String>>,

    /// How long a failing webhook is retried (with exponential backoff) before it is given up [default: 24h]
    #[arg(long, env = "REEL_WEBHOOK_RETRY_FOR", value_name = "DURATION")]
    pub webhook_retry_for: Option<HumanDuration>,

    /// Delay before retrying a failed webhook delivery or upload; it doubles after each further failure [default: 1s]
    #[arg(long, env = "REEL_RETRY_FIRST", value_name = "DURATION")]
    pub retry_first: Option<HumanDuration>,

    /// Longest delay between two attempts of a webhook delivery or upload [default: 10m]
    #[arg(long, env = "REEL_RETRY_MAX", value_name = "DURATION")]
    pub retry_max: Option<HumanDuration>,

    /// Time a webhook receiver has to answer [default: 3s]
    #[arg(long, env = "REEL_WEBHOOK_TIMEOUT", value_name = "DURATION")]
    pub webhook_timeout: Option<HumanDuration>,

    /// Lifetime of download links [default: 14d; at most 7d for S3, which limits presigned URLs]
    #[arg(long, env = "REEL_DOWNLOAD_URL_TTL", value_name = "DURATION")]
    pub download_url_ttl: Option<HumanDuration>,

    /// Longest recording of a broadcast; a longer one goes on in a new recording [default: 12h]
    #[arg(long, env = "REEL_BROADCAST_SPLIT", value_name = "DURATION")]
    pub broadcast_split: Option<HumanDuration>,

    /// Log format [default: text]
    #[arg(long, env = "REEL_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,

    /// Keep a display and a windowless browser started for the next composite recording,
    /// which then starts 0.2 to 0.7 s sooner [default: true]
    #[arg(long, env = "REEL_COMPOSITE_STANDBY", value_name = "BOOL")]
    pub composite_standby: Option<bool>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub s3: S3Settings,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub media: MediaSettings,
}

/// The media plane (WebRTC): where it listens and what it advertises.
#[derive(Clone, Debug, Default, clap::Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaSettings {
    /// Address the media plane's UDP sockets bind to [default: the API's address]
    #[arg(long = "media-bind", env = "REEL_MEDIA_BIND", value_name = "IP")]
    pub bind: Option<std::net::IpAddr>,

    /// One UDP port for every WebRTC session (0: any free port) [default: 50000]
    #[arg(
        long = "media-udp-port",
        env = "REEL_MEDIA_UDP_PORT",
        value_name = "PORT"
    )]
    pub udp_port: Option<u16>,

    /// A UDP port per session from this range instead of one port, e.g. 50000-50999
    #[arg(
        long = "media-udp-ports",
        env = "REEL_MEDIA_UDP_PORTS",
        value_name = "LOW-HIGH"
    )]
    pub udp_ports: Option<String>,

    /// Addresses clients reach the media plane at, put in ICE candidates; repeat or separate with commas [default: the bind address, or 127.0.0.1 when it is 0.0.0.0]
    #[arg(
        long = "media-advertise",
        env = "REEL_MEDIA_ADVERTISE",
        value_name = "IP",
        value_delimiter = ','
    )]
    pub advertise: Option<Vec<std::net::IpAddr>>,

    /// How long a call session outlives its last participant [default: 30s]
    #[arg(
        long = "session-grace",
        env = "REEL_SESSION_GRACE",
        value_name = "DURATION"
    )]
    pub session_grace: Option<HumanDuration>,

    /// Most WebRTC sessions at once; more are refused with 503 [default: 2000]
    #[arg(
        long = "media-max-sessions",
        env = "REEL_MEDIA_MAX_SESSIONS",
        value_name = "N"
    )]
    pub max_sessions: Option<usize>,
}

/// The default S3 store; setting a bucket makes S3 the default store instead of local disk.
#[derive(Clone, Debug, Default, clap::Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Settings {
    /// Bucket of the default S3 store (makes S3 the default store)
    #[arg(long = "s3-bucket", env = "REEL_S3_BUCKET", value_name = "BUCKET")]
    pub bucket: Option<String>,

    /// Region of the default S3 store [default: us-east-1]
    #[arg(long = "s3-region", env = "REEL_S3_REGION", value_name = "REGION")]
    pub region: Option<String>,

    /// Endpoint of an S3-compatible service, e.g. http://127.0.0.1:9000
    #[arg(long = "s3-endpoint", env = "REEL_S3_ENDPOINT", value_name = "URL")]
    pub endpoint: Option<String>,

    /// Access key id [default: from the AWS environment variables]
    #[arg(
        long = "s3-access-key-id",
        env = "REEL_S3_ACCESS_KEY_ID",
        value_name = "ID"
    )]
    pub access_key_id: Option<String>,

    /// Secret access key
    #[arg(
        long = "s3-secret-access-key",
        env = "REEL_S3_SECRET_ACCESS_KEY",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub secret_access_key: Option<Secret>,

    /// Key prefix for every object
    #[arg(long = "s3-prefix", env = "REEL_S3_PREFIX", value_name = "PREFIX")]
    pub prefix: Option<String>,

    /// Path-style addressing (bucket in the path), which most S3-compatible servers need [default: true with --s3-endpoint]
    #[arg(
        long = "s3-path-style",
        env = "REEL_S3_PATH_STYLE",
        value_name = "BOOL"
    )]
    pub path_style: Option<bool>,
}

impl Settings {
    /// Reads a TOML settings file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    /// These settings with every value that `over` sets replaced by it.
    pub fn overlay(self, over: Settings) -> Settings {
        let s3 = S3Settings {
            bucket: over.s3.bucket.or(self.s3.bucket),
            region: over.s3.region.or(self.s3.region),
            endpoint: over.s3.endpoint.or(self.s3.endpoint),
            access_key_id: over.s3.access_key_id.or(self.s3.access_key_id),
            secret_access_key: over.s3.secret_access_key.or(self.s3.secret_access_key),
            prefix: over.s3.prefix.or(self.s3.prefix),
            path_style: over.s3.path_style.or(self.s3.path_style),
        };
        let media = MediaSettings {
            bind: over.media.bind.or(self.media.bind),
            udp_port: over.media.udp_port.or(self.media.udp_port),
            udp_ports: over.media.udp_ports.or(self.media.udp_ports),
            advertise: over.media.advertise.or(self.media.advertise),
            session_grace: over.media.session_grace.or(self.media.session_grace),
            max_sessions: over.media.max_sessions.or(self.media.max_sessions),
        };
        Settings {
            listen: over.listen.or(self.listen),
            public_url: over.public_url.or(self.public_url),
            data_dir: over.data_dir.or(self.data_dir),
            database_url: over.database_url.or(self.database_url),
            api_key: over.api_key.or(self.api_key),
            api_secret: over.api_secret.or(self.api_secret),
            webhook_urls: over.webhook_urls.or(self.webhook_urls),
            webhook_retry_for: over.webhook_retry_for.or(self.webhook_retry_for),
            retry_first: over.retry_first.or(self.retry_first),
            retry_max: over.retry_max.or(self.retry_max),
            webhook_timeout: over.webhook_timeout.or(self.webhook_timeout),
            download_url_ttl: over.download_url_ttl.or(self.download_url_ttl),
            broadcast_split: over.broadcast_split.or(self.broadcast_split),
            log_format: over.log_format.or(self.log_format),
            composite_standby: over.composite_standby.or(self.composite_standby),
            s3,
            media,
        }
    }
}

/// API credentials given in the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The key clients send with every request.
    pub api_key: String,
    /// The shared secret.
    pub api_secret: Secret,
}

/// The default S3 store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Config {
    /// Bucket.
    pub bucket: String,
    /// Region.
    pub region: String,
    /// Endpoint of an S3-compatible service.
    pub endpoint: Option<String>,
    /// Access key id and secret; `None` reads AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
    pub credentials: Option<(String, Secret)>,
    /// Key prefix.
    pub prefix: String,
    /// Path-style addressing.
    pub path_style: bool,
}

/// The resolved configuration of a reel server.
#[derive(Clone, Debug)]
pub struct Config {
    /// API address.
    pub listen: SocketAddr,
    /// Base URL for links; `None` derives it from the bound address.
    pub public_url: Option<String>,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Database URL (it may hold a password).
    pub database_url: Secret,
    /// Configured credentials; `None` uses (or creates) the ones kept in the database.
    pub credentials: Option<Credentials>,
    /// Webhook receivers.
    pub webhook_urls: Vec<String>,
    /// How long a failing webhook is retried.
    pub webhook_retry_for: Duration,
    /// When failed webhook deliveries and uploads are tried again.
    pub retry: Backoff,
    /// Time a webhook receiver has to answer.
    pub webhook_timeout: Duration,
    /// Lifetime of download links.
    pub download_url_ttl: Duration,
    /// Longest recording of a broadcast.
    pub broadcast_split: Duration,
    /// The default S3 store, if any; otherwise files stay on local disk.
    pub s3: Option<S3Config>,
    /// Log format.
    pub log_format: LogFormat,
    /// The media plane.
    pub media: MediaConfig,
    /// How long a call session outlives its last participant.
    pub session_grace: Duration,
    /// Whether a browser waits, started, for the next composite recording.
    pub composite_standby: bool,
}

fn invalid(name: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        reason: reason.into(),
    }
}

fn http_url(name: &'static str, url: &str) -> Result<(), ConfigError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(invalid(name, format!("{url:?} is not an http(s) URL")))
    }
}

fn media_config(m: &MediaSettings, listen_ip: IpAddr) -> Result<MediaConfig, ConfigError> {
    let bind_ip = m.bind.unwrap_or(listen_ip);
    let udp = match &m.udp_ports {
        Some(range) => {
            let parsed = range.split_once('-').and_then(|(a, b)| {
                Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?))
            });
            match parsed {
                Some((lo, hi)) if lo > 0 && lo <= hi => UdpMode::Range(lo, hi),
                _ => {
                    return Err(invalid(
                        "media.udp_ports",
                        format!("{range:?} is not a range like 50000-50999"),
                    ));
                }
            }
        }
        None => UdpMode::Muxed(m.udp_port.unwrap_or(DEFAULT_MEDIA_UDP_PORT)),
    };
    let advertised = match &m.advertise {
        Some(a) if !a.is_empty() => a.clone(),
        _ if bind_ip.is_unspecified() => vec![IpAddr::from([127, 0, 0, 1])],
        _ => vec![bind_ip],
    };
    if let Some(a) = advertised.iter().find(|a| a.is_unspecified()) {
        return Err(invalid(
            "media.advertise",
            format!("{a} cannot be reached; give the address clients use"),
        ));
    }
    let max_peers = m.max_sessions.unwrap_or(DEFAULT_MAX_MEDIA_SESSIONS);
    if max_peers == 0 {
        return Err(invalid("media.max_sessions", "must be positive"));
    }
    Ok(MediaConfig {
        bind_ip,
        udp,
        advertised,
        max_peers,
    })
}

impl Config {
    /// Applies the embedded defaults to `s` and checks the result.
    pub fn resolve(s: Settings) -> Result<Config, ConfigError> {
        let listen = s
            .listen
            .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("the default address parses"));
        let data_dir = s
            .data_dir
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database_url = s.database_url.unwrap_or_else(|| {
            format!("sqlite://{}?mode=rwc", data_dir.join("reel.db").display()).into()
        });
        let url = database_url.expose();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres:")
            || url.starts_with("postgresql:"))
        {
            return Err(invalid(
                "database_url",
                "expected sqlite://... or postgres://...",
            ));
        }
        let credentials = match (s.api_key, s.api_secret) {
            (Some(api_key), Some(api_secret))
                if !api_key.is_empty() && !api_secret.expose().is_empty() =>
            {
                Some(Credentials {
                    api_key,
                    api_secret,
                })
            }
            (None, None) => None,
            _ => {
                return Err(invalid(
                    "api_key",
                    "set both api_key and api_secret, or neither",
                ));
            }
        };
        let webhook_urls = s.webhook_urls.unwrap_or_default();
        for u in &webhook_urls {
            http_url("webhook_urls", u)?;
        }
        if let Some(u) = &s.public_url {
            http_url("public_url", u)?;
        }
        let s3 = match s.s3.bucket {
            None => None,
            Some(bucket) => {
                if let Some(e) = &s.s3.endpoint {
                    http_url("s3.endpoint", e)?;
                }
                let credentials = match (s.s3.access_key_id, s.s3.secret_access_key) {
                    (Some(k), Some(v)) => Some((k, v)),
                    (None, None) => None,
                    _ => {
                        return Err(invalid(
                            "s3.access_key_id",
                            "set both the access key id and the secret, or neither",
                        ));
                    }
                };
                Some(S3Config {
                    bucket,
                    region: s.s3.region.unwrap_or_else(|| DEFAULT_S3_REGION.into()),
                    path_style: s.s3.path_style.unwrap_or(s.s3.endpoint.is_some()),
                    endpoint: s.s3.endpoint,
                    credentials,
                    prefix: s.s3.prefix.unwrap_or_default().trim_matches('/').to_owned(),
                })
            }
        };
        let positive = |name, d: Option<HumanDuration>, default| match d {
            Some(HumanDuration(d)) if d.is_zero() => Err(invalid(name, "must be positive")),
            Some(HumanDuration(d)) => Ok(d),
            None => Ok(default),
        };
        let media = media_config(&s.media, listen.ip())?;
        Ok(Config {
            listen,
            public_url: s.public_url.map(|u| u.trim_end_matches('/').to_owned()),
            data_dir,
            database_url,
            credentials,
            webhook_urls,
            webhook_retry_for: positive(
                "webhook_retry_for",
                s.webhook_retry_for,
                DEFAULT_WEBHOOK_RETRY_FOR,
            )?,
            retry: Backoff {
                first: positive("retry_first", s.retry_first, Backoff::default().first)?,
                max: positive("retry_max", s.retry_max, Backoff::default().max)?,
            },
            webhook_timeout: positive(
                "webhook_timeout",
                s.webhook_timeout,
                DEFAULT_WEBHOOK_TIMEOUT,
            )?,
            download_url_ttl: positive(
                "download_url_ttl",
                s.download_url_ttl,
                DEFAULT_DOWNLOAD_URL_TTL,
            )?,
            broadcast_split: positive(
                "broadcast_split",
                s.broadcast_split,
                DEFAULT_BROADCAST_SPLIT,
            )?,
            s3,
            log_format: s.log_format.unwrap_or_default(),
            media,
            session_grace: s.media.session_grace.map_or(DEFAULT_SESSION_GRACE, |d| d.0),
            composite_standby: s.composite_standby.unwrap_or(true),
        })
    }

    /// Where recordings are written and, with the local store, kept.
    pub fn recordings_dir(&self) -> PathBuf {
        self.data_dir.join("recordings")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = Config::resolve(Settings::default()).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.database_url.expose(), "sqlite://./data/reel.db?mode=rwc");
        assert_eq!(c.download_url_ttl, DEFAULT_DOWNLOAD_URL_TTL);
        assert!(c.s3.is_none() && c.credentials.is_none());
    }

    #[test]
    fn file_then_flags() {
        let file: Settings = toml::from_str(
            r#"
            listen = "0.0.0.0:4000"
            webhook_urls = ["http://a/hook"]
            download_url_ttl = "1h"
            [s3]
            bucket = "rec"
            endpoint = "http://127.0.0.1:9000"
            "#,
        )
        .unwrap();
        let flags = Settings {
            listen: Some("127.0.0.1:5000".parse().unwrap()),
            ..Default::default()
        };
        let c = Config::resolve(file.overlay(flags)).unwrap();
        assert_eq!(c.listen.port(), 5000);
        assert_eq!(c.webhook_urls, vec!["http://a/hook"]);
        assert_eq!(c.download_url_ttl, Duration::from_secs(3600));
        let s3 = c.s3.unwrap();
        assert!(s3.path_style);
        assert_eq!(s3.region, DEFAULT_S3_REGION);
    }

    #[test]
    fn rejects_bad_combinations() {
        for s in [
            Settings {
                api_key: Some("k".into()),
                ..Default::default()
            },
            Settings {
                webhook_urls: Some(vec!["ftp://x".into()]),
                ..Default::default()
            },
            Settings {
                database_url: Some("mysql://x".into()),
                ..Default::default()
            },
            Settings {
                webhook_timeout: Some(HumanDuration(Duration::ZERO)),
                ..Default::default()
            },
        ] {
            assert!(Config::resolve(s).is_err());
        }
        assert!(toml::from_str::<Settings>("lisen = \"x\"").is_err());
    }
}
