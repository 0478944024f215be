//! Committed offsets through the group coordinator: OffsetCommit (with the
//! generation, member id and group instance id of the membership, KIP-211
//! leader epochs, KIP-345 static members) and OffsetFetch (many partitions
//! in one request; KIP-447 `require_stable` from v7).
//!
//! A committed offset is the offset of the next record to consume. A commit
//! for a partition the member does not own is refused here, before anything
//! is sent (docs/ARCHITECTURE.md, "Offset semantics"); a commit carrying a generation
//! the coordinator has moved past comes back as ILLEGAL_GENERATION.
//! Coordinator errors are retried with rediscovery within the policy's
//! deadline; every other per-partition error is returned typed.

use std::collections::{BTreeMap, BTreeSet};

use krust_codec::generated::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use krust_codec::generated::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use krust_codec::generated::{OffsetCommitRequest, OffsetFetchRequest};
use krust_codec::{ApiKey, ErrorCode, KString, Message};
use krust_net::{CoordinatorType, Error, Pool, RetryPolicy};
use thiserror::Error;

use crate::driver::MemberSnapshot;
use crate::io::State;
use crate::tp::{TopicPartition, by_topic};

/// An offset to commit, or one that was committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetAndMetadata {
    /// The offset of the next record to consume.
    pub offset: i64,
    /// The leader epoch of the last record consumed, when known (KIP-320).
    pub leader_epoch: Option<i32>,
    /// Application metadata stored with the offset.
    pub metadata: Option<String>,
}

impl OffsetAndMetadata {
    /// `offset` with no epoch and no metadata.
    pub fn new(offset: i64) -> Self {
        OffsetAndMetadata {
            offset,
            leader_epoch: None,
            metadata: None,
        }
    }
}

/// One partition the coordinator refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionError {
    /// The API.
    pub api: ApiKey,
    /// The error code.
    pub code: ErrorCode,
    /// The partition.
    pub partition: TopicPartition,
}

/// Why a commit or fetch failed.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum OffsetError {
    /// Refused before sending: the member is rejoining its group (JoinGroup
    /// or SyncGroup in flight, or the leader assigning). The coordinator
    /// would refuse it too (REBALANCE_IN_PROGRESS, or ILLEGAL_GENERATION
    /// once the round ends), and sent on the coordinator's connection it
    /// would wait behind the JoinGroup the broker holds until the round
    /// ends, stopping the application meanwhile. As Java's
    /// `RebalanceInProgressException`: poll, which finishes the rebalance,
    /// then commit again.
    #[error(
        "OffsetCommit refused locally: member {member_id:?} of group {group} is rejoining ({state:?}); poll to finish the rebalance, then commit again"
    )]
    RebalanceInProgress {
        /// The group id.
        group: String,
        /// The member id.
        member_id: String,
        /// Where the membership is.
        state: State,
    },
    /// Refused before sending: this member does not own these partitions
    /// in its generation (they were revoked, lost, or never assigned).
    #[error("OffsetCommit refused locally: member {member_id:?} (generation {generation}) of group {group} does not own {}", list(.partitions))]
    NotOwned {
        /// The group id.
        group: String,
        /// The member id.
        member_id: String,
        /// The member's generation.
        generation: i32,
        /// The partitions not owned.
        partitions: Vec<TopicPartition>,
    },
    /// The coordinator refused some partitions (ILLEGAL_GENERATION,
    /// UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, REBALANCE_IN_PROGRESS,
    /// TOPIC_AUTHORIZATION_FAILED, OFFSET_METADATA_TOO_LARGE, ...); the
    /// others succeeded.
    #[error("{} failed for group {group}: {}", .errors.first().map(|e| e.api.to_string()).unwrap_or_default(), .errors.iter().map(|e| format!("{} {}", e.partition, e.code)).collect::<Vec<_>>().join(", "))]
    Partitions {
        /// The group id.
        group: String,
        /// One entry per refused partition.
        errors: Vec<PartitionError>,
    },
    /// The request failed as a whole (a group-level error code, a network
    /// error, or retries that ran out).
    #[error("group {group}: {source}")]
    Request {
        /// The group id.
        group: String,
        /// The cause.
        #[source]
        source: Error,
    },
}

fn list(ps: &[TopicPartition]) -> String {
    ps.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl OffsetError {
    /// The Kafka error code (the first partition's, for `Partitions`;
    /// REBALANCE_IN_PROGRESS, the code the coordinator would have given,
    /// for `RebalanceInProgress`).
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            OffsetError::NotOwned { .. } => None,
            OffsetError::RebalanceInProgress { .. } => Some(ErrorCode::REBALANCE_IN_PROGRESS),
            OffsetError::Partitions { errors, .. } => errors.first().map(|e| e.code),
            OffsetError::Request { source, .. } => match source {
                Error::RetriesExhausted { last, .. } => last.code(),
                e => e.code(),
            },
        }
    }
}

