//! Fuzz target bodies for the krust codec.
//!
//! Each function takes arbitrary bytes and must never panic, abort or
//! allocate more than a small multiple of its input; where decoding succeeds
//! it also checks an invariant (re-encoding is stable, a frame stream parses
//! the same however it is split). `fuzz/` wraps each in a libFuzzer target,
//! and `tests/corpus_replay.rs` runs the committed corpus and every crash
//! input through the same functions on stable, so CI covers them.
#![deny(missing_docs)]

mod differential;
mod seeds;

pub use differential::differential;
pub use seeds::write_seeds;

use bytes::{Bytes, BytesMut};
use krust_codec::consumer_protocol;
use krust_codec::frame::{FrameDecoder, FrameError};
use krust_codec::header;
use krust_codec::records::{
    Batch, Batches, DecodeOptions, NewHeader, NewRecord, Record, RecordBatch, RecordBatchBuilder,
};
use krust_codec::{ApiKey, RequestBody, ResponseBody};

/// A fuzz target body.
pub type Target = fn(&[u8]);

/// Every fuzz target, by the name of its `fuzz/fuzz_targets/` file.
pub const TARGETS: &[(&str, Target)] = &[
    ("frame_stream", frame_stream),
    ("response_decode", response_decode),
    ("request_decode", request_decode),
    ("record_batch", record_batch),
    ("consumer_protocol", consumer_protocol),
    ("differential", differential),
];

/// Largest decompressed batch the record target allows: small, so a
/// decompression bomb is caught by the limit rather than by the fuzzer's
/// memory limit.
const MAX_DECOMPRESSED: usize = 1 << 20;

/// Pick an API and a version (possibly one past either end of its range)
/// from two bytes.
fn api_and_version(selector: u8, version: u8) -> (ApiKey, i16) {
    let api = ApiKey::ALL[usize::from(selector) % ApiKey::ALL.len()];
    let (lo, hi) = api.valid_versions();
    let span = i16::try_from(u16::try_from(hi - lo).unwrap_or(0) + 3).unwrap_or(i16::MAX);
    (api, lo - 1 + i16::from(version) % span)
}

/// Encode a decoded body again and check that decoding that encoding and
/// encoding once more is a fixed point (values such as NaN or a bool sent as
/// 2 are not canonical, so the first re-encoding may differ from the input).
fn assert_stable_response(body: &ResponseBody, version: i16) {
    let mut first = BytesMut::new();
    body.encode(&mut first, version)
        .expect("a decoded response encodes at its version");
    let first = first.freeze();
    let again = ResponseBody::decode(body.api_key().key(), version, &mut first.clone())
        .expect("our own encoding decodes");
    let mut second = BytesMut::new();
    again.encode(&mut second, version).expect("re-encode");
    assert_eq!(first, second, "{} v{version} response", body.api_key());
}

/// A stream of response frames cut into chunks: frames must come out the
/// same whatever the chunking, and each frame is decoded as a response.
pub fn frame_stream(data: &[u8]) {
    let [selector, version, chunk, rest @ ..] = data else {
        return;
    };
    let (api, version) = api_and_version(*selector, *version);
    let decoder = FrameDecoder::new(64 * 1024);
    let whole = collect_frames(&decoder, rest, rest.len().max(1));
    let chunked = collect_frames(&decoder, rest, usize::from(*chunk).max(1));
    assert_eq!(whole, chunked, "frames depend on how the stream was split");
    for frame in whole.0 {
        let _ = header::response_correlation_id(&frame);
        if let Ok((_, body)) = header::decode_response(frame, api, version) {
            assert_stable_response(&body, version);
        }
    }
}

/// The frames read, and the kind of error that stopped the stream (its text
/// may quote more or fewer bytes depending on how much was buffered).
type Frames = (Vec<Bytes>, Option<std::mem::Discriminant<FrameError>>);

fn collect_frames(decoder: &FrameDecoder, stream: &[u8], chunk: usize) -> Frames {
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(e) => return (frames, Some(std::mem::discriminant(&e))),
            }
        }
    }
    (frames, None)
}

/// A response body decoded by (API key, version) from the first two bytes.
pub fn response_decode(data: &[u8]) {
    let [selector, version, body @ ..] = data else {
        return;
    };
    let (api, version) = api_and_version(*selector, *version);
    let mut buf = Bytes::copy_from_slice(body);
    if let Ok(body) = ResponseBody::decode(api.key(), version, &mut buf) {
        assert_stable_response(&body, version);
    }
}

