//! Integration tests of the media plane: real WebRTC publishers (aiortc, headless Chromium)
//! against a reel server on loopback. Run them inside a network namespace of their own
//! (`unshare -n`, as `scripts/test.sh` does) so no packet leaves the machine.

#[allow(dead_code)]
#[path = "../control_plane/common.rs"]
mod common;

mod broadcast;
mod browser;
mod composite;
mod console;
mod crash;
mod faults;
mod individual;
mod layout;
mod publish;
mod publisher;
mod raw;
mod secrets;
mod sessions;
mod support;
mod track;
