//! DescribeCluster, InitProducerId, CreatePartitions, OffsetForLeaderEpoch
//! and DeleteRecords at every version.

use krust_codec::generated::create_partitions_request::CreatePartitionsTopic;
use krust_codec::generated::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
use krust_codec::generated::metadata_request::MetadataRequestTopic;
use krust_codec::generated::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use krust_codec::generated::produce_request::{PartitionProduceData, TopicProduceData};
use krust_codec::generated::{
    CreatePartitionsRequest, DeleteRecordsRequest, DescribeClusterRequest, InitProducerIdRequest,
    MetadataRequest, OffsetForLeaderEpochRequest, ProduceRequest,
};
use krust_codec::records::{NewRecord, RecordBatchBuilder};
use krust_testkit::{Broker, Kafka, KafkaVersion, unique};

use crate::wire::{Wire, ks, now_ms};

const OPS_NOT_ASKED: i32 = i32::MIN;
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
/// The replica id a consumer sends (Java's CONSUMER_REPLICA_ID).
const CONSUMER: i32 = -1;

pub fn cluster_and_producer_ids(version: KafkaVersion) {
    let mut wire = Wire::open(version);
    for v in wire.versions::<DescribeClusterRequest>() {
        let what = format!("{}: DescribeCluster v{v}", wire.name);
        let request = DescribeClusterRequest {
            include_cluster_authorized_operations: true,
            endpoint_type: 1, // brokers
            ..Default::default()
        };
        let r = wire.send(v, &request);
        assert_eq!(
            (r.error_code, &r.error_message),
            (0, &None),
            "{what}: {r:?}"
        );
        assert!(!r.cluster_id.is_empty(), "{what}");
        assert_eq!(r.controller_id, 1, "{what}: the only broker");
        assert_eq!(r.brokers.len(), 1, "{what}: {r:?}");
        let b = &r.brokers[0];
        assert_eq!(
            (b.broker_id, b.host.as_str(), b.port),
            (1, "127.0.0.1", wire.port()),
            "{what}"
        );
        assert_ne!(r.cluster_authorized_operations, OPS_NOT_ASKED, "{what}");
        if v >= 1 {
            assert_eq!(r.endpoint_type, 1, "{what}");
        }
    }
    // An idempotent producer's id (no transactional id): a new id, epoch 0.
    let mut ids = Vec::new();
    for v in wire.versions::<InitProducerIdRequest>() {
        let what = format!("{}: InitProducerId v{v}", wire.name);
        let request = InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        };
        // The broker's first id block comes from the controller: until it
        // has one it answers COORDINATOR_LOAD_IN_PROGRESS (retriable).
        let started = std::time::Instant::now();
        let r = loop {
            let r = wire.send(v, &request);
            if r.error_code != COORDINATOR_LOAD_IN_PROGRESS {
                break r;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "{what}: still loading after 30 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        assert_eq!(r.error_code, 0, "{what}: {r:?}");
        assert!(r.producer_id >= 0, "{what}: {r:?}");
        assert_eq!(r.producer_epoch, 0, "{what}");
        assert!(!ids.contains(&r.producer_id), "{what}: a fresh id");
        ids.push(r.producer_id);
    }
}

pub fn partitions_epochs_and_deletes(version: KafkaVersion) {
    let kafka = Kafka::shared_version(version);
    let mut wire = Wire::open(version);

    // CreatePartitions: validate_only changes nothing, then 1 -> 2.
    for v in wire.versions::<CreatePartitionsRequest>() {
        let what = format!("{}: CreatePartitions v{v}", wire.name);
        let topic = unique(&format!("live-grow-v{v}"));
        kafka
            .create_topic(&topic, 1)
            .unwrap_or_else(|e| panic!("{what}: create {topic}: {e}"));
        for (count, validate_only) in [(3, true), (2, false)] {
            let request = CreatePartitionsRequest {
                topics: vec![CreatePartitionsTopic {
                    name: ks(&topic),
                    count,
                    assignments: None,
                    ..Default::default()
                }],
                timeout_ms: 30_000,
                validate_only,
                ..Default::default()
            };
            let r = wire.send(v, &request);
            assert_eq!(r.results.len(), 1, "{what}: {r:?}");
            let t = &r.results[0];
            assert_eq!(
                (t.name.as_str(), t.error_code, &t.error_message),
                (topic.as_str(), 0, &None),
                "{what} to {count} (validate_only {validate_only})"
            );
        }
        wait_for_partitions(&mut wire, &topic, 2);
    }

    // OffsetForLeaderEpoch and DeleteRecords on a topic holding records.
    let topic = unique("live-epochs");
    kafka
        .create_topic(&topic, 1)
        .unwrap_or_else(|e| panic!("{}: create {topic}: {e}", wire.name));
    let delete_versions: Vec<i16> = wire.versions::<DeleteRecordsRequest>().collect();
    let records = i64::try_from(delete_versions.len()).expect("small") + 2;
    produce(&mut wire, &topic, records);
    for v in wire.versions::<OffsetForLeaderEpochRequest>() {
        let what = format!("{}: OffsetForLeaderEpoch v{v}", wire.name);
        let request = OffsetForLeaderEpochRequest {
            replica_id: CONSUMER,
            topics: vec![OffsetForLeaderTopic {
                topic: ks(&topic),
                partitions: vec![OffsetForLeaderPartition {
                    partition: 0,
                    current_leader_epoch: -1,
                    leader_epoch: 0,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let r = wire.send(v, &request);
        assert_eq!(r.topics.len(), 1, "{what}: {r:?}");
        assert_eq!(r.topics[0].topic, topic.as_str(), "{what}");
        let p = &r.topics[0].partitions;
        assert_eq!(p.len(), 1, "{what}: {r:?}");
        // Epoch 0 is the current one: it ends at the log end.
        assert_eq!(
            (p[0].error_code, p[0].partition, p[0].end_offset),
            (0, 0, records),
            "{what}: {p:?}"
        );
        if v >= 1 {
            assert_eq!(p[0].leader_epoch, 0, "{what}");
        }
    }
    for (v, before) in delete_versions.iter().zip(1..) {
        let what = format!("{}: DeleteRecords v{v} before {before}", wire.name);
        let request = DeleteRecordsRequest {
            topics: vec![DeleteRecordsTopic {
                name: ks(&topic),
                partitions: vec![DeleteRecordsPartition {
                    partition_index: 0,
                    offset: before,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            timeout_ms: 30_000,
            ..Default::default()
        };
        let r = wire.send(*v, &request);
        assert_eq!(r.topics.len(), 1, "{what}: {r:?}");
        assert_eq!(r.topics[0].name, topic.as_str(), "{what}");
        let p = &r.topics[0].partitions;
        assert_eq!(
            p.iter()
                .map(|p| (p.partition_index, p.error_code, p.low_watermark))
                .collect::<Vec<_>>(),
            [(0, 0, before)],
            "{what}"
        );
    }
}

/// Append `n` records at the highest Produce version.
fn produce(wire: &mut Wire, topic: &str, n: i64) {
    let mut batch = RecordBatchBuilder::new();
    for i in 0..n {
        let value = format!("record {i}");
        batch
            .append(&NewRecord {
                timestamp: now_ms(),
                value: Some(value.as_bytes()),
                ..NewRecord::default()
            })
            .expect("append");
    }
    let request = ProduceRequest {
        transactional_id: None,
        acks: -1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: ks(topic),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(batch.build().expect("batch")),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    // By name: v13 names topics by id (records.rs covers it).
    let v = wire.highest::<ProduceRequest>().min(12);
    let r = wire.send(v, &request);
    let p = &r.responses[0].partition_responses[0];
    assert_eq!(
        (p.error_code, p.base_offset),
        (0, 0),
        "{}: {p:?}",
        wire.name
    );
}

/// A grown topic shows its new partition, with a leader, shortly after.
fn wait_for_partitions(wire: &mut Wire, topic: &str, count: usize) {
    let started = std::time::Instant::now();
    loop {
        let v = wire.highest::<MetadataRequest>();
        let m = wire.send(
            v,
            &MetadataRequest {
                topics: Some(vec![MetadataRequestTopic {
                    name: Some(ks(topic)),
                    ..Default::default()
                }]),
                allow_auto_topic_creation: false,
                ..Default::default()
            },
        );
        let t = &m.topics[0];
        if t.partitions.len() == count && t.partitions.iter().all(|p| p.leader_id >= 0) {
            return;
        }
        assert!(
            t.partitions.len() <= count && started.elapsed() < std::time::Duration::from_secs(15),
            "{}: {topic} has not {count} partitions: {t:?}",
            wire.name
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
