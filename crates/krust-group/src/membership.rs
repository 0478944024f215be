//! The classic group membership as a sans-io state machine: no sockets, no
//! clock, no tokio. The driver (or a test) feeds it [`Input`]s with the
//! current time and carries out the [`Action`]s it returns.
//!
//! Implements the JoinGroup / SyncGroup / Heartbeat / LeaveGroup protocol
//! (KIP-62 background heartbeats with `session.timeout.ms` and
//! `rebalance.timeout.ms`, KIP-345 static membership, KIP-394
//! MEMBER_ID_REQUIRED, KIP-429 cooperative rebalancing) with the recovery
//! the Java client applies to each error code; `replies.rs` holds the
//! per-API reply handling and the deadline of every reply awaited,
//! `revoke.rs` the revoke (heartbeats go on through it), `leave.rs`
//! leaving the group, `span.rs` the rebalance's tracing span.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use krust_codec::consumer_protocol::{self, OwnedPartitions, Subscription};
use krust_codec::generated::join_group_request::JoinGroupRequestProtocol;
use krust_codec::generated::{HeartbeatRequest, JoinGroupRequest};
use krust_codec::{ApiKey, ErrorCode, KString};

use crate::assignor::Assignor;
pub use crate::events::{GroupError, GroupEvent, LeaveReason};
use crate::tp::{TopicPartition, by_topic};

pub use crate::io::{
    Action, AssignFailure, Assignments, Input, MemberSubscription, MembershipConfig,
    RebalanceProtocol, Reply, Request, State, TimerKind,
};

/// What to do once the application acked a revoke.
#[derive(Debug, Clone)]
pub(crate) enum AfterRevoke {
    Join,
    Assign { added: BTreeSet<TopicPartition> },
    Leave(LeaveReason),
}

/// The assignors whose Subscription user data the member sends, by name.
#[derive(Clone, Default)]
pub(crate) struct UserData(Vec<Arc<dyn Assignor>>);

impl fmt::Debug for UserData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|a| a.name()))
            .finish()
    }
}

impl UserData {
    fn of(&self, name: &str, topics: &[String], generation: i32) -> Option<bytes::Bytes> {
        self.0
            .iter()
            .find(|a| a.name() == name)
            .and_then(|a| a.subscription_user_data(topics, generation))
    }
}

/// The membership state machine of one member.
#[derive(Debug)]
pub struct Membership {
    pub(crate) cfg: MembershipConfig,
    pub(crate) user_data: UserData,
    pub(crate) state: State,
    pub(crate) member_id: String,
    pub(crate) generation: i32,
    pub(crate) protocol_name: Option<String>,
    pub(crate) owned: BTreeSet<TopicPartition>,
    /// Partitions taken out of `owned` and handed to the application to
    /// finish: still this generation's until it acks the revoke, so they
    /// may be committed meanwhile.
    pub(crate) revoking: BTreeSet<TopicPartition>,
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
    /// When the last request the coordinator answered for this membership
    /// left (a heartbeat, the SyncGroup): the session runs from there.
    pub(crate) heard: Option<Instant>,
    /// `max.poll.interval.ms` passed during a revoke: leave once it is done.
    pub(crate) leave_after_revoke: Option<LeaveReason>,
    /// The span of the rebalance under way and when it began.
    pub(crate) rebalance: Option<(tracing::Span, Instant)>,
    /// Leader: the partition counts it assigned with.
    pub(crate) assignment_snapshot: Option<BTreeMap<String, i32>>,
    pub(crate) out: Vec<Action>,
}

impl Membership {
    /// A member that has not joined yet.
    pub fn new(cfg: MembershipConfig) -> Self {
        Self::with_assignors(cfg, Vec::new())
    }

