//! The consumer: one value the application owns and drives with
//! [`Consumer::poll`] (or the [`Consumer::stream`] built on it). The group
//! membership runs in its own task (heartbeats never wait for the
//! application); fetches run as tasks owned by the consumer, one in flight
//! per broker, so the next records are on their way while the application
//! processes the current ones. Dropping the consumer stops everything at
//! once without committing or leaving the group: it behaves like a crash.
//!
//! # Cancel safety
//!
//! [`Consumer::poll`] may be dropped at any await (a `tokio::time::timeout`,
//! a `select!` another branch won). The invariant that makes it safe: no
//! await sits between a change of state and its completion, or the step is
//! a value on the consumer that the next poll resumes.
//!
//! - Records are taken from the partition buffers and returned with no
//!   await in between: a cancelled poll has handed out nothing.
//! - Group events are applied synchronously once received; a revoke (its
//!   ack wait and its commit) is a resumable step (`revoking`) that every
//!   poll drives on before anything else, and `revoke_done` is sent once,
//!   when it is finished. The same step lets every partition go when a
//!   pattern subscription's topics change (the old member's LeaveGroup is a
//!   future kept on the consumer, the new member starts at once).
//! - The fetcher's work runs as tasks a cancelled poll does not touch:
//!   fetches, position validations, metadata refreshes, and the lookups of
//!   new partitions' positions (committed offsets, offset resets); a later
//!   poll applies each answer without an await, and only to partitions
//!   that still wait for it. The pattern's topics are looked up in `poll`
//!   and change nothing until the answer is in (a cancelled lookup is made
//!   again at the next poll).
//! - Auto-commit commits the offsets of what was handed out before the
//!   poll as a `'static` future kept on the consumer, which every poll
//!   drives on and none waits for; a revoke's commit and `commit()` go
//!   after it, so it never lands after a later commit.
//!
//! Other calls (`commit`, `close`, `seek_to_*`, `committed`) are not
//! cancel-safe in that sense: dropping them abandons the request (a commit
//! may or may not have been made).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use krust_group::{GroupHandle, OffsetAndMetadata, TopicPartition};
use krust_net::{Backoff, ConnectionConfig, Pool, PoolConfig, RetryPolicy};
use tokio::sync::Notify;

use crate::commits::CommitChain;
use crate::config::{AckMode, ConsumerConfig};
use crate::error::ConsumerError;
use crate::fetch::IsolationLevel;
use crate::fetcher::{Fetcher, Joined};
use crate::metrics::ConsumerMetrics;
use crate::offsets::AutoCommit;
use crate::parts::{PartState, give_back, hand_out, handable, window_blocked};
use crate::rebalance::RebalanceListener;
use crate::record::ConsumerRecord;
use crate::revoking::{Parked, Revoking};

/// How the partitions were chosen.
pub(crate) enum Mode {
    /// Neither `subscribe` nor `assign` yet.
    None,
    /// Group-managed.
    Group {
        handle: GroupHandle,
        topics: Vec<String>,
        pattern: Option<regex::Regex>,
    },
    /// Assigned by hand; commits (with `group.id`) are standalone.
    Manual,
}

enum Woke {
    Fetch(Joined),
    Group(Option<krust_group::GroupEvent>),
    RevokeCommitted(Result<(), ConsumerError>),
    AutoCommitted(Result<(), ConsumerError>),
    Left,
    Timer,
}

/// Offsets and lag of one partition, as this consumer sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionLag {
    /// The next offset to hand out (`None` until known).
    pub position: Option<i64>,
    /// The high watermark from the last fetch response.
    pub high_watermark: Option<i64>,
    /// The last stable offset from the last fetch response.
    pub last_stable_offset: Option<i64>,
    /// The log start offset from the last fetch response.
    pub log_start_offset: Option<i64>,
    /// High watermark (last stable offset under read_committed) minus
    /// position.
    pub lag: Option<i64>,
    /// The last offset this consumer committed.
    pub committed: Option<i64>,
    /// Lag in time: how old the next record to hand out is (now minus its
    /// timestamp), zero when caught up, `None` when not known (nothing
    /// prefetched yet, or records without timestamps).
    pub behind: Option<Duration>,
    /// Explicit acks: the records handed out from the first unacked one on
    /// (acked or not), what fills `max.unacked.records.per.partition`; the
    /// partition is handed out only while this is below it. 0 with
    /// implicit acks.
    pub unacked: usize,
    /// Explicit acks: records were handed out and never acked, and every
    /// one of them (and each `AckHandle`) was dropped, so no ack can come
    /// any more. Once `unacked` reaches the window the partition is held
    /// back for good: only a `seek` (or losing the partition) moves it.
    /// A sign of an application that drops records without acking them.
    pub acks_lost: bool,
}

