//! `krust-bench peers`: krust against the other Kafka clients, each client
//! in a fresh child process per run, on Apache Kafka 4.4.0 and on Tansu;
//! writes `benches/peers/RESULTS.md`.
//!
//! The child protocol (the Java and Go peers are separate programs that
//! speak it too):
//!
//! ```text
//! krust-bench peer-child CLIENT produce|consume KEY=VALUE...
//! java -cp '.deps/java-peer:.deps/kafka/4.4.0/libs/*' JavaBenchPeer produce|consume KEY=VALUE...
//! .deps/bin/franz-peer produce|consume KEY=VALUE...
//! ```
//!
//! with keys `bootstrap`, `topic`, `records`, `size`, `partitions` and, for
//! consume, `group`. Produce sends `records` records with no key and the
//! value of `size` bytes whose byte `i` is `b'a' + i % 26`, `acks=all`,
//! `linger.ms=5`, `batch.size=1000000` where the client has them, and
//! awaits every delivery report. Consume reads from the beginning in the
//! fresh group `group` (`auto.offset.reset=earliest`,
//! `session.timeout.ms=6000`) until `records` records are seen, checking
//! that every partition's offsets were each seen exactly once, contiguous
//! from 0. A child that checked out prints one JSON line on stdout,
//! `{"client":..,"op":..,"records":N,"wall_s":..,"cpu_s":..,"peak_rss_kb":..}`
//! (wall and `getrusage(RUSAGE_SELF)` CPU from just before the client is
//! created to the last delivery report or record; VmHWM at the end), and
//! exits 0; anything else is a failed run.

mod child;
mod confluent_peer;
mod kacrab_peer;
mod krafka_peer;
mod krust_peer;
mod rdkafka_peer;
mod results;
mod rskafka_peer;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use krust_testkit::{Kafka, Tansu};

use crate::{Settings, cpu, workspace_root};

/// A consume child still running after this long is killed (it gives up
/// by itself after [`child::CONSUME_TIMEOUT`]).
const CONSUME_CHILD_TIMEOUT: Duration = Duration::from_secs(600);
/// A produce child still running after this long is killed: the slowest
/// peer takes seconds for a million records, and a client that hangs on a
/// broker (seen with confluent-rust and Java on Tansu) would otherwise hold
/// the run for the consume limit.
const PRODUCE_CHILD_TIMEOUT: Duration = Duration::from_secs(120);

/// The clients, in the order of the tables.
pub const CLIENTS: [&str; 8] = [
    "krust",
    "rdkafka",
    "rskafka",
    "kacrab",
    "krafka",
    "confluent-rust",
    "java",
    "franz-go",
];

/// `krust-bench peers` options.
#[derive(Debug, Clone)]
pub struct Opts {
    pub records: u64,
    pub size: usize,
    pub rounds: usize,
    pub partitions: Vec<i32>,
    pub brokers: Vec<String>,
    pub clients: Vec<String>,
    /// A fresh Kafka node per produce run (`--fresh broker`, the default) or
    /// one node per table with a fresh topic per run (`--fresh topic`).
    pub fresh_broker: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            records: 1_000_000,
            size: 100,
            rounds: 3,
            partitions: vec![1, 12],
            brokers: vec!["kafka".to_owned(), "tansu".to_owned()],
            clients: CLIENTS.map(str::to_owned).to_vec(),
            fresh_broker: true,
        }
    }
}

/// What one run came to.
#[derive(Debug, Clone)]
pub enum Outcome {
    Measured(Measured),
    /// The program of a Java or Go peer is not there.
    NotInstalled,
    /// The client cannot run on this broker (why).
    Unsupported(&'static str),
    Failed(String),
    /// Not run: the client failed an earlier round of the same table.
    Skipped(usize),
}

#[derive(Debug, Clone, Copy)]
pub struct Measured {
    pub records: u64,
    pub wall: f64,
    pub cpu: f64,
    pub rss_kb: u64,
    /// The whole child: RUSAGE_CHILDREN delta around it, start-up included.
    pub process_cpu: f64,
    pub process_wall: f64,
}

#[derive(Debug, Clone)]
pub struct Run {
    pub broker: &'static str,
    pub partitions: i32,
    pub op: &'static str,
    pub client: String,
    pub round: usize,
    pub outcome: Outcome,
}

enum Broker {
    Kafka(Kafka),
    Tansu(Tansu),
}

impl Broker {
    fn start(name: &str) -> Broker {
        match name {
            "kafka" => Broker::Kafka(Kafka::start()),
            "tansu" => Broker::Tansu(Tansu::start()),
            other => panic!("unknown broker {other} (kafka, tansu)"),
        }
    }

