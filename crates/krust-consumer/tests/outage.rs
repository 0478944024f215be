//! The only broker down for longer than `bootstrap.timeout.ms` and
//! `default.api.timeout.ms`, then back on the same port and data: a
//! consumer survives it (as Java's and librdkafka's do, rediscovering the
//! cluster for as long as it takes) and reads what is written once the
//! broker is back, without redelivering what it committed before. Only
//! configuration, authorization and fencing errors are fatal; what `poll`
//! returns while the broker is away, if anything, is a retriable error.
//!
//! On a private Apache Kafka 4.4.0 node (the node this binary would share
//! must not go down under other tests), crashed with `SIGKILL` and started
//! again 25 s later on the same ports and data (`KafkaCluster::kill`, then
//! `KafkaCluster::restart`), or hung with `SIGSTOP` and resumed.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{consumer_config, private_node, produce, wait_for};
use krust_consumer::{Consumer, ConsumerConfig, ConsumerError, TopicPartition};
use krust_producer::ProducerRecord;
use krust_testkit::unique;

/// How long the broker stays down: well over the consumer's bootstrap and
/// API timeouts (5 s each) and its session timeout (6 s).
const OUTAGE: Duration = Duration::from_secs(25);
const PARTITIONS: i32 = 2;
/// Records written before the outage, per partition.
const BEFORE: i64 = 5;
const BOUND: Duration = Duration::from_secs(180);

/// What one consumer did, with the time of each poll error.
#[derive(Default, Debug)]
struct Seen {
    records: Vec<(i32, i64)>,
    /// The last successful commit's offset per partition.
    committed: BTreeMap<i32, i64>,
    /// Poll errors: when, the error's text, and whether it is retriable.
    poll_errors: Vec<(Instant, String, bool)>,
    /// Commit errors (after a non-empty batch), as text.
    commit_errors: Vec<String>,
    polls: usize,
    /// The longest poll (of 200 ms) and when it ended.
    longest_poll: (Duration, Option<Instant>),
}

/// Whether retrying can fix `e`: the error types that carry a cause say
/// so themselves (`krust_net::Error::is_retriable`, a Kafka error code).
fn retriable(e: &ConsumerError) -> bool {
    match e {
        ConsumerError::Net(n) => n.is_retriable(),
        ConsumerError::Offset(o) => o.code().is_some_and(|c| c.is_retriable()),
        ConsumerError::Group(g) => g.code().is_some_and(|c| c.is_retriable()),
        ConsumerError::Fetch { code, .. } => code.is_retriable(),
        _ => false,
    }
}

/// Poll until `stop`, commit after each non-empty batch, record
/// everything; a poll error is recorded and polling goes on (a consumer
/// an outage made fail for good fails every later poll too).
fn drive(
    mut consumer: Consumer,
    stop: Arc<AtomicBool>,
) -> (Arc<Mutex<Seen>>, tokio::task::JoinHandle<()>) {
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let s = seen.clone();
    let task = tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            let r = consumer.poll(Duration::from_millis(200)).await;
            {
                let mut st = s.lock().expect("seen");
                if started.elapsed() > st.longest_poll.0 {
                    st.longest_poll = (started.elapsed(), Some(Instant::now()));
                }
            }
            let batch = match r {
                Ok(b) => b,
                Err(e) => {
                    {
                        let mut st = s.lock().expect("seen");
                        st.polls += 1;
                        st.poll_errors
                            .push((Instant::now(), e.to_string(), retriable(&e)));
                    }
                    // As an application would: do not spin on an error.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            {
                let mut st = s.lock().expect("seen");
                st.polls += 1;
                st.records
                    .extend(batch.iter().map(|r| (r.partition, r.offset)));
            }
            if !batch.is_empty() {
                let r = consumer.commit().await;
                let mut st = s.lock().expect("seen");
                match r {
                    Ok(()) => {
                        for (tp, l) in consumer.lag() {
                            if let Some(c) = l.committed {
                                st.committed.insert(tp.partition, c);
                            }
                        }
                    }
                    Err(e) => st.commit_errors.push(e.to_string()),
                }
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), consumer.close()).await;
    });
    (seen, task)
}

