//! Per-record acknowledgements (docs/ARCHITECTURE.md, "Offset semantics"): records
//! handed out can be acked in any order and the committable offset of a
//! partition is the offset of its first unacked record, or the position
//! when every record handed out is acked. No gap is ever committed.
//!
//! One [`AckCell`] per partition and assignment: revoking, losing or
//! seeking a partition replaces its cell, so acks of records handed out
//! before land in a cell nobody reads any more (a stale ack is never
//! committed, franz-go #689).
//!
//! The ledger holds one entry per record from the first unacked one to the
//! last handed out, acked or not (the prefix can only move past acked
//! records). Its length is bounded by `max.unacked.records.per.partition`:
//! the consumer hands a partition out only while the ledger has
//! [`room`](AckCell::room), so one record never acked stops that partition
//! after a window of records instead of growing the ledger by 16 bytes
//! with every later record.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// The acks of one partition during one assignment.
#[derive(Debug)]
pub(crate) struct AckCell {
    inner: Mutex<Pending>,
    /// Woken on every ack that completes a prefix, and when the last ack
    /// handle goes (revocation waits on it).
    progress: Arc<Notify>,
    /// Ack handles alive: records handed out that still carry theirs, and
    /// `AckHandle`s. None alive means no ack can come any more.
    handles: AtomicUsize,
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
            handles: AtomicUsize::new(0),
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

    /// How many more records may be handed out with a ledger of at most
    /// `window` entries.
    pub(crate) fn room(&self, window: usize) -> usize {
        window.saturating_sub(self.lock().offsets.len())
    }

    /// Records from `offset` on were not given to the application after
    /// all (a dropped stream gives back what it had not yielded): forget
    /// them, they will be handed out again.
    pub(crate) fn take_back(&self, offset: i64) {
        let mut p = self.lock();
        while p.offsets.back().is_some_and(|(o, _)| *o >= offset) {
            p.offsets.pop_back();
        }
    }

    /// The offset to commit given the partition's position (the next
    /// offset to hand out): the first unacked record, or the position.
    pub(crate) fn committable(&self, position: i64) -> i64 {
        self.lock().offsets.front().map_or(position, |(o, _)| *o)
    }

    /// How many records the ledger holds: from the first unacked one to
    /// the last handed out, acked or not (what the window bounds).
    pub(crate) fn outstanding(&self) -> usize {
        self.lock().offsets.len()
    }

    /// Whether records handed out wait for acks that cannot come: every
    /// ack handle is gone.
    pub(crate) fn acks_lost(&self) -> bool {
        !self.settled() && self.handles.load(Ordering::Acquire) == 0
    }

    /// Whether every record handed out was acked.
    pub(crate) fn settled(&self) -> bool {
        self.lock().offsets.is_empty()
    }

    /// Whether waiting for acks is over: every record handed out was
    /// acked, or no ack handle is alive to ack the rest (the application
    /// dropped those records unacked: their prefix stays where it is).
    pub(crate) fn nothing_to_wait_for(&self) -> bool {
        self.settled() || self.handles.load(Ordering::Acquire) == 0
    }

    pub(crate) fn handle_created(&self) {
        self.handles.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn handle_dropped(&self) {
        // Exactly one drop sees the count go from 1 to 0.
        if self.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.progress.notify_waiters();
        }
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

    #[test]
    fn no_handle_alive_means_nothing_to_wait_for() {
        let c = cell();
        c.handed_out([0, 1]);
        c.handle_created();
        c.handle_created();
        assert!(!c.nothing_to_wait_for());
        c.handle_dropped();
        assert!(!c.nothing_to_wait_for(), "one handle is still alive");
        c.handle_dropped();
        assert!(c.nothing_to_wait_for());
        assert!(!c.settled(), "dropped unacked: the prefix stays");
        assert_eq!(c.committable(2), 0);
    }

    #[test]
    fn taken_back_records_leave_the_ledger() {
        let c = cell();
        c.handed_out([0, 1, 2, 3]);
        c.ack(0);
        c.take_back(2);
        assert_eq!(c.committable(2), 1);
        assert_eq!(c.room(3), 2);
        c.ack(1);
        assert!(c.settled());
        assert_eq!(c.committable(2), 2);
    }

    proptest! {
        /// Handing out only while there is room keeps the ledger, and the
        /// memory behind it, within the window whatever is acked, however
        /// long one record stays unacked; the committable offset never
        /// passes an unacked record.
        #[test]
        fn the_ledger_stays_within_its_window(
            window in 1usize..64,
            ops in proptest::collection::vec((0u8..4, any::<u16>()), 1..400),
        ) {
            let c = cell();
            let mut next = 0i64;
            let mut unacked = std::collections::BTreeSet::new();
            for (op, n) in ops {
                match op {
                    // Hand out up to n records, as much as the room allows.
                    0 | 1 => {
                        let k = usize::from(n % 8).min(c.room(window));
                        let offs: Vec<i64> = (next..next + k as i64).collect();
                        next += k as i64;
                        unacked.extend(offs.iter().copied());
                        c.handed_out(offs);
                    }
                    // Ack an unacked record other than the oldest (when
                    // there are others): the gap at the oldest stays until
                    // an op 3 acks it.
                    2 => {
                        let skip_first = unacked.len() > 1;
                        let pick = unacked
                            .iter()
                            .copied()
                            .skip(usize::from(skip_first))
                            .nth(usize::from(n) % unacked.len().max(1));
                        if let Some(o) = pick {
                            c.ack(o);
                            unacked.remove(&o);
                        }
                    }
                    _ => {
                        if let Some(o) = unacked.iter().next().copied() {
                            c.ack(o);
                            unacked.remove(&o);
                        }
                    }
                }
                let p = c.lock();
                prop_assert!(p.offsets.len() <= window, "{} entries, window {window}", p.offsets.len());
                prop_assert!(
                    p.offsets.capacity() <= (2 * window).max(8),
                    "capacity {} for window {window}",
                    p.offsets.capacity()
                );
                drop(p);
                let at = c.committable(next);
                prop_assert_eq!(at, unacked.iter().next().copied().unwrap_or(next));
            }
        }

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
