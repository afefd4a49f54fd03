//! AV1 (the AOM RTP payload format): OBU elements, possibly fragmented across packets,
//! rebuilt into the low-overhead bitstream format in which every OBU carries its size.

use super::Partial;

const SEQUENCE_HEADER: u8 = 1;
const TEMPORAL_DELIMITER: u8 = 2;
const TILE_LIST: u8 = 8;
const PADDING: u8 = 15;

/// An OBU being reassembled across packets, and the last sequence header.
#[derive(Debug, Default)]
pub(super) struct Reassembly {
    fragment: Vec<u8>,
    /// `fragment` holds the start of an OBU that continues in the next packet.
    open: bool,
    sequence_header: Option<Vec<u8>>,
}

impl Reassembly {
    /// Forgets an unfinished OBU.
    pub(super) fn clear(&mut self) {
        self.fragment.clear();
        self.open = false;
    }

    /// The last sequence header OBU (with its size field).
    pub(super) fn sequence_header(&self) -> Option<&[u8]> {
        self.sequence_header.as_deref()
    }

    /// Appends the OBUs that `payload` completes to `p`.
    pub(super) fn append(&mut self, p: &mut Partial, payload: &[u8]) -> Result<(), &'static str> {
        let (&aggregation, mut rest) = payload.split_first().ok_or("empty payload")?;
        let continues = aggregation & 0x80 != 0;
        let continued = aggregation & 0x40 != 0;
        let count = usize::from((aggregation >> 4) & 0x03);
        if aggregation & 0x08 != 0 {
            p.keyframe = true;
        }
        let mut index = 0;
        while !rest.is_empty() {
            index += 1;
            if count != 0 && index > count {
                return Err("more OBU elements than announced");
            }
            let element = if count != 0 && index == count {
                std::mem::take(&mut rest)
            } else {
                let (len, n) = leb128(rest)?;
                let element = rest
                    .get(n..n + len)
                    .ok_or("OBU element longer than the packet")?;
                rest = &rest[n + len..];
                element
            };
            if index == 1 && continues {
                if !self.open {
                    // The OBU's start was lost.
                    p.broken = true;
                    continue;
                }
                self.fragment.extend_from_slice(element);
            } else {
                if self.open {
                    p.broken = true;
                }
                self.fragment.clear();
                self.fragment.extend_from_slice(element);
            }
            self.open = rest.is_empty() && continued;
            if !self.open {
                self.emit(p)?;
            }
        }
        Ok(())
    }

    /// Writes the complete OBU in `fragment` to `p`, with its size.
    fn emit(&mut self, p: &mut Partial) -> Result<(), &'static str> {
        let obu = &self.fragment;
        let &header = obu.first().ok_or("empty OBU")?;
        if header & 0x80 != 0 {
            return Err("OBU forbidden bit set");
        }
        let kind = (header >> 3) & 0x0f;
        let header_len = if header & 0x04 != 0 { 2 } else { 1 };
        let after = obu.get(header_len..).ok_or("OBU header cut short")?;
        let body = if header & 0x02 != 0 {
            let (len, n) = leb128(after)?;
            after.get(n..n + len).ok_or("OBU size past its end")?
        } else {
            after
        };
        if matches!(kind, TEMPORAL_DELIMITER | TILE_LIST | PADDING) {
            return Ok(());
        }
        let start = p.data.len();
        p.data.push(header | 0x02);
        if header_len == 2 {
            p.data.push(obu[1]);
        }
        write_leb128(&mut p.data, body.len());
        p.data.extend_from_slice(body);
        if kind == SEQUENCE_HEADER {
            self.sequence_header = Some(p.data[start..].to_vec());
        }
        Ok(())
    }
}

/// A LEB128 value and its length in bytes.
fn leb128(b: &[u8]) -> Result<(usize, usize), &'static str> {
    let mut value = 0usize;
    for (i, byte) in b.iter().take(8).enumerate() {
        value |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err("bad LEB128 length")
}

fn write_leb128(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Depacketizer, MediaCodec};

    #[test]
    fn fragmented_obus_are_joined_and_sized() {
        let mut d = Depacketizer::new(MediaCodec::Av1);
        let mut out = Vec::new();
        // N, W=2: a sequence header (length 3), then the start of a frame OBU (Y: continues).
        d.push(0, false, &[0x68, 3, 0x08, 0xaa, 0xbb, 0x30, 1, 2], &mut out)
            .unwrap();
        // Z, W=1: the rest of the frame OBU; a temporal delimiter would be dropped.
        d.push(0, true, &[0x90, 3, 4], &mut out).unwrap();
        assert_eq!(out[0].data, [0x0a, 2, 0xaa, 0xbb, 0x32, 4, 1, 2, 3, 4]);
        assert!(out[0].keyframe);
        assert_eq!(d.codec_private().unwrap(), [0x0a, 2, 0xaa, 0xbb]);
        // A continuation whose start was lost makes the frame go.
        d.push(3000, true, &[0x90, 9], &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert!(d.push(6000, true, &[0x00, 0x85], &mut out).is_err());
    }
}
