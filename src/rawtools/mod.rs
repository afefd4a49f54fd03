//! The `raw-recording` commands: read raw archives (a `.tar.gz`, a `.zip` or a directory),
//! list what they hold, and rebuild playable files from them.

mod av_file;
pub mod extract;
pub mod list;
pub mod mix;
pub mod mux_av;
pub mod process_all;
pub mod selection;

use crate::domain::Timestamp;
use crate::rtp::archive::Archive;

/// The call session's start, unix ms, from the archive's metadata (0 if it does not say).
fn call_start_ms(archive: &Archive) -> i64 {
    archive.sessions.first().map_or(0, |s| {
        Timestamp::parse_rfc3339(&s.metadata.call.call_start_time).map_or(0, |t| t.unix_millis())
    })
}