    fn addr(&self) -> String {
        match self {
            Broker::Kafka(k) => k.addr(),
            Broker::Tansu(t) => t.addr().to_owned(),
        }
    }

    fn create_topic(&self, name: &str, partitions: i32) {
        let r = match self {
            Broker::Kafka(k) => k.as_cluster().create_topic(name, partitions),
            Broker::Tansu(t) => t.create_topic(name, partitions),
        };
        r.unwrap_or_else(|e| panic!("create topic {name}: {e}"));
    }
}

/// The broker's display name.
pub fn broker_name(name: &str) -> &'static str {
    match name {
        "kafka" => "Apache Kafka 4.4.0",
        _ => "Tansu 0.6.0",
    }
}

pub fn parse(args: &[String]) -> Opts {
    let mut o = Opts::default();
    let usage = || -> ! {
        eprintln!(
            "usage: krust-bench peers [--records 1000000] [--size 100] [--rounds 3] \
             [--partitions 1,12] [--brokers kafka,tansu] [--clients {}] [--fresh broker|topic]",
            CLIENTS.join(",")
        );
        std::process::exit(2)
    };
    for kv in args.chunks(2) {
        let [k, v] = kv else { usage() };
        let list = || v.split(',').map(str::to_owned).collect::<Vec<_>>();
        match k.as_str() {
            "--records" => o.records = v.parse().unwrap_or_else(|_| usage()),
            "--size" => o.size = v.parse().unwrap_or_else(|_| usage()),
            "--rounds" => o.rounds = v.parse::<usize>().unwrap_or_else(|_| usage()).max(1),
            "--partitions" => {
                o.partitions = list()
                    .iter()
                    .map(|p| p.parse().unwrap_or_else(|_| usage()))
                    .collect()
            }
            "--brokers" => o.brokers = list(),
            "--clients" => o.clients = list(),
            "--fresh" => o.fresh_broker = v == "broker",
            _ => usage(),
        }
    }
    for c in &o.clients {
        if !CLIENTS.contains(&c.as_str()) {
            usage()
        }
    }
    for b in &o.brokers {
        if b != "kafka" && b != "tansu" {
            usage()
        }
    }
    o
}

/// `krust-bench peer-child CLIENT OP KEY=VALUE...`: one run in this process.
pub fn child_main(args: &[String]) -> ! {
    let (Some(client), Some(op)) = (args.first(), args.get(1)) else {
        eprintln!("usage: krust-bench peer-child CLIENT produce|consume KEY=VALUE...");
        std::process::exit(2)
    };
    let a = child::Args::parse(&args[2..]).unwrap_or_else(|e| {
        eprintln!("peer-child: {e}");
        std::process::exit(2)
    });
    let run = match (client.as_str(), op.as_str()) {
        ("krust", "produce") => krust_peer::produce,
        ("krust", "consume") => krust_peer::consume,
        ("rdkafka", "produce") => rdkafka_peer::produce,
        ("rdkafka", "consume") => rdkafka_peer::consume,
        ("rskafka", "produce") => rskafka_peer::produce,
        ("rskafka", "consume") => rskafka_peer::consume,
        ("kacrab", "produce") => kacrab_peer::produce,
        ("kacrab", "consume") => kacrab_peer::consume,
        ("krafka", "produce") => krafka_peer::produce,
        ("krafka", "consume") => krafka_peer::consume,
        ("confluent-rust", "produce") => confluent_peer::produce,
        ("confluent-rust", "consume") => confluent_peer::consume,
        _ => {
            eprintln!("peer-child: no Rust peer {client} {op}");
            std::process::exit(2)
        }
    };
    match run(&a) {
        Ok((wall, cpu)) => {
            println!("{}", child::result_line(client, op, a.records, wall, cpu));
            std::process::exit(0)
        }
        Err(e) => {
            eprintln!("{client} {op}: {e}");
            std::process::exit(1)
        }
    }
}

/// The command that runs `client`, or `None` when its program is absent.
fn client_command(client: &str) -> Option<Command> {
    let root = workspace_root();
    match client {
        "java" => {
            let classes = root.join(".deps/java-peer");
            let libs = root.join(".deps/kafka/4.4.0/libs");
            if !classes.join("JavaBenchPeer.class").is_file() || !libs.is_dir() {
                return None;
            }
            let java = std::env::var_os("JAVA_HOME")
                .map(|h| PathBuf::from(h).join("bin/java"))
                .filter(|j| j.is_file())
                .unwrap_or_else(|| PathBuf::from("java"));
            let mut c = Command::new(java);
            c.arg("-cp")
                .arg(format!("{}:{}/*", classes.display(), libs.display()))
                .arg("JavaBenchPeer");
            Some(c)
        }
        "franz-go" => {
            let bin = root.join(".deps/bin/franz-peer");
            bin.is_file().then(|| Command::new(bin))
        }
        rust => {
            let mut c = Command::new(std::env::current_exe().expect("current_exe"));
            c.args(["peer-child", rust]);
            Some(c)
        }
    }
}

