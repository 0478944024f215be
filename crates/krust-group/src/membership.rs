//! The classic group membership as a sans-io state machine: no sockets, no
//! clock, no tokio. The driver (or a test) feeds it [`Input`]s with the
//! current time and carries out the [`Action`]s it returns.
//!
//! Implements the JoinGroup / SyncGroup / Heartbeat / LeaveGroup protocol
//! (KIP-62 background heartbeats with `session.timeout.ms` and
//! `rebalance.timeout.ms`, KIP-345 static membership, KIP-394
//! MEMBER_ID_REQUIRED, KIP-429 cooperative rebalancing) with the recovery
//! the Java client applies to each error code; `replies.rs` holds the
//! per-API reply handling.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use krust_codec::consumer_protocol::{self, OwnedPartitions, Subscription};
use krust_codec::generated::join_group_request::JoinGroupRequestProtocol;
use krust_codec::generated::leave_group_request::MemberIdentity;
use krust_codec::generated::{
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, SyncGroupRequest, SyncGroupResponse,
};
use krust_codec::{ApiKey, ErrorCode, KString};
use krust_net::Backoff;

pub use crate::events::{GroupError, GroupEvent, LeaveReason};
use crate::tp::{TopicPartition, by_topic};

/// Whether a rebalance takes every partition away first (eager) or only
/// the ones that move (cooperative, KIP-429).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebalanceProtocol {
    /// Revoke everything before rejoining.
    Eager,
    /// Keep partitions across the rebalance; revoke only those that move,
    /// then rejoin so they can be handed over.
    Cooperative,
}

/// The settings of one member.
#[derive(Debug, Clone)]
pub struct MembershipConfig {
    /// `group.id`.
    pub group_id: String,
    /// `group.instance.id`: static membership (KIP-345) when set.
    pub group_instance_id: Option<String>,
    /// The topics subscribed to.
    pub topics: Vec<String>,
    /// The assignors offered, by preference, with their protocol; the group
    /// is cooperative only when every one of them is.
    pub assignors: Vec<(String, RebalanceProtocol)>,
    /// `session.timeout.ms`.
    pub session_timeout: Duration,
    /// `rebalance.timeout.ms` (Java: `max.poll.interval.ms`).
    pub rebalance_timeout: Duration,
    /// `heartbeat.interval.ms`.
    pub heartbeat_interval: Duration,
    /// `max.poll.interval.ms`: when set, the member leaves the group if the
    /// application does not poll within it.
    pub max_poll_interval: Option<Duration>,
    /// How long the application may take to finish revoked partitions.
    pub revoke_budget: Duration,
    /// Delays between retries (`retry.backoff.ms` / `retry.backoff.max.ms`).
    pub retry_backoff: Backoff,
    /// `client.rack`, sent in the subscription (KIP-881).
    pub rack_id: Option<String>,
}

impl MembershipConfig {
    /// Defaults of the Java client for `group_id` subscribing to `topics`.
    pub fn new(group_id: impl Into<String>, topics: Vec<String>) -> Self {
        MembershipConfig {
            group_id: group_id.into(),
            group_instance_id: None,
            topics,
            assignors: vec![("range".into(), RebalanceProtocol::Eager)],
            session_timeout: Duration::from_secs(45),
            rebalance_timeout: Duration::from_secs(300),
            heartbeat_interval: Duration::from_secs(3),
            max_poll_interval: None,
            revoke_budget: Duration::from_secs(10),
            retry_backoff: Backoff::default(),
            rack_id: None,
        }
    }

    /// The protocol of this member: cooperative when every assignor is.
    pub fn protocol(&self) -> RebalanceProtocol {
        let all = self
            .assignors
            .iter()
            .all(|(_, p)| *p == RebalanceProtocol::Cooperative);
        if all && !self.assignors.is_empty() {
            RebalanceProtocol::Cooperative
        } else {
            RebalanceProtocol::Eager
        }
    }
}

