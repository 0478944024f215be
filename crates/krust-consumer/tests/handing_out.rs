//! What the consumer hands out and what it commits at the edges of the
//! application's use of it (issue 11): records a dropped `stream()` had
//! not yet yielded go back to the consumer; explicit acks keep a bounded
//! window of unacked records per partition (`max.unacked.records.per.partition`)
//! and stop handing a partition out when it is full; `close()` commits the
//! acked prefix with explicit acks even without auto-commit.
//!
//! On the Apache Kafka 4.4.0 node this binary shares, with topics and
//! groups of their own (`krust_testkit::unique`): offsets and commits are
//! what Kafka specifies, and no emulator adds coverage here.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{create_topic, group_config, produce};
use krust_consumer::{Consumer, ConsumerConfig, ConsumerRecord, TopicPartition};
use krust_producer::ProducerRecord;
use krust_testkit::{Kafka, unique};

const BOUND: Duration = Duration::from_secs(90);

/// `group_config` with quick polls.
fn config(bootstrap: &str, group: &str, extra: &[(&str, &str)]) -> ConsumerConfig {
    let mut props = vec![("fetch.max.wait.ms", "100")];
    props.extend_from_slice(extra);
    group_config(bootstrap, group, &props)
}

/// A one-partition topic holding `n` records (values `0..n`).
async fn topic_with(kafka: &Kafka, prefix: &str, n: usize) -> String {
    let topic = unique(prefix);
    create_topic(kafka, &topic, 1).await;
    let records = (0..n)
        .map(|i| ProducerRecord::new(topic.as_str(), i.to_string()).partition(0))
        .collect();
    for (i, md) in produce(&kafka.addr(), records).await.iter().enumerate() {
        assert_eq!(
            md.offset,
            i64::try_from(i).expect("small"),
            "offsets from 0"
        );
    }
    topic
}

/// The group's committed offset of `topic`-0.
async fn committed(bootstrap: &str, group: &str, topic: &str) -> Option<i64> {
    let c = Consumer::new(config(bootstrap, group, &[]))
        .await
        .expect("reader");
    let tp = TopicPartition::new(topic, 0);
    let got = c
        .committed(std::slice::from_ref(&tp))
        .await
        .expect("committed");
    got[&tp].as_ref().map(|o| o.offset)
}

/// Poll until a non-empty batch comes (bounded).
async fn next_batch(c: &mut Consumer) -> Vec<ConsumerRecord> {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let batch = c.poll(Duration::from_millis(200)).await.expect("poll");
        if !batch.is_empty() {
            return batch;
        }
        assert!(Instant::now() < until, "no records within 30 s");
    }
}

/// Issue 11 item 2: a group consumer with auto-commit and
/// `max.poll.records=50` takes 10 records with `stream().take(10)` and
/// drops the stream. The 40 records of that poll it never yielded go back
/// to the consumer: the next `poll()` starts at offset 10, and the
/// auto-commit that poll makes commits 10, not past it. With explicit
/// acks the same holds, and the records given back are not waited for:
/// once the records handed out again are acked the commit moves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_stream_gives_back_what_it_did_not_yield() {
    let kafka = Kafka::shared();
    let b = kafka.addr();
    tokio::time::timeout(BOUND, async {
        let topic = topic_with(kafka, "stream-drop", 200).await;
        for mode in ["implicit", "explicit"] {
            let group = unique("g-stream-drop");
            let props = [
                ("enable.auto.commit", "true"),
                ("auto.commit.interval.ms", "100"),
                ("max.poll.records", "50"),
                ("acknowledgement.mode", mode),
            ];
            let mut c = Consumer::new(config(&b, &group, &props))
                .await
                .expect("consumer");
            c.subscribe([topic.as_str()]).expect("subscribe");
            let first: Vec<ConsumerRecord> = {
                let mut s = std::pin::pin!(c.stream());
                let mut out = Vec::new();
                while out.len() < 10 {
                    let r =
                        std::future::poll_fn(|cx| futures_core::Stream::poll_next(s.as_mut(), cx))
                            .await
                            .expect("the stream does not end")
                            .expect("record");
                    out.push(r);
                }
                out
            };
            let offsets: Vec<i64> = first.iter().map(|r| r.offset).collect();
            assert_eq!(
                offsets,
                (0..10).collect::<Vec<_>>(),
                "{mode}: the stream from 0"
            );
            for r in &first {
                r.ack();
            }
            // Let the auto-commit interval pass: the next poll commits.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let batch = next_batch(&mut c).await;
            assert_eq!(
                batch[0].offset, 10,
                "{mode}: the poll after the dropped stream starts where the stream stopped"
            );
            let got = committed(&b, &group, &topic).await;
            assert!(
                got.is_none_or(|o| o <= 10),
                "{mode}: committed {got:?}, past the 10 records the stream yielded"
            );
            for r in &batch {
                r.ack();
            }
            let end = batch.last().expect("non-empty").offset + 1;
            c.commit().await.expect("commit");
            assert_eq!(
                committed(&b, &group, &topic).await,
                Some(end),
                "{mode}: the commit after acking what was handed out again"
            );
            c.close().await.expect("close");
        }
    })
    .await
    .expect("within the bound");
}

