//! Decoders that never panic: property tests (proptest, on the stable toolchain) that feed
//! hostile input to every decoder of bytes that come from outside the process, and check
//! that each call answers `Ok` or a typed error.
//!
//! The decoders:
//!
//! 1. `RawEnvelope::from_json` (and, on what it accepts, `decode` and `to_json`);
//! 2. `RawEnvelope::decode` into a derived union, with `type`, `version` and `payload`
//!    fuzzed, the upcast of a `previous` chain included;
//! 3. `Envelope::<E>::from_cloudevent` and 4. `RawEnvelope::from_cloudevent_raw`, with
//!    fuzzed JSON values (missing and wrong-typed attributes, odd `dataschema` URIs);
//! 5. the SQLite store's row decoding (`read`, `timeline`), with the stored `envelope`
//!    column overwritten through `rusqlite`.
//!
//! The inputs: random bytes; canonical envelopes truncated, with bytes flipped, inserted or
//! deleted, or with a field removed, duplicated or replaced by a random JSON value or a nasty
//! fragment (1e400, 18446744073709551616, lone surrogates `"\ud800"`, invalid UTF-8, 10 000
//! nested arrays); and, in fixed tests, 2 MiB payloads.
//!
//! Each input runs inside `catch_unwind`: a panic fails the test with the (shrunk) input.
//! Where the outcome is certain the error kind is asserted too (bytes that are not JSON are an
//! `Err`, an unknown event type is `UnknownEvent`, a damaged row is `StoreError::Decode`...).
//!
//! Cases per decoder come from `DECODE_FUZZ_CASES` (default 2 000; the SQLite test runs a
//! tenth of it), so that the file takes seconds in the normal test suite.
//! `scripts/fuzz-decoders.sh` runs the long campaign: 250 000 per decoder in release, over a
//! million inputs. Each test prints how many inputs it ran and how many were errors.

use event_core::store::rusqlite::{Connection, params};
use event_core::store::{SqliteStore, Store, StoreError, TimelineQuery};
use event_core::{CloudEventError, DecodeError, DomainEvent, Envelope, EventUnion, RawEnvelope};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::OnceLock;

// ---------------------------------------------------------------------------------------
// The events under test.

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
struct Line {
    sku: String,
    quantity: u32,
    unit_price: f64,
}

/// Nested structs, a vector, an option, a map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "fuzz.order_placed", source = "fuzz-service")]
struct OrderPlaced {
    #[event(partition_key)]
    order_id: String,
    total_cents: u64,
    lines: Vec<Line>,
    note: Option<String>,
    tags: BTreeMap<String, i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
enum Reason {
    Customer,
    Fraud { score: f32 },
    Other(String),
}

/// An enum, and no unknown field allowed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "fuzz.order_cancelled")]
#[serde(deny_unknown_fields)]
struct OrderCancelled {
    #[event(partition_key)]
    order_id: String,
    reason: Reason,
    at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "fuzz.shipped", version = 1)]
struct ShippedV1 {
    carrier_code: u16,
    weight_grams: u32,
}

/// Version 2: a v1 payload reaches the union upcast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "fuzz.shipped", version = 2, previous = ShippedV1)]
struct Shipped {
    #[event(partition_key)]
    carrier: String,
    tracking: Option<String>,
    weight_kg: f64,
}

