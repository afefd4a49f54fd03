//! The broadcast dialect's JSON: camelCase fields, times in RFC 3339.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::domain::{
    Expiry, MediaInfo, PublishToken, RecordFile, RecordFileChange, RecordingState, StreamRule,
    Timestamp, TokenChanges, TokenSpec,
};
use crate::service::RecordLinks;

/// A stream rule as the dialect writes it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamRequest {
    stream_name: String,
    #[serde(default)]
    is_regex: bool,
}

impl From<StreamRequest> for StreamRule {
    fn from(s: StreamRequest) -> Self {
        Self {
            stream_name: s.stream_name,
            is_regex: s.is_regex,
        }
    }
}

/// Restrictions the hosted service offers that reel does not enforce: a request that asks
/// for one is refused rather than given a token that is less restricted than it thinks.
const UNENFORCED: [&str; 6] = [
    "allowedOrigins",
    "allowedIpAddresses",
    "bindIpsOnUsage",
    "allowedCountries",
    "deniedCountries",
    "updateAllowedOrigins",
];

/// Refuses a request that asks for a restriction reel does not enforce (an empty list or
/// zero asks for none).
fn refuse_unenforced(rest: &Map<String, Value>) -> Result<(), String> {
    for name in UNENFORCED {
        let asks = match rest.get(name) {
            None | Some(Value::Null) => false,
            Some(Value::Array(a)) => !a.is_empty(),
            Some(Value::Number(n)) => n.as_f64() != Some(0.0),
            Some(_) => true,
        };
        if asks {
            return Err(format!(
                "{name}: reel does not restrict publish tokens this way; leave it out"
            ));
        }
    }
    Ok(())
}

/// `POST /api/publish_token`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateRequest {
    label: String,
    streams: Vec<StreamRequest>,
    #[serde(default)]
    record: bool,
    multisource: Option<bool>,
    #[serde(default)]
    enable_thumbnails: bool,
    #[serde(default)]
    subscribe_requires_auth: bool,
    /// Seconds from now until it expires.
    expires: Option<u64>,
    /// When it expires.
    expires_on: Option<String>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

impl CreateRequest {
    /// The token it asks for.
    pub fn spec(self) -> Result<TokenSpec, String> {
        refuse_unenforced(&self.rest)?;
        let expiry = match (self.expires, self.expires_on.as_deref()) {
            (Some(_), Some(_)) => return Err("give expires or expiresOn, not both".into()),
            (Some(0), None) => return Err("expires must be at least 1 second".into()),
            (Some(s), None) => Expiry::After(std::time::Duration::from_secs(s)),
            (None, Some(t)) => Expiry::At(
                Timestamp::parse_rfc3339(t)
                    .ok_or_else(|| format!("expiresOn {t:?} is not an RFC 3339 time"))?,
            ),
            (None, None) => Expiry::Never,
        };
        Ok(TokenSpec {
            label: self.label,
            streams: self.streams.into_iter().map(StreamRule::from).collect(),
            record: self.record,
            // As the hosted service: a token is multisource unless told otherwise.
            multisource: self.multisource.unwrap_or(true),
            enable_thumbnails: self.enable_thumbnails,
            subscribe_requires_auth: self.subscribe_requires_auth,
            expiry,
        })
    }
}

/// `PUT /api/publish_token/{tokenId}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateRequest {
    label: Option<String>,
    #[serde(default)]
    refresh_token: bool,
    is_active: Option<bool>,
    #[serde(default)]
    add_token_streams: Vec<StreamRequest>,
    #[serde(default)]
    remove_token_streams: Vec<StreamRequest>,
    record: Option<bool>,
    multisource: Option<bool>,
    enable_thumbnails: Option<bool>,
    subscribe_requires_auth: Option<bool>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

impl UpdateRequest {
    /// The changes it asks for, and whether the token gets a fresh value.
    pub fn changes(self) -> Result<(TokenChanges, bool), String> {
        refuse_unenforced(&self.rest)?;
        let rules = |v: Vec<StreamRequest>| v.into_iter().map(StreamRule::from).collect();
        let changes = TokenChanges {
            label: self.label,
            token: None,
            is_active: self.is_active,
            add_streams: rules(self.add_token_streams),
            remove_streams: rules(self.remove_token_streams),
            record: self.record,
            multisource: self.multisource,
            enable_thumbnails: self.enable_thumbnails,
            subscribe_requires_auth: self.subscribe_requires_auth,
        };
        Ok((changes, self.refresh_token))
    }
}

