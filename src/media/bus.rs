//! The packet bus: each published track fanned out to its subscribers.
//!
//! A publisher pushes every packet once; the bus hands a reference to each subscriber's
//! bounded queue without waiting. A subscriber that does not keep up loses packets (counted
//! for it and in `/metrics`); nobody else notices. Subscribers ask the publisher for key
//! frames through the bus. Nothing here knows about WebRTC: recorders see plain packets.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;

use crate::domain::{Cid, Timestamp, Track};

/// One RTP packet as it arrived (after SRTP), with what the media plane learned about it.
#[derive(Clone, Debug)]
pub struct Packet {
    /// The track it belongs to.
    pub track: Arc<Track>,
    /// The sender's SSRC (changes when the publisher restarts the track).
    pub ssrc: u32,
    /// Extended sequence number (no wrap).
    pub seq: u64,
    /// Extended RTP timestamp in the codec's clock (no wrap).
    pub rtp_time: u64,
    /// The RTP timestamp as sent.
    pub timestamp: u32,
    /// The marker bit (end of a video frame).
    pub marker: bool,
    /// The publisher's payload type.
    pub payload_type: u8,
    /// The RTP payload (no header).
    pub payload: Arc<[u8]>,
    /// When it arrived.
    pub arrival: Instant,
    /// When it arrived, in wall-clock time.
    pub arrival_wall: Timestamp,
    /// Audio level in -dBov (0 loudest, 127 silence), from the header extension.
    pub audio_level: Option<i8>,
    /// Voice activity flag of the audio level extension.
    pub voice_activity: Option<bool>,
    /// The last RTCP sender report of the stream: (NTP time, RTP time).
    pub sender_report: Option<(Timestamp, u32)>,
    /// The packet starts a key frame.
    pub keyframe: bool,
}

/// What a subscriber receives.
#[derive(Clone, Debug)]
pub enum BusMessage {
    /// A track it now receives (sent before the track's first packet).
    Track(Arc<Track>),
    /// A packet of one of its tracks.
    Packet(Arc<Packet>),
    /// A track ended; no more packets of it follow.
    Ended(Arc<Track>),
}

/// Counters of the bus, shared with `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct BusCounters {
    /// Packets published.
    pub published: Counter,
    /// Packets put in a subscriber's queue.
    pub delivered: Counter,
    /// Packets a subscriber lost because its queue was full.
    pub dropped: Counter,
}

/// The bus of every call in this process. Cheap to clone.
#[derive(Clone, Default)]
pub struct Bus {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    calls: Mutex<HashMap<Cid, CallFeeds>>,
    next_id: AtomicU64,
    counters: BusCounters,
}

#[derive(Default)]
struct CallFeeds {
    tracks: HashMap<String, Arc<Feed>>,
    watchers: Vec<Watcher>,
}

type Filter = Box<dyn Fn(&Track) -> bool + Send + Sync>;

struct Watcher {
    sink: Sink,
    filter: Filter,
}

#[derive(Clone)]
struct Sink {
    id: u64,
    tx: mpsc::Sender<BusMessage>,
    dropped: Arc<AtomicU64>,
}

