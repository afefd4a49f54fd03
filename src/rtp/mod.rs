//! RTP knowledge that needs no I/O: which packets start key frames, putting packets back in
//! order and into frames, the picture size of key frames, the rtpdump format, single-codec
//! session descriptions.

mod codec;
pub mod depacketize;
pub mod extend;
mod frame_size;
mod keyframe;
pub mod reorder;
pub mod rtpdump;
pub mod sdp;
pub mod timeline;

pub use codec::MediaCodec;
pub use depacketize::{Depacketizer, Frame};
pub use frame_size::{frame_size, packet_frame_size};
pub use keyframe::starts_keyframe;
pub use timeline::{TimedFrame, Timeline, opus_samples};
