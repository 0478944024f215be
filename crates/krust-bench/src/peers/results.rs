//! `benches/peers/RESULTS.md`, written whole from a run: how it was taken,
//! each client's settings and what it lacks, a table per broker, partition
//! count and operation, and the caveats (kept here, in the code, so that
//! regenerating the file keeps them).

use std::fmt::Write as _;
use std::process::Command;

use super::{Measured, Opts, Outcome, Run, broker_name, rskafka_peer};
use crate::report::median;
use crate::workspace_root;

/// Per client: how it produces, how it consumes, what it lacks against the
/// protocol's settings.
const SETTINGS: [(&str, &str, &str); 8] = [
    (
        "krust",
        "krust-producer: `acks=all`, `linger.ms=5`, `batch.size=1000000`; idempotence on (its default); \
         sticky partitioner for null keys",
        "krust-consumer, classic group, `enable.auto.commit=true`",
    ),
    (
        "rdkafka",
        "rust-rdkafka 0.39.0 `BaseProducer` (librdkafka 2.12.1 built by rdkafka-sys): `acks=all`, \
         `linger.ms=5`, `batch.size=1000000`; idempotence off (librdkafka's default); \
         `consistent_random` for null keys (sticky, `sticky.partitioning.linger.ms`); the sending thread \
         polls for delivery reports and retries on a full local queue (`queue.buffering.max.messages` 100k)",
        "`BaseConsumer` polled record by record, classic group, `enable.auto.commit=true`",
    ),
    (
        "rskafka",
        "rskafka 0.6.0, no compression features: no partitioner, no linger, no batching across calls, \
         no idempotence (`acks=-1` is built in). The harness builds the batches: ~1 MB each, each record stamped as it is made, batch `k` to \
         partition `k % partitions`, one request in flight per partition, the partitions at once",
        "no consumer groups: every partition assigned by hand, a `StreamConsumer` each from the earliest \
         offset (`max_wait_ms=500`, its default 50 MiB max batch), merged; nothing committed",
    ),
    (
        "kacrab",
        "kacrab 0.4.0 (`producer`, `consumer` features): `acks=all`, `linger.ms=5`, `batch.size=1000000`; \
         idempotence on (its default, as Java); its sticky partitioner for null keys",
        "classic group, `enable.auto.commit=true`",
    ),
    (
        "krafka",
        "krafka 0.28.1: `Acks::All`, `linger` 5 ms, `batch_size` 1,000,000 through `enqueue`; idempotent \
         (its default); its default partitioner",
        "classic group (its default protocol), `enable_auto_commit(true)`",
    ),
    (
        "confluent-rust",
        "confluent-kafka 1.0.0 (no default features) `KafkaProducer` on its `&[u8]` `send` path: \
         `acks=all`, `linger.ms=5`, `batch.size=1000000`; the Java client's defaults otherwise \
         (idempotence on, built-in sticky partitioning)",
        "KIP-848 group (`group.protocol=consumer`, the only one it has: Kafka ≥ 4.0, so its consume is not run on Tansu; its produce is), \
         `enable.auto.commit=true`",
    ),
    (
        "java",
        "kafka-clients 4.4.0, `.deps/java-peer` class `JavaBenchPeer` (a separate program, same protocol)",
        "as its program does",
    ),
    (
        "franz-go",
        "franz-go, `.deps/bin/franz-peer` (a separate program, same protocol)",
        "as its program does",
    ),
];

