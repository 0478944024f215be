//! The consumer's metrics (feature `metrics`; docs/ARCHITECTURE.md,
//! "Consumer metrics") as an application's recorder sees them, on the
//! Apache Kafka 4.4.0 node this binary shares: records, bytes, lag, commits,
//! rebalances and the time since the last poll of a group member, and a
//! commit the coordinator refuses counted under the name Kafka gives it.
//!
//! The recorder is metrics-util's `DebuggingRecorder`, installed as the
//! global recorder (the consumer records from its own tasks, on the
//! runtime's threads, which a thread-local recorder would not see). A
//! snapshot of it takes what counters and histograms gathered and sets
//! every gauge to 0, so [`Recorded`] adds snapshots up, the tests take
//! their turns (one snapshot must not empty the other's gauges), and a
//! gauge is read after the test set it to -1 itself: a 0 read then is one
//! the consumer wrote.

#![cfg(feature = "metrics")]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{create_topic, group_config, produce, subscribed};
use krust_consumer::metrics::{
    BYTES_CONSUMED, COMMIT_FAILURES, COMMIT_LATENCY, FETCH_LATENCY, LAST_POLL_SECONDS_AGO,
    PARTITIONS_ASSIGNED, REBALANCE_LATENCY, REBALANCES, RECORDS_CONSUMED, RECORDS_LAG,
    RECORDS_LAG_MAX, RECORDS_LAG_SECONDS,
};
use krust_consumer::{Consumer, ConsumerError, OffsetAndMetadata, TopicPartition};
use krust_producer::ProducerRecord;
use krust_testkit::{Kafka, unique};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

const BOUND: Duration = Duration::from_secs(120);
const PARTITIONS: i32 = 3;
const PER_PARTITION: usize = 100;

/// One test at a time: see the module documentation.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The global recorder, installed by the first test to ask.
fn snapshotter() -> &'static Snapshotter {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("the only recorder of this binary");
        snapshotter
    })
}

/// A metric: its name and labels.
type Key = (String, BTreeMap<String, String>);

/// What the recorder recorded, over every snapshot taken so far.
#[derive(Default)]
struct Recorded {
    counters: HashMap<Key, u64>,
    histograms: HashMap<Key, Vec<f64>>,
    /// As the last snapshot read them.
    gauges: HashMap<Key, f64>,
}

static RECORDED: Mutex<Option<Recorded>> = Mutex::new(None);

impl Recorded {
    /// Take a snapshot and add it to what was recorded before; `read` sees
    /// the sum.
    fn read<T>(read: impl FnOnce(&Recorded) -> T) -> T {
        let snapshot = snapshotter().snapshot().into_vec();
        let mut all = RECORDED.lock().unwrap_or_else(|e| e.into_inner());
        let r = all.get_or_insert_with(Recorded::default);
        for (key, _, _, value) in snapshot {
            let labels = key
                .key()
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            let key = (key.key().name().to_owned(), labels);
            match value {
                DebugValue::Counter(n) => *r.counters.entry(key).or_default() += n,
                DebugValue::Histogram(xs) => r
                    .histograms
                    .entry(key)
                    .or_default()
                    .extend(xs.into_iter().map(f64::from)),
                DebugValue::Gauge(x) => {
                    r.gauges.insert(key, x.into_inner());
                }
            }
        }
        read(r)
    }

    /// The sum of counter `name` over every key with all of `labels`.
    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.counters
            .iter()
            .filter(|(k, _)| matches(k, name, labels))
            .map(|(_, n)| n)
            .sum()
    }

    /// The samples of histogram `name` over every key with all of `labels`.
    fn samples(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        self.histograms
            .iter()
            .filter(|(k, _)| matches(k, name, labels))
            .flat_map(|(_, xs)| xs.iter().copied())
            .collect()
    }

    /// Gauge `name` with exactly `labels`.
    fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let key = (name.to_owned(), own(labels));
        self.gauges.get(&key).copied()
    }
}

fn own(labels: &[(&str, &str)]) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn matches(key: &Key, name: &str, labels: &[(&str, &str)]) -> bool {
    key.0 == name
        && labels
            .iter()
            .all(|(k, v)| key.1.get(*k).is_some_and(|x| x == v))
}

/// Set gauge `name` with `labels` (in the consumer's order) to -1, so that
/// what is read later is what the consumer set since.
fn poison(name: &'static str, labels: &[(&str, &str)]) {
    let labels: Vec<metrics::Label> = labels
        .iter()
        .map(|(k, v)| metrics::Label::new((*k).to_owned(), (*v).to_owned()))
        .collect();
    metrics::gauge!(name, labels.iter()).set(-1.0);
}

