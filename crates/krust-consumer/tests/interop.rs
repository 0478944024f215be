//! A krust consumer in one classic-protocol group with a peer client, the
//! Java client (`KafkaConsumer` of kafka-clients 4.4.0,
//! `krust_testkit::java_peer("JavaGroupConsumer")`) or `confluent-kafka`
//! (librdkafka 2.16, `tests/interop/group_consumer.py`), both speaking the
//! same line protocol, with `range` and with `cooperative-sticky` on both
//! sides, on a 6-partition topic that gets 600 records in three waves of
//! 200, on Apache Kafka first (`common::kafka_brokers`: the node this binary
//! shares, then `KAFKA_BOOTSTRAP`; topic and group unique per run). Both
//! commit synchronously after what they processed (krust after each poll
//! batch, the peer after each record).
//!
//! 1. krust alone consumes wave 1 and commits it.
//! 2. The peer joins: the two assignments are disjoint and cover all six
//!    partitions; wave 2 is consumed by exactly the owner of each
//!    partition, and the peer starts each of its partitions at krust's
//!    committed offset (nothing of wave 1 again).
//! 3. The peer pauses; wave 3 is written; krust's `committed()` of the
//!    peer's partitions is the peer's last processed offset + 1. The peer
//!    closes (LeaveGroup): krust takes its partitions and its first record
//!    of each is at exactly that offset.
//! 4. Every one of the 600 records was consumed, and no record twice
//!    except one whose commit the group refused (Kafka answers
//!    REBALANCE_IN_PROGRESS / ILLEGAL_GENERATION to commits made while the
//!    group rebalances; such records are re-delivered to the next owner:
//!    at-least-once). The test prints which ones, if any.
//!
//! And Kafka's own `kafka-consumer-groups.sh --describe` reports, for a
//! group krust committed, exactly krust's committed offsets.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::{Driven, PeerProc, consumer_config, create_topic, kafka_brokers, wait_for};
use krust_consumer::{Consumer, OffsetAndMetadata, TopicPartition};
use krust_producer::ProducerRecord;
use krust_testkit::{
    Broker, CONSUMER_GROUP_COMMAND, Capability, Kafka, SASL_USER, SecureKafka, unique,
};

const PARTITIONS: i32 = 6;
const WAVE: usize = 200;
const BOUND: Duration = Duration::from_secs(150);

/// The other client in the group.
#[derive(Clone, Copy, Debug)]
enum Peer {
    /// `confluent-kafka` (librdkafka).
    Python,
    /// The Java client.
    Java,
}

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Peer::Python => "confluent-kafka",
            Peer::Java => "java",
        }
    }

    /// Join `group` subscribed to `topic` with `strategy` (the classic
    /// assignor, or the broker's under `consumer`) and `protocol` on
    /// `target`; it exits by itself after 140 s.
    fn start(
        self,
        target: &Target<'_>,
        group: &str,
        topic: &str,
        strategy: &str,
        protocol: &str,
    ) -> PeerProc {
        let args = [
            target.bootstrap.as_str(),
            group,
            topic,
            strategy,
            "140",
            protocol,
        ];
        match self {
            Peer::Python => {
                assert!(
                    target.security.is_empty(),
                    "the Python peer takes no security settings"
                );
                PeerProc::python("group_consumer.py", &args)
            }
            Peer::Java => {
                let mut args = args.to_vec();
                args.extend(target.java.iter().map(String::as_str));
                PeerProc::java("JavaGroupConsumer", &args)
            }
        }
    }
}

/// Where the group meets: a broker's listener, and the settings each side
/// needs for it (none on PLAINTEXT).
struct Target<'a> {
    broker: &'a dyn Broker,
    bootstrap: String,
    /// krust's properties for the listener.
    security: Vec<(String, String)>,
    /// The Java client's, as `KEY=VALUE`.
    java: Vec<String>,
}

