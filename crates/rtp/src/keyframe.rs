//! Recognising the first packet of a video key frame from its RTP payload.

/// True if an RTP `payload` of the video codec `codec` (SDP name, any case) starts a key frame:
/// a VP8 key frame's first partition, a VP9 frame without inter prediction, an H.264 IDR slice
/// or SPS (alone, in a STAP-A, or the first fragment of an FU-A), an AV1 new coded video
/// sequence. False for anything else, including truncated payloads.
pub fn starts_keyframe(codec: &str, payload: &[u8]) -> bool {
    if codec.eq_ignore_ascii_case("VP8") {
        vp8(payload)
    } else if codec.eq_ignore_ascii_case("VP9") {
        // Descriptor byte 0: I P L F B E V Z; a key frame is not inter-predicted (P = 0) and
        // this packet begins it (B = 1).
        payload
            .first()
            .is_some_and(|b| b & 0x40 == 0 && b & 0x08 != 0)
    } else if codec.eq_ignore_ascii_case("H264") {
        h264(payload)
    } else if codec.eq_ignore_ascii_case("AV1") {
        // Aggregation header: Z Y W W N - - -; N marks a new coded video sequence.
        payload.first().is_some_and(|b| b & 0x08 != 0)
    } else {
        false
    }
}

fn vp8(p: &[u8]) -> bool {
    let Some(&b0) = p.first() else { return false };
    // S (start of partition) with partition index 0.
    if b0 & 0x10 == 0 || b0 & 0x0f != 0 {
        return false;
    }
    let mut i = 1;
    if b0 & 0x80 != 0 {
        let Some(&x) = p.get(1) else { return false };
        i = 2;
        if x & 0x80 != 0 {
            // PictureID: 7 or 15 bits.
            let Some(&pid) = p.get(i) else { return false };
            i += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1; // TL0PICIDX
        }
        if x & 0x30 != 0 {
            i += 1; // TID / KEYIDX
        }
    }
    // VP8 payload header: P (inverse key frame flag) is bit 0.
    p.get(i).is_some_and(|h| h & 0x01 == 0)
}

fn h264(p: &[u8]) -> bool {
    let Some(&b0) = p.first() else { return false };
    let key = |t: u8| t == 5 || t == 7;
    match b0 & 0x1f {
        24 => {
            // STAP-A: 16-bit sizes, each followed by a NAL unit.
            let mut i = 1;
            while i + 2 < p.len() {
                let size = usize::from(u16::from_be_bytes([p[i], p[i + 1]]));
                if key(p[i + 2] & 0x1f) {
                    return true;
                }
                i += 2 + size;
            }
            false
        }
        28 => p.get(1).is_some_and(|h| h & 0x80 != 0 && key(h & 0x1f)),
        t => key(t),
    }
}

#[cfg(test)]
mod tests {
    use super::starts_keyframe;

    #[test]
    fn vp8() {
        // X=1, S=1, PID=0; extension: I (15-bit picture id); payload header P=0.
        assert!(starts_keyframe("VP8", &[0x90, 0x80, 0x81, 0x02, 0x10]));
        assert!(!starts_keyframe("VP8", &[0x90, 0x80, 0x81, 0x02, 0x11]));
        // Not the start of the partition.
        assert!(!starts_keyframe("VP8", &[0x80, 0x80, 0x81, 0x02, 0x10]));
        // Without extensions.
        assert!(starts_keyframe("vp8", &[0x10, 0x00]));
        assert!(!starts_keyframe("VP8", &[0x90, 0x80]));
    }

    #[test]
    fn h264() {
        assert!(starts_keyframe("H264", &[0x65, 0x88]));
        assert!(!starts_keyframe("H264", &[0x41, 0x9a]));
        // STAP-A with SPS then PPS.
        assert!(starts_keyframe(
            "H264",
            &[0x78, 0, 2, 0x67, 0x42, 0, 1, 0x68]
        ));
        // FU-A start of an IDR, and a middle fragment.
        assert!(starts_keyframe("H264", &[0x7c, 0x85, 0xb8]));
        assert!(!starts_keyframe("H264", &[0x7c, 0x05, 0xb8]));
        // A STAP-A whose size runs past the end.
        assert!(!starts_keyframe("H264", &[0x78, 0xff, 0xff, 0x41]));
    }

    #[test]
    fn vp9_av1_and_audio() {
        assert!(starts_keyframe("VP9", &[0x88]));
        assert!(!starts_keyframe("VP9", &[0xc8]));
        assert!(starts_keyframe("AV1", &[0x18]));
        assert!(!starts_keyframe("AV1", &[0x10]));
        assert!(!starts_keyframe("opus", &[0xff]));
        assert!(!starts_keyframe("VP9", &[]));
    }
}