/// A member of `group` that gives up on a lookup after 5 s (bootstrap and
/// API timeouts) and waits 3 s for a reply, reading from the start; `extra`
/// wins.
fn outage_config(bootstrap: &str, group: &str, extra: &[(&str, &str)]) -> ConsumerConfig {
    let mut props = vec![
        ("group.id", group),
        ("bootstrap.timeout.ms", "5000"),
        ("default.api.timeout.ms", "5000"),
        ("request.timeout.ms", "3000"),
        ("auto.offset.reset", "earliest"),
    ];
    props.extend_from_slice(extra);
    consumer_config(bootstrap, &props)
}

fn records(n: i64, topic: &str, tag: &str) -> Vec<ProducerRecord> {
    (0..PARTITIONS)
        .flat_map(|p| (0..n).map(move |i| (p, i)))
        .map(|(p, i)| ProducerRecord::new(topic, format!("{tag}-{p}-{i}")).partition(p))
        .collect()
}

/// A group member and a consumer with `assign` (committing outside any
/// generation), both reading and committing everything written before the
/// outage, poll through 25 s with the only broker down; once it is back,
/// each receives the one record per partition written then, and nothing
/// it had committed again. A third consumer, assigned before the outage
/// and polled first during it, finds its positions once the broker is
/// back and reads everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_broker_down_longer_than_the_bootstrap_timeout_then_back() {
    tokio::time::timeout(BOUND, async {
        let (kafka, id, b, topic) = private_node("krust-outage", PARTITIONS).await;
        let node = kafka.as_cluster();
        produce(&b, records(BEFORE, &topic, "before")).await;
        let settings = |group: &str| outage_config(&b, group, &[("enable.auto.commit", "false")]);
        let stop = Arc::new(AtomicBool::new(false));
        let mut member = Consumer::new(settings(&unique("g-outage")))
            .await
            .expect("consumer");
        member.subscribe([&topic]).expect("subscribe");
        let mut manual = Consumer::new(settings(&unique("g-outage-assign")))
            .await
            .expect("consumer");
        manual
            .assign((0..PARTITIONS).map(|p| TopicPartition::new(topic.clone(), p)))
            .expect("assign");
        let consumers = [
            ("member", drive(member, stop.clone())),
            ("assign", drive(manual, stop.clone())),
        ];
        let all_committed = BTreeMap::from_iter((0..PARTITIONS).map(|p| (p, BEFORE)));
        for (name, (seen, _)) in &consumers {
            wait_for(
                &format!("{name} read and committed what was written before"),
                Duration::from_secs(40),
                || seen.lock().expect("seen").committed == all_committed,
                || format!("{:?}", seen.lock().expect("seen")),
            )
            .await;
        }
        // Assigned before the outage, polled first during it: its
        // committed offsets (none) and its offset reset are looked up
        // while nothing answers, and its polls must not wait for them.
        let mut late = Consumer::new(settings(&unique("g-outage-late")))
            .await
            .expect("consumer");
        late.assign((0..PARTITIONS).map(|p| TopicPartition::new(topic.clone(), p)))
            .expect("assign");
        let polls_before: Vec<usize> = consumers
            .iter()
            .map(|(_, (s, _))| s.lock().expect("seen").polls)
            .collect();
        node.kill(id).expect("kill");
        let down = Instant::now();
        let late = ("late", drive(late, stop.clone()));
        tokio::time::sleep(OUTAGE).await;
        node.restart(id).expect("restart");
        let up = Instant::now();
        eprintln!("down for {:?}", up - down);
        let consumers: Vec<_> = consumers.into_iter().chain([late]).collect();
        for (i, (name, (seen, _))) in consumers.iter().enumerate() {
            let polls = seen.lock().expect("seen").polls - polls_before.get(i).unwrap_or(&0);
            // A poll of 200 ms with nothing to wait for returns within
            // it; one that waits for a lookup bounded by
            // default.api.timeout.ms (5 s) every time polls 5 times in the
            // outage (8 polls in 39 s were seen before the metadata refresh
            // became a task; the late consumer, whose position lookups
            // poll awaited, polled 6 times in this outage before they did).
            assert!(
                polls >= 2 * (OUTAGE.as_secs() / 5) as usize,
                "{name} kept polling through the outage: {polls} polls"
            );
        }
        produce(&b, records(1, &topic, "after")).await;
        let mut expected: Vec<(i32, i64)> = (0..PARTITIONS)
            .flat_map(|p| (0..=BEFORE).map(move |o| (p, o)))
            .collect();
        expected.sort();
        for (name, (seen, _)) in &consumers {
            wait_for(
                &format!("{name} received what was written after the outage"),
                Duration::from_secs(60),
                || {
                    let s = seen.lock().expect("seen");
                    (0..PARTITIONS).all(|p| s.records.contains(&(p, BEFORE)))
                },
                || format!("{:?}", seen.lock().expect("seen")),
            )
            .await;
        }
        stop.store(true, Ordering::Relaxed);
        for (name, (seen, task)) in consumers {
            task.await.expect("driver");
            let s = seen.lock().expect("seen");
            let mut got = s.records.clone();
            got.sort();
            assert_eq!(
                got, expected,
                "{name}: every record once, nothing committed redelivered"
            );
            let fatal: Vec<_> = s.poll_errors.iter().filter(|(_, _, r)| !*r).collect();
            assert!(
                fatal.is_empty(),
                "{name}: poll errors that are not retriable: {fatal:?}"
            );
            eprintln!(
                "{name}: {} polls (longest {:?}), poll errors (all retriable) {:?}, commit errors {:?}",
                s.polls,
                s.longest_poll.0,
                s.poll_errors.iter().map(|(_, e, _)| e).collect::<Vec<_>>(),
                s.commit_errors
            );
        }
    })
    .await
    .expect("bounded");
}

