//! PII redaction: every envelope the API shows goes through here.

use event_core::{RawEnvelope, Registry};
use serde_json::Value;

/// What a redacted field reads as.
pub const REDACTED: &str = "[redacted]";

/// The envelope as JSON, with the payload fields marked `#[event(pii)]` replaced by
/// [`REDACTED`]. The fields are those of every version of the event's type this process
/// knows; a payload of a type it does not know at all is replaced whole, since nothing says
/// which of its fields are personal. When the partition key is a PII field, its copy in
/// `meta.partition_key` is redacted too.
pub(crate) fn envelope(registry: &Registry, envelope: &RawEnvelope) -> Value {
    let mut json = serde_json::to_value(envelope).unwrap_or(Value::Null);
    let Some(payload) = json.get_mut("payload") else {
        return json;
    };
    let versions: Vec<_> = registry
        .iter()
        .filter(|descriptor| descriptor.name() == envelope.event_type.as_str())
        .collect();
    if versions.is_empty() {
        *payload = Value::String(format!(
            "{REDACTED}: an event type this service does not know"
        ));
        // The key is a copy of a payload field, maybe a personal one.
        if let Some(key) = json.pointer_mut("/meta/partition_key") {
            *key = Value::String(REDACTED.to_owned());
        }
        return json;
    }
    if let Value::Object(fields) = payload {
        for descriptor in &versions {
            for field in descriptor.pii() {
                if let Some(value) = fields.get_mut(*field) {
                    *value = Value::String(REDACTED.to_owned());
                }
            }
        }
    }
    let personal_key = versions.iter().any(|descriptor| {
        descriptor
            .partition_key()
            .is_some_and(|key| descriptor.pii().contains(&key))
    });
    if personal_key && let Some(key) = json.pointer_mut("/meta/partition_key") {
        *key = Value::String(REDACTED.to_owned());
    }
    json
}
