//! The pool's state against scripted peers, for what no real broker shows
//! on cue: a coordinator that the metadata does not list (a broker whose
//! metadata lags answered the Metadata request) stays reachable across
//! metadata refreshes, and cluster-wide requests go to the least loaded
//! connection, not to a broker that stopped answering.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use krust_codec::generated::FindCoordinatorResponse;
use krust_codec::generated::MetadataResponse;
use krust_codec::generated::find_coordinator_response::Coordinator;
use krust_codec::generated::metadata_response::MetadataResponseBroker;
use krust_codec::{RequestBody, ResponseBody};
use krust_net::{CoordinatorType, Lane, Pool, PoolConfig};
use tokio::net::TcpListener;

fn host_port(addr: &str) -> (String, i32) {
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    (host.to_owned(), port.parse().expect("port"))
}

/// A broker that answers the handshake and then holds whatever comes.
async fn handshake_only(l: TcpListener, accepted: Arc<AtomicUsize>) {
    let mut held = Vec::new();
    while let Ok((mut s, _)) = l.accept().await {
        accepted.fetch_add(1, Ordering::SeqCst);
        if let Some((h, _)) = read_request(&mut s).await {
            reply(&mut s, &h, ResponseBody::ApiVersions(api_versions_body())).await;
        }
        held.push(s);
    }
}

/// Broker 1 at `own`, whose Metadata lists only itself (its metadata lags:
/// it does not know broker 2 yet), and whose FindCoordinator names broker
/// 2 at `coordinator`.
async fn lagging_broker(l: TcpListener, own: String, coordinator: String) {
    lagging_broker_holding(l, own, coordinator, None).await
}

/// A Metadata request that names the topic "hold", told to the test, and
/// its reply held until the test says so.
type Hold = (tokio::sync::mpsc::Sender<()>, Arc<tokio::sync::Notify>);

