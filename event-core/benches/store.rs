//! Append and publish throughput on SQLite against raw rusqlite, one INSERT per transaction.
//!
//! Three contenders write the same bytes (the canonical JSON of equal envelopes, plus id,
//! type, partition key and time columns with a unique index on the id), each to a file of
//! its own, in WAL mode with `synchronous = NORMAL`:
//!
//! - `sqlite_store`: `SqliteStore::append` of one envelope, built before the timed part and
//!   serialized inside it;
//! - `bus_publish`: `EventBus::publish_with` on a durable bus over an `SqliteStore` (no
//!   subscriptions): builds the envelope, serializes it, appends, returns after the commit;
//! - `raw_rusqlite_one_per_tx`: the baseline, `BEGIN; INSERT; COMMIT` per event on one
//!   connection, serializing the same prebuilt envelopes inside the timed part.
//!
//! Two groups:
//!
//! - `one_appender`: one task awaiting each append (or publish) in turn, against the raw
//!   loop. Target: ≥ 0.8× the raw throughput.
//! - `16_appenders`: 16 tasks appending (or publishing) concurrently, so group commit shares
//!   transactions, against the same raw one-per-transaction loop. Target: ≥ 4×.
//!
//! The same two comparisons run again with `synchronous = FULL` on both sides (the store's
//! default: every commit is fsynced), where a commit costs an fsync and group commit shares
//! it: groups `store_append_sqlite_full/...`.
//!
//! Envelopes and events are built before the timed part; every iteration appends new ids.

// Counts of a benchmark run are far below 2^52: converting them to f64 for a ratio is exact.
#![allow(clippy::cast_precision_loss)]

