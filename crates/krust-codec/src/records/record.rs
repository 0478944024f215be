//! One decoded record, owned: its key, value and headers are spans of one
//! shared slice of the batch's bytes ([`RecordData`]), built from the
//! borrowed view the decoder yields (`record_decode.rs`); and encoding a
//! record.

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};

use super::record_decode::usize_from;
use super::record_ref::{HeadersRef, RecordRef};
use crate::error::EncodeError;
use crate::wire::{put_varint, put_varlong, varint_len, varlong_len};

/// A decoded record: where it stands in its partition and its
/// [`RecordData`] (key, value and headers).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Record {
    /// The record's offset in its partition.
    pub offset: i64,
    /// The record's timestamp (ms since the epoch); for a batch with
    /// log-append time, the batch's max timestamp; -1 for magic 0.
    pub timestamp: i64,
    /// The key, value and headers.
    pub data: RecordData,
}

impl Record {
    /// The owned record of `r`, a record borrowed from `buf`.
    #[inline]
    pub(crate) fn from_ref(buf: &Bytes, r: RecordRef<'_>) -> Record {
        Record {
            offset: r.offset,
            timestamp: r.timestamp,
            data: RecordData::from_ref(buf, r),
        }
    }

    /// A record whose key and value are ranges of `bytes` (a legacy
    /// message, which has no headers).
    pub(crate) fn new(
        offset: i64,
        timestamp: i64,
        bytes: Bytes,
        key: Option<Range<usize>>,
        value: Option<Range<usize>>,
    ) -> Record {
        Record {
            offset,
            timestamp,
            data: RecordData {
                bytes,
                key: Span::of(key),
                value: Span::of(value),
                headers: Span::NULL,
                header_count: 0,
            },
        }
    }
}

/// A decoded record's key, value and headers: one [`Bytes`] slice of its
/// batch's bytes (of the decompressed buffer for a compressed batch), and
/// where each part lies in it.
///
/// Nothing is copied when a record is decoded, and the slice is its only
/// reference count, whatever the record holds: every `Bytes` slice made and
/// dropped is an atomic update on the buffer they share, which for small
/// records costs more than decoding them. [`key`](Self::key),
/// [`value`](Self::value) and [`headers`](Self::headers) borrow from it;
/// [`key_bytes`](Self::key_bytes) and [`value_bytes`](Self::value_bytes)
/// (and [`Bytes::slice_ref`] on [`buffer`](Self::buffer) for a header's
/// value) give a part that outlives the record, still without copying.
#[derive(Clone, Default)]
pub struct RecordData {
    bytes: Bytes,
    key: Span,
    value: Span,
    headers: Span,
    header_count: u32,
}

/// Where a part of a record lies in its [`RecordData`]'s bytes, or that it
/// is null.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    len: u32,
}

impl Default for Span {
    fn default() -> Self {
        Span::NULL
    }
}

impl Span {
    /// A null part.
    const NULL: Span = Span {
        start: u32::MAX,
        len: 0,
    };

    /// The span of `range`. A record's parts lie within it, and a record
    /// is at most `i32::MAX` bytes long, so the bounds fit.
    #[inline]
    fn of(range: Option<Range<usize>>) -> Span {
        match range {
            None => Span::NULL,
            Some(r) => Span {
                start: u32::try_from(r.start).unwrap_or(u32::MAX),
                len: u32::try_from(r.len()).unwrap_or(0),
            },
        }
    }

    /// Where the part lies in `len` bytes: `None` for a null part (or,
    /// which the constructors rule out, a span outside them).
    #[inline]
    fn range(self, len: usize) -> Option<Range<usize>> {
        if self.start == u32::MAX {
            return None;
        }
        let start = usize_from(self.start);
        let end = start.saturating_add(usize_from(self.len));
        (end <= len).then_some(start..end)
    }

    /// The part in `bytes`.
    #[inline]
    fn get(self, bytes: &[u8]) -> Option<&[u8]> {
        self.range(bytes.len()).map(|r| &bytes[r])
    }

    /// The part as a slice of `bytes`, sharing them.
    #[inline]
    fn slice(self, bytes: &Bytes) -> Option<Bytes> {
        self.range(bytes.len()).map(|r| bytes.slice(r))
    }
}

