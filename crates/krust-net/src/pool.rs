//! The broker pool: bootstrap, lazy connections per broker id and [`Lane`],
//! reconnect with exponential backoff and jitter, idle close, and the
//! cluster metadata cache refreshed on a timer (`maintain`) and on demand
//! (`invalidate`).
//!
//! Lanes: a broker answers the requests of one connection strictly in
//! order, so a request it holds on purpose delays everything behind it on
//! that connection: a JoinGroup up to the rebalance timeout, a Fetch up to
//! `fetch.max.wait.ms`, a Produce with `acks=all` until the replicas have
//! the records. The pool therefore keeps one connection per broker and
//! lane, each made on first use and reconnected with its own backoff (the
//! Java client gives the coordinator a connection of its own; franz-go
//! keeps separate produce, fetch, group and slow connections per broker).
//!
//! Bootstrap follows the CLI's conventions in docs/ARCHITECTURE.md: an address whose
//! peer is not a working Kafka broker (HTTP, oversize frame, undecodable
//! bytes, wrong correlation id) fails at once with that cause and the next
//! address is tried; unreachable addresses are retried with backoff until
//! the bootstrap timeout, and the error names every address and its cause.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use krust_codec::generated::MetadataRequest;
use krust_codec::generated::metadata_request::MetadataRequestTopic;
use krust_codec::{ApiKey, ErrorCode, Message};

use crate::bootstrap::bootstrap_connect;
use crate::connection::{Connection, ConnectionConfig};
use crate::coordinator::CoordinatorType;
use crate::error::Error;
use crate::metadata::{BrokerInfo, ClusterMetadata};
use crate::retry::{Backoff, RetryPolicy};

/// Settings of a [`Pool`].
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// `bootstrap.servers`: `host:port` entries, DNS names allowed.
    pub bootstrap: Vec<String>,
    /// Settings of every connection.
    pub connection: ConnectionConfig,
    /// Give up bootstrapping after this long (the CLI's default is 30 s).
    pub bootstrap_timeout: Duration,
    /// `metadata.max.age.ms`: refresh metadata at least this often.
    pub metadata_max_age: Duration,
    /// `connections.max.idle.ms`: close broker connections unused this long.
    pub idle_timeout: Duration,
    /// `reconnect.backoff.ms` / `reconnect.backoff.max.ms`.
    pub reconnect_backoff: Backoff,
    /// Retries of the pool's own requests (Metadata, FindCoordinator).
    pub retry: RetryPolicy,
    /// `allow.auto.create.topics` for Metadata requests (v4+).
    pub allow_auto_topic_creation: bool,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            bootstrap: Vec::new(),
            connection: ConnectionConfig::default(),
            bootstrap_timeout: Duration::from_secs(30),
            metadata_max_age: Duration::from_secs(300),
            idle_timeout: Duration::from_secs(540),
            reconnect_backoff: Backoff {
                initial: Duration::from_millis(50),
                max: Duration::from_secs(1),
                ..Backoff::default()
            },
            retry: RetryPolicy::default(),
            allow_auto_topic_creation: false,
        }
    }
}

/// Which of a broker's connections a request travels on (see the module
/// docs: a request the broker holds delays only its own lane).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Lane {
    /// Requests the broker answers at once: Metadata, ListOffsets,
    /// OffsetForLeaderEpoch, admin requests ([`Pool::broker`]).
    Normal,
    /// The requests of a group or transaction coordinator: SyncGroup,
    /// Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, ConsumerGroupHeartbeat,
    /// the transactional requests ([`Pool::coordinator`]).
    Group,
    /// JoinGroup alone: the coordinator holds it until the rebalance round
    /// ends (up to the rebalance timeout), and a broker answers one
    /// connection's requests in order, so anything behind it (a commit, an
    /// offset fetch) would wait for the whole round
    /// ([`Pool::coordinator_lane`]).
    Join,
    /// Produce requests (held until the replicas have the records with
    /// `acks=all`).
    Produce,
    /// Fetch requests (held up to `fetch.max.wait.ms` when there is
    /// nothing to return).
    Fetch,
}

/// A pool of broker connections with the cluster metadata. Clones share it.
#[derive(Clone, Debug)]
pub struct Pool {
    pub(crate) inner: Arc<PoolInner>,
}

