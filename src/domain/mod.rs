//! The domain model: calls, call types, settings, sessions, participants and tracks,
//! recordings, permissions, events.
//!
//! Pure data and rules; no I/O. Services in [`crate::service`] load and save these through
//! [`crate::store`] and act on them.

pub mod broadcast;
pub mod call;
pub mod composite;
pub mod event;
pub mod ids;
pub mod layout;
pub mod names;
pub mod participant;
pub mod permissions;
pub mod recording;
pub mod session;
pub mod settings;
pub mod storage;
pub mod time;
pub mod user;

pub use broadcast::{
    BroadcastSource, Expiry, InvalidToken, MediaInfo, PublishToken, RecordFile, RecordFileChange,
    StreamRule, TokenChanges, TokenSpec, TrackInfo, stream_cid,
};
pub use call::{BUILTIN_CALL_TYPES, Call, CallType, Member};
pub use composite::{
    CompositeAudio, CompositeAudioCodec, CompositeOptions, CompositeOutputs, CompositeVideo,
    CompositeVideoCodec, Corner, Watermark,
};
pub use event::{
    CallRecording, Event, ParticipantEvent, ParticipantView, RecordingEvent, SessionEvent,
    StatusUpdate, TrackView,
};
pub use ids::{
    CallId, CallTypeName, Cid, FileName, InvalidName, RecordingId, Role, SessionId, StorageName,
    StreamName, UserId,
};
pub use participant::{
    Activity, CallActivity, Codec, LeaveReason, Participant, Pin, Track, TrackType,
};
pub use permissions::{Grants, Permission};
pub use recording::{
    InvalidTrackOptions, Recording, RecordingFile, RecordingState, RecordingType, StorageLocation,
    TrackLayer, TrackOptions, Transition,
};
pub use session::CallSession;
pub use settings::{CallSettings, SettingsPatch};
pub use storage::{ExternalStorage, S3Access};
pub use time::Timestamp;
pub use user::User;
