//! The consumer's side of the group membership: starting it, and turning
//! its events into partition state changes and listener calls. A revoke
//! is a resumable step of its own (`revoking`: acks awaited, committed,
//! then `revoke_done`); nothing is ever committed for lost partitions.
//! Every event is applied synchronously once taken off the channel, so a
//! cancelled poll never loses one.

use std::time::Instant;

use krust_group::{GroupEvent, LeaveReason, MembershipConfig};

use crate::consumer::{Consumer, Mode};
use crate::error::ConsumerError;
use crate::parts::PartState;
use crate::revoking::Cause;

impl Consumer {
    pub(crate) fn start_group(
        &mut self,
        topics: Vec<String>,
        pattern: Option<regex::Regex>,
        broker_regex: Option<String>,
    ) -> Result<(), ConsumerError> {
        let Some(group_id) = self.cfg.group_id.clone() else {
            return Err(ConsumerError::NoGroup("subscribe"));
        };
        match &self.mode {
            Mode::Manual => {
                return Err(ConsumerError::Usage(
                    "subscribe after assign: use a second consumer".into(),
                ));
            }
            Mode::Group { topics: t, .. } if *t == topics => return Ok(()),
            Mode::Group { .. } if pattern.is_none() => {
                return Err(ConsumerError::Usage(
                    "already subscribed to other topics: close and create a new consumer".into(),
                ));
            }
            _ => {}
        }
        let c = &self.cfg;
        let mut m = MembershipConfig::new(group_id, topics.clone());
        m.group_instance_id = c.group_instance_id.clone();
        m.session_timeout = c.session_timeout;
        m.heartbeat_interval = c.heartbeat_interval;
        m.rebalance_timeout = c.max_poll_interval;
        m.max_poll_interval = Some(c.max_poll_interval);
        // The application finishes revoked partitions within this; the
        // group's rebalance timeout bounds it anyway.
        m.revoke_budget = self.revoke_budget();
        m.retry_backoff = self.retry.backoff;
        m.rack_id = c.client_rack.clone();
        m.metadata_max_age = c.metadata_max_age;
        m.group_protocol = c.group_protocol;
        m.remote_assignor = c.group_remote_assignor.clone();
        m.topic_regex = broker_regex;
        let (handle, task) = krust_group::group(self.pool.clone(), m, c.assignors.clone());
        // The task stops when the handle (owned by this consumer) is
        // dropped or closed.
        tokio::spawn(task.run());
        self.metrics.watch_group(&handle);
        self.mode = Mode::Group {
            handle,
            topics,
            pattern,
        };
        Ok(())
    }

    pub(crate) fn listener(&mut self) -> Option<&mut Box<dyn crate::rebalance::RebalanceListener>> {
        self.listener
            .as_mut()
            .map(|m| m.get_mut().unwrap_or_else(|e| e.into_inner()))
    }

    pub(crate) async fn matching_topics(
        &self,
        re: &regex::Regex,
    ) -> Result<Vec<String>, ConsumerError> {
        let mut topics: Vec<String> = self
            .pool
            .all_topic_names()
            .await?
            .into_iter()
            .filter(|t| re.is_match(t) && !t.starts_with("__"))
            .collect();
        topics.sort();
        Ok(topics)
    }

    /// With a pattern subscription, look the matching topics up again
    /// every `metadata.max.age.ms`; a change lets every partition go (a
    /// revoke: acks awaited, committed per the mode) and then rejoins with
    /// the new set. Cancel-safe: nothing changes before the lookup ends
    /// (a cancelled lookup is made again by the next poll), and what
    /// follows is a [`Revoking`](crate::revoking::Revoking) step.
    pub(crate) async fn maybe_recheck_pattern(&mut self) -> Result<(), ConsumerError> {
        let now = Instant::now();
        if now < self.next_pattern_check || self.is_revoking() {
            return Ok(());
        }
        let Mode::Group {
            pattern: Some(re),
            topics,
            ..
        } = &self.mode
        else {
            return Ok(());
        };
        let (re, old) = (re.clone(), topics.clone());
        let found = self.matching_topics(&re).await;
        self.next_pattern_check = Instant::now() + self.cfg.metadata_max_age;
        let topics = found?;
        if topics == old {
            return Ok(());
        }
        let all = self.parts.keys().cloned().collect();
        let deadline = Instant::now() + self.revoke_budget();
        self.start_revoke(
            all,
            deadline,
            Cause::Resubscribe {
                topics,
                pattern: re,
            },
        );
        Ok(())
    }

    /// Take the group's side as far as it goes without waiting: the revoke
    /// in progress first, then every event already waiting, up to the next
    /// revoke (events after a `Revoked` wait until it is finished, so that
    /// `revoke_done` acks only what was finished). Cancel-safe: each event
    /// is handled synchronously once taken off the channel.
    pub(crate) async fn step_group(&mut self) -> Result<(), ConsumerError> {
        loop {
            self.drive_revoke().await;
            if let Some(l) = self.leaving.as_mut()
                && l.try_finish().await.is_some()
            {
                self.leaving = None;
            }
            if self.is_revoking() {
                return Ok(());
            }
            let ev = match &mut self.mode {
                Mode::Group { handle, .. } => handle.try_next_event(),
                _ => None,
            };
            match ev {
                Some(ev) => self.on_group_event(Some(ev))?,
                None => return Ok(()),
            }
        }
    }

    /// Apply one group event; synchronous, so a cancelled poll never
    /// leaves one half applied (a revoke becomes a [`Revoking`] step).
    ///
    /// [`Revoking`]: crate::revoking::Revoking
    pub(crate) fn on_group_event(&mut self, ev: Option<GroupEvent>) -> Result<(), ConsumerError> {
        let Some(ev) = ev else {
            let e = ConsumerError::Usage("the group membership stopped".into());
            self.fatal.get_or_insert(e.clone());
            return Err(e);
        };
        match ev {
            GroupEvent::Assigned { partitions, .. } => {
                tracing::info!(?partitions, "assigned");
                self.metrics.assigned(partitions.len());
                for tp in &partitions {
                    let (progress, metrics) = (&self.progress, &self.metrics);
                    self.parts
                        .entry(tp.clone())
                        .or_insert_with_key(|tp| PartState::new(progress, metrics.partition(tp)));
                }
                if let Some(l) = self.listener() {
                    l.on_assigned(&partitions);
                }
            }
            GroupEvent::Revoked {
                partitions,
                deadline,
            } => self.start_revoke(partitions, deadline, Cause::Group),
            GroupEvent::Lost { partitions } => {
                tracing::warn!(
                    ?partitions,
                    "partitions lost: nothing is committed for them"
                );
                self.metrics.lost(partitions.len());
                for tp in &partitions {
                    self.parts.remove(tp);
                }
                if let Some(l) = self.listener() {
                    l.on_lost(&partitions);
                }
            }
            GroupEvent::LeftGroup { reason } => {
                if reason == LeaveReason::PollTimeout {
                    tracing::warn!(
                        "left the group: max.poll.interval.ms passed between polls; rejoining"
                    );
                }
                if let Some(l) = self.listener() {
                    l.on_left_group(reason);
                }
            }
            GroupEvent::Fatal(e) => {
                let e = ConsumerError::Group(e);
                self.fatal = Some(e.clone());
                return Err(e);
            }
            _ => {}
        }
        Ok(())
    }
}
