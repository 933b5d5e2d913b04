//! One conformance suite for every store: each case is a generic async function over a
//! [`Backend`], instantiated as a test per backend (SQLite in a file, SQLite in memory,
//! PostgreSQL on a server the tests start themselves). The outbox cases run again with the
//! caller's transaction on sqlx (`append_in_sqlx`, `claim_in_sqlx`) instead of rusqlite and
//! tokio-postgres.

use chrono::{SubsecRound, Utc};
use event_core::privacy::{KeyId, KeyStore, StoredKey};
use event_core::store::sqlx;
use event_core::store::{
    EventQuery, Fence, Position, PostgresStore, SqliteStore, Store, StoreError, StoredDeadLetter,
    TimelineQuery,
};
use event_core::{DeadLetter, Envelope, Meta, PARTITION_KEY, RawEnvelope, TENANT_ID};
use serde_json::value::RawValue;
use sqlx::Connection as _;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tests::postgres_server::PostgresServer;
use tokio::sync::Barrier;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------
// Backends

/// The schema version of this build's stores.
const LATEST_SCHEMA: i64 = 3;

/// The first migration of each backend, as released (migrations are append-only).
const SQLITE_VERSION_1: &str = include_str!("../../event-core/src/store/sql/sqlite/0001_init.sql");
const POSTGRES_VERSION_1: &str =
    include_str!("../../event-core/src/store/sql/postgres/0001_init.sql");

/// What a case needs from a backend beyond the `Store` trait.
trait Backend: Sized + Send + Sync + 'static {
    /// A new, empty database.
    async fn create() -> Self;
    /// Opens (or opens again) a store on the database.
    async fn try_open(&self) -> Result<Arc<dyn Store>, StoreError>;
    /// Opens (or opens again) a store on the database, as a key store.
    async fn open_keys(&self) -> Arc<dyn KeyStore>;
    /// Whether a store can be opened again on the same database (not in memory).
    fn reopens(&self) -> bool;
    /// Writes `version` as the recorded schema version, by hand.
    async fn set_schema_version(&self, version: i64);
    /// The recorded schema version, read by hand; None in memory.
    async fn schema_version(&self) -> Option<i64>;
    /// Makes the new database a store at schema version 1, as the first release left it (its
    /// migration only), with the checkpoint `billing` at 7; false when the backend cannot
    /// (in memory).
    async fn install_version_1(&self) -> bool;
    /// Appends inside an own transaction, then commits or rolls back; None when the backend
    /// has no outbox.
    async fn append_in(&self, events: &[RawEnvelope], commit: bool) -> Option<Vec<Position>>;
    /// Claims inside an own transaction, then commits or rolls back.
    async fn claim_in(&self, subscription: &str, id: Uuid, commit: bool) -> Option<bool>;

    async fn open(&self) -> Arc<dyn Store> {
        self.try_open().await.expect("open the store")
    }
}

/// An SQLite file; the caller's transactions on sqlx when `SQLX`, else on rusqlite.
struct SqliteFile<const SQLX: bool = false> {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl<const SQLX: bool> SqliteFile<SQLX> {
    async fn sqlx_connection(&self) -> sqlx::SqliteConnection {
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", self.path.display()))
            .await
            .unwrap()
    }
}

impl<const SQLX: bool> Backend for SqliteFile<SQLX> {
    async fn create() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        SqliteFile { _dir: dir, path }
    }

    async fn try_open(&self) -> Result<Arc<dyn Store>, StoreError> {
        Ok(Arc::new(SqliteStore::open(&self.path)?))
    }

    async fn open_keys(&self) -> Arc<dyn KeyStore> {
        Arc::new(SqliteStore::open(&self.path).unwrap())
    }

    fn reopens(&self) -> bool {
        true
    }

    async fn set_schema_version(&self, version: i64) {
        let conn = event_core::store::rusqlite::Connection::open(&self.path).unwrap();
        conn.execute(
            "UPDATE event_store_meta SET value = ?1 WHERE key = 'schema_version'",
            [version],
        )
        .unwrap();
    }

    async fn schema_version(&self) -> Option<i64> {
        let conn = event_core::store::rusqlite::Connection::open(&self.path).unwrap();
        Some(
            conn.query_row(
                "SELECT value FROM event_store_meta WHERE key = 'schema_version'",
                [],
                |row| row.get(0),
            )
            .unwrap(),
        )
    }

    async fn install_version_1(&self) -> bool {
        let mut conn = event_core::store::rusqlite::Connection::open(&self.path).unwrap();
        let tx = conn.transaction().unwrap();
        tx.execute_batch(SQLITE_VERSION_1).unwrap();
        tx.execute_batch(
            "UPDATE event_store_meta SET value = 1 WHERE key = 'schema_version'; \
             INSERT INTO event_store_checkpoints (subscription, position) VALUES ('billing', 7); \
             PRAGMA application_id = 1163285587;",
        )
        .unwrap();
        tx.commit().unwrap();
        true
    }

