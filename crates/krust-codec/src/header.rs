//! Request and response headers, and whole requests and responses (header
//! then body) as they travel inside a frame.
//!
//! The header version follows from the API and its version
//! ([`ApiKey::request_header_version`], [`ApiKey::response_header_version`]):
//! request header v2 and response header v1 for flexible versions, request
//! v1 / response v0 otherwise, request v0 for ControlledShutdown v0 and
//! response v0 for every ApiVersions response.
//!
//! ```
//! use bytes::BytesMut;
//! use krust_codec::generated::MetadataRequest;
//! use krust_codec::{header, ApiKey, KString, RequestBody};
//!
//! let mut buf = BytesMut::new();
//! let client = KString::from_static("my-app");
//! header::encode_request(&mut buf, 12, 7, Some(&client), &MetadataRequest::default()).unwrap();
//! let (h, body) = header::decode_request(buf.freeze()).unwrap();
//! assert_eq!((h.request_api_key, h.correlation_id), (ApiKey::Metadata.key(), 7));
//! assert!(matches!(body, RequestBody::Metadata(_)));
//! ```

use bytes::{Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError};
use crate::frame::{begin_frame, finish_frame};
use crate::generated::{ApiKey, Request, RequestBody, ResponseBody};
use crate::wire::{self, Decode, Encode, KString};

pub use crate::generated::request_header::RequestHeader;
pub use crate::generated::response_header::ResponseHeader;

/// Encode the request header for `api_key` at `version`, choosing the header
/// version from the API.
pub fn encode_request_header(
    buf: &mut BytesMut,
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: Option<&KString>,
) -> Result<(), EncodeError> {
    let header = RequestHeader {
        request_api_key: api_key.key(),
        request_api_version: version,
        correlation_id,
        client_id: client_id.cloned(),
        ..Default::default()
    };
    header.encode(buf, api_key.request_header_version(version))
}

/// Encode a request (header then body) at `version`, without the frame's
/// length prefix (see [`encode_request_frame`]).
pub fn encode_request<R: Request>(
    buf: &mut BytesMut,
    version: i16,
    correlation_id: i32,
    client_id: Option<&KString>,
    body: &R,
) -> Result<(), EncodeError> {
    encode_request_header(buf, R::API_KEY, version, correlation_id, client_id)?;
    body.encode(buf, version)
}

/// Encode a whole request frame: the i32 length prefix, the header, the body.
pub fn encode_request_frame<R: Request>(
    buf: &mut BytesMut,
    version: i16,
    correlation_id: i32,
    client_id: Option<&KString>,
    body: &R,
) -> Result<(), EncodeError> {
    let start = begin_frame(buf);
    encode_request(buf, version, correlation_id, client_id, body)?;
    finish_frame(buf, start)
}

/// Encode a request whose API is only known at run time (header then body).
pub fn encode_request_body(
    buf: &mut BytesMut,
    version: i16,
    correlation_id: i32,
    client_id: Option<&KString>,
    body: &RequestBody,
) -> Result<(), EncodeError> {
    encode_request_header(buf, body.api_key(), version, correlation_id, client_id)?;
    body.encode(buf, version)
}

/// Decode a request frame (without its length prefix): the header, then the
/// body its API key and version call for. Bytes left over are an error.
pub fn decode_request(mut frame: Bytes) -> Result<(RequestHeader, RequestBody), DecodeError> {
    let mut peek = frame.clone();
    let key = wire::get_i16(&mut peek, "RequestHeader.RequestApiKey")?;
    let version = wire::get_i16(&mut peek, "RequestHeader.RequestApiVersion")?;
    let api = ApiKey::try_from(key)?;
    let header = RequestHeader::decode(&mut frame, api.request_header_version(version))?;
    let body = RequestBody::decode(key, version, &mut frame)?;
    no_trailing(&frame, "request")?;
    Ok((header, body))
}

/// Encode a response (header then body) to a request of `body`'s API at
/// `version`, without the frame's length prefix.
pub fn encode_response(
    buf: &mut BytesMut,
    version: i16,
    correlation_id: i32,
    body: &ResponseBody,
) -> Result<(), EncodeError> {
    let header = ResponseHeader {
        correlation_id,
        ..Default::default()
    };
    header.encode(buf, body.api_key().response_header_version(version))?;
    body.encode(buf, version)
}

/// Decode a response frame (without its length prefix) to a request of
/// `api_key` at `version`. Bytes left over are an error.
pub fn decode_response(
    mut frame: Bytes,
    api_key: ApiKey,
    version: i16,
) -> Result<(ResponseHeader, ResponseBody), DecodeError> {
    let header = ResponseHeader::decode(&mut frame, api_key.response_header_version(version))?;
    let body = ResponseBody::decode(api_key.key(), version, &mut frame)?;
    no_trailing(&frame, "response")?;
    Ok((header, body))
}

/// A response decoded by [`read_response_as`]: the fields this version's
/// schema knows, and how many bytes after them were ignored.
#[derive(Debug, Clone)]
pub struct ReadResponse<T> {
    /// The response header.
    pub header: ResponseHeader,
    /// The response body.
    pub body: T,
    /// Bytes after the body that the schema does not describe (0 from a
    /// broker that follows it).
    pub ignored: usize,
}

/// Decode a response frame to a request of type `R` at `version` the way a
/// client reads replies: every field the schema gives this version is
/// decoded and checked, and bytes after the body are ignored and counted
/// (as the Java client and librdkafka do; some brokers append a field).
/// Requests, which a broker decodes, and round-trip checks stay strict:
/// [`decode_request`], [`decode_response_as`].
pub fn read_response_as<R: Request>(
    mut frame: Bytes,
    version: i16,
) -> Result<ReadResponse<R::Response>, DecodeError> {
    let header = ResponseHeader::decode(&mut frame, R::API_KEY.response_header_version(version))?;
    let body = R::Response::decode(&mut frame, version)?;
    Ok(ReadResponse {
        header,
        body,
        ignored: frame.len(),
    })
}

/// Decode a response frame to a request of type `R` at `version`, giving the
/// typed response. Bytes left over are an error (see [`read_response_as`]
/// for the lenient form a client uses).
pub fn decode_response_as<R: Request>(
    mut frame: Bytes,
    version: i16,
) -> Result<(ResponseHeader, R::Response), DecodeError> {
    let header = ResponseHeader::decode(&mut frame, R::API_KEY.response_header_version(version))?;
    let body = R::Response::decode(&mut frame, version)?;
    no_trailing(&frame, "response")?;
    Ok((header, body))
}

/// The correlation id of a response frame (its first four bytes in every
/// header version), to match it with its request before decoding the rest.
pub fn response_correlation_id(frame: &Bytes) -> Result<i32, DecodeError> {
    wire::get_i32(
        &mut frame.slice(..frame.len().min(4)),
        "ResponseHeader.CorrelationId",
    )
}

fn no_trailing(rest: &Bytes, what: &'static str) -> Result<(), DecodeError> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(DecodeError::TrailingBytes {
            what,
            remaining: rest.len(),
        })
    }
}
