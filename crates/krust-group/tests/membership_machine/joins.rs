//! Joining: member ids, leader assignment, eager and cooperative
//! rebalances, the subscriptions a rejoin carries, partition-count changes.

use super::*;

#[test]
fn member_id_required_then_leader_assigns_then_heartbeats() {
    let mut h = H::new(cfg());
    h.feed(Input::Start);
    h.feed(Input::Coordinator(Ok(1)));
    assert_eq!(h.join_request_member(), "");
    h.join_reply(ErrorCode::MEMBER_ID_REQUIRED, "m1", "", -1);
    assert_eq!(
        h.join_request_member(),
        "m1",
        "KIP-394: rejoin with the given id"
    );
    h.leader_join_reply(4);
    assert_eq!(h.m.state(), State::Assigning);
    assert!(h.has(|a| matches!(a, Action::Assign { generation: 4, protocol, members } if protocol == "range" && members.len() == 1)));
    let mut a = Assignments::new();
    a.insert("m1".into(), tps(&[0, 1]));
    h.feed(Input::Assignment {
        generation: 4,
        result: Ok(a),
    });
    match h.sent() {
        Some((_, Request::Sync(s))) => {
            assert_eq!(s.generation_id, 4);
            assert_eq!(s.assignments.len(), 1);
            let (_, got) =
                consumer_protocol::decode_assignment(s.assignments[0].assignment.clone()).unwrap();
            assert_eq!(got.assigned_partitions[0].partitions, vec![0, 1]);
        }
        other => panic!("{other:?}"),
    }
    h.sync_reply(ErrorCode::NONE, &[0, 1]);
    assert!(
        matches!(h.events()[..], [GroupEvent::Assigned { partitions, generation: 4, .. }] if *partitions == tps(&[0, 1]))
    );
    h.heartbeat();
    h.hb_reply(ErrorCode::NONE);
    assert!(h.has(|a| matches!(a, Action::Timer(TimerKind::Session, Some(_)))));
}

#[test]
fn eager_rebalance_in_progress_revokes_all_then_rejoins() {
    let mut h = H::stable(cfg(), &[0, 1]);
    h.heartbeat();
    h.hb_reply(ErrorCode::REBALANCE_IN_PROGRESS);
    assert_eq!(h.m.state(), State::Revoking);
    assert!(
        matches!(h.events()[..], [GroupEvent::Revoked { partitions, .. }] if *partitions == tps(&[0, 1]))
    );
    assert!(
        h.sent().is_none(),
        "no JoinGroup before the application acks"
    );
    // Until the ack the partitions are still this generation's to commit.
    assert!(h.m.owned().is_empty());
    assert_eq!(*h.m.revoking(), tps(&[0, 1]));
    h.feed(Input::RevokeDone);
    assert!(h.m.revoking().is_empty());
    assert_eq!(h.join_request_member(), "m1");
    // The revoke budget also ends the wait when the application never acks.
    h.join_reply(ErrorCode::NONE, "m1", "x", 2);
    h.sync_reply(ErrorCode::NONE, &[2]);
    assert!(
        matches!(h.events()[..], [GroupEvent::Assigned { partitions, .. }] if *partitions == tps(&[2]))
    );
    h.heartbeat();
    h.hb_reply(ErrorCode::REBALANCE_IN_PROGRESS);
    h.feed(Input::Timer(TimerKind::Revoke));
    assert!(matches!(h.sent(), Some((_, Request::Join(_)))));
}

