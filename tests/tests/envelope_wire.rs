//! The envelope's canonical JSON and its CloudEvents 1.0 form, both ways.

use chrono::{TimeZone, Utc};
use event_core::{CloudEventError, DomainEvent, Envelope, RawEnvelope};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A customer placed an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(
    name = "order.created",
    version = 1,
    source = "orders-service",
    aggregate = "order"
)]
struct OrderCreated {
    #[event(partition_key)]
    order_id: String,
    #[event(pii)]
    customer_email: String,
    total_cents: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
struct OrderPaid {
    order_id: String,
}

fn order() -> OrderCreated {
    OrderCreated {
        order_id: "o-1".into(),
        customer_email: "a@b.c".into(),
        total_cents: 1200,
    }
}

/// The example of DESIGN.md, with a fixed id and time.
fn fixed() -> Envelope<OrderCreated> {
    let mut envelope = Envelope::new(order());
    envelope.id = "0193a1b2-0000-7000-8000-000000000001".parse().unwrap();
    envelope.occurred_at =
        Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap() + chrono::Duration::milliseconds(123);
    envelope.correlation_id = Some("c-1".into());
    envelope
}

#[test]
fn canonical_json_field_for_field() {
    let expected = concat!(
        r#"{"id":"0193a1b2-0000-7000-8000-000000000001","type":"order.created","version":1,"#,
        r#""occurred_at":"2026-11-23T10:00:00.123Z","source":"orders-service","#,
        r#""correlation_id":"c-1","causation_id":null,"trace_id":null,"#,
        r#""payload":{"order_id":"o-1","customer_email":"a@b.c","total_cents":1200},"#,
        r#""meta":{"partition_key":"o-1"}}"#
    );
    assert_eq!(fixed().to_json().unwrap(), expected);
    let back: Envelope<OrderCreated> = serde_json::from_str(expected).unwrap();
    assert_eq!(back, fixed());
}

#[test]
fn raw_envelope_keeps_the_payload_bytes() {
    let json = fixed().to_json().unwrap();
    let raw = RawEnvelope::from_json(json.as_bytes()).unwrap();
    assert_eq!(raw.event_type, "order.created");
    assert_eq!(raw.partition_key(), Some("o-1"));
    assert_eq!(
        raw.payload.get(),
        r#"{"order_id":"o-1","customer_email":"a@b.c","total_cents":1200}"#
    );
    assert_eq!(serde_json::to_string(&raw).unwrap(), json);
    let typed = raw.decode::<OrderCreated>().unwrap();
    assert_eq!(typed, fixed());
}

#[test]
fn new_envelopes_get_time_ordered_v7_ids_and_millisecond_times() {
    let a = Envelope::new(order());
    let b = Envelope::new(order());
    assert_eq!(a.id.get_version_num(), 7);
    assert!(a.id < b.id, "v7 ids sort by creation");
    assert_eq!(a.occurred_at.timestamp_subsec_nanos() % 1_000_000, 0);
    let json: Value = serde_json::from_str(&a.to_json().unwrap()).unwrap();
    let time = json["occurred_at"].as_str().unwrap();
    assert_eq!(time.len(), "2026-11-23T10:00:00.123Z".len(), "{time}");
    assert!(time.ends_with('Z'), "{time}");
    assert_eq!(a.source.as_deref(), Some("orders-service"));
    assert_eq!(a.meta.partition_key(), Some("o-1"));
}

#[test]
fn rejects_an_envelope_that_is_not_one() {
    for bad in [
        &b"not json"[..],
        br#"{"id":"nope","type":"a.b","version":1,"occurred_at":"2026-11-23T10:00:00.123Z","payload":{}}"#,
        br#"{"id":"0193a1b2-0000-7000-8000-000000000001","type":"a.b","version":1,"occurred_at":"yesterday","payload":{}}"#,
        br#"{"id":"0193a1b2-0000-7000-8000-000000000001","version":1,"occurred_at":"2026-11-23T10:00:00.123Z","payload":{}}"#,
    ] {
        assert!(RawEnvelope::from_json(bad).is_err(), "{}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn cloudevent_has_the_required_attributes_and_extensions() {
    let mut envelope = fixed();
    envelope.causation_id = Some("0193a1b2-0000-7000-8000-000000000000".into());
    envelope.meta.insert("tenant_id".into(), json!("t-1"));
    let ce = envelope.to_cloudevent().unwrap();
    assert_eq!(
        ce,
        json!({
            "specversion": "1.0",
            "id": "0193a1b2-0000-7000-8000-000000000001",
            "source": "orders-service",
            "type": "order.created",
            "time": "2026-11-23T10:00:00.123Z",
            "datacontenttype": "application/json",
            "dataschema": "urn:event:order.created:v1",
            "eventversion": 1,
            "correlationid": "c-1",
            "causationid": "0193a1b2-0000-7000-8000-000000000000",
            "partitionkey": "o-1",
            "tenantid": "t-1",
            "data": {"order_id": "o-1", "customer_email": "a@b.c", "total_cents": 1200}
        })
    );
    // Extension names are lowercase alphanumerics, as the spec requires.
    for key in ce.as_object().unwrap().keys() {
        assert!(
            key.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
            "{key}"
        );
    }
    let back = Envelope::<OrderCreated>::from_cloudevent(ce).unwrap();
    assert_eq!(back, envelope);
}

#[test]
fn cloudevent_without_source_says_unknown_and_reads_back_as_none() {
    let mut envelope = Envelope::new(OrderPaid {
        order_id: "o-1".into(),
    });
    assert_eq!(envelope.source, None);
    envelope.meta.insert("region".into(), json!("eu-west"));
    let ce = envelope.to_cloudevent().unwrap();
    assert_eq!(ce["source"], event_core::UNKNOWN_SOURCE);
    assert_eq!(ce["region"], "eu-west");
    let back = Envelope::<OrderPaid>::from_cloudevent(ce).unwrap();
    assert_eq!(back, envelope);
}

#[test]
fn cloudevent_dataschema_is_the_catalog_schema_id_and_is_read_back() {
    let ce = fixed().to_cloudevent().unwrap();
    assert_eq!(ce["dataschema"], event_core::dataschema("order.created", 1));
    assert_eq!(ce["dataschema"], "urn:event:order.created:v1");
    // Without `eventversion`, the version comes from `dataschema`.
    let mut v2 = ce.clone();
    v2.as_object_mut().unwrap().remove("eventversion");
    v2["dataschema"] = json!("urn:event:order.created:v2");
    let raw = RawEnvelope::from_cloudevent_raw(v2).unwrap();
    assert_eq!(raw.version, 2);
    // Another producer's schema URI is nothing to check against.
    let mut foreign = ce.clone();
    foreign["dataschema"] = json!("https://schemas.example.com/order-created.json");
    let back = Envelope::<OrderCreated>::from_cloudevent(foreign).unwrap();
    assert_eq!(back, fixed());
}

#[test]
fn cloudevent_errors_name_what_is_wrong() {
    let good = fixed().to_cloudevent().unwrap();
    let with = |key: &str, value: Option<Value>| {
        let mut ce = good.clone();
        match value {
            Some(v) => ce[key] = v,
            None => {
                ce.as_object_mut().unwrap().remove(key);
            }
        }
        ce
    };
    let cases: Vec<(Value, &str)> = vec![
        (with("specversion", Some(json!("0.3"))), "specversion `0.3`"),
        (with("id", None), "attribute `id` is missing"),
        (with("id", Some(json!("x"))), "id `x` is not a UUID"),
        (with("source", Some(json!(7))), "attribute `source`"),
        (
            with("time", Some(json!("noon"))),
            "`noon` is not an RFC 3339",
        ),
        (
            with("datacontenttype", Some(json!("text/xml"))),
            "`text/xml` is not JSON",
        ),
        (with("eventversion", Some(json!(0))), "`eventversion`"),
        (
            {
                let mut ce = with("type", Some(json!("order.paid")));
                ce["dataschema"] = json!("urn:event:order.paid:v1");
                ce
            },
            "is `order.paid` version 1, expected `order.created`",
        ),
        (
            with("type", Some(json!("order.paid"))),
            "dataschema `urn:event:order.created:v1` does not match",
        ),
        (
            with("dataschema", Some(json!("urn:event:order.created:v2"))),
            "dataschema `urn:event:order.created:v2` does not match",
        ),
        (
            with("dataschema", Some(json!(7))),
            "`dataschema` is missing or not a string",
        ),
        (
            with("data", Some(json!({"order_id": 5}))),
            "CloudEvent data",
        ),
        (json!([1, 2]), "JSON object"),
    ];
    for (ce, expected) in cases {
        let err = Envelope::<OrderCreated>::from_cloudevent(ce).unwrap_err();
        assert!(err.to_string().contains(expected), "{err} / {expected}");
    }
    let mut v2 = with("eventversion", Some(json!(2)));
    v2["dataschema"] = json!("urn:event:order.created:v2");
    assert!(matches!(
        Envelope::<OrderCreated>::from_cloudevent(v2),
        Err(CloudEventError::WrongEvent {
            found_version: 2,
            ..
        })
    ));
}

#[test]
fn raw_cloudevent_reads_any_type() {
    let ce = fixed().to_cloudevent().unwrap();
    let raw = RawEnvelope::from_cloudevent_raw(ce).unwrap();
    assert_eq!(raw.event_type, "order.created");
    assert_eq!(raw.decode::<OrderCreated>().unwrap(), fixed());
}
