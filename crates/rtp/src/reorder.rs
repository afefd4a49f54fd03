//! Puts one stream's packets back in sequence order, waiting a bounded time for late ones.

use std::collections::BTreeMap;

/// A packet released in order, with how many packets before it were given up as lost.
#[derive(Debug, PartialEq, Eq)]
pub struct Released<T> {
    /// The packet.
    pub item: T,
    /// Its extended sequence number.
    pub seq: u64,
    /// Packets missing just before it.
    pub lost_before: u64,
}

/// A reorder buffer keyed by extended sequence number. A missing packet is waited for until
/// `max_packets` are held or the oldest held one arrived `max_wait_ms` before the newest.
#[derive(Debug)]
pub struct Reorder<T> {
    held: BTreeMap<u64, (i64, T)>,
    next: Option<u64>,
    newest_arrival: i64,
    max_packets: usize,
    max_wait_ms: i64,
    late: u64,
}

impl<T> Reorder<T> {
    /// A buffer holding at most `max_packets` for at most `max_wait_ms`.
    pub fn new(max_packets: usize, max_wait_ms: i64) -> Self {
        Self {
            held: BTreeMap::new(),
            next: None,
            newest_arrival: i64::MIN,
            max_packets: max_packets.max(1),
            max_wait_ms,
            late: 0,
        }
    }

    /// Takes packet `seq` that arrived at `arrival_ms`. Duplicates and packets older than one
    /// already released are dropped (and counted).
    pub fn push(&mut self, seq: u64, arrival_ms: i64, item: T) {
        if self.next.is_some_and(|n| seq < n) || self.held.contains_key(&seq) {
            self.late += 1;
            return;
        }
        self.newest_arrival = self.newest_arrival.max(arrival_ms);
        self.held.insert(seq, (arrival_ms, item));
    }

    /// The next packet in order, if it is there or waiting for a missing one is over.
    pub fn pop(&mut self) -> Option<Released<T>> {
        self.release(false)
    }

    /// The next packet in order, not waiting for missing ones (at the end of the stream).
    pub fn drain(&mut self) -> Option<Released<T>> {
        self.release(true)
    }

    /// Packets dropped as duplicates or too late.
    pub fn late(&self) -> u64 {
        self.late
    }

    fn release(&mut self, now: bool) -> Option<Released<T>> {
        let (&seq, &(arrival, _)) = self.held.first_key_value()?;
        let in_order = self.next == Some(seq);
        let waited = self.held.len() > self.max_packets
            || self.newest_arrival.saturating_sub(arrival) >= self.max_wait_ms;
        if !(in_order || waited || now) {
            return None;
        }
        let (_, item) = self.held.pop_first().expect("looked at").1;
        let lost_before = self.next.map_or(0, |n| seq - n);
        self.next = Some(seq + 1);
        Some(Released {
            item,
            seq,
            lost_before,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(r: &mut Reorder<()>) -> Vec<(u64, u64)> {
        std::iter::from_fn(|| r.pop())
            .map(|p| (p.seq, p.lost_before))
            .collect()
    }

    #[test]
    fn swaps_are_undone_and_losses_given_up_after_the_wait() {
        let mut r = Reorder::new(100, 50);
        r.push(10, 0, ());
        // The first packet waits: an earlier one may still come.
        assert!(seqs(&mut r).is_empty());
        r.push(9, 1, ());
        r.push(12, 2, ());
        r.push(11, 3, ());
        r.push(11, 3, ());
        r.push(14, 10, ());
        r.push(15, 55, ());
        assert_eq!(seqs(&mut r), [(9, 0), (10, 0), (11, 0), (12, 0)]);
        // 13 is lost: 14 goes once it has waited 50 ms.
        r.push(16, 60, ());
        assert_eq!(seqs(&mut r), [(14, 1), (15, 0), (16, 0)]);
        r.push(8, 61, ());
        assert_eq!(r.late(), 2);
        r.push(20, 62, ());
        assert!(r.pop().is_none());
        assert_eq!(r.drain().map(|p| (p.seq, p.lost_before)), Some((20, 3)));
    }

    #[test]
    fn a_full_buffer_lets_go() {
        let mut r = Reorder::new(2, 1000);
        r.push(1, 0, ());
        r.push(3, 0, ());
        r.push(4, 0, ());
        assert_eq!(seqs(&mut r), [(1, 0)]);
        r.push(5, 0, ());
        assert_eq!(seqs(&mut r), [(3, 1), (4, 0), (5, 0)]);
    }
}
