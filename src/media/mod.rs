//! The media plane: an SFU on str0m that takes WHIP publishers and WHEP players.
//!
//! - `peer`: one task per WebRTC peer, owning its `Rtc`; publishers hand their packets to
//!   the [`crate::bus`], players forward the bus's packets.
//! - `room`: participants per call and their dominant speaker; `speaker`: its detection.
//! - `udp`: one muxed port or a port per peer; `sdp`: offer checks and trickle fragments;
//!   `negotiate`: offers and fragments answered with reel's WebRTC configuration.
//! - [`publisher`]: the WHIP client of `reel publish`, sending [`clip`]s as participants.
//!
//! Only this module uses str0m. The media plane calls nothing above it: who may publish or
//! play is decided before it is asked, and what happens in calls (joins, leaves, tracks,
//! speakers) leaves it as [`CallActivity`], in order, for the services to act on.
//! A player's m-lines are *slots*: the SFU puts each track of
//! the call in a free slot of its kind and reports the assignment on the session's event
//! stream, so players never renegotiate when participants come and go.

pub mod clip;
mod negotiate;
mod peer;
pub mod publisher;
mod room;
mod sdp;
mod speaker;
mod udp;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use str0m::{IceCreds, Rtc};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, warn};

pub use negotiate::{Negotiated, add_candidates, negotiate, restart_ice};
pub use sdp::{Fragment, OfferShape, SdpProblem, check_offer, parse_fragment};
pub use udp::UdpMode;

use crate::bus::{Backlog, Bus};
use crate::domain::{CallActivity, Cid, LeaveReason, Participant, SessionId, Track, UserId};
use crate::metrics::Metrics;
use peer::{Command, Exit, Peer, Role};
use room::Rooms;

/// Queue of datagrams per peer.
const INBOX: usize = 1024;
/// Bus queue of a player per slot: a player further behind than its backlog skips packets
/// (and asks for a key frame) rather than play late.
const PLAYER_QUEUE_PER_SLOT: usize = 256;
/// Longest a player's packet waits in its bus queue.
const PLAYER_BACKLOG: Duration = Duration::from_secs(2);

/// Settings of the media plane.
#[derive(Clone, Debug)]
pub struct MediaConfig {
    /// The address UDP sockets bind to.
    pub bind_ip: IpAddr,
    /// One muxed port or a port range.
    pub udp: UdpMode,
    /// Addresses put in the server's ICE candidates (what clients send to).
    pub advertised: Vec<IpAddr>,
    /// Most WebRTC sessions at once; more get 503.
    pub max_peers: usize,
}

/// Why a WHIP/WHEP request failed.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The offer or fragment is not acceptable.
    #[error("{0}")]
    BadOffer(String),
    /// The offer failed the checks.
    #[error(transparent)]
    Sdp(#[from] SdpProblem),
    /// No such session or track.
    #[error("{0}")]
    NotFound(String),
    /// The session's ETag does not match `If-Match`.
    #[error("the session has changed (ETag mismatch)")]
    PreconditionFailed,
    /// The server takes no more sessions now.
    #[error("the media server is full")]
    Busy,
    /// Something went wrong inside reel.
    #[error("{0}")]
    Internal(String),
}

/// A created session.
#[derive(Clone, Debug)]
pub struct Answer {
    /// Its id (the last part of its URL).
    pub session: String,
    /// The SDP answer.
    pub sdp: String,
    /// The ETag of the session's ICE state.
    pub etag: String,
}

/// What a PATCH did.
#[derive(Clone, Debug)]
pub enum Patched {
    /// Candidates were added.
    Trickled,
    /// ICE restarted: the server's fragment and the new ETag.
    Restarted {
        /// The answer fragment.
        fragment: String,
        /// The new ETag.
        etag: String,
    },
}

/// Which source a WHIP session publishes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Source {
    /// A screen share (`?source=screen`) rather than camera and microphone.
    pub screen: bool,
    /// Which of the user's sources (`?source_id=`), for users publishing several.
    pub source_id: String,
}

