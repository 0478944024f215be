//! Encodings pinned against bytes written out by hand from the protocol
//! guide (https://kafka.apache.org/protocol) and KIP-482, plus the version
//! rules of the generated code: absent fields, nulls, tagged fields.

use bytes::{Bytes, BytesMut};
use krust_codec::generated::api_versions_response::FinalizedFeatureKey;
use krust_codec::generated::fetch_response::{
    EpochEndOffset, FetchableTopicResponse, PartitionData,
};
use krust_codec::generated::metadata_request::MetadataRequestTopic;
use krust_codec::generated::*;
use krust_codec::{
    ApiKey, Decode, DecodeError, Encode, EncodeError, KString, RawTaggedField, RequestBody, header,
};

fn enc<T: Encode>(m: &T, version: i16) -> Vec<u8> {
    let mut b = BytesMut::new();
    m.encode(&mut b, version).unwrap();
    b.to_vec()
}

fn dec<T: Decode>(bytes: &[u8], version: i16) -> Result<T, DecodeError> {
    let mut b = Bytes::copy_from_slice(bytes);
    let v = T::decode(&mut b, version)?;
    assert!(b.is_empty(), "bytes left over");
    Ok(v)
}

#[test]
fn api_versions_request_v3_with_header_v2() {
    let req = ApiVersionsRequest {
        client_software_name: KString::from_static("krust"),
        client_software_version: KString::from_static("0.1"),
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    let client = KString::from_static("c");
    header::encode_request(&mut buf, 3, 7, Some(&client), &req).unwrap();
    #[rustfmt::skip]
    let want: &[u8] = &[
        0, 18,          // api key: ApiVersions
        0, 3,           // api version
        0, 0, 0, 7,     // correlation id
        0, 1, b'c',     // client id: classic i16 string even in header v2
        0,              // header tagged fields: none
        6, b'k', b'r', b'u', b's', b't', // compact string: length + 1
        4, b'0', b'.', b'1',
        0,              // body tagged fields: none
    ];
    assert_eq!(&buf[..], want);
    let (h, body) = header::decode_request(buf.freeze()).unwrap();
    assert_eq!(h.client_id.as_deref(), Some("c"));
    assert_eq!(body, RequestBody::ApiVersions(req));
}

#[test]
fn api_versions_request_v0_is_empty_and_drops_ignorable_fields() {
    let req = ApiVersionsRequest {
        client_software_name: KString::from_static("krust"),
        ..Default::default()
    };
    // ClientSoftwareName is ignorable: dropped below v3, not an error.
    assert_eq!(enc(&req, 0), Vec::<u8>::new());
    assert_eq!(enc(&req, 2), Vec::<u8>::new());
}

#[test]
fn metadata_request_v0_and_v1_nulls() {
    let req = MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: Some(KString::from_static("a")),
            ..Default::default()
        }]),
        ..Default::default()
    };
    // v0: i32 array count, i16 string.
    assert_eq!(enc(&req, 0), [0, 0, 0, 1, 0, 1, b'a']);
    assert_eq!(
        dec::<MetadataRequest>(&[0, 0, 0, 1, 0, 1, b'a'], 0).unwrap(),
        req
    );

    // Topics is nullable from v1 (null = all topics), not at v0.
    let all = MetadataRequest {
        topics: None,
        ..Default::default()
    };
    assert_eq!(enc(&all, 1), [0xff, 0xff, 0xff, 0xff]);
    let mut b = BytesMut::new();
    assert_eq!(
        all.encode(&mut b, 0),
        Err(EncodeError::NullNotAllowed {
            message: "MetadataRequest",
            field: "Topics",
            version: 0
        })
    );
    assert!(matches!(
        dec::<MetadataRequest>(&[0xff, 0xff, 0xff, 0xff], 0),
        Err(DecodeError::UnexpectedNull { version: 0, .. })
    ));
    assert_eq!(
        dec::<MetadataRequest>(&[0xff, 0xff, 0xff, 0xff], 1).unwrap(),
        all
    );

    // AllowAutoTopicCreation (v4+, default true) is not ignorable.
    let no_auto = MetadataRequest {
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    assert_eq!(enc(&no_auto, 4), [0, 0, 0, 0, 0]);
    assert!(matches!(
        no_auto.encode(&mut BytesMut::new(), 3),
        Err(EncodeError::FieldNotInVersion {
            field: "AllowAutoTopicCreation",
            version: 3,
            ..
        })
    ));
}

#[test]
fn request_header_v2_and_response_headers() {
    let h = RequestHeader {
        request_api_key: 3,
        request_api_version: 12,
        correlation_id: 0x0102_0304,
        client_id: None,
        unknown_tagged_fields: vec![RawTaggedField {
            tag: 1,
            data: Bytes::from_static(&[9]),
        }],
    };
    assert_eq!(
        enc(&h, 2),
        [0, 3, 0, 12, 1, 2, 3, 4, 0xff, 0xff, 1, 1, 1, 9]
    );
    assert_eq!(dec::<RequestHeader>(&enc(&h, 2), 2).unwrap(), h);
    // v0 has no client id (ignorable: dropped).
    let h0 = RequestHeader {
        client_id: Some(KString::from_static("x")),
        unknown_tagged_fields: vec![],
        ..h
    };
    assert_eq!(enc(&h0, 0), [0, 3, 0, 12, 1, 2, 3, 4]);

    let r = ResponseHeader {
        correlation_id: 5,
        ..Default::default()
    };
    assert_eq!(enc(&r, 0), [0, 0, 0, 5]);
    assert_eq!(enc(&r, 1), [0, 0, 0, 5, 0]);
}