/// Where the member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not started, or left after a poll timeout.
    Unjoined,
    /// Looking up the coordinator (or waiting to retry the lookup).
    FindingCoordinator,
    /// Waiting for the application to finish revoked partitions.
    Revoking,
    /// JoinGroup in flight or about to be sent.
    Joining,
    /// Leader: waiting for the assignor's result.
    Assigning,
    /// SyncGroup in flight.
    Syncing,
    /// In the group with an assignment; heartbeating.
    Stable,
    /// LeaveGroup in flight.
    Leaving,
    /// Left for good (closed).
    Left,
    /// Stopped by a fatal error.
    Fatal,
}

/// A timer the driver keeps for the machine; setting one replaces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimerKind {
    /// Send the next heartbeat.
    Heartbeat,
    /// No heartbeat succeeded within `session.timeout.ms`.
    Session,
    /// Retry after a backoff (coordinator lookup, JoinGroup).
    Retry,
    /// The application's revoke budget is up.
    Revoke,
    /// `max.poll.interval.ms` passed without a poll.
    Poll,
}

/// A request for the coordinator.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum Request {
    /// JoinGroup.
    Join(JoinGroupRequest),
    /// SyncGroup.
    Sync(SyncGroupRequest),
    /// Heartbeat.
    Heartbeat(HeartbeatRequest),
    /// LeaveGroup (both the v0-2 `member_id` and the v3+ `members` are
    /// filled; the driver keeps the one of the negotiated version).
    Leave(LeaveGroupRequest),
}

/// The coordinator's reply to a [`Request`].
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum Reply {
    /// JoinGroup.
    Join(JoinGroupResponse),
    /// SyncGroup.
    Sync(SyncGroupResponse),
    /// Heartbeat.
    Heartbeat(HeartbeatResponse),
    /// LeaveGroup.
    Leave(LeaveGroupResponse),
}

/// One member's subscription, as the leader sees it.
#[derive(Debug, Clone)]
pub struct MemberSubscription {
    /// The member id.
    pub member_id: String,
    /// Its `group.instance.id`.
    pub group_instance_id: Option<String>,
    /// Its decoded subscription.
    pub subscription: Subscription,
}

/// Assignments computed by the leader, by member id.
pub type Assignments = BTreeMap<String, BTreeSet<TopicPartition>>;

/// What the machine is told.
#[derive(Debug)]
pub enum Input {
    /// The application wants to be in the group.
    Start,
    /// The application closes the member (revoke, LeaveGroup, stop).
    Close,
    /// The application polled (resets `max.poll.interval.ms`).
    Poll,
    /// The application finished the partitions of the last `Revoked`.
    RevokeDone,
    /// The coordinator lookup finished.
    Coordinator(Result<i32, krust_net::Error>),
    /// The reply to the request sent with `seq`, or why none came.
    Reply {
        /// The `seq` of the [`Action::Send`].
        seq: u64,
        /// The reply.
        reply: Result<Reply, krust_net::Error>,
    },
    /// The leader's assignor finished for `generation`.
    Assignment {
        /// The generation of the [`Action::Assign`].
        generation: i32,
        /// The assignments, or why there are none.
        result: Result<Assignments, String>,
    },
    /// A timer fired.
    Timer(TimerKind),
}

/// What the driver must do.
#[derive(Debug)]
pub enum Action {
    /// Look up the group's coordinator, then report with [`Input::Coordinator`].
    FindCoordinator,
    /// Forget the cached coordinator.
    InvalidateCoordinator,
    /// Send `request` to the coordinator; report with [`Input::Reply`].
    Send {
        /// Identifies the reply.
        seq: u64,
        /// The request.
        request: Request,
    },
    /// Run the assignor `protocol` over `members`; report with
    /// [`Input::Assignment`].
    Assign {
        /// The generation being assigned.
        generation: i32,
        /// The assignor the coordinator chose.
        protocol: String,
        /// Every member and its subscription.
        members: Vec<MemberSubscription>,
    },
    /// Hand an event to the application.
    Emit(GroupEvent),
    /// Arm (`Some`) or disarm (`None`) a timer.
    Timer(TimerKind, Option<Instant>),
    /// The machine is done (left or fatal); the driver may stop.
    Stop,
}

