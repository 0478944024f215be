//! RecordBatch v2 encoding, record by record.

use bytes::{BufMut, Bytes, BytesMut};

use super::batch_decode::{CRC_OFFSET, CRC_START};
use super::record::{body_len, encode_record};
use super::{BATCH_HEADER_LEN, Compression, LOG_OVERHEAD, NewRecord, TimestampType};
use crate::error::EncodeError;
use crate::wire::varint_len;

/// Builds one RecordBatch v2.
///
/// Records are encoded into the builder's buffer as they are appended,
/// behind room left for the 61-byte header; [`build`](Self::build) fills the
/// header in place (for an uncompressed batch nothing is copied) or compresses
/// the records behind a fresh header.
///
/// ```
/// use krust_codec::records::{Compression, NewHeader, NewRecord, RecordBatchBuilder};
///
/// let mut b = RecordBatchBuilder::new()
///     .compression(Compression::None)
///     .producer(1000, 0, 42);
/// b.append(&NewRecord {
///     timestamp: 1_700_000_000_000,
///     key: Some(b"k"),
///     value: Some(b"v"),
///     headers: &[NewHeader { key: "trace", value: Some(b"1") }],
///     ..NewRecord::default()
/// })?;
/// assert_eq!(b.record_count(), 1);
/// let batch = b.build()?;
/// assert_eq!(batch.len(), 61 + 17);
/// # Ok::<(), krust_codec::EncodeError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RecordBatchBuilder {
    buf: BytesMut,
    base_offset: i64,
    partition_leader_epoch: i32,
    compression: Compression,
    timestamp_type: TimestampType,
    transactional: bool,
    control: bool,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    count: i32,
    first_timestamp: i64,
    max_timestamp: i64,
    last_offset_delta: i32,
}

impl Default for RecordBatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl RecordBatchBuilder {
    /// An empty batch: base offset 0, no partition leader epoch, no
    /// compression, create time, no producer id, epoch or sequence (-1).
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// [`new`](Self::new) with room for `capacity` bytes of records.
    pub fn with_capacity(capacity: usize) -> Self {
        let mut buf = BytesMut::with_capacity(BATCH_HEADER_LEN.saturating_add(capacity));
        buf.put_bytes(0, BATCH_HEADER_LEN);
        RecordBatchBuilder {
            buf,
            base_offset: 0,
            partition_leader_epoch: -1,
            compression: Compression::None,
            timestamp_type: TimestampType::CreateTime,
            transactional: false,
            control: false,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            count: 0,
            first_timestamp: -1,
            max_timestamp: -1,
            last_offset_delta: -1,
        }
    }

    /// Set the base offset (0 for a producer: the broker assigns offsets).
    pub fn base_offset(mut self, offset: i64) -> Self {
        self.base_offset = offset;
        self
    }

    /// Set the partition leader epoch (-1 for a producer).
    pub fn partition_leader_epoch(mut self, epoch: i32) -> Self {
        self.partition_leader_epoch = epoch;
        self
    }

    /// Set the compression codec applied by [`build`](Self::build).
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Set the timestamp type. With [`TimestampType::LogAppendTime`] readers
    /// give every record the batch's max timestamp.
    pub fn timestamp_type(mut self, timestamp_type: TimestampType) -> Self {
        self.timestamp_type = timestamp_type;
        self
    }

    /// Mark the batch transactional.
    pub fn transactional(mut self, transactional: bool) -> Self {
        self.transactional = transactional;
        self
    }

    /// Mark the batch a control batch (its records are
    /// [`ControlMarker`](super::ControlMarker)s).
    pub fn control(mut self, control: bool) -> Self {
        self.control = control;
        self
    }

