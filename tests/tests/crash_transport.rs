//! Crash safety of the transports, with real processes and SIGKILL: three scenarios, one
//! after another, on Redis Streams and then on NATS JetStream, each on a server of its own
//! (`tests::redis_server`: append-only file, fsynced on every write; `tests::nats_server`:
//! JetStream's file storage, written before each acknowledgement):
//!
//! 1. **Workers killed.** Three worker processes form the consumer group `projection` over
//!    8 shards. The parent publishes events over 50 keys, each with a per-key sequence
//!    number, while it SIGKILLs a random worker every few hundred milliseconds and starts a
//!    new one (a new member name) at once. Each worker appends one line per handled event to
//!    its own log file. Checks: no acknowledged publish is lost; per key, in all the logs
//!    merged by time, no event is handled for the first time after a later event of its key
//!    (what a killed worker held unacknowledged comes again: duplicates, counted).
//! 2. **The server killed.** Two workers; the parent publishes on while the server is
//!    killed (SIGKILL) and restarted a second later. Publishes while it is down fail with
//!    `PublishError::Transport`; none returns `Ok` while it is down; every publish that
//!    returned `Ok` is handled; order per key holds.
//! 3. **Relay killed.** A child publishes through a bus with an SQLite outbox, whose relay
//!    forwards to the broker, and is killed (SIGKILL) mid-run, again and again; each new child's relay
//!    forwards what the last one did not. The parent consumes with an SQLite inbox. Checks:
//!    every acknowledged publish is stored; every stored event reaches the consumer, once,
//!    in order per key; what a killed relay forwarded twice is what the inbox dropped (on
//!    NATS the server drops it first: `Nats-Msg-Id` is the event id).
//!
//! Parent and children are this one binary (`harness = false`): the parent re-runs itself
//! with `CRASH_TRANSPORT_CHILD` set. `CRASH_ONLY=2` (or `1,3`) runs only those scenarios,
//! `CRASH_BROKER=nats` (or `redis`) only that broker, to reproduce one. Bounded: a fixed number of kills, and every wait has a
//! limit.

use event_core::store::{SqliteStore, Store, StoredEvent};
use event_core::transport::{NatsTransport, RedisTransport, StartFrom, TransportError};
use event_core::{
    DomainEvent, EventBus, EventBusBuilder, HandlerError, PublishError, SubscriptionOptions,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tests::nats_server::NatsServer;
use tests::redis_server::RedisServer;
use tokio::runtime::Runtime;
use uuid::Uuid;

/// Set in a child's environment: `worker|url|prefix|log|consumer` or
/// `publisher|url|prefix|store|first|count`.
const CHILD: &str = "CRASH_TRANSPORT_CHILD";
/// Shards per topic.
const SHARDS: u32 = 8;
/// The members' shard lease: how long a killed worker's shards wait for another.
const LEASE: Duration = Duration::from_millis(800);
/// The consumer group of the workers.
const GROUP: &str = "projection";
/// Partition keys of scenarios 1 and 2.
const KEYS: usize = 50;
/// Publishing tasks of the parent in scenarios 1 and 2, each over its own keys.
const PUBLISHERS: usize = 4;
/// Workers of scenario 1.
const WORKERS: usize = 3;
/// Worker kills of scenario 1.
const WORKER_KILLS: u32 = 24;
/// Milliseconds between two worker kills.
const KILL_GAP_MS: std::ops::Range<u64> = 100..450;
/// The longest wait for the workers (or the consumer) to handle what was published.
const DRAIN: Duration = Duration::from_secs(45);
/// The longest wait for a worker to stop once asked.
const STOP: Duration = Duration::from_secs(15);
/// How long the server stays down in scenario 2.
const OUTAGE: Duration = Duration::from_secs(1);
/// Publishes acknowledged before the server is killed, and again after its restart.
const AROUND_OUTAGE: u64 = 300;
/// Publisher children killed in scenario 3.
const RELAY_KILLS: u32 = 10;
/// Partition keys of scenario 3.
const RELAY_KEYS: u64 = 10;
/// Events each publisher child of scenario 3 tries to publish.
const PER_PUBLISHER: u64 = 400;
/// Events the last publisher child (not killed) publishes.
const LAST_PUBLISHER: u64 = 50;
/// The outbox relay's lease in the store: how long a killed relay blocks the next one.
const RELAY_LEASE: Duration = Duration::from_secs(1);
/// Milliseconds after its start at which a publisher child is killed.
const RELAY_KILL_MS: std::ops::Range<u64> = 200..1500;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "crash.ticked")]
struct Ticked {
    #[event(partition_key)]
    key: String,
    seq: u64,
}

