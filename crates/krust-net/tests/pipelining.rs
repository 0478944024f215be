//! Pipelining, cancellation, the ApiVersions fallback, throttling and
//! no-response requests against a scripted fake peer.

mod common;

use std::time::{Duration, Instant};

use common::*;
use krust_codec::generated::ApiVersionsResponse;
use krust_codec::generated::MetadataResponse;
use krust_codec::generated::api_versions_response::ApiVersion;
use krust_codec::{ErrorCode, RequestBody, ResponseBody};
use krust_net::{Connection, ConnectionConfig, Error};
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn a_thousand_requests_in_flight_each_get_their_reply() {
    const N: usize = 1000;
    let (l, addr) = listen().await;
    let peer = tokio::spawn(async move {
        let mut s = accept_and_handshake(&l).await;
        // Read every request before answering any: all N are in flight.
        let mut reqs = Vec::with_capacity(N);
        for _ in 0..N {
            reqs.push(read_request(&mut s).await.expect("request"));
        }
        let mut out = Vec::new();
        for (h, body) in &reqs {
            out.extend_from_slice(&response_frame(
                h.request_api_version,
                h.correlation_id,
                &metadata_echo(body),
            ));
        }
        s.write_all(&out).await.expect("write");
        reqs.len()
    });
    let cfg = ConnectionConfig {
        max_in_flight: N,
        ..Default::default()
    };
    let conn = Connection::connect(&addr, Some(0), &cfg)
        .await
        .expect("connect");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..N {
        let conn = conn.clone();
        tasks.spawn(async move {
            let name = format!("topic-{i}");
            let resp = conn.send(&metadata_request(&[&name])).await.expect("reply");
            assert_eq!(resp.topics.len(), 1);
            assert_eq!(
                resp.topics[0].name.as_ref().map(|n| n.as_str()),
                Some(&name[..])
            );
        });
    }
    let mut done = 0;
    while let Some(r) = tasks.join_next().await {
        r.expect("task");
        done += 1;
    }
    assert_eq!(done, N);
    assert_eq!(peer.await.expect("peer"), N);
}

/// A caller that gives up mid-flight (its future dropped) leaves the
/// connection usable: its frame is written whole or not at all, and its
/// reply is read and discarded.
#[tokio::test]
async fn cancelled_callers_leave_the_connection_usable() {
    let (l, addr) = listen().await;
    let peer = tokio::spawn(async move {
        let mut s = accept_and_handshake(&l).await;
        // Read slowly, so that big frames are mid-write when cancelled;
        // every frame must still decode, and each gets its reply.
        let mut seen = 0;
        while let Some((h, body)) = read_request(&mut s).await {
            seen += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
            reply(&mut s, &h, metadata_echo(&body)).await;
        }
        seen
    });
    let conn = Connection::connect(&addr, None, &ConnectionConfig::default())
        .await
        .expect("connect");
    // ~4 MB requests, each abandoned after a millisecond.
    let names: Vec<String> = (0..200_000).map(|i| format!("big-topic-{i:08}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let big = metadata_request(&refs);
    for _ in 0..3 {
        let r = tokio::time::timeout(Duration::from_millis(1), conn.send(&big)).await;
        assert!(r.is_err(), "a 4 MB request cannot complete in 1 ms");
    }
    for i in 0..5 {
        let name = format!("small-{i}");
        let resp = conn
            .send(&metadata_request(&[&name]))
            .await
            .expect("usable");
        assert_eq!(
            resp.topics[0].name.as_ref().map(|n| n.as_str()),
            Some(&name[..])
        );
    }
    drop(conn);
    let seen = peer.await.expect("peer");
    assert!(seen >= 5, "{seen}");
}

/// librdkafka's mock answers ApiVersions v3 with UNSUPPORTED_VERSION,
/// v0-encoded (KIP-511); the client retries and negotiates normally.
async fn fallback(listed: Vec<ApiVersion>, expect_retry_version: i16) {
    let (l, addr) = listen().await;
    let peer = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.expect("accept");
        let (h, body) = read_request(&mut s).await.expect("request");
        assert!(matches!(body, RequestBody::ApiVersions(_)));
        assert_eq!(h.request_api_version, 3);
        let err = ApiVersionsResponse {
            error_code: ErrorCode::UNSUPPORTED_VERSION.code(),
            api_keys: listed,
            ..Default::default()
        };
        // v0-encoded, whatever version was asked.
        let f = response_frame(0, h.correlation_id, &ResponseBody::ApiVersions(err));
        s.write_all(&f).await.expect("write");
        let (h, _) = read_request(&mut s).await.expect("retry");
        assert_eq!(h.request_api_version, expect_retry_version);
        reply(&mut s, &h, ResponseBody::ApiVersions(api_versions_body())).await;
        let (h, body) = read_request(&mut s).await.expect("metadata");
        reply(&mut s, &h, metadata_echo(&body)).await;
        h.request_api_version
    });
    let conn = Connection::connect(&addr, None, &ConnectionConfig::default())
        .await
        .expect("fallback succeeds");
    assert_eq!(
        conn.api_versions().range(krust_codec::ApiKey::Metadata),
        Some((0, 12))
    );
    conn.send(&metadata_request(&["t"]))
        .await
        .expect("metadata");
    assert_eq!(peer.await.expect("peer"), 12);
}

