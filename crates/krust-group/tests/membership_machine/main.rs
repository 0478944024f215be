//! The membership state machine driven by constructed coordinator replies,
//! no socket: every error path of JoinGroup, SyncGroup, Heartbeat and
//! LeaveGroup with the recovery the Java client applies.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use krust_codec::consumer_protocol::{self, AssignedPartitions, Assignment};
use krust_codec::generated::join_group_response::JoinGroupResponseMember;
use krust_codec::generated::{
    HeartbeatResponse, JoinGroupResponse, LeaveGroupResponse, SyncGroupResponse,
};
use krust_codec::{ErrorCode, KString};
use krust_group::membership::{
    Action, AssignFailure, Assignments, Input, Reply, Request, State, TimerKind,
};
use krust_group::{
    GroupEvent, LeaveReason, Membership, MembershipConfig, RebalanceProtocol, TopicPartition,
};

mod errors;
mod joins;
mod revoking;

mod timers;

struct H {
    m: Membership,
    now: Instant,
    last: Vec<Action>,
    /// The timers armed, kept as the driver keeps them (setting one
    /// replaces it), for [`H::advance`].
    timers: BTreeMap<TimerKind, Instant>,
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
        H::with(Membership::new(c))
    }
    fn with(m: Membership) -> H {
        H {
            m,
            now: Instant::now(),
            last: Vec::new(),
            timers: BTreeMap::new(),
        }
    }
    fn feed(&mut self, i: Input) -> &[Action] {
        self.last = self.m.handle(i, self.now);
        self.note_timers(0);
        &self.last
    }
    fn note_timers(&mut self, from: usize) {
        for a in &self.last[from..] {
            if let Action::Timer(k, at) = a {
                match at {
                    Some(at) => self.timers.insert(*k, *at),
                    None => self.timers.remove(k),
                };
            }
        }
    }
    /// Let `d` pass as the driver would: every timer that comes due fires,
    /// in order, at its time. `last` holds every action they returned.
    fn advance(&mut self, d: Duration) -> &[Action] {
        let until = self.now + d;
        let mut all = Vec::new();
        loop {
            let due = self
                .timers
                .iter()
                .filter(|(_, at)| **at <= until)
                .min_by_key(|(_, at)| **at)
                .map(|(k, at)| (*k, *at));
            let Some((kind, at)) = due else { break };
            self.timers.remove(&kind);
            self.now = self.now.max(at);
            self.last = self.m.handle(Input::Timer(kind), self.now);
            self.note_timers(0);
            all.append(&mut self.last);
        }
        self.now = until;
        self.last = all;
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