/// The caveats, regenerated with every run.
const CAVEATS: &str = "\
- **Loaded, shared machine.** The broker runs on the same cores as the client, and other work \
may run beside the benchmark (see the load averages above). Wall-clock figures (records/s) swing \
most; CPU seconds per million records are steadier. Read the medians and the spread.
- **What the window covers.** Produce: from just before the client is created to the last \
delivery report (flush/close included). Consume: from just before the consumer is created to the \
record that completes the count, so it includes connecting, the group join or assignment, the \
offset lookup and the first fetch; the final commit and leaving the group are outside it. \
\"whole process\" is the child's RUSAGE_CHILDREN delta: start-up, runtime set-up and shutdown \
included (for the JVM, its start-up and JIT).
- **Not the same knobs everywhere.** Idempotence, partitioners, in-flight limits and fetch sizes \
are each client's own defaults (listed above); only `acks`, `linger.ms` and `batch.size` are set \
alike. rskafka has no batching producer across partitions and no groups: it gets caller-built \
~1 MB batches and hand-assigned partitions, work that the other clients do inside themselves (and rskafka keeps one produce request in flight per partition).
- **Consume reads krust-produced data.** The topic of each consume table was filled once by \
krust's producer (not timed) with the same record size, then read once by krust's consumer (not \
timed, so that no measured client pays the broker's cold read path); every client reads the same \
records.
- **Verification.** Each produce child checks that it got exactly `records` acknowledgements, no \
failure, and each partition's offsets contiguous from 0 (fresh topic). Each consume child checks \
that every partition's offsets were seen exactly once, contiguous from 0, `records` in all, each \
value `size` bytes. A run that fails its check is reported as failed, not measured, and that client's later rounds in the same table are not run.
- **Ratios** are of medians, against rust-rdkafka in the same table (so the same broker process \
or the same kind of fresh broker, and the same partition count).";

pub struct Report {
    started: String,
    load_before: String,
    commit: String,
}

fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .current_dir(workspace_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "?".to_owned())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "?".to_owned())
}

/// `median (min–max)`, or just the value for one run.
fn spread(v: &[f64], f: impl Fn(f64) -> String) -> String {
    let m = median(v.to_vec());
    if v.len() < 2 {
        return f(m);
    }
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{} ({}–{})", f(m), f(lo), f(hi))
}

