//! The registry lists every event linked into the binary, sorted, each once.

use event_core::{DomainEvent, Registry};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

// Declared out of order on purpose: the registry sorts by (name, version).
#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "order.paid")]
struct OrderPaid {
    order_id: String,
}

#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "order.created", version = 2, previous = OrderCreatedV1)]
struct OrderCreated {
    order_id: String,
    total_cents: u64,
}

#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "order.created")]
struct OrderCreatedV1 {
    order_id: String,
}

impl From<OrderCreatedV1> for OrderCreated {
    fn from(v1: OrderCreatedV1) -> Self {
        OrderCreated {
            order_id: v1.order_id,
            total_cents: 0,
        }
    }
}

#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
struct InvoiceIssued {
    invoice_id: String,
}

fn keys(registry: &Registry) -> Vec<(&'static str, u32)> {
    registry.iter().map(|d| (d.name(), d.version())).collect()
}

#[test]
fn sorted_by_name_then_version() {
    let registry = event_core::registry().unwrap();
    assert_eq!(
        keys(&registry),
        [
            ("invoice.issued", 1),
            ("order.created", 1),
            ("order.created", 2),
            ("order.paid", 1)
        ]
    );
    assert_eq!(registry.len(), 4);
    assert!(!registry.is_empty());
}

#[test]
fn lookup_by_name_and_version() {
    let registry = event_core::registry().unwrap();
    let v2 = registry.get("order.created", 2).unwrap();
    assert!(std::ptr::eq(v2, OrderCreated::descriptor()));
    assert!(registry.get("order.created", 3).is_none());
    assert!(registry.get("order.shipped", 1).is_none());
    let versions: Vec<u32> = registry
        .versions("order.created")
        .map(event_core::EventDescriptor::version)
        .collect();
    assert_eq!(versions, [1, 2]);
    assert_eq!(registry.versions("order").count(), 0);
    let previous = v2.previous().unwrap();
    assert!(std::ptr::eq(previous, OrderCreatedV1::descriptor()));
}

#[test]
fn registering_a_linked_event_by_hand_keeps_it_once() {
    event_core::register::<OrderPaid>();
    event_core::register::<OrderPaid>();
    let registry = event_core::registry().unwrap();
    assert_eq!(registry.versions("order.paid").count(), 1);
    assert_eq!(registry.len(), 4);
}

#[test]
fn from_descriptors_dedupes_and_sorts() {
    let registry = Registry::from_descriptors([
        OrderPaid::descriptor(),
        InvoiceIssued::descriptor(),
        OrderPaid::descriptor(),
    ])
    .unwrap();
    assert_eq!(keys(&registry), [("invoice.issued", 1), ("order.paid", 1)]);
}
