//! Against real brokers: 1,000 records produced to 3 partitions with
//! `krust_producer`, read back through one fetch session per leader in
//! several rounds: every record exactly once, in order, and each session
//! behaves as KIP-227 says.
//!
//! On every broker of `all_brokers(Capability::Fetch)`: Apache Kafka first
//! (the node this binary shares, so the topic is unique), which must grant
//! incremental sessions; then the emulators, which add coverage here: each
//! negotiates other Fetch versions (the 2.0.2 mock's are pre-flexible) and
//! Tansu keeps no sessions (every request stays full); and
//! `KAFKA_BOOTSTRAP` when set.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use krust_codec::ApiKey;
use krust_net::{Pool, PoolConfig, RetryPolicy};
use krust_producer::{Producer, ProducerConfig, ProducerRecord};
use krust_testkit::{Broker, BrokerKind, Capability, all_brokers, unique};

use super::super::{FetchConfig, FetchSession, FetchTarget, IsolationLevel, fetch};
use super::target;
use crate::list_offsets::{OffsetSpec, list_offsets};
use crate::metrics::FetchLatency;

const PARTITIONS: i32 = 3;
const RECORDS: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_everything_through_sessions() {
    for broker in all_brokers(Capability::Fetch) {
        let sessions = round_trip(&*broker, &unique("krust-fetch-sessions")).await;
        eprintln!("{} fetch sessions: {sessions:?}", broker.name());
        if matches!(
            broker.kind(),
            BrokerKind::Kafka | BrokerKind::KafkaCluster | BrokerKind::DockerKafka
        ) {
            // Apache Kafka with its default session cache grants a session
            // to the first full request of each leader; round_trip checked
            // that every later request was incremental in it.
            for (leader, rounds) in &sessions {
                assert!(
                    rounds[0].2 != 0,
                    "{}: broker {leader} granted no fetch session: {rounds:?}",
                    broker.name()
                );
            }
        }
    }
}

/// One round as a session saw it: whether the request was full, the epoch
/// it carried and the session id after the answer.
type Round = (bool, i32, i32);

