//! One krust run, in a child process of the harness.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use krust_producer::{DeliveryFuture, Producer, ProducerRecord, RecordMetadata};

use crate::Settings;
use crate::cpu;
use crate::report::RunResult;

/// Delivery futures outstanding at most: 1M oneshot receivers held at once
/// would measure the allocator, not the producer. `buffer.memory` (32 MiB)
/// bounds the records in flight anyway.
const WINDOW: usize = 65_536;

#[derive(Default)]
struct Tally {
    delivered: u64,
    failed: u64,
    first_error: Option<String>,
    /// partition -> (count, max offset)
    partitions: BTreeMap<i32, (u64, i64)>,
}

impl Tally {
    fn add(&mut self, r: Result<RecordMetadata, krust_producer::ProduceError>) {
        match r {
            Ok(m) => {
                self.delivered += 1;
                let e = self.partitions.entry(m.partition).or_insert((0, -1));
                e.0 += 1;
                e.1 = e.1.max(m.offset);
            }
            Err(e) => {
                self.failed += 1;
                self.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

pub fn run(s: &Settings, bootstrap: &str, topic: &str, pool_path: &str) -> RunResult {
    let rt = crate::runtime(s);
    let pool = Bytes::from(std::fs::read(pool_path).expect("read value pool"));
    let values: Vec<Bytes> = (0..pool.len() / s.size)
        .map(|i| pool.slice(i * s.size..(i + 1) * s.size))
        .collect();
    let mask = values.len() - 1;
    // One shared name: a record costs no copy of it.
    let topic: std::sync::Arc<str> = topic.into();

    let split = cpu::main_and_other_threads;
    let (main0, other0) = split();
    let cpu0 = cpu::self_cpu();
    let started = Instant::now();
    let tally = rt.block_on(async {
        let config = crate::producer_config(s, bootstrap);
        let producer = Producer::new(config).await.expect("producer");
        let mut tally = Tally::default();
        let mut window: VecDeque<DeliveryFuture> = VecDeque::with_capacity(WINDOW);
        for i in 0..s.records as usize {
            let record = ProducerRecord::new(&topic, values[i & mask].clone());
            window.push_back(producer.send(record).await.expect("send"));
            if window.len() >= WINDOW {
                tally.add(window.pop_front().expect("non-empty").await);
            }
        }
        producer.flush().await.expect("flush");
        for f in window {
            tally.add(f.await);
        }
        producer
            .close(Duration::from_secs(30))
            .await
            .expect("close");
        tally
    });
    let wall = started.elapsed().as_secs_f64();
    let used = cpu::self_cpu() - cpu0;
    // The send loop runs on the thread that blocks on the runtime (main);
    // the producer's sender task and the connection tasks on the workers.
    let (main1, other1) = split();
    let (main_t, other_t) = (main1 - main0, other1 - other0);
    let counts: Vec<String> = tally
        .partitions
        .iter()
        .map(|(p, (n, _))| format!("{p}:{n}"))
        .collect();
    eprintln!("krust records per partition: {}", counts.join(" "));
    RunResult {
        client: "krust".to_owned(),
        records: s.records,
        bytes: s.records * s.size as u64,
        wall,
        cpu: used,
        main_thread: main_t,
        other_threads: other_t,
        delivered: tally.delivered,
        failed: tally.failed,
        offsets: tally
            .partitions
            .values()
            .map(|&(_, max)| (max + 1) as u64)
            .sum(),
        partitions_used: tally.partitions.len() as u64,
        note: tally.first_error.unwrap_or_default().replace(' ', "_"),
        ..RunResult::default()
    }
}
