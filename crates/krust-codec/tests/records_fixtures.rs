//! Record batches written by another implementation (kafka-python, see
//! tests/fixtures/records/README.md) decode to exactly what kafka-python's
//! own reader saw, field by field.

use std::collections::HashMap;
use std::path::Path;

use bytes::Bytes;
use krust_codec::DecodeError;
use krust_codec::records::{Batch, Batches, Compression, ControlMarker, Record, TimestampType};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/records");

/// `name=value` fields of one manifest line.
type Fields = HashMap<String, String>;

#[derive(Debug, Default)]
struct FileExpect {
    batches: Vec<(Fields, Vec<Fields>)>,
    truncated: bool,
}

fn fields(line: &str) -> HashMap<String, String> {
    line.split(' ')
        .skip(1)
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("name=value");
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn manifest() -> Vec<(String, FileExpect)> {
    let text = std::fs::read_to_string(Path::new(DIR).join("manifest.txt")).unwrap();
    let mut files: Vec<(String, FileExpect)> = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (kind, rest) = line.split_once(' ').unwrap();
        let cur = files.last_mut();
        match kind {
            "file" => files.push((rest.to_owned(), FileExpect::default())),
            "batch" => cur.unwrap().1.batches.push((fields(line), Vec::new())),
            "record" => cur
                .unwrap()
                .1
                .batches
                .last_mut()
                .unwrap()
                .1
                .push(fields(line)),
            "truncated" => cur.unwrap().1.truncated = rest == "yes",
            other => panic!("unknown manifest line {other}"),
        }
    }
    files
}

fn hex(s: &str) -> Option<Vec<u8>> {
    match s {
        "-" => None,
        "~" => Some(Vec::new()),
        s => Some(
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect(),
        ),
    }
}

fn num(m: &HashMap<String, String>, k: &str) -> i64 {
    m[k].parse().unwrap_or_else(|_| panic!("{k}={}", m[k]))
}

fn check_record(file: &str, r: &Record, e: &HashMap<String, String>) {
    assert_eq!(r.offset, num(e, "offset"), "{file}");
    assert_eq!(r.timestamp, num(e, "timestamp"), "{file} @{}", r.offset);
    assert_eq!(
        r.data.key().map(<[u8]>::to_vec),
        hex(&e["key"]),
        "{file} @{}",
        r.offset
    );
    assert_eq!(
        r.data.value().map(<[u8]>::to_vec),
        hex(&e["value"]),
        "{file} @{}",
        r.offset
    );
    let headers: Vec<(Vec<u8>, Option<Vec<u8>>)> = r
        .data
        .headers()
        .iter()
        .map(|h| (h.key.as_bytes().to_vec(), h.value.map(<[u8]>::to_vec)))
        .collect();
    let expected: Vec<(Vec<u8>, Option<Vec<u8>>)> = if e["headers"] == "~" {
        Vec::new()
    } else {
        e["headers"]
            .split(',')
            .map(|kv| {
                let (k, v) = kv.split_once(':').unwrap();
                (hex(k).unwrap(), hex(v))
            })
            .collect()
    };
    assert_eq!(headers, expected, "{file} @{}", r.offset);
    assert_eq!(r.data.headers().len(), expected.len());
}

fn check_header(file: &str, batch: &Batch, e: &HashMap<String, String>) {
    assert_eq!(i64::from(batch.magic()), num(e, "magic"), "{file}");
    assert_eq!(batch.compression().name(), e["compression"], "{file}");
    assert_eq!(batch.size_in_bytes() as i64, num(e, "size"), "{file}");
    match batch {
        Batch::V2(b) => {
            assert_eq!(b.base_offset(), num(e, "base_offset"), "{file}");
            assert_eq!(b.last_offset(), num(e, "last_offset"), "{file}");
            assert_eq!(batch.last_offset(), num(e, "last_offset"), "{file}");
            assert_eq!(
                i64::from(b.partition_leader_epoch()),
                num(e, "leader_epoch")
            );
            assert_eq!(i64::from(b.crc()), num(e, "crc"), "{file}");
            let tt = match b.timestamp_type() {
                TimestampType::CreateTime => 0,
                TimestampType::LogAppendTime => 1,
            };
            assert_eq!(tt, num(e, "timestamp_type"), "{file}");
            assert_eq!(i64::from(b.is_transactional()), num(e, "transactional"));
            assert_eq!(batch.is_transactional(), b.is_transactional());
            assert_eq!(i64::from(b.is_control()), num(e, "control"), "{file}");
            assert_eq!(b.producer_id(), num(e, "producer_id"), "{file}");
            assert_eq!(i64::from(b.producer_epoch()), num(e, "producer_epoch"));
            assert_eq!(i64::from(b.base_sequence()), num(e, "base_sequence"));
            assert_eq!(b.first_timestamp(), num(e, "first_timestamp"), "{file}");
            assert_eq!(b.max_timestamp(), num(e, "max_timestamp"), "{file}");
            assert_eq!(
                i64::from(b.record_count()),
                num(e, "record_count"),
                "{file}"
            );
        }
        Batch::Legacy(m) => {
            assert_eq!(m.offset(), num(e, "offset"), "{file}");
            let tt = match m.timestamp_type() {
                None => "-",
                Some(TimestampType::CreateTime) => "0",
                Some(TimestampType::LogAppendTime) => "1",
            };
            assert_eq!(tt, e["timestamp_type"], "{file}");
        }
    }
}

