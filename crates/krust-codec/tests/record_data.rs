//! What an owned decoded record holds of its batch: one `Bytes` slice, from
//! its first part present to the end of its last, and its key, value and
//! headers as spans of it (`RecordData`); and `RecordData::new` for records
//! made up rather than decoded.

use bytes::Bytes;
use krust_codec::records::{Batches, NewHeader, NewRecord, Record, RecordBatchBuilder, RecordData};

/// The records of one uncompressed batch holding `records`, and its bytes.
fn decode(records: &[NewRecord<'_>]) -> (Bytes, Vec<Record>) {
    let mut b = RecordBatchBuilder::new().base_offset(7);
    for r in records {
        b.append(r).expect("append");
    }
    let bytes = b.build().expect("build");
    let mut out = Vec::new();
    for batch in Batches::new(bytes.clone()) {
        for r in batch.expect("batch").records().expect("records") {
            out.push(r.expect("record"));
        }
    }
    (bytes, out)
}

/// Whether `part` lies within `outer` (shares its memory, not a copy).
fn within(outer: &[u8], part: &[u8]) -> bool {
    let (o, p) = (outer.as_ptr().addr(), part.as_ptr().addr());
    p >= o && p + part.len() <= o + outer.len()
}

#[test]
fn a_record_shares_one_slice_from_its_key_to_its_last_header() {
    let headers = [
        NewHeader {
            key: "h",
            value: Some(b"x"),
        },
        NewHeader {
            key: "n",
            value: None,
        },
    ];
    let (bytes, records) = decode(&[NewRecord {
        key: Some(b"key"),
        value: Some(b"value"),
        headers: &headers,
        ..NewRecord::default()
    }]);
    let r = &records[0];
    assert_eq!(r.offset, 7);
    assert_eq!(r.data.key(), Some(&b"key"[..]));
    assert_eq!(r.data.value(), Some(&b"value"[..]));
    let h: Vec<_> = r.data.headers().iter().map(|h| (h.key, h.value)).collect();
    assert_eq!(h, [("h", Some(&b"x"[..])), ("n", None)]);

    let buffer = r.data.buffer();
    assert!(within(&bytes, buffer), "the record's bytes are the batch's");
    // key, value length, value, header count, then the two headers
    // (lengths, key and value each): nothing before the key, nothing after
    // the last header.
    assert_eq!(&buffer[..3], b"key");
    assert_eq!(buffer.len(), 3 + 1 + 5 + 1 + (1 + 1 + 1 + 1) + (1 + 1 + 1));
    for part in [r.data.key_bytes().unwrap(), r.data.value_bytes().unwrap()] {
        assert!(within(buffer, &part), "key and value are not copied");
    }
    let header_value = r.data.headers().get("h").unwrap().value.unwrap();
    let shared = buffer.slice_ref(header_value);
    assert_eq!(&shared[..], b"x");
}

#[test]
fn parts_absent_from_either_end_are_left_out_of_the_slice() {
    let headers = [NewHeader {
        key: "h",
        value: Some(b"x"),
    }];
    let (_, records) = decode(&[
        NewRecord {
            value: Some(b"only the value"),
            ..NewRecord::default()
        },
        NewRecord {
            key: Some(b"only the key"),
            ..NewRecord::default()
        },
        NewRecord {
            headers: &headers,
            ..NewRecord::default()
        },
        NewRecord::default(),
        NewRecord {
            key: Some(b""),
            value: Some(b""),
            ..NewRecord::default()
        },
    ]);
    assert_eq!(&records[0].data.buffer()[..], b"only the value");
    assert_eq!(records[0].data.key(), None);
    assert_eq!(&records[1].data.buffer()[..], b"only the key");
    assert_eq!(records[1].data.value(), None);
    assert_eq!(records[2].data.buffer().len(), 4);
    assert_eq!(
        (records[2].data.key(), records[2].data.value()),
        (None, None)
    );
    assert_eq!(records[2].data.headers().len(), 1);
    // Null key, null value, no headers: nothing of the batch is held.
    assert!(records[3].data.buffer().is_empty());
    assert_eq!(records[3].data, RecordData::default());
    assert_eq!(
        (records[3].data.key(), records[3].data.value()),
        (None, None)
    );
    assert!(records[3].data.headers().is_empty());
    // Empty is not null.
    assert_eq!(records[4].data.key(), Some(&b""[..]));
    assert_eq!(records[4].data.value(), Some(&b""[..]));
    assert_eq!(records[4].data.key_bytes(), Some(Bytes::new()));
}

#[test]
fn made_up_data_equals_decoded_data_with_the_same_parts() {
    let headers = [
        NewHeader {
            key: "trace",
            value: Some(b"abc"),
        },
        NewHeader {
            key: "",
            value: None,
        },
    ];
    type Parts<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, &'a [NewHeader<'a>]);
    let cases: [Parts<'_>; 4] = [
        (Some(b"k"), Some(b"v"), &headers),
        (None, Some(b"v"), &[]),
        (Some(b"k"), None, &headers[1..]),
        (None, None, &[]),
    ];
    for (key, value, headers) in cases {
        let made = RecordData::new(key, value, headers).expect("fits");
        assert_eq!(made.key(), key);
        assert_eq!(made.value(), value);
        let h: Vec<_> = made.headers().iter().map(|h| (h.key, h.value)).collect();
        let want: Vec<_> = headers.iter().map(|h| (h.key, h.value)).collect();
        assert_eq!(h, want);
        let (_, decoded) = decode(&[NewRecord {
            key,
            value,
            headers,
            ..NewRecord::default()
        }]);
        // Equality is of the parts, not of where they lie.
        assert_eq!(decoded[0].data, made);
    }
    let a = RecordData::new(Some(b"k"), Some(b"v"), &[]).unwrap();
    assert_ne!(a, RecordData::new(Some(b"k"), Some(b"w"), &[]).unwrap());
    assert_ne!(a, RecordData::new(None, Some(b"v"), &[]).unwrap());
    assert_ne!(
        a,
        RecordData::new(Some(b"k"), Some(b"v"), &headers).unwrap()
    );
}

#[test]
fn debug_shows_the_parts() {
    let headers = [NewHeader {
        key: "h",
        value: Some(b"x"),
    }];
    let data = RecordData::new(Some(b"k"), None, &headers).unwrap();
    let shown = format!("{data:?}");
    assert!(shown.contains("key: Some(b\"k\")"), "{shown}");
    assert!(shown.contains("value: None"), "{shown}");
    assert!(shown.contains("key: \"h\""), "{shown}");
}
