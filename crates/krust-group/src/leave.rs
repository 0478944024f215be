//! Leaving the group: Java's `onLeavePrepare` then `maybeLeaveGroup` —
//! revoke what is owned (the application commits it), then LeaveGroup
//! (dynamic members only: KIP-345 static members keep their partitions
//! across a restart through their session timeout).

use std::time::Instant;

use krust_codec::KString;
use krust_codec::generated::LeaveGroupRequest;
use krust_codec::generated::leave_group_request::MemberIdentity;

use crate::membership::{
    Action, AfterRevoke, GroupEvent, LeaveReason, Membership, Request, State, TimerKind,
};

impl Membership {
    pub(crate) fn close(&mut self, now: Instant) {
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
        if matches!(
            self.state,
            State::Joining | State::Assigning | State::Syncing
        ) {
            // The coordinator holds the JoinGroup or awaits the SyncGroup
            // being abandoned: it counts the member alive until now.
            self.heard = Some(now);
        }
        self.awaiting = None;
        self.out.push(Action::Timer(TimerKind::Retry, None));
        if self.owned.is_empty() || self.generation < 0 {
            self.stop_heartbeats();
            self.lose_all();
            self.send_leave(reason, now);
        } else {
            // Heartbeats go on while the application finishes.
            let partitions = std::mem::take(&mut self.owned);
            self.revoke(partitions, AfterRevoke::Leave(reason), now);
        }
    }

    /// No more heartbeats, and no session running.
    pub(crate) fn stop_heartbeats(&mut self) {
        self.heartbeat = None;
        self.out.push(Action::Timer(TimerKind::Heartbeat, None));
        self.out.push(Action::Timer(TimerKind::Session, None));
    }

    pub(crate) fn send_leave(&mut self, reason: LeaveReason, now: Instant) {
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
        let seq = self.await_reply(now);
        self.state = State::Leaving;
        self.after_revoke = Some(AfterRevoke::Leave(reason));
        self.out.push(Action::Send {
            seq,
            request: Request::Leave(req),
        });
    }

    pub(crate) fn finish_leave(&mut self, reason: LeaveReason) {
        self.abandon_rebalance("left");
        self.awaiting = None;
        self.after_revoke = None;
        self.leave_after_revoke = None;
        // Nothing is this member's any more: a revoke it left during is
        // over, and what a close during a cooperative revoke kept went
        // with it (closing is the application's ack).
        self.revoking.clear();
        self.owned.clear();
        self.reset(true);
        self.stop_heartbeats();
        self.out.push(Action::Timer(TimerKind::Revoke, None));
        self.out.push(Action::Timer(TimerKind::Reply, None));
        self.out
            .push(Action::Emit(GroupEvent::LeftGroup { reason }));
        if reason == LeaveReason::Closed {
            self.state = State::Left;
            self.out.push(Action::Stop);
        } else {
            self.state = State::Unjoined;
        }
    }
}
