//! The handles the consumer records through (feature `metrics`; `off.rs`
//! has the same types doing nothing). Each is built once, where its labels
//! are known: [`ConsumerMetrics`] with the consumer, [`PartMetrics`] when
//! a partition is assigned, a broker's [`FetchLatency`] on its first
//! fetch, so that recording never builds a label.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ::metrics::{Counter, Gauge, Histogram, Label, counter, gauge, histogram};
use krust_codec::ErrorCode;
use krust_group::{GroupHandle, OffsetError, TopicPartition};
use tokio::task::JoinHandle;

use super::rebalance::{Completed, RebalanceClock};
use super::{
    BYTES_CONSUMED, COMMIT_FAILURES, COMMIT_LATENCY, FETCH_LATENCY, LAST_POLL_SECONDS_AGO,
    PARTITIONS_ASSIGNED, PARTITIONS_LOST, PARTITIONS_REVOKED, REBALANCE_LATENCY, REBALANCES,
    RECORDS_CONSUMED, RECORDS_LAG, RECORDS_LAG_MAX, RECORDS_LAG_SECONDS, describe,
};
use crate::config::ConsumerConfig;
use crate::error::ConsumerError;
use crate::fetch::IsolationLevel;
use crate::parts::PartState;
use crate::record::ConsumerRecord;

/// How often the timer task sets [`LAST_POLL_SECONDS_AGO`].
const TICK: Duration = Duration::from_secs(1);

/// A count for a counter (saturating: a usize never exceeds it on the
/// platforms Rust supports).
fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// An offset difference as a gauge value (exact up to 2^53).
#[allow(clippy::cast_precision_loss)]
fn float(v: i64) -> f64 {
    v as f64
}

/// When the application last called `poll`, shared with the timer task.
#[derive(Debug)]
struct PollClock {
    base: Instant,
    /// Nanoseconds from `base` to the last poll.
    last: AtomicU64,
}

impl PollClock {
    fn since_last(&self) -> Duration {
        let last = Duration::from_nanos(self.last.load(Ordering::Relaxed));
        self.base.elapsed().saturating_sub(last)
    }
}

/// A task aborted when its owner is dropped.
#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One consumer's handles.
#[derive(Debug)]
pub(crate) struct ConsumerMetrics {
    /// `client_id`, then `group` when `group.id` is set.
    labels: Arc<[Label]>,
    lag_max: Gauge,
    commit_latency: Histogram,
    rebalances: Counter,
    rebalance_latency: Histogram,
    assigned: Counter,
    revoked: Counter,
    lost: Counter,
    poll: Arc<PollClock>,
    /// Sets [`LAST_POLL_SECONDS_AGO`] every [`TICK`]; ends with the
    /// consumer.
    _ticker: AbortOnDrop,
}

impl ConsumerMetrics {
    /// The handles of a new consumer, and its timer task (on the current
    /// Tokio runtime).
    pub(crate) fn new(cfg: &ConsumerConfig) -> Self {
        describe();
        let mut labels = vec![Label::new("client_id", cfg.client_id.clone())];
        if let Some(g) = &cfg.group_id {
            labels.push(Label::new("group", g.clone()));
        }
        let labels: Arc<[Label]> = labels.into();
        let poll = Arc::new(PollClock {
            base: Instant::now(),
            last: AtomicU64::new(0),
        });
        let since_poll = gauge!(LAST_POLL_SECONDS_AGO, labels.iter());
        let clock = poll.clone();
        let ticker = tokio::spawn(async move {
            let mut tick = tokio::time::interval(TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                since_poll.set(clock.since_last());
            }
        });
        ConsumerMetrics {
            lag_max: gauge!(RECORDS_LAG_MAX, labels.iter()),
            commit_latency: histogram!(COMMIT_LATENCY, labels.iter()),
            rebalances: counter!(REBALANCES, labels.iter()),
            rebalance_latency: histogram!(REBALANCE_LATENCY, labels.iter()),
            assigned: counter!(PARTITIONS_ASSIGNED, labels.iter()),
            revoked: counter!(PARTITIONS_REVOKED, labels.iter()),
            lost: counter!(PARTITIONS_LOST, labels.iter()),
            labels,
            poll,
            _ticker: AbortOnDrop(ticker),
        }
    }

    /// The consumer's labels and `extra`.
    fn labels(&self, extra: impl IntoIterator<Item = Label>) -> Vec<Label> {
        self.labels.iter().cloned().chain(extra).collect()
    }

