//! A raw archive as the `raw-recording` commands see it: a `.tar.gz`, a `.zip` or a directory
//! holding `*_timing_metadata.json` files, and per segment an `.rtpdump` whose name contains
//! the segment's `base_filename`, with its `.sdp` beside it.
//!
//! Nothing is extracted: a first pass reads the metadata and session descriptions, and each
//! later pass streams the dumps a command needs, one at a time, straight from the archive.
//! Entry names are only compared, never used as paths to write to.
//!
//! A `.tar.gz` whose gzip comment is [`DESCRIPTIONS_FIRST`] (reel packs its own so) puts every
//! metadata file and session description before its first dump: the first pass stops there
//! instead of reading the whole archive.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::metadata::{Segment, TimingMetadata};
use crate::sdp::{SdpError, StreamSdp};

/// Largest metadata file read.
const MAX_METADATA: u64 = 16 << 20;
/// Largest session description read.
const MAX_SDP: u64 = 64 << 10;

/// The gzip comment of a `.tar.gz` raw archive whose `*_timing_metadata.json` and `.sdp`
/// entries all come before its first `.rtpdump`, each dump named `{base_filename}.rtpdump`
/// beside its `.sdp`.
pub const DESCRIPTIONS_FIRST: &str = "reel raw archive: descriptions first";

/// Why an archive cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The file or directory cannot be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// What was opened.
        path: String,
        /// Why not.
        source: io::Error,
    },
    /// A file that is neither a `.tar.gz` nor a `.zip`.
    #[error("{0} is neither a .tar.gz nor a .zip archive")]
    UnknownKind(String),
    /// The archive's bytes are damaged or cut short.
    #[error("{path} is damaged or cut short: {reason}")]
    Corrupt {
        /// The archive.
        path: String,
        /// What the reader found.
        reason: String,
    },
    /// No metadata anywhere in it.
    #[error("{0} holds no *_timing_metadata.json: it is not a raw recording archive")]
    NotRaw(String),
    /// A metadata file or session description that cannot be read.
    #[error("{entry}: {reason}")]
    Entry {
        /// The entry.
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A segment whose dump is missing, or ambiguous.
    #[error("{metadata}: segment {base}: {found} .rtpdump files contain its name (one is needed)")]
    Dump {
        /// The metadata file naming the segment.
        metadata: String,
        /// The segment's base name.
        base: String,
        /// How many dumps matched.
        found: usize,
    },
    /// A dump the metadata names that the archive turned out not to hold (found only when
    /// the dumps are read, in archives that put their descriptions first).
    #[error("{0}: named by its metadata, but not in the archive")]
    MissingDump(String),
    /// A session description reel cannot use.
    #[error("{entry}: {source}")]
    Sdp {
        /// The `.sdp` entry.
        entry: String,
        /// Why.
        source: SdpError,
    },
}

/// Where the entries are.
#[derive(Clone, Debug)]
enum Source {
    Dir(PathBuf),
    TarGz(PathBuf),
    Zip(PathBuf),
}

/// A participant session of the archive.
#[derive(Clone, Debug)]
pub struct SessionFiles {
    /// Its metadata.
    pub metadata: TimingMetadata,
    /// The metadata's entry name.
    pub entry: String,
    /// Its segments, audio first, each in the metadata's order.
    pub segments: Vec<SegmentFiles>,
}

/// A segment and where its packets are.
#[derive(Clone, Debug)]
pub struct SegmentFiles {
    /// What the metadata says of it.
    pub segment: Segment,
    /// The entry name of its dump.
    pub dump: String,
    /// Its session description.
    pub sdp: StreamSdp,
}

/// What a reader of the archive's entries says after each: go on, or stop there.
pub type Step = Result<ControlFlow<()>, ArchiveError>;

/// Told how far each pass over the dumps has got (a progress bar).
pub trait Watcher: Send + Sync {
    /// A pass that will read about `total` bytes starts.
    fn started(&self, total: u64);
    /// `bytes` more were read.
    fn read(&self, bytes: u64);
    /// The pass is over.
    fn finished(&self);
}

