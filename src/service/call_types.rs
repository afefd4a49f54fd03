//! Call types and user records: server-side administration.

use serde_json::{Map, Value};

use super::{Result, ServiceError, Services, require_server};
use crate::auth::Caller;
use crate::domain::{
    CallType, CallTypeName, Grants, Role, SettingsPatch, StorageName, Timestamp, User, UserId,
};
use crate::store::StoreError;

/// A call type to create.
#[derive(Clone, Debug)]
pub struct NewCallType {
    /// Its name.
    pub name: CallTypeName,
    /// Settings; reel's defaults where absent.
    pub settings: SettingsPatch,
    /// Grants; reel's default grants when absent.
    pub grants: Option<Grants>,
    /// Push notification settings, kept as given.
    pub notification_settings: Map<String, Value>,
    /// The external storage for its recordings.
    pub external_storage: Option<StorageName>,
}

/// Changes to a call type; absent fields stay as they are.
#[derive(Clone, Debug, Default)]
pub struct CallTypeChanges {
    /// Merged over the stored settings.
    pub settings: Option<SettingsPatch>,
    /// Replace the grants of the roles they name.
    pub grants: Option<Grants>,
    /// Replaces the notification settings.
    pub notification_settings: Option<Map<String, Value>>,
    /// `Some(None)` clears the external storage.
    pub external_storage: Option<Option<StorageName>>,
}

/// A user record to create or replace.
#[derive(Clone, Debug)]
pub struct UserChanges {
    /// The user.
    pub id: UserId,
    /// Application-wide role (default `user`).
    pub role: Option<Role>,
    /// Display name.
    pub name: Option<String>,
    /// Avatar URL.
    pub image: Option<String>,
    /// Custom data.
    pub custom: Map<String, Value>,
}

impl Services {
    async fn check_storage_exists(&self, storage: Option<&StorageName>) -> Result<()> {
        if let Some(name) = storage
            && self.store().get_storage(name).await?.is_none()
        {
            return Err(ServiceError::Invalid(format!(
                "external storage {name} does not exist"
            )));
        }
        Ok(())
    }

    /// Every call type.
    pub async fn list_call_types(&self, caller: &Caller) -> Result<Vec<CallType>> {
        require_server(caller, "list call types")?;
        Ok(self.store().list_call_types().await?)
    }

    /// One call type.
    pub async fn get_call_type(&self, caller: &Caller, name: &CallTypeName) -> Result<CallType> {
        require_server(caller, "read call types")?;
        self.store()
            .get_call_type(name)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("call type {name} does not exist")))
    }

    /// Creates a call type.
    pub async fn create_call_type(&self, caller: &Caller, new: NewCallType) -> Result<CallType> {
        require_server(caller, "create call types")?;
        self.check_storage_exists(new.external_storage.as_ref())
            .await?;
        let mut ct = CallType::new(new.name, Timestamp::now());
        ct.settings = new.settings;
        if let Some(g) = new.grants {
            ct.grants = g;
        }
        ct.notification_settings = new.notification_settings;
        ct.external_storage = new.external_storage;
        self.store()
            .insert_call_type(&ct)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    ServiceError::Conflict(format!("call type {} already exists", ct.name))
                }
                e => e.into(),
            })?;
        Ok(ct)
    }

    /// Changes a call type.
    pub async fn update_call_type(
        &self,
        caller: &Caller,
        name: &CallTypeName,
        ch: CallTypeChanges,
    ) -> Result<CallType> {
        let mut ct = self.get_call_type(caller, name).await?;
        if let Some(s) = &ch.settings {
            ct.settings.merge(s);
        }
        if let Some(g) = ch.grants {
            ct.grants.merge(g);
        }
        if let Some(n) = ch.notification_settings {
            ct.notification_settings = n;
        }
        if let Some(s) = ch.external_storage {
            self.check_storage_exists(s.as_ref()).await?;
            ct.external_storage = s;
        }
        ct.updated_at = Timestamp::now();
        if !self.store().update_call_type(&ct).await? {
            return Err(ServiceError::NotFound(format!(
                "call type {name} does not exist"
            )));
        }
        Ok(ct)
    }

    /// Deletes a call type that no call uses.
    pub async fn delete_call_type(&self, caller: &Caller, name: &CallTypeName) -> Result<()> {
        require_server(caller, "delete call types")?;
        match self.store().delete_call_type(name).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(ServiceError::NotFound(format!(
                "call type {name} does not exist"
            ))),
            Err(StoreError::Conflict(_)) => Err(ServiceError::Conflict(format!(
                "call type {name} still has calls and cannot be deleted"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates or replaces user records.
    pub async fn upsert_users(
        &self,
        caller: &Caller,
        users: Vec<UserChanges>,
    ) -> Result<Vec<User>> {
        require_server(caller, "upsert users")?;
        let mut out = Vec::with_capacity(users.len());
        for u in users {
            let now = Timestamp::now();
            let user = User {
                id: u.id,
                role: u.role.unwrap_or_else(Role::user),
                name: u.name,
                image: u.image,
                custom: u.custom,
                created_at: now,
                updated_at: now,
            };
            out.push(self.store().upsert_user(&user).await?);
        }
        Ok(out)
    }
}
