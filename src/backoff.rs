//! The retry schedule shared by webhook deliveries and uploads.

use std::time::Duration;

/// First retry delay; each later one doubles, up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest delay between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// The delay before the next attempt after `failures` failed attempts (1 s, 2 s, 4 s, ...,
/// capped at 10 minutes: a day of retries is about 150 attempts).
pub fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    FIRST_BACKOFF.saturating_mul(1 << exp).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_then_caps() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(4), Duration::from_secs(8));
        assert_eq!(backoff(11), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
        let mut total = Duration::ZERO;
        let mut n = 0;
        while total < Duration::from_secs(24 * 3600) {
            n += 1;
            total += backoff(n);
        }
        assert!((140..=160).contains(&n), "{n}");
    }
}
