//! The producer's one task. It owns the idempotence bookkeeping and the
//! in-flight counts; the accumulator it shares with `send` (`front.rs`),
//! which appends records in the caller's thread and wakes the task only
//! when a batch opens or fills. The task seals batches on `linger.ms`,
//! drains every ready batch of the partitions a broker leads into ONE
//! Produce request per broker (at most
//! `max.in.flight.requests.per.connection` per broker, on one connection
//! to it, `request.rs`, `link.rs`), and
//! handles the answers per partition (`response.rs`).
//!
//! Requests run as tasks in a `JoinSet` owned here: when the producer is
//! dropped the task ends, the set aborts them, and every pending delivery
//! future resolves to `ProduceError::Closed`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use krust_net::{Backoff, Connection, Error as NetError, Lane, Pool};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::accumulator::{Batch, TopicPartition};
use crate::config::ProducerConfig;
use crate::error::ProduceError;
use crate::expiry::Held;
use crate::fast_hash::FastMap;
use crate::front::{Front, Shared};
use crate::idempotence::{Idempotence, ProducerId, init_producer_id};
use crate::link::{Links, Use};
use crate::request::{Order, produce};
/// How often queued batches are checked against `delivery.timeout.ms`.
const EXPIRY_CHECK: Duration = Duration::from_millis(50);

/// What `Producer` tells the task besides records.
pub(crate) enum Msg {
    /// Resolve once every record numbered below the mark has completed.
    Flush(u64, oneshot::Sender<()>),
    Close(oneshot::Sender<()>),
}

/// What a request task hands back.
pub(crate) enum Event {
    Produced {
        broker: i32,
        batches: Vec<Batch>,
        result: Result<Option<krust_codec::generated::ProduceResponse>, NetError>,
    },
    Metadata,
    ProducerId(Result<Option<ProducerId>, NetError>),
    Connected {
        broker: i32,
        result: Result<Connection, NetError>,
    },
}

/// The task's state.
pub(crate) struct Sender {
    pub config: Arc<ProducerConfig>,
    pub pool: Pool,
    /// The accumulator and what else `send` touches.
    pub shared: Arc<Shared>,
    pub idem: Idempotence,
    jobs: JoinSet<Event>,
    in_flight: HashMap<i32, usize>,
    /// Per partition with batches in flight: the broker they went to and
    /// how many. While it is non-zero the partition's queue is drained to
    /// that broker only, so a leader move never lets a newer batch reach
    /// the new leader while an older one may still fail at the old leader
    /// and be retried behind it (see `drain`).
    partition_flight: FastMap<TopicPartition, (i32, usize)>,
    /// Per broker, resolves once the previous request is queued on the
    /// connection: requests reach a broker in the order they were drained.
    chains: HashMap<i32, oneshot::Receiver<()>>,
    /// Per broker, the connection its requests go on (`link.rs`).
    links: Links,
    produce_jobs: usize,
    pub need_metadata: bool,
    metadata_job: bool,
    metadata_retry_at: Option<Instant>,
    pid_job: bool,
    pub pid_retry_at: Option<Instant>,
    /// `first` of every batch in flight (a multiset).
    in_flight_batches: BTreeMap<u64, usize>,
    /// The delivery channels of the batches in flight, by `first`
    /// (`expiry.rs`).
    pub(crate) held: FastMap<u64, Held>,
    /// Batches whose records failed while their request was in flight.
    pub(crate) expired_in_flight: HashSet<u64>,
    /// Flushes, each waiting for the records numbered below its mark.
    flush_waiters: Vec<(u64, oneshot::Sender<()>)>,
    closing: Option<oneshot::Sender<()>>,
    pub backoff: Backoff,
    next_expiry_check: Instant,
}

impl Sender {
    pub fn new(
        config: Arc<ProducerConfig>,
        pool: Pool,
        shared: Arc<Shared>,
        id: Option<ProducerId>,
    ) -> Self {
        Sender {
            shared,
            idem: Idempotence::new(id),
            jobs: JoinSet::new(),
            in_flight: HashMap::new(),
            partition_flight: FastMap::default(),
            chains: HashMap::new(),
            links: Links::default(),
            produce_jobs: 0,
            need_metadata: false,
            metadata_job: false,
            metadata_retry_at: None,
            pid_job: false,
            pid_retry_at: None,
            in_flight_batches: BTreeMap::new(),
            held: FastMap::default(),
            expired_in_flight: HashSet::new(),
            flush_waiters: Vec::new(),
            closing: None,
            backoff: Backoff {
                initial: config.retry_backoff,
                max: config.retry_backoff_max.max(config.retry_backoff),
                ..Backoff::default()
            },
            next_expiry_check: Instant::now() + EXPIRY_CHECK,
            config,
            pool,
        }
    }

