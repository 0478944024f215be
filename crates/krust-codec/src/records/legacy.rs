//! Legacy MessageSet messages (magic 0 and 1), decoded read-only.
//!
//! A message is `offset: i64, size: i32, crc: u32 (CRC-32 IEEE of the rest),
//! magic: i8, attributes: i8, [timestamp: i64 if magic 1], key: bytes,
//! value: bytes`. A compressed message is a wrapper whose value is a
//! compressed message set; in magic 1 the inner offsets are relative and the
//! wrapper carries the last one's absolute offset.

use bytes::Bytes;

use super::crc32::crc32;
use super::cursor::Cursor;
use super::{Compression, DecodeOptions, LOG_OVERHEAD, Record, TimestampType};
use crate::error::DecodeError;

/// Smallest message after the offset and size: crc, magic, attributes, key
/// and value lengths.
pub(crate) const MIN_V0_SIZE: usize = 14;
const MIN_V1_SIZE: usize = 22;
/// The CRC covers from the magic byte to the end.
const CRC_START: usize = 16;

/// One legacy message (magic 0 or 1): a plain record, or a compressed
/// wrapper around an inner message set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyBatch {
    data: Bytes,
    options: DecodeOptions,
    offset: i64,
    crc: u32,
    magic: i8,
    attributes: i8,
    timestamp: i64,
    key: Option<std::ops::Range<usize>>,
    value: Option<std::ops::Range<usize>>,
}

impl LegacyBatch {
    /// Read one complete message: `data` holds exactly the message, from its
    /// offset to its last byte. The CRC is not checked here.
    pub fn parse(data: Bytes) -> Result<Self, DecodeError> {
        Self::parse_with(data, DecodeOptions::default())
    }

    /// [`parse`](Self::parse) with options for [`records`](Self::records).
    pub fn parse_with(data: Bytes, options: DecodeOptions) -> Result<Self, DecodeError> {
        let mut cur = Cursor::new(&data, 0);
        let offset = i64::from_be_bytes(fixed(&mut cur, "message offset")?);
        let size = i32::from_be_bytes(fixed(&mut cur, "message size")?);
        if usize::try_from(size)
            .ok()
            .and_then(|s| s.checked_add(LOG_OVERHEAD))
            != Some(data.len())
        {
            return Err(DecodeError::InvalidLength {
                what: "message size",
                length: i64::from(size),
                remaining: data.len().saturating_sub(LOG_OVERHEAD),
            });
        }
        let crc = u32::from_be_bytes(fixed(&mut cur, "message crc")?);
        let magic = i8::from_be_bytes(fixed(&mut cur, "message magic")?);
        let min = match magic {
            0 => MIN_V0_SIZE,
            1 => MIN_V1_SIZE,
            _ => {
                return Err(DecodeError::InvalidValue {
                    what: "message magic",
                    detail: format!("expected 0 or 1, found {magic}"),
                });
            }
        };
        if data.len() - LOG_OVERHEAD < min {
            return Err(DecodeError::InvalidLength {
                what: "message size",
                length: i64::from(size),
                remaining: data.len() - LOG_OVERHEAD,
            });
        }
        let attributes = i8::from_be_bytes(fixed(&mut cur, "message attributes")?);
        let timestamp = if magic == 1 {
            i64::from_be_bytes(fixed(&mut cur, "message timestamp")?)
        } else {
            -1
        };
        let key = bytes_field(&mut cur, "message key")?;
        let value = bytes_field(&mut cur, "message value")?;
        if cur.pos != data.len() {
            return Err(DecodeError::TrailingBytes {
                what: "message",
                remaining: data.len() - cur.pos,
            });
        }
        let batch = LegacyBatch {
            data,
            options,
            offset,
            crc,
            magic,
            attributes,
            timestamp,
            key,
            value,
        };
        batch.compression()?;
        Ok(batch)
    }

    /// The message's offset; for a compressed wrapper, the offset of the last
    /// inner message.
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// The offset after this message: where the next fetch starts.
    pub fn next_offset(&self) -> i64 {
        self.offset.saturating_add(1)
    }

    /// The magic byte (0 or 1).
    pub fn magic(&self) -> i8 {
        self.magic
    }

