//! Replays the committed fuzz corpus and every crash input found
//! (`fuzz/corpus/<target>/`, `fuzz/artifacts/<target>/`) through the fuzz
//! target bodies, so CI checks them on stable without libFuzzer, and holds
//! the decoders to DESIGN's promise that no input makes them "allocate more
//! than a small multiple of its input": a counting global allocator
//! measures the peak each input causes, which must stay within a bound
//! proportional to the input's size (plus, for compressed batches, the
//! decompression limit), and hostile inputs are rejected with no more than
//! a copy of themselves.

// A global allocator is an `unsafe trait`: this counting one, which only
// forwards to `System` and adds up sizes, is the test binary's only unsafe.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use krust_codec::frame::FrameDecoder;
use krust_codec::records::{
    Batch, Batches, Compression, DecodeOptions, NewRecord, RecordBatchBuilder,
};
use krust_codec::{ApiKey, RequestBody, ResponseBody, consumer_protocol, header};

/// Counts the bytes each thread has live and the most it had since the last
/// [`measure`]; the test threads run in parallel, so each keeps its own.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn grew(bytes: usize) {
    let bytes = isize::try_from(bytes).unwrap_or(isize::MAX);
    // try_with: never panic inside the allocator (a thread being torn down).
    let _ = LIVE.try_with(|live| {
        let now = live.get().saturating_add(bytes);
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn shrank(bytes: usize) {
    let bytes = isize::try_from(bytes).unwrap_or(isize::MAX);
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(bytes)));
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds
// GlobalAlloc's contract; the bookkeeping allocates nothing (const-initialised
// thread-locals of `Cell<isize>`, no destructor).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` and `layout` come from this allocator, i.e. System.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`, with the caller's `new_size` contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Counted as if both blocks were live for a moment (a moving
            // realloc has them both): an upper bound.
            grew(new_size);
            shrank(layout.size());
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most bytes `f` had allocated at once on this thread, above what
/// was live when it started.
fn measure(f: impl FnOnce()) -> usize {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    f();
    let peak = PEAK.with(Cell::get);
    usize::try_from(peak - base).unwrap_or(0)
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn corpus_and_crash_inputs_replay_cleanly() {
    let fuzz = fuzz_dir();
    for (target, run) in krust_fuzzing::TARGETS {
        assert!(
            fuzz.join("fuzz_targets")
                .join(format!("{target}.rs"))
                .is_file(),
            "fuzz/fuzz_targets/{target}.rs is missing"
        );
        let corpus = inputs(&fuzz.join("corpus").join(target));
        assert!(
            corpus.len() >= 5,
            "fuzz/corpus/{target} has {} inputs; run `cargo run -p krust-fuzzing --example write_seeds`",
            corpus.len()
        );
        let crashes = inputs(&fuzz.join("artifacts").join(target));
        for input in corpus.iter().chain(&crashes) {
            let data = std::fs::read(input).expect("read corpus input");
            run(&data);
        }
        eprintln!(
            "{target}: {} corpus inputs, {} crash inputs",
            corpus.len(),
            crashes.len()
        );
    }
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// `api_and_version` of krust-fuzzing's lib.rs (private there): the API and
/// version a target picks from its first two bytes.
fn api_and_version(selector: u8, version: u8) -> (ApiKey, i16) {
    let api = ApiKey::ALL[usize::from(selector) % ApiKey::ALL.len()];
    let (lo, hi) = api.valid_versions();
    let span = i16::try_from(u16::try_from(hi - lo).unwrap_or(0) + 3).unwrap_or(i16::MAX);
    (api, lo - 1 + i16::from(version) % span)
}

/// What each target decodes, and only that (the targets also re-encode to
/// check invariants, and the differential one asks kafka-protocol): the
/// decoders DESIGN bounds.
fn decode_only(target: &str, data: &[u8]) {
    match (target, data) {
        ("frame_stream", [selector, version, _, rest @ ..]) => {
            let (api, version) = api_and_version(*selector, *version);
            let decoder = FrameDecoder::new(64 * 1024);
            let mut buf = BytesMut::from(rest);
            while let Ok(Some(frame)) = decoder.decode(&mut buf) {
                let _ = header::decode_response(frame, api, version);
            }
        }
        ("response_decode", [selector, version, body @ ..]) => {
            let (api, version) = api_and_version(*selector, *version);
            let _ = ResponseBody::decode(api.key(), version, &mut Bytes::copy_from_slice(body));
        }
        ("request_decode", _) => {
            let _ = header::decode_request(Bytes::copy_from_slice(data));
        }
        ("record_batch", _) => {
            let options = DecodeOptions::new().with_max_decompressed_size(MAX_DECOMPRESSED);
            for batch in Batches::with_options(Bytes::copy_from_slice(data), options) {
                let Ok(batch) = batch else { break };
                let _ = batch.verify_crc();
                let Ok(records) = batch.records() else {
                    continue;
                };
                for record in records {
                    let Ok(record) = record else { break };
                    for header in record.data.headers() {
                        std::hint::black_box(header);
                    }
                }
                if let Batch::V2(v2) = &batch {
                    let Ok(records) = v2.records() else { continue };
                    for record in records.refs() {
                        let Ok(record) = record else { break };
                        for header in record.headers {
                            std::hint::black_box(header);
                        }
                    }
                }
            }
        }
        ("consumer_protocol", _) => {
            let bytes = Bytes::copy_from_slice(data);
            let _ = consumer_protocol::decode_subscription(bytes.clone());
            let _ = consumer_protocol::decode_assignment(bytes);
        }
        ("differential", [selector, version, direction, body @ ..]) => {
            let (api, version) = api_and_version(*selector, *version);
            let mut body = Bytes::copy_from_slice(body);
            if direction % 2 == 1 {
                let _ = ResponseBody::decode(api.key(), version, &mut body);
            } else {
                let _ = RequestBody::decode(api.key(), version, &mut body);
            }
        }
        _ => {}
    }
}

/// The record_batch target's decompression limit (lib.rs).
const MAX_DECOMPRESSED: usize = 1 << 20;

/// DESIGN: a decoder never allocates "more than a small multiple of its
/// input". The multiple: a string or bytes field decodes to a 32-byte
/// handle on the input from as little as one byte (a compact empty
/// string), and a `Vec` growing by doubling holds up to twice what it uses.
const PER_INPUT_BYTE: usize = 64;
/// Plus one message's top-level struct and an error's text.
const FIXED: usize = 8 << 10;
/// A compressed batch decodes into one decompressed buffer, which grows by
/// doubling (the old and the new one live during a move) up to the
/// decompression limit: measured at most 3.1 times its final size (gzip).
const PER_DECOMPRESSED_BYTE: usize = 4;
/// And the codec's own state: lz4's block buffers (64 KiB blocks), the
/// deflate window.
const CODEC_STATE: usize = 256 << 10;

/// What decoding an input of `len` bytes may allocate at most, when it
/// holds compressed batches (`compressed`) that decompress to
/// `decompressed` bytes (a batch that fails to decompress counts 0 here:
/// what it produced before failing is within the input's multiple).
fn bound(len: usize, compressed: bool, decompressed: usize) -> usize {
    let codec = if compressed { CODEC_STATE } else { 0 };
    PER_INPUT_BYTE * len + FIXED + codec + PER_DECOMPRESSED_BYTE * decompressed
}

/// Whether `data` holds compressed batches, and what those that decode
/// whole decompress to (what a record_batch decode holds besides the
/// input).
fn compressed_batches(data: &[u8]) -> (bool, usize) {
    let options = DecodeOptions::new().with_max_decompressed_size(MAX_DECOMPRESSED);
    let mut any = false;
    let mut total = 0;
    for batch in Batches::with_options(Bytes::copy_from_slice(data), options).map_while(Result::ok)
    {
        if batch.compression() == Compression::None {
            continue;
        }
        any = true;
        if let Batch::V2(v2) = &batch
            && let Ok(records) = v2.records()
        {
            total += records.buffer().len();
        }
    }
    (any, total)
}

/// Inputs no decoder may trust: an array count of 2^31-1 in 8 bytes (the
/// classic kafka-protocol abort), an HTTP reply where Kafka was expected,
/// nothing at all.
const HOSTILE: [&[u8]; 3] = [
    &[0, 1, 1, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0],
    b"HTTP/1.1 400 Bad Request\r\n\r\n",
    &[],
];

#[test]
fn every_decoder_allocates_at_most_a_small_multiple_of_its_input() {
    let fuzz = fuzz_dir();
    for (target, _) in krust_fuzzing::TARGETS {
        let mut files = inputs(&fuzz.join("corpus").join(target));
        files.extend(inputs(&fuzz.join("artifacts").join(target)));
        let mut all: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|f| {
                (
                    f.display().to_string(),
                    std::fs::read(f).expect("read input"),
                )
            })
            .collect();
        all.extend(
            HOSTILE
                .iter()
                .map(|h| (format!("hostile {h:02x?}"), h.to_vec())),
        );
        let mut worst = 0.0f64;
        for (name, data) in &all {
            let (compressed, decompressed) = if *target == "record_batch" {
                compressed_batches(data)
            } else {
                (false, 0)
            };
            let peak = measure(|| decode_only(target, data));
            let limit = bound(data.len(), compressed, decompressed);
            assert!(
                peak <= limit,
                "{target}: {name} ({} bytes, {decompressed} decompressed) made the decoder \
                 allocate {peak} bytes at once, over its bound of {limit}",
                data.len()
            );
            worst = worst.max(peak as f64 / limit as f64);
        }
        eprintln!(
            "{target}: {} inputs, the largest peak {:.0}% of its bound",
            all.len(),
            worst * 100.0
        );
    }
}

#[test]
fn a_decompression_bomb_stops_at_the_limit() {
    // 16 MiB of zeros in one record: a few hundred bytes (zstd) to a few
    // hundred KiB (snappy) on the wire, 16 times the target's limit.
    let value = vec![0u8; 16 << 20];
    let (_, run) = krust_fuzzing::TARGETS
        .iter()
        .find(|(t, _)| *t == "record_batch")
        .expect("record_batch target");
    for compression in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let mut builder = RecordBatchBuilder::new().compression(compression);
        builder
            .append(&NewRecord {
                value: Some(&value),
                ..NewRecord::default()
            })
            .expect("append");
        let bomb = builder.build().expect("build").to_vec();
        builder_check(&bomb, compression);
        let limit = bomb.len() + PER_DECOMPRESSED_BYTE * MAX_DECOMPRESSED + CODEC_STATE;
        for (what, peak) in [
            ("decoding", measure(|| decode_only("record_batch", &bomb))),
            ("the whole target", measure(|| run(&bomb))),
        ] {
            assert!(
                peak <= limit,
                "{compression:?}: {what} a {}-byte bomb allocated {peak} bytes at once, \
                 over {limit} ({MAX_DECOMPRESSED}-byte limit)",
                bomb.len()
            );
        }
    }
}

/// The bomb is refused as too large, not decoded.
fn builder_check(bomb: &[u8], compression: Compression) {
    let options = DecodeOptions::new().with_max_decompressed_size(MAX_DECOMPRESSED);
    let batch = Batches::with_options(Bytes::copy_from_slice(bomb), options)
        .next()
        .expect("one batch")
        .expect("the batch header decodes");
    let err = batch.records().expect_err("over the limit");
    assert!(
        matches!(err, krust_codec::DecodeError::Decompression { .. }),
        "{compression:?}: {err}"
    );
}

#[test]
fn hostile_inputs_are_rejected_without_allocating() {
    // Rejected with at most a copy of the input and an error's text:
    // nothing sized by the count an input announces.
    for (target, run) in krust_fuzzing::TARGETS {
        for input in HOSTILE {
            let peak = measure(|| run(input));
            assert!(
                peak <= input.len() + 64,
                "{target}: {input:02x?} made it allocate {peak} bytes at once"
            );
        }
    }
}

#[test]
fn an_lz4_frame_declaring_4_mib_blocks_costs_what_its_data_holds() {
    // Magic, FLG (version 1, independent blocks), BD (4 MiB blocks), header
    // checksum; one 7-byte block (six literals); the end mark. The reader
    // `lz4_flex` provides allocated twice the declared block size for this
    // (8 MiB for 21 bytes); ours gives a block room by its own size.
    let frame = Bytes::from_static(&[
        0x04, 0x22, 0x4d, 0x18, 0x60, 0x70, 0x73, 7, 0, 0, 0, 0x60, b'a', b'b', b'c', b'd', b'e',
        b'f', 0, 0, 0, 0,
    ]);
    let mut out = None;
    let peak = measure(|| out = Some(Compression::Lz4.decompress(&frame, MAX_DECOMPRESSED)));
    assert_eq!(
        out.expect("ran").expect("a valid frame").as_ref(),
        b"abcdef"
    );
    assert!(
        peak <= CODEC_STATE,
        "a {}-byte frame allocated {peak} bytes at once",
        frame.len()
    );
}
