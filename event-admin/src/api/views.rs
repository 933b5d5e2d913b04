//! The JSON shapes the API answers with. Each is in the `OpenAPI` document
//! (`/v1/openapi.json`) through its JSON Schema.

use event_core::transport::TransportInfo;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

/// An event as the store keeps it, its `#[event(pii)]` fields redacted.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EventView {
    /// Its place in the store's order.
    pub position: u64,
    /// The canonical envelope: `id`, `type`, `version`, `occurred_at`, `source`,
    /// `correlation_id`, `causation_id`, `trace_id`, `payload`, `meta`. PII payload fields
    /// read `"[redacted]"`, or `"[erased]"` once field encryption's key of their subject
    /// is destroyed (`EventBus::forget_subject`).
    pub event: Value,
}

/// A page of events.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EventPage {
    /// The events, in the order asked for.
    pub events: Vec<EventView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A subscription's counters for one event type.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TypeView {
    /// The event type.
    pub event_type: String,
    /// Deliveries handled.
    pub delivered: u64,
    /// Failed attempts retried.
    pub retried: u64,
    /// Deliveries dead-lettered since the process started.
    pub dead_lettered: u64,
    /// Median handler latency in milliseconds (upper bound of a power-of-two bucket; of the
    /// calls sampled, one in 8); absent before any call was timed.
    pub latency_p50_ms: Option<f64>,
    /// 99th percentile handler latency in milliseconds, as the median.
    pub latency_p99_ms: Option<f64>,
}

/// A subscription as it is now.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SubscriptionView {
    /// Its name.
    pub name: String,
    /// `memory`, `store`, `store-group` or `transport`.
    pub feed: String,
    /// The event types it receives, or its pattern.
    pub events: Vec<String>,
    /// Its lanes.
    pub lanes: usize,
    /// Deliveries queued or being handled.
    pub in_flight: u64,
    /// Everything up to this store position is handled (a subscription reading a store).
    pub checkpoint: Option<u64>,
    /// How far behind it is (store positions, broker entries, or queued deliveries);
    /// absent when unknown.
    pub lag: Option<u64>,
    /// Deliveries handled, all types.
    pub delivered: u64,
    /// Failed attempts retried, all types.
    pub retried: u64,
    /// Deliveries dead-lettered since the process started, all types.
    pub dead_lettered: u64,
    /// Dead letters kept now.
    pub dead_letters: u64,
    /// Counters per event type.
    pub by_type: Vec<TypeView>,
}

/// A page of subscriptions, by name.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SubscriptionPage {
    /// The subscriptions.
    pub subscriptions: Vec<SubscriptionView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A dead letter: an event a subscription failed to handle for good.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DeadLetterView {
    /// The letter's id in this API: `{event id}:{subscription}`.
    pub id: String,
    /// The subscription that failed.
    pub subscription: String,
    /// The event's id.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// Its partition key, if any.
    pub partition_key: Option<String>,
    /// The last error.
    pub error: String,
    /// Handler attempts; 0 when the payload never decoded.
    pub attempts: u32,
    /// When it was dead-lettered (RFC 3339).
    pub failed_at: String,
    /// Later events of its key it holds back (ordered dead letters).
    pub held_back: usize,
    /// The event, PII redacted (as in [`EventView`]).
    pub event: Value,
}

/// A page of dead letters, oldest first.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DeadLetterPage {
    /// The dead letters.
    pub dead_letters: Vec<DeadLetterView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// What an operation did.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ActionView {
    /// What it acted on: a dead letter's id, or a subscription's name.
    pub id: String,
    /// `redelivered`, `discarded` or `replaying`.
    pub action: String,
}

/// One check of `/health`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CheckView {
    /// `store`, `transport`, `bus`, or `lag:{subscription}`.
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// Why not, or what it saw.
    pub detail: String,
}

/// The answer of `/health`: 200 when every check passed, 503 otherwise.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HealthView {
    /// `ok` or `unhealthy`.
    pub status: String,
    /// Every check.
    pub checks: Vec<CheckView>,
}

/// The broker's state.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StreamsView {
    /// Its topics, shards and consumer groups; absent on a bus without a transport.
    pub transport: Option<TransportInfo>,
}
