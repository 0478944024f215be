//! `krust-bench groups-describe`: how long `krust groups describe` takes
//! to answer for a group of many partitions, next to Kafka's
//! `kafka-consumer-groups.sh --describe` timed the same way (a process
//! started per run, wall time from spawn to exit, the child's CPU from
//! `getrusage(RUSAGE_CHILDREN)`). One Apache Kafka 4.4.0 node; one topic of
//! `--partitions` partitions filled with keyed records; the group's offsets
//! set to 10 on every partition, so every partition lags and krust reads
//! the record at each committed offset for the lag in time; a krust member
//! that holds every partition and commits nothing. Both tools' rows are
//! checked to agree (committed, log end, lag) before anything is timed.
//!
//! ```text
//! cargo build --release -p krust-cli -p krust-bench
//! target/release/krust-bench groups-describe [--partitions 100] [--repeat 5]
//! ```
//!
//! The Kafka tool runs in the fixture's quick-start JVM (C1 only, serial
//! GC, 256 MiB heap), which starts faster than `kafka-run-class.sh`'s
//! defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use krust_testkit::{CONSUMER_GROUP_COMMAND, Kafka};

use crate::cpu::children_cpu;
use crate::report::median;

/// The `krust` binary built beside this one.
fn krust_bin() -> PathBuf {
    let me = std::env::current_exe().expect("current exe");
    let bin = me.with_file_name("krust");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build --release -p krust-cli -p krust-bench`",
        bin.display()
    );
    bin
}

fn krust(args: &[&str]) -> std::process::Output {
    let o = Command::new(krust_bin())
        .args(args)
        .output()
        .expect("run krust");
    assert!(
        o.status.success(),
        "krust {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// (partition -> (committed, log end, lag)) of a table whose header holds
/// `columns` (those three, by the tool's names), rows of other widths
/// skipped.
fn rows(out: &str, columns: [&str; 3]) -> BTreeMap<i32, (String, String, String)> {
    let mut header: Vec<&str> = Vec::new();
    let mut rows = BTreeMap::new();
    for line in out.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.contains(&columns[0]) && cols.contains(&"PARTITION") {
            header = cols;
            continue;
        }
        if header.is_empty() || cols.len() != header.len() {
            continue;
        }
        let at = |name: &str| cols[header.iter().position(|h| *h == name).expect(name)];
        let [c, e, l] = columns.map(|name| at(name).to_owned());
        rows.insert(at("PARTITION").parse().expect("partition"), (c, e, l));
    }
    rows
}

/// The rows of `kafka-consumer-groups.sh --describe`.
fn tool_rows(out: &str) -> BTreeMap<i32, (String, String, String)> {
    rows(out, ["CURRENT-OFFSET", "LOG-END-OFFSET", "LAG"])
}

/// The rows of `krust groups describe`.
fn krust_rows(out: &str) -> BTreeMap<i32, (String, String, String)> {
    rows(out, ["COMMITTED", "LOG-END", "LAG"])
}

/// Wall and CPU seconds of `run`, which must wait for its child.
fn timed(run: impl FnOnce() -> String) -> (f64, f64, String) {
    let cpu = children_cpu();
    let started = Instant::now();
    let out = run();
    let wall = started.elapsed().as_secs_f64();
    (wall, (children_cpu() - cpu).total(), out)
}

pub fn run(partitions: i32, repeat: usize) {
    let kafka = Kafka::start();
    let b = kafka.addr();
    let topic = format!("bench-describe-{}", std::process::id());
    let group = format!("bench-describe-group-{}", std::process::id());
    kafka
        .as_cluster()
        .create_topic(&topic, partitions)
        .expect("create topic");
    let records = usize::try_from(partitions).expect("partitions") * 40;
    let lines: String = (0..records).map(|i| format!("k{i}:v{i}\n")).collect();
    let mut produce = Command::new(krust_bin())
        .args(["produce", "-b", &b, "-t", &topic, "-K", ":"])
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("produce");
    {
        use std::io::Write;
        let mut stdin = produce.stdin.take().expect("stdin");
        stdin.write_all(lines.as_bytes()).expect("write");
    }
    assert!(produce.wait().expect("produce").success(), "produce failed");
    krust(&[
        "offsets",
        "reset",
        "-b",
        &b,
        "-g",
        &group,
        "--topic",
        &topic,
        "--to-offset",
        "10",
        "--execute",
    ]);
    let mut member: Child = Command::new(krust_bin())
        .args([
            "consume", "-b", &b, "-t", &topic, "-g", &group, "--commit", "none", "-f", "",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("member");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = krust(&["groups", "describe", "-b", &b, &group, "--members"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains(&format!(" {partitions}  ")) && text.contains("state Stable") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the member never held every partition:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Both tools see the same group before anything is timed.
    let ours = krust_rows(&String::from_utf8_lossy(
        &krust(&["groups", "describe", "-b", &b, &group]).stdout,
    ));
    let theirs = tool_rows(
        &kafka
            .tool(CONSUMER_GROUP_COMMAND, &["--describe", "--group", &group])
            .expect("kafka-consumer-groups"),
    );
    assert_eq!(
        ours.len(),
        usize::try_from(partitions).expect("p"),
        "krust rows"
    );
    assert_eq!(ours, theirs, "krust and kafka-consumer-groups.sh disagree");
    eprintln!(
        "Kafka 4.4.0 at {b}: group {group} on {partitions} partitions, every one lagging; \
         {repeat} runs each, alternating"
    );
    let (mut kw, mut kc, mut jw, mut jc) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..repeat {
        let (w, c, out) = timed(|| {
            String::from_utf8_lossy(&krust(&["groups", "describe", "-b", &b, &group]).stdout)
                .into_owned()
        });
        assert_eq!(krust_rows(&out).len(), ours.len());
        kw.push(w);
        kc.push(c);
        let (w, c, out) = timed(|| {
            kafka
                .tool(CONSUMER_GROUP_COMMAND, &["--describe", "--group", &group])
                .expect("kafka-consumer-groups")
        });
        assert_eq!(tool_rows(&out).len(), ours.len());
        jw.push(w);
        jc.push(c);
        eprintln!(
            "round {}: krust {:.3} s wall {:.3} s CPU; kafka-consumer-groups.sh {:.3} s wall {:.3} s CPU",
            round + 1,
            kw[round],
            kc[round],
            jw[round],
            jc[round]
        );
    }
    let _ = member.kill();
    let _ = member.wait();
    let spread = |v: &[f64]| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(0.0, f64::max);
        format!("{lo:.3}–{hi:.3}")
    };
    let (mkw, mjw) = (median(kw.clone()), median(jw.clone()));
    let (mkc, mjc) = (median(kc.clone()), median(jc.clone()));
    println!("| tool | wall s (median) | range | CPU s (median) | range |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| krust groups describe | {mkw:.3} | {} | {mkc:.3} | {} |",
        spread(&kw),
        spread(&kc)
    );
    println!(
        "| kafka-consumer-groups.sh --describe | {mjw:.3} | {} | {mjc:.3} | {} |",
        spread(&jw),
        spread(&jc)
    );
    println!(
        "\nkrust / Kafka's tool: {:.3}x wall, {:.3}x CPU ({partitions} partitions, {repeat} runs each)",
        mkw / mjw,
        mkc / mjc
    );
}
