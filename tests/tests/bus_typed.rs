//! The typed in-process path, the loop guard, oversize events and ordered dead letters, on
//! the in-memory bus. Each test fails without the behaviour it names.

use event_core::{
    DomainEvent, EventBus, EventUnion, HandlerError, PublishError, RetryPolicy, SubscriptionOptions,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize, Serializer};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

/// How many times a `Counted` value was serialized, process-wide; each test uses its own
/// event type so that tests running in parallel do not mix their counts.
static SERIALIZED_A: AtomicUsize = AtomicUsize::new(0);
static SERIALIZED_B: AtomicUsize = AtomicUsize::new(0);

#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's serialize_with signature"
)]
fn counted_a<S: Serializer>(n: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    SERIALIZED_A.fetch_add(1, SeqCst);
    serializer.serialize_u64(*n)
}

#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's serialize_with signature"
)]
fn counted_b<S: Serializer>(n: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    SERIALIZED_B.fetch_add(1, SeqCst);
    serializer.serialize_u64(*n)
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "stock.reserved")]
struct StockReserved {
    #[event(partition_key)]
    sku: String,
    #[serde(serialize_with = "counted_a")]
    n: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "stock.released")]
struct StockReleased {
    #[event(partition_key)]
    sku: String,
    #[serde(serialize_with = "counted_b")]
    n: u64,
}

#[tokio::test]
async fn typed_subscriptions_get_clones_and_no_json_is_encoded() {
    let bus = EventBus::builder().build();
    let seen = Arc::new(Mutex::new(Vec::new()));
    for name in ["a", "b", "c"] {
        let seen = Arc::clone(&seen);
        bus.subscribe_event::<StockReserved, _, _>(name, move |env| {
            seen.lock()
                .unwrap()
                .push((env.payload.n, env.partition_key().map(str::to_owned)));
            async { Ok(()) }
        })
        .unwrap();
    }
    for n in 0..10 {
        let env = bus
            .publish(StockReserved {
                sku: "s-1".into(),
                n,
            })
            .await
            .unwrap();
        assert_eq!(env.payload.n, n);
    }
    bus.shutdown().await;
    assert_eq!(seen.lock().unwrap().len(), 30);
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .all(|(_, key)| key.as_deref() == Some("s-1"))
    );
    assert_eq!(
        SERIALIZED_A.load(SeqCst),
        0,
        "nothing serialized on the typed path"
    );
}

#[tokio::test]
async fn a_pattern_subscription_makes_the_bus_encode_once_per_publish() {
    let bus = EventBus::builder().build();
    let raw_payloads = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&raw_payloads);
    bus.subscribe_pattern("audit", "stock.*", move |raw| {
        sink.lock().unwrap().push(raw.payload.get().to_owned());
        async { Ok(()) }
    })
    .unwrap();
    bus.subscribe_pattern("audit-2", "*", |_| async { Ok(()) })
        .unwrap();
    bus.subscribe_event::<StockReleased, _, _>("typed", |_| async { Ok(()) })
        .unwrap();
    for n in 0..5 {
        bus.publish(StockReleased {
            sku: "s-2".into(),
            n,
        })
        .await
        .unwrap();
    }
    bus.shutdown().await;
    assert_eq!(raw_payloads.lock().unwrap()[4], r#"{"sku":"s-2","n":4}"#);
    assert_eq!(
        SERIALIZED_B.load(SeqCst),
        5,
        "one encoding per publish, shared"
    );
}

/// Version 1 of an event, and version 2 upcast from it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "parcel.weighed", version = 1)]
struct ParcelWeighedV1 {
    grams: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "parcel.weighed", version = 2, previous = ParcelWeighedV1)]
struct ParcelWeighed {
    kilograms: f64,
    /// Set only by the typed upcast: JSON decoding never fills it.
    #[serde(skip)]
    upcast_in_process: bool,
}

impl From<ParcelWeighedV1> for ParcelWeighed {
    #[allow(clippy::cast_precision_loss, reason = "test weights are small")]
    fn from(v1: ParcelWeighedV1) -> Self {
        ParcelWeighed {
            kilograms: v1.grams as f64 / 1000.0,
            upcast_in_process: true,
        }
    }
}

#[derive(Debug, Clone, EventUnion)]
enum Parcels {
    Weighed(ParcelWeighed),
}

