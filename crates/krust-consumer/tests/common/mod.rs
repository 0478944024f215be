//! Shared by the consumer's broker tests: the brokers they run on
//! (`kafka_brokers`), topics ready to produce to, consumer settings for test
//! brokers, a krust producer that returns every delivery report, the peer
//! clients (Python `confluent-kafka`, the Java client) as child processes
//! whose stdout lines arrive on a channel, and a consumer driven by its own
//! task (optionally taking a while over each batch) that records every
//! record it hands out and every commit outcome.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use krust_consumer::{
    Consumer, ConsumerConfig, ConsumerRecord, IsolationLevel, OffsetSpec, RebalanceListener,
    Revoke, TopicPartition, list_offsets,
};
use krust_producer::{Producer, ProducerConfig, ProducerRecord, RecordMetadata};
use krust_testkit::{Broker, Capability, all_brokers, confluent_python};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// The brokers a test of this crate runs on: of `all_brokers(cap)`, Apache
/// Kafka (the node this test binary shares, first) and `KAFKA_BOOTSTRAP`
/// when set. The emulators it also starts are dropped at once (each costs
/// milliseconds): Kafka is the reference for what these tests check and
/// they add no coverage to it. A test that an emulator does add coverage
/// to (an error injected on cue, a restart) names that broker itself and
/// says why.
pub fn kafka_brokers(cap: Capability) -> Vec<Box<dyn Broker>> {
    let brokers: Vec<Box<dyn Broker>> = all_brokers(cap)
        .into_iter()
        .filter(|b| b.kind().is_real_kafka())
        .collect();
    assert!(
        !brokers.is_empty(),
        "all_brokers({cap:?}) offers no Apache Kafka"
    );
    brokers
}

/// Create `topic` and wait until the leader of every partition serves it.
///
/// Kafka lists a new partition's leader in Metadata a moment before that
/// broker serves the partition (a Produce then gets NOT_LEADER_OR_FOLLOWER),
/// and krust-producer's idempotent retries of a first batch refused like
/// this can end in OUT_OF_ORDER_SEQUENCE_NUMBER until the delivery
/// timeout (seen with four producers at once on the shared node). So the
/// tests produce only once every partition answers ListOffsets.
pub async fn create_topic(broker: &dyn Broker, topic: &str, partitions: i32) {
    broker
        .create_topic(topic, partitions)
        .unwrap_or_else(|e| panic!("{}: create {topic}: {e}", broker.name()));
    let pool = krust_net::Pool::bootstrap(krust_net::PoolConfig {
        bootstrap: krust_net::props::list(&broker.bootstrap()),
        ..krust_net::PoolConfig::default()
    })
    .await
    .expect("pool");
    let asked: Vec<(&str, i32, OffsetSpec)> = (0..partitions)
        .map(|p| (topic, p, OffsetSpec::Latest))
        .collect();
    let retry = krust_net::RetryPolicy {
        deadline: Duration::from_secs(30),
        ..krust_net::RetryPolicy::default()
    };
    list_offsets(&pool, &asked, IsolationLevel::ReadUncommitted, &retry)
        .await
        .unwrap_or_else(|e| panic!("{}: {topic} not served: {e}", broker.name()));
}

/// Consumer settings for the test brokers (session.timeout.ms 6000: Tansu
/// holds JoinGroup for half of it; the mock needs at least 6000) plus
/// `extra`, which wins.
pub fn consumer_config(bootstrap: &str, extra: &[(&str, &str)]) -> ConsumerConfig {
    let mut props: BTreeMap<&str, &str> = [
        ("bootstrap.servers", bootstrap),
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "500"),
        ("max.poll.interval.ms", "30000"),
        ("bootstrap.timeout.ms", "10000"),
        ("default.api.timeout.ms", "15000"),
        ("request.timeout.ms", "10000"),
        ("fetch.max.wait.ms", "200"),
        ("retry.backoff.ms", "50"),
        ("retry.backoff.max.ms", "500"),
    ]
    .into_iter()
    .collect();
    props.extend(extra.iter().copied());
    config_of(props)
}

