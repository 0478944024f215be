//! Random values for property tests, fuzzing and benches (feature `sample`).
//!
//! [`SampleRng`] is a tiny deterministic xorshift64* generator: the same seed
//! gives the same messages on every machine, and no `rand` dependency is
//! needed. The generated `sample(rng, version)` constructors build on it.

use bytes::Bytes;

use crate::wire::{KString, RawTaggedField, Uuid};

/// A small deterministic pseudo-random generator (xorshift64*).
#[derive(Debug, Clone)]
pub struct SampleRng(u64);

impl SampleRng {
    /// A generator from a seed (any value, zero included).
    pub fn new(seed: u64) -> Self {
        SampleRng(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// True with probability 1/n.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    /// A random boolean.
    pub fn bool(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }

    /// An integer that is often small, sometimes an edge value.
    fn int(&mut self) -> i64 {
        match self.below(8) {
            0 => -1,
            1 => 0,
            2 => i64::MIN,
            3 => i64::MAX,
            4 | 5 => self.below(100) as i64,
            _ => self.next_u64() as i64,
        }
    }

    /// A random i8.
    pub fn i8(&mut self) -> i8 {
        self.int() as i8
    }

    /// A random i16.
    pub fn i16(&mut self) -> i16 {
        self.int() as i16
    }

    /// A random u16.
    pub fn u16(&mut self) -> u16 {
        self.int() as u16
    }

    /// A random i32.
    pub fn i32(&mut self) -> i32 {
        self.int() as i32
    }

    /// A random u32.
    pub fn u32(&mut self) -> u32 {
        self.int() as u32
    }

    /// A random i64.
    pub fn i64(&mut self) -> i64 {
        self.int()
    }

    /// A random finite f64 (never NaN, so values compare equal to themselves).
    pub fn f64(&mut self) -> f64 {
        self.i32() as f64 / 8.0
    }

    /// A random UUID.
    pub fn uuid(&mut self) -> Uuid {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&self.next_u64().to_be_bytes());
        id[8..].copy_from_slice(&self.next_u64().to_be_bytes());
        Uuid(id)
    }

    /// A short random string (0 to 8 characters, some of them multi-byte).
    pub fn kstring(&mut self) -> KString {
        const CHARS: &[char] = &['a', 'b', 'z', '0', '-', '_', '.', 'é', '€', '🦀'];
        let n = self.below(9);
        let s: String = (0..n)
            .map(|_| CHARS[self.below(CHARS.len() as u64) as usize])
            .collect();
        KString::from(s)
    }

    /// Short random bytes (0 to 16).
    pub fn bytes(&mut self) -> Bytes {
        let n = self.below(17);
        (0..n)
            .map(|_| self.next_u64() as u8)
            .collect::<Vec<u8>>()
            .into()
    }

    /// A vector of 0 to 3 elements made by `f`.
    pub fn vec<T>(&mut self, mut f: impl FnMut(&mut SampleRng) -> T) -> Vec<T> {
        let n = self.below(4);
        (0..n).map(|_| f(self)).collect()
    }

    /// Sometimes a few unknown tagged fields, with distinct ascending tags
    /// from `first_tag` up (so they never clash with the struct's own tags).
    pub fn unknown_tagged_fields(&mut self, first_tag: u32) -> Vec<RawTaggedField> {
        if !self.one_in(4) {
            return Vec::new();
        }
        let mut tag = first_tag + self.below(3) as u32;
        let mut out = Vec::new();
        for _ in 0..1 + self.below(3) {
            out.push(RawTaggedField {
                tag,
                data: self.bytes(),
            });
            tag += 1 + self.below(200) as u32;
        }
        out
    }
}

/// Decode the records of a v2 batch through both views, the owned
/// [`Record`](crate::records::Record)s and the borrowed
/// [`RecordRef`](crate::records::RecordRef)s, and panic unless they give
/// the same records (headers included) and the same errors and end
/// together; returns the number of records decoded. For property tests and
/// the fuzz targets.
pub fn views_agree(batch: &crate::records::RecordBatch) -> usize {
    use crate::records::{HeaderRef, RecordRef};
    let (Ok(borrowed), Ok(owned)) = (batch.records(), batch.records()) else {
        return 0;
    };
    let mut n = 0;
    let mut refs = borrowed.refs();
    for o in owned {
        let r = refs.next().expect("the borrowed view ends early");
        match (r, o) {
            (Ok(r), Ok(o)) => {
                assert_eq!(r, RecordRef::from(&o));
                let oh: Vec<HeaderRef<'_>> = o.data.headers().iter().collect();
                let rh: Vec<HeaderRef<'_>> = r.headers.iter().collect();
                assert_eq!(rh.len(), r.headers.len());
                assert_eq!(rh, oh, "headers differ at offset {}", r.offset);
                let data = o.data;
                assert_eq!(data.key_bytes().as_deref(), r.key);
                assert_eq!(data.value_bytes().as_deref(), r.value);
                n += 1;
            }
            (r, o) => assert_eq!(r.err(), o.err()),
        }
    }
    assert!(refs.next().is_none(), "the borrowed view goes on");
    n
}
