//! What field encryption costs on a durable bus over SQLite: each case runs the same work on
//! two buses, one with [`FieldEncryption`] and one without, in the same run, and prints the
//! ratio encrypted ÷ plain (time per event; 1.0× is free). Target: ≤ 1.3×.
//!
//! The event has two `#[event(pii)]` fields (an email and a name) and four ordinary ones;
//! its subject is its partition key, one of [`SUBJECTS`] (300) customers. Each bus has a
//! SQLite file of its own in a temporary directory (WAL); the encrypted bus keeps its data
//! keys in the same store (`FieldEncryption::new(store.clone(), ..)`, the `event_store_keys`
//! table). Before anything is timed, each bus publishes one event per subject, so every
//! subject has its key and the encrypted bus's key cache holds all 300 opened: the timed
//! part never makes or reads a key from the store (the cache keeps a key 30 s, so a case
//! running longer reads each key once more per 30 s; that is in the figures).
//!
//! Groups (current-thread runtime, one task, as an application's request handler would):
//!
//! - `privacy/publish_normal`: `publish` of one event at a time, awaited, with the store at
//!   `synchronous = NORMAL` (no fsync per commit: the CPU cost of the publish path shows);
//! - `privacy/publish_full`: the same at `synchronous = FULL`, the store's default (every
//!   commit fsynced, which usually dominates);
//! - `privacy/replay`: a subscription (`subscribe_event`, the typed path: decoded into the
//!   struct) reading back 2,000 stored events, from `replay(name, 0)` until its handler
//!   has seen them all; plain events on one bus, sealed ones (opened before decoding) on
//!   the other;
//! - `privacy/fields`: `FieldEncryption::seal` and `open` of one envelope alone, no store,
//!   against `Envelope::to_raw` and `RawEnvelope::decode` of the same event (what a publish
//!   and a typed read do anyway): where the publish and replay overhead comes from.
//!
//! Rerun: `cargo bench -p tests --bench privacy` (about a minute plus the build).

// Counts of a benchmark run are far below 2^52: converting them to f64 for a ratio is exact.
#![allow(clippy::cast_precision_loss)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use event_core::privacy::{FieldEncryption, MasterKey};
use event_core::store::{SqliteOptions, SqliteStore, Synchronous};
use event_core::{DomainEvent, Envelope, EventBus};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::runtime::{Builder, Runtime};
use tokio::sync::Notify;

/// Distinct data subjects, so distinct keys.
const SUBJECTS: u64 = 300;

/// Events stored for the replay group (fewer in the smoke run of `cargo test --benches`).
fn stored() -> u64 {
    static STORED_EVENTS: OnceLock<u64> = OnceLock::new();
    *STORED_EVENTS.get_or_init(|| {
        let smoke = !std::env::args().any(|arg| arg == "--bench");
        if smoke { 2 * SUBJECTS } else { 2_000 }
    })
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "bench.customer_signed_up", source = "accounts")]
struct CustomerSignedUp {
    #[event(partition_key, subject)]
    customer_id: String,
    #[event(pii)]
    email: String,
    #[event(pii)]
    full_name: String,
    plan: String,
    seats: u32,
    referrer: Option<String>,
    signed_up_at: i64,
}

fn event(n: u64) -> CustomerSignedUp {
    let subject = n % SUBJECTS;
    CustomerSignedUp {
        customer_id: format!("cust-{subject:05}"),
        email: format!("customer.{subject}@example.com"),
        full_name: format!("Customer Number {subject}"),
        plan: "team".to_owned(),
        seats: u32::try_from(n % 50).unwrap_or(0) + 1,
        referrer: n.is_multiple_of(3).then(|| "partner-42".to_owned()),
        signed_up_at: 1_764_000_000 + i64::try_from(n).unwrap_or(0),
    }
}

/// Counts what a subscription handled, and wakes a waiter at a target.
struct Counter {
    seen: AtomicU64,
    target: AtomicU64,
    done: Notify,
}

