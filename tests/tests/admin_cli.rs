//! The ops CLI (`event_admin::main()`), as the real binary `event-admin` (the orders example's
//! events linked): every command against a SQLite store opened directly, against a running
//! service's admin API (`--url`), and the main ones against PostgreSQL; `tail` following
//! appends; exit codes; and no plain value of a PII field in any output.

use event_admin::{Admin, Token};
use event_core::store::{PostgresStore, SqliteStore, Store};
use event_core::{EventBus, HandlerError, RetryPolicy};
use orders::order::{
    Address, LineItem, OrderCheckoutExpired, OrderCreated, OrderPaid, PaymentMethod,
};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};
use tests::postgres_server::PostgresServer;

const BIN: &str = env!("CARGO_BIN_EXE_event-admin");
/// The plain values of `OrderCreated`'s PII fields: never in the CLI's output.
const PII: [&str; 4] = [
    "ada@example.com",
    "Ada Lovelace",
    "Torstraße 42",
    "3rd floor",
];
/// How long one CLI run may take.
const RUN_LIMIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// Running the binary

#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:?}"))
    }

    fn expect(self, code: i32) -> Self {
        assert_eq!(self.code, code, "exit code of {self:#?}");
        assert_no_pii(&self.stdout);
        assert_no_pii(&self.stderr);
        self
    }
}

fn assert_no_pii(text: &str) {
    for value in PII {
        assert!(!text.contains(value), "PII {value:?} shown: {text}");
    }
}

fn command(args: &[&str], token: Option<&str>) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_remove(event_admin::TOKEN_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(token) = token {
        command.env(event_admin::TOKEN_ENV, token);
    }
    command
}