impl From<ShippedV1> for Shipped {
    fn from(v1: ShippedV1) -> Self {
        Shipped {
            carrier: format!("carrier-{}", v1.carrier_code),
            tracking: None,
            weight_kg: f64::from(v1.weight_grams) / 1000.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, EventUnion)]
enum Fuzzed {
    Placed(OrderPlaced),
    Cancelled(OrderCancelled),
    Shipped(Shipped),
}

const EVENT_NAMES: [&str; 3] = ["fuzz.order_placed", "fuzz.order_cancelled", "fuzz.shipped"];

// ---------------------------------------------------------------------------------------
// The driver: cases, counting, `catch_unwind`.

/// Cases per decoder: `DECODE_FUZZ_CASES`, 2 000 by default.
fn cases() -> u32 {
    std::env::var("DECODE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.trim().replace('_', "").parse().ok())
        .unwrap_or(2_000)
}

/// Bytes, shown as an escaped byte string (and cut, when long) in failure messages.
#[derive(Clone, PartialEq)]
struct Bytes(Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 2048;
        let shown = &self.0[..self.0.len().min(SHOWN)];
        write!(f, "b\"{}\"", shown.escape_ascii())?;
        if self.0.len() > SHOWN {
            write!(f, "... ({} bytes in all)", self.0.len())?;
        }
        Ok(())
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic".to_owned())
}

/// Runs `check` on `cases` inputs of `strategy`, each inside `catch_unwind`. `check`
/// answers whether the decoder said `Ok` (`false`: a typed error), or fails the case when an
/// error is not of the kind expected. Prints the counts; fails with the shrunk input.
fn fuzz<S>(
    name: &str,
    cases: u32,
    strategy: S,
    check: impl Fn(&S::Value) -> Result<bool, TestCaseError>,
) where
    S: Strategy,
    S::Value: fmt::Debug,
{
    let (inputs, errors) = (Cell::new(0_u64), Cell::new(0_u64));
    let mut runner = TestRunner::new(Config {
        cases,
        // Failures are reported with their input; no regression files in the source tree.
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&strategy, |input| {
        match panic::catch_unwind(AssertUnwindSafe(|| check(&input))) {
            Ok(Ok(ok)) => {
                inputs.set(inputs.get() + 1);
                errors.set(errors.get() + u64::from(!ok));
                Ok(())
            }
            Ok(Err(failure)) => Err(failure),
            Err(payload) => Err(TestCaseError::fail(format!(
                "{name} panicked: {}",
                panic_message(payload.as_ref())
            ))),
        }
    });
    eprintln!(
        "decode_fuzz: {name}: {} inputs, {} errors, {} ok",
        inputs.get(),
        errors.get(),
        inputs.get() - errors.get()
    );
    if let Err(error) = result {
        panic!("{name}: {error}");
    }
}

// ---------------------------------------------------------------------------------------
// Valid samples to mutate.

#[derive(Debug)]
struct Sample {
    /// The canonical JSON, from `Envelope::new(event).to_json()`.
    json: String,
    /// The same, parsed.
    value: Value,
    /// The payload alone, parsed.
    payload: Value,
    /// The CloudEvents form.
    cloudevent: Value,
}

fn sample<E: DomainEvent + Serialize>(event: E, decorate: impl FnOnce(&mut Envelope<E>)) -> Sample {
    let mut envelope = Envelope::new(event);
    decorate(&mut envelope);
    let json = envelope.to_json().unwrap();
    let value: Value = serde_json::from_str(&json).unwrap();
    Sample {
        payload: value["payload"].clone(),
        cloudevent: envelope.to_cloudevent().unwrap(),
        json,
        value,
    }
}

fn samples() -> &'static [Sample] {
    static SAMPLES: OnceLock<Vec<Sample>> = OnceLock::new();
    SAMPLES.get_or_init(|| {
        vec![
            sample(placed("o-fuzz", 2), |e| {
                e.correlation_id = Some("c-1".into());
                e.causation_id = Some("e-0".into());
                e.trace_id = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
                e.meta.insert("tenant_id".into(), "acme".into());
                e.meta.set_depth(2);
            }),
            sample(
                OrderCancelled {
                    order_id: "o-fuzz".into(),
                    reason: Reason::Fraud { score: 0.75 },
                    at_ms: -1,
                },
                |_| {},
            ),
            sample(
                ShippedV1 {
                    carrier_code: 7,
                    weight_grams: 1250,
                },
                |_| {},
            ),
            sample(
                Shipped {
                    carrier: "ups".into(),
                    tracking: Some("1Z999".into()),
                    weight_kg: 1.25,
                },
                |e| e.source = Some("warehouse".into()),
            ),
        ]
    })
}

fn placed(order_id: &str, lines: usize) -> OrderPlaced {
    OrderPlaced {
        order_id: order_id.into(),
        total_cents: 1200,
        lines: (0..lines)
            .map(|i| Line {
                sku: format!("sku-{i}"),
                quantity: 1,
                unit_price: 6.0,
            })
            .collect(),
        note: Some("ring twice \u{1f514}".into()),
        tags: BTreeMap::from([("gift".to_owned(), 1)]),
    }
}

fn any_sample() -> impl Strategy<Value = &'static Sample> {
    select(samples().iter().collect::<Vec<_>>())
}

// ---------------------------------------------------------------------------------------
// Random JSON.

const STRINGS: &[&str] = &[
    "",
    "1.0",
    "0.3",
    "application/json",
    "application/cloudevents+json",
    "application/json; charset=utf-8",
    "text/plain",
    "fuzz.order_placed",
    "fuzz.order_cancelled",
    "fuzz.shipped",
    "FUZZ.SHIPPED",
    "fuzz.shipped\0",
    "unknown",
    "urn:event:x:v",
    "urn:event:a.b:v999999999999",
    "urn:event::v1",
    "urn:event:",
    "urn:event:fuzz.shipped",
    "urn:event:fuzz.shipped:v",
    "urn:event:fuzz.shipped:v0",
    "urn:event:fuzz.shipped:v1",
    "urn:event:fuzz.shipped:v2",
    "urn:event:fuzz.shipped:v3",
    "urn:event:fuzz.shipped:v-1",
    "urn:event:fuzz.shipped:v+2",
    "urn:event:fuzz.shipped:v4294967296",
    "urn:event:fuzz.order_placed:v1",
    "urn:event:fuzz.order_placed:v1:v1",
    "https://example.com/schemas/order.json",
    "2026-11-23T10:00:00.123Z",
    "2026-11-23T10:00:00Z",
    "2026-11-23T10:00:00.123456789+05:30",
    "0000-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59.999-01:00",
    "2016-12-31T23:59:60.234Z",
    "2026-02-30T00:00:00Z",
    "2026-11-23 10:00:00",
    "0193a5b0-7e2a-7c3d-8f00-000000000001",
    "00000000-0000-0000-0000-000000000000",
    "{0193a5b0-7e2a-7c3d-8f00-000000000001}",
    "urn:uuid:0193a5b0-7e2a-7c3d-8f00-000000000001",
    "0193a5b07e2a7c3d8f00000000000001",
    "not-a-uuid",
    "\0",
    "\u{feff}",
    "\u{10ffff}",
    "\u{1f4a5}",
    "Customer",
    "Fraud",
    "Other",
    "o-fuzz",
    "\"",
    "\\",
    "c1",
    "c18446744073709551616",
];

/// Keys: the envelope's, CloudEvents attributes, payload fields, and others.
const KEYS: &[&str] = &[
    "id",
    "type",
    "version",
    "occurred_at",
    "source",
    "correlation_id",
    "causation_id",
    "trace_id",
    "payload",
    "meta",
    "partition_key",
    "depth",
    "tenant_id",
    "specversion",
    "time",
    "datacontenttype",
    "dataschema",
    "eventversion",
    "data",
    "data_base64",
    "subject",
    "correlationid",
    "partitionkey",
    "tenantid",
    "order_id",
    "total_cents",
    "lines",
    "note",
    "tags",
    "reason",
    "carrier_code",
    "carrier",
    "weight_kg",
    "Fraud",
    "score",
];

fn json_string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => vec(any::<char>(), 0..12).prop_map(String::from_iter),
        2 => select(STRINGS).prop_map(str::to_owned),
    ]
}

fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(KEYS).prop_map(str::to_owned),
        1 => json_string(),
    ]
}

fn json_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        select(vec![
            json!(0),
            json!(1),
            json!(2),
            json!(3),
            json!(-1),
            json!(u32::MAX),
            json!(u64::from(u32::MAX) + 1),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(1.5),
            json!(-0.0),
            json!(1e300),
            json!(18_446_744_073_709_551_616.0),
            json!(f64::MIN_POSITIVE),
            json!(5e-324),
        ]),
    ]
}

/// Random JSON trees, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        json_number(),
        json_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec((json_key(), inner), 0..6).prop_map(|e| Value::Object(e.into_iter().collect())),
        ]
    })
}

/// JSON texts at the edges: numbers no `f64` or `u64` holds, bad escapes, lone surrogates,
/// broken structure, odd times, duplicate keys.
const FRAGMENT_TEXTS: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "-0",
    "1",
    "2",
    "3",
    "-1",
    "1.5",
    "1e400",
    "-1e400",
    "1E-400",
    "1e-400",
    "18446744073709551616",
    "-9223372036854775809",
    "4294967296",
    "4294967295",
    "340282366920938463463374607431768211456",
    "NaN",
    "Infinity",
    "-",
    "01",
    "1.",
    "1e",
    ".5",
    "0x10",
    "+1",
    "\"\"",
    r#""\ud800""#,
    r#""\udfff""#,
    r#""\ud800\ud800""#,
    r#""\udc00\ud800""#,
    r#""\ud800x""#,
    r#""\ud800\u0041""#,
    r#""\u0000""#,
    r#""\uZZZZ""#,
    r#""\u12""#,
    r#""\x41""#,
    r#""\""#,
    "\"unterminated",
    "\"tab\there\"",
    "\"new\nline\"",
    "[]",
    "{}",
    "[",
    "{",
    "]",
    "}",
    "{\"a\":}",
    "[1,]",
    "{\"a\":1,}",
    "{1:2}",
    "{\"a\" 1}",
    "[1 2]",
    "\"2026-11-23T10:00:00.123Z\"",
    "\"0000-01-01T00:00:00+01:00\"",
    "\"9999-12-31T23:59:59.999-01:00\"",
    "\"2026-13-45T25:61:61Z\"",
    "\"2016-12-31T23:59:60.234Z\"",
    "\"00000000-0000-0000-0000-000000000000\"",
    "\"fuzz.shipped\"",
    "\"fuzz.order_placed\"",
    r#""fuzz\u0000shipped""#,
    r#"{"Fraud":{"score":1e39}}"#,
    r#"{"Other":"x","Customer":null}"#,
    r#"{"partition_key":"a","partition_key":7}"#,
    r#"{"depth":4294967296}"#,
    r#"{"depth":-1,"depth":3}"#,
];

/// Strings (and a BOM) that are not UTF-8.
const INVALID_UTF8: &[&[u8]] = &[
    b"\"\xff\"",
    b"\"\xc3\x28\"",
    b"\"\xed\xa0\x80\"",
    b"\"\xf4\x90\x80\x80\"",
    b"\"\xe2\x82\"",
    b"\xff",
    b"\xef\xbb\xbf{}",
    b"\"\xc0\xaf\"",
];

/// JSON text no `Value` can hold, or that is not JSON at all: the texts above, invalid
/// UTF-8, deep nesting, long numbers and strings.
fn fragments() -> &'static [Bytes] {
    static FRAGMENTS: OnceLock<Vec<Bytes>> = OnceLock::new();
    FRAGMENTS.get_or_init(|| {
        let deep = [
            format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
            "[".repeat(10_000),
            format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000)),
            format!("{}{}", "[".repeat(127), "]".repeat(127)),
            format!("{}{}", "[".repeat(128), "]".repeat(128)),
            format!("{}{}", "[".repeat(129), "]".repeat(129)),
            "9".repeat(10_000),
            format!("0.{}1", "0".repeat(10_000)),
            format!("1e{}", "9".repeat(1_000)),
            format!("\"{}\"", "\\\\".repeat(5_000)),
            format!("\"{}\"", "\u{e9}".repeat(20_000)),
        ];
        FRAGMENT_TEXTS
            .iter()
            .map(|t| Bytes(t.as_bytes().to_vec()))
            .chain(INVALID_UTF8.iter().map(|b| Bytes(b.to_vec())))
            .chain(deep.into_iter().map(|t| Bytes(t.into_bytes())))
            .collect()
    })
}

