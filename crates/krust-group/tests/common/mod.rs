//! Shared by the broker tests: the brokers a test runs on, a pool per
//! member, the range assignor, and members whose events are pumped by a
//! task that records who owns what (so a test can assert that no partition
//! is ever owned by two members at once) and logs every event with its
//! generation and time (so a test can count generations instead of
//! guessing from wall time).
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use krust_group::assignor::{Assignor, RangeAssignor};
use krust_group::driver::{MemberSnapshot, group};
use krust_group::membership::State;
use krust_group::offsets::{self, OffsetAndMetadata, OffsetError};
use krust_group::{GroupEvent, MembershipConfig, TopicPartition};
use krust_net::{Backoff, ConnectionConfig, Pool, PoolConfig, RetryPolicy};
use krust_testkit::{Broker, BrokerKind, Capability, all_brokers, unique};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// `session.timeout.ms` of the members: Kafka's smallest allowed
/// (`group.min.session.timeout.ms`), and Tansu holds a JoinGroup for half
/// of it.
pub const SESSION: Duration = Duration::from_secs(6);
/// `heartbeat.interval.ms` of the members.
pub const HEARTBEAT: Duration = Duration::from_millis(500);

/// The brokers a test that needs `cap` runs on: [`all_brokers`] (the Kafka
/// 4.4.0 node this binary shares first, `KAFKA_BOOTSTRAP` when set), less
/// the emulators in `skip`, each with the reason it cannot run the test as
/// Kafka specifies it. Panics if no Apache Kafka is among them.
pub fn brokers(cap: Capability, skip: &[(BrokerKind, &str)]) -> Vec<Box<dyn Broker>> {
    let brokers: Vec<Box<dyn Broker>> = all_brokers(cap)
        .into_iter()
        .filter(|b| match skip.iter().find(|(k, _)| *k == b.kind()) {
            Some((_, why)) => {
                eprintln!("not on {}: {why}", b.name());
                false
            }
            None => true,
        })
        .collect();
    assert!(
        brokers.iter().any(|b| b.kind().is_real_kafka()),
        "all_brokers({cap:?}) offers no Apache Kafka"
    );
    brokers
}

/// The librdkafka 2.0.2 mock's group coordinator, as docs/ARCHITECTURE.md
/// records it: every rebalance is a fixed `session.timeout.ms - 1 s` round
/// that members rejoining sooner do not cut short, and a follower whose
/// SyncGroup arrives after the leader's gets INVALID_REQUEST and must rejoin
/// (another round). How many generations a group takes there, and how
/// long, is chance; group behaviour is checked on Kafka.
pub const MOCK_ROUNDS: (BrokerKind, &str) = (
    BrokerKind::MockCluster,
    "the 2.0.2 mock rebalances in fixed 5 s rounds and races late SyncGroups (docs/ARCHITECTURE.md)",
);

/// One scenario on one broker finishes within this, or fails. What the
/// scenarios assert is counted (generations, events), not timed by this; it
/// only stops a wedged run.
pub const BOUND: Duration = Duration::from_secs(90);

/// Run `scenario` on each of `brokers` in turn, each with a fresh topic of
/// six partitions and a fresh group.
pub async fn on_each(
    brokers: Vec<Box<dyn Broker>>,
    scenario: impl AsyncFn(&dyn Broker, &str, &str),
) {
    trace_to_stderr();
    for broker in brokers {
        let topic = topic(&*broker, "krust-group", 6);
        let group = unique("g");
        let name = broker.name();
        eprintln!("{name}: topic {topic}, group {group}");
        tokio::time::timeout(BOUND, scenario(&*broker, &topic, &group))
            .await
            .unwrap_or_else(|_| panic!("{name}: not finished within {BOUND:?}"));
    }
}

/// A topic of `partitions` partitions no other test uses, created on `broker`.
pub fn topic(broker: &dyn Broker, prefix: &str, partitions: i32) -> String {
    let name = unique(prefix);
    broker
        .create_topic(&name, partitions)
        .unwrap_or_else(|e| panic!("{}: create {name}: {e}", broker.name()));
    name
}

pub fn retry() -> RetryPolicy {
    RetryPolicy {
        backoff: Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(500),
            ..Backoff::default()
        },
        deadline: Duration::from_secs(10),
    }
}

pub async fn pool(bootstrap: &str) -> Pool {
    // JoinGroup is held by the coordinator up to the rebalance timeout.
    pool_with(bootstrap, Duration::from_secs(20)).await
}

