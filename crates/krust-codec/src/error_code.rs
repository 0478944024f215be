//! Kafka protocol error codes.
//!
//! Every response in the Kafka protocol carries one or more `int16` error
//! codes. [`ErrorCode`] wraps such a code and knows, for every code Kafka has
//! assigned, its canonical name, a short description, whether the Java client
//! treats it as retriable and whether it means the client's cluster metadata
//! is stale.
//!
//! The data comes from `org.apache.kafka.common.protocol.Errors` in the Apache
//! Kafka Java client, which is the definition of the codes. A code is
//! *retriable* when the exception class Kafka maps it to extends
//! `RetriableException`, and it *invalidates metadata* when that class extends
//! `InvalidMetadataException` (itself a `RetriableException`). The
//! descriptions are our own summaries, not Kafka's messages.
//!
//! A code this crate does not know (a newer broker, or garbage) is still a
//! valid [`ErrorCode`]: it reports [`ErrorCode::is_known`] `false`, the name
//! `UNKNOWN_ERROR_CODE`, and is not retriable, as in the Java client, which
//! turns unknown codes into a non-retriable `UnknownServerException`.

use std::fmt;

/// A Kafka protocol error code, as carried in the `ErrorCode` fields of
/// responses.
///
/// Any `i16` is representable; the associated constants name every code Kafka
/// has assigned, from [`ErrorCode::UNKNOWN_SERVER_ERROR`] (`-1`) and
/// [`ErrorCode::NONE`] (`0`, success) upwards.
///
/// ```
/// use krust_codec::error_code::ErrorCode;
///
/// let code = ErrorCode::from(16);
/// assert_eq!(code, ErrorCode::NOT_COORDINATOR);
/// assert_eq!(code.name(), "NOT_COORDINATOR");
/// assert!(code.is_retriable());
/// assert_eq!(code.to_string(), "NOT_COORDINATOR (16)");
/// assert_eq!(ErrorCode::from_name("NOT_COORDINATOR"), Some(code));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub i16);

/// How the Java client classifies a code (the base class of its exception).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Not retriable: retrying the same request cannot succeed by itself.
    Plain,
    /// Retriable (`RetriableException`): the same request may succeed later.
    Retriable,
    /// Retriable because the client's metadata is stale
    /// (`InvalidMetadataException`): refresh metadata, then retry.
    Metadata,
}

/// One row of the error-code table.
struct Entry {
    code: i16,
    name: &'static str,
    class: Class,
    description: &'static str,
}

/// Expands the table below into the associated constants of [`ErrorCode`]
/// and the [`TABLE`] array, so that each code is written down exactly once.
macro_rules! error_codes {
    ($( ($code:literal, $name:ident, $class:ident, $desc:literal), )*) => {
        impl ErrorCode {
            $(
                #[doc = concat!("`", stringify!($name), "` (", stringify!($code), "): ", $desc)]
                pub const $name: ErrorCode = ErrorCode($code);
            )*
        }

        /// Every known code, ordered by code and dense from `-1`, so the entry
        /// for code `c` is at index `c + 1`.
        const TABLE: &[Entry] = &[
            $(
                Entry {
                    code: $code,
                    name: stringify!($name),
                    class: Class::$class,
                    description: $desc,
                },
            )*
        ];
    };
}

