//! The driver against a scripted broker that keeps KIP-227 sessions (none
//! of the local brokers does: Tansu, noida-db and the librdkafka mock all
//! answer session id 0). The fake speaks Fetch v17 with topic ids, keeps
//! one session per full request, answers incremental requests with the
//! partitions that have data, and fails one request on demand.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use bytes::{BufMut, Bytes, BytesMut};
use krust_codec::generated::api_versions_response::ApiVersion;
use krust_codec::generated::fetch_response::{FetchableTopicResponse, PartitionData};
use krust_codec::generated::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use krust_codec::generated::{ApiVersionsResponse, FetchRequest, FetchResponse, MetadataResponse};
use krust_codec::records::{NewRecord, RecordBatchBuilder};
use krust_codec::{ErrorCode, KString, RequestBody, ResponseBody, Uuid, header};
use krust_net::{Error, Pool, PoolConfig};

use super::super::{FetchConfig, FetchSession, FetchTarget, fetch};
use super::target;
use crate::metrics::FetchLatency;

const TOPIC: &str = "t";
const ID: Uuid = Uuid([7; 16]);
const END: i64 = 5;
const SESSION: i32 = 42;

#[derive(Default)]
struct State {
    /// The session: id, the epoch expected next, fetch offset per partition.
    session: Option<(i32, i32, BTreeMap<i32, i64>)>,
    requests: Vec<FetchRequest>,
    fail_next: Option<ErrorCode>,
}

type Shared = Arc<Mutex<State>>;

fn start() -> (String, Shared) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    let state = Shared::default();
    let (st, port) = (state.clone(), l.local_addr().expect("addr").port());
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let st = st.clone();
            std::thread::spawn(move || serve(s, &st, port));
        }
    });
    (addr, state)
}

fn serve(mut s: TcpStream, st: &Shared, port: u16) {
    loop {
        let mut len = [0u8; 4];
        if s.read_exact(&mut len).is_err() {
            return;
        }
        let mut body = vec![0u8; usize::try_from(i32::from_be_bytes(len)).expect("len")];
        if s.read_exact(&mut body).is_err() {
            return;
        }
        let (h, req) = header::decode_request(Bytes::from(body)).expect("valid request");
        let resp = match req {
            RequestBody::ApiVersions(_) => ResponseBody::ApiVersions(api_versions()),
            RequestBody::Metadata(_) => ResponseBody::Metadata(metadata(port)),
            RequestBody::Fetch(f) => ResponseBody::Fetch(answer(st, f)),
            other => panic!("unexpected {other:?}"),
        };
        let mut inner = BytesMut::new();
        header::encode_response(&mut inner, h.request_api_version, h.correlation_id, &resp)
            .expect("encode");
        let mut frame = BytesMut::new();
        frame.put_i32(i32::try_from(inner.len()).expect("small"));
        frame.put_slice(&inner);
        if s.write_all(&frame).is_err() {
            return;
        }
    }
}

fn api_versions() -> ApiVersionsResponse {
    let api = |api_key, min_version, max_version| ApiVersion {
        api_key,
        min_version,
        max_version,
        ..ApiVersion::default()
    };
    ApiVersionsResponse {
        api_keys: vec![api(18, 0, 3), api(3, 0, 12), api(1, 4, 17)],
        ..ApiVersionsResponse::default()
    }
}

fn metadata(port: u16) -> MetadataResponse {
    MetadataResponse {
        brokers: vec![MetadataResponseBroker {
            node_id: 1,
            host: KString::from("127.0.0.1"),
            port: i32::from(port),
            ..MetadataResponseBroker::default()
        }],
        topics: vec![MetadataResponseTopic {
            name: Some(KString::from(TOPIC)),
            topic_id: ID,
            partitions: (0..3)
                .map(|p| MetadataResponsePartition {
                    partition_index: p,
                    leader_id: 1,
                    leader_epoch: 0,
                    ..MetadataResponsePartition::default()
                })
                .collect(),
            ..MetadataResponseTopic::default()
        }],
        ..MetadataResponse::default()
    }
}

