//! FindCoordinator, OffsetCommit, OffsetFetch, ListGroups, DescribeGroups
//! and DeleteGroups at every version, without joining a group: each
//! OffsetCommit version commits one partition of a fresh topic for a group
//! that only stores offsets (generation -1, as a consumer using `assign`
//! does), an OffsetFetch at every version reads every one of those commits
//! back, the group reads list and describe it as the empty classic group it
//! is, and each DeleteGroups version deletes one such group.

use krust_codec::generated::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use krust_codec::generated::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic,
};
use krust_codec::generated::{
    DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest, ListGroupsRequest,
    OffsetCommitRequest, OffsetFetchRequest,
};
use krust_codec::{KString, Uuid};
use std::time::{Duration, Instant};

use krust_testkit::{Broker, Kafka, KafkaVersion, unique};

use crate::wire::{Wire, ks};

/// Kafka's error codes (org.apache.kafka.common.protocol.Errors).
const GROUP_ID_NOT_FOUND: i16 = 69;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const OPS_NOT_ASKED: i32 = i32::MIN;
/// The leader epoch committed by v6+ (stored as given, returned by
/// OffsetFetch v5+).
const EPOCH: i32 = 7;
const GROUP_KEY: i8 = 0;
const TRANSACTION_KEY: i8 = 1;

/// What one OffsetCommit version committed.
#[derive(Debug, Clone)]
struct Commit {
    version: i16,
    partition: i32,
    offset: i64,
    metadata: String,
}

/// UNSUPPORTED_VERSION: a KRaft broker answers OffsetCommit v0 and
/// OffsetFetch v0 with it for every partition (v0 kept offsets in
/// ZooKeeper; 3.9.2 advertises v0 but refuses it without ZooKeeper).
const UNSUPPORTED_VERSION: i16 = 35;

impl Commit {
    /// What the broker answers for this commit.
    fn expected_error(&self) -> i16 {
        if self.version == 0 {
            UNSUPPORTED_VERSION
        } else {
            0
        }
    }

    /// The leader epoch an OffsetFetch v5+ must return for it.
    fn epoch(&self) -> i32 {
        if self.version >= 6 { EPOCH } else { -1 }
    }
}

pub fn offsets_and_reads(version: KafkaVersion) {
    let kafka = Kafka::shared_version(version);
    let mut wire = Wire::open(version);
    let commit_versions: Vec<i16> = wire.versions::<OffsetCommitRequest>().collect();
    let topic = unique("live-offsets");
    let partitions = i32::try_from(commit_versions.len()).expect("small");
    kafka
        .create_topic(&topic, partitions)
        .unwrap_or_else(|e| panic!("{}: create {topic}: {e}", wire.name));
    let group = unique("live-group");
    let topic_id = crate::records::topic_id(&mut wire, &topic);
    let t = Topic {
        name: &topic,
        id: topic_id,
    };

    for v in wire.versions::<FindCoordinatorRequest>() {
        find_coordinator_at(&mut wire, v, GROUP_KEY, &group);
        if v >= 1 {
            find_coordinator_at(&mut wire, v, TRANSACTION_KEY, &unique("live-txn"));
        }
    }

    let commits: Vec<Commit> = commit_versions
        .iter()
        .zip(0..)
        .map(|(&v, partition)| Commit {
            version: v,
            partition,
            offset: 100 + i64::from(v),
            metadata: format!("committed at v{v}"),
        })
        .collect();
    for c in &commits {
        commit_at(&mut wire, &group, t, c);
    }
    for v in wire.versions::<OffsetFetchRequest>() {
        fetch_at(&mut wire, v, &group, t, &commits);
    }
    for v in wire.versions::<ListGroupsRequest>() {
        list_at(&mut wire, v, &group);
    }
    for v in wire.versions::<DescribeGroupsRequest>() {
        describe_at(&mut wire, v, &group);
    }

    // Each DeleteGroups version deletes a group of its own.
    let commit_max = *commit_versions.last().expect("non-empty");
    for v in wire.versions::<DeleteGroupsRequest>() {
        let doomed = unique(&format!("live-delete-v{v}"));
        let c = Commit {
            version: commit_max,
            partition: 0,
            offset: 5,
            metadata: String::new(),
        };
        commit_at(&mut wire, &doomed, t, &c);
        let what = format!("{}: DeleteGroups v{v}", wire.name);
        let response = wire.send(
            v,
            &DeleteGroupsRequest {
                groups_names: vec![ks(&doomed)],
                ..Default::default()
            },
        );
        assert_eq!(response.results.len(), 1, "{what}: {response:?}");
        let r = &response.results[0];
        assert_eq!(
            (r.group_id.as_str(), r.error_code),
            (doomed.as_str(), 0),
            "{what}"
        );
        // Gone: no committed offset left.
        let after = fetch_committed(&mut wire, &doomed, &topic);
        assert_eq!(after, [(0, -1)], "{what}: offsets after the delete");
    }
}

