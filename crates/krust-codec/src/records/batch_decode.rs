//! RecordBatch v2 (magic 2): the header read without decompressing, and the
//! records decoded on the fly.

use bytes::Bytes;

use super::record_decode::{MIN_RECORD_LEN, RecordBase, RecordsState, usize_from};
use super::record_ref::RecordRefs;
use super::{BATCH_HEADER_LEN, Compression, DecodeOptions, LOG_OVERHEAD, Record, TimestampType};
use crate::error::DecodeError;

/// Offset of the attributes: the CRC covers from here to the end.
pub(crate) const CRC_START: usize = 21;
/// Offset of the CRC field.
pub(crate) const CRC_OFFSET: usize = 17;

const ATTR_TIMESTAMP_TYPE: i16 = 0x08;
const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;

/// A RecordBatch v2 whose header has been read; records are decoded when
/// iterated. Cloning is cheap (the bytes are shared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    data: Bytes,
    options: DecodeOptions,
    base_offset: i64,
    partition_leader_epoch: i32,
    crc: u32,
    attributes: i16,
    compression: Compression,
    last_offset_delta: i32,
    first_timestamp: i64,
    max_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    record_count: i32,
}

fn be<const N: usize>(data: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&data[at..at + N]);
    out
}

impl RecordBatch {
    /// Read the header of one complete batch: `data` holds exactly the batch,
    /// from its base offset to its last byte. The CRC is not checked here
    /// (see [`verify_crc`](Self::verify_crc)).
    pub fn parse(data: Bytes) -> Result<Self, DecodeError> {
        Self::parse_with(data, DecodeOptions::default())
    }

    /// [`parse`](Self::parse) with options for [`records`](Self::records).
    pub fn parse_with(data: Bytes, options: DecodeOptions) -> Result<Self, DecodeError> {
        if data.len() < BATCH_HEADER_LEN {
            return Err(DecodeError::UnexpectedEof {
                what: "record batch header",
                needed: BATCH_HEADER_LEN,
                remaining: data.len(),
            });
        }
        // Header reads below are within the 61 bytes checked above.
        let batch_length = i32::from_be_bytes(be(&data, 8));
        let declared = usize::try_from(batch_length)
            .ok()
            .and_then(|n| n.checked_add(LOG_OVERHEAD));
        if declared != Some(data.len()) {
            return Err(DecodeError::InvalidLength {
                what: "record batch length",
                length: i64::from(batch_length),
                remaining: data.len() - LOG_OVERHEAD,
            });
        }
        let magic = i8::from_be_bytes(be(&data, 16));
        if magic != 2 {
            return Err(DecodeError::InvalidValue {
                what: "record batch magic",
                detail: format!("expected 2, found {magic}"),
            });
        }
        let attributes = i16::from_be_bytes(be(&data, 21));
        let record_count = i32::from_be_bytes(be(&data, 57));
        if record_count < 0 {
            return Err(DecodeError::InvalidLength {
                what: "record batch record count",
                length: i64::from(record_count),
                remaining: data.len() - BATCH_HEADER_LEN,
            });
        }
        Ok(RecordBatch {
            base_offset: i64::from_be_bytes(be(&data, 0)),
            partition_leader_epoch: i32::from_be_bytes(be(&data, 12)),
            crc: u32::from_be_bytes(be(&data, CRC_OFFSET)),
            attributes,
            compression: Compression::from_attributes(attributes)?,
            last_offset_delta: i32::from_be_bytes(be(&data, 23)),
            first_timestamp: i64::from_be_bytes(be(&data, 27)),
            max_timestamp: i64::from_be_bytes(be(&data, 35)),
            producer_id: i64::from_be_bytes(be(&data, 43)),
            producer_epoch: i16::from_be_bytes(be(&data, 51)),
            base_sequence: i32::from_be_bytes(be(&data, 53)),
            record_count,
            options,
            data,
        })
    }

    /// The offset of the batch's first record.
    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// The offset of the batch's last record (base offset + last offset
    /// delta), which stays in the batch even when compaction removed it.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// The offset after this batch: where the next fetch starts.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// The last offset delta field.
    pub fn last_offset_delta(&self) -> i32 {
        self.last_offset_delta
    }

    /// The batch length field: bytes after the length field itself.
    pub fn batch_length(&self) -> usize {
        self.data.len() - LOG_OVERHEAD
    }

    /// The whole batch's size on the wire, in bytes.
    pub fn size_in_bytes(&self) -> usize {
        self.data.len()
    }

