//! Timers: heartbeats and their schedule, the session timeout, the poll
//! timeout, and leaving on close.

use super::*;

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
    // The member id is kept (Java's behaviour): a coordinator that took
    // the group over knows it. The generation is not: nothing is
    // committed under it.
    assert_eq!(h.m.member_id(), "m1");
    assert_eq!(h.m.generation(), -1);
    h.feed(Input::Coordinator(Ok(1)));
    assert_eq!(h.join_request_member(), "m1", "rejoins as itself");
    // A coordinator that removed it says so; it then joins afresh.
    h.join_reply(ErrorCode::UNKNOWN_MEMBER_ID, "", "", -1);
    assert_eq!(h.join_request_member(), "", "rejoins as a new member");
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
    assert_eq!(h.join_request_member(), "m1", "rejoins under its member id");
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

/// The session timer runs while the member heartbeats. A JoinGroup is what
/// keeps a rejoining member in the group (the coordinator counts a member
/// awaiting its join as alive, up to the rebalance timeout), so leaving
/// Stable for a rejoin disarms it: a coordinator that moves while the
/// JoinGroup is held must not cost a cooperative member the partitions it
/// keeps through the rebalance.
#[test]
fn leaving_stable_for_a_rejoin_disarms_the_session_timer() {
    let mut c = cfg();
    c.assignors = vec![("cooperative-sticky".into(), RebalanceProtocol::Cooperative)];
    let mut h = H::stable(c, &[0, 1, 2]);
    h.heartbeat();
    h.hb_reply(ErrorCode::NONE);
    h.advance(Duration::from_secs(1));
    h.hb_reply(ErrorCode::REBALANCE_IN_PROGRESS);
    assert_eq!(h.m.state(), State::Joining);
    // The coordinator holds the JoinGroup for 4 s, then has moved.
    h.now += Duration::from_secs(4);
    h.join_reply(ErrorCode::NOT_COORDINATOR, "", "", -1);
    assert_eq!(h.m.state(), State::FindingCoordinator);
    // The lookup takes 2 s: past the session measured from the last
    // heartbeat, which no longer counts.
    h.advance(Duration::from_secs(2));
    assert!(h.events().is_empty(), "{:?}", h.events());
    h.feed(Input::Coordinator(Ok(2)));
    assert_eq!(h.join_request_member(), "m1", "rejoins as the same member");
    let Some((_, Request::Join(j))) = h.sent() else {
        unreachable!()
    };
    let (_, sub) = consumer_protocol::decode_subscription(j.protocols[0].metadata.clone()).unwrap();
    assert_eq!(sub.owned_partitions[0].partitions, vec![0, 1, 2]);
    assert_eq!(sub.generation_id, 1);
    assert_eq!(h.m.owned(), &tps(&[0, 1, 2]));
}

/// Every reply the machine awaits has a last-resort deadline (rebalance
/// timeout + session timeout; by then the coordinator has given up on the
/// member anyway), for the replies that never come (a task that died, a
/// bug): a JoinGroup or SyncGroup is given up on and the member looks the
/// coordinator up again and rejoins, a LeaveGroup leaves anyway, and an
/// assignment that never comes ends the membership with a typed error.
#[test]
fn every_awaited_reply_has_a_deadline() {
    let mut c = cfg();
    c.rebalance_timeout = Duration::from_secs(10);
    let deadline = Duration::from_secs(16);
    let almost = deadline - Duration::from_millis(1);
    // JoinGroup.
    let mut h = H::new(c.clone());
    h.feed(Input::Start);
    h.feed(Input::Coordinator(Ok(1)));
    assert!(matches!(h.sent(), Some((_, Request::Join(_)))));
    h.advance(almost);
    assert_eq!(h.m.state(), State::Joining, "{:?}", h.last);
    h.advance(Duration::from_millis(1));
    assert!(
        h.has(|a| matches!(a, Action::InvalidateCoordinator)),
        "{:?}",
        h.last
    );
    assert_eq!(h.m.state(), State::FindingCoordinator);
    h.advance(Duration::from_secs(1));
    assert!(
        h.has(|a| matches!(a, Action::FindCoordinator)),
        "{:?}",
        h.last
    );
    h.feed(Input::Coordinator(Ok(2)));
    assert!(matches!(h.sent(), Some((_, Request::Join(_)))));
    // SyncGroup.
    h.join_reply(ErrorCode::NONE, "m1", "x", 1);
    assert_eq!(h.m.state(), State::Syncing);
    h.advance(almost);
    assert_eq!(h.m.state(), State::Syncing, "{:?}", h.last);
    h.advance(Duration::from_millis(1));
    assert_eq!(h.m.state(), State::FindingCoordinator, "{:?}", h.last);
    assert!(h.events().is_empty());
    // The leader's assignment.
    let mut h = H::new(c.clone());
    h.feed(Input::Start);
    h.feed(Input::Coordinator(Ok(1)));
    h.leader_join_reply(1);
    assert_eq!(h.m.state(), State::Assigning);
    h.advance(almost);
    assert_eq!(h.m.state(), State::Assigning, "{:?}", h.last);
    h.advance(Duration::from_millis(1));
    assert!(
        matches!(&h.events()[..], [GroupEvent::Fatal(e)] if e.to_string().contains("the assignor did not finish")),
        "{:?}",
        h.events()
    );
    // LeaveGroup.
    let mut h = H::stable(c, &[0]);
    h.feed(Input::Close);
    h.feed(Input::RevokeDone);
    assert!(matches!(h.sent(), Some((_, Request::Leave(_)))));
    h.advance(deadline);
    assert!(
        matches!(
            h.events()[..],
            [GroupEvent::LeftGroup {
                reason: LeaveReason::Closed
            }]
        ),
        "{:?}",
        h.events()
    );
    assert_eq!(h.m.state(), State::Left);
}

/// A task of the driver that panicked (a custom assignor) owes the machine
/// a reply it will never send: the membership ends with a typed error
/// naming it.
#[test]
fn a_panicked_task_ends_the_membership_with_a_typed_error() {
    let mut h = H::new(cfg());
    h.feed(Input::Start);
    h.feed(Input::Coordinator(Ok(1)));
    h.leader_join_reply(1);
    h.feed(Input::Panicked {
        task: "the assignor \"custom\"".into(),
        message: "bug".into(),
    });
    assert_eq!(h.m.state(), State::Fatal);
    assert!(h.has(|a| matches!(a, Action::Stop)));
    match &h.events()[..] {
        [GroupEvent::Fatal(e @ krust_group::GroupError::Panicked { task, message, .. })] => {
            assert_eq!(task, "the assignor \"custom\"");
            assert_eq!(message, "bug");
            assert_eq!(
                e.to_string(),
                "group g: the assignor \"custom\" panicked: bug"
            );
        }
        other => panic!("{other:?}"),
    }
}
