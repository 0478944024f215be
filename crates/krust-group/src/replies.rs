//! How the membership machine answers each coordinator reply: the recovery
//! the Java client's `AbstractCoordinator` response handlers apply per
//! error code (rejoin, reset and rejoin, rediscover, back off, or fail with
//! a typed error).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use krust_codec::consumer_protocol::{self, AssignedPartitions, Assignment};
use krust_codec::generated::sync_group_request::SyncGroupRequestAssignment;
use krust_codec::generated::{JoinGroupResponse, SyncGroupRequest, SyncGroupResponse};
use krust_codec::{ApiKey, ErrorCode, KString};

use crate::membership::{
    Action, AfterRevoke, AssignFailure, Assignments, LeaveReason, MemberSubscription, Membership,
    RebalanceProtocol, Reply, Request, State, TimerKind,
};
use crate::tp::{TopicPartition, by_topic, from_topics};

/// What an error code calls for, whatever the API.
pub(crate) enum Recovery {
    /// NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE: look the coordinator up again.
    Rediscover,
    /// COORDINATOR_LOAD_IN_PROGRESS and other retriable codes: same request after a backoff.
    Backoff,
    /// Anything else: the membership ends with a typed error.
    Fatal,
}

pub(crate) fn recovery(code: ErrorCode) -> Recovery {
    match code {
        ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_NOT_AVAILABLE => Recovery::Rediscover,
        c if c.is_retriable() => Recovery::Backoff,
        _ => Recovery::Fatal,
    }
}

impl Membership {
    /// The seq of a JoinGroup, SyncGroup or LeaveGroup about to be sent,
    /// awaited from now with its last-resort deadline.
    pub(crate) fn await_reply(&mut self, now: Instant) -> u64 {
        let seq = self.next_seq();
        self.awaiting = Some(seq);
        self.arm_reply_deadline(now);
        seq
    }

    /// The last-resort deadline of what is awaited now ([`TimerKind::Reply`]).
    pub(crate) fn arm_reply_deadline(&mut self, now: Instant) {
        let at = now + self.reply_deadline();
        self.out.push(Action::Timer(TimerKind::Reply, Some(at)));
    }

    /// Past this the coordinator has given up on the member anyway: a
    /// JoinGroup is answered within the rebalance timeout, and a member
    /// that then says nothing for a session is removed.
    pub(crate) fn reply_deadline(&self) -> Duration {
        self.cfg.rebalance_timeout + self.cfg.session_timeout
    }

    /// A JoinGroup, SyncGroup or LeaveGroup, or the leader's assignment,
    /// never came back within [`Membership::reply_deadline`].
    pub(crate) fn reply_overdue(&mut self, now: Instant) {
        let waited = self.reply_deadline();
        match self.state {
            State::Joining | State::Syncing if self.awaiting.is_some() => {
                tracing::warn!(group = %self.cfg.group_id, ?waited, state = ?self.state, "no reply from the coordinator; rediscovering and rejoining");
                self.awaiting = None;
                self.retry_lookup(now);
            }
            State::Leaving => {
                tracing::info!(group = %self.cfg.group_id, ?waited, "LeaveGroup not answered; leaving anyway");
                let reason = self.leave_reason();
                self.finish_leave(reason);
            }
            State::Assigning => {
                self.fatal_protocol(format!("the assignor did not finish within {waited:?}"))
            }
            _ => {}
        }
    }

