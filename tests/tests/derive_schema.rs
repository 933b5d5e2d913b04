//! The descriptor's schema is exactly what schemars generates for the type, for every shape:
//! nested, recursive, renamed, with enums, maps and options.

use event_core::DomainEvent;
use schemars::{JsonSchema, schema_for};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Serialize, Deserialize, JsonSchema)]
struct Address {
    line1: String,
    postal_code: Option<String>,
}

#[derive(Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Carrier {
    Dhl,
    Ups,
    Other(String),
}

/// A shipment was drafted.
#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[serde(rename_all = "camelCase")]
struct ShipmentDrafted {
    #[event(partition_key)]
    shipment_id: String,
    ship_to: Address,
    alternatives: Vec<Address>,
    carrier: Option<Carrier>,
    weights: BTreeMap<String, f64>,
    labels: HashMap<String, String>,
    #[schemars(range(min = 1))]
    parcels: u32,
}

/// A category tree changed: the type refers to itself.
#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
struct CatalogTreeChanged {
    root: Node,
}

#[derive(Clone, Serialize, Deserialize, JsonSchema)]
struct Node {
    name: String,
    children: Vec<Node>,
}

/// The event itself is recursive.
#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
struct ThreadReplied {
    text: String,
    parent: Option<Box<ThreadReplied>>,
}

#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[schemars(rename = "InvoiceVoidedPayload", description = "Set by schemars.")]
struct InvoiceVoided {
    invoice_id: String,
}

#[test]
fn descriptor_schema_equals_schemars_schema_for() {
    let pairs = [
        (
            ShipmentDrafted::descriptor().schema(),
            schema_for!(ShipmentDrafted),
        ),
        (
            CatalogTreeChanged::descriptor().schema(),
            schema_for!(CatalogTreeChanged),
        ),
        (
            ThreadReplied::descriptor().schema(),
            schema_for!(ThreadReplied),
        ),
        (
            InvoiceVoided::descriptor().schema(),
            schema_for!(InvoiceVoided),
        ),
    ];
    for (ours, theirs) in pairs {
        assert_eq!(ours, theirs);
    }
    let tree = CatalogTreeChanged::descriptor().schema();
    assert!(tree.as_value()["$defs"]["Node"].is_object(), "{tree:?}");
    let thread = ThreadReplied::descriptor().schema();
    assert_eq!(thread.as_value()["title"], "ThreadReplied");
    assert_eq!(
        InvoiceVoided::descriptor().schema().as_value()["title"],
        "InvoiceVoidedPayload"
    );
}

#[test]
fn schemas_do_not_leak_between_calls() {
    // Interleaved on one thread, then in parallel threads.
    let a = ShipmentDrafted::descriptor().schema();
    let b = CatalogTreeChanged::descriptor().schema();
    assert_eq!(ShipmentDrafted::descriptor().schema(), a);
    assert_eq!(CatalogTreeChanged::descriptor().schema(), b);
    let handles: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                if i % 2 == 0 {
                    ShipmentDrafted::descriptor().schema() == schema_for!(ShipmentDrafted)
                } else {
                    ThreadReplied::descriptor().schema() == schema_for!(ThreadReplied)
                }
            })
        })
        .collect();
    for handle in handles {
        assert!(handle.join().unwrap());
    }
}
