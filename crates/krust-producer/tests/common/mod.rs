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
use krust_codec::{ApiKey, ErrorCode, Message};
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

/// Read every partition of `topic` from offset 0 until `total` records
/// have been read (or `within` passes), with raw Fetch requests.
pub async fn read_all(
    pool: &Pool,
    topic: &str,
    total: usize,
    within: Duration,
) -> HashMap<i32, Vec<Read>> {
    let deadline = Instant::now() + within;
    pool.refresh_metadata(&[topic]).await.expect("metadata");
    let mut out: HashMap<i32, Vec<Read>> = HashMap::new();
    let mut next: HashMap<i32, i64> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    loop {
        let count: usize = out.values().map(Vec::len).sum();
        if count >= total {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "read {count} of {total} records of {topic} in {within:?}"
        );
        let mut progressed = false;
        for p in 0..PARTITIONS {
            let offset = next[&p];
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
            let _ = FetchRequest::VALID_VERSIONS;
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
                    let Some(records) = part.records.clone() else {
                        continue;
                    };
                    for batch in Batches::new(records) {
                        let batch = batch.expect("a valid batch");
                        for r in batch.records().expect("records") {
                            let r = r.expect("a valid record");
                            if r.offset < offset {
                                continue;
                            }
                            next.insert(p, r.offset + 1);
                            progressed = true;
                            out.entry(p).or_default().push(Read {
                                offset: r.offset,
                                timestamp: r.timestamp,
                                key: r.key.clone(),
                                value: r.value.clone(),
                                headers: r
                                    .headers
                                    .iter()
                                    .map(|h| (h.key.as_str().to_owned(), h.value.clone()))
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
/// offset its delivery future reported (when it reported one).
pub fn check(
    read: &HashMap<i32, Vec<Read>>,
    topic: &str,
    total: usize,
    reports: &[RecordMetadata],
) {
    let mut seen = vec![false; total];
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
            let report = reports[i];
            assert_eq!(report.partition, p, "reported partition of {i}");
            if report.offset >= 0 {
                assert_eq!(report.offset, r.offset, "reported offset of {i}");
            }
        }
    }
    let missing = seen.iter().filter(|s| !**s).count();
    assert_eq!(missing, 0, "{missing} records of {total} never arrived");
}
