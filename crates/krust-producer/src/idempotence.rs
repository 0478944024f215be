//! The idempotent producer (KIP-98, KIP-360, KIP-588): a producer id and
//! epoch from InitProducerId (no transactional id, so any broker answers),
//! per-partition sequence numbers assigned when a batch is first drained
//! and kept across its retries, at most five batches in flight per
//! partition without reordering, and the Java client's handling of the
//! sequence errors (`TransactionManager.canRetry`):
//!
//! * DUPLICATE_SEQUENCE_NUMBER: the broker already has the batch — success,
//!   offset unknown.
//! * OUT_OF_ORDER_SEQUENCE_NUMBER: retried when an earlier batch of the
//!   partition is still unresolved (the batch is not the next one after the
//!   last acknowledged sequence); when it is the next one the broker lost
//!   state: bump the epoch, restart sequences at 0, retry.
//! * UNKNOWN_PRODUCER_ID: retried while the broker does not know the log
//!   start offset; otherwise the producer state expired: bump and retry.
//! * INVALID_PRODUCER_EPOCH: bump and retry; PRODUCER_FENCED is fatal.
//!
//! A bump is made by the producer itself (same id, epoch + 1; a new id from
//! InitProducerId only when the epoch is exhausted), as the Java client's
//! idempotent producer does: see `Sender::maybe_reset`.
//!
//! A retried batch is only sent once nothing of its partition is in flight
//! (it is then the first in flight, as in Java's `RecordAccumulator.drain`),
//! so later batches never overtake it.
//!
//! Until the broker has acknowledged a first batch of a partition under the
//! current producer id and epoch, that batch is the only one in flight: a
//! broker that has no state for the producer takes ANY first sequence
//! (KIP-360: the state may have expired), so a later batch that reached it
//! while the first one failed (a leader that had not heard of a new topic
//! yet answers UNKNOWN_TOPIC_OR_PARTITION, and a moment later takes the
//! next request) would be appended ahead of it, and the first one then
//! meets OUT_OF_ORDER_SEQUENCE_NUMBER on every retry. Seen on Apache Kafka
//! 4.4.0 right after CreateTopics.

use std::collections::BTreeSet;

use krust_codec::generated::InitProducerIdRequest;
use krust_codec::{ApiKey, ErrorCode, Message};
use krust_net::{Error as NetError, Pool};

use crate::accumulator::{Batch, Sequence, TopicPartition};

/// Batches in flight per partition, at most (the broker keeps state for
/// the last five).
pub(crate) const MAX_IN_FLIGHT_PER_PARTITION: usize = 5;

/// A producer id and epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProducerId {
    pub id: i64,
    pub epoch: i16,
}

/// What to do with a batch after the broker's answer for its partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Acknowledged; `false` when the offset is unknown (duplicate).
    Success(bool),
    /// Send it again (after a backoff).
    Retry,
    /// Get a new epoch, restart every partition's sequences, then retry.
    ResetAndRetry,
    /// Fail its records.
    Fail,
}

#[derive(Debug, Default)]
struct PartitionSeq {
    next: i32,
    last_acked: i32,
    in_flight: BTreeSet<i32>,
}

/// Sequence bookkeeping; `id == None` when idempotence is off.
#[derive(Debug, Default)]
pub(crate) struct Idempotence {
    pub id: Option<ProducerId>,
    seqs: crate::fast_hash::FastMap<TopicPartition, PartitionSeq>,
    /// An epoch bump is needed: nothing is drained until it is done.
    pub reset_pending: bool,
}

fn wrap_add(seq: i32, n: i32) -> i32 {
    // Sequences wrap from i32::MAX to 0, as in Kafka's DefaultRecordBatch.
    let sum = i64::from(seq) + i64::from(n);
    i32::try_from(sum % (i64::from(i32::MAX) + 1)).unwrap_or(0)
}

