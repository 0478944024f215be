//! A krust consumer and a `confluent-kafka` (librdkafka 2.16) consumer in
//! one classic-protocol group on Tansu (session.timeout.ms 6000: Tansu holds
//! JoinGroup for half of it), with `range` and with `cooperative-sticky`
//! on both sides, on a 6-partition topic that gets 600 records in three
//! waves of 200. Both commit synchronously after what they processed
//! (krust after each poll batch, Python after each record:
//! `tests/interop/group_consumer.py`).
//!
//! 1. krust alone consumes wave 1 and commits it.
//! 2. The Python consumer joins: the two assignments are disjoint and
//!    cover all six partitions; wave 2 is consumed by exactly the owner of
//!    each partition, and the Python side starts each of its partitions at
//!    krust's committed offset (nothing of wave 1 again).
//! 3. The Python consumer pauses; wave 3 is written; krust's `committed()`
//!    of the Python side's partitions is the Python side's last processed
//!    offset + 1. The Python consumer closes (LeaveGroup): krust takes its
//!    partitions and its first record of each is at exactly that offset.
//! 4. Every one of the 600 records was consumed, and no record twice
//!    except one whose commit the group refused (Kafka answers
//!    REBALANCE_IN_PROGRESS / ILLEGAL_GENERATION to commits made while the
//!    group rebalances; such records are re-delivered to the next owner:
//!    at-least-once). The test prints which ones, if any.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::{Driven, PeerProc, consumer_config, produce, wait_for};
use krust_consumer::TopicPartition;
use krust_producer::ProducerRecord;
use krust_testkit::Tansu;

const TOPIC: &str = "krust-consumer-interop";
const PARTITIONS: i32 = 6;
const WAVE: usize = 200;
const BOUND: Duration = Duration::from_secs(150);

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new(TOPIC, p)
}

/// Records `from..from + WAVE`, record i on partition i % 6.
fn wave(from: usize) -> Vec<ProducerRecord> {
    (from..from + WAVE)
        .map(|i| {
            ProducerRecord::new(TOPIC, format!("value-{i}"))
                .key(format!("key-{i}"))
                .partition(i32::try_from(i).expect("small") % PARTITIONS)
        })
        .collect()
}

/// What the Python consumer reported.
#[derive(Default, Debug)]
struct Py {
    records: Vec<(i32, i64)>,
    uncommitted: Vec<(i32, i64)>,
    held: BTreeSet<i32>,
    paused: bool,
    closed: bool,
}

impl Py {
    fn take(&mut self, line: &str) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let int = |s: &str| -> i64 { s.parse().unwrap_or_else(|_| panic!("python: {line}")) };
        match words.as_slice() {
            ["assigned", ps @ ..] => {
                self.held = ps
                    .iter()
                    .map(|p| i32::try_from(int(p)).expect("p"))
                    .collect();
            }
            ["commitfail", p, o, ..] => {
                eprintln!("python: {line}");
                self.uncommitted
                    .push((i32::try_from(int(p)).expect("p"), int(o)));
            }
            ["paused"] => self.paused = true,
            ["closed"] => self.closed = true,
            [p, o] => self
                .records
                .push((i32::try_from(int(p)).expect("p"), int(o))),
            _ => panic!("python consumer: {line}"),
        }
    }
}

