//! Differential target: bytes that both our decoder and the `kafka-protocol`
//! crate accept must re-encode to the same bytes on both sides.
//!
//! kafka-protocol is only given bytes our bounded decoder has already
//! accepted: fed raw fuzz input, its array decoders would trust counts read
//! off the wire and abort the process on allocation (the reason it is an
//! oracle here and not our decoder).

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey as KpApiKey, RequestKind, ResponseKind};
use krust_codec::{ApiKey, RequestBody, ResponseBody};

use crate::api_and_version;

/// Kafka changed ReadShareGroupStateSummaryResponse v0 (adding LeaderEpoch)
/// while share groups were unreleased; kafka-protocol has the later schema.
fn known_divergence(api: ApiKey, version: i16, response: bool) -> bool {
    response && api == ApiKey::ReadShareGroupStateSummary && version == 0
}

/// Input: API selector, version, direction (even: request body, odd:
/// response body), then the body.
pub fn differential(data: &[u8]) {
    let [selector, version, direction, body @ ..] = data else {
        return;
    };
    let (api, version) = api_and_version(*selector, *version);
    let response = direction % 2 == 1;
    let Ok(kp) = KpApiKey::try_from(api.key()) else {
        return;
    };
    let range = kp.valid_versions();
    if version < range.min || version > range.max || known_divergence(api, version, response) {
        return;
    }
    let input = Bytes::copy_from_slice(body);
    let mut ours = BytesMut::new();
    let mut theirs = BytesMut::new();
    if response {
        let Ok(msg) = ResponseBody::decode(api.key(), version, &mut input.clone()) else {
            return;
        };
        let Ok(kp_msg) = ResponseKind::decode(kp, &mut input.clone(), version) else {
            return;
        };
        msg.encode(&mut ours, version).expect("ours re-encodes");
        kp_msg
            .encode(&mut theirs, version)
            .expect("kafka-protocol re-encodes");
    } else {
        let Ok(msg) = RequestBody::decode(api.key(), version, &mut input.clone()) else {
            return;
        };
        let Ok(kp_msg) = RequestKind::decode(kp, &mut input.clone(), version) else {
            return;
        };
        msg.encode(&mut ours, version).expect("ours re-encodes");
        kp_msg
            .encode(&mut theirs, version)
            .expect("kafka-protocol re-encodes");
    }
    // kafka-protocol 0.18 keeps a tagged field whose tag is above i32::MAX
    // but re-encodes only the count, not the field: its bytes are then not a
    // valid message at all. Disagreement is only judged on valid output.
    let theirs_valid = if response {
        ResponseBody::decode(api.key(), version, &mut theirs.clone().freeze()).is_ok()
    } else {
        RequestBody::decode(api.key(), version, &mut theirs.clone().freeze()).is_ok()
    };
    if !theirs_valid {
        return;
    }
    assert_eq!(
        ours,
        theirs,
        "{api} v{version} {}: the two codecs disagree",
        if response { "response" } else { "request" }
    );
}
