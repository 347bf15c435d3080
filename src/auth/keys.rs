//! API key material: generation, hashing, previews. Keys are stored only as SHA-256 hashes;
//! they carry 256 random bits, so a fast hash is enough (no password stretching needed).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "flt_";

/// A new random key, e.g. `flt_3q2+…` (43 URL-safe characters after the prefix).
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A one-time invite token, e.g. `fli_3q2+…`: as random as a key, but never mistaken for one.
pub fn invite_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("fli_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The stored form of a key.
pub fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Compares two stored hashes in constant time.
pub fn hash_matches(stored: &str, computed: &str) -> bool {
    use subtle::ConstantTimeEq;
    stored.as_bytes().ct_eq(computed.as_bytes()).into()
}

/// What may be shown after creation, e.g. `flt_****Ab9x`.
pub fn preview(key: &str) -> String {
    let tail: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{PREFIX}****{tail}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_random_and_hash_stably() {
        let a = super::generate();
        let b = super::generate();
        assert_ne!(a, b);
        assert!(a.starts_with("flt_") && a.len() == 47);
        assert_eq!(super::hash(&a), super::hash(&a));
        assert_ne!(super::hash(&a), super::hash(&b));
        assert!(super::preview(&a).ends_with(&a[a.len() - 4..]));
    }
}