/// A Kafka consumer (see the module documentation).
pub struct Consumer {
    pub(crate) cfg: ConsumerConfig,
    pub(crate) pool: Pool,
    pub(crate) retry: RetryPolicy,
    pub(crate) mode: Mode,
    pub(crate) parts: BTreeMap<TopicPartition, PartState>,
    /// Fetches, validations and the metadata refreshes they need.
    pub(crate) fetcher: Fetcher,
    pub(crate) progress: Arc<Notify>,
    /// In a mutex only so that `Consumer` is `Sync` (futures holding `&Consumer` are `Send`); always reached through `&mut`.
    pub(crate) listener: Option<std::sync::Mutex<Box<dyn RebalanceListener>>>,
    pub(crate) next_auto_commit: Instant,
    pub(crate) rotation: usize,
    pub(crate) fatal: Option<ConsumerError>,
    pub(crate) next_pattern_check: Instant,
    /// The revoke in progress (see `revoking`): resumed by every poll.
    pub(crate) revoking: Option<Revoking>,
    /// The LeaveGroup of a member replaced after a pattern change.
    pub(crate) leaving: Option<Parked<()>>,
    /// The failed commit of the revoke `close` made, for it to return.
    pub(crate) revoke_error: Option<ConsumerError>,
    /// The auto-commit in flight (see `offsets`): its result is taken by
    /// the poll or wait it ends in.
    pub(crate) auto_commit: Option<AutoCommit>,
    /// The order of this consumer's commits.
    pub(crate) commits: CommitChain,
    /// Its metrics (nothing without the `metrics` feature).
    pub(crate) metrics: ConsumerMetrics,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("config", &self.cfg)
            .field("assignment", &self.parts.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Consumer {
    /// Connect to the bootstrap servers (within `bootstrap.timeout.ms`;
    /// the error names the addresses and the cause).
    pub async fn new(cfg: ConsumerConfig) -> Result<Consumer, ConsumerError> {
        let backoff = Backoff {
            initial: cfg.retry_backoff,
            max: cfg.retry_backoff_max.max(cfg.retry_backoff),
            ..Backoff::default()
        };
        let retry = RetryPolicy {
            backoff,
            deadline: cfg.default_api_timeout,
        };
        let pool = Pool::bootstrap(PoolConfig {
            bootstrap: cfg.bootstrap_servers.clone(),
            connection: ConnectionConfig {
                client_id: Some(cfg.client_id.clone()),
                // Every request's own timeout; a Fetch adds the
                // fetch.max.wait.ms the broker may hold it (fetch/mod.rs).
                request_timeout: cfg.request_timeout,
                security: cfg.security.resolve()?,
                ..ConnectionConfig::default()
            },
            bootstrap_timeout: cfg.bootstrap_timeout,
            metadata_max_age: cfg.metadata_max_age,
            retry,
            allow_auto_topic_creation: cfg.allow_auto_create_topics,
            ..PoolConfig::default()
        })
        .await?;
        let now = Instant::now();
        let progress = Arc::new(Notify::new());
        let metrics = ConsumerMetrics::new(&cfg);
        Ok(Consumer {
            fetcher: Fetcher::new(pool.clone(), &cfg, retry, progress.clone(), metrics.fetch()),
            next_auto_commit: now + cfg.auto_commit_interval,
            cfg,
            pool,
            retry,
            mode: Mode::None,
            parts: BTreeMap::new(),
            progress,
            listener: None,
            rotation: 0,
            fatal: None,
            next_pattern_check: now,
            revoking: None,
            leaving: None,
            revoke_error: None,
            auto_commit: None,
            commits: CommitChain::default(),
            metrics,
        })
    }

    /// The connection pool (shared with admin calls).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The configuration.
    pub fn config(&self) -> &ConsumerConfig {
        &self.cfg
    }

    /// Set the listener told of assigned, revoked and lost partitions.
    pub fn set_rebalance_listener(&mut self, listener: impl RebalanceListener + 'static) {
        self.listener = Some(std::sync::Mutex::new(Box::new(listener)));
    }

    /// Join `group.id` subscribed to `topics`; partitions arrive with the
    /// group's assignment during [`poll`](Self::poll).
    pub fn subscribe<S: AsRef<str>>(
        &mut self,
        topics: impl IntoIterator<Item = S>,
    ) -> Result<(), ConsumerError> {
        let topics: Vec<String> = topics.into_iter().map(|t| t.as_ref().to_owned()).collect();
        self.start_group(topics, None, None)
    }

    /// Join `group.id` subscribed to every topic whose whole name matches
    /// `pattern` (a regular expression); the topics are looked up again
    /// every `metadata.max.age.ms`, and a change rejoins the group.
    pub async fn subscribe_pattern(&mut self, pattern: &str) -> Result<(), ConsumerError> {
        let re = regex::Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|e| ConsumerError::Usage(format!("bad topic pattern `{pattern}`: {e}")))?;
        let topics = self.matching_topics(&re).await?;
        self.start_group(topics, Some(re), None)
    }

    /// Join `group.id` subscribed by the group coordinator to every topic
    /// whose whole name matches `pattern`, an RE2 regular expression the
    /// broker evaluates (KIP-848's `SubscribedTopicRegex`, Java's
    /// `subscribe(SubscriptionPattern)`). Needs `group.protocol=consumer`
    /// and Kafka 4.0 or later. The broker finds topics created later
    /// itself (Kafka looks again at most every 10 s) and assigns their
    /// partitions; this consumer polls no metadata for it. A pattern the
    /// broker cannot parse ends the membership with its
    /// INVALID_REGULAR_EXPRESSION, from [`poll`](Self::poll). One
    /// subscription per consumer, as with the other `subscribe` calls.
    pub fn subscribe_regex(&mut self, pattern: &str) -> Result<(), ConsumerError> {
        if self.cfg.group_protocol != krust_group::GroupProtocol::Consumer {
            return Err(ConsumerError::Usage(format!(
                "subscribe_regex(`{pattern}`): a pattern the broker evaluates needs \
                 group.protocol=consumer; with the classic protocol use subscribe_pattern"
            )));
        }
        if !matches!(self.mode, Mode::None) {
            return Err(ConsumerError::Usage(
                "subscribe_regex after subscribe or assign: use a second consumer".into(),
            ));
        }
        self.start_group(Vec::new(), None, Some(pattern.to_owned()))
    }

    /// Consume exactly these partitions, without a group (commits, if
    /// `group.id` is set, are made outside any generation).
    pub fn assign(
        &mut self,
        partitions: impl IntoIterator<Item = TopicPartition>,
    ) -> Result<(), ConsumerError> {
        if matches!(self.mode, Mode::Group { .. }) {
            return Err(ConsumerError::Usage(
                "assign after subscribe: use a second consumer or unsubscribe".into(),
            ));
        }
        let wanted: BTreeSet<TopicPartition> = partitions.into_iter().collect();
        self.parts.retain(|tp, _| wanted.contains(tp));
        for tp in wanted {
            let (progress, metrics) = (&self.progress, &self.metrics);
            self.parts
                .entry(tp)
                .or_insert_with_key(|tp| PartState::new(progress, metrics.partition(tp)));
        }
        self.mode = Mode::Manual;
        Ok(())
    }

    /// Every partition of `topic` (from the cluster metadata).
    pub async fn partitions_for(&self, topic: &str) -> Result<Vec<i32>, ConsumerError> {
        let md = self.pool.refresh_metadata(&[topic]).await?;
        let info = md
            .topic(topic)
            .filter(|t| t.error.is_ok() && !t.partitions.is_empty());
        match info {
            Some(t) => Ok(t.partitions.iter().map(|p| p.partition).collect()),
            None => Err(ConsumerError::Topic {
                topic: topic.to_owned(),
                code: md
                    .topic(topic)
                    .map(|t| t.error)
                    .filter(|c| !c.is_ok())
                    .unwrap_or(krust_codec::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
            }),
        }
    }

    /// The partitions this consumer holds now.
    pub fn assignment(&self) -> BTreeSet<TopicPartition> {
        self.parts.keys().cloned().collect()
    }

    /// The next offset to hand out for `tp` (`None`: not assigned, or not
    /// initialised yet).
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.parts.get(tp)?.position
    }

    /// Offsets and lag of every assigned partition.
    pub fn lag(&self) -> BTreeMap<TopicPartition, PartitionLag> {
        let rc = self.cfg.isolation_level() == IsolationLevel::ReadCommitted;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        self.parts
            .iter()
            .map(|(tp, p)| {
                (
                    tp.clone(),
                    PartitionLag {
                        position: p.position,
                        high_watermark: p.high_watermark,
                        last_stable_offset: p.last_stable_offset,
                        log_start_offset: p.log_start_offset,
                        lag: p.lag(rc),
                        committed: p.committed,
                        behind: p.behind(rc, now_ms),
                        unacked: p.acks.outstanding(),
                        acks_lost: p.acks.acks_lost(),
                    },
                )
            })
            .collect()
    }

    /// Stop fetching and handing out records of `partitions` until
    /// [`resume`](Self::resume). Their positions stay; what was prefetched
    /// and not handed out is dropped and fetched again on resume, so a
    /// paused partition holds no memory (its records are zero-copy slices
    /// of a whole fetch response, which they would keep alive).
    pub fn pause(&mut self, partitions: &[TopicPartition]) -> Result<(), ConsumerError> {
        self.set_paused(partitions, true)
    }

    /// Undo [`pause`](Self::pause).
    pub fn resume(&mut self, partitions: &[TopicPartition]) -> Result<(), ConsumerError> {
        self.set_paused(partitions, false)
    }

    /// The partitions paused now.
    pub fn paused(&self) -> BTreeSet<TopicPartition> {
        self.parts
            .iter()
            .filter(|(_, p)| p.paused)
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    fn set_paused(
        &mut self,
        partitions: &[TopicPartition],
        paused: bool,
    ) -> Result<(), ConsumerError> {
        self.check_assigned(partitions)?;
        for tp in partitions {
            if let Some(p) = self.parts.get_mut(tp) {
                p.pause(paused);
            }
        }
        Ok(())
    }

    pub(crate) fn check_assigned(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<(), ConsumerError> {
        let missing: Vec<TopicPartition> = partitions
            .iter()
            .filter(|tp| !self.parts.contains_key(*tp))
            .cloned()
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ConsumerError::NotAssigned {
                partitions: missing,
            })
        }
    }

    /// Wait up to `timeout` for records; returns at most
    /// `max.poll.records` of them (an empty batch when none came).
    ///
    /// Cancel-safe (see the module documentation): a poll dropped at any
    /// await has handed out no record, loses no group event, and leaves a
    /// revoke it was in (waiting for acks, committing) to be finished by
    /// the next poll, which sends `revoke_done` once it is. What a dropped
    /// poll does not finish: a lookup of the pattern's topics in flight is
    /// made again. Fetches, position lookups and an auto-commit in flight
    /// go on with the next poll: `poll` waits for none of them beyond its
    /// timeout, even when no broker answers.
    ///
    /// Polling is also when the consumer does its bookkeeping: records
    /// handed out by the previous poll count as processed (implicit acks),
    /// auto-commit runs when its interval passed, rebalance events reach
    /// the listener, and the lookups of new partitions' positions start.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>, ConsumerError> {
        if let Some(e) = &self.fatal {
            return Err(e.clone());
        }
        let deadline = Instant::now() + timeout;
        self.metrics.polled();
        if let Mode::Group { handle, .. } = &self.mode {
            handle.poll();
        }
        for p in self.parts.values_mut() {
            p.consumed = p.position;
        }
        loop {
            self.step_group().await?;
            self.maybe_recheck_pattern().await?;
            // Not while a revoke commits: an auto-commit landing after it
            // would move the revoked partitions' offsets back.
            if !self.is_revoking() {
                self.maybe_auto_commit().await;
            }
            self.fetcher.look_up_positions(&mut self.parts)?;
            self.fetcher.refresh_if_wanted(&self.parts);
            // From here to the return nothing awaits: records taken from
            // the buffers are always returned.
            self.fetcher.collect(&mut self.parts)?;
            let out = hand_out(
                &mut self.parts,
                self.cfg.max_poll_records,
                self.rotation,
                self.cfg.ack_mode,
                self.cfg.max_unacked_records_per_partition,
            );
            self.rotation = self.rotation.wrapping_add(1);
            self.metrics.lag(&self.parts, self.cfg.isolation_level());
            self.fetcher.send(&mut self.parts);
            if !out.is_empty() {
                return Ok(out);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(out);
            }
            self.wait(deadline, true).await?;
        }
    }

