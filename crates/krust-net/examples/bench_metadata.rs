//! A measurement, not a test: starts Tansu (krust-testkit) and reports
//!
//! 1. the round-trip latency of a Metadata request for one topic (median,
//!    p99, max over sequential requests on one connection), and
//! 2. the requests/s of one pipelined connection (ApiVersions and Metadata
//!    requests with a fixed number in flight).
//!
//! ```text
//! cargo run --release -p krust-net --example bench_metadata [SEQUENTIAL] [PIPELINED]
//! ```
//!
//! Defaults: 2,000 sequential requests, 50,000 pipelined ones per run.
//! Results go to `crates/krust-net/BENCH.md` by hand.

use std::time::{Duration, Instant};

use krust_codec::generated::metadata_request::MetadataRequestTopic;
use krust_codec::generated::{ApiVersionsRequest, MetadataRequest};
use krust_net::{Connection, ConnectionConfig};
use krust_testkit::{Broker, Tansu};

const TOPIC: &str = "krust-bench-metadata";

fn metadata_request() -> MetadataRequest {
    MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: Some(TOPIC.into()),
            ..Default::default()
        }]),
        allow_auto_topic_creation: false,
        ..Default::default()
    }
}

/// CPU time (user, system) used so far by this process — the client only:
/// Tansu runs in a child process, whose time `/usr/bin/time` would add in.
fn cpu() -> (Duration, Duration) {
    // Fields 14 and 15 of /proc/self/stat, in clock ticks (USER_HZ = 100
    // on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let tick = |i: usize| Duration::from_millis(f.get(i).copied().unwrap_or(0) * 10);
    (tick(11), tick(12))
}

/// Client CPU µs per request since `start`, as "user+sys" text.
fn cpu_since(start: (Duration, Duration), requests: usize) -> String {
    let (u, s) = cpu();
    let (u, s) = (u - start.0, s - start.1);
    #[allow(clippy::cast_precision_loss)]
    let per = (u + s).as_secs_f64() * 1e6 / requests as f64;
    format!(
        "client cpu {:.2} s user + {:.2} s sys = {per:.1} µs/request",
        u.as_secs_f64(),
        s.as_secs_f64()
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let last = sorted.len().saturating_sub(1);
    // Nearest rank; the cast is of a small, non-negative float.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let i = ((p * sorted.len() as f64).ceil() as usize).saturating_sub(1);
    sorted[i.min(last)]
}

async fn latency(conn: &Connection, n: usize) {
    let req = metadata_request();
    for _ in 0..100 {
        conn.send(&req).await.expect("warm-up");
    }
    let mut samples = Vec::with_capacity(n);
    let cpu0 = cpu();
    for _ in 0..n {
        let t = Instant::now();
        let resp = conn.send(&req).await.expect("metadata");
        samples.push(t.elapsed());
        assert_eq!(resp.topics.len(), 1);
    }
    let used = cpu_since(cpu0, n);
    samples.sort();
    println!(
        "metadata round trip, {n} sequential: median {:?}, p99 {:?}, max {:?}; {used}",
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples[samples.len() - 1]
    );
}

async fn pipelined(addr: &str, api: &str, total: usize, in_flight: usize) {
    let cfg = ConnectionConfig {
        max_in_flight: in_flight,
        queue_depth: in_flight,
        ..Default::default()
    };
    let conn = Connection::connect(addr, None, &cfg)
        .await
        .expect("connect");
    let per_worker = total / in_flight;
    let started = Instant::now();
    let cpu0 = cpu();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let conn = conn.clone();
        let metadata = api == "Metadata";
        workers.spawn(async move {
            let (av, md) = (
                ApiVersionsRequest {
                    client_software_name: "krust-bench".into(),
                    client_software_version: "0".into(),
                    ..Default::default()
                },
                metadata_request(),
            );
            for _ in 0..per_worker {
                if metadata {
                    conn.send(&md).await.expect("metadata");
                } else {
                    conn.send(&av).await.expect("api versions");
                }
            }
        });
    }
    while let Some(r) = workers.join_next().await {
        r.expect("worker");
    }
    let elapsed = started.elapsed();
    let done = per_worker * in_flight;
    let used = cpu_since(cpu0, done);
    #[allow(clippy::cast_precision_loss)]
    let rate = done as f64 / elapsed.as_secs_f64();
    println!(
        "pipelined {api}, {done} requests, {in_flight} in flight: {elapsed:?}, {rate:.0} req/s; {used}"
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let sequential: usize = args.next().map_or(2_000, |a| a.parse().expect("a count"));
    let total: usize = args.next().map_or(50_000, |a| a.parse().expect("a count"));
    let tansu = Tansu::start();
    tansu.create_topic(TOPIC, 1).expect("create topic");
    let addr = tansu.bootstrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let conn = Connection::connect(&addr, None, &ConnectionConfig::default())
            .await
            .expect("connect");
        latency(&conn, sequential).await;
        for in_flight in [100, 1_000] {
            pipelined(&addr, "ApiVersions", total, in_flight).await;
            pipelined(&addr, "Metadata", total, in_flight).await;
        }
    });
}
