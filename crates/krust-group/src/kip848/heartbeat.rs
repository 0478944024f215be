//! Building ConsumerGroupHeartbeat requests (every field after an error or
//! when joining, else what changed) and answering their replies with the
//! recovery the Java client applies per error code.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use krust_codec::generated::ConsumerGroupHeartbeatRequest;
use krust_codec::generated::ConsumerGroupHeartbeatResponse;
use krust_codec::generated::consumer_group_heartbeat_request::TopicPartitions;
use krust_codec::{ApiKey, ErrorCode, KString};

use super::{ConsumerMembership, LEAVE_EPOCH, STATIC_LEAVE_EPOCH, Sent};
use crate::events::GroupError;
use crate::io::{Action, Reply, Request, State, TimerKind};
use crate::membership::millis;
use crate::tp::TopicPartition;

/// The shortest wait between heartbeats, before the broker has said.
const MIN_INTERVAL: Duration = Duration::from_millis(100);

impl ConsumerMembership {
    /// The partitions the broker counts as this member's: during a revoke
    /// the revoked ones too, until the heartbeat after it acks their release.
    fn reported(&self) -> BTreeSet<TopicPartition> {
        self.owned.union(&self.revoking).cloned().collect()
    }

    /// Send a heartbeat now; the next is due an interval later.
    pub(super) fn send_heartbeat(&mut self, now: Instant) {
        let now_sent = Sent {
            rebalance_timeout: self.cfg.rebalance_timeout,
            topics: self.cfg.topics.clone(),
            regex: self.cfg.topic_regex.clone(),
            assignor: self.cfg.remote_assignor.clone(),
            owned: self.reported(),
        };
        let full = self.sent.is_none() || self.epoch == 0;
        let last = self.sent.take();
        // What must go out: everything on a full request, else what changed.
        let send = |same: fn(&Sent, &Sent) -> bool| match &last {
            Some(l) if !full => !same(l, &now_sent),
            _ => true,
        };
        let mut req = ConsumerGroupHeartbeatRequest {
            group_id: KString::from(self.cfg.group_id.as_str()),
            member_id: KString::from(self.member_id.as_str()),
            member_epoch: self.epoch,
            // Always: the broker needs it on every request of a static member.
            instance_id: self.cfg.group_instance_id.as_deref().map(KString::from),
            rack_id: None,
            rebalance_timeout_ms: -1,
            subscribed_topic_names: None,
            subscribed_topic_regex: None,
            server_assignor: None,
            topic_partitions: None,
            ..Default::default()
        };
        if full {
            req.rack_id = self.cfg.rack_id.as_deref().map(KString::from);
        }
        if send(|a, b| a.rebalance_timeout == b.rebalance_timeout) {
            req.rebalance_timeout_ms = millis(now_sent.rebalance_timeout);
        }
        // The subscription goes as names and pattern together, "" being no
        // pattern (a change to none removes it): Kafka takes either alone,
        // but librdkafka 2.12's mock coordinator aborts on a request that
        // has one without the other (librdkafka always sends both).
        if send(|a, b| a.topics == b.topics && a.regex == b.regex) {
            req.subscribed_topic_names = Some(
                now_sent
                    .topics
                    .iter()
                    .map(|t| KString::from(t.as_str()))
                    .collect(),
            );
            req.subscribed_topic_regex =
                Some(KString::from(now_sent.regex.as_deref().unwrap_or_default()));
        }
        if send(|a, b| a.assignor == b.assignor) {
            req.server_assignor = now_sent.assignor.as_deref().map(KString::from);
        }
        if send(|a, b| a.owned == b.owned) {
            req.topic_partitions = Some(self.by_topic_id(&now_sent.owned));
        }
        self.sent = Some(now_sent);
        self.ack_due = false;
        let seq = self.next_seq();
        self.in_flight = Some(seq);
        self.out.push(Action::Send {
            seq,
            request: Request::ConsumerHeartbeat(req),
        });
        self.out.push(Action::Timer(TimerKind::Retry, None));
        self.out.push(Action::Timer(
            TimerKind::Heartbeat,
            Some(now + self.interval.max(MIN_INTERVAL)),
        ));
    }

    /// The owned partitions by topic id (a topic whose id this member does
    /// not know cannot be owned: owned partitions come from assignments).
    fn by_topic_id(&self, parts: &BTreeSet<TopicPartition>) -> Vec<TopicPartitions> {
        let mut by: BTreeMap<krust_codec::Uuid, Vec<i32>> = BTreeMap::new();
        for tp in parts {
            if let Some(id) = self.ids.get(&tp.topic) {
                by.entry(*id).or_default().push(tp.partition);
            }
        }
        by.into_iter()
            .map(|(topic_id, partitions)| TopicPartitions {
                topic_id,
                partitions,
                ..Default::default()
            })
            .collect()
    }

