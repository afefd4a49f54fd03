//! Call sessions and their participants.
//!
//! The API asks [`Services::join`] whether a user may take part before the media plane is
//! asked to connect them; the media plane's reports of participants and tracks are recorded
//! here (see `activity`). The first participant starts the session (and its `auto-on`
//! recordings); ending it stops every recording.

use tracing::{info, warn};

use super::{NewCall, Result, ServiceError, Services};
use crate::auth::Caller;
use crate::domain::{
    CallSession, CallSettings, Cid, Event, LeaveReason, Participant, ParticipantEvent,
    ParticipantView, Permission, Pin, SessionEvent, SessionId, Timestamp, Track, TrackView, UserId,
};

/// What a participant may do in a call, decided when it joins.
#[derive(Clone, Debug)]
pub struct JoinGrant {
    /// The user.
    pub user_id: UserId,
    /// The user's role in the call.
    pub role: String,
    /// The call's effective settings.
    pub settings: CallSettings,
    /// The user's capabilities in the call (the SDKs' `own_capabilities`).
    pub capabilities: Vec<&'static str>,
}

impl Services {
    /// Checks that `caller` may take part in the call as a user, creating the call (as
    /// Stream clients do when they join) if it does not exist yet.
    pub async fn join(&self, caller: &Caller, cid: &Cid) -> Result<JoinGrant> {
        let Caller::User(claims) = caller else {
            return Err(ServiceError::Invalid(
                "joining a call needs a user token (one with a user_id)".into(),
            ));
        };
        let (view, _) = self
            .get_or_create_call(caller, cid, NewCall::default())
            .await?;
        let access = self.access(caller, cid, Some(&view.call)).await?;
        access.require(&view.call_type.grants, Permission::ReadCall, cid)?;
        Ok(JoinGrant {
            user_id: claims.user_id.clone(),
            role: access
                .roles
                .first()
                .map_or("user", |r| r.as_str())
                .to_owned(),
            settings: view.settings,
            capabilities: view.capabilities,
        })
    }

    /// Starts a session for the call unless one is active; returns the active session and
    /// whether it is new.
    pub async fn start_session(&self, cid: &Cid) -> Result<(CallSession, bool)> {
        if let Some(active) = self.store().active_session(cid).await? {
            return Ok((active, false));
        }
        // Read before the write transaction: SQLite's few connections are not all held by
        // writers waiting for the one that waits for a reader.
        let call = self.call_shape(cid).await?;
        let session = CallSession {
            id: SessionId::random(),
            cid: cid.clone(),
            started_at: Timestamp::now(),
            ended_at: None,
        };
        let mut tx = self.begin().await?;
        let (active, started) = tx.start_session(&session).await?;
        if started {
            let event = session_event(&active, active.started_at, call);
            self.enqueue(&mut tx, &[Event::SessionStarted(event)])
                .await?;
        }
        self.commit(tx).await?;
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
        let call = self.call_shape(cid).await?;
        let now = Timestamp::now();
        let mut tx = self.begin().await?;
        let session = tx
            .end_session(cid, now)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("call {cid} has no active session")))?;
        let event = session_event(&session, now, call);
        self.enqueue(&mut tx, &[Event::SessionEnded(event)]).await?;
        self.commit(tx).await?;
        info!(cid = %cid, session_id = %session.id, "call session ended");
        self.live().clear_pins(cid);
        for rec in self.store().active_recordings(cid).await? {
            self.request_stop(&rec).await?;
        }
        Ok(session)
    }

    /// Pins `pin` for everyone in the call (or unpins it, if not `pinned`): the layouts and
    /// the call's event stream follow.
    pub async fn pin(&self, caller: &Caller, cid: &Cid, pin: Pin, pinned: bool) -> Result<()> {
        let (call, call_type) = self.load_call(cid).await?;
        let access = self.access(caller, cid, Some(&call)).await?;
        access.require(&call_type.grants, Permission::PinForEveryone, cid)?;
        self.live().set_pin(cid, pin, pinned);
        Ok(())
    }

    /// The call's active session.
    pub async fn active_session(&self, cid: &Cid) -> Result<Option<CallSession>> {
        Ok(self.store().active_session(cid).await?)
    }

    /// Records that `p` joined the call, starting a session if none is active; returns the
    /// session it joined.
    pub(super) async fn participant_joined(&self, cid: &Cid, p: &Participant) -> Result<SessionId> {
        let (session, _) = self.start_session(cid).await?;
        let event = self
            .participant_event(cid, &session.id, p, p.joined_at)
            .await?;
        self.announce(Event::ParticipantJoined(event)).await?;
        info!(cid = %cid, user_id = %p.user_id, user_session_id = %p.user_session_id, "participant joined");
        Ok(session.id)
    }

    /// Records that `p` left the call session `session_id`.
    pub(super) async fn participant_left(
        &self,
        cid: &Cid,
        session_id: &SessionId,
        p: &Participant,
        reason: LeaveReason,
    ) -> Result<()> {
        let now = Timestamp::now();
        let event = self.participant_event(cid, session_id, p, now).await?;
        let seconds = (now.unix_nanos() - p.joined_at.unix_nanos()).max(0) / 1_000_000_000;
        self.announce(Event::ParticipantLeft {
            event,
            duration_seconds: seconds as u64,
            reason: reason.as_str().to_owned(),
        })
        .await?;
        info!(cid = %cid, user_id = %p.user_id, user_session_id = %p.user_session_id, reason = reason.as_str(), "participant left");
        Ok(())
    }

    /// Records that `track` was published (`true`) or ended (`false`).
    pub(super) async fn track_changed(
        &self,
        cid: &Cid,
        session_id: &SessionId,
        track: &Track,
        published: bool,
    ) -> Result<()> {
        let now = Timestamp::now();
        let event = self
            .participant_event(cid, session_id, &track.participant, now)
            .await?;
        let view = TrackView {
            track_id: track.track_id.clone(),
            track_type: track.track_type,
            codec: track.codec.clone(),
        };
        self.announce(if published {
            Event::TrackPublished { event, track: view }
        } else {
            Event::TrackUnpublished { event, track: view }
        })
        .await
    }

    async fn announce(&self, event: Event) -> Result<()> {
        let mut tx = self.begin().await?;
        self.enqueue(&mut tx, &[event]).await?;
        self.commit(tx).await
    }

    /// The call as session events show it.
    async fn call_shape(&self, cid: &Cid) -> Result<serde_json::Value> {
        let (call, call_type) = self.load_call(cid).await?;
        let view = self.view(call, call_type, Vec::new()).await?;
        Ok(self.shapes().call(&view))
    }

    async fn participant_event(
        &self,
        cid: &Cid,
        session_id: &SessionId,
        p: &Participant,
        at: Timestamp,
    ) -> Result<ParticipantEvent> {
        let user = self.store().get_user(&p.user_id).await?;
        Ok(ParticipantEvent {
            call_cid: cid.clone(),
            created_at: at,
            session_id: session_id.clone(),
            participant: ParticipantView::of(p, self.shapes().user(&p.user_id, user.as_ref())),
        })
    }
}

/// The event of session `s` at `at`, of the call `call` (as events show it).
fn session_event(s: &CallSession, at: Timestamp, call: serde_json::Value) -> SessionEvent {
    SessionEvent {
        call_cid: s.cid.clone(),
        created_at: at,
        session_id: s.id.clone(),
        call,
    }
}
