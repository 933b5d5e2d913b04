//! The bus over a SQLite store: publish appends, subscriptions resume from their checkpoint
//! after a restart, handled events are not handled again, dead letters survive a restart,
//! replay, and a store that refuses writes makes `publish` fail.

use event_core::store::{SqliteOptions, SqliteStore, Store};
use event_core::{
    DomainEvent, EventBus, HandlerError, PublishError, ReplayError, RetryPolicy,
    SubscriptionOptions,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "level.completed", source = "game")]
struct LevelCompleted {
    #[event(partition_key)]
    player: String,
    level: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "level.scored", source = "game")]
struct LevelScored {
    score: u32,
}

fn level(n: u32) -> LevelCompleted {
    LevelCompleted {
        player: format!("p-{}", n % 3),
        level: n,
    }
}

fn durable_bus(path: &Path) -> EventBus {
    EventBus::builder()
        .store(SqliteStore::open(path).expect("opens the store"))
        .poll_interval(Duration::from_millis(20))
        .retry(RetryPolicy::never())
        .build()
}

/// Subscribes `name` and records the levels its handler saw, in order.
fn recording(bus: &EventBus, name: &str) -> Arc<Mutex<Vec<u32>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    bus.subscribe_event::<LevelCompleted, _, _>(name, move |env| {
        sink.lock().unwrap().push(env.payload.level);
        async { Ok(()) }
    })
    .expect("subscribes");
    seen
}

fn taken(seen: &Mutex<Vec<u32>>) -> Vec<u32> {
    seen.lock().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_bus_resumes_each_subscription_where_it_left_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");

    let bus = durable_bus(&path);
    let billing = recording(&bus, "billing");
    for n in 1..=10 {
        bus.publish(level(n)).await.expect("publishes");
    }
    bus.shutdown().await;
    assert_eq!(taken(&billing), (1..=10).collect::<Vec<_>>());

    let bus = durable_bus(&path);
    let billing = recording(&bus, "billing");
    // A subscription new to the store starts at its beginning.
    let audit = recording(&bus, "audit");
    for n in 11..=15 {
        bus.publish(level(n)).await.expect("publishes");
    }
    bus.shutdown().await;
    assert_eq!(
        taken(&billing),
        (11..=15).collect::<Vec<_>>(),
        "billing resumed after 10"
    );
    assert_eq!(
        taken(&audit),
        (1..=15).collect::<Vec<_>>(),
        "audit read everything"
    );
    assert_eq!(bus.metrics().published, 5);
}

