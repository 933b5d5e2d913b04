//! Crypto-shredding: forgetting a data subject.

use super::EventBus;
use crate::privacy::{FieldEncryption, ProtectError};

impl EventBus {
    /// Forgets a data subject: destroys its keys, so that its `#[event(pii)]` fields read as
    /// erased everywhere from now on (handlers receive each field's `Default`, views show
    /// it erased), in the store, on the broker, in dead letters and in replays, while every
    /// other field still reads. Returns how many keys the subject had.
    ///
    /// Other processes sharing the key store stop opening the subject's fields once their
    /// cached keys expire ([`FieldEncryption::cache_ttl`]).
    ///
    /// # Errors
    ///
    /// [`ProtectError::NotEnabled`] without [field
    /// encryption](crate::EventBusBuilder::encrypt_fields); [`ProtectError::Keys`] when the
    /// key store fails (call again: the keys may still exist).
    pub async fn forget_subject(&self, subject: &str) -> Result<usize, ProtectError> {
        let encryption = self.field_encryption().ok_or(ProtectError::NotEnabled)?;
        let forgotten = encryption.forget(subject).await?;
        tracing::info!(keys = forgotten, "data subject forgotten");
        Ok(forgotten)
    }

    /// The bus's field encryption, if [turned on](crate::EventBusBuilder::encrypt_fields).
    pub fn field_encryption(&self) -> Option<&FieldEncryption> {
        self.inner.shared.encryption.as_deref()
    }
}
