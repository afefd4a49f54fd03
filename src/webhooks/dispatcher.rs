//! The delivery loop.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{sign, sign_sha1};
use crate::backoff::Backoff;
use crate::domain::Timestamp;
use crate::metrics::{Metrics, OutcomeLabels};
use crate::store::{Delivery, Store};

/// Deliveries fetched (and sent concurrently) at a time; each is first in line for its call.
const BATCH: u32 = 32;
/// Longest sleep between two looks at the outbox, in case a wake-up was missed.
const IDLE_POLL: Duration = Duration::from_secs(5);
/// Delivered rows are kept this long for inspection.
const KEEP_DELIVERED: Duration = Duration::from_secs(7 * 24 * 3600);

/// Sends queued webhooks.
#[derive(Clone)]
pub struct Dispatcher {
    store: Store,
    client: reqwest::Client,
    api_key: String,
    secret: String,
    retry: Backoff,
    retry_for: Duration,
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
    /// Deliveries the receiver took whose success could not be recorded yet (the database
    /// was away): recorded before anything else is sent, never sent again.
    unrecorded: Arc<Mutex<Vec<Sent>>>,
}

/// A delivery the receiver took: its id, attempts, and when.
#[derive(Clone, Copy, Debug)]
struct Sent {
    id: i64,
    attempts: u32,
    at: Timestamp,
}

enum Outcome {
    Delivered,
    Failed { status: Option<u16>, error: String },
}

impl Dispatcher {
    /// A dispatcher signing with `secret`, giving each receiver `timeout` to answer and
    /// retrying a delivery as `retry` says for `retry_for` after it was queued.
    pub fn new(
        store: Store,
        api_key: String,
        secret: String,
        timeout: Duration,
        (retry, retry_for): (Backoff, Duration),
        metrics: Arc<Metrics>,
    ) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("reel/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client builds with a static configuration");
        Self {
            store,
            client,
            api_key,
            secret,
            retry,
            retry_for,
            wake: Arc::new(Notify::new()),
            metrics,
            unrecorded: Arc::default(),
        }
    }

    /// A handle that makes the loop look at the outbox now (after queuing events).
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Delivers until `shutdown` fires.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut last_prune = Timestamp::from_unix_nanos(0);
        while !shutdown.is_cancelled() {
            let now = Timestamp::now();
            if now.since(last_prune) > Duration::from_secs(3600) {
                last_prune = now;
                if let Err(e) = self.store.prune_delivered(now.before(KEEP_DELIVERED)).await {
                    warn!(error = %e, "cannot prune delivered webhooks");
                }
            }
            let sleep_for = match self.deliver_due(now).await {
                Ok(true) => continue,
                Ok(false) => match self.store.next_delivery_at().await {
                    Ok(Some(t)) => t.since(Timestamp::now()).min(IDLE_POLL),
                    Ok(None) => IDLE_POLL,
                    Err(e) => {
                        warn!(error = %e, "cannot read the webhook outbox");
                        Duration::from_secs(1)
                    }
                },
                Err(e) => {
                    warn!(error = %e, "cannot use the webhook outbox");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(sleep_for) => {}
            }
        }
    }

    /// Sends every due delivery that is first in line; true if there were any. An error if an
    /// outcome could not be recorded: the loop then pauses instead of sending it again at once.
    async fn deliver_due(&self, now: Timestamp) -> Result<bool, crate::store::StoreError> {
        self.record_unrecorded().await?;
        let due = self.store.due_deliveries(now, BATCH).await?;
        if due.is_empty() {
            return Ok(false);
        }
        let settled = join_all(due.iter().map(|d| async move {
            let outcome = self.attempt(d).await;
            self.settle(d, outcome).await
        }))
        .await;
        settled.into_iter().collect::<Result<Vec<()>, _>>()?;
        Ok(true)
    }

    /// Records the deliveries whose success could not be recorded when they were made.
    async fn record_unrecorded(&self) -> Result<(), crate::store::StoreError> {
        let waiting = std::mem::take(&mut *self.unrecorded.lock().expect("not poisoned"));
        for (i, s) in waiting.iter().enumerate() {
            if let Err(e) = self.store.delivery_succeeded(s.id, s.attempts, s.at).await {
                self.unrecorded
                    .lock()
                    .expect("not poisoned")
                    .extend_from_slice(&waiting[i..]);
                return Err(e);
            }
        }
        Ok(())
    }

    async fn attempt(&self, d: &Delivery) -> Outcome {
        let signature = sign(&self.secret, d.body.as_bytes());
        let sent = self
            .client
            .post(&d.endpoint)
            .header("content-type", "application/json")
            .header("x-signature", signature)
            .header(
                "x-millicast-signature",
                sign_sha1(&self.secret, d.body.as_bytes()),
            )
            .header("x-api-key", &self.api_key)
            .header("x-webhook-id", d.id.to_string())
            .header("x-webhook-attempt", (d.attempts + 1).to_string())
            .body(d.body.clone())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => Outcome::Delivered,
            Ok(r) => Outcome::Failed {
                status: Some(r.status().as_u16()),
                error: format!("receiver answered {}", r.status()),
            },
            Err(e) => Outcome::Failed {
                status: None,
                error: error_chain(&e),
            },
        }
    }

    async fn settle(&self, d: &Delivery, outcome: Outcome) -> Result<(), crate::store::StoreError> {
        let attempts = d.attempts + 1;
        let now = Timestamp::now();
        match outcome {
            Outcome::Delivered => {
                debug!(delivery = d.id, cid = %d.ordering_key, event = %d.event_type, attempts, "webhook delivered");
                self.metrics
                    .webhook_deliveries
                    .get_or_create(&OutcomeLabels { outcome: "ok" })
                    .inc();
                let recorded = self.store.delivery_succeeded(d.id, attempts, now).await;
                if recorded.is_err() {
                    self.unrecorded.lock().expect("not poisoned").push(Sent {
                        id: d.id,
                        attempts,
                        at: now,
                    });
                }
                recorded
            }
            Outcome::Failed { status, error } => {
                let retry_at = now.after(self.retry.delay(attempts));
                let give_up = retry_at.since(d.created_at) > self.retry_for;
                if give_up {
                    warn!(delivery = d.id, cid = %d.ordering_key, event = %d.event_type, attempts, %error,
                          "webhook given up");
                    self.metrics
                        .webhook_deliveries
                        .get_or_create(&OutcomeLabels { outcome: "dead" })
                        .inc();
                } else {
                    info!(delivery = d.id, cid = %d.ordering_key, event = %d.event_type, attempts, %error,
                          "webhook failed; will retry");
                    self.metrics
                        .webhook_deliveries
                        .get_or_create(&OutcomeLabels { outcome: "failed" })
                        .inc();
                }
                self.store
                    .delivery_failed(
                        d.id,
                        attempts,
                        status,
                        &error,
                        (!give_up).then_some(retry_at),
                    )
                    .await
            }
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
