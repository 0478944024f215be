//! `krust lag watch` and `krust lag serve` on Apache Kafka 4.4.0: a group
//! whose consumer stops committing turns `--once` from exit 0 to exit 2
//! within one window; an unreachable cluster is exit 3; the Prometheus
//! page is scraped and holds the group's lag, offsets and statuses.

use std::io::Read as _;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

use super::operate::{describe_json, json_partitions, reset};
use super::*;

/// `krust produce` to partition 0 of `topic`, one line every 100 ms until
/// the flag is set.
fn steady_producer(addr: &str, topic: &str) -> (Arc<AtomicBool>, std::thread::JoinHandle<Output>) {
    let stop = Arc::new(AtomicBool::new(false));
    let mut cmd = krust(&["produce", "-b", addr, "-t", topic, "-p", "0"]);
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn produce");
    let mut stdin = child.stdin.take().expect("stdin");
    let flag = Arc::clone(&stop);
    let handle = std::thread::spawn(move || {
        let mut i = 0u64;
        while !flag.load(Ordering::Relaxed) {
            if writeln!(stdin, "steady-{i}")
                .and_then(|()| stdin.flush())
                .is_err()
            {
                break;
            }
            i += 1;
            std::thread::sleep(Duration::from_millis(100));
        }
        drop(stdin);
        wait_output(child, Duration::from_secs(30), "steady producer")
    });
    (stop, handle)
}

fn watch_once(addr: &str, group: &str, json: bool) -> Output {
    let mut args = vec![
        "lag",
        "watch",
        "-b",
        addr,
        "-g",
        group,
        "--once",
        "--interval",
        "300ms",
        "--window",
        "5",
    ];
    if json {
        args.push("--json");
    }
    run(&args, b"", Duration::from_secs(60))
}

/// The statuses of `--json` by partition of `topic`.
fn statuses(out: &Output, topic: &str) -> BTreeMap<i64, String> {
    let v: Value = serde_json::from_str(&stdout(out)).expect("JSON");
    v["groups"][0]["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .filter(|p| p["topic"] == topic)
        .map(|p| {
            (
                p["partition"].as_i64().expect("p"),
                p["status"].as_str().expect("status").to_owned(),
            )
        })
        .collect()
}

#[test]
fn watch_once_turns_from_ok_to_err_when_the_consumer_stops_committing() {
    let addr = kafka().addr();
    let topic = topic_on(kafka(), "lag-watch", 2);
    let group = unique("watched");
    let (stop, producer) = steady_producer(&addr, &topic);
    let mut consumer = krust(&[
        "consume", "-b", &addr, "-t", &topic, "-g", &group, "--commit", "each", "-X", SESSION,
        "-f", "%p %o\\n",
    ])
    .spawn()
    .expect("spawn consume");
    // Drain its output so it never blocks on a full pipe.
    let mut out = consumer.stdout.take().expect("stdout");
    let drain = std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = out.read_to_end(&mut sink);
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let g = describe_json(&addr, &group);
        let held = json_partitions(&g, &topic);
        if held.len() == 2 && held[&0]["committed"].as_i64().is_some_and(|c| c > 0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the consumer never committed: {g}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Consuming and committing as records arrive: OK, exit 0.
    let o = watch_once(&addr, &group, false);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains(&format!("group {group}: OK")),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("5 of 5 observations"), "{}", stdout(&o));

    // Frozen (still a member, its session far from over): the committed
    // offset stands while records keep coming. STALL, exit 2; partition 1
    // gets nothing, an idle partition, and stays OK.
    let pid = Pid::from_raw(i32::try_from(consumer.id()).expect("pid"));
    kill(pid, Signal::SIGSTOP).expect("SIGSTOP");
    std::thread::sleep(Duration::from_millis(600));
    let o = watch_once(&addr, &group, true);
    let _ = kill(pid, Signal::SIGCONT);
    let _ = consumer.kill();
    let _ = consumer.wait();
    let _ = drain.join();
    stop.store(true, Ordering::Relaxed);
    assert_success(
        &producer.join().expect("producer thread"),
        "steady producer",
    );
    assert_eq!(o.status.code(), Some(2), "{}\n{}", stdout(&o), stderr(&o));
    assert_eq!(
        statuses(&o, &topic),
        BTreeMap::from([(0, "STALL".to_owned()), (1, "OK".to_owned())]),
        "{}",
        stdout(&o)
    );
}

#[test]
fn watch_once_exits_3_when_the_cluster_cannot_be_reached() {
    // A port nothing listens on any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let o = run(
        &[
            "lag",
            "watch",
            "-b",
            &addr,
            "-g",
            "g",
            "--once",
            "-X",
            "bootstrap.timeout.ms=2000",
        ],
        b"",
        Duration::from_secs(30),
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("cannot reach the cluster") && e.contains(&addr),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "one line: {e}");
}

