//! 10,000 keyed records with headers and timestamps, for each compression
//! type, to a 6-partition topic on every local broker (Tansu, noida-db, the
//! 3-broker librdkafka mock), read back with raw Fetch requests: every
//! record exactly once, in order per partition, intact, on murmur2's
//! partition.

mod common;

use std::time::{Duration, Instant};

use common::{PARTITIONS, check, pool, read_all, record};
use krust_producer::{Compression, Producer, ProducerConfig};
use krust_testkit::{Capability, local_brokers};

const RECORDS: usize = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_compression_round_trips_on_every_local_broker() {
    let only = std::env::var("KRUST_TEST_BROKER").ok();
    for broker in local_brokers(Capability::Produce) {
        if only.as_deref().is_some_and(|o| o != broker.kind().name()) {
            continue;
        }
        for compression in Compression::ALL {
            if std::env::var("KRUST_TEST_CODEC").is_ok_and(|c| c != compression.name()) {
                continue;
            }
            let started = Instant::now();
            let topic = format!("krust-produce-{}", compression.name());
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
                broker.kind(),
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
                        broker.kind(),
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
                broker.kind(),
                compression.name(),
                started.elapsed()
            );
        }
    }
}