    async fn append_in(&self, events: &[RawEnvelope], commit: bool) -> Option<Vec<Position>> {
        let store = SqliteStore::open(&self.path).unwrap();
        if SQLX {
            let mut conn = self.sqlx_connection().await;
            let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.unwrap();
            sqlx::query("CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY)")
                .execute(&mut *tx)
                .await
                .unwrap();
            sqlx::query("INSERT INTO orders VALUES (?1)")
                .bind(Uuid::now_v7().to_string())
                .execute(&mut *tx)
                .await
                .unwrap();
            let positions = SqliteStore::append_in_sqlx(&mut tx, events).await.unwrap();
            finish(tx, commit).await;
            return Some(positions);
        }
        let mut conn = store.connection().unwrap();
        let tx = conn
            .transaction_with_behavior(event_core::store::rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        tx.execute_batch("CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY)")
            .unwrap();
        tx.execute(
            "INSERT INTO orders VALUES (?1)",
            [Uuid::now_v7().to_string()],
        )
        .unwrap();
        let positions = SqliteStore::append_in(&tx, events).unwrap();
        if commit {
            tx.commit().unwrap();
        } else {
            tx.rollback().unwrap();
        }
        Some(positions)
    }

    async fn claim_in(&self, subscription: &str, id: Uuid, commit: bool) -> Option<bool> {
        let store = SqliteStore::open(&self.path).unwrap();
        if SQLX {
            let mut conn = self.sqlx_connection().await;
            let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.unwrap();
            let claimed = SqliteStore::claim_in_sqlx(&mut tx, subscription, id)
                .await
                .unwrap();
            finish(tx, commit).await;
            return Some(claimed);
        }
        let mut conn = store.connection().unwrap();
        let tx = conn
            .transaction_with_behavior(event_core::store::rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        let claimed = SqliteStore::claim_in(&tx, subscription, id).unwrap();
        if commit {
            tx.commit().unwrap();
        } else {
            tx.rollback().unwrap();
        }
        Some(claimed)
    }
}

struct SqliteMemory {
    store: Arc<SqliteStore>,
}

impl Backend for SqliteMemory {
    async fn create() -> Self {
        SqliteMemory {
            store: Arc::new(SqliteStore::open_in_memory().unwrap()),
        }
    }

    async fn try_open(&self) -> Result<Arc<dyn Store>, StoreError> {
        Ok(Arc::clone(&self.store) as Arc<dyn Store>)
    }

    async fn open_keys(&self) -> Arc<dyn KeyStore> {
        Arc::clone(&self.store) as Arc<dyn KeyStore>
    }

    fn reopens(&self) -> bool {
        false
    }

    async fn set_schema_version(&self, _: i64) {}

    async fn schema_version(&self) -> Option<i64> {
        None
    }

    async fn install_version_1(&self) -> bool {
        false
    }

    async fn append_in(&self, _: &[RawEnvelope], _: bool) -> Option<Vec<Position>> {
        None
    }

    async fn claim_in(&self, _: &str, _: Uuid, _: bool) -> Option<bool> {
        None
    }
}

/// A PostgreSQL database; the caller's transactions on sqlx when `SQLX`, else on
/// tokio-postgres.
struct Postgres<const SQLX: bool = false> {
    url: String,
}

impl<const SQLX: bool> Postgres<SQLX> {
    /// A sqlx connection to the database.
    async fn sqlx_connection(&self) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(&PostgresServer::url(&self.url))
            .await
            .unwrap()
    }

    async fn client(&self) -> event_core::store::tokio_postgres::Client {
        let (client, connection) = event_core::store::tokio_postgres::connect(
            &self.url,
            event_core::store::tokio_postgres::NoTls,
        )
        .await
        .unwrap();
        tokio::spawn(connection);
        client
    }
}

impl<const SQLX: bool> Backend for Postgres<SQLX> {
    async fn create() -> Self {
        Postgres {
            url: PostgresServer::shared().create_database(),
        }
    }

    async fn try_open(&self) -> Result<Arc<dyn Store>, StoreError> {
        Ok(Arc::new(PostgresStore::connect(&self.url).await?))
    }

    async fn open_keys(&self) -> Arc<dyn KeyStore> {
        Arc::new(PostgresStore::connect(&self.url).await.unwrap())
    }

    fn reopens(&self) -> bool {
        true
    }

    async fn set_schema_version(&self, version: i64) {
        self.client()
            .await
            .execute(
                "UPDATE event_store_meta SET value = $1 WHERE key = 'schema_version'",
                &[&version],
            )
            .await
            .unwrap();
    }

    async fn schema_version(&self) -> Option<i64> {
        let row = self
            .client()
            .await
            .query_one(
                "SELECT value FROM event_store_meta WHERE key = 'schema_version'",
                &[],
            )
            .await
            .unwrap();
        Some(row.get(0))
    }

    async fn install_version_1(&self) -> bool {
        let mut client = self.client().await;
        let tx = client.transaction().await.unwrap();
        tx.batch_execute(POSTGRES_VERSION_1).await.unwrap();
        tx.batch_execute(
            "UPDATE event_store_meta SET value = 1 WHERE key = 'schema_version'; \
             INSERT INTO event_store_checkpoints (subscription, position) VALUES ('billing', 7);",
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        true
    }

    async fn append_in(&self, events: &[RawEnvelope], commit: bool) -> Option<Vec<Position>> {
        let mut client = self.client().await;
        client
            .batch_execute("CREATE TABLE IF NOT EXISTS orders (id UUID PRIMARY KEY)")
            .await
            .unwrap();
        if SQLX {
            let mut conn = self.sqlx_connection().await;
            let mut tx = conn.begin().await.unwrap();
            sqlx::query("INSERT INTO orders VALUES ($1)")
                .bind(Uuid::now_v7())
                .execute(&mut *tx)
                .await
                .unwrap();
            let positions = PostgresStore::append_in_sqlx(&mut tx, events)
                .await
                .unwrap();
            finish(tx, commit).await;
            return Some(positions);
        }
        let tx = client.transaction().await.unwrap();
        tx.execute("INSERT INTO orders VALUES ($1)", &[&Uuid::now_v7()])
            .await
            .unwrap();
        let positions = PostgresStore::append_in(&tx, events).await.unwrap();
        if commit {
            tx.commit().await.unwrap();
        } else {
            tx.rollback().await.unwrap();
        }
        Some(positions)
    }

    async fn claim_in(&self, subscription: &str, id: Uuid, commit: bool) -> Option<bool> {
        if SQLX {
            let mut conn = self.sqlx_connection().await;
            let mut tx = conn.begin().await.unwrap();
            let claimed = PostgresStore::claim_in_sqlx(&mut tx, subscription, id)
                .await
                .unwrap();
            finish(tx, commit).await;
            return Some(claimed);
        }
        let mut client = self.client().await;
        let tx = client.transaction().await.unwrap();
        let claimed = PostgresStore::claim_in(&tx, subscription, id)
            .await
            .unwrap();
        if commit {
            tx.commit().await.unwrap();
        } else {
            tx.rollback().await.unwrap();
        }
        Some(claimed)
    }
}

/// Commits or rolls back a sqlx transaction.
async fn finish<DB: sqlx::Database>(tx: sqlx::Transaction<'_, DB>, commit: bool) {
    if commit {
        tx.commit().await.unwrap();
    } else {
        tx.rollback().await.unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// Instantiation: one test per (backend, case).

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite_file {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(<super::SqliteFile as super::Backend>::create().await).await;
                }
            )*
        }
        mod sqlite_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(<super::SqliteMemory as super::Backend>::create().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(<super::Postgres as super::Backend>::create().await).await;
                }
            )*
        }
    };
}

conformance!(
    append_then_read_in_order,
    concurrent_appends_get_gap_free_positions_in_commit_order,
    group_commit_shares_transactions,
    duplicate_id_is_stored_once,
    checkpoints_move_forward_and_reset_anywhere,
    checkpoints_are_listed_by_name,
    claims_dedupe_even_concurrently,
    dead_letters_put_list_remove,
    timeline_pages_every_event_once,
    timeline_rejects_foreign_cursors,
    timeline_pages_are_stable_under_concurrent_appends,
    query_filters_combine_and_page,
    prune_keeps_undelivered_events,
    append_in_commits_or_rolls_back_with_the_caller,
    concurrent_outbox_transactions_get_gap_free_positions_in_commit_order,
    claim_in_rolls_back_with_the_caller,
    reopening_migrates_once_and_keeps_everything,
    schema_newer_than_the_code_is_refused,
    version_1_database_is_migrated_on_open,
    lease_is_held_renewed_and_kept_from_others,
    lease_that_ran_out_passes_with_a_larger_token,
    released_lease_passes_at_once_with_a_larger_token,
    concurrent_leases_have_exactly_one_holder,
    leases_lists_the_running_ones_by_prefix,
    fenced_writes_are_refused_to_a_stale_holder,
    key_store_keeps_and_forgets_keys_by_subject,
);

