//! `krust-bench consume`: fill one topic on one Tansu with krust's producer
//! (not timed), then consume all of it with each client in its own child
//! process, in a fresh consumer group per run: krust's consumer and
//! `confluent-kafka` (librdkafka) as the peer, both with group
//! subscription, `enable.auto.commit=true` and `auto.offset.reset=earliest`.
//! Each client checks that it saw every produced offset of every partition
//! exactly once.

use std::collections::{BTreeMap, VecDeque};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use krust_producer::{DeliveryFuture, Producer, ProducerRecord};
use krust_testkit::Tansu;

use crate::report::{self, RunResult, median};
use crate::{Settings, cpu, workspace_root};

/// Delivery futures outstanding at most while filling (as `produce`).
const WINDOW: usize = 65_536;

/// Produce `s.records` values of `s.size` bytes to `topic` and return each
/// partition's log end offset, checked against the delivery reports.
pub(crate) fn fill(s: &Settings, bootstrap: &str, topic: &str) -> BTreeMap<i32, i64> {
    let pool = Bytes::from(crate::value_pool(s.size));
    let values: Vec<Bytes> = (0..pool.len() / s.size)
        .map(|i| pool.slice(i * s.size..(i + 1) * s.size))
        .collect();
    let mask = values.len() - 1;
    crate::runtime(s).block_on(async {
        let config = crate::producer_config(s, bootstrap);
        let producer = Producer::new(config).await.expect("producer");
        // partition -> (records, highest offset)
        let mut parts: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
        let mut add = |f: Result<krust_producer::RecordMetadata, _>| {
            let m = f.expect("delivery");
            let e = parts.entry(m.partition).or_insert((0, -1));
            e.0 += 1;
            e.1 = e.1.max(m.offset);
        };
        let mut window: VecDeque<DeliveryFuture> = VecDeque::with_capacity(WINDOW);
        for i in 0..s.records as usize {
            let record = ProducerRecord::new(topic, values[i & mask].clone());
            window.push_back(producer.send(record).await.expect("send"));
            if window.len() >= WINDOW {
                add(window.pop_front().expect("non-empty").await);
            }
        }
        producer.flush().await.expect("flush");
        for f in window {
            add(f.await);
        }
        producer
            .close(Duration::from_secs(30))
            .await
            .expect("close");
        // A fresh topic: offsets 0..count, nothing written twice.
        for (p, (count, max)) in &parts {
            assert_eq!(*count, max + 1, "partition {p}: records vs offsets");
        }
        let total: i64 = parts.values().map(|(c, _)| c).sum();
        assert_eq!(u64::try_from(total).ok(), Some(s.records), "records filled");
        parts.into_iter().map(|(p, (c, _))| (p, c)).collect()
    })
}

pub fn consume(s: Settings) {
    let tansu = Tansu::start();
    let bootstrap = tansu.addr().to_owned();
    let tansu_pid = cpu::find_process_with_arg(&format!("tcp://{bootstrap}"));
    let exe = std::env::current_exe().expect("current_exe");
    let peer_script = workspace_root().join("benches/peers/consume_confluent.py");
    let topic = format!("bench-consume-{}", std::process::id());
    tansu
        .create_topic(&topic, s.partitions)
        .expect("create topic");
    eprintln!(
        "Tansu at {bootstrap} (pid {tansu_pid:?}); filling {topic}: {} records x {} B, {} partitions, \
         compression {}, batch.size {}, linger.ms {} (krust producer, not timed) ...",
        s.records, s.size, s.partitions, s.compression, s.batch_size, s.linger_ms
    );
    let filled_at = Instant::now();
    let ends = fill(&s, &bootstrap, &topic);
    let expect: Vec<String> = ends.iter().map(|(p, e)| format!("{p}:{e}")).collect();
    let expect = expect.join(",");
    eprintln!(
        "filled in {:.1} s; log end offsets {expect}",
        filled_at.elapsed().as_secs_f64()
    );

    let mut results: Vec<RunResult> = Vec::new();
    for run in 0..s.repeat {
        let mut order = s.clients.clone();
        if run % 2 == 1 {
            order.reverse();
        }
        for client in order {
            let group = format!("bench-consume-{client}-{run}-{}", std::process::id());
            let mut cmd =
                crate::client_command(&s, &client, &exe, "krust-consume-child", &peer_script);
            cmd.args(["--runtime", &s.runtime])
                .args(["--bootstrap", &bootstrap])
                .args(["--topic", &topic])
                .args(["--group", &group])
                .args(["--expect", &expect])
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit());
            let r = report::run_child(&mut cmd, &client, tansu_pid);
            eprintln!("run {run}: {}", summary(&r));
            verify(&r, s.records, s.size);
            results.push(r);
        }
    }
    print_table(&s, &results);
}

