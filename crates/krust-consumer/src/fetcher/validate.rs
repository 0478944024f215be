//! KIP-320 position validation: after a leader change (or from a committed
//! offset that carries a leader epoch) the consumer asks the leader, with
//! OffsetForLeaderEpoch, where the epoch of the record before its position
//! ends in the leader's log. An end below the position means the log was
//! truncated under the consumer (an unclean election): the records it read
//! past that end are gone, and the ones now at those offsets are new. Without
//! the check the consumer would fetch on from its position and skip them.

use std::collections::{BTreeMap, HashMap};

use krust_codec::generated::OffsetForLeaderEpochRequest;
use krust_codec::generated::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use krust_codec::{ApiKey, ErrorCode, KString};
use krust_group::TopicPartition;
use krust_net::{Error, Pool};

use super::{Fetcher, leader_moved, reset_by_policy};
use crate::config::AutoOffsetReset;
use crate::error::{ConsumerError, Truncation};
use crate::parts::PartState;

/// The lowest version a consumer may send: v3 brings `replica_id`, which
/// tells the broker the request is a consumer's (Java requires it too).
const MIN_VERSION: i16 = 3;
/// The highest version sent.
const MAX_VERSION: i16 = 4;

/// One position asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Asked {
    pub tp: TopicPartition,
    /// The position.
    pub offset: i64,
    /// The leader epoch of the record before it.
    pub epoch: i32,
    /// The leader epoch the metadata gave (fences a stale leader).
    pub current: i32,
}

impl Asked {
    /// Whether `p` still waits for this answer: nothing moved it since.
    pub(crate) fn still_asked(&self, p: &PartState) -> bool {
        p.validate && p.position == Some(self.offset) && p.leader_epoch == Some(self.epoch)
    }
}

/// The leader's answer for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    pub tp: TopicPartition,
    pub code: ErrorCode,
    /// The largest epoch at or below the one asked that the leader knows
    /// (-1: none).
    pub leader_epoch: i32,
    /// Where that epoch ends in the leader's log (-1: unknown).
    pub end_offset: i64,
}

/// What an answer means for the position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The leader's log holds everything below the position as read.
    Valid,
    /// The log diverges from `offset` (below the position); the record
    /// before it has leader epoch `epoch`.
    Diverged { offset: i64, epoch: i32 },
    /// The leader knows nothing of the position's epoch or any before it.
    Unknown,
    /// Ask again after a metadata refresh (the leader moved, or its epoch
    /// is not the one the metadata gave).
    Retry(ErrorCode),
    /// A refusal retrying does not fix.
    Fatal(ErrorCode),
}

/// Judge `answer` for `asked` (no answer for the partition: ask again).
pub(crate) fn verdict(asked: &Asked, answer: Option<&Answer>) -> Verdict {
    let Some(a) = answer else {
        return Verdict::Retry(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);
    };
    if !a.code.is_ok() {
        return if leader_moved(a.code) || a.code.is_retriable() {
            Verdict::Retry(a.code)
        } else {
            Verdict::Fatal(a.code)
        };
    }
    if a.end_offset < 0 || a.leader_epoch < 0 {
        Verdict::Unknown
    } else if a.end_offset < asked.offset {
        Verdict::Diverged {
            offset: a.end_offset,
            epoch: a.leader_epoch,
        }
    } else {
        Verdict::Valid
    }
}

