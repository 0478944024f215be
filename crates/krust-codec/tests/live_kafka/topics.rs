//! CreateTopics, Metadata, DescribeConfigs and DeleteTopics at every
//! version: a topic created at each CreateTopics version is described by a
//! Metadata and a DescribeConfigs at every version, then each DeleteTopics
//! version deletes one of them.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use krust_codec::Uuid;
use krust_codec::generated::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use krust_codec::generated::delete_topics_request::DeleteTopicState;
use krust_codec::generated::describe_configs_request::DescribeConfigsResource;
use krust_codec::generated::metadata_request::MetadataRequestTopic;
use krust_codec::generated::{
    CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DescribeConfigsRequest,
    MetadataRequest, MetadataResponse,
};
use krust_testkit::{KafkaVersion, unique};

use crate::wire::{Wire, ks};

const PARTITIONS: i32 = 2;
const RETENTION_MS: &str = "3600000";
/// Kafka's error codes (org.apache.kafka.common.protocol.Errors).
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const TOPIC_ALREADY_EXISTS: i16 = 36;
/// DescribeConfigsResponse.ConfigSource and ConfigType.
const TOPIC_CONFIG: i8 = 1;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;
const TYPE_INT: i8 = 3;
const TYPE_LONG: i8 = 5;
const TYPE_LIST: i8 = 7;
/// The authorized-operations value meaning "not asked for".
const OPS_NOT_ASKED: i32 = i32::MIN;

fn create_request(name: &str, validate_only: bool) -> CreateTopicsRequest {
    CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: ks(name),
            num_partitions: PARTITIONS,
            replication_factor: 1,
            configs: vec![CreatableTopicConfig {
                name: ks("retention.ms"),
                value: Some(ks(RETENTION_MS)),
                ..Default::default()
            }],
            ..Default::default()
        }],
        timeout_ms: 30_000,
        validate_only,
        ..Default::default()
    }
}

/// Create `name` at `v`; its id when the version carries one (v7+).
fn create(wire: &mut Wire, v: i16, name: &str) -> Option<Uuid> {
    let what = format!("{}: CreateTopics v{v} {name}", wire.name);
    let response: CreateTopicsResponse = wire.send(v, &create_request(name, false));
    assert_eq!(response.topics.len(), 1, "{what}: {response:?}");
    let t = &response.topics[0];
    assert_eq!(t.name, name, "{what}");
    assert_eq!(t.error_code, 0, "{what}: {t:?}");
    if v >= 1 {
        assert_eq!(t.error_message, None, "{what}");
    }
    if v >= 5 {
        assert_eq!(t.num_partitions, PARTITIONS, "{what}");
        assert_eq!(t.replication_factor, 1, "{what}");
        assert_eq!(t.topic_config_error_code, 0, "{what}");
        let configs = t.configs.as_ref().expect("configs at v5+");
        let retention = configs
            .iter()
            .find(|c| c.name == "retention.ms")
            .unwrap_or_else(|| panic!("{what}: no retention.ms in {configs:?}"));
        assert_eq!(retention.value.as_deref(), Some(RETENTION_MS), "{what}");
        assert_eq!(retention.config_source, TOPIC_CONFIG, "{what}");
    }
    // Again: the broker read the name.
    let again = wire.send(v, &create_request(name, false));
    let t2 = &again.topics[0];
    assert_eq!(t2.error_code, TOPIC_ALREADY_EXISTS, "{what} again: {t2:?}");
    if v >= 1 {
        assert!(t2.error_message.is_some(), "{what} again: {t2:?}");
    }
    if v >= 7 {
        assert_ne!(t.topic_id, Uuid::ZERO, "{what}");
        Some(t.topic_id)
    } else {
        None
    }
}

/// A topic name and what we know of it.
struct Topic {
    name: String,
    id: Option<Uuid>,
}

