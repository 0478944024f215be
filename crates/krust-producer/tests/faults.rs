//! An idempotent producer with acks=all on a real Apache Kafka 4.4.0
//! cluster (`KafkaCluster`: 3 nodes, replication factor 3,
//! `min.insync.replicas=2`) while nodes fail the way they do in production,
//! then everything read back to the high watermark:
//!
//! - the leader of a partition killed (`SIGKILL`) mid-stream;
//! - the leader of a partition hung (`SIGSTOP`) for longer than
//!   `request.timeout.ms`, then resumed;
//! - two of the three nodes hung for longer than `delivery.timeout.ms`:
//!   records that cannot reach `min.insync.replicas` are reported failed
//!   within their delivery timeout, never silently dropped, and the producer
//!   goes on once the nodes are back.
//!
//! Every record acknowledged is in the log exactly once, in send order per
//! partition; nothing acknowledged is lost; every delivery future resolves.
//! With one node of three down Kafka stays available, so there every
//! record must be acknowledged.
//!
//! The librdkafka mock stays for what Kafka cannot be made to do on cue:
//! NOT_LEADER_OR_FOLLOWER injected into Produce replies, and leader moves
//! and a broker down and up at instants the test picks. It also checks
//! krust's own ordering: the mock does not check an idempotent producer's
//! sequences (only a transactional one's), so where Kafka would answer a
//! reordered batch with OUT_OF_ORDER_SEQUENCE_NUMBER and have it retried,
//! the mock appends it, and only the producer's per-partition ordering
//! keeps the log in order.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{PARTITIONS, check, check_acked, pool, read_all, record};
use krust_producer::{ProduceError, Producer, ProducerConfig, RecordMetadata};
use krust_testkit::{Broker, KafkaCluster, MockCluster, unique};

const RECORDS: usize = 30_000;
/// The mock is fast: as many records as before it shared this file.
const MOCK_RECORDS: usize = 100_000;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
const BOUND: Duration = Duration::from_secs(120);
const API_PRODUCE: i16 = 0;
/// How much later than `delivery.timeout.ms` a failure may be reported:
/// the producer checks expiry every 50 ms; the rest is room for a loaded
/// machine. A batch in flight is not waited for (up to
/// `request.timeout.ms`, 2 s here).
const DELIVERY_MARGIN: Duration = Duration::from_millis(600);

fn config(bootstrap: &str, delivery_timeout: Duration) -> ProducerConfig {
    ProducerConfig::builder()
        .bootstrap_servers([bootstrap])
        .enable_idempotence(true)
        .request_timeout(REQUEST_TIMEOUT)
        .delivery_timeout(delivery_timeout)
        .retry_backoff(Duration::from_millis(20))
        .retry_backoff_max(Duration::from_millis(200))
        .build()
        .expect("config")
}

/// Send records `from..to`, spread over about `spread` so that a fault
/// meets records in every state (queued, in flight, acknowledged), and
/// wait for every delivery future.
async fn produce(
    producer: &Producer,
    topic: &str,
    from: usize,
    to: usize,
    spread: Duration,
) -> Vec<Result<RecordMetadata, ProduceError>> {
    produce_timed(producer, topic, from, to, spread)
        .await
        .into_iter()
        .map(|(r, _)| r)
        .collect()
}

/// [`produce`], with how long after its `send` each outcome was seen. The
/// futures are awaited in send order, so that is an upper bound of when
/// each resolved (never less than the true time).
async fn produce_timed(
    producer: &Producer,
    topic: &str,
    from: usize,
    to: usize,
    spread: Duration,
) -> Vec<(Result<RecordMetadata, ProduceError>, Duration)> {
    let steps = 50;
    let per_step = ((to - from) / steps).max(1);
    let pause = spread / u32::try_from(steps).expect("few steps");
    let mut futures = Vec::with_capacity(to - from);
    for i in from..to {
        let f = producer.send(record(topic, i)).await.expect("send");
        futures.push((f, Instant::now()));
        if (i - from) % per_step == 0 {
            tokio::time::sleep(pause).await;
        }
    }
    let mut outcomes = Vec::with_capacity(futures.len());
    for (f, sent) in futures {
        let r = f.await;
        outcomes.push((r, sent.elapsed()));
    }
    outcomes
}

