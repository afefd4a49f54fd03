//! Any bytes as an rtpdump: read packet by packet as the extractors read it, each packet's RTP
//! header parsed, and measured as crash recovery measures it. Errors are fine; panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reel_rtp::rtpdump::{RtpHeader, RtpdumpReader, whole_packets_len};

fuzz_target!(|data: &[u8]| {
    let whole = whole_packets_len(data);
    let Ok(mut reader) = RtpdumpReader::new(data) else {
        assert!(whole.is_err(), "recovery accepted what the reader refused");
        return;
    };
    let mut buf = Vec::new();
    let mut read = reader.position();
    while let Ok(Some(p)) = reader.next_packet(&mut buf) {
        read = reader.position();
        if !p.rtcp
            && let Some((_, payload)) = RtpHeader::parse(&buf)
        {
            assert!(payload.len() <= buf.len());
        }
    }
    // Recovery keeps exactly the whole packets the reader read.
    assert_eq!(whole.ok(), Some(read));
});
