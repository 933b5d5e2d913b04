//! Publish → handler throughput of the bus, against a hand-written fan-out over the same
//! tokio primitives.
//!
//! One iteration publishes `EVENTS` small events and waits until every subscription has
//! handled all of them: each handler bumps one shared counter, and the handler that brings it
//! to `EVENTS × subscriptions` wakes the publisher through a `Notify`. Building the bus (or
//! the channels) and shutting it down happen outside the timed part.
//!
//! The baseline is what one would write by hand without the bus: one bounded `mpsc` channel
//! (capacity 1024, as the bus's queues) per subscriber task, the publisher sending an
//! `Arc<E>` clone to each.
//!
//! Both run on a current-thread runtime and on a multi-thread runtime with 2 workers; the
//! publisher is a task on the runtime in both cases.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use event_core::{DomainEvent, Envelope, EventBus};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tokio::sync::{Notify, mpsc};

/// Events per iteration.
const EVENTS: u64 = 10_000;
/// Room per queue: the bus's default, and the baseline's channels.
const CAPACITY: usize = 1024;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "bench.ticked", source = "bench")]
struct Ticked {
    #[event(partition_key)]
    id: String,
    n: u64,
}

fn ticked(n: u64) -> Ticked {
    Ticked {
        id: format!("t-{}", n % 64),
        n,
    }
}

/// Counts handled events across every subscription and wakes the publisher at the last one.
struct Done {
    handled: AtomicU64,
    target: u64,
    notify: Notify,
}

impl Done {
    fn new(subscriptions: u64) -> Arc<Self> {
        Arc::new(Done {
            handled: AtomicU64::new(0),
            target: EVENTS * subscriptions,
            notify: Notify::new(),
        })
    }

    fn handled_one(&self) {
        if self.handled.fetch_add(1, Ordering::AcqRel) + 1 == self.target {
            // `notify_one` keeps a permit when the publisher is not waiting yet.
            self.notify.notify_one();
        }
    }
}

/// One timed iteration through the bus.
async fn through_bus(subscriptions: u64) -> Duration {
    let bus = EventBus::builder().queue_capacity(CAPACITY).build();
    let done = Done::new(subscriptions);
    for s in 0..subscriptions {
        let done = Arc::clone(&done);
        bus.subscribe_event::<Ticked, _, _>(&format!("sub-{s}"), move |env| {
            black_box(env.payload.n);
            done.handled_one();
            async { Ok(()) }
        })
        .expect("subscribes");
    }
    let start = Instant::now();
    for n in 0..EVENTS {
        black_box(bus.publish(ticked(n)).await.expect("publishes"));
    }
    done.notify.notified().await;
    let elapsed = start.elapsed();
    bus.shutdown().await;
    assert_eq!(bus.metrics().delivered, EVENTS * subscriptions);
    elapsed
}

/// One timed iteration through hand-written channels: one bounded channel per subscriber
/// task, the publisher sending `make(n)` cloned to each, the subscriber reading `read`.
async fn through_channels<T: Clone + Send + 'static>(
    subscriptions: u64,
    make: fn(u64) -> T,
    read: fn(&T) -> u64,
) -> Duration {
    let done = Done::new(subscriptions);
    let mut senders = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..subscriptions {
        let (tx, mut rx) = mpsc::channel::<T>(CAPACITY);
        let done = Arc::clone(&done);
        tasks.push(tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                black_box(read(&event));
                done.handled_one();
            }
        }));
        senders.push(tx);
    }
    let start = Instant::now();
    for n in 0..EVENTS {
        let event = make(n);
        for tx in &senders {
            tx.send(event.clone()).await.expect("sends");
        }
    }
    done.notify.notified().await;
    let elapsed = start.elapsed();
    drop(senders);
    for task in tasks {
        task.await.expect("consumer ends");
    }
    elapsed
}

/// The baseline: an `Arc<E>` per event, shared by every subscriber.
async fn through_arc_channels(subscriptions: u64) -> Duration {
    through_channels(subscriptions, |n| Arc::new(ticked(n)), |e| e.n).await
}

