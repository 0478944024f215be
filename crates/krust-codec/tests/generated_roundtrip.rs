//! Property round trips of every generated message at every version:
//! sample -> encode -> decode gives the same value, re-encoding gives the
//! same bytes, every strict prefix fails cleanly, and random bytes never make
//! a decoder panic.

use bytes::{Bytes, BytesMut};
use krust_codec::generated::*;
use krust_codec::sample::SampleRng;
use krust_codec::{ApiKey, KString, Message, RequestBody, ResponseBody, header};

const SEEDS: u64 = 64;
/// Seeds for which every strict prefix is tried (quadratic in the length).
const PREFIX_SEEDS: u64 = 8;

fn check_bytes<T>(
    name: &str,
    version: i16,
    value: &T,
    bytes: &Bytes,
    decode: impl Fn(&mut Bytes) -> Result<T, krust_codec::DecodeError>,
    encode: impl Fn(&T) -> BytesMut,
    prefixes: bool,
) where
    T: PartialEq + std::fmt::Debug,
{
    let mut input = bytes.clone();
    let back = decode(&mut input)
        .unwrap_or_else(|e| panic!("{name} v{version}: decode failed: {e}\n{value:#?}"));
    assert!(
        input.is_empty(),
        "{name} v{version}: {} bytes left",
        input.len()
    );
    assert_eq!(&back, value, "{name} v{version}: decoded value differs");
    assert_eq!(
        &encode(&back)[..],
        &bytes[..],
        "{name} v{version}: re-encoding differs"
    );
    if prefixes {
        for cut in 0..bytes.len() {
            let mut p = bytes.slice(..cut);
            assert!(
                decode(&mut p).is_err(),
                "{name} v{version}: prefix of {cut}/{} bytes decoded",
                bytes.len()
            );
        }
    }
}

#[test]
fn every_request_and_response_at_every_version() {
    let mut checked = 0;
    let mut total_bytes = 0;
    for api in ApiKey::ALL {
        let (lo, hi) = api.valid_versions();
        for version in lo..=hi {
            for seed in 0..SEEDS {
                let mut rng = SampleRng::new(seed * 7919 + api.key() as u64 * 31 + version as u64);
                let prefixes = seed < PREFIX_SEEDS;

                let req = RequestBody::sample(api, version, &mut rng);
                let mut buf = BytesMut::new();
                req.encode(&mut buf, version)
                    .unwrap_or_else(|e| panic!("{api} v{version} request: {e}"));
                total_bytes += buf.len();
                let enc = |m: &RequestBody| {
                    let mut b = BytesMut::new();
                    m.encode(&mut b, version).unwrap();
                    b
                };
                check_bytes(
                    api.name(),
                    version,
                    &req,
                    &buf.freeze(),
                    |b| RequestBody::decode(api.key(), version, b),
                    enc,
                    prefixes,
                );

                let resp = ResponseBody::sample(api, version, &mut rng);
                let mut buf = BytesMut::new();
                resp.encode(&mut buf, version)
                    .unwrap_or_else(|e| panic!("{api} v{version} response: {e}"));
                let enc = |m: &ResponseBody| {
                    let mut b = BytesMut::new();
                    m.encode(&mut b, version).unwrap();
                    b
                };
                check_bytes(
                    api.name(),
                    version,
                    &resp,
                    &buf.freeze(),
                    |b| ResponseBody::decode(api.key(), version, b),
                    enc,
                    prefixes,
                );
                checked += 2;
            }
        }
    }
    assert!(checked > 1000);
    // The samples are not trivially empty: on average well over 16 bytes.
    assert!(
        total_bytes > checked / 2 * 16,
        "{total_bytes} bytes for {checked} messages"
    );
}