/// [`lagging_broker`], holding the Metadata replies that `hold` names.
async fn lagging_broker_holding(
    l: TcpListener,
    own: String,
    coordinator: String,
    hold: Option<Hold>,
) {
    while let Ok((mut s, _)) = l.accept().await {
        let (own, coordinator, hold) = (own.clone(), coordinator.clone(), hold.clone());
        tokio::spawn(async move {
            while let Some((h, body)) = read_request(&mut s).await {
                let r = match &body {
                    RequestBody::ApiVersions(_) => ResponseBody::ApiVersions(api_versions_body()),
                    RequestBody::Metadata(m) => {
                        let mut names = m.topics.iter().flatten().filter_map(|t| t.name.as_ref());
                        if let Some((held, release)) = &hold
                            && names.any(|n| n.as_str() == "hold")
                        {
                            let _ = held.send(()).await;
                            release.notified().await;
                        }
                        let (host, port) = host_port(&own);
                        ResponseBody::Metadata(MetadataResponse {
                            brokers: vec![MetadataResponseBroker {
                                node_id: 1,
                                host: host.as_str().into(),
                                port,
                                ..Default::default()
                            }],
                            controller_id: 1,
                            ..Default::default()
                        })
                    }
                    RequestBody::FindCoordinator(f) => {
                        let (host, port) = host_port(&coordinator);
                        ResponseBody::FindCoordinator(FindCoordinatorResponse {
                            coordinators: f
                                .coordinator_keys
                                .iter()
                                .map(|k| Coordinator {
                                    key: k.clone(),
                                    node_id: 2,
                                    host: host.as_str().into(),
                                    port,
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                    }
                    other => panic!("unexpected {other:?}"),
                };
                reply(&mut s, &h, r).await;
            }
        });
    }
}

/// FindCoordinator names broker 2, which the Metadata replies do not list.
/// A metadata refresh after the lookup used to replace the broker list and
/// drop broker 2, so the cached coordinator could no longer be reached
/// (`UnknownBroker(2)`) until the cache was invalidated by hand.
#[tokio::test]
async fn a_coordinator_the_metadata_does_not_list_survives_a_refresh() {
    let (l1, a1) = listen().await;
    let (l2, a2) = listen().await;
    let accepted = Arc::new(AtomicUsize::new(0));
    tokio::spawn(lagging_broker(l1, a1.clone(), a2.clone()));
    tokio::spawn(handshake_only(l2, accepted.clone()));
    let pool = Pool::bootstrap(PoolConfig {
        bootstrap: vec![a1],
        ..Default::default()
    })
    .await
    .expect("bootstrap");
    let id = pool
        .coordinator_id(CoordinatorType::Group, "g")
        .await
        .expect("lookup");
    assert_eq!(id, 2);
    pool.refresh_metadata(&[]).await.expect("refresh");
    let conn = tokio::time::timeout(
        Duration::from_secs(5),
        pool.coordinator(CoordinatorType::Group, "g"),
    )
    .await
    .expect("no hang")
    .expect("the coordinator is still known after the refresh");
    assert_eq!(conn.broker_id(), Some(2));
    assert_eq!(conn.addr(), a2);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

/// The interleaving itself: a refresh whose Metadata request went out
/// before the coordinator was found, answered (by the lagging broker)
/// after. Used to replace the broker list from its older snapshot; the
/// coordinator found meanwhile must stay reachable.
#[tokio::test]
async fn a_coordinator_found_while_a_refresh_is_in_flight_survives_it() {
    let (l1, a1) = listen().await;
    let (l2, a2) = listen().await;
    let accepted = Arc::new(AtomicUsize::new(0));
    let (held_tx, mut held) = tokio::sync::mpsc::channel(4);
    let release = Arc::new(tokio::sync::Notify::new());
    tokio::spawn(lagging_broker_holding(
        l1,
        a1.clone(),
        a2.clone(),
        Some((held_tx, release.clone())),
    ));
    tokio::spawn(handshake_only(l2, accepted.clone()));
    let pool = Pool::bootstrap(PoolConfig {
        bootstrap: vec![a1],
        ..Default::default()
    })
    .await
    .expect("bootstrap");
    // A second connection to broker 1, so that the lookup need not queue
    // behind the held Metadata request (the least loaded one is taken).
    pool.broker(1).await.expect("broker 1");
    let refreshing = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.refresh_metadata(&["hold"]).await })
    };
    held.recv().await.expect("the Metadata reply is held");
    let id = pool
        .coordinator_id(CoordinatorType::Group, "g")
        .await
        .expect("lookup");
    assert_eq!(id, 2);
    release.notify_one();
    refreshing.await.expect("task").expect("refresh");
    let conn = tokio::time::timeout(
        Duration::from_secs(5),
        pool.coordinator(CoordinatorType::Group, "g"),
    )
    .await
    .expect("no hang")
    .expect("the coordinator found during the refresh is still known");
    assert_eq!(conn.broker_id(), Some(2));
    assert_eq!(conn.addr(), a2);
}

/// A broker of a two-broker cluster (ids 1 and 2 at `addrs`): answers
/// Metadata at once, except a request naming the topic "hang", which it
/// holds (telling `held`), as a hung broker does; counts the Metadata
/// requests it answers.
async fn broker_that_can_hang(
    l: TcpListener,
    addrs: [String; 2],
    held: tokio::sync::mpsc::Sender<()>,
    answered: Arc<AtomicUsize>,
) {
    while let Ok((mut s, _)) = l.accept().await {
        let (addrs, held, answered) = (addrs.clone(), held.clone(), answered.clone());
        tokio::spawn(async move {
            while let Some((h, body)) = read_request(&mut s).await {
                let r = match &body {
                    RequestBody::ApiVersions(_) => ResponseBody::ApiVersions(api_versions_body()),
                    RequestBody::Metadata(m) => {
                        let names = m.topics.iter().flatten().filter_map(|t| t.name.as_ref());
                        if names.into_iter().any(|n| n.as_str() == "hang") {
                            let _ = held.send(()).await;
                            tokio::time::sleep(Duration::from_secs(20)).await;
                            return;
                        }
                        answered.fetch_add(1, Ordering::SeqCst);
                        let brokers = addrs
                            .iter()
                            .zip(1..)
                            .map(|(a, id)| {
                                let (host, port) = host_port(a);
                                MetadataResponseBroker {
                                    node_id: id,
                                    host: host.as_str().into(),
                                    port,
                                    ..Default::default()
                                }
                            })
                            .collect();
                        ResponseBody::Metadata(MetadataResponse {
                            brokers,
                            controller_id: 1,
                            ..Default::default()
                        })
                    }
                    other => panic!("unexpected {other:?}"),
                };
                reply(&mut s, &h, r).await;
            }
        });
    }
}

/// Two brokers that can hang ([`broker_that_can_hang`]) and a pool
/// bootstrapped from broker 1 with a 3 s request timeout.
struct HangPair {
    pool: Pool,
    a1: String,
    a2: String,
    /// Told when a broker holds a request.
    held: tokio::sync::mpsc::Receiver<()>,
    /// Metadata requests each broker answered.
    answered1: Arc<AtomicUsize>,
    answered2: Arc<AtomicUsize>,
}

async fn hang_pair() -> HangPair {
    let (l1, a1) = listen().await;
    let (l2, a2) = listen().await;
    let (held_tx, held) = tokio::sync::mpsc::channel(4);
    let (answered1, answered2) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let addrs = [a1.clone(), a2.clone()];
    tokio::spawn(broker_that_can_hang(
        l1,
        addrs.clone(),
        held_tx.clone(),
        answered1.clone(),
    ));
    tokio::spawn(broker_that_can_hang(l2, addrs, held_tx, answered2.clone()));
    let pool = Pool::bootstrap(PoolConfig {
        bootstrap: vec![a1.clone()],
        connection: krust_net::ConnectionConfig {
            request_timeout: Duration::from_secs(3),
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .expect("bootstrap");
    HangPair {
        pool,
        a1,
        a2,
        held,
        answered1,
        answered2,
    }
}

/// Broker 1 (the bootstrap connection) stops answering with a request in
/// flight; broker 2 is connected and idle. A cluster-wide request must go
/// to broker 2 (Java's `leastLoadedNode`: the connected node with the
/// fewest requests in flight), not queue behind the hung one, which
/// used to cost it a request timeout (and the hung request's connection).
#[tokio::test]
async fn cluster_wide_requests_go_to_the_least_loaded_connection() {
    let HangPair {
        pool,
        a1,
        a2,
        mut held,
        answered1,
        answered2,
    } = hang_pair().await;
    let first = pool.any_connection().await.expect("connection");
    assert_eq!(first.addr(), a1, "only the bootstrap connection so far");
    let hung = tokio::spawn(async move { first.send(&metadata_request(&["hang"])).await });
    held.recv().await.expect("broker 1 holds the request");
    let second = pool.broker(2).await.expect("broker 2");
    assert_eq!(second.in_flight(), 0);

    let picked = pool.any_connection().await.expect("connection");
    assert_eq!(
        picked.addr(),
        a2,
        "the idle broker, not the one with a request in flight"
    );
    let before = answered1.load(Ordering::SeqCst);
    pool.refresh_metadata(&[]).await.expect("refresh");
    assert_eq!(
        answered1.load(Ordering::SeqCst),
        before,
        "nothing more sent to broker 1"
    );
    assert!(answered2.load(Ordering::SeqCst) >= 1);
    assert!(
        !hung.is_finished(),
        "the hung request is still waiting: {:?}",
        hung.await
    );
    hung.abort();
}

/// Broker 1 stops answering a request on its group lane (a coordinator's
/// heartbeat, say) while its bootstrap and normal connections sit idle;
/// broker 2 is connected and idle. The load is the broker's, whichever of
/// its connections holds it (Java keeps one connection per node, so its
/// `leastLoadedNode` sees it there): a cluster-wide request goes to broker
/// 2, not to an idle connection of the hung broker, where it would wait a
/// whole request timeout (a group leader's metadata lookup did, holding
/// its group in SyncGroup past the session).
#[tokio::test]
async fn a_broker_hung_on_another_lane_is_passed_over() {
    let HangPair {
        pool,
        a2,
        mut held,
        answered1,
        ..
    } = hang_pair().await;
    let normal1 = pool.broker(1).await.expect("broker 1");
    let normal2 = pool.broker(2).await.expect("broker 2");
    let group1 = pool
        .broker_lane(1, Lane::Group)
        .await
        .expect("broker 1, group lane");
    let hung = tokio::spawn(async move { group1.send(&metadata_request(&["hang"])).await });
    held.recv().await.expect("broker 1 holds the request");
    assert_eq!((normal1.in_flight(), normal2.in_flight()), (0, 0));

    let picked = pool.any_connection().await.expect("connection");
    assert_eq!(
        picked.addr(),
        a2,
        "the idle broker, not an idle connection of the hung one"
    );
    let before = answered1.load(Ordering::SeqCst);
    pool.refresh_metadata(&[]).await.expect("refresh");
    assert_eq!(
        answered1.load(Ordering::SeqCst),
        before,
        "nothing more sent to broker 1"
    );
    assert!(!hung.is_finished(), "the hung request is still waiting");
    hung.abort();
}
