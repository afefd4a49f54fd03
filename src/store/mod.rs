//! Persistence: SQLite (the embedded default) or PostgreSQL, through one set of queries.
//!
//! Both backends are reached through sqlx's `Any` driver with queries written in the SQL that
//! both understand (`$n` parameters, `ON CONFLICT`, `RETURNING`, partial indexes); each
//! backend has its own migration set for the few DDL differences. Timestamps are stored as
//! unix nanoseconds and JSON documents as text, so rows decode the same on both.
//!
//! Reads go through [`Store`]; changes that must happen together (a state change and the
//! webhooks it triggers) go through a [`WriteTx`].

#[macro_use]
mod calls;
mod outbox;
mod record_files;
mod recordings;
mod sessions;
mod storages;
mod tokens;

use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Executor, Row, Transaction};

use crate::domain::InvalidName;

pub use outbox::{Delivery, DeliveryState, NewDelivery};
pub use record_files::{RecordFileQuery, RecordOrder};
pub use recordings::{FileState, NewFile, RecordingFilter, StoredFile};
pub use tokens::TokenOrder;

/// Which database a [`Store`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed or is unreachable.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A row to insert already exists, or a unique rule would be broken.
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// A row changed under us: the state it was expected to be in no longer holds.
    #[error("{0} changed concurrently")]
    Stale(&'static str),
    /// A stored value does not decode.
    #[error("corrupt {what} in the database: {reason}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// Why it does not decode.
        reason: String,
    },
}

impl From<InvalidName> for StoreError {
    fn from(e: InvalidName) -> Self {
        StoreError::Corrupt {
            what: e.what,
            reason: e.to_string(),
        }
    }
}

/// Maps a unique or foreign-key violation to [`StoreError::Conflict`].
fn conflict(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() || d.is_foreign_key_violation() => {
            StoreError::Conflict(what)
        }
        _ => StoreError::Database(e),
    }
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("in-memory values serialize to JSON")
}

fn from_json<T: DeserializeOwned>(what: &'static str, s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt {
        what,
        reason: e.to_string(),
    })
}

fn parse_with<T>(
    what: &'static str,
    s: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T, StoreError> {
    parse(s).ok_or_else(|| StoreError::Corrupt {
        what,
        reason: format!("unknown value {s:?}"),
    })
}

fn get<'r, T>(row: &'r AnyRow, col: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    Ok(row.try_get(col)?)
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The database of a reel installation.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// How many connections SQLite gets: one writer at a time, readers in parallel (WAL).
const SQLITE_CONNECTIONS: u32 = 4;
/// How many connections PostgreSQL gets.
const POSTGRES_CONNECTIONS: u32 = 16;

impl Store {
    /// Connects to `url` (`sqlite://...` or `postgres://...`) and applies pending migrations.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let options = AnyConnectOptions::from_str(url)?;
        let pool = match backend {
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(SQLITE_CONNECTIONS)
                    // A local file cannot drop the connection; the check would cost a round
                    // trip to the connection's worker thread on every query.
                    .test_before_acquire(false)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
                                .await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(POSTGRES_CONNECTIONS)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?
            }
        };
        let store = Store { pool, backend };
        if backend == Backend::Sqlite {
            store.pool.execute("PRAGMA journal_mode = WAL").await?;
        }
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&self.pool).await?,
            Backend::Postgres => {
                sqlx::migrate!("migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The backend's name, for logs.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// Starts a transaction for changes that must happen together.
    ///
    /// SQLite transactions take the write lock up front (`BEGIN IMMEDIATE`): a deferred
    /// transaction that reads and then writes can fail at once when another connection wrote
    /// in between, without waiting for the busy timeout.
    pub async fn write(&self) -> Result<WriteTx, StoreError> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(WriteTx {
            tx,
            backend: self.backend,
        })
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A transaction; dropped without [`WriteTx::commit`], nothing it did happens.
pub struct WriteTx {
    tx: Transaction<'static, Any>,
    backend: Backend,
}

impl WriteTx {
    /// Makes the changes permanent.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }
}
