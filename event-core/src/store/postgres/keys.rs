//! The PostgreSQL store as a [`KeyStore`]: the `event_store_keys` table.

use super::PostgresStore;
use crate::privacy::{KeyId, KeyStore, StoredKey};
use crate::store::StoreError;
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use tokio_postgres::Row;
use uuid::Uuid;

/// A subject's newest key: by `created_at`, then `id` (the subject index holds both).
const CURRENT_KEY: &str = "SELECT id, subject, wrapped, created_at FROM event_store_keys \
     WHERE subject = $1 ORDER BY created_at DESC, id DESC LIMIT 1";

const KEY: &str = "SELECT id, subject, wrapped, created_at FROM event_store_keys WHERE id = $1";

const INSERT_KEY: &str =
    "INSERT INTO event_store_keys (id, subject, wrapped, created_at) VALUES ($1, $2, $3, $4)";

const FORGET: &str = "DELETE FROM event_store_keys WHERE subject = $1";

/// Not allowed inside a transaction block: sent on its own, as a simple query.
const VACUUM: &str = "VACUUM event_store_keys";

impl PostgresStore {
    fn stored_key(&self, row: &Row) -> Result<StoredKey, StoreError> {
        let error = |e| self.error(e);
        let id: Uuid = row.try_get(0).map_err(error)?;
        let created_at: DateTime<Utc> = row.try_get(3).map_err(error)?;
        Ok(StoredKey::new(
            KeyId::from_bytes(id.into_bytes()),
            row.try_get(1).map_err(error)?,
            row.try_get(2).map_err(error)?,
            created_at,
        ))
    }
}

/// The PostgreSQL store keeps its data keys in its own table, `event_store_keys`, in the same
/// database.
///
/// [`forget`](KeyStore::forget) deletes the subject's rows, then runs `VACUUM event_store_keys`
/// on the store's shared connection (outside any transaction), which returns their space
/// to the table's free space at once instead of at autovacuum's next pass. PostgreSQL
/// cannot promise more than that, so neither does this store; **bytes of forgotten keys
/// may stay on the server's disk**:
///
/// - in the table's heap files: a deleted row is a dead tuple until vacuumed; a vacuum
///   cannot remove the ones an older snapshot may still see (any transaction of the
///   database open since before the delete, a replication slot, `hot_standby_feedback`)
///   and skips pages it cannot lock at once, and it marks their space free without
///   overwriting it: the bytes go once new rows reuse it. A role that may not vacuum the
///   table (not its owner) gets a warning from the server, and autovacuum's pass;
/// - in the write-ahead log, which recorded each key when it was inserted, until its
///   segments are recycled and overwritten; and in WAL archives, base backups and
///   replicas, out of the store's reach.
///
/// What may remain is wrapped by the master key, never in plain text: it opens nothing
/// without the master key, so keep that out of the database and its backups.
///
/// Reads and writes of keys run on the store's shared connection. Times keep
/// PostgreSQL's microseconds: `created_at` reads back truncated to them.
impl KeyStore for PostgresStore {
    fn current_key<'a>(
        &'a self,
        subject: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredKey>, StoreError>> {
        Box::pin(async move {
            let rows = self.query(CURRENT_KEY, &[&subject]).await?;
            rows.first().map(|row| self.stored_key(row)).transpose()
        })
    }

    fn key(&self, id: KeyId) -> BoxFuture<'_, Result<Option<StoredKey>, StoreError>> {
        Box::pin(async move {
            let rows = self.query(KEY, &[&id.as_uuid()]).await?;
            rows.first().map(|row| self.stored_key(row)).transpose()
        })
    }

    fn insert_key(&self, key: StoredKey) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            self.write(
                INSERT_KEY,
                &[
                    &key.id.as_uuid(),
                    &key.subject,
                    &key.wrapped,
                    &key.created_at,
                ],
            )
            .await
            .map(drop)
        })
    }

    fn forget<'a>(&'a self, subject: &'a str) -> BoxFuture<'a, Result<usize, StoreError>> {
        Box::pin(async move {
            let forgotten = self.write(FORGET, &[&subject]).await?;
            // The shared connection never holds a transaction open: its statements
            // commit on their own.
            self.client()
                .await?
                .batch_execute(VACUUM)
                .await
                .map_err(|e| self.error(e))?;
            Ok(usize::try_from(forgotten).unwrap_or(usize::MAX))
        })
    }
}
