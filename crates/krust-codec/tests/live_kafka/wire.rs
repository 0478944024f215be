//! A blocking connection that sends one generated request at a time and
//! insists that the response decodes completely: every byte of the body is
//! read by our decoder, and encoding what it read at the same version gives
//! the broker's bytes back, exactly. (The testkit's `raw::Connection` hands
//! out only the decoded value; this check needs the frame.)

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::ops::RangeInclusive;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use krust_codec::frame::FrameDecoder;
use krust_codec::generated::ApiVersionsRequest;
use krust_codec::{Decode, Encode, KString, Request, ResponseHeader, header};
use krust_testkit::{Broker, Kafka, KafkaVersion};

/// How long one read or write may take: the slowest request here is a
/// CreateTopics or DeleteTopics waiting for the controller.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// One connection to one Kafka node, with the versions it offers.
pub struct Wire {
    /// `kafka-4.4.0`, for messages.
    pub name: String,
    /// Which release.
    pub version: KafkaVersion,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    stream: TcpStream,
    correlation_id: i32,
    read_buf: BytesMut,
    offered: BTreeMap<i16, (i16, i16)>,
}

impl Wire {
    /// Connect to the node this test binary shares for `version` and learn
    /// what it offers (ApiVersions v0, which every broker answers).
    pub fn open(version: KafkaVersion) -> Wire {
        let kafka = Kafka::shared_version(version);
        let addr = kafka.addr();
        let stream = TcpStream::connect(&addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        stream.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        let mut wire = Wire {
            name: kafka.name(),
            version,
            addr,
            stream,
            correlation_id: 0,
            read_buf: BytesMut::new(),
            offered: BTreeMap::new(),
        };
        let versions = wire.send(0, &ApiVersionsRequest::default());
        assert_eq!(versions.error_code, 0, "{}: ApiVersions v0", wire.name);
        wire.offered = versions
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        wire
    }

    /// The node's port, as Metadata and FindCoordinator must name it.
    pub fn port(&self) -> i32 {
        self.addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port")
    }

    /// Every version of `R` both the broker and our codec speak (never
    /// empty). On 3.9.2 that starts at v0: the versions KIP-896 removed
    /// from 4.x are exercised there.
    pub fn versions<R: Request>(&self) -> RangeInclusive<i16> {
        let api = R::API_KEY;
        let (ours_lo, ours_hi) = R::VALID_VERSIONS;
        let (lo, hi) = *self
            .offered
            .get(&api.key())
            .unwrap_or_else(|| panic!("{}: does not offer {api:?}", self.name));
        let range = lo.max(ours_lo).max(rejected_below(self.version, api))..=hi.min(ours_hi);
        assert!(
            !range.is_empty(),
            "{}: no common version of {api:?}",
            self.name
        );
        if self.version == KafkaVersion::V3_9 {
            assert_eq!(lo, 0, "{}: 3.9.2 still speaks v0 of {api:?}", self.name);
        }
        eprintln!(
            "{}: {api:?} at v{}..=v{} (broker v{lo}..=v{hi}, codec v{ours_lo}..=v{ours_hi})",
            self.name,
            range.start(),
            range.end()
        );
        range
    }

    /// Send `body` at `version`, which the broker advertises but refuses:
    /// it must close the connection (Kafka's answer to a request it will not
    /// parse); then connect again.
    pub fn refused<R: Request>(&mut self, version: i16, body: &R) {
        let what = format!("{}: {} v{version}", self.name, R::NAME);
        self.correlation_id += 1;
        let mut frame = BytesMut::new();
        let client = KString::from("krust-codec-live");
        header::encode_request_frame(
            &mut frame,
            version,
            self.correlation_id,
            Some(&client),
            body,
        )
        .unwrap_or_else(|e| panic!("{what}: encoding our request: {e}"));
        self.stream
            .write_all(&frame)
            .unwrap_or_else(|e| panic!("{what}: writing: {e}"));
        let mut byte = [0u8; 1];
        let n = self
            .stream
            .read(&mut byte)
            .unwrap_or_else(|e| panic!("{what}: reading: {e}"));
        assert_eq!(n, 0, "{what}: answered instead of closing the connection");
        let offered = std::mem::take(&mut self.offered);
        *self = Wire::open(self.version);
        assert_eq!(self.offered, offered, "{what}: the same broker");
    }

    /// The highest version of `R` both sides speak.
    pub fn highest<R: Request>(&self) -> i16 {
        let (lo, hi) = self.offered[&R::API_KEY.key()];
        let v = hi.min(R::VALID_VERSIONS.1);
        assert!(
            v >= lo,
            "{}: no common version of {:?}",
            self.name,
            R::API_KEY
        );
        v
    }

    /// Send `body` at `version`; the response, decoded completely (see the
    /// module doc), or a panic saying what went wrong.
    pub fn send<R: Request>(&mut self, version: i16, body: &R) -> R::Response
    where
        R::Response: std::fmt::Debug,
    {
        let what = format!("{}: {} v{version}", self.name, R::NAME);
        self.correlation_id += 1;
        let mut frame = BytesMut::new();
        let client = KString::from("krust-codec-live");
        header::encode_request_frame(
            &mut frame,
            version,
            self.correlation_id,
            Some(&client),
            body,
        )
        .unwrap_or_else(|e| panic!("{what}: encoding our request: {e}"));
        self.stream
            .write_all(&frame)
            .unwrap_or_else(|e| panic!("{what}: writing: {e}"));
        let frame = self.read_frame(&what);
        let (header, response) = decode_exactly::<R>(&frame, version, &what);
        assert_eq!(
            header.correlation_id, self.correlation_id,
            "{what}: correlation id"
        );
        response
    }

    fn read_frame(&mut self, what: &str) -> Bytes {
        let decoder = FrameDecoder::new(64 << 20);
        loop {
            match decoder.decode(&mut self.read_buf) {
                Ok(Some(frame)) => return frame,
                Ok(None) => {}
                Err(e) => panic!("{what}: framing: {e}"),
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = self
                .stream
                .read(&mut chunk)
                .unwrap_or_else(|e| panic!("{what}: reading: {e}"));
            // Kafka closes the connection on a request it cannot parse.
            assert_ne!(n, 0, "{what}: the broker closed the connection");
            self.read_buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// The lowest version of `api` a broker of `version` accepts, where that
/// is above what its ApiVersions says: Kafka 4.x advertises Produce from v0
/// but refuses v0-v2 (KIP-896 removed them; KAFKA-18659 kept them in
/// ApiVersions so that librdkafka still picks its modern message format).
pub fn rejected_below(version: KafkaVersion, api: krust_codec::ApiKey) -> i16 {
    match (version, api) {
        (KafkaVersion::V3_9, _) => 0,
        (_, krust_codec::ApiKey::Produce) => 3,
        _ => 0,
    }
}

/// Decode a response frame (header and body) and check that our decoder
/// read all of it and that re-encoding reproduces it byte for byte.
fn decode_exactly<R: Request>(
    frame: &Bytes,
    version: i16,
    what: &str,
) -> (ResponseHeader, R::Response)
where
    R::Response: std::fmt::Debug,
{
    let header_version = R::API_KEY.response_header_version(version);
    let mut rest = frame.clone();
    let header = ResponseHeader::decode(&mut rest, header_version)
        .unwrap_or_else(|e| panic!("{what}: response header: {e}"));
    let body = rest.clone();
    let response = <R::Response as Decode>::decode(&mut rest, version)
        .unwrap_or_else(|e| panic!("{what}: decoding the response: {e}"));
    assert!(
        rest.is_empty(),
        "{what}: {} bytes of the response left undecoded: {:02x?}",
        rest.len(),
        &rest[..rest.len().min(64)]
    );
    let mut again = BytesMut::new();
    header
        .encode(&mut again, header_version)
        .unwrap_or_else(|e| panic!("{what}: re-encoding the header: {e}"));
    let header_len = again.len();
    assert_eq!(
        &again[..],
        &frame[..frame.len() - body.len()],
        "{what}: header"
    );
    response
        .encode(&mut again, version)
        .unwrap_or_else(|e| panic!("{what}: re-encoding the response: {e}"));
    let again = &again[header_len..];
    if again != &body[..] {
        let at = again
            .iter()
            .zip(body.iter())
            .position(|(a, b)| a != b)
            .unwrap_or(again.len().min(body.len()));
        let window = |b: &[u8]| b[at.saturating_sub(16)..(at + 16).min(b.len())].to_vec();
        panic!(
            "{what}: re-encoding what we decoded differs from the broker's {} bytes at byte {at} \
             (we wrote {} bytes)\n broker: {:02x?}\n    ours: {:02x?}\n{response:#?}",
            body.len(),
            again.len(),
            window(&body),
            window(again)
        );
    }
    (header, response)
}

/// A `KString` from a `&str`.
pub fn ks(s: &str) -> KString {
    KString::from(s)
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(d.as_millis()).expect("ms fit i64")
}