/// A JSON text to put somewhere: a random tree, or a fragment.
fn json_text() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        1 => json_value().prop_map(|v| Bytes(serde_json::to_vec(&v).unwrap())),
        1 => select(fragments()),
    ]
}

// ---------------------------------------------------------------------------------------
// Mutations of a canonical envelope.

/// The paths of fields to edit in a canonical envelope.
const PATHS: &[&[&str]] = &[
    &["id"],
    &["type"],
    &["version"],
    &["occurred_at"],
    &["source"],
    &["correlation_id"],
    &["causation_id"],
    &["trace_id"],
    &["payload"],
    &["meta"],
    &["meta", "partition_key"],
    &["meta", "depth"],
    &["meta", "tenant_id"],
    &["extra"],
    &["payload", "order_id"],
    &["payload", "total_cents"],
    &["payload", "lines"],
    &["payload", "note"],
    &["payload", "tags"],
    &["payload", "reason"],
    &["payload", "carrier_code"],
    &["payload", "weight_grams"],
    &["payload", "carrier"],
    &["payload", "weight_kg"],
    &["payload", "unknown"],
];

#[derive(Debug, Clone)]
enum Edit {
    /// The field's value replaced by this text (the field added when absent).
    Replace(Bytes),
    /// The field removed.
    Remove,
    /// The field kept, and given a second time with this text.
    Duplicate(Bytes),
}

/// One field of an object to write.
enum Field<'a> {
    /// As it is.
    Keep(&'a Value),
    /// With the edit applied further down its path.
    Edit(&'a Value),
    /// This text instead.
    Text(&'a [u8]),
}

/// Writes `value` as JSON with `edit` applied at `path`.
fn render(value: &Value, path: &[&str], edit: &Edit, out: &mut Vec<u8>) {
    let (Value::Object(map), Some((first, rest))) = (value, path.split_first()) else {
        out.extend_from_slice(&serde_json::to_vec(value).unwrap());
        return;
    };
    let mut fields: Vec<(&str, Field<'_>)> = Vec::new();
    for (key, field) in map {
        if key != first {
            fields.push((key, Field::Keep(field)));
        } else if !rest.is_empty() {
            fields.push((key, Field::Edit(field)));
        } else {
            match edit {
                Edit::Replace(text) => fields.push((key, Field::Text(&text.0))),
                Edit::Remove => {}
                Edit::Duplicate(text) => {
                    fields.push((key, Field::Keep(field)));
                    fields.push((key, Field::Text(&text.0)));
                }
            }
        }
    }
    if rest.is_empty()
        && !map.contains_key(*first)
        && let Edit::Replace(text) | Edit::Duplicate(text) = edit
    {
        fields.push((first, Field::Text(&text.0)));
    }
    out.push(b'{');
    for (i, (key, field)) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&serde_json::to_vec(key).unwrap());
        out.push(b':');
        match field {
            Field::Keep(value) => out.extend_from_slice(&serde_json::to_vec(value).unwrap()),
            Field::Edit(value) => render(value, rest, edit, out),
            Field::Text(text) => out.extend_from_slice(text),
        }
    }
    out.push(b'}');
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => json_text().prop_map(Edit::Replace),
        1 => Just(Edit::Remove),
        1 => json_text().prop_map(Edit::Duplicate),
    ]
}

#[derive(Debug, Clone)]
enum ByteMutation {
    Flip(Index, u8),
    Set(Index, u8),
    Insert(Index, u8),
    Delete(Index),
}

fn nasty_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        any::<u8>(),
        select(b"\"\\{}[],:0-e.nu \xff\x80\xc3\xed\x00".to_vec()),
    ]
}

fn byte_mutation() -> impl Strategy<Value = ByteMutation> {
    prop_oneof![
        (any::<Index>(), 0_u8..8).prop_map(|(i, bit)| ByteMutation::Flip(i, 1 << bit)),
        (any::<Index>(), nasty_byte()).prop_map(|(i, b)| ByteMutation::Set(i, b)),
        (any::<Index>(), nasty_byte()).prop_map(|(i, b)| ByteMutation::Insert(i, b)),
        any::<Index>().prop_map(ByteMutation::Delete),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[ByteMutation]) -> Vec<u8> {
    for mutation in mutations {
        if bytes.is_empty() {
            break;
        }
        match mutation {
            ByteMutation::Flip(i, mask) => {
                let at = i.index(bytes.len());
                bytes[at] ^= mask;
            }
            ByteMutation::Set(i, b) => {
                let at = i.index(bytes.len());
                bytes[at] = *b;
            }
            ByteMutation::Insert(i, b) => bytes.insert(i.index(bytes.len() + 1), *b),
            ByteMutation::Delete(i) => {
                bytes.remove(i.index(bytes.len()));
            }
        }
    }
    bytes
}

/// Bytes for `from_json`: random, or a canonical envelope truncated, mutated or edited.
fn envelope_bytes() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        2 => vec(any::<u8>(), 0..256).prop_map(Bytes),
        1 => json_text(),
        2 => (any_sample(), any::<Index>()).prop_map(|(s, i)| {
            Bytes(s.json.as_bytes()[..i.index(s.json.len())].to_vec())
        }),
        3 => (any_sample(), vec(byte_mutation(), 1..4))
            .prop_map(|(s, m)| Bytes(mutate(s.json.clone().into_bytes(), &m))),
        6 => (any_sample(), select(PATHS), edit()).prop_map(|(s, path, edit)| {
            let mut out = Vec::new();
            render(&s.value, path, &edit, &mut out);
            Bytes(out)
        }),
        1 => any_sample().prop_map(|s| Bytes(s.json.clone().into_bytes())),
    ]
}

