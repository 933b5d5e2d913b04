//! Field encryption and crypto-shredding on a SQLite store: the database files never hold a
//! PII field in plain text, handlers receive it opened, and once the subject is forgotten
//! its fields read as their `Default` in replays and redeliveries, while every other field
//! still reads; the key itself leaves no bytes behind. Also: what publish refuses.

use event_core::privacy::{FieldEncryption, KeyStore, MasterKey, ProtectError};
use event_core::store::SqliteStore;
use event_core::{DomainEvent, EventBus, HandlerError, PublishError, RetryPolicy};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tests::eventually;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "customer.registered", source = "accounts")]
struct CustomerRegistered {
    #[event(partition_key, subject)]
    customer_id: String,
    #[event(pii)]
    email: String,
    #[event(pii)]
    phone: Option<String>,
    plan: String,
}

/// The partition key is personal: nothing pseudonymous names the subject.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "newsletter.subscribed", source = "marketing")]
struct NewsletterSubscribed {
    #[event(partition_key, pii)]
    email: String,
}

/// PII, and nothing to name a subject at all.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "feedback.left", source = "support")]
struct FeedbackLeft {
    #[event(pii)]
    author_email: String,
}

fn ada() -> CustomerRegistered {
    CustomerRegistered {
        customer_id: "c-1".into(),
        email: "ada@example.com".into(),
        phone: Some("+44 20 7946 0001".into()),
        plan: "pro".into(),
    }
}

fn grace() -> CustomerRegistered {
    CustomerRegistered {
        customer_id: "c-2".into(),
        email: "grace@example.com".into(),
        phone: None,
        plan: "team".into(),
    }
}

fn encrypted_bus(store: &SqliteStore, master: MasterKey) -> EventBus {
    EventBus::builder()
        .store(store.clone())
        .encrypt_fields(FieldEncryption::new(store.clone(), master))
        .poll_interval(Duration::from_millis(20))
        .retry(RetryPolicy::never())
        .build()
}

/// The bytes of the database file and its WAL.
fn database_bytes(path: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).expect("reads the database file");
    let wal = path.with_extension("db-wal");
    if let Ok(more) = std::fs::read(wal) {
        bytes.extend(more);
    }
    bytes
}

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
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