/// Who publishes in a WHIP session, as the caller's permission to join resolved it.
#[derive(Clone, Debug)]
pub struct Publisher {
    /// The user.
    pub user_id: UserId,
    /// The user's role in the call.
    pub role: String,
}

/// Who plays in a WHEP session.
#[derive(Clone, Debug)]
pub struct Player {
    /// The user playing (`server` for a server-side player).
    pub user_id: UserId,
    /// Whose own tracks are left out of a player of the whole call, if anyone's.
    pub viewer: Option<UserId>,
}

/// A player's slot as its event stream shows it.
#[derive(Clone, Debug, Serialize)]
pub struct SlotView {
    /// The m-line's mid.
    pub mid: String,
    /// `audio` or `video`.
    pub kind: &'static str,
    /// The track in it, if any.
    pub track: Option<Track>,
}

/// What the call looks like now.
#[derive(Clone, Debug, Serialize)]
pub struct CallState {
    /// Its participants.
    pub participants: Vec<Participant>,
    /// Their tracks.
    pub tracks: Vec<Track>,
    /// The `user_session_id` of the dominant speaker, once someone has spoken.
    pub dominant_speaker: Option<SessionId>,
}

/// The media plane. Cheap to clone.
#[derive(Clone)]
pub struct Media {
    inner: Arc<Inner>,
}

struct Inner {
    config: MediaConfig,
    bus: Bus,
    udp: udp::Udp,
    rooms: Arc<Rooms>,
    sessions: Mutex<HashMap<String, SessionEntry>>,
    next_peer: AtomicU64,
    metrics: Arc<Metrics>,
}

struct SessionEntry {
    user: UserId,
    commands: mpsc::Sender<Command>,
    etag: String,
    slots: Option<watch::Receiver<Vec<SlotView>>>,
}

impl Media {
    /// Binds the UDP sockets and starts the media plane: it publishes into `bus`, counts
    /// into `metrics` and reports what happens in calls to `activity`.
    pub async fn start(
        config: MediaConfig,
        bus: Bus,
        metrics: Arc<Metrics>,
        activity: mpsc::UnboundedSender<CallActivity>,
    ) -> std::io::Result<Media> {
        let udp = udp::Udp::bind(config.bind_ip, &config.udp, metrics.udp_unrouted.clone()).await?;
        if let Some(port) = udp.muxed_port() {
            info!(port, advertised = ?config.advertised, "media plane listening on UDP");
        }
        Ok(Media {
            inner: Arc::new(Inner {
                rooms: Rooms::new(activity),
                config,
                bus,
                udp,
                sessions: Mutex::new(HashMap::new()),
                next_peer: AtomicU64::new(1),
                metrics,
            }),
        })
    }

