//! The cluster metadata cache, sans-io: what a Metadata response says
//! about brokers, the controller, topics (with KIP-516 topic ids),
//! partitions, leaders and leader epochs (KIP-320), kept in maps for lookup.
//!
//! The pool (`pool.rs`) decides when to fetch; this module only merges
//! responses and answers questions.

use std::collections::BTreeMap;
use std::time::Instant;

use krust_codec::generated::MetadataResponse;
use krust_codec::{ErrorCode, Uuid};

/// A broker as the cluster announces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// The broker id.
    pub id: i32,
    /// The advertised host.
    pub host: String,
    /// The advertised port.
    pub port: i32,
    /// The rack, when configured.
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// `host:port`, bracketing IPv6 literals.
    pub fn addr(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// One partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// The partition index.
    pub partition: i32,
    /// The leader's broker id; `None` when the partition has no leader.
    pub leader: Option<i32>,
    /// The leader epoch (-1 when the broker does not say).
    pub leader_epoch: i32,
    /// Replica broker ids.
    pub replicas: Vec<i32>,
    /// In-sync replica broker ids.
    pub isr: Vec<i32>,
    /// Offline replica broker ids.
    pub offline_replicas: Vec<i32>,
    /// The partition-level error, e.g. LEADER_NOT_AVAILABLE.
    pub error: ErrorCode,
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// The topic name.
    pub name: String,
    /// The topic id (zero when the broker does not send one).
    pub id: Uuid,
    /// Whether the topic is internal (e.g. `__consumer_offsets`).
    pub is_internal: bool,
    /// The topic-level error, e.g. UNKNOWN_TOPIC_OR_PARTITION.
    pub error: ErrorCode,
    /// Partitions, by index order.
    pub partitions: Vec<PartitionInfo>,
}

/// A snapshot of what the cluster said.
#[derive(Debug, Clone)]
pub struct ClusterMetadata {
    /// The cluster id, when the broker sends one.
    pub cluster_id: Option<String>,
    /// The controller's broker id, when known.
    pub controller: Option<i32>,
    /// Brokers by id.
    pub brokers: BTreeMap<i32, BrokerInfo>,
    /// Topics by name.
    pub topics: BTreeMap<String, TopicInfo>,
    /// When this snapshot was fetched.
    pub fetched_at: Instant,
}

impl Default for ClusterMetadata {
    fn default() -> Self {
        ClusterMetadata {
            cluster_id: None,
            controller: None,
            brokers: BTreeMap::new(),
            topics: BTreeMap::new(),
            fetched_at: Instant::now(),
        }
    }
}

fn non_negative(id: i32) -> Option<i32> {
    (id >= 0).then_some(id)
}

impl ClusterMetadata {
    /// A snapshot from one Metadata response.
    pub fn from_response(resp: &MetadataResponse) -> ClusterMetadata {
        let mut m = ClusterMetadata::default();
        m.merge(resp);
        m
    }

    /// Merge a newer response: brokers and controller are replaced (every
    /// response lists them all), the topics it names are replaced, other
    /// cached topics are kept.
    ///
    /// Except a partition whose cached leader epoch is newer than the
    /// reply's: it keeps its cached leader, epoch and replicas, because
    /// the reply comes from a broker whose metadata lags, and taking it
    /// would move the leader back (Java's `Metadata.updateLatestMetadata`
    /// does the same). A reply without epochs (-1, before v7), or with a
    /// topic id other than the cached one (the topic was recreated and
    /// its epochs start again), is taken as it is.
    pub fn merge(&mut self, resp: &MetadataResponse) {
        self.cluster_id = resp.cluster_id.as_ref().map(|c| c.as_str().to_owned());
        self.controller = non_negative(resp.controller_id);
        self.brokers = resp
            .brokers
            .iter()
            .map(|b| {
                let info = BrokerInfo {
                    id: b.node_id,
                    host: b.host.as_str().to_owned(),
                    port: b.port,
                    rack: b.rack.as_ref().map(|r| r.as_str().to_owned()),
                };
                (b.node_id, info)
            })
            .collect();
        for t in &resp.topics {
            let Some(name) = t.name.as_ref().map(|n| n.as_str().to_owned()) else {
                continue;
            };
            let mut partitions: Vec<PartitionInfo> = t
                .partitions
                .iter()
                .map(|p| PartitionInfo {
                    partition: p.partition_index,
                    leader: non_negative(p.leader_id),
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.clone(),
                    isr: p.isr_nodes.clone(),
                    offline_replicas: p.offline_replicas.clone(),
                    error: ErrorCode::from(p.error_code),
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            let cached = self.topics.get(&name).filter(|old| {
                // Java resets on any id it did not have ("null" there).
                t.topic_id == Uuid::ZERO || t.topic_id == old.id
            });
            if let Some(old) = cached {
                for p in &mut partitions {
                    let newer = old
                        .partitions
                        .iter()
                        .find(|o| o.partition == p.partition)
                        .filter(|o| p.leader_epoch >= 0 && o.leader_epoch > p.leader_epoch);
                    if let Some(o) = newer {
                        tracing::debug!(
                            topic = %name,
                            partition = p.partition,
                            cached = o.leader_epoch,
                            reply = p.leader_epoch,
                            "metadata reply carries an older leader epoch: keeping the cached leader"
                        );
                        *p = o.clone();
                    }
                }
            }
            let info = TopicInfo {
                name: name.clone(),
                id: t.topic_id,
                is_internal: t.is_internal,
                error: ErrorCode::from(t.error_code),
                partitions,
            };
            self.topics.insert(name, info);
        }
        self.fetched_at = Instant::now();
    }

    /// A topic, if cached.
    pub fn topic(&self, name: &str) -> Option<&TopicInfo> {
        self.topics.get(name)
    }

    /// A topic by id.
    pub fn topic_by_id(&self, id: Uuid) -> Option<&TopicInfo> {
        self.topics
            .values()
            .find(|t| t.id == id && id != Uuid::ZERO)
    }

    /// A partition, if cached.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionInfo> {
        let t = self.topic(topic)?;
        t.partitions.iter().find(|p| p.partition == partition)
    }

    /// The leader's broker id and the leader epoch of a partition.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<(i32, i32)> {
        let p = self.partition(topic, partition)?;
        Some((p.leader?, p.leader_epoch))
    }

