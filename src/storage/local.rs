//! The local recordings directory and reel's own signed download links.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::StorageError;
use crate::auth::UrlSigner;
use crate::domain::Timestamp;

/// Files kept under a root directory, downloaded through `/files/<key>` links signed by reel.
#[derive(Debug)]
pub struct LocalDisk {
    root: PathBuf,
    base_url: String,
    signer: UrlSigner,
}

/// The path prefix under which reel serves local files.
pub const FILES_PATH: &str = "/files/";

impl LocalDisk {
    /// Files under `root`, linked from `base_url` (e.g. `http://127.0.0.1:3000`).
    pub fn new(root: PathBuf, base_url: String, signer: UrlSigner) -> Self {
        Self {
            root,
            base_url,
            signer,
        }
    }

    /// The file a key names, if the key is well-formed (relative, no `..`, no empty parts).
    pub fn resolve(&self, key: &str) -> Result<PathBuf, StorageError> {
        let rel = Path::new(key);
        let ok = !key.is_empty()
            && !key.contains('\\')
            && !key.split('/').any(|p| p.is_empty() || p.starts_with('.'))
            && rel.components().all(|c| matches!(c, Component::Normal(_)));
        if ok {
            Ok(self.root.join(rel))
        } else {
            Err(StorageError::BadKey(key.to_owned()))
        }
    }

    /// Moves the file at `path` to `key`.
    pub async fn put(&self, path: &Path, key: &str) -> Result<u64, StorageError> {
        let dest = self.resolve(key)?;
        if let Some(dir) = dest.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(StorageError::io("create directory", dir))?;
        }
        let size = tokio::fs::metadata(path)
            .await
            .map_err(StorageError::io("read", path))?
            .len();
        if tokio::fs::rename(path, &dest).await.is_err() {
            // Another file system: copy, flush, then remove the original.
            tokio::fs::copy(path, &dest)
                .await
                .map_err(StorageError::io("copy to", &dest))?;
            let f = tokio::fs::File::open(&dest)
                .await
                .map_err(StorageError::io("open", &dest))?;
            f.sync_all()
                .await
                .map_err(StorageError::io("flush", &dest))?;
            tokio::fs::remove_file(path)
                .await
                .map_err(StorageError::io("remove", path))?;
        }
        Ok(size)
    }

    /// A signed link to `key`.
    pub fn url(&self, key: &str, ttl: Duration, now: Timestamp) -> String {
        let path = format!("{FILES_PATH}{key}");
        let expires = now.after(ttl).unix_secs();
        let signature = self.signer.sign(&path, expires);
        format!(
            "{}{path}?expires={expires}&signature={signature}",
            self.base_url
        )
    }

    /// Checks a link's signature and returns the file it names.
    pub fn open_link(
        &self,
        path: &str,
        expires: i64,
        signature: &str,
        now: Timestamp,
    ) -> Result<PathBuf, LinkRefused> {
        let key = path.strip_prefix(FILES_PATH).ok_or(LinkRefused::NotFound)?;
        self.signer
            .verify(path, expires, signature, now)
            .map_err(LinkRefused::Link)?;
        self.resolve(key).map_err(|_| LinkRefused::NotFound)
    }

    /// Deletes `key`.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let path = self.resolve(key)?;
        match tokio::fs::remove_file(&path).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(StorageError::io("delete", &path)(e))
            }
            _ => Ok(()),
        }
    }
}

/// Why a download link is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkRefused {
    /// Expired or tampered.
    #[error(transparent)]
    Link(crate::auth::LinkError),
    /// Not a link to a file.
    #[error("not found")]
    NotFound,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_inside_the_root() {
        let d = LocalDisk::new("/data/rec".into(), "http://x".into(), UrlSigner::new("s"));
        assert_eq!(
            d.resolve("default/c/s/f.mp4").unwrap(),
            PathBuf::from("/data/rec/default/c/s/f.mp4")
        );
        for bad in [
            "",
            "../x",
            "a/../../x",
            "/etc/passwd",
            "a//b",
            "a/./b",
            ".work/x",
            "a\\..\\b",
        ] {
            assert!(d.resolve(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn links_round_trip() {
        let d = LocalDisk::new("/r".into(), "http://h:1".into(), UrlSigner::new("s"));
        let now = Timestamp::now();
        let url = d.url("a/b.mp4", Duration::from_secs(60), now);
        let (path, query) = url
            .strip_prefix("http://h:1")
            .unwrap()
            .split_once('?')
            .unwrap();
        let q: std::collections::HashMap<_, _> = query
            .split('&')
            .map(|kv| kv.split_once('=').unwrap())
            .collect();
        let exp: i64 = q["expires"].parse().unwrap();
        assert_eq!(
            d.open_link(path, exp, q["signature"], now).unwrap(),
            PathBuf::from("/r/a/b.mp4")
        );
        assert!(
            d.open_link("/files/a/c.mp4", exp, q["signature"], now)
                .is_err()
        );
    }
}