/// The config of `props`; under `group.protocol=consumer` the broker owns
/// the session, the heartbeat and the assignor (the test nodes dictate 6 s
/// and 500 ms), so the classic-only settings are left out.
fn config_of(mut props: BTreeMap<&str, &str>) -> ConsumerConfig {
    if props.get("group.protocol") == Some(&"consumer") {
        for classic_only in [
            "session.timeout.ms",
            "heartbeat.interval.ms",
            "partition.assignment.strategy",
        ] {
            props.remove(classic_only);
        }
    }
    ConsumerConfig::from_properties(props).expect("valid consumer config")
}

/// A group member's settings: `group`, a 6 s session with 500 ms
/// heartbeats, reading from the start, committing by hand; `extra` wins
/// (see [`config_of`] for `group.protocol=consumer`).
pub fn group_config(bootstrap: &str, group: &str, extra: &[(&str, &str)]) -> ConsumerConfig {
    let mut props: BTreeMap<&str, &str> = [
        ("bootstrap.servers", bootstrap),
        ("group.id", group),
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "500"),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "false"),
    ]
    .into_iter()
    .collect();
    props.extend(extra.iter().copied());
    config_of(props)
}

/// A new consumer subscribed to `topic`.
pub async fn subscribed(config: ConsumerConfig, topic: &str) -> Consumer {
    let mut c = Consumer::new(config).await.expect("consumer");
    c.subscribe([topic]).expect("subscribe");
    c
}

/// Send `records` with a krust producer and return their delivery reports,
/// in order.
pub async fn produce(bootstrap: &str, records: Vec<ProducerRecord>) -> Vec<RecordMetadata> {
    produce_batched(bootstrap, records, 16_384).await
}

/// [`produce`] with extra producer properties (`security.protocol` and
/// friends).
pub async fn produce_with(
    bootstrap: &str,
    props: &[(String, String)],
    records: Vec<ProducerRecord>,
) -> Vec<RecordMetadata> {
    produce_configured(bootstrap, 16_384, props, records).await
}

/// [`produce`] in record batches of at most `batch_size` bytes: a fetch
/// returns whole batches, so small ones make a consumer fetch often.
pub async fn produce_batched(
    bootstrap: &str,
    records: Vec<ProducerRecord>,
    batch_size: usize,
) -> Vec<RecordMetadata> {
    produce_configured(bootstrap, batch_size, &[], records).await
}

async fn produce_configured(
    bootstrap: &str,
    batch_size: usize,
    props: &[(String, String)],
    records: Vec<ProducerRecord>,
) -> Vec<RecordMetadata> {
    let mut builder = ProducerConfig::builder()
        .bootstrap_servers([bootstrap])
        .batch_size(batch_size)
        .linger(Duration::from_millis(5))
        .retry_backoff(Duration::from_millis(20))
        .retry_backoff_max(Duration::from_millis(200))
        .request_timeout(Duration::from_secs(5))
        .delivery_timeout(Duration::from_secs(30));
    for (k, v) in props {
        builder = builder.set(k, v).expect("producer property");
    }
    let config = builder.build().expect("producer config");
    let producer = Producer::new(config).await.expect("producer");
    let mut futures = Vec::with_capacity(records.len());
    for r in records {
        futures.push(producer.send(r).await.expect("send"));
    }
    let mut reports = Vec::with_capacity(futures.len());
    for (i, f) in futures.into_iter().enumerate() {
        let md = f
            .await
            .unwrap_or_else(|e| panic!("record {i} not delivered: {e}"));
        assert!(
            md.offset >= 0,
            "record {i}: no offset in its delivery report"
        );
        reports.push(md);
    }
    producer
        .close(Duration::from_secs(10))
        .await
        .expect("producer close");
    reports
}

