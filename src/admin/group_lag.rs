//! Where a group stands, partition by partition: its committed offset, the
//! log start, high watermark and last stable offset, the lag in records,
//! and the lag in time (how old the record at the committed offset is).
//! A partition the group holds but never committed shows its lag from the
//! log start, and says so. Records between the committed offset and the
//! high watermark that are only transaction markers count as caught up.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use krust_codec::generated::FetchRequest;
use krust_codec::generated::fetch_request::{FetchPartition, FetchTopic};
use krust_codec::records::Batches;
use krust_codec::{ApiKey, ErrorCode, KString};
use krust_consumer::IsolationLevel;
use krust_group::TopicPartition;
use krust_net::{Connection, Error};

use super::{Admin, GroupDescription, OffsetSpec};

/// What the bounded look at the record at a position reads per partition.
const PEEK_BYTES: i32 = 64 * 1024;
/// And per request (one per leader).
const PEEK_TOTAL: i32 = 4 * 1024 * 1024;

/// One partition of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// The partition.
    pub partition: TopicPartition,
    /// The group's committed offset; `None`: it never committed here, and
    /// the lag is counted from the log start.
    pub committed: Option<i64>,
    /// The first offset still in the log.
    pub log_start: i64,
    /// The high watermark (the log end a consumer can read).
    pub high_watermark: i64,
    /// The last stable offset (the end a `read_committed` consumer reads).
    pub last_stable: i64,
    /// Records from the committed offset (or the log start) to the high
    /// watermark; 0 when only transaction markers lie between.
    pub lag: i64,
    /// How far behind in time: now minus the timestamp of the first record
    /// at or after the committed offset; 0 when caught up; `None` when it
    /// could not be read (a batch larger than the bounded look).
    pub lag_ms: Option<i64>,
    /// The member holding it: (member id, client id, host).
    pub member: Option<(String, String, String)>,
}

/// Where one group stands: what describing it says and each partition's lag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLag {
    /// The group id.
    pub group_id: String,
    /// Its state and members; `None` when the coordinator knows no such
    /// group (it may still have committed offsets).
    pub description: Option<GroupDescription>,
    /// Every partition it committed or holds, sorted.
    pub partitions: Vec<PartitionLag>,
}

impl Admin {
    /// Every partition `group` committed or holds, sorted: see
    /// [`Admin::groups_lag`].
    pub async fn group_lag(&self, group: &str) -> Result<Vec<PartitionLag>, Error> {
        match self.groups_lag(&[group]).await?.pop() {
            Some((_, r)) => r.map(|g| g.partitions),
            None => Ok(Vec::new()),
        }
    }

    /// Where each of `groups` stands, in request order: the groups are
    /// described and their offsets fetched per coordinator, then
    /// ListOffsets for the log start, high watermark and last stable offset
    /// of all their partitions at once (one request per leader each), and
    /// one bounded Fetch per leader and group ([`PEEK_BYTES`] a partition)
    /// for the record at each lagging position. A group whose description
    /// or offsets fail has that error in its own result.
    pub async fn groups_lag(
        &self,
        groups: &[&str],
    ) -> Result<Vec<(String, Result<GroupLag, Error>)>, Error> {
        let described = self.describe_groups(groups).await?;
        let offsets = self.list_group_offsets(groups).await?;
        let mut out = Vec::with_capacity(groups.len());
        let mut all: BTreeSet<TopicPartition> = BTreeSet::new();
        for ((group, d), (_, o)) in described.into_iter().zip(offsets) {
            let description = match d {
                Ok(d) => Some(d),
                Err(e) if e.code() == Some(ErrorCode::GROUP_ID_NOT_FOUND) => None,
                Err(e) => {
                    out.push((group, Err(e)));
                    continue;
                }
            };
            let committed = match o {
                Ok(o) => o,
                Err(e) => {
                    out.push((group, Err(e)));
                    continue;
                }
            };
            let mut members: BTreeMap<TopicPartition, (String, String, String)> = BTreeMap::new();
            for m in description.iter().flat_map(|d| &d.members) {
                for tp in &m.assignment {
                    let who = (m.member_id.clone(), m.client_id.clone(), m.host.clone());
                    members.insert(tp.clone(), who);
                }
            }
            let partitions: Vec<PartitionLag> = committed
                .keys()
                .chain(members.keys())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .map(|tp| PartitionLag {
                    partition: tp.clone(),
                    committed: committed.get(tp).map(|o| o.offset),
                    log_start: 0,
                    high_watermark: 0,
                    last_stable: 0,
                    lag: 0,
                    lag_ms: Some(0),
                    member: members.get(tp).cloned(),
                })
                .collect();
            all.extend(partitions.iter().map(|p| p.partition.clone()));
            let lag = GroupLag {
                group_id: group.clone(),
                description,
                partitions,
            };
            out.push((group, Ok(lag)));
        }
        if all.is_empty() {
            return Ok(out);
        }
        let marks = self.log_marks(&all).await?;
        for (_, lag) in &mut out {
            let Ok(lag) = lag else { continue };
            for p in &mut lag.partitions {
                let (start, end, stable) = marks[&p.partition];
                let from = p.committed.unwrap_or(start).max(start);
                p.log_start = start;
                p.high_watermark = end;
                p.last_stable = stable;
                p.lag = (end - from).max(0);
            }
            self.peek(&mut lag.partitions).await?;
        }
        Ok(out)
    }

