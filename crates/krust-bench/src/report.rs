//! The RESULT line both clients print, verification and the table.

use crate::Settings;
use crate::cpu::{self, Cpu};

/// What one client run measured.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    pub client: String,
    pub records: u64,
    pub bytes: u64,
    /// From creating the producer to closing it, all reports received.
    pub wall: f64,
    /// getrusage(RUSAGE_SELF) delta over `wall`'s window.
    pub cpu: Cpu,
    /// CPU of the thread driving the send loop (krust: main thread blocking
    /// on the runtime; peer: the Python interpreter thread).
    pub main_thread: f64,
    /// CPU of the other threads (krust: tokio workers; peer: librdkafka's
    /// `rdk:*` threads).
    pub other_threads: f64,
    pub delivered: u64,
    pub failed: u64,
    /// Sum over partitions of (highest acknowledged offset + 1).
    pub offsets: u64,
    pub partitions_used: u64,
    pub note: String,
    /// Consume: seconds from creating the consumer to the first record
    /// (group join, offset lookup, first fetch).
    pub join: f64,
    /// Consume: records seen more than once.
    pub duplicates: u64,
    /// Consume: records at offsets that were never produced.
    pub unexpected: u64,
    /// Consume: produced offsets never seen.
    pub missing: u64,
    /// Set by the harness: whole child process incl. start-up (RUSAGE_CHILDREN).
    pub process_cpu: f64,
    pub process_wall: f64,
    /// Set by the harness: the broker's CPU during this run.
    pub broker_cpu: Option<f64>,
}

impl RunResult {
    pub fn to_line(&self) -> String {
        format!(
            "RESULT client={} records={} bytes={} wall={:.6} cpu_user={:.6} cpu_sys={:.6} \
             main_thread={:.3} other_threads={:.3} delivered={} failed={} offsets={} \
             partitions_used={} join={:.6} duplicates={} unexpected={} missing={} note={}",
            self.client,
            self.records,
            self.bytes,
            self.wall,
            self.cpu.user,
            self.cpu.sys,
            self.main_thread,
            self.other_threads,
            self.delivered,
            self.failed,
            self.offsets,
            self.partitions_used,
            self.join,
            self.duplicates,
            self.unexpected,
            self.missing,
            if self.note.is_empty() {
                "-"
            } else {
                &self.note
            }
        )
    }

    pub fn from_line(line: &str) -> RunResult {
        let mut r = RunResult::default();
        for kv in line.split_whitespace().skip(1) {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let f = || v.parse::<f64>().unwrap_or(f64::NAN);
            let u = || v.parse::<u64>().unwrap_or(0);
            match k {
                "client" => r.client = v.to_owned(),
                "records" => r.records = u(),
                "bytes" => r.bytes = u(),
                "wall" => r.wall = f(),
                "cpu_user" => r.cpu.user = f(),
                "cpu_sys" => r.cpu.sys = f(),
                "main_thread" => r.main_thread = f(),
                "other_threads" => r.other_threads = f(),
                "delivered" => r.delivered = u(),
                "failed" => r.failed = u(),
                "offsets" => r.offsets = u(),
                "partitions_used" => r.partitions_used = u(),
                "join" => r.join = f(),
                "duplicates" => r.duplicates = u(),
                "unexpected" => r.unexpected = u(),
                "missing" => r.missing = u(),
                "note" if v != "-" => r.note = v.to_owned(),
                _ => {}
            }
        }
        r
    }

    /// Exactly `n` records acknowledged, none failed, and the partitions'
    /// offsets (fresh topic: they start at 0) account for exactly `n`
    /// records: nothing lost, nothing written twice.
    pub fn verify(&self, n: u64) {
        assert_eq!(
            self.failed, 0,
            "{}: failed deliveries ({})",
            self.client, self.note
        );
        assert_eq!(self.delivered, n, "{}: delivery reports", self.client);
        assert_eq!(
            self.offsets, n,
            "{}: sum over partitions of (max offset + 1)",
            self.client
        );
    }

    pub fn rate(&self) -> f64 {
        self.records as f64 / self.wall
    }

    pub fn mbps(&self) -> f64 {
        self.bytes as f64 / self.wall / 1e6
    }

