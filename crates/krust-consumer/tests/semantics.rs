//! Offset semantics against real brokers (docs/ARCHITECTURE.md, "Offset semantics"):
//! at-least-once under crashes, auto-commit, out-of-order acks,
//! `auto.offset.reset=none`, pause/resume and seek by timestamp.
//!
//! Every test runs on Apache Kafka first (`common::kafka_brokers`: the node
//! this binary shares, then `KAFKA_BOOTSTRAP` when set), with topics and
//! groups of its own (`krust_testkit::unique`).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use common::{create_topic, kafka_brokers};
use krust_consumer::{
    Consumer, ConsumerConfig, ConsumerError, ConsumerRecord, OffsetAndMetadata, TopicPartition,
};
use krust_producer::{Producer, ProducerRecord};
use krust_testkit::{Broker, Capability, unique};

const BOUND: Duration = Duration::from_secs(240);

/// Produce `n` records (`value = i`) round the partitions; returns the log
/// end offset of each partition from the delivery reports.
async fn produce(bootstrap: &str, topic: &str, partitions: i32, n: usize) -> BTreeMap<i32, i64> {
    produce_with(bootstrap, topic, n, |i| {
        let p = i32::try_from(i).expect("small") % partitions;
        ProducerRecord::new(topic, i.to_string()).partition(p)
    })
    .await
}

async fn produce_with(
    bootstrap: &str,
    topic: &str,
    n: usize,
    record: impl Fn(usize) -> ProducerRecord,
) -> BTreeMap<i32, i64> {
    let _ = topic;
    let producer = Producer::builder()
        .bootstrap_servers([bootstrap])
        .linger(Duration::from_millis(2))
        .create()
        .await
        .expect("producer");
    let mut pending = Vec::with_capacity(n);
    for i in 0..n {
        pending.push(producer.send(record(i)).await.expect("send"));
    }
    let mut end = BTreeMap::new();
    for d in pending {
        let m = d.await.expect("delivered");
        let e = end.entry(m.partition).or_insert(0);
        *e = (*e).max(m.offset + 1);
    }
    producer
        .close(Duration::from_secs(10))
        .await
        .expect("close");
    end
}

/// A consumer's settings; `extra` wins. Under `group.protocol=consumer`
/// the broker owns the session and the heartbeat interval (the test nodes
/// set 6 s and 500 ms, as here), so they are not given.
fn config(bootstrap: &str, group: Option<&str>, extra: &[(&str, &str)]) -> ConsumerConfig {
    let mut props = vec![
        ("bootstrap.servers", bootstrap.to_owned()),
        ("auto.offset.reset", "earliest".to_owned()),
        ("enable.auto.commit", "false".to_owned()),
    ];
    if !extra.contains(&("group.protocol", "consumer")) {
        props.push(("session.timeout.ms", "6000".to_owned()));
        props.push(("heartbeat.interval.ms", "500".to_owned()));
    }
    if let Some(g) = group {
        props.push(("group.id", g.to_owned()));
    }
    for (k, v) in extra {
        props.retain(|(key, _)| key != k);
        props.push((k, (*v).to_owned()));
    }
    ConsumerConfig::from_properties(props).expect("config")
}

fn tp(r: &ConsumerRecord) -> TopicPartition {
    TopicPartition::new(&*r.topic, r.partition)
}

/// Run `body` on every broker `kafka_brokers(cap)` gives, each bounded.
async fn on_brokers<F>(cap: Capability, body: impl Fn(Box<dyn Broker>) -> F)
where
    F: std::future::Future<Output = ()>,
{
    for broker in kafka_brokers(cap) {
        let name = broker.name();
        let started = Instant::now();
        tokio::time::timeout(BOUND, body(broker))
            .await
            .unwrap_or_else(|_| panic!("{name}: not done within {BOUND:?}"));
        eprintln!("{name}: passed in {:?}", started.elapsed());
    }
}

/// At-least-once under crashes: two consumers of one group commit after
/// each record and are killed (dropped, no close) at random points, some
/// between processing a record and committing it, and restarted. Every
/// record is delivered; a record is delivered twice only if a killed
/// consumer processed it without committing; the committed offsets end at
/// the log end offsets.
///
/// Killed members leave the group only when their session expires, so the
/// test needs a broker that evicts them (noida-db does not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_under_crashes() {
    on_brokers(Capability::RebalanceTimeoutEviction, |b| async move {
        at_least_once_under_crashes_on(&*b, 20_000, &[]).await;
    })
    .await;
}

