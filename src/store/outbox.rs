//! The webhook outbox: one row per event and endpoint, delivered in order per call.

use sqlx::any::AnyRow;

use super::{Store, StoreError, WriteTx, get, parse_with};
use crate::domain::Timestamp;

macro_rules! delivery_columns {
    () => {
        "id, endpoint, ordering_key, event_type, body, state, attempts, next_attempt_at, last_status,
         last_error, created_at, delivered_at"
    };
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not delivered yet; will be (re)tried.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up after the retry period.
    Dead,
}

impl DeliveryState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Dead]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

/// An event to send to one endpoint.
#[derive(Clone, Debug)]
pub struct NewDelivery {
    /// The receiver's URL.
    pub endpoint: String,
    /// Deliveries with the same key (the call cid) go out in order.
    pub ordering_key: String,
    /// The event's type, for listings.
    pub event_type: String,
    /// The exact JSON body to send and sign.
    pub body: String,
}

/// A stored delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Row id; also sent as `X-Webhook-Id` so receivers can drop repeats.
    pub id: i64,
    /// The receiver's URL.
    pub endpoint: String,
    /// Ordering key (the call cid).
    pub ordering_key: String,
    /// The event's type.
    pub event_type: String,
    /// The JSON body.
    pub body: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    /// Earliest time of the next attempt.
    pub next_attempt_at: Timestamp,
    /// HTTP status of the last failed attempt, if the receiver answered.
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the event was queued.
    pub created_at: Timestamp,
    /// When the receiver accepted it.
    pub delivered_at: Option<Timestamp>,
}

fn delivery_from_row(row: &AnyRow) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        id: get(row, "id")?,
        endpoint: get(row, "endpoint")?,
        ordering_key: get(row, "ordering_key")?,
        event_type: get(row, "event_type")?,
        body: get(row, "body")?,
        state: parse_with(
            "delivery state",
            &get::<String>(row, "state")?,
            DeliveryState::parse,
        )?,
        attempts: u32::try_from(get::<i64>(row, "attempts")?).unwrap_or(u32::MAX),
        next_attempt_at: Timestamp::from_unix_nanos(get(row, "next_attempt_at")?),
        last_status: get::<Option<i64>>(row, "last_status")?.and_then(|s| u16::try_from(s).ok()),
        last_error: get(row, "last_error")?,
        created_at: Timestamp::from_unix_nanos(get(row, "created_at")?),
        delivered_at: get::<Option<i64>>(row, "delivered_at")?.map(Timestamp::from_unix_nanos),
    })
}

impl WriteTx {
    /// Queues deliveries; they go out once the transaction commits.
    pub async fn enqueue(
        &mut self,
        deliveries: &[NewDelivery],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        for d in deliveries {
            sqlx::query(
                "INSERT INTO webhook_deliveries (endpoint, ordering_key, event_type, body, state, attempts,
                     next_attempt_at, created_at)
                 VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5)",
            )
            .bind(d.endpoint.clone())
            .bind(d.ordering_key.clone())
            .bind(d.event_type.clone())
            .bind(d.body.clone())
            .bind(now.unix_nanos())
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }
}

impl Store {
    /// Pending deliveries that are due and first in line for their endpoint and call.
    pub async fn due_deliveries(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM webhook_deliveries d
             WHERE d.state = 'pending' AND d.next_attempt_at <= $1
               AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e
                               WHERE e.state = 'pending' AND e.endpoint = d.endpoint
                                 AND e.ordering_key = d.ordering_key AND e.id < d.id)
             ORDER BY d.id LIMIT $2"
        ))
        .bind(now.unix_nanos())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    /// When the earliest first-in-line pending delivery is due.
    pub async fn next_delivery_at(&self) -> Result<Option<Timestamp>, StoreError> {
        let (t,): (Option<i64>,) = sqlx::query_as(
            "SELECT MIN(d.next_attempt_at) FROM webhook_deliveries d
             WHERE d.state = 'pending'
               AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e
                               WHERE e.state = 'pending' AND e.endpoint = d.endpoint
                                 AND e.ordering_key = d.ordering_key AND e.id < d.id)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(t.map(Timestamp::from_unix_nanos))
    }

    /// Marks a delivery accepted by its receiver.
    pub async fn delivery_succeeded(
        &self,
        id: i64,
        attempts: u32,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE webhook_deliveries SET state = 'delivered', attempts = $2, delivered_at = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(i64::from(attempts))
        .bind(at.unix_nanos())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Notes a failed attempt: retried at `retry_at`, or given up (dead) when `None`.
    pub async fn delivery_failed(
        &self,
        id: i64,
        attempts: u32,
        status: Option<u16>,
        error: &str,
        retry_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        let state = if retry_at.is_some() {
            DeliveryState::Pending
        } else {
            DeliveryState::Dead
        };
        sqlx::query(
            "UPDATE webhook_deliveries SET state = $2, attempts = $3, last_status = $4, last_error = $5,
                 next_attempt_at = COALESCE($6, next_attempt_at)
             WHERE id = $1",
        )
        .bind(id)
        .bind(state.as_str())
        .bind(i64::from(attempts))
        .bind(status.map(i64::from))
        .bind(error.to_owned())
        .bind(retry_at.map(Timestamp::unix_nanos))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deliveries that failed at least once and are not delivered: given up, or still retrying.
    pub async fn failed_deliveries(&self, limit: u32) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM webhook_deliveries
             WHERE state = 'dead' OR (state = 'pending' AND attempts > 0)
             ORDER BY id DESC LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    /// Every delivery, oldest first (for inspection).
    pub async fn deliveries(&self, limit: u32) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM webhook_deliveries ORDER BY id LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    /// Puts given-up deliveries back in the queue, due now and with a fresh retry period; all
    /// of them when `id` is `None`.
    pub async fn requeue_dead(&self, id: Option<i64>, now: Timestamp) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = $1, created_at = $1
             WHERE state = 'dead' AND ($2 < 0 OR id = $2)",
        )
        .bind(now.unix_nanos())
        .bind(id.unwrap_or(-1))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Forgets delivered events older than `before`.
    pub async fn prune_delivered(&self, before: Timestamp) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM webhook_deliveries WHERE state = 'delivered' AND delivered_at < $1",
        )
        .bind(before.unix_nanos())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