/// Subscribes `name`, failing for good the first time it sees `customer`; records what it
/// handled.
fn failing_once_for(
    bus: &EventBus,
    name: &str,
    customer: &'static str,
) -> (Arc<AtomicBool>, Arc<Mutex<Vec<CustomerRegistered>>>) {
    let failed_once = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (failed, sink) = (Arc::clone(&failed_once), Arc::clone(&seen));
    bus.subscribe_event::<CustomerRegistered, _, _>(name, move |env| {
        let fail = env.payload.customer_id == customer && !failed.swap(true, Ordering::SeqCst);
        // The error quotes a PII field, as handlers' errors do.
        let error = format!("card declined, wrote to {}", env.payload.email);
        if !fail {
            sink.lock().unwrap().push(env.payload);
        }
        async move {
            if fail {
                Err(HandlerError::permanent(error))
            } else {
                Ok(())
            }
        }
    })
    .unwrap();
    (failed_once, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_holds_no_pii_and_a_forgotten_subject_reads_as_erased() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteStore::open(&path).unwrap();
    let (master, _) = MasterKey::generate();
    let bus = encrypted_bus(&store, master);
    let welcomed = recording(&bus, "welcome");
    // Fails the first time it sees grace: her event becomes a dead letter.
    let (failed_once, billing_seen) = failing_once_for(&bus, "billing", "c-2");
    bus.publish(ada()).await.unwrap();
    bus.publish(grace()).await.unwrap();
    eventually(Duration::from_secs(10), "both welcomed", || {
        welcomed.lock().unwrap().len() == 2
    })
    .await;
    // Handlers receive the fields opened.
    assert_eq!(*welcomed.lock().unwrap(), [ada(), grace()]);
    eventually(Duration::from_secs(10), "grace dead-lettered", || {
        failed_once.load(Ordering::SeqCst)
    })
    .await;
    let letters = bus.try_dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(
        letters[0].last_error, "card declined, wrote to [redacted]",
        "the error is redacted against the opened fields"
    );
    assert!(
        letters[0].envelope.payload.get().contains("enc:v1:"),
        "a dead letter keeps the sealed fields: {}",
        letters[0].envelope.payload.get()
    );

    // Nothing personal in the files, sealed or not: the plan reads, the emails do not.
    let bytes = database_bytes(&path);
    assert!(
        holds(&bytes, b"\"plan\":\"pro\""),
        "events are in the files"
    );
    assert!(holds(&bytes, b"enc:v1:"), "sealed fields are in the files");
    for secret in ["ada@example.com", "grace@example.com", "+44 20 7946 0001"] {
        assert!(
            !holds(&bytes, secret.as_bytes()),
            "`{secret}` is in the database files"
        );
    }

    // Forget both; the wrapped keys were in the files and leave nothing behind.
    let ada_key = store
        .current_key("c-1")
        .await
        .unwrap()
        .expect("ada has a key");
    let grace_key = store
        .current_key("c-2")
        .await
        .unwrap()
        .expect("grace has a key");
    assert_eq!(bus.forget_subject("c-1").await.unwrap(), 1);
    assert_eq!(bus.forget_subject("c-2").await.unwrap(), 1);
    assert_eq!(
        bus.forget_subject("c-2").await.unwrap(),
        0,
        "already forgotten"
    );
    let bytes = database_bytes(&path);
    for key in [&ada_key.wrapped, &grace_key.wrapped] {
        assert!(
            !holds(&bytes, key),
            "a forgotten key's bytes are still in the files"
        );
    }

    // A replay reads every other field; the PII fields read as their Default.
    welcomed.lock().unwrap().clear();
    bus.replay("welcome", 0).await.unwrap();
    eventually(Duration::from_secs(10), "replayed", || {
        welcomed.lock().unwrap().len() == 2
    })
    .await;
    let erased = |customer: CustomerRegistered| CustomerRegistered {
        email: String::new(),
        phone: None,
        ..customer
    };
    assert_eq!(*welcomed.lock().unwrap(), [erased(ada()), erased(grace())]);

    // So does a redelivery of the dead letter.
    bus.redeliver(&letters[0]).await.unwrap();
    eventually(Duration::from_secs(10), "redelivered", || {
        billing_seen.lock().unwrap().len() == 2
    })
    .await;
    assert_eq!(billing_seen.lock().unwrap()[1], erased(grace()));

    // The field encryption says which fields are gone.
    let opened = bus
        .field_encryption()
        .unwrap()
        .open(&letters[0].envelope)
        .await
        .unwrap();
    assert_eq!(opened.erased, ["email"], "phone was null: nothing sealed");
    bus.shutdown().await;
}

#[tokio::test]
async fn a_subject_rotated_key_seals_new_events_while_older_ones_still_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("events.db")).unwrap();
    let (master, _) = MasterKey::generate();
    let fields = FieldEncryption::new(store.clone(), master);
    let first = event_core::Envelope::new(ada()).to_raw().unwrap();
    let first = fields.seal(&first).await.unwrap().unwrap();
    let rotated = fields.rotate("c-1").await.unwrap();
    let second = event_core::Envelope::new(ada()).to_raw().unwrap();
    let second = fields.seal(&second).await.unwrap().unwrap();
    assert_eq!(store.current_key("c-1").await.unwrap().unwrap().id, rotated);
    for sealed in [&first, &second] {
        let opened = fields.open(sealed).await.unwrap();
        assert!(opened.envelope.payload.get().contains("ada@example.com"));
    }
    // Another master key opens nothing, and says so rather than reading it as erased; nor
    // does it seal new events for the subject under a key of its own.
    let (other, _) = MasterKey::generate();
    let stranger = FieldEncryption::new(store.clone(), other);
    assert!(matches!(
        stranger.open(&first).await,
        Err(ProtectError::MasterKey { key_id }) if key_id != rotated
    ));
    let third = event_core::Envelope::new(ada()).to_raw().unwrap();
    assert!(matches!(
        stranger.seal(&third).await,
        Err(ProtectError::MasterKey { key_id }) if key_id == rotated
    ));
    // A sealed field moved into another event does not open.
    let mut moved = event_core::Envelope::new(ada()).to_raw().unwrap();
    moved.payload = first.payload.clone();
    assert!(matches!(
        fields.open(&moved).await,
        Err(ProtectError::Tampered { field, .. }) if field == "email"
    ));
}