/// Why `client` cannot run `op` on `broker`, if it cannot: confluent-kafka
/// consumes only in KIP-848 groups, which Tansu does not have (its
/// producer runs on Tansu).
fn unsupported(client: &str, op: &str, broker: &str) -> Option<&'static str> {
    (client == "confluent-rust" && op == "consume" && broker == "tansu")
        .then_some("needs Kafka ≥ 4.0 (KIP-848 groups only; not run on Tansu)")
}

/// Run one child to its end and read its JSON line.
fn run_child(client: &str, op: &str, kvs: &[(&str, String)]) -> Outcome {
    let Some(mut cmd) = client_command(client) else {
        return Outcome::NotInstalled;
    };
    cmd.arg(op);
    for (k, v) in kvs {
        cmd.arg(format!("{k}={v}"));
    }
    let log = std::env::temp_dir().join(format!(
        "krust-bench-peers-{}-{client}-{op}.log",
        std::process::id()
    ));
    let stderr = std::fs::File::create(&log).expect("child log");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr);
    let before = cpu::children_cpu();
    let started = Instant::now();
    let mut proc = match cmd.spawn() {
        Ok(p) => p,
        Err(e) => return Outcome::Failed(format!("could not start: {e}")),
    };
    let mut out = proc.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let limit = if op == "produce" {
        PRODUCE_CHILD_TIMEOUT
    } else {
        CONSUME_CHILD_TIMEOUT
    };
    let status = loop {
        if let Some(s) = proc.try_wait().expect("wait") {
            break Some(s);
        }
        if started.elapsed() > limit {
            let _ = proc.kill();
            let _ = proc.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let process_wall = started.elapsed().as_secs_f64();
    let process_cpu = (cpu::children_cpu() - before).total();
    let stdout = reader.join().unwrap_or_default();
    let tail = || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(3).collect();
        let mut lines: Vec<&str> = lines.into_iter().rev().collect();
        lines.retain(|l| !l.trim().is_empty());
        format!("{} (log: {})", lines.join(" / "), log.display())
    };
    let Some(status) = status else {
        return Outcome::Failed(format!("killed after {limit:?}: {}", tail()));
    };
    if !status.success() {
        return Outcome::Failed(format!("{status}: {}", tail()));
    }
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'));
    let parsed = line.and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok());
    let Some(v) = parsed else {
        return Outcome::Failed(format!("no JSON line on stdout: {}", tail()));
    };
    let f = |k: &str| v.get(k).and_then(serde_json::Value::as_f64);
    let (Some(records), Some(wall), Some(cpu)) = (f("records"), f("wall_s"), f("cpu_s")) else {
        return Outcome::Failed(format!("JSON line without records/wall_s/cpu_s: {v}"));
    };
    let _ = std::fs::remove_file(&log);
    Outcome::Measured(Measured {
        records: records as u64,
        wall,
        cpu,
        rss_kb: f("peak_rss_kb").unwrap_or(0.0) as u64,
        process_cpu,
        process_wall,
    })
}

fn summary(r: &Run) -> String {
    let what = match &r.outcome {
        Outcome::Measured(m) => format!(
            "{:.0} records/s, CPU {:.2} s; whole process {:.2} s CPU in {:.2} s; peak RSS {} MiB",
            m.records as f64 / m.wall,
            m.cpu,
            m.process_cpu,
            m.process_wall,
            m.rss_kb / 1024
        ),
        Outcome::NotInstalled => "not installed: run scripts/setup.sh".to_owned(),
        Outcome::Unsupported(why) => why.to_string(),
        Outcome::Failed(e) => format!("FAILED: {e}"),
        Outcome::Skipped(round) => format!("not run: round {round} failed"),
    };
    format!(
        "{} {}p {} round {} {}: {what}",
        r.broker, r.partitions, r.op, r.round, r.client
    )
}

/// A topic or group name unique to this harness process.
fn name(what: &str, parts: &[&dyn std::fmt::Display]) -> String {
    let mut s = format!("peers-{what}");
    for p in parts {
        s.push_str(&format!("-{p}"));
    }
    format!("{s}-{}", std::process::id())
}

