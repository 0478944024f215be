//! Mixed group: a krust member and a `confluent-kafka` (librdkafka 2.16)
//! consumer, classic protocol, in one group on a 6-partition topic, with
//! `range` and with `cooperative-sticky`, on Apache Kafka 4.4.0 first (the
//! node this binary shares, so topic and group are unique per run;
//! `KAFKA_BOOTSTRAP` too when set), then Tansu (session.timeout.ms 6000: it
//! holds JoinGroup for half of it) and noida-db (range only: see the note
//! at the end). Not on the librdkafka 2.0.2 mock: its rebalance rounds and
//! SyncGroup race (docs/ARCHITECTURE.md) would decide when the group
//! settles, not the two clients.
//!
//! What Kafka specifies, checked from both sides' own reports: the two
//! members' assignments are disjoint and cover all six partitions (three
//! each); committed offsets are the group's, whoever wrote them: when the
//! Python member leaves, krust owns all six and reads the Python member's
//! commits back through OffsetFetch; when krust leaves, the Python consumer
//! owns all six, `committed()` returns krust's commits, and its first
//! fetched record of every partition is at the committed offset.
//!
//! The Python side is `tests/interop/group_member.py` (JSON lines on
//! stdout, commands on stdin, bounded by its own deadline).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use common::{MOCK_ROUNDS, brokers};

use krust_group::assignor::{Assignor, CooperativeStickyAssignor, RangeAssignor};
use krust_group::driver::{GroupHandle, MemberSnapshot, group};
use krust_group::membership::State;
use krust_group::offsets::{self, OffsetAndMetadata};
use krust_group::{GroupEvent, MembershipConfig, TopicPartition};
use krust_net::{Backoff, ConnectionConfig, Pool, PoolConfig, RetryPolicy};
use krust_testkit::{Broker, BrokerKind, Capability, confluent_python, unique};
use tokio::sync::watch;
use tokio::task::JoinHandle;

const PARTITIONS: i32 = 6;
/// Records written to every partition, so committed offsets are fetchable.
const PER_PARTITION: i64 = 20;
/// Every test finishes within this, or fails.
const BOUND: Duration = Duration::from_secs(60);

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/group_member.py")
}

fn tp(topic: &str, p: i32) -> TopicPartition {
    TopicPartition::new(topic, p)
}

fn retry() -> RetryPolicy {
    RetryPolicy {
        backoff: Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(500),
            ..Backoff::default()
        },
        deadline: Duration::from_secs(10),
    }
}

/// A pool on `bootstrap`, a comma-separated list as the brokers give it.
async fn pool(bootstrap: &str) -> Pool {
    let config = PoolConfig {
        bootstrap: bootstrap.split(',').map(|a| a.trim().to_owned()).collect(),
        bootstrap_timeout: Duration::from_secs(10),
        connection: ConnectionConfig {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(20),
            ..Default::default()
        },
        retry: retry(),
        ..Default::default()
    };
    Pool::bootstrap(config).await.expect("bootstrap")
}

