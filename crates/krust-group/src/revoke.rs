//! Revoking: the application finishes partitions taken from this member
//! (commits them) before the rebalance goes on. The member stays in the
//! group meanwhile: it heartbeats throughout, as the Java client's
//! heartbeat thread does during `onPartitionsRevoked` (KIP-62: the session
//! is kept by heartbeats alone, and a revoke may take longer than it), so
//! a slow revoke does not get the member expired while it still works.
//!
//! What the coordinator answers those heartbeats is read in the light of
//! the revoke: REBALANCE_IN_PROGRESS (an eager rebalance waiting for this
//! member's JoinGroup) counts as heard, since the rejoin that follows the
//! revoke is the answer; a reset (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID) or
//! a session that runs out loses the partitions at once, but the rejoin
//! still waits for the application; a lost coordinator is looked up again
//! by the next heartbeat. `max.poll.interval.ms` passing mid-revoke leaves
//! the group only once the revoke is done.

use std::collections::BTreeSet;
use std::time::Instant;

use krust_codec::{ApiKey, ErrorCode};

use crate::membership::{
    Action, AfterRevoke, GroupEvent, LeaveReason, Membership, State, TimerKind,
};
use crate::replies::{Recovery, recovery};
use crate::tp::TopicPartition;

impl Membership {
    /// Whether the member heartbeats now: while stable, and while revoking
    /// as long as the coordinator still counts it (a generation, an id).
    pub(crate) fn heartbeating(&self) -> bool {
        match self.state {
            State::Stable => true,
            State::Revoking => self.generation >= 0 && !self.member_id.is_empty(),
            _ => false,
        }
    }

    /// Hand `partitions` to the application to finish, then do `then`.
    pub(crate) fn revoke(
        &mut self,
        partitions: BTreeSet<TopicPartition>,
        then: AfterRevoke,
        now: Instant,
    ) {
        let deadline = now + self.cfg.revoke_budget;
        self.state = State::Revoking;
        self.revoking = partitions.clone();
        self.after_revoke = Some(then);
        self.out.push(Action::Emit(GroupEvent::Revoked {
            partitions,
            deadline,
        }));
        self.out
            .push(Action::Timer(TimerKind::Revoke, Some(deadline)));
        if self.heartbeating() {
            let since = self.heard.unwrap_or(now);
            self.out.push(Action::Timer(
                TimerKind::Session,
                Some(since + self.cfg.session_timeout),
            ));
            if self.heartbeat.is_none() {
                let next = now + self.cfg.heartbeat_interval;
                self.out
                    .push(Action::Timer(TimerKind::Heartbeat, Some(next)));
            }
        }
    }

    /// The application acked the revoke, or its budget ran out.
    pub(crate) fn revoke_finished(&mut self, now: Instant) {
        self.revoking.clear();
        self.out.push(Action::Timer(TimerKind::Revoke, None));
        let then = self.after_revoke.take();
        if let Some(reason) = self.leave_after_revoke.take()
            && !matches!(then, Some(AfterRevoke::Leave(_)))
        {
            // What the new generation added was never handed out; what
            // the member keeps is revoked (committed) before it leaves.
            return self.begin_leave(reason, now);
        }
        match then {
            Some(AfterRevoke::Join) | None => self.join_now(now),
            Some(AfterRevoke::Assign { added }) => {
                self.assigned(added, now);
                // KIP-429: partitions were revoked, so rejoin at once for
                // the leader to hand them to their new owners.
                self.start_join(now);
            }
            Some(AfterRevoke::Leave(reason)) => {
                self.stop_heartbeats();
                self.send_leave(reason, now);
            }
        }
    }

    /// `max.poll.interval.ms` passed while the application finishes a
    /// revoke: a LeaveGroup now would fail the commits it is making, so
    /// the member leaves once the revoke is done (unless it polls first).
    pub(crate) fn poll_timeout_revoking(&mut self) {
        let leaving = matches!(self.after_revoke, Some(AfterRevoke::Leave(_)));
        if self.cfg.max_poll_interval.is_some() && !leaving {
            tracing::warn!(group = %self.cfg.group_id, "max.poll.interval.ms passed without a poll; leaving once the revoke is done");
            self.leave_after_revoke = Some(LeaveReason::PollTimeout);
        }
    }

    /// A heartbeat answered during a revoke.
    pub(crate) fn on_revoking_heartbeat(&mut self, code: ErrorCode, sent: Instant, now: Instant) {
        match code {
            // REBALANCE_IN_PROGRESS: the coordinator waits for the JoinGroup
            // that follows the revoke, and counted this heartbeat (Java's
            // heartbeat thread treats it as received for the same reason).
            ErrorCode::NONE | ErrorCode::REBALANCE_IN_PROGRESS => self.heartbeat_ok(sent, now),
            ErrorCode::ILLEGAL_GENERATION => self.gone_while_revoking(false),
            ErrorCode::UNKNOWN_MEMBER_ID => self.gone_while_revoking(true),
            c => match recovery(c) {
                Recovery::Rediscover => self.retry_heartbeat_elsewhere(now),
                Recovery::Backoff => self.backoff(now),
                Recovery::Fatal => self.fatal(ApiKey::Heartbeat, c, None),
            },
        }
    }

    /// The coordinator moved or its connection was lost during a revoke:
    /// forget it and heartbeat again after a backoff (the driver looks the
    /// coordinator up for the request), without leaving the revoke.
    pub(crate) fn retry_heartbeat_elsewhere(&mut self, now: Instant) {
        tracing::info!(group = %self.cfg.group_id, "coordinator lost during a revoke; heartbeating to the next one");
        self.out.push(Action::InvalidateCoordinator);
        self.backoff(now);
    }

    /// The coordinator no longer counts this member (reset, or a session
    /// that ran out): what it revokes and keeps is lost now, nothing of it
    /// may be committed. The application is still finishing, so the member
    /// rejoins once it acks (or leaves, if that was the plan).
    pub(crate) fn gone_while_revoking(&mut self, member_id: bool) {
        tracing::info!(group = %self.cfg.group_id, member_id = %self.member_id, generation = self.generation, "membership lost during a revoke; partitions lost");
        self.reset(member_id);
        self.lose_all();
        self.stop_heartbeats();
        if matches!(self.after_revoke, Some(AfterRevoke::Assign { .. })) {
            // The generation that assigned them is gone.
            self.after_revoke = Some(AfterRevoke::Join);
        }
    }
}