    /// The muxed UDP port, if the media plane uses one.
    pub fn udp_port(&self) -> Option<u16> {
        self.inner.udp.muxed_port()
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, SessionEntry>> {
        self.inner
            .sessions
            .lock()
            .expect("the sessions map is never poisoned")
    }

    /// Starts a WHIP session: `who` publishes `offer` into `cid` as `source`.
    pub async fn publish(
        &self,
        cid: &Cid,
        who: &Publisher,
        source: Source,
        offer: &str,
    ) -> Result<Answer, MediaError> {
        sdp::check_offer(offer, true)?;
        let (keyframe_sender, keyframes) = mpsc::channel(1);
        let setup = self.setup(cid, offer).await?;
        let participant = self
            .inner
            .rooms
            .connect(cid, &who.user_id, &source.source_id, &who.role);
        info!(cid = %cid, session = %setup.key, user_id = %who.user_id, screen = source.screen, "WHIP session created");
        let role = Role::Publish {
            participant: participant.clone(),
            screen: source.screen,
            keyframes,
            keyframe_sender,
        };
        let answer = self.spawn(setup, role, who.user_id.clone(), None, Some(participant));
        Ok(answer)
    }

    /// Starts a WHEP session: `who` plays every track of `cid` but the viewer's own, or
    /// just `track_id`.
    pub async fn play(
        &self,
        cid: &Cid,
        who: &Player,
        track_id: Option<&str>,
        offer: &str,
    ) -> Result<Answer, MediaError> {
        let shape = sdp::check_offer(offer, false)?;
        let backlog = Backlog::new(
            PLAYER_BACKLOG,
            PLAYER_QUEUE_PER_SLOT * (shape.audio + shape.video),
        );
        let bus = &self.inner.bus;
        let subscription = match track_id {
            Some(t) => bus
                .subscribe(cid, t, backlog)
                .ok_or_else(|| MediaError::NotFound(format!("call {cid} has no track {t:?}")))?,
            None => bus.watch(cid, backlog, |_| true),
        };
        let setup = self.setup(cid, offer).await?;
        let (slots_tx, slots_rx) = watch::channel(Vec::new());
        let role = Role::Play {
            subscription,
            viewer: if track_id.is_some() {
                None
            } else {
                who.viewer.clone()
            },
            slots: slots_tx,
        };
        info!(cid = %cid, session = %setup.key, user_id = %who.user_id, "WHEP session created");
        Ok(self.spawn(setup, role, who.user_id.clone(), Some(slots_rx), None))
    }

    /// Adds trickled candidates to a session, or restarts its ICE.
    pub async fn patch(
        &self,
        session: &str,
        user: Option<&UserId>,
        if_match: Option<&str>,
        fragment: &str,
    ) -> Result<Patched, MediaError> {
        let fragment = sdp::parse_fragment(fragment)?;
        let commands = {
            let sessions = self.sessions();
            let entry = self.entry(&sessions, session, user)?;
            if let Some(m) = if_match
                && m != "*"
                && m != entry.etag
            {
                return Err(MediaError::PreconditionFailed);
            }
            entry.commands.clone()
        };
        let (reply, answer) = oneshot::channel();
        commands
            .send(Command::Patch { fragment, reply })
            .await
            .map_err(|_| gone(session))?;
        match answer.await.map_err(|_| gone(session))?? {
            None => Ok(Patched::Trickled),
            Some(fragment) => {
                let etag = new_etag();
                if let Some(e) = self.sessions().get_mut(session) {
                    e.etag = etag.clone();
                }
                Ok(Patched::Restarted { fragment, etag })
            }
        }
    }

    /// Ends a session.
    pub async fn close(&self, session: &str, user: Option<&UserId>) -> Result<(), MediaError> {
        let commands = {
            let sessions = self.sessions();
            self.entry(&sessions, session, user)?.commands.clone()
        };
        commands
            .send(Command::Close)
            .await
            .map_err(|_| gone(session))
    }

    /// The slots of a WHEP session, as they change.
    pub fn slots(
        &self,
        session: &str,
        user: Option<&UserId>,
    ) -> Result<watch::Receiver<Vec<SlotView>>, MediaError> {
        let sessions = self.sessions();
        self.entry(&sessions, session, user)?
            .slots
            .clone()
            .ok_or_else(|| MediaError::NotFound(format!("session {session} is not a WHEP session")))
    }

    /// Whether `user` has a WHIP session in any call now.
    pub fn publishes(&self, user: &UserId) -> bool {
        self.sessions()
            .values()
            .any(|e| e.slots.is_none() && &e.user == user)
    }

    /// The participants and tracks of `cid` now.
    pub fn state(&self, cid: &Cid) -> CallState {
        CallState {
            participants: self.inner.rooms.participants(cid),
            tracks: self
                .inner
                .bus
                .tracks(cid)
                .into_iter()
                .map(|t| (*t).clone())
                .collect(),
            dominant_speaker: self.inner.rooms.dominant(cid),
        }
    }

    fn entry<'a>(
        &self,
        sessions: &'a HashMap<String, SessionEntry>,
        session: &str,
        user: Option<&UserId>,
    ) -> Result<&'a SessionEntry, MediaError> {
        let entry = sessions
            .get(session)
            .ok_or_else(|| MediaError::NotFound(format!("no session {session}")))?;
        // The session URL is the capability; a user's token, if sent, must be the owner's.
        if user.is_some_and(|u| *u != entry.user) {
            return Err(MediaError::NotFound(format!("no session {session}")));
        }
        Ok(entry)
    }

    /// A new `Rtc` answering `offer`, with its UDP endpoint.
    async fn setup(&self, cid: &Cid, offer: &str) -> Result<Setup, MediaError> {
        if self.sessions().len() >= self.inner.config.max_peers {
            return Err(MediaError::Busy);
        }
        let creds = IceCreds::new();
        let number = self.inner.next_peer.fetch_add(1, Ordering::Relaxed);
        let (inbox_tx, inbox) = mpsc::channel(INBOX);
        let endpoint = self
            .inner
            .udp
            .endpoint(number, &creds.ufrag, inbox_tx)
            .await
            .map_err(|e| MediaError::Internal(format!("cannot open a UDP port: {e}")))?;
        let local: Vec<SocketAddr> = self
            .inner
            .config
            .advertised
            .iter()
            .map(|ip| SocketAddr::new(*ip, endpoint.port))
            .collect();
        let Negotiated { rtc, answer } = negotiate(offer, creds, &local)?;
        let local = local[0];
        Ok(Setup {
            key: uuid::Uuid::new_v4().simple().to_string(),
            cid: cid.clone(),
            rtc,
            endpoint,
            local,
            offer: offer.to_owned(),
            inbox,
            answer,
        })
    }

    fn spawn(
        &self,
        s: Setup,
        role: Role,
        user: UserId,
        slots: Option<watch::Receiver<Vec<SlotView>>>,
        participant: Option<Participant>,
    ) -> Answer {
        let (commands_tx, commands) = mpsc::channel(8);
        let etag = new_etag();
        self.sessions().insert(
            s.key.clone(),
            SessionEntry {
                user,
                commands: commands_tx,
                etag: etag.clone(),
                slots,
            },
        );
        self.inner.metrics.media_sessions.inc();
        let peer = Peer {
            key: s.key.clone(),
            cid: s.cid.clone(),
            rtc: s.rtc,
            endpoint: s.endpoint,
            local: s.local,
            offer: s.offer,
            inbox: s.inbox,
            commands,
            role,
            bus: self.inner.bus.clone(),
            rooms: self.inner.rooms.clone(),
        };
        let media = self.clone();
        let key = s.key.clone();
        let cid = s.cid.clone();
        tokio::spawn(async move {
            let exit = peer.run().await;
            media.sessions().remove(&key);
            media.inner.metrics.media_sessions.dec();
            if let Some(p) = participant {
                let reason = match exit {
                    Exit::Closed => LeaveReason::Left,
                    Exit::Lost => LeaveReason::Disconnected,
                };
                media.inner.rooms.disconnect(&cid, &p, reason);
            }
            if exit == Exit::Lost {
                warn!(cid = %cid, session = %key, "WebRTC session lost");
            } else {
                info!(cid = %cid, session = %key, "WebRTC session closed");
            }
        });
        Answer {
            session: s.key,
            sdp: s.answer,
            etag,
        }
    }
}

struct Setup {
    key: String,
    cid: Cid,
    rtc: Rtc,
    endpoint: udp::Endpoint,
    local: SocketAddr,
    offer: String,
    inbox: mpsc::Receiver<udp::Datagram>,
    answer: String,
}

fn new_etag() -> String {
    format!("\"{}\"", uuid::Uuid::new_v4().simple())
}

fn gone(session: &str) -> MediaError {
    MediaError::NotFound(format!("session {session} has ended"))
}
