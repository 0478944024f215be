//! Positions and commits: where each partition starts (its committed
//! offset, else `auto.offset.reset`), seeking, committing and auto-commit.
//! A committed offset is the offset of the next record to consume.

use std::collections::BTreeMap;
use std::time::Instant;

use krust_group::membership::State;
use krust_group::{OffsetAndMetadata, OffsetError, TopicPartition, offsets};

use crate::config::AutoOffsetReset;
use crate::consumer::{Consumer, Mode};
use crate::error::ConsumerError;
use crate::fetch::IsolationLevel;
use crate::list_offsets::{OffsetSpec, list_offsets};

/// Whether a lookup failed only because the cluster could not be reached
/// in time: krust-net's calls end at their own deadline (retries that ran
/// out, no bootstrap address that answered), and while some cause was
/// retriable that is an outage, not a reason to fail `poll`: the positions
/// are looked up again by the next poll, as Java's poll keeps trying to
/// update its fetch positions (the group membership reads it the same way,
/// krust-group's `replies::transient`).
fn transient(e: &krust_net::Error) -> bool {
    match e {
        krust_net::Error::RetriesExhausted { last, .. } => transient(last),
        krust_net::Error::Bootstrap { attempts } => attempts.iter().any(|(_, e)| transient(e)),
        e => e.is_retriable(),
    }
}

/// [`transient`] for a committed-offsets lookup (OffsetFetch).
fn outage(e: &ConsumerError) -> bool {
    match e {
        ConsumerError::Offset(OffsetError::Request { source, .. }) | ConsumerError::Net(source) => {
            transient(source)
        }
        _ => false,
    }
}

impl Consumer {
    /// Commit `offsets` and wait. Under a group every partition must be
    /// owned (refused locally otherwise); with `assign` the commit is made
    /// outside any generation.
    pub async fn commit_offsets(
        &mut self,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<(), ConsumerError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let done: BTreeMap<TopicPartition, i64> = offsets
            .iter()
            .map(|(tp, o)| (tp.clone(), o.offset))
            .collect();
        self.commit_future(offsets).await?;
        for (tp, o) in done {
            if let Some(p) = self.parts.get_mut(&tp) {
                p.committed = Some(o);
            }
        }
        Ok(())
    }

    pub(crate) fn commit_future(
        &self,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> impl std::future::Future<Output = Result<(), ConsumerError>> + Send + 'static {
        let pool = self.pool.clone();
        let retry = self.retry;
        let member = match &self.mode {
            Mode::Group { handle, .. } => Some(handle.membership()),
            _ => None,
        };
        let group = self.cfg.group_id.clone();
        async move {
            if offsets.is_empty() {
                return Ok(());
            }
            match (member, group) {
                (Some(m), _) => offsets::commit(&pool, &m, &offsets, &retry).await?,
                (None, Some(g)) => offsets::commit_standalone(&pool, &g, &offsets, &retry).await?,
                (None, None) => return Err(ConsumerError::NoGroup("commit")),
            }
            Ok(())
        }
    }

    /// The offsets committed for `partitions` in `group.id`.
    pub async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, Option<OffsetAndMetadata>>, ConsumerError> {
        let group = self
            .cfg
            .group_id
            .as_deref()
            .ok_or(ConsumerError::NoGroup("committed"))?;
        let stable = self.cfg.isolation_level() == IsolationLevel::ReadCommitted;
        Ok(offsets::fetch(&self.pool, group, partitions, stable, &self.retry).await?)
    }

    /// Auto-commit: every `auto.commit.interval.ms`, while the membership
    /// is stable, commit what was handed out before the current poll.
    pub(crate) async fn maybe_auto_commit(&mut self) {
        if !self.cfg.enable_auto_commit || !self.has_group() {
            return;
        }
        let now = Instant::now();
        if now < self.next_auto_commit {
            return;
        }
        if let Mode::Group { handle, .. } = &self.mode
            && handle.membership().state != State::Stable
        {
            return;
        }
        self.next_auto_commit = now + self.cfg.auto_commit_interval;
        let offsets = self.committable(Some(()));
        if let Err(e) = self.commit_offsets(offsets).await {
            tracing::warn!(error = %e, "auto-commit failed; the next one retries");
            if let Some(l) = self.listener() {
                l.on_commit_failed(&e);
            }
        }
    }