#[tokio::test]
async fn api_versions_v3_falls_back_to_v0() {
    fallback(Vec::new(), 0).await;
}

#[tokio::test]
async fn api_versions_fallback_uses_the_range_the_broker_lists() {
    let listed = vec![ApiVersion {
        api_key: 18,
        min_version: 0,
        max_version: 2,
        ..Default::default()
    }];
    fallback(listed, 2).await;
}

#[tokio::test]
async fn no_common_version_names_the_api_and_both_ranges() {
    let (l, addr) = listen().await;
    let _peer = tokio::spawn(async move {
        let _s = accept_and_handshake(&l).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    });
    let conn = Connection::connect(&addr, None, &ConnectionConfig::default())
        .await
        .expect("connect");
    // The fake peer does not list Fetch at all.
    let err = conn
        .send(&krust_codec::generated::FetchRequest::default())
        .await
        .expect_err("unsupported");
    assert!(matches!(err, Error::UnsupportedVersion { .. }), "{err:?}");
    assert!(err.to_string().contains("Fetch"), "{err}");
}

/// A reply's throttle_time_ms delays the next request on that connection
/// (KIP-219); it is not an error.
#[tokio::test]
async fn throttle_time_delays_the_next_request() {
    let (l, addr) = listen().await;
    let peer = tokio::spawn(async move {
        let mut s = accept_and_handshake(&l).await;
        let (h, _) = read_request(&mut s).await.expect("first");
        let throttled = MetadataResponse {
            throttle_time_ms: 300,
            ..Default::default()
        };
        reply(&mut s, &h, ResponseBody::Metadata(throttled)).await;
        let sent = Instant::now();
        let (h, body) = read_request(&mut s).await.expect("second");
        let waited = sent.elapsed();
        reply(&mut s, &h, metadata_echo(&body)).await;
        waited
    });
    let conn = Connection::connect(&addr, None, &ConnectionConfig::default())
        .await
        .expect("connect");
    let first = conn
        .send(&metadata_request(&[]))
        .await
        .expect("throttled is ok");
    assert_eq!(first.throttle_time_ms, 300);
    conn.send(&metadata_request(&["x"])).await.expect("second");
    let waited = peer.await.expect("peer");
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
}

