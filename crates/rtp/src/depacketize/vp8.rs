//! VP8 (RFC 7741): strip the payload descriptor.

use super::Partial;

/// Appends the VP8 data of `payload` to `p`.
pub(super) fn append(p: &mut Partial, payload: &[u8]) -> Result<(), &'static str> {
    let (start, data) = descriptor(payload)?;
    if start {
        // S with partition 0: a new frame, whatever came before at this time.
        p.data.clear();
        p.broken = false;
        p.keyframe = data.first().is_some_and(|b| b & 0x01 == 0);
    } else if p.data.is_empty() {
        p.broken = true;
    }
    p.data.extend_from_slice(data);
    Ok(())
}

/// Whether the packet starts a frame, and the VP8 data after the descriptor.
fn descriptor(p: &[u8]) -> Result<(bool, &[u8]), &'static str> {
    const SHORT: &str = "descriptor longer than the packet";
    let b0 = *p.first().ok_or("empty payload")?;
    let mut i = 1;
    if b0 & 0x80 != 0 {
        let x = *p.get(1).ok_or(SHORT)?;
        i = 2;
        if x & 0x80 != 0 {
            let pid = *p.get(i).ok_or(SHORT)?;
            i += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1;
        }
        if x & 0x30 != 0 {
            i += 1;
        }
    }
    let data = p.get(i..).ok_or(SHORT)?;
    Ok((b0 & 0x10 != 0 && b0 & 0x0f == 0, data))
}