fn main() -> ExitCode {
    match std::env::var(CHILD) {
        Ok(spec) => child(&spec),
        Err(_) => parent(),
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A broker the scenarios run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Broker {
    Redis,
    Nats,
}

/// A server a scenario started, stopped when dropped.
trait Server {
    fn url(&self) -> String;
    fn kill(&self);
    fn restart(&self);
}

impl Server for RedisServer {
    fn url(&self) -> String {
        RedisServer::url(self)
    }
    fn kill(&self) {
        RedisServer::kill(self);
    }
    fn restart(&self) {
        RedisServer::restart(self);
    }
}

impl Server for NatsServer {
    fn url(&self) -> String {
        NatsServer::url(self)
    }
    fn kill(&self) {
        NatsServer::kill(self);
    }
    fn restart(&self) {
        NatsServer::restart(self);
    }
}

impl Broker {
    fn name(self) -> &'static str {
        match self {
            Broker::Redis => "redis",
            Broker::Nats => "nats",
        }
    }

    fn start(self) -> Box<dyn Server> {
        match self {
            Broker::Redis => Box::new(RedisServer::start().expect("redis-server starts")),
            Broker::Nats => Box::new(NatsServer::start().expect("nats-server starts")),
        }
    }
}

/// A bus builder with the transport of the server at `url` (its scheme tells which).
async fn connect(url: &str, prefix: &str) -> Result<EventBusBuilder, TransportError> {
    let builder = EventBus::builder();
    Ok(if url.starts_with("nats://") {
        builder.transport(
            NatsTransport::builder(url)
                .prefix(prefix)
                .shards(SHARDS)
                .lease(LEASE)
                .connect()
                .await?,
        )
    } else {
        builder.transport(
            RedisTransport::builder(url)
                .prefix(prefix)
                .shards(SHARDS)
                .lease(LEASE)
                .connect()
                .await?,
        )
    })
}

fn group_options() -> SubscriptionOptions {
    SubscriptionOptions::new()
        .concurrency(4)
        .start_from(StartFrom::Beginning)
}

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos())
}

// ---------------------------------------------------------------------------------------
// The children: workers (scenarios 1 and 2) and outbox publishers (scenario 3).

fn child(spec: &str) -> ExitCode {
    let parts: Vec<&str> = spec.split('|').collect();
    let runtime = runtime();
    let result = match parts.as_slice() {
        ["worker", url, prefix, log, consumer] => {
            runtime.block_on(worker(url, prefix, Path::new(log), consumer))
        }
        ["publisher", url, prefix, store, first, count] => match (first.parse(), count.parse()) {
            (Ok(first), Ok(count)) => {
                runtime.block_on(publisher(url, prefix, Path::new(store), first, count))
            }
            _ => Err(format!("bad {CHILD}: {spec}")),
        },
        _ => Err(format!("bad {CHILD}: {spec}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("crash_transport child {}: {error}", std::process::id());
            ExitCode::FAILURE
        }
    }
}

/// A member of `projection`: logs each handled event, until its stdin closes.
async fn worker(url: &str, prefix: &str, log: &Path, consumer: &str) -> Result<(), String> {
    let bus = connect(url, prefix)
        .await
        .map_err(|error| format!("worker does not connect: {error}"))?
        .consumer_name(consumer)
        .build();
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|error| format!("log {}: {error}", log.display()))?;
    let file = Arc::new(file);
    let pid = std::process::id();
    bus.subscribe_with::<Ticked, _, _>(GROUP, &group_options(), move |env| {
        let file = Arc::clone(&file);
        async move {
            let line = format!(
                "{} {} {} {pid}\n",
                unix_nanos(),
                env.payload.key,
                env.payload.seq
            );
            // One unbuffered write: once it returns, the line survives a SIGKILL.
            (&*file).write_all(line.as_bytes())?;
            // A short pause before the acknowledgement, so that kills find entries handled
            // and not acknowledged yet.
            tokio::time::sleep(Duration::from_micros(fastrand::u64(0..2000))).await;
            Ok::<(), HandlerError>(())
        }
    })
    .map_err(|error| format!("worker does not subscribe: {error}"))?;
    // Until the parent closes stdin (or dies): then leave the group cleanly.
    let (closed, on_closed) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        let _ = closed.send(());
    });
    let _ = on_closed.await;
    bus.shutdown().await;
    Ok(())
}

/// The event number `n` of scenario 3: keys in turn, a sequence number per key.
fn relay_tick(n: u64) -> Ticked {
    Ticked {
        key: format!("r{}", n % RELAY_KEYS),
        seq: n / RELAY_KEYS,
    }
}