/// Auto-commit during an outage: a group member with
/// `enable.auto.commit` has records handed out that it has not committed
/// yet when its only broker hangs (SIGSTOP: a long GC pause, a partition
/// without resets; the membership stays Stable until a heartbeat times
/// out); the auto-commit that comes due then waits for its reply up to
/// `request.timeout.ms` and retries up to `default.api.timeout.ms` (5 s).
/// `poll` must not wait for it: each poll of 200 ms returns within a small
/// multiple of that (Java and librdkafka commit asynchronously in poll).
/// Once the broker runs again the offsets are committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_commit_during_an_outage_does_not_hold_poll() {
    tokio::time::timeout(BOUND, async {
        let (kafka, id, b, topic) = private_node("krust-outage-auto", PARTITIONS).await;
        let node = kafka.as_cluster();
        let group = unique("g-outage-auto");
        let mut cfg = outage_config(
            &b,
            &group,
            &[
                ("enable.auto.commit", "true"),
                ("auto.commit.interval.ms", "1000"),
            ],
        );
        cfg.session_timeout = Duration::from_secs(30);
        let mut c = Consumer::new(cfg).await.expect("consumer");
        c.subscribe([&topic]).expect("subscribe");
        produce(&b, records(BEFORE, &topic, "before")).await;
        let mut got = 0;
        let t = Instant::now();
        while got < BEFORE * i64::from(PARTITIONS) {
            assert!(t.elapsed() < Duration::from_secs(40), "read {got} records");
            got += c
                .poll(Duration::from_millis(200))
                .await
                .expect("poll")
                .len() as i64;
        }
        // Handed out, not committed yet: the next auto-commit (within a
        // second) is the one that meets the outage.
        let hung = node.hang(id).expect("pause");
        let down = Instant::now();
        let mut longest = Duration::ZERO;
        let mut polls = 0;
        while down.elapsed() < Duration::from_secs(12) {
            let started = Instant::now();
            let r = c.poll(Duration::from_millis(200)).await;
            longest = longest.max(started.elapsed());
            polls += 1;
            if let Err(e) = r {
                eprintln!("poll during the outage: {e}");
            }
        }
        eprintln!("{polls} polls in the outage, the longest {longest:?}");
        assert!(
            longest < Duration::from_secs(2),
            "a poll of 200 ms lasted {longest:?} during the outage ({polls} polls in 12 s)"
        );
        drop(hung);
        let tps: Vec<TopicPartition> = (0..PARTITIONS)
            .map(|p| TopicPartition::new(topic.clone(), p))
            .collect();
        let t = Instant::now();
        loop {
            let _ = c.poll(Duration::from_millis(200)).await;
            let committed = c.committed(&tps).await.ok();
            let at_end = committed.as_ref().is_some_and(|m| {
                m.values()
                    .all(|o| o.as_ref().map(|o| o.offset) == Some(BEFORE))
            });
            if at_end {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "not committed after the outage: {committed:?}"
            );
        }
        c.close().await.expect("close");
    })
    .await
    .expect("bounded");
}

