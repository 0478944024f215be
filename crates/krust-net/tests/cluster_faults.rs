//! The pool and the retry policy on a real Apache Kafka 4.4.0 cluster
//! (`KafkaCluster`: 3 nodes, replication factor 3) while a node fails as in
//! production. Requests go the way a client sends them: look up the
//! leader, send, and on a retriable error tell the pool (`note_error`) and
//! retry within the deadline (`tests/common::list_offsets`).
//!
//! - A partition's leader killed (`SIGKILL`): requests in flight fail with a
//!   disconnect, the next ones meet NOT_LEADER_OR_FOLLOWER or a refused
//!   connection until the controller moves the leadership; the pool
//!   refreshes its metadata and every request completes on the new leader
//!   within its deadline.
//! - A leader hung (`SIGSTOP`) longer than `request.timeout.ms`: a deadline
//!   shorter than the request timeout still ends the call on time (each
//!   attempt gets only the time left), the timed-out connection is dropped,
//!   the call with a longer deadline completes on the new leader, and the
//!   node serves again once resumed.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use krust_codec::ApiKey;
use krust_net::{Backoff, ConnectionConfig, DEADLINE_MARGIN, Error, Pool, PoolConfig, RetryPolicy};
use krust_testkit::{KafkaCluster, unique};

const PARTITIONS: i32 = 6;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// Every test finishes well within this, or fails.
const TEST_BOUND: Duration = Duration::from_secs(90);

fn policy(deadline: Duration) -> RetryPolicy {
    RetryPolicy {
        backoff: Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(200),
            ..Backoff::default()
        },
        deadline,
    }
}

async fn pool(cluster: &KafkaCluster) -> Pool {
    let config = PoolConfig {
        bootstrap: cluster.bootstrap().split(',').map(str::to_owned).collect(),
        bootstrap_timeout: Duration::from_secs(10),
        connection: ConnectionConfig {
            connect_timeout: Duration::from_secs(2),
            request_timeout: REQUEST_TIMEOUT,
            ..Default::default()
        },
        reconnect_backoff: Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(200),
            ..Backoff::default()
        },
        retry: policy(Duration::from_secs(10)),
        ..Default::default()
    };
    Pool::bootstrap(config).await.expect("bootstrap")
}

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(TEST_BOUND, f)
        .await
        .expect("the test ran longer than its bound")
}

/// Run a blocking fixture call (kill, pause, restart) off the runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("fixture call")
}

