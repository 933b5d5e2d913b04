//! Opening a database: is it ours, how old is its schema, and migrating it.
//!
//! A database file made by the store carries the SQLite `application_id` [`APPLICATION_ID`]
//! (`EVTS`); every store database has an `event_store_meta` table recording its schema
//! version. Everything is checked before anything is written, so a file that is not a
//! database, or another application's database, is left byte for byte as it was.

use super::SqliteOptions;
use super::error::map_error;
use crate::store::StoreError;
use crate::store::error::message;
use crate::store::migrations::{self, SQLITE};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

/// The `application_id` of a database file created by the store: `EVTS` in ASCII.
pub(super) const APPLICATION_ID: i32 = 0x4556_5453;

/// What the database holds before the store touches it.
struct Found {
    application_id: i32,
    /// Tables other than SQLite's own.
    tables: Vec<String>,
    /// The recorded schema version; None without an `event_store_meta` table.
    version: Option<i64>,
}

fn inspect(conn: &Connection, database: &str) -> Result<Found, StoreError> {
    let error = |e| map_error(database, e);
    // The first read of page 1: a file that is not SQLite fails here.
    let application_id: i32 = conn
        .query_row("PRAGMA application_id", [], |row| row.get(0))
        .map_err(error)?;
    let mut statement = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             ORDER BY name",
        )
        .map_err(error)?;
    let tables = statement
        .query_map([], |row| row.get::<_, String>(0))
        .and_then(Iterator::collect::<rusqlite::Result<Vec<String>>>)
        .map_err(error)?;
    let version = if tables.iter().any(|table| table == "event_store_meta") {
        read_version(conn).map_err(error)?
    } else {
        None
    };
    Ok(Found {
        application_id,
        tables,
        version,
    })
}

fn read_version(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.query_row(
        "SELECT value FROM event_store_meta WHERE key = 'schema_version'",
        [],
        |row| row.get(0),
    )
    .optional()
}

/// Refuses a database that is not the store's, or whose schema is too new; all without
/// writing anything.
fn check(found: &Found, database: &str, options: &SqliteOptions) -> Result<(), StoreError> {
    let foreign = |reason: String| StoreError::Foreign {
        database: database.to_owned(),
        reason,
    };
    if found.application_id != 0 && found.application_id != APPLICATION_ID {
        return Err(foreign(format!(
            "its application_id is {:#010x}, the store's is {APPLICATION_ID:#010x}",
            found.application_id
        )));
    }
    let ours = found.application_id == APPLICATION_ID || found.version.is_some();
    if !ours && !found.tables.is_empty() && !options.adopt {
        let mut names = found
            .tables
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if found.tables.len() > 3 {
            names.push_str(", ...");
        }
        return Err(foreign(format!(
            "it has tables of its own ({names}) and no event_store_meta table"
        )));
    }
    if found.application_id == APPLICATION_ID && found.version.is_none() {
        return Err(foreign(
            "it has the store's application_id but no schema version in event_store_meta"
                .to_owned(),
        ));
    }
    let latest = migrations::latest(SQLITE);
    match found.version {
        Some(found) if found > latest => Err(StoreError::SchemaTooNew {
            database: database.to_owned(),
            found,
            supported: latest,
        }),
        _ => Ok(()),
    }
}

/// Checks a database opened read-only: the store's, at exactly this build's version.
pub(super) fn check_read_only(
    conn: &Connection,
    database: &str,
    options: &SqliteOptions,
) -> Result<(), StoreError> {
    let found = inspect(conn, database)?;
    check(&found, database, options)?;
    let required = migrations::latest(SQLITE);
    match found.version {
        Some(version) if version == required => Ok(()),
        version => Err(StoreError::SchemaTooOld {
            database: database.to_owned(),
            found: version.unwrap_or(0),
            required,
        }),
    }
}

/// Checks the database, then (only if it is the store's or empty) switches a file to WAL
/// and applies the missing migrations in one transaction.
pub(super) fn prepare(
    conn: &mut Connection,
    database: &str,
    options: &SqliteOptions,
    file: bool,
) -> Result<(), StoreError> {
    let found = inspect(conn, database)?;
    check(&found, database, options)?;
    let error = |e| map_error(database, e);
    if file {
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Io {
                database: database.to_owned(),
                source: message(format!(
                    "the file system refused WAL mode (journal_mode is {mode})"
                )),
            });
        }
    }
    let latest = migrations::latest(SQLITE);
    if found.version == Some(latest) {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(error)?;
    // Another process may have migrated meanwhile: read again under the write lock.
    let has_meta: bool = tx
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'event_store_meta')",
            [],
            |row| row.get(0),
        )
        .map_err(error)?;
    let version = if has_meta {
        read_version(&tx).map_err(error)?.unwrap_or(0)
    } else {
        0
    };
    if version > latest {
        return Err(StoreError::SchemaTooNew {
            database: database.to_owned(),
            found: version,
            supported: latest,
        });
    }
    for migration in migrations::pending(SQLITE, version) {
        tx.execute_batch(migration.sql).map_err(error)?;
        tx.execute(
            "UPDATE event_store_meta SET value = ?1 WHERE key = 'schema_version'",
            [migration.version],
        )
        .map_err(error)?;
    }
    if found.tables.is_empty() && found.application_id == 0 {
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(error)?;
    }
    tx.commit().map_err(error)
}
