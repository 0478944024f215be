//! The fetcher: which partitions to fetch from which broker, one Fetch in
//! flight per broker (each with its KIP-227 session), what a finished fetch
//! means for each partition, the metadata refreshes fetching needs, and the
//! KIP-320 validation of positions after a leader change (`validate`), and
//! the lookups that give new partitions their positions (`positions`).
//! Memory stays bounded: a partition is fetched when nothing of it is
//! buffered, or ahead of its buffer when no other response waits behind
//! it (`PartState::wants_fetch`), so at most two responses per broker
//! (`fetch.max.bytes` each) wait to be handed out, and a paused partition
//! keeps nothing fetched (`PartState::pause`).
//!
//! What is in flight is recorded once, in `jobs`: a partition is being
//! fetched or validated while a job names it (docs/ARCHITECTURE.md, "Who
//! owns which state").

mod positions;
mod validate;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use krust_codec::{ApiKey, ErrorCode};
use krust_group::{OffsetError, TopicPartition};
use krust_net::{Pool, RetryPolicy};
use tokio::sync::Notify;
use tokio::task::{Id, JoinError, JoinSet};

use crate::config::{AutoOffsetReset, ConsumerConfig};
use crate::error::ConsumerError;
use crate::fetch::{
    self, FetchConfig, FetchSession, FetchTarget, Fetched, IsolationLevel, PartitionFetchError,
};
use crate::metrics::FetchMetrics;
use crate::parts::PartState;

pub(crate) use positions::lookup;
use positions::{Wanted, apply_committed, apply_reset, reset_spec};
use validate::{Answer, Asked};

/// A finished task of the fetcher, as `join_next` gives it.
pub(crate) type Joined = Result<(Id, Done), JoinError>;

/// What a task of the fetcher hands back.
pub(crate) enum Done {
    /// A Fetch ended: the session goes back to the fetcher.
    Fetch {
        session: FetchSession,
        result: Result<Vec<Fetched>, krust_net::Error>,
    },
    /// An OffsetForLeaderEpoch ended.
    Validate(Result<Vec<Answer>, krust_net::Error>),
    /// A metadata refresh ended.
    Refresh(Result<(), krust_net::Error>),
    /// A committed-offsets lookup ended.
    Committed(Result<positions::Committed, OffsetError>),
    /// An offset reset's lookup ended.
    Reset(Result<positions::Reset, krust_net::Error>),
}

/// What a running task is doing: the one record of what is in flight.
enum Job {
    Fetch {
        broker: i32,
        asked: Vec<TopicPartition>,
    },
    Validate {
        broker: i32,
        asked: Vec<Asked>,
    },
    Refresh,
    Committed {
        asked: Vec<Wanted>,
    },
    Reset {
        asked: Vec<Wanted>,
    },
}

impl Job {
    /// The partitions this job is for.
    fn partitions(&self) -> impl Iterator<Item = &TopicPartition> + '_ {
        let (fetched, validated, looked_up): (&[TopicPartition], &[Asked], &[Wanted]) = match self {
            Job::Fetch { asked, .. } => (asked, &[], &[]),
            Job::Validate { asked, .. } => (&[], asked, &[]),
            Job::Committed { asked } | Job::Reset { asked } => (&[], &[], asked),
            Job::Refresh => (&[], &[], &[]),
        };
        fetched
            .iter()
            .chain(validated.iter().map(|a| &a.tp))
            .chain(looked_up.iter().map(|w| &w.0))
    }
}

/// Codes after which the partition's leader must be looked up again.
pub(super) fn leader_moved(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NOT_LEADER_OR_FOLLOWER
            | ErrorCode::FENCED_LEADER_EPOCH
            | ErrorCode::UNKNOWN_LEADER_EPOCH
            | ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
            | ErrorCode::LEADER_NOT_AVAILABLE
            | ErrorCode::REPLICA_NOT_AVAILABLE
            | ErrorCode::KAFKA_STORAGE_ERROR
            | ErrorCode::OFFSET_NOT_AVAILABLE
            | ErrorCode::UNKNOWN_TOPIC_ID
            | ErrorCode::INCONSISTENT_TOPIC_ID
    )
}

/// Refusals that no retry fixes.
fn unauthorized(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::TOPIC_AUTHORIZATION_FAILED | ErrorCode::CLUSTER_AUTHORIZATION_FAILED
    )
}