/// A pool whose requests time out after `request_timeout`.
pub async fn pool_with(bootstrap: &str, request_timeout: Duration) -> Pool {
    let config = PoolConfig {
        bootstrap: bootstrap.split(',').map(str::to_owned).collect(),
        bootstrap_timeout: Duration::from_secs(10),
        connection: ConnectionConfig {
            connect_timeout: Duration::from_secs(2),
            request_timeout,
            ..Default::default()
        },
        reconnect_backoff: Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(200),
            ..Backoff::default()
        },
        retry: retry(),
        ..Default::default()
    };
    Pool::bootstrap(config).await.expect("bootstrap")
}

pub fn config(group: &str, topic: &str) -> MembershipConfig {
    let mut c = MembershipConfig::new(group, vec![topic.to_owned()]);
    c.session_timeout = SESSION;
    c.rebalance_timeout = Duration::from_secs(10);
    c.heartbeat_interval = HEARTBEAT;
    c.revoke_budget = Duration::from_secs(2);
    c.retry_backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(500),
        ..Backoff::default()
    };
    c
}

/// One event a member received, as the tracker logged it.
#[derive(Debug, Clone)]
pub struct Logged {
    pub member: String,
    pub at: Instant,
    pub event: Seen,
}

/// The kinds of event the tests look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Assigned {
        generation: i32,
        partitions: BTreeSet<TopicPartition>,
    },
    Revoked(BTreeSet<TopicPartition>),
    Lost(BTreeSet<TopicPartition>),
    Left,
    Fatal,
}

/// Who owns what according to the events, and every violation seen.
#[derive(Default, Clone)]
pub struct Ownership {
    pub owner: BTreeMap<TopicPartition, String>,
    pub violations: Vec<String>,
    pub fatal: Vec<String>,
    pub lost: usize,
    /// Every Revoked event: member, partitions.
    pub revoked: Vec<(String, BTreeSet<TopicPartition>)>,
    /// Every event, in the order received.
    pub log: Vec<Logged>,
}

impl Ownership {
    /// The events received at or after `since`.
    pub fn since(&self, since: Instant) -> Vec<&Logged> {
        self.log.iter().filter(|l| l.at >= since).collect()
    }

    /// The events of `member` received at or after `since`.
    pub fn of(&self, member: &str, since: Instant) -> Vec<&Logged> {
        self.log
            .iter()
            .filter(|l| l.member == member && l.at >= since)
            .collect()
    }

    /// Every generation an Assigned event carried.
    pub fn generations(&self) -> BTreeSet<i32> {
        self.log
            .iter()
            .filter_map(|l| match l.event {
                Seen::Assigned { generation, .. } => Some(generation),
                _ => None,
            })
            .collect()
    }

    /// Every generation an Assigned event carried at or after `since`.
    pub fn generations_since(&self, since: Instant) -> BTreeSet<i32> {
        self.since(since)
            .iter()
            .filter_map(|l| match l.event {
                Seen::Assigned { generation, .. } => Some(generation),
                _ => None,
            })
            .collect()
    }

    /// No partition assigned to two members at once, nothing fatal.
    pub fn assert_clean(&self) {
        assert!(self.violations.is_empty(), "{:#?}", self.violations);
        assert!(self.fatal.is_empty(), "{:#?}", self.fatal);
    }
}

pub type Tracker = Arc<Mutex<Ownership>>;

pub struct Member {
    pub name: String,
    pub snapshot: tokio::sync::watch::Receiver<MemberSnapshot>,
    pub task: JoinHandle<()>,
    pump: JoinHandle<()>,
    close: Option<oneshot::Sender<oneshot::Sender<bool>>>,
}

/// What the application behind a member does with a Revoked event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRevoke {
    /// Acks it at once.
    Ack,
    /// Never acks it (the driver goes on at the revoke budget).
    Ignore,
}

impl Member {
    pub async fn start(
        name: &str,
        bootstrap: &str,
        cfg: MembershipConfig,
        tracker: Tracker,
    ) -> Member {
        Self::start_with(name, bootstrap, cfg, vec![Arc::new(RangeAssignor)], tracker).await
    }

    pub async fn start_with(
        name: &str,
        bootstrap: &str,
        cfg: MembershipConfig,
        assignors: Vec<Arc<dyn Assignor>>,
        tracker: Tracker,
    ) -> Member {
        Self::start_opts(name, bootstrap, cfg, assignors, OnRevoke::Ack, tracker).await
    }

    pub async fn start_opts(
        name: &str,
        bootstrap: &str,
        cfg: MembershipConfig,
        assignors: Vec<Arc<dyn Assignor>>,
        on_revoke: OnRevoke,
        tracker: Tracker,
    ) -> Member {
        let pool = pool(bootstrap).await;
        Self::start_in(name, pool, cfg, assignors, on_revoke, tracker)
    }

