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

/// Longest key prefix of an external storage, in bytes: object keys, which add the call, the
/// session and the file name to it, stay within S3's 1024.
pub const MAX_PATH_LEN: usize = 512;

/// Checks an external storage's bucket and key prefix (without its outer slashes): names,
/// not ways to other buckets. A `..` segment in a key reaches another bucket, or a directory
/// outside the store, on S3-compatible servers that keep objects as files.
pub fn check_location(bucket: &str, path: &str) -> Result<(), String> {
    let bucket_ok = !bucket.is_empty()
        && bucket.len() <= 255
        && !bucket.starts_with('.')
        && bucket
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !bucket_ok {
        return Err(format!(
            "bucket {:?} is invalid: a bucket name has up to 255 ASCII letters, digits, '.', '-' and '_', and does not start with '.'",
            bucket.chars().take(40).collect::<String>()
        ));
    }
    if path.is_empty() {
        return Ok(());
    }
    // S3's safe characters for keys, in parts separated by '/'.
    let path_ok = path.len() <= MAX_PATH_LEN
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/!-_.*'()".contains(c))
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
    if !path_ok {
        return Err(format!(
            "path {:?} is invalid: a key prefix has up to {MAX_PATH_LEN} ASCII letters, digits and !-_.*'() in parts separated by '/', none of them empty, '.' or '..'",
            path.chars().take(40).collect::<String>()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_names_not_ways_elsewhere() {
        for (bucket, path) in [("b", ""), ("my.bucket-1", "calls/2026"), ("b_", "a.b/c(1)")] {
            assert_eq!(check_location(bucket, path), Ok(()), "{bucket} {path}");
        }
        let long = "a".repeat(MAX_PATH_LEN + 1);
        for (bucket, path) in [
            ("", "x"),
            ("..", "x"),
            (".b", "x"),
            ("a/b", "x"),
            ("b", ".."),
            ("b", "../other"),
            ("b", "a/../../escaped"),
            ("b", "a//b"),
            ("b", "a/./b"),
            ("b", "a\nb"),
            ("b", "a b"),
            ("b", &long),
        ] {
            assert!(check_location(bucket, path).is_err(), "{bucket:?} {path:?}");
        }
    }
}
