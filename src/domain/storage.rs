//! External storage configurations: buckets of the application's own.

use super::ids::StorageName;
use super::time::Timestamp;

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
#[derive(Clone, PartialEq, Eq)]
pub struct S3Access {
    /// Region, e.g. `us-east-1`.
    pub region: String,
    /// Access key id; `None` uses the process environment's credentials.
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<String>,
    /// Endpoint of an S3-compatible service other than AWS.
    pub endpoint_url: Option<String>,
}

impl std::fmt::Debug for S3Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Access")
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("endpoint_url", &self.endpoint_url)
            .finish()
    }
}