use chrono::{SubsecRound, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use event_core::store::rusqlite::{Connection, params};
use event_core::store::{SqliteOptions, SqliteStore, Store, Synchronous};
use event_core::{
    DomainEvent, Envelope, EventBus, Meta, PARTITION_KEY, PublishContext, RawEnvelope,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::{Builder, Runtime};
use uuid::Uuid;

const APPENDERS: u64 = 16;

/// What the bus publishes: the payload of [`envelope`], so the stored bytes are the same.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "order.created", source = "orders-service")]
struct OrderCreated {
    #[event(partition_key)]
    order_id: String,
    customer_email: String,
    total_cents: u64,
}

/// One publish: the event and its context (correlation id), as [`envelope`] has them.
fn publication(n: u64) -> (PublishContext, OrderCreated) {
    (
        PublishContext::new().correlation_id(format!("c-{n}")),
        OrderCreated {
            order_id: format!("o-{}", n % 64),
            customer_email: "a@b.c".to_owned(),
            total_cents: n,
        },
    )
}

fn publications(count: u64) -> Vec<(PublishContext, OrderCreated)> {
    (0..count).map(publication).collect()
}

fn envelope(n: u64) -> RawEnvelope {
    let mut meta = Meta::new();
    meta.insert(PARTITION_KEY.to_owned(), format!("o-{}", n % 64).into());
    Envelope {
        id: Uuid::now_v7(),
        event_type: "order.created".into(),
        version: 1,
        occurred_at: Utc::now().trunc_subsecs(3),
        source: Some("orders-service".into()),
        correlation_id: Some(format!("c-{n}").into()),
        causation_id: None,
        trace_id: None,
        payload: RawValue::from_string(format!(
            r#"{{"order_id":"o-{}","customer_email":"a@b.c","total_cents":{n}}}"#,
            n % 64
        ))
        .unwrap(),
        meta,
    }
}

fn envelopes(count: u64) -> Vec<RawEnvelope> {
    (0..count).map(envelope).collect()
}

fn store(dir: &tempfile::TempDir, file: &str, synchronous: Synchronous) -> SqliteStore {
    SqliteOptions::new()
        .synchronous(synchronous)
        .open(dir.path().join(file))
        .unwrap()
}

/// A durable bus over a store of its own, without subscriptions; and that store.
fn bus(rt: &Runtime, dir: &tempfile::TempDir, synchronous: Synchronous) -> (EventBus, SqliteStore) {
    let _runtime = rt.enter();
    let store = store(dir, "bus.db", synchronous);
    (EventBus::builder().store(store.clone()).build(), store)
}

/// The raw baseline: the same columns and index, WAL, the same `synchronous`.
fn raw(dir: &tempfile::TempDir, synchronous: Synchronous) -> Connection {
    let conn = Connection::open(dir.path().join("raw.db")).unwrap();
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .unwrap();
    let level = if synchronous == Synchronous::Full {
        "FULL"
    } else {
        "NORMAL"
    };
    conn.pragma_update(None, "synchronous", level).unwrap();
    conn.execute_batch(
        "CREATE TABLE events (position INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, \
         event_type TEXT NOT NULL, partition_key TEXT, appended_at INTEGER NOT NULL, \
         envelope TEXT NOT NULL)",
    )
    .unwrap();
    conn
}

fn raw_append(conn: &Connection, events: &[RawEnvelope]) -> Duration {
    let start = Instant::now();
    for event in events {
        let json = event.to_json().unwrap();
        conn.prepare_cached("BEGIN").unwrap().execute([]).unwrap();
        conn.prepare_cached(
            "INSERT INTO events (id, event_type, partition_key, appended_at, envelope) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .unwrap()
        .execute(params![
            event.id.to_string(),
            event.event_type.as_str(),
            event.partition_key(),
            Utc::now().timestamp_millis(),
            json
        ])
        .unwrap();
        conn.prepare_cached("COMMIT").unwrap().execute([]).unwrap();
    }
    start.elapsed()
}

fn runtime(workers: usize) -> Runtime {
    if workers == 1 {
        Builder::new_current_thread().enable_all().build().unwrap()
    } else {
        Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .unwrap()
    }
}

fn group_name(synchronous: Synchronous, bench: &str) -> String {
    match synchronous {
        Synchronous::Full => format!("store_append_sqlite_full/{bench}"),
        _ => format!("store_append_sqlite/{bench}"),
    }
}

fn one_appender(c: &mut Criterion, synchronous: Synchronous) {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(1);
    let store = store(&dir, "store.db", synchronous);
    let (bus, _) = bus(&rt, &dir, synchronous);
    let conn = raw(&dir, synchronous);
    let mut group = c.benchmark_group(group_name(synchronous, "one_appender"));
    group.throughput(Throughput::Elements(1));
    group.bench_function("sqlite_store", |b| {
        b.iter_custom(|iters| {
            let events = envelopes(iters);
            rt.block_on(async {
                let start = Instant::now();
                for event in events {
                    store.append(vec![event]).await.unwrap();
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("bus_publish", |b| {
        b.iter_custom(|iters| {
            let events = publications(iters);
            rt.block_on(async {
                let start = Instant::now();
                for (context, event) in events {
                    bus.publish_with(context, event).await.unwrap();
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("raw_rusqlite_one_per_tx", |b| {
        b.iter_custom(|iters| raw_append(&conn, &envelopes(iters)));
    });
    group.finish();
}

fn concurrent_appenders(c: &mut Criterion, synchronous: Synchronous) {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(2);
    let store = Arc::new(store(&dir, "store.db", synchronous));
    let (bus, bus_store) = bus(&rt, &dir, synchronous);
    let conn = raw(&dir, synchronous);
    let mut group = c.benchmark_group(group_name(synchronous, "16_appenders"));
    group.throughput(Throughput::Elements(1));
    group.bench_function("sqlite_store", |b| {
        b.iter_custom(|iters| {
            let per_task = iters.div_ceil(APPENDERS);
            let batches: Vec<Vec<RawEnvelope>> =
                (0..APPENDERS).map(|_| envelopes(per_task)).collect();
            let elapsed = rt.block_on(async {
                let start = Instant::now();
                let tasks: Vec<_> = batches
                    .into_iter()
                    .map(|events| {
                        let store = Arc::clone(&store);
                        tokio::spawn(async move {
                            for event in events {
                                store.append(vec![event]).await.unwrap();
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.unwrap();
                }
                start.elapsed()
            });
            // Time per append, as if `iters` were appended exactly.
            elapsed.mul_f64(iters as f64 / (per_task * APPENDERS) as f64)
        });
    });
    group.bench_function("bus_publish", |b| {
        b.iter_custom(|iters| {
            let per_task = iters.div_ceil(APPENDERS);
            let batches: Vec<_> = (0..APPENDERS).map(|_| publications(per_task)).collect();
            let elapsed = rt.block_on(async {
                let start = Instant::now();
                let tasks: Vec<_> = batches
                    .into_iter()
                    .map(|events| {
                        let bus = bus.clone();
                        tokio::spawn(async move {
                            for (context, event) in events {
                                bus.publish_with(context, event).await.unwrap();
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.unwrap();
                }
                start.elapsed()
            });
            elapsed.mul_f64(iters as f64 / (per_task * APPENDERS) as f64)
        });
    });
    group.bench_function("raw_rusqlite_one_per_tx", |b| {
        b.iter_custom(|iters| raw_append(&conn, &envelopes(iters)));
    });
    group.finish();
    for (contender, store) in [("store", &*store), ("bus", &bus_store)] {
        let stats = store.stats();
        if stats.appends == 0 {
            continue; // filtered out
        }
        eprintln!(
            "16 appenders, {synchronous:?}, {contender}: {} appends in {} transactions \
             ({:.1} per transaction)",
            stats.appends,
            stats.write_transactions,
            stats.appends as f64 / stats.write_transactions.max(1) as f64
        );
    }
}

fn normal(c: &mut Criterion) {
    one_appender(c, Synchronous::Normal);
    concurrent_appenders(c, Synchronous::Normal);
}

fn full(c: &mut Criterion) {
    one_appender(c, Synchronous::Full);
    concurrent_appenders(c, Synchronous::Full);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = normal, full
}
criterion_main!(benches);
