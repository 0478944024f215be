//! The KIP-848 machine driven by hand: what each step sends, tells the
//! application and waits for.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use krust_codec::generated::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use krust_codec::generated::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use krust_codec::{ErrorCode, KString, Uuid};

use super::*;
use crate::io::{Reply, Request};

const T1: Uuid = Uuid([1; 16]);
const T2: Uuid = Uuid([2; 16]);

struct Harness {
    m: ConsumerMembership,
    now: Instant,
}

impl Harness {
    fn new(instance: Option<&str>) -> Harness {
        let mut cfg = MembershipConfig::new("g", vec!["t1".into(), "t2".into()]);
        cfg.group_instance_id = instance.map(str::to_owned);
        cfg.rebalance_timeout = Duration::from_secs(30);
        cfg.max_poll_interval = Some(Duration::from_secs(30));
        cfg.remote_assignor = Some("uniform".into());
        Harness {
            m: ConsumerMembership::new(cfg),
            now: Instant::now(),
        }
    }

    fn feed(&mut self, input: Input) -> Vec<Action> {
        self.m.handle(input, self.now)
    }

    /// Start and find the coordinator: the join heartbeat.
    fn join(&mut self) -> (u64, ConsumerGroupHeartbeatRequest) {
        let a = self.feed(Input::Start);
        assert!(a.iter().any(|a| matches!(a, Action::FindCoordinator)));
        let a = self.feed(Input::Coordinator(Ok(1)));
        one_heartbeat(&a)
    }

    fn answer(
        &mut self,
        seq: u64,
        epoch: i32,
        assignment: Option<Vec<(Uuid, Vec<i32>)>>,
    ) -> Vec<Action> {
        self.feed(Input::Reply {
            seq,
            reply: Ok(Reply::ConsumerHeartbeat(response(epoch, assignment))),
        })
    }

    fn error(&mut self, seq: u64, code: ErrorCode) -> Vec<Action> {
        let mut r = response(0, None);
        r.error_code = code.code();
        r.error_message = Some(KString::from("the broker says so"));
        self.feed(Input::Reply {
            seq,
            reply: Ok(Reply::ConsumerHeartbeat(r)),
        })
    }

    fn names(&mut self) -> Vec<Action> {
        self.feed(Input::TopicNames(BTreeMap::from([
            (T1, "t1".to_owned()),
            (T2, "t2".to_owned()),
        ])))
    }

    /// Joined with t1-0, t1-1, t2-0 at epoch 2, acked.
    fn member(&mut self) -> u64 {
        let (seq, _) = self.join();
        self.answer(seq, 2, Some(vec![(T1, vec![0, 1]), (T2, vec![0])]));
        let a = self.names();
        one_heartbeat(&a).0
    }
}

fn response(
    epoch: i32,
    assignment: Option<Vec<(Uuid, Vec<i32>)>>,
) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse {
        member_epoch: epoch,
        heartbeat_interval_ms: 500,
        assignment: assignment.map(|ts| Assignment {
            topic_partitions: ts
                .into_iter()
                .map(|(topic_id, partitions)| TopicPartitions {
                    topic_id,
                    partitions,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn heartbeats(actions: &[Action]) -> Vec<(u64, ConsumerGroupHeartbeatRequest)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                seq,
                request: Request::ConsumerHeartbeat(r),
            } => Some((*seq, r.clone())),
            _ => None,
        })
        .collect()
}

fn one_heartbeat(actions: &[Action]) -> (u64, ConsumerGroupHeartbeatRequest) {
    let mut h = heartbeats(actions);
    assert_eq!(h.len(), 1, "one heartbeat in {actions:?}");
    h.remove(0)
}

fn events(actions: &[Action]) -> Vec<GroupEvent> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Emit(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn owned(r: &ConsumerGroupHeartbeatRequest) -> Option<Vec<(Uuid, Vec<i32>)>> {
    r.topic_partitions.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.topic_id, t.partitions.clone()))
            .collect()
    })
}

fn tps(list: &[(&str, i32)]) -> BTreeSet<TopicPartition> {
    list.iter()
        .map(|(t, p)| TopicPartition::new(*t, *p))
        .collect()
}

#[test]
fn a_member_id_is_made_as_java_makes_one() {
    for _ in 0..200 {
        let id = new_member_id();
        assert_eq!(id.len(), 22, "{id}");
        assert!(!id.starts_with('-'), "{id}");
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{id}"
        );
    }
    assert_ne!(new_member_id(), new_member_id());
}

