//! The `raw-recording` commands: read raw archives (a `.tar.gz`, a `.zip` or a directory),
//! list what they hold, and rebuild playable files from them.

pub mod archive;
pub mod extract;
pub mod list;
pub mod metadata;
pub mod mix;
pub mod mux_av;
pub mod process_all;
