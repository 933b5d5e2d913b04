//! What only the SQLite store has: checks at open (a file that is not SQLite, another
//! application's database), read-only databases and a full disk, with nothing half-written.

use chrono::{SubsecRound, Utc};
use event_core::store::rusqlite::Connection;
use event_core::store::{Position, SqliteOptions, SqliteStore, Store, StoreError};
use event_core::{Envelope, Meta, PARTITION_KEY, RawEnvelope};
use serde_json::value::RawValue;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use uuid::Uuid;

fn event(n: u32, payload_bytes: usize) -> RawEnvelope {
    let mut meta = Meta::new();
    meta.insert(PARTITION_KEY.to_owned(), "o-1".into());
    Envelope {
        id: Uuid::now_v7(),
        event_type: "order.created".into(),
        version: 1,
        occurred_at: Utc::now().trunc_subsecs(3),
        source: None,
        correlation_id: None,
        causation_id: None,
        trace_id: None,
        payload: RawValue::from_string(format!(
            r#"{{"n":{n},"padding":"{}"}}"#,
            "x".repeat(payload_bytes)
        ))
        .unwrap(),
        meta,
    }
}

fn files_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let bytes: Vec<u8> = (0..8192u32)
        .map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()[2])
        .collect();
    std::fs::write(&path, &bytes).unwrap();

    let error = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains(&path.display().to_string()),
        "names the file: {message}"
    );
    assert!(message.contains("not a database"), "{message}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the file is unchanged"
    );
    assert_eq!(
        files_in(dir.path()),
        BTreeSet::from(["events.db".to_owned()])
    );
}

#[test]
fn another_applications_database_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();

    // Tables of its own, no store tables.
    let path = dir.path().join("app.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers VALUES (1, 'a');")
        .unwrap();
    drop(conn);
    let bytes = std::fs::read(&path).unwrap();
    let error = SqliteStore::open(&path).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, StoreError::Foreign { .. }), "{error:?}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("customers"), "says why: {message}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the file is unchanged"
    );

    // Another application id, even without tables.
    let other = dir.path().join("other.db");
    let conn = Connection::open(&other).unwrap();
    conn.pragma_update(None, "application_id", 42).unwrap();
    drop(conn);
    let bytes = std::fs::read(&other).unwrap();
    let error = SqliteStore::open(&other).unwrap_err();
    assert!(matches!(error, StoreError::Foreign { .. }), "{error:?}");
    assert!(error.to_string().contains("0x0000002a"), "{error}");
    assert_eq!(std::fs::read(&other).unwrap(), bytes);
}

