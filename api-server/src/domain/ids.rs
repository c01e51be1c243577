//! Ids and tokens. Ids are short, URL-safe and unguessable (base62); tokens carry 128 random
//! bits and are only ever stored as SHA-256 hashes.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// 12 base62 characters ≈ 71 bits: short enough for a link, far too many to guess.
pub const MEETUP_ID_LEN: usize = 12;
/// Ids scoped to a meetup (participants, places, comments).
pub const CHILD_ID_LEN: usize = 10;

pub fn new_id(rng: &mut impl Rng, len: usize) -> String {
    rng.sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// A fresh bearer token: 128 random bits, base64url without padding (22 characters).
pub fn new_token(rng: &mut impl Rng) -> String {
    let bytes: [u8; 16] = rng.random();
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn hash_token(token: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(token.as_bytes());
    let mut hex = String::with_capacity(digest.len() * 2);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

/// Compares a presented token against a stored hash without leaking timing.
pub fn token_matches(token: &str, stored_hash: &str) -> bool {
    hash_matches(&hash_token(token), stored_hash)
}

pub fn hash_matches(candidate_hash: &str, stored_hash: &str) -> bool {
    candidate_hash
        .as_bytes()
        .ct_eq(stored_hash.as_bytes())
        .into()
}

/// Accepts only what `new_id` can produce, so path segments never reach a store unchecked.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn ids_are_url_safe_and_distinct() {
        let mut rng = StdRng::seed_from_u64(7);
        let a = new_id(&mut rng, MEETUP_ID_LEN);
        let b = new_id(&mut rng, MEETUP_ID_LEN);
        assert_eq!(a.len(), MEETUP_ID_LEN);
        assert!(is_valid_id(&a));
        assert_ne!(a, b);
    }

    #[test]
    fn tokens_have_128_bits_and_hash_stably() {
        let mut rng = StdRng::seed_from_u64(7);
        let token = new_token(&mut rng);
        assert_eq!(URL_SAFE_NO_PAD.decode(&token).map(|b| b.len()), Ok(16));
        let hash = hash_token(&token);
        assert_eq!(hash.len(), 64);
        // SHA-256 of "abc", lowercase hex.
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(token_matches(&token, &hash));
        assert!(!token_matches("nope", &hash));
    }

    #[test]
    fn id_check_rejects_odd_input() {
        assert!(!is_valid_id(""));
        assert!(!is_valid_id("../etc"));
        assert!(!is_valid_id(&"a".repeat(33)));
        assert!(is_valid_id("abcXYZ019"));
    }
}
