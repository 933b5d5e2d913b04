//! Crash safety of the durable bus on SQLite, for real: a child process publishes events
//! through a bus whose subscriptions write to the same database, and is killed with SIGKILL
//! at a random moment (while appending, dispatching or inside a handler), over and over. A
//! last child resumes and drains. Then:
//!
//! - every publish that returned `Ok` to the child is stored (losses = 0);
//! - every stored event reached every subscription (its effect row is there);
//! - the `ledger` handler, which writes its effect and its inbox claim in one transaction,
//!   has each event's effect exactly once;
//! - after each kill, no subscription's checkpoint has passed an event it did not handle.
//!
//! Parent and child are this one binary (`harness = false`): the parent re-runs itself with
//! `CRASH_TEST_CHILD` set. Bounded: at most `ROUNDS` kills and `BUDGET` of wall time.

use event_core::store::rusqlite::{Connection, TransactionBehavior};
use event_core::store::{SqliteStore, Store};
use event_core::{DomainEvent, EventBus, HandlerError, SubscriptionOptions};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Set in the child's environment: `<database path>|<first n>|<how many>`.
const CHILD: &str = "CRASH_TEST_CHILD";
/// Children killed at most.
const ROUNDS: u32 = 30;
/// Events each child tries to publish.
const PER_CHILD: u64 = 60;
/// Wall time after which no new round starts.
const BUDGET: Duration = Duration::from_secs(90);
/// The subscriptions, each writing one row per handled event into a table of its name.
const SUBSCRIPTIONS: [&str; 2] = ["ledger", "audit"];

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "crash.ticked", source = "crash-test")]
struct Ticked {
    #[event(partition_key)]
    key: String,
    n: i64,
}

fn main() -> ExitCode {
    match std::env::var(CHILD) {
        Ok(spec) => child(&spec),
        Err(_) => parent(),
    }
}

// ---------------------------------------------------------------------------------------
// The child: publishes, handles, gets killed.

fn child(spec: &str) -> ExitCode {
    let mut parts = spec.split('|');
    let (Some(path), Some(first), Some(count)) = (parts.next(), parts.next(), parts.next()) else {
        eprintln!("bad {CHILD}: {spec}");
        return ExitCode::FAILURE;
    };
    let (Ok(first), Ok(count)) = (first.parse::<u64>(), count.parse::<u64>()) else {
        eprintln!("bad {CHILD}: {spec}");
        return ExitCode::FAILURE;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run_child(Path::new(path), first, count));
    ExitCode::SUCCESS
}

async fn run_child(path: &Path, first: u64, count: u64) {
    let store = SqliteStore::open(path).expect("the store opens");
    let setup = store.connection().expect("a connection");
    setup
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS ledger (event_id TEXT NOT NULL, n INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS audit (event_id TEXT NOT NULL, n INTEGER NOT NULL);",
        )
        .expect("effect tables");
    let ledger = Arc::new(Mutex::new(store.connection().expect("a connection")));
    let audit = Arc::new(Mutex::new(store.connection().expect("a connection")));
    let bus = EventBus::builder()
        .store(store)
        .poll_interval(Duration::from_millis(20))
        .build();

    // Effect and inbox claim in one transaction: the effect happens once.
    bus.subscribe_with::<Ticked, _, _>(
        "ledger",
        &SubscriptionOptions::new().concurrency(2),
        move |env| {
            let conn = Arc::clone(&ledger);
            async move {
                let mut conn = conn
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                if SqliteStore::claim_in(&tx, "ledger", env.id)? {
                    tx.execute(
                        "INSERT INTO ledger (event_id, n) VALUES (?1, ?2)",
                        (env.id.to_string(), env.payload.n),
                    )?;
                    pause();
                    tx.commit()?;
                }
                Ok::<(), HandlerError>(())
            }
        },
    )
    .expect("subscribes");

    // Effect first, then the bus's own claim: at least once, rarely twice.
    bus.subscribe_pattern("audit", "*", move |env| {
        let conn = Arc::clone(&audit);
        async move {
            let tick: Ticked = serde_json::from_str(env.payload.get())?;
            pause();
            conn.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .execute(
                    "INSERT INTO audit (event_id, n) VALUES (?1, ?2)",
                    (env.id.to_string(), tick.n),
                )?;
            Ok(())
        }
    })
    .expect("subscribes");

    let mut stdout = std::io::stdout();
    for n in first..first + count {
        let tick = Ticked {
            key: format!("k-{}", n % 5),
            n: i64::try_from(n).expect("small numbers"),
        };
        let envelope = bus.publish(tick).await.expect("publishes");
        writeln!(stdout, "ok {}", envelope.id).expect("stdout");
        stdout.flush().expect("stdout");
    }
    bus.shutdown().await;
    writeln!(stdout, "done").expect("stdout");
}

/// A short random pause inside a handler, so that kills land there too.
fn pause() {
    std::thread::sleep(Duration::from_micros(fastrand::u64(0..400)));
}

// ---------------------------------------------------------------------------------------
// The parent: runs children, kills them, checks the database.

struct Tally {
    kills: u32,
    finished: u32,
    acknowledged: HashSet<Uuid>,
    problems: Vec<String>,
}

