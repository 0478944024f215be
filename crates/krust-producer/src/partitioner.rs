//! Partitioners. Keyed records go where the Java client (`Utils.murmur2`,
//! `toPositive(hash) % numPartitions`) and librdkafka's `murmur2_random`
//! put them, so the three clients agree on a key's partition; unkeyed
//! records use the sticky partitioner of KIP-480 (one partition until a
//! batch is completed there, then another); an explicit partition wins;
//! [`Partitioner`] lets an application choose.

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Kafka's murmur2 (32-bit, seed `0x9747b28c`), bit for bit as Java's
/// `org.apache.kafka.common.utils.Utils.murmur2`.
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    // Java computes `seed ^ length` on an int; keys never reach 4 GiB.
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let mut h: u32 = 0x9747_b28c ^ len;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if let Some(&b) = tail.first() {
        h ^= u32::from(b);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    i32::from_le_bytes(h.to_le_bytes())
}

/// The partition of `key` among `num_partitions`, as Java's default
/// partitioner and librdkafka's `murmur2_random` compute it.
pub fn murmur2_partition(key: &[u8], num_partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % num_partitions.max(1)
}

/// Chooses a partition for records without an explicit one. Called under
/// the producer's lock (from `send`), so it needs no locking of its own.
pub trait Partitioner: Send {
    /// The partition (in `0..num_partitions`) of a record.
    fn partition(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        num_partitions: i32,
    ) -> i32;

    /// Called when the record would open a new batch in `previous` (KIP-480):
    /// a sticky partitioner moves on. The record is then partitioned again.
    fn on_new_batch(&mut self, topic: &str, num_partitions: i32, previous: i32) {
        let _ = (topic, num_partitions, previous);
    }
}

/// Makes a partitioner for each producer.
pub type PartitionerFactory = Arc<dyn Fn() -> Box<dyn Partitioner> + Send + Sync>;

/// Which partitioner a producer uses (`partitioner` property).
#[derive(Clone, Default)]
pub enum PartitionerChoice {
    /// murmur2 for keyed records, sticky for the others (Java's default,
    /// librdkafka's `murmur2_random` for keys).
    #[default]
    Default,
    /// An application's partitioner.
    Custom(PartitionerFactory),
}

impl PartitionerChoice {
    /// The choice a property value names.
    pub fn from_name(name: &str) -> Option<PartitionerChoice> {
        match name {
            "murmur2_random"
            | "default"
            | "sticky"
            | "consistent_random"
            | "org.apache.kafka.clients.producer.internals.DefaultPartitioner"
            | "org.apache.kafka.clients.producer.internals.BuiltInPartitioner" => {
                Some(PartitionerChoice::Default)
            }
            _ => None,
        }
    }

    /// A custom partitioner made by `f` for each producer.
    pub fn custom<F, P>(f: F) -> PartitionerChoice
    where
        F: Fn() -> P + Send + Sync + 'static,
        P: Partitioner + 'static,
    {
        PartitionerChoice::Custom(Arc::new(move || Box::new(f())))
    }

    pub(crate) fn make(&self) -> Box<dyn Partitioner> {
        match self {
            PartitionerChoice::Default => Box::new(DefaultPartitioner::new()),
            PartitionerChoice::Custom(f) => f(),
        }
    }
}

impl fmt::Debug for PartitionerChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartitionerChoice::Default => f.write_str("Default"),
            PartitionerChoice::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// murmur2 for keys, sticky (KIP-480) for unkeyed records.
#[derive(Debug)]
pub struct DefaultPartitioner {
    sticky: crate::fast_hash::FastMap<String, i32>,
    /// The last topic looked up and its sticky partition (a copy of its
    /// entry in `sticky`): a producer sending to one topic compares the
    /// name instead of hashing it.
    last: (String, i32),
    rng: u64,
}

impl Default for DefaultPartitioner {
    fn default() -> Self {
        Self::new()
    }
}