// The complete table, from Kafka's `Errors.java`: code, name, class and our
// own one-line description. It is long by nature; keep it ordered and dense
// (a compile-time check below enforces it). Class legend: `Plain` = not
// retriable, `Retriable` = extends `RetriableException`, `Metadata` = extends
// `InvalidMetadataException` (retriable after a metadata refresh).
error_codes! {
    (-1, UNKNOWN_SERVER_ERROR, Plain, "The broker hit an unexpected error while handling the request."),
    (0, NONE, Plain, "No error: the operation succeeded."),
    (1, OFFSET_OUT_OF_RANGE, Plain, "The offset asked for is outside the range the broker holds for the partition."),
    (2, CORRUPT_MESSAGE, Retriable, "A record failed its CRC check, is oversized, lacks a key on a compacted topic, or is otherwise malformed."),
    (3, UNKNOWN_TOPIC_OR_PARTITION, Metadata, "The broker does not host this topic-partition."),
    (4, INVALID_FETCH_SIZE, Plain, "The fetch size in the request is not valid."),
    (5, LEADER_NOT_AVAILABLE, Metadata, "The partition has no leader right now, typically during a leader election."),
    (6, NOT_LEADER_OR_FOLLOWER, Metadata, "The broker is not the leader (or not a replica) of the partition the request targets."),
    (7, REQUEST_TIMED_OUT, Retriable, "The request did not complete in time."),
    (8, BROKER_NOT_AVAILABLE, Plain, "The broker is not available."),
    (9, REPLICA_NOT_AVAILABLE, Metadata, "The replica for the requested partition is not available."),
    (10, MESSAGE_TOO_LARGE, Plain, "A record is larger than the broker's maximum message size."),
    (11, STALE_CONTROLLER_EPOCH, Plain, "The request came from a controller that is no longer the active one."),
    (12, OFFSET_METADATA_TOO_LARGE, Plain, "The metadata string attached to a committed offset is too long."),
    (13, NETWORK_EXCEPTION, Metadata, "The connection was closed before a response arrived."),
    (14, COORDINATOR_LOAD_IN_PROGRESS, Retriable, "The coordinator is still loading its state and cannot serve the request yet."),
    (15, COORDINATOR_NOT_AVAILABLE, Retriable, "The coordinator is not available."),
    (16, NOT_COORDINATOR, Retriable, "The broker is not the coordinator for this group or transactional id."),
    (17, INVALID_TOPIC_EXCEPTION, Plain, "The topic name is invalid or the operation is not allowed on this topic."),
    (18, RECORD_LIST_TOO_LARGE, Plain, "A record batch is larger than the broker's configured segment size."),
    (19, NOT_ENOUGH_REPLICAS, Retriable, "Records were rejected because fewer replicas are in sync than required."),
    (20, NOT_ENOUGH_REPLICAS_AFTER_APPEND, Retriable, "Records were appended but reached fewer in-sync replicas than required."),
    (21, INVALID_REQUIRED_ACKS, Plain, "The produce request's acks value is not valid."),
    (22, ILLEGAL_GENERATION, Plain, "The group generation id in the request is not the current one."),
    (23, INCONSISTENT_GROUP_PROTOCOL, Plain, "The member's protocol type or protocols do not match the rest of the group, or are empty."),
    (24, INVALID_GROUP_ID, Plain, "The group id is not valid."),
    (25, UNKNOWN_MEMBER_ID, Plain, "The coordinator does not know this member id."),
    (26, INVALID_SESSION_TIMEOUT, Plain, "The session timeout is outside the range the broker allows."),
    (27, REBALANCE_IN_PROGRESS, Plain, "The group is rebalancing; the member must rejoin."),
    (28, INVALID_COMMIT_OFFSET_SIZE, Plain, "The size of the offset commit data is not valid."),
    (29, TOPIC_AUTHORIZATION_FAILED, Plain, "The principal is not authorized for the topic."),
    (30, GROUP_AUTHORIZATION_FAILED, Plain, "The principal is not authorized for the group."),
    (31, CLUSTER_AUTHORIZATION_FAILED, Plain, "The principal is not authorized for the cluster operation."),
    (32, INVALID_TIMESTAMP, Plain, "A record timestamp is outside the accepted range."),
    (33, UNSUPPORTED_SASL_MECHANISM, Plain, "The broker does not support the requested SASL mechanism."),
    (34, ILLEGAL_SASL_STATE, Plain, "The request is not allowed in the current state of the SASL exchange."),
    (35, UNSUPPORTED_VERSION, Plain, "The broker does not support this API version."),
    (36, TOPIC_ALREADY_EXISTS, Plain, "A topic with this name already exists."),
    (37, INVALID_PARTITIONS, Plain, "The partition count is not valid."),
    (38, INVALID_REPLICATION_FACTOR, Plain, "The replication factor is below 1 or above the number of available brokers."),
    (39, INVALID_REPLICA_ASSIGNMENT, Plain, "The replica assignment is not valid."),
    (40, INVALID_CONFIG, Plain, "The configuration is not valid."),
    (41, NOT_CONTROLLER, Retriable, "The broker is not the active controller."),
    (42, INVALID_REQUEST, Plain, "The request is malformed or was sent to a broker that cannot handle it."),
    (43, UNSUPPORTED_FOR_MESSAGE_FORMAT, Plain, "The broker's message format version does not support the request."),
    (44, POLICY_VIOLATION, Plain, "The request violates a policy configured on the broker."),
    (45, OUT_OF_ORDER_SEQUENCE_NUMBER, Plain, "The broker received a producer sequence number out of order."),
    (46, DUPLICATE_SEQUENCE_NUMBER, Plain, "The broker received a producer sequence number it has already seen."),
    (47, INVALID_PRODUCER_EPOCH, Plain, "The producer used an epoch older than the current one."),
    (48, INVALID_TXN_STATE, Plain, "The transactional operation is not valid in the transaction's current state."),
    (49, INVALID_PRODUCER_ID_MAPPING, Plain, "The producer id is not the one currently assigned to this transactional id."),
    (50, INVALID_TRANSACTION_TIMEOUT, Plain, "The transaction timeout exceeds the broker's maximum."),
    (51, CONCURRENT_TRANSACTIONS, Retriable, "Another operation on the same transaction is still in progress."),
    (52, TRANSACTION_COORDINATOR_FENCED, Plain, "The transaction coordinator that sent the marker has been superseded."),
    (53, TRANSACTIONAL_ID_AUTHORIZATION_FAILED, Plain, "The principal is not authorized for the transactional id."),
    (54, SECURITY_DISABLED, Plain, "Security features are disabled on the broker."),
    (55, OPERATION_NOT_ATTEMPTED, Plain, "The broker skipped this operation because another one in the same batch failed."),
    (56, KAFKA_STORAGE_ERROR, Metadata, "The broker hit a disk error accessing the log."),
    (57, LOG_DIR_NOT_FOUND, Plain, "The requested log directory is not in the broker's configuration."),
    (58, SASL_AUTHENTICATION_FAILED, Plain, "SASL authentication failed."),
    (59, UNKNOWN_PRODUCER_ID, Plain, "The broker has no state for this producer id, for example after its records expired."),
    (60, REASSIGNMENT_IN_PROGRESS, Plain, "A partition reassignment is in progress."),
    (61, DELEGATION_TOKEN_AUTH_DISABLED, Plain, "Delegation tokens are not enabled."),
    (62, DELEGATION_TOKEN_NOT_FOUND, Plain, "The delegation token does not exist."),
    (63, DELEGATION_TOKEN_OWNER_MISMATCH, Plain, "The principal is not the owner or a renewer of the delegation token."),
    (64, DELEGATION_TOKEN_REQUEST_NOT_ALLOWED, Plain, "Delegation token requests are not allowed on this kind of connection."),
    (65, DELEGATION_TOKEN_AUTHORIZATION_FAILED, Plain, "The principal is not authorized for the delegation token operation."),
    (66, DELEGATION_TOKEN_EXPIRED, Plain, "The delegation token has expired."),
    (67, INVALID_PRINCIPAL_TYPE, Plain, "The principal type is not supported."),
    (68, NON_EMPTY_GROUP, Plain, "The group still has members."),
    (69, GROUP_ID_NOT_FOUND, Plain, "The group does not exist."),
    (70, FETCH_SESSION_ID_NOT_FOUND, Retriable, "The broker has no fetch session with this id."),
    (71, INVALID_FETCH_SESSION_EPOCH, Retriable, "The fetch session epoch is not the expected one."),
    (72, LISTENER_NOT_FOUND, Metadata, "The partition leader has no listener matching the one the metadata request came in on."),
    (73, TOPIC_DELETION_DISABLED, Plain, "Topic deletion is disabled on the broker."),
    (74, FENCED_LEADER_EPOCH, Metadata, "The leader epoch in the request is older than the broker's."),
    (75, UNKNOWN_LEADER_EPOCH, Retriable, "The leader epoch in the request is newer than the broker's."),
    (76, UNSUPPORTED_COMPRESSION_TYPE, Plain, "The client does not support the compression type used by the partition."),
    (77, STALE_BROKER_EPOCH, Plain, "The broker epoch in the request is outdated."),
    (78, OFFSET_NOT_AVAILABLE, Retriable, "The new leader's high watermark has not caught up yet, so offsets cannot be served."),
    (79, MEMBER_ID_REQUIRED, Plain, "The member must rejoin with the member id the coordinator assigned."),
    (80, PREFERRED_LEADER_NOT_AVAILABLE, Metadata, "The preferred leader is not available."),
    (81, GROUP_MAX_SIZE_REACHED, Plain, "The group already has the maximum number of members."),
    (82, FENCED_INSTANCE_ID, Plain, "Another member with the same group.instance.id has replaced this static member."),
    (83, ELIGIBLE_LEADERS_NOT_AVAILABLE, Metadata, "No eligible leader is available for the partition."),
    (84, ELECTION_NOT_NEEDED, Metadata, "The partition does not need a leader election."),
    (85, NO_REASSIGNMENT_IN_PROGRESS, Plain, "No partition reassignment is in progress."),
    (86, GROUP_SUBSCRIBED_TO_TOPIC, Plain, "The group's offsets for the topic cannot be deleted while the group subscribes to it."),
    (87, INVALID_RECORD, Plain, "The broker rejected a record that failed its validation."),
    (88, UNSTABLE_OFFSET_COMMIT, Retriable, "Pending transactional offsets must be resolved before offsets can be read."),
    (89, THROTTLING_QUOTA_EXCEEDED, Retriable, "The request exceeded a throttling quota."),
    (90, PRODUCER_FENCED, Plain, "A newer producer with the same transactional id has fenced this one."),
    (91, RESOURCE_NOT_FOUND, Plain, "The request refers to a resource that does not exist."),
    (92, DUPLICATE_RESOURCE, Plain, "The request refers to the same resource more than once."),
    (93, UNACCEPTABLE_CREDENTIAL, Plain, "The requested credential does not meet the acceptance criteria."),
    (94, INCONSISTENT_VOTER_SET, Plain, "The sender or receiver of a voter-only request is not one of the expected voters."),
    (95, INVALID_UPDATE_VERSION, Plain, "The update version is not valid."),
    (96, FEATURE_UPDATE_FAILED, Plain, "The finalized features could not be updated because of a broker error."),
    (97, PRINCIPAL_DESERIALIZATION_FAILURE, Plain, "A forwarded request's principal could not be deserialized."),
    (98, SNAPSHOT_NOT_FOUND, Plain, "The requested snapshot does not exist."),
    (99, POSITION_OUT_OF_RANGE, Plain, "The requested position is negative or beyond the end of the snapshot."),
    (100, UNKNOWN_TOPIC_ID, Metadata, "The broker does not host a topic with this id."),
    (101, DUPLICATE_BROKER_REGISTRATION, Plain, "The broker id is already registered."),
    (102, BROKER_ID_NOT_REGISTERED, Plain, "The broker id is not registered."),
    (103, INCONSISTENT_TOPIC_ID, Metadata, "The topic id in the request does not match the topic id of the log."),
    (104, INCONSISTENT_CLUSTER_ID, Plain, "The cluster id in the request does not match the server's."),
    (105, TRANSACTIONAL_ID_NOT_FOUND, Plain, "The transactional id does not exist."),
    (106, FETCH_SESSION_TOPIC_ID_ERROR, Retriable, "The fetch session used topic ids inconsistently."),
    (107, INELIGIBLE_REPLICA, Plain, "The proposed ISR contains a replica that is not eligible."),
    (108, NEW_LEADER_ELECTED, Plain, "The partition state was updated, but the leader changed in the meantime."),
    (109, OFFSET_MOVED_TO_TIERED_STORAGE, Plain, "The requested offset now lives in tiered storage."),
    (110, FENCED_MEMBER_EPOCH, Plain, "The coordinator fenced the member epoch; the member must give up its partitions and rejoin."),
    (111, UNRELEASED_INSTANCE_ID, Plain, "Another member of the group still holds this instance id."),
    (112, UNSUPPORTED_ASSIGNOR, Plain, "The group does not support the requested assignor or version range."),
    (113, STALE_MEMBER_EPOCH, Plain, "The member epoch is outdated; retry with the epoch from the latest heartbeat."),
    (114, MISMATCHED_ENDPOINT_TYPE, Plain, "The request reached an endpoint of the wrong type."),
    (115, UNSUPPORTED_ENDPOINT_TYPE, Plain, "The endpoint type is not supported."),
    (116, UNKNOWN_CONTROLLER_ID, Plain, "The controller id is not known."),
    (117, UNKNOWN_SUBSCRIPTION_ID, Plain, "The client telemetry subscription id is unknown or outdated."),
    (118, TELEMETRY_TOO_LARGE, Plain, "The pushed client telemetry exceeds the broker's size limit."),
    (119, INVALID_REGISTRATION, Plain, "The controller considers the broker registration invalid."),
    (120, TRANSACTION_ABORTABLE, Plain, "The transaction hit an error; aborting it makes the transactional id usable again."),
    (121, INVALID_RECORD_STATE, Plain, "The record is not in a state that allows the acknowledgement."),
    (122, SHARE_SESSION_NOT_FOUND, Retriable, "The broker has no such share session."),
    (123, INVALID_SHARE_SESSION_EPOCH, Retriable, "The share session epoch is not the expected one."),
    (124, FENCED_STATE_EPOCH, Plain, "The share-group state epoch does not match the share coordinator's."),
    (125, INVALID_VOTER_KEY, Plain, "The voter key does not match the receiving replica."),
    (126, DUPLICATE_VOTER, Plain, "The voter already belongs to the voter set."),
    (127, VOTER_NOT_FOUND, Plain, "The voter does not belong to the voter set."),
    (128, INVALID_REGULAR_EXPRESSION, Plain, "The regular expression is not valid."),
    (129, REBOOTSTRAP_REQUIRED, Plain, "The client's metadata is too stale; it must rebootstrap."),
    (130, STREAMS_INVALID_TOPOLOGY, Plain, "The Streams topology is not valid."),
    (131, STREAMS_INVALID_TOPOLOGY_EPOCH, Plain, "The Streams topology epoch is not valid."),
    (132, STREAMS_TOPOLOGY_FENCED, Plain, "The Streams topology epoch is outdated."),
    (133, SHARE_SESSION_LIMIT_REACHED, Retriable, "The broker already has the maximum number of share sessions."),
}

