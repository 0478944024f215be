//! Against a real broker (Tansu): 1,000 records produced to 3 partitions
//! with `krust_producer`, read back through one fetch session in several
//! rounds: every record exactly once, in order, and the session behaves as
//! KIP-227 says.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use krust_codec::ApiKey;
use krust_net::{Pool, PoolConfig};
use krust_producer::{Producer, ProducerConfig, ProducerRecord};
use krust_testkit::Tansu;

use super::super::{FetchConfig, FetchSession, FetchTarget, fetch};
use super::target;

const TOPIC: &str = "krust-fetch-session";
const PARTITIONS: i32 = 3;
const RECORDS: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_everything_through_one_session_on_tansu() {
    let tansu = Tansu::start();
    tansu.create_topic(TOPIC, PARTITIONS).expect("create topic");

    let config = ProducerConfig::builder()
        .bootstrap_servers([tansu.addr()])
        .batch_size(1024)
        .linger(Duration::from_millis(1))
        .build()
        .expect("config");
    let producer = Producer::new(config).await.expect("producer");
    let mut deliveries = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        let p = i32::try_from(i % 3).expect("small");
        let record = ProducerRecord::new(TOPIC, format!("v{i}"))
            .key(format!("k{i}"))
            .partition(p);
        deliveries.push(producer.send(record).await.expect("send"));
    }
    for d in deliveries {
        d.await.expect("delivered");
    }
    producer.close(Duration::from_secs(5)).await.expect("close");

    let pool = Pool::bootstrap(PoolConfig {
        bootstrap: vec![tansu.addr().to_owned()],
        ..PoolConfig::default()
    })
    .await
    .expect("pool");
    pool.refresh_metadata(&[TOPIC]).await.expect("metadata");
    let (leader, epoch) = pool.leader(TOPIC, 0).await.expect("leader");
    for p in 1..PARTITIONS {
        assert_eq!(pool.leader(TOPIC, p).await.expect("leader").0, leader);
    }

    let version = pool
        .broker(leader)
        .await
        .expect("connection")
        .negotiate(ApiKey::Fetch, (4, 17))
        .expect("Fetch v4+");
    let topic_id = pool.cached_metadata().topic(TOPIC).map(|t| t.id);
    eprintln!("Fetch v{version}, topic id {topic_id:?}");

    // Small per-partition limits force several rounds.
    let cfg = FetchConfig {
        partition_max_bytes: 2048,
        max_wait: Duration::from_millis(100),
        ..FetchConfig::default()
    };
    let mut session = FetchSession::new(leader);
    let mut positions: BTreeMap<i32, i64> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    let mut got: BTreeMap<i32, Vec<(i64, String, String)>> = BTreeMap::new();
    let mut rounds = 0;
    let mut session_ids = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.values().map(Vec::len).sum::<usize>() < RECORDS {
        assert!(Instant::now() < deadline, "read {got:?} in 30 s");
        let targets: Vec<FetchTarget> = positions
            .iter()
            .map(|(p, o)| FetchTarget {
                leader_epoch: Some(epoch).filter(|e| *e >= 0),
                ..target(TOPIC, *p, *o)
            })
            .collect();
        let was_full = session.next_is_full();
        let epoch_sent = session.epoch();
        let fetched = fetch(&pool, &mut session, &targets, &cfg)
            .await
            .expect("fetch");
        rounds += 1;
        session_ids.push((was_full, epoch_sent, session.session_id()));
        for f in fetched {
            let data = f.outcome.expect("partition data");
            assert_eq!(f.fetch_offset, positions[&f.tp.partition]);
            assert!(data.next_offset >= f.fetch_offset);
            for r in &data.records {
                let key = String::from_utf8_lossy(r.key.as_deref().unwrap_or_default());
                let value = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default());
                got.entry(r.partition).or_default().push((
                    r.offset,
                    key.into_owned(),
                    value.into_owned(),
                ));
            }
            positions.insert(f.tp.partition, data.next_offset);
        }
    }
    assert!(
        rounds >= 2,
        "one round read everything: make the limits smaller"
    );

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
        assert_eq!(got.get(&p), Some(&expected), "partition {p}");
    }

    // KIP-227: the first request is full (epoch 0). If the broker answers a
    // session id, every later request is incremental in that session with
    // the epoch counting 1, 2, 3, ...; if it answers 0 it keeps no session
    // and every request stays full (epoch 0).
    eprintln!("rounds (full?, epoch sent, session id after): {session_ids:?}");
    let (first_full, first_epoch, sid) = session_ids[0];
    assert!(first_full && first_epoch == 0);
    if sid != 0 {
        // Tansu keeps fetch sessions.
        for (n, (full, epoch_sent, id)) in session_ids.iter().enumerate().skip(1) {
            assert!(!full, "round {n} should be incremental");
            assert_eq!(*epoch_sent, i32::try_from(n).expect("small"), "round {n}");
            assert_eq!(*id, sid, "round {n}");
        }
    } else {
        // Tansu keeps no fetch sessions: the full-fetch fallback.
        for (n, (full, epoch_sent, id)) in session_ids.iter().enumerate() {
            assert!(*full && *epoch_sent == 0 && *id == 0, "round {n}");
        }
    }
}
