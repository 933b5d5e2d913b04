//! PII redaction: every envelope the API shows goes through here, and through
//! [`event_core::privacy`]'s redaction.

use event_core::privacy::{ERASED, KeyStore, erased_fields, redact_envelope};
use event_core::{RawEnvelope, Registry};
use serde_json::Value;

pub use event_core::privacy::REDACTED;

/// The envelope as JSON, with the payload fields marked `#[event(pii)]` replaced by
/// [`REDACTED`]. The fields are those of every version of the event's type this process
/// knows; a payload of a type it does not know at all is replaced whole, since nothing says
/// which of its fields are personal. When the partition key is a PII field (or the type is
/// unknown), its copy in `meta.partition_key` is redacted too.
///
/// The fields in `erased` (sealed by field encryption, their subject forgotten) read
/// [`ERASED`] instead.
pub(crate) fn envelope(registry: &Registry, envelope: &RawEnvelope, erased: &[String]) -> Value {
    let mut json = redact_envelope(registry, envelope);
    if let Some(Value::Object(payload)) = json.get_mut("payload") {
        for field in erased {
            if let Some(value) = payload.get_mut(field) {
                *value = Value::String(ERASED.to_owned());
            }
        }
    }
    json
}

/// The fields of `envelope` erased by crypto-shredding, with a key store to ask; none when
/// the key store fails (they then read as redacted, which they are too).
pub(crate) async fn erased(keys: Option<&dyn KeyStore>, envelope: &RawEnvelope) -> Vec<String> {
    let Some(keys) = keys else {
        return Vec::new();
    };
    erased_fields(keys, envelope).await.unwrap_or_else(|error| {
        tracing::warn!(%error, "the key store failed: erased fields shown as redacted");
        Vec::new()
    })
}
