//! A producer whose brokers are down holds at most `buffer.memory`: `send`
//! blocks for `max.block.ms`, then fails with a typed error; memory stays
//! at the limit; dropping the producer fails the pending futures with
//! `Closed` at once.
//!
//! On an Apache Kafka 4.4.0 node of its own, crashed (`SIGKILL`) once the
//! producer knows the topic: its connections are reset and reconnecting is
//! refused, as with a broker that died.

use std::time::{Duration, Instant};

use krust_producer::{ProduceError, Producer, ProducerConfig, ProducerRecord};
use krust_testkit::{Kafka, unique};

const LIMIT: usize = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_blocks_then_errors_at_the_memory_limit() {
    let kafka = Kafka::start();
    let topic = unique("krust-bp");
    kafka.as_cluster().create_topic(&topic, 1).expect("topic");
    let config = ProducerConfig::builder()
        .bootstrap_servers([kafka.addr()])
        .buffer_memory(LIMIT)
        .max_block(Duration::from_millis(500))
        .build()
        .expect("config");
    let producer = Producer::new(config).await.expect("producer");
    // Learn the topic while the broker is up, then take it down.
    let first = producer
        .send(ProducerRecord::new(topic.as_str(), vec![0u8; 1000]))
        .await
        .expect("send");
    first.await.expect("delivered while up");
    let id = kafka.as_cluster().node_ids()[0];
    kafka.as_cluster().kill(id).expect("kill the broker");

    let mut pending = Vec::new();
    let (error, blocked) = loop {
        let started = Instant::now();
        match producer
            .send(ProducerRecord::new(topic.as_str(), vec![0u8; 1000]))
            .await
        {
            Ok(f) => pending.push(f),
            Err(e) => break (e, started.elapsed()),
        }
        assert!(
            pending.len() < 1000,
            "send never blocked: memory is unbounded"
        );
    };
    assert!(
        matches!(error, ProduceError::MaxBlockExceeded { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("buffer.memory"), "{error}");
    assert!(
        blocked >= Duration::from_millis(450),
        "blocked only {blocked:?}"
    );
    let held = producer.buffered_bytes();
    assert!(
        held <= LIMIT && held > LIMIT - 2 * 1100,
        "held {held} of {LIMIT}"
    );
    assert!(pending.len() >= 50, "{} records fit", pending.len());

    let dropped = Instant::now();
    drop(producer);
    assert!(
        dropped.elapsed() < Duration::from_millis(100),
        "drop blocked"
    );
    let r = tokio::time::timeout(Duration::from_secs(2), pending.remove(0))
        .await
        .expect("resolves once the producer is gone");
    assert!(matches!(r, Err(ProduceError::Closed)), "{r:?}");
}
