//! Who may do what: permissions, per-role grants and the capabilities shown to clients.
//!
//! A call type's `grants` map a role to a list of grant names. A grant name is either one of
//! the four recording permissions (`StartRecording`, `StopRecording`, `ListRecordings`,
//! `DeleteRecording`), which cover every recording type, or a capability name as the SDKs know
//! it (`start-raw-record-call`, `join-call`, ...), which covers just that.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use super::ids::Role;
use super::recording::RecordingType;

/// An action on recordings that needs permission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// Start a recording of this type.
    StartRecording(RecordingType),
    /// Stop a recording of this type.
    StopRecording(RecordingType),
    /// List a call's recordings.
    ListRecordings,
    /// Delete a recorded file.
    DeleteRecording,
    /// Create a call.
    CreateCall,
    /// Read a call.
    ReadCall,
    /// Change a call.
    UpdateCall,
    /// Change a call's settings (its `settings_override`).
    UpdateCallSettings,
    /// Give members of a call a role.
    UpdateCallMember,
    /// Pin a participant for everyone in the call.
    PinForEveryone,
}

/// The capability names the SDKs know (their `OwnCapability` values), sorted.
pub const CAPABILITIES: &[&str] = &[
    "block-users",
    "change-max-duration",
    "create-call",
    "create-reaction",
    "enable-noise-cancellation",
    "end-call",
    "join-backstage",
    "join-call",
    "join-ended-call",
    "kick-user",
    "mute-users",
    "pin-for-everyone",
    "read-call",
    "remove-call-member",
    "screenshare",
    "send-audio",
    "send-video",
    "start-broadcast-call",
    "start-closed-captions-call",
    "start-frame-record-call",
    "start-individual-record-call",
    "start-raw-record-call",
    "start-record-call",
    "start-transcription-call",
    "stop-broadcast-call",
    "stop-closed-captions-call",
    "stop-frame-record-call",
    "stop-individual-record-call",
    "stop-raw-record-call",
    "stop-record-call",
    "stop-transcription-call",
    "update-call",
    "update-call-member",
    "update-call-permissions",
    "update-call-settings",
];

/// Grant names that cover every recording type.
pub const PERMISSION_NAMES: &[&str] = &[
    "StartRecording",
    "StopRecording",
    "ListRecordings",
    "DeleteRecording",
];

fn start_capability(t: RecordingType) -> &'static str {
    match t {
        RecordingType::Composite => "start-record-call",
        RecordingType::Individual => "start-individual-record-call",
        RecordingType::Raw => "start-raw-record-call",
        RecordingType::Track => "start-track-record-call",
        RecordingType::Broadcast => "start-broadcast-record-call",
    }
}

fn stop_capability(t: RecordingType) -> &'static str {
    match t {
        RecordingType::Composite => "stop-record-call",
        RecordingType::Individual => "stop-individual-record-call",
        RecordingType::Raw => "stop-raw-record-call",
        RecordingType::Track => "stop-track-record-call",
        RecordingType::Broadcast => "stop-broadcast-record-call",
    }
}

impl Permission {
    /// Whether grant name `grant` allows this action.
    fn granted_by(self, grant: &str) -> bool {
        match self {
            Self::StartRecording(t) => grant == "StartRecording" || grant == start_capability(t),
            Self::StopRecording(t) => grant == "StopRecording" || grant == stop_capability(t),
            Self::ListRecordings => grant == "ListRecordings",
            Self::DeleteRecording => grant == "DeleteRecording",
            Self::CreateCall => grant == "create-call",
            Self::ReadCall => grant == "read-call",
            Self::UpdateCall => grant == "update-call",
            Self::UpdateCallSettings => grant == "update-call-settings",
            Self::UpdateCallMember => grant == "update-call-member",
            Self::PinForEveryone => grant == "pin-for-everyone",
        }
    }

    /// The name used in error messages, as Stream's errors name actions.
    pub fn name(self) -> &'static str {
        match self {
            Self::StartRecording(_) => "StartRecording",
            Self::StopRecording(_) => "StopRecording",
            Self::ListRecordings => "ListRecordings",
            Self::DeleteRecording => "DeleteRecording",
            Self::CreateCall => "CreateCall",
            Self::ReadCall => "ReadCall",
            Self::UpdateCall => "UpdateCall",
            Self::UpdateCallSettings => "UpdateCallSettings",
            Self::UpdateCallMember => "UpdateCallMember",
            Self::PinForEveryone => "PinForEveryone",
        }
    }
}

/// A call type's grants: role -> grant names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Grants(BTreeMap<Role, Vec<String>>);

/// A grant name that is neither a permission nor a capability.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown grant {0:?}: expected one of StartRecording, StopRecording, ListRecordings, DeleteRecording or a capability such as start-record-call"
)]
pub struct UnknownGrant(pub String);