/// Log end offset of each partition, from delivery reports of everything
/// written to a topic.
pub fn log_ends(reports: &[RecordMetadata]) -> BTreeMap<i32, i64> {
    let mut ends = BTreeMap::new();
    for r in reports {
        let e = ends.entry(r.partition).or_insert(0);
        *e = (*e).max(r.offset + 1);
    }
    ends
}

/// A script under `tests/interop/`.
pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(name)
}

/// A peer client as a child process (the Python `confluent-kafka` one or
/// the Java client, both speaking the line protocol of
/// `tests/interop/group_consumer.py`): its stdout lines arrive on a
/// channel, commands go to its stdin; killed on drop.
pub struct PeerProc {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: std_mpsc::Receiver<String>,
}

impl PeerProc {
    /// `tests/interop/SCRIPT ARGS` under the `confluent-kafka` Python.
    pub fn python(script_name: &str, args: &[&str]) -> PeerProc {
        let mut cmd = Command::new(confluent_python());
        cmd.arg(script(script_name)).args(args);
        PeerProc::spawn(script_name, cmd)
    }

    /// The Java peer `class` (`krust_testkit::java_peer`) with `args`.
    pub fn java(class: &str, args: &[&str]) -> PeerProc {
        let mut cmd = krust_testkit::java_peer(class);
        cmd.args(args);
        PeerProc::spawn(class, cmd)
    }

    fn spawn(name: &str, mut cmd: Command) -> PeerProc {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std_mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        PeerProc {
            name: name.to_owned(),
            child,
            stdin,
            lines,
        }
    }

    pub fn send(&mut self, cmd: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{cmd}").expect("write a command");
        stdin.flush().expect("flush");
    }

