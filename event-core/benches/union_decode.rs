//! Decoding a full canonical envelope from JSON bytes into a union of five event types.
//!
//! - `event_union`: `RawEnvelope::from_json(bytes)?.decode::<U>()`, what a consumer does.
//! - `serde_tagged_enum` (baseline A): a plain `#[serde(tag = "type")]` enum whose variants
//!   hold the envelope's fields with a typed payload, from the same bytes.
//! - `static_envelope` (baseline B): the type is known statically,
//!   `serde_json::from_slice::<Envelope<OrderPaid>>(bytes)`.
//!
//! The bytes are those of an `order.paid` envelope made with `Envelope::new(event).to_json()`
//! with a correlation id, so every envelope field is present.

use chrono::{DateTime, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use event_core::{DomainEvent, Envelope, EventUnion, Meta, RawEnvelope};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::hint::black_box;
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "order.created", source = "orders-service")]
struct OrderCreated {
    #[event(partition_key)]
    order_id: String,
    customer_id: String,
    total_cents: u64,
    currency: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "order.paid", source = "orders-service")]
struct OrderPaid {
    #[event(partition_key)]
    order_id: String,
    payment_id: String,
    amount_cents: u64,
    currency: String,
    method: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "order.shipped", source = "orders-service")]
struct OrderShipped {
    #[event(partition_key)]
    order_id: String,
    carrier: String,
    tracking_number: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "order.cancelled", source = "orders-service")]
struct OrderCancelled {
    #[event(partition_key)]
    order_id: String,
    reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "order.refunded", source = "orders-service")]
struct OrderRefunded {
    #[event(partition_key)]
    order_id: String,
    refund_id: String,
    amount_cents: u64,
}

#[derive(Debug, EventUnion)]
enum OrderEvents {
    Created(OrderCreated),
    Paid(OrderPaid),
    Shipped(OrderShipped),
    Cancelled(OrderCancelled),
    Refunded(OrderRefunded),
}

/// Baseline A: the envelope's fields around a typed payload, `type` being the enum's tag.
#[derive(Debug, Deserialize)]
#[allow(dead_code, reason = "decoded for the benchmark, never read")]
struct Fields<P> {
    id: Uuid,
    version: u32,
    occurred_at: DateTime<Utc>,
    source: Option<String>,
    correlation_id: Option<String>,
    causation_id: Option<String>,
    trace_id: Option<String>,
    payload: P,
    #[serde(default)]
    meta: Meta,
}

/// Baseline A: a plain internally tagged enum.
#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
#[allow(dead_code, reason = "decoded for the benchmark, never read")]
enum Tagged {
    #[serde(rename = "order.created")]
    Created(Fields<OrderCreated>),
    #[serde(rename = "order.paid")]
    Paid(Fields<OrderPaid>),
    #[serde(rename = "order.shipped")]
    Shipped(Fields<OrderShipped>),
    #[serde(rename = "order.cancelled")]
    Cancelled(Fields<OrderCancelled>),
    #[serde(rename = "order.refunded")]
    Refunded(Fields<OrderRefunded>),
}

fn envelope_bytes() -> Vec<u8> {
    let mut envelope = Envelope::new(OrderPaid {
        order_id: "o-20261123-0042".into(),
        payment_id: "pay_3QJx7mV2kP".into(),
        amount_cents: 12_990,
        currency: "EUR".into(),
        method: "card".into(),
    });
    envelope.correlation_id = Some("checkout-7f3a9c".into());
    envelope.to_json().expect("serializes").into_bytes()
}

fn bench(c: &mut Criterion) {
    let bytes = envelope_bytes();
    // All three read the same bytes into the same event.
    let ours = RawEnvelope::from_json(&bytes)
        .expect("parses")
        .decode::<OrderEvents>()
        .expect("decodes");
    assert!(matches!(ours.payload, OrderEvents::Paid(_)));
    assert_eq!(ours.payload.event(), (OrderPaid::NAME, OrderPaid::VERSION));
    assert!(matches!(
        serde_json::from_slice::<Tagged>(&bytes).expect("decodes"),
        Tagged::Paid(_)
    ));
    serde_json::from_slice::<Envelope<OrderPaid>>(&bytes).expect("decodes");

    let mut group = c.benchmark_group("union_decode");
    group
        .throughput(Throughput::Bytes(bytes.len() as u64))
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("event_union", |b| {
        b.iter(|| {
            RawEnvelope::from_json(black_box(&bytes))
                .expect("parses")
                .decode::<OrderEvents>()
                .expect("decodes")
        });
    });
    group.bench_function("serde_tagged_enum", |b| {
        b.iter(|| serde_json::from_slice::<Tagged>(black_box(&bytes)).expect("decodes"));
    });
    group.bench_function("static_envelope", |b| {
        b.iter(|| {
            serde_json::from_slice::<Envelope<OrderPaid>>(black_box(&bytes)).expect("decodes")
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