/// Publishes events `first..first + count` through an outbox store and the transport,
/// printing `ok {id}` for each acknowledged one, then `done` once shut down.
async fn publisher(
    url: &str,
    prefix: &str,
    store: &Path,
    first: u64,
    count: u64,
) -> Result<(), String> {
    let store = SqliteStore::open(store).map_err(|error| format!("outbox: {error}"))?;
    let bus = connect(url, prefix)
        .await
        .map_err(|error| format!("publisher does not connect: {error}"))?
        .store(store)
        .relay_lease(RELAY_LEASE)
        .poll_interval(Duration::from_millis(20))
        .build();
    let mut stdout = std::io::stdout();
    for n in first..first + count {
        let envelope = bus
            .publish(relay_tick(n))
            .await
            .map_err(|error| format!("publish {n}: {error}"))?;
        writeln!(stdout, "ok {}", envelope.id).map_err(|error| error.to_string())?;
        stdout.flush().map_err(|error| error.to_string())?;
        // Spreads the run, so that kills find the relay at work.
        tokio::time::sleep(Duration::from_micros(fastrand::u64(0..2000))).await;
    }
    bus.shutdown().await;
    writeln!(stdout, "done").map_err(|error| error.to_string())?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The parent.

fn parent() -> ExitCode {
    let started = Instant::now();
    let exe = std::env::current_exe().expect("own path");
    let runtime = runtime();
    let mut problems = Vec::new();
    let only = std::env::var("CRASH_ONLY").unwrap_or_default();
    let run = |n: &str| only.is_empty() || only.split(',').any(|o| o.trim() == n);
    let broker = std::env::var("CRASH_BROKER").unwrap_or_default();
    for on in [Broker::Redis, Broker::Nats] {
        if !broker.is_empty() && broker != on.name() {
            continue;
        }
        if run("1") {
            problems.extend(workers_killed(&exe, &runtime, on));
        }
        if run("2") {
            problems.extend(server_killed(&exe, &runtime, on));
        }
        if run("3") {
            problems.extend(relay_killed(&exe, &runtime, on));
        }
    }
    println!(
        "crash_transport: the scenarios in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if problems.is_empty() {
        println!("test crash_transport ... ok");
        ExitCode::SUCCESS
    } else {
        for problem in &problems {
            eprintln!("crash_transport: {problem}");
        }
        eprintln!(
            "test crash_transport ... FAILED ({} problems)",
            problems.len()
        );
        ExitCode::FAILURE
    }
}

/// Polls `check` every `every` until it holds (true) or `limit` has passed (false).
fn wait_until(limit: Duration, every: Duration, mut check: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    loop {
        if check() {
            return true;
        }
        if started.elapsed() > limit {
            return false;
        }
        std::thread::sleep(every);
    }
}

/// Worker processes, by slot; each incarnation with a new member name and log file.
struct Pool<'a> {
    exe: &'a Path,
    url: String,
    prefix: &'a str,
    dir: &'a Path,
    workers: Vec<Option<Child>>,
    logs: Vec<PathBuf>,
    starts: u32,
}

impl<'a> Pool<'a> {
    fn new(exe: &'a Path, url: String, prefix: &'a str, dir: &'a Path, size: usize) -> Self {
        let mut pool = Pool {
            exe,
            url,
            prefix,
            dir,
            workers: (0..size).map(|_| None).collect(),
            logs: Vec::new(),
            starts: 0,
        };
        for slot in 0..size {
            pool.start(slot);
        }
        pool
    }

