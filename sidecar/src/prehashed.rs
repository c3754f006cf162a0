//! A hasher for keys that are hashes already (a limit counter's name hashed once per config,
//! a cache key that is a BLAKE3 digest): hashing them again with SipHash, a few times a call,
//! spent cycles on what is already uniform.

use std::hash::{BuildHasherDefault, Hasher};

/// Takes in the hashes a key writes, mixed with a multiply (so that a tuple of them, such
/// as a counter and its window, depends on every member).
#[derive(Default)]
pub struct Prehashed(u64);

/// Builds [`Prehashed`] hashers, for a `HashMap`.
pub type BuildPrehashed = BuildHasherDefault<Prehashed>;

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // A key of ours writes whole numbers only; anything else still hashes (FNV-1a).
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(26) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write_u128(&mut self, n: u128) {
        self.write_u64(n as u64 ^ (n >> 64) as u64);
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn every_member_of_a_key_counts() {
        let h = BuildPrehashed::default();
        assert_ne!(h.hash_one((7u64, 1i64)), h.hash_one((7u64, 2i64)));
        assert_ne!(h.hash_one((7u64, 1i64)), h.hash_one((8u64, 1i64)));
        assert_ne!(h.hash_one(1u128 << 64), h.hash_one(2u128 << 64));
        assert_eq!(h.hash_one(5u128), h.hash_one(5u128));
    }
}
