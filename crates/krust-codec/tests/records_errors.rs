//! The exact error each kind of malformed RecordBatch v2 record gives, and
//! the unusual-but-valid encodings (non-canonical varints) a decoder must
//! still accept: pinned so that a faster record decoder cannot change what
//! a malformed batch reports.

use bytes::{BufMut, Bytes, BytesMut};
use krust_codec::DecodeError;
use krust_codec::records::{Record, RecordBatch};

/// A v2 batch around `records` (the CRC is not checked by these reads).
fn batch(base_offset: i64, first_ts: i64, attributes: i16, count: i32, records: &[u8]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i64(base_offset);
    b.put_i32(i32::try_from(49 + records.len()).unwrap());
    b.put_i32(-1); // partition leader epoch
    b.put_i8(2);
    b.put_u32(0); // crc
    b.put_i16(attributes);
    b.put_i32(count - 1);
    b.put_i64(first_ts);
    b.put_i64(first_ts.wrapping_add(7)); // max timestamp
    b.put_i64(-1);
    b.put_i16(-1);
    b.put_i32(-1);
    b.put_i32(count);
    b.put_slice(records);
    b.freeze()
}

/// Every item the records iterator yields (it ends after an error).
fn decode(
    base_offset: i64,
    first_ts: i64,
    attributes: i16,
    count: i32,
    records: &[u8],
) -> Vec<Result<Record, DecodeError>> {
    let batch =
        RecordBatch::parse(batch(base_offset, first_ts, attributes, count, records)).unwrap();
    batch.records().unwrap().collect()
}

/// The one error a batch of `count` records gives, after `ok` good records.
fn error_of(count: i32, records: &[u8], ok: usize) -> DecodeError {
    error_with(0, 0, count, records, ok)
}

fn error_with(
    base_offset: i64,
    first_ts: i64,
    count: i32,
    records: &[u8],
    ok: usize,
) -> DecodeError {
    let mut items = decode(base_offset, first_ts, 0, count, records);
    assert_eq!(items.len(), ok + 1, "{items:?}");
    for item in &items[..ok] {
        assert!(item.is_ok(), "{items:?}");
    }
    items.pop().unwrap().unwrap_err()
}

fn eof(what: &'static str, needed: usize, remaining: usize) -> DecodeError {
    DecodeError::UnexpectedEof {
        what,
        needed,
        remaining,
    }
}

fn invalid_length(what: &'static str, length: i64, remaining: usize) -> DecodeError {
    DecodeError::InvalidLength {
        what,
        length,
        remaining,
    }
}

/// A record: its length prefix (one byte, `body` < 64 bytes) and body.
fn rec(body: &[u8]) -> Vec<u8> {
    let mut out = vec![u8::try_from(body.len() * 2).unwrap()];
    out.extend_from_slice(body);
    out
}

#[test]
fn record_length_errors() {
    assert_eq!(
        error_of(1, &[0x80; 7], 0),
        DecodeError::BadVarint {
            what: "record length"
        }
    );
    assert_eq!(
        error_of(1, &[0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0], 0),
        invalid_length("record length", i64::from(i32::MIN), 2)
    );
    assert_eq!(
        error_of(1, &[0x7e, 0, 0, 0, 0, 0, 0], 0),
        eof("record", 63, 6)
    );
    // The data ends inside the second record's length.
    let mut data = rec(&[0, 0, 0, 0x06, b'a', b'b', b'c', 1, 0]);
    data.extend_from_slice(&[0x80; 4]);
    assert_eq!(error_of(2, &data, 1), eof("record length", 1, 0));
    // A five-byte length of 0: an empty body.
    assert_eq!(
        error_of(1, &[0x80, 0x80, 0x80, 0x80, 0x00, 0, 0], 0),
        eof("record attributes", 1, 0)
    );
}