/// What a bus handler gets, by hand: its own `Envelope<E>` (id, time, source, partition key
/// in `meta`), cloned per subscriber. Not the baseline; it shows how much of the gap
/// is the owned copy.
async fn through_owned_envelope_channels(subscriptions: u64) -> Duration {
    through_channels(subscriptions, |n| Envelope::new(ticked(n)), |e| e.payload.n).await
}

/// The least any bus with this crate's API must do, by hand: the publisher keeps its own
/// envelope (`publish` returns it), the bus keeps one shared copy of the event (a retry or a
/// dead letter needs it again, after the handler consumed its own), and each handler gets its
/// own `Envelope<E>` cloned from that copy. No routing, metrics, spans or panic isolation. It
/// bounds what the bus can reach against `mpsc_owned_envelope`.
async fn through_contract_minimum_channels(subscriptions: u64) -> Duration {
    through_channels(
        subscriptions,
        |n| {
            let returned_to_publisher = Envelope::new(ticked(n));
            let kept_by_the_bus = Arc::new(returned_to_publisher.clone());
            black_box(returned_to_publisher);
            kept_by_the_bus
        },
        |shared| {
            let handlers_own: Envelope<Ticked> = Envelope::clone(shared);
            handlers_own.payload.n
        },
    )
    .await
}

/// The contract minimum with every copy made by the publisher: each channel carries the
/// shared copy beside the handler's own envelope, cloned on the publisher's side, so the
/// subscriber only reads and drops. On two workers it shows whether moving the copies off the
/// subscriber's thread changes the bound.
async fn through_contract_minimum_publisher_copies(subscriptions: u64) -> Duration {
    through_channels(
        subscriptions,
        |n| {
            let returned_to_publisher = Envelope::new(ticked(n));
            let kept_by_the_bus = Arc::new(returned_to_publisher.clone());
            // Cloned once per channel: an `Arc` bump and the handler's own envelope.
            (kept_by_the_bus, returned_to_publisher)
        },
        |(shared, handlers_own)| shared.payload.n + handlers_own.payload.n,
    )
    .await
}

/// Runs `iters` iterations of `body` as a task on `runtime`, summing their timed parts.
fn run<F, Fut>(runtime: &Runtime, iters: u64, body: F) -> Duration
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = Duration> + Send + 'static,
{
    runtime.block_on(async move {
        tokio::spawn(async move {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += body().await;
            }
            total
        })
        .await
        .expect("bench task")
    })
}

/// Publish → handler latency, one event at a time: the publisher waits for the handler to
/// see each event before it publishes the next. Returns (p50, p99) over `LATENCY_SAMPLES`.
async fn latency(through_bus: bool) -> (Duration, Duration) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Instant>();
    let mut samples = Vec::with_capacity(LATENCY_SAMPLES);
    if through_bus {
        let bus = EventBus::builder().build();
        bus.subscribe_event::<Ticked, _, _>("latency", move |env| {
            black_box(env.payload.n);
            let _ = tx.send(Instant::now());
            async { Ok(()) }
        })
        .expect("subscribes");
        for n in 0..LATENCY_SAMPLES as u64 {
            let start = Instant::now();
            bus.publish(ticked(n)).await.expect("publishes");
            let seen = rx.recv().await.expect("handled");
            samples.push(seen - start);
        }
        bus.shutdown().await;
    } else {
        let (events, mut inbox) = mpsc::channel::<Envelope<Ticked>>(CAPACITY);
        let consumer = tokio::spawn(async move {
            while let Some(env) = inbox.recv().await {
                black_box(env.payload.n);
                let _ = tx.send(Instant::now());
            }
        });
        for n in 0..LATENCY_SAMPLES as u64 {
            let start = Instant::now();
            events.send(Envelope::new(ticked(n))).await.expect("sends");
            let seen = rx.recv().await.expect("handled");
            samples.push(seen - start);
        }
        drop(events);
        consumer.await.expect("consumer ends");
    }
    samples.sort_unstable();
    (
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100],
    )
}

