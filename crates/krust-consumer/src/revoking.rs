//! Letting partitions go, as a resumable step: revoke is safe by default
//! (docs/ARCHITECTURE.md, "Offset semantics"): nothing more of the
//! partitions is fetched or handed out, explicit acks are awaited up to the
//! deadline (or until no ack handle of them is left: records dropped
//! unacked are not in flight), the listener may commit, the committable
//! offsets are committed (explicit acks always, implicit positions with
//! `enable.auto.commit`), and only then are the partitions dropped and, for
//! the group's revoke, `revoke_done` sent (exactly once). `close()` lets
//! every partition go through the same step before it leaves the group.
//!
//! Cancel safety (the invariant `poll` relies on): a revoke is a value on
//! the consumer ([`Revoking`]), never an `async` call in progress. Starting
//! one is synchronous; each phase is entered by a synchronous step; the one
//! thing awaited, the commit, is a `'static` future kept in the phase and
//! polled by whichever poll comes next. A poll dropped at any await leaves
//! the revoke where it was, and the next poll drives it on before reading
//! another group event.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use krust_group::{OffsetAndMetadata, TopicPartition};

use crate::config::AckMode;
use crate::consumer::{Consumer, Mode};
use crate::error::ConsumerError;
use crate::rebalance::Revoke;

/// A `'static` future kept on the consumer between polls. In a mutex only
/// so that `Consumer` stays `Sync`; always reached through `&mut`.
pub(crate) struct Parked<T>(std::sync::Mutex<Pin<Box<dyn Future<Output = T> + Send>>>);

impl<T> Parked<T> {
    pub(crate) fn new(f: impl Future<Output = T> + Send + 'static) -> Self {
        Parked(std::sync::Mutex::new(Box::pin(f)))
    }

    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<T> {
        let f = self.0.get_mut().unwrap_or_else(|e| e.into_inner());
        f.as_mut().poll(cx)
    }

    /// Poll once without waiting.
    pub(crate) async fn try_finish(&mut self) -> Option<T> {
        std::future::poll_fn(|cx| {
            Poll::Ready(match self.poll(cx) {
                Poll::Ready(v) => Some(v),
                Poll::Pending => None,
            })
        })
        .await
    }
}

/// Who asked for the partitions to go, which says what follows.
pub(crate) enum Cause {
    /// The group's `Revoked` event: `revoke_done` follows.
    Group,
    /// The topics matching a pattern subscription changed: the member
    /// leaves and a new one joins with these topics.
    Resubscribe {
        topics: Vec<String>,
        pattern: regex::Regex,
    },
    /// `close()`: the caller leaves the group after.
    Close,
}

enum Phase {
    /// Waiting (explicit acks) until every record handed out is acked, or
    /// the deadline.
    AwaitAcks,
    /// The commit of the revoked partitions, in flight.
    Commit(Parked<Result<(), ConsumerError>>),
}

/// A revoke in progress (see the module documentation).
pub(crate) struct Revoking {
    partitions: BTreeSet<TopicPartition>,
    deadline: Instant,
    cause: Cause,
    phase: Phase,
}

impl Revoking {
    pub(crate) fn commit_mut(&mut self) -> Option<&mut Parked<Result<(), ConsumerError>>> {
        match &mut self.phase {
            Phase::Commit(f) => Some(f),
            Phase::AwaitAcks => None,
        }
    }
}

impl Consumer {
    /// How long the application has to finish partitions it lets go of on
    /// its own (the group's revoke carries the group's deadline).
    pub(crate) fn revoke_budget(&self) -> Duration {
        self.cfg.max_poll_interval.min(Duration::from_secs(30))
    }

    /// Start letting `partitions` go: from now nothing more of them is
    /// fetched or handed out. Synchronous; [`drive_revoke`](Self::drive_revoke)
    /// takes it on.
    pub(crate) fn start_revoke(
        &mut self,
        partitions: BTreeSet<TopicPartition>,
        deadline: Instant,
        cause: Cause,
    ) {
        tracing::info!(?partitions, "revoking");
        // Partitions assigned by hand are not revoked, only let go.
        if matches!(self.mode, Mode::Group { .. }) {
            self.metrics.revoked(partitions.len());
        }
        for tp in &partitions {
            if let Some(p) = self.parts.get_mut(tp) {
                p.revoking = true;
                p.drop_fetched();
            }
        }
        self.revoking = Some(Revoking {
            partitions,
            deadline,
            cause,
            phase: Phase::AwaitAcks,
        });
    }

