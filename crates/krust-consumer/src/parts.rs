//! The state of each assigned partition: where the application is
//! (position), what was prefetched and not yet handed out, the high
//! watermark seen in fetch responses (lag), pause, and the acks of what
//! was handed out; handing records out (within each partition's ack
//! window) and taking back what a dropped stream did not yield.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use krust_group::TopicPartition;
use tokio::sync::Notify;

use crate::acks::AckCell;
use crate::buffer::Buffer;
use crate::config::AckMode;
use crate::fetch::FetchedData;
use crate::metrics::PartMetrics;
use crate::record::{Ack, ConsumerRecord};

/// Where [`PartState::incarnation`]s come from.
static INCARNATIONS: AtomicU64 = AtomicU64::new(0);

/// One assigned partition.
#[derive(Debug)]
pub(crate) struct PartState {
    /// Which assignment of the partition this is (unique per process): a
    /// lookup made for an earlier one (revoked, then assigned again) does
    /// not apply to this one.
    pub incarnation: u64,
    /// The next offset to hand out; `None` until initialised from the
    /// committed offset or `auto.offset.reset`.
    pub position: Option<i64>,
    /// The position was out of range: reset by `auto.offset.reset`
    /// without looking at the committed offset.
    pub reset: bool,
    /// The leader epoch of the record before the position (of the last
    /// record handed out, or of the committed offset): carried in commits,
    /// and what KIP-320 validation asks the leader about. Fetches carry the
    /// metadata's epoch of the current leader instead.
    pub leader_epoch: Option<i32>,
    /// The leader (id, epoch) the position was last checked against: when
    /// the metadata names another, the position is validated (KIP-320).
    pub checked_leader: Option<(i32, i32)>,
    /// The position waits for validation (OffsetForLeaderEpoch) before the
    /// next fetch: the leader changed, or the position came with an epoch
    /// (a committed offset) the log may have been truncated below.
    pub validate: bool,
    /// Paused by the application: nothing is fetched or handed out, and
    /// nothing fetched is kept (see [`PartState::pause`]).
    pub paused: bool,
    /// Being revoked (the group's revoke, a pattern change, `close`):
    /// nothing more is fetched or handed out until it is let go.
    pub revoking: bool,
    /// Prefetched records not yet handed out.
    pub buffer: Buffer,
    /// Where the position goes once `buffer` is drained (past control
    /// batches and aborted records).
    pub buffer_end: i64,
    /// The partition's part of a response fetched from `buffer_end` while
    /// `buffer` was still being handed out (see [`PartState::wants_fetch`]):
    /// it becomes the buffer when that drains.
    pub ahead: Option<FetchedData>,
    /// From the last fetch response.
    pub high_watermark: Option<i64>,
    /// From the last fetch response (read_committed: where lag ends).
    pub last_stable_offset: Option<i64>,
    /// From the last fetch response.
    pub log_start_offset: Option<i64>,
    /// What counts as processed (see `committable`).
    pub acks: Arc<AckCell>,
    /// Implicit mode: the position when the application last polled, i.e.
    /// the end of everything handed out before that poll.
    pub consumed: Option<i64>,
    /// The last offset committed for this partition by this consumer.
    pub committed: Option<i64>,
    /// Its metrics (nothing without the `metrics` feature).
    pub metrics: PartMetrics,
}

impl PartState {
    pub(crate) fn new(progress: &Arc<Notify>, metrics: PartMetrics) -> Self {
        PartState {
            incarnation: INCARNATIONS.fetch_add(1, Ordering::Relaxed),
            position: None,
            reset: false,
            leader_epoch: None,
            checked_leader: None,
            validate: false,
            paused: false,
            revoking: false,
            buffer: Buffer::default(),
            buffer_end: 0,
            ahead: None,
            high_watermark: None,
            last_stable_offset: None,
            log_start_offset: None,
            acks: AckCell::new(progress.clone()),
            consumed: None,
            committed: None,
            metrics,
        }
    }