/// An opened archive.
pub struct Archive {
    source: Source,
    /// Its participant sessions, ordered by user id and session.
    pub sessions: Vec<SessionFiles>,
    /// Bytes a pass over the dumps reads: the archive's size, or its dumps' in a directory.
    pass_bytes: u64,
    watcher: Option<Arc<dyn Watcher>>,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive")
            .field("source", &self.source)
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

impl Archive {
    /// Reads the metadata and session descriptions of the archive at `path`: a directory, or
    /// a `.tar.gz` or `.zip` file (recognized by their first bytes).
    pub fn open(path: &Path) -> Result<Archive, ArchiveError> {
        let shown = path.display().to_string();
        let open_error = |source| ArchiveError::Open {
            path: shown.clone(),
            source,
        };
        let source = if std::fs::metadata(path).map_err(open_error)?.is_dir() {
            Source::Dir(path.to_owned())
        } else {
            let mut magic = [0u8; 4];
            let n = File::open(path)
                .and_then(|mut f| f.read(&mut magic))
                .map_err(open_error)?;
            match &magic[..n] {
                [0x1f, 0x8b, ..] => Source::TarGz(path.to_owned()),
                [b'P', b'K', 3, 4] => Source::Zip(path.to_owned()),
                _ => return Err(ArchiveError::UnknownKind(shown)),
            }
        };
        let descriptions_first = match &source {
            Source::TarGz(p) => gzip_comment(p).as_deref() == Some(DESCRIPTIONS_FIRST.as_bytes()),
            _ => false,
        };
        let mut names = Vec::new();
        let mut metadata = Vec::new();
        let mut sdps = HashMap::new();
        let mut dump_bytes = 0u64;
        visit(&source, None, &mut |name, r| {
            if descriptions_first && name.ends_with(".rtpdump") {
                return Ok(ControlFlow::Break(()));
            }
            if name.ends_with("_timing_metadata.json") {
                let bytes = read_limited(r, MAX_METADATA, name)?;
                let m: TimingMetadata =
                    serde_json::from_slice(&bytes).map_err(|e| ArchiveError::Entry {
                        entry: name.to_owned(),
                        reason: format!("not timing metadata: {e}"),
                    })?;
                metadata.push((name.to_owned(), m));
            } else if name.ends_with(".sdp") {
                let bytes = read_limited(r, MAX_SDP, name)?;
                sdps.insert(
                    name.to_owned(),
                    String::from_utf8_lossy(&bytes).into_owned(),
                );
            } else if name.ends_with(".rtpdump") {
                names.push(name.to_owned());
                if let Source::Dir(root) = &source {
                    dump_bytes += std::fs::metadata(root.join(name)).map_or(0, |m| m.len());
                }
            }
            Ok(ControlFlow::Continue(()))
        })?;
        if descriptions_first {
            // The dumps were not met: each is beside its description.
            names = sdps
                .keys()
                .map(|sdp| format!("{}.rtpdump", sdp.trim_end_matches(".sdp")))
                .collect();
        }
        let pass_bytes = match &source {
            Source::Dir(_) => dump_bytes,
            Source::TarGz(p) | Source::Zip(p) => std::fs::metadata(p).map_or(0, |m| m.len()),
        };
        if metadata.is_empty() {
            return Err(ArchiveError::NotRaw(shown));
        }
        let mut sessions = Vec::with_capacity(metadata.len());
        for (entry, m) in metadata {
            let dir = entry.rsplit_once('/').map_or("", |(d, _)| d);
            let mut segments = Vec::new();
            for segment in m.segments.audio.iter().chain(&m.segments.video) {
                let dump = find_dump(&names, dir, &segment.base_filename).map_err(|found| {
                    ArchiveError::Dump {
                        metadata: entry.clone(),
                        base: segment.base_filename.clone(),
                        found,
                    }
                })?;
                let sdp_entry = format!("{}.sdp", dump.trim_end_matches(".rtpdump"));
                let text = sdps.get(&sdp_entry).ok_or_else(|| ArchiveError::Entry {
                    entry: sdp_entry.clone(),
                    reason: "missing: every dump needs its .sdp beside it".into(),
                })?;
                let sdp = StreamSdp::parse(text).map_err(|source| ArchiveError::Sdp {
                    entry: sdp_entry.clone(),
                    source,
                })?;
                segments.push(SegmentFiles {
                    segment: segment.clone(),
                    dump: dump.to_owned(),
                    sdp,
                });
            }
            sessions.push(SessionFiles {
                metadata: m,
                entry,
                segments,
            });
        }
        sessions.sort_by(|a, b| {
            let key = |s: &SessionFiles| {
                (
                    s.metadata.participant_id.clone(),
                    s.metadata.user_session_id.clone(),
                )
            };
            key(a).cmp(&key(b))
        });
        Ok(Archive {
            source,
            sessions,
            pass_bytes,
            watcher: None,
        })
    }