/// Codes that mean "the coordinator is elsewhere or not ready": retried.
fn coordinator_retry(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NOT_COORDINATOR
            | ErrorCode::COORDINATOR_NOT_AVAILABLE
            | ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
            | ErrorCode::REQUEST_TIMED_OUT
            | ErrorCode::UNSTABLE_OFFSET_COMMIT
    )
}

/// Commit `offsets` as `member` (generation, member id, instance id); every
/// partition must be owned by it.
pub async fn commit(
    pool: &Pool,
    member: &MemberSnapshot,
    offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    retry: &RetryPolicy,
) -> Result<(), OffsetError> {
    if matches!(
        member.state,
        State::Joining | State::Assigning | State::Syncing
    ) {
        return Err(OffsetError::RebalanceInProgress {
            group: member.group_id.clone(),
            member_id: member.member_id.clone(),
            state: member.state,
        });
    }
    let not_owned: Vec<TopicPartition> = offsets
        .keys()
        .filter(|tp| !member.owned.contains(*tp) && !member.revoking.contains(*tp))
        .cloned()
        .collect();
    if !not_owned.is_empty() {
        return Err(OffsetError::NotOwned {
            group: member.group_id.clone(),
            member_id: member.member_id.clone(),
            generation: member.generation,
            partitions: not_owned,
        });
    }
    send_commit(pool, member, offsets, retry).await
}

/// Commit for a group this client is not a member of (manually assigned
/// partitions): generation -1 and no member id, as Java's simple commit.
pub async fn commit_standalone(
    pool: &Pool,
    group_id: &str,
    offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    retry: &RetryPolicy,
) -> Result<(), OffsetError> {
    let member = MemberSnapshot {
        group_id: group_id.to_owned(),
        member_id: String::new(),
        generation: -1,
        group_instance_id: None,
        owned: BTreeSet::new(),
        revoking: BTreeSet::new(),
        state: crate::membership::State::Unjoined,
    };
    send_commit(pool, &member, offsets, retry).await
}