impl<'a> Target<'a> {
    fn plaintext(broker: &'a dyn Broker) -> Target<'a> {
        Target {
            bootstrap: broker.bootstrap(),
            broker,
            security: Vec::new(),
            java: Vec::new(),
        }
    }

    /// The SASL_SSL listener with SCRAM-SHA-512, for both clients in the
    /// forms their users write: krust's `sasl.username`/`sasl.password`
    /// and `ssl.ca.location`, Java's JAAS line and PEM truststore.
    fn sasl_ssl(kafka: &'a SecureKafka) -> Target<'a> {
        let (user, password) = SASL_USER;
        let ca = kafka.pki().ca().display().to_string();
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        Target {
            broker: kafka.kafka(),
            bootstrap: kafka.addr("SASL_SSL"),
            security: pairs(&[
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "SCRAM-SHA-512"),
                ("sasl.username", user),
                ("sasl.password", password),
                ("ssl.ca.location", &ca),
            ]),
            java: [
                "security.protocol=SASL_SSL".to_owned(),
                "sasl.mechanism=SCRAM-SHA-512".to_owned(),
                format!(
                    "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule \
                     required username=\"{user}\" password=\"{password}\";"
                ),
                "ssl.truststore.type=PEM".to_owned(),
                format!("ssl.truststore.location={ca}"),
            ]
            .to_vec(),
        }
    }

    fn name(&self) -> String {
        if self.security.is_empty() {
            self.broker.name()
        } else {
            format!("{} SASL_SSL", self.broker.name())
        }
    }
}

/// Records `from..from + WAVE`, record i on partition i % 6.
fn wave(topic: &str, from: usize) -> Vec<ProducerRecord> {
    (from..from + WAVE)
        .map(|i| {
            ProducerRecord::new(topic, format!("value-{i}"))
                .key(format!("key-{i}"))
                .partition(i32::try_from(i).expect("small") % PARTITIONS)
        })
        .collect()
}

/// What the peer reported.
#[derive(Default, Debug)]
struct Seen {
    records: Vec<(i32, i64)>,
    uncommitted: Vec<(i32, i64)>,
    held: BTreeSet<i32>,
    paused: bool,
    closed: bool,
}

impl Seen {
    fn take(&mut self, line: &str) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let int = |s: &str| -> i64 { s.parse().unwrap_or_else(|_| panic!("peer: {line}")) };
        match words.as_slice() {
            ["assigned", ps @ ..] => {
                self.held = ps
                    .iter()
                    .map(|p| i32::try_from(int(p)).expect("p"))
                    .collect();
            }
            ["commitfail", p, o, ..] => {
                eprintln!("peer: {line}");
                self.uncommitted
                    .push((i32::try_from(int(p)).expect("p"), int(o)));
            }
            // Followed by the `assigned` line of what is left.
            ["lost", ..] => eprintln!("peer: {line}"),
            ["paused"] => self.paused = true,
            ["closed"] => self.closed = true,
            [p, o] => self
                .records
                .push((i32::try_from(int(p)).expect("p"), int(o))),
            _ => panic!("peer consumer: {line}"),
        }
    }
}

fn pump(proc: &mut PeerProc, py: &mut Seen) {
    for line in proc.drain() {
        py.take(&line);
    }
}

/// The first offset of each partition in `records`.
fn firsts(records: &[(i32, i64)]) -> BTreeMap<i32, i64> {
    let mut f = BTreeMap::new();
    for (p, o) in records {
        f.entry(*p).or_insert(*o);
    }
    f
}

async fn mixed_group(target: &Target<'_>, peer: Peer, strategy: &str) {
    mixed_group_on(target, peer, strategy, "classic").await;
}

