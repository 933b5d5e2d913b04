//! What is particular to the NATS JetStream transport, on a throwaway server
//! (`tests::nats_server`), looked at with the raw client: the server drops a duplicate
//! publish, a shard taken over refuses the old owner's acknowledgement on the server,
//! messages that are not envelopes become dead letters, group names are escaped, a
//! different shard count is refused. The semantics shared with Redis are in
//! `transport_conformance.rs`.

use async_nats::jetstream;
use chrono::Utc;
use event_core::transport::{
    GroupSpec, Member, NatsTransport, Received, Transport, TransportError,
};
use event_core::{Envelope, Meta, RawEnvelope};
use futures_util::StreamExt;
use serde_json::value::RawValue;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use tests::nats_server::NatsServer;
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

async fn transport_with(prefix: &str, shards: u32) -> Result<NatsTransport, TransportError> {
    NatsTransport::builder(NatsServer::shared().url())
        .prefix(prefix)
        .shards(shards)
        .lease(LEASE)
        .connect()
        .await
}

async fn transport(prefix: &str) -> NatsTransport {
    transport_with(prefix, SHARDS).await.expect("connects")
}

async fn raw() -> jetstream::Context {
    let client = async_nats::connect(NatsServer::shared().url())
        .await
        .expect("the raw client connects");
    jetstream::new(client)
}