pub fn run(o: Opts) {
    let report = results::Report::begin(&o);
    let mut runs: Vec<Run> = Vec::new();
    let record = |r: Run, runs: &mut Vec<Run>| {
        eprintln!("peers: {}", summary(&r));
        runs.push(r);
    };
    for broker in &o.brokers {
        let bname: &'static str = if broker == "kafka" { "kafka" } else { "tansu" };
        for &p in &o.partitions {
            // Produce: a fresh topic per run, on a fresh broker per run
            // (Kafka with --fresh broker) or on one broker for the table.
            let fresh = o.fresh_broker && bname == "kafka";
            let shared = (!fresh).then(|| Broker::start(bname));
            for round in 0..o.rounds {
                for client in order(&o.clients, round) {
                    let outcome = if let Some(why) = unsupported(&client, "produce", bname) {
                        Outcome::Unsupported(why)
                    } else if let Some(round) = failed_before(&runs, bname, p, "produce", &client) {
                        Outcome::Skipped(round)
                    } else if client_command(&client).is_none() {
                        Outcome::NotInstalled
                    } else {
                        let own = fresh.then(|| Broker::start(bname));
                        let b = own.as_ref().or(shared.as_ref()).expect("a broker");
                        let topic = name("produce", &[&client, &p, &round]);
                        b.create_topic(&topic, p);
                        run_child(&client, "produce", &kvs(&o, &b.addr(), &topic, p, None))
                    };
                    let run = Run {
                        broker: bname,
                        partitions: p,
                        op: "produce",
                        client,
                        round,
                        outcome,
                    };
                    record(run, &mut runs);
                }
            }
            drop(shared);
            // Consume: one broker and one topic for the table, filled once
            // by krust's producer (not timed); a fresh group per run.
            let b = Broker::start(bname);
            let topic = name("consume", &[&p]);
            b.create_topic(&topic, p);
            let filled = Instant::now();
            let fill = Settings {
                records: o.records,
                size: o.size,
                partitions: p,
                batch_size: 1_000_000,
                ..Settings::default()
            };
            crate::consume::fill(&fill, &b.addr(), &topic);
            eprintln!(
                "peers: {bname} {p}p: filled {topic} in {:.1} s",
                filled.elapsed().as_secs_f64()
            );
            // One untimed read first: the first reader of a freshly filled
            // topic pays the broker's cold read path (its JIT, the page
            // cache), and by the client order that was always krust's
            // round 0 (2.2M and 1.5M records/s where its later rounds gave
            // 4.5M and 3.6-4.0M, on 2026-12-04).
            let warm = kvs(&o, &b.addr(), &topic, p, Some(name("group", &[&"warm-up"])));
            match run_child("krust", "consume", &warm) {
                Outcome::Measured(_) => {
                    eprintln!("peers: {bname} {p}p: read {topic} once, untimed")
                }
                other => eprintln!("peers: {bname} {p}p: the untimed read failed: {other:?}"),
            }
            for round in 0..o.rounds {
                for client in order(&o.clients, round) {
                    let outcome = if let Some(why) = unsupported(&client, "consume", bname) {
                        Outcome::Unsupported(why)
                    } else if let Some(round) = failed_before(&runs, bname, p, "consume", &client) {
                        Outcome::Skipped(round)
                    } else {
                        let group = name("group", &[&client, &round]);
                        let kvs = kvs(&o, &b.addr(), &topic, p, Some(group));
                        run_child(&client, "consume", &kvs)
                    };
                    let run = Run {
                        broker: bname,
                        partitions: p,
                        op: "consume",
                        client,
                        round,
                        outcome,
                    };
                    record(run, &mut runs);
                }
            }
        }
    }
    let path = workspace_root().join("benches/peers/RESULTS.md");
    let text = report.finish(&o, &runs);
    std::fs::write(&path, &text).expect("write RESULTS.md");
    println!("{text}");
    eprintln!("peers: wrote benches/peers/RESULTS.md");
}

/// The round in which `client` failed earlier in this table: its later
/// rounds are not run (a client that cannot work with a broker would
/// otherwise spend its timeout in every round).
fn failed_before(runs: &[Run], broker: &str, p: i32, op: &str, client: &str) -> Option<usize> {
    runs.iter()
        .find(|r| {
            r.broker == broker
                && r.partitions == p
                && r.op == op
                && r.client == client
                && matches!(r.outcome, Outcome::Failed(_))
        })
        .map(|r| r.round)
}

/// The clients in the order of `round`: reversed every other round, so
/// that no client always goes first.
fn order(clients: &[String], round: usize) -> Vec<String> {
    let mut v = clients.to_vec();
    if round % 2 == 1 {
        v.reverse();
    }
    v
}

fn kvs(
    o: &Opts,
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    group: Option<String>,
) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("bootstrap", bootstrap.to_owned()),
        ("topic", topic.to_owned()),
        ("records", o.records.to_string()),
        ("size", o.size.to_string()),
        ("partitions", partitions.to_string()),
    ];
    if let Some(g) = group {
        v.push(("group", g));
    }
    v
}
