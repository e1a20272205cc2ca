//! DICOM unique identifiers.
//!
//! spinetwin has no registered UID root, so it uses the UUID-derived form `2.25.<decimal>`
//! that PS3.5 Annex B.2 allows without registration. UIDs are derived by hashing, so the
//! same inputs always give the same UID: a series written twice from the same data, or an
//! original UID mapped twice during de-identification, gets the same new UID.

use sha2::{Digest, Sha256};

/// A `2.25.` UID derived from the SHA-256 of `parts` (joined unambiguously). The first
/// 128 bits of the hash are used, with the UUID version/variant bits set (RFC 4122 v8-style)
/// so that the number is a valid UUID integer.
pub fn from_hash(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x80; // version 8 (custom)
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    format!("2.25.{}", u128::from_be_bytes(b))
}

/// True when `uid` is a syntactically valid DICOM UID (digits and dots, no leading zeros in
/// components, at most 64 characters).
pub fn is_valid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= 64
        && uid.split('.').all(|c| {
            !c.is_empty()
                && c.bytes().all(|b| b.is_ascii_digit())
                && (c == "0" || !c.starts_with('0'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_valid_deterministic_and_distinct() {
        let a = from_hash(&[b"series", b"1"]);
        assert!(is_valid(&a), "{a}");
        assert_eq!(a, from_hash(&[b"series", b"1"]));
        assert_ne!(
            a,
            from_hash(&[b"series1"]),
            "parts must be joined unambiguously"
        );
        assert_ne!(a, from_hash(&[b"series", b"2"]));
        assert!(!is_valid("1.02.3") && !is_valid("1..2") && !is_valid("1.2a"));
    }
}
