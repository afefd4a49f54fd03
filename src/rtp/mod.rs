//! RTP payload knowledge that needs no I/O: which packets start key frames.

mod keyframe;

pub use keyframe::starts_keyframe;
