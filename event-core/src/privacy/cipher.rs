//! The sealed form of one field, and the master key that wraps data keys.
//!
//! A sealed field is a JSON string: `enc:v1:` then, in unpadded base64url, the 16-byte id
//! of the data key, a 24-byte nonce (16 bytes random per process, then a counter), and the
//! XChaCha20-Poly1305 ciphertext of the field's JSON with its 16-byte tag. The associated data binds it to its event and field
//! (`enc:v1:`, the event id's 16 bytes, the field's JSON name): a sealed value copied into
//! another event or field does not open.

use super::keys::KeyId;
use super::xchacha::{KEY, NONCE, TAG, XChaCha20Poly1305, random};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::fmt;
use uuid::Uuid;

/// What every sealed field starts with.
pub const SEALED_PREFIX: &str = "enc:v1:";

const KEY_ID: usize = 16;

/// The key that wraps (encrypts) every data key in the key store, so that the database
/// alone reveals no personal data. Keep it outside the database (a secret manager, an
/// environment variable); losing it loses every sealed field.
///
/// Its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct MasterKey(XChaCha20Poly1305);

impl MasterKey {
    /// The master key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        MasterKey(XChaCha20Poly1305::new(&bytes))
    }

    /// The master key from 32 bytes in base64 (standard or URL-safe, padded or not), as
    /// kept in an environment variable or a secret manager.
    ///
    /// # Errors
    ///
    /// When the text is not base64 of exactly 32 bytes; the message does not quote it.
    pub fn from_base64(text: &str) -> Result<Self, InvalidMasterKey> {
        let text = text.trim();
        let bytes = [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::STANDARD_NO_PAD,
        ]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
        .or_else(|| {
            base64::engine::general_purpose::URL_SAFE
                .decode(text)
                .ok()
                .or_else(|| URL_SAFE_NO_PAD.decode(text).ok())
        })
        .ok_or(InvalidMasterKey { bytes: None })?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|bytes: Vec<u8>| InvalidMasterKey {
                bytes: Some(bytes.len()),
            })?;
        Ok(Self::from_bytes(bytes))
    }

    /// A new random master key, and its base64 to keep.
    pub fn generate() -> (Self, String) {
        let key: [u8; KEY] = random();
        let text = base64::engine::general_purpose::STANDARD.encode(key);
        (MasterKey(XChaCha20Poly1305::new(&key)), text)
    }

    /// A new data key for `subject`, wrapped: the key to seal with, and what the key store
    /// keeps.
    pub(crate) fn new_data_key(&self, id: KeyId, subject: &str) -> (DataKey, Vec<u8>) {
        let key: [u8; KEY] = random();
        let wrapped = seal_with(&self.0, &random(), &key, &wrap_aad(id, subject));
        (DataKey(XChaCha20Poly1305::new(&key)), wrapped)
    }

    /// Opens a data key the store kept; `None` when it was not wrapped by this master key
    /// for this id and subject.
    pub(crate) fn unwrap(&self, id: KeyId, subject: &str, wrapped: &[u8]) -> Option<DataKey> {
        let bytes = open_bytes(&self.0, wrapped, &wrap_aad(id, subject))?;
        let key: [u8; KEY] = bytes.as_slice().try_into().ok()?;
        Some(DataKey(XChaCha20Poly1305::new(&key)))
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([hidden])")
    }
}

/// Why a master key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a master key is 32 bytes in base64{}", .bytes.map_or_else(|| ": this is not base64".to_owned(), |n| format!(", not {n} bytes")))]
pub struct InvalidMasterKey {
    bytes: Option<usize>,
}

fn wrap_aad(id: KeyId, subject: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(KEY_ID + subject.len());
    aad.extend_from_slice(&id.to_bytes());
    aad.extend_from_slice(subject.as_bytes());
    aad
}

/// Nonces for sealing fields: 16 random bytes drawn once, then a counter. Unique within a
/// process by the counter, across processes by the random part (a repeat needs two of
/// 2^64 processes to draw the same 128 bits); no system call per field.
pub(crate) struct Nonces {
    prefix: [u8; 16],
    counter: std::sync::atomic::AtomicU64,
}

