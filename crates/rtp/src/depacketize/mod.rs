//! RTP payloads back into the codec's frames, without decoding: the payload descriptors of
//! VP8 and VP9 are stripped, H.264 NAL units are rebuilt into Annex B, AV1 OBUs into the
//! low-overhead bitstream format (each with its size), and Opus packets pass as they are.
//!
//! Packets must come in sequence order (see [`super::reorder`]). A frame ends at the marker
//! bit or when the next timestamp begins. A frame whose first packet was never seen is
//! dropped, and so are one a gap ran through (the caller says so with
//! [`Depacketizer::lost`]) and one the stream ended in the middle of (a sender that closes
//! may leave its last frame half sent): a key frame missing a packet would be taken for a
//! place to start decoding, and any frame missing one fails to decode. A caller that saw a
//! gap should wait for a key frame.

mod av1;
mod h264;
mod vp8;
mod vp9;

use super::MediaCodec;

/// A frame rebuilt from its packets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// RTP time of its packets (extended, in the codec's clock).
    pub rtp_time: u64,
    /// The frame as a decoder takes it.
    pub data: Vec<u8>,
    /// True if decoding can start at this frame (always for audio).
    pub keyframe: bool,
}

/// A payload that does not follow its codec's RTP format.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed {codec} payload: {what}")]
pub struct Malformed {
    codec: MediaCodec,
    what: &'static str,
}

/// The frame being assembled.
#[derive(Debug, Default)]
struct Partial {
    rtp_time: u64,
    data: Vec<u8>,
    keyframe: bool,
    /// Its start was never seen: it is dropped.
    broken: bool,
    /// Packets were lost while it was assembled: it is dropped.
    gap: bool,
    /// Where each VP9 layer frame begins in `data`.
    layers: Vec<usize>,
}

/// Rebuilds one stream's frames.
#[derive(Debug)]
pub struct Depacketizer {
    codec: MediaCodec,
    partial: Option<Partial>,
    h264: h264::ParameterSets,
    av1: av1::Reassembly,
}

impl Depacketizer {
    /// A depacketizer for `codec`.
    pub fn new(codec: MediaCodec) -> Self {
        Self {
            codec,
            partial: None,
            h264: h264::ParameterSets::default(),
            av1: av1::Reassembly::default(),
        }
    }

    /// Feeds the next packet in sequence order; the frames it completes go to `out`.
    pub fn push(
        &mut self,
        rtp_time: u64,
        marker: bool,
        payload: &[u8],
        out: &mut Vec<Frame>,
    ) -> Result<(), Malformed> {
        if self.codec == MediaCodec::Opus {
            if !payload.is_empty() {
                out.push(Frame {
                    rtp_time,
                    data: payload.to_vec(),
                    keyframe: true,
                });
            }
            return Ok(());
        }
        if self
            .partial
            .as_ref()
            .is_some_and(|p| p.rtp_time != rtp_time)
        {
            self.complete(out);
        }
        let malformed = |what| Malformed {
            codec: self.codec,
            what,
        };
        let partial = self.partial.get_or_insert_with(|| Partial {
            rtp_time,
            ..Partial::default()
        });
        let result = match self.codec {
            MediaCodec::Vp8 => vp8::append(partial, payload),
            MediaCodec::Vp9 => vp9::append(partial, payload),
            MediaCodec::H264 => h264::append(partial, payload, &mut self.h264),
            MediaCodec::Av1 => self.av1.append(partial, payload),
            MediaCodec::Opus => unreachable!("handled above"),
        };
        if let Err(what) = result {
            partial.broken = true;
            return Err(malformed(what));
        }
        if marker {
            self.complete(out);
        }
        Ok(())
    }

    /// Says that packets were lost before the next one: the frame being assembled may miss
    /// some of its packets, so it is dropped.
    pub fn lost(&mut self) {
        if let Some(p) = &mut self.partial {
            p.gap = true;
        }
    }

    /// Ends the stream (or a segment of it): the frame being assembled never got its last
    /// packet, and is dropped.
    pub fn finish(&mut self) {
        self.partial = None;
        self.av1.clear();
    }

