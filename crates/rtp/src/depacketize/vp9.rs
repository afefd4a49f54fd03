//! VP9 (RFC 9628): strip the payload descriptor; the layer frames of one picture become a
//! superframe.

use super::Partial;

const SHORT: &str = "descriptor longer than the packet";

/// Appends the VP9 data of `payload` to `p`.
pub(super) fn append(p: &mut Partial, payload: &[u8]) -> Result<(), &'static str> {
    let b0 = *payload.first().ok_or("empty payload")?;
    let data = payload.get(descriptor_len(payload)?..).ok_or(SHORT)?;
    let (inter, begins) = (b0 & 0x40 != 0, b0 & 0x08 != 0);
    if begins {
        if p.layers.is_empty() {
            p.broken = false;
            p.keyframe = !inter;
        }
        p.layers.push(p.data.len());
    } else if p.layers.is_empty() {
        p.broken = true;
    }
    p.data.extend_from_slice(data);
    Ok(())
}

/// Length of the payload descriptor: I P L F B E V Z, then what those flags announce.
fn descriptor_len(p: &[u8]) -> Result<usize, &'static str> {
    let at = |i: usize| p.get(i).copied().ok_or(SHORT);
    let b0 = at(0)?;
    let (i_, p_, l_, f_, v_) = (
        b0 & 0x80 != 0,
        b0 & 0x40 != 0,
        b0 & 0x20 != 0,
        b0 & 0x10 != 0,
        b0 & 0x02 != 0,
    );
    let mut i = 1;
    if i_ {
        i += if at(i)? & 0x80 != 0 { 2 } else { 1 };
    }
    if l_ {
        i += if f_ { 1 } else { 2 };
    }
    if f_ && p_ {
        // Up to three reference differences, each saying whether another follows.
        for _ in 0..3 {
            let more = at(i)? & 0x01 != 0;
            i += 1;
            if !more {
                break;
            }
        }
    }
    if v_ {
        let ss = at(i)?;
        i += 1;
        let spatial = usize::from(ss >> 5) + 1;
        if ss & 0x10 != 0 {
            i += 4 * spatial;
        }
        if ss & 0x08 != 0 {
            let groups = at(i)?;
            i += 1;
            for _ in 0..groups {
                let refs = usize::from((at(i)? >> 2) & 0x03);
                i += 1 + refs;
            }
        }
    }
    Ok(i)
}

/// Appends a superframe index so that the layer frames starting at `starts` decode as one.
pub(super) fn add_superframe_index(data: &mut Vec<u8>, starts: &[usize]) {
    let mut sizes: Vec<usize> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    sizes.push(data.len() - starts[starts.len() - 1]);
    sizes.truncate(8);
    let largest = sizes.iter().copied().max().unwrap_or(0);
    let bytes = (1..=4).find(|b| largest < 1 << (8 * b)).unwrap_or(4);
    let marker = 0xc0 | ((bytes as u8 - 1) << 3) | (sizes.len() as u8 - 1);
    data.push(marker);
    for size in sizes {
        data.extend_from_slice(&(size as u32).to_le_bytes()[..bytes]);
    }
    data.push(marker);
}

#[cfg(test)]
mod tests {
    use super::super::{Depacketizer, MediaCodec};

    #[test]
    fn descriptors_of_every_shape_are_stripped() {
        let mut d = Depacketizer::new(MediaCodec::Vp9);
        let mut out = Vec::new();
        // I (15-bit id), B, V with one spatial layer's size and one group of one reference:
        // a key frame starts.
        let first = [
            0x8a, 0x80, 0x01, 0x18, 0x01, 0x40, 0x00, 0xf0, 0x01, 0x04, 0x01, 0x82, 0xaa,
        ];
        d.push(0, false, &first, &mut out).unwrap();
        // F, P with two reference differences, E, marker: the end of the frame.
        d.push(0, true, &[0x54, 0x03, 0x02, 0xbb], &mut out)
            .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].data, [0x82, 0xaa, 0xbb]);
        assert!(out[0].keyframe);
    }

    #[test]
    fn two_spatial_layers_make_a_superframe() {
        let mut d = Depacketizer::new(MediaCodec::Vp9);
        let mut out = Vec::new();
        d.push(9, false, &[0x0c, 1, 2, 3], &mut out).unwrap();
        d.push(9, true, &[0x0c, 4, 5], &mut out).unwrap();
        assert_eq!(out[0].data, [1, 2, 3, 4, 5, 0xc1, 3, 2, 0xc1]);
    }
}
