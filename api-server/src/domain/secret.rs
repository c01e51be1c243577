//! A participant's optional PIN or password, which gets their name back on another device.
//!
//! Tokens are stored only as SHA-256 hashes, so the token cannot be looked up again. Instead,
//! when a participant sets a secret, their own token (the bearer of that request) is sealed
//! with a key derived from the secret: reclaiming with the right secret opens it and hands back
//! the very token the first device holds, so both devices keep working. The organizer may seal
//! their admin link's token beside it, so the PIN brings organizer rights back too. The record
//! keeps:
//! - `hash`: an argon2id PHC string of the secret, checked (in constant time, by the crate)
//!   before anything else;
//! - `sealed_token`: the token encrypted with ChaCha20-Poly1305 under a second argon2id output
//!   of the secret with its own salt (never the PHC hash, which is stored in the clear).
//!
//! Pure CPU work with randomness as an argument; the HTTP layer runs it on a blocking thread.

use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::Rng;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::limits::{MAX_SECRET_CHARS, MIN_SECRET_CHARS};
use super::validate::{display_name, name_key};
use super::{DomainError, FieldError, Principal};

/// Body of setting or changing one's PIN/password.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretInput {
    /// 4..64 characters, used exactly as typed.
    pub secret: String,
    /// The organizer only: their admin link's token, kept under the PIN as well so that getting
    /// the name back also gets the organizer rights back.
    #[serde(default)]
    pub admin_token: Option<String>,
}

/// What a PIN keeps: the participant's token, and for the organizer possibly the admin token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedTokens {
    pub token: String,
    pub admin_token: Option<String>,
}

/// Tokens are base64url, so a line break cannot occur in one and separates the two.
const TOKEN_SEPARATOR: char = '\n';

impl SealedTokens {
    fn to_plaintext(&self) -> String {
        match &self.admin_token {
            Some(admin) => format!("{}{TOKEN_SEPARATOR}{admin}", self.token),
            None => self.token.clone(),
        }
    }

    fn from_plaintext(plain: String) -> Self {
        match plain.split_once(TOKEN_SEPARATOR) {
            Some((token, admin)) => Self {
                token: token.to_owned(),
                admin_token: Some(admin.to_owned()),
            },
            None => Self {
                token: plain,
                admin_token: None,
            },
        }
    }
}

/// Whether `admin_token` may be kept under the PIN of `participant_id`: only the organizer's
/// own participant record, and only the meetup's current admin token.
pub fn authorize_admin_seal(
    meetup: &super::MeetupRecord,
    participant_id: &str,
    admin_token: &str,
) -> Result<(), DomainError> {
    if participant_id == meetup.organizer_id
        && super::ids::token_matches(admin_token, &meetup.admin_token_hash)
    {
        Ok(())
    } else {
        Err(DomainError::Forbidden(
            "Only the organizer may keep the organizer link under their PIN.",
        ))
    }
}

/// Body of getting a name back on another device.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ReclaimInput {
    /// The name as joined (case and spacing do not matter, as for "name taken").
    pub name: String,
    pub secret: String,
}

/// Only the participant themselves sets or removes their secret: the token it seals is the
/// one their own link carries (the organizer's admin link is not a participant token).
pub fn authorize_secret_change(
    principal: &Principal,
    participant_id: &str,
) -> Result<(), DomainError> {
    match principal {
        Principal::Participant(p) if p.id == participant_id => Ok(()),
        _ => Err(DomainError::Forbidden(
            "Only the participant's own link may set or remove their PIN.",
        )),
    }
}

/// The name key to look the owner up by, once both fields are well-formed.
pub fn reclaim_key(input: &ReclaimInput) -> Result<String, DomainError> {
    let mut errors = Vec::new();
    let name = display_name(&mut errors, "name", &input.name);
    if let Err(DomainError::Invalid(mut secret_errors)) = validate_secret(&input.secret) {
        errors.append(&mut secret_errors);
    }
    match name {
        Some(name) if errors.is_empty() => Ok(name_key(&name)),
        _ => Err(DomainError::Invalid(errors)),
    }
}

