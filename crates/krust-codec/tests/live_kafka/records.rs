//! Produce, Fetch and ListOffsets at every version: each Produce version
//! appends three records (compressed in turn with none, gzip, snappy and
//! lz4), then a Fetch at every version reads all of them back from offset 0
//! (on 3.9.2, v0-v3 down-converted by the broker to the legacy message
//! formats 0 and 1), and a ListOffsets at every version finds the earliest,
//! latest, by-timestamp and max-timestamp offsets.

use krust_codec::generated::fetch_request::{FetchPartition, FetchTopic};
use krust_codec::generated::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use krust_codec::generated::metadata_request::MetadataRequestTopic;
use krust_codec::generated::produce_request::{PartitionProduceData, TopicProduceData};
use krust_codec::generated::{
    FetchRequest, ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, ProduceRequest,
};
use krust_codec::records::{Batches, Compression, NewHeader, NewRecord, RecordBatchBuilder};
use krust_codec::{ApiKey, Uuid};
use krust_testkit::{Broker, Kafka, KafkaVersion, unique};

use crate::wire::{Wire, ks, now_ms, rejected_below};

const PER_PRODUCE: usize = 3;
const MAX_BYTES: i32 = 8 << 20;
const EARLIEST: i64 = -2;
const LATEST: i64 = -1;
const MAX_TIMESTAMP: i64 = -3;
const READ_COMMITTED: i8 = 1;

/// One record as produced, to compare with what comes back.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sent {
    offset: i64,
    timestamp: i64,
    key: Vec<u8>,
    value: Vec<u8>,
    /// The one header: the Produce version.
    header: Vec<u8>,
}

pub fn produce_fetch_list(version: KafkaVersion) {
    let kafka = Kafka::shared_version(version);
    let topic = unique("live-records");
    kafka
        .create_topic(&topic, 1)
        .unwrap_or_else(|e| panic!("{}: create {topic}: {e}", kafka.name()));
    let mut wire = Wire::open(version);
    let topic_id = topic_id(&mut wire, &topic);

    let base_ts = now_ms() - 60_000;
    let mut sent: Vec<Sent> = Vec::new();
    // Advertised but refused (see `rejected_below`): nothing is appended.
    for v in 0..rejected_below(version, ApiKey::Produce) {
        let request = produce_request(v, &topic, topic_id, batch_of(v, 0, base_ts).1);
        wire.refused(v, &request);
    }
    for v in wire.versions::<ProduceRequest>() {
        produce_at(&mut wire, v, &topic, topic_id, base_ts, &mut sent);
    }
    let total = i64::try_from(sent.len()).expect("small");
    for v in wire.versions::<FetchRequest>() {
        fetch_at(&mut wire, v, &topic, topic_id, &sent);
    }
    for v in wire.versions::<ListOffsetsRequest>() {
        let what = format!("{}: ListOffsets v{v}", wire.name);
        let earliest = list_at(&mut wire, v, &topic, EARLIEST, 0);
        let latest = list_at(&mut wire, v, &topic, LATEST, 0);
        if v == 0 {
            assert_eq!(earliest.0, vec![0], "{what}: earliest");
            assert_eq!(latest.0, vec![total], "{what}: latest");
            continue;
        }
        assert_eq!((earliest.1, earliest.2), (-1, 0), "{what}: earliest");
        assert_eq!((latest.1, latest.2), (-1, total), "{what}: latest");
        if v >= 4 {
            assert!(earliest.3 >= 0 && latest.3 >= 0, "{what}: leader epochs");
        }
        // The first record at or after a timestamp between two records.
        let j = sent.len() / 2;
        let by_time = list_at(&mut wire, v, &topic, sent[j].timestamp - 1, 0);
        assert_eq!(
            (by_time.1, by_time.2),
            (sent[j].timestamp, sent[j].offset),
            "{what}: by timestamp"
        );
        if v >= 2 {
            // No transactions: the last stable offset is the log end.
            let stable = list_at(&mut wire, v, &topic, LATEST, READ_COMMITTED);
            assert_eq!(stable.2, total, "{what}: read_committed latest");
        }
        if v >= 7 {
            let last = sent.last().expect("records");
            let max = list_at(&mut wire, v, &topic, MAX_TIMESTAMP, 0);
            assert_eq!(
                (max.1, max.2),
                (last.timestamp, last.offset),
                "{what}: max timestamp"
            );
        }
    }
}

/// The topic's id, from Metadata at the highest version.
pub fn topic_id(wire: &mut Wire, topic: &str) -> Uuid {
    let v = wire.highest::<MetadataRequest>();
    let m = wire.send(
        v,
        &MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                name: Some(ks(topic)),
                ..Default::default()
            }]),
            allow_auto_topic_creation: false,
            ..Default::default()
        },
    );
    assert_eq!(m.topics[0].error_code, 0, "{}: {m:?}", wire.name);
    if v >= 10 {
        assert_ne!(m.topics[0].topic_id, Uuid::ZERO, "{}: {m:?}", wire.name);
    }
    m.topics[0].topic_id
}

