//! Two Rust types declaring the same (name, version) make the registry an error that names
//! both types and where they are defined.

use event_core::{DomainEvent, RegistryError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod orders {
    use super::{Deserialize, DomainEvent, JsonSchema, Serialize};

    #[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
    #[event(name = "order.created")]
    pub(crate) struct OrderCreated {
        pub(crate) order_id: String,
    }
}

mod billing {
    use super::{Deserialize, DomainEvent, JsonSchema, Serialize};

    #[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
    pub(crate) struct OrderCreated {
        pub(crate) id: u64,
    }
}

#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
struct OrderPaid {
    order_id: String,
}

#[test]
fn duplicate_names_both_types_and_locations() {
    let Err(RegistryError::Duplicates(duplicates)) = event_core::registry() else {
        panic!("two types named order.created v1 must be an error");
    };
    assert_eq!(duplicates.len(), 1);
    let duplicate = &duplicates[0];
    assert_eq!(
        (duplicate.name(), duplicate.version()),
        ("order.created", 1)
    );
    let types: Vec<&str> = duplicate
        .definitions()
        .iter()
        .map(|d| d.rust_type())
        .collect();
    assert_eq!(
        types,
        [
            "registry_duplicates::billing::OrderCreated",
            "registry_duplicates::orders::OrderCreated"
        ]
    );

    let message = RegistryError::Duplicates(duplicates.clone()).to_string();
    let billing = billing::OrderCreated::descriptor();
    let orders = orders::OrderCreated::descriptor();
    for d in [billing, orders] {
        assert!(message.contains(d.rust_type()), "{message}");
        assert!(message.contains(&d.location()), "{message}");
        assert!(d.file().ends_with("registry_duplicates.rs"));
    }
    assert!(
        message.starts_with("event `order.created` version 1 is defined by 2 types"),
        "{message}"
    );
    // The unique event is not reported.
    assert!(!message.contains("order.paid"), "{message}");
    let _ = (
        orders::OrderCreated {
            order_id: String::new(),
        }
        .order_id,
        billing::OrderCreated { id: 0 }.id,
        OrderPaid {
            order_id: String::new(),
        }
        .order_id,
    );
}
