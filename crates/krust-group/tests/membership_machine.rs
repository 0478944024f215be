//! The membership state machine driven by constructed coordinator replies,
//! no socket: every error path of JoinGroup, SyncGroup, Heartbeat and
//! LeaveGroup with the recovery the Java client applies.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use krust_codec::consumer_protocol::{self, AssignedPartitions, Assignment};
use krust_codec::generated::join_group_response::JoinGroupResponseMember;
use krust_codec::generated::{
    HeartbeatResponse, JoinGroupResponse, LeaveGroupResponse, SyncGroupResponse,
};
use krust_codec::{ErrorCode, KString};
use krust_group::membership::{Action, Assignments, Input, Reply, Request, State, TimerKind};
use krust_group::{
    GroupEvent, LeaveReason, Membership, MembershipConfig, RebalanceProtocol, TopicPartition,
};

struct H {
    m: Membership,
    now: Instant,
    last: Vec<Action>,
}

fn cfg() -> MembershipConfig {
    let mut c = MembershipConfig::new("g", vec!["t".into()]);
    c.session_timeout = Duration::from_secs(6);
    c.heartbeat_interval = Duration::from_secs(1);
    c
}

fn tps(ps: &[i32]) -> BTreeSet<TopicPartition> {
    ps.iter().map(|p| TopicPartition::new("t", *p)).collect()
}

fn assignment(ps: &[i32]) -> Bytes {
    let a = Assignment {
        assigned_partitions: vec![AssignedPartitions {
            topic: KString::from_static("t"),
            partitions: ps.to_vec(),
        }],
        user_data: None,
    };
    consumer_protocol::encode_assignment(&a, 3).unwrap()
}

impl H {
    fn new(c: MembershipConfig) -> H {
        H {
            m: Membership::new(c),
            now: Instant::now(),
            last: Vec::new(),
        }
    }
    fn feed(&mut self, i: Input) -> &[Action] {
        self.last = self.m.handle(i, self.now);
        &self.last
    }
    fn sent(&self) -> Option<(u64, &Request)> {
        self.last.iter().rev().find_map(|a| match a {
            Action::Send { seq, request } => Some((*seq, request)),
            _ => None,
        })
    }
    fn seq(&self) -> u64 {
        self.sent().expect("a request was sent").0
    }
    fn events(&self) -> Vec<&GroupEvent> {
        self.last
            .iter()
            .filter_map(|a| match a {
                Action::Emit(e) => Some(e),
                _ => None,
            })
            .collect()
    }
    fn has(&self, f: impl Fn(&Action) -> bool) -> bool {
        self.last.iter().any(f)
    }
    fn reply(&mut self, r: Reply) -> &[Action] {
        let seq = self.seq();
        self.feed(Input::Reply { seq, reply: Ok(r) })
    }
    fn join_reply(&mut self, code: ErrorCode, member: &str, leader: &str, generation: i32) {
        self.reply(Reply::Join(JoinGroupResponse {
            error_code: code.code(),
            generation_id: generation,
            protocol_name: Some(KString::from_static("range")),
            leader: KString::from(leader),
            member_id: KString::from(member),
            ..Default::default()
        }));
    }
    /// JoinGroup answered with this member (`m1`) as the leader and the
    /// only member, protocol `range`.
    fn leader_join_reply(&mut self, generation: i32) {
        let sub = consumer_protocol::encode_subscription(&Default::default(), 3).unwrap();
        self.reply(Reply::Join(JoinGroupResponse {
            generation_id: generation,
            protocol_name: Some(KString::from_static("range")),
            leader: KString::from_static("m1"),
            member_id: KString::from_static("m1"),
            members: vec![JoinGroupResponseMember {
                member_id: KString::from_static("m1"),
                metadata: sub,
                ..Default::default()
            }],
            ..Default::default()
        }));
    }
    fn sync_reply(&mut self, code: ErrorCode, ps: &[i32]) {
        self.reply(Reply::Sync(SyncGroupResponse {
            error_code: code.code(),
            assignment: assignment(ps),
            ..Default::default()
        }));
    }
    fn hb_reply(&mut self, code: ErrorCode) {
        self.reply(Reply::Heartbeat(HeartbeatResponse {
            error_code: code.code(),
            ..Default::default()
        }));
    }
    fn join_request_member(&self) -> String {
        match self.sent() {
            Some((_, Request::Join(j))) => j.member_id.as_str().to_owned(),
            other => panic!("expected JoinGroup, got {other:?}"),
        }
    }
    /// Start, find the coordinator, join as a follower and get `ps`.
    fn stable(c: MembershipConfig, ps: &[i32]) -> H {
        let mut h = H::new(c);
        h.feed(Input::Start);
        assert!(h.has(|a| matches!(a, Action::FindCoordinator)));
        h.feed(Input::Coordinator(Ok(1)));
        assert_eq!(h.m.state(), State::Joining);
        h.join_reply(ErrorCode::NONE, "m1", "other", 1);
        assert!(matches!(h.sent(), Some((_, Request::Sync(s))) if s.assignments.is_empty()));
        h.sync_reply(ErrorCode::NONE, ps);
        assert_eq!(h.m.state(), State::Stable);
        h
    }
    fn heartbeat(&mut self) {
        self.now += Duration::from_secs(1);
        self.feed(Input::Timer(TimerKind::Heartbeat));
        assert!(
            matches!(self.sent(), Some((_, Request::Heartbeat(_)))),
            "{:?}",
            self.last
        );
    }
}

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