/// Issue 11 item 7: with explicit acks one record never acked must not
/// make the ack ledger grow with every later record. A partition has at
/// most `max.unacked.records.per.partition` records handed out from its
/// first unacked one on (default 10000); when the window is full that
/// partition is not handed out any more until acks come, and acking the
/// first record opens it again exactly where it stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacked_records_are_bounded_per_partition() {
    let kafka = Kafka::shared();
    let b = kafka.addr();
    tokio::time::timeout(BOUND, async {
        let topic = topic_with(kafka, "ack-window", 10_300).await;
        for (window, extra) in [(10_000usize, None), (100, Some("100"))] {
            let group = unique("g-ack-window");
            // max.poll.records does not divide the window: the poll that
            // fills it hands out only what fits.
            let mut props = vec![
                ("acknowledgement.mode", "explicit"),
                (
                    "max.poll.records",
                    if extra.is_some() { "30" } else { "300" },
                ),
            ];
            if let Some(w) = extra {
                props.push(("max.unacked.records.per.partition", w));
            }
            let mut c = Consumer::new(config(&b, &group, &props))
                .await
                .expect("consumer");
            c.subscribe([topic.as_str()]).expect("subscribe");
            let mut first: Option<ConsumerRecord> = None;
            let mut got: Vec<i64> = Vec::new();
            let until = Instant::now() + Duration::from_secs(40);
            let mut full_at: Option<Instant> = None;
            // Until the window is full, then 1.5 s more: nothing past it.
            while full_at.is_none_or(|t| t.elapsed() < Duration::from_millis(1500)) {
                for r in c.poll(Duration::from_millis(100)).await.expect("poll") {
                    got.push(r.offset);
                    if r.offset == 0 {
                        first = Some(r);
                    } else {
                        r.ack();
                    }
                }
                if got.len() >= window && full_at.is_none() {
                    full_at = Some(Instant::now());
                }
                assert!(
                    Instant::now() < until,
                    "window {window}: only {} records within 40 s",
                    got.len()
                );
            }
            let w = i64::try_from(window).expect("small");
            assert_eq!(
                got.len(),
                window,
                "window {window}: records handed out while offset 0 was never acked \
                 (the last {:?})",
                got.last()
            );
            assert!(
                got.iter().copied().eq(0..w),
                "window {window}: in order from 0"
            );
            first.take().expect("offset 0 handed out").ack();
            let batch = next_batch(&mut c).await;
            assert_eq!(
                batch[0].offset, w,
                "window {window}: acking 0 opens the window"
            );
            for r in &batch {
                r.ack();
            }
            c.close().await.expect("close");
        }
    })
    .await
    .expect("within the bound");
}