// The O(1) lookup below relies on the table being dense and ordered from -1.
const _: () = {
    let mut i = 0;
    while i < TABLE.len() {
        assert!(
            TABLE[i].code as i32 == i as i32 - 1,
            "error-code table must be ordered and dense from -1"
        );
        i += 1;
    }
};

/// Name reported for codes not in the table.
const UNKNOWN_NAME: &str = "UNKNOWN_ERROR_CODE";
/// Description reported for codes not in the table.
const UNKNOWN_DESCRIPTION: &str = "An error code this client does not know.";

impl ErrorCode {
    /// The table row for this code, if it is known.
    const fn entry(self) -> Option<&'static Entry> {
        let index = self.0 as i32 + 1;
        if index >= 0 && (index as usize) < TABLE.len() {
            Some(&TABLE[index as usize])
        } else {
            None
        }
    }

    /// The raw wire value.
    pub const fn code(self) -> i16 {
        self.0
    }

    /// Kafka's name for the code, e.g. `"NOT_COORDINATOR"`, or
    /// `"UNKNOWN_ERROR_CODE"` for a code this crate does not know.
    pub const fn name(self) -> &'static str {
        match self.entry() {
            Some(entry) => entry.name,
            None => UNKNOWN_NAME,
        }
    }

    /// A one-sentence description of what the code means.
    pub const fn description(self) -> &'static str {
        match self.entry() {
            Some(entry) => entry.description,
            None => UNKNOWN_DESCRIPTION,
        }
    }

    /// Whether the Java client treats the error as retriable: the same request
    /// may succeed if sent again later. Unknown codes are not retriable.
    pub const fn is_retriable(self) -> bool {
        match self.entry() {
            Some(entry) => !matches!(entry.class, Class::Plain),
            None => false,
        }
    }

    /// Whether the error means the client's cluster metadata (leaders,
    /// partitions, topic ids) is stale and should be refreshed before
    /// retrying. Every such code is also [retriable](Self::is_retriable).
    pub const fn invalidates_metadata(self) -> bool {
        match self.entry() {
            Some(entry) => matches!(entry.class, Class::Metadata),
            None => false,
        }
    }

    /// Whether this is [`ErrorCode::NONE`], i.e. success.
    pub const fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// Whether the code is one Kafka has assigned (and this crate knows).
    pub const fn is_known(self) -> bool {
        self.entry().is_some()
    }

    /// The code with Kafka's name `name` (exact, case-sensitive), e.g.
    /// `"NOT_COORDINATOR"`. Returns `None` for unknown names, including
    /// `"UNKNOWN_ERROR_CODE"`.
    pub fn from_name(name: &str) -> Option<ErrorCode> {
        TABLE
            .iter()
            .find(|entry| entry.name == name)
            .map(|entry| ErrorCode(entry.code))
    }

    /// Every known code, in ascending order (starting with
    /// [`ErrorCode::UNKNOWN_SERVER_ERROR`] and [`ErrorCode::NONE`]).
    pub fn all() -> impl ExactSizeIterator<Item = ErrorCode> + DoubleEndedIterator {
        TABLE.iter().map(|entry| ErrorCode(entry.code))
    }
}

