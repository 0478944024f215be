//! The KIP-227 session: full then incremental requests, forgotten
//! partitions, epochs, resets, brokers without sessions, topic ids.

use bytes::BytesMut;
use krust_codec::generated::fetch_response::{FetchableTopicResponse, PartitionData};
use krust_codec::generated::{FetchRequest, FetchResponse};
use krust_codec::{Encode, ErrorCode, KString, Uuid};

use super::super::{FetchConfig, FetchSession, IsolationLevel, SessionReply};
use super::target;

const A: Uuid = Uuid([1; 16]);
const B: Uuid = Uuid([2; 16]);

fn ids(name: &str) -> Uuid {
    match name {
        "a" => A,
        "b" => B,
        _ => Uuid::ZERO,
    }
}

/// (topic, partition, offset) of every partition in the request.
fn sent(req: &FetchRequest) -> Vec<(String, i32, i64)> {
    req.topics
        .iter()
        .flat_map(|t| {
            let name = if t.topic_id == Uuid::ZERO {
                t.topic.as_str().to_owned()
            } else {
                format!("id:{}", t.topic_id.0[0])
            };
            t.partitions
                .iter()
                .map(move |p| (name.clone(), p.partition, p.fetch_offset))
        })
        .collect()
}

fn forgotten(req: &FetchRequest) -> Vec<(String, i32)> {
    req.forgotten_topics_data
        .iter()
        .flat_map(|t| {
            let name = t.topic.as_str().to_owned();
            t.partitions.iter().map(move |p| (name.clone(), *p))
        })
        .collect()
}

fn reply(session_id: i32) -> FetchResponse {
    FetchResponse {
        session_id,
        ..FetchResponse::default()
    }
}

fn encodes(req: &FetchRequest, version: i16) {
    let mut buf = BytesMut::new();
    req.encode(&mut buf, version)
        .unwrap_or_else(|e| panic!("v{version}: {e}"));
}

#[test]
fn full_then_incremental_sends_only_changes() {
    let cfg = FetchConfig::default();
    let mut s = FetchSession::new(1);
    let targets = [target("a", 0, 10), target("a", 1, 20), target("b", 0, 0)];
    let req = s.build(12, &targets, &cfg, ids);
    encodes(&req, 12);
    assert_eq!((req.session_id, req.session_epoch), (0, 0));
    assert_eq!(
        sent(&req),
        [("a".into(), 0, 10), ("a".into(), 1, 20), ("b".into(), 0, 0)]
    );
    assert!(req.forgotten_topics_data.is_empty());
    assert_eq!(req.replica_id, -1);
    assert_eq!(req.topics[0].partitions[0].current_leader_epoch, 3);
    assert_eq!(req.topics[0].partitions[0].log_start_offset, -1);
    assert_eq!(req.topics[0].partitions[0].partition_max_bytes, 1_048_576);
    assert_eq!((req.max_wait_ms, req.min_bytes), (500, 1));
    assert_eq!(s.handle(&reply(77)), SessionReply::Ok);
    assert_eq!((s.session_id(), s.epoch()), (77, 1));

    // a-0 moved on, b-0 got a new leader epoch: only those two go out.
    let mut moved = [target("a", 0, 15), target("a", 1, 20), target("b", 0, 0)];
    moved[2].leader_epoch = Some(4);
    let req = s.build(12, &moved, &cfg, ids);
    encodes(&req, 12);
    assert_eq!((req.session_id, req.session_epoch), (77, 1));
    assert_eq!(sent(&req), [("a".into(), 0, 15), ("b".into(), 0, 0)]);
    assert!(req.forgotten_topics_data.is_empty());
    assert_eq!(s.handle(&reply(77)), SessionReply::Ok);

    // Nothing changed: an empty incremental request.
    let req = s.build(12, &moved, &cfg, ids);
    assert!(req.topics.is_empty() && req.forgotten_topics_data.is_empty());
    assert_eq!(req.session_epoch, 2);
    s.handle(&reply(77));

    // A larger partition_max_bytes changes every partition.
    let bigger = FetchConfig {
        partition_max_bytes: 2 << 20,
        ..FetchConfig::default()
    };
    let req = s.build(12, &moved, &bigger, ids);
    assert_eq!(sent(&req).len(), 3);
    assert_eq!(req.session_epoch, 3);
}

