//! Decoding a partition: read_committed over interleaved transactions,
//! records below the fetch offset, truncation, corruption, control batches
//! and legacy message sets.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use krust_codec::ErrorCode;
use krust_codec::generated::fetch_response::{AbortedTransaction, PartitionData};
use krust_codec::records::{Batches, ControlMarker, NewRecord, RecordBatchBuilder, TimestampType};

use super::super::decode_partition;
use super::super::{FetchConfig, FetchedData, IsolationLevel, PartitionFetchError};

/// A data batch at `base` with one record per value; `pid` >= 0 makes it
/// transactional.
fn batch(base: i64, pid: i64, values: &[&str]) -> Bytes {
    let mut b = RecordBatchBuilder::new()
        .base_offset(base)
        .partition_leader_epoch(5);
    if pid >= 0 {
        b = b.transactional(true).producer(pid, 0, 0);
    }
    for v in values {
        b.append(&NewRecord {
            timestamp: 1_000 + base,
            key: Some(b"k"),
            value: Some(v.as_bytes()),
            ..NewRecord::default()
        })
        .expect("append");
    }
    b.build().expect("build")
}

/// A control batch (transaction marker) at `offset`, as brokers write it:
/// one control record whose key is `version: i16, type: i16`.
fn marker(offset: i64, pid: i64, m: ControlMarker) -> Bytes {
    let mut b = RecordBatchBuilder::new()
        .base_offset(offset)
        .transactional(true)
        .control(true)
        .producer(pid, 0, -1);
    let key = m.key_bytes();
    let value = m.value_bytes();
    b.append(&NewRecord {
        key: Some(&key),
        value: value.as_ref().map(|v| &v[..]),
        ..NewRecord::default()
    })
    .expect("append");
    b.build().expect("build")
}

const COMMIT: ControlMarker = ControlMarker::Commit {
    coordinator_epoch: 0,
};
const ABORT: ControlMarker = ControlMarker::Abort {
    coordinator_epoch: 0,
};

fn concat(parts: &[Bytes]) -> Bytes {
    let mut out = BytesMut::new();
    for p in parts {
        out.put_slice(p);
    }
    out.freeze()
}

fn decode(
    records: Bytes,
    fetch_offset: i64,
    isolation: IsolationLevel,
    aborted: Option<Vec<AbortedTransaction>>,
) -> Result<FetchedData, PartitionFetchError> {
    let cfg = FetchConfig {
        isolation,
        ..FetchConfig::default()
    };
    let p = PartitionData {
        partition_index: 2,
        high_watermark: 100,
        last_stable_offset: 90,
        log_start_offset: 0,
        aborted_transactions: aborted,
        records: Some(records),
        ..PartitionData::default()
    };
    decode_partition(&Arc::from("t"), fetch_offset, p, &cfg)
}

fn values(d: &FetchedData) -> Vec<(i64, String)> {
    d.records
        .iter()
        .map(|r| {
            let v = r.value().unwrap_or_default();
            (r.offset, String::from_utf8_lossy(v).into_owned())
        })
        .collect()
}

/// Producer 1 aborts its transaction (offsets 1, 2 and 5), producer 2
/// commits its own (3, 4, 7) in between; producer 1 then commits a second
/// one (9).
fn interleaved() -> (Bytes, Vec<AbortedTransaction>) {
    let data = concat(&[
        batch(0, -1, &["plain"]),
        batch(1, 1, &["p1-a", "p1-b"]),
        batch(3, 2, &["p2-a", "p2-b"]),
        batch(5, 1, &["p1-c"]),
        marker(6, 1, ABORT),
        batch(7, 2, &["p2-c"]),
        marker(8, 2, COMMIT),
        batch(9, 1, &["p1-d"]),
        marker(10, 1, COMMIT),
    ]);
    let aborted = vec![AbortedTransaction {
        producer_id: 1,
        first_offset: 1,
        ..AbortedTransaction::default()
    }];
    (data, aborted)
}

