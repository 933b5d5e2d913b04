//! Redaction: what a PII field reads as wherever the toolkit shows a payload.

use crate::registry::Registry;
use serde_json::Value;

/// What a redacted field reads as.
pub const REDACTED: &str = "[redacted]";

/// Replaces the `#[event(pii)]` fields of a payload of `event_type` with [`REDACTED`], for
/// every version of the type `registry` knows; a payload of a type it does not know at
/// all is replaced whole, since nothing says which of its fields are personal.
pub fn redact_payload(registry: &Registry, event_type: &str, payload: &mut Value) {
    let versions: Vec<_> = registry
        .iter()
        .filter(|descriptor| descriptor.name() == event_type)
        .collect();
    if versions.is_empty() {
        *payload = Value::String(format!(
            "{REDACTED}: an event type this service does not know"
        ));
        return;
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
}