    /// Each partition's log start, high watermark and last stable offset.
    async fn log_marks(
        &self,
        partitions: &BTreeSet<TopicPartition>,
    ) -> Result<BTreeMap<TopicPartition, (i64, i64, i64)>, Error> {
        let ask = |spec: OffsetSpec| -> Vec<(&str, i32, OffsetSpec)> {
            partitions
                .iter()
                .map(|tp| (tp.topic.as_str(), tp.partition, spec))
                .collect()
        };
        let starts = self.list_offsets(&ask(OffsetSpec::Earliest)).await?;
        let ends = self.list_offsets(&ask(OffsetSpec::Latest)).await?;
        let stables = krust_consumer::list_offsets(
            &self.pool,
            &ask(OffsetSpec::Latest),
            IsolationLevel::ReadCommitted,
            &self.retry,
        )
        .await?;
        Ok(partitions
            .iter()
            .zip(starts.iter().zip(ends.iter().zip(&stables)))
            .map(|(tp, (s, (e, l)))| {
                // `None` is only for a timestamp no record reaches; Earliest
                // and Latest always have an offset.
                let (start, end) = (s.offset.unwrap_or(0), e.offset.unwrap_or(0));
                (tp.clone(), (start, end, l.offset.unwrap_or(end)))
            })
            .collect())
    }

