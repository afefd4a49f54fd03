//! Users known to reel.

use serde_json::{Map, Value};

use super::ids::{Role, UserId};
use super::time::Timestamp;

/// A user record, as upserted through the API. Users need not be upserted: a token is
/// enough to act, and a user without a record has the `user` role.
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    /// Its id.
    pub id: UserId,
    /// Its application-wide role.
    pub role: Role,
    /// Display name.
    pub name: Option<String>,
    /// Avatar URL.
    pub image: Option<String>,
    /// Custom data.
    pub custom: Map<String, Value>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}