fn find_coordinator_at(wire: &mut Wire, v: i16, key_type: i8, key: &str) {
    let what = format!("{}: FindCoordinator v{v} type {key_type} {key}", wire.name);
    let request = FindCoordinatorRequest {
        key: ks(if v <= 3 { key } else { "" }),
        key_type,
        coordinator_keys: if v >= 4 { vec![ks(key)] } else { Vec::new() },
        ..Default::default()
    };
    // The first lookup creates __consumer_offsets (or
    // __transaction_state): the coordinator is not available until it has
    // a leader.
    let started = Instant::now();
    let (error, node, host, port) = loop {
        let r = wire.send(v, &request);
        let found = if v >= 4 {
            assert_eq!(r.coordinators.len(), 1, "{what}: {r:?}");
            let c = &r.coordinators[0];
            assert_eq!(c.key, key, "{what}");
            (c.error_code, c.node_id, c.host.clone(), c.port)
        } else {
            (r.error_code, r.node_id, r.host.clone(), r.port)
        };
        let retriable = [COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS];
        if !retriable.contains(&found.0) {
            break found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what}: no coordinator after 30 s: {r:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(error, 0, "{what}");
    assert_eq!(node, 1, "{what}: the only node");
    assert_eq!((host.as_str(), port), ("127.0.0.1", wire.port()), "{what}");
}

/// A topic by name and id: OffsetCommit and OffsetFetch v10 name topics by
/// id (KIP-848), the versions before by name.
#[derive(Clone, Copy)]
struct Topic<'a> {
    name: &'a str,
    id: Uuid,
}

impl Topic<'_> {
    /// The name a request of `v` carries (empty when it names the id).
    fn name_at(self, v: i16) -> KString {
        ks(if v >= 10 { "" } else { self.name })
    }

    /// The id a request of `v` carries (zero when it names the name).
    fn id_at(self, v: i16) -> Uuid {
        if v >= 10 { self.id } else { Uuid::ZERO }
    }

    /// The topic as a response of `v` names it.
    fn check(self, v: i16, name: &str, id: Uuid, what: &str) {
        assert_eq!(
            (name, id),
            (self.name_at(v).as_str(), self.id_at(v)),
            "{what}"
        );
    }
}