    /// The application called `poll`.
    #[inline]
    pub(crate) fn polled(&self) {
        let nanos = self.poll.base.elapsed().as_nanos();
        self.poll
            .last
            .store(u64::try_from(nanos).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// The handles of a partition just assigned.
    pub(crate) fn partition(&self, tp: &TopicPartition) -> PartMetrics {
        let topic = Label::new("topic", tp.topic.clone());
        let part = Label::new("partition", tp.partition.to_string());
        let per_part = self.labels([topic.clone(), part]);
        let per_topic = self.labels([topic]);
        PartMetrics {
            lag: gauge!(RECORDS_LAG, per_part.iter()),
            lag_seconds: gauge!(RECORDS_LAG_SECONDS, per_part.iter()),
            records: counter!(RECORDS_CONSUMED, per_topic.iter()),
            bytes: counter!(BYTES_CONSUMED, per_topic.iter()),
            last_timestamp: None,
            given_back: 0,
        }
    }

    /// Set the lag gauges from what `poll` knows now.
    pub(crate) fn lag(
        &self,
        parts: &BTreeMap<TopicPartition, PartState>,
        isolation: IsolationLevel,
    ) {
        let read_committed = isolation == IsolationLevel::ReadCommitted;
        if parts.is_empty() {
            self.lag_max.set(0.0);
            return;
        }
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let mut max = None;
        for p in parts.values() {
            let Some(lag) = p.lag(read_committed) else {
                continue;
            };
            max = max.max(Some(lag));
            let m = &p.metrics;
            m.lag.set(float(lag));
            let age_ms = match p.behind(read_committed, now_ms) {
                Some(d) => i64::try_from(d.as_millis()).ok(),
                // Nothing prefetched: the last record handed out.
                None => m
                    .last_timestamp
                    .filter(|ts| *ts >= 0)
                    .map(|ts| now_ms.saturating_sub(ts).max(0)),
            };
            if let Some(ms) = age_ms {
                m.lag_seconds.set(float(ms) / 1000.0);
            }
        }
        if let Some(max) = max {
            self.lag_max.set(float(max));
        }
    }

    /// The fetcher's handles.
    pub(crate) fn fetch(&self) -> FetchMetrics {
        FetchMetrics {
            labels: self.labels.clone(),
            brokers: HashMap::new(),
        }
    }

    /// The handles of a commit of `partitions` partitions (none for an
    /// empty one: nothing is sent).
    pub(crate) fn commit(&self, partitions: usize) -> CommitMetrics {
        CommitMetrics((partitions > 0).then(|| {
            Arc::new(CommitHandles {
                labels: self.labels.clone(),
                latency: self.commit_latency.clone(),
            })
        }))
    }

    /// The group assigned `n` partitions.
    pub(crate) fn assigned(&self, n: usize) {
        self.assigned.increment(count(n));
    }

    /// The consumer started letting `n` owned partitions go.
    pub(crate) fn revoked(&self, n: usize) {
        self.revoked.increment(count(n));
    }

    /// `n` partitions were lost.
    pub(crate) fn lost(&self, n: usize) {
        self.lost.increment(count(n));
    }

    /// Time the rebalances of the membership of `handle`, from its
    /// snapshots, in a task that ends when the group task does (it drops
    /// the sending side), i.e. with the consumer's group handle.
    pub(crate) fn watch_group(&self, handle: &GroupHandle) {
        let mut snapshot = handle.watch();
        let (done, latency) = (self.rebalances.clone(), self.rebalance_latency.clone());
        tokio::spawn(async move {
            let mut clock = RebalanceClock::default();
            loop {
                let (state, generation) = {
                    let s = snapshot.borrow_and_update();
                    (s.state, s.generation)
                };
                if let Some(Completed(took)) = clock.observe(state, generation, Instant::now()) {
                    done.increment(1);
                    if let Some(took) = took {
                        latency.record(took);
                    }
                }
                if snapshot.changed().await.is_err() {
                    return;
                }
            }
        });
    }
}

/// One assigned partition's handles, and what its records counted.
pub(crate) struct PartMetrics {
    lag: Gauge,
    lag_seconds: Gauge,
    /// Of the partition's topic.
    records: Counter,
    /// Of the partition's topic.
    bytes: Counter,
    /// The timestamp of the last record handed out.
    last_timestamp: Option<i64>,
    /// Records at the front of the buffer that were counted when they were
    /// handed out, then given back by a dropped stream.
    given_back: usize,
}

impl std::fmt::Debug for PartMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartMetrics")
            .field("given_back", &self.given_back)
            .finish_non_exhaustive()
    }
}

impl PartMetrics {
    /// `handed` (in offset order) go to the application.
    #[inline]
    pub(crate) fn handed_out(&mut self, handed: &[ConsumerRecord]) {
        let again = self.given_back.min(handed.len());
        self.given_back -= again;
        let fresh = &handed[again..];
        if !fresh.is_empty() {
            let bytes: usize = fresh
                .iter()
                .map(|r| r.key().map_or(0, <[u8]>::len) + r.value().map_or(0, <[u8]>::len))
                .sum();
            self.records.increment(count(fresh.len()));
            self.bytes.increment(count(bytes));
        }
        if let Some(last) = handed.last() {
            self.last_timestamp = Some(last.timestamp);
        }
    }

