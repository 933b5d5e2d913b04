//! The store's statements, on any connection: the writer's, a reader's, or the caller's own
//! transaction (transactional outbox).

use crate::store::{Dialect, Encoded, Position, SqlValue, from_sql, to_sql};
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

/// The last position given out: the newest event, or the newest pruned one.
pub(super) const HEAD: &str = "SELECT MAX(COALESCE((SELECT MAX(position) FROM event_store_events), 0), \
     (SELECT value FROM event_store_meta WHERE key = 'pruned_through'))";

/// Stores one event at `?1` unless its id is stored already (no row changed then).
pub(super) const INSERT_EVENT: &str = "INSERT INTO event_store_events \
     (position, id, event_type, partition_key, appended_at, envelope) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO NOTHING";

/// The position of a stored id.
pub(super) const POSITION_OF: &str = "SELECT position FROM event_store_events WHERE id = ?1";

/// Claims an event for a subscription unless claimed already (no row changed then).
pub(super) const CLAIM: &str = "INSERT INTO event_store_inbox (subscription, event_id, claimed_at) \
     VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING";

/// Inserts the events that are not stored yet, in order, after the current head; returns
/// every event's position and how many were new.
///
/// Run inside a write transaction: SQLite has one writer at a time, so the head read here
/// stays the head until the commit, and positions follow commit order.
pub(crate) fn insert_events(
    conn: &Connection,
    events: &[Encoded],
    appended_at: i64,
) -> rusqlite::Result<(Vec<Position>, u64)> {
    let mut head: i64 = conn.prepare_cached(HEAD)?.query_row([], |row| row.get(0))?;
    let mut insert = conn.prepare_cached(INSERT_EVENT)?;
    let mut existing = conn.prepare_cached(POSITION_OF)?;
    let mut positions = Vec::with_capacity(events.len());
    let mut new = 0;
    for event in events {
        let id = event.id.to_string();
        let inserted = insert.execute(params![
            head + 1,
            id,
            event.event_type,
            event.partition_key,
            appended_at,
            event.json,
        ])?;
        if inserted == 1 {
            head += 1;
            new += 1;
            positions.push(from_sql(head));
        } else {
            positions.push(from_sql(existing.query_row([&id], |row| row.get(0))?));
        }
    }
    Ok((positions, new))
}

/// The last position given out.
pub(crate) fn head(conn: &Connection) -> rusqlite::Result<Position> {
    conn.prepare_cached(HEAD)?
        .query_row([], |row| row.get(0))
        .map(from_sql)
}

/// Up to `limit` stored events after `after`: positions and canonical JSON.
pub(crate) fn read(
    conn: &Connection,
    after: Position,
    limit: usize,
) -> rusqlite::Result<Vec<(Position, String)>> {
    let mut statement = conn.prepare_cached(
        "SELECT position, envelope FROM event_store_events WHERE position > ?1 \
         ORDER BY position LIMIT ?2",
    )?;
    let rows = statement.query_map(params![to_sql(after), limit_sql(limit)], |row| {
        Ok((from_sql(row.get(0)?), row.get(1)?))
    })?;
    rows.collect()
}

/// One timeline page's rows (up to `limit`), oldest or newest first.
pub(crate) fn timeline(
    conn: &Connection,
    partition_key: &str,
    type_prefix: Option<&str>,
    tenant_id: Option<&str>,
    cursor: Option<Position>,
    limit: usize,
    newest_first: bool,
) -> rusqlite::Result<Vec<(Position, String)>> {
    let sql = if newest_first {
        "SELECT position, envelope FROM event_store_events \
         WHERE partition_key = ?1 AND position < ?2 \
         AND (?3 IS NULL OR substr(event_type, 1, length(?3)) = ?3) \
         AND (?5 IS NULL OR json_extract(envelope, '$.meta.tenant_id') = ?5) \
         ORDER BY position DESC LIMIT ?4"
    } else {
        "SELECT position, envelope FROM event_store_events \
         WHERE partition_key = ?1 AND position > ?2 \
         AND (?3 IS NULL OR substr(event_type, 1, length(?3)) = ?3) \
         AND (?5 IS NULL OR json_extract(envelope, '$.meta.tenant_id') = ?5) \
         ORDER BY position LIMIT ?4"
    };
    let bound = match (cursor, newest_first) {
        (Some(position), _) => to_sql(position),
        (None, true) => i64::MAX,
        (None, false) => 0,
    };
    let mut statement = conn.prepare_cached(sql)?;
    let rows = statement.query_map(
        params![
            partition_key,
            bound,
            type_prefix,
            limit_sql(limit),
            tenant_id
        ],
        |row| Ok((from_sql(row.get(0)?), row.get(1)?)),
    )?;
    rows.collect()
}

