//! H.264 (RFC 6184): single NAL units, STAP-A and FU-A, rebuilt as Annex B.

use super::Partial;

const START_CODE: [u8; 4] = [0, 0, 0, 1];
const IDR: u8 = 5;
const SPS: u8 = 7;
const PPS: u8 = 8;

/// The last sequence and picture parameter sets seen.
#[derive(Debug, Default)]
pub(super) struct ParameterSets {
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
}

impl ParameterSets {
    fn keep(&mut self, nal: &[u8]) {
        match nal.first().map(|b| b & 0x1f) {
            Some(SPS) => self.sps = Some(nal.to_vec()),
            Some(PPS) => self.pps = Some(nal.to_vec()),
            _ => {}
        }
    }

    /// SPS then PPS, with start codes, once both were seen.
    pub(super) fn annex_b(&self) -> Option<Vec<u8>> {
        let (sps, pps) = (self.sps.as_ref()?, self.pps.as_ref()?);
        Some([&START_CODE[..], sps, &START_CODE, pps].concat())
    }
}

/// Appends the NAL units of `payload` to `p`.
pub(super) fn append(
    p: &mut Partial,
    payload: &[u8],
    sets: &mut ParameterSets,
) -> Result<(), &'static str> {
    let b0 = *payload.first().ok_or("empty payload")?;
    match b0 & 0x1f {
        1..=23 => nal(p, payload, sets),
        24 => {
            let mut rest = &payload[1..];
            while !rest.is_empty() {
                let [a, b, tail @ ..] = rest else {
                    return Err("STAP-A size cut short");
                };
                let size = usize::from(u16::from_be_bytes([*a, *b]));
                let unit = tail
                    .get(..size)
                    .ok_or("STAP-A unit longer than the packet")?;
                nal(p, unit, sets);
                rest = &tail[size..];
            }
        }
        28 => {
            let header = *payload.get(1).ok_or("FU-A without its header")?;
            let (start, kind) = (header & 0x80 != 0, header & 0x1f);
            if start {
                p.data.extend_from_slice(&START_CODE);
                p.data.push((b0 & 0xe0) | kind);
                p.keyframe |= kind == IDR;
            } else if p.data.is_empty() {
                // The fragment's start was lost.
                p.broken = true;
            }
            p.data.extend_from_slice(&payload[2..]);
        }
        0 | 25..=27 | 29.. => return Err("unsupported NAL unit type"),
    }
    Ok(())
}

fn nal(p: &mut Partial, unit: &[u8], sets: &mut ParameterSets) {
    let Some(&b0) = unit.first() else { return };
    sets.keep(unit);
    p.keyframe |= b0 & 0x1f == IDR;
    p.data.extend_from_slice(&START_CODE);
    p.data.extend_from_slice(unit);
}

#[cfg(test)]
mod tests {
    use super::super::{Depacketizer, MediaCodec};

    #[test]
    fn stap_a_and_fu_a_become_annex_b() {
        let mut d = Depacketizer::new(MediaCodec::H264);
        let mut out = Vec::new();
        // STAP-A: SPS (2 bytes), PPS (1 byte).
        d.push(0, false, &[0x78, 0, 2, 0x67, 0x42, 0, 1, 0x68], &mut out)
            .unwrap();
        // FU-A IDR: start, end.
        d.push(0, false, &[0x7c, 0x85, 0xaa], &mut out).unwrap();
        d.push(0, true, &[0x7c, 0x45, 0xbb], &mut out).unwrap();
        assert_eq!(
            out[0].data,
            [
                0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x68, 0, 0, 0, 1, 0x65, 0xaa, 0xbb
            ]
        );
        assert!(out[0].keyframe);
        assert_eq!(
            d.codec_private().unwrap(),
            [0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x68]
        );
        // A non-IDR slice is not a key frame; a bad STAP-A is an error.
        d.push(3000, true, &[0x41, 0x9a], &mut out).unwrap();
        assert!(!out[1].keyframe);
        assert!(d.push(6000, true, &[0x78, 0, 9, 0x41], &mut out).is_err());
        assert!(d.push(6000, true, &[0x7d], &mut out).is_err());
    }
}