impl fmt::Display for ErrorCode {
    /// Formats as `NAME (code)`, e.g. `NOT_COORDINATOR (16)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

impl From<i16> for ErrorCode {
    fn from(code: i16) -> Self {
        ErrorCode(code)
    }
}

impl From<ErrorCode> for i16 {
    fn from(code: ErrorCode) -> Self {
        code.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// The highest code assigned by Kafka that this table knows.
    const HIGHEST: i16 = 133;

    #[test]
    fn codes_are_unique_ordered_and_dense() {
        let codes: Vec<i16> = ErrorCode::all().map(i16::from).collect();
        let expected: Vec<i16> = (-1..=HIGHEST).collect();
        assert_eq!(codes, expected);
        assert_eq!(ErrorCode::all().len(), 135);
    }

    #[test]
    fn names_are_unique_and_screaming_case() {
        let mut seen = HashSet::new();
        for code in ErrorCode::all() {
            let name = code.name();
            assert!(seen.insert(name), "duplicate name {name}");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
                "{name} is not SCREAMING_CASE"
            );
            assert!(name.starts_with(|c: char| c.is_ascii_uppercase()), "{name}");
            assert!(!name.ends_with('_') && !name.contains("__"), "{name}");
            assert_ne!(name, UNKNOWN_NAME);
        }
    }

