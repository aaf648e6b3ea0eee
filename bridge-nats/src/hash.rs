//! The bridge's hashes: the same in every process, build and version, since
//! replicas must agree on them without talking (shards, hashed ids, long
//! subjects, channel keys). None is keyed, so none is for anything an
//! attacker could exploit by collisions; the tables keyed by them use std's
//! randomly seeded hasher on top.
//!
//! FNV-1a, 64 bits: offset basis 0xcbf29ce484222325, prime 0x100000001b3,
//! over the bytes of each part in turn. The 128-bit hash is two FNV-1a
//! passes that start with the byte 0x01 and 0x02 respectively.

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a, 64 bits, over `parts` one after the other.
pub fn fnv1a(parts: &[&[u8]]) -> u64 {
    fnv1a_from(OFFSET, parts)
}

fn fnv1a_from(mut h: u64, parts: &[&[u8]]) -> u64 {
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
    }
    h
}

/// Two FNV-1a passes with different leading bytes, as one number.
pub fn hash_u128(parts: &[&[u8]]) -> u128 {
    let a = fnv1a_from(OFFSET, &[b"\x01"]);
    let b = fnv1a_from(OFFSET, &[b"\x02"]);
    (u128::from(fnv1a_from(a, parts)) << 64) | u128::from(fnv1a_from(b, parts))
}

/// [`hash_u128`] as 32 lower-case hex digits.
pub fn hash128(parts: &[&[u8]]) -> String {
    format!("{:032x}", hash_u128(parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_vectors() {
        assert_eq!(fnv1a(&[b""]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(&[b"foobar"]), 0x8594_4171_f739_67e8);
        assert_eq!(fnv1a(&[b"foo", b"bar"]), fnv1a(&[b"foobar"]));
    }

    #[test]
    fn the_128_bit_hash_is_two_prefixed_passes_and_never_changes() {
        let parts: [&[u8]; 3] = [b"ex", &[0], b"chan"];
        let prefixed = |p: &'static [u8]| {
            let mut all = vec![p];
            all.extend_from_slice(&parts);
            fnv1a(&all)
        };
        assert_eq!(hash_u128(&parts), (u128::from(prefixed(b"\x01")) << 64) | u128::from(prefixed(b"\x02")));
        // Fixed: hashed ids and long subjects must match across versions, or
        // replicas of two versions would store each message twice.
        assert_eq!(hash128(&[b"deribit", &[0], b"trades", &[0], b"{}"]), GOLDEN);
        assert_eq!(hash128(&[]).len(), 32);
    }
    const GOLDEN: &str = "064a16fc2203a38c2b0e479c49fc6607";
}
