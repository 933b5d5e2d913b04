//! Typed subscriptions: an enum of events, decoded by `type` and `version`.

use crate::envelope::{Envelope, RawEnvelope};
use crate::event::DomainEvent;
use crate::privacy::RedactedJsonError;

/// An enum of events a consumer handles: one variant per event, matched exhaustively.
///
/// Implement it with `#[derive(EventUnion)]`. Decoding picks the variant by the envelope's
/// `type` and `version` and reads the payload bytes once, straight into that variant's type.
pub trait EventUnion: Sized + Send + Sync + 'static {
    /// The (name, version) pairs the union accepts, one per variant, in declaration order.
    const EVENTS: &'static [(&'static str, u32)];

    /// The consumer named by `#[union(consumer = "...")]`, if any.
    const CONSUMER: Option<&'static str> = None;

    /// Decodes a payload of the event `event_type` at `version` into the matching variant:
    /// the variant of that exact version, or else the newest variant of that event, upcast
    /// from `version` through its `previous` chain.
    ///
    /// # Errors
    ///
    /// [`DecodeError::UnknownEvent`] when no variant carries that event,
    /// [`DecodeError::NewerVersion`] when a variant carries an older version of it, and
    /// [`DecodeError::Payload`] when the JSON does not deserialize into the variant's type.
    fn decode_payload(event_type: &str, version: u32, payload: &str) -> Result<Self, DecodeError>;

    /// Not public API: the event `event` (published in this process as `event_type` at
    /// `version`) as the matching variant, cloned, and upcast through the typed `previous`
    /// chain where the union names a newer version: no JSON. `None` when no variant takes it
    /// as it is typed, and the bus then decodes its JSON. The derive implements it.
    #[doc(hidden)]
    fn __from_event(event: &dyn std::any::Any, event_type: &str, version: u32) -> Option<Self> {
        let _ = (event, event_type, version);
        None
    }

    /// The (name, version) of the event the value holds.
    fn event(&self) -> (&'static str, u32);

    /// The partition key of the event the value holds.
    fn partition_key(&self) -> Option<String>;

    /// Whether the union has a variant for this (name, version).
    fn accepts(event_type: &str, version: u32) -> bool {
        Self::EVENTS
            .iter()
            .any(|(name, v)| *name == event_type && *v == version)
    }
}

/// A single event is a union of one: `subscribe_event::<E>` is `subscribe::<E>`.
impl<E: DomainEvent> EventUnion for E {
    const EVENTS: &'static [(&'static str, u32)] = &[(E::NAME, E::VERSION)];

    fn decode_payload(event_type: &str, version: u32, payload: &str) -> Result<Self, DecodeError> {
        let decoded = (event_type == E::NAME)
            .then(|| E::__decode_at(version, payload))
            .flatten();
        match decoded {
            Some(result) => {
                result.map_err(|source| DecodeError::payload(event_type, version, source))
            }
            None => Err(crate::__private::unknown_or_newer(
                Self::EVENTS,
                event_type,
                version,
            )),
        }
    }

    fn __from_event(event: &dyn std::any::Any, event_type: &str, version: u32) -> Option<Self> {
        (event_type == E::NAME && version <= E::VERSION)
            .then(|| E::__from_any(event))
            .flatten()
    }

    fn event(&self) -> (&'static str, u32) {
        (E::NAME, E::VERSION)
    }

    fn partition_key(&self) -> Option<String> {
        DomainEvent::partition_key(self)
    }
}

impl RawEnvelope {
    /// Decodes the payload into the union `U`, keeping every other field.
    ///
    /// An event written at an older version than the one `U` names arrives upcast, through
    /// the `previous` chain and its `From` impls, with `version` set to the version of the
    /// type it now holds.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] when `U` has no variant for the event, or the payload does not
    /// deserialize into it.
    pub fn decode<U: EventUnion>(&self) -> Result<Envelope<U>, DecodeError> {
        let payload = U::decode_payload(&self.event_type, self.version, self.payload.get())?;
        let mut envelope = self.with_payload(payload);
        envelope.version = envelope.payload.event().1;
        Ok(envelope)
    }
}

/// Why a payload could not be decoded into a union or event type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The union has no variant for this event type and version.
    ///
    /// The event reached a subscription that does not handle it; it is dead-lettered there.
    #[error("no variant for event `{event_type}` version {version}")]
    UnknownEvent {
        /// The event type received.
        event_type: String,
        /// Its version.
        version: u32,
    },
    /// The event was written by a newer producer than this consumer knows.
    ///
    /// Deploy a consumer that knows the new version; the event is kept in dead letters and can
    /// be redelivered then.
    #[error(
        "event `{event_type}` version {version} was written by a newer producer: this consumer knows up to version {known}"
    )]
    NewerVersion {
        /// The event type received.
        event_type: String,
        /// The version received.
        version: u32,
        /// The newest version this consumer knows.
        known: u32,
    },
    /// The payload does not match the event's type.
    ///
    /// Neither its `Display` nor its `Debug` shows a value of the payload, which may be
    /// personal data: the error ends up in dead letters and logs.
    #[error("payload of `{event_type}` version {version} does not match its type")]
    Payload {
        /// The event type received.
        event_type: String,
        /// Its version.
        version: u32,
        /// What `serde_json` said, with line and column, the values it quotes redacted
        /// (`invalid type: string [redacted], expected u32 at line 1 column 30`).
        #[source]
        source: RedactedJsonError,
    },
}

impl DecodeError {
    #[doc(hidden)]
    pub fn unknown(event_type: &str, version: u32) -> Self {
        DecodeError::UnknownEvent {
            event_type: event_type.to_owned(),
            version,
        }
    }

    #[doc(hidden)]
    pub fn newer(event_type: &str, version: u32, known: u32) -> Self {
        DecodeError::NewerVersion {
            event_type: event_type.to_owned(),
            version,
            known,
        }
    }

    #[doc(hidden)]
    pub fn payload(event_type: &str, version: u32, source: serde_json::Error) -> Self {
        DecodeError::Payload {
            event_type: event_type.to_owned(),
            version,
            source: source.into(),
        }
    }
}

/// A union registered with a consumer name, for the catalog. Not public API.
#[doc(hidden)]
#[derive(Debug)]
pub struct ConsumerRegistration {
    /// The consumer's name.
    pub consumer: &'static str,
    /// The union's Rust type.
    pub rust_type: &'static str,
    /// The events it accepts.
    pub events: &'static [(&'static str, u32)],
}

inventory::collect!(ConsumerRegistration);

/// The consumers that declared a union accepting this event, sorted and each once.
///
/// Filled by `#[union(consumer = "...")]`; the catalog lists them beside each event.
pub fn consumers_of(event_type: &str, version: u32) -> Vec<&'static str> {
    names_listing(
        inventory::iter::<ConsumerRegistration>
            .into_iter()
            .map(|r| (r.consumer, r.events)),
        event_type,
        version,
    )
}

/// The names of the registrations (name, events) whose events include
/// (`event_type`, `version`), sorted and each once: consumers here, producers in
/// `producer.rs`.
pub(crate) fn names_listing(
    registrations: impl Iterator<Item = (&'static str, &'static [(&'static str, u32)])>,
    event_type: &str,
    version: u32,
) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = registrations
        .filter(|(_, events)| {
            events
                .iter()
                .any(|(n, v)| *n == event_type && *v == version)
        })
        .map(|(name, _)| name)
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}
