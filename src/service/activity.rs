//! What the services make of the media plane's reports.
//!
//! Each call's activity is applied in the order it happened, by a task of the call's own, so
//! that one slow call holds up no other: joins and leaves are recorded (the first join starts
//! the call session), tracks are announced, the dominant speaker goes to the call's live
//! events, and the session ends when nobody has been back for the grace period.
//!
//! A call's task retires once its session has ended and nobody is in the call; the
//! dispatcher lets it go only if no report reached it meanwhile, so a report is never applied
//! out of order by a second task of the same call.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::warn;

use super::Services;
use crate::domain::{Activity, CallActivity, Cid, SessionId, Timestamp, Track};

/// A call's task, as the dispatcher sees it.
struct CallTask {
    activity: mpsc::UnboundedSender<Activity>,
    /// Reports sent to it so far.
    sent: u64,
}

/// Applies the media plane's reports until their channel closes.
pub(super) async fn follow(
    services: Services,
    mut reports: mpsc::UnboundedReceiver<CallActivity>,
    grace: Duration,
) {
    let (retire, mut retiring) = mpsc::unbounded_channel::<(Cid, u64)>();
    let mut calls: HashMap<Cid, CallTask> = HashMap::new();
    loop {
        tokio::select! {
            r = reports.recv() => {
                let Some(CallActivity { cid, activity }) = r else { return };
                let task = calls.entry(cid.clone()).or_insert_with(|| {
                    let (tx, rx) = mpsc::unbounded_channel();
                    let call = Call::new(services.clone(), cid, grace);
                    tokio::spawn(call.run(rx, retire.clone()));
                    CallTask { activity: tx, sent: 0 }
                });
                task.sent += 1;
                let _ = task.activity.send(activity);
            }
            Some((cid, applied)) = retiring.recv() => {
                // Dropping its sender ends the task; a report sent since keeps it.
                if calls.get(&cid).is_some_and(|t| t.sent == applied) {
                    calls.remove(&cid);
                }
            }
        }
    }
}

/// One call's activity as the services keep it.
struct Call {
    services: Services,
    cid: Cid,
    grace: Duration,
    /// The session its participants are in.
    session: Option<SessionId>,
    /// The participants in the call now.
    present: HashSet<SessionId>,
    /// When the last participant left, while nobody is in the call.
    empty_since: Option<Instant>,
}

impl Call {
    fn new(services: Services, cid: Cid, grace: Duration) -> Self {
        Self {
            services,
            cid,
            grace,
            session: None,
            present: HashSet::new(),
            empty_since: None,
        }
    }

    async fn run(
        mut self,
        mut activity: mpsc::UnboundedReceiver<Activity>,
        retire: mpsc::UnboundedSender<(Cid, u64)>,
    ) {
        let mut applied = 0;
        loop {
            let grace_over = async {
                match self.empty_since {
                    Some(t) => tokio::time::sleep_until(t + self.grace).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                a = activity.recv() => {
                    let Some(a) = a else { return };
                    applied += 1;
                    self.apply(a).await;
                }
                () = grace_over => {
                    self.empty_since = None;
                    if self.session.take().is_some()
                        && let Err(e) = self.services.end_session(&self.cid).await
                    {
                        warn!(cid = %self.cid, error = %e, "cannot end the call session");
                    }
                    let _ = retire.send((self.cid.clone(), applied));
                }
            }
        }
    }

    async fn apply(&mut self, a: Activity) {
        let (services, cid) = (&self.services, &self.cid);
        match a {
            Activity::Joined(p) => {
                self.empty_since = None;
                self.present.insert(p.user_session_id.clone());
                match services.participant_joined(cid, &p).await {
                    Ok(id) => self.session = Some(id),
                    Err(e) => warn!(cid = %cid, error = %e, "cannot record a join"),
                }
            }
            Activity::Left(p, reason) => {
                self.present.remove(&p.user_session_id);
                if let Some(s) = &self.session
                    && let Err(e) = services.participant_left(cid, s, &p, reason).await
                {
                    warn!(cid = %cid, error = %e, "cannot record a leave");
                }
                if self.present.is_empty() {
                    self.empty_since = Some(Instant::now());
                }
            }
            Activity::TrackPublished(t) => self.track(&t, true).await,
            Activity::TrackEnded(t) => self.track(&t, false).await,
            Activity::DominantSpeaker(p) => {
                let event = json!({
                    "type": "call.dominant_speaker_changed",
                    "call_cid": cid,
                    "created_at": Timestamp::now(),
                    "user_id": p.user_id,
                    "user_session_id": p.user_session_id,
                });
                services.live().publish(cid, event.to_string().into());
            }
        }
    }

    /// Announces that `t` was published (`true`) or ended.
    async fn track(&self, t: &Track, published: bool) {
        let Some(s) = &self.session else {
            warn!(cid = %self.cid, track_id = %t.track_id, "track outside a session");
            return;
        };
        if let Err(e) = self
            .services
            .track_changed(&self.cid, s, t, published)
            .await
        {
            warn!(cid = %self.cid, error = %e, "cannot record a track");
        }
    }
}