pub fn lifecycle(version: KafkaVersion) {
    let mut wire = Wire::open(version);
    let create_versions: Vec<i16> = wire.versions::<CreateTopicsRequest>().collect();
    let delete_versions: Vec<i16> = wire.versions::<DeleteTopicsRequest>().collect();
    let delete_max = *delete_versions.last().expect("non-empty");

    // One topic per CreateTopics version, and enough for one deletion per
    // DeleteTopics version (plus one deleted by id at v6+).
    let needed = create_versions.len().max(delete_versions.len() + 1);
    let mut topics = Vec::new();
    for i in 0..needed {
        let v = create_versions
            .get(i)
            .copied()
            .unwrap_or(*create_versions.last().expect("non-empty"));
        let name = unique(&format!("live-ct-v{v}"));
        let id = create(&mut wire, v, &name);
        topics.push(Topic { name, id });
    }
    // validate_only (v1+): accepted, nothing created.
    let mut never_created = vec![unique("live-never")];
    for &v in create_versions.iter().filter(|&&v| v >= 1) {
        let name = unique(&format!("live-validate-v{v}"));
        let response = wire.send(v, &create_request(&name, true));
        let t = &response.topics[0];
        assert_eq!(
            (t.name.as_str(), t.error_code),
            (name.as_str(), 0),
            "{}: CreateTopics v{v} validate_only: {t:?}",
            wire.name
        );
        never_created.push(name);
    }

    wait_for_leaders(&mut wire, &topics);
    for v in wire.versions::<MetadataRequest>() {
        metadata_at(&mut wire, v, &mut topics, &never_created);
    }
    for v in wire.versions::<DescribeConfigsRequest>() {
        describe_configs_at(&mut wire, v, &topics[0].name);
    }

    // Each DeleteTopics version deletes one topic; v6+ also one by id.
    let mut deleted = Vec::new();
    for (i, &v) in delete_versions.iter().enumerate() {
        delete_at(&mut wire, v, &topics[i], false);
        deleted.push(topics[i].name.clone());
    }
    if delete_max >= 6 {
        let by_id = &topics[delete_versions.len()];
        delete_at(&mut wire, delete_max, by_id, true);
        deleted.push(by_id.name.clone());
    }
    wait_until_unknown(&mut wire, &deleted);
}

