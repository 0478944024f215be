//! One krust consume run, in a child process of the harness: join a fresh
//! group subscribed to the filled topic, count records until every offset
//! the harness produced has been seen once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use krust_consumer::{Consumer, ConsumerConfig};

use crate::Settings;
use crate::cpu;
use crate::report::RunResult;

/// Give up (and report what is missing) after this long.
const TIMEOUT: Duration = Duration::from_secs(300);

/// Which offsets of each partition were seen, against the log end offsets
/// the harness got from the producer's delivery reports.
pub struct Seen {
    seen: BTreeMap<i32, Vec<bool>>,
    pub distinct: u64,
    pub duplicates: u64,
    pub unexpected: u64,
    pub value_bytes: u64,
}

impl Seen {
    /// `expect`: `partition:end,partition:end,...`.
    pub fn new(expect: &str) -> Seen {
        let seen = expect
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|pe| {
                let (p, e) = pe.split_once(':').expect("partition:end");
                let end: usize = e.parse().expect("end offset");
                (p.parse().expect("partition"), vec![false; end])
            })
            .collect();
        Seen {
            seen,
            distinct: 0,
            duplicates: 0,
            unexpected: 0,
            value_bytes: 0,
        }
    }

    pub fn expected(&self) -> u64 {
        self.seen.values().map(|v| v.len() as u64).sum()
    }

    pub fn add(&mut self, partition: i32, offset: i64, value_len: usize) {
        self.value_bytes += value_len as u64;
        let slot = self
            .seen
            .get_mut(&partition)
            .and_then(|v| usize::try_from(offset).ok().and_then(|o| v.get_mut(o)));
        match slot {
            Some(s) if *s => self.duplicates += 1,
            Some(s) => {
                *s = true;
                self.distinct += 1;
            }
            None => self.unexpected += 1,
        }
    }

    /// Offsets of `partition` seen so far.
    pub fn count(&self, partition: i32) -> usize {
        self.seen
            .get(&partition)
            .map_or(0, |v| v.iter().filter(|s| **s).count())
    }

    /// The log end offset of `partition`.
    pub fn end(&self, partition: i32) -> usize {
        self.seen.get(&partition).map_or(0, Vec::len)
    }

    /// `partition:missing` for every partition with offsets not seen.
    pub fn missing(&self) -> Vec<String> {
        self.seen
            .iter()
            .filter_map(|(p, v)| {
                let n = v.iter().filter(|s| !**s).count();
                (n > 0).then(|| format!("{p}:{n}"))
            })
            .collect()
    }
}

pub fn run(
    s: &Settings,
    bootstrap: &str,
    topic: &str,
    group: &str,
    expect: &str,
    props: &[(String, String)],
) -> RunResult {
    let rt = crate::runtime(s);
    let mut seen = Seen::new(expect);
    let n = seen.expected();
    let split = cpu::main_and_other_threads;
    let (main0, other0) = split();
    let cpu0 = cpu::self_cpu();
    let started = Instant::now();
    let mut first = None;
    let mut note = String::new();
    // Empty polls after records started to flow (only the first three are
    // described on stderr).
    let mut stalls = 0u32;
    let consumer = rt.block_on(async {
        let base = [
            ("bootstrap.servers", bootstrap),
            ("group.id", group),
            ("client.id", "krust-bench"),
            ("enable.auto.commit", "true"),
            ("auto.offset.reset", "earliest"),
            // Tansu holds JoinGroup for session.timeout.ms / 2.
            ("session.timeout.ms", "6000"),
        ];
        let config = ConsumerConfig::from_properties(
            base.into_iter()
                .chain(props.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        )
        .expect("consumer config");
        let mut consumer = Consumer::new(config).await.expect("consumer");
        consumer.subscribe([topic]).expect("subscribe");
        while seen.distinct < n {
            if started.elapsed() > TIMEOUT {
                note = format!("timeout_after_{TIMEOUT:?}");
                break;
            }
            let records = consumer
                .poll(Duration::from_millis(500))
                .await
                .expect("poll");
            if first.is_none() && !records.is_empty() {
                first = Some(started.elapsed());
            }
            if records.is_empty() && first.is_some() {
                stalls += 1;
            }
            if records.is_empty() && first.is_some() && stalls <= 3 {
                // Records flowed and then stopped short of the end: say
                // where each partition stands (position, high watermark).
                let at: Vec<String> = consumer
                    .lag()
                    .iter()
                    .map(|(tp, l)| {
                        format!(
                            "{}:{}/{}(pos {:?} hw {:?})",
                            tp.partition,
                            seen.count(tp.partition),
                            seen.end(tp.partition),
                            l.position,
                            l.high_watermark
                        )
                    })
                    .collect();
                eprintln!(
                    "krust: no records for 500 ms at {:.1} s: {}{}",
                    started.elapsed().as_secs_f64(),
                    at.join(" "),
                    if stalls == 3 {
                        " (no more of these)"
                    } else {
                        ""
                    }
                );
            }
            for r in &records {
                seen.add(r.partition, r.offset, r.value().map_or(0, <[u8]>::len));
            }
        }
        consumer
    });
    let wall = started.elapsed().as_secs_f64();
    let used = cpu::self_cpu() - cpu0;
    let (main1, other1) = split();
    // Outside the measured window: the commit on close and LeaveGroup.
    if let Err(e) = rt.block_on(consumer.close()) {
        eprintln!("krust: close: {e}");
    }
    let missing = seen.missing();
    if stalls > 0 {
        eprintln!("krust: {stalls} empty polls of 500 ms after the first record");
    }
    if !missing.is_empty() {
        eprintln!(
            "krust: offsets not seen, per partition: {}",
            missing.join(" ")
        );
    }
    RunResult {
        client: "krust".to_owned(),
        records: n,
        bytes: seen.value_bytes,
        wall,
        join: first.map_or(f64::NAN, |f| f.as_secs_f64()),
        cpu: used,
        main_thread: main1 - main0,
        other_threads: other1 - other0,
        delivered: seen.distinct,
        duplicates: seen.duplicates,
        unexpected: seen.unexpected,
        missing: n - seen.distinct,
        note,
        ..RunResult::default()
    }
}
