//! PII redaction: every envelope the API shows goes through here, and through
//! [`event_core::privacy`]'s redaction.

use event_core::privacy::redact_envelope;
use event_core::{RawEnvelope, Registry};
use serde_json::Value;

pub use event_core::privacy::REDACTED;

/// The envelope as JSON, with the payload fields marked `#[event(pii)]` replaced by
/// [`REDACTED`]. The fields are those of every version of the event's type this process
/// knows; a payload of a type it does not know at all is replaced whole, since nothing says
/// which of its fields are personal. When the partition key is a PII field (or the type is
/// unknown), its copy in `meta.partition_key` is redacted too.
pub(crate) fn envelope(registry: &Registry, envelope: &RawEnvelope) -> Value {
    redact_envelope(registry, envelope)
}
