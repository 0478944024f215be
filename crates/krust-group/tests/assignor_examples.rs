//! Java's published assignment examples (RangeAssignor Javadoc,
//! RangeAssignorTest, RoundRobinAssignorTest) reproduced exactly, plus the
//! KIP-429 hand-over of the cooperative-sticky assignor step by step.

use krust_group::assignor::{
    AssignError, Assignor, ClusterView, CooperativeStickyAssignor, GroupAssignment,
    MemberSubscription, RangeAssignor, RebalanceProtocol, RoundRobinAssignor, TopicPartition,
};

fn tp(t: &str, p: i32) -> TopicPartition {
    TopicPartition::new(t, p)
}

fn two_topics(n1: i32, n2: i32) -> ClusterView {
    ClusterView::new()
        .with_topic("topic1", n1)
        .with_topic("topic2", n2)
}

fn run(a: &dyn Assignor, md: &ClusterView, members: &[MemberSubscription]) -> GroupAssignment {
    a.assign(md, members).expect("assignment")
}

#[test]
fn range_javadoc_example() {
    let md = ClusterView::new().with_topic("t0", 3).with_topic("t1", 3);
    let members = [
        MemberSubscription::new("C0", &["t0", "t1"]),
        MemberSubscription::new("C1", &["t0", "t1"]),
    ];
    let got = run(&RangeAssignor, &md, &members);
    assert_eq!(
        got["C0"],
        [tp("t0", 0), tp("t0", 1), tp("t1", 0), tp("t1", 1)]
    );
    assert_eq!(got["C1"], [tp("t0", 2), tp("t1", 2)]);
}

#[test]
fn range_javadoc_static_members_keep_their_ranges_across_member_id_changes() {
    let md = ClusterView::new().with_topic("t0", 3).with_topic("t1", 3);
    for (id0, id1) in [("C0", "C1"), ("C3", "C2")] {
        let members = [
            MemberSubscription::new(id0, &["t0", "t1"]).with_instance_id("I0"),
            MemberSubscription::new(id1, &["t0", "t1"]).with_instance_id("I1"),
        ];
        let got = run(&RangeAssignor, &md, &members);
        assert_eq!(
            got[id0],
            [tp("t0", 0), tp("t0", 1), tp("t1", 0), tp("t1", 1)]
        );
        assert_eq!(got[id1], [tp("t0", 2), tp("t1", 2)]);
    }
}

#[test]
fn range_one_consumer_no_topic_and_nonexistent_topic() {
    let got = run(
        &RangeAssignor,
        &ClusterView::new(),
        &[MemberSubscription::new("c", &[] as &[&str])],
    );
    assert_eq!(got["c"], []);
    let got = run(
        &RangeAssignor,
        &ClusterView::new(),
        &[MemberSubscription::new("c", &["topic"])],
    );
    assert_eq!(got["c"], []);
}

#[test]
fn range_only_assigns_subscribed_topics() {
    let md = ClusterView::new()
        .with_topic("topic", 3)
        .with_topic("other", 3);
    let got = run(
        &RangeAssignor,
        &md,
        &[MemberSubscription::new("consumer1", &["topic"])],
    );
    assert_eq!(
        got["consumer1"],
        [tp("topic", 0), tp("topic", 1), tp("topic", 2)]
    );
}

#[test]
fn range_two_consumers_one_partition() {
    let md = ClusterView::new().with_topic("topic", 1);
    let members = [
        MemberSubscription::new("consumer1", &["topic"]),
        MemberSubscription::new("consumer2", &["topic"]),
    ];
    let got = run(&RangeAssignor, &md, &members);
    assert_eq!(got["consumer1"], [tp("topic", 0)]);
    assert_eq!(got["consumer2"], []);
}

#[test]
fn range_multiple_consumers_mixed_topics() {
    let members = [
        MemberSubscription::new("consumer1", &["topic1"]),
        MemberSubscription::new("consumer2", &["topic1", "topic2"]),
        MemberSubscription::new("consumer3", &["topic1"]),
    ];
    let got = run(&RangeAssignor, &two_topics(3, 2), &members);
    assert_eq!(got["consumer1"], [tp("topic1", 0)]);
    assert_eq!(
        got["consumer2"],
        [tp("topic1", 1), tp("topic2", 0), tp("topic2", 1)]
    );
    assert_eq!(got["consumer3"], [tp("topic1", 2)]);
}

#[test]
fn range_static_members_sort_by_instance_id_and_before_dynamic_ones() {
    // consumer-b sorts after consumer-a, but its instance id puts it first.
    let both_static = [
        MemberSubscription::new("consumer-b", &["topic1", "topic2"]).with_instance_id("instance1"),
        MemberSubscription::new("consumer-a", &["topic1", "topic2"]).with_instance_id("instance2"),
    ];
    let one_static = [
        MemberSubscription::new("consumer-b", &["topic1", "topic2"]).with_instance_id("instance1"),
        MemberSubscription::new("consumer-a", &["topic1", "topic2"]),
    ];
    for members in [both_static, one_static] {
        let got = run(&RangeAssignor, &two_topics(3, 3), &members);
        let low = [
            tp("topic1", 0),
            tp("topic1", 1),
            tp("topic2", 0),
            tp("topic2", 1),
        ];
        assert_eq!(got["consumer-b"], low);
        assert_eq!(got["consumer-a"], [tp("topic1", 2), tp("topic2", 2)]);
    }
}

