//! ApiVersions negotiation (KIP-35, KIP-511): on every new connection the
//! client asks the broker which versions of each API it supports, then
//! encodes each request at the highest version both sides know.
//!
//! KIP-511: a broker that does not know the ApiVersions version it is asked
//! for answers UNSUPPORTED_VERSION with a v0-encoded body (listing at least
//! its ApiVersions range), and the client retries at a version it supports.
//! librdkafka's mock cluster answers v3 this way.

use std::collections::BTreeMap;

use bytes::Bytes;
use krust_codec::generated::{ApiVersionsRequest, ApiVersionsResponse};
use krust_codec::wire::Decode;
use krust_codec::{ApiKey, ErrorCode, KString, ResponseHeader};

use crate::error::{Error, ProtocolViolation};

/// The ApiVersions version tried first.
pub const API_VERSIONS_FIRST: i16 = 3;

/// The versions a broker supports, per API key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiVersions {
    ranges: BTreeMap<i16, (i16, i16)>,
}

impl ApiVersions {
    /// A table from `(api key, min, max)` triples.
    pub fn from_ranges(ranges: impl IntoIterator<Item = (i16, i16, i16)>) -> ApiVersions {
        ApiVersions {
            ranges: ranges
                .into_iter()
                .map(|(k, min, max)| (k, (min, max)))
                .collect(),
        }
    }

    fn from_response(resp: &ApiVersionsResponse) -> ApiVersions {
        Self::from_ranges(
            resp.api_keys
                .iter()
                .map(|a| (a.api_key, a.min_version, a.max_version)),
        )
    }

    /// The broker's `(min, max)` for `api`, if it supports it at all.
    pub fn range(&self, api: ApiKey) -> Option<(i16, i16)> {
        self.ranges.get(&api.key()).copied()
    }

    /// Every `(api key, (min, max))` the broker announced, by key.
    pub fn iter(&self) -> impl Iterator<Item = (i16, (i16, i16))> + '_ {
        self.ranges.iter().map(|(k, r)| (*k, *r))
    }

    /// The highest version of `api` within `ours`, what krust implements
    /// ([`implemented`]) and the broker's range, or an error naming the API
    /// and both ranges.
    pub fn negotiate(&self, api: ApiKey, ours: (i16, i16)) -> Result<i16, Error> {
        let (lo, hi) = implemented(api);
        let ours = (ours.0.max(lo), ours.1.min(hi));
        let theirs = self.range(api);
        let unsupported = || Error::UnsupportedVersion {
            api,
            broker: None,
            ours,
            theirs,
        };
        let (min, max) = theirs.ok_or_else(unsupported)?;
        let hi = max.min(ours.1);
        if hi < min.max(ours.0) {
            return Err(unsupported());
        }
        Ok(hi)
    }
}

/// The versions of `api` krust's code implements: the codec's range, cut
/// below the first newer version whose meaning krust does not handle yet.
/// Every negotiation goes through it, so refreshing the schemas (which
/// raises the codec's newest versions) never starts sending a version whose
/// semantics no call site was written for. `reviewed_versions.txt` pins the
/// codec's ranges this table was last checked against.
pub fn implemented(api: ApiKey) -> (i16, i16) {
    let (lo, hi) = api.valid_versions();
    let newest = match api {
        // 5: cluster and node id checks, REBOOTSTRAP_REQUIRED (KIP-1242).
        ApiKey::ApiVersions => 4,
        // 13: a top-level error code (REBOOTSTRAP_REQUIRED).
        ApiKey::Metadata => 12,
        // 12: the same as 11 but for transactions v2 (KIP-890); 13: topic
        // ids instead of names.
        ApiKey::Produce => 11,
        // 13+: topic ids (the consumer picks its own version below 13 when
        // it has no ids); 18: the follower's high watermark (KIP-1166).
        ApiKey::Fetch => 17,
        // 10: topic ids instead of names.
        ApiKey::OffsetCommit | ApiKey::OffsetFetch => 9,
        // 6: GROUP_ID_NOT_FOUND for a group that does not exist (KIP-1043).
        ApiKey::DescribeGroups => 5,
        // 6: two-phase commit (KIP-939).
        ApiKey::InitProducerId => 5,
        // 5: transactions v2 (KIP-890 part 2).
        ApiKey::EndTxn => 4,
        // 5: transactions v2; 6: topic ids.
        ApiKey::TxnOffsetCommit => 4,
        _ => hi,
    };
    (lo, hi.min(newest))
}

