//! Field encryption over the Redis Streams transport (a server this test process starts
//! itself): what reaches the broker, read back with raw commands from every key the
//! transport made (event streams, the dead-letter stream, leases, metadata) and from the
//! server's append-only file on disk, holds the events' ordinary fields and only ciphertext
//! of their PII fields; handlers receive them opened; once a subject is forgotten, a
//! redelivery of its dead letter hands the handler the PII fields' `Default`. With a store
//! too, the outbox relay forwards the sealed events the store holds.

use event_core::privacy::{FieldEncryption, MasterKey, MemoryKeyStore};
use event_core::store::SqliteStore;
use event_core::transport::{RedisTransport, StartFrom};
use event_core::{
    DeadLetter, DomainEvent, EventBus, EventBusBuilder, HandlerError, RetryPolicy,
    SubscriptionOptions,
};
use redis::Value;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tests::eventually;
use tests::redis_server::RedisServer;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "rdprivacy.customer_registered", source = "accounts")]
struct CustomerRegistered {
    #[event(partition_key, subject)]
    customer_id: String,
    #[event(pii)]
    email: String,
    #[event(pii)]
    full_name: String,
    #[event(pii)]
    phone: Option<String>,
    plan: String,
    seats: u32,
}

fn ada() -> CustomerRegistered {
    CustomerRegistered {
        customer_id: "rd-cust-1".into(),
        email: "ada.lovelace.rd@example.com".into(),
        full_name: "Ada Lovelace-Byron".into(),
        phone: Some("+44 20 7946 0992".into()),
        plan: "platinum-rd".into(),
        seats: 4343,
    }
}

fn grace() -> CustomerRegistered {
    CustomerRegistered {
        customer_id: "rd-cust-2".into(),
        email: "grace.hopper.rd@example.com".into(),
        full_name: "Grace Brewster Hopper".into(),
        phone: None,
        plan: "enterprise-rd".into(),
        seats: 1907,
    }
}

/// Every PII value the events carry, as text that must never reach the broker.
const SECRETS: [&str; 5] = [
    "ada.lovelace.rd@example.com",
    "Ada Lovelace-Byron",
    "+44 20 7946 0992",
    "grace.hopper.rd@example.com",
    "Grace Brewster Hopper",
];

/// What the ordinary fields look like in the envelope JSON the broker keeps.
const PLAIN: [&str; 4] = [
    r#""customer_id":"rd-cust-1""#,
    r#""plan":"platinum-rd""#,
    r#""customer_id":"rd-cust-2""#,
    r#""seats":1907"#,
];

fn erased(customer: CustomerRegistered) -> CustomerRegistered {
    CustomerRegistered {
        email: String::new(),
        full_name: String::new(),
        phone: None,
        ..customer
    }
}

fn fresh_prefix(test: &str) -> String {
    format!("privacy-{test}-{}", fastrand::u32(..))
}

async fn transport(prefix: &str) -> RedisTransport {
    RedisTransport::builder(RedisServer::shared().url())
        .prefix(prefix)
        .shards(2)
        .lease(Duration::from_millis(600))
        .connect()
        .await
        .expect("connects")
}

fn builder(transport: RedisTransport) -> EventBusBuilder {
    EventBus::builder()
        .transport(transport)
        .consumer_name("member-a")
        .retry(RetryPolicy::never())
}

fn from_beginning() -> SubscriptionOptions {
    SubscriptionOptions::new().start_from(StartFrom::Beginning)
}

fn recording(bus: &EventBus, name: &str) -> Arc<Mutex<Vec<CustomerRegistered>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    bus.subscribe_with::<CustomerRegistered, _, _>(name, &from_beginning(), move |env| {
        sink.lock().unwrap().push(env.payload);
        async { Ok(()) }
    })
    .expect("subscribes");
    seen
}

/// Subscribes `billing`, which fails the first time it sees grace (her event becomes a dead
/// letter) and records what it handled.
fn billing(bus: &EventBus) -> Arc<Mutex<Vec<CustomerRegistered>>> {
    let failed_once = AtomicBool::new(false);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    bus.subscribe_with::<CustomerRegistered, _, _>("billing", &from_beginning(), move |env| {
        let fail =
            env.payload.customer_id == "rd-cust-2" && !failed_once.swap(true, Ordering::SeqCst);
        if !fail {
            sink.lock().unwrap().push(env.payload);
        }
        async move {
            if fail {
                Err(HandlerError::permanent("card declined"))
            } else {
                Ok(())
            }
        }
    })
    .expect("subscribes");
    seen
}

/// Sorted by customer: the two customers' events travel on their own shards.
fn by_customer(seen: &Mutex<Vec<CustomerRegistered>>) -> Vec<CustomerRegistered> {
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
    seen
}

