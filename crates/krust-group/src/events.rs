//! What the group tells its application (events) and how it fails (typed
//! errors). Nothing that matters is only a log line (docs/ARCHITECTURE.md): every
//! change of ownership and every fatal condition is one of these values.

use std::collections::BTreeSet;
use std::time::Instant;

use krust_codec::{ApiKey, ErrorCode};
use thiserror::Error;

use crate::tp::TopicPartition;

/// A change of this member's assignment, or the end of its membership.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum GroupEvent {
    /// Partitions newly assigned by generation `generation`; `owned` is the
    /// whole assignment now held.
    Assigned {
        /// Newly added partitions (all of them under the eager protocol).
        partitions: BTreeSet<TopicPartition>,
        /// Everything this member owns after the change.
        owned: BTreeSet<TopicPartition>,
        /// The generation that assigned them.
        generation: i32,
    },
    /// Partitions being taken away while the member is still in the group:
    /// finish (commit) them and call `revoke_done` before `deadline`.
    Revoked {
        /// The partitions to let go.
        partitions: BTreeSet<TopicPartition>,
        /// When the group proceeds without the application's ack.
        deadline: Instant,
    },
    /// Partitions lost with the membership (session expired, fenced,
    /// generation reset): they may already belong to another member, so
    /// nothing must be committed for them.
    Lost {
        /// The partitions lost.
        partitions: BTreeSet<TopicPartition>,
    },
    /// The member stopped for good.
    Fatal(GroupError),
    /// The member left the group.
    LeftGroup {
        /// Why.
        reason: LeaveReason,
    },
}

/// Why the member left the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeaveReason {
    /// The application closed it.
    Closed,
    /// The application did not poll within `max.poll.interval.ms`; the
    /// next poll rejoins.
    PollTimeout,
}

/// Fatal errors of the group membership.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum GroupError {
    /// The coordinator answered with a code that ends the membership
    /// (GROUP_AUTHORIZATION_FAILED, INCONSISTENT_GROUP_PROTOCOL,
    /// GROUP_MAX_SIZE_REACHED, FENCED_INSTANCE_ID, INVALID_SESSION_TIMEOUT...).
    #[error("group {group}: {api} failed with {code}{}", .message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Broker {
        /// The group id.
        group: String,
        /// The API that failed.
        api: ApiKey,
        /// The error code.
        code: ErrorCode,
        /// The broker's message, when it sent one.
        message: Option<String>,
    },
    /// A request could not be sent for a reason retrying will not fix.
    #[error("group {group}: {source}")]
    Net {
        /// The group id.
        group: String,
        /// The cause.
        #[source]
        source: krust_net::Error,
    },
    /// `group.protocol=consumer` against a coordinator that does not offer
    /// ConsumerGroupHeartbeat v1 (KIP-848 as Kafka 4.0 made it stable):
    /// nothing is retried; the message says which broker and what it
    /// offers, and that `group.protocol=classic` works with it.
    #[error("group {group}: {}", describe_no_consumer_protocol(.broker.as_deref(), *.offered))]
    ConsumerProtocolUnsupported {
        /// The group id.
        group: String,
        /// The coordinator's address, when known.
        broker: Option<String>,
        /// The ConsumerGroupHeartbeat versions it offers, `None` if none.
        offered: Option<(i16, i16)>,
    },
    /// The assignor failed or a member's metadata does not decode.
    #[error("group {group}: {message}")]
    Protocol {
        /// The group id.
        group: String,
        /// What went wrong.
        message: String,
    },
    /// A task of the membership panicked (a custom assignor, most likely):
    /// what it owed the membership never comes, so the membership ends
    /// rather than wait for it.
    #[error("group {group}: {task} panicked: {message}")]
    Panicked {
        /// The group id.
        group: String,
        /// What panicked (e.g. `the assignor "x"`).
        task: String,
        /// The panic's message.
        message: String,
    },
}

impl GroupError {
    /// The Kafka error code, when the broker gave one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            GroupError::Broker { code, .. } => Some(*code),
            GroupError::Net { source, .. } => source.code(),
            GroupError::Protocol { .. }
            | GroupError::Panicked { .. }
            | GroupError::ConsumerProtocolUnsupported { .. } => None,
        }
    }
}

/// What a broker without KIP-848's stable heartbeat is, read from what it
/// offers: v0 alone was the Kafka 3.7-3.9 preview; none, a broker before
/// 3.7 or one whose `group.coordinator.rebalance.protocols` leaves the
/// consumer protocol out.
fn describe_no_consumer_protocol(broker: Option<&str>, offered: Option<(i16, i16)>) -> String {
    let broker = broker.map_or_else(|| "the coordinator".to_owned(), |b| format!("broker {b}"));
    let what = match offered {
        None => {
            "does not offer ConsumerGroupHeartbeat (API 68): it is older than Apache Kafka 3.7 \
                 or its group.coordinator.rebalance.protocols leaves out consumer"
                .to_owned()
        }
        Some((lo, hi)) => {
            let range = if lo == hi {
                format!("v{lo}")
            } else {
                format!("v{lo}-{hi}")
            };
            format!(
                "offers ConsumerGroupHeartbeat {range} only, the preview of Apache Kafka 3.7-3.9"
            )
        }
    };
    format!(
        "group.protocol=consumer (KIP-848) needs ConsumerGroupHeartbeat v1, Apache Kafka 4.0 or \
         later, and {broker} {what}; set group.protocol=classic for this cluster"
    )
}
