//! Field encryption: sealing an envelope's PII fields on the way out, opening them on the
//! way in, and forgetting a subject.

use super::cipher::{DataKey, MasterKey, Nonces, SEALED_PREFIX, Sealed};
use super::keys::{KeyId, KeyStore, StoredKey};
use crate::envelope::RawEnvelope;
use crate::event::EventDescriptor;
use crate::store::StoreError;
use lru::LruCache;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// What a view shows for a PII field whose subject is forgotten.
pub const ERASED: &str = "[erased]";

/// Encrypts the `#[event(pii)]` fields of every event before it leaves the process, with a
/// key per data subject, and opens them for handlers.
///
/// Given to [`EventBusBuilder::encrypt_fields`](crate::EventBusBuilder::encrypt_fields).
/// The subject of an event is its `#[event(subject)]` field, else its partition key; its
/// keys live in a [`KeyStore`] (the SQLite and PostgreSQL stores are key stores, in a table
/// of their own), wrapped by the [`MasterKey`]. Opened keys are cached, at most
/// [`cache_capacity`](Self::cache_capacity) of them, each for at most
/// [`cache_ttl`](Self::cache_ttl): a subject forgotten by another process stops opening
/// here within that time.
///
/// ```
/// use event_core::privacy::{FieldEncryption, MasterKey, MemoryKeyStore};
/// use event_core::DomainEvent;
/// # use schemars::JsonSchema;
/// # use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
/// struct CustomerRegistered {
///     #[event(subject)]
///     customer_id: String,
///     #[event(pii)]
///     email: String,
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (master, _keep_me_secret) = MasterKey::generate();
/// let fields = FieldEncryption::new(MemoryKeyStore::new(), master);
/// let envelope = event_core::Envelope::new(CustomerRegistered {
///     customer_id: "c-7".into(),
///     email: "ada@example.com".into(),
/// })
/// .to_raw()?;
/// let sealed = fields.seal(&envelope).await?.expect("it has a PII field");
/// assert!(!sealed.payload.get().contains("ada@example.com"));
///
/// let opened = fields.open(&sealed).await?;
/// assert_eq!(opened.envelope.payload.get(), envelope.payload.get());
///
/// fields.forget("c-7").await?;
/// let erased = fields.open(&sealed).await?;
/// assert_eq!(erased.erased, ["email"]);
/// assert!(erased.envelope.payload.get().contains(r#""email":"""#));
/// # Ok(())
/// # }
/// ```
pub struct FieldEncryption {
    keys: Arc<dyn KeyStore>,
    master: MasterKey,
    descriptors: HashMap<(&'static str, u32), &'static EventDescriptor>,
    cache: Mutex<Cache>,
    ttl: Duration,
    nonces: Nonces,
}

/// Opened keys by id (`None`: the key does not exist), and each subject's current key.
struct Cache {
    keys: LruCache<KeyId, CachedKey>,
    current: LruCache<String, (KeyId, DataKey, Instant)>,
}

/// A key by id: opened, or known to be gone (`None`), with its subject, and when it was read.
struct CachedKey {
    key: Option<DataKey>,
    subject: Option<String>,
    read: Instant,
}

impl ProtectError {
    /// Whether trying again may succeed: the key store failed.
    pub fn is_transient(&self) -> bool {
        matches!(self, ProtectError::Keys(_))
    }
}

/// Why a field could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtectError {
    /// The event has PII fields but nothing names its subject.
    #[error(
        "`{event_type}` has PII fields but no subject to encrypt them for: mark a field \
         `#[event(subject)]` (or `#[event(partition_key)]`), and give it a value"
    )]
    NoSubject {
        /// The event type.
        event_type: String,
    },
    /// The field naming the subject is itself PII: it would stay in plain text.
    #[error(
        "`{event_type}`: its subject, the partition key `{field}`, is itself `pii` and would \
         stay in plain text; mark a pseudonymous id `#[event(subject)]`"
    )]
    PersonalSubject {
        /// The event type.
        event_type: String,
        /// The field.
        field: String,
    },
    /// A sealed field did not authenticate: altered, moved from another event or field, or
    /// sealed under another master key.
    #[error(
        "`{event_type}` event {event_id}: the sealed field `{field}` does not open (altered, moved, or another master key)"
    )]
    Tampered {
        /// The event type.
        event_type: String,
        /// The event.
        event_id: uuid::Uuid,
        /// The field.
        field: String,
    },
    /// A data key exists but does not open with this master key: the bus was given
    /// another master key than the one that wrapped it. Nothing is read as erased for that.
    #[error("data key {key_id} does not open with this master key: is it the right one?")]
    MasterKey {
        /// The key.
        key_id: KeyId,
    },
    /// The payload is not valid JSON.
    #[error("`{event_type}`: the payload is not a JSON object")]
    Payload {
        /// The event type.
        event_type: String,
    },
    /// The key store failed; nothing was sealed or opened. Retried like a handler failure.
    #[error("the key store failed: {0}")]
    Keys(#[source] StoreError),
    /// The bus encrypts no fields.
    #[error("field encryption is off on this bus: see EventBusBuilder::encrypt_fields")]
    NotEnabled,
}