impl Grants {
    /// Grants from a map, checking every name.
    pub fn new(map: BTreeMap<Role, Vec<String>>) -> Result<Self, UnknownGrant> {
        for name in map.values().flatten() {
            let known = CAPABILITIES.binary_search(&name.as_str()).is_ok()
                || PERMISSION_NAMES.contains(&name.as_str());
            if !known {
                return Err(UnknownGrant(name.clone()));
            }
        }
        Ok(Self(map))
    }

    /// Grants as stored: they were checked when written, and a name a later version no
    /// longer knows grants nothing rather than making the call type unreadable.
    pub fn stored(map: BTreeMap<Role, Vec<String>>) -> Self {
        Self(map)
    }

    /// Replaces the grants of the roles present in `other`, keeping the rest.
    pub fn merge(&mut self, other: Grants) {
        self.0.extend(other.0);
    }

    fn names<'a>(&'a self, roles: &'a [Role]) -> impl Iterator<Item = &'a str> + 'a {
        roles
            .iter()
            .filter_map(|r| self.0.get(r))
            .flatten()
            .map(String::as_str)
    }

    /// Whether any of `roles` may do `p`.
    pub fn allows(&self, roles: &[Role], p: Permission) -> bool {
        self.names(roles).any(|n| p.granted_by(n))
    }

    /// The capability names that `roles` have, in the SDKs' vocabulary, sorted.
    pub fn capabilities(&self, roles: &[Role]) -> Vec<&'static str> {
        CAPABILITIES
            .iter()
            .copied()
            .filter(|cap| {
                self.names(roles).any(|n| {
                    n == *cap
                        || (n == "StartRecording"
                            && RecordingType::CALLS
                                .iter()
                                .any(|t| start_capability(*t) == *cap))
                        || (n == "StopRecording"
                            && RecordingType::CALLS
                                .iter()
                                .any(|t| stop_capability(*t) == *cap))
                })
            })
            .collect()
    }

    /// Every capability: what server-side callers have.
    pub fn all_capabilities() -> Vec<&'static str> {
        CAPABILITIES.to_vec()
    }

    /// The map itself.
    pub fn as_map(&self) -> &BTreeMap<Role, Vec<String>> {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Grants {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::new(BTreeMap::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The grants of the call types reel creates on first start.
///
/// `admin` and `host` may do everything; members of a call may list its recordings;
/// any user may create, join and read calls.
pub fn default_grants() -> Grants {
    let user: Vec<String> = [
        "create-call",
        "join-call",
        "read-call",
        "send-audio",
        "send-video",
        "screenshare",
    ]
    .map(String::from)
    .to_vec();
    let mut member = user.clone();
    member.push("ListRecordings".into());
    let mut all: Vec<String> = CAPABILITIES.iter().map(|s| s.to_string()).collect();
    all.extend(PERMISSION_NAMES.iter().map(|s| s.to_string()));
    let map = BTreeMap::from([
        (Role::user(), user),
        (Role::call_member(), member),
        (Role::parse("admin").expect("valid role"), all.clone()),
        (Role::parse("host").expect("valid role"), all),
    ]);
    Grants(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(names: &[&str]) -> Vec<Role> {
        names.iter().map(|n| Role::parse(*n).unwrap()).collect()
    }

    #[test]
    fn permission_names_cover_all_types_capabilities_one() {
        let g: Grants = serde_json::from_str(
            r#"{"user": ["StartRecording"], "editor": ["stop-raw-record-call", "DeleteRecording"]}"#,
        )
        .unwrap();
        for t in RecordingType::ALL {
            assert!(g.allows(&roles(&["user"]), Permission::StartRecording(t)));
            assert!(!g.allows(&roles(&["user"]), Permission::StopRecording(t)));
        }
        let editor = roles(&["editor"]);
        assert!(g.allows(&editor, Permission::StopRecording(RecordingType::Raw)));
        assert!(!g.allows(&editor, Permission::StopRecording(RecordingType::Composite)));
        assert!(g.allows(&editor, Permission::DeleteRecording));
        assert!(!g.allows(&editor, Permission::ListRecordings));
        assert!(!g.allows(&roles(&["nobody"]), Permission::ListRecordings));
        assert_eq!(
            g.capabilities(&roles(&["user", "editor"])),
            vec![
                "start-individual-record-call",
                "start-raw-record-call",
                "start-record-call",
                "stop-raw-record-call"
            ]
        );
    }

    #[test]
    fn capabilities_are_sorted() {
        assert!(CAPABILITIES.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn unknown_grant_is_rejected() {
        let e = serde_json::from_str::<Grants>(r#"{"user": ["StartRecordings"]}"#).unwrap_err();
        assert!(e.to_string().contains("StartRecordings"), "{e}");
    }

    #[test]
    fn defaults() {
        let g = default_grants();
        assert!(g.allows(&roles(&["admin"]), Permission::DeleteRecording));
        assert!(g.allows(&roles(&["call_member"]), Permission::ListRecordings));
        assert!(!g.allows(&roles(&["user"]), Permission::ListRecordings));
        assert!(!g.allows(
            &roles(&["user", "call_member"]),
            Permission::StartRecording(RecordingType::Raw)
        ));
    }
}
