//! Connection lanes: a broker answers one connection's requests strictly in
//! order, so a request the broker holds on purpose (a JoinGroup for up to
//! the rebalance timeout) delays everything behind it on that connection.
//! The pool keeps a connection per broker and lane (`krust_net::Lane`);
//! the coordinator's requests travel on the Group lane, apart from the
//! Metadata, ListOffsets and Produce requests to the same broker, and the
//! group driver's JoinGroup on the Join lane, apart from the group's commits
//! and offset fetches.
//!
//! On Apache Kafka 4.4.0 (the node this binary shares): a second member's
//! JoinGroup, which the coordinator holds until the first member rejoins
//! or its rebalance timeout ends, while a ListOffsets goes to the same
//! broker. Then on a scripted peer, which holds a JoinGroup for as long as
//! the test needs, for the connection counts.

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
    ApiVersionsResponse, FindCoordinatorResponse, JoinGroupRequest, JoinGroupResponse,
    ListOffsetsRequest, ListOffsetsResponse, MetadataResponse,
};
use krust_codec::{ApiKey, ErrorCode, Message, consumer_protocol};
use krust_codec::{RequestBody, ResponseBody};
use krust_net::{Connection, ConnectionConfig, CoordinatorType, Error, Lane, Pool, PoolConfig};
use krust_testkit::{Broker, Kafka, unique};
use tokio::sync::mpsc;

