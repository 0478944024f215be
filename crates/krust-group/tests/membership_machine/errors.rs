//! Error codes and broken replies of JoinGroup, SyncGroup, Heartbeat and
//! the coordinator lookup, with the recovery the Java client applies.

use super::*;

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

/// The leader could not read the metadata it assigns with (a broker down,
/// a request timeout): an outage, not the end of the membership. It
/// rejoins after a backoff (Kafka answers a member rejoining the same
/// round with the same generation) and assigns again.
#[test]
fn a_failed_metadata_lookup_for_the_assignment_rejoins_after_a_backoff() {
    let mut h = H::new(cfg());
    h.feed(Input::Start);
    h.feed(Input::Coordinator(Ok(1)));
    h.leader_join_reply(2);
    assert_eq!(h.m.state(), State::Assigning);
    h.feed(Input::Assignment {
        generation: 2,
        result: Err(AssignFailure::Metadata(krust_net::Error::Timeout {
            api: krust_codec::ApiKey::Metadata,
            broker: "b:1".into(),
            elapsed: Duration::from_secs(30),
        })),
    });
    assert!(h.events().is_empty(), "{:?}", h.events());
    assert_ne!(h.m.state(), State::Fatal);
    assert!(h.sent().is_none(), "not at once: {:?}", h.last);
    assert!(h.has(|a| matches!(a, Action::Timer(TimerKind::Retry, Some(_)))));
    h.feed(Input::Timer(TimerKind::Retry));
    assert_eq!(h.join_request_member(), "m1", "the same member rejoins");
    h.leader_join_reply(2);
    let mut a = Assignments::new();
    a.insert("m1".into(), tps(&[0]));
    h.feed(Input::Assignment {
        generation: 2,
        result: Ok(a),
    });
    h.sync_reply(ErrorCode::NONE, &[0]);
    assert_eq!(h.m.state(), State::Stable);
}

/// A metadata failure retrying cannot fix ends the membership, typed.
#[test]
fn a_metadata_refusal_for_the_assignment_is_fatal() {
    let mut h = H::new(cfg());
    h.feed(Input::Start);
    h.feed(Input::Coordinator(Ok(1)));
    h.leader_join_reply(2);
    h.feed(Input::Assignment {
        generation: 2,
        result: Err(AssignFailure::Metadata(krust_net::Error::broker(
            krust_codec::ApiKey::Metadata,
            ErrorCode::CLUSTER_AUTHORIZATION_FAILED,
            None,
        ))),
    });
    assert_eq!(h.m.state(), State::Fatal);
    assert!(
        matches!(h.events()[..], [GroupEvent::Fatal(e)] if e.code() == Some(ErrorCode::CLUSTER_AUTHORIZATION_FAILED)),
        "{:?}",
        h.events()
    );
}