#[test]
fn partitions_no_longer_targeted_are_forgotten() {
    let cfg = FetchConfig::default();
    let mut s = FetchSession::new(1);
    let all = [target("a", 0, 0), target("a", 1, 0), target("b", 0, 0)];
    s.build(12, &all, &cfg, ids);
    s.handle(&reply(5));
    let req = s.build(12, &all[..1], &cfg, ids);
    encodes(&req, 12);
    assert!(req.topics.is_empty());
    assert_eq!(forgotten(&req), [("a".into(), 1), ("b".into(), 0)]);
    s.handle(&reply(5));
    // Wanted again later: it is new to the session, so it is sent.
    let req = s.build(12, &all[..2], &cfg, ids);
    assert_eq!(sent(&req), [("a".into(), 1, 0)]);
    assert!(req.forgotten_topics_data.is_empty());
}

#[test]
fn epochs_count_up_and_wrap_to_one() {
    let cfg = FetchConfig::default();
    let mut s = FetchSession::new(1);
    let t = [target("a", 0, 0)];
    s.build(12, &t, &cfg, ids);
    s.handle(&reply(9));
    for expected in 1..5 {
        let req = s.build(12, &t, &cfg, ids);
        assert_eq!((req.session_id, req.session_epoch), (9, expected));
        s.handle(&reply(9));
    }
    s.set_epoch(i32::MAX);
    assert_eq!(s.build(12, &t, &cfg, ids).session_epoch, i32::MAX);
    s.handle(&reply(9));
    assert_eq!(s.build(12, &t, &cfg, ids).session_epoch, 1);
}

#[test]
fn every_top_level_error_resets_to_a_full_fetch() {
    let cfg = FetchConfig::default();
    let t = [target("a", 0, 4), target("a", 1, 8)];
    for (code, expected) in [
        (
            ErrorCode::FETCH_SESSION_ID_NOT_FOUND,
            SessionReply::SessionError,
        ),
        (
            ErrorCode::INVALID_FETCH_SESSION_EPOCH,
            SessionReply::SessionError,
        ),
        (
            ErrorCode::FETCH_SESSION_TOPIC_ID_ERROR,
            SessionReply::SessionError,
        ),
        (ErrorCode::UNKNOWN_SERVER_ERROR, SessionReply::Error),
        (ErrorCode::NOT_LEADER_OR_FOLLOWER, SessionReply::Error),
    ] {
        let mut s = FetchSession::new(1);
        s.build(12, &t, &cfg, ids);
        s.handle(&reply(3));
        s.build(12, &t, &cfg, ids);
        let resp = FetchResponse {
            error_code: code.code(),
            session_id: 3,
            ..FetchResponse::default()
        };
        assert_eq!(s.handle(&resp), expected, "{code}");
        assert!(s.next_is_full(), "{code}");
        let req = s.build(12, &t, &cfg, ids);
        assert_eq!((req.session_id, req.session_epoch), (0, 0), "{code}");
        assert_eq!(sent(&req).len(), 2, "{code}: a full request");
    }
}

#[test]
fn failed_or_unanswered_requests_reset_the_session() {
    let cfg = FetchConfig::default();
    let t = [target("a", 0, 0)];
    let mut s = FetchSession::new(1);
    s.build(12, &t, &cfg, ids);
    s.handle(&reply(3));
    s.build(12, &t, &cfg, ids);
    s.reset(); // e.g. the connection dropped
    let req = s.build(12, &t, &cfg, ids);
    assert_eq!(
        (req.session_id, req.session_epoch, sent(&req).len()),
        (0, 0, 1)
    );
    s.handle(&reply(4));
    s.build(12, &t, &cfg, ids);
    // Built again without an answer to the previous one.
    let req = s.build(12, &t, &cfg, ids);
    assert_eq!(
        (req.session_id, req.session_epoch, sent(&req).len()),
        (0, 0, 1)
    );
}

