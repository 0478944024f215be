//! The `krust` binary end to end: produce then consume back, group commits
//! resuming where a run stopped, SIGINT (commit, leave the group, exit 0),
//! and the errors a user meets first (a bad `-X`, no broker, a missing
//! topic).
//!
//! Apache Kafka 4.4.0 runs every test that needs a broker (one node shared
//! by this binary, so every topic and group name is unique). Tansu runs
//! the tests without a group beside it, a second implementation that costs
//! a fraction of a second; the group tests stay on Kafka alone, because
//! Tansu holds every JoinGroup for half the session timeout and returns no
//! member data in DescribeGroups, so it cannot show that a member left.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use krust_codec::KString;
use krust_codec::generated::metadata_request::MetadataRequestTopic;
use krust_codec::generated::offset_fetch_request::OffsetFetchRequestTopic;
use krust_codec::generated::{DescribeGroupsRequest, MetadataRequest, OffsetFetchRequest};
use krust_testkit::raw::Connection as RawConnection;
use krust_testkit::{Broker, Kafka, Tansu, unique};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

mod consume;
mod kcat;
mod lag;
mod operate;
mod secure;
mod topics;
mod usage;
mod verbose;

/// A session far longer than any test waits after a consumer exits: a
/// member gone from the group right after exit left it (LeaveGroup), it
/// did not time out.
const SESSION: &str = "session.timeout.ms=45000";

/// The reference broker, shared by this binary's tests.
fn kafka() -> &'static Kafka {
    Kafka::shared()
}

/// The brokers a test without a group runs on: Kafka, then Tansu.
fn brokers() -> Vec<Box<dyn Broker>> {
    vec![Box::new(kafka()), Box::new(Tansu::start())]
}

/// A fresh topic with `partitions` partitions on `broker`.
fn topic_on(broker: &dyn Broker, prefix: &str, partitions: i32) -> String {
    let topic = unique(prefix);
    broker
        .create_topic(&topic, partitions)
        .unwrap_or_else(|e| panic!("{}: create {topic}: {e}", broker.name()));
    topic
}

fn krust(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_krust"));
    // A RUST_LOG of the test run would add log lines to every stderr
    // these tests read; the tests of logging set it themselves.
    c.env_remove("RUST_LOG");
    c.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Wait for `child` up to `limit`, killing it (and failing) past that.
fn wait_output(mut child: Child, limit: Duration, what: &str) -> Output {
    let started = Instant::now();
    // Drain the pipes on threads so a chatty child cannot block on them
    // (a test may have taken stdout to read it as it comes).
    fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut v);
            }
            v
        })
    }
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let status: ExitStatus = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err.join().unwrap_or_default();
            panic!(
                "{what}: still running after {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Run `krust args` with `input` on stdin.
fn run(args: &[&str], input: &[u8], limit: Duration) -> Output {
    run_cmd(krust(args), input, limit, args)
}

/// Run `cmd` (made by `krust(args)`) with `input` on stdin.
fn run_cmd(mut cmd: Command, input: &[u8], limit: Duration, args: &[&str]) -> Output {
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn krust");
    let mut stdin = child.stdin.take().expect("stdin piped");
    stdin.write_all(input).expect("write stdin");
    drop(stdin);
    wait_output(child, limit, &format!("krust {}", args.join(" ")))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 output")
}

fn assert_success(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what}: {} stderr:\n{}",
        o.status,
        stderr(o)
    );
}

fn produce_lines(broker: &str, topic: &str, lines: &str) {
    let o = run(
        &["produce", "-b", broker, "-t", topic, "-K", ":"],
        lines.as_bytes(),
        Duration::from_secs(60),
    );
    assert_success(&o, "produce");
    let n = lines.lines().count();
    assert!(
        stderr(&o).contains(&format!("produced {n} records to {topic}, 0 failed")),
        "{}",
        stderr(&o)
    );
}

/// The group's committed offsets of `topic`'s partitions `0..partitions`
/// (-1: none), read with a raw OffsetFetch (v7 at most: one group per
/// request) from the broker, which is its own coordinator.
fn committed(addr: &str, group: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let mut conn = RawConnection::connect(addr).expect("connect");
    let version = conn
        .version_for::<OffsetFetchRequest>()
        .expect("OffsetFetch version")
        .min(7);
    let request = OffsetFetchRequest {
        group_id: KString::from(group),
        topics: Some(vec![OffsetFetchRequestTopic {
            name: KString::from(topic),
            partition_indexes: (0..partitions).collect(),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let response = conn.send(version, &request).expect("OffsetFetch");
    assert_eq!(response.error_code, 0, "OffsetFetch: {response:?}");
    let mut out = BTreeMap::new();
    for t in &response.topics {
        for p in &t.partitions {
            assert_eq!(p.error_code, 0, "OffsetFetch partition: {p:?}");
            out.insert(p.partition_index, p.committed_offset);
        }
    }
    out
}

/// One line of `-f '%p %o %k %s\n'` (or `'%p %o %s\n'` with no key).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Line {
    partition: i32,
    offset: i64,
    rest: String,
}

fn parse_lines(out: &str) -> Vec<Line> {
    out.lines()
        .map(|l| {
            let mut it = l.splitn(3, ' ');
            let partition = it.next().and_then(|p| p.parse().ok()).expect(l);
            let offset = it.next().and_then(|o| o.parse().ok()).expect(l);
            Line {
                partition,
                offset,
                rest: it.next().unwrap_or_default().to_owned(),
            }
        })
        .collect()
}

/// The highest printed offset + 1 of each partition.
fn next_offsets(lines: &[Line]) -> BTreeMap<i32, i64> {
    let mut next = BTreeMap::new();
    for l in lines {
        let n = next.entry(l.partition).or_insert(0);
        *n = (*n).max(l.offset + 1);
    }
    next
}

/// What the group must have committed after printing `lines`: the next
/// offset of each partition, -1 (nothing) where none was printed.
fn expected_commits(lines: &[Line], partitions: i32) -> BTreeMap<i32, i64> {
    let next = next_offsets(lines);
    (0..partitions)
        .map(|p| (p, next.get(&p).copied().unwrap_or(-1)))
        .collect()
}

fn keyed_lines(n: usize) -> String {
    // The value holds the delimiter too: only the first one splits.
    (0..n).map(|i| format!("key-{i}:value-{i}:x\n")).collect()
}