/// The same with `group.protocol=consumer` (KIP-848) on Kafka 4.4.0: the
/// broker assigns, revokes and takes back partitions of killed members at
/// their session's end; commits carry the member epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_under_crashes_with_the_consumer_protocol() {
    let kafka = krust_testkit::Kafka::shared_version(krust_testkit::KafkaVersion::V4_4);
    tokio::time::timeout(
        BOUND,
        at_least_once_under_crashes_on(kafka, 20_000, &[("group.protocol", "consumer")]),
    )
    .await
    .expect("bounded");
}

async fn at_least_once_under_crashes_on(
    broker: &dyn Broker,
    total: usize,
    settings: &'static [(&'static str, &'static str)],
) {
    let topic = unique("crashes");
    let topic = topic.as_str();
    create_topic(broker, topic, 6).await;
    let b = broker.bootstrap();
    let end = produce(&b, topic, 6, total).await;
    let group = unique("g-crashes");
    let group = group.as_str();
    // (tp, offset) -> deliveries; uncommitted: what killed consumers
    // processed without committing.
    let delivered = std::sync::Arc::new(std::sync::Mutex::new(HashMap::<(i32, i64), u32>::new()));
    let uncommitted = std::sync::Arc::new(std::sync::Mutex::new(BTreeSet::<(i32, i64)>::new()));
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut kills = 0;
    let deadline = Instant::now() + Duration::from_secs(200);
    // Each round runs two members; each stops after a random number of
    // records (a kill) unless everything was delivered.
    while delivered.lock().unwrap().len() < total {
        assert!(
            Instant::now() < deadline,
            "not done: {} of {total}",
            delivered.lock().unwrap().len()
        );
        let mut members = Vec::new();
        for m in 0..2 {
            let budget = 2_000 + usize::try_from(rnd() % 6_000).unwrap();
            let die_uncommitted = rnd() % 2 == 0;
            let (b, delivered, uncommitted) = (b.clone(), delivered.clone(), uncommitted.clone());
            let (topic, group) = (topic.to_owned(), group.to_owned());
            members.push(tokio::spawn(async move {
                let mut c = Consumer::new(config(&b, Some(&group), settings))
                    .await
                    .expect("consumer");
                c.subscribe([&topic]).expect("subscribe");
                let mut done = 0usize;
                let mut idle_since = Instant::now();
                loop {
                    let batch = c.poll(Duration::from_millis(200)).await.expect("poll");
                    if batch.is_empty() {
                        if idle_since.elapsed() > Duration::from_secs(12) {
                            // Nothing left for this member: close cleanly.
                            c.close().await.expect("close");
                            return (m, done, false);
                        }
                        continue;
                    }
                    idle_since = Instant::now();
                    for r in batch {
                        *delivered
                            .lock()
                            .unwrap()
                            .entry((r.partition, r.offset))
                            .or_default() += 1;
                        done += 1;
                        if done >= budget && die_uncommitted {
                            uncommitted.lock().unwrap().insert((r.partition, r.offset));
                            return (m, done, true); // killed: dropped, no commit
                        }
                        let mut o = BTreeMap::new();
                        o.insert(tp(&r), OffsetAndMetadata::new(r.offset + 1));
                        match c.commit_offsets(o).await {
                            Ok(()) => {}
                            // The partition was revoked meanwhile (a
                            // rebalance): the record counts as processed
                            // without commit, as for a crash.
                            Err(ConsumerError::Offset(e)) => {
                                uncommitted.lock().unwrap().insert((r.partition, r.offset));
                                eprintln!("member {m}: commit refused: {e}");
                            }
                            Err(e) => panic!("commit: {e}"),
                        }
                        if done >= budget {
                            return (m, done, true); // killed after a commit
                        }
                    }
                }
            }));
        }
        for h in members {
            let (m, done, killed) = h.await.expect("member task");
            kills += usize::from(killed);
            eprintln!("member {m}: {done} records, killed: {killed}");
        }
    }
    assert!(kills >= 2, "the run killed members {kills} times");
    let delivered = delivered.lock().unwrap().clone();
    let uncommitted = uncommitted.lock().unwrap().clone();
    for (p, e) in &end {
        for o in 0..*e {
            let n = delivered.get(&(*p, o)).copied().unwrap_or(0);
            assert!(n >= 1, "lost {p}@{o}");
            if n > 1 {
                assert!(
                    uncommitted.contains(&(*p, o)),
                    "{p}@{o} delivered {n} times but was committed"
                );
            }
        }
    }
    // The group's committed offsets are the log end offsets.
    let c = Consumer::new(config(&b, Some(group), settings))
        .await
        .expect("reader");
    let tps: Vec<TopicPartition> = end.keys().map(|p| TopicPartition::new(topic, *p)).collect();
    let committed = c.committed(&tps).await.expect("committed");
    for (p, e) in &end {
        let got = committed[&TopicPartition::new(topic, *p)]
            .as_ref()
            .map(|o| o.offset);
        assert_eq!(got, Some(*e), "partition {p}");
    }
}

