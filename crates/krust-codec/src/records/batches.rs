//! Iterating the batches of a `records` field, whatever their magic.

use bytes::Bytes;

use super::legacy::MIN_V0_SIZE;
use super::record_decode::MIN_RECORD_LEN;
use super::{
    BatchRecords, Compression, DecodeOptions, LOG_OVERHEAD, LegacyBatch, LegacyRecords, Record,
    RecordBatch,
};
use crate::error::DecodeError;

/// Bytes up to and including the magic byte, the same offset in every magic.
const HEADER_UP_TO_MAGIC: usize = 17;
/// Where a batch's magic byte is, in every magic.
const MAGIC_AT: usize = 16;
/// Where a v2 batch header keeps its record count.
const V2_COUNT_AT: usize = 57;

/// Lazily iterates the batches in the `records` bytes of a Fetch response
/// (or any concatenation of batches), yielding one [`Batch`] at a time.
///
/// * Nothing is allocated: each batch is a slice of the input.
/// * A trailing batch with fewer bytes than its length says (brokers cut
///   Fetch responses at a size limit) ends the iteration cleanly;
///   [`is_truncated`](Self::is_truncated) then says so.
/// * A complete batch that is malformed, or whose CRC does not match (when
///   checking is on, the default), is an error, after which the iteration
///   ends.
#[derive(Debug, Clone)]
pub struct Batches {
    buf: Bytes,
    options: DecodeOptions,
    done: bool,
    truncated: bool,
}

impl Batches {
    /// Iterate `records` with the default options.
    pub fn new(records: Bytes) -> Self {
        Self::with_options(records, DecodeOptions::default())
    }

    /// Iterate `records` with `options`.
    pub fn with_options(records: Bytes, options: DecodeOptions) -> Self {
        Batches {
            buf: records,
            options,
            done: false,
            truncated: false,
        }
    }

    /// True once iteration stopped at a truncated trailing batch.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// The bytes not consumed yet (after a truncation: the partial batch).
    pub fn remaining(&self) -> &Bytes {
        &self.buf
    }

    /// How many records the batches not consumed yet declare, read off
    /// their headers without checking or decoding them: a v2 batch's
    /// record count, one per legacy message (a compressed legacy wrapper
    /// counts as one). What decoding them most likely yields, to size a
    /// buffer for it; never more than the bytes could hold at the smallest
    /// record size, however the headers lie, so a hostile input cannot
    /// make a caller reserve more than its bytes justify.
    pub fn declared_records(&self) -> usize {
        let data = &self.buf[..];
        let be_i32 = |at: usize| -> Option<i32> {
            let end = at.checked_add(4)?;
            Some(i32::from_be_bytes(data.get(at..end)?.try_into().ok()?))
        };
        let mut total = 0usize;
        let mut at = 0usize;
        while let Some(len) = at
            .checked_add(8)
            .and_then(be_i32)
            .and_then(|l| usize::try_from(l).ok())
        {
            let count = match at.checked_add(MAGIC_AT).and_then(|m| data.get(m)) {
                Some(2) => at
                    .checked_add(V2_COUNT_AT)
                    .and_then(be_i32)
                    .and_then(|c| usize::try_from(c).ok()),
                Some(_) => Some(1),
                None => None,
            };
            total = total.saturating_add(count.unwrap_or(0));
            at = at.saturating_add(LOG_OVERHEAD).saturating_add(len);
        }
        total.min(data.len() / MIN_RECORD_LEN)
    }

