//! RecordBatch v2 encode and decode: krust against `kafka-protocol`'s
//! `RecordBatchEncoder` / `RecordBatchDecoder`, in the same criterion group,
//! on the same records and the same bytes.
//!
//! Records are JSON-like values generated from a seeded PRNG (field names,
//! numbers, words, hex ids) so that compression ratios are realistic, with
//! 16-byte keys and one or two headers on some records. One batch holds
//! [`RECORDS`] records, as an idempotent producer writes it (producer id,
//! epoch, sequences), so that both encoders produce a single batch.
//!
//! Each group is `record_batch/<value size>/<codec>`, with
//! `Throughput::Elements(records)`; the setup prints the uncompressed and
//! compressed sizes so that MB/s can be derived (see `benches/RESULTS.md`).
//! Functions:
//!
//! * `krust/encode`, `kafka-protocol/encode`: build the batch from records
//!   already in memory (our `NewRecord`s, its `Record`s), compression and
//!   CRC included.
//! * `krust/decode`, `kafka-protocol/decode`: decode the batch krust wrote
//!   (CRC check, decompression, every record's key, value and headers
//!   touched); krust's records are owned `Record`s (each holding its
//!   `Bytes` slice of the batch, as a consumer hands them out), read
//!   through their accessors.
//! * `krust/decode-ref`: the same decode through krust's borrowed view
//!   (`BatchRecords::refs`, `RecordRef`: key, value and headers as `&[u8]`
//!   and `&str` of the batch's buffer, no reference counting), touching the
//!   same fields.
//! * `krust/decode-kp-bytes`, `krust/decode-ref-kp-bytes`,
//!   `kafka-protocol/decode-kp-bytes`: the same on the batch kafka-protocol
//!   wrote (its compressors use other levels: C lz4 level 4, C zstd
//!   level 3).
//!
//! Before timing, each group checks that both decoders (and krust's two
//! views) read the same records from both batches.
//!
//! A `crc32c` group gives CRC32C's MB/s over 1 MiB for scale.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records as kp;
use krust_codec::records::{
    Batch, BatchRecords, Batches, Compression, NewHeader, NewRecord, RecordBatchBuilder,
};

/// Records per batch.
const RECORDS: usize = 1000;
/// Value sizes measured.
const VALUE_SIZES: [usize; 2] = [100, 1024];
const PRODUCER_ID: i64 = 1000;
const PRODUCER_EPOCH: i16 = 0;
const FIRST_TIMESTAMP: i64 = 1_700_000_000_000;

/// SplitMix64: small, seeded, good enough to vary test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[usize::try_from(self.below(items.len() as u64)).unwrap_or(0)]
    }

    fn hex(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        while s.len() < n {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(n);
        s
    }
}

const EVENTS: &[&str] = &[
    "page_view",
    "click",
    "add_to_cart",
    "checkout",
    "login",
    "logout",
    "search",
    "purchase",
];
const WORDS: &[&str] = &[
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
    "uniform", "victor", "whiskey", "xray", "yankee", "zulu",
];
const COUNTRIES: &[&str] = &["DE", "FR", "US", "GB", "JP", "BR", "IN", "NL", "SE", "ES"];
const DEVICES: &[&str] = &["desktop", "mobile", "tablet", "tv"];
const FIELDS: &[&str] = &[
    "page",
    "referrer",
    "country",
    "device",
    "amount",
    "currency",
    "qty",
    "sku",
    "latency_ms",
    "status",
    "campaign",
    "region",
    "score",
    "tags",
];

