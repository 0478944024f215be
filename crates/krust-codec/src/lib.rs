//! # krust-codec
//!
//! The sans-io Kafka wire codec of krust: frames, request and response
//! headers, every request and response message of the protocol (generated from
//! Kafka's JSON message schemas), RecordBatch v2 with compression, the
//! consumer-protocol metadata, and the error-code table.
//!
//! Decoding is bounded and zero-copy: it reads from [`bytes::Bytes`], strings
//! and byte fields are slices of the input, every count read off the wire is
//! checked against the bytes left before anything is allocated, and no input
//! makes it panic. This is what makes the codec fit to be fuzzed.
#![deny(missing_docs)]

pub mod consumer_protocol;
pub mod error;
pub mod error_code;
pub mod frame;
pub mod generated;
pub mod header;
pub mod records;
#[cfg(feature = "sample")]
pub mod sample;
pub mod wire;

pub use error::{DecodeError, EncodeError};
pub use error_code::ErrorCode;
pub use generated::{ApiKey, Message, Request, RequestBody, ResponseBody};
pub use header::{RequestHeader, ResponseHeader};
pub use wire::{Decode, Encode, KString, RawTaggedField, Uuid};
