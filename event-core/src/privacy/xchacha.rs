//! XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha): `hchacha` of the `chacha20` crate derives a
//! subkey from the key and the nonce's first 16 bytes, then `ring`'s ChaCha20-Poly1305 (IETF,
//! in assembly) seals with the nonce's last 8 bytes. The same bytes as the
//! `chacha20poly1305` crate (a test holds them to it), at a fraction of its cost on the short
//! messages fields are: its Poly1305 spends microseconds per message in setup.

use chacha20::hchacha;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// The length of a key.
pub(crate) const KEY: usize = 32;
/// The length of a nonce.
pub(crate) const NONCE: usize = 24;
/// The length of the tag appended to a ciphertext.
pub(crate) const TAG: usize = 16;

/// A key.
#[derive(Clone)]
pub(crate) struct XChaCha20Poly1305 {
    key: chacha20::Key,
}

impl XChaCha20Poly1305 {
    pub(crate) fn new(key: &[u8; KEY]) -> Self {
        XChaCha20Poly1305 {
            key: chacha20::Key::from(*key),
        }
    }

    /// The ChaCha20-Poly1305 key and nonce this nonce stands for.
    fn subkey(&self, nonce: &[u8; NONCE]) -> (LessSafeKey, Nonce) {
        let (head, tail) = nonce.split_at(16);
        let head: [u8; 16] = head.try_into().expect("16 bytes");
        let subkey = hchacha::<chacha20::R20>(&self.key, &head.into());
        let key = UnboundKey::new(&CHACHA20_POLY1305, subkey.as_slice())
            .expect("a ChaCha20-Poly1305 key is 32 bytes");
        let mut short = [0; 12];
        short[4..].copy_from_slice(tail);
        (LessSafeKey::new(key), Nonce::assume_unique_for_key(short))
    }

    /// The ciphertext of `plain` with its tag.
    pub(crate) fn encrypt(&self, nonce: &[u8; NONCE], plain: &[u8], aad: &[u8]) -> Vec<u8> {
        let (key, nonce) = self.subkey(nonce);
        let mut sealed = Vec::with_capacity(plain.len() + TAG);
        sealed.extend_from_slice(plain);
        key.seal_in_place_append_tag(nonce, Aad::from(aad), &mut sealed)
            .expect("ChaCha20-Poly1305 seals any message shorter than 256 GiB");
        sealed
    }

    /// The plain text of a ciphertext with its tag; `None` when it does not authenticate.
    pub(crate) fn decrypt(
        &self,
        nonce: &[u8; NONCE],
        sealed: &[u8],
        aad: &[u8],
    ) -> Option<Vec<u8>> {
        let (key, nonce) = self.subkey(nonce);
        let mut buffer = sealed.to_vec();
        let plain_len = key
            .open_in_place(nonce, Aad::from(aad), &mut buffer)
            .ok()?
            .len();
        buffer.truncate(plain_len);
        Some(buffer)
    }
}

/// `N` bytes from the operating system's random number generator.
///
/// # Panics
///
/// When the operating system has no random numbers to give, which nothing here can work
/// around.
pub(crate) fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system's random number generator failed");
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};

    /// The same bytes as the `chacha20poly1305` crate's XChaCha20-Poly1305, both ways, on short and long
    /// messages.
    #[test]
    fn seals_as_rustcrypto_xchacha20poly1305_does() {
        for length in [0_u16, 1, 26, 64, 65, 1000] {
            let key: [u8; KEY] = random();
            let nonce: [u8; NONCE] = random();
            let plain: Vec<u8> = (0..length)
                .map(|i| u8::try_from(i * 7 % 251).unwrap())
                .collect();
            let aad = b"enc:v1:field";
            let ours = XChaCha20Poly1305::new(&key).encrypt(&nonce, &plain, aad);
            let theirs = chacha20poly1305::XChaCha20Poly1305::new(&key.into())
                .encrypt(&nonce.into(), Payload { msg: &plain, aad })
                .unwrap();
            assert_eq!(ours, theirs, "length {length}");
            let opened = XChaCha20Poly1305::new(&key).decrypt(&nonce, &theirs, aad);
            assert_eq!(opened.as_deref(), Some(&plain[..]));
            let mut altered = theirs.clone();
            altered[0] ^= 1;
            assert!(
                XChaCha20Poly1305::new(&key)
                    .decrypt(&nonce, &altered, aad)
                    .is_none()
            );
            assert!(
                XChaCha20Poly1305::new(&key)
                    .decrypt(&nonce, &theirs, b"other")
                    .is_none()
            );
        }
    }
}
