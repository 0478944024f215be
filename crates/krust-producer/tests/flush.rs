//! `flush()` as in Java: it returns once every record sent before the call
//! has completed, and does not wait for records sent while it waits (a
//! producer that never stops sending must still be able to flush).
//!
//! The records sent before the flush go to a partition led by a prompt
//! broker, those sent during it to one led by a broker that does not answer
//! in time. A flush that waited for both would not return in time.
//!
//! - On Apache Kafka 4.4.0 (a 3-node `KafkaCluster`, one topic with
//!   replication factor 1 whose partitions sit on different nodes): the
//!   late partition's node is hung (`SIGSTOP`) during the flush, and
//!   resumed before the second flush.
//! - On the librdkafka mock, the only fixture that can make a broker slow
//!   without stopping it (`rtt`): the late broker answers `SLOW` late.

mod common;

use std::time::{Duration, Instant};

use common::record;
use krust_producer::{Acks, Producer, ProducerConfig};
use krust_testkit::{Broker, KafkaCluster, MockCluster, unique};

const SLOW: Duration = Duration::from_millis(1500);
/// Without a flush, records wait this long: far longer than sending 1,000
/// records can take on a loaded machine, so the last batch is still open
/// when the flush comes (with 3 s it had lingered out once while three
/// Kafka JVMs started beside the test).
const LINGER: Duration = Duration::from_secs(30);

/// Where records go: a topic and a partition.
type Target<'a> = (&'a str, i32);

/// Warm up both targets, `slow()` down the late one, send 1,000 records to
/// the prompt one, flush while sending 100 more to the late one: the flush
/// returns within `bound` having completed the first 1,000. Then `restore()`
/// and a second flush completes the 100.
async fn flush_waits_for_earlier_records_only(
    name: &str,
    producer: Producer,
    prompt: Target<'_>,
    late: Target<'_>,
    bound: Duration,
    slow: impl FnOnce(),
    restore: impl FnOnce(),
) {
    let send = |(topic, partition): Target<'_>, i| record(topic, i).partition(partition);
    // Connect to both brokers before one turns slow.
    for target in [prompt, late] {
        let f = producer.send(send(target, 0)).await.expect("send");
        producer.flush().await.expect("warm-up flush");
        f.await.expect("warm-up record");
    }
    slow();

    let mut before = Vec::new();
    for i in 0..1_000 {
        before.push(producer.send(send(prompt, i)).await.expect("send"));
    }
    let started = Instant::now();
    let flush = producer.flush();
    tokio::pin!(flush);
    // The first poll hands the flush to the producer's task, ahead of the
    // records sent below. It may even come back done: a test thread
    // preempted between handing it over and waiting on its answer (a
    // loaded machine) gives the task time to deliver the 1,000 to the
    // prompt broker first. Either way the records below come after it.
    let early = tokio::time::timeout(Duration::ZERO, &mut flush).await.ok();
    let mut during = Vec::new();
    for i in 1_000..1_100 {
        during.push(producer.send(send(late, i)).await.expect("send"));
    }
    match early {
        Some(done) => done,
        None => tokio::time::timeout(bound, flush).await.unwrap_or_else(|_| {
            panic!("{name}: flush() did not return within {bound:?}: it waited for the records sent during it")
        }),
    }
    .expect("flush");
    let took = started.elapsed();
    for (i, f) in before.into_iter().enumerate() {
        // Resolved already: a zero timeout polls the future once.
        tokio::time::timeout(Duration::ZERO, f)
            .await
            .unwrap_or_else(|_| panic!("{name}: record {i}, sent before flush(), is still pending"))
            .unwrap_or_else(|e| panic!("{name}: record {i}: {e}"));
    }

    // Those are delivered too, by the next flush.
    restore();
    let started = Instant::now();
    producer.flush().await.expect("second flush");
    let second = started.elapsed();
    for (i, f) in during.into_iter().enumerate() {
        tokio::time::timeout(Duration::ZERO, f)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{name}: record {} pending after the second flush",
                    1_000 + i
                )
            })
            .unwrap_or_else(|e| panic!("{name}: record {}: {e}", 1_000 + i));
    }
    eprintln!(
        "{name}: flush() of 1,000 records took {took:?} while 100 were sent to a slow \
         broker; the second flush() took {second:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_waits_for_earlier_records_only_on_kafka() {
    let cluster = KafkaCluster::start();
    let topic = unique("krust-producer-flush");
    // Replication factor 1: each partition lives on one node only, so the
    // prompt one does not wait for the hung node as a follower.
    cluster.create_topic_with(&topic, 3, 1).expect("topic");
    let leaders: Vec<i32> = (0..3)
        .map(|p| cluster.leader(&topic, p).expect("leader"))
        .collect();
    let late = 0;
    let prompt = (1..3)
        .find(|&p| leaders[usize::try_from(p).expect("small")] != leaders[0])
        .unwrap_or_else(|| panic!("all partitions on one node: {leaders:?}"));
    let hung = leaders[0];
    let config = ProducerConfig::builder()
        .bootstrap_servers([cluster.bootstrap()])
        // One replica: acks=all would need min.insync.replicas=1.
        .acks(Acks::Leader)
        .linger(LINGER)
        .build()
        .expect("config");
    let producer = Producer::new(config).await.expect("producer");
    flush_waits_for_earlier_records_only(
        &cluster.name(),
        producer,
        (&topic, prompt),
        (&topic, late),
        // Far below the request timeout (30 s) that would end a wait for
        // the hung node, and the linger.
        Duration::from_millis(2500),
        || cluster.pause(hung).expect("hang the late partition's node"),
        || cluster.resume(hung).expect("resume it"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_waits_for_earlier_records_only_on_the_mock() {
    const PROMPT: &str = "krust-producer-flush-prompt";
    const LATE: &str = "krust-producer-flush-late";
    let mock = MockCluster::start(2, &[(PROMPT, 1), (LATE, 1)]);
    mock.set_leader(PROMPT, 0, 1).expect("leader");
    mock.set_leader(LATE, 0, 2).expect("leader");
    let config = ProducerConfig::builder()
        .bootstrap_servers([mock.bootstrap()])
        .linger(LINGER)
        .build()
        .expect("config");
    let producer = Producer::new(config).await.expect("producer");
    flush_waits_for_earlier_records_only(
        &mock.name(),
        producer,
        (PROMPT, 0),
        (LATE, 0),
        SLOW * 2 / 3,
        || {
            mock.set_rtt(2, u32::try_from(SLOW.as_millis()).expect("ms"))
                .expect("slow broker 2");
        },
        || {},
    )
    .await;
}
