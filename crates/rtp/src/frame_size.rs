//! The picture size a video key frame announces: VP8's frame header, VP9's uncompressed
//! header, H.264's sequence parameter set, AV1's sequence header (its maximum size).

use super::{Depacketizer, MediaCodec};

/// Width and height of the pictures that key `frame` (as [`super::Depacketizer`] makes it)
/// starts, if it says so and parses.
pub fn frame_size(codec: MediaCodec, frame: &[u8]) -> Option<(u32, u32)> {
    match codec {
        MediaCodec::Vp8 => vp8(frame),
        MediaCodec::Vp9 => vp9(frame),
        MediaCodec::H264 => annex_b_units(frame)
            .find_map(|nal| (nal.first()? & 0x1f == 7).then(|| h264_sps(&unescape(&nal[1..])))?),
        MediaCodec::Av1 => av1(frame),
        MediaCodec::Opus => None,
    }
}

/// The picture size announced in the RTP `payload` of the first packet of a key frame, if
/// that packet holds the header that says it (it does for all but H.264 streams that send
/// their SPS fragmented).
pub fn packet_frame_size(codec: MediaCodec, payload: &[u8]) -> Option<(u32, u32)> {
    let mut frames = Vec::new();
    Depacketizer::new(codec)
        .push(0, true, payload, &mut frames)
        .ok()?;
    frame_size(codec, &frames.first()?.data)
}