/// The consumer's fetcher (see the module documentation). Its tasks run
/// on the runtime; the consumer takes their results in `poll` and applies
/// them to its partitions, which it passes in.
pub(crate) struct Fetcher {
    pool: Pool,
    cfg: FetchConfig,
    retry_backoff: Duration,
    reset: AutoOffsetReset,
    group: Option<String>,
    retry: RetryPolicy,
    progress: Arc<Notify>,
    tasks: JoinSet<Done>,
    jobs: HashMap<Id, Job>,
    sessions: HashMap<i32, FetchSession>,
    /// Brokers not sent a Fetch or a validation before these instants
    /// (after a failure, `retry.backoff.ms`).
    backoff: HashMap<i32, Instant>,
    /// No metadata refresh before this (one per `retry.backoff.ms`).
    refresh_after: Option<Instant>,
    metadata_wanted: bool,
    /// Fetch latency per broker (nothing without the `metrics` feature).
    metrics: FetchMetrics,
}

impl Fetcher {
    pub(crate) fn new(
        pool: Pool,
        cfg: &ConsumerConfig,
        retry: RetryPolicy,
        progress: Arc<Notify>,
        metrics: FetchMetrics,
    ) -> Fetcher {
        Fetcher {
            pool,
            cfg: cfg.fetch.clone(),
            retry_backoff: cfg.retry_backoff,
            reset: cfg.auto_offset_reset,
            group: cfg.group_id.clone(),
            retry,
            progress,
            tasks: JoinSet::new(),
            jobs: HashMap::new(),
            sessions: HashMap::new(),
            backoff: HashMap::new(),
            refresh_after: None,
            metadata_wanted: false,
            metrics,
        }
    }

    /// Whether a refresh is wanted and not yet made.
    pub(crate) fn wants_metadata(&self) -> bool {
        self.metadata_wanted
    }

    /// The earliest instant a backoff ends, for the consumer's wait.
    pub(crate) fn next_backoff_end(&self) -> Option<Instant> {
        self.backoff
            .values()
            .chain(&self.refresh_after)
            .min()
            .copied()
    }

    /// Whether some task is running (`join_next` then has something to
    /// wait for).
    pub(crate) fn busy(&self) -> bool {
        !self.tasks.is_empty()
    }