/// An envelope with its sealed fields opened.
#[derive(Debug)]
#[non_exhaustive]
pub struct Opened {
    /// The envelope, each sealed field replaced by its value, or by its type's `Default`
    /// when its key is gone.
    pub envelope: RawEnvelope,
    /// The fields whose key is gone (their subject forgotten): they read as `Default`.
    pub erased: Vec<String>,
}

impl FieldEncryption {
    /// Field encryption with keys in `keys`, wrapped by `master`; a cache of 10,000 keys
    /// kept at most 30 seconds each.
    pub fn new(keys: impl KeyStore, master: MasterKey) -> Self {
        Self::with_key_store(Arc::new(keys), master)
    }

    /// [`new`](Self::new) with a key store already shared.
    pub fn with_key_store(keys: Arc<dyn KeyStore>, master: MasterKey) -> Self {
        let mut descriptors = HashMap::new();
        for descriptor in crate::registry::descriptors() {
            descriptors
                .entry((descriptor.name(), descriptor.version()))
                .or_insert(descriptor);
        }
        let capacity = NonZeroUsize::new(10_000).unwrap_or(NonZeroUsize::MIN);
        FieldEncryption {
            keys,
            master,
            descriptors,
            cache: Mutex::new(Cache {
                keys: LruCache::new(capacity),
                current: LruCache::new(capacity),
            }),
            ttl: Duration::from_secs(30),
            nonces: Nonces::new(),
        }
    }

    /// How many opened keys to keep in memory (at least 1).
    #[must_use]
    pub fn cache_capacity(self, keys: usize) -> Self {
        let capacity = NonZeroUsize::new(keys).unwrap_or(NonZeroUsize::MIN);
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.keys.resize(capacity);
        cache.current.resize(capacity);
        drop(cache);
        self
    }

    /// How long an opened key is used before it is read from the key store again: the
    /// longest a subject forgotten by another process still opens here.
    #[must_use]
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The key store.
    pub fn key_store(&self) -> &Arc<dyn KeyStore> {
        &self.keys
    }

