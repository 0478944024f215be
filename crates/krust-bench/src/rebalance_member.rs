//! One krust member of the rebalance benchmark, in a child process of the
//! harness (`krust-bench rebalance-member BOOTSTRAP GROUP TOPIC MODE
//! DEADLINE_S`), speaking the lines of the Java member
//! (crates/krust-testkit/java/JavaRebalanceMember.java): `subscribing`,
//! `assigned P ...` after every change, `got P:N ...` per non-empty poll,
//! `closed`. Every non-empty poll is committed (`commit()`) before the
//! next, as the Java member does; `close` on stdin (or its end) closes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use krust_consumer::{Consumer, ConsumerConfig, RebalanceListener, Revoke, TopicPartition};

fn out(line: &str) {
    let mut o = std::io::stdout().lock();
    // The harness reads every line; a closed pipe means it is gone.
    if writeln!(o, "{line}").and_then(|()| o.flush()).is_err() {
        std::process::exit(0);
    }
}

/// Reports the set held after every change.
struct Held(Arc<Mutex<BTreeSet<i32>>>);

impl Held {
    fn change(&self, f: impl FnOnce(&mut BTreeSet<i32>)) {
        let mut h = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut h);
        let parts: String = h.iter().map(|p| format!(" {p}")).collect();
        out(&format!("assigned{parts}"));
    }
}

impl RebalanceListener for Held {
    fn on_assigned(&mut self, partitions: &BTreeSet<TopicPartition>) {
        self.change(|h| h.extend(partitions.iter().map(|t| t.partition)));
    }
    fn on_revoked(&mut self, revoke: &mut Revoke) {
        let gone: Vec<i32> = revoke.partitions().iter().map(|t| t.partition).collect();
        self.change(|h| h.retain(|p| !gone.contains(p)));
    }
    fn on_lost(&mut self, partitions: &BTreeSet<TopicPartition>) {
        self.change(|h| h.retain(|p| !partitions.iter().any(|t| t.partition == *p)));
    }
}

/// The consumer settings of `mode`, as the Java member's.
fn config(bootstrap: &str, group: &str, mode: &str) -> ConsumerConfig {
    let mut props = vec![
        ("bootstrap.servers", bootstrap),
        ("group.id", group),
        ("enable.auto.commit", "false"),
        ("auto.offset.reset", "earliest"),
    ];
    match mode {
        "eager" | "cooperative" => props.extend([
            ("group.protocol", "classic"),
            (
                "partition.assignment.strategy",
                if mode == "eager" {
                    "range"
                } else {
                    "cooperative-sticky"
                },
            ),
            ("session.timeout.ms", "6000"),
            ("heartbeat.interval.ms", "500"),
        ]),
        "consumer" => props.extend([
            ("group.protocol", "consumer"),
            ("group.remote.assignor", "uniform"),
        ]),
        other => panic!("unknown mode {other}"),
    }
    ConsumerConfig::from_properties(props).expect("consumer config")
}

pub fn run(bootstrap: &str, group: &str, topic: &str, mode: &str, deadline_s: f64) {
    let close = Arc::new(AtomicBool::new(false));
    {
        let close = close.clone();
        std::thread::spawn(move || {
            let stdin = std::io::stdin();
            for line in stdin.lock().lines() {
                match line {
                    Ok(l) if l.trim() == "close" => break,
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            close.store(true, Ordering::Relaxed);
        });
    }
    let deadline = Instant::now() + Duration::from_secs_f64(deadline_s);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut c = Consumer::new(config(bootstrap, group, mode))
            .await
            .expect("consumer");
        c.set_rebalance_listener(Held(Arc::default()));
        out("subscribing");
        c.subscribe([topic]).expect("subscribe");
        while !close.load(Ordering::Relaxed) && Instant::now() < deadline {
            let batch = c.poll(Duration::from_millis(50)).await.expect("poll");
            if batch.is_empty() {
                continue;
            }
            let mut per: BTreeMap<i32, usize> = BTreeMap::new();
            for r in &batch {
                *per.entry(r.partition).or_default() += 1;
            }
            let got: String = per.iter().map(|(p, n)| format!(" {p}:{n}")).collect();
            out(&format!("got{got}"));
            // Refused during a rebalance: the next owner reads them again.
            let _ = c.commit().await;
        }
        c.close().await.expect("close");
        out("closed");
    });
}
