//! Codec errors: what went wrong while encoding or decoding, never a panic.

use thiserror::Error;

/// A message or frame could not be decoded from the bytes given.
///
/// Every variant says what was being read, so a fuzzer finding or a hostile
/// peer gives an error a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the value being read was complete.
    #[error("unexpected end of input reading {what}: needed {needed} bytes, {remaining} left")]
    UnexpectedEof {
        /// What was being read.
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A length or count read off the wire is negative where that is not
    /// allowed, or larger than what the remaining input could hold.
    #[error("invalid length {length} reading {what} ({remaining} bytes left)")]
    InvalidLength {
        /// What was being read.
        what: &'static str,
        /// The length found on the wire.
        length: i64,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A variable-length integer ran over its maximum size.
    #[error("malformed varint reading {what}")]
    BadVarint {
        /// What was being read.
        what: &'static str,
    },
    /// A string field is not valid UTF-8.
    #[error("string field {what} is not valid UTF-8")]
    InvalidUtf8 {
        /// What was being read.
        what: &'static str,
    },
    /// A null value where the schema does not allow one at this version.
    #[error("null {what} at version {version}, which does not allow null")]
    UnexpectedNull {
        /// The field.
        what: &'static str,
        /// The message version.
        version: i16,
    },
    /// The message has no such version, or the API key is unknown.
    #[error("{what} does not exist at version {version}")]
    UnsupportedVersion {
        /// The message or API.
        what: &'static str,
        /// The version asked for.
        version: i16,
    },
    /// The API key is not one this codec knows.
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    /// A value is outside its allowed range (e.g. a bad magic byte or enum).
    #[error("invalid value for {what}: {detail}")]
    InvalidValue {
        /// What was being read.
        what: &'static str,
        /// What was wrong with it.
        detail: String,
    },
    /// A checksum did not match the data it covers.
    #[error("CRC mismatch in {what}: header says {expected:#010x}, data gives {actual:#010x}")]
    CrcMismatch {
        /// What the checksum covers.
        what: &'static str,
        /// The checksum on the wire.
        expected: u32,
        /// The checksum computed from the data.
        actual: u32,
    },
    /// Bytes were left over after a complete message.
    #[error("{remaining} trailing bytes after {what}")]
    TrailingBytes {
        /// What was decoded.
        what: &'static str,
        /// How many bytes were left.
        remaining: usize,
    },
    /// Decompression failed or would exceed the configured limit.
    #[error("decompression of {codec} data failed: {detail}")]
    Decompression {
        /// The compression codec.
        codec: &'static str,
        /// What went wrong.
        detail: String,
    },
    /// A frame on the wire was not Kafka at all, or was larger than allowed.
    #[error("{0}")]
    Frame(#[from] crate::frame::FrameError),
}

/// A message could not be encoded at the version asked for.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A field holds a non-default value at a version that lacks the field,
    /// and the field is not ignorable: sending it would silently drop data.
    #[error("field {field} of {message} is not in version {version} and is not ignorable")]
    FieldNotInVersion {
        /// The message or struct.
        message: &'static str,
        /// The field.
        field: &'static str,
        /// The version being encoded.
        version: i16,
    },
    /// A field is null at a version that does not allow null.
    #[error("field {field} of {message} is null but version {version} does not allow null")]
    NullNotAllowed {
        /// The message or struct.
        message: &'static str,
        /// The field.
        field: &'static str,
        /// The version being encoded.
        version: i16,
    },
    /// The message does not exist at this version.
    #[error("{message} does not exist at version {version}")]
    UnsupportedVersion {
        /// The message.
        message: &'static str,
        /// The version asked for.
        version: i16,
    },
    /// A string, byte field or array is longer than its length prefix can say.
    #[error("{what} is too long to encode: {length}")]
    TooLong {
        /// The field.
        what: &'static str,
        /// Its length.
        length: usize,
    },
    /// A value cannot be encoded (for example a record batch with no records).
    #[error("invalid value for {what}: {detail}")]
    InvalidValue {
        /// The field.
        what: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// Compression failed.
    #[error("compression with {codec} failed: {detail}")]
    Compression {
        /// The compression codec.
        codec: &'static str,
        /// What went wrong.
        detail: String,
    },
}
