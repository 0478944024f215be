//! Replies are read the way the Java client and librdkafka read them: the
//! fields their version defines, decoded and checked; bytes after them
//! ignored (the librdkafka 2.12 mock cluster appends one to Metadata v12).
//! A reply shorter than its schema is still an error naming the API.

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use common::*;
use krust_codec::generated::MetadataResponse;
use krust_codec::generated::metadata_response::MetadataResponseTopic;
use krust_codec::{ApiKey, ResponseBody};
use krust_net::{Connection, ConnectionConfig, Error};
use tokio::io::AsyncWriteExt;

/// `frame` (length prefix included) with `extra` appended to its body and
/// the prefix fixed up.
fn with_tail(frame: &Bytes, extra: &[u8]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i32(i32::try_from(frame.len() - 4 + extra.len()).expect("small"));
    out.put_slice(&frame[4..]);
    out.put_slice(extra);
    out.freeze()
}

/// `frame` cut `by` bytes short, prefix fixed up.
fn cut(frame: &Bytes, by: usize) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i32(i32::try_from(frame.len() - 4 - by).expect("small"));
    out.put_slice(&frame[4..frame.len() - by]);
    out.freeze()
}

fn one_topic() -> ResponseBody {
    ResponseBody::Metadata(MetadataResponse {
        topics: vec![MetadataResponseTopic {
            name: Some("t".into()),
            ..Default::default()
        }],
        ..Default::default()
    })
}

/// A peer that answers every Metadata request with `mangle` applied to the
/// correct reply, twice (so the second reply shows the connection stayed
/// in step).
async fn peer_answering(mangle: fn(&Bytes) -> Bytes) -> Connection {
    let (l, addr) = listen().await;
    tokio::spawn(async move {
        let mut s = accept_and_handshake(&l).await;
        while let Some((h, _)) = read_request(&mut s).await {
            let good = response_frame(h.request_api_version, h.correlation_id, &one_topic());
            if s.write_all(&mangle(&good)).await.is_err() {
                return;
            }
        }
    });
    Connection::connect(&addr, None, &ConnectionConfig::default())
        .await
        .expect("connect")
}

#[tokio::test]
async fn bytes_after_the_schema_are_ignored() {
    for tail in [&[0u8][..], &[1, 2, 3, 4, 5, 6, 7]] {
        let (l, addr) = listen().await;
        let tail = tail.to_vec();
        tokio::spawn(async move {
            let mut s = accept_and_handshake(&l).await;
            while let Some((h, _)) = read_request(&mut s).await {
                let good = response_frame(h.request_api_version, h.correlation_id, &one_topic());
                if s.write_all(&with_tail(&good, &tail)).await.is_err() {
                    return;
                }
            }
        });
        let conn = Connection::connect(&addr, None, &ConnectionConfig::default())
            .await
            .expect("connect");
        for _ in 0..2 {
            let md = conn
                .send(&metadata_request(&["t"]))
                .await
                .expect("a longer reply is read");
            assert_eq!(md.topics.len(), 1);
            assert_eq!(md.topics[0].name.as_deref(), Some("t"));
        }
    }
}

#[tokio::test]
async fn a_reply_shorter_than_its_schema_is_an_error_naming_the_api() {
    let conn = peer_answering(|good| cut(good, 1)).await;
    let err = conn
        .send(&metadata_request(&["t"]))
        .await
        .expect_err("a cut reply cannot be decoded");
    assert!(
        matches!(
            err,
            Error::Decode {
                api: ApiKey::Metadata,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains(conn.addr()), "{err}");
}