    pub fn cpu_us_per_record(&self) -> f64 {
        self.cpu.total() / self.records as f64 * 1e6
    }

    pub fn summary(&self) -> String {
        format!(
            "{:<9} {:>10.0} rec/s {:>7.1} MB/s  wall {:.2} s  cpu {:.2} s (user {:.2} sys {:.2}; \
             main thread {:.2}, other threads {:.2}) = {:.2} µs/rec; whole process {:.2} s; \
             broker {} s; delivered {} offsets {} on {} partitions",
            self.client,
            self.rate(),
            self.mbps(),
            self.wall,
            self.cpu.total(),
            self.cpu.user,
            self.cpu.sys,
            self.main_thread,
            self.other_threads,
            self.cpu_us_per_record(),
            self.process_cpu,
            self.broker_cpu
                .map_or_else(|| "?".to_owned(), |b| format!("{b:.2}")),
            self.delivered,
            self.offsets,
            self.partitions_used
        )
    }
}

/// Run one client's child process (`cmd`, stdout piped) and read its
/// `RESULT` line; adds the child's whole-process CPU and wall time and the
/// broker's CPU (`broker_pid`) over the same run.
pub fn run_child(
    cmd: &mut std::process::Command,
    client: &str,
    broker_pid: Option<u32>,
) -> RunResult {
    let broker_before = broker_pid.and_then(cpu::process_cpu);
    let children_before = cpu::children_cpu();
    let started = std::time::Instant::now();
    let out = cmd.output().expect("run client");
    let elapsed = started.elapsed();
    let children = cpu::children_cpu() - children_before;
    let broker = match (broker_before, broker_pid.and_then(cpu::process_cpu)) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    assert!(out.status.success(), "{client} run failed: {}", out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .unwrap_or_else(|| panic!("{client} printed no RESULT line:\n{stdout}"));
    let mut r = RunResult::from_line(line);
    r.process_cpu = children.total();
    r.process_wall = elapsed.as_secs_f64();
    r.broker_cpu = broker.map(|b| b.total());
    r
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

struct Row {
    client: String,
    runs: usize,
    rate: f64,
    mbps: f64,
    cpu: f64,
    us: f64,
    main: f64,
    other: f64,
    broker: f64,
}

pub fn print_table(s: &Settings, results: &[RunResult]) {
    let rows: Vec<Row> = s
        .clients
        .iter()
        .map(|c| {
            let rs: Vec<&RunResult> = results.iter().filter(|r| &r.client == c).collect();
            let m = |f: &dyn Fn(&RunResult) -> f64| median(rs.iter().map(|r| f(r)).collect());
            Row {
                client: c.clone(),
                runs: rs.len(),
                rate: m(&|r| r.rate()),
                mbps: m(&|r| r.mbps()),
                cpu: m(&|r| r.cpu.total()),
                us: m(&|r| r.cpu_us_per_record()),
                main: m(&|r| r.main_thread),
                other: m(&|r| r.other_threads),
                broker: m(&|r| r.broker_cpu.unwrap_or(f64::NAN)),
            }
        })
        .collect();
    println!(
        "\n{} records x {} B, {} partitions, compression {}, acks=all, linger.ms {}, batch.size {}, \
         idempotence on (median of {} run(s) each)\n",
        s.records, s.size, s.partitions, s.compression, s.linger_ms, s.batch_size, s.repeat
    );
    println!(
        "| client | runs | records/s | MB/s | CPU s | CPU µs/record | send-loop thread s | other threads s | broker CPU s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {:.0} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            r.client, r.runs, r.rate, r.mbps, r.cpu, r.us, r.main, r.other, r.broker
        );
    }
    if let (Some(k), Some(p)) = (
        rows.iter().find(|r| r.client == "krust"),
        rows.iter().find(|r| r.client != "krust"),
    ) {
        println!(
            "| krust/{} | | {:.2}x | {:.2}x | {:.2}x | {:.2}x | {:.2}x | {:.2}x | {:.2}x |",
            p.client,
            k.rate / p.rate,
            k.mbps / p.mbps,
            k.cpu / p.cpu,
            k.us / p.us,
            k.main / p.main,
            k.other / p.other,
            k.broker / p.broker
        );
    }
}