/// Auto-commit commits only what was handed out before the previous poll
/// (docs/ARCHITECTURE.md, "Offset semantics"): A crashes (is dropped) while
/// it processes the batch of its last poll, and the group's committed
/// offsets lie within what A had been handed before that poll: never a
/// record it may still have been processing, never a record it was not
/// handed. B then starts exactly at those offsets, and A and B together
/// saw every record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_commit_crash_loses_nothing() {
    on_brokers(Capability::ClassicGroups, |broker| async move {
        let topic = unique("auto");
        let topic = topic.as_str();
        let group = unique("g-auto");
        create_topic(&*broker, topic, 3).await;
        let b = broker.bootstrap();
        let end = produce(&b, topic, 3, 3_000).await;
        let props = [
            ("enable.auto.commit", "true"),
            ("auto.commit.interval.ms", "200"),
            ("max.poll.records", "50"),
        ];
        let mut a = Consumer::new(config(&b, Some(&group), &props))
            .await
            .expect("a");
        a.subscribe([topic]).expect("subscribe");
        let mut seen_a = BTreeSet::new();
        // Per partition, the end of what A was handed out before its last
        // poll (`before_last`), and up to now (`handed`).
        let mut handed: BTreeMap<i32, i64> = BTreeMap::new();
        let mut before_last = handed.clone();
        let start = Instant::now();
        while seen_a.len() < 1_200 {
            assert!(start.elapsed() < Duration::from_secs(60), "a stalled");
            before_last.clone_from(&handed);
            for r in a.poll(Duration::from_millis(200)).await.expect("poll") {
                seen_a.insert((r.partition, r.offset));
                let e = handed.entry(r.partition).or_default();
                *e = (*e).max(r.offset + 1);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(a); // crash while processing the last batch: no final commit
        let tps: Vec<TopicPartition> = (0..3).map(|p| TopicPartition::new(topic, p)).collect();
        let mut b2 = Consumer::new(config(&b, Some(&group), &props))
            .await
            .expect("b");
        let committed = b2.committed(&tps).await.expect("committed");
        for (tp, o) in &committed {
            let Some(o) = o else { continue };
            let bound = before_last.get(&tp.partition).copied().unwrap_or(0);
            assert!(
                o.offset <= bound,
                "{tp}: committed {} but A had been handed out only up to {bound} before its \
                 last poll (up to {:?} with it)",
                o.offset,
                handed.get(&tp.partition)
            );
            // Nothing committed that A had not been handed.
            for off in 0..o.offset {
                assert!(
                    seen_a.contains(&(tp.partition, off)),
                    "{tp}@{off} committed, never handed out"
                );
            }
        }
        assert!(
            committed.values().any(Option::is_some),
            "auto-commit committed something"
        );
        b2.subscribe([topic]).expect("subscribe");
        let mut seen_b = BTreeSet::new();
        let mut first: BTreeMap<i32, i64> = BTreeMap::new();
        let start = Instant::now();
        while !end.iter().all(|(p, e)| seen_b.contains(&(*p, e - 1))) {
            assert!(start.elapsed() < Duration::from_secs(60), "b stalled");
            for r in b2.poll(Duration::from_millis(200)).await.expect("poll") {
                first.entry(r.partition).or_insert(r.offset);
                seen_b.insert((r.partition, r.offset));
            }
        }
        // B starts exactly at the committed offsets; together they saw all.
        for tp in &tps {
            let c = committed[tp].as_ref().map_or(0, |o| o.offset);
            assert_eq!(
                first.get(&tp.partition).copied(),
                Some(c),
                "{tp} resumes at the commit"
            );
        }
        for (p, e) in &end {
            for o in 0..*e {
                assert!(
                    seen_a.contains(&(*p, o)) || seen_b.contains(&(*p, o)),
                    "lost {p}@{o}"
                );
            }
        }
        b2.close().await.expect("close");
    })
    .await;
}

/// Explicit acks in a shuffled order: the committed offset never passes a
/// record that is not acked, and reaches the end once all are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_acks_never_commit_a_gap() {
    on_brokers(Capability::CommitOffsets, |broker| async move {
        let topic = unique("acks");
        let topic = topic.as_str();
        let group = unique("g-acks");
        create_topic(&*broker, topic, 1).await;
        let b = broker.bootstrap();
        let end = produce(&b, topic, 1, 300).await;
        let tp0 = TopicPartition::new(topic, 0);
        let mut c = Consumer::new(config(
            &b,
            Some(&group),
            &[("acknowledgement.mode", "explicit")],
        ))
        .await
        .expect("consumer");
        c.assign([tp0.clone()]).expect("assign");
        let mut records = Vec::new();
        let start = Instant::now();
        while records.len() < 300 {
            assert!(start.elapsed() < Duration::from_secs(30), "stalled");
            records.extend(c.poll(Duration::from_millis(200)).await.expect("poll"));
        }
        let mut seed: u64 = 42;
        for i in (1..records.len()).rev() {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let j = usize::try_from(seed >> 33).unwrap() % (i + 1);
            records.swap(i, j);
        }
        let mut acked = BTreeSet::new();
        for (n, r) in records.iter().enumerate() {
            // Ack from another task: handles are 'static + Send.
            let h = r.ack_handle();
            tokio::spawn(async move { h.ack() })
                .await
                .expect("ack task");
            acked.insert(r.offset);
            if n % 10 == 9 || n + 1 == records.len() {
                c.commit().await.expect("commit");
                let got = c
                    .committed(std::slice::from_ref(&tp0))
                    .await
                    .expect("committed")[&tp0]
                    .as_ref()
                    .map_or(0, |o| o.offset);
                for o in 0..got {
                    assert!(acked.contains(&o), "committed {got} passes unacked {o}");
                }
                let first_gap = (0..end[&0]).find(|o| !acked.contains(o)).unwrap_or(end[&0]);
                assert_eq!(got, first_gap, "commits the whole acked prefix");
            }
        }
        assert_eq!(
            c.committed(std::slice::from_ref(&tp0))
                .await
                .expect("committed")[&tp0]
                .as_ref()
                .map(|o| o.offset),
            Some(end[&0])
        );
    })
    .await;
}

