//! The transactional outbox on SQLite: what an event costs inside the caller's own
//! transaction, on rusqlite and on sqlx.
//!
//! Each iteration is one caller transaction, `BEGIN IMMEDIATE; INSERT` of one domain row,
//! then (or not) the event of that row, then `COMMIT`; each contender writes to a file of its
//! own, in WAL mode with `synchronous = NORMAL`:
//!
//! - `rusqlite_row_only`: the baseline, the domain row alone on rusqlite;
//! - `rusqlite_append_in`: the row and `SqliteStore::append_in` of its event;
//! - `sqlx_row_only`: the baseline on sqlx, the row alone;
//! - `sqlx_append_in`: the row and `SqliteStore::append_in_sqlx` of its event.
//!
//! The ratios that matter: each driver's `append_in` against its own `row_only` (what the
//! event adds to a transaction the application runs anyway), and `sqlx_append_in` against
//! `rusqlite_append_in`. Envelopes are built before the timed part.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use event_core::RawEnvelope;
use event_core::store::rusqlite::{self, Connection, TransactionBehavior};
use event_core::store::sqlx::sqlite::{SqliteConnectOptions, SqliteSynchronous};
use event_core::store::sqlx::{self, Connection as _, SqliteConnection};
use event_core::store::{SqliteOptions, SqliteStore, Synchronous};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::envelope;
use tokio::runtime::Runtime;
use uuid::Uuid;

#[path = "support/outbox_event.rs"]
mod support;

const ORDERS: &str = "CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, total INTEGER)";
const INSERT_ORDER: &str = "INSERT INTO orders (id, total) VALUES (?1, ?2)";

/// A new store file in `dir`, with the orders table beside the store's tables.
fn database(dir: &tempfile::TempDir, file: &str) -> PathBuf {
    let path = dir.path().join(file);
    drop(
        SqliteOptions::new()
            .synchronous(Synchronous::Normal)
            .open(&path)
            .unwrap(),
    );
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(ORDERS).unwrap();
    path
}

fn rusqlite_connection(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    conn
}

async fn sqlx_connection(path: &Path) -> SqliteConnection {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .synchronous(SqliteSynchronous::Normal);
    SqliteConnection::connect_with(&options).await.unwrap()
}

/// `iters` rusqlite transactions of one row, with its event when `events` is some.
fn rusqlite_loop(conn: &mut Connection, iters: u64, events: Option<&[RawEnvelope]>) -> Duration {
    let start = Instant::now();
    for n in 0..iters {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        tx.execute(
            INSERT_ORDER,
            rusqlite::params![Uuid::now_v7().to_string(), i64::try_from(n).unwrap()],
        )
        .unwrap();
        if let Some(events) = events {
            let n = usize::try_from(n).unwrap();
            SqliteStore::append_in(&tx, &events[n..=n]).unwrap();
        }
        tx.commit().unwrap();
    }
    start.elapsed()
}

/// `iters` sqlx transactions of one row, with its event when `events` is some.
async fn sqlx_loop(
    conn: &mut SqliteConnection,
    iters: u64,
    events: Option<&[RawEnvelope]>,
) -> Duration {
    let start = Instant::now();
    for n in 0..iters {
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.unwrap();
        sqlx::query(INSERT_ORDER)
            .bind(Uuid::now_v7().to_string())
            .bind(i64::try_from(n).unwrap())
            .execute(&mut *tx)
            .await
            .unwrap();
        if let Some(events) = events {
            let n = usize::try_from(n).unwrap();
            SqliteStore::append_in_sqlx(&mut tx, &events[n..=n])
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    }
    start.elapsed()
}

fn outbox(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let rt = Runtime::new().unwrap();
    let mut group = c.benchmark_group("outbox_sqlite");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));

    let mut conn = rusqlite_connection(&database(&dir, "rusqlite_row.db"));
    group.bench_function("rusqlite_row_only", |b| {
        b.iter_custom(|iters| rusqlite_loop(&mut conn, iters, None));
    });
    let mut conn = rusqlite_connection(&database(&dir, "rusqlite_outbox.db"));
    group.bench_function("rusqlite_append_in", |b| {
        b.iter_custom(|iters| {
            let events: Vec<RawEnvelope> = (0..iters).map(envelope).collect();
            rusqlite_loop(&mut conn, iters, Some(&events))
        });
    });
    let mut conn = rt.block_on(sqlx_connection(&database(&dir, "sqlx_row.db")));
    group.bench_function("sqlx_row_only", |b| {
        b.iter_custom(|iters| rt.block_on(sqlx_loop(&mut conn, iters, None)));
    });
    let mut conn = rt.block_on(sqlx_connection(&database(&dir, "sqlx_outbox.db")));
    group.bench_function("sqlx_append_in", |b| {
        b.iter_custom(|iters| {
            let events: Vec<RawEnvelope> = (0..iters).map(envelope).collect();
            rt.block_on(sqlx_loop(&mut conn, iters, Some(&events)))
        });
    });
    group.finish();
}

criterion_group!(benches, outbox);
criterion_main!(benches);