/// Up to two records from `offset`, values `p{partition}-{offset}`.
fn records(partition: i32, offset: i64) -> Bytes {
    let mut b = RecordBatchBuilder::new().base_offset(offset);
    for o in offset..(offset + 2).min(END) {
        let v = format!("p{partition}-{o}");
        b.append(&NewRecord {
            value: Some(v.as_bytes()),
            ..NewRecord::default()
        })
        .expect("append");
    }
    b.build().expect("build")
}

/// A small KIP-227 broker.
fn answer(st: &Shared, req: FetchRequest) -> FetchResponse {
    let mut st = st.lock().unwrap_or_else(|p| p.into_inner());
    st.requests.push(req.clone());
    if let Some(code) = st.fail_next.take() {
        st.session = None;
        return FetchResponse {
            error_code: code.code(),
            ..FetchResponse::default()
        };
    }
    let full = req.session_epoch == 0;
    if full {
        st.session = Some((SESSION, 0, BTreeMap::new()));
    }
    let Some((id, expected, parts)) = st.session.as_mut() else {
        panic!("incremental request without a session: {req:?}");
    };
    if !full {
        assert_eq!((req.session_id, req.session_epoch), (*id, *expected));
    }
    *expected = if *expected == i32::MAX {
        1
    } else {
        *expected + 1
    };
    for t in &req.topics {
        assert_eq!(t.topic_id, ID);
        for p in &t.partitions {
            parts.insert(p.partition, p.fetch_offset);
        }
    }
    for t in &req.forgotten_topics_data {
        for p in &t.partitions {
            parts.remove(p);
        }
    }
    let partitions = parts
        .iter()
        .filter(|(_, o)| full || **o < END)
        .map(|(p, o)| PartitionData {
            partition_index: *p,
            high_watermark: END,
            records: Some(if *o < END {
                records(*p, *o)
            } else {
                Bytes::new()
            }),
            ..PartitionData::default()
        })
        .collect();
    FetchResponse {
        session_id: SESSION,
        responses: vec![FetchableTopicResponse {
            topic_id: ID,
            partitions,
            ..FetchableTopicResponse::default()
        }],
        ..FetchResponse::default()
    }
}

fn last(st: &Shared) -> FetchRequest {
    let st = st.lock().unwrap_or_else(|p| p.into_inner());
    st.requests.last().cloned().expect("a request")
}

fn fail_next(st: &Shared, code: ErrorCode) {
    st.lock().unwrap_or_else(|p| p.into_inner()).fail_next = Some(code);
}

/// Partitions sent in a request, and partitions forgotten.
fn shape(req: &FetchRequest) -> (Vec<i32>, Vec<i32>) {
    let sent = req
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.partition));
    let forgotten = req
        .forgotten_topics_data
        .iter()
        .flat_map(|t| t.partitions.clone());
    (sent.collect(), forgotten.collect())
}

/// The consumer side: one session, positions, what was read.
struct Reader {
    pool: Pool,
    cfg: FetchConfig,
    session: FetchSession,
    pos: BTreeMap<i32, i64>,
    got: BTreeMap<i32, Vec<(i64, String)>>,
}

impl Reader {
    /// One fetch of `parts` at their positions; how many partitions came back.
    async fn round(&mut self, parts: &[i32]) -> Result<usize, Error> {
        let ts: Vec<FetchTarget> = parts
            .iter()
            .map(|p| target(TOPIC, *p, self.pos[p]))
            .collect();
        let fetched = fetch(
            &self.pool,
            &mut self.session,
            &ts,
            &self.cfg,
            &FetchLatency::none(),
        )
        .await?;
        let n = fetched.len();
        for f in fetched {
            let d = f.outcome.expect("data");
            for r in &d.records {
                let v = String::from_utf8_lossy(r.value().unwrap_or_default());
                self.got
                    .entry(r.partition)
                    .or_default()
                    .push((r.offset, v.into_owned()));
            }
            self.pos.insert(f.tp.partition, d.next_offset);
        }
        Ok(n)
    }
}

