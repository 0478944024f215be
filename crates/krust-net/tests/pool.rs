//! The broker pool on Apache Kafka 4.4.0 first (the node this binary
//! shares, and noida-db where a test needs CreatePartitions): the metadata
//! cache and its invalidation, auto-creation asked for or not, typed errors
//! for unknown topics, lazy reused connections, batched coordinator lookup.
//!
//! Then against fake peers, for what no broker can be made to do or show:
//! bootstrap failing fast on non-Kafka addresses (HTTP, oversized frames)
//! and giving up within its timeout, and counts of the requests and
//! connections the pool makes (a cache hit sends nothing).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use krust_codec::generated::CreatePartitionsRequest;
use krust_codec::generated::create_partitions_request::CreatePartitionsTopic;
use krust_codec::generated::find_coordinator_response::Coordinator;
use krust_codec::generated::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use krust_codec::generated::{FindCoordinatorResponse, MetadataResponse};
use krust_codec::{ErrorCode, KString, RequestBody, ResponseBody};
use krust_net::{CoordinatorType, Error, Pool, PoolConfig};
use krust_testkit::{Broker, Capability, Kafka, all_brokers, raw, unique};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Default)]
struct Counters {
    accepted: AtomicUsize,
    metadata: AtomicUsize,
    find_coordinator: AtomicUsize,
    coordinator_keys: AtomicUsize,
}

/// A one-broker cluster (id 1) with topic "t" (2 partitions, leader 1,
/// epoch 5) that answers ApiVersions, Metadata and FindCoordinator.
async fn fake_cluster() -> (String, Arc<Counters>) {
    let (l, addr) = listen().await;
    let counters = Arc::new(Counters::default());
    let (c, a) = (counters.clone(), addr.clone());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            c.accepted.fetch_add(1, Ordering::SeqCst);
            let (c, a) = (c.clone(), a.clone());
            tokio::spawn(async move {
                while let Some((h, body)) = read_request(&mut s).await {
                    let reply_body = match &body {
                        RequestBody::ApiVersions(_) => {
                            ResponseBody::ApiVersions(api_versions_body())
                        }
                        RequestBody::Metadata(m) => {
                            c.metadata.fetch_add(1, Ordering::SeqCst);
                            ResponseBody::Metadata(cluster_metadata(&a, m))
                        }
                        RequestBody::FindCoordinator(f) => {
                            c.find_coordinator.fetch_add(1, Ordering::SeqCst);
                            c.coordinator_keys
                                .fetch_add(f.coordinator_keys.len(), Ordering::SeqCst);
                            let (host, port) = a.rsplit_once(':').expect("host:port");
                            let coordinators = f
                                .coordinator_keys
                                .iter()
                                .map(|k| Coordinator {
                                    key: k.clone(),
                                    node_id: 1,
                                    host: host.into(),
                                    port: port.parse().expect("port"),
                                    ..Default::default()
                                })
                                .collect();
                            ResponseBody::FindCoordinator(FindCoordinatorResponse {
                                coordinators,
                                ..Default::default()
                            })
                        }
                        other => panic!("unexpected request {other:?}"),
                    };
                    reply(&mut s, &h, reply_body).await;
                }
            });
        }
    });
    (addr, counters)
}

fn cluster_metadata(addr: &str, req: &krust_codec::generated::MetadataRequest) -> MetadataResponse {
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let topics = req
        .topics
        .iter()
        .flatten()
        .filter_map(|t| t.name.clone())
        .map(|name| {
            if name.as_str() != "t" {
                return MetadataResponseTopic {
                    name: Some(name),
                    error_code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code(),
                    ..Default::default()
                };
            }
            MetadataResponseTopic {
                name: Some(name),
                partitions: (0..2)
                    .map(|p| MetadataResponsePartition {
                        partition_index: p,
                        leader_id: 1,
                        leader_epoch: 5,
                        replica_nodes: vec![1],
                        isr_nodes: vec![1],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }
        })
        .collect();
    MetadataResponse {
        brokers: vec![MetadataResponseBroker {
            node_id: 1,
            host: host.into(),
            port: port.parse().expect("port"),
            ..Default::default()
        }],
        controller_id: 1,
        cluster_id: Some("fake".into()),
        topics,
        ..Default::default()
    }
}

/// A peer that answers anything with `bytes`.
async fn hostile(bytes: &'static [u8]) -> String {
    let (l, addr) = listen().await;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(bytes).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            });
        }
    });
    addr
}