/// `auto.offset.reset=none` with nothing committed: a typed error naming
/// the partitions, from poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_none_names_the_partitions() {
    on_brokers(Capability::CommitOffsets, |broker| async move {
        let topic = unique("none");
        let topic = topic.as_str();
        let group = unique("g-none");
        create_topic(&*broker, topic, 2).await;
        let b = broker.bootstrap();
        let mut c = Consumer::new(config(&b, Some(&group), &[("auto.offset.reset", "none")]))
            .await
            .expect("consumer");
        let tps = [TopicPartition::new(topic, 0), TopicPartition::new(topic, 1)];
        c.assign(tps.clone()).expect("assign");
        match c.poll(Duration::from_secs(5)).await {
            Err(ConsumerError::NoOffset { partitions }) => {
                assert_eq!(partitions, tps);
                let msg = ConsumerError::NoOffset { partitions }.to_string();
                assert!(
                    msg.contains(&format!("{topic}-0")) && msg.contains(&format!("{topic}-1")),
                    "{msg}"
                );
            }
            other => panic!("expected NoOffset, got {other:?}"),
        }
    })
    .await;
}

/// Pause stops one partition without losing what was prefetched; resume
/// continues exactly where it stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_and_resume_keep_the_position() {
    on_brokers(Capability::Fetch, |broker| async move {
        let topic = unique("pause");
        let topic = topic.as_str();
        create_topic(&*broker, topic, 2).await;
        let b = broker.bootstrap();
        let end = produce(&b, topic, 2, 400).await;
        let (p0, p1) = (TopicPartition::new(topic, 0), TopicPartition::new(topic, 1));
        let mut c = Consumer::new(config(&b, None, &[("max.poll.records", "20")]))
            .await
            .expect("consumer");
        c.assign([p0.clone(), p1.clone()]).expect("assign");
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        let take = |batch: Vec<ConsumerRecord>, next: &mut BTreeMap<i32, i64>| {
            for r in batch {
                let n = next.entry(r.partition).or_insert(0);
                assert_eq!(r.offset, *n, "partition {} in order, no gap", r.partition);
                *n += 1;
            }
        };
        while next.get(&0).copied().unwrap_or(0) == 0 {
            take(
                c.poll(Duration::from_millis(500)).await.expect("poll"),
                &mut next,
            );
        }
        c.pause(std::slice::from_ref(&p0)).expect("pause");
        assert_eq!(c.paused(), BTreeSet::from([p0.clone()]));
        let at_pause = next[&0];
        let start = Instant::now();
        while next.get(&1).copied().unwrap_or(0) < end[&1] {
            assert!(start.elapsed() < Duration::from_secs(30), "p1 stalled");
            let batch = c.poll(Duration::from_millis(200)).await.expect("poll");
            assert!(
                batch.iter().all(|r| r.partition == 1),
                "nothing of a paused partition"
            );
            take(batch, &mut next);
        }
        assert_eq!(next[&0], at_pause);
        assert_eq!(c.position(&p0), Some(at_pause));
        c.resume(std::slice::from_ref(&p0)).expect("resume");
        while next[&0] < end[&0] {
            assert!(start.elapsed() < Duration::from_secs(60), "p0 stalled");
            take(
                c.poll(Duration::from_millis(200)).await.expect("poll"),
                &mut next,
            );
        }
        let lag = c.lag();
        assert_eq!(lag[&p0].lag, Some(0));
        assert_eq!(lag[&p1].lag, Some(0));
        assert_eq!(
            lag[&p0].behind,
            Some(Duration::ZERO),
            "caught up: no lag in time"
        );
        assert!(
            c.pause(&[TopicPartition::new(topic, 7)]).is_err(),
            "not assigned"
        );
    })
    .await;
}