    /// A member that talks through `pool`.
    pub fn start_in(
        name: &str,
        pool: Pool,
        cfg: MembershipConfig,
        assignors: Vec<Arc<dyn Assignor>>,
        on_revoke: OnRevoke,
        tracker: Tracker,
    ) -> Member {
        let (mut handle, task) = group(pool, cfg, assignors);
        let snapshot = handle.watch();
        let task = tokio::spawn(task.run());
        let (close_tx, mut close_rx) = oneshot::channel::<oneshot::Sender<bool>>();
        let me = name.to_owned();
        let pump = tokio::spawn(async move {
            loop {
                tokio::select! {
                    ev = handle.next_event() => {
                        let Some(ev) = ev else { return };
                        let revoked = matches!(ev, GroupEvent::Revoked { .. });
                        track(&tracker, &me, &ev);
                        if revoked && on_revoke == OnRevoke::Ack {
                            handle.revoke_done();
                        }
                    }
                    req = &mut close_rx => {
                        // Closing acks any revoke; what it revokes is let go.
                        let owned = handle.membership().owned;
                        {
                            let mut t = tracker.lock().unwrap();
                            t.owner.retain(|tp, o| !(o == &me && owned.contains(tp)));
                        }
                        let ok = handle.close(Duration::from_secs(5)).await.is_ok();
                        let mut t = tracker.lock().unwrap();
                        t.owner.retain(|_, o| o != &me);
                        drop(t);
                        if let Ok(tx) = req {
                            let _ = tx.send(ok);
                        }
                        return;
                    }
                }
            }
        });
        Member {
            name: name.to_owned(),
            snapshot,
            task,
            pump,
            close: Some(close_tx),
        }
    }

    pub fn owned(&self) -> BTreeSet<TopicPartition> {
        self.snapshot.borrow().owned.clone()
    }

    pub fn snap(&self) -> MemberSnapshot {
        self.snapshot.borrow().clone()
    }

    /// Close with LeaveGroup; true when it finished within its bound.
    pub async fn close(mut self) -> bool {
        let (tx, rx) = oneshot::channel();
        if let Some(c) = self.close.take() {
            let _ = c.send(tx);
        }
        rx.await.unwrap_or(false)
    }

    /// Die without a LeaveGroup: the driver and its pool are dropped, as
    /// when the process is killed.
    pub fn kill(self, tracker: &Tracker) {
        self.task.abort();
        self.pump.abort();
        tracker.lock().unwrap().owner.retain(|_, o| o != &self.name);
    }
}

fn track(tracker: &Tracker, me: &str, ev: &GroupEvent) {
    if std::env::var_os("KRUST_TEST_EVENTS").is_some() {
        eprintln!("{:?} {me}: {ev:?}", Instant::now());
    }
    let mut t = tracker.lock().unwrap();
    let seen = match ev {
        GroupEvent::Assigned {
            partitions,
            generation,
            ..
        } => {
            for tp in partitions {
                if let Some(other) = t.owner.get(tp).filter(|o| o.as_str() != me).cloned() {
                    t.violations
                        .push(format!("{tp} assigned to {me} while {other} owns it"));
                }
                t.owner.insert(tp.clone(), me.to_owned());
            }
            Some(Seen::Assigned {
                generation: *generation,
                partitions: partitions.clone(),
            })
        }
        GroupEvent::Revoked { partitions, .. } | GroupEvent::Lost { partitions } => {
            let lost = matches!(ev, GroupEvent::Lost { .. });
            if lost {
                t.lost += 1;
            } else {
                t.revoked.push((me.to_owned(), partitions.clone()));
            }
            for tp in partitions {
                if t.owner.get(tp).is_some_and(|o| o == me) {
                    t.owner.remove(tp);
                }
            }
            Some(if lost {
                Seen::Lost(partitions.clone())
            } else {
                Seen::Revoked(partitions.clone())
            })
        }
        GroupEvent::Fatal(e) => {
            eprintln!("{me}: fatal: {e}");
            t.fatal.push(format!("{me}: {e}"));
            Some(Seen::Fatal)
        }
        GroupEvent::LeftGroup { .. } => Some(Seen::Left),
        _ => None,
    };
    if let Some(event) = seen {
        t.log.push(Logged {
            member: me.to_owned(),
            at: Instant::now(),
            event,
        });
    }
}