    /// The envelope with its PII fields sealed with its subject's current key (made on
    /// first need); `None` when it has nothing to seal (no PII field with a value, or a type
    /// this process does not know).
    ///
    /// # Errors
    ///
    /// [`ProtectError::NoSubject`] or [`ProtectError::PersonalSubject`] when nothing fit
    /// names its subject; [`ProtectError::MasterKey`] when the subject's key does not open
    /// with this master key; [`ProtectError::Keys`] when the key store fails.
    pub async fn seal(&self, envelope: &RawEnvelope) -> Result<Option<RawEnvelope>, ProtectError> {
        let Some(descriptor) = self
            .descriptors
            .get(&(envelope.event_type.as_str(), envelope.version))
            .copied()
            .filter(|d| !d.pii().is_empty())
        else {
            return Ok(None);
        };
        let event_type = || envelope.event_type.to_string();
        let mut fields =
            Fields::parse(envelope.payload.get()).ok_or_else(|| ProtectError::Payload {
                event_type: event_type(),
            })?;
        let personal = |name: &str| descriptor.pii().contains(&name);
        if !fields
            .0
            .iter()
            .any(|(name, value)| personal(name) && value.get() != "null")
        {
            return Ok(None);
        }
        let subject_field = descriptor
            .subject_field()
            .ok_or_else(|| ProtectError::NoSubject {
                event_type: event_type(),
            })?;
        if personal(subject_field) {
            return Err(ProtectError::PersonalSubject {
                event_type: event_type(),
                field: subject_field.to_owned(),
            });
        }
        let subject = fields
            .get(subject_field)
            .and_then(subject_text)
            .ok_or_else(|| ProtectError::NoSubject {
                event_type: event_type(),
            })?;
        let (id, key) = self.current_key(&subject).await?;
        for (name, value) in &mut fields.0 {
            if personal(name) && value.get() != "null" {
                let sealed = key.seal(&self.nonces, id, envelope.id, name, value.get().as_bytes());
                *value = json_string(&sealed);
            }
        }
        Ok(Some(envelope.with_payload(fields.to_raw())))
    }

    /// The envelope with its sealed fields opened; a field whose key is gone reads as its
    /// type's `Default` (`null` for a version this process does not know) and is listed in
    /// [`Opened::erased`]. An envelope with nothing sealed comes back as it was.
    ///
    /// # Errors
    ///
    /// [`ProtectError::Tampered`] when a sealed field does not authenticate;
    /// [`ProtectError::MasterKey`] when its key does not open with this master key;
    /// [`ProtectError::Keys`] when the key store fails.
    pub async fn open(&self, envelope: &RawEnvelope) -> Result<Opened, ProtectError> {
        Ok(self.open_sealed(envelope).await?.unwrap_or_else(|| Opened {
            envelope: envelope.clone(),
            erased: Vec::new(),
        }))
    }

    /// [`open`](Self::open), `None` when nothing in the envelope is sealed.
    pub(crate) async fn open_sealed(
        &self,
        envelope: &RawEnvelope,
    ) -> Result<Option<Opened>, ProtectError> {
        let text = envelope.payload.get();
        if !text.contains(QUOTED_PREFIX) {
            return Ok(None);
        }
        let mut fields = Fields::parse(text).ok_or_else(|| ProtectError::Payload {
            event_type: envelope.event_type.to_string(),
        })?;
        let descriptor = self
            .descriptors
            .get(&(envelope.event_type.as_str(), envelope.version))
            .copied();
        let mut erased = Vec::new();
        for (name, value) in &mut fields.0 {
            let Some(sealed) = sealed_value(value) else {
                continue;
            };
            if let Some(key) = self.key(sealed.key_id()).await? {
                *value = key
                    .open(&sealed, envelope.id, name)
                    .and_then(|json| String::from_utf8(json).ok())
                    .and_then(|json| RawValue::from_string(json).ok())
                    .ok_or_else(|| ProtectError::Tampered {
                        event_type: envelope.event_type.to_string(),
                        event_id: envelope.id,
                        field: name.clone(),
                    })?;
            } else {
                *value = erased_json(descriptor, name);
                erased.push(name.clone());
            }
        }
        Ok(Some(Opened {
            envelope: envelope.with_payload(fields.to_raw()),
            erased,
        }))
    }

    /// The fields of `envelope` that are sealed with a key that is gone: erased for good.
    ///
    /// # Errors
    ///
    /// [`ProtectError::Keys`] when the key store fails.
    pub async fn erased_fields(&self, envelope: &RawEnvelope) -> Result<Vec<String>, ProtectError> {
        erased_fields(&*self.keys, envelope)
            .await
            .map_err(ProtectError::Keys)
    }