    #[test]
    fn descriptions_are_present() {
        for code in ErrorCode::all() {
            let description = code.description();
            assert!(description.ends_with('.'), "{code}: {description:?}");
            assert_eq!(description.trim(), description, "{code}");
        }
    }

    #[test]
    fn round_trips() {
        for code in ErrorCode::all() {
            assert!(code.is_known());
            assert_eq!(ErrorCode::from(i16::from(code)), code);
            assert_eq!(ErrorCode::from_name(code.name()), Some(code));
            assert_eq!(code.to_string(), format!("{} ({})", code.name(), code.0));
            assert_eq!(code.code(), code.0);
        }
    }

    /// `(code, name, retriable, invalidates_metadata)`, checked against
    /// `Errors.java` and the exception classes in
    /// `clients/src/main/java/org/apache/kafka/common/errors/`.
    const PINNED: &[(i16, &str, bool, bool)] = &[
        (-1, "UNKNOWN_SERVER_ERROR", false, false),
        (0, "NONE", false, false),
        (1, "OFFSET_OUT_OF_RANGE", false, false),
        (2, "CORRUPT_MESSAGE", true, false),
        (3, "UNKNOWN_TOPIC_OR_PARTITION", true, true),
        (6, "NOT_LEADER_OR_FOLLOWER", true, true),
        (8, "BROKER_NOT_AVAILABLE", false, false),
        (13, "NETWORK_EXCEPTION", true, true),
        (14, "COORDINATOR_LOAD_IN_PROGRESS", true, false),
        (15, "COORDINATOR_NOT_AVAILABLE", true, false),
        (16, "NOT_COORDINATOR", true, false),
        (22, "ILLEGAL_GENERATION", false, false),
        (25, "UNKNOWN_MEMBER_ID", false, false),
        (27, "REBALANCE_IN_PROGRESS", false, false),
        (35, "UNSUPPORTED_VERSION", false, false),
        (41, "NOT_CONTROLLER", true, false),
        // Retriable since KAFKA-14417 (2022).
        (51, "CONCURRENT_TRANSACTIONS", true, false),
        (74, "FENCED_LEADER_EPOCH", true, true),
        // Extends RetriableException directly, not InvalidMetadataException.
        (75, "UNKNOWN_LEADER_EPOCH", true, false),
        (79, "MEMBER_ID_REQUIRED", false, false),
        (82, "FENCED_INSTANCE_ID", false, false),
        (99, "POSITION_OUT_OF_RANGE", false, false),
        (100, "UNKNOWN_TOPIC_ID", true, true),
        (110, "FENCED_MEMBER_EPOCH", false, false),
        (113, "STALE_MEMBER_EPOCH", false, false),
        (120, "TRANSACTION_ABORTABLE", false, false),
        (122, "SHARE_SESSION_NOT_FOUND", true, false),
        (129, "REBOOTSTRAP_REQUIRED", false, false),
        (132, "STREAMS_TOPOLOGY_FENCED", false, false),
        (133, "SHARE_SESSION_LIMIT_REACHED", true, false),
    ];

