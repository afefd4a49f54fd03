//! Sequence numbers and timestamps that wrap (16 and 32 bits), extended to 64 bits.

/// Extends one wrapping counter: each value becomes the 64-bit count nearest the newest seen.
#[derive(Clone, Copy, Debug)]
pub struct Extender {
    bits: u32,
    newest: Option<u64>,
}

impl Extender {
    /// For a counter of `bits` bits (16 for sequence numbers, 32 for RTP timestamps).
    pub fn new(bits: u32) -> Self {
        Self { bits, newest: None }
    }

    /// `value`, extended. The first value is placed one cycle up, so that packets from just
    /// before it (reordered) still get smaller counts.
    pub fn extend(&mut self, value: u64) -> u64 {
        let cycle = 1u64 << self.bits;
        let value = value & (cycle - 1);
        let Some(newest) = self.newest else {
            self.newest = Some(cycle + value);
            return cycle + value;
        };
        let base = newest & !(cycle - 1);
        let extended = [base.checked_sub(cycle), Some(base), base.checked_add(cycle)]
            .into_iter()
            .flatten()
            .map(|b| b + value)
            .min_by_key(|c| c.abs_diff(newest))
            .unwrap_or(base + value);
        self.newest = Some(newest.max(extended));
        extended
    }
}

#[cfg(test)]
mod tests {
    use super::Extender;

    #[test]
    fn wraps_and_reordering() {
        let mut seq = Extender::new(16);
        let got: Vec<u64> = [65534, 65535, 0, 65533, 1, 2]
            .into_iter()
            .map(|v| seq.extend(v) - 65536)
            .collect();
        assert_eq!(got, [65534, 65535, 65536, 65533, 65537, 65538]);
        let mut ts = Extender::new(32);
        let first = ts.extend(u64::from(u32::MAX - 959));
        assert_eq!(ts.extend(0) - first, 960);
        assert_eq!(ts.extend(960) - first, 1920);
    }
}
