//! A read position in a slice, with the readers the record encodings need
//! (zigzag varints as in protobuf, as RecordBatch v2 records use them, and
//! varint-length-prefixed byte fields).
//!
//! Record decoding is the consumer's hot loop (ARCHITECTURE.md, The codec),
//! so each reader has an inlined fast path for the common case (a varint of
//! one or two bytes, bytes present) and leaves everything else, including
//! building the error, to an out-of-line cold path. The slow paths are the
//! plain byte-at-a-time readers, run from the same position: they give the
//! same values and exactly the same errors as if the fast path did not
//! exist (`tests/records_errors.rs` pins them).

use std::ops::Range;

use crate::error::DecodeError;

/// A read position in a slice.
pub(crate) struct Cursor<'a> {
    data: &'a [u8],
    pub(crate) pos: usize,
}

/// Zigzag-decode a 32-bit varint's bits.
#[inline(always)]
fn zigzag32(v: u32) -> i32 {
    ((v >> 1) as i32) ^ -((v & 1) as i32)
}

/// Zigzag-decode a 64-bit varint's bits.
#[inline(always)]
fn zigzag64(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// The end-of-input error; out of line, as are all the error paths, so
/// that the readers inline small and the cursor stays in registers.
#[cold]
#[inline(never)]
fn eof(what: &'static str, needed: usize, remaining: usize) -> DecodeError {
    DecodeError::UnexpectedEof {
        what,
        needed,
        remaining,
    }
}

/// A varint read a byte at a time from `pos`: its value and the position
/// after it.
#[cold]
#[inline(never)]
fn varint_slow(data: &[u8], pos: usize, what: &'static str) -> Result<(i32, usize), DecodeError> {
    let mut cur = Cursor::new(data, pos);
    let mut value = 0u32;
    for i in 0..5 {
        let b = cur.u8(what)?;
        if i == 4 && b > 0x0f {
            return Err(DecodeError::BadVarint { what });
        }
        value |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((zigzag32(value), cur.pos));
        }
    }
    Err(DecodeError::BadVarint { what })
}

/// A varlong read a byte at a time from `pos`: its value and the position
/// after it.
#[cold]
#[inline(never)]
fn varlong_slow(data: &[u8], pos: usize, what: &'static str) -> Result<(i64, usize), DecodeError> {
    let mut cur = Cursor::new(data, pos);
    let mut value = 0u64;
    for i in 0..10 {
        let b = cur.u8(what)?;
        if i == 9 && b > 0x01 {
            return Err(DecodeError::BadVarint { what });
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((zigzag64(value), cur.pos));
        }
    }
    Err(DecodeError::BadVarint { what })
}

/// A length or count read as `length` that is negative where it may not
/// be, with `remaining` bytes left.
#[cold]
#[inline(never)]
pub(crate) fn invalid_length(what: &'static str, length: i32, remaining: usize) -> DecodeError {
    DecodeError::InvalidLength {
        what,
        length: i64::from(length),
        remaining,
    }
}

impl<'a> Cursor<'a> {
    #[inline(always)]
    pub(crate) fn new(data: &'a [u8], pos: usize) -> Self {
        Cursor { data, pos }
    }

    /// The bytes left.
    #[inline(always)]
    pub(crate) fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    #[inline(always)]
    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        match self.data.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(eof(what, 1, self.remaining())),
        }
    }

    /// The value and length of the varint at the position when it is one
    /// or two bytes long and both are there.
    #[inline(always)]
    fn short_varint(&self) -> Option<(u32, usize)> {
        let b0 = *self.data.get(self.pos)?;
        if b0 & 0x80 == 0 {
            return Some((u32::from(b0), 1));
        }
        let b1 = *self.data.get(self.pos + 1)?;
        if b1 & 0x80 == 0 {
            return Some((u32::from(b0 & 0x7f) | (u32::from(b1) << 7), 2));
        }
        None
    }

    #[inline(always)]
    pub(crate) fn varint(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        let (v, pos) = match self.short_varint() {
            Some((v, n)) => (zigzag32(v), self.pos + n),
            None => varint_slow(self.data, self.pos, what)?,
        };
        self.pos = pos;
        Ok(v)
    }

    #[inline(always)]
    pub(crate) fn varlong(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        let (v, pos) = match self.short_varint() {
            Some((v, n)) => (zigzag64(u64::from(v)), self.pos + n),
            None => varlong_slow(self.data, self.pos, what)?,
        };
        self.pos = pos;
        Ok(v)
    }

    /// Take `n` bytes, returning their range.
    #[inline(always)]
    pub(crate) fn take(
        &mut self,
        n: usize,
        what: &'static str,
    ) -> Result<Range<usize>, DecodeError> {
        let start = self.pos;
        match start.checked_add(n) {
            Some(end) if end <= self.data.len() => {
                self.pos = end;
                Ok(start..end)
            }
            _ => Err(eof(what, n, self.remaining())),
        }
    }

    /// Take `n` bytes.
    #[inline(always)]
    pub(crate) fn take_slice(
        &mut self,
        n: usize,
        what: &'static str,
    ) -> Result<&'a [u8], DecodeError> {
        let data: &'a [u8] = self.data;
        match data.get(self.pos..).and_then(|rest| rest.get(..n)) {
            Some(b) => {
                self.pos += n;
                Ok(b)
            }
            None => Err(eof(what, n, self.remaining())),
        }
    }

    /// A varint-length-prefixed byte field (-1 is null).
    #[inline(always)]
    pub(crate) fn bytes_field(
        &mut self,
        what: &'static str,
    ) -> Result<Option<&'a [u8]>, DecodeError> {
        let len = self.varint(what)?;
        if len == -1 {
            return Ok(None);
        }
        match usize::try_from(len) {
            Ok(n) => self.take_slice(n, what).map(Some),
            Err(_) => Err(invalid_length(what, len, self.remaining())),
        }
    }
}
