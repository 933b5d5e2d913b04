//! Durable event stores: the append-only log behind a durable bus, with per-subscription
//! checkpoints, an inbox for deduplication, dead letters, a timeline per partition key, and
//! retention.
//!
//! ```
//! # #[cfg(feature = "sqlite")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use event_core::store::{SqliteStore, Store};
//! use event_core::RawEnvelope;
//!
//! let dir = tempfile::tempdir()?;
//! let store = SqliteStore::open(dir.path().join("events.db"))?;
//! # let json = r#"{"id":"0193a5b0-7e2a-7c3d-8f00-000000000001","type":"order.created","version":1,
//! #   "occurred_at":"2026-11-23T10:00:00.123Z","source":null,"correlation_id":null,
//! #   "causation_id":null,"trace_id":null,"payload":{"order_id":"o-1"},
//! #   "meta":{"partition_key":"o-1"}}"#;
//! let event = RawEnvelope::from_json(json.as_bytes())?;
//!
//! // Durable once `append` returns: committed, in one transaction per call.
//! let positions = store.append(vec![event.clone()]).await?;
//! assert_eq!(positions, [1]);
//! // Appending the same event id again stores nothing and answers its position.
//! assert_eq!(store.append(vec![event]).await?, [1]);
//!
//! // A subscription reads from its checkpoint and moves it forward.
//! let after = store.checkpoint("billing").await?;
//! let batch = store.read(after, 100).await?;
//! assert_eq!(batch[0].envelope.event_type, "order.created");
//! store.save_checkpoint("billing", batch[0].position).await?;
//! assert_eq!(store.checkpoint("billing").await?, 1);
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "sqlite"))]
//! # fn main() {}
//! ```
//!
//! # Backends
//!
//! - [`SqliteStore`] (feature `sqlite`): one file, WAL mode, a writer thread that commits
//!   concurrent appends together ("group commit"). The embedded default.
//! - [`PostgresStore`] (feature `postgres`): a PostgreSQL database shared by several
//!   processes, with the same group commit on a writer connection.
//!
//! Both keep their tables under the `event_store_` prefix, so they can live in the
//! application's own database; that is what makes the transactional outbox work:
//! `SqliteStore::append_in` and `PostgresStore::append_in` append inside the caller's
//! transaction, so a domain write and its events commit or roll back together; with the
//! features `sqlx-sqlite` and `sqlx-postgres`, `append_in_sqlx` does the same inside an
//! application's `sqlx` transaction.
//!
//! The [`Store`] trait is object safe; the bus holds an `Arc<dyn Store>`. Implement it for
//! another database by following the contract on each method; the conformance suite in the
//! workspace's `tests/tests/store_conformance.rs` checks it.
//!
//! # Positions
//!
//! Every stored event has a [`Position`]: 1 for the first event, then one more for each
//! event, in the order in which the appends **committed**. A reader that has seen position
//! `p` never later sees a new event with a position below `p`, so "everything after my
//! checkpoint" is a complete answer. Positions have no gaps, also after a failed append.

mod dead_letter;
mod error;
mod lease;
mod query;
mod timeline;

#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "postgres")]
mod postgres;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod migrations;

pub use dead_letter::{DeadLetterId, StoredDeadLetter};
pub use error::StoreError;
pub use lease::{Fence, LeaseInfo};
pub use query::EventQuery;
#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres")),
    allow(unused_imports)
)]
pub(crate) use query::{Dialect, SqlValue};
pub use timeline::{TimelineOrder, TimelinePage, TimelineQuery};

#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteOptions, SqliteStore, Synchronous};

/// The `rusqlite` version the SQLite store is built on, for [`SqliteStore::append_in`].
#[cfg(feature = "sqlite")]
pub use rusqlite;

#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;

/// The `tokio-postgres` version the PostgreSQL store is built on, for
/// [`PostgresStore::append_in`].
#[cfg(feature = "postgres")]
pub use tokio_postgres;