    /// Every line available now.
    pub fn drain(&mut self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    /// The next line within `bound` (None: none came, or stdout closed).
    pub fn next_line(&mut self, bound: Duration) -> Option<String> {
        tokio::task::block_in_place(|| self.lines.recv_timeout(bound).ok())
    }

    /// Wait (bounded) for the process to exit; its exit status.
    pub fn wait_exit(&mut self, bound: Duration) -> std::process::ExitStatus {
        let until = Instant::now() + bound;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return s;
            }
            assert!(
                Instant::now() < until,
                "peer {} did not exit in {bound:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PeerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a [`Driven`] consumer did, for the test to read at any time.
#[derive(Default, Debug)]
pub struct Seen {
    /// Every record handed out, in order: (partition, offset).
    pub records: Vec<(i32, i64)>,
    /// Records whose commit (the one right after their poll) failed.
    pub uncommitted: Vec<(i32, i64)>,
    /// The offsets of the last successful commit, per partition.
    pub committed: BTreeMap<i32, i64>,
    /// Commit failures, as text.
    pub commit_errors: Vec<String>,
    /// The assignment after the last poll.
    pub assignment: BTreeSet<i32>,
    /// Listener calls in order: ("assigned" | "revoked" | "lost", partitions),
    /// with the number of records handed out before it.
    pub events: Vec<(&'static str, BTreeSet<i32>, usize)>,
    /// A poll error (the driving loop stops at it).
    pub poll_error: Option<String>,
    /// Polls made.
    pub polls: usize,
    /// While a paced consumer processes a batch: until when.
    pub busy_until: Option<Instant>,
}

pub type Shared = Arc<Mutex<Seen>>;

struct Recorder(Shared);

impl Recorder {
    fn note(&self, what: &'static str, parts: &BTreeSet<TopicPartition>) {
        let mut s = self.0.lock().expect("seen");
        let n = s.records.len();
        s.events
            .push((what, parts.iter().map(|t| t.partition).collect(), n));
    }
}

impl RebalanceListener for Recorder {
    fn on_assigned(&mut self, partitions: &BTreeSet<TopicPartition>) {
        self.note("assigned", partitions);
    }
    fn on_revoked(&mut self, revoke: &mut Revoke) {
        self.note("revoked", revoke.partitions());
    }
    fn on_lost(&mut self, partitions: &BTreeSet<TopicPartition>) {
        self.note("lost", partitions);
    }
}

/// What the test can ask the driving task.
pub enum Cmd {
    /// `committed()` of these partitions.
    Committed(
        Vec<TopicPartition>,
        oneshot::Sender<Result<BTreeMap<i32, Option<i64>>, String>>,
    ),
    /// `close()` and stop.
    Close(oneshot::Sender<Result<(), String>>),
}

/// How long a [`Driven`] consumer takes to process each non-empty batch
/// (an async sleep, so the runtime's threads stay free); a test may change
/// it while the consumer runs, e.g. to spread records over faults and then
/// finish quickly.
#[derive(Clone, Debug, Default)]
pub struct Pace(Arc<AtomicU64>);

impl Pace {
    pub fn new(per_batch: Duration) -> Pace {
        let p = Pace::default();
        p.set(per_batch);
        p
    }

    pub fn set(&self, per_batch: Duration) {
        let ms = u64::try_from(per_batch.as_millis()).unwrap_or(u64::MAX);
        self.0.store(ms, Ordering::Relaxed);
    }

    fn get(&self) -> Duration {
        Duration::from_millis(self.0.load(Ordering::Relaxed))
    }
}

/// A consumer driven by its own task: poll, record, commit after every
/// non-empty batch (`commit_after_batch`), answer commands between polls.
/// `between` runs after every poll with the number of records handed out
/// so far (the faults tests inject faults from it).
pub struct Driven {
    pub seen: Shared,
    cmds: mpsc::Sender<Cmd>,
    task: JoinHandle<()>,
}

impl Driven {
    pub fn start(
        consumer: Consumer,
        commit_after_batch: bool,
        between: impl FnMut(usize) + Send + 'static,
        on_batch: impl Fn(&[ConsumerRecord]) + Send + 'static,
    ) -> Driven {
        Driven::start_paced(consumer, commit_after_batch, between, on_batch, None)
    }

    /// Commit after every batch, each batch taking `pace` to process.
    pub fn paced(consumer: Consumer, pace: Pace) -> Driven {
        Driven::start_paced(consumer, true, |_| {}, |_| {}, Some(pace))
    }

    fn start_paced(
        mut consumer: Consumer,
        commit_after_batch: bool,
        mut between: impl FnMut(usize) + Send + 'static,
        on_batch: impl Fn(&[ConsumerRecord]) + Send + 'static,
        pace: Option<Pace>,
    ) -> Driven {
        let seen: Shared = Arc::default();
        consumer.set_rebalance_listener(Recorder(seen.clone()));
        let (cmds, mut rx) = mpsc::channel::<Cmd>(8);
        let s = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                while let Ok(cmd) = rx.try_recv() {
                    match cmd {
                        Cmd::Committed(tps, reply) => {
                            let r = consumer
                                .committed(&tps)
                                .await
                                .map(|m| {
                                    m.into_iter()
                                        .map(|(t, o)| (t.partition, o.map(|o| o.offset)))
                                        .collect()
                                })
                                .map_err(|e| e.to_string());
                            let _ = reply.send(r);
                        }
                        Cmd::Close(reply) => {
                            let r = consumer.close().await.map_err(|e| e.to_string());
                            let _ = reply.send(r);
                            return;
                        }
                    }
                }
                let batch = match consumer.poll(Duration::from_millis(100)).await {
                    Ok(b) => b,
                    Err(e) => {
                        s.lock().expect("seen").poll_error = Some(e.to_string());
                        // Keep answering commands (close) but stop polling.
                        while let Some(cmd) = rx.recv().await {
                            if let Cmd::Close(reply) = cmd {
                                let r = consumer.close().await.map_err(|e| e.to_string());
                                let _ = reply.send(r);
                                return;
                            }
                        }
                        return;
                    }
                };
                on_batch(&batch);
                if let Some(pace) = pace.as_ref().filter(|_| !batch.is_empty()) {
                    let until = Instant::now() + pace.get();
                    s.lock().expect("seen").busy_until = Some(until);
                    tokio::time::sleep_until(until.into()).await;
                    s.lock().expect("seen").busy_until = None;
                }
                let recs: Vec<(i32, i64)> = batch.iter().map(|r| (r.partition, r.offset)).collect();
                let total = {
                    let mut st = s.lock().expect("seen");
                    st.polls += 1;
                    st.records.extend(&recs);
                    st.assignment = consumer.assignment().iter().map(|t| t.partition).collect();
                    st.records.len()
                };
                if commit_after_batch && !recs.is_empty() {
                    let r = consumer.commit().await;
                    let mut st = s.lock().expect("seen");
                    match r {
                        Ok(()) => {
                            for (tp, l) in consumer.lag() {
                                if let Some(c) = l.committed {
                                    st.committed.insert(tp.partition, c);
                                }
                            }
                        }
                        Err(e) => {
                            st.commit_errors.push(e.to_string());
                            st.uncommitted.extend(&recs);
                        }
                    }
                }
                between(total);
            }
        });
        Driven { seen, cmds, task }
    }

    pub fn snapshot<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&self.seen.lock().expect("seen"))
    }

    /// Fail the test at once if polling failed.
    pub fn check_poll(&self) {
        if let Some(e) = &self.seen.lock().expect("seen").poll_error {
            panic!("krust consumer: poll failed: {e}");
        }
    }

    pub async fn committed(&self, tps: Vec<TopicPartition>) -> BTreeMap<i32, Option<i64>> {
        let (tx, rx) = oneshot::channel();
        self.cmds
            .send(Cmd::Committed(tps, tx))
            .await
            .expect("driver alive");
        rx.await
            .expect("driver answers")
            .unwrap_or_else(|e| panic!("committed() failed: {e}"))
    }

    pub async fn close(self) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.cmds.send(Cmd::Close(tx)).await.expect("driver alive");
        let r = rx.await.expect("driver answers");
        self.task.await.expect("driver task");
        r
    }
}

