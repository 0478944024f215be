//! The consumer's side of the group membership: starting it, and turning
//! its events into partition state changes and listener calls. Revoke is
//! safe by default (docs/ARCHITECTURE.md): nothing more of a revoked partition is
//! handed out, explicit acks are awaited up to the revoke deadline, the
//! listener may commit, auto-commit commits, and only then does the group
//! go on. Nothing is ever committed for lost partitions.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use krust_group::{GroupEvent, LeaveReason, MembershipConfig, TopicPartition};

use crate::config::AckMode;
use crate::consumer::{Consumer, Mode};
use crate::error::ConsumerError;
use crate::parts::PartState;
use crate::rebalance::Revoke;

impl Consumer {
    pub(crate) fn start_group(
        &mut self,
        topics: Vec<String>,
        pattern: Option<regex::Regex>,
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
        m.revoke_budget = c.max_poll_interval.min(Duration::from_secs(30));
        m.retry_backoff = self.retry.backoff;
        m.rack_id = c.client_rack.clone();
        m.metadata_max_age = c.metadata_max_age;
        let (handle, task) = krust_group::group(self.pool.clone(), m, c.assignors.clone());
        // The task stops when the handle (owned by this consumer) is
        // dropped or closed.
        tokio::spawn(task.run());
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
    /// every `metadata.max.age.ms`; a change rejoins with the new set.
    pub(crate) async fn maybe_recheck_pattern(&mut self) -> Result<(), ConsumerError> {
        let now = Instant::now();
        if now < self.next_pattern_check {
            return Ok(());
        }
        self.next_pattern_check = now + self.cfg.metadata_max_age;
        let Mode::Group {
            pattern: Some(re),
            topics,
            ..
        } = &self.mode
        else {
            return Ok(());
        };
        let (re, old) = (re.clone(), topics.clone());
        let topics = self.matching_topics(&re).await?;
        if topics == old {
            return Ok(());
        }
        tracing::info!(?topics, "topics matching the pattern changed: rejoining");
        if self.cfg.enable_auto_commit {
            let offsets = self.committable(None);
            if let Err(e) = self.commit_offsets(offsets).await {
                tracing::warn!(error = %e, "commit before rejoining failed");
            }
        }
        if let Mode::Group { handle, .. } = std::mem::replace(&mut self.mode, Mode::None) {
            let _ = handle.close(self.cfg.default_api_timeout).await;
        }
        self.parts.clear();
        self.start_group(topics, Some(re))
    }

    /// Handle every event already waiting, without waiting; first the
    /// one a cancelled poll left half done (so `poll` is cancel-safe).
    pub(crate) async fn drain_group_events(&mut self) -> Result<(), ConsumerError> {
        if let Some(ev) = self.unfinished.take() {
            self.on_group_event(Some(ev)).await?;
        }
        loop {
            let ev = match &mut self.mode {
                Mode::Group { handle, .. } => handle.try_next_event(),
                _ => None,
            };
            match ev {
                Some(ev) => self.on_group_event(Some(ev)).await?,
                None => return Ok(()),
            }
        }
    }

    pub(crate) async fn on_group_event(
        &mut self,
        ev: Option<GroupEvent>,
    ) -> Result<(), ConsumerError> {
        let Some(ev) = ev else {
            let e = ConsumerError::Usage("the group membership stopped".into());
            self.fatal.get_or_insert(e.clone());
            return Err(e);
        };
        match ev {
            GroupEvent::Assigned { partitions, .. } => {
                tracing::info!(?partitions, "assigned");
                for tp in &partitions {
                    let progress = self.progress.clone();
                    self.parts
                        .entry(tp.clone())
                        .or_insert_with(|| PartState::new(&progress));
                }
                if let Some(l) = self.listener() {
                    l.on_assigned(&partitions);
                }
            }
            GroupEvent::Revoked {
                partitions,
                deadline,
            } => self.revoke(partitions, deadline).await,
            GroupEvent::Lost { partitions } => {
                tracing::warn!(
                    ?partitions,
                    "partitions lost: nothing is committed for them"
                );
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

    async fn revoke(&mut self, partitions: BTreeSet<TopicPartition>, deadline: Instant) {
        tracing::info!(?partitions, "revoking");
        for tp in &partitions {
            if let Some(p) = self.parts.get_mut(tp) {
                p.buffer.clear();
            }
        }
        if self.cfg.ack_mode == AckMode::Explicit {
            self.await_acks(&partitions, deadline).await;
        }
        let committable = self.committable(None);
        let mut revoke = Revoke {
            committable: committable
                .iter()
                .filter(|(tp, _)| partitions.contains(*tp))
                .map(|(tp, o)| (tp.clone(), o.offset))
                .collect(),
            partitions,
            commits: Default::default(),
            deadline,
        };
        if let Some(l) = self.listener() {
            l.on_revoked(&mut revoke);
        }
        // Explicit acks say what was processed, so their prefix is always
        // committed before the partitions go (docs/ARCHITECTURE.md: revoke is safe by
        // default); implicit positions only with auto-commit, as in Java.
        if self.cfg.enable_auto_commit || self.cfg.ack_mode == AckMode::Explicit {
            revoke.commit_all();
        }
        if !revoke.commits.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.commit_offsets(revoke.commits)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "commit of revoked partitions failed");
                    if let Some(l) = self.listener() {
                        l.on_commit_failed(&e);
                    }
                }
                Err(_) => {
                    tracing::warn!("commit of revoked partitions passed the revoke deadline");
                    let e = ConsumerError::Timeout {
                        what: "the commit of revoked partitions",
                        timeout: left,
                    };
                    if let Some(l) = self.listener() {
                        l.on_commit_failed(&e);
                    }
                }
            }
        }
        for tp in &revoke.partitions {
            self.parts.remove(tp);
        }
        if let Mode::Group { handle, .. } = &self.mode {
            handle.revoke_done();
        }
    }

    /// Explicit acks: wait until every record handed out of `partitions`
    /// was acked, or `deadline`.
    async fn await_acks(&self, partitions: &BTreeSet<TopicPartition>, deadline: Instant) {
        let progress = Arc::clone(&self.progress);
        loop {
            let notified = progress.notified();
            let settled = partitions
                .iter()
                .filter_map(|tp| self.parts.get(tp))
                .all(|p| p.acks.settled());
            if settled {
                return;
            }
            if tokio::time::timeout_at(deadline.into(), notified)
                .await
                .is_err()
            {
                tracing::warn!("revoke deadline passed with records not acked");
                return;
            }
        }
    }
}