/// A pool bootstrapped from `addr` with `request_timeout`.
async fn pool_with_timeout(addr: String, request_timeout: Duration) -> Pool {
    Pool::bootstrap(PoolConfig {
        bootstrap: vec![addr],
        connection: ConnectionConfig {
            request_timeout,
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .expect("bootstrap")
}

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

/// A JoinGroup of `member` (empty: a new one) with `topic`'s subscription.
fn member_join(
    group: &str,
    member: &str,
    topic: &str,
    rebalance_timeout_ms: i32,
) -> JoinGroupRequest {
    let sub = consumer_protocol::Subscription {
        topics: vec![topic.into()],
        ..Default::default()
    };
    JoinGroupRequest {
        group_id: group.into(),
        session_timeout_ms: 30_000,
        rebalance_timeout_ms,
        member_id: member.into(),
        protocol_type: consumer_protocol::PROTOCOL_TYPE.into(),
        protocols: vec![JoinGroupRequestProtocol {
            name: "range".into(),
            metadata: consumer_protocol::encode_subscription(&sub, 0).expect("subscription"),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Join as a new member: the first JoinGroup (v4+) is answered at once
/// with MEMBER_ID_REQUIRED and the id to join with; returns the id and the
/// second JoinGroup's future, which the coordinator answers when the group
/// is ready.
async fn join_as_new_member(
    conn: &Connection,
    group: &str,
    topic: &str,
    rebalance_timeout_ms: i32,
) -> (
    String,
    impl std::future::Future<Output = Result<JoinGroupResponse, Error>> + use<>,
) {
    let version = conn
        .negotiate(ApiKey::JoinGroup, JoinGroupRequest::VALID_VERSIONS)
        .expect("JoinGroup");
    assert!(version >= 4, "Kafka 4.4 speaks JoinGroup v4+");
    let wait = Duration::from_millis(u64::try_from(rebalance_timeout_ms).expect("ms") + 10_000);
    // A fresh node may still be loading the offsets topic: retriable.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let first = loop {
        let first = conn
            .send_at_with_timeout(
                &member_join(group, "", topic, rebalance_timeout_ms),
                version,
                wait,
            )
            .await
            .expect("JoinGroup");
        let code = ErrorCode::from(first.error_code);
        if !code.is_retriable() || std::time::Instant::now() >= deadline {
            break first;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        ErrorCode::from(first.error_code),
        ErrorCode::MEMBER_ID_REQUIRED,
        "{first:?}"
    );
    let member = first.member_id.as_str().to_owned();
    let req = member_join(group, &member, topic, rebalance_timeout_ms);
    let conn = conn.clone();
    (member, async move {
        conn.send_at_with_timeout(&req, version, wait).await
    })
}

/// On Kafka: member A joins (generation 1) and then says nothing more;
/// member B's JoinGroup is held by the coordinator, which waits for A to
/// rejoin, up to A's 20 s rebalance timeout. Meanwhile a ListOffsets to
/// the same broker through the pool must be answered at once, and B's
/// JoinGroup must still be waiting (not failed by a timeout closing its
/// connection).
#[tokio::test]
async fn a_join_group_held_by_kafka_does_not_delay_list_offsets_to_its_broker() {
    let kafka = Kafka::shared();
    let topic = unique("krust-net-lanes");
    let group = unique("krust-net-lanes");
    kafka.create_topic(&topic, 1).expect("topic");
    let pool = pool_with_timeout(kafka.addr(), Duration::from_secs(3)).await;
    let coordinator = pool
        .coordinator(CoordinatorType::Group, &group)
        .await
        .expect("coordinator");
    let (_, a_joins) = join_as_new_member(&coordinator, &group, &topic, 20_000).await;
    let a = a_joins.await.expect("A's JoinGroup");
    assert_eq!(ErrorCode::from(a.error_code), ErrorCode::NONE, "{a:?}");
    let (_, b_joins) = join_as_new_member(&coordinator, &group, &topic, 20_000).await;
    let b = tokio::spawn(b_joins);
    // Let B's JoinGroup reach the coordinator, which now waits for A.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !b.is_finished(),
        "B's JoinGroup answered at once: {:?}",
        b.await
    );

    let (leader, epoch) = pool.leader_connection(&topic, 0).await.expect("leader");
    assert_eq!(leader.addr(), coordinator.addr(), "one broker");
    let mut req = list_offsets_request();
    req.topics[0].name = topic.as_str().into();
    req.topics[0].partitions[0].current_leader_epoch = epoch;
    let offsets = leader.send(&req).await;
    let offsets = offsets.unwrap_or_else(|e| panic!("ListOffsets behind the held JoinGroup: {e}"));
    assert_eq!(offsets.topics[0].partitions[0].error_code, 0, "{offsets:?}");
    assert!(
        !b.is_finished(),
        "B's JoinGroup must still be held: {:?}",
        b.await
    );
    b.abort();
}

/// While the coordinator holds a JoinGroup, a ListOffsets and a Metadata
/// sent to the same broker through the pool are answered at once; the
/// JoinGroup is still waiting (its connection was not closed by a timeout
/// behind it).
#[tokio::test]
async fn a_held_join_group_does_not_delay_other_requests_to_its_broker() {
    let (addr, accepted, mut joins) = coordinator_broker().await;
    let pool = pool_with_timeout(addr, Duration::from_secs(2)).await;
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

/// On Kafka: the same held JoinGroup, sent on the coordinator's Join lane
/// as the group driver sends it, delays none of the group's own requests:
/// an OffsetFetch to the coordinator (its Group lane) is answered at once,
/// where on one connection it would wait for the round (a commit did, and
/// stopped its application's partitions for the round).
#[tokio::test]
async fn a_join_group_on_the_join_lane_does_not_delay_the_groups_other_requests() {
    use krust_codec::generated::OffsetFetchRequest;
    let kafka = Kafka::shared();
    let topic = unique("krust-net-join-lane");
    let group = unique("krust-net-join-lane");
    kafka.create_topic(&topic, 1).expect("topic");
    let pool = pool_with_timeout(kafka.addr(), Duration::from_secs(3)).await;
    let join_lane = pool
        .coordinator_lane(CoordinatorType::Group, &group, Lane::Join)
        .await
        .expect("coordinator, join lane");
    let (_, a_joins) = join_as_new_member(&join_lane, &group, &topic, 20_000).await;
    let a = a_joins.await.expect("A's JoinGroup");
    assert_eq!(ErrorCode::from(a.error_code), ErrorCode::NONE, "{a:?}");
    let (_, b_joins) = join_as_new_member(&join_lane, &group, &topic, 20_000).await;
    let b = tokio::spawn(b_joins);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !b.is_finished(),
        "B's JoinGroup answered at once: {:?}",
        b.await
    );

    let group_lane = pool
        .coordinator(CoordinatorType::Group, &group)
        .await
        .expect("coordinator");
    assert_eq!(group_lane.addr(), join_lane.addr(), "one coordinator");
    let req = OffsetFetchRequest {
        group_id: group.as_str().into(),
        topics: None,
        ..Default::default()
    };
    let fetched = group_lane
        .send_at(&req, 7)
        .await
        .unwrap_or_else(|e| panic!("OffsetFetch behind the held JoinGroup: {e}"));
    assert_eq!(fetched.error_code, 0, "{fetched:?}");
    assert!(
        !b.is_finished(),
        "B's JoinGroup must still be held: {:?}",
        b.await
    );
    b.abort();
}