/// The ApiVersions request krust sends (KIP-511 client name and version).
pub(crate) fn request() -> ApiVersionsRequest {
    ApiVersionsRequest {
        client_software_name: KString::from_static("krust"),
        client_software_version: KString::from_static(env!("CARGO_PKG_VERSION")),
        ..Default::default()
    }
}

/// What one ApiVersions exchange told us.
pub(crate) enum Outcome {
    /// The table.
    Supported(ApiVersions),
    /// UNSUPPORTED_VERSION: retry at this version.
    Retry(i16),
}

/// Interpret an ApiVersions reply frame (header then body) to a request
/// sent at `version`.
pub(crate) fn parse_reply(addr: &str, frame: Bytes, version: i16) -> Result<Outcome, Error> {
    let not_kafka = |e| Error::NotKafka {
        broker: addr.to_owned(),
        cause: ProtocolViolation::Decode(e),
    };
    let mut body = frame;
    // ApiVersions replies always use response header v0.
    ResponseHeader::decode(&mut body, 0).map_err(not_kafka)?;
    let code = krust_codec::wire::get_i16(&mut body.clone(), "ApiVersionsResponse.ErrorCode")
        .map(ErrorCode::from)
        .map_err(not_kafka)?;
    if code == ErrorCode::UNSUPPORTED_VERSION && version > 0 {
        // KIP-511: the body is v0-encoded. Retry at the broker's highest
        // ApiVersions version below ours if it says, else v0.
        let retry = ApiVersionsResponse::decode(&mut body.clone(), 0)
            .ok()
            .and_then(|r| ApiVersions::from_response(&r).range(ApiKey::ApiVersions))
            .map_or(0, |(_, max)| max.clamp(0, version - 1));
        return Ok(Outcome::Retry(retry));
    }
    let resp = ApiVersionsResponse::decode(&mut body, version).map_err(not_kafka)?;
    if !code.is_ok() {
        return Err(Error::broker(ApiKey::ApiVersions, code, None));
    }
    Ok(Outcome::Supported(ApiVersions::from_response(&resp)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A schema refresh changes the codec's version ranges; this fails until
    /// someone has read what each new version means and capped it in
    /// [`implemented`] where krust does not handle it.
    #[test]
    fn the_codec_ranges_are_the_reviewed_ones() {
        let now: String = ApiKey::ALL
            .iter()
            .map(|a| {
                let (lo, hi) = a.valid_versions();
                format!("{} {lo}-{hi}\n", a.name())
            })
            .collect();
        let reviewed = include_str!("reviewed_versions.txt");
        assert!(
            now == reviewed,
            "the codec's version ranges changed: review each new version, cap it in \
             versions::implemented() if krust does not handle it, then write this to \
             crates/krust-net/src/reviewed_versions.txt:\n{now}"
        );
    }

    #[test]
    fn negotiation_stops_at_what_krust_implements() {
        let t = ApiVersions::from_ranges([(8, 0, 10), (9, 0, 10), (0, 3, 13)]);
        assert_eq!(t.negotiate(ApiKey::OffsetCommit, (0, 10)).unwrap(), 9);
        assert_eq!(t.negotiate(ApiKey::OffsetFetch, (0, i16::MAX)).unwrap(), 9);
        assert_eq!(t.negotiate(ApiKey::Produce, (3, 13)).unwrap(), 11);
        for api in ApiKey::ALL {
            let (lo, hi) = implemented(api);
            assert!(lo <= hi, "{api:?}");
            assert_eq!(lo, api.valid_versions().0, "{api:?}");
        }
    }

    #[test]
    fn negotiate_picks_highest_common() {
        let t = ApiVersions::from_ranges([(3, 0, 10), (10, 0, 4)]);
        assert_eq!(t.negotiate(ApiKey::Metadata, (0, 9)).unwrap(), 9);
        assert_eq!(t.negotiate(ApiKey::FindCoordinator, (0, 6)).unwrap(), 4);
        let e = t.negotiate(ApiKey::Metadata, (11, 12)).unwrap_err();
        assert!(e.to_string().contains("Metadata"), "{e}");
        assert!(e.to_string().contains("11-12"), "{e}");
        assert!(e.to_string().contains("0-10"), "{e}");
        let e = t.negotiate(ApiKey::Fetch, (0, 17)).unwrap_err();
        assert!(e.to_string().contains("does not support"), "{e}");
    }
}