impl DefaultPartitioner {
    /// A partitioner with a time-seeded random source for sticky choices.
    pub fn new() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let seed = u64::try_from(nanos & u128::from(u64::MAX)).unwrap_or(1) | 1;
        DefaultPartitioner {
            sticky: Default::default(),
            last: (String::new(), -1),
            rng: seed,
        }
    }

    /// Make `p` the sticky partition of `topic`.
    fn stick(&mut self, topic: &str, p: i32) {
        self.sticky.insert(topic.to_owned(), p);
        self.remember(topic, p);
    }

    /// Keep `topic` and `p` as the last lookup, reusing the name's buffer.
    fn remember(&mut self, topic: &str, p: i32) {
        if self.last.0 != topic {
            self.last.0.clear();
            self.last.0.push_str(topic);
        }
        self.last.1 = p;
    }

    fn random_below(&mut self, n: i32) -> i32 {
        // xorshift64*: uniform enough to spread sticky batches.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33;
        let n = u64::try_from(n.max(1)).unwrap_or(1);
        i32::try_from(r % n).unwrap_or(0)
    }
}

impl Partitioner for DefaultPartitioner {
    fn partition(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        _value: Option<&[u8]>,
        num_partitions: i32,
    ) -> i32 {
        if let Some(key) = key {
            return murmur2_partition(key, num_partitions);
        }
        if self.last.0 == topic && (0..num_partitions).contains(&self.last.1) {
            return self.last.1;
        }
        match self.sticky.get(topic) {
            Some(&p) if p < num_partitions => {
                self.remember(topic, p);
                p
            }
            _ => {
                let p = self.random_below(num_partitions);
                self.stick(topic, p);
                p
            }
        }
    }

    fn on_new_batch(&mut self, topic: &str, num_partitions: i32, previous: i32) {
        if self.sticky.get(topic) != Some(&previous) {
            return;
        }
        let next = if num_partitions <= 1 {
            0
        } else {
            // Any partition but the previous one.
            let r = self.random_below(num_partitions - 1);
            if r >= previous { r + 1 } else { r }
        };
        self.stick(topic, next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectors of Kafka's `UtilsTest.testMurmur2`.
    #[test]
    fn murmur2_matches_the_java_test_vectors() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (data, want) in cases {
            assert_eq!(murmur2(data), want, "{:?}", String::from_utf8_lossy(data));
        }
    }

    #[test]
    fn keyed_partition_is_to_positive_modulo() {
        // toPositive(-973932308) = 1173551340; % 6 = 0.
        assert_eq!(murmur2_partition(b"21", 6), 1_173_551_340 % 6);
        assert_eq!(murmur2_partition(b"", 1), 0);
        let mut p = DefaultPartitioner::new();
        assert_eq!(
            p.partition("t", Some(b"foobar"), None, 7),
            murmur2_partition(b"foobar", 7)
        );
    }

    #[test]
    fn sticky_stays_until_a_new_batch_then_moves() {
        let mut p = DefaultPartitioner::new();
        let first = p.partition("t", None, None, 6);
        for _ in 0..100 {
            assert_eq!(p.partition("t", None, None, 6), first);
        }
        p.on_new_batch("t", 6, first);
        let second = p.partition("t", None, None, 6);
        assert_ne!(second, first);
        assert!((0..6).contains(&second));
        // A stale notification (another partition) changes nothing.
        p.on_new_batch("t", 6, first);
        assert_eq!(p.partition("t", None, None, 6), second);
        // One partition: always 0.
        let only = p.partition("u", None, None, 1);
        p.on_new_batch("u", 1, only);
        assert_eq!(p.partition("u", None, None, 1), 0);
        // Topics in turn: each keeps its own, and a move of one while the
        // other was looked up last is seen.
        assert_eq!(p.partition("t", None, None, 6), second);
        assert_eq!(p.partition("u", None, None, 1), 0);
        p.on_new_batch("t", 6, second);
        assert_eq!(p.partition("u", None, None, 1), 0);
        let third = p.partition("t", None, None, 6);
        assert_ne!(third, second);
        assert_eq!(p.partition("t", None, None, 6), third);
    }
}
