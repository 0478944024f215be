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
        self.buffer.clear();
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
            self.buffer.clear();
        }
    }

    /// Whether this partition should be fetched (or its position
    /// validated) now, fetches in flight aside.
    pub(crate) fn wants_fetch(&self) -> bool {
        self.position.is_some() && !self.paused && !self.revoking && self.buffer.is_empty()
    }

    /// Whether the last fetch response showed nothing past the position
    /// (unknown counts as behind): the lag is 0.
    pub(crate) fn caught_up(&self, read_committed: bool) -> bool {
        self.lag(read_committed) == Some(0)
    }

    /// Take a fetch result for `fetch_offset`; false when it is stale
    /// (the partition moved since the request was sent).
    /// Records fetched while the position waits for validation are
    /// dropped too: they came from a leader the metadata no longer names.
    pub(crate) fn accept(&mut self, fetch_offset: i64, data: FetchedData) -> bool {
        if self.position != Some(fetch_offset)
            || !self.buffer.is_empty()
            || self.revoking
            || self.validate
        {
            return false;
        }
        self.high_watermark = Some(data.high_watermark);
        self.last_stable_offset = data.last_stable_offset;
        self.log_start_offset = data.log_start_offset;
        if self.paused {
            // Fetched before the pause: kept, it would hold its response
            // (see `pause`); fetched again on resume.
            return false;
        }
        if data.records.is_empty() {
            self.position = Some(data.next_offset.max(fetch_offset));
        } else {
            self.buffer = Buffer::new(data.records);
            self.buffer_end = data.next_offset;
            self.metrics.refilled();
        }
        true
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
        let end = if read_committed {
            self.last_stable_offset.or(self.high_watermark)
        } else {
            self.high_watermark
        };
        Some((end? - self.position?).max(0))
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
            p.position = p.position.map(|pos| pos.max(p.buffer_end));
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
            p.buffer.clear();
        }
    }
}