// ---------------------------------------------------------------------------------------
// 1. `RawEnvelope::from_json`.

#[test]
fn from_json_never_panics() {
    fuzz(
        "RawEnvelope::from_json",
        cases(),
        envelope_bytes(),
        |bytes| check_from_json(&bytes.0),
    );
}

fn check_from_json(bytes: &[u8]) -> Result<bool, TestCaseError> {
    let is_json = serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
    let Ok(raw) = RawEnvelope::from_json(bytes) else {
        return Ok(false);
    };
    prop_assert!(is_json, "accepted bytes that are not JSON");
    // What was accepted goes on through the rest of the pipeline.
    let _ = check_union_decode(&raw)?;
    let json = raw.to_json();
    prop_assert!(json.is_ok(), "accepted, but does not write back: {json:?}");
    Ok(true)
}

// ---------------------------------------------------------------------------------------
// 2. Union decoding.

/// `type`, `version` and `payload` replaced (each or not) in a valid envelope.
#[derive(Debug, Clone)]
struct UnionInput {
    sample: usize,
    event_type: Option<String>,
    version: Option<u32>,
    payload: Option<String>,
}

fn payload_text() -> impl Strategy<Value = String> {
    let lossy = |b: Bytes| String::from_utf8_lossy(&b.0).into_owned();
    prop_oneof![
        3 => (any_sample(), select(PATHS), edit()).prop_map(move |(s, path, edit)| {
            let mut out = Vec::new();
            render(&s.payload, path.get(1..).unwrap_or_default(), &edit, &mut out);
            lossy(Bytes(out))
        }),
        2 => any_sample().prop_map(|s| s.payload.to_string()),
        2 => json_text().prop_map(lossy),
    ]
}

fn union_input() -> impl Strategy<Value = UnionInput> {
    let event_type = prop_oneof![
        3 => select(EVENT_NAMES.to_vec()).prop_map(str::to_owned),
        1 => json_string(),
    ];
    let version = prop_oneof![3 => 0_u32..=4, 1 => any::<u32>(), 1 => Just(u32::MAX)];
    (
        0..samples().len(),
        proptest::option::of(event_type),
        proptest::option::of(version),
        proptest::option::of(payload_text()),
    )
        .prop_map(|(sample, event_type, version, payload)| UnionInput {
            sample,
            event_type,
            version,
            payload,
        })
}

#[test]
fn union_decode_never_panics() {
    fuzz(
        "RawEnvelope::decode::<Fuzzed>",
        cases(),
        union_input(),
        |input| {
            let mut raw = RawEnvelope::from_json(samples()[input.sample].json.as_bytes()).unwrap();
            if let Some(event_type) = &input.event_type {
                raw.event_type = event_type.as_str().into();
            }
            if let Some(version) = input.version {
                raw.version = version;
            }
            if let Some(payload) = &input.payload {
                match RawValue::from_string(payload.clone()) {
                    Ok(payload) => raw.payload = payload,
                    // Not JSON: no envelope can carry it.
                    Err(_) => return Ok(false),
                }
            }
            check_union_decode(&raw)
        },
    );
}

/// Decodes into the union, and checks the answer agrees with the type and version.
fn check_union_decode(raw: &RawEnvelope) -> Result<bool, TestCaseError> {
    let known = Fuzzed::EVENTS
        .iter()
        .filter(|(name, _)| *name == raw.event_type)
        .map(|(_, v)| *v)
        .max();
    match raw.decode::<Fuzzed>() {
        Ok(decoded) => {
            let (name, version) = decoded.payload.event();
            prop_assert_eq!(name, raw.event_type.as_str());
            prop_assert_eq!(version, decoded.version);
            prop_assert!(
                (1..=version).contains(&raw.version),
                "{} -> {}",
                raw.version,
                version
            );
            Ok(true)
        }
        Err(DecodeError::NewerVersion {
            known: k, version, ..
        }) => {
            prop_assert_eq!(Some(k), known);
            prop_assert!(version > k);
            Ok(false)
        }
        Err(DecodeError::UnknownEvent { .. }) => {
            prop_assert!(
                known.is_none_or(|k| raw.version <= k),
                "{known:?} {}",
                raw.version
            );
            Ok(false)
        }
        Err(error) => {
            prop_assert!(known.is_some(), "{error} for an unknown type");
            Ok(false)
        }
    }
}

// ---------------------------------------------------------------------------------------
// 3, 4. CloudEvents.

const CE_ATTRIBUTES: &[&str] = &[
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "datacontenttype",
    "dataschema",
    "eventversion",
    "data",
    "data_base64",
    "subject",
    "correlationid",
    "causationid",
    "traceid",
    "partitionkey",
    "tenantid",
    "actorid",
    "depth",
];

#[derive(Debug, Clone)]
enum CeEdit {
    Remove(String),
    Set(String, Value),
}