#[test]
fn broker_closing_or_replacing_the_session_resets_it() {
    let cfg = FetchConfig::default();
    let t = [target("a", 0, 0)];
    for answer in [0, 12] {
        let mut s = FetchSession::new(1);
        s.build(12, &t, &cfg, ids);
        s.handle(&reply(11));
        s.build(12, &t, &cfg, ids);
        assert_eq!(s.handle(&reply(answer)), SessionReply::Ok);
        assert!(s.next_is_full(), "answer {answer}");
    }
}

#[test]
fn a_broker_without_sessions_gets_full_requests() {
    let cfg = FetchConfig::default();
    let mut s = FetchSession::new(1);
    let t = [target("a", 0, 0), target("a", 1, 0)];
    for _ in 0..3 {
        let req = s.build(12, &t, &cfg, ids);
        assert_eq!((req.session_id, req.session_epoch), (0, 0));
        assert_eq!(sent(&req).len(), 2);
        assert_eq!(s.handle(&reply(0)), SessionReply::Ok);
    }
    // Before v7 there are no sessions at all.
    let mut s = FetchSession::new(1);
    for _ in 0..2 {
        let req = s.build(4, &t, &cfg, ids);
        encodes(&req, 4);
        assert_eq!(sent(&req).len(), 2);
        s.handle(&reply(0));
    }
}

#[test]
fn topic_ids_at_v13_and_back_to_names() {
    let cfg = FetchConfig {
        isolation: IsolationLevel::ReadCommitted,
        rack_id: Some("rack-1".into()),
        ..FetchConfig::default()
    };
    let mut s = FetchSession::new(1);
    let t = [target("a", 0, 0), target("b", 0, 0)];
    let req = s.build(17, &t, &cfg, ids);
    encodes(&req, 17);
    assert_eq!(sent(&req), [("id:1".into(), 0, 0), ("id:2".into(), 0, 0)]);
    assert_eq!((req.isolation_level, req.rack_id.as_str()), (1, "rack-1"));
    s.handle(&reply(8));
    assert_eq!(s.topic_name(&KString::default(), B), Some("b"));
    assert_eq!(s.topic_name(&KString::default(), Uuid([9; 16])), None);
    assert_eq!(s.topic_name(&KString::from("a"), Uuid::ZERO), Some("a"));

    let req = s.build(17, &t[..1], &cfg, ids);
    encodes(&req, 17);
    assert_eq!(req.forgotten_topics_data[0].topic_id, B);
    s.handle(&reply(8));

    // Falling back to names (a topic without an id) starts a new session.
    let req = s.build(12, &t, &cfg, ids);
    encodes(&req, 12);
    assert_eq!((req.session_id, req.session_epoch), (0, 0));
    assert_eq!(sent(&req), [("a".into(), 0, 0), ("b".into(), 0, 0)]);

    // A topic recreated under a new id starts a new session too.
    let mut s = FetchSession::new(1);
    s.build(13, &t, &cfg, ids);
    s.handle(&reply(8));
    let req = s.build(13, &t, &cfg, |n| if n == "a" { Uuid([7; 16]) } else { B });
    assert_eq!((req.session_id, req.session_epoch), (0, 0));
    assert_eq!(req.topics[0].topic_id, Uuid([7; 16]));
}

#[test]
fn a_partition_missing_from_an_incremental_answer_is_just_quiet() {
    // The session itself does not care which partitions come back: the
    // driver only reports the ones present.
    let cfg = FetchConfig::default();
    let mut s = FetchSession::new(1);
    let t = [target("a", 0, 0), target("a", 1, 0)];
    s.build(12, &t, &cfg, ids);
    let resp = FetchResponse {
        session_id: 2,
        responses: vec![FetchableTopicResponse {
            topic: KString::from("a"),
            partitions: vec![PartitionData {
                partition_index: 1,
                ..PartitionData::default()
            }],
            ..FetchableTopicResponse::default()
        }],
        ..FetchResponse::default()
    };
    assert_eq!(s.handle(&resp), SessionReply::Ok);
    assert!(!s.next_is_full());
}