async fn send_commit(
    pool: &Pool,
    member: &MemberSnapshot,
    offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    retry: &RetryPolicy,
) -> Result<(), OffsetError> {
    let group = member.group_id.as_str();
    let topics: Vec<OffsetCommitRequestTopic> = by_topic(offsets.keys())
        .into_iter()
        .map(|(t, ps)| OffsetCommitRequestTopic {
            name: KString::from(t),
            partitions: ps
                .into_iter()
                .filter_map(|p| {
                    let o = offsets.get(&TopicPartition::new(t, p))?;
                    Some(OffsetCommitRequestPartition {
                        partition_index: p,
                        committed_offset: o.offset,
                        committed_leader_epoch: o.leader_epoch.unwrap_or(-1),
                        committed_metadata: Some(KString::from(
                            o.metadata.as_deref().unwrap_or(""),
                        )),
                        ..Default::default()
                    })
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    let outcome = retry
        .run(
            ApiKey::OffsetCommit,
            |_| async {
                let conn = pool.coordinator(CoordinatorType::Group, group).await?;
                let v =
                    conn.negotiate(ApiKey::OffsetCommit, OffsetCommitRequest::VALID_VERSIONS)?;
                let req = OffsetCommitRequest {
                    group_id: KString::from(group),
                    generation_id_or_member_epoch: member.generation,
                    member_id: KString::from(member.member_id.as_str()),
                    // Before v7 a static member commits as its member id only.
                    group_instance_id: member
                        .group_instance_id
                        .as_deref()
                        .filter(|_| v >= 7)
                        .map(KString::from),
                    topics: topics.clone(),
                    ..Default::default()
                };
                let resp = conn.send_at(&req, v).await?;
                let mut errors = Vec::new();
                for t in &resp.topics {
                    for p in &t.partitions {
                        let code = ErrorCode::from(p.error_code);
                        if coordinator_retry(code) {
                            return Err(Error::broker(ApiKey::OffsetCommit, code, None)
                                .from_broker(conn.addr()));
                        }
                        if !code.is_ok() {
                            errors.push(PartitionError {
                                api: ApiKey::OffsetCommit,
                                code,
                                partition: TopicPartition::new(t.name.as_str(), p.partition_index),
                            });
                        }
                    }
                }
                Ok(errors)
            },
            |e| on_retry(pool, group, e),
        )
        .await
        .map_err(|source| OffsetError::Request {
            group: group.to_owned(),
            source,
        })?;
    if outcome.is_empty() {
        Ok(())
    } else {
        Err(OffsetError::Partitions {
            group: group.to_owned(),
            errors: outcome,
        })
    }
}

fn on_retry(pool: &Pool, group: &str, e: &Error) {
    if e.invalidates_metadata() {
        pool.invalidate_coordinator(CoordinatorType::Group, group);
    }
}

/// The committed offsets of `partitions` in `group_id` (`None`: nothing
/// committed). With `require_stable` (v7+; ignored by older brokers) the
/// coordinator waits for pending transactional commits.
pub async fn fetch(
    pool: &Pool,
    group_id: &str,
    partitions: &[TopicPartition],
    require_stable: bool,
    retry: &RetryPolicy,
) -> Result<BTreeMap<TopicPartition, Option<OffsetAndMetadata>>, OffsetError> {
    let wanted = by_topic(partitions);
    let group_err = |source| OffsetError::Request {
        group: group_id.to_owned(),
        source,
    };
    let (found, errors) = retry
        .run(
            ApiKey::OffsetFetch,
            |_| async {
                let conn = pool.coordinator(CoordinatorType::Group, group_id).await?;
                let v = conn.negotiate(ApiKey::OffsetFetch, OffsetFetchRequest::VALID_VERSIONS)?;
                let mut req = OffsetFetchRequest {
                    require_stable: require_stable && v >= 7,
                    ..Default::default()
                };
                if v >= 8 {
                    req.groups = vec![OffsetFetchRequestGroup {
                        group_id: KString::from(group_id),
                        topics: Some(
                            wanted
                                .iter()
                                .map(|(t, ps)| OffsetFetchRequestTopics {
                                    name: KString::from(*t),
                                    partition_indexes: ps.clone(),
                                    ..Default::default()
                                })
                                .collect(),
                        ),
                        ..Default::default()
                    }];
                } else {
                    req.group_id = KString::from(group_id);
                    req.topics = Some(
                        wanted
                            .iter()
                            .map(|(t, ps)| OffsetFetchRequestTopic {
                                name: KString::from(*t),
                                partition_indexes: ps.clone(),
                                ..Default::default()
                            })
                            .collect(),
                    );
                }
                let resp = conn.send_at(&req, v).await?;
                // (topic, partition, offset, epoch, metadata, code), either layout.
                let mut rows = Vec::new();
                let mut top = ErrorCode::from(resp.error_code);
                for t in &resp.topics {
                    for p in &t.partitions {
                        let m = p.metadata.as_ref().map(|m| m.as_str().to_owned());
                        rows.push((
                            t.name.as_str().to_owned(),
                            p.partition_index,
                            p.committed_offset,
                            p.committed_leader_epoch,
                            m,
                            p.error_code,
                        ));
                    }
                }
                for g in &resp.groups {
                    top = ErrorCode::from(g.error_code);
                    for t in &g.topics {
                        for p in &t.partitions {
                            let m = p.metadata.as_ref().map(|m| m.as_str().to_owned());
                            rows.push((
                                t.name.as_str().to_owned(),
                                p.partition_index,
                                p.committed_offset,
                                p.committed_leader_epoch,
                                m,
                                p.error_code,
                            ));
                        }
                    }
                }
                if !top.is_ok() {
                    return Err(
                        Error::broker(ApiKey::OffsetFetch, top, None).from_broker(conn.addr())
                    );
                }
                let mut found = BTreeMap::new();
                let mut errors = Vec::new();
                for (topic, partition, offset, epoch, metadata, code) in rows {
                    let code = ErrorCode::from(code);
                    let tp = TopicPartition::new(topic, partition);
                    if coordinator_retry(code) {
                        return Err(
                            Error::broker(ApiKey::OffsetFetch, code, None).from_broker(conn.addr())
                        );
                    }
                    if !code.is_ok() {
                        errors.push(PartitionError {
                            api: ApiKey::OffsetFetch,
                            code,
                            partition: tp,
                        });
                        continue;
                    }
                    let o = (offset >= 0).then(|| OffsetAndMetadata {
                        offset,
                        leader_epoch: (epoch >= 0).then_some(epoch),
                        metadata: metadata.filter(|m| !m.is_empty()),
                    });
                    found.insert(tp, o);
                }
                Ok((found, errors))
            },
            |e| on_retry(pool, group_id, e),
        )
        .await
        .map_err(group_err)?;
    if !errors.is_empty() {
        return Err(OffsetError::Partitions {
            group: group_id.to_owned(),
            errors,
        });
    }
    let mut out = found;
    for tp in partitions {
        out.entry(tp.clone()).or_insert(None);
    }
    Ok(out)
}