#[test]
fn cooperative_keeps_partitions_and_revokes_only_what_moves() {
    let mut c = cfg();
    c.assignors = vec![("cooperative-sticky".into(), RebalanceProtocol::Cooperative)];
    let mut h = H::stable(c, &[0, 1, 2]);
    h.heartbeat();
    h.hb_reply(ErrorCode::REBALANCE_IN_PROGRESS);
    assert!(h.events().is_empty(), "nothing revoked before the rejoin");
    match h.sent() {
        Some((_, Request::Join(j))) => {
            let (_, sub) =
                consumer_protocol::decode_subscription(j.protocols[0].metadata.clone()).unwrap();
            assert_eq!(sub.owned_partitions[0].partitions, vec![0, 1, 2]);
            assert_eq!(sub.generation_id, 1);
        }
        other => panic!("{other:?}"),
    }
    h.join_reply(ErrorCode::NONE, "m1", "x", 2);
    h.sync_reply(ErrorCode::NONE, &[1, 2, 3]);
    assert!(
        matches!(h.events()[..], [GroupEvent::Revoked { partitions, .. }] if *partitions == tps(&[0]))
    );
    assert_eq!(h.m.owned(), &tps(&[1, 2]));
    h.feed(Input::RevokeDone);
    assert!(
        matches!(h.events()[..], [GroupEvent::Assigned { partitions, owned, .. }] if *partitions == tps(&[3]) && *owned == tps(&[1, 2, 3]))
    );
    assert!(
        matches!(h.sent(), Some((_, Request::Join(_)))),
        "KIP-429: rejoin after revoking"
    );
}

/// The Subscription of each protocol in a JoinGroup, decoded.
fn join_subscriptions(h: &H) -> Vec<(String, krust_codec::consumer_protocol::Subscription)> {
    match h.sent() {
        Some((_, Request::Join(j))) => j
            .protocols
            .iter()
            .map(|p| {
                let (v, s) = consumer_protocol::decode_subscription(p.metadata.clone()).unwrap();
                assert!(v >= 2, "Subscription v2+ carries the generation, got v{v}");
                (p.name.as_str().to_owned(), s)
            })
            .collect(),
        other => panic!("expected JoinGroup, got {other:?}"),
    }
}

/// KIP-429 / KIP-792: after a first assignment, the rejoin's Subscription
/// carries the owned partitions, the generation they were owned in and the
/// assignor's user data (cooperative-sticky: the generation, big-endian, for
/// leaders that read only v0/v1).
#[test]
fn cooperative_rejoin_subscription_carries_owned_generation_and_user_data() {
    use krust_group::assignor::{Assignor, CooperativeStickyAssignor};
    use std::sync::Arc;
    let assignors: Vec<Arc<dyn Assignor>> = vec![Arc::new(CooperativeStickyAssignor)];
    let mut h = H::with(Membership::with_assignors(cfg(), assignors));
    h.feed(Input::Start);
    h.feed(Input::Coordinator(Ok(1)));
    let first = join_subscriptions(&h);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].0, "cooperative-sticky");
    assert_eq!(first[0].1.generation_id, -1);
    assert!(first[0].1.owned_partitions.is_empty());
    assert_eq!(
        first[0].1.user_data.as_deref(),
        Some(&(-1i32).to_be_bytes()[..])
    );
    h.join_reply(ErrorCode::NONE, "m1", "other", 7);
    h.sync_reply(ErrorCode::NONE, &[0, 2]);
    assert_eq!(h.m.state(), State::Stable);
    h.heartbeat();
    h.hb_reply(ErrorCode::REBALANCE_IN_PROGRESS);
    assert_eq!(h.m.state(), State::Joining, "cooperative: no revoke first");
    let again = join_subscriptions(&h);
    let sub = &again[0].1;
    assert_eq!(sub.generation_id, 7);
    assert_eq!(sub.owned_partitions.len(), 1);
    assert_eq!(sub.owned_partitions[0].topic.as_str(), "t");
    assert_eq!(sub.owned_partitions[0].partitions, vec![0, 2]);
    assert_eq!(sub.user_data.as_deref(), Some(&7i32.to_be_bytes()[..]));
    assert_eq!(
        CooperativeStickyAssignor::member_generation(&krust_group::assignor::MemberSubscription {
            member_id: "m1".into(),
            group_instance_id: None,
            subscription: sub.clone(),
        }),
        7
    );
}