/// Write the records with the Python producer (a separate short process).
fn produce(bootstrap: &str, topic: &str) {
    let out = Command::new(confluent_python())
        .arg(script())
        .args(["produce", bootstrap, topic])
        .arg(PARTITIONS.to_string())
        .arg(PER_PARTITION.to_string())
        .output()
        .expect("run the Python producer");
    assert!(
        out.status.success(),
        "produce failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One JSON line of the Python member. Its lines are flat and written by
/// `json.dumps`, so a scan for the few fields read is enough (no JSON
/// dependency for this one test).
#[derive(Debug, Clone)]
struct Line {
    ev: String,
    raw: String,
}

impl Line {
    fn parse(raw: &str) -> Option<Line> {
        let rest = raw.split_once("\"ev\": \"")?.1;
        let ev = rest.split_once('"')?.0.to_owned();
        Some(Line {
            ev,
            raw: raw.to_owned(),
        })
    }

    /// Every integer in the bracket or brace that follows `"key": `.
    fn ints(&self, key: &str) -> Vec<i64> {
        let Some((_, rest)) = self.raw.split_once(&format!("\"{key}\": ")) else {
            return Vec::new();
        };
        let close = if rest.starts_with('[') { ']' } else { '}' };
        let body = rest.split(close).next().unwrap_or("");
        body.split(|c: char| !(c.is_ascii_digit() || c == '-'))
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.parse().ok())
            .collect()
    }

    /// `{"P": OFFSET, ...}` under `offsets`.
    fn offsets(&self) -> BTreeMap<i32, i64> {
        self.ints("offsets")
            .chunks(2)
            .filter_map(|c| Some((i32::try_from(*c.first()?).ok()?, *c.get(1)?)))
            .collect()
    }
}

/// The confluent-kafka member: its stdout lines arrive on a channel.
struct PyMember {
    child: Child,
    stdin: ChildStdin,
    lines: std_mpsc::Receiver<Line>,
    /// The whole assignment it last reported.
    held: BTreeSet<i32>,
}

impl PyMember {
    fn start(bootstrap: &str, group: &str, topic: &str, strategy: &str) -> PyMember {
        let mut child = Command::new(confluent_python())
            .arg(script())
            .args(["member", bootstrap, group, topic, strategy, "55"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the Python member");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std_mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                match Line::parse(&line) {
                    Some(v) => {
                        if tx.send(v).is_err() {
                            return;
                        }
                    }
                    None => eprintln!("python: {line}"),
                }
            }
        });
        PyMember {
            child,
            stdin,
            lines,
            held: BTreeSet::new(),
        }
    }

    fn send(&mut self, cmd: &str) {
        writeln!(self.stdin, "{cmd}").expect("write a command");
        self.stdin.flush().expect("flush");
    }

    /// Take every line available now; panic on an error line.
    fn drain(&mut self) {
        while let Ok(v) = self.lines.try_recv() {
            self.note(&v);
        }
    }

    fn note(&mut self, v: &Line) {
        match v.ev.as_str() {
            "assignment" => {
                self.held = v
                    .ints("partitions")
                    .into_iter()
                    .map(|p| i32::try_from(p).expect("partition"))
                    .collect();
            }
            "error" | "lost" | "deadline" => panic!("python member: {}", v.raw),
            _ => {}
        }
    }

    /// Wait (bounded) for an event named `ev`; blocks this worker thread
    /// only (the krust member runs on the other).
    fn wait_event(&mut self, ev: &str, bound: Duration) -> Line {
        tokio::task::block_in_place(|| {
            let until = Instant::now() + bound;
            loop {
                let left = until.saturating_duration_since(Instant::now());
                let v = self
                    .lines
                    .recv_timeout(left)
                    .unwrap_or_else(|e| panic!("python member: no {ev} within {bound:?}: {e}"));
                self.note(&v);
                if v.ev == ev {
                    return v;
                }
            }
        })
    }

    fn commit(&mut self, offsets: &BTreeMap<i32, i64>) {
        let body: Vec<String> = offsets
            .iter()
            .map(|(p, o)| format!("\"{p}\": {o}"))
            .collect();
        self.send(&format!("commit {{{}}}", body.join(", ")));
        self.wait_event("committed", Duration::from_secs(15));
    }

    fn close(mut self) {
        self.send("close");
        self.wait_event("closed", Duration::from_secs(15));
        let _ = self.child.wait();
    }
}

