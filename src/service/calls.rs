//! Creating, reading and changing calls.

use serde_json::{Map, Value};

use super::{Result, ServiceError, Services};
use crate::auth::Caller;
use crate::domain::{
    Call, CallSession, CallSettings, CallType, Cid, Member, Permission, Recording, Role,
    SettingsPatch, Timestamp, User, UserId,
};

/// A member to add to a new call.
#[derive(Clone, Debug)]
pub struct NewMember {
    /// The member.
    pub user_id: UserId,
    /// A role in this call.
    pub role: Option<Role>,
    /// Custom data.
    pub custom: Map<String, Value>,
}

/// What a new call starts with.
#[derive(Clone, Debug, Default)]
pub struct NewCall {
    /// Who creates it; required for server-side requests, the token's user otherwise.
    pub created_by: Option<UserId>,
    /// Custom data.
    pub custom: Map<String, Value>,
    /// Settings over the call type's.
    pub settings_override: SettingsPatch,
    /// Members.
    pub members: Vec<NewMember>,
    /// Scheduled start.
    pub starts_at: Option<Timestamp>,
    /// Team.
    pub team: Option<String>,
}

/// Changes to a call; absent fields stay as they are.
#[derive(Clone, Debug, Default)]
pub struct CallChanges {
    /// Replaces the custom data.
    pub custom: Option<Map<String, Value>>,
    /// Merged over the current override.
    pub settings_override: Option<SettingsPatch>,
    /// Replaces the scheduled start.
    pub starts_at: Option<Timestamp>,
}

/// A call with everything a dialect shows about it.
#[derive(Clone, Debug)]
pub struct CallView {
    /// The call.
    pub call: Call,
    /// Its type.
    pub call_type: CallType,
    /// Its effective settings.
    pub settings: CallSettings,
    /// Its active session.
    pub session: Option<CallSession>,
    /// Its active recordings.
    pub recordings: Vec<Recording>,
    /// What the caller may do in it (the SDKs' `own_capabilities`).
    pub capabilities: Vec<&'static str>,
    /// Its creator's user record, if one was upserted.
    pub created_by: Option<User>,
}

impl Services {
    pub(super) async fn load_call_type(&self, cid: &Cid) -> Result<CallType> {
        self.store()
            .get_call_type(&cid.call_type)
            .await?
            .ok_or_else(|| {
                ServiceError::NotFound(format!("call type {} does not exist", cid.call_type))
            })
    }

    pub(super) async fn load_call(&self, cid: &Cid) -> Result<(Call, CallType)> {
        self.store()
            .get_call_with_type(cid)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("call {cid} does not exist")))
    }

    pub(super) async fn view(
        &self,
        call: Call,
        call_type: CallType,
        capabilities: Vec<&'static str>,
    ) -> Result<CallView> {
        let store = self.store();
        let (session, recordings, created_by) = tokio::try_join!(
            store.active_session(&call.cid),
            store.active_recordings(&call.cid),
            store.get_user(&call.created_by),
        )?;
        Ok(CallView {
            settings: call.settings(&call_type),
            call,
            call_type,
            session,
            recordings,
            capabilities,
            created_by,
        })
    }

    /// Returns the call, creating it first if it does not exist; true if it was created.
    pub async fn get_or_create_call(
        &self,
        caller: &Caller,
        cid: &Cid,
        new: NewCall,
    ) -> Result<(CallView, bool)> {
        if let Some((call, call_type)) = self.store().get_call_with_type(cid).await? {
            let access = self.access(caller, cid, Some(&call)).await?;
            access.require(&call_type.grants, Permission::ReadCall, cid)?;
            let caps = access.capabilities(&call_type.grants);
            return Ok((self.view(call, call_type, caps).await?, false));
        }
        let call_type = self.load_call_type(cid).await?;
        let access = self.access(caller, cid, None).await?;
        access.require(&call_type.grants, Permission::CreateCall, cid)?;
        // What a user sets up in a new call needs the permissions of changing it later.
        if new.settings_override != SettingsPatch::default() {
            access.require(&call_type.grants, Permission::UpdateCallSettings, cid)?;
        }
        if new.members.iter().any(|m| m.role.is_some()) {
            access.require(&call_type.grants, Permission::UpdateCallMember, cid)?;
        }
        let created_by = match (caller, new.created_by) {
            (Caller::Server, Some(u)) => u,
            (Caller::User(u), None) => u.user_id.clone(),
            (Caller::User(u), Some(other)) if other == u.user_id => other,
            (Caller::User(u), Some(_)) => {
                return Err(ServiceError::Forbidden(format!(
                    "user '{}' can only create calls as themselves",
                    u.user_id
                )));
            }
            (Caller::Server, None) => {
                return Err(ServiceError::Invalid(
                    "data.created_by_id or data.created_by is required for server-side requests"
                        .into(),
                ));
            }
        };
        let now = Timestamp::now();
        let mut call = Call {
            cid: cid.clone(),
            created_by,
            custom: new.custom,
            settings_override: new.settings_override,
            members: Vec::new(),
            starts_at: new.starts_at,
            team: new.team,
            created_at: now,
            updated_at: now,
        };
        call.upsert_members(new.members.into_iter().map(|m| Member {
            user_id: m.user_id,
            role: m.role,
            custom: m.custom,
            created_at: now,
            updated_at: now,
        }));
        let created = self.store().insert_call(&call).await?;
        // Another request may have created it first: show what is stored.
        let (call, call_type) = self.load_call(cid).await?;
        let access = self.access(caller, cid, Some(&call)).await?;
        let caps = access.capabilities(&call_type.grants);
        Ok((self.view(call, call_type, caps).await?, created))
    }

    /// One call.
    pub async fn get_call(&self, caller: &Caller, cid: &Cid) -> Result<CallView> {
        let (call, call_type) = self.load_call(cid).await?;
        let access = self.access(caller, cid, Some(&call)).await?;
        access.require(&call_type.grants, Permission::ReadCall, cid)?;
        let caps = access.capabilities(&call_type.grants);
        self.view(call, call_type, caps).await
    }

    /// Changes a call. The settings override is merged over the stored one.
    pub async fn update_call(
        &self,
        caller: &Caller,
        cid: &Cid,
        changes: CallChanges,
    ) -> Result<CallView> {
        let (mut call, call_type) = self.load_call(cid).await?;
        let access = self.access(caller, cid, Some(&call)).await?;
        access.require(&call_type.grants, Permission::UpdateCall, cid)?;
        if changes.settings_override.is_some() {
            access.require(&call_type.grants, Permission::UpdateCallSettings, cid)?;
        }
        let seen = call.updated_at;
        if let Some(custom) = changes.custom {
            call.custom = custom;
        }
        if let Some(o) = &changes.settings_override {
            call.settings_override.merge(o);
        }
        if let Some(t) = changes.starts_at {
            call.starts_at = Some(t);
        }
        call.updated_at = Timestamp::now().max(seen.after(std::time::Duration::from_nanos(1)));
        self.store()
            .update_call(&call, seen)
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Stale(_) => ServiceError::Conflict(format!(
                    "call {cid} was changed by another request; retry"
                )),
                e => e.into(),
            })?;
        let caps = access.capabilities(&call_type.grants);
        self.view(call, call_type, caps).await
    }
}
