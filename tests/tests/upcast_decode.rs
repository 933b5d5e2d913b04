//! Schema evolution on the read side: an event stored at an older version reaches a reader
//! that names a newer one upcast, through the `previous` chain and its `From` impls, on every
//! decode path (union, single event, and the bus).

use event_core::{DecodeError, DomainEvent, Envelope, EventBus, EventUnion, RawEnvelope};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

/// v1: the amount as a float of euros.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "invoice.issued", version = 1)]
struct InvoiceIssuedV1 {
    invoice_id: String,
    amount: f64,
}

/// v2: cents and a currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "invoice.issued", version = 2, previous = InvoiceIssuedV1)]
struct InvoiceIssuedV2 {
    invoice_id: String,
    amount_cents: u64,
    currency: String,
}

impl From<InvoiceIssuedV1> for InvoiceIssuedV2 {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    fn from(v1: InvoiceIssuedV1) -> Self {
        InvoiceIssuedV2 {
            invoice_id: v1.invoice_id,
            amount_cents: (v1.amount * 100.0).round() as u64,
            currency: "EUR".into(),
        }
    }
}

/// v3: the customer too (unknown for older invoices).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "invoice.issued", version = 3, previous = InvoiceIssuedV2)]
struct InvoiceIssued {
    invoice_id: String,
    amount_cents: u64,
    currency: String,
    customer_id: Option<String>,
}

impl From<InvoiceIssuedV2> for InvoiceIssued {
    fn from(v2: InvoiceIssuedV2) -> Self {
        InvoiceIssued {
            invoice_id: v2.invoice_id,
            amount_cents: v2.amount_cents,
            currency: v2.currency,
            customer_id: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, EventUnion)]
enum Billing {
    Issued(InvoiceIssued),
}

/// Names two versions: each arrives as itself; v1 goes to the newest, upcast.
#[derive(Debug, Clone, PartialEq, EventUnion)]
enum Migrating {
    Old(InvoiceIssuedV2),
    New(InvoiceIssued),
}

fn stored_v1() -> RawEnvelope {
    Envelope::new(InvoiceIssuedV1 {
        invoice_id: "i-1".into(),
        amount: 12.5,
    })
    .to_raw()
    .unwrap()
}

fn upcast_v3() -> InvoiceIssued {
    InvoiceIssued {
        invoice_id: "i-1".into(),
        amount_cents: 1250,
        currency: "EUR".into(),
        customer_id: None,
    }
}

#[test]
fn a_union_naming_v3_reads_v1_upcast_twice() {
    let envelope = stored_v1().decode::<Billing>().expect("upcast");
    assert_eq!(envelope.payload, Billing::Issued(upcast_v3()));
    assert_eq!(
        envelope.version, 3,
        "the version of what the payload now is"
    );
    assert_eq!(envelope.event_type, "invoice.issued");
}

#[test]
fn a_single_event_reader_reads_older_versions_upcast() {
    let envelope = stored_v1().decode::<InvoiceIssued>().expect("upcast");
    assert_eq!(envelope.payload, upcast_v3());
    let v2 = stored_v1().decode::<InvoiceIssuedV2>().expect("upcast");
    assert_eq!(v2.payload.amount_cents, 1250);
    assert_eq!(v2.version, 2);
}

#[test]
fn an_exact_version_wins_over_an_upcast() {
    let v2 = Envelope::new(InvoiceIssuedV2 {
        invoice_id: "i-2".into(),
        amount_cents: 700,
        currency: "USD".into(),
    })
    .to_raw()
    .unwrap();
    assert!(matches!(
        v2.decode::<Migrating>().unwrap().payload,
        Migrating::Old(_)
    ));
    // v1 is older than both: it goes to the newest, v3.
    assert_eq!(
        stored_v1().decode::<Migrating>().unwrap().payload,
        Migrating::New(upcast_v3())
    );
}

#[test]
fn an_old_payload_that_does_not_parse_is_a_payload_error_at_its_version() {
    let mut bad = stored_v1();
    bad.payload = serde_json::value::RawValue::from_string(r#"{"invoice_id":1}"#.into()).unwrap();
    match bad.decode::<Billing>() {
        Err(DecodeError::Payload { version, .. }) => assert_eq!(version, 1),
        other => panic!("expected a payload error, got {other:?}"),
    }
}

#[test]
fn a_version_below_the_chain_is_unknown_and_newer_is_its_own_error() {
    let mut v0 = stored_v1();
    v0.version = 0;
    assert!(matches!(
        v0.decode::<Billing>(),
        Err(DecodeError::UnknownEvent { .. })
    ));
    let mut v4 = stored_v1();
    v4.version = 4;
    assert!(matches!(
        v4.decode::<Billing>(),
        Err(DecodeError::NewerVersion { .. })
    ));
    assert!(Billing::accepts("invoice.issued", 3));
}

#[tokio::test]
async fn the_bus_delivers_a_v1_publish_to_a_v3_subscriber_upcast() {
    let bus = EventBus::builder().build();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    bus.subscribe::<Billing, _, _>("billing", move |env| {
        sink.lock().unwrap().push(env.payload);
        async { Ok(()) }
    })
    .unwrap();
    bus.publish(InvoiceIssuedV1 {
        invoice_id: "i-1".into(),
        amount: 12.5,
    })
    .await
    .unwrap();
    bus.shutdown().await;
    assert_eq!(*seen.lock().unwrap(), [Billing::Issued(upcast_v3())]);
    assert!(bus.dead_letters().await.is_empty());
}