/// Poll `c` until it handed out `n` records (more may come in the last
/// batch); returns how many.
async fn consume(c: &mut Consumer, n: usize) -> usize {
    let mut got = 0;
    let since = Instant::now();
    while got < n {
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "{got} of {n} records came"
        );
        got += c
            .poll(Duration::from_millis(200))
            .await
            .expect("poll")
            .len();
    }
    got
}

/// A member of a new group reads a topic in two parts and commits: every
/// record and its bytes are counted for the topic, the lag is above 0
/// after the first part and 0 at the end, the commit, the fetches and the
/// first join are timed, the three partitions counted as assigned, and the
/// time since the last poll grows while the application does not poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_records_its_records_lag_commits_and_rebalances() {
    let _turn = TURN.lock().await;
    snapshotter();
    tokio::time::timeout(BOUND, async {
        let kafka = Kafka::shared();
        let b = kafka.addr();
        let (topic, group, client) = (
            unique("krust-metrics"),
            unique("krust-metrics-group"),
            unique("krust-metrics-client"),
        );
        create_topic(kafka, &topic, PARTITIONS).await;
        let total = PER_PARTITION * PARTITIONS as usize;
        let records: Vec<ProducerRecord> = (0..total)
            .map(|i| {
                let p = i32::try_from(i).expect("small") % PARTITIONS;
                ProducerRecord::new(topic.as_str(), format!("value-{i}"))
                    .key(format!("k{i}"))
                    .partition(p)
            })
            .collect();
        let bytes: usize = (0..total)
            .map(|i| format!("k{i}").len() + format!("value-{i}").len())
            .sum();
        produce(&b, records).await;
        let config = group_config(
            &b,
            &group,
            &[("client.id", &client), ("max.poll.records", "10")],
        );
        let mut c = subscribed(config, &topic).await;
        let me = [("client_id", client.as_str()), ("group", group.as_str())];
        let part = |p: &'static str| {
            [
                ("client_id", client.as_str()),
                ("group", group.as_str()),
                ("topic", topic.as_str()),
                ("partition", p),
            ]
        };

        // Part of it: behind.
        let mut got = consume(&mut c, 30).await;
        let (lag_max, lags, ages) = Recorded::read(|r| {
            let of = |name| -> Vec<Option<f64>> {
                ["0", "1", "2"]
                    .into_iter()
                    .map(|p| r.gauge(name, &part(p)))
                    .collect()
            };
            (
                r.gauge(RECORDS_LAG_MAX, &me),
                of(RECORDS_LAG),
                of(RECORDS_LAG_SECONDS),
            )
        });
        let lag_max = lag_max.expect("records-lag-max set");
        assert!(lag_max > 0.0, "behind after {got} of {total}: {lag_max}");
        let known: Vec<f64> = lags.iter().flatten().copied().collect();
        assert!(!known.is_empty(), "no partition's lag set: {lags:?}");
        assert_eq!(
            known.iter().copied().fold(f64::MIN, f64::max),
            lag_max,
            "the max of the partitions' lags: {lags:?}"
        );
        // Behind, each partition's records were prefetched or handed out:
        // its lag in time is the age of one of them, produced just now.
        for (lag, age) in lags.iter().zip(&ages) {
            if lag.is_some_and(|l| l > 0.0) {
                let age = age.unwrap_or_else(|| panic!("no lag in time: {ages:?}"));
                assert!((0.0..60.0).contains(&age), "{ages:?}");
            }
        }

        // The rest, committed: caught up.
        got += consume(&mut c, total - got).await;
        assert_eq!(got, total);
        c.commit().await.expect("commit");
        poison(RECORDS_LAG_MAX, &me);
        for p in ["0", "1", "2"] {
            poison(RECORDS_LAG, &part(p));
            poison(RECORDS_LAG_SECONDS, &part(p));
        }
        assert!(
            c.poll(Duration::from_millis(50))
                .await
                .expect("poll")
                .is_empty()
        );
        Recorded::read(|r| {
            assert_eq!(r.gauge(RECORDS_LAG_MAX, &me), Some(0.0), "caught up");
            for p in ["0", "1", "2"] {
                assert_eq!(r.gauge(RECORDS_LAG, &part(p)), Some(0.0), "partition {p}");
                assert_eq!(
                    r.gauge(RECORDS_LAG_SECONDS, &part(p)),
                    Some(0.0),
                    "partition {p}"
                );
            }
            let of_topic = [("client_id", client.as_str()), ("topic", topic.as_str())];
            assert_eq!(r.counter(RECORDS_CONSUMED, &of_topic), total as u64);
            assert_eq!(r.counter(BYTES_CONSUMED, &of_topic), bytes as u64);
            let commits = r.samples(COMMIT_LATENCY, &me);
            assert!(!commits.is_empty(), "the commit is timed");
            assert!(commits.iter().all(|s| *s > 0.0 && *s < 15.0), "{commits:?}");
            let fetches = r.samples(FETCH_LATENCY, &me);
            // One Fetch may well have brought everything.
            assert!(!fetches.is_empty(), "the fetches are timed");
            assert!(fetches.iter().all(|s| *s > 0.0 && *s < 15.0), "{fetches:?}");
            let mut per_broker = r
                .histograms
                .keys()
                .filter(|k| matches(k, FETCH_LATENCY, &me));
            assert!(per_broker.all(|k| k.1.contains_key("broker")));
            assert!(r.counter(REBALANCES, &me) >= 1, "the first join");
            assert!(
                !r.samples(REBALANCE_LATENCY, &me).is_empty(),
                "the first join timed"
            );
            assert_eq!(r.counter(PARTITIONS_ASSIGNED, &me), PARTITIONS as u64);
            assert_eq!(r.counter(COMMIT_FAILURES, &me), 0);
            eprintln!(
                "commit {commits:?} s, fetches {fetches:?} s, first join {:?} s",
                r.samples(REBALANCE_LATENCY, &me)
            );
        });

        // A stuck application: the time since its last poll grows; it
        // falls back once it polls again.
        poison(LAST_POLL_SECONDS_AGO, &me);
        tokio::time::sleep(Duration::from_millis(2200)).await;
        let stuck = Recorded::read(|r| r.gauge(LAST_POLL_SECONDS_AGO, &me)).expect("set");
        assert!(stuck >= 1.0, "2.2 s without a poll: {stuck}");
        c.poll(Duration::from_millis(10)).await.expect("poll");
        poison(LAST_POLL_SECONDS_AGO, &me);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let polled = Recorded::read(|r| r.gauge(LAST_POLL_SECONDS_AGO, &me)).expect("set");
        assert!(
            (0.0..stuck).contains(&polled),
            "polled 1.1 s ago: {polled} (stuck: {stuck})"
        );
        c.close().await.expect("close");
    })
    .await
    .expect("bounded");
}

