//! Rooms: who takes part in each call, and one task per call that reports it in order.
//!
//! A participant is a user (and source) with at least one publishing connection. The room
//! task turns joins, leaves and tracks into domain events, one after the other, keeps the
//! dominant speaker, and ends the call session when nobody has been back for the grace
//! period.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::mpsc;
use tracing::warn;

use super::speaker::DominantSpeaker;
use crate::domain::{Cid, Participant, SessionId, Timestamp, Track, UserId};
use crate::service::{LeaveReason, Services};

/// What peers tell their call's room task.
pub(crate) enum RoomEvent {
    Joined(Participant),
    Left(Participant, LeaveReason),
    TrackPublished(Arc<Track>),
    TrackEnded(Arc<Track>),
    Level {
        participant: Participant,
        loudness: u8,
    },
}

/// The rooms of this process.
pub(crate) struct Rooms {
    services: Services,
    grace: Duration,
    rooms: Mutex<HashMap<Cid, Room>>,
}

struct Room {
    events: mpsc::UnboundedSender<RoomEvent>,
    presences: HashMap<(UserId, String), Presence>,
    /// The dominant speaker, as last announced.
    dominant: Option<SessionId>,
}

struct Presence {
    participant: Participant,
    connections: usize,
}

impl Rooms {
    pub fn new(services: Services, grace: Duration) -> Arc<Rooms> {
        Arc::new(Rooms {
            services,
            grace,
            rooms: Mutex::new(HashMap::new()),
        })
    }

    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<Cid, Room>> {
        self.rooms.lock().expect("the rooms map is never poisoned")
    }

