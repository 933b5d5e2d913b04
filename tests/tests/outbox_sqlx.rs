//! The outbox inside an application's sqlx transaction, seen from the bus: an event made by
//! `EventBus::prepare` (the ambient context, PII sealed) and appended with
//! `append_in_sqlx` is handled once its transaction commits, at once (PostgreSQL's `NOTIFY`,
//! SQLite's `wake`) rather than at the next poll; a rolled-back one never is.

use event_core::privacy::{FieldEncryption, MasterKey};
use event_core::store::sqlx::{self, Connection as _, PgConnection, SqliteConnection};
use event_core::store::{PostgresStore, SqliteStore};
use event_core::{DomainEvent, Envelope, EventBus, PublishContext};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tests::postgres_server::PostgresServer;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "outbox_test.account_opened", source = "accounts")]
struct AccountOpened {
    #[event(partition_key, subject)]
    account_id: String,
    #[event(pii)]
    email: String,
}

/// Longer than any test waits: what is handled in time was woken, not polled.
const SLOW_POLL: Duration = Duration::from_secs(60);

/// How long a woken subscription may take, on a loaded machine.
const WAKE_LIMIT: Duration = Duration::from_secs(5);

fn opened(account_id: &str) -> AccountOpened {
    AccountOpened {
        account_id: account_id.into(),
        email: format!("{account_id}@example.com"),
    }
}

type Seen = Arc<Mutex<Vec<Envelope<AccountOpened>>>>;

fn recording(bus: &EventBus) -> Seen {
    let seen = Seen::default();
    let sink = Arc::clone(&seen);
    bus.subscribe_event::<AccountOpened, _, _>("welcome", move |env| {
        sink.lock().unwrap().push(env);
        async { Ok(()) }
    })
    .expect("subscribes");
    seen
}

/// Waits up to [`WAKE_LIMIT`] for `count` handled events.
async fn handled(seen: &Seen, count: usize) -> Vec<Envelope<AccountOpened>> {
    let start = Instant::now();
    while seen.lock().unwrap().len() < count && start.elapsed() < WAKE_LIMIT {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    seen.lock().unwrap().clone()
}

/// A request's context, as the HTTP layer would set it.
fn request() -> PublishContext {
    PublishContext::new().correlation_id("req-7").tenant("acme")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_committed_sqlx_outbox_event_is_handled_at_once_a_rolled_back_one_never() {
    let conninfo = PostgresServer::shared().create_database();
    let bus = EventBus::builder()
        .store(PostgresStore::connect(&conninfo).await.expect("connects"))
        .poll_interval(SLOW_POLL)
        .build();
    let seen = recording(&bus);
    // The pump has read the store once and waits.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut conn = PgConnection::connect(&PostgresServer::url(&conninfo))
        .await
        .expect("sqlx connects");

    let (_, rolled_back) = request().scope(bus.prepare(opened("a-0"))).await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    PostgresStore::append_in_sqlx(&mut tx, &[rolled_back])
        .await
        .unwrap();
    tx.rollback().await.unwrap();

    let (envelope, json) = request().scope(bus.prepare(opened("a-1"))).await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    let positions = PostgresStore::append_in_sqlx(&mut tx, &[json])
        .await
        .unwrap();
    assert_eq!(positions, [1], "the rolled-back append left no gap");
    tx.commit().await.unwrap();

    let got = handled(&seen, 1).await;
    assert_eq!(
        got.len(),
        1,
        "woken by the commit's NOTIFY within {WAKE_LIMIT:?}"
    );
    assert_eq!(got[0].id, envelope.id);
    assert_eq!(got[0].payload, opened("a-1"));
    assert_eq!(got[0].correlation_id.as_deref(), Some("req-7"));
    assert_eq!(got[0].meta.tenant_id(), Some("acme"));
    bus.shutdown().await;
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "the rolled-back event never came"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_prepared_event_is_sealed_and_wake_hands_it_over_after_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let store = SqliteStore::open(&path).unwrap();
    let bus = EventBus::builder()
        .store(store.clone())
        .encrypt_fields(FieldEncryption::new(store.clone(), MasterKey::generate().0))
        .poll_interval(SLOW_POLL)
        .build();
    let seen = recording(&bus);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (_, json) = request().scope(bus.prepare(opened("a-1"))).await.unwrap();
    let wire = json.to_json().unwrap();
    assert!(!wire.contains("a-1@example.com"), "sealed: {wire}");
    assert!(wire.contains("enc:v1:"), "{wire}");

    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.unwrap();
    sqlx::query("CREATE TABLE accounts (id TEXT PRIMARY KEY)")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("INSERT INTO accounts VALUES ('a-1')")
        .execute(&mut *tx)
        .await
        .unwrap();
    SqliteStore::append_in_sqlx(&mut tx, &[json]).await.unwrap();
    tx.commit().await.unwrap();
    bus.wake();

    let got = handled(&seen, 1).await;
    assert_eq!(got.len(), 1, "handed over by wake within {WAKE_LIMIT:?}");
    assert_eq!(got[0].payload, opened("a-1"), "opened for the handler");
    assert_eq!(got[0].correlation_id.as_deref(), Some("req-7"));
    bus.shutdown().await;
}
