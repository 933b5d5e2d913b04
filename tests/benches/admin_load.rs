//! The admin API (`event-admin`) under concurrent reads while the bus runs: the bus's
//! throughput with and without API traffic, and the API's latency, on loopback only.
//!
//! Every run builds a fresh durable bus on a SQLite file in a temporary directory (the
//! embedded default: WAL, `synchronous = FULL`) with three subscriptions to one event type:
//! `projection` and `audit` succeed, `mailer` fails every 100th event with a permanent
//! error, so dead letters pile up while the run goes on (80 in a run of 8 000). The admin
//! API of that bus is served on `127.0.0.1:0` with a read token. The HTTP clients run on a
//! runtime of their own (2 worker threads), as a browser or a scraper in another process
//! would; the bus and the API share the bench's runtime (2 worker threads), as they would
//! in a service.
//!
//! The timed part: 16 tasks publish `EVENTS` events (8 000) as fast as they can, and the
//! clock stops when every subscription's handler has been called for every event (a counter
//! in the handlers; the last call wakes the timer through a `Notify`, no sleeps). After the
//! clock, each run checks that every subscription's lag is 0 and that the dead letters are
//! all there. Throughput is events published ÷ that time. Three configurations:
//!
//! - `a`, no API traffic: the API served and idle (the baseline);
//! - `b`, dashboards: 4 simulated dashboards, each doing what `event-admin/src/dashboard/
//!   app.js` does every 2 s (`GET /v1/subscriptions?limit=500` and
//!   `GET /v1/dead-letters?limit=500` at once, on keep-alive connections), their phases
//!   spread over the 2 s;
//! - `c`, heavy reads: 8 clients, each in a loop with no pause over `GET /v1/subscriptions`,
//!   `/v1/dead-letters`, `/v1/events?limit=50&order=newest` and `/metrics`.
//!
//! Load starts 300 ms before the clock. The configurations alternate (`a, b, c, a, b, c,
//! ...`) for `ROUNDS` rounds after a discarded warm-up run, so that drift on this shared
//! machine hits all three alike; printed: each configuration's median events/s, the median
//! of the per-round ratios `b/a` and `c/a` (target: `b/a` ≥ 0.90, the bus loses under 10 %
//! with dashboards polling), and p50/p99 per route of the requests started while the clock
//! ran, timed client-side (`Instant` around the request and reading the whole body). Also
//! printed: the CPU time spent while the clock ran, by threads (from `/proc/self/task`):
//! `service` (the bench runtime's workers and blocking pool: the bus, the API's handlers,
//! the store's reads), `sqlite writer`, and `clients` (the load generator itself, which
//! shares the 2 cores). `ADMIN_LOAD_ROUTES=/metrics,/v1/events` makes the clients of `c`
//! read only those routes, to tell their costs apart.
//!
//! Absolute times on a shared 2-core machine are noise: the ratios are what counts.
//!
//! Run: `cargo bench -p tests --bench admin_load` (about a minute plus the build);
//! `cargo bench -p tests --bench admin_load -- --quick` (or `ADMIN_LOAD_QUICK=1`) and
//! `cargo test -p tests --bench admin_load` make a smoke run of a few seconds.

// Counts of a benchmark run are far below 2^52: converting them to f64 for a ratio is exact.
#![allow(clippy::cast_precision_loss)]

use event_admin::{Admin, Token};
use event_core::store::SqliteStore;
use event_core::{DomainEvent, EventBus, HandlerError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// Events published per run.
const EVENTS: u64 = 8_000;
/// Rounds of `a, b, c`.
const ROUNDS: usize = 3;
/// The read token the clients send.
const TOKEN: &str = "load-read-token";
/// Tasks publishing at once.
const PUBLISHERS: u64 = 16;
/// `mailer` fails every event whose sequence number is a multiple of this.
const FAIL_EVERY: u64 = 100;
/// Subscriptions on the bus, each handling every event.
const SUBSCRIPTIONS: u64 = 3;
/// Simulated dashboards in configuration `b`.
const DASHBOARDS: u32 = 4;
/// The dashboard's refresh period (`REFRESH_MS` in `app.js`).
const DASHBOARD_PERIOD: Duration = Duration::from_secs(2);
/// What a dashboard GETs at each refresh, both at once.
const DASHBOARD_ROUTES: [&str; 2] = ["/v1/subscriptions?limit=500", "/v1/dead-letters?limit=500"];
/// Clients in a loop in configuration `c`.
const READERS: usize = 8;
/// What they GET, in turn.
const READER_ROUTES: [&str; 4] = [
    "/v1/subscriptions",
    "/v1/dead-letters",
    "/v1/events?limit=50&order=newest",
    "/metrics",
];
/// How long the load runs before the clock starts.
const SETTLE: Duration = Duration::from_millis(300);
/// How long one run may take before the benchmark gives up.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "bench.load.recorded", version = 1, source = "bench")]
struct Recorded {
    #[event(partition_key)]
    account: String,
    seq: u64,
    amount_cents: u64,
    #[event(pii)]
    email: String,
}

fn recorded(seq: u64) -> Recorded {
    Recorded {
        account: format!("acct-{}", seq % 64),
        seq,
        amount_cents: seq * 7 % 10_000,
        email: format!("user-{}@example.com", seq % 1_000),
    }
}

/// What a run does beside the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Load {
    Idle,
    Dashboards,
    Readers,
}