    fn next_batch(&mut self) -> Result<Option<Batch>, DecodeError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        if self.buf.len() < HEADER_UP_TO_MAGIC {
            self.truncated = true;
            return Ok(None);
        }
        let size = i32::from_be_bytes([self.buf[8], self.buf[9], self.buf[10], self.buf[11]]);
        let total = match usize::try_from(size) {
            Ok(s) if s >= MIN_V0_SIZE => s.saturating_add(LOG_OVERHEAD),
            _ => {
                return Err(DecodeError::InvalidLength {
                    what: "record batch length",
                    length: i64::from(size),
                    remaining: self.buf.len() - LOG_OVERHEAD,
                });
            }
        };
        if total > self.buf.len() {
            self.truncated = true;
            return Ok(None);
        }
        let magic = self.buf[MAGIC_AT];
        let data = self.buf.split_to(total);
        let batch = match magic {
            2 => Batch::V2(RecordBatch::parse_with(data, self.options)?),
            0 | 1 => Batch::Legacy(LegacyBatch::parse_with(data, self.options)?),
            other => {
                return Err(DecodeError::InvalidValue {
                    what: "record batch magic",
                    detail: format!("unknown magic {other}"),
                });
            }
        };
        if self.options.verify_crc() {
            batch.verify_crc()?;
        }
        Ok(Some(batch))
    }
}

impl Iterator for Batches {
    type Item = Result<Batch, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.next_batch().transpose();
        if !matches!(next, Some(Ok(_))) {
            self.done = true;
        }
        next
    }
}

impl std::iter::FusedIterator for Batches {}

/// One batch of a `records` field: a RecordBatch v2 or a legacy message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Batch {
    /// A RecordBatch (magic 2).
    V2(RecordBatch),
    /// A legacy message (magic 0 or 1), possibly a compressed wrapper.
    Legacy(LegacyBatch),
}

impl Batch {
    /// The magic byte: 0, 1 or 2.
    pub fn magic(&self) -> i8 {
        match self {
            Batch::V2(b) => b.magic(),
            Batch::Legacy(m) => m.magic(),
        }
    }

    /// The offset of the batch's last record.
    pub fn last_offset(&self) -> i64 {
        match self {
            Batch::V2(b) => b.last_offset(),
            Batch::Legacy(m) => m.offset(),
        }
    }

    /// The offset after this batch: where the next fetch starts.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// The compression codec.
    pub fn compression(&self) -> Compression {
        match self {
            Batch::V2(b) => b.compression(),
            // Checked when the message was parsed.
            Batch::Legacy(m) => m.compression().unwrap_or_default(),
        }
    }

    /// True for a control batch (never for legacy messages).
    pub fn is_control(&self) -> bool {
        matches!(self, Batch::V2(b) if b.is_control())
    }

    /// True for a transactional batch (never for legacy messages).
    pub fn is_transactional(&self) -> bool {
        matches!(self, Batch::V2(b) if b.is_transactional())
    }

    /// The producer id, -1 for none (always for legacy messages).
    pub fn producer_id(&self) -> i64 {
        match self {
            Batch::V2(b) => b.producer_id(),
            Batch::Legacy(_) => -1,
        }
    }

    /// The batch's size on the wire.
    pub fn size_in_bytes(&self) -> usize {
        match self {
            Batch::V2(b) => b.size_in_bytes(),
            Batch::Legacy(m) => m.size_in_bytes(),
        }
    }

    /// Check the batch's CRC (CRC32C for v2, CRC-32 for legacy).
    pub fn verify_crc(&self) -> Result<(), DecodeError> {
        match self {
            Batch::V2(b) => b.verify_crc(),
            Batch::Legacy(m) => m.verify_crc(),
        }
    }

    /// Decompress if needed and iterate the records.
    pub fn records(&self) -> Result<Records, DecodeError> {
        Ok(Records(match self {
            Batch::V2(b) => RecordsInner::V2(b.records()?),
            Batch::Legacy(m) => RecordsInner::Legacy(m.records()?),
        }))
    }
}

/// Iterator over the records of a [`Batch`], whatever its magic.
#[derive(Debug, Clone)]
pub struct Records(RecordsInner);

#[derive(Debug, Clone)]
enum RecordsInner {
    V2(BatchRecords),
    Legacy(LegacyRecords),
}

impl Iterator for Records {
    type Item = Result<Record, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            RecordsInner::V2(r) => r.next(),
            RecordsInner::Legacy(r) => r.next(),
        }
    }
}

impl std::iter::FusedIterator for Records {}