    /// Wait for whatever can change what poll returns: a fetch finishing,
    /// a group event, the revoke's commit or acks, an ack opening a full
    /// ack window, a backoff or the auto-commit interval passing. Every
    /// branch is cancel-safe and what it wakes for is applied without an
    /// await. `polling`: called by `poll` right after it found nothing to
    /// hand out (so records it could hand out now were opened by an ack).
    pub(crate) async fn wait(
        &mut self,
        deadline: Instant,
        polling: bool,
    ) -> Result<(), ConsumerError> {
        let mut until = deadline;
        if self.cfg.enable_auto_commit && self.has_group() {
            until = until.min(self.next_auto_commit);
        }
        if let Some(b) = self.fetcher.next_backoff_end() {
            until = until.min(b);
        }
        if self.fetcher.wants_metadata() || self.parts.values().any(|p| p.position.is_none()) {
            until = until.min(Instant::now() + self.cfg.retry_backoff);
        }
        // Registered before looking at the acks, so one in between is not
        // missed.
        let progress = Arc::clone(&self.progress);
        let mut acked = std::pin::pin!(progress.notified());
        acked.as_mut().enable();
        let revoke_acks = self.revoke_waits_for_acks();
        if let Some(d) = revoke_acks {
            // Settled acks let the revoke commit, unless an auto-commit is
            // still in flight: its end (a branch below) wakes this wait.
            if self.revoke_acks_settled() && self.auto_commit.is_none() {
                return Ok(());
            }
            until = until.min(d);
        }
        let (mode, window) = (
            self.cfg.ack_mode,
            self.cfg.max_unacked_records_per_partition,
        );
        if polling && handable(&self.parts, mode, window) {
            return Ok(());
        }
        let acks_wanted = revoke_acks.is_some() || window_blocked(&self.parts, mode, window);
        let sleep = tokio::time::sleep_until(until.into());
        let fetching = self.fetcher.busy();
        let events = !self.is_revoking();
        let committing = self.revoke_commit_mut().is_some();
        let leaving = self.leaving.is_some();
        let auto_committing = self.auto_commit.is_some();
        let Consumer {
            fetcher,
            mode,
            revoking,
            leaving: left,
            auto_commit,
            ..
        } = self;
        let event = async {
            match mode {
                Mode::Group { handle, .. } => handle.next_event().await,
                _ => std::future::pending().await,
            }
        };
        let commit =
            std::future::poll_fn(
                |cx| match revoking.as_mut().and_then(Revoking::commit_mut) {
                    Some(f) => f.poll(cx),
                    None => std::task::Poll::Pending,
                },
            );
        let leave = std::future::poll_fn(|cx| match left.as_mut() {
            Some(f) => f.poll(cx),
            None => std::task::Poll::Pending,
        });
        let auto = std::future::poll_fn(|cx| match auto_commit.as_mut() {
            Some(a) => a.commit.poll(cx),
            None => std::task::Poll::Pending,
        });
        let woke = tokio::select! {
            Some(done) = fetcher.join_next(), if fetching => Woke::Fetch(done),
            ev = event, if events => Woke::Group(ev),
            r = commit, if committing => Woke::RevokeCommitted(r),
            () = leave, if leaving => Woke::Left,
            r = auto, if auto_committing => Woke::AutoCommitted(r),
            () = &mut acked, if acks_wanted => Woke::Timer,
            () = sleep => Woke::Timer,
        };
        match woke {
            Woke::Fetch(done) => self.fetcher.joined(done, &mut self.parts)?,
            Woke::Group(ev) => self.on_group_event(ev)?,
            Woke::RevokeCommitted(r) => self.revoke_committed(r),
            Woke::Left => self.leaving = None,
            Woke::AutoCommitted(r) => self.auto_committed(r),
            Woke::Timer => {}
        }
        Ok(())
    }

