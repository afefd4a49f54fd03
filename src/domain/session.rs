//! Call sessions: the periods in which a call has participants.

use super::ids::{Cid, SessionId};
use super::time::Timestamp;

/// One continuous period of a call with at least one participant (or within the grace period
/// after the last one left). Recordings belong to a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallSession {
    /// Its id.
    pub id: SessionId,
    /// The call.
    pub cid: Cid,
    /// When the first participant joined.
    pub started_at: Timestamp,
    /// When it ended; `None` while it is active.
    pub ended_at: Option<Timestamp>,
}

impl CallSession {
    /// True until the session ends.
    pub fn is_active(&self) -> bool {
        self.ended_at.is_none()
    }
}
