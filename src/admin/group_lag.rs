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

use super::{Admin, OffsetSpec};

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

impl Admin {
    /// Every partition `group` committed or holds, sorted: ListOffsets for
    /// the log start, high watermark and last stable offset (one request
    /// per leader each), and one bounded Fetch per leader
    /// ([`PEEK_BYTES`] a partition) for the record at each lagging position.
    pub async fn group_lag(&self, group: &str) -> Result<Vec<PartitionLag>, Error> {
        let mut members: BTreeMap<TopicPartition, (String, String, String)> = BTreeMap::new();
        if let Some((_, Ok(d))) = self.describe_groups(&[group]).await?.pop() {
            for m in d.members {
                for tp in m.assignment {
                    members.insert(
                        tp,
                        (m.member_id.clone(), m.client_id.clone(), m.host.clone()),
                    );
                }
            }
        }
        let committed = match self.list_group_offsets(&[group]).await?.pop() {
            Some((_, r)) => r?,
            None => BTreeMap::new(),
        };
        let partitions: BTreeSet<TopicPartition> =
            committed.keys().chain(members.keys()).cloned().collect();
        if partitions.is_empty() {
            return Ok(Vec::new());
        }
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
        let mut out: Vec<PartitionLag> = partitions
            .iter()
            .zip(starts.iter().zip(ends.iter().zip(&stables)))
            .map(|(tp, (s, (e, l)))| {
                // `None` is only for a timestamp no record reaches; Earliest
                // and Latest always have an offset.
                let (start, end) = (s.offset.unwrap_or(0), e.offset.unwrap_or(0));
                let c = committed.get(tp).map(|o| o.offset);
                let from = c.unwrap_or(start).max(start);
                PartitionLag {
                    partition: tp.clone(),
                    committed: c,
                    log_start: start,
                    high_watermark: end,
                    last_stable: l.offset.unwrap_or(end),
                    lag: (end - from).max(0),
                    lag_ms: Some(0),
                    member: members.get(tp).cloned(),
                }
            })
            .collect();
        self.peek(&mut out).await?;
        Ok(out)
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
