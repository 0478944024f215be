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

    /// The highest version of `api` within both `ours` and the broker's
    /// range, or an error naming the API and both ranges.
    pub fn negotiate(&self, api: ApiKey, ours: (i16, i16)) -> Result<i16, Error> {
        let theirs = self.range(api);
        let unsupported = || Error::UnsupportedVersion { api, ours, theirs };
        let (min, max) = theirs.ok_or_else(unsupported)?;
        let hi = max.min(ours.1);
        if hi < min.max(ours.0) {
            return Err(unsupported());
        }
        Ok(hi)
    }
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

    #[test]
    fn negotiate_picks_highest_common() {
        let t = ApiVersions::from_ranges([(3, 0, 12), (10, 0, 4)]);
        assert_eq!(t.negotiate(ApiKey::Metadata, (0, 9)).unwrap(), 9);
        assert_eq!(t.negotiate(ApiKey::FindCoordinator, (0, 6)).unwrap(), 4);
        let e = t.negotiate(ApiKey::Metadata, (13, 14)).unwrap_err();
        assert!(e.to_string().contains("Metadata"), "{e}");
        assert!(e.to_string().contains("13-14"), "{e}");
        assert!(e.to_string().contains("0-12"), "{e}");
        let e = t.negotiate(ApiKey::Fetch, (0, 17)).unwrap_err();
        assert!(e.to_string().contains("does not support"), "{e}");
    }
}
