//! Bootstrap against scripted peers: when it gives up, the error names the
//! most specific cause each address showed (docs on `Error::Bootstrap`:
//! how far the conversation got), not the last attempt's; an address whose
//! peer showed that it does not speak Kafka (a reply cut mid-frame, bytes
//! that never complete a frame) is given up on at once, not retried until
//! the bootstrap timeout; and the connection bootstrap hands to the pool
//! keeps the configured request timeout (not what was left of the
//! bootstrap timeout).
//!
//! No real broker can be made to do any of this on cue, hence the peers.

mod common;

use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use common::*;
use krust_codec::{RequestBody, ResponseBody};
use krust_net::{ConnectionConfig, Error, Pool, PoolConfig};
use tokio::io::AsyncWriteExt;

fn pool_config(
    bootstrap: Vec<String>,
    request: Duration,
    bootstrap_timeout: Duration,
) -> PoolConfig {
    PoolConfig {
        bootstrap,
        bootstrap_timeout,
        connection: ConnectionConfig {
            request_timeout: request,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// 100 bytes announced, 10 sent (the correlation id and 6 more).
fn partial_frame(correlation_id: i32) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_i32(100);
    b.put_i32(correlation_id);
    b.put_slice(&[0; 6]);
    b.to_vec()
}

/// The one address's cause in a bootstrap error.
fn cause_at(err: &Error, addr: &str) -> Error {
    let Error::Bootstrap { attempts } = err else {
        panic!("expected a bootstrap error, got {err:?}");
    };
    attempts
        .iter()
        .find(|(a, _)| a == addr)
        .map(|(_, e)| e.clone())
        .unwrap_or_else(|| panic!("{addr} is not named in {err}"))
}

/// A peer that answers its first connection's ApiVersions with part of a
/// frame and closes, then stops listening: every later attempt is
/// refused. Today's bootstrap retried it until the timeout and reported
/// the refusal.
#[tokio::test]
async fn a_reply_cut_mid_frame_fails_the_address_at_once_naming_the_cut() {
    let (l, addr) = listen().await;
    let peer = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.expect("accept");
        drop(l);
        let (h, _) = read_request(&mut s).await.expect("ApiVersions");
        s.write_all(&partial_frame(h.correlation_id))
            .await
            .expect("write");
    });
    let timeout = Duration::from_secs(6);
    let started = Instant::now();
    let err = Pool::bootstrap(pool_config(
        vec![addr.clone()],
        Duration::from_secs(2),
        timeout,
    ))
    .await
    .expect_err("not Kafka");
    let waited = started.elapsed();
    let cause = cause_at(&err, &addr);
    assert!(
        cause.is_not_kafka(),
        "a cut reply shows the peer does not speak Kafka: {cause}"
    );
    let msg = cause.to_string();
    assert!(
        msg.contains("10 of 100 bytes") && msg.contains("closed"),
        "{msg}"
    );
    assert!(
        waited < timeout / 2,
        "given up on after {waited:?}, the bootstrap timeout is {timeout:?}"
    );
    peer.await.expect("peer");
}

/// A peer that sends part of a reply frame and then nothing more, holding
/// the connection open: the frame never completes. One request timeout
/// shows it; the address is not retried for the rest of the bootstrap
/// timeout.
#[tokio::test]
async fn bytes_that_never_complete_a_frame_fail_the_address_after_one_request_timeout() {
    let (l, addr) = listen().await;
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut s, _)) = l.accept().await {
            if let Some((h, _)) = read_request(&mut s).await {
                let _ = s.write_all(&partial_frame(h.correlation_id)).await;
            }
            held.push(s);
        }
    });
    let timeout = Duration::from_secs(6);
    let started = Instant::now();
    let err = Pool::bootstrap(pool_config(
        vec![addr.clone()],
        Duration::from_millis(300),
        timeout,
    ))
    .await
    .expect_err("not Kafka");
    let waited = started.elapsed();
    let cause = cause_at(&err, &addr);
    assert!(cause.is_not_kafka(), "{cause}");
    assert!(cause.to_string().contains("10 of 100 bytes"), "{cause}");
    assert!(
        waited < timeout / 2,
        "given up on after {waited:?}, the bootstrap timeout is {timeout:?}"
    );
}

/// Two addresses whose peers answer their first connection badly and
/// then stop listening: one holds the ApiVersions request unanswered (a
/// timeout after connect), the other closes without a byte. Every later
/// attempt is refused; the error must still name what each first showed.
#[tokio::test]
async fn the_error_names_the_most_specific_cause_of_each_address_not_the_last() {
    let (silent, silent_addr) = listen().await;
    let (closing, closing_addr) = listen().await;
    let silent_peer = tokio::spawn(async move {
        let (mut s, _) = silent.accept().await.expect("accept");
        drop(silent);
        let _ = read_request(&mut s).await;
        // Hold it, unanswered, past the request timeout.
        tokio::time::sleep(Duration::from_secs(1)).await;
    });
    let closing_peer = tokio::spawn(async move {
        let (mut s, _) = closing.accept().await.expect("accept");
        drop(closing);
        let _ = read_request(&mut s).await;
    });
    let err = Pool::bootstrap(pool_config(
        vec![silent_addr.clone(), closing_addr.clone()],
        Duration::from_millis(300),
        Duration::from_millis(1500),
    ))
    .await
    .expect_err("nothing is Kafka");
    let silent_cause = cause_at(&err, &silent_addr);
    assert!(
        matches!(silent_cause, Error::Timeout { .. }),
        "a timeout after connect says more than the refusals after it: {silent_cause:?}"
    );
    let closing_cause = cause_at(&err, &closing_addr);
    assert!(
        matches!(closing_cause, Error::Io { .. }) && closing_cause.to_string().contains("closed"),
        "a peer that accepted and hung up says more than the refusals after it: {closing_cause:?}"
    );
    assert!(!err.to_string().contains("refused"), "{err}");
    silent_peer.await.expect("peer");
    closing_peer.await.expect("peer");
}

/// The bootstrap connection becomes the pool's connection for cluster-wide
/// requests; each attempt is bounded by what is left of the bootstrap
/// timeout, but that bound must not stay on the connection as its request
/// timeout. Here a Metadata request the peer answers after 1.5 s, with a
/// 10 s request timeout and a 1 s bootstrap timeout.
#[tokio::test]
async fn the_bootstrap_connection_keeps_the_configured_request_timeout() {
    let (l, addr) = listen().await;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut metadata = 0;
                while let Some((h, body)) = read_request(&mut s).await {
                    let r = match &body {
                        RequestBody::ApiVersions(_) => {
                            ResponseBody::ApiVersions(api_versions_body())
                        }
                        RequestBody::Metadata(_) => {
                            metadata += 1;
                            // The pool's own first refresh is answered at once.
                            if metadata > 1 {
                                tokio::time::sleep(Duration::from_millis(1500)).await;
                            }
                            metadata_echo(&body)
                        }
                        other => panic!("unexpected {other:?}"),
                    };
                    reply(&mut s, &h, r).await;
                }
            });
        }
    });
    let pool = Pool::bootstrap(pool_config(
        vec![addr],
        Duration::from_secs(10),
        Duration::from_secs(1),
    ))
    .await
    .expect("bootstrap");
    let conn = pool.any_connection().await.expect("connection");
    let resp = conn
        .send(&metadata_request(&["t"]))
        .await
        .expect("answered within the 10 s request timeout");
    assert_eq!(resp.topics.len(), 1);
}
