//! Consumer groups on a store shared by several processes, without a broker
//! (`EventBusBuilder::consumer_groups`): on PostgreSQL (a server this test starts itself)
//! and on one SQLite file opened by several stores.
//!
//! Several buses, each with its own store connection and consumer name, stand for several
//! processes. A "dead" member is a bus whose runtime is dropped: its tasks stop without
//! leaving, so its leases run out as a killed process's do.

use event_core::store::{PostgresStore, SqliteStore, Store};
use event_core::{DomainEvent, EventBus, HandlerError, RetryPolicy, StoreGroups};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};
use tests::eventually;
use tests::handled::Handled;
use tests::postgres_server::PostgresServer;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "groups.ticked", version = 1)]
struct Ticked {
    #[event(partition_key)]
    key: String,
    seq: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "groups.answered", version = 1)]
struct Answered {
    #[event(partition_key)]
    key: String,
    seq: u64,
}

/// The lease every test's groups use.
const LEASE: Duration = Duration::from_millis(600);
/// The lease of the scenarios where no member fails: long enough that a renewal delayed by a
/// loaded machine never lets a lease lapse, which would hand a shard over mid-run and have
/// its successor handle again what the first owner had not yet settled (at-least-once, by
/// design, and not what these scenarios test).
const STEADY_LEASE: Duration = Duration::from_secs(3);
const SHARDS: u32 = 4;

/// Where the shared store lives.
enum Db {
    Postgres(String),
    Sqlite {
        path: PathBuf,
        /// Removed with the test.
        _dir: tempfile::TempDir,
    },
}

impl Db {
    fn postgres() -> Db {
        Db::Postgres(PostgresServer::shared().create_database())
    }

    fn sqlite() -> Db {
        let dir = tempfile::tempdir().expect("temporary directory");
        Db::Sqlite {
            path: dir.path().join("shared.db"),
            _dir: dir,
        }
    }

    /// A bus of its own store connection: one process's.
    async fn bus(&self, member: &str, shards: u32, poll: Duration) -> EventBus {
        self.leased(builder(member, shards, poll)).await
    }

    /// A member whose leases last [`STEADY_LEASE`].
    async fn steady_member(&self, member: &str) -> EventBus {
        self.leased(
            builder(member, SHARDS, Duration::from_millis(50))
                .consumer_groups(StoreGroups::new().shards(SHARDS).lease(STEADY_LEASE)),
        )
        .await
    }

    async fn leased(&self, builder: event_core::EventBusBuilder) -> EventBus {
        match self {
            Db::Postgres(url) => {
                builder.store(PostgresStore::connect(url).await.expect("connects"))
            }
            Db::Sqlite { path, .. } => builder.store(SqliteStore::open(path).expect("opens")),
        }
        .build()
    }

    async fn member(&self, member: &str) -> EventBus {
        self.bus(member, SHARDS, Duration::from_millis(50)).await
    }

    /// The holder of each shard lease of `group` that runs now.
    async fn owners(&self, group: &str) -> BTreeMap<String, String> {
        let prefix = format!("group/{group}/shard/");
        let leases = match self {
            Db::Postgres(url) => PostgresStore::connect(url)
                .await
                .expect("connects")
                .leases(&prefix)
                .await
                .expect("leases"),
            Db::Sqlite { path, .. } => SqliteStore::open(path)
                .expect("opens")
                .leases(&prefix)
                .await
                .expect("leases"),
        };
        leases
            .into_iter()
            .map(|lease| (lease.name, lease.holder))
            .collect()
    }

    /// The head, and the checkpoint of each shard of `group`.
    async fn checkpoints(&self, group: &str) -> (u64, Vec<u64>) {
        let store: Box<dyn Store> = match self {
            Db::Postgres(url) => Box::new(PostgresStore::connect(url).await.expect("connects")),
            Db::Sqlite { path, .. } => Box::new(SqliteStore::open(path).expect("opens")),
        };
        let mut checkpoints = Vec::new();
        for shard in 0..SHARDS {
            let name = format!("{group}#{shard}/{SHARDS}");
            checkpoints.push(store.checkpoint(&name).await.expect("checkpoint"));
        }
        (store.head().await.expect("head"), checkpoints)
    }

