//! What the `raw-recording` commands work on and what they make: which participants' tracks
//! (a [`Selection`]), what to fill, the files written, and why writing failed.

use std::path::PathBuf;

use serde::Serialize;

use crate::mux::MuxError;
use crate::rtp::archive::{Archive, ArchiveError};
use crate::rtp::rtpdump::DumpError;

/// Which participants' tracks a command works on: everyone, or one user, participant
/// session or track.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Only this user's sessions.
    pub user_id: Option<String>,
    /// Only this participant session.
    pub session_id: Option<String>,
    /// Only the segments of this track.
    pub track_id: Option<String>,
}

/// The kind of media a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Microphone or screen-share audio.
    Audio,
    /// Camera or screen share.
    Video,
}

/// What to fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fill {
    /// Gaps between segments: silence, or the last picture held.
    pub gaps: bool,
    /// Lost audio and DTX silences inside a segment.
    pub dtx: bool,
}

/// Why extracting failed.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The archive could not be read.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// An id the selection names is not in the archive.
    #[error(
        "no {what} {id:?} in this archive (`reel raw-recording list-tracks --format {list}` lists them)"
    )]
    UnknownId {
        /// `user`, `session` or `track`.
        what: &'static str,
        /// The id given.
        id: String,
        /// The listing that shows the ids.
        list: &'static str,
    },
    /// A segment's codec is one reel cannot put in a file.
    #[error("{sdp}: codec {codec:?} is not one of opus, VP8, VP9, H264, AV1")]
    UnknownCodec {
        /// The segment's `.sdp` entry.
        sdp: String,
        /// The codec named.
        codec: String,
    },
    /// A dump that cannot be read.
    #[error("{dump}: {source}")]
    Dump {
        /// The dump's entry.
        dump: String,
        /// Why.
        source: DumpError,
    },
    /// The output directory cannot be written.
    #[error("cannot write to {dir}: {source}")]
    Output {
        /// The directory.
        dir: String,
        /// Why.
        source: std::io::Error,
    },
    /// Writing a file failed.
    #[error(transparent)]
    Mux(#[from] MuxError),
}

/// A file written.
#[derive(Clone, Debug, Serialize)]
pub struct Extracted {
    /// Where it is.
    pub path: PathBuf,
    /// The user id.
    pub user_id: String,
    /// The participant session.
    pub session_id: String,
    /// What it holds.
    pub kind: Kind,
    /// Whether it is a screen share's.
    pub screenshare: bool,
    /// Its length in seconds.
    pub duration_s: f64,
    /// Wall-clock time of its first frame, unix µs.
    pub start_us: i64,
    /// How much later than the sender's clock (its first sender report) the file puts its
    /// frames, if the metadata has a report: what aligns audio and video.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender_offset_us: Option<i64>,
    /// Packets read, lost and filled.
    pub packets: u64,
    /// Packets never received.
    pub lost: u64,
    /// Empty audio packets put in gaps.
    pub filled: u64,
    /// Of those, the ones made good again (short holes, concealed and coded anew).
    pub concealed: u64,
    /// Audio: whether any packet was coded in stereo (browsers send mono).
    pub stereo: bool,
}

/// Checks that the ids `selection` names exist in `archive`.
pub fn check_selection(archive: &Archive, selection: &Selection) -> Result<(), ExtractError> {
    let sessions = || archive.sessions.iter();
    let checks = [
        (&selection.user_id, "user", "users"),
        (&selection.session_id, "session", "sessions"),
        (&selection.track_id, "track", "tracks"),
    ];
    for (id, what, list) in checks {
        let Some(id) = id else { continue };
        let found = match what {
            "user" => sessions().any(|s| &s.metadata.participant_id == id),
            "session" => sessions().any(|s| &s.metadata.user_session_id == id),
            _ => sessions()
                .flat_map(|s| &s.segments)
                .any(|f| &f.segment.track_id == id),
        };
        if !found {
            return Err(ExtractError::UnknownId {
                what,
                id: id.clone(),
                list,
            });
        }
    }
    Ok(())
}