    pub(crate) fn on_reply(
        &mut self,
        seq: u64,
        reply: Result<Reply, krust_net::Error>,
        now: Instant,
    ) {
        let is_hb = self.heartbeat.is_some_and(|(s, _)| s == seq);
        if !is_hb && self.awaiting != Some(seq) {
            return; // a reply to a request this state no longer waits for
        }
        if is_hb {
            let sent = self.heartbeat.take().map(|(_, t)| t).unwrap_or(now);
            return match reply {
                Ok(Reply::Heartbeat(r)) => self.on_heartbeat(r.error_code, sent, now),
                Ok(_) => {}
                Err(e) => self.on_transport_error(e, now),
            };
        }
        self.awaiting = None;
        self.out.push(Action::Timer(TimerKind::Reply, None));
        match reply {
            Ok(Reply::Join(r)) => self.on_join(r, now),
            Ok(Reply::Sync(r)) => self.on_sync(r, now),
            Ok(Reply::Leave(r)) => {
                let code = ErrorCode::from(r.error_code);
                if !code.is_ok() {
                    tracing::info!(group = %self.cfg.group_id, %code, "LeaveGroup failed; leaving anyway");
                }
                self.finish_leave(self.leave_reason());
            }
            Ok(Reply::Heartbeat(_) | Reply::ConsumerHeartbeat(_)) => {}
            Err(e) if self.state == State::Leaving => {
                tracing::info!(group = %self.cfg.group_id, error = %e, "LeaveGroup not sent; leaving anyway");
                self.finish_leave(self.leave_reason());
            }
            // The librdkafka 2.0.2 mock answers a JoinGroup or SyncGroup it
            // refuses with null strings or bytes that no version allows, so
            // the error code cannot be read. Assume the worst retriable cause
            // (the coordinator moved): look it up again and rejoin.
            Err(krust_net::Error::Decode {
                api: api @ (ApiKey::JoinGroup | ApiKey::SyncGroup),
                source,
                ..
            }) => {
                tracing::warn!(group = %self.cfg.group_id, %api, error = %source, "reply does not decode; rediscovering and rejoining");
                self.retry_lookup(now);
            }
            Err(e) => self.on_transport_error(e, now),
        }
    }

    pub(crate) fn leave_reason(&self) -> LeaveReason {
        match self.after_revoke {
            Some(AfterRevoke::Leave(r)) => r,
            _ => LeaveReason::Closed,
        }
    }

    fn on_transport_error(&mut self, e: krust_net::Error, now: Instant) {
        if !e.is_transient() {
            return self.fatal_net(e);
        }
        tracing::info!(group = %self.cfg.group_id, error = %e, "request to the coordinator failed");
        if self.state == State::Revoking {
            // Only heartbeats are in flight during a revoke.
            self.retry_heartbeat_elsewhere(now);
        } else {
            self.retry_lookup(now);
        }
    }

    /// Forget the coordinator and look it up again after a backoff, not in
    /// a hot loop against a broker that is down.
    pub(crate) fn retry_lookup(&mut self, now: Instant) {
        self.coordinator_lost();
        self.out.retain(|a| !matches!(a, Action::FindCoordinator));
        self.backoff(now);
    }

    /// The coordinator counted a heartbeat sent at `sent`: the session runs
    /// from then, and the next heartbeat is scheduled.
    pub(crate) fn heartbeat_ok(&mut self, sent: Instant, now: Instant) {
        self.attempts = 0;
        // Measured from when the request left: the coordinator heard from
        // us no earlier than that.
        self.heard = Some(self.heard.map_or(sent, |h| h.max(sent)));
        let at = sent + self.cfg.session_timeout;
        self.out.push(Action::Timer(TimerKind::Session, Some(at)));
        // The next one is due an interval after this one left. If the
        // answer came later than that, the heartbeat timer fired while this
        // was in flight and sent nothing: without this, no heartbeat would
        // follow and the session would expire behind one slow answer.
        let next = (sent + self.cfg.heartbeat_interval).max(now);
        self.out
            .push(Action::Timer(TimerKind::Heartbeat, Some(next)));
    }

    fn on_heartbeat(&mut self, code: i16, sent: Instant, now: Instant) {
        let code = ErrorCode::from(code);
        match self.state {
            State::Stable => {}
            State::Revoking => return self.on_revoking_heartbeat(code, sent, now),
            _ => return,
        }
        match code {
            ErrorCode::NONE => self.heartbeat_ok(sent, now),
            ErrorCode::REBALANCE_IN_PROGRESS => {
                tracing::info!(group = %self.cfg.group_id, "rebalance in progress; rejoining");
                // The coordinator counted it: an eager revoke that follows
                // heartbeats on from here.
                self.heard = Some(sent);
                self.start_join(now);
            }
            ErrorCode::ILLEGAL_GENERATION => self.reset_and_rejoin(false, now),
            ErrorCode::UNKNOWN_MEMBER_ID => self.reset_and_rejoin(true, now),
            c => match recovery(c) {
                Recovery::Rediscover => self.coordinator_lost(),
                Recovery::Backoff => self.backoff(now),
                Recovery::Fatal => self.fatal(ApiKey::Heartbeat, c, None),
            },
        }
    }

