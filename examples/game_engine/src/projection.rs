//! The generation-tracker's projection: each image batch's latest state, and a row per event
//! applied, in tables beside the event store's own (`game_batches`, `game_batch_events`).
//!
//! [`apply`] runs inside the caller's transaction, the one that also claims the event in the
//! tracker's inbox, so an event's effect and its claim commit together: see
//! [`crate::subscribers`].

use crate::subscribers::GenerationEvents;
use event_core::EventUnion;
use event_core::store::rusqlite::{self, Connection, Transaction, params};
use std::collections::BTreeMap;

/// The tables, created if missing.
const SCHEMA: &str = include_str!("projection.sql");

/// Creates the projection's tables if they are missing.
///
/// # Errors
///
/// A database error.
pub fn create(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)
}

/// A batch as the projection holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The batch.
    pub batch_id: String,
    /// `queued`, `generating`, `completed` or `failed`.
    pub status: String,
    /// Percent done.
    pub progress: u8,
    /// How many assets it produced, once completed.
    pub asset_count: Option<u32>,
    /// Why it failed, once failed.
    pub error: Option<String>,
    /// How many events were applied to it.
    pub events: u64,
}

/// Applies one event of a batch, recording its id in `game_batch_events`.
///
/// Not idempotent on its own: call it only after claiming the event in the same
/// transaction.
///
/// # Errors
///
/// A database error; the caller's transaction should then be rolled back.
pub fn apply(
    tx: &Transaction<'_>,
    event_id: &str,
    event: &GenerationEvents,
    now_millis: i64,
) -> rusqlite::Result<()> {
    let batch_id = match event {
        GenerationEvents::Queued(queued) => {
            tx.execute(
                "INSERT INTO game_batches
                     (batch_id, entity_type, entity_id, asset_type, status, progress, events)
                 VALUES (?1, ?2, ?3, ?4, 'queued', 0, 0)
                 ON CONFLICT (batch_id) DO NOTHING",
                params![
                    queued.batch_id,
                    queued.entity_type,
                    queued.entity_id,
                    queued.asset_type
                ],
            )?;
            &queued.batch_id
        }
        GenerationEvents::Progress(progress) => {
            tx.execute(
                "UPDATE game_batches SET status = 'generating', progress = ?2 WHERE batch_id = ?1",
                params![progress.batch_id, progress.progress],
            )?;
            &progress.batch_id
        }
        GenerationEvents::Completed(completed) => {
            tx.execute(
                "UPDATE game_batches SET status = 'completed', progress = 100, asset_count = ?2
                 WHERE batch_id = ?1",
                params![completed.batch_id, completed.asset_count],
            )?;
            &completed.batch_id
        }
        GenerationEvents::Failed(failed) => {
            tx.execute(
                "UPDATE game_batches SET status = 'failed', error = ?2 WHERE batch_id = ?1",
                params![failed.batch_id, failed.error],
            )?;
            &failed.batch_id
        }
    };
    tx.execute(
        "UPDATE game_batches SET events = events + 1 WHERE batch_id = ?1",
        params![batch_id],
    )?;
    tx.execute(
        "INSERT INTO game_batch_events (event_id, batch_id, event_type, applied_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![event_id, batch_id, event.event().0, now_millis],
    )?;
    Ok(())
}

/// Every batch, by id.
///
/// # Errors
///
/// A database error.
pub fn batches(conn: &Connection) -> rusqlite::Result<Vec<Batch>> {
    let mut statement = conn.prepare(
        "SELECT batch_id, status, progress, asset_count, error, events
         FROM game_batches ORDER BY batch_id",
    )?;
    let rows = statement.query_map([], |row| {
        Ok(Batch {
            batch_id: row.get(0)?,
            status: row.get(1)?,
            progress: row.get(2)?,
            asset_count: row.get(3)?,
            error: row.get(4)?,
            events: count(row.get(5)?),
        })
    })?;
    rows.collect()
}

/// How many times each event id was applied.
///
/// # Errors
///
/// A database error.
pub fn applied(conn: &Connection) -> rusqlite::Result<BTreeMap<String, u64>> {
    let mut statement =
        conn.prepare("SELECT event_id, count(*) FROM game_batch_events GROUP BY event_id")?;
    let rows = statement.query_map([], |row| Ok((row.get(0)?, count(row.get(1)?))))?;
    rows.collect()
}

/// How many rows `game_batch_events` holds.
///
/// # Errors
///
/// A database error.
pub fn rows(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT count(*) FROM game_batch_events", [], |row| {
        row.get(0).map(count)
    })
}

/// A count as SQLite returns it (a signed integer, never negative).
fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}
