//! Field encryption and crypto-shredding on PostgreSQL (a server this test starts itself),
//! checked with a real `pg_dump` of the database: the dump holds every event's ordinary
//! fields and only ciphertext of its PII fields; the subjects' wrapped keys are in it until
//! the subjects are forgotten, and gone from the next dump; after that, a replay and a
//! redelivery hand handlers the PII fields' `Default` and every other field as it was.

use event_core::privacy::{FieldEncryption, KeyStore, MasterKey};
use event_core::store::PostgresStore;
use event_core::{DeadLetter, DomainEvent, EventBus, HandlerError, RetryPolicy};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tests::eventually;
use tests::postgres_server::PostgresServer;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "pgprivacy.customer_registered", source = "accounts")]
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
        customer_id: "pg-cust-1".into(),
        email: "ada.lovelace.pg@example.com".into(),
        full_name: "Ada Lovelace-Byron".into(),
        phone: Some("+44 20 7946 0991".into()),
        plan: "platinum-pg".into(),
        seats: 4242,
    }
}

fn grace() -> CustomerRegistered {
    CustomerRegistered {
        customer_id: "pg-cust-2".into(),
        email: "grace.hopper.pg@example.com".into(),
        full_name: "Grace Brewster Hopper".into(),
        phone: None,
        plan: "enterprise-pg".into(),
        seats: 1906,
    }
}

/// Every PII value the events carry, as text that must never reach the database.
const SECRETS: [&str; 5] = [
    "ada.lovelace.pg@example.com",
    "Ada Lovelace-Byron",
    "+44 20 7946 0991",
    "grace.hopper.pg@example.com",
    "Grace Brewster Hopper",
];

fn erased(customer: CustomerRegistered) -> CustomerRegistered {
    CustomerRegistered {
        email: String::new(),
        full_name: String::new(),
        phone: None,
        ..customer
    }
}

/// A full `pg_dump` (schema and data, plain SQL) of the database of `url`, by the
/// `pg_dump` of the server's own version.
async fn pg_dump(server: &'static PostgresServer, url: &str) -> String {
    let dbname = url
        .split_whitespace()
        .find_map(|pair| pair.strip_prefix("dbname="))
        .expect("the connection string names its database")
        .to_owned();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(server.bin_dir().join("pg_dump"))
            .args(["-h", "127.0.0.1", "-U", "postgres", "--no-password", "-p"])
            .arg(server.port().to_string())
            .arg(&dbname)
            .stdin(Stdio::null())
            .output()
            .expect("runs pg_dump")
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "pg_dump failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("the dump is UTF-8")
}

/// Bytes as `pg_dump` writes a `bytea` (`\x` then lowercase hex), without the `\x`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}