/// One JSON object of exactly `size` bytes (for `size` >= 100).
fn json_value(rng: &mut Rng, id: usize, ts: i64, size: usize) -> Vec<u8> {
    let mut s = format!(
        "{{\"id\":{id},\"ts\":{ts},\"event\":\"{}\",\"user\":\"user-{}\"",
        rng.pick(EVENTS),
        rng.below(100_000)
    );
    loop {
        let field = rng.pick(FIELDS);
        let v = match field {
            "page" | "referrer" => format!(
                "\"/{}/{}/{}\"",
                rng.pick(WORDS),
                rng.pick(WORDS),
                rng.below(1000)
            ),
            "country" | "region" => format!("\"{}\"", rng.pick(COUNTRIES)),
            "device" => format!("\"{}\"", rng.pick(DEVICES)),
            "amount" | "score" => format!("{}.{:02}", rng.below(10_000), rng.below(100)),
            "currency" => "\"EUR\"".to_owned(),
            "qty" | "status" | "latency_ms" => rng.below(1000).to_string(),
            "sku" | "campaign" => format!("\"{}\"", rng.hex(12)),
            _ => format!("[\"{}\",\"{}\"]", rng.pick(WORDS), rng.pick(WORDS)),
        };
        let pair = format!(",\"{field}\":{v}");
        // Room left for `,"note":""}` (11 bytes) plus a few characters.
        if s.len() + pair.len() + 14 > size {
            break;
        }
        s.push_str(&pair);
    }
    s.push_str(",\"note\":\"");
    while s.len() < size - 2 {
        let w = rng.pick(WORDS);
        s.push_str(&w[..w.len().min(size - 2 - s.len())]);
        if s.len() < size - 2 {
            s.push(' ');
        }
    }
    s.push_str("\"}");
    debug_assert_eq!(s.len(), size);
    s.into_bytes()
}

/// The records of one batch, owned.
struct Data {
    timestamps: Vec<i64>,
    keys: Vec<Vec<u8>>,
    values: Vec<Vec<u8>>,
    headers: Vec<Vec<(String, Vec<u8>)>>,
}

impl Data {
    fn new(value_size: usize) -> Self {
        let mut rng = Rng(0x6b72_7573_7400 + value_size as u64);
        let mut ts = FIRST_TIMESTAMP;
        let mut data = Data {
            timestamps: Vec::with_capacity(RECORDS),
            keys: Vec::with_capacity(RECORDS),
            values: Vec::with_capacity(RECORDS),
            headers: Vec::with_capacity(RECORDS),
        };
        for i in 0..RECORDS {
            ts += i64::try_from(rng.below(3)).unwrap_or(0);
            data.timestamps.push(ts);
            // 16 bytes.
            data.keys
                .push(format!("user-{:011}", rng.below(100_000_000_000)).into_bytes());
            data.values.push(json_value(&mut rng, i, ts, value_size));
            let mut h = Vec::new();
            if rng.below(4) == 0 {
                h.push(("trace-id".to_owned(), rng.hex(32).into_bytes()));
                if rng.below(2) == 0 {
                    h.push(("content-type".to_owned(), b"application/json".to_vec()));
                }
            }
            data.headers.push(h);
        }
        data
    }

    /// Key, value and header bytes: what a consumer reads.
    fn payload_bytes(&self) -> usize {
        let h: usize = self
            .headers
            .iter()
            .flatten()
            .map(|(k, v)| k.len() + v.len())
            .sum();
        self.keys.iter().map(Vec::len).sum::<usize>()
            + self.values.iter().map(Vec::len).sum::<usize>()
            + h
    }

    fn new_headers(&self) -> Vec<Vec<NewHeader<'_>>> {
        self.headers
            .iter()
            .map(|hs| {
                hs.iter()
                    .map(|(k, v)| NewHeader {
                        key: k,
                        value: Some(v),
                    })
                    .collect()
            })
            .collect()
    }

    fn kp_records(&self) -> Vec<kp::Record> {
        (0..RECORDS)
            .map(|i| {
                let mut headers = IndexMap::new();
                for (k, v) in &self.headers[i] {
                    headers.insert(
                        StrBytes::from_string(k.clone()),
                        Some(Bytes::copy_from_slice(v)),
                    );
                }
                let n = i32::try_from(i).unwrap_or(i32::MAX);
                kp::Record {
                    transactional: false,
                    control: false,
                    delete_horizon: false,
                    partition_leader_epoch: -1,
                    producer_id: PRODUCER_ID,
                    producer_epoch: PRODUCER_EPOCH,
                    timestamp_type: kp::TimestampType::Creation,
                    offset: i64::from(n),
                    sequence: n,
                    timestamp: self.timestamps[i],
                    key: Some(Bytes::copy_from_slice(&self.keys[i])),
                    value: Some(Bytes::copy_from_slice(&self.values[i])),
                    headers,
                }
            })
            .collect()
    }
}

fn kp_compression(c: Compression) -> kp::Compression {
    match c {
        Compression::None => kp::Compression::None,
        Compression::Gzip => kp::Compression::Gzip,
        Compression::Snappy => kp::Compression::Snappy,
        Compression::Lz4 => kp::Compression::Lz4,
        Compression::Zstd => kp::Compression::Zstd,
    }
}