    /// Move to `offset`, the record before it of leader epoch `epoch` if
    /// known: drops what was prefetched and the acks of what was handed
    /// out before (they no longer describe this position). The position
    /// counts as valid (no OffsetForLeaderEpoch before the next fetch).
    pub(crate) fn seek(&mut self, offset: i64, epoch: Option<i32>, progress: &Arc<Notify>) {
        self.position = Some(offset);
        self.leader_epoch = epoch;
        self.validate = false;
        self.reset = false;
        self.drop_fetched();
        self.acks = AckCell::new(progress.clone());
        self.consumed = Some(offset);
    }

    /// Pause or resume. Pausing drops what was prefetched and not handed
    /// out (the position stays: it is fetched again on resume), as
    /// librdkafka does: a record's key and value are slices of the whole
    /// fetch response it came in (zero-copy), so one buffered record of a
    /// paused partition would keep that response alive, up to
    /// `fetch.max.bytes` of every partition in it, for as long as the
    /// pause lasts.
    pub(crate) fn pause(&mut self, paused: bool) {
        self.paused = paused;
        if paused {
            self.drop_fetched();
        }
    }

    /// Drop everything fetched and not handed out: the buffer and what
    /// was fetched ahead of it.
    pub(crate) fn drop_fetched(&mut self) {
        self.buffer.clear();
        self.ahead = None;
    }

    /// Whether this partition should be fetched (or its position
    /// validated) now, fetches in flight aside: when nothing of it is
    /// buffered, or, to fetch ahead, when the buffer is all there is (no
    /// response waits behind it) and the log is known to hold more past
    /// it. Fetching ahead keeps the broker sending the next records while
    /// the application works through these (a Fetch is one round trip
    /// per broker at a time) at the cost of one more response per
    /// partition held: at most two, the buffer and the one behind it, so
    /// `fetch.max.bytes` twice per broker. Never past a position that
    /// waits for validation, nor into the last stable offset's wait under
    /// read_committed, where the broker would hold the Fetch.
    pub(crate) fn wants_fetch(&self, read_committed: bool) -> bool {
        if self.position.is_none() || self.paused || self.revoking {
            return false;
        }
        if self.buffer.is_empty() {
            return true;
        }
        self.ahead.is_none()
            && !self.validate
            && self
                .log_end(read_committed)
                .is_some_and(|e| e > self.buffer_end)
    }

    /// Where this partition's next fetch starts: the position, or past the
    /// buffer when fetching ahead of it.
    pub(crate) fn fetch_offset(&self) -> Option<i64> {
        if self.buffer.is_empty() {
            self.position
        } else {
            Some(self.buffer_end)
        }
    }

    /// Whether the last fetch response showed nothing past the position
    /// (unknown counts as behind): the lag is 0.
    pub(crate) fn caught_up(&self, read_committed: bool) -> bool {
        self.lag(read_committed) == Some(0)
    }

    /// Take a fetch result for `fetch_offset` (at the position, or ahead
    /// of a buffer from its end); false when it is stale (the partition
    /// moved since the request was sent). Records fetched while the
    /// position waits for validation are dropped too: they came from a
    /// leader the metadata no longer names.
    pub(crate) fn accept(&mut self, fetch_offset: i64, data: FetchedData) -> bool {
        if !self.buffer.is_empty() {
            return self.accept_ahead(fetch_offset, data);
        }
        if self.position != Some(fetch_offset) || self.revoking || self.validate {
            return false;
        }
        self.note_log(&data);
        if self.paused {
            // Fetched before the pause: kept, it would hold its response
            // (see `pause`); fetched again on resume.
            return false;
        }
        self.fill(fetch_offset, data);
        true
    }

    /// Take a response fetched ahead, from the end of the buffer.
    fn accept_ahead(&mut self, fetch_offset: i64, data: FetchedData) -> bool {
        if fetch_offset != self.buffer_end
            || self.ahead.is_some()
            || self.revoking
            || self.validate
            || self.paused
        {
            return false;
        }
        self.note_log(&data);
        self.ahead = Some(data);
        true
    }

    /// What a fetch response said of the partition's log.
    fn note_log(&mut self, data: &FetchedData) {
        self.high_watermark = Some(data.high_watermark);
        self.last_stable_offset = data.last_stable_offset;
        self.log_start_offset = data.log_start_offset;
    }

