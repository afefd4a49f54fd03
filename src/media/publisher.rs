//! `reel publish`: a WHIP client that sends a looped, pre-encoded clip as many participants,
//! for demos, load tests and benchmarks. Nothing is encoded: str0m packetizes the clip's
//! frames as they fall due. A key frame request makes the next frame sent the clip's next key
//! frame.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use str0m::change::SdpAnswer;
use str0m::format::Codec as RtcCodec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig, RtcError};
use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::clip::{ClipCodec, Stream};

/// Least time between two jumps to a key frame on request.
const KEYFRAME_JUMP_INTERVAL: Duration = Duration::from_millis(500);
/// How long a stopping participant waits for the engine's last counts (it reports each second).
const FINAL_STATS_WAIT: Duration = Duration::from_millis(1500);
/// How often the publisher logs its progress.
const REPORT_INTERVAL: Duration = Duration::from_secs(5);

/// Why a participant could not publish.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The WHIP request failed.
    #[error("WHIP request to {url} failed: {reason}")]
    Http {
        /// The endpoint.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The WebRTC engine refused something.
    #[error("WebRTC: {0}")]
    Engine(#[from] RtcError),
    /// A socket failed.
    #[error("UDP: {0}")]
    Io(#[from] std::io::Error),
    /// Connectivity was lost.
    #[error("ICE disconnected")]
    Disconnected,
    /// Neither video nor audio was given.
    #[error("nothing to send: give a video clip, an audio clip or both")]
    NothingToSend,
}

/// Who one participant publishes as.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The user token sent as Bearer.
    pub token: String,
    /// `?source_id=` for this participant (`?sourceId=` on a broadcast), when several share
    /// a user.
    pub source_id: Option<String>,
    /// Its WHIP endpoint, when not the configuration's (one stream per participant).
    pub url: Option<reqwest::Url>,
}

/// What to publish, where, and for how long.
#[derive(Clone, Debug)]
pub struct PublishConfig {
    /// The WHIP endpoint, `http(s)://host/whip/{type}/{id}`.
    pub url: reqwest::Url,
    /// One identity per participant.
    pub participants: Vec<Identity>,
    /// The video clip, if any.
    pub video: Option<Arc<Stream>>,
    /// The audio clip, if any.
    pub audio: Option<Arc<Stream>>,
    /// Time between two participants' starts.
    pub stagger: Duration,
    /// The local address for media; by default the one that routes to the server.
    pub bind: Option<IpAddr>,
    /// Share of datagrams (0 to 1) dropped instead of sent once connected, as a lossy
    /// network would.
    pub loss: f64,
    /// Behave like a sender with discontinuous transmission whose speaker pauses: in the
    /// second half of every 4 s, one audio packet per 400 ms instead of one per 20 ms (the
    /// RTP time runs on).
    pub dtx: bool,
    /// How long after its capture each video frame is sent (its RTP time and the sender
    /// reports keep the capture time).
    pub video_delay: Duration,
}

/// The cycle of `PublishConfig::dtx`: talking, then as long silent.
const DTX_CYCLE: Duration = Duration::from_secs(4);
/// How often a silent sender with DTX still sends a packet.
const DTX_UPDATE: Duration = Duration::from_millis(400);

/// What a run sent.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PublishReport {
    /// Participants started.
    pub participants: usize,
    /// Participants that connected.
    pub connected: usize,
    /// Participants that failed.
    pub failed: usize,
    /// Distinct failure reasons (at most five).
    pub errors: Vec<String>,
    /// RTP packets sent, retransmissions included.
    pub packets: u64,
    /// RTP bytes sent.
    pub bytes: u64,
    /// Seconds from the first start to the end.
    pub seconds: f64,
    /// For each participant that connected, in the order they ended: seconds from its
    /// connection (when its media began) to the stop (when its media ended).
    pub media_seconds: Vec<f64>,
}

#[derive(Default)]
struct Counters {
    connected: AtomicUsize,
    live: AtomicUsize,
    packets: AtomicU64,
    bytes: AtomicU64,
}