/// Wait until `ok` holds for the members' snapshots, or panic after `bound`
/// naming what was seen.
pub async fn wait_for(
    members: &[&Member],
    bound: Duration,
    what: &str,
    ok: impl Fn(&[MemberSnapshot]) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let snaps: Vec<MemberSnapshot> = members.iter().map(|m| m.snap()).collect();
        if ok(&snaps) {
            return started.elapsed();
        }
        if started.elapsed() > bound {
            let seen: Vec<String> = snaps
                .iter()
                .map(|s| {
                    format!(
                        "{} gen {} {:?} owns {:?}",
                        s.member_id, s.generation, s.state, s.owned
                    )
                })
                .collect();
            panic!("{what}: not reached within {bound:?}: {seen:#?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every member stable in one generation with `n` partitions, all disjoint,
/// covering `total`.
pub fn balanced(n: usize, total: usize) -> impl Fn(&[MemberSnapshot]) -> bool {
    move |s| {
        let gen0 = s[0].generation;
        let all: BTreeSet<_> = s.iter().flat_map(|m| m.owned.iter().cloned()).collect();
        s.iter()
            .all(|m| m.state == State::Stable && m.generation == gen0 && m.owned.len() == n)
            && all.len() == total
    }
}

/// [`balanced`] in a generation newer than `than`.
pub fn balanced_after(n: usize, total: usize, than: i32) -> impl Fn(&[MemberSnapshot]) -> bool {
    let ok = balanced(n, total);
    move |s| ok(s) && s.iter().all(|m| m.generation > than)
}

/// Every member stable with `each` partitions, disjoint, `total` in all
/// (KIP-848: each member has an epoch of its own, so no common generation).
pub fn settled(each: usize, total: usize) -> impl Fn(&[MemberSnapshot]) -> bool {
    move |s| {
        let mut all = std::collections::BTreeSet::new();
        let disjoint = s
            .iter()
            .flat_map(|m| m.owned.iter())
            .all(|tp| all.insert(tp.clone()));
        disjoint
            && all.len() == total
            && s.iter()
                .all(|m| m.state == State::Stable && m.owned.len() == each && m.revoking.is_empty())
    }
}

/// Commit an offset for every partition `member` owns, as that member
/// (its generation and member id) through a pool of its own. The
/// coordinator accepts it only if it still counts the member in that
/// generation and the group is not rebalancing: the coordinator's side of
/// "this member is in the group", not the member's own view.
pub async fn commit_as(
    bootstrap: &str,
    member: &MemberSnapshot,
    offset: i64,
) -> Result<(), OffsetError> {
    let mine: BTreeMap<TopicPartition, OffsetAndMetadata> = member
        .owned
        .iter()
        .map(|t| (t.clone(), OffsetAndMetadata::new(offset)))
        .collect();
    offsets::commit(&pool(bootstrap).await, member, &mine, &retry()).await
}

/// With `KRUST_TEST_TRACE` set, every `tracing` event of the libraries at
/// DEBUG or above goes to stderr (for diagnosing a failed run); call once
/// at the start of a test. The workspace has no `tracing-subscriber`.
pub fn trace_to_stderr() {
    if std::env::var_os("KRUST_TEST_TRACE").is_some() {
        let _ = tracing::subscriber::set_global_default(Stderr::default());
    }
}

/// Prints each event with the fields of the spans it is in (which request
/// to which broker); a test's spans are kept until it ends.
#[derive(Default)]
struct Stderr {
    next: std::sync::atomic::AtomicU64,
    spans: Mutex<HashMap<u64, String>>,
}

thread_local! {
    static ENTERED: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

struct Line(String);

impl tracing::field::Visit for Line {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
}

impl tracing::Subscriber for Stderr {
    fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
        *m.level() <= tracing::Level::DEBUG
    }
    fn new_span(&self, a: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let id = 1 + self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut line = Line(format!("{}{{", a.metadata().name()));
        a.record(&mut line);
        line.0.push('}');
        self.spans.lock().unwrap().insert(id, line.0);
        tracing::span::Id::from_u64(id)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, e: &tracing::Event<'_>) {
        let mut line = Line(String::new());
        e.record(&mut line);
        let within = ENTERED.with(|s| {
            let spans = self.spans.lock().unwrap();
            s.borrow()
                .iter()
                .filter_map(|id| spans.get(id).cloned())
                .collect::<Vec<_>>()
                .join(":")
        });
        eprintln!(
            "{:?} {} {} {}:{}",
            Instant::now(),
            e.metadata().level(),
            within,
            e.metadata().target(),
            line.0
        );
    }
    fn enter(&self, id: &tracing::span::Id) {
        ENTERED.with(|s| s.borrow_mut().push(id.into_u64()));
    }
    fn exit(&self, id: &tracing::span::Id) {
        ENTERED.with(|s| {
            let mut s = s.borrow_mut();
            if let Some(i) = s.iter().rposition(|&x| x == id.into_u64()) {
                s.remove(i);
            }
        });
    }
}