    /// The buffer, empty, takes `data`, fetched from `fetch_offset`.
    fn fill(&mut self, fetch_offset: i64, data: FetchedData) {
        if data.records.is_empty() {
            self.position = Some(data.next_offset.max(fetch_offset));
        } else {
            self.buffer = Buffer::new(data.records);
            self.buffer_end = data.next_offset;
            self.metrics.refilled();
        }
    }

    /// The buffer was drained: the position moves past it (control
    /// batches, aborted records), and what was fetched ahead, which starts
    /// there, becomes the buffer.
    fn drained(&mut self) {
        self.position = self.position.map(|pos| pos.max(self.buffer_end));
        if let Some(data) = self.ahead.take() {
            self.fill(self.buffer_end, data);
        }
    }

    /// The offset to commit: with implicit acks what was handed out up to
    /// `upto` (the position at the last poll, or now), with explicit acks
    /// the end of the contiguous acked prefix.
    pub(crate) fn committable(&self, mode: AckMode, upto: Option<i64>) -> Option<i64> {
        match mode {
            AckMode::Implicit => upto,
            AckMode::Explicit => self.position.map(|p| self.acks.committable(p)),
        }
    }

    /// Lag in offsets: from the position to the high watermark (the last
    /// stable offset under read_committed).
    pub(crate) fn lag(&self, read_committed: bool) -> Option<i64> {
        Some((self.log_end(read_committed)? - self.position?).max(0))
    }

    /// Where the log ends for this consumer, as the last fetch response
    /// said: the high watermark, the last stable offset under
    /// read_committed.
    fn log_end(&self, read_committed: bool) -> Option<i64> {
        if read_committed {
            self.last_stable_offset.or(self.high_watermark)
        } else {
            self.high_watermark
        }
    }
}

impl PartState {
    /// Lag in time (see `PartitionLag::behind`), `now_ms` since the epoch.
    pub(crate) fn behind(&self, read_committed: bool, now_ms: i64) -> Option<std::time::Duration> {
        if self.caught_up(read_committed) {
            return Some(std::time::Duration::ZERO);
        }
        let ts = self.buffer.front()?.timestamp;
        let ms = u64::try_from(now_ms.checked_sub(ts)?.max(0)).ok()?;
        (ts >= 0).then(|| std::time::Duration::from_millis(ms))
    }
}

/// Hand out up to `max` buffered records, visiting partitions from
/// `start` round-robin so that one busy partition cannot starve others.
/// With explicit acks a partition gives at most what its ack window
/// (`window` records from its first unacked one) has room for.
pub(crate) fn hand_out(
    parts: &mut BTreeMap<TopicPartition, PartState>,
    max: usize,
    start: usize,
    mode: AckMode,
    window: usize,
) -> Vec<ConsumerRecord> {
    let buffered: usize = parts.values().map(|p| p.buffer.len()).sum();
    let mut out = Vec::with_capacity(max.min(buffered));
    let start = start.checked_rem(parts.len()).unwrap_or(0);
    // From the `start`th partition to the end, then the ones before it.
    let (before, from) = {
        let mut all = parts.values_mut();
        let before: Vec<&mut PartState> = all.by_ref().take(start).collect();
        (before, all)
    };
    for p in from.chain(before) {
        if out.len() >= max {
            break;
        }
        if p.paused || p.revoking || p.buffer.is_empty() {
            continue;
        }
        let mut take = (max - out.len()).min(p.buffer.len());
        if mode == AckMode::Explicit {
            take = take.min(p.acks.room(window));
            if take == 0 {
                continue;
            }
        }
        let first = out.len();
        p.buffer.take_into(take, &mut out);
        let handed = &mut out[first..];
        if let Some(last) = handed.last() {
            p.position = Some(last.offset + 1);
            p.leader_epoch = last.leader_epoch;
        }
        p.metrics.handed_out(handed);
        if mode == AckMode::Explicit {
            p.acks.handed_out(handed.iter().map(|r| r.offset));
            for r in handed.iter_mut() {
                r.ack = Some(Ack::new(p.acks.clone(), r.offset));
            }
        }
        if p.buffer.is_empty() {
            p.drained();
        }
    }
    out
}

/// Whether some partition has records `hand_out` would give now.
pub(crate) fn handable(
    parts: &BTreeMap<TopicPartition, PartState>,
    mode: AckMode,
    window: usize,
) -> bool {
    parts.values().any(|p| {
        !p.paused
            && !p.revoking
            && !p.buffer.is_empty()
            && (mode == AckMode::Implicit || p.acks.room(window) > 0)
    })
}

