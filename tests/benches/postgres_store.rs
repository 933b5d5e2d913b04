//! Append and publish throughput on PostgreSQL against raw tokio-postgres, one INSERT per
//! transaction.
//!
//! The server is one this benchmark starts on 127.0.0.1 ([`PostgresServer::shared`]: a
//! throwaway data directory, `fsync` on, `synchronous_commit` at its default, `on`), never a
//! server already running. Three contenders write the same bytes (the canonical JSON of
//! equal envelopes, plus id, type, partition key and time columns with a unique index on the
//! id):
//!
//! - `postgres_store`: `PostgresStore::append` of one envelope, built before the timed part
//!   and serialized inside it;
//! - `bus_publish`: `EventBus::publish_with` on a durable bus over a `PostgresStore` in a
//!   database of its own (no subscriptions): builds the envelope, serializes it, appends,
//!   returns after the commit;
//! - `raw_tokio_postgres_one_per_tx`: the baseline, `BEGIN; INSERT; COMMIT` per event on one
//!   connection with a prepared statement, serializing the same prebuilt envelopes inside the
//!   timed part.
//!
//! Two groups:
//!
//! - `one_appender` (current-thread runtime): one task awaiting each append (or publish) in
//!   turn, against the raw loop. Target: ≥ 0.8× the raw throughput.
//! - `16_appenders` (multi-thread runtime, 2 workers): 16 tasks appending (or publishing)
//!   concurrently, so group commit shares transactions, against the same raw
//!   one-per-transaction loop. Target: ≥ 4×.
//!
//! Envelopes and events are built before the timed part; every iteration appends new ids.

// Counts of a benchmark run are far below 2^52: converting them to f64 for a ratio is exact.
#![allow(clippy::cast_precision_loss)]

use chrono::{SubsecRound, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use event_core::store::tokio_postgres::{Client, NoTls, Statement};
use event_core::store::{PostgresStore, Store};
use event_core::{
    DomainEvent, Envelope, EventBus, Meta, PARTITION_KEY, PublishContext, RawEnvelope,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tests::postgres_server::PostgresServer;
use tokio::runtime::{Builder, Runtime};
use uuid::Uuid;

const APPENDERS: u64 = 16;

/// The raw baseline's table: the store's columns and unique index on the id.
const RAW_TABLE: &str = "CREATE TABLE IF NOT EXISTS raw_events (\
     position BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id UUID NOT NULL UNIQUE, \
     event_type TEXT NOT NULL, partition_key TEXT, \
     appended_at TIMESTAMPTZ NOT NULL DEFAULT now(), envelope JSON NOT NULL)";

const RAW_INSERT: &str = "INSERT INTO raw_events (id, event_type, partition_key, envelope) \
     VALUES ($1, $2, $3, $4::text::json)";

/// What the bus publishes: the payload of [`envelope`], so the stored bytes are the same.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "order.created", source = "orders-service")]
struct OrderCreated {
    #[event(partition_key)]
    order_id: String,
    customer_email: String,
    total_cents: u64,
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

/// The databases, created once per process: the store's and the raw table's, and the bus's.
struct Databases {
    store: String,
    bus: String,
}

fn databases() -> &'static Databases {
    static DATABASES: OnceLock<Databases> = OnceLock::new();
    DATABASES.get_or_init(|| {
        let server = PostgresServer::shared();
        Databases {
            store: server.create_database(),
            bus: server.create_database(),
        }
    })
}

/// The three contenders, connected on `rt` (their connections run on it).
struct Contenders {
    store: PostgresStore,
    bus: EventBus,
    bus_store: PostgresStore,
    raw: Client,
    raw_insert: Statement,
}

fn contenders(rt: &Runtime) -> Contenders {
    let databases = databases();
    rt.block_on(async {
        let store = PostgresStore::connect(&databases.store).await.unwrap();
        let bus_store = PostgresStore::connect(&databases.bus).await.unwrap();
        let bus = EventBus::builder().store(bus_store.clone()).build();
        let (raw, connection) = event_core::store::tokio_postgres::connect(&databases.store, NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        raw.batch_execute(RAW_TABLE).await.unwrap();
        let raw_insert = raw.prepare(RAW_INSERT).await.unwrap();
        Contenders {
            store,
            bus,
            bus_store,
            raw,
            raw_insert,
        }
    })
}

/// The raw baseline: `BEGIN; INSERT; COMMIT` per event, in turn, on one connection.
async fn raw_append(client: &mut Client, insert: &Statement, events: &[RawEnvelope]) -> Duration {
    let start = Instant::now();
    for event in events {
        let json = event.to_json().unwrap();
        let tx = client.transaction().await.unwrap();
        tx.execute(
            insert,
            &[
                &event.id,
                &event.event_type.as_str(),
                &event.partition_key(),
                &json,
            ],
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    start.elapsed()
}

fn one_appender(c: &mut Criterion) {
    let rt = Builder::new_current_thread().enable_all().build().unwrap();
    let Contenders {
        store,
        bus,
        mut raw,
        raw_insert,
        ..
    } = contenders(&rt);
    let mut group = c.benchmark_group("store_append_postgres/one_appender");
    group.throughput(Throughput::Elements(1));
    group.bench_function("postgres_store", |b| {
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
    group.bench_function("raw_tokio_postgres_one_per_tx", |b| {
        b.iter_custom(|iters| {
            let events = envelopes(iters);
            rt.block_on(raw_append(&mut raw, &raw_insert, &events))
        });
    });
    group.finish();
}

fn concurrent_appenders(c: &mut Criterion) {
    let rt = Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let Contenders {
        store,
        bus,
        bus_store,
        mut raw,
        raw_insert,
    } = contenders(&rt);
    let store = Arc::new(store);
    let mut group = c.benchmark_group("store_append_postgres/16_appenders");
    group.throughput(Throughput::Elements(1));
    group.bench_function("postgres_store", |b| {
        b.iter_custom(|iters| {
            let per_task = iters.div_ceil(APPENDERS);
            let batches: Vec<_> = (0..APPENDERS).map(|_| envelopes(per_task)).collect();
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
    group.bench_function("raw_tokio_postgres_one_per_tx", |b| {
        b.iter_custom(|iters| {
            let events = envelopes(iters);
            rt.block_on(raw_append(&mut raw, &raw_insert, &events))
        });
    });
    group.finish();
    for (contender, store) in [("store", &*store), ("bus", &bus_store)] {
        let stats = store.stats();
        if stats.appends == 0 {
            continue; // filtered out
        }
        eprintln!(
            "16 appenders, {contender}: {} appends in {} transactions ({:.1} per transaction)",
            stats.appends,
            stats.write_transactions,
            stats.appends as f64 / stats.write_transactions.max(1) as f64
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = one_appender, concurrent_appenders
}
criterion_main!(benches);
