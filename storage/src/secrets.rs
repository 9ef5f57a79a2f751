//! DPU secrets: how they are made, the one form they are kept in, and how one is checked.
//!
//! A secret is 256 random bits written as 64 hex digits, shown once when it is issued. What
//! is kept is Mosquitto's own password-file hash (`$7$`: PBKDF2-HMAC-SHA512, 101 rounds, a
//! 12-byte random salt, both in standard base64), so that the DPU registry can be written out
//! as a `mosquitto_passwd` file for an external broker without ever holding a secret. The
//! secrets are random, not chosen by people, so the small round count costs an attacker
//! nothing it would not cost them anyway: 2^256 guesses.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use sha2::Sha512;
use subtle::ConstantTimeEq;

/// Mosquitto 2's default for `$7$` hashes.
const ROUNDS: u32 = 101;
const SALT_BYTES: usize = 12;
const HASH_BYTES: usize = 64;

/// A new secret: 64 hex digits.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The kept form of `secret`, with a fresh salt: `$7$101$<salt>$<hash>`.
pub fn hash_secret(secret: &str) -> String {
    let mut salt = [0u8; SALT_BYTES];
    rand::rng().fill_bytes(&mut salt);
    let hash = derive(secret, &salt, ROUNDS);
    format!(
        "$7${ROUNDS}${}${}",
        STANDARD.encode(salt),
        STANDARD.encode(hash)
    )
}

/// Whether `secret` is the one `kept` was made from. A kept form that cannot be read (or
/// asks for absurd work) matches nothing.
pub fn verify_secret(secret: &str, kept: &str) -> bool {
    let mut parts = kept.split('$');
    let (Some(""), Some("7"), Some(rounds), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Ok(rounds), Ok(salt), Ok(hash)) = (
        rounds.parse::<u32>(),
        STANDARD.decode(salt),
        STANDARD.decode(hash),
    ) else {
        return false;
    };
    if !(1..=1_000_000).contains(&rounds) || hash.len() != HASH_BYTES {
        return false;
    }
    derive(secret, &salt, rounds).ct_eq(&hash).into()
}

fn derive(secret: &str, salt: &[u8], rounds: u32) -> [u8; HASH_BYTES] {
    let mut out = [0u8; HASH_BYTES];
    pbkdf2::pbkdf2_hmac::<Sha512>(secret.as_bytes(), salt, rounds, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_matches_its_hash_and_nothing_else() {
        let secret = new_secret();
        assert_eq!(secret.len(), 64);
        let kept = hash_secret(&secret);
        assert!(kept.starts_with("$7$101$"), "{kept}");
        assert!(verify_secret(&secret, &kept));
        assert!(!verify_secret(&new_secret(), &kept));
        assert!(!verify_secret("", &kept));
        // Two hashes of one secret differ (salted) and both match it.
        let again = hash_secret(&secret);
        assert_ne!(kept, again);
        assert!(verify_secret(&secret, &again));
    }

    #[test]
    fn mosquitto_passwd_hashes_are_read() {
        // Made by `mosquitto_passwd -b file dpu-1 s3cret` (Mosquitto 2.0.11).
        let kept = "$7$101$l1WlR7B1Gh6P6Y6N$upzcSmog6ZjDwMTL+FVDTdOXNAUMgq8BZ6C8DoM44rrvjnYny0UwaCnuaBWvPJcoXSTW3G849LPXPl3mILahqQ==";
        assert!(verify_secret("s3cret", kept));
        assert!(!verify_secret("s3cre", kept));
    }

    #[test]
    fn unreadable_kept_forms_match_nothing() {
        for kept in [
            "",
            "$6$101$c2FsdA==$aGFzaA==",
            "$7$x$c2FsdA==$aGFzaA==",
            "$7$101$!!$aGFzaA==",
            "$7$101$c2FsdA==$aGFzaA==",
            "$7$0$c2FsdA==$",
            "$7$4000000000$c2FsdA==$aGFzaA==",
        ] {
            assert!(!verify_secret("s3cret", kept), "{kept}");
        }
    }
}