#[test]
fn field_errors_inside_the_record_body() {
    let cases: Vec<(Vec<u8>, DecodeError)> = vec![
        (rec(&[0]), eof("record timestamp delta", 1, 0)),
        (rec(&[0, 0x80]), eof("record timestamp delta", 1, 0)),
        (
            rec(&[
                0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02,
            ]),
            DecodeError::BadVarint {
                what: "record timestamp delta",
            },
        ),
        (
            rec(&[
                0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0,
            ]),
            DecodeError::BadVarint {
                what: "record timestamp delta",
            },
        ),
        (
            rec(&[0, 0, 0x80, 0x80, 0x80, 0x80, 0x10]),
            DecodeError::BadVarint {
                what: "record offset delta",
            },
        ),
        (rec(&[0, 0, 0x80]), eof("record offset delta", 1, 0)),
        (
            rec(&[0, 0, 0, 0x03, 0, 0, 0]),
            invalid_length("record key", -2, 3),
        ),
        (rec(&[0, 0, 0, 0x0a, 1, 2]), eof("record key", 5, 2)),
        (rec(&[0, 0, 0]), eof("record key", 1, 0)),
        (
            rec(&[0, 0, 0, 1, 0x03, 0]),
            invalid_length("record value", -2, 1),
        ),
        (rec(&[0, 0, 0, 1, 0x04, 9]), eof("record value", 2, 1)),
        (rec(&[0, 0, 0, 1, 1]), eof("record header count", 1, 0)),
        (
            rec(&[0, 0, 0, 1, 1, 0x03]),
            invalid_length("record header count", -2, 0),
        ),
        (
            rec(&[0, 0, 0, 1, 1, 0x02, 0x01, 0x01]),
            invalid_length("header key", -1, 1),
        ),
        (
            rec(&[0, 0, 0, 1, 1, 0x02, 0x03, 0x01]),
            invalid_length("header key", -2, 1),
        ),
        (
            rec(&[0, 0, 0, 1, 1, 0x02, 0x02, 0xff, 0x01]),
            DecodeError::InvalidUtf8 { what: "header key" },
        ),
        (
            rec(&[0, 0, 0, 1, 1, 0x02, 0x04, 0xc3, 0x28, 0x01]),
            DecodeError::InvalidUtf8 { what: "header key" },
        ),
        (
            rec(&[0, 0, 0, 1, 1, 0x02, 0x02, b'a', 0x03]),
            invalid_length("header value", -2, 0),
        ),
        (
            rec(&[0, 0, 0, 1, 1, 0x02, 0x02, b'a', 0x06, 1]),
            eof("header value", 3, 1),
        ),
        (
            rec(&[0, 0, 0, 1, 1, 0x02, 0x02, b'a']),
            eof("header value", 1, 0),
        ),
        (
            rec(&[0, 0, 0, 1, 1, 0x04, 0x02, b'a', 0x01]),
            eof("header key", 1, 0),
        ),
        (
            rec(&[0, 0, 0, 1, 1, 0x02, 0x02, b'a', 0x01, 0xaa]),
            DecodeError::TrailingBytes {
                what: "record",
                remaining: 1,
            },
        ),
        (
            rec(&[0, 0, 0, 1, 1, 0, 0xaa, 0xbb]),
            DecodeError::TrailingBytes {
                what: "record",
                remaining: 2,
            },
        ),
    ];
    for (data, expected) in cases {
        let mut padded = data.clone();
        // The record count check wants 7 bytes per declared record.
        padded.resize(padded.len().max(7), 0);
        assert_eq!(error_of(1, &padded, 0), expected, "record {data:02x?}");
    }
}

#[test]
fn offset_and_timestamp_overflow() {
    assert_eq!(
        error_with(i64::MAX, 0, 1, &rec(&[0, 0, 0x02, 1, 1, 0]), 0),
        DecodeError::InvalidValue {
            what: "record offset",
            detail: "base offset + delta overflows".to_owned(),
        }
    );
    assert_eq!(
        error_with(0, i64::MAX, 1, &rec(&[0, 0x02, 0, 1, 1, 0]), 0),
        DecodeError::InvalidValue {
            what: "record timestamp",
            detail: "first timestamp + delta overflows".to_owned(),
        }
    );
    // Both at once: the offset is reported.
    assert_eq!(
        error_with(i64::MAX, i64::MAX, 1, &rec(&[0, 0x02, 0x02, 1, 1, 0]), 0),
        DecodeError::InvalidValue {
            what: "record offset",
            detail: "base offset + delta overflows".to_owned(),
        }
    );
    // A trailing byte is reported before an overflow.
    assert_eq!(
        error_with(i64::MAX, 0, 1, &rec(&[0, 0, 0x02, 1, 1, 0, 0]), 0),
        DecodeError::TrailingBytes {
            what: "record",
            remaining: 1,
        }
    );
    // With log-append time the delta is not used, so it cannot overflow.
    let items = decode(0, i64::MAX - 7, 0x08, 1, &rec(&[0, 0x02, 0, 1, 1, 0]));
    let r = items[0].as_ref().unwrap();
    assert_eq!(r.timestamp, i64::MAX);
    // Negative deltas are fine.
    let items = decode(10, 100, 0, 1, &rec(&[0, 0x03, 0x03, 1, 1, 0]));
    let r = items[0].as_ref().unwrap();
    assert_eq!((r.offset, r.timestamp), (8, 98));
}