#[test]
fn illegal_generation_loses_partitions_keeps_member_id_and_rejoins() {
    for (code, keeps_id) in [
        (ErrorCode::ILLEGAL_GENERATION, true),
        (ErrorCode::UNKNOWN_MEMBER_ID, false),
    ] {
        // On a heartbeat...
        let mut h = H::stable(cfg(), &[0, 1]);
        h.heartbeat();
        h.hb_reply(code);
        assert!(
            matches!(h.events()[..], [GroupEvent::Lost { partitions }] if *partitions == tps(&[0, 1])),
            "{code}"
        );
        assert_eq!(h.m.generation(), -1);
        assert_eq!(h.join_request_member() == "m1", keeps_id, "{code}");
        // ... and on a SyncGroup.
        h.join_reply(ErrorCode::NONE, "m1", "x", 2);
        h.sync_reply(ErrorCode::NONE, &[0]);
        h.heartbeat();
        h.hb_reply(ErrorCode::REBALANCE_IN_PROGRESS);
        h.feed(Input::RevokeDone);
        h.join_reply(ErrorCode::NONE, "m1", "x", 3);
        h.sync_reply(code, &[]);
        assert_eq!(h.m.generation(), -1);
        assert!(matches!(h.sent(), Some((_, Request::Join(_)))), "{code}");
    }
}

#[test]
fn unknown_member_on_join_resets_the_id() {
    let mut h = H::new(cfg());
    h.feed(Input::Start);
    h.feed(Input::Coordinator(Ok(1)));
    h.join_reply(ErrorCode::MEMBER_ID_REQUIRED, "m1", "", -1);
    h.join_reply(ErrorCode::UNKNOWN_MEMBER_ID, "", "", -1);
    assert_eq!(h.join_request_member(), "");
}

#[test]
fn coordinator_errors_rediscover_then_resume() {
    for code in [
        ErrorCode::NOT_COORDINATOR,
        ErrorCode::COORDINATOR_NOT_AVAILABLE,
    ] {
        // Steady: heartbeats resume after the lookup, no rebalance.
        let mut h = H::stable(cfg(), &[0]);
        h.heartbeat();
        h.hb_reply(code);
        assert!(h.has(|a| matches!(a, Action::InvalidateCoordinator)));
        assert!(h.has(|a| matches!(a, Action::FindCoordinator)));
        assert_eq!(h.m.state(), State::FindingCoordinator);
        h.feed(Input::Coordinator(Ok(2)));
        assert!(
            matches!(h.sent(), Some((_, Request::Heartbeat(_)))),
            "{code}"
        );
        assert!(h.events().is_empty());
        // During a join: look up, then join again.
        let mut h = H::new(cfg());
        h.feed(Input::Start);
        h.feed(Input::Coordinator(Ok(1)));
        h.join_reply(code, "", "", -1);
        assert!(h.has(|a| matches!(a, Action::FindCoordinator)));
        h.feed(Input::Coordinator(Ok(2)));
        assert!(matches!(h.sent(), Some((_, Request::Join(_)))));
    }
}

#[test]
fn load_in_progress_and_rebalance_in_progress_on_join_back_off() {
    for code in [
        ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
        ErrorCode::REBALANCE_IN_PROGRESS,
    ] {
        let mut h = H::new(cfg());
        h.feed(Input::Start);
        h.feed(Input::Coordinator(Ok(1)));
        h.join_reply(code, "", "", -1);
        assert!(h.sent().is_none());
        assert!(h.has(|a| matches!(a, Action::Timer(TimerKind::Retry, Some(_)))));
        h.feed(Input::Timer(TimerKind::Retry));
        assert!(matches!(h.sent(), Some((_, Request::Join(_)))), "{code}");
    }
}

