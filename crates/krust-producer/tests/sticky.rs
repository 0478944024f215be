//! Unkeyed records spread over the partitions (KIP-480 sticky partitioning):
//! the partitioner moves on each time a partition's batch is full, so over
//! many batches every partition gets a fair share. A partitioner that moves
//! on only when no batch is open at all sticks to one partition for as long
//! as full batches are replaced there, and starves the others.
//!
//! The partition is the producer's choice; each broker (Apache Kafka 4.4.0
//! first, then the emulators) only has to acknowledge the batches.

use std::time::Duration;

use krust_producer::{Producer, ProducerConfig, ProducerRecord};
use krust_testkit::{Capability, all_brokers, unique};

const PARTITIONS: usize = 6;
const RECORDS: usize = 60_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unkeyed_records_spread_over_every_partition() {
    for broker in all_brokers(Capability::Produce) {
        spread(broker.as_ref()).await;
    }
}

async fn spread(broker: &dyn krust_testkit::Broker) {
    let name = broker.name();
    let topic = unique("krust-sticky");
    broker
        .create_topic(&topic, i32::try_from(PARTITIONS).expect("few"))
        .unwrap_or_else(|e| panic!("{name}: create topic: {e}"));
    let config = ProducerConfig::builder()
        .bootstrap_servers([broker.bootstrap()])
        .batch_size(16 * 1024)
        .linger(Duration::from_millis(5))
        .build()
        .expect("config");
    let producer = Producer::new(config).await.expect("producer");
    let mut pending = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        let value = format!("{i:0>100}");
        let f = producer
            .send(ProducerRecord::new(topic.as_str(), value))
            .await
            .expect("send");
        pending.push(f);
    }
    let mut counts = [0usize; PARTITIONS];
    for f in pending {
        let md = f.await.unwrap_or_else(|e| panic!("{name}: {e}"));
        counts[usize::try_from(md.partition).expect("partition")] += 1;
    }
    // About 150 records fill a 16 KiB batch, so 60,000 records make ~400
    // batches spread at random over 6 partitions: each expects ~1/6 of the
    // records; under 5% for any partition is a six-sigma event unless the
    // partitioner sticks.
    for (p, n) in counts.iter().enumerate() {
        assert!(
            *n * 20 >= RECORDS,
            "{name}: partition {p} got {n} of {RECORDS} records: {counts:?}"
        );
    }
    producer.close(Duration::from_secs(5)).await.expect("close");
}