    /// Waits until every shard of `group` is owned and each of `members` owns its share.
    async fn settled(&self, group: &str, members: &[&str]) {
        let started = Instant::now();
        loop {
            let owners = self.owners(group).await;
            let mut owned: HashMap<&str, usize> = HashMap::new();
            for holder in owners.values() {
                *owned.entry(holder.as_str()).or_default() += 1;
            }
            let fair = SHARDS as usize / members.len();
            if owners.len() == SHARDS as usize
                && members
                    .iter()
                    .all(|m| owned.get(m).is_some_and(|&n| n >= fair))
            {
                return;
            }
            assert!(
                started.elapsed() < STEADY_LEASE * 10,
                "members {members:?} of `{group}` never settled: {owners:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A member's builder, without its store.
fn builder(member: &str, shards: u32, poll: Duration) -> event_core::EventBusBuilder {
    EventBus::builder()
        .consumer_name(member)
        .retry(RetryPolicy::never())
        .poll_interval(poll)
        .consumer_groups(StoreGroups::new().shards(shards).lease(LEASE))
}

/// Subscribes `member`'s bus to `group`, recording what it handles.
fn subscribe(handled: &Arc<Handled>, bus: &EventBus, group: &str, member: &str) {
    let handled = Arc::clone(handled);
    let member = member.to_owned();
    bus.subscribe_event::<Ticked, _, _>(group, move |env| {
        handled.record(&member, &env.payload.key, env.payload.seq);
        async { Ok(()) }
    })
    .expect("subscribes");
}

async fn publish_keys(bus: &EventBus, keys: u64, per_key: u64) {
    for seq in 0..per_key {
        for key in 0..keys {
            bus.publish(Ticked {
                key: format!("k{key}"),
                seq,
            })
            .await
            .expect("publishes");
        }
    }
}

/// Two members of one group share its events, each once and in order per key; another
/// group gets every event.
async fn competing_consumers(db: &Db) {
    let a = db.steady_member("member-a").await;
    let b = db.steady_member("member-b").await;
    let audit = db.steady_member("member-audit").await;
    let billing = Arc::new(Handled::default());
    let audited = Arc::new(Handled::default());
    subscribe(&billing, &a, "billing", "member-a");
    subscribe(&billing, &b, "billing", "member-b");
    subscribe(&audited, &audit, "audit", "member-audit");
    db.settled("billing", &["member-a", "member-b"]).await;

    publish_keys(&a, 20, 10).await;
    eventually(
        Duration::from_secs(20),
        "200 events handled by billing",
        || billing.count() >= 200,
    )
    .await;
    eventually(
        Duration::from_secs(20),
        "200 events handled by audit",
        || audited.count() >= 200,
    )
    .await;
    tokio::time::sleep(LEASE).await;
    billing.assert_in_order_once(200);
    assert_eq!(billing.by_member().len(), 2, "both members handled events");
    audited.assert_in_order_once(200);
    for bus in [&a, &b, &audit] {
        bus.shutdown().await;
    }
    // Every shard's checkpoint passed everything: nothing is read again at the next start.
    for group in ["billing", "audit"] {
        let (head, checkpoints) = db.checkpoints(group).await;
        assert!(
            checkpoints.iter().all(|&c| c == head),
            "{group}: shard checkpoints {checkpoints:?}, head {head}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_members_of_a_group_share_its_events_in_order_per_key() {
    competing_consumers(&Db::postgres()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_members_of_a_group_share_its_events_in_order_per_key() {
    competing_consumers(&Db::sqlite()).await;
}

/// A member that dies holding unsettled events: the survivor takes its shards once its
/// leases run out, and handles those events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_members_shards_and_unsettled_events_pass_to_the_survivor() {
    let db = Db::postgres();
    let survivor = db.member("member-survivor").await;
    let stuck = Arc::new(AtomicU64::new(0));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let Db::Postgres(url) = &db else {
        unreachable!()
    };
    // Its store's connections run on its runtime too, and die with it.
    let url = url.clone();
    let store = runtime
        .spawn(async move { PostgresStore::connect(&url).await })
        .await
        .expect("connects")
        .expect("connects");
    let doomed = {
        let _entered = runtime.enter();
        let member = builder("member-doomed", SHARDS, Duration::from_millis(50))
            .store(store)
            .build();
        let stuck = Arc::clone(&stuck);
        member
            .subscribe_event::<Ticked, _, _>("worker", move |_| {
                stuck.fetch_add(1, SeqCst);
                std::future::pending::<Result<(), HandlerError>>()
            })
            .expect("subscribes");
        member
    };
    db.settled("worker", &["member-doomed"]).await;
    publish_keys(&survivor, 8, 2).await;
    eventually(
        Duration::from_secs(10),
        "the doomed member holds events",
        || stuck.load(SeqCst) > 0,
    )
    .await;
    let died_at = Instant::now();
    runtime.shutdown_background();
    drop(doomed);

    let handled = Arc::new(Handled::default());
    subscribe(&handled, &survivor, "worker", "member-survivor");
    eventually(LEASE * 8, "the survivor handles all 16 events", || {
        handled.count() >= 16
    })
    .await;
    assert!(died_at.elapsed() < LEASE * 8, "takeover too slow");
    handled.assert_in_order_once(16);
    survivor.shutdown().await;
}

/// A member that shuts down leaves: the other takes its shards at once and handles what
/// comes next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_shuts_down_hands_its_shards_over() {
    let db = Db::postgres();
    let a = db.member("member-a").await;
    let b = db.member("member-b").await;
    let handled = Arc::new(Handled::default());
    subscribe(&handled, &a, "billing", "member-a");
    subscribe(&handled, &b, "billing", "member-b");
    db.settled("billing", &["member-a", "member-b"]).await;
    publish_keys(&a, 8, 5).await;
    eventually(Duration::from_secs(10), "40 events handled", || {
        handled.count() >= 40
    })
    .await;
    a.shutdown().await;
    db.settled("billing", &["member-b"]).await;
    publish_keys(&b, 8, 5).await;
    eventually(Duration::from_secs(10), "80 events handled", || {
        handled.count() >= 80
    })
    .await;
    tokio::time::sleep(LEASE / 2).await;
    let all = handled.all();
    let distinct: HashSet<&(String, u64)> = all.iter().collect();
    assert_eq!(
        distinct.len(),
        40,
        "publish_keys twice gives 40 distinct (key, seq)"
    );
    assert_eq!(all.len(), 80, "nothing handled twice");
    let by_b = handled.by_member()["member-b"].len();
    assert!(by_b >= 40, "member-b handled all the later events: {by_b}");
    b.shutdown().await;
}

/// Members configured with different shard counts would break the order per key: the
/// newcomer with another count takes no shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_with_another_shard_count_takes_no_shard() {
    let db = Db::postgres();
    let a = db.member("member-a").await;
    subscribe(&Arc::default(), &a, "billing", "member-a");
    db.settled("billing", &["member-a"]).await;
    let odd = db
        .bus("member-odd", SHARDS * 2, Duration::from_millis(50))
        .await;
    subscribe(&Arc::default(), &odd, "billing", "member-odd");
    tokio::time::sleep(LEASE * 2).await;
    let owners = db.owners("billing").await;
    assert!(
        owners.values().all(|holder| holder != "member-odd"),
        "{owners:?}"
    );
    odd.shutdown().await;
    a.shutdown().await;
}

/// On PostgreSQL, an append by another process wakes a member's pumps at once
/// (`LISTEN`/`NOTIFY`), long before their next poll; without listening, the poll finds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_wakes_other_processes_pumps_with_notify() {
    let db = Db::postgres();
    let Db::Postgres(url) = &db else {
        unreachable!()
    };
    let slow_poll = Duration::from_secs(30);
    let publisher = db.member("publisher").await;
    for (listening, name) in [(true, "listening"), (false, "polling")] {
        let store = PostgresStore::connect(url).await.expect("connects");
        let store = if listening {
            store
        } else {
            store.without_listen()
        };
        let consumer = EventBus::builder()
            .store(store)
            .poll_interval(slow_poll)
            .build();
        let handled = Arc::new(Handled::default());
        subscribe(&handled, &consumer, name, name);
        // The pump has read the store once and waits.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = handled.count();
        publish_keys(&publisher, 1, 1).await;
        let sent = Instant::now();
        let limit = Duration::from_secs(3);
        while handled.count() == before && sent.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let woke = handled.count() > before;
        assert_eq!(
            woke,
            listening,
            "{name}: handled within {limit:?}: {woke} (after {:?})",
            sent.elapsed()
        );
        drop(consumer);
    }
    publisher.shutdown().await;
}

/// `wait_for` finds a reply that another process appended to the shared store: the asker
/// has no subscription of the reply's type, so only its `wait_for` listener reads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_finds_a_reply_another_process_stored() {
    let db = Db::postgres();
    let asker = db.member("asker").await;
    let responder = db.member("responder").await;
    {
        let replies = responder.clone();
        responder
            .subscribe_event::<Ticked, _, _>("responder", move |env| {
                let replies = replies.clone();
                async move {
                    // In a handler: the reply carries the request's correlation id.
                    replies
                        .publish(Answered {
                            key: env.payload.key,
                            seq: env.payload.seq,
                        })
                        .await
                        .map_err(HandlerError::retryable)?;
                    Ok(())
                }
            })
            .expect("subscribes");
    }
    db.settled("responder", &["responder"]).await;
    for seq in 0..3 {
        let correlation = format!("request-{seq}");
        asker
            .publish_with(
                event_core::PublishContext::new().correlation_id(&correlation),
                Ticked {
                    key: "k1".into(),
                    seq,
                },
            )
            .await
            .expect("publishes");
        let reply = asker
            .wait_for::<Answered>(&correlation, Duration::from_secs(10))
            .await
            .expect("the reply from the other process");
        assert_eq!(reply.payload.seq, seq);
    }
    asker.shutdown().await;
    responder.shutdown().await;
}

/// A shard whose key a dead letter holds back (ordered dead letters) still passes to a new
/// member, within a lease of being given up: the new owner reads the held-back events again,
/// holds them behind the stored letter, and handles them in order once it is redelivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_held_back_by_a_dead_letter_still_passes_to_a_new_member() {
    use event_core::SubscriptionOptions;
    use event_core::transport::shard_of;

    let db = Db::postgres();
    // With members a and b, b's shards are the odd ones: a key of an odd shard moves.
    let key = (0..1_000)
        .map(|n| format!("k{n}"))
        .find(|key| shard_of(key, SHARDS) % 2 == 1)
        .expect("a key of an odd shard");
    let fixed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let handled = Arc::new(Handled::default());
    let subscribe = |bus: &EventBus, member: &'static str| {
        let fixed = Arc::clone(&fixed);
        let handled = Arc::clone(&handled);
        bus.subscribe_with::<Ticked, _, _>(
            "billing",
            &SubscriptionOptions::new().ordered_dead_letters(),
            move |env| {
                let ok = fixed.load(SeqCst) || env.payload.seq != 0;
                if ok {
                    handled.record(member, &env.payload.key, env.payload.seq);
                }
                async move {
                    if ok {
                        Ok(())
                    } else {
                        Err(HandlerError::permanent("account locked"))
                    }
                }
            },
        )
        .expect("subscribes");
    };
    let a = db.member("member-a").await;
    subscribe(&a, "member-a");
    db.settled("billing", &["member-a"]).await;
    for seq in 0..3 {
        a.publish(Ticked {
            key: key.clone(),
            seq,
        })
        .await
        .expect("publishes");
    }
    let started = Instant::now();
    while a.dead_letters().await.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no dead letter"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let b = db.member("member-b").await;
    subscribe(&b, "member-b");
    db.settled("billing", &["member-a", "member-b"]).await;
    let shard = format!("group/billing/shard/{}", shard_of(&key, SHARDS));
    assert_eq!(
        db.owners("billing").await.get(&shard).map(String::as_str),
        Some("member-b"),
        "the shard of {key}, held back by a dead letter, passed to member-b"
    );
    assert_eq!(handled.count(), 0, "events 1 and 2 wait behind 0");

    fixed.store(true, SeqCst);
    let letters = b.dead_letters().await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    b.redeliver(&letters[0]).await.expect("redelivers");
    eventually(
        Duration::from_secs(10),
        "0, 1, 2 handled by member-b",
        || handled.count() >= 3,
    )
    .await;
    let by_b: Vec<u64> = handled.by_member()["member-b"]
        .iter()
        .map(|(_, seq)| *seq)
        .collect();
    assert_eq!(by_b, [0, 1, 2]);
    a.shutdown().await;
    b.shutdown().await;
}
