//! The `cooperative-sticky` assignor (KIP-54 stickiness, KIP-429 cooperative
//! hand-over, KIP-792 generation in the Subscription).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::{
    AssignError, Assignor, ClusterView, GroupAssignment, MemberSubscription, RebalanceProtocol,
    TopicPartition, empty_assignment, sort_lists, sorted_members, subscribed_topics,
};

/// The generation a member reports when it has none.
const NO_GENERATION: i32 = -1;

/// Kafka's `cooperative-sticky` strategy.
///
/// - **Balanced**: partition counts of members with identical subscriptions
///   differ by at most one. With differing subscriptions it balances as far
///   as each member's topics allow.
/// - **Sticky**: a member keeps the partitions it reports in
///   `owned_partitions` unless balance needs them elsewhere, and then only as
///   many move as balance needs, taken from the most loaded members. When two
///   members claim the same partition, the higher `generation_id` wins; a
///   tie invalidates both claims.
/// - **Cooperative** (KIP-429): a partition that moves from member A to
///   member B is left out of B's assignment in this rebalance. A sees it
///   gone, revokes it and rejoins; the follow-up rebalance finds it unowned
///   and gives it to B. No partition is ever owned by two members at once.
///
/// The member's generation is read from the Subscription's `generation_id`
/// (v2+); for older Subscriptions, from the 4-byte big-endian user data this
/// assignor writes, as the Java client does.
#[derive(Debug, Clone, Copy, Default)]
pub struct CooperativeStickyAssignor;

impl CooperativeStickyAssignor {
    /// The protocol name, `cooperative-sticky`.
    pub const NAME: &'static str = "cooperative-sticky";

    /// The generation `member` reports: the v2+ field, else the user data
    /// (-1 if absent or unreadable).
    pub fn member_generation(member: &MemberSubscription) -> i32 {
        let sub = &member.subscription;
        if sub.generation_id >= 0 {
            return sub.generation_id;
        }
        match sub.user_data.as_deref() {
            Some([a, b, c, d, ..]) => i32::from_be_bytes([*a, *b, *c, *d]),
            _ => NO_GENERATION,
        }
    }
}

impl Assignor for CooperativeStickyAssignor {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Cooperative
    }

    /// The generation as a big-endian i32, read by leaders that only see
    /// Subscription v0/v1.
    fn subscription_user_data(&self, _topics: &[String], generation_id: i32) -> Option<Bytes> {
        Some(Bytes::copy_from_slice(&generation_id.to_be_bytes()))
    }

    fn assign(
        &self,
        metadata: &ClusterView,
        members: &[MemberSubscription],
    ) -> Result<GroupAssignment, AssignError> {
        let mut out = empty_assignment(members)?;
        let ms = sorted_members(members);
        let state = State::new(metadata, &ms);
        let (loads, owner) = state.balanced();
        for (i, parts) in loads.into_iter().enumerate() {
            let list = out
                .get_mut(&ms[i].member_id)
                .expect("every member is present");
            // KIP-429: hold back what someone else still owns; it arrives in
            // the follow-up rebalance once that member has revoked it.
            list.extend(parts.into_iter().filter(|tp| {
                owner.get(tp) == Some(&i)
                    || !state
                        .claims
                        .get(tp)
                        .is_some_and(|c| c.iter().any(|&(j, _)| j != i))
            }));
        }
        Ok(sort_lists(out))
    }
}

/// The leader's view of one rebalance, members indexed in sorted order.
struct State<'a> {
    members: Vec<&'a MemberSubscription>,
    /// Topics each member may receive (subscribed and known).
    eligible: Vec<BTreeSet<&'a str>>,
    /// Every partition to assign.
    partitions: Vec<TopicPartition>,
    /// Every existing partition some member reports owning, with (member,
    /// generation) per claim.
    claims: BTreeMap<TopicPartition, Vec<(usize, i32)>>,
}