fn parent() -> ExitCode {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("crash.db");
    let exe = std::env::current_exe().expect("own path");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut tally = Tally {
        kills: 0,
        finished: 0,
        acknowledged: HashSet::new(),
        problems: Vec::new(),
    };

    let mut first = 0;
    for _ in 0..ROUNDS {
        if started.elapsed() > BUDGET {
            break;
        }
        let kill_after = Duration::from_millis(fastrand::u64(5..250));
        let (lines, killed, success) = run(&exe, &path, first, PER_CHILD, Some(kill_after));
        if killed {
            tally.kills += 1;
        } else {
            tally.finished += 1;
            if !success {
                tally.problems.push(format!("child from {first} failed"));
            }
        }
        acknowledge(&mut tally, &lines);
        first += PER_CHILD;
        let found = runtime.block_on(checkpoints_never_skip(&path));
        tally.problems.extend(found);
    }

    // A last life that publishes nothing: the subscriptions resume and drain.
    let (lines, _, success) = run(&exe, &path, first, 0, None);
    if !success || lines.last().map(String::as_str) != Some("done") {
        tally
            .problems
            .push("the last child did not drain and stop".to_owned());
    }
    let summary = runtime.block_on(final_check(&path, &mut tally));
    println!(
        "crash test: {} kills, {} children finished, {} publishes acknowledged, {summary}, {:.1} s",
        tally.kills,
        tally.finished,
        tally.acknowledged.len(),
        started.elapsed().as_secs_f64()
    );
    if tally.kills == 0 {
        tally
            .problems
            .push("no child was killed: the test proved nothing".to_owned());
    }
    if tally.problems.is_empty() {
        println!("test crash ... ok");
        ExitCode::SUCCESS
    } else {
        for problem in &tally.problems {
            eprintln!("crash test: {problem}");
        }
        ExitCode::FAILURE
    }
}

/// Runs one child; kills it after `kill_after` if it is still running. Returns its stdout
/// lines, whether it was killed, and whether it exited successfully.
fn run(
    exe: &Path,
    path: &Path,
    first: u64,
    count: u64,
    kill_after: Option<Duration>,
) -> (Vec<String>, bool, bool) {
    let mut child = Command::new(exe)
        .env(CHILD, format!("{}|{first}|{count}", path.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the child starts");
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

fn acknowledge(tally: &mut Tally, lines: &[String]) {
    for line in lines {
        if let Some(id) = line.strip_prefix("ok ") {
            match id.parse() {
                Ok(id) => {
                    tally.acknowledged.insert(id);
                }
                Err(_) => tally.problems.push(format!("bad child line: {line}")),
            }
        }
    }
}

/// Every stored event, in position order.
async fn stored(store: &SqliteStore) -> Vec<event_core::store::StoredEvent> {
    let mut events = Vec::new();
    loop {
        let after = events
            .last()
            .map_or(0, |e: &event_core::store::StoredEvent| e.position);
        let batch = store.read(after, 1000).await.expect("reads");
        if batch.is_empty() {
            return events;
        }
        events.extend(batch);
    }
}

/// How many effect rows each event id has in a subscription's table.
fn effects(conn: &Connection, table: &str) -> HashMap<String, i64> {
    let exists: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |row| row.get(0),
        )
        .expect("schema query");
    if !exists {
        return HashMap::new();
    }
    let mut query = conn
        .prepare(&format!(
            "SELECT event_id, count(*) FROM {table} GROUP BY event_id"
        ))
        .expect("effect query");
    query
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("effect rows")
        .map(|row| row.expect("effect row"))
        .collect()
}

/// No subscription's checkpoint is past an event it did not handle.
async fn checkpoints_never_skip(path: &Path) -> Vec<String> {
    let store = SqliteStore::open(path).expect("the store opens after a kill");
    let conn = store.connection().expect("a connection");
    let events = stored(&store).await;
    let mut problems = Vec::new();
    for subscription in SUBSCRIPTIONS {
        let checkpoint = store.checkpoint(subscription).await.expect("checkpoint");
        let done = effects(&conn, subscription);
        for event in events.iter().take_while(|e| e.position <= checkpoint) {
            if !done.contains_key(&event.envelope.id.to_string()) {
                problems.push(format!(
                    "{subscription}: checkpoint {checkpoint} passed position {} unhandled",
                    event.position
                ));
            }
        }
    }
    problems
}

/// Checks the end state; returns a summary of the counts.
async fn final_check(path: &PathBuf, tally: &mut Tally) -> String {
    let store = SqliteStore::open(path).expect("the store opens");
    let conn = store.connection().expect("a connection");
    let events = stored(&store).await;
    let ids: HashSet<Uuid> = events.iter().map(|e| e.envelope.id).collect();
    let lost = tally.acknowledged.difference(&ids).count();
    if lost > 0 {
        tally
            .problems
            .push(format!("{lost} acknowledged publishes are not stored"));
    }
    let head = store.head().await.expect("head");
    let mut twice = HashMap::new();
    for subscription in SUBSCRIPTIONS {
        let done = effects(&conn, subscription);
        let missing = ids
            .iter()
            .filter(|id| !done.contains_key(&id.to_string()))
            .count();
        if missing > 0 {
            tally.problems.push(format!(
                "{subscription}: {missing} stored events never handled"
            ));
        }
        twice.insert(subscription, done.values().filter(|&&n| n > 1).count());
        let checkpoint = store.checkpoint(subscription).await.expect("checkpoint");
        if checkpoint != head {
            tally.problems.push(format!(
                "{subscription}: checkpoint {checkpoint} after draining, head {head}"
            ));
        }
    }
    if twice["ledger"] > 0 {
        tally.problems.push(format!(
            "ledger: {} events took effect twice despite the inbox claim",
            twice["ledger"]
        ));
    }
    format!(
        "{} events stored, {lost} lost, ledger effects twice: {}, audit effects twice \
         (at-least-once, allowed): {}",
        events.len(),
        twice["ledger"],
        twice["audit"]
    )
}
