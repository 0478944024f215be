//! 100,000 records with idempotence on the 3-broker librdkafka mock while
//! it misbehaves: leader moved, broker down and up, NOT_LEADER_OR_FOLLOWER
//! injected on Produce. Read back afterwards: no record lost, none twice,
//! order per partition kept. The mock is the only fixture with several
//! brokers and fault injection.
//!
//! Replies delayed past the request timeout are tested on Tansu instead
//! (`request_timeout.rs`): the mock does not deduplicate idempotent
//! (non-transactional) retries, so a timed-out request that it appended
//! is appended again when retried.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{PARTITIONS, check, pool, read_all, record};
use krust_producer::{Producer, ProducerConfig};
use krust_testkit::{Broker, MockCluster};

const RECORDS: usize = 100_000;
const TOPIC: &str = "krust-producer-faults";
const BOUND: Duration = Duration::from_secs(60);
const API_PRODUCE: i16 = 0;

async fn produce_through(fault: impl FnOnce(&MockCluster) + Send + 'static) {
    let mock = Arc::new(MockCluster::start(3, &[(TOPIC, PARTITIONS)]));
    let started = Instant::now();
    tokio::time::timeout(BOUND, async {
        let config = ProducerConfig::builder()
            .bootstrap_servers([mock.bootstrap()])
            .enable_idempotence(true)
            .request_timeout(Duration::from_secs(2))
            .delivery_timeout(Duration::from_secs(45))
            .retry_backoff(Duration::from_millis(20))
            .retry_backoff_max(Duration::from_millis(200))
            .build()
            .expect("config");
        let producer = Producer::new(config).await.expect("producer");
        assert!(producer.producer_id().is_some(), "idempotence is on");
        let m = mock.clone();
        let faults = tokio::task::spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(200));
            fault(&m);
        });
        let mut futures = Vec::with_capacity(RECORDS);
        for i in 0..RECORDS {
            futures.push(producer.send(record(TOPIC, i)).await.expect("send"));
            if i % 10_000 == 0 {
                // Spread the sends over the fault window.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let mut reports = Vec::with_capacity(RECORDS);
        for (i, f) in futures.into_iter().enumerate() {
            reports.push(f.await.unwrap_or_else(|e| panic!("record {i}: {e}")));
        }
        faults.await.expect("fault script");
        producer
            .close(Duration::from_secs(10))
            .await
            .expect("close");
        let reader = pool(&mock.bootstrap()).await;
        let read = read_all(&reader, TOPIC, RECORDS, Duration::from_secs(30)).await;
        check(&read, TOPIC, RECORDS, &reports);
    })
    .await
    .expect("bounded in time");
    eprintln!(
        "{RECORDS} records through the fault in {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_moved_while_producing() {
    produce_through(|m| {
        for p in 0..PARTITIONS {
            m.set_leader(TOPIC, p, p % 3 + 1).expect("move");
        }
        std::thread::sleep(Duration::from_millis(500));
        for p in 0..PARTITIONS {
            m.set_leader(TOPIC, p, (p + 1) % 3 + 1).expect("move again");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_and_up_while_producing() {
    produce_through(|m| {
        m.broker_down(1).expect("down");
        std::thread::sleep(Duration::from_millis(1500));
        m.broker_up(1).expect("up");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_leader_injected_while_producing() {
    produce_through(|m| {
        m.push_errors(API_PRODUCE, &[6; 30])
            .expect("inject NOT_LEADER_OR_FOLLOWER");
    })
    .await;
}
