//! Events that reel tells other systems about, in Stream's shapes.

use serde::Serialize;
use serde_json::Value;

use super::ids::{Cid, FileName, RecordingId, SessionId};
use super::participant::{Codec, Participant, TrackType};
use super::recording::{RecordingFile, RecordingType};
use super::time::Timestamp;

/// A recorded file as listed by the API and announced by `call.recording_ready`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CallRecording {
    /// File name, unique within the call session.
    pub filename: FileName,
    /// A signed download URL.
    pub url: String,
    /// Wall-clock time of its first media.
    pub start_time: Timestamp,
    /// Wall-clock time of its last media.
    pub end_time: Timestamp,
    /// The call session it belongs to.
    pub session_id: SessionId,
    /// What kind of recording made it.
    pub recording_type: RecordingType,
}

impl CallRecording {
    /// The listing of `file`, downloadable at `url`.
    pub fn of(file: &RecordingFile, url: String) -> Self {
        Self {
            filename: file.filename.clone(),
            url,
            start_time: file.start_time,
            end_time: file.end_time,
            session_id: file.session_id.clone(),
            recording_type: file.recording_type,
        }
    }
}

/// The fields every recording event has.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecordingEvent {
    /// `<type>:<id>` of the call.
    pub call_cid: Cid,
    /// When it happened.
    pub created_at: Timestamp,
    /// The recording's id.
    pub egress_id: RecordingId,
    /// What kind of recording.
    pub recording_type: RecordingType,
    /// Why it failed (`call.recording_failed` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The fields of a call session event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SessionEvent {
    /// `<type>:<id>` of the call.
    pub call_cid: Cid,
    /// When it happened.
    pub created_at: Timestamp,
    /// The call session.
    pub session_id: SessionId,
    /// The call, in the shape of the dialect that renders events.
    pub call: Value,
}

/// A participant as events show it (Stream's `CallParticipantResponse`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ParticipantView {
    /// The user, in the shape of the dialect that renders events.
    pub user: Value,
    /// The participant's session id.
    pub user_session_id: SessionId,
    /// The user's role in the call.
    pub role: String,
    /// When it joined.
    pub joined_at: Timestamp,
}

impl ParticipantView {
    /// The view of `p`, with `user` rendered by the caller.
    pub fn of(p: &Participant, user: Value) -> Self {
        Self {
            user,
            user_session_id: p.user_session_id.clone(),
            role: p.role.clone(),
            joined_at: p.joined_at,
        }
    }
}

/// The fields of a participant event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ParticipantEvent {
    /// `<type>:<id>` of the call.
    pub call_cid: Cid,
    /// When it happened.
    pub created_at: Timestamp,
    /// The call session.
    pub session_id: SessionId,
    /// Who.
    pub participant: ParticipantView,
}

/// A published track as events show it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrackView {
    /// Its id.
    pub track_id: String,
    /// What it carries.
    #[serde(rename = "type")]
    pub track_type: TrackType,
    /// Its codec.
    pub codec: Codec,
}

/// A dialect's own announcement of a recording's new status (RealtimeKit's
/// `recording.statusUpdate`): serialized as its body is.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusUpdate {
    /// The recorded call.
    pub cid: Cid,
    /// The whole event, in the dialect's shape.
    pub body: Value,
}

impl Serialize for StatusUpdate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.body.serialize(s)
    }
}

/// An event, serialized with its `type` as Stream's webhooks carry it (all but
/// [`Event::RecordingStatus`] and [`Event::RecordFileStatus`], which have their dialects'
/// shapes).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum Event {
    /// A recorder started writing.
    #[serde(rename = "call.recording_started")]
    RecordingStarted(RecordingEvent),
    /// A recorder stopped writing.
    #[serde(rename = "call.recording_stopped")]
    RecordingStopped(RecordingEvent),
    /// A recording failed.
    #[serde(rename = "call.recording_failed")]
    RecordingFailed(RecordingEvent),
    /// A file is uploaded and can be downloaded (one event per file).
    #[serde(rename = "call.recording_ready")]
    RecordingReady {
        /// The common fields.
        #[serde(flatten)]
        event: RecordingEvent,
        /// The file.
        call_recording: CallRecording,
    },
    /// The first participant joined: the call session began.
    #[serde(rename = "call.session_started")]
    SessionStarted(SessionEvent),
    /// The grace period after the last participant left ran out: the call session ended.
    #[serde(rename = "call.session_ended")]
    SessionEnded(SessionEvent),
    /// A participant joined the call session.
    #[serde(rename = "call.session_participant_joined")]
    ParticipantJoined(ParticipantEvent),
    /// A participant left the call session.
    #[serde(rename = "call.session_participant_left")]
    ParticipantLeft {
        /// The common fields.
        #[serde(flatten)]
        event: ParticipantEvent,
        /// How long it was in the session, in whole seconds.
        duration_seconds: u64,
        /// Why it left: `left` (it hung up) or `disconnected` (its connection was lost).
        reason: String,
    },
    /// A participant started publishing a track (reel's own event).
    #[serde(rename = "call.track_published")]
    TrackPublished {
        /// The common fields.
        #[serde(flatten)]
        event: ParticipantEvent,
        /// The track.
        track: TrackView,
    },
    /// A participant's track ended (reel's own event).
    #[serde(rename = "call.track_unpublished")]
    TrackUnpublished {
        /// The common fields.
        #[serde(flatten)]
        event: ParticipantEvent,
        /// The track.
        track: TrackView,
    },
    /// A recording's status changed, as a dialect announces it.
    #[serde(untagged)]
    RecordingStatus(StatusUpdate),
    /// A broadcast's record file changed, as the broadcast dialect announces it.
    #[serde(untagged)]
    RecordFileStatus(StatusUpdate),
}

