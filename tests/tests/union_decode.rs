//! `#[derive(EventUnion)]`: decoding a raw envelope into the right variant by its `type` and
//! `version`, the errors when it cannot, and what else the derive generates.

use event_core::{DecodeError, DomainEvent, Envelope, EventUnion, RawEnvelope};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A customer placed an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "order.created", source = "orders-service")]
struct OrderCreated {
    #[event(partition_key)]
    order_id: String,
    total_cents: u64,
}

/// An order was paid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "order.paid")]
struct OrderPaid {
    #[event(partition_key)]
    order_id: String,
}

/// An order was shipped, second version of the payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "order.shipped", version = 2)]
struct OrderShipped {
    carrier: String,
}

/// The first version of `order.shipped`, read by the same consumer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "order.shipped", version = 1)]
struct OrderShippedV1 {
    carrier_code: u32,
}

#[derive(Debug, Clone, PartialEq, EventUnion)]
#[union(consumer = "fulfillment")]
enum OrderEvents {
    Created(OrderCreated),
    Paid(OrderPaid),
    Shipped(OrderShipped),
    ShippedV1(OrderShippedV1),
}

/// No consumer: not registered, `CONSUMER` is `None`.
#[derive(Debug, EventUnion)]
enum PaymentEvents {
    Paid(OrderPaid),
}

fn created() -> OrderCreated {
    OrderCreated {
        order_id: "o-1".into(),
        total_cents: 1200,
    }
}

fn raw<E: DomainEvent>(event: E) -> RawEnvelope {
    Envelope::new(event).to_raw().expect("serializes")
}

/// `raw` with its `type`, `version` and payload replaced.
fn raw_with(event_type: &str, version: u32, payload: &str) -> RawEnvelope {
    let mut raw = raw(created());
    raw.event_type = event_type.into();
    raw.version = version;
    raw.payload = serde_json::value::RawValue::from_string(payload.to_owned()).unwrap();
    raw
}

#[test]
fn decodes_each_variant_by_type_and_version() {
    let envelope = raw(created()).decode::<OrderEvents>().unwrap();
    assert_eq!(envelope.payload, OrderEvents::Created(created()));
    assert_eq!(envelope.event_type, "order.created");

    let paid = OrderPaid {
        order_id: "o-2".into(),
    };
    let decoded = raw(paid.clone()).decode::<OrderEvents>().unwrap().payload;
    assert_eq!(decoded, OrderEvents::Paid(paid));

    let shipped = OrderShipped {
        carrier: "dhl".into(),
    };
    let decoded = raw(shipped.clone())
        .decode::<OrderEvents>()
        .unwrap()
        .payload;
    assert_eq!(decoded, OrderEvents::Shipped(shipped));

    // Same name, other version: the other variant.
    let v1 = OrderShippedV1 { carrier_code: 7 };
    let decoded = raw(v1.clone()).decode::<OrderEvents>().unwrap().payload;
    assert_eq!(decoded, OrderEvents::ShippedV1(v1));
}

#[test]
fn keeps_the_rest_of_the_envelope() {
    let mut raw = raw(created());
    raw.correlation_id = Some("c-1".into());
    let envelope = raw.decode::<OrderEvents>().unwrap();
    assert_eq!(envelope.id, raw.id);
    assert_eq!(envelope.correlation_id.as_deref(), Some("c-1"));
    assert_eq!(envelope.source.as_deref(), Some("orders-service"));
    assert_eq!(envelope.partition_key(), Some("o-1"));
}

#[test]
fn an_unknown_type_is_an_unknown_event() {
    let err = raw_with("invoice.issued", 1, "{}")
        .decode::<OrderEvents>()
        .unwrap_err();
    let DecodeError::UnknownEvent {
        event_type,
        version,
    } = &err
    else {
        panic!("expected an unknown event, got {err:?}");
    };
    assert_eq!((event_type.as_str(), *version), ("invoice.issued", 1));
    assert_eq!(
        err.to_string(),
        "no variant for event `invoice.issued` version 1"
    );
}

