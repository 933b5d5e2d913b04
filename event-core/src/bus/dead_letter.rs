//! Deliveries that failed for good, kept for inspection and redelivery.

use super::published::Event;
use crate::envelope::RawEnvelope;
use chrono::{DateTime, Utc};
use serde_json::value::RawValue;

/// A delivery that failed permanently or ran out of attempts.
///
/// Nothing is dropped: the envelope is kept whole, with the last error and the number of
/// attempts, until [`EventBus::redeliver`](crate::EventBus::redeliver) sends it to its
/// subscription again.
#[derive(Debug, Clone)]
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
