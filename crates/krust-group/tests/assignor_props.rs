//! Property tests for the built-in assignors: coverage, subscription
//! respect, balance, and (for cooperative-sticky) stickiness and the KIP-429
//! two-step hand-over.

use std::collections::BTreeSet;

use krust_group::assignor::{
    Assignor, ClusterView, CooperativeStickyAssignor, GroupAssignment, MemberSubscription,
    RangeAssignor, RoundRobinAssignor, TopicPartition,
};
use proptest::prelude::*;

/// Topic partition counts and, per member, the topics it subscribes to.
#[derive(Debug, Clone)]
struct Group {
    counts: Vec<i32>,
    subs: Vec<Vec<usize>>,
}

impl Group {
    fn metadata(&self) -> ClusterView {
        (0..self.counts.len()).fold(ClusterView::new(), |md, t| {
            md.with_topic(topic(t), self.counts[t])
        })
    }

    fn member(&self, i: usize) -> MemberSubscription {
        let topics: Vec<String> = self.subs[i].iter().map(|&t| topic(t)).collect();
        MemberSubscription::new(member(i), &topics)
    }

    /// Every partition some member subscribes to.
    fn subscribed(&self) -> BTreeSet<TopicPartition> {
        let topics: BTreeSet<usize> = self.subs.iter().flatten().copied().collect();
        topics
            .into_iter()
            .flat_map(|t| (0..self.counts[t]).map(move |p| TopicPartition::new(topic(t), p)))
            .collect()
    }
}

fn topic(t: usize) -> String {
    format!("t{t}")
}

fn member(i: usize) -> String {
    format!("m{i:02}")
}

fn counts() -> impl Strategy<Value = Vec<i32>> {
    prop::collection::vec(0..9i32, 1..5)
}

/// Members with arbitrary (non-empty) subscriptions.
fn mixed_group() -> impl Strategy<Value = Group> {
    counts().prop_flat_map(|counts| {
        let nt = counts.len();
        let sub = prop::collection::btree_set(0..nt, 1..=nt).prop_map(|s| s.into_iter().collect());
        prop::collection::vec(sub, 1..7).prop_map(move |subs| Group {
            counts: counts.clone(),
            subs,
        })
    })
}

/// Members that all subscribe to every topic.
fn uniform_group(members: std::ops::Range<usize>) -> impl Strategy<Value = Group> {
    (counts(), members).prop_map(|(counts, n)| {
        let all: Vec<usize> = (0..counts.len()).collect();
        Group {
            counts,
            subs: vec![all; n],
        }
    })
}

/// Each partition at most once, only to subscribers, every member present.
fn check_valid(
    g: &Group,
    members: &[MemberSubscription],
    a: &GroupAssignment,
) -> BTreeSet<TopicPartition> {
    let mut seen = BTreeSet::new();
    assert_eq!(a.len(), members.len());
    for m in members {
        for tp in &a[&m.member_id] {
            assert!(
                m.subscribes_to(&tp.topic),
                "{} got unsubscribed {tp}",
                m.member_id
            );
            assert!(seen.insert(tp.clone()), "{tp} assigned twice");
        }
    }
    assert!(seen.is_subset(&g.subscribed()));
    seen
}

fn spread(a: &GroupAssignment) -> usize {
    let sizes = a.values().map(Vec::len);
    sizes.clone().max().unwrap_or(0) - sizes.min().unwrap_or(0)
}

/// One cooperative rebalance: every member reports what it owns (its last
/// assignment) at `generation`.
fn coop_round(
    g: &Group,
    ids: &[usize],
    owned: &GroupAssignment,
    generation: i32,
) -> (Vec<MemberSubscription>, GroupAssignment) {
    let members: Vec<_> = ids
        .iter()
        .map(|&i| {
            let mine = owned.get(&member(i)).cloned().unwrap_or_default();
            g.member(i).with_owned(&mine, generation)
        })
        .collect();
    let a = CooperativeStickyAssignor
        .assign(&g.metadata(), &members)
        .unwrap();
    (members, a)
}

/// Cooperative rebalances until nothing is withheld; returns the stable
/// assignment and how many rounds it took.
fn coop_settle(g: &Group, ids: &[usize], owned: &GroupAssignment) -> (GroupAssignment, usize) {
    let mut owned = owned.clone();
    for round in 1..=4 {
        let (members, a) = coop_round(g, ids, &owned, round as i32);
        let got = check_valid(g, &members, &a);
        let want: BTreeSet<_> = g.subscribed();
        owned = a;
        if got == want {
            return (owned, round);
        }
    }
    panic!("no stable assignment after 4 rounds");
}

/// Fewest partitions that must leave their owners to balance `owned` counts
/// (uniform subscriptions, `total` partitions in all).
fn min_moves(owned: &[usize], total: usize) -> usize {
    let n = owned.len();
    let (q, r) = (total / n, total % n);
    let mut c = owned.to_vec();
    c.sort_unstable_by(|a, b| b.cmp(a));
    c.iter()
        .enumerate()
        .map(|(i, &x)| x.saturating_sub(q + usize::from(i < r)))
        .sum()
}

