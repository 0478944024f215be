//! Partition assignors run by the group leader.
//!
//! In the classic consumer protocol the coordinator picks one member as the
//! leader and hands it every member's [`Subscription`]; the leader runs the
//! assignor the group agreed on (the first protocol name every member listed)
//! and sends the result back through SyncGroup. This module holds that pure
//! computation: no I/O, no clock, no randomness, so the same input always
//! gives the same assignment and every assignor is unit- and property-testable.
//!
//! Three assignors ship, matching the Java client's behaviour so that krust
//! members can lead a group that contains Java or librdkafka members:
//!
//! - [`RangeAssignor`] (`range`): per topic, contiguous ranges.
//! - [`RoundRobinAssignor`] (`roundrobin`): all partitions dealt out in turn.
//! - [`CooperativeStickyAssignor`] (`cooperative-sticky`): balanced, keeps
//!   owned partitions, and follows KIP-429's two-step hand-over.
//!
//! A custom assignor is any type implementing [`Assignor`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use bytes::Bytes;
pub use krust_codec::consumer_protocol::Subscription;

mod range;
mod roundrobin;
mod sticky;

pub use range::RangeAssignor;
pub use roundrobin::RoundRobinAssignor;
pub use sticky::CooperativeStickyAssignor;

/// A member id as the coordinator issued it.
pub type MemberId = String;

/// The result of an assignment: every member of the group (including those
/// that got nothing) to its partitions, sorted by topic then partition.
pub type GroupAssignment = BTreeMap<MemberId, Vec<TopicPartition>>;

/// One partition of one topic. Orders by topic, then partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic name.
    pub topic: String,
    /// The partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// A topic-partition.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// How members give up partitions during a rebalance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebalanceProtocol {
    /// Every member revokes everything before joining (the classic protocol).
    Eager,
    /// KIP-429: members keep their partitions while rejoining and revoke only
    /// what the new assignment takes away; a moved partition reaches its new
    /// owner in a follow-up rebalance.
    Cooperative,
}

/// What the leader knows about one topic from its metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicMetadata {
    /// Number of partitions (partitions are `0..partition_count`).
    pub partition_count: i32,
    /// For each partition, the racks of its replicas, when known (KIP-881).
    /// Empty means "unknown"; the built-in assignors do not use it yet.
    pub replica_racks: Vec<BTreeSet<String>>,
}

/// The cluster as the assignor sees it: topic name to its metadata. Topics a
/// member subscribes to but that are missing here are skipped, as in Java.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterView {
    /// Known topics.
    pub topics: BTreeMap<String, TopicMetadata>,
}

impl ClusterView {
    /// An empty view.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add (or replace) a topic with `partition_count` partitions and no
    /// rack information.
    pub fn with_topic(mut self, topic: impl Into<String>, partition_count: i32) -> Self {
        self.topics.insert(
            topic.into(),
            TopicMetadata {
                partition_count,
                replica_racks: Vec::new(),
            },
        );
        self
    }

    /// Partition count of `topic`, if the topic is known.
    pub fn partition_count(&self, topic: &str) -> Option<i32> {
        self.topics.get(topic).map(|t| t.partition_count.max(0))
    }

    /// Whether `tp` exists in this view.
    pub fn contains(&self, tp: &TopicPartition) -> bool {
        self.partition_count(&tp.topic)
            .is_some_and(|n| (0..n).contains(&tp.partition))
    }
}

/// One member's entry in the leader's JoinGroup response, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberSubscription {
    /// The member id the coordinator gave it.
    pub member_id: MemberId,
    /// Its `group.instance.id` when it is a static member (KIP-345).
    pub group_instance_id: Option<String>,
    /// Its decoded consumer-protocol Subscription.
    pub subscription: Subscription,
}

impl MemberSubscription {
    /// A dynamic member subscribing to `topics`, owning nothing.
    pub fn new<S: AsRef<str>>(member_id: impl Into<String>, topics: &[S]) -> Self {
        Self {
            member_id: member_id.into(),
            group_instance_id: None,
            subscription: Subscription {
                topics: topics.iter().map(|t| t.as_ref().into()).collect(),
                ..Subscription::default()
            },
        }
    }

    /// Set the static `group.instance.id`.
    pub fn with_instance_id(mut self, id: impl Into<String>) -> Self {
        self.group_instance_id = Some(id.into());
        self
    }