/// Every produced record seen exactly once, with its whole value.
pub(crate) fn verify(r: &RunResult, n: u64, size: usize) {
    let c = &r.client;
    assert!(r.note.is_empty(), "{c}: {}", r.note);
    assert_eq!(r.missing, 0, "{c}: produced records never seen");
    assert_eq!(r.delivered, n, "{c}: distinct records seen");
    assert_eq!(r.duplicates, 0, "{c}: records seen twice");
    assert_eq!(r.unexpected, 0, "{c}: records at offsets never produced");
    assert_eq!(r.bytes, n * size as u64, "{c}: value bytes seen");
}

/// Records per second once records flow (from the first record to the
/// last), which leaves out the group join that Tansu holds for
/// `session.timeout.ms / 2`.
pub(crate) fn rate(r: &RunResult) -> f64 {
    r.records as f64 / (r.wall - r.join)
}

pub(crate) fn summary(r: &RunResult) -> String {
    format!(
        "{:<9} {:>10.0} rec/s after the first record ({:.2} s to it, {:.2} s in all); cpu {:.2} s \
         (user {:.2} sys {:.2}; poll-loop thread {:.2}, other threads {:.2}) = {:.2} µs/rec; \
         whole process {:.2} s; broker {} s; {} distinct, {} duplicates, {} missing",
        r.client,
        rate(r),
        r.join,
        r.wall,
        r.cpu.total(),
        r.cpu.user,
        r.cpu.sys,
        r.main_thread,
        r.other_threads,
        r.cpu_us_per_record(),
        r.process_cpu,
        r.broker_cpu
            .map_or_else(|| "?".to_owned(), |b| format!("{b:.2}")),
        r.delivered,
        r.duplicates,
        r.missing
    )
}

struct Row {
    client: String,
    runs: usize,
    v: [f64; 8],
}

fn print_table(s: &Settings, results: &[RunResult]) {
    let rows: Vec<Row> = s
        .clients
        .iter()
        .map(|c| {
            let rs: Vec<&RunResult> = results.iter().filter(|r| &r.client == c).collect();
            let m = |f: &dyn Fn(&RunResult) -> f64| median(rs.iter().map(|r| f(r)).collect());
            Row {
                client: c.clone(),
                runs: rs.len(),
                v: [
                    m(&rate),
                    m(&|r| r.bytes as f64 / (r.wall - r.join) / 1e6),
                    m(&|r| r.join),
                    m(&|r| r.cpu.total()),
                    m(&|r| r.cpu_us_per_record()),
                    m(&|r| r.main_thread),
                    m(&|r| r.other_threads),
                    m(&|r| r.broker_cpu.unwrap_or(f64::NAN)),
                ],
            }
        })
        .collect();
    println!(
        "\nconsume {} records x {} B from {} partitions (filled by krust's producer, compression {}), \
         one consumer in a fresh group, enable.auto.commit=true, auto.offset.reset=earliest \
         (median of {} run(s) each)\n",
        s.records, s.size, s.partitions, s.compression, s.repeat
    );
    println!(
        "| client | runs | records/s | MB/s | to first record s | CPU s | CPU µs/record | poll-loop thread s | other threads s | broker CPU s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let v = &r.v;
        println!(
            "| {} | {} | {:.0} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            r.client, r.runs, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
        );
    }
    if let (Some(k), Some(p)) = (
        rows.iter().find(|r| r.client == "krust"),
        rows.iter().find(|r| r.client != "krust"),
    ) {
        let x: Vec<String> =
            k.v.iter()
                .zip(&p.v)
                .map(|(a, b)| format!("{:.2}x", a / b))
                .collect();
        println!("| krust/{} | | {} |", p.client, x.join(" | "));
    }
}