/// Produce, read everything back, check it; returns each leader's rounds.
async fn round_trip(broker: &dyn Broker, topic: &str) -> BTreeMap<i32, Vec<Round>> {
    let kind = broker.name();
    broker
        .create_topic(topic, PARTITIONS)
        .expect("create topic");
    let pool = Pool::bootstrap(PoolConfig {
        bootstrap: broker.bootstrap().split(',').map(str::to_owned).collect(),
        ..PoolConfig::default()
    })
    .await
    .expect("pool");
    // Kafka names a new partition's leader a moment before that broker
    // serves it: produce once every leader answers ListOffsets. (The
    // emulators serve a topic once it is created; the 2.0.2 mock's
    // ListOffsets does not even decode.)
    if broker.kind().is_real_kafka() {
        let asked: Vec<(&str, i32, OffsetSpec)> = (0..PARTITIONS)
            .map(|p| (topic, p, OffsetSpec::Latest))
            .collect();
        let retry = RetryPolicy {
            deadline: Duration::from_secs(30),
            ..RetryPolicy::default()
        };
        list_offsets(&pool, &asked, IsolationLevel::ReadUncommitted, &retry)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {topic} not served: {e}"));
    }
    let config = ProducerConfig::builder()
        .bootstrap_servers([broker.bootstrap()])
        .batch_size(1024)
        .linger(Duration::from_millis(1))
        .build()
        .expect("config");
    let producer = Producer::new(config).await.expect("producer");
    let mut deliveries = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        let p = i32::try_from(i % 3).expect("small");
        let record = ProducerRecord::new(topic, format!("v{i}"))
            .key(format!("k{i}"))
            .partition(p);
        deliveries.push(producer.send(record).await.expect("send"));
    }
    for d in deliveries {
        d.await.expect("delivered");
    }
    producer.close(Duration::from_secs(5)).await.expect("close");

    pool.refresh_metadata(&[topic]).await.expect("metadata");
    let mut leaders = BTreeMap::new();
    for p in 0..PARTITIONS {
        leaders.insert(p, pool.leader(topic, p).await.expect("leader"));
    }
    for (leader, _) in leaders.values() {
        let version = pool
            .broker(*leader)
            .await
            .expect("connection")
            .negotiate(ApiKey::Fetch, (4, 17))
            .expect("Fetch v4+");
        let id = pool.cached_metadata().topic(topic).map(|t| t.id);
        eprintln!("{kind}: broker {leader} Fetch v{version}, topic id {id:?}");
    }

    // Small per-partition limits make several rounds (on brokers that
    // honour them).
    let cfg = FetchConfig {
        partition_max_bytes: 2048,
        max_wait: Duration::from_millis(100),
        ..FetchConfig::default()
    };
    let mut sessions: BTreeMap<i32, FetchSession> = BTreeMap::new();
    let mut rounds: BTreeMap<i32, Vec<Round>> = BTreeMap::new();
    let mut positions: BTreeMap<i32, i64> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    let mut got: BTreeMap<i32, Vec<(i64, String, String)>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    // At least two rounds per session, even on a broker that ignores
    // partition_max_bytes: the second one (empty, or the rest) shows
    // whether the broker keeps the session.
    while got.values().map(Vec::len).sum::<usize>() < RECORDS
        || sessions.is_empty()
        || rounds.values().any(|r| r.len() < 2)
    {
        assert!(Instant::now() < deadline, "{kind}: read {got:?} in 30 s");
        let mut by_leader: BTreeMap<i32, Vec<FetchTarget>> = BTreeMap::new();
        for (p, offset) in &positions {
            let (leader, epoch) = leaders[p];
            by_leader.entry(leader).or_default().push(FetchTarget {
                leader_epoch: Some(epoch).filter(|e| *e >= 0),
                ..target(topic, *p, *offset)
            });
        }
        for (leader, targets) in by_leader {
            let session = sessions
                .entry(leader)
                .or_insert_with(|| FetchSession::new(leader));
            let (was_full, epoch_sent) = (session.next_is_full(), session.epoch());
            let fetched = fetch(&pool, session, &targets, &cfg, &FetchLatency::none())
                .await
                .unwrap_or_else(|e| panic!("{kind}: fetch from {leader}: {e}"));
            rounds
                .entry(leader)
                .or_default()
                .push((was_full, epoch_sent, session.session_id()));
            for f in fetched {
                let data = f.outcome.expect("partition data");
                assert_eq!(f.fetch_offset, positions[&f.tp.partition]);
                assert!(data.next_offset >= f.fetch_offset);
                for r in &data.records {
                    let key = String::from_utf8_lossy(r.key().unwrap_or_default());
                    let value = String::from_utf8_lossy(r.value().unwrap_or_default());
                    got.entry(r.partition).or_default().push((
                        r.offset,
                        key.into_owned(),
                        value.into_owned(),
                    ));
                }
                positions.insert(f.tp.partition, data.next_offset);
            }
        }
    }
    for p in 0..PARTITIONS {
        let expected: Vec<(i64, String, String)> = (0..RECORDS)
            .filter(|i| i32::try_from(i % 3).expect("small") == p)
            .enumerate()
            .map(|(n, i)| {
                (
                    i64::try_from(n).expect("small"),
                    format!("k{i}"),
                    format!("v{i}"),
                )
            })
            .collect();
        assert_eq!(got.get(&p), Some(&expected), "{kind}: partition {p}");
    }

    // KIP-227: the first request is full (epoch 0). If the broker answers a
    // session id, every later request is incremental in that session with
    // the epoch counting 1, 2, 3, ...; if it answers 0 it keeps no session
    // and every request stays full (epoch 0).
    for (leader, rounds) in &rounds {
        let (first_full, first_epoch, sid) = rounds[0];
        assert!(first_full && first_epoch == 0, "{kind} broker {leader}");
        for (n, &(full, epoch_sent, id)) in rounds.iter().enumerate().skip(1) {
            if sid != 0 {
                let n32 = i32::try_from(n).expect("small");
                assert!(!full, "{kind} broker {leader}: round {n} is incremental");
                assert_eq!((epoch_sent, id), (n32, sid), "{kind} broker {leader}");
            } else {
                assert!(full && epoch_sent == 0 && id == 0, "{kind} round {n}");
            }
        }
    }
    rounds
}