/// Issue 11 item 8: `close()` with explicit acks and without auto-commit
/// is a revoke of every partition: the acked prefix is committed (10
/// records acked: committed offset 10). With implicit acks and without
/// auto-commit nothing is committed, as in Java.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_commits_the_acked_prefix() {
    let kafka = Kafka::shared();
    let b = kafka.addr();
    tokio::time::timeout(BOUND, async {
        let topic = topic_with(kafka, "close-acked", 30).await;
        let mut expected = BTreeMap::new();
        for mode in ["explicit", "implicit"] {
            let group = unique("g-close-acked");
            let props = [("acknowledgement.mode", mode), ("max.poll.records", "10")];
            let mut c = Consumer::new(config(&b, &group, &props))
                .await
                .expect("consumer");
            c.subscribe([topic.as_str()]).expect("subscribe");
            let batch = next_batch(&mut c).await;
            assert_eq!(batch.len(), 10, "{mode}: max.poll.records");
            for r in &batch {
                r.ack();
            }
            c.close().await.expect("close");
            let got = committed(&b, &group, &topic).await;
            expected.insert(mode, got);
        }
        assert_eq!(
            expected["explicit"],
            Some(10),
            "explicit acks: close commits the acked prefix"
        );
        assert_eq!(
            expected["implicit"], None,
            "implicit acks without auto-commit: close commits nothing"
        );
    })
    .await
    .expect("within the bound");
}

/// `close()` waits for the acks of records still in flight, not for those
/// the application dropped unacked (the CLI's `-c N` stops mid-batch and
/// drops the rest): with 5 of 10 records acked and the other 5 dropped,
/// close commits 5 and returns without waiting out the revoke budget
/// (30 s here: `max.poll.interval.ms` 300 s, capped at 30 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_does_not_wait_for_records_dropped_unacked() {
    let kafka = Kafka::shared();
    let b = kafka.addr();
    tokio::time::timeout(BOUND, async {
        let topic = topic_with(kafka, "close-dropped", 30).await;
        let group = unique("g-close-dropped");
        let props = [
            ("acknowledgement.mode", "explicit"),
            ("max.poll.records", "10"),
        ];
        let mut c = Consumer::new(config(&b, &group, &props))
            .await
            .expect("consumer");
        c.subscribe([topic.as_str()]).expect("subscribe");
        let batch = next_batch(&mut c).await;
        assert_eq!(batch.len(), 10, "max.poll.records");
        for r in &batch[..5] {
            r.ack();
        }
        drop(batch);
        let started = Instant::now();
        c.close().await.expect("close");
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(15),
            "close waited {took:?} for acks no handle could send"
        );
        assert_eq!(committed(&b, &group, &topic).await, Some(5));
    })
    .await
    .expect("within the bound");
}

/// Records dropped without an ack can never be acked: once they fill the
/// window the partition is held back for good, and `lag()` says so
/// (`acks_lost`, with `unacked` at the window) instead of the partition
/// only going quiet; a seek moves it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_dropped_unacked_show_in_lag() {
    let kafka = Kafka::shared();
    let b = kafka.addr();
    tokio::time::timeout(BOUND, async {
        let topic = topic_with(kafka, "acks-lost", 100).await;
        let props = [
            ("acknowledgement.mode", "explicit"),
            ("max.poll.records", "10"),
            ("max.unacked.records.per.partition", "30"),
        ];
        let mut c = Consumer::new(config(&b, &unique("g-acks-lost"), &props))
            .await
            .expect("consumer");
        c.subscribe([topic.as_str()]).expect("subscribe");
        let tp = TopicPartition::new(topic.clone(), 0);
        let first = next_batch(&mut c).await;
        assert_eq!(first[0].offset, 0);
        let lag = c.lag()[&tp];
        assert_eq!((lag.unacked, lag.acks_lost), (10, false), "held, not lost");
        drop(first);
        let mut got = 10;
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            got += c
                .poll(Duration::from_millis(100))
                .await
                .expect("poll")
                .len();
        }
        assert_eq!(got, 30, "the window, then nothing");
        let lag = c.lag()[&tp];
        assert_eq!(
            (lag.unacked, lag.acks_lost),
            (30, true),
            "every record dropped unacked: {lag:?}"
        );
        c.seek(&tp, 0).expect("seek");
        let lag = c.lag()[&tp];
        assert_eq!((lag.unacked, lag.acks_lost), (0, false), "{lag:?}");
        let again = next_batch(&mut c).await;
        assert_eq!(again[0].offset, 0, "a seek moves it again");
        for r in &again {
            r.ack();
        }
        c.close().await.expect("close");
    })
    .await
    .expect("within the bound");
}