    /// ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID: the coordinator no longer
    /// counts us in this generation, so what we own is lost; rejoin.
    fn reset_and_rejoin(&mut self, member_id: bool, now: Instant) {
        tracing::info!(group = %self.cfg.group_id, member_id = %self.member_id, generation = self.generation, "membership reset by the coordinator; partitions lost");
        self.reset(member_id);
        self.lose_all();
        self.start_join(now);
    }

    fn on_join(&mut self, r: JoinGroupResponse, now: Instant) {
        if self.state != State::Joining {
            return;
        }
        let code = ErrorCode::from(r.error_code);
        let message = None;
        match code {
            ErrorCode::NONE => {}
            ErrorCode::MEMBER_ID_REQUIRED => {
                // KIP-394: the coordinator names our member id; join again with it.
                self.member_id = r.member_id.as_str().to_owned();
                return self.send_join(now);
            }
            ErrorCode::UNKNOWN_MEMBER_ID => {
                self.reset(true);
                self.lose_all();
                return self.send_join(now);
            }
            ErrorCode::ILLEGAL_GENERATION => {
                self.reset(false);
                self.lose_all();
                return self.send_join(now);
            }
            ErrorCode::REBALANCE_IN_PROGRESS => return self.backoff(now),
            c => {
                return match recovery(c) {
                    Recovery::Rediscover => self.coordinator_lost(),
                    Recovery::Backoff => self.backoff(now),
                    Recovery::Fatal => self.fatal(ApiKey::JoinGroup, c, message),
                };
            }
        }
        self.member_id = r.member_id.as_str().to_owned();
        self.generation = r.generation_id;
        self.protocol_name = r.protocol_name.as_ref().map(|p| p.as_str().to_owned());
        self.note_joined();
        // A new generation: only a leader assigning it holds a snapshot.
        self.assignment_snapshot = None;
        self.out.push(Action::Timer(TimerKind::Metadata, None));
        tracing::info!(group = %self.cfg.group_id, member_id = %self.member_id, generation = self.generation, leader = %r.leader, "joined");
        if r.leader.as_str() == self.member_id && !r.skip_assignment {
            let mut members = Vec::with_capacity(r.members.len());
            for m in &r.members {
                match consumer_protocol::decode_subscription(m.metadata.clone()) {
                    Ok((_, subscription)) => members.push(MemberSubscription {
                        member_id: m.member_id.as_str().to_owned(),
                        group_instance_id: m
                            .group_instance_id
                            .as_ref()
                            .map(|i| i.as_str().to_owned()),
                        subscription,
                    }),
                    Err(e) => {
                        return self.fatal_protocol(format!(
                            "member {}'s subscription does not decode: {e}",
                            m.member_id.as_str()
                        ));
                    }
                }
            }
            self.state = State::Assigning;
            self.arm_reply_deadline(now);
            self.out.push(Action::Assign {
                generation: self.generation,
                protocol: self.protocol_name.clone().unwrap_or_default(),
                members,
            });
        } else {
            self.send_sync(Vec::new(), now);
        }
    }

