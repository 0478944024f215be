//! A fake Kafka peer for tests: a TcpListener on 127.0.0.1 whose behaviour
//! each test scripts, reading requests and writing replies built with the
//! codec.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use bytes::{BufMut, Bytes, BytesMut};
use krust_codec::generated::ListOffsetsRequest;
use krust_codec::generated::api_versions_response::ApiVersion;
use krust_codec::generated::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use krust_codec::generated::{ApiVersionsResponse, MetadataResponse};
use krust_codec::{ApiKey, ErrorCode, Message};
use krust_codec::{RequestBody, RequestHeader, ResponseBody, header};
use krust_net::{Error, Pool, RetryPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A listener and its `host:port`.
pub async fn listen() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("local addr").to_string();
    (l, addr)
}

/// Read one request frame; `None` when the client closed the connection.
pub async fn read_request(s: &mut TcpStream) -> Option<(RequestHeader, RequestBody)> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.ok()?;
    let len = usize::try_from(i32::from_be_bytes(len)).expect("non-negative frame");
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.ok()?;
    Some(header::decode_request(Bytes::from(body)).expect("client sent a valid request"))
}

/// A whole reply frame to a request of `version` with `correlation_id`.
pub fn response_frame(version: i16, correlation_id: i32, body: &ResponseBody) -> Bytes {
    let mut inner = BytesMut::new();
    header::encode_response(&mut inner, version, correlation_id, body).expect("encode");
    let mut out = BytesMut::new();
    out.put_i32(i32::try_from(inner.len()).expect("small frame"));
    out.put_slice(&inner);
    out.freeze()
}

/// Write a reply to the request with header `h`.
pub async fn reply(s: &mut TcpStream, h: &RequestHeader, body: ResponseBody) {
    let f = response_frame(h.request_api_version, h.correlation_id, &body);
    s.write_all(&f).await.expect("write reply");
}

/// The ApiVersions table the fake peer announces.
pub fn api_versions_body() -> ApiVersionsResponse {
    let api = |api_key, min_version, max_version| ApiVersion {
        api_key,
        min_version,
        max_version,
        ..Default::default()
    };
    ApiVersionsResponse {
        api_keys: vec![api(18, 0, 3), api(3, 0, 12), api(10, 0, 4), api(0, 3, 9)],
        ..Default::default()
    }
}

/// Accept one connection and answer its ApiVersions request like a broker.
pub async fn accept_and_handshake(l: &TcpListener) -> TcpStream {
    let (mut s, _) = l.accept().await.expect("accept");
    let (h, body) = read_request(&mut s).await.expect("ApiVersions request");
    assert!(matches!(body, RequestBody::ApiVersions(_)), "{body:?}");
    reply(&mut s, &h, ResponseBody::ApiVersions(api_versions_body())).await;
    s
}

/// Answer a Metadata request with one topic per requested name, echoed.
pub fn metadata_echo(body: &RequestBody) -> ResponseBody {
    let RequestBody::Metadata(m) = body else {
        panic!("expected Metadata, got {body:?}");
    };
    let topics = m
        .topics
        .iter()
        .flatten()
        .map(
            |t| krust_codec::generated::metadata_response::MetadataResponseTopic {
                name: t.name.clone(),
                ..Default::default()
            },
        )
        .collect();
    ResponseBody::Metadata(MetadataResponse {
        topics,
        ..Default::default()
    })
}

/// A Metadata request for the named topics.
pub fn metadata_request(names: &[&str]) -> krust_codec::generated::MetadataRequest {
    krust_codec::generated::MetadataRequest {
        topics: Some(
            names
                .iter()
                .map(
                    |n| krust_codec::generated::metadata_request::MetadataRequestTopic {
                        name: Some((*n).into()),
                        ..Default::default()
                    },
                )
                .collect(),
        ),
        ..Default::default()
    }
}

/// ListOffsets(latest) for one partition through the pool (at most
/// `max_version`), retried within `policy`'s deadline: a retriable error
/// is told to the pool (`note_error`: a stale leader or a lost connection
/// refreshes the metadata), as a client does. Returns the broker that answered, the offset, and
/// how many attempts it took.
pub async fn list_offsets(
    pool: &Pool,
    policy: &RetryPolicy,
    topic: &str,
    partition: i32,
    max_version: i16,
) -> Result<(i32, i64, u32), Error> {
    let attempts = AtomicU32::new(0);
    let (broker, offset) = policy
        .run(
            ApiKey::ListOffsets,
            |_| async {
                attempts.fetch_add(1, Ordering::Relaxed);
                let (conn, epoch) = pool.leader_connection(topic, partition).await?;
                let ours = (
                    ListOffsetsRequest::VALID_VERSIONS.0,
                    max_version.min(ListOffsetsRequest::VALID_VERSIONS.1),
                );
                let version = conn.negotiate(ApiKey::ListOffsets, ours)?;
                let req = ListOffsetsRequest {
                    replica_id: -1,
                    topics: vec![ListOffsetsTopic {
                        name: topic.into(),
                        partitions: vec![ListOffsetsPartition {
                            partition_index: partition,
                            current_leader_epoch: epoch,
                            timestamp: -1,
                            max_num_offsets: 1,
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                };
                let resp = conn.send_at(&req, version).await?;
                let p = resp
                    .topics
                    .iter()
                    .filter(|t| t.name.as_str() == topic)
                    .flat_map(|t| t.partitions.iter())
                    .find(|p| p.partition_index == partition)
                    .expect("the reply names the partition asked for");
                let code = ErrorCode::from(p.error_code);
                if !code.is_ok() {
                    return Err(Error::Broker {
                        api: ApiKey::ListOffsets,
                        broker: Some(conn.addr().to_owned()),
                        code,
                        topic: Some(topic.to_owned()),
                        partition: Some(partition),
                        message: None,
                    });
                }
                let offset = if version == 0 {
                    p.old_style_offsets.first().copied().unwrap_or(-1)
                } else {
                    p.offset
                };
                Ok((
                    conn.broker_id().expect("a pool connection knows its id"),
                    offset,
                ))
            },
            |e| {
                pool.note_error(e);
            },
        )
        .await?;
    Ok((broker, offset, attempts.load(Ordering::Relaxed)))
}
