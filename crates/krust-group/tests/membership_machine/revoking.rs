//! Revoking: the member stays in the group while the application finishes
//! revoked partitions. Heartbeats go on (as the Java client's heartbeat
//! thread does during `onPartitionsRevoked`), their answers are read in the
//! light of the revoke, and neither the poll timer nor a lost coordinator
//! cuts the revoke short.

use super::*;

/// Revokes may take up to 30 s; the session is 6 s (`cfg`).
fn eager() -> MembershipConfig {
    let mut c = cfg();
    c.revoke_budget = Duration::from_secs(30);
    c
}

fn coop() -> MembershipConfig {
    let mut c = eager();
    c.assignors = vec![("cooperative-sticky".into(), RebalanceProtocol::Cooperative)];
    c
}

/// Let one heartbeat interval pass; a heartbeat naming this member in
/// `generation` must go out.
fn heartbeat_in(h: &mut H, generation: i32, at: &str) {
    h.advance(Duration::from_secs(1));
    match h.sent() {
        Some((_, Request::Heartbeat(r))) => {
            assert_eq!(r.generation_id, generation, "{at}");
            assert_eq!(r.member_id.as_str(), "m1", "{at}");
        }
        other => panic!(
            "no heartbeat {at} into the revoke: {other:?} in {:?}",
            h.last
        ),
    }
}

/// Stable cooperative member of generation 1 owning 0, 1, 2, given 1, 2, 3
/// by generation 2: revoking 0, keeping 1 and 2.
fn coop_revoking() -> H {
    let mut h = H::stable(coop(), &[0, 1, 2]);
    h.heartbeat();
    h.hb_reply(ErrorCode::REBALANCE_IN_PROGRESS);
    h.join_reply(ErrorCode::NONE, "m1", "x", 2);
    h.sync_reply(ErrorCode::NONE, &[1, 2, 3]);
    assert!(
        matches!(h.events()[..], [GroupEvent::Revoked { partitions, .. }] if *partitions == tps(&[0]))
    );
    assert_eq!(h.m.state(), State::Revoking);
    h
}

/// Eager: the coordinator waits for the member's JoinGroup while the
/// application finishes; it answers the heartbeats of the old generation
/// with REBALANCE_IN_PROGRESS and counts each one, so a revoke longer than
/// the session keeps the member as long as it heartbeats.
#[test]
fn an_eager_revoke_longer_than_the_session_keeps_heartbeating() {
    let mut h = H::stable(eager(), &[0, 1]);
    h.heartbeat();
    h.hb_reply(ErrorCode::REBALANCE_IN_PROGRESS);
    assert_eq!(h.m.state(), State::Revoking);
    for s in 1..=10 {
        let at = format!("{s} s");
        heartbeat_in(&mut h, 1, &at);
        h.hb_reply(ErrorCode::REBALANCE_IN_PROGRESS);
        assert!(h.events().is_empty(), "{at}: {:?}", h.events());
        assert!(h.sent().is_none(), "{at}: {:?}", h.sent());
        assert_eq!(h.m.state(), State::Revoking, "{at}");
        assert_eq!(h.m.revoking(), &tps(&[0, 1]), "{at}");
    }
    h.feed(Input::RevokeDone);
    assert_eq!(h.join_request_member(), "m1", "the same member rejoins");
    // The JoinGroup keeps it in the group now: no heartbeats, no expiry.
    h.advance(Duration::from_secs(8));
    assert!(h.last.is_empty(), "{:?}", h.last);
}

/// Cooperative: the revoke comes after SyncGroup, in the new generation,
/// with the group stable at the coordinator: heartbeats of that generation
/// are answered NONE and keep the member, and it rejoins after the revoke
/// (KIP-429) without losing what it keeps.
#[test]
fn a_cooperative_revoke_longer_than_the_session_keeps_heartbeating() {
    let mut h = coop_revoking();
    for s in 1..=10 {
        let at = format!("{s} s");
        heartbeat_in(&mut h, 2, &at);
        h.hb_reply(ErrorCode::NONE);
        assert!(h.events().is_empty(), "{at}: {:?}", h.events());
        assert_eq!(h.m.state(), State::Revoking, "{at}");
        assert_eq!(h.m.owned(), &tps(&[1, 2]), "{at}");
        assert_eq!(h.m.revoking(), &tps(&[0]), "{at}");
    }
    h.feed(Input::RevokeDone);
    assert!(
        matches!(h.events()[..], [GroupEvent::Assigned { partitions, owned, generation: 2 }] if *partitions == tps(&[3]) && *owned == tps(&[1, 2, 3])),
        "{:?}",
        h.events()
    );
    assert_eq!(h.join_request_member(), "m1");
    h.advance(Duration::from_secs(8));
    assert!(h.last.is_empty(), "{:?}", h.last);
    assert_eq!(h.m.owned(), &tps(&[1, 2, 3]));
}

