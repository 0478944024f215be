//! Driving the fetcher: which partitions to fetch from which broker, one
//! Fetch in flight per broker (each with its KIP-227 session), and what a
//! finished fetch means for each partition. Memory stays bounded: a
//! partition is fetched only when nothing of it is buffered, so at most one
//! response per broker (`fetch.max.bytes`) waits to be handed out.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use krust_codec::{ApiKey, ErrorCode};
use krust_group::TopicPartition;
use krust_net::{Connection, Pool};

use crate::config::AutoOffsetReset;
use crate::consumer::Consumer;
use crate::error::ConsumerError;
use crate::fetch::{
    self, FetchConfig, FetchSession, FetchTarget, Fetched, IsolationLevel, PartitionFetchError,
};

/// What a task of the fetcher hands back.
pub(crate) enum FetchDone {
    /// A Fetch to one broker ended.
    Fetch(FetchEnd),
    /// A metadata refresh for fetching ended (see
    /// [`Consumer::refresh_if_wanted`]).
    Metadata(Result<(), krust_net::Error>),
}

/// What a fetch task hands back: its session and connection, what it
/// asked for, and the outcome.
pub(crate) struct FetchEnd {
    pub(crate) session: FetchSession,
    pub(crate) conn: Option<Connection>,
    pub(crate) asked: Vec<TopicPartition>,
    pub(crate) result: Result<Vec<Fetched>, krust_net::Error>,
}

/// The broker id under which the metadata refresh task is recorded in
/// `in_flight` (one refresh at a time) and its backoff in
/// `broker_backoff`: no broker has a negative id, and no Fetch is ever
/// sent to one (leaders below 0 are skipped).
const REFRESH: i32 = i32::MIN;

