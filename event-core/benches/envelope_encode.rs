//! Encoding an event in its envelope, against encoding the bare event.
//!
//! - `envelope_to_json`: `envelope.to_json()` of an `Envelope<OrderPlaced>`: id, type,
//!   version, `occurred_at`, source, the three tracing ids, the payload and `meta`.
//! - `bare_event` (baseline): `serde_json::to_string(&event)` of the same 7-field struct.
//! - `same_json_plain_struct` (calibration, not a target): a plain struct whose fields are
//!   the envelope's, already as strings, writing byte for byte the envelope's JSON. It is
//!   what `serde_json` needs for those bytes, so `envelope_to_json` over it is the cost of
//!   what the envelope does on top: formatting its id and time.
//!
//! The envelope writes everything the bare event does plus about 270 bytes of its own, so
//! part of the ratio to the bare event is inherent; `encoded_len` in the output gives both
//! sizes.

use criterion::{Criterion, criterion_group, criterion_main};
use event_core::{DomainEvent, Envelope};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::hint::black_box;
use std::time::Duration;

/// A realistic event: seven fields, strings and numbers.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "order.placed", source = "orders-service", aggregate = "order")]
struct OrderPlaced {
    #[event(partition_key)]
    order_id: String,
    customer_id: String,
    #[event(pii)]
    customer_email: String,
    total_cents: u64,
    currency: String,
    item_count: u32,
    sales_channel: String,
}

fn event() -> OrderPlaced {
    OrderPlaced {
        order_id: "o-20261123-0042".into(),
        customer_id: "c-88213".into(),
        customer_email: "ada@example.com".into(),
        total_cents: 12_990,
        currency: "EUR".into(),
        item_count: 3,
        sales_channel: "web".into(),
    }
}

/// The envelope's JSON from a plain struct: the calibration row.
#[derive(Debug, Serialize)]
struct SameJson<'a> {
    id: String,
    #[serde(rename = "type")]
    event_type: &'a str,
    version: u32,
    occurred_at: String,
    source: Option<&'a str>,
    correlation_id: Option<&'a str>,
    causation_id: Option<&'a str>,
    trace_id: Option<&'a str>,
    payload: &'a OrderPlaced,
    /// A plain `serde_json` map, not the envelope's `Meta`.
    meta: serde_json::Map<String, serde_json::Value>,
}

fn same_json(envelope: &Envelope<OrderPlaced>) -> SameJson<'_> {
    SameJson {
        id: envelope.id.to_string(),
        event_type: &envelope.event_type,
        version: envelope.version,
        occurred_at: envelope
            .occurred_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        source: envelope.source.as_deref(),
        correlation_id: envelope.correlation_id.as_deref(),
        causation_id: envelope.causation_id.as_deref(),
        trace_id: envelope.trace_id.as_deref(),
        payload: &envelope.payload,
        meta: envelope.meta.to_map(),
    }
}

/// The machine is shared: rather than compare criterion's rows, measured minutes apart, time
/// the three encodings in alternation, 41 rounds of 20 000 each, and print the median ratio of
/// the envelope to each baseline.
fn interleaved_ratios(envelope: &Envelope<OrderPlaced>, event: &OrderPlaced, plain: &SameJson<'_>) {
    const ROUNDS: usize = 41;
    const ITERATIONS: u32 = 20_000;
    let time = |f: &dyn Fn()| {
        let start = std::time::Instant::now();
        for _ in 0..ITERATIONS {
            f();
        }
        start.elapsed().as_secs_f64()
    };
    let (mut to_bare, mut to_plain) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let wrapped = time(&|| {
            black_box(black_box(envelope).to_json().expect("serializes"));
        });
        let bare = time(&|| {
            black_box(serde_json::to_string(black_box(event)).expect("serializes"));
        });
        let same = time(&|| {
            black_box(serde_json::to_string(black_box(plain)).expect("serializes"));
        });
        to_bare.push(wrapped / bare);
        to_plain.push(wrapped / same);
    }
    let median = |ratios: &mut Vec<f64>| {
        ratios.sort_by(f64::total_cmp);
        ratios[ratios.len() / 2]
    };
    eprintln!(
        "interleaved median ratio: envelope_to_json / same_json_plain_struct {:.3}x, / bare_event {:.3}x",
        median(&mut to_plain),
        median(&mut to_bare)
    );
}

fn bench(c: &mut Criterion) {
    let event = event();
    let mut envelope = Envelope::new(event.clone());
    envelope.correlation_id = Some("checkout-7f3a9c".into());
    let wrapped = envelope.to_json().expect("serializes");
    let bare = serde_json::to_string(&event).expect("serializes");
    let plain = same_json(&envelope);
    assert_eq!(serde_json::to_string(&plain).expect("serializes"), wrapped);
    eprintln!(
        "encoded_len: envelope {} bytes, bare event {} bytes",
        wrapped.len(),
        bare.len()
    );

    // Not in `cargo test`'s single smoke run of each bench: only under `cargo bench`.
    if std::env::args().any(|arg| arg == "--bench") {
        interleaved_ratios(&envelope, &event, &plain);
    }

    let mut group = c.benchmark_group("envelope_encode");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("envelope_to_json", |b| {
        b.iter(|| black_box(&envelope).to_json().expect("serializes"));
    });
    group.bench_function("bare_event", |b| {
        b.iter(|| serde_json::to_string(black_box(&event)).expect("serializes"));
    });
    group.bench_function("same_json_plain_struct", |b| {
        b.iter(|| serde_json::to_string(black_box(&plain)).expect("serializes"));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
