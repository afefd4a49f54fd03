//! The packet bus: each published track fanned out to its subscribers.
//!
//! A publisher pushes every packet once; the bus hands a reference to each subscriber's
//! queue without waiting. Queues are bounded by time: a subscriber that falls behind keeps
//! everything that arrived within its [`Backlog`] and catches up; only a subscriber further
//! behind than that loses packets (counted for it and in `/metrics`), and nobody else
//! notices. Subscribers ask the publisher for key frames through the bus. Nothing here knows
//! about WebRTC: recorders and players see plain packets.
//!
//! The bus sits at the bottom of the house: the server makes it, the media plane publishes
//! into it, and players and recorders subscribe to it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use tokio::sync::{Notify, mpsc};

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

impl Packet {
    /// The packet as a track's timeline takes it (arrival on the wall clock, in µs).
    pub fn timed(&self) -> crate::rtp::timeline::Packet<Arc<[u8]>> {
        crate::rtp::timeline::Packet {
            ssrc: self.ssrc,
            seq: self.seq,
            rtp_time: self.rtp_time,
            marker: self.marker,
            payload: self.payload.clone(),
            arrival_us: self.arrival_wall.unix_nanos() / 1000,
        }
    }
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
    /// Packets a subscriber lost because it was further behind than its backlog allows.
    pub dropped: Counter,
}

/// How far behind a subscriber may fall before it loses packets: its queue keeps what
/// arrived within `time` of the oldest packet it has not taken, up to `messages`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backlog {
    /// The longest a packet waits in the queue.
    pub time: Duration,
    /// The most messages queued (a bound on memory whatever the rate).
    pub messages: usize,
}

impl Backlog {
    /// At most `time` and `messages` behind.
    pub const fn new(time: Duration, messages: usize) -> Self {
        Self { time, messages }
    }
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
    queue: Arc<Queue>,
    filter: Filter,
}

/// A subscriber's queue: many publishers push, one subscriber takes.
struct Queue {
    id: u64,
    backlog: Backlog,
    state: Mutex<QueueState>,
    ready: Notify,
    dropped: AtomicU64,
}

#[derive(Default)]
struct QueueState {
    /// Messages with when they were queued.
    messages: VecDeque<(Instant, BusMessage)>,
    /// The subscriber is gone: nothing more is queued.
    closed: bool,
}

impl Queue {
    fn state(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().expect("a bus queue is never poisoned")
    }

    /// Queues a packet unless the subscriber is further behind than its backlog allows.
    fn offer(&self, m: BusMessage, counters: &BusCounters) {
        let now = Instant::now();
        let mut state = self.state();
        if state.closed {
            return;
        }
        let behind = state
            .messages
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > self.backlog.time)
            || state.messages.len() >= self.backlog.messages;
        if behind {
            drop(state);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            counters.dropped.inc();
            return;
        }
        state.messages.push_back((now, m));
        drop(state);
        counters.delivered.inc();
        self.ready.notify_one();
    }

    /// Queues a track's announcement or end, which are never dropped.
    fn announce(&self, m: BusMessage) {
        let mut state = self.state();
        if !state.closed {
            state.messages.push_back((Instant::now(), m));
            drop(state);
            self.ready.notify_one();
        }
    }

    fn pop(&self) -> Option<BusMessage> {
        self.state().messages.pop_front().map(|(_, m)| m)
    }

    /// How long the oldest queued message has waited.
    fn lag(&self) -> Duration {
        self.state()
            .messages
            .front()
            .map_or(Duration::ZERO, |(at, _)| at.elapsed())
    }
}

/// One published track and the queues of its subscribers.
struct Feed {
    track: Arc<Track>,
    sinks: RwLock<Vec<Arc<Queue>>>,
    keyframes: mpsc::Sender<()>,
}

