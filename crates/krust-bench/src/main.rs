//! `krust-bench produce`: 1,000,000 records of 100 bytes to one Tansu on
//! loopback with `acks=all` and `linger.ms=5`, first with krust's producer,
//! then with `confluent-kafka` (librdkafka) as the peer, each in its own
//! child process so that the CPU time of one is never mixed into the other.
//!
//! ```text
//! cargo run --release -p krust-bench -- produce [--records 1000000] [--size 100]
//!     [--partitions 6] [--compression none] [--repeat 1] [--batch-size 16384]
//!     [--linger-ms 5] [--runtime multi|current] [--clients krust,confluent]
//! ```
//!
//! Each client reports, for the window from creating its producer to closing
//! it (every delivery report received), the wall time and the process CPU
//! time from `getrusage(RUSAGE_SELF)`, split by thread where /proc allows.
//! The harness adds the child's whole-process CPU (`RUSAGE_CHILDREN` delta,
//! start-up included) and the broker's CPU over the same run.
//!
//! `krust-bench consume` fills one topic the same way (krust's producer, not
//! timed), then consumes all of it with krust's consumer and with
//! `confluent-kafka`, each in its own child process and a fresh group
//! (`enable.auto.commit=true`, `auto.offset.reset=earliest`), checking that
//! every produced offset of every partition is seen exactly once:
//!
//! ```text
//! cargo run --release -p krust-bench -- consume [--records 1000000] [--size 100]
//!     [--partitions 6] [--repeat 1] [--clients krust,confluent]
//! ```
//!
//! `krust-bench peers` measures krust against the other clients, the Rust
//! ones (rust-rdkafka, rskafka, kacrab, krafka, confluent-kafka) as
//! dependencies of this crate only, the Java client and franz-go as
//! separate programs; each run is a fresh child process speaking one
//! protocol (`peer-child`, see the `peers` module), on Apache Kafka 4.4.0
//! and on Tansu, and the tables go to `benches/peers/RESULTS.md`:
//!
//! ```text
//! cargo run --release -p krust-bench --features peers -- peers [--records 1000000] [--size 100]
//!     [--rounds 3] [--partitions 1,12] [--brokers kafka,tansu]
//!     [--clients krust,rdkafka,rskafka,kacrab,krafka,confluent-rust,java,franz-go]
//!     [--fresh broker|topic]
//! ```

mod consume;
mod consume_security;
mod cpu;
mod groups_describe;
mod krust_consume;
mod krust_run;
#[cfg(feature = "peers")]
mod peers;
mod rebalance;
mod rebalance_member;
mod report;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use krust_testkit::Tansu;

use crate::report::RunResult;

/// Settings shared by the harness, the krust child and the Python peer.
#[derive(Debug, Clone)]
pub struct Settings {
    pub records: u64,
    pub size: usize,
    pub partitions: i32,
    pub compression: String,
    pub batch_size: usize,
    pub linger_ms: u64,
    pub repeat: usize,
    pub runtime: String,
    pub clients: Vec<String>,
    pub python: PathBuf,
}

impl Default for Settings {
    fn default() -> Self {
        let root = workspace_root();
        Settings {
            records: 1_000_000,
            size: 100,
            partitions: 6,
            compression: "none".to_owned(),
            // Kafka's (Java client's) default batch.size; librdkafka's own
            // default is 1,000,000, so the peer is given this one explicitly.
            batch_size: 16_384,
            linger_ms: 5,
            repeat: 1,
            runtime: "multi".to_owned(),
            clients: vec!["krust".to_owned(), "confluent".to_owned()],
            python: root.join(".venv/bin/python"),
        }
    }
}

/// Number of distinct values cycled through (same file for both clients).
const POOL: usize = 4096;

/// The runtime a krust client runs on (`--runtime current|multi`; multi
/// has two workers, one per core here).
fn runtime(s: &Settings) -> tokio::runtime::Runtime {
    match s.runtime.as_str() {
        "current" => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        _ => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build(),
    }
    .expect("tokio runtime")
}

/// krust's producer with the benchmark's settings (acks=all).
fn producer_config(s: &Settings, bootstrap: &str) -> krust_producer::ProducerConfig {
    krust_producer::ProducerConfig::from_properties([
        ("bootstrap.servers", bootstrap.to_owned()),
        ("acks", "all".to_owned()),
        ("linger.ms", s.linger_ms.to_string()),
        ("batch.size", s.batch_size.to_string()),
        ("compression.type", s.compression.clone()),
    ])
    .expect("producer config")
}

