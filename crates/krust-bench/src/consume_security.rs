//! `krust-bench consume-security`: what TLS and SASL cost a consumer. One
//! Apache Kafka 4.4.0 node with a PLAINTEXT and a SASL_SSL listener
//! (`krust_testkit::SecureKafka`); one topic filled through PLAINTEXT by
//! krust's producer (not timed); then krust's consumer reads all of it,
//! in its own child process and a fresh group per run, alternately over
//! PLAINTEXT and over SASL_SSL (SCRAM-SHA-512, TLS 1.3 with graviola's
//! cryptography), each run checking that it saw every record once. The
//! broker runs with the optimizing JIT, as in production.
//!
//! ```text
//! cargo run --release -p krust-bench -- consume-security [--records 1000000] [--size 100]
//!     [--partitions 1] [--repeat 3]
//! ```

use std::process::Stdio;
use std::time::Instant;

use krust_testkit::{SASL_USER, SecureKafka};

use crate::consume::{fill, rate, summary, verify};
use crate::report::{self, RunResult, median};
use crate::{Settings, workspace_root};

const PLAINTEXT: &str = "krust-plaintext";
const SASL_SSL: &str = "krust-sasl_ssl";

pub fn run(mut s: Settings) {
    s.clients = vec![PLAINTEXT.to_owned(), SASL_SSL.to_owned()];
    // The broker with the optimizing JIT (C2), as in production: with the
    // test fixture's C1-only JVM its TLS is slower than the client's.
    let kafka = SecureKafka::try_start_with(Some(&["-XX:+UseSerialGC"]))
        .unwrap_or_else(|e| panic!("cannot start Kafka: {e}"));
    let plain = kafka.addr("PLAINTEXT");
    let secure = kafka.addr("SASL_SSL");
    let (user, password) = SASL_USER;
    let props = [
        "security.protocol=SASL_SSL".to_owned(),
        "sasl.mechanism=SCRAM-SHA-512".to_owned(),
        format!("sasl.username={user}"),
        format!("sasl.password={password}"),
        format!("ssl.ca.location={}", kafka.pki().ca().display()),
    ];
    let topic = format!("bench-security-{}", std::process::id());
    kafka
        .kafka()
        .as_cluster()
        .create_topic(&topic, s.partitions)
        .expect("create topic");
    eprintln!(
        "Kafka 4.4.0: PLAINTEXT {plain}, SASL_SSL {secure}; filling {topic}: {} records x {} B, \
         {} partitions (krust producer over PLAINTEXT, not timed) ...",
        s.records, s.size, s.partitions
    );
    let filled_at = Instant::now();
    let ends = fill(&s, &plain, &topic);
    let expect: Vec<String> = ends.iter().map(|(p, e)| format!("{p}:{e}")).collect();
    let expect = expect.join(",");
    eprintln!("filled in {:.1} s", filled_at.elapsed().as_secs_f64());

    // The broker's JVM (the only `kafka.Kafka` running here).
    let broker_pid = crate::cpu::find_process_with_arg("kafka.Kafka");
    eprintln!("broker pid {broker_pid:?}");
    let exe = std::env::current_exe().expect("current_exe");
    let unused = workspace_root();
    let mut results: Vec<RunResult> = Vec::new();
    for run in 0..s.repeat {
        let mut order = s.clients.clone();
        if run % 2 == 1 {
            order.reverse();
        }
        for client in order {
            let group = format!("bench-security-{client}-{run}-{}", std::process::id());
            let mut cmd = crate::client_command(&s, &client, &exe, "krust-consume-child", &unused);
            let bootstrap = if client == SASL_SSL { &secure } else { &plain };
            cmd.args(["--runtime", &s.runtime])
                .args(["--bootstrap", bootstrap])
                .args(["--topic", &topic])
                .args(["--group", &group])
                .args(["--expect", &expect]);
            if client == SASL_SSL {
                for p in &props {
                    cmd.args(["--prop", p]);
                }
            }
            cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
            let mut r = report::run_child(&mut cmd, &client, broker_pid);
            r.client = client.clone();
            eprintln!("run {run}: {}", summary(&r));
            verify(&r, s.records, s.size);
            results.push(r);
        }
    }
    print_table(&s, &results);
}

fn print_table(s: &Settings, results: &[RunResult]) {
    let of = |client: &str, f: &dyn Fn(&RunResult) -> f64| {
        median(
            results
                .iter()
                .filter(|r| r.client == client)
                .map(f)
                .collect(),
        )
    };
    let spread = |client: &str, f: &dyn Fn(&RunResult) -> f64| {
        let v: Vec<f64> = results
            .iter()
            .filter(|r| r.client == client)
            .map(f)
            .collect();
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!("{lo:.2}–{hi:.2}")
    };
    let cpu = |r: &RunResult| r.cpu_us_per_record();
    let cpu_per_m = |r: &RunResult| r.cpu.total() / r.records as f64 * 1e6;
    println!(
        "\nconsume {} records x {} B from {} partition(s) on Kafka 4.4.0, one krust consumer in a \
         fresh group per run, over PLAINTEXT and over SASL_SSL (SCRAM-SHA-512), median of {} \
         run(s) each\n",
        s.records, s.size, s.partitions, s.repeat
    );
    println!(
        "| listener | runs | records/s | CPU s per 1M records | CPU µs/record (min–max) | broker CPU s |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for c in [PLAINTEXT, SASL_SSL] {
        println!(
            "| {} | {} | {:.0} | {:.3} | {:.3} ({}) | {:.2} |",
            c.trim_start_matches("krust-"),
            results.iter().filter(|r| r.client == c).count(),
            of(c, &rate),
            of(c, &cpu_per_m),
            of(c, &cpu),
            spread(c, &cpu),
            of(c, &|r| r.broker_cpu.unwrap_or(f64::NAN))
        );
    }
    println!(
        "| SASL_SSL / PLAINTEXT | | {:.2}x | {:.2}x | {:.2}x | {:.2}x |",
        of(SASL_SSL, &rate) / of(PLAINTEXT, &rate),
        of(SASL_SSL, &cpu_per_m) / of(PLAINTEXT, &cpu_per_m),
        of(SASL_SSL, &cpu) / of(PLAINTEXT, &cpu),
        of(SASL_SSL, &|r| r.broker_cpu.unwrap_or(f64::NAN))
            / of(PLAINTEXT, &|r| r.broker_cpu.unwrap_or(f64::NAN))
    );
}