fn krust_encode(records: &[NewRecord<'_>], compression: Compression, capacity: usize) -> Bytes {
    let mut b = RecordBatchBuilder::with_capacity(capacity)
        .compression(compression)
        .producer(PRODUCER_ID, PRODUCER_EPOCH, 0);
    for r in records {
        b.append(r).expect("append");
    }
    b.build().expect("build")
}

fn kp_encode(records: &[kp::Record], compression: Compression, capacity: usize) -> Bytes {
    let mut buf = BytesMut::with_capacity(capacity);
    kp::RecordBatchEncoder::encode(
        &mut buf,
        records,
        &kp::RecordEncodeOptions {
            version: 2,
            compression: kp_compression(compression),
        },
    )
    .expect("kafka-protocol encode");
    buf.freeze()
}

/// Decode with krust, touching every key, value and header; returns the sum
/// of their lengths.
fn krust_decode(bytes: &Bytes) -> usize {
    let mut sum = 0;
    for batch in Batches::new(bytes.clone()) {
        let batch = batch.expect("batch");
        for record in batch.records().expect("records") {
            let record = record.expect("record");
            sum += record.data.key().map_or(0, <[u8]>::len);
            sum += record.data.value().map_or(0, <[u8]>::len);
            for h in record.data.headers() {
                sum += h.key.len() + h.value.map_or(0, <[u8]>::len);
            }
            black_box(&record);
        }
    }
    sum
}

/// The records of a v2 batch (the bench writes no legacy ones).
fn v2_records(batch: Batch) -> BatchRecords {
    match batch {
        Batch::V2(b) => b.records().expect("records"),
        Batch::Legacy(_) => panic!("a legacy message in a v2 bench"),
    }
}

/// Decode with krust's borrowed view, touching the same fields.
fn krust_decode_ref(bytes: &Bytes) -> usize {
    let mut sum = 0;
    for batch in Batches::new(bytes.clone()) {
        let records = v2_records(batch.expect("batch"));
        for record in records.refs() {
            let record = record.expect("record");
            sum += record.key.map_or(0, <[u8]>::len);
            sum += record.value.map_or(0, <[u8]>::len);
            for h in record.headers {
                sum += h.key.len() + h.value.map_or(0, <[u8]>::len);
            }
            black_box(&record);
        }
    }
    sum
}

/// Decode with kafka-protocol, touching the same fields.
fn kp_decode(bytes: &Bytes) -> usize {
    let mut buf = bytes.clone();
    let set = kp::RecordBatchDecoder::decode(&mut buf).expect("kafka-protocol decode");
    let mut sum = 0;
    for record in &set.records {
        sum += record.key.as_ref().map_or(0, Bytes::len);
        sum += record.value.as_ref().map_or(0, Bytes::len);
        for (k, v) in &record.headers {
            sum += k.len() + v.as_ref().map_or(0, Bytes::len);
        }
        black_box(record);
    }
    sum
}

type Flat = (i64, i64, Option<Bytes>, Option<Bytes>, Vec<(String, Bytes)>);

fn krust_flat(bytes: &Bytes) -> Vec<Flat> {
    let mut out = Vec::new();
    for batch in Batches::new(bytes.clone()) {
        for r in batch.unwrap().records().unwrap() {
            let r = r.unwrap();
            let data = &r.data;
            let headers = data
                .headers()
                .iter()
                .map(|h| {
                    let value = data.buffer().slice_ref(h.value.unwrap());
                    (h.key.to_owned(), value)
                })
                .collect();
            out.push((
                r.offset,
                r.timestamp,
                data.key_bytes(),
                data.value_bytes(),
                headers,
            ));
        }
    }
    out
}

fn krust_ref_flat(bytes: &Bytes) -> Vec<Flat> {
    let mut out = Vec::new();
    for batch in Batches::new(bytes.clone()) {
        let records = v2_records(batch.unwrap());
        for r in records.refs() {
            let r = r.unwrap();
            let headers = r
                .headers
                .iter()
                .map(|h| (h.key.to_owned(), Bytes::copy_from_slice(h.value.unwrap())))
                .collect();
            out.push((
                r.offset,
                r.timestamp,
                r.key.map(Bytes::copy_from_slice),
                r.value.map(Bytes::copy_from_slice),
                headers,
            ));
        }
    }
    out
}

fn kp_flat(bytes: &Bytes) -> Vec<Flat> {
    let mut buf = bytes.clone();
    let sets = kp::RecordBatchDecoder::decode_all(&mut buf).unwrap();
    let mut out = Vec::new();
    for r in sets.into_iter().flat_map(|s| s.records) {
        assert_eq!(
            (r.producer_id, r.producer_epoch),
            (PRODUCER_ID, PRODUCER_EPOCH)
        );
        assert_eq!(i64::from(r.sequence), r.offset);
        let headers = r
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone().unwrap()))
            .collect();
        out.push((r.offset, r.timestamp, r.key, r.value, headers));
    }
    out
}

