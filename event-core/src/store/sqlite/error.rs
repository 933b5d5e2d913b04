//! SQLite errors as [`StoreError`]s.

use crate::store::StoreError;
use rusqlite::ErrorCode;
use std::sync::Arc;

/// Sorts an SQLite error into the store's kinds, naming the database.
pub(super) fn map_error(database: &str, error: rusqlite::Error) -> StoreError {
    let database = database.to_owned();
    let code = error.sqlite_error_code();
    let source = Arc::new(error);
    match code {
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
            StoreError::Corrupt { database, source }
        }
        Some(ErrorCode::ReadOnly) => StoreError::ReadOnly { database, source },
        Some(ErrorCode::DiskFull) => StoreError::Full { database, source },
        Some(ErrorCode::SystemIoFailure | ErrorCode::CannotOpen) => {
            StoreError::Io { database, source }
        }
        _ => StoreError::Database { database, source },
    }
}
