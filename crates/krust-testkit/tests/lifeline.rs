//! A broker never outlives the test process that started it: a child
//! process (this binary again, as `child`) starts a Kafka node and prints
//! its address; the child is killed with SIGKILL, which runs no destructor
//! at all, and the node must stop accepting connections by itself (the
//! lifeline wrapper sees its pipe close). A stopped (`SIGSTOP`) node must
//! stop too.
//!
//! `harness = false`: the same binary is the test and the child.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use krust_testkit::{Kafka, KafkaCluster, accepts};

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("child") => child(false),
        Some("child-hung") => child(true),
        // `cargo test` passes flags such as --nocapture: run the test.
        _ => {
            for mode in ["child", "child-hung"] {
                killed_parent_takes_its_broker_along(mode);
            }
            println!("lifeline: ok");
        }
    }
}

fn child(hang: bool) {
    if hang {
        let cluster = KafkaCluster::builder().nodes(1).start();
        cluster.pause(1).expect("pause");
        println!("ADDR={}", cluster.bootstrap());
        std::mem::forget(cluster);
    } else {
        let kafka = Kafka::start();
        println!("ADDR={}", kafka.addr());
        std::mem::forget(kafka);
    }
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

fn killed_parent_takes_its_broker_along(mode: &str) {
    let mut child = Command::new(std::env::current_exe().expect("current exe"))
        .arg(mode)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let addr = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("ADDR=").map(str::to_owned))
        .unwrap_or_else(|| panic!("{mode}: the child printed no address"));
    assert!(accepts(&addr), "{mode}: {addr} not up");
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap");
    let killed = Instant::now();
    while accepts(&addr) {
        assert!(
            killed.elapsed() < Duration::from_secs(20),
            "{mode}: {addr} still accepts 20 s after its test process died"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "{mode}: the broker was gone {:?} after its test process",
        killed.elapsed()
    );
}
