//! Tenant scoping: a subscription limited to tenants handles only their events, on every
//! path (in memory, from a store, in batches), and a store's timeline filters by tenant.

use event_core::store::{SqliteStore, Store, TimelineQuery};
use event_core::{DomainEvent, EventBus, PublishContext, SubscriptionOptions};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tests::eventually;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "invoice.issued", source = "billing")]
struct InvoiceIssued {
    #[event(partition_key)]
    account: String,
    number: u32,
}

/// Publishes invoices 1..=6 for tenants acme, globex, acme, none, acme, globex.
async fn publish_for_tenants(bus: &EventBus) {
    let tenants = [
        Some("acme"),
        Some("globex"),
        Some("acme"),
        None,
        Some("acme"),
        Some("globex"),
    ];
    for (n, tenant) in (1..).zip(tenants) {
        let context = match tenant {
            Some(tenant) => PublishContext::new().tenant(tenant),
            None => PublishContext::new(),
        };
        let invoice = InvoiceIssued {
            account: "shared-account".into(),
            number: n,
        };
        bus.publish_with(context, invoice).await.unwrap();
    }
}

fn subscribe(bus: &EventBus, name: &str, options: &SubscriptionOptions) -> Arc<Mutex<Vec<u32>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    bus.subscribe_with::<InvoiceIssued, _, _>(name, options, move |env| {
        sink.lock().unwrap().push(env.payload.number);
        async { Ok(()) }
    })
    .unwrap();
    seen
}

#[tokio::test]
async fn a_subscription_limited_to_tenants_handles_only_theirs_in_memory() {
    let bus = EventBus::builder().build();
    let acme = subscribe(
        &bus,
        "acme-ledger",
        &SubscriptionOptions::new().tenants(["acme"]),
    );
    let two = subscribe(
        &bus,
        "acme-and-globex",
        &SubscriptionOptions::new().tenants(["acme", "globex"]),
    );
    let all = subscribe(&bus, "audit", &SubscriptionOptions::new());
    publish_for_tenants(&bus).await;
    bus.shutdown().await;
    assert_eq!(*acme.lock().unwrap(), [1, 3, 5]);
    assert_eq!(*two.lock().unwrap(), [1, 2, 3, 5, 6]);
    assert_eq!(*all.lock().unwrap(), [1, 2, 3, 4, 5, 6]);
    let delivered = bus.metrics().delivered;
    assert_eq!(
        delivered,
        3 + 5 + 6,
        "passed-over events are not counted as delivered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_store_the_subscription_and_the_timeline_filter_by_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("events.db")).unwrap();
    let bus = EventBus::builder()
        .store(store.clone())
        .poll_interval(Duration::from_millis(20))
        .build();
    let globex = subscribe(
        &bus,
        "globex-ledger",
        &SubscriptionOptions::new().tenants(["globex"]),
    );
    publish_for_tenants(&bus).await;
    let audit = subscribe(&bus, "audit", &SubscriptionOptions::new());
    eventually(Duration::from_secs(10), "the audit read everything", || {
        audit.lock().unwrap().len() == 6
    })
    .await;
    bus.shutdown().await;
    assert_eq!(*globex.lock().unwrap(), [2, 6]);
    // The passed-over events are settled: the checkpoint is at the head.
    let checkpoint = store.checkpoint("globex-ledger").await.unwrap();
    assert_eq!(checkpoint, 6);

    let numbers = |page: event_core::store::TimelinePage| -> Vec<u64> {
        page.events.iter().map(|event| event.position).collect()
    };
    let acme = store
        .timeline(&TimelineQuery::partition("shared-account").tenant("acme"))
        .await
        .unwrap();
    assert_eq!(numbers(acme), [1, 3, 5]);
    let first_page = store
        .timeline(
            &TimelineQuery::partition("shared-account")
                .tenant("acme")
                .limit(2)
                .newest_first(),
        )
        .await
        .unwrap();
    let cursor = first_page.next_cursor.clone().expect("a second page");
    assert_eq!(numbers(first_page), [5, 3]);
    let second_page = store
        .timeline(
            &TimelineQuery::partition("shared-account")
                .tenant("acme")
                .limit(2)
                .newest_first()
                .cursor(cursor),
        )
        .await
        .unwrap();
    assert_eq!(numbers(second_page), [1]);
    let everyone = store
        .timeline(&TimelineQuery::partition("shared-account"))
        .await
        .unwrap();
    assert_eq!(everyone.events.len(), 6);
}

#[tokio::test]
async fn a_batch_subscription_limited_to_a_tenant_gets_and_counts_only_its_events() {
    let bus = EventBus::builder().build();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    bus.subscribe_batch_with::<InvoiceIssued, _, _>(
        "acme-batches",
        10,
        &SubscriptionOptions::new().tenants(["acme"]),
        move |batch| {
            sink.lock()
                .unwrap()
                .extend(batch.into_iter().map(|env| env.payload.number));
            async { Ok(()) }
        },
    )
    .unwrap();
    publish_for_tenants(&bus).await;
    bus.shutdown().await;
    assert_eq!(*seen.lock().unwrap(), [1, 3, 5]);
    assert_eq!(bus.metrics().delivered, 3);
}