impl RecordData {
    /// Key, value and headers copied into a buffer of their own, for a
    /// record made up rather than decoded (a test's, a mock's). Fails as
    /// encoding it would: when a part is longer than its length prefix can
    /// say.
    pub fn new(
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[NewHeader<'_>],
    ) -> Result<RecordData, EncodeError> {
        let record = NewRecord {
            key,
            value,
            headers,
            ..NewRecord::default()
        };
        let mut buf = BytesMut::with_capacity(body_len(&record, 0, 0)?);
        let put = |part: Option<&[u8]>, buf: &mut BytesMut| {
            part.map(|p| {
                let start = buf.len();
                buf.put_slice(p);
                start..buf.len()
            })
        };
        let key = put(key, &mut buf);
        let value = put(value, &mut buf);
        let start = buf.len();
        put_headers(&mut buf, headers);
        let header_range = (!headers.is_empty()).then(|| start..buf.len());
        Ok(RecordData {
            key: Span::of(key),
            value: Span::of(value),
            headers: Span::of(header_range),
            // `body_len` checked that the count fits an i32.
            header_count: u32::try_from(headers.len()).unwrap_or(0),
            bytes: buf.freeze(),
        })
    }

    /// The parts of `r`, a record borrowed from `buf`, in one slice of
    /// `buf`: from the first part present to the end of the last (a
    /// record's key, value and headers follow each other in that order).
    /// A record with none of them shares nothing.
    #[inline]
    fn from_ref(buf: &Bytes, r: RecordRef<'_>) -> RecordData {
        let headers = (!r.headers.is_empty()).then(|| r.headers.as_bytes());
        let (Some(first), Some(last)) =
            (r.key.or(r.value).or(headers), headers.or(r.value).or(r.key))
        else {
            return RecordData::default();
        };
        let base = first.as_ptr().addr();
        let end = last.as_ptr().addr().wrapping_add(last.len());
        let offset = base.wrapping_sub(buf.as_ptr().addr());
        let span = |part: Option<&[u8]>| {
            Span::of(part.map(|p| {
                let start = p.as_ptr().addr().wrapping_sub(base);
                start..start.wrapping_add(p.len())
            }))
        };
        RecordData {
            bytes: buf.slice(offset..offset.wrapping_add(end.wrapping_sub(base))),
            key: span(r.key),
            value: span(r.value),
            headers: span(headers),
            header_count: r.headers.count(),
        }
    }

    /// The key, `None` for a null key.
    #[inline]
    pub fn key(&self) -> Option<&[u8]> {
        self.key.get(&self.bytes)
    }

    /// The value, `None` for a null value (a tombstone).
    #[inline]
    pub fn value(&self) -> Option<&[u8]> {
        self.value.get(&self.bytes)
    }

    /// The key as [`Bytes`] sharing the batch's bytes (not copied).
    pub fn key_bytes(&self) -> Option<Bytes> {
        self.key.slice(&self.bytes)
    }

    /// The value as [`Bytes`] sharing the batch's bytes (not copied).
    pub fn value_bytes(&self) -> Option<Bytes> {
        self.value.slice(&self.bytes)
    }

    /// The headers, decoded on iteration (they were validated when the
    /// record was decoded).
    #[inline]
    pub fn headers(&self) -> HeadersRef<'_> {
        match self.headers.get(&self.bytes) {
            Some(data) => HeadersRef::new(data, self.header_count),
            None => HeadersRef::default(),
        }
    }

    /// The bytes the key, value and headers are slices of.
    pub fn buffer(&self) -> &Bytes {
        &self.bytes
    }
}

impl PartialEq for RecordData {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
            && self.value() == other.value()
            && self.headers() == other.headers()
    }
}

impl Eq for RecordData {}

impl std::fmt::Debug for RecordData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordData")
            .field("key", &self.key_bytes())
            .field("value", &self.value_bytes())
            .field("headers", &self.headers())
            .finish()
    }
}

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
    put_headers(buf, rec.headers);
}

/// Append the headers (each a key and a value field), without their count.
fn put_headers(buf: &mut BytesMut, headers: &[NewHeader<'_>]) {
    for h in headers {
        put_field(buf, Some(h.key.as_bytes()));
        put_field(buf, h.value);
    }
}
