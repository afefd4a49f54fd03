//! Any bytes as an archive file (`.tar.gz` or `.zip`, told apart by their first bytes, as
//! `reel raw-recording --input-file` does): opened, then every dump it names streamed through
//! the rtpdump reader. Errors are fine; panics are not.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use reel_rtp::archive::Archive;
use reel_rtp::rtpdump::{RtpHeader, RtpdumpReader};

/// The file each input is written to (the reader takes a path, as the command does).
fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("reel-fuzz-archive-{}", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    std::fs::write(path, data).expect("the scratch file is writable");
    let Ok(archive) = Archive::open(path) else {
        return;
    };
    for session in &archive.sessions {
        for segment in &session.segments {
            assert!(!segment.dump.is_empty());
            assert!(segment.sdp.name.len() <= 64 << 10);
        }
    }
    let mut buf = Vec::new();
    let _ = archive.read_dumps(&mut |_, r| {
        if let Ok(mut reader) = RtpdumpReader::new(r) {
            while let Ok(Some(_)) = reader.next_packet(&mut buf) {
                let _ = RtpHeader::parse(&buf);
            }
        }
        Ok(std::ops::ControlFlow::Continue(()))
    });
});
