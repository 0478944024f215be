//! Property tests of record batches: encode → decode round trips, decoding
//! arbitrary or damaged bytes never panics, and the borrowed view of the
//! records (`BatchRecords::refs`) agrees with the owned one on all of it.

use bytes::{Bytes, BytesMut};
use krust_codec::DecodeError;
use krust_codec::records::{
    Batch, Batches, Compression, ControlMarker, DecodeOptions, NewHeader, NewRecord, Record,
    RecordBatchBuilder, TimestampType,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct RecSpec {
    gap: i32,
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

#[derive(Debug, Clone)]
struct BatchSpec {
    base_offset: i64,
    leader_epoch: i32,
    compression: Compression,
    log_append: bool,
    transactional: bool,
    control: bool,
    producer: (i64, i16, i32),
    records: Vec<RecSpec>,
}

fn bytes_opt(max: usize) -> impl Strategy<Value = Option<Vec<u8>>> {
    prop::option::of(prop_oneof![
        prop::collection::vec(any::<u8>(), 0..max),
        // Compressible values.
        (0..max, any::<u8>()).prop_map(|(n, b)| vec![b; n]),
    ])
}

fn rec_spec(with_headers: bool) -> impl Strategy<Value = RecSpec> {
    let headers = if with_headers {
        prop::collection::vec(("[a-zé]{0,8}", bytes_opt(16)), 0..4).boxed()
    } else {
        Just(Vec::new()).boxed()
    };
    (
        prop_oneof![Just(0), 0..3, Just(1000)],
        1_600_000_000_000i64..1_800_000_000_000,
        bytes_opt(40),
        bytes_opt(300),
        headers,
    )
        .prop_map(|(gap, timestamp, key, value, headers)| RecSpec {
            gap,
            timestamp,
            key,
            value,
            headers,
        })
}

fn available_codec() -> impl Strategy<Value = Compression> {
    prop::sample::select(
        Compression::ALL
            .into_iter()
            .filter(|c| c.is_available())
            .collect::<Vec<_>>(),
    )
}

fn batch_spec() -> impl Strategy<Value = BatchSpec> {
    (
        0i64..1 << 40,
        -1i32..100,
        available_codec(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![
            Just((-1, -1, -1)),
            (0i64..1 << 50, 0i16..100, 0i32..1 << 30)
        ],
        any::<bool>(),
    )
        .prop_flat_map(
            |(base, epoch, compression, log_append, tx, control, producer, hdrs)| {
                let records = if control {
                    prop_oneof![Just(0i16), Just(1i16)]
                        .prop_map(|kind| {
                            let marker = if kind == 1 {
                                ControlMarker::Commit {
                                    coordinator_epoch: 9,
                                }
                            } else {
                                ControlMarker::Abort {
                                    coordinator_epoch: 9,
                                }
                            };
                            vec![RecSpec {
                                gap: 0,
                                timestamp: 1_700_000_000_000,
                                key: Some(marker.key_bytes().to_vec()),
                                value: marker.value_bytes().map(|v| v.to_vec()),
                                headers: Vec::new(),
                            }]
                        })
                        .boxed()
                } else {
                    prop::collection::vec(rec_spec(hdrs), 1..30).boxed()
                };
                records.prop_map(move |records| BatchSpec {
                    base_offset: base,
                    leader_epoch: epoch,
                    compression,
                    log_append,
                    transactional: tx,
                    control,
                    producer,
                    records,
                })
            },
        )
}

fn encode(spec: &BatchSpec) -> Bytes {
    let mut b = RecordBatchBuilder::new()
        .base_offset(spec.base_offset)
        .partition_leader_epoch(spec.leader_epoch)
        .compression(spec.compression)
        .timestamp_type(if spec.log_append {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        })
        .transactional(spec.transactional)
        .control(spec.control)
        .producer(spec.producer.0, spec.producer.1, spec.producer.2);
    let mut delta = -1i32;
    let mut expected_size = 61;
    for r in &spec.records {
        delta += 1 + r.gap;
        let headers: Vec<NewHeader<'_>> = r
            .headers
            .iter()
            .map(|(k, v)| NewHeader {
                key: k,
                value: v.as_deref(),
            })
            .collect();
        let rec = NewRecord {
            offset_delta: (r.gap != 0).then_some(delta),
            timestamp: r.timestamp,
            key: r.key.as_deref(),
            value: r.value.as_deref(),
            headers: &headers,
        };
        expected_size += b.record_size(&rec).unwrap();
        b.append(&rec).unwrap();
        assert_eq!(b.size_in_bytes(), expected_size);
    }
    let out = b.build().unwrap();
    if spec.compression == Compression::None {
        assert_eq!(out.len(), expected_size);
    }
    out
}

fn check(spec: &BatchSpec, batch: &Batch) {
    let Batch::V2(b) = batch else {
        panic!("not v2")
    };
    let n = spec.records.len();
    let deltas: Vec<i64> = spec
        .records
        .iter()
        .scan(-1i64, |d, r| {
            *d += 1 + i64::from(r.gap);
            Some(*d)
        })
        .collect();
    let max_ts = spec.records.iter().map(|r| r.timestamp).max().unwrap();
    assert_eq!(b.base_offset(), spec.base_offset);
    assert_eq!(b.last_offset(), spec.base_offset + deltas[n - 1]);
    assert_eq!(b.partition_leader_epoch(), spec.leader_epoch);
    assert_eq!(b.compression(), spec.compression);
    assert_eq!(b.is_transactional(), spec.transactional);
    assert_eq!(b.is_control(), spec.control);
    assert_eq!(
        (b.producer_id(), b.producer_epoch(), b.base_sequence()),
        spec.producer
    );
    assert_eq!(b.first_timestamp(), spec.records[0].timestamp);
    assert_eq!(b.max_timestamp(), max_ts);
    assert_eq!(b.record_count() as usize, n);
    b.verify_crc().unwrap();
    let records: Vec<Record> = batch.records().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(records.len(), n);
    for ((r, s), d) in records.iter().zip(&spec.records).zip(&deltas) {
        assert_eq!(r.offset, spec.base_offset + d);
        assert_eq!(
            r.timestamp,
            if spec.log_append { max_ts } else { s.timestamp }
        );
        assert_eq!(r.data.key(), s.key.as_deref());
        assert_eq!(r.data.value(), s.value.as_deref());
        let headers: Vec<(String, Option<Vec<u8>>)> = r
            .data
            .headers()
            .iter()
            .map(|h| (h.key.to_string(), h.value.map(|v| v.to_vec())))
            .collect();
        assert_eq!(headers, s.headers);
        if spec.control {
            let m = ControlMarker::from_record(r).unwrap();
            assert!(m.is_commit() || m.is_abort());
        }
    }
}

/// Decode everything in `data`, records included, ignoring errors.
fn drain(data: Bytes, options: DecodeOptions) -> usize {
    let mut n = 0;
    for batch in Batches::with_options(data, options) {
        let Ok(batch) = batch else { break };
        let _ = batch.verify_crc();
        if let Ok(records) = batch.records() {
            for r in records {
                let Ok(r) = r else { break };
                n += r.data.headers().iter().count() + 1;
                let _ = ControlMarker::from_record(&r);
            }
        }
    }
    n
}

/// Decode the records of every v2 batch in `data` through both views
/// (`sample::views_agree`); returns the number of records.
fn views_agree(data: Bytes, options: DecodeOptions) -> usize {
    let mut n = 0;
    for batch in Batches::with_options(data, options) {
        let Ok(Batch::V2(batch)) = batch else { break };
        n += krust_codec::sample::views_agree(&batch);
    }
    n
}

fn small_limit() -> DecodeOptions {
    DecodeOptions::new().with_max_decompressed_size(64 * 1024)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn batches_round_trip(specs in prop::collection::vec(batch_spec(), 1..4)) {
        let mut all = BytesMut::new();
        for s in &specs {
            all.extend_from_slice(&encode(s));
        }
        let mut it = Batches::new(all.freeze());
        for s in &specs {
            check(s, &it.next().unwrap().unwrap());
        }
        prop_assert!(it.next().is_none());
        prop_assert!(!it.is_truncated());
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..600)) {
        drain(Bytes::from(data.clone()), small_limit());
        drain(Bytes::from(data), small_limit().with_verify_crc(false));
    }

    #[test]
    fn mutated_batches_never_panic(
        spec in batch_spec(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut data = encode(&spec).to_vec();
        for (i, b) in flips {
            let i = i.index(data.len());
            data[i] = b;
        }
        drain(Bytes::from(data.clone()), small_limit());
        drain(Bytes::from(data), small_limit().with_verify_crc(false));
    }

    #[test]
    fn borrowed_view_agrees_on_encoded_batches(specs in prop::collection::vec(batch_spec(), 1..4)) {
        let mut all = BytesMut::new();
        for s in &specs {
            all.extend_from_slice(&encode(s));
        }
        let n = views_agree(all.freeze(), DecodeOptions::new());
        prop_assert_eq!(n, specs.iter().map(|s| s.records.len()).sum::<usize>());
    }

    #[test]
    fn borrowed_view_agrees_on_mutated_batches(
        spec in batch_spec(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut data = encode(&spec).to_vec();
        for (i, b) in flips {
            let i = i.index(data.len());
            data[i] = b;
        }
        views_agree(Bytes::from(data), small_limit().with_verify_crc(false));
    }

    #[test]
    fn borrowed_view_agrees_on_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..600)) {
        views_agree(Bytes::from(data.clone()), small_limit().with_verify_crc(false));
        // The same bytes after a valid v2 header, so that records get read.
        let mut batch = encode(&BatchSpec {
            base_offset: 0,
            leader_epoch: 0,
            compression: Compression::None,
            log_append: false,
            transactional: false,
            control: false,
            producer: (-1, -1, -1),
            records: vec![RecSpec {
                gap: 0,
                timestamp: 0,
                key: None,
                value: None,
                headers: Vec::new(),
            }],
        })
        .to_vec();
        batch.truncate(61);
        batch.extend_from_slice(&data);
        let len = i32::try_from(batch.len() - 12).unwrap();
        batch[8..12].copy_from_slice(&len.to_be_bytes());
        let count = i32::try_from(data.len() / 7).unwrap();
        batch[57..61].copy_from_slice(&count.to_be_bytes());
        views_agree(Bytes::from(batch), small_limit().with_verify_crc(false));
    }

    #[test]
    fn any_damage_to_the_crc_range_is_a_crc_mismatch(
        spec in batch_spec(),
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let mut data = encode(&spec).to_vec();
        let i = 21 + at.index(data.len() - 21);
        // Keep the batch framed: only what the CRC covers is damaged.
        data[i] ^= xor;
        let first = Batches::new(Bytes::from(data)).next().unwrap();
        match first {
            Err(DecodeError::CrcMismatch { .. }) => {}
            // Attributes damaged into an unknown codec are caught first.
            Err(DecodeError::InvalidValue { .. }) if (21..23).contains(&i) => {}
            Err(DecodeError::InvalidLength { .. }) if (57..61).contains(&i) => {}
            other => prop_assert!(false, "byte {}: {:?}", i, other.map(|_| ())),
        }
    }
}

#[test]
fn a_truncated_trailing_batch_is_skipped_at_every_cut_point() {
    let first = encode(&BatchSpec {
        base_offset: 10,
        leader_epoch: 1,
        compression: Compression::None,
        log_append: false,
        transactional: false,
        control: false,
        producer: (-1, -1, -1),
        records: vec![
            RecSpec {
                gap: 0,
                timestamp: 5,
                key: None,
                value: Some(b"first".to_vec()),
                headers: vec![],
            };
            3
        ],
    });
    let legacy = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/records/v1_none.bin"
    ))
    .unwrap();
    for codec in Compression::ALL.into_iter().filter(|c| c.is_available()) {
        let mut spec = BatchSpec {
            base_offset: 13,
            leader_epoch: 1,
            compression: codec,
            log_append: false,
            transactional: true,
            control: false,
            producer: (5, 1, 0),
            records: vec![],
        };
        spec.records = (0..20)
            .map(|i| RecSpec {
                gap: 0,
                timestamp: 100 + i,
                key: Some(vec![b'k'; 3]),
                value: Some(vec![b'v'; 50]),
                headers: vec![("h".into(), None)],
            })
            .collect();
        let second = encode(&spec);
        for tail in [&second[..], &legacy[..]] {
            for cut in 0..tail.len() {
                let mut data = first.to_vec();
                data.extend_from_slice(&tail[..cut]);
                let mut it = Batches::new(Bytes::from(data));
                let b = it.next().unwrap().unwrap();
                assert_eq!(b.records().unwrap().count(), 3);
                // A cut inside a legacy set ends on a whole message.
                let mut whole = 0;
                for b in &mut it {
                    let b = b.unwrap_or_else(|e| panic!("cut {cut}: {e}"));
                    whole += b.size_in_bytes();
                    assert!(b.records().unwrap().all(|r| r.is_ok()));
                }
                assert_eq!(it.is_truncated(), whole != cut, "{codec} cut {cut}");
                assert_eq!(it.remaining().len(), cut - whole);
            }
        }
    }
}