    /// A broker by id.
    pub fn broker(&self, id: i32) -> Option<&BrokerInfo> {
        self.brokers.get(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use krust_codec::generated::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };

    fn resp(topic: &str, leader: i32, epoch: i32) -> MetadataResponse {
        MetadataResponse {
            brokers: vec![MetadataResponseBroker {
                node_id: 1,
                host: "::1".into(),
                port: 9092,
                ..Default::default()
            }],
            controller_id: 1,
            topics: vec![MetadataResponseTopic {
                name: Some(topic.into()),
                partitions: vec![MetadataResponsePartition {
                    partition_index: 0,
                    leader_id: leader,
                    leader_epoch: epoch,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn merge_replaces_named_topics_and_keeps_others() {
        let mut m = ClusterMetadata::from_response(&resp("a", 1, 3));
        assert_eq!(m.leader("a", 0), Some((1, 3)));
        assert_eq!(
            m.broker(1).map(BrokerInfo::addr).as_deref(),
            Some("[::1]:9092")
        );
        m.merge(&resp("b", -1, 4));
        assert_eq!(m.leader("a", 0), Some((1, 3)));
        assert_eq!(m.leader("b", 0), None);
        assert_eq!(m.controller, Some(1));
    }

    fn with_id(mut r: MetadataResponse, id: u128) -> MetadataResponse {
        for t in &mut r.topics {
            t.topic_id = Uuid(id.to_be_bytes());
        }
        r
    }

    /// A reply from a broker whose metadata lags (an older leader epoch)
    /// must not move a partition's leader back (Java's
    /// `Metadata.updateLatestMetadata`).
    #[test]
    fn merge_keeps_the_newer_leader_epoch_of_each_partition() {
        let mut m = ClusterMetadata::from_response(&with_id(resp("a", 2, 7), 9));
        m.merge(&with_id(resp("a", 1, 6), 9));
        assert_eq!(m.leader("a", 0), Some((2, 7)), "an older epoch is ignored");
        m.merge(&with_id(resp("a", 3, 7), 9));
        assert_eq!(m.leader("a", 0), Some((3, 7)), "an equal epoch is taken");
        m.merge(&with_id(resp("a", 1, 8), 9));
        assert_eq!(m.leader("a", 0), Some((1, 8)), "a newer epoch is taken");
        // Without ids (replies before v10), epochs still order.
        let mut m = ClusterMetadata::from_response(&resp("a", 2, 7));
        m.merge(&resp("a", 1, 6));
        assert_eq!(m.leader("a", 0), Some((2, 7)));
    }

    /// What does not contradict the rule: a recreated topic (a new id)
    /// starts its epochs again, and a reply without epochs (before v7) is
    /// taken as it is.
    #[test]
    fn merge_takes_a_recreated_topic_and_replies_without_epochs() {
        let mut m = ClusterMetadata::from_response(&with_id(resp("a", 2, 7), 9));
        m.merge(&with_id(resp("a", 1, 0), 10));
        assert_eq!(m.leader("a", 0), Some((1, 0)), "a new topic id resets");
        m.merge(&with_id(resp("a", 3, -1), 10));
        assert_eq!(m.leader("a", 0), Some((3, -1)), "no epoch: taken");
    }
}