    /// The CRC-32 the message carries.
    pub fn crc(&self) -> u32 {
        self.crc
    }

    /// The raw attributes.
    pub fn attributes(&self) -> i8 {
        self.attributes
    }

    /// The compression codec (zstd does not exist before magic 2).
    pub fn compression(&self) -> Result<Compression, DecodeError> {
        match Compression::from_attributes(i16::from(self.attributes))? {
            Compression::Zstd => Err(DecodeError::InvalidValue {
                what: "message compression",
                detail: format!("zstd is not allowed with magic {}", self.magic),
            }),
            c => Ok(c),
        }
    }

    /// The timestamp type; `None` for magic 0, which has no timestamps.
    pub fn timestamp_type(&self) -> Option<TimestampType> {
        match (self.magic, self.attributes & 0x08 != 0) {
            (0, _) => None,
            (_, true) => Some(TimestampType::LogAppendTime),
            (_, false) => Some(TimestampType::CreateTime),
        }
    }

    /// The timestamp, -1 for magic 0.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// The key (for a wrapper, normally null).
    pub fn key(&self) -> Option<Bytes> {
        self.key.clone().map(|r| self.data.slice(r))
    }

    /// The value (for a wrapper, the compressed inner message set).
    pub fn value(&self) -> Option<Bytes> {
        self.value.clone().map(|r| self.data.slice(r))
    }

    /// The whole message's size on the wire, in bytes.
    pub fn size_in_bytes(&self) -> usize {
        self.data.len()
    }

    /// The message's bytes as they were on the wire.
    pub fn as_bytes(&self) -> &Bytes {
        &self.data
    }

    /// The CRC-32 (IEEE) of the message from the magic byte to the end.
    pub fn compute_crc(&self) -> u32 {
        crc32(&self.data[CRC_START..])
    }

    /// Check the CRC; a mismatch is [`DecodeError::CrcMismatch`].
    pub fn verify_crc(&self) -> Result<(), DecodeError> {
        let actual = self.compute_crc();
        if actual != self.crc {
            return Err(DecodeError::CrcMismatch {
                what: "legacy message",
                expected: self.crc,
                actual,
            });
        }
        Ok(())
    }

    fn as_record(&self) -> Record {
        Record::new(
            self.offset,
            self.timestamp,
            self.data.clone(),
            self.key.clone(),
            self.value.clone(),
        )
    }

    /// Iterate the records: the message itself, or for a compressed wrapper
    /// the inner messages, decompressed within the options' limit.
    pub fn records(&self) -> Result<LegacyRecords, DecodeError> {
        let codec = self.compression()?;
        if codec == Compression::None {
            return Ok(LegacyRecords {
                state: State::Single(Some(self.as_record())),
            });
        }
        let compressed = self.value().unwrap_or_default();
        let limit = self.options.max_decompressed_size();
        let data = match codec {
            #[cfg(feature = "lz4")]
            Compression::Lz4 if self.magic == 0 => {
                super::compression::lz4::decompress_legacy_v0(&compressed, limit)?
            }
            _ => codec.decompress(&compressed, limit)?,
        };
        // Magic 1: inner offsets are relative; the wrapper has the last
        // one's absolute offset.
        let offset_base = if self.magic == 0 {
            0
        } else {
            let last_inner = last_inner_offset(&data).unwrap_or(0);
            self.offset
                .checked_sub(last_inner)
                .ok_or(DecodeError::InvalidValue {
                    what: "message offset",
                    detail: "inner offsets do not fit the wrapper offset".to_owned(),
                })?
        };
        Ok(LegacyRecords {
            state: State::Inner {
                data,
                offset_base,
                log_append_time: (self.timestamp_type() == Some(TimestampType::LogAppendTime))
                    .then_some(self.timestamp),
                options: self.options,
            },
        })
    }
}

fn fixed<const N: usize>(cur: &mut Cursor<'_>, what: &'static str) -> Result<[u8; N], DecodeError> {
    let start = cur.pos;
    let mut out = [0u8; N];
    for b in &mut out {
        *b = cur.u8(what).map_err(|_| DecodeError::UnexpectedEof {
            what,
            needed: N,
            remaining: cur.pos - start,
        })?;
    }
    Ok(out)
}

