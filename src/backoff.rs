//! The retry schedule shared by webhook deliveries and uploads.

use std::time::Duration;

/// Delays between attempts: the first after one failure, doubling after each further one
/// up to a longest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub first: Duration,
    /// Longest delay between two attempts.
    pub max: Duration,
}

impl Default for Backoff {
    /// 1 s, 2 s, 4 s, ..., capped at 10 minutes: a day of retries is about 150 attempts.
    fn default() -> Self {
        Self {
            first: Duration::from_secs(1),
            max: Duration::from_secs(600),
        }
    }
}

impl Backoff {
    /// The delay before the next attempt after `failures` failed attempts.
    pub fn delay(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(30);
        self.first.saturating_mul(1 << exp).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_then_caps() {
        let b = Backoff::default();
        assert_eq!(b.delay(1), Duration::from_secs(1));
        assert_eq!(b.delay(2), Duration::from_secs(2));
        assert_eq!(b.delay(4), Duration::from_secs(8));
        assert_eq!(b.delay(11), b.max);
        assert_eq!(b.delay(u32::MAX), b.max);
        let mut total = Duration::ZERO;
        let mut n = 0;
        while total < Duration::from_secs(24 * 3600) {
            n += 1;
            total += b.delay(n);
        }
        assert!((140..=160).contains(&n), "{n}");
        let fast = Backoff {
            first: Duration::from_millis(3),
            max: Duration::from_secs(2),
        };
        assert_eq!(fast.delay(3), Duration::from_millis(12));
        assert_eq!(fast.delay(40), Duration::from_secs(2));
    }
}
