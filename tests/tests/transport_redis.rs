//! The Redis Streams transport on a throwaway server (`tests::redis_server`): delivery,
//! groups and members, leases and fencing, dead letters, retention, faults. Each test has
//! its own key prefix on the shared server (the fault test has a server of its own), short
//! leases, and a timeout.

use chrono::Utc;
use event_core::transport::{
    EntryRef, GroupSpec, Member, Received, RedisTransport, Retention, StartFrom, Transport,
    TransportError,
};
use event_core::{DeadLetter, Envelope, Meta, RawEnvelope};
use serde_json::value::RawValue;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use tests::redis_server::RedisServer;
use uuid::Uuid;

const LEASE: Duration = Duration::from_millis(600);
const SHARDS: u32 = 4;

static PREFIXES: AtomicU32 = AtomicU32::new(0);

fn prefix(name: &str) -> String {
    format!("t{}-{name}", PREFIXES.fetch_add(1, Ordering::Relaxed))
}

async fn bounded<F: Future>(limit: Duration, test: F) -> F::Output {
    tokio::time::timeout(limit, test)
        .await
        .expect("the test finished in time")
}

async fn transport_at(url: &str, prefix: &str, shards: u32) -> RedisTransport {
    RedisTransport::builder(url)
        .prefix(prefix)
        .shards(shards)
        .lease(LEASE)
        .connect()
        .await
        .expect("connects")
}

async fn transport(prefix: &str) -> RedisTransport {
    transport_at(&RedisServer::shared().url(), prefix, SHARDS).await
}