fn bytes_field(
    cur: &mut Cursor<'_>,
    what: &'static str,
) -> Result<Option<std::ops::Range<usize>>, DecodeError> {
    let len = i32::from_be_bytes(fixed(cur, what)?);
    if len == -1 {
        return Ok(None);
    }
    let n = usize::try_from(len).map_err(|_| DecodeError::InvalidLength {
        what,
        length: i64::from(len),
        remaining: 0,
    })?;
    cur.take(n, what).map(Some)
}

/// Where the next complete message of a message set is: `(size, total)`,
/// or `None` when fewer bytes are left than it needs.
fn next_message(data: &[u8]) -> Option<usize> {
    let size = i32::from_be_bytes(data.get(8..12)?.try_into().ok()?);
    let total = usize::try_from(size).ok()?.checked_add(LOG_OVERHEAD)?;
    (total <= data.len()).then_some(total)
}

/// The offset of the last complete inner message.
fn last_inner_offset(data: &[u8]) -> Option<i64> {
    let mut rest = data;
    let mut last = None;
    while let Some(total) = next_message(rest) {
        last = Some(i64::from_be_bytes(rest.get(..8)?.try_into().ok()?));
        rest = &rest[total..];
    }
    last
}

#[derive(Debug, Clone)]
enum State {
    Single(Option<Record>),
    Inner {
        data: Bytes,
        offset_base: i64,
        log_append_time: Option<i64>,
        options: DecodeOptions,
    },
    Done,
}

/// Iterator over the records of a [`LegacyBatch`].
///
/// A truncated message at the end of a wrapper's inner set ends the
/// iteration, as in the Java client; a malformed one is an error.
#[derive(Debug, Clone)]
pub struct LegacyRecords {
    state: State,
}

impl LegacyRecords {
    fn next_inner(&mut self) -> Option<Result<Record, DecodeError>> {
        let State::Inner {
            data,
            offset_base,
            log_append_time,
            options,
        } = &mut self.state
        else {
            return None;
        };
        if data.is_empty() {
            return None;
        }
        if data.len() < MIN_V0_SIZE + LOG_OVERHEAD {
            return None;
        }
        let size = i32::from_be_bytes([data[8], data[9], data[10], data[11]]);
        let total = match usize::try_from(size) {
            Ok(s) if s >= MIN_V0_SIZE => s.saturating_add(LOG_OVERHEAD),
            _ => {
                return Some(Err(DecodeError::InvalidLength {
                    what: "inner message size",
                    length: i64::from(size),
                    remaining: data.len() - LOG_OVERHEAD,
                }));
            }
        };
        if total > data.len() {
            return None;
        }
        let inner = LegacyBatch::parse_with(data.split_to(total), *options);
        let inner = match inner {
            Ok(m) => m,
            Err(e) => return Some(Err(e)),
        };
        if options.verify_crc() {
            if let Err(e) = inner.verify_crc() {
                return Some(Err(e));
            }
        }
        match inner.compression() {
            Ok(Compression::None) => {}
            Ok(c) => {
                return Some(Err(DecodeError::InvalidValue {
                    what: "inner message compression",
                    detail: format!("a compressed message set holds a {c}-compressed message"),
                }));
            }
            Err(e) => return Some(Err(e)),
        }
        let mut record = inner.as_record();
        record.offset = match offset_base.checked_add(record.offset) {
            Some(o) => o,
            None => {
                return Some(Err(DecodeError::InvalidValue {
                    what: "inner message offset",
                    detail: "offset overflows".to_owned(),
                }));
            }
        };
        if let (Some(t), 1) = (*log_append_time, inner.magic) {
            record.timestamp = t;
        }
        Some(Ok(record))
    }
}

impl Iterator for LegacyRecords {
    type Item = Result<Record, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = match &mut self.state {
            State::Single(r) => r.take().map(Ok),
            State::Inner { .. } => self.next_inner(),
            State::Done => None,
        };
        if !matches!(item, Some(Ok(_))) {
            self.state = State::Done;
        }
        item
    }
}

impl std::iter::FusedIterator for LegacyRecords {}