#[test]
fn read_committed_hides_the_aborted_transaction() {
    let (data, aborted) = interleaved();
    let d = decode(
        data.clone(),
        0,
        IsolationLevel::ReadCommitted,
        Some(aborted),
    )
    .expect("ok");
    let got: Vec<i64> = d.records.iter().map(|r| r.offset).collect();
    assert_eq!(got, [0, 3, 4, 7, 9]);
    assert_eq!(d.next_offset, 11);
    assert_eq!(d.bytes, data.len());
    assert_eq!((d.high_watermark, d.last_stable_offset), (100, Some(90)));
    assert_eq!(d.log_start_offset, Some(0));
    let r = &d.records[1];
    assert_eq!((&*r.topic, r.partition, r.leader_epoch), ("t", 2, Some(5)));
    assert_eq!(r.timestamp_type, TimestampType::CreateTime);
    assert_eq!(r.key(), Some(&b"k"[..]));
}

#[test]
fn read_uncommitted_sees_everything_but_markers() {
    let (data, aborted) = interleaved();
    let d = decode(data, 0, IsolationLevel::ReadUncommitted, Some(aborted)).expect("ok");
    let got: Vec<i64> = d.records.iter().map(|r| r.offset).collect();
    assert_eq!(got, [0, 1, 2, 3, 4, 5, 7, 9]);
    assert_eq!(d.next_offset, 11);
}

#[test]
fn read_committed_from_the_middle_of_an_aborted_transaction() {
    // The broker lists the aborted transaction even though the fetch
    // starts past its first offset.
    let (data, aborted) = interleaved();
    let tail = data.slice(data.len() - tail_len(&data, 3)..);
    let d = decode(tail, 5, IsolationLevel::ReadCommitted, Some(aborted)).expect("ok");
    assert_eq!(values(&d), [(7, "p2-c".to_owned()), (9, "p1-d".to_owned())]);
    assert_eq!(d.next_offset, 11);
}

/// Bytes from the batch starting at offset `from` to the end.
fn tail_len(data: &Bytes, from: i64) -> usize {
    let mut at = 0;
    while at < data.len() {
        let base = i64::from_be_bytes(data[at..at + 8].try_into().expect("8"));
        if base >= from {
            return data.len() - at;
        }
        let len = i32::from_be_bytes(data[at + 8..at + 12].try_into().expect("4"));
        at += 12 + usize::try_from(len).expect("len");
    }
    0
}

#[test]
fn records_below_the_fetch_offset_are_skipped() {
    let data = concat(&[
        batch(0, -1, &["a", "b", "c", "d", "e"]),
        batch(5, -1, &["f"]),
    ]);
    let d = decode(data, 3, IsolationLevel::ReadUncommitted, None).expect("ok");
    assert_eq!(
        values(&d),
        [(3, "d".into()), (4, "e".into()), (5, "f".into())]
    );
    assert_eq!(d.next_offset, 6);
}

#[test]
fn a_truncated_trailing_batch_ends_the_data() {
    let first = batch(10, -1, &["a", "b"]);
    let second = batch(12, -1, &["c", "d"]);
    let data = concat(&[first, second.slice(..second.len() - 3)]);
    let d = decode(data, 10, IsolationLevel::ReadUncommitted, None).expect("ok");
    assert_eq!(values(&d), [(10, "a".into()), (11, "b".into())]);
    assert_eq!(d.next_offset, 12);

    // Only a partial batch: no records, no progress, no error.
    let d = decode(
        second.slice(..20),
        12,
        IsolationLevel::ReadUncommitted,
        None,
    )
    .expect("ok");
    assert!(d.records.is_empty());
    assert_eq!(d.next_offset, 12);
}

fn corrupt(b: &Bytes) -> Bytes {
    let mut m = BytesMut::from(&b[..]);
    let last = m.len() - 1;
    m[last] ^= 0xff;
    m.freeze()
}