/// Publishes until `stop` is cancelled, then ends every WHIP session.
pub async fn publish(config: PublishConfig, stop: CancellationToken) -> PublishReport {
    info!(
        url = %config.url,
        participants = config.participants.len(),
        video = ?config.video.as_ref().map(|s| s.codec),
        audio = config.audio.is_some(),
        "publishing"
    );
    let counters = Arc::new(Counters::default());
    let http = reqwest::Client::new();
    let config = Arc::new(config);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    let progress = tokio::spawn(log_progress(counters.clone(), stop.clone()));
    for n in 0..config.participants.len() {
        if n > 0 {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(config.stagger) => {}
            }
        }
        let (config, http, counters, stop) =
            (config.clone(), http.clone(), counters.clone(), stop.clone());
        tasks.spawn(async move { participant(n, &config, &http, &counters, stop).await });
    }
    let mut report = PublishReport {
        participants: tasks.len(),
        ..PublishReport::default()
    };
    while let Some(result) = tasks.join_next().await {
        let failure = match result {
            Ok(Ok(media)) => {
                report.media_seconds.extend(media.map(|d| d.as_secs_f64()));
                None
            }
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(format!("participant task failed: {e}")),
        };
        if let Some(reason) = failure {
            warn!(error = %reason, "participant failed");
            report.failed += 1;
            if report.errors.len() < 5 && !report.errors.contains(&reason) {
                report.errors.push(reason);
            }
        }
    }
    progress.abort();
    report.connected = counters.connected.load(Ordering::Relaxed);
    report.packets = counters.packets.load(Ordering::Relaxed);
    report.bytes = counters.bytes.load(Ordering::Relaxed);
    report.seconds = started.elapsed().as_secs_f64();
    report
}

/// Logs what is live and the bitrate every `REPORT_INTERVAL`.
async fn log_progress(counters: Arc<Counters>, stop: CancellationToken) {
    let mut last = (Instant::now(), 0u64);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(REPORT_INTERVAL) => {}
        }
        let bytes = counters.bytes.load(Ordering::Relaxed);
        let mbits = (bytes - last.1) as f64 * 8.0 / last.0.elapsed().as_secs_f64() / 1e6;
        last = (Instant::now(), bytes);
        info!(
            live = counters.live.load(Ordering::Relaxed),
            packets = counters.packets.load(Ordering::Relaxed),
            mbit_per_s = format!("{mbits:.1}"),
            "publishing"
        );
    }
}