    fn start(&mut self, slot: usize) {
        self.starts += 1;
        let consumer = format!("worker-{slot}-{}", self.starts);
        let log = self.dir.join(format!("{consumer}.log"));
        let child = Command::new(self.exe)
            .env(
                CHILD,
                format!(
                    "worker|{}|{}|{}|{consumer}",
                    self.url,
                    self.prefix,
                    log.display()
                ),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("a worker starts");
        self.logs.push(log);
        self.workers[slot] = Some(child);
    }

    /// SIGKILLs the worker in `slot` and starts a new one at once.
    fn kill_and_restart(&mut self, slot: usize, problems: &mut Vec<String>) {
        if let Some(mut child) = self.workers[slot].take() {
            if let Ok(Some(status)) = child.try_wait() {
                problems.push(format!(
                    "worker {} (slot {slot}) exited by itself: {status}",
                    child.id()
                ));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.start(slot);
    }

    /// Closes every worker's stdin (it shuts down and leaves its group), waits a bounded
    /// time for each to exit, and kills those that do not.
    fn stop(&mut self, problems: &mut Vec<String>) {
        let mut children: Vec<Child> = self.workers.iter_mut().filter_map(Option::take).collect();
        for child in &mut children {
            drop(child.stdin.take());
        }
        let deadline = Instant::now() + STOP;
        for mut child in children {
            let pid = child.id();
            let status = loop {
                match child.try_wait() {
                    Ok(Some(status)) => break Some(status),
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    _ => break None,
                }
            };
            match status {
                Some(status) if status.success() => {}
                Some(status) => problems.push(format!("worker {pid} stopped with {status}")),
                None => {
                    problems.push(format!("worker {pid} did not stop within {STOP:?}"));
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
    }
}

/// One handled event, as a worker logged it.
#[derive(Debug, Clone)]
struct Line {
    nanos: u128,
    key: String,
    seq: u64,
    pid: u32,
}

/// Every complete line of the logs, and how many lines were incomplete or unreadable.
fn read_logs(paths: &[PathBuf]) -> (Vec<Line>, usize) {
    let mut lines = Vec::new();
    let mut torn = 0;
    for path in paths {
        // A worker killed before it opened its log has none.
        let text = std::fs::read_to_string(path).unwrap_or_default();
        for raw in text.split_inclusive('\n') {
            let fields: Vec<&str> = raw.split_whitespace().collect();
            let parsed = match fields.as_slice() {
                [nanos, key, seq, pid] if raw.ends_with('\n') => {
                    match (nanos.parse(), seq.parse(), pid.parse()) {
                        (Ok(nanos), Ok(seq), Ok(pid)) => Some(Line {
                            nanos,
                            key: (*key).to_owned(),
                            seq,
                            pid,
                        }),
                        _ => None,
                    }
                }
                _ => None,
            };
            match parsed {
                Some(line) => lines.push(line),
                None => torn += 1,
            }
        }
    }
    (lines, torn)
}

/// How many acknowledged events the logs do not have.
fn missing(lines: &[Line], acknowledged: &[(String, u64)]) -> usize {
    let handled: HashSet<(&str, u64)> = lines.iter().map(|l| (l.key.as_str(), l.seq)).collect();
    acknowledged
        .iter()
        .filter(|(key, seq)| !handled.contains(&(key.as_str(), *seq)))
        .count()
}

/// What the logs say, merged by time.
struct Analysis {
    handled: usize,
    distinct: usize,
    duplicates: usize,
    /// Events handled for the first time after a later event of their key.
    out_of_order: Vec<String>,
    /// Acknowledged and never handled.
    lost: Vec<(String, u64)>,
    /// Handled and never published.
    phantom: usize,
}

fn analyze(mut lines: Vec<Line>, published: &Published) -> Analysis {
    lines.sort_by_key(|line| line.nanos);
    // Per key: the events handled so far, and the latest of them.
    let mut keys: HashMap<&str, (HashSet<u64>, &Line)> = HashMap::new();
    let mut duplicates = 0;
    let mut out_of_order = Vec::new();
    let mut phantom = 0;
    for line in &lines {
        let attempted = line
            .key
            .strip_prefix('k')
            .and_then(|k| k.parse::<usize>().ok())
            .and_then(|k| published.next.get(k))
            .is_some_and(|&next| line.seq < next);
        if !attempted {
            phantom += 1;
        }
        let (seen, latest) = keys
            .entry(&line.key)
            .or_insert_with(|| (HashSet::new(), line));
        if !seen.insert(line.seq) {
            duplicates += 1;
            continue;
        }
        if line.seq < latest.seq {
            out_of_order.push(format!(
                "key {}: seq {} handled first by pid {} at {} ns, after seq {} (pid {} at {} ns)",
                line.key, line.seq, line.pid, line.nanos, latest.seq, latest.pid, latest.nanos
            ));
        } else {
            *latest = line;
        }
    }
    let handled: HashSet<(&str, u64)> = lines.iter().map(|l| (l.key.as_str(), l.seq)).collect();
    let lost = published
        .acknowledged
        .iter()
        .filter(|(key, seq)| !handled.contains(&(key.as_str(), *seq)))
        .cloned()
        .collect();
    Analysis {
        handled: lines.len(),
        distinct: handled.len(),
        duplicates,
        out_of_order,
        lost,
        phantom,
    }
}

/// The analysis's violations; `scenario` names it in what is printed.
fn violations(scenario: &str, analysis: &Analysis, torn: usize) -> Vec<String> {
    let mut problems = Vec::new();
    if !analysis.lost.is_empty() {
        let some: Vec<String> = analysis
            .lost
            .iter()
            .take(10)
            .map(|(key, seq)| format!("{key}/{seq}"))
            .collect();
        problems.push(format!(
            "{} acknowledged events never handled (lost), e.g. {}",
            analysis.lost.len(),
            some.join(", ")
        ));
    }
    if !analysis.out_of_order.is_empty() {
        problems.push(format!(
            "{} events handled out of order per key, e.g.:\n  {}",
            analysis.out_of_order.len(),
            analysis
                .out_of_order
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n  ")
        ));
    }
    if analysis.phantom > 0 {
        problems.push(format!(
            "{} handled events were never published",
            analysis.phantom
        ));
    }
    if torn > 0 {
        // Not a violation by itself (a torn line is an event not handled to the end, so
        // handled again), but worth seeing.
        println!("{scenario}: {torn} incomplete log lines");
    }
    problems
}

/// What the parent's publisher did.
#[derive(Debug, Default)]
struct Published {
    attempted: u64,
    /// Key and sequence number of each publish that returned `Ok`.
    acknowledged: Vec<(String, u64)>,
    /// Per key index, the next sequence number: those below were attempted.
    next: Vec<u64>,
    transport_errors: u64,
    other_errors: Vec<String>,
    /// Publishes started after the server was killed, returned before it was restarted,
    /// and `Ok` nonetheless: impossible if acknowledged means stored.
    acknowledged_while_down: u64,
}

/// Shared between the publisher task and the parent's main thread.
#[derive(Debug, Default)]
struct Publishing {
    stop: AtomicBool,
    /// Set once the server is dead, cleared before it starts again.
    down: AtomicBool,
    acknowledged: AtomicU64,
    failed: AtomicU64,
}

/// Publishes over the keys `lane`, `lane + PUBLISHERS`, ... until told to stop: one
/// publish at a time per key, so that a key's sequence numbers are published in order.
async fn publish_loop(bus: EventBus, lane: usize, state: Arc<Publishing>) -> Published {
    let mut out = Published {
        next: vec![0; KEYS],
        ..Published::default()
    };
    let keys: Vec<usize> = (lane..KEYS).step_by(PUBLISHERS).collect();
    while !state.stop.load(SeqCst) {
        let key = keys[fastrand::usize(0..keys.len())];
        let seq = out.next[key];
        out.next[key] += 1;
        let down_before = state.down.load(SeqCst);
        let result = bus
            .publish(Ticked {
                key: format!("k{key}"),
                seq,
            })
            .await;
        let down_after = state.down.load(SeqCst);
        out.attempted += 1;
        match result {
            Ok(_) => {
                if down_before && down_after {
                    out.acknowledged_while_down += 1;
                }
                out.acknowledged.push((format!("k{key}"), seq));
                state.acknowledged.fetch_add(1, SeqCst);
            }
            Err(error) => {
                if let PublishError::Transport(_) = error {
                    out.transport_errors += 1;
                } else {
                    out.other_errors.push(error.to_string());
                }
                state.failed.fetch_add(1, SeqCst);
                // Paces the attempts against a server that is down.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        // Paces the publishes, so that the workers keep up under the kills.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    out
}

/// The parent's publishing bus (no subscriptions) and its publishing tasks.
struct Publisher {
    bus: EventBus,
    state: Arc<Publishing>,
    tasks: Vec<tokio::task::JoinHandle<Published>>,
}

impl Publisher {
    fn start(runtime: &Runtime, url: &str, prefix: &str) -> Self {
        let bus = runtime.block_on(async {
            connect(url, prefix)
                .await
                .expect("the parent connects")
                .consumer_name("parent")
                .build()
        });
        let state = Arc::new(Publishing::default());
        let tasks = (0..PUBLISHERS)
            .map(|lane| runtime.spawn(publish_loop(bus.clone(), lane, Arc::clone(&state))))
            .collect();
        Publisher { bus, state, tasks }
    }

    /// Stops the tasks, shuts the bus down, and adds up what the tasks did.
    fn stop(self, runtime: &Runtime) -> Published {
        self.state.stop.store(true, SeqCst);
        runtime.block_on(async {
            let mut all = Published {
                next: vec![0; KEYS],
                ..Published::default()
            };
            for task in self.tasks {
                let one = task.await.expect("a publishing task");
                all.attempted += one.attempted;
                all.acknowledged.extend(one.acknowledged);
                for (next, theirs) in all.next.iter_mut().zip(one.next) {
                    *next = (*next).max(theirs);
                }
                all.transport_errors += one.transport_errors;
                all.other_errors.extend(one.other_errors);
                all.acknowledged_while_down += one.acknowledged_while_down;
            }
            self.bus.shutdown().await;
            all
        })
    }
}

/// Waits, a bounded time, until the logs hold every acknowledged event; stops the workers;
/// reads the logs. Returns the lines, the torn line count, and the seconds waited.
fn drain_and_stop(
    pool: &mut Pool<'_>,
    published: &Published,
    problems: &mut Vec<String>,
) -> (Vec<Line>, usize, f64) {
    let started = Instant::now();
    let drained = wait_until(DRAIN, Duration::from_millis(100), || {
        missing(&read_logs(&pool.logs).0, &published.acknowledged) == 0
    });
    let waited = started.elapsed().as_secs_f64();
    if !drained {
        problems.push(format!(
            "acknowledged events still unhandled after {DRAIN:?} (counted as lost below)"
        ));
    }
    pool.stop(problems);
    let (lines, torn) = read_logs(&pool.logs);
    (lines, torn, waited)
}

// ---------------------------------------------------------------------------------------
// Scenario 1: workers killed.

fn workers_killed(exe: &Path, runtime: &Runtime, broker: Broker) -> Vec<String> {
    let on = broker.name();
    let started = Instant::now();
    let mut problems = Vec::new();
    let server = broker.start();
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = "crash-workers";
    let mut pool = Pool::new(exe, server.url(), prefix, dir.path(), WORKERS);
    let parent = Publisher::start(runtime, &server.url(), prefix);

    let mut kills = 0;
    while kills < WORKER_KILLS {
        // The time between kills: the scenario's pace, not a wait for anything.
        std::thread::sleep(Duration::from_millis(fastrand::u64(KILL_GAP_MS)));
        pool.kill_and_restart(fastrand::usize(0..WORKERS), &mut problems);
        kills += 1;
    }
    let published = parent.stop(runtime);
    let (lines, torn, waited) = drain_and_stop(&mut pool, &published, &mut problems);
    let analysis = analyze(lines, &published);
    println!(
        "{on}: workers killed: {kills} kills, {} worker processes, {} published, {} acknowledged, \
         {} publish errors, {} handled ({} distinct), {} duplicates, {} out of order, \
         {} lost, drained in {waited:.1} s, {:.1} s",
        pool.starts,
        published.attempted,
        published.acknowledged.len(),
        published.transport_errors + published.other_errors.len() as u64,
        analysis.handled,
        analysis.distinct,
        analysis.duplicates,
        analysis.out_of_order.len(),
        analysis.lost.len(),
        started.elapsed().as_secs_f64()
    );
    problems.extend(violations(
        &format!("{on}: workers killed"),
        &analysis,
        torn,
    ));
    if published.transport_errors > 0 || !published.other_errors.is_empty() {
        problems.push(format!(
            "{} publishes failed with the server up: {:?}",
            published.transport_errors + published.other_errors.len() as u64,
            published.other_errors.first()
        ));
    }
    if published.acknowledged.is_empty() || kills < 20 {
        problems.push(format!(
            "{kills} kills, {} acknowledged: the test proved nothing",
            published.acknowledged.len()
        ));
    }
    problems
        .into_iter()
        .map(|p| format!("{on}: workers killed: {p}"))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Scenario 2: the server killed.

fn server_killed(exe: &Path, runtime: &Runtime, broker: Broker) -> Vec<String> {
    let on = broker.name();
    let started = Instant::now();
    let mut problems = Vec::new();
    let server = broker.start();
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = "crash-server";
    let mut pool = Pool::new(exe, server.url(), prefix, dir.path(), 2);
    let parent = Publisher::start(runtime, &server.url(), prefix);
    let state = Arc::clone(&parent.state);
    let every = Duration::from_millis(10);

    if !wait_until(Duration::from_secs(30), every, || {
        state.acknowledged.load(SeqCst) >= AROUND_OUTAGE
    }) {
        problems.push(format!(
            "not {AROUND_OUTAGE} publishes acknowledged before the outage"
        ));
    }
    let before = state.acknowledged.load(SeqCst);
    let failed_before = state.failed.load(SeqCst);
    server.kill();
    state.down.store(true, SeqCst);
    let killed_at = Instant::now();
    if !wait_until(Duration::from_secs(10), every, || {
        state.failed.load(SeqCst) > failed_before
    }) {
        problems.push("no publish failed within 10 s of the server's death".to_owned());
    }
    // The outage itself: the server stays down this long.
    std::thread::sleep(OUTAGE.saturating_sub(killed_at.elapsed()));
    state.down.store(false, SeqCst);
    server.restart();
    let restarted_at = Instant::now();
    let at_restart = state.acknowledged.load(SeqCst);
    let recovered = wait_until(Duration::from_secs(30), every, || {
        state.acknowledged.load(SeqCst) > at_restart
    });
    let recovery = restarted_at.elapsed().as_secs_f64();
    if recovered {
        wait_until(Duration::from_secs(30), every, || {
            state.acknowledged.load(SeqCst) >= at_restart + AROUND_OUTAGE
        });
    } else {
        problems.push("no publish acknowledged within 30 s of the restart".to_owned());
    }
    let published = parent.stop(runtime);
    let (lines, torn, waited) = drain_and_stop(&mut pool, &published, &mut problems);
    let analysis = analyze(lines, &published);
    println!(
        "{on}: server killed: {} published, {before} acknowledged before the kill, {} in all, \
         {} failed with PublishError::Transport, {} other errors, {} acknowledged while down, \
         outage {:.1} s, first acknowledgement {recovery:.2} s after the restart, {} handled \
         ({} distinct), {} duplicates, {} out of order, {} lost, drained in {waited:.1} s, \
         {:.1} s",
        published.attempted,
        published.acknowledged.len(),
        published.transport_errors,
        published.other_errors.len(),
        published.acknowledged_while_down,
        restarted_at.duration_since(killed_at).as_secs_f64(),
        analysis.handled,
        analysis.distinct,
        analysis.duplicates,
        analysis.out_of_order.len(),
        analysis.lost.len(),
        started.elapsed().as_secs_f64()
    );
    problems.extend(violations(&format!("{on}: server killed"), &analysis, torn));
    if published.transport_errors == 0 {
        problems.push("no publish failed with PublishError::Transport".to_owned());
    }
    if !published.other_errors.is_empty() {
        problems.push(format!(
            "{} publishes failed otherwise than PublishError::Transport, e.g. {}",
            published.other_errors.len(),
            published.other_errors[0]
        ));
    }
    if published.acknowledged_while_down > 0 {
        problems.push(format!(
            "{} publishes returned Ok while the server was down",
            published.acknowledged_while_down
        ));
    }
    problems
        .into_iter()
        .map(|p| format!("{on}: server killed: {p}"))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Scenario 3: the outbox relay killed.

/// Runs one publisher child; kills it after `kill_after` if it still runs. Returns its
/// stdout lines, whether it was killed, and whether it exited successfully.
fn run_publisher(
    exe: &Path,
    spec: &str,
    kill_after: Option<Duration>,
) -> (Vec<String>, bool, bool) {
    let mut child = Command::new(exe)
        .env(CHILD, spec)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("a publisher starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let deadline = Instant::now() + kill_after.unwrap_or(Duration::from_secs(60));
    let mut killed = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("child status") {
            break status;
        }
        if Instant::now() >= deadline {
            child.kill().expect("SIGKILL");
            killed = kill_after.is_some();
            break child.wait().expect("child status");
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let lines = reader.join().expect("reader");
    (lines, killed, status.success())
}

/// Every event of a store, in position order.
async fn stored(store: &SqliteStore) -> Vec<StoredEvent> {
    let mut events: Vec<StoredEvent> = Vec::new();
    loop {
        let after = events.last().map_or(0, |e| e.position);
        let batch = store.read(after, 1000).await.expect("the outbox reads");
        if batch.is_empty() {
            return events;
        }
        events.extend(batch);
    }
}

/// What the consumer handled, in order: event id, key, seq.
type Handled = Arc<Mutex<Vec<(Uuid, String, u64)>>>;

/// The parent's consumer: a bus with its own SQLite store (the inbox) on the transport.
fn consumer(runtime: &Runtime, url: &str, prefix: &str, inbox: &Path) -> (EventBus, Handled) {
    let _entered = runtime.enter();
    let bus = runtime
        .block_on(connect(url, prefix))
        .expect("the consumer connects")
        .store(SqliteStore::open(inbox).expect("the inbox opens"))
        .consumer_name("consumer")
        .build();
    let handled: Handled = Arc::default();
    let log = Arc::clone(&handled);
    bus.subscribe_with::<Ticked, _, _>("ledger", &group_options(), move |env| {
        log.lock().unwrap_or_else(PoisonError::into_inner).push((
            env.id,
            env.payload.key.clone(),
            env.payload.seq,
        ));
        async { Ok::<(), HandlerError>(()) }
    })
    .expect("the consumer subscribes");
    (bus, handled)
}

/// Entries on the broker, over every shard of every topic.
async fn broker_entries(bus: &EventBus) -> Option<u64> {
    let info = bus.transport_info().await.ok()??;
    Some(
        info.topics
            .iter()
            .flat_map(|topic| topic.shards.iter())
            .map(|shard| shard.length)
            .sum(),
    )
}

/// Runs the publisher children of scenario 3, killing all but the last; returns the ids
/// they acknowledged, the kills, and how many ran to their end.
fn run_publishers(
    exe: &Path,
    spec: &dyn Fn(u64, u64) -> String,
    problems: &mut Vec<String>,
) -> (HashSet<Uuid>, u32, u32) {
    let mut acknowledged: HashSet<Uuid> = HashSet::new();
    let mut bad_lines = 0;
    let mut collect = |lines: &[String]| {
        for line in lines {
            match line.strip_prefix("ok ").map(str::parse::<Uuid>) {
                Some(Ok(id)) => {
                    acknowledged.insert(id);
                }
                Some(Err(_)) => bad_lines += 1,
                None => {}
            }
        }
    };
    let (mut kills, mut finished, mut first) = (0, 0, 0);
    for _ in 0..RELAY_KILLS {
        let kill_after = Duration::from_millis(fastrand::u64(RELAY_KILL_MS));
        let (lines, killed, success) =
            run_publisher(exe, &spec(first, PER_PUBLISHER), Some(kill_after));
        if killed {
            kills += 1;
        } else {
            finished += 1;
            if !success {
                problems.push(format!("publisher from {first} failed"));
            }
        }
        collect(&lines);
        first += PER_PUBLISHER;
    }
    // A last publisher, not killed: its shutdown waits for the relay to forward everything.
    let (lines, _, success) = run_publisher(exe, &spec(first, LAST_PUBLISHER), None);
    collect(&lines);
    if !success || lines.last().map(String::as_str) != Some("done") {
        problems.push("the last publisher did not finish".to_owned());
    }
    if bad_lines > 0 {
        problems.push(format!("{bad_lines} unreadable publisher lines"));
    }
    (acknowledged, kills, finished + 1)
}

fn relay_killed(exe: &Path, runtime: &Runtime, broker: Broker) -> Vec<String> {
    let on = broker.name();
    let started = Instant::now();
    let mut problems = Vec::new();
    let server = broker.start();
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = "crash-relay";
    let outbox = dir.path().join("outbox.db");
    let (bus, handled) = consumer(runtime, &server.url(), prefix, &dir.path().join("inbox.db"));

    let spec = |first: u64, count: u64| {
        format!(
            "publisher|{}|{prefix}|{}|{first}|{count}",
            server.url(),
            outbox.display()
        )
    };
    let (acknowledged, kills, finished) = run_publishers(exe, &spec, &mut problems);

    let store = SqliteStore::open(&outbox).expect("the outbox opens");
    let (events, head, relayed) = runtime.block_on(async {
        let events = stored(&store).await;
        let head = store.head().await.expect("head");
        let relayed = store.checkpoint("$relay").await.expect("relay checkpoint");
        (events, head, relayed)
    });
    let ids: HashSet<Uuid> = events.iter().map(|e| e.envelope.id).collect();
    let not_stored = acknowledged.difference(&ids).count();
    if not_stored > 0 {
        problems.push(format!(
            "{not_stored} acknowledged publishes are not stored"
        ));
    }
    if relayed != head {
        problems.push(format!(
            "the relay's checkpoint is {relayed}, the outbox's head {head}: not all forwarded"
        ));
    }

    // Done when every entry on the broker was handled or dropped by the inbox, and every
    // stored event was handled.
    let waited = Instant::now();
    let drained = wait_until(DRAIN, Duration::from_millis(100), || {
        let entries = runtime.block_on(broker_entries(&bus));
        let handled = handled.lock().unwrap_or_else(PoisonError::into_inner);
        let seen: HashSet<Uuid> = handled.iter().map(|(id, _, _)| *id).collect();
        let settled = handled.len() as u64 + bus.metrics().deduplicated;
        // More than the entries: something handled twice, which the checks below report.
        ids.is_subset(&seen) && entries.is_some_and(|entries| settled >= entries)
    });
    let waited = waited.elapsed().as_secs_f64();
    if !drained {
        problems.push(format!("the consumer did not drain within {DRAIN:?}"));
    }
    let entries = runtime.block_on(broker_entries(&bus)).unwrap_or(0);
    runtime.block_on(bus.shutdown());
    let metrics = bus.metrics();
    let deduplicated = metrics.deduplicated;
    let handled = std::mem::take(&mut *handled.lock().unwrap_or_else(PoisonError::into_inner));
    let check = check_relayed(&events, &handled);
    problems.extend(check.problems);
    let forwarded_twice = entries.saturating_sub(events.len() as u64);
    // Every entry forwarded twice is dropped by the inbox (each stored event is handled
    // once, checked above); more are dropped when the broker hands an entry to the
    // consumer again (at least once), which `redelivered` counts.
    let redelivered = (handled.len() as u64 + deduplicated).saturating_sub(entries);
    if deduplicated < forwarded_twice {
        problems.push(format!(
            "{forwarded_twice} entries forwarded twice, only {deduplicated} dropped by the inbox"
        ));
    }
    println!(
        "{on}: relay killed: {kills} kills, {} publishers ran to the end, {} acknowledged, {} stored \
         (head {head}, relay checkpoint {relayed}), {entries} broker entries \
         ({forwarded_twice} forwarded twice), {} handled, {deduplicated} dropped by the inbox, \
         {redelivered} redelivered to the consumer, {} fenced (lease lost), {} handled twice, \
         {} out of order, {} never handled, drained in {waited:.1} s, {:.1} s",
        finished,
        acknowledged.len(),
        events.len(),
        handled.len(),
        metrics.fenced,
        check.twice,
        check.out_of_order,
        check.missing,
        started.elapsed().as_secs_f64()
    );
    if kills == 0 || acknowledged.is_empty() {
        problems.push(format!(
            "{kills} kills, {} acknowledged: the test proved nothing",
            acknowledged.len()
        ));
    }
    problems
        .into_iter()
        .map(|p| format!("{on}: relay killed: {p}"))
        .collect()
}

/// What the consumer handled against what the outbox holds.
struct RelayCheck {
    twice: usize,
    out_of_order: usize,
    missing: usize,
    problems: Vec<String>,
}

fn check_relayed(events: &[StoredEvent], handled: &[(Uuid, String, u64)]) -> RelayCheck {
    let mut problems = Vec::new();
    let mut times: HashMap<Uuid, usize> = HashMap::new();
    for (id, _, _) in handled {
        *times.entry(*id).or_default() += 1;
    }
    let twice = times.values().filter(|&&n| n > 1).count();
    let missing = events
        .iter()
        .filter(|e| !times.contains_key(&e.envelope.id))
        .count();
    let stored_ids: HashSet<Uuid> = events.iter().map(|e| e.envelope.id).collect();
    let phantom = times.keys().filter(|id| !stored_ids.contains(id)).count();
    // Per key, the stored order (position) against the handled order (first handling).
    let mut expected: HashMap<String, Vec<u64>> = HashMap::new();
    for event in events {
        match serde_json::from_str::<Ticked>(event.envelope.payload.get()) {
            Ok(tick) => expected.entry(tick.key).or_default().push(tick.seq),
            Err(error) => problems.push(format!("stored event not a Ticked: {error}")),
        }
    }
    // Per key, (seq, index in the consumer's handling order) of each first handling.
    let mut actual: HashMap<String, Vec<(u64, usize)>> = HashMap::new();
    let mut first = HashSet::new();
    for (index, (id, key, seq)) in handled.iter().enumerate() {
        if first.insert(*id) {
            actual.entry(key.clone()).or_default().push((*seq, index));
        }
    }
    let mut out_of_order = 0;
    for (key, handlings) in &actual {
        let backwards: Vec<((u64, usize), (u64, usize))> = handlings
            .windows(2)
            .filter(|pair| pair[1].0 <= pair[0].0)
            .map(|pair| (pair[0], pair[1]))
            .collect();
        if let Some(((after, after_at), (seq, at))) = backwards.first() {
            out_of_order += backwards.len();
            problems.push(format!(
                "key {key}: handled out of order {} times, e.g. seq {seq} (handling #{at}) \
                 after seq {after} (handling #{after_at})",
                backwards.len()
            ));
        }
        let seqs: Vec<u64> = handlings.iter().map(|(seq, _)| *seq).collect();
        if missing == 0 && expected.get(key) != Some(&seqs) {
            problems.push(format!(
                "key {key}: handled order differs from stored order"
            ));
        }
    }
    if twice > 0 {
        problems.push(format!(
            "{twice} events handled twice despite the consumer's inbox"
        ));
    }
    if missing > 0 {
        problems.push(format!(
            "{missing} of {} stored events never reached the consumer",
            events.len()
        ));
    }
    if phantom > 0 {
        problems.push(format!("{phantom} handled events are not in the outbox"));
    }
    RelayCheck {
        twice,
        out_of_order,
        missing,
        problems,
    }
}
