//! CloudEvents 1.0, structured JSON mode, both ways.
//!
//! Attributes: `specversion`, `id`, `source`, `type`, `time`, `datacontenttype`,
//! `dataschema` (`urn:event:<name>:v<N>`, the `$id` of the event's schema in the catalog),
//! `data`, and the extensions `eventversion`, `correlationid`, `causationid`, `traceid`, `partitionkey`,
//! `tenantid`, `actorid`. Other `meta` entries travel as extensions named by their key with
//! everything but `[a-z0-9]` removed.

use super::time::rfc3339_millis;
use super::{ACTOR_ID, Envelope, Meta, PARTITION_KEY, RawEnvelope, TENANT_ID};
use crate::event::DomainEvent;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use smol_str::SmolStr;

/// What `source` says when the envelope has none: CloudEvents requires one.
pub const UNKNOWN_SOURCE: &str = "unknown";

/// The schema URI of an event at a version, `urn:event:<name>:v<N>`: the CloudEvents
/// `dataschema` attribute, and the `$id` of the event's schema file in the catalog.
///
/// ```
/// assert_eq!(event_core::dataschema("order.created", 2), "urn:event:order.created:v2");
/// ```
pub fn dataschema(name: &str, version: u32) -> String {
    format!("{DATASCHEMA_PREFIX}{name}:v{version}")
}

const DATASCHEMA_PREFIX: &str = "urn:event:";

/// The name and version a `dataschema` of ours names; `None` for any other URI.
fn parse_dataschema(uri: &str) -> Option<(&str, Option<u32>)> {
    let rest = uri.strip_prefix(DATASCHEMA_PREFIX)?;
    let (name, version) = rest.rsplit_once(":v")?;
    Some((name, version.parse().ok().filter(|v| *v >= 1)))
}

/// The metadata keys with an extension name of their own, and the extension.
const META_EXTENSIONS: [(&str, &str); 3] = [
    (PARTITION_KEY, "partitionkey"),
    (TENANT_ID, "tenantid"),
    (ACTOR_ID, "actorid"),
];

/// Attributes that are not extensions.
const CONTEXT_ATTRIBUTES: [&str; 10] = [
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "datacontenttype",
    "dataschema",
    "subject",
    "data",
    "data_base64",
];

/// Why a CloudEvent could not be read, or an envelope not written as one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CloudEventError {
    /// The JSON is not an object.
    #[error("a CloudEvent in structured JSON mode is a JSON object")]
    NotAnObject,
    /// A required attribute is absent or has the wrong JSON type.
    #[error("CloudEvent attribute `{attribute}` is missing or not {expected}")]
    Attribute {
        /// The attribute's name.
        attribute: &'static str,
        /// What it should be.
        expected: &'static str,
    },
    /// `specversion` is not `1.0`.
    #[error("CloudEvents specversion `{0}` is not supported: only 1.0")]
    SpecVersion(String),
    /// `id` is not a UUID.
    #[error("CloudEvent id `{0}` is not a UUID")]
    Id(String),
    /// `time` is not RFC 3339.
    #[error("CloudEvent time: {0}")]
    Time(String),
    /// `datacontenttype` is not JSON.
    #[error("CloudEvent datacontenttype `{0}` is not JSON")]
    ContentType(String),
    /// The event's type or version is not the one asked for.
    #[error(
        "CloudEvent is `{found}` version {found_version}, expected `{expected}` version {expected_version}"
    )]
    WrongEvent {
        /// The type found.
        found: String,
        /// The version found.
        found_version: u32,
        /// The type expected.
        expected: &'static str,
        /// The version expected.
        expected_version: u32,
    },
    /// `dataschema` is a `urn:event:` URI naming another event or version than the
    /// CloudEvent's `type` and `eventversion`.
    #[error("CloudEvent dataschema `{0}` does not match its type and eventversion")]
    DataSchema(String),
    /// `data` does not deserialize into the payload type, or the payload does not serialize.
    #[error("CloudEvent data: {0}")]
    Data(#[source] serde_json::Error),
}

impl<E: Serialize> Envelope<E> {
    /// The envelope as a CloudEvents 1.0 structured JSON event.
    ///
    /// # Errors
    ///
    /// [`CloudEventError::Data`] when the payload fails to serialize (a map whose keys are
    /// not strings, a `Serialize` impl that errors).
    pub fn to_cloudevent(&self) -> Result<Value, CloudEventError> {
        let data = serde_json::to_value(&self.payload).map_err(CloudEventError::Data)?;
        Ok(self.cloudevent_with(data))
    }

    fn cloudevent_with(&self, data: Value) -> Value {
        let mut ce = Map::new();
        let mut put = |key: &str, value: Value| {
            ce.insert(key.to_owned(), value);
        };
        put("specversion", "1.0".into());
        put("id", self.id.to_string().into());
        put(
            "source",
            self.source.as_deref().unwrap_or(UNKNOWN_SOURCE).into(),
        );
        put("type", self.event_type.as_str().into());
        put("time", rfc3339_millis::format(&self.occurred_at).into());
        put("datacontenttype", "application/json".into());
        put(
            "dataschema",
            dataschema(&self.event_type, self.version).into(),
        );
        put("eventversion", self.version.into());
        for (key, value) in [
            ("correlationid", &self.correlation_id),
            ("causationid", &self.causation_id),
            ("traceid", &self.trace_id),
        ] {
            if let Some(value) = value {
                put(key, value.as_str().into());
            }
        }
        for (key, value) in self.meta.to_map() {
            let name = extension_name(&key);
            if name.is_empty() || CONTEXT_ATTRIBUTES.contains(&name.as_str()) {
                continue;
            }
            let value = match value {
                Value::String(_) | Value::Number(_) | Value::Bool(_) => value,
                other => Value::String(other.to_string()),
            };
            put(&name, value);
        }
        put("data", data);
        Value::Object(ce)
    }
}