/// How the search (`Store::query`) is spelled in SQLite.
pub(crate) const DIALECT: Dialect = Dialect {
    placeholder: |n| format!("?{n}"),
    correlation_id: "json_extract(envelope, '$.correlation_id')",
    tenant_id: "json_extract(envelope, '$.meta.tenant_id')",
    envelope: "envelope",
    time: |time| SqlValue::Int(time.timestamp_millis()),
    id: |id| SqlValue::Text(id.to_string()),
};

/// The rows of a search built by `EventQuery::to_sql`.
pub(crate) fn search(
    conn: &Connection,
    sql: &str,
    values: &[SqlValue],
) -> rusqlite::Result<Vec<(Position, String)>> {
    let values: Vec<rusqlite::types::Value> = values
        .iter()
        .map(|value| match value {
            SqlValue::Text(text) => rusqlite::types::Value::Text(text.clone()),
            SqlValue::Int(int) => rusqlite::types::Value::Integer(*int),
            SqlValue::Id(id) => rusqlite::types::Value::Text(id.to_string()),
            SqlValue::Time(time) => rusqlite::types::Value::Integer(time.timestamp_millis()),
        })
        .collect();
    let mut statement = conn.prepare(sql)?;
    let rows = statement.query_map(rusqlite::params_from_iter(values), |row| {
        Ok((from_sql(row.get(0)?), row.get(1)?))
    })?;
    rows.collect()
}

/// The subscription's checkpoint, 0 when it has none.
pub(crate) fn checkpoint(conn: &Connection, subscription: &str) -> rusqlite::Result<Position> {
    let position: Option<i64> = conn
        .prepare_cached("SELECT position FROM event_store_checkpoints WHERE subscription = ?1")?
        .query_row([subscription], |row| row.get(0))
        .optional()?;
    Ok(position.map_or(0, from_sql))
}

/// Every checkpoint, by subscription.
pub(crate) fn checkpoints(conn: &Connection) -> rusqlite::Result<Vec<(String, Position)>> {
    let mut statement = conn.prepare_cached(
        "SELECT subscription, position FROM event_store_checkpoints ORDER BY subscription",
    )?;
    let rows = statement.query_map([], |row| Ok((row.get(0)?, from_sql(row.get(1)?))))?;
    rows.collect()
}

/// Moves a checkpoint forward only (`forward_only`), or anywhere.
pub(crate) fn save_checkpoint(
    conn: &Connection,
    subscription: &str,
    position: Position,
    forward_only: bool,
) -> rusqlite::Result<()> {
    let sql = if forward_only {
        "INSERT INTO event_store_checkpoints (subscription, position) VALUES (?1, ?2) \
         ON CONFLICT (subscription) DO UPDATE SET position = MAX(position, excluded.position)"
    } else {
        "INSERT INTO event_store_checkpoints (subscription, position) VALUES (?1, ?2) \
         ON CONFLICT (subscription) DO UPDATE SET position = excluded.position"
    };
    conn.prepare_cached(sql)?
        .execute(params![subscription, to_sql(position)])
        .map(drop)
}

/// Deletes a subscription's checkpoint and inbox.
pub(crate) fn remove_subscription(conn: &Connection, subscription: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM event_store_checkpoints WHERE subscription = ?1")?
        .execute([subscription])?;
    conn.prepare_cached("DELETE FROM event_store_inbox WHERE subscription = ?1")?
        .execute([subscription])?;
    Ok(())
}