#[test]
fn joining_sends_every_field_at_epoch_zero() {
    let mut h = Harness::new(Some("i-1"));
    let (_, r) = h.join();
    assert_eq!(r.member_epoch, 0);
    assert_eq!(r.member_id.as_str(), h.m.member_id());
    assert_eq!(r.instance_id.as_deref(), Some("i-1"));
    assert_eq!(r.rebalance_timeout_ms, 30_000);
    let topics: Vec<&str> = r
        .subscribed_topic_names
        .iter()
        .flatten()
        .map(KString::as_str)
        .collect();
    assert_eq!(topics, ["t1", "t2"]);
    assert_eq!(r.server_assignor.as_deref(), Some("uniform"));
    // No pattern set: "" (none), sent with the names.
    assert_eq!(r.subscribed_topic_regex.as_deref(), Some(""));
    // A join reports an empty assignment, not "unchanged".
    assert_eq!(owned(&r), Some(vec![]));
}

#[test]
fn an_assignment_is_taken_once_its_topics_are_named_and_acked_at_once() {
    let mut h = Harness::new(None);
    let (seq, _) = h.join();
    let a = h.answer(seq, 2, Some(vec![(T1, vec![0, 1]), (T2, vec![0])]));
    assert_eq!(h.m.epoch(), 2);
    assert!(
        a.iter()
            .any(|a| matches!(a, Action::ResolveTopicIds { ids } if *ids == vec![T1, T2])),
        "{a:?}"
    );
    assert!(events(&a).is_empty(), "nothing is owned before it is named");
    let a = h.names();
    match &events(&a)[..] {
        [
            GroupEvent::Assigned {
                partitions,
                generation: 2,
                ..
            },
        ] => {
            assert_eq!(*partitions, tps(&[("t1", 0), ("t1", 1), ("t2", 0)]));
        }
        e => panic!("{e:?}"),
    }
    let (_, ack) = one_heartbeat(&a);
    assert_eq!(ack.member_epoch, 2);
    assert_eq!(owned(&ack), Some(vec![(T1, vec![0, 1]), (T2, vec![0])]));
}

#[test]
fn a_steady_heartbeat_carries_only_what_changed() {
    let mut h = Harness::new(Some("i-1"));
    let seq = h.member();
    h.answer(seq, 3, None);
    h.now += Duration::from_millis(500);
    let a = h.feed(Input::Timer(TimerKind::Heartbeat));
    let (_, r) = one_heartbeat(&a);
    assert_eq!(r.member_epoch, 3);
    assert_eq!(r.instance_id.as_deref(), Some("i-1"), "always sent");
    assert_eq!(r.rebalance_timeout_ms, -1);
    assert_eq!(r.subscribed_topic_names, None);
    assert_eq!(
        r.subscribed_topic_regex, None,
        "with the names or not at all"
    );
    assert_eq!(r.server_assignor, None);
    assert_eq!(r.topic_partitions, None);
}

#[test]
fn an_error_makes_the_next_heartbeat_full() {
    let mut h = Harness::new(None);
    let seq = h.member();
    let a = h.error(seq, ErrorCode::COORDINATOR_LOAD_IN_PROGRESS);
    assert!(heartbeats(&a).is_empty(), "backs off first");
    h.now += Duration::from_secs(1);
    let (_, r) = one_heartbeat(&h.feed(Input::Timer(TimerKind::Retry)));
    assert_eq!(r.member_epoch, 2);
    assert_eq!(r.rebalance_timeout_ms, 30_000);
    assert!(r.subscribed_topic_names.is_some());
    assert_eq!(r.subscribed_topic_regex.as_deref(), Some(""));
    assert_eq!(owned(&r), Some(vec![(T1, vec![0, 1]), (T2, vec![0])]));
}

#[test]
fn revoked_partitions_are_finished_before_the_heartbeat_that_releases_them() {
    let mut h = Harness::new(None);
    let seq = h.member();
    // The target no longer has t1-1.
    let a = h.answer(seq, 3, Some(vec![(T1, vec![0]), (T2, vec![0])]));
    match &events(&a)[..] {
        [
            GroupEvent::Revoked {
                partitions,
                deadline,
            },
        ] => {
            assert_eq!(*partitions, tps(&[("t1", 1)]));
            assert!(*deadline <= h.now + Duration::from_secs(30));
        }
        e => panic!("{e:?}"),
    }
    assert!(
        heartbeats(&a).is_empty(),
        "no ack before the application is done"
    );
    assert_eq!(h.m.state(), State::Revoking);
    assert_eq!(*h.m.revoking(), tps(&[("t1", 1)]));
    // Heartbeats go on meanwhile, still counting t1-1 as held.
    h.now += Duration::from_millis(500);
    let (seq, r) = one_heartbeat(&h.feed(Input::Timer(TimerKind::Heartbeat)));
    assert_eq!(r.topic_partitions, None);
    assert!(heartbeats(&h.answer(seq, 3, None)).is_empty());
    let a = h.feed(Input::RevokeDone);
    let (_, ack) = one_heartbeat(&a);
    assert_eq!(owned(&ack), Some(vec![(T1, vec![0]), (T2, vec![0])]));
    assert_eq!(h.m.state(), State::Stable);
    assert!(h.m.revoking().is_empty());
}

