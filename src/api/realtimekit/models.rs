//! RealtimeKit's shapes: request bodies, the recording object, statuses, the envelope and
//! the `recording.statusUpdate` event.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::domain::{
    CallId, CallTypeName, Cid, CompositeAudio, CompositeAudioCodec, CompositeOptions,
    CompositeOutputs, CompositeVideo, CompositeVideoCodec, Corner, InvalidName, RecordingState,
    RecordingType, S3Access, StorageName, Timestamp, Watermark,
};
use crate::recorders::track::FILE_NAME_TEMPLATE;
use crate::service::RecordingReport;
use crate::service::StorageSpec;

/// A recording's status as RealtimeKit names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Requested; the recorder is being set up.
    Invoked,
    /// The recorder is writing.
    Recording,
    /// Paused: what comes is left out until it resumes.
    Paused,
    /// Stopped; files are being finished and uploaded.
    Uploading,
    /// Every file is uploaded.
    Uploaded,
    /// It failed.
    Errored,
}

impl Status {
    /// Every status.
    const ALL: [Status; 6] = [
        Self::Invoked,
        Self::Recording,
        Self::Paused,
        Self::Uploading,
        Self::Uploaded,
        Self::Errored,
    ];

    /// The status of a recording in `state`.
    pub fn of(state: RecordingState) -> Self {
        match state {
            RecordingState::Requested => Self::Invoked,
            RecordingState::Running => Self::Recording,
            RecordingState::Paused => Self::Paused,
            RecordingState::Stopping | RecordingState::Uploading => Self::Uploading,
            RecordingState::Ready => Self::Uploaded,
            RecordingState::Failed => Self::Errored,
        }
    }

    /// The states a recording with this status may be in.
    pub fn states(self) -> Vec<RecordingState> {
        RecordingState::ALL
            .into_iter()
            .filter(|s| Self::of(*s) == self)
            .collect()
    }

    /// Parses a status name (any case).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| {
            serde_json::to_value(st)
                .ok()
                .and_then(|v| v.as_str().map(|n| n.eq_ignore_ascii_case(s)))
                .unwrap_or(false)
        })
    }
}

/// The recording types this dialect knows, by their names.
pub fn type_name(t: RecordingType) -> Option<&'static str> {
    match t {
        RecordingType::Composite => Some("COMPOSITE"),
        RecordingType::Track => Some("TRACK"),
        RecordingType::Individual | RecordingType::Raw | RecordingType::Broadcast => None,
    }
}

/// The call a `meeting_id` names: `<call id>` for a call of type `default`, or
/// `<call type>:<call id>`.
pub fn meeting_cid(meeting_id: &str) -> Result<Cid, InvalidName> {
    if meeting_id.contains(':') {
        Cid::parse(meeting_id)
    } else {
        Ok(Cid::new(
            CallTypeName::parse("default")?,
            CallId::parse(meeting_id)?,
        ))
    }
}

/// The `meeting_id` of a call: the inverse of [`meeting_cid`].
pub fn meeting_id(cid: &Cid) -> String {
    if cid.call_type.as_str() == "default" {
        cid.id.to_string()
    } else {
        cid.to_string()
    }
}

/// `POST /recordings/track`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartTrackRequest {
    /// The call.
    pub meeting_id: String,
    /// The users to record; everyone when absent.
    #[serde(default)]
    pub user_ids: Option<Vec<String>>,
    /// The layers, by name.
    #[serde(default)]
    pub layers: Option<Map<String, Value>>,
}

/// One layer of [`StartTrackRequest`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerRequest {
    /// Only `audio` is recorded.
    #[serde(default)]
    pub media_kind: Option<String>,
    /// The first part of the layer's file names.
    #[serde(default)]
    pub file_name_prefix: Option<String>,
}