fn moved_away(before: &GroupAssignment, after: &GroupAssignment) -> usize {
    before
        .iter()
        .map(|(m, ps)| {
            let now: BTreeSet<_> = after.get(m).into_iter().flatten().collect();
            ps.iter().filter(|tp| !now.contains(tp)).count()
        })
        .sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn eager_assignors_assign_every_subscribed_partition_once(g in mixed_group()) {
        let members: Vec<_> = (0..g.subs.len()).map(|i| g.member(i)).collect();
        for a in [&RangeAssignor as &dyn Assignor, &RoundRobinAssignor, &CooperativeStickyAssignor] {
            let got = a.assign(&g.metadata(), &members).unwrap();
            prop_assert_eq!(check_valid(&g, &members, &got), g.subscribed(), "{}", a.name());
        }
    }

    #[test]
    fn roundrobin_and_sticky_balance_identical_subscriptions(g in uniform_group(1..8)) {
        let members: Vec<_> = (0..g.subs.len()).map(|i| g.member(i)).collect();
        for a in [&RoundRobinAssignor as &dyn Assignor, &CooperativeStickyAssignor] {
            let got = a.assign(&g.metadata(), &members).unwrap();
            prop_assert!(spread(&got) <= 1, "{}: {:?}", a.name(), got);
        }
    }

    /// From any conflict-free ownership (some partitions unowned), with
    /// arbitrary subscriptions, every rebalance hands out each partition at
    /// most once and the group settles (nothing withheld) within four. With
    /// differing subscriptions the greedy balance may take a third round;
    /// identical subscriptions settle in two (next property).
    #[test]
    fn cooperative_settles_with_any_subscriptions(g in mixed_group(), seed in prop::collection::vec(0..8usize, 64)) {
        let ids: Vec<usize> = (0..g.subs.len()).collect();
        let mut owned = GroupAssignment::new();
        for (k, tp) in g.subscribed().into_iter().enumerate() {
            let i = seed[k % seed.len()];
            if i < ids.len() {
                owned.entry(member(i)).or_default().push(tp);
            }
        }
        coop_settle(&g, &ids, &owned);
    }

    /// Identical subscriptions from any ownership: balanced after the
    /// follow-up, and only the minimum number of partitions left an owner.
    #[test]
    fn cooperative_moves_the_minimum(g in uniform_group(1..7), seed in prop::collection::vec(0..7usize, 64)) {
        let ids: Vec<usize> = (0..g.subs.len()).collect();
        let mut owned = GroupAssignment::new();
        for (k, tp) in g.subscribed().into_iter().enumerate() {
            owned.entry(member(seed[k % seed.len()] % ids.len())).or_default().push(tp);
        }
        let (settled, rounds) = coop_settle(&g, &ids, &owned);
        prop_assert!(rounds <= 2);
        prop_assert!(spread(&settled) <= 1);
        let counts: Vec<usize> = ids.iter().map(|&i| owned.get(&member(i)).map_or(0, Vec::len)).collect();
        prop_assert_eq!(moved_away(&owned, &settled), min_moves(&counts, g.subscribed().len()));
    }

    /// A member joins a settled group: the others only give partitions up
    /// (never receive), the minimum moves, and the newcomer gets exactly the
    /// revoked partitions in the follow-up.
    #[test]
    fn cooperative_join_is_sticky(g in uniform_group(2..8)) {
        let n = g.subs.len();
        let old: Vec<usize> = (0..n - 1).collect();
        let (before, _) = coop_settle(&g, &old, &GroupAssignment::new());
        let all: Vec<usize> = (0..n).collect();
        let (members, r1) = coop_round(&g, &all, &before, 10);
        check_valid(&g, &members, &r1);
        for i in &old {
            let was: BTreeSet<_> = before[&member(*i)].iter().collect();
            prop_assert!(r1[&member(*i)].iter().all(|tp| was.contains(tp)));
        }
        prop_assert!(r1[&member(n - 1)].is_empty());
        let counts: Vec<usize> = all.iter().map(|&i| before.get(&member(i)).map_or(0, Vec::len)).collect();
        prop_assert_eq!(moved_away(&before, &r1), min_moves(&counts, g.subscribed().len()));
        let (_, r2) = coop_round(&g, &all, &r1, 11);
        prop_assert_eq!(check_valid(&g, &members, &r2), g.subscribed());
        prop_assert!(spread(&r2) <= 1);
        prop_assert_eq!(moved_away(&r1, &r2), 0);
    }

    /// A member leaves: its partitions are spread at once (nobody else owns
    /// them) and no other partition moves.
    #[test]
    fn cooperative_leave_moves_only_the_leavers_partitions(g in uniform_group(2..8), leaver in 0..8usize) {
        let n = g.subs.len();
        let all: Vec<usize> = (0..n).collect();
        let (before, _) = coop_settle(&g, &all, &GroupAssignment::new());
        let leaver = leaver % n;
        let rest: Vec<usize> = all.iter().copied().filter(|&i| i != leaver).collect();
        let (members, r1) = coop_round(&g, &rest, &before, 10);
        prop_assert_eq!(check_valid(&g, &members, &r1), g.subscribed());
        prop_assert!(spread(&r1) <= 1);
        for i in &rest {
            let now: BTreeSet<_> = r1[&member(*i)].iter().collect();
            prop_assert!(before[&member(*i)].iter().all(|tp| now.contains(tp)));
        }
    }
}
