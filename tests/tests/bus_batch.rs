//! `subscribe_batch` in one process, in memory and on a SQLite store: batch size, order per
//! key, retries of a whole batch, a failing batch split so only its failing event is
//! dead-lettered, ordered dead letters, checkpoints and the inbox, and what a batch handler
//! publishes. (Over a broker: the transport conformance suite's `batch_handlers`.)

use event_core::store::SqliteStore;
use event_core::{
    DomainEvent, Envelope, EventBus, HandlerError, PublishContext, RetryPolicy, SubscriptionOptions,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "meter.read")]
struct MeterRead {
    #[event(partition_key)]
    meter: String,
    seq: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "meter.totalled")]
struct MeterTotalled {
    reads: u32,
}

fn read(meter: u32, seq: u32) -> MeterRead {
    MeterRead {
        meter: format!("m{meter}"),
        seq,
    }
}

/// What a batch subscription saw: the size of each call, and the events of the calls that
/// succeeded.
#[derive(Default)]
struct Seen {
    sizes: Mutex<Vec<usize>>,
    handled: Mutex<Vec<(String, u32)>>,
}

impl Seen {
    fn handled(&self) -> Vec<(String, u32)> {
        self.handled.lock().unwrap().clone()
    }

    fn sizes(&self) -> Vec<usize> {
        self.sizes.lock().unwrap().clone()
    }

    /// Records a call; `Err` when the batch holds `poison`.
    fn call(
        &self,
        batch: &[Envelope<MeterRead>],
        poison: Option<(&str, u32)>,
    ) -> Result<(), HandlerError> {
        self.sizes.lock().unwrap().push(batch.len());
        let poisoned = batch.iter().any(|env| {
            poison.is_some_and(|(meter, seq)| env.payload.meter == meter && env.payload.seq == seq)
        });
        if poisoned {
            return Err(HandlerError::retryable("meter unreachable"));
        }
        self.handled.lock().unwrap().extend(
            batch
                .iter()
                .map(|env| (env.payload.meter.clone(), env.payload.seq)),
        );
        Ok(())
    }
}

/// Asserts that each meter's reads were handled in order, each once.
fn assert_in_order_once(handled: &[(String, u32)]) {
    let distinct: HashSet<&(String, u32)> = handled.iter().collect();
    assert_eq!(distinct.len(), handled.len(), "an event handled twice");
    let mut last: HashMap<&str, u32> = HashMap::new();
    for (meter, seq) in handled {
        if let Some(previous) = last.insert(meter, *seq) {
            assert!(*seq > previous, "{meter}: {seq} handled after {previous}");
        }
    }
}