/// Ask broker `broker` (the leader of every partition in `asked`) over the
/// pool's normal lane.
pub(crate) async fn ask(pool: &Pool, broker: i32, asked: &[Asked]) -> Result<Vec<Answer>, Error> {
    let conn = pool.broker(broker).await?;
    let version = conn.negotiate(ApiKey::OffsetForLeaderEpoch, (MIN_VERSION, MAX_VERSION))?;
    let mut topics: BTreeMap<&str, Vec<OffsetForLeaderPartition>> = BTreeMap::new();
    for a in asked {
        topics
            .entry(a.tp.topic.as_str())
            .or_default()
            .push(OffsetForLeaderPartition {
                partition: a.tp.partition,
                current_leader_epoch: a.current,
                leader_epoch: a.epoch,
                ..Default::default()
            });
    }
    let req = OffsetForLeaderEpochRequest {
        // A consumer, not a follower.
        replica_id: -1,
        topics: topics
            .into_iter()
            .map(|(topic, partitions)| OffsetForLeaderTopic {
                topic: KString::from(topic),
                partitions,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let resp = conn.send_at(&req, version).await?;
    Ok(resp
        .topics
        .into_iter()
        .flat_map(|t| {
            let topic = t.topic.as_str().to_owned();
            t.partitions.into_iter().map(move |p| Answer {
                tp: TopicPartition::new(&*topic, p.partition),
                code: ErrorCode::from(p.error_code),
                leader_epoch: p.leader_epoch,
                end_offset: p.end_offset,
            })
        })
        .collect())
}

impl Fetcher {
    /// Apply one finished validation (KIP-320), as Java's
    /// `maybeCompleteValidation`: only to positions that have not moved
    /// since it was sent.
    pub(super) fn validated(
        &mut self,
        broker: i32,
        asked: &[Asked],
        result: Result<Vec<Answer>, krust_net::Error>,
        parts: &mut BTreeMap<TopicPartition, PartState>,
    ) -> Result<(), ConsumerError> {
        let answers = match result {
            Ok(a) => a,
            // Brokers without OffsetForLeaderEpoch v3 (what a consumer
            // needs) cannot validate: the positions stand, as in Java.
            Err(krust_net::Error::UnsupportedVersion { .. }) => {
                tracing::debug!(
                    broker,
                    "OffsetForLeaderEpoch v3+ not supported: positions not validated"
                );
                for a in asked {
                    if let Some(p) = parts.get_mut(&a.tp).filter(|p| a.still_asked(p)) {
                        p.validate = false;
                    }
                }
                return Ok(());
            }
            Err(e) => {
                tracing::debug!(broker, error = %e, "validating positions failed; backing off");
                return self.request_failed(broker, e);
            }
        };
        let answers: HashMap<&TopicPartition, &Answer> =
            answers.iter().map(|x| (&x.tp, x)).collect();
        let mut truncations = Vec::new();
        for a in asked {
            let Some(p) = parts.get_mut(&a.tp).filter(|p| a.still_asked(p)) else {
                continue;
            };
            match verdict(a, answers.get(&a.tp).copied()) {
                Verdict::Valid => p.validate = false,
                Verdict::Diverged { offset, epoch } if self.reset != AutoOffsetReset::None => {
                    tracing::info!(
                        partition = %a.tp, position = a.offset, divergent = offset,
                        "log truncation detected: resetting to the first offset known to diverge"
                    );
                    p.seek(offset, Some(epoch), &self.progress);
                }
                Verdict::Unknown if self.reset != AutoOffsetReset::None => {
                    tracing::info!(
                        partition = %a.tp, position = a.offset, policy = ?self.reset,
                        "log truncation detected, divergence unknown: resetting"
                    );
                    reset_by_policy(p);
                }
                Verdict::Diverged { offset, .. } => truncations.push(Truncation {
                    partition: a.tp.clone(),
                    position: a.offset,
                    divergent_offset: Some(offset),
                }),
                Verdict::Unknown => truncations.push(Truncation {
                    partition: a.tp.clone(),
                    position: a.offset,
                    divergent_offset: None,
                }),
                Verdict::Retry(code) => {
                    tracing::debug!(partition = %a.tp, %code, "validation: refreshing metadata");
                    self.leader_changed(broker);
                }
                Verdict::Fatal(code) => {
                    return Err(ConsumerError::Fetch {
                        api: ApiKey::OffsetForLeaderEpoch,
                        code,
                        partition: a.tp.clone(),
                    });
                }
            }
        }
        if truncations.is_empty() {
            Ok(())
        } else {
            tracing::warn!(
                ?truncations,
                "log truncation detected, auto.offset.reset=none"
            );
            Err(ConsumerError::LogTruncation { truncations })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(offset: i64, epoch: i32) -> Asked {
        Asked {
            tp: TopicPartition::new("t", 0),
            offset,
            epoch,
            current: epoch + 1,
        }
    }

    fn answer(code: ErrorCode, leader_epoch: i32, end_offset: i64) -> Answer {
        Answer {
            tp: TopicPartition::new("t", 0),
            code,
            leader_epoch,
            end_offset,
        }
    }

    #[test]
    fn an_epoch_ending_at_or_past_the_position_is_valid() {
        let a = asked(200, 3);
        for end in [200, 201, 10_000] {
            let v = verdict(&a, Some(&answer(ErrorCode::NONE, 3, end)));
            assert_eq!(v, Verdict::Valid, "end {end}");
        }
    }

    #[test]
    fn an_epoch_ending_below_the_position_is_a_truncation_from_that_end() {
        let a = asked(200, 3);
        assert_eq!(
            verdict(&a, Some(&answer(ErrorCode::NONE, 2, 100))),
            Verdict::Diverged {
                offset: 100,
                epoch: 2
            }
        );
    }

    #[test]
    fn no_known_epoch_or_end_is_an_unknown_divergence() {
        let a = asked(200, 3);
        assert_eq!(
            verdict(&a, Some(&answer(ErrorCode::NONE, -1, -1))),
            Verdict::Unknown
        );
        assert_eq!(
            verdict(&a, Some(&answer(ErrorCode::NONE, 2, -1))),
            Verdict::Unknown
        );
    }

    #[test]
    fn leader_errors_retry_and_refusals_do_not() {
        let a = asked(200, 3);
        for code in [
            ErrorCode::FENCED_LEADER_EPOCH,
            ErrorCode::UNKNOWN_LEADER_EPOCH,
            ErrorCode::NOT_LEADER_OR_FOLLOWER,
        ] {
            assert_eq!(
                verdict(&a, Some(&answer(code, -1, -1))),
                Verdict::Retry(code)
            );
        }
        assert_eq!(
            verdict(&a, None),
            Verdict::Retry(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
        );
        let denied = ErrorCode::TOPIC_AUTHORIZATION_FAILED;
        assert_eq!(
            verdict(&a, Some(&answer(denied, -1, -1))),
            Verdict::Fatal(denied)
        );
    }
}