/// The child process of one client run: krust's (this binary with
/// `child`) or the Python peer (`peer_script`), with the settings every
/// run passes; stdout is piped for its `RESULT` line.
fn client_command(
    s: &Settings,
    client: &str,
    exe: &Path,
    child: &str,
    peer_script: &Path,
) -> Command {
    let mut c = match client {
        c if c.starts_with("krust") => {
            let mut c = Command::new(exe);
            c.arg(child);
            c
        }
        "confluent" => {
            let mut c = Command::new(&s.python);
            c.arg(peer_script);
            c
        }
        other => panic!("unknown client {other}"),
    };
    c.args(["--records", &s.records.to_string()])
        .args(["--size", &s.size.to_string()])
        .args(["--partitions", &s.partitions.to_string()]);
    c
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn usage() -> ! {
    eprintln!(
        "usage: krust-bench peers [--records N] [--size BYTES] [--rounds R] [--partitions 1,12] \
         [--brokers kafka,tansu] [--clients krust,rdkafka,...] [--fresh broker|topic]\n       \
         krust-bench groups-describe [--partitions P] [--repeat R]\n       \
         krust-bench rebalance [--repeat R] [--rate RECORDS_PER_S] [--clients krust,java] \
         [--modes eager,cooperative,consumer]\n       \
         krust-bench produce|consume [--records N] [--size BYTES] [--partitions P] \
         [--compression none|gzip|snappy|lz4|zstd] [--repeat R] [--batch-size BYTES] \
         [--linger-ms MS] [--runtime multi|current] [--clients krust,confluent] [--python PATH]\n\
         (consume: the producer settings apply to filling the topic)"
    );
    std::process::exit(2)
}

fn parse(args: &[String]) -> (Settings, Vec<(String, String)>) {
    let mut s = Settings::default();
    let mut extra = Vec::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let Some(v) = it.next() else { usage() };
        let num = |v: &str| v.parse::<u64>().unwrap_or_else(|_| usage());
        match flag.as_str() {
            "--records" => s.records = num(v),
            "--size" => s.size = num(v) as usize,
            "--partitions" => s.partitions = num(v) as i32,
            "--compression" => s.compression = v.clone(),
            "--batch-size" => s.batch_size = num(v) as usize,
            "--linger-ms" => s.linger_ms = num(v),
            "--repeat" => s.repeat = num(v).max(1) as usize,
            "--runtime" => s.runtime = v.clone(),
            "--clients" => s.clients = v.split(',').map(str::to_owned).collect(),
            "--python" => s.python = PathBuf::from(v),
            // Child-only settings.
            "--bootstrap" | "--topic" | "--pool" | "--group" | "--expect" | "--prop" => {
                extra.push((flag.trim_start_matches("--").to_owned(), v.clone()))
            }
            _ => usage(),
        }
    }
    (s, extra)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("produce") => produce(parse(&args[1..]).0),
        Some("consume") => consume::consume(parse(&args[1..]).0),
        #[cfg(feature = "peers")]
        Some("peers") => peers::run(peers::parse(&args[1..])),
        // Internal: one run of one client of `peers`, in this (child) process.
        #[cfg(feature = "peers")]
        Some("peer-child") => peers::child_main(&args[1..]),
        #[cfg(not(feature = "peers"))]
        Some("peers" | "peer-child") => {
            eprintln!(
                "krust-bench was built without its `peers` feature (the peer clients): \
                 cargo run --release -p krust-bench --features peers -- peers ..."
            );
            std::process::exit(2);
        }
        Some("consume-security") => consume_security::run(parse(&args[1..]).0),
        Some("rebalance") => {
            let (mut repeat, mut rate) = (3usize, 4000u64);
            let mut clients = vec!["krust".to_owned(), "java".to_owned()];
            let mut modes: Vec<String> = ["eager", "cooperative", "consumer"]
                .map(str::to_owned)
                .to_vec();
            for kv in args[1..].chunks(2) {
                let [k, v] = kv else { usage() };
                let list = || v.split(',').map(str::to_owned).collect();
                match k.as_str() {
                    "--repeat" => repeat = v.parse().unwrap_or_else(|_| usage()),
                    "--rate" => rate = v.parse().unwrap_or_else(|_| usage()),
                    "--clients" => clients = list(),
                    "--modes" => modes = list(),
                    _ => usage(),
                }
            }
            rebalance::run(repeat.max(1), rate, &clients, &modes);
        }
        Some("groups-describe") => {
            let (mut partitions, mut repeat) = (100, 5);
            for pair in args[1..].chunks(2) {
                let [k, v] = pair else { usage() };
                match k.as_str() {
                    "--partitions" => partitions = v.parse().unwrap_or_else(|_| usage()),
                    "--repeat" => repeat = v.parse().unwrap_or_else(|_| usage()),
                    _ => usage(),
                }
            }
            groups_describe::run(partitions, repeat.max(1));
        }
        // Internal: one member of the rebalance benchmark.
        Some("rebalance-member") => match &args[1..] {
            [bootstrap, group, topic, mode, deadline] => rebalance_member::run(
                bootstrap,
                group,
                topic,
                mode,
                deadline.parse().unwrap_or_else(|_| usage()),
            ),
            _ => usage(),
        },
        // Internal: one krust run in this (child) process.
        Some(child @ ("krust-child" | "krust-consume-child")) => {
            let (s, extra) = parse(&args[1..]);
            let get = |k: &str| {
                extra
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_else(|| usage())
            };
            let r = if child == "krust-child" {
                krust_run::run(&s, &get("bootstrap"), &get("topic"), &get("pool"))
            } else {
                // Consumer properties `KEY=VALUE` (security.protocol, ...).
                let props: Vec<(String, String)> = extra
                    .iter()
                    .filter(|(n, _)| n == "prop")
                    .map(|(_, kv)| match kv.split_once('=') {
                        Some((k, v)) => (k.to_owned(), v.to_owned()),
                        None => usage(),
                    })
                    .collect();
                krust_consume::run(
                    &s,
                    &get("bootstrap"),
                    &get("topic"),
                    &get("group"),
                    &get("expect"),
                    &props,
                )
            };
            println!("{}", r.to_line());
        }
        _ => usage(),
    }
}