/// Produce [`RECORDS`] through `fault` (run on a blocking thread once the
/// producer is sending) and check that all were acknowledged and are in
/// the log exactly once, in order.
async fn all_acknowledged_through(
    cluster: Arc<KafkaCluster>,
    topic: &str,
    fault: impl FnOnce(&KafkaCluster) + Send + 'static,
) -> Producer {
    let started = Instant::now();
    let producer = Producer::new(config(&cluster.bootstrap(), Duration::from_secs(60)))
        .await
        .expect("producer");
    assert!(producer.producer_id().is_some(), "idempotence is on");
    let c = cluster.clone();
    let faults = tokio::task::spawn_blocking(move || {
        std::thread::sleep(Duration::from_millis(1000));
        fault(&c);
    });
    let outcomes = produce(&producer, topic, 0, RECORDS, Duration::from_secs(8)).await;
    faults.await.expect("fault script");
    let mut reports = Vec::with_capacity(RECORDS);
    for (i, r) in outcomes.into_iter().enumerate() {
        reports.push(r.unwrap_or_else(|e| panic!("record {i}: {e}")));
    }
    let reader = pool(&cluster.bootstrap()).await;
    let read = read_all(&reader, topic, RECORDS, Duration::from_secs(30)).await;
    check(&read, topic, RECORDS, &reports);
    eprintln!(
        "{RECORDS} records through the fault, all acknowledged once, in {:?}",
        started.elapsed()
    );
    producer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_while_producing() {
    let cluster = Arc::new(KafkaCluster::start());
    let topic = unique("krust-producer-leader-killed");
    cluster.create_topic(&topic, PARTITIONS).expect("topic");
    let victim = cluster.leader(&topic, 0).expect("leader");
    tokio::time::timeout(BOUND, async {
        let producer = all_acknowledged_through(cluster.clone(), &topic, move |c| {
            c.kill(victim).expect("kill the leader");
        })
        .await;
        // The producer followed the leadership: its metadata names another
        // leader for partition 0 than the node it killed.
        let now = producer.pool().cached_metadata().leader(&topic, 0);
        assert!(
            now.is_some_and(|(leader, _)| leader != victim),
            "leader of partition 0 as the producer sees it: {now:?} (killed {victim})"
        );
        assert_eq!(
            Some(cluster.leader(&topic, 0).expect("leader")),
            now.map(|l| l.0)
        );
        producer
            .close(Duration::from_secs(10))
            .await
            .expect("close");
    })
    .await
    .expect("bounded in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_hung_longer_than_the_request_timeout() {
    let cluster = Arc::new(KafkaCluster::start());
    let topic = unique("krust-producer-leader-hung");
    cluster.create_topic(&topic, PARTITIONS).expect("topic");
    let victim = cluster.leader(&topic, 0).expect("leader");
    tokio::time::timeout(BOUND, async {
        let producer = all_acknowledged_through(cluster.clone(), &topic, move |c| {
            c.pause(victim).expect("hang the leader");
            std::thread::sleep(REQUEST_TIMEOUT * 2);
            c.resume(victim).expect("resume it");
        })
        .await;
        producer
            .close(Duration::from_secs(10))
            .await
            .expect("close");
    })
    .await
    .expect("bounded in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_that_cannot_be_replicated_fail_within_the_delivery_timeout() {
    const BEFORE: usize = 10_000;
    const AFTER: usize = 2_000;
    let delivery_timeout = Duration::from_secs(6);
    let cluster = Arc::new(KafkaCluster::start());
    let topic = unique("krust-producer-no-quorum");
    cluster.create_topic(&topic, PARTITIONS).expect("topic");
    tokio::time::timeout(BOUND, async {
        let producer = Producer::new(config(&cluster.bootstrap(), delivery_timeout))
            .await
            .expect("producer");
        // Two of three nodes hung: no partition can reach
        // min.insync.replicas=2, and the controller quorum is gone too.
        let c = cluster.clone();
        let hung = tokio::task::spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(500));
            for id in [2, 3] {
                c.pause(id).expect("hang");
            }
            Instant::now()
        });
        let timed = produce_timed(&producer, &topic, 0, BEFORE, Duration::from_secs(2)).await;
        let hung_at = hung.await.expect("hang script");
        // Every future resolved within its delivery timeout after its
        // send (Java's bound for reporting success or failure), give or
        // take the producer's expiry check and a loaded machine: also a
        // batch whose request was in flight when its time was up.
        let late: Vec<(usize, Duration)> = timed
            .iter()
            .enumerate()
            .filter(|(_, (_, waited))| *waited > delivery_timeout + DELIVERY_MARGIN)
            .map(|(i, (_, waited))| (i, *waited))
            .collect();
        assert!(
            late.is_empty(),
            "{} records resolved later than delivery.timeout.ms ({delivery_timeout:?}) + \
             {DELIVERY_MARGIN:?} after their send, e.g. {:?}",
            late.len(),
            &late[..late.len().min(5)]
        );
        let mut outcomes: Vec<Result<RecordMetadata, ProduceError>> =
            timed.into_iter().map(|(r, _)| r).collect();
        let failed: Vec<&ProduceError> = outcomes.iter().filter_map(|r| r.as_ref().err()).collect();
        assert!(
            !failed.is_empty(),
            "the nodes were hung: some records must fail"
        );
        for e in &failed {
            assert!(
                matches!(e, ProduceError::DeliveryTimeout { .. }),
                "a record that could not be replicated in time: {e:?}"
            );
            assert!(e.is_retriable() && e.to_string().contains(&topic), "{e}");
        }
        eprintln!(
            "{} of {BEFORE} records failed within {:?} of the hang",
            failed.len(),
            hung_at.elapsed()
        );
        let (c, t) = (cluster.clone(), topic.clone());
        tokio::task::spawn_blocking(move || {
            for id in [2, 3] {
                c.resume(id).expect("resume");
            }
            // Back means back in sync: until the resumed followers rejoin
            // the ISR, acks=all with min.insync.replicas=2 cannot be met,
            // and on a loaded machine that took longer than the delivery
            // timeout (a record sent at once then failed with its last
            // request held by the leader).
            c.wait_in_sync(&[&t], Duration::from_secs(60))
                .expect("in sync after the resume");
        })
        .await
        .expect("resume script");
        // The producer goes on: everything sent after the nodes are back
        // is acknowledged.
        let later = produce(&producer, &topic, BEFORE, BEFORE + AFTER, Duration::ZERO).await;
        for (i, r) in later.iter().enumerate() {
            if let Err(e) = r {
                panic!("record {} after the resume: {e}", BEFORE + i);
            }
        }
        outcomes.extend(later);
        let reports: Vec<Option<RecordMetadata>> =
            outcomes.iter().map(|r| r.as_ref().ok().copied()).collect();
        let reader = pool(&cluster.bootstrap()).await;
        let read = read_all(&reader, &topic, BEFORE + AFTER, Duration::from_secs(60)).await;
        let written_anyway = check_acked(&read, &topic, BEFORE + AFTER, &reports);
        eprintln!(
            "{} failed records are in the log all the same (appended, their \
             acknowledgement lost with the hang)",
            written_anyway
        );
        producer
            .close(Duration::from_secs(10))
            .await
            .expect("close");
    })
    .await
    .expect("bounded in time");
}