#[tokio::test]
async fn requests_follow_a_killed_leader() {
    let cluster = Arc::new(KafkaCluster::start());
    let topic = unique("krust-net-leader-killed");
    cluster.create_topic(&topic, PARTITIONS).expect("topic");
    bounded(async {
        let pool = Arc::new(pool(&cluster).await);
        let policy = policy(Duration::from_secs(20));
        let m = pool.refresh_metadata(&[&topic]).await.expect("metadata");
        assert_eq!(m.brokers.len(), 3, "{:?}", m.brokers);
        let (victim, epoch_before) = pool.leader(&topic, 0).await.expect("leader");
        assert_eq!(victim, cluster.leader(&topic, 0).expect("leader"));
        for p in 0..PARTITIONS {
            let (answered, offset, _) = common::list_offsets(&pool, &policy, &topic, p, i16::MAX)
                .await
                .expect("before");
            assert_eq!(offset, 0, "an empty partition's latest offset");
            assert_eq!(
                Some(answered),
                pool.cached_metadata().leader(&topic, p).map(|l| l.0)
            );
        }

        // Requests keep running on every partition while the leader dies.
        let stop = Arc::new(AtomicBool::new(false));
        let most_attempts = Arc::new(AtomicU32::new(0));
        let mut workers = tokio::task::JoinSet::new();
        for p in 0..PARTITIONS {
            let (pool, stop, most, topic) = (
                pool.clone(),
                stop.clone(),
                most_attempts.clone(),
                topic.clone(),
            );
            workers.spawn(async move {
                let mut done = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let (_, _, attempts) =
                        common::list_offsets(&pool, &policy, &topic, p, i16::MAX)
                            .await
                            .unwrap_or_else(|e| panic!("partition {p} during the kill: {e}"));
                    if p == 0 {
                        most.fetch_max(attempts, Ordering::Relaxed);
                    }
                    done += 1;
                }
                done
            });
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let c = cluster.clone();
        blocking(move || c.kill(victim).expect("kill")).await;
        let killed = Instant::now();
        // Until the controller has fenced the node (broker.session.timeout.ms
        // is 3 s) and partition 0 has another leader.
        let c = cluster.clone();
        let topic_c = topic.clone();
        let new = blocking(move || {
            loop {
                match c.leader(&topic_c, 0) {
                    Ok(l) if l >= 0 && l != victim => return l,
                    _ => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        })
        .await;
        eprintln!(
            "partition 0 moved from {victim} to {new} in {:?}",
            killed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.store(true, Ordering::Relaxed);
        while let Some(done) = workers.join_next().await {
            assert!(done.expect("worker") > 0);
        }
        assert!(
            most_attempts.load(Ordering::Relaxed) > 1,
            "the requests to partition 0 met the kill and were retried"
        );

        // Answered by the new leader, which the refreshed metadata names,
        // with a newer leader epoch.
        let (answered, _, _) = common::list_offsets(&pool, &policy, &topic, 0, i16::MAX)
            .await
            .expect("after");
        assert_eq!(answered, new);
        let (leader, epoch) = pool.leader(&topic, 0).await.expect("leader");
        assert_eq!(leader, new);
        assert!(
            epoch > epoch_before,
            "leader epoch {epoch_before} -> {epoch}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_hung_leader_bounds_each_attempt_by_the_deadline_then_leadership_moves() {
    let cluster = Arc::new(KafkaCluster::start());
    let topic = unique("krust-net-leader-hung");
    cluster.create_topic(&topic, PARTITIONS).expect("topic");
    bounded(async {
        let pool = pool(&cluster).await;
        pool.refresh_metadata(&[&topic]).await.expect("metadata");
        let long = policy(Duration::from_secs(30));
        let (victim, _) = pool.leader(&topic, 0).await.expect("leader");
        let addr = cluster.addr(victim).expect("address");
        common::list_offsets(&pool, &long, &topic, 0, i16::MAX)
            .await
            .expect("warm up");

        let c = cluster.clone();
        blocking(move || c.pause(victim).expect("hang")).await;
        let hung = Instant::now();

        // A deadline shorter than the request timeout: the attempt waiting
        // for the hung node is cut when the time is up.
        let short = policy(Duration::from_millis(1500));
        let started = Instant::now();
        let e = common::list_offsets(&pool, &short, &topic, 0, i16::MAX)
            .await
            .expect_err("the leader is hung");
        let elapsed = started.elapsed();
        assert!(
            elapsed < short.deadline + DEADLINE_MARGIN,
            "{elapsed:?} for a deadline of {:?} (request timeout {REQUEST_TIMEOUT:?})",
            short.deadline
        );
        let Error::RetriesExhausted { api, .. } = &e else {
            panic!("not RetriesExhausted: {e:?}");
        };
        assert_eq!(*api, ApiKey::ListOffsets);

        // A deadline long enough for the controller to fence the node and
        // move the leadership: the request times out on the hung node
        // (taking that connection down), the metadata is refreshed (from
        // another node, when the hung one was the pool's metadata
        // connection too), and the call completes on the new leader.
        let (answered, _, attempts) = common::list_offsets(&pool, &long, &topic, 0, i16::MAX)
            .await
            .expect("completes on the new leader");
        assert_ne!(answered, victim, "answered by another node");
        assert!(attempts > 1, "{attempts}");
        assert!(hung.elapsed() < long.deadline, "took {:?}", hung.elapsed());
        let metadata = pool.refresh_metadata(&[&topic]).await.expect("metadata");
        assert_eq!(metadata.leader(&topic, 0).map(|l| l.0), Some(answered));
        // Every partition answers, wherever its leader now is.
        for p in 0..PARTITIONS {
            let (answered, _, _) = common::list_offsets(&pool, &long, &topic, p, i16::MAX)
                .await
                .unwrap_or_else(|e| panic!("partition {p} while {victim} is hung: {e}"));
            assert_ne!(answered, victim, "partition {p}");
        }

        // Resumed, the node is a broker of the cluster again and the pool
        // talks to it.
        let c = cluster.clone();
        blocking(move || c.resume(victim).expect("resume")).await;
        let conn = long
            .run(
                ApiKey::Metadata,
                |_| async {
                    let conn = pool.broker(victim).await?;
                    conn.send(&common::metadata_request(&[&topic])).await?;
                    Ok(conn)
                },
                |e| {
                    pool.note_error(e);
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{victim} after the resume: {e}"));
        assert_eq!(conn.addr(), addr);
    })
    .await;
}
