//! Still pictures of a broadcast source, taken while it is live: the first once it has
//! lasted as long as a kept broadcast must (so a broadcast discarded as too short seldom has
//! one: only when its media spans a little less than the time it was live), then one every
//! [`EVERY`], each a key frame asked for when due and decoded on its own.
//! Each picture is handed over as it is made (and may be uploaded and gone from the disk at
//! once), so the pictures that may still become the poster, the one nearest the middle of
//! the file, are kept aside until the file is finished. After a crash, [`recover`] hands
//! over the pictures that were written but not yet handed over.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing::warn;

use super::FinishedFile;
use super::participant_files::{KeyFrame, ParticipantFiles};
use super::worker::Outlet;
use crate::domain::recording::{POSTER_LAYER, THUMBNAILS_LAYER};
use crate::domain::{FileName, Timestamp, names};

/// How often a picture is taken.
pub const EVERY: Duration = Duration::from_secs(30);
/// The widest picture, in pixels.
const MAX_WIDTH: u32 = 640;
/// Where the pictures that may become the poster are kept, in the work directory.
const KEPT_DIR: &str = "poster-candidates";
/// How long to wait for an asked key frame before asking again.
const ASK_AGAIN: Duration = Duration::from_secs(1);

/// The pictures of one source.
pub struct Stills {
    dir: PathBuf,
    stream: String,
    source: Option<String>,
    /// The first picture's time: the first packet's, plus `first_after`.
    first_after: Duration,
    /// When the next picture is due (from the first packet on).
    due: Option<Timestamp>,
    /// When a key frame was last asked for, while waiting for one.
    asked: Option<Timestamp>,
    /// The video track to ask key frames of.
    video: Option<String>,
    /// Where the pictures that may become the poster are kept.
    kept_dir: PathBuf,
    /// Those pictures: their time and copy, oldest first.
    kept: Vec<(Timestamp, PathBuf)>,
    /// The first packet's time.
    first: Option<Timestamp>,
}

impl Stills {
    /// Pictures written in `dir`, named after `stream` and `source`, the first `first_after`
    /// the first packet.
    pub fn new(dir: &Path, stream: &str, source: Option<&str>, first_after: Duration) -> Self {
        Self {
            dir: dir.to_owned(),
            stream: stream.to_owned(),
            source: source.map(str::to_owned),
            first_after,
            due: None,
            asked: None,
            video: None,
            kept_dir: dir.join(KEPT_DIR),
            kept: Vec::new(),
            first: None,
        }
    }

    /// Notes a packet of the source's track `track_id` (video or not).
    pub fn packet(&mut self, track_id: &str, video: bool) {
        let first = *self.first.get_or_insert_with(Timestamp::now);
        self.due
            .get_or_insert_with(|| first.after(self.first_after));
        if video && self.video.is_none() {
            self.video = Some(track_id.to_owned());
        }
    }

    /// Asks for a key frame when a picture is due, and makes the picture of the one that
    /// came, handing it over.
    pub fn step(&mut self, files: &mut ParticipantFiles, out: &Outlet) {
        if let Some(k) = files.take_keyframe() {
            self.asked = None;
            // The next is due a whole interval after this one, however late this one came.
            let at = Timestamp::from_unix_nanos(k.pts_us * 1000);
            self.due = self.due.map(|d| d.after(EVERY).max(at.after(EVERY)));
            self.take(&k, out);
        }
        let (Some(due), Some(video)) = (self.due, &self.video) else {
            return;
        };
        let now = Timestamp::now();
        if now >= due && self.asked.is_none_or(|at| now.since(at) >= ASK_AGAIN) {
            files.catch_keyframe();
            out.ask_keyframe(video);
            self.asked = Some(now);
        }
    }

    fn take(&mut self, k: &KeyFrame, out: &Outlet) {
        let at = Timestamp::from_unix_nanos(k.pts_us * 1000);
        let name = names::broadcast_file(
            &self.stream,
            self.source.as_deref(),
            at.unix_millis(),
            "jpg",
        );
        let made = crate::mux::thumbnail(k.codec, &k.data, MAX_WIDTH)
            .map_err(|e| e.to_string())
            .and_then(|jpeg| Ok((write(&self.dir, &name, &jpeg)?, jpeg)));
        match made {
            Ok((path, jpeg)) => {
                self.keep(at, &name, &jpeg);
                hand_over(out, path, &name, at, THUMBNAILS_LAYER);
            }
            Err(e) => {
                warn!(error = %e, stream = %self.stream, "cannot take a picture of a broadcast")
            }
        }
    }

