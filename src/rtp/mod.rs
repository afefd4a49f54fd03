//! RTP knowledge that needs no I/O: which packets start key frames, the rtpdump format,
//! single-codec session descriptions.

mod keyframe;
pub mod rtpdump;
pub mod sdp;

pub use keyframe::starts_keyframe;
