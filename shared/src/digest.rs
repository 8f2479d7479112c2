//! Short, stable names derived from content: hex of a SHA-256 digest (token key ids, entity
//! tags, idempotency fingerprints, keys of long targets).

use sha2::{Digest, Sha256};

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Hex of the first `bytes` bytes (at most 32) of the SHA-256 digest of `data`.
pub fn sha256_hex(data: &[u8], bytes: usize) -> String {
    let digest = Sha256::digest(data);
    hex(&digest[..bytes.min(digest.len())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_hex_prefixes_of_sha256() {
        assert_eq!(hex(&[0x00, 0xab, 0x10]), "00ab10");
        // SHA-256("abc") = ba7816bf...
        assert_eq!(sha256_hex(b"abc", 4), "ba7816bf");
        assert_eq!(sha256_hex(b"abc", 99).len(), 64);
    }
}