/// One side of a comparison: a bus on its own SQLite file, with or without encryption.
struct Side {
    bus: EventBus,
    counter: Arc<Counter>,
    _dir: TempDir,
}

impl Side {
    fn new(rt: &Runtime, synchronous: Synchronous, encrypted: bool) -> Side {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteOptions::new()
            .synchronous(synchronous)
            .open(dir.path().join("events.db"))
            .unwrap();
        let counter = Arc::new(Counter {
            seen: AtomicU64::new(0),
            target: AtomicU64::new(u64::MAX),
            done: Notify::new(),
        });
        let bus = rt.block_on(async {
            let mut builder = EventBus::builder().store(store.clone());
            if encrypted {
                builder = builder
                    .encrypt_fields(FieldEncryption::new(store.clone(), MasterKey::generate().0));
            }
            let bus = builder.build();
            // Every subject's key made, and cached, before anything is timed.
            for n in 0..SUBJECTS {
                bus.publish(event(n)).await.unwrap();
            }
            bus
        });
        Side {
            bus,
            counter,
            _dir: dir,
        }
    }

    /// Subscribes `reader`, which decodes every event and counts it, and stores `stored()`
    /// events for it to read; returns once it has read them.
    fn with_reader(self, rt: &Runtime) -> Side {
        let counter = Arc::clone(&self.counter);
        self.counter.target.store(stored(), Ordering::Relaxed);
        rt.block_on(async {
            let done = self.counter.done.notified();
            self.bus
                .subscribe_event::<CustomerSignedUp, _, _>("reader", move |env| {
                    std::hint::black_box(&env.payload);
                    let seen = counter.seen.fetch_add(1, Ordering::Relaxed) + 1;
                    if seen == counter.target.load(Ordering::Relaxed) {
                        counter.done.notify_one();
                    }
                    async { Ok(()) }
                })
                .unwrap();
            for n in SUBJECTS..stored() {
                self.bus.publish(event(n)).await.unwrap();
            }
            // The subscription reads the first events too: all of them, before a replay.
            tokio::time::timeout(Duration::from_secs(60), done)
                .await
                .expect("the reader caught up");
        });
        self.replay(rt);
        self
    }

    /// Replays `reader` from the start and waits until it has handled every stored event.
    fn replay(&self, rt: &Runtime) -> Duration {
        rt.block_on(async {
            self.counter.seen.store(0, Ordering::Relaxed);
            self.counter.target.store(stored(), Ordering::Relaxed);
            let done = self.counter.done.notified();
            let start = Instant::now();
            self.bus.replay("reader", 0).await.unwrap();
            tokio::time::timeout(Duration::from_secs(60), done)
                .await
                .expect("the replay finished");
            start.elapsed()
        })
    }
}

/// Time per event of each contender, summed over every call criterion makes (warm-up
/// included), for the ratio printed after each group.
#[derive(Default)]
struct Tally {
    nanos: AtomicU64,
    events: AtomicU64,
}

impl Tally {
    fn add(&self, elapsed: Duration, events: u64) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(nanos, Ordering::Relaxed);
        self.events.fetch_add(events, Ordering::Relaxed);
    }

    fn per_event(&self) -> Option<f64> {
        let events = self.events.load(Ordering::Relaxed);
        (events > 0).then(|| self.nanos.load(Ordering::Relaxed) as f64 / events as f64)
    }
}

fn print_ratio(group: &str, plain: &Tally, encrypted: &Tally) {
    if let (Some(plain), Some(encrypted)) = (plain.per_event(), encrypted.per_event()) {
        eprintln!(
            "{group}: plain {:.2} µs/event, encrypted {:.2} µs/event, encrypted/plain {:.3}x",
            plain / 1e3,
            encrypted / 1e3,
            encrypted / plain
        );
    }
}

