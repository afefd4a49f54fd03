//! RTP payloads back into the codec's frames, without decoding: the payload descriptors of
//! VP8 and VP9 are stripped, H.264 NAL units are rebuilt into Annex B, AV1 OBUs into the
//! low-overhead bitstream format (each with its size), and Opus packets pass as they are.
//!
//! Packets must come in sequence order (see [`super::reorder`]). A frame ends at the marker
//! bit or when the next timestamp begins; a frame whose first packet was never seen is
//! dropped, so a caller that saw a gap should wait for a key frame.

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
            self.finish(out);
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
            self.finish(out);
        }
        Ok(())
    }

    /// Ends the frame being assembled (at the end of the stream, or of a segment).
    pub fn finish(&mut self, out: &mut Vec<Frame>) {
        let Some(mut p) = self.partial.take() else {
            return;
        };
        self.av1.clear();
        if p.broken || p.data.is_empty() {
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
        d.finish(&mut out);
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

    #[test]
    fn a_frame_without_its_start_is_dropped() {
        let frames = run(MediaCodec::Vp8, &[(0, true, &[0x00, 0xdd])]);
        assert!(frames.is_empty());
    }
}