/// One participant: offer, WHIP POST, then the clip until `stop`, then DELETE.
async fn participant(
    n: usize,
    config: &PublishConfig,
    http: &reqwest::Client,
    counters: &Counters,
    stop: CancellationToken,
) -> Result<Option<Duration>, PublishError> {
    let identity = &config.participants[n];
    let mut url = identity.url.clone().unwrap_or_else(|| config.url.clone());
    if let Some(id) = &identity.source_id {
        let name = if url.path().contains("/whip/broadcast/") {
            "sourceId"
        } else {
            "source_id"
        };
        url.query_pairs_mut().append_pair(name, id);
    }
    let http_error = |reason: String| PublishError::Http {
        url: url.to_string(),
        reason,
    };
    let local_ip = match config.bind {
        Some(ip) => ip,
        None => route_to(&config.url).await?,
    };
    let socket = UdpSocket::bind(SocketAddr::new(local_ip, 0)).await?;
    let local = socket.local_addr()?;

    let mut rtc = RtcConfig::new()
        .clear_codecs()
        .enable_opus(config.audio.is_some(), false)
        .enable_vp8(has(&config.video, ClipCodec::Vp8))
        .enable_vp9(has(&config.video, ClipCodec::Vp9))
        .enable_av1(has(&config.video, ClipCodec::Av1))
        .enable_h264(has(&config.video, ClipCodec::H264))
        .set_stats_interval(Some(Duration::from_secs(1)))
        .build(Instant::now());
    let candidate = Candidate::host(local, "udp")
        .map_err(|e| PublishError::Io(std::io::Error::other(format!("{local}: {e}"))))?;
    rtc.add_local_candidate(candidate);
    let mut api = rtc.sdp_api();
    let stream_id = Some(format!("reel-publish-{n}"));
    let mut add = |kind, stream: &Option<Arc<Stream>>| {
        stream.as_ref().map(|s| {
            (
                api.add_media(kind, Direction::SendOnly, stream_id.clone(), None, None),
                s.clone(),
            )
        })
    };
    let audio = add(MediaKind::Audio, &config.audio);
    let video = add(MediaKind::Video, &config.video);
    let (offer, pending) = api.apply().ok_or(PublishError::NothingToSend)?;

    let response = http
        .post(url.clone())
        .bearer_auth(&identity.token)
        .header(reqwest::header::CONTENT_TYPE, "application/sdp")
        .body(offer.to_sdp_string())
        .send()
        .await
        .map_err(|e| http_error(e.to_string()))?;
    let status = response.status();
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .and_then(|l| url.join(l).ok());
    let body = response
        .text()
        .await
        .map_err(|e| http_error(e.to_string()))?;
    if status != reqwest::StatusCode::CREATED {
        return Err(http_error(format!("{status}: {}", body.trim())));
    }
    let location = location.ok_or_else(|| http_error("201 without a Location".into()))?;
    let answer =
        SdpAnswer::from_sdp_string(&body).map_err(|e| http_error(format!("bad answer: {e}")))?;
    rtc.sdp_api().accept_answer(pending, answer)?;
    debug!(participant = n, session = %location, "WHIP session created");

    let mut sender = Sender {
        rtc,
        socket,
        local,
        audio: audio.map(|(mid, s)| Player::new(mid, s, config.dtx, Duration::ZERO)),
        video: video.map(|(mid, s)| Player::new(mid, s, false, config.video_delay)),
        loss: Loss::new(config.loss, n as u64),
        connected: None,
        sent: Vec::new(),
        fresh: Vec::new(),
    };
    counters.live.fetch_add(1, Ordering::Relaxed);
    let outcome = sender.run(counters, &stop).await;
    counters.live.fetch_sub(1, Ordering::Relaxed);
    // End the session whatever happened; the server would otherwise wait for ICE to time out.
    let _ = http
        .delete(location)
        .bearer_auth(&identity.token)
        .send()
        .await;
    outcome
}

fn has(stream: &Option<Arc<Stream>>, codec: ClipCodec) -> bool {
    stream.as_ref().is_some_and(|s| s.codec == codec)
}

/// The local address that routes to the server of `url`.
async fn route_to(url: &reqwest::Url) -> Result<IpAddr, PublishError> {
    let host = url.host_str().unwrap_or("127.0.0.1");
    let port = url.port_or_known_default().unwrap_or(80);
    let server = tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| PublishError::Http {
            url: url.to_string(),
            reason: format!("{host} has no address"),
        })?;
    let probe = UdpSocket::bind(SocketAddr::new(
        if server.is_ipv4() {
            IpAddr::from([0, 0, 0, 0])
        } else {
            IpAddr::from([0u16; 8])
        },
        0,
    ))
    .await?;
    probe.connect(server).await?;
    Ok(probe.local_addr()?.ip())
}

/// Where a participant is in one stream of the clip.
struct Player {
    mid: Mid,
    stream: Arc<Stream>,
    pt: Option<Pt>,
    index: usize,
    /// When the next frame falls due; set on connecting.
    due: Option<Instant>,
    start: Instant,
    keyframe_wanted: bool,
    last_jump: Option<Instant>,
    dtx: bool,
    /// From a frame's capture (when it falls due) to its sending.
    delay: Duration,
}

impl Player {
    fn new(mid: Mid, stream: Arc<Stream>, dtx: bool, delay: Duration) -> Player {
        Player {
            mid,
            dtx,
            delay,
            stream,
            pt: None,
            index: 0,
            due: None,
            start: Instant::now(),
            keyframe_wanted: false,
            last_jump: None,
        }
    }

    /// When the next frame is to be sent.
    fn next_send(&self) -> Option<Instant> {
        self.due.map(|due| due + self.delay)
    }

