//! Consumer lag evaluation over a sliding window of observations, by the
//! rules Burrow defined ("Consumer Lag Evaluation Rules"), so an alert says
//! *stalled* or *falling behind* rather than "lag is 10,000":
//!
//! - a partition whose lag was zero at any point of the window is `Ok`
//!   (it keeps up; an idle partition, lag 0 throughout, is never alarmed);
//! - else, a committed offset that went back is `Rewind`;
//! - else, a committed offset that stood still over the whole window while
//!   lag stayed or grew is `Stall` while the group has members (a consumer
//!   alive but stuck) and `Stop` when it has none (nobody consumes);
//! - else, lag that never decreased over the window is `Warn` (the consumer
//!   moves, but falls behind);
//! - else `Ok`.
//!
//! Burrow reads each commit's timestamp from `__consumer_offsets` and tells
//! STALL (the same offset committed again and again) from STOP (no commit
//! for longer than the window) by them; OffsetFetch gives no timestamps, so
//! a poller cannot tell a commit of the same offset from none, and krust
//! tells them apart by whether the group has members instead.
//!
//! A group's status is its worst partition's: `Ok`, `Warn`, or `Err` for
//! any `Rewind`, `Stop` or `Stall`. Observations come from the caller (a
//! committed offset and its lag, with transaction markers already counted
//! as caught up), oldest first.
//!
//! ```
//! use krust::lag::{Observation, PartitionStatus, evaluate};
//!
//! // A consumer committing steadily, lag shrinking: fine.
//! let w: Vec<Observation> = (0..5)
//!     .map(|i| Observation { committed: 100 * i, lag: 50 - 10 * i })
//!     .collect();
//! assert_eq!(evaluate(&w, true), PartitionStatus::Ok);
//! ```

/// One look at a partition, taken every interval of the window: the
/// group's committed offset and how far behind the log end it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    /// The committed offset.
    pub committed: i64,
    /// Records between the committed offset and the log end (0 when caught
    /// up, markers included).
    pub lag: i64,
}

/// A partition's status over the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PartitionStatus {
    /// Keeping up (or idle).
    Ok,
    /// Moving, but falling behind.
    Warn,
    /// Lag but no progress: the committed offset stands still.
    Stall,
    /// No commit for longer than the window spans.
    Stop,
    /// The committed offset went back.
    Rewind,
}

/// A group's status: its worst partition's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GroupStatus {
    /// Every partition `Ok` (or no partition).
    Ok,
    /// Some partition `Warn`, none worse.
    Warn,
    /// Some partition `Stall`, `Stop` or `Rewind`.
    Err,
}

impl GroupStatus {
    /// The status of a group whose partitions have `statuses`.
    pub fn of(statuses: impl IntoIterator<Item = PartitionStatus>) -> GroupStatus {
        statuses
            .into_iter()
            .map(|s| match s {
                PartitionStatus::Ok => GroupStatus::Ok,
                PartitionStatus::Warn => GroupStatus::Warn,
                _ => GroupStatus::Err,
            })
            .max()
            .unwrap_or(GroupStatus::Ok)
    }

    /// The exit code an alerting system reads: 0 OK, 1 WARN, 2 ERR.
    pub fn exit_code(self) -> i32 {
        match self {
            GroupStatus::Ok => 0,
            GroupStatus::Warn => 1,
            GroupStatus::Err => 2,
        }
    }
}

