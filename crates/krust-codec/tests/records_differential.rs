//! Differential tests against the `kafka-protocol` crate (a dev-dependency,
//! uncompressed only: its compression features are not enabled for this
//! crate): it reads what we write, and we read what it writes (RecordBatch
//! v2; it cannot write legacy message sets, which the kafka-python fixtures
//! cover).

use bytes::{Bytes, BytesMut};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records as kp;
use krust_codec::records::{Batch, Batches, NewHeader, NewRecord, RecordBatchBuilder};

fn key(i: i64) -> Option<Bytes> {
    (i % 4 != 3).then(|| Bytes::from(format!("key-{i}")))
}

fn value(i: i64) -> Option<Bytes> {
    (i % 5 != 4).then(|| Bytes::from("v".repeat((i % 37) as usize)))
}

#[test]
fn kafka_protocol_reads_our_batches() {
    for transactional in [false, true] {
        let mut b = RecordBatchBuilder::new()
            .base_offset(500)
            .partition_leader_epoch(4)
            .transactional(transactional)
            .producer(99, 2, 1000);
        let headers = [
            NewHeader {
                key: "a",
                value: Some(b"1"),
            },
            NewHeader {
                key: "b",
                value: None,
            },
        ];
        for i in 0..50i64 {
            let k = key(i);
            let v = value(i);
            b.append(&NewRecord {
                timestamp: 1_700_000_000_000 + i * 7,
                key: k.as_deref(),
                value: v.as_deref(),
                headers: if i % 2 == 0 { &headers } else { &[] },
                ..NewRecord::default()
            })
            .unwrap();
        }
        let mut buf = b.build().unwrap();
        let sets = kp::RecordBatchDecoder::decode_all(&mut buf).unwrap();
        assert_eq!(sets.len(), 1);
        let records = &sets[0].records;
        assert_eq!(records.len(), 50);
        for (i, r) in (0i64..).zip(records) {
            assert_eq!(r.offset, 500 + i);
            assert_eq!(r.timestamp, 1_700_000_000_000 + i * 7);
            assert_eq!(r.key, key(i));
            assert_eq!(r.value, value(i));
            assert_eq!(r.transactional, transactional);
            assert_eq!((r.producer_id, r.producer_epoch), (99, 2));
            assert_eq!(r.sequence, 1000 + i as i32);
            assert_eq!(r.partition_leader_epoch, 4);
            assert_eq!(r.headers.len(), if i % 2 == 0 { 2 } else { 0 });
            if i % 2 == 0 {
                assert_eq!(
                    r.headers[&StrBytes::from_static_str("a")],
                    Some(Bytes::from("1"))
                );
                assert_eq!(r.headers[&StrBytes::from_static_str("b")], None);
            }
        }
    }
}

fn kp_records(version: i8) -> Vec<kp::Record> {
    (0i64..30)
        .map(|i| {
            let mut headers = kafka_protocol::indexmap::IndexMap::new();
            if version == 2 && i % 3 == 0 {
                headers.insert(StrBytes::from_string(format!("h{i}")), value(i));
            }
            kp::Record {
                transactional: false,
                control: false,
                partition_leader_epoch: 0,
                producer_id: 7,
                producer_epoch: 1,
                timestamp_type: kp::TimestampType::Creation,
                offset: 200 + i,
                sequence: 50 + i as i32,
                timestamp: 1_700_000_000_000 + i,
                key: key(i),
                value: value(i),
                headers,
                delete_horizon: false,
            }
        })
        .collect()
}

#[test]
fn we_read_kafka_protocol_batches() {
    for version in [2i8] {
        let records = kp_records(version);
        let mut buf = BytesMut::new();
        kp::RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &kp::RecordEncodeOptions {
                version,
                compression: kp::Compression::None,
            },
        )
        .unwrap();
        let mut got = Vec::new();
        for batch in Batches::new(buf.freeze()) {
            let batch = batch.unwrap();
            assert_eq!(batch.magic(), version);
            if let Batch::V2(b) = &batch {
                assert_eq!(
                    (b.producer_id(), b.producer_epoch(), b.base_sequence()),
                    (7, 1, 50)
                );
            }
            got.extend(batch.records().unwrap().map(Result::unwrap));
        }
        assert_eq!(got.len(), records.len(), "v{version}");
        for (g, r) in got.iter().zip(&records) {
            assert_eq!(g.offset, r.offset, "v{version}");
            let ts = if version == 0 { -1 } else { r.timestamp };
            assert_eq!(g.timestamp, ts, "v{version}");
            assert_eq!(g.data.key_bytes(), r.key, "v{version}");
            assert_eq!(g.data.value_bytes(), r.value, "v{version}");
            let headers: Vec<(String, Option<Bytes>)> = g
                .data
                .headers()
                .iter()
                .map(|h| (h.key.to_owned(), h.value.map(Bytes::copy_from_slice)))
                .collect();
            let expected: Vec<(String, Option<Bytes>)> = r
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            assert_eq!(headers, expected, "v{version}");
        }
    }
}
