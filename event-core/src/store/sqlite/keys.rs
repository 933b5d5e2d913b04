//! The SQLite store as a [`KeyStore`]: the `event_store_keys` table, and a `forget` that leaves
//! nothing of the keys in the database file or its WAL.

use super::SqliteStore;
use super::error::map_error;
use crate::privacy::{KeyId, KeyStore, StoredKey};
use crate::store::StoreError;
use crate::store::error::message;
use chrono::DateTime;
use futures_util::future::BoxFuture;
use rusqlite::{Connection, OptionalExtension, Row, params};

/// A subject's newest key: by `created_at`, then `id` (the subject index holds both).
const CURRENT_KEY: &str = "SELECT id, subject, wrapped, created_at FROM event_store_keys \
     WHERE subject = ?1 ORDER BY created_at DESC, id DESC LIMIT 1";

const KEY: &str = "SELECT id, subject, wrapped, created_at FROM event_store_keys WHERE id = ?1";

const INSERT_KEY: &str =
    "INSERT INTO event_store_keys (id, subject, wrapped, created_at) VALUES (?1, ?2, ?3, ?4)";

const FORGET: &str = "DELETE FROM event_store_keys WHERE subject = ?1";

/// How many times `forget` tries the `TRUNCATE` checkpoint; each waits up to the busy
/// timeout for the readers and writers in its way, holding up the writer thread meanwhile.
const CHECKPOINT_ATTEMPTS: u32 = 2;

/// A row of `event_store_keys` as a key; an id that is not 16 bytes is a damaged row.
fn stored_key(row: &Row<'_>) -> rusqlite::Result<StoredKey> {
    let id: Vec<u8> = row.get(0)?;
    let id: [u8; 16] = id.try_into().map_err(|id: Vec<u8>| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Blob,
            format!("a key id of {} bytes, not 16", id.len()).into(),
        )
    })?;
    let created_at: i64 = row.get(3)?;
    Ok(StoredKey::new(
        KeyId::from_bytes(id),
        row.get(1)?,
        row.get(2)?,
        DateTime::from_timestamp_millis(created_at).unwrap_or_default(),
    ))
}

/// `PRAGMA wal_checkpoint(TRUNCATE)`: copies every frame of the WAL into the database file,
/// waits (the busy handler) for every reader to read from the file alone, then truncates the
/// WAL to zero bytes. `Ok(false)` when a reader or writer was still in the way (`busy`): the
/// WAL may then still hold frames.
fn truncate_wal(conn: &Connection) -> rusqlite::Result<bool> {
    let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))?;
    Ok(busy == 0)
}

/// The SQLite store keeps its data keys in its own table, `event_store_keys`, in the same file.
///
/// [`forget`](KeyStore::forget) leaves nothing of the subject's keys in the store's files:
///
/// - The writer connection runs with `PRAGMA secure_delete = ON`, all the time: SQLite
///   overwrites with zeros what it deletes, the space that cells leave behind when a page
///   is rebalanced, and pages it frees. Always, not just while forgetting, because keys
///   move between pages whenever an insert rebalances the table's b-tree: the copies left
///   then would outlive a later `forget` otherwise. (What it costs: a delete that frees
///   whole pages, such as a large [`prune`](crate::store::Store::prune), writes them out as
///   zeros; pruned events are gone from the file too.)
/// - The delete commits into the WAL, whose earlier frames still hold the pages as they
///   were, with the keys. Once it committed, `forget` runs `PRAGMA
///   wal_checkpoint(TRUNCATE)`: the newest version of every page (the zeroed one) is copied
///   into the database file, and the WAL is truncated to zero bytes. When readers (another
///   process in a long read transaction, say) keep the checkpoint from completing, it is
///   tried once more, each try waiting up to the store's busy timeout; after that
///   `forget` fails with [`StoreError::Database`] although the keys are deleted, since
///   their bytes may still be in the WAL: call it again (it then finds 0 keys, and
///   checkpoints again).
///
/// What is out of the store's reach: copies of the file (backups), and what the file
/// system or the disk keep of blocks they once held (an SSD remaps writes). A store in
/// memory has no files: `forget` deletes, with nothing to checkpoint.
///
/// Keys are written by the writer thread, read by the reader connections. Only the
/// store's own writer zeroes what it deletes: leave the `event_store_keys` table to it (not to a
/// [`connection`](SqliteStore::connection) of your own). Times are kept
/// in whole milliseconds: `created_at` reads back truncated to them, and two keys of a
/// subject made within the same millisecond are told apart by their ids alone.
impl KeyStore for SqliteStore {
    fn current_key<'a>(
        &'a self,
        subject: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredKey>, StoreError>> {
        let subject = subject.to_owned();
        Box::pin(self.read(move |conn| {
            conn.prepare_cached(CURRENT_KEY)?
                .query_row([&subject], stored_key)
                .optional()
        }))
    }

    fn key(&self, id: KeyId) -> BoxFuture<'_, Result<Option<StoredKey>, StoreError>> {
        Box::pin(self.read(move |conn| {
            conn.prepare_cached(KEY)?
                .query_row([id.to_bytes()], stored_key)
                .optional()
        }))
    }

    fn insert_key(&self, key: StoredKey) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.write(move |conn| {
            conn.prepare_cached(INSERT_KEY)?
                .execute(params![
                    key.id.to_bytes(),
                    key.subject,
                    key.wrapped,
                    key.created_at.timestamp_millis(),
                ])
                .map(drop)
        }))
    }

    fn forget<'a>(&'a self, subject: &'a str) -> BoxFuture<'a, Result<usize, StoreError>> {
        let subject = subject.to_owned();
        Box::pin(async move {
            let forgotten = self
                .write(move |conn| conn.prepare_cached(FORGET)?.execute([&subject]))
                .await?;
            if self.inner.path.is_none() {
                return Ok(forgotten);
            }
            // On the writer's connection, between its transactions: the delete is
            // committed, and no transaction of the writer is in the way.
            let database = std::sync::Arc::clone(&self.inner.database);
            self.inner
                .writer
                .read(move |conn| {
                    for _ in 0..CHECKPOINT_ATTEMPTS {
                        if truncate_wal(conn).map_err(|e| map_error(&database, e))? {
                            return Ok(forgotten);
                        }
                    }
                    Err(StoreError::Database {
                        database: database.to_string(),
                        source: message(format!(
                            "the {forgotten} forgotten keys are deleted, but readers kept \
                             the WAL from being checkpointed and truncated, so it may still \
                             hold them: call forget again"
                        )),
                    })
                })
                .await
        })
    }
}
