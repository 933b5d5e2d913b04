//! The envelope around an event: identity, time, origin, tracing ids and metadata, with a
//! canonical JSON form and a CloudEvents 1.0 form.

use crate::event::DomainEvent;
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use smol_str::SmolStr;
use uuid::Uuid;

mod cloudevents;
mod meta;
mod time;

pub use cloudevents::{CloudEventError, UNKNOWN_SOURCE, dataschema};
pub use meta::{ACTOR_ID, DEPTH, Meta, PARTITION_KEY, TENANT_ID};

/// An event with its identity, time, origin and tracing ids.
///
/// Its canonical JSON has the fields in this order:
///
/// ```json
/// {"id":"0193...","type":"order.created","version":1,"occurred_at":"2026-11-23T10:00:00.123Z",
///  "source":"orders-service","correlation_id":"c-1","causation_id":null,"trace_id":null,
///  "payload":{...},"meta":{"partition_key":"o-1"}}
/// ```
///
/// [`RawEnvelope`] is the same with the payload kept as raw JSON, for routing and storage.
///
/// Copying the header is cheap: its strings are [`SmolStr`]s (inline when short, shared
/// otherwise; they compare with `&str` and `String` and deref to `str`), and [`Meta`] shares
/// its map. Build one with [`Envelope::new`]; set a string field from a `&str` or a `String`
/// with `.into()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<E> {
    /// A UUID v7: unique, and ordered by creation time.
    pub id: Uuid,
    /// The event type, like `order.created`.
    #[serde(rename = "type")]
    pub event_type: SmolStr,
    /// The schema version of the payload.
    pub version: u32,
    /// When the fact happened, UTC, serialized as RFC 3339 with milliseconds.
    #[serde(with = "time::rfc3339_millis")]
    pub occurred_at: DateTime<Utc>,
    /// The publishing service or module.
    pub source: Option<SmolStr>,
    /// Ties together every event of one request or workflow.
    pub correlation_id: Option<SmolStr>,
    /// The id of the event that caused this one, if a handler published it.
    pub causation_id: Option<SmolStr>,
    /// A distributed-tracing id: a W3C `traceparent` (with the feature `opentelemetry`,
    /// filled in from the publisher's span, and the parent of each delivery's span), or any
    /// other id, passed on untouched.
    pub trace_id: Option<SmolStr>,
    /// The event itself.
    pub payload: E,
    /// Non-domain metadata: `partition_key`, `tenant_id`, `actor_id`, anything else.
    #[serde(default)]
    pub meta: Meta,
}

/// An envelope whose payload is kept as raw JSON, undecoded.
pub type RawEnvelope = Envelope<Box<RawValue>>;

impl<E: DomainEvent> Envelope<E> {
    /// Wraps an event: a new v7 id, the current time (to the millisecond, the one the id
    /// carries), the event's declared source, and its partition key in `meta`.
    pub fn new(payload: E) -> Self {
        let mut meta = Meta::new();
        if let Some(key) = payload.partition_key() {
            meta.set_partition_key(key);
        }
        // One clock read for both: the time is the id's own millisecond.
        let id = Uuid::now_v7();
        let occurred_at = id
            .get_timestamp()
            .map(|t| t.to_unix())
            .and_then(|(secs, nanos)| DateTime::from_timestamp(i64::try_from(secs).ok()?, nanos))
            .unwrap_or_else(|| Utc::now().trunc_subsecs(3));
        Envelope {
            id,
            event_type: SmolStr::new_static(E::NAME),
            version: E::VERSION,
            occurred_at,
            source: E::descriptor().source().map(SmolStr::new_static),
            correlation_id: None,
            causation_id: None,
            trace_id: None,
            payload,
            meta,
        }
    }

    /// The same envelope with the payload as raw JSON.
    ///
    /// # Errors
    ///
    /// When the payload fails to serialize (a map with non-string keys, a custom
    /// `Serialize` that errors).
    pub fn to_raw(&self) -> Result<RawEnvelope, serde_json::Error> {
        let payload = serde_json::value::to_raw_value(&self.payload)?;
        Ok(self.with_payload(payload))
    }
}

impl<E> Envelope<E> {
    /// The same envelope around another payload.
    pub fn with_payload<P>(&self, payload: P) -> Envelope<P> {
        Envelope {
            id: self.id,
            event_type: self.event_type.clone(),
            version: self.version,
            occurred_at: self.occurred_at,
            source: self.source.clone(),
            correlation_id: self.correlation_id.clone(),
            causation_id: self.causation_id.clone(),
            trace_id: self.trace_id.clone(),
            payload,
            meta: self.meta.clone(),
        }
    }

    /// The partition key from `meta`, if any.
    pub fn partition_key(&self) -> Option<&str> {
        self.meta.partition_key()
    }

    /// The canonical JSON of the envelope.
    ///
    /// # Errors
    ///
    /// When the payload fails to serialize.
    pub fn to_json(&self) -> Result<String, serde_json::Error>
    where
        E: Serialize,
    {
        serde_json::to_string(self)
    }
}

impl RawEnvelope {
    /// Parses the canonical JSON of an envelope, keeping the payload undecoded.
    ///
    /// # Errors
    ///
    /// When the bytes are not an envelope: not JSON, a missing field, a bad id or timestamp.
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}
