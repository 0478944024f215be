//! Positions and commits: seeking, committing and auto-commit (where each
//! partition starts, its committed offset else `auto.offset.reset`, is
//! looked up by the fetcher's `positions`).
//! A committed offset is the offset of the next record to consume.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use krust_group::membership::State;
use krust_group::{OffsetAndMetadata, TopicPartition, offsets};

use crate::consumer::{Consumer, Mode};
use crate::error::ConsumerError;
use crate::fetch::IsolationLevel;
use crate::fetcher::lookup;
use crate::list_offsets::OffsetSpec;
use crate::revoking::Parked;

/// An auto-commit in flight (see [`Consumer::maybe_auto_commit`]).
pub(crate) struct AutoCommit {
    /// What it commits, for the committed marks once it succeeded.
    offsets: BTreeMap<TopicPartition, i64>,
    /// The request: a `'static` future kept on the consumer.
    pub(crate) commit: Parked<Result<(), ConsumerError>>,
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
        self.commit_future(offsets, None).await?;
        self.mark_committed(done);
        Ok(())
    }

    /// The broker accepted these offsets: what each partition last
    /// committed (so an unchanged one is not committed again).
    fn mark_committed(&mut self, done: BTreeMap<TopicPartition, i64>) {
        for (tp, o) in done {
            if let Some(p) = self.parts.get_mut(&tp) {
                p.committed = Some(o);
            }
        }
    }

    /// Commit `offsets` in this consumer's order of commits (see
    /// `commits`): the returned future gives the result of a commit that
    /// runs as a task of its own, and that sends nothing before every
    /// commit started before it has ended; `within` bounds it, the wait
    /// for those included.
    pub(crate) fn commit_future(
        &mut self,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
        within: Option<(Duration, &'static str)>,
    ) -> impl std::future::Future<Output = Result<(), ConsumerError>> + Send + 'static + use<> {
        let metrics = self.metrics.commit(offsets.len());
        let request = self.commit_request(offsets);
        self.commits.start(request, within, metrics)
    }

    /// The commit of `offsets`, retried until `default.api.timeout.ms`.
    fn commit_request(
        &self,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> impl std::future::Future<Output = Result<(), ConsumerError>> + Send + 'static + use<> {
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
    /// is stable, commit what was handed out before the current poll. The
    /// commit is an [`AutoCommit`] kept on the consumer, as Java and
    /// librdkafka commit asynchronously in poll: `poll` sends it and never
    /// waits for its reply (a hung coordinator held every poll up to
    /// `default.api.timeout.ms`); every later poll and wait drive it on,
    /// and the next one starts only once it ended.
    pub(crate) async fn maybe_auto_commit(&mut self) {
        self.drive_auto_commit().await;
        if self.auto_commit.is_some() || !self.cfg.enable_auto_commit || !self.has_group() {
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
        if offsets.is_empty() {
            return;
        }
        let marks = offsets
            .iter()
            .map(|(tp, o)| (tp.clone(), o.offset))
            .collect();
        self.auto_commit = Some(AutoCommit {
            offsets: marks,
            commit: Parked::new(self.commit_future(offsets, None)),
        });
        // Polled once now: the request goes out with this poll.
        self.drive_auto_commit().await;
    }

    /// Take the auto-commit in flight as far as it goes without waiting.
    pub(crate) async fn drive_auto_commit(&mut self) {
        if let Some(a) = self.auto_commit.as_mut()
            && let Some(result) = a.commit.try_finish().await
        {
            self.auto_committed(result);
        }
    }

    /// Wait for the auto-commit in flight, if any, to end (what `commit`
    /// and a revoke's commit go after).
    pub(crate) async fn finish_auto_commit(&mut self) {
        if let Some(a) = self.auto_commit.as_mut() {
            let result = std::future::poll_fn(|cx| a.commit.poll(cx)).await;
            self.auto_committed(result);
        }
    }

    /// The auto-commit in flight ended.
    pub(crate) fn auto_committed(&mut self, result: Result<(), ConsumerError>) {
        let Some(a) = self.auto_commit.take() else {
            return;
        };
        match result {
            Ok(()) => self.mark_committed(a.offsets),
            Err(e) => {
                tracing::warn!(error = %e, "auto-commit failed; the next one retries");
                if let Some(l) = self.listener() {
                    l.on_commit_failed(&e);
                }
            }
        }
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
        let (pool, isolation, retry) = (&self.pool, self.cfg.isolation_level(), &self.retry);
        let mut found = lookup(pool, partitions, spec, isolation, retry).await?;
        let missing: Vec<TopicPartition> = found
            .iter()
            .filter(|(_, o)| o.is_none())
            .map(|(tp, _)| tp.clone())
            .collect();
        if !missing.is_empty() {
            found.extend(lookup(pool, &missing, OffsetSpec::Latest, isolation, retry).await?);
        }
        for (tp, o) in found {
            if let (Some(p), Some((o, epoch))) = (self.parts.get_mut(&tp), o) {
                p.seek(o, epoch, &self.progress);
            }
        }
        Ok(())
    }
}