    pub(crate) fn is_revoking(&self) -> bool {
        self.revoking.is_some()
    }

    /// Whether the revoke waits for acks (what can wake it) and until when.
    pub(crate) fn revoke_waits_for_acks(&self) -> Option<Instant> {
        match &self.revoking {
            Some(r) if matches!(r.phase, Phase::AwaitAcks) => Some(r.deadline),
            _ => None,
        }
    }

    /// Explicit acks: every record handed out of the revoked partitions
    /// was acked, or dropped unacked (no handle is left to ack it).
    pub(crate) fn revoke_acks_settled(&self) -> bool {
        let Some(r) = &self.revoking else {
            return true;
        };
        self.cfg.ack_mode == AckMode::Implicit
            || r.partitions
                .iter()
                .filter_map(|tp| self.parts.get(tp))
                .all(|p| p.acks.nothing_to_wait_for())
    }

    /// Take the revoke in progress as far as it goes without waiting.
    pub(crate) async fn drive_revoke(&mut self) {
        loop {
            let Some(r) = self.revoking.as_mut() else {
                return;
            };
            match &mut r.phase {
                Phase::Commit(fut) => match fut.try_finish().await {
                    Some(result) => self.revoke_committed(result),
                    None => return,
                },
                Phase::AwaitAcks => {
                    let late = Instant::now() >= r.deadline;
                    // An auto-commit in flight (of older offsets) lands
                    // before the revoke's commit.
                    if self.auto_commit.is_some() {
                        self.drive_auto_commit().await;
                        if self.auto_commit.is_some() {
                            return;
                        }
                        continue;
                    }
                    if !self.revoke_acks_settled() {
                        if !late {
                            return;
                        }
                        tracing::warn!("revoke deadline passed with records not acked");
                    }
                    self.revoke_commit();
                }
            }
        }
    }

    /// The commit of the revoke in flight.
    pub(crate) fn revoke_commit_mut(&mut self) -> Option<&mut Parked<Result<(), ConsumerError>>> {
        self.revoking.as_mut().and_then(Revoking::commit_mut)
    }

    /// The acks are in (or the deadline passed): tell the listener, then
    /// commit or finish.
    fn revoke_commit(&mut self) {
        let Some(r) = self.revoking.as_ref() else {
            return;
        };
        let mut committable: BTreeMap<TopicPartition, OffsetAndMetadata> = BTreeMap::new();
        let mut unchanged = BTreeSet::new();
        for tp in &r.partitions {
            let Some(p) = self.parts.get(tp) else {
                continue;
            };
            if let Some(o) = self.offset_to_commit(p, p.position) {
                if p.committed == Some(o.offset) {
                    unchanged.insert(tp.clone());
                }
                committable.insert(tp.clone(), o);
            }
        }
        let mut revoke = Revoke {
            partitions: r.partitions.clone(),
            committable,
            unchanged,
            commits: BTreeMap::new(),
            deadline: r.deadline,
        };
        let deadline = r.deadline;
        // Partitions assigned by hand have no listener to tell (as in Java).
        if matches!(self.mode, Mode::Group { .. })
            && let Some(l) = self.listener()
        {
            l.on_revoked(&mut revoke);
        }
        // Explicit acks say what was processed, so their prefix is always
        // committed before the partitions go; implicit positions only with
        // auto-commit, as in Java.
        if self.cfg.enable_auto_commit || self.cfg.ack_mode == AckMode::Explicit {
            revoke.commit_all();
        }
        if revoke.commits.is_empty() {
            self.finish_revoke();
            return;
        }
        // Even when the acks took the whole budget, what was acked is
        // committed: the commit gets at least one request's time.
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(self.cfg.request_timeout);
        let fut = Parked::new(self.commit_future(
            revoke.commits,
            Some((left, "the commit of revoked partitions")),
        ));
        if let Some(r) = self.revoking.as_mut() {
            r.phase = Phase::Commit(fut);
        }
    }