/// The batch Produce `v` sends: three records from offset `first`, with
/// the compression for `v`.
fn batch_of(v: i16, first: i64, base_ts: i64) -> (Vec<Sent>, bytes::Bytes) {
    let compression = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
    ][usize::try_from(v).expect("v >= 0") % 4];
    let header = v.to_string().into_bytes();
    let mut batch = RecordBatchBuilder::new().compression(compression);
    let mut these = Vec::new();
    for i in 0..PER_PRODUCE {
        let offset = first + i64::try_from(i).expect("small");
        let record = Sent {
            offset,
            timestamp: base_ts + offset * 10,
            key: format!("k-v{v}-{i}").into_bytes(),
            value: format!("produced at v{v} ({compression:?}), record {i}").into_bytes(),
            header: header.clone(),
        };
        batch
            .append(&NewRecord {
                timestamp: record.timestamp,
                key: Some(&record.key),
                value: Some(&record.value),
                headers: &[NewHeader {
                    key: "produce-version",
                    value: Some(&record.header),
                }],
                ..NewRecord::default()
            })
            .expect("append");
        these.push(record);
    }
    (these, batch.build().expect("batch"))
}

/// Produce to partition 0 of the topic, named by its id from v13 (KIP-516),
/// by its name before.
fn produce_request(v: i16, topic: &str, topic_id: Uuid, records: bytes::Bytes) -> ProduceRequest {
    let by_id = v >= 13;
    ProduceRequest {
        transactional_id: None,
        acks: -1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: ks(if by_id { "" } else { topic }),
            topic_id: if by_id { topic_id } else { Uuid::ZERO },
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(records),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn produce_at(
    wire: &mut Wire,
    v: i16,
    topic: &str,
    topic_id: Uuid,
    base_ts: i64,
    sent: &mut Vec<Sent>,
) {
    let what = format!("{}: Produce v{v}", wire.name);
    let first = i64::try_from(sent.len()).expect("small");
    let (these, records) = batch_of(v, first, base_ts);
    let request = produce_request(v, topic, topic_id, records);
    let response = wire.send(v, &request);
    assert_eq!(response.responses.len(), 1, "{what}: {response:?}");
    let t = &response.responses[0];
    if v >= 13 {
        assert_eq!((t.name.as_str(), t.topic_id), ("", topic_id), "{what}");
    } else {
        assert_eq!(t.name, topic, "{what}");
    }
    assert_eq!(t.partition_responses.len(), 1, "{what}: {t:?}");
    let p = &t.partition_responses[0];
    assert_eq!((p.index, p.error_code), (0, 0), "{what}: {p:?}");
    assert_eq!(p.base_offset, first, "{what}: appended after the others");
    if v >= 2 {
        assert_eq!(p.log_append_time_ms, -1, "{what}: CreateTime topic");
    }
    if v >= 5 {
        assert_eq!(p.log_start_offset, 0, "{what}");
    }
    if v >= 8 {
        assert!(p.record_errors.is_empty(), "{what}: {p:?}");
        assert_eq!(p.error_message, None, "{what}");
    }
    sent.extend(these);
}

/// The message format the broker answers a Fetch of `v` in: it
/// down-converts for v0-v1 (magic 0) and v2-v3 (magic 1), KIP-896 removed
/// those versions from 4.x.
fn magic_for(v: i16) -> i8 {
    match v {
        0 | 1 => 0,
        2 | 3 => 1,
        _ => 2,
    }
}

fn fetch_at(wire: &mut Wire, v: i16, topic: &str, topic_id: Uuid, sent: &[Sent]) {
    let what = format!("{}: Fetch v{v}", wire.name);
    let total = i64::try_from(sent.len()).expect("small");
    let request = FetchRequest {
        replica_id: -1,
        max_wait_ms: 0,
        min_bytes: 1,
        max_bytes: MAX_BYTES,
        isolation_level: 0,
        // A full fetch without a session (FetchMetadata.INITIAL with no id).
        session_id: 0,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: ks(topic),
            topic_id,
            partitions: vec![FetchPartition {
                partition: 0,
                current_leader_epoch: -1,
                fetch_offset: 0,
                last_fetched_epoch: -1,
                log_start_offset: -1,
                partition_max_bytes: MAX_BYTES,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let response = wire.send(v, &request);
    if v >= 7 {
        assert_eq!(response.error_code, 0, "{what}");
        assert_eq!(response.session_id, 0, "{what}: no session asked for");
    }
    assert_eq!(response.responses.len(), 1, "{what}: {response:?}");
    let t = &response.responses[0];
    if v >= 13 {
        assert_eq!(t.topic_id, topic_id, "{what}");
    } else {
        assert_eq!(t.topic, topic, "{what}");
    }
    assert_eq!(t.partitions.len(), 1, "{what}: {t:?}");
    let p = &t.partitions[0];
    assert_eq!((p.partition_index, p.error_code), (0, 0), "{what}: {p:?}");
    assert_eq!(p.high_watermark, total, "{what}");
    if v >= 4 {
        assert_eq!(p.last_stable_offset, total, "{what}");
        assert!(
            p.aborted_transactions.as_ref().is_none_or(Vec::is_empty),
            "{what}: {p:?}"
        );
    }
    if v >= 5 {
        assert_eq!(p.log_start_offset, 0, "{what}");
    }
    if v >= 11 {
        assert_eq!(p.preferred_read_replica, -1, "{what}");
    }
    let records = p.records.clone().expect("records");
    let mut got = Vec::new();
    let mut batches = Batches::new(records);
    for batch in batches.by_ref() {
        let batch = batch.unwrap_or_else(|e| panic!("{what}: batch: {e}"));
        batch
            .verify_crc()
            .unwrap_or_else(|e| panic!("{what}: crc: {e}"));
        assert_eq!(batch.magic(), magic_for(v), "{what}: message format");
        for record in batch.records().unwrap_or_else(|e| panic!("{what}: {e}")) {
            let r = record.unwrap_or_else(|e| panic!("{what}: record: {e}"));
            got.push((r, batch.compression()));
        }
    }
    // Down-converting, Kafka has promised the partition's size in the
    // response before converting; when the legacy messages come out
    // smaller it fills the rest with one message header at offset -1 whose
    // size runs past the end (LazyDownConversionRecordsSend), which a
    // client reads as a trailing partial message. Nothing else may be cut.
    let filler = batches.remaining().len() >= 12
        && batches.remaining()[..8] == [0xff; 8]
        && u32::from_be_bytes(batches.remaining()[8..12].try_into().expect("4 bytes")) as usize
            > batches.remaining().len() - 12;
    assert!(
        !batches.is_truncated() || (magic_for(v) < 2 && filler),
        "{what}: {MAX_BYTES} bytes were room for all, yet after {} records the rest ({} bytes) \
         is taken for a truncated batch: {:02x?}",
        got.len(),
        batches.remaining().len(),
        &batches.remaining()[..batches.remaining().len().min(96)]
    );
    assert_eq!(got.len(), sent.len(), "{what}: every record back");
    for ((r, compression), s) in got.iter().zip(sent) {
        let at = format!("{what}: offset {}", s.offset);
        assert_eq!(r.offset, s.offset, "{at}");
        assert_eq!(r.data.key(), Some(&s.key[..]), "{at}");
        assert_eq!(r.data.value(), Some(&s.value[..]), "{at}");
        // The value names the compression it was produced with; the broker
        // keeps it, down-converting too.
        let named = format!("({compression:?})");
        assert!(
            String::from_utf8_lossy(&s.value).contains(&named),
            "{at}: came back {compression:?}"
        );
        match magic_for(v) {
            // Magic 0 has no timestamps, neither 0 nor 1 headers.
            0 => assert_eq!((r.timestamp, r.data.headers().len()), (-1, 0), "{at}"),
            1 => assert_eq!(
                (r.timestamp, r.data.headers().len()),
                (s.timestamp, 0),
                "{at}"
            ),
            _ => {
                assert_eq!(r.timestamp, s.timestamp, "{at}");
                let h: Vec<_> = r.data.headers().iter().collect();
                assert_eq!(h.len(), 1, "{at}: {h:?}");
                assert_eq!(h[0].key, "produce-version", "{at}");
                assert_eq!(h[0].value, Some(&s.header[..]), "{at}");
            }
        }
    }
}

/// One ListOffsets for partition 0 at `timestamp`: (old-style offsets,
/// timestamp, offset, leader epoch).
fn list_at(
    wire: &mut Wire,
    v: i16,
    topic: &str,
    timestamp: i64,
    isolation_level: i8,
) -> (Vec<i64>, i64, i64, i32) {
    let what = format!("{}: ListOffsets v{v} at {timestamp}", wire.name);
    let request = ListOffsetsRequest {
        replica_id: -1,
        isolation_level,
        topics: vec![ListOffsetsTopic {
            name: ks(topic),
            partitions: vec![ListOffsetsPartition {
                partition_index: 0,
                current_leader_epoch: -1,
                timestamp,
                max_num_offsets: 1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        timeout_ms: 30_000,
        ..Default::default()
    };
    let response: ListOffsetsResponse = wire.send(v, &request);
    assert_eq!(response.topics.len(), 1, "{what}: {response:?}");
    let t = &response.topics[0];
    assert_eq!(t.name, topic, "{what}");
    assert_eq!(t.partitions.len(), 1, "{what}: {t:?}");
    let p = &t.partitions[0];
    assert_eq!((p.partition_index, p.error_code), (0, 0), "{what}: {p:?}");
    (
        p.old_style_offsets.clone(),
        p.timestamp,
        p.offset,
        p.leader_epoch,
    )
}
