//! The bus on NATS JetStream against raw async-nats calls writing the same bytes, on a
//! `nats-server` this benchmark starts itself (`tests::nats_server`: loopback, a free port,
//! JetStream with file storage, which writes each message before acknowledging it and
//! fsyncs on the server's own schedule).
//!
//! Every row runs its two contenders in alternation, `ROUNDS` times, each round on a fresh
//! prefix (its streams, consumers and lease bucket deleted after it, outside the timed part),
//! and prints the median of the per-round throughput ratios (bus ÷ raw, higher is better):
//! load from other work on this shared machine then hits both sides alike.
//!
//! Both sides publish the same message to the same subject of a stream of the same
//! configuration: subject `{prefix}.main.{shard}` of stream `{prefix}__main` (8 shard
//! subjects, file storage, a two-minute duplicate window), the canonical JSON as payload,
//! the envelope id as `Nats-Msg-Id`, the type as `Event-Type`, the JSON encoded inside the
//! timed part on both sides. Each side first publishes one event outside the timed part, so
//! that the bus's stream exists (it creates it on its first publish) and both connections
//! have their reply subscription.
//!
//! - `publish/sequential`: one task awaiting each `bus.publish` (a bus with the transport and
//!   no subscription) against one `send_publish` at a time, its acknowledgement awaited.
//! - `publish/100_in_flight`: 100 `bus.publish` futures joined, then the next 100, against
//!   100 `send_publish`es, then their 100 acknowledgements awaited, then the next 100.
//! - `end_to_end/1_consumer`, `end_to_end/4_consumers`: publish → handler, from the first
//!   publish until every event was handled once, with 1 and 4 members of one group (each its
//!   own bus and connection, as separate processes would be; in this process) against a raw
//!   loop: the same sequential publishes, and 1 durable pull consumer (or 4, each filtering
//!   the shard subjects the bus's member of that index owns) pulling up to 100 at a time
//!   and acknowledging each message. The pull waits up to 100 ms for messages
//!   (`batch().max_messages(100).expires(..)`, the `XREADGROUP COUNT 100 BLOCK 100` of the
//!   Redis bench); `BENCH_RAW_PULL=fetch` pulls with `fetch()` instead, which never waits, so
//!   an idle consumer asks again at once. The raw acknowledgement is a plain `ack` (sent,
//!   not confirmed); the transport's is confirmed by the server (`+ACK` as a request on the
//!   acknowledgement subject, which fails with "no responders" once a new owner deleted
//!   the consumer): `BENCH_RAW_ACK=request` has the raw loop acknowledge the same way, one
//!   message after another, and `BENCH_RAW_ACK=double` with the client's `double_ack`.
//! - latency: one event at a time, publish → handler, p50 and p99, bus and raw (publish,
//!   its acknowledgement, a `fetch` and the `ack` of what it brought).
//!
//! Each row also prints the CPU time per event that this process (publisher and consumers
//! of both sides run here) and the server spent during the timed part, from
//! `/proc/{pid}/stat` (10 ms ticks: 5 µs per event at 2,000 events).
//!
//! Run: `NATS_SERVER=/path/to/nats-server cargo bench -p tests --bench nats_transport`
//! (about a minute plus the build; `cargo test -p tests --bench nats_transport` is a
//! one-round smoke run of 100 events).

// Counts of a benchmark run are far below 2^52: converting them to f64 for a ratio is exact.
#![allow(clippy::cast_precision_loss)]

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};
use event_core::transport::{NatsTransport, StartFrom, shard_of};
use event_core::{DomainEvent, Envelope, EventBus, RawEnvelope, SubscriptionOptions};
use futures_util::StreamExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tests::nats_server::NatsServer;
use tokio::sync::Notify;

/// Rounds per row: more than the Redis bench's 5, since single rounds of one row here
/// spread from about 0.45× to 1.8×.
const ROUNDS: usize = 9;
/// Events per round (fewer in the smoke run of `cargo test --benches`).
static EVENTS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

fn events() -> u64 {
    *EVENTS.get().unwrap_or(&2_000)
}
/// Shards of the bus's topic.
const SHARDS: u32 = 8;
/// Publishes in flight at once in `publish/100_in_flight`.
const IN_FLIGHT: usize = 100;
/// The header that carries the event type, as the transport writes it.
const TYPE_HEADER: &str = "Event-Type";

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