async fn closed_port() -> String {
    let (l, addr) = listen().await;
    drop(l);
    addr
}

fn config(bootstrap: Vec<String>) -> PoolConfig {
    PoolConfig {
        bootstrap,
        ..Default::default()
    }
}

#[tokio::test]
async fn bootstrap_skips_non_kafka_and_unreachable_addresses() {
    let http = hostile(b"HTTP/1.1 404 Not Found\r\n\r\n").await;
    let closed = closed_port().await;
    let (good, _) = fake_cluster().await;
    let started = Instant::now();
    let pool = Pool::bootstrap(config(vec![http, closed, good]))
        .await
        .expect("the third address is a broker");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(pool.leader("t", 1).await.expect("leader"), (1, 5));
    let m = pool.cached_metadata();
    assert_eq!(m.cluster_id.as_deref(), Some("fake"));
    assert_eq!(m.controller, Some(1));
}

#[tokio::test]
async fn bootstrap_fails_at_once_when_no_address_is_kafka() {
    let http = hostile(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
    let huge = hostile(&[0x40, 0, 0, 0, 0, 0, 0, 0]).await;
    let started = Instant::now();
    let err = Pool::bootstrap(config(vec![http.clone(), huge.clone()]))
        .await
        .expect_err("nothing is Kafka");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "must not wait for the timeout"
    );
    let Error::Bootstrap { attempts } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(attempts.len(), 2);
    let msg = err.to_string();
    assert!(msg.contains(&http) && msg.contains("HTTP/1.1 400"), "{msg}");
    assert!(
        msg.contains(&huge) && msg.contains("exceeds the maximum"),
        "{msg}"
    );
}

#[tokio::test]
async fn bootstrap_gives_up_within_its_timeout_naming_the_cause() {
    let closed = closed_port().await;
    let cfg = PoolConfig {
        bootstrap_timeout: Duration::from_millis(300),
        ..config(vec![closed.clone()])
    };
    let started = Instant::now();
    let err = Pool::bootstrap(cfg).await.expect_err("nothing listens");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&closed) && msg.contains("cannot connect"),
        "{msg}"
    );
}

#[tokio::test]
async fn invalidate_refreshes_metadata_on_next_lookup() {
    let (addr, counters) = fake_cluster().await;
    let pool = Pool::bootstrap(config(vec![addr]))
        .await
        .expect("bootstrap");
    pool.leader("t", 0).await.expect("leader");
    let before = counters.metadata.load(Ordering::SeqCst);
    pool.leader("t", 0).await.expect("cached");
    assert_eq!(counters.metadata.load(Ordering::SeqCst), before, "cached");
    pool.note_error(&Error::broker(
        krust_codec::ApiKey::Produce,
        ErrorCode::NOT_LEADER_OR_FOLLOWER,
        None,
    ));
    pool.leader("t", 0).await.expect("refreshed");
    assert_eq!(counters.metadata.load(Ordering::SeqCst), before + 1);
    let t = pool.cached_metadata();
    assert!(t.topic("t").is_some(), "refresh keeps the cached topics");
}

#[tokio::test]
async fn unknown_topic_is_a_typed_error_naming_it() {
    let (addr, _) = fake_cluster().await;
    let pool = Pool::bootstrap(config(vec![addr]))
        .await
        .expect("bootstrap");
    let err = pool.leader("nope", 0).await.expect_err("unknown");
    assert_eq!(err.code(), Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION));
    assert!(err.to_string().contains("nope"), "{err}");
}