impl Load {
    const ALL: [Load; 3] = [Load::Idle, Load::Dashboards, Load::Readers];

    fn letter(self) -> &'static str {
        match self {
            Load::Idle => "a",
            Load::Dashboards => "b",
            Load::Readers => "c",
        }
    }

    fn describe(self) -> String {
        match self {
            Load::Idle => "no API traffic".to_owned(),
            Load::Dashboards => format!(
                "{DASHBOARDS} dashboards polling every {}s",
                DASHBOARD_PERIOD.as_secs()
            ),
            Load::Readers => format!("{READERS} clients reading in a loop"),
        }
    }
}

/// How big the run is.
#[derive(Debug, Clone, Copy)]
struct Settings {
    events: u64,
    rounds: usize,
    /// What the clients of `c` GET: `READER_ROUTES`, or those of `ADMIN_LOAD_ROUTES`.
    routes: &'static [&'static str],
}

/// One request's route and how long it took.
type Sample = (&'static str, Duration);

/// What one run measured.
#[derive(Debug)]
struct RunResult {
    elapsed: Duration,
    /// Requests started while the clock ran.
    samples: Vec<Sample>,
    /// CPU time spent while the clock ran, by group of threads.
    cpu: BTreeMap<&'static str, Duration>,
}

/// The groups of threads whose CPU time is told apart, by the start of their names.
const THREAD_GROUPS: [(&str, &str); 3] = [
    ("bus", "service"),
    ("event-store-sql", "sqlite writer"),
    ("client", "clients"),
];

/// CPU time (user and system) of this process's threads so far, by group (`THREAD_GROUPS`,
/// or `other`), from `/proc/self/task/*/stat` in ticks of 10 ms; empty where there is no
/// `/proc`.
fn cpu_by_group() -> BTreeMap<&'static str, Duration> {
    let mut groups = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return groups;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // `tid (name) state ppid ...`: the name may hold spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = &stat[open + 1..close];
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // Fields 14 and 15 of the line (utime, stime) are 11 and 12 after the name.
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
            .sum();
        let group = THREAD_GROUPS
            .iter()
            .find(|(prefix, _)| name.starts_with(prefix))
            .map_or("other", |&(_, group)| group);
        *groups.entry(group).or_insert(Duration::ZERO) += Duration::from_millis(ticks * 10);
    }
    groups
}

/// Handler calls so far, and the wake-up of the timer at the last one.
#[derive(Debug)]
struct Progress {
    handled: AtomicU64,
    target: u64,
    done: Notify,
}

impl Progress {
    fn tick(&self) {
        if self.handled.fetch_add(1, SeqCst) + 1 == self.target {
            self.done.notify_one();
        }
    }
}

/// A fresh durable bus with the three subscriptions.
fn bus(dir: &tempfile::TempDir, progress: &Arc<Progress>) -> EventBus {
    let store = SqliteStore::open(dir.path().join("events.db")).expect("opens the store");
    let bus = EventBus::builder().store(store).build();
    for name in ["projection", "audit"] {
        let progress = Arc::clone(progress);
        bus.subscribe_event::<Recorded, _, _>(name, move |_| {
            progress.tick();
            async { Ok(()) }
        })
        .expect("subscribes");
    }
    let progress = Arc::clone(progress);
    bus.subscribe_event::<Recorded, _, _>("mailer", move |envelope| {
        let fails = envelope.payload.seq % FAIL_EVERY == 0;
        progress.tick();
        async move {
            if fails {
                Err(HandlerError::permanent("smtp relay refused the message"))
            } else {
                Ok(())
            }
        }
    })
    .expect("subscribes");
    bus
}

