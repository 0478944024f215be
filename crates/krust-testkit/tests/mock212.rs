//! The librdkafka 2.12.1 mock (rust-rdkafka's `mocking` module, run by
//! `tools/rdkafka-mock`) as the fixture presents it: what it offers beyond
//! the 2.0.2 mock, what it sends that Kafka does not, and the group API
//! versions it advertises but misparses, which the fixture narrows
//! (`MockVersion::narrowed_versions`). The fault commands, start-up and
//! drop are checked for both mocks in `fixtures.rs`.

use bytes::Bytes;
use krust_codec::KString;
use krust_codec::generated::join_group_request::JoinGroupRequestProtocol;
use krust_codec::generated::leave_group_request::MemberIdentity;
use krust_codec::generated::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use krust_codec::generated::metadata_request::MetadataRequestTopic;
use krust_codec::generated::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use krust_codec::generated::sync_group_request::SyncGroupRequestAssignment;
use krust_codec::generated::{
    ApiKey, ApiVersionsRequest, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest,
    ListOffsetsRequest, MetadataRequest, OffsetCommitRequest, SyncGroupRequest,
};
use krust_testkit::raw::Connection;
use krust_testkit::{Capability, MockCluster, MockVersion};

/// What the 2.12.1 mock offers that the 2.0.2 one does not, and what it
/// sends that Kafka does not. Like 2.0.2 it refuses ApiVersions v3
/// (UNSUPPORTED_VERSION, the KIP-511 fallback: it offers v0-v2), but its
/// flexible Metadata v12 (topic ids) decodes, with one byte after the
/// fields v12 defines, which a client ignores (the testkit's raw client as
/// krust-net does); ListOffsets v4+ carries its leader epoch in the 4 bytes
/// the schema gives it (2.0.2 sends 8), so it decodes.
#[test]
fn mock_2_12_answers_flexible_metadata_and_list_offsets() {
    let mock = MockCluster::start_version(MockVersion::V2_12, 3, &[("flexible", 2)]);
    let addr = mock.broker_addr(1).unwrap();
    let mut conn = Connection::connect(addr).unwrap();
    let v3 = conn
        .send_read(
            3,
            &ApiVersionsRequest {
                client_software_name: KString::from("krust-testkit-test"),
                client_software_version: KString::from("0.1.0"),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(v3.body.error_code, 35, "ApiVersions v3: {:?}", v3.body);
    assert!(
        !MockVersion::V2_12
            .kind()
            .supports(Capability::ApiVersionsV3)
    );
    assert!(
        MockVersion::V2_12
            .kind()
            .supports(Capability::FlexibleVersions)
    );
    let versions = conn.api_versions().unwrap().clone();
    let range = |key: ApiKey| {
        versions
            .api_keys
            .iter()
            .find(|k| k.api_key == key.key())
            .map(|k| (k.min_version, k.max_version))
    };
    assert_eq!(range(ApiKey::ApiVersions), Some((0, 2)));
    // As the fixture narrowed them (MockVersion::narrowed_versions).
    assert_eq!(range(ApiKey::JoinGroup), Some((0, 5)));
    assert_eq!(range(ApiKey::SyncGroup), Some((0, 3)));
    assert_eq!(range(ApiKey::LeaveGroup), Some((0, 2)));
    assert_eq!(range(ApiKey::Heartbeat), Some((0, 5)));
    assert_eq!(range(ApiKey::OffsetCommit), Some((0, 5)));
    assert_eq!(range(ApiKey::Metadata), Some((0, 12)));
    assert_eq!(range(ApiKey::Fetch), Some((0, 16)));
    assert_eq!(range(ApiKey::ListOffsets), Some((0, 7)));
    assert!(range(ApiKey::Produce).is_some());
    assert_eq!(
        range(ApiKey::CreateTopics),
        None,
        "the mock has no admin APIs"
    );

    let metadata = conn
        .send_read(
            12,
            &MetadataRequest {
                topics: Some(vec![MetadataRequestTopic {
                    name: Some(KString::from("flexible")),
                    ..Default::default()
                }]),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        metadata.ignored, 1,
        "Metadata v12: the mock's extra byte (docs/ARCHITECTURE.md)"
    );
    let topic = &metadata.body.topics[0];
    assert_eq!(topic.error_code, 0, "{topic:?}");
    assert_eq!(topic.partitions.len(), 2, "{topic:?}");
    assert_eq!(metadata.body.brokers.len(), 3);

    let version = conn.version_for::<ListOffsetsRequest>().unwrap();
    assert_eq!(version, 7.min(ApiKey::ListOffsets.valid_versions().1));
    let offsets = conn
        .send_read(
            version,
            &ListOffsetsRequest {
                replica_id: -1,
                topics: vec![ListOffsetsTopic {
                    name: KString::from("flexible"),
                    partitions: vec![ListOffsetsPartition {
                        partition_index: 0,
                        timestamp: -1,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(offsets.ignored, 0, "ListOffsets v{version}");
    let p = &offsets.body.topics[0].partitions[0];
    assert_eq!((p.error_code, p.offset), (0, 0), "{p:?}");
}

/// The consumer protocol's subscription to `topic` (version 1, no user
/// data, no owned partitions), as a member's JoinGroup metadata.
fn subscription(topic: &str) -> Bytes {
    let mut b = vec![0, 1, 0, 0, 0, 1];
    b.extend_from_slice(&(topic.len() as i16).to_be_bytes());
    b.extend_from_slice(topic.as_bytes());
    b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    Bytes::from(b)
}

fn join(group: &str, member_id: &KString) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: KString::from(group),
        session_timeout_ms: 6000,
        rebalance_timeout_ms: 10_000,
        member_id: member_id.clone(),
        protocol_type: KString::from("consumer"),
        protocols: vec![JoinGroupRequestProtocol {
            name: KString::from("range"),
            metadata: subscription("grouped"),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// A one-member group through every classic group API at the versions the
/// fixture leaves (the highest each side knows, as a client negotiates
/// them): joined, synced with the leader's assignment, heartbeating, left;
/// every reply decodes, nothing after its fields. Unlike Kafka (KIP-394),
/// the mock answers a first JoinGroup v4+ without a member id with a member
/// id and the join itself, not MEMBER_ID_REQUIRED.
#[test]
fn mock_2_12_runs_a_group_at_the_negotiated_versions() {
    let mock = MockCluster::start_version(MockVersion::V2_12, 1, &[("grouped", 2)]);
    let mut conn = Connection::connect(mock.broker_addr(1).unwrap()).unwrap();
    let group = "g-negotiated";
    let v_join = conn.version_for::<JoinGroupRequest>().unwrap();
    let v_sync = conn.version_for::<SyncGroupRequest>().unwrap();
    let v_heartbeat = conn.version_for::<HeartbeatRequest>().unwrap();
    let v_leave = conn.version_for::<LeaveGroupRequest>().unwrap();
    assert_eq!((v_join, v_sync, v_heartbeat, v_leave), (5, 3, 4, 2));

    let joined = conn
        .send_read(v_join, &join(group, &KString::from("")))
        .unwrap();
    let member_id = joined.body.member_id.clone();
    assert!(!member_id.is_empty(), "{joined:?}");
    assert_eq!(
        (joined.body.error_code, joined.ignored),
        (0, 0),
        "{joined:?}"
    );
    assert_eq!(joined.body.leader, member_id);
    assert_eq!(joined.body.members.len(), 1);

    let assignment = Bytes::from_static(&[0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    let synced = conn
        .send_read(
            v_sync,
            &SyncGroupRequest {
                group_id: KString::from(group),
                generation_id: joined.body.generation_id,
                member_id: member_id.clone(),
                assignments: vec![SyncGroupRequestAssignment {
                    member_id: member_id.clone(),
                    assignment: assignment.clone(),
                    ..Default::default()
                }],
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        (synced.body.error_code, synced.ignored),
        (0, 0),
        "{synced:?}"
    );
    assert_eq!(synced.body.assignment, assignment);

    let beat = conn
        .send_read(
            v_heartbeat,
            &HeartbeatRequest {
                group_id: KString::from(group),
                generation_id: joined.body.generation_id,
                member_id: member_id.clone(),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!((beat.body.error_code, beat.ignored), (0, 0), "{beat:?}");

    let left = conn
        .send_read(
            v_leave,
            &LeaveGroupRequest {
                group_id: KString::from(group),
                member_id: member_id.clone(),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!((left.body.error_code, left.ignored), (0, 0), "{left:?}");
}

/// Why the fixture narrows: with the ranges the mock advertises by itself,
/// JoinGroup v6 (flexible) is read with 4-byte array counts and the mock
/// closes the connection, LeaveGroup v3 (batch leave) is answered without
/// its Members array, and OffsetCommit v6+ refuses the epoch of a record
/// written before the last leader change (Kafka stores it unchecked). If a
/// librdkafka release fixes these, this test fails and
/// `MockVersion::narrowed_versions` can lose them.
#[test]
fn mock_2_12_deviates_above_the_versions_the_fixture_narrows() {
    let mock = MockCluster::start_version(MockVersion::V2_12, 1, &[("grouped", 2)]);
    mock.command("apiversion 11 0 6").unwrap();
    mock.command("apiversion 13 0 4").unwrap();
    mock.command("apiversion 8 0 9").unwrap();
    let addr = mock.broker_addr(1).unwrap();
    let mut conn = Connection::connect(addr).unwrap();
    let err = conn
        .send_read(6, &join("g-v6", &KString::from("")))
        .unwrap_err();
    assert!(
        err.to_string().contains("connection closed by the broker"),
        "JoinGroup v6: {err}"
    );

    let mut conn = Connection::connect(addr).unwrap();
    let first = conn
        .send_read(5, &join("g-v3-leave", &KString::from("")))
        .unwrap();
    let member_id = first.body.member_id.clone();
    let err = conn
        .send_read(
            3,
            &LeaveGroupRequest {
                group_id: KString::from("g-v3-leave"),
                members: vec![MemberIdentity {
                    member_id,
                    ..Default::default()
                }],
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("LeaveGroupResponse.Members"),
        "LeaveGroup v3: {err}"
    );

    // A commit of an offset whose record was written in the partition's
    // previous leader epoch (as a consumer commits after a leader change).
    let metadata = MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: Some(KString::from("grouped")),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let epoch = |conn: &mut Connection| {
        conn.send(12, &metadata).unwrap().topics[0]
            .partitions
            .iter()
            .find(|p| p.partition_index == 0)
            .unwrap()
            .leader_epoch
    };
    let mut conn = Connection::connect(addr).unwrap();
    let before = epoch(&mut conn);
    mock.set_leader("grouped", 0, 1).unwrap();
    assert_eq!(
        epoch(&mut conn),
        before + 1,
        "a leader move bumps the epoch"
    );
    let commit = |conn: &mut Connection, version: i16| {
        let request = OffsetCommitRequest {
            group_id: KString::from("g-epoch"),
            generation_id_or_member_epoch: -1,
            retention_time_ms: -1,
            topics: vec![OffsetCommitRequestTopic {
                name: KString::from("grouped"),
                partitions: vec![OffsetCommitRequestPartition {
                    partition_index: 0,
                    committed_offset: 0,
                    committed_leader_epoch: before,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        conn.send(version, &request).unwrap().topics[0].partitions[0].error_code
    };
    assert_eq!(
        commit(&mut conn, 9),
        74,
        "OffsetCommit v9: FENCED_LEADER_EPOCH"
    );
    assert_eq!(commit(&mut conn, 5), 0, "OffsetCommit v5 has no epoch");
}