/// Each assignor offered gets its own Subscription, with its own user data.
#[test]
fn each_protocol_carries_its_assignors_user_data() {
    use krust_group::assignor::{
        AssignError, Assignor, ClusterView, GroupAssignment, MemberSubscription, RangeAssignor,
    };
    use std::sync::Arc;
    struct Tagged;
    impl Assignor for Tagged {
        fn name(&self) -> &str {
            "tagged"
        }
        fn subscription_user_data(&self, topics: &[String], generation: i32) -> Option<Bytes> {
            Some(Bytes::from(format!("{}@{generation}", topics.join(","))))
        }
        fn assign(
            &self,
            m: &ClusterView,
            members: &[MemberSubscription],
        ) -> Result<GroupAssignment, AssignError> {
            RangeAssignor.assign(m, members)
        }
    }
    let assignors: Vec<Arc<dyn Assignor>> = vec![Arc::new(Tagged), Arc::new(RangeAssignor)];
    let mut h = H::with(Membership::with_assignors(cfg(), assignors));
    h.feed(Input::Start);
    h.feed(Input::Coordinator(Ok(1)));
    let subs = join_subscriptions(&h);
    assert_eq!(subs[0].0, "tagged");
    assert_eq!(subs[0].1.user_data.as_deref(), Some(&b"t@-1"[..]));
    assert_eq!(subs[1].0, "range");
    assert_eq!(subs[1].1.user_data, None);
}

/// Java's metadata snapshot check: the leader remembers the partition
/// counts it assigned with; a refresh that shows them changed makes it
/// rejoin, an unchanged one does not. A follower never checks.
#[test]
fn leader_rejoins_when_the_partition_count_changes() {
    use std::collections::BTreeMap;
    let counts = |n: i32| BTreeMap::from([("t".to_owned(), n)]);
    let mut c = cfg();
    c.metadata_max_age = Duration::from_secs(30);
    let mut h = H::new(c);
    h.feed(Input::Start);
    h.feed(Input::Coordinator(Ok(1)));
    h.leader_join_reply(2);
    assert_eq!(h.m.state(), State::Assigning);
    // The driver reports the snapshot it assigns with, then the result.
    h.feed(Input::Metadata(counts(2)));
    let mut a = Assignments::new();
    a.insert("m1".into(), tps(&[0, 1]));
    h.feed(Input::Assignment {
        generation: 2,
        result: Ok(a),
    });
    h.sync_reply(ErrorCode::NONE, &[0, 1]);
    assert_eq!(h.m.state(), State::Stable);
    let due = h
        .last
        .iter()
        .find_map(|a| match a {
            Action::Timer(TimerKind::Metadata, Some(at)) => Some(*at),
            _ => None,
        })
        .expect("the leader arms its metadata refresh");
    assert_eq!(due, h.now + Duration::from_secs(30));
    h.now = due;
    h.feed(Input::Timer(TimerKind::Metadata));
    assert!(
        h.has(|a| matches!(a, Action::RefreshMetadata { topics } if topics == &["t".to_owned()]))
    );
    // Unchanged: nothing happens.
    h.feed(Input::Metadata(counts(2)));
    assert!(h.last.is_empty(), "{:?}", h.last);
    assert_eq!(h.m.state(), State::Stable);
    // Partitions added: eager, so revoke everything, then rejoin.
    h.feed(Input::Metadata(counts(4)));
    assert_eq!(h.m.state(), State::Revoking);
    assert!(
        matches!(h.events()[..], [GroupEvent::Revoked { partitions, .. }] if *partitions == tps(&[0, 1]))
    );
    h.feed(Input::RevokeDone);
    assert_eq!(h.m.state(), State::Joining);
    assert!(matches!(h.sent(), Some((_, Request::Join(_)))));

    // A follower ignores metadata: only the leader assigned with a snapshot.
    let mut f = H::stable(cfg(), &[0]);
    assert!(!f.has(|a| matches!(a, Action::Timer(TimerKind::Metadata, Some(_)))));
    f.feed(Input::Timer(TimerKind::Metadata));
    assert!(f.last.is_empty());
    f.feed(Input::Metadata(counts(9)));
    assert!(f.last.is_empty());
    assert_eq!(f.m.state(), State::Stable);
}