/// Start a 3-node `KafkaCluster` on a blocking thread and say how long it
/// took (`what` names the test in the line).
pub async fn start_cluster(what: &str) -> std::sync::Arc<krust_testkit::KafkaCluster> {
    let started = Instant::now();
    let cluster = tokio::task::spawn_blocking(krust_testkit::KafkaCluster::start)
        .await
        .expect("start the cluster");
    eprintln!("{what}: cluster up in {:?}", started.elapsed());
    std::sync::Arc::new(cluster)
}

/// Run `f` on the cluster on a blocking thread (the fixture's calls wait
/// for processes and sockets).
pub async fn on_cluster<T: Send + 'static>(
    cluster: &std::sync::Arc<krust_testkit::KafkaCluster>,
    f: impl FnOnce(&krust_testkit::KafkaCluster) -> T + Send + 'static,
) -> T {
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || f(&c))
        .await
        .expect("cluster call")
}

/// Poll `cond` every 50 ms until it holds; panic with `what` and the
/// `state` text after `bound`.
pub async fn wait_for(
    what: &str,
    bound: Duration,
    mut cond: impl FnMut() -> bool,
    state: impl Fn() -> String,
) {
    let started = Instant::now();
    while !cond() {
        assert!(
            started.elapsed() < bound,
            "{what}: not reached within {bound:?}: {}",
            state()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("{what}: after {:?}", started.elapsed());
}

/// A private Apache Kafka node (a test may hang or kill it through
/// `as_cluster()`: the node a test binary shares must stay up under its
/// other tests), its node id, its address, and a new topic of `partitions`
/// on it named after `prefix`, served.
pub async fn private_node(
    prefix: &str,
    partitions: i32,
) -> (krust_testkit::Kafka, i32, String, String) {
    let kafka = krust_testkit::Kafka::start();
    let id = kafka.as_cluster().node_ids()[0];
    let addr = kafka.addr();
    let topic = krust_testkit::unique(prefix);
    create_topic(&kafka, &topic, partitions).await;
    (kafka, id, addr, topic)
}
