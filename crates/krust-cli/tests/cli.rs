//! The `krust` binary end to end, against a Tansu broker: produce then
//! consume back, group commits resuming where a run stopped, SIGINT, and
//! the errors a user meets first (a bad `-X`, no broker).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use krust_codec::KString;
use krust_codec::generated::OffsetFetchRequest;
use krust_codec::generated::offset_fetch_request::OffsetFetchRequestTopic;
use krust_testkit::Tansu;
use krust_testkit::raw::Connection as RawConnection;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Tansu holds JoinGroup for session.timeout.ms / 2 (docs/ARCHITECTURE.md): keep
/// joins at ~3 s.
const SESSION: &str = "session.timeout.ms=6000";

fn krust(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_krust"));
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
    let mut cmd = krust(args);
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

#[test]
fn produce_reports_a_failed_delivery_and_exits_non_zero() {
    let tansu = Tansu::start();
    tansu.create_topic("two", 2).expect("create topic");
    // Partition 7 does not exist: refused before sending, nothing delivered.
    let o = run(
        &[
            "produce",
            "-b",
            tansu.addr(),
            "-t",
            "two",
            "-p",
            "7",
            "-X",
            "max.block.ms=5000",
        ],
        b"a\nb\n",
        Duration::from_secs(30),
    );
    assert!(!o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("partition 7"), "{err}");
    assert!(err.contains("produced 0 records to two, 1 failed"), "{err}");
}

#[test]
fn bad_properties_name_the_key_and_value() {
    for (sub, property, key, value) in [
        ("produce", "no.such.key=1", "no.such.key", "`1`"),
        ("consume", "no.such.key=1", "no.such.key", "`1`"),
        ("produce", "linger.ms=soon", "linger.ms", "soon"),
        (
            "consume",
            "session.timeout.ms=soon",
            "session.timeout.ms",
            "soon",
        ),
    ] {
        // Refused before any connection: the broker address is never tried.
        let o = run(
            &[sub, "-b", "127.0.0.1:1", "-t", "t", "-X", property],
            b"",
            Duration::from_secs(10),
        );
        assert_eq!(o.status.code(), Some(1), "{sub} -X {property}");
        let err = stderr(&o);
        assert!(
            err.contains(key) && err.contains(value) && !err.contains("127.0.0.1:1"),
            "{sub} -X {property}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
}

#[test]
fn unreachable_broker_gives_up_within_the_bootstrap_timeout_naming_it() {
    // The producer's bootstrap is bounded by max.block.ms, the consumer's
    // by bootstrap.timeout.ms (both at most 30 s by default).
    for (sub, bound) in [
        ("produce", "max.block.ms=2000"),
        ("consume", "bootstrap.timeout.ms=2000"),
    ] {
        let started = Instant::now();
        let o = run(
            &[sub, "-b", "127.0.0.1:1", "-t", "t", "-X", bound],
            b"x\n",
            Duration::from_secs(20),
        );
        assert!(!o.status.success(), "{sub}");
        let err = stderr(&o);
        assert!(err.contains("127.0.0.1:1"), "{sub}: {err}");
        assert_eq!(err.lines().count(), 1, "{sub}: one line: {err}");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(1500) && took < Duration::from_secs(10),
            "{sub}: gave up after {took:?}"
        );
    }
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

#[test]
fn produced_lines_come_back_with_keys_values_and_increasing_offsets() {
    let tansu = Tansu::start();
    tansu.create_topic("roundtrip", 3).expect("create topic");
    produce_lines(tansu.addr(), "roundtrip", &keyed_lines(100));

    let o = run(
        &[
            "consume",
            "-b",
            tansu.addr(),
            "-t",
            "roundtrip",
            "--from",
            "earliest",
            "-e",
            "-f",
            "%p %o %k %s\\n",
        ],
        b"",
        Duration::from_secs(60),
    );
    assert_success(&o, "consume");
    let lines = parse_lines(&stdout(&o));
    assert_eq!(lines.len(), 100, "stdout:\n{}", stdout(&o));
    let mut pairs: Vec<String> = lines.iter().map(|l| l.rest.clone()).collect();
    pairs.sort();
    let mut expected: Vec<String> = (0..100).map(|i| format!("key-{i} value-{i}:x")).collect();
    expected.sort();
    assert_eq!(pairs, expected);
    let mut by_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for l in &lines {
        by_partition.entry(l.partition).or_default().push(l.offset);
    }
    assert!(
        by_partition.len() > 1,
        "murmur2 spread 100 keys: {by_partition:?}"
    );
    for (p, offsets) in &by_partition {
        // Printed in order, and nothing skipped: 0, 1, 2, ...
        let want: Vec<i64> = (0..).take(offsets.len()).collect();
        assert_eq!(offsets, &want, "partition {p}");
    }
    assert!(
        stderr(&o).contains("consumed 100 records"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_group_resumes_after_the_last_record_committed_with_commit_each() {
    let tansu = Tansu::start();
    tansu.create_topic("resume", 3).expect("create topic");
    produce_lines(tansu.addr(), "resume", &keyed_lines(30));
    let consume = |extra: &[&str]| {
        let mut args = vec![
            "consume",
            "-b",
            tansu.addr(),
            "-t",
            "resume",
            "-g",
            "resumers",
            "--commit",
            "each",
            "-f",
            "%p %o %s\\n",
            "-X",
            SESSION,
        ];
        args.extend(extra);
        let o = run(&args, b"", Duration::from_secs(90));
        assert_success(&o, "consume");
        parse_lines(&stdout(&o))
    };

    let first = consume(&["-c", "10"]);
    assert_eq!(first.len(), 10, "{first:?}");
    let after_first = committed(tansu.addr(), "resumers", "resume", 3);
    for p in 0..3 {
        let printed = next_offsets(&first).get(&p).copied();
        assert_eq!(
            after_first[&p],
            printed.unwrap_or(-1),
            "partition {p}: committed vs printed {first:?}"
        );
    }

    let second = consume(&["-e"]);
    assert_eq!(second.len(), 20, "{second:?}");
    // Each partition picks up right after the first run's last record.
    for p in 0..3 {
        let resumed = second.iter().find(|l| l.partition == p).map(|l| l.offset);
        let from = after_first[&p].max(0);
        assert!(
            resumed.is_none_or(|o| o == from),
            "partition {p} resumed at {resumed:?}, committed {from}"
        );
    }
    let mut all: Vec<Line> = first.iter().chain(&second).cloned().collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 30, "no duplicates, none lost");
    let mut values: Vec<String> = all.iter().map(|l| l.rest.clone()).collect();
    values.sort();
    let mut expected: Vec<String> = (0..30).map(|i| format!("value-{i}:x")).collect();
    expected.sort();
    assert_eq!(values, expected);
    assert_eq!(
        committed(tansu.addr(), "resumers", "resume", 3),
        expected_commits(&all, 3)
    );
}

#[test]
fn sigint_commits_what_was_printed_leaves_and_exits_zero() {
    let tansu = Tansu::start();
    tansu.create_topic("interrupted", 3).expect("create topic");
    produce_lines(tansu.addr(), "interrupted", &keyed_lines(30));
    // No periodic commit in the test's time: what is committed is what
    // the shutdown path commits.
    let mut child = krust(&[
        "consume",
        "-b",
        tansu.addr(),
        "-t",
        "interrupted",
        "-g",
        "interrupted-group",
        "-f",
        "%p %o %s\\n",
        "-X",
        SESSION,
        "-X",
        "auto.commit.interval.ms=600000",
    ])
    .spawn()
    .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut printed = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut n = 0;
    while n < 30 {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("only {n} records printed in 60 s:\n{printed}")
        });
        printed.push_str(&line);
        printed.push('\n');
        n += 1;
    }
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits i32"));
    kill(pid, Signal::SIGINT).expect("SIGINT");
    let o = wait_output(child, Duration::from_secs(30), "consume after SIGINT");
    assert_eq!(o.status.code(), Some(0), "stderr:\n{}", stderr(&o));
    // The stdout reader thread owns the pipe; anything after the 30th line
    // would be a duplicate.
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(rest.is_empty(), "printed more than was produced: {rest:?}");
    let lines = parse_lines(&printed);
    assert_eq!(
        committed(tansu.addr(), "interrupted-group", "interrupted", 3),
        expected_commits(&lines, 3)
    );
    assert!(stderr(&o).contains("interrupted"), "{}", stderr(&o));
}

#[test]
fn commit_modes_other_than_none_need_a_group() {
    for mode in ["each", "auto"] {
        let o = run(
            &["consume", "-b", "127.0.0.1:1", "-t", "t", "--commit", mode],
            b"",
            Duration::from_secs(10),
        );
        assert_eq!(o.status.code(), Some(2), "{mode}: {}", stderr(&o));
        assert!(stderr(&o).contains("needs a group"), "{}", stderr(&o));
    }
}

#[test]
fn auto_commit_stopping_mid_batch_commits_only_what_was_printed() {
    let tansu = Tansu::start();
    tansu.create_topic("midbatch", 1).expect("create topic");
    produce_lines(tansu.addr(), "midbatch", &keyed_lines(50));
    // One partition, one fetch: the 50 records arrive in one batch and
    // `-c 7` stops after the 7th; close() commits (auto mode) offset 7.
    let o = run(
        &[
            "consume",
            "-b",
            tansu.addr(),
            "-t",
            "midbatch",
            "-g",
            "midbatch-group",
            "-c",
            "7",
            "-f",
            "%p %o %s\\n",
            "-X",
            SESSION,
        ],
        b"",
        Duration::from_secs(60),
    );
    assert_success(&o, "consume");
    let lines = parse_lines(&stdout(&o));
    assert_eq!(lines.len(), 7, "{lines:?}");
    assert_eq!(
        committed(tansu.addr(), "midbatch-group", "midbatch", 1),
        BTreeMap::from([(0, 7)])
    );
}

#[test]
fn a_missing_topic_is_an_error_and_is_not_created() {
    let tansu = Tansu::start();
    // Twice: had the first run auto-created the topic, the second would
    // find it and exit 0 at its empty end instead of failing.
    for _ in 0..2 {
        let o = run(
            &["consume", "-b", tansu.addr(), "-t", "no-such-topic", "-e"],
            b"",
            Duration::from_secs(30),
        );
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains("topic no-such-topic") && err.contains("UNKNOWN_TOPIC_OR_PARTITION"),
            "{err}"
        );
    }
}

#[test]
fn json_output_is_one_object_per_record() {
    let tansu = Tansu::start();
    tansu.create_topic("js", 1).expect("create topic");
    let broker = tansu.addr();
    produce_lines(broker, "js", "k:say \"hi\"\nonly-value\n");
    let o = run(
        &["consume", "-b", broker, "-t", "js", "-e", "--json"],
        b"",
        Duration::from_secs(60),
    );
    assert_success(&o, "consume --json");
    let out = String::from_utf8(o.stdout).expect("utf-8");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with(r#"{"topic":"js","partition":0,"offset":0,"timestamp":"#)
            && lines[0].ends_with(r#","key":"k","value":"say \"hi\"","headers":[]}"#),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains(r#""offset":1,"#)
            && lines[1].ends_with(r#","key":null,"value":"only-value","headers":[]}"#),
        "{}",
        lines[1]
    );
    let both = run(
        &[
            "consume", "-b", broker, "-t", "js", "-e", "--json", "-f", "%s",
        ],
        b"",
        Duration::from_secs(10),
    );
    assert_eq!(both.status.code(), Some(2), "--json and -f conflict");
}
