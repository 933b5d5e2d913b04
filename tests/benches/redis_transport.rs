//! The bus on Redis Streams against raw redis-rs commands writing the same bytes, on a
//! `redis-server` this benchmark starts itself (`tests::redis_server`: loopback, a free port,
//! `appendonly yes`), switched to `appendfsync everysec` for the run (`BENCH_APPENDFSYNC=always`
//! keeps every write's fsync, whose time on a shared disk swamps the comparison).
//!
//! Every row runs its two contenders in alternation, `ROUNDS` times, each round on fresh
//! streams, and prints the median of the per-round throughput ratios (bus ÷ raw, higher is
//! better): load from other work on this shared machine then hits both sides alike.
//!
//! - `publish/sequential`: one task awaiting each `bus.publish` (a bus with the transport and
//!   no subscription) against one `XADD` awaited at a time, of the same fields (`id`,
//!   `type`, the canonical JSON as `envelope`) to the same shard stream, the JSON encoded
//!   inside the timed part on both sides.
//! - `publish/16_concurrent`: 16 tasks publishing at once against `XADD`s pipelined 16 deep.
//! - `end_to_end/1_consumer`, `end_to_end/4_consumers`: publish → handler, from the first
//!   publish until every event was handled once, with 1 and 4 members of one group (each its
//!   own bus, as separate processes would be; in this process) against a raw loop of `XADD`
//!   and consumers doing `XREADGROUP COUNT 100` + `XACK` on one stream.
//! - latency: one event at a time, publish → handler, p50 and p99, bus and raw.
//!
//! Run: `cargo bench -p tests --bench redis_transport` (about a minute plus the build).

// Counts of a benchmark run are far below 2^52: converting them to f64 for a ratio is exact.
#![allow(clippy::cast_precision_loss)]

use event_core::transport::{RedisTransport, StartFrom, shard_of};
use event_core::{DomainEvent, Envelope, EventBus, SubscriptionOptions};
use redis::aio::MultiplexedConnection;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tests::redis_server::RedisServer;
use tokio::sync::Notify;

/// Rounds per row.
const ROUNDS: usize = 5;
/// Events per round (fewer in the smoke run of `cargo test --benches`).
static EVENTS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

fn events() -> u64 {
    *EVENTS.get().unwrap_or(&2_000)
}
/// Shards of the bus's topic.
const SHARDS: u32 = 8;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "bench.order.placed", version = 1, source = "bench")]
struct OrderPlaced {
    #[event(partition_key)]
    order_id: String,
    customer: String,
    amount_cents: u64,
}

fn order(n: u64) -> OrderPlaced {
    OrderPlaced {
        order_id: format!("o-{}", n % 64),
        customer: format!("customer-{n}"),
        amount_cents: n * 100,
    }
}

fn fresh_prefix(row: &str) -> String {
    format!("bench-{row}-{}", fastrand::u64(..))
}

async fn transport(url: &str, prefix: &str) -> RedisTransport {
    RedisTransport::builder(url)
        .prefix(prefix)
        .shards(SHARDS)
        .lease(Duration::from_secs(2))
        .connect()
        .await
        .expect("connects")
}

async fn raw_connection(url: &str) -> MultiplexedConnection {
    redis::Client::open(url)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connects")
}

/// The raw side's command for event `n`: what the transport writes, by hand, to `stream`
/// (the event's shard stream when `None`).
fn raw_xadd(prefix: &str, n: u64, stream: Option<&str>) -> redis::Cmd {
    let event = order(n);
    let key = stream.map_or_else(
        || format!("{prefix}:main:{}", shard_of(&event.order_id, SHARDS)),
        str::to_owned,
    );
    let envelope = Envelope::new(event);
    let json = envelope.to_json().expect("encodes");
    let mut cmd = redis::cmd("XADD");
    cmd.arg(key)
        .arg("*")
        .arg("id")
        .arg(envelope.id.to_string())
        .arg("type")
        .arg(OrderPlaced::NAME)
        .arg("envelope")
        .arg(json);
    cmd
}

