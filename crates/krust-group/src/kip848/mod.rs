//! The consumer group protocol of KIP-848 (`group.protocol=consumer`) as a
//! sans-io state machine beside the classic one: the same [`Input`]s,
//! [`Action`]s, [`State`]s and [`GroupEvent`]s, so the driver and the
//! consumer above it do not care which protocol runs.
//!
//! One request does everything: ConsumerGroupHeartbeat joins (epoch 0),
//! keeps the membership, acks an assignment (by reporting the partitions
//! owned) and leaves (epoch -1, or -2 for a static member). The broker
//! computes the assignment, dictates the heartbeat interval and enforces
//! the session; the member reconciles: what it must give up first
//! (`Revoked`, the application's revoke commit, `revoke_done`), then the
//! heartbeat that acks it, then what it gains as the names of its topic
//! ids become known. What is read where: `docs/research/kip848.md`.
//!
//! Decisions (as the Java client): the member id is made by the member,
//! once per machine, and kept across fencing and rejoins (KIP-1082); a
//! request carries every field after any error and when joining, otherwise
//! only what changed; `rebalance_timeout` is `max.poll.interval.ms`.

mod heartbeat;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use krust_codec::Uuid;

pub use crate::events::{GroupError, GroupEvent, LeaveReason};
pub use crate::io::{Action, Input, MembershipConfig, State, TimerKind};
use crate::tp::TopicPartition;

/// The epoch a dynamic member leaves with.
const LEAVE_EPOCH: i32 = -1;
/// The epoch a static member leaves with: its partitions stay reserved for
/// its instance id until the session times out.
const STATIC_LEAVE_EPOCH: i32 = -2;

/// What the last heartbeat carried, to send only what changed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sent {
    rebalance_timeout: Duration,
    topics: Vec<String>,
    regex: Option<String>,
    assignor: Option<String>,
    owned: BTreeSet<TopicPartition>,
}

/// Why the member is leaving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leave {
    /// `close`: revoke, leave heartbeat, stop.
    Close,
    /// `max.poll.interval.ms` passed: partitions lost, leave heartbeat,
    /// wait for the next poll.
    PollTimeout,
}

/// The KIP-848 membership of one member.
#[derive(Debug)]
pub struct ConsumerMembership {
    pub(crate) cfg: MembershipConfig,
    pub(crate) state: State,
    member_id: String,
    epoch: i32,
    owned: BTreeSet<TopicPartition>,
    revoking: BTreeSet<TopicPartition>,
    /// The broker's latest target assignment, by topic id.
    target: Option<BTreeMap<Uuid, BTreeSet<i32>>>,
    /// Topic names of the ids seen, both ways.
    names: BTreeMap<Uuid, String>,
    ids: BTreeMap<String, Uuid>,
    /// Ids asked for in an [`Action::ResolveTopicIds`] not answered yet.
    resolving: bool,
    interval: Duration,
    seq: u64,
    /// The heartbeat in flight.
    in_flight: Option<u64>,
    /// `None`: the next heartbeat carries every field.
    sent: Option<Sent>,
    /// The owned set changed: heartbeat at once to ack it.
    ack_due: bool,
    attempts: u32,
    /// The state to return to once the coordinator is found again.
    resume: State,
    leaving: Option<Leave>,
    pub(crate) out: Vec<Action>,
}

impl ConsumerMembership {
    /// A member that has not joined yet, with a member id of its own.
    pub fn new(cfg: MembershipConfig) -> Self {
        Self::with_member_id(cfg, new_member_id())
    }

    /// As [`ConsumerMembership::new`] with a given member id (tests).
    pub fn with_member_id(cfg: MembershipConfig, member_id: String) -> Self {
        ConsumerMembership {
            cfg,
            state: State::Unjoined,
            member_id,
            epoch: 0,
            owned: BTreeSet::new(),
            revoking: BTreeSet::new(),
            target: None,
            names: BTreeMap::new(),
            ids: BTreeMap::new(),
            resolving: false,
            interval: Duration::ZERO,
            seq: 0,
            in_flight: None,
            sent: None,
            ack_due: false,
            attempts: 0,
            resume: State::Joining,
            leaving: None,
            out: Vec::new(),
        }
    }