impl Drop for PyMember {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The krust member: its events are pumped (revokes acked at once) so the
/// driver never waits on the test.
struct KrustMember {
    snapshot: watch::Receiver<MemberSnapshot>,
    handle: JoinHandle<GroupHandle>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl KrustMember {
    async fn start(
        bootstrap: &str,
        group_id: &str,
        topic: &str,
        assignor: Arc<dyn Assignor>,
    ) -> KrustMember {
        let mut cfg = MembershipConfig::new(group_id, vec![topic.to_owned()]);
        cfg.session_timeout = Duration::from_secs(6);
        cfg.rebalance_timeout = Duration::from_secs(10);
        cfg.heartbeat_interval = Duration::from_millis(500);
        cfg.revoke_budget = Duration::from_secs(2);
        let (mut handle, task) = group(pool(bootstrap).await, cfg, vec![assignor]);
        let snapshot = handle.watch();
        let task = tokio::spawn(task.run());
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let handle = tokio::spawn(async move {
            loop {
                tokio::select! {
                    ev = handle.next_event() => match ev {
                        Some(GroupEvent::Revoked { .. }) => handle.revoke_done(),
                        Some(GroupEvent::Fatal(e)) => panic!("krust member: fatal: {e}"),
                        Some(GroupEvent::Lost { partitions }) => {
                            panic!("krust member lost {partitions:?}")
                        }
                        Some(_) => {}
                        None => return handle,
                    },
                    _ = &mut stopped => return handle,
                }
            }
        });
        KrustMember {
            snapshot,
            handle,
            stop,
            task,
        }
    }

    fn snap(&self) -> MemberSnapshot {
        self.snapshot.borrow().clone()
    }

    fn owned(&self) -> BTreeSet<i32> {
        self.snap().owned.iter().map(|t| t.partition).collect()
    }

    async fn close(self) {
        let _ = self.stop.send(());
        let handle = self.handle.await.expect("pump");
        handle
            .close(Duration::from_secs(10))
            .await
            .expect("close within its bound");
        let _ = self.task.await;
    }
}

/// Wait until krust is stable owning `k` partitions and Python reports `p`
/// partitions, the two disjoint and covering all six.
async fn wait_shared(k: &KrustMember, py: &mut PyMember, want_k: usize, what: &str) {
    let started = Instant::now();
    loop {
        py.drain();
        let snap = k.snap();
        let ko = k.owned();
        let all: BTreeSet<i32> = ko.union(&py.held).copied().collect();
        if snap.state == State::Stable
            && ko.len() == want_k
            && ko.is_disjoint(&py.held)
            && all.len() == 6
            && ko.len() + py.held.len() == 6
        {
            eprintln!(
                "{what}: krust {ko:?} (gen {}), python {:?} after {:?}",
                snap.generation,
                py.held,
                started.elapsed()
            );
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(25),
            "{what}: not reached: krust {:?} {ko:?} gen {}, python {:?}",
            snap.state,
            snap.generation,
            py.held
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait until krust is stable owning all six partitions.
async fn wait_all_six(k: &KrustMember, what: &str) {
    let t = Instant::now();
    loop {
        let s = k.snap();
        if s.state == State::Stable && s.owned.len() == 6 {
            eprintln!("{what}: krust owns all six after {:?}", t.elapsed());
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{what}: krust owns all six: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Stable states hold for a moment (no further rebalance reshuffles them).
async fn settle(k: &KrustMember, py: &mut PyMember) {
    let before = (k.owned(), k.snap().generation);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    py.drain();
    assert_eq!(
        (k.owned(), k.snap().generation),
        before,
        "krust's assignment changed after the group was stable"
    );
    assert!(k.owned().is_disjoint(&py.held), "overlap after settling");
}

async fn mixed_group(broker: &dyn Broker, strategy: &str) {
    let b = broker.bootstrap();
    let name = broker.name();
    let topic = &unique("krust-interop");
    broker
        .create_topic(topic, PARTITIONS)
        .unwrap_or_else(|e| panic!("{name}: create {topic}: {e}"));
    let group_id = &unique("g-mixed");
    eprintln!("{name} {strategy}: topic {topic}, group {group_id}");
    let started = Instant::now();
    produce(&b, topic);
    let assignor = || -> Arc<dyn Assignor> {
        match strategy {
            "range" => Arc::new(RangeAssignor),
            _ => Arc::new(CooperativeStickyAssignor),
        }
    };
    let commit_pool = pool(&b).await;
    let mut expected: BTreeMap<i32, i64> = BTreeMap::new();

    // krust first (owns all six), then a Python member joins: three each.
    // (One after the other: two first joins racing each other's
    // MEMBER_ID_REQUIRED round can wedge noida-db under load.)
    let k = KrustMember::start(&b, group_id, topic, assignor()).await;
    wait_all_six(&k, "krust alone").await;
    let mut py = PyMember::start(&b, group_id, topic, strategy);
    wait_shared(&k, &mut py, 3, "krust + python").await;
    settle(&k, &mut py).await;

    // Each commits its own partitions.
    let mine = commit_owned(&k, &commit_pool, 3).await;
    expected.extend(mine.iter().map(|(t, o)| (t.partition, o.offset)));
    let theirs: BTreeMap<i32, i64> = py.held.iter().map(|p| (*p, 5 + i64::from(*p))).collect();
    py.commit(&theirs);
    expected.extend(theirs);
    assert_eq!(expected.len(), 6, "both committed, six partitions");

    // The Python member leaves: krust owns all six and resumes from the
    // Python member's commits (OffsetFetch).
    py.close();
    wait_all_six(&k, "python left").await;
    let parts: Vec<TopicPartition> = (0..PARTITIONS).map(|p| tp(topic, p)).collect();
    let got = offsets::fetch(&commit_pool, group_id, &parts, true, &retry())
        .await
        .expect("OffsetFetch");
    let got: BTreeMap<i32, i64> = got
        .into_iter()
        .map(|(t, o)| (t.partition, o.map_or(-1, |o| o.offset)))
        .collect();
    assert_eq!(got, expected, "krust reads back both members' commits");

    // A new Python member joins; krust commits what it keeps and leaves: the
    // Python consumer resumes from krust's commits.
    let mut py = PyMember::start(&b, group_id, topic, strategy);
    wait_shared(&k, &mut py, 3, "krust + second python").await;
    settle(&k, &mut py).await;
    let mine = commit_owned(&k, &commit_pool, 11).await;
    expected.extend(mine.iter().map(|(t, o)| (t.partition, o.offset)));
    k.close().await;
    let t = Instant::now();
    while py.held.len() != 6 {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "python owns all six: {:?}",
            py.held
        );
        py.drain();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("krust left: python owns all six after {:?}", t.elapsed());
    py.send("committed");
    let committed = py
        .wait_event("committed_read", Duration::from_secs(15))
        .offsets();
    assert_eq!(
        committed, expected,
        "python committed() sees krust's commits"
    );
    py.send("consume");
    let first = py
        .wait_event("first_fetched", Duration::from_secs(20))
        .offsets();
    assert_eq!(
        first, expected,
        "python's first fetched record of each partition is at the committed offset"
    );
    py.close();
    eprintln!(
        "{name} {strategy}: mixed group passed in {:?}",
        started.elapsed()
    );
}

async fn on_each(brokers: Vec<Box<dyn Broker>>, strategy: &str) {
    for broker in brokers {
        let name = broker.name();
        tokio::time::timeout(BOUND, mixed_group(&*broker, strategy))
            .await
            .unwrap_or_else(|_| panic!("{name} {strategy}: not finished within {BOUND:?}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_group_range() {
    on_each(brokers(Capability::ClassicGroups, &[MOCK_ROUNDS]), "range").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_group_cooperative_sticky() {
    let skip = [
        MOCK_ROUNDS,
        // noida-db 0.2.3 wedges the second (KIP-429 follow-up) rebalance
        // when a member joins a group whose only member holds every
        // partition, with librdkafka alone too: a `confluent-kafka`
        // consumer holding all six, a second one subscribing with
        // cooperative-sticky, and the second one's JoinGroup is never
        // answered (reproduced without krust, 40 s).
        (
            BrokerKind::NoidaDb,
            "noida-db 0.2.3 never answers the KIP-429 follow-up JoinGroup",
        ),
    ];
    on_each(
        brokers(Capability::ClassicGroups, &skip),
        "cooperative-sticky",
    )
    .await;
}

/// Commit `base + partition` for every partition `k` owns, as `k`.
async fn commit_owned(
    k: &KrustMember,
    pool: &Pool,
    base: i64,
) -> BTreeMap<TopicPartition, OffsetAndMetadata> {
    let snap = k.snap();
    let mine: BTreeMap<TopicPartition, OffsetAndMetadata> = snap
        .owned
        .iter()
        .map(|t| {
            (
                t.clone(),
                OffsetAndMetadata::new(base + i64::from(t.partition)),
            )
        })
        .collect();
    offsets::commit(pool, &snap, &mine, &retry())
        .await
        .expect("krust commits the partitions it owns");
    mine
}