/// GETs `base` + `route`, asserts 200, reads the whole body; the time it took.
async fn get(http: &reqwest::Client, base: &str, route: &str) -> Duration {
    let started = Instant::now();
    let response = http
        .get(format!("{base}{route}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap_or_else(|error| panic!("GET {route}: {error}"));
    let status = response.status();
    let body = response.bytes().await.expect("reads the body");
    let elapsed = started.elapsed();
    assert!(
        status.is_success(),
        "GET {route}: {status}: {}",
        String::from_utf8_lossy(&body)
    );
    elapsed
}

/// One dashboard: both GETs at once every `DASHBOARD_PERIOD`, starting after its phase.
async fn dashboard(
    base: String,
    index: u32,
    mut stop: watch::Receiver<bool>,
    measuring: Arc<AtomicBool>,
) -> Vec<Sample> {
    let http = reqwest::Client::new();
    let mut samples = Vec::new();
    let mut next = tokio::time::Instant::now() + DASHBOARD_PERIOD * index / DASHBOARDS;
    while !*stop.borrow() {
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            _ = stop.changed() => break,
        }
        let record = measuring.load(SeqCst);
        let [subscriptions, letters] = DASHBOARD_ROUTES;
        let (a, b) = tokio::join!(get(&http, &base, subscriptions), get(&http, &base, letters));
        if record {
            samples.extend([(subscriptions, a), (letters, b)]);
        }
        next += DASHBOARD_PERIOD;
    }
    samples
}

/// One client in a loop over `routes`, starting at route `index`.
async fn reader(
    base: String,
    routes: &'static [&'static str],
    index: usize,
    stop: watch::Receiver<bool>,
    measuring: Arc<AtomicBool>,
) -> Vec<Sample> {
    let http = reqwest::Client::new();
    let mut samples = Vec::new();
    let mut turn = index;
    while !*stop.borrow() {
        let route = routes[turn % routes.len()];
        turn += 1;
        let record = measuring.load(SeqCst);
        let took = get(&http, &base, route).await;
        if record {
            samples.push((route, took));
        }
    }
    samples
}

/// Waits until every subscription's lag is 0 and the dead letters are all stored.
async fn settled(bus: &EventBus, events: u64) {
    let letters = usize::try_from(events.div_ceil(FAIL_EVERY)).expect("small");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let infos = bus.subscriptions().await;
        let caught_up = infos.iter().all(|info| info.lag == Some(0));
        let stored = bus.try_dead_letters().await.expect("dead letters").len();
        if caught_up && stored == letters {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not settled after 30 s: lags {:?}, {stored} of {letters} dead letters",
            infos.iter().map(|info| info.lag).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One run: a fresh bus and API, `load` on it from `clients`, `events` published.
async fn run(load: Load, settings: Settings, clients: &Handle) -> RunResult {
    let events = settings.events;
    let dir = tempfile::tempdir().expect("temporary directory");
    let progress = Arc::new(Progress {
        handled: AtomicU64::new(0),
        target: events * SUBSCRIPTIONS,
        done: Notify::new(),
    });
    let bus = bus(&dir, &progress);
    let serving = Admin::new(bus.clone())
        .token(Token::read(TOKEN))
        .serve("127.0.0.1:0".parse().expect("address"))
        .await
        .expect("serves the admin API");
    let base = format!("http://{}", serving.local_addr());

    let (stop, stopped) = watch::channel(false);
    let measuring = Arc::new(AtomicBool::new(false));
    let tasks: Vec<JoinHandle<Vec<Sample>>> = match load {
        Load::Idle => Vec::new(),
        Load::Dashboards => (0..DASHBOARDS)
            .map(|i| {
                clients.spawn(dashboard(
                    base.clone(),
                    i,
                    stopped.clone(),
                    Arc::clone(&measuring),
                ))
            })
            .collect(),
        Load::Readers => (0..READERS)
            .map(|i| {
                clients.spawn(reader(
                    base.clone(),
                    settings.routes,
                    i,
                    stopped.clone(),
                    Arc::clone(&measuring),
                ))
            })
            .collect(),
    };
    tokio::time::sleep(SETTLE).await;

    measuring.store(true, SeqCst);
    let cpu_before = cpu_by_group();
    let started = Instant::now();
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|first| {
            let bus = bus.clone();
            tokio::spawn(async move {
                let mut seq = first;
                while seq < events {
                    bus.publish(recorded(seq)).await.expect("publishes");
                    seq += PUBLISHERS;
                }
            })
        })
        .collect();
    for publisher in publishers {
        publisher.await.expect("publisher");
    }
    tokio::time::timeout(RUN_TIMEOUT, progress.done.notified())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{} of {} handler calls after {RUN_TIMEOUT:?}",
                progress.handled.load(SeqCst),
                progress.target
            )
        });
    let elapsed = started.elapsed();
    measuring.store(false, SeqCst);
    let mut cpu = cpu_by_group();
    for (group, spent) in &mut cpu {
        *spent = spent.saturating_sub(cpu_before.get(group).copied().unwrap_or_default());
    }

    stop.send(true).expect("clients listening");
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await.expect("client"));
    }
    settled(&bus, events).await;
    serving.shutdown().await;
    bus.shutdown().await;
    RunResult {
        elapsed,
        samples,
        cpu,
    }
}