#[test]
fn a_crc_mismatch_is_corrupt_at_the_batch_offset() {
    let bad = corrupt(&batch(40, -1, &["x", "y"]));
    let e = decode(bad.clone(), 40, IsolationLevel::ReadUncommitted, None).expect_err("corrupt");
    match &e {
        PartitionFetchError::Corrupt { offset, message } => {
            assert_eq!(*offset, 40);
            assert!(message.to_lowercase().contains("crc"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("offset 40"), "{e}");

    // Records before a broken batch are handed out; the next fetch then
    // starts at the broken batch and gets the error.
    let data = concat(&[batch(38, -1, &["v", "w"]), bad]);
    let d = decode(data, 38, IsolationLevel::ReadUncommitted, None).expect("ok");
    assert_eq!(values(&d), [(38, "v".into()), (39, "w".into())]);
    assert_eq!(d.next_offset, 40);
}

#[test]
fn check_crcs_off_skips_the_check() {
    // Flip a byte of the header's producer epoch: the CRC no longer
    // matches but the records still decode.
    let good = batch(0, -1, &["a"]);
    let mut m = BytesMut::from(&good[..]);
    m[52] ^= 0x01;
    let cfg = FetchConfig {
        check_crcs: false,
        ..FetchConfig::default()
    };
    let p = PartitionData {
        records: Some(m.freeze()),
        ..PartitionData::default()
    };
    let d = decode_partition(&Arc::from("t"), 0, p, &cfg).expect("no CRC check");
    assert_eq!(d.records.len(), 1);
}

#[test]
fn next_offset_moves_past_a_trailing_control_batch() {
    let data = concat(&[batch(0, 7, &["a"]), marker(1, 7, COMMIT)]);
    for isolation in [
        IsolationLevel::ReadCommitted,
        IsolationLevel::ReadUncommitted,
    ] {
        let d = decode(data.clone(), 0, isolation, Some(Vec::new())).expect("ok");
        assert_eq!(values(&d), [(0, "a".into())]);
        assert_eq!(d.next_offset, 2, "{isolation:?}");
    }
    // Only a marker: nothing handed out, but the position moves on.
    let d = decode(marker(5, 7, ABORT), 5, IsolationLevel::ReadCommitted, None).expect("ok");
    assert!(d.records.is_empty());
    assert_eq!(d.next_offset, 6);
}

#[test]
fn partition_errors_are_reported() {
    let p = PartitionData {
        error_code: ErrorCode::OFFSET_OUT_OF_RANGE.code(),
        ..PartitionData::default()
    };
    let e = decode_partition(&Arc::from("t"), 0, p, &FetchConfig::default()).expect_err("error");
    assert_eq!(
        e,
        PartitionFetchError::Broker(ErrorCode::OFFSET_OUT_OF_RANGE)
    );
}

/// CRC-32 (IEEE), which legacy messages carry.
fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// A magic 1 message: offset, size, crc, magic, attributes, timestamp,
/// key, value.
fn legacy(offset: i64, value: &[u8]) -> Bytes {
    let mut body = BytesMut::new();
    body.put_i8(1);
    body.put_i8(0);
    body.put_i64(2_000 + offset);
    body.put_i32(-1);
    body.put_i32(i32::try_from(value.len()).expect("small"));
    body.put_slice(value);
    let mut out = BytesMut::new();
    out.put_i64(offset);
    out.put_i32(i32::try_from(body.len() + 4).expect("small"));
    out.put_u32(crc32(&body));
    out.put_slice(&body);
    out.freeze()
}

#[test]
fn legacy_message_sets_decode() {
    let data = concat(&[legacy(3, b"old"), legacy(4, b"older"), legacy(5, b"oldest")]);
    let d = decode(data, 4, IsolationLevel::ReadCommitted, None).expect("ok");
    assert_eq!(values(&d), [(4, "older".into()), (5, "oldest".into())]);
    assert_eq!(d.records[0].timestamp, 2_004);
    assert_eq!(d.records[0].leader_epoch, None);
    assert_eq!(d.next_offset, 6);
}

/// What the batches in `data` declare, as the decoder reserves for.
fn declared(data: &Bytes) -> usize {
    Batches::new(data.clone()).declared_records()
}

#[test]
fn records_are_decoded_into_a_buffer_sized_once() {
    let values: Vec<String> = (0..300).map(|i| format!("v{i}")).collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    let data = concat(&[
        batch(0, -1, &refs[..100]),
        batch(100, -1, &refs[100..250]),
        batch(250, -1, &refs[250..]),
    ]);
    assert_eq!(declared(&data), 300);
    let d = decode(data, 0, IsolationLevel::ReadUncommitted, None).expect("ok");
    assert_eq!(d.records.len(), 300);
    // Reserved for what the headers declare: never grown by doubling.
    assert_eq!(d.records.capacity(), 300);

    let old = concat(&[legacy(3, b"old"), legacy(4, b"older")]);
    assert_eq!(declared(&old), 2);
    // A truncated trailing batch counts what its header says, if it has one.
    let whole = batch(0, -1, &refs[..10]);
    assert_eq!(declared(&whole.slice(..whole.len() - 1)), 10);
    assert_eq!(declared(&whole.slice(..40)), 0);
    assert_eq!(declared(&Bytes::new()), 0);
}