/// What is stored for a participant who set a secret. Neither field reveals the secret or
/// the token without the secret.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantSecret {
    /// argon2id PHC string (`$argon2id$v=19$m=…`).
    pub hash: String,
    /// base64 of salt (16) ‖ nonce (12) ‖ ChaCha20-Poly1305 ciphertext of the token.
    pub sealed_token: String,
}

/// Never print hashes: logs are not a place for them.
impl std::fmt::Debug for ParticipantSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ParticipantSecret(..)")
    }
}

const KEY_SALT_LEN: usize = 16;
const NONCE_LEN: usize = 12;

/// argon2id with the crate's default cost (19 MiB, 2 passes, 1 lane: the OWASP baseline);
/// one hash takes ~10–30 ms on one core of a small machine. Callers bound how many run at once
/// (memory per hash is the 19 MiB).
fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// A secret as given: 4..=64 characters, no control characters. Used exactly as typed,
/// untrimmed (a PIN with a space is a different PIN).
pub fn validate_secret(secret: &str) -> Result<&str, DomainError> {
    let chars = secret.chars().count();
    let message = if chars < MIN_SECRET_CHARS {
        format!("must be at least {MIN_SECRET_CHARS} characters")
    } else if chars > MAX_SECRET_CHARS {
        format!("must be at most {MAX_SECRET_CHARS} characters")
    } else if secret.chars().any(char::is_control) {
        "must not contain control characters".to_string()
    } else {
        return Ok(secret);
    };
    Err(DomainError::Invalid(vec![FieldError::new(
        "secret", message,
    )]))
}

fn seal_key(secret: &str, salt: &[u8]) -> Option<Key> {
    let mut key = [0u8; 32];
    hasher()
        .hash_password_into(secret.as_bytes(), salt, &mut key)
        .ok()?;
    Some(Key::from(key))
}

#[derive(Debug, thiserror::Error)]
#[error("the secret could not be hashed")]
pub struct SealError;

/// Hashes `secret` and seals `tokens` under it. `secret` must have passed [`validate_secret`].
pub fn seal(
    secret: &str,
    tokens: &SealedTokens,
    rng: &mut impl Rng,
) -> Result<ParticipantSecret, SealError> {
    let hash_salt: [u8; 16] = rng.random();
    let salt = SaltString::encode_b64(&hash_salt).map_err(|_| SealError)?;
    let hash = hasher()
        .hash_password(secret.as_bytes(), &salt)
        .map_err(|_| SealError)?
        .to_string();
    let key_salt: [u8; KEY_SALT_LEN] = rng.random();
    let nonce: [u8; NONCE_LEN] = rng.random();
    let key = seal_key(secret, &key_salt).ok_or(SealError)?;
    let ciphertext = ChaCha20Poly1305::new(&key)
        .encrypt(Nonce::from_slice(&nonce), tokens.to_plaintext().as_bytes())
        .map_err(|_| SealError)?;
    let mut sealed = Vec::with_capacity(KEY_SALT_LEN + NONCE_LEN + ciphertext.len());
    sealed.extend_from_slice(&key_salt);
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&ciphertext);
    Ok(ParticipantSecret {
        hash,
        sealed_token: STANDARD_NO_PAD.encode(sealed),
    })
}

/// The sealed tokens if `secret` is the one that was set; `None` otherwise (or if the record is
/// damaged). The comparison is argon2's own constant-time one.
pub fn open(stored: &ParticipantSecret, secret: &str) -> Option<SealedTokens> {
    let parsed = PasswordHash::new(&stored.hash).ok()?;
    hasher().verify_password(secret.as_bytes(), &parsed).ok()?;
    let sealed = STANDARD_NO_PAD.decode(&stored.sealed_token).ok()?;
    if sealed.len() <= KEY_SALT_LEN + NONCE_LEN {
        return None;
    }
    let (key_salt, rest) = sealed.split_at(KEY_SALT_LEN);
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let key = seal_key(secret, key_salt)?;
    let token = ChaCha20Poly1305::new(&key)
        .decrypt(Nonce::from_slice(nonce), ciphertext)
        .ok()?;
    String::from_utf8(token)
        .ok()
        .map(SealedTokens::from_plaintext)
}

