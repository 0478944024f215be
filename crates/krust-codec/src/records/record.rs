//! One record of a RecordBatch v2: the owned record decoded from the
//! batch's bytes without copying (built from the borrowed view the decoder
//! yields, `record_decode.rs`), and encoding a record.

use bytes::{BufMut, Bytes, BytesMut};

use super::record_decode::{next_header, usize_from};
use super::record_ref::{HeadersRef, RecordRef};
use crate::error::EncodeError;
use crate::wire::{KString, put_varint, put_varlong, varint_len, varlong_len};

/// A decoded record. Key, value and headers are slices of the batch's bytes
/// (of its decompressed buffer for a compressed batch).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Record {
    /// The record's offset in its partition.
    pub offset: i64,
    /// The record's timestamp (ms since the epoch); for a batch with
    /// log-append time, the batch's max timestamp; -1 for magic 0.
    pub timestamp: i64,
    /// The key, `None` for a null key.
    pub key: Option<Bytes>,
    /// The value, `None` for a null value (a tombstone).
    pub value: Option<Bytes>,
    /// The headers (always empty for legacy messages).
    pub headers: Headers,
}

/// The headers of a decoded record: a validated view of their bytes,
/// decoded on iteration without allocating a collection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    data: Bytes,
    count: u32,
}

/// One decoded header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The header key.
    pub key: KString,
    /// The header value, `None` for null.
    pub value: Option<Bytes>,
}

impl Headers {
    /// The number of headers.
    pub fn len(&self) -> usize {
        usize_from(self.count)
    }

    /// True when the record has no headers.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Iterate the headers in order.
    pub fn iter(&self) -> HeadersIter<'_> {
        HeadersIter {
            headers: self,
            pos: 0,
            left: self.count,
        }
    }

    /// The first header with this key, if any.
    pub fn get(&self, key: &str) -> Option<Header> {
        self.iter().find(|h| h.key == key)
    }
}

impl<'a> From<&'a Headers> for HeadersRef<'a> {
    fn from(h: &'a Headers) -> Self {
        HeadersRef::new(&h.data, h.count)
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = Header;
    type IntoIter = HeadersIter<'a>;
    fn into_iter(self) -> HeadersIter<'a> {
        self.iter()
    }
}

/// Iterator over [`Headers`].
#[derive(Debug, Clone)]
pub struct HeadersIter<'a> {
    headers: &'a Headers,
    pos: usize,
    left: u32,
}

impl Iterator for HeadersIter<'_> {
    type Item = Header;

    fn next(&mut self) -> Option<Header> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let data = &self.headers.data;
        // The headers were validated when the record was decoded, so this
        // cannot fail; if it did, iteration would just stop.
        let (key, value) = next_header(data, &mut self.pos)?;
        let key = KString::from_utf8(slice_of(data, key)).ok()?;
        Some(Header {
            key,
            value: value.map(|v| slice_of(data, v)),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize_from(self.left);
        (n, Some(n))
    }
}

impl ExactSizeIterator for HeadersIter<'_> {}

/// A record to encode with [`RecordBatchBuilder`](super::RecordBatchBuilder).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NewRecord<'a> {
    /// The offset delta within the batch; `None` takes the next one (the
    /// previous record's plus one). Deltas must increase.
    pub offset_delta: Option<i32>,
    /// The record's timestamp (ms since the epoch).
    pub timestamp: i64,
    /// The key, `None` for null.
    pub key: Option<&'a [u8]>,
    /// The value, `None` for null (a tombstone).
    pub value: Option<&'a [u8]>,
    /// The headers.
    pub headers: &'a [NewHeader<'a>],
}

/// A header to encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewHeader<'a> {
    /// The header key.
    pub key: &'a str,
    /// The header value, `None` for null.
    pub value: Option<&'a [u8]>,
}