    /// Gives out the frame being assembled, now complete, unless it is broken.
    fn complete(&mut self, out: &mut Vec<Frame>) {
        let Some(mut p) = self.partial.take() else {
            return;
        };
        self.av1.clear();
        if p.broken || p.gap || p.data.is_empty() {
            return;
        }
        if p.layers.len() > 1 {
            vp9::add_superframe_index(&mut p.data, &p.layers);
        }
        out.push(Frame {
            rtp_time: p.rtp_time,
            data: p.data,
            keyframe: p.keyframe,
        });
    }

    /// What a decoder needs before the first frame, for a container's codec private data:
    /// H.264's last SPS and PPS (Annex B) or AV1's last sequence header OBU.
    pub fn codec_private(&self) -> Option<Vec<u8>> {
        match self.codec {
            MediaCodec::H264 => self.h264.annex_b(),
            MediaCodec::Av1 => self.av1.sequence_header().map(<[u8]>::to_vec),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(codec: MediaCodec, packets: &[(u64, bool, &[u8])]) -> Vec<Frame> {
        let mut d = Depacketizer::new(codec);
        let mut out = Vec::new();
        for (ts, marker, payload) in packets {
            d.push(*ts, *marker, payload, &mut out).unwrap();
        }
        d.finish();
        out
    }

    #[test]
    fn opus_passes_through() {
        let frames = run(
            MediaCodec::Opus,
            &[(960, true, &[0x78, 1, 2]), (1920, false, &[])],
        );
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].data, [0x78, 1, 2]);
    }

    #[test]
    fn vp8_frames_join_and_lose_their_descriptors() {
        // Key frame in two packets (S=1 then S=0), then a delta frame whose marker was lost.
        let frames = run(
            MediaCodec::Vp8,
            &[
                (0, false, &[0x90, 0x80, 0x05, 0x10, 0xaa]),
                (0, true, &[0x80, 0x80, 0x05, 0xbb]),
                (3000, false, &[0x10, 0x01, 0xcc]),
                (6000, true, &[0x00, 0xdd]),
            ],
        );
        assert_eq!(frames.len(), 2, "{frames:?}");
        assert_eq!(frames[0].data, [0x10, 0xaa, 0xbb]);
        assert!(frames[0].keyframe);
        assert_eq!(frames[1].data, [0x01, 0xcc]);
        assert!(!frames[1].keyframe);
    }

    /// A key frame whose middle packet was lost is no place to start decoding: it is
    /// dropped, even when (VP9) a later layer frame of the same picture begins afresh.
    #[test]
    fn a_frame_a_gap_ran_through_is_dropped() {
        for (codec, first, middle, last) in [
            (
                MediaCodec::Vp8,
                &[0x10, 0x10, 0xaa][..],
                &[0x00, 0xbb][..],
                &[0x00, 0xcc][..],
            ),
            // VP9: a key frame's first layer (B), then the second layer's start (B) after the
            // first layer's end was lost.
            (
                MediaCodec::Vp9,
                &[0x08, 0x82][..],
                &[0x00, 0x01][..],
                &[0x08, 0x83][..],
            ),
        ] {
            let mut d = Depacketizer::new(codec);
            let mut out = Vec::new();
            d.push(0, false, first, &mut out).unwrap();
            d.push(0, false, middle, &mut out).unwrap();
            d.lost();
            d.push(0, true, last, &mut out).unwrap();
            assert!(out.is_empty(), "{codec}: {out:?}");
            // The next frame is whole again.
            d.push(3000, true, first, &mut out).unwrap();
            assert_eq!(out.len(), 1, "{codec}");
            assert!(out[0].keyframe, "{codec}");
        }
    }

    /// A sender that closed in the middle of a frame: the frame, never ended by its marker
    /// or a next timestamp, is not given out at the end of the stream.
    #[test]
    fn a_frame_the_stream_ended_in_is_dropped() {
        for codec in [MediaCodec::Vp8, MediaCodec::Vp9] {
            let first: &[u8] = if codec == MediaCodec::Vp8 {
                &[0x10, 0x10, 0xaa]
            } else {
                &[0x08, 0x82]
            };
            let frames = run(codec, &[(0, true, first), (3000, false, first)]);
            assert_eq!(frames.len(), 1, "{codec}: {frames:?}");
            assert_eq!(frames[0].rtp_time, 0, "{codec}");
        }
    }

    #[test]
    fn a_frame_without_its_start_is_dropped() {
        let frames = run(MediaCodec::Vp8, &[(0, true, &[0x00, 0xdd])]);
        assert!(frames.is_empty());
    }
}