#[test]
fn kafka_python_fixtures_decode_field_by_field() {
    let files = manifest();
    assert!(files.len() >= 20, "manifest lists {} files", files.len());
    let mut records_checked = 0;
    for (file, expect) in &files {
        let data = Bytes::from(std::fs::read(Path::new(DIR).join(file)).unwrap());
        let mut batches = Batches::new(data);
        let mut expected = expect.batches.iter();
        for batch in &mut batches {
            let batch = batch.unwrap_or_else(|e| panic!("{file}: {e}"));
            let (eb, erecs) = expected
                .next()
                .unwrap_or_else(|| panic!("{file}: extra batch"));
            check_header(file, &batch, eb);
            if !batch.compression().is_available() {
                let err = batch.records().unwrap_err();
                assert!(
                    matches!(err, DecodeError::Decompression { codec, .. } if codec == batch.compression().name()),
                    "{file}: {err}"
                );
                continue;
            }
            let records: Vec<Record> = batch
                .records()
                .unwrap_or_else(|e| panic!("{file}: {e}"))
                .collect::<Result<_, _>>()
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(records.len(), erecs.len(), "{file}");
            for (r, e) in records.iter().zip(erecs) {
                check_record(file, r, e);
            }
            records_checked += records.len();
        }
        assert!(expected.next().is_none(), "{file}: missing batches");
        assert_eq!(batches.is_truncated(), expect.truncated, "{file}");
    }
    // Without codec features only the uncompressed fixtures have records.
    let min = if Compression::ALL.iter().all(|c| c.is_available()) {
        250
    } else {
        50
    };
    assert!(records_checked > min, "{records_checked}");
}

#[test]
fn kafka_python_snappy_is_xerial_and_raw_also_decodes() {
    for (file, xerial) in [("v2_snappy.bin", true), ("v2_snappy_raw.bin", false)] {
        let data = std::fs::read(Path::new(DIR).join(file)).unwrap();
        assert_eq!(data[61..].starts_with(b"\x82SNAPPY\0"), xerial, "{file}");
        let batch = Batches::new(Bytes::from(data)).next().unwrap().unwrap();
        assert_eq!(batch.compression(), Compression::Snappy);
        if Compression::Snappy.is_available() {
            assert_eq!(
                batch.records().unwrap().count(),
                if xerial { 20 } else { 9 }
            );
        }
    }
}

#[test]
fn kafka_python_control_batches_are_markers() {
    for (file, expected) in [
        (
            "v2_control_commit.bin",
            ControlMarker::Commit {
                coordinator_epoch: 5,
            },
        ),
        (
            "v2_control_abort.bin",
            ControlMarker::Abort {
                coordinator_epoch: 6,
            },
        ),
    ] {
        let data = Bytes::from(std::fs::read(Path::new(DIR).join(file)).unwrap());
        let batch = Batches::new(data).next().unwrap().unwrap();
        assert!(batch.is_control() && batch.is_transactional(), "{file}");
        let record = batch.records().unwrap().next().unwrap().unwrap();
        assert_eq!(
            ControlMarker::from_record(&record).unwrap(),
            expected,
            "{file}"
        );
    }
}

#[test]
fn a_fixture_with_one_flipped_bit_fails_its_crc() {
    let mut data = std::fs::read(Path::new(DIR).join("v2_none.bin")).unwrap();
    data[100] ^= 0x10;
    let err = Batches::new(Bytes::from(data)).next().unwrap().unwrap_err();
    assert!(matches!(err, DecodeError::CrcMismatch { .. }), "{err}");
    let mut legacy = std::fs::read(Path::new(DIR).join("v1_gzip.bin")).unwrap();
    let last = legacy.len() - 1;
    legacy[last] ^= 1;
    let err = Batches::new(Bytes::from(legacy))
        .next()
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, DecodeError::CrcMismatch { .. }), "{err}");
}
