//! Personal data in events: redaction wherever the toolkit shows a payload, field
//! encryption with a key per data subject, and crypto-shredding.
//!
//! A payload field marked `#[event(pii)]` is personal data:
//!
//! - **Redaction**: the toolkit never prints it. Dead letters, errors, logs, the test
//!   harness, the admin API and the catalog's example payloads show [`REDACTED`] in its
//!   place ([`redact_payload`]).
//! - **Field encryption** (opt-in, [`EventBusBuilder::encrypt_fields`]): before an event
//!   leaves the process (to a store, a broker, a dead letter), each PII field is sealed
//!   with the key of its data subject: the field marked `#[event(subject)]`, else the
//!   partition key. Handlers receive it opened, as if nothing happened.
//! - **Crypto-shredding** ([`EventBus::forget_subject`]): the subject's keys are destroyed;
//!   from then on its PII fields read as erased everywhere: a handler receives the field
//!   type's `Default`, a view shows [`ERASED`]. Nothing of them can be read back from the
//!   database files or the broker, since only their ciphertext ever reached them.
//!
//! [`EventBusBuilder::encrypt_fields`]: crate::EventBusBuilder::encrypt_fields
//! [`EventBus::forget_subject`]: crate::EventBus::forget_subject

mod cipher;
mod fields;
mod keys;
mod redact;
mod xchacha;

pub use cipher::{InvalidMasterKey, MasterKey, SEALED_PREFIX};
pub use fields::{ERASED, FieldEncryption, Opened, ProtectError, erased_fields};
pub use keys::{KeyId, KeyStore, MemoryKeyStore, StoredKey};
pub use redact::{REDACTED, RedactedJsonError, redact_envelope, redact_payload, redact_text};
