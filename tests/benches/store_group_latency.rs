//! Cross-process publish → handler latency on PostgreSQL with consumer groups, with and
//! without `LISTEN`/`NOTIFY`, on a server this benchmark starts itself
//! (`tests::postgres_server`: loopback, a free port, `fsync` on).
//!
//! Every row runs in a fresh database, with a publisher bus on a `PostgresStore` connection
//! of its own and no subscription ("another process"), and a consumer bus on another
//! `PostgresStore` connection with `consumer_groups` (8 shards, 2 s leases) and the default
//! 100 ms poll interval, subscribed with one handler that records when it gets each event.
//! Before measuring, the benchmark waits (on a third connection) until the consumer holds
//! all 8 shard leases, then 500 ms more. Events go one at a time: publish, wait for the
//! handler, record the time from just before `publish` to the handler's receipt, then sleep
//! a random 0–100 ms (a whole poll interval) so that publishes land anywhere between two
//! polls, as another process's would.
//!
//! - `notify`: the consumer's store as connected: its bus `LISTEN`s, and each append's
//!   `NOTIFY` wakes its pumps.
//! - `poll only`: the consumer's store `.without_listen()`: its pumps find the publisher's
//!   events at their next poll.
//! - `raw LISTEN/NOTIFY`: the floor, raw tokio-postgres on two connections: B commits
//!   `INSERT INTO pings ...; NOTIFY pinged` in one transaction, A (`LISTEN pinged`) waits
//!   for the notification; timed from just before B's transaction to A's receipt.
//!
//! The rows alternate in `ROUNDS` rounds (notify, poll only, raw, notify, ...), each row's
//! samples pooled over the rounds. Printed per row: samples, p50, p90, p99 and max in
//! milliseconds, and the ratios of the p50s.
//!
//! Absolute times on a shared 2-core machine are noise: the ratios and the shapes of the
//! quantiles are what counts (`poll only` should sit near half the poll interval at p50 and
//! near the whole interval at p90+; `notify` near the raw floor).
//!
//! Run: `cargo bench -p tests --bench store_group_latency` (about a minute plus the build).
//! `cargo test --benches` runs it as a short smoke run.

use event_core::store::tokio_postgres::{self, AsyncMessage, NoTls};
use event_core::store::{PostgresStore, Store};
use event_core::{DomainEvent, EventBus, StoreGroups};
use futures_util::StreamExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tests::postgres_server::PostgresServer;
use tokio::sync::mpsc;

/// Rounds of the rows, alternated.
const ROUNDS: usize = 2;
/// Events per row and round (fewer in the smoke run of `cargo test --benches`).
static EVENTS: OnceLock<u64> = OnceLock::new();

fn events() -> u64 {
    *EVENTS.get().unwrap_or(&200)
}

/// Shards of the consumer group.
const SHARDS: usize = 8;
/// The subscription's (and so the consumer group's) name.
const SUBSCRIPTION: &str = "latency";
/// The consumer bus's poll interval: the default.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How long one event may take before the benchmark gives up.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "bench.latency.pinged", version = 1)]
struct Pinged {
    #[event(partition_key)]
    key: String,
    seq: u64,
}

/// A random pause of 0–100 ms (a whole poll interval) between events.
async fn jitter() {
    tokio::time::sleep(Duration::from_micros(fastrand::u64(0..=100_000))).await;
}