#[test]
fn tagged_fields_known_and_unknown_are_kept_in_tag_order() {
    let resp = ApiVersionsResponse {
        finalized_features_epoch: 1,
        finalized_features: vec![FinalizedFeatureKey {
            name: KString::from_static("f"),
            max_version_level: 2,
            min_version_level: 1,
            ..Default::default()
        }],
        unknown_tagged_fields: vec![
            RawTaggedField {
                tag: 9,
                data: Bytes::from_static(&[0xaa]),
            },
            RawTaggedField {
                tag: 5,
                data: Bytes::new(),
            },
        ],
        ..Default::default()
    };
    #[rustfmt::skip]
    let want: &[u8] = &[
        0, 0,           // error code
        1,              // api keys: empty compact array
        0, 0, 0, 0,     // throttle time
        4,              // tagged fields: 4
        1, 8, 0, 0, 0, 0, 0, 0, 0, 1,           // tag 1 FinalizedFeaturesEpoch
        2, 8, 2, 2, b'f', 0, 2, 0, 1, 0,        // tag 2 FinalizedFeatures
        5, 0,                                   // unknown tag 5
        9, 1, 0xaa,                             // unknown tag 9
    ];
    assert_eq!(enc(&resp, 3), want);
    let back: ApiVersionsResponse = dec(want, 3).unwrap();
    assert_eq!(back.finalized_features_epoch, 1);
    assert_eq!(
        back.unknown_tagged_fields
            .iter()
            .map(|f| f.tag)
            .collect::<Vec<_>>(),
        [5, 9]
    );
    assert_eq!(enc(&back, 3), want);
    // A known tagged field must use all of its bytes.
    let mut bad = want.to_vec();
    bad[9] = 7; // size of tag 1 says 8; make the int64 short by one...
    assert!(dec::<ApiVersionsResponse>(&bad, 3).is_err());
}

#[test]
fn non_ignorable_fields_at_versions_lacking_them_are_errors() {
    let with = |p: PartitionData| FetchResponse {
        responses: vec![FetchableTopicResponse {
            partitions: vec![p],
            ..Default::default()
        }],
        ..Default::default()
    };
    // PreferredReadReplica: v11+, not ignorable.
    let m = with(PartitionData {
        preferred_read_replica: 2,
        ..Default::default()
    });
    assert!(m.encode(&mut BytesMut::new(), 11).is_ok());
    assert_eq!(
        m.encode(&mut BytesMut::new(), 10),
        Err(EncodeError::FieldNotInVersion {
            message: "PartitionData",
            field: "PreferredReadReplica",
            version: 10
        })
    );
    // DivergingEpoch: tagged, v12+.
    let m = with(PartitionData {
        diverging_epoch: EpochEndOffset {
            epoch: 3,
            end_offset: 4,
            ..Default::default()
        },
        ..Default::default()
    });
    assert!(m.encode(&mut BytesMut::new(), 12).is_ok());
    assert!(matches!(
        m.encode(&mut BytesMut::new(), 11),
        Err(EncodeError::FieldNotInVersion {
            field: "DivergingEpoch",
            ..
        })
    ));
    // At its default the field is simply absent.
    assert!(
        with(PartitionData::default())
            .encode(&mut BytesMut::new(), 4)
            .is_ok()
    );
}

#[test]
fn unsupported_versions_and_bounded_counts() {
    assert_eq!(
        dec::<MetadataRequest>(&[], 99),
        Err(DecodeError::UnsupportedVersion {
            what: "MetadataRequest",
            version: 99
        })
    );
    assert_eq!(
        MetadataRequest::default().encode(&mut BytesMut::new(), -1),
        Err(EncodeError::UnsupportedVersion {
            message: "MetadataRequest",
            version: -1
        })
    );
    // A count of 2^31-1 topics in 6 bytes is refused before any allocation.
    assert!(matches!(
        dec::<MetadataRequest>(&[0x7f, 0xff, 0xff, 0xff, 0, 0], 1),
        Err(DecodeError::InvalidLength { .. })
    ));
    assert!(matches!(
        RequestBody::decode(999, 0, &mut Bytes::new()),
        Err(DecodeError::UnknownApiKey(999))
    ));
}

#[test]
fn header_versions_per_api() {
    assert_eq!(ApiKey::ApiVersions.response_header_version(3), 0);
    assert_eq!(ApiKey::ApiVersions.request_header_version(3), 2);
    assert_eq!(ApiKey::ApiVersions.request_header_version(2), 1);
    assert_eq!(ApiKey::ControlledShutdown.request_header_version(0), 0);
    assert_eq!(ApiKey::ControlledShutdown.request_header_version(1), 1);
    assert_eq!(ApiKey::Fetch.request_header_version(12), 2);
    assert_eq!(ApiKey::Fetch.response_header_version(12), 1);
    assert_eq!(ApiKey::Fetch.response_header_version(11), 0);
    assert_eq!(ApiKey::from_i16(1), Some(ApiKey::Fetch));
    assert_eq!(ApiKey::Fetch.name(), "Fetch");
    assert_eq!(ApiKey::Produce.key(), 0);
    assert_eq!(ApiKey::from_i16(-5), None);
}

#[test]
fn fetch_response_records_are_slices_of_the_input() {
    let m = FetchResponse {
        responses: vec![FetchableTopicResponse {
            partitions: vec![PartitionData {
                records: Some(Bytes::from_static(b"batch")),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let input = Bytes::from(enc(&m, 16));
    let back = FetchResponse::decode(&mut input.clone(), 16).unwrap();
    let rec = back.responses[0].partitions[0].records.as_ref().unwrap();
    assert_eq!(&rec[..], b"batch");
    let off = rec.as_ptr() as usize - input.as_ptr() as usize;
    assert!(
        off < input.len(),
        "records must point into the input buffer"
    );
}