/// The `sqlx` version the sqlx outbox is built on, for
/// `SqliteStore::append_in_sqlx` and `PostgresStore::append_in_sqlx`.
#[cfg(any(feature = "sqlx-sqlite", feature = "sqlx-postgres"))]
pub use sqlx;

use crate::envelope::RawEnvelope;
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use uuid::Uuid;

/// Where an event sits in a store: 1 for the first event, in the order appends committed;
/// 0 means "before the first event" (a new subscription's checkpoint).
pub type Position = u64;

/// An event as read back from a store.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// Its place in the store's global order.
    pub position: Position,
    /// The envelope, byte for byte as appended (the payload stays raw JSON).
    pub envelope: RawEnvelope,
}

/// Counters of a store's work since it was opened, by this process.
///
/// ```
/// use event_core::store::StoreStats;
///
/// let stats = StoreStats { appends: 16, events_appended: 16, write_transactions: 3 };
/// // Group commit: 16 appends shared 3 transactions.
/// assert!(stats.write_transactions < stats.appends);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// `append` calls that committed.
    pub appends: u64,
    /// New events stored by those calls (an id already stored is not counted).
    pub events_appended: u64,
    /// Write transactions committed by the store's writer (appends and other writes).
    pub write_transactions: u64,
}

/// A durable event store: an append-only log with checkpoints, an inbox, dead letters, a
/// timeline and retention.
///
/// Every method returns a boxed future, so the trait is object safe: the bus holds an
/// `Arc<dyn Store>`. Each write is committed (durable) when its future resolves to `Ok`; an
/// `Err` means nothing of that call was written.
///
/// See the [module docs](self) for an example.
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Appends events, in one transaction, and returns their positions in the same order.
    ///
    /// An event whose id is already stored is not stored again: its existing position is
    /// returned (also for an id repeated within `events`). Resolves once the events are
    /// committed.
    fn append(&self, events: Vec<RawEnvelope>) -> BoxFuture<'_, Result<Vec<Position>, StoreError>>;

    /// Up to `limit` events after `after`, in position order.
    fn read(
        &self,
        after: Position,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>>;

    /// The position of the last appended event, 0 when none ever was (pruning does not
    /// lower it).
    fn head(&self) -> BoxFuture<'_, Result<Position, StoreError>>;

    /// The subscription's checkpoint: the position up to which it handled everything; 0 when
    /// it has none.
    fn checkpoint<'a>(
        &'a self,
        subscription: &'a str,
    ) -> BoxFuture<'a, Result<Position, StoreError>>;

    /// Moves the subscription's checkpoint forward to `position`; never back (a lower
    /// position leaves it as it is). The first save also registers the subscription for
    /// [`prune`](Self::prune), even at position 0.
    fn save_checkpoint<'a>(
        &'a self,
        subscription: &'a str,
        position: Position,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Every subscription with a checkpoint, by name, with its position: what operators'
    /// tools list. (A consumer group's shards have one each, `{name}#{shard}/{shards}`.)
    /// Stores that cannot list them say [`StoreError::Unsupported`].
    fn checkpoints(&self) -> BoxFuture<'_, Result<Vec<(String, Position)>, StoreError>> {
        unsupported("checkpoints")
    }

    /// Sets the subscription's checkpoint to `position`, back or forward: for a replay.
    fn reset_checkpoint<'a>(
        &'a self,
        subscription: &'a str,
        position: Position,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Forgets a subscription: its checkpoint and its inbox, so it no longer holds back
    /// [`prune`](Self::prune). Its dead letters stay.
    fn remove_subscription<'a>(
        &'a self,
        subscription: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Claims an event for a subscription in its inbox: `true` the first time, `false` when
    /// it was already claimed. Of two concurrent claims of the same event exactly one wins.
    fn claim<'a>(
        &'a self,
        subscription: &'a str,
        event_id: Uuid,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Whether the subscription already claimed the event.
    fn is_claimed<'a>(
        &'a self,
        subscription: &'a str,
        event_id: Uuid,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Stores a dead letter and returns its id.
    fn put_dead_letter<'a>(
        &'a self,
        letter: &'a crate::DeadLetter,
    ) -> BoxFuture<'a, Result<DeadLetterId, StoreError>>;

    /// The stored dead letters, oldest first; only the subscription's when one is given.
    fn dead_letters<'a>(
        &'a self,
        subscription: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<StoredDeadLetter>, StoreError>>;

    /// Removes a dead letter; `false` when there was none with this id.
    fn remove_dead_letter(&self, id: DeadLetterId) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// One page of the events of a partition key, see [`TimelineQuery`].
    fn timeline<'a>(
        &'a self,
        query: &'a TimelineQuery,
    ) -> BoxFuture<'a, Result<TimelinePage, StoreError>>;

    /// One page of the events matching `query` (see [`EventQuery`]): an operator's search by
    /// key, type, correlation id, tenant or time. Stores that cannot search say
    /// [`StoreError::Unsupported`].
    fn query<'a>(
        &'a self,
        query: &'a EventQuery,
    ) -> BoxFuture<'a, Result<TimelinePage, StoreError>> {
        let _ = query;
        unsupported("query")
    }

    /// Deletes the events appended before `older_than` that every known subscription has
    /// handled (each subscription with a checkpoint has passed them), with their inbox
    /// claims, and returns how many events it deleted.
    ///
    /// An event not yet handled by some subscription is never deleted, and with no
    /// subscription at all nothing is. Positions are never reused afterwards. An event id
    /// pruned can be appended again, as a new event.
    fn prune(&self, older_than: DateTime<Utc>) -> BoxFuture<'_, Result<usize, StoreError>>;

    /// Takes, renews or keeps out of reach the lease `name` (one relay per store, say, among
    /// the processes sharing it): `Some(token)` when `holder` holds it now, for `ttl` from
    /// now; `None` while another holder's lease runs. A holder that renews its lease before
    /// it runs out keeps its token; a lease taken anew gets a larger one (a fencing token):
    /// by another holder, and also by the same holder after its lease ran out or was
    /// released. The expiry is read on the database's clock where it has one
    /// (PostgreSQL), so processes with skewed clocks agree.
    fn lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        ttl: std::time::Duration,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>>;

    /// Gives up the lease `name` if `holder` holds it, so that another holder can take it at
    /// once; does nothing otherwise.
    fn release_lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The leases whose name starts with `prefix` and that run now, by name: the live
    /// members of a consumer group, say.
    ///
    /// The default answers [`StoreError::Unsupported`], as the other methods that consumer
    /// groups need, for stores written before them.
    fn leases<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<LeaseInfo>, StoreError>> {
        let _ = prefix;
        unsupported("leases")
    }

    /// [`save_checkpoint`](Self::save_checkpoint), only while `fence` holds (its holder holds
    /// its lease, with its token, and the lease runs), checked in the same atomic write:
    /// `Ok(false)` and nothing written otherwise. A worker that lost its shard to another
    /// cannot move the shard's checkpoint past what the new owner handles.
    fn save_checkpoint_fenced<'a>(
        &'a self,
        subscription: &'a str,
        position: Position,
        fence: &'a Fence,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let _ = (subscription, position, fence);
        unsupported("save_checkpoint_fenced")
    }

    /// [`claim`](Self::claim), only while `fence` holds, checked in the same atomic write:
    /// `Ok(None)` and nothing written when it does not, else `Ok(Some(claimed))`. A worker
    /// that lost its shard to another cannot mark an event handled for the group.
    fn claim_fenced<'a>(
        &'a self,
        subscription: &'a str,
        event_id: Uuid,
        fence: &'a Fence,
    ) -> BoxFuture<'a, Result<Option<bool>, StoreError>> {
        let _ = (subscription, event_id, fence);
        unsupported("claim_fenced")
    }

    /// Asks the store to wake `wake` (`notify_waiters`) whenever another process, or another
    /// connection, commits an append, so that pumps read at once rather than at their next
    /// poll. The default does nothing: polling finds such appends. PostgreSQL does it with
    /// `LISTEN`/`NOTIFY`. The store stops once `wake` has no other owner.
    fn watch_appends(&self, wake: std::sync::Weak<tokio::sync::Notify>) {
        let _ = wake;
    }

    /// Counters of the store's work since it was opened.
    fn stats(&self) -> StoreStats;
}