#[tokio::test]
async fn adopting_an_application_database_adds_the_store_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
        .unwrap();
    drop(conn);
    let store = SqliteOptions::new().adopt(true).open(&path).unwrap();
    store.append(vec![event(1, 10)]).await.unwrap();
    drop(store);
    // Once adopted, it opens like any store database, its own tables intact.
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.head().await.unwrap(), 1);
    let conn = store.connection().unwrap();
    let customers: i64 = conn
        .query_row("SELECT count(*) FROM customers", [], |r| r.get(0))
        .unwrap();
    assert_eq!(customers, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_database_refuses_appends_and_keeps_its_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteStore::open(&path).unwrap();
    let first = vec![event(1, 10), event(2, 10), event(3, 10)];
    store.append(first.clone()).await.unwrap();

    let reader = SqliteOptions::new().read_only(true).open(&path).unwrap();
    assert_eq!(reader.head().await.unwrap(), 3);
    let error = reader.append(vec![event(4, 10)]).await.unwrap_err();
    assert!(matches!(error, StoreError::ReadOnly { .. }), "{error:?}");
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
    let error = reader.save_checkpoint("billing", 1).await.unwrap_err();
    assert!(matches!(error, StoreError::ReadOnly { .. }), "{error:?}");
    assert_eq!(reader.stats().appends, 0);

    // Exactly the earlier events; the read-write store goes on.
    let stored = store.read(0, 100).await.unwrap();
    assert_eq!(stored.len(), 3);
    assert_eq!(store.checkpoint("billing").await.unwrap(), 0);
    assert_eq!(store.append(vec![event(5, 10)]).await.unwrap(), [4]);
    assert_eq!(
        reader.head().await.unwrap(),
        4,
        "the reader sees new commits"
    );

    // A file that is not a store yet cannot be opened read-only.
    let empty = dir.path().join("empty.db");
    Connection::open(&empty).unwrap();
    let error = SqliteOptions::new()
        .read_only(true)
        .open(&empty)
        .unwrap_err();
    assert!(
        matches!(error, StoreError::SchemaTooOld { found: 0, .. }),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_appends_with_nothing_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    // Fresh store: its pages, then a limit a few dozen pages above them.
    let pages: i64 = {
        let store = SqliteStore::open(&path).unwrap();
        drop(store);
        Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap()
    };
    let store = Arc::new(
        SqliteOptions::new()
            .pragma("max_page_count", (pages + 40).to_string())
            .open(&path)
            .unwrap(),
    );

    // Concurrent appends of 3 events of ~6 KB each until the database is full: group commit
    // puts several in one transaction.
    let mut accepted: Vec<(Vec<RawEnvelope>, Vec<Position>)> = Vec::new();
    let mut refused: Vec<Vec<RawEnvelope>> = Vec::new();
    let mut n = 0;
    while refused.len() < 8 {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                n += 3;
                let events = vec![event(n, 6000), event(n + 1, 6000), event(n + 2, 6000)];
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let result = store.append(events.clone()).await;
                    (events, result)
                })
            })
            .collect();
        for task in tasks {
            match task.await.unwrap() {
                (events, Ok(positions)) => accepted.push((events, positions)),
                (events, Err(error)) => {
                    assert!(matches!(error, StoreError::Full { .. }), "{error:?}");
                    assert!(error.to_string().contains("full"), "{error}");
                    refused.push(events);
                }
            }
        }
        assert!(n < 3000, "the size limit never hit");
    }
    assert!(!accepted.is_empty(), "some appends fit before the limit");

    // Exactly the accepted events are stored, whole, at their positions; none of the
    // refused ones.
    let check = |stored: Vec<event_core::store::StoredEvent>| {
        let mut expected: Vec<(Position, String)> = accepted
            .iter()
            .flat_map(|(events, positions)| {
                positions
                    .iter()
                    .copied()
                    .zip(events.iter().map(|e| e.to_json().unwrap()))
            })
            .collect();
        expected.sort();
        let stored: Vec<(Position, String)> = stored
            .iter()
            .map(|e| (e.position, e.envelope.to_json().unwrap()))
            .collect();
        assert_eq!(stored, expected);
        let expected_positions: Vec<Position> = (1..=stored.len() as Position).collect();
        assert_eq!(
            stored.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            expected_positions
        );
    };
    check(store.read(0, 10_000).await.unwrap());
    let refused_ids: BTreeSet<Uuid> = refused.iter().flatten().map(|e| e.id).collect();
    assert!(
        store
            .read(0, 10_000)
            .await
            .unwrap()
            .iter()
            .all(|e| !refused_ids.contains(&e.envelope.id)),
        "nothing of a refused append is stored"
    );

    // The same store still reads.
    assert_eq!(
        store.head().await.unwrap(),
        store.read(0, 10_000).await.unwrap().len() as Position
    );
    drop(store);

    // Reopened without the limit it works again, positions continuing without a gap.
    let store = SqliteStore::open(&path).unwrap();
    check(store.read(0, 10_000).await.unwrap());
    let head = store.head().await.unwrap();
    let again = refused.swap_remove(0);
    assert_eq!(
        store.append(again).await.unwrap(),
        [head + 1, head + 2, head + 3],
        "a refused append goes through once there is room"
    );
}

#[tokio::test]
async fn errors_name_the_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir").join("events.db");
    let error = SqliteStore::open(&missing).unwrap_err();
    assert!(
        error.to_string().contains(&missing.display().to_string()),
        "{error}"
    );
}