impl Record {
    /// The owned record of `r`, a record borrowed from `buf`: its fields
    /// become slices of `buf` (reference counted, not copied).
    #[inline]
    pub(crate) fn from_ref(buf: &Bytes, r: RecordRef<'_>) -> Record {
        Record {
            offset: r.offset,
            timestamp: r.timestamp,
            key: r.key.map(|k| slice_of(buf, k)),
            value: r.value.map(|v| slice_of(buf, v)),
            headers: Headers::from_ref(buf, r.headers),
        }
    }
}

/// `part`, which borrows from `buf`'s bytes, as a [`Bytes`] slice of `buf`
/// (what [`Bytes::slice_ref`] does, but inlined: this runs for every key,
/// value and header).
#[inline(always)]
fn slice_of(buf: &Bytes, part: &[u8]) -> Bytes {
    let start = part.as_ptr().addr().wrapping_sub(buf.as_ptr().addr());
    buf.slice(start..start.saturating_add(part.len()))
}

impl Headers {
    /// The owned headers of `h`, borrowed from `buf`.
    #[inline]
    fn from_ref(buf: &Bytes, h: HeadersRef<'_>) -> Headers {
        if h.is_empty() {
            Headers::default()
        } else {
            Headers {
                data: slice_of(buf, h.as_bytes()),
                count: h.count(),
            }
        }
    }
}

/// Encoded size of a varint-length-prefixed byte field.
fn field_len(b: Option<&[u8]>, what: &'static str) -> Result<usize, EncodeError> {
    match b {
        None => Ok(1),
        Some(b) => {
            let n = i32::try_from(b.len()).map_err(|_| EncodeError::TooLong {
                what,
                length: b.len(),
            })?;
            Ok(varint_len(n) + b.len())
        }
    }
}

fn put_field(buf: &mut BytesMut, b: Option<&[u8]>) {
    match b {
        None => put_varint(buf, -1),
        Some(b) => {
            // Lengths were checked to fit an i32 by `body_len`.
            put_varint(buf, i32::try_from(b.len()).unwrap_or(i32::MAX));
            buf.put_slice(b);
        }
    }
}

/// Size of a record's body (everything after its length prefix).
pub(crate) fn body_len(
    rec: &NewRecord<'_>,
    offset_delta: i32,
    timestamp_delta: i64,
) -> Result<usize, EncodeError> {
    let header_count = i32::try_from(rec.headers.len()).map_err(|_| EncodeError::TooLong {
        what: "record headers",
        length: rec.headers.len(),
    })?;
    let mut n = 1
        + varlong_len(timestamp_delta)
        + varint_len(offset_delta)
        + field_len(rec.key, "record key")?
        + field_len(rec.value, "record value")?
        + varint_len(header_count);
    for h in rec.headers {
        n += field_len(Some(h.key.as_bytes()), "header key")? + field_len(h.value, "header value")?;
    }
    if i32::try_from(n).is_err() {
        return Err(EncodeError::TooLong {
            what: "record",
            length: n,
        });
    }
    Ok(n)
}

/// Append a record whose body is `body_len` bytes (from [`body_len`]).
pub(crate) fn encode_record(
    buf: &mut BytesMut,
    rec: &NewRecord<'_>,
    offset_delta: i32,
    timestamp_delta: i64,
    body_len: usize,
) {
    let body_len_i32 = i32::try_from(body_len).unwrap_or(i32::MAX);
    buf.reserve(varint_len(body_len_i32) + body_len);
    put_varint(buf, body_len_i32);
    buf.put_u8(0); // record attributes: unused
    put_varlong(buf, timestamp_delta);
    put_varint(buf, offset_delta);
    put_field(buf, rec.key);
    put_field(buf, rec.value);
    put_varint(buf, i32::try_from(rec.headers.len()).unwrap_or(i32::MAX));
    for h in rec.headers {
        put_field(buf, Some(h.key.as_bytes()));
        put_field(buf, h.value);
    }
}