    /// A member offering `assignors` (by preference; they replace
    /// `cfg.assignors`): each one's
    /// [`Assignor::subscription_user_data`] goes into the Subscription of
    /// its protocol in JoinGroup.
    pub fn with_assignors(mut cfg: MembershipConfig, assignors: Vec<Arc<dyn Assignor>>) -> Self {
        if !assignors.is_empty() {
            cfg.assignors = assignors
                .iter()
                .map(|a| (a.name().to_owned(), a.protocol()))
                .collect();
        }
        Membership {
            cfg,
            user_data: UserData(assignors),
            state: State::Unjoined,
            member_id: String::new(),
            generation: -1,
            protocol_name: None,
            owned: BTreeSet::new(),
            revoking: BTreeSet::new(),
            seq: 0,
            awaiting: None,
            heartbeat: None,
            resume_heartbeats: false,
            after_revoke: None,
            attempts: 0,
            sync_sent: None,
            heard: None,
            leave_after_revoke: None,
            rebalance: None,
            assignment_snapshot: None,
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

    /// The partitions being revoked: handed to the application, not yet
    /// acked (see [`GroupEvent::Revoked`]).
    pub fn revoking(&self) -> &BTreeSet<TopicPartition> {
        &self.revoking
    }
    /// The settings.
    pub fn config(&self) -> &MembershipConfig {
        &self.cfg
    }

    /// Feed one input at time `now`; returns the actions to carry out, in order.
    pub fn handle(&mut self, input: Input, now: Instant) -> Vec<Action> {
        // What happens during a rebalance is logged inside its span.
        let _span = self.rebalance.as_ref().map(|(s, _)| s.clone().entered());
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
                // A poll before a revoke ended: the application is alive.
                self.leave_after_revoke = None;
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
            Input::Panicked { task, message } => {
                if !matches!(self.state, State::Left | State::Fatal) {
                    let group = self.cfg.group_id.clone();
                    self.fail(GroupError::Panicked {
                        group,
                        task,
                        message,
                    });
                }
            }
            Input::Metadata(counts) => self.on_metadata(counts, now),
            // Only the consumer protocol names topics by id.
            Input::TopicNames(_) => {}
        }
        std::mem::take(&mut self.out)
    }

    /// Java's `ConsumerCoordinator` metadata snapshot check: the leader
    /// keeps the partition counts it assigned with; when a refresh shows
    /// them changed (partitions added, a topic created or deleted), the
    /// assignment is stale and the leader rejoins to assign again.
    fn on_metadata(&mut self, counts: BTreeMap<String, i32>, now: Instant) {
        match self.state {
            State::Assigning => self.assignment_snapshot = Some(counts),
            State::Stable => {
                let Some(assigned) = &self.assignment_snapshot else {
                    return;
                };
                if *assigned != counts {
                    tracing::info!(group = %self.cfg.group_id, ?assigned, now = ?counts, "partition counts of the subscribed topics changed; rejoining");
                    self.assignment_snapshot = None;
                    self.out.push(Action::Timer(TimerKind::Metadata, None));
                    self.start_join(now);
                }
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, kind: TimerKind, now: Instant) {
        match kind {
            TimerKind::Heartbeat => {
                if self.heartbeating() && self.heartbeat.is_none() {
                    self.send_heartbeat(now);
                }
            }
            TimerKind::Session if self.state == State::Revoking => {
                if self.heartbeating() {
                    tracing::warn!(group = %self.cfg.group_id, "session timed out during a revoke");
                    self.out.push(Action::InvalidateCoordinator);
                    // The member id is kept, as below.
                    self.gone_while_revoking(false);
                }
            }
            TimerKind::Session => {
                let member = matches!(self.state, State::Stable | State::FindingCoordinator);
                if member && self.generation >= 0 {
                    // No heartbeat sent in the last session timeout succeeded:
                    // the coordinator may already have given our partitions
                    // away (librdkafka does the same). The member id is
                    // kept, as the Java client keeps it: a coordinator that
                    // took the group over loaded it with this member, and a
                    // rejoin under that id ends its rebalance as soon as
                    // the members have rejoined, where a new id would wait
                    // for the old one's session to run out there too. A
                    // coordinator that has removed the member answers
                    // UNKNOWN_MEMBER_ID, and the rejoin starts afresh.
                    tracing::warn!(group = %self.cfg.group_id, "session timed out");
                    self.reset(false);
                    self.lose_all();
                    if self.state == State::Stable {
                        // A coordinator that answered no heartbeat for a
                        // whole session is hung or gone (Kafka has likely
                        // moved the group already): rejoin wherever the
                        // lookup says, not at it (Java's
                        // `markCoordinatorUnknown` on session expiry). Its
                        // requests would only fail at the request timeout.
                        self.out.push(Action::InvalidateCoordinator);
                        self.find_coordinator(false);
                    } else {
                        self.resume_heartbeats = false;
                    }
                }
            }
            TimerKind::Retry => match self.state {
                State::FindingCoordinator => self.out.push(Action::FindCoordinator),
                State::Joining if self.awaiting.is_none() => self.send_join(now),
                State::Stable | State::Revoking
                    if self.heartbeating() && self.heartbeat.is_none() =>
                {
                    self.send_heartbeat(now)
                }
                _ => {}
            },
            TimerKind::Revoke => {
                if self.state == State::Revoking {
                    tracing::warn!(group = %self.cfg.group_id, "revoke budget ran out");
                    self.revoke_finished(now);
                }
            }
            TimerKind::Reply => self.reply_overdue(now),
            TimerKind::Metadata => {
                if self.state == State::Stable && self.assignment_snapshot.is_some() {
                    self.out.push(Action::RefreshMetadata {
                        topics: self.cfg.topics.clone(),
                    });
                    let at = now + self.cfg.metadata_max_age;
                    self.out.push(Action::Timer(TimerKind::Metadata, Some(at)));
                }
            }
            TimerKind::Poll if self.state == State::Revoking => self.poll_timeout_revoking(),
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
        self.out.push(Action::Timer(TimerKind::Reply, None));
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
            // Backoff attempts are not reset here: a coordinator that is
            // found but unreachable must not make the retries a hot loop.
            Ok(_) => {
                if self.resume_heartbeats && self.generation >= 0 {
                    self.state = State::Stable;
                    self.send_heartbeat(now);
                } else {
                    self.start_join(now);
                }
            }
            // An outage is not the end of the group (Java's
            // ensureCoordinatorReady loops on every retriable cause).
            Err(e) if e.is_transient() => {
                tracing::info!(group = %self.cfg.group_id, error = %e, "coordinator lookup failed; retrying");
                self.backoff(now);
            }
            Err(e) => self.fatal_net(e),
        }
    }

    /// Begin a rebalance: under the eager protocol every owned partition is
    /// revoked first (the application gets its budget), then JoinGroup.
    pub(crate) fn start_join(&mut self, now: Instant) {
        self.begin_rebalance(now);
        self.heartbeat = None;
        self.out.push(Action::Timer(TimerKind::Heartbeat, None));
        if self.cfg.protocol() == RebalanceProtocol::Eager && !self.owned.is_empty() {
            let revoked = std::mem::take(&mut self.owned);
            self.revoke(revoked, AfterRevoke::Join, now);
        } else {
            self.join_now(now);
        }
    }

    /// Send JoinGroup. While the coordinator holds it, the member needs no
    /// heartbeats (a member awaiting its join counts as alive, up to the
    /// rebalance timeout), so neither the heartbeat nor the session timer
    /// runs: a session measured from the last heartbeat would expire a
    /// member whose join is merely held, or whose coordinator moved meanwhile.
    pub(crate) fn join_now(&mut self, now: Instant) {
        self.stop_heartbeats();
        self.state = State::Joining;
        self.send_join(now);
    }

    /// JoinGroup with one Subscription per assignor offered: the topics,
    /// the assignor's user data, and (KIP-429 / KIP-792, Subscription v2+)
    /// the partitions owned with the generation they were owned in, so a
    /// cooperative leader keeps them where they are and settles a partition
    /// two members claim in favour of the newer generation.
    pub(crate) fn send_join(&mut self, now: Instant) {
        let cooperative = self.cfg.protocol() == RebalanceProtocol::Cooperative;
        let owned = if cooperative {
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
        // As Java: the generation of the last assignment (-1 after a reset).
        let generation = self.generation;
        let mut protocols = Vec::with_capacity(self.cfg.assignors.len());
        for (name, _) in &self.cfg.assignors {
            let sub = Subscription {
                topics: self
                    .cfg
                    .topics
                    .iter()
                    .map(|t| KString::from(t.as_str()))
                    .collect(),
                user_data: self.user_data.of(name, &self.cfg.topics, generation),
                owned_partitions: owned.clone(),
                generation_id: generation,
                rack_id: self.cfg.rack_id.as_deref().map(KString::from),
            };
            match consumer_protocol::encode_subscription(
                &sub,
                consumer_protocol::SUBSCRIPTION_VERSION,
            ) {
                Ok(metadata) => protocols.push(JoinGroupRequestProtocol {
                    name: KString::from(name.as_str()),
                    metadata,
                    ..Default::default()
                }),
                Err(e) => return self.fatal_protocol(format!("cannot encode subscription: {e}")),
            }
        }
        let req = JoinGroupRequest {
            group_id: KString::from(self.cfg.group_id.as_str()),
            session_timeout_ms: millis(self.cfg.session_timeout),
            rebalance_timeout_ms: millis(self.cfg.rebalance_timeout),
            member_id: KString::from(self.member_id.as_str()),
            group_instance_id: self.cfg.group_instance_id.as_deref().map(KString::from),
            protocol_type: KString::from_static(consumer_protocol::PROTOCOL_TYPE),
            protocols,
            ..Default::default()
        };
        let seq = self.await_reply(now);
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
        self.end_rebalance(now, "stable");
        if self.assignment_snapshot.is_some() {
            let at = now + self.cfg.metadata_max_age;
            self.out.push(Action::Timer(TimerKind::Metadata, Some(at)));
        }
        self.out.push(Action::Emit(GroupEvent::Assigned {
            partitions: added,
            owned: self.owned.clone(),
            generation: self.generation,
        }));
        // Heartbeats during a cooperative revoke may have renewed it since
        // the SyncGroup.
        let since = self.heard.unwrap_or(now);
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
        // A revoke in progress is cut short: those partitions may not be
        // committed any more either, and the application, still finishing
        // them, is told so.
        let mut partitions = std::mem::take(&mut self.owned);
        partitions.append(&mut self.revoking);
        if !partitions.is_empty() {
            self.out.push(Action::Emit(GroupEvent::Lost { partitions }));
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

    pub(crate) fn fail(&mut self, e: GroupError) {
        tracing::error!(error = %e, "group membership failed");
        self.abandon_rebalance("fatal");
        self.awaiting = None;
        self.heartbeat = None;
        for t in [
            TimerKind::Heartbeat,
            TimerKind::Session,
            TimerKind::Retry,
            TimerKind::Revoke,
            TimerKind::Poll,
            TimerKind::Metadata,
            TimerKind::Reply,
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