#[test]
fn a_fenced_member_loses_its_partitions_and_rejoins_with_its_id() {
    for code in [ErrorCode::FENCED_MEMBER_EPOCH, ErrorCode::UNKNOWN_MEMBER_ID] {
        let mut h = Harness::new(None);
        let id = h.m.member_id().to_owned();
        let seq = h.member();
        let a = h.error(seq, code);
        match &events(&a)[..] {
            [GroupEvent::Lost { partitions }] => assert_eq!(partitions.len(), 3),
            e => panic!("{code}: {e:?}"),
        }
        let (_, r) = one_heartbeat(&a);
        assert_eq!(
            (r.member_epoch, r.member_id.as_str()),
            (0, id.as_str()),
            "{code}"
        );
        assert_eq!(owned(&r), Some(vec![]), "{code}");
        assert!(h.m.owned().is_empty());
    }
}

#[test]
fn membership_ending_codes_are_fatal_with_the_broker_message() {
    for code in [
        ErrorCode::UNRELEASED_INSTANCE_ID,
        ErrorCode::GROUP_MAX_SIZE_REACHED,
        ErrorCode::UNSUPPORTED_ASSIGNOR,
        ErrorCode::INVALID_REGULAR_EXPRESSION,
        ErrorCode::GROUP_AUTHORIZATION_FAILED,
    ] {
        let mut h = Harness::new(Some("i-1"));
        let (seq, _) = h.join();
        let a = h.error(seq, code);
        match &events(&a)[..] {
            [GroupEvent::Fatal(e)] => {
                assert_eq!(e.code(), Some(code));
                assert!(e.to_string().contains("the broker says so"), "{e}");
            }
            e => panic!("{code}: {e:?}"),
        }
        assert!(a.iter().any(|a| matches!(a, Action::Stop)));
        assert_eq!(h.m.state(), State::Fatal);
    }
}

#[test]
fn closing_a_static_member_revokes_then_leaves_with_epoch_minus_two() {
    let mut h = Harness::new(Some("i-1"));
    h.member();
    let a = h.feed(Input::Close);
    assert!(
        matches!(&events(&a)[..], [GroupEvent::Revoked { .. }]),
        "{a:?}"
    );
    let (seq, leave) = one_heartbeat(&h.feed(Input::RevokeDone));
    assert_eq!(leave.member_epoch, -2);
    assert_eq!(leave.instance_id.as_deref(), Some("i-1"));
    let a = h.answer(seq, -2, None);
    assert!(matches!(
        &events(&a)[..],
        [GroupEvent::LeftGroup {
            reason: LeaveReason::Closed
        }]
    ));
    assert!(a.iter().any(|a| matches!(a, Action::Stop)));
}

#[test]
fn a_poll_timeout_loses_the_partitions_leaves_and_the_next_poll_rejoins() {
    let mut h = Harness::new(None);
    let id = h.m.member_id().to_owned();
    h.member();
    let a = h.feed(Input::Timer(TimerKind::Poll));
    assert!(
        matches!(&events(&a)[..], [GroupEvent::Lost { .. }]),
        "{a:?}"
    );
    let (seq, leave) = one_heartbeat(&a);
    assert_eq!(leave.member_epoch, -1);
    // The leave's answer is not needed: a failure ends it too.
    let a = h.feed(Input::Reply {
        seq,
        reply: Err(krust_net::Error::Closed {
            broker: "127.0.0.1:9092".into(),
        }),
    });
    assert!(matches!(
        &events(&a)[..],
        [GroupEvent::LeftGroup {
            reason: LeaveReason::PollTimeout
        }]
    ));
    assert!(!a.iter().any(|a| matches!(a, Action::Stop)));
    assert_eq!(h.m.state(), State::Unjoined);
    let a = h.feed(Input::Poll);
    assert!(a.iter().any(|a| matches!(a, Action::FindCoordinator)));
    let (_, r) = one_heartbeat(&h.feed(Input::Coordinator(Ok(1))));
    assert_eq!((r.member_epoch, r.member_id.as_str()), (0, id.as_str()));
}

#[test]
fn a_lost_coordinator_is_found_again_and_the_membership_goes_on() {
    let mut h = Harness::new(None);
    let seq = h.member();
    let a = h.error(seq, ErrorCode::NOT_COORDINATOR);
    assert!(a.iter().any(|a| matches!(a, Action::InvalidateCoordinator)));
    assert!(a.iter().any(|a| matches!(a, Action::FindCoordinator)));
    assert!(events(&a).is_empty(), "the partitions stay");
    let (_, r) = one_heartbeat(&h.feed(Input::Coordinator(Ok(2))));
    assert_eq!(r.member_epoch, 2);
    assert_eq!(
        owned(&r),
        Some(vec![(T1, vec![0, 1]), (T2, vec![0])]),
        "full after an error"
    );
    assert_eq!(h.m.owned().len(), 3);
}