    /// Set the owned partitions and the generation they were owned in
    /// (Subscription v1 / v2 fields).
    pub fn with_owned(mut self, owned: &[TopicPartition], generation_id: i32) -> Self {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in owned {
            by_topic.entry(&tp.topic).or_default().push(tp.partition);
        }
        self.subscription.owned_partitions = by_topic
            .into_iter()
            .map(
                |(topic, partitions)| krust_codec::consumer_protocol::OwnedPartitions {
                    topic: topic.into(),
                    partitions,
                },
            )
            .collect();
        self.subscription.generation_id = generation_id;
        self
    }

    /// Whether this member subscribes to `topic`.
    pub fn subscribes_to(&self, topic: &str) -> bool {
        self.subscription.topics.iter().any(|t| t.as_str() == topic)
    }

    /// The partitions this member says it owns, flattened.
    pub fn owned_partitions(&self) -> Vec<TopicPartition> {
        self.subscription
            .owned_partitions
            .iter()
            .flat_map(|o| {
                o.partitions
                    .iter()
                    .map(|&p| TopicPartition::new(o.topic.as_str(), p))
            })
            .collect()
    }

    /// Java's member order: static members first, by `group.instance.id`,
    /// then dynamic members by member id.
    pub(crate) fn sort_key(&self) -> (bool, &str, &str) {
        match &self.group_instance_id {
            Some(i) => (false, i.as_str(), self.member_id.as_str()),
            None => (true, self.member_id.as_str(), ""),
        }
    }
}

/// Why an assignment could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AssignError {
    /// Two entries carry the same member id.
    #[error("member id {0:?} appears more than once")]
    DuplicateMember(MemberId),
    /// A custom assignor's own failure.
    #[error("assignor {assignor} failed: {reason}")]
    Failed {
        /// The assignor's name.
        assignor: String,
        /// What went wrong.
        reason: String,
    },
}

/// A partition assignment strategy, run by the group leader.
///
/// Implementations must be deterministic and pure: the result depends only
/// on the arguments. The returned map must contain every member (an empty
/// list for one that gets nothing), give each partition to at most one
/// member, and only give a member partitions of topics it subscribes to.
pub trait Assignor: Send + Sync {
    /// The protocol name put in JoinGroup (`range`, `roundrobin`, ...). It
    /// must be the same string other clients use for the same strategy.
    fn name(&self) -> &str;

    /// The rebalance protocol this assignor needs. The group runs cooperative
    /// only if every assignor the member lists supports it.
    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Eager
    }

    /// User data to put in this member's Subscription, given its topics and
    /// the generation of its current assignment (-1 if it has none).
    fn subscription_user_data(&self, _topics: &[String], _generation_id: i32) -> Option<Bytes> {
        None
    }

    /// Compute the assignment for `members` over `metadata`.
    fn assign(
        &self,
        metadata: &ClusterView,
        members: &[MemberSubscription],
    ) -> Result<GroupAssignment, AssignError>;
}

/// Reject duplicate member ids and return an empty assignment holding every
/// member.
pub(crate) fn empty_assignment(
    members: &[MemberSubscription],
) -> Result<GroupAssignment, AssignError> {
    let mut out = GroupAssignment::new();
    for m in members {
        if out.insert(m.member_id.clone(), Vec::new()).is_some() {
            return Err(AssignError::DuplicateMember(m.member_id.clone()));
        }
    }
    Ok(out)
}

/// Members in Java's order (see [`MemberSubscription::sort_key`]).
pub(crate) fn sorted_members(members: &[MemberSubscription]) -> Vec<&MemberSubscription> {
    let mut v: Vec<&MemberSubscription> = members.iter().collect();
    v.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    v
}

/// Every topic some member subscribes to that exists in `metadata`, sorted.
pub(crate) fn subscribed_topics<'a>(
    metadata: &'a ClusterView,
    members: &[&MemberSubscription],
) -> Vec<(&'a str, i32)> {
    metadata
        .topics
        .iter()
        .filter(|(t, _)| members.iter().any(|m| m.subscribes_to(t)))
        .map(|(t, md)| (t.as_str(), md.partition_count.max(0)))
        .collect()
}

/// Sort each member's partitions by topic, then partition.
pub(crate) fn sort_lists(mut a: GroupAssignment) -> GroupAssignment {
    a.values_mut().for_each(|v| v.sort());
    a
}
