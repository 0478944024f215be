//! Peers that are not (working) Kafka brokers: each must give a clear typed
//! error naming the address, quickly, without a panic or a large allocation.

mod common;

use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use common::*;
use krust_codec::ResponseBody;
use krust_codec::frame::FrameError;
use krust_net::{Connection, ConnectionConfig, Error, ProtocolViolation};
use tokio::io::AsyncWriteExt;

fn config() -> ConnectionConfig {
    ConnectionConfig {
        request_timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

/// Connect to a peer that reads the ApiVersions request and then writes
/// `answer` (given the request's correlation id) and closes.
async fn connect_to_peer(answer: impl FnOnce(i32) -> Vec<u8> + Send + 'static) -> (Error, String) {
    let (l, addr) = listen().await;
    let peer = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.expect("accept");
        let (h, _) = read_request(&mut s).await.expect("request");
        let _ = s.write_all(&answer(h.correlation_id)).await;
        // Hold the socket open a little so the client sees the bytes first.
        tokio::time::sleep(Duration::from_millis(50)).await;
    });
    let started = Instant::now();
    let err = Connection::connect(&addr, None, &config())
        .await
        .expect_err("a hostile peer must not give a connection");
    assert!(started.elapsed() < Duration::from_secs(2), "failed slowly");
    assert!(
        err.to_string().contains(&addr),
        "error must name {addr}: {err}"
    );
    peer.await.expect("peer");
    (err, addr)
}

#[tokio::test]
async fn http_reply_is_not_kafka() {
    let (err, _) =
        connect_to_peer(|_| b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".to_vec())
            .await;
    assert!(
        matches!(
            err,
            Error::NotKafka {
                cause: ProtocolViolation::Frame(FrameError::NotKafka(_)),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("HTTP/1.1 400"), "{err}");
    assert!(!err.is_retriable());
}

#[tokio::test]
async fn oversize_frame_fails_before_allocating() {
    // 2 GiB - 1 declared; the client must refuse it on the length alone.
    let (err, _) = connect_to_peer(|_| vec![0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1]).await;
    assert!(
        matches!(
            err,
            Error::NotKafka {
                cause: ProtocolViolation::Frame(FrameError::TooLarge { .. }),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_not_kafka());
}

#[tokio::test]
async fn wrong_correlation_id_is_not_kafka() {
    let (err, _) = connect_to_peer(|corr| {
        response_frame(
            0,
            corr.wrapping_add(7),
            &ResponseBody::ApiVersions(api_versions_body()),
        )
        .to_vec()
    })
    .await;
    assert!(
        matches!(
            err,
            Error::NotKafka {
                cause: ProtocolViolation::CorrelationMismatch { .. },
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn truncated_frame_body_is_undecodable() {
    // A well-formed frame whose body ends in the middle of the message.
    let (err, _) = connect_to_peer(|corr| {
        let mut b = BytesMut::new();
        b.put_i32(5);
        b.put_i32(corr);
        b.put_u8(0);
        b.to_vec()
    })
    .await;
    assert!(
        matches!(
            err,
            Error::NotKafka {
                cause: ProtocolViolation::Decode(_),
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn connection_closed_mid_frame() {
    // 100 bytes announced, 10 sent, then the peer closes.
    let (err, _) = connect_to_peer(|corr| {
        let mut b = BytesMut::new();
        b.put_i32(100);
        b.put_i32(corr);
        b.put_slice(&[0; 6]);
        b.to_vec()
    })
    .await;
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("mid-frame"), "{err}");
    assert!(err.to_string().contains("10 of 100"), "{err}");
}

#[tokio::test]
async fn closed_inside_length_prefix() {
    let (err, _) = connect_to_peer(|_| vec![0, 0]).await;
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("mid-frame"), "{err}");
}

#[tokio::test]
async fn connect_refused_names_the_address() {
    let (l, addr) = listen().await;
    drop(l);
    let err = Connection::connect(&addr, None, &config())
        .await
        .expect_err("nothing listens");
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains(&addr), "{err}");
    assert!(err.is_retriable());
}

/// After the handshake, one wrong correlation id fails every request in
/// flight and every later one with the same error.
#[tokio::test]
async fn desync_poisons_every_waiter() {
    let (l, addr) = listen().await;
    let peer = tokio::spawn(async move {
        let mut s = accept_and_handshake(&l).await;
        let mut reqs = Vec::new();
        for _ in 0..3 {
            reqs.push(read_request(&mut s).await.expect("request"));
        }
        let (h, body) = &reqs[1];
        // Answer the second request first: a desync.
        let f = response_frame(
            h.request_api_version,
            h.correlation_id,
            &metadata_echo(body),
        );
        s.write_all(&f).await.expect("write");
        tokio::time::sleep(Duration::from_millis(200)).await;
    });
    let conn = Connection::connect(&addr, Some(1), &config())
        .await
        .expect("connect");
    let req = metadata_request(&["a"]);
    let (a, b, c) = tokio::join!(conn.send(&req), conn.send(&req), conn.send(&req));
    let errs: Vec<String> = [a, b, c]
        .into_iter()
        .map(|r| r.expect_err("poisoned").to_string())
        .collect();
    assert!(errs[0].contains("correlation id"), "{}", errs[0]);
    assert!(errs.iter().all(|e| e == &errs[0]), "{errs:?}");
    let later = conn
        .send(&req)
        .await
        .expect_err("still poisoned")
        .to_string();
    assert_eq!(later, errs[0]);
    assert!(conn.is_closed());
    peer.await.expect("peer");
}

#[tokio::test]
async fn silent_peer_times_out_with_api_and_broker() {
    let (l, addr) = listen().await;
    let peer = tokio::spawn(async move {
        let mut s = accept_and_handshake(&l).await;
        let _ = read_request(&mut s).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    });
    let cfg = ConnectionConfig {
        request_timeout: Duration::from_millis(100),
        ..config()
    };
    let conn = Connection::connect(&addr, None, &cfg)
        .await
        .expect("connect");
    let err = conn
        .send(&metadata_request(&[]))
        .await
        .expect_err("timeout");
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("Metadata") && msg.contains(&addr), "{msg}");
    assert!(err.is_retriable());
    peer.await.expect("peer");
}

/// The fake peer's frames are built with the codec; make sure a reply the
/// client cannot decode at the version it asked for is a typed error and
/// leaves the connection usable.
#[tokio::test]
async fn undecodable_reply_after_handshake_keeps_the_connection() {
    let (l, addr) = listen().await;
    let peer = tokio::spawn(async move {
        let mut s = accept_and_handshake(&l).await;
        let (h, _) = read_request(&mut s).await.expect("request");
        let mut b = BytesMut::new();
        b.put_i32(6);
        b.put_i32(h.correlation_id);
        b.put_i16(0);
        s.write_all(&b).await.expect("write");
        let (h, body) = read_request(&mut s).await.expect("request");
        reply(&mut s, &h, metadata_echo(&body)).await;
    });
    let conn = Connection::connect(&addr, None, &config())
        .await
        .expect("connect");
    let err = conn
        .send(&metadata_request(&["x"]))
        .await
        .expect_err("bad body");
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    let ok = conn.send(&metadata_request(&["y"])).await.expect("usable");
    assert_eq!(ok.topics[0].name.as_ref().map(|n| n.as_str()), Some("y"));
    peer.await.expect("peer");
}
