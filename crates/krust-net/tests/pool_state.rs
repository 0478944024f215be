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
use krust_net::{CoordinatorType, Pool, PoolConfig};
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
    while let Ok((mut s, _)) = l.accept().await {
        let (own, coordinator) = (own.clone(), coordinator.clone());
        tokio::spawn(async move {
            while let Some((h, body)) = read_request(&mut s).await {
                let r = match &body {
                    RequestBody::ApiVersions(_) => ResponseBody::ApiVersions(api_versions_body()),
                    RequestBody::Metadata(_) => {
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
