//! The rebalance listener: the application hears of partitions assigned,
//! revoked (with the chance to commit before they go) and lost (nothing may
//! be committed for them: another member may own them already).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use krust_group::{LeaveReason, OffsetAndMetadata, TopicPartition};

/// Called by [`Consumer::poll`](crate::Consumer::poll) when the group
/// changes this consumer's partitions. Every method has a default that
/// does nothing.
pub trait RebalanceListener: Send {
    /// Partitions newly assigned (their positions are not known yet).
    fn on_assigned(&mut self, partitions: &BTreeSet<TopicPartition>) {
        let _ = partitions;
    }

    /// Partitions about to be taken away while this consumer still owns
    /// them: nothing more of them is handed out, and offsets added with
    /// [`Revoke::commit`] are committed before they go. With
    /// `enable.auto.commit`, or `acknowledgement.mode=explicit`, the
    /// committable offsets are committed anyway.
    fn on_revoked(&mut self, revoke: &mut Revoke) {
        let _ = revoke;
    }

    /// Partitions lost without a revoke (session expired, fenced): they
    /// may belong to another member already, so nothing is committed.
    fn on_lost(&mut self, partitions: &BTreeSet<TopicPartition>) {
        let _ = partitions;
    }

    /// A commit the consumer made on its own (auto-commit, or the commit
    /// of revoked partitions) failed; the next auto-commit tries again.
    fn on_commit_failed(&mut self, error: &crate::ConsumerError) {
        let _ = error;
    }

    /// The consumer left the group (e.g. `max.poll.interval.ms` passed
    /// between polls; the next poll rejoins).
    fn on_left_group(&mut self, reason: LeaveReason) {
        let _ = reason;
    }
}

/// What [`RebalanceListener::on_revoked`] may see and do.
#[derive(Debug)]
pub struct Revoke {
    pub(crate) partitions: BTreeSet<TopicPartition>,
    /// The committable offset of every revoked partition that has one.
    pub(crate) committable: BTreeMap<TopicPartition, OffsetAndMetadata>,
    /// Of those, the ones this consumer committed already (not sent again
    /// by `commit_all`).
    pub(crate) unchanged: BTreeSet<TopicPartition>,
    pub(crate) commits: BTreeMap<TopicPartition, OffsetAndMetadata>,
    pub(crate) deadline: Instant,
}

impl Revoke {
    /// The partitions being revoked.
    pub fn partitions(&self) -> &BTreeSet<TopicPartition> {
        &self.partitions
    }

    /// The offset that would be committed for `tp` now (its position, or
    /// the end of its acked prefix with explicit acks), whether or not it
    /// was committed already; `None` for a partition whose position was
    /// never known.
    pub fn committable(&self, tp: &TopicPartition) -> Option<i64> {
        self.committable.get(tp).map(|o| o.offset)
    }

    /// When the group goes on without this consumer's answer.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Commit `offset` for `tp` before it goes (ignored for a partition
    /// not being revoked).
    pub fn commit(&mut self, tp: TopicPartition, offset: OffsetAndMetadata) {
        if self.partitions.contains(&tp) {
            self.commits.insert(tp, offset);
        }
    }

    /// Commit the committable offset of every revoked partition (those
    /// this consumer committed at that offset already are not sent again).
    pub fn commit_all(&mut self) {
        for (tp, o) in &self.committable {
            if !self.unchanged.contains(tp) {
                self.commits.entry(tp.clone()).or_insert_with(|| o.clone());
            }
        }
    }
}