impl Idempotence {
    /// Bookkeeping for producer `id` (`None`: idempotence off).
    pub fn new(id: Option<ProducerId>) -> Self {
        Idempotence {
            id,
            ..Default::default()
        }
    }

    fn seq(&mut self, tp: &TopicPartition) -> &mut PartitionSeq {
        self.seqs.entry(tp.clone()).or_insert_with(|| PartitionSeq {
            last_acked: -1,
            ..Default::default()
        })
    }

    /// Whether `batch` may be sent now without reordering its partition.
    pub fn may_send(&mut self, batch: &Batch) -> bool {
        if self.id.is_none() {
            return true;
        }
        if self.reset_pending {
            return false;
        }
        let s = self.seq(&batch.tp);
        // See the module doc: one at a time until the broker knows us.
        let limit = if s.last_acked < 0 {
            1
        } else {
            MAX_IN_FLIGHT_PER_PARTITION
        };
        match batch.sequence {
            Some(_) => s.in_flight.is_empty(),
            None => s.in_flight.len() < limit,
        }
    }

    /// Give `batch` its sequence on its first drain, and note it in flight.
    pub fn on_send(&mut self, batch: &mut Batch) {
        let Some(id) = self.id else { return };
        let count = batch.record_count();
        let s = self.seq(&batch.tp);
        let seq = *batch.sequence.get_or_insert_with(|| {
            let base = s.next;
            s.next = wrap_add(base, count);
            Sequence {
                producer_id: id.id,
                epoch: id.epoch,
                base,
            }
        });
        s.in_flight.insert(seq.base);
    }

    /// The answer for `batch` arrived (or its request failed): judge it.
    pub fn on_answer(&mut self, batch: &Batch, code: ErrorCode, log_start_offset: i64) -> Verdict {
        let Some(seq) = batch.sequence.filter(|_| self.id.is_some()) else {
            return plain(code);
        };
        let count = batch.record_count();
        let s = self.seq(&batch.tp);
        s.in_flight.remove(&seq.base);
        let ok = |s: &mut PartitionSeq| {
            let last = wrap_add(seq.base, count - 1);
            // Acks arrive in order; a late duplicate of an older batch must
            // not move it back (a drop of 2^30 means the sequence wrapped).
            if s.last_acked < 0 || last > s.last_acked || s.last_acked - last > (1 << 30) {
                s.last_acked = last;
            }
        };
        let is_next = wrap_add(s.last_acked, 1) == seq.base;
        match code {
            ErrorCode::NONE => {
                ok(s);
                Verdict::Success(true)
            }
            ErrorCode::DUPLICATE_SEQUENCE_NUMBER => {
                ok(s);
                Verdict::Success(false)
            }
            ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER if !is_next && !self.reset_pending => {
                Verdict::Retry
            }
            ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER => self.request_reset(),
            ErrorCode::UNKNOWN_PRODUCER_ID if log_start_offset == -1 => Verdict::Retry,
            ErrorCode::UNKNOWN_PRODUCER_ID | ErrorCode::INVALID_PRODUCER_EPOCH => {
                self.request_reset()
            }
            other => plain(other),
        }
    }

    /// The request carrying `batch` failed as a whole (disconnect, timeout).
    pub fn on_transport_error(&mut self, batch: &Batch) {
        if let Some(seq) = batch.sequence {
            self.seq(&batch.tp).in_flight.remove(&seq.base);
        }
    }

    /// A batch that had a sequence is given up (failed or expired): the
    /// broker will see a gap, so sequences must restart under a new epoch.
    pub fn on_abandon(&mut self, batch: &Batch) {
        if self.id.is_some() && batch.sequence.is_some() {
            self.reset_pending = true;
        }
    }

    fn request_reset(&mut self) -> Verdict {
        self.reset_pending = true;
        Verdict::ResetAndRetry
    }

    /// A new id or epoch arrived: every partition starts again at 0.
    pub fn reset(&mut self, id: ProducerId) {
        self.id = Some(id);
        self.seqs.clear();
        self.reset_pending = false;
    }
}

