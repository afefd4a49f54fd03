//! Call types, calls and their members.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ids::{CallTypeName, Cid, Role, StorageName, UserId};
use super::permissions::{Grants, default_grants};
use super::settings::{CallSettings, SettingsPatch};
use super::time::Timestamp;

/// A template for calls: their default settings, who may do what, where files go.
#[derive(Clone, Debug, PartialEq)]
pub struct CallType {
    /// Its name.
    pub name: CallTypeName,
    /// Settings every call of this type starts from.
    pub settings: SettingsPatch,
    /// Role -> grant names.
    pub grants: Grants,
    /// Push notification settings, kept as given.
    pub notification_settings: Map<String, Value>,
    /// The external storage recordings of this type go to, unless a start request names one.
    pub external_storage: Option<StorageName>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

impl CallType {
    /// A new call type with reel's default grants.
    pub fn new(name: CallTypeName, now: Timestamp) -> Self {
        Self {
            name,
            settings: SettingsPatch::default(),
            grants: default_grants(),
            notification_settings: Map::new(),
            external_storage: None,
            created_at: now,
            updated_at: now,
        }
    }
}

/// The call types every new installation has.
pub const BUILTIN_CALL_TYPES: &[&str] = &[
    "default",
    "audio_room",
    "livestream",
    "development",
    super::broadcast::BROADCAST_CALL_TYPE,
];

/// A member of a call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// The member.
    pub user_id: UserId,
    /// A role the member has in this call, in addition to `call_member`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Custom data.
    #[serde(default)]
    pub custom: Map<String, Value>,
    /// When the user became a member.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// A call.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// `<type>:<id>`.
    pub cid: Cid,
    /// Who created it.
    pub created_by: UserId,
    /// Custom data.
    pub custom: Map<String, Value>,
    /// This call's settings over its type's.
    pub settings_override: SettingsPatch,
    /// Its members.
    pub members: Vec<Member>,
    /// When it is scheduled to start.
    pub starts_at: Option<Timestamp>,
    /// Team, for multi-tenant applications.
    pub team: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

impl Call {
    /// Effective settings: reel's defaults, then the call type's, then this call's override.
    pub fn settings(&self, call_type: &CallType) -> CallSettings {
        CallSettings::resolve([&call_type.settings, &self.settings_override])
    }

    /// The roles `user` has in this call, given the role their token or user record gives them.
    pub fn roles_of(&self, user: &UserId, role: Role) -> Vec<Role> {
        let mut roles = vec![role];
        if let Some(m) = self.members.iter().find(|m| &m.user_id == user) {
            roles.push(Role::call_member());
            roles.extend(m.role.clone());
        }
        roles
    }

    /// Adds or updates members, keeping their first `created_at`.
    pub fn upsert_members(&mut self, members: impl IntoIterator<Item = Member>) {
        for m in members {
            match self.members.iter_mut().find(|x| x.user_id == m.user_id) {
                Some(x) => {
                    x.role = m.role;
                    x.custom = m.custom;
                    x.updated_at = m.updated_at;
                }
                None => self.members.push(m),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::CallId;

    #[test]
    fn members_get_the_call_member_role() {
        let now = Timestamp::now();
        let alice = UserId::parse("alice").unwrap();
        let mut call = Call {
            cid: Cid::new(
                CallTypeName::parse("default").unwrap(),
                CallId::parse("c").unwrap(),
            ),
            created_by: alice.clone(),
            custom: Map::new(),
            settings_override: SettingsPatch::default(),
            members: vec![],
            starts_at: None,
            team: None,
            created_at: now,
            updated_at: now,
        };
        assert_eq!(call.roles_of(&alice, Role::user()), vec![Role::user()]);
        let host = Role::parse("host").unwrap();
        call.upsert_members([Member {
            user_id: alice.clone(),
            role: Some(host.clone()),
            custom: Map::new(),
            created_at: now,
            updated_at: now,
        }]);
        call.upsert_members([Member {
            user_id: alice.clone(),
            role: Some(host.clone()),
            custom: Map::new(),
            created_at: now.after(std::time::Duration::from_secs(1)),
            updated_at: now,
        }]);
        assert_eq!(call.members.len(), 1);
        assert_eq!(call.members[0].created_at, now);
        assert_eq!(
            call.roles_of(&alice, Role::user()),
            vec![Role::user(), Role::call_member(), host]
        );
    }
}