/// Requests without a reply (acks=0) complete once written and do not
/// disturb the matching of later replies.
#[tokio::test]
async fn no_response_requests_do_not_enter_the_fifo() {
    let (l, addr) = listen().await;
    let peer = tokio::spawn(async move {
        let mut s = accept_and_handshake(&l).await;
        let (h1, _) = read_request(&mut s).await.expect("no-response request");
        let (h2, body) = read_request(&mut s).await.expect("metadata");
        reply(&mut s, &h2, metadata_echo(&body)).await;
        (h1.request_api_key, h2.request_api_key)
    });
    let conn = Connection::connect(&addr, None, &ConnectionConfig::default())
        .await
        .expect("connect");
    conn.send_no_response(&metadata_request(&["fire"]), 12)
        .await
        .expect("written");
    let r = conn.send(&metadata_request(&["m"])).await.expect("reply");
    assert_eq!(r.topics[0].name.as_ref().map(|n| n.as_str()), Some("m"));
    assert_eq!(peer.await.expect("peer"), (3, 3));
}

#[tokio::test]
async fn dropping_every_handle_closes_the_socket() {
    let (l, addr) = listen().await;
    let peer = tokio::spawn(async move {
        let mut s = accept_and_handshake(&l).await;
        tokio::time::timeout(Duration::from_secs(2), read_request(&mut s)).await
    });
    let conn = Connection::connect(&addr, None, &ConnectionConfig::default())
        .await
        .expect("connect");
    let clone = conn.clone();
    drop(conn);
    drop(clone);
    let r = peer.await.expect("peer");
    assert!(matches!(r, Ok(None)), "socket must close: {r:?}");
}

/// A request that times out takes its connection down with it, as in the
/// Java client (`NetworkClient` disconnects on a request timeout) and
/// librdkafka: a peer that swallowed one request (half-open TCP, a hung
/// broker) would otherwise hold every later request of the connection in
/// the queue behind it, each timing out in turn. The other waiters fail at
/// once with a retriable error naming the broker; the handle reports the
/// connection closed, so a pool makes a new one.
#[tokio::test]
async fn a_request_timeout_closes_the_connection() {
    let (l, addr) = listen().await;
    let peer = tokio::spawn(async move {
        let mut s = accept_and_handshake(&l).await;
        // Swallow the first request and the second; then wait for the
        // client to hang up.
        let first = read_request(&mut s).await.expect("first request");
        let second = read_request(&mut s).await.expect("second request");
        let closed = tokio::time::timeout(Duration::from_secs(5), read_request(&mut s)).await;
        (first.0.correlation_id, second.0.correlation_id, closed)
    });
    let cfg = ConnectionConfig {
        request_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let conn = Connection::connect(&addr, None, &cfg)
        .await
        .expect("connect");
    let started = Instant::now();
    let swallowed_req = metadata_request(&["swallowed"]);
    let swallowed = conn.send(&swallowed_req);
    let behind = async {
        // Sent a little later: its own timeout has not passed when the
        // first one's does.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let r = conn.send(&metadata_request(&["behind"])).await;
        (r, started.elapsed())
    };
    let (first, (second, second_at)) = tokio::join!(swallowed, behind);
    let first = first.expect_err("no reply");
    assert!(matches!(first, Error::Timeout { .. }), "{first:?}");
    let second = second.expect_err("the connection went down");
    assert!(second.is_retriable(), "{second:?}");
    assert!(second.invalidates_metadata(), "{second:?}");
    assert!(second.to_string().contains(&addr), "{second}");
    assert!(
        second_at < Duration::from_millis(400),
        "the second waiter failed with the connection ({second_at:?}), not by its own timeout"
    );
    assert!(conn.is_closed(), "the handle reports the connection closed");
    let later = conn
        .send(&metadata_request(&["later"]))
        .await
        .expect_err("closed");
    assert!(later.is_retriable(), "{later:?}");
    let (c1, c2, closed) = peer.await.expect("peer");
    assert_ne!(c1, c2);
    assert!(
        matches!(closed, Ok(None)),
        "the client closed the socket: {closed:?}"
    );
}