    /// The leave heartbeat: epoch -1, or -2 for a static member (its
    /// partitions stay reserved until the session times out). Sent once;
    /// whatever comes back ends the leave.
    pub(super) fn send_leave(&mut self, _now: Instant) {
        if self.epoch <= 0 {
            // Not a member: nothing to leave.
            return self.leave_finished();
        }
        let epoch = if self.cfg.group_instance_id.is_some() {
            STATIC_LEAVE_EPOCH
        } else {
            LEAVE_EPOCH
        };
        let req = ConsumerGroupHeartbeatRequest {
            group_id: KString::from(self.cfg.group_id.as_str()),
            member_id: KString::from(self.member_id.as_str()),
            member_epoch: epoch,
            instance_id: self.cfg.group_instance_id.as_deref().map(KString::from),
            rebalance_timeout_ms: -1,
            ..Default::default()
        };
        self.state = State::Leaving;
        self.out.push(Action::Timer(TimerKind::Heartbeat, None));
        self.out.push(Action::Timer(TimerKind::Retry, None));
        let seq = self.next_seq();
        self.in_flight = Some(seq);
        self.out.push(Action::Send {
            seq,
            request: Request::ConsumerHeartbeat(req),
        });
    }

    pub(super) fn on_reply(
        &mut self,
        seq: u64,
        reply: Result<Reply, krust_net::Error>,
        now: Instant,
    ) {
        if self.in_flight != Some(seq) {
            return; // a reply to a heartbeat this state no longer waits for
        }
        self.in_flight = None;
        if self.state == State::Leaving {
            if let Err(e) = &reply {
                tracing::info!(group = %self.cfg.group_id, error = %e, "leave heartbeat not answered; leaving anyway");
            }
            return self.leave_finished();
        }
        match reply {
            Ok(Reply::ConsumerHeartbeat(r)) => self.on_heartbeat(r, now),
            Ok(_) => {}
            Err(e) if e.is_transient() => {
                tracing::info!(group = %self.cfg.group_id, error = %e, "heartbeat failed");
                // Every field again next time; the coordinator may have moved.
                self.sent = None;
                self.out.push(Action::InvalidateCoordinator);
                let resume = self.state;
                self.find_coordinator(resume);
                self.out.retain(|a| !matches!(a, Action::FindCoordinator));
                self.backoff(now);
            }
            Err(krust_net::Error::UnsupportedVersion {
                api: ApiKey::ConsumerGroupHeartbeat,
                broker,
                theirs,
                ..
            }) => {
                let group = self.cfg.group_id.clone();
                self.fail(GroupError::ConsumerProtocolUnsupported {
                    group,
                    broker,
                    offered: theirs,
                });
            }
            Err(e) => {
                let group = self.cfg.group_id.clone();
                self.fail(GroupError::Net { group, source: e });
            }
        }
    }

    fn on_heartbeat(&mut self, r: ConsumerGroupHeartbeatResponse, now: Instant) {
        let code = ErrorCode::from(r.error_code);
        if !code.is_ok() {
            self.sent = None;
        }
        match code {
            ErrorCode::NONE => {}
            ErrorCode::FENCED_MEMBER_EPOCH | ErrorCode::UNKNOWN_MEMBER_ID => {
                return self.fenced(now);
            }
            ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_NOT_AVAILABLE => {
                self.out.push(Action::InvalidateCoordinator);
                let resume = self.state;
                return self.find_coordinator(resume);
            }
            ErrorCode::COORDINATOR_LOAD_IN_PROGRESS => {
                self.out.push(Action::Timer(TimerKind::Heartbeat, None));
                return self.backoff(now);
            }
            _ => {
                let message = match (code, r.error_message) {
                    (ErrorCode::UNSUPPORTED_VERSION, _) => Some(
                        "the cluster does not support the consumer group protocol (KIP-848); \
                         set group.protocol=classic"
                            .to_owned(),
                    ),
                    (_, m) => m.map(|m| m.as_str().to_owned()),
                };
                let group = self.cfg.group_id.clone();
                return self.fail(GroupError::Broker {
                    group,
                    api: ApiKey::ConsumerGroupHeartbeat,
                    code,
                    message,
                });
            }
        }
        self.attempts = 0;
        self.epoch = r.member_epoch;
        // librdkafka too ignores an interval that is not positive.
        if let Ok(ms) = u64::try_from(r.heartbeat_interval_ms)
            && ms > 0
        {
            self.interval = Duration::from_millis(ms);
        }
        self.out.push(Action::Timer(
            TimerKind::Heartbeat,
            Some(now + self.interval.max(MIN_INTERVAL)),
        ));
        if self.state == State::Joining {
            self.state = State::Stable;
        }
        if let Some(a) = r.assignment {
            let mut target: BTreeMap<krust_codec::Uuid, BTreeSet<i32>> = BTreeMap::new();
            for t in a.topic_partitions {
                target.entry(t.topic_id).or_default().extend(t.partitions);
            }
            target.retain(|_, ps| !ps.is_empty());
            self.target = Some(target);
        }
        self.reconcile(now);
        if self.ack_due && self.in_flight.is_none() {
            self.send_heartbeat(now);
        }
    }
}