/// A prefix of letters, digits and `-` only, which the transport's names keep as they are:
/// the raw side can then spell the same stream and subjects.
fn fresh_prefix(row: &str) -> String {
    format!("bench-{row}-{}", fastrand::u64(..))
}

/// How the raw consumer loops pull and acknowledge (`BENCH_RAW_PULL`, `BENCH_RAW_ACK`).
#[derive(Debug, Clone, Copy)]
struct RawMode {
    /// `fetch()`, which answers at once, rather than a pull that waits up to 100 ms.
    fetch: bool,
    ack: Ack,
}

/// How the raw side acknowledges a message.
#[derive(Debug, Clone, Copy)]
enum Ack {
    /// `ack`: `+ACK` published, not confirmed.
    Plain,
    /// `double_ack`: a subscription of its own on a new inbox for each acknowledgement
    /// (`SUB`, `PUB` with that inbox as reply, `UNSUB`), the server's answer awaited.
    Double,
    /// `+ACK` as a request on the client's shared reply subscription (one `PUB`), its answer
    /// awaited, as the transport acknowledges.
    Request,
}

impl RawMode {
    fn from_env() -> RawMode {
        let var = |name: &str| std::env::var(name).unwrap_or_default();
        RawMode {
            fetch: var("BENCH_RAW_PULL") == "fetch",
            ack: match var("BENCH_RAW_ACK").as_str() {
                "double" => Ack::Double,
                "request" => Ack::Request,
                _ => Ack::Plain,
            },
        }
    }

    fn describe(self) -> String {
        format!(
            "raw loop pulls with {}, acknowledges with {} \
             (BENCH_RAW_PULL=fetch, BENCH_RAW_ACK=double or request to change)",
            if self.fetch {
                "fetch()"
            } else {
                "batch().expires(100 ms)"
            },
            match self.ack {
                Ack::Plain => "ack",
                Ack::Double => "double_ack",
                Ack::Request => "a request",
            },
        )
    }
}

async fn transport(url: &str, prefix: &str) -> NatsTransport {
    NatsTransport::builder(url)
        .prefix(prefix)
        .shards(SHARDS)
        .lease(Duration::from_secs(2))
        .connect()
        .await
        .expect("connects")
}

async fn raw_context(url: &str) -> jetstream::Context {
    jetstream::new(async_nats::connect(url).await.expect("connects"))
}

fn stream_name(prefix: &str) -> String {
    format!("{prefix}__main")
}

fn subject(prefix: &str, shard: u32) -> String {
    format!("{prefix}.main.{shard}")
}

/// The raw side's stream: the transport's configuration, by hand.
async fn raw_stream(js: &jetstream::Context, prefix: &str) -> stream::Stream {
    js.create_stream(stream::Config {
        name: stream_name(prefix),
        subjects: (0..SHARDS).map(|shard| subject(prefix, shard)).collect(),
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        duplicate_window: Duration::from_secs(120),
        allow_direct: true,
        ..stream::Config::default()
    })
    .await
    .expect("creates the stream")
}

/// The raw side's message for event `n`: what the transport publishes, by hand, with its
/// shard subject.
fn raw_message(prefix: &str, n: u64) -> (String, PublishMessage) {
    let event = order(n);
    let subject = subject(prefix, shard_of(&event.order_id, SHARDS));
    let envelope = Envelope::new(event);
    let json = envelope.to_json().expect("encodes");
    let message = PublishMessage::build()
        .payload(json.into())
        .message_id(envelope.id.to_string())
        .header(TYPE_HEADER, OrderPlaced::NAME);
    (subject, message)
}

/// Publishes event `n` and waits for the server's acknowledgement.
async fn raw_publish(js: &jetstream::Context, prefix: &str, n: u64) {
    let (subject, message) = raw_message(prefix, n);
    js.send_publish(subject, message)
        .await
        .expect("publishes")
        .await
        .expect("acknowledged");
}