/// `POST /recordings`: a composite recording.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartCompositeRequest {
    /// The call.
    pub meeting_id: String,
    /// Whether it may run beside another composite of the meeting.
    #[serde(default)]
    pub allow_multiple_recordings: bool,
    /// The first part of its files' names.
    #[serde(default)]
    pub file_name_prefix: Option<String>,
    /// It stops by itself after this many seconds (60 to 86400).
    #[serde(default)]
    pub max_seconds: Option<u64>,
    /// A recording app of one's own, instead of the layout.
    #[serde(default)]
    pub url: Option<String>,
    /// The audio file beside the video.
    #[serde(default)]
    pub audio_config: Option<AudioConfig>,
    /// The video file.
    #[serde(default)]
    pub video_config: Option<VideoConfig>,
    /// Where its files go.
    #[serde(default)]
    pub storage_config: Option<StorageConfig>,
}

/// `audio_config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioConfig {
    /// `MP3` or `AAC` (default).
    #[serde(default)]
    pub codec: Option<String>,
    /// `mono` or `stereo` (default).
    #[serde(default)]
    pub channel: Option<String>,
    /// Whether a file of the audio alone is written (default true).
    #[serde(default)]
    pub export_file: Option<bool>,
}

/// `video_config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoConfig {
    /// `H264` (default, MP4) or `VP8` (WebM).
    #[serde(default)]
    pub codec: Option<String>,
    /// Frame width (default 1280).
    #[serde(default)]
    pub width: Option<u32>,
    /// Frame height (default 720).
    #[serde(default)]
    pub height: Option<u32>,
    /// Whether the video file is written (default true).
    #[serde(default)]
    pub export_file: Option<bool>,
    /// An image over the pictures.
    #[serde(default)]
    pub watermark: Option<WatermarkConfig>,
}

/// `video_config.watermark`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatermarkConfig {
    /// The image.
    pub url: String,
    /// Its size on the picture.
    #[serde(default)]
    pub size: Option<Size>,
    /// `left top` (default), `right top`, `left bottom` or `right bottom`.
    #[serde(default)]
    pub position: Option<String>,
}

/// A width and a height, in pixels.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Size {
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// `storage_config`: an S3 bucket of one's own.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `aws` (also any S3-compatible service, given its `host`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The bucket.
    pub bucket: String,
    /// Its region.
    #[serde(default)]
    pub region: Option<String>,
    /// Access key id.
    pub access_key: String,
    /// Secret access key.
    pub secret: String,
    /// Key prefix.
    #[serde(default)]
    pub path: Option<String>,
    /// The endpoint of an S3-compatible service other than AWS.
    #[serde(default)]
    pub host: Option<String>,
}

/// Most watermark or frame pixels either way.
const MAX_SIDE: u32 = 3840;

fn upper(v: Option<&str>, default: &str) -> String {
    v.unwrap_or(default).to_ascii_uppercase()
}