#[test]
fn a_record_count_larger_than_the_bytes_is_refused_without_allocating() {
    let mut b = RecordBatchBuilder::new();
    b.append(&NewRecord {
        value: Some(&[b'x'; 20]),
        ..NewRecord::default()
    })
    .unwrap();
    let mut data = b.build().unwrap().to_vec();
    data[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
    let opts = DecodeOptions::new().with_verify_crc(false);
    let batch = Batches::with_options(Bytes::from(data.clone()), opts)
        .next()
        .unwrap()
        .unwrap();
    assert!(matches!(
        batch.records().unwrap_err(),
        DecodeError::InvalidLength { .. }
    ));
    // Two records declared, one present: an error at the end, not a hang.
    data[57..61].copy_from_slice(&2i32.to_be_bytes());
    let batch = Batches::with_options(Bytes::from(data.clone()), opts)
        .next()
        .unwrap()
        .unwrap();
    let results: Vec<_> = batch.records().unwrap().collect();
    assert_eq!(results.len(), 2);
    assert!(results[1].is_err());
    // Zero declared, one present: trailing bytes.
    data[57..61].copy_from_slice(&0i32.to_be_bytes());
    let batch = Batches::with_options(Bytes::from(data), opts)
        .next()
        .unwrap()
        .unwrap();
    let results: Vec<_> = batch.records().unwrap().collect();
    assert!(matches!(
        results[..],
        [Err(DecodeError::TrailingBytes { .. })]
    ));
}

#[test]
fn a_decompression_bomb_is_an_error() {
    for codec in Compression::ALL
        .into_iter()
        .filter(|c| c.is_available() && *c != Compression::None)
    {
        let value = vec![0u8; 1 << 20];
        let mut b = RecordBatchBuilder::new().compression(codec);
        for _ in 0..4 {
            b.append(&NewRecord {
                value: Some(&value),
                ..NewRecord::default()
            })
            .unwrap();
        }
        let data = b.build().unwrap();
        assert!(data.len() < 300_000, "{codec}: {}", data.len());
        let batch = Batches::with_options(data.clone(), small_limit())
            .next()
            .unwrap()
            .unwrap();
        let err = batch.records().unwrap_err();
        assert!(
            matches!(err, DecodeError::Decompression { codec: c, .. } if c == codec.name()),
            "{codec}: {err}"
        );
        let batch = Batches::new(data).next().unwrap().unwrap();
        assert_eq!(batch.records().unwrap().count(), 4);
    }
}

#[test]
fn builder_rejects_what_it_cannot_encode() {
    assert!(RecordBatchBuilder::new().build().is_err());
    let mut b = RecordBatchBuilder::new();
    b.append(&NewRecord {
        offset_delta: Some(5),
        ..NewRecord::default()
    })
    .unwrap();
    let err = b
        .append(&NewRecord {
            offset_delta: Some(5),
            ..NewRecord::default()
        })
        .unwrap_err();
    assert!(matches!(err, krust_codec::EncodeError::InvalidValue { .. }));
    assert_eq!(b.record_count(), 1);
}

#[test]
fn unknown_magic_and_bad_lengths_are_errors() {
    let mut b = RecordBatchBuilder::new();
    b.append(&NewRecord::default()).unwrap();
    let good = b.build().unwrap().to_vec();
    let mut bad = good.clone();
    bad[16] = 3;
    assert!(matches!(
        Batches::new(Bytes::from(bad)).next().unwrap(),
        Err(DecodeError::InvalidValue { .. })
    ));
    let mut bad = good.clone();
    bad[8..12].copy_from_slice(&(-5i32).to_be_bytes());
    assert!(matches!(
        Batches::new(Bytes::from(bad)).next().unwrap(),
        Err(DecodeError::InvalidLength { .. })
    ));
    // An error ends the iteration.
    let mut bad = good.clone();
    bad[16] = 7;
    bad.extend_from_slice(&good);
    let mut it = Batches::new(Bytes::from(bad));
    assert!(it.next().unwrap().is_err());
    assert!(it.next().is_none());
}
