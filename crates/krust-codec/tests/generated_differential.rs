//! Differential test against the `kafka-protocol` crate (an independent
//! generator over Kafka's schemas): for every API and version both know,
//! our random messages must decode there and re-encode to the same bytes, and
//! what it encodes we must decode and re-encode byte for byte.
//!
//! kafka-protocol 0.18 follows an older Kafka than our schemas (4.4.0, with
//! the versions 4.0 removed merged back from 1eb7644349c), so only the
//! versions both support are compared, and a version that either side's
//! schema still calls unstable may legitimately differ (listed below).

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey as KpApiKey, RequestKind, ResponseKind};
use krust_codec::sample::SampleRng;
use krust_codec::{ApiKey, RequestBody, ResponseBody};

const SEEDS: u64 = 16;

/// Whether the two schema snapshots disagree on this message: kafka-protocol
/// 0.18's ApiKey table lists OffsetCommit and OffsetFetch v10 (topic ids),
/// but its messages stop at v9, as its Kafka still called v10 unstable; and
/// InitProducerId v6 (two-phase commit, KIP-939), which Kafka 4.4.0 still
/// calls unstable, is in its table but not in its message.
fn known_divergence(api: ApiKey, version: i16) -> bool {
    match api {
        ApiKey::OffsetCommit | ApiKey::OffsetFetch => version == 10,
        ApiKey::InitProducerId => version == 6,
        _ => false,
    }
}

#[test]
fn our_encodings_round_trip_through_kafka_protocol() {
    let mut compared = 0;
    let mut failures = Vec::new();
    for api in ApiKey::ALL {
        let Ok(kp) = KpApiKey::try_from(api.key()) else {
            continue;
        };
        let (lo, hi) = api.valid_versions();
        let kr = kp.valid_versions();
        for version in lo.max(kr.min)..=hi.min(kr.max) {
            if known_divergence(api, version) {
                continue;
            }
            for seed in 0..SEEDS {
                let mut rng = SampleRng::new(seed);
                let req = RequestBody::sample(api, version, &mut rng);
                let mut ours = BytesMut::new();
                req.encode(&mut ours, version).unwrap();
                let ours = ours.freeze();
                let theirs = RequestKind::decode(kp, &mut ours.clone(), version).and_then(|m| {
                    let mut b = BytesMut::new();
                    m.encode(&mut b, version)?;
                    Ok(b.freeze())
                });
                compare(
                    &mut failures,
                    &format!("{api} v{version} request seed {seed}"),
                    &ours,
                    theirs,
                );

                let resp = ResponseBody::sample(api, version, &mut rng);
                let mut ours = BytesMut::new();
                resp.encode(&mut ours, version).unwrap();
                let ours = ours.freeze();
                let theirs = ResponseKind::decode(kp, &mut ours.clone(), version).and_then(|m| {
                    let mut b = BytesMut::new();
                    m.encode(&mut b, version)?;
                    Ok(b.freeze())
                });
                compare(
                    &mut failures,
                    &format!("{api} v{version} response seed {seed}"),
                    &ours,
                    theirs,
                );
                compared += 2;
            }
        }
    }
    assert!(compared > 1000, "only {compared} comparisons");
    assert!(
        failures.is_empty(),
        "{} of {compared} differ:\n{}",
        failures.len(),
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn kafka_protocol_defaults_decode_here() {
    for api in ApiKey::ALL {
        let Ok(kp) = KpApiKey::try_from(api.key()) else {
            continue;
        };
        let (lo, hi) = api.valid_versions();
        let kr = kp.valid_versions();
        for version in lo.max(kr.min)..=hi.min(kr.max) {
            if known_divergence(api, version) {
                continue;
            }
            // kafka-protocol cannot sample: feed it one of ours, take what it
            // encodes, and check that we decode and re-encode that exactly.
            let mut ours = BytesMut::new();
            let mut rng = SampleRng::new(1);
            RequestBody::sample(api, version, &mut rng)
                .encode(&mut ours, version)
                .unwrap();
            let theirs = RequestKind::decode(kp, &mut ours.freeze(), version).unwrap();
            let mut b = BytesMut::new();
            theirs.encode(&mut b, version).unwrap();
            let b: Bytes = b.freeze();
            let back = RequestBody::decode(api.key(), version, &mut b.clone()).unwrap();
            let mut again = BytesMut::new();
            back.encode(&mut again, version).unwrap();
            assert_eq!(again.freeze(), b, "{api} v{version}");
        }
    }
}

/// Record a failure unless kafka-protocol decoded `ours` and re-encoded it
/// to the same bytes.
fn compare<E: std::fmt::Display>(
    failures: &mut Vec<String>,
    what: &str,
    ours: &Bytes,
    theirs: Result<Bytes, E>,
) {
    match theirs {
        Ok(b) if b == *ours => {}
        Ok(b) => failures.push(format!(
            "{what}: re-encoded differently\n ours {ours:?}\n kp   {b:?}"
        )),
        Err(e) => failures.push(format!("{what}: kafka-protocol cannot decode: {e:#}")),
    }
}