impl Sink {
    /// Queues `m` unless the queue is full; true if queued.
    fn offer(&self, m: BusMessage, counters: &BusCounters) -> bool {
        match self.tx.try_send(m) {
            Ok(()) => {
                counters.delivered.inc();
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                counters.dropped.inc();
                false
            }
            // The subscription is being dropped; it removes itself.
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// One published track and the queues of its subscribers.
struct Feed {
    track: Arc<Track>,
    sinks: RwLock<Vec<Sink>>,
    keyframes: mpsc::Sender<()>,
}

impl Feed {
    fn sinks(&self) -> std::sync::RwLockReadGuard<'_, Vec<Sink>> {
        self.sinks.read().expect("bus sinks are never poisoned")
    }

    fn sinks_mut(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Sink>> {
        self.sinks.write().expect("bus sinks are never poisoned")
    }

    fn attach(&self, sink: Sink, counters: &BusCounters) {
        // The track announcement must not be lost: it waits for room only if the queue is
        // full, which a new subscriber's is not.
        sink.offer(BusMessage::Track(self.track.clone()), counters);
        self.sinks_mut().push(sink);
    }
}

impl Bus {
    /// A bus counting into `counters`.
    pub fn new(counters: BusCounters) -> Self {
        Self {
            inner: Arc::new(Inner {
                counters,
                ..Inner::default()
            }),
        }
    }

    /// The bus's counters.
    pub fn counters(&self) -> &BusCounters {
        &self.inner.counters
    }

    fn calls(&self) -> std::sync::MutexGuard<'_, HashMap<Cid, CallFeeds>> {
        self.inner
            .calls
            .lock()
            .expect("the bus map is never poisoned")
    }

    /// Publishes `track` of call `cid`; key frame requests of its subscribers arrive on
    /// `keyframes`. Subscribers watching the call get it at once.
    pub fn publish(&self, cid: &Cid, track: Track, keyframes: mpsc::Sender<()>) -> Publication {
        let track = Arc::new(track);
        let feed = Arc::new(Feed {
            track: track.clone(),
            sinks: RwLock::new(Vec::new()),
            keyframes,
        });
        let mut calls = self.calls();
        let call = calls.entry(cid.clone()).or_default();
        for w in &call.watchers {
            if (w.filter)(&track) {
                feed.attach(w.sink.clone(), &self.inner.counters);
            }
        }
        call.tracks.insert(track.track_id.clone(), feed.clone());
        Publication {
            bus: self.clone(),
            cid: cid.clone(),
            feed,
        }
    }

    /// Subscribes to every track of `cid` that `filter` accepts, now and later, with a queue
    /// of `capacity` messages.
    pub fn watch(
        &self,
        cid: &Cid,
        capacity: usize,
        filter: impl Fn(&Track) -> bool + Send + Sync + 'static,
    ) -> Subscription {
        let (sink, sub) = self.new_subscription(cid, capacity);
        let mut calls = self.calls();
        let call = calls.entry(cid.clone()).or_default();
        for feed in call.tracks.values() {
            if filter(&feed.track) {
                feed.attach(sink.clone(), &self.inner.counters);
            }
        }
        call.watchers.push(Watcher {
            sink,
            filter: Box::new(filter),
        });
        sub
    }

    /// Subscribes to one track of `cid`, if it is published.
    pub fn subscribe(&self, cid: &Cid, track_id: &str, capacity: usize) -> Option<Subscription> {
        let calls = self.calls();
        let feed = calls.get(cid)?.tracks.get(track_id)?;
        let (sink, sub) = self.new_subscription(cid, capacity);
        feed.attach(sink, &self.inner.counters);
        Some(sub)
    }

    /// The tracks of `cid` published now.
    pub fn tracks(&self, cid: &Cid) -> Vec<Arc<Track>> {
        let calls = self.calls();
        let mut tracks: Vec<_> = calls
            .get(cid)
            .map(|c| c.tracks.values().map(|f| f.track.clone()).collect())
            .unwrap_or_default();
        tracks.sort_by_key(|t| t.published_at);
        tracks
    }

    /// Asks the publisher of `track_id` in `cid` for a key frame.
    pub fn request_keyframe(&self, cid: &Cid, track_id: &str) {
        let calls = self.calls();
        if let Some(feed) = calls.get(cid).and_then(|c| c.tracks.get(track_id)) {
            // A request already waiting is as good as a second one.
            let _ = feed.keyframes.try_send(());
        }
    }

    fn new_subscription(&self, cid: &Cid, capacity: usize) -> (Sink, Subscription) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let dropped = Arc::new(AtomicU64::new(0));
        let sink = Sink {
            id,
            tx,
            dropped: dropped.clone(),
        };
        let sub = Subscription {
            id,
            rx,
            dropped,
            bus: self.clone(),
            cid: cid.clone(),
        };
        (sink, sub)
    }

    fn unsubscribe(&self, cid: &Cid, id: u64) {
        let mut calls = self.calls();
        let Some(call) = calls.get_mut(cid) else {
            return;
        };
        call.watchers.retain(|w| w.sink.id != id);
        for feed in call.tracks.values() {
            feed.sinks_mut().retain(|s| s.id != id);
        }
        if call.tracks.is_empty() && call.watchers.is_empty() {
            calls.remove(cid);
        }
    }

    fn unpublish(&self, cid: &Cid, feed: &Arc<Feed>) {
        let mut calls = self.calls();
        if let Some(call) = calls.get_mut(cid) {
            call.tracks.remove(&feed.track.track_id);
            if call.tracks.is_empty() && call.watchers.is_empty() {
                calls.remove(cid);
            }
        }
        drop(calls);
        let sinks = std::mem::take(&mut *feed.sinks_mut());
        for s in sinks {
            // The end of a track must reach the subscriber even if its queue is full:
            // wait for room in a task of its own.
            if s.tx
                .try_send(BusMessage::Ended(feed.track.clone()))
                .is_err()
            {
                let track = feed.track.clone();
                tokio::spawn(async move {
                    let _ = s.tx.send(BusMessage::Ended(track)).await;
                });
            }
        }
    }
}

/// A published track; dropping it ends the track for its subscribers.
pub struct Publication {
    bus: Bus,
    cid: Cid,
    feed: Arc<Feed>,
}

impl Publication {
    /// The track.
    pub fn track(&self) -> &Arc<Track> {
        &self.feed.track
    }

