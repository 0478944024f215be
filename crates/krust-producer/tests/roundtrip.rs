//! 10,000 keyed records with headers and timestamps, for each compression
//! type, to a 6-partition topic on every broker (Apache Kafka 4.4.0 first,
//! then Tansu, noida-db, the 3-broker librdkafka mock, and `KAFKA_BOOTSTRAP`
//! when set), read back with raw Fetch requests up to the high watermark:
//! every record exactly once, in order per partition, intact, on murmur2's
//! partition, at the offset its delivery reported.
//!
//! `KRUST_TEST_BROKER` (a broker's kind, e.g. `kafka`, or its name, e.g.
//! `kafka-4.4.0`) and `KRUST_TEST_CODEC` (e.g. `zstd`) narrow the run; a
//! value that matches nothing fails the test instead of running nothing.

mod common;

use std::time::{Duration, Instant};

use common::{PARTITIONS, check, pool, read_all, record};
use krust_producer::{Compression, Producer, ProducerConfig};
use krust_testkit::{Capability, all_brokers, unique};

const RECORDS: usize = 10_000;

/// The items whose names include `wanted` (the value of the environment
/// variable `var`, when set); panics when it selects none, so that a
/// mistyped filter cannot pass by running nothing.
fn only<T>(
    var: &str,
    wanted: Option<String>,
    items: Vec<T>,
    names: impl Fn(&T) -> Vec<String>,
) -> Vec<T> {
    let Some(wanted) = wanted else {
        return items;
    };
    let known: Vec<String> = items.iter().flat_map(&names).collect();
    let chosen: Vec<T> = items
        .into_iter()
        .filter(|i| names(i).contains(&wanted))
        .collect();
    assert!(
        !chosen.is_empty(),
        "{var}={wanted} matches nothing; known: {}",
        known.join(", ")
    );
    chosen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_compression_round_trips_on_every_broker() {
    let var = |name| std::env::var(name).ok();
    let codecs = only(
        "KRUST_TEST_CODEC",
        var("KRUST_TEST_CODEC"),
        Compression::ALL.to_vec(),
        |c| vec![c.name().to_owned()],
    );
    let brokers = only(
        "KRUST_TEST_BROKER",
        var("KRUST_TEST_BROKER"),
        all_brokers(Capability::Produce),
        |b| vec![b.kind().name().to_owned(), b.name()],
    );
    for broker in &brokers {
        for &compression in &codecs {
            let started = Instant::now();
            let topic = unique(&format!("krust-produce-{}", compression.name()));
            broker
                .create_topic(&topic, PARTITIONS)
                .expect("create topic");
            let config = ProducerConfig::builder()
                .bootstrap_servers([broker.bootstrap()])
                .compression(compression)
                .linger(Duration::from_millis(5))
                .build()
                .expect("config");
            let producer = Producer::new(config).await.expect("producer");
            eprintln!(
                "{} {}: producer id {:?}",
                broker.name(),
                compression.name(),
                producer.producer_id()
            );
            let mut futures = Vec::with_capacity(RECORDS);
            for i in 0..RECORDS {
                futures.push(producer.send(record(&topic, i)).await.expect("send"));
            }
            let mut reports = Vec::with_capacity(RECORDS);
            for f in futures {
                reports.push(f.await.unwrap_or_else(|e| {
                    panic!(
                        "{} {}: delivery failed: {e}",
                        broker.name(),
                        compression.name()
                    )
                }));
            }
            producer
                .close(Duration::from_secs(10))
                .await
                .expect("close");
            let reader = pool(&broker.bootstrap()).await;
            let read = read_all(&reader, &topic, RECORDS, Duration::from_secs(30)).await;
            check(&read, &topic, RECORDS, &reports);
            eprintln!(
                "{} {}: {RECORDS} records produced and read back in {:?}",
                broker.name(),
                compression.name(),
                started.elapsed()
            );
        }
    }
}

#[test]
fn a_filter_that_matches_nothing_fails() {
    let names = |c: &Compression| vec![c.name().to_owned()];
    let all = Compression::ALL.to_vec();
    assert_eq!(only("KRUST_TEST_CODEC", None, all.clone(), names), all);
    assert_eq!(
        only("KRUST_TEST_CODEC", Some("lz4".into()), all.clone(), names),
        [Compression::Lz4]
    );
    let typo = std::panic::catch_unwind(|| {
        only("KRUST_TEST_CODEC", Some("lz5".into()), all.clone(), names)
    });
    let message = typo.expect_err("a filter matching nothing must fail");
    let message = message
        .downcast_ref::<String>()
        .expect("a formatted panic message");
    assert!(
        message.contains("KRUST_TEST_CODEC=lz5") && message.contains("zstd"),
        "{message}"
    );
}

/// The read-back sees the whole log: a record written twice at the very
/// end of a partition (a second producer, without idempotence, sends the
/// last record again) makes [`check`] fail. On Apache Kafka 4.4.0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_at_a_partitions_tail_is_seen() {
    const N: usize = 100;
    let kafka = krust_testkit::Kafka::shared();
    let topic = unique("krust-produce-tail");
    kafka
        .as_cluster()
        .create_topic(&topic, PARTITIONS)
        .expect("topic");
    let producer = Producer::builder()
        .bootstrap_servers([kafka.addr()])
        .create()
        .await
        .expect("producer");
    let mut reports = Vec::with_capacity(N);
    for i in 0..N {
        let f = producer.send(record(&topic, i)).await.expect("send");
        reports.push(f.await.expect("delivered"));
    }
    let reader = pool(&kafka.addr()).await;
    let read = read_all(&reader, &topic, N, Duration::from_secs(20)).await;
    check(&read, &topic, N, &reports);

    let again = Producer::builder()
        .bootstrap_servers([kafka.addr()])
        .enable_idempotence(false)
        .create()
        .await
        .expect("second producer");
    let last = again.send(record(&topic, N - 1)).await.expect("send");
    let dup = last.await.expect("delivered");
    assert_eq!(dup.partition, reports[N - 1].partition);
    let read = read_all(&reader, &topic, N, Duration::from_secs(20)).await;
    let tail = read[&dup.partition].last().expect("records");
    assert_eq!(
        tail.offset, dup.offset,
        "the duplicate is the partition's tail"
    );
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check(&read, &topic, N, &reports);
    }));
    let message = caught.expect_err("the duplicate must be seen");
    let message = message
        .downcast_ref::<String>()
        .expect("a formatted panic message");
    assert!(
        message.contains(&format!("record {} read twice", N - 1)),
        "{message}"
    );
}