/// [`mixed_group`] with `protocol` (`classic`, or `consumer` where
/// `strategy` is the broker's assignor) on both sides.
async fn mixed_group_on(target: &Target<'_>, peer: Peer, strategy: &str, protocol: &str) {
    let started = Instant::now();
    let broker = target.broker;
    let topic = unique("krust-consumer-interop");
    let topic = topic.as_str();
    let tp = |p: i32| TopicPartition::new(topic, p);
    create_topic(broker, topic, PARTITIONS).await;
    let b = target.bootstrap.as_str();
    let produce = |records| common::produce_with(b, &target.security, records);
    let group = unique(&format!("g-consumer-interop-{}-{strategy}", peer.name()));
    let label = format!("{} {protocol} {strategy} on {}", peer.name(), target.name());

    // 1. krust alone: consumes wave 1 and commits it.
    let mut reports = produce(wave(topic, 0)).await;
    let ends1 = common::log_ends(&reports);
    let mut extra = vec![
        ("group.id", group.as_str()),
        ("group.protocol", protocol),
        ("enable.auto.commit", "false"),
        ("auto.offset.reset", "earliest"),
    ];
    extra.push(if protocol == "consumer" {
        ("group.remote.assignor", strategy)
    } else {
        ("partition.assignment.strategy", strategy)
    });
    extra.extend(
        target
            .security
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let cfg = consumer_config(b, &extra);
    let k = Driven::start(common::subscribed(cfg, topic).await, true, |_| {}, |_| {});
    wait_for(
        "krust alone consumed and committed wave 1",
        Duration::from_secs(30),
        || {
            k.check_poll();
            k.snapshot(|s| s.committed == ends1)
        },
        || k.snapshot(|s| format!("{s:?}")),
    )
    .await;

    // 2. The peer joins.
    let mut proc = peer.start(target, &group, topic, strategy, protocol);
    let mut py = Seen::default();
    let mut stable_since: Option<(Instant, BTreeSet<i32>, BTreeSet<i32>)> = None;
    let t = Instant::now();
    loop {
        k.check_poll();
        pump(&mut proc, &mut py);
        let ka = k.snapshot(|s| s.assignment.clone());
        let split = !ka.is_empty()
            && !py.held.is_empty()
            && ka.is_disjoint(&py.held)
            && ka.len() + py.held.len() == 6;
        let now = (ka.clone(), py.held.clone());
        stable_since = match stable_since.take() {
            Some((since, a, p)) if split && (a.clone(), p.clone()) == now => Some((since, a, p)),
            _ if split => Some((Instant::now(), now.0, now.1)),
            _ => None,
        };
        if let Some((since, _, _)) = &stable_since
            && since.elapsed() > Duration::from_millis(2000)
        {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(40),
            "{label}: no stable split: krust {ka:?}, peer {:?}",
            py.held
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, k_parts, py_parts) = stable_since.expect("stable split");
    eprintln!(
        "{label}: split krust {k_parts:?} peer {py_parts:?} after {:?}",
        t.elapsed()
    );
    assert!(
        py.records.is_empty(),
        "peer consumed {:?} of wave 1, which krust had committed",
        py.records
    );

    // Wave 2 while both are in: each partition's records go to its owner.
    let k_mark2 = k.snapshot(|s| s.records.len());
    reports.extend(produce(wave(topic, WAVE)).await);
    let ends2 = common::log_ends(&reports);
    let want2: BTreeSet<(i32, i64)> = reports[WAVE..]
        .iter()
        .map(|r| (r.partition, r.offset))
        .collect();
    let t = Instant::now();
    loop {
        k.check_poll();
        pump(&mut proc, &mut py);
        let got: BTreeSet<(i32, i64)> = k
            .snapshot(|s| s.records[k_mark2..].to_vec())
            .into_iter()
            .chain(py.records.iter().copied())
            .collect();
        if want2.is_subset(&got) {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "{label}: wave 2 not consumed: {} of {} (krust {:?}, peer {:?})",
            want2.intersection(&got).count(),
            want2.len(),
            k.snapshot(|s| s.assignment.clone()),
            py.held
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let k_wave2 = k.snapshot(|s| s.records[k_mark2..].to_vec());
    let k_from: BTreeSet<i32> = k_wave2.iter().map(|(p, _)| *p).collect();
    let py_from: BTreeSet<i32> = py.records.iter().map(|(p, _)| *p).collect();
    assert_eq!(
        k.snapshot(|s| s.assignment.clone()),
        k_parts,
        "{label}: krust's assignment changed while both were in"
    );
    assert_eq!(
        py.held, py_parts,
        "{label}: peer's assignment changed while both were in"
    );
    assert!(
        k_from.is_subset(&k_parts) && py_from.is_subset(&py_parts),
        "{label}: records from partitions not owned: krust got {k_from:?} owning {k_parts:?}, \
         peer got {py_from:?} owning {py_parts:?}"
    );
    let py_first = firsts(&py.records);
    let want_first: BTreeMap<i32, i64> = py_parts.iter().map(|p| (*p, ends1[p])).collect();
    assert_eq!(
        py_first, want_first,
        "{label}: peer starts each partition at krust's committed offset"
    );

    // 3. The peer pauses; wave 3; what The peer committed is what krust reads.
    proc.send("pause");
    let t = Instant::now();
    while !py.paused {
        assert!(t.elapsed() < Duration::from_secs(10), "peer: no `paused`");
        if let Some(line) = proc.next_line(Duration::from_millis(200)) {
            py.take(&line);
        }
    }
    let py_last: BTreeMap<i32, i64> = py.records.iter().fold(BTreeMap::new(), |mut m, (p, o)| {
        let e = m.entry(*p).or_insert(*o);
        *e = (*e).max(*o);
        m
    });
    let py_committed_want: BTreeMap<i32, Option<i64>> =
        py_last.iter().map(|(p, o)| (*p, Some(o + 1))).collect();
    assert_eq!(
        py_committed_want,
        py_parts
            .iter()
            .map(|p| (*p, Some(ends2[p])))
            .collect::<BTreeMap<_, _>>(),
        "{label}: peer processed all of wave 2 of its partitions"
    );
    let k_mark3 = k.snapshot(|s| s.records.len());
    reports.extend(produce(wave(topic, 2 * WAVE)).await);
    let ends3 = common::log_ends(&reports);
    let committed = k.committed(py_parts.iter().map(|p| tp(*p)).collect()).await;
    assert_eq!(
        committed, py_committed_want,
        "{label}: krust's committed() of peer's partitions is peer's last processed offset + 1"
    );
    // The peer closes: krust takes its partitions.
    proc.send("close");
    let t = Instant::now();
    while !py.closed {
        assert!(t.elapsed() < Duration::from_secs(15), "peer: no `closed`");
        if let Some(line) = proc.next_line(Duration::from_millis(200)) {
            py.take(&line);
        }
    }
    assert!(
        proc.wait_exit(Duration::from_secs(10)).success(),
        "peer exit status"
    );
    pump(&mut proc, &mut py);
    wait_for(
        &format!("{label}: krust consumed wave 3 on all six partitions"),
        Duration::from_secs(40),
        || {
            k.check_poll();
            k.snapshot(|s| s.committed == ends3 && s.assignment.len() == 6)
        },
        || k.snapshot(|s| format!("{:?} {:?}", s.assignment, s.committed)),
    )
    .await;
    let k_wave3 = k.snapshot(|s| s.records[k_mark3..].to_vec());
    let k_first3 = firsts(&k_wave3);
    for p in &py_parts {
        assert_eq!(
            k_first3.get(p).copied(),
            py_committed_want[p],
            "{label}: krust's first record of partition {p} after peer left is peer's committed offset"
        );
    }

    // 4. Everything consumed; duplicates only where a commit was refused.
    let (k_records, k_uncommitted, k_errors) = k.snapshot(|s| {
        (
            s.records.clone(),
            s.uncommitted.clone(),
            s.commit_errors.clone(),
        )
    });
    let mut count: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for r in k_records.iter().chain(&py.records) {
        *count.entry(*r).or_default() += 1;
    }
    let produced: BTreeSet<(i32, i64)> = reports.iter().map(|r| (r.partition, r.offset)).collect();
    assert_eq!(produced.len(), 3 * WAVE);
    let missing: Vec<_> = produced.iter().filter(|r| !count.contains_key(r)).collect();
    assert!(missing.is_empty(), "{label}: never consumed: {missing:?}");
    let extra: Vec<_> = count.keys().filter(|r| !produced.contains(r)).collect();
    assert!(
        extra.is_empty(),
        "{label}: consumed but never produced: {extra:?}"
    );
    let mut refused: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for r in k_uncommitted.iter().chain(&py.uncommitted) {
        *refused.entry(*r).or_default() += 1;
    }
    let twice: Vec<((i32, i64), usize)> = count
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(r, n)| (*r, *n))
        .collect();
    for (r, n) in &twice {
        assert!(
            n - 1 <= refused.get(r).copied().unwrap_or(0),
            "{label}: {r:?} consumed {n} times, but its commit was refused {} times \
             (krust commit errors {k_errors:?}; peer refused {:?})",
            refused.get(r).copied().unwrap_or(0),
            py.uncommitted
        );
    }
    eprintln!(
        "{label}: {} records consumed once, {} twice after a refused commit {twice:?}; \
         krust commit errors {k_errors:?}, peer refused {:?}",
        count.len() - twice.len(),
        twice.len(),
        py.uncommitted
    );
    k.close().await.expect("krust close");
    eprintln!("{label}: mixed group passed in {:?}", started.elapsed());
}

async fn mixed_groups(peer: Peer, strategy: &str) {
    for broker in kafka_brokers(Capability::ClassicGroups) {
        tokio::time::timeout(
            BOUND,
            mixed_group(&Target::plaintext(&*broker), peer, strategy),
        )
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{} {strategy} on {}: not done within {BOUND:?}",
                peer.name(),
                broker.name()
            )
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn java_mixed_group_range() {
    mixed_groups(Peer::Java, "range").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn java_mixed_group_cooperative_sticky() {
    mixed_groups(Peer::Java, "cooperative-sticky").await;
}

/// The same with both clients over SASL_SSL (SCRAM-SHA-512) on Kafka
/// 4.4.0 enforcing it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn java_mixed_group_over_sasl_ssl() {
    let target = Target::sasl_ssl(SecureKafka::shared());
    tokio::time::timeout(
        BOUND,
        mixed_group(&target, Peer::Java, "cooperative-sticky"),
    )
    .await
    .unwrap_or_else(|_| panic!("java over SASL_SSL: not done within {BOUND:?}"));
}

/// krust and the Java client in one KIP-848 group (`group.protocol=consumer`,
/// the broker's `uniform` assignor) on Kafka 4.4.0.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn java_mixed_group_consumer_protocol() {
    kip848_mixed_group(Peer::Java).await;
}

/// krust and confluent-kafka (librdkafka 2.16) in one KIP-848 group.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confluent_mixed_group_consumer_protocol() {
    kip848_mixed_group(Peer::Python).await;
}

async fn kip848_mixed_group(peer: Peer) {
    let kafka = Kafka::shared_version(krust_testkit::KafkaVersion::V4_4);
    tokio::time::timeout(
        BOUND,
        mixed_group_on(&Target::plaintext(kafka), peer, "uniform", "consumer"),
    )
    .await
    .unwrap_or_else(|_| {
        panic!(
            "{} consumer protocol: not done within {BOUND:?}",
            peer.name()
        )
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confluent_mixed_group_range() {
    mixed_groups(Peer::Python, "range").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confluent_mixed_group_cooperative_sticky() {
    mixed_groups(Peer::Python, "cooperative-sticky").await;
}

/// One row of `kafka-consumer-groups.sh --describe`, by column name.
type Row = BTreeMap<String, String>;

/// The rows of `--describe`'s table for `topic` (the header names the
/// columns: GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG
/// CONSUMER-ID HOST CLIENT-ID).
fn describe_rows(out: &str, topic: &str) -> BTreeMap<i32, Row> {
    let mut header: Option<Vec<&str>> = None;
    let mut rows = BTreeMap::new();
    for line in out.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.contains(&"CURRENT-OFFSET") {
            header = Some(cols);
            continue;
        }
        let Some(h) = &header else { continue };
        if cols.len() != h.len() {
            continue;
        }
        let row: Row = h
            .iter()
            .zip(&cols)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if row.get("TOPIC").map(String::as_str) == Some(topic) {
            let p = row["PARTITION"].parse().expect("PARTITION is a number");
            rows.insert(p, row);
        }
    }
    rows
}

/// `kafka-consumer-groups.sh --describe --group G` on the shared Kafka.
async fn describe(group: &str) -> String {
    let group = group.to_owned();
    tokio::task::spawn_blocking(move || {
        Kafka::shared()
            .tool(CONSUMER_GROUP_COMMAND, &["--describe", "--group", &group])
            .unwrap_or_else(|e| panic!("kafka-consumer-groups --describe: {e}"))
    })
    .await
    .expect("tool thread")
}

/// Kafka's own tool reads krust's commits: for a group in which a krust
/// member committed a different offset on each partition, `--describe`
/// lists exactly those offsets as CURRENT-OFFSET (and LOG-END-OFFSET and
/// LAG to match), with krust's member (its client id) as the owner while it
/// is in the group, and the same offsets after it left. Run on the shared
/// Kafka node: the tool is Kafka's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_groups_describe_reports_krust_commits() {
    let kafka = Kafka::shared();
    tokio::time::timeout(BOUND, async {
        let topic = unique("krust-consumer-describe");
        let group = unique("g-consumer-describe");
        let client_id = unique("krust-describe");
        create_topic(kafka, &topic, 3).await;
        let b = kafka.bootstrap();
        // 10, 20 and 30 records on partitions 0, 1 and 2.
        let records = (0..3)
            .flat_map(|p| (0..10 * (p + 1)).map(move |i| (p, i)))
            .map(|(p, i)| ProducerRecord::new(&*topic, format!("{p}-{i}")).partition(p))
            .collect();
        let ends = common::log_ends(&common::produce(&b, records).await);
        assert_eq!(ends, BTreeMap::from([(0, 10), (1, 20), (2, 30)]));
        let cfg = consumer_config(
            &b,
            &[
                ("group.id", group.as_str()),
                ("client.id", client_id.as_str()),
                ("enable.auto.commit", "false"),
                ("auto.offset.reset", "earliest"),
            ],
        );
        let mut c: Consumer = common::subscribed(cfg, &topic).await;
        let t = Instant::now();
        while c.assignment().len() < 3 {
            assert!(t.elapsed() < Duration::from_secs(30), "not assigned");
            c.poll(Duration::from_millis(100)).await.expect("poll");
        }
        // A different point in each partition, the last at its end.
        let at = BTreeMap::from([(0, 3), (1, 17), (2, 30)]);
        c.commit_offsets(
            at.iter()
                .map(|(p, o)| (TopicPartition::new(&*topic, *p), OffsetAndMetadata::new(*o)))
                .collect(),
        )
        .await
        .expect("commit");
        let tps: Vec<TopicPartition> = (0..3).map(|p| TopicPartition::new(&*topic, p)).collect();
        let committed: BTreeMap<i32, i64> = c
            .committed(&tps)
            .await
            .expect("committed")
            .into_iter()
            .map(|(tp, o)| (tp.partition, o.expect("committed").offset))
            .collect();
        assert_eq!(committed, at, "krust reads back what it committed");

        let check = |out: &str, member: bool| {
            let rows = describe_rows(out, &topic);
            assert_eq!(
                rows.keys().copied().collect::<Vec<_>>(),
                vec![0, 1, 2],
                "one row per partition:\n{out}"
            );
            for (p, row) in &rows {
                let num = |col: &str| -> i64 {
                    row[col]
                        .parse()
                        .unwrap_or_else(|_| panic!("{col} of partition {p}: {out}"))
                };
                assert_eq!(num("CURRENT-OFFSET"), committed[p], "partition {p}:\n{out}");
                assert_eq!(num("LOG-END-OFFSET"), ends[p], "partition {p}:\n{out}");
                assert_eq!(num("LAG"), ends[p] - committed[p], "partition {p}:\n{out}");
                if member {
                    assert_eq!(row["CLIENT-ID"], client_id, "partition {p}:\n{out}");
                } else {
                    assert_eq!(row["CONSUMER-ID"], "-", "partition {p}:\n{out}");
                }
            }
        };
        let out = describe(&group).await;
        eprintln!("{out}");
        check(&out, true);
        c.close().await.expect("close");
        let out = describe(&group).await;
        eprintln!("{out}");
        check(&out, false);
    })
    .await
    .expect("bounded in time");
}

/// Kafka's own tool sees krust's KIP-848 members: `kafka-consumer-groups.sh
/// --describe --members --verbose` on a `group.protocol=consumer` group of
/// two krust members lists each (its client id) with its three partitions,
/// the assignment each member holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_groups_describe_members_shows_krust_kip848_members() {
    let kafka = Kafka::shared_version(krust_testkit::KafkaVersion::V4_4);
    tokio::time::timeout(BOUND, async {
        let topic = unique("krust-describe-members");
        let group = unique("g-describe-members");
        create_topic(kafka, &topic, 6).await;
        let b = kafka.bootstrap();
        let ids = [unique("krust-a"), unique("krust-b")];
        let mut members = Vec::new();
        for id in &ids {
            let cfg = consumer_config(
                &b,
                &[
                    ("group.id", group.as_str()),
                    ("group.protocol", "consumer"),
                    ("client.id", id.as_str()),
                ],
            );
            members.push(Driven::start(
                common::subscribed(cfg, &topic).await,
                true,
                |_| {},
                |_| {},
            ));
        }
        wait_for(
            "each member holds three partitions",
            Duration::from_secs(30),
            || {
                members.iter().for_each(Driven::check_poll);
                members
                    .iter()
                    .all(|m| m.snapshot(|s| s.assignment.len() == 3))
            },
            || {
                format!(
                    "{:?}",
                    members
                        .iter()
                        .map(|m| m.snapshot(|s| s.assignment.clone()))
                        .collect::<Vec<_>>()
                )
            },
        )
        .await;
        let group2 = group.clone();
        let out = tokio::task::spawn_blocking(move || {
            kafka
                .tool(
                    CONSUMER_GROUP_COMMAND,
                    &["--describe", "--members", "--verbose", "--group", &group2],
                )
                .unwrap_or_else(|e| panic!("kafka-consumer-groups --describe --members: {e}"))
        })
        .await
        .expect("tool thread");
        eprintln!("{out}");
        let mut lines = out
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>());
        let header = lines
            .find(|cols| cols.contains(&"CURRENT-ASSIGNMENT"))
            .unwrap_or_else(|| panic!("no header:\n{out}"));
        let rows: Vec<BTreeMap<&str, &str>> = lines
            .filter(|cols| cols.len() == header.len())
            .map(|cols| header.iter().copied().zip(cols).collect())
            .collect();
        assert_eq!(rows.len(), 2, "two members:\n{out}");
        for (id, m) in ids.iter().zip(&members) {
            let held: BTreeSet<i32> = m.snapshot(|s| s.assignment.clone());
            let row = rows
                .iter()
                .find(|r| r["CLIENT-ID"] == id.as_str())
                .unwrap_or_else(|| panic!("no row for {id}:\n{out}"));
            let want = format!(
                "{topic}:{}",
                held.iter()
                    .map(i32::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            );
            assert_eq!(row["#PARTITIONS"], "3", "{id}:\n{out}");
            assert_eq!(row["CURRENT-ASSIGNMENT"], want, "{id}:\n{out}");
            assert_eq!(row["TARGET-ASSIGNMENT"], want, "{id} reconciled:\n{out}");
        }
        for m in members {
            m.close().await.expect("close");
        }
    })
    .await
    .expect("bounded");
}