/// The outbox cases again, with the caller's transaction on sqlx.
macro_rules! sqlx_conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlx_sqlite_file {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(<super::SqliteFile<true> as super::Backend>::create().await).await;
                }
            )*
        }
        mod sqlx_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(<super::Postgres<true> as super::Backend>::create().await).await;
                }
            )*
        }
    };
}

sqlx_conformance!(
    append_in_commits_or_rolls_back_with_the_caller,
    concurrent_outbox_transactions_get_gap_free_positions_in_commit_order,
    claim_in_rolls_back_with_the_caller,
);

// ---------------------------------------------------------------------------------------
// Helpers

fn event(partition_key: &str, event_type: &str, n: u32) -> RawEnvelope {
    let mut meta = Meta::new();
    meta.insert(PARTITION_KEY.to_owned(), partition_key.into());
    Envelope {
        id: Uuid::now_v7(),
        event_type: event_type.into(),
        version: 1,
        occurred_at: Utc::now().trunc_subsecs(3),
        source: Some("tests".into()),
        correlation_id: Some(format!("c-{n}").into()),
        causation_id: None,
        trace_id: None,
        payload: RawValue::from_string(format!(r#"{{"n":{n},"key":"{partition_key}"}}"#)).unwrap(),
        meta,
    }
}

fn events(count: u32) -> Vec<RawEnvelope> {
    (0..count).map(|n| event("p", "order.created", n)).collect()
}

fn json(envelope: &RawEnvelope) -> String {
    envelope.to_json().unwrap()
}

fn positions(events: &[event_core::store::StoredEvent]) -> Vec<Position> {
    events.iter().map(|event| event.position).collect()
}

// ---------------------------------------------------------------------------------------
// Cases

async fn append_then_read_in_order(backend: impl Backend) {
    let store = backend.open().await;
    assert_eq!(store.head().await.unwrap(), 0);
    assert!(store.read(0, 10).await.unwrap().is_empty());
    assert_eq!(
        store.append(Vec::new()).await.unwrap(),
        Vec::<Position>::new()
    );

    let first = events(3);
    let second = events(2);
    assert_eq!(store.append(first.clone()).await.unwrap(), [1, 2, 3]);
    assert_eq!(store.append(second.clone()).await.unwrap(), [4, 5]);
    assert_eq!(store.head().await.unwrap(), 5);

    let all = store.read(0, 100).await.unwrap();
    assert_eq!(positions(&all), [1, 2, 3, 4, 5]);
    for (stored, appended) in all.iter().zip(first.iter().chain(&second)) {
        assert_eq!(
            json(&stored.envelope),
            json(appended),
            "byte for byte as appended"
        );
    }
    assert_eq!(positions(&store.read(2, 2).await.unwrap()), [3, 4]);
    assert!(store.read(5, 10).await.unwrap().is_empty());
    let stats = store.stats();
    assert_eq!((stats.appends, stats.events_appended), (2, 5));
}

async fn concurrent_appends_get_gap_free_positions_in_commit_order(backend: impl Backend) {
    const APPENDERS: u32 = 16;
    const ROUNDS: u32 = 10;
    let store = backend.open().await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));

    // A reader that must never see a position before it saw every lower one.
    let reader = {
        let store = Arc::clone(&store);
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut after = 0;
            let mut reads = 0;
            loop {
                let done = stop.load(std::sync::atomic::Ordering::SeqCst);
                let batch = store.read(after, 1000).await.unwrap();
                for event in &batch {
                    assert_eq!(event.position, after + 1, "a reader saw a gap");
                    after = event.position;
                }
                reads += 1;
                if done {
                    return (after, reads);
                }
                tokio::task::yield_now().await;
            }
        })
    };

    let barrier = Arc::new(Barrier::new(APPENDERS as usize));
    let mut tasks = Vec::new();
    for task in 0..APPENDERS {
        let store = Arc::clone(&store);
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut mine = Vec::new();
            for round in 0..ROUNDS {
                let size = 1 + (task + round) % 3;
                let got = store.append(events(size)).await.unwrap();
                assert_eq!(got.len(), size as usize);
                mine.extend(got);
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        let mine = task.await.unwrap();
        assert!(
            mine.windows(2).all(|pair| pair[0] < pair[1]),
            "one task's sequential appends must get increasing positions: {mine:?}"
        );
        all.extend(mine);
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (seen, _) = reader.await.unwrap();

    all.sort_unstable();
    let expected: Vec<Position> = (1..=all.len() as Position).collect();
    assert_eq!(all, expected, "positions are 1..=N without gaps or repeats");
    assert_eq!(seen, all.len() as Position);
    assert_eq!(store.head().await.unwrap(), all.len() as Position);
}

async fn group_commit_shares_transactions(backend: impl Backend) {
    const APPENDERS: usize = 16;
    let store = backend.open().await;
    let before = store.stats();
    for _ in 0..5 {
        let barrier = Arc::new(Barrier::new(APPENDERS));
        let tasks: Vec<_> = (0..APPENDERS)
            .map(|_| {
                let store = Arc::clone(&store);
                let barrier = Arc::clone(&barrier);
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.append(events(1)).await.unwrap()
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    }
    let after = store.stats();
    let appends = after.appends - before.appends;
    let transactions = after.write_transactions - before.write_transactions;
    assert_eq!(appends, 5 * APPENDERS as u64);
    assert!(
        transactions < appends,
        "{appends} concurrent appends took {transactions} transactions: no group commit"
    );
}

async fn duplicate_id_is_stored_once(backend: impl Backend) {
    let store = backend.open().await;
    let a = event("p", "order.created", 1);
    let b = event("p", "order.created", 2);
    assert_eq!(store.append(vec![a.clone()]).await.unwrap(), [1]);
    assert_eq!(
        store
            .append(vec![a.clone(), b.clone(), b.clone()])
            .await
            .unwrap(),
        [1, 2, 2]
    );
    assert_eq!(store.append(vec![b]).await.unwrap(), [2]);
    assert_eq!(store.head().await.unwrap(), 2);
    assert_eq!(store.read(0, 10).await.unwrap().len(), 2);
    assert_eq!(store.stats().events_appended, 2);
    // The next new event continues without a gap.
    assert_eq!(store.append(events(1)).await.unwrap(), [3]);
}

async fn checkpoints_move_forward_and_reset_anywhere(backend: impl Backend) {
    let store = backend.open().await;
    assert_eq!(store.checkpoint("billing").await.unwrap(), 0);
    store.save_checkpoint("billing", 5).await.unwrap();
    assert_eq!(store.checkpoint("billing").await.unwrap(), 5);
    store.save_checkpoint("billing", 3).await.unwrap();
    assert_eq!(store.checkpoint("billing").await.unwrap(), 5, "never back");
    store.save_checkpoint("billing", 9).await.unwrap();
    assert_eq!(store.checkpoint("billing").await.unwrap(), 9);
    store.reset_checkpoint("billing", 2).await.unwrap();
    assert_eq!(
        store.checkpoint("billing").await.unwrap(),
        2,
        "reset moves back"
    );
    store.reset_checkpoint("billing", 7).await.unwrap();
    assert_eq!(store.checkpoint("billing").await.unwrap(), 7);
    assert_eq!(store.checkpoint("shipping").await.unwrap(), 0);
    store.reset_checkpoint("shipping", 4).await.unwrap();
    assert_eq!(store.checkpoint("shipping").await.unwrap(), 4);
    assert_eq!(store.checkpoint("billing").await.unwrap(), 7);
    store.remove_subscription("billing").await.unwrap();
    assert_eq!(store.checkpoint("billing").await.unwrap(), 0);
    assert_eq!(store.checkpoint("shipping").await.unwrap(), 4);
}

async fn checkpoints_are_listed_by_name(backend: impl Backend) {
    let store = backend.open().await;
    assert!(store.checkpoints().await.unwrap().is_empty());
    store.append(events(3)).await.unwrap();
    store.save_checkpoint("mailer", 2).await.unwrap();
    store.save_checkpoint("audit", 3).await.unwrap();
    store.reset_checkpoint("mailer", 1).await.unwrap();
    assert_eq!(
        store.checkpoints().await.unwrap(),
        [("audit".to_owned(), 3), ("mailer".to_owned(), 1)]
    );
}

async fn claims_dedupe_even_concurrently(backend: impl Backend) {
    let store = backend.open().await;
    let id = Uuid::now_v7();
    assert!(!store.is_claimed("billing", id).await.unwrap());
    assert!(store.claim("billing", id).await.unwrap());
    assert!(!store.claim("billing", id).await.unwrap());
    assert!(store.is_claimed("billing", id).await.unwrap());
    assert!(!store.is_claimed("shipping", id).await.unwrap());
    assert!(store.claim("shipping", id).await.unwrap());

    for _ in 0..20 {
        let id = Uuid::now_v7();
        let barrier = Arc::new(Barrier::new(2));
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let store = Arc::clone(&store);
                let barrier = Arc::clone(&barrier);
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.claim("race", id).await.unwrap()
                })
            })
            .collect();
        let mut wins = 0;
        for task in tasks {
            wins += u32::from(task.await.unwrap());
        }
        assert_eq!(wins, 1, "exactly one of two concurrent claims wins");
    }
    store.remove_subscription("billing").await.unwrap();
    assert!(!store.is_claimed("billing", id).await.unwrap());
}

