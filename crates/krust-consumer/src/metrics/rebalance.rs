//! When a rebalance starts and ends, read off the membership's snapshots
//! (every change the group task publishes; see `REBALANCES` and
//! `REBALANCE_LATENCY` for what counts). Sans-io: the watcher task feeds
//! it each snapshot with the time it saw it.

use std::time::{Duration, Instant};

use krust_group::membership::State;

/// Where a member's rebalance stands, from its snapshots.
#[derive(Debug, Default)]
pub(crate) struct RebalanceClock {
    /// When the rebalance in progress started (first seen rejoining).
    started: Option<Instant>,
    /// The generation (KIP-848: member epoch) the member was last stable
    /// in.
    stable_in: Option<i32>,
}

/// A rebalance that completed, and how long it took when its start was
/// seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Completed(pub Option<Duration>);

impl RebalanceClock {
    /// The member is in `state` with `generation` at `now`.
    pub(crate) fn observe(
        &mut self,
        state: State,
        generation: i32,
        now: Instant,
    ) -> Option<Completed> {
        match state {
            State::Stable => {
                if self.stable_in == Some(generation) {
                    // Back from a coordinator lookup, or a KIP-848 revoke
                    // whose new epoch comes with the next heartbeat: the
                    // rebalance (if any) goes on.
                    return None;
                }
                self.stable_in = Some(generation);
                let took = self
                    .started
                    .take()
                    .map(|t| now.saturating_duration_since(t));
                Some(Completed(took))
            }
            State::Revoking | State::Joining | State::Assigning | State::Syncing => {
                self.started.get_or_insert(now);
                None
            }
            // Looking up a coordinator is neither: a rebalance in progress
            // goes on through it, a stable member may come back to the
            // same generation.
            State::FindingCoordinator => None,
            // Out of the group: whatever was in progress did not complete.
            State::Unjoined | State::Leaving | State::Left | State::Fatal => {
                self.started = None;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn the_first_join_counts_from_the_join_group() {
        let t = Instant::now();
        let mut c = RebalanceClock::default();
        assert_eq!(c.observe(State::Unjoined, -1, t), None);
        assert_eq!(c.observe(State::FindingCoordinator, -1, at(t, 5)), None);
        assert_eq!(c.observe(State::Joining, -1, at(t, 10)), None);
        assert_eq!(c.observe(State::Syncing, 1, at(t, 60)), None);
        assert_eq!(
            c.observe(State::Stable, 1, at(t, 80)),
            Some(Completed(Some(Duration::from_millis(70))))
        );
    }

    #[test]
    fn an_eager_rebalance_counts_from_its_revoke_and_a_coordinator_move_not_at_all() {
        let t = Instant::now();
        let mut c = RebalanceClock::default();
        c.observe(State::Joining, -1, t);
        assert!(c.observe(State::Stable, 1, at(t, 10)).is_some());
        // The coordinator moved: looked up again, heartbeats resume.
        assert_eq!(c.observe(State::FindingCoordinator, 1, at(t, 20)), None);
        assert_eq!(c.observe(State::Stable, 1, at(t, 30)), None);
        // Eager: everything revoked, then rejoin; the coordinator moves
        // in the middle.
        assert_eq!(c.observe(State::Revoking, 1, at(t, 100)), None);
        assert_eq!(c.observe(State::Joining, 1, at(t, 150)), None);
        assert_eq!(c.observe(State::FindingCoordinator, 1, at(t, 160)), None);
        assert_eq!(c.observe(State::Joining, 1, at(t, 170)), None);
        assert_eq!(
            c.observe(State::Stable, 2, at(t, 400)),
            Some(Completed(Some(Duration::from_millis(300))))
        );
    }

    #[test]
    fn a_kip848_revoke_ends_with_the_next_epoch_and_an_unseen_start_has_no_time() {
        let t = Instant::now();
        let mut c = RebalanceClock::default();
        c.observe(State::Joining, -1, t);
        assert!(c.observe(State::Stable, 3, at(t, 10)).is_some());
        assert_eq!(c.observe(State::Revoking, 3, at(t, 100)), None);
        assert_eq!(c.observe(State::Stable, 3, at(t, 120)), None);
        assert_eq!(
            c.observe(State::Stable, 4, at(t, 600)),
            Some(Completed(Some(Duration::from_millis(500))))
        );
        // A new epoch with partitions added only: no start was seen.
        assert_eq!(
            c.observe(State::Stable, 5, at(t, 900)),
            Some(Completed(None))
        );
    }

    #[test]
    fn a_rebalance_cut_by_leaving_does_not_complete() {
        let t = Instant::now();
        let mut c = RebalanceClock::default();
        c.observe(State::Joining, -1, t);
        c.observe(State::Unjoined, -1, at(t, 10));
        // Rejoined later: timed from the new JoinGroup.
        c.observe(State::Joining, -1, at(t, 1000));
        assert_eq!(
            c.observe(State::Stable, 7, at(t, 1040)),
            Some(Completed(Some(Duration::from_millis(40))))
        );
    }
}
