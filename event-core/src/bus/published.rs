//! An event on its way through the bus: typed, as published in this process, or raw, as
//! read from a store or received from elsewhere.
//!
//! A typed event reaches each typed subscription as its own clone (upcast through the typed
//! `previous` chain where the union names a newer version): no JSON. Its JSON is encoded at
//! most once, on first need (a store, a pattern subscription, a dead letter, the test
//! recorder), and shared from then on.

use crate::envelope::{Envelope, RawEnvelope};
use crate::event::DomainEvent;
use crate::union::{DecodeError, EventUnion};
use serde_json::Value;
use std::any::Any;
use std::fmt;
use std::sync::{Arc, OnceLock};

/// An event as the bus passes it around: one allocation per publish, shared by every
/// delivery.
pub(crate) type Event = Arc<dyn Published>;

/// What the bus needs of an event, typed or raw.
pub(crate) trait Published: Send + Sync + 'static {
    /// The envelope without its payload.
    fn header(&self) -> &Envelope<()>;

    /// The payload as published in this process, for a typed subscription to clone.
    fn payload(&self) -> Option<&dyn Any>;

    /// The canonical JSON form, encoded on first call; `Err` says why the payload does not
    /// serialize.
    fn raw(&self) -> Result<&Arc<RawEnvelope>, &str>;

    /// Whether the payload reads back from its JSON as it was written: `Err` names the
    /// JSON pointer of the first difference (a raw event always does).
    fn round_trip(&self) -> Result<(), String>;
}

impl fmt::Debug for dyn Published {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header = self.header();
        f.debug_struct("Event")
            .field("id", &header.id)
            .field("type", &header.event_type)
            .field("version", &header.version)
            .finish_non_exhaustive()
    }
}

/// Published in this process.
struct Typed<E> {
    header: Envelope<()>,
    payload: E,
    raw: OnceLock<Result<Arc<RawEnvelope>, String>>,
}

/// An event published in this process, holding its own copy of the payload.
pub(crate) fn typed<E: DomainEvent>(envelope: &Envelope<E>) -> Event {
    Arc::new(Typed {
        header: envelope.with_payload(()),
        payload: envelope.payload.clone(),
        raw: OnceLock::new(),
    })
}

impl<E: DomainEvent> Published for Typed<E> {
    fn header(&self) -> &Envelope<()> {
        &self.header
    }

    fn payload(&self) -> Option<&dyn Any> {
        Some(&self.payload)
    }

    fn raw(&self) -> Result<&Arc<RawEnvelope>, &str> {
        self.raw
            .get_or_init(|| {
                serde_json::value::to_raw_value(&self.payload)
                    .map(|payload| Arc::new(self.header.with_payload(payload)))
                    .map_err(|error| error.to_string())
            })
            .as_ref()
            .map_err(String::as_str)
    }

    fn round_trip(&self) -> Result<(), String> {
        let written = serde_json::to_value(&self.payload)
            .map_err(|error| format!("does not serialize: {error}"))?;
        let read: E = serde_json::from_value(written.clone())
            .map_err(|error| format!("does not read back from its own JSON: {error}"))?;
        let again = serde_json::to_value(&read)
            .map_err(|error| format!("does not serialize once read back: {error}"))?;
        match first_difference(&written, &again, "") {
            None => Ok(()),
            Some((pointer, before, after)) => Err(format!(
                "changes on a JSON round trip at `{pointer}`: written {before}, read back as \
                 {after} (a `#[serde(skip...)]` field or a lossy Serialize/Deserialize: a \
                 handler in another process would not see what one in this process sees)"
            )),
        }
    }
}

/// Read from a store or received as JSON.
struct Raw {
    header: Envelope<()>,
    raw: Arc<RawEnvelope>,
}

/// An event that arrives as JSON.
pub(crate) fn raw(envelope: RawEnvelope) -> Event {
    Arc::new(Raw {
        header: envelope.with_payload(()),
        raw: Arc::new(envelope),
    })
}

impl Published for Raw {
    fn header(&self) -> &Envelope<()> {
        &self.header
    }

    fn payload(&self) -> Option<&dyn Any> {
        None
    }

    fn raw(&self) -> Result<&Arc<RawEnvelope>, &str> {
        Ok(&self.raw)
    }

    fn round_trip(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The event as handlers see it: with field encryption on, an event read as JSON with its
/// sealed fields opened (`None`: it is as it came).
pub(crate) async fn opened(
    encryption: Option<&crate::privacy::FieldEncryption>,
    event: &dyn Published,
) -> Result<Option<Event>, crate::privacy::ProtectError> {
    let Some(encryption) = encryption else {
        return Ok(None);
    };
    if event.payload().is_some() {
        return Ok(None);
    }
    let Ok(envelope) = event.raw() else {
        return Ok(None);
    };
    Ok(encryption
        .open_sealed(envelope)
        .await?
        .map(|opened| raw(opened.envelope)))
}

/// The event as the union `U`: cloned from the typed payload when `U` takes it as it is
/// typed, decoded from its JSON otherwise.
pub(crate) fn decode<U: EventUnion>(event: &dyn Published) -> Result<Envelope<U>, DecodeError> {
    let header = event.header();
    if let Some(payload) = event.payload()
        && let Some(union) = U::__from_event(payload, &header.event_type, header.version)
    {
        let mut envelope = header.with_payload(union);
        envelope.version = envelope.payload.event().1;
        return Ok(envelope);
    }
    match event.raw() {
        Ok(raw) => raw.decode::<U>(),
        Err(error) => Err(DecodeError::payload(
            &header.event_type,
            header.version,
            serde::ser::Error::custom(error),
        )),
    }
}

/// The first place where two JSON values differ, as a JSON pointer, with both values there.
fn first_difference(a: &Value, b: &Value, pointer: &str) -> Option<(String, String, String)> {
    let differs = || Some((pointer.to_owned(), a.to_string(), b.to_string()));
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (key, value) in x {
                let here = format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"));
                match y.get(key) {
                    Some(other) => {
                        if let Some(found) = first_difference(value, other, &here) {
                            return Some(found);
                        }
                    }
                    None => return Some((here, value.to_string(), "nothing".to_owned())),
                }
            }
            y.keys().find(|key| !x.contains_key(*key)).map(|key| {
                let here = format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"));
                (here, "nothing".to_owned(), y[key].to_string())
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(p, q, &format!("{pointer}/{i}"))),
        _ if a == b => None,
        _ => differs(),
    }
}

#[cfg(test)]
mod tests {
    use super::first_difference;
    use serde_json::json;

    #[test]
    fn names_the_first_difference_by_json_pointer() {
        let a = json!({"a": 1, "b": {"c/d": [1, 2]}, "e": "x"});
        assert_eq!(first_difference(&a, &a.clone(), ""), None);
        let b = json!({"a": 1, "b": {"c/d": [1, 3]}, "e": "x"});
        assert_eq!(
            first_difference(&a, &b, ""),
            Some(("/b/c~1d/1".to_owned(), "2".to_owned(), "3".to_owned()))
        );
        let c = json!({"a": 1, "b": {"c/d": [1, 2]}});
        assert_eq!(
            first_difference(&a, &c, "").map(|d| d.0),
            Some("/e".to_owned())
        );
    }
}