/// Deletes what a round left under `prefix` (the topic stream, its dead letters, the lease
/// bucket), so that the server does not carry every round's consumers into the next.
async fn forget(url: &str, prefix: &str) {
    let js = raw_context(url).await;
    let names: Vec<String> = js
        .stream_names()
        .filter_map(|name| async move { name.ok() })
        .collect()
        .await;
    let ours = |name: &&String| {
        name.starts_with(&format!("{prefix}__")) || name.starts_with(&format!("KV_{prefix}__"))
    };
    for name in names.iter().filter(ours) {
        let _ = js.delete_stream(name).await;
    }
}

async fn bus_publish_sequential(url: &str) -> Timed {
    let prefix = fresh_prefix("seq");
    let bus = EventBus::builder()
        .transport(transport(url, &prefix).await)
        .build();
    bus.publish(order(0)).await.expect("publishes");
    let started = Clock::start();
    for n in 0..events() {
        bus.publish(order(n)).await.expect("publishes");
    }
    let elapsed = started.stop();
    bus.shutdown().await;
    forget(url, &prefix).await;
    elapsed
}

async fn raw_publish_sequential(url: &str) -> Timed {
    let prefix = fresh_prefix("raw-seq");
    let js = raw_context(url).await;
    raw_stream(&js, &prefix).await;
    raw_publish(&js, &prefix, 0).await;
    let started = Clock::start();
    for n in 0..events() {
        raw_publish(&js, &prefix, n).await;
    }
    let elapsed = started.stop();
    forget(url, &prefix).await;
    elapsed
}

async fn bus_publish_in_flight(url: &str) -> Timed {
    let prefix = fresh_prefix("flight");
    let bus = EventBus::builder()
        .transport(transport(url, &prefix).await)
        .build();
    bus.publish(order(0)).await.expect("publishes");
    let started = Clock::start();
    for chunk in (0..events()).collect::<Vec<_>>().chunks(IN_FLIGHT) {
        let published =
            futures_util::future::join_all(chunk.iter().map(|&n| bus.publish(order(n)))).await;
        for result in published {
            result.expect("publishes");
        }
    }
    let elapsed = started.stop();
    bus.shutdown().await;
    forget(url, &prefix).await;
    elapsed
}

async fn raw_publish_in_flight(url: &str) -> Timed {
    let prefix = fresh_prefix("raw-flight");
    let js = raw_context(url).await;
    raw_stream(&js, &prefix).await;
    raw_publish(&js, &prefix, 0).await;
    let started = Clock::start();
    for chunk in (0..events()).collect::<Vec<_>>().chunks(IN_FLIGHT) {
        let mut acks = Vec::with_capacity(chunk.len());
        for &n in chunk {
            let (subject, message) = raw_message(&prefix, n);
            acks.push(js.send_publish(subject, message).await.expect("publishes"));
        }
        for ack in acks {
            ack.await.expect("acknowledged");
        }
    }
    let elapsed = started.stop();
    forget(url, &prefix).await;
    elapsed
}

/// The pid of the server, whose CPU time the rows report beside this process's.
static SERVER_PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

/// CPU time (user and system, every thread) of a process so far, from `/proc/{pid}/stat`
/// in clock ticks of 10 ms (Linux's `USER_HZ`); `None` where there is no such file.
fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces:
    // utime and stime are the 14th and 15th fields of the line.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// CPU time of this process and of the server so far.
fn cpu_times() -> Option<(Duration, Duration)> {
    let server = SERVER_PID.get()?.to_string();
    Some((cpu_time("self")?, cpu_time(&server)?))
}

/// The timed part of a contender: wall-clock time, and CPU time spent meanwhile by this
/// process (publisher and consumers: both sides of a row run here) and by the server.
#[derive(Debug, Clone, Copy)]
struct Timed {
    elapsed: Duration,
    cpu: Option<(Duration, Duration)>,
}

struct Clock {
    started: Instant,
    cpu: Option<(Duration, Duration)>,
}

impl Clock {
    fn start() -> Clock {
        Clock {
            cpu: cpu_times(),
            started: Instant::now(),
        }
    }