impl<E: DomainEvent> Envelope<E> {
    /// Reads a CloudEvents 1.0 structured JSON event of type `E`.
    ///
    /// # Errors
    ///
    /// A [`CloudEventError`] naming the attribute that is missing or wrong, the type or
    /// version when it is another event, or the deserialization error of `data`.
    pub fn from_cloudevent(value: Value) -> Result<Self, CloudEventError> {
        let envelope: Envelope<E> = parse(value)?;
        if envelope.event_type != E::NAME || envelope.version != E::VERSION {
            return Err(CloudEventError::WrongEvent {
                found: envelope.event_type.into(),
                found_version: envelope.version,
                expected: E::NAME,
                expected_version: E::VERSION,
            });
        }
        Ok(envelope)
    }
}

impl RawEnvelope {
    /// Reads any CloudEvents 1.0 structured JSON event, keeping `data` as raw JSON.
    ///
    /// # Errors
    ///
    /// A [`CloudEventError`] naming the attribute that is missing or wrong.
    pub fn from_cloudevent_raw(value: Value) -> Result<Self, CloudEventError> {
        parse::<Box<RawValue>>(value)
    }
}

/// `tenant_id` → `tenantid`: CloudEvents extension names are lowercase alphanumerics.
fn extension_name(key: &str) -> String {
    if let Some((_, ext)) = META_EXTENSIONS.iter().find(|(k, _)| *k == key) {
        return (*ext).to_owned();
    }
    key.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn parse<P: DeserializeOwned>(value: Value) -> Result<Envelope<P>, CloudEventError> {
    let Value::Object(mut ce) = value else {
        return Err(CloudEventError::NotAnObject);
    };
    // CloudEvents 1.0: every required attribute is a non-empty string.
    let mut string = |attribute: &'static str| match ce.remove(attribute) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        _ => Err(CloudEventError::Attribute {
            attribute,
            expected: "a non-empty string",
        }),
    };
    let spec = string("specversion")?;
    if spec != "1.0" {
        return Err(CloudEventError::SpecVersion(spec));
    }
    let id = string("id")?;
    let id = id.parse().map_err(|_| CloudEventError::Id(id))?;
    let source = string("source")?;
    let event_type = string("type")?;
    let time = string("time")?;
    let occurred_at = rfc3339_millis::parse(&time).map_err(CloudEventError::Time)?;
    if let Some(content_type) = ce.remove("datacontenttype") {
        let content_type = content_type.as_str().unwrap_or_default().to_owned();
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(CloudEventError::ContentType(content_type));
        }
    }
    let schema_version = match ce.remove("dataschema") {
        Some(Value::String(uri)) => match parse_dataschema(&uri) {
            Some((name, version)) if name == event_type && version.is_some() => version,
            // Ours, but naming another event or no version: the event is not what it says.
            Some(_) => return Err(CloudEventError::DataSchema(uri)),
            // Another producer's schema URI: nothing to check it against.
            None => None,
        },
        Some(_) => {
            return Err(CloudEventError::Attribute {
                attribute: "dataschema",
                expected: "a string",
            });
        }
        None => None,
    };
    let version = match ce.remove("eventversion") {
        None => schema_version.unwrap_or(1),
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| *v >= 1)
            .ok_or(CloudEventError::Attribute {
                attribute: "eventversion",
                expected: "an integer of at least 1",
            })?,
    };
    let mut text = |key: &str| match ce.remove(key) {
        Some(Value::String(s)) => Some(SmolStr::from(s)),
        _ => None,
    };
    if let Some(from_schema) = schema_version.filter(|v| *v != version) {
        return Err(CloudEventError::DataSchema(dataschema(
            &event_type,
            from_schema,
        )));
    }
    let correlation_id = text("correlationid");
    let causation_id = text("causationid");
    let trace_id = text("traceid");
    let data = ce.remove("data").unwrap_or(Value::Null);
    let payload = serde_json::from_value(data).map_err(CloudEventError::Data)?;
    let mut meta = Meta::new();
    for (key, ext) in META_EXTENSIONS {
        if let Some(value) = ce.remove(ext) {
            meta.insert(key.to_owned(), value);
        }
    }
    for (key, value) in ce {
        if !CONTEXT_ATTRIBUTES.contains(&key.as_str()) {
            meta.insert(key, value);
        }
    }
    Ok(Envelope {
        id,
        event_type: event_type.into(),
        version,
        occurred_at,
        source: (source != UNKNOWN_SOURCE).then(|| source.into()),
        correlation_id,
        causation_id,
        trace_id,
        payload,
        meta,
    })
}