/// `size`-byte values that look like small JSON events (varied ids, names,
/// amounts, padding): compressible roughly like real payloads, not like
/// zeros and not like random bytes.
/// The record values every client sends: `POOL` JSON-ish values of
/// `size` bytes, the same in every run.
fn value_pool(size: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let words = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
    ];
    let mut out = Vec::with_capacity(POOL * size);
    for i in 0..POOL {
        let mut v = format!(
            "{{\"id\":{},\"user\":\"{}-{}\",\"amount\":{}.{:02},\"n\":{i},\"pad\":\"",
            next() % 1_000_000_000,
            words[(next() % 8) as usize],
            next() % 100_000,
            next() % 10_000,
            next() % 100
        )
        .into_bytes();
        while v.len() < size.saturating_sub(2) {
            v.push(b'a' + (next() % 26) as u8);
        }
        v.extend_from_slice(b"\"}");
        v.resize(size, b' ');
        out.extend_from_slice(&v[..size]);
    }
    out
}

fn write_pool(path: &Path, size: usize) {
    std::fs::write(path, value_pool(size)).expect("write value pool");
}

fn produce(s: Settings) {
    let tansu = Tansu::start();
    let bootstrap = tansu.addr().to_owned();
    let tansu_pid = cpu::find_process_with_arg(&format!("tcp://{bootstrap}"));
    let pool = std::env::temp_dir().join(format!("krust-bench-{}.pool", std::process::id()));
    write_pool(&pool, s.size);
    let exe = std::env::current_exe().expect("current_exe");
    let peer_script = workspace_root().join("benches/peers/produce_confluent.py");
    eprintln!(
        "Tansu at {bootstrap} (pid {tansu_pid:?}); {} records x {} B, {} partitions, compression {}, \
         batch.size {}, linger.ms {}, acks=all, idempotence on; {} repeat(s)",
        s.records, s.size, s.partitions, s.compression, s.batch_size, s.linger_ms, s.repeat
    );

    let mut results: Vec<RunResult> = Vec::new();
    for run in 0..s.repeat {
        // Alternate the order so that neither client always meets a
        // fresher (emptier) broker.
        let mut order = s.clients.clone();
        if run % 2 == 1 {
            order.reverse();
        }
        for client in order {
            let topic = format!(
                "bench-{client}-{}-{run}-{}",
                s.compression,
                std::process::id()
            );
            tansu
                .create_topic(&topic, s.partitions)
                .expect("create topic");
            let mut cmd = crate::client_command(&s, &client, &exe, "krust-child", &peer_script);
            cmd.args(["--compression", &s.compression])
                .args(["--batch-size", &s.batch_size.to_string()])
                .args(["--linger-ms", &s.linger_ms.to_string()])
                .args(["--runtime", &s.runtime])
                .args(["--bootstrap", &bootstrap])
                .args(["--topic", &topic])
                .arg("--pool")
                .arg(&pool)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit());
            let r = report::run_child(&mut cmd, &client, tansu_pid);
            r.verify(s.records);
            eprintln!("run {run}: {}", r.summary());
            results.push(r);
        }
    }
    let _ = std::fs::remove_file(&pool);
    report::print_table(&s, &results);
}
