//! Any bytes as an RTCP compound packet once SRTP has opened it, read by the WebRTC engine
//! reel's sessions run on (reports, NACKs, PLIs, FIRs, REMB, transport-wide feedback), and
//! turned into the feedback the sessions act on. Errors are fine; panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = str0m::_internal_test_exports::fuzz::rtcp(data);
});
