//! The versioned schema of the stores' own tables.
//!
//! Each backend has an ordered list of migrations, version 1 first. A store applies the
//! ones a database lacks when it opens, in one transaction, and records the version in its
//! `event_store_meta` table (key `schema_version`). A database whose recorded version is
//! newer than the last one here was written by a newer build: opening it is
//! [`StoreError::SchemaTooNew`](super::StoreError::SchemaTooNew), and nothing is changed.
//!
//! Migrations are append-only: a released one is never edited, a change is a new one.

/// One step of a schema.
#[derive(Debug)]
pub(crate) struct Migration {
    /// The version the database has after this step.
    pub(crate) version: i64,
    /// The statements, run as one batch inside the migration transaction.
    pub(crate) sql: &'static str,
}

/// The SQLite schema.
#[cfg(feature = "sqlite")]
pub(crate) const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("sql/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("sql/sqlite/0002_leases.sql"),
    },
    Migration {
        version: 3,
        sql: include_str!("sql/sqlite/0003_keys.sql"),
    },
];

/// The PostgreSQL schema.
#[cfg(feature = "postgres")]
pub(crate) const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("sql/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("sql/postgres/0002_leases.sql"),
    },
    Migration {
        version: 3,
        sql: include_str!("sql/postgres/0003_keys.sql"),
    },
];

/// The version a database has once every migration in `list` is applied.
pub(crate) fn latest(list: &[Migration]) -> i64 {
    list.last().map_or(0, |migration| migration.version)
}

/// The migrations a database at `version` still needs.
pub(crate) fn pending(list: &[Migration], version: i64) -> impl Iterator<Item = &Migration> {
    list.iter()
        .filter(move |migration| migration.version > version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(list: &[Migration]) {
        for (index, migration) in list.iter().enumerate() {
            assert_eq!(migration.version, i64::try_from(index).unwrap() + 1);
        }
    }

    #[test]
    fn versions_count_up_from_one() {
        #[cfg(feature = "sqlite")]
        check(SQLITE);
        #[cfg(feature = "postgres")]
        check(POSTGRES);
        check(&[]);
    }
}