fn bench_record_batch(c: &mut Criterion) {
    for value_size in VALUE_SIZES {
        let data = Data::new(value_size);
        let new_headers = data.new_headers();
        let new_records: Vec<NewRecord<'_>> = (0..RECORDS)
            .map(|i| NewRecord {
                timestamp: data.timestamps[i],
                key: Some(&data.keys[i]),
                value: Some(&data.values[i]),
                headers: &new_headers[i],
                ..NewRecord::default()
            })
            .collect();
        let kp_records = data.kp_records();
        let expected: Vec<Flat> = kp_records
            .iter()
            .map(|r| {
                let headers = r
                    .headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone().unwrap()))
                    .collect();
                (
                    r.offset,
                    r.timestamp,
                    r.key.clone(),
                    r.value.clone(),
                    headers,
                )
            })
            .collect();
        let uncompressed = krust_encode(&new_records, Compression::None, 0).len();
        let payload = data.payload_bytes();

        for compression in Compression::ALL {
            let ours = krust_encode(&new_records, compression, uncompressed);
            let theirs = kp_encode(&kp_records, compression, uncompressed);
            // Honesty checks, outside the timed loops: both decoders read
            // the same records from both encodings.
            for (who, bytes) in [("krust", &ours), ("kafka-protocol", &theirs)] {
                assert!(
                    krust_flat(bytes) == expected,
                    "krust misreads the {compression} batch {who} wrote"
                );
                assert!(
                    krust_ref_flat(bytes) == expected,
                    "krust's borrowed view misreads the {compression} batch {who} wrote"
                );
                assert!(
                    kp_flat(bytes) == expected,
                    "kafka-protocol misreads the {compression} batch {who} wrote"
                );
                assert_eq!(krust_decode(bytes), kp_decode(bytes));
                assert_eq!(krust_decode_ref(bytes), kp_decode(bytes));
            }
            if compression == Compression::None {
                assert_eq!(ours, theirs, "uncompressed encodings differ");
            }
            eprintln!(
                "SIZES value={value_size} codec={compression} records={RECORDS} \
                 payload={payload} uncompressed={uncompressed} krust={} kafka-protocol={}",
                ours.len(),
                theirs.len()
            );

            let mut group = c.benchmark_group(format!("record_batch/{value_size}B/{compression}"));
            group.throughput(Throughput::Elements(RECORDS as u64));
            group.bench_function("krust/encode", |b| {
                b.iter(|| krust_encode(black_box(&new_records), compression, uncompressed))
            });
            group.bench_function("kafka-protocol/encode", |b| {
                b.iter(|| kp_encode(black_box(&kp_records), compression, uncompressed))
            });
            for (suffix, bytes) in [("", &ours), ("-kp-bytes", &theirs)] {
                group.bench_function(format!("krust/decode{suffix}"), |b| {
                    b.iter(|| black_box(krust_decode(black_box(bytes))))
                });
                group.bench_function(format!("krust/decode-ref{suffix}"), |b| {
                    b.iter(|| black_box(krust_decode_ref(black_box(bytes))))
                });
                group.bench_function(format!("kafka-protocol/decode{suffix}"), |b| {
                    b.iter(|| black_box(kp_decode(black_box(bytes))))
                });
            }
            group.finish();
        }
    }
}

fn bench_crc32c(c: &mut Criterion) {
    let mut rng = Rng(42);
    let data: Vec<u8> = (0..(1 << 20) / 8)
        .flat_map(|_| rng.next().to_le_bytes())
        .collect();
    let mut group = c.benchmark_group("crc32c");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.bench_function(BenchmarkId::new("crc32c", "1MiB"), |b| {
        b.iter(|| crc32c::crc32c(black_box(&data)))
    });
    group.finish();
}

criterion_group!(benches, bench_record_batch, bench_crc32c);
criterion_main!(benches);