/// ILLEGAL_GENERATION or UNKNOWN_MEMBER_ID during a revoke: the coordinator
/// no longer counts the member, so what it revokes and what it keeps are
/// lost (nothing more may be committed for them) and what generation 2
/// added is not handed out; the rejoin still waits for the application to
/// finish, and no heartbeat goes out for a generation that is gone.
#[test]
fn a_membership_reset_during_a_revoke_loses_its_partitions() {
    for (code, keeps_id) in [
        (ErrorCode::ILLEGAL_GENERATION, true),
        (ErrorCode::UNKNOWN_MEMBER_ID, false),
    ] {
        let mut h = coop_revoking();
        heartbeat_in(&mut h, 2, "1 s");
        h.hb_reply(code);
        assert!(
            matches!(h.events()[..], [GroupEvent::Lost { partitions }] if *partitions == tps(&[0, 1, 2])),
            "{code}: {:?}",
            h.events()
        );
        assert!(h.m.revoking().is_empty(), "{code}");
        assert!(h.m.owned().is_empty(), "{code}");
        assert_eq!(h.m.generation(), -1, "{code}");
        assert_eq!(h.m.state(), State::Revoking, "{code}: waits for the ack");
        h.advance(Duration::from_secs(8));
        assert!(
            !h.has(|a| matches!(a, Action::Send { .. })),
            "{code}: {:?}",
            h.last
        );
        h.feed(Input::RevokeDone);
        assert!(h.events().is_empty(), "{code}: {:?}", h.events());
        assert_eq!(h.join_request_member() == "m1", keeps_id, "{code}");
    }
}

/// A coordinator that moves (NOT_COORDINATOR) or a connection lost during a
/// revoke: the coordinator is looked up again and heartbeats go on after a
/// backoff; the revoke is not abandoned, nothing is lost.
#[test]
fn a_coordinator_lost_during_a_revoke_is_looked_up_again_without_ending_it() {
    let mut h = H::stable(eager(), &[0, 1]);
    h.heartbeat();
    h.hb_reply(ErrorCode::REBALANCE_IN_PROGRESS);
    heartbeat_in(&mut h, 1, "1 s");
    h.hb_reply(ErrorCode::NOT_COORDINATOR);
    assert!(h.has(|a| matches!(a, Action::InvalidateCoordinator)));
    assert_eq!(h.m.state(), State::Revoking);
    heartbeat_in(&mut h, 1, "2 s");
    let seq = h.seq();
    h.feed(Input::Reply {
        seq,
        reply: Err(krust_net::Error::Closed {
            broker: "b:1".into(),
        }),
    });
    assert!(h.has(|a| matches!(a, Action::InvalidateCoordinator)));
    assert_eq!(h.m.state(), State::Revoking);
    heartbeat_in(&mut h, 1, "3 s");
    h.hb_reply(ErrorCode::REBALANCE_IN_PROGRESS);
    assert_eq!(h.m.revoking(), &tps(&[0, 1]));
    h.feed(Input::RevokeDone);
    assert_eq!(h.join_request_member(), "m1");
}

/// No heartbeat succeeds for a whole session during a revoke: the
/// coordinator may have removed the member, so its partitions are lost
/// and it rejoins once the application finished, under its member id (a
/// coordinator that removed it answers UNKNOWN_MEMBER_ID).
#[test]
fn a_session_that_runs_out_during_a_revoke_loses_the_partitions() {
    let mut h = H::stable(eager(), &[0, 1]);
    h.heartbeat();
    h.hb_reply(ErrorCode::REBALANCE_IN_PROGRESS);
    let mut lost = Vec::new();
    for _ in 0..8 {
        h.advance(Duration::from_secs(1));
        lost.extend(h.events().into_iter().cloned());
        if let Some((seq, Request::Heartbeat(_))) = h.sent() {
            h.feed(Input::Reply {
                seq,
                reply: Err(krust_net::Error::Closed {
                    broker: "b:1".into(),
                }),
            });
        }
    }
    assert!(
        matches!(lost[..], [GroupEvent::Lost { ref partitions }] if *partitions == tps(&[0, 1])),
        "{lost:?}"
    );
    assert!(h.m.revoking().is_empty());
    assert_eq!(h.m.member_id(), "m1");
    assert_eq!(h.m.generation(), -1);
    assert_eq!(h.m.state(), State::Revoking);
    h.feed(Input::RevokeDone);
    assert_eq!(h.join_request_member(), "m1", "rejoins under its member id");
}