    /// Counts a new publishing connection of `user` (and `source_id`) in `cid`: the participant
    /// it belongs to (joined now if it is the first) and the room's event queue.
    pub fn connect(
        self: &Arc<Self>,
        cid: &Cid,
        user: &UserId,
        source_id: &str,
        role: &str,
    ) -> (Participant, mpsc::UnboundedSender<RoomEvent>) {
        let mut rooms = self.rooms();
        let room = rooms.entry(cid.clone()).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(self.clone().run(cid.clone(), rx));
            Room {
                events: tx,
                presences: HashMap::new(),
                dominant: None,
            }
        });
        let key = (user.clone(), source_id.to_owned());
        let presence = room.presences.entry(key).or_insert_with(|| {
            let participant = Participant {
                user_id: user.clone(),
                user_session_id: SessionId::random(),
                source_id: source_id.to_owned(),
                role: role.to_owned(),
                joined_at: Timestamp::now(),
            };
            let _ = room.events.send(RoomEvent::Joined(participant.clone()));
            Presence {
                participant,
                connections: 0,
            }
        });
        presence.connections += 1;
        (presence.participant.clone(), room.events.clone())
    }

    /// Counts a publishing connection of `p` as closed; the participant leaves with its last.
    pub fn disconnect(&self, cid: &Cid, p: &Participant, reason: LeaveReason) {
        let mut rooms = self.rooms();
        let Some(room) = rooms.get_mut(cid) else {
            return;
        };
        let key = (p.user_id.clone(), p.source_id.clone());
        let Some(presence) = room.presences.get_mut(&key) else {
            return;
        };
        presence.connections -= 1;
        if presence.connections == 0 {
            room.presences.remove(&key);
            let _ = room.events.send(RoomEvent::Left(p.clone(), reason));
        }
    }

    /// The participants of `cid`, in the order they joined.
    pub fn participants(&self, cid: &Cid) -> Vec<Participant> {
        let rooms = self.rooms();
        let mut ps: Vec<_> = rooms
            .get(cid)
            .map(|r| {
                r.presences
                    .values()
                    .map(|p| p.participant.clone())
                    .collect()
            })
            .unwrap_or_default();
        ps.sort_by_key(|p| p.joined_at);
        ps
    }

    /// The dominant speaker of `cid`, if anyone has spoken since they joined.
    pub fn dominant(&self, cid: &Cid) -> Option<SessionId> {
        self.rooms().get(cid).and_then(|r| r.dominant.clone())
    }

    fn set_dominant(&self, cid: &Cid, who: Option<&SessionId>) {
        if let Some(r) = self.rooms().get_mut(cid) {
            r.dominant = who.cloned();
        }
    }

    fn is_empty(&self, cid: &Cid) -> bool {
        self.rooms().get(cid).is_none_or(|r| r.presences.is_empty())
    }

    /// Removes the room if nobody is in it; true if it did.
    fn close_if_empty(&self, cid: &Cid) -> bool {
        let mut rooms = self.rooms();
        if rooms.get(cid).is_some_and(|r| r.presences.is_empty()) {
            rooms.remove(cid);
            true
        } else {
            false
        }
    }

    async fn run(self: Arc<Self>, cid: Cid, mut events: mpsc::UnboundedReceiver<RoomEvent>) {
        let services = &self.services;
        let mut session: Option<SessionId> = None;
        let mut speaker = DominantSpeaker::default();
        let mut empty_since: Option<Instant> = None;
        loop {
            let grace_over = async {
                match empty_since {
                    Some(t) => tokio::time::sleep_until((t + self.grace).into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                e = events.recv() => {
                    let Some(e) = e else { return };
                    match e {
                        RoomEvent::Joined(p) => {
                            empty_since = None;
                            match services.participant_joined(&cid, &p).await {
                                Ok(id) => session = Some(id),
                                Err(e) => warn!(cid = %cid, error = %e, "cannot record a join"),
                            }
                        }
                        RoomEvent::Left(p, reason) => {
                            speaker.remove(&p.user_session_id);
                            self.set_dominant(&cid, speaker.current());
                            if let Some(s) = &session
                                && let Err(e) = services.participant_left(&cid, s, &p, reason).await
                            {
                                warn!(cid = %cid, error = %e, "cannot record a leave");
                            }
                            if self.is_empty(&cid) {
                                empty_since = Some(Instant::now());
                            }
                        }
                        RoomEvent::TrackPublished(t) | RoomEvent::TrackEnded(t) if session.is_none() => {
                            warn!(cid = %cid, track_id = %t.track_id, "track outside a session");
                        }
                        RoomEvent::TrackPublished(t) => {
                            let s = session.as_ref().expect("checked above");
                            if let Err(e) = services.track_changed(&cid, s, &t, true).await {
                                warn!(cid = %cid, error = %e, "cannot record a track");
                            }
                        }
                        RoomEvent::TrackEnded(t) => {
                            let s = session.as_ref().expect("checked above");
                            if let Err(e) = services.track_changed(&cid, s, &t, false).await {
                                warn!(cid = %cid, error = %e, "cannot record a track's end");
                            }
                        }
                        RoomEvent::Level { participant, loudness } => {
                            let who = &participant.user_session_id;
                            if let Some(new) = speaker.report(who, loudness, Instant::now()) {
                                self.set_dominant(&cid, Some(&new));
                                let event = json!({
                                    "type": "call.dominant_speaker_changed",
                                    "call_cid": cid,
                                    "created_at": Timestamp::now(),
                                    "user_id": participant.user_id,
                                    "user_session_id": new,
                                });
                                services.live().publish(&cid, event.to_string().into());
                            }
                        }
                    }
                }
                () = grace_over => {
                    empty_since = None;
                    if !self.is_empty(&cid) {
                        continue;
                    }
                    // End the session while the room still stands: someone joining meanwhile
                    // queues a join here, which starts the next session after this one ended.
                    if session.take().is_some()
                        && let Err(e) = services.end_session(&cid).await
                    {
                        warn!(cid = %cid, error = %e, "cannot end the call session");
                    }
                    if self.close_if_empty(&cid) {
                        return;
                    }
                }
            }
        }
    }
}