#[test]
fn events_handled_before_a_crash_are_not_handled_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let seen = Arc::new(Mutex::new(Vec::new()));

    // First life: level 5's handler never finishes; the runtime is dropped with it running,
    // as a crash would end it.
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let sink = Arc::clone(&seen);
        runtime.block_on(async {
            let bus = durable_bus(&path);
            bus.subscribe_event::<LevelCompleted, _, _>("ledger", move |env| {
                let sink = Arc::clone(&sink);
                async move {
                    if env.payload.level == 5 {
                        std::future::pending::<()>().await;
                    }
                    sink.lock().unwrap().push(env.payload.level);
                    Ok(())
                }
            })
            .unwrap();
            for n in 1..=8 {
                bus.publish(level(n)).await.unwrap();
            }
            // Levels 1 to 4 handled (one lane: in order), 5 hangs.
            while taken(&seen).len() < 4 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        runtime.shutdown_background();
    }
    assert_eq!(taken(&seen), [1, 2, 3, 4]);

    // Second life, with the checkpoint lost as if the crash came before it was written:
    // every event is handled, none twice, the first four skipped by their inbox claims.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open(&path).unwrap();
        // The first life's writer thread may still save a checkpoint it had queued: reset
        // until the reset holds.
        loop {
            store.reset_checkpoint("ledger", 0).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            if store.checkpoint("ledger").await.unwrap() == 0 {
                break;
            }
        }
        drop(store);
        let bus = durable_bus(&path);
        let sink = Arc::clone(&seen);
        bus.subscribe_event::<LevelCompleted, _, _>("ledger", move |env| {
            sink.lock().unwrap().push(env.payload.level);
            async { Ok(()) }
        })
        .unwrap();
        bus.shutdown().await;
        let mut all = taken(&seen);
        all.sort_unstable();
        assert_eq!(all, (1..=8).collect::<Vec<_>>());
        let metrics = bus.metrics();
        assert_eq!((metrics.delivered, metrics.deduplicated), (4, 4));
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_survive_a_restart_and_are_redelivered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");

    let bus = durable_bus(&path);
    bus.subscribe_event::<LevelCompleted, _, _>("scores", |env| async move {
        if env.payload.level == 2 {
            return Err(HandlerError::permanent("no such level"));
        }
        Ok(())
    })
    .unwrap();
    for n in 1..=3 {
        bus.publish(level(n)).await.unwrap();
    }
    bus.shutdown().await;

    let bus = durable_bus(&path);
    let scores = recording(&bus, "scores");
    let dead = bus.dead_letters().await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].subscription, "scores");
    assert_eq!(dead[0].attempts, 1);
    assert_eq!(dead[0].last_error, "no such level");
    bus.redeliver(&dead[0]).await.expect("redelivers");
    bus.shutdown().await;
    assert_eq!(
        taken(&scores),
        [2],
        "only the dead letter was handled again"
    );
    assert!(
        durable_bus(&path).dead_letters().await.is_empty(),
        "removed once handled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_handles_a_subscription_events_again() {
    let dir = tempfile::tempdir().unwrap();
    let bus = durable_bus(&dir.path().join("events.db"));
    let billing = recording(&bus, "billing");
    for n in 1..=4 {
        bus.publish(level(n)).await.unwrap();
    }
    while taken(&billing).len() < 4 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    bus.replay("billing", 2).await.expect("replays");
    bus.shutdown().await;
    assert_eq!(taken(&billing), [1, 2, 3, 4, 3, 4]);
    assert!(matches!(
        bus.replay("nobody", 0).await,
        Err(ReplayError::NoSubscription(_))
    ));
    let in_memory = EventBus::builder().build();
    assert!(matches!(
        in_memory.replay("billing", 0).await,
        Err(ReplayError::InMemory)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordering_per_key_holds_under_concurrency() {
    let dir = tempfile::tempdir().unwrap();
    let bus = durable_bus(&dir.path().join("events.db"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    bus.subscribe_with::<LevelCompleted, _, _>(
        "ranking",
        &SubscriptionOptions::new().concurrency(4).queue_capacity(2),
        move |env| {
            let sink = Arc::clone(&sink);
            async move {
                // Later events of other keys overtake slow ones; a key's own never do.
                tokio::time::sleep(Duration::from_micros(
                    u64::from(env.payload.level % 7) * 100,
                ))
                .await;
                sink.lock()
                    .unwrap()
                    .push((env.payload.player, env.payload.level));
                Ok(())
            }
        },
    )
    .unwrap();
    for n in 1..=60 {
        bus.publish(level(n)).await.unwrap();
    }
    bus.shutdown().await;
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 60);
    for player in ["p-0", "p-1", "p-2"] {
        let levels: Vec<u32> = seen
            .iter()
            .filter(|(p, _)| p == player)
            .map(|(_, l)| *l)
            .collect();
        assert!(levels.is_sorted(), "{player} out of order: {levels:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_appended_in_the_callers_transaction_are_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("app.db")).unwrap();
    let mut conn = store.connection().unwrap();
    let bus = EventBus::builder()
        .store(store)
        .poll_interval(Duration::from_millis(10))
        .build();
    let billing = recording(&bus, "billing");
    conn.execute_batch("CREATE TABLE scores (level INTEGER)")
        .unwrap();
    for (n, commit) in [(1, true), (2, false), (3, true)] {
        let tx = conn
            .transaction_with_behavior(event_core::store::rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        tx.execute("INSERT INTO scores VALUES (?1)", [n]).unwrap();
        let envelope = event_core::Envelope::new(level(n)).to_raw().unwrap();
        SqliteStore::append_in(&tx, &[envelope]).unwrap();
        if commit {
            tx.commit().unwrap();
        } else {
            tx.rollback().unwrap();
        }
    }
    bus.shutdown().await;
    assert_eq!(
        taken(&billing),
        [1, 3],
        "the rolled-back event was never stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_refuses_writes_fails_publish_and_keeps_what_it_had() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    {
        let bus = durable_bus(&path);
        bus.publish(level(1)).await.unwrap();
        bus.shutdown().await;
    }
    let read_only = SqliteOptions::new().read_only(true).open(&path).unwrap();
    let bus = EventBus::builder().store(read_only).build();
    let error = bus.publish(level(2)).await.expect_err("read-only");
    assert!(matches!(error, PublishError::Store(_)), "{error:?}");
    assert!(matches!(
        bus.try_publish(level(3)),
        Err(PublishError::Durable)
    ));
    bus.shutdown().await;
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.head().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_answers_on_a_durable_bus() {
    let dir = tempfile::tempdir().unwrap();
    let bus = durable_bus(&dir.path().join("events.db"));
    let replier = bus.clone();
    bus.subscribe_event::<LevelCompleted, _, _>("echo", move |env| {
        let replier = replier.clone();
        async move {
            if env.payload.level == 1 {
                replier.publish(LevelScored { score: 100 }).await?;
            }
            Ok(())
        }
    })
    .unwrap();
    bus.publish_with(
        event_core::PublishContext::new().correlation_id("c-7"),
        level(1),
    )
    .await
    .unwrap();
    let reply = bus
        .wait_for::<LevelScored>("c-7", Duration::from_secs(5))
        .await
        .expect("the reply carries the correlation id");
    assert_eq!(reply.payload.score, 100);
    bus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wake_delivers_events_appended_elsewhere_without_waiting_for_the_poll() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("app.db")).unwrap();
    let mut conn = store.connection().unwrap();
    let bus = EventBus::builder()
        .store(store)
        .poll_interval(Duration::from_secs(3600))
        .build();
    let billing = recording(&bus, "billing");
    // Let the subscription read the empty store and start waiting.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let tx = conn.transaction().unwrap();
    let envelope = event_core::Envelope::new(level(7)).to_raw().unwrap();
    SqliteStore::append_in(&tx, &[envelope]).unwrap();
    tx.commit().unwrap();
    bus.wake();
    tokio::time::timeout(Duration::from_secs(10), async {
        while taken(&billing).is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("woken, not polled an hour later");
    assert_eq!(taken(&billing), [7]);
    bus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_keeps_what_a_subscription_has_not_handled_yet() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let bus = durable_bus(&path);
    let fast = recording(&bus, "fast");
    // "stuck" never gets past its first event, so it has never saved a checkpoint of its own.
    bus.subscribe_event::<LevelCompleted, _, _>("stuck", |_| std::future::pending())
        .unwrap();
    for n in 1..=3 {
        bus.publish(level(n)).await.unwrap();
    }
    while taken(&fast).len() < 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let store = SqliteStore::open(&path).unwrap();
    while store.checkpoint("fast").await.unwrap() < 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    assert_eq!(
        store.prune(later).await.unwrap(),
        0,
        "stuck has not read them"
    );
    assert_eq!(store.read(0, 10).await.unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_subscription_after_everything_was_pruned_shuts_down() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let bus = durable_bus(&path);
    let first = recording(&bus, "first");
    for n in 1..=3 {
        bus.publish(level(n)).await.unwrap();
    }
    bus.shutdown().await;
    assert_eq!(taken(&first).len(), 3);
    let store = SqliteStore::open(&path).unwrap();
    let later = chrono::Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(store.prune(later).await.unwrap(), 3);
    assert_eq!(store.head().await.unwrap(), 3, "the head stays");

    // Nothing left to read up to the head: the newcomer has caught up, not stalled.
    let bus = durable_bus(&path);
    let second = recording(&bus, "second");
    tokio::time::timeout(Duration::from_secs(10), bus.shutdown())
        .await
        .expect("shutdown returns");
    assert!(taken(&second).is_empty());
    assert_eq!(store.checkpoint("second").await.unwrap(), 3);
}

#[test]
fn a_stale_dead_letter_is_not_handled_again_on_redelivery() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    // First life: the handler fails for good; the process dies before the checkpoint
    // passes the event, so the event is read again after the restart.
    {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let bus = EventBus::builder()
                .store(SqliteStore::open(&path).unwrap())
                .poll_interval(Duration::from_secs(30))
                .retry(RetryPolicy::never())
                .build();
            bus.subscribe_event::<LevelCompleted, _, _>("ledger", |_| async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Err(HandlerError::permanent("downstream refused"))
            })
            .unwrap();
            bus.publish(level(1)).await.unwrap();
            while bus.dead_letters().await.is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        runtime.shutdown_background();
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // The first life's writer thread may still save the checkpoint past the event after
        // its runtime is gone (seen once in CI: the event was then never read again): put
        // the checkpoint back before it, until that holds, as a death before the save would.
        let store = SqliteStore::open(&path).unwrap();
        loop {
            store.reset_checkpoint("ledger", 0).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            if store.checkpoint("ledger").await.unwrap() == 0 {
                break;
            }
        }
        drop(store);
        let bus = durable_bus(&path);
        let ledger = recording(&bus, "ledger");
        while taken(&ledger).is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let dead = bus.dead_letters().await;
        assert_eq!(dead.len(), 1, "the letter from the first life");
        bus.redeliver(&dead[0]).await.unwrap();
        bus.shutdown().await;
        assert_eq!(taken(&ledger), [1], "handled once: the letter was stale");
        assert_eq!(bus.metrics().deduplicated, 1);
        assert!(
            bus.dead_letters().await.is_empty(),
            "the stale letter is gone"
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_would_not_read_back_is_refused_at_publish() {
    let dir = tempfile::tempdir().unwrap();
    let bus = durable_bus(&dir.path().join("events.db"));
    let audit = recording(&bus, "audit");
    let mut raw = event_core::Envelope::new(level(1)).to_raw().unwrap();
    raw.occurred_at = chrono::DateTime::parse_from_rfc3339("9999-12-31T23:59:59Z")
        .unwrap()
        .to_utc()
        + chrono::Duration::days(2);
    let error = bus.publish_raw(raw).await.expect_err("year 10000");
    assert!(
        matches!(
            error,
            PublishError::Store(event_core::store::StoreError::Unstorable { .. })
        ),
        "{error:?}"
    );
    // The events after it flow as ever.
    bus.publish(level(2)).await.unwrap();
    bus.shutdown().await;
    assert_eq!(taken(&audit), [2]);
}

/// A real SQLite store whose reads take 300 ms while `slow` is set: holds a pump inside a
/// read while the test calls `replay`.
#[derive(Debug, Clone)]
struct SlowReads {
    inner: SqliteStore,
    slow: Arc<std::sync::atomic::AtomicBool>,
}

mod slow_reads {
    use super::SlowReads;
    use event_core::DeadLetter;
    use event_core::RawEnvelope;
    use event_core::store::{
        DeadLetterId, Fence, LeaseInfo, Position, Store, StoreError, StoreStats, StoredDeadLetter,
        StoredEvent, TimelinePage, TimelineQuery,
    };
    use futures_util::future::BoxFuture;
    use std::sync::atomic::Ordering;
    use std::time::Duration;
    use uuid::Uuid;

    type Result<T> = std::result::Result<T, StoreError>;

    impl Store for SlowReads {
        fn append(&self, events: Vec<RawEnvelope>) -> BoxFuture<'_, Result<Vec<Position>>> {
            self.inner.append(events)
        }
        fn read(&self, after: Position, limit: usize) -> BoxFuture<'_, Result<Vec<StoredEvent>>> {
            Box::pin(async move {
                if self.slow.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                self.inner.read(after, limit).await
            })
        }
        fn head(&self) -> BoxFuture<'_, Result<Position>> {
            self.inner.head()
        }
        fn checkpoint<'a>(&'a self, s: &'a str) -> BoxFuture<'a, Result<Position>> {
            self.inner.checkpoint(s)
        }
        fn save_checkpoint<'a>(&'a self, s: &'a str, p: Position) -> BoxFuture<'a, Result<()>> {
            self.inner.save_checkpoint(s, p)
        }
        fn reset_checkpoint<'a>(&'a self, s: &'a str, p: Position) -> BoxFuture<'a, Result<()>> {
            self.inner.reset_checkpoint(s, p)
        }
        fn remove_subscription<'a>(&'a self, s: &'a str) -> BoxFuture<'a, Result<()>> {
            self.inner.remove_subscription(s)
        }
        fn claim<'a>(&'a self, s: &'a str, id: Uuid) -> BoxFuture<'a, Result<bool>> {
            self.inner.claim(s, id)
        }
        fn is_claimed<'a>(&'a self, s: &'a str, id: Uuid) -> BoxFuture<'a, Result<bool>> {
            self.inner.is_claimed(s, id)
        }
        fn put_dead_letter<'a>(&'a self, l: &'a DeadLetter) -> BoxFuture<'a, Result<DeadLetterId>> {
            self.inner.put_dead_letter(l)
        }
        fn dead_letters<'a>(
            &'a self,
            s: Option<&'a str>,
        ) -> BoxFuture<'a, Result<Vec<StoredDeadLetter>>> {
            self.inner.dead_letters(s)
        }
        fn remove_dead_letter(&self, id: DeadLetterId) -> BoxFuture<'_, Result<bool>> {
            self.inner.remove_dead_letter(id)
        }
        fn timeline<'a>(&'a self, q: &'a TimelineQuery) -> BoxFuture<'a, Result<TimelinePage>> {
            self.inner.timeline(q)
        }
        fn prune(&self, t: chrono::DateTime<chrono::Utc>) -> BoxFuture<'_, Result<usize>> {
            self.inner.prune(t)
        }
        fn lease<'a>(
            &'a self,
            name: &'a str,
            holder: &'a str,
            ttl: Duration,
        ) -> BoxFuture<'a, Result<Option<u64>>> {
            self.inner.lease(name, holder, ttl)
        }
        fn release_lease<'a>(
            &'a self,
            name: &'a str,
            holder: &'a str,
        ) -> BoxFuture<'a, Result<()>> {
            self.inner.release_lease(name, holder)
        }
        fn leases<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<LeaseInfo>>> {
            self.inner.leases(prefix)
        }
        fn claim_fenced<'a>(
            &'a self,
            subscription: &'a str,
            event_id: Uuid,
            fence: &'a Fence,
        ) -> BoxFuture<'a, Result<Option<bool>>> {
            self.inner.claim_fenced(subscription, event_id, fence)
        }
        fn save_checkpoint_fenced<'a>(
            &'a self,
            subscription: &'a str,
            position: Position,
            fence: &'a Fence,
        ) -> BoxFuture<'a, Result<bool>> {
            self.inner
                .save_checkpoint_fenced(subscription, position, fence)
        }
        fn stats(&self) -> StoreStats {
            self.inner.stats()
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_asked_during_a_read_is_not_undone_by_the_pump() {
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(dir.path().join("events.db")).unwrap();
    let slow = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let bus = EventBus::builder()
        .store(SlowReads {
            inner: sqlite.clone(),
            slow: Arc::clone(&slow),
        })
        .poll_interval(Duration::from_millis(20))
        .build();
    let ledger = recording(&bus, "ledger");
    for n in 1..=10 {
        bus.publish(level(n)).await.unwrap();
    }
    while sqlite.checkpoint("ledger").await.unwrap() < 10 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    slow.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    for n in 11..=15 {
        bus.publish(level(n)).await.unwrap();
    }
    while taken(&ledger).len() < 15 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await; // the pump is inside its next read
    bus.replay("ledger", 0).await.unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await; // that read ends, the pump goes on
    assert_eq!(
        sqlite.checkpoint("ledger").await.unwrap(),
        0,
        "the replay's checkpoint stands"
    );
    // Retention now must keep everything the replay has yet to read.
    let later = chrono::Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(sqlite.prune(later).await.unwrap(), 0);
    slow.store(false, Ordering::SeqCst);
    tokio::time::timeout(Duration::from_secs(10), bus.shutdown())
        .await
        .expect("shutdown returns");
    assert_eq!(
        taken(&ledger).len(),
        30,
        "15 first deliveries and a full replay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_damaged_by_hand_holds_its_subscription_but_not_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    {
        let bus = durable_bus(&path);
        for n in 1..=3 {
            bus.publish(level(n)).await.unwrap();
        }
        bus.shutdown().await;
    }
    let store = SqliteStore::open(&path).unwrap();
    store
        .connection()
        .unwrap()
        .execute(
            "UPDATE event_store_events SET envelope = '{' WHERE position = 2",
            [],
        )
        .unwrap();

    let bus = durable_bus(&path);
    let billing = recording(&bus, "billing");
    tokio::time::sleep(Duration::from_millis(200)).await;
    tokio::time::timeout(Duration::from_secs(10), bus.shutdown())
        .await
        .expect("shutdown returns");
    // Nothing is skipped: the subscription stops before the damaged event, and its
    // checkpoint with it, until the row is repaired.
    assert!(taken(&billing).len() <= 1, "{:?}", taken(&billing));
    assert!(store.checkpoint("billing").await.unwrap() <= 1);
    assert_eq!(store.head().await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_guard_stops_a_handler_republishing_what_it_consumes() {
    let dir = tempfile::tempdir().unwrap();
    let bus = EventBus::builder()
        .store(SqliteStore::open(dir.path().join("events.db")).unwrap())
        .poll_interval(Duration::from_millis(20))
        .max_causation_depth(5)
        .build();
    let b = bus.clone();
    bus.subscribe_event::<LevelCompleted, _, _>("replay-forever", move |env| {
        let b = b.clone();
        async move {
            b.publish(env.payload).await?;
            Ok(())
        }
    })
    .unwrap();
    bus.publish(level(1)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), bus.shutdown())
        .await
        .expect("the loop stops");
    let dead = bus.dead_letters().await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(
        dead[0].last_error.contains("event loop"),
        "{}",
        dead[0].last_error
    );
    assert_eq!(dead[0].envelope.meta.depth(), 5);
    let stored = SqliteStore::open(dir.path().join("events.db")).unwrap();
    assert_eq!(
        stored.head().await.unwrap(),
        6,
        "depths 0 to 5 stored, 6 refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_event_is_refused_at_publish_and_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let bus = EventBus::builder()
        .store(SqliteStore::open(dir.path().join("events.db")).unwrap())
        .max_payload_bytes(64)
        .build();
    let error = bus
        .publish(LevelCompleted {
            player: "p".repeat(100),
            level: 1,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(error, PublishError::TooLarge { limit: 64, .. }),
        "{error}"
    );
    bus.publish(level(2))
        .await
        .expect("a small one goes through");
    bus.shutdown().await;
    let stored = SqliteStore::open(dir.path().join("events.db")).unwrap();
    assert_eq!(stored.head().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_dead_letters_hold_their_key_back_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let options = SubscriptionOptions::new()
        .ordered_dead_letters()
        .retry(RetryPolicy::never());
    let subscribe = |bus: &EventBus, fail: bool| {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        bus.subscribe_with::<LevelCompleted, _, _>("scores", &options, move |env| {
            let result = if fail && env.payload.level == 3 {
                Err(HandlerError::permanent("scoreboard down"))
            } else {
                sink.lock().unwrap().push(env.payload.level);
                Ok(())
            };
            async move { result }
        })
        .unwrap();
        seen
    };

    // Player p-0 has levels 3, 6, 9; level 3 fails, so 6 and 9 wait behind it.
    let bus = durable_bus(&path);
    let seen = subscribe(&bus, true);
    for n in 1..=9 {
        bus.publish(level(n)).await.unwrap();
    }
    bus.shutdown().await;
    assert_eq!(taken(&seen), [1, 2, 4, 5, 7, 8]);

    let bus = durable_bus(&path);
    let seen = subscribe(&bus, false);
    let mut dead = Vec::new();
    for _ in 0..500 {
        dead = bus.dead_letters().await;
        if dead.first().is_some_and(|d| d.held_back == 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].held_back, 2, "held back again after the restart");
    assert!(
        taken(&seen).is_empty(),
        "nothing handled twice, nothing passed the letter"
    );
    bus.redeliver(&dead[0]).await.unwrap();
    bus.publish(level(12)).await.unwrap();
    bus.shutdown().await;
    assert_eq!(taken(&seen), [3, 6, 9, 12]);
    assert!(durable_bus(&path).dead_letters().await.is_empty());
}
