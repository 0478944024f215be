//! The `roundrobin` assignor.

use super::{
    AssignError, Assignor, ClusterView, GroupAssignment, MemberSubscription, TopicPartition,
    empty_assignment, sorted_members, subscribed_topics,
};

/// Kafka's `roundrobin` strategy.
///
/// All partitions of all subscribed topics are laid out sorted by topic then
/// partition and dealt one at a time to the members in a fixed circular
/// order (static members first by `group.instance.id`, then dynamic members
/// by member id). A member not subscribed to a partition's topic is skipped
/// and the circle moves on, exactly like the Java client, so with differing
/// subscriptions the result matches a Java leader's.
///
/// With identical subscriptions, member counts differ by at most one.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobinAssignor;

impl RoundRobinAssignor {
    /// The protocol name, `roundrobin`.
    pub const NAME: &'static str = "roundrobin";
}

impl Assignor for RoundRobinAssignor {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn assign(
        &self,
        metadata: &ClusterView,
        members: &[MemberSubscription],
    ) -> Result<GroupAssignment, AssignError> {
        let mut out = empty_assignment(members)?;
        let ordered = sorted_members(members);
        let mut cursor = 0usize;
        for (topic, count) in subscribed_topics(metadata, &ordered) {
            for p in 0..count {
                // Some member subscribes to `topic`, so this loop ends.
                while !ordered[cursor % ordered.len()].subscribes_to(topic) {
                    cursor += 1;
                }
                let member = ordered[cursor % ordered.len()];
                cursor += 1;
                out.get_mut(&member.member_id)
                    .expect("every member is present")
                    .push(TopicPartition::new(topic, p));
            }
        }
        Ok(out)
    }
}