/// `max.poll.interval.ms` passing during a revoke does not send LeaveGroup
/// while the application still finishes (and commits) the revoked
/// partitions: the member leaves once the revoke is done, and a poll in
/// the meantime keeps it in the group.
#[test]
fn the_poll_timer_leaves_only_after_the_revoke() {
    let mut c = eager();
    c.max_poll_interval = Some(Duration::from_secs(8));
    let mut h = H::stable(c.clone(), &[0, 1]);
    h.feed(Input::Poll);
    h.heartbeat();
    h.hb_reply(ErrorCode::REBALANCE_IN_PROGRESS);
    for s in 1..=10 {
        let at = format!("{s} s");
        heartbeat_in(&mut h, 1, &at);
        h.hb_reply(ErrorCode::REBALANCE_IN_PROGRESS);
        assert!(h.events().is_empty(), "{at}: {:?}", h.events());
        assert_eq!(h.m.state(), State::Revoking, "{at}");
        assert_eq!(h.m.revoking(), &tps(&[0, 1]), "{at}");
    }
    h.feed(Input::RevokeDone);
    assert!(h.m.revoking().is_empty());
    match h.sent() {
        Some((_, Request::Leave(l))) => assert_eq!(
            l.members[0].reason.as_ref().map(|r| r.as_str()),
            Some("max.poll.interval.ms passed without a poll")
        ),
        other => panic!("expected LeaveGroup after the revoke, got {other:?}"),
    }
    h.reply(Reply::Leave(LeaveGroupResponse::default()));
    assert!(matches!(
        h.events()[..],
        [GroupEvent::LeftGroup {
            reason: LeaveReason::PollTimeout
        }]
    ));
    assert_eq!(h.m.state(), State::Unjoined);
    assert!(h.m.revoking().is_empty() && h.m.owned().is_empty());

    // A poll after the timer fired, before the revoke ends: it stays.
    let mut h = H::stable(c, &[0, 1]);
    h.feed(Input::Poll);
    h.heartbeat();
    h.hb_reply(ErrorCode::REBALANCE_IN_PROGRESS);
    for s in 1..=9 {
        heartbeat_in(&mut h, 1, &format!("{s} s"));
        h.hb_reply(ErrorCode::REBALANCE_IN_PROGRESS);
    }
    h.feed(Input::Poll);
    h.feed(Input::RevokeDone);
    assert_eq!(h.join_request_member(), "m1");
}

/// Cooperative: a poll timeout during the revoke of what moved leaves once
/// that revoke is done, revoking what the member kept first (the
/// application commits it), and hands out nothing the new generation added.
#[test]
fn the_poll_timer_during_a_cooperative_revoke_revokes_the_rest_then_leaves() {
    let mut c = coop();
    c.max_poll_interval = Some(Duration::from_secs(8));
    let mut h = H::stable(c, &[0, 1, 2]);
    h.feed(Input::Poll);
    h.heartbeat();
    h.hb_reply(ErrorCode::REBALANCE_IN_PROGRESS);
    h.join_reply(ErrorCode::NONE, "m1", "x", 2);
    h.sync_reply(ErrorCode::NONE, &[1, 2, 3]);
    for s in 1..=10 {
        let at = format!("{s} s");
        heartbeat_in(&mut h, 2, &at);
        h.hb_reply(ErrorCode::NONE);
        assert!(h.events().is_empty(), "{at}: {:?}", h.events());
    }
    h.feed(Input::RevokeDone);
    assert!(
        matches!(h.events()[..], [GroupEvent::Revoked { partitions, .. }] if *partitions == tps(&[1, 2])),
        "{:?}",
        h.events()
    );
    assert!(h.sent().is_none(), "no LeaveGroup before the second ack");
    h.feed(Input::RevokeDone);
    assert!(matches!(h.sent(), Some((_, Request::Leave(_)))));
    h.reply(Reply::Leave(LeaveGroupResponse::default()));
    assert!(matches!(
        h.events()[..],
        [GroupEvent::LeftGroup {
            reason: LeaveReason::PollTimeout
        }]
    ));
    assert!(h.m.revoking().is_empty() && h.m.owned().is_empty());
}
