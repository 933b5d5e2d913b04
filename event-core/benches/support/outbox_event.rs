//! What the outbox benchmarks (`event-core/benches/outbox.rs`, and PostgreSQL's in
//! `tests/benches/postgres_outbox.rs`) append: the same envelope on every driver.

use chrono::{SubsecRound, Utc};
use event_core::{Envelope, Meta, PARTITION_KEY, RawEnvelope};
use serde_json::value::RawValue;
use uuid::Uuid;

/// The `order.created` of order `o-{n}`, with a new id.
pub(crate) fn envelope(n: u64) -> RawEnvelope {
    let mut meta = Meta::new();
    meta.insert(PARTITION_KEY.to_owned(), format!("o-{n}").into());
    Envelope {
        id: Uuid::now_v7(),
        event_type: "order.created".into(),
        version: 1,
        occurred_at: Utc::now().trunc_subsecs(3),
        source: Some("orders-service".into()),
        correlation_id: Some(format!("c-{n}").into()),
        causation_id: None,
        trace_id: None,
        payload: RawValue::from_string(format!(
            r#"{{"order_id":"o-{n}","customer_email":"a@b.c","total_cents":{n}}}"#
        ))
        .unwrap(),
        meta,
    }
}