#[tokio::test]
async fn broker_connections_are_lazy_and_reused() {
    let (addr, counters) = fake_cluster().await;
    let pool = Pool::bootstrap(config(vec![addr]))
        .await
        .expect("bootstrap");
    assert_eq!(
        counters.accepted.load(Ordering::SeqCst),
        1,
        "bootstrap only"
    );
    let (a, epoch) = pool.leader_connection("t", 0).await.expect("leader");
    let (b, _) = pool.leader_connection("t", 1).await.expect("leader");
    assert_eq!(epoch, 5);
    assert_eq!(a.broker_id(), Some(1));
    assert_eq!(a.addr(), b.addr());
    assert_eq!(
        counters.accepted.load(Ordering::SeqCst),
        2,
        "one per broker"
    );
    assert!(matches!(pool.broker(7).await, Err(Error::UnknownBroker(7))));
}

#[tokio::test]
async fn coordinators_are_looked_up_in_one_batch_and_cached() {
    let (addr, counters) = fake_cluster().await;
    let pool = Pool::bootstrap(config(vec![addr]))
        .await
        .expect("bootstrap");
    let found = pool
        .find_coordinators(CoordinatorType::Group, &["g1", "g2"])
        .await
        .expect("lookup");
    assert_eq!(found.len(), 2);
    assert!(found.iter().all(|(_, r)| matches!(r, Ok(1))), "{found:?}");
    assert_eq!(counters.find_coordinator.load(Ordering::SeqCst), 1);
    assert_eq!(counters.coordinator_keys.load(Ordering::SeqCst), 2);
    let c = pool
        .coordinator(CoordinatorType::Group, "g1")
        .await
        .expect("cached");
    assert_eq!(c.broker_id(), Some(1));
    assert_eq!(
        counters.find_coordinator.load(Ordering::SeqCst),
        1,
        "cached"
    );
    pool.invalidate_coordinator(CoordinatorType::Group, "g1");
    pool.coordinator_id(CoordinatorType::Group, "g1")
        .await
        .expect("again");
    assert_eq!(counters.find_coordinator.load(Ordering::SeqCst), 2);
}

async fn pool_on(broker: &dyn Broker, allow_auto_topic_creation: bool) -> Pool {
    Pool::bootstrap(PoolConfig {
        bootstrap: broker.bootstrap().split(',').map(str::to_owned).collect(),
        allow_auto_topic_creation,
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("{}: bootstrap: {e}", broker.name()))
}

/// Grow `topic` to `count` partitions with a CreatePartitions request.
fn create_partitions(broker: &dyn Broker, topic: &str, count: i32) {
    let addr = broker.bootstrap().split(',').next().map(str::to_owned);
    let mut conn = raw::Connection::connect(&addr.expect("an address")).expect("connect");
    let version = conn
        .version_for::<CreatePartitionsRequest>()
        .expect("CreatePartitions");
    let resp = conn
        .send(
            version,
            &CreatePartitionsRequest {
                topics: vec![CreatePartitionsTopic {
                    name: KString::from(topic),
                    count,
                    assignments: None,
                    ..Default::default()
                }],
                timeout_ms: 10_000,
                ..Default::default()
            },
        )
        .expect("CreatePartitions");
    assert_eq!(resp.results[0].error_code, 0, "{resp:?}");
}

#[tokio::test]
async fn invalidate_refreshes_metadata_on_the_next_lookup_on_real_brokers() {
    for broker in all_brokers(Capability::CreatePartitions) {
        let name = broker.name();
        let topic = unique("krust-net-grow");
        broker.create_topic(&topic, 1).expect("topic");
        let pool = pool_on(broker.as_ref(), false).await;
        let (leader, _) = pool.leader(&topic, 0).await.expect("leader");
        assert!(pool.cached_metadata().broker(leader).is_some(), "{name}");
        create_partitions(broker.as_ref(), &topic, 3);
        // The cache still has one partition: partition 2 is unknown to it,
        // and asking sends no Metadata request.
        let e = pool.leader(&topic, 2).await.expect_err("not cached");
        assert_eq!(
            e.code(),
            Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
            "{name}: {e}"
        );
        // An error that says the metadata is stale: the next lookup
        // refreshes and finds the new partitions (once the broker's own
        // metadata has them, a moment after CreatePartitions answered).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            pool.note_error(&Error::broker(
                krust_codec::ApiKey::Produce,
                ErrorCode::NOT_LEADER_OR_FOLLOWER,
                None,
            ));
            match pool.leader(&topic, 2).await {
                Ok(_) => break,
                Err(e) if Instant::now() < deadline && e.is_retriable() => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("{name}: partition 2 after the refresh: {e}"),
            }
        }
        let m = pool.cached_metadata();
        assert_eq!(
            m.topic(&topic).map(|t| t.partitions.len()),
            Some(3),
            "{name}"
        );
    }
}