    /// Keeps a copy of the picture `name` taken `at`, and forgets those that can no longer
    /// be nearest the middle: the file lasts at least until now, so its middle is at least
    /// halfway from the first packet to now, and of the pictures before that point only
    /// the last may still be the nearest.
    fn keep(&mut self, at: Timestamp, name: &str, jpeg: &[u8]) {
        let copied = std::fs::create_dir_all(&self.kept_dir)
            .map_err(|e| e.to_string())
            .and_then(|()| write(&self.kept_dir, name, jpeg));
        match copied {
            Ok(path) => self.kept.push((at, path)),
            Err(e) => warn!(error = %e, "cannot keep a picture for the poster"),
        }
        let Some(first) = self.first else { return };
        let middle = first.after(at.since(first) / 2);
        let before = self.kept.iter().filter(|(t, _)| *t <= middle).count();
        for (_, path) in self.kept.drain(..before.saturating_sub(1)) {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Hands over the poster of the finished file `f`: a copy of the picture nearest its
    /// middle, if one was taken.
    pub fn poster(&self, f: &FinishedFile, out: &Outlet) {
        let middle = f.start_time.after(f.end_time.since(f.start_time) / 2);
        let distance = |at: Timestamp| at.since(middle).max(middle.since(at));
        let Some((_, nearest)) = self.kept.iter().min_by_key(|(at, _)| distance(*at)) else {
            return;
        };
        let stem = f
            .filename
            .as_str()
            .rsplit_once('.')
            .map_or(f.filename.as_str(), |(s, _)| s);
        let name = format!("{stem}_poster.jpg");
        let copied = std::fs::read(nearest)
            .map_err(|e| format!("cannot read {}: {e}", nearest.display()))
            .and_then(|jpeg| write(&self.dir, &name, &jpeg));
        match copied {
            Ok(path) => hand_over(out, path, &name, middle, POSTER_LAYER),
            Err(e) => warn!(error = %e, "cannot keep a broadcast's poster"),
        }
    }
}

impl Drop for Stills {
    fn drop(&mut self) {
        if !self.kept.is_empty() {
            let _ = std::fs::remove_dir_all(&self.kept_dir);
        }
    }
}

/// After a crash: the pictures in `dir` that were not handed over (each was written whole),
/// to hand over; what was half written, and the copies kept for the poster, are removed.
pub fn recover(dir: &Path, handed_over: &HashSet<String>) -> Vec<FinishedFile> {
    let _ = std::fs::remove_dir_all(dir.join(KEPT_DIR));
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        if name.ends_with(".jpg.part") {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        if !name.ends_with(".jpg") || handed_over.contains(&name) {
            continue;
        }
        let Ok(filename) = FileName::parse(name.clone()) else {
            continue;
        };
        let at = entry
            .metadata()
            .and_then(|m| m.modified())
            .map_or_else(|_| Timestamp::now(), Timestamp::from);
        let layer = if name.ends_with("_poster.jpg") {
            POSTER_LAYER
        } else {
            THUMBNAILS_LAYER
        };
        found.push(FinishedFile {
            path,
            filename,
            start_time: at,
            end_time: at,
            layer: Some(layer.to_owned()),
        });
    }
    found
}

/// Writes `jpeg` as `name` in `dir` whole: a crash leaves it absent, never cut short.
fn write(dir: &Path, name: &str, jpeg: &[u8]) -> Result<PathBuf, String> {
    let path = dir.join(name);
    let part = dir.join(format!("{name}.part"));
    std::fs::write(&part, jpeg)
        .and_then(|()| std::fs::rename(&part, &path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

fn hand_over(out: &Outlet, path: PathBuf, name: &str, at: Timestamp, layer: &str) {
    match FileName::parse(name.to_owned()) {
        Ok(filename) => out.hand_over(FinishedFile {
            path,
            filename,
            start_time: at,
            end_time: at,
            layer: Some(layer.to_owned()),
        }),
        Err(e) => warn!(error = %e, "a picture's name is not a file name"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_a_crash_whole_pictures_are_handed_over_and_the_rest_removed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for name in [
            "s_main_1.jpg",
            "s_main_2.jpg",
            "s_main_9_poster.jpg",
            "s_main_3.jpg.part",
        ] {
            std::fs::write(d.join(name), b"\xFF\xD8").unwrap();
        }
        std::fs::create_dir(d.join(KEPT_DIR)).unwrap();
        std::fs::write(d.join(KEPT_DIR).join("s_main_1.jpg"), b"x").unwrap();
        std::fs::write(d.join("s_main_9.webm"), b"x").unwrap();
        let handed_over = HashSet::from(["s_main_1.jpg".to_owned()]);
        let mut found: Vec<_> = recover(d, &handed_over)
            .into_iter()
            .map(|f| (f.filename.to_string(), f.layer.unwrap()))
            .collect();
        found.sort();
        assert_eq!(
            found,
            [
                ("s_main_2.jpg".to_owned(), THUMBNAILS_LAYER.to_owned()),
                ("s_main_9_poster.jpg".to_owned(), POSTER_LAYER.to_owned()),
            ]
        );
        assert!(!d.join("s_main_3.jpg.part").exists());
        assert!(!d.join(KEPT_DIR).exists());
        assert!(d.join("s_main_9.webm").exists());
    }
}