/// A whole request (header then body), as a broker would read it.
pub fn request_decode(data: &[u8]) {
    let Ok((header, body)) = header::decode_request(Bytes::copy_from_slice(data)) else {
        return;
    };
    let version = header.request_api_version;
    let mut first = BytesMut::new();
    body.encode(&mut first, version)
        .expect("a decoded request encodes at its version");
    let first = first.freeze();
    let again = RequestBody::decode(header.request_api_key, version, &mut first.clone())
        .expect("our own encoding decodes");
    let mut second = BytesMut::new();
    again.encode(&mut second, version).expect("re-encode");
    assert_eq!(first, second, "{} v{version} request", body.api_key());
}

/// The records of a Fetch response: every batch and record iterated with
/// decompression bounded; a v2 batch that decodes whole is re-encoded and
/// must read back the same; the borrowed view of a v2 batch's records must
/// yield what the owned one does.
pub fn record_batch(data: &[u8]) {
    let options = DecodeOptions::new().with_max_decompressed_size(MAX_DECOMPRESSED);
    let batches = Batches::with_options(Bytes::copy_from_slice(data), options);
    // What a consumer reserves for: bounded by the bytes, whatever they say.
    assert!(batches.declared_records() <= data.len() / 7);
    for batch in batches {
        let Ok(batch) = batch else { break };
        let _ = batch.verify_crc();
        if let Batch::V2(v2) = &batch {
            krust_codec::sample::views_agree(v2);
        }
        let Ok(records) = batch.records() else {
            continue;
        };
        let mut all = Vec::new();
        for record in records {
            let Ok(record) = record else { break };
            all.push(record);
        }
        if let Batch::V2(v2) = &batch {
            if all.len() == usize::try_from(v2.record_count()).unwrap_or(0) {
                reencode_v2(v2, &all, options);
            }
        }
    }
}

fn reencode_v2(batch: &RecordBatch, records: &[Record], options: DecodeOptions) {
    if records.is_empty()
        || batch.is_control()
        || records.windows(2).any(|w| w[0].offset >= w[1].offset)
    {
        return;
    }
    let mut builder = RecordBatchBuilder::new()
        .base_offset(batch.base_offset())
        .compression(batch.compression())
        .timestamp_type(batch.timestamp_type())
        .transactional(batch.is_transactional())
        .producer(
            batch.producer_id(),
            batch.producer_epoch(),
            batch.base_sequence(),
        );
    for record in records {
        let Some(delta) = record
            .offset
            .checked_sub(batch.base_offset())
            .and_then(|d| i32::try_from(d).ok())
        else {
            return;
        };
        let new_headers: Vec<NewHeader<'_>> = record
            .data
            .headers()
            .iter()
            .map(|h| NewHeader {
                key: h.key,
                value: h.value,
            })
            .collect();
        let new = NewRecord {
            offset_delta: Some(delta),
            timestamp: record.timestamp,
            key: record.data.key(),
            value: record.data.value(),
            headers: &new_headers,
        };
        if builder.append(&new).is_err() {
            return;
        }
    }
    let Ok(encoded) = builder.build() else { return };
    let mut reread = Vec::new();
    for b in Batches::with_options(encoded, options) {
        let b = b.expect("our own batch decodes");
        for r in b.records().expect("our own batch decompresses") {
            reread.push(r.expect("our own record decodes"));
        }
    }
    assert_eq!(reread.len(), records.len());
    for (a, b) in reread.iter().zip(records) {
        assert_eq!(
            (a.offset, a.data.key(), a.data.value(), a.data.headers()),
            (b.offset, b.data.key(), b.data.value(), b.data.headers())
        );
        if batch.timestamp_type() == krust_codec::records::TimestampType::CreateTime {
            assert_eq!(a.timestamp, b.timestamp);
        }
    }
}

/// Consumer-protocol Subscription and Assignment from JoinGroup / SyncGroup
/// metadata.
pub fn consumer_protocol(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    if let Ok((version, sub)) = consumer_protocol::decode_subscription(bytes.clone()) {
        let enc = consumer_protocol::encode_subscription(&sub, version).expect("encode");
        let (v2, back) = consumer_protocol::decode_subscription(enc).expect("decode own");
        assert_eq!((v2, &back), (version, &sub));
    }
    if let Ok((version, a)) = consumer_protocol::decode_assignment(bytes) {
        let enc = consumer_protocol::encode_assignment(&a, version).expect("encode");
        let (v2, back) = consumer_protocol::decode_assignment(enc).expect("decode own");
        assert_eq!((v2, &back), (version, &a));
    }
}