#[test]
fn fatal_codes_end_the_membership_with_a_typed_error() {
    for code in [
        ErrorCode::GROUP_AUTHORIZATION_FAILED,
        ErrorCode::INCONSISTENT_GROUP_PROTOCOL,
        ErrorCode::GROUP_MAX_SIZE_REACHED,
        ErrorCode::INVALID_SESSION_TIMEOUT,
    ] {
        let mut h = H::new(cfg());
        h.feed(Input::Start);
        h.feed(Input::Coordinator(Ok(1)));
        h.join_reply(code, "", "", -1);
        assert_eq!(h.m.state(), State::Fatal);
        assert!(
            matches!(h.events()[..], [GroupEvent::Fatal(e)] if e.code() == Some(code)),
            "{code}"
        );
        assert!(h.has(|a| matches!(a, Action::Stop)));
    }
    // Static membership: a newer instance with our group.instance.id fences us.
    let mut c = cfg();
    c.group_instance_id = Some("i1".into());
    let mut h = H::stable(c, &[0]);
    h.heartbeat();
    h.hb_reply(ErrorCode::FENCED_INSTANCE_ID);
    assert_eq!(h.m.state(), State::Fatal);
    let ev = h.events();
    assert!(
        matches!(ev[..], [GroupEvent::Lost { .. }, GroupEvent::Fatal(e)] if e.code() == Some(ErrorCode::FENCED_INSTANCE_ID)),
        "{ev:?}"
    );
}

#[test]
fn close_revokes_then_leaves_dynamic_members_only() {
    let mut h = H::stable(cfg(), &[0]);
    h.feed(Input::Close);
    assert!(matches!(h.events()[..], [GroupEvent::Revoked { .. }]));
    h.feed(Input::RevokeDone);
    match h.sent() {
        Some((_, Request::Leave(l))) => assert_eq!(l.members[0].member_id.as_str(), "m1"),
        other => panic!("{other:?}"),
    }
    h.reply(Reply::Leave(LeaveGroupResponse::default()));
    assert!(matches!(
        h.events()[..],
        [GroupEvent::LeftGroup {
            reason: LeaveReason::Closed
        }]
    ));
    assert!(h.has(|a| matches!(a, Action::Stop)));
    assert_eq!(h.m.state(), State::Left);

    let mut c = cfg();
    c.group_instance_id = Some("i1".into());
    let mut h = H::stable(c, &[0]);
    h.feed(Input::Close);
    h.feed(Input::RevokeDone);
    assert!(
        h.sent().is_none(),
        "KIP-345: static members do not send LeaveGroup"
    );
    assert_eq!(h.m.state(), State::Left);
}

#[test]
fn session_timeout_without_a_successful_heartbeat_loses_partitions() {
    let mut h = H::stable(cfg(), &[0, 1]);
    h.heartbeat();
    h.feed(Input::Reply {
        seq: h.seq(),
        reply: Err(krust_net::Error::Closed {
            broker: "b:1".into(),
        }),
    });
    assert!(h.has(|a| matches!(a, Action::InvalidateCoordinator)));
    assert!(h.has(|a| matches!(a, Action::Timer(TimerKind::Retry, Some(_)))));
    h.feed(Input::Timer(TimerKind::Retry));
    assert!(h.has(|a| matches!(a, Action::FindCoordinator)));
    h.now += Duration::from_secs(6);
    h.feed(Input::Timer(TimerKind::Session));
    assert!(
        matches!(h.events()[..], [GroupEvent::Lost { partitions }] if *partitions == tps(&[0, 1]))
    );
    assert_eq!(h.m.member_id(), "");
    h.feed(Input::Coordinator(Ok(1)));
    assert_eq!(h.join_request_member(), "", "rejoins as a new member");
}

#[test]
fn stale_replies_are_ignored() {
    let mut h = H::stable(cfg(), &[0]);
    h.heartbeat();
    let old = h.seq();
    h.hb_reply(ErrorCode::NONE);
    h.feed(Input::Reply {
        seq: old,
        reply: Ok(Reply::Heartbeat(HeartbeatResponse {
            error_code: ErrorCode::ILLEGAL_GENERATION.code(),
            ..Default::default()
        })),
    });
    assert!(h.last.is_empty());
    assert_eq!(h.m.state(), State::Stable);
}