/// Commits land in the order they were made. An auto-commit that meets a
/// hung broker retries (through `default.api.timeout.ms`); a
/// `commit_async` of later positions made meanwhile must not be overtaken
/// by it: the group's offset would move back, and a consumer that crashed
/// before its next auto-commit would deliver the records between again
/// though they were committed. Seen before the commits of a consumer were
/// chained: the auto-commit, driven only by `poll`, retried once the
/// broker was back, after the `commit_async` had landed, and left the
/// committed offset at 50 instead of 100 until the next auto-commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_async_is_not_overtaken_by_an_auto_commit_retrying() {
    // Long enough that no second auto-commit comes due (and repairs the
    // offset) before the check.
    const INTERVAL: Duration = Duration::from_secs(8);
    tokio::time::timeout(BOUND, async {
        let (kafka, id, b, topic) = private_node("krust-commit-order", 1).await;
        let node = kafka.as_cluster();
        let tp = TopicPartition::new(topic.clone(), 0);
        produce(
            &b,
            (0..100)
                .map(|i| ProducerRecord::new(&topic, format!("r{i}")).partition(0))
                .collect(),
        )
        .await;
        // Outside any generation (`assign`): nothing but the commits meets
        // the hung broker.
        let interval = INTERVAL.as_millis().to_string();
        let cfg = outage_config(
            &b,
            &unique("g-commit-order"),
            &[
                ("enable.auto.commit", "true"),
                ("auto.commit.interval.ms", &interval),
                ("max.poll.records", "50"),
                ("request.timeout.ms", "1000"),
                ("default.api.timeout.ms", "30000"),
            ],
        );
        let mut c = Consumer::new(cfg).await.expect("consumer");
        let created = Instant::now();
        c.assign([tp.clone()]).expect("assign");
        let mut first = Vec::new();
        while first.is_empty() {
            assert!(created.elapsed() < INTERVAL, "nothing read");
            first = c.poll(Duration::from_millis(500)).await.expect("poll");
        }
        let offsets = |b: &[krust_consumer::ConsumerRecord]| -> Vec<i64> {
            b.iter().map(|r| r.offset).collect()
        };
        assert_eq!(offsets(&first), (0..50).collect::<Vec<_>>());
        // The next poll's auto-commit (of 50, what the first poll handed
        // out) comes due and meets the hung broker; that poll hands out
        // the rest of the fetched batch.
        tokio::time::sleep((created + INTERVAL).saturating_duration_since(Instant::now())).await;
        let hung = node.hang(id).expect("hang");
        let second = c.poll(Duration::from_millis(200)).await.expect("poll");
        let due = Instant::now();
        assert_eq!(offsets(&second), (50..100).collect::<Vec<_>>());
        let later = tokio::spawn(c.commit_async());
        // Both time out at least once (request.timeout.ms 1 s) and retry.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        drop(hung);
        tokio::time::timeout(Duration::from_secs(30), later)
            .await
            .expect("commit_async within its timeout")
            .expect("task")
            .expect("commit_async");
        // Polls drive what is left of the auto-commit, if anything.
        let drained = Instant::now();
        while drained.elapsed() < Duration::from_millis(600) {
            let records = c.poll(Duration::from_millis(200)).await.expect("poll");
            assert!(records.is_empty(), "nothing more was written");
        }
        let committed = c
            .committed(std::slice::from_ref(&tp))
            .await
            .expect("committed");
        assert!(
            due.elapsed() < INTERVAL,
            "checked {:?} after the auto-commit: a second one may have come due",
            due.elapsed()
        );
        assert_eq!(
            committed[&tp].as_ref().map(|o| o.offset),
            Some(100),
            "the last commit made (commit_async, of 100) is the one that stands"
        );
        c.close().await.expect("close");
    })
    .await
    .expect("bounded");
}