fn thousands(x: f64) -> String {
    let n = x.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ratio(a: f64, b: Option<f64>) -> String {
    match b {
        Some(b) if b > 0.0 && a.is_finite() => format!("{:.2}x", a / b),
        _ => "–".to_owned(),
    }
}

impl Report {
    pub fn begin(_o: &Opts) -> Report {
        let dirty = sh("git", &["status", "--porcelain", "--untracked-files=no"]);
        let head = sh("git", &["rev-parse", "--short", "HEAD"]);
        Report {
            started: sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            load_before: loadavg(),
            commit: if dirty.is_empty() {
                head
            } else {
                format!("{head} (with uncommitted changes)")
            },
        }
    }

    pub fn finish(&self, o: &Opts, runs: &[Run]) -> String {
        let mut s = String::new();
        let command = format!(
            "krust-bench peers --records {} --size {} --rounds {} --partitions {} --brokers {} \
             --clients {} --fresh {}",
            o.records,
            o.size,
            o.rounds,
            o.partitions
                .iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(","),
            o.brokers.join(","),
            o.clients.join(","),
            if o.fresh_broker { "broker" } else { "topic" }
        );
        let _ = writeln!(
            s,
            "# Peers: krust against other Kafka clients\n\n\
             Generated by `{command}` (`crates/krust-bench/src/peers/`); regenerating overwrites \
             this whole file, caveats included (they live in `peers/results.rs`).\n"
        );
        let _ = writeln!(
            s,
            "- Started {}; commit `{}`.\n- Machine: {} × {}, Linux {}; load average {} at the \
             start, {} at the end.\n- Records: {} × {} B per run, {} round(s) per client; each run \
             is a fresh child process.\n- Brokers: Apache Kafka 4.4.0 (one KRaft node, \
             `krust_testkit::Kafka`), Tansu 0.6.0 (in-memory, `krust_testkit::Tansu`). Produce: \
             a fresh topic per run, {}. Consume: one broker and one topic per table, filled once \
             by krust's producer (not timed), a fresh group per run.\n- Clients run in the order \
             given, reversed every other round.\n",
            self.started,
            self.commit,
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model(),
            sh("uname", &["-r"]),
            self.load_before,
            loadavg(),
            o.records,
            o.size,
            o.rounds,
            if o.fresh_broker {
                "on a fresh Kafka node per client and round (Tansu: one per table)"
            } else {
                "on one broker per table"
            },
        );
        let _ = writeln!(
            s,
            "## Settings\n\nEvery client: records with no key and the same {}-byte value, \
             `acks=all`, `linger.ms=5`, `batch.size=1000000` where it has them; consumers from the \
             beginning (`auto.offset.reset=earliest`), `session.timeout.ms=6000` where it applies. \
             rskafka's batches here are {} records.\n\n| client | produce | consume |\n|---|---|---|",
            o.size,
            rskafka_peer::batch_records(o.size)
        );
        for (c, p, q) in SETTINGS {
            if o.clients.iter().any(|x| x == c) {
                let _ = writeln!(s, "| {c} | {p} | {q} |");
            }
        }
        s.push('\n');
        for b in &o.brokers {
            for &p in &o.partitions {
                for op in ["produce", "consume"] {
                    table(&mut s, o, runs, b, p, op);
                }
            }
        }
        let _ = writeln!(s, "## Caveats\n\n{CAVEATS}");
        s
    }
}

fn table(s: &mut String, o: &Opts, runs: &[Run], broker: &str, p: i32, op: &str) {
    let here: Vec<&Run> = runs
        .iter()
        .filter(|r| r.broker == broker && r.partitions == p && r.op == op)
        .collect();
    let measured = |c: &str| -> Vec<Measured> {
        here.iter()
            .filter(|r| r.client == c)
            .filter_map(|r| match r.outcome {
                Outcome::Measured(m) => Some(m),
                _ => None,
            })
            .collect()
    };
    let rate = |m: &Measured| m.records as f64 / m.wall;
    let per_m = |cpu: f64, m: &Measured| cpu / m.records as f64 * 1e6;
    let rd = measured("rdkafka");
    let rd_rate = (!rd.is_empty()).then(|| median(rd.iter().map(rate).collect()));
    let rd_cpu = (!rd.is_empty()).then(|| median(rd.iter().map(|m| per_m(m.cpu, m)).collect()));
    let _ = writeln!(
        s,
        "## {}, {p} partition{}, {op}\n\n| client | runs | records/s | vs rdkafka | CPU s / 1M records (window) | vs rdkafka | CPU s / 1M records (whole process) | peak RSS MiB |\n|---|---:|---:|---:|---:|---:|---:|---:|",
        broker_name(broker),
        if p == 1 { "" } else { "s" },
    );
    let mut notes = Vec::new();
    for c in &o.clients {
        let ms = measured(c);
        for r in here.iter().filter(|r| &r.client == c) {
            let note = match &r.outcome {
                Outcome::Measured(_) => continue,
                Outcome::NotInstalled => "not installed: run scripts/setup.sh".to_owned(),
                Outcome::Unsupported(why) => why.to_string(),
                Outcome::Failed(e) => format!("round {} failed: {e}", r.round),
                Outcome::Skipped(round) => {
                    format!("not run in round {}: round {round} failed", r.round)
                }
            };
            let line = format!("- {c}: {note}");
            if !notes.contains(&line) {
                notes.push(line);
            }
        }
        if ms.is_empty() {
            continue;
        }
        let rates: Vec<f64> = ms.iter().map(rate).collect();
        let cpus: Vec<f64> = ms.iter().map(|m| per_m(m.cpu, m)).collect();
        let procs: Vec<f64> = ms.iter().map(|m| per_m(m.process_cpu, m)).collect();
        let rss: Vec<f64> = ms.iter().map(|m| m.rss_kb as f64 / 1024.0).collect();
        let _ = writeln!(
            s,
            "| {c} | {} | {} | {} | {} | {} | {} | {} |",
            ms.len(),
            spread(&rates, thousands),
            ratio(median(rates.clone()), rd_rate),
            spread(&cpus, |x| format!("{x:.2}")),
            ratio(median(cpus.clone()), rd_cpu),
            spread(&procs, |x| format!("{x:.2}")),
            spread(&rss, |x| format!("{x:.0}")),
        );
    }
    s.push('\n');
    for n in notes {
        let _ = writeln!(s, "{n}");
    }
    if !s.ends_with("\n\n") {
        s.push('\n');
    }
}
