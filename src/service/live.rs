//! Live events of each call: what the call's event stream (join page, layout app) shows.
//!
//! Every event that goes to webhooks is also published here once its transaction commits;
//! the media plane adds the ones that only matter live (the dominant speaker), and pins are
//! kept and announced here. Subscribers that fall behind skip events rather than hold anyone
//! up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::domain::{
    Cid, Pin, RecordFile, RecordFileChange, RecordingState, Timestamp, User, UserId,
};
use crate::service::{CallView, RecordingReport};

/// Events a slow subscriber may fall behind by before it skips some.
const BACKLOG: usize = 256;

/// Renders domain objects in the shapes events carry (the webhook dialect's).
pub trait EventShapes: Send + Sync + 'static {
    /// A call.
    fn call(&self, view: &CallView) -> Value;
    /// A user; `None` when no record was upserted for the id.
    fn user(&self, id: &UserId, user: Option<&User>) -> Value;
    /// The event announcing that a recording moved from `from` (`None`: it was just
    /// requested) to the state in `report`, if a dialect announces that change.
    fn recording_status(
        &self,
        report: &RecordingReport,
        from: Option<RecordingState>,
    ) -> Option<Value>;
    /// The event announcing `change` of a broadcast's record file, at `at`.
    fn record_file(&self, file: &RecordFile, change: RecordFileChange, at: Timestamp) -> Value;
}

/// The per-call channels of live events (JSON text, one event each), and the participants
/// pinned in each call.
#[derive(Default)]
pub struct LiveEvents {
    calls: Mutex<HashMap<Cid, broadcast::Sender<Arc<str>>>>,
    pins: Mutex<HashMap<Cid, Vec<Pin>>>,
}

impl LiveEvents {
    /// A receiver of the call's events from now on.
    pub fn subscribe(&self, cid: &Cid) -> broadcast::Receiver<Arc<str>> {
        self.calls()
            .entry(cid.clone())
            .or_insert_with(|| broadcast::channel(BACKLOG).0)
            .subscribe()
    }

    /// Sends `event` (a JSON object) to the call's subscribers, if it has any.
    pub fn publish(&self, cid: &Cid, event: Arc<str>) {
        let mut calls = self.calls();
        if let Some(tx) = calls.get(cid)
            && tx.send(event).is_err()
        {
            // Nobody listens any more.
            calls.remove(cid);
        }
    }

    /// The call's pins, first pinned first.
    pub fn pins(&self, cid: &Cid) -> Vec<Pin> {
        self.pins_map().get(cid).cloned().unwrap_or_default()
    }

    /// Pins `pin` (or unpins it) and announces the call's pins (`call.pins_updated`) if they
    /// changed.
    pub fn set_pin(&self, cid: &Cid, pin: Pin, pinned: bool) {
        let mut all = self.pins_map();
        let pins = all.entry(cid.clone()).or_default();
        let had = pins.iter().position(|p| *p == pin);
        match (had, pinned) {
            (None, true) => pins.push(pin),
            (Some(i), false) => {
                pins.remove(i);
            }
            _ => return,
        }
        let event = json!({
            "type": "call.pins_updated",
            "call_cid": cid,
            "created_at": Timestamp::now(),
            "pins": pins,
        });
        if pins.is_empty() {
            all.remove(cid);
        }
        drop(all);
        self.publish(cid, event.to_string().into());
    }

    /// Forgets the call's pins (its session ended).
    pub fn clear_pins(&self, cid: &Cid) {
        self.pins_map().remove(cid);
    }

    fn pins_map(&self) -> std::sync::MutexGuard<'_, HashMap<Cid, Vec<Pin>>> {
        self.pins.lock().expect("the pins map is never poisoned")
    }

    fn calls(&self) -> std::sync::MutexGuard<'_, HashMap<Cid, broadcast::Sender<Arc<str>>>> {
        self.calls
            .lock()
            .expect("the live-events map is never poisoned")
    }
}