/// Spends the time of one verification when there is nothing to verify (unknown name, or a
/// name without a secret), so the answer's timing does not tell which it was.
pub fn verify_nothing(secret: &str) {
    static DUMMY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| {
        let salt = SaltString::encode_b64(b"reclaim-dummy-salt").ok()?;
        let hash = hasher().hash_password(b"not a secret", &salt).ok()?;
        Some(hash.to_string())
    });
    if let Some(parsed) = dummy.as_deref().and_then(|h| PasswordHash::new(h).ok()) {
        let _ = hasher().verify_password(secret.as_bytes(), &parsed);
    }
}

/// How many wrong secrets one key (a meetup and name, or a client address) may send per
/// window before it has to wait for the window to end. Each window used up in a row doubles the
/// next one (up to `max_window`), so guessing slows down without end while a friend who mistypes
/// a few times waits minutes; a quiet `forget_after` wipes the slate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailurePolicy {
    pub max_failures: u32,
    pub window: Duration,
    pub max_window: Duration,
    pub forget_after: Duration,
}

impl FailurePolicy {
    /// Per meetup and name: 5 tries per 15 min, then 30 min, 1 h, … and at most 5 a day. A
    /// 4-digit PIN (10,000 values) then takes years to guess, on every replica together too.
    pub const PER_NAME: Self = Self {
        max_failures: 5,
        window: Duration::from_secs(15 * 60),
        max_window: Duration::from_secs(24 * 60 * 60),
        forget_after: Duration::from_secs(24 * 60 * 60),
    };
    /// Per client address, across names and meetups.
    pub const PER_CLIENT: Self = Self {
        max_failures: 20,
        window: Duration::from_secs(15 * 60),
        max_window: Duration::from_secs(24 * 60 * 60),
        forget_after: Duration::from_secs(24 * 60 * 60),
    };

    /// How long a key's state must be remembered: the longest window plus the quiet period.
    pub fn memory(&self) -> Duration {
        self.max_window + self.forget_after
    }

    fn length(&self, strikes: u32) -> Duration {
        self.window
            .saturating_mul(2_u32.saturating_pow(strikes.min(31)))
            .min(self.max_window)
    }
}

/// The failures of one key within the current window. Time comes in as an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureWindow {
    pub started: Instant,
    pub failures: u32,
    /// Windows used up in a row before this one.
    pub strikes: u32,
}

impl FailureWindow {
    fn ends(&self, policy: FailurePolicy) -> Instant {
        self.started + policy.length(self.strikes)
    }

    /// `Err(wait)` when the key has used up its failures for this window.
    pub fn check(
        window: Option<&Self>,
        policy: FailurePolicy,
        now: Instant,
    ) -> Result<(), Duration> {
        match window {
            Some(w) if w.failures >= policy.max_failures => {
                let ends = w.ends(policy);
                if now < ends { Err(ends - now) } else { Ok(()) }
            }
            _ => Ok(()),
        }
    }

