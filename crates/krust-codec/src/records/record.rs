//! One record of a RecordBatch v2: decoding it from the batch's bytes
//! without copying, and encoding it.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError};
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
        let mut cur = Cursor::new(data, self.pos);
        // The headers were validated when the record was decoded, so these
        // reads cannot fail; if they did, iteration would just stop.
        let key = cur.bytes_field("header key").ok()??;
        let value = cur.bytes_field("header value").ok()?;
        self.pos = cur.pos;
        let key = KString::from_utf8(data.slice(key)).ok()?;
        Some(Header {
            key,
            value: value.map(|r| data.slice(r)),
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

/// A read position in a slice, with the record encodings' readers.
pub(crate) struct Cursor<'a> {
    data: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(data: &'a [u8], pos: usize) -> Self {
        Cursor { data, pos }
    }

    fn eof(&self, what: &'static str, needed: usize) -> DecodeError {
        DecodeError::UnexpectedEof {
            what,
            needed,
            remaining: self.data.len().saturating_sub(self.pos),
        }
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        let b = *self.data.get(self.pos).ok_or_else(|| self.eof(what, 1))?;
        self.pos += 1;
        Ok(b)
    }

    fn unsigned_varlong(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for i in 0..10 {
            let b = self.u8(what)?;
            if i == 9 && b > 0x01 {
                return Err(DecodeError::BadVarint { what });
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::BadVarint { what })
    }

    pub(crate) fn varlong(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        let v = self.unsigned_varlong(what)?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    pub(crate) fn varint(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        let mut value = 0u32;
        for i in 0..5 {
            let b = self.u8(what)?;
            if i == 4 && b > 0x0f {
                return Err(DecodeError::BadVarint { what });
            }
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(((value >> 1) as i32) ^ -((value & 1) as i32));
            }
        }
        Err(DecodeError::BadVarint { what })
    }

    /// Take `n` bytes, returning their range.
    pub(crate) fn take(
        &mut self,
        n: usize,
        what: &'static str,
    ) -> Result<std::ops::Range<usize>, DecodeError> {
        let start = self.pos;
        match start.checked_add(n) {
            Some(end) if end <= self.data.len() => {
                self.pos = end;
                Ok(start..end)
            }
            _ => Err(self.eof(what, n)),
        }
    }

    /// A varint-length-prefixed byte field (-1 is null).
    pub(crate) fn bytes_field(
        &mut self,
        what: &'static str,
    ) -> Result<Option<std::ops::Range<usize>>, DecodeError> {
        let len = self.varint(what)?;
        if len == -1 {
            return Ok(None);
        }
        let n = usize::try_from(len).map_err(|_| DecodeError::InvalidLength {
            what,
            length: i64::from(len),
            remaining: self.data.len().saturating_sub(self.pos),
        })?;
        self.take(n, what).map(Some)
    }
}

/// Where the offsets and timestamps of a batch's records come from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordBase {
    pub(crate) base_offset: i64,
    pub(crate) first_timestamp: i64,
    /// `Some(max timestamp)` for a batch with log-append time.
    pub(crate) log_append_time: Option<i64>,
}

/// Smallest encoded record: length, attributes, timestamp delta, offset
/// delta, key length, value length and header count, one byte each.
pub(crate) const MIN_RECORD_LEN: usize = 7;

/// Decode the record at `*pos` in `data`, advancing `*pos` past it.
pub(crate) fn decode_record(
    data: &Bytes,
    pos: &mut usize,
    base: &RecordBase,
) -> Result<Record, DecodeError> {
    let mut cur = Cursor::new(data, *pos);
    let len = cur.varint("record length")?;
    let len = usize::try_from(len).map_err(|_| DecodeError::InvalidLength {
        what: "record length",
        length: i64::from(len),
        remaining: data.len().saturating_sub(cur.pos),
    })?;
    let body = cur.take(len, "record")?;
    let mut cur = Cursor::new(&data[..body.end], body.start);
    let _attributes = cur.u8("record attributes")?;
    let timestamp_delta = cur.varlong("record timestamp delta")?;
    let offset_delta = cur.varint("record offset delta")?;
    let key = cur.bytes_field("record key")?;
    let value = cur.bytes_field("record value")?;
    let count = cur.varint("record header count")?;
    let count = u32::try_from(count).map_err(|_| DecodeError::InvalidLength {
        what: "record header count",
        length: i64::from(count),
        remaining: body.end - cur.pos,
    })?;
    let headers_start = cur.pos;
    for _ in 0..count {
        let key = cur
            .bytes_field("header key")?
            .ok_or(DecodeError::InvalidLength {
                what: "header key",
                length: -1,
                remaining: body.end - cur.pos,
            })?;
        std::str::from_utf8(&data[key])
            .map_err(|_| DecodeError::InvalidUtf8 { what: "header key" })?;
        cur.bytes_field("header value")?;
    }
    if cur.pos != body.end {
        return Err(DecodeError::TrailingBytes {
            what: "record",
            remaining: body.end - cur.pos,
        });
    }
    *pos = body.end;
    let offset = base
        .base_offset
        .checked_add(i64::from(offset_delta))
        .ok_or_else(|| invalid("record offset", "base offset + delta overflows"))?;
    let timestamp = match base.log_append_time {
        Some(t) => t,
        None => base
            .first_timestamp
            .checked_add(timestamp_delta)
            .ok_or_else(|| invalid("record timestamp", "first timestamp + delta overflows"))?,
    };
    let headers = if count == 0 {
        Headers::default()
    } else {
        Headers {
            data: data.slice(headers_start..body.end),
            count,
        }
    };
    Ok(Record {
        offset,
        timestamp,
        key: key.map(|r| data.slice(r)),
        value: value.map(|r| data.slice(r)),
        headers,
    })
}

/// A count that was read off the wire as a u32, as a size (lossless on the
/// platforms this crate builds for; saturating elsewhere).
pub(crate) fn usize_from(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn invalid(what: &'static str, detail: &str) -> DecodeError {
    DecodeError::InvalidValue {
        what,
        detail: detail.to_owned(),
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
