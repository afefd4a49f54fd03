//! External storage configurations: buckets of the application's own.

use super::ids::StorageName;
use super::time::Timestamp;
use crate::secret::Secret;

/// Where an external storage keeps files and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalStorage {
    /// Its name, referred to by call types and start requests.
    pub name: StorageName,
    /// The bucket.
    pub bucket: String,
    /// A key prefix inside the bucket (may be empty).
    pub path: String,
    /// How to reach the bucket.
    pub s3: S3Access,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// Access to an S3-compatible service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Access {
    /// Region, e.g. `us-east-1`.
    pub region: String,
    /// Access key id; `None` uses the process environment's credentials.
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<Secret>,
    /// Endpoint of an S3-compatible service other than AWS.
    pub endpoint_url: Option<String>,
}