#[tokio::test]
async fn publish_refuses_pii_that_has_no_pseudonymous_subject() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("events.db")).unwrap();
    let (master, _) = MasterKey::generate();
    let bus = encrypted_bus(&store, master);
    let personal = bus
        .publish(NewsletterSubscribed {
            email: "ada@example.com".into(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            &personal,
            PublishError::Protect(ProtectError::PersonalSubject { field, .. }) if field == "email"
        ),
        "{personal:?}"
    );
    let nobody = bus
        .publish(FeedbackLeft {
            author_email: "ada@example.com".into(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            &nobody,
            PublishError::Protect(ProtectError::NoSubject { .. })
        ),
        "{nobody:?}"
    );
    assert!(!nobody.to_string().contains("ada@example.com"), "{nobody}");
    // Nothing was stored.
    assert_eq!(event_core::store::Store::head(&store).await.unwrap(), 0);
    bus.shutdown().await;
}

#[tokio::test]
async fn forgetting_needs_field_encryption() {
    let bus = EventBus::builder().build();
    assert!(matches!(
        bus.forget_subject("c-1").await,
        Err(ProtectError::NotEnabled)
    ));
}

#[tokio::test]
async fn on_a_bus_in_memory_forgetting_erases_the_dead_letters_it_keeps() {
    let (master, _) = MasterKey::generate();
    let bus = EventBus::builder()
        .encrypt_fields(FieldEncryption::new(
            event_core::privacy::MemoryKeyStore::new(),
            master,
        ))
        .retry(RetryPolicy::never())
        .build();
    let (_, handled) = failing_once_for(&bus, "billing", "c-1");
    bus.publish(ada()).await.unwrap();
    bus.publish(grace()).await.unwrap();
    let started = std::time::Instant::now();
    while bus.dead_letters().await.is_empty() || handled.lock().unwrap().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(10), "not handled");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let letters = bus.dead_letters().await;
    assert_eq!(letters.len(), 1);
    // Nothing left the process: the dead letter is in plain text, until forgotten.
    assert!(
        letters[0]
            .envelope
            .payload
            .get()
            .contains("ada@example.com")
    );
    bus.forget_subject("c-2").await.unwrap();
    assert!(
        bus.dead_letters().await[0]
            .envelope
            .payload
            .get()
            .contains("ada@example.com")
    );
    bus.forget_subject("c-1").await.unwrap();
    let letters = bus.dead_letters().await;
    let payload = letters[0].envelope.payload.get();
    assert!(
        !payload.contains("ada@example.com") && !payload.contains("7946"),
        "{payload}"
    );
    assert!(payload.contains(r#""plan":"pro""#), "{payload}");
    bus.redeliver(&letters[0]).await.unwrap();
    bus.shutdown().await;
    let handled = handled.lock().unwrap();
    assert_eq!(handled.len(), 2, "grace, then ada redelivered");
    assert_eq!(handled[1].email, "");
    assert_eq!(handled[1].phone, None);
    assert_eq!(handled[1].plan, "pro");
}
