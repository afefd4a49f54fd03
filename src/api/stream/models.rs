//! Wire shapes of the Stream dialect: what the SDKs send and expect back.
//!
//! Responses carry every field the SDKs require, with neutral values for features reel
//! does not have (ring, broadcasting, transcription...). Timestamps are unix nanoseconds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::domain::{
    CallRecording, CallSession, CallSettings, CallType, Cid, ExternalStorage, Grants, Recording,
    Role, SettingsPatch, StorageName, Timestamp, User, UserId,
};
use crate::service::CallView;

// ---- requests ------------------------------------------------------------------------------

/// `POST /call/{type}/{id}`.
#[derive(Debug, Default, Deserialize)]
pub struct GetOrCreateCallRequest {
    /// The new call's data (ignored when the call exists).
    #[serde(default)]
    pub data: Option<CallRequest>,
}

/// A new call's data.
#[derive(Debug, Default, Deserialize)]
pub struct CallRequest {
    /// Creator (required for server-side requests).
    #[serde(default)]
    pub created_by_id: Option<UserId>,
    /// Creator, as a user object.
    #[serde(default)]
    pub created_by: Option<UserRef>,
    /// Custom data.
    #[serde(default)]
    pub custom: Option<Map<String, Value>>,
    /// Settings over the call type's.
    #[serde(default)]
    pub settings_override: Option<SettingsPatch>,
    /// Members.
    #[serde(default)]
    pub members: Option<Vec<MemberRequest>>,
    /// Scheduled start.
    #[serde(default)]
    pub starts_at: Option<Timestamp>,
    /// Team.
    #[serde(default)]
    pub team: Option<String>,
}

/// A user named by id.
#[derive(Debug, Deserialize)]
pub struct UserRef {
    /// The user.
    pub id: UserId,
}

/// A member to add.
#[derive(Debug, Deserialize)]
pub struct MemberRequest {
    /// The member.
    pub user_id: UserId,
    /// A role in the call.
    #[serde(default)]
    pub role: Option<Role>,
    /// Custom data.
    #[serde(default)]
    pub custom: Option<Map<String, Value>>,
}

/// `PATCH /call/{type}/{id}`.
#[derive(Debug, Default, Deserialize)]
pub struct UpdateCallRequest {
    /// Replaces the custom data.
    #[serde(default)]
    pub custom: Option<Map<String, Value>>,
    /// Merged over the current override.
    #[serde(default)]
    pub settings_override: Option<SettingsPatch>,
    /// Scheduled start.
    #[serde(default)]
    pub starts_at: Option<Timestamp>,
}

/// `POST .../recordings/{type}/start`.
#[derive(Debug, Default, Deserialize)]
pub struct StartRecordingRequest {
    /// External storage for this recording's files (empty: the call type's).
    #[serde(default)]
    pub recording_external_storage: Option<String>,
}

/// `POST /calltypes`.
#[derive(Debug, Deserialize)]
pub struct CreateCallTypeRequest {
    /// Its name.
    pub name: crate::domain::CallTypeName,
    /// Settings.
    #[serde(default)]
    pub settings: Option<SettingsPatch>,
    /// Grants.
    #[serde(default)]
    pub grants: Option<Grants>,
    /// Notification settings.
    #[serde(default)]
    pub notification_settings: Option<Map<String, Value>>,
    /// External storage name.
    #[serde(default)]
    pub external_storage: Option<String>,
}

/// `PUT /calltypes/{name}`.
#[derive(Debug, Default, Deserialize)]
pub struct UpdateCallTypeRequest {
    /// Merged over the stored settings.
    #[serde(default)]
    pub settings: Option<SettingsPatch>,
    /// Replace the grants of the roles named.
    #[serde(default)]
    pub grants: Option<Grants>,
    /// Replaces the notification settings.
    #[serde(default)]
    pub notification_settings: Option<Map<String, Value>>,
    /// External storage name; empty clears it.
    #[serde(default)]
    pub external_storage: Option<String>,
}