fn commit_at(wire: &mut Wire, group: &str, topic: Topic<'_>, c: &Commit) {
    let v = c.version;
    let what = format!("{}: OffsetCommit v{v} {group}", wire.name);
    let request = OffsetCommitRequest {
        group_id: ks(group),
        // Not a member: a group that only stores offsets.
        generation_id_or_member_epoch: -1,
        member_id: ks(""),
        group_instance_id: None,
        retention_time_ms: -1,
        topics: vec![OffsetCommitRequestTopic {
            name: topic.name_at(v),
            topic_id: topic.id_at(v),
            partitions: vec![OffsetCommitRequestPartition {
                partition_index: c.partition,
                committed_offset: c.offset,
                committed_leader_epoch: if v >= 6 { EPOCH } else { -1 },
                commit_timestamp: -1,
                committed_metadata: Some(ks(&c.metadata)),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let response = wire.send(v, &request);
    assert_eq!(response.topics.len(), 1, "{what}: {response:?}");
    let t = &response.topics[0];
    topic.check(v, &t.name, t.topic_id, &what);
    assert_eq!(t.partitions.len(), 1, "{what}: {t:?}");
    let p = &t.partitions[0];
    assert_eq!(
        (p.partition_index, p.error_code),
        (c.partition, c.expected_error()),
        "{what}: {p:?}"
    );
}

/// One committed partition as OffsetFetch returns it.
#[derive(Debug, PartialEq)]
struct Fetched {
    partition: i32,
    offset: i64,
    epoch: i32,
    metadata: Option<String>,
}

fn fetch_at(wire: &mut Wire, v: i16, group: &str, topic: Topic<'_>, commits: &[Commit]) {
    let what = format!("{}: OffsetFetch v{v}", wire.name);
    let explicit = || {
        vec![OffsetFetchRequestTopic {
            name: ks(topic.name),
            partition_indexes: commits.iter().map(|c| c.partition).collect(),
            ..Default::default()
        }]
    };
    // v2+: no topic list means every partition the group committed.
    let request = if v >= 8 {
        OffsetFetchRequest {
            groups: vec![OffsetFetchRequestGroup {
                group_id: ks(group),
                member_id: None,
                member_epoch: -1,
                topics: None,
                ..Default::default()
            }],
            require_stable: true,
            ..Default::default()
        }
    } else {
        OffsetFetchRequest {
            group_id: ks(group),
            topics: if v >= 2 { None } else { Some(explicit()) },
            require_stable: v >= 7,
            ..Default::default()
        }
    };
    let response = wire.send(v, &request);
    let mut got: Vec<Fetched> = Vec::new();
    if v >= 8 {
        assert_eq!(response.groups.len(), 1, "{what}: {response:?}");
        let g = &response.groups[0];
        assert_eq!((g.group_id.as_str(), g.error_code), (group, 0), "{what}");
        for t in &g.topics {
            topic.check(v, &t.name, t.topic_id, &what);
            for p in &t.partitions {
                assert_eq!(p.error_code, 0, "{what}: {p:?}");
                got.push(Fetched {
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    epoch: p.committed_leader_epoch,
                    metadata: p.metadata.as_deref().map(str::to_owned),
                });
            }
        }
    } else if v == 0 {
        // Like OffsetCommit v0 (ZooKeeper): refused per partition.
        let mut refused: Vec<(i32, i16, i64)> = response
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .map(|p| (p.partition_index, p.error_code, p.committed_offset))
            .collect();
        refused.sort_unstable();
        let asked: Vec<(i32, i16, i64)> = commits
            .iter()
            .map(|c| (c.partition, UNSUPPORTED_VERSION, -1))
            .collect();
        assert_eq!(refused, asked, "{what}");
        return;
    } else {
        if v >= 2 {
            assert_eq!(response.error_code, 0, "{what}");
        }
        for t in &response.topics {
            assert_eq!(t.name, topic.name, "{what}");
            for p in &t.partitions {
                assert_eq!(p.error_code, 0, "{what}: {p:?}");
                got.push(Fetched {
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    epoch: if v >= 5 { p.committed_leader_epoch } else { -1 },
                    metadata: p.metadata.as_deref().map(str::to_owned),
                });
            }
        }
    }
    got.sort_by_key(|f| f.partition);
    // Asked by name (v0-v1), a partition without a commit comes back with
    // offset -1 and empty metadata; asked for all (v2+), it is left out.
    let want: Vec<Fetched> = commits
        .iter()
        .filter(|c| v < 2 || c.expected_error() == 0)
        .map(|c| {
            if c.expected_error() == 0 {
                Fetched {
                    partition: c.partition,
                    offset: c.offset,
                    epoch: if v >= 5 { c.epoch() } else { -1 },
                    metadata: Some(c.metadata.clone()),
                }
            } else {
                Fetched {
                    partition: c.partition,
                    offset: -1,
                    epoch: -1,
                    metadata: Some(String::new()),
                }
            }
        })
        .collect();
    assert_eq!(got, want, "{what}: every version's commit");
}

/// (partition, committed offset) of partition 0, at the highest version.
fn fetch_committed(wire: &mut Wire, group: &str, topic: &str) -> Vec<(i32, i64)> {
    let v = wire.highest::<OffsetFetchRequest>().min(7);
    let response = wire.send(
        v,
        &OffsetFetchRequest {
            group_id: ks(group),
            topics: Some(vec![OffsetFetchRequestTopic {
                name: ks(topic),
                partition_indexes: vec![0],
                ..Default::default()
            }]),
            ..Default::default()
        },
    );
    response
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| (p.partition_index, p.committed_offset))
        .collect()
}

fn list_at(wire: &mut Wire, v: i16, group: &str) {
    let what = format!("{}: ListGroups v{v}", wire.name);
    let listed = |wire: &mut Wire, states: &[&str], types: &[&str]| {
        let request = ListGroupsRequest {
            states_filter: states.iter().map(|s| ks(s)).collect(),
            types_filter: types.iter().map(|s| ks(s)).collect(),
            ..Default::default()
        };
        let response = wire.send(v, &request);
        assert_eq!(response.error_code, 0, "{what}: {response:?}");
        response
            .groups
            .into_iter()
            .filter(|g| g.group_id == group)
            .collect::<Vec<_>>()
    };
    let states: &[&str] = if v >= 4 { &["Empty"] } else { &[] };
    let types: &[&str] = if v >= 5 { &["classic"] } else { &[] };
    let found = listed(wire, states, types);
    assert_eq!(found.len(), 1, "{what}: {group} listed once: {found:?}");
    let g = &found[0];
    assert_eq!(g.protocol_type, "", "{what}: no member ever joined");
    if v >= 4 {
        assert_eq!(g.group_state, "Empty", "{what}");
        // The filter is read: another state lists it not.
        assert!(
            listed(wire, &["Stable"], types).is_empty(),
            "{what}: Stable"
        );
    }
    if v >= 5 {
        assert_eq!(g.group_type, "classic", "{what}");
        assert!(
            listed(wire, states, &["consumer"]).is_empty(),
            "{what}: consumer"
        );
    }
}

fn describe_at(wire: &mut Wire, v: i16, group: &str) {
    let what = format!("{}: DescribeGroups v{v}", wire.name);
    let unknown = unique("live-no-such-group");
    let request = DescribeGroupsRequest {
        groups: vec![ks(group), ks(&unknown)],
        include_authorized_operations: v >= 3,
        ..Default::default()
    };
    let response = wire.send(v, &request);
    assert_eq!(response.groups.len(), 2, "{what}: {response:?}");
    let by_id = |id: &str| {
        response
            .groups
            .iter()
            .find(|g| g.group_id == id)
            .unwrap_or_else(|| panic!("{what}: {id} not described: {response:?}"))
    };
    let g = by_id(group);
    assert_eq!(
        (g.group_id.as_str(), g.error_code),
        (group, 0),
        "{what}: {g:?}"
    );
    assert_eq!(g.group_state, "Empty", "{what}");
    assert_eq!(
        (g.protocol_type.as_str(), g.protocol_data.as_str()),
        ("", ""),
        "{what}"
    );
    assert!(g.members.is_empty(), "{what}: {g:?}");
    if v >= 3 {
        assert_ne!(g.authorized_operations, OPS_NOT_ASKED, "{what}: asked for");
    }
    // A group that never existed is described as Dead; from v6 also with
    // GROUP_ID_NOT_FOUND and a message (KIP-1043).
    let u = by_id(&unknown);
    let not_found = if v >= 6 { GROUP_ID_NOT_FOUND } else { 0 };
    assert_eq!(
        (u.group_id.as_str(), u.error_code, u.group_state.as_str()),
        (unknown.as_str(), not_found, "Dead"),
        "{what}: {u:?}"
    );
    assert_eq!(u.error_message.is_some(), v >= 6, "{what}: {u:?}");
    assert!(u.members.is_empty(), "{what}: {u:?}");
}
