//! Upcasters over raw JSON for versions whose Rust type is gone: a chain that starts raw
//! (v1 → v2) and continues typed (v2 → v3 through `previous`). A union naming v3 reads v1
//! events written before the v1 struct was deleted, on every decode path.

use event_core::{DomainEvent, EventBus, EventUnion, RawEnvelope, registry};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// v1 was `{"invoice_id", "amount"}` in whole euros; its struct is gone.
fn issued_v1_to_v2(mut payload: Value) -> Result<Value, String> {
    let euros = payload["amount"]
        .as_u64()
        .ok_or("`amount` is not a whole number")?;
    let object = payload.as_object_mut().ok_or("not an object")?;
    object.remove("amount");
    object.insert("amount_cents".into(), json!(euros * 100));
    Ok(payload)
}
event_core::raw_upcaster!("invoice.issued", 1, issued_v1_to_v2);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "invoice.issued", version = 2)]
struct InvoiceIssuedV2 {
    invoice_id: String,
    amount_cents: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "invoice.issued", version = 3, previous = InvoiceIssuedV2)]
struct InvoiceIssued {
    invoice_id: String,
    amount_cents: u64,
    currency: String,
}

impl From<InvoiceIssuedV2> for InvoiceIssued {
    fn from(v2: InvoiceIssuedV2) -> Self {
        InvoiceIssued {
            invoice_id: v2.invoice_id,
            amount_cents: v2.amount_cents,
            currency: "EUR".into(),
        }
    }
}

#[derive(Debug, Clone, EventUnion)]
enum Billing {
    Issued(InvoiceIssued),
}

/// An event stored at v1 by a producer of long ago.
fn stored_v1(payload: &Value) -> RawEnvelope {
    let json = json!({
        "id": "0193a1b2-0000-7000-8000-000000000001", "type": "invoice.issued", "version": 1,
        "occurred_at": "2026-11-23T10:00:00.123Z", "source": null, "correlation_id": null,
        "causation_id": null, "trace_id": null, "payload": payload, "meta": {}
    });
    RawEnvelope::from_json(json.to_string().as_bytes()).unwrap()
}

#[test]
fn the_registry_accepts_a_chain_that_starts_raw() {
    let registry = registry().expect("v1 raw, v2 and v3 typed: a whole chain");
    let versions: Vec<u32> = registry
        .versions("invoice.issued")
        .map(event_core::EventDescriptor::version)
        .collect();
    assert_eq!(versions, [2, 3]);
    let raw = event_core::raw_upcasters();
    assert!(
        raw.iter()
            .any(|u| u.name() == "invoice.issued" && u.from_version() == 1)
    );
}

#[test]
fn a_union_naming_v3_reads_v1_through_the_raw_then_the_typed_chain() {
    let decoded = stored_v1(&json!({"invoice_id": "i-1", "amount": 12}))
        .decode::<Billing>()
        .unwrap();
    assert_eq!(decoded.version, 3);
    let Billing::Issued(issued) = decoded.payload;
    assert_eq!(
        issued,
        InvoiceIssued {
            invoice_id: "i-1".into(),
            amount_cents: 1200,
            currency: "EUR".into(),
        }
    );
}

#[test]
fn a_payload_the_upcaster_refuses_is_a_payload_error() {
    let error = stored_v1(&json!({"invoice_id": "i-1", "amount": "twelve"}))
        .decode::<Billing>()
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("`invoice.issued` version 1"), "{message}");
    let source = std::error::Error::source(&error).unwrap().to_string();
    assert!(
        source.contains("raw upcaster of invoice.issued from version 1"),
        "{source}"
    );
    assert!(source.contains("not a whole number"), "{source}");
}

#[tokio::test]
async fn the_bus_hands_v1_events_to_a_v3_subscription() {
    let bus = EventBus::builder().build();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    bus.subscribe::<Billing, _, _>("ledger", move |env| {
        let Billing::Issued(issued) = env.payload;
        sink.lock()
            .unwrap()
            .push((env.version, issued.amount_cents));
        async { Ok(()) }
    })
    .unwrap();
    bus.publish_raw(stored_v1(&json!({"invoice_id": "i-2", "amount": 3})))
        .await
        .unwrap();
    bus.shutdown().await;
    assert_eq!(*seen.lock().unwrap(), [(3, 300)]);
}