    /// `n` records handed out went back to the front of the buffer.
    #[inline]
    pub(crate) fn given_back(&mut self, n: usize) {
        self.given_back += n;
    }

    /// The buffer was empty and a fetch filled it: nothing in it was
    /// counted.
    #[inline]
    pub(crate) fn refilled(&mut self) {
        self.given_back = 0;
    }
}

/// The fetcher's handles: one latency histogram per broker.
#[derive(Debug)]
pub(crate) struct FetchMetrics {
    labels: Arc<[Label]>,
    brokers: HashMap<i32, Histogram>,
}

impl FetchMetrics {
    /// The latency handle of `broker` (built on its first fetch).
    pub(crate) fn broker(&mut self, broker: i32) -> FetchLatency {
        let labels = &self.labels;
        let h = self.brokers.entry(broker).or_insert_with(|| {
            let labels: Vec<Label> = labels
                .iter()
                .cloned()
                .chain([Label::new("broker", broker.to_string())])
                .collect();
            histogram!(FETCH_LATENCY, labels.iter())
        });
        FetchLatency(Some(h.clone()))
    }
}

/// When something timed started.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Started(Instant);

/// One broker's fetch latency.
#[derive(Debug)]
pub(crate) struct FetchLatency(Option<Histogram>);

impl FetchLatency {
    /// Not recorded (tests of the fetch alone).
    #[cfg(test)]
    pub(crate) fn none() -> Self {
        FetchLatency(None)
    }

    /// A Fetch is sent now.
    #[inline]
    pub(crate) fn start(&self) -> Started {
        Started(Instant::now())
    }

    /// Its response arrived.
    #[inline]
    pub(crate) fn answered(&self, sent: Started) {
        if let Some(h) = &self.0 {
            h.record(sent.0.elapsed());
        }
    }
}

#[derive(Debug)]
struct CommitHandles {
    labels: Arc<[Label]>,
    latency: Histogram,
}

/// One commit's handles (none: not recorded).
#[derive(Debug, Clone)]
pub(crate) struct CommitMetrics(Option<Arc<CommitHandles>>);

impl CommitMetrics {
    /// Not recorded (tests of the chain alone).
    #[cfg(test)]
    pub(crate) fn none() -> Self {
        CommitMetrics(None)
    }

    /// The commit starts (the commits before it have ended).
    pub(crate) fn start(&self) -> Started {
        Started(Instant::now())
    }

    /// It ended with `result`.
    pub(crate) fn ended(&self, started: Started, result: &Result<(), ConsumerError>) {
        let Some(h) = &self.0 else { return };
        if sent(result) {
            h.latency.record(started.0.elapsed());
        }
        if let Err(e) = result {
            self.failed(e);
        }
    }

    /// It failed before it started (its bound passed while it waited).
    pub(crate) fn failed(&self, e: &ConsumerError) {
        let Some(h) = &self.0 else { return };
        let labels: Vec<Label> = h
            .labels
            .iter()
            .cloned()
            .chain([Label::from_static_parts("error", error_name(e))])
            .collect();
        counter!(COMMIT_FAILURES, labels.iter()).increment(1);
    }
}

/// Whether a commit that ended so was sent and ran to its end (not refused
/// locally, not cut by a bound).
fn sent(result: &Result<(), ConsumerError>) -> bool {
    !matches!(
        result,
        Err(ConsumerError::Offset(
            OffsetError::NotOwned { .. } | OffsetError::RebalanceInProgress { .. }
        ) | ConsumerError::NoGroup(_)
            | ConsumerError::Timeout { .. }
            | ConsumerError::Aborted { .. })
    )
}

/// The `error` label of a failed commit (see [`COMMIT_FAILURES`]).
pub(crate) fn error_name(e: &ConsumerError) -> &'static str {
    match e {
        ConsumerError::Offset(OffsetError::NotOwned { .. }) => "NOT_OWNED",
        ConsumerError::Offset(OffsetError::Request { source, .. }) | ConsumerError::Net(source) => {
            net_error_name(source)
        }
        ConsumerError::NoGroup(_) => ErrorCode::INVALID_GROUP_ID.name(),
        ConsumerError::Timeout { .. } => ErrorCode::REQUEST_TIMED_OUT.name(),
        e => e
            .code()
            .map_or(ErrorCode::UNKNOWN_SERVER_ERROR.name(), ErrorCode::name),
    }
}