#[test]
fn a_higher_version_of_a_known_name_is_a_newer_version() {
    let err = raw_with("order.paid", 2, r#"{"order_id":"o-1"}"#)
        .decode::<OrderEvents>()
        .unwrap_err();
    let DecodeError::NewerVersion {
        event_type,
        version,
        known,
    } = &err
    else {
        panic!("expected a newer version, got {err:?}");
    };
    assert_eq!(
        (event_type.as_str(), *version, *known),
        ("order.paid", 2, 1)
    );
    assert_eq!(
        err.to_string(),
        "event `order.paid` version 2 was written by a newer producer: \
         this consumer knows up to version 1"
    );

    // The newest known version of the name counts, not the first variant's.
    let err = raw_with("order.shipped", 3, "{}")
        .decode::<OrderEvents>()
        .unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::NewerVersion {
                version: 3,
                known: 2,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_lower_unknown_version_is_an_unknown_event() {
    let err = raw_with("order.paid", 0, r#"{"order_id":"o-1"}"#)
        .decode::<OrderEvents>()
        .unwrap_err();
    assert!(
        matches!(err, DecodeError::UnknownEvent { version: 0, .. }),
        "{err:?}"
    );
}

#[test]
fn a_mismatched_payload_is_a_payload_error_with_serdes_message() {
    let err = raw_with("order.created", 1, r#"{"order_id":"o-1"}"#)
        .decode::<OrderEvents>()
        .unwrap_err();
    let DecodeError::Payload {
        event_type,
        version,
        source,
    } = &err
    else {
        panic!("expected a payload error, got {err:?}");
    };
    assert_eq!((event_type.as_str(), *version), ("order.created", 1));
    assert_eq!(
        source.to_string(),
        "missing field `total_cents` at line 1 column 18"
    );
    assert_eq!(
        err.to_string(),
        "payload of `order.created` version 1 does not match its type"
    );

    // Read as the variant the envelope names, never as another that would fit.
    let err = raw_with("order.shipped", 1, r#"{"carrier":"dhl"}"#)
        .decode::<OrderEvents>()
        .unwrap_err();
    assert!(
        matches!(&err, DecodeError::Payload { version: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn decode_payload_reads_the_payload_directly() {
    let decoded = OrderEvents::decode_payload("order.paid", 1, r#"{"order_id":"o-9"}"#).unwrap();
    assert_eq!(
        decoded,
        OrderEvents::Paid(OrderPaid {
            order_id: "o-9".into()
        })
    );
}

#[test]
fn from_each_variant_type() {
    assert_eq!(
        OrderEvents::from(created()),
        OrderEvents::Created(created())
    );
    let paid: OrderEvents = OrderPaid {
        order_id: "o-2".into(),
    }
    .into();
    assert!(matches!(paid, OrderEvents::Paid(_)));
    let shipped: OrderEvents = OrderShippedV1 { carrier_code: 1 }.into();
    assert!(matches!(shipped, OrderEvents::ShippedV1(_)));
}

#[test]
fn event_and_partition_key_dispatch_to_the_variant() {
    let created = OrderEvents::from(created());
    assert_eq!(created.event(), ("order.created", 1));
    assert_eq!(EventUnion::partition_key(&created).as_deref(), Some("o-1"));

    let shipped = OrderEvents::from(OrderShipped {
        carrier: "dhl".into(),
    });
    assert_eq!(shipped.event(), ("order.shipped", 2));
    assert_eq!(EventUnion::partition_key(&shipped), None);

    let v1 = OrderEvents::from(OrderShippedV1 { carrier_code: 1 });
    assert_eq!(v1.event(), ("order.shipped", 1));
}

#[test]
fn events_are_listed_in_declaration_order() {
    assert_eq!(
        OrderEvents::EVENTS,
        [
            ("order.created", 1),
            ("order.paid", 1),
            ("order.shipped", 2),
            ("order.shipped", 1),
        ]
    );
    assert_eq!(PaymentEvents::EVENTS, [("order.paid", 1)]);
    assert!(OrderEvents::accepts("order.shipped", 1));
    assert!(!OrderEvents::accepts("order.shipped", 3));
}

#[test]
fn the_consumer_is_declared_and_registered() {
    assert_eq!(OrderEvents::CONSUMER, Some("fulfillment"));
    assert_eq!(PaymentEvents::CONSUMER, None);
    assert_eq!(event_core::consumers_of("order.paid", 1), ["fulfillment"]);
    assert_eq!(
        event_core::consumers_of("order.shipped", 1),
        ["fulfillment"]
    );
    assert!(event_core::consumers_of("order.paid", 2).is_empty());
    assert!(event_core::consumers_of("invoice.issued", 1).is_empty());
}

/// No wildcard: adding a variant makes this a compile error.
fn describe(event: &OrderEvents) -> String {
    match event {
        OrderEvents::Created(e) => format!("created {}", e.order_id),
        OrderEvents::Paid(e) => format!("paid {}", e.order_id),
        OrderEvents::Shipped(e) => format!("shipped by {}", e.carrier),
        OrderEvents::ShippedV1(e) => format!("shipped by carrier {}", e.carrier_code),
    }
}

#[test]
fn matches_exhaustively() {
    let envelope = raw(created()).decode::<OrderEvents>().unwrap();
    assert_eq!(describe(&envelope.payload), "created o-1");
    let PaymentEvents::Paid(paid) = OrderPaid {
        order_id: "o-3".into(),
    }
    .into();
    assert_eq!(paid.order_id, "o-3");
}