fn event(key: &str, n: u32) -> RawEnvelope {
    let mut meta = Meta::new();
    meta.set_partition_key(key);
    Envelope {
        id: Uuid::now_v7(),
        event_type: "order.created".into(),
        version: 1,
        occurred_at: Utc::now(),
        source: Some("tests".into()),
        correlation_id: None,
        causation_id: None,
        trace_id: None,
        payload: RawValue::from_string(format!(r#"{{"n":{n}}}"#)).expect("json"),
        meta,
    }
}

async fn receive_n(member: &dyn Member, count: usize, within: Duration) -> Vec<Received> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    while out.len() < count && Instant::now() < deadline {
        out.extend(
            member
                .receive(count - out.len(), Duration::from_millis(100))
                .await
                .expect("receives"),
        );
    }
    out
}

/// Entries kept over every shard of every topic.
async fn length(transport: &NatsTransport) -> u64 {
    transport
        .info()
        .await
        .expect("info")
        .topics
        .iter()
        .flat_map(|t| t.shards.iter())
        .map(|s| s.length)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_drops_a_publish_of_the_same_event_again() {
    bounded(
        Duration::from_secs(10),
        Box::pin(async {
            let transport = transport(&prefix("dedupe")).await;
            let first = event("o-1", 1);
            transport
                .publish(&[first.clone(), event("o-2", 2)])
                .await
                .expect("publishes");
            // A relay that crashed before saving its position publishes the same events again.
            transport
                .publish(std::slice::from_ref(&first))
                .await
                .expect("publishes again");
            assert_eq!(length(&transport).await, 2, "Nats-Msg-Id is the event id");
        }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_whose_shard_was_taken_over_has_its_acknowledgement_refused_by_the_server() {
    bounded(
        Duration::from_secs(15),
        Box::pin(async {
            let prefix = prefix("fence");
            let transport = transport(&prefix).await;
            let member = transport
                .join(&GroupSpec::new("billing", "a"))
                .await
                .expect("joins");
            transport
                .publish(&[event("o-1", 1)])
                .await
                .expect("publishes");
            let received = receive_n(&*member, 1, Duration::from_secs(3)).await;
            let entry = received[0].entry.clone();
            assert!(member.holds(&entry));

            // What a new owner does, while this one is frozen: it deletes the consumer of the
            // old token (its successor starts at the acknowledgement floor).
            let js = raw().await;
            let stream = js
                .get_stream(format!("{prefix}__main"))
                .await
                .expect("the topic stream");
            let mut names = stream.consumer_names();
            let mut old = None;
            while let Some(name) = names.next().await {
                let name = name.expect("a consumer name");
                if name == format!("billing__{}__{}", entry.shard, entry.token) {
                    old = Some(name);
                }
            }
            let old = old.expect("the owner's consumer, named by its fencing token");
            stream.delete_consumer(&old).await.expect("deletes");

            // The lease still looks held here: the refusal comes from the server.
            assert!(member.holds(&entry));
            let refused = member.ack(&entry).await;
            assert!(
                matches!(refused, Err(TransportError::Fenced { .. })),
                "{refused:?}"
            );
            member.leave().await;
        }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_that_are_not_envelopes_are_dead_lettered_acknowledged_never_handed_out() {
    bounded(
        Duration::from_secs(15),
        Box::pin(async {
            let prefix = prefix("garbage");
            let transport = transport(&prefix).await;
            let member = transport
                .join(&GroupSpec::new("billing", "a").max_payload_bytes(64))
                .await
                .expect("joins");
            let js = raw().await;
            let oversize = event("o-1", 1)
                .with_payload(
                    RawValue::from_string(format!("\"{}\"", "x".repeat(100))).expect("json"),
                )
                .to_json()
                .expect("encodes");
            let mut bad_sequences = Vec::new();
            for payload in [b"not json {".to_vec(), oversize.clone().into_bytes()] {
                let ack = js
                    .publish(format!("{prefix}.main.0"), payload.into())
                    .await
                    .expect("sends")
                    .await
                    .expect("stored");
                bad_sequences.push(ack.sequence.to_string());
            }
            let good = event("o-2", 2);
            transport
                .publish(std::slice::from_ref(&good))
                .await
                .expect("publishes");
            let received = receive_n(&*member, 3, Duration::from_secs(2)).await;
            assert_eq!(received.len(), 1, "only the envelope is handed out");
            assert_eq!(received[0].envelope.id, good.id);
            member.ack(&received[0].entry).await.expect("acknowledges");

            let dead = js
                .get_stream(format!("{prefix}__main__dead"))
                .await
                .expect("the dead-letter stream");
            let mut kept = Vec::new();
            for sequence in 1..=2 {
                let message = dead.get_raw_message(sequence).await.expect("a dead letter");
                let letter: serde_json::Value =
                    serde_json::from_slice(&message.payload).expect("json");
                kept.push(letter);
            }
            for (letter, sequence) in kept.iter().zip(&bad_sequences) {
                assert_eq!(letter["group"], "billing");
                assert_eq!(letter["entry"], sequence.as_str());
                assert_eq!(letter["attempts"], 0);
            }
            assert!(
                kept[0]["error"]
                    .as_str()
                    .unwrap_or("")
                    .contains("not an envelope")
            );
            assert_eq!(kept[0]["raw"], "not json {");
            assert!(kept[1]["error"].as_str().unwrap_or("").contains("oversize"));
            assert_eq!(kept[1]["raw"], oversize.as_str());
            // Every entry acknowledged; none listed as a dead letter (they are no events).
            let deadline = Instant::now() + Duration::from_secs(3);
            loop {
                let info = transport.info().await.expect("info");
                let pending: u64 = info
                    .topics
                    .iter()
                    .flat_map(|t| &t.groups)
                    .map(|g| g.pending)
                    .sum();
                if pending == 0 {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{pending} entries left unacknowledged"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(
                transport
                    .dead_letters(None)
                    .await
                    .expect("lists")
                    .is_empty()
            );
            member.leave().await;
        }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_and_member_names_are_escaped_and_listed_as_given() {
    bounded(
        Duration::from_secs(15),
        Box::pin(async {
            let transport = transport(&prefix("names")).await;
            let group = "billing_v2.$eu west";
            let member = transport
                .join(&GroupSpec::new(group, "host-1/pid 7"))
                .await
                .expect("joins");
            let envelope = event("o-3", 3);
            transport
                .publish(std::slice::from_ref(&envelope))
                .await
                .expect("publishes");
            let received = receive_n(&*member, 1, Duration::from_secs(3)).await;
            assert_eq!(received.len(), 1);
            assert_eq!(received[0].envelope.id, envelope.id);
            member.ack(&received[0].entry).await.expect("acknowledges");
            let info = transport.info().await.expect("info");
            let groups: Vec<&str> = info.topics[0]
                .groups
                .iter()
                .map(|g| g.group.as_str())
                .collect();
            assert_eq!(groups, [group]);
            let consumers: Vec<&str> = info.topics[0].groups[0]
                .consumers
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            assert_eq!(consumers, ["host-1/pid 7"]);
            member.leave().await;
        }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_shard_count_on_the_server_is_refused() {
    bounded(
        Duration::from_secs(10),
        Box::pin(async {
            let prefix = prefix("shards");
            let transport = transport(&prefix).await;
            transport
                .publish(&[event("o-1", 1)])
                .await
                .expect("publishes");
            let other = transport_with(&prefix, SHARDS * 2).await.expect("connects");
            let refused = other.publish(&[event("o-2", 2)]).await;
            assert!(
                matches!(
                    refused,
                    Err(TransportError::ShardCount {
                        configured: 8,
                        recorded: 4,
                        ..
                    })
                ),
                "{refused:?}"
            );
            assert!(other.join(&GroupSpec::new("billing", "b")).await.is_err());
        }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_on_which_owners_keep_dying_is_set_aside_as_a_dead_letter() {
    bounded(
        Duration::from_secs(40),
        Box::pin(async {
            let prefix = prefix("poison");
            let transport = NatsTransport::builder(NatsServer::shared().url())
                .prefix(&prefix)
                .shards(1)
                .lease(LEASE)
                .connect()
                .await
                .expect("connects");
            let poison = event("o-1", 1);
            let next = event("o-1", 2);
            transport
                .publish(&[poison.clone(), next.clone()])
                .await
                .expect("publishes");
            let spec = |n: u32| {
                GroupSpec::new("billing", format!("member-{n}"))
                    .start_from(event_core::transport::StartFrom::Beginning)
            };
            // Five owners in a row take the poison entry and die holding it (dropped without
            // leaving, as a killed process; the next joins once its lease has run out).
            for n in 0..5 {
                let member = transport.join(&spec(n)).await.expect("joins");
                let received = receive_n(&*member, 1, Duration::from_secs(5)).await;
                assert_eq!(received.len(), 1, "owner {n} receives the first entry");
                assert_eq!(received[0].envelope.id, poison.id, "owner {n}");
                drop(member);
                tokio::time::sleep(LEASE + LEASE / 2).await;
            }
            // The sixth sets it aside and goes on with the next entry.
            let member = transport.join(&spec(5)).await.expect("joins");
            let received = receive_n(&*member, 1, Duration::from_secs(5)).await;
            assert_eq!(received.len(), 1);
            assert_eq!(
                received[0].envelope.id, next.id,
                "the poison entry is set aside"
            );
            member.ack(&received[0].entry).await.expect("acknowledges");
            let letters = transport
                .dead_letters(Some("billing"))
                .await
                .expect("lists");
            assert_eq!(letters.len(), 1, "{letters:?}");
            assert_eq!(letters[0].letter.envelope.id, poison.id);
            assert_eq!(letters[0].letter.attempts, 5);
            assert!(
                letters[0].letter.last_error.contains("5 owners in a row"),
                "{}",
                letters[0].letter.last_error
            );
            member.leave().await;
        }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trim_by_age_keeps_what_a_group_has_not_acknowledged_unless_forced() {
    bounded(
        Duration::from_secs(20),
        Box::pin(async {
            use event_core::transport::Retention;

            let transport = transport(&prefix("age")).await;
            let member = transport
                .join(
                    &GroupSpec::new("billing", "a")
                        .start_from(event_core::transport::StartFrom::Beginning),
                )
                .await
                .expect("joins");
            let old: Vec<RawEnvelope> = (0..3).map(|n| event(&format!("o-{n}"), n)).collect();
            transport.publish(&old).await.expect("publishes");
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let young: Vec<RawEnvelope> = (3..5).map(|n| event(&format!("o-{n}"), n)).collect();
            transport.publish(&young).await.expect("publishes");
            let retention = Retention::max_age(Duration::from_secs(1));

            // Nothing acknowledged yet: the group holds the old ones.
            let report = transport.trim(&retention).await.expect("trims");
            assert_eq!(report.removed, 0, "{report:?}");
            assert_eq!(report.held_by, ["billing"]);
            assert_eq!(length(&transport).await, 5);

            // Acknowledged: only the old ones go.
            let received = receive_n(&*member, 5, Duration::from_secs(3)).await;
            assert_eq!(received.len(), 5);
            for entry in &received {
                member.ack(&entry.entry).await.expect("acknowledges");
            }
            let report = transport.trim(&retention).await.expect("trims");
            assert_eq!(report.removed, 3, "{report:?}");
            assert!(report.held_by.is_empty(), "{report:?}");
            assert_eq!(length(&transport).await, 2);

            // Forced, with every entry old: all go, acknowledged or not.
            let report = transport
                .trim(&Retention::max_age(Duration::ZERO).forced())
                .await
                .expect("trims");
            assert_eq!(report.removed, 2, "{report:?}");
            assert_eq!(length(&transport).await, 0);
            member.leave().await;
        }),
    )
    .await;
}