/// S3 access in external storage requests.
#[derive(Debug, Deserialize)]
pub struct S3Request {
    /// Region.
    pub s3_region: String,
    /// Access key id.
    #[serde(default)]
    pub s3_api_key: Option<String>,
    /// Secret access key.
    #[serde(default)]
    pub s3_secret: Option<String>,
    /// Endpoint of an S3-compatible service.
    #[serde(default)]
    pub s3_custom_endpoint_url: Option<String>,
}

/// `POST /external_storage` (with `name`) and `PUT /external_storage/{name}` (without).
#[derive(Debug, Deserialize)]
pub struct ExternalStorageRequest {
    /// Its name (create only).
    #[serde(default)]
    pub name: Option<StorageName>,
    /// `s3` (the only type reel writes to).
    pub storage_type: String,
    /// Bucket.
    pub bucket: String,
    /// Key prefix.
    #[serde(default)]
    pub path: Option<String>,
    /// S3 access.
    #[serde(default)]
    pub aws_s3: Option<S3Request>,
}

/// `POST /api/v2/users`.
#[derive(Debug, Deserialize)]
pub struct UpdateUsersRequest {
    /// Users by id.
    pub users: BTreeMap<String, UserRequest>,
}

/// A user to upsert.
#[derive(Debug, Deserialize)]
pub struct UserRequest {
    /// Its id.
    pub id: UserId,
    /// Application-wide role.
    #[serde(default)]
    pub role: Option<Role>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Avatar URL.
    #[serde(default)]
    pub image: Option<String>,
    /// Custom data.
    #[serde(default)]
    pub custom: Option<Map<String, Value>>,
}

// ---- responses -----------------------------------------------------------------------------

/// A user as the SDKs expect it.
pub fn user_response(id: &UserId, user: Option<&User>, fallback_time: Timestamp) -> Value {
    let (role, name, image, custom, created, updated) = match user {
        Some(u) => (
            u.role.as_str(),
            u.name.clone(),
            u.image.clone(),
            Value::Object(u.custom.clone()),
            u.created_at,
            u.updated_at,
        ),
        None => ("user", None, None, json!({}), fallback_time, fallback_time),
    };
    let mut v = json!({
        "id": id, "role": role, "custom": custom, "created_at": created, "updated_at": updated,
        "banned": false, "online": false, "invisible": false, "shadow_banned": false,
        "language": "", "blocked_user_ids": [], "teams": []
    });
    if let Some(n) = name {
        v["name"] = json!(n);
    }
    if let Some(i) = image {
        v["image"] = json!(i);
    }
    v
}

/// A user as the users endpoints answer it: [`user_response`] plus the chat counters the
/// SDKs' full user model requires (always empty in reel).
pub fn full_user_response(u: &User) -> Value {
    let mut v = user_response(&u.id, Some(u), u.created_at);
    for (k, zero) in [
        ("total_unread_count", json!(0)),
        ("unread_channels", json!(0)),
        ("unread_count", json!(0)),
        ("unread_threads", json!(0)),
        ("channel_mutes", json!([])),
        ("devices", json!([])),
        ("mutes", json!([])),
    ] {
        v[k] = zero;
    }
    v
}

fn session_response(s: &CallSession) -> Value {
    json!({
        "id": s.id, "started_at": s.started_at, "participants": [], "participants_count_by_role": {},
        "anonymous_participant_count": 0, "accepted_by": {}, "missed_by": {}, "rejected_by": {}
    })
}

fn egress_response(recordings: &[Recording]) -> Value {
    let mut egress = json!({"broadcasting": false, "rtmps": []});
    for r in recordings {
        let key = match r.recording_type {
            crate::domain::RecordingType::Composite => "composite_recording",
            crate::domain::RecordingType::Individual => "individual_recording",
            crate::domain::RecordingType::Raw => "raw_recording",
            crate::domain::RecordingType::Track => "track_recording",
            crate::domain::RecordingType::Broadcast => "broadcast_recording",
        };
        egress[key] = json!({"status": r.state.as_str()});
    }
    egress
}

