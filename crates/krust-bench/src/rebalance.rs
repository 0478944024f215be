//! `krust-bench rebalance`: what a rebalance costs the application. On one
//! Apache Kafka 4.4.0 node, a topic of 12 partitions gets `--rate` records
//! per second (100 B, round the partitions, krust's producer in this
//! process) all along; two members of one client form a group; then a
//! third joins. Measured from the moment the third calls `subscribe` until
//! the group is spread over the three and every partition has delivered a
//! record to its owner since it got it (the window): its length, the
//! records consumed through it per second, and the longest time any
//! partition, and any partition that stayed with its owner, delivered
//! nothing. Classic eager (`range`), classic cooperative-sticky and KIP-848
//! (`group.protocol=consumer`, the broker's `uniform`), krust against the
//! Java client (kafka-clients 4.4.0), each member its own process (krust:
//! `rebalance-member`; Java: `JavaRebalanceMember`), both committing every
//! poll before the next.
//!
//! ```text
//! cargo run --release -p krust-bench -- rebalance [--repeat 3] [--rate 4000]
//!     [--clients krust,java] [--modes eager,cooperative,consumer]
//! ```
//!
//! The node is the test fixture's: classic members bring a 6 s session and
//! 500 ms heartbeats; the consumer protocol's are the broker's, set to the
//! same (`group.consumer.heartbeat.interval.ms` 500, session 6 s) with
//! `group.consumer.assignment.interval.ms` 0.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use bytes::Bytes;
use krust_producer::{Producer, ProducerRecord};
use krust_testkit::{Broker, Kafka, java_peer, unique};

use crate::report::median;

const PARTITIONS: i32 = 12;

/// One member process and the lines it printed, stamped on arrival.
struct Member {
    child: Child,
    stdin: ChildStdin,
}

type Line = (Instant, usize, String);

fn spawn(client: &str, idx: usize, args: [&str; 4], lines: Sender<Line>) -> Member {
    let [bootstrap, group, topic, mode] = args;
    let mut cmd = match client {
        "krust" => {
            let mut c = Command::new(std::env::current_exe().expect("current_exe"));
            c.arg("rebalance-member");
            c
        }
        "java" => java_peer("JavaRebalanceMember"),
        other => panic!("unknown client {other} (krust, java)"),
    };
    let mut child = cmd
        .args([bootstrap, group, topic, mode, "300"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("start the {client} member: {e}"));
    let stdout = child.stdout.take().expect("stdout");
    let stdin = child.stdin.take().expect("stdin");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send((Instant::now(), idx, line)).is_err() {
                break;
            }
        }
    });
    Member { child, stdin }
}

/// The group as the members' lines tell it.
#[derive(Default)]
struct View {
    held: BTreeMap<usize, BTreeSet<i32>>,
    /// When each partition last went to a member.
    since: BTreeMap<i32, Instant>,
    /// Every delivery: when, partition, records.
    got: Vec<(Instant, i32, u64)>,
    subscribed: BTreeMap<usize, Instant>,
    /// Every line, for `KRUST_BENCH_TIMELINE`.
    lines: Vec<Line>,
}

impl View {
    fn take(&mut self, l: &Line) {
        self.lines.push(l.clone());
        let (at, idx, line) = l;
        let mut words = line.split_whitespace();
        match words.next() {
            Some("assigned") => {
                let now: BTreeSet<i32> = words.map(|p| p.parse().expect("partition")).collect();
                let old = self.held.insert(*idx, now.clone()).unwrap_or_default();
                for p in now.difference(&old) {
                    self.since.insert(*p, *at);
                }
            }
            Some("got") => {
                for pn in words {
                    let (p, n) = pn.split_once(':').expect("P:N");
                    let p: i32 = p.parse().expect("partition");
                    // Only the owner's records count (a revoked member's
                    // last batch may come after its revoke line).
                    if self.held.get(idx).is_some_and(|h| h.contains(&p)) {
                        self.got.push((*at, p, n.parse().expect("count")));
                    }
                }
            }
            Some("subscribing") => {
                self.subscribed.insert(*idx, *at);
            }
            _ => {}
        }
    }