    /// Destroys every key of `subject` in the key store and in this process's cache; from
    /// then on its sealed fields read as erased. Returns how many keys there were.
    ///
    /// # Errors
    ///
    /// [`ProtectError::Keys`] when the key store fails; the keys may then still exist, and
    /// the call should be repeated.
    pub async fn forget(&self, subject: &str) -> Result<usize, ProtectError> {
        {
            let mut cache = self.cache();
            cache.current.pop(subject);
        }
        let forgotten = self
            .keys
            .forget(subject)
            .await
            .map_err(ProtectError::Keys)?;
        let mut cache = self.cache();
        cache.current.pop(subject);
        let ids: Vec<KeyId> = cache
            .keys
            .iter()
            .filter(|(_, cached)| cached.subject.as_deref() == Some(subject))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            cache.keys.pop(&id);
        }
        Ok(forgotten)
    }

    /// Gives `subject` a new key: fields sealed from now on use it, older ones keep opening
    /// with theirs.
    ///
    /// # Errors
    ///
    /// [`ProtectError::Keys`] when the key store fails.
    pub async fn rotate(&self, subject: &str) -> Result<KeyId, ProtectError> {
        // Newer than the current key even within its millisecond (stores keep times to
        // the millisecond, and order keys of the same time by id): every process then
        // agrees the new key is the current one.
        let current = self
            .keys
            .current_key(subject)
            .await
            .map_err(ProtectError::Keys)?;
        let now = chrono::Utc::now();
        let created_at = current.map_or(now, |current| {
            now.max(current.created_at + chrono::TimeDelta::milliseconds(1))
        });
        let (id, key) = self.new_key(subject, created_at).await?;
        self.cache()
            .current
            .put(subject.to_owned(), (id, key, Instant::now()));
        Ok(id)
    }

    /// `envelope`, an event of `subject` whose PII fields are in plain text (kept in this
    /// process's memory), with those fields erased; `None` when it is not of that subject
    /// or holds nothing personal.
    pub(crate) fn erase_plain(&self, envelope: &RawEnvelope, subject: &str) -> Option<RawEnvelope> {
        let descriptor = self
            .descriptors
            .get(&(envelope.event_type.as_str(), envelope.version))
            .copied()
            .filter(|d| !d.pii().is_empty())?;
        let mut fields = Fields::parse(envelope.payload.get())?;
        let of_subject = fields
            .get(descriptor.subject_field()?)
            .and_then(subject_text)
            .is_some_and(|named| named == subject);
        if !of_subject {
            return None;
        }
        for (name, value) in &mut fields.0 {
            if descriptor.pii().contains(&name.as_str()) {
                *value = erased_json(Some(descriptor), name);
            }
        }
        Some(envelope.with_payload(fields.to_raw()))
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn current_key(&self, subject: &str) -> Result<(KeyId, DataKey), ProtectError> {
        if let Some((id, key, at)) = self.cache().current.get(subject)
            && at.elapsed() < self.ttl
        {
            return Ok((*id, key.clone()));
        }
        let stored = self
            .keys
            .current_key(subject)
            .await
            .map_err(ProtectError::Keys)?;
        let (id, key) = match stored {
            Some(stored) => {
                let key = self
                    .master
                    .unwrap(stored.id, subject, &stored.wrapped)
                    .ok_or(ProtectError::MasterKey { key_id: stored.id })?;
                (stored.id, key)
            }
            None => self.new_key(subject, chrono::Utc::now()).await?,
        };
        self.cache()
            .current
            .put(subject.to_owned(), (id, key.clone(), Instant::now()));
        Ok((id, key))
    }

    async fn new_key(
        &self,
        subject: &str,
        created_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(KeyId, DataKey), ProtectError> {
        let id = KeyId::random();
        let (key, wrapped) = self.master.new_data_key(id, subject);
        self.keys
            .insert_key(StoredKey::new(id, subject.to_owned(), wrapped, created_at))
            .await
            .map_err(ProtectError::Keys)?;
        Ok((id, key))
    }

    /// The key with this id, opened; `None` when it is gone.
    async fn key(&self, id: KeyId) -> Result<Option<DataKey>, ProtectError> {
        if let Some(cached) = self.cache().keys.get(&id)
            && cached.read.elapsed() < self.ttl
        {
            return Ok(cached.key.clone());
        }
        let stored = self.keys.key(id).await.map_err(ProtectError::Keys)?;
        let key = match &stored {
            Some(stored) => Some(
                self.master
                    .unwrap(id, &stored.subject, &stored.wrapped)
                    .ok_or(ProtectError::MasterKey { key_id: id })?,
            ),
            None => None,
        };
        let cached = CachedKey {
            key: key.clone(),
            subject: stored.map(|stored| stored.subject),
            read: Instant::now(),
        };
        self.cache().keys.put(id, cached);
        Ok(key)
    }
}

impl fmt::Debug for FieldEncryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FieldEncryption")
            .field("master", &self.master)
            .field("cache_ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// The sealed fields of `envelope` whose key `keys` no longer holds: erased for good, their
/// subject forgotten. Needs no master key: for views of the store, like the admin's.
///
/// # Errors
///
/// When the key store fails.
pub async fn erased_fields(
    keys: &dyn KeyStore,
    envelope: &RawEnvelope,
) -> Result<Vec<String>, StoreError> {
    let text = envelope.payload.get();
    if !text.contains(QUOTED_PREFIX) {
        return Ok(Vec::new());
    }
    let Some(fields) = Fields::parse(text) else {
        return Ok(Vec::new());
    };
    let mut erased = Vec::new();
    for (name, value) in &fields.0 {
        if let Some(sealed) = sealed_value(value)
            && keys.key(sealed.key_id()).await?.is_none()
        {
            erased.push(name.clone());
        }
    }
    Ok(erased)
}

/// What the PII field `name` reads as once erased: its type's `Default`, `null` for a
/// version this process does not know.
fn erased_json(descriptor: Option<&EventDescriptor>, name: &str) -> Box<RawValue> {
    let default = descriptor
        .and_then(|d| d.erased_value(name))
        .unwrap_or(serde_json::Value::Null);
    serde_json::value::to_raw_value(&default).expect("a JSON value serializes")
}

/// `"enc:v1:` as it starts a sealed field in JSON text.
const QUOTED_PREFIX: &str = "\"enc:v1:";

/// The sealed field a JSON value holds, if it is one.
fn sealed_value(value: &RawValue) -> Option<Sealed> {
    // Base64url needs no escapes: the JSON string's content is between its quotes.
    let text = value.get().strip_prefix('"')?.strip_suffix('"')?;
    if !text.starts_with(SEALED_PREFIX) {
        return None;
    }
    Sealed::parse(text)
}

/// The subject named by a field's JSON: a string as it is, a number as written.
fn subject_text(value: &RawValue) -> Option<String> {
    match serde_json::from_str::<serde_json::Value>(value.get()).ok()? {
        serde_json::Value::String(text) if !text.is_empty() => Some(text),
        serde_json::Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn json_string(text: &str) -> Box<RawValue> {
    serde_json::value::to_raw_value(text).expect("a string serializes")
}

/// A JSON object's fields in their order, values untouched.
struct Fields(Vec<(String, Box<RawValue>)>);

impl Fields {
    fn parse(text: &str) -> Option<Fields> {
        serde_json::from_str(text).ok()
    }

    fn get(&self, name: &str) -> Option<&RawValue> {
        self.0
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| &**value)
    }

    fn to_raw(&self) -> Box<RawValue> {
        serde_json::value::to_raw_value(self).expect("raw JSON values serialize")
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Object;
        impl<'de> Visitor<'de> for Object {
            type Value = Fields;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(entry) = map.next_entry::<String, Box<RawValue>>()? {
                    fields.push(entry);
                }
                Ok(Fields(fields))
            }
        }
        deserializer.deserialize_map(Object)
    }
}

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}