    /// Read the record at each lagging position: its age is the lag in
    /// time; only markers up to the high watermark mean caught up.
    async fn peek(&self, lags: &mut [PartitionLag]) -> Result<(), Error> {
        let mut by_leader: BTreeMap<String, (Connection, Vec<usize>)> = BTreeMap::new();
        for (i, l) in lags.iter().enumerate().filter(|(_, l)| l.lag > 0) {
            let (conn, _) = self
                .pool
                .leader_connection(&l.partition.topic, l.partition.partition)
                .await?;
            by_leader
                .entry(conn.addr().to_owned())
                .or_insert_with(|| (conn, Vec::new()))
                .1
                .push(i);
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        for (conn, idx) in by_leader.into_values() {
            let v = conn.negotiate(ApiKey::Fetch, (4, 12))?;
            let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
            for &i in &idx {
                let l = &lags[i];
                topics
                    .entry(l.partition.topic.as_str())
                    .or_default()
                    .push(FetchPartition {
                        partition: l.partition.partition,
                        current_leader_epoch: -1,
                        fetch_offset: l.high_watermark - l.lag,
                        log_start_offset: -1,
                        partition_max_bytes: PEEK_BYTES,
                        ..Default::default()
                    });
            }
            let req = FetchRequest {
                replica_id: -1,
                max_wait_ms: 0,
                min_bytes: 0,
                max_bytes: PEEK_TOTAL,
                session_epoch: -1,
                topics: topics
                    .into_iter()
                    .map(|(t, partitions)| FetchTopic {
                        topic: KString::from(t),
                        partitions,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            };
            let resp = conn.send_at(&req, v).await?;
            for t in resp.responses {
                for p in t.partitions {
                    let Some(l) = lags.iter_mut().find(|l| {
                        l.partition.topic == t.topic.as_str()
                            && l.partition.partition == p.partition_index
                    }) else {
                        continue;
                    };
                    if !ErrorCode::from(p.error_code).is_ok() {
                        l.lag_ms = None;
                        continue;
                    }
                    let from = l.high_watermark - l.lag;
                    let batches = Batches::new(p.records.unwrap_or_default());
                    match first_record(batches, from, l.high_watermark) {
                        Peek::Record(ts) => l.lag_ms = Some((now - ts).max(0)),
                        Peek::OnlyMarkers => {
                            l.lag = 0;
                            l.lag_ms = Some(0);
                        }
                        Peek::Unknown => l.lag_ms = None,
                    }
                }
            }
        }
        Ok(())
    }
}

/// What lies at a position.
#[derive(Debug, PartialEq, Eq)]
enum Peek {
    /// A data record: its timestamp.
    Record(i64),
    /// Only control records up to the high watermark.
    OnlyMarkers,
    /// Nothing readable (a batch beyond the bounded look, or undecodable).
    Unknown,
}

/// The first data record at or after `from` in `records`, or whether only
/// markers reach `end`.
fn first_record(batches: Batches, from: i64, end: i64) -> Peek {
    let mut reached = from;
    for batch in batches {
        let Ok(batch) = batch else {
            return Peek::Unknown;
        };
        if batch.is_control() {
            reached = reached.max(batch.next_offset());
            continue;
        }
        let Ok(records) = batch.records() else {
            return Peek::Unknown;
        };
        for r in records.flatten() {
            if r.offset >= from {
                return Peek::Record(r.timestamp);
            }
        }
        reached = reached.max(batch.next_offset());
    }
    if reached >= end {
        Peek::OnlyMarkers
    } else {
        Peek::Unknown
    }
}

#[cfg(test)]
mod tests {
    use krust_codec::records::{NewRecord, RecordBatchBuilder};

    use super::*;

    /// A batch at `base` of `n` records, timestamps 1000, 1001, ...; a
    /// control batch (a transaction marker) when `control`.
    fn batch(base: i64, n: usize, control: bool) -> Vec<u8> {
        let mut b = RecordBatchBuilder::new()
            .base_offset(base)
            .transactional(control)
            .control(control);
        for i in 0..n {
            let ts = 1000 + i64::try_from(i).expect("small");
            b.append(&NewRecord {
                timestamp: ts,
                value: Some(b"v"),
                ..NewRecord::default()
            })
            .expect("append");
        }
        b.build().expect("build").to_vec()
    }

    fn peek(parts: &[Vec<u8>], from: i64, end: i64) -> Peek {
        let bytes = krust_codec::records::Batches::new(parts.concat().into());
        first_record(bytes, from, end)
    }

    #[test]
    fn the_first_record_at_the_position_gives_the_time() {
        // A batch 0..4 read from 2: record 2's timestamp.
        assert_eq!(peek(&[batch(0, 4, false)], 2, 10), Peek::Record(1002));
    }

    #[test]
    fn only_a_marker_before_the_end_is_caught_up() {
        // A commit marker at 5, the high watermark 6: nothing to read.
        assert_eq!(peek(&[batch(5, 1, true)], 5, 6), Peek::OnlyMarkers);
        // A marker, then data: the data's time.
        assert_eq!(
            peek(&[batch(5, 1, true), batch(6, 2, false)], 5, 8),
            Peek::Record(1000)
        );
    }

    #[test]
    fn nothing_read_is_unknown_not_caught_up() {
        assert_eq!(peek(&[], 5, 9), Peek::Unknown);
        // A marker that does not reach the high watermark.
        assert_eq!(peek(&[batch(5, 1, true)], 5, 9), Peek::Unknown);
    }
}