async fn raw_conn(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

fn event(event_type: &str, key: Option<&str>, n: u32) -> RawEnvelope {
    let mut meta = Meta::new();
    if let Some(key) = key {
        meta.set_partition_key(key);
    }
    Envelope {
        id: Uuid::now_v7(),
        event_type: event_type.into(),
        version: 1,
        occurred_at: Utc::now(),
        source: Some("tests".into()),
        correlation_id: None,
        causation_id: None,
        trace_id: None,
        payload: RawValue::from_string(format!(r#"{{"n":{n},"text":"é \u00e9"}}"#)).unwrap(),
        meta,
    }
}

fn n_of(received: &Received) -> u32 {
    let value: serde_json::Value = serde_json::from_str(received.envelope.payload.get()).unwrap();
    u32::try_from(value["n"].as_u64().unwrap()).unwrap()
}

fn spec(group: &str, consumer: &str) -> GroupSpec {
    GroupSpec::new(group, consumer).start_from(StartFrom::Beginning)
}

/// Receives until `count` entries came or `within` passed.
async fn receive_n(member: &dyn Member, count: usize, within: Duration) -> Vec<Received> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    while out.len() < count && Instant::now() < deadline {
        match member.receive(100, Duration::from_millis(100)).await {
            Ok(batch) => out.extend(batch),
            Err(error) if error.is_unavailable() => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("receive failed: {error}"),
        }
    }
    out
}

async fn ack_all(member: &dyn Member, received: &[Received]) {
    for r in received {
        member.ack(&r.entry).await.expect("acks");
    }
}

/// Waits until every member of `group` on the first topic owns a shard.
async fn wait_balanced(transport: &RedisTransport, group: &str, members: usize) {
    let deadline = Instant::now() + LEASE * 6;
    loop {
        let info = transport.info().await.unwrap();
        let owners = info
            .topics
            .iter()
            .flat_map(|t| &t.groups)
            .filter(|g| g.group == group)
            .flat_map(|g| &g.consumers)
            .filter(|c| !c.shards.is_empty())
            .count();
        let owned: usize = info
            .topics
            .iter()
            .flat_map(|t| &t.groups)
            .filter(|g| g.group == group)
            .flat_map(|g| &g.consumers)
            .map(|c| c.shards.len())
            .sum();
        if owners == members && owned == SHARDS as usize {
            return;
        }
        assert!(Instant::now() < deadline, "not balanced in time: {info:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_receive_ack_round_trip_keeps_the_envelope_byte_identical() {
    bounded(Duration::from_secs(10), async {
        let prefix = prefix("roundtrip");
        let transport = transport(&prefix).await;
        let events: Vec<RawEnvelope> = (0..3)
            .map(|n| event("order.created", Some("o-1"), n))
            .collect();
        transport.publish(&events).await.unwrap();
        let member = transport.join(&spec("billing", "a")).await.unwrap();
        let received = receive_n(&*member, 3, Duration::from_secs(3)).await;
        assert_eq!(received.len(), 3);
        for (sent, got) in events.iter().zip(&received) {
            assert_eq!(got.envelope.to_json().unwrap(), sent.to_json().unwrap());
            assert_eq!(got.deliveries, 1);
            assert!(member.holds(&got.entry));
        }
        // On the broker, the `envelope` field is the canonical JSON, byte for byte.
        let mut conn = raw_conn(&RedisServer::shared().url()).await;
        let entry = &received[0].entry;
        let stored: Vec<(String, HashMap<String, Vec<u8>>)> = redis::cmd("XRANGE")
            .arg(format!("{prefix}:main:{}", entry.shard))
            .arg(&entry.id)
            .arg(&entry.id)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            stored[0].1["envelope"],
            events[0].to_json().unwrap().into_bytes()
        );
        assert_eq!(stored[0].1["id"], events[0].id.to_string().into_bytes());
        ack_all(&*member, &received).await;
        let info = transport.info().await.unwrap();
        assert_eq!(info.topics[0].groups[0].pending, 0);
        assert!(
            member
                .receive(10, Duration::from_millis(100))
                .await
                .unwrap()
                .is_empty()
        );
        member.leave().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_split_the_shards_and_each_event_is_received_once() {
    bounded(Duration::from_secs(15), async {
        let transport = transport(&prefix("split")).await;
        let a = transport.join(&spec("billing", "a")).await.unwrap();
        let b = transport.join(&spec("billing", "b")).await.unwrap();
        wait_balanced(&transport, "billing", 2).await;
        let events: Vec<RawEnvelope> = (0..40)
            .map(|n| event("order.created", Some(&format!("key-{n}")), n))
            .collect();
        transport.publish(&events).await.unwrap();
        let (from_a, from_b) = tokio::join!(
            receive_n(&*a, 40, Duration::from_secs(2)),
            receive_n(&*b, 40, Duration::from_secs(2)),
        );
        assert!(!from_a.is_empty() && !from_b.is_empty(), "both got some");
        let mut counts: HashMap<Uuid, u32> = HashMap::new();
        for r in from_a.iter().chain(&from_b) {
            *counts.entry(r.envelope.id).or_default() += 1;
        }
        assert_eq!(counts.len(), 40, "every event received");
        assert!(counts.values().all(|c| *c == 1), "each once: {counts:?}");
        let shards_a: HashSet<u32> = from_a.iter().map(|r| r.entry.shard).collect();
        let shards_b: HashSet<u32> = from_b.iter().map(|r| r.entry.shard).collect();
        assert!(shards_a.is_disjoint(&shards_b));
        ack_all(&*a, &from_a).await;
        ack_all(&*b, &from_b).await;
        a.leave().await;
        b.leave().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_groups_each_get_every_event() {
    bounded(Duration::from_secs(10), async {
        let transport = transport(&prefix("groups")).await;
        let billing = transport.join(&spec("billing", "a")).await.unwrap();
        let shipping = transport.join(&spec("shipping", "a")).await.unwrap();
        let events: Vec<RawEnvelope> = (0..10).map(|n| event("order.created", None, n)).collect();
        transport.publish(&events).await.unwrap();
        let got_billing = receive_n(&*billing, 10, Duration::from_secs(3)).await;
        let got_shipping = receive_n(&*shipping, 10, Duration::from_secs(3)).await;
        let ids = |r: &[Received]| r.iter().map(|r| r.envelope.id).collect::<HashSet<_>>();
        let all: HashSet<Uuid> = events.iter().map(|e| e.id).collect();
        assert_eq!(got_billing.len(), 10);
        assert_eq!(got_shipping.len(), 10);
        assert_eq!(ids(&got_billing), all);
        assert_eq!(ids(&got_shipping), all);
        billing.leave().await;
        shipping.leave().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_per_key_holds_within_a_member() {
    bounded(Duration::from_secs(10), async {
        let transport = transport(&prefix("order")).await;
        let member = transport.join(&spec("billing", "a")).await.unwrap();
        let keys = ["k-a", "k-b", "k-c", "k-d", "k-e"];
        let events: Vec<RawEnvelope> = (0..50)
            .map(|n| event("order.created", Some(keys[n as usize % keys.len()]), n))
            .collect();
        for chunk in events.chunks(7) {
            transport.publish(chunk).await.unwrap();
        }
        let received = receive_n(&*member, 50, Duration::from_secs(3)).await;
        assert_eq!(received.len(), 50);
        let mut last: HashMap<String, u32> = HashMap::new();
        for r in &received {
            let key = r.envelope.partition_key().unwrap().to_owned();
            let n = n_of(r);
            if let Some(previous) = last.insert(key.clone(), n) {
                assert!(previous < n, "key {key}: {n} after {previous}");
            }
        }
        member.leave().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_member_s_shards_and_unacknowledged_entries_pass_to_the_other_fenced() {
    bounded(Duration::from_secs(15), async {
        let transport = transport(&prefix("takeover")).await;
        let a = transport.join(&spec("billing", "a")).await.unwrap();
        let b = transport.join(&spec("billing", "b")).await.unwrap();
        wait_balanced(&transport, "billing", 2).await;
        let events: Vec<RawEnvelope> = (0..20)
            .map(|n| event("order.created", Some(&format!("key-{n}")), n))
            .collect();
        transport.publish(&events).await.unwrap();
        let (from_a, from_b) = tokio::join!(
            receive_n(&*a, 20, Duration::from_secs(1)),
            receive_n(&*b, 20, Duration::from_secs(1)),
        );
        assert_eq!(from_a.len() + from_b.len(), 20);
        assert!(!from_a.is_empty(), "a got some");
        ack_all(&*b, &from_b).await;
        // `a` dies holding its entries, unacknowledged.
        drop(a);
        let started = Instant::now();
        let taken = receive_n(&*b, from_a.len(), LEASE * 4).await;
        let took = started.elapsed();
        assert!(took < LEASE * 3, "took over in {took:?}");
        let expected: HashSet<Uuid> = from_a.iter().map(|r| r.envelope.id).collect();
        let got: HashSet<Uuid> = taken.iter().map(|r| r.envelope.id).collect();
        assert_eq!(got, expected, "b got a's unacknowledged entries");
        assert!(
            taken.iter().all(|r| r.deliveries == 2),
            "handed out a second time"
        );
        // a's old acknowledgement is refused: its token is stale.
        let stale = &from_a[0].entry;
        assert!(!b.holds(stale));
        match b.ack(stale).await {
            Err(TransportError::Fenced { token, .. }) => assert_eq!(token, stale.token),
            other => panic!("expected Fenced, got {other:?}"),
        }
        ack_all(&*b, &taken).await;
        let info = transport.info().await.unwrap();
        assert_eq!(info.topics[0].groups[0].pending, 0);
        b.leave().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_lost_its_lease_no_longer_holds_and_is_fenced() {
    bounded(Duration::from_secs(10), async {
        let prefix = prefix("lost");
        let transport = transport(&prefix).await;
        let member = transport.join(&spec("billing", "a")).await.unwrap();
        transport
            .publish(&[event("order.created", Some("o-1"), 1)])
            .await
            .unwrap();
        let received = receive_n(&*member, 1, Duration::from_secs(2)).await;
        let entry = received[0].entry.clone();
        assert!(member.holds(&entry));
        // Someone else takes the lease (as a member would after a long pause of this one).
        let mut conn = raw_conn(&RedisServer::shared().url()).await;
        let () = redis::cmd("SET")
            .arg(format!("{prefix}:group:billing:lease:{}", entry.shard))
            .arg("thief|999999")
            .arg("PX")
            .arg(60_000)
            .query_async(&mut conn)
            .await
            .unwrap();
        let deadline = Instant::now() + LEASE * 2;
        while member.holds(&entry) {
            assert!(Instant::now() < deadline, "still holds after the loss");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(matches!(
            member.ack(&entry).await,
            Err(TransportError::Fenced { .. })
        ));
        let letter = seeded_letter(&transport, &prefix, "billing").await;
        assert!(matches!(
            transport.put_dead_letter(&letter, Some(&entry)).await,
            Err(TransportError::Fenced { .. })
        ));
        member.leave().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_from_now_skips_what_was_published_before_beginning_does_not() {
    bounded(Duration::from_secs(10), async {
        let transport = transport(&prefix("start")).await;
        transport
            .publish(&[event("order.created", None, 1)])
            .await
            .unwrap();
        let now = transport
            .join(&GroupSpec::new("now", "a").start_from(StartFrom::Now))
            .await
            .unwrap();
        let beginning = transport
            .join(&GroupSpec::new("beginning", "a").start_from(StartFrom::Beginning))
            .await
            .unwrap();
        transport
            .publish(&[event("order.created", None, 2)])
            .await
            .unwrap();
        let from_now = receive_n(&*now, 2, Duration::from_secs(1)).await;
        let from_beginning = receive_n(&*beginning, 2, Duration::from_secs(2)).await;
        assert_eq!(from_now.iter().map(n_of).collect::<Vec<_>>(), [2]);
        let mut all: Vec<u32> = from_beginning.iter().map(n_of).collect();
        all.sort_unstable();
        assert_eq!(all, [1, 2]);
        now.leave().await;
        beginning.leave().await;
    })
    .await;
}

/// A dead letter read back from the broker, to put again: written raw in the dead stream
/// of topic `main` for group `seed`, listed, and removed.
async fn seeded_letter(transport: &RedisTransport, prefix: &str, group: &str) -> DeadLetter {
    let mut conn = raw_conn(&RedisServer::shared().url()).await;
    let envelope = event("order.created", Some("seed"), 99);
    let id: String = redis::cmd("XADD")
        .arg(format!("{prefix}:main:dead"))
        .arg("*")
        .arg("group")
        .arg("seed")
        .arg("error")
        .arg("seeded")
        .arg("attempts")
        .arg(3)
        .arg("failed_at")
        .arg("2026-01-02T03:04:05.678Z")
        .arg("envelope")
        .arg(envelope.to_json().unwrap())
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut letters = transport.dead_letters(Some("seed")).await.unwrap();
    let seeded = letters.pop().expect("the seeded letter is listed");
    assert_eq!(seeded.id.id, id);
    assert!(transport.remove_dead_letter(&seeded.id).await.unwrap());
    let mut letter = seeded.letter;
    assert_eq!(
        letter.envelope.to_json().unwrap(),
        envelope.to_json().unwrap()
    );
    assert_eq!((letter.attempts, letter.last_error.as_str()), (3, "seeded"));
    group.clone_into(&mut letter.subscription);
    letter
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_put_listed_and_removed_and_the_put_acknowledges() {
    bounded(Duration::from_secs(10), async {
        let prefix = prefix("dead");
        let transport = transport(&prefix).await;
        let member = transport.join(&spec("billing", "a")).await.unwrap();
        let sent = event("order.created", Some("o-1"), 7);
        transport
            .publish(std::slice::from_ref(&sent))
            .await
            .unwrap();
        let received = receive_n(&*member, 1, Duration::from_secs(2)).await;
        let mut letter = seeded_letter(&transport, &prefix, "billing").await;
        letter.envelope = received[0].envelope.clone();
        letter.last_error = "handler failed: boom".to_owned();
        letter.attempts = 5;
        transport
            .put_dead_letter(&letter, Some(&received[0].entry))
            .await
            .unwrap();
        // A letter of no entry (a redelivery that failed again).
        letter.last_error = "failed again".to_owned();
        transport.put_dead_letter(&letter, None).await.unwrap();

        let listed = transport.dead_letters(Some("billing")).await.unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].letter.last_error, "handler failed: boom");
        assert_eq!(listed[1].letter.last_error, "failed again");
        assert_eq!(listed[0].letter.attempts, 5);
        assert_eq!(listed[0].letter.subscription, "billing");
        assert_eq!(
            listed[0].letter.envelope.to_json().unwrap(),
            sent.to_json().unwrap()
        );
        assert_eq!(
            (listed[0].id.topic.as_str(), listed[0].id.shard),
            ("main", 0)
        );
        assert!(
            transport
                .dead_letters(Some("shipping"))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(transport.dead_letters(None).await.unwrap().len(), 2);
        // Dead-lettering acknowledged the entry.
        let info = transport.info().await.unwrap();
        assert_eq!(info.topics[0].groups[0].pending, 0);
        assert_eq!(info.topics[0].dead_letters, 2);

        assert!(transport.remove_dead_letter(&listed[0].id).await.unwrap());
        assert!(!transport.remove_dead_letter(&listed[0].id).await.unwrap());
        let left = transport.dead_letters(None).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].letter.last_error, "failed again");
        // Fenced put: a token that never was.
        let mut stale = received[0].entry.clone();
        stale.token += 1000;
        assert!(matches!(
            transport.put_dead_letter(&letter, Some(&stale)).await,
            Err(TransportError::Fenced { .. })
        ));
        assert_eq!(transport.dead_letters(None).await.unwrap().len(), 1);
        member.leave().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_that_are_not_envelopes_are_dead_lettered_acknowledged_never_handed_out() {
    bounded(Duration::from_secs(10), async {
        let prefix = prefix("garbage");
        let transport = transport(&prefix).await;
        let member = transport
            .join(&spec("billing", "a").max_payload_bytes(64))
            .await
            .unwrap();
        let mut conn = raw_conn(&RedisServer::shared().url()).await;
        let stream = format!("{prefix}:main:0");
        let oversize = event("order.created", None, 1)
            .with_payload(RawValue::from_string(format!("\"{}\"", "x".repeat(100))).unwrap());
        let oversize = oversize.to_json().unwrap();
        let bad: [Vec<(&str, Vec<u8>)>; 3] = [
            vec![("envelope", b"not json {".to_vec())],
            vec![("id", b"x".to_vec()), ("type", b"order.created".to_vec())],
            vec![("envelope", oversize.clone().into_bytes())],
        ];
        let mut ids = Vec::new();
        for fields in &bad {
            let mut command = redis::cmd("XADD");
            command.arg(&stream).arg("*");
            for (field, value) in fields {
                command.arg(*field).arg(value.as_slice());
            }
            let id: String = command.query_async(&mut conn).await.unwrap();
            ids.push(id);
        }
        let good = event("order.created", None, 2);
        transport
            .publish(std::slice::from_ref(&good))
            .await
            .unwrap();
        let received = receive_n(&*member, 2, Duration::from_secs(1)).await;
        assert_eq!(received.len(), 1, "only the envelope is handed out");
        assert_eq!(received[0].envelope.id, good.id);
        ack_all(&*member, &received).await;

        let dead: Vec<(String, HashMap<String, Vec<u8>>)> = redis::cmd("XRANGE")
            .arg(format!("{prefix}:main:dead"))
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(dead.len(), 3);
        let text = |fields: &HashMap<String, Vec<u8>>, name: &str| {
            String::from_utf8_lossy(&fields[name]).into_owned()
        };
        for ((_, fields), id) in dead.iter().zip(&ids) {
            assert_eq!(text(fields, "group"), "billing");
            assert_eq!(&text(fields, "entry"), id);
        }
        assert!(text(&dead[0].1, "error").contains("not an envelope"));
        assert_eq!(dead[0].1["raw"], b"not json {");
        assert!(text(&dead[1].1, "error").contains("no `envelope` field"));
        assert!(text(&dead[1].1, "raw").contains("order.created"));
        assert!(text(&dead[2].1, "error").contains("oversize"));
        assert_eq!(dead[2].1["raw"], oversize.into_bytes());
        // All acknowledged; none listed as a dead letter (they are no events).
        let pending: redis::streams::StreamPendingReply = redis::cmd("XPENDING")
            .arg(&stream)
            .arg("billing")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(pending.count(), 0);
        assert!(transport.dead_letters(None).await.unwrap().is_empty());
        member.leave().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trim_never_passes_an_unacknowledged_entry_unless_forced() {
    bounded(Duration::from_secs(10), async {
        let prefix = prefix("trim");
        let transport = transport_at(&RedisServer::shared().url(), &prefix, 1).await;
        let member = transport.join(&spec("billing", "a")).await.unwrap();
        let events: Vec<RawEnvelope> = (0..10).map(|n| event("order.created", None, n)).collect();
        transport.publish(&events).await.unwrap();
        let mut everything = Retention::default();
        everything.max_len = Some(0);
        // Not read yet: nothing goes.
        let report = transport.trim(&everything).await.unwrap();
        assert_eq!(
            (report.removed, report.held_by.clone()),
            (0, vec!["billing".to_owned()])
        );
        let received = receive_n(&*member, 10, Duration::from_secs(2)).await;
        assert_eq!(received.len(), 10);
        ack_all(&*member, &received[..4]).await;
        // Read, four acknowledged: those four go.
        let report = transport.trim(&everything).await.unwrap();
        assert_eq!(
            (report.removed, report.held_by.clone()),
            (4, vec!["billing".to_owned()])
        );
        // Keep 3 at most: still held at the first unacknowledged.
        let mut three = Retention::default();
        three.max_len = Some(3);
        let report = transport.trim(&three).await.unwrap();
        assert_eq!(report.removed, 0);
        // Young entries are kept by age.
        let mut by_age = Retention::default();
        by_age.max_age = Some(Duration::from_secs(3600));
        by_age.force = true;
        assert_eq!(transport.trim(&by_age).await.unwrap().removed, 0);
        let mut forced = three;
        forced.force = true;
        let report = transport.trim(&forced).await.unwrap();
        assert_eq!((report.removed, report.held_by.len()), (3, 0));
        let info = transport.info().await.unwrap();
        assert_eq!(info.topics[0].shards[0].length, 3);
        assert_eq!(
            info.topics[0].shards[0].first.as_deref(),
            Some(received[7].entry.id.as_str())
        );
        member.leave().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_shard_count_on_the_broker_is_refused() {
    bounded(Duration::from_secs(10), async {
        let prefix = prefix("count");
        let url = RedisServer::shared().url();
        let four = transport_at(&url, &prefix, 4).await;
        four.publish(&[event("order.created", None, 1)])
            .await
            .unwrap();
        let eight = transport_at(&url, &prefix, 8).await;
        match eight.publish(&[event("order.created", None, 2)]).await {
            Err(TransportError::ShardCount {
                topic,
                configured,
                recorded,
                broker,
            }) => {
                assert_eq!((topic.as_str(), configured, recorded), ("main", 8, 4));
                assert_eq!(broker, url);
            }
            other => panic!("expected ShardCount, got {other:?}"),
        }
        assert!(matches!(
            eight.join(&spec("billing", "a")).await,
            Err(TransportError::ShardCount { .. })
        ));
        let info = four.info().await.unwrap();
        let length: u64 = info.topics[0].shards.iter().map(|s| s.length).sum();
        assert_eq!(length, 1, "nothing published by the refused one");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_makes_calls_unavailable_and_they_work_again_after_restart() {
    bounded(Duration::from_secs(30), async {
        let server = RedisServer::start().expect("a server of its own");
        let transport = transport_at(&server.url(), "fault", SHARDS).await;
        let member = transport.join(&spec("billing", "a")).await.unwrap();
        transport
            .publish(&[event("order.created", None, 1)])
            .await
            .unwrap();
        server.kill();
        let error = transport
            .publish(&[event("order.created", None, 2)])
            .await
            .expect_err("the server is down");
        assert!(error.is_unavailable(), "{error}");
        assert!(error.to_string().contains(&server.url()), "{error}");
        // The member's read fails too, rather than hanging.
        let mut unavailable = false;
        for _ in 0..5 {
            match member.receive(10, Duration::from_millis(100)).await {
                Err(error) => {
                    assert!(error.is_unavailable(), "{error}");
                    unavailable = true;
                    break;
                }
                Ok(batch) => assert!(batch.iter().all(|r| n_of(r) == 1)),
            }
        }
        assert!(unavailable, "receive reported the server down");

        server.restart();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match transport.publish(&[event("order.created", None, 3)]).await {
                Ok(()) => break,
                Err(error) if error.is_unavailable() && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("publish after restart: {error}"),
            }
        }
        // Both survived the crash (append-only file, fsync always), and come through.
        let mut seen = HashSet::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(seen.contains(&1) && seen.contains(&3)) {
            assert!(
                Instant::now() < deadline,
                "received after restart: {seen:?}"
            );
            for r in receive_n(&*member, 1, Duration::from_millis(500)).await {
                seen.insert(n_of(&r));
                // An ack under a lease lost meanwhile is refused; the entry comes again.
                let _ = member.ack(&r.entry).await;
            }
        }
        assert!(!seen.contains(&2), "the failed publish did not land");
        member.leave().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_shows_lengths_pending_and_owned_shards() {
    bounded(Duration::from_secs(10), async {
        let prefix = prefix("info");
        let transport = transport(&prefix).await;
        let member = transport.join(&spec("billing", "a")).await.unwrap();
        let events: Vec<RawEnvelope> = (0..5)
            .map(|n| event("order.created", Some("o-1"), n))
            .collect();
        transport.publish(&events).await.unwrap();
        let received = receive_n(&*member, 5, Duration::from_secs(2)).await;
        assert_eq!(received.len(), 5);
        let info = transport.info().await.unwrap();
        assert_eq!(info.prefix, prefix);
        assert_eq!(info.shards, SHARDS);
        assert_eq!(info.topics.len(), 1);
        let topic = &info.topics[0];
        assert_eq!(topic.topic, "main");
        let shard = received[0].entry.shard;
        for s in &topic.shards {
            let expected = if s.shard == shard { 5 } else { 0 };
            assert_eq!(s.length, expected, "shard {}", s.shard);
        }
        assert_eq!(
            topic.shards[shard as usize].first.as_deref(),
            Some(received[0].entry.id.as_str())
        );
        assert_eq!(
            topic.shards[shard as usize].last.as_deref(),
            Some(received[4].entry.id.as_str())
        );
        let group = &topic.groups[0];
        assert_eq!(
            (group.group.as_str(), group.pending, group.lag),
            ("billing", 5, Some(0))
        );
        assert_eq!(group.consumers.len(), 1);
        assert_eq!(group.consumers[0].name, "a");
        assert_eq!(group.consumers[0].pending, 5);
        assert_eq!(group.consumers[0].shards, (0..SHARDS).collect::<Vec<_>>());
        ack_all(&*member, &received).await;
        let entry: &EntryRef = &received[0].entry;
        assert_eq!(entry.topic, "main");
        member.leave().await;
    })
    .await;
}
