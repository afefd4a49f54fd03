//! Domain services: what the API dialects ask of reel, and what reel makes of the media
//! plane's reports.
//!
//! Each operation means the same whichever dialect asks: it checks who is asking, loads and
//! saves through [`crate::store`], starts and stops recorders through its supervisor, and
//! queues webhooks in the same transaction as the change that causes them.

mod activity;
mod broadcasts;
mod call_types;
mod calls;
mod live;
mod recordings;
mod reports;
mod sessions;
mod storages;
mod supervisor;
mod uploads;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::auth::{Caller, Keys};
use crate::bus::Bus;
use crate::domain::{Call, CallActivity, Cid, Event, Grants, Permission, Role, Timestamp};
use crate::metrics::Metrics;
use crate::recorders::Recorders;
use crate::storage::{StorageError, Target};
use crate::store::{Store, StoreError, WriteTx};
use crate::webhooks::Receivers;

pub use broadcasts::{BroadcastGrant, Download, NotDeleted, RecordLinks};
pub use call_types::{CallTypeChanges, NewCallType, UserChanges};
pub use calls::{CallChanges, CallView, NewCall, NewMember};
pub use live::{EventShapes, LiveEvents};
pub use recordings::StartOptions;
pub use reports::{RecordingQuery, RecordingReport};
pub use sessions::JoinGrant;
pub use storages::{StorageSpec, Storages};
pub use supervisor::BEHIND;
pub use uploads::Uploader;

