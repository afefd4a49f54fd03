//! RealtimeKit's shapes: request bodies, the recording object, statuses, the envelope and
//! the `recording.statusUpdate` event.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::domain::{
    CallId, CallTypeName, Cid, InvalidName, RecordingState, RecordingType, Timestamp,
};
use crate::recorders::track::FILE_NAME_TEMPLATE;
use crate::service::RecordingReport;

/// A recording's status as RealtimeKit names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Requested; the recorder is being set up.
    Invoked,
    /// The recorder is writing.
    Recording,
    /// Stopped; files are being finished and uploaded.
    Uploading,
    /// Every file is uploaded.
    Uploaded,
    /// It failed.
    Errored,
}

impl Status {
    /// Every status.
    const ALL: [Status; 5] = [
        Self::Invoked,
        Self::Recording,
        Self::Uploading,
        Self::Uploaded,
        Self::Errored,
    ];

    /// The status of a recording in `state`.
    pub fn of(state: RecordingState) -> Self {
        match state {
            RecordingState::Requested => Self::Invoked,
            RecordingState::Running => Self::Recording,
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
        RecordingType::Individual | RecordingType::Raw => None,
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
    file_size: Value,
    output_file_name: Value,
    duration: Value,
}

fn summary(r: &RecordingReport) -> Summary {
    let rec = &r.recording;
    let track = rec.recording_type == RecordingType::Track;
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
        json!(r.files[0].1)
    };
    let output_file_name = if track {
        json!(FILE_NAME_TEMPLATE.trim())
    } else {
        r.files
            .first()
            .map_or(Value::Null, |(f, _)| json!(f.filename))
    };
    let size: u64 = r.files.iter().map(|(f, _)| f.size).sum();
    let duration = match (rec.started_at, rec.stopped_at) {
        (Some(a), Some(b)) => json!(b.since(a).as_secs()),
        _ => Value::Null,
    };
    Summary {
        download_url,
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
        "audio_download_url": null,
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
    if rec.recording_type != RecordingType::Track {
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
            "audioDownloadUrl": null,
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
        assert_eq!(Status::parse("PAUSED"), None);
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
