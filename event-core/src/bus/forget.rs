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
    /// cached keys expire ([`FieldEncryption::cache_ttl`]). Dead letters this bus keeps in
    /// memory (without a store or a transport, in plain text) have the subject's fields
    /// erased.
    ///
    /// # Errors
    ///
    /// [`ProtectError::NotEnabled`] without [field
    /// encryption](crate::EventBusBuilder::encrypt_fields); [`ProtectError::Keys`] when the
    /// key store fails (call again: the keys may still exist).
    pub async fn forget_subject(&self, subject: &str) -> Result<usize, ProtectError> {
        let encryption = self.field_encryption().ok_or(ProtectError::NotEnabled)?;
        let forgotten = encryption.forget(subject).await?;
        let scrubbed = self.scrub_dead_letters(encryption, subject);
        tracing::info!(
            keys = forgotten,
            dead_letters_in_memory = scrubbed,
            "data subject forgotten"
        );
        Ok(forgotten)
    }

    /// Erases the subject's PII fields in the dead letters kept in memory (a bus without a
    /// store or a transport keeps its events in plain text, since they never leave the
    /// process); returns how many it changed.
    fn scrub_dead_letters(&self, encryption: &FieldEncryption, subject: &str) -> usize {
        let mut letters = self
            .inner
            .shared
            .dead_letters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut scrubbed = 0;
        for letter in letters.iter_mut() {
            if let Some(erased) = encryption.erase_plain(&letter.envelope, subject) {
                letter.envelope = erased;
                // The typed event holds the fields too: a redelivery reads the JSON now.
                letter.event = None;
                scrubbed += 1;
            }
        }
        scrubbed
    }

    /// The bus's field encryption, if [turned on](crate::EventBusBuilder::encrypt_fields).
    pub fn field_encryption(&self) -> Option<&FieldEncryption> {
        self.inner.shared.encryption.as_deref()
    }
}