#[tokio::test]
async fn a_union_naming_a_newer_version_gets_older_events_upcast_typed() {
    let bus = EventBus::builder().build();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    bus.subscribe::<Parcels, _, _>("shipping", move |env| {
        let Parcels::Weighed(weighed) = env.payload;
        sink.lock()
            .unwrap()
            .push((env.version, weighed.kilograms, weighed.upcast_in_process));
        async { Ok(()) }
    })
    .unwrap();
    bus.publish(ParcelWeighedV1 { grams: 1500 }).await.unwrap();
    bus.shutdown().await;
    assert_eq!(*seen.lock().unwrap(), [(2, 1.5, true)]);
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "photo.uploaded")]
struct PhotoUploaded {
    bytes: String,
}

#[tokio::test]
async fn an_oversize_event_fails_the_publish_where_the_bus_encodes_it() {
    let bus = EventBus::builder().max_payload_bytes(1024).build();
    let typed = Arc::new(AtomicUsize::new(0));
    let t = Arc::clone(&typed);
    bus.subscribe_event::<PhotoUploaded, _, _>("thumbnails", move |_| {
        t.fetch_add(1, SeqCst);
        async { Ok(()) }
    })
    .unwrap();
    let big = || PhotoUploaded {
        bytes: "x".repeat(4096),
    };
    // Typed delivery in process encodes nothing: no limit to apply.
    bus.publish(big()).await.unwrap();
    bus.subscribe_pattern("archive", "photo.*", |_| async { Ok(()) })
        .unwrap();
    let error = bus.publish(big()).await.unwrap_err();
    assert!(
        matches!(
            error,
            PublishError::TooLarge { bytes, limit: 1024, .. } if bytes > 4096
        ),
        "{error}"
    );
    assert!(error.to_string().contains("photo.uploaded"), "{error}");
    bus.shutdown().await;
    assert_eq!(typed.load(SeqCst), 1, "the refused publish reached nobody");
    assert!(
        bus.dead_letters().await.is_empty(),
        "refused, not dead-lettered"
    );
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "ping.sent")]
struct PingSent {
    #[event(partition_key)]
    chat: String,
}

#[tokio::test]
async fn a_handler_that_republishes_what_it_consumes_ends_in_one_dead_letter() {
    let bus = EventBus::builder().max_causation_depth(10).build();
    let handled = Arc::new(AtomicUsize::new(0));
    let (b, h) = (bus.clone(), Arc::clone(&handled));
    bus.subscribe_event::<PingSent, _, _>("echo", move |env| {
        let (b, h) = (b.clone(), Arc::clone(&h));
        async move {
            h.fetch_add(1, SeqCst);
            b.publish(env.payload).await?;
            Ok(())
        }
    })
    .unwrap();
    let first = bus.publish(PingSent { chat: "c-1".into() }).await.unwrap();
    assert_eq!(first.meta.depth(), 0);
    tokio::time::timeout(std::time::Duration::from_secs(10), bus.shutdown())
        .await
        .expect("the loop stops");
    // Depths 0 to 10 are handled; the publish at depth 11 is refused.
    assert_eq!(handled.load(SeqCst), 11);
    let dead = bus.dead_letters().await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].envelope.meta.depth(), 10);
    assert!(
        dead[0].last_error.contains("event loop"),
        "{}",
        dead[0].last_error
    );
    assert!(
        dead[0].last_error.contains("depth 11"),
        "{}",
        dead[0].last_error
    );
    assert_eq!(dead[0].attempts, 1, "not retried: it would loop again");
}

#[tokio::test]
async fn the_loop_guard_dead_letters_even_when_the_handler_swallows_the_error() {
    let bus = EventBus::builder().max_causation_depth(3).build();
    let refused = Arc::new(Mutex::new(Vec::new()));
    let (b, r) = (bus.clone(), Arc::clone(&refused));
    bus.subscribe_event::<PingSent, _, _>("echo", move |env| {
        let (b, r) = (b.clone(), Arc::clone(&r));
        async move {
            if let Err(error) = b.publish(env.payload).await {
                r.lock().unwrap().push(error.to_string());
            }
            Ok(())
        }
    })
    .unwrap();
    bus.publish(PingSent { chat: "c-2".into() }).await.unwrap();
    bus.shutdown().await;
    assert_eq!(refused.lock().unwrap().len(), 1);
    assert_eq!(bus.dead_letters().await.len(), 1);
    assert_eq!(bus.metrics().dead_lettered, 1);
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "account.credited")]
struct AccountCredited {
    #[event(partition_key)]
    account: String,
    seq: u32,
}