#[test]
fn bytes_after_the_last_record_are_an_error_after_it() {
    let mut data = rec(&[0, 0, 0, 1, 1, 0]);
    data.extend_from_slice(&[1, 2]);
    let items = decode(0, 0, 0, 1, &data);
    assert_eq!(items.len(), 2);
    assert!(items[0].is_ok());
    assert_eq!(
        items[1],
        Err(DecodeError::TrailingBytes {
            what: "record batch records",
            remaining: 2,
        })
    );
}

#[test]
fn an_error_ends_the_iteration() {
    let mut data = rec(&[0, 0, 0, 1, 1, 0x03]);
    data.extend(rec(&[0, 0, 0, 1, 1, 0]));
    let batch = RecordBatch::parse(batch(0, 0, 0, 2, &data)).unwrap();
    let mut records = batch.records().unwrap();
    assert!(records.next().unwrap().is_err());
    assert!(records.next().is_none());
    assert!(records.next().is_none());
}

#[test]
fn non_canonical_varints_are_read() {
    // Key length 1 in four bytes, value length 2 in two, offset delta 3 in
    // five, a ten-byte timestamp delta of i64::MIN, one header.
    let body: Vec<u8> = [
        &[0][..],
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
        &[0x86, 0x80, 0x80, 0x80, 0x00],
        &[0x82, 0x80, 0x80, 0x00, b'k'],
        &[0x84, 0x00, b'v', b'w'],
        &[0x82, 0x00],
        &[0x82, 0x80, 0x00, b'h', 0x81, 0x80, 0x00],
    ]
    .concat();
    // A five-byte record length.
    let len = u8::try_from(body.len() * 2).unwrap();
    assert!(len < 0x80);
    let mut data = vec![len | 0x80, 0x80, 0x80, 0x80, 0x00];
    data.extend_from_slice(&body);
    let items = decode(100, 0, 0, 1, &data);
    assert_eq!(items.len(), 1, "{items:?}");
    let r = items[0].as_ref().unwrap();
    assert_eq!(r.offset, 103);
    assert_eq!(r.timestamp, i64::MIN);
    assert_eq!(r.data.key(), Some(&b"k"[..]));
    assert_eq!(r.data.value(), Some(&b"vw"[..]));
    let headers: Vec<_> = r.data.headers().iter().collect();
    assert_eq!(headers.len(), 1);
    assert_eq!(headers[0].key, "h");
    assert_eq!(headers[0].value, None);
}

#[test]
fn null_and_empty_fields() {
    let data = rec(&[0, 0, 0, 1, 0, 0x02, 0, 1]);
    let items = decode(0, 0, 0, 1, &data);
    let r = items[0].as_ref().unwrap();
    assert_eq!(r.data.key(), None);
    assert_eq!(r.data.value(), Some(&b""[..]));
    let headers: Vec<_> = r.data.headers().iter().collect();
    assert_eq!(headers.len(), 1);
    assert_eq!(headers[0].key, "");
    assert_eq!(headers[0].value, None);
}

proptest::proptest! {
    /// However the headers lie, `declared_records` never says more than
    /// the bytes could hold records of the smallest size (7 bytes), and
    /// never panics: a v2 header with any record count and batch length,
    /// followed by anything.
    #[test]
    fn declared_records_never_exceeds_what_the_bytes_hold(
        data in proptest::collection::vec(proptest::num::u8::ANY, 0..400),
        count in proptest::num::i32::ANY,
        length in proptest::num::i32::ANY,
    ) {
        let mut data = data;
        if data.len() >= 61 {
            let own = i32::try_from(data.len() - 12).unwrap_or(0);
            data[8..12].copy_from_slice(&(if length % 2 == 0 { own } else { length }).to_be_bytes());
            data[16] = 2;
            data[57..61].copy_from_slice(&count.to_be_bytes());
        }
        let len = data.len();
        let declared = krust_codec::records::Batches::new(Bytes::from(data)).declared_records();
        proptest::prop_assert!(declared <= len / 7);
    }
}