    /// Set the idempotent producer's id, epoch and the batch's first
    /// sequence number.
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.set_producer(producer_id, producer_epoch, base_sequence);
        self
    }

    /// Set the producer fields on a builder already holding records (a
    /// producer assigns sequences when the batch is drained).
    pub fn set_producer(&mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
    }

    /// Records appended so far.
    pub fn record_count(&self) -> i32 {
        self.count
    }

    /// True when no record was appended.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The batch's size so far without compression: header plus records. A
    /// compressed batch is usually smaller; this is the bound a producer
    /// compares with `batch.size`.
    pub fn size_in_bytes(&self) -> usize {
        self.buf.len()
    }

    /// How many bytes `record` would add if appended next.
    pub fn record_size(&self, record: &NewRecord<'_>) -> Result<usize, EncodeError> {
        let (offset_delta, timestamp_delta) = self.deltas(record)?;
        let body = body_len(record, offset_delta, timestamp_delta)?;
        Ok(varint_len(i32::try_from(body).unwrap_or(i32::MAX)) + body)
    }

    fn deltas(&self, record: &NewRecord<'_>) -> Result<(i32, i64), EncodeError> {
        let next = self
            .last_offset_delta
            .checked_add(1)
            .ok_or_else(|| invalid("record offset delta", "the batch is full".to_owned()))?;
        let offset_delta = record.offset_delta.unwrap_or(next);
        if offset_delta < next {
            return Err(invalid(
                "record offset delta",
                format!(
                    "{offset_delta} does not follow the previous delta {}",
                    next - 1
                ),
            ));
        }
        let timestamp_delta = if self.count == 0 {
            0
        } else {
            record
                .timestamp
                .checked_sub(self.first_timestamp)
                .ok_or_else(|| invalid("record timestamp", "delta overflows".to_owned()))?
        };
        Ok((offset_delta, timestamp_delta))
    }

    /// Append a record.
    pub fn append(&mut self, record: &NewRecord<'_>) -> Result<(), EncodeError> {
        let (offset_delta, timestamp_delta) = self.deltas(record)?;
        let body = body_len(record, offset_delta, timestamp_delta)?;
        let size = varint_len(i32::try_from(body).unwrap_or(i32::MAX)) + body;
        if i32::try_from(self.buf.len() - LOG_OVERHEAD + size).is_err() {
            return Err(EncodeError::TooLong {
                what: "record batch",
                length: self.buf.len() + size,
            });
        }
        encode_record(&mut self.buf, record, offset_delta, timestamp_delta, body);
        if self.count == 0 {
            self.first_timestamp = record.timestamp;
            self.max_timestamp = record.timestamp;
        }
        self.max_timestamp = self.max_timestamp.max(record.timestamp);
        self.count += 1;
        self.last_offset_delta = offset_delta;
        Ok(())
    }

    /// Finish the batch: compress, write the header and the CRC.
    ///
    /// A batch needs at least one record.
    pub fn build(self) -> Result<Bytes, EncodeError> {
        if self.count == 0 {
            return Err(invalid(
                "record batch",
                "a batch needs at least one record".to_owned(),
            ));
        }
        let mut out = match self.compression {
            Compression::None => self.buf,
            codec => {
                let records = &self.buf[BATCH_HEADER_LEN..];
                let mut out = BytesMut::with_capacity(BATCH_HEADER_LEN + records.len() / 2 + 64);
                out.put_bytes(0, BATCH_HEADER_LEN);
                codec.compress(records, &mut out)?;
                out
            }
        };
        let batch_length =
            i32::try_from(out.len() - LOG_OVERHEAD).map_err(|_| EncodeError::TooLong {
                what: "record batch",
                length: out.len(),
            })?;
        let mut attributes = self.compression.id();
        if self.timestamp_type == TimestampType::LogAppendTime {
            attributes |= 0x08;
        }
        if self.transactional {
            attributes |= 0x10;
        }
        if self.control {
            attributes |= 0x20;
        }
        let mut h = &mut out[..BATCH_HEADER_LEN];
        h.put_i64(self.base_offset);
        h.put_i32(batch_length);
        h.put_i32(self.partition_leader_epoch);
        h.put_i8(2);
        h.put_u32(0); // CRC, below
        h.put_i16(attributes);
        h.put_i32(self.last_offset_delta);
        h.put_i64(self.first_timestamp);
        h.put_i64(self.max_timestamp);
        h.put_i64(self.producer_id);
        h.put_i16(self.producer_epoch);
        h.put_i32(self.base_sequence);
        h.put_i32(self.count);
        write_crc(&mut out);
        Ok(out.freeze())
    }
}

/// Offset of the producer id in a RecordBatch v2 header (then the epoch
/// and the base sequence).
const PRODUCER_ID_OFFSET: usize = 43;

/// A copy of the encoded RecordBatch v2 `batch` with other producer fields
/// (id, epoch, base sequence) and its CRC computed again: a batch re-sent
/// under a new producer epoch is not encoded, nor compressed, again.
///
/// ```
/// use krust_codec::records::{NewRecord, RecordBatch, RecordBatchBuilder, restamp_producer};
///
/// let mut b = RecordBatchBuilder::new().producer(7, 0, 10);
/// b.append(&NewRecord { value: Some(b"v"), ..NewRecord::default() })?;
/// let again = restamp_producer(&b.build()?, 7, 1, 0)?;
/// let batch = RecordBatch::parse(again)?;
/// assert_eq!((batch.producer_epoch(), batch.base_sequence()), (1, 0));
/// batch.verify_crc()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn restamp_producer(
    batch: &[u8],
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
) -> Result<Bytes, EncodeError> {
    if batch.len() < BATCH_HEADER_LEN || batch[16] != 2 {
        return Err(invalid(
            "record batch",
            "not a RecordBatch v2 to restamp".to_owned(),
        ));
    }
    let mut out = BytesMut::from(batch);
    let mut h = &mut out[PRODUCER_ID_OFFSET..BATCH_HEADER_LEN];
    h.put_i64(producer_id);
    h.put_i16(producer_epoch);
    h.put_i32(base_sequence);
    write_crc(&mut out);
    Ok(out.freeze())
}

/// Compute a whole batch's CRC32C (from the attributes to the end) into
/// its header.
fn write_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[CRC_START..]);
    batch[CRC_OFFSET..CRC_START].copy_from_slice(&crc.to_be_bytes());
}

fn invalid(what: &'static str, detail: String) -> EncodeError {
    EncodeError::InvalidValue { what, detail }
}