/// GET `path` from `addr`: the status line and the body.
fn get(addr: &str, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the exporter");
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").expect("request");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

/// The value of the sample `name{labels}` in an exposition.
fn sample(body: &str, name: &str, labels: &str) -> Option<f64> {
    let key = format!("{name}{{{labels}}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&key))
        .map(|v| v.parse().expect("a number"))
}

#[test]
fn serve_exposes_lag_offsets_and_statuses_to_prometheus() {
    let addr = kafka().addr();
    let topic = topic_on(kafka(), "lag-serve", 2);
    let group = unique("scraped");
    for (p, n) in [("0", 10), ("1", 4)] {
        let lines: String = (0..n).map(|i| format!("r{i}\n")).collect();
        let o = run(
            &["produce", "-b", &addr, "-t", &topic, "-p", p],
            lines.as_bytes(),
            Duration::from_secs(60),
        );
        assert_success(&o, "produce");
    }
    let plan = std::env::temp_dir().join(format!("{group}.csv"));
    std::fs::write(&plan, format!("{topic},0,6\n{topic},1,4\n")).expect("plan");
    let path = plan.to_str().expect("utf-8");
    let o = reset(&addr, &group, &["--from-file", path, "--execute"]);
    assert_success(&o, "set the offsets");
    let _ = std::fs::remove_file(&plan);

    let mut child = krust(&[
        "lag",
        "serve",
        "-b",
        &addr,
        "-g",
        &group,
        "--listen",
        "127.0.0.1:0",
        "--interval",
        "300ms",
        "--window",
        "3",
    ])
    .spawn()
    .expect("spawn serve");
    let err = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the address served");
    let served = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("no address in {line}"))
        .to_owned();
    let labels = |p: i32| format!("group=\"{group}\",topic=\"{topic}\",partition=\"{p}\"");
    // Until the window has enough observations for partition 0 to STOP:
    // no members, the committed offset standing with lag 4.
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let (status, body) = get(&served, "/metrics");
        assert_eq!(status, "HTTP/1.1 200 OK");
        if sample(&body, "krust_group_partition_status", &labels(0)) == Some(3.0) {
            break body;
        }
        assert!(Instant::now() < deadline, "never STOP:\n{body}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let at = |name: &str, p: i32| sample(&body, name, &labels(p));
    assert_eq!(at("krust_group_lag", 0), Some(4.0), "{body}");
    assert_eq!(at("krust_group_lag", 1), Some(0.0), "{body}");
    assert_eq!(at("krust_group_committed_offset", 0), Some(6.0), "{body}");
    assert_eq!(at("krust_group_log_end_offset", 0), Some(10.0), "{body}");
    assert_eq!(at("krust_group_log_end_offset", 1), Some(4.0), "{body}");
    assert_eq!(at("krust_group_partition_status", 1), Some(0.0), "{body}");
    assert!(
        at("krust_group_lag_seconds", 0).is_some_and(|s| s >= 0.0),
        "{body}"
    );
    assert_eq!(at("krust_group_lag_seconds", 1), Some(0.0), "{body}");
    assert!(at("krust_group_last_commit_age_seconds", 0).is_some_and(|s| s > 0.0));
    let g = format!("group=\"{group}\"");
    assert_eq!(sample(&body, "krust_group_status", &g), Some(2.0), "{body}");
    assert_eq!(
        sample(&body, "krust_group_members", &g),
        Some(0.0),
        "{body}"
    );
    assert_eq!(
        sample(&body, "krust_group_total_lag", &g),
        Some(4.0),
        "{body}"
    );
    assert_eq!(sample(&body, "krust_lag_up", ""), Some(1.0), "{body}");
    assert!(body.contains("# TYPE krust_group_lag gauge"), "{body}");
    assert_eq!(get(&served, "/other").0, "HTTP/1.1 404 Not Found");

    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    kill(pid, Signal::SIGINT).expect("SIGINT");
    let o = wait_output(child, Duration::from_secs(30), "serve after SIGINT");
    assert_eq!(o.status.code(), Some(0));
    // The group was only read.
    assert_eq!(
        describe_json(&addr, &group)["members"],
        Value::Array(vec![])
    );
}

/// A group whose committed offset is past the last data record, with only
/// a transaction's commit marker before the high watermark, is caught up:
/// lag 0 in `describe` and `lag watch` (where `kafka-consumer-groups.sh`
/// counts the marker as lag 1); committed where an aborted transaction's
/// records and markers follow, the lag counts those records. The records
/// come from a transactional confluent-kafka (librdkafka) producer: N0..4,
/// then transactions A (committed), B (aborted), C (committed), each ended
/// by one marker.
#[test]
fn a_committed_offset_behind_only_a_commit_marker_is_caught_up() {
    let addr = kafka().addr();
    let topic = topic_on(kafka(), "lag-markers", 1);
    let group = unique("after-markers");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../krust-consumer/tests/interop/txn_producer.py");
    let out = Command::new(krust_testkit::confluent_python())
        .arg(&script)
        .args([addr.as_str(), topic.as_str(), &unique("cli-txn")])
        .output()
        .expect("run txn_producer.py");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success() && text.ends_with("done\n"), "{text}");
    let offset = |v: &str| -> i64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{v} ")))
            .and_then(|o| o.parse().ok())
            .unwrap_or_else(|| panic!("no {v} in {text}"))
    };
    let (b0, last) = (offset("B0"), offset("C9"));
    let set = |at: i64| {
        let at = at.to_string();
        let o = reset(
            &addr,
            &group,
            &["--topic", &topic, "--to-offset", &at, "--execute"],
        );
        assert_success(&o, "set the offset");
    };

    // Right after C9: only C's commit marker lies before the high
    // watermark.
    set(last + 1);
    let g = describe_json(&addr, &group);
    let p = &json_partitions(&g, &topic)[&0];
    assert_eq!(p["log_end"], last + 2, "C's marker is the last offset: {p}");
    assert_eq!(p["lag"], 0, "{p}");
    assert_eq!(p["lag_ms"], 0, "{p}");
    let tool = kafka()
        .tool(
            krust_testkit::CONSUMER_GROUP_COMMAND,
            &["--describe", "--group", &group],
        )
        .expect("kafka-consumer-groups --describe");
    assert!(
        tool.lines()
            .any(|l| l.contains(&topic) && l.split_whitespace().nth(5) == Some("1")),
        "Kafka's tool counts the marker: {tool}"
    );
    let o = watch_once(&addr, &group, true);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(statuses(&o, &topic), BTreeMap::from([(0, "OK".to_owned())]));

    // At B0: B's ten records (aborted, but read_uncommitted lag counts
    // them), its marker, C's ten and C's marker: 22 offsets, of which the
    // records are lag; the lag in time is B0's age.
    set(b0);
    let g = describe_json(&addr, &group);
    let p = &json_partitions(&g, &topic)[&0];
    assert_eq!(p["lag"], last + 2 - b0, "{p}");
    assert!(p["lag_ms"].as_i64().is_some_and(|ms| ms > 0), "{p}");
}