/// Waits until `SHARDS` leases of the group are held, then 500 ms more.
async fn wait_for_shards(url: &str) {
    let observer = PostgresStore::connect(url)
        .await
        .expect("observer connects");
    let prefix = format!("group/{SUBSCRIPTION}/shard/");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let held = observer.leases(&prefix).await.expect("lists leases").len();
        if held == SHARDS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the consumer holds {held} of {SHARDS} shards after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// One row of the bus: `events()` latencies, publish → handler, across two connections.
async fn bus_latencies(server: &PostgresServer, listen: bool) -> Vec<Duration> {
    let url = server.create_database();
    let publisher = EventBus::builder()
        .store(
            PostgresStore::connect(&url)
                .await
                .expect("publisher connects"),
        )
        .consumer_name("publisher")
        .build();
    let consumer_store = PostgresStore::connect(&url)
        .await
        .expect("consumer connects");
    let consumer_store = if listen {
        consumer_store
    } else {
        consumer_store.without_listen()
    };
    let consumer = EventBus::builder()
        .store(consumer_store)
        .poll_interval(POLL_INTERVAL)
        .consumer_groups(StoreGroups::new().shards(8).lease(Duration::from_secs(2)))
        .consumer_name("consumer")
        .build();
    let (tx, mut rx) = mpsc::unbounded_channel::<(u64, Instant)>();
    consumer
        .subscribe_event::<Pinged, _, _>(SUBSCRIPTION, move |envelope| {
            let _ = tx.send((envelope.payload.seq, Instant::now()));
            async { Ok(()) }
        })
        .expect("subscribes");
    wait_for_shards(&url).await;

    let mut samples = Vec::new();
    for seq in 0..events() {
        let event = Pinged {
            key: format!("k-{seq}"),
            seq,
        };
        let sent = Instant::now();
        publisher.publish(event).await.expect("publishes");
        let (got, at) = tokio::time::timeout(EVENT_TIMEOUT, rx.recv())
            .await
            .expect("handled in time")
            .expect("handler alive");
        assert_eq!(got, seq, "events arrive one at a time, in order");
        samples.push(at - sent);
        jitter().await;
    }
    publisher.shutdown().await;
    consumer.shutdown().await;
    samples
}

/// The floor: raw `INSERT; NOTIFY` committed on one connection, the notification received
/// on another that `LISTEN`s.
async fn raw_latencies(server: &PostgresServer) -> Vec<Duration> {
    let url = server.create_database();
    let (listener, mut connection) = tokio_postgres::connect(&url, NoTls)
        .await
        .expect("listener connects");
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, Instant)>();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(notification)) => {
                    let _ = tx.send((notification.payload().to_owned(), Instant::now()));
                }
                Ok(_) => {}
                Err(error) => panic!("listening connection failed: {error}"),
            }
        }
    });
    listener
        .batch_execute("LISTEN pinged")
        .await
        .expect("LISTEN");

    let (mut writer, connection) = tokio_postgres::connect(&url, NoTls)
        .await
        .expect("writer connects");
    let writer_driver = tokio::spawn(connection);
    writer
        .batch_execute(
            "CREATE TABLE pings (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
             seq BIGINT NOT NULL, sent_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await
        .expect("creates the table");
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut samples = Vec::new();
    for seq in 0..events() {
        let seq_sql = i64::try_from(seq).expect("small");
        let sent = Instant::now();
        let transaction = writer.transaction().await.expect("BEGIN");
        transaction
            .execute("INSERT INTO pings (seq) VALUES ($1)", &[&seq_sql])
            .await
            .expect("INSERT");
        transaction
            .execute("SELECT pg_notify('pinged', $1)", &[&seq.to_string()])
            .await
            .expect("NOTIFY");
        transaction.commit().await.expect("COMMIT");
        let (got, at) = tokio::time::timeout(EVENT_TIMEOUT, rx.recv())
            .await
            .expect("notified in time")
            .expect("listener alive");
        assert_eq!(got, seq.to_string(), "notifications arrive one at a time");
        samples.push(at - sent);
        jitter().await;
    }
    drop(writer);
    drop(listener);
    let _ = writer_driver.await;
    let _ = driver.await;
    samples
}

/// The `p`th percentile (nearest rank) of sorted `samples`.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

/// Prints one row, returns its p50.
fn report(row: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    let p50 = percentile(&samples, 50);
    println!(
        "{row:<18} {:>7} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
        samples.len(),
        millis(p50),
        millis(percentile(&samples, 90)),
        millis(percentile(&samples, 99)),
        millis(*samples.last().expect("samples")),
    );
    p50
}

fn main() {
    // `cargo test --benches` runs every bench binary once: keep that to a smoke run.
    let smoke = !std::env::args().any(|arg| arg == "--bench");
    if smoke {
        EVENTS.set(20).expect("set once");
    }
    let server = PostgresServer::start().expect("starts PostgreSQL");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut notify = Vec::new();
        let mut poll = Vec::new();
        let mut raw = Vec::new();
        for _ in 0..ROUNDS {
            notify.extend(bus_latencies(&server, true).await);
            poll.extend(bus_latencies(&server, false).await);
            raw.extend(raw_latencies(&server).await);
        }
        println!(
            "store_group_latency: publish -> handler across two connections, 8 shards, \
             poll interval {POLL_INTERVAL:?} ({ROUNDS} rounds of {} events per row)",
            events()
        );
        println!(
            "{:<18} {:>7} {:>9} {:>9} {:>9} {:>9}",
            "row", "samples", "p50 ms", "p90 ms", "p99 ms", "max ms"
        );
        let notify50 = report("notify", notify);
        let poll50 = report("poll only", poll);
        let raw50 = report("raw LISTEN/NOTIFY", raw);
        println!(
            "p50 ratio poll only / notify: {:.2}x; notify / raw LISTEN/NOTIFY: {:.2}x",
            poll50.as_secs_f64() / notify50.as_secs_f64(),
            notify50.as_secs_f64() / raw50.as_secs_f64()
        );
    });
}