impl Feed {
    fn sinks(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<Queue>>> {
        self.sinks.read().expect("bus sinks are never poisoned")
    }

    fn sinks_mut(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Arc<Queue>>> {
        self.sinks.write().expect("bus sinks are never poisoned")
    }

    fn attach(&self, queue: Arc<Queue>) {
        queue.announce(BusMessage::Track(self.track.clone()));
        self.sinks_mut().push(queue);
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
                feed.attach(w.queue.clone());
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
    /// bounded by `backlog`.
    pub fn watch(
        &self,
        cid: &Cid,
        backlog: Backlog,
        filter: impl Fn(&Track) -> bool + Send + Sync + 'static,
    ) -> Subscription {
        let (queue, sub) = self.new_subscription(cid, backlog);
        let mut calls = self.calls();
        let call = calls.entry(cid.clone()).or_default();
        for feed in call.tracks.values() {
            if filter(&feed.track) {
                feed.attach(queue.clone());
            }
        }
        call.watchers.push(Watcher {
            queue,
            filter: Box::new(filter),
        });
        sub
    }

    /// Subscribes to one track of `cid`, if it is published.
    pub fn subscribe(&self, cid: &Cid, track_id: &str, backlog: Backlog) -> Option<Subscription> {
        let calls = self.calls();
        let feed = calls.get(cid)?.tracks.get(track_id)?;
        let (queue, sub) = self.new_subscription(cid, backlog);
        feed.attach(queue);
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

    fn new_subscription(&self, cid: &Cid, backlog: Backlog) -> (Arc<Queue>, Subscription) {
        let queue = Arc::new(Queue {
            id: self.inner.next_id.fetch_add(1, Ordering::Relaxed),
            backlog: Backlog {
                messages: backlog.messages.max(1),
                ..backlog
            },
            state: Mutex::new(QueueState::default()),
            ready: Notify::new(),
            dropped: AtomicU64::new(0),
        });
        let sub = Subscription {
            queue: queue.clone(),
            bus: self.clone(),
            cid: cid.clone(),
        };
        (queue, sub)
    }

    fn unsubscribe(&self, cid: &Cid, id: u64) {
        let mut calls = self.calls();
        let Some(call) = calls.get_mut(cid) else {
            return;
        };
        call.watchers.retain(|w| w.queue.id != id);
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
        for s in std::mem::take(&mut *feed.sinks_mut()) {
            s.announce(BusMessage::Ended(feed.track.clone()));
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

    /// Hands `packet` to every subscriber that is not too far behind to take it.
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
    queue: Arc<Queue>,
    bus: Bus,
    cid: Cid,
}

impl Subscription {
    /// The next message; waits for one.
    pub async fn recv(&self) -> BusMessage {
        loop {
            if let Some(m) = self.queue.pop() {
                return m;
            }
            // A message queued between the look and the wait left a permit: no wake-up is lost.
            self.queue.ready.notified().await;
        }
    }

    /// The next message if one is queued.
    pub fn try_recv(&self) -> Option<BusMessage> {
        self.queue.pop()
    }

    /// Packets this subscriber lost because it was further behind than its backlog allows.
    pub fn dropped(&self) -> u64 {
        self.queue.dropped.load(Ordering::Relaxed)
    }

    /// A view of how far behind this subscriber is, for whoever watches over it.
    pub fn gauge(&self) -> BacklogGauge {
        BacklogGauge(self.queue.clone())
    }

    /// Asks the publisher of `track_id` for a key frame.
    pub fn request_keyframe(&self, track_id: &str) {
        self.bus.request_keyframe(&self.cid, track_id);
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.queue.state().closed = true;
        self.bus.unsubscribe(&self.cid, self.queue.id);
    }
}

/// How far behind a subscriber is, read from outside it.
#[derive(Clone)]
pub struct BacklogGauge(Arc<Queue>);

impl BacklogGauge {
    /// How long the oldest message it has not taken has waited.
    pub fn lag(&self) -> Duration {
        self.0.lag()
    }

    /// Packets it lost because it was too far behind.
    pub fn dropped(&self) -> u64 {
        self.0.dropped.load(Ordering::Relaxed)
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
        let fast = bus.watch(&cid, Backlog::new(Duration::from_secs(60), 1000), |_| true);
        let slow = bus.watch(&cid, Backlog::new(Duration::from_secs(60), 10), |t| {
            t.track_type == TrackType::Audio
        });
        let video = bus.watch(&cid, Backlog::new(Duration::from_secs(60), 10), |t| {
            t.track_type == TrackType::Video
        });
        let publication = bus.publish(&cid, track("a", TrackType::Audio), kf_tx);
        for seq in 0..100 {
            publication.send(packet(publication.track(), seq));
        }
        assert!(matches!(fast.recv().await, BusMessage::Track(_)));
        for seq in 0..100 {
            match fast.recv().await {
                BusMessage::Packet(p) => assert_eq!(p.seq, seq),
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
        assert!(matches!(fast.recv().await, BusMessage::Ended(_)));
        assert!(bus.tracks(&cid).is_empty());
    }

    /// A subscriber behind by less than its backlog's time loses nothing, however many
    /// packets that is; one further behind loses what comes until it catches up.
    #[tokio::test]
    async fn queues_are_bounded_by_time() {
        const BACKLOG: Duration = Duration::from_secs(1);
        const N: u64 = 20_000;
        let bus = Bus::default();
        let cid = Cid::parse("default:c").unwrap();
        let (kf_tx, _kf_rx) = mpsc::channel(1);
        let sub = bus.watch(&cid, Backlog::new(BACKLOG, 1 << 20), |_| true);
        let publication = bus.publish(&cid, track("a", TrackType::Audio), kf_tx);
        // Sending these takes a small part of the backlog's time, even on a busy machine.
        for seq in 0..N {
            publication.send(packet(publication.track(), seq));
        }
        assert_eq!(sub.dropped(), 0);
        assert!(sub.gauge().lag() < BACKLOG);
        std::thread::sleep(BACKLOG + Duration::from_millis(50));
        assert!(sub.gauge().lag() > BACKLOG);
        publication.send(packet(publication.track(), N));
        assert_eq!(sub.dropped(), 1);
        // Caught up, it takes packets again; what it had is all there, in order.
        assert!(matches!(sub.recv().await, BusMessage::Track(_)));
        for seq in 0..N {
            assert!(matches!(sub.try_recv(), Some(BusMessage::Packet(p)) if p.seq == seq));
        }
        publication.send(packet(publication.track(), N + 1));
        assert!(matches!(sub.recv().await, BusMessage::Packet(p) if p.seq == N + 1));
        assert_eq!(sub.gauge().dropped(), 1);
        // The end of a track is never dropped.
        std::thread::sleep(Duration::from_millis(10));
        drop(publication);
        assert!(matches!(sub.recv().await, BusMessage::Ended(_)));
    }

    #[tokio::test]
    async fn late_watchers_get_current_tracks_and_dropping_unsubscribes() {
        let bus = Bus::default();
        let cid = Cid::parse("default:c").unwrap();
        let (kf_tx, _kf_rx) = mpsc::channel(1);
        let publication = bus.publish(&cid, track("v", TrackType::Video), kf_tx);
        let late = bus.watch(&cid, Backlog::new(Duration::from_secs(60), 10), |_| true);
        assert!(matches!(late.recv().await, BusMessage::Track(t) if t.track_id == "v"));
        let one = bus
            .subscribe(&cid, "v", Backlog::new(Duration::from_secs(60), 10))
            .unwrap();
        assert!(
            bus.subscribe(&cid, "nope", Backlog::new(Duration::from_secs(60), 10))
                .is_none()
        );
        drop(one);
        drop(late);
        assert!(publication.feed.sinks().is_empty());
    }
}