    /// Give every partition without a position one: its committed offset,
    /// else (or after OFFSET_OUT_OF_RANGE) `auto.offset.reset`.
    pub(crate) async fn init_positions(&mut self) -> Result<(), ConsumerError> {
        let unknown: Vec<TopicPartition> = self
            .parts
            .iter()
            .filter(|(_, p)| p.position.is_none() && !p.reset)
            .map(|(tp, _)| tp.clone())
            .collect();
        if !unknown.is_empty() {
            let found = match self.cfg.group_id {
                Some(_) => match self.committed(&unknown).await {
                    Ok(f) => f,
                    Err(e) if e.code().is_some_and(|c| c.is_retriable()) || outage(&e) => {
                        tracing::debug!(error = %e, "committed offsets not available yet");
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                },
                None => BTreeMap::new(),
            };
            for tp in unknown {
                let Some(p) = self.parts.get_mut(&tp) else {
                    continue;
                };
                match found.get(&tp).cloned().flatten() {
                    Some(o) if o.offset >= 0 => {
                        p.position = Some(o.offset);
                        p.consumed = Some(o.offset);
                        p.committed = Some(o.offset);
                        p.leader_epoch = o.leader_epoch;
                        // KIP-320, as Java's seekUnvalidated: the log may
                        // have been truncated below a committed offset
                        // (an unclean election since the commit), which
                        // only the leader can tell for that epoch.
                        p.validate = o.leader_epoch.is_some();
                        p.checked_leader = None;
                    }
                    _ => p.reset = true,
                }
            }
        }
        let reset: Vec<TopicPartition> = self
            .parts
            .iter()
            .filter(|(_, p)| p.position.is_none() && p.reset)
            .map(|(tp, _)| tp.clone())
            .collect();
        if reset.is_empty() {
            return Ok(());
        }
        let spec = match self.cfg.auto_offset_reset {
            AutoOffsetReset::Earliest => OffsetSpec::Earliest,
            AutoOffsetReset::Latest => OffsetSpec::Latest,
            AutoOffsetReset::None => {
                return Err(ConsumerError::NoOffset { partitions: reset });
            }
        };
        match self.lookup(&reset, spec).await {
            Ok(found) => {
                for (tp, offset) in found {
                    if let (Some(p), Some((o, epoch))) = (self.parts.get_mut(&tp), offset) {
                        p.seek(o, epoch, &self.progress);
                    }
                }
                Ok(())
            }
            Err(e) if e.is_retriable() || e.invalidates_metadata() || transient(&e) => {
                tracing::debug!(error = %e, "offset reset lookup failed; retrying");
                self.fetcher.want_metadata();
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// ListOffsets for `partitions`.
    async fn lookup(
        &self,
        partitions: &[TopicPartition],
        spec: OffsetSpec,
    ) -> Result<BTreeMap<TopicPartition, Option<(i64, Option<i32>)>>, krust_net::Error> {
        let asked: Vec<(&str, i32, OffsetSpec)> = partitions
            .iter()
            .map(|tp| (tp.topic.as_str(), tp.partition, spec))
            .collect();
        let found =
            list_offsets(&self.pool, &asked, self.cfg.isolation_level(), &self.retry).await?;
        Ok(found
            .into_iter()
            .map(|l| {
                let found = l.offset.map(|o| (o, l.leader_epoch));
                (TopicPartition::new(l.topic, l.partition), found)
            })
            .collect())
    }

    /// Hand out `tp` from `offset` next.
    pub fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<(), ConsumerError> {
        self.check_assigned(std::slice::from_ref(tp))?;
        if let Some(p) = self.parts.get_mut(tp) {
            p.seek(offset, None, &self.progress);
        }
        Ok(())
    }

    /// Seek `partitions` to their log start.
    pub async fn seek_to_beginning(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<(), ConsumerError> {
        self.seek_to(partitions, OffsetSpec::Earliest).await
    }

    /// Seek `partitions` to their end (only records written from now on).
    pub async fn seek_to_end(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<(), ConsumerError> {
        self.seek_to(partitions, OffsetSpec::Latest).await
    }

    /// Seek `partitions` to the first record with a timestamp at or after
    /// `timestamp_ms`, or to their end when there is none.
    pub async fn seek_to_timestamp(
        &mut self,
        partitions: &[TopicPartition],
        timestamp_ms: i64,
    ) -> Result<(), ConsumerError> {
        self.seek_to(partitions, OffsetSpec::Timestamp(timestamp_ms))
            .await
    }

    async fn seek_to(
        &mut self,
        partitions: &[TopicPartition],
        spec: OffsetSpec,
    ) -> Result<(), ConsumerError> {
        self.check_assigned(partitions)?;
        let mut found = self.lookup(partitions, spec).await?;
        let missing: Vec<TopicPartition> = found
            .iter()
            .filter(|(_, o)| o.is_none())
            .map(|(tp, _)| tp.clone())
            .collect();
        if !missing.is_empty() {
            found.extend(self.lookup(&missing, OffsetSpec::Latest).await?);
        }
        for (tp, o) in found {
            if let (Some(p), Some((o, epoch))) = (self.parts.get_mut(&tp), o) {
                p.seek(o, epoch, &self.progress);
            }
        }
        Ok(())
    }
}
