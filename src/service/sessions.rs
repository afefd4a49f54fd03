//! Call sessions: the registry the media plane drives.
//!
//! The media plane calls [`Services::start_session`] when the first participant joins and
//! [`Services::end_session`] when the grace period after the last one leaving is over.
//! Starting a session starts the `auto-on` recordings; ending it stops every recording.

use tracing::{info, warn};

use super::{Result, ServiceError, Services};
use crate::domain::{CallSession, Cid, SessionId, Timestamp};

impl Services {
    /// Starts a session for the call unless one is active; returns the active session and
    /// whether it is new.
    pub async fn start_session(&self, cid: &Cid) -> Result<(CallSession, bool)> {
        self.load_call(cid).await?;
        let session = CallSession {
            id: SessionId::random(),
            cid: cid.clone(),
            started_at: Timestamp::now(),
            ended_at: None,
        };
        let (active, started) = self.store().start_session(&session).await?;
        if started {
            info!(cid = %cid, session_id = %active.id, "call session started");
            if let Err(e) = self.start_auto_recordings(cid).await {
                warn!(cid = %cid, error = %e, "cannot start auto-on recordings");
            }
        }
        Ok((active, started))
    }

    /// Ends the call's active session and stops its recordings.
    pub async fn end_session(&self, cid: &Cid) -> Result<CallSession> {
        let session = self
            .store()
            .end_session(cid, Timestamp::now())
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("call {cid} has no active session")))?;
        info!(cid = %cid, session_id = %session.id, "call session ended");
        for rec in self.store().active_recordings(cid).await? {
            self.request_stop(&rec).await?;
        }
        Ok(session)
    }

    /// The call's active session.
    pub async fn active_session(&self, cid: &Cid) -> Result<Option<CallSession>> {
        Ok(self.store().active_session(cid).await?)
    }
}