/// A consumer outside the group (partitions assigned by hand, the group's
/// id) commits while a member is in: Kafka refuses a commit without a
/// member id to a group that is not empty, and the failure is counted
/// under the code's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_commit_is_counted_by_its_error_name() {
    let _turn = TURN.lock().await;
    snapshotter();
    tokio::time::timeout(BOUND, async {
        let kafka = Kafka::shared();
        let b = kafka.addr();
        let (topic, group) = (unique("krust-metrics-refused"), unique("krust-metrics-g"));
        let (member_id, outsider_id) = (unique("krust-member"), unique("krust-outsider"));
        create_topic(kafka, &topic, 1).await;
        let mut member = subscribed(
            group_config(&b, &group, &[("client.id", &member_id)]),
            &topic,
        )
        .await;
        let since = Instant::now();
        while member.assignment().is_empty() {
            assert!(since.elapsed() < Duration::from_secs(30), "never assigned");
            member.poll(Duration::from_millis(100)).await.expect("poll");
        }
        let mut outsider = Consumer::new(group_config(&b, &group, &[("client.id", &outsider_id)]))
            .await
            .expect("consumer");
        let tp = TopicPartition::new(topic.clone(), 0);
        outsider.assign([tp.clone()]).expect("assign");
        let refused = outsider
            .commit_offsets(BTreeMap::from([(tp, OffsetAndMetadata::new(1))]))
            .await
            .expect_err("a commit outside the generation of a group with a member");
        let code = match &refused {
            ConsumerError::Offset(e) => e.code(),
            other => panic!("not the coordinator's refusal: {other}"),
        }
        .unwrap_or_else(|| panic!("no Kafka code: {refused}"));
        // Kafka's classic group takes a commit with no member id and no
        // generation only while the group is empty.
        assert_eq!(code.name(), "UNKNOWN_MEMBER_ID", "{refused}");
        let theirs = [
            ("client_id", outsider_id.as_str()),
            ("group", group.as_str()),
        ];
        Recorded::read(|r| {
            let by_name = [theirs[0], theirs[1], ("error", code.name())];
            assert_eq!(r.counter(COMMIT_FAILURES, &by_name), 1, "{refused}");
            assert_eq!(r.counter(COMMIT_FAILURES, &theirs), 1, "under one name");
            assert_eq!(
                r.samples(COMMIT_LATENCY, &theirs).len(),
                1,
                "it was answered"
            );
            let member = [("client_id", member_id.as_str())];
            assert_eq!(r.counter(COMMIT_FAILURES, &member), 0);
        });
        drop(outsider);
        member.close().await.expect("close");
    })
    .await
    .expect("bounded");
}