/// What to do once the application acked a revoke.
#[derive(Debug, Clone)]
pub(crate) enum AfterRevoke {
    Join,
    Assign { added: BTreeSet<TopicPartition> },
    Leave(LeaveReason),
}

/// The membership state machine of one member.
#[derive(Debug)]
pub struct Membership {
    pub(crate) cfg: MembershipConfig,
    pub(crate) state: State,
    pub(crate) member_id: String,
    pub(crate) generation: i32,
    pub(crate) protocol_name: Option<String>,
    pub(crate) owned: BTreeSet<TopicPartition>,
    pub(crate) seq: u64,
    /// The Join / Sync / Leave in flight.
    pub(crate) awaiting: Option<u64>,
    /// The heartbeat in flight and when it was sent.
    pub(crate) heartbeat: Option<(u64, Instant)>,
    /// Once the coordinator is found again: resume heartbeats (true) or rejoin.
    pub(crate) resume_heartbeats: bool,
    pub(crate) after_revoke: Option<AfterRevoke>,
    pub(crate) attempts: u32,
    pub(crate) sync_sent: Option<Instant>,
    pub(crate) out: Vec<Action>,
}

impl Membership {
    /// A member that has not joined yet.
    pub fn new(cfg: MembershipConfig) -> Self {
        Membership {
            cfg,
            state: State::Unjoined,
            member_id: String::new(),
            generation: -1,
            protocol_name: None,
            owned: BTreeSet::new(),
            seq: 0,
            awaiting: None,
            heartbeat: None,
            resume_heartbeats: false,
            after_revoke: None,
            attempts: 0,
            sync_sent: None,
            out: Vec::new(),
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }
    /// The member id the coordinator gave (empty before the first join).
    pub fn member_id(&self) -> &str {
        &self.member_id
    }
    /// The generation of the current assignment (-1: none).
    pub fn generation(&self) -> i32 {
        self.generation
    }
    /// The partitions this member owns.
    pub fn owned(&self) -> &BTreeSet<TopicPartition> {
        &self.owned
    }
    /// The settings.
    pub fn config(&self) -> &MembershipConfig {
        &self.cfg
    }

    /// Feed one input at time `now`; returns the actions to carry out, in order.
    pub fn handle(&mut self, input: Input, now: Instant) -> Vec<Action> {
        match input {
            Input::Start => {
                if matches!(self.state, State::Unjoined) {
                    self.arm_poll(now);
                    self.find_coordinator(false);
                }
            }
            Input::Close => self.close(now),
            Input::Poll => {
                self.arm_poll(now);
                if self.state == State::Unjoined {
                    self.find_coordinator(false);
                }
            }
            Input::RevokeDone => {
                if self.state == State::Revoking {
                    self.revoke_finished(now);
                }
            }
            Input::Coordinator(r) => self.on_coordinator(r, now),
            Input::Reply { seq, reply } => self.on_reply(seq, reply, now),
            Input::Assignment { generation, result } => {
                if self.state == State::Assigning && generation == self.generation {
                    self.send_leader_sync(result, now);
                }
            }
            Input::Timer(kind) => self.on_timer(kind, now),
        }
        std::mem::take(&mut self.out)
    }

    fn on_timer(&mut self, kind: TimerKind, now: Instant) {
        match kind {
            TimerKind::Heartbeat => {
                if self.state == State::Stable && self.heartbeat.is_none() {
                    self.send_heartbeat(now);
                }
            }
            TimerKind::Session => {
                let member = matches!(self.state, State::Stable | State::FindingCoordinator);
                if member && self.generation >= 0 {
                    // No heartbeat sent in the last session timeout succeeded:
                    // the coordinator may already have given our partitions
                    // away (librdkafka does the same).
                    tracing::warn!(group = %self.cfg.group_id, "session timed out");
                    self.reset(true);
                    self.lose_all();
                    if self.state == State::Stable {
                        self.start_join(now);
                    } else {
                        self.resume_heartbeats = false;
                    }
                }
            }
            TimerKind::Retry => match self.state {
                State::FindingCoordinator => self.out.push(Action::FindCoordinator),
                State::Joining if self.awaiting.is_none() => self.send_join(),
                State::Stable if self.heartbeat.is_none() => self.send_heartbeat(now),
                _ => {}
            },
            TimerKind::Revoke => {
                if self.state == State::Revoking {
                    tracing::warn!(group = %self.cfg.group_id, "revoke budget ran out");
                    self.revoke_finished(now);
                }
            }
            TimerKind::Poll => {
                let member = !matches!(
                    self.state,
                    State::Unjoined | State::Left | State::Fatal | State::Leaving
                );
                if member && self.cfg.max_poll_interval.is_some() {
                    tracing::warn!(group = %self.cfg.group_id, "max.poll.interval.ms passed without a poll; leaving");
                    self.begin_leave(LeaveReason::PollTimeout, now);
                }
            }
        }
    }

    fn arm_poll(&mut self, now: Instant) {
        if let Some(d) = self.cfg.max_poll_interval {
            self.out.push(Action::Timer(TimerKind::Poll, Some(now + d)));
        }
    }

    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub(crate) fn backoff(&mut self, now: Instant) {
        self.attempts = self.attempts.saturating_add(1);
        let at = now + self.cfg.retry_backoff.delay(self.attempts);
        self.out.push(Action::Timer(TimerKind::Retry, Some(at)));
    }

    pub(crate) fn find_coordinator(&mut self, resume_heartbeats: bool) {
        self.state = State::FindingCoordinator;
        self.resume_heartbeats = resume_heartbeats;
        self.awaiting = None;
        self.heartbeat = None;
        self.out.push(Action::Timer(TimerKind::Heartbeat, None));
        self.out.push(Action::FindCoordinator);
    }

    /// The coordinator is gone (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE,
    /// a lost connection): forget it and look it up again.
    pub(crate) fn coordinator_lost(&mut self) {
        tracing::info!(group = %self.cfg.group_id, "coordinator lost; rediscovering");
        let resume = self.state == State::Stable;
        self.out.push(Action::InvalidateCoordinator);
        self.find_coordinator(resume);
    }

    fn on_coordinator(&mut self, r: Result<i32, krust_net::Error>, now: Instant) {
        if self.state != State::FindingCoordinator {
            return;
        }
        match r {
            Ok(_) => {
                self.attempts = 0;
                if self.resume_heartbeats && self.generation >= 0 {
                    self.state = State::Stable;
                    self.send_heartbeat(now);
                } else {
                    self.start_join(now);
                }
            }
            Err(e) if e.is_retriable() => self.backoff(now),
            Err(e) => self.fatal_net(e),
        }
    }

    /// Begin a rebalance: under the eager protocol every owned partition is
    /// revoked first (the application gets its budget), then JoinGroup.
    pub(crate) fn start_join(&mut self, now: Instant) {
        self.heartbeat = None;
        self.out.push(Action::Timer(TimerKind::Heartbeat, None));
        if self.cfg.protocol() == RebalanceProtocol::Eager && !self.owned.is_empty() {
            let revoked = std::mem::take(&mut self.owned);
            self.revoke(revoked, AfterRevoke::Join, now);
        } else {
            self.state = State::Joining;
            self.send_join();
        }
    }

    pub(crate) fn revoke(
        &mut self,
        partitions: BTreeSet<TopicPartition>,
        then: AfterRevoke,
        now: Instant,
    ) {
        let deadline = now + self.cfg.revoke_budget;
        self.state = State::Revoking;
        self.after_revoke = Some(then);
        self.out.push(Action::Emit(GroupEvent::Revoked {
            partitions,
            deadline,
        }));
        self.out
            .push(Action::Timer(TimerKind::Revoke, Some(deadline)));
    }

    fn revoke_finished(&mut self, now: Instant) {
        self.out.push(Action::Timer(TimerKind::Revoke, None));
        match self.after_revoke.take() {
            Some(AfterRevoke::Join) | None => {
                self.state = State::Joining;
                self.send_join();
            }
            Some(AfterRevoke::Assign { added }) => {
                self.assigned(added, now);
                // KIP-429: partitions were revoked, so rejoin at once for
                // the leader to hand them to their new owners.
                self.start_join(now);
            }
            Some(AfterRevoke::Leave(reason)) => self.send_leave(reason),
        }
    }

    pub(crate) fn send_join(&mut self) {
        let owned = if self.cfg.protocol() == RebalanceProtocol::Cooperative {
            by_topic(&self.owned)
                .into_iter()
                .map(|(t, ps)| OwnedPartitions {
                    topic: KString::from(t),
                    partitions: ps,
                })
                .collect()
        } else {
            Vec::new()
        };
        let sub = Subscription {
            topics: self
                .cfg
                .topics
                .iter()
                .map(|t| KString::from(t.as_str()))
                .collect(),
            user_data: None,
            owned_partitions: owned,
            generation_id: self.generation,
            rack_id: self.cfg.rack_id.as_deref().map(KString::from),
        };
        let metadata = match consumer_protocol::encode_subscription(
            &sub,
            consumer_protocol::SUBSCRIPTION_VERSION,
        ) {
            Ok(m) => m,
            Err(e) => return self.fatal_protocol(format!("cannot encode subscription: {e}")),
        };
        let req = JoinGroupRequest {
            group_id: KString::from(self.cfg.group_id.as_str()),
            session_timeout_ms: millis(self.cfg.session_timeout),
            rebalance_timeout_ms: millis(self.cfg.rebalance_timeout),
            member_id: KString::from(self.member_id.as_str()),
            group_instance_id: self.cfg.group_instance_id.as_deref().map(KString::from),
            protocol_type: KString::from_static(consumer_protocol::PROTOCOL_TYPE),
            protocols: self
                .cfg
                .assignors
                .iter()
                .map(|(name, _)| JoinGroupRequestProtocol {
                    name: KString::from(name.as_str()),
                    metadata: metadata.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let seq = self.next_seq();
        self.awaiting = Some(seq);
        self.out.push(Action::Send {
            seq,
            request: Request::Join(req),
        });
    }

    pub(crate) fn send_heartbeat(&mut self, now: Instant) {
        let req = HeartbeatRequest {
            group_id: KString::from(self.cfg.group_id.as_str()),
            generation_id: self.generation,
            member_id: KString::from(self.member_id.as_str()),
            group_instance_id: self.cfg.group_instance_id.as_deref().map(KString::from),
            ..Default::default()
        };
        let seq = self.next_seq();
        self.heartbeat = Some((seq, now));
        self.out.push(Action::Send {
            seq,
            request: Request::Heartbeat(req),
        });
        let next = now + self.cfg.heartbeat_interval;
        self.out
            .push(Action::Timer(TimerKind::Heartbeat, Some(next)));
    }

    /// Newly assigned partitions join `owned`; the application is told.
    pub(crate) fn assigned(&mut self, added: BTreeSet<TopicPartition>, now: Instant) {
        self.owned.extend(added.iter().cloned());
        self.state = State::Stable;
        self.attempts = 0;
        self.out.push(Action::Emit(GroupEvent::Assigned {
            partitions: added,
            owned: self.owned.clone(),
            generation: self.generation,
        }));
        let since = self.sync_sent.unwrap_or(now);
        self.out.push(Action::Timer(
            TimerKind::Session,
            Some(since + self.cfg.session_timeout),
        ));
        self.heartbeat = None;
        self.out.push(Action::Timer(
            TimerKind::Heartbeat,
            Some(now + self.cfg.heartbeat_interval),
        ));
    }

    /// Forget the generation (and the member id when `member_id`), as Java's
    /// `resetStateAndGeneration`.
    pub(crate) fn reset(&mut self, member_id: bool) {
        self.generation = -1;
        self.protocol_name = None;
        if member_id {
            self.member_id.clear();
        }
    }

    /// Every owned partition is lost (nothing may be committed for it).
    pub(crate) fn lose_all(&mut self) {
        self.out.push(Action::Timer(TimerKind::Session, None));
        if !self.owned.is_empty() {
            let partitions = std::mem::take(&mut self.owned);
            self.out.push(Action::Emit(GroupEvent::Lost { partitions }));
        }
    }

    fn close(&mut self, now: Instant) {
        match self.state {
            State::Left | State::Fatal | State::Leaving => {}
            State::Revoking => self.after_revoke = Some(AfterRevoke::Leave(LeaveReason::Closed)),
            State::Unjoined => self.finish_leave(LeaveReason::Closed),
            _ => self.begin_leave(LeaveReason::Closed, now),
        }
    }

    /// Java's `onLeavePrepare` then `maybeLeaveGroup`: revoke what is owned
    /// (lost if the generation is gone), then LeaveGroup.
    pub(crate) fn begin_leave(&mut self, reason: LeaveReason, now: Instant) {
        self.awaiting = None;
        self.heartbeat = None;
        self.out.push(Action::Timer(TimerKind::Heartbeat, None));
        self.out.push(Action::Timer(TimerKind::Session, None));
        self.out.push(Action::Timer(TimerKind::Retry, None));
        if self.owned.is_empty() {
            self.send_leave(reason);
        } else if self.generation < 0 {
            self.lose_all();
            self.send_leave(reason);
        } else {
            let partitions = std::mem::take(&mut self.owned);
            self.revoke(partitions, AfterRevoke::Leave(reason), now);
        }
    }

    fn send_leave(&mut self, reason: LeaveReason) {
        // KIP-345: a static member does not leave on close; its session
        // timeout keeps its partitions for it across a restart.
        let dynamic = self.cfg.group_instance_id.is_none();
        let coordinator = !matches!(self.state, State::FindingCoordinator | State::Unjoined);
        if !dynamic || self.member_id.is_empty() || !coordinator {
            return self.finish_leave(reason);
        }
        let req = LeaveGroupRequest {
            group_id: KString::from(self.cfg.group_id.as_str()),
            member_id: KString::from(self.member_id.as_str()),
            members: vec![MemberIdentity {
                member_id: KString::from(self.member_id.as_str()),
                group_instance_id: None,
                reason: Some(KString::from_static(match reason {
                    LeaveReason::Closed => "the consumer is being closed",
                    LeaveReason::PollTimeout => "max.poll.interval.ms passed without a poll",
                })),
                ..Default::default()
            }],
            ..Default::default()
        };
        let seq = self.next_seq();
        self.awaiting = Some(seq);
        self.state = State::Leaving;
        self.after_revoke = Some(AfterRevoke::Leave(reason));
        self.out.push(Action::Send {
            seq,
            request: Request::Leave(req),
        });
    }

    pub(crate) fn finish_leave(&mut self, reason: LeaveReason) {
        self.awaiting = None;
        self.after_revoke = None;
        self.reset(true);
        self.out.push(Action::Timer(TimerKind::Session, None));
        self.out
            .push(Action::Emit(GroupEvent::LeftGroup { reason }));
        if reason == LeaveReason::Closed {
            self.state = State::Left;
            self.out.push(Action::Stop);
        } else {
            self.state = State::Unjoined;
        }
    }

    pub(crate) fn fatal(&mut self, api: ApiKey, code: ErrorCode, message: Option<String>) {
        let e = GroupError::Broker {
            group: self.cfg.group_id.clone(),
            api,
            code,
            message,
        };
        self.fail(e);
    }

    pub(crate) fn fatal_net(&mut self, source: krust_net::Error) {
        let group = self.cfg.group_id.clone();
        self.fail(GroupError::Net { group, source });
    }

    pub(crate) fn fatal_protocol(&mut self, message: String) {
        let group = self.cfg.group_id.clone();
        self.fail(GroupError::Protocol { group, message });
    }

    fn fail(&mut self, e: GroupError) {
        tracing::error!(error = %e, "group membership failed");
        self.awaiting = None;
        self.heartbeat = None;
        for t in [
            TimerKind::Heartbeat,
            TimerKind::Session,
            TimerKind::Retry,
            TimerKind::Revoke,
            TimerKind::Poll,
        ] {
            self.out.push(Action::Timer(t, None));
        }
        self.lose_all();
        self.state = State::Fatal;
        self.out.push(Action::Emit(GroupEvent::Fatal(e)));
        self.out.push(Action::Stop);
    }
}

pub(crate) fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}
