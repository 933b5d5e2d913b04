//! Why a store operation failed.

use super::Position;
use std::error::Error;
use std::sync::Arc;
use uuid::Uuid;

/// The underlying cause of a store error, shared (an `Arc`): one failed commit answers every
/// caller of its batch with the same error.
pub(crate) type Source = Arc<dyn Error + Send + Sync + 'static>;

/// Why a store operation failed. Every variant that concerns a database names it: the file
/// path of an SQLite store, `host:port/dbname` of a PostgreSQL one.
///
/// A write that fails wrote nothing: the store is left as it was before the call.
///
/// ```
/// use event_core::store::StoreError;
///
/// let error = StoreError::SchemaTooNew { database: "events.db".into(), found: 9, supported: 1 };
/// assert_eq!(
///     error.to_string(),
///     "events.db: the store's schema is version 9, newer than the 1 this build of event-core \
///      supports: upgrade event-core, or open an older copy of the database",
/// );
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The file is not an SQLite database (random bytes, another format) or is damaged.
    /// Opening it changed nothing. Check the path; restore a damaged file from a backup.
    #[error("{database}: not a database, or a damaged one; the file was left untouched")]
    Corrupt {
        /// The file.
        database: String,
        /// What SQLite said.
        #[source]
        source: Source,
    },
    /// A database that belongs to another application: it has tables but not the store's,
    /// or carries another application id. Opening it changed nothing. Check the path, or see
    /// [`SqliteOptions::adopt`](crate::store::SqliteOptions::adopt) to add the store's tables
    /// to an application database on purpose.
    #[error("{database}: not an event store database ({reason}); the file was left untouched")]
    Foreign {
        /// The file.
        database: String,
        /// What gave it away.
        reason: String,
    },
    /// The database was migrated by a newer build of event-core, whose schema this build
    /// does not know. Nothing was changed. Upgrade event-core.
    #[error(
        "{database}: the store's schema is version {found}, newer than the {supported} this build \
         of event-core supports: upgrade event-core, or open an older copy of the database"
    )]
    SchemaTooNew {
        /// The database.
        database: String,
        /// The version recorded in the database.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// A read-only store found a database not yet migrated to this build's schema (or not
    /// a store yet). Open it once read-write to migrate it.
    #[error(
        "{database}: the store's schema is version {found}, this build needs {required}: \
         open it read-write once to migrate it"
    )]
    SchemaTooOld {
        /// The database.
        database: String,
        /// The version recorded in the database (0: none).
        found: i64,
        /// The version this build needs.
        required: i64,
    },
    /// A write on a read-only database (opened read-only, or a read-only file or server).
    /// Nothing was written.
    #[error("{database}: the database is read-only; nothing was written")]
    ReadOnly {
        /// The database.
        database: String,
        /// What the database said.
        #[source]
        source: Source,
    },
    /// The disk, or the database's size limit, is full. Nothing of the failed write was
    /// written; free space and retry.
    #[error("{database}: the disk or the database is full; nothing was written")]
    Full {
        /// The database.
        database: String,
        /// What the database said.
        #[source]
        source: Source,
    },
    /// The operating system failed a read or write of the database file. Nothing of a
    /// failed write was written.
    #[error("{database}: I/O error")]
    Io {
        /// The database.
        database: String,
        /// What failed.
        #[source]
        source: Source,
    },
    /// Any other database error: a lost connection, a lock timeout, a failed query. Nothing
    /// of a failed write was written; most are worth a retry.
    #[error("{database}: database error")]
    Database {
        /// The database.
        database: String,
        /// What the database or its driver said.
        #[source]
        source: Source,
    },
    /// A stored envelope is not valid JSON any more (edited by hand, damaged). The event
    /// stays in the store.
    #[error("the event stored at position {position} does not decode")]
    Decode {
        /// Where it is.
        position: Position,
        /// Why it does not decode.
        #[source]
        source: Arc<serde_json::Error>,
    },
    /// The event would not read back the same: a time outside years 0 to 9999 (RFC 3339
    /// has no room for it), or a NUL character in its type or partition key. Nothing was
    /// written.
    #[error("event {id} cannot be stored: {reason}")]
    Unstorable {
        /// The event's id.
        id: Uuid,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An envelope to append does not serialize as JSON. Nothing was appended.
    #[error("event {id} does not serialize as JSON; nothing was appended")]
    Encode {
        /// The event's id.
        id: Uuid,
        /// Why it does not serialize.
        #[source]
        source: Arc<serde_json::Error>,
    },
    /// The store does not implement this operation (a `Store` written before it existed):
    /// consumer groups on a shared store need `leases`, `save_checkpoint_fenced` and
    /// `claim_fenced`.
    #[error("this store does not support `{operation}`")]
    Unsupported {
        /// The `Store` method.
        operation: &'static str,
    },
    /// A timeline cursor that no store produced. Pass back a page's `next_cursor` unchanged.
    #[error("invalid timeline cursor {cursor:?}: pass back a page's `next_cursor` unchanged")]
    InvalidCursor {
        /// The cursor given.
        cursor: String,
    },
    /// The store's writer stopped (its thread or task ended, the runtime is shutting down).
    /// Open the store again.
    #[error("{database}: the store's writer stopped")]
    Closed {
        /// The database.
        database: String,
    },
}

/// A [`Source`] that is only a message.
#[cfg(feature = "sqlite")]
pub(crate) fn message(text: impl Into<String>) -> Source {
    Arc::from(Box::<dyn Error + Send + Sync>::from(text.into()))
}

/// A sqlx error in the caller's transaction (the sqlx outbox), naming the database.
#[cfg(any(feature = "sqlx-sqlite", feature = "sqlx-postgres"))]
pub(crate) fn sqlx_error(database: &str, error: sqlx::Error) -> StoreError {
    StoreError::Database {
        database: database.to_owned(),
        source: Arc::new(error),
    }
}