/// A call as the SDKs expect it.
pub fn call_response(v: &CallView, base_url: &str) -> Value {
    let c = &v.call;
    let cid: &Cid = &c.cid;
    let mut call = json!({
        "cid": cid, "id": cid.id, "type": cid.call_type,
        "created_at": c.created_at, "updated_at": c.updated_at,
        "created_by": user_response(&c.created_by, v.created_by.as_ref(), c.created_at),
        "custom": c.custom,
        "settings": &v.settings,
        "current_session_id": v.session.as_ref().map(|s| s.id.as_str()).unwrap_or(""),
        "recording": v.recordings.iter().any(|r| r.recording_type == crate::domain::RecordingType::Composite),
        "egress": egress_response(&v.recordings),
        "ingress": {
            "rtmp": {"address": ""}, "srt": {"address": ""},
            "whip": {"address": format!("{base_url}/whip/{}/{}", cid.call_type, cid.id)}
        },
        "backstage": false, "captioning": false, "transcribing": false, "translating": false,
        "blocked_user_ids": []
    });
    if let Some(t) = c.starts_at {
        call["starts_at"] = json!(t);
    }
    if let Some(t) = &c.team {
        call["team"] = json!(t);
    }
    if let Some(s) = &v.session {
        call["session"] = session_response(s);
    }
    call
}

/// The members of a call as the SDKs expect them.
pub fn members_response(v: &CallView) -> Vec<Value> {
    v.call
        .members
        .iter()
        .map(|m| {
            let mut j = json!({
                "user_id": m.user_id, "user": user_response(&m.user_id, None, m.created_at),
                "custom": m.custom, "created_at": m.created_at, "updated_at": m.updated_at
            });
            if let Some(r) = &m.role {
                j["role"] = json!(r);
            }
            j
        })
        .collect()
}

/// `{call, members, own_capabilities}`.
pub fn call_envelope(v: &CallView, base_url: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("call".into(), call_response(v, base_url));
    m.insert("members".into(), Value::Array(members_response(v)));
    m.insert("own_capabilities".into(), json!(v.capabilities));
    m
}

/// Notification settings with every field the SDKs require.
fn notification_settings(stored: &Map<String, Value>) -> Value {
    let event = json!({"enabled": false, "apns": {}, "fcm": {}});
    let mut base = json!({
        "enabled": true,
        "call_live_started": event, "call_missed": event, "call_notification": event,
        "call_ring": event, "session_started": event
    });
    if let Value::Object(b) = &mut base {
        for (k, v) in stored {
            b.insert(k.clone(), v.clone());
        }
    }
    base
}

/// A call type as the SDKs expect it.
pub fn call_type_response(ct: &CallType) -> Map<String, Value> {
    let v = json!({
        "name": ct.name,
        "settings": CallSettings::resolve([&ct.settings]),
        "grants": ct.grants,
        "notification_settings": notification_settings(&ct.notification_settings),
        "created_at": ct.created_at,
        "updated_at": ct.updated_at,
    });
    let Value::Object(mut m) = v else {
        unreachable!("a json! object literal")
    };
    if let Some(s) = &ct.external_storage {
        m.insert("external_storage".into(), json!(s));
    }
    m
}

/// An external storage as the SDKs expect it (secrets are never returned).
pub fn storage_response(s: &ExternalStorage) -> Value {
    json!({"name": s.name, "bucket": s.bucket, "path": s.path, "type": "s3"})
}

/// `{recordings: [...]}`.
#[derive(Serialize)]
pub struct ListRecordingsResponse {
    /// The files.
    pub recordings: Vec<CallRecording>,
}

/// Renders events' calls and users as the Stream SDKs expect them.
pub struct StreamShapes {
    base_url: String,
}

impl StreamShapes {
    /// Shapes whose links start with `base_url`.
    pub fn new(base_url: String) -> Self {
        Self { base_url }
    }

    /// A call in events.
    pub fn call(&self, view: &CallView) -> Value {
        call_response(view, &self.base_url)
    }

    /// A user in events.
    pub fn user(&self, id: &UserId, user: Option<&User>) -> Value {
        user_response(id, user, Timestamp::now())
    }
}