fn roundtrip_message<M: Message + PartialEq + std::fmt::Debug>(
    sample: impl Fn(&mut SampleRng, i16) -> M,
) {
    let (lo, hi) = M::VALID_VERSIONS;
    for version in lo..=hi {
        for seed in 0..SEEDS {
            let mut rng = SampleRng::new(seed);
            let m = sample(&mut rng, version);
            let mut buf = BytesMut::new();
            m.encode(&mut buf, version)
                .unwrap_or_else(|e| panic!("{} v{version}: {e}", M::NAME));
            let enc = |m: &M| {
                let mut b = BytesMut::new();
                m.encode(&mut b, version).unwrap();
                b
            };
            check_bytes(
                M::NAME,
                version,
                &m,
                &buf.freeze(),
                |b| M::decode(b, version),
                enc,
                seed < PREFIX_SEEDS,
            );
        }
    }
}

#[test]
fn headers_and_data_schemas() {
    roundtrip_message(RequestHeader::sample);
    roundtrip_message(ResponseHeader::sample);
    roundtrip_message(ConsumerProtocolAssignment::sample);
    roundtrip_message(ConsumerProtocolSubscription::sample);
    roundtrip_message(DefaultPrincipalData::sample);
    roundtrip_message(KRaftVersionRecord::sample);
    roundtrip_message(LeaderChangeMessage::sample);
    roundtrip_message(SnapshotFooterRecord::sample);
    roundtrip_message(SnapshotHeaderRecord::sample);
    roundtrip_message(VotersRecord::sample);
}

#[test]
fn whole_requests_and_responses_with_headers() {
    let client = KString::from_static("krust-test");
    for api in ApiKey::ALL {
        let (lo, hi) = api.valid_versions();
        for version in lo..=hi {
            let mut rng = SampleRng::new(api.key() as u64 * 1000 + version as u64);
            let req = RequestBody::sample(api, version, &mut rng);
            let mut buf = BytesMut::new();
            header::encode_request_body(&mut buf, version, 42, Some(&client), &req).unwrap();
            let (h, back) = header::decode_request(buf.freeze())
                .unwrap_or_else(|e| panic!("{api} v{version}: {e}"));
            assert_eq!(
                (h.request_api_key, h.request_api_version, h.correlation_id),
                (api.key(), version, 42)
            );
            let want_client = if api.request_header_version(version) >= 1 {
                Some(client.clone())
            } else {
                Some(KString::default())
            };
            assert_eq!(h.client_id, want_client, "{api} v{version}");
            assert_eq!(back, req);

            let resp = ResponseBody::sample(api, version, &mut rng);
            let mut buf = BytesMut::new();
            header::encode_response(&mut buf, version, 42, &resp).unwrap();
            let frame = buf.freeze();
            assert_eq!(header::response_correlation_id(&frame).unwrap(), 42);
            let (h, back) = header::decode_response(frame, api, version)
                .unwrap_or_else(|e| panic!("{api} v{version}: {e}"));
            assert_eq!(h.correlation_id, 42);
            assert_eq!(back, resp);
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = SampleRng::new(99);
    for api in ApiKey::ALL {
        let (lo, hi) = api.valid_versions();
        for version in lo - 1..=hi + 1 {
            for _ in 0..64 {
                let len = rng.below(96) as usize;
                let data: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
                let data = Bytes::from(data);
                let _ = RequestBody::decode(api.key(), version, &mut data.clone());
                let _ = ResponseBody::decode(api.key(), version, &mut data.clone());
                let _ = header::decode_request(data.clone());
                let _ = header::decode_response(data, api, version);
            }
            // Mutations of a valid encoding reach much deeper than noise.
            let req = RequestBody::sample(api, version.clamp(lo, hi), &mut rng);
            let mut buf = BytesMut::new();
            req.encode(&mut buf, version.clamp(lo, hi)).unwrap();
            for _ in 0..64 {
                let mut bytes = buf.to_vec();
                if bytes.is_empty() {
                    break;
                }
                for _ in 0..1 + rng.below(3) {
                    let i = rng.below(bytes.len() as u64) as usize;
                    bytes[i] = rng.next_u64() as u8;
                }
                let _ =
                    RequestBody::decode(api.key(), version.clamp(lo, hi), &mut Bytes::from(bytes));
            }
        }
    }
    let _ = RequestBody::decode(-1, 0, &mut Bytes::new());
    let _ = RequestBody::decode(i16::MAX, 0, &mut Bytes::from_static(&[0xff; 8]));
}