    /// The window after one more failure at `now`: the same window while it lasts; after a
    /// used-up one, a twice as long window (unless it has been quiet for `forget_after`).
    pub fn record_failure(window: Option<&Self>, policy: FailurePolicy, now: Instant) -> Self {
        match window {
            Some(w) if now < w.ends(policy) => Self {
                failures: w.failures.saturating_add(1),
                ..*w
            },
            Some(w)
                if w.failures >= policy.max_failures
                    && now < w.ends(policy) + policy.forget_after =>
            {
                Self {
                    started: now,
                    failures: 1,
                    strikes: w.strikes.saturating_add(1),
                }
            }
            _ => Self {
                started: now,
                failures: 1,
                strikes: 0,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn only(token: &str) -> SealedTokens {
        SealedTokens {
            token: token.to_owned(),
            admin_token: None,
        }
    }

    fn token_of(opened: Option<SealedTokens>) -> Option<String> {
        opened.map(|tokens| tokens.token)
    }

    #[test]
    fn the_right_secret_opens_the_token_and_a_wrong_one_does_not() {
        let mut rng = StdRng::seed_from_u64(1);
        let stored = seal("4711", &only("the-token"), &mut rng).expect("sealed");
        assert!(stored.hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(!stored.hash.contains("4711") && !stored.sealed_token.contains("the-token"));
        assert_eq!(
            token_of(open(&stored, "4711")).as_deref(),
            Some("the-token")
        );
        assert_eq!(open(&stored, "4712"), None);
        assert_eq!(open(&stored, ""), None);
        assert_eq!(open(&stored, "4711 "), None);
    }

    #[test]
    fn the_organizer_keeps_the_admin_token_beside_their_own() {
        let mut rng = StdRng::seed_from_u64(4);
        let both = SealedTokens {
            token: "participant-token".into(),
            admin_token: Some("admin-token".into()),
        };
        let stored = seal("4711", &both, &mut rng).expect("sealed");
        assert_eq!(open(&stored, "4711"), Some(both));
        assert_eq!(open(&stored, "4712"), None);
    }

    #[test]
    fn the_same_secret_seals_differently_each_time() {
        let mut rng = StdRng::seed_from_u64(2);
        let a = seal("пароль", &only("t"), &mut rng).expect("sealed");
        let b = seal("пароль", &only("t"), &mut rng).expect("sealed");
        assert_ne!(a.hash, b.hash);
        assert_ne!(a.sealed_token, b.sealed_token);
        assert_eq!(token_of(open(&b, "пароль")).as_deref(), Some("t"));
    }

    #[test]
    fn a_damaged_record_opens_nothing() {
        let mut rng = StdRng::seed_from_u64(3);
        let stored = seal("1234", &only("token"), &mut rng).expect("sealed");
        let mut broken_hash = stored.clone();
        broken_hash.hash = "not a phc string".into();
        assert_eq!(open(&broken_hash, "1234"), None);
        let mut short = stored.clone();
        short.sealed_token = STANDARD_NO_PAD.encode([0u8; 20]);
        assert_eq!(open(&short, "1234"), None);
        let mut flipped = stored.clone();
        let mut bytes = STANDARD_NO_PAD.decode(&stored.sealed_token).expect("b64");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        flipped.sealed_token = STANDARD_NO_PAD.encode(bytes);
        assert_eq!(open(&flipped, "1234"), None);
        // The seal is bound to the secret (its own salt), not to the hash beside it.
        let other = seal("1234", &only("other"), &mut rng).expect("sealed");
        let swapped = ParticipantSecret {
            hash: stored.hash.clone(),
            sealed_token: other.sealed_token,
        };
        assert_eq!(token_of(open(&swapped, "1234")).as_deref(), Some("other"));
        assert!(
            !format!("{stored:?}").contains("argon2"),
            "Debug hides the hash"
        );
        verify_nothing("1234");
    }

    #[test]
    fn secrets_are_4_to_64_characters_without_control_characters() {
        assert!(validate_secret("123").is_err());
        assert!(validate_secret("1234").is_ok());
        assert!(validate_secret("пиво").is_ok());
        assert!(validate_secret(&"x".repeat(64)).is_ok());
        assert!(validate_secret(&"x".repeat(65)).is_err());
        assert!(validate_secret("12\n34").is_err());
        assert!(validate_secret("").is_err());
        let Err(DomainError::Invalid(errors)) = validate_secret("1") else {
            panic!("expected a field error");
        };
        assert_eq!(errors[0].field, "secret");
    }

    fn participant(id: &str) -> Principal {
        Principal::Participant(Box::new(super::super::ParticipantRecord {
            id: id.into(),
            meetup_id: "m".into(),
            name: "Ben".into(),
            name_key: "ben".into(),
            token_hash: String::new(),
            time_zone: None,
            availability: Default::default(),
            place_votes: Vec::new(),
            note: None,
            is_organizer: false,
            joined_at: chrono::Utc::now(),
            secret: None,
        }))
    }

    #[test]
    fn only_the_participant_themselves_sets_their_secret() {
        assert!(authorize_secret_change(&participant("ben"), "ben").is_ok());
        assert!(matches!(
            authorize_secret_change(&participant("ann"), "ben"),
            Err(DomainError::Forbidden(_))
        ));
        assert!(matches!(
            authorize_secret_change(&Principal::Admin, "ben"),
            Err(DomainError::Forbidden(_))
        ));
    }

    #[test]
    fn a_reclaim_finds_the_name_by_the_key_name_taken_uses() {
        let input = |name: &str, secret: &str| ReclaimInput {
            name: name.into(),
            secret: secret.into(),
        };
        assert_eq!(
            reclaim_key(&input("  PETYA  ", "1234")).ok(),
            Some(name_key("Petya"))
        );
        assert_eq!(
            reclaim_key(&input("Пётр", "1234")).ok(),
            Some(name_key("пётр"))
        );
        let Err(DomainError::Invalid(errors)) = reclaim_key(&input(" ", "12")) else {
            panic!("expected field errors");
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "secret"]);
    }

    #[test]
    fn failures_are_counted_per_window_and_the_wait_is_what_is_left_of_it() {
        let policy = FailurePolicy {
            max_failures: 3,
            window: Duration::from_secs(60),
            max_window: Duration::from_secs(300),
            forget_after: Duration::from_secs(1000),
        };
        let t0 = Instant::now();
        assert_eq!(FailureWindow::check(None, policy, t0), Ok(()));
        let mut w = FailureWindow::record_failure(None, policy, t0);
        for _ in 0..2 {
            assert_eq!(FailureWindow::check(Some(&w), policy, t0), Ok(()));
            w = FailureWindow::record_failure(Some(&w), policy, t0 + Duration::from_secs(10));
        }
        assert_eq!((w.failures, w.started, w.strikes), (3, t0, 0));
        assert_eq!(
            FailureWindow::check(Some(&w), policy, t0 + Duration::from_secs(15)),
            Err(Duration::from_secs(45))
        );
        // The window ends: allowed again, and the next failure starts a window twice as long.
        let later = t0 + Duration::from_secs(60);
        assert_eq!(FailureWindow::check(Some(&w), policy, later), Ok(()));
        let mut w = FailureWindow::record_failure(Some(&w), policy, later);
        assert_eq!(
            w,
            FailureWindow {
                started: later,
                failures: 1,
                strikes: 1
            }
        );
        for _ in 0..2 {
            w = FailureWindow::record_failure(Some(&w), policy, later);
        }
        assert_eq!(
            FailureWindow::check(Some(&w), policy, later + Duration::from_secs(60)),
            Err(Duration::from_secs(60)),
            "the second window lasts 120 s"
        );
        // Doubling stops at the longest window.
        let mut t = later;
        for _ in 0..10 {
            t += Duration::from_secs(400);
            for _ in 0..3 {
                w = FailureWindow::record_failure(Some(&w), policy, t);
            }
        }
        assert_eq!(
            FailureWindow::check(Some(&w), policy, t),
            Err(Duration::from_secs(300))
        );
        // A window that ends without being used up, or a long quiet, starts over.
        let calm = FailureWindow::record_failure(None, policy, t0);
        let next = FailureWindow::record_failure(Some(&calm), policy, t0 + Duration::from_secs(61));
        assert_eq!(next.strikes, 0);
        let quiet = t + Duration::from_secs(300 + 1000);
        assert_eq!(
            FailureWindow::record_failure(Some(&w), policy, quiet).strikes,
            0
        );
    }

    #[test]
    fn guessing_a_four_digit_pin_takes_years() {
        let policy = FailurePolicy::PER_NAME;
        let (mut tries, mut elapsed, mut strikes) = (0_u64, Duration::ZERO, 0_u32);
        // A guesser who uses every window up at once, from as many addresses as they like, on
        // two replicas (each counts alone).
        while tries < 5_000 {
            tries += 2 * u64::from(policy.max_failures);
            elapsed += policy.length(strikes);
            strikes += 1;
        }
        assert!(
            elapsed > Duration::from_secs(365 * 24 * 3600),
            "{elapsed:?}"
        );
    }
}
