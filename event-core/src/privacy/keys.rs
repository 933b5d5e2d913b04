//! Where the subjects' data keys live: the [`KeyStore`] trait, and an in-memory one.

use crate::store::StoreError;
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use uuid::Uuid;

/// The id of one data key, written in every field it encrypts, so that a subject's key can
/// rotate while older fields still read with the key they were sealed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(Uuid);

impl KeyId {
    /// A new random id.
    pub fn random() -> Self {
        KeyId(Uuid::new_v4())
    }

    /// The id as 16 bytes, as the key stores and the ciphertext keep it.
    pub fn to_bytes(self) -> [u8; 16] {
        self.0.into_bytes()
    }

    /// The id from its 16 bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        KeyId(Uuid::from_bytes(bytes))
    }

    /// The id as a UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// One data key as a key store keeps it: wrapped (encrypted) by the master key, never in
/// plain text.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredKey {
    /// Its id, written in every field it seals.
    pub id: KeyId,
    /// The data subject it belongs to.
    pub subject: String,
    /// The key, sealed by the master key: a 24-byte nonce, then the ciphertext and its tag.
    pub wrapped: Vec<u8>,
    /// When it was made; a subject's newest key seals new fields.
    pub created_at: DateTime<Utc>,
}

impl StoredKey {
    /// A key as read back from a store.
    pub fn new(id: KeyId, subject: String, wrapped: Vec<u8>, created_at: DateTime<Utc>) -> Self {
        StoredKey {
            id,
            subject,
            wrapped,
            created_at,
        }
    }
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("id", &self.id)
            .field("subject", &self.subject)
            .field("wrapped", &format_args!("[{} bytes]", self.wrapped.len()))
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// Where data keys are kept. The SQLite and PostgreSQL stores are key stores too (a table
/// of their own, in the same database); [`MemoryKeyStore`] keeps them for the life of the
/// process.
///
/// A subject may have several keys (a key rotated, or two processes that made a subject's
/// first key at once): each field names the key that sealed it, and the newest seals new
/// fields. [`forget`](Self::forget) destroys every key of a subject, and with them, for
/// good, whatever they sealed.
pub trait KeyStore: Send + Sync + 'static {
    /// The subject's newest key, or `None` when it has none (never had, or forgotten).
    fn current_key<'a>(
        &'a self,
        subject: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredKey>, StoreError>>;

    /// The key with this id, or `None` when it does not exist (any more).
    fn key(&self, id: KeyId) -> BoxFuture<'_, Result<Option<StoredKey>, StoreError>>;

    /// Keeps a new key.
    fn insert_key(&self, key: StoredKey) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Destroys every key of the subject, leaving nothing of them behind in the store's
    /// files (a store that cannot promise that must say so in its documentation); returns
    /// how many there were.
    fn forget<'a>(&'a self, subject: &'a str) -> BoxFuture<'a, Result<usize, StoreError>>;
}

/// Keys in this process's memory: lost when it exits, with everything they sealed. For
/// tests, and for a bus whose events do not outlive the process.
#[derive(Debug, Default)]
pub struct MemoryKeyStore {
    keys: Mutex<HashMap<KeyId, StoredKey>>,
}

impl MemoryKeyStore {
    /// An empty key store.
    pub fn new() -> Self {
        Self::default()
    }

    fn keys(&self) -> std::sync::MutexGuard<'_, HashMap<KeyId, StoredKey>> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl KeyStore for MemoryKeyStore {
    fn current_key<'a>(
        &'a self,
        subject: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredKey>, StoreError>> {
        let newest = self
            .keys()
            .values()
            .filter(|key| key.subject == subject)
            .max_by_key(|key| (key.created_at, key.id))
            .cloned();
        Box::pin(async move { Ok(newest) })
    }

    fn key(&self, id: KeyId) -> BoxFuture<'_, Result<Option<StoredKey>, StoreError>> {
        let key = self.keys().get(&id).cloned();
        Box::pin(async move { Ok(key) })
    }

    fn insert_key(&self, key: StoredKey) -> BoxFuture<'_, Result<(), StoreError>> {
        self.keys().insert(key.id, key);
        Box::pin(async { Ok(()) })
    }

    fn forget<'a>(&'a self, subject: &'a str) -> BoxFuture<'a, Result<usize, StoreError>> {
        let mut keys = self.keys();
        let before = keys.len();
        keys.retain(|_, key| key.subject != subject);
        let forgotten = before - keys.len();
        Box::pin(async move { Ok(forgotten) })
    }
}
