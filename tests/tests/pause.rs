//! Fencing of shard leases, with real processes paused by `SIGSTOP`: a worker that stops
//! for longer than its lease, while it holds deliveries in flight, must not act on the
//! shards another worker took over meanwhile once it is resumed (`SIGCONT`).
//!
//! Four scenarios, one per backend with leases:
//!
//! 1. **Redis Streams** (`RedisTransport`, a `redis-server` of the test's own).
//! 2. **NATS JetStream** (`NatsTransport`, a `nats-server -js` of the test's own).
//! 3. **A PostgreSQL store shared as consumer groups** (`consumer_groups`, a PostgreSQL
//!    server of the test's own).
//! 4. **The outbox relay**: Redis Streams fed by the relay of a PostgreSQL outbox the
//!    workers share; the parent appends to the outbox, worker-a holds the relay lease when it is
//!    stopped, worker-b takes the relay over during the pause (checked), and after the
//!    resume at most the one batch worker-a was forwarding reaches the broker twice.
//!
//! Not on a SQLite file shared by processes: a process stopped inside a write transaction
//! holds SQLite's one writer lock, and every other process's writes wait until it resumes
//! (seen in this test: the other worker could not take the relay lease over).
//!
//! In each, two worker processes form the group `projection` over 4 shards with a lease of
//! 1 s. The parent publishes events over 8 keys, each with a per-key sequence number. Each
//! worker appends a line to a shared log when it hands an event to its handler (then the
//! handler works 15 ms). Asked by the parent (a flag file), worker A `SIGSTOP`s itself inside
//! a handler, so that it surely holds a delivery in flight; the parent keeps it stopped for
//! three lease times (worker B takes A's shards and handles
//! later events of A's keys), then `SIGCONT`s it and publishes on. Checks: every published
//! event handled; per key, in the order of the log, the sequence never goes back (an event
//! handled again by the new owner repeats its number, and is counted); B handled A's keys
//! during the pause; and A's stale writes refused: at least the acknowledgement (Redis) or
//! inbox claim (a shared store) of the event it was handling when stopped (on NATS the
//! acknowledgement reaches no consumer: the new owner deleted the stopped worker's)
//! (`MetricsSnapshot::refused`), printed with the deliveries it dropped unhandled
//! (`MetricsSnapshot::fenced`).
//!
//! Parent and children are this one binary (`harness = false`): the parent re-runs itself
//! with `PAUSE_CHILD` set. Bounded: every wait has a limit.

use event_core::store::PostgresStore;
use event_core::transport::{NatsTransport, RedisTransport, StartFrom};
use event_core::{DomainEvent, EventBus, HandlerError, StoreGroups, SubscriptionOptions};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tests::nats_server::NatsServer;
use tests::postgres_server::PostgresServer;
use tests::redis_server::RedisServer;
use tokio::runtime::Runtime;