fn pump(proc: &mut PeerProc, py: &mut Py) {
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

async fn mixed_group(strategy: &str) {
    let started = Instant::now();
    let tansu = Tansu::start();
    tansu.create_topic(TOPIC, PARTITIONS).expect("create topic");
    let b = tansu.addr().to_owned();
    let group = format!("g-consumer-interop-{strategy}");

    // 1. krust alone: consumes wave 1 and commits it.
    let mut reports = produce(&b, wave(0)).await;
    let ends1 = common::log_ends(&reports);
    let cfg = consumer_config(
        &b,
        &[
            ("group.id", group.as_str()),
            ("partition.assignment.strategy", strategy),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "earliest"),
        ],
    );
    let k = Driven::start(common::subscribed(cfg, TOPIC).await, true, |_| {}, |_| {});
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

    // 2. The Python consumer joins.
    let mut proc = PeerProc::python("group_consumer.py", &[&b, &group, TOPIC, strategy, "140"]);
    let mut py = Py::default();
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
            "{strategy}: no stable split: krust {ka:?}, python {:?}",
            py.held
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, k_parts, py_parts) = stable_since.expect("stable split");
    eprintln!(
        "{strategy}: split krust {k_parts:?} python {py_parts:?} after {:?}",
        t.elapsed()
    );
    assert!(
        py.records.is_empty(),
        "python consumed {:?} of wave 1, which krust had committed",
        py.records
    );

    // Wave 2 while both are in: each partition's records go to its owner.
    let k_mark2 = k.snapshot(|s| s.records.len());
    reports.extend(produce(&b, wave(WAVE)).await);
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
            "{strategy}: wave 2 not consumed: {} of {} (krust {:?}, python {:?})",
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
        "{strategy}: krust's assignment changed while both were in"
    );
    assert_eq!(
        py.held, py_parts,
        "{strategy}: python's assignment changed while both were in"
    );
    assert!(
        k_from.is_subset(&k_parts) && py_from.is_subset(&py_parts),
        "{strategy}: records from partitions not owned: krust got {k_from:?} owning {k_parts:?}, \
         python got {py_from:?} owning {py_parts:?}"
    );
    let py_first = firsts(&py.records);
    let want_first: BTreeMap<i32, i64> = py_parts.iter().map(|p| (*p, ends1[p])).collect();
    assert_eq!(
        py_first, want_first,
        "{strategy}: python starts each partition at krust's committed offset"
    );

    // 3. Python pauses; wave 3; what Python committed is what krust reads.
    proc.send("pause");
    let t = Instant::now();
    while !py.paused {
        assert!(t.elapsed() < Duration::from_secs(10), "python: no `paused`");
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
        "{strategy}: python processed all of wave 2 of its partitions"
    );
    let k_mark3 = k.snapshot(|s| s.records.len());
    reports.extend(produce(&b, wave(2 * WAVE)).await);
    let ends3 = common::log_ends(&reports);
    let committed = k.committed(py_parts.iter().map(|p| tp(*p)).collect()).await;
    assert_eq!(
        committed, py_committed_want,
        "{strategy}: krust's committed() of python's partitions is python's last processed offset + 1"
    );
    // Python closes: krust takes its partitions.
    proc.send("close");
    let t = Instant::now();
    while !py.closed {
        assert!(t.elapsed() < Duration::from_secs(15), "python: no `closed`");
        if let Some(line) = proc.next_line(Duration::from_millis(200)) {
            py.take(&line);
        }
    }
    assert!(
        proc.wait_exit(Duration::from_secs(10)).success(),
        "python exit status"
    );
    pump(&mut proc, &mut py);
    wait_for(
        &format!("{strategy}: krust consumed wave 3 on all six partitions"),
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
            "{strategy}: krust's first record of partition {p} after python left is python's committed offset"
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
    assert!(
        missing.is_empty(),
        "{strategy}: never consumed: {missing:?}"
    );
    let extra: Vec<_> = count.keys().filter(|r| !produced.contains(r)).collect();
    assert!(
        extra.is_empty(),
        "{strategy}: consumed but never produced: {extra:?}"
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
            "{strategy}: {r:?} consumed {n} times, but its commit was refused {} times \
             (krust commit errors {k_errors:?}; python refused {:?})",
            refused.get(r).copied().unwrap_or(0),
            py.uncommitted
        );
    }
    eprintln!(
        "{strategy}: {} records consumed once, {} twice after a refused commit {twice:?}; \
         krust commit errors {k_errors:?}, python refused {:?}",
        count.len() - twice.len(),
        twice.len(),
        py.uncommitted
    );
    k.close().await.expect("krust close");
    eprintln!("{strategy}: mixed group passed in {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tansu_mixed_group_range() {
    tokio::time::timeout(BOUND, mixed_group("range"))
        .await
        .expect("bounded in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tansu_mixed_group_cooperative_sticky() {
    tokio::time::timeout(BOUND, mixed_group("cooperative-sticky"))
        .await
        .expect("bounded in time");
}