#[tokio::test]
async fn unknown_topics_are_created_only_when_the_pool_asks_on_kafka() {
    // Kafka's auto.create.topics.enable is true by default: whether a
    // missing topic is created is the client's Metadata flag.
    let kafka = Kafka::shared();
    let pool = pool_on(kafka, false).await;
    let missing = unique("krust-net-missing");
    let e = pool.leader(&missing, 0).await.expect_err("unknown");
    assert_eq!(e.code(), Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION));
    assert!(e.to_string().contains(&missing), "{e}");
    let m = pool.refresh_metadata(&[&missing]).await.expect("metadata");
    assert_eq!(
        m.topic(&missing).map(|t| t.error),
        Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
        "not created by a pool that does not ask"
    );

    let creating = pool_on(kafka, true).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let leader = loop {
        match creating.leader(&missing, 0).await {
            Ok((leader, _)) => break leader,
            // LEADER_NOT_AVAILABLE while the new topic gets its leader.
            Err(e) if e.is_retriable() && Instant::now() < deadline => {
                creating.invalidate();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("auto-created topic: {e}"),
        }
    };
    assert_eq!(leader, kafka.as_cluster().node_ids()[0]);
    // Created for everyone: the first pool sees it now.
    let m = pool.refresh_metadata(&[&missing]).await.expect("metadata");
    assert!(m.topic(&missing).is_some_and(|t| t.error.is_ok()), "{m:?}");
}

#[tokio::test]
async fn connections_and_coordinators_on_kafka() {
    let kafka = Kafka::shared();
    let id = kafka.as_cluster().node_ids()[0];
    let topic = unique("krust-net-conns");
    kafka.create_topic(&topic, 2).expect("topic");
    let pool = pool_on(kafka, false).await;
    let (a, _) = pool.leader_connection(&topic, 0).await.expect("leader");
    let (b, _) = pool.leader_connection(&topic, 1).await.expect("leader");
    assert_eq!(a.broker_id(), Some(id));
    assert_eq!(a.addr(), kafka.addr());
    assert_eq!(a.addr(), b.addr());
    assert!(matches!(pool.broker(7).await, Err(Error::UnknownBroker(7))));

    // FindCoordinator v4+ (KIP-699): both keys in one request.
    let (g1, g2) = (unique("krust-net-g1"), unique("krust-net-g2"));
    let found = pool
        .find_coordinators(CoordinatorType::Group, &[&g1, &g2])
        .await
        .expect("lookup");
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].0, g1);
    assert_eq!(found[1].0, g2);
    for (key, r) in &found {
        // The offsets topic may still be loading on a fresh node: that is
        // COORDINATOR_NOT_AVAILABLE, retriable; the retried lookup finds it.
        match r {
            Ok(n) => assert_eq!(*n, id, "{key}"),
            Err(e) => assert!(e.is_retriable(), "{key}: {e}"),
        }
    }
    let c = pool
        .coordinator(CoordinatorType::Group, &g1)
        .await
        .expect("coordinator");
    assert_eq!(c.broker_id(), Some(id));
}
