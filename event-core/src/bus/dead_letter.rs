//! Deliveries that failed for good, kept for inspection and redelivery.

use super::published::Event;
use crate::envelope::RawEnvelope;
use crate::privacy::{redact_envelope, redact_text};
use crate::registry::Registry;
use chrono::{DateTime, Utc};
use serde_json::Value;
use serde_json::value::RawValue;
use std::fmt;

/// A delivery that failed permanently or ran out of attempts.
///
/// Nothing is dropped: the envelope is kept whole, with the last error and the number of
/// attempts, until [`EventBus::redeliver`](crate::EventBus::redeliver) sends it to its
/// subscription again.
///
/// Its `Debug` and `Display` show no personal data: the payload's `#[event(pii)]` fields
/// (and the partition key, when it is one of them) read `[redacted]`, and so does any of
/// their values that `last_error` quotes. `last_error` is kept so from the start: an error
/// quoting a PII value of the event has it replaced (see
/// [`redact_text`](crate::privacy::redact_text)).
#[derive(Clone)]
#[non_exhaustive]
pub struct DeadLetter {
    /// The subscription that failed to handle the event.
    pub subscription: String,
    /// The event, payload undecoded.
    pub envelope: RawEnvelope,
    /// The last error: the handler's, a panic message, or why the payload did not decode.
    pub last_error: String,
    /// How many times the handler ran; 0 when the payload never decoded.
    pub attempts: u32,
    /// When it was dead-lettered.
    pub failed_at: DateTime<Utc>,
    /// How many later events of its partition key it holds back, on a subscription with
    /// ordered dead letters ([`SubscriptionOptions::ordered_dead_letters`]); 0 otherwise.
    ///
    /// [`SubscriptionOptions::ordered_dead_letters`]: crate::SubscriptionOptions::ordered_dead_letters
    pub held_back: usize,
    /// The event as it was published in this process, so that a redelivery in memory hands
    /// handlers the typed event again rather than its JSON.
    pub(crate) event: Option<Event>,
}

impl DeadLetter {
    /// A dead letter read back from a transport: no typed event, holding nothing back.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn from_parts(
        subscription: String,
        envelope: RawEnvelope,
        last_error: String,
        attempts: u32,
        failed_at: DateTime<Utc>,
    ) -> DeadLetter {
        DeadLetter {
            subscription,
            envelope,
            last_error,
            attempts,
            failed_at,
            held_back: 0,
            event: None,
        }
    }

    /// A dead letter of `event` at `subscription`. An event whose payload does not serialize
    /// (only a typed one, published in this process, can be such) keeps `null` as its JSON
    /// payload, says why in `last_error`, and is still redelivered typed.
    pub(crate) fn new(
        subscription: String,
        event: &Event,
        mut last_error: String,
        attempts: u32,
    ) -> Self {
        let envelope = match event.raw() {
            Ok(raw) => (**raw).clone(),
            Err(error) => {
                last_error = format!("{last_error} (and the payload does not serialize: {error})");
                event.header().with_payload(RawValue::NULL.to_owned())
            }
        };
        let last_error = redact_event_error(event, &last_error);
        DeadLetter {
            subscription,
            envelope,
            last_error,
            attempts,
            failed_at: Utc::now(),
            held_back: 0,
            event: Some(Event::clone(event)),
        }
    }
}

/// The registry to redact with: the events linked in, or none when it is invalid (then
/// every payload is redacted whole).
fn redaction_registry() -> Registry {
    crate::registry().unwrap_or_default()
}

/// `text`, an error about the event `envelope`, with the values of the event's PII fields
/// redacted (every value of its payload, for an event type this process does not know).
pub(crate) fn redact_error(envelope: &RawEnvelope, text: &str) -> String {
    let payload: Value = serde_json::from_str(envelope.payload.get()).unwrap_or(Value::Null);
    redact_text(&redaction_registry(), &envelope.event_type, &payload, text)
}

/// `text`, an error about `event` (a handler's error, a panic message), with the values of
/// its PII fields redacted: for `last_error` and for log lines.
pub(crate) fn redact_event_error(event: &Event, text: &str) -> String {
    match event.raw() {
        Ok(raw) => redact_error(raw, text),
        Err(_) => text.to_owned(),
    }
}

impl fmt::Debug for DeadLetter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let envelope = redact_envelope(&redaction_registry(), &self.envelope);
        f.debug_struct("DeadLetter")
            .field("subscription", &self.subscription)
            .field("envelope", &format_args!("{envelope}"))
            .field(
                "last_error",
                &redact_error(&self.envelope, &self.last_error),
            )
            .field("attempts", &self.attempts)
            .field("failed_at", &self.failed_at)
            .field("held_back", &self.held_back)
            .finish_non_exhaustive()
    }
}

/// One line: which event failed where, after how many attempts, and why.
impl fmt::Display for DeadLetter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` version {} (event {}) dead-lettered at subscription `{}` after {} attempt{}: {}",
            self.envelope.event_type,
            self.envelope.version,
            self.envelope.id,
            self.subscription,
            self.attempts,
            if self.attempts == 1 { "" } else { "s" },
            redact_error(&self.envelope, &self.last_error),
        )
    }
}
