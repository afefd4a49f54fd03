//! The file's clock: the time since the recording started, less the time it was paused.
//! A pause cuts: what comes while paused is left out, and what comes after it follows on
//! without a gap. Pictures and samples are both placed by it, so the cut keeps them in step.

use std::sync::Mutex;
use std::time::Duration;

/// Where times since the recording's start go in its file.
#[derive(Debug, Default)]
pub struct Clock {
    cuts: Mutex<Cuts>,
}

#[derive(Debug, Default)]
struct Cuts {
    /// Pauses that ended: from and to, since the start.
    done: Vec<(Duration, Duration)>,
    /// Since when it is paused, if it is.
    open: Option<Duration>,
}

impl Clock {
    /// Pauses at `at` since the start (no change if paused already).
    pub fn pause(&self, at: Duration) {
        let mut cuts = self.cuts();
        let after_last = cuts.done.last().map_or(Duration::ZERO, |c| c.1);
        cuts.open.get_or_insert(at.max(after_last));
    }

    /// Goes on at `at` since the start (no change unless paused).
    pub fn resume(&self, at: Duration) {
        let mut cuts = self.cuts();
        if let Some(from) = cuts.open.take() {
            cuts.done.push((from, at.max(from)));
        }
    }

    /// Where `at` since the start is in the file; `None` if it was cut.
    pub fn place(&self, at: Duration) -> Option<Duration> {
        let cuts = self.cuts();
        let mut cut = Duration::ZERO;
        for &(from, to) in &cuts.done {
            if at < from {
                return Some(at - cut);
            }
            if at < to {
                return None;
            }
            cut += to - from;
        }
        match cuts.open {
            Some(from) if at >= from => None,
            _ => Some(at - cut),
        }
    }

    /// How much of the file there is at `at` since the start (while paused: as much as
    /// there was when the pause began).
    pub fn length(&self, at: Duration) -> Duration {
        let cuts = self.cuts();
        let mut cut = Duration::ZERO;
        for &(from, to) in &cuts.done {
            if at < from {
                return at - cut;
            }
            if at < to {
                return from - cut;
            }
            cut += to - from;
        }
        match cuts.open {
            Some(from) if at >= from => from - cut,
            _ => at - cut,
        }
    }

    fn cuts(&self) -> std::sync::MutexGuard<'_, Cuts> {
        self.cuts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(seconds: f64) -> Duration {
        Duration::from_secs_f64(seconds)
    }

    #[test]
    fn a_pause_cuts_and_what_follows_goes_on_without_a_gap() {
        let clock = Clock::default();
        assert_eq!(clock.place(s(1.0)), Some(s(1.0)));
        clock.pause(s(2.0));
        // Paused twice: the first pause holds.
        clock.pause(s(2.5));
        assert_eq!(clock.place(s(1.5)), Some(s(1.5)));
        assert_eq!(clock.place(s(2.0)), None);
        assert_eq!(clock.place(s(9.0)), None);
        assert_eq!(clock.length(s(3.0)), s(2.0));
        clock.resume(s(5.0));
        clock.resume(s(6.0));
        assert_eq!(clock.place(s(4.0)), None);
        assert_eq!(clock.place(s(5.0)), Some(s(2.0)));
        assert_eq!(clock.place(s(7.0)), Some(s(4.0)));
        assert_eq!(clock.length(s(7.0)), s(4.0));
        clock.pause(s(8.0));
        clock.resume(s(8.5));
        assert_eq!(clock.place(s(8.25)), None);
        assert_eq!(clock.place(s(10.0)), Some(s(6.5)));
        assert_eq!(clock.length(s(8.25)), s(5.0));
        assert_eq!(clock.length(s(10.0)), s(6.5));
        // Times before a pause keep their place, whenever they are asked about.
        assert_eq!(clock.place(s(1.0)), Some(s(1.0)));
    }
}