/// Why an operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request is not acceptable as it is.
    #[error("{0}")]
    Invalid(String),
    /// Something it names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The credentials given are not valid.
    #[error("{0}")]
    Unauthorized(String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// It would clash with something that exists.
    #[error("{0}")]
    Conflict(String),
    /// A part reel needs (a recorder, a storage service) is not working.
    #[error("{0}")]
    Unavailable(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A storage service failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Result of a service operation.
pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// Settings the services need from the configuration.
#[derive(Clone, Debug)]
pub struct ServiceSettings {
    /// Lifetime of download links.
    pub download_url_ttl: Duration,
    /// Longest recording of a broadcast: a longer broadcast goes on in a new recording.
    pub broadcast_split: Duration,
    /// How long a failing upload is retried before the file is given up (and kept locally).
    pub upload_retry_for: Duration,
    /// When a failed upload is tried again.
    pub retry: crate::backoff::Backoff,
    /// Where recorders write files before they are uploaded.
    pub work_dir: PathBuf,
    /// How long a call session outlives its last participant.
    pub session_grace: Duration,
    /// reel's API as a browser on this machine reaches it (composite recordings draw the
    /// call there).
    pub local_url: String,
}

/// The services, cheap to clone.
#[derive(Clone)]
pub struct Services {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    keys: Keys,
    receivers: Receivers,
    webhook_wake: Arc<Notify>,
    upload_wake: Arc<Notify>,
    storages: Storages,
    recorders: Recorders,
    /// Runs the recorders of this process.
    supervisor: supervisor::Supervisor,
    metrics: Arc<Metrics>,
    settings: ServiceSettings,
    /// Live events per call.
    live: LiveEvents,
    /// Held from a commit with events until they are published live, so that live streams
    /// see events in the order their transactions committed, whichever tasks made them.
    commit_order: tokio::sync::Mutex<()>,
    /// The media plane's packet bus (recorders subscribe to it).
    bus: Bus,
    /// Renders calls and users in events.
    shapes: Box<dyn EventShapes>,
}

/// A write transaction and the events it announces once committed.
struct Tx {
    tx: WriteTx,
    events: Vec<Event>,
}

impl std::ops::Deref for Tx {
    type Target = WriteTx;
    fn deref(&self) -> &WriteTx {
        &self.tx
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut WriteTx {
        &mut self.tx
    }
}

/// What a caller may do in one call (or application-wide without a call).
struct Access {
    caller: Caller,
    roles: Vec<Role>,
}

impl Access {
    fn is_server(&self) -> bool {
        matches!(self.caller, Caller::Server)
    }

    fn require(&self, grants: &Grants, p: Permission, cid: &Cid) -> Result<()> {
        match &self.caller {
            Caller::Server => Ok(()),
            Caller::User(_) if grants.allows(&self.roles, p) => Ok(()),
            Caller::User(u) => Err(ServiceError::Forbidden(format!(
                "User '{}' with role '{}' is not allowed to perform action {} in scope 'video:{}'",
                u.user_id,
                self.roles.first().map(Role::as_str).unwrap_or("user"),
                p.name(),
                cid.call_type,
            ))),
        }
    }

    fn capabilities(&self, grants: &Grants) -> Vec<&'static str> {
        if self.is_server() {
            Grants::all_capabilities()
        } else {
            grants.capabilities(&self.roles)
        }
    }
}

impl Services {
    /// Services over `store`, signing with `keys`, sending events to `receivers`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        keys: Keys,
        receivers: Receivers,
        webhook_wake: Arc<Notify>,
        storages: Storages,
        recorders: Recorders,
        metrics: Arc<Metrics>,
        settings: ServiceSettings,
        bus: Bus,
        shapes: Box<dyn EventShapes>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                keys,
                receivers,
                webhook_wake,
                upload_wake: Arc::new(Notify::new()),
                storages,
                recorders,
                supervisor: supervisor::Supervisor::default(),
                metrics,
                settings,
                live: LiveEvents::default(),
                commit_order: tokio::sync::Mutex::new(()),
                bus,
                shapes,
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The application's keys.
    pub fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// The storage targets.
    pub fn storages(&self) -> &Storages {
        &self.inner.storages
    }

    /// The uploader that moves finished files to their storage.
    pub fn uploader(&self) -> Uploader {
        Uploader::new(self.clone(), self.inner.upload_wake.clone())
    }

    /// Acts on the media plane's reports of what happens in calls, until `shutdown` fires.
    pub async fn follow_media(
        self,
        reports: mpsc::UnboundedReceiver<CallActivity>,
        shutdown: CancellationToken,
    ) {
        let grace = self.inner.settings.session_grace;
        tokio::select! {
            () = activity::follow(self, reports, grace) => {}
            () = shutdown.cancelled() => {}
        }
    }

    /// Starts a transaction.
    async fn begin(&self) -> Result<Tx> {
        Ok(Tx {
            tx: self.store().write().await?,
            events: Vec::new(),
        })
    }

    /// Queues `events` in `tx` for every webhook receiver, and for the call's live event
    /// stream once `tx` commits.
    async fn enqueue(&self, tx: &mut Tx, events: &[Event]) -> Result<()> {
        let deliveries = self.inner.receivers.deliveries(events);
        tx.tx.enqueue(&deliveries, Timestamp::now()).await?;
        tx.events.extend_from_slice(events);
        Ok(())
    }

    /// Commits `tx`, wakes the webhook dispatcher and publishes its events live.
    async fn commit(&self, tx: Tx) -> Result<()> {
        if tx.events.is_empty() {
            return Ok(tx.tx.commit().await?);
        }
        let _in_order = self.inner.commit_order.lock().await;
        tx.tx.commit().await?;
        self.inner.webhook_wake.notify_one();
        for e in &tx.events {
            let json = serde_json::to_string(e).expect("events serialize to JSON");
            self.inner.live.publish(e.cid(), json.into());
        }
        Ok(())
    }

    /// The live events of every call.
    pub fn live(&self) -> &LiveEvents {
        &self.inner.live
    }

    /// The packet bus of the media plane.
    pub fn bus(&self) -> &Bus {
        &self.inner.bus
    }

    /// Renders domain objects in event shapes.
    fn shapes(&self) -> &dyn EventShapes {
        self.inner.shapes.as_ref()
    }

    /// The caller's roles in `call` (or application-wide), refusing tokens limited to other calls.
    async fn access(&self, caller: &Caller, cid: &Cid, call: Option<&Call>) -> Result<Access> {
        let roles = match caller {
            Caller::Server => Vec::new(),
            Caller::User(u) => {
                if !u.may_access(cid) {
                    return Err(ServiceError::Forbidden(format!(
                        "the token of user '{}' is not valid for call {cid}",
                        u.user_id
                    )));
                }
                let base = match &u.role {
                    Some(r) => r.clone(),
                    None => self
                        .store()
                        .get_user(&u.user_id)
                        .await?
                        .map_or_else(Role::user, |user| user.role),
                };
                match call {
                    Some(c) => c.roles_of(&u.user_id, base),
                    None => vec![base],
                }
            }
        };
        Ok(Access {
            caller: caller.clone(),
            roles,
        })
    }

    /// The storage target of `location`.
    async fn target(&self, location: &crate::domain::StorageLocation) -> Result<Target> {
        self.inner.storages.target(self.store(), location).await
    }

    /// The storage target of `location`, read in `tx`.
    async fn target_in(
        &self,
        tx: &mut Tx,
        location: &crate::domain::StorageLocation,
    ) -> Result<Target> {
        self.inner.storages.target_in(tx, location).await
    }
}

impl Services {
    /// Webhook deliveries that failed: still retrying or given up, newest first.
    pub async fn failed_deliveries(
        &self,
        caller: &Caller,
        limit: u32,
    ) -> Result<Vec<crate::store::Delivery>> {
        require_server(caller, "list webhook deliveries")?;
        Ok(self.store().failed_deliveries(limit).await?)
    }
}

fn require_server(caller: &Caller, what: &str) -> Result<()> {
    match caller {
        Caller::Server => Ok(()),
        Caller::User(u) => Err(ServiceError::Forbidden(format!(
            "only server-side requests may {what}; user '{}' may not",
            u.user_id
        ))),
    }
}