fn ce_edit() -> impl Strategy<Value = CeEdit> {
    let attribute = prop_oneof![
        4 => select(CE_ATTRIBUTES).prop_map(str::to_owned),
        1 => json_key(),
    ];
    let value = prop_oneof![
        3 => json_value(),
        2 => select(STRINGS).prop_map(Value::from),
        1 => json_number(),
        // Another event's payload, maybe edited, as `data`.
        1 => (any_sample(), select(PATHS), edit()).prop_map(|(s, path, edit)| {
            let mut out = Vec::new();
            render(&s.payload, path.get(1..).unwrap_or_default(), &edit, &mut out);
            serde_json::from_slice(&out).unwrap_or_else(|_| s.payload.clone())
        }),
    ];
    prop_oneof![
        1 => attribute.clone().prop_map(CeEdit::Remove),
        3 => (attribute, value).prop_map(|(a, v)| CeEdit::Set(a, v)),
    ]
}

/// A JSON value for the CloudEvents readers: random, or a valid event edited.
fn cloudevent() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => json_value(),
        4 => (any_sample(), vec(ce_edit(), 0..4)).prop_map(|(s, edits)| {
            let mut ce = s.cloudevent.clone();
            let map = ce.as_object_mut().unwrap();
            for edit in edits {
                match edit {
                    CeEdit::Remove(key) => map.remove(&key),
                    CeEdit::Set(key, value) => map.insert(key, value),
                };
            }
            ce
        }),
    ]
}

fn check_typed<E: DomainEvent>(value: &Value) -> Result<bool, TestCaseError> {
    match Envelope::<E>::from_cloudevent(value.clone()) {
        Ok(envelope) => {
            prop_assert_eq!(envelope.event_type.as_str(), E::NAME);
            prop_assert_eq!(envelope.version, E::VERSION);
            Ok(true)
        }
        Err(error) => {
            if !value.is_object() {
                prop_assert!(matches!(error, CloudEventError::NotAnObject), "{error}");
            }
            Ok(false)
        }
    }
}

#[test]
fn from_cloudevent_never_panics() {
    fuzz(
        "Envelope::<E>::from_cloudevent",
        cases(),
        cloudevent(),
        |value| {
            // Each reader: the input counts as ok when one of them took it.
            let results = [
                check_typed::<OrderPlaced>(value)?,
                check_typed::<OrderCancelled>(value)?,
                check_typed::<ShippedV1>(value)?,
                check_typed::<Shipped>(value)?,
            ];
            Ok(results.contains(&true))
        },
    );
}

#[test]
fn from_cloudevent_raw_never_panics() {
    fuzz(
        "RawEnvelope::from_cloudevent_raw",
        cases(),
        cloudevent(),
        |value| {
            match RawEnvelope::from_cloudevent_raw(value.clone()) {
                Ok(raw) => {
                    let _ = check_union_decode(&raw)?;
                    // Whatever was read writes back out, in both forms.
                    prop_assert!(raw.to_json().is_ok());
                    prop_assert!(raw.to_cloudevent().is_ok());
                    Ok(true)
                }
                Err(error) => {
                    if !value.is_object() {
                        prop_assert!(matches!(error, CloudEventError::NotAnObject), "{error}");
                    }
                    Ok(false)
                }
            }
        },
    );
}

/// The `dataschema` URIs of the brief, each with a certain answer.
#[test]
fn dataschema_uris_are_checked_not_trusted() {
    let shipped = &samples()[3].cloudevent;
    let with = |uri: &str, ty: &str| {
        let mut ce = shipped.clone();
        ce["dataschema"] = uri.into();
        ce["type"] = ty.into();
        ce.as_object_mut().unwrap().remove("eventversion");
        ce
    };
    let ok =
        |uri: &str, ty: &str| RawEnvelope::from_cloudevent_raw(with(uri, ty)).map(|r| r.version);
    assert_eq!(ok("urn:event:fuzz.shipped:v2", "fuzz.shipped").unwrap(), 2);
    // Not ours: nothing to check against, version 1.
    assert_eq!(ok("https://example.com/s.json", "fuzz.shipped").unwrap(), 1);
    for (uri, ty) in [
        ("urn:event:x:v", "fuzz.shipped"),
        ("urn:event:x:v", "x"),
        ("urn:event:a.b:v999999999999", "fuzz.shipped"),
        ("urn:event:a.b:v999999999999", "a.b"),
        ("urn:event::v1", "fuzz.shipped"),
        ("urn:event:fuzz.shipped:v0", "fuzz.shipped"),
        ("urn:event:fuzz.shipped:v-1", "fuzz.shipped"),
    ] {
        let error = RawEnvelope::from_cloudevent_raw(with(uri, ty)).unwrap_err();
        assert!(
            matches!(error, CloudEventError::DataSchema(_)),
            "{uri} {ty}: {error}"
        );
        assert!(
            Envelope::<Shipped>::from_cloudevent(with(uri, ty)).is_err(),
            "{uri}"
        );
    }
    // An empty `type` is no CloudEvent: required attributes are non-empty strings.
    let error = RawEnvelope::from_cloudevent_raw(with("urn:event::v1", "")).unwrap_err();
    assert!(
        matches!(
            error,
            CloudEventError::Attribute {
                attribute: "type",
                ..
            }
        ),
        "{error}"
    );
}