#[derive(Debug)]
pub(crate) struct PoolInner {
    pub(crate) config: PoolConfig,
    metadata: Mutex<Arc<ClusterMetadata>>,
    /// Bumped each time `metadata` is replaced.
    generation: AtomicU64,
    stale: AtomicBool,
    refresh: tokio::sync::Mutex<()>,
    any: Mutex<Option<Connection>>,
    slots: Mutex<Slots>,
    /// Each coordinator found, with the address FindCoordinator gave: the
    /// metadata may not list it (the broker that answered Metadata lags),
    /// and keeping it here, not in the metadata, means no refresh can
    /// lose it (Java keeps its coordinator `Node` apart from the metadata
    /// too). Only `refresh_metadata` writes the metadata.
    pub(crate) coordinators: Mutex<HashMap<(CoordinatorType, String), BrokerInfo>>,
}

/// The connection slots, one per broker id and lane.
type Slots = HashMap<(i32, Lane), Arc<tokio::sync::Mutex<Slot>>>;

#[derive(Debug)]
struct Slot {
    conn: Option<Connection>,
    failures: u32,
    retry_at: Option<Instant>,
    last_used: Instant,
}

/// Lock a std mutex; a panic elsewhere does not make the data unusable.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Pool {
    /// Connect to the first bootstrap address that answers as Kafka and
    /// fetch the broker list.
    pub async fn bootstrap(config: PoolConfig) -> Result<Pool, Error> {
        let conn = bootstrap_connect(&config).await?;
        let pool = Pool {
            inner: Arc::new(PoolInner {
                config,
                metadata: Mutex::new(Arc::new(ClusterMetadata::default())),
                generation: AtomicU64::new(0),
                stale: AtomicBool::new(true),
                refresh: tokio::sync::Mutex::new(()),
                any: Mutex::new(Some(conn)),
                slots: Mutex::new(HashMap::new()),
                coordinators: Mutex::new(HashMap::new()),
            }),
        };
        pool.refresh_metadata(&[]).await?;
        Ok(pool)
    }

    /// The settings.
    pub fn config(&self) -> &PoolConfig {
        &self.inner.config
    }

    /// The cached metadata, refreshed first if invalidated or older than
    /// `metadata_max_age`. A failed refresh keeps the old snapshot.
    pub async fn metadata(&self) -> Arc<ClusterMetadata> {
        let current = self.cached_metadata();
        let expired = current.fetched_at.elapsed() >= self.inner.config.metadata_max_age;
        if (self.inner.stale.load(Ordering::Acquire) || expired)
            && let Err(error) = self.refresh_metadata(&[]).await
        {
            tracing::debug!(%error, "metadata refresh failed; keeping the cached snapshot");
        }
        self.cached_metadata()
    }

    /// The cached metadata as it is, without refreshing.
    pub fn cached_metadata(&self) -> Arc<ClusterMetadata> {
        lock(&self.inner.metadata).clone()
    }

    /// A number that changes whenever the cached metadata is replaced: what
    /// a caller derived from [`cached_metadata`](Self::cached_metadata)
    /// after reading generation `g` holds until the generation differs
    /// from `g` (read the generation first).
    pub fn metadata_generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// Mark the metadata stale: the next lookup refreshes it. Call on
    /// NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH, UNKNOWN_TOPIC_OR_PARTITION
    /// and disconnects (see [`Pool::note_error`]).
    pub fn invalidate(&self) {
        self.inner.stale.store(true, Ordering::Release);
    }

    /// Let the pool react to an error a request met: stale metadata is
    /// invalidated. Returns whether the error is retriable.
    pub fn note_error(&self, error: &Error) -> bool {
        if error.invalidates_metadata() {
            self.invalidate();
        }
        error.is_retriable()
    }

    /// Fetch metadata for the cached topics plus `topics` (only the brokers
    /// when both are empty), with retries, and merge it into the cache.
    pub async fn refresh_metadata(&self, topics: &[&str]) -> Result<Arc<ClusterMetadata>, Error> {
        let _one_at_a_time = self.inner.refresh.lock().await;
        let mut names: HashSet<String> = self.cached_metadata().topics.keys().cloned().collect();
        names.extend(topics.iter().map(|t| (*t).to_owned()));
        let mut names: Vec<String> = names.into_iter().collect();
        names.sort();
        let resp = self
            .inner
            .config
            .retry
            .run(
                ApiKey::Metadata,
                |_| self.fetch_metadata(&names),
                |e| tracing::debug!(error = %e, "Metadata request failed"),
            )
            .await?;
        // Read, merge and replace in one critical section, so that no
        // other write between the read and the replace can be lost.
        let m = {
            let mut cached = lock(&self.inner.metadata);
            let mut m = (**cached).clone();
            m.merge(&resp);
            *cached = Arc::new(m);
            self.inner.generation.fetch_add(1, Ordering::Release);
            cached.clone()
        };
        self.inner.stale.store(false, Ordering::Release);
        Ok(m)
    }

    /// The names of every topic in the cluster (a Metadata request for all
    /// topics; the cache is not changed). Used to match topic patterns.
    pub async fn all_topic_names(&self) -> Result<Vec<String>, Error> {
        let resp = self
            .inner
            .config
            .retry
            .run(
                ApiKey::Metadata,
                |_| self.fetch_metadata_of(None),
                |e| tracing::debug!(error = %e, "Metadata request failed"),
            )
            .await?;
        Ok(resp
            .topics
            .iter()
            .filter(|t| ErrorCode::from(t.error_code).is_ok())
            .filter_map(|t| t.name.as_ref().map(|n| n.as_str().to_owned()))
            .collect())
    }

    async fn fetch_metadata(
        &self,
        names: &[String],
    ) -> Result<krust_codec::generated::MetadataResponse, Error> {
        self.fetch_metadata_of(Some(names)).await
    }

    /// Metadata of `names`, or of every topic with `None`.
    async fn fetch_metadata_of(
        &self,
        names: Option<&[String]>,
    ) -> Result<krust_codec::generated::MetadataResponse, Error> {
        let conn = self.any_connection().await?;
        let version = conn.negotiate(ApiKey::Metadata, MetadataRequest::VALID_VERSIONS)?;
        let req = MetadataRequest {
            topics: names.map(|names| {
                names
                    .iter()
                    .map(|n| MetadataRequestTopic {
                        name: Some(n.as_str().into()),
                        ..Default::default()
                    })
                    .collect()
            }),
            allow_auto_topic_creation: version < 4 || self.inner.config.allow_auto_topic_creation,
            ..Default::default()
        };
        conn.send_at(&req, version).await
    }

    /// The leader's broker id and leader epoch of a partition, fetching the
    /// topic's metadata when it is not cached.
    pub async fn leader(&self, topic: &str, partition: i32) -> Result<(i32, i32), Error> {
        let mut m = self.metadata().await;
        if m.topic(topic).is_none() {
            m = self.refresh_metadata(&[topic]).await?;
        }
        let err = |code: ErrorCode| Error::Broker {
            api: ApiKey::Metadata,
            broker: None,
            code,
            topic: Some(topic.to_owned()),
            partition: Some(partition),
            message: None,
        };
        let t = m
            .topic(topic)
            .ok_or_else(|| err(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION))?;
        if !t.error.is_ok() {
            return Err(err(t.error));
        }
        let p = m
            .partition(topic, partition)
            .ok_or_else(|| err(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION))?;
        if !p.error.is_ok() && p.leader.is_none() {
            return Err(err(p.error));
        }
        m.leader(topic, partition)
            .ok_or_else(|| err(ErrorCode::LEADER_NOT_AVAILABLE))
    }

    /// The connection to the leader of a partition, with its leader epoch.
    pub async fn leader_connection(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<(Connection, i32), Error> {
        let (id, epoch) = self.leader(topic, partition).await?;
        Ok((self.broker(id).await?, epoch))
    }

    /// The connection to broker `id` for requests it answers at once
    /// ([`Lane::Normal`]), made on first use; after a failure the next
    /// attempt waits out an exponential backoff with jitter.
    pub async fn broker(&self, id: i32) -> Result<Connection, Error> {
        self.broker_lane(id, Lane::Normal).await
    }

    /// The connection to broker `id` on `lane`, made on first use and
    /// reused while it lives; each lane of a broker is a connection of its
    /// own, with its own reconnect backoff, so that a request the broker
    /// holds delays only the requests of its lane.
    pub async fn broker_lane(&self, id: i32, lane: Lane) -> Result<Connection, Error> {
        self.close_idle();
        let addr = match self.broker_addr(id) {
            Some(addr) => addr,
            None => {
                let _ = self.metadata().await;
                self.broker_addr(id).ok_or(Error::UnknownBroker(id))?
            }
        };
        let slot = lock(&self.inner.slots)
            .entry((id, lane))
            .or_insert_with(|| {
                Arc::new(tokio::sync::Mutex::new(Slot {
                    conn: None,
                    failures: 0,
                    retry_at: None,
                    last_used: Instant::now(),
                }))
            })
            .clone();
        let mut s = slot.lock().await;
        s.last_used = Instant::now();
        if let Some(c) = &s.conn {
            if !c.is_closed() {
                return Ok(c.clone());
            }
            // A lost connection may mean a moved leader or a dead broker.
            s.conn = None;
            self.invalidate();
        }
        if let Some(at) = s.retry_at.take() {
            tokio::time::sleep_until(at.into()).await;
        }
        match Connection::connect(&addr, Some(id), &self.inner.config.connection).await {
            Ok(c) => {
                s.failures = 0;
                s.conn = Some(c.clone());
                Ok(c)
            }
            Err(e) => {
                s.failures = s.failures.saturating_add(1);
                let delay = self.inner.config.reconnect_backoff.delay(s.failures);
                s.retry_at = Some(Instant::now() + delay);
                self.invalidate();
                Err(e)
            }
        }
    }

    /// A live connection for cluster-wide requests (Metadata,
    /// FindCoordinator): of the bootstrap connection and the brokers'
    /// [`Lane::Normal`] connections, the one whose broker has the fewest
    /// requests in flight on all its connections
    /// ([`Connection::in_flight`]), as Java's `leastLoadedNode` picks, so
    /// that a broker that stopped answering is passed over while another
    /// is idle. With none live, it connects to a known broker, else
    /// bootstraps again.
    pub async fn any_connection(&self) -> Result<Connection, Error> {
        let bootstrap = lock(&self.inner.any).clone().filter(|c| !c.is_closed());
        let live = {
            let slots = lock(&self.inner.slots);
            let connections = slots
                .iter()
                .filter_map(|((_, lane), slot)| {
                    // A slot being connected is not live yet.
                    let s = slot.try_lock().ok()?;
                    let c = s.conn.clone().filter(|c| !c.is_closed())?;
                    Some((*lane, c))
                })
                .collect::<Vec<_>>();
            // A broker's load is what all its connections wait on: one
            // that stopped answering a heartbeat on its group lane is as
            // hung for a Metadata request on its idle normal lane.
            let mut load: HashMap<&str, usize> = HashMap::new();
            for c in connections.iter().map(|(_, c)| c).chain(&bootstrap) {
                *load.entry(c.addr()).or_default() += c.in_flight();
            }
            let normal = connections
                .iter()
                .filter(|(lane, _)| *lane == Lane::Normal)
                .map(|(_, c)| c);
            // The bootstrap connection first: it wins a tie.
            bootstrap
                .iter()
                .chain(normal)
                .min_by_key(|c| (load.get(c.addr()).copied().unwrap_or(0), c.in_flight()))
                .cloned()
        };
        if let Some(c) = live {
            return Ok(c);
        }
        let known: Vec<(i32, String)> = self
            .cached_metadata()
            .brokers
            .values()
            .map(|b| (b.id, b.addr()))
            .collect();
        for (id, addr) in known {
            match Connection::connect(&addr, Some(id), &self.inner.config.connection).await {
                Ok(c) => {
                    *lock(&self.inner.any) = Some(c.clone());
                    return Ok(c);
                }
                Err(error) => tracing::debug!(broker = %addr, %error, "broker unreachable"),
            }
        }
        let c = bootstrap_connect(&self.inner.config).await?;
        *lock(&self.inner.any) = Some(c.clone());
        Ok(c)
    }

    /// The address of broker `id`: as the cached metadata lists it, else
    /// as a FindCoordinator reply gave it.
    fn broker_addr(&self, id: i32) -> Option<String> {
        if let Some(b) = self.cached_metadata().broker(id) {
            return Some(b.addr());
        }
        lock(&self.inner.coordinators)
            .values()
            .find(|b| b.id == id)
            .map(BrokerInfo::addr)
    }

    /// Drop the pool's handles to connections unused for `idle_timeout`.
    pub fn close_idle(&self) {
        let idle = self.inner.config.idle_timeout;
        for slot in lock(&self.inner.slots).values() {
            if let Ok(mut s) = slot.try_lock()
                && s.conn.is_some()
                && s.last_used.elapsed() >= idle
            {
                tracing::debug!("closing idle connection");
                s.conn = None;
            }
        }
    }

    /// Run the timers: metadata refresh every `metadata_max_age` and idle
    /// close. Spawn it next to the pool; it ends when the future is dropped.
    pub async fn maintain(&self) {
        let period = self
            .inner
            .config
            .metadata_max_age
            .min(self.inner.config.idle_timeout / 2)
            .max(Duration::from_millis(10));
        loop {
            tokio::time::sleep(period).await;
            self.close_idle();
            let _ = self.metadata().await;
        }
    }
}