    /// Writes the frames due to be sent by `now`.
    fn send_due(&mut self, rtc: &mut Rtc, now: Instant) -> Result<(), RtcError> {
        let Some(mut due) = self.due else {
            return Ok(());
        };
        let (codec, clock) = rtc_codec(self.stream.codec);
        let pt = match self.pt {
            Some(pt) => pt,
            None => {
                let Some(pt) = rtc.writer(self.mid).and_then(|w| {
                    w.payload_params()
                        .find(|p| p.spec().codec == codec)
                        .map(|p| p.pt())
                }) else {
                    return Ok(());
                };
                *self.pt.insert(pt)
            }
        };
        if self.keyframe_wanted {
            self.keyframe_wanted = false;
            if self
                .last_jump
                .is_none_or(|t| now - t >= KEYFRAME_JUMP_INTERVAL)
            {
                self.index = self.stream.next_keyframe(self.index);
                self.last_jump = Some(now);
            }
        }
        while due + self.delay <= now {
            let Some(writer) = rtc.writer(self.mid) else {
                return Ok(());
            };
            let elapsed = due - self.start;
            let ticks = elapsed.as_micros() * u128::from(clock.get()) / 1_000_000;
            let time = MediaTime::new(ticks as u64, clock);
            if !(self.dtx && silent(elapsed)) {
                writer.write(pt, due, time, self.stream.frames[self.index].data.clone())?;
            }
            due += self.stream.gap_after(self.index);
            self.index = (self.index + 1) % self.stream.frames.len();
        }
        self.due = Some(due);
        Ok(())
    }
}

/// True if a DTX sender sends nothing `elapsed` into the clip: in the silent half of the
/// cycle, between its periodic updates.
fn silent(elapsed: Duration) -> bool {
    let cycle = DTX_CYCLE.as_millis();
    let phase = elapsed.as_millis() % cycle;
    phase >= cycle / 2 && (phase - cycle / 2) % DTX_UPDATE.as_millis() >= 20
}

/// Drops a share of datagrams, pseudo-randomly (xorshift).
struct Loss {
    share: f64,
    state: u64,
}

impl Loss {
    fn new(share: f64, seed: u64) -> Self {
        Self {
            share,
            state: 0x9e37_79b9_7f4a_7c15 ^ seed.wrapping_mul(0xff51_afd7_ed55_8ccd) | 1,
        }
    }

    fn drop_next(&mut self) -> bool {
        if self.share <= 0.0 {
            return false;
        }
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        (self.state >> 11) as f64 / (1u64 << 53) as f64 <= self.share
    }
}

fn rtc_codec(codec: ClipCodec) -> (RtcCodec, Frequency) {
    match codec {
        ClipCodec::Vp8 => (RtcCodec::Vp8, Frequency::NINETY_KHZ),
        ClipCodec::Vp9 => (RtcCodec::Vp9, Frequency::NINETY_KHZ),
        ClipCodec::Av1 => (RtcCodec::Av1, Frequency::NINETY_KHZ),
        ClipCodec::H264 => (RtcCodec::H264, Frequency::NINETY_KHZ),
        ClipCodec::Opus => (RtcCodec::Opus, Frequency::FORTY_EIGHT_KHZ),
    }
}

/// A participant's engine, socket and clip positions.
struct Sender {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    audio: Option<Player>,
    video: Option<Player>,
    /// When the connection was made (and the media began).
    connected: Option<Instant>,
    loss: Loss,
    /// Packets and bytes last reported per mid, to add only what is new.
    sent: Vec<(Mid, u64, u64)>,
    /// The mids reported since stopping began.
    fresh: Vec<Mid>,
}