    /// `n` members hold something each, disjoint, covering the topic.
    fn spread(&self, n: usize) -> bool {
        let all: BTreeSet<i32> = self.held.values().flatten().copied().collect();
        self.held.values().filter(|h| !h.is_empty()).count() == n
            && self.held.values().map(BTreeSet::len).sum::<usize>() == all.len()
            && all.len() == PARTITIONS as usize
    }

    /// Every partition delivered since it went to its owner and after `t`.
    fn all_flowing(&self, t: Instant) -> bool {
        (0..PARTITIONS).all(|p| {
            let since = self.since.get(&p).copied().unwrap_or(t).max(t);
            self.got.iter().any(|(at, q, _)| *q == p && *at > since)
        })
    }
}

/// What one rebalance cost.
#[derive(Debug, Clone)]
struct Round {
    window: Duration,
    records_per_s: f64,
    stall_any: Duration,
    /// `None` when no partition stayed with its owner (eager).
    stall_kept: Option<Duration>,
    moved: usize,
}

/// Run the writer until `stop`: `rate` records/s round the partitions.
fn writer(
    bootstrap: String,
    topic: String,
    rate: u64,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let p = Producer::builder()
                .bootstrap_servers([bootstrap.as_str()])
                .linger(Duration::from_millis(5))
                .create()
                .await
                .expect("producer");
            let value = Bytes::from(vec![b'x'; 100]);
            let tick = Duration::from_millis(10);
            let per_tick = (rate / 100).max(1);
            let mut sent = 0u64;
            let mut next = tokio::time::Instant::now();
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..per_tick {
                    let part = i32::try_from(sent % PARTITIONS as u64).expect("small");
                    let r = ProducerRecord::new(&*topic, value.clone()).partition(part);
                    drop(p.send(r).await.expect("send"));
                    sent += 1;
                }
                next += tick;
                tokio::time::sleep_until(next).await;
            }
            p.close(Duration::from_secs(10)).await.expect("close");
            sent
        })
    })
}

fn wait(
    lines: &Receiver<Line>,
    view: &mut View,
    bound: Duration,
    what: &str,
    mut done: impl FnMut(&View) -> bool,
) {
    let until = Instant::now() + bound;
    while !done(view) {
        let left = until.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "{what}: not within {bound:?}: held {:?}",
            view.held
        );
        if let Ok(l) = lines.recv_timeout(left.min(Duration::from_millis(100))) {
            view.take(&l);
        }
    }
}

