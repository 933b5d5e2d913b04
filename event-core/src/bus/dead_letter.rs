//! Deliveries that failed for good, kept for inspection and redelivery.

use crate::envelope::RawEnvelope;
use chrono::{DateTime, Utc};

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
}