async fn dead_letters(bus: &EventBus, count: usize) -> Vec<DeadLetter> {
    let started = Instant::now();
    loop {
        let letters = bus.try_dead_letters().await.expect("lists dead letters");
        if letters.len() >= count {
            return letters;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not {count} dead letters in time: {letters:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every byte a reply holds, values of nested replies one after another.
fn flatten(value: Value, out: &mut Vec<u8>) {
    match value {
        Value::BulkString(bytes) => out.extend(bytes),
        Value::SimpleString(text) | Value::VerbatimString { text, .. } => {
            out.extend(text.into_bytes());
        }
        Value::Int(n) => out.extend(n.to_string().into_bytes()),
        Value::Array(items) | Value::Set(items) => {
            for item in items {
                out.push(b'\n');
                flatten(item, out);
            }
        }
        Value::Map(pairs) => {
            for (key, value) in pairs {
                out.push(b'\n');
                flatten(key, out);
                out.push(b'\n');
                flatten(value, out);
            }
        }
        Value::Nil | Value::Okay => {}
        other => out.extend(format!("{other:?}").into_bytes()),
    }
}

/// What the broker holds under `prefix`, read with raw commands: every key (by `SCAN`) and
/// its whole content by its type. Returns the names of the stream keys and all the bytes.
async fn broker_contents(prefix: &str) -> (Vec<String>, Vec<u8>) {
    let mut conn = redis::Client::open(RedisServer::shared().url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut keys: Vec<String> = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .unwrap();
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    keys.sort();
    keys.dedup();
    let mut streams = Vec::new();
    let mut bytes = Vec::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let cmd = match kind.as_str() {
            "stream" => {
                streams.push(key.clone());
                let mut cmd = redis::cmd("XRANGE");
                cmd.arg(&key).arg("-").arg("+");
                cmd
            }
            "hash" => {
                let mut cmd = redis::cmd("HGETALL");
                cmd.arg(&key);
                cmd
            }
            "string" => {
                let mut cmd = redis::cmd("GET");
                cmd.arg(&key);
                cmd
            }
            "set" => {
                let mut cmd = redis::cmd("SMEMBERS");
                cmd.arg(&key);
                cmd
            }
            "zset" => {
                let mut cmd = redis::cmd("ZRANGE");
                cmd.arg(&key).arg(0).arg(-1).arg("WITHSCORES");
                cmd
            }
            "list" => {
                let mut cmd = redis::cmd("LRANGE");
                cmd.arg(&key).arg(0).arg(-1);
                cmd
            }
            other => panic!("key `{key}` of an unexpected type {other}"),
        };
        let value: Value = cmd.query_async(&mut conn).await.unwrap();
        bytes.extend(key.into_bytes());
        flatten(value, &mut bytes);
        bytes.push(b'\n');
    }
    (streams, bytes)
}

/// The entries of one stream, raw (`XRANGE key - +`).
async fn raw_stream(key: &str) -> Vec<u8> {
    let mut conn = redis::Client::open(RedisServer::shared().url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let value: Value = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut bytes = Vec::new();
    flatten(value, &mut bytes);
    bytes
}

/// The bytes of every file under `dir` (the server's append-only files and log).
fn files_under(dir: &Path, out: &mut Vec<u8>) {
    for entry in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.extend(bytes);
        }
    }
}

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Sealed fields and ordinary ones in `bytes`, no PII value.
fn assert_sealed(what: &str, bytes: &[u8]) {
    assert!(holds(bytes, b"enc:v1:"), "no sealed field in {what}");
    for plain in PLAIN {
        assert!(holds(bytes, plain.as_bytes()), "`{plain}` is not in {what}");
    }
    for secret in SECRETS {
        assert!(!holds(bytes, secret.as_bytes()), "`{secret}` is in {what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_holds_no_pii_and_a_forgotten_subjects_dead_letter_redelivers_erased() {
    let prefix = fresh_prefix("broker");
    let (master, _) = MasterKey::generate();
    let bus = builder(transport(&prefix).await)
        .encrypt_fields(FieldEncryption::new(MemoryKeyStore::new(), master))
        .build();
    let welcomed = recording(&bus, "welcome");
    let billing_seen = billing(&bus);

    bus.publish(ada()).await.unwrap();
    bus.publish(grace()).await.unwrap();
    eventually(Duration::from_secs(10), "both welcomed", || {
        welcomed.lock().unwrap().len() == 2
    })
    .await;
    assert_eq!(
        by_customer(&welcomed),
        [ada(), grace()],
        "handlers read plain text"
    );
    let letters = dead_letters(&bus, 1).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].subscription, "billing");
    assert!(
        letters[0].envelope.payload.get().contains("enc:v1:"),
        "the broker's dead letter keeps the sealed fields"
    );

    // Every key the transport made, read raw: the event streams and the dead-letter stream.
    let (streams, bytes) = broker_contents(&prefix).await;
    let dead = format!("{prefix}:main:dead");
    assert!(
        streams.contains(&dead),
        "no dead-letter stream in {streams:?}"
    );
    assert!(
        streams.iter().filter(|key| **key != dead).count() >= 1,
        "no event stream in {streams:?}"
    );
    assert_sealed("the broker's keys", &bytes);
    assert!(
        holds(&bytes, b"card declined"),
        "the dead letter is on the broker"
    );
    // The dead-letter stream alone: its entry keeps the sealed fields, no PII value.
    let dead_entries = raw_stream(&dead).await;
    assert!(holds(&dead_entries, b"card declined"), "the letter's error");
    assert!(
        holds(&dead_entries, b"enc:v1:"),
        "the letter's sealed fields"
    );
    assert!(
        holds(&dead_entries, br#""plan":"enterprise-rd""#),
        "the letter's plan"
    );
    for secret in SECRETS {
        assert!(
            !holds(&dead_entries, secret.as_bytes()),
            "`{secret}` is in {dead}"
        );
    }
    // And what the server wrote to disk (every write fsynced): sealed as well.
    let mut disk = Vec::new();
    files_under(RedisServer::shared().root(), &mut disk);
    assert_sealed("the server's files", &disk);

    // Forget both: the redelivered dead letter reads every other field, PII as Default.
    assert_eq!(bus.forget_subject("rd-cust-1").await.unwrap(), 1);
    assert_eq!(bus.forget_subject("rd-cust-2").await.unwrap(), 1);
    bus.redeliver(&letters[0]).await.unwrap();
    eventually(Duration::from_secs(10), "redelivered", || {
        billing_seen.lock().unwrap().len() == 2
    })
    .await;
    assert_eq!(*billing_seen.lock().unwrap(), [ada(), erased(grace())]);
    let started = Instant::now();
    while !bus.try_dead_letters().await.unwrap().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the letter stays"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        by_customer(&welcomed),
        [ada(), grace()],
        "nothing more welcomed"
    );
    bus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_store_too_the_relay_forwards_sealed_fields_only() {
    let prefix = fresh_prefix("relay");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteStore::open(&path).unwrap();
    let (master, _) = MasterKey::generate();
    let bus = builder(transport(&prefix).await)
        .store(store.clone())
        .encrypt_fields(FieldEncryption::new(store.clone(), master))
        .poll_interval(Duration::from_millis(20))
        .build();
    let welcomed = recording(&bus, "welcome");
    bus.publish(ada()).await.unwrap();
    bus.publish(grace()).await.unwrap();
    eventually(Duration::from_secs(10), "both relayed and welcomed", || {
        welcomed.lock().unwrap().len() == 2
    })
    .await;
    assert_eq!(
        by_customer(&welcomed),
        [ada(), grace()],
        "handlers read plain text"
    );
    let (streams, bytes) = broker_contents(&prefix).await;
    assert!(!streams.is_empty(), "the relay wrote no stream");
    assert_sealed("the broker's keys (relayed from the store)", &bytes);
    let mut files = std::fs::read(&path).unwrap();
    if let Ok(wal) = std::fs::read(path.with_extension("db-wal")) {
        files.extend(wal);
    }
    for secret in SECRETS {
        assert!(
            !holds(&files, secret.as_bytes()),
            "`{secret}` is in the SQLite files"
        );
    }
    bus.shutdown().await;
}

/// A handler's error that quotes a PII value: the broker's dead-letter entry (its `error`
/// field) holds it redacted, as it is without encryption.
///
/// With field encryption the letter is made from the sealed event: its error must be
/// redacted against the opened fields, or the values it quotes reach the dead-letter
/// stream in plain text (as they did in the working tree before commit 8c6df21).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_error_quoting_a_pii_value_reaches_the_broker_redacted() {
    let prefix = fresh_prefix("error");
    let (master, _) = MasterKey::generate();
    let bus = builder(transport(&prefix).await)
        .encrypt_fields(FieldEncryption::new(MemoryKeyStore::new(), master))
        .build();
    bus.subscribe_with::<CustomerRegistered, _, _>(
        "billing",
        &from_beginning(),
        |env| async move {
            Err(HandlerError::permanent(format!(
                "no card on file for {} <{}>",
                env.payload.full_name, env.payload.email
            )))
        },
    )
    .unwrap();
    // Values of its own: the other tests look for theirs in the server's files.
    let augusta = CustomerRegistered {
        customer_id: "rd-cust-3".into(),
        email: "augusta.king.rd@example.com".into(),
        full_name: "Augusta Ada King".into(),
        phone: None,
        plan: "basic-rd".into(),
        seats: 1,
    };
    bus.publish(augusta).await.unwrap();
    let letters = dead_letters(&bus, 1).await;
    let (_, bytes) = broker_contents(&prefix).await;
    assert!(
        holds(&bytes, b"no card on file for"),
        "the letter is on the broker"
    );
    for secret in ["augusta.king.rd@example.com", "Augusta Ada King"] {
        assert!(
            !holds(&bytes, secret.as_bytes()),
            "`{secret}` is on the broker (the dead letter's error): {:?}",
            letters[0].last_error
        );
    }
    bus.shutdown().await;
}
