//! The seed corpus: valid inputs for every target, made from the codec's own
//! sample messages and record batches, so the fuzzer starts past the
//! framing and reaches the message decoders at once.

use std::io;
use std::path::Path;

use bytes::{BufMut, BytesMut};
use krust_codec::consumer_protocol::{self, Assignment, Subscription};
use krust_codec::frame::{begin_frame, finish_frame};
use krust_codec::header;
use krust_codec::records::{Compression, NewHeader, NewRecord, RecordBatchBuilder};
use krust_codec::sample::SampleRng;
use krust_codec::{ApiKey, RequestBody, ResponseBody};

/// The selector and version bytes that make `api_and_version` pick
/// (`api`, `version`).
fn selector(api: ApiKey, version: i16) -> [u8; 2] {
    let index = ApiKey::ALL.iter().position(|a| *a == api).unwrap_or(0);
    let (lo, _) = api.valid_versions();
    [
        u8::try_from(index).unwrap_or(0),
        u8::try_from(version - lo + 1).unwrap_or(0),
    ]
}

/// Versions worth a seed: the oldest, the first flexible one, the newest.
fn versions(api: ApiKey) -> Vec<i16> {
    let (lo, hi) = api.valid_versions();
    let mut v = vec![lo, hi];
    if let Some(f) = api.request_flexible_versions() {
        v.push(f.clamp(lo, hi));
    }
    v.sort_unstable();
    v.dedup();
    v
}

/// Write the seed corpus of every target under `root/<target>/`.
pub fn write_seeds(root: &Path) -> io::Result<usize> {
    let mut n = 0;
    let mut put = |target: &str, name: String, data: &[u8]| -> io::Result<()> {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(name), data)?;
        n += 1;
        Ok(())
    };
    let mut rng = SampleRng::new(0x006b_7275_7374);
    for api in ApiKey::ALL {
        for version in versions(api) {
            let [s, v] = selector(api, version);
            let name = format!("{}-v{version}", api.name());
            let mut resp = BytesMut::new();
            ResponseBody::sample(api, version, &mut rng)
                .encode(&mut resp, version)
                .map_err(io::Error::other)?;
            let mut req = BytesMut::new();
            RequestBody::sample(api, version, &mut rng)
                .encode(&mut req, version)
                .map_err(io::Error::other)?;
            put(
                "response_decode",
                name.clone(),
                &[&[s, v][..], &resp].concat(),
            )?;
            put(
                "differential",
                format!("{name}-resp"),
                &[&[s, v, 1][..], &resp].concat(),
            )?;
            put(
                "differential",
                format!("{name}-req"),
                &[&[s, v, 0][..], &req].concat(),
            )?;

            let body = RequestBody::sample(api, version, &mut rng);
            let mut frame = BytesMut::new();
            let client = krust_codec::KString::from_static("fuzz");
            header::encode_request_body(&mut frame, version, 7, Some(&client), &body)
                .map_err(io::Error::other)?;
            put("request_decode", name.clone(), &frame)?;

            let mut stream = BytesMut::from(&[s, v, 5][..]);
            for correlation_id in 0..2 {
                let start = begin_frame(&mut stream);
                let resp = ResponseBody::sample(api, version, &mut rng);
                header::encode_response(&mut stream, version, correlation_id, &resp)
                    .map_err(io::Error::other)?;
                finish_frame(&mut stream, start).map_err(io::Error::other)?;
            }
            put("frame_stream", name, &stream)?;
        }
    }

    for compression in &Compression::ALL {
        let mut b = RecordBatchBuilder::new().compression(*compression);
        for r in 0..5u8 {
            let key = [b'k', r];
            let value = vec![r; usize::from(r) * 20];
            let headers = [NewHeader {
                key: "h",
                value: Some(&key[..]),
            }];
            let new = NewRecord {
                offset_delta: None,
                timestamp: 1_700_000_000_000 + i64::from(r),
                key: (r % 2 == 0).then_some(&key[..]),
                value: Some(&value),
                headers: if r == 3 { &headers[..] } else { &[] },
            };
            if b.append(&new).is_err() {
                break;
            }
        }
        if let Ok(batch) = b.build() {
            put("record_batch", format!("v2-{}", compression.name()), &batch)?;
        }
    }

    for version in 0..=consumer_protocol::SUBSCRIPTION_VERSION {
        let sub = Subscription::sample(&mut rng, version);
        let enc =
            consumer_protocol::encode_subscription(&sub, version).map_err(io::Error::other)?;
        put(
            "consumer_protocol",
            format!("subscription-v{version}"),
            &enc,
        )?;
        let a = Assignment::sample(&mut rng, version);
        let enc = consumer_protocol::encode_assignment(&a, version).map_err(io::Error::other)?;
        put("consumer_protocol", format!("assignment-v{version}"), &enc)?;
    }
    let mut tiny = BytesMut::new();
    tiny.put_i16(0);
    put("consumer_protocol", "version-only".into(), &tiny)?;
    Ok(n)
}