/// Set in a child's environment: `worker|backend|url|log|name`.
const CHILD: &str = "PAUSE_CHILD";
const SHARDS: u32 = 4;
const LEASE: Duration = Duration::from_secs(1);
const GROUP: &str = "projection";
const KEYS: u64 = 8;
/// Between two publishes of the parent.
const PUBLISH_GAP: Duration = Duration::from_millis(10);
/// How long a handler works after logging.
const WORK: Duration = Duration::from_millis(15);
/// The longest wait for anything.
const LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "pause.ticked")]
struct Ticked {
    #[event(partition_key)]
    key: String,
    seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Redis,
    Nats,
    Postgres,
    /// Redis Streams fed by the outbox relay of a PostgreSQL store the workers share (the
    /// "url" is the Redis URL and the store's connection string, split by `;`): the
    /// stopped worker is the one relaying.
    Relay,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Redis => "redis",
            Backend::Nats => "nats",
            Backend::Postgres => "postgres",
            Backend::Relay => "relay",
        }
    }

    /// A bus on the backend: a member of its groups when `member` is given.
    async fn bus(self, url: &str, member: &str) -> Result<EventBus, String> {
        let builder = EventBus::builder().consumer_name(member);
        Ok(match self {
            Backend::Redis => builder.transport(self.transport(url).await?).build(),
            Backend::Nats => builder
                .transport(
                    NatsTransport::builder(url)
                        .prefix("pause")
                        .shards(SHARDS)
                        .lease(LEASE)
                        .connect()
                        .await
                        .map_err(|e| e.to_string())?,
                )
                .build(),
            Backend::Postgres => builder
                .store(
                    PostgresStore::connect(url)
                        .await
                        .map_err(|e| e.to_string())?,
                )
                .poll_interval(Duration::from_millis(50))
                .consumer_groups(StoreGroups::new().shards(SHARDS).lease(LEASE))
                .build(),
            Backend::Relay => {
                let (redis, outbox) = url.split_once(';').ok_or("no outbox")?;
                builder
                    .store(
                        PostgresStore::connect(outbox)
                            .await
                            .map_err(|e| e.to_string())?,
                    )
                    .transport(Backend::Redis.transport(redis).await?)
                    .relay_lease(LEASE)
                    .poll_interval(Duration::from_millis(20))
                    .build()
            }
        })
    }

    async fn transport(self, url: &str) -> Result<RedisTransport, String> {
        RedisTransport::builder(url)
            .prefix("pause")
            .shards(SHARDS)
            .lease(LEASE)
            .connect()
            .await
            .map_err(|e| e.to_string())
    }

    /// The parent's publishing bus: on the relay scenario, the outbox store alone (the
    /// workers relay).
    async fn publisher(self, url: &str) -> Result<EventBus, String> {
        match (self, url.split_once(';')) {
            (Backend::Relay, Some((_, outbox))) => Ok(EventBus::builder()
                .store(
                    PostgresStore::connect(outbox)
                        .await
                        .map_err(|e| e.to_string())?,
                )
                .build()),
            _ => self.bus(url, "publisher").await,
        }
    }
}

fn main() -> ExitCode {
    if let Ok(spec) = std::env::var(CHILD) {
        return child(&spec);
    }
    let mut failed = false;
    let backends = [
        Backend::Redis,
        Backend::Nats,
        Backend::Postgres,
        Backend::Relay,
    ];
    for backend in backends {
        let started = Instant::now();
        if let Ok(report) = std::panic::catch_unwind(|| scenario(backend)) {
            println!(
                "test pause::{} ... ok ({:.1} s): {report}",
                backend.name(),
                started.elapsed().as_secs_f64()
            );
        } else {
            println!("test pause::{} ... FAILED", backend.name());
            failed = true;
        }
    }
    if failed {
        println!("test result: FAILED");
        ExitCode::FAILURE
    } else {
        println!("test result: ok. {} passed; 0 failed", backends.len());
        ExitCode::SUCCESS
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos())
}

// ---------------------------------------------------------------------------------------
// The child: a worker.

fn child(spec: &str) -> ExitCode {
    let parts: Vec<&str> = spec.split('|').collect();
    let [_, backend, url, log, name] = parts.as_slice() else {
        eprintln!("bad {CHILD}: {spec}");
        return ExitCode::FAILURE;
    };
    let backend = match *backend {
        "redis" => Backend::Redis,
        "nats" => Backend::Nats,
        "postgres" => Backend::Postgres,
        _ => Backend::Relay,
    };
    match runtime().block_on(worker(backend, url, Path::new(log), name)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("pause worker {name}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// A member of `projection`: logs each event it hands to its handler, until its stdin
/// closes; then shuts down and prints its counts of fenced deliveries and refused writes.
async fn worker(backend: Backend, url: &str, log: &Path, name: &str) -> Result<(), String> {
    let bus = backend.bus(url, name).await?;
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|error| format!("log {}: {error}", log.display()))?;
    let file = Arc::new(file);
    let me = name.to_owned();
    let stop_flag = stop_flag(log, name);
    bus.subscribe_with::<Ticked, _, _>(
        GROUP,
        &SubscriptionOptions::new()
            .concurrency(2)
            .start_from(StartFrom::Beginning),
        move |env| {
            let line = format!(
                "{} {} {} {me}\n",
                unix_nanos(),
                env.payload.key,
                env.payload.seq
            );
            // One unbuffered append, at the moment the handler gets the event.
            let written = (&*file).write_all(line.as_bytes());
            stop_if_asked(&stop_flag);
            async move {
                written?;
                tokio::time::sleep(WORK).await;
                Ok::<(), HandlerError>(())
            }
        },
    )
    .map_err(|error| format!("does not subscribe: {error}"))?;
    let (closed, on_closed) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        let _ = closed.send(());
    });
    let _ = on_closed.await;
    bus.shutdown().await;
    let metrics = bus.metrics();
    println!("fenced={} refused={}", metrics.fenced, metrics.refused);
    Ok(())
}