async fn dead_letters_put_list_remove(backend: impl Backend) {
    let store = backend.open().await;
    let letter = |subscription: &str, n: u32| {
        DeadLetter::from(StoredDeadLetter {
            id: 0,
            subscription: subscription.to_owned(),
            envelope: event("o-1", "order.created", n),
            last_error: format!("error {n}"),
            attempts: n,
            failed_at: Utc::now().trunc_subsecs(3),
        })
    };
    let first = letter("billing", 1);
    let a = store.put_dead_letter(&first).await.unwrap();
    let b = store.put_dead_letter(&letter("shipping", 2)).await.unwrap();
    let c = store.put_dead_letter(&letter("billing", 3)).await.unwrap();
    assert!(a < b && b < c);

    let all = store.dead_letters(None).await.unwrap();
    assert_eq!(
        all.iter().map(|l| l.id).collect::<Vec<_>>(),
        [a, b, c],
        "oldest first"
    );
    let stored = &all[0];
    assert_eq!(stored.subscription, "billing");
    assert_eq!(stored.last_error, "error 1");
    assert_eq!(stored.attempts, 1);
    assert_eq!(stored.failed_at, first.failed_at);
    assert_eq!(json(&stored.envelope), json(&first.envelope));

    let billing = store.dead_letters(Some("billing")).await.unwrap();
    assert_eq!(billing.iter().map(|l| l.id).collect::<Vec<_>>(), [a, c]);
    assert!(store.dead_letters(Some("nobody")).await.unwrap().is_empty());

    assert!(store.remove_dead_letter(a).await.unwrap());
    assert!(!store.remove_dead_letter(a).await.unwrap());
    let left = store.dead_letters(None).await.unwrap();
    assert_eq!(left.iter().map(|l| l.id).collect::<Vec<_>>(), [b, c]);
    // Back to the bus's type.
    let back = DeadLetter::from(left[0].clone());
    assert_eq!(back.subscription, "shipping");
}