/// Codes after which the partition's leader must be looked up again.
fn leader_moved(code: ErrorCode) -> bool {
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

impl Consumer {
    /// Refresh the metadata when a fetch found a leader unknown or moved.
    ///
    /// The refresh runs as a task of the fetcher, as a Fetch does, and
    /// `poll` never waits for it: with every broker unreachable a refresh
    /// takes up to `default.api.timeout.ms` (each attempt up to
    /// `bootstrap.timeout.ms` bootstrapping again), and awaited here it
    /// made every `poll` last that long whatever its timeout (on Kafka
    /// 4.4.0, 8 polls of 200 ms in a 39 s outage). Its end wakes the
    /// consumer's wait like a Fetch's; a failed one is made again after
    /// `retry.backoff.ms`.
    pub(crate) async fn refresh_if_wanted(&mut self) {
        let refreshing = self.in_flight.values().any(|(b, _)| *b == REFRESH);
        let backing_off = self
            .broker_backoff
            .get(&REFRESH)
            .is_some_and(|until| *until > Instant::now());
        if !self.metadata_wanted || refreshing || backing_off {
            return;
        }
        self.metadata_wanted = false;
        let mut topics: Vec<String> = self.parts.keys().map(|tp| tp.topic.clone()).collect();
        topics.dedup();
        let pool = self.pool.clone();
        let task = self.fetches.spawn(async move {
            let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
            FetchDone::Metadata(pool.refresh_metadata(&topics).await.map(drop))
        });
        self.in_flight.insert(task.id(), (REFRESH, Vec::new()));
    }

    /// Send a Fetch to every broker that leads partitions wanting one and
    /// has none in flight.
    pub(crate) fn send_fetches(&mut self) {
        let md = self.pool.cached_metadata();
        let now = Instant::now();
        self.broker_backoff.retain(|_, until| *until > now);
        let mut per_broker: BTreeMap<i32, Vec<FetchTarget>> = BTreeMap::new();
        // Brokers leading an assigned partition: the others' connections
        // are closed.
        let mut leaders: BTreeSet<i32> = BTreeSet::new();
        let read_committed = self.cfg.isolation_level() == IsolationLevel::ReadCommitted;
        // Brokers some of whose partitions still have records to hand out.
        let mut draining: BTreeSet<i32> = BTreeSet::new();
        // Brokers with a wanted partition known to have records to fetch.
        let mut behind: BTreeSet<i32> = BTreeSet::new();
        for (tp, p) in &self.parts {
            let leader = md.leader(&tp.topic, tp.partition);
            leaders.extend(leader.map(|(l, _)| l));
            if !p.paused && !p.buffer.is_empty() {
                draining.extend(leader.map(|(l, _)| l));
            }
            if !p.wants_fetch() {
                continue;
            }
            let Some((leader, epoch)) = leader.filter(|(l, _)| *l >= 0) else {
                self.metadata_wanted = true;
                continue;
            };
            if !p.caught_up(read_committed) {
                behind.insert(leader);
            }
            if self.in_flight.values().any(|(b, _)| *b == leader)
                || self.broker_backoff.contains_key(&leader)
            {
                continue;
            }
            let Some(offset) = p.position else { continue };
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
        // A Fetch for caught-up partitions only is held by the broker for
        // fetch.max.wait.ms; sent while other partitions of the same broker
        // are still being handed out, it would keep them from being fetched
        // again when they drain (one Fetch per broker at a time). So it
        // waits until they drain, when one Fetch asks for all of them.
        per_broker.retain(|b, _| behind.contains(b) || !draining.contains(b));
        self.fetch_conns.retain(|b, _| leaders.contains(b));
        for (broker, targets) in per_broker {
            for t in &targets {
                if let Some(p) = self.parts.get_mut(&t.tp) {
                    p.fetching = true;
                }
            }
            let mut session = self
                .sessions
                .remove(&broker)
                .unwrap_or_else(|| FetchSession::new(broker));
            let mut conn = self.fetch_conns.remove(&broker);
            let pool: Pool = self.pool.clone();
            let cfg: FetchConfig = self.cfg.fetch.clone();
            let asked: Vec<TopicPartition> = targets.iter().map(|t| t.tp.clone()).collect();
            let task = self.fetches.spawn(async move {
                let result = fetch::fetch(&pool, &mut conn, &mut session, &targets, &cfg).await;
                FetchDone::Fetch(FetchEnd {
                    session,
                    conn,
                    asked: targets.into_iter().map(|t| t.tp).collect(),
                    result,
                })
            });
            self.in_flight.insert(task.id(), (broker, asked));
        }
    }

    /// Take every fetch that finished, without waiting.
    pub(crate) fn collect_fetches(&mut self) -> Result<(), ConsumerError> {
        while let Some(done) = self.fetches.try_join_next_with_id() {
            self.joined(done)?;
        }
        Ok(())
    }

    /// A fetch task ended: apply its result, or (it cannot panic by design;
    /// if one did) forget its session so its partitions are fetched again.
    pub(crate) fn joined(
        &mut self,
        done: Result<(tokio::task::Id, FetchDone), tokio::task::JoinError>,
    ) -> Result<(), ConsumerError> {
        match done {
            Ok((id, done)) => {
                self.in_flight.remove(&id);
                match done {
                    FetchDone::Fetch(end) => self.fetch_done(end),
                    FetchDone::Metadata(r) => {
                        if let Err(e) = r {
                            tracing::debug!(error = %e, "metadata refresh for fetching failed");
                            self.metadata_wanted = true;
                        }
                        // At most one refresh per retry.backoff.ms, as
                        // when poll waited for each one: a leader still
                        // unknown asks again at once.
                        self.broker_backoff
                            .insert(REFRESH, Instant::now() + self.cfg.retry_backoff);
                        Ok(())
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "fetch task failed");
                if let Some((broker, asked)) = self.in_flight.remove(&e.id()) {
                    self.metadata_wanted |= broker == REFRESH;
                    for tp in asked {
                        if let Some(p) = self.parts.get_mut(&tp) {
                            p.fetching = false;
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// Apply one finished fetch.
    pub(crate) fn fetch_done(&mut self, done: FetchEnd) -> Result<(), ConsumerError> {
        let FetchEnd {
            session,
            conn,
            asked,
            result,
        } = done;
        let broker = session.broker();
        self.sessions.insert(broker, session);
        if let Some(c) = conn.filter(|c| !c.is_closed()) {
            self.fetch_conns.insert(broker, c);
        }
        for tp in &asked {
            if let Some(p) = self.parts.get_mut(tp) {
                p.fetching = false;
            }
        }
        let fetched = match result {
            Ok(f) => f,
            // A failed request (or a request-level error code) loses
            // nothing: the response is dropped, the session restarts with
            // a full fetch, and the partitions are fetched again after a
            // backoff, as the Java client does. Only a refusal that
            // retrying cannot fix reaches the application.
            Err(e) => {
                tracing::debug!(broker, error = %e, "fetch failed; backing off");
                self.pool.note_error(&e);
                self.metadata_wanted |= e.invalidates_metadata();
                self.broker_backoff
                    .insert(broker, Instant::now() + self.cfg.retry_backoff);
                if e.code().is_some_and(unauthorized) {
                    return Err(e.into());
                }
                return Ok(());
            }
        };
        let mut to_reset = Vec::new();
        for f in fetched {
            let Some(p) = self.parts.get_mut(&f.tp) else {
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
                    self.pool.invalidate();
                    self.metadata_wanted = true;
                    self.broker_backoff
                        .insert(broker, Instant::now() + self.cfg.retry_backoff);
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
            if self.cfg.auto_offset_reset == AutoOffsetReset::None {
                return Err(ConsumerError::NoOffset {
                    partitions: to_reset,
                });
            }
            tracing::info!(partitions = ?to_reset, policy = ?self.cfg.auto_offset_reset, "offset out of range: resetting");
            for tp in to_reset {
                if let Some(p) = self.parts.get_mut(&tp) {
                    p.position = None;
                    p.reset = true;
                    p.buffer.clear();
                }
            }
        }
        Ok(())
    }
}
