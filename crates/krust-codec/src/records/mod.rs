//! Record batches: the `records` bytes of Produce requests and Fetch
//! responses.
//!
//! * [`RecordBatchBuilder`] encodes a RecordBatch v2 (magic 2), record by
//!   record, with any compression whose feature is enabled, and knows its size
//!   so far so that a producer can decide when a batch is full.
//! * [`Batches`] lazily decodes the `records` bytes of a Fetch response: it
//!   yields one [`Batch`] at a time without allocating, each exposing its
//!   header without decompressing; [`Batch::records`] then decodes records on
//!   the fly. RecordBatch v2 and the legacy MessageSet v0/v1 (read-only) come
//!   out of the same iterator.
//!
//! Keys, values and headers of decoded records are slices of the input
//! [`Bytes`] (or, for a compressed batch, of its one decompressed buffer):
//! nothing is copied per record.
//!
//! [`BatchRecords`] (a v2 batch's records) yields owned [`Record`]s, which
//! can outlive the batch: each holds one `Bytes` slice of the buffer, its
//! key, value and headers being spans of it ([`RecordData`]);
//! [`BatchRecords::refs`] yields the same records as [`RecordRef`]s
//! borrowed from the buffer, which saves even that slice's atomic
//! reference counting.
//!
//! A consumer reads a Fetch response's records like this:
//!
//! ```
//! # use bytes::Bytes;
//! # use krust_codec::records::{Batches, NewRecord, RecordBatchBuilder};
//! # let mut builder = RecordBatchBuilder::new().base_offset(40);
//! # builder.append(&NewRecord { value: Some(b"v"), ..NewRecord::default() }).unwrap();
//! # let records: Bytes = builder.build().unwrap();
//! let mut next_offset = 0;
//! for batch in Batches::new(records) {
//!     let batch = batch?;
//!     if !batch.is_control() {
//!         for record in batch.records()? {
//!             let record = record?;
//!             assert_eq!(record.data.value(), Some(&b"v"[..]));
//!         }
//!     }
//!     next_offset = batch.next_offset();
//! }
//! assert_eq!(next_offset, 41);
//! # Ok::<(), krust_codec::DecodeError>(())
//! ```
//!
//! Decoding never panics and never allocates from a size read off the wire:
//! record counts are checked against the bytes present, and decompression
//! stops with [`DecodeError::Decompression`](crate::DecodeError::Decompression)
//! past [`DecodeOptions::max_decompressed_size`].

mod batch_decode;
mod batch_encode;
mod batches;
pub mod compression;
mod control;
mod crc32;
mod cursor;
mod legacy;
mod record;
mod record_decode;
mod record_ref;

pub use batch_decode::{BatchRecords, RecordBatch};
pub use batch_encode::{RecordBatchBuilder, restamp_producer};
pub use batches::{Batch, Batches, Records};
pub use compression::Compression;
pub use control::ControlMarker;
pub use legacy::{LegacyBatch, LegacyRecords};
pub use record::{NewHeader, NewRecord, Record, RecordData};
pub use record_ref::{HeaderRef, HeadersRef, HeadersRefIter, RecordRef, RecordRefs};

/// Size of the RecordBatch v2 header, from the base offset to the record
/// count, in bytes.
pub const BATCH_HEADER_LEN: usize = 61;

/// Bytes before the batch length says how long the rest is: base offset (8)
/// and batch length (4). The same for legacy messages (offset and size).
pub const LOG_OVERHEAD: usize = 12;

/// Default limit on the decompressed size of one batch: 64 MiB.
pub const DEFAULT_MAX_DECOMPRESSED_SIZE: usize = 64 * 1024 * 1024;

/// How record timestamps were set (attribute bit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// Set by the producer when the record was created.
    #[default]
    CreateTime,
    /// Set by the broker when it appended the batch to its log; every record
    /// of the batch then has the batch's max timestamp.
    LogAppendTime,
}

/// Limits and checks applied while decoding record batches.
///
/// The default verifies checksums and allows 64 MiB of decompressed data per
/// batch. A fuzz target would use a much smaller limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    max_decompressed_size: usize,
    verify_crc: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            max_decompressed_size: DEFAULT_MAX_DECOMPRESSED_SIZE,
            verify_crc: true,
        }
    }
}

impl DecodeOptions {
    /// The default options: checksums verified, 64 MiB decompression limit.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set the largest decompressed size allowed for one batch (for a
    /// legacy wrapper message: for its inner message set). Going past it is a
    /// [`DecodeError::Decompression`](crate::DecodeError::Decompression).
    pub fn with_max_decompressed_size(mut self, bytes: usize) -> Self {
        self.max_decompressed_size = bytes;
        self
    }

    /// Choose whether [`Batches`] verifies each batch's CRC before yielding
    /// it (on by default). [`Batch::verify_crc`] checks it on demand.
    pub fn with_verify_crc(mut self, verify: bool) -> Self {
        self.verify_crc = verify;
        self
    }

    /// The largest decompressed size allowed for one batch.
    pub fn max_decompressed_size(&self) -> usize {
        self.max_decompressed_size
    }

    /// Whether CRCs are verified while iterating.
    pub fn verify_crc(&self) -> bool {
        self.verify_crc
    }
}