    #[test]
    fn pinned_values() {
        for &(value, name, retriable, metadata) in PINNED {
            let code = ErrorCode::from(value);
            assert_eq!(code.name(), name);
            assert_eq!(ErrorCode::from_name(name), Some(code));
            assert_eq!(code.is_retriable(), retriable, "{name}");
            assert_eq!(code.invalidates_metadata(), metadata, "{name}");
        }
    }

    #[test]
    fn retriable_and_metadata_sets_match_java() {
        let retriable: Vec<i16> = ErrorCode::all()
            .filter(|c| c.is_retriable())
            .map(i16::from)
            .collect();
        assert_eq!(
            retriable,
            [
                2, 3, 5, 6, 7, 9, 13, 14, 15, 16, 19, 20, 41, 51, 56, 70, 71, 72, 74, 75, 78, 80,
                83, 84, 88, 89, 100, 103, 106, 122, 123, 133
            ]
        );
        let metadata: Vec<i16> = ErrorCode::all()
            .filter(|c| c.invalidates_metadata())
            .map(i16::from)
            .collect();
        assert_eq!(metadata, [3, 5, 6, 9, 13, 56, 72, 74, 80, 83, 84, 100, 103]);
        for code in ErrorCode::all() {
            assert!(
                !code.invalidates_metadata() || code.is_retriable(),
                "{code}"
            );
        }
    }