impl Nonces {
    pub(crate) fn new() -> Self {
        Nonces {
            prefix: random(),
            counter: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn next(&self) -> [u8; NONCE] {
        let count = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut nonce = [0; NONCE];
        nonce[..16].copy_from_slice(&self.prefix);
        nonce[16..].copy_from_slice(&count.to_le_bytes());
        nonce
    }
}

/// One subject's data key, opened.
#[derive(Clone)]
pub(crate) struct DataKey(XChaCha20Poly1305);

/// The associated data of a field: the version, the event, the field.
fn field_aad(event: Uuid, field: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(SEALED_PREFIX.len() + 16 + field.len());
    aad.extend_from_slice(SEALED_PREFIX.as_bytes());
    aad.extend_from_slice(event.as_bytes());
    aad.extend_from_slice(field.as_bytes());
    aad
}

impl DataKey {
    /// The sealed form of a field's JSON, as a JSON string's content.
    pub(crate) fn seal(
        &self,
        nonces: &Nonces,
        id: KeyId,
        event: Uuid,
        field: &str,
        json: &[u8],
    ) -> String {
        let mut bytes = Vec::with_capacity(KEY_ID + NONCE + json.len() + TAG);
        bytes.extend_from_slice(&id.to_bytes());
        let sealed = seal_with(&self.0, &nonces.next(), json, &field_aad(event, field));
        bytes.extend_from_slice(&sealed);
        let mut text = String::with_capacity(SEALED_PREFIX.len() + bytes.len() * 4 / 3 + 4);
        text.push_str(SEALED_PREFIX);
        URL_SAFE_NO_PAD.encode_string(&bytes, &mut text);
        text
    }

    /// The field's JSON, or `None` when the ciphertext does not authenticate (altered, or
    /// moved from another event or field).
    pub(crate) fn open(&self, sealed: &Sealed, event: Uuid, field: &str) -> Option<Vec<u8>> {
        open_bytes(&self.0, &sealed.bytes[KEY_ID..], &field_aad(event, field))
    }
}

/// A sealed field, decoded from its text.
pub(crate) struct Sealed {
    bytes: Vec<u8>,
}

impl Sealed {
    /// The sealed field in `text`, or `None` when it is not one (no prefix, not base64, too
    /// short to hold a key id, a nonce and a tag).
    pub(crate) fn parse(text: &str) -> Option<Sealed> {
        let body = text.strip_prefix(SEALED_PREFIX)?;
        let bytes = URL_SAFE_NO_PAD.decode(body).ok()?;
        (bytes.len() >= KEY_ID + NONCE + TAG).then_some(Sealed { bytes })
    }

    /// The id of the key that sealed it.
    pub(crate) fn key_id(&self) -> KeyId {
        let mut id = [0; KEY_ID];
        id.copy_from_slice(&self.bytes[..KEY_ID]);
        KeyId::from_bytes(id)
    }
}

/// The nonce, then the ciphertext and its tag.
fn seal_with(cipher: &XChaCha20Poly1305, nonce: &[u8; NONCE], plain: &[u8], aad: &[u8]) -> Vec<u8> {
    let sealed = cipher.encrypt(nonce, plain, aad);
    let mut out = Vec::with_capacity(NONCE + sealed.len());
    out.extend_from_slice(nonce);
    out.extend_from_slice(&sealed);
    out
}

fn open_bytes(cipher: &XChaCha20Poly1305, sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE + TAG {
        return None;
    }
    let (nonce, body) = sealed.split_at(NONCE);
    cipher.decrypt(nonce.try_into().ok()?, body, aad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_field_opens_only_in_its_event_and_field() {
        let (master, _) = MasterKey::generate();
        let id = KeyId::random();
        let (key, wrapped) = master.new_data_key(id, "customer-7");
        let event = Uuid::new_v4();
        let nonces = Nonces::new();
        let text = key.seal(&nonces, id, event, "email", br#""ada@example.com""#);
        let again = key.seal(&nonces, id, event, "email", br#""ada@example.com""#);
        assert_ne!(text, again, "a nonce is never used twice");
        assert!(text.starts_with(SEALED_PREFIX));
        assert!(!text.contains("ada"));
        let sealed = Sealed::parse(&text).expect("parses");
        assert_eq!(sealed.key_id(), id);
        let opened = master.unwrap(id, "customer-7", &wrapped).expect("unwraps");
        assert_eq!(
            opened.open(&sealed, event, "email").as_deref(),
            Some(&br#""ada@example.com""#[..])
        );
        assert!(opened.open(&sealed, event, "name").is_none());
        assert!(opened.open(&sealed, Uuid::new_v4(), "email").is_none());
        assert!(master.unwrap(id, "customer-8", &wrapped).is_none());
        let (other, _) = MasterKey::generate();
        assert!(other.unwrap(id, "customer-7", &wrapped).is_none());
    }

    #[test]
    fn a_master_key_reads_from_base64_and_says_why_not() {
        let (_, text) = MasterKey::generate();
        assert!(MasterKey::from_base64(&text).is_ok());
        assert_eq!(
            MasterKey::from_base64("c2hvcnQ=").unwrap_err().to_string(),
            "a master key is 32 bytes in base64, not 5 bytes"
        );
        assert_eq!(
            MasterKey::from_base64("not base64!")
                .unwrap_err()
                .to_string(),
            "a master key is 32 bytes in base64: this is not base64"
        );
        assert!(format!("{:?}", MasterKey::generate().0).contains("hidden"));
    }

    #[test]
    fn text_that_is_not_a_sealed_field_does_not_parse() {
        assert!(Sealed::parse("ada@example.com").is_none());
        assert!(Sealed::parse("enc:v1:!!!").is_none());
        assert!(Sealed::parse("enc:v1:AAAA").is_none());
    }
}