    /// The revoke's commit ended.
    pub(crate) fn revoke_committed(&mut self, result: Result<(), ConsumerError>) {
        if let Err(e) = result {
            tracing::warn!(error = %e, "commit of revoked partitions failed");
            match self.revoking.as_ref().map(|r| &r.cause) {
                // close() returns it.
                Some(Cause::Close) => self.revoke_error = Some(e),
                _ => {
                    if let Some(l) = self.listener() {
                        l.on_commit_failed(&e);
                    }
                }
            }
        }
        self.finish_revoke();
    }

    /// Drop the partitions and do what the cause says follows; no await
    /// from here to the end, so it happens exactly once.
    fn finish_revoke(&mut self) {
        let Some(r) = self.revoking.take() else {
            return;
        };
        for tp in &r.partitions {
            self.parts.remove(tp);
        }
        match r.cause {
            Cause::Group => {
                if let Mode::Group { handle, .. } = &self.mode {
                    handle.revoke_done();
                }
            }
            Cause::Resubscribe { topics, pattern } => {
                tracing::info!(?topics, "topics matching the pattern changed: rejoining");
                let old = std::mem::replace(&mut self.mode, Mode::None);
                if let Mode::Group { handle, .. } = old {
                    let bound = self.cfg.default_api_timeout;
                    // Kept on the consumer and polled by the next polls
                    // (dropping the consumer drops it: a crash, as for any
                    // member).
                    self.leaving = Some(Parked::new(async move {
                        let _ = handle.close(bound).await;
                    }));
                }
                self.parts.clear();
                if let Err(e) = self.start_group(topics, Some(pattern), None) {
                    self.fatal.get_or_insert(e);
                }
            }
            Cause::Close => {}
        }
    }

    /// Leave the group cleanly, each step within `default.api.timeout.ms`:
    /// finish a revoke a poll left in progress, let every partition go as
    /// a revoke does (the listener's `on_revoked`, explicit acks awaited up
    /// to the revoke budget, then committed: the acked prefix with explicit
    /// acks always, implicit positions with `enable.auto.commit`, as in
    /// Java), then LeaveGroup. With partitions assigned by hand the same
    /// commit is made, without a listener call. Returns the commit's error
    /// if it failed (the consumer still leaves).
    pub async fn close(mut self) -> Result<(), ConsumerError> {
        let bound = self.cfg.default_api_timeout;
        let mut result = Ok(());
        if self.has_group() && self.fatal.is_none() {
            result = match tokio::time::timeout(bound, self.let_everything_go()).await {
                Ok(r) => r,
                Err(_) => Err(ConsumerError::Timeout {
                    what: "the commit on close",
                    timeout: bound,
                }),
            };
        }
        self.fetcher.abort_all();
        if let Some(l) = self.leaving.as_mut() {
            let _ = tokio::time::timeout(bound, std::future::poll_fn(|cx| l.poll(cx))).await;
        }
        if let Mode::Group { handle, .. } = std::mem::replace(&mut self.mode, Mode::None) {
            handle
                .close(bound)
                .await
                .map_err(|_| ConsumerError::Timeout {
                    what: "leaving the group",
                    timeout: bound,
                })?;
        }
        result
    }

    /// `close`'s revoke of everything, after the one in progress.
    async fn let_everything_go(&mut self) -> Result<(), ConsumerError> {
        self.finish_revoking().await?;
        let all: BTreeSet<TopicPartition> = self.parts.keys().cloned().collect();
        let deadline = Instant::now() + self.revoke_budget().min(self.cfg.default_api_timeout);
        self.start_revoke(all, deadline, Cause::Close);
        self.finish_revoking().await?;
        match self.revoke_error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Drive the revoke in progress to its end (its own deadline bounds it).
    async fn finish_revoking(&mut self) -> Result<(), ConsumerError> {
        loop {
            self.drive_revoke().await;
            let Some(d) = self.revoke_waits_for_acks().or_else(|| {
                self.is_revoking()
                    .then(|| Instant::now() + self.cfg.default_api_timeout)
            }) else {
                return Ok(());
            };
            self.wait(d, false).await?;
        }
    }
}
