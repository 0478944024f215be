//! Helpers shared by the producer's integration tests: a producer for a
//! fixture, records with a global index in key, value and headers, and a
//! raw-Fetch reader (krust-net + `krust_codec::records::Batches`) that
//! reads every partition back and checks what the producer promises.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use krust_codec::generated::FetchRequest;
use krust_codec::generated::fetch_request::{FetchPartition, FetchTopic};
use krust_codec::records::Batches;
use krust_codec::{ApiKey, ErrorCode};
use krust_net::{Pool, PoolConfig};
use krust_producer::{ProducerRecord, RecordMetadata, murmur2_partition};

/// Partitions of every test topic.
pub const PARTITIONS: i32 = 6;
/// Timestamps of test records start an hour before the test run: recent,
/// because brokers delete records older than `retention.ms` (7 days) by
/// their timestamps (noida-db does it within seconds).
pub fn base_ts() -> i64 {
    static BASE: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970");
        i64::try_from(now.as_millis()).expect("ms fit") - 3_600_000
    })
}

/// One record as read back.
#[derive(Debug, Clone)]
pub struct Read {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// Record number `i`: keyed (500 distinct keys), value and header carry `i`.
pub fn record(topic: &str, i: usize) -> ProducerRecord {
    ProducerRecord::new(topic, format!("value-{i}-{}", "x".repeat(i % 50)))
        .key(format!("key-{}", i % 500))
        .header("i", Some(Bytes::from(i.to_string())))
        .header("null", None)
        .timestamp(base_ts() + i64::try_from(i).expect("small"))
}

/// The index a value carries.
pub fn index_of(value: &[u8]) -> usize {
    let s = std::str::from_utf8(value).expect("utf-8 value");
    s.split('-')
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("value-N-...")
}

/// A pool on `bootstrap` for reading back.
pub async fn pool(bootstrap: &str) -> Pool {
    Pool::bootstrap(PoolConfig {
        bootstrap: bootstrap.split(',').map(str::to_owned).collect(),
        ..PoolConfig::default()
    })
    .await
    .expect("bootstrap a reader")
}

/// Read every partition of `topic` from offset 0 up to its high watermark,
/// with raw Fetch requests. Call it once every record was acknowledged
/// (acks=all: the high watermark covers them all): everything in the log
/// is read, a duplicate at a partition's tail included, so [`check`] can
/// compare the whole log with what was sent. Panics if it takes longer
/// than `within`; `total` is only for that message.
pub async fn read_all(
    pool: &Pool,
    topic: &str,
    total: usize,
    within: Duration,
) -> HashMap<i32, Vec<Read>> {
    let deadline = Instant::now() + within;
    let meta = pool.refresh_metadata(&[topic]).await.expect("metadata");
    let partitions = meta.topic(topic).map_or(0, |t| {
        i32::try_from(t.partitions.len()).expect("few partitions")
    });
    assert!(partitions > 0, "{topic} has no partitions: {meta:?}");
    let mut out: HashMap<i32, Vec<Read>> = HashMap::new();
    let mut next: HashMap<i32, i64> = (0..partitions).map(|p| (p, 0)).collect();
    // The high watermark each partition's last Fetch answer gave.
    let mut high: HashMap<i32, i64> = HashMap::new();
    loop {
        let done = (0..partitions).all(|p| high.get(&p).is_some_and(|hw| next[&p] >= *hw));
        if done {
            return out;
        }
        let count: usize = out.values().map(Vec::len).sum();
        assert!(
            Instant::now() < deadline,
            "read {count} records of {topic} ({total} sent) in {within:?}: next offsets \
             {next:?}, high watermarks {high:?}"
        );
        let mut progressed = false;
        for p in 0..partitions {
            let offset = next[&p];
            if high.get(&p).is_some_and(|hw| offset >= *hw) {
                continue;
            }
            let (conn, _) = match pool.leader_connection(topic, p).await {
                Ok(c) => c,
                Err(_) => {
                    pool.invalidate();
                    continue;
                }
            };
            // Topic names in the request up to v12 (v13 uses topic ids).
            let version = conn.negotiate(ApiKey::Fetch, (4, 12)).expect("Fetch v4-12");
            let req = FetchRequest {
                replica_id: -1,
                max_wait_ms: 50,
                min_bytes: 1,
                max_bytes: 32 << 20,
                session_epoch: -1,
                topics: vec![FetchTopic {
                    topic: topic.into(),
                    partitions: vec![FetchPartition {
                        partition: p,
                        fetch_offset: offset,
                        current_leader_epoch: -1,
                        last_fetched_epoch: -1,
                        log_start_offset: -1,
                        partition_max_bytes: 8 << 20,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            };
            let resp = match conn.send_at(&req, version).await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("fetch {topic}-{p} v{version}: {e}");
                    pool.invalidate();
                    continue;
                }
            };
            for t in &resp.responses {
                for part in &t.partitions {
                    let code = ErrorCode::from(part.error_code);
                    if !code.is_ok() {
                        eprintln!(
                            "fetch {topic}-{p}@{offset}: {code} hw {} lso {}",
                            part.high_watermark, part.log_start_offset
                        );
                        pool.invalidate();
                        continue;
                    }
                    high.insert(p, part.high_watermark);
                    let Some(records) = part.records.clone() else {
                        continue;
                    };
                    for batch in Batches::new(records) {
                        let batch = batch.expect("a valid batch");
                        for r in batch.records().expect("records") {
                            let r = r.expect("a valid record");
                            // Below the fetch offset (the batch began
                            // earlier) or above the high watermark (not
                            // committed yet): not part of this read.
                            if r.offset < offset || r.offset >= part.high_watermark {
                                continue;
                            }
                            next.insert(p, r.offset + 1);
                            progressed = true;
                            out.entry(p).or_default().push(Read {
                                offset: r.offset,
                                timestamp: r.timestamp,
                                key: r.data.key_bytes(),
                                value: r.data.value_bytes(),
                                headers: r
                                    .data
                                    .headers()
                                    .iter()
                                    .map(|h| {
                                        let value = h.value.map(Bytes::copy_from_slice);
                                        (h.key.to_owned(), value)
                                    })
                                    .collect(),
                            });
                        }
                    }
                }
            }
        }
        if !progressed {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Check what was read against records `0..total` and their delivery
/// reports: every record exactly once, in order per partition, key,
/// value, headers and timestamp intact, on murmur2's partition, at the
/// offset its delivery future reported (when it reported one), and nothing
/// else in the log.
pub fn check(
    read: &HashMap<i32, Vec<Read>>,
    topic: &str,
    total: usize,
    reports: &[RecordMetadata],
) {
    let acked: Vec<Option<RecordMetadata>> = reports.iter().copied().map(Some).collect();
    check_acked(read, topic, total, &acked);
    let in_log: usize = read.values().map(Vec::len).sum();
    assert_eq!(in_log, total, "records in the log of {topic}");
}

/// [`check`] for a run where some deliveries failed (`None`): every record
/// in the log is one of `0..total`, none twice, in send order per
/// partition, intact, on murmur2's partition; every acknowledged record is
/// there, at its reported offset. A failed one may be there or not (Kafka
/// may have written a batch whose acknowledgement never came). Returns how
/// many of the failed records the log holds.
pub fn check_acked(
    read: &HashMap<i32, Vec<Read>>,
    topic: &str,
    total: usize,
    reports: &[Option<RecordMetadata>],
) -> usize {
    assert_eq!(reports.len(), total, "one outcome per record");
    let mut seen = vec![false; total];
    let mut failed_in_log = 0;
    for (&p, records) in read {
        let mut last: Option<usize> = None;
        for r in records {
            let i = index_of(r.value.as_deref().expect("value"));
            assert!(i < total, "unknown record {i}");
            assert!(!seen[i], "record {i} read twice (partition {p})");
            seen[i] = true;
            if let Some(l) = last {
                assert!(i > l, "partition {p}: record {i} after {l}");
            }
            last = Some(i);
            let want = record(topic, i);
            assert_eq!(r.key, want.key, "key of {i}");
            assert_eq!(r.value, want.value, "value of {i}");
            assert_eq!(r.timestamp, want.timestamp.expect("ts"), "timestamp of {i}");
            let headers: Vec<(String, Option<Bytes>)> = want
                .headers
                .iter()
                .map(|h| (h.key.clone(), h.value.clone()))
                .collect();
            assert_eq!(r.headers, headers, "headers of {i}");
            let key = want.key.as_deref().expect("keyed");
            assert_eq!(p, murmur2_partition(key, PARTITIONS), "partition of {i}");
            match reports[i] {
                Some(report) => {
                    assert_eq!(report.partition, p, "reported partition of {i}");
                    if report.offset >= 0 {
                        assert_eq!(report.offset, r.offset, "reported offset of {i}");
                    }
                }
                None => failed_in_log += 1,
            }
        }
    }
    let lost: Vec<usize> = (0..total)
        .filter(|&i| reports[i].is_some() && !seen[i])
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged records of {total} are not in the log of {topic}, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    failed_in_log
}