    fn stop(self) -> Timed {
        let elapsed = self.started.elapsed();
        let cpu = self
            .cpu
            .zip(cpu_times())
            .map(|((client, server), (client_now, server_now))| {
                (
                    client_now.saturating_sub(client),
                    server_now.saturating_sub(server),
                )
            });
        Timed { elapsed, cpu }
    }
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

async fn bus_end_to_end(url: &str, consumers: usize) -> Timed {
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
    let started = Clock::start();
    for n in 0..events() {
        publisher.publish(order(n)).await.expect("publishes");
    }
    done.notify.notified().await;
    let elapsed = started.stop();
    publisher.shutdown().await;
    for bus in members {
        bus.shutdown().await;
    }
    forget(url, &prefix).await;
    elapsed
}

/// A durable pull consumer of the raw stream, reading `filters` (every shard when empty).
async fn raw_consumer(
    stream: &stream::Stream,
    name: &str,
    filters: Vec<String>,
    deliver_policy: DeliverPolicy,
) -> PullConsumer {
    stream
        .create_consumer(pull::Config {
            durable_name: Some(name.to_owned()),
            filter_subjects: filters,
            deliver_policy,
            ack_policy: AckPolicy::Explicit,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 1000,
            ..pull::Config::default()
        })
        .await
        .expect("creates the consumer")
}

/// Acknowledges a message as `mode` says.
async fn raw_ack(message: &jetstream::Message, mode: RawMode) {
    match mode.ack {
        Ack::Plain => message.ack().await.expect("ack"),
        Ack::Double => message.double_ack().await.expect("ack"),
        Ack::Request => {
            let reply = message.reply.clone().expect("a JetStream message");
            message
                .context
                .client()
                .request(reply, "+ACK".into())
                .await
                .expect("ack");
        }
    }
}

/// The raw loop: the transport's stream by hand, `consumers` durable pull consumers (one
/// reading every shard, or each the shards the bus's member of its index would own), each
/// on a connection of its own pulling up to 100 at a time and acknowledging every message;
/// the publisher publishes one at a time, awaiting each acknowledgement.
async fn raw_end_to_end(url: &str, consumers: usize, mode: RawMode) -> Timed {
    let prefix = fresh_prefix("raw-e2e");
    let js = raw_context(url).await;
    let stream = raw_stream(&js, &prefix).await;
    let done = Done::new(events());
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..consumers {
        let filters = if consumers == 1 {
            Vec::new()
        } else {
            (0..SHARDS)
                .filter(|shard| *shard as usize % consumers == c)
                .map(|shard| subject(&prefix, shard))
                .collect()
        };
        // Its own connection, as a member's bus has.
        let own = raw_context(url)
            .await
            .get_stream(stream_name(&prefix))
            .await
            .expect("stream");
        let consumer = raw_consumer(&own, &format!("raw-{c}"), filters, DeliverPolicy::All).await;
        let (done, stop) = (Arc::clone(&done), Arc::clone(&stop));
        tasks.push(tokio::spawn(async move {
            while !stop.load(SeqCst) {
                let batch = if mode.fetch {
                    consumer.fetch().max_messages(100).messages().await
                } else {
                    consumer
                        .batch()
                        .max_messages(100)
                        .expires(Duration::from_millis(100))
                        .messages()
                        .await
                };
                let Ok(mut batch) = batch else {
                    continue;
                };
                while let Some(message) = batch.next().await {
                    let Ok(message) = message else {
                        continue;
                    };
                    std::hint::black_box(
                        RawEnvelope::from_json(&message.payload).expect("decodes"),
                    );
                    raw_ack(&message, mode).await;
                    done.one();
                }
            }
        }));
    }
    drop(stream);
    let started = Clock::start();
    for n in 0..events() {
        raw_publish(&js, &prefix, n).await;
    }
    done.notify.notified().await;
    let elapsed = started.stop();
    stop.store(true, SeqCst);
    for task in tasks {
        task.await.expect("consumer");
    }
    forget(url, &prefix).await;
    elapsed
}

/// Publish → handler latency, one event at a time: the bus with one member, and the raw
/// loop with one consumer. Returns (p50, p99) of each.
async fn latencies(url: &str, mode: RawMode) -> ((Duration, Duration), (Duration, Duration)) {
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
    forget(url, &prefix).await;

    let raw_prefix = fresh_prefix("raw-lat");
    let js = raw_context(url).await;
    let stream = raw_stream(&js, &raw_prefix).await;
    let reader = raw_context(url)
        .await
        .get_stream(stream_name(&raw_prefix))
        .await
        .expect("stream");
    let consumer = raw_consumer(&reader, "raw", Vec::new(), DeliverPolicy::New).await;
    drop(stream);
    let mut raw = Vec::with_capacity(samples);
    for n in 0..samples as u64 {
        let started = Instant::now();
        raw_publish(&js, &raw_prefix, n).await;
        let mut got = 0;
        while got == 0 {
            let mut batch = consumer
                .fetch()
                .max_messages(100)
                .messages()
                .await
                .expect("fetch");
            while let Some(message) = batch.next().await {
                let message = message.expect("message");
                raw_ack(&message, mode).await;
                got += 1;
            }
        }
        raw.push(started.elapsed());
    }
    forget(url, &raw_prefix).await;
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

/// The median time per event, in microseconds, of one side's rounds.
fn per_event(times: impl Iterator<Item = Duration>) -> f64 {
    median(
        times
            .map(|time| time.as_secs_f64() * 1e6 / events() as f64)
            .collect(),
    )
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
    let server = NatsServer::start().expect("starts nats-server");
    let url = server.url();
    if let Ok(pid) = std::fs::read_to_string(server.root().join("server.pid")) {
        let _ = SERVER_PID.set(pid.trim().parse().expect("a pid"));
    }
    let mode = RawMode::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        println!("nats_transport: {}", mode.describe());
        // Per row, each round's (bus, raw) times.
        let mut sequential = Vec::new();
        let mut in_flight = Vec::new();
        let mut one = Vec::new();
        let mut four = Vec::new();
        for _ in 0..rounds {
            sequential.push((
                bus_publish_sequential(&url).await,
                raw_publish_sequential(&url).await,
            ));
            in_flight.push((
                bus_publish_in_flight(&url).await,
                raw_publish_in_flight(&url).await,
            ));
            one.push((
                bus_end_to_end(&url, 1).await,
                raw_end_to_end(&url, 1, mode).await,
            ));
            four.push((
                bus_end_to_end(&url, 4).await,
                raw_end_to_end(&url, 4, mode).await,
            ));
        }
        let rows = [
            ("publish/sequential (bus / raw send_publish)", sequential),
            (
                "publish/100_in_flight (bus / raw 100 send_publish, then their acks)",
                in_flight,
            ),
            ("end_to_end/1_consumer (bus / raw pull loop)", one),
            ("end_to_end/4_consumers (bus / raw pull loop)", four),
        ];
        for (row, times) in rows {
            let ratios: Vec<f64> = times
                .iter()
                .map(|(bus, raw)| raw.elapsed.as_secs_f64() / bus.elapsed.as_secs_f64())
                .collect();
            println!(
                "nats_transport/{row}: throughput ratio {:.3}x (median of {rounds}: {}); \
                 median per event: bus {:.1} us, raw {:.1} us",
                median(ratios.clone()),
                ratios
                    .iter()
                    .map(|r| format!("{r:.3}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                per_event(times.iter().map(|t| t.0.elapsed)),
                per_event(times.iter().map(|t| t.1.elapsed)),
            );
            let cpu = |side: fn(&(Timed, Timed)) -> Timed| {
                let cpu: Option<Vec<(Duration, Duration)>> =
                    times.iter().map(|t| side(t).cpu).collect();
                cpu.map(|cpu| {
                    (
                        per_event(cpu.iter().map(|c| c.0)),
                        per_event(cpu.iter().map(|c| c.1)),
                    )
                })
            };
            if let (Some(bus), Some(raw)) = (cpu(|t| t.0), cpu(|t| t.1)) {
                println!(
                    "nats_transport/{row}: CPU per event (median): bus {:.1} us here + {:.1} us \
                     server, raw {:.1} us here + {:.1} us server",
                    bus.0, bus.1, raw.0, raw.1
                );
            }
        }
        let ((bus50, bus99), (raw50, raw99)) = latencies(&url, mode).await;
        println!(
            "nats_transport/latency publish -> handler: bus p50 {bus50:?} p99 {bus99:?}; raw publish + fetch + ack p50 {raw50:?} p99 {raw99:?}"
        );
    });
}