/// Waits until `check` holds, failing after 10 s.
async fn until(what: &str, check: impl Fn() -> bool) {
    let started = std::time::Instant::now();
    while !check() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not within 10 s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Subscribes a batch handler of at most `max` that waits for `gate` before its first call
/// returns, so that events pile up behind it.
fn gated(bus: &EventBus, max: usize, gate: &Arc<Semaphore>, lanes: usize) -> Arc<Seen> {
    let seen = Arc::new(Seen::default());
    let sink = Arc::clone(&seen);
    let gate = Arc::clone(gate);
    bus.subscribe_batch_with::<MeterRead, _, _>(
        "totals",
        max,
        &SubscriptionOptions::new().concurrency(lanes),
        move |batch| {
            let result = sink.call(&batch, None);
            let gate = Arc::clone(&gate);
            async move {
                let _permit = gate.acquire().await.expect("gate open");
                result
            }
        },
    )
    .expect("subscribes");
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_hold_up_to_max_and_keep_each_keys_order() {
    let bus = EventBus::builder().build();
    let gate = Arc::new(Semaphore::new(0));
    let seen = gated(&bus, 10, &gate, 2);
    for seq in 0..20 {
        for meter in 0..5 {
            bus.publish(read(meter, seq)).await.expect("publishes");
        }
    }
    gate.add_permits(1_000);
    until("100 reads handled", || seen.handled().len() == 100).await;

    assert_in_order_once(&seen.handled());
    let sizes = seen.sizes();
    assert!(sizes.iter().all(|&n| (1..=10).contains(&n)), "{sizes:?}");
    assert!(
        sizes.iter().filter(|&&n| n == 10).count() >= 5,
        "the waiting reads should come in full batches: {sizes:?}"
    );
    bus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_batch_is_retried_whole_then_split_so_only_its_failing_event_is_dead_lettered() {
    let bus = EventBus::builder()
        .retry(
            RetryPolicy::default()
                .max_attempts(3)
                .initial_delay(Duration::from_millis(1))
                .max_delay(Duration::from_millis(2)),
        )
        .build();
    let gate = Arc::new(Semaphore::new(0));
    let seen = Arc::new(Seen::default());
    {
        let sink = Arc::clone(&seen);
        let gate = Arc::clone(&gate);
        bus.subscribe_batch_with::<MeterRead, _, _>(
            "totals",
            8,
            &SubscriptionOptions::new().concurrency(1),
            move |batch| {
                let result = sink.call(&batch, Some(("m1", 3)));
                let gate = Arc::clone(&gate);
                async move {
                    let _permit = gate.acquire().await.expect("gate open");
                    result
                }
            },
        )
        .expect("subscribes");
    }
    for seq in 0..8 {
        for meter in 0..2 {
            bus.publish(read(meter, seq)).await.expect("publishes");
        }
    }
    gate.add_permits(1_000);
    until("15 reads handled", || seen.handled().len() == 15).await;
    let started = std::time::Instant::now();
    while bus.dead_letters().await.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no dead letter"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let handled = seen.handled();
    assert_in_order_once(&handled);
    assert!(!handled.contains(&("m1".to_owned(), 3)));
    let letters = bus.dead_letters().await;
    assert_eq!(letters.len(), 1, "only the failing read: {letters:?}");
    assert_eq!(letters[0].attempts, 3, "retried alone before it was kept");
    assert!(letters[0].last_error.contains("meter unreachable"));
    let sizes = seen.sizes();
    let failing_batches = sizes.iter().filter(|&&n| n > 1).count();
    assert!(
        sizes
            .windows(3)
            .any(|w| w[0] > 1 && w[0] == w[1] && w[1] == w[2]),
        "the failing batch was not tried 3 times whole: {sizes:?} ({failing_batches} batches)"
    );
    bus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_dead_letters_hold_a_keys_later_events_back_from_batches() {
    let bus = EventBus::builder().retry(RetryPolicy::never()).build();
    let seen = Arc::new(Seen::default());
    let fixed = Arc::new(AtomicUsize::new(0));
    {
        let sink = Arc::clone(&seen);
        let fixed = Arc::clone(&fixed);
        bus.subscribe_batch_with::<MeterRead, _, _>(
            "totals",
            8,
            &SubscriptionOptions::new()
                .concurrency(1)
                .ordered_dead_letters(),
            move |batch| {
                let poison = (fixed.load(SeqCst) == 0).then_some(("m1", 1));
                let result = sink.call(&batch, poison);
                async move { result }
            },
        )
        .expect("subscribes");
    }
    for seq in 0..4 {
        for meter in 0..2 {
            bus.publish(read(meter, seq)).await.expect("publishes");
        }
    }
    until("m0's reads and m1's first handled", || {
        seen.handled().len() == 5
    })
    .await;
    let letters = bus.dead_letters().await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].held_back, 2, "m1's reads 2 and 3 wait");
    // A new read of the held key waits too, while other keys flow.
    bus.publish(read(1, 4)).await.expect("publishes");
    bus.publish(read(0, 4)).await.expect("publishes");
    until("m0's fifth read handled", || seen.handled().len() == 6).await;
    assert!(!seen.handled().iter().any(|(m, s)| m == "m1" && *s > 0));

    fixed.store(1, SeqCst);
    bus.redeliver(&letters[0]).await.expect("redelivers");
    until("m1's reads handled", || seen.handled().len() == 10).await;
    let handled = seen.handled();
    assert_in_order_once(&handled);
    let m1: Vec<u32> = handled
        .iter()
        .filter(|(m, _)| m == "m1")
        .map(|(_, s)| *s)
        .collect();
    assert_eq!(m1, [0, 1, 2, 3, 4]);
    bus.shutdown().await;
}

fn durable_bus(path: &Path) -> EventBus {
    EventBus::builder()
        .store(SqliteStore::open(path).expect("opens the store"))
        .poll_interval(Duration::from_millis(20))
        .retry(RetryPolicy::never())
        .build()
}

fn counting(bus: &EventBus) -> Arc<Seen> {
    let seen = Arc::new(Seen::default());
    let sink = Arc::clone(&seen);
    bus.subscribe_batch::<MeterRead, _, _>("totals", 50, move |batch| {
        let result = sink.call(&batch, None);
        async move { result }
    })
    .expect("subscribes");
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_store_handled_batches_pass_the_checkpoint_and_are_not_handled_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meters.db");
    {
        let bus = durable_bus(&path);
        for seq in 0..40 {
            bus.publish(read(seq % 4, seq)).await.expect("publishes");
        }
        let seen = counting(&bus);
        until("40 reads handled", || seen.handled().len() == 40).await;
        assert!(
            seen.sizes().iter().any(|&n| n > 1),
            "stored reads should be read in batches: {:?}",
            seen.sizes()
        );
        bus.shutdown().await;
    }
    let bus = durable_bus(&path);
    let seen = counting(&bus);
    bus.publish(read(0, 40)).await.expect("publishes");
    until("the new read handled", || !seen.handled().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        seen.handled(),
        [("m0".to_owned(), 40)],
        "only the new read after the restart"
    );
    bus.shutdown().await;
}

#[tokio::test]
async fn what_a_batch_handler_publishes_is_one_level_deeper_without_a_borrowed_correlation() {
    let bus = EventBus::builder().build();
    let totals: Arc<Mutex<Vec<Envelope<MeterTotalled>>>> = Arc::default();
    {
        let sink = Arc::clone(&totals);
        bus.subscribe_event::<MeterTotalled, _, _>("audit", move |env| {
            sink.lock().unwrap().push(env);
            async { Ok(()) }
        })
        .expect("subscribes");
    }
    {
        let publisher = bus.clone();
        bus.subscribe_batch::<MeterRead, _, _>("totals", 10, move |batch| {
            let publisher = publisher.clone();
            async move {
                let reads = u32::try_from(batch.len()).unwrap_or(u32::MAX);
                publisher
                    .publish(MeterTotalled { reads })
                    .await
                    .map_err(HandlerError::retryable)?;
                publisher
                    .publish_with(
                        PublishContext::new().correlation_id("batch-run-1"),
                        MeterTotalled { reads },
                    )
                    .await
                    .map_err(HandlerError::retryable)?;
                Ok(())
            }
        })
        .expect("subscribes");
    }
    bus.publish_with(PublishContext::new().correlation_id("c-0"), read(0, 0))
        .await
        .expect("publishes");
    until("two totals", || totals.lock().unwrap().len() == 2).await;
    let totals = totals.lock().unwrap().clone();
    assert_eq!(totals[0].correlation_id, None);
    assert_eq!(totals[0].causation_id, None);
    assert_eq!(totals[0].meta.depth(), 1);
    assert_eq!(totals[1].correlation_id.as_deref(), Some("batch-run-1"));
    bus.shutdown().await;
}