#[test]
fn poll_timeout_leaves_and_the_next_poll_rejoins() {
    let mut c = cfg();
    c.max_poll_interval = Some(Duration::from_secs(10));
    let mut h = H::stable(c, &[0]);
    h.feed(Input::Timer(TimerKind::Poll));
    assert!(matches!(h.events()[..], [GroupEvent::Revoked { .. }]));
    assert!(
        h.sent().is_none(),
        "no LeaveGroup before the revoke is acked"
    );
    h.feed(Input::RevokeDone);
    // A dynamic member tells the coordinator it leaves (the others need not
    // wait for its session to run out), naming itself and why.
    match h.sent() {
        Some((_, Request::Leave(l))) => {
            assert_eq!(l.group_id.as_str(), "g");
            assert_eq!(l.member_id.as_str(), "m1", "v0-2 member id");
            assert_eq!(l.members.len(), 1);
            assert_eq!(l.members[0].member_id.as_str(), "m1", "v3+ member");
            assert_eq!(
                l.members[0].reason.as_ref().map(|r| r.as_str()),
                Some("max.poll.interval.ms passed without a poll")
            );
        }
        other => panic!("expected LeaveGroup, got {other:?}"),
    }
    assert_eq!(h.m.state(), State::Leaving);
    assert!(
        h.events().is_empty(),
        "LeftGroup only once the coordinator answered"
    );
    h.reply(Reply::Leave(LeaveGroupResponse::default()));
    assert!(matches!(
        h.events()[..],
        [GroupEvent::LeftGroup {
            reason: LeaveReason::PollTimeout
        }]
    ));
    assert_eq!(h.m.state(), State::Unjoined);
    h.feed(Input::Poll);
    assert!(h.has(|a| matches!(a, Action::FindCoordinator)));
}