/// What a `Store` method that a store does not implement answers.
fn unsupported<'a, T: Send + 'a>(operation: &'static str) -> BoxFuture<'a, Result<T, StoreError>> {
    Box::pin(std::future::ready(Err(StoreError::Unsupported {
        operation,
    })))
}

/// The limit a store applies to `read` and timeline pages: at least 1, at most 10 000.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn clamp_limit(limit: usize) -> usize {
    limit.clamp(1, 10_000)
}

/// The canonical JSON of an envelope to store.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn encode(envelope: &RawEnvelope) -> Result<String, StoreError> {
    envelope.to_json().map_err(|source| StoreError::Encode {
        id: envelope.id,
        source: std::sync::Arc::new(source),
    })
}

/// Parses a stored envelope.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn decode(position: Position, json: &str) -> Result<StoredEvent, StoreError> {
    let envelope =
        RawEnvelope::from_json(json.as_bytes()).map_err(|source| StoreError::Decode {
            position,
            source: std::sync::Arc::new(source),
        })?;
    Ok(StoredEvent { position, envelope })
}

/// An event to append, encoded once by the caller's task rather than by the writer.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[derive(Debug)]
pub(crate) struct Encoded {
    pub(crate) id: Uuid,
    pub(crate) event_type: String,
    pub(crate) partition_key: Option<String>,
    pub(crate) json: String,
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl Encoded {
    pub(crate) fn all(events: &[RawEnvelope]) -> Result<Vec<Encoded>, StoreError> {
        events
            .iter()
            .map(|envelope| {
                storable(envelope)?;
                Ok(Encoded {
                    id: envelope.id,
                    event_type: envelope.event_type.to_string(),
                    partition_key: envelope.partition_key().map(str::to_owned),
                    json: encode(envelope)?,
                })
            })
            .collect()
    }
}

/// Refuses what would be stored but not read back: every later read of the batch holding it
/// would fail, and with it every subscription behind it.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn storable(envelope: &RawEnvelope) -> Result<(), StoreError> {
    use chrono::Datelike;
    let reason = if !(0..=9999).contains(&envelope.occurred_at.year()) {
        Some("its time is outside the years 0 to 9999")
    } else if envelope.event_type.contains('\0')
        || envelope
            .partition_key()
            .is_some_and(|key| key.contains('\0'))
    {
        Some("its type or partition key holds a NUL character")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(StoreError::Unstorable {
            id: envelope.id,
            reason,
        }),
        None => Ok(()),
    }
}

/// Converts a position to the signed 64-bit integer both databases store.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn to_sql(position: Position) -> i64 {
    i64::try_from(position).unwrap_or(i64::MAX)
}

/// Converts a stored position back; a negative number (never written) reads as 0.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn from_sql(value: i64) -> Position {
    Position::try_from(value).unwrap_or(0)
}

/// The live counters behind [`StoreStats`].
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) appends: std::sync::atomic::AtomicU64,
    pub(crate) events_appended: std::sync::atomic::AtomicU64,
    pub(crate) write_transactions: std::sync::atomic::AtomicU64,
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl Counters {
    pub(crate) fn appended(&self, new_events: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.appends.fetch_add(1, Relaxed);
        self.events_appended.fetch_add(new_events, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> StoreStats {
        use std::sync::atomic::Ordering::Relaxed;
        StoreStats {
            appends: self.appends.load(Relaxed),
            events_appended: self.events_appended.load(Relaxed),
            write_transactions: self.write_transactions.load(Relaxed),
        }
    }
}