impl<'a> State<'a> {
    fn new(metadata: &'a ClusterView, members: &[&'a MemberSubscription]) -> Self {
        let topics = subscribed_topics(metadata, members);
        let partitions = topics
            .iter()
            .flat_map(|&(t, n)| (0..n).map(move |p| TopicPartition::new(t, p)))
            .collect();
        let eligible = members
            .iter()
            .map(|m| {
                topics
                    .iter()
                    .map(|&(t, _)| t)
                    .filter(|t| m.subscribes_to(t))
                    .collect()
            })
            .collect();
        let mut claims: BTreeMap<TopicPartition, Vec<(usize, i32)>> = BTreeMap::new();
        for (i, m) in members.iter().enumerate() {
            let generation = CooperativeStickyAssignor::member_generation(m);
            let mine: BTreeSet<TopicPartition> = m.owned_partitions().into_iter().collect();
            for tp in mine.into_iter().filter(|tp| metadata.contains(tp)) {
                claims.entry(tp).or_default().push((i, generation));
            }
        }
        Self {
            members: members.to_vec(),
            eligible,
            partitions,
            claims,
        }
    }

    /// The rightful previous owner of each partition: the single claimant
    /// with the highest generation that still subscribes to its topic.
    fn owners(&self) -> BTreeMap<TopicPartition, usize> {
        let mut owners = BTreeMap::new();
        for (tp, claims) in &self.claims {
            let top = claims
                .iter()
                .map(|&(_, g)| g)
                .max()
                .unwrap_or(NO_GENERATION);
            let mut best = claims.iter().filter(|&&(_, g)| g == top);
            if let (Some(&(i, _)), None) = (best.next(), best.next()) {
                if self.eligible[i].contains(tp.topic.as_str()) {
                    owners.insert(tp.clone(), i);
                }
            }
        }
        owners
    }

    /// The balanced, sticky target assignment (before KIP-429 hold-back),
    /// per member index, and the rightful previous owners.
    fn balanced(&self) -> (Vec<Vec<TopicPartition>>, BTreeMap<TopicPartition, usize>) {
        let n = self.members.len();
        let owners = self.owners();
        let mut loads: Vec<Vec<TopicPartition>> = vec![Vec::new(); n];
        for (tp, &i) in &owners {
            loads[i].push(tp.clone());
        }
        // Fill: the most constrained partitions first, each to the least
        // loaded member that may take it.
        let mut free: Vec<(usize, &TopicPartition)> = self
            .partitions
            .iter()
            .filter(|tp| !owners.contains_key(*tp))
            .map(|tp| (self.takers(&tp.topic).count(), tp))
            .collect();
        free.sort();
        for (_, tp) in free {
            if let Some(i) = self.takers(&tp.topic).min_by_key(|&i| (loads[i].len(), i)) {
                loads[i].push(tp.clone());
            }
        }
        // Balance: move one partition from the most loaded member to the
        // least loaded one that may take it, while that narrows the gap by
        // two. Each move lowers the sum of squared loads, so this ends. With
        // identical subscriptions the giver is always a most loaded member,
        // the minimum never drops, so no member both gives and receives:
        // nothing moves twice and only the excess over quota moves.
        for list in &mut loads {
            list.sort_by(|a, b| (a.partition, &a.topic).cmp(&(b.partition, &b.topic)));
        }
        while let Some((from, idx, to)) = self.best_move(&loads, &owners) {
            let tp = loads[from].remove(idx);
            loads[to].push(tp);
        }
        (loads, owners)
    }

    /// Members that may take a partition of `topic`.
    fn takers<'s>(&'s self, topic: &'s str) -> impl Iterator<Item = usize> + 's {
        (0..self.members.len()).filter(move |&i| self.eligible[i].contains(topic))
    }

    /// (giver, index in its list, receiver) of the next balancing move.
    fn best_move(
        &self,
        loads: &[Vec<TopicPartition>],
        owners: &BTreeMap<TopicPartition, usize>,
    ) -> Option<(usize, usize, usize)> {
        let mut givers: Vec<usize> = (0..loads.len()).collect();
        givers.sort_by_key(|&i| (std::cmp::Reverse(loads[i].len()), i));
        for from in givers {
            // Give up what the giver did not own first (moving it costs no
            // revocation), then the last of what it owned (Java keeps the
            // lowest).
            let (fresh, kept): (Vec<_>, Vec<_>) = loads[from]
                .iter()
                .enumerate()
                .rev()
                .partition(|(_, tp)| owners.get(*tp) != Some(&from));
            for (idx, tp) in fresh.into_iter().chain(kept) {
                let to = self
                    .takers(&tp.topic)
                    .filter(|&j| j != from)
                    .min_by_key(|&j| (loads[j].len(), j));
                if let Some(to) = to.filter(|&j| loads[j].len() + 1 < loads[from].len()) {
                    return Some((from, idx, to));
                }
            }
        }
        None
    }
}