fn vp8(f: &[u8]) -> Option<(u32, u32)> {
    // 3-byte frame tag (bit 0 clear on key frames), the start code, then 14-bit sizes.
    if f.len() < 10 || f[0] & 0x01 != 0 || f[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let w = u16::from_le_bytes([f[6], f[7]]) & 0x3fff;
    let h = u16::from_le_bytes([f[8], f[9]]) & 0x3fff;
    Some((w.into(), h.into()))
}

fn vp9(f: &[u8]) -> Option<(u32, u32)> {
    let mut r = Bits::new(f);
    if r.bits(2)? != 2 {
        return None;
    }
    let low = r.bit()?;
    let profile = (r.bit()? << 1) | low;
    if profile == 3 {
        r.bit()?;
    }
    // show_existing_frame, then frame_type (0: key frame).
    if r.bit()? == 1 || r.bit()? != 0 {
        return None;
    }
    r.bits(2)?; // show_frame, error_resilient_mode
    if r.bits(24)? != 0x49_83_42 {
        return None;
    }
    if profile >= 2 {
        r.bit()?;
    }
    if r.bits(3)? != 7 {
        r.bit()?; // color_range
        if profile == 1 || profile == 3 {
            r.bits(3)?;
        }
    } else if profile == 1 || profile == 3 {
        r.bit()?;
    }
    Some((r.bits(16)? + 1, r.bits(16)? + 1))
}

fn h264_sps(rbsp: &[u8]) -> Option<(u32, u32)> {
    let mut r = Bits::new(rbsp);
    let profile = r.bits(8)?;
    r.bits(16)?; // constraint flags, level
    r.ue()?; // seq_parameter_set_id
    let mut chroma = 1;
    if [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135].contains(&profile) {
        chroma = r.ue()?;
        if chroma == 3 {
            r.bit()?;
        }
        r.ue()?;
        r.ue()?;
        r.bit()?;
        if r.bit()? == 1 {
            for i in 0..if chroma == 3 { 12 } else { 8 } {
                if r.bit()? == 1 {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?;
        }
        1 => {
            r.bit()?;
            r.se()?;
            r.se()?;
            for _ in 0..r.ue()?.min(255) {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?;
    // Sizes are worked out in u64: hostile streams give sizes that overflow u32.
    let width_mbs = u64::from(r.ue()?) + 1;
    let height_units = u64::from(r.ue()?) + 1;
    let frame_mbs_only = u64::from(r.bit()?);
    if frame_mbs_only == 0 {
        r.bit()?;
    }
    r.bit()?;
    let (mut crop_x, mut crop_y) = (0, 0);
    if r.bit()? == 1 {
        let mut side = || r.ue().map(u64::from);
        let (left, right, top, bottom) = (side()?, side()?, side()?, side()?);
        let (unit_x, unit_y) = match chroma {
            0 | 3 => (1, 2 - frame_mbs_only),
            1 => (2, 2 * (2 - frame_mbs_only)),
            _ => (2, 2 - frame_mbs_only),
        };
        crop_x = unit_x * (left + right);
        crop_y = unit_y * (top + bottom);
    }
    let width = (width_mbs * 16).checked_sub(crop_x)?;
    let height = ((2 - frame_mbs_only) * height_units * 16).checked_sub(crop_y)?;
    Some((u32::try_from(width).ok()?, u32::try_from(height).ok()?))
}

fn skip_scaling_list(r: &mut Bits, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            next = (last + r.se()? + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

fn av1(frame: &[u8]) -> Option<(u32, u32)> {
    let mut rest = frame;
    while let Some((&header, after)) = rest.split_first() {
        let ext = usize::from(header & 0x04 != 0);
        let after = after.get(ext..)?;
        // Every OBU here has its size (the depacketizer sees to it).
        let (len, n) = leb128(after)?;
        let body = after.get(n..n + len)?;
        if (header >> 3) & 0x0f == 1 {
            return av1_sequence_header(body);
        }
        rest = &after[n + len..];
    }
    None
}

fn av1_sequence_header(b: &[u8]) -> Option<(u32, u32)> {
    let mut r = Bits::new(b);
    r.bits(3)?; // seq_profile
    r.bit()?; // still_picture
    if r.bit()? == 1 {
        r.bits(5)?; // reduced header: one level
    } else {
        let mut decoder_model = false;
        let mut delay_len = 0;
        if r.bit()? == 1 {
            r.bits(32)?;
            r.bits(32)?;
            if r.bit()? == 1 {
                r.ue()?; // uvlc, coded as ue(v)
            }
            decoder_model = r.bit()? == 1;
            if decoder_model {
                delay_len = r.bits(5)? + 1;
                r.bits(32)?;
                r.bits(10)?;
            }
        }
        let initial_delay = r.bit()? == 1;
        for _ in 0..=r.bits(5)? {
            r.bits(12)?;
            if r.bits(5)? > 7 {
                r.bit()?;
            }
            if decoder_model && r.bit()? == 1 {
                r.bits(delay_len)?;
                r.bits(delay_len)?;
                r.bit()?;
            }
            if initial_delay && r.bit()? == 1 {
                r.bits(4)?;
            }
        }
    }
    let (wbits, hbits) = (r.bits(4)? + 1, r.bits(4)? + 1);
    Some((r.bits(wbits)? + 1, r.bits(hbits)? + 1))
}

fn leb128(b: &[u8]) -> Option<(usize, usize)> {
    let mut value = 0usize;
    for (i, byte) in b.iter().take(8).enumerate() {
        value |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// The NAL units of an Annex B stream.
fn annex_b_units(b: &[u8]) -> AnnexB<'_> {
    AnnexB { rest: b }
}

struct AnnexB<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for AnnexB<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let start = find_start_code(self.rest)?;
        let body = &self.rest[start..];
        let end = find_start_code(body).map_or(body.len(), |e| e - 3);
        let mut unit = &body[..end];
        while let [head @ .., 0] = unit {
            unit = head;
        }
        self.rest = &body[end..];
        Some(unit)
    }
}

/// The index just after the first `00 00 01`.
fn find_start_code(b: &[u8]) -> Option<usize> {
    b.windows(3).position(|w| w == [0, 0, 1]).map(|i| i + 3)
}

/// RBSP from a NAL unit's payload: `00 00 03` loses its `03`.
fn unescape(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut zeros = 0;
    for &x in b {
        if zeros >= 2 && x == 3 {
            zeros = 0;
            continue;
        }
        zeros = if x == 0 { zeros + 1 } else { 0 };
        out.push(x);
    }
    out
}

/// A big-endian bit reader.
struct Bits<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Bits<'a> {
    fn new(b: &'a [u8]) -> Self {
        Self { b, pos: 0 }
    }

    fn bit(&mut self) -> Option<u32> {
        let byte = self.b.get(self.pos / 8)?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(bit.into())
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0u32, |v, _| Some((v << 1) | self.bit()?))
    }

    /// Exp-Golomb, unsigned.
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some((1u32 << zeros) - 1 + self.bits(zeros)?)
    }

    /// Exp-Golomb, signed.
    fn se(&mut self) -> Option<i64> {
        let k = i64::from(self.ue()?);
        Some(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    // The start of 318x178 key frames from libvpx, libvpx-vp9, x264 (High, cropped) and
    // libaom.
    #[test]
    fn key_frames_of_each_codec_give_their_size() {
        let cases = [
            (MediaCodec::Vp8, "b053009d012a3e01b2000007"),
            (MediaCodec::Vp9, "a2498342e013d00b160a38241c184a00"),
            (
                MediaCodec::H264,
                "000000016764000cacd941419ea23011000003000100000300140f1429960000000168ebe3cb22c0",
            ),
            (
                MediaCodec::Av1,
                "12000a0d200000043cf6c4daf92021a00432ee081400a400",
            ),
        ];
        for (codec, frame) in cases {
            assert_eq!(frame_size(codec, &hex(frame)), Some((318, 178)), "{codec}");
        }
    }

    #[test]
    fn a_key_frame_s_first_packet_gives_its_size() {
        // VP8 descriptor (S, partition 0), then the frame's start.
        let packet = hex("10b053009d012a3e01b2000007");
        assert_eq!(
            packet_frame_size(MediaCodec::Vp8, &packet),
            Some((318, 178))
        );
        // H.264 STAP-A carrying the SPS.
        let sps = hex("6764000cacd941419ea23011000003000100000300140f142996");
        let mut stap = vec![0x78, 0, sps.len() as u8];
        stap.extend_from_slice(&sps);
        assert_eq!(packet_frame_size(MediaCodec::H264, &stap), Some((318, 178)));
        assert_eq!(packet_frame_size(MediaCodec::Vp8, &[0x90]), None);
    }

    #[test]
    fn delta_frames_and_garbage_give_nothing() {
        assert_eq!(
            frame_size(MediaCodec::Vp8, &hex("b153009d012a3e01b200")),
            None
        );
        assert_eq!(frame_size(MediaCodec::Vp9, &hex("a6")), None);
        assert_eq!(frame_size(MediaCodec::H264, &hex("0000000141ff")), None);
        assert_eq!(frame_size(MediaCodec::H264, &hex("0000000167ff")), None);
        assert_eq!(frame_size(MediaCodec::Av1, &hex("0aff")), None);
        assert_eq!(frame_size(MediaCodec::Opus, &hex("78")), None);
    }

    #[test]
    fn an_sps_announcing_an_impossible_size_gives_nothing() {
        // Baseline SPS whose width in macroblocks is the largest Exp-Golomb value a reader
        // takes (2^32 - 1 macroblocks): 16 times that does not fit in 32 bits.
        let bits = format!(
            "{:08b}{:016b}11111 0 {}1{} 111 0",
            66,
            0x001e,
            "0".repeat(31),
            "1".repeat(31)
        )
        .replace(' ', "");
        let bytes: Vec<u8> = bits
            .as_bytes()
            .chunks(8)
            .map(|c| {
                let byte = std::str::from_utf8(c).unwrap();
                u8::from_str_radix(&format!("{byte:0<8}"), 2).unwrap()
            })
            .collect();
        assert_eq!(h264_sps(&bytes), None);
    }
}
