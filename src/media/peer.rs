//! One WebRTC peer: a str0m `Rtc` owned by one task.
//!
//! The task waits for one thing at a time (a datagram, a command, a bus message, a key frame
//! request, or the engine's next timeout), applies it as the single mutation the engine
//! allows, then drains the engine's output before waiting again. A publisher hands each
//! packet to the bus; a player forwards the bus's packets into its slots.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use str0m::format::Codec as RtcCodec;
use str0m::media::{KeyframeRequestKind, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite, Ssrc};
use str0m::{Event, IceConnectionState, Input, Output, Rtc, RtcError};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use super::negotiate;
use super::room::Rooms;
use super::sdp::{self, Fragment};
use super::udp::{Datagram, Endpoint};
use super::{MediaError, SlotView};
use crate::bus::{Bus, BusMessage, Packet, Publication, Subscription};
use crate::domain::{Activity, Cid, Codec, Participant, Timestamp, Track, TrackType, UserId};
use crate::rtp::starts_keyframe;

/// How long a peer may go without ICE connectivity before it is closed.
const DISCONNECTED_FOR: Duration = Duration::from_secs(5);
/// Least time between two key frame requests to a publisher.
const KEYFRAME_INTERVAL: Duration = Duration::from_millis(250);
/// How often a player waiting for a key frame asks again.
const KEYFRAME_RETRY: Duration = Duration::from_millis(500);
/// How often a publisher reports its audio level to its room.
const LEVEL_INTERVAL: Duration = Duration::from_millis(200);

/// What the HTTP side asks of a peer.
pub(crate) enum Command {
    /// Trickled candidates or an ICE restart; a restart answers with the server's fragment.
    Patch {
        fragment: Fragment,
        reply: oneshot::Sender<Result<Option<String>, MediaError>>,
    },
    /// End the session.
    Close,
}

/// What the peer does.
pub(crate) enum Role {
    /// Publishes a participant's tracks (WHIP).
    Publish {
        participant: Participant,
        screen: bool,
        keyframes: mpsc::Receiver<()>,
        keyframe_sender: mpsc::Sender<()>,
    },
    /// Plays other participants' tracks in its slots (WHEP).
    Play {
        subscription: Subscription,
        /// The user playing, whose own tracks are left out.
        viewer: Option<UserId>,
        slots: watch::Sender<Vec<SlotView>>,
    },
}

/// Everything a peer task needs.
pub(crate) struct Peer {
    pub key: String,
    pub cid: Cid,
    pub rtc: Rtc,
    pub endpoint: Endpoint,
    /// The address remote peers send to (the datagrams' destination).
    pub local: SocketAddr,
    pub offer: String,
    pub inbox: mpsc::Receiver<Datagram>,
    pub commands: mpsc::Receiver<Command>,
    pub role: Role,
    pub bus: Bus,
    pub rooms: Arc<Rooms>,
}

/// Why a peer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Closed on request (DELETE) or by the remote.
    Closed,
    /// Connectivity was lost.
    Lost,
}

/// A player's slot: one negotiated sending m-line.
struct Slot {
    mid: Mid,
    audio: bool,
    ssrc: Ssrc,
    /// The player's payload types by codec.
    pts: Vec<(RtcCodec, Pt)>,
    binding: Option<Binding>,
    next_seq: u64,
    last_ts: u32,
    last_sent: Option<Instant>,
}

struct Binding {
    track: Arc<Track>,
    pt: Pt,
    seq_offset: u64,
    ts_offset: u32,
    first_seq: Option<u64>,
    last_keyframe_request: Option<Instant>,
}

struct State {
    published: HashMap<Mid, Publication>,
    slots: Vec<Slot>,
    disconnected_since: Option<Instant>,
    last_keyframe_request: Option<Instant>,
    levels: Levels,
}

/// Audio levels of a publisher, summed up between two reports.
#[derive(Default)]
struct Levels {
    sum: u32,
    count: u32,
    last_report: Option<Instant>,
}