/// [`MOCK_RECORDS`] through `fault` on the 3-broker mock, all acknowledged
/// once, in order.
async fn on_the_mock_through(fault: impl FnOnce(&MockCluster) + Send + 'static) {
    let topic = "krust-producer-faults";
    let mock = Arc::new(MockCluster::start(3, &[(topic, PARTITIONS)]));
    tokio::time::timeout(BOUND, async {
        let producer = Producer::new(config(&mock.bootstrap(), Duration::from_secs(45)))
            .await
            .expect("producer");
        assert!(producer.producer_id().is_some(), "idempotence is on");
        let m = mock.clone();
        let faults = tokio::task::spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(200));
            fault(&m);
        });
        let outcomes = produce(&producer, topic, 0, MOCK_RECORDS, Duration::from_secs(2)).await;
        faults.await.expect("fault script");
        let mut reports = Vec::with_capacity(MOCK_RECORDS);
        for (i, r) in outcomes.into_iter().enumerate() {
            reports.push(r.unwrap_or_else(|e| panic!("record {i}: {e}")));
        }
        producer
            .close(Duration::from_secs(10))
            .await
            .expect("close");
        let reader = pool(&mock.bootstrap()).await;
        let read = read_all(&reader, topic, MOCK_RECORDS, Duration::from_secs(30)).await;
        check(&read, topic, MOCK_RECORDS, &reports);
    })
    .await
    .expect("bounded in time");
}

/// Only the librdkafka mock injects error codes on cue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_leader_injected_while_producing() {
    on_the_mock_through(|m| {
        m.push_errors(API_PRODUCE, &[6; 30])
            .expect("inject NOT_LEADER_OR_FOLLOWER");
    })
    .await;
}

/// Leadership moved twice while the old leaders stay up, on a broker that
/// does not check sequences: the producer's own ordering is what is tested.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_moved_on_the_mock_while_producing() {
    on_the_mock_through(|m| {
        for p in 0..PARTITIONS {
            m.set_leader("krust-producer-faults", p, p % 3 + 1)
                .expect("move");
        }
        std::thread::sleep(Duration::from_millis(500));
        for p in 0..PARTITIONS {
            m.set_leader("krust-producer-faults", p, (p + 1) % 3 + 1)
                .expect("move again");
        }
    })
    .await;
}

/// A broker down and up within 1.5 s, on a broker that does not check
/// sequences.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_and_up_on_the_mock_while_producing() {
    on_the_mock_through(|m| {
        m.broker_down(1).expect("down");
        std::thread::sleep(Duration::from_millis(1500));
        m.broker_up(1).expect("up");
    })
    .await;
}