fn publish(c: &mut Criterion, name: &str, synchronous: Synchronous) {
    let rt = Builder::new_current_thread().enable_all().build().unwrap();
    let sides = [
        ("plain", Side::new(&rt, synchronous, false)),
        ("encrypted", Side::new(&rt, synchronous, true)),
    ];
    let tallies = [Tally::default(), Tally::default()];
    let next = AtomicU64::new(SUBJECTS);
    let mut group = c.benchmark_group(format!("privacy/{name}"));
    group.throughput(Throughput::Elements(1));
    for ((label, side), tally) in sides.iter().zip(&tallies) {
        group.bench_function(*label, |b| {
            b.iter_custom(|iters| {
                let first = next.fetch_add(iters, Ordering::Relaxed);
                let events: Vec<_> = (first..first + iters).map(event).collect();
                let elapsed = rt.block_on(async {
                    let start = Instant::now();
                    for event in events {
                        side.bus.publish(event).await.unwrap();
                    }
                    start.elapsed()
                });
                tally.add(elapsed, iters);
                elapsed
            });
        });
    }
    group.finish();
    print_ratio(&format!("privacy/{name}"), &tallies[0], &tallies[1]);
    rt.block_on(async {
        for (_, side) in &sides {
            side.bus.shutdown().await;
        }
    });
}

fn publish_normal(c: &mut Criterion) {
    publish(c, "publish_normal", Synchronous::Normal);
}

fn publish_full(c: &mut Criterion) {
    publish(c, "publish_full", Synchronous::Full);
}

fn replay(c: &mut Criterion) {
    let rt = Builder::new_current_thread().enable_all().build().unwrap();
    let sides = [
        (
            "plain",
            Side::new(&rt, Synchronous::Normal, false).with_reader(&rt),
        ),
        (
            "encrypted",
            Side::new(&rt, Synchronous::Normal, true).with_reader(&rt),
        ),
    ];
    let tallies = [Tally::default(), Tally::default()];
    let mut group = c.benchmark_group("privacy/replay");
    group.throughput(Throughput::Elements(stored()));
    for ((label, side), tally) in sides.iter().zip(&tallies) {
        group.bench_function(BenchmarkId::new(*label, stored()), |b| {
            b.iter_custom(|iters| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iters {
                    elapsed += side.replay(&rt);
                }
                tally.add(elapsed, iters * stored());
                elapsed
            });
        });
    }
    group.finish();
    print_ratio("privacy/replay", &tallies[0], &tallies[1]);
    rt.block_on(async {
        for (_, side) in &sides {
            side.bus.shutdown().await;
        }
    });
}

/// Sealing and opening alone, against the serialization a publish does anyway.
fn fields(c: &mut Criterion) {
    let rt = Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("keys.db")).unwrap();
    let encryption = FieldEncryption::new(store, MasterKey::generate().0);
    let envelopes: Vec<_> = (0..SUBJECTS)
        .map(|n| Envelope::new(event(n)).to_raw().unwrap())
        .collect();
    let sealed: Vec<_> = rt.block_on(async {
        let mut sealed = Vec::new();
        for envelope in &envelopes {
            sealed.push(encryption.seal(envelope).await.unwrap().unwrap());
        }
        sealed
    });
    let typed: Vec<_> = (0..SUBJECTS).map(|n| Envelope::new(event(n))).collect();
    let pick = |i: u64| usize::try_from(i % SUBJECTS).unwrap_or(0);
    let mut group = c.benchmark_group("privacy/fields");
    group.throughput(Throughput::Elements(1));
    group.bench_function("to_raw", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                std::hint::black_box(typed[pick(i)].to_raw().unwrap());
            }
            start.elapsed()
        });
    });
    group.bench_function("seal", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    std::hint::black_box(encryption.seal(&envelopes[pick(i)]).await.unwrap());
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("open", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    std::hint::black_box(encryption.open(&sealed[pick(i)]).await.unwrap());
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("decode_plain", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                std::hint::black_box(envelopes[pick(i)].decode::<CustomerSignedUp>().unwrap());
            }
            start.elapsed()
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = publish_normal, publish_full, replay, fields
}
criterion_main!(benches);
