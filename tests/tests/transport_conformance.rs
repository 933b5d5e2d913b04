//! The transport conformance suite: what every transport must hold, tested through the bus
//! as users see it (`EventBus::builder().transport(...)`), against a real broker.
//!
//! Every case is generic over a [`Broker`]: a way to get a fresh transport (its own prefix
//! on a shared server) and to stop and restart the server. `conformance!` instantiates
//! every case for one broker (Redis Streams and NATS JetStream, at the end of this file).
//!
//! Several buses in one process stand for several processes: each is its own member of its
//! consumer groups (its own consumer name). A "dead" member is a bus whose runtime is
//! dropped: its tasks stop without leaving, so its leases run out as a killed process's do.

use event_core::transport::{StartFrom, Transport};
use event_core::{
    DomainEvent, EventBus, HandlerError, PublishError, RetryPolicy, SubscriptionOptions,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tests::eventually;
use tests::handled::Handled;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "conformance.ticked", version = 1)]
struct Ticked {
    #[event(partition_key)]
    key: String,
    seq: u64,
}

/// A broker the suite runs on.
trait Broker: Sync {
    type T: Transport;
    /// A fresh transport under `prefix`, with a short lease so that tests run fast.
    fn transport(&self, prefix: &str) -> impl Future<Output = Self::T> + Send;
    /// Kills the server (as `SIGKILL` would).
    fn kill(&self);
    /// Starts it again, same address and data.
    fn restart(&self);
}

/// The lease every test's transport uses.
const LEASE: Duration = Duration::from_millis(600);

fn prefix(test: &str) -> String {
    format!("conf-{test}-{}", fastrand::u32(..))
}

/// A bus on `transport` with its own consumer name.
fn bus(transport: impl Transport, member: &str) -> EventBus {
    EventBus::builder()
        .transport(transport)
        .consumer_name(member)
        .retry(RetryPolicy::never())
        .build()
}