    /// Tells `watcher` how far each later pass over the dumps gets.
    pub fn watch(&mut self, watcher: Arc<dyn Watcher>) {
        self.watcher = Some(watcher);
    }

    /// Streams the dumps: `f` gets each one's entry name and a reader of its bytes, which it
    /// reads or leaves (what it leaves is skipped), and says whether to go on. Dumps come in
    /// the archive's own order.
    pub fn read_dumps(
        &self,
        f: &mut dyn FnMut(&str, &mut dyn BufRead) -> Step,
    ) -> Result<(), ArchiveError> {
        if let Some(w) = &self.watcher {
            w.started(self.pass_bytes);
        }
        let visited = visit(&self.source, self.watcher.as_ref(), &mut |name, r| {
            if name.ends_with(".rtpdump") {
                f(name, &mut BufReader::with_capacity(1 << 16, r))
            } else {
                Ok(ControlFlow::Continue(()))
            }
        });
        if let Some(w) = &self.watcher {
            w.finished();
        }
        visited
    }
}

/// The one dump named for `base`: in the metadata's directory if there is one there, else
/// anywhere (archives from other recorders may keep them apart); the number found otherwise.
/// A dump named exactly `{base}.rtpdump` wins over others that merely contain `base`.
fn find_dump<'a>(names: &'a [String], dir: &str, base: &str) -> Result<&'a str, usize> {
    let file_name = |n: &'a str| n.rsplit_once('/').map_or(n, |(_, f)| f);
    let exact = format!("{base}.rtpdump");
    let mut matching: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| file_name(n).contains(base))
        .collect();
    if matching.iter().any(|n| file_name(n) == exact) {
        matching.retain(|n| file_name(n) == exact);
    }
    let local: Vec<&str> = matching
        .iter()
        .copied()
        .filter(|n| n.rsplit_once('/').map_or("", |(d, _)| d) == dir)
        .collect();
    match (local.as_slice(), matching.as_slice()) {
        ([one], _) | ([], [one]) => Ok(one),
        ([], all) => Err(all.len()),
        (local, _) => Err(local.len()),
    }
}

/// Reads at most `limit` bytes of `entry`.
fn read_limited(r: &mut dyn Read, limit: u64, entry: &str) -> Result<Vec<u8>, ArchiveError> {
    let mut bytes = Vec::new();
    r.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ArchiveError::Entry {
            entry: entry.to_owned(),
            reason: format!("cannot read: {e}"),
        })?;
    if bytes.len() as u64 > limit {
        return Err(ArchiveError::Entry {
            entry: entry.to_owned(),
            reason: format!("larger than {limit} bytes"),
        });
    }
    Ok(bytes)
}

/// A reader that tells a watcher what it read.
struct Counted<R> {
    inner: R,
    watcher: Option<Arc<dyn Watcher>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(w) = &self.watcher {
            w.read(n as u64);
        }
        Ok(n)
    }
}

impl<R: Seek> Seek for Counted<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// The comment in the gzip header of the file at `path`, if it has one.
fn gzip_comment(path: &Path) -> Option<Vec<u8>> {
    let mut gz = flate2::read::GzDecoder::new(File::open(path).ok()?);
    // The header is parsed by the first read.
    gz.read_exact(&mut [0u8; 1]).ok()?;
    gz.header()?.comment().map(<[u8]>::to_vec)
}