impl StartCompositeRequest {
    /// The options it asks for, or why they cannot be.
    pub fn options(&self) -> Result<CompositeOptions, String> {
        let max_duration = self
            .max_seconds
            .map(|s| {
                if (60..=86_400).contains(&s) {
                    Ok(Duration::from_secs(s))
                } else {
                    Err(format!("max_seconds must be 60 to 86400, not {s}"))
                }
            })
            .transpose()?;
        let audio = self.audio_config.as_ref();
        let audio = if audio.and_then(|a| a.export_file).unwrap_or(true) {
            let codec = match upper(audio.and_then(|a| a.codec.as_deref()), "AAC").as_str() {
                "AAC" => CompositeAudioCodec::Aac,
                "MP3" => CompositeAudioCodec::Mp3,
                other => return Err(format!("audio_config.codec {other:?}: use MP3 or AAC")),
            };
            let channels = match audio.and_then(|a| a.channel.as_deref()).unwrap_or("stereo") {
                "stereo" => 2,
                "mono" => 1,
                other => {
                    return Err(format!(
                        "audio_config.channel {other:?}: use mono or stereo"
                    ));
                }
            };
            Some(CompositeAudio { codec, channels })
        } else {
            None
        };
        let video = self.video_config.as_ref();
        let video = if video.and_then(|v| v.export_file).unwrap_or(true) {
            let codec = match upper(video.and_then(|v| v.codec.as_deref()), "H264").as_str() {
                "H264" => CompositeVideoCodec::H264,
                "VP8" => CompositeVideoCodec::Vp8,
                other => return Err(format!("video_config.codec {other:?}: use H264 or VP8")),
            };
            let size = (
                video.and_then(|v| v.width).unwrap_or(1280),
                video.and_then(|v| v.height).unwrap_or(720),
            );
            if size.0 % 2 + size.1 % 2 != 0
                || !(2..=MAX_SIDE).contains(&size.0.min(size.1))
                || size.0.max(size.1) > MAX_SIDE
            {
                return Err(format!(
                    "video_config width and height must be even, 2 to {MAX_SIDE}: not {}x{}",
                    size.0, size.1
                ));
            }
            let watermark = video
                .and_then(|v| v.watermark.as_ref())
                .map(WatermarkConfig::watermark)
                .transpose()?;
            Some(CompositeVideo {
                codec,
                size,
                watermark,
            })
        } else {
            None
        };
        if video.is_none() && audio.is_none() {
            return Err("audio_config and video_config both export no file".into());
        }
        if let Some(url) = &self.url {
            http_url("url", url)?;
        }
        if let Some(prefix) = &self.file_name_prefix
            && (prefix.is_empty() || prefix.len() > 64)
        {
            return Err("file_name_prefix must have 1 to 64 characters".into());
        }
        Ok(CompositeOptions {
            file_name_prefix: self.file_name_prefix.clone(),
            max_duration,
            app_url: self.url.clone(),
            outputs: Some(CompositeOutputs { video, audio }),
        })
    }
}

/// Checks that `url` is an http(s) URL.
fn http_url(what: &str, url: &str) -> Result<(), String> {
    if url.starts_with("https://") || url.starts_with("http://") {
        Ok(())
    } else {
        Err(format!("{what} must be an http or https URL"))
    }
}

impl WatermarkConfig {
    fn watermark(&self) -> Result<Watermark, String> {
        if !(self.url.starts_with("data:image/") || http_url("", &self.url).is_ok()) {
            return Err(
                "video_config.watermark.url must be an http, https or image data URL".into(),
            );
        }
        let size = self
            .size
            .as_ref()
            .map_or((100, 100), |s| (s.width, s.height));
        if !(1..=MAX_SIDE).contains(&size.0) || !(1..=MAX_SIDE).contains(&size.1) {
            return Err(format!(
                "video_config.watermark.size must be 1 to {MAX_SIDE} pixels each way"
            ));
        }
        let corner = match self.position.as_deref().unwrap_or("left top") {
            "left top" => Corner::LeftTop,
            "right top" => Corner::RightTop,
            "left bottom" => Corner::LeftBottom,
            "right bottom" => Corner::RightBottom,
            other => {
                return Err(format!(
                    "video_config.watermark.position {other:?}: use left top, right top, left bottom or right bottom"
                ));
            }
        };
        Ok(Watermark {
            url: self.url.clone(),
            size,
            corner,
        })
    }
}

