//! The in-process bus: each semantic has a test that fails without it.

use event_core::{
    DomainEvent, Envelope, EventBus, HandlerError, PublishContext, PublishError, RawEnvelope,
    RetryPolicy, SubscriptionOptions, WaitError,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(source = "orders-service")]
struct OrderCreated {
    #[event(partition_key)]
    order_id: String,
    seq: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
struct OrderPaid {
    #[event(partition_key)]
    order_id: String,
}

fn created(order_id: &str, seq: u32) -> OrderCreated {
    OrderCreated {
        order_id: order_id.into(),
        seq,
    }
}

type Log<T> = Arc<Mutex<Vec<T>>>;

fn log<T>() -> Log<T> {
    Arc::new(Mutex::new(Vec::new()))
}

/// Subscribes `name` to `E`, each delivery taking `delay`; returns the count of deliveries.
fn count<E: DomainEvent>(bus: &EventBus, name: &str, delay: Duration) -> Arc<AtomicUsize> {
    let handled = Arc::new(AtomicUsize::new(0));
    let h = handled.clone();
    bus.subscribe_event::<E, _, _>(name, move |_| {
        let h = h.clone();
        async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            h.fetch_add(1, SeqCst);
            Ok(())
        }
    })
    .unwrap();
    handled
}

/// A `payments` subscription answering every created order with a paid one, after `delay`,
/// from inside the handler (so correlation and causation carry over).
fn pay_every_order(bus: &EventBus, delay: Duration) {
    let b = bus.clone();
    bus.subscribe_event::<OrderCreated, _, _>("payments", move |env| {
        let b = b.clone();
        async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            b.publish(OrderPaid {
                order_id: env.payload.order_id,
            })
            .await?;
            Ok(())
        }
    })
    .unwrap();
}

#[tokio::test]
async fn every_matching_subscription_gets_every_event() {
    let bus = EventBus::builder().build();
    let (typed, all, orders) = (log(), log(), log());
    let t = typed.clone();
    bus.subscribe_event::<OrderCreated, _, _>("typed", move |env| {
        let t = t.clone();
        async move {
            t.lock().unwrap().push(env.payload.seq);
            Ok(())
        }
    })
    .unwrap();
    let a = all.clone();
    bus.subscribe_pattern("audit", "*", move |raw: RawEnvelope| {
        let a = a.clone();
        async move {
            a.lock().unwrap().push(raw.event_type);
            Ok(())
        }
    })
    .unwrap();
    let o = orders.clone();
    bus.subscribe_pattern("paid-only", "*.paid", move |raw: RawEnvelope| {
        let o = o.clone();
        async move {
            o.lock().unwrap().push(raw.event_type);
            Ok(())
        }
    })
    .unwrap();
    bus.publish(created("o-1", 1)).await.unwrap();
    bus.publish(OrderPaid {
        order_id: "o-1".into(),
    })
    .await
    .unwrap();
    bus.shutdown().await;
    assert_eq!(*typed.lock().unwrap(), [1]);
    assert_eq!(*all.lock().unwrap(), ["order.created", "order.paid"]);
    assert_eq!(*orders.lock().unwrap(), ["order.paid"]);
    let metrics = bus.metrics();
    assert_eq!(
        (metrics.published, metrics.delivered, metrics.in_flight),
        (2, 4, 0)
    );
    assert!(metrics.latency_p50.is_some());
}

#[tokio::test]
async fn subscription_names_are_unique() {
    let bus = EventBus::builder().build();
    bus.subscribe_event::<OrderPaid, _, _>("billing", |_| async { Ok(()) })
        .unwrap();
    let err = bus
        .subscribe_event::<OrderPaid, _, _>("billing", |_| async { Ok(()) })
        .unwrap_err();
    assert!(
        err.to_string().contains("`billing` exists already"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_per_partition_key_with_concurrency_across_keys() {
    let bus = EventBus::builder().build();
    let seen: Log<(String, u32)> = log();
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (s, r, m) = (seen.clone(), running.clone(), most.clone());
    bus.subscribe_with::<OrderCreated, _, _>(
        "fulfillment",
        &SubscriptionOptions::new().concurrency(4),
        move |env| {
            let (s, r, m) = (s.clone(), r.clone(), m.clone());
            async move {
                let now = r.fetch_add(1, SeqCst) + 1;
                m.fetch_max(now, SeqCst);
                // Later events of a key would overtake earlier ones if lanes were not per key.
                let pause = u64::from(env.payload.seq % 3) * 300;
                tokio::time::sleep(Duration::from_micros(pause)).await;
                s.lock()
                    .unwrap()
                    .push((env.payload.order_id.clone(), env.payload.seq));
                r.fetch_sub(1, SeqCst);
                Ok(())
            }
        },
    )
    .unwrap();
    let keys = ["o-1", "o-2", "o-3", "o-4", "o-5", "o-6", "o-7", "o-8"];
    for seq in 0..200 {
        bus.publish(created(keys[seq as usize % keys.len()], seq))
            .await
            .unwrap();
    }
    bus.shutdown().await;
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 200);
    for key in keys {
        let order: Vec<u32> = seen
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, s)| *s)
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{key}: {order:?}");
        assert_eq!(order.len(), 25);
    }
    assert!(most.load(SeqCst) > 1, "keys were handled concurrently");
}

