//! Response decode: krust's generated messages against `kafka-protocol`'s,
//! from the same bytes, in the same criterion group.
//!
//! * `fetch_v12`: a FetchResponse v12 body, 3 topics × 4 partitions, each
//!   partition carrying a 64 KiB uncompressed RecordBatch (the records
//!   themselves are not decoded here, see `record_batch.rs`).
//! * `metadata_v12`: a MetadataResponse v12 body, 5 brokers, 100 topics × 6
//!   partitions with 3 replicas each.
//!
//! Bodies are encoded once by krust; before timing, both decoders' results
//! are compared on the fields that matter.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kafka_protocol::messages as kpm;
use kafka_protocol::protocol::Decodable;
use krust_codec::generated::fetch_response::{
    FetchResponse, FetchableTopicResponse, PartitionData,
};
use krust_codec::generated::metadata_response::{
    MetadataResponse, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use krust_codec::records::{NewRecord, RecordBatchBuilder};
use krust_codec::{Decode, Encode, Uuid};

const FETCH_VERSION: i16 = 12;
const METADATA_VERSION: i16 = 12;

fn record_batch(base_offset: i64, value: &[u8], bytes: usize) -> Bytes {
    let mut b = RecordBatchBuilder::with_capacity(bytes).base_offset(base_offset);
    let mut ts = 1_700_000_000_000;
    while b.size_in_bytes() + value.len() + 32 < bytes {
        ts += 1;
        b.append(&NewRecord {
            timestamp: ts,
            key: Some(b"user-00000000042"),
            value: Some(value),
            ..NewRecord::default()
        })
        .expect("append");
    }
    b.build().expect("build")
}

fn fetch_body() -> Bytes {
    let value: Vec<u8> = (0..200u8).map(|i| b'a' + i % 26).collect();
    let mut response = FetchResponse::default();
    for t in 0..3 {
        let mut topic = FetchableTopicResponse {
            topic: format!("orders-{t}").into(),
            ..FetchableTopicResponse::default()
        };
        for p in 0..4 {
            let offset = 1_000_000 * i64::from(p + 1);
            topic.partitions.push(PartitionData {
                partition_index: p,
                high_watermark: offset + 10_000,
                last_stable_offset: offset + 10_000,
                log_start_offset: 0,
                aborted_transactions: Some(Vec::new()),
                records: Some(record_batch(offset, &value, 64 * 1024)),
                ..PartitionData::default()
            });
        }
        response.responses.push(topic);
    }
    let mut buf = BytesMut::new();
    response.encode(&mut buf, FETCH_VERSION).expect("encode");
    buf.freeze()
}

fn metadata_body() -> Bytes {
    let mut response = MetadataResponse {
        cluster_id: Some("krust-bench-cluster".into()),
        controller_id: 1,
        ..MetadataResponse::default()
    };
    for b in 0..5 {
        response.brokers.push(MetadataResponseBroker {
            node_id: b,
            host: format!("broker-{b}.kafka.example.internal").into(),
            port: 9092,
            rack: Some(format!("rack-{}", b % 3).into()),
            ..MetadataResponseBroker::default()
        });
    }
    for t in 0..100u8 {
        let mut topic = MetadataResponseTopic {
            name: Some(format!("service-{t}.events.v1").into()),
            topic_id: Uuid([t.wrapping_add(1); 16]),
            ..MetadataResponseTopic::default()
        };
        for p in 0..6 {
            let replicas = vec![p % 5, (p + 1) % 5, (p + 2) % 5];
            topic.partitions.push(MetadataResponsePartition {
                partition_index: p,
                leader_id: p % 5,
                leader_epoch: 7,
                replica_nodes: replicas.clone(),
                isr_nodes: replicas,
                ..MetadataResponsePartition::default()
            });
        }
        response.topics.push(topic);
    }
    let mut buf = BytesMut::new();
    response.encode(&mut buf, METADATA_VERSION).expect("encode");
    buf.freeze()
}

fn check_fetch(body: &Bytes) {
    let ours = FetchResponse::decode(&mut body.clone(), FETCH_VERSION).unwrap();
    let theirs = kpm::FetchResponse::decode(&mut body.clone(), FETCH_VERSION).unwrap();
    assert_eq!(ours.responses.len(), theirs.responses.len());
    for (o, t) in ours.responses.iter().zip(&theirs.responses) {
        assert_eq!(o.topic.as_str(), t.topic.as_str());
        assert_eq!(o.partitions.len(), t.partitions.len());
        for (op, tp) in o.partitions.iter().zip(&t.partitions) {
            assert_eq!(op.partition_index, tp.partition_index);
            assert_eq!(op.high_watermark, tp.high_watermark);
            assert_eq!(op.records, tp.records);
        }
    }
}

fn check_metadata(body: &Bytes) {
    let ours = MetadataResponse::decode(&mut body.clone(), METADATA_VERSION).unwrap();
    let theirs = kpm::MetadataResponse::decode(&mut body.clone(), METADATA_VERSION).unwrap();
    assert_eq!(ours.brokers.len(), theirs.brokers.len());
    assert_eq!(ours.topics.len(), theirs.topics.len());
    for (o, t) in ours.topics.iter().zip(&theirs.topics) {
        assert_eq!(
            o.name.as_ref().map(|n| n.as_str()),
            t.name.as_ref().map(|n| n.as_str())
        );
        assert_eq!(o.topic_id.0, *t.topic_id.as_bytes());
        assert_eq!(o.partitions.len(), t.partitions.len());
        for (op, tp) in o.partitions.iter().zip(&t.partitions) {
            assert_eq!(op.leader_id, *tp.leader_id);
            assert_eq!(op.isr_nodes.len(), tp.isr_nodes.len());
        }
    }
}

fn bench_messages(c: &mut Criterion) {
    let fetch = fetch_body();
    check_fetch(&fetch);
    let mut group = c.benchmark_group("fetch_v12");
    group.throughput(Throughput::Bytes(fetch.len() as u64));
    group.bench_function("krust/decode", |b| {
        b.iter(|| FetchResponse::decode(&mut black_box(&fetch).clone(), FETCH_VERSION).unwrap())
    });
    group.bench_function("kafka-protocol/decode", |b| {
        b.iter(|| {
            kpm::FetchResponse::decode(&mut black_box(&fetch).clone(), FETCH_VERSION).unwrap()
        })
    });
    group.finish();

    let metadata = metadata_body();
    check_metadata(&metadata);
    let mut group = c.benchmark_group("metadata_v12_100x6");
    group.throughput(Throughput::Bytes(metadata.len() as u64));
    group.bench_function("krust/decode", |b| {
        b.iter(|| {
            MetadataResponse::decode(&mut black_box(&metadata).clone(), METADATA_VERSION).unwrap()
        })
    });
    group.bench_function("kafka-protocol/decode", |b| {
        b.iter(|| {
            kpm::MetadataResponse::decode(&mut black_box(&metadata).clone(), METADATA_VERSION)
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_messages);
criterion_main!(benches);