fn read_all(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// Runs the CLI to its end, within [`RUN_LIMIT`].
fn run_blocking(args: &[&str], token: Option<&str>) -> Run {
    let mut child = command(args, token).spawn().expect("starts event-admin");
    let stdout = read_all(child.stdout.take().unwrap());
    let stderr = read_all(child.stderr.take().unwrap());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("event-admin {args:?} did not end within {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        code: status.code().expect("exited, not killed"),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// [`run_blocking`] off the async runtime (which may be serving the API it talks to).
async fn cli(args: &[&str], token: Option<&str>) -> Run {
    let args: Vec<String> = args.iter().map(|&a| a.to_owned()).collect();
    let token = token.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_blocking(&args, token.as_deref())
    })
    .await
    .unwrap()
}

/// [`cli`] with the target's arguments (`--store SPEC`, `--url URL`) first.
async fn at(target: &[&str], args: &[&str], token: Option<&str>) -> Run {
    let all: Vec<&str> = target.iter().chain(args).copied().collect();
    cli(&all, token).await
}

/// A long-running CLI (`tail`), its stdout read line by line; killed when dropped.
struct Tail {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Tail {
    fn spawn(args: &[&str], token: Option<&str>) -> Tail {
        let mut child = command(args, token)
            .spawn()
            .expect("starts event-admin tail");
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Tail {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Takes the lines printed so far.
    fn drain(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            assert_no_pii(&line);
            self.seen.push(line);
        }
    }

    fn has(&self, needle: &str) -> bool {
        self.seen.iter().any(|line| line.contains(needle))
    }

    /// Whether it is still running (it must be: it follows until killed).
    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// The store the commands look at

fn created(order_id: &str) -> OrderCreated {
    OrderCreated {
        order_id: order_id.into(),
        customer_id: "cus_481".into(),
        customer_email: "ada@example.com".into(),
        customer_name: "Ada Lovelace".into(),
        line_items: vec![LineItem {
            sku: "MUG-BLK-350".into(),
            quantity: 2,
            unit_price_cents: 1250,
        }],
        subtotal_cents: 2500,
        shipping_cents: 495,
        tax_cents: 0,
        total_cents: 2995,
        currency: "EUR".into(),
        shipping_address: Address {
            name: "Ada Lovelace".into(),
            company: None,
            line1: "Torstraße 42".into(),
            line2: Some("3rd floor".into()),
            city: "Berlin".into(),
            region: None,
            postal_code: "10119".into(),
            country: "DE".into(),
            phone: None,
        },
        created_at: "2026-11-23T10:00:00.123Z".into(),
    }
}

fn paid(order_id: &str) -> OrderPaid {
    OrderPaid {
        order_id: order_id.into(),
        payment_id: "pay_1".into(),
        method: PaymentMethod::Card,
        amount_cents: 2995,
        currency: "EUR".into(),
        receipt_url: None,
        paid_at: "2026-11-23T10:01:00Z".into(),
    }
}

fn expired(order_id: &str) -> OrderCheckoutExpired {
    OrderCheckoutExpired {
        order_id: order_id.into(),
        checkout_session_id: "cs_1".into(),
        expired_at: "2026-11-23T11:00:00Z".into(),
    }
}

/// What the `billing` subscription does: it fails `ord_bad` until healed, `ord_worse`
/// always, and counts what it handled.
#[derive(Debug, Default)]
struct Billing {
    healed: AtomicBool,
    handled: AtomicUsize,
    handled_bad: AtomicUsize,
}

fn durable_bus(store: impl Store) -> EventBus {
    EventBus::builder()
        .store(store)
        .poll_interval(Duration::from_millis(20))
        .retry(RetryPolicy::never())
        .build()
}

fn subscribe_billing(bus: &EventBus) -> Arc<Billing> {
    let billing = Arc::new(Billing::default());
    let state = Arc::clone(&billing);
    bus.subscribe_event::<OrderCreated, _, _>("billing", move |event| {
        let state = Arc::clone(&state);
        async move {
            let id = event.payload.order_id.as_str();
            if id == "ord_worse" || (id == "ord_bad" && !state.healed.load(SeqCst)) {
                return Err(HandlerError::permanent("payment gateway said no"));
            }
            if id == "ord_bad" {
                state.handled_bad.fetch_add(1, SeqCst);
            }
            state.handled.fetch_add(1, SeqCst);
            Ok(())
        }
    })
    .expect("subscribes billing");
    billing
}

/// Waits, at most 20 s, for `check`.
async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not within 20 s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until every subscription of `bus` has caught up with the store, and `letters`
/// dead letters are kept.
async fn settled(bus: &EventBus, letters: usize) {
    until("the subscriptions catch up", async || {
        let subscriptions = bus.subscriptions().await;
        subscriptions
            .iter()
            .all(|s| s.lag == Some(0) && s.in_flight == 0)
            && bus.dead_letters().await.len() == letters
    })
    .await;
}

/// Publishes the events of the fixture: order `ord_1` created and paid, `ord_bad` created
/// (dead-lettered by `billing`).
async fn publish_fixture(bus: &EventBus) {
    bus.publish(created("ord_1")).await.expect("publishes");
    bus.publish(created("ord_bad")).await.expect("publishes");
    bus.publish(paid("ord_1")).await.expect("publishes");
    bus.publish(expired("ord_2")).await.expect("publishes");
}

/// A SQLite store with four events, `billing` at the head with one dead letter (`ord_bad`),
/// and its bus shut down.
async fn sqlite_fixture(dir: &Path) -> PathBuf {
    let path = dir.join("events.db");
    let bus = durable_bus(SqliteStore::open(&path).expect("opens the store"));
    subscribe_billing(&bus);
    publish_fixture(&bus).await;
    settled(&bus, 1).await;
    bus.shutdown().await;
    drop(bus);
    path
}

/// A service on a SQLite store: `billing` with two dead letters (`ord_bad`, `ord_worse`),
/// its admin API on loopback with the operate token `t`.
struct Service {
    _dir: tempfile::TempDir,
    bus: EventBus,
    billing: Arc<Billing>,
    serving: event_admin::Serving,
    url: String,
}

async fn service() -> Service {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let bus = durable_bus(SqliteStore::open(&path).unwrap());
    let billing = subscribe_billing(&bus);
    publish_fixture(&bus).await;
    bus.publish(created("ord_worse")).await.unwrap();
    settled(&bus, 2).await;
    let serving = Admin::new(bus.clone())
        .token(Token::operate("t"))
        .serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let url = format!("http://{}", serving.local_addr());
    Service {
        _dir: dir,
        bus,
        billing,
        serving,
        url,
    }
}

fn rows<'a>(json: &'a Value, field: &str) -> &'a [Value] {
    json[field]
        .as_array()
        .unwrap_or_else(|| panic!("no {field} in {json}"))
}

// ---------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_and_dead_letters_of_a_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = sqlite_fixture(dir.path()).await;
    let spec = format!("sqlite:{}", path.display());
    let store = ["--store", spec.as_str()];

    // subscriptions: those with a checkpoint or dead letters, and those named.
    let table = at(&store, &["subscriptions"], None).await.expect(0);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "CHECKPOINT", "LAG", "DEAD", "LETTERS"],
        "{table:?}"
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["billing", "4", "0", "1"]
    );
    assert!(lines[2].contains("head at position 4"), "{table:?}");
    // Columns aligned: each header starts where its cells start.
    let lag_at = lines[0].find("LAG").unwrap();
    assert_eq!(&lines[1][lag_at..=lag_at], "0", "{table:?}");
    assert!(!table.stderr.contains("lists no checkpoints"), "{table:?}");
    let json = at(
        &store,
        &["subscriptions", "billing", "audit", "--json"],
        None,
    )
    .await
    .expect(0)
    .json();
    assert_eq!(json["head"], 4);
    let subscriptions = rows(&json, "subscriptions");
    assert_eq!(subscriptions[0]["name"], "audit");
    assert_eq!(subscriptions[0]["lag"], 4);
    assert_eq!(subscriptions[1]["name"], "billing");
    assert_eq!(subscriptions[1]["checkpoint"], 4);
    assert_eq!(subscriptions[1]["dead_letters"], 1);

    // dlq list and show.
    let json = at(&store, &["dlq", "list", "--json"], None)
        .await
        .expect(0)
        .json();
    let letters = rows(&json, "dead_letters");
    assert_eq!(letters.len(), 1, "{json}");
    let letter = &letters[0];
    assert_eq!(letter["subscription"], "billing");
    assert_eq!(letter["event_type"], "order.created");
    assert_eq!(letter["partition_key"], "ord_bad");
    assert_eq!(letter["error"], "payment gateway said no");
    assert_eq!(letter["event"]["payload"]["customer_email"], "[redacted]");
    assert_eq!(letter["event"]["payload"]["currency"], "EUR");
    let id = letter["id"].as_str().unwrap().to_owned();
    assert!(id.ends_with(":billing"), "{id}");
    let table = at(&store, &["dlq", "list"], None).await.expect(0);
    assert!(table.stdout.starts_with("ID "), "{table:?}");
    assert!(
        table.stdout.lines().nth(1).unwrap().starts_with(&id),
        "{table:?}"
    );
    assert!(table.stdout.contains("payment gateway said no"));
    let empty = at(&store, &["dlq", "list", "--subscription", "audit"], None)
        .await
        .expect(0);
    assert_eq!(empty.stdout.trim(), "no dead letters");

    let show = at(&store, &["dlq", "show", &id], None).await.expect(0);
    assert!(show.stdout.contains("subscription   billing"), "{show:?}");
    assert!(show.stdout.contains("\"customer_name\": \"[redacted]\""));
    let json = at(&store, &["dlq", "show", &id, "--json"], None)
        .await
        .expect(0)
        .json();
    assert_eq!(json["id"], id.as_str());
    assert_eq!(json["event"]["payload"]["shipping_address"], "[redacted]");

    let missing = format!("{}:billing", uuid::Uuid::now_v7());
    let run = at(&store, &["dlq", "show", &missing], None).await.expect(1);
    assert!(
        run.stderr.contains(&format!("no dead letter {missing}")),
        "{run:?}"
    );
    let run = at(&store, &["dlq", "show", "not-an-id"], None)
        .await
        .expect(2);
    assert!(run.stderr.contains("not a dead letter id"), "{run:?}");

    // redeliver needs the service.
    let run = at(&store, &["dlq", "redeliver", &id], None).await.expect(2);
    assert!(run.stderr.contains("use --url"), "{run:?}");

    // discard removes the stored letter; a second time there is none.
    let sqlite = SqliteStore::open(&path).unwrap();
    let json = at(&store, &["dlq", "discard", &id, "--json"], None)
        .await
        .expect(0)
        .json();
    assert_eq!(json["action"], "discarded");
    assert!(sqlite.dead_letters(None).await.unwrap().is_empty());
    at(&store, &["dlq", "discard", &id], None).await.expect(1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_of_a_key_in_a_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = sqlite_fixture(dir.path()).await;
    let spec = format!("sqlite:{}", path.display());
    let store = ["--store", spec.as_str()];

    // timeline: the events of a key, filtered, newest first, paged.
    let table = at(&store, &["timeline", "ord_1"], None).await.expect(0);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{table:?}");
    assert!(lines[0].starts_with("POSITION"), "{table:?}");
    assert!(lines[1].contains("order.created") && lines[1].contains("[redacted]"));
    assert!(lines[2].contains("order.paid"));
    let json = at(
        &store,
        &["timeline", "ord_1", "--newest", "--limit", "1", "--json"],
        None,
    )
    .await
    .expect(0)
    .json();
    let events = rows(&json, "events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event"]["type"], "order.paid");
    let cursor = json["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let json = at(
        &store,
        &[
            "timeline", "ord_1", "--newest", "--cursor", &cursor, "--json",
        ],
        None,
    )
    .await
    .expect(0)
    .json();
    assert_eq!(rows(&json, "events")[0]["event"]["type"], "order.created");
    assert!(json["next_cursor"].is_null());
    let json = at(
        &store,
        &["timeline", "ord_1", "--type", "order.paid", "--json"],
        None,
    )
    .await
    .expect(0)
    .json();
    assert_eq!(rows(&json, "events").len(), 1);
    let run = at(&store, &["timeline", "ord_1", "--cursor", "bogus"], None)
        .await
        .expect(2);
    assert!(run.stderr.contains("invalid timeline cursor"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_replay_against_a_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = sqlite_fixture(dir.path()).await;
    let spec = format!("sqlite:{}", path.display());
    let store = ["--store", spec.as_str()];

    // health: the store, and the lag of the subscriptions it knows.
    let run = at(&store, &["health"], None).await.expect(0);
    assert!(run.stdout.contains("lag:billing"), "{run:?}");
    assert!(run.stdout.contains("status: ok"));
    let run = at(
        &store,
        &[
            "health",
            "--subscription",
            "audit",
            "--max-lag",
            "3",
            "--json",
        ],
        None,
    )
    .await
    .expect(1);
    let json = run.json();
    assert_eq!(json["status"], "unhealthy");
    let audit = rows(&json, "checks")
        .iter()
        .find(|c| c["name"] == "lag:audit")
        .expect("a check of audit's lag");
    assert_eq!(audit["ok"], false);

    // replay resets the stored checkpoint.
    let run = at(&store, &["replay", "billing", "--from", "1"], None)
        .await
        .expect(0);
    assert_eq!(run.stdout.trim(), "replaying billing after position 1");
    let sqlite = SqliteStore::open(&path).unwrap();
    assert_eq!(sqlite.checkpoint("billing").await.unwrap(), 1);
    // Nothing runs it here: --wait gives up at its timeout.
    let run = at(
        &store,
        &[
            "replay",
            "billing",
            "--from",
            "2",
            "--wait",
            "--timeout",
            "1",
        ],
        None,
    )
    .await
    .expect(1);
    assert!(run.stderr.contains("not caught up within 1s"), "{run:?}");
    let run = at(&store, &["replay", "biling", "--from", "0"], None)
        .await
        .expect(1);
    assert!(run.stderr.contains("no subscription \"biling\""), "{run:?}");
    let run = at(&store, &["replay", "billing", "--from", "99"], None)
        .await
        .expect(2);
    assert!(run.stderr.contains("past the head"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2_and_unreachable_targets_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let run = cli(&[], None).await.expect(2);
    assert!(run.stderr.contains("Usage"), "{run:?}");
    let run = cli(&["subscriptions"], None).await.expect(2);
    assert!(run.stderr.contains("--store"), "{run:?}");
    cli(
        &[
            "--store",
            "sqlite:x.db",
            "--url",
            "http://127.0.0.1:1",
            "health",
        ],
        None,
    )
    .await
    .expect(2);
    let run = cli(&["--store", "mysql:x", "subscriptions"], None)
        .await
        .expect(2);
    assert!(
        run.stderr.contains("expected sqlite:PATH or postgres:URL"),
        "{run:?}"
    );
    cli(&["--url", "not a url", "health"], None).await.expect(2);
    cli(&["--store", "sqlite:x.db", "replay", "billing"], None)
        .await
        .expect(2);
    let run = cli(&["--help"], None).await.expect(0);
    assert!(run.stdout.contains("Exit codes"), "{run:?}");

    // A file that is not a store: refused, and left untouched.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, "not a database at all, just some text").unwrap();
    let spec = format!("sqlite:{}", junk.display());
    let run = cli(&["--store", &spec, "dlq", "list"], None)
        .await
        .expect(2);
    assert!(run.stderr.contains("junk.db"), "{run:?}");

    // Unreachable: no file (none is created), no server.
    let missing = dir.path().join("no-such-dir").join("events.db");
    let spec = format!("sqlite:{}", missing.display());
    let run = cli(&["--store", &spec, "subscriptions"], None)
        .await
        .expect(3);
    assert!(run.stderr.contains("no such file"), "{run:?}");
    let missing = dir.path().join("events.db");
    let spec = format!("sqlite:{}", missing.display());
    cli(&["--store", &spec, "dlq", "discard", "x:y"], None)
        .await
        .expect(3);
    assert!(!missing.exists(), "a missing store file was created");
    let run = cli(&["--url", "http://127.0.0.1:1", "subscriptions"], None)
        .await
        .expect(3);
    assert!(
        run.stderr
            .contains("cannot reach GET http://127.0.0.1:1/v1/subscriptions"),
        "{run:?}"
    );
    cli(&["--url", "http://127.0.0.1:1", "health"], None)
        .await
        .expect(3);
    let run = cli(
        &[
            "--store",
            "postgres:host=127.0.0.1 port=1 user=postgres",
            "subscriptions",
        ],
        None,
    )
    .await
    .expect(3);
    assert!(
        run.stderr
            .contains("cannot connect to postgres 127.0.0.1:1"),
        "{run:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_and_dead_letters_through_a_running_service() {
    let Service {
        _dir,
        bus,
        billing,
        serving,
        url,
    } = service().await;
    let remote = ["--url", url.as_str()];
    let token = Some("t");

    // subscriptions: the service's, with its counters.
    let table = at(&remote, &["subscriptions"], token).await.expect(0);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("IN FLIGHT"),
        "{table:?}"
    );
    let cells: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&cells[..4], ["billing", "store", "5", "0"], "{table:?}");
    let json = at(&remote, &["subscriptions", "--json"], token)
        .await
        .expect(0)
        .json();
    let subscription = &rows(&json, "subscriptions")[0];
    assert_eq!(subscription["checkpoint"], 5);
    assert_eq!(subscription["lag"], 0);
    assert_eq!(subscription["dead_letters"], 2);
    at(&remote, &["subscriptions", "nosuch"], token)
        .await
        .expect(1);

    // Dead letters: list, show.
    let json = at(&remote, &["dlq", "list", "--json"], token)
        .await
        .expect(0)
        .json();
    let letters = rows(&json, "dead_letters");
    assert_eq!(letters.len(), 2, "{json}");
    let id_of = |key: &str| {
        letters
            .iter()
            .find(|l| l["partition_key"] == key)
            .and_then(|l| l["id"].as_str())
            .unwrap()
            .to_owned()
    };
    let bad = id_of("ord_bad");
    let worse = id_of("ord_worse");
    let show = at(&remote, &["dlq", "show", &bad], token).await.expect(0);
    assert!(show.stdout.contains("[redacted]"), "{show:?}");
    assert!(show.stdout.contains("payment gateway said no"));

    // Redeliver: the handler, healed, handles the event this time.
    billing.healed.store(true, SeqCst);
    let run = at(&remote, &["dlq", "redeliver", &bad], token)
        .await
        .expect(0);
    assert_eq!(run.stdout.trim(), format!("redelivered {bad}"));
    until("the redelivered event is handled", async || {
        billing.handled_bad.load(SeqCst) == 1 && bus.dead_letters().await.len() == 1
    })
    .await;
    let run = at(&remote, &["dlq", "show", &bad], token).await.expect(1);
    assert!(
        run.stderr.contains("404") && run.stderr.contains("no dead letter"),
        "{run:?}"
    );

    // Discard.
    let json = at(&remote, &["dlq", "discard", &worse, "--json"], token)
        .await
        .expect(0)
        .json();
    assert_eq!(json["action"], "discarded");
    let json = at(&remote, &["dlq", "list", "--json"], token)
        .await
        .expect(0)
        .json();
    assert!(rows(&json, "dead_letters").is_empty(), "{json}");
    at(&remote, &["dlq", "redeliver", &worse], token)
        .await
        .expect(1);
    at(&remote, &["dlq", "show", "not-an-id"], token)
        .await
        .expect(2);
    serving.shutdown().await;
    bus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_timeline_and_health_through_a_running_service() {
    let Service {
        _dir,
        bus,
        billing,
        serving,
        url,
    } = service().await;
    let remote = ["--url", url.as_str()];
    let token = Some("t");

    // Replay: every order.created again, followed to the head (ord_1 handled again; ord_bad
    // and ord_worse fail again).
    let before = billing.handled.load(SeqCst);
    let json = at(
        &remote,
        &[
            "replay",
            "billing",
            "--from",
            "0",
            "--wait",
            "--timeout",
            "30",
            "--json",
        ],
        token,
    )
    .await
    .expect(0)
    .json();
    assert_eq!(json["action"], "replaying");
    assert_eq!(json["lag"], 0);
    assert_eq!(json["checkpoint"], 5);
    until("the replayed events are handled", async || {
        billing.handled.load(SeqCst) > before
    })
    .await;
    let run = at(&remote, &["replay", "billing", "--from", "5"], token)
        .await
        .expect(0);
    assert_eq!(run.stdout.trim(), "replaying billing after position 5");
    let run = at(&remote, &["replay", "nosuch", "--from", "0"], token)
        .await
        .expect(1);
    assert!(run.stderr.contains("no subscription"), "{run:?}");

    // Timeline.
    let json = at(&remote, &["timeline", "ord_1", "--json"], token)
        .await
        .expect(0)
        .json();
    let events = rows(&json, "events");
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[0]["event"]["payload"]["customer_email"],
        "[redacted]"
    );
    let table = at(
        &remote,
        &["timeline", "ord_1", "--type", "order.paid"],
        token,
    )
    .await
    .expect(0);
    assert_eq!(table.stdout.lines().count(), 2, "{table:?}");
    at(&remote, &["timeline", "ord_1", "--cursor", "bogus"], token)
        .await
        .expect(2);

    // Health (needs no token).
    let run = at(&remote, &["health"], None).await.expect(0);
    assert!(run.stdout.contains("status: ok"), "{run:?}");
    assert_eq!(
        at(&remote, &["health", "--json"], None)
            .await
            .expect(0)
            .json()["status"],
        "ok"
    );

    // A wrong token, or none: the 401 message.
    let run = at(&remote, &["dlq", "list"], Some("wrong")).await.expect(2);
    assert!(
        run.stderr.contains("401") && run.stderr.contains("the bearer token is not valid"),
        "{run:?}"
    );
    let run = at(&remote, &["subscriptions"], None).await.expect(2);
    assert!(
        run.stderr.contains("EVENT_ADMIN_TOKEN is not set"),
        "{run:?}"
    );

    serving.shutdown().await;
    bus.shutdown().await;
    // Once the service is gone: unreachable.
    at(&remote, &["health"], None).await.expect(3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_through_a_running_service() {
    let Service {
        _dir,
        bus,
        serving,
        url,
        ..
    } = service().await;
    let token = Some("t");
    // Tail through the API.
    let mut tail = Tail::spawn(
        &[
            "--url",
            &url,
            "tail",
            "order.*",
            "--interval",
            "50",
            "--json",
        ],
        token,
    );
    until("tail prints the new order", async || {
        bus.publish(expired("ord_tail")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        tail.drain();
        tail.has("ord_tail")
    })
    .await;
    assert!(tail.running());
    let line: Value = serde_json::from_str(&tail.seen[0]).expect("one JSON object per line");
    assert_eq!(line["event"]["type"], "order.checkout_expired");
    drop(tail);

    serving.shutdown().await;
    bus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_events_as_they_are_appended_until_killed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let bus = durable_bus(SqliteStore::open(&path).unwrap());
    publish_fixture(&bus).await;
    let spec = format!("sqlite:{}", path.display());

    let mut tail = Tail::spawn(
        &["--store", &spec, "tail", "*.paid", "--interval", "50"],
        None,
    );
    let mut tail_all = Tail::spawn(&["--store", &spec, "tail", "--from", "0", "--json"], None);
    until("tail prints the new payment", async || {
        // A type it skips, then one it prints.
        bus.publish(expired("ord_tail")).await.unwrap();
        bus.publish(paid("ord_tail")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        tail.drain();
        tail.has("ord_tail")
    })
    .await;
    assert!(tail.running(), "tail follows until killed");
    assert!(
        tail.seen.iter().all(|line| line.contains("order.paid")),
        "{:?}",
        tail.seen
    );
    // Not the payment of ord_1, appended before it started.
    assert!(!tail.has("ord_1"), "{:?}", tail.seen);
    let fields: Vec<&str> = tail.seen[0].split("  ").collect();
    assert_eq!(fields[2], "order.paid", "{:?}", tail.seen);
    assert_eq!(fields[3], "ord_tail");

    // From position 0: everything, PII redacted, one JSON object per line.
    until("tail --from 0 prints the fixture", async || {
        tail_all.drain();
        tail_all.has("ord_tail")
    })
    .await;
    let first: Value = serde_json::from_str(&tail_all.seen[0]).unwrap();
    assert_eq!(first["position"], 1);
    assert_eq!(first["event"]["payload"]["customer_name"], "[redacted]");
    drop(tail);
    drop(tail_all);
    bus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_and_timeline_against_postgres() {
    let url = tokio::task::spawn_blocking(|| PostgresServer::shared().create_database())
        .await
        .unwrap();
    let bus = durable_bus(PostgresStore::connect(&url).await.expect("connects"));
    subscribe_billing(&bus);
    publish_fixture(&bus).await;
    settled(&bus, 1).await;
    bus.shutdown().await;
    drop(bus);
    let spec = format!("postgres:{url}");

    let json = cli(&["--store", &spec, "subscriptions", "--json"], None)
        .await
        .expect(0)
        .json();
    assert_eq!(json["head"], 4);
    let billing = &rows(&json, "subscriptions")[0];
    assert_eq!(billing["name"], "billing");
    assert_eq!(billing["checkpoint"], 4);
    assert_eq!(billing["lag"], 0);
    assert_eq!(billing["dead_letters"], 1);
    let table = cli(&["--store", &spec, "subscriptions", "billing"], None)
        .await
        .expect(0);
    assert_eq!(
        table
            .stdout
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["billing", "4", "0", "1"],
        "{table:?}"
    );

    let table = cli(&["--store", &spec, "timeline", "ord_1"], None)
        .await
        .expect(0);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{table:?}");
    assert!(lines[1].contains("order.created") && lines[1].contains("[redacted]"));
    let json = cli(
        &["--store", &spec, "timeline", "ord_1", "--newest", "--json"],
        None,
    )
    .await
    .expect(0)
    .json();
    let types: Vec<&str> = rows(&json, "events")
        .iter()
        .map(|e| e["event"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["order.paid", "order.created"]);

    let json = cli(&["--store", &spec, "dlq", "list", "--json"], None)
        .await
        .expect(0)
        .json();
    assert_eq!(rows(&json, "dead_letters")[0]["partition_key"], "ord_bad");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_database_without_a_store_is_refused_and_left_untouched() {
    let url = tokio::task::spawn_blocking(|| PostgresServer::shared().create_database())
        .await
        .unwrap();
    let spec = format!("postgres:{url}");
    let refused = cli(&["--store", &spec, "dlq", "list"], None)
        .await
        .expect(2);
    assert!(refused.stderr.contains("schema"), "{refused:#?}");
    // The CLI never migrates: the database still has no table of the store.
    let (client, connection) =
        event_core::store::tokio_postgres::connect(&url, event_core::store::tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_name LIKE 'event_store_%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 0);
}