async fn bus_publish_sequential(url: &str) -> Duration {
    let bus = EventBus::builder()
        .transport(transport(url, &fresh_prefix("seq")).await)
        .build();
    let started = Instant::now();
    for n in 0..events() {
        bus.publish(order(n)).await.expect("publishes");
    }
    let elapsed = started.elapsed();
    bus.shutdown().await;
    elapsed
}

async fn raw_publish_sequential(url: &str) -> Duration {
    let mut conn = raw_connection(url).await;
    let prefix = fresh_prefix("raw-seq");
    let started = Instant::now();
    for n in 0..events() {
        let _: String = raw_xadd(&prefix, n, None)
            .query_async(&mut conn)
            .await
            .expect("XADD");
    }
    started.elapsed()
}

async fn bus_publish_concurrent(url: &str) -> Duration {
    let bus = EventBus::builder()
        .transport(transport(url, &fresh_prefix("conc")).await)
        .build();
    let started = Instant::now();
    let tasks: Vec<_> = (0..16)
        .map(|task| {
            let bus = bus.clone();
            tokio::spawn(async move {
                for n in (task..events()).step_by(16) {
                    bus.publish(order(n)).await.expect("publishes");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("publisher");
    }
    let elapsed = started.elapsed();
    bus.shutdown().await;
    elapsed
}

async fn raw_publish_pipelined(url: &str) -> Duration {
    let mut conn = raw_connection(url).await;
    let prefix = fresh_prefix("raw-pipe");
    let started = Instant::now();
    for chunk in (0..events()).collect::<Vec<_>>().chunks(16) {
        let mut pipe = redis::pipe();
        for &n in chunk {
            pipe.add_command(raw_xadd(&prefix, n, None));
        }
        let _: Vec<String> = pipe.query_async(&mut conn).await.expect("pipeline");
    }
    started.elapsed()
}

/// Counts handled events and wakes the publisher at the total.
struct Done {
    handled: AtomicU64,
    target: u64,
    notify: Notify,
}

impl Done {
    fn new(target: u64) -> Arc<Self> {
        Arc::new(Done {
            handled: AtomicU64::new(0),
            target,
            notify: Notify::new(),
        })
    }

    fn one(&self) {
        if self.handled.fetch_add(1, SeqCst) + 1 == self.target {
            self.notify.notify_one();
        }
    }
}

/// Waits until every consumer bus owns its share of the shards.
async fn balanced(bus: &EventBus, consumers: usize) {
    let started = Instant::now();
    loop {
        let info = bus
            .transport_info()
            .await
            .expect("info")
            .expect("transport");
        let owners = info
            .topics
            .iter()
            .flat_map(|t| t.groups.iter())
            .filter(|g| g.group == "bench")
            .flat_map(|g| g.consumers.iter())
            .filter(|c| c.shards.len() == SHARDS as usize / consumers)
            .count();
        if owners == consumers {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never balanced"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn bus_end_to_end(url: &str, consumers: usize) -> Duration {
    let prefix = fresh_prefix("e2e");
    let done = Done::new(events());
    let mut members = Vec::new();
    for c in 0..consumers {
        let bus = EventBus::builder()
            .transport(transport(url, &prefix).await)
            .consumer_name(format!("member-{c}"))
            .build();
        let done = Arc::clone(&done);
        bus.subscribe_with::<OrderPlaced, _, _>(
            "bench",
            &SubscriptionOptions::new()
                .concurrency(4)
                .start_from(StartFrom::Beginning),
            move |env| {
                std::hint::black_box(env.payload.amount_cents);
                done.one();
                async { Ok(()) }
            },
        )
        .expect("subscribes");
        members.push(bus);
    }
    balanced(&members[0], consumers).await;
    let publisher = EventBus::builder()
        .transport(transport(url, &prefix).await)
        .build();
    let started = Instant::now();
    for n in 0..events() {
        publisher.publish(order(n)).await.expect("publishes");
    }
    done.notify.notified().await;
    let elapsed = started.elapsed();
    publisher.shutdown().await;
    for bus in members {
        bus.shutdown().await;
    }
    elapsed
}

/// The raw loop: one stream, one group, `consumers` tasks reading 100 at a time and
/// acknowledging each batch; the publisher `XADD`s one at a time.
async fn raw_end_to_end(url: &str, consumers: usize) -> Duration {
    let prefix = fresh_prefix("raw-e2e");
    let stream = format!("{prefix}:main:0");
    let mut conn = raw_connection(url).await;
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg("bench")
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut conn)
        .await
        .expect("group");
    let done = Done::new(events());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..consumers {
        let mut reader = raw_connection(url).await;
        let mut acker = raw_connection(url).await;
        let (stream, done, stop) = (stream.clone(), Arc::clone(&done), Arc::clone(&stop));
        tasks.push(tokio::spawn(async move {
            while !stop.load(SeqCst) {
                let reply: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg("bench")
                    .arg(format!("raw-{c}"))
                    .arg("COUNT")
                    .arg(100)
                    .arg("BLOCK")
                    .arg(100)
                    .arg("STREAMS")
                    .arg(&stream)
                    .arg(">")
                    .query_async(&mut reader)
                    .await
                    .unwrap_or_default();
                let ids: Vec<String> = reply
                    .keys
                    .iter()
                    .flat_map(|k| k.ids.iter())
                    .map(|entry| {
                        let json: String = entry.get("envelope").expect("envelope");
                        std::hint::black_box(
                            event_core::RawEnvelope::from_json(json.as_bytes()).expect("decodes"),
                        );
                        entry.id.clone()
                    })
                    .collect();
                if ids.is_empty() {
                    continue;
                }
                let _: u64 = redis::cmd("XACK")
                    .arg(&stream)
                    .arg("bench")
                    .arg(&ids)
                    .query_async(&mut acker)
                    .await
                    .expect("XACK");
                for _ in &ids {
                    done.one();
                }
            }
        }));
    }
    let started = Instant::now();
    for n in 0..events() {
        let cmd = raw_xadd(&prefix, n, Some(&stream));
        let _: String = cmd.query_async(&mut conn).await.expect("XADD");
    }
    done.notify.notified().await;
    let elapsed = started.elapsed();
    stop.store(true, SeqCst);
    for task in tasks {
        task.await.expect("consumer");
    }
    elapsed
}

/// Publish → handler latency, one event at a time: the bus with one member, and the raw
/// loop with one consumer. Returns (p50, p99) of each.
async fn latencies(url: &str) -> ((Duration, Duration), (Duration, Duration)) {
    let samples: usize = if events() < 1_000 { 20 } else { 500 };
    let prefix = fresh_prefix("lat");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let member = EventBus::builder()
        .transport(transport(url, &prefix).await)
        .consumer_name("lat")
        .build();
    let sent = Arc::new(Mutex::new(Instant::now()));
    {
        let sent = Arc::clone(&sent);
        member
            .subscribe_with::<OrderPlaced, _, _>(
                "bench",
                &SubscriptionOptions::new().start_from(StartFrom::Beginning),
                move |_| {
                    let _ = tx.send(*sent.lock().unwrap());
                    async { Ok(()) }
                },
            )
            .expect("subscribes");
    }
    balanced(&member, 1).await;
    let publisher = EventBus::builder()
        .transport(transport(url, &prefix).await)
        .build();
    let mut bus = Vec::with_capacity(samples);
    for n in 0..samples as u64 {
        *sent.lock().unwrap() = Instant::now();
        publisher.publish(order(n)).await.expect("publishes");
        let at = rx.recv().await.expect("handled");
        bus.push(at.elapsed());
    }
    publisher.shutdown().await;
    member.shutdown().await;

    let raw_prefix = fresh_prefix("raw-lat");
    let stream = format!("{raw_prefix}:main:0");
    let mut conn = raw_connection(url).await;
    let mut reader = raw_connection(url).await;
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg("bench")
        .arg("$")
        .arg("MKSTREAM")
        .query_async(&mut conn)
        .await
        .expect("group");
    let mut raw = Vec::with_capacity(samples);
    for n in 0..samples as u64 {
        let started = Instant::now();
        let event = order(n);
        let json = Envelope::new(event).to_json().expect("encodes");
        let _: String = redis::cmd("XADD")
            .arg(&stream)
            .arg("*")
            .arg("envelope")
            .arg(json)
            .query_async(&mut conn)
            .await
            .expect("XADD");
        let reply: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("bench")
            .arg("raw")
            .arg("COUNT")
            .arg(100)
            .arg("BLOCK")
            .arg(1000)
            .arg("STREAMS")
            .arg(&stream)
            .arg(">")
            .query_async(&mut reader)
            .await
            .expect("XREADGROUP");
        let ids: Vec<String> = reply
            .keys
            .iter()
            .flat_map(|k| k.ids.iter().map(|e| e.id.clone()))
            .collect();
        let _: u64 = redis::cmd("XACK")
            .arg(&stream)
            .arg("bench")
            .arg(&ids)
            .query_async(&mut conn)
            .await
            .expect("XACK");
        raw.push(started.elapsed());
    }
    (percentiles(&mut bus), percentiles(&mut raw))
}

fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let at = |p: f64| {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
        samples[index]
    };
    (at(0.50), at(0.99))
}

fn median(mut ratios: Vec<f64>) -> f64 {
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
}

fn main() {
    // `cargo test --benches` runs every bench binary once: keep that to a smoke run.
    let smoke = !std::env::args().any(|arg| arg == "--bench");
    let rounds = if smoke { 1 } else { ROUNDS };
    if smoke {
        EVENTS.set(100).expect("set once");
    }
    let server = RedisServer::start().expect("starts redis-server");
    let url = server.url();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        // With `appendfsync always` each write waits for an fsync, whose time on a shared
        // disk varies more than what is measured (rounds swung 0.4× to 1.5×): the rows
        // compare the two clients' paths with the disk out of the way.
        let fsync = std::env::var("BENCH_APPENDFSYNC").unwrap_or_else(|_| "everysec".to_owned());
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("appendfsync")
            .arg(&fsync)
            .query_async(&mut raw_connection(&url).await)
            .await
            .expect("sets appendfsync");
        println!("redis_transport: appendfsync {fsync} (BENCH_APPENDFSYNC=always to change)");
        let mut rows: Vec<(&str, Vec<f64>)> = Vec::new();
        let mut sequential = Vec::new();
        let mut concurrent = Vec::new();
        let mut one = Vec::new();
        let mut four = Vec::new();
        for _ in 0..rounds {
            let bus = bus_publish_sequential(&url).await;
            let raw = raw_publish_sequential(&url).await;
            sequential.push(raw.as_secs_f64() / bus.as_secs_f64());
            let bus = bus_publish_concurrent(&url).await;
            let raw = raw_publish_pipelined(&url).await;
            concurrent.push(raw.as_secs_f64() / bus.as_secs_f64());
            let bus = bus_end_to_end(&url, 1).await;
            let raw = raw_end_to_end(&url, 1).await;
            one.push(raw.as_secs_f64() / bus.as_secs_f64());
            let bus = bus_end_to_end(&url, 4).await;
            let raw = raw_end_to_end(&url, 4).await;
            four.push(raw.as_secs_f64() / bus.as_secs_f64());
        }
        rows.push(("publish/sequential (bus / raw XADD)", sequential));
        rows.push((
            "publish/16_concurrent (bus / raw XADD pipelined 16 deep)",
            concurrent,
        ));
        rows.push(("end_to_end/1_consumer (bus / raw loop)", one));
        rows.push(("end_to_end/4_consumers (bus / raw loop)", four));
        for (row, ratios) in rows {
            println!(
                "redis_transport/{row}: throughput ratio {:.3}x (median of {rounds}: {})",
                median(ratios.clone()),
                ratios
                    .iter()
                    .map(|r| format!("{r:.3}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let ((bus50, bus99), (raw50, raw99)) = latencies(&url).await;
        println!(
            "redis_transport/latency publish -> handler: bus p50 {bus50:?} p99 {bus99:?}; raw XADD + XREADGROUP + XACK p50 {raw50:?} p99 {raw99:?}"
        );
    });
}