impl StorageConfig {
    /// The external storage it names: one of reel's, named after its settings.
    pub fn spec(&self) -> Result<StorageSpec, String> {
        if !self.kind.eq_ignore_ascii_case("aws") {
            return Err(format!(
                "storage_config.type {:?}: reel writes to S3 (aws, or an S3-compatible service given its host)",
                self.kind
            ));
        }
        if let Some(host) = &self.host {
            http_url("storage_config.host", host)?;
        }
        let mut digest = Sha256::new();
        for part in [
            Some(self.bucket.as_str()),
            self.region.as_deref(),
            Some(self.access_key.as_str()),
            Some(self.secret.as_str()),
            self.path.as_deref(),
            self.host.as_deref(),
        ] {
            digest.update(part.unwrap_or("").as_bytes());
            digest.update([0]);
        }
        let hash = hex::encode(digest.finalize());
        let name = StorageName::parse(format!("realtimekit-{}", &hash[..16]))
            .map_err(|e| e.to_string())?;
        Ok(StorageSpec {
            name,
            bucket: self.bucket.clone(),
            path: self.path.clone().unwrap_or_default(),
            s3: S3Access {
                region: self.region.clone().unwrap_or_else(|| "us-east-1".into()),
                access_key_id: Some(self.access_key.clone()),
                secret_access_key: Some(self.secret.as_str().into()),
                endpoint_url: self.host.clone(),
            },
        })
    }
}

/// `PUT /recordings/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequest {
    /// `stop`, `pause` or `resume`.
    pub action: String,
}

/// The query of `GET /recordings`.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// Only this meeting's.
    pub meeting_id: Option<String>,
    /// 1-based page.
    pub page_no: Option<u64>,
    /// Recordings per page.
    pub per_page: Option<u32>,
    /// `ASC` or `DESC` by request time.
    pub sort_order: Option<String>,
    /// Only recordings with this status (or these, comma-separated).
    pub status: Option<String>,
    /// Only recordings requested at or after this time (RFC 3339).
    pub start_time: Option<String>,
    /// Only recordings requested at or before this time (RFC 3339).
    pub end_time: Option<String>,
}

fn time(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, |t| Value::String(t.to_rfc3339()))
}

/// What a report shows in both the recording object and the status event.
struct Summary {
    download_url: Value,
    audio_download_url: Value,
    file_size: Value,
    output_file_name: Value,
    duration: Value,
}

fn summary(r: &RecordingReport) -> Summary {
    let rec = &r.recording;
    let track = rec.recording_type == RecordingType::Track;
    // A composite's video, and its file of audio alone.
    let (sounds, videos): (Vec<_>, Vec<_>) = r.files.iter().partition(|(f, _)| {
        let name = f.filename.as_str();
        name.ends_with(".mp3") || name.ends_with(".m4a")
    });
    let download_url = if r.files.is_empty() {
        Value::Null
    } else if track {
        // Grouped by layer, in the order the layers' first files came.
        let mut layers: Vec<(String, Map<String, Value>)> = Vec::new();
        for (f, url) in &r.files {
            let name = f.layer.clone().unwrap_or_else(|| "default".into());
            let i = match layers.iter().position(|(n, _)| *n == name) {
                Some(i) => i,
                None => {
                    layers.push((name, Map::new()));
                    layers.len() - 1
                }
            };
            layers[i]
                .1
                .insert(f.filename.to_string(), json!({"download_url": url}));
        }
        layers
            .into_iter()
            .map(|(name, urls)| json!({"layer_name": name, "download_urls": urls}))
            .collect()
    } else {
        videos.first().map_or(Value::Null, |(_, url)| json!(url))
    };
    let audio_download_url = if track {
        Value::Null
    } else {
        sounds.first().map_or(Value::Null, |(_, url)| json!(url))
    };
    let output_file_name = if track {
        json!(FILE_NAME_TEMPLATE.trim())
    } else {
        videos
            .first()
            .or(sounds.first())
            .map_or(Value::Null, |(f, _)| json!(f.filename))
    };
    let size: u64 = r.files.iter().map(|(f, _)| f.size).sum();
    let duration = match (rec.started_at, rec.stopped_at) {
        (Some(a), Some(b)) => json!(b.since(a).as_secs()),
        _ => Value::Null,
    };
    Summary {
        download_url,
        audio_download_url,
        file_size: if r.files.is_empty() {
            Value::Null
        } else {
            json!(size)
        },
        output_file_name,
        duration,
    }
}

