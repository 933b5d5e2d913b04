//! Dead letters as a store keeps them.

use crate::bus::DeadLetter;
use crate::envelope::RawEnvelope;
use chrono::{DateTime, Utc};

/// The id a store gives a dead letter.
pub type DeadLetterId = i64;

/// A dead letter read back from a store: a [`DeadLetter`] plus the id to remove it by.
///
/// ```
/// use event_core::store::StoredDeadLetter;
/// use event_core::{DeadLetter, RawEnvelope};
///
/// # let json = r#"{"id":"0193a5b0-7e2a-7c3d-8f00-000000000001","type":"order.created","version":1,
/// #   "occurred_at":"2026-11-23T10:00:00.123Z","source":null,"correlation_id":null,
/// #   "causation_id":null,"trace_id":null,"payload":{},"meta":{}}"#;
/// # let envelope = RawEnvelope::from_json(json.as_bytes()).unwrap();
/// let stored = StoredDeadLetter {
///     id: 7,
///     subscription: "billing".into(),
///     envelope,
///     last_error: "payment gateway timed out".into(),
///     attempts: 5,
///     failed_at: chrono::Utc::now(),
/// };
/// let letter = DeadLetter::from(stored);
/// assert_eq!(letter.attempts, 5);
/// ```
#[derive(Debug, Clone)]
pub struct StoredDeadLetter {
    /// The store's id of the letter.
    pub id: DeadLetterId,
    /// The subscription that failed to handle the event.
    pub subscription: String,
    /// The event, payload undecoded.
    pub envelope: RawEnvelope,
    /// The last error.
    pub last_error: String,
    /// How many times the handler ran.
    pub attempts: u32,
    /// When it was dead-lettered (to the millisecond).
    pub failed_at: DateTime<Utc>,
}

impl From<StoredDeadLetter> for DeadLetter {
    fn from(stored: StoredDeadLetter) -> Self {
        DeadLetter {
            subscription: stored.subscription,
            envelope: stored.envelope,
            last_error: stored.last_error,
            attempts: stored.attempts,
            failed_at: stored.failed_at,
            held_back: 0,
            event: None,
        }
    }
}