impl Peer {
    /// Runs the peer until it closes or its connectivity is lost.
    pub async fn run(mut self) -> Exit {
        let mut state = State {
            published: HashMap::new(),
            slots: Vec::new(),
            disconnected_since: None,
            last_keyframe_request: None,
            levels: Levels::default(),
        };
        if matches!(self.role, Role::Play { .. }) {
            self.make_slots(&mut state);
        }
        let exit = loop {
            let deadline = match self.drain(&mut state) {
                Ok(Some(t)) => t,
                Ok(None) => break Exit::Closed,
                Err(e) => {
                    warn!(peer = %self.key, error = %e, "WebRTC engine failed");
                    break Exit::Lost;
                }
            };
            if let Some(since) = state.disconnected_since
                && since.elapsed() > DISCONNECTED_FOR
            {
                break Exit::Lost;
            }
            let deadline = deadline.min(Instant::now() + Duration::from_secs(1));
            let step = tokio::select! {
                d = self.inbox.recv() => match d {
                    Some(d) => self.receive(d),
                    None => break Exit::Closed,
                },
                c = self.commands.recv() => match c {
                    Some(Command::Patch { fragment, reply }) => {
                        let _ = reply.send(self.patch(fragment));
                        Ok(())
                    }
                    Some(Command::Close) | None => {
                        self.rtc.disconnect();
                        let _ = self.drain(&mut state);
                        break Exit::Closed;
                    }
                },
                Some(input) = role_input(&mut self.role) => {
                    match input {
                        RoleInput::Keyframe => self.request_keyframe(&mut state),
                        RoleInput::Bus(m) => self.forward(&mut state, m),
                    }
                    Ok(())
                }
                _ = tokio::time::sleep_until(deadline.into()) => {
                    self.rtc.handle_input(Input::Timeout(Instant::now()))
                }
            };
            if let Err(e) = step {
                debug!(peer = %self.key, error = %e, "input refused");
            }
        };
        // Ending the publications tells subscribers and the room, in order.
        for (_, p) in state.published.drain() {
            self.rooms
                .report(&self.cid, Activity::TrackEnded(p.track().clone()));
        }
        exit
    }