    /// Hands `packet` to every subscriber that has room for it.
    pub fn send(&self, packet: Packet) {
        let counters = &self.bus.inner.counters;
        counters.published.inc();
        let sinks = self.feed.sinks();
        if sinks.is_empty() {
            return;
        }
        let packet = Arc::new(packet);
        for s in sinks.iter() {
            s.offer(BusMessage::Packet(packet.clone()), counters);
        }
    }
}

impl Drop for Publication {
    fn drop(&mut self) {
        self.bus.unpublish(&self.cid, &self.feed);
    }
}

/// A subscriber's queue; dropping it unsubscribes.
pub struct Subscription {
    id: u64,
    rx: mpsc::Receiver<BusMessage>,
    dropped: Arc<AtomicU64>,
    bus: Bus,
    cid: Cid,
}

impl Subscription {
    /// The next message; `None` never comes while the bus lives.
    pub async fn recv(&mut self) -> Option<BusMessage> {
        self.rx.recv().await
    }

    /// The next message if one is queued.
    pub fn try_recv(&mut self) -> Option<BusMessage> {
        self.rx.try_recv().ok()
    }

    /// Packets this subscriber lost because its queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Asks the publisher of `track_id` for a key frame.
    pub fn request_keyframe(&self, track_id: &str) {
        self.bus.request_keyframe(&self.cid, track_id);
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.bus.unsubscribe(&self.cid, self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Codec, Participant, SessionId, TrackType, UserId};

    fn track(id: &str, t: TrackType) -> Track {
        Track {
            track_id: id.into(),
            track_type: t,
            codec: Codec {
                name: "opus".into(),
                clock_rate: 48_000,
                channels: 2,
                fmtp: String::new(),
            },
            participant: Participant {
                user_id: UserId::parse("u").unwrap(),
                user_session_id: SessionId::random(),
                source_id: String::new(),
                role: "user".into(),
                joined_at: Timestamp::now(),
            },
            published_at: Timestamp::now(),
        }
    }

    fn packet(track: &Arc<Track>, seq: u64) -> Packet {
        Packet {
            track: track.clone(),
            ssrc: 1,
            seq,
            rtp_time: seq * 960,
            timestamp: (seq * 960) as u32,
            marker: false,
            payload_type: 111,
            payload: Arc::from(&[1u8, 2, 3][..]),
            arrival: Instant::now(),
            arrival_wall: Timestamp::now(),
            audio_level: None,
            voice_activity: None,
            sender_report: None,
            keyframe: false,
        }
    }

    #[tokio::test]
    async fn slow_subscriber_drops_without_holding_up_others() {
        let bus = Bus::default();
        let cid = Cid::parse("default:c").unwrap();
        let (kf_tx, mut kf_rx) = mpsc::channel(1);
        let mut fast = bus.watch(&cid, 1000, |_| true);
        let slow = bus.watch(&cid, 10, |t| t.track_type == TrackType::Audio);
        let video = bus.watch(&cid, 10, |t| t.track_type == TrackType::Video);
        let publication = bus.publish(&cid, track("a", TrackType::Audio), kf_tx);
        for seq in 0..100 {
            publication.send(packet(publication.track(), seq));
        }
        assert!(matches!(fast.recv().await, Some(BusMessage::Track(_))));
        for seq in 0..100 {
            match fast.recv().await {
                Some(BusMessage::Packet(p)) => assert_eq!(p.seq, seq),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(fast.dropped(), 0);
        // The slow queue holds the announcement and 9 packets; the rest were dropped.
        assert_eq!(slow.dropped(), 91);
        assert_eq!(video.dropped(), 0);
        assert_eq!(bus.counters().dropped.get(), 91);
        slow.request_keyframe("a");
        assert!(kf_rx.try_recv().is_ok());
        drop(publication);
        assert!(matches!(fast.recv().await, Some(BusMessage::Ended(_))));
        assert!(bus.tracks(&cid).is_empty());
    }

    #[tokio::test]
    async fn late_watchers_get_current_tracks_and_dropping_unsubscribes() {
        let bus = Bus::default();
        let cid = Cid::parse("default:c").unwrap();
        let (kf_tx, _kf_rx) = mpsc::channel(1);
        let publication = bus.publish(&cid, track("v", TrackType::Video), kf_tx);
        let mut late = bus.watch(&cid, 10, |_| true);
        assert!(matches!(late.recv().await, Some(BusMessage::Track(t)) if t.track_id == "v"));
        let one = bus.subscribe(&cid, "v", 10).unwrap();
        assert!(bus.subscribe(&cid, "nope", 10).is_none());
        drop(one);
        drop(late);
        assert!(publication.feed.sinks().is_empty());
    }
}