#[test]
fn undecodable_join_or_sync_reply_rediscovers_and_rejoins() {
    let mut h = H::new(cfg());
    h.feed(Input::Start);
    h.feed(Input::Coordinator(Ok(1)));
    h.join_reply(ErrorCode::NONE, "m1", "x", 1);
    let seq = h.seq();
    h.feed(Input::Reply {
        seq,
        reply: Err(krust_net::Error::Decode {
            api: krust_codec::ApiKey::SyncGroup,
            broker: "b:1".into(),
            source: krust_codec::DecodeError::InvalidValue {
                what: "assignment",
                detail: "null".into(),
            },
        }),
    });
    assert_eq!(h.m.state(), State::FindingCoordinator);
    assert!(h.has(|a| matches!(a, Action::InvalidateCoordinator)));
    h.feed(Input::Timer(TimerKind::Retry));
    assert!(h.has(|a| matches!(a, Action::FindCoordinator)));
    h.feed(Input::Coordinator(Ok(2)));
    assert!(matches!(h.sent(), Some((_, Request::Join(_)))));
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
    let mut h = H {
        m: Membership::with_assignors(cfg(), assignors),
        now: Instant::now(),
        last: Vec::new(),
    };
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
    let mut h = H {
        m: Membership::with_assignors(cfg(), assignors),
        now: Instant::now(),
        last: Vec::new(),
    };
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

/// A heartbeat left unanswered for a whole session (a hung coordinator:
/// the socket stays open, nothing answers): the partitions are lost, and
/// the rejoin goes wherever a new lookup says, not to the coordinator that
/// did not answer (Kafka has likely moved the group already).
#[test]
fn session_timeout_with_a_heartbeat_unanswered_looks_the_coordinator_up_again() {
    let mut h = H::stable(cfg(), &[0, 1]);
    h.heartbeat();
    // No reply ever comes; the session runs out.
    h.now += Duration::from_secs(6);
    h.feed(Input::Timer(TimerKind::Session));
    assert!(
        matches!(h.events()[..], [GroupEvent::Lost { partitions }] if *partitions == tps(&[0, 1]))
    );
    assert!(
        h.has(|a| matches!(a, Action::InvalidateCoordinator)),
        "{:?}",
        h.last
    );
    assert!(h.has(|a| matches!(a, Action::FindCoordinator)));
    assert!(h.sent().is_none(), "no JoinGroup to the silent coordinator");
    assert_eq!(h.m.state(), State::FindingCoordinator);
    h.feed(Input::Coordinator(Ok(2)));
    assert_eq!(h.join_request_member(), "", "rejoins as a new member");
}

/// A lookup that the pool gave up on after its own deadline (every broker
/// unreachable, or the one asked hung) is an outage, not the end of the
/// membership: the member looks again after a backoff. Errors retrying
/// cannot fix still end it.
#[test]
fn a_lookup_that_ran_out_of_time_is_retried_not_fatal() {
    let gave_up = krust_net::Error::RetriesExhausted {
        api: krust_codec::ApiKey::FindCoordinator,
        attempts: 1,
        elapsed: Duration::from_secs(10),
        last: Box::new(krust_net::Error::Timeout {
            api: krust_codec::ApiKey::FindCoordinator,
            broker: "b:1".into(),
            elapsed: Duration::from_secs(10),
        }),
    };
    let unreachable = krust_net::Error::Bootstrap {
        attempts: vec![(
            "b:1".into(),
            krust_net::Error::Connect {
                broker: "b:1".into(),
                source: std::sync::Arc::new(std::io::Error::from(
                    std::io::ErrorKind::ConnectionRefused,
                )),
            },
        )],
    };
    for e in [gave_up, unreachable] {
        let what = e.to_string();
        // While joining...
        let mut h = H::new(cfg());
        h.feed(Input::Start);
        h.feed(Input::Coordinator(Err(e.clone())));
        assert_eq!(h.m.state(), State::FindingCoordinator, "{what}");
        assert!(h.events().is_empty(), "{what}: {:?}", h.events());
        assert!(h.has(|a| matches!(a, Action::Timer(TimerKind::Retry, Some(_)))));
        h.feed(Input::Timer(TimerKind::Retry));
        assert!(h.has(|a| matches!(a, Action::FindCoordinator)), "{what}");
        // ... and as a member whose request could not reach the coordinator.
        let mut h = H::stable(cfg(), &[0]);
        h.heartbeat();
        h.feed(Input::Reply {
            seq: h.seq(),
            reply: Err(e),
        });
        assert_ne!(h.m.state(), State::Fatal, "{what}");
        assert!(h.events().is_empty(), "{what}: {:?}", h.events());
        assert!(h.has(|a| matches!(a, Action::Timer(TimerKind::Retry, Some(_)))));
    }
    // Retrying cannot fix a refused authorization.
    let mut h = H::new(cfg());
    h.feed(Input::Start);
    h.feed(Input::Coordinator(Err(krust_net::Error::broker(
        krust_codec::ApiKey::FindCoordinator,
        ErrorCode::GROUP_AUTHORIZATION_FAILED,
        None,
    ))));
    assert_eq!(h.m.state(), State::Fatal);
}

/// A heartbeat answered later than the heartbeat interval (a slow or busy
/// coordinator): the timer that fired while it was in flight sent nothing,
/// so the answer must schedule the next one — at once if its interval has
/// passed — or heartbeats stop for good and the session expires.
#[test]
fn a_heartbeat_answered_after_its_interval_is_followed_by_the_next() {
    let mut h = H::stable(cfg(), &[0]);
    h.heartbeat();
    let seq = h.seq();
    // The interval passes with the heartbeat still in flight: nothing is sent.
    h.now += Duration::from_millis(1_500);
    h.feed(Input::Timer(TimerKind::Heartbeat));
    assert!(h.sent().is_none(), "{:?}", h.last);
    // The answer comes 2.3 s after the request.
    h.now += Duration::from_millis(800);
    let now = h.now;
    h.feed(Input::Reply {
        seq,
        reply: Ok(Reply::Heartbeat(HeartbeatResponse::default())),
    });
    let next = h.last.iter().find_map(|a| match a {
        Action::Timer(TimerKind::Heartbeat, at) => Some(*at),
        _ => None,
    });
    match next {
        Some(Some(at)) => assert!(
            at <= now,
            "next heartbeat only at {:?} after the answer",
            at - now
        ),
        other => panic!(
            "no heartbeat scheduled after a late answer: {other:?} in {:?}",
            h.last
        ),
    }
    h.feed(Input::Timer(TimerKind::Heartbeat));
    assert!(
        matches!(h.sent(), Some((_, Request::Heartbeat(_)))),
        "{:?}",
        h.last
    );
    assert_eq!(h.m.state(), State::Stable);
}

/// An answer within the interval leaves the next heartbeat where it was
/// (one interval after the request), not one interval after the answer.
#[test]
fn a_heartbeat_answered_in_time_keeps_its_schedule() {
    let mut h = H::stable(cfg(), &[0]);
    h.heartbeat();
    let (seq, sent) = (h.seq(), h.now);
    h.now += Duration::from_millis(300);
    h.feed(Input::Reply {
        seq,
        reply: Ok(Reply::Heartbeat(HeartbeatResponse::default())),
    });
    for a in &h.last {
        if let Action::Timer(TimerKind::Heartbeat, at) = a {
            assert_eq!(*at, Some(sent + Duration::from_secs(1)), "{:?}", h.last);
        }
    }
}
