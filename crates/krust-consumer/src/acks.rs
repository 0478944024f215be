//! Per-record acknowledgements (docs/ARCHITECTURE.md, "Offset semantics"): records
//! handed out can be acked in any order and the committable offset of a
//! partition is the offset of its first unacked record, or the position
//! when every record handed out is acked. No gap is ever committed.
//!
//! One [`AckCell`] per partition and assignment: revoking, losing or
//! seeking a partition replaces its cell, so acks of records handed out
//! before land in a cell nobody reads any more (a stale ack is never
//! committed, franz-go #689).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// The acks of one partition during one assignment.
#[derive(Debug)]
pub(crate) struct AckCell {
    inner: Mutex<Pending>,
    /// Woken on every ack that completes a prefix (revocation waits on it).
    progress: Arc<Notify>,
}

/// Offsets handed out and not yet part of the acked prefix, in order.
#[derive(Debug, Default)]
struct Pending {
    offsets: VecDeque<(i64, bool)>,
}

impl AckCell {
    pub(crate) fn new(progress: Arc<Notify>) -> Arc<AckCell> {
        Arc::new(AckCell {
            inner: Mutex::new(Pending::default()),
            progress,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding this lock cannot leave the deque torn
        // (each mutation is one call), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records at these offsets (ascending, above every earlier one) were
    /// handed out.
    pub(crate) fn handed_out(&self, offsets: impl IntoIterator<Item = i64>) {
        let mut p = self.lock();
        p.offsets.extend(offsets.into_iter().map(|o| (o, false)));
    }

    pub(crate) fn ack(&self, offset: i64) {
        let mut p = self.lock();
        let Ok(i) = p.offsets.binary_search_by_key(&offset, |(o, _)| *o) else {
            return;
        };
        p.offsets[i].1 = true;
        if i == 0 {
            while p.offsets.front().is_some_and(|(_, acked)| *acked) {
                p.offsets.pop_front();
            }
            drop(p);
            self.progress.notify_waiters();
        }
    }

    /// The offset to commit given the partition's position (the next
    /// offset to hand out): the first unacked record, or the position.
    pub(crate) fn committable(&self, position: i64) -> i64 {
        self.lock().offsets.front().map_or(position, |(o, _)| *o)
    }

    /// Whether every record handed out was acked.
    pub(crate) fn settled(&self) -> bool {
        self.lock().offsets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cell() -> Arc<AckCell> {
        AckCell::new(Arc::new(Notify::new()))
    }

    #[test]
    fn the_prefix_stops_at_the_first_unacked_record() {
        let c = cell();
        // Offsets need not be contiguous (compaction, control records).
        c.handed_out([10, 11, 13, 14]);
        assert_eq!(c.committable(15), 10);
        c.ack(11);
        c.ack(14);
        assert_eq!(c.committable(15), 10);
        c.ack(10);
        assert_eq!(c.committable(15), 13);
        c.ack(13);
        assert_eq!(c.committable(15), 15);
        assert!(c.settled());
    }

    #[test]
    fn unknown_and_repeated_acks_change_nothing() {
        let c = cell();
        c.handed_out([0, 1]);
        c.ack(7);
        c.ack(1);
        c.ack(1);
        assert_eq!(c.committable(2), 0);
        c.ack(0);
        assert_eq!(c.committable(2), 2);
        c.ack(0);
        assert_eq!(c.committable(2), 2);
    }

    proptest! {
        /// Whatever the ack order, the committable offset never passes an
        /// unacked record and reaches the position once all are acked.
        #[test]
        fn never_passes_an_unacked_record(
            gaps in proptest::collection::vec(1i64..4, 1..60),
            seed in any::<u64>(),
        ) {
            let mut offsets = Vec::new();
            let mut o = 0;
            for g in gaps { o += g; offsets.push(o); }
            let position = o + 1;
            let c = cell();
            c.handed_out(offsets.iter().copied());
            let mut shuffled = offsets.clone();
            let mut s = seed | 1;
            for i in (1..shuffled.len()).rev() {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                let j = usize::try_from(s % (i as u64 + 1)).unwrap_or(0);
                shuffled.swap(i, j);
            }
            let mut acked = std::collections::BTreeSet::new();
            for off in shuffled {
                c.ack(off);
                acked.insert(off);
                let at = c.committable(position);
                for x in &offsets {
                    if *x < at { prop_assert!(acked.contains(x), "{at} passes unacked {x}"); }
                }
                if let Some(first_unacked) = offsets.iter().find(|x| !acked.contains(x)) {
                    prop_assert_eq!(at, *first_unacked);
                }
            }
            prop_assert_eq!(c.committable(position), position);
        }
    }
}
