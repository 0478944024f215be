//! The `rebalance` tracing span: one per rebalance, from the first
//! JoinGroup (or eager revoke) to Stable, recording the member id, the
//! generation, the protocol chosen and how long it took.

use std::time::Instant;

use crate::membership::Membership;

impl Membership {
    /// Open the span of a rebalance (one per rebalance, from the first
    /// JoinGroup or eager revoke to Stable), unless one is open.
    pub(crate) fn begin_rebalance(&mut self, now: Instant) {
        if self.rebalance.is_some() {
            return;
        }
        let span = tracing::info_span!(
            "rebalance",
            group = %self.cfg.group_id,
            member_id = %self.member_id,
            generation = tracing::field::Empty,
            protocol = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        );
        self.rebalance = Some((span, now));
    }

    /// Record what the JoinGroup reply settled in the rebalance's span.
    pub(crate) fn note_joined(&self) {
        if let Some((span, _)) = &self.rebalance {
            span.record("member_id", tracing::field::display(&self.member_id));
            span.record("generation", self.generation);
            if let Some(p) = &self.protocol_name {
                span.record("protocol", p.as_str());
            }
        }
    }

    /// Close the rebalance's span: at Stable with its duration, or because
    /// the membership ended.
    pub(crate) fn end_rebalance(&mut self, now: Instant, outcome: &'static str) {
        if let Some((span, began)) = self.rebalance.take() {
            let ms =
                u64::try_from(now.saturating_duration_since(began).as_millis()).unwrap_or(u64::MAX);
            span.record("duration_ms", ms);
            tracing::debug!(parent: &span, duration_ms = ms, generation = self.generation, outcome, "rebalance finished");
        }
    }

    /// The membership ended (left, fatal) before the rebalance finished.
    pub(crate) fn abandon_rebalance(&mut self, outcome: &'static str) {
        if let Some((span, _)) = self.rebalance.take() {
            tracing::debug!(parent: &span, outcome, "rebalance abandoned");
        }
    }
}