    /// Where the member is.
    pub fn state(&self) -> State {
        self.state
    }
    /// The member id (made by the member; kept across rejoins).
    pub fn member_id(&self) -> &str {
        &self.member_id
    }
    /// The member epoch, which commits carry (0: not a member yet).
    pub fn epoch(&self) -> i32 {
        self.epoch
    }
    /// The partitions this member owns.
    pub fn owned(&self) -> &BTreeSet<TopicPartition> {
        &self.owned
    }
    /// The partitions being revoked (still committable until the
    /// application acks the revoke).
    pub fn revoking(&self) -> &BTreeSet<TopicPartition> {
        &self.revoking
    }
    /// The settings.
    pub fn config(&self) -> &MembershipConfig {
        &self.cfg
    }
    /// The heartbeat interval the broker dictates (zero before its first
    /// answer).
    pub fn heartbeat_interval(&self) -> Duration {
        self.interval
    }

    /// Feed one input at time `now`; returns the actions to carry out, in order.
    pub fn handle(&mut self, input: Input, now: Instant) -> Vec<Action> {
        match input {
            Input::Start => {
                if self.state == State::Unjoined {
                    self.arm_poll(now);
                    self.join();
                }
            }
            Input::Poll => {
                self.arm_poll(now);
                if self.state == State::Unjoined && self.leaving.is_none() {
                    self.join();
                }
            }
            Input::Close => self.close(now),
            Input::RevokeDone => {
                if self.state == State::Revoking {
                    self.revoke_finished(now);
                }
            }
            Input::Coordinator(r) => self.on_coordinator(r, now),
            Input::Reply { seq, reply } => self.on_reply(seq, reply, now),
            Input::TopicNames(names) => {
                self.resolving = false;
                for (id, name) in names {
                    self.ids.insert(name.clone(), id);
                    self.names.insert(id, name);
                }
                self.reconcile(now);
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
            // Classic-only inputs.
            Input::Assignment { .. } | Input::Metadata(_) => {}
        }
        std::mem::take(&mut self.out)
    }

    fn arm_poll(&mut self, now: Instant) {
        if let Some(d) = self.cfg.max_poll_interval {
            self.out.push(Action::Timer(TimerKind::Poll, Some(now + d)));
        }
    }

    /// Join at epoch 0 (again after fencing): find the coordinator first.
    fn join(&mut self) {
        self.epoch = 0;
        self.target = None;
        self.sent = None;
        self.find_coordinator(State::Joining);
    }

    fn find_coordinator(&mut self, resume: State) {
        self.resume = resume;
        self.state = State::FindingCoordinator;
        self.in_flight = None;
        self.out.push(Action::Timer(TimerKind::Heartbeat, None));
        self.out.push(Action::FindCoordinator);
    }

    fn on_coordinator(&mut self, r: Result<i32, krust_net::Error>, now: Instant) {
        if self.state != State::FindingCoordinator {
            return;
        }
        match r {
            Ok(_) => {
                self.state = self.resume;
                self.sent = None;
                self.send_heartbeat(now);
            }
            Err(e) if e.is_transient() => {
                tracing::info!(group = %self.cfg.group_id, error = %e, "coordinator lookup failed; retrying");
                self.backoff(now);
            }
            Err(e) => {
                let group = self.cfg.group_id.clone();
                self.fail(GroupError::Net { group, source: e });
            }
        }
    }

    fn backoff(&mut self, now: Instant) {
        self.attempts = self.attempts.saturating_add(1);
        let at = now + self.cfg.retry_backoff.delay(self.attempts);
        self.out.push(Action::Timer(TimerKind::Retry, Some(at)));
    }

    fn on_timer(&mut self, kind: TimerKind, now: Instant) {
        match kind {
            TimerKind::Heartbeat | TimerKind::Retry => match self.state {
                State::FindingCoordinator if kind == TimerKind::Retry => {
                    self.out.push(Action::FindCoordinator);
                }
                State::Joining | State::Stable | State::Revoking if self.in_flight.is_none() => {
                    self.send_heartbeat(now);
                }
                _ => {}
            },
            TimerKind::Revoke => {
                if self.state == State::Revoking {
                    tracing::warn!(group = %self.cfg.group_id, "revoke budget ran out");
                    self.revoke_finished(now);
                }
            }
            TimerKind::Poll => {
                let member = matches!(
                    self.state,
                    State::Joining | State::Stable | State::Revoking | State::FindingCoordinator
                );
                if member && self.leaving.is_none() && self.cfg.max_poll_interval.is_some() {
                    tracing::warn!(group = %self.cfg.group_id, "max.poll.interval.ms passed without a poll; leaving");
                    self.poll_timeout(now);
                }
            }
            // No session timer: the broker enforces the session and says
            // so with UNKNOWN_MEMBER_ID or FENCED_MEMBER_EPOCH.
            TimerKind::Session | TimerKind::Metadata | TimerKind::Reply => {}
        }
    }

    /// The broker's target changed, or names arrived, or a revoke ended:
    /// move the owned set towards the target, revoking first.
    fn reconcile(&mut self, now: Instant) {
        if !matches!(self.state, State::Stable) || self.leaving.is_some() {
            return;
        }
        let Some(target) = &self.target else { return };
        let mut resolved = BTreeSet::new();
        let mut unknown = Vec::new();
        for (id, partitions) in target {
            match self.names.get(id) {
                Some(name) => {
                    resolved.extend(partitions.iter().map(|p| TopicPartition::new(name, *p)));
                }
                None => unknown.push(*id),
            }
        }
        if !unknown.is_empty() && !self.resolving {
            self.resolving = true;
            self.out.push(Action::ResolveTopicIds { ids: unknown });
        }
        let revoked: BTreeSet<_> = self.owned.difference(&resolved).cloned().collect();
        if !revoked.is_empty() {
            return self.revoke(revoked, now);
        }
        let added: BTreeSet<_> = resolved.difference(&self.owned).cloned().collect();
        if !added.is_empty() {
            self.owned.extend(added.iter().cloned());
            self.ack_due = true;
            self.out.push(Action::Emit(GroupEvent::Assigned {
                partitions: added,
                owned: self.owned.clone(),
                generation: self.epoch,
            }));
        }
        let reported = self.sent.as_ref().map(|s| &s.owned);
        if reported != Some(&self.owned) {
            self.ack_due = true;
        }
        if self.ack_due && self.in_flight.is_none() {
            self.send_heartbeat(now);
        }
    }

    /// Hand `partitions` to the application to finish; the heartbeat that
    /// acks their release waits for it (or for its budget). The broker
    /// fences a member that holds revoked partitions past the rebalance
    /// timeout, measured from before this member heard of the revoke, so
    /// the deadline keeps one heartbeat interval in hand.
    fn revoke(&mut self, partitions: BTreeSet<TopicPartition>, now: Instant) {
        let broker_bound = self
            .cfg
            .rebalance_timeout
            .saturating_sub(self.interval)
            .max(self.cfg.rebalance_timeout / 2);
        let deadline = now + self.cfg.revoke_budget.min(broker_bound);
        for tp in &partitions {
            self.owned.remove(tp);
        }
        self.revoking = partitions.clone();
        self.state = State::Revoking;
        self.out.push(Action::Emit(GroupEvent::Revoked {
            partitions,
            deadline,
        }));
        self.out
            .push(Action::Timer(TimerKind::Revoke, Some(deadline)));
    }

    fn revoke_finished(&mut self, now: Instant) {
        self.revoking.clear();
        self.out.push(Action::Timer(TimerKind::Revoke, None));
        match self.leaving {
            Some(Leave::Close) => self.send_leave(now),
            _ => {
                self.state = State::Stable;
                self.ack_due = true;
                self.reconcile(now);
            }
        }
    }

    /// Every owned partition is lost (nothing may be committed for it).
    fn lose_all(&mut self) {
        let mut partitions = std::mem::take(&mut self.owned);
        partitions.append(&mut self.revoking);
        self.out.push(Action::Timer(TimerKind::Revoke, None));
        if !partitions.is_empty() {
            self.out.push(Action::Emit(GroupEvent::Lost { partitions }));
        }
    }

    /// FENCED_MEMBER_EPOCH, UNKNOWN_MEMBER_ID: the partitions may be
    /// another member's already; rejoin at epoch 0 with the same id.
    fn fenced(&mut self, now: Instant) {
        tracing::info!(group = %self.cfg.group_id, member = %self.member_id, "fenced; rejoining");
        self.lose_all();
        self.epoch = 0;
        self.target = None;
        self.sent = None;
        self.state = State::Joining;
        self.send_heartbeat(now);
    }

    fn close(&mut self, now: Instant) {
        match self.state {
            State::Left | State::Fatal => {}
            State::Unjoined => self.stop_left(LeaveReason::Closed),
            _ if self.epoch <= 0 && self.owned.is_empty() && self.revoking.is_empty() => {
                // Not a member yet: nothing to leave.
                self.stop_left(LeaveReason::Closed);
            }
            State::Revoking => self.leaving = Some(Leave::Close),
            _ => {
                self.leaving = Some(Leave::Close);
                let all = std::mem::take(&mut self.owned);
                if all.is_empty() {
                    self.send_leave(now);
                } else {
                    self.revoke(all, now);
                }
            }
        }
    }

    /// Java's poll-timer expiry: the partitions are lost (the application
    /// stopped polling, it cannot commit them), the member leaves, and the
    /// next poll rejoins at epoch 0.
    fn poll_timeout(&mut self, now: Instant) {
        self.lose_all();
        self.leaving = Some(Leave::PollTimeout);
        self.send_leave(now);
    }

    fn stop_left(&mut self, reason: LeaveReason) {
        self.clear_timers();
        self.state = State::Left;
        self.out
            .push(Action::Emit(GroupEvent::LeftGroup { reason }));
        self.out.push(Action::Stop);
    }

    fn clear_timers(&mut self) {
        for t in [
            TimerKind::Heartbeat,
            TimerKind::Retry,
            TimerKind::Revoke,
            TimerKind::Poll,
        ] {
            self.out.push(Action::Timer(t, None));
        }
    }

    /// The leave heartbeat is answered or failed: done.
    fn leave_finished(&mut self) {
        match self.leaving.take() {
            Some(Leave::PollTimeout) => {
                self.epoch = 0;
                self.target = None;
                self.sent = None;
                self.state = State::Unjoined;
                self.out.push(Action::Timer(TimerKind::Heartbeat, None));
                self.out.push(Action::Timer(TimerKind::Retry, None));
                self.out.push(Action::Emit(GroupEvent::LeftGroup {
                    reason: LeaveReason::PollTimeout,
                }));
            }
            _ => self.stop_left(LeaveReason::Closed),
        }
    }

    fn fail(&mut self, e: GroupError) {
        tracing::error!(error = %e, "group membership failed");
        self.in_flight = None;
        self.clear_timers();
        self.lose_all();
        self.state = State::Fatal;
        self.out.push(Action::Emit(GroupEvent::Fatal(e)));
        self.out.push(Action::Stop);
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

/// A member id as Java makes one (`Uuid.randomUuid().toString()`): 16
/// random bytes in URL-safe base64 without padding, 22 characters, never
/// starting with `-`.
pub fn new_member_id() -> String {
    loop {
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw).expect("the operating system provides random bytes");
        let id = base64_url(&raw);
        if !id.starts_with('-') {
            return id;
        }
    }
}

fn base64_url(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(char::from(ABC[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}
