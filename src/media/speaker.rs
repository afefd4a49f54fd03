//! Dominant speaker detection from the audio levels publishers send (RFC 6464).
//!
//! Each participant's loudness (127 minus the level in -dBov, so louder is larger) is
//! smoothed; the dominant speaker changes when someone else is clearly louder than the
//! current one for long enough, so that a cough does not move the spotlight.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::domain::SessionId;

/// Weight of a new report in the smoothed loudness.
const ALPHA: f32 = 0.35;
/// Loudness below which a participant counts as silent (about -70 dBov).
const SPEAKING: f32 = 57.0;
/// How much louder a challenger must be than the current speaker.
const MARGIN: f32 = 6.0;
/// Least time between two changes.
const HOLD: Duration = Duration::from_millis(1200);

/// The state of the detection in one call.
#[derive(Default)]
pub struct DominantSpeaker {
    loudness: HashMap<SessionId, f32>,
    current: Option<SessionId>,
    changed_at: Option<Instant>,
}

impl DominantSpeaker {
    /// Takes a loudness report of `who`; returns the new dominant speaker if it changed.
    pub fn report(&mut self, who: &SessionId, loudness: u8, now: Instant) -> Option<SessionId> {
        let l = self.loudness.entry(who.clone()).or_insert(0.0);
        *l = *l * (1.0 - ALPHA) + f32::from(loudness) * ALPHA;
        if self.changed_at.is_some_and(|t| now - t < HOLD) {
            return None;
        }
        let (loudest, level) = self
            .loudness
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(k, v)| (k.clone(), *v))?;
        if level < SPEAKING || self.current.as_ref() == Some(&loudest) {
            return None;
        }
        let current = self
            .current
            .as_ref()
            .and_then(|c| self.loudness.get(c))
            .copied()
            .unwrap_or(0.0);
        if level < current + MARGIN {
            return None;
        }
        self.current = Some(loudest.clone());
        self.changed_at = Some(now);
        Some(loudest)
    }

    /// The dominant speaker now.
    pub fn current(&self) -> Option<&SessionId> {
        self.current.as_ref()
    }

    /// Forgets a participant who left.
    pub fn remove(&mut self, who: &SessionId) {
        self.loudness.remove(who);
        if self.current.as_ref() == Some(who) {
            self.current = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clearly_louder_one_wins_after_the_hold() {
        let (a, b) = (SessionId::random(), SessionId::random());
        let mut d = DominantSpeaker::default();
        let t0 = Instant::now();
        let mut changes = Vec::new();
        for i in 0..40u64 {
            let t = t0 + Duration::from_millis(200 * i);
            // a speaks for the first 4 s, then b.
            let (la, lb) = if i < 20 { (90, 10) } else { (10, 95) };
            changes.extend(d.report(&a, la, t).map(|s| (i, s)));
            changes.extend(d.report(&b, lb, t).map(|s| (i, s)));
        }
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert_eq!(changes[0].1, a);
        assert_eq!(changes[1].1, b);
        assert!(changes[1].0 >= 20 && changes[1].0 < 26);
        d.remove(&b);
        let later = t0 + Duration::from_secs(20);
        let elected: Vec<_> = (0..5).filter_map(|_| d.report(&a, 90, later)).collect();
        assert_eq!(elected, [a]);
    }

    #[test]
    fn silence_elects_nobody() {
        let mut d = DominantSpeaker::default();
        let a = SessionId::random();
        for i in 0..20 {
            assert!(
                d.report(&a, 5, Instant::now() + Duration::from_secs(i))
                    .is_none()
            );
        }
    }
}
