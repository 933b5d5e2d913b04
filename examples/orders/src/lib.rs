//! The domain events of an e-commerce back office: orders, their payment, fulfillment,
//! shipping and invoicing.
//!
//! Each module is one aggregate and holds the events about it, as plain structs deriving
//! [`DomainEvent`](event_core::DomainEvent):
//!
//! | module | events | published by |
//! |---|---|---|
//! | [`order`] | `order.created`, `order.checkout_sent` | `orders-service` |
//! | [`order`] | `order.payment_processing`, `order.paid`, `order.payment_failed`, `order.checkout_expired` | `payments-webhook` |
//! | [`fulfillment`] | `fulfillment.created` | `fulfillment-service` |
//! | [`shipment`] | `shipment.drafted`, `shipment.ready`, `shipment.in_transit`, `shipment.delivered` | `shipments-service` |
//! | [`invoice`] | `invoice.issued` (v1, deprecated, and v2), `invoice.partially_paid`, `invoice.paid`, `invoice.overdue`, `invoice.voided` | `billing-service` |
//!
//! Money is an integer number of cents (`u64`) with an ISO 4217 `currency`, timestamps are
//! RFC 3339 strings, and every event is partitioned by the id of its aggregate. Personal data
//! (emails, names, addresses) is marked `#[event(pii)]`.
//!
//! ```
//! use event_core::DomainEvent;
//! use orders::shipment::ShipmentInTransit;
//!
//! assert_eq!(ShipmentInTransit::NAME, "shipment.in_transit");
//! assert_eq!(ShipmentInTransit::descriptor().partition_key(), Some("shipment_id"));
//! ```
//!
//! # Linking
//!
//! The events register themselves when the crate is linked, not by a call. A binary that
//! lists them (a catalog generator, a consumer) must reference this crate, or the linker
//! drops it and [`event_core::registry()`] comes back without these events:
//!
//! ```
//! use orders as _; // link the events of `orders`
//!
//! let registry = event_core::registry()?;
//! assert!(registry.get("order.created", 1).is_some());
//! # Ok::<(), event_core::RegistryError>(())
//! ```

#![warn(missing_docs)]

pub mod app;
pub mod consumers;
pub mod fulfillment;
pub mod invoice;
pub mod order;
pub mod shipment;

#[cfg(test)]
mod tests {
    use crate::invoice::{InvoiceIssued, InvoiceIssuedV1};
    use crate::order::{Address, LineItem, OrderCreated};
    use event_core::DomainEvent;

    /// The specification of this crate: every event it defines, sorted by (name, version).
    const EXPECTED: [(&str, u32); 17] = [
        ("fulfillment.created", 1),
        ("invoice.issued", 1),
        ("invoice.issued", 2),
        ("invoice.overdue", 1),
        ("invoice.paid", 1),
        ("invoice.partially_paid", 1),
        ("invoice.voided", 1),
        ("order.checkout_expired", 1),
        ("order.checkout_sent", 1),
        ("order.created", 1),
        ("order.paid", 1),
        ("order.payment_failed", 1),
        ("order.payment_processing", 1),
        ("shipment.delivered", 1),
        ("shipment.drafted", 1),
        ("shipment.in_transit", 1),
        ("shipment.ready", 1),
    ];

    fn order_created() -> OrderCreated {
        OrderCreated {
            order_id: "ord_7Hq2".into(),
            customer_id: "cus_481".into(),
            customer_email: "ada@example.com".into(),
            customer_name: "Ada Lovelace".into(),
            line_items: vec![
                LineItem {
                    sku: "MUG-BLK-350".into(),
                    quantity: 2,
                    unit_price_cents: 1250,
                },
                LineItem {
                    sku: "TEE-WHT-M".into(),
                    quantity: 1,
                    unit_price_cents: 2400,
                },
            ],
            subtotal_cents: 4900,
            shipping_cents: 495,
            tax_cents: 861,
            total_cents: 5395,
            currency: "EUR".into(),
            shipping_address: Address {
                name: "Ada Lovelace".into(),
                company: None,
                line1: "Torstraße 42".into(),
                line2: Some("3rd floor".into()),
                city: "Berlin".into(),
                region: None,
                postal_code: "10119".into(),
                country: "DE".into(),
                phone: None,
            },
            created_at: "2026-11-23T10:00:00.123Z".into(),
        }
    }

    #[test]
    fn registry_holds_exactly_the_expected_events() {
        let registry = event_core::registry().unwrap();
        let actual: Vec<(&str, u32)> = registry.iter().map(|d| (d.name(), d.version())).collect();
        assert_eq!(actual, EXPECTED);
    }

    #[test]
    fn every_event_has_catalog_metadata() {
        let registry = event_core::registry().unwrap();
        for d in &registry {
            let event = format!("{} v{}", d.name(), d.version());
            assert!(d.source().is_some(), "{event} has no source");
            let aggregate = d
                .aggregate()
                .unwrap_or_else(|| panic!("{event} has no aggregate"));
            assert!(
                d.name().starts_with(&format!("{aggregate}.")),
                "{event} is not named after its aggregate `{aggregate}`"
            );
            assert!(
                d.description().is_some_and(|text| !text.is_empty()),
                "{event} has no description"
            );
            assert!(d.partition_key().is_some(), "{event} has no partition key");
            assert!(
                d.rust_type().starts_with("orders::"),
                "{event}: {}",
                d.rust_type()
            );
        }
    }

    #[test]
    fn order_created_is_partitioned_by_order_id() {
        assert_eq!(OrderCreated::descriptor().partition_key(), Some("order_id"));
        assert_eq!(order_created().partition_key().as_deref(), Some("ord_7Hq2"));
    }

    #[test]
    fn order_created_marks_personal_data() {
        assert_eq!(
            OrderCreated::descriptor().pii(),
            ["customer_email", "customer_name", "shipping_address"]
        );
    }

    #[test]
    fn order_created_round_trips_through_json() {
        let event = order_created();
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["order_id"], "ord_7Hq2");
        assert_eq!(json["line_items"][0]["unit_price_cents"], 1250);
        assert_eq!(json["shipping_address"]["country"], "DE");
        let back: OrderCreated = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn invoice_issued_v2_upcasts_v1() {
        let v2 = InvoiceIssued::descriptor();
        let v1 = v2.previous().unwrap();
        assert_eq!((v1.name(), v1.version()), (InvoiceIssuedV1::NAME, 1));
        assert!(v1.is_deprecated() && !v2.is_deprecated());

        let old = InvoiceIssuedV1 {
            invoice_id: "inv_2026_0042".into(),
            order_id: "ord_7Hq2".into(),
            billing_email: "ada@example.com".into(),
            amount: 53.95,
            issued_at: "2026-11-23T10:05:00Z".into(),
            due_at: "2026-12-07T23:59:59Z".into(),
        };
        let new = InvoiceIssued::from(old);
        assert_eq!((new.amount_cents, new.currency.as_str()), (5395, "EUR"));
        assert_eq!(new.partition_key().as_deref(), Some("inv_2026_0042"));
    }
}
