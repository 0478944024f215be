//! The `krust` binary end to end, against a Tansu broker: produce then
//! consume back, group commits resuming where a run stopped, SIGINT, and
//! the errors a user meets first (a bad `-X`, no broker).

use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use krust_testkit::Tansu;

/// Tansu holds JoinGroup for session.timeout.ms / 2 (DESIGN.md): keep
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
    // Drain the pipes on threads so a chatty child cannot block on them.
    let mut out = child.stdout.take().expect("stdout piped");
    let mut err = child.stderr.take().expect("stderr piped");
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
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
fn bad_property_names_the_key() {
    for sub in [&["produce"][..]] {
        let mut args = sub.to_vec();
        args.extend(["-b", "127.0.0.1:1", "-t", "t", "-X", "no.such.key=1"]);
        let o = run(&args, b"", Duration::from_secs(10));
        assert!(!o.status.success(), "{args:?}");
        let err = stderr(&o);
        assert!(err.contains("no.such.key"), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
}

#[test]
fn unreachable_broker_gives_up_within_the_bootstrap_timeout_naming_it() {
    let started = Instant::now();
    let o = run(
        &[
            "produce",
            "-b",
            "127.0.0.1:1",
            "-t",
            "t",
            "-X",
            "max.block.ms=2000",
        ],
        b"x\n",
        Duration::from_secs(20),
    );
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}