/// Pause, resume, seek, lag and commits in a `group.protocol=consumer`
/// group (KIP-848, Kafka 4.4.0), as they work with `assign` above: a
/// paused partition hands out nothing and keeps its position, resume goes
/// on from there, a seek to the beginning replays from offset 0, lag is 0
/// at the end, and `commit()` commits the positions at the member epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_seek_and_lag_in_a_consumer_protocol_group() {
    let kafka = krust_testkit::Kafka::shared_version(krust_testkit::KafkaVersion::V4_4);
    tokio::time::timeout(BOUND, async {
        let topic = unique("kip848-pause");
        let topic = topic.as_str();
        let group = unique("g-kip848-pause");
        create_topic(kafka, topic, 2).await;
        let b = kafka.bootstrap();
        let end = produce(&b, topic, 2, 400).await;
        let (p0, p1) = (TopicPartition::new(topic, 0), TopicPartition::new(topic, 1));
        let settings = [("group.protocol", "consumer"), ("max.poll.records", "20")];
        let mut c = Consumer::new(config(&b, Some(&group), &settings))
            .await
            .expect("consumer");
        c.subscribe([topic]).expect("subscribe");
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        let take = |batch: Vec<ConsumerRecord>, next: &mut BTreeMap<i32, i64>| {
            for r in batch {
                let n = next.entry(r.partition).or_insert(0);
                assert_eq!(r.offset, *n, "partition {} in order, no gap", r.partition);
                *n += 1;
            }
        };
        let start = Instant::now();
        while next.get(&0).copied().unwrap_or(0) == 0 {
            assert!(start.elapsed() < Duration::from_secs(30), "nothing of p0");
            take(
                c.poll(Duration::from_millis(200)).await.expect("poll"),
                &mut next,
            );
        }
        assert_eq!(c.assignment(), BTreeSet::from([p0.clone(), p1.clone()]));
        c.pause(std::slice::from_ref(&p0)).expect("pause");
        let at_pause = next[&0];
        while next.get(&1).copied().unwrap_or(0) < end[&1] {
            assert!(start.elapsed() < Duration::from_secs(60), "p1 stalled");
            let batch = c.poll(Duration::from_millis(200)).await.expect("poll");
            assert!(
                batch.iter().all(|r| r.partition == 1),
                "nothing of a paused partition"
            );
            take(batch, &mut next);
        }
        assert_eq!(c.position(&p0), Some(at_pause));
        c.resume(std::slice::from_ref(&p0)).expect("resume");
        while next[&0] < end[&0] {
            assert!(start.elapsed() < Duration::from_secs(90), "p0 stalled");
            take(
                c.poll(Duration::from_millis(200)).await.expect("poll"),
                &mut next,
            );
        }
        let lag = c.lag();
        assert_eq!((lag[&p0].lag, lag[&p1].lag), (Some(0), Some(0)));
        c.commit().await.expect("commit at the member epoch");
        let committed = c
            .committed(&[p0.clone(), p1.clone()])
            .await
            .expect("committed");
        for (tp, e) in [(&p0, end[&0]), (&p1, end[&1])] {
            assert_eq!(committed[tp].as_ref().map(|o| o.offset), Some(e), "{tp}");
        }
        c.seek_to_beginning(std::slice::from_ref(&p1))
            .await
            .expect("seek");
        assert_eq!(c.position(&p1), Some(0));
        let first = loop {
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "nothing after the seek"
            );
            if let Some(r) = c
                .poll(Duration::from_millis(200))
                .await
                .expect("poll")
                .into_iter()
                .next()
            {
                break r;
            }
        };
        assert_eq!(
            (first.partition, first.offset),
            (1, 0),
            "replayed from the start"
        );
        c.close().await.expect("close");
    })
    .await
    .expect("bounded");
}