/// The file whose presence asks worker `name` to stop itself.
fn stop_flag(log: &Path, name: &str) -> PathBuf {
    log.with_file_name(format!("stop-{name}"))
}

/// Stops this process (`SIGSTOP`, until the parent's `SIGCONT`) if the flag file is there,
/// removing it first: called inside a handler, so the stop holds that delivery in flight.
fn stop_if_asked(flag: &Path) {
    if std::fs::remove_file(flag).is_ok() {
        let _ = Command::new("kill")
            .arg("-STOP")
            .arg(std::process::id().to_string())
            .status();
    }
}

// ---------------------------------------------------------------------------------------
// The parent.

/// A worker process, with its stdin held open.
struct Worker {
    child: Child,
    name: &'static str,
}

impl Worker {
    fn start(backend: Backend, url: &str, log: &Path, name: &'static str) -> Worker {
        let exe = std::env::current_exe().expect("test binary");
        let spec = format!("worker|{}|{url}|{}|{name}", backend.name(), log.display());
        let child = Command::new(exe)
            .env(CHILD, spec)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starts a worker");
        Worker { child, name }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {}", self.name);
    }

    /// Waits until the process is stopped (state `T` in `/proc/{pid}/stat`).
    fn wait_stopped(&self) {
        let stat = format!("/proc/{}/stat", self.child.id());
        let started = Instant::now();
        loop {
            let state = std::fs::read_to_string(&stat).unwrap_or_default();
            // `pid (comm) state ...`: the state follows the last `)`.
            let stopped = state
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('T'));
            if stopped {
                return;
            }
            assert!(
                started.elapsed() < LIMIT,
                "{} never stopped itself",
                self.name
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Closes its stdin, waits for it to shut down, and returns its (fenced, refused).
    fn stop(mut self) -> (u64, u64) {
        drop(self.child.stdin.take());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("waits") {
                assert!(status.success(), "worker {} failed: {status}", self.name);
                break;
            }
            if started.elapsed() > LIMIT {
                let _ = self.child.kill();
                panic!("worker {} did not stop", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut out = String::new();
        if let Some(mut stdout) = self.child.stdout.take() {
            stdout.read_to_string(&mut out).expect("reads stdout");
        }
        let count = |field: &str| -> u64 {
            out.split_whitespace()
                .find_map(|part| part.strip_prefix(field))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("worker {} printed no {field}: {out:?}", self.name))
        };
        (count("fenced="), count("refused="))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // A worker left stopped by a failed check would never end.
        let _ = Command::new("kill")
            .arg("-CONT")
            .arg(self.child.id().to_string())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One handing of an event to a handler, as logged.
#[derive(Debug, Clone)]
struct Line {
    at: u128,
    key: String,
    seq: u64,
    worker: String,
}

fn read_log(path: &Path) -> Vec<Line> {
    let Ok(file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let mut lines: Vec<Line> = BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| {
            let parts: Vec<&str> = line.split(' ').collect();
            match parts.as_slice() {
                [at, key, seq, worker] => Some(Line {
                    at: at.parse().ok()?,
                    key: (*key).to_owned(),
                    seq: seq.parse().ok()?,
                    worker: (*worker).to_owned(),
                }),
                _ => None,
            }
        })
        .collect();
    lines.sort_by_key(|line| line.at);
    lines
}

/// Waits until `check` holds on the log, or fails after `LIMIT`.
fn wait_log(log: &Path, what: &str, check: impl Fn(&[Line]) -> bool) {
    let started = Instant::now();
    while !check(&read_log(log)) {
        assert!(started.elapsed() < LIMIT, "not within {LIMIT:?}: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Publishes ticks over `KEYS` keys until `stop`, recording what was acknowledged.
async fn publish(bus: EventBus, stop: Arc<AtomicBool>, published: Arc<Mutex<Vec<(String, u64)>>>) {
    let mut n: u64 = 0;
    while !stop.load(SeqCst) {
        let tick = Ticked {
            key: format!("k{}", n % KEYS),
            seq: n / KEYS,
        };
        let sent = (tick.key.clone(), tick.seq);
        if bus.publish(tick).await.is_ok() {
            published
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(sent);
        }
        n += 1;
        tokio::time::sleep(PUBLISH_GAP).await;
    }
    bus.shutdown().await;
}

/// Waits until `worker` holds the outbox relay's lease in the relay scenario's store.
async fn relay_held_by(url: &str, worker: &str) {
    use event_core::store::Store;
    let (_, outbox) = url.split_once(';').expect("an outbox");
    let store = PostgresStore::connect(outbox)
        .await
        .expect("connects to the outbox");
    let started = Instant::now();
    loop {
        let leases = store.leases("relay").await.expect("leases");
        if leases.iter().any(|lease| lease.holder == worker) {
            return;
        }
        assert!(
            started.elapsed() < LIMIT,
            "{worker} never relayed: {leases:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// In the relay scenario: how many entries on the broker are duplicates (forwarded twice).
async fn duplicates(url: &str) -> u64 {
    use event_core::store::Store;
    use event_core::transport::Transport;
    let (redis, outbox) = url.split_once(';').expect("an outbox");
    let info = Backend::Redis
        .transport(redis)
        .await
        .expect("connects")
        .info()
        .await
        .expect("info");
    let on_broker: u64 = info
        .topics
        .iter()
        .flat_map(|topic| topic.shards.iter())
        .map(|shard| shard.length)
        .sum();
    let stored = PostgresStore::connect(outbox)
        .await
        .expect("connects to the outbox")
        .head()
        .await
        .expect("head");
    on_broker.saturating_sub(stored)
}

/// What a scenario's run saw, for the checks.
struct Run {
    /// Every acknowledged publish.
    published: Vec<(String, u64)>,
    /// In the relay scenario: entries on the broker beyond the events stored.
    relay_duplicates: Option<u64>,
    paused_at: u128,
    resumed_at: u128,
    /// The keys worker-a handled just before it was stopped.
    a_keys: HashSet<String>,
    /// Events of those keys worker-b handled while worker-a was stopped.
    took_over: usize,
    /// (fenced, refused) of each worker.
    a: (u64, u64),
    b: (u64, u64),
}

fn scenario(backend: Backend) -> String {
    // The scenario's own server, stopped when dropped at its end.
    let (server, url): (Box<dyn std::any::Any>, String) = match backend {
        Backend::Redis => {
            let server = RedisServer::start().expect("redis-server starts");
            let url = server.url();
            (Box::new(server), url)
        }
        Backend::Nats => {
            let server = NatsServer::start().expect("nats-server starts");
            let url = server.url();
            (Box::new(server), url)
        }
        Backend::Postgres => {
            let server = PostgresServer::start().expect("postgres starts");
            let url = server.create_database();
            (Box::new(server), url)
        }
        Backend::Relay => {
            let redis = RedisServer::start().expect("redis-server starts");
            let postgres = PostgresServer::start().expect("postgres starts");
            let url = format!("{};{}", redis.url(), postgres.create_database());
            (Box::new((redis, postgres)), url)
        }
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let log: PathBuf = dir.path().join("handled.log");
    let run = run(backend, &url, &log);
    drop(server);
    check(backend, &read_log(&log), &run)
}

/// Two workers, publishing, worker-a stopped for three leases and resumed, publishing on,
/// until every acknowledged publish was handled; then both workers stopped.
fn run(backend: Backend, url: &str, log: &Path) -> Run {
    let runtime = runtime();
    // The group exists (from the beginning) before anything is published.
    let a = Worker::start(backend, url, log, "worker-a");
    if backend == Backend::Relay {
        // Worker-a relays: the one to be stopped.
        runtime.block_on(relay_held_by(url, "worker-a"));
    }
    let b = Worker::start(backend, url, log, "worker-b");
    let bus = runtime
        .block_on(backend.publisher(url))
        .expect("publisher connects");
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let publishing = runtime.spawn(publish(bus, Arc::clone(&stop), Arc::clone(&acknowledged)));

    wait_log(log, "both workers handle events", |lines| {
        ["worker-a", "worker-b"]
            .iter()
            .all(|w| lines.iter().filter(|l| l.worker == *w).count() >= 20)
    });
    // A stops itself inside a handler: it holds that delivery in flight.
    std::fs::write(stop_flag(log, "worker-a"), b"").expect("writes the stop flag");
    a.wait_stopped();
    let paused_at = unix_nanos();
    let a_keys: HashSet<String> = read_log(log)
        .iter()
        .rev()
        .take(40)
        .filter(|line| line.worker == "worker-a")
        .map(|line| line.key.clone())
        .collect();
    std::thread::sleep(LEASE * 3);
    if backend == Backend::Relay {
        // Worker-b relays now: what was published during the pause reached the broker.
        runtime.block_on(relay_held_by(url, "worker-b"));
    }
    let resumed_at = unix_nanos();
    a.signal("CONT");
    let took_over = read_log(log)
        .iter()
        .filter(|line| line.at > paused_at && line.at < resumed_at)
        .filter(|line| line.worker == "worker-b" && a_keys.contains(&line.key))
        .count();
    std::thread::sleep(LEASE * 2);
    stop.store(true, SeqCst);
    runtime
        .block_on(publishing)
        .expect("the publisher task ends");
    let published = acknowledged
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();

    let wanted: HashSet<(String, u64)> = published.iter().cloned().collect();
    let started = Instant::now();
    loop {
        let handled: HashSet<(String, u64)> = read_log(log)
            .iter()
            .map(|l| (l.key.clone(), l.seq))
            .collect();
        let mut missing: Vec<&(String, u64)> = wanted.difference(&handled).collect();
        if missing.is_empty() {
            break;
        }
        missing.sort();
        assert!(
            started.elapsed() < LIMIT,
            "{}: {} of {} published events never handled, first {:?}",
            backend.name(),
            missing.len(),
            wanted.len(),
            &missing[..missing.len().min(10)]
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let relay_duplicates = (backend == Backend::Relay).then(|| runtime.block_on(duplicates(url)));
    Run {
        published,
        relay_duplicates,
        paused_at,
        resumed_at,
        a_keys,
        took_over,
        a: a.stop(),
        b: b.stop(),
    }
}

/// Order per key in the log, the takeover, the stale writes refused; the report line.
fn check(backend: Backend, lines: &[Line], run: &Run) -> String {
    let when = |at: u128| {
        if at < run.paused_at {
            "before"
        } else if at < run.resumed_at {
            "paused"
        } else {
            "after"
        }
    };
    let mut last: HashMap<&str, u64> = HashMap::new();
    let mut repeated = 0;
    for line in lines {
        if let Some(&previous) = last.get(line.key.as_str()) {
            let history: Vec<String> = lines
                .iter()
                .filter(|l| l.key == line.key)
                .map(|l| format!("{} by {} {}", l.seq, l.worker, when(l.at)))
                .collect();
            assert!(
                line.seq >= previous,
                "{}: key {} seq {} handed to a handler after seq {previous} (by {}): {history:?}",
                backend.name(),
                line.key,
                line.seq,
                line.worker,
            );
            if line.seq == previous {
                repeated += 1;
            }
        }
        last.insert(&line.key, line.seq);
    }
    let by_worker: BTreeMap<&str, usize> = lines.iter().fold(BTreeMap::new(), |mut m, l| {
        *m.entry(l.worker.as_str()).or_default() += 1;
        m
    });
    let ((a_fenced, a_refused), (b_fenced, b_refused)) = (run.a, run.b);
    assert!(
        run.took_over > 0,
        "{}: worker-b handled none of worker-a's keys {:?} while it was stopped",
        backend.name(),
        run.a_keys
    );
    // The event worker-a was handling when it was stopped: its acknowledgement (Redis) or
    // inbox claim (a shared store) comes after the takeover, and is refused.
    assert!(
        a_refused >= 1,
        "{}: no stale write of the stopped worker was refused (fenced {a_fenced}, refused {a_refused})",
        backend.name()
    );
    // A relay stopped mid-forward sends at most that one batch late (256 events); after
    // its resume it forwards nothing, its lease being another's.
    let relayed_twice = match run.relay_duplicates {
        Some(duplicates) => {
            assert!(
                duplicates <= 256,
                "{duplicates} events forwarded twice: the stopped relay went on forwarding"
            );
            format!("; {duplicates} events forwarded twice by the relays")
        }
        None => String::new(),
    };
    format!(
        "{} published, {} handed to handlers {by_worker:?}, {repeated} repeated; \
         during the pause worker-b handled {} events of worker-a's keys; \
         worker-a after SIGCONT: {a_refused} stale writes refused, {a_fenced} deliveries \
         dropped unhandled (worker-b: {b_refused} refused, {b_fenced} dropped){relayed_twice}",
        run.published.len(),
        lines.len(),
        run.took_over
    )
}