    /// Run until the producer is dropped or closed.
    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        loop {
            let now = Instant::now();
            if now >= self.next_expiry_check {
                self.expire(now);
                self.next_expiry_check = now + EXPIRY_CHECK;
            }
            self.maybe_reset(now);
            self.drain(now);
            self.complete_flushes();
            let shared = Arc::clone(&self.shared);
            let wake = {
                let front = shared.lock();
                if self.produce_jobs == 0 && front.acc.is_empty() {
                    if let Some(done) = self.closing.take() {
                        let _ = done.send(());
                        return;
                    }
                }
                self.next_wakeup(&front, now)
            };
            tokio::select! {
                msg = rx.recv() => {
                    let Some(msg) = msg else { return };
                    self.on_msg(msg);
                }
                () = shared.wake.notified() => {}
                Some(ev) = self.jobs.join_next(), if !self.jobs.is_empty() => {
                    if let Ok(ev) = ev {
                        self.on_event(ev);
                    }
                }
                () = tokio::time::sleep_until(wake.into()) => {}
            }
        }
    }

    fn on_msg(&mut self, msg: Msg) {
        match msg {
            Msg::Flush(mark, w) => self.flush_waiters.push((mark, w)),
            Msg::Close(w) => self.closing = Some(w),
        }
    }

    /// Resolve the flushes whose records have all completed (Java's
    /// `awaitFlushCompletion`: records sent during a flush are sent at once
    /// but not waited for).
    fn complete_flushes(&mut self) {
        if self.flush_waiters.is_empty() {
            return;
        }
        let in_flight = self.in_flight_batches.keys().next().copied();
        let queued = self.shared.lock().acc.oldest();
        let oldest = match (queued, in_flight) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(u64::MAX),
        };
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.flush_waiters)
            .into_iter()
            .partition(|(mark, _)| *mark <= oldest);
        self.flush_waiters = waiting;
        for (_, w) in done {
            let _ = w.send(());
        }
    }

    /// Start an epoch bump once nothing is in flight (KIP-360).
    fn maybe_reset(&mut self, now: Instant) {
        if !self.idem.reset_pending
            || self.produce_jobs > 0
            || self.pid_job
            || self.pid_retry_at.is_some_and(|t| t > now)
        {
            return;
        }
        // An idempotent producer bumps its epoch itself, as Java's
        // `TransactionManager.bumpIdempotentProducerEpoch` does: Kafka
        // answers a non-transactional InitProducerId with a NEW producer id
        // whatever id and epoch it is given, and a new id is not fenced
        // against the old one. A batch of the old id that a hung broker
        // takes after the producer gave up on it would then be written
        // after records sent later (seen on Kafka 4.4.0: a record reported
        // failed landed after an acknowledged one sent after it). The
        // broker fences an older epoch of the same id partition by
        // partition: once the new epoch is written there, a late batch of
        // the old one is refused (INVALID_PRODUCER_EPOCH); before that, it
        // is written ahead. Only the last epoch needs a new id.
        if let Some(id) = self.idem.id.filter(|id| id.epoch < i16::MAX) {
            let bumped = ProducerId {
                id: id.id,
                epoch: id.epoch + 1,
            };
            tracing::debug!(?bumped, "bumping the producer epoch");
            self.on_producer_id(Ok(Some(bumped)));
            return;
        }
        self.pid_job = true;
        let pool = self.pool.clone();
        tracing::debug!("the producer epoch is exhausted: asking for a new producer id");
        self.jobs
            .spawn(async move { Event::ProducerId(init_producer_id(&pool, None).await) });
    }

    /// Seal the batches whose linger is over (all of them while flushing or
    /// closing), group every sendable batch by leader and send one request
    /// per broker.
    fn drain(&mut self, now: Instant) {
        let shared = Arc::clone(&self.shared);
        let mut front = shared.lock();
        let flushing = !self.flush_waiters.is_empty() || self.closing.is_some();
        front.acc.seal_lingered(now, flushing);
        if front.fatal.is_some() {
            return;
        }
        let meta = self.pool.cached_metadata();
        if meta.fetched_at.elapsed() >= self.config.metadata_max_age {
            self.need_metadata = true;
        }
        let max_in_flight = self.config.max_in_flight;
        let max_request = self.config.max_request_size;
        let mut requests: HashMap<i32, (Vec<Batch>, usize, Connection)> = HashMap::new();
        for (tp, q) in front.acc.partitions.iter_mut() {
            let Some(front) = q.sealed.front() else {
                continue;
            };
            if front.retry_at.is_some_and(|t| t > now) {
                continue;
            }
            let Some((leader, _)) = meta.leader(&tp.0, tp.1) else {
                self.need_metadata = true;
                continue;
            };
            // Ordering across leader moves: while batches of this partition
            // are in flight to another broker, hold the queue. They either
            // succeed there, or fail (NOT_LEADER_OR_FOLLOWER, disconnect,
            // timeout) and are put back in sequence order ahead of the
            // batches held here; only then does the partition move to the
            // new leader. This keeps per-partition order even when the
            // broker does not check sequences (non-idempotent producers,
            // brokers or mocks that skip the check), where a real Kafka
            // broker would have answered OUT_OF_ORDER_SEQUENCE_NUMBER.
            if self
                .partition_flight
                .get(tp)
                .is_some_and(|&(to, n)| n > 0 && to != leader)
            {
                continue;
            }
            let busy = self.in_flight.get(&leader).copied().unwrap_or(0);
            let pending = requests.get(&leader);
            if pending.is_none() && busy >= max_in_flight {
                continue;
            }
            if pending.is_some_and(|(_, size, _)| size + front.size() > max_request) {
                continue;
            }
            let conn = match pending {
                Some(_) => None,
                None => match self.link(leader, busy, now) {
                    Some(conn) => Some(conn),
                    None => continue,
                },
            };
            if !self.idem.may_send(front) {
                continue;
            }
            if let Some(conn) = conn {
                requests.insert(leader, (Vec::new(), 0, conn));
            }
            let (Some(entry), Some(mut b)) = (requests.get_mut(&leader), q.sealed.pop_front())
            else {
                continue;
            };
            self.idem.on_send(&mut b);
            b.attempts += 1;
            b.retry_at = None;
            entry.1 += b.size();
            entry.0.push(b);
        }
        drop(front);
        for (broker, (batches, _, conn)) in requests {
            if batches.is_empty() {
                continue;
            }
            self.hold(&batches);
            for b in &batches {
                *self.in_flight_batches.entry(b.first).or_default() += 1;
                let flight = self
                    .partition_flight
                    .entry(b.tp.clone())
                    .or_insert((broker, 0));
                // Only one broker per partition at a time (checked above).
                debug_assert!(flight.1 == 0 || flight.0 == broker);
                *flight = (broker, flight.1 + 1);
            }
            *self.in_flight.entry(broker).or_default() += 1;
            self.produce_jobs += 1;
            let acks = self.config.acks;
            let timeout_ms =
                i32::try_from(self.config.request_timeout.as_millis()).unwrap_or(i32::MAX);
            let after = self.chains.remove(&broker);
            let (queued, next) = oneshot::channel();
            self.chains.insert(broker, next);
            let order = Order { after, queued };
            self.jobs
                .spawn(produce(conn, broker, batches, acks, timeout_ms, order));
        }
        if self.need_metadata
            && !self.metadata_job
            && self.metadata_retry_at.is_none_or(|t| t <= now)
        {
            self.need_metadata = false;
            self.metadata_job = true;
            let pool = self.pool.clone();
            self.jobs.spawn(async move {
                if let Err(error) = pool.refresh_metadata(&[]).await {
                    tracing::debug!(%error, "metadata refresh failed");
                }
                Event::Metadata
            });
        }
    }

    /// The connection to drain `broker`'s batches onto now, with `busy`
    /// requests in flight to it; `None` while there is none to use, after
    /// starting to make one when it may (`link.rs`).
    fn link(&mut self, broker: i32, busy: usize, now: Instant) -> Option<Connection> {
        match self.links.get(broker, busy, now) {
            Use::Send(conn) => return Some(conn),
            Use::Wait => return None,
            Use::Connect => {}
        }
        let pool = self.pool.clone();
        self.jobs.spawn(async move {
            // A lane of its own: the broker holds a Produce with acks=all
            // until the in-sync replicas have it and answers a connection
            // strictly in order, so on the Normal lane it delayed every
            // Metadata and ListOffsets to that broker.
            let result = pool.broker_lane(broker, Lane::Produce).await;
            Event::Connected { broker, result }
        });
        None
    }

    /// A connection to `broker` was made, or could not be.
    fn on_connected(&mut self, broker: i32, result: Result<Connection, NetError>) {
        let e = match result {
            Ok(conn) => return self.links.connected(broker, conn),
            Err(e) => e,
        };
        tracing::debug!(broker, error = %e, "cannot connect to the broker");
        self.pool.note_error(&e);
        if e.invalidates_metadata() {
            self.need_metadata = true;
        }
        self.links.failed(broker, &self.backoff, Instant::now());
        // The batches waiting for this broker say why, if their time runs
        // out before it is reached.
        let meta = self.pool.cached_metadata();
        let why = ProduceError::Net(e).to_string();
        let mut front = self.shared.lock();
        for (tp, q) in front.acc.partitions.iter_mut() {
            if meta.leader(&tp.0, tp.1).is_some_and(|(l, _)| l == broker) {
                for b in q.sealed.iter_mut() {
                    b.last_error = Some(why.clone());
                }
            }
        }
    }

    /// When the task must look again if nothing wakes it before.
    fn next_wakeup(&self, front: &Front, now: Instant) -> Instant {
        let mut wake = now + Duration::from_secs(3600);
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                wake = wake.min(t);
            }
        };
        consider(front.acc.next_linger_deadline());
        for q in front.acc.queues() {
            consider(q.sealed.front().and_then(|b| b.retry_at));
            if !q.sealed.is_empty() {
                consider(Some(self.next_expiry_check));
            }
        }
        // Expiry runs on its 50 ms check: wake for the first one due.
        consider(
            self.next_held_expiry()
                .map(|t| t.max(self.next_expiry_check)),
        );
        if self.idem.reset_pending {
            consider(self.pid_retry_at);
        }
        if self.need_metadata {
            consider(self.metadata_retry_at);
        }
        // A broker that could not be reached is tried again when its
        // backoff ends.
        consider(self.links.next_retry(now));
        wake.max(now + Duration::from_micros(100))
    }

    /// One batch fewer in flight, as `flush` counts.
    pub(crate) fn flight_done(&mut self, first: u64) {
        if let Some(n) = self.in_flight_batches.get_mut(&first) {
            *n -= 1;
            if *n == 0 {
                self.in_flight_batches.remove(&first);
            }
        }
    }

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Produced {
                broker,
                batches,
                result,
            } => {
                if let Some(n) = self.in_flight.get_mut(&broker) {
                    *n = n.saturating_sub(1);
                }
                self.produce_jobs = self.produce_jobs.saturating_sub(1);
                for b in &batches {
                    if let Some((_, n)) = self.partition_flight.get_mut(&b.tp) {
                        *n = n.saturating_sub(1);
                        if *n == 0 {
                            self.partition_flight.remove(&b.tp);
                        }
                    }
                }
                let batches = self.returned(batches);
                self.on_produced(batches, result);
            }
            Event::Metadata => {
                self.metadata_job = false;
                self.metadata_retry_at = Some(Instant::now() + self.config.retry_backoff);
            }
            Event::ProducerId(r) => {
                self.pid_job = false;
                self.on_producer_id(r);
            }
            Event::Connected { broker, result } => self.on_connected(broker, result),
        }
    }

    fn on_producer_id(&mut self, r: Result<Option<ProducerId>, NetError>) {
        match r {
            Ok(Some(id)) => {
                tracing::debug!(?id, "new producer epoch; sequences restart at 0");
                self.idem.reset(id);
                for q in self.shared.lock().acc.queues_mut() {
                    for b in q.sealed.iter_mut() {
                        b.sequence = None;
                    }
                }
            }
            Ok(None) => self.set_fatal(ProduceError::Fatal(
                "the broker no longer supports InitProducerId".to_owned(),
            )),
            Err(e) if e.is_retriable() => {
                self.pid_retry_at = Some(Instant::now() + self.backoff.delay(2));
            }
            Err(e) => self.set_fatal(ProduceError::Net(e)),
        }
    }

    /// Fail everything queued and every later record.
    pub fn set_fatal(&mut self, e: ProduceError) {
        tracing::warn!(error = %e, "producer failed");
        let queued = {
            let mut front = self.shared.lock();
            front.fatal = Some(e.clone());
            front.acc.drain_all()
        };
        for b in queued {
            b.fail(e.clone());
        }
    }

    /// Retry `b` after a backoff, or fail it when out of time or attempts.
    pub fn retry(&mut self, mut b: Batch, error: ProduceError) {
        let now = Instant::now();
        b.last_error = Some(error.to_string());
        if b.expired(now, self.config.delivery_timeout) || b.attempts >= self.config.retries {
            self.idem.on_abandon(&b);
            let e = if b.attempts >= self.config.retries {
                error
            } else {
                b.timeout_error()
            };
            b.fail(e);
            return;
        }
        b.retry_at = Some(now + self.backoff.delay(b.attempts));
        self.shared.lock().acc.reenqueue(b);
    }
}