/// Seek by timestamp (ListOffsets by time; Tansu answers 0, so it is not
/// among the brokers of `Capability::ListOffsetsByTimestamp`): the first
/// record at or after the time is next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seek_by_timestamp() {
    on_brokers(Capability::ListOffsetsByTimestamp, |broker| async move {
        let topic = unique("times");
        let topic = topic.as_str();
        create_topic(&*broker, topic, 1).await;
        let b = broker.bootstrap();
        let base = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis();
        let base = i64::try_from(base).expect("ms") - 600_000;
        produce_with(&b, topic, 100, |i| {
            ProducerRecord::new(topic, i.to_string())
                .partition(0)
                .timestamp(base + 1_000 * i64::try_from(i).expect("small"))
        })
        .await;
        let tp0 = TopicPartition::new(topic, 0);
        let mut c = Consumer::new(config(&b, None, &[]))
            .await
            .expect("consumer");
        c.assign([tp0.clone()]).expect("assign");
        // Between record 41 (base + 41 s) and 42: the next one is 42.
        c.seek_to_timestamp(std::slice::from_ref(&tp0), base + 41_500)
            .await
            .expect("seek");
        assert_eq!(c.position(&tp0), Some(42));
        let start = Instant::now();
        let first = loop {
            assert!(start.elapsed() < Duration::from_secs(30), "stalled");
            if let Some(r) = c
                .poll(Duration::from_millis(500))
                .await
                .expect("poll")
                .into_iter()
                .next()
            {
                break r;
            }
        };
        assert_eq!(first.offset, 42);
        assert_eq!(first.timestamp, base + 42_000);
        assert_eq!(first.value(), Some(&b"42"[..]));
        // Past every record: the end.
        c.seek_to_timestamp(std::slice::from_ref(&tp0), base + 1_000_000)
            .await
            .expect("seek");
        assert_eq!(c.position(&tp0), Some(100));
        c.seek_to_beginning(std::slice::from_ref(&tp0))
            .await
            .expect("seek");
        assert_eq!(c.position(&tp0), Some(0));
    })
    .await;
}

/// The `Stream` of records: every record once, in order per partition;
/// `commit_async` (a `'static` future, here on another task) commits the
/// positions reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_and_commit_async() {
    use futures_core::Stream;
    on_brokers(Capability::CommitOffsets, |broker| async move {
        let topic = unique("stream");
        let topic = topic.as_str();
        let group = unique("g-stream");
        create_topic(&*broker, topic, 3).await;
        let b = broker.bootstrap();
        let end = produce(&b, topic, 3, 900).await;
        let mut c = Consumer::new(config(&b, Some(&group), &[("max.poll.records", "7")]))
            .await
            .expect("consumer");
        let tps: Vec<TopicPartition> = (0..3).map(|p| TopicPartition::new(topic, p)).collect();
        c.assign(tps.clone()).expect("assign");
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        {
            let mut s = std::pin::pin!(c.stream());
            let mut n = 0;
            while n < 900 {
                let r = std::future::poll_fn(|cx| s.as_mut().poll_next(cx))
                    .await
                    .expect("the stream does not end")
                    .expect("record");
                let e = next.entry(r.partition).or_insert(0);
                assert_eq!(r.offset, *e, "partition {} in order, once", r.partition);
                *e += 1;
                n += 1;
            }
        }
        assert_eq!(next, end);
        let commit = c.commit_async();
        tokio::spawn(commit).await.expect("task").expect("commit");
        let committed = c.committed(&tps).await.expect("committed");
        for tp in &tps {
            assert_eq!(
                committed[tp].as_ref().map(|o| o.offset),
                Some(end[&tp.partition])
            );
        }
    })
    .await;
}
