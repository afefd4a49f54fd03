//! Rooms: who takes part in each call, and who speaks.
//!
//! A participant is a user (and source) with at least one publishing connection. What
//! changes (joins, leaves, tracks, the dominant speaker) is reported as [`CallActivity`] on
//! one channel, in the order it happened; the room itself lives as long as someone is in it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::mpsc;

use super::speaker::DominantSpeaker;
use crate::domain::{
    Activity, CallActivity, Cid, LeaveReason, Participant, SessionId, Timestamp, UserId,
};

/// The rooms of this process.
pub(crate) struct Rooms {
    activity: mpsc::UnboundedSender<CallActivity>,
    rooms: Mutex<HashMap<Cid, Room>>,
}

#[derive(Default)]
struct Room {
    presences: HashMap<(UserId, String), Presence>,
    speaker: DominantSpeaker,
    /// The dominant speaker, as last announced.
    dominant: Option<SessionId>,
}

struct Presence {
    participant: Participant,
    connections: usize,
}

impl Rooms {
    /// Rooms reporting to `activity`.
    pub fn new(activity: mpsc::UnboundedSender<CallActivity>) -> Arc<Rooms> {
        Arc::new(Rooms {
            activity,
            rooms: Mutex::new(HashMap::new()),
        })
    }

    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<Cid, Room>> {
        self.rooms.lock().expect("the rooms map is never poisoned")
    }

    /// Reports `activity` in `cid`. Reports made under the rooms' lock keep their order.
    pub fn report(&self, cid: &Cid, activity: Activity) {
        // Nobody listens only while the server shuts down.
        let _ = self.activity.send(CallActivity {
            cid: cid.clone(),
            activity,
        });
    }

    /// Counts a new publishing connection of `user` (and `source_id`) in `cid`: the
    /// participant it belongs to, joined now if it is the first.
    pub fn connect(&self, cid: &Cid, user: &UserId, source_id: &str, role: &str) -> Participant {
        let mut rooms = self.rooms();
        let room = rooms.entry(cid.clone()).or_default();
        let key = (user.clone(), source_id.to_owned());
        let presence = room.presences.entry(key).or_insert_with(|| {
            let participant = Participant {
                user_id: user.clone(),
                user_session_id: SessionId::random(),
                source_id: source_id.to_owned(),
                role: role.to_owned(),
                joined_at: Timestamp::now(),
            };
            self.report(cid, Activity::Joined(participant.clone()));
            Presence {
                participant,
                connections: 0,
            }
        });
        presence.connections += 1;
        presence.participant.clone()
    }

    /// Counts a publishing connection of `p` as closed; the participant leaves with its last,
    /// and the room goes with its last participant.
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
        if presence.connections > 0 {
            return;
        }
        room.presences.remove(&key);
        room.speaker.remove(&p.user_session_id);
        room.dominant = room.speaker.current().cloned();
        self.report(cid, Activity::Left(p.clone(), reason));
        if room.presences.is_empty() {
            rooms.remove(cid);
        }
    }

    /// Takes the loudness `who` published lately; reports a new dominant speaker.
    pub fn level(&self, cid: &Cid, who: &Participant, loudness: u8) {
        let mut rooms = self.rooms();
        let Some(room) = rooms.get_mut(cid) else {
            return;
        };
        let Some(new) = room
            .speaker
            .report(&who.user_session_id, loudness, Instant::now())
        else {
            return;
        };
        let speaker = room
            .presences
            .values()
            .find(|p| p.participant.user_session_id == new);
        if let Some(p) = speaker {
            self.report(cid, Activity::DominantSpeaker(p.participant.clone()));
        }
        room.dominant = Some(new);
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
}