/// Latency samples per run.
const LATENCY_SAMPLES: usize = 20_000;

fn report_latency(runtime: &Runtime, flavor: &str) {
    for (name, through_bus) in [("event_bus", true), ("mpsc_owned_envelope", false)] {
        let (p50, p99) = runtime.block_on(async move {
            tokio::spawn(latency(through_bus))
                .await
                .expect("latency task")
        });
        eprintln!("latency/{flavor}/{name}: p50 {p50:?}, p99 {p99:?}");
    }
}

/// Whether this is a `cargo bench` run (criterion's `--bench`), not `cargo test`'s smoke run.
fn measuring() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

/// Rounds of the interleaved comparison.
const ROUNDS: usize = 15;

/// The machine is shared: rather than compare criterion's rows, measured minutes apart, run the
/// bus and both fan-outs in alternation, `ROUNDS` times each, and print the median of the
/// per-round throughput ratios.
fn report_interleaved(runtime: &Runtime, flavor: &str) {
    for subscriptions in [1_u64, 10] {
        let (mut to_arc, mut to_owned, mut minimum_to_owned, mut to_minimum) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let bus = run(runtime, 1, move || through_bus(subscriptions)).as_secs_f64();
            let arc = run(runtime, 1, move || through_arc_channels(subscriptions)).as_secs_f64();
            let owned = run(runtime, 1, move || {
                through_owned_envelope_channels(subscriptions)
            })
            .as_secs_f64();
            // The contract minimum is the faster of its two placements of the copies.
            let minimum = run(runtime, 1, move || {
                through_contract_minimum_channels(subscriptions)
            })
            .as_secs_f64()
            .min(
                run(runtime, 1, move || {
                    through_contract_minimum_publisher_copies(subscriptions)
                })
                .as_secs_f64(),
            );
            to_arc.push(arc / bus);
            to_owned.push(owned / bus);
            minimum_to_owned.push(owned / minimum);
            to_minimum.push(minimum / bus);
        }
        let median = |ratios: &mut Vec<f64>| {
            ratios.sort_by(f64::total_cmp);
            ratios[ratios.len() / 2]
        };
        eprintln!(
            "interleaved/{flavor}/{subscriptions}: bus throughput / mpsc_owned_envelope {:.3}x, / mpsc_baseline (Arc<E>) {:.3}x, / contract_minimum {:.3}x; contract_minimum / mpsc_owned_envelope {:.3}x",
            median(&mut to_owned),
            median(&mut to_arc),
            median(&mut to_minimum),
            median(&mut minimum_to_owned)
        );
    }
}

fn bench(c: &mut Criterion) {
    let runtimes = [
        (
            "current_thread",
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
        ),
        (
            "multi_thread_2",
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime"),
        ),
    ];
    for (flavor, runtime) in &runtimes {
        // Not in `cargo test`'s single smoke run of each bench: only under `cargo bench`.
        if measuring() {
            report_latency(runtime, flavor);
            report_interleaved(runtime, flavor);
        }
        let mut group = c.benchmark_group(format!("bus_fanout/{flavor}"));
        group
            .throughput(Throughput::Elements(EVENTS))
            .sample_size(20)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(4));
        for subscriptions in [1_u64, 10] {
            group.bench_with_input(
                BenchmarkId::new("event_bus", subscriptions),
                &subscriptions,
                |b, &subs| b.iter_custom(|iters| run(runtime, iters, move || through_bus(subs))),
            );
            group.bench_with_input(
                BenchmarkId::new("mpsc_baseline", subscriptions),
                &subscriptions,
                |b, &subs| {
                    b.iter_custom(|iters| run(runtime, iters, move || through_arc_channels(subs)));
                },
            );
            group.bench_with_input(
                BenchmarkId::new("mpsc_owned_envelope", subscriptions),
                &subscriptions,
                |b, &subs| {
                    b.iter_custom(|iters| {
                        run(runtime, iters, move || {
                            through_owned_envelope_channels(subs)
                        })
                    });
                },
            );
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
