//! The catalog lists how each version is upcast: a chain that starts raw (`order.refunded`
//! v1 → v2 through a raw upcaster, its v1 type gone) and continues typed (v2 → v3 through
//! `previous`). Its own binary: the raw upcaster registered here is global.

use event_catalog::{Catalog, Upcast, UpcastBy};
use event_core::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[allow(clippy::unnecessary_wraps, reason = "the upcaster signature")]
fn refunded_v1_to_v2(payload: serde_json::Value) -> Result<serde_json::Value, String> {
    Ok(payload)
}
event_core::raw_upcaster!("order.refunded", 1, refunded_v1_to_v2);

/// An order was refunded (v2).
#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "order.refunded", version = 2)]
struct OrderRefundedV2 {
    order_id: String,
}

/// An order was refunded.
#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "order.refunded", version = 3, previous = OrderRefundedV2)]
struct OrderRefunded {
    order_id: String,
    reason: Option<String>,
}

impl From<OrderRefundedV2> for OrderRefunded {
    fn from(v2: OrderRefundedV2) -> Self {
        OrderRefunded {
            order_id: v2.order_id,
            reason: None,
        }
    }
}

#[test]
fn each_version_says_how_the_one_below_is_read() {
    let catalog = Catalog::linked().expect("a whole chain");
    let v2 = catalog.get("order.refunded", 2).unwrap();
    assert_eq!(
        v2.upcasts,
        [Upcast {
            from_version: 1,
            by: UpcastBy::Raw
        }]
    );
    let v3 = catalog.get("order.refunded", 3).unwrap();
    assert_eq!(
        v3.upcasts,
        [Upcast {
            from_version: 2,
            by: UpcastBy::Previous
        }]
    );

    let rendered = catalog.render();
    let page = rendered.get("events/order.refunded.v2.md").unwrap();
    assert!(
        page.contains("| Reads older versions | v1 by a raw upcaster (its type is gone) |"),
        "{page}"
    );
    let page = rendered.get("events/order.refunded.v3.md").unwrap();
    assert!(
        page.contains("| Reads older versions | v2 by `previous` and `From` |"),
        "{page}"
    );

    let json = rendered.get("catalog.json").unwrap();
    let value: serde_json::Value = serde_json::from_str(json).unwrap();
    let entry = value["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "order.refunded" && e["version"] == 2)
        .unwrap();
    assert_eq!(
        entry["upcasts"],
        serde_json::json!([{"from_version": 1, "by": "raw"}])
    );
    let back = Catalog::from_json(json).unwrap();
    assert_eq!(back, catalog, "catalog.json keeps the upcasts");
}
