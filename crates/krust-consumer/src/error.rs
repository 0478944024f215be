//! The consumer's typed errors: each names what was being done, and broker
//! errors carry the API, the Kafka error code and the partition.

use std::time::Duration;

use krust_codec::{ApiKey, ErrorCode};
use krust_group::{GroupError, OffsetError, TopicPartition};
use thiserror::Error;

pub use krust_net::props::ConfigError;

/// An error of a [`Consumer`](crate::Consumer) call.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum ConsumerError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Talking to the cluster failed (bootstrap, metadata, ListOffsets).
    #[error(transparent)]
    Net(#[from] krust_net::Error),
    /// The group membership ended for good (fenced, unauthorized, ...).
    #[error(transparent)]
    Group(#[from] GroupError),
    /// A commit or a committed-offset lookup failed.
    #[error(transparent)]
    Offset(#[from] OffsetError),
    /// `auto.offset.reset=none` and these partitions have no committed
    /// offset, or their position is out of range.
    #[error("no offset to start from (auto.offset.reset=none) for {}", list(.partitions))]
    NoOffset {
        /// The partitions without a valid offset.
        partitions: Vec<TopicPartition>,
    },
    /// `auto.offset.reset=none` and the log of these partitions was
    /// truncated below the consumer's position (KIP-320: an unclean leader
    /// election lost records it had read). The consumer goes on once the
    /// application seeks each of them, e.g. to its divergent offset.
    #[error("log truncation detected (auto.offset.reset=none): {}", list(.truncations))]
    LogTruncation {
        /// Each partition's position and where its log diverges.
        truncations: Vec<Truncation>,
    },
    /// A fetch failed in a way retrying will not fix.
    #[error("{api} of {partition} failed with {code}")]
    Fetch {
        /// The API (Fetch, ListOffsets or OffsetForLeaderEpoch).
        api: ApiKey,
        /// The Kafka error code.
        code: ErrorCode,
        /// The partition.
        partition: TopicPartition,
    },
    /// A topic has no partitions to read (the metadata's error code, e.g.
    /// UNKNOWN_TOPIC_OR_PARTITION or TOPIC_AUTHORIZATION_FAILED).
    #[error("topic {topic}: {code}")]
    Topic {
        /// The topic.
        topic: String,
        /// The Kafka error code.
        code: ErrorCode,
    },
    /// A record batch failed its CRC or does not decode.
    #[error("corrupt record in {partition} at offset {offset}: {message}")]
    Corrupt {
        /// The partition.
        partition: TopicPartition,
        /// The offset of the batch.
        offset: i64,
        /// What is wrong.
        message: String,
    },
    /// The call needs partitions this consumer is not assigned.
    #[error("not assigned to this consumer: {}", list(.partitions))]
    NotAssigned {
        /// The partitions.
        partitions: Vec<TopicPartition>,
    },
    /// The call needs `group.id` (subscribe, commit, committed).
    #[error("{0} needs group.id")]
    NoGroup(&'static str),
    /// `subscribe` and `assign` are exclusive, as in Java.
    #[error("{0}")]
    Usage(String),
    /// A bounded call did not finish in time.
    #[error("{what} did not finish within {timeout:?}")]
    Timeout {
        /// What was waited for.
        what: &'static str,
        /// The bound.
        timeout: Duration,
    },
    /// A task of the consumer's ended before it finished: it panicked, or
    /// the runtime is shutting down.
    #[error("{what} was aborted: {cause}")]
    Aborted {
        /// What the task did.
        what: &'static str,
        /// The task's end.
        cause: String,
    },
}

/// One partition whose log was truncated below the consumer's position
/// (see [`ConsumerError::LogTruncation`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// The partition.
    pub partition: TopicPartition,
    /// The consumer's position when the truncation was found.
    pub position: i64,
    /// The first offset that may differ from what the consumer read: the
    /// end of the position's leader epoch in the leader's log. `None` when
    /// the leader knows nothing of that epoch or before it.
    pub divergent_offset: Option<i64>,
}

impl std::fmt::Display for Truncation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at offset {}", self.partition, self.position)?;
        match self.divergent_offset {
            Some(o) => write!(f, " (the leader's log diverges from offset {o})"),
            None => write!(f, " (the leader knows no offset for its epoch)"),
        }
    }
}

impl ConsumerError {
    /// The Kafka error code, when there is one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ConsumerError::Net(e) => e.code(),
            ConsumerError::Group(e) => e.code(),
            ConsumerError::Offset(e) => e.code(),
            ConsumerError::Fetch { code, .. } | ConsumerError::Topic { code, .. } => Some(*code),
            _ => None,
        }
    }
}

fn list<T: std::fmt::Display>(ps: &[T]) -> String {
    ps.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