/// A fresh topic has a leader once the broker's metadata cache has it.
fn wait_for_leaders(wire: &mut Wire, topics: &[Topic]) {
    let names: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
    let started = Instant::now();
    loop {
        let m = metadata(wire, &names);
        let ready = m.topics.iter().all(|t| {
            t.error_code == 0
                && t.partitions.len() == usize::try_from(PARTITIONS).expect("small")
                && t.partitions.iter().all(|p| p.leader_id >= 0)
        });
        if ready && m.topics.len() == names.len() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{}: topics without leaders after 15 s: {m:?}",
            wire.name
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Metadata at the highest common version for `names`, no auto-creation.
fn metadata(wire: &mut Wire, names: &[&str]) -> MetadataResponse {
    let v = wire.highest::<MetadataRequest>();
    let request = MetadataRequest {
        topics: Some(
            names
                .iter()
                .map(|n| MetadataRequestTopic {
                    name: Some(ks(n)),
                    ..Default::default()
                })
                .collect(),
        ),
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    wire.send(v, &request)
}

fn metadata_at(wire: &mut Wire, v: i16, topics: &mut [Topic], never_created: &[String]) {
    let what = format!("{}: Metadata v{v}", wire.name);
    let mut asked: Vec<MetadataRequestTopic> = topics
        .iter()
        .map(|t| MetadataRequestTopic {
            name: Some(ks(&t.name)),
            ..Default::default()
        })
        .collect();
    // Before v4 a request for an unknown topic auto-creates it (Kafka's
    // auto.create.topics.enable is on); from v4 we ask it not to.
    if v >= 4 {
        asked.extend(never_created.iter().map(|n| MetadataRequestTopic {
            name: Some(ks(n)),
            ..Default::default()
        }));
    }
    let request = MetadataRequest {
        topics: Some(asked),
        // Not in v0-v3 (where it is implicitly true).
        allow_auto_topic_creation: v < 4,
        include_cluster_authorized_operations: (8..=10).contains(&v),
        include_topic_authorized_operations: v >= 8,
        ..Default::default()
    };
    let m = wire.send(v, &request);
    assert_eq!(m.brokers.len(), 1, "{what}: {:?}", m.brokers);
    let broker = &m.brokers[0];
    assert_eq!(
        (broker.host.as_str(), broker.port),
        ("127.0.0.1", wire.port()),
        "{what}"
    );
    let node = broker.node_id;
    if v >= 1 {
        assert_eq!(m.controller_id, node, "{what}: the only broker");
    }
    if v >= 2 {
        assert!(
            m.cluster_id.as_deref().is_some_and(|c| !c.is_empty()),
            "{what}: cluster id {:?}",
            m.cluster_id
        );
    }
    if (8..=10).contains(&v) {
        assert_ne!(m.cluster_authorized_operations, OPS_NOT_ASKED, "{what}");
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for t in &m.topics {
        let name = t.name.as_deref().unwrap_or_default().to_owned();
        *seen.entry(name.clone()).or_default() += 1;
        if never_created.contains(&name) {
            assert_eq!(t.error_code, UNKNOWN_TOPIC_OR_PARTITION, "{what}: {t:?}");
            assert!(t.partitions.is_empty(), "{what}: {t:?}");
            continue;
        }
        let topic = topics
            .iter_mut()
            .find(|x| x.name == name)
            .unwrap_or_else(|| panic!("{what}: a topic we did not ask for: {t:?}"));
        assert_eq!(t.error_code, 0, "{what}: {t:?}");
        assert_eq!(t.partitions.len(), 2, "{what}: {t:?}");
        if v >= 1 {
            assert!(!t.is_internal, "{what}");
        }
        if v >= 8 {
            assert_ne!(t.topic_authorized_operations, OPS_NOT_ASKED, "{what}");
        }
        if v >= 10 {
            assert_ne!(t.topic_id, Uuid::ZERO, "{what}: {name}");
            match topic.id {
                Some(id) => assert_eq!(t.topic_id, id, "{what}: {name}'s id"),
                None => topic.id = Some(t.topic_id),
            }
        }
        let mut indexes: Vec<i32> = t.partitions.iter().map(|p| p.partition_index).collect();
        indexes.sort_unstable();
        assert_eq!(indexes, [0, 1], "{what}: {name}");
        for p in &t.partitions {
            assert_eq!(p.error_code, 0, "{what}: {p:?}");
            assert_eq!(p.leader_id, node, "{what}: {p:?}");
            assert_eq!(p.replica_nodes, [node], "{what}: {p:?}");
            assert_eq!(p.isr_nodes, [node], "{what}: {p:?}");
            if v >= 5 {
                assert!(p.offline_replicas.is_empty(), "{what}: {p:?}");
            }
            if v >= 7 {
                assert!(p.leader_epoch >= 0, "{what}: {p:?}");
            }
        }
    }
    for t in topics.iter() {
        assert_eq!(seen.get(&t.name), Some(&1), "{what}: {} listed", t.name);
    }
    if v >= 4 {
        for n in never_created {
            assert_eq!(seen.get(n), Some(&1), "{what}: {n} listed as unknown");
        }
    }
    // v12: topics asked by id alone; the broker names them.
    if v >= 12 {
        let ids: Vec<(krust_codec::Uuid, &str)> = topics
            .iter()
            .map(|t| (t.id.expect("known from v10"), t.name.as_str()))
            .collect();
        let request = MetadataRequest {
            topics: Some(
                ids.iter()
                    .map(|(id, _)| MetadataRequestTopic {
                        topic_id: *id,
                        name: None,
                        ..Default::default()
                    })
                    .collect(),
            ),
            allow_auto_topic_creation: false,
            ..Default::default()
        };
        let m = wire.send(v, &request);
        let mut got: Vec<(krust_codec::Uuid, &str, i16, usize)> = m
            .topics
            .iter()
            .map(|t| {
                (
                    t.topic_id,
                    t.name.as_deref().unwrap_or_default(),
                    t.error_code,
                    t.partitions.len(),
                )
            })
            .collect();
        got.sort_unstable();
        let mut want: Vec<_> = ids.iter().map(|(id, n)| (*id, *n, 0, 2)).collect();
        want.sort_unstable();
        assert_eq!(got, want, "{what}: by topic id");
    }
}

fn describe_configs_at(wire: &mut Wire, v: i16, topic: &str) {
    let what = format!("{}: DescribeConfigs v{v}", wire.name);
    let request = DescribeConfigsRequest {
        resources: vec![
            DescribeConfigsResource {
                resource_type: 2, // TOPIC
                resource_name: ks(topic),
                configuration_keys: Some(vec![ks("retention.ms"), ks("cleanup.policy")]),
                ..Default::default()
            },
            DescribeConfigsResource {
                resource_type: 4, // BROKER
                resource_name: ks("1"),
                configuration_keys: Some(vec![ks("num.io.threads")]),
                ..Default::default()
            },
        ],
        include_synonyms: v >= 1,
        include_documentation: v >= 3,
        ..Default::default()
    };
    let response = wire.send(v, &request);
    assert_eq!(response.results.len(), 2, "{what}: {response:?}");
    let topic_result = &response.results[0];
    assert_eq!(
        (
            topic_result.error_code,
            topic_result.resource_type,
            topic_result.resource_name.as_str()
        ),
        (0, 2, topic),
        "{what}: {topic_result:?}"
    );
    let config = |name: &str| {
        topic_result
            .configs
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("{what}: no {name} in {topic_result:?}"))
    };
    assert_eq!(topic_result.configs.len(), 2, "{what}: {topic_result:?}");
    let retention = config("retention.ms");
    let cleanup = config("cleanup.policy");
    assert_eq!(retention.value.as_deref(), Some(RETENTION_MS), "{what}");
    assert_eq!(cleanup.value.as_deref(), Some("delete"), "{what}");
    assert!(!retention.read_only && !retention.is_sensitive, "{what}");
    // v0 has IsDefault instead of ConfigSource, but no Kafka broker sets it
    // any more (3.9.2's broker has no caller of setIsDefault): both read
    // false. From v1 on, ConfigSource says where each value comes from.
    if v == 0 {
        assert!(!retention.is_default && !cleanup.is_default, "{what}");
    } else {
        assert_eq!(retention.config_source, TOPIC_CONFIG, "{what}");
        assert_eq!(cleanup.config_source, DEFAULT_CONFIG, "{what}");
        // The value in force first, then what it overrides.
        let first = retention.synonyms.first().expect("synonyms asked for");
        assert_eq!(
            (first.name.as_str(), first.value.as_deref(), first.source),
            ("retention.ms", Some(RETENTION_MS), TOPIC_CONFIG),
            "{what}: {:?}",
            retention.synonyms
        );
    }
    if v >= 3 {
        assert_eq!(retention.config_type, TYPE_LONG, "{what}");
        assert_eq!(cleanup.config_type, TYPE_LIST, "{what}");
        assert!(
            cleanup
                .documentation
                .as_deref()
                .is_some_and(|d| !d.is_empty()),
            "{what}: documentation asked for"
        );
    }
    let broker = &response.results[1];
    assert_eq!(
        (
            broker.error_code,
            broker.resource_type,
            broker.resource_name.as_str()
        ),
        (0, 4, "1"),
        "{what}: {broker:?}"
    );
    assert_eq!(broker.configs.len(), 1, "{what}: {broker:?}");
    let threads = &broker.configs[0];
    // The testkit's server.properties sets num.io.threads=4.
    assert_eq!(
        (threads.name.as_str(), threads.value.as_deref()),
        ("num.io.threads", Some("4")),
        "{what}"
    );
    if v >= 1 {
        assert_eq!(threads.config_source, STATIC_BROKER_CONFIG, "{what}");
    }
    if v >= 3 {
        assert_eq!(threads.config_type, TYPE_INT, "{what}");
    }
}

fn delete_at(wire: &mut Wire, v: i16, topic: &Topic, by_id: bool) {
    let what = format!(
        "{}: DeleteTopics v{v} {}{}",
        wire.name,
        topic.name,
        if by_id { " by id" } else { "" }
    );
    let request = if v >= 6 {
        let state = if by_id {
            DeleteTopicState {
                name: None,
                topic_id: topic.id.expect("id known from Metadata v10+"),
                ..Default::default()
            }
        } else {
            DeleteTopicState {
                name: Some(ks(&topic.name)),
                ..Default::default()
            }
        };
        DeleteTopicsRequest {
            topics: vec![state],
            timeout_ms: 30_000,
            ..Default::default()
        }
    } else {
        DeleteTopicsRequest {
            topic_names: vec![ks(&topic.name)],
            timeout_ms: 30_000,
            ..Default::default()
        }
    };
    let response = wire.send(v, &request);
    assert_eq!(response.responses.len(), 1, "{what}: {response:?}");
    let r = &response.responses[0];
    assert_eq!(r.error_code, 0, "{what}: {r:?}");
    assert_eq!(
        r.name.as_deref(),
        Some(topic.name.as_str()),
        "{what}: {r:?}"
    );
    if v >= 6 {
        assert_eq!(Some(r.topic_id), topic.id, "{what}: {r:?}");
    }
    if v >= 5 {
        assert_eq!(r.error_message, None, "{what}");
    }
}

/// A deleted topic leaves the broker's metadata cache shortly after the
/// controller committed the deletion.
fn wait_until_unknown(wire: &mut Wire, names: &[String]) {
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let started = Instant::now();
    loop {
        let m = metadata(wire, &names);
        if m.topics.len() == names.len()
            && m.topics
                .iter()
                .all(|t| t.error_code == UNKNOWN_TOPIC_OR_PARTITION)
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{}: deleted topics still known after 15 s: {m:?}",
            wire.name
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