    /// The next task to finish (cancel-safe: a task not taken stays).
    pub(crate) fn join_next(&mut self) -> impl Future<Output = Option<Joined>> + '_ {
        self.tasks.join_next_with_id()
    }

    /// Stop every task (`close`).
    pub(crate) fn abort_all(&mut self) {
        self.tasks.abort_all();
    }

    /// Refresh the metadata when a fetch found a leader unknown or moved.
    ///
    /// The refresh runs as a task, as a Fetch does, and `poll` never waits
    /// for it: with every broker unreachable a refresh takes up to
    /// `default.api.timeout.ms` (each attempt up to `bootstrap.timeout.ms`
    /// bootstrapping again), and awaited in `poll` it made every `poll`
    /// last that long whatever its timeout (on Kafka 4.4.0, 8 polls of
    /// 200 ms in a 39 s outage). Its end wakes the consumer's wait like a
    /// Fetch's; a failed one is made again after `retry.backoff.ms`.
    pub(crate) fn refresh_if_wanted(&mut self, parts: &BTreeMap<TopicPartition, PartState>) {
        let now = Instant::now();
        self.refresh_after = self.refresh_after.filter(|t| *t > now);
        let refreshing = self.jobs.values().any(|j| matches!(j, Job::Refresh));
        if !self.metadata_wanted || refreshing || self.refresh_after.is_some() {
            return;
        }
        self.metadata_wanted = false;
        let topics: BTreeSet<String> = parts.keys().map(|tp| tp.topic.clone()).collect();
        let pool = self.pool.clone();
        let task = self.tasks.spawn(async move {
            let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
            Done::Refresh(pool.refresh_metadata(&topics).await.map(drop))
        });
        self.jobs.insert(task.id(), Job::Refresh);
    }

    /// Start the lookups that give partitions without a position one
    /// (see `positions`): their committed offsets, then for those without
    /// one (or reset after OFFSET_OUT_OF_RANGE) `auto.offset.reset`, which
    /// fails here when it is `none`. Neither is awaited.
    pub(crate) fn look_up_positions(
        &mut self,
        parts: &mut BTreeMap<TopicPartition, PartState>,
    ) -> Result<(), ConsumerError> {
        // One lookup of each kind at a time: a partition that starts to
        // wait while one is in flight is asked by the next one.
        let (mut committing, mut resetting) = (false, false);
        for job in self.jobs.values() {
            committing |= matches!(job, Job::Committed { .. });
            resetting |= matches!(job, Job::Reset { .. });
        }
        let waiting = |reset: bool| -> Vec<Wanted> {
            parts
                .iter()
                .filter(|(_, p)| p.position.is_none() && p.reset == reset)
                .map(|(tp, p)| (tp.clone(), p.incarnation))
                .collect()
        };
        let unknown = if committing {
            Vec::new()
        } else {
            waiting(false)
        };
        let to_reset = if resetting { Vec::new() } else { waiting(true) };
        if !unknown.is_empty() {
            match self.group.clone() {
                Some(group) => {
                    let (pool, retry, isolation) =
                        (self.pool.clone(), self.retry, self.cfg.isolation);
                    let tps: Vec<TopicPartition> = unknown.iter().map(|w| w.0.clone()).collect();
                    let task = self.tasks.spawn(async move {
                        Done::Committed(
                            positions::committed(&pool, &group, &tps, isolation, &retry).await,
                        )
                    });
                    self.jobs
                        .insert(task.id(), Job::Committed { asked: unknown });
                }
                // No group, no committed offsets: straight to the reset.
                None => {
                    for (tp, _) in &unknown {
                        if let Some(p) = parts.get_mut(tp) {
                            p.reset = true;
                        }
                    }
                }
            }
        }
        if !to_reset.is_empty() {
            let tps: Vec<TopicPartition> = to_reset.iter().map(|w| w.0.clone()).collect();
            let spec = reset_spec(self.reset, &tps)?;
            let (pool, retry, isolation) = (self.pool.clone(), self.retry, self.cfg.isolation);
            let task = self.tasks.spawn(async move {
                Done::Reset(positions::lookup(&pool, &tps, spec, isolation, &retry).await)
            });
            self.jobs.insert(task.id(), Job::Reset { asked: to_reset });
        }
        Ok(())
    }

    /// Send a Fetch to every broker that leads partitions wanting one and
    /// has none in flight, and an OffsetForLeaderEpoch for the positions
    /// that must be validated first.
    pub(crate) fn send(&mut self, parts: &mut BTreeMap<TopicPartition, PartState>) {
        let md = self.pool.cached_metadata();
        let now = Instant::now();
        self.backoff.retain(|_, until| *until > now);
        let read_committed = self.cfg.isolation == IsolationLevel::ReadCommitted;
        let busy: HashSet<&TopicPartition> = self.jobs.values().flat_map(Job::partitions).collect();
        let mut fetching: HashSet<i32> = HashSet::new();
        let mut validating: HashSet<i32> = HashSet::new();
        for job in self.jobs.values() {
            match job {
                Job::Fetch { broker, .. } => fetching.insert(*broker),
                Job::Validate { broker, .. } => validating.insert(*broker),
                Job::Refresh | Job::Committed { .. } | Job::Reset { .. } => false,
            };
        }
        let mut per_broker: BTreeMap<i32, Vec<FetchTarget>> = BTreeMap::new();
        let mut to_validate: BTreeMap<i32, Vec<Asked>> = BTreeMap::new();
        // Brokers some of whose partitions still have records to hand out.
        let mut draining: BTreeSet<i32> = BTreeSet::new();
        // Brokers with a wanted partition known to have records to fetch.
        let mut behind: BTreeSet<i32> = BTreeSet::new();
        for (tp, p) in parts.iter_mut() {
            let leader = md.leader(&tp.topic, tp.partition);
            if !p.paused && !p.buffer.is_empty() {
                draining.extend(leader.map(|(l, _)| l));
            }
            if !p.wants_fetch(read_committed) || busy.contains(tp) {
                continue;
            }
            let Some((leader, epoch)) = leader.filter(|(l, _)| *l >= 0) else {
                self.metadata_wanted = true;
                continue;
            };
            let Some(offset) = p.fetch_offset() else {
                continue;
            };
            // KIP-320, as Java's maybeValidatePosition: a position is
            // checked against each new leader before it is fetched there,
            // if the epoch of the record before it is known.
            if p.checked_leader.is_some_and(|c| c != (leader, epoch)) {
                p.validate |= p.leader_epoch.is_some();
            }
            p.checked_leader = Some((leader, epoch));
            // What validation checks is the position: it waits for the
            // buffer to drain, and nothing is fetched ahead meanwhile.
            if p.validate && !p.buffer.is_empty() {
                continue;
            }
            if self.backoff.contains_key(&leader) {
                continue;
            }
            if p.validate {
                match p.leader_epoch {
                    Some(record_epoch) if !validating.contains(&leader) => {
                        to_validate.entry(leader).or_default().push(Asked {
                            tp: tp.clone(),
                            offset,
                            epoch: record_epoch,
                            current: epoch,
                        });
                    }
                    Some(_) => {}
                    None => p.validate = false,
                }
                if p.validate {
                    continue;
                }
            }
            if !p.caught_up(read_committed) {
                behind.insert(leader);
            }
            if fetching.contains(&leader) {
                continue;
            }
            per_broker.entry(leader).or_default().push(FetchTarget {
                tp: tp.clone(),
                offset,
                // KIP-320: the epoch of the leader the metadata names, as
                // Java sends it (and ListOffsets does). Not the epoch of
                // the last record (`p.leader_epoch`, what commits carry):
                // after an election that one is older than the leader's,
                // and Kafka answers FENCED_LEADER_EPOCH to it however
                // often the metadata is refreshed.
                leader_epoch: (epoch >= 0).then_some(epoch),
            });
        }
        drop(busy);
        // A Fetch for caught-up partitions only is held by the broker for
        // fetch.max.wait.ms; sent while other partitions of the same broker
        // are still being handed out, it would keep them from being fetched
        // again when they drain (one Fetch per broker at a time). So it
        // waits until they drain, when one Fetch asks for all of them.
        per_broker.retain(|b, _| behind.contains(b) || !draining.contains(b));
        for (broker, targets) in per_broker {
            let mut session = self
                .sessions
                .remove(&broker)
                .unwrap_or_else(|| FetchSession::new(broker));
            let pool = self.pool.clone();
            let cfg = self.cfg.clone();
            let asked = targets.iter().map(|t| t.tp.clone()).collect();
            let latency = self.metrics.broker(broker);
            let task = self.tasks.spawn(async move {
                let result = fetch::fetch(&pool, &mut session, &targets, &cfg, &latency).await;
                Done::Fetch { session, result }
            });
            self.jobs.insert(task.id(), Job::Fetch { broker, asked });
        }
        for (broker, asked) in to_validate {
            let pool = self.pool.clone();
            let request = asked.clone();
            let task = self
                .tasks
                .spawn(async move { Done::Validate(validate::ask(&pool, broker, &request).await) });
            self.jobs.insert(task.id(), Job::Validate { broker, asked });
        }
    }

    /// Take every task that finished, without waiting.
    pub(crate) fn collect(
        &mut self,
        parts: &mut BTreeMap<TopicPartition, PartState>,
    ) -> Result<(), ConsumerError> {
        while let Some(done) = self.tasks.try_join_next_with_id() {
            self.joined(done, parts)?;
        }
        Ok(())
    }

    /// A task ended: apply its result. A task cannot panic by design; if
    /// one did, its job is forgotten (a Fetch's session with it, so the
    /// next one starts a new session) and its partitions are asked again.
    pub(crate) fn joined(
        &mut self,
        done: Joined,
        parts: &mut BTreeMap<TopicPartition, PartState>,
    ) -> Result<(), ConsumerError> {
        let (id, done) = match done {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "fetcher task failed");
                if let Some(Job::Refresh) = self.jobs.remove(&e.id()) {
                    self.metadata_wanted = true;
                }
                return Ok(());
            }
        };
        match (self.jobs.remove(&id), done) {
            (Some(Job::Fetch { broker, asked }), Done::Fetch { session, result }) => {
                self.sessions.insert(broker, session);
                self.fetched(broker, &asked, result, parts)
            }
            (Some(Job::Validate { broker, asked }), Done::Validate(result)) => {
                self.validated(broker, &asked, result, parts)
            }
            (_, Done::Refresh(result)) => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "metadata refresh for fetching failed");
                    self.metadata_wanted = true;
                }
                // At most one refresh per retry.backoff.ms, as when poll
                // waited for each one: a leader still unknown asks again
                // at once.
                self.refresh_after = Some(Instant::now() + self.retry_backoff);
                Ok(())
            }
            (Some(Job::Committed { asked }), Done::Committed(result)) => {
                apply_committed(parts, &asked, result)
            }
            (Some(Job::Reset { asked }), Done::Reset(result)) => {
                self.metadata_wanted |= apply_reset(parts, &asked, result, &self.progress)?;
                Ok(())
            }
            _ => {
                tracing::error!("fetcher task ended without its job");
                Ok(())
            }
        }
    }

    /// Back off from `broker` after a failed request.
    fn back_off(&mut self, broker: i32) {
        self.backoff
            .insert(broker, Instant::now() + self.retry_backoff);
    }

    /// A request to `broker` failed as a whole: nothing is lost, its
    /// partitions are asked again after a backoff (and a metadata refresh
    /// if the error says the metadata is stale); only a refusal that no
    /// retry fixes reaches the application.
    fn request_failed(&mut self, broker: i32, e: krust_net::Error) -> Result<(), ConsumerError> {
        self.pool.note_error(&e);
        self.metadata_wanted |= e.invalidates_metadata();
        self.back_off(broker);
        if e.code().is_some_and(unauthorized) {
            return Err(e.into());
        }
        Ok(())
    }

    /// A partition's leader moved or is not ready: refresh the metadata,
    /// back off from `broker`.
    fn leader_changed(&mut self, broker: i32) {
        self.pool.invalidate();
        self.metadata_wanted = true;
        self.back_off(broker);
    }

    /// Apply one finished fetch.
    fn fetched(
        &mut self,
        broker: i32,
        asked: &[TopicPartition],
        result: Result<Vec<Fetched>, krust_net::Error>,
        parts: &mut BTreeMap<TopicPartition, PartState>,
    ) -> Result<(), ConsumerError> {
        let fetched = match result {
            Ok(f) => f,
            // A failed request (or a request-level error code) loses
            // nothing: the response is dropped, the session restarts with
            // a full fetch, and the partitions are fetched again after a
            // backoff, as the Java client does. Only a refusal that
            // retrying cannot fix reaches the application.
            Err(e) => {
                tracing::debug!(broker, partitions = asked.len(), error = %e, "fetch failed; backing off");
                return self.request_failed(broker, e);
            }
        };
        let mut to_reset = Vec::new();
        for f in fetched {
            let Some(p) = parts.get_mut(&f.tp) else {
                continue;
            };
            match f.outcome {
                Ok(data) => {
                    p.accept(f.fetch_offset, data);
                }
                Err(_) if p.position != Some(f.fetch_offset) => {}
                Err(PartitionFetchError::Broker(code))
                    if code == ErrorCode::OFFSET_OUT_OF_RANGE =>
                {
                    to_reset.push(f.tp.clone());
                }
                Err(PartitionFetchError::Broker(code))
                    if leader_moved(code) || code.is_retriable() =>
                {
                    tracing::debug!(partition = %f.tp, %code, "fetch: refreshing metadata");
                    self.leader_changed(broker);
                }
                Err(PartitionFetchError::Broker(code)) => {
                    return Err(ConsumerError::Fetch {
                        api: ApiKey::Fetch,
                        code,
                        partition: f.tp,
                    });
                }
                Err(PartitionFetchError::Corrupt { offset, message }) => {
                    return Err(ConsumerError::Corrupt {
                        partition: f.tp,
                        offset,
                        message,
                    });
                }
            }
        }
        if !to_reset.is_empty() {
            if self.reset == AutoOffsetReset::None {
                return Err(ConsumerError::NoOffset {
                    partitions: to_reset,
                });
            }
            tracing::info!(partitions = ?to_reset, policy = ?self.reset, "offset out of range: resetting");
            for tp in to_reset {
                if let Some(p) = parts.get_mut(&tp) {
                    reset_by_policy(p);
                }
            }
        }
        Ok(())
    }
}

/// Forget the position: `auto.offset.reset` gives the next one (the
/// fetcher's `look_up_positions`).
pub(super) fn reset_by_policy(p: &mut PartState) {
    p.position = None;
    p.reset = true;
    p.validate = false;
    p.drop_fetched();
}