async fn timeline_pages_every_event_once(backend: impl Backend) {
    let store = backend.open().await;
    let mut expected = Vec::new();
    for n in 0..25 {
        let kind = if n % 3 == 0 {
            "order.paid"
        } else {
            "order.created"
        };
        let mine = event("o-1", kind, n);
        let other = event("o-2", "order.created", n);
        let got = store.append(vec![mine.clone(), other]).await.unwrap();
        expected.push((got[0], kind, json(&mine)));
    }
    store
        .append(vec![event("o-1", "orders.audit", 99)])
        .await
        .unwrap();

    let page_through = |query: TimelineQuery| {
        let store = Arc::clone(&store);
        async move {
            let mut seen = Vec::new();
            let mut query = query;
            let mut pages = 0;
            loop {
                let page = store.timeline(&query).await.unwrap();
                assert!(page.events.len() <= query.limit);
                seen.extend(page.events);
                pages += 1;
                match page.next_cursor {
                    Some(cursor) => query = query.cursor(cursor),
                    None => return (seen, pages),
                }
            }
        }
    };

    let (seen, pages) = page_through(
        TimelineQuery::partition("o-1")
            .type_prefix("order.")
            .limit(7),
    )
    .await;
    assert_eq!(pages, 4);
    assert_eq!(
        seen.iter()
            .map(|e| (e.position, json(&e.envelope)))
            .collect::<Vec<_>>(),
        expected
            .iter()
            .map(|(p, _, j)| (*p, j.clone()))
            .collect::<Vec<_>>(),
        "oldest first: every event of the key exactly once, in order"
    );

    let (seen, _) = page_through(
        TimelineQuery::partition("o-1")
            .type_prefix("order.")
            .limit(4)
            .newest_first(),
    )
    .await;
    let mut newest: Vec<Position> = expected.iter().map(|(p, _, _)| *p).collect();
    newest.reverse();
    assert_eq!(positions(&seen), newest, "newest first");

    let (paid, _) = page_through(
        TimelineQuery::partition("o-1")
            .type_prefix("order.paid")
            .limit(3),
    )
    .await;
    let expected_paid: Vec<Position> = expected
        .iter()
        .filter(|(_, kind, _)| *kind == "order.paid")
        .map(|(p, _, _)| *p)
        .collect();
    assert_eq!(positions(&paid), expected_paid, "type prefix filters");

    let (everything, _) = page_through(TimelineQuery::partition("o-1").limit(100)).await;
    assert_eq!(everything.len(), 26, "no prefix: every type");
    let (exact, pages) = page_through(TimelineQuery::partition("o-1").limit(26)).await;
    assert_eq!(
        (exact.len(), pages),
        (26, 1),
        "a full last page has no next cursor"
    );
    assert!(
        store
            .timeline(&TimelineQuery::partition("nobody"))
            .await
            .unwrap()
            .events
            .is_empty()
    );
}

async fn query_filters_combine_and_page(backend: impl Backend) {
    let store = backend.open().await;
    let mut tenant_a = event("o-1", "order.paid", 1);
    tenant_a.meta.insert(TENANT_ID.to_owned(), "acme".into());
    let batch = vec![
        event("o-1", "order.created", 0),
        tenant_a.clone(),
        event("o-2", "order.created", 1),
        event("o-2", "order.shipped", 2),
        event("o-3", "order.paid", 3),
    ];
    let appended = store.append(batch.clone()).await.unwrap();
    let ids = |page: &event_core::store::TimelinePage| -> Vec<Uuid> {
        page.events.iter().map(|e| e.envelope.id).collect()
    };

    let everything = store.query(&EventQuery::new()).await.unwrap();
    assert_eq!(positions(&everything.events), appended);
    let by_key = store
        .query(&EventQuery::new().partition_key("o-2"))
        .await
        .unwrap();
    assert_eq!(ids(&by_key), [batch[2].id, batch[3].id]);
    let by_types = EventQuery::new().event_types(["order.paid", "order.shipped"]);
    let by_types = store.query(&by_types).await.unwrap();
    assert_eq!(ids(&by_types), [batch[1].id, batch[3].id, batch[4].id]);
    // `event` gives event n the correlation id `c-n`: events 1 and 2 share `c-1`.
    let correlated = EventQuery::new().correlation_id("c-1").newest_first();
    let correlated = store.query(&correlated).await.unwrap();
    assert_eq!(ids(&correlated), [batch[2].id, batch[1].id]);
    let tenant = store
        .query(&EventQuery::new().tenant("acme"))
        .await
        .unwrap();
    assert_eq!(ids(&tenant), [tenant_a.id]);
    let one = store
        .query(&EventQuery::new().id(batch[3].id))
        .await
        .unwrap();
    assert_eq!(json(&one.events[0].envelope), json(&batch[3]));
    let combined = EventQuery::new()
        .partition_key("o-2")
        .event_types(["order.paid"]);
    assert!(store.query(&combined).await.unwrap().events.is_empty());
    let later = Utc::now() + chrono::Duration::hours(1);
    let future = EventQuery::new().appended(Some(later), None);
    assert!(store.query(&future).await.unwrap().events.is_empty());
    let past = EventQuery::new().appended(None, Some(later));
    assert_eq!(store.query(&past).await.unwrap().events.len(), 5);

    // Two at a time, each event once, then no cursor.
    let mut query = EventQuery::new().limit(2);
    let mut seen = Vec::new();
    loop {
        let page = store.query(&query).await.unwrap();
        assert!(page.events.len() <= 2);
        seen.extend(ids(&page));
        match page.next_cursor {
            Some(cursor) => query = query.cursor(cursor),
            None => break,
        }
    }
    assert_eq!(seen, batch.iter().map(|e| e.id).collect::<Vec<_>>());
    let foreign = store
        .query(&EventQuery::new().cursor("x; DROP TABLE"))
        .await;
    assert!(
        matches!(foreign, Err(StoreError::InvalidCursor { .. })),
        "{foreign:?}"
    );
}

async fn timeline_rejects_foreign_cursors(backend: impl Backend) {
    let store = backend.open().await;
    for bad in ["", "c", "x12", "c-1", "c1x", "c+1"] {
        let error = store
            .timeline(&TimelineQuery::partition("o-1").cursor(bad))
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::InvalidCursor { .. }),
            "{bad:?}: {error}"
        );
    }
}

