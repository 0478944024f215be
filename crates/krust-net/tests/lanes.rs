//! Connection lanes: a broker answers one connection's requests strictly in
//! order, so a request the broker holds on purpose (a JoinGroup for up to
//! the rebalance timeout) delays everything behind it on that connection.
//! The pool keeps a connection per broker and lane (`krust_net::Lane`);
//! the coordinator's requests travel on the Group lane, apart from the
//! Metadata, ListOffsets and Produce requests to the same broker.
//!
//! A scripted peer, because it holds a JoinGroup for as long as the test
//! needs and answers each connection in order, as Kafka does.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use krust_codec::generated::api_versions_response::ApiVersion;
use krust_codec::generated::find_coordinator_response::Coordinator;
use krust_codec::generated::join_group_request::JoinGroupRequestProtocol;
use krust_codec::generated::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use krust_codec::generated::metadata_response::MetadataResponseBroker;
use krust_codec::generated::{
    ApiVersionsResponse, FindCoordinatorResponse, JoinGroupRequest, ListOffsetsRequest,
    ListOffsetsResponse, MetadataResponse,
};
use krust_codec::{RequestBody, ResponseBody};
use krust_net::{ConnectionConfig, CoordinatorType, Error, Lane, Pool, PoolConfig};
use tokio::sync::mpsc;

fn versions() -> ApiVersionsResponse {
    let mut v = api_versions_body();
    let api = |api_key, min_version, max_version| ApiVersion {
        api_key,
        min_version,
        max_version,
        ..Default::default()
    };
    v.api_keys.push(api(2, 1, 7)); // ListOffsets
    v.api_keys.push(api(11, 0, 9)); // JoinGroup
    v
}

/// Broker 1, also the coordinator of every group: answers each
/// connection's requests in order and holds a JoinGroup (telling `joined`)
/// for 20 s, as a coordinator waiting for the other members does.
async fn coordinator_broker() -> (String, Arc<AtomicUsize>, mpsc::Receiver<()>) {
    let (l, addr) = listen().await;
    let accepted = Arc::new(AtomicUsize::new(0));
    let (joined, joins) = mpsc::channel(4);
    let (a, count) = (addr.clone(), accepted.clone());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let (a, joined) = (a.clone(), joined.clone());
            tokio::spawn(async move {
                let (host, port) = a.rsplit_once(':').expect("host:port");
                let port: i32 = port.parse().expect("port");
                while let Some((h, body)) = read_request(&mut s).await {
                    let r = match &body {
                        RequestBody::ApiVersions(_) => ResponseBody::ApiVersions(versions()),
                        RequestBody::Metadata(_) => ResponseBody::Metadata(MetadataResponse {
                            brokers: vec![MetadataResponseBroker {
                                node_id: 1,
                                host: host.into(),
                                port,
                                ..Default::default()
                            }],
                            controller_id: 1,
                            ..Default::default()
                        }),
                        RequestBody::FindCoordinator(f) => {
                            ResponseBody::FindCoordinator(FindCoordinatorResponse {
                                coordinators: f
                                    .coordinator_keys
                                    .iter()
                                    .map(|k| Coordinator {
                                        key: k.clone(),
                                        node_id: 1,
                                        host: host.into(),
                                        port,
                                        ..Default::default()
                                    })
                                    .collect(),
                                ..Default::default()
                            })
                        }
                        RequestBody::ListOffsets(_) => {
                            ResponseBody::ListOffsets(ListOffsetsResponse::default())
                        }
                        RequestBody::JoinGroup(_) => {
                            let _ = joined.send(()).await;
                            tokio::time::sleep(Duration::from_secs(20)).await;
                            return;
                        }
                        other => panic!("unexpected {other:?}"),
                    };
                    reply(&mut s, &h, r).await;
                }
            });
        }
    });
    (addr, accepted, joins)
}

fn join_request() -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: "g".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: vec![JoinGroupRequestProtocol {
            name: "range".into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn list_offsets_request() -> ListOffsetsRequest {
    ListOffsetsRequest {
        replica_id: -1,
        topics: vec![ListOffsetsTopic {
            name: "t".into(),
            partitions: vec![ListOffsetsPartition {
                partition_index: 0,
                timestamp: -1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// While the coordinator holds a JoinGroup, a ListOffsets and a Metadata
/// sent to the same broker through the pool are answered at once; the
/// JoinGroup is still waiting (its connection was not closed by a timeout
/// behind it).
#[tokio::test]
async fn a_held_join_group_does_not_delay_other_requests_to_its_broker() {
    let (addr, accepted, mut joins) = coordinator_broker().await;
    let pool = Pool::bootstrap(PoolConfig {
        bootstrap: vec![addr],
        connection: ConnectionConfig {
            request_timeout: Duration::from_secs(2),
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .expect("bootstrap");
    let coordinator = pool
        .coordinator(CoordinatorType::Group, "g")
        .await
        .expect("coordinator");
    let version = coordinator
        .negotiate(krust_codec::ApiKey::JoinGroup, (0, 9))
        .expect("JoinGroup");
    let join = tokio::spawn(async move {
        coordinator
            .send_at_with_timeout(&join_request(), version, Duration::from_secs(30))
            .await
    });
    joins
        .recv()
        .await
        .expect("the coordinator holds the JoinGroup");

    let conn = pool.broker(1).await.expect("broker 1");
    let offsets = conn.send(&list_offsets_request()).await;
    assert!(
        offsets.is_ok(),
        "ListOffsets queued behind the held JoinGroup: {offsets:?}"
    );
    let metadata = conn.send(&metadata_request(&[])).await;
    assert!(metadata.is_ok(), "{metadata:?}");
    assert!(
        !join.is_finished(),
        "the JoinGroup must still be waiting: {:?}",
        join.await
    );
    // The bootstrap connection, broker 1's Normal lane, its Group lane.
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
    join.abort();
}

/// Each lane is its own lazily made connection, reused while it lives;
/// `Pool::broker` is the Normal lane and `Pool::coordinator` the Group
/// lane of the same broker.
#[tokio::test]
async fn lanes_are_lazy_separate_connections_to_one_broker() {
    let (addr, accepted, _joins) = coordinator_broker().await;
    let pool = Pool::bootstrap(PoolConfig {
        bootstrap: vec![addr],
        ..Default::default()
    })
    .await
    .expect("bootstrap");
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "bootstrap only");
    let normal = pool.broker(1).await.expect("normal");
    let again = pool.broker_lane(1, Lane::Normal).await.expect("normal");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    let group = pool
        .coordinator(CoordinatorType::Group, "g")
        .await
        .expect("group");
    let group_again = pool.broker_lane(1, Lane::Group).await.expect("group");
    let produce = pool.broker_lane(1, Lane::Produce).await.expect("produce");
    assert_eq!(accepted.load(Ordering::SeqCst), 4);
    for c in [&normal, &again, &group, &group_again, &produce] {
        assert_eq!(c.broker_id(), Some(1));
    }
    assert!(matches!(
        pool.broker_lane(7, Lane::Group).await,
        Err(Error::UnknownBroker(7))
    ));
}