    /// Drains the engine's output; the next timeout, or `None` once it is closed.
    fn drain(&mut self, state: &mut State) -> Result<Option<Instant>, RtcError> {
        loop {
            if !self.rtc.is_alive() {
                return Ok(None);
            }
            match self.rtc.poll_output()? {
                Output::Timeout(t) => return Ok(Some(t)),
                Output::Transmit(t) => {
                    // UDP may drop; so may a full socket buffer.
                    let _ = self.endpoint.socket.try_send_to(&t.contents, t.destination);
                }
                Output::Event(e) => {
                    if self.on_event(state, e) {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// Handles an engine event; true when the peer is finished.
    fn on_event(&mut self, state: &mut State, e: Event) -> bool {
        match e {
            Event::Connected => info!(peer = %self.key, cid = %self.cid, "peer connected"),
            Event::IceConnectionStateChange(s) => {
                debug!(peer = %self.key, state = ?s, "ICE state");
                match s {
                    IceConnectionState::Disconnected => {
                        state.disconnected_since.get_or_insert_with(Instant::now);
                    }
                    _ => state.disconnected_since = None,
                }
            }
            Event::RtpPacket(p) => self.publish(state, p),
            Event::KeyframeRequest(r) => {
                if let Some(b) = state
                    .slots
                    .iter()
                    .find(|s| s.mid == r.mid)
                    .and_then(|s| s.binding.as_ref())
                {
                    self.bus.request_keyframe(&self.cid, &b.track.track_id);
                }
            }
            Event::Closed => return true,
            _ => {}
        }
        false
    }

    fn receive(&mut self, d: Datagram) -> Result<(), RtcError> {
        let Ok(contents) = d.data.as_slice().try_into() else {
            // Not STUN, DTLS, RTP or RTCP: nothing for the engine.
            return Ok(());
        };
        let input = Input::Receive(
            d.at,
            Receive {
                proto: Protocol::Udp,
                source: d.source,
                destination: self.local,
                contents,
            },
        );
        self.rtc.handle_input(input)
    }

    fn patch(&mut self, f: Fragment) -> Result<Option<String>, MediaError> {
        if let Some((ufrag, pwd)) = &f.credentials {
            // An ICE restart: the original offer with the new credentials, answered anew.
            let answer = negotiate::restart_ice(&mut self.rtc, &self.offer, ufrag, pwd)?;
            let (lufrag, lpwd) = sdp::credentials(&answer)
                .ok_or_else(|| MediaError::Internal("the answer lacks ICE credentials".into()))?;
            self.endpoint.add_ufrag(&lufrag);
            self.offer = sdp::with_credentials(&self.offer, ufrag, pwd);
            let mut frag = format!("a=ice-lite\r\na=ice-ufrag:{lufrag}\r\na=ice-pwd:{lpwd}\r\n");
            for line in answer.lines().filter(|l| l.starts_with("a=candidate:")) {
                frag.push_str(line);
                frag.push_str("\r\n");
            }
            frag.push_str("a=end-of-candidates\r\n");
            return Ok(Some(frag));
        }
        negotiate::add_candidates(&mut self.rtc, &f.candidates)?;
        Ok(None)
    }

    // ---- publishing -------------------------------------------------------------------

    fn publish(&mut self, state: &mut State, p: RtpPacket) {
        let Role::Publish {
            participant,
            screen,
            keyframe_sender,
            ..
        } = &self.role
        else {
            return;
        };
        let ssrc = p.header.ssrc;
        let Some(mid) = self.rtc.direct_api().stream_rx(&ssrc).map(|s| s.mid()) else {
            return;
        };
        if let Entry::Vacant(vacant) = state.published.entry(mid) {
            let Some(media) = self.rtc.media(mid) else {
                return;
            };
            let audio = media.kind() == MediaKind::Audio;
            let Some(codec) = codec_of(&self.rtc, p.header.payload_type) else {
                return;
            };
            let track = Track {
                track_id: format!("{}-{mid}", self.key),
                track_type: TrackType::of(audio, *screen),
                codec,
                participant: participant.clone(),
                published_at: Timestamp::now(),
            };
            info!(peer = %self.key, cid = %self.cid, track_id = %track.track_id, track_type = %track.track_type,
                  codec = %track.codec.name, "track published");
            // Audio tracks take no key frame requests: their sender is never listened to.
            let keyframes = if audio {
                mpsc::channel(1).0
            } else {
                keyframe_sender.clone()
            };
            let publication = self.bus.publish(&self.cid, track, keyframes);
            self.rooms.report(
                &self.cid,
                Activity::TrackPublished(publication.track().clone()),
            );
            vacant.insert(publication);
        }
        let ext = &p.header.ext_vals;
        if let Some(level) = ext.audio_level {
            self.report_level(state, level);
        }
        let Some(published) = state.published.get(&mid) else {
            return;
        };
        let track = published.track().clone();
        let keyframe =
            !track.track_type.is_audio() && starts_keyframe(&track.codec.name, &p.payload);
        published.send(Packet {
            track,
            ssrc: *ssrc,
            seq: *p.seq_no,
            rtp_time: p.time.numer(),
            timestamp: p.header.timestamp,
            marker: p.header.marker,
            payload_type: *p.header.payload_type,
            payload: p.payload,
            arrival: p.timestamp,
            arrival_wall: Timestamp::now(),
            audio_level: ext.audio_level,
            voice_activity: ext.voice_activity,
            sender_report: p
                .last_sender_info
                .map(|s| (wall(s.ntp_time), s.rtp_time.numer() as u32)),
            keyframe,
        });
    }

    fn report_level(&mut self, state: &mut State, level: i8) {
        let Role::Publish { participant, .. } = &self.role else {
            return;
        };
        let l = &mut state.levels;
        l.sum += u32::from(127u8.saturating_sub(level.unsigned_abs().min(127)));
        l.count += 1;
        let now = Instant::now();
        if l.last_report.is_none_or(|t| now - t >= LEVEL_INTERVAL) {
            let loudness = (l.sum / l.count.max(1)) as u8;
            self.rooms.level(&self.cid, participant, loudness);
            *l = Levels {
                last_report: Some(now),
                ..Levels::default()
            };
        }
    }

    fn request_keyframe(&mut self, state: &mut State) {
        let now = Instant::now();
        if state
            .last_keyframe_request
            .is_some_and(|t| now - t < KEYFRAME_INTERVAL)
        {
            return;
        }
        state.last_keyframe_request = Some(now);
        for (mid, p) in &state.published {
            if !p.track().track_type.is_audio()
                && let Some(s) = self.rtc.direct_api().stream_rx_by_mid(*mid, None)
            {
                s.request_keyframe(KeyframeRequestKind::Pli);
            }
        }
    }

    // ---- playing ------------------------------------------------------------------------

    fn make_slots(&mut self, state: &mut State) {
        let mids: Vec<(Mid, bool)> = self
            .offer_mids()
            .into_iter()
            .filter_map(|mid| {
                let m = self.rtc.media(mid)?;
                Some((mid, m.kind() == MediaKind::Audio))
            })
            .collect();
        for (mid, audio) in mids {
            let Some(ssrc) = self
                .rtc
                .direct_api()
                .stream_tx_by_mid(mid, None)
                .map(|s| s.ssrc())
            else {
                continue;
            };
            let media = self.rtc.media(mid).expect("the mid was just found");
            let pts = media
                .remote_pts()
                .iter()
                .filter_map(|pt| {
                    let p = self
                        .rtc
                        .codec_config()
                        .params()
                        .iter()
                        .find(|p| p.pt() == *pt)?;
                    let c = p.spec().codec;
                    (!matches!(c, RtcCodec::Rtx | RtcCodec::Red | RtcCodec::Null))
                        .then_some((c, *pt))
                })
                .collect();
            state.slots.push(Slot {
                mid,
                audio,
                ssrc,
                pts,
                binding: None,
                next_seq: 1,
                last_ts: 0,
                last_sent: None,
            });
        }
        self.publish_slots(state);
    }

    /// The mids of the offer, in order.
    fn offer_mids(&self) -> Vec<Mid> {
        self.offer
            .lines()
            .filter_map(|l| l.trim_end().strip_prefix("a=mid:"))
            .map(Mid::from)
            .collect()
    }

    fn publish_slots(&self, state: &State) {
        let Role::Play { slots, .. } = &self.role else {
            return;
        };
        let view = state
            .slots
            .iter()
            .map(|s| SlotView {
                mid: s.mid.to_string(),
                kind: if s.audio { "audio" } else { "video" },
                track: s.binding.as_ref().map(|b| (*b.track).clone()),
            })
            .collect();
        slots.send_replace(view);
    }

    fn forward(&mut self, state: &mut State, m: BusMessage) {
        match m {
            BusMessage::Track(t) => {
                self.bind(state, &t);
            }
            BusMessage::Ended(t) => {
                if let Some(s) = state.slots.iter_mut().find(|s| {
                    s.binding
                        .as_ref()
                        .is_some_and(|b| b.track.track_id == t.track_id)
                }) {
                    s.binding = None;
                    self.publish_slots(state);
                }
            }
            BusMessage::Packet(p) => {
                let idx = match state.slots.iter().position(|s| {
                    s.binding
                        .as_ref()
                        .is_some_and(|b| b.track.track_id == p.track.track_id)
                }) {
                    Some(i) => i,
                    // Its announcement was lost in a full queue: bind it now.
                    None => match self.bind(state, &p.track) {
                        Some(i) => i,
                        None => return,
                    },
                };
                self.write(state, idx, &p);
            }
        }
    }

    /// Puts `track` in a free slot that can carry its codec; its index.
    fn bind(&mut self, state: &mut State, track: &Arc<Track>) -> Option<usize> {
        if let Role::Play {
            viewer: Some(v), ..
        } = &self.role
            && &track.participant.user_id == v
        {
            return None;
        }
        if state.slots.iter().any(|s| {
            s.binding
                .as_ref()
                .is_some_and(|b| b.track.track_id == track.track_id)
        }) {
            return None;
        }
        let audio = track.track_type.is_audio();
        let (idx, pt) = state.slots.iter().enumerate().find_map(|(i, s)| {
            if s.binding.is_some() || s.audio != audio {
                return None;
            }
            let pt = s
                .pts
                .iter()
                .find(|(c, _)| c.to_string().eq_ignore_ascii_case(&track.codec.name))?
                .1;
            Some((i, pt))
        })?;
        state.slots[idx].binding = Some(Binding {
            track: track.clone(),
            pt,
            seq_offset: 0,
            ts_offset: 0,
            first_seq: None,
            last_keyframe_request: None,
        });
        if !audio {
            self.bus.request_keyframe(&self.cid, &track.track_id);
        }
        self.publish_slots(state);
        Some(idx)
    }

    fn write(&mut self, state: &mut State, idx: usize, p: &Packet) {
        let slot = &mut state.slots[idx];
        let Some(b) = slot.binding.as_mut() else {
            return;
        };
        let now = Instant::now();
        let first_seq = match b.first_seq {
            Some(f) => f,
            None => {
                // Video starts at a key frame; until one comes, ask for it now and then.
                if !slot.audio && !p.keyframe {
                    if b.last_keyframe_request
                        .is_none_or(|t| now - t >= KEYFRAME_RETRY)
                    {
                        b.last_keyframe_request = Some(now);
                        self.bus.request_keyframe(&self.cid, &b.track.track_id);
                    }
                    return;
                }
                // Continue the slot's numbering and timeline where the last track left it.
                let gap = slot.last_sent.map_or(0, |t| {
                    let clock = u64::from(b.track.codec.clock_rate);
                    ((now - t).as_micros() as u64 * clock / 1_000_000).max(1) as u32
                });
                b.seq_offset = slot.next_seq.wrapping_sub(p.seq);
                b.ts_offset = slot.last_ts.wrapping_add(gap).wrapping_sub(p.timestamp);
                b.first_seq = Some(p.seq);
                p.seq
            }
        };
        if p.seq < first_seq {
            // Older than the start of this binding.
            return;
        }
        let seq = p.seq.wrapping_add(b.seq_offset);
        let ts = p.timestamp.wrapping_add(b.ts_offset);
        let ext = ExtensionValues {
            audio_level: p.audio_level,
            voice_activity: p.voice_activity,
            ..Default::default()
        };
        let pt = b.pt;
        let write = RtpWrite::new(pt, seq.into(), ts, p.arrival, p.payload.clone())
            .marker(p.marker)
            .nackable(!slot.audio)
            .ext_vals(ext);
        slot.next_seq = slot.next_seq.max(seq + 1);
        slot.last_ts = ts;
        slot.last_sent = Some(now);
        let ssrc = slot.ssrc;
        if let Some(tx) = self.rtc.direct_api().stream_tx(&ssrc) {
            tx.write_rtp(write);
        }
    }
}

/// The codec of payload type `pt` as negotiated.
fn codec_of(rtc: &Rtc, pt: Pt) -> Option<Codec> {
    let p = rtc.codec_config().params().iter().find(|p| p.pt() == pt)?;
    let spec = p.spec();
    Some(Codec {
        name: spec.codec.to_string(),
        clock_rate: spec.clock_rate.get(),
        channels: spec.channels.unwrap_or(0),
        fmtp: spec.format.to_string(),
    })
}

fn wall(t: SystemTime) -> Timestamp {
    let nanos = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos().min(i64::MAX as u128) as i64);
    Timestamp::from_unix_nanos(nanos)
}

/// What a peer's role waits for besides the network.
enum RoleInput {
    /// A subscriber asked this publisher for a key frame.
    Keyframe,
    /// A message for this player.
    Bus(BusMessage),
}

async fn role_input(role: &mut Role) -> Option<RoleInput> {
    match role {
        Role::Publish { keyframes, .. } => keyframes.recv().await.map(|()| RoleInput::Keyframe),
        Role::Play { subscription, .. } => Some(RoleInput::Bus(subscription.recv().await)),
    }
}