    #[test]
    fn only_none_is_ok() {
        assert!(ErrorCode::NONE.is_ok());
        assert_eq!(ErrorCode::all().filter(|c| c.is_ok()).count(), 1);
    }

    #[test]
    fn unknown_codes() {
        for value in [HIGHEST + 1, 1000, -2, i16::MIN, i16::MAX] {
            let code = ErrorCode::from(value);
            assert!(!code.is_known(), "{value}");
            assert!(!code.is_ok());
            assert!(!code.is_retriable());
            assert!(!code.invalidates_metadata());
            assert_eq!(code.name(), "UNKNOWN_ERROR_CODE");
            assert_eq!(code.description(), UNKNOWN_DESCRIPTION);
            assert_eq!(code.to_string(), format!("UNKNOWN_ERROR_CODE ({value})"));
            assert_eq!(i16::from(code), value);
        }
        assert_eq!(ErrorCode::from_name("UNKNOWN_ERROR_CODE"), None);
        assert_eq!(ErrorCode::from_name("not_coordinator"), None);
        assert_eq!(ErrorCode::from_name(""), None);
    }

    #[test]
    fn constants() {
        assert_eq!(ErrorCode::UNKNOWN_SERVER_ERROR.0, -1);
        assert_eq!(ErrorCode::NONE.0, 0);
        assert_eq!(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0, 3);
        assert_eq!(ErrorCode::NOT_LEADER_OR_FOLLOWER.0, 6);
        assert_eq!(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS.0, 14);
        assert_eq!(ErrorCode::COORDINATOR_NOT_AVAILABLE.0, 15);
        assert_eq!(ErrorCode::NOT_COORDINATOR.0, 16);
        assert_eq!(ErrorCode::ILLEGAL_GENERATION.0, 22);
        assert_eq!(ErrorCode::UNKNOWN_MEMBER_ID.0, 25);
        assert_eq!(ErrorCode::REBALANCE_IN_PROGRESS.0, 27);
        assert_eq!(ErrorCode::UNSUPPORTED_VERSION.0, 35);
        assert_eq!(ErrorCode::FENCED_LEADER_EPOCH.0, 74);
        assert_eq!(ErrorCode::MEMBER_ID_REQUIRED.0, 79);
        assert_eq!(ErrorCode::FENCED_INSTANCE_ID.0, 82);
        assert_eq!(ErrorCode::SHARE_SESSION_LIMIT_REACHED.0, HIGHEST);
    }

    #[test]
    fn display() {
        assert_eq!(
            ErrorCode::NOT_COORDINATOR.to_string(),
            "NOT_COORDINATOR (16)"
        );
        assert_eq!(
            ErrorCode::UNKNOWN_SERVER_ERROR.to_string(),
            "UNKNOWN_SERVER_ERROR (-1)"
        );
        assert_eq!(ErrorCode::NONE.to_string(), "NONE (0)");
    }
}