impl Event {
    /// The `event` of a [`StatusUpdate`].
    pub const STATUS_UPDATE: &str = "recording.statusUpdate";
    /// The `type` of a record file's change.
    pub const RECORD_FILES: &str = "recordings";

    /// The event's type name.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RecordingStarted(_) => "call.recording_started",
            Self::RecordingStopped(_) => "call.recording_stopped",
            Self::RecordingFailed(_) => "call.recording_failed",
            Self::RecordingReady { .. } => "call.recording_ready",
            Self::SessionStarted(_) => "call.session_started",
            Self::SessionEnded(_) => "call.session_ended",
            Self::ParticipantJoined(_) => "call.session_participant_joined",
            Self::ParticipantLeft { .. } => "call.session_participant_left",
            Self::TrackPublished { .. } => "call.track_published",
            Self::TrackUnpublished { .. } => "call.track_unpublished",
            Self::RecordingStatus(_) => Self::STATUS_UPDATE,
            Self::RecordFileStatus(_) => Self::RECORD_FILES,
        }
    }

    /// The call it concerns: events of one call are delivered in order.
    pub fn cid(&self) -> &Cid {
        match self {
            Self::RecordingStarted(e) | Self::RecordingStopped(e) | Self::RecordingFailed(e) => {
                &e.call_cid
            }
            Self::RecordingReady { event, .. } => &event.call_cid,
            Self::SessionStarted(e) | Self::SessionEnded(e) => &e.call_cid,
            Self::ParticipantJoined(event)
            | Self::ParticipantLeft { event, .. }
            | Self::TrackPublished { event, .. }
            | Self::TrackUnpublished { event, .. } => &event.call_cid,
            Self::RecordingStatus(u) | Self::RecordFileStatus(u) => &u.cid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_shape() {
        let e = RecordingEvent {
            call_cid: Cid::parse("default:c1").unwrap(),
            created_at: Timestamp::from_unix_nanos(7),
            egress_id: RecordingId::parse("EG_1").unwrap(),
            recording_type: RecordingType::Raw,
            error: None,
        };
        let ready = Event::RecordingReady {
            event: e.clone(),
            call_recording: CallRecording {
                filename: FileName::parse("a.tar.gz").unwrap(),
                url: "http://x".into(),
                start_time: Timestamp::from_unix_nanos(1),
                end_time: Timestamp::from_unix_nanos(2),
                session_id: SessionId::parse("s1").unwrap(),
                recording_type: RecordingType::Raw,
            },
        };
        let v = serde_json::to_value(&ready).unwrap();
        assert_eq!(v["type"], "call.recording_ready");
        assert_eq!(v["call_cid"], "default:c1");
        assert_eq!(v["created_at"], 7);
        assert_eq!(v["egress_id"], "EG_1");
        assert_eq!(v["call_recording"]["start_time"], 1);
        assert_eq!(ready.kind(), "call.recording_ready");
        let v = serde_json::to_value(Event::RecordingStarted(e.clone())).unwrap();
        assert_eq!(v["type"], "call.recording_started");
        assert_eq!(v["recording_type"], "raw");
        assert!(v.get("error").is_none());
        let failed = RecordingEvent {
            error: Some("disk full".into()),
            ..e
        };
        let v = serde_json::to_value(Event::RecordingFailed(failed)).unwrap();
        assert_eq!(v["error"], "disk full");
        let body = serde_json::json!({"event": "recording.statusUpdate", "recording": {}});
        let update = Event::RecordingStatus(StatusUpdate {
            cid: Cid::parse("default:c1").unwrap(),
            body: body.clone(),
        });
        assert_eq!(
            serde_json::to_value(&update).unwrap(),
            body,
            "no type is added"
        );
    }
}