/// The verdict without idempotence: retriable codes are retried.
fn plain(code: ErrorCode) -> Verdict {
    if code.is_ok() {
        Verdict::Success(true)
    } else if code.is_retriable() {
        Verdict::Retry
    } else {
        Verdict::Fail
    }
}

/// Ask any broker for a producer id (or, with `current` and InitProducerId
/// v3+, for a bumped epoch of it, KIP-360). `Ok(None)` when the broker does
/// not support InitProducerId.
pub(crate) async fn init_producer_id(
    pool: &Pool,
    current: Option<ProducerId>,
) -> Result<Option<ProducerId>, NetError> {
    pool.config()
        .retry
        .run(
            ApiKey::InitProducerId,
            |_| async {
                let conn = pool.any_connection().await?;
                let version = match conn.negotiate(
                    ApiKey::InitProducerId,
                    InitProducerIdRequest::VALID_VERSIONS,
                ) {
                    Ok(v) => v,
                    Err(NetError::UnsupportedVersion { .. }) => return Ok(None),
                    Err(e) => return Err(e),
                };
                let (producer_id, producer_epoch) = match current {
                    Some(c) if version >= 3 => (c.id, c.epoch),
                    _ => (-1, -1),
                };
                let req = InitProducerIdRequest {
                    transactional_id: None,
                    // What the Java client sends for a non-transactional producer.
                    transaction_timeout_ms: i32::MAX,
                    producer_id,
                    producer_epoch,
                    ..Default::default()
                };
                let resp = conn.send_at(&req, version).await?;
                let code = ErrorCode::from(resp.error_code);
                if !code.is_ok() {
                    return Err(NetError::broker(ApiKey::InitProducerId, code, None));
                }
                Ok(Some(ProducerId {
                    id: resp.producer_id,
                    epoch: resp.producer_epoch,
                }))
            },
            |e| {
                pool.note_error(e);
            },
        )
        .await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn id() -> ProducerId {
        ProducerId { id: 7, epoch: 0 }
    }

    #[test]
    fn the_first_batch_of_a_partition_is_alone_in_flight_until_acknowledged() {
        let tp: TopicPartition = (Arc::from("t"), 0);
        let mut idem = Idempotence::new(Some(id()));
        let mut first = Batch::of_records(tp.clone(), 3);
        let mut second = Batch::of_records(tp.clone(), 2);
        assert!(idem.may_send(&first));
        idem.on_send(&mut first);
        assert!(
            !idem.may_send(&second),
            "a broker without state for the producer would take the second batch first"
        );
        // The first one fails as a new topic's leader answers before it
        // knows the topic: still nothing else goes.
        let v = idem.on_answer(&first, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, -1);
        assert_eq!(v, Verdict::Retry);
        assert!(idem.may_send(&first), "the retry goes first");
        idem.on_send(&mut first);
        assert!(!idem.may_send(&second));
        assert_eq!(
            idem.on_answer(&first, ErrorCode::NONE, 0),
            Verdict::Success(true)
        );
        // Known to the broker now: up to five in flight.
        let mut more: Vec<Batch> = (0..MAX_IN_FLIGHT_PER_PARTITION)
            .map(|_| Batch::of_records(tp.clone(), 1))
            .collect();
        assert!(idem.may_send(&second));
        idem.on_send(&mut second);
        assert_eq!(second.sequence.map(|s| s.base), Some(3));
        for b in more.iter_mut().take(MAX_IN_FLIGHT_PER_PARTITION - 1) {
            assert!(idem.may_send(b));
            idem.on_send(b);
        }
        assert!(!idem.may_send(&more[MAX_IN_FLIGHT_PER_PARTITION - 1]));
        // Another partition has its own first batch.
        let other = Batch::of_records((Arc::from("t"), 1), 1);
        assert!(idem.may_send(&other));
    }
}