/// The `p`th percentile (nearest rank) of sorted `samples`.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        f64::midpoint(sorted[middle - 1], sorted[middle])
    } else {
        sorted[middle]
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

/// Per route: samples, p50, p99 and max, sorted by route.
fn latencies(samples: &[Sample]) -> Vec<(&'static str, usize, Duration, Duration, Duration)> {
    let mut by_route: BTreeMap<&'static str, Vec<Duration>> = BTreeMap::new();
    for &(route, took) in samples {
        by_route.entry(route).or_default().push(took);
    }
    by_route
        .into_iter()
        .map(|(route, mut took)| {
            took.sort_unstable();
            let max = *took.last().expect("samples");
            (
                route,
                took.len(),
                percentile(&took, 50),
                percentile(&took, 99),
                max,
            )
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo test --benches` runs every bench binary once, without `--bench`: a smoke run.
    let quick = !args.iter().any(|arg| arg == "--bench")
        || args.iter().any(|arg| arg == "--quick")
        || std::env::var_os("ADMIN_LOAD_QUICK").is_some_and(|v| !v.is_empty() && v != "0");
    // `ADMIN_LOAD_ROUTES=/metrics,/v1/events`: what the clients of `c` read, to tell the
    // routes' costs apart.
    let routes: &'static [&'static str] = match std::env::var("ADMIN_LOAD_ROUTES") {
        Ok(list) if !list.trim().is_empty() => Vec::leak(
            list.split(',')
                .map(|route| &*route.trim().to_owned().leak())
                .collect(),
        ),
        _ => &READER_ROUTES,
    };
    let settings = Settings {
        events: if quick { 2_000 } else { EVENTS },
        rounds: if quick { 1 } else { ROUNDS },
        routes,
    };

    let bus_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bus")
        .enable_all()
        .build()
        .expect("runtime");
    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("client")
        .enable_all()
        .build()
        .expect("client runtime");
    let clients = client_runtime.handle().clone();

    let started = Instant::now();
    let mut per_load: BTreeMap<&'static str, Vec<RunResult>> = BTreeMap::new();
    bus_runtime.block_on(async {
        // Warm-up: page cache, allocator, connection set-up; discarded.
        let warm_up = Settings {
            events: settings.events / 4,
            ..settings
        };
        run(Load::Idle, warm_up, &clients).await;
        for round in 1..=settings.rounds {
            for load in Load::ALL {
                let result = run(load, settings, &clients).await;
                eprintln!(
                    "round {round} {}: {:.0} events/s ({:.2} s), {} requests",
                    load.letter(),
                    settings.events as f64 / result.elapsed.as_secs_f64(),
                    result.elapsed.as_secs_f64(),
                    result.samples.len()
                );
                per_load.entry(load.letter()).or_default().push(result);
            }
        }
    });
    drop(bus_runtime);
    client_runtime.shutdown_timeout(Duration::from_secs(5));

    report(settings, &per_load);
    println!(
        "admin_load: whole run {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Prints the table, the latencies and one line per configuration.
fn report(settings: Settings, per_load: &BTreeMap<&'static str, Vec<RunResult>>) {
    let rate = |result: &RunResult| settings.events as f64 / result.elapsed.as_secs_f64();
    let rates = |load: Load| -> Vec<f64> { per_load[load.letter()].iter().map(rate).collect() };
    let baseline = rates(Load::Idle);

    println!(
        "admin_load: durable bus on SQLite (FULL), {SUBSCRIPTIONS} subscriptions (mailer \
         dead-letters every {FAIL_EVERY}th event), {PUBLISHERS} publishers, {} events per run, \
         {} rounds of a, b, c",
        settings.events, settings.rounds
    );
    println!(
        "{:<42} {:>13} {:>10} {:>16}  events/s per round",
        "configuration", "median ev/s", "vs a", "per-round vs a"
    );
    let mut lines = Vec::new();
    for load in Load::ALL {
        let own = rates(load);
        let ratios: Vec<f64> = own.iter().zip(&baseline).map(|(x, a)| x / a).collect();
        let (lowest, highest) = ratios
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &r| {
                (lo.min(r), hi.max(r))
            });
        let ratio = median(&ratios);
        println!(
            "{:<42} {:>13.0} {:>9.3}x {:>16}  {}",
            format!("{} {}", load.letter(), load.describe()),
            median(&own),
            ratio,
            format!("{lowest:.3}-{highest:.3}"),
            own.iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let mut line = format!(
            "{} ({}): {:.0} events/s (median of {})",
            load.letter(),
            load.describe(),
            median(&own),
            own.len()
        );
        if load != Load::Idle {
            let samples: Vec<Sample> = per_load[load.letter()]
                .iter()
                .flat_map(|result| result.samples.iter().copied())
                .collect();
            let seconds: f64 = per_load[load.letter()]
                .iter()
                .map(|result| result.elapsed.as_secs_f64())
                .sum();
            let _ = write!(
                line,
                ", {ratio:.3}x of a (per round {lowest:.3}-{highest:.3}); {:.0} requests/s",
                samples.len() as f64 / seconds
            );
            for (route, count, p50, p99, _) in latencies(&samples) {
                let _ = write!(
                    line,
                    "; {route} p50 {:.2} ms p99 {:.2} ms (n={count})",
                    millis(p50),
                    millis(p99)
                );
            }
        }
        lines.push(line);
    }
    let target = median(
        &rates(Load::Dashboards)
            .iter()
            .zip(&baseline)
            .map(|(b, a)| b / a)
            .collect::<Vec<_>>(),
    );
    println!(
        "target b/a >= 0.90 (the bus loses under 10 % with dashboards polling): {:.3}x, {}",
        target,
        if target >= 0.90 { "met" } else { "NOT met" }
    );

    print_cpu(per_load);
    print_latencies(per_load);
    for line in lines {
        println!("admin_load {line}");
    }
}

/// The CPU time spent while the clock ran, per configuration, by group of threads.
fn print_cpu(per_load: &BTreeMap<&'static str, Vec<RunResult>>) {
    println!("CPU while the clock ran, in cores (CPU seconds / seconds), by threads:");
    for load in Load::ALL {
        let results = &per_load[load.letter()];
        let seconds: f64 = results.iter().map(|r| r.elapsed.as_secs_f64()).sum();
        let mut spent: BTreeMap<&'static str, f64> = BTreeMap::new();
        for result in results {
            for (&group, took) in &result.cpu {
                *spent.entry(group).or_default() += took.as_secs_f64();
            }
        }
        let shares: Vec<String> = spent
            .iter()
            .map(|(group, cpu)| format!("{group} {:.2}", cpu / seconds))
            .collect();
        println!("{}: {}", load.letter(), shares.join(", "));
    }
}

/// p50, p99 and max per route, of `b` and `c`.
fn print_latencies(per_load: &BTreeMap<&'static str, Vec<RunResult>>) {
    println!("API latency, client-side, requests started while the clock ran (ms):");
    println!(
        "{:<3} {:<36} {:>7} {:>9} {:>9} {:>9}",
        "", "route", "n", "p50", "p99", "max"
    );
    for load in [Load::Dashboards, Load::Readers] {
        let samples: Vec<Sample> = per_load[load.letter()]
            .iter()
            .flat_map(|result| result.samples.iter().copied())
            .collect();
        for (route, count, p50, p99, max) in latencies(&samples) {
            println!(
                "{:<3} {route:<36} {count:>7} {:>9.2} {:>9.2} {:>9.2}",
                load.letter(),
                millis(p50),
                millis(p99),
                millis(max)
            );
        }
    }
}
