//! A fast hasher for the producer's own per-record maps. Their keys are
//! the application's topic-partitions and record numbers, not input from
//! a remote party, so hash flooding is no concern, and SipHash (std's
//! default) was a twentieth of the producer's CPU: every record looks up
//! its partition's queue and the sticky partition of its topic. This is
//! the multiply-rotate scheme of FxHash, one round per eight bytes.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The multiplier: an odd constant with well-mixed bits.
const K: u64 = 0x517c_c1b7_2722_0a95;

/// See the module documentation.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FastHasher {
    hash: u64,
}

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

/// A `HashMap` with [`FastHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

#[cfg(test)]
mod tests {
    use std::hash::{BuildHasher, BuildHasherDefault};

    use super::*;

    fn hash<T: std::hash::Hash>(v: &T) -> u64 {
        BuildHasherDefault::<FastHasher>::default().hash_one(v)
    }

    #[test]
    fn topic_partitions_spread_and_equal_keys_hash_alike() {
        let t: std::sync::Arc<str> = "events".into();
        assert_eq!(hash(&(t.clone(), 3)), hash(&(t.clone(), 3)));
        let hashes: std::collections::BTreeSet<u64> =
            (0..1000).map(|p| hash(&(t.clone(), p))).collect();
        assert_eq!(hashes.len(), 1000, "no collisions among 1000 partitions");
        // Names that differ only past the first eight bytes.
        assert_ne!(hash(&"orders-eu-1"), hash(&"orders-eu-2"));
    }
}