// ---------------------------------------------------------------------------------------
// 5. SQLite rows.

/// What to write over a stored row's `envelope` column.
#[derive(Debug, Clone)]
enum Column {
    Text(String),
    /// Bytes that are not UTF-8, stored as TEXT anyway (`CAST(? AS TEXT)`).
    InvalidUtf8Text(Bytes),
    Blob(Bytes),
    Integer(i64),
    Real(f64),
}

fn column() -> impl Strategy<Value = Column> {
    prop_oneof![
        8 => envelope_bytes().prop_map(|b| match String::from_utf8(b.0) {
            Ok(text) => Column::Text(text),
            Err(e) => Column::InvalidUtf8Text(Bytes(e.into_bytes())),
        }),
        1 => json_value().prop_map(|v| Column::Text(v.to_string())),
        1 => any_sample().prop_map(|s| Column::Blob(Bytes(s.json.clone().into_bytes()))),
        1 => vec(any::<u8>(), 0..64).prop_map(|b| Column::Blob(Bytes(b))),
        1 => any::<i64>().prop_map(Column::Integer),
        1 => any::<f64>().prop_filter("SQLite stores NaN as NULL", |f| f.is_finite()).prop_map(Column::Real),
    ]
}

/// A store with one event, at position 1 (partition key `o-fuzz`), and a second connection
/// to its file.
struct Damaged {
    runtime: tokio::runtime::Runtime,
    store: SqliteStore,
    conn: Connection,
    _dir: tempfile::TempDir,
}

impl Damaged {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        let store = runtime.block_on(async {
            let store = SqliteStore::open(&path).unwrap();
            let raw = RawEnvelope::from_json(samples()[0].json.as_bytes()).unwrap();
            assert_eq!(store.append(vec![raw]).await.unwrap(), [1]);
            store
        });
        let conn = Connection::open(&path).unwrap();
        // Not durable, fast: this connection only damages rows.
        conn.execute_batch("PRAGMA synchronous = OFF; PRAGMA busy_timeout = 10000;")
            .unwrap();
        Damaged {
            runtime,
            store,
            conn,
            _dir: dir,
        }
    }

    fn overwrite(&self, column: &Column) {
        let sql = "UPDATE event_store_events SET envelope = ?1 WHERE position = 1";
        let changed = match column {
            Column::Text(text) => self.conn.execute(sql, params![text]),
            Column::InvalidUtf8Text(bytes) => self.conn.execute(
                "UPDATE event_store_events SET envelope = CAST(?1 AS TEXT) WHERE position = 1",
                params![bytes.0],
            ),
            Column::Blob(bytes) => self.conn.execute(sql, params![bytes.0]),
            Column::Integer(n) => self.conn.execute(sql, params![n]),
            Column::Real(f) => self.conn.execute(sql, params![f]),
        };
        assert_eq!(changed.unwrap(), 1);
    }

    /// Reads the row back with `read` and `timeline`; checks the two agree and the error kind.
    fn check(&self, column: &Column) -> Result<bool, TestCaseError> {
        self.overwrite(column);
        let (read, page) = self.runtime.block_on(async {
            let read = self.store.read(0, 10).await;
            let page = self
                .store
                .timeline(&TimelineQuery::partition("o-fuzz"))
                .await;
            (read, page)
        });
        prop_assert_eq!(read.is_ok(), page.is_ok(), "{:?} / {:?}", read, page);
        if let Ok(page) = &page {
            prop_assert_eq!(page.events.len(), 1);
        }
        match (column, read) {
            (Column::Text(text), read) => match (RawEnvelope::from_json(text.as_bytes()), read) {
                (Ok(expected), Ok(events)) => {
                    prop_assert_eq!(events.len(), 1);
                    prop_assert_eq!(events[0].position, 1);
                    prop_assert_eq!(events[0].envelope.id, expected.id);
                    Ok(true)
                }
                (Err(_), Err(StoreError::Decode { position, .. })) => {
                    prop_assert_eq!(position, 1);
                    Ok(false)
                }
                (expected, read) => Err(TestCaseError::fail(format!(
                    "from_json says {expected:?}, the store {read:?}"
                ))),
            },
            // TEXT affinity: a number is stored as its text, which is no envelope.
            (Column::Integer(_) | Column::Real(_), read) => {
                prop_assert!(
                    matches!(read, Err(StoreError::Decode { position: 1, .. })),
                    "{read:?}"
                );
                Ok(false)
            }
            (Column::InvalidUtf8Text(_) | Column::Blob(_), read) => {
                prop_assert!(read.is_err(), "{read:?}");
                Ok(false)
            }
        }
    }
}

#[test]
fn sqlite_row_decoding_never_panics() {
    let damaged = Damaged::new();
    let cases = (cases() / 10).max(1);
    fuzz(
        "SqliteStore read/timeline of a damaged row",
        cases,
        column(),
        |column| damaged.check(column),
    );
}

// ---------------------------------------------------------------------------------------
// Fixed inputs: every fragment in every field, deep values, oversize payloads.

/// Runs `f`, and fails naming `what` when it panics.
fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> T {
    panic::catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|p| panic!("{what} panicked: {}", panic_message(p.as_ref())))
}

