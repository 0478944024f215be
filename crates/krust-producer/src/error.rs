//! Errors of the producer: configuration errors that name the property,
//! and delivery errors that name the topic, partition, API and Kafka error
//! code, each with `is_retriable()` as the Java client classifies them.

use std::time::Duration;

use krust_codec::{ApiKey, EncodeError, ErrorCode};
use thiserror::Error;

pub use krust_net::props::ConfigError;

/// An error of [`Producer`](crate::Producer) calls and delivery futures.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum ProduceError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// One record is larger than `max.request.size` or `buffer.memory`.
    #[error("record of {size} bytes is larger than {limit} ({max} bytes)")]
    RecordTooLarge {
        /// The record's encoded size (estimate, uncompressed).
        size: usize,
        /// The limit it exceeds.
        max: usize,
        /// The property that sets the limit.
        limit: &'static str,
    },
    /// `send` waited `max.block.ms` for buffer memory or metadata.
    #[error("waited {waited:?} (max.block.ms) for {what}")]
    MaxBlockExceeded {
        /// What was waited for.
        what: String,
        /// How long.
        waited: Duration,
    },
    /// The topic does not exist (or is not visible).
    #[error("topic {topic}: {code}")]
    UnknownTopic {
        /// The topic.
        topic: String,
        /// The metadata error code.
        code: ErrorCode,
    },
    /// An explicit partition outside the topic's partitions.
    #[error("partition {partition} of topic {topic} does not exist ({partitions} partitions)")]
    InvalidPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
        /// How many the topic has.
        partitions: usize,
    },
    /// The broker refused the batch with an error that is not retried.
    #[error("{api} to {topic}-{partition} failed with {code}{}", .message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Broker {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The API (Produce, InitProducerId).
        api: ApiKey,
        /// The Kafka error code.
        code: ErrorCode,
        /// The broker's message, if any.
        message: Option<String>,
    },
    /// `delivery.timeout.ms` passed before the batch was acknowledged.
    #[error("{topic}-{partition}: not delivered within delivery.timeout.ms ({elapsed:?}, {attempts} attempts){}", .last.as_ref().map(|m| format!("; last error: {m}")).unwrap_or_default())]
    DeliveryTimeout {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// Time since the batch was created.
        elapsed: Duration,
        /// Produce attempts made.
        attempts: u32,
        /// The last error met, if any.
        last: Option<String>,
    },
    /// A networking error outside a batch's retry loop (bootstrap, InitProducerId).
    #[error(transparent)]
    Net(#[from] krust_net::Error),
    /// A record could not be encoded.
    #[error("cannot encode record: {0}")]
    Encode(#[from] EncodeError),
    /// The producer is closed (dropped, or `close` ran out of time).
    #[error("the producer is closed")]
    Closed,
    /// The producer hit a fatal error (e.g. fenced) and sends no more.
    #[error("the producer failed: {0}")]
    Fatal(String),
}

impl ProduceError {
    /// Whether sending the same record again may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            ProduceError::MaxBlockExceeded { .. } | ProduceError::DeliveryTimeout { .. } => true,
            ProduceError::Broker { code, .. } => code.is_retriable(),
            ProduceError::Net(e) => e.is_retriable(),
            ProduceError::UnknownTopic { code, .. } => code.is_retriable(),
            ProduceError::Config(_)
            | ProduceError::RecordTooLarge { .. }
            | ProduceError::InvalidPartition { .. }
            | ProduceError::Encode(_)
            | ProduceError::Closed
            | ProduceError::Fatal(_) => false,
        }
    }

    /// The Kafka error code, when a broker gave one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ProduceError::Broker { code, .. } | ProduceError::UnknownTopic { code, .. } => {
                Some(*code)
            }
            ProduceError::Net(e) => e.code(),
            _ => None,
        }
    }
}

/// Results of this crate.
pub type Result<T, E = ProduceError> = std::result::Result<T, E>;