async fn timeline_pages_are_stable_under_concurrent_appends(backend: impl Backend) {
    let store = backend.open().await;
    let mut before = Vec::new();
    for n in 0..40 {
        before.extend(
            store
                .append(vec![event("o-1", "order.created", n)])
                .await
                .unwrap(),
        );
    }
    for newest_first in [false, true] {
        let appender = {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for n in 0..40 {
                    store
                        .append(vec![
                            event("o-1", "order.paid", n),
                            event("o-2", "order.paid", n),
                        ])
                        .await
                        .unwrap();
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        };
        let mut query = TimelineQuery::partition("o-1").limit(3);
        if newest_first {
            query = query.newest_first();
        }
        let mut seen = Vec::new();
        loop {
            let page = store.timeline(&query).await.unwrap();
            seen.extend(positions(&page.events));
            match page.next_cursor {
                Some(cursor) => query = query.cursor(cursor),
                None => break,
            }
            tokio::task::yield_now().await;
        }
        appender.await.unwrap();
        let unique: HashSet<Position> = seen.iter().copied().collect();
        assert_eq!(unique.len(), seen.len(), "no event twice");
        let ordered = if newest_first {
            seen.windows(2).all(|w| w[0] > w[1])
        } else {
            seen.windows(2).all(|w| w[0] < w[1])
        };
        assert!(ordered, "pages continue in order: {seen:?}");
        for position in &before {
            assert!(
                unique.contains(position),
                "event {position} missing from the pages"
            );
        }
    }
}

async fn prune_keeps_undelivered_events(backend: impl Backend) {
    let store = backend.open().await;
    let appended = events(10);
    store.append(appended.clone()).await.unwrap();
    let later = Utc::now() + chrono::Duration::minutes(1);
    assert_eq!(
        store.prune(later).await.unwrap(),
        0,
        "no subscription: nothing is pruned"
    );

    store.save_checkpoint("billing", 6).await.unwrap();
    store.save_checkpoint("shipping", 3).await.unwrap();
    for envelope in &appended[..6] {
        assert!(store.claim("billing", envelope.id).await.unwrap());
    }
    let earlier = Utc::now() - chrono::Duration::minutes(1);
    assert_eq!(
        store.prune(earlier).await.unwrap(),
        0,
        "every event is younger"
    );
    assert_eq!(
        store.prune(later).await.unwrap(),
        3,
        "only what both handled"
    );
    assert_eq!(
        positions(&store.read(0, 100).await.unwrap()),
        (4..=10).collect::<Vec<_>>()
    );
    for (index, envelope) in appended[..6].iter().enumerate() {
        assert_eq!(
            store.is_claimed("billing", envelope.id).await.unwrap(),
            index >= 3,
            "the inbox rows of pruned events go with them"
        );
    }

    store.save_checkpoint("shipping", 10).await.unwrap();
    store.save_checkpoint("billing", 10).await.unwrap();
    assert_eq!(store.prune(later).await.unwrap(), 7);
    assert!(store.read(0, 100).await.unwrap().is_empty());
    assert_eq!(store.head().await.unwrap(), 10, "the head stays");
    assert_eq!(
        store.append(events(1)).await.unwrap(),
        [11],
        "positions are not reused"
    );

    // A subscription that has not handled anything holds everything back.
    store.save_checkpoint("audit", 0).await.unwrap();
    assert_eq!(
        store
            .prune(Utc::now() + chrono::Duration::minutes(2))
            .await
            .unwrap(),
        0
    );
    store.remove_subscription("audit").await.unwrap();
    store.save_checkpoint("billing", 11).await.unwrap();
    store.save_checkpoint("shipping", 11).await.unwrap();
    assert_eq!(
        store
            .prune(Utc::now() + chrono::Duration::minutes(2))
            .await
            .unwrap(),
        1
    );
}

async fn append_in_commits_or_rolls_back_with_the_caller(backend: impl Backend) {
    let store = backend.open().await;
    store.append(events(2)).await.unwrap();
    let rolled_back = events(2);
    let Some(got) = backend.append_in(&rolled_back, false).await else {
        return; // no outbox on this backend (in memory)
    };
    assert_eq!(got, [3, 4]);
    assert_eq!(store.head().await.unwrap(), 2, "a rollback leaves nothing");
    assert_eq!(store.read(0, 100).await.unwrap().len(), 2);

    let committed = events(2);
    assert_eq!(
        backend.append_in(&committed, true).await.unwrap(),
        [3, 4],
        "no gap after a rollback"
    );
    let all = store.read(0, 100).await.unwrap();
    assert_eq!(positions(&all), [1, 2, 3, 4]);
    assert_eq!(json(&all[2].envelope), json(&committed[0]));
    // Dedupe by id across both paths.
    assert_eq!(store.append(vec![committed[1].clone()]).await.unwrap(), [4]);
    assert_eq!(store.append(events(1)).await.unwrap(), [5]);
}

async fn concurrent_outbox_transactions_get_gap_free_positions_in_commit_order(
    backend: impl Backend,
) {
    let store = backend.open().await;
    if backend.append_in(&[], true).await.is_none() {
        return; // no outbox on this backend (in memory)
    }
    // Transactions of the caller (one in four rolled back) and the store's own appends, at
    // once: every committed event gets the next position, and a rolled-back one leaves no
    // gap.
    let rounds = (0..12).map(|round| {
        let (backend, store) = (&backend, Arc::clone(&store));
        async move {
            let batch = events(3);
            let commit = round % 4 != 3;
            let positions = if round % 3 == 2 {
                store.append(batch.clone()).await.unwrap()
            } else {
                backend.append_in(&batch, commit).await.unwrap()
            };
            (batch, positions, commit || round % 3 == 2)
        }
    });
    let mut committed = Vec::new();
    for (batch, positions, kept) in futures_util::future::join_all(rounds).await {
        if kept {
            assert!(
                positions.windows(2).all(|w| w[1] == w[0] + 1),
                "a batch's positions are consecutive: {positions:?}"
            );
            committed.push((batch, positions));
        }
    }
    let all = store.read(0, 1000).await.unwrap();
    let expected: Vec<Position> = (1..=3 * committed.len() as Position).collect();
    assert_eq!(
        positions(&all),
        expected,
        "gap-free, every committed event once"
    );
    for (batch, at) in &committed {
        for (event, position) in batch.iter().zip(at) {
            let stored = &all[usize::try_from(*position).unwrap() - 1];
            assert_eq!(json(&stored.envelope), json(event), "at {position}");
        }
    }
}

async fn claim_in_rolls_back_with_the_caller(backend: impl Backend) {
    let store = backend.open().await;
    let id = Uuid::now_v7();
    let Some(claimed) = backend.claim_in("billing", id, false).await else {
        return;
    };
    assert!(claimed);
    assert!(
        !store.is_claimed("billing", id).await.unwrap(),
        "rolled back: unclaimed"
    );
    assert_eq!(backend.claim_in("billing", id, true).await, Some(true));
    assert!(store.is_claimed("billing", id).await.unwrap());
    assert_eq!(backend.claim_in("billing", id, true).await, Some(false));
    assert!(!store.claim("billing", id).await.unwrap());
}

async fn reopening_migrates_once_and_keeps_everything(backend: impl Backend) {
    if !backend.reopens() {
        return;
    }
    let store = backend.open().await;
    let first = events(3);
    store.append(first.clone()).await.unwrap();
    store.save_checkpoint("billing", 2).await.unwrap();
    drop(store);
    for round in 0..2 {
        let store = backend.open().await;
        assert_eq!(store.head().await.unwrap(), 3 + round);
        assert_eq!(store.checkpoint("billing").await.unwrap(), 2);
        assert_eq!(
            json(&store.read(0, 1).await.unwrap()[0].envelope),
            json(&first[0])
        );
        assert_eq!(
            store.append(first.clone()).await.unwrap(),
            [1, 2, 3],
            "ids survive"
        );
        assert_eq!(store.append(events(1)).await.unwrap(), [4 + round]);
    }
}

async fn schema_newer_than_the_code_is_refused(backend: impl Backend) {
    if !backend.reopens() {
        return;
    }
    let store = backend.open().await;
    store.append(events(1)).await.unwrap();
    drop(store);
    backend.set_schema_version(999).await;
    let error = backend.try_open().await.unwrap_err();
    match &error {
        StoreError::SchemaTooNew {
            found, supported, ..
        } => {
            assert_eq!((*found, *supported), (999, LATEST_SCHEMA));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.contains("999") && message.contains("upgrade event-core"),
        "{message}"
    );
    backend.set_schema_version(LATEST_SCHEMA).await;
    assert_eq!(
        backend.open().await.head().await.unwrap(),
        1,
        "nothing was changed"
    );
}

async fn version_1_database_is_migrated_on_open(backend: impl Backend) {
    if !backend.install_version_1().await {
        return;
    }
    assert_eq!(backend.schema_version().await, Some(1));
    let store = backend.open().await;
    assert_eq!(backend.schema_version().await, Some(LATEST_SCHEMA));
    assert_eq!(
        store.checkpoint("billing").await.unwrap(),
        7,
        "the data of version 1 stays"
    );
    assert_eq!(store.append(events(2)).await.unwrap(), [1, 2]);
    // Version 2's leases work on the migrated database.
    let token = store.lease("relay", "a", Duration::from_secs(10)).await;
    assert_eq!(token.unwrap(), Some(1));
    drop(store);
    // Opening again migrates nothing more.
    let store = backend.open().await;
    assert_eq!(backend.schema_version().await, Some(LATEST_SCHEMA));
    assert_eq!(
        store
            .lease("relay", "b", Duration::from_secs(10))
            .await
            .unwrap(),
        None,
        "the lease survived the reopening"
    );
    assert_eq!(store.head().await.unwrap(), 2);
    // Version 3's key table is there too.
    let keys = backend.open_keys().await;
    let key = StoredKey::new(
        KeyId::random(),
        "customer-1".to_owned(),
        vec![7; 72],
        Utc::now().trunc_subsecs(3),
    );
    keys.insert_key(key.clone()).await.unwrap();
    assert_eq!(keys.current_key("customer-1").await.unwrap(), Some(key));
}

async fn lease_is_held_renewed_and_kept_from_others(backend: impl Backend) {
    let store = backend.open().await;
    let ttl = Duration::from_secs(10);
    let first = store.lease("relay", "a", ttl).await.unwrap();
    assert!(first.is_some(), "the first holder gets a token");
    assert_eq!(
        store.lease("relay", "b", ttl).await.unwrap(),
        None,
        "not while a's lease runs"
    );
    assert_eq!(
        store.lease("relay", "a", ttl).await.unwrap(),
        first,
        "renewing keeps the token"
    );
    assert_eq!(store.lease("relay", "a", ttl).await.unwrap(), first);
    assert_eq!(store.lease("relay", "b", ttl).await.unwrap(), None);
    // Leases of other names are independent.
    assert!(store.lease("shard-1", "b", ttl).await.unwrap().is_some());
    assert_eq!(store.lease("shard-1", "a", ttl).await.unwrap(), None);
    assert_eq!(store.lease("relay", "a", ttl).await.unwrap(), first);
}

async fn lease_that_ran_out_passes_with_a_larger_token(backend: impl Backend) {
    let store = backend.open().await;
    let short = Duration::from_millis(200);
    let long = Duration::from_secs(10);
    let first = store.lease("relay", "a", short).await.unwrap().unwrap();
    assert_eq!(store.lease("relay", "b", long).await.unwrap(), None);
    tokio::time::sleep(Duration::from_millis(400)).await;

    let second = store.lease("relay", "b", short).await.unwrap().unwrap();
    assert!(
        second > first,
        "a new holder, a larger token: {second} > {first}"
    );
    assert_eq!(
        store.lease("relay", "a", long).await.unwrap(),
        None,
        "a's lease ran out: b holds it now"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;

    // The same holder after its lease ran out takes it anew, with a larger token.
    let third = store.lease("relay", "b", long).await.unwrap().unwrap();
    assert!(third > second, "taken anew: {third} > {second}");
    assert_eq!(store.lease("relay", "b", long).await.unwrap(), Some(third));
    assert_eq!(store.lease("relay", "a", long).await.unwrap(), None);
}

async fn leases_lists_the_running_ones_by_prefix(backend: impl Backend) {
    let store = backend.open().await;
    let ttl = Duration::from_secs(10);
    for (name, holder) in [
        ("group/billing/member/a", "a"),
        ("group/billing/member/b", "b"),
        ("group/billing_x/member/c", "c"),
        ("group/audit/member/a", "a"),
    ] {
        store.lease(name, holder, ttl).await.unwrap().unwrap();
    }
    store
        .lease(
            "group/billing/member/gone",
            "gone",
            Duration::from_millis(50),
        )
        .await
        .unwrap()
        .unwrap();
    store
        .lease("group/billing/member/left", "left", ttl)
        .await
        .unwrap();
    store
        .release_lease("group/billing/member/left", "left")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;

    let listed = store.leases("group/billing/").await.unwrap();
    let names: Vec<(&str, &str)> = listed
        .iter()
        .map(|lease| (lease.name.as_str(), lease.holder.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("group/billing/member/a", "a"),
            ("group/billing/member/b", "b")
        ],
        "only running leases under the prefix, by name (`_` is no wildcard)"
    );
    assert!(listed.iter().all(|lease| lease.token >= 1));
    assert!(store.leases("nothing/").await.unwrap().is_empty());
}

async fn fenced_writes_are_refused_to_a_stale_holder(backend: impl Backend) {
    let store = backend.open().await;
    let short = Duration::from_millis(200);
    let long = Duration::from_secs(10);
    let old = store.lease("shard/0", "a", short).await.unwrap().unwrap();
    let a = Fence::new("shard/0", "a", old);
    assert!(
        store
            .save_checkpoint_fenced("billing#0/4", 5, &a)
            .await
            .unwrap()
    );
    assert_eq!(store.checkpoint("billing#0/4").await.unwrap(), 5);

    // a pauses past its lease; b takes the shard over and moves on.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let new = store.lease("shard/0", "b", long).await.unwrap().unwrap();
    let b = Fence::new("shard/0", "b", new);
    assert!(
        store
            .save_checkpoint_fenced("billing#0/4", 7, &b)
            .await
            .unwrap()
    );

    // a's writes are refused: under its old token, and as a holder it no longer is.
    assert!(
        !store
            .save_checkpoint_fenced("billing#0/4", 9, &a)
            .await
            .unwrap()
    );
    let forged = Fence::new("shard/0", "a", new);
    assert!(
        !store
            .save_checkpoint_fenced("billing#0/4", 9, &forged)
            .await
            .unwrap()
    );
    assert_eq!(store.checkpoint("billing#0/4").await.unwrap(), 7);
    // Forward only, as an unfenced save.
    assert!(
        store
            .save_checkpoint_fenced("billing#0/4", 6, &b)
            .await
            .unwrap()
    );
    assert_eq!(store.checkpoint("billing#0/4").await.unwrap(), 7);
    // A released lease fences its holder out too.
    store.release_lease("shard/0", "b").await.unwrap();
    assert!(
        !store
            .save_checkpoint_fenced("billing#0/4", 8, &b)
            .await
            .unwrap()
    );
    assert_eq!(store.checkpoint("billing#0/4").await.unwrap(), 7);
}

async fn released_lease_passes_at_once_with_a_larger_token(backend: impl Backend) {
    let store = backend.open().await;
    let ttl = Duration::from_secs(10);
    let first = store.lease("relay", "a", ttl).await.unwrap().unwrap();

    // A release by another holder, or of a lease never taken, does nothing.
    store.release_lease("relay", "b").await.unwrap();
    store.release_lease("never-taken", "a").await.unwrap();
    assert_eq!(store.lease("relay", "b", ttl).await.unwrap(), None);
    assert_eq!(store.lease("relay", "a", ttl).await.unwrap(), Some(first));

    store.release_lease("relay", "a").await.unwrap();
    let second = store.lease("relay", "b", ttl).await.unwrap().unwrap();
    assert!(
        second > first,
        "taken at once, with a larger token: {second} > {first}"
    );
    assert_eq!(store.lease("relay", "a", ttl).await.unwrap(), None);
    // a no longer holds it: its release does nothing.
    store.release_lease("relay", "a").await.unwrap();
    assert_eq!(store.lease("relay", "a", ttl).await.unwrap(), None);
    assert_eq!(store.lease("relay", "b", ttl).await.unwrap(), Some(second));

    // Released twice in a row, then taken back by the same holder: still a larger token.
    store.release_lease("relay", "b").await.unwrap();
    store.release_lease("relay", "b").await.unwrap();
    let third = store.lease("relay", "b", ttl).await.unwrap().unwrap();
    assert!(third > second, "{third} > {second}");
}

async fn concurrent_leases_have_exactly_one_holder(backend: impl Backend) {
    const TASKS: usize = 8;
    // One store per task: separate connections (on PostgreSQL and an SQLite file, separate
    // writers racing on the same database).
    let mut stores = Vec::with_capacity(TASKS);
    for _ in 0..TASKS {
        stores.push(backend.open().await);
    }
    let mut last = 0;
    for round in 0..3 {
        let barrier = Arc::new(Barrier::new(TASKS));
        let tasks: Vec<_> = stores
            .iter()
            .enumerate()
            .map(|(n, store)| {
                let store = Arc::clone(store);
                let barrier = Arc::clone(&barrier);
                tokio::spawn(async move {
                    let holder = format!("h{n}");
                    barrier.wait().await;
                    let token = store
                        .lease("relay", &holder, Duration::from_secs(10))
                        .await
                        .unwrap();
                    (holder, token)
                })
            })
            .collect();
        let mut holders = Vec::new();
        for task in tasks {
            let (holder, token) = task.await.unwrap();
            if let Some(token) = token {
                holders.push((holder, token));
            }
        }
        assert_eq!(
            holders.len(),
            1,
            "round {round}: exactly one holder, got {holders:?}"
        );
        let (holder, token) = holders.pop().unwrap();
        assert!(token > last, "round {round}: {token} > {last}");
        last = token;
        // Everyone agrees on the holder afterwards.
        for store in &stores {
            for n in 0..TASKS {
                let other = format!("h{n}");
                let got = store
                    .lease("relay", &other, Duration::from_secs(10))
                    .await
                    .unwrap();
                if other == holder {
                    assert_eq!(got, Some(token));
                } else {
                    assert_eq!(got, None);
                }
            }
        }
        stores[0].release_lease("relay", &holder).await.unwrap();
    }
}

async fn key_store_keeps_and_forgets_keys_by_subject(backend: impl Backend) {
    let keys = backend.open_keys().await;
    let now = Utc::now().trunc_subsecs(3);
    let key = |subject: &str, byte: u8, minutes_ago: i64| {
        StoredKey::new(
            KeyId::random(),
            subject.to_owned(),
            vec![byte; 72],
            now - chrono::Duration::minutes(minutes_ago),
        )
    };
    let (a_old, a_new, b) = (key("a", 1, 10), key("a", 2, 1), key("b", 3, 20));
    assert_eq!(keys.current_key("a").await.unwrap(), None);
    // The newest is current, whatever the order they were inserted in.
    for inserted in [&a_new, &b, &a_old] {
        keys.insert_key(inserted.clone()).await.unwrap();
    }
    assert_eq!(keys.current_key("a").await.unwrap().as_ref(), Some(&a_new));
    assert_eq!(keys.current_key("b").await.unwrap().as_ref(), Some(&b));
    for each in [&a_old, &a_new, &b] {
        assert_eq!(keys.key(each.id).await.unwrap().as_ref(), Some(each));
    }
    assert_eq!(keys.key(KeyId::random()).await.unwrap(), None);
    assert!(
        keys.insert_key(a_old.clone()).await.is_err(),
        "an id is kept once"
    );

    // Made within the same millisecond: the larger id is current.
    let (c1, c2) = (key("c", 4, 0), key("c", 5, 0));
    keys.insert_key(c1.clone()).await.unwrap();
    keys.insert_key(c2.clone()).await.unwrap();
    let larger = if c1.id > c2.id { &c1 } else { &c2 };
    assert_eq!(keys.current_key("c").await.unwrap().as_ref(), Some(larger));

    assert_eq!(keys.forget("a").await.unwrap(), 2);
    assert_eq!(keys.key(a_old.id).await.unwrap(), None);
    assert_eq!(keys.key(a_new.id).await.unwrap(), None);
    assert_eq!(keys.current_key("a").await.unwrap(), None);
    assert_eq!(keys.forget("a").await.unwrap(), 0, "nothing left to forget");
    assert_eq!(keys.current_key("b").await.unwrap().as_ref(), Some(&b));
    assert_eq!(keys.key(b.id).await.unwrap().as_ref(), Some(&b));

    // A subject forgotten may get a key again.
    let a_again = key("a", 6, 0);
    keys.insert_key(a_again.clone()).await.unwrap();
    assert_eq!(keys.current_key("a").await.unwrap(), Some(a_again));

    if backend.reopens() {
        drop(keys);
        let keys = backend.open_keys().await;
        assert_eq!(
            keys.key(b.id).await.unwrap(),
            Some(b),
            "kept across reopening"
        );
        assert_eq!(keys.key(a_old.id).await.unwrap(), None);
    }
}
