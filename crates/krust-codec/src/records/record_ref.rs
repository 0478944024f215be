//! The borrowed view of RecordBatch v2 records: [`RecordRef`], whose key,
//! value and headers are `&[u8]` slices of the batch's (or decompressed)
//! buffer, from [`BatchRecords::refs`](super::BatchRecords::refs).
//!
//! An owned [`Record`] shares one [`Bytes`](bytes::Bytes) slice of the
//! buffer, which is one atomic reference count update when it is made and
//! one when it is dropped; for small records that costs about as much as
//! decoding them. A reader that is done with a record before it moves to
//! the next (one that parses, aggregates or copies what it needs) can
//! borrow instead. Both views come from the same decoder and agree on
//! every input, errors included.

use super::Record;
use super::record_decode::{RecordsState, next_header, usize_from};
use crate::error::DecodeError;

/// A decoded record borrowed from its batch's buffer: key, value and
/// headers are slices of it, and nothing is reference counted.
///
/// The same fields as [`Record`]; `RecordRef::from(&record)` borrows an
/// owned one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordRef<'a> {
    /// The record's offset in its partition.
    pub offset: i64,
    /// The record's timestamp (ms since the epoch); for a batch with
    /// log-append time, the batch's max timestamp.
    pub timestamp: i64,
    /// The key, `None` for a null key.
    pub key: Option<&'a [u8]>,
    /// The value, `None` for a null value (a tombstone).
    pub value: Option<&'a [u8]>,
    /// The headers.
    pub headers: HeadersRef<'a>,
}

impl<'a> From<&'a Record> for RecordRef<'a> {
    fn from(r: &'a Record) -> Self {
        RecordRef {
            offset: r.offset,
            timestamp: r.timestamp,
            key: r.data.key(),
            value: r.data.value(),
            headers: r.data.headers(),
        }
    }
}

/// The headers of a record: their validated bytes, decoded on iteration.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct HeadersRef<'a> {
    data: &'a [u8],
    count: u32,
}

impl std::fmt::Debug for HeadersRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// One header of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderRef<'a> {
    /// The header key.
    pub key: &'a str,
    /// The header value, `None` for null.
    pub value: Option<&'a [u8]>,
}

impl<'a> HeadersRef<'a> {
    /// `count` headers in `data`, which the decoder validated.
    pub(crate) fn new(data: &'a [u8], count: u32) -> Self {
        HeadersRef { data, count }
    }

    /// The headers' bytes.
    pub(crate) fn as_bytes(&self) -> &'a [u8] {
        self.data
    }

    /// The number of headers, as read.
    pub(crate) fn count(&self) -> u32 {
        self.count
    }

    /// The number of headers.
    pub fn len(&self) -> usize {
        usize_from(self.count)
    }

    /// True when the record has no headers.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Iterate the headers in order.
    pub fn iter(&self) -> HeadersRefIter<'a> {
        HeadersRefIter {
            data: self.data,
            pos: 0,
            left: self.count,
        }
    }

    /// The first header with this key, if any.
    pub fn get(&self, key: &str) -> Option<HeaderRef<'a>> {
        self.iter().find(|h| h.key == key)
    }
}

impl<'a> IntoIterator for HeadersRef<'a> {
    type Item = HeaderRef<'a>;
    type IntoIter = HeadersRefIter<'a>;
    fn into_iter(self) -> HeadersRefIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &HeadersRef<'a> {
    type Item = HeaderRef<'a>;
    type IntoIter = HeadersRefIter<'a>;
    fn into_iter(self) -> HeadersRefIter<'a> {
        self.iter()
    }
}

/// Iterator over [`HeadersRef`].
#[derive(Debug, Clone)]
pub struct HeadersRefIter<'a> {
    data: &'a [u8],
    pos: usize,
    left: u32,
}

impl<'a> Iterator for HeadersRefIter<'a> {
    type Item = HeaderRef<'a>;

    #[inline]
    fn next(&mut self) -> Option<HeaderRef<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // Validated when the record was decoded: this cannot fail, and if
        // it did, iteration would just stop.
        let (key, value) = next_header(self.data, &mut self.pos)?;
        Some(HeaderRef {
            key: std::str::from_utf8(key).ok()?,
            value,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize_from(self.left);
        (n, Some(n))
    }
}

impl ExactSizeIterator for HeadersRefIter<'_> {}

/// Iterator over the records of a [`BatchRecords`](super::BatchRecords) as
/// [`RecordRef`]s borrowed from its buffer, from
/// [`BatchRecords::refs`](super::BatchRecords::refs).
///
/// It yields what the owned iterator would, errors included, and likewise
/// ends after an error.
#[derive(Debug, Clone)]
pub struct RecordRefs<'a> {
    data: &'a [u8],
    state: RecordsState,
}

impl<'a> RecordRefs<'a> {
    pub(crate) fn new(data: &'a [u8], state: RecordsState) -> Self {
        RecordRefs { data, state }
    }
}

impl<'a> Iterator for RecordRefs<'a> {
    type Item = Result<RecordRef<'a>, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.state.next(self.data)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.state.size_hint()
    }
}

impl std::iter::FusedIterator for RecordRefs<'_> {}