/// Whether some partition has records to hand out that only its full ack
/// window holds back (an ack is what lets the next poll go on).
pub(crate) fn window_blocked(
    parts: &BTreeMap<TopicPartition, PartState>,
    mode: AckMode,
    window: usize,
) -> bool {
    mode == AckMode::Explicit
        && parts
            .values()
            .any(|p| !p.paused && !p.revoking && !p.buffer.is_empty() && p.acks.room(window) == 0)
}

/// Put back records handed out by the last `hand_out` that the
/// application never got (a [`Consumer::stream`](crate::Consumer::stream)
/// dropped with records it had not yielded): each partition's are the tail
/// of what it handed out, so they go back in front of its buffer, its
/// position returns to the first of them and its ack ledger forgets them.
/// Nothing touched the partitions since that `hand_out` (the stream holds
/// the consumer), which the checks below confirm before anything moves.
pub(crate) fn give_back(
    parts: &mut BTreeMap<TopicPartition, PartState>,
    records: impl IntoIterator<Item = ConsumerRecord>,
) {
    let mut by_part: BTreeMap<TopicPartition, Vec<ConsumerRecord>> = BTreeMap::new();
    for mut r in records {
        r.ack = None;
        by_part
            .entry(TopicPartition::new(&*r.topic, r.partition))
            .or_default()
            .push(r);
    }
    for (tp, recs) in by_part {
        let Some(p) = parts.get_mut(&tp) else {
            continue;
        };
        let (Some(first), Some(last)) = (recs.first(), recs.last()) else {
            continue;
        };
        let first = first.offset;
        let ordered = recs.windows(2).all(|w| w[0].offset < w[1].offset);
        let buffered_after = p.buffer.front().is_none_or(|b| b.offset > last.offset);
        let handed_out = p.position.is_some_and(|pos| pos > last.offset);
        if !(ordered && buffered_after && handed_out) {
            tracing::warn!(partition = %tp, "records given back out of place: dropped");
            continue;
        }
        let recs_len = recs.len();
        p.buffer.put_back(recs);
        p.position = Some(first);
        p.acks.take_back(first);
        p.metrics.given_back(recs_len);
        if p.paused {
            p.drop_fetched();
        }
    }
}

#[cfg(test)]
mod tests {
    use krust_codec::records::RecordData;

    use super::*;
    use crate::config::ConsumerConfig;
    use crate::metrics::ConsumerMetrics;

    fn tp() -> TopicPartition {
        TopicPartition::new("t", 0)
    }

    /// One partition at position 0. Tests run in a runtime: with the
    /// `metrics` feature the consumer's metrics start a task.
    fn parts() -> BTreeMap<TopicPartition, PartState> {
        let cfg = ConsumerConfig::from_properties([("bootstrap.servers", "127.0.0.1:9")])
            .expect("config");
        let metrics = ConsumerMetrics::new(&cfg);
        let mut p = PartState::new(&Arc::new(Notify::new()), metrics.partition(&tp()));
        p.position = Some(0);
        BTreeMap::from([(tp(), p)])
    }

    /// Records `offsets`, then `next` as the next fetch offset, with the
    /// log ending at `hw` (and its last stable offset at `lso`).
    fn data(offsets: std::ops::Range<i64>, next: i64, hw: i64, lso: i64) -> FetchedData {
        FetchedData {
            records: offsets
                .map(|o| ConsumerRecord::test_at(o, RecordData::default()))
                .collect(),
            next_offset: next,
            high_watermark: hw,
            last_stable_offset: Some(lso),
            log_start_offset: Some(0),
            bytes: 0,
        }
    }

    fn take(parts: &mut BTreeMap<TopicPartition, PartState>, n: usize) -> Vec<i64> {
        hand_out(parts, n, 0, AckMode::Implicit, n)
            .iter()
            .map(|r| r.offset)
            .collect()
    }