    /// A `Stream` of records (each `poll` batch handed out one by one).
    /// Dropping the stream gives the records of its last batch that it had
    /// not yielded back to the consumer: the next `poll` (or stream)
    /// starts with them, and nothing is committed past them.
    pub fn stream(
        &mut self,
    ) -> impl futures_core::Stream<Item = Result<ConsumerRecord, ConsumerError>> + '_ {
        crate::stream::RecordStream::new(self)
    }

    /// Commit the committable offset of every partition this consumer
    /// owns (positions, or acked prefixes with explicit acks), and wait.
    pub async fn commit(&mut self) -> Result<(), ConsumerError> {
        // The chain orders the commits (see `commits`); these waits take
        // the results of an auto-commit and a revoke's commit in flight
        // first, so the committed marks and the revoke step are up to date
        // before what to commit is worked out.
        self.finish_auto_commit().await;
        while let Some(f) = self.revoke_commit_mut() {
            let r = std::future::poll_fn(|cx| f.poll(cx)).await;
            self.revoke_committed(r);
        }
        let offsets = self.committable(None);
        self.commit_offsets(offsets).await
    }

    /// Commit the committable offsets without waiting here. The commit
    /// runs as a task of its own from now on, in order: it sends nothing
    /// before every commit this consumer started before it (an auto-commit
    /// in flight, a revoke's) has ended, and every later one waits for it,
    /// so commits land in the order they were made and the group's offsets
    /// never move back. The returned future (`'static`) gives its result;
    /// dropping it does not cancel the commit.
    pub fn commit_async(
        &mut self,
    ) -> impl std::future::Future<Output = Result<(), ConsumerError>> + Send + 'static + use<> {
        let offsets = self.committable(None);
        self.commit_future(offsets, None)
    }

    /// Give back records a dropped stream had not yielded (see
    /// `parts::give_back`).
    pub(crate) fn give_back(&mut self, records: impl IntoIterator<Item = ConsumerRecord>) {
        give_back(&mut self.parts, records);
    }

    pub(crate) fn has_group(&self) -> bool {
        self.cfg.group_id.is_some() && !matches!(self.mode, Mode::None)
    }

    /// The committable offset of every owned partition that moved since
    /// this consumer last committed it; `upto_poll` uses the positions of
    /// the last poll (what auto-commit may commit) instead of now.
    pub(crate) fn committable(
        &self,
        upto_poll: Option<()>,
    ) -> BTreeMap<TopicPartition, OffsetAndMetadata> {
        self.parts
            .iter()
            .filter_map(|(tp, p)| {
                let upto = if upto_poll.is_some() {
                    p.consumed
                } else {
                    p.position
                };
                let m = self.offset_to_commit(p, upto)?;
                if p.committed == Some(m.offset) {
                    return None;
                }
                Some((tp.clone(), m))
            })
            .collect()
    }

    /// What to commit for `p` (implicit acks: `upto`; explicit: the end of
    /// its acked prefix), with the leader epoch when it is the epoch of the
    /// record before that offset.
    pub(crate) fn offset_to_commit(
        &self,
        p: &PartState,
        upto: Option<i64>,
    ) -> Option<OffsetAndMetadata> {
        let mode = self.cfg.ack_mode;
        let o = p.committable(mode, upto)?;
        let mut m = OffsetAndMetadata::new(o);
        if mode == AckMode::Implicit || Some(o) == p.position {
            m.leader_epoch = p.leader_epoch;
        }
        Some(m)
    }
}