#[test]
fn every_fragment_in_every_field_never_panics() {
    let mut inputs = 0_u64;
    for fragment in fragments() {
        let errs = no_panic("from_json", || RawEnvelope::from_json(&fragment.0)).is_err();
        assert!(
            errs || fragment.0 == b"null" || fragment.0.starts_with(b"{"),
            "{fragment:?}"
        );
        for sample in samples() {
            for path in PATHS {
                let mut out = Vec::new();
                render(
                    &sample.value,
                    path,
                    &Edit::Replace(fragment.clone()),
                    &mut out,
                );
                let what = format!("{path:?} = {fragment:?}");
                no_panic(&what, || check_from_json(&out)).unwrap();
                inputs += 1;
            }
        }
    }
    eprintln!("decode_fuzz: every fragment in every field: {inputs} inputs");
}

/// Nested arrays, `depth` deep, built without recursion.
fn nested(depth: usize) -> Value {
    (0..depth).fold(Value::Null, |inner, _| Value::Array(vec![inner]))
}

#[test]
fn deep_values_never_panic() {
    // As deep as `serde_json` parses (128), in every CloudEvents attribute.
    let shipped = &samples()[3].cloudevent;
    for depth in [1, 64, 127, 128] {
        for attribute in CE_ATTRIBUTES {
            let mut ce = shipped.clone();
            ce[*attribute] = nested(depth);
            let what = format!("{attribute} = {depth} nested arrays");
            let raw = no_panic(&what, || RawEnvelope::from_cloudevent_raw(ce.clone()));
            if let Ok(raw) = raw {
                no_panic(&what, || check_union_decode(&raw)).unwrap();
            }
            let typed = no_panic(&what, || Envelope::<Shipped>::from_cloudevent(ce));
            assert!(typed.is_err() || *attribute != "data", "{what}");
        }
    }
}

/// 10 000 nested arrays as a `Value` (only code builds one: parsing stops at 128). Reading it
/// recurses, in `serde_json` as in any serde reader, so on a thread with a large stack.
#[test]
fn a_value_nested_10_000_deep_never_panics() {
    std::thread::Builder::new()
        .stack_size(512 << 20)
        .spawn(|| {
            let mut ce = samples()[3].cloudevent.clone();
            ce["data"] = nested(10_000);
            let raw = no_panic("10 000 deep data", || {
                RawEnvelope::from_cloudevent_raw(ce.clone())
            });
            if let Ok(raw) = &raw {
                no_panic("10 000 deep payload", || check_union_decode(raw)).unwrap();
            }
            let typed = no_panic("10 000 deep data", || {
                Envelope::<Shipped>::from_cloudevent(ce)
            });
            assert!(typed.is_err());
            eprintln!(
                "decode_fuzz: 10 000 deep data: raw read {}",
                if raw.is_ok() { "ok" } else { "an error" }
            );
        })
        .unwrap()
        .join()
        .unwrap();
}

const MIB_2: usize = 2 << 20;

#[test]
fn oversize_inputs_decode_or_fail_without_panic() {
    // A valid envelope with a 2 MiB note: read and decoded.
    let mut big = placed("o-big", 3);
    big.note = Some("x".repeat(MIB_2));
    let envelope = Envelope::new(big.clone());
    let json = envelope.to_json().unwrap();
    let raw = no_panic("2 MiB envelope", || RawEnvelope::from_json(json.as_bytes())).unwrap();
    let decoded = no_panic("2 MiB decode", || raw.decode::<Fuzzed>()).unwrap();
    assert_eq!(decoded.payload, Fuzzed::Placed(big.clone()));
    let ce = envelope.to_cloudevent().unwrap();
    assert!(
        no_panic("2 MiB CloudEvent", || {
            Envelope::<OrderPlaced>::from_cloudevent(ce)
        })
        .is_ok()
    );

    // 2 MiB of a wrong shape, of noise, of nesting, of a number: errors.
    let mut wrong = raw.clone();
    wrong.payload = RawValue::from_string(format!("[{}1]", "1,".repeat(MIB_2 / 2))).unwrap();
    assert!(matches!(
        no_panic("2 MiB array", || wrong.decode::<Fuzzed>()),
        Err(DecodeError::Payload { .. })
    ));
    let noise: Vec<u8> = (0..MIB_2)
        .map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()[1])
        .collect();
    let deep = "[".repeat(MIB_2).into_bytes();
    let digits = format!("{{\"id\":{}}}", "9".repeat(MIB_2)).into_bytes();
    for (what, bytes) in [("noise", &noise), ("nesting", &deep), ("a number", &digits)] {
        assert!(
            no_panic(what, || RawEnvelope::from_json(bytes)).is_err(),
            "{what}"
        );
    }

    // The SQLite store: a 2 MiB event appended and read back, then 2 MiB of damage.
    let damaged = Damaged::new();
    damaged.runtime.block_on(async {
        let big_raw = Envelope::new(big).to_raw().unwrap();
        assert_eq!(damaged.store.append(vec![big_raw]).await.unwrap(), [2]);
        let events = damaged.store.read(1, 10).await.unwrap();
        assert_eq!(
            events[0].envelope.payload.get().len(),
            raw.payload.get().len()
        );
    });
    let truncated = json[..json.len() - 1].to_owned();
    for column in [
        Column::Text(truncated),
        Column::InvalidUtf8Text(Bytes(noise)),
    ] {
        no_panic("2 MiB damaged row", || damaged.check(&column)).unwrap();
    }
}