fn credited(account: &str, seq: u32) -> AccountCredited {
    AccountCredited {
        account: account.into(),
        seq,
    }
}

/// An ordered subscription that fails `seq` values in `failing`, recording what it handled.
fn ledger(bus: &EventBus, failing: &Arc<Mutex<Vec<u32>>>) -> Arc<Mutex<Vec<(String, u32)>>> {
    let handled = Arc::new(Mutex::new(Vec::new()));
    let (h, f) = (Arc::clone(&handled), Arc::clone(failing));
    let options = SubscriptionOptions::new()
        .ordered_dead_letters()
        .retry(RetryPolicy::never());
    bus.subscribe_with::<AccountCredited, _, _>("ledger", &options, move |env| {
        let result = if f.lock().unwrap().contains(&env.payload.seq) {
            Err(HandlerError::permanent("ledger offline"))
        } else {
            h.lock()
                .unwrap()
                .push((env.payload.account, env.payload.seq));
            Ok(())
        };
        async move { result }
    })
    .unwrap();
    handled
}

#[tokio::test]
async fn ordered_dead_letters_hold_back_their_key_until_redelivered() {
    let bus = EventBus::builder().build();
    let failing = Arc::new(Mutex::new(vec![2]));
    let handled = ledger(&bus, &failing);
    for (account, seq) in [("a", 1), ("a", 2), ("b", 3), ("a", 4), ("b", 5), ("a", 6)] {
        bus.publish(credited(account, seq)).await.unwrap();
    }
    wait_until_async(&bus, |dead| dead.first().is_some_and(|d| d.held_back == 2)).await;
    assert_eq!(
        *handled.lock().unwrap(),
        [("a".into(), 1), ("b".into(), 3), ("b".into(), 5)],
        "key `a` stops at its dead letter; `b` flows"
    );
    let dead = bus.dead_letters().await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].held_back, 2, "a-4 and a-6 wait behind a-2");

    failing.lock().unwrap().clear();
    bus.redeliver(&dead[0]).await.unwrap();
    bus.publish(credited("a", 7)).await.unwrap();
    bus.shutdown().await;
    let a: Vec<u32> = handled
        .lock()
        .unwrap()
        .iter()
        .filter(|(account, _)| account == "a")
        .map(|(_, seq)| *seq)
        .collect();
    assert_eq!(
        a,
        [1, 2, 4, 6, 7],
        "the dead letter first, then what it held back, in order"
    );
    assert!(bus.dead_letters().await.is_empty());
}

#[tokio::test]
async fn discarding_an_ordered_dead_letter_releases_what_it_held_back() {
    let bus = EventBus::builder().build();
    let failing = Arc::new(Mutex::new(vec![1]));
    let handled = ledger(&bus, &failing);
    for seq in 1..=3 {
        bus.publish(credited("a", seq)).await.unwrap();
    }
    wait_until_async(&bus, |dead| dead.first().is_some_and(|d| d.held_back == 2)).await;
    let dead = bus.dead_letters().await;
    bus.discard(&dead[0]).await.unwrap();
    bus.shutdown().await;
    assert_eq!(*handled.lock().unwrap(), [("a".into(), 2), ("a".into(), 3)]);
    assert!(bus.dead_letters().await.is_empty(), "discarded for good");
}

#[tokio::test]
async fn without_the_option_a_dead_letter_holds_nothing_back() {
    let bus = EventBus::builder().retry(RetryPolicy::never()).build();
    let handled = Arc::new(Mutex::new(Vec::new()));
    let h = Arc::clone(&handled);
    bus.subscribe_event::<AccountCredited, _, _>("ledger", move |env| {
        let fail = env.payload.seq == 1;
        if !fail {
            h.lock().unwrap().push(env.payload.seq);
        }
        async move {
            if fail {
                return Err(HandlerError::permanent("no"));
            }
            Ok(())
        }
    })
    .unwrap();
    for seq in 1..=3 {
        bus.publish(credited("a", seq)).await.unwrap();
    }
    bus.shutdown().await;
    assert_eq!(*handled.lock().unwrap(), [2, 3]);
    assert_eq!(bus.dead_letters().await[0].held_back, 0);
}

async fn wait_until_async(bus: &EventBus, done: impl Fn(&[event_core::DeadLetter]) -> bool) {
    for _ in 0..500 {
        if done(&bus.dead_letters().await) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("not reached within 5 s");
}