    #[tokio::test]
    async fn a_fetch_ahead_becomes_the_buffer_when_it_drains() {
        let mut parts = parts();
        let p = parts.get_mut(&tp()).expect("part");
        assert_eq!(p.fetch_offset(), Some(0));
        assert!(p.accept(0, data(0..10, 12, 30, 30)));
        // The log holds more past the buffer: fetched ahead, from its end.
        assert!(p.wants_fetch(false));
        assert_eq!(p.fetch_offset(), Some(12));
        assert!(!p.accept(11, data(11..20, 20, 30, 30)), "not from the end");
        assert!(p.accept(12, data(12..20, 20, 30, 30)));
        // One response behind the buffer at most.
        assert!(!p.wants_fetch(false));
        assert!(!p.accept(12, data(12..20, 20, 30, 30)));

        assert_eq!(take(&mut parts, 6), (0..6).collect::<Vec<_>>());
        let p = &parts[&tp()];
        assert_eq!(p.position, Some(6));
        assert!(p.ahead.is_some());
        assert_eq!(take(&mut parts, 6), (6..10).collect::<Vec<_>>());
        let p = &parts[&tp()];
        // Past the buffer's end (12, not 10), and the ahead is the buffer.
        assert_eq!(p.position, Some(12));
        assert!(p.ahead.is_none());
        assert_eq!(p.fetch_offset(), Some(20));
        assert!(p.wants_fetch(false));
        assert_eq!(take(&mut parts, 100), (12..20).collect::<Vec<_>>());
        let p = &parts[&tp()];
        assert_eq!(p.position, Some(20));
        assert_eq!(p.fetch_offset(), Some(20));
        assert!(p.wants_fetch(false));
    }

    #[tokio::test]
    async fn no_fetch_ahead_past_the_end_of_the_log_or_before_validation() {
        let mut parts = parts();
        let p = parts.get_mut(&tp()).expect("part");
        assert!(p.accept(0, data(0..10, 10, 10, 10)));
        // Caught up past the buffer: the broker would hold the Fetch.
        assert!(!p.wants_fetch(false));
        p.high_watermark = Some(15);
        assert!(p.wants_fetch(false));
        // Under read_committed the last stable offset is the end.
        assert!(!p.wants_fetch(true));
        p.last_stable_offset = Some(11);
        assert!(p.wants_fetch(true));
        // A position that waits for validation is not fetched past.
        p.validate = true;
        assert!(!p.wants_fetch(false));
        assert!(!p.accept(10, data(10..11, 11, 15, 15)));
        p.validate = false;
        p.pause(true);
        assert!(!p.wants_fetch(false));
        assert!(!p.accept(0, data(0..10, 10, 15, 15)));
        assert!(p.buffer.is_empty());
    }

    #[tokio::test]
    async fn what_was_fetched_ahead_goes_with_the_buffer() {
        let mut parts = parts();
        let progress = Arc::new(Notify::new());
        let p = parts.get_mut(&tp()).expect("part");
        assert!(p.accept(0, data(0..10, 10, 30, 30)));
        assert!(p.accept(10, data(10..20, 20, 30, 30)));
        p.seek(3, None, &progress);
        assert!(p.buffer.is_empty() && p.ahead.is_none());
        // A late answer to the fetch ahead no longer fits.
        assert!(!p.accept(10, data(10..20, 20, 30, 30)));
        assert!(p.accept(3, data(3..10, 10, 30, 30)));
        assert!(p.accept(10, data(10..20, 20, 30, 30)));
        p.pause(true);
        assert!(p.buffer.is_empty() && p.ahead.is_none());
        p.pause(false);
        assert_eq!(p.fetch_offset(), Some(3));
    }

    #[tokio::test]
    async fn a_fetch_ahead_with_no_records_moves_the_position_past_it() {
        let mut parts = parts();
        let p = parts.get_mut(&tp()).expect("part");
        assert!(p.accept(0, data(0..5, 5, 30, 30)));
        // Only a transaction marker at 5: nothing to hand out.
        assert!(p.accept(5, data(5..5, 6, 30, 30)));
        assert_eq!(take(&mut parts, 100), (0..5).collect::<Vec<_>>());
        let p = &parts[&tp()];
        assert!(p.buffer.is_empty() && p.ahead.is_none());
        assert_eq!(p.position, Some(6));
        assert_eq!(p.fetch_offset(), Some(6));
    }
}
