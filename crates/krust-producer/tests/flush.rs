//! `flush()` as in Java: it returns once every record sent before the call
//! has completed, and does not wait for records sent while it waits (a
//! producer that never stops sending must still be able to flush).
//!
//! On the librdkafka mock, the only fixture that can slow one broker down:
//! the records sent before the flush go to a partition led by a prompt
//! broker, those sent during it to one led by a broker that answers
//! `SLOW` late. A flush that waited for both would take `SLOW`.

mod common;

use std::time::{Duration, Instant};

use common::record;
use krust_producer::{Producer, ProducerConfig};
use krust_testkit::{Broker, MockCluster};

const PROMPT: &str = "krust-producer-flush-prompt";
const LATE: &str = "krust-producer-flush-late";
const SLOW: Duration = Duration::from_millis(1500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_waits_for_earlier_records_only() {
    let mock = MockCluster::start(2, &[(PROMPT, 1), (LATE, 1)]);
    mock.set_leader(PROMPT, 0, 1).expect("leader");
    mock.set_leader(LATE, 0, 2).expect("leader");
    let config = ProducerConfig::builder()
        .bootstrap_servers([mock.bootstrap()])
        // Without a flush, records would wait this long.
        .linger(Duration::from_secs(3))
        .build()
        .expect("config");
    let producer = Producer::new(config).await.expect("producer");
    // Connect to both brokers before one turns slow.
    for topic in [PROMPT, LATE] {
        let f = producer.send(record(topic, 0)).await.expect("send");
        producer.flush().await.expect("warm-up flush");
        f.await.expect("warm-up record");
    }
    mock.set_rtt(2, u32::try_from(SLOW.as_millis()).expect("ms"))
        .expect("slow broker 2");

    let mut before = Vec::new();
    for i in 0..1_000 {
        before.push(producer.send(record(PROMPT, i)).await.expect("send"));
    }
    let started = Instant::now();
    let flush = producer.flush();
    tokio::pin!(flush);
    // The first poll hands the flush to the producer's task.
    assert!(
        tokio::time::timeout(Duration::ZERO, &mut flush)
            .await
            .is_err(),
        "1,000 records cannot be delivered before the first poll"
    );
    let mut during = Vec::new();
    for i in 1_000..1_100 {
        during.push(producer.send(record(LATE, i)).await.expect("send"));
    }
    flush.await.expect("flush");
    let took = started.elapsed();
    for (i, f) in before.into_iter().enumerate() {
        // Resolved already: a zero timeout polls the future once.
        tokio::time::timeout(Duration::ZERO, f)
            .await
            .unwrap_or_else(|_| panic!("record {i}, sent before flush(), is still pending"))
            .unwrap_or_else(|e| panic!("record {i}: {e}"));
    }
    assert!(
        took < SLOW * 2 / 3,
        "flush() took {took:?}: it waited for the records sent during it"
    );

    // Those are delivered too, by the next flush.
    let started = Instant::now();
    producer.flush().await.expect("second flush");
    let second = started.elapsed();
    for (i, f) in during.into_iter().enumerate() {
        tokio::time::timeout(Duration::ZERO, f)
            .await
            .unwrap_or_else(|_| panic!("record {} pending after the second flush", 1_000 + i))
            .unwrap_or_else(|e| panic!("record {}: {e}", 1_000 + i));
    }
    eprintln!(
        "flush() of 1,000 records took {took:?} while 100 were sent to a broker \
         {SLOW:?} slow; the second flush() took {second:?}"
    );
}