    pub(crate) fn send_leader_sync(
        &mut self,
        result: Result<Assignments, AssignFailure>,
        now: Instant,
    ) {
        self.out.push(Action::Timer(TimerKind::Reply, None));
        let assignments = match result {
            Ok(a) => a,
            Err(AssignFailure::Metadata(e)) if e.is_transient() => {
                // An outage, not the end of the membership: rejoin after a
                // backoff. Kafka answers a member rejoining the round it is
                // in with the same generation, so the leader assigns again.
                tracing::info!(group = %self.cfg.group_id, error = %e, "metadata for the assignment failed; rejoining");
                self.state = State::Joining;
                return self.backoff(now);
            }
            Err(AssignFailure::Metadata(e)) => return self.fatal_net(e),
            Err(AssignFailure::Assignor(e)) => {
                return self.fatal_protocol(format!("the assignor failed: {e}"));
            }
        };
        let mut out = Vec::with_capacity(assignments.len());
        for (member, parts) in &assignments {
            let a = Assignment {
                assigned_partitions: by_topic(parts)
                    .into_iter()
                    .map(|(t, ps)| AssignedPartitions {
                        topic: KString::from(t),
                        partitions: ps,
                    })
                    .collect(),
                user_data: None,
            };
            match consumer_protocol::encode_assignment(&a, consumer_protocol::ASSIGNMENT_VERSION) {
                Ok(bytes) => out.push(SyncGroupRequestAssignment {
                    member_id: KString::from(member.as_str()),
                    assignment: bytes,
                    ..Default::default()
                }),
                Err(e) => return self.fatal_protocol(format!("cannot encode an assignment: {e}")),
            }
        }
        self.send_sync(out, now);
    }

    fn send_sync(&mut self, assignments: Vec<SyncGroupRequestAssignment>, now: Instant) {
        let req = SyncGroupRequest {
            group_id: KString::from(self.cfg.group_id.as_str()),
            generation_id: self.generation,
            member_id: KString::from(self.member_id.as_str()),
            group_instance_id: self.cfg.group_instance_id.as_deref().map(KString::from),
            protocol_type: Some(KString::from_static(consumer_protocol::PROTOCOL_TYPE)),
            protocol_name: self.protocol_name.as_deref().map(KString::from),
            assignments,
            ..Default::default()
        };
        let seq = self.await_reply(now);
        self.state = State::Syncing;
        self.sync_sent = Some(now);
        self.out.push(Action::Send {
            seq,
            request: Request::Sync(req),
        });
    }

    fn on_sync(&mut self, r: SyncGroupResponse, now: Instant) {
        if self.state != State::Syncing {
            return;
        }
        let code = ErrorCode::from(r.error_code);
        match code {
            ErrorCode::NONE => {}
            // Keep what we own (cooperative) and join the new round.
            ErrorCode::REBALANCE_IN_PROGRESS => return self.start_join(now),
            ErrorCode::ILLEGAL_GENERATION => return self.reset_and_rejoin(false, now),
            ErrorCode::UNKNOWN_MEMBER_ID => return self.reset_and_rejoin(true, now),
            c => {
                return match recovery(c) {
                    Recovery::Rediscover => self.coordinator_lost(),
                    // A retriable SyncGroup error means the round is gone: rejoin.
                    Recovery::Backoff => {
                        self.state = State::Joining;
                        self.backoff(now);
                    }
                    Recovery::Fatal => self.fatal(ApiKey::SyncGroup, c, None),
                };
            }
        }
        // The coordinator heard from us when the SyncGroup left.
        self.heard = self.sync_sent;
        let assignment = match consumer_protocol::decode_assignment(r.assignment) {
            Ok((_, a)) => a,
            Err(e) => return self.fatal_protocol(format!("the assignment does not decode: {e}")),
        };
        let new: BTreeSet<TopicPartition> = from_topics(
            assignment
                .assigned_partitions
                .iter()
                .map(|t| (t.topic.as_str(), t.partitions.as_slice())),
        );
        if self.cfg.protocol() == RebalanceProtocol::Cooperative {
            let revoked: BTreeSet<_> = self.owned.difference(&new).cloned().collect();
            let added: BTreeSet<_> = new.difference(&self.owned).cloned().collect();
            if !revoked.is_empty() {
                self.owned.retain(|tp| new.contains(tp));
                return self.revoke(revoked, AfterRevoke::Assign { added }, now);
            }
            self.assigned(added, now);
        } else {
            self.owned.clear();
            self.assigned(new, now);
        }
    }
}
