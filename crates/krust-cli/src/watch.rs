//! What `krust lag watch` and `krust lag serve` share: a sliding window of
//! observations per group and partition, taken every interval with
//! `Admin::groups_lag`, and Burrow's evaluation of each window
//! (`krust::lag`, docs/ARCHITECTURE.md "Operating offsets").

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use krust::admin::{Admin, GroupFilter, GroupLag, PartitionLag};
use krust::group::TopicPartition;
use krust::lag::{GroupStatus, Observation, PartitionStatus, evaluate};
use krust::net::Error;

/// One partition's state after an observation.
#[derive(Debug, Clone)]
pub struct PartitionView {
    /// The latest observation.
    pub lag: PartitionLag,
    /// Its status over the window.
    pub status: PartitionStatus,
    /// The lags of the window, oldest first.
    pub window: Vec<i64>,
    /// How long since the committed offset was last seen to move (at least
    /// since watching began: OffsetFetch carries no commit times).
    pub moved_ago: Duration,
}

/// One group's state after an observation.
#[derive(Debug, Clone)]
pub struct GroupView {
    /// The group id.
    pub group: String,
    /// Its state (`Dead` when the coordinator knows no such group).
    pub state: String,
    /// How many members it has.
    pub members: usize,
    /// Its worst partition's status.
    pub status: GroupStatus,
    /// Its partitions, sorted.
    pub partitions: Vec<PartitionView>,
}

/// Every group's state after one round, or why a group could not be seen.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The groups seen, sorted.
    pub groups: Vec<GroupView>,
    /// Groups whose observation failed this round, with the error.
    pub failed: Vec<(String, String)>,
}

impl Snapshot {
    /// The status over every group (`Err` if any group failed to answer).
    pub fn status(&self) -> GroupStatus {
        let worst = self
            .groups
            .iter()
            .map(|g| g.status)
            .max()
            .unwrap_or(GroupStatus::Ok);
        if self.failed.is_empty() {
            worst
        } else {
            GroupStatus::Err
        }
    }
}

/// A partition's window and when its committed offset last moved.
#[derive(Debug)]
struct Track {
    window: VecDeque<Observation>,
    moved_at: Instant,
}

/// Windows of observations for the watched groups.
#[derive(Debug)]
pub struct Watcher {
    /// The groups named; empty: every consumer group of the cluster.
    groups: Vec<String>,
    /// Observations kept per partition.
    size: usize,
    tracks: BTreeMap<(String, TopicPartition), Track>,
}

impl Watcher {
    /// Watch `groups` (none: every consumer group) with windows of `size`.
    pub fn new(groups: Vec<String>, size: usize) -> Watcher {
        Watcher {
            groups,
            size: size.max(1),
            tracks: BTreeMap::new(),
        }
    }

    /// The groups to observe this round.
    async fn names(&self, admin: &Admin) -> Result<Vec<String>, Error> {
        if !self.groups.is_empty() {
            return Ok(self.groups.clone());
        }
        Ok(admin
            .list_groups(&GroupFilter::default())
            .await?
            .into_iter()
            .filter(|g| g.protocol_type == "consumer" || g.protocol_type.is_empty())
            .map(|g| g.group_id)
            .collect())
    }

    /// Observe every group once and evaluate the windows. An error that
    /// stops the whole round (no broker answers) is returned; a group's own
    /// error is in [`Snapshot::failed`].
    pub async fn observe(&mut self, admin: &Admin) -> Result<Snapshot, Error> {
        let names = self.names(admin).await?;
        let asked: Vec<&str> = names.iter().map(String::as_str).collect();
        let results = admin.groups_lag(&asked).await?;
        let now = Instant::now();
        let mut snapshot = Snapshot::default();
        let mut seen: BTreeSet<(String, TopicPartition)> = BTreeSet::new();
        for (group, r) in results {
            match r {
                Ok(g) => snapshot.groups.push(self.record(&g, now, &mut seen)),
                Err(e) => snapshot.failed.push((group, crate::describe(&e))),
            }
        }
        // Partitions no longer committed or held start afresh if they
        // come back.
        self.tracks.retain(|k, _| seen.contains(k));
        Ok(snapshot)
    }

    fn record(
        &mut self,
        g: &GroupLag,
        now: Instant,
        seen: &mut BTreeSet<(String, TopicPartition)>,
    ) -> GroupView {
        let members = g.description.as_ref().map_or(0, |d| d.members.len());
        let mut partitions = Vec::with_capacity(g.partitions.len());
        for p in &g.partitions {
            let key = (g.group_id.clone(), p.partition.clone());
            seen.insert(key.clone());
            // Never committed: the position is the log start.
            let committed = p.committed.unwrap_or(p.log_start);
            let track = self.tracks.entry(key).or_insert_with(|| Track {
                window: VecDeque::new(),
                moved_at: now,
            });
            if track
                .window
                .back()
                .is_some_and(|o| o.committed != committed)
            {
                track.moved_at = now;
            }
            track.window.push_back(Observation {
                committed,
                lag: p.lag,
            });
            while track.window.len() > self.size {
                track.window.pop_front();
            }
            let window: Vec<Observation> = track.window.iter().copied().collect();
            partitions.push(PartitionView {
                lag: p.clone(),
                status: evaluate(&window, members > 0),
                window: window.iter().map(|o| o.lag).collect(),
                moved_ago: now.duration_since(track.moved_at),
            });
        }
        GroupView {
            group: g.group_id.clone(),
            state: g
                .description
                .as_ref()
                .map_or_else(|| "Dead".to_owned(), |d| d.state.clone()),
            members,
            status: GroupStatus::of(partitions.iter().map(|p| p.status)),
            partitions,
        }
    }
}

/// The name people and Burrow use for a partition status.
pub fn partition_status_name(s: PartitionStatus) -> &'static str {
    match s {
        PartitionStatus::Ok => "OK",
        PartitionStatus::Warn => "WARN",
        PartitionStatus::Stall => "STALL",
        PartitionStatus::Stop => "STOP",
        PartitionStatus::Rewind => "REWIND",
    }
}

/// The name of a group status.
pub fn group_status_name(s: GroupStatus) -> &'static str {
    match s {
        GroupStatus::Ok => "OK",
        GroupStatus::Warn => "WARN",
        GroupStatus::Err => "ERR",
    }
}

/// A sparkline of `values`, scaled to their maximum: one of eight bars
/// per value, `·` for zero.
pub fn sparkline(values: &[i64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = values.iter().copied().max().unwrap_or(0);
    values
        .iter()
        .map(|&v| {
            if v <= 0 || max <= 0 {
                '·'
            } else {
                // 1..=max onto 0..=7, max itself the full bar.
                let i = (v.saturating_mul(8) - 1) / max;
                BARS[usize::try_from(i.clamp(0, 7)).unwrap_or(7)]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sparkline_scales_to_its_largest_value() {
        assert_eq!(sparkline(&[0, 1, 4, 8]), "·▁▄█");
        assert_eq!(sparkline(&[0, 0]), "··");
        assert_eq!(sparkline(&[5, 5]), "██");
        assert_eq!(sparkline(&[]), "");
    }
}
