//! reel's RTP knowledge: which packets start key frames, putting packets back in order and
//! into frames and onto a timeline, the picture size of key frames, the rtpdump format,
//! single-codec session descriptions, and the raw archive (timing metadata and the reader of
//! `.tar.gz`, `.zip` and directory archives).
//!
//! It is a crate of its own so that its readers of untrusted bytes can be fuzzed without
//! building the server.

pub mod archive;
mod codec;
pub mod depacketize;
pub mod extend;
mod frame_size;
mod keyframe;
pub mod metadata;
pub mod reorder;
pub mod rtpdump;
pub mod sdp;
pub mod timeline;
mod track_type;

pub use codec::MediaCodec;
pub use depacketize::{Depacketizer, Frame};
pub use frame_size::{frame_size, packet_frame_size};
pub use keyframe::starts_keyframe;
pub use timeline::{TimedFrame, Timeline, opus_samples};
pub use track_type::TrackType;