impl Sender {
    /// Sends the clip until `stop`, then waits (briefly) for the engine's final counts.
    /// Returns how long media was sent, if the connection was made.
    async fn run(
        &mut self,
        counters: &Counters,
        stop: &CancellationToken,
    ) -> Result<Option<Duration>, PublishError> {
        let mut buf = vec![0u8; 2048];
        let mut disconnected_since: Option<Instant> = None;
        let mut stopping: Option<Instant> = None;
        loop {
            let timeout = self.drain(counters, &mut disconnected_since).await?;
            if disconnected_since.is_some_and(|t| t.elapsed() > Duration::from_secs(5)) {
                return Err(PublishError::Disconnected);
            }
            if let Some(t) = stopping {
                let players = usize::from(self.audio.is_some()) + usize::from(self.video.is_some());
                let waiting = self.connected.is_some() && self.fresh.len() < players;
                if !waiting || t.elapsed() > FINAL_STATS_WAIT {
                    self.rtc.disconnect();
                    return Ok(self.connected.map(|c| t.saturating_duration_since(c)));
                }
            }
            let next = [&self.audio, &self.video]
                .into_iter()
                .flatten()
                .filter_map(Player::next_send)
                .chain(stopping.map(|t| t + FINAL_STATS_WAIT))
                .fold(timeout, Instant::min);
            tokio::select! {
                _ = stop.cancelled(), if stopping.is_none() => {
                    stopping = Some(Instant::now());
                    self.fresh.clear();
                    for p in [&mut self.audio, &mut self.video].into_iter().flatten() {
                        p.due = None;
                    }
                }
                received = self.socket.recv_from(&mut buf) => {
                    let (n, source) = received?;
                    if let Ok(contents) = buf[..n].try_into() {
                        let input = Input::Receive(Instant::now(), Receive {
                            proto: Protocol::Udp,
                            source,
                            destination: self.local,
                            contents,
                        });
                        if let Err(e) = self.rtc.handle_input(input) {
                            debug!(error = %e, "datagram refused");
                        }
                    }
                }
                _ = tokio::time::sleep_until(next.into()) => {
                    let now = Instant::now();
                    for player in [&mut self.audio, &mut self.video].into_iter().flatten() {
                        player.send_due(&mut self.rtc, now)?;
                    }
                    self.rtc.handle_input(Input::Timeout(now))?;
                }
            }
        }
    }

    /// Sends what the engine has to send and handles its events; returns its next timeout.
    async fn drain(
        &mut self,
        counters: &Counters,
        disconnected_since: &mut Option<Instant>,
    ) -> Result<Instant, PublishError> {
        loop {
            if !self.rtc.is_alive() {
                return Err(PublishError::Disconnected);
            }
            match self.rtc.poll_output()? {
                Output::Timeout(t) => return Ok(t),
                Output::Transmit(t) => {
                    if self.connected.is_none() || !self.loss.drop_next() {
                        self.socket.send_to(&t.contents, t.destination).await?;
                    }
                }
                Output::Event(e) => match e {
                    Event::Connected => {
                        let now = Instant::now();
                        self.connected = Some(now);
                        counters.connected.fetch_add(1, Ordering::Relaxed);
                        for p in [&mut self.audio, &mut self.video].into_iter().flatten() {
                            p.start = now;
                            p.due = Some(now);
                        }
                    }
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        disconnected_since.get_or_insert_with(Instant::now);
                    }
                    Event::IceConnectionStateChange(_) => *disconnected_since = None,
                    Event::KeyframeRequest(r) => {
                        if let Some(v) = self.video.as_mut().filter(|v| v.mid == r.mid) {
                            v.keyframe_wanted = true;
                        }
                    }
                    Event::MediaEgressStats(s) => {
                        let entry = match self.sent.iter_mut().find(|e| e.0 == s.mid) {
                            Some(e) => e,
                            None => {
                                self.sent.push((s.mid, 0, 0));
                                self.sent.last_mut().expect("just pushed")
                            }
                        };
                        counters
                            .packets
                            .fetch_add(s.packets.saturating_sub(entry.1), Ordering::Relaxed);
                        counters
                            .bytes
                            .fetch_add(s.bytes.saturating_sub(entry.2), Ordering::Relaxed);
                        entry.1 = entry.1.max(s.packets);
                        entry.2 = entry.2.max(s.bytes);
                        if !self.fresh.contains(&s.mid) {
                            self.fresh.push(s.mid);
                        }
                    }
                    _ => {}
                },
            }
        }
    }
}