#[test]
fn range_static_assignment_persists_after_member_id_changes() {
    let expected = [
        vec![
            tp("topic1", 0),
            tp("topic1", 1),
            tp("topic2", 0),
            tp("topic2", 1),
        ],
        vec![
            tp("topic1", 2),
            tp("topic1", 3),
            tp("topic2", 2),
            tp("topic2", 3),
        ],
        vec![tp("topic1", 4), tp("topic2", 4)],
    ];
    for ids in [
        ["consumer1", "consumer2", "consumer3"],
        ["consumer3", "consumer1", "consumer2"],
    ] {
        let members: Vec<_> = (0..3)
            .map(|i| {
                MemberSubscription::new(ids[i], &["topic1", "topic2"])
                    .with_instance_id(format!("instance{}", i + 1))
            })
            .collect();
        let got = run(&RangeAssignor, &two_topics(5, 5), &members);
        for i in 0..3 {
            assert_eq!(got[ids[i]], expected[i], "instance{}", i + 1);
        }
    }
}

#[test]
fn roundrobin_java_examples() {
    let members = [
        MemberSubscription::new("consumer1", &["topic1"]),
        MemberSubscription::new("consumer2", &["topic1", "topic2"]),
        MemberSubscription::new("consumer3", &["topic1"]),
    ];
    let got = run(&RoundRobinAssignor, &two_topics(3, 2), &members);
    assert_eq!(got["consumer1"], [tp("topic1", 0)]);
    assert_eq!(
        got["consumer2"],
        [tp("topic1", 1), tp("topic2", 0), tp("topic2", 1)]
    );
    assert_eq!(got["consumer3"], [tp("topic1", 2)]);

    let members = [
        MemberSubscription::new("consumer-b", &["topic1", "topic2"]).with_instance_id("instance1"),
        MemberSubscription::new("consumer-a", &["topic1", "topic2"]).with_instance_id("instance2"),
    ];
    let got = run(&RoundRobinAssignor, &two_topics(3, 3), &members);
    assert_eq!(
        got["consumer-b"],
        [tp("topic1", 0), tp("topic1", 2), tp("topic2", 1)]
    );
    assert_eq!(
        got["consumer-a"],
        [tp("topic1", 1), tp("topic2", 0), tp("topic2", 2)]
    );
}

#[test]
fn names_protocols_and_duplicate_members() {
    assert_eq!(RangeAssignor.name(), "range");
    assert_eq!(RoundRobinAssignor.name(), "roundrobin");
    assert_eq!(CooperativeStickyAssignor.name(), "cooperative-sticky");
    assert_eq!(RangeAssignor.protocol(), RebalanceProtocol::Eager);
    assert_eq!(
        CooperativeStickyAssignor.protocol(),
        RebalanceProtocol::Cooperative
    );
    let dup = [
        MemberSubscription::new("m", &["t"]),
        MemberSubscription::new("m", &["t"]),
    ];
    let md = ClusterView::new().with_topic("t", 1);
    assert_eq!(
        RangeAssignor.assign(&md, &dup),
        Err(AssignError::DuplicateMember("m".into()))
    );
}

#[test]
fn cooperative_join_revokes_first_and_hands_over_in_the_second_rebalance() {
    let a = CooperativeStickyAssignor;
    let md = ClusterView::new().with_topic("t", 4);
    let all: Vec<_> = (0..4).map(|p| tp("t", p)).collect();
    let first = [
        MemberSubscription::new("A", &["t"]).with_owned(&all, 3),
        MemberSubscription::new("B", &["t"]),
    ];
    let r1 = run(&a, &md, &first);
    // A keeps its lowest two, revokes the rest; B gets nothing yet.
    assert_eq!(r1["A"], [tp("t", 0), tp("t", 1)]);
    assert_eq!(r1["B"], []);
    let second = [
        MemberSubscription::new("A", &["t"]).with_owned(&r1["A"], 4),
        MemberSubscription::new("B", &["t"]).with_owned(&r1["B"], 4),
    ];
    let r2 = run(&a, &md, &second);
    assert_eq!(r2["A"], [tp("t", 0), tp("t", 1)]);
    assert_eq!(r2["B"], [tp("t", 2), tp("t", 3)]);
}

#[test]
fn cooperative_higher_generation_wins_a_conflicting_claim() {
    let md = ClusterView::new().with_topic("t", 2);
    let members = [
        MemberSubscription::new("old", &["t"]).with_owned(&[tp("t", 0), tp("t", 1)], 2),
        MemberSubscription::new("new", &["t"]).with_owned(&[tp("t", 0)], 5),
    ];
    let got = run(&CooperativeStickyAssignor, &md, &members);
    assert_eq!(got["new"], [tp("t", 0)]);
    assert_eq!(got["old"], [tp("t", 1)]);
}

#[test]
fn cooperative_generation_from_user_data_for_old_subscriptions() {
    let a = CooperativeStickyAssignor;
    let mut m = MemberSubscription::new("m", &["t"]);
    assert_eq!(CooperativeStickyAssignor::member_generation(&m), -1);
    m.subscription.user_data = a.subscription_user_data(&["t".into()], 7);
    assert_eq!(m.subscription.user_data.as_deref(), Some(&[0, 0, 0, 7][..]));
    assert_eq!(CooperativeStickyAssignor::member_generation(&m), 7);
    m.subscription.generation_id = 9;
    assert_eq!(CooperativeStickyAssignor::member_generation(&m), 9);
}