fn round(kafka: &Kafka, client: &str, mode: &str, rate: u64) -> Round {
    let b = kafka.bootstrap();
    let topic = unique("bench-rebalance");
    let group = unique("bench-rebalance-g");
    kafka
        .create_topic(&topic, PARTITIONS)
        .expect("create topic");
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(b.clone(), topic.clone(), rate, stop.clone());
    let (tx, lines) = channel();
    let args = [b.as_str(), group.as_str(), topic.as_str(), mode];
    let mut members = vec![
        spawn(client, 0, args, tx.clone()),
        spawn(client, 1, args, tx.clone()),
    ];
    let mut view = View::default();
    let formed = Instant::now();
    wait(
        &lines,
        &mut view,
        Duration::from_secs(90),
        "two members",
        |v| v.spread(2) && v.all_flowing(formed),
    );
    // Settled: two more seconds of steady deliveries.
    let settle = Instant::now() + Duration::from_secs(2);
    wait(&lines, &mut view, Duration::from_secs(10), "settle", |_| {
        Instant::now() >= settle
    });
    let before = view.held.clone();
    members.push(spawn(client, 2, args, tx));
    wait(
        &lines,
        &mut view,
        Duration::from_secs(60),
        "the third subscribes",
        |v| v.subscribed.contains_key(&2),
    );
    let t0 = view.subscribed[&2];
    wait(
        &lines,
        &mut view,
        Duration::from_secs(90),
        "three members",
        |v| v.spread(3) && v.all_flowing(t0),
    );
    let end = view.got.last().map_or_else(Instant::now, |g| g.0);
    if std::env::var_os("KRUST_BENCH_TIMELINE").is_some() {
        for (at, idx, line) in &view.lines {
            if *at + Duration::from_secs(1) >= t0 && *at <= end {
                let ms = |a: Instant, b: Instant| {
                    a.checked_duration_since(b).map_or_else(
                        || -(b.duration_since(a).as_secs_f64() * 1e3),
                        |d| d.as_secs_f64() * 1e3,
                    )
                };
                eprintln!("{:+9.1} ms member {idx}: {line}", ms(*at, t0));
            }
        }
    }
    let window = end - t0;
    let records: u64 = view
        .got
        .iter()
        .filter(|(at, _, _)| *at > t0 && *at <= end)
        .map(|(_, _, n)| n)
        .sum();
    let owner = |held: &BTreeMap<usize, BTreeSet<i32>>, p: i32| {
        held.iter().find(|(_, h)| h.contains(&p)).map(|(m, _)| *m)
    };
    let mut stall_any = Duration::ZERO;
    let mut stall_kept: Option<Duration> = None;
    let mut moved = 0;
    for p in 0..PARTITIONS {
        let mut times: Vec<Instant> = vec![t0];
        times.extend(
            view.got
                .iter()
                .filter(|(at, q, _)| *q == p && *at > t0 && *at <= end)
                .map(|g| g.0),
        );
        times.push(end);
        let gap = times
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or_default();
        stall_any = stall_any.max(gap);
        let kept =
            owner(&before, p) == owner(&view.held, p) && view.since.get(&p).is_none_or(|s| *s < t0);
        if kept {
            stall_kept = Some(stall_kept.unwrap_or_default().max(gap));
        } else {
            moved += 1;
        }
    }
    for m in &mut members {
        let _ = writeln!(m.stdin, "close");
    }
    for mut m in members {
        let _ = m.child.wait();
    }
    stop.store(true, Ordering::Relaxed);
    w.join().expect("writer");
    let secs = window.as_secs_f64();
    Round {
        window,
        records_per_s: if secs > 0.0 {
            records as f64 / secs
        } else {
            0.0
        },
        stall_any,
        stall_kept,
        moved,
    }
}

pub fn run(repeat: usize, rate: u64, clients: &[String], modes: &[String]) {
    let kafka = Kafka::start();
    eprintln!(
        "{} at {}; {PARTITIONS} partitions, {rate} records/s of 100 B, {repeat} rounds",
        kafka.name(),
        kafka.bootstrap()
    );
    println!(
        "| client | mode | rounds | window s (min–max) | records/s in window | longest stall s | longest stall of a kept partition s | partitions moved |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for mode in modes {
        for client in clients {
            let rounds: Vec<Round> = (0..repeat)
                .map(|i| {
                    let r = round(&kafka, client, mode, rate);
                    eprintln!("{client} {mode} round {}: {r:?}", i + 1);
                    r
                })
                .collect();
            let secs = |f: fn(&Round) -> Duration| -> Vec<f64> {
                rounds.iter().map(|r| f(r).as_secs_f64()).collect()
            };
            let w = secs(|r| r.window);
            let lo = w.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = w.iter().copied().fold(0.0, f64::max);
            let kept: Vec<f64> = rounds
                .iter()
                .filter_map(|r| r.stall_kept.map(|d| d.as_secs_f64()))
                .collect();
            let kept = if kept.is_empty() {
                "–".to_owned()
            } else {
                format!("{:.2}", median(kept))
            };
            println!(
                "| {client} | {mode} | {repeat} | {:.2} ({lo:.2}–{hi:.2}) | {:.0} | {:.2} | {kept} | {:.0} |",
                median(w.clone()),
                median(rounds.iter().map(|r| r.records_per_s).collect()),
                median(secs(|r| r.stall_any)),
                median(rounds.iter().map(|r| r.moved as f64).collect()),
            );
        }
    }
}