/// Claims an event in a subscription's inbox: true when this call did.
pub(crate) fn claim(
    conn: &Connection,
    subscription: &str,
    event_id: Uuid,
    claimed_at: i64,
) -> rusqlite::Result<bool> {
    let inserted = conn.prepare_cached(CLAIM)?.execute(params![
        subscription,
        event_id.to_string(),
        claimed_at
    ])?;
    Ok(inserted == 1)
}

/// Whether a subscription claimed an event.
pub(crate) fn is_claimed(
    conn: &Connection,
    subscription: &str,
    event_id: Uuid,
) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM event_store_inbox WHERE subscription = ?1 AND event_id = ?2)",
    )?
    .query_row(params![subscription, event_id.to_string()], |row| {
        row.get(0)
    })
}

/// A dead letter as stored.
pub(crate) struct DeadLetterRow {
    pub(crate) id: i64,
    pub(crate) subscription: String,
    pub(crate) envelope: String,
    pub(crate) last_error: String,
    pub(crate) attempts: i64,
    pub(crate) failed_at: i64,
}

/// Stores a dead letter (its `id` is ignored) and returns its id.
pub(crate) fn put_dead_letter(conn: &Connection, row: &DeadLetterRow) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO event_store_dead_letters \
         (subscription, envelope, last_error, attempts, failed_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        row.subscription,
        row.envelope,
        row.last_error,
        row.attempts,
        row.failed_at
    ])?;
    Ok(conn.last_insert_rowid())
}

/// The dead letters, oldest first, of one subscription or all.
pub(crate) fn dead_letters(
    conn: &Connection,
    subscription: Option<&str>,
) -> rusqlite::Result<Vec<DeadLetterRow>> {
    let mut statement = conn.prepare_cached(
        "SELECT id, subscription, envelope, last_error, attempts, failed_at \
         FROM event_store_dead_letters WHERE ?1 IS NULL OR subscription = ?1 ORDER BY id",
    )?;
    let rows = statement.query_map([subscription], |row| {
        Ok(DeadLetterRow {
            id: row.get(0)?,
            subscription: row.get(1)?,
            envelope: row.get(2)?,
            last_error: row.get(3)?,
            attempts: row.get(4)?,
            failed_at: row.get(5)?,
        })
    })?;
    rows.collect()
}

/// Removes a dead letter: true when there was one.
pub(crate) fn remove_dead_letter(conn: &Connection, id: i64) -> rusqlite::Result<bool> {
    conn.prepare_cached("DELETE FROM event_store_dead_letters WHERE id = ?1")?
        .execute([id])
        .map(|deleted| deleted == 1)
}

/// Deletes the events appended before `older_than` (Unix milliseconds) that every
/// subscription with a checkpoint has passed, and their inbox rows.
pub(crate) fn prune(conn: &Connection, older_than: i64) -> rusqlite::Result<usize> {
    let cutoff: Option<i64> = conn
        .prepare_cached("SELECT MIN(position) FROM event_store_checkpoints")?
        .query_row([], |row| row.get(0))?;
    let Some(cutoff) = cutoff else {
        return Ok(0);
    };
    conn.prepare_cached(
        "UPDATE event_store_meta SET value = MAX(value, COALESCE((SELECT MAX(position) \
         FROM event_store_events WHERE position <= ?1 AND appended_at < ?2), 0)) \
         WHERE key = 'pruned_through'",
    )?
    .execute(params![cutoff, older_than])?;
    conn.prepare_cached(
        "DELETE FROM event_store_inbox WHERE event_id IN (SELECT id FROM event_store_events \
         WHERE position <= ?1 AND appended_at < ?2)",
    )?
    .execute(params![cutoff, older_than])?;
    conn.prepare_cached("DELETE FROM event_store_events WHERE position <= ?1 AND appended_at < ?2")?
        .execute(params![cutoff, older_than])
}