    /// The partition leader epoch the broker stamped.
    pub fn partition_leader_epoch(&self) -> i32 {
        self.partition_leader_epoch
    }

    /// The magic byte (always 2).
    pub fn magic(&self) -> i8 {
        2
    }

    /// The CRC32C the header carries.
    pub fn crc(&self) -> u32 {
        self.crc
    }

    /// The raw attributes.
    pub fn attributes(&self) -> i16 {
        self.attributes
    }

    /// The compression codec.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// How the record timestamps were set.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & ATTR_TIMESTAMP_TYPE != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// True when the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    /// True for a control batch (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    /// The first record's timestamp, base of the records' deltas.
    pub fn first_timestamp(&self) -> i64 {
        self.first_timestamp
    }

    /// The largest record timestamp (the log-append time for such batches).
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }

    /// The producer id, -1 for none.
    pub fn producer_id(&self) -> i64 {
        self.producer_id
    }

    /// The producer epoch, -1 for none.
    pub fn producer_epoch(&self) -> i16 {
        self.producer_epoch
    }

    /// The first record's sequence number, -1 for none.
    pub fn base_sequence(&self) -> i32 {
        self.base_sequence
    }

    /// The number of records the header declares.
    pub fn record_count(&self) -> i32 {
        self.record_count
    }

    /// The batch's bytes as they were on the wire.
    pub fn as_bytes(&self) -> &Bytes {
        &self.data
    }

    /// The CRC32C of the batch's bytes from the attributes to the end.
    pub fn compute_crc(&self) -> u32 {
        crc32c::crc32c(&self.data[CRC_START..])
    }

    /// Check the CRC; a mismatch is [`DecodeError::CrcMismatch`].
    pub fn verify_crc(&self) -> Result<(), DecodeError> {
        let actual = self.compute_crc();
        if actual != self.crc {
            return Err(DecodeError::CrcMismatch {
                what: "record batch",
                expected: self.crc,
                actual,
            });
        }
        Ok(())
    }

    /// Decompress if needed (bounded by the options' limit) and iterate the
    /// records.
    pub fn records(&self) -> Result<BatchRecords, DecodeError> {
        let raw = self.data.slice(BATCH_HEADER_LEN..);
        let data = self
            .compression
            .decompress(&raw, self.options.max_decompressed_size())?;
        let count = u32::try_from(self.record_count).unwrap_or(0);
        if usize_from(count) > data.len() / MIN_RECORD_LEN {
            return Err(DecodeError::InvalidLength {
                what: "record batch record count",
                length: i64::from(self.record_count),
                remaining: data.len(),
            });
        }
        Ok(BatchRecords {
            data,
            state: RecordsState::start(
                count,
                RecordBase {
                    base_offset: self.base_offset,
                    first_timestamp: self.first_timestamp,
                    log_append_time: (self.timestamp_type() == TimestampType::LogAppendTime)
                        .then_some(self.max_timestamp),
                },
            ),
        })
    }
}

/// Iterator over the records of a [`RecordBatch`], decoding each when asked.
///
/// After an error it ends. Bytes left after the declared number of records
/// are an error, as is running out of bytes before it.
///
/// It yields owned [`Record`]s, whose key, value and headers are
/// [`Bytes`] slices of [`buffer`](Self::buffer) that can outlive it;
/// [`refs`](Self::refs) yields the same records borrowed from the buffer,
/// which saves the slices' reference counting (see [`RecordRef`](super::RecordRef)).
#[derive(Debug, Clone)]
pub struct BatchRecords {
    data: Bytes,
    state: RecordsState,
}

impl BatchRecords {
    /// The (decompressed) records section the records are sliced from.
    pub fn buffer(&self) -> &Bytes {
        &self.data
    }

    /// The records not yet yielded, as [`RecordRef`](super::RecordRef)s
    /// borrowed from [`buffer`](Self::buffer), with the same values and
    /// errors as this iterator's; it is not advanced.
    pub fn refs(&self) -> RecordRefs<'_> {
        RecordRefs::new(&self.data, self.state.clone())
    }
}

impl Iterator for BatchRecords {
    type Item = Result<Record, DecodeError>;

    // Inlined into the caller's loop, so that the record is built where
    // the caller keeps it rather than moved there.
    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        let rec = self.state.next(&self.data)?;
        Some(rec.map(|r| Record::from_ref(&self.data, r)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.state.size_hint()
    }
}

impl std::iter::FusedIterator for BatchRecords {}