/// Calls `f` with the name and bytes of every file in `source`, in stored order (a
/// directory's sorted by name), until it says to stop, telling `watcher` the bytes read.
/// Names use `/` and have no leading `./`.
fn visit(
    source: &Source,
    watcher: Option<&Arc<dyn Watcher>>,
    f: &mut dyn FnMut(&str, &mut dyn Read) -> Step,
) -> Result<(), ArchiveError> {
    let counted = |inner: File| Counted {
        inner,
        watcher: watcher.cloned(),
    };
    match source {
        Source::Dir(root) => {
            for path in files_under(root)? {
                let name = path
                    .strip_prefix(root)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .replace('\\', "/");
                if f(&name, &mut counted(open_file(&path)?))?.is_break() {
                    break;
                }
            }
            Ok(())
        }
        Source::TarGz(path) => {
            let corrupt = corrupt(path);
            let file = open_file(path)?;
            let gz =
                flate2::bufread::GzDecoder::new(BufReader::with_capacity(1 << 16, counted(file)));
            let mut tar = tar::Archive::new(gz);
            for entry in tar.entries().map_err(&corrupt)? {
                let mut entry = entry.map_err(&corrupt)?;
                if !entry.header().entry_type().is_file() {
                    continue;
                }
                let name = entry
                    .path()
                    .map_err(&corrupt)?
                    .to_string_lossy()
                    .into_owned();
                if f(name.trim_start_matches("./"), &mut entry)?.is_break() {
                    break;
                }
            }
            Ok(())
        }
        Source::Zip(path) => {
            let corrupt = corrupt(path);
            let file = open_file(path)?;
            let mut zip = zip::ZipArchive::new(BufReader::new(counted(file)))
                .map_err(|e| corrupt(io::Error::other(e)))?;
            for i in 0..zip.len() {
                let mut entry = zip.by_index(i).map_err(|e| corrupt(io::Error::other(e)))?;
                if !entry.is_file() {
                    continue;
                }
                let name = entry
                    .name()
                    .map_err(|e| corrupt(io::Error::other(e)))?
                    .trim_start_matches("./")
                    .to_owned();
                if f(&name, &mut entry)?.is_break() {
                    break;
                }
            }
            Ok(())
        }
    }
}

fn open_file(path: &Path) -> Result<File, ArchiveError> {
    File::open(path).map_err(|source| ArchiveError::Open {
        path: path.display().to_string(),
        source,
    })
}

fn corrupt(path: &Path) -> impl Fn(io::Error) -> ArchiveError {
    let path = path.display().to_string();
    move |e| ArchiveError::Corrupt {
        path: path.clone(),
        reason: e.to_string(),
    }
}

/// The regular files under `root`, sorted; symbolic links are not followed.
fn files_under(root: &Path) -> Result<Vec<PathBuf>, ArchiveError> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|source| ArchiveError::Open {
            path: dir.display().to_string(),
            source,
        })?;
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => dirs.push(entry.path()),
                Ok(t) if t.is_file() => files.push(entry.path()),
                _ => {}
            }
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::find_dump;

    #[test]
    fn dumps_are_found_by_their_base_name() {
        let names: Vec<String> = [
            "a/u/s/seg_1.rtpdump",
            "a/u/s/seg_10.rtpdump",
            "b/x_seg_2_v.rtpdump",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            find_dump(&names, "a/u/s", "seg_1"),
            Ok("a/u/s/seg_1.rtpdump")
        );
        assert_eq!(
            find_dump(&names, "a/u/s", "seg_10"),
            Ok("a/u/s/seg_10.rtpdump")
        );
        // Elsewhere in the tree, and containing the name.
        assert_eq!(
            find_dump(&names, "a/u/s", "seg_2"),
            Ok("b/x_seg_2_v.rtpdump")
        );
        assert_eq!(find_dump(&names, "a/u/s", "seg"), Err(2));
        assert_eq!(find_dump(&names, "a/u/s", "seg_3"), Err(0));
    }
}