/// Takes or renews the lease `name` for `holder` at `now` until `expires_at` (both Unix
/// milliseconds): its token when `holder` holds it now, None while another holder's lease
/// runs.
///
/// One statement, in the writer's transaction (SQLite has one writer at a time, also among
/// processes): a new lease starts at token 1; the holder renewing a lease that still runs
/// keeps its token; a lease taken anew (by another holder, or after it ran out or was
/// released) gets the next token.
pub(crate) fn lease(
    conn: &Connection,
    name: &str,
    holder: &str,
    now: i64,
    expires_at: i64,
) -> rusqlite::Result<Option<u64>> {
    let token: Option<i64> = conn
        .prepare_cached(
            "INSERT INTO event_store_leases (name, holder, token, expires_at) \
             VALUES (?1, ?2, 1, ?4) \
             ON CONFLICT (name) DO UPDATE SET \
             token = CASE WHEN holder = excluded.holder AND expires_at > ?3 \
             THEN token ELSE token + 1 END, \
             holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE holder = excluded.holder OR expires_at <= ?3 \
             RETURNING token",
        )?
        .query_row(params![name, holder, now, expires_at], |row| row.get(0))
        .optional()?;
    Ok(token.map(from_sql))
}

/// Ends the lease `name` if `holder` holds it: its row stays, with its token, and an
/// expiry in the past (the epoch, in the past on any process's clock).
pub(crate) fn release_lease(conn: &Connection, name: &str, holder: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE event_store_leases SET expires_at = 0 \
         WHERE name = ?1 AND holder = ?2 AND expires_at > 0",
    )?
    .execute(params![name, holder])
    .map(drop)
}

/// The leases whose name starts with `prefix` that run at `now`: name, holder, token.
pub(crate) fn leases(
    conn: &Connection,
    prefix: &str,
    now: i64,
) -> rusqlite::Result<Vec<(String, String, u64)>> {
    conn.prepare_cached(
        "SELECT name, holder, token FROM event_store_leases \
         WHERE substr(name, 1, length(?1)) = ?1 AND expires_at > ?2 ORDER BY name",
    )?
    .query_map(params![prefix, now], |row| {
        Ok((row.get(0)?, row.get(1)?, from_sql(row.get(2)?)))
    })?
    .collect()
}

/// Moves a checkpoint forward only while the fence's holder holds its lease with its token
/// at `now`: true when written. One statement: the check and the write are atomic.
pub(crate) fn save_checkpoint_fenced(
    conn: &Connection,
    subscription: &str,
    position: Position,
    fence: &crate::store::Fence,
    now: i64,
) -> rusqlite::Result<bool> {
    let written = conn
        .prepare_cached(
            "INSERT INTO event_store_checkpoints (subscription, position) \
             SELECT ?1, ?2 WHERE EXISTS (SELECT 1 FROM event_store_leases \
             WHERE name = ?3 AND holder = ?4 AND token = ?5 AND expires_at > ?6) \
             ON CONFLICT (subscription) DO UPDATE SET position = MAX(position, excluded.position)",
        )?
        .execute(params![
            subscription,
            to_sql(position),
            fence.lease,
            fence.holder,
            to_sql(fence.token),
            now
        ])?;
    Ok(written == 1)
}

/// Whether the fence's holder holds its lease with its token at `now`.
fn fence_holds(conn: &Connection, fence: &crate::store::Fence, now: i64) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM event_store_leases \
         WHERE name = ?1 AND holder = ?2 AND token = ?3 AND expires_at > ?4)",
    )?
    .query_row(
        params![fence.lease, fence.holder, to_sql(fence.token), now],
        |row| row.get(0),
    )
}

/// Claims an event only while the fence holds at `now`: `None` when it does not. Run by
/// the writer, inside its transaction: the check and the claim are atomic.
pub(crate) fn claim_fenced(
    conn: &Connection,
    subscription: &str,
    event_id: Uuid,
    fence: &crate::store::Fence,
    now: i64,
) -> rusqlite::Result<Option<bool>> {
    if !fence_holds(conn, fence, now)? {
        return Ok(None);
    }
    claim(conn, subscription, event_id, now).map(Some)
}

fn limit_sql(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}