/// `GET /api/publish_token/list`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    pub page: Option<u32>,
    pub items_on_page: Option<u32>,
    pub sort_by: Option<String>,
    pub is_descending: Option<bool>,
}

/// A time as the dialect writes it.
fn time(t: Timestamp) -> Value {
    Value::String(t.to_rfc3339())
}

/// A publish token as the dialect shows it.
pub fn token(t: &PublishToken) -> Value {
    json!({
        "id": t.id,
        "label": t.label,
        "token": t.token.expose(),
        "addedOn": time(t.added_on),
        "expiresOn": t.expires_on.map(time),
        "isActive": t.is_active,
        "streams": t.streams.iter().map(|s| json!({
            "streamName": s.stream_name,
            "isRegex": s.is_regex,
        })).collect::<Vec<_>>(),
        "record": t.record,
        "multisource": t.multisource,
        "enableThumbnails": t.enable_thumbnails,
        "subscribeRequiresAuth": t.subscribe_requires_auth,
    })
}

/// `GET /api/record_files/list` (and `list_by_token`, `list_by_stream`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordListQuery {
    pub page: Option<u32>,
    pub items_on_page: Option<u32>,
    pub sort_by: Option<String>,
    pub is_descending: Option<bool>,
    pub status: Option<String>,
    pub token_id: Option<i64>,
    pub stream_name: Option<String>,
}

/// `POST /api/record_files/delete`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteRequest {
    pub record_file_ids: Vec<i64>,
}

/// A record file's status, as the dialect names it.
pub fn record_status(state: RecordingState) -> &'static str {
    match state {
        RecordingState::Requested | RecordingState::Running | RecordingState::Paused => "Started",
        RecordingState::Stopping | RecordingState::Uploading => "InProgress",
        RecordingState::Ready => "Complete",
        RecordingState::Failed => "Error",
    }
}

/// The recording states of a status the dialect names.
pub fn states_of(status: &str) -> Option<Vec<RecordingState>> {
    RecordingState::ALL
        .iter()
        .any(|s| record_status(*s) == status)
        .then(|| {
            RecordingState::ALL
                .into_iter()
                .filter(|s| record_status(*s) == status)
                .collect()
        })
}

/// What a file holds, as the dialect shows it, with the links to its pictures.
fn metadata(info: &MediaInfo, links: Option<&RecordLinks>) -> Value {
    let tracks: Vec<Value> = info
        .tracks
        .iter()
        .map(|t| {
            if t.kind == "video" {
                json!({"type": "video", "codec": t.codec, "bitrate": t.bitrate,
                       "width": t.width, "height": t.height, "framerate": t.framerate})
            } else {
                json!({"type": t.kind, "codec": t.codec, "bitrate": t.bitrate,
                       "channels": t.channels, "samplerate": t.samplerate})
            }
        })
        .collect();
    json!({
        "format": info.format,
        "sizes": {"recording": info.size},
        "duration": info.duration,
        "tracks": tracks,
        "thumbnails": links.map(|l| l.thumbnails.as_slice()).unwrap_or_default(),
        "poster": links.and_then(|l| l.poster.as_deref()),
    })
}

/// A record file as the dialect shows it, with the links to what it stored if given.
pub fn record_file(f: &RecordFile, links: Option<&RecordLinks>) -> Value {
    let mut v = json!({
        "id": f.id,
        "tokenId": f.token_id,
        "streamName": f.stream.as_str(),
        "sourceId": (!f.source_id.is_empty()).then_some(f.source_id.as_str()),
        "recordedOn": time(f.recorded_on),
        "status": record_status(f.recording.state),
        "metadata": f.metadata.as_ref().map(|m| metadata(m, links)),
    });
    if let Some(error) = &f.recording.error {
        v["error"] = json!(error);
    }
    if let Some(d) = links.and_then(|l| l.download.as_ref()) {
        v["download"] = json!({"downloadUrl": d.url, "downloadExpiresOn": time(d.expires)});
    }
    v
}

/// The `recordings` webhook of `change` to `f` at `at`: `{type, event, timestamp (ms),
/// data}`, `data` the record file with its id as `recordFileId`.
pub fn record_file_event(f: &RecordFile, change: RecordFileChange, at: Timestamp) -> Value {
    let mut data = record_file(f, None);
    if let Some(fields) = data.as_object_mut()
        && let Some(id) = fields.remove("id")
    {
        fields.insert("recordFileId".into(), id);
    }
    json!({
        "type": "recordings",
        "event": change.as_str(),
        "timestamp": at.unix_millis(),
        "data": data,
    })
}
