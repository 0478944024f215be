//! Topics that do not exist yet, on Apache Kafka 4.4.0 (the reference: the
//! emulators differ in whether and how they auto-create).
//!
//! - With `auto.create.topics.enable=true` (Kafka's default), the Java
//!   producer's Metadata request asks the broker to create a missing topic
//!   (`allowAutoTopicCreation=true`, the producer's `allow.auto.create.topics`
//!   defaults to true) and `send` waits for it up to `max.block.ms`. krust
//!   does the same; with the property false the topic is not created and
//!   `send` fails with UNKNOWN_TOPIC_OR_PARTITION once `max.block.ms` passes.
//! - Right after a topic is created its partitions have no leader for a
//!   while (Metadata answers LEADER_NOT_AVAILABLE, a broker that has not
//!   heard of the topic yet UNKNOWN_TOPIC_OR_PARTITION): records sent then
//!   are retried within `delivery.timeout.ms`, never failed. On the shared
//!   3-node cluster, where the topic reaches every broker at its own pace.

mod common;

use std::time::{Duration, Instant};

use common::{check, pool, read_all, record};
use krust_codec::generated::CreateTopicsRequest;
use krust_codec::generated::create_topics_request::CreatableTopic;
use krust_codec::{ErrorCode, KString};
use krust_producer::{ProduceError, Producer, ProducerConfig};
use krust_testkit::{Kafka, KafkaCluster, raw, unique};

const BOUND: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_to_a_missing_topic_creates_it_and_waits_for_it() {
    let kafka = Kafka::shared();
    let topic = unique("krust-producer-auto");
    let config = ProducerConfig::from_properties([
        ("bootstrap.servers", kafka.addr().as_str()),
        ("max.block.ms", "20000"),
    ])
    .expect("config");
    assert!(
        config.allow_auto_create_topics,
        "true by default, as in Java"
    );
    tokio::time::timeout(BOUND, async {
        let producer = Producer::new(config).await.expect("producer");
        let started = Instant::now();
        // The broker's num.partitions is 1: every record goes to partition 0.
        let mut futures = Vec::new();
        for i in 0..100 {
            futures.push(producer.send(record(&topic, i)).await.expect("send"));
        }
        let mut reports = Vec::new();
        for (i, f) in futures.into_iter().enumerate() {
            reports.push(f.await.unwrap_or_else(|e| panic!("record {i}: {e}")));
        }
        eprintln!(
            "{topic} created and 100 records delivered in {:?}",
            started.elapsed()
        );
        producer
            .close(Duration::from_secs(10))
            .await
            .expect("close");
        let reader = pool(&kafka.addr()).await;
        let read = read_all(&reader, &topic, 100, Duration::from_secs(20)).await;
        assert_eq!(read.len(), 1, "one partition (num.partitions=1)");
        let records = &read[&0];
        assert_eq!(records.len(), 100);
        for (i, (r, report)) in records.iter().zip(&reports).enumerate() {
            assert_eq!(report.partition, 0);
            assert_eq!(report.offset, r.offset, "offset of {i}");
            assert_eq!(r.value, record(&topic, i).value, "record {i}");
        }
    })
    .await
    .expect("bounded in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_auto_creation_a_missing_topic_fails_after_max_block() {
    let kafka = Kafka::shared();
    let topic = unique("krust-producer-no-auto");
    let max_block = Duration::from_millis(1500);
    let config = ProducerConfig::builder()
        .bootstrap_servers([kafka.addr()])
        .allow_auto_create_topics(false)
        .max_block(max_block)
        .build()
        .expect("config");
    tokio::time::timeout(BOUND, async {
        let producer = Producer::new(config).await.expect("producer");
        let started = Instant::now();
        let e = producer
            .send(record(&topic, 0))
            .await
            .expect_err("the topic does not exist");
        let waited = started.elapsed();
        assert!(
            matches!(
                e,
                ProduceError::UnknownTopic {
                    code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains(&topic), "{e}");
        assert!(waited >= max_block, "gave up after {waited:?}");
        assert!(waited < max_block + Duration::from_secs(2), "{waited:?}");
        // Not created behind our back.
        let reader = pool(&kafka.addr()).await;
        let m = reader.refresh_metadata(&[&topic]).await.expect("metadata");
        let t = m.topic(&topic).expect("answered for");
        assert_eq!(t.error, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, "{t:?}");
    })
    .await
    .expect("bounded in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_sent_before_a_new_topic_has_leaders_are_retried() {
    let cluster = KafkaCluster::shared();
    let topic = unique("krust-producer-fresh");
    let config = ProducerConfig::builder()
        .bootstrap_servers([cluster.bootstrap()])
        .allow_auto_create_topics(false)
        .linger(Duration::from_millis(1))
        .delivery_timeout(Duration::from_secs(40))
        .build()
        .expect("config");
    tokio::time::timeout(BOUND, async {
        let producer = Producer::new(config).await.expect("producer");
        // CreateTopics and nothing else: no waiting for the leaders.
        let addr = cluster.addr(cluster.node_ids()[0]).expect("node 1");
        let name = topic.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = raw::Connection::connect(&addr).expect("connect");
            let version = conn.version_for::<CreateTopicsRequest>().expect("version");
            let resp = conn
                .send(
                    version,
                    &CreateTopicsRequest {
                        topics: vec![CreatableTopic {
                            name: KString::from(name.as_str()),
                            num_partitions: common::PARTITIONS,
                            replication_factor: 3,
                            ..Default::default()
                        }],
                        timeout_ms: 10_000,
                        ..Default::default()
                    },
                )
                .expect("CreateTopics");
            assert_eq!(resp.topics[0].error_code, 0, "{resp:?}");
        })
        .await
        .expect("create");
        let total = 600;
        let mut futures = Vec::new();
        for i in 0..total {
            futures.push(producer.send(record(&topic, i)).await.expect("send"));
        }
        let mut reports = Vec::new();
        for (i, f) in futures.into_iter().enumerate() {
            reports.push(f.await.unwrap_or_else(|e| panic!("record {i}: {e}")));
        }
        producer
            .close(Duration::from_secs(10))
            .await
            .expect("close");
        let reader = pool(&cluster.bootstrap()).await;
        let read = read_all(&reader, &topic, total, Duration::from_secs(20)).await;
        check(&read, &topic, total, &reports);
    })
    .await
    .expect("bounded in time");
}
