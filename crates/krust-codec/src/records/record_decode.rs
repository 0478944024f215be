//! Decoding the records of a RecordBatch v2 (KIP-98's record format: a
//! varint length, attributes, zigzag varint timestamp and offset deltas,
//! varint-length-prefixed key and value, varint-counted headers).
//!
//! There is one decoder. It yields the borrowed view, [`RecordRef`], whose
//! fields are slices of the records buffer; the owned [`Record`] of
//! [`BatchRecords`](super::BatchRecords) is built from it by turning each
//! slice into a [`Bytes`] slice of the same buffer
//! ([`Record::from_ref`]), so both views agree on every input, errors
//! included.
//!
//! [`Record`]: super::Record
//! [`Bytes`]: bytes::Bytes

use super::cursor::{Cursor, invalid_length};
use super::record_ref::{HeadersRef, RecordRef};
use crate::error::DecodeError;

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
///
/// Header keys are checked to be UTF-8 here, once, so that iterating the
/// headers later cannot fail.
#[inline]
pub(crate) fn decode_record<'a>(
    data: &'a [u8],
    pos: &mut usize,
    base: &RecordBase,
) -> Result<RecordRef<'a>, DecodeError> {
    let mut cur = Cursor::new(data, *pos);
    let len = cur.varint("record length")?;
    let Ok(len) = usize::try_from(len) else {
        return Err(invalid_length("record length", len, cur.remaining()));
    };
    let body = cur.take(len, "record")?;
    let mut cur = Cursor::new(&data[..body.end], body.start);
    let _attributes = cur.u8("record attributes")?;
    let timestamp_delta = cur.varlong("record timestamp delta")?;
    let offset_delta = cur.varint("record offset delta")?;
    let key = cur.bytes_field("record key")?;
    let value = cur.bytes_field("record value")?;
    let count = cur.varint("record header count")?;
    let Ok(count) = u32::try_from(count) else {
        return Err(invalid_length(
            "record header count",
            count,
            cur.remaining(),
        ));
    };
    let headers_start = cur.pos;
    for _ in 0..count {
        let Some(key) = cur.bytes_field("header key")? else {
            return Err(invalid_length("header key", -1, cur.remaining()));
        };
        if !is_utf8(key) {
            return Err(DecodeError::InvalidUtf8 { what: "header key" });
        }
        cur.bytes_field("header value")?;
    }
    if cur.pos != body.end {
        return Err(trailing_bytes("record", body.end - cur.pos));
    }
    *pos = body.end;
    let Some(offset) = base.base_offset.checked_add(i64::from(offset_delta)) else {
        return Err(invalid("record offset", "base offset + delta overflows"));
    };
    let timestamp = match base.log_append_time {
        Some(t) => t,
        None => match base.first_timestamp.checked_add(timestamp_delta) {
            Some(t) => t,
            None => {
                return Err(invalid(
                    "record timestamp",
                    "first timestamp + delta overflows",
                ));
            }
        },
    };
    Ok(RecordRef {
        offset,
        timestamp,
        key,
        value,
        headers: if count == 0 {
            HeadersRef::default()
        } else {
            HeadersRef::new(&data[headers_start..body.end], count)
        },
    })
}

/// Where a records iterator stands in its buffer, whichever view it
/// yields: [`BatchRecords`](super::BatchRecords) and
/// [`RecordRefs`](super::RecordRefs) share it.
#[derive(Debug, Clone)]
pub(crate) struct RecordsState {
    pos: usize,
    left: u32,
    base: RecordBase,
    done: bool,
}

impl RecordsState {
    /// A fresh state over `count` records.
    pub(crate) fn start(count: u32, base: RecordBase) -> Self {
        RecordsState {
            pos: 0,
            left: count,
            base,
            done: false,
        }
    }

    /// Decode the next record of `data` (always the same buffer). After
    /// the declared number of records, bytes left are an error; after an
    /// error, nothing more.
    #[inline(always)]
    pub(crate) fn next<'a>(
        &mut self,
        data: &'a [u8],
    ) -> Option<Result<RecordRef<'a>, DecodeError>> {
        if self.done {
            return None;
        }
        if self.left == 0 {
            self.done = true;
            let remaining = data.len() - self.pos;
            if remaining != 0 {
                return Some(Err(trailing_bytes("record batch records", remaining)));
            }
            return None;
        }
        self.left -= 1;
        let rec = decode_record(data, &mut self.pos, &self.base);
        if rec.is_err() {
            self.done = true;
        }
        Some(rec)
    }

    pub(crate) fn size_hint(&self) -> (usize, Option<usize>) {
        if self.done {
            (0, Some(0))
        } else {
            (0, Some(usize_from(self.left).saturating_add(1)))
        }
    }
}

/// The next header in header bytes that [`decode_record`] validated: its
/// key and value, `None` at the end (or, which validation rules out, on a
/// malformed header).
#[inline(always)]
pub(crate) fn next_header<'a>(
    data: &'a [u8],
    pos: &mut usize,
) -> Option<(&'a [u8], Option<&'a [u8]>)> {
    let mut cur = Cursor::new(data, *pos);
    let key = cur.bytes_field("header key").ok()??;
    let value = cur.bytes_field("header value").ok()?;
    *pos = cur.pos;
    Some((key, value))
}

/// Whether `b` is UTF-8; header keys are nearly always ASCII, which is
/// quicker to check.
#[inline]
fn is_utf8(b: &[u8]) -> bool {
    b.is_ascii() || std::str::from_utf8(b).is_ok()
}

/// A count that was read off the wire as a u32, as a size (lossless on the
/// platforms this crate builds for; saturating elsewhere).
pub(crate) fn usize_from(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[cold]
#[inline(never)]
fn invalid(what: &'static str, detail: &str) -> DecodeError {
    DecodeError::InvalidValue {
        what,
        detail: detail.to_owned(),
    }
}

#[cold]
#[inline(never)]
fn trailing_bytes(what: &'static str, remaining: usize) -> DecodeError {
    DecodeError::TrailingBytes { what, remaining }
}
