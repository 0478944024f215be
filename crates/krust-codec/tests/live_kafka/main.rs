//! The codec against Apache Kafka itself: our generated requests sent at
//! EVERY version that both the broker and the codec speak, to Kafka 4.4.0
//! and to 3.9.2 (the last line with the versions KIP-896 removed from 4.x,
//! so v0 of every API here is exercised there). Each exchange checks two
//! things: the broker understood the request (no error, and the result the
//! request asked for: a topic created at vN is described at every version,
//! records produced at vN are read back by a Fetch at every version, an
//! offset committed at vN is fetched at every version), and our decoder read
//! the whole response (every byte consumed, and re-encoding it gives the
//! broker's bytes back exactly; see `wire.rs`).
//!
//! The APIs: ApiVersions; CreateTopics, Metadata, DescribeConfigs,
//! DeleteTopics (`topics.rs`); Produce, Fetch, ListOffsets (`records.rs`);
//! FindCoordinator, OffsetCommit, OffsetFetch, ListGroups, DescribeGroups,
//! DeleteGroups (`groups.rs`); DescribeCluster, InitProducerId,
//! CreatePartitions, OffsetForLeaderEpoch, DeleteRecords (`misc.rs`). Where
//! a broker advertises a version it refuses (Produce v0-v2 on 4.x; the
//! ZooKeeper-only OffsetCommit/OffsetFetch v0 on 3.9.2) the test checks the
//! refusal Kafka documents instead.
//!
//! One Kafka node per version is shared by this binary's tests, so every
//! topic and group name is unique. Blocking I/O, no runtime.

mod groups;
mod misc;
mod records;
mod topics;
mod wire;

use krust_codec::generated::ApiVersionsRequest;
use krust_testkit::KafkaVersion;

use wire::{Wire, ks};

/// ApiVersions at every version: the same table at each, and from v3 on
/// (our client name and version sent, flexible) the KRaft features.
fn api_versions(version: KafkaVersion) {
    let mut wire = Wire::open(version);
    let v0 = wire.send(0, &ApiVersionsRequest::default());
    for v in wire.versions::<ApiVersionsRequest>() {
        let request = ApiVersionsRequest {
            client_software_name: ks("krust-codec-live"),
            client_software_version: ks("0.1.0"),
            ..Default::default()
        };
        let response = wire.send(v, &request);
        let what = format!("{}: ApiVersions v{v}", wire.name);
        assert_eq!(response.error_code, 0, "{what}");
        assert_eq!(response.api_keys, v0.api_keys, "{what}: the same table");
        if v >= 3 {
            // A KRaft broker always has metadata.version, finalized.
            assert!(
                response
                    .supported_features
                    .iter()
                    .any(|f| f.name == "metadata.version"),
                "{what}: {:?}",
                response.supported_features
            );
            assert!(
                response
                    .finalized_features
                    .iter()
                    .any(|f| f.name == "metadata.version" && f.max_version_level > 0),
                "{what}: {:?}",
                response.finalized_features
            );
            assert!(response.finalized_features_epoch >= 0, "{what}");
        }
    }
}

#[test]
fn kafka_4_4_api_versions_at_every_version() {
    api_versions(KafkaVersion::V4_4);
}

#[test]
fn kafka_3_9_api_versions_at_every_version() {
    api_versions(KafkaVersion::V3_9);
}

#[test]
fn kafka_4_4_topics_created_described_configured_deleted_at_every_version() {
    topics::lifecycle(KafkaVersion::V4_4);
}

#[test]
fn kafka_3_9_topics_created_described_configured_deleted_at_every_version() {
    topics::lifecycle(KafkaVersion::V3_9);
}

#[test]
fn kafka_4_4_records_produced_fetched_and_listed_at_every_version() {
    records::produce_fetch_list(KafkaVersion::V4_4);
}

#[test]
fn kafka_3_9_records_produced_fetched_and_listed_at_every_version() {
    records::produce_fetch_list(KafkaVersion::V3_9);
}

#[test]
fn kafka_4_4_group_offsets_and_group_reads_at_every_version() {
    groups::offsets_and_reads(KafkaVersion::V4_4);
}

#[test]
fn kafka_3_9_group_offsets_and_group_reads_at_every_version() {
    groups::offsets_and_reads(KafkaVersion::V3_9);
}

#[test]
fn kafka_4_4_cluster_and_producer_ids_at_every_version() {
    misc::cluster_and_producer_ids(KafkaVersion::V4_4);
}

#[test]
fn kafka_3_9_cluster_and_producer_ids_at_every_version() {
    misc::cluster_and_producer_ids(KafkaVersion::V3_9);
}

#[test]
fn kafka_4_4_partitions_epochs_and_record_deletes_at_every_version() {
    misc::partitions_epochs_and_deletes(KafkaVersion::V4_4);
}

#[test]
fn kafka_3_9_partitions_epochs_and_record_deletes_at_every_version() {
    misc::partitions_epochs_and_deletes(KafkaVersion::V3_9);
}