/// Waits until the members of `group` have settled their shares: every shard owned, each
/// of `members` owning its fair share (a rebalance may still move shards before that).
async fn settled(bus: &EventBus, group: &str, members: &[&str]) {
    let started = Instant::now();
    loop {
        let info = bus
            .transport_info()
            .await
            .expect("info")
            .expect("a transport");
        let mut owned: HashMap<String, usize> = HashMap::new();
        for consumer in info
            .topics
            .iter()
            .flat_map(|topic| topic.groups.iter())
            .filter(|g| g.group == group)
            .flat_map(|g| g.consumers.iter())
        {
            let shards = owned.entry(consumer.name.clone()).or_default();
            *shards = (*shards).max(consumer.shards.len());
        }
        let fair = info.shards as usize / members.len();
        let total: usize = owned.values().sum();
        if total == info.shards as usize
            && members
                .iter()
                .all(|m| owned.get(*m).is_some_and(|&n| n >= fair))
        {
            return;
        }
        assert!(
            started.elapsed() < LEASE * 10,
            "members {members:?} of `{group}` never settled: {owned:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The entries of `group` delivered and not yet acknowledged, over its topics.
async fn pending(bus: &EventBus, group: &str) -> u64 {
    let info = bus
        .transport_info()
        .await
        .expect("info")
        .expect("a transport");
    info.topics
        .iter()
        .flat_map(|topic| topic.groups.iter())
        .filter(|g| g.group == group)
        .map(|g| g.pending)
        .sum()
}

/// Subscribes `member`'s bus to `group` from the beginning, 4 lanes, recording what it
/// handles.
fn subscribe(handled: &Arc<Handled>, bus: &EventBus, group: &str, member: &str) {
    let handled = Arc::clone(handled);
    let member = member.to_owned();
    bus.subscribe_with::<Ticked, _, _>(
        group,
        &SubscriptionOptions::new()
            .concurrency(4)
            .start_from(StartFrom::Beginning),
        move |env| {
            handled.record(&member, &env.payload.key, env.payload.seq);
            async { Ok(()) }
        },
    )
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

/// Two members of one group share its events: each event handled once, both handle some.
/// A second group gets every event too.
async fn competing_consumers<B: Broker>(broker: &B) {
    let prefix = prefix("compete");
    let a = bus(broker.transport(&prefix).await, "member-a");
    let b = bus(broker.transport(&prefix).await, "member-b");
    let audit = bus(broker.transport(&prefix).await, "member-audit");
    let billing = Arc::new(Handled::default());
    let audited = Arc::new(Handled::default());
    subscribe(&billing, &a, "billing", "member-a");
    subscribe(&billing, &b, "billing", "member-b");
    subscribe(&audited, &audit, "audit", "member-audit");
    settled(&a, "billing", &["member-a", "member-b"]).await;
    settled(&a, "audit", &["member-audit"]).await;

    publish_keys(&a, 40, 5).await;
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

    let handled = billing.all();
    let distinct: HashSet<&(String, u64)> = handled.iter().collect();
    assert_eq!(handled.len(), 200, "each event handled once in the group");
    assert_eq!(distinct.len(), 200);
    let per_member = billing.by_member();
    assert_eq!(
        per_member.len(),
        2,
        "both members handled events: {per_member:?}"
    );
    // One key's events are handled by one member only (its shard's owner).
    let mut owner_of: HashMap<&str, &str> = HashMap::new();
    for (member, events) in &per_member {
        for (key, _) in events {
            let owner = owner_of.entry(key).or_insert(member);
            assert_eq!(owner, member, "key {key} handled by two members");
        }
    }
    assert_eq!(audited.all().len(), 200, "the other group gets every event");
    for bus in [&a, &b, &audit] {
        bus.shutdown().await;
    }
}

/// Order per partition key, across the members and their lanes.
async fn order_per_key<B: Broker>(broker: &B) {
    let prefix = prefix("order");
    let a = bus(broker.transport(&prefix).await, "member-a");
    let b = bus(broker.transport(&prefix).await, "member-b");
    let handled = Arc::new(Handled::default());
    subscribe(&handled, &a, "projector", "member-a");
    subscribe(&handled, &b, "projector", "member-b");
    settled(&a, "projector", &["member-a", "member-b"]).await;
    publish_keys(&a, 10, 30).await;
    eventually(Duration::from_secs(20), "300 events handled", || {
        handled.count() >= 300
    })
    .await;
    let mut last: HashMap<String, u64> = HashMap::new();
    for events in handled.by_member().values() {
        for (key, seq) in events {
            if let Some(previous) = last.insert(key.clone(), *seq) {
                assert!(*seq > previous, "key {key}: {seq} handled after {previous}");
            }
        }
    }
    assert_eq!(last.len(), 10);
    a.shutdown().await;
    b.shutdown().await;
}

/// A member that dies holding unacknowledged entries: another member takes its shards when
/// its lease runs out, and handles those entries.
async fn dead_member_failover<B: Broker>(broker: &B) {
    let prefix = prefix("failover");
    let survivor = bus(broker.transport(&prefix).await, "member-survivor");
    let handled = Arc::new(Handled::default());

    // The member that dies: on its own runtime, a handler that never finishes.
    let doomed_transport = broker.transport(&prefix).await;
    let stuck = Arc::new(AtomicU64::new(0));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let doomed = {
        let _entered = runtime.enter();
        let doomed = bus(doomed_transport, "member-doomed");
        let stuck = Arc::clone(&stuck);
        doomed
            .subscribe_with::<Ticked, _, _>(
                "worker",
                &SubscriptionOptions::new().start_from(StartFrom::Beginning),
                move |_| {
                    stuck.fetch_add(1, SeqCst);
                    std::future::pending::<Result<(), HandlerError>>()
                },
            )
            .expect("subscribes");
        doomed
    };
    let started = Instant::now();
    loop {
        let probe = doomed.clone();
        let info = runtime
            .spawn(async move { probe.transport_info().await })
            .await
            .expect("probe runs");
        let owns_all = info.ok().flatten().is_some_and(|info| {
            info.topics.iter().any(|topic| {
                topic.groups.iter().any(|g| {
                    g.group == "worker"
                        && g.consumers.iter().any(|c| {
                            c.name == "member-doomed"
                                && u32::try_from(c.shards.len()) == Ok(info.shards)
                        })
                })
            })
        });
        if owns_all {
            break;
        }
        assert!(
            started.elapsed() < LEASE * 10,
            "the doomed member never owned every shard"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    publish_keys(&survivor, 8, 2).await;
    eventually(
        Duration::from_secs(10),
        "the doomed member holds entries",
        || stuck.load(SeqCst) > 0,
    )
    .await;
    let died_at = Instant::now();
    runtime.shutdown_background();
    drop(doomed);

    subscribe(&handled, &survivor, "worker", "member-survivor");
    eventually(LEASE * 8, "the survivor handles all 16 events", || {
        handled.count() >= 16
    })
    .await;
    let took = died_at.elapsed();
    let keys: HashSet<(String, u64)> = handled.all().into_iter().collect();
    assert_eq!(keys.len(), 16, "every event handled after the takeover");
    assert!(took < LEASE * 8, "takeover took {took:?}");
    survivor.shutdown().await;
}

/// A failed delivery goes to the broker's dead letters, listed by any member; `redeliver`
/// hands it to the one group that failed.
async fn dead_letters_and_redeliver<B: Broker>(broker: &B) {
    let prefix = prefix("dead");
    let a = bus(broker.transport(&prefix).await, "member-a");
    let fixed = Arc::new(AtomicBool::new(false));
    let billing_calls = Arc::new(AtomicU64::new(0));
    let audit_calls = Arc::new(AtomicU64::new(0));
    {
        let fixed = Arc::clone(&fixed);
        let calls = Arc::clone(&billing_calls);
        a.subscribe_event::<Ticked, _, _>("billing", move |env| {
            calls.fetch_add(1, SeqCst);
            let ok = fixed.load(SeqCst) || env.payload.seq != 1;
            async move {
                if ok {
                    Ok(())
                } else {
                    Err(HandlerError::permanent("no such account"))
                }
            }
        })
        .expect("subscribes");
        let calls = Arc::clone(&audit_calls);
        a.subscribe_event::<Ticked, _, _>("audit", move |_| {
            calls.fetch_add(1, SeqCst);
            async { Ok(()) }
        })
        .expect("subscribes");
    }
    settled(&a, "billing", &["member-a"]).await;
    settled(&a, "audit", &["member-a"]).await;
    publish_keys(&a, 1, 3).await;
    eventually(Duration::from_secs(10), "both groups handled 3", || {
        billing_calls.load(SeqCst) >= 3 && audit_calls.load(SeqCst) >= 3
    })
    .await;

    // Listed by another member too: the letters live on the broker.
    let other = bus(broker.transport(&prefix).await, "member-b");
    let mut letters = Vec::new();
    let started = Instant::now();
    while letters.is_empty() && started.elapsed() < Duration::from_secs(5) {
        letters = other.dead_letters().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].subscription, "billing");
    assert_eq!(letters[0].attempts, 1);
    assert!(letters[0].last_error.contains("no such account"));

    fixed.store(true, SeqCst);
    a.redeliver(&letters[0]).await.expect("redelivers");
    eventually(Duration::from_secs(5), "redelivered to billing", || {
        billing_calls.load(SeqCst) == 4
    })
    .await;
    let started = Instant::now();
    loop {
        let remaining = other.dead_letters().await;
        if remaining.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the letter is not removed: {remaining:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        audit_calls.load(SeqCst),
        3,
        "only the failing group got it again"
    );
    a.shutdown().await;
    other.shutdown().await;
}

/// A new group starts from now, or from the beginning when asked.
async fn start_position<B: Broker>(broker: &B) {
    let prefix = prefix("start");
    let publisher = bus(broker.transport(&prefix).await, "publisher");
    // A group that exists makes the topic and shards exist.
    let early = Arc::new(Handled::default());
    subscribe(&early, &publisher, "early", "publisher");
    settled(&publisher, "early", &["publisher"]).await;
    publish_keys(&publisher, 4, 1).await;
    eventually(Duration::from_secs(10), "4 events handled", || {
        early.count() >= 4
    })
    .await;

    let late = bus(broker.transport(&prefix).await, "late");
    let from_start = Arc::new(AtomicU64::new(0));
    let from_now = Arc::new(AtomicU64::new(0));
    for (group, start, counter) in [
        ("replayer", StartFrom::Beginning, &from_start),
        ("newcomer", StartFrom::Now, &from_now),
    ] {
        let counter = Arc::clone(counter);
        late.subscribe_with::<Ticked, _, _>(
            group,
            &SubscriptionOptions::new().start_from(start),
            move |_| {
                counter.fetch_add(1, SeqCst);
                async { Ok(()) }
            },
        )
        .expect("subscribes");
        settled(&late, group, &["late"]).await;
    }
    publish_keys(&publisher, 2, 1).await;
    eventually(Duration::from_secs(10), "the replayer reads all 6", || {
        from_start.load(SeqCst) >= 6
    })
    .await;
    eventually(
        Duration::from_secs(10),
        "the newcomer reads the last 2",
        || from_now.load(SeqCst) >= 2,
    )
    .await;
    tokio::time::sleep(LEASE / 2).await;
    assert_eq!(from_start.load(SeqCst), 6);
    assert_eq!(from_now.load(SeqCst), 2);
    publisher.shutdown().await;
    late.shutdown().await;
}

/// While the broker is down, publish fails with `PublishError::Transport`; once it is back,
/// publishing and delivery resume, and what it acknowledged before is still delivered.
async fn broker_restart<B: Broker>(broker: &B) {
    let prefix = prefix("restart");
    let a = bus(broker.transport(&prefix).await, "member-a");
    let handled = Arc::new(Handled::default());
    subscribe(&handled, &a, "survives", "member-a");
    settled(&a, "survives", &["member-a"]).await;
    publish_keys(&a, 2, 1).await;
    eventually(
        Duration::from_secs(10),
        "2 handled before the restart",
        || handled.count() >= 2,
    )
    .await;

    broker.kill();
    let refused = a
        .publish(Ticked {
            key: "k0".into(),
            seq: 99,
        })
        .await;
    assert!(
        matches!(refused, Err(PublishError::Transport(_))),
        "publish while down: {refused:?}"
    );
    broker.restart();
    let started = Instant::now();
    loop {
        match a
            .publish(Ticked {
                key: "k0".into(),
                seq: 1,
            })
            .await
        {
            Ok(_) => break,
            Err(error) => {
                assert!(
                    started.elapsed() < Duration::from_secs(15),
                    "publish never worked again: {error}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    eventually(
        Duration::from_secs(20),
        "delivery resumes after the restart",
        || handled.all().contains(&("k0".to_owned(), 1)),
    )
    .await;
    a.shutdown().await;
}

/// `transport_info` names the groups, their members, and the shards' lengths.
async fn introspection<B: Broker>(broker: &B) {
    let prefix = prefix("info");
    let a = bus(broker.transport(&prefix).await, "member-a");
    let handled = Arc::new(Handled::default());
    subscribe(&handled, &a, "inspected", "member-a");
    settled(&a, "inspected", &["member-a"]).await;
    publish_keys(&a, 5, 2).await;
    eventually(Duration::from_secs(10), "10 handled", || {
        handled.count() >= 10
    })
    .await;
    let info = a
        .transport_info()
        .await
        .expect("info")
        .expect("a transport");
    let length: u64 = info
        .topics
        .iter()
        .flat_map(|t| t.shards.iter())
        .map(|s| s.length)
        .sum();
    assert_eq!(length, 10, "{info:?}");
    let group = info
        .topics
        .iter()
        .flat_map(|t| t.groups.iter())
        .find(|g| g.group == "inspected")
        .expect("the group is listed");
    assert!(group.consumers.iter().any(|c| c.name == "member-a"));
    let in_memory = EventBus::builder().build();
    assert!(
        in_memory
            .transport_info()
            .await
            .expect("no error")
            .is_none()
    );
    a.shutdown().await;
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "conformance.asked", version = 1)]
struct Asked {
    question: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "conformance.answered", version = 1)]
struct Answered {
    answer: String,
}

/// `wait_for` finds a reply published by another process, also one published before the
/// call.
async fn wait_for_across_processes<B: Broker>(broker: &B) {
    let prefix = prefix("wait");
    let responder = bus(broker.transport(&prefix).await, "responder");
    let asker = bus(broker.transport(&prefix).await, "asker");
    responder
        .subscribe_with::<Asked, _, _>(
            "answering",
            &SubscriptionOptions::new().start_from(StartFrom::Beginning),
            {
                let responder = responder.clone();
                move |env| {
                    let responder = responder.clone();
                    async move {
                        // Published inside the handler: the correlation id follows.
                        responder
                            .publish(Answered {
                                answer: format!("re: {}", env.payload.question),
                            })
                            .await?;
                        Ok(())
                    }
                }
            },
        )
        .expect("subscribes");
    settled(&responder, "answering", &["responder"]).await;

    let context = event_core::PublishContext::new().correlation_id("c-1");
    asker
        .publish_with(
            context,
            Asked {
                question: "one".into(),
            },
        )
        .await
        .expect("publishes");
    let reply = asker
        .wait_for::<Answered>("c-1", Duration::from_secs(10))
        .await
        .expect("the reply from the other process");
    assert_eq!(reply.payload.answer, "re: one");
    assert_eq!(reply.correlation_id.as_deref(), Some("c-1"));

    // A reply that came before the call is found too.
    let context = event_core::PublishContext::new().correlation_id("c-2");
    asker
        .publish_with(
            context,
            Asked {
                question: "two".into(),
            },
        )
        .await
        .expect("publishes");
    tokio::time::sleep(LEASE * 2).await;
    let reply = asker
        .wait_for::<Answered>("c-2", Duration::from_secs(10))
        .await
        .expect("the reply published before wait_for");
    assert_eq!(reply.payload.answer, "re: two");
    let missing = asker
        .wait_for::<Answered>("c-none", Duration::from_millis(300))
        .await;
    assert!(
        missing.is_err(),
        "no reply with that correlation id: {missing:?}"
    );
    responder.shutdown().await;
    asker.shutdown().await;
}

/// With a store and a transport, `publish` commits to the store and the relay forwards to
/// the broker; one relay per store; a relay that forwards again (a crash between the
/// broker's acknowledgement and the saved position) is deduplicated by consumers with a
/// store; events appended in the caller's transaction are forwarded too.
async fn outbox_relay<B: Broker>(broker: &B) {
    use event_core::store::SqliteStore;

    let prefix = prefix("relay");
    let dir = tempfile::tempdir().expect("temp dir");
    let outbox = dir.path().join("outbox.db");
    // Two publishing processes share one store: one of them relays.
    let publishers: Vec<EventBus> = {
        let mut buses = Vec::new();
        for name in ["publisher-1", "publisher-2"] {
            buses.push(
                EventBus::builder()
                    .store(SqliteStore::open(&outbox).expect("opens"))
                    .transport(broker.transport(&prefix).await)
                    .consumer_name(name)
                    .relay_lease(LEASE)
                    .poll_interval(Duration::from_millis(20))
                    .build(),
            );
        }
        buses
    };
    let consumer = EventBus::builder()
        .store(SqliteStore::open(dir.path().join("consumer.db")).expect("opens"))
        .transport(broker.transport(&prefix).await)
        .consumer_name("consumer")
        .build();
    let handled = Arc::new(Handled::default());
    subscribe(&handled, &consumer, "projection", "consumer");
    settled(&consumer, "projection", &["consumer"]).await;

    for (i, publisher) in publishers.iter().enumerate() {
        for seq in 0..20 {
            publisher
                .publish(Ticked {
                    key: format!("k{}", seq % 5),
                    seq: i as u64 * 100 + seq,
                })
                .await
                .expect("stored");
        }
    }
    // One more, inside the caller's own transaction.
    {
        let store = SqliteStore::open(&outbox).expect("opens");
        let mut conn = store.connection().expect("a connection");
        // Immediate: a deferred transaction that reads, then writes after another writer
        // committed, is refused by SQLite (WAL snapshot) instead of waiting.
        let tx = conn
            .transaction_with_behavior(event_core::store::rusqlite::TransactionBehavior::Immediate)
            .expect("a transaction");
        let envelope = event_core::Envelope::new(Ticked {
            key: "k0".into(),
            seq: 1000,
        })
        .to_raw()
        .expect("encodes");
        SqliteStore::append_in(&tx, &[envelope])
            .unwrap_or_else(|error| panic!("appends in the caller's transaction: {error}"));
        tx.commit().expect("commits");
        publishers[0].wake();
    }
    eventually(
        Duration::from_secs(20),
        "41 events relayed and handled",
        || handled.count() >= 41,
    )
    .await;
    let info = consumer
        .transport_info()
        .await
        .expect("info")
        .expect("a transport");
    let on_broker: u64 = info
        .topics
        .iter()
        .flat_map(|t| t.shards.iter())
        .map(|s| s.length)
        .sum();
    assert_eq!(on_broker, 41, "one relay forwarded each event once");

    relay_again(&outbox, &publishers, &consumer).await;
    assert_eq!(handled.count(), 41, "each event handled once");
    let mut last: HashMap<String, u64> = HashMap::new();
    for (key, seq) in handled.all() {
        if let Some(previous) = last.insert(key.clone(), seq) {
            assert!(
                seq > previous || key == "k0",
                "key {key}: {seq} after {previous}"
            );
        }
    }
    for publisher in &publishers {
        publisher.shutdown().await;
    }
    consumer.shutdown().await;
}

/// The relay forgets its position, as after a crash before saving it: it forwards
/// everything again. Each duplicate is dropped on the way: by the broker (JetStream's
/// `Nats-Msg-Id` window) or by the consumer's inbox (Redis keeps every entry).
async fn relay_again(outbox: &std::path::Path, publishers: &[EventBus], consumer: &EventBus) {
    use event_core::store::{SqliteStore, Store};

    let store = SqliteStore::open(outbox).expect("opens");
    store.reset_checkpoint("$relay", 0).await.expect("resets");
    publishers[0].wake();
    publishers[1].wake();
    let head = store.head().await.expect("head");
    let started = Instant::now();
    while store.checkpoint("$relay").await.expect("checkpoint") < head {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the relay never forwarded everything again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let info = consumer
        .transport_info()
        .await
        .expect("info")
        .expect("a transport");
    let on_broker = info
        .topics
        .iter()
        .flat_map(|t| t.shards.iter())
        .map(|s| s.length)
        .sum::<u64>()
        - 41;
    eventually(
        Duration::from_secs(20),
        "every duplicate that reached the broker deduplicated by the inbox",
        || consumer.metrics().deduplicated >= on_broker,
    )
    .await;
    assert!(
        on_broker == 0 || on_broker == 41,
        "the broker kept all duplicates or none: {on_broker}"
    );
}

/// Envelopes read from the broker that the subscription cannot decode (a version newer than
/// its union knows, a payload of the wrong shape) are dead-lettered with their reason and
/// acknowledged, never retried for ever and never dropped; the others flow.
async fn undecodable_events<B: Broker>(broker: &B) {
    let prefix = prefix("undecodable");
    let bus = EventBus::builder()
        .transport(broker.transport(&prefix).await)
        .consumer_name("member-a")
        .build();
    let handled = Arc::new(Handled::default());
    subscribe(&handled, &bus, "strict", "member-a");
    settled(&bus, "strict", &["member-a"]).await;
    let good = event_core::Envelope::new(Ticked {
        key: "k1".into(),
        seq: 1,
    })
    .to_raw()
    .expect("encodes");
    let mut newer = good.clone();
    newer.id = uuid::Uuid::now_v7();
    newer.version = 9;
    let mut wrong_shape = good.clone();
    wrong_shape.id = uuid::Uuid::now_v7();
    wrong_shape.payload =
        serde_json::value::RawValue::from_string(r#"{"key": 7}"#.into()).expect("json");
    for envelope in [newer.clone(), wrong_shape.clone(), good] {
        bus.publish_raw(envelope).await.expect("published");
    }
    eventually(Duration::from_secs(10), "the good event handled", || {
        handled.count() == 1
    })
    .await;
    let started = Instant::now();
    let letters = loop {
        let letters = bus.dead_letters().await;
        if letters.len() >= 2 || started.elapsed() > Duration::from_secs(10) {
            break letters;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let ids: HashSet<uuid::Uuid> = letters.iter().map(|l| l.envelope.id).collect();
    assert_eq!(
        ids,
        HashSet::from([newer.id, wrong_shape.id]),
        "{letters:?}"
    );
    for letter in &letters {
        assert_eq!(letter.attempts, 0, "never reached the handler: {letter:?}");
        assert!(!letter.last_error.is_empty());
    }
    assert_eq!(pending(&bus, "strict").await, 0, "every entry acknowledged");
    bus.shutdown().await;
}

/// `bus.trim` never removes what a group has not handled, unless forced.
async fn retention<B: Broker>(broker: &B) {
    use event_core::transport::Retention;

    let prefix = prefix("trim");
    let reader = bus(broker.transport(&prefix).await, "member-a");
    let handled = Arc::new(Handled::default());
    subscribe(&handled, &reader, "reader", "member-a");
    settled(&reader, "reader", &["member-a"]).await;
    publish_keys(&reader, 4, 5).await;
    eventually(Duration::from_secs(10), "20 handled", || {
        handled.count() >= 20
    })
    .await;
    // A group whose handler is stuck on its first event: it has acknowledged nothing.
    let lagging = bus(broker.transport(&prefix).await, "member-lagging");
    let unstuck = Arc::new(tokio::sync::Semaphore::new(0));
    {
        let unstuck = Arc::clone(&unstuck);
        lagging
            .subscribe_with::<Ticked, _, _>(
                "lagging",
                &SubscriptionOptions::new().start_from(StartFrom::Beginning),
                move |_| {
                    let unstuck = Arc::clone(&unstuck);
                    async move {
                        let _ = unstuck.acquire().await;
                        Ok(())
                    }
                },
            )
            .expect("subscribes");
    }
    settled(&lagging, "lagging", &["member-lagging"]).await;
    let length = |info: &event_core::transport::TransportInfo| -> u64 {
        info.topics
            .iter()
            .flat_map(|t| t.shards.iter())
            .map(|s| s.length)
            .sum()
    };
    let report = reader
        .trim(&Retention::max_len(0))
        .await
        .expect("trims")
        .expect("a transport");
    assert_eq!(
        report.removed, 0,
        "the lagging group holds them: {report:?}"
    );
    assert!(report.held_by.contains(&"lagging".to_owned()), "{report:?}");
    let info = reader
        .transport_info()
        .await
        .expect("info")
        .expect("a transport");
    assert_eq!(length(&info), 20);
    let report = reader
        .trim(&Retention::max_len(0).forced())
        .await
        .expect("trims")
        .expect("a transport");
    assert_eq!(report.removed, 20, "{report:?}");
    let info = reader
        .transport_info()
        .await
        .expect("info")
        .expect("a transport");
    assert_eq!(length(&info), 0);
    let in_memory = EventBus::builder().build();
    assert!(
        in_memory
            .trim(&Retention::max_len(0))
            .await
            .expect("no error")
            .is_none()
    );
    unstuck.close();
    lagging.shutdown().await;
    reader.shutdown().await;
}

/// `subscribe_batch` over the broker: batches of up to N of a member's events, each key's
/// events in order, every event acknowledged; a batch that fails is handed over again one
/// event at a time, so only the failing event becomes a dead letter.
async fn batch_handlers<B: Broker>(broker: &B) {
    let prefix = prefix("batch");
    let publisher = bus(broker.transport(&prefix).await, "publisher");
    // The topic exists once a group does; the events wait for the batch group, which
    // starts from the beginning.
    let early = Arc::new(Handled::default());
    subscribe(&early, &publisher, "early", "publisher");
    settled(&publisher, "early", &["publisher"]).await;
    publish_keys(&publisher, 10, 20).await;

    let member = bus(broker.transport(&prefix).await, "member-batch");
    let handled: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let sizes: Arc<Mutex<Vec<usize>>> = Arc::default();
    {
        let handled = Arc::clone(&handled);
        let sizes = Arc::clone(&sizes);
        member
            .subscribe_batch_with::<Ticked, _, _>(
                "totals",
                16,
                &SubscriptionOptions::new()
                    .concurrency(2)
                    .start_from(StartFrom::Beginning),
                move |batch| {
                    sizes.lock().unwrap().push(batch.len());
                    let poisoned = batch
                        .iter()
                        .any(|env| env.payload.key == "k3" && env.payload.seq == 7);
                    if !poisoned {
                        handled.lock().unwrap().extend(
                            batch
                                .iter()
                                .map(|env| (env.payload.key.clone(), env.payload.seq)),
                        );
                    }
                    async move {
                        if poisoned {
                            Err(HandlerError::permanent("meter k3 is broken"))
                        } else {
                            Ok(())
                        }
                    }
                },
            )
            .expect("subscribes");
    }
    eventually(Duration::from_secs(20), "199 events handled", || {
        handled.lock().unwrap().len() >= 199
    })
    .await;

    let handled = handled.lock().unwrap().clone();
    let distinct: HashSet<&(String, u64)> = handled.iter().collect();
    assert_eq!(handled.len(), 199, "each event handled once");
    assert_eq!(distinct.len(), 199);
    assert!(!distinct.contains(&("k3".to_owned(), 7)));
    let mut last: HashMap<&str, u64> = HashMap::new();
    for (key, seq) in &handled {
        if let Some(previous) = last.insert(key, *seq) {
            assert!(*seq > previous, "key {key}: {seq} handled after {previous}");
        }
    }
    let sizes = sizes.lock().unwrap().clone();
    assert!(sizes.iter().all(|&n| (1..=16).contains(&n)), "{sizes:?}");
    assert!(
        sizes.iter().any(|&n| n > 1),
        "200 waiting events came one at a time: {sizes:?}"
    );

    let mut letters = Vec::new();
    let started = Instant::now();
    while letters.is_empty() && started.elapsed() < Duration::from_secs(5) {
        letters = member.dead_letters().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(letters.len(), 1, "only the failing event: {letters:?}");
    assert_eq!(letters[0].subscription, "totals");
    assert!(letters[0].last_error.contains("meter k3 is broken"));

    // Everything acknowledged: nothing pending in the group.
    let started = Instant::now();
    while pending(&member, "totals").await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "entries never acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    member.shutdown().await;
    publisher.shutdown().await;
}

/// A transport whose publishes wait while it is held, and are counted: a relay "paused"
/// in the middle of forwarding.
#[derive(Debug)]
struct Held<T> {
    inner: T,
    open: tokio::sync::watch::Sender<bool>,
    published: Arc<AtomicU64>,
}

impl<T: Transport> Transport for Held<T> {
    fn publish<'a>(
        &'a self,
        events: &'a [event_core::RawEnvelope],
    ) -> futures_util::future::BoxFuture<'a, Result<(), event_core::transport::TransportError>>
    {
        Box::pin(async move {
            let mut open = self.open.subscribe();
            let _ = open.wait_for(|open| *open).await;
            self.inner.publish(events).await?;
            self.published.fetch_add(events.len() as u64, SeqCst);
            Ok(())
        })
    }
    fn join<'a>(
        &'a self,
        spec: &'a event_core::transport::GroupSpec,
    ) -> futures_util::future::BoxFuture<
        'a,
        Result<Box<dyn event_core::transport::Member>, event_core::transport::TransportError>,
    > {
        self.inner.join(spec)
    }
    fn put_dead_letter<'a>(
        &'a self,
        letter: &'a event_core::DeadLetter,
        entry: Option<&'a event_core::transport::EntryRef>,
    ) -> futures_util::future::BoxFuture<'a, Result<(), event_core::transport::TransportError>>
    {
        self.inner.put_dead_letter(letter, entry)
    }
    fn dead_letters<'a>(
        &'a self,
        group: Option<&'a str>,
    ) -> futures_util::future::BoxFuture<
        'a,
        Result<
            Vec<event_core::transport::TransportDeadLetter>,
            event_core::transport::TransportError,
        >,
    > {
        self.inner.dead_letters(group)
    }
    fn remove_dead_letter<'a>(
        &'a self,
        id: &'a event_core::transport::EntryRef,
    ) -> futures_util::future::BoxFuture<'a, Result<bool, event_core::transport::TransportError>>
    {
        self.inner.remove_dead_letter(id)
    }
    fn trim<'a>(
        &'a self,
        retention: &'a event_core::transport::Retention,
    ) -> futures_util::future::BoxFuture<
        'a,
        Result<event_core::transport::TrimReport, event_core::transport::TransportError>,
    > {
        self.inner.trim(retention)
    }
    fn info(
        &self,
    ) -> futures_util::future::BoxFuture<
        '_,
        Result<event_core::transport::TransportInfo, event_core::transport::TransportError>,
    > {
        self.inner.info()
    }
}

/// A relay held in the middle of forwarding for longer than its lease: another relay takes
/// over and forwards on; released, the stale relay's position save is refused (it cannot
/// move the relay's position) and it forwards nothing more. Every event reaches the
/// consumer, once (its inbox drops the stale relay's late duplicates).
async fn paused_relay_is_fenced<B: Broker>(broker: &B) {
    use event_core::store::{SqliteStore, Store};

    let prefix = prefix("relay-pause");
    let dir = tempfile::tempdir().expect("temp dir");
    let outbox = dir.path().join("outbox.db");
    let (open, _) = tokio::sync::watch::channel(true);
    let stale_published = Arc::new(AtomicU64::new(0));
    let stale = EventBus::builder()
        .store(SqliteStore::open(&outbox).expect("opens"))
        .transport(Held {
            inner: broker.transport(&prefix).await,
            open: open.clone(),
            published: Arc::clone(&stale_published),
        })
        .consumer_name("relay-stale")
        .relay_lease(LEASE)
        .poll_interval(Duration::from_millis(20))
        .build();
    let consumer = EventBus::builder()
        .store(SqliteStore::open(dir.path().join("consumer.db")).expect("opens"))
        .transport(broker.transport(&prefix).await)
        .consumer_name("consumer")
        .build();
    let handled = Arc::new(Handled::default());
    subscribe(&handled, &consumer, "projection", "consumer");
    settled(&consumer, "projection", &["consumer"]).await;

    // The stale relay takes the lease with its first publish, and forwards.
    let publish = |bus: &EventBus, from: u64| {
        let bus = bus.clone();
        async move {
            for seq in from..from + 10 {
                bus.publish(Ticked {
                    key: format!("k{}", seq % 3),
                    seq,
                })
                .await
                .expect("stored");
            }
        }
    };
    publish(&stale, 0).await;
    eventually(Duration::from_secs(10), "10 events forwarded", || {
        stale_published.load(SeqCst) >= 10
    })
    .await;
    // Held mid-forward: the next batch waits in `publish` past the lease.
    open.send_replace(false);
    publish(&stale, 10).await;
    tokio::time::sleep(LEASE / 2).await;
    let successor = EventBus::builder()
        .store(SqliteStore::open(&outbox).expect("opens"))
        .transport(broker.transport(&prefix).await)
        .consumer_name("relay-successor")
        .relay_lease(LEASE)
        .poll_interval(Duration::from_millis(20))
        .build();
    publish(&successor, 20).await;
    eventually(LEASE * 8, "the successor forwards all 30", || {
        handled.count() >= 30
    })
    .await;

    // Released: its late batch reaches the broker (it was past every check), but its
    // position save is refused, and it forwards nothing more.
    let store = SqliteStore::open(&outbox).expect("opens");
    let position = store.checkpoint("$relay").await.expect("position");
    open.send_replace(true);
    eventually(Duration::from_secs(10), "the stale save refused", || {
        stale.metrics().refused >= 1
    })
    .await;
    let forwarded_by_stale = stale_published.load(SeqCst);
    assert!(
        forwarded_by_stale > 10,
        "the held batch went out when released"
    );
    publish(&successor, 30).await;
    publish(&stale, 40).await;
    eventually(Duration::from_secs(10), "50 events handled", || {
        handled.count() >= 50
    })
    .await;
    tokio::time::sleep(LEASE).await;
    assert_eq!(
        stale_published.load(SeqCst),
        forwarded_by_stale,
        "the stale relay forwards nothing after its lease passed to another"
    );
    assert!(store.checkpoint("$relay").await.expect("position") >= position);
    assert_eq!(handled.count(), 50, "each event handled once");
    for bus in [&stale, &successor, &consumer] {
        bus.shutdown().await;
    }
}

macro_rules! conformance {
    ($name:ident, $broker:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn competing_consumers() {
                super::competing_consumers(&$broker).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn order_per_key() {
                super::order_per_key(&$broker).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dead_member_failover() {
                super::dead_member_failover(&$broker).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dead_letters_and_redeliver() {
                super::dead_letters_and_redeliver(&$broker).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn start_position() {
                super::start_position(&$broker).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn wait_for_across_processes() {
                super::wait_for_across_processes(&$broker).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn outbox_relay() {
                super::outbox_relay(&$broker).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn paused_relay_is_fenced() {
                super::paused_relay_is_fenced(&$broker).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn undecodable_events() {
                super::undecodable_events(&$broker).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn retention() {
                super::retention(&$broker).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn batch_handlers() {
                super::batch_handlers(&$broker).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn introspection() {
                super::introspection(&$broker).await;
            }
        }
    };
}

/// Redis Streams, on a `redis-server` of this test process's own: the one the tests share,
/// or one of its own (the restart case).
mod redis_broker {
    use super::{Broker, LEASE};
    use event_core::transport::RedisTransport;
    use tests::redis_server::RedisServer;

    pub(super) struct Redis(pub(super) Option<RedisServer>);

    impl Redis {
        fn server(&self) -> &RedisServer {
            self.0.as_ref().unwrap_or_else(|| RedisServer::shared())
        }
    }

    impl Broker for Redis {
        type T = RedisTransport;

        async fn transport(&self, prefix: &str) -> RedisTransport {
            RedisTransport::builder(self.server().url())
                .prefix(prefix)
                .shards(4)
                .lease(LEASE)
                .connect()
                .await
                .expect("connects")
        }

        fn kill(&self) {
            self.server().kill();
        }

        fn restart(&self) {
            self.server().restart();
        }
    }
}

/// NATS JetStream, on a `nats-server -js` of this test process's own, shared or not.
mod nats_broker {
    use super::{Broker, LEASE};
    use event_core::transport::NatsTransport;
    use tests::nats_server::NatsServer;

    pub(super) struct Nats(pub(super) Option<NatsServer>);

    impl Nats {
        fn server(&self) -> &NatsServer {
            self.0.as_ref().unwrap_or_else(|| NatsServer::shared())
        }
    }

    impl Broker for Nats {
        type T = NatsTransport;

        async fn transport(&self, prefix: &str) -> NatsTransport {
            NatsTransport::builder(self.server().url())
                .prefix(prefix)
                .shards(4)
                .lease(LEASE)
                .connect()
                .await
                .expect("connects")
        }

        fn kill(&self) {
            self.server().kill();
        }

        fn restart(&self) {
            self.server().restart();
        }
    }
}

conformance!(redis, redis_broker::Redis(None));
conformance!(nats, nats_broker::Nats(None));

/// The restart cases need a server of their own: the others share one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_broker_restart() {
    let server = tests::redis_server::RedisServer::start().expect("starts redis-server");
    broker_restart(&redis_broker::Redis(Some(server))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_broker_restart() {
    let server = tests::nats_server::NatsServer::start().expect("starts nats-server");
    broker_restart(&nats_broker::Nats(Some(server))).await;
}