/// As Java's `Errors.forException` names a client-side failure.
fn net_error_name(e: &krust_net::Error) -> &'static str {
    use krust_net::Error;
    match e {
        Error::Broker { code, .. } => code.name(),
        Error::RetriesExhausted { last, .. } => net_error_name(last),
        Error::Timeout { .. } | Error::DeadlineExceeded { .. } => {
            ErrorCode::REQUEST_TIMED_OUT.name()
        }
        Error::Io { .. } | Error::Connect { .. } | Error::Closed { .. } => {
            ErrorCode::NETWORK_EXCEPTION.name()
        }
        Error::UnsupportedVersion { .. } => ErrorCode::UNSUPPORTED_VERSION.name(),
        _ => ErrorCode::UNKNOWN_SERVER_ERROR.name(),
    }
}

#[cfg(test)]
mod tests {
    use krust_codec::ApiKey;
    use krust_codec::records::RecordData;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::*;

    fn record(offset: i64, value: &'static str) -> ConsumerRecord {
        let data = RecordData::new(Some(b"key"), Some(value.as_bytes()), &[]).unwrap();
        ConsumerRecord::test_at(offset, data)
    }

    /// Records a dropped stream gave back are counted when first handed
    /// out, not again; a refill starts afresh.
    #[test]
    fn records_given_back_count_once() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        ::metrics::with_local_recorder(&recorder, || {
            let mut m = PartMetrics {
                lag: gauge!(RECORDS_LAG),
                lag_seconds: gauge!(RECORDS_LAG_SECONDS),
                records: counter!(RECORDS_CONSUMED),
                bytes: counter!(BYTES_CONSUMED),
                last_timestamp: None,
                given_back: 0,
            };
            let batch: Vec<ConsumerRecord> = (0..5).map(|o| record(o, "vv")).collect();
            m.handed_out(&batch);
            // The last three never reached the application.
            m.given_back(3);
            let again: Vec<ConsumerRecord> = (2..7).map(|o| record(o, "vv")).collect();
            m.handed_out(&again);
            assert_eq!(m.last_timestamp, Some(1_006));
            m.given_back(1);
            m.refilled();
            m.handed_out(&[record(7, "vvvv")]);
        });
        let mut seen: Vec<(String, u64)> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter_map(|(k, _, _, v)| match v {
                DebugValue::Counter(n) => Some((k.key().name().to_owned(), n)),
                _ => None,
            })
            .collect();
        seen.sort();
        // 5 + 2 + 1 records; 5 bytes each, the last 7.
        assert_eq!(
            seen,
            [
                (BYTES_CONSUMED.to_owned(), 7 * 5 + 7),
                (RECORDS_CONSUMED.to_owned(), 8)
            ]
        );
    }

    #[test]
    fn failed_commits_are_named_as_kafka_names_them() {
        let broker = |code| krust_net::Error::broker(ApiKey::OffsetCommit, code, None);
        let request = |source| {
            ConsumerError::Offset(OffsetError::Request {
                group: "g".into(),
                source,
            })
        };
        let cases = [
            (
                request(broker(ErrorCode::ILLEGAL_GENERATION)),
                "ILLEGAL_GENERATION",
                true,
            ),
            (
                request(krust_net::Error::RetriesExhausted {
                    api: ApiKey::OffsetCommit,
                    attempts: 3,
                    elapsed: Duration::from_secs(1),
                    last: Box::new(broker(ErrorCode::COORDINATOR_NOT_AVAILABLE)),
                }),
                "COORDINATOR_NOT_AVAILABLE",
                true,
            ),
            (
                ConsumerError::Offset(OffsetError::NotOwned {
                    group: "g".into(),
                    member_id: "m".into(),
                    generation: 1,
                    partitions: vec![TopicPartition::new("t", 0)],
                }),
                "NOT_OWNED",
                false,
            ),
            (
                ConsumerError::Offset(OffsetError::RebalanceInProgress {
                    group: "g".into(),
                    member_id: "m".into(),
                    state: krust_group::membership::State::Joining,
                }),
                "REBALANCE_IN_PROGRESS",
                false,
            ),
            (ConsumerError::NoGroup("commit"), "INVALID_GROUP_ID", false),
            (
                ConsumerError::Timeout {
                    what: "the commit of revoked partitions",
                    timeout: Duration::from_secs(1),
                },
                "REQUEST_TIMED_OUT",
                false,
            ),
            (
                ConsumerError::Aborted {
                    what: "a commit",
                    cause: "panic".into(),
                },
                "UNKNOWN_SERVER_ERROR",
                false,
            ),
        ];
        for (e, name, was_sent) in cases {
            assert_eq!(error_name(&e), name, "{e}");
            assert_eq!(sent(&Err(e)), was_sent, "{name}");
        }
        assert!(sent(&Ok(())));
    }
}