fn recording(bus: &EventBus, name: &str) -> Arc<Mutex<Vec<CustomerRegistered>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    bus.subscribe_event::<CustomerRegistered, _, _>(name, move |env| {
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
    bus.subscribe_event::<CustomerRegistered, _, _>("billing", move |env| {
        let fail =
            env.payload.customer_id == "pg-cust-2" && !failed_once.swap(true, Ordering::SeqCst);
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

/// The bus's dead letters, once there is one (within 10 s).
async fn dead_letters(bus: &EventBus) -> Vec<DeadLetter> {
    let started = Instant::now();
    loop {
        let letters = bus.try_dead_letters().await.expect("lists dead letters");
        if !letters.is_empty() {
            return letters;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no dead letter in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The events' ordinary fields and sealed fields are in `dump`, no PII value.
fn assert_sealed(dump: &str) {
    let plain = [
        "pg-cust-1",
        "pg-cust-2",
        "platinum-pg",
        "enterprise-pg",
        "4242",
        "1906",
    ];
    for plain in plain {
        assert!(
            dump.contains(plain),
            "`{plain}` is not in the dump: events missing?"
        );
    }
    assert!(dump.contains("enc:v1:"), "no sealed field in the dump");
    for secret in SECRETS {
        assert!(!dump.contains(secret), "`{secret}` is in the pg_dump");
    }
}

/// The subject's current key, as the key store keeps it (wrapped by the master key).
async fn wrapped_key(store: &PostgresStore, subject: &str) -> Vec<u8> {
    let key = store.current_key(subject).await.unwrap();
    key.unwrap_or_else(|| panic!("{subject} has no key"))
        .wrapped
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pg_dump_holds_no_pii_and_no_key_of_a_forgotten_subject() {
    let server = PostgresServer::shared();
    let url = server.create_database();
    let store = PostgresStore::connect(&url).await.expect("connects");
    let (master, _) = MasterKey::generate();
    let bus = EventBus::builder()
        .store(store.clone())
        .encrypt_fields(FieldEncryption::new(store.clone(), master))
        .poll_interval(Duration::from_millis(20))
        .retry(RetryPolicy::never())
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
        *welcomed.lock().unwrap(),
        [ada(), grace()],
        "handlers read plain text"
    );
    let letters = dead_letters(&bus).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(
        letters[0].envelope.payload.get().contains("enc:v1:"),
        "the stored dead letter keeps the sealed fields"
    );

    // The dump: the ordinary fields read, the PII fields are ciphertext.
    let dump = pg_dump(server, &url).await;
    assert_sealed(&dump);
    assert!(
        dump.contains("card declined"),
        "the dead letter is in the dump"
    );

    // The wrapped keys are in the dump (as `bytea` hex) until the subjects are forgotten.
    let keys = [
        wrapped_key(&store, "pg-cust-1").await,
        wrapped_key(&store, "pg-cust-2").await,
    ];
    for key in &keys {
        assert!(
            dump.contains(&hex(key)),
            "a wrapped key is not in the first dump"
        );
    }
    assert_eq!(bus.forget_subject("pg-cust-1").await.unwrap(), 1);
    assert_eq!(bus.forget_subject("pg-cust-2").await.unwrap(), 1);
    assert_eq!(
        bus.forget_subject("pg-cust-2").await.unwrap(),
        0,
        "already forgotten"
    );
    assert!(store.current_key("pg-cust-1").await.unwrap().is_none());
    let dump = pg_dump(server, &url).await;
    for key in &keys {
        assert!(
            !dump.contains(&hex(key)),
            "a forgotten key is still in the dump"
        );
    }
    for secret in SECRETS {
        assert!(
            !dump.contains(secret),
            "`{secret}` is in the second pg_dump"
        );
    }
    assert!(dump.contains("platinum-pg"), "the events themselves stay");

    // A replay reads every other field; the PII fields read as their Default.
    welcomed.lock().unwrap().clear();
    bus.replay("welcome", 0).await.unwrap();
    eventually(Duration::from_secs(10), "replayed", || {
        welcomed.lock().unwrap().len() == 2
    })
    .await;
    assert_eq!(*welcomed.lock().unwrap(), [erased(ada()), erased(grace())]);

    // So does a redelivery of the dead letter.
    bus.redeliver(&letters[0]).await.unwrap();
    eventually(Duration::from_secs(10), "redelivered", || {
        billing_seen.lock().unwrap().len() == 2
    })
    .await;
    assert_eq!(billing_seen.lock().unwrap()[1], erased(grace()));
    assert_eq!(
        billing_seen.lock().unwrap()[0],
        ada(),
        "ada was billed before"
    );
    eventually(Duration::from_secs(10), "the letter is settled", || {
        bus.metrics().in_flight == 0
    })
    .await;
    bus.shutdown().await;
    assert!(
        bus.try_dead_letters().await.unwrap().is_empty(),
        "redelivered for good"
    );
}

/// A handler's error that quotes a PII value of the event it failed on: the dead letter's
/// error is redacted before the store keeps it, as it is without encryption.
///
/// With field encryption the letter is made from the sealed event: its error must be
/// redacted against the opened fields, or the values it quotes reach the
/// `event_store_dead_letters` table in plain text (as they did in the working tree before
/// commit 8c6df21).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_error_quoting_a_pii_value_reaches_the_dump_redacted() {
    let server = PostgresServer::shared();
    let url = server.create_database();
    let store = PostgresStore::connect(&url).await.expect("connects");
    let (master, _) = MasterKey::generate();
    let bus = EventBus::builder()
        .store(store.clone())
        .encrypt_fields(FieldEncryption::new(store.clone(), master))
        .poll_interval(Duration::from_millis(20))
        .retry(RetryPolicy::never())
        .build();
    bus.subscribe_event::<CustomerRegistered, _, _>("billing", |env| async move {
        Err(HandlerError::permanent(format!(
            "no card on file for {} <{}>",
            env.payload.full_name, env.payload.email
        )))
    })
    .unwrap();
    bus.publish(ada()).await.unwrap();
    let letters = dead_letters(&bus).await;
    assert_eq!(letters.len(), 1, "dead-lettered");
    let dump = pg_dump(server, &url).await;
    assert!(
        dump.contains("no card on file for"),
        "the letter's error is in the dump"
    );
    for secret in SECRETS {
        assert!(
            !dump.contains(secret),
            "`{secret}` is in the pg_dump (the dead letter's error): {:?}",
            letters[0].last_error
        );
    }
    bus.shutdown().await;
}
