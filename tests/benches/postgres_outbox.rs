//! The transactional outbox on PostgreSQL: what an event costs inside the caller's own
//! transaction, on tokio-postgres and on sqlx.
//!
//! Each iteration is one caller transaction, `BEGIN`, an `INSERT` of one domain row, then (or
//! not) the row's event, then `COMMIT`, on one connection, in a database of each contender's
//! own on a server this benchmark starts on 127.0.0.1 ([`PostgresServer::shared`]: `fsync`
//! on, `synchronous_commit` on):
//!
//! - `tokio_postgres_row_only`: the baseline, the domain row alone (a prepared INSERT);
//! - `tokio_postgres_append_in`: the row and `PostgresStore::append_in` of its event;
//! - `sqlx_row_only`: the baseline on sqlx (its statement cache prepares the INSERT once);
//! - `sqlx_append_in`: the row and `PostgresStore::append_in_sqlx` of its event.
//!
//! The ratios that matter: each driver's `append_in` against its own `row_only`, and
//! `sqlx_append_in` against `tokio_postgres_append_in`. Envelopes are built before the
//! timed part.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use event_core::RawEnvelope;
use event_core::store::PostgresStore;
use event_core::store::sqlx::{self, Connection as _, PgConnection};
use event_core::store::tokio_postgres::{Client, NoTls};
use std::time::{Duration, Instant};
use support::envelope;
use tests::postgres_server::PostgresServer;
use tokio::runtime::{Builder, Runtime};
use uuid::Uuid;

#[path = "../../event-core/benches/support/outbox_event.rs"]
mod support;

const ORDERS: &str = "CREATE TABLE IF NOT EXISTS orders (id UUID PRIMARY KEY, total BIGINT)";
const INSERT_ORDER: &str = "INSERT INTO orders (id, total) VALUES ($1, $2)";

/// A new database with the store's tables and the orders table; its connection string.
async fn database() -> String {
    let conninfo = PostgresServer::shared().create_database();
    drop(PostgresStore::connect(&conninfo).await.unwrap());
    tokio_postgres(&conninfo)
        .await
        .batch_execute(ORDERS)
        .await
        .unwrap();
    conninfo
}

async fn tokio_postgres(conninfo: &str) -> Client {
    let (client, connection) = event_core::store::tokio_postgres::connect(conninfo, NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// `iters` tokio-postgres transactions of one row, with its event when `events` is some.
async fn tokio_postgres_loop(
    client: &mut Client,
    iters: u64,
    events: Option<&[RawEnvelope]>,
) -> Duration {
    let insert = client.prepare(INSERT_ORDER).await.unwrap();
    let start = Instant::now();
    for n in 0..iters {
        let tx = client.transaction().await.unwrap();
        tx.execute(&insert, &[&Uuid::now_v7(), &i64::try_from(n).unwrap()])
            .await
            .unwrap();
        if let Some(events) = events {
            let n = usize::try_from(n).unwrap();
            PostgresStore::append_in(&tx, &events[n..=n]).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    start.elapsed()
}

/// `iters` sqlx transactions of one row, with its event when `events` is some.
async fn sqlx_loop(
    conn: &mut PgConnection,
    iters: u64,
    events: Option<&[RawEnvelope]>,
) -> Duration {
    let start = Instant::now();
    for n in 0..iters {
        let mut tx = conn.begin().await.unwrap();
        sqlx::query(INSERT_ORDER)
            .bind(Uuid::now_v7())
            .bind(i64::try_from(n).unwrap())
            .execute(&mut *tx)
            .await
            .unwrap();
        if let Some(events) = events {
            let n = usize::try_from(n).unwrap();
            PostgresStore::append_in_sqlx(&mut tx, &events[n..=n])
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    }
    start.elapsed()
}

fn runtime() -> Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

fn outbox(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("outbox_postgres");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));

    for (name, with_event) in [
        ("tokio_postgres_row_only", false),
        ("tokio_postgres_append_in", true),
    ] {
        let mut client = rt.block_on(async { tokio_postgres(&database().await).await });
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let events: Vec<RawEnvelope> = (0..iters).map(envelope).collect();
                let events = with_event.then_some(events.as_slice());
                rt.block_on(tokio_postgres_loop(&mut client, iters, events))
            });
        });
    }
    for (name, with_event) in [("sqlx_row_only", false), ("sqlx_append_in", true)] {
        let mut conn = rt.block_on(async {
            let url = PostgresServer::url(&database().await);
            PgConnection::connect(&url).await.unwrap()
        });
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let events: Vec<RawEnvelope> = (0..iters).map(envelope).collect();
                let events = with_event.then_some(events.as_slice());
                rt.block_on(sqlx_loop(&mut conn, iters, events))
            });
        });
    }
    group.finish();
}

criterion_group!(benches, outbox);
criterion_main!(benches);