fn stop_reason(r: &RecordingReport) -> Value {
    let rec = &r.recording;
    let reason = match (rec.state, rec.stopped_at) {
        (RecordingState::Failed, _) => "INTERNAL_ERROR",
        (_, None) => return Value::Null,
        // Stopped when its session ended: everyone had left.
        (_, Some(stopped)) if r.session_ended_at.is_some_and(|e| e <= stopped) => "ALL_PEERS_LEFT",
        _ => "API_CALL",
    };
    json!({"reason": reason})
}

/// The recording object of `r`.
pub fn recording(r: &RecordingReport) -> Value {
    let rec = &r.recording;
    let s = summary(r);
    json!({
        "id": rec.id,
        "meeting_id": meeting_id(&rec.cid),
        "type": type_name(rec.recording_type),
        "status": Status::of(rec.state),
        "invoked_time": time(Some(rec.created_at)),
        "started_time": time(rec.started_at),
        "stopped_time": time(rec.stopped_at),
        "output_file_name": s.output_file_name,
        "file_size": s.file_size,
        "recording_duration": s.duration,
        "download_url": s.download_url,
        "audio_download_url": s.audio_download_url,
        "download_url_expiry": if r.files.is_empty() { Value::Null } else { time(Some(r.links_expire_at)) },
        "session_id": rec.session_id,
        "start_reason": {"reason": "API_CALL"},
        "stop_reason": stop_reason(r),
        "error": rec.error,
    })
}

/// The `recording.statusUpdate` event for a change from `from` to `r`'s state, unless the
/// status stays the same or the recording is not of a type this dialect records.
pub fn status_update(r: &RecordingReport, from: Option<RecordingState>) -> Option<Value> {
    let rec = &r.recording;
    if !matches!(
        rec.recording_type,
        RecordingType::Track | RecordingType::Composite
    ) {
        return None;
    }
    let status = Status::of(rec.state);
    if from.map(Status::of) == Some(status) {
        return None;
    }
    let s = summary(r);
    Some(json!({
        "event": crate::domain::Event::STATUS_UPDATE,
        "recording": {
            "id": rec.id,
            "type": type_name(rec.recording_type),
            "status": status,
            "downloadUrl": s.download_url,
            "audioDownloadUrl": s.audio_download_url,
            "downloadUrlExpiry": if r.files.is_empty() { Value::Null } else { time(Some(r.links_expire_at)) },
            "invokedTime": time(Some(rec.created_at)),
            "startedTime": time(rec.started_at),
            "stoppedTime": time(rec.stopped_at),
            "fileSize": s.file_size,
            "outputFileName": s.output_file_name,
            "meetingId": meeting_id(&rec.cid),
            "recordingDuration": s.duration,
        },
        "meeting": {
            "id": meeting_id(&rec.cid),
            "sessionId": rec.session_id,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_cover_every_state() {
        assert_eq!(Status::of(RecordingState::Stopping), Status::Uploading);
        assert_eq!(
            Status::Uploading.states(),
            [RecordingState::Stopping, RecordingState::Uploading]
        );
        assert_eq!(Status::parse("uploaded"), Some(Status::Uploaded));
        assert_eq!(Status::parse("PAUSED"), Some(Status::Paused));
        assert_eq!(Status::parse("STOPPED"), None);
        for s in RecordingState::ALL {
            assert!(Status::of(s).states().contains(&s));
        }
    }

    #[test]
    fn meeting_ids_name_calls() {
        let c = meeting_cid("97440c6a-140b-40a9-9499-b23fd7a3868a").unwrap();
        assert_eq!(
            c.to_string(),
            "default:97440c6a-140b-40a9-9499-b23fd7a3868a"
        );
        assert_eq!(meeting_id(&c), "97440c6a-140b-40a9-9499-b23fd7a3868a");
        let l = meeting_cid("livestream:x").unwrap();
        assert_eq!(meeting_id(&l), "livestream:x");
        assert!(meeting_cid("../x").is_err());
    }
}
