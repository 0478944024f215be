//! The `range` assignor.

use super::{
    AssignError, Assignor, ClusterView, GroupAssignment, MemberSubscription, TopicPartition,
    empty_assignment, sort_lists, sorted_members, subscribed_topics,
};

/// Kafka's `range` strategy, topic by topic.
///
/// For each topic, the members subscribed to it are ordered (static members
/// first by `group.instance.id`, then dynamic members by member id) and the
/// partitions, in numeric order, are cut into contiguous ranges: with `n`
/// partitions and `m` members each gets `n / m`, and the first `n % m`
/// members get one more. Because every topic restarts at the first member,
/// co-partitioned topics (same partition count, same subscribers) line up:
/// partition `i` of each lands on the same member.
///
/// Two members `C0`, `C1` on topics `t0`, `t1` with three partitions each
/// get `C0: [t0-0, t0-1, t1-0, t1-1]` and `C1: [t0-2, t1-2]`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeAssignor;

impl RangeAssignor {
    /// The protocol name, `range`.
    pub const NAME: &'static str = "range";
}

impl Assignor for RangeAssignor {
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
        for (topic, count) in subscribed_topics(metadata, &ordered) {
            let subscribers: Vec<&MemberSubscription> = ordered
                .iter()
                .copied()
                .filter(|m| m.subscribes_to(topic))
                .collect();
            let m = subscribers.len() as i32;
            let (per, extra) = (count / m, count % m);
            let mut next = 0;
            for (i, member) in subscribers.iter().enumerate() {
                let take = per + i32::from((i as i32) < extra);
                let list = out
                    .get_mut(&member.member_id)
                    .expect("every member is present");
                list.extend((next..next + take).map(|p| TopicPartition::new(topic, p)));
                next += take;
            }
        }
        Ok(sort_lists(out))
    }
}