#[tokio::test]
async fn incremental_sessions_through_the_driver() {
    let (addr, st) = start();
    let pool = Pool::bootstrap(PoolConfig {
        bootstrap: vec![addr.clone()],
        ..PoolConfig::default()
    })
    .await
    .expect("pool");
    pool.refresh_metadata(&[TOPIC]).await.expect("metadata");
    let mut r = Reader {
        pool,
        cfg: FetchConfig::default(),
        session: FetchSession::new(1),
        pos: (0..3).map(|p| (p, 0)).collect(),
        got: BTreeMap::new(),
    };

    // 1: full, by topic id.
    assert_eq!(r.round(&[0, 1, 2]).await.expect("1"), 3);
    let req = last(&st);
    assert_eq!((req.session_id, req.session_epoch), (0, 0));
    assert_eq!(shape(&req), (vec![0, 1, 2], vec![]));
    assert_eq!(req.topics[0].topic_id, ID);
    assert_eq!((r.session.session_id(), r.session.epoch()), (SESSION, 1));
    // 2: incremental; every position moved, so every partition is sent.
    assert_eq!(r.round(&[0, 1, 2]).await.expect("2"), 3);
    let req = last(&st);
    assert_eq!((req.session_id, req.session_epoch), (SESSION, 1));
    assert_eq!(shape(&req), (vec![0, 1, 2], vec![]));
    // 3: partition 2 is no longer wanted: forgotten, by topic id.
    assert_eq!(r.round(&[0, 1]).await.expect("3"), 2);
    let req = last(&st);
    assert_eq!(req.session_epoch, 2);
    assert_eq!(shape(&req), (vec![0, 1], vec![2]));
    assert_eq!(req.forgotten_topics_data[0].topic_id, ID);
    // 4: the positions moved to the end: sent, nothing new, so the
    // incremental answer leaves the partitions out.
    assert_eq!(r.round(&[0, 1]).await.expect("4"), 0);
    assert_eq!(shape(&last(&st)), (vec![0, 1], vec![]));
    // 4b: nothing changed: an empty request.
    assert_eq!(r.round(&[0, 1]).await.expect("4b"), 0);
    assert_eq!(shape(&last(&st)), (vec![], vec![]));
    assert_eq!(last(&st).session_epoch, 4);
    // 5: the broker lost track of the epoch: no partitions, not an error,
    // and the next request is full again.
    fail_next(&st, ErrorCode::INVALID_FETCH_SESSION_EPOCH);
    assert_eq!(r.round(&[0, 1]).await.expect("5"), 0);
    assert!(r.session.next_is_full());
    assert_eq!(r.round(&[0, 1, 2]).await.expect("6"), 3);
    let req = last(&st);
    assert_eq!((req.session_id, req.session_epoch), (0, 0));
    assert_eq!(shape(&req), (vec![0, 1, 2], vec![]));
    // 7: another top-level error is an error naming the broker.
    fail_next(&st, ErrorCode::UNKNOWN_SERVER_ERROR);
    let e = r.round(&[0, 1, 2]).await.expect_err("7");
    assert!(
        matches!(&e, Error::Broker { code: ErrorCode::UNKNOWN_SERVER_ERROR, broker: Some(b), .. } if *b == addr),
        "{e:?}"
    );
    assert!(r.session.next_is_full());
    r.round(&[0, 1, 2]).await.expect("8");
    assert_eq!(last(&st).session_epoch, 0);

    for p in 0..3 {
        let expected: Vec<(i64, String)> = (0..END).map(|o| (o, format!("p{p}-{o}"))).collect();
        assert_eq!(r.got.get(&p), Some(&expected), "partition {p}");
    }
}