/// The status of one partition over `window` (oldest first);
/// `members`: whether the group has members now. An empty window is `Ok`:
/// nothing says otherwise yet.
pub fn evaluate(window: &[Observation], members: bool) -> PartitionStatus {
    let (Some(first), Some(last)) = (window.first(), window.last()) else {
        return PartitionStatus::Ok;
    };
    if window.iter().any(|o| o.lag <= 0) {
        return PartitionStatus::Ok;
    }
    if window.windows(2).any(|w| w[1].committed < w[0].committed) {
        return PartitionStatus::Rewind;
    }
    if window.len() < 2 {
        return PartitionStatus::Ok;
    }
    let lag_not_decreasing = window.windows(2).all(|w| w[1].lag >= w[0].lag);
    if first.committed == last.committed && lag_not_decreasing {
        return if members {
            PartitionStatus::Stall
        } else {
            PartitionStatus::Stop
        };
    }
    if lag_not_decreasing {
        return PartitionStatus::Warn;
    }
    PartitionStatus::Ok
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A window of `(committed, lag)` observations.
    fn window(points: &[(i64, i64)]) -> Vec<Observation> {
        points
            .iter()
            .map(|&(committed, lag)| Observation { committed, lag })
            .collect()
    }

    #[test]
    fn catching_up_is_ok() {
        let w = window(&[(100, 50), (140, 40), (180, 30), (220, 20), (260, 10)]);
        assert_eq!(evaluate(&w, true), PartitionStatus::Ok);
    }

    #[test]
    fn a_zero_lag_anywhere_in_the_window_is_ok() {
        let w = window(&[(100, 0), (100, 5), (110, 9), (120, 12), (130, 20)]);
        assert_eq!(evaluate(&w, true), PartitionStatus::Ok);
    }

    #[test]
    fn an_idle_partition_is_never_alarmed() {
        // Nothing produced, nothing committed, nobody in the group.
        let w = window(&[(500, 0), (500, 0), (500, 0), (500, 0)]);
        assert_eq!(evaluate(&w, false), PartitionStatus::Ok);
        assert_eq!(evaluate(&w, true), PartitionStatus::Ok);
    }

    #[test]
    fn a_committed_offset_behind_only_a_marker_is_ok() {
        // Committed at 500, the high watermark 501 because of a commit
        // marker: the lag the caller passes is 0 (Admin::groups_lag reads
        // the marker), so the standing offset is no alarm. Counted as lag
        // 1, as a watermark difference alone would, the same window would
        // be STALL.
        let corrected = window(&[(500, 0), (500, 0), (500, 0), (500, 0)]);
        assert_eq!(evaluate(&corrected, true), PartitionStatus::Ok);
        let raw = window(&[(500, 1), (500, 1), (500, 1), (500, 1)]);
        assert_eq!(evaluate(&raw, true), PartitionStatus::Stall);
    }

    #[test]
    fn moving_but_falling_behind_warns() {
        let w = window(&[(100, 10), (110, 20), (120, 20), (130, 35), (140, 50)]);
        assert_eq!(evaluate(&w, true), PartitionStatus::Warn);
    }

    #[test]
    fn standing_still_with_lag_stalls_while_members_are_in() {
        let w = window(&[(100, 10), (100, 10), (100, 15), (100, 15), (100, 30)]);
        assert_eq!(evaluate(&w, true), PartitionStatus::Stall);
    }

    #[test]
    fn standing_still_with_lag_and_nobody_in_the_group_stops() {
        let w = window(&[(100, 10), (100, 10), (100, 15), (100, 15), (100, 30)]);
        assert_eq!(evaluate(&w, false), PartitionStatus::Stop);
    }

    #[test]
    fn a_committed_offset_going_back_rewinds() {
        let w = window(&[(100, 10), (120, 12), (90, 45), (110, 30), (130, 20)]);
        assert_eq!(evaluate(&w, true), PartitionStatus::Rewind);
    }

    #[test]
    fn one_observation_says_nothing_yet() {
        assert_eq!(evaluate(&window(&[(100, 10)]), true), PartitionStatus::Ok);
        assert_eq!(evaluate(&[], false), PartitionStatus::Ok);
    }

    #[test]
    fn the_group_is_its_worst_partition() {
        use PartitionStatus::*;
        assert_eq!(GroupStatus::of([]), GroupStatus::Ok);
        assert_eq!(GroupStatus::of([Ok, Ok]), GroupStatus::Ok);
        assert_eq!(GroupStatus::of([Ok, Warn]), GroupStatus::Warn);
        for bad in [Stall, Stop, Rewind] {
            assert_eq!(GroupStatus::of([Warn, bad, Ok]), GroupStatus::Err);
        }
        assert_eq!(
            [GroupStatus::Ok, GroupStatus::Warn, GroupStatus::Err].map(GroupStatus::exit_code),
            [0, 1, 2]
        );
    }
}