#[tokio::test(start_paused = true)]
async fn backpressure_blocks_instead_of_dropping() {
    let bus = EventBus::builder().queue_capacity(1).build();
    let gate = Arc::new(Semaphore::new(0));
    let handled = log();
    let (g, h) = (gate.clone(), handled.clone());
    bus.subscribe_event::<OrderCreated, _, _>("slow", move |env| {
        let (g, h) = (g.clone(), h.clone());
        async move {
            g.acquire().await.unwrap().forget();
            h.lock().unwrap().push(env.payload.seq);
            Ok(())
        }
    })
    .unwrap();
    bus.publish(created("o-1", 1)).await.unwrap(); // taken by the handler
    tokio::task::yield_now().await;
    bus.publish(created("o-1", 2)).await.unwrap(); // fills the queue
    // The queue is full: try_publish says so, publish waits.
    let full = bus.try_publish(created("o-1", 3)).unwrap_err();
    assert!(matches!(full, PublishError::Full { ref subscription } if subscription == "slow"));
    let waiting =
        tokio::time::timeout(Duration::from_secs(5), bus.publish(created("o-1", 3))).await;
    assert!(
        waiting.is_err(),
        "publish must wait while the queue is full"
    );
    gate.add_permits(10);
    bus.publish(created("o-1", 3)).await.unwrap();
    bus.shutdown().await;
    assert_eq!(*handled.lock().unwrap(), [1, 2, 3], "nothing dropped");
    assert_eq!(
        bus.metrics().published,
        3,
        "the failed try_publish was not counted"
    );
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_within_bounds_then_succeed() {
    let policy = RetryPolicy::default()
        .max_attempts(5)
        .initial_delay(Duration::from_millis(100))
        .max_delay(Duration::from_millis(300));
    let bus = EventBus::builder().retry(policy).build();
    let attempts: Log<Instant> = log();
    let a = attempts.clone();
    bus.subscribe_event::<OrderPaid, _, _>("billing", move |_| {
        let a = a.clone();
        async move {
            let mut a = a.lock().unwrap();
            a.push(Instant::now());
            if a.len() < 4 {
                return Err(HandlerError::retryable("gateway timed out"));
            }
            Ok(())
        }
    })
    .unwrap();
    bus.publish(OrderPaid {
        order_id: "o-1".into(),
    })
    .await
    .unwrap();
    bus.shutdown().await;
    let attempts = attempts.lock().unwrap().clone();
    assert_eq!(attempts.len(), 4);
    for (n, pair) in attempts.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        let ceiling = policy.ceiling(u32::try_from(n).unwrap() + 1);
        assert!(
            gap >= ceiling / 2 && gap <= ceiling,
            "retry {n}: {gap:?} not in [{:?}, {ceiling:?}]",
            ceiling / 2
        );
    }
    // The cap: the third delay would be 400 ms uncapped.
    assert_eq!(policy.ceiling(3), Duration::from_millis(300));
    let metrics = bus.metrics();
    assert_eq!(
        (metrics.retried, metrics.delivered, metrics.dead_lettered),
        (3, 1, 0)
    );
    assert!(bus.dead_letters().await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn exhausted_and_permanent_failures_are_dead_lettered_with_their_error() {
    let bus = EventBus::builder()
        .retry(RetryPolicy::default().max_attempts(3))
        .build();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    bus.subscribe_event::<OrderCreated, _, _>("billing", move |env| {
        let c = c.clone();
        async move {
            c.fetch_add(1, SeqCst);
            if env.payload.seq == 1 {
                Err(HandlerError::retryable("ledger unavailable"))
            } else {
                Err(HandlerError::permanent("order does not exist"))
            }
        }
    })
    .unwrap();
    let retried = bus.publish(created("o-1", 1)).await.unwrap();
    let permanent = bus.publish(created("o-2", 2)).await.unwrap();
    bus.shutdown().await;
    assert_eq!(calls.load(SeqCst), 3 + 1);
    let dead = bus.dead_letters().await;
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[0].subscription, "billing");
    assert_eq!(dead[0].envelope.id, retried.id);
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(dead[0].last_error, "ledger unavailable");
    assert_eq!(
        dead[0].envelope.decode::<OrderCreated>().unwrap().payload,
        retried.payload
    );
    assert_eq!(dead[1].envelope.id, permanent.id);
    assert_eq!(dead[1].attempts, 1);
    assert_eq!(dead[1].last_error, "order does not exist");
    assert_eq!(bus.metrics().dead_lettered, 2);
}

#[tokio::test(start_paused = true)]
async fn dead_letters_can_be_redelivered() {
    let bus = EventBus::builder().retry(RetryPolicy::never()).build();
    let healthy = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let handled = log();
    let (ok, h) = (healthy.clone(), handled.clone());
    bus.subscribe_event::<OrderPaid, _, _>("billing", move |env| {
        let (ok, h) = (ok.clone(), h.clone());
        async move {
            if !ok.load(SeqCst) {
                return Err(HandlerError::retryable("ledger unavailable"));
            }
            h.lock().unwrap().push(env.id);
            Ok(())
        }
    })
    .unwrap();
    let env = bus
        .publish(OrderPaid {
            order_id: "o-1".into(),
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let dead = bus.dead_letters().await;
    assert_eq!(dead.len(), 1);
    healthy.store(true, SeqCst);
    bus.redeliver(&dead[0]).await.unwrap();
    assert!(
        bus.redeliver(&dead[0]).await.is_err(),
        "a letter is redelivered once"
    );
    bus.shutdown().await;
    assert_eq!(*handled.lock().unwrap(), [env.id]);
    assert!(bus.dead_letters().await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_panicking_handler_is_a_failure_not_a_crash() {
    let bus = EventBus::builder()
        .retry(RetryPolicy::default().max_attempts(2))
        .build();
    let handled = log();
    let h = handled.clone();
    bus.subscribe_event::<OrderCreated, _, _>("fragile", move |env| {
        let h = h.clone();
        async move {
            assert!(env.payload.seq != 2, "boom on {}", env.payload.seq);
            h.lock().unwrap().push(env.payload.seq);
            Ok(())
        }
    })
    .unwrap();
    for seq in 1..=3 {
        bus.publish(created("o-1", seq)).await.unwrap();
    }
    bus.shutdown().await;
    assert_eq!(
        *handled.lock().unwrap(),
        [1, 3],
        "the bus went on after the panic"
    );
    let dead = bus.dead_letters().await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 2);
    assert!(
        dead[0].last_error.contains("handler panicked: boom on 2"),
        "{}",
        dead[0].last_error
    );
}

#[tokio::test(start_paused = true)]
async fn wait_for_finds_the_reply_or_times_out() {
    let bus = EventBus::builder().build();
    // A responder: answers every created order with a paid one, in the same correlation.
    pay_every_order(&bus, Duration::ZERO);
    let request = bus
        .publish_with(
            PublishContext::new().correlation_id("c-1"),
            created("o-1", 1),
        )
        .await
        .unwrap();
    let reply = bus
        .wait_for::<OrderPaid>("c-1", Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(reply.payload.order_id, "o-1");
    assert_eq!(reply.correlation_id.as_deref(), Some("c-1"));
    assert_eq!(reply.causation_id, Some(request.id.to_string().into()));

    let started = Instant::now();
    let err = bus
        .wait_for::<OrderPaid>("c-2", Duration::from_secs(3))
        .await
        .unwrap_err();
    assert!(matches!(err, WaitError::Timeout { .. }), "{err}");
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    bus.shutdown().await;
}

#[tokio::test]
async fn shutdown_drains_in_flight_deliveries() {
    let bus = EventBus::builder().build();
    let handled = count::<OrderCreated>(&bus, "slow", Duration::from_millis(2));
    for seq in 0..20 {
        bus.publish(created("o-1", seq)).await.unwrap();
    }
    assert!(
        handled.load(SeqCst) < 20,
        "still in flight when shutdown starts"
    );
    bus.shutdown().await;
    assert_eq!(handled.load(SeqCst), 20);
    assert_eq!(bus.metrics().in_flight, 0);
    assert!(matches!(
        bus.publish(created("o-1", 99)).await,
        Err(PublishError::Closed)
    ));
}

#[tokio::test]
async fn bad_payloads_are_dead_lettered_with_the_decode_error() {
    let bus = EventBus::builder().max_payload_bytes(200).build();
    let handled = count::<OrderCreated>(&bus, "fulfillment", Duration::ZERO);
    let good = Envelope::new(created("o-1", 1)).to_raw().unwrap();
    let with_payload = |version: u32, payload: &str| {
        let mut raw = good.clone();
        raw.id = uuid::Uuid::now_v7();
        raw.version = version;
        raw.payload = serde_json::value::RawValue::from_string(payload.to_owned()).unwrap();
        raw
    };
    let cases = [
        (
            with_payload(1, r#"{"order_id":7}"#),
            "does not match its type: invalid type: integer [redacted]",
        ),
        (
            with_payload(2, r#"{"order_id":"o-1","seq":1}"#),
            "written by a newer producer",
        ),
        (
            with_payload(
                1,
                &format!(r#"{{"order_id":"{}","seq":1}}"#, "x".repeat(300)),
            ),
            "exceeds the limit of 200 bytes",
        ),
    ];
    for (raw, _) in &cases {
        bus.publish_raw(raw.clone()).await.unwrap();
    }
    bus.publish_raw(good.clone()).await.unwrap();
    bus.shutdown().await;
    assert_eq!(
        handled.load(SeqCst),
        1,
        "only the good event reached the handler"
    );
    let dead = bus.dead_letters().await;
    assert_eq!(dead.len(), 3);
    for ((raw, expected), letter) in cases.iter().zip(&dead) {
        assert_eq!(letter.envelope.id, raw.id);
        assert_eq!(letter.attempts, 0);
        assert!(
            letter.last_error.contains(expected),
            "{}",
            letter.last_error
        );
    }
}

#[tokio::test]
async fn handlers_carry_correlation_and_causation() {
    let bus = EventBus::builder().build();
    pay_every_order(&bus, Duration::ZERO);
    let paid = log();
    let p = paid.clone();
    bus.subscribe_event::<OrderPaid, _, _>("timeline", move |env| {
        let p = p.clone();
        async move {
            p.lock().unwrap().push(env);
            Ok(())
        }
    })
    .unwrap();
    let ctx = PublishContext::new()
        .correlation_id("c-9")
        .trace_id("t-9")
        .tenant("acme")
        .actor("u-1");
    let first = bus.publish_with(ctx, created("o-1", 1)).await.unwrap();
    assert_eq!(first.meta.tenant_id(), Some("acme"));
    assert_eq!(first.meta.actor_id(), Some("u-1"));
    let outside = bus
        .publish(OrderPaid {
            order_id: "o-2".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        (outside.correlation_id.clone(), outside.causation_id.clone()),
        (None, None)
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    bus.shutdown().await;
    let paid = paid.lock().unwrap();
    let caused = paid.iter().find(|e| e.payload.order_id == "o-1").unwrap();
    assert_eq!(caused.correlation_id.as_deref(), Some("c-9"));
    assert_eq!(caused.causation_id, Some(first.id.to_string().into()));
    assert_eq!(caused.trace_id.as_deref(), Some("t-9"));
}

#[tokio::test]
async fn a_publish_inside_a_scope_takes_its_context() {
    let bus = EventBus::builder().build();
    let ambient = PublishContext::new()
        .correlation_id("req-1")
        .tenant("acme")
        .trace_id("t-1")
        .actor("u-1")
        .source("checkout-api");
    let (plain, explicit, tried) = ambient
        .scope(async {
            assert_eq!(
                PublishContext::current().and_then(|c| c.get_correlation_id().map(str::to_owned)),
                Some("req-1".to_owned())
            );
            let plain = bus.publish(created("o-1", 1)).await.unwrap();
            let explicit = bus
                .publish_with(
                    PublishContext::new()
                        .correlation_id("mine")
                        .tenant("globex")
                        .source("batch"),
                    created("o-2", 1),
                )
                .await
                .unwrap();
            let tried = bus.try_publish(created("o-3", 1)).unwrap();
            (plain, explicit, tried)
        })
        .await;
    assert_eq!(plain.correlation_id.as_deref(), Some("req-1"));
    assert_eq!(plain.meta.tenant_id(), Some("acme"));
    assert_eq!(plain.trace_id.as_deref(), Some("t-1"));
    assert_eq!(plain.meta.actor_id(), Some("u-1"));
    assert_eq!(plain.source.as_deref(), Some("checkout-api"));
    assert_eq!(tried.correlation_id.as_deref(), Some("req-1"));
    // What the publish names wins; what it does not name still comes from the scope.
    assert_eq!(explicit.correlation_id.as_deref(), Some("mine"));
    assert_eq!(explicit.meta.tenant_id(), Some("globex"));
    assert_eq!(explicit.source.as_deref(), Some("batch"));
    assert_eq!(explicit.trace_id.as_deref(), Some("t-1"));
    assert_eq!(explicit.meta.actor_id(), Some("u-1"));
    // Outside the scope, nothing is set.
    assert_eq!(PublishContext::current(), None);
    let outside = bus.publish(created("o-4", 1)).await.unwrap();
    assert_eq!(outside.correlation_id, None);
    assert_eq!(outside.meta.tenant_id(), None);
    assert_eq!(outside.source.as_deref(), Some("orders-service"));
}

#[tokio::test]
async fn a_spawned_task_does_not_inherit_the_scope() {
    let bus = EventBus::builder().build();
    let (spawned, passed_on) = PublishContext::new()
        .correlation_id("req-2")
        .scope(async {
            let b = bus.clone();
            let spawned = tokio::spawn(async move { b.publish(created("o-1", 1)).await })
                .await
                .unwrap()
                .unwrap();
            // Passed on by hand, it applies.
            let b = bus.clone();
            let context = PublishContext::current().unwrap();
            let passed_on =
                tokio::spawn(context.scope(async move { b.publish(created("o-2", 1)).await }))
                    .await
                    .unwrap()
                    .unwrap();
            (spawned, passed_on)
        })
        .await;
    assert_eq!(spawned.correlation_id, None);
    assert_eq!(passed_on.correlation_id.as_deref(), Some("req-2"));
}

#[tokio::test]
async fn inside_a_handler_the_handled_events_ids_win_over_the_scope() {
    let bus = EventBus::builder().build();
    let paid = log();
    let (p, b) = (paid.clone(), bus.clone());
    // The handler publishes inside a scope of its own: its follow-up keeps the chain.
    bus.subscribe_event::<OrderCreated, _, _>("payments", move |env| {
        let (p, b) = (p.clone(), b.clone());
        PublishContext::new()
            .correlation_id("ambient")
            .tenant("acme")
            .scope(async move {
                let follow_up = b
                    .publish(OrderPaid {
                        order_id: env.payload.order_id,
                    })
                    .await?;
                p.lock().unwrap().push(follow_up);
                Ok(())
            })
    })
    .unwrap();
    let first = bus
        .publish_with(
            PublishContext::new().correlation_id("c-1"),
            created("o-1", 1),
        )
        .await
        .unwrap();
    bus.shutdown().await;
    let paid = paid.lock().unwrap();
    assert_eq!(paid[0].correlation_id.as_deref(), Some("c-1"));
    assert_eq!(paid[0].causation_id, Some(first.id.to_string().into()));
    // The handler scope carries no tenant: the ambient one fills it.
    assert_eq!(paid[0].meta.tenant_id(), Some("acme"));
}

#[test]
fn public_types_are_send_and_sync() {
    fn is<T: Send + Sync>() {}
    is::<EventBus>();
    is::<event_core::DeadLetter>();
    is::<PublishError>();
    is::<WaitError>();
    is::<HandlerError>();
    is::<Envelope<OrderCreated>>();
    is::<RawEnvelope>();
}

#[tokio::test]
async fn handlers_may_publish_while_shutdown_drains() {
    let bus = EventBus::builder().build();
    pay_every_order(&bus, Duration::from_millis(5));
    let paid = count::<OrderPaid>(&bus, "billing", Duration::ZERO);
    for seq in 0..5 {
        bus.publish(created("o-1", seq)).await.unwrap();
    }
    bus.shutdown().await;
    assert_eq!(
        paid.load(SeqCst),
        5,
        "follow-up events published during the drain were delivered"
    );
    assert!(bus.dead_letters().await.is_empty());
    assert!(matches!(
        bus.publish(created("o-1", 9)).await,
        Err(PublishError::Closed)
    ));
}
